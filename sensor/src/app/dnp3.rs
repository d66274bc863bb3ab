//! DNP3 over TCP: link-layer frames (CRC-checked), transport reassembly of application
//! fragments, and the fields the `dnp3_func` and `dnp3_data` keywords inspect.
//!
//! The `dnp3_data` buffer is the application fragment (the user data of its frames without
//! the CRCs and without the transport header), as Suricata's.

use std::cell::RefCell;

/// DNP3's registered port.
pub const PORT: u16 = 20000;
/// Largest application fragment reassembled: longer ones are dropped.
const MAX_FRAGMENT: usize = 64 * 1024;
/// Link header: start bytes, length, control, destination, source, CRC.
const HEADER_LEN: usize = 10;

/// Per-flow reassembly of the application fragment of each direction.
#[derive(Debug, Default)]
pub struct Dnp3FlowState {
    frag: [RefCell<Option<Vec<u8>>>; 2],
}

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

/// The user data of the link frame at the start of `data` (CRCs checked and removed) and the
/// frame's length; `None` when it is not a complete, valid frame.
fn frame(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let hdr = data.get(..HEADER_LEN)?;
    if hdr[0] != 0x05 || hdr[1] != 0x64 || hdr[2] < 5 || !crc_ok(&hdr[..8], &hdr[8..]) {
        return None;
    }
    let user_len = usize::from(hdr[2]) - 5;
    let total = HEADER_LEN + user_len + 2 * user_len.div_ceil(16);
    let body = data.get(HEADER_LEN..total)?;
    let mut user = Vec::with_capacity(user_len);
    for chunk in body.chunks(18) {
        let (block, stored) = chunk.split_at(chunk.len().checked_sub(2)?);
        if !crc_ok(block, stored) {
            return None;
        }
        user.extend_from_slice(block);
    }
    Some((user, total))
}

/// Reads the link frames at the start of a TCP segment of direction `dir` (0 to server) and
/// returns the application fragments they complete.
pub fn parse_frames(mut data: &[u8], dir: usize, state: &Dnp3FlowState) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(slot) = state.frag.get(dir) else { return out };
    let mut frag = slot.borrow_mut();
    while let Some((user, len)) = frame(data) {
        data = &data[len..];
        let Some((&th, app)) = user.split_first() else { continue };
        let (fin, fir) = (th & 0x80 != 0, th & 0x40 != 0);
        if fir {
            *frag = Some(Vec::new());
        }
        let Some(buf) = frag.as_mut() else { continue };
        if buf.len() + app.len() > MAX_FRAGMENT {
            *frag = None;
            continue;
        }
        buf.extend_from_slice(app);
        if fin && let Some(done) = frag.take() {
            out.push(done);
        }
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

    #[test]
    fn a_captured_frame_passes_its_crcs() {
        let f = [0x05, 0x64, 0x0a, 0x44, 0x01, 0x00, 0x0a, 0x00, 0x6e, 0x25, 0xc0, 0xf0, 0x82, 0x80, 0x00, 0x6b, 0x7d];
        let st = Dnp3FlowState::default();
        let frags = parse_frames(&f, 1, &st);
        assert_eq!(frags, vec![vec![0xf0, 0x82, 0x80, 0x00]]);
        assert_eq!(function_code(&frags[0]), Some(130));
        let mut bad = f;
        bad[12] ^= 1;
        assert!(parse_frames(&bad, 1, &st).is_empty());
    }

    #[test]
    fn fragments_are_reassembled_over_frames_without_crcs() {
        let st = Dnp3FlowState::default();
        let app: Vec<u8> = (0..40u8).collect();
        let first = link(&[&[0x40][..], &app[..30]].concat());
        let last = link(&[&[0x81][..], &app[30..]].concat());
        assert!(parse_frames(&first, 0, &st).is_empty());
        assert_eq!(parse_frames(&last, 0, &st), vec![app.clone()]);
        // a final frame without a first one gives nothing; truncated frames neither
        assert!(parse_frames(&last, 0, &st).is_empty());
        for n in 0..first.len() {
            assert!(parse_frames(&first[..n], 1, &st).is_empty());
        }
        assert_eq!(function_from_name("unsolicited_response"), Some(130));
    }
}
