//! SSH (RFC 4253) up to the key exchange: the identification line, then the binary packets
//! (records) of each direction until its `SSH_MSG_NEWKEYS` (what follows is encrypted).
//!
//! Each record is inspected as a transaction of its direction with its frames
//! (`frame:ssh.record.pdu`: the whole record, `.hdr`: length, padding length and message code,
//! `.data`: the rest), as Suricata's SSH parser creates them. The identification line and a
//! key-exchange init contained in one segment are read from the packet (see
//! [`crate::alerts`]); a key-exchange init the stream had to reassemble gives its hassh here.
//!
//! The identification lines are logged as Suricata's EVE `ssh` record (client and server
//! protocol and software versions), once both sides are past the key exchange or the flow
//! ends (no `hassh` object: Suricata logs it only when configured).

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction};
use crate::detect::Buffer;

/// Longest identification line waited for (RFC 4253: 255 bytes; Suricata accepts longer).
const MAX_BANNER: usize = 8192;
/// Largest record read (RFC 4253 asks implementations to take packets of 35,000 bytes).
const MAX_RECORD: usize = 256 * 1024;
/// Length, padding length and message code.
pub const RECORD_HEADER_LEN: usize = 6;
const MSG_KEXINIT: u8 = 20;
const MSG_NEWKEYS: u8 = 21;

#[derive(Default)]
struct Side {
    banner_done: bool,
    /// Bytes of an incomplete line or record.
    buf: Vec<u8>,
    /// After NEWKEYS, a gap or bad framing: nothing more is read.
    finished: bool,
}

/// The SSH parser of one flow.
#[derive(Default)]
pub struct SshParser {
    sides: [Side; 2],
    /// Each side's identification: protocol and software versions (EVE `ssh.client`/`server`).
    banners: [Option<(String, String)>; 2],
    /// The EVE `ssh` record was written.
    logged: bool,
}

/// The protocol and software versions of an identification line (`SSH-2.0-OpenSSH_8.9p1 ...`);
/// `None` when the line is not one.
fn identification(line: &[u8]) -> Option<(String, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"SSH-")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let software = &rest[dash + 1..];
    let software = &software[..software.iter().position(|&b| b == b' ').unwrap_or(software.len())];
    Some((String::from_utf8_lossy(&rest[..dash]).into_owned(), String::from_utf8_lossy(software).into_owned()))
}

impl SshParser {
    /// Writes the EVE `ssh` record once: when both sides are past the key exchange (or
    /// stopped), or at the end of the flow (`end`), if an identification was seen.
    fn log(&mut self, end: bool, out: &mut Vec<AppRecord>) {
        if self.logged || !(end || self.is_done()) || self.banners.iter().all(Option::is_none) {
            return;
        }
        self.logged = true;
        let mut o = serde_json::Map::new();
        for (name, b) in ["client", "server"].into_iter().zip(&self.banners) {
            if let Some((proto, software)) = b {
                o.insert(name.into(), serde_json::json!({"proto_version": proto, "software_version": software}));
            }
        }
        out.push(AppRecord::Log(Box::new(super::LogRecord::new("ssh", false, o))));
    }

    fn record(dir: Direction, rec: &[u8], reassembled: bool, out: &mut Vec<AppRecord>) {
        let mut t = TxInspect::new(AppProto::Ssh, dir);
        let hdr = rec.get(..RECORD_HEADER_LEN).unwrap_or(rec);
        t.bufs = vec![
            (Buffer::SshFramePdu, rec.to_vec()),
            (Buffer::SshFrameHdr, hdr.to_vec()),
            (Buffer::SshFrameData, rec.get(RECORD_HEADER_LEN..).unwrap_or_default().to_vec()),
        ];
        if reassembled
            && hdr.get(5) == Some(&MSG_KEXINIT)
            && let Some((string, hash)) = crate::alerts::ssh_kexinit_hassh(rec, dir == Direction::ToServer)
        {
            let (b_hash, b_string) = if dir == Direction::ToServer {
                (Buffer::SshHassh, Buffer::SshHasshString)
            } else {
                (Buffer::SshHasshServer, Buffer::SshHasshServerString)
            };
            t.bufs.push((b_hash, hash.into_bytes()));
            t.bufs.push((b_string, string));
        }
        out.push(AppRecord::Inspect(Box::new(t)));
    }

