//! DNP3 over TCP: link-layer frames (CRC-checked) read from the reassembled stream of each
//! direction, transport reassembly of application fragments, the object headers of a fragment,
//! and the fields the `dnp3_func`, `dnp3_obj` and `dnp3_data` keywords inspect.
//!
//! The `dnp3_data` buffer is the application fragment (the user data of its frames without
//! the CRCs and without the transport header), as Suricata's. Each fragment is one side of a
//! transaction ([`TxInspect`]), inspected like SMB's at the next packet of its direction.
//!
//! App-layer events (Suricata's names): `dnp3.bad_link_crc` (the parser then stops on the
//! flow), `dnp3.len_too_small` (a link length below 5 stops it too; a user data frame too
//! short for its headers is skipped), `dnp3.bad_transport_crc` (the frame is skipped),
//! `dnp3.too_long_reassembly` (a fragment longer than [`MAX_FRAGMENT`] is dropped) and
//! `dnp3.flooded` (more than [`FLOOD_COUNT`] requests without a response).

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction};
use crate::detect::{AppEvent, AppInt, Buffer};

/// Largest application fragment reassembled (Suricata's bound: 63 transport segments of 255
/// bytes); a longer one raises `dnp3.too_long_reassembly` and is dropped.
pub const MAX_FRAGMENT: usize = 63 * 255;
/// Requests without a response above which `dnp3.flooded` is raised (Suricata's default).
pub const FLOOD_COUNT: u32 = 32;
/// Link header: start bytes, length, control, destination, source, CRC.
const HEADER_LEN: usize = 10;
/// Bytes kept per direction waiting for a frame to complete (a frame is at most 292 bytes).
const MAX_PENDING: usize = 4096;
/// Object headers read per fragment at most.
const MAX_OBJECTS: usize = 256;

/// DNP3's CRC-16 (polynomial 0x3D65, reflected), as stored on the wire.
fn crc(data: &[u8]) -> u16 {
    let mut c: u16 = 0;
    for &b in data {
        c ^= u16::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xa6bc } else { c >> 1 };
        }
    }
    !c
}

fn crc_ok(block: &[u8], stored: &[u8]) -> bool {
    stored.len() == 2 && crc(block).to_le_bytes() == [stored[0], stored[1]]
}

/// Whether `data` starts with a DNP3 link header whose CRC is valid (protocol detection).
pub fn probe(data: &[u8]) -> Option<bool> {
    match data.len() {
        0 => None,
        1 if data[0] == 0x05 => None,
        n if n < HEADER_LEN && data.starts_with(&[0x05, 0x64]) => None,
        n if n < HEADER_LEN => Some(false),
        _ => Some(data[0] == 0x05 && data[1] == 0x64 && data[2] >= 5 && crc_ok(&data[..8], &data[8..10])),
    }
}

/// What the frame at the start of a buffer is.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Not all of it is there yet.
    Incomplete,
    /// Not a frame start, a bad header CRC or a length below 5: nothing more can be read.
    Fatal(Option<AppEvent>),
    /// A frame of `len` bytes to skip, with an event or not.
    Skip(usize, Option<AppEvent>),
    /// A user data frame: its user data (CRCs removed) and length.
    UserData(Vec<u8>, usize),
}

fn frame(data: &[u8], response: bool) -> Frame {
    let Some(hdr) = data.get(..HEADER_LEN) else { return Frame::Incomplete };
    if hdr[0] != 0x05 || hdr[1] != 0x64 {
        return Frame::Fatal(None);
    }
    if !crc_ok(&hdr[..8], &hdr[8..]) {
        return Frame::Fatal(Some(AppEvent::Dnp3BadLinkCrc));
    }
    if hdr[2] < 5 {
        return Frame::Fatal(Some(AppEvent::Dnp3LenTooSmall));
    }
    let user_len = usize::from(hdr[2]) - 5;
    let total = HEADER_LEN + user_len + 2 * user_len.div_ceil(16);
    let Some(body) = data.get(HEADER_LEN..total) else { return Frame::Incomplete };
    // user data: primary frame (PRM), function 3 (confirmed) or 4 (unconfirmed user data)
    let ctrl = hdr[3];
    if ctrl & 0x40 == 0 || !matches!(ctrl & 0x0f, 3 | 4) {
        return Frame::Skip(total, None);
    }
    // transport header, application control and function code (and IIN for a response)
    if user_len < if response { 5 } else { 3 } {
        return Frame::Skip(total, Some(AppEvent::Dnp3LenTooSmall));
    }
    let mut user = Vec::with_capacity(user_len);
    for chunk in body.chunks(18) {
        let (block, stored) = chunk.split_at(chunk.len().saturating_sub(2));
        if !crc_ok(block, stored) {
            return Frame::Skip(total, Some(AppEvent::Dnp3BadTransportCrc));
        }
        user.extend_from_slice(block);
    }
    Frame::UserData(user, total)
}

