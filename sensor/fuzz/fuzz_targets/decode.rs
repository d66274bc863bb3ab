//! Raw bytes through `decode::decode` as every link type the sensor knows (Ethernet
//! first, then bare IP), with checksum validation on and off. The decoder promises
//! never to panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soc_sensor::decode::{DecodeOptions, Decoded, LinkType, decode};

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

fuzz_target!(|data: &[u8]| {
    for link in LINKS {
        for checksum_check in [false, true] {
            if let Ok(Decoded::Ip(p)) = decode(link, data, DecodeOptions { checksum_check }) {
                // Touch the accessors and the borrowed payload.
                let _ = (p.src_port(), p.dst_port(), p.payload.len());
            }
        }
    }
});
