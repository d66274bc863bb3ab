//! SMTP: the client's commands and the mail of each `DATA` command, read from the reassembled
//! stream; each mail is one transaction, inspected when its terminating `.` line arrives.
//!
//! The mail is parsed as MIME ([`parse_mail`]): its top-level headers give the `email.*`
//! buffers (`email.date`, `email.from`, `email.to`, `email.cc`, `email.subject`,
//! `email.message_id`, `email.x_mailer`, the raw header values); the parts naming a file
//! (Content-Disposition or Content-Type `filename`/`name`) are its files, decoded
//! (base64, quoted-printable): `file.data`, `file.name`, and `filesize`/the file digests for
//! files kept whole ([`crate::app::file`]). `multipart/*` bodies are split at their boundary and
//! an encapsulated `message/rfc822` is parsed as a mail of its own, its transfer encoding reset
//! (Suricata since 8.0.6: the inner mail is read as written), down to [`MAX_DEPTH`] levels.
//!
//! Memory: a mail is kept up to [`MAX_MAIL`] bytes (the rest is counted, not kept; files cut
//! there have no size nor digest); a command line up to [`MAX_LINE`] bytes, and the client's
//! bytes after a `DATA` until its reply, up to [`MAX_MAIL`]. The server's replies are only
//! paired with the client's lines: a `DATA` refused (4xx/5xx) was no mail, the lines read as
//! its mail are read again as commands. Not parsed: `BDAT` chunks, STARTTLS (the stream after
//! it is not SMTP).
//!
//! Each mail transaction (from `MAIL FROM` to the end of its mail, or to the next `MAIL FROM`,
//! STARTTLS or the end of the flow) is logged as Suricata's EVE `smtp` record: `helo`,
//! `mail_from`, `rcpt_to`, and with its mail an `email` object (`status`, `from`, `to`, `cc`,
//! `attachment`).

use super::dcerpc::TxInspect;
use super::file::{FileFields, find, split_once, trim};
use super::{AppParser, AppProto, AppRecord, Direction};
#[cfg(test)]
use crate::detect::AppInt;
use crate::detect::Buffer;
use crate::detect::keywords::{Base64Mode, base64_decode};

/// Bytes of one mail kept for inspection.
pub const MAX_MAIL: usize = 256 * 1024;
/// Longest command line kept while waiting for its end.
pub const MAX_LINE: usize = 4096;
/// Nesting of multipart and encapsulated messages read.
pub const MAX_DEPTH: usize = 8;
/// Files of one mail inspected at most.
const MAX_FILES: usize = 64;

/// One file of a mail.
#[derive(Debug, PartialEq, Eq)]
pub struct MailFile {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    /// Ended by its boundary (or the mail's end) within the kept bytes.
    pub complete: bool,
}

/// What a mail gives to detection.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mail {
    /// Top-level header values by `email.*` buffer.
    pub headers: Vec<(Buffer, Vec<u8>)>,
    pub files: Vec<MailFile>,
}

/// The header block and body of an entity (`\r\n\r\n` or `\n\n` between them).
fn split_entity(e: &[u8]) -> (&[u8], &[u8]) {
    if e.starts_with(b"\r\n") {
        return (&[], &e[2..]);
    }
    if e.starts_with(b"\n") {
        return (&[], &e[1..]);
    }
    let crlf = find(e, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = find(e, b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => {
            let (h, b) = if a.0 <= b.0 { a } else { b };
            (&e[..h], &e[b..])
        }
        (Some((h, b)), None) | (None, Some((h, b))) => (&e[..h], &e[b..]),
        (None, None) => (e, &[]),
    }
}

/// The header fields of a block, continuation lines unfolded: (lower-case name, value).
fn headers(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(last) = out.last_mut() {
                last.1.push(b' ');
                last.1.extend_from_slice(trim(line));
            }
            continue;
        }
        let Some(i) = line.iter().position(|&b| b == b':') else { continue };
        out.push((trim(&line[..i]).to_ascii_lowercase(), trim(&line[i + 1..]).to_vec()));
    }
    out
}