/// DNP3 parser of one connection.
#[derive(Debug, Default)]
pub struct Dnp3Parser {
    buf: [Vec<u8>; 2],
    frag: [Option<Vec<u8>>; 2],
    /// A direction the parser gave up on (bad link header, gap).
    stopped: [bool; 2],
    unreplied: u32,
    deferred: Vec<TxInspect>,
}

impl Dnp3Parser {
    /// The transaction sides of direction `dir` completed by earlier packets (see
    /// [`super::Parser::take_deferred`]).
    pub fn take_deferred(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        super::dcerpc::take_deferred(&mut self.deferred, dir, out);
    }

    fn event(&mut self, dir: Direction, e: AppEvent) {
        let mut t = TxInspect::new(AppProto::Dnp3, dir);
        t.app_events = e.bit();
        self.deferred.push(t);
    }

    fn fragment(&mut self, dir: Direction, fragment: Vec<u8>) {
        let mut t = TxInspect::new(AppProto::Dnp3, dir);
        let func = function_code(&fragment);
        if let Some(f) = func {
            t.ints.push((AppInt::Dnp3Func, u64::from(f)));
        }
        let response = dir == Direction::ToClient;
        for (g, v) in objects(&fragment, response) {
            t.ints.push((AppInt::Dnp3Obj, u64::from(g) << 8 | u64::from(v)));
        }
        if dir == Direction::ToServer {
            self.unreplied = self.unreplied.saturating_add(1);
            if self.unreplied > FLOOD_COUNT {
                t.app_events |= AppEvent::Dnp3Flooded.bit();
            }
        } else if func == Some(129) {
            self.unreplied = self.unreplied.saturating_sub(1);
        }
        t.bufs.push((Buffer::Dnp3Data, fragment));
        self.deferred.push(t);
    }
}

impl AppParser for Dnp3Parser {
    fn on_data(&mut self, dir: Direction, data: &[u8], _out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.stopped[d] {
            return;
        }
        self.buf[d].extend_from_slice(data);
        let mut buf = std::mem::take(&mut self.buf[d]);
        let mut at = 0;
        while at < buf.len() {
            match frame(&buf[at..], dir == Direction::ToClient) {
                Frame::Incomplete => break,
                Frame::Fatal(e) => {
                    if let Some(e) = e {
                        self.event(dir, e);
                    }
                    // as Suricata's parser error: the flow is not parsed any more
                    self.stopped = [true; 2];
                    at = buf.len();
                }
                Frame::Skip(len, e) => {
                    if let Some(e) = e {
                        self.event(dir, e);
                    }
                    at += len;
                }
                Frame::UserData(user, len) => {
                    at += len;
                    let Some((&th, app)) = user.split_first() else { continue };
                    let (fin, fir) = (th & 0x80 != 0, th & 0x40 != 0);
                    if fir {
                        self.frag[d] = Some(Vec::new());
                    }
                    let Some(cur) = self.frag[d].as_mut() else { continue };
                    if cur.len() + app.len() > MAX_FRAGMENT {
                        self.frag[d] = None;
                        self.event(dir, AppEvent::Dnp3TooLongReassembly);
                        continue;
                    }
                    cur.extend_from_slice(app);
                    if fin && let Some(done) = self.frag[d].take() {
                        self.fragment(dir, done);
                    }
                }
            }
        }
        if buf.len().saturating_sub(at) > MAX_PENDING {
            self.stopped[d] = true;
        } else {
            // (the rest kept in place, as the LDAP parser does)
            buf.drain(..at.min(buf.len()));
            self.buf[d] = buf;
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // frames cannot be found again reliably after lost bytes
        self.stopped[dir.index()] = true;
        self.buf[dir.index()].clear();
        self.frag[dir.index()] = None;
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        self.take_deferred(Direction::ToServer, out);
        self.take_deferred(Direction::ToClient, out);
    }

    fn is_done(&self) -> bool {
        // the sensor takes what is deferred when the parser is done
        self.stopped[0] && self.stopped[1]
    }
}

/// Size of one point of an object: bytes, or bits for the packed ones; `None`: unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    Bytes(usize),
    Bits(usize),
    /// No data (class objects, `g60`).
    None,
}

