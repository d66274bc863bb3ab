//! WebSocket (RFC 6455): the frames of a connection upgraded from HTTP/1.1 (a `101` response
//! with `Upgrade: websocket`, see [`super::http::HttpParser::websocket_upgrade`]).
//!
//! Each frame is one transaction of its direction, as in Suricata: its frames
//! (`frame:websocket.pdu`, `.header`, `.data`: the bytes as on the wire, masked or not), its
//! opcode, mask key and flags (`websocket.opcode`, `websocket.mask`, `websocket.flags`) and its
//! payload (`websocket.payload`: unmasked, the message of a fragmented one on its last frame,
//! inflated when it is compressed with `permessage-deflate`). A frame's payload is kept up to
//! [`MAX_PAYLOAD`] bytes (the rest is skipped), an inflated message up to [`MAX_PAYLOAD`] too.

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction};
use crate::detect::{AppInt, Buffer};
use flate2::{Decompress, FlushDecompress, Status};

/// Bytes of a frame's (or a fragmented message's) payload kept; Suricata's default
/// `app-layer.protocols.websocket.max-payload-size`.
pub const MAX_PAYLOAD: usize = 0xffff;

/// `websocket.flags` bits: FIN and RSV1 (the message is compressed).
pub const FLAG_FIN: u8 = 0x80;
pub const FLAG_COMP: u8 = 0x40;

/// The opcode names of `websocket.opcode`.
pub fn opcode_from_name(name: &str) -> Option<u8> {
    Some(match name {
        "continuation" => 0,
        "text" => 1,
        "binary" => 2,
        "connection_close" | "close" => 8,
        "ping" => 9,
        "pong" => 10,
        _ => return None,
    })
}

/// `websocket.flags:fin,comp` (`!` before a name: the bit is clear; `,` or `|` between names)
/// as `(mask, value)` over the frame's first byte.
pub fn parse_flags(v: &str) -> Result<(u64, u64), String> {
    super::parse_named_bits(v, &[',', '|'], |name| match name {
        "fin" => Some(u64::from(FLAG_FIN)),
        "comp" => Some(u64::from(FLAG_COMP)),
        _ => None,
    })
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN and RSV bits (the first byte's high nibble).
    pub flags: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// Header length (mask key included).
    pub len: usize,
    pub payload_len: u64,
}

/// The header at the start of `d`; `None` while incomplete.
pub fn parse_header(d: &[u8]) -> Option<Header> {
    let (b0, b1) = (*d.first()?, *d.get(1)?);
    let (mut len, payload_len) = match b1 & 0x7f {
        126 => (4, u64::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]))),
        127 => (10, u64::from_be_bytes(d.get(2..10)?.try_into().ok()?)),
        n => (2, u64::from(n)),
    };
    let mask = if b1 & 0x80 != 0 {
        let m: [u8; 4] = d.get(len..len + 4)?.try_into().ok()?;
        len += 4;
        Some(m)
    } else {
        None
    };
    Some(Header { flags: b0 & 0xf0, opcode: b0 & 0x0f, mask, len, payload_len })
}

/// The length of a header (mask key included) from its second byte.
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Per-direction state.
#[derive(Default)]
struct Side {
    /// Bytes of the frame being read (header and payload so far, up to [`MAX_PAYLOAD`] of it).
    buf: Vec<u8>,
    /// Payload bytes of the current frame still to skip (past [`MAX_PAYLOAD`]).
    skip: u64,
    /// The header of the frame whose payload is being skipped.
    skipping: Option<Header>,
    /// A fragmented message is open: its payload so far (unmasked), and whether it is
    /// compressed (said by its first frame).
    in_message: bool,
    message: Vec<u8>,
    message_comp: bool,
    /// The inflater of `permessage-deflate` (context takeover: one per direction).
    inflater: Option<Decompress>,
    /// Gave up (a gap): nothing more is parsed in this direction.
    lost: bool,
}

/// The WebSocket parser of one flow.
#[derive(Default)]
pub struct WebsocketParser {
    sides: [Side; 2],
    /// The HTTP/1.1 connection it was upgraded from: its last transactions (the upgrade's)
    /// are still inspected.
    h1: Option<Box<super::http::HttpParser>>,
}