fn header<'h>(hs: &'h [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'h [u8]> {
    hs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

/// A parameter of a header value (`type/sub; name="x"`), quotes removed.
fn param<'a>(value: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    split_once(value, b';').and_then(|(_, params)| super::file::param(params, name))
}

fn media_type(hs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let ct = header(hs, b"content-type").unwrap_or(b"text/plain");
    let end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
    trim(&ct[..end]).to_ascii_lowercase()
}

/// Quoted-printable decoding (soft line breaks removed, bad escapes kept as written).
fn qp_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        let rest = &data[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let (Some(h), Some(l)) =
            (rest.first().and_then(|b| (*b as char).to_digit(16)), rest.get(1).and_then(|b| (*b as char).to_digit(16)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Parses a mail (see the module documentation); `complete`: the mail was kept whole.
pub fn parse_mail(mail: &[u8], complete: bool) -> Mail {
    let mut m = Mail::default();
    let (block, _) = split_entity(mail);
    let hs = headers(block);
    for (b, name) in [
        (Buffer::EmailDate, &b"date"[..]),
        (Buffer::EmailFrom, b"from"),
        (Buffer::EmailTo, b"to"),
        (Buffer::EmailCc, b"cc"),
        (Buffer::EmailSubject, b"subject"),
        (Buffer::EmailMessageId, b"message-id"),
        (Buffer::EmailXMailer, b"x-mailer"),
    ] {
        if let Some(v) = header(&hs, name) {
            m.headers.push((b, v.to_vec()));
        }
    }
    entity(mail, complete, 0, &mut m.files);
    m
}

fn entity(e: &[u8], complete: bool, depth: usize, files: &mut Vec<MailFile>) {
    if depth > MAX_DEPTH || files.len() >= MAX_FILES {
        return;
    }
    let (block, body) = split_entity(e);
    let hs = headers(block);
    let ty = media_type(&hs);
    if ty == b"message/rfc822" {
        // an encapsulated mail: read as written, whatever the outer transfer encoding
        entity(body, complete, depth + 1, files);
        return;
    }
    if ty.starts_with(b"multipart/") {
        if let Some(b) = header(&hs, b"content-type").and_then(|ct| param(ct, b"boundary")).filter(|b| !b.is_empty()) {
            for (part, part_complete) in split_parts(body, b) {
                entity(part, complete || part_complete, depth + 1, files);
            }
        }
        return;
    }
    let name = header(&hs, b"content-disposition")
        .and_then(|d| param(d, b"filename"))
        .or_else(|| header(&hs, b"content-type").and_then(|ct| param(ct, b"name")))
        .filter(|n| !n.is_empty());
    let Some(name) = name else { return };
    let cte = header(&hs, b"content-transfer-encoding").map(|v| trim(v).to_ascii_lowercase()).unwrap_or_default();
    let data = match cte.as_slice() {
        b"base64" => base64_decode(body, Base64Mode::Rfc2045),
        b"quoted-printable" => qp_decode(body),
        _ => body.to_vec(),
    };
    files.push(MailFile { name: name.to_vec(), data, complete });
}

/// The parts of a multipart body, each with whether its closing delimiter was seen.
fn split_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<(&'a [u8], bool)> {
    let delim = [&b"--"[..], boundary].concat();
    let mut out = Vec::new();
    let Some(first) = find(body, &delim) else { return out };
    let mut rest = &body[first + delim.len()..];
    while out.len() < MAX_FILES && !rest.starts_with(b"--") && !rest.is_empty() {
        // skip the rest of the delimiter line
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else { break };
        rest = &rest[nl + 1..];
        match find(rest, &delim) {
            Some(e) => {
                let part = &rest[..e];
                let part = part.strip_suffix(b"\r\n").or_else(|| part.strip_suffix(b"\n")).unwrap_or(part);
                out.push((part, true));
                rest = &rest[e + delim.len()..];
            }
            None => {
                out.push((rest, false));
                break;
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Command,
    /// Reading a mail (after `DATA`), up to the `.` line.
    Data,
}

/// An SMTP session (the client's lines; the server's replies paired with them).
#[derive(Debug, Default)]
pub struct SmtpParser {
    state: State,
    line: Vec<u8>,
    skipping: bool,
    mail: Vec<u8>,
    /// Bytes of the current mail not kept (past [`MAX_MAIL`]).
    mail_dropped: u64,
    /// A gap hit the current mail: its files are not whole.
    mail_gap: bool,
    /// STARTTLS was sent: nothing more is read.
    stopped: bool,
    /// Client lines the server answers (commands, and the `.` ending a mail) and final replies
    /// seen, to pair `DATA` with its reply: a refused `DATA` (4xx/5xx) was no mail, the lines
    /// read as its mail since are commands (Suricata follows the server's replies too).
    cmds: u64,
    replies: u64,
    /// The number of the `DATA` command whose reply is awaited, and the client's bytes since.
    data_cmd: Option<u64>,
    since_data: Vec<u8>,
    reply_line: Vec<u8>,
    /// EVE `smtp` record: the last HELO/EHLO argument, and the transaction a `MAIL FROM`
    /// opened (its sender and recipients).
    helo: Option<String>,
    log_tx: Option<(String, Vec<String>)>,
    /// EVE `smtp` records written (the next one's transaction id).
    logged: u64,
}

/// The address of a `MAIL FROM:<a@b> SIZE=1` / `RCPT TO:<c@d>` argument (`<a@b>`).
fn path_arg(text: &[u8]) -> String {
    let after = text.iter().position(|&b| b == b':').map_or(&text[text.len()..], |i| &text[i + 1..]);
    let after = trim(after);
    let end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
    String::from_utf8_lossy(&after[..end]).into_owned()
}

/// A header's comma-separated addresses, trimmed.
fn address_list(v: &[u8]) -> Vec<serde_json::Value> {
    v.split(|&b| b == b',')
        .map(trim)
        .filter(|a| !a.is_empty())
        .map(|a| serde_json::Value::from(String::from_utf8_lossy(a).into_owned()))
        .collect()
}

impl SmtpParser {
    fn on_line(&mut self, line: &[u8], out: &mut Vec<AppRecord>) {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        match self.state {
            State::Command => {
                let verb = text.split(|&b| b == b' ').next().unwrap_or(text);
                self.cmds += 1;
                if verb.eq_ignore_ascii_case(b"HELO") || verb.eq_ignore_ascii_case(b"EHLO") {
                    let arg = trim(text.get(verb.len()..).unwrap_or_default());
                    self.helo = Some(String::from_utf8_lossy(arg).into_owned());
                } else if verb.eq_ignore_ascii_case(b"MAIL") {
                    // a transaction left without its mail is logged as it is
                    self.log_smtp(None, out);
                    self.log_tx = Some((path_arg(text), Vec::new()));
                } else if verb.eq_ignore_ascii_case(b"RCPT") {
                    let to = path_arg(text);
                    self.log_tx.get_or_insert_with(Default::default).1.push(to);
                }
                if verb.eq_ignore_ascii_case(b"DATA") {
                    self.data_cmd = Some(self.cmds);
                    self.since_data.clear();
                    self.state = State::Data;
                    self.mail.clear();
                    self.mail_dropped = 0;
                    self.mail_gap = false;
                } else if verb.eq_ignore_ascii_case(b"STARTTLS") {
                    self.stopped = true;
                    self.log_smtp(None, out);
                }
            }
            State::Data => {
                if text == b"." {
                    self.cmds += 1;
                    self.data_cmd = None;
                    self.since_data = Vec::new();
                    self.state = State::Command;
                    self.finish_mail(out);
                    return;
                }
                // dot-stuffing: a leading '.' doubled by the sender
                let content = if text.starts_with(b"..") { &line[1..] } else { line };
                let room = MAX_MAIL.saturating_sub(self.mail.len());
                let n = (content.len() + 1).min(room);
                if n < content.len() + 1 {
                    self.mail_dropped += (content.len() + 1 - n) as u64;
                }
                let kept = &content[..n.min(content.len())];
                self.mail.extend_from_slice(kept);
                if n > content.len() {
                    self.mail.push(b'\n');
                }
            }
        }
    }

    fn finish_mail(&mut self, out: &mut Vec<AppRecord>) {
        let mut mail = std::mem::take(&mut self.mail);
        let whole = self.mail_dropped == 0 && !self.mail_gap;
        // the line end before the final "." belongs to the terminator (as the one before a
        // multipart delimiter belongs to the delimiter)
        if mail.ends_with(b"\r\n") {
            mail.truncate(mail.len() - 2);
        } else if mail.ends_with(b"\n") {
            mail.truncate(mail.len() - 1);
        }
        let m = parse_mail(&mail, whole);
        let mut tx = TxInspect::new(AppProto::Smtp, Direction::ToServer);
        let ebufs = m.headers.clone();
        let attachments: Vec<serde_json::Value> =
            m.files.iter().map(|f| serde_json::Value::from(String::from_utf8_lossy(&f.name).into_owned())).collect();
        // the files' `fileinfo` records: (name, size, whole)
        let files: Vec<(serde_json::Value, usize, bool)> =
            m.files.iter().zip(&attachments).map(|(f, n)| (n.clone(), f.data.len(), f.complete && whole)).collect();
        tx.bufs = m.headers;
        for f in m.files {
            let whole_file = f.complete && whole;
            // the size here; the digests when inspected, for the rules that use them
            tx.ints.extend(FileFields::of(&f.data, whole_file, [false; 3]).ints);
            tx.whole_files.push(whole_file);
            tx.bufs.push((Buffer::FileName, f.name));
            tx.bufs.push((Buffer::FileData, f.data));
        }
        out.push(AppRecord::Inspect(Box::new(tx)));
        // the EVE record: the envelope and what the mail's headers say
        let mut email = serde_json::Map::new();
        email.insert("status".into(), serde_json::Value::from("PARSE_DONE"));
        let header = |b: Buffer| ebufs.iter().find(|(k, _)| *k == b).map(|(_, v)| v.as_slice());
        if let Some(v) = header(Buffer::EmailFrom) {
            email.insert("from".into(), serde_json::Value::from(String::from_utf8_lossy(trim(v)).into_owned()));
        }
        for (b, name) in [(Buffer::EmailTo, "to"), (Buffer::EmailCc, "cc")] {
            if let Some(v) = header(b) {
                email.insert(name.into(), serde_json::Value::Array(address_list(v)));
            }
        }
        if !attachments.is_empty() {
            email.insert("attachment".into(), serde_json::Value::Array(attachments));
        }
        let tx_id = self.logged;
        self.log_smtp(Some(email), out);
        // each file: a `fileinfo` record with its transaction's `smtp` and `email` objects
        let Some(AppRecord::Log(l)) = out.last() else { return };
        let (smtp, email) = (l.fields.get("smtp").cloned(), l.fields.get("email").cloned());
        for (name, size, whole) in files {
            let mut fields = serde_json::Map::new();
            for (k, v) in [("smtp", &smtp), ("email", &email)] {
                if let Some(v) = v {
                    fields.insert(k.into(), v.clone());
                }
            }
            fields.insert("app_proto".into(), serde_json::Value::from("smtp"));
            fields.insert(
                "fileinfo".into(),
                serde_json::json!({"filename": name, "gaps": false, "state": if whole { "CLOSED" } else { "TRUNCATED" },
                                   "stored": false, "size": size, "tx_id": tx_id}),
            );
            out.push(AppRecord::Log(Box::new(super::LogRecord { event_type: "fileinfo", to_client: false, fields })));
        }
    }

    /// Writes the EVE `smtp` record of the open transaction, with its mail's `email` object.
    fn log_smtp(&mut self, email: Option<serde_json::Map<String, serde_json::Value>>, out: &mut Vec<AppRecord>) {
        let tx = self.log_tx.take();
        if tx.is_none() && email.is_none() {
            return;
        }
        let mut smtp = serde_json::Map::new();
        if let Some(h) = &self.helo {
            smtp.insert("helo".into(), serde_json::Value::from(h.clone()));
        }
        if let Some((from, to)) = tx {
            smtp.insert("mail_from".into(), serde_json::Value::from(from));
            if !to.is_empty() {
                smtp.insert("rcpt_to".into(), serde_json::Value::from(to));
            }
        }
        let mut fields = serde_json::Map::new();
        fields.insert("smtp".into(), serde_json::Value::Object(smtp));
        if let Some(e) = email {
            fields.insert("email".into(), serde_json::Value::Object(e));
        }
        out.push(AppRecord::Log(Box::new(super::LogRecord { event_type: "smtp", to_client: false, fields })));
        self.logged += 1;
    }
}

impl SmtpParser {
    /// Holds client bytes sent after a `DATA` whose reply is awaited (up to [`MAX_MAIL`]).
    fn hold(&mut self, data: &[u8]) {
        let room = MAX_MAIL.saturating_sub(self.since_data.len());
        self.since_data.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The server's replies: the final line of each (`250 ok`, not `250-...`) answers the
    /// oldest unanswered client line.
    fn on_replies(&mut self, data: &[u8], out: &mut Vec<AppRecord>) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.reply_line);
            line.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
            let code = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
            let last = !matches!(line.get(3), Some(b'-'));
            if let Some(code) = code
                && last
                && self.replies < self.cmds
            {
                self.replies += 1;
                if self.data_cmd == Some(self.replies) {
                    self.data_cmd = None;
                    let since = std::mem::take(&mut self.since_data);
                    if matches!(code[0], b'4' | b'5') && self.state == State::Data {
                        // refused: no mail; what followed DATA are commands
                        self.state = State::Command;
                        self.mail.clear();
                        self.mail_dropped = 0;
                        self.line.clear();
                        self.skipping = false;
                        self.on_data(Direction::ToServer, &since, out);
                    }
                }
            }
        }
        if self.reply_line.len() + rest.len() <= MAX_LINE {
            self.reply_line.extend_from_slice(rest);
        } else {
            self.reply_line.clear();
        }
    }
}

impl AppParser for SmtpParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        if self.stopped {
            return;
        }
        if dir == Direction::ToClient {
            self.on_replies(data, out);
            return;
        }
        if self.data_cmd.is_some() {
            self.hold(data);
        }
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let awaiting = self.data_cmd.is_some();
            if self.skipping {
                self.skipping = false;
                // a skipped command is answered all the same
                self.cmds += u64::from(self.state == State::Command);
            } else if self.line.is_empty() {
                self.on_line(&rest[..i], out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..i]);
                self.on_line(&line, out);
            }
            rest = &rest[i + 1..];
            if self.stopped {
                return;
            }
            if !awaiting && self.data_cmd.is_some() {
                // a DATA line: what follows it in the segment is held too
                self.hold(rest);
            }
        }
        if self.skipping {
            return;
        }
        if self.line.len() + rest.len() > MAX_LINE {
            // a line this long: in a mail, kept as it comes; a command is skipped
            if self.state == State::Data {
                let mut part = std::mem::take(&mut self.line);
                part.extend_from_slice(rest);
                let room = MAX_MAIL.saturating_sub(self.mail.len());
                self.mail.extend_from_slice(&part[..part.len().min(room)]);
                self.mail_dropped += part.len().saturating_sub(room) as u64;
            } else {
                self.line.clear();
                self.skipping = true;
            }
        } else {
            self.line.extend_from_slice(rest);
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // commands or replies lost: their pairing is given up
        self.data_cmd = None;
        self.since_data = Vec::new();
        if dir == Direction::ToServer {
            self.mail_gap |= self.state == State::Data;
            self.line.clear();
            self.skipping = true;
        }
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        self.log_smtp(None, out);
    }

    fn is_done(&self) -> bool {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(out: &[AppRecord]) -> Vec<&TxInspect> {
        out.iter().filter_map(AppRecord::as_inspect).collect()
    }

    fn smtp_logs(out: &[AppRecord]) -> Vec<serde_json::Map<String, serde_json::Value>> {
        out.iter().filter_map(|r| r.as_log("smtp").map(|l| l.fields.clone())).collect()
    }

    #[test]
    fn mail_transactions_are_logged_as_suricata_smtp_records() {
        let mut p = SmtpParser::default();
        let mut out = Vec::new();
        let session = b"EHLO GP\r\nMAIL FROM:<a@example.com> SIZE=10\r\nRCPT TO:<b@example.com>\r\n\
RCPT TO:<c@example.com>\r\nDATA\r\nFrom: A <a@example.com>\r\nTo: b@example.com, c@example.com\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: application/octet-stream; \
name=\"x.exe\"\r\n\r\nMZ\r\n--b1--\r\n.\r\nMAIL FROM:<d@example.com>\r\nQUIT\r\n";
        p.on_data(Direction::ToServer, session, &mut out);
        let l = smtp_logs(&out);
        assert_eq!(l.len(), 1, "the second transaction is open");
        assert_eq!(
            l[0]["smtp"],
            serde_json::json!({"helo": "GP", "mail_from": "<a@example.com>",
                "rcpt_to": ["<b@example.com>", "<c@example.com>"]})
        );
        assert_eq!(
            l[0]["email"],
            serde_json::json!({"status": "PARSE_DONE", "from": "A <a@example.com>",
                "to": ["b@example.com", "c@example.com"], "attachment": ["x.exe"]})
        );
        // the attachment: a fileinfo record with the transaction's objects
        let files: Vec<&crate::app::LogRecord> = out.iter().filter_map(|r| r.as_log("fileinfo")).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].fields["fileinfo"],
            serde_json::json!({"filename": "x.exe", "gaps": false, "state": "CLOSED", "stored": false, "size": 2,
                               "tx_id": 0})
        );
        assert_eq!((&files[0].fields["smtp"], &files[0].fields["email"]), (&l[0]["smtp"], &l[0]["email"]));
        assert_eq!(files[0].fields["app_proto"], "smtp");
        // the transaction without a mail, at the end of the flow
        p.on_close(&mut out);
        let l = smtp_logs(&out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[1]["smtp"], serde_json::json!({"helo": "GP", "mail_from": "<d@example.com>"}));
        assert!(l[1].get("email").is_none());
    }

    #[test]
    fn mail_after_data_is_one_transaction_with_headers_and_files() {
        let mut p = SmtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\n", &mut out);
        assert!(out.is_empty());
        p.on_data(
            Direction::ToServer,
            b"Date: Fri, 21 Apr 2023 05:10:36 +0000\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g\r\nd29ybGQ=\r\n--b1--\r\n",
            &mut out,
        );
        assert!(out.is_empty());
        p.on_data(Direction::ToServer, b".\r\nQUIT\r\n", &mut out);
        let t = inspect(&out);
        assert_eq!(t.len(), 1);
        assert!(t[0].bufs.contains(&(Buffer::EmailDate, b"Fri, 21 Apr 2023 05:10:36 +0000".to_vec())));
        assert!(t[0].bufs.contains(&(Buffer::EmailSubject, b"hi".to_vec())));
        assert!(t[0].bufs.contains(&(Buffer::FileName, b"a.bin".to_vec())));
        assert!(t[0].bufs.contains(&(Buffer::FileData, b"hello world".to_vec())));
        assert!(t[0].ints.contains(&(AppInt::FileSize, 11)));
    }

    #[test]
    fn encapsulated_message_is_read_as_written() {
        let mail = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"innocent.txt\"\r\n\r\nSubject: Inner\r\n\
Content-Disposition: attachment; filename=\"malware.exe\"\r\n\r\nEICAR-PAYLOAD\r\n";
        let m = parse_mail(mail, true);
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].name, b"malware.exe");
        assert_eq!(m.files[0].data, b"EICAR-PAYLOAD\r\n");
    }

    #[test]
    fn dot_stuffing_quoted_printable_and_cut_parts() {
        let mut p = SmtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"DATA\r\nContent-Disposition: attachment; filename=q.txt\r\n", &mut out);
        p.on_data(
            Direction::ToServer,
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n..a=3Db=\r\nc\r\n.\r\n",
            &mut out,
        );
        let t = inspect(&out);
        assert!(t[0].bufs.contains(&(Buffer::FileData, b".a=bc".to_vec())));
        // a multipart body cut before its closing boundary: the file is not whole
        let m = parse_mail(
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: a/b; name=x\r\n\r\nab",
            false,
        );
        assert_eq!(m.files.len(), 1);
        assert!(!m.files[0].complete);
    }

    #[test]
    fn malformed_input_never_panics_and_starttls_stops() {
        for input in [&b""[..], b"\r\n", b"DATA\r\n\r\n", b"\n\n\n", b"Content-Type: multipart/x; boundary=\r\n\r\n--"]
        {
            let _ = parse_mail(input, true);
            let mut p = SmtpParser::default();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, input, &mut out);
            p.on_gap(Direction::ToServer, 5, &mut out);
            p.on_data(Direction::ToServer, b".\r\n", &mut out);
        }
        assert_eq!(qp_decode(b"=4=ZZ="), b"=4=ZZ=");
        let mut p = SmtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"STARTTLS\r\nDATA\r\nx\r\n.\r\n", &mut out);
        assert!(out.is_empty());
        assert!(p.is_done());
        // a long command line is skipped, not kept
        let mut p = SmtpParser::default();
        p.on_data(Direction::ToServer, &vec![b'A'; MAX_LINE + 1], &mut out);
        assert!(p.line.is_empty());
    }

    #[test]
    fn a_refused_data_is_no_mail_and_the_lines_after_it_are_commands() {
        let mail = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Disposition: attachment; filename=\"evil.exe\"\r\n\r\nMZ\r\n--b--\r\n.\r\n";
        for pipelined in [false, true] {
            let mut p = SmtpParser::default();
            let mut out = Vec::new();
            p.on_data(Direction::ToClient, b"220 mx ESMTP\r\n", &mut out);
            p.on_data(Direction::ToServer, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<nobody@b>\r\n", &mut out);
            // refused before any recipient was accepted; the empty line ends a mail's headers
            p.on_data(Direction::ToServer, if pipelined { b"DATA\r\n\r\n" } else { b"DATA\r\n" }, &mut out);
            p.on_data(Direction::ToClient, b"250-mx\r\n250 PIPELINING\r\n250 ok\r\n550 no such user\r\n", &mut out);
            p.on_data(Direction::ToClient, b"554 no valid recipients\r\n", &mut out);
            if pipelined {
                p.on_data(Direction::ToClient, b"500 bad syntax\r\n", &mut out);
            } else {
                p.on_data(Direction::ToServer, b"\r\n", &mut out);
                p.on_data(Direction::ToClient, b"500 bad syntax\r\n", &mut out);
            }
            p.on_data(Direction::ToServer, b"RCPT TO:<c@b>\r\nDATA\r\n", &mut out);
            p.on_data(Direction::ToClient, b"250 ok\r\n", &mut out);
            p.on_data(Direction::ToClient, b"354 go on\r\n", &mut out);
            p.on_data(Direction::ToServer, mail, &mut out);
            let t = inspect(&out);
            assert_eq!(t.len(), 1, "pipelined: {pipelined}");
            assert!(t[0].bufs.contains(&(Buffer::FileName, b"evil.exe".to_vec())), "pipelined: {pipelined}");
        }
        // an accepted DATA and a reply to a command before it change nothing
        let mut p = SmtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"RCPT TO:<a@b>\r\nDATA\r\n", &mut out);
        p.on_data(Direction::ToClient, b"550 no\r\n", &mut out);
        p.on_data(Direction::ToServer, &mail[..mail.len() - 3], &mut out);
        p.on_data(Direction::ToClient, b"354 go on\r\n", &mut out);
        p.on_data(Direction::ToServer, b".\r\n", &mut out);
        assert_eq!(inspect(&out).len(), 1);
    }
}