    /// Reads `input` (the carried-over bytes, the first `carried` of it, then the new chunk);
    /// returns how much was consumed.
    fn parse(&mut self, dir: Direction, input: &[u8], carried: usize, out: &mut Vec<AppRecord>) -> usize {
        let side = &mut self.sides[dir.index()];
        let mut pos = 0;
        // where the identification line that began the chunk ended
        let mut after_banner = None;
        if !side.banner_done {
            let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                if input.len() > MAX_BANNER {
                    side.finished = true;
                }
                return 0;
            };
            side.banner_done = true;
            pos = nl + 1;
            self.banners[dir.index()] = identification(&input[..pos]);
            if carried == 0 {
                after_banner = Some(pos);
            }
        }
        while !side.finished {
            let Some(len) = input.get(pos..pos + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                break;
            };
            if !(2..=MAX_RECORD).contains(&len) {
                metrics::counter!("soc_sensor_ssh_bad_records_total").increment(1);
                side.finished = true;
                break;
            }
            let Some(rec) = input.get(pos..pos + 4 + len) else { break };
            // a record the packet inspection could not read whole: one that did not start its
            // segment (or follow the identification line starting it)
            let seen_by_packet = pos >= carried && (pos == carried || after_banner == Some(pos));
            Self::record(dir, rec, !seen_by_packet, out);
            pos += 4 + len;
            if rec.get(5) == Some(&MSG_NEWKEYS) {
                side.finished = true;
            }
        }
        pos
    }
}

impl SshParser {
    fn data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.sides[d].finished {
            return;
        }
        if self.sides[d].buf.is_empty() {
            let used = self.parse(dir, data, 0, out);
            if !self.sides[d].finished {
                self.sides[d].buf.extend_from_slice(&data[used.min(data.len())..]);
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.sides[d].buf);
        let carried = buf.len();
        buf.extend_from_slice(data);
        let used = self.parse(dir, &buf, carried, out).min(buf.len());
        if !self.sides[d].finished {
            buf.drain(..used);
            self.sides[d].buf = buf;
        }
    }
}

