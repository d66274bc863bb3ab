//! Shared by the stream-parser targets (`tls`, `http`): the input is a sequence of
//! chunks `[hdr: u8][len: u16 big-endian][len bytes]`; `hdr` bit 0 is the direction
//! (0 to server, 1 to client), bit 1 makes the chunk a gap of `len` bytes instead of data,
//! bit 2 an end-of-stream of that direction. The parser is closed at the end.

use soc_sensor::app::{AppParser, AppRecord, Direction};

pub fn drive(parser: &mut dyn AppParser, mut data: &[u8], mut each: impl FnMut(&[u8])) -> Vec<AppRecord> {
    let mut out = Vec::new();
    let mut n = 0;
    while data.len() >= 3 && n < 512 {
        let hdr = data[0];
        let len = u16::from_be_bytes([data[1], data[2]]) as usize;
        data = &data[3..];
        let dir = if hdr & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        n += 1;
        if parser.is_done() {
            break;
        }
        if hdr & 2 != 0 {
            parser.on_gap(dir, len as u32, &mut out);
        } else if hdr & 4 != 0 {
            parser.on_eof(dir, &mut out);
        } else {
            let take = len.min(data.len());
            let (chunk, tail) = data.split_at(take);
            data = tail;
            each(chunk);
            parser.on_data(dir, chunk, &mut out);
        }
    }
    parser.on_close(&mut out);
    out
}
