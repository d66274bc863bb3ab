//! The TLS stream parser (records, handshake reassembly, JA3/JA3S/JA4, certificates) over a
//! chunk sequence (see `common.rs`), plus the ClientHello/ServerHello body parsers and the
//! certificate parser applied directly to every data chunk.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use soc_sensor::app::tls::{
    TlsParser, fill_certificate, ja3, ja3s, ja4, parse_client_hello, parse_server_hello,
};

fn direct(chunk: &[u8]) {
    // A chunk may be a whole record: skip the 5-byte record and 4-byte handshake headers.
    for body in [chunk, chunk.get(9..).unwrap_or(&[])] {
        if let Some(ch) = parse_client_hello(body) {
            let _ = ja3(&ch);
            let _ = ja4(&ch);
        }
        if let Some(sh) = parse_server_hello(body) {
            let _ = ja3s(&sh);
        }
    }
    let mut t = soc_model::Tls::default();
    fill_certificate(&mut t, chunk);
}

fuzz_target!(|data: &[u8]| {
    let mut p = TlsParser::default();
    let _ = common::drive(&mut p, data, direct);
});
