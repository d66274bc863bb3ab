//! Telnet (RFC 854): the stream of each direction split into control sequences (`IAC` commands
//! and option negotiations, `IAC SB ... IAC SE` subnegotiations) and data (up to a line end, the
//! next `IAC`, or the end of what arrived). Each piece is inspected as a transaction of its
//! direction with its frame (`frame:telnet.ctl` or `frame:telnet.data`), as Suricata's telnet
//! parser creates them.

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction};
use crate::detect::Buffer;

const IAC: u8 = 0xff;
const SB: u8 = 0xfa;
const SE: u8 = 0xf0;
/// Longest subnegotiation waited for; past it the direction is given up.
const MAX_SUBNEG: usize = 4096;

/// Whether `d` starts like a telnet stream: an option negotiation (`IAC WILL/WONT/DO/DONT
/// <option>`) or a subnegotiation (`IAC SB <option>`).
pub fn probe(d: &[u8]) -> Option<bool> {
    match d {
        [] | [IAC] | [IAC, 0xfa..=0xfe] => None,
        [IAC, 0xfa..=0xfe, _, ..] => Some(true),
        _ => Some(false),
    }
}

/// The piece at the start of `d`: its length and whether it is control; `None` while an
/// `IAC` sequence is incomplete.
fn piece(d: &[u8]) -> Option<(usize, bool)> {
    if d.first() == Some(&IAC) {
        return match *d.get(1)? {
            // subnegotiation: up to IAC SE
            SB => d.windows(2).skip(2).position(|w| w == [IAC, SE]).map(|p| (p + 4, true)),
            // option negotiation: IAC cmd option
            0xfb..=0xfe => d.get(2).map(|_| (3, true)),
            // an escaped 0xff is data
            IAC => Some((2, false)),
            _ => Some((2, true)),
        };
    }
    let end = d.iter().position(|&b| b == IAC).unwrap_or(d.len());
    let line = d[..end].windows(2).position(|w| w == b"\r\n").map_or(end, |p| p + 2);
    Some((line, false))
}

#[derive(Default)]
struct Side {
    /// An incomplete control sequence.
    buf: Vec<u8>,
    lost: bool,
}

/// The telnet parser of one flow.
#[derive(Default)]
pub struct TelnetParser {
    sides: [Side; 2],
}

impl TelnetParser {
    fn parse(dir: Direction, d: &[u8], out: &mut Vec<AppRecord>) -> usize {
        let mut pos = 0;
        while pos < d.len() {
            let Some((n, ctl)) = piece(&d[pos..]) else { break };
            let mut t = TxInspect::new(AppProto::Telnet, dir);
            let frame = if ctl { Buffer::TelnetFrameCtl } else { Buffer::TelnetFrameData };
            t.bufs.push((frame, d[pos..pos + n].to_vec()));
            out.push(AppRecord::Inspect(Box::new(t)));
            pos += n;
        }
        pos
    }
}

impl AppParser for TelnetParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let side = &mut self.sides[dir.index()];
        if side.lost {
            return;
        }
        let used;
        if side.buf.is_empty() {
            used = Self::parse(dir, data, out);
            side.buf.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut side.buf);
            buf.extend_from_slice(data);
            used = Self::parse(dir, &buf, out);
            buf.drain(..used);
            side.buf = buf;
        }
        if side.buf.len() > MAX_SUBNEG {
            metrics::counter!("soc_sensor_telnet_lost_total").increment(1);
            side.lost = true;
            side.buf = Vec::new();
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // data resumes anywhere: an incomplete sequence is dropped
        self.sides[dir.index()].buf.clear();
    }

    fn on_close(&mut self, _out: &mut Vec<AppRecord>) {}

    fn is_done(&self) -> bool {
        self.sides.iter().all(|s| s.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(out: &[AppRecord]) -> Vec<(Buffer, Vec<u8>)> {
        out.iter()
            .filter_map(|r| match r {
                AppRecord::Inspect(t) => t.bufs.first().cloned(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn control_sequences_and_data_lines_become_frames() {
        let mut p = TelnetParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"\xff\xfd\x03\xff\xfa\x1f\x00P", &mut out);
        p.on_data(Direction::ToServer, b"\x00 \xff\xf0ls -a\r\nexit\r\n\xff\xf4", &mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 5);
        assert_eq!(f[0], (Buffer::TelnetFrameCtl, b"\xff\xfd\x03".to_vec()));
        assert_eq!(f[1], (Buffer::TelnetFrameCtl, b"\xff\xfa\x1f\x00P\x00 \xff\xf0".to_vec()));
        assert_eq!(f[2], (Buffer::TelnetFrameData, b"ls -a\r\n".to_vec()));
        assert_eq!(f[3], (Buffer::TelnetFrameData, b"exit\r\n".to_vec()));
        assert_eq!(f[4], (Buffer::TelnetFrameCtl, b"\xff\xf4".to_vec()));
    }

    #[test]
    fn probe_needs_an_option_negotiation_and_endless_subnegotiations_are_given_up() {
        assert_eq!(probe(b"\xff\xfd\x03"), Some(true));
        assert_eq!(probe(b"\xff\xfd"), None);
        assert_eq!(probe(b"\xffSMB"), Some(false));
        assert_eq!(probe(b"login: "), Some(false));
        let mut p = TelnetParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToClient, b"\xff\xfa\x01", &mut out);
        p.on_data(Direction::ToClient, &[0u8; MAX_SUBNEG + 1], &mut out);
        assert!(p.sides[1].lost);
        assert!(frames(&out).is_empty());
        p.on_data(Direction::ToServer, b"\xff", &mut out);
        p.on_gap(Direction::ToServer, 3, &mut out);
        p.on_data(Direction::ToServer, b"x", &mut out);
        assert_eq!(frames(&out), [(Buffer::TelnetFrameData, b"x".to_vec())]);
    }
}
