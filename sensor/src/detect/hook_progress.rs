//! Per-direction progress of app-layer protocols whose firewall hooks are evaluated on every
//! packet as the handshake progresses (Suricata's transaction progress states): SSH and TLS.
//!
//! The trackers read only what the progress needs (the identification line, the binary
//! packet framing up to `SSH_MSG_NEWKEYS`) and stop reading once the last state is reached.
//! They run only for flows of their protocol when firewall rules use its hooks.

/// SSH progress of one direction (Suricata's `SshConnectionState`): 0 nothing yet, 1 the
/// identification line started without its end of line, 2 the line is complete, 3 the side
/// sent `SSH_MSG_NEWKEYS` (the handshake is finished: the last state).
#[derive(Clone, Debug, Default)]
pub struct SshProgress {
    state: u8,
    /// The binary packet header being read (length, padding length, message code).
    hdr: [u8; 6],
    hdr_len: usize,
    /// Bytes left of the binary packet being skipped.
    skip: usize,
}

/// The last SSH progress state.
pub const SSH_FINISHED: u8 = 3;
/// `SSH_MSG_NEWKEYS`.
const MSG_NEWKEYS: u8 = 21;
/// Largest binary packet length accepted (RFC 4253 asks for 35000 at least).
const MAX_PACKET: usize = 256 * 1024;

impl SshProgress {
    /// The current state.
    pub fn state(&self) -> u8 {
        self.state
    }

    /// Reads the next bytes of the direction; returns the state after them.
    pub fn update(&mut self, mut data: &[u8]) -> u8 {
        while !data.is_empty() && self.state < SSH_FINISHED {
            if self.state < 2 {
                // the identification line (lines before it are read the same way)
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.state = 2;
                        data = &data[i + 1..];
                    }
                    None => {
                        self.state = 1;
                        return self.state;
                    }
                }
                continue;
            }
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            if !fill_header(&mut self.hdr, &mut self.hdr_len, &mut data) {
                break;
            }
            let len = u32::from_be_bytes([self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]]) as usize;
            if self.hdr[5] == MSG_NEWKEYS {
                self.state = SSH_FINISHED;
                break;
            }
            if !(2..=MAX_PACKET).contains(&len) {
                // not SSH framing (or encrypted): the handshake is over for us
                self.state = SSH_FINISHED;
                break;
            }
            // the packet length counts the padding length and message code bytes read
            self.skip = len - 2;
        }
        self.state
    }
}

/// The last TLS progress state of the client side (`client_finished`).
pub const TLS_CLIENT_FINISHED: u8 = 4;
/// The last TLS progress state of the server side (`server_finished`).
pub const TLS_SERVER_FINISHED: u8 = 5;
/// Largest TLS record (2^14 plus the expansion allowed to ciphertext).
const MAX_RECORD: usize = 16384 + 2048;
/// Largest handshake data kept while waiting for a message's end.
const MAX_HANDSHAKE: usize = 64 * 1024;

/// TLS progress of one direction (Suricata's TLS states). Client: 0 `client_in_progress`,
/// 1 `client_hello_done`, 2 `client_cert_done`, 3 `client_handshake_done` (its
/// ChangeCipherSpec), 4 `client_finished` (its end of stream). Server: 0 `server_in_progress`,
/// 1 `server_hello`, 2 `server_cert_done`, 4 `server_handshake_done` (its ServerHelloDone or
/// ChangeCipherSpec; `server_hello_done`, 3, is passed through), 5 `server_finished`.
#[derive(Clone, Debug, Default)]
pub struct TlsProgress {
    state: u8,
    hdr: [u8; 5],
    hdr_len: usize,
    rec_type: u8,
    /// Bytes left of the current record (its header read).
    rec_left: usize,
    /// The current handshake record's bytes (unencrypted handshake only).
    rec: Vec<u8>,
    /// Handshake bytes of complete records not yet forming a whole message.
    hs: Vec<u8>,
    /// The side sent ChangeCipherSpec: its handshake records are encrypted.
    encrypted: bool,
    /// Not TLS framing: the progress stays where it is.
    stopped: bool,
    /// The ClientHello, once complete (client side).
    pub client_hello: Option<crate::app::tls::ClientHelloInfo>,
    /// The number of certificates of the Certificate message, once complete.
    pub cert_chain_len: Option<u64>,
}