impl WebsocketParser {
    /// The parser of a connection upgraded from `h1`.
    pub fn upgrade(h1: Box<super::http::HttpParser>) -> Self {
        WebsocketParser { h1: Some(h1), ..Self::default() }
    }

    /// Data of a transaction of the HTTP/1.1 connection this one was upgraded from.
    pub fn h1_tx_data(&self, tx_id: u64) -> Option<&super::http::TxData> {
        self.h1.as_ref()?.tx_data(tx_id)
    }

    fn frame(&mut self, dir: Direction, h: Header, frame: &[u8], out: &mut Vec<AppRecord>) {
        let side = &mut self.sides[dir.index()];
        let data = frame.get(h.len..).unwrap_or_default();
        let mut payload = data.to_vec();
        if let Some(m) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= m[i % 4];
            }
        }
        let fin = h.flags & FLAG_FIN != 0;
        let control = h.opcode >= 8;
        let mut comp = h.flags & FLAG_COMP != 0;
        // a fragmented message: its payload is the message's, on its last frame
        if !control && (side.in_message || !fin) {
            if !side.in_message {
                side.in_message = true;
                side.message_comp = comp;
            }
            let room = MAX_PAYLOAD.saturating_sub(side.message.len());
            side.message.extend_from_slice(&payload[..payload.len().min(room)]);
            if fin {
                side.in_message = false;
                payload = std::mem::take(&mut side.message);
                comp = side.message_comp;
            } else {
                payload.clear();
            }
        }
        if comp && fin && !payload.is_empty() {
            payload = inflate(side.inflater.get_or_insert_with(|| Decompress::new(false)), &payload);
        }
        let mut t = TxInspect::new(AppProto::Websocket, dir);
        t.bufs = vec![
            (Buffer::WebsocketFramePdu, frame.to_vec()),
            (Buffer::WebsocketFrameHeader, frame.get(..h.len).unwrap_or_default().to_vec()),
            (Buffer::WebsocketFrameData, data.to_vec()),
            (Buffer::WebsocketPayload, payload),
        ];
        t.ints = vec![(AppInt::WebsocketOpcode, u64::from(h.opcode)), (AppInt::WebsocketFlags, u64::from(h.flags))];
        if let Some(m) = h.mask {
            t.ints.push((AppInt::WebsocketMask, u64::from(u32::from_be_bytes(m))));
        }
        out.push(AppRecord::Inspect(Box::new(t)));
    }
}

/// A compressed message inflated (RFC 7692: the sender removed the final empty block's
/// `00 00 ff ff`), at most [`MAX_PAYLOAD`] bytes; what does not inflate is left out.
fn inflate(d: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let input = [payload, &[0, 0, 0xff, 0xff]].concat();
    let mut out = Vec::with_capacity(MAX_PAYLOAD.min(input.len() * 4));
    let mut pos = 0;
    while out.len() < MAX_PAYLOAD {
        let (in_before, out_before) = (d.total_in(), out.len());
        let room = (MAX_PAYLOAD - out.len()).min(16 * 1024);
        out.reserve(room);
        match d.decompress_vec(input.get(pos..).unwrap_or_default(), &mut out, FlushDecompress::Sync) {
            Ok(Status::Ok | Status::BufError) => {
                pos += (d.total_in() - in_before) as usize;
                let produced = out.len() - out_before;
                // done: all input read and the output not cut short by the room given
                if (pos >= input.len() && out.len() < out.capacity()) || (produced == 0 && d.total_in() == in_before) {
                    break;
                }
            }
            // the sender ended the deflate stream: the next message starts a new one
            Ok(Status::StreamEnd) => {
                d.reset(false);
                break;
            }
            Err(_) => {
                metrics::counter!("soc_sensor_websocket_inflate_errors_total").increment(1);
                d.reset(false);
                break;
            }
        }
    }
    out.truncate(MAX_PAYLOAD);
    out
}

