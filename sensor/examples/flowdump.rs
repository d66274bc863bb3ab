//! Debug aid: prints the TCP/UDP packets of a capture touching a port.
//!
//! `cargo run -p soc-sensor --example flowdump -- <capture> <port> [max]`

use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::decode::{DecodeOptions, Decoded, Transport, decode};
use std::ops::ControlFlow;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).ok_or("usage: flowdump <capture> <port> [max]")?);
    let port: u16 = args.get(2).ok_or("port")?.parse()?;
    let max: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let mut n = 0u64;
    let mut shown = 0usize;
    read_capture(&path, open_capture(&path)?, |ts, link, frame| {
        n += 1;
        match decode(link, frame, DecodeOptions::default()) {
            Ok(Decoded::Ip(p)) if p.src_port() == port || p.dst_port() == port => {
                let preview: String = p
                    .payload
                    .iter()
                    .take(40)
                    .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
                    .collect();
                match p.transport {
                    Transport::Tcp(t) => println!(
                        "#{n} {ts} {}:{} > {}:{} flags={:02x} seq={} ack={} len={} {preview}",
                        p.src,
                        t.sport,
                        p.dst,
                        t.dport,
                        t.flags,
                        t.seq,
                        t.ack,
                        p.payload.len()
                    ),
                    _ => println!(
                        "#{n} {ts} {}:{} > {}:{} len={} {preview}",
                        p.src,
                        p.src_port(),
                        p.dst,
                        p.dst_port(),
                        p.payload.len()
                    ),
                }
                shown += 1;
            }
            Err(e)
                if frame.len() > 54
                    && (frame.get(34..36) == Some(&port.to_be_bytes())
                        || frame.get(36..38) == Some(&port.to_be_bytes())) =>
            {
                println!("#{n} {ts} DECODE ERROR {e} len={}", frame.len());
                shown += 1;
            }
            _ => {}
        }
        if shown >= max { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })?;
    Ok(())
}