impl TlsProgress {
    /// Reads the next bytes of the direction (`client`: the client's). Returns the state after
    /// them and whether they updated the side: a record completed, or bytes of a record other
    /// than an unencrypted handshake one (data only extending an incomplete handshake record
    /// does not update it, as in Suricata).
    pub fn update(&mut self, mut data: &[u8], client: bool) -> (u8, bool) {
        let mut updated = false;
        while !data.is_empty() {
            if self.stopped {
                return (self.state, true);
            }
            if self.rec_left == 0 {
                if !fill_header(&mut self.hdr, &mut self.hdr_len, &mut data) {
                    break;
                }
                let (typ, major, len) = (self.hdr[0], self.hdr[1], u16::from_be_bytes([self.hdr[3], self.hdr[4]]));
                if !(20..=24).contains(&typ) || major != 3 || usize::from(len) > MAX_RECORD {
                    self.stopped = true;
                    return (self.state, true);
                }
                self.rec_type = typ;
                self.rec_left = usize::from(len);
                self.rec.clear();
                if len == 0 {
                    updated |= self.record_done(client);
                }
                continue;
            }
            let n = self.rec_left.min(data.len());
            let handshake = self.rec_type == 22 && !self.encrypted;
            if handshake {
                self.rec.extend_from_slice(&data[..n]);
            } else {
                updated = true;
            }
            self.rec_left -= n;
            data = &data[n..];
            if self.rec_left == 0 {
                updated |= self.record_done(client);
            }
        }
        (self.state, updated)
    }

    /// A record is complete: its messages advance the state.
    fn record_done(&mut self, client: bool) -> bool {
        match self.rec_type {
            20 => {
                self.encrypted = true;
                self.state = self.state.max(if client { 3 } else { 4 });
            }
            22 if !self.encrypted => {
                if self.hs.len() + self.rec.len() > MAX_HANDSHAKE {
                    self.stopped = true;
                    return true;
                }
                self.hs.append(&mut self.rec);
                let mut at = 0;
                while let Some(h) = self.hs.get(at..at + 4) {
                    let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                    let typ = h[0];
                    let Some(body) = self.hs.get(at + 4..at + 4 + len) else { break };
                    let next = match (client, typ) {
                        (true, 1) => {
                            self.client_hello = crate::app::tls::parse_client_hello(body);
                            1
                        }
                        (true, 11) => 2,
                        (false, 2) => 1,
                        (false, 11) => {
                            self.cert_chain_len = Some(cert_count(body));
                            2
                        }
                        (false, 14) => 4,
                        _ => 0,
                    };
                    self.state = self.state.max(next);
                    at += 4 + len;
                }
                self.hs.drain(..at.min(self.hs.len()));
            }
            _ => {}
        }
        true
    }

    /// The side's end of stream: the client side is finished.
    pub fn eof(&mut self, client: bool) -> u8 {
        if client {
            self.state = TLS_CLIENT_FINISHED;
        }
        self.state
    }

    /// The current state.
    pub fn state(&self) -> u8 {
        self.state
    }
}

/// The number of certificates of a Certificate message body (a 24-bit list length, then
/// 24-bit length-prefixed certificates); a truncated entry is not counted.
fn cert_count(body: &[u8]) -> u64 {
    let u24 = |b: &[u8]| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
    let Some(total) = body.get(..3).map(u24) else { return 0 };
    let list = body.get(3..3 + total).unwrap_or_else(|| body.get(3..).unwrap_or_default());
    let (mut at, mut n) = (0, 0);
    while let Some(len) = list.get(at..at + 3).map(u24) {
        if list.len() < at + 3 + len {
            break;
        }
        at += 3 + len;
        n += 1;
    }
    n
}

