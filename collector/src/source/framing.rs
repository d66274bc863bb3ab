//! Syslog-over-TCP framing (RFC 6587): octet counting (`LEN SP MSG`) or non-transparent
//! (newline-terminated) framing, detected on the first frame of a connection.
//!
//! A connection is octet-counted when it starts with `[1-9][0-9]* <` (a length, a space, a
//! PRI), newline-framed otherwise. Frames longer than the maximum are not buffered: their first
//! `max` bytes come out as [`Frame::Invalid`] and the rest is skipped.

/// Framing of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Not known yet (no complete first frame header seen).
    Detecting,
    /// RFC 6587 3.4.1: `MSG-LEN SP SYSLOG-MSG`.
    OctetCounting,
    /// RFC 6587 3.4.2: messages terminated by LF (a CR before it is removed).
    NonTransparent,
}

/// One unit cut from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// Bytes that could not be a message (oversized, broken header, cut by the end of the
    /// connection), at most `max` of them, and why.
    Invalid {
        reason: String,
        raw: Vec<u8>,
    },
}

#[derive(Debug)]
enum Skip {
    None,
    /// Discard up to and including the next LF.
    ToNewline,
    /// Discard an oversized octet-counted frame, keeping its head.
    Bytes {
        remaining: usize,
        head: Vec<u8>,
        total: usize,
    },
}

/// Incremental frame decoder for one connection.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    mode: Framing,
    buf: Vec<u8>,
    pos: usize,
    skip: Skip,
}

/// Longest accepted length prefix (10 digits: lengths up to 9,999,999,999).
const MAX_LEN_DIGITS: usize = 10;