fn object_size(group: u8, var: u8) -> Option<Size> {
    use Size::{Bits, Bytes};
    Some(match (group, var) {
        (1, 1) | (10, 1) | (12, 3) | (80, 1) => Bits(1),
        (3, 1) => Bits(2),
        (1, 2) | (2, 1) | (3, 2) | (4, 1) | (10, 2) => Bytes(1),
        (2, 2) | (4, 2) => Bytes(7),
        (2, 3) | (4, 3) => Bytes(3),
        (11, 1) | (13, 1) | (34, 1) | (52, 1) | (52, 2) => Bytes(2),
        (11, 2) | (13, 2) => Bytes(8),
        (12, 1) | (12, 2) => Bytes(11),
        (20, 1) | (20, 3) | (21, 1) | (21, 3) | (22, 1) | (22, 3) | (23, 1) | (23, 3) => Bytes(5),
        (20, 2) | (20, 4) | (21, 2) | (21, 4) | (22, 2) | (22, 4) | (23, 2) | (23, 4) => Bytes(3),
        (20, 5) | (20, 7) | (21, 9) | (21, 11) => Bytes(4),
        (20, 6) | (20, 8) | (21, 10) | (21, 12) => Bytes(2),
        (21, 5) | (21, 7) | (22, 5) | (22, 7) | (23, 5) | (23, 7) => Bytes(11),
        (21, 6) | (21, 8) | (22, 6) | (22, 8) | (23, 6) | (23, 8) => Bytes(9),
        (30, 1) | (30, 5) | (31, 1) | (31, 7) => Bytes(5),
        (30, 2) | (31, 2) => Bytes(3),
        (30, 3) | (31, 5) | (34, 2) | (34, 3) => Bytes(4),
        (30, 4) | (31, 6) => Bytes(2),
        (30, 6) | (31, 8) => Bytes(9),
        (31, 3) => Bytes(11),
        (31, 4) => Bytes(9),
        (32 | 33 | 42 | 43, 1) | (32 | 33 | 42 | 43, 5) => Bytes(5),
        (32 | 33 | 42 | 43, 2) => Bytes(3),
        (32 | 33 | 42 | 43, 3) | (32 | 33 | 42 | 43, 7) => Bytes(11),
        (32 | 33 | 42 | 43, 4) | (32 | 33 | 42 | 43, 6) => Bytes(9),
        (32 | 33 | 42 | 43, 8) => Bytes(15),
        (40, 1) | (40, 3) | (41, 1) | (41, 3) => Bytes(5),
        (40, 2) | (41, 2) => Bytes(3),
        (40, 4) | (41, 4) => Bytes(9),
        (50, 1) | (50, 3) | (51, 1) | (51, 2) => Bytes(6),
        (50, 2) => Bytes(10),
        (50, 4) => Bytes(11),
        (60, 1..=4) => Size::None,
        (110 | 111, v) => Bytes(usize::from(v)),
        _ => return None,
    })
}

fn le(d: &[u8]) -> usize {
    d.iter().rev().fold(0usize, |a, &b| (a << 8) | usize::from(b))
}