impl AppParser for SshParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        self.data(dir, data, out);
        self.log(false, out);
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, out: &mut Vec<AppRecord>) {
        let side = &mut self.sides[dir.index()];
        side.finished = true;
        side.buf = Vec::new();
        self.log(false, out);
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        self.log(true, out);
    }

    fn is_done(&self) -> bool {
        self.sides.iter().all(|s| s.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txs(out: &[AppRecord]) -> Vec<&TxInspect> {
        out.iter().filter_map(AppRecord::as_inspect).collect()
    }

    fn buf(t: &TxInspect, b: Buffer) -> Option<&[u8]> {
        t.bufs.iter().find(|(x, _)| *x == b).map(|(_, v)| v.as_slice())
    }

    fn record(msg: u8, body: &[u8]) -> Vec<u8> {
        let pad = 4u8;
        let len = (2 + body.len() + pad as usize) as u32;
        [&len.to_be_bytes()[..], &[pad, msg], body, &[0; 4]].concat()
    }

    fn kexinit() -> Vec<u8> {
        let mut body = vec![7u8; 16];
        for list in [&b"diffie-hellman-group1-sha1"[..], b"ssh-rsa", b"aes128-cbc", b"aes128-cbc", b"hmac-sha1"] {
            body.extend((list.len() as u32).to_be_bytes());
            body.extend_from_slice(list);
        }
        for list in [&b"hmac-sha1"[..], b"none", b"none", b"", b""] {
            body.extend((list.len() as u32).to_be_bytes());
            body.extend_from_slice(list);
        }
        body.extend([0, 0, 0, 0, 0]);
        record(MSG_KEXINIT, &body)
    }

    fn logs(out: &[AppRecord]) -> Vec<serde_json::Value> {
        out.iter().filter_map(|r| r.as_log("ssh").map(|l| l.fields["ssh"].clone())).collect()
    }

    #[test]
    fn the_identifications_are_logged_once_as_a_suricata_ssh_record() {
        let mut p = SshParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n", &mut out);
        p.on_data(Direction::ToClient, b"SSH-1.99-Cisco-1.25\r\n", &mut out);
        assert!(logs(&out).is_empty(), "written once the key exchange is over");
        p.on_data(Direction::ToServer, &record(MSG_NEWKEYS, b""), &mut out);
        p.on_data(Direction::ToClient, &record(MSG_NEWKEYS, b""), &mut out);
        let want = serde_json::json!({
            "client": {"proto_version": "2.0", "software_version": "OpenSSH_8.9p1"},
            "server": {"proto_version": "1.99", "software_version": "Cisco-1.25"}});
        assert_eq!(logs(&out), vec![want]);
        p.on_close(&mut out);
        assert_eq!(logs(&out).len(), 1);
        // a flow ending before the key exchange: what was seen; not an identification: nothing
        let mut p = SshParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"SSH-2.0-x\n", &mut out);
        p.on_close(&mut out);
        assert_eq!(logs(&out), vec![serde_json::json!({"client": {"proto_version": "2.0", "software_version": "x"}})]);
        assert_eq!(identification(b"HTTP/1.1 200\r\n"), None);
    }

    #[test]
    fn records_give_frames_until_newkeys() {
        let mut p = SshParser::default();
        let mut out = Vec::new();
        let stream = [&b"SSH-2.0-x\r\n"[..], &record(30, b"abc"), &record(MSG_NEWKEYS, b""), b"encrypted..."].concat();
        p.on_data(Direction::ToServer, &stream, &mut out);
        let t = txs(&out);
        assert_eq!(t.len(), 2);
        assert_eq!(buf(t[0], Buffer::SshFrameHdr), Some(&[0, 0, 0, 9, 4, 30][..]));
        assert_eq!(buf(t[0], Buffer::SshFrameData), Some(&b"abc\0\0\0\0"[..]));
        assert_eq!(buf(t[1], Buffer::SshFramePdu).map(<[u8]>::len), Some(10));
        // the packet inspection reads the KEXINIT of a whole segment: not repeated here
        assert!(t.iter().all(|t| buf(t, Buffer::SshHassh).is_none()));
        assert!(!p.is_done());
        p.on_gap(Direction::ToClient, 5, &mut out);
        assert!(p.is_done());
    }

    #[test]
    fn a_kexinit_split_over_segments_gives_its_hassh() {
        let mut p = SshParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"SSH-1.99-Cisco\n", &mut out);
        let k = kexinit();
        for part in k.chunks(20) {
            p.on_data(Direction::ToServer, part, &mut out);
        }
        let t = txs(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(
            buf(t[0], Buffer::SshHasshString),
            Some(&b"diffie-hellman-group1-sha1;aes128-cbc;hmac-sha1;none"[..])
        );
        assert_eq!(buf(t[0], Buffer::SshHassh).map(<[u8]>::len), Some(32));
    }

    #[test]
    fn bad_lengths_and_truncation_stop_quietly() {
        let mut p = SshParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToClient, b"SSH-2.0-y\n\xff\xff\xff\xff\x00", &mut out);
        p.on_data(Direction::ToClient, b"more", &mut out);
        p.on_data(Direction::ToServer, b"SSH-2.0-y\n\x00\x00", &mut out);
        p.on_data(Direction::ToServer, b"\x00\x20\x04", &mut out);
        assert!(txs(&out).is_empty());
        let mut p = SshParser::default();
        p.on_data(Direction::ToServer, &[b'a'; MAX_BANNER + 1], &mut out);
        assert!(p.sides[0].finished);
    }
}