impl FrameDecoder {
    /// A decoder for frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder { max: max.max(1), mode: Framing::Detecting, buf: Vec::new(), pos: 0, skip: Skip::None }
    }

    pub fn framing(&self) -> Framing {
        self.mode
    }

    /// Bytes held for an incomplete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn oversized(&self, total: Option<usize>) -> String {
        match total {
            Some(t) => {
                format!("frame of {t} bytes exceeds max_line ({} bytes); kept the first {} bytes", self.max, self.max)
            }
            None => format!("frame exceeds max_line ({} bytes); kept the first {} bytes", self.max, self.max),
        }
    }

    /// The next complete frame, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match &mut self.skip {
                Skip::None => {}
                Skip::ToNewline => {
                    let data = &self.buf[self.pos..];
                    match data.iter().position(|c| *c == b'\n') {
                        Some(i) => {
                            self.pos += i + 1;
                            self.skip = Skip::None;
                        }
                        None => {
                            self.pos = self.buf.len();
                            return None;
                        }
                    }
                }
                Skip::Bytes { remaining, head, total } => {
                    let avail = self.buf.len() - self.pos;
                    let n = avail.min(*remaining);
                    let keep = self.max.saturating_sub(head.len()).min(n);
                    head.extend_from_slice(&self.buf[self.pos..self.pos + keep]);
                    self.pos += n;
                    *remaining -= n;
                    if *remaining > 0 {
                        return None;
                    }
                    let raw = std::mem::take(head);
                    let total = *total;
                    self.skip = Skip::None;
                    return Some(Frame::Invalid { reason: self.oversized(Some(total)), raw });
                }
            }
            if self.pos >= self.buf.len() {
                return None;
            }
            match self.mode {
                Framing::Detecting => {
                    self.mode = detect(&self.buf[self.pos..])?;
                    tracing::debug!(framing = ?self.mode, "syslog-tcp framing detected");
                }
                Framing::NonTransparent => return self.newline_frame(),
                Framing::OctetCounting => match self.octet_frame() {
                    Step::Frame(f) => return Some(f),
                    Step::Again => continue,
                    Step::NeedMore => return None,
                },
            }
        }
    }

    fn newline_frame(&mut self) -> Option<Frame> {
        let data = &self.buf[self.pos..];
        match data.iter().position(|c| *c == b'\n') {
            Some(i) => {
                let mut line = &data[..i];
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                let frame = if line.len() > self.max {
                    Frame::Invalid { reason: self.oversized(Some(line.len())), raw: line[..self.max].to_vec() }
                } else {
                    Frame::Message(line.to_vec())
                };
                self.pos += i + 1;
                Some(frame)
            }
            None if data.len() > self.max => {
                let raw = data[..self.max].to_vec();
                self.pos = self.buf.len();
                self.skip = Skip::ToNewline;
                Some(Frame::Invalid { reason: self.oversized(None), raw })
            }
            None => None,
        }
    }

    fn octet_frame(&mut self) -> Step {
        // Tolerate line breaks and spaces between frames (some senders add them).
        while self.pos < self.buf.len() && matches!(self.buf[self.pos], b'\n' | b'\r' | b' ') {
            self.pos += 1;
        }
        let data = &self.buf[self.pos..];
        if data.is_empty() {
            return Step::NeedMore;
        }
        let digits = data.iter().take(MAX_LEN_DIGITS + 1).take_while(|c| c.is_ascii_digit()).count();
        if digits == data.len() && digits <= MAX_LEN_DIGITS {
            return Step::NeedMore;
        }
        if digits == 0 || digits > MAX_LEN_DIGITS || data[digits] != b' ' || data[0] == b'0' {
            // Broken header: give up to the next LF as one invalid frame, resync after it.
            return match data.iter().position(|c| *c == b'\n') {
                Some(i) => {
                    let raw = data[..i.min(self.max)].to_vec();
                    self.pos += i + 1;
                    Step::Frame(Frame::Invalid { reason: "octet-counting: invalid frame length".into(), raw })
                }
                None if data.len() > self.max => {
                    let raw = data[..self.max].to_vec();
                    self.pos = self.buf.len();
                    self.skip = Skip::ToNewline;
                    Step::Frame(Frame::Invalid { reason: "octet-counting: invalid frame length".into(), raw })
                }
                None => Step::NeedMore,
            };
        }
        let len = data[..digits].iter().fold(0usize, |a, d| a.saturating_mul(10).saturating_add((d - b'0') as usize));
        let header = digits + 1;
        if len > self.max {
            self.pos += header;
            self.skip = Skip::Bytes { remaining: len, head: Vec::new(), total: len };
            return Step::Again;
        }
        if data.len() < header + len {
            return Step::NeedMore;
        }
        let frame = data[header..header + len].to_vec();
        self.pos += header + len;
        Step::Frame(Frame::Message(frame))
    }

    /// At the end of the connection: what is left (a last line without LF is a message; a
    /// partial octet-counted frame is invalid).
    pub fn finish(&mut self) -> Option<Frame> {
        let skip = std::mem::replace(&mut self.skip, Skip::None);
        if let Skip::Bytes { head, total, remaining } = skip {
            self.pos = self.buf.len();
            return Some(Frame::Invalid {
                reason: format!("connection closed {remaining} bytes short of a {total}-byte frame (over max_line)"),
                raw: head,
            });
        }
        if matches!(skip, Skip::ToNewline) {
            self.pos = self.buf.len();
            return None;
        }
        let data = &self.buf[self.pos..];
        let trimmed = crate::parse::trim_ascii(data);
        if trimmed.is_empty() {
            self.pos = self.buf.len();
            return None;
        }
        let frame = match self.mode {
            Framing::OctetCounting => Frame::Invalid {
                reason: "connection closed inside an octet-counted frame".into(),
                raw: data[..data.len().min(self.max)].to_vec(),
            },
            Framing::Detecting | Framing::NonTransparent if data.len() > self.max => {
                Frame::Invalid { reason: self.oversized(Some(data.len())), raw: data[..self.max].to_vec() }
            }
            _ => Frame::Message(data.strip_suffix(b"\r").unwrap_or(data).to_vec()),
        };
        self.pos = self.buf.len();
        Some(frame)
    }
}

enum Step {
    Frame(Frame),
    Again,
    NeedMore,
}