impl AppParser for WebsocketParser {
    fn on_data(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        while !data.is_empty() && !self.sides[d].lost {
            let side = &mut self.sides[d];
            if side.skip > 0 {
                let n = (data.len() as u64).min(side.skip);
                side.skip -= n;
                data = &data[n as usize..];
                if side.skip == 0
                    && let Some(h) = side.skipping.take()
                {
                    let frame = std::mem::take(&mut side.buf);
                    self.frame(dir, h, &frame, out);
                }
                continue;
            }
            // the header, then the payload (up to MAX_PAYLOAD): never a byte past the frame
            let header = parse_header(&side.buf);
            let target = match (header, side.buf.get(1)) {
                (Some(h), _) => h.len + h.payload_len.min(MAX_PAYLOAD as u64) as usize,
                (None, Some(&b1)) => header_len(b1),
                (None, None) => 2,
            };
            let take = target.saturating_sub(side.buf.len()).min(data.len());
            side.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            let Some(h) = header.or_else(|| parse_header(&side.buf)) else { continue };
            let target = h.len + h.payload_len.min(MAX_PAYLOAD as u64) as usize;
            if side.buf.len() < target {
                continue;
            }
            let rest = h.payload_len - (target - h.len) as u64;
            if rest > 0 {
                side.skip = rest;
                side.skipping = Some(h);
                continue;
            }
            let frame = std::mem::take(&mut side.buf);
            self.frame(dir, h, &frame, out);
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // frames have no sync marker: the direction is lost after a gap
        let side = &mut self.sides[dir.index()];
        side.lost = true;
        side.buf = Vec::new();
        side.message = Vec::new();
        side.in_message = false;
    }

    fn on_close(&mut self, _out: &mut Vec<AppRecord>) {}

    fn is_done(&self) -> bool {
        self.sides.iter().all(|s| s.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txs(out: &[AppRecord]) -> Vec<&TxInspect> {
        out.iter().filter_map(AppRecord::as_inspect).collect()
    }

    fn buf(t: &TxInspect, b: Buffer) -> &[u8] {
        t.bufs.iter().find(|(x, _)| *x == b).map(|(_, v)| v.as_slice()).unwrap_or_default()
    }

    fn int(t: &TxInspect, k: AppInt) -> Option<u64> {
        t.ints.iter().find(|(x, _)| *x == k).map(|(_, v)| *v)
    }

    fn masked(opcode_flags: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![opcode_flags, 0x80 | payload.len() as u8];
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn masked_client_frame_split_over_segments_gives_frames_payload_and_fields() {
        let f = masked(0x81, [1, 2, 3, 4], b"version,x");
        let mut p = WebsocketParser::default();
        let mut out = Vec::new();
        for part in f.chunks(3) {
            p.on_data(Direction::ToServer, part, &mut out);
        }
        let t = txs(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(buf(t[0], Buffer::WebsocketPayload), b"version,x");
        assert_eq!(buf(t[0], Buffer::WebsocketFramePdu), f.as_slice());
        assert_eq!(buf(t[0], Buffer::WebsocketFrameHeader), &f[..6]);
        assert_eq!(buf(t[0], Buffer::WebsocketFrameData), &f[6..]);
        assert_eq!(int(t[0], AppInt::WebsocketOpcode), Some(1));
        assert_eq!(int(t[0], AppInt::WebsocketFlags), Some(0x80));
        assert_eq!(int(t[0], AppInt::WebsocketMask), Some(0x0102_0304));
    }

    #[test]
    fn several_frames_in_one_segment_and_a_fragmented_message() {
        let mut p = WebsocketParser::default();
        let mut out = Vec::new();
        // "hel" (text, not fin), ping (control, in between), "lo" (continuation, fin)
        let seg = [&[0x01, 3][..], b"hel", &[0x89, 0], &[0x80, 2], b"lo"].concat();
        p.on_data(Direction::ToClient, &seg, &mut out);
        let t = txs(&out);
        assert_eq!(t.len(), 3);
        assert_eq!(buf(t[0], Buffer::WebsocketPayload), b"");
        assert_eq!(int(t[1], AppInt::WebsocketOpcode), Some(9));
        assert_eq!(buf(t[2], Buffer::WebsocketPayload), b"hello");
        assert_eq!(int(t[2], AppInt::WebsocketMask), None);
    }

    #[test]
    fn compressed_messages_inflate_with_context_takeover() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut c = Compress::new(Compression::default(), false);
        let mut frames = Vec::new();
        for msg in [&b"TOGGLE=1234567890"[..], b"TOGGLE=1234567890"] {
            let mut z = Vec::with_capacity(256);
            c.compress_vec(msg, &mut z, FlushCompress::Sync).unwrap();
            assert!(z.ends_with(&[0, 0, 0xff, 0xff]));
            z.truncate(z.len() - 4);
            frames.extend([0xc1, z.len() as u8]);
            frames.extend(z);
        }
        let mut p = WebsocketParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToClient, &frames, &mut out);
        let t = txs(&out);
        assert_eq!(t.len(), 2);
        for t in t {
            assert_eq!(buf(t, Buffer::WebsocketPayload), b"TOGGLE=1234567890");
            assert_eq!(int(t, AppInt::WebsocketFlags), Some(0xc0));
        }
    }

    #[test]
    fn large_frames_keep_a_bounded_payload_and_the_next_frame_follows() {
        let mut f = vec![0x82, 127];
        f.extend(((MAX_PAYLOAD + 10) as u64).to_be_bytes());
        f.extend(std::iter::repeat_n(b'a', MAX_PAYLOAD + 10));
        f.extend([0x81, 1, b'z']);
        let mut p = WebsocketParser::default();
        let mut out = Vec::new();
        for part in f.chunks(1000) {
            p.on_data(Direction::ToClient, part, &mut out);
        }
        let t = txs(&out);
        assert_eq!(t.len(), 2);
        assert_eq!(buf(t[0], Buffer::WebsocketPayload).len(), MAX_PAYLOAD);
        assert_eq!(buf(t[1], Buffer::WebsocketPayload), b"z");
    }

    #[test]
    fn truncated_garbage_and_bad_deflate_never_panic() {
        let mut p = WebsocketParser::default();
        let mut out = Vec::new();
        for d in [&[0xff][..], &[0x7f, 0xff, 0xff], &[0xc1, 3, 1, 2, 3], &[0x81, 126, 0]] {
            p.on_data(Direction::ToServer, d, &mut out);
        }
        p.on_gap(Direction::ToServer, 10, &mut out);
        p.on_data(Direction::ToServer, &[0x81, 0], &mut out);
        assert_eq!(parse_header(&[0x81]), None);
        assert_eq!(parse_header(&[0x81, 0xfe, 0]), None);
        assert_eq!(parse_flags("fin,!comp"), Ok((0xc0, 0x80)));
        assert!(parse_flags("fin,fin").is_err());
        assert_eq!(opcode_from_name("text"), Some(1));
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::super::http::HttpParser;
    use super::super::{Parser, upgrade_to_websocket};
    use super::*;

    #[test]
    fn a_101_with_upgrade_websocket_hands_the_rest_of_the_segment_to_the_websocket_parser() {
        let mut h = HttpParser::new();
        let mut out = Vec::new();
        h.on_data(Direction::ToServer, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", &mut out);
        h.on_data(Direction::ToClient, b"HTTP/1.1 101 Switching\r\nUpgrade: WebSocket\r\n\r\n\x81\x02hi", &mut out);
        let mut parser = Some(Parser::Http(Box::new(h)));
        let mut proto = AppProto::Http;
        out.clear();
        upgrade_to_websocket(&mut parser, &mut proto, &mut out);
        assert_eq!(proto, AppProto::Websocket);
        let Some(Parser::Websocket(ws)) = &parser else { panic!("not upgraded") };
        // the upgrade's HTTP transaction is still there for its inspection
        assert!(ws.h1_tx_data(0).is_some_and(|d| d.response_line.starts_with(b"HTTP/1.1 101")));
        let AppRecord::Inspect(t) = &out[0] else { panic!("no frame") };
        assert!(t.bufs.contains(&(Buffer::WebsocketPayload, b"hi".to_vec())));

        // an h2c or other upgrade is not WebSocket
        let mut h = HttpParser::new();
        h.on_data(Direction::ToServer, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
        h.on_data(Direction::ToClient, b"HTTP/1.1 101 Switching\r\nUpgrade: foo\r\n\r\n", &mut out);
        let mut parser = Some(Parser::Http(Box::new(h)));
        let mut proto = AppProto::Http;
        upgrade_to_websocket(&mut parser, &mut proto, &mut out);
        assert_eq!(proto, AppProto::Http);
    }
}