/// Copies bytes of `data` into the fixed-size record header `hdr` (`len` of it filled so far)
/// and advances `data`; true when the header is complete (`len` is then reset for the next).
fn fill_header(hdr: &mut [u8], len: &mut usize, data: &mut &[u8]) -> bool {
    let n = (hdr.len() - *len).min(data.len());
    hdr[*len..*len + n].copy_from_slice(&data[..n]);
    *len += n;
    *data = &data[n..];
    if *len < hdr.len() {
        return false;
    }
    *len = 0;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn message(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![typ, 0];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn tls_progress_follows_the_handshake_messages_of_each_side() {
        let mut c = TlsProgress::default();
        let hello = record(22, &message(1, &[3, 3]));
        assert_eq!(c.update(&hello[..4], true), (0, false), "incomplete handshake record");
        assert_eq!(c.update(&hello[4..], true), (1, true));
        assert_eq!(c.update(&record(20, &[1]), true), (3, true));
        assert_eq!(c.update(&record(22, &[9; 40]), true), (3, true), "encrypted Finished");
        assert_eq!(c.update(&record(23, &[0; 10])[..7], true), (3, true), "application data counts");
        assert_eq!(c.eof(true), TLS_CLIENT_FINISHED);

        let mut s = TlsProgress::default();
        let mut flight = record(22, &message(2, &[3, 3]));
        // two certificates of 1 and 2 bytes
        flight.extend(record(22, &[message(11, &[0, 0, 9, 0, 0, 1, 7, 0, 0, 2, 7, 7]), message(14, &[])].concat()));
        assert_eq!(s.update(&flight, false), (4, true));
        assert_eq!(s.cert_chain_len, Some(2));
        assert_eq!(cert_count(&[0, 0, 9, 0, 0, 1, 7, 0, 0, 9]), 1, "truncated entry");
        assert_eq!(cert_count(&[0]), 0);
    }

    #[test]
    fn tls_progress_never_panics_on_garbage() {
        let mut p = TlsProgress::default();
        assert_eq!(p.update(b"GET / HTTP/1.1\r\n", true), (0, true));
        let mut p = TlsProgress::default();
        // a handshake message longer than its records: kept waiting, then dropped at the cap
        for _ in 0..8 {
            p.update(&record(22, &[1, 0xff, 0xff, 0xff]), true);
            p.update(&record(22, &[0; 16000]), true);
        }
        assert_eq!(p.state(), 0);
    }

    #[test]
    fn ssh_progress_goes_from_the_identification_line_to_newkeys() {
        let mut p = SshProgress::default();
        assert_eq!(p.update(b""), 0);
        assert_eq!(p.update(b"SSH-2.0-Open"), 1, "line without its end");
        assert_eq!(p.update(b"SSH_8.2p1\r\n"), 2);
        // KEXINIT (code 20) of 12 bytes, split over two segments, then NEWKEYS
        assert_eq!(p.update(&[0, 0, 0, 12, 4, 20, 1, 2]), 2);
        assert_eq!(p.update(&[3, 4, 5, 6, 7, 8, 9, 10]), 2);
        assert_eq!(p.update(&[0, 0, 0, 12, 10, 21]), SSH_FINISHED);
        assert_eq!(p.update(b"anything"), SSH_FINISHED);
    }

    #[test]
    fn ssh_progress_reads_the_line_and_packets_of_one_segment() {
        let mut p = SshProgress::default();
        let mut seg = b"SSH-2.0-x\r\n".to_vec();
        seg.extend_from_slice(&[0, 0, 0, 12, 10, 21, 0, 0]);
        assert_eq!(p.update(&seg), SSH_FINISHED);
    }

    #[test]
    fn ssh_progress_never_panics_on_malformed_framing() {
        for len in [0u8, 1, 0xff] {
            let mut p = SshProgress::default();
            p.update(b"SSH-2.0-x\n");
            assert_eq!(p.update(&[len, len, len, len, 0, 0]), SSH_FINISHED);
        }
        let mut p = SshProgress::default();
        assert_eq!(p.update(&[0xff; 3]), 1);
    }
}
