//! The HTTP/1.x parser (requests, responses, chunked and gzip bodies, pipelining) over a
//! chunk sequence (see `common.rs`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use soc_sensor::app::http::{HttpParser, split_host_port};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = split_host_port(s);
    }
    let mut p = HttpParser::new();
    let _ = common::drive(&mut p, data, |_| {});
});
