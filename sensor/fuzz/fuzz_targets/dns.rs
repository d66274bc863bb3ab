//! One DNS message: `parse_message` (+ the EVE conversion), the UDP state machine in
//! both directions, and the TCP parser (2-byte length framing) fed in two pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soc_sensor::app::dns::{DnsTcpParser, DnsUdpState, parse_message, probe_message, to_eve};
use soc_sensor::app::{AppParser, Direction};

fuzz_target!(|data: &[u8]| {
    let _ = probe_message(data);
    if let Ok(m) = parse_message(data) {
        let _ = to_eve(&m, 0);
    }
    let mut out = Vec::new();
    let mut udp = DnsUdpState::default();
    udp.on_datagram(Direction::ToServer, data, &mut out);
    udp.on_datagram(Direction::ToClient, data, &mut out);

    let mut tcp = DnsTcpParser::default();
    let mut framed = Vec::with_capacity(data.len() + 2);
    framed.extend_from_slice(&(data.len().min(u16::MAX as usize) as u16).to_be_bytes());
    framed.extend_from_slice(data);
    let cut = data.first().map_or(0, |&b| b as usize).min(framed.len());
    tcp.on_data(Direction::ToServer, &framed[..cut], &mut out);
    tcp.on_data(Direction::ToServer, &framed[cut..], &mut out);
    tcp.on_data(Direction::ToClient, &framed, &mut out);
    tcp.on_close(&mut out);
});