/// Framing from the first bytes of a connection, or `None` until that can be told.
fn detect(data: &[u8]) -> Option<Framing> {
    let start = data.iter().position(|c| !matches!(c, b'\n' | b'\r' | b' ' | b'\t'))?;
    let d = &data[start..];
    if !matches!(d[0], b'1'..=b'9') {
        return Some(Framing::NonTransparent);
    }
    let digits = d.iter().take(MAX_LEN_DIGITS + 1).take_while(|c| c.is_ascii_digit()).count();
    match (d.get(digits), d.get(digits + 1)) {
        _ if digits > MAX_LEN_DIGITS => Some(Framing::NonTransparent),
        (None, _) | (Some(b' '), None) => None,
        (Some(b' '), Some(b'<')) => Some(Framing::OctetCounting),
        _ => Some(Framing::NonTransparent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut FrameDecoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame() {
            out.push(f);
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn newline_framing_with_crlf_and_last_line_at_eof() {
        let mut d = FrameDecoder::new(100);
        d.push(b"<13>a\r\n<13>b\n<13>");
        assert_eq!(all(&mut d), vec![msg("<13>a"), msg("<13>b")]);
        assert_eq!(d.framing(), Framing::NonTransparent);
        d.push(b"c");
        assert!(all(&mut d).is_empty());
        assert_eq!(d.finish(), Some(msg("<13>c")));
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn octet_counting_across_arbitrary_splits() {
        let stream = b"10 <13>hello\n12 <13>hi there16 <13>with\nnewline";
        for split in 0..stream.len() {
            let mut d = FrameDecoder::new(100);
            d.push(&stream[..split]);
            let mut got = all(&mut d);
            d.push(&stream[split..]);
            got.extend(all(&mut d));
            assert_eq!(got, vec![msg("<13>hello\n"), msg("<13>hi there"), msg("<13>with\nnewline")], "split {split}");
            assert_eq!(d.framing(), Framing::OctetCounting);
            assert_eq!(d.finish(), None);
        }
    }

    #[test]
    fn detection_waits_and_does_not_mistake_numbers() {
        let mut d = FrameDecoder::new(100);
        d.push(b"12");
        assert!(d.next_frame().is_none());
        assert_eq!(d.framing(), Framing::Detecting);
        d.push(b"3: *Mar  1 00:01:18: %SYS-5-X: y\n");
        assert_eq!(all(&mut d), vec![msg("123: *Mar  1 00:01:18: %SYS-5-X: y")]);
        assert_eq!(d.framing(), Framing::NonTransparent);
    }

    #[test]
    fn oversized_frames_are_cut_and_skipped() {
        let mut d = FrameDecoder::new(8);
        d.push(b"<13>0123456789abcdef");
        let f = all(&mut d);
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0], Frame::Invalid { raw, .. } if raw == b"<13>0123"));
        d.push(b"more\n<13>ok\n");
        assert_eq!(all(&mut d), vec![msg("<13>ok")]);

        let mut d = FrameDecoder::new(9);
        d.push(b"20 <13>0123456789abcdef9 <13>short");
        let f = all(&mut d);
        assert_eq!(f.len(), 2, "{f:?}");
        match &f[0] {
            Frame::Invalid { raw, reason } => {
                assert_eq!(raw, b"<13>01234");
                assert!(reason.contains("20 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f[1], msg("<13>short"));
    }

    #[test]
    fn broken_octet_header_resyncs_at_newline() {
        let mut d = FrameDecoder::new(100);
        d.push(b"5 <13>a");
        assert_eq!(all(&mut d), vec![msg("<13>a")]);
        d.push(b"x garbage\n6 <13>ok");
        let f = all(&mut d);
        assert!(matches!(&f[0], Frame::Invalid { reason, .. } if reason.contains("invalid frame length")));
        assert_eq!(f[1], msg("<13>ok"));
        d.push(b"10 <13>cut");
        assert!(all(&mut d).is_empty());
        assert!(matches!(d.finish(), Some(Frame::Invalid { .. })));
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        for _ in 0..300 {
            let mut d = FrameDecoder::new(16);
            for _ in 0..20 {
                let mut chunk = Vec::new();
                for _ in 0..(seed % 13) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    chunk.push(b"0123456789 <>\n\rab"[(seed % 17) as usize]);
                }
                d.push(&chunk);
                for f in all(&mut d) {
                    let (Frame::Message(m) | Frame::Invalid { raw: m, .. }) = f;
                    assert!(m.len() <= 16);
                }
            }
            let _ = d.finish();
        }
    }
}