/// The (group, variation) of the object headers of an application fragment, read until the
/// end or an object whose size is not known. Requests that only name objects (READ, freeze,
/// class assignments...) carry no object data.
pub fn objects(fragment: &[u8], response: bool) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let Some(&func) = fragment.get(1) else { return out };
    let headers_only = !response && !matches!(func, 2..=6 | 24 | 25 | 27 | 29 | 31 | 32 | 33);
    let mut at = if response { 4 } else { 2 };
    while out.len() < MAX_OBJECTS {
        let Some(h) = fragment.get(at..at + 3) else { break };
        let (group, var, qual) = (h[0], h[1], h[2]);
        out.push((group, var));
        at += 3;
        let prefix = usize::from((qual >> 4) & 7);
        let range = qual & 0x0f;
        let count = match range {
            0..=5 => {
                let w = [1, 2, 4][usize::from(range % 3)];
                let (Some(a), Some(b)) = (fragment.get(at..at + w), fragment.get(at + w..at + 2 * w)) else { break };
                at += 2 * w;
                let (a, b) = (le(a), le(b));
                if b < a {
                    break;
                }
                b - a + 1
            }
            6 => 0,
            7..=9 | 0x0b => {
                let w = match range {
                    7 | 0x0b => 1,
                    8 => 2,
                    _ => 4,
                };
                let Some(c) = fragment.get(at..at + w) else { break };
                at += w;
                le(c)
            }
            _ => break,
        };
        if headers_only || count == 0 {
            continue;
        }
        let prefix_len = match prefix {
            0 => 0,
            1 | 4 => 1,
            2 | 5 => 2,
            3 | 6 => 4,
            _ => break,
        };
        if prefix >= 4 {
            // each point: its size, then that many bytes
            for _ in 0..count {
                let Some(n) = fragment.get(at..at + prefix_len) else { return out };
                at = at.saturating_add(prefix_len).saturating_add(le(n));
            }
            continue;
        }
        let Some(size) = object_size(group, var) else { break };
        let data = match size {
            Size::None => 0,
            Size::Bits(bits) if prefix_len == 0 => count.saturating_mul(bits).div_ceil(8),
            Size::Bits(_) => count.saturating_mul(prefix_len + 1),
            Size::Bytes(n) => count.saturating_mul(prefix_len + n),
        };
        at = at.saturating_add(data);
    }
    out
}

/// The function code of an application fragment (after its control byte).
pub fn function_code(fragment: &[u8]) -> Option<u8> {
    fragment.get(1).copied()
}

