//! PostgreSQL over TCP: the message framing of each direction (frontend and backend
//! messages: a type byte and a 4-byte length; the client's untyped first messages: an
//! SSLRequest, GSSENCRequest or StartupMessage; the server's one-byte answer to an
//! SSLRequest). Each complete message asks for the raw stream of its direction to be
//! inspected ([`AppRecord::TriggerRaw`]), as Suricata's parser does for every transaction.
//! Encrypted sessions (an accepted SSLRequest) are not parsed further.

use super::{AppParser, AppRecord, Direction};

/// Largest message length accepted (beyond it the stream is not PostgreSQL any more).
const MAX_MESSAGE: usize = 16 << 20;

/// PostgreSQL parser of one connection.
#[derive(Debug, Default)]
pub struct PgsqlParser {
    /// Bytes of a message in progress, per direction (only its header is kept).
    need: [usize; 2],
    head: [Vec<u8>; 2],
    /// The client's untyped first messages are over (startup sent).
    started: bool,
    /// An SSLRequest waits for its one-byte answer.
    ssl_asked: bool,
    stopped: [bool; 2],
}

impl PgsqlParser {
    fn stop(&mut self) {
        self.stopped = [true; 2];
    }
}

impl AppParser for PgsqlParser {
    fn on_data(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        while !data.is_empty() && !self.stopped[d] {
            if self.need[d] > 0 {
                let n = self.need[d].min(data.len());
                self.need[d] -= n;
                data = &data[n..];
                if self.need[d] == 0 {
                    out.push(AppRecord::TriggerRaw(dir));
                }
                continue;
            }
            if dir == Direction::ToClient && self.ssl_asked && self.head[d].is_empty() {
                // the answer to an SSLRequest: 'S' starts TLS, 'N' goes on in clear
                self.ssl_asked = false;
                if data[0] != b'N' {
                    self.stop();
                    return;
                }
                data = &data[1..];
                out.push(AppRecord::TriggerRaw(dir));
                continue;
            }
            // header: 4-byte length for the client's first messages, else type + length
            let untyped = dir == Direction::ToServer && !self.started;
            let hlen = if untyped { 8 } else { 5 };
            let take = (hlen - self.head[d].len()).min(data.len());
            self.head[d].extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.head[d].len() < hlen {
                break;
            }
            let h = std::mem::take(&mut self.head[d]);
            let at = usize::from(!untyped);
            let len = u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]) as usize;
            // the length counts itself, and an untyped message's code too
            if !(hlen - at..=MAX_MESSAGE).contains(&len) {
                self.stop();
                return;
            }
            if untyped {
                let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                match code {
                    80877103 => self.ssl_asked = true,
                    80877104 => self.stop(),
                    _ => self.started = true,
                }
            }
            self.need[d] = len - (hlen - at);
            if self.need[d] == 0 {
                out.push(AppRecord::TriggerRaw(dir));
            }
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        self.stop();
    }

    fn on_close(&mut self, _out: &mut Vec<AppRecord>) {}

    fn is_done(&self) -> bool {
        self.stopped[0] && self.stopped[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(p: &mut PgsqlParser, dir: Direction, data: &[u8]) -> usize {
        let mut out = Vec::new();
        p.on_data(dir, data, &mut out);
        out.iter().filter(|r| matches!(r, AppRecord::TriggerRaw(x) if *x == dir)).count()
    }

    #[test]
    fn messages_are_framed_in_both_directions() {
        let mut p = PgsqlParser::default();
        assert_eq!(triggers(&mut p, Direction::ToServer, &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), 1);
        assert_eq!(triggers(&mut p, Direction::ToClient, b"N"), 1);
        let mut startup = vec![0, 0, 0, 13, 0, 3, 0, 0];
        startup.extend_from_slice(b"user\0");
        assert_eq!(triggers(&mut p, Direction::ToServer, &startup), 1);
        // two queries, the second split anywhere
        let q = b"Q\0\0\0\x0eSELECT 1;\0";
        let both = [&q[..], &q[..]].concat();
        for cut in 0..both.len() {
            let mut p2 = PgsqlParser { started: true, ..Default::default() };
            let n = triggers(&mut p2, Direction::ToServer, &both[..cut])
                + triggers(&mut p2, Direction::ToServer, &both[cut..]);
            assert_eq!(n, 2, "cut at {cut}");
        }
        assert_eq!(triggers(&mut p, Direction::ToClient, b"Z\0\0\0\x05I"), 1);
    }

    #[test]
    fn tls_and_garbage_stop_the_parser() {
        let mut p = PgsqlParser::default();
        triggers(&mut p, Direction::ToServer, &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]);
        assert_eq!(triggers(&mut p, Direction::ToClient, b"S\x16\x03\x01"), 0);
        assert!(p.is_done());
        let mut p = PgsqlParser { started: true, ..Default::default() };
        assert_eq!(triggers(&mut p, Direction::ToServer, b"Q\xff\xff\xff\xffxx"), 0);
        assert!(p.is_done());
    }

    #[test]
    fn a_first_message_shorter_than_its_own_header_stops_the_parser() {
        // an untyped message's length covers its 4-byte code: 4 to 7 cannot be
        for len in 4u8..8 {
            let mut p = PgsqlParser::default();
            assert_eq!(triggers(&mut p, Direction::ToServer, &[0, 0, 0, len, 0, 3, 0, 0, b'x']), 0, "length {len}");
            assert!(p.is_done(), "length {len}");
        }
    }
}
