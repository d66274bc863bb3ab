//! A sequence of frames through one `Sensor` (midstream on), then `flush_all`: decoding,
//! defragmentation, the flow table, stream reassembly, protocol detection and the
//! DNS/HTTP/TLS parsers.
//!
//! Input format:
//! - byte 0: options. Bits 0-1: link type (0 Ethernet, 1 raw IP, 2 Linux SLL, 3 Null);
//!   bit 2: checksum validation; bit 3: checksum auto mode.
//! - then frames, each `[dt: u8][len: u16 big-endian][len bytes]`; the packet clock
//!   advances by `dt * 100 ms` before the frame (so timeouts are reachable). A truncated
//!   last frame is fed as far as it goes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soc_model::Timestamp;
use soc_sensor::decode::LinkType;
use soc_sensor::{Sensor, SensorOptions};

const MAX_FRAMES: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let link = match flags & 3 {
        0 => LinkType::Ethernet,
        1 => LinkType::RawIp,
        2 => LinkType::LinuxSll,
        _ => LinkType::Null,
    };
    let opts = SensorOptions {
        midstream: true,
        checksum_check: flags & 4 != 0,
        checksum_auto: flags & 8 != 0,
        ..SensorOptions::default()
    };
    let mut sensor = Sensor::new(opts);
    let mut out = Vec::new();
    let mut ts: i64 = 1_700_000_000_000_000;
    let mut n = 0;
    while rest.len() >= 3 && n < MAX_FRAMES {
        let dt = rest[0] as i64;
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (frame, tail) = rest.split_at(take);
        rest = tail;
        ts += dt * 100_000;
        sensor.process(Timestamp::from_unix_micros(ts), link, frame, &mut out);
        n += 1;
        if out.len() > 4096 {
            out.clear();
        }
    }
    sensor.flush_all(&mut out);
    let _ = sensor.stats();
});