/// `dnp3_func` names.
pub fn function_from_name(name: &str) -> Option<u8> {
    const NAMES: &[(&str, u8)] = &[
        ("confirm", 0),
        ("read", 1),
        ("write", 2),
        ("select", 3),
        ("operate", 4),
        ("direct_operate", 5),
        ("direct_operate_nr", 6),
        ("immed_freeze", 7),
        ("immed_freeze_nr", 8),
        ("freeze_clear", 9),
        ("freeze_clear_nr", 10),
        ("freeze_at_time", 11),
        ("freeze_at_time_nr", 12),
        ("cold_restart", 13),
        ("warm_restart", 14),
        ("initialize_data", 15),
        ("initialize_appl", 16),
        ("start_appl", 17),
        ("stop_appl", 18),
        ("save_config", 19),
        ("enable_unsolicited", 20),
        ("disable_unsolicited", 21),
        ("assign_class", 22),
        ("delay_measure", 23),
        ("record_current_time", 24),
        ("open_file", 25),
        ("close_file", 26),
        ("delete_file", 27),
        ("get_file_info", 28),
        ("authenticate_file", 29),
        ("abort_file", 30),
        ("activate_config", 31),
        ("authenticate_req", 32),
        ("authenticate_err", 33),
        ("response", 129),
        ("unsolicited_response", 130),
        ("authenticate_resp", 131),
    ];
    NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link frame carrying `user` data (CRCs computed).
    fn link(user: &[u8]) -> Vec<u8> {
        let mut hdr = vec![0x05, 0x64, (user.len() + 5) as u8, 0x44, 1, 0, 10, 0];
        hdr.extend(crc(&hdr).to_le_bytes());
        for block in user.chunks(16) {
            hdr.extend_from_slice(block);
            hdr.extend(crc(block).to_le_bytes());
        }
        hdr
    }

    fn feed(p: &mut Dnp3Parser, dir: Direction, data: &[u8]) -> Vec<TxInspect> {
        let mut out = Vec::new();
        p.on_data(dir, data, &mut out);
        p.take_deferred(dir, &mut out);
        out.into_iter().filter_map(AppRecord::into_inspect).collect()
    }

    fn data(t: &TxInspect) -> &[u8] {
        t.bufs.iter().find(|(b, _)| *b == Buffer::Dnp3Data).map(|(_, v)| v.as_slice()).unwrap_or_default()
    }

    #[test]
    fn a_captured_frame_passes_its_crcs() {
        let f = [0x05, 0x64, 0x0a, 0x44, 0x01, 0x00, 0x0a, 0x00, 0x6e, 0x25, 0xc0, 0xf0, 0x82, 0x80, 0x00, 0x6b, 0x7d];
        assert_eq!(probe(&f), Some(true));
        assert_eq!(probe(&f[..4]), None);
        assert_eq!(probe(b"GET / HTTP/1.1"), Some(false));
        let mut p = Dnp3Parser::default();
        let txs = feed(&mut p, Direction::ToClient, &f);
        assert_eq!(txs.len(), 1);
        assert_eq!(data(&txs[0]), &[0xf0, 0x82, 0x80, 0x00]);
        assert!(txs[0].ints.contains(&(AppInt::Dnp3Func, 130)));
        let mut bad = f;
        bad[12] ^= 1;
        let txs = feed(&mut Dnp3Parser::default(), Direction::ToClient, &bad);
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].app_events, AppEvent::Dnp3BadTransportCrc.bit());
        let mut bad = f;
        bad[4] ^= 1;
        let mut p = Dnp3Parser::default();
        let txs = feed(&mut p, Direction::ToClient, &bad);
        assert_eq!(txs[0].app_events, AppEvent::Dnp3BadLinkCrc.bit());
        // the flow is given up on
        assert!(feed(&mut p, Direction::ToClient, &f).is_empty());
    }

    #[test]
    fn fragments_are_reassembled_over_frames_split_anywhere() {
        let app: Vec<u8> = (0..40u8).collect();
        let first = link(&[&[0x40][..], &app[..30]].concat());
        let last = link(&[&[0x81][..], &app[30..]].concat());
        let stream = [first.clone(), last.clone()].concat();
        for cut in 0..stream.len() {
            let mut p = Dnp3Parser::default();
            let mut txs = feed(&mut p, Direction::ToServer, &stream[..cut]);
            txs.extend(feed(&mut p, Direction::ToServer, &stream[cut..]));
            assert_eq!(txs.len(), 1, "cut at {cut}");
            assert_eq!(data(&txs[0]), app.as_slice());
        }
        // a final frame without a first one gives nothing
        assert!(feed(&mut Dnp3Parser::default(), Direction::ToServer, &last).is_empty());
        assert_eq!(function_from_name("unsolicited_response"), Some(130));
    }

    #[test]
    fn too_long_fragments_and_floods_raise_events() {
        let mut p = Dnp3Parser::default();
        let block = [0u8; 249];
        let mut events = 0;
        for i in 0..65u8 {
            let th = if i == 0 { 0x40 } else { i & 0x3f };
            for t in feed(&mut p, Direction::ToServer, &link(&[&[th][..], &block[..]].concat())) {
                events |= t.app_events;
            }
        }
        assert_eq!(events, AppEvent::Dnp3TooLongReassembly.bit());
        let mut p = Dnp3Parser::default();
        let req = link(&[0xc0, 0xc0, 0x01, 0x3c, 0x02, 0x06]);
        let flooded: Vec<bool> = (0..34)
            .flat_map(|_| feed(&mut p, Direction::ToServer, &req))
            .map(|t| t.app_events & AppEvent::Dnp3Flooded.bit() != 0)
            .collect();
        assert_eq!(flooded.iter().filter(|f| **f).count(), 2);
        assert!(flooded[32] && !flooded[31]);
    }

    #[test]
    fn object_headers_are_read_past_object_data() {
        // response: IIN, g1v2 points 0..9 (10 bytes), g22v1 count 1 with 2-byte index
        let mut frag = vec![0xc0, 0x81, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x09];
        frag.extend([0u8; 10]);
        frag.extend([0x16, 0x01, 0x28, 0x01, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
        assert_eq!(objects(&frag, true), vec![(1, 2), (22, 1)]);
        // a READ request names objects without data
        let read = [0xc0, 0x01, 0x3c, 0x02, 0x06, 0x16, 0x01, 0x07, 0x05, 0x01, 0x02, 0x00, 0x00, 0x03];
        assert_eq!(objects(&read, false), vec![(60, 2), (22, 1), (1, 2)]);
        // truncated or unknown: no panic, headers so far
        for n in 0..frag.len() {
            let _ = objects(&frag[..n], true);
        }
        assert_eq!(objects(&[0xc0, 0x81, 0, 0, 0xee, 0x01, 0x00, 0x00, 0x01, 0xff, 0xff], true), vec![(0xee, 1)]);
    }
}
