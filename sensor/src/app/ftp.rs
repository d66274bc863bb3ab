//! FTP control channel: the commands a client sends (one transaction each, as Suricata's FTP
//! parser), read per segment by [`crate::app::msg`] on flows detected as FTP or to port 21.
//!
//! Detection fields of a command: the `ftp.command` buffer (the command name, upper case as in
//! Suricata's command table) and `ftpbounce` (a `PORT`/`EPRT` command naming an address other
//! than the client's: the server would open the data connection to a third host).
//!
//! Lines are read from the segment that carries them; a line split over two segments is read
//! from its first part only when that part holds the whole command name.
//!
//! # Data channels (`ftp-data`)
//!
//! [`FtpParser`] follows the control channel's reassembled streams: a `PORT`/`EPRT` command
//! (active mode: the server connects to the client's port) or a `227`/`229` reply (passive
//! mode: the client connects to the server's port) announces a data connection
//! ([`Expectation`]); the sensor keeps them in [`Expectations`] (bounded) and a new TCP flow
//! between the two hosts to that port is an `ftp-data` flow, parsed by [`FtpDataParser`]. As
//! in Suricata, the addresses are the control flow's (not the ones written in the command:
//! a bounce does not open a channel to a third host). The transfer command that follows
//! (`STOR`, `RETR`, ...) is shared with the data flow ([`DataInfo`]): its `ftpdata_command`.
//! The data of the channel is a file: `file.data` (its first [`MAX_DATA`] bytes), `filesize`
//! and the file digests when it was kept whole; inspected when the data flow ends.
//!
//! Each command and its replies up to the final one (not 1xx) is logged as Suricata's EVE `ftp`
//! record (`command`, `command_data`, `reply`, `completion_code`, `dynamic_port`, `mode`,
//! `reply_received`); a data connection as an `ftp_data` record (its command and file name).
//!
//! Not parsed yet: the FTP app-layer events and the firewall hooks of FTP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction};

/// The FTP control port.
pub const PORT: u16 = 21;

/// Longest command name accepted (Suricata's table has none longer than 4; site-specific ones
/// are longer).
const MAX_VERB: usize = 8;

/// One command line of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FtpCommand<'a> {
    /// The command name as sent.
    pub verb: &'a [u8],
    /// What follows the name and its space, without the line end.
    pub arg: &'a [u8],
}

impl FtpCommand<'_> {
    /// The command name in upper case (the `ftp.command` buffer).
    pub fn name(&self) -> Vec<u8> {
        self.verb.to_ascii_uppercase()
    }

    /// The address and port of a `PORT` or `EPRT` command (the client's data port).
    pub fn data_address(&self) -> Option<(IpAddr, u16)> {
        if self.verb.eq_ignore_ascii_case(b"PORT") {
            parse_port_arg(self.arg).map(|(a, p)| (IpAddr::V4(a), p))
        } else if self.verb.eq_ignore_ascii_case(b"EPRT") {
            parse_eprt_arg(self.arg)
        } else {
            None
        }
    }

    /// `ftpbounce`: a `PORT`/`EPRT` whose address is not the client's (`client`: the address
    /// the command came from).
    pub fn is_bounce(&self, client: IpAddr) -> bool {
        self.data_address().is_some_and(|(a, _)| !same_host(a, client))
    }
}

fn same_host(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V6(y)) | (IpAddr::V6(y), IpAddr::V4(x)) => y.to_ipv4_mapped() == Some(x),
        _ => a == b,
    }
}

/// The command lines of a segment sent by the client. Stops at the first line that does not
/// start with a command name (letters, then a space or the line end): such a segment is not
/// FTP commands (or continues a line of an earlier segment).
pub fn parse_commands(payload: &[u8]) -> Vec<FtpCommand<'_>> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let n = line.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        if n == 0 || n > MAX_VERB {
            break;
        }
        let arg = match line.get(n) {
            None => &line[n..],
            Some(b' ') => &line[n + 1..],
            Some(_) => break,
        };
        out.push(FtpCommand { verb: &line[..n], arg });
        rest = next;
    }
    out
}

/// `h1,h2,h3,h4,p1,p2` (a `PORT` argument or a `227` reply's address).
pub fn parse_port_arg(arg: &[u8]) -> Option<(Ipv4Addr, u16)> {
    let text = std::str::from_utf8(arg).ok()?.trim();
    let mut n = [0u8; 6];
    let mut parts = text.split(',');
    for slot in &mut n {
        *slot = parts.next()?.trim().parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((Ipv4Addr::new(n[0], n[1], n[2], n[3]), u16::from_be_bytes([n[4], n[5]])))
}

/// `|1|132.235.1.2|6275|` or `|2|1080::8:800:200c:417a|5282|` (RFC 2428), any delimiter.
pub fn parse_eprt_arg(arg: &[u8]) -> Option<(IpAddr, u16)> {
    let text = std::str::from_utf8(arg).ok()?.trim();
    let delim = text.chars().next()?;
    let mut parts = text.split(delim);
    let _ = parts.next()?; // empty before the first delimiter
    let proto = parts.next()?;
    let addr = parts.next()?;
    let port: u16 = parts.next()?.parse().ok()?;
    let ip = match proto {
        "1" => IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?),
        "2" => IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?),
        _ => return None,
    };
    Some((ip, port))
}

/// Longest control line kept while waiting for its end; a longer line is dropped.
const MAX_LINE: usize = 4096;
/// Data connections announced and not yet opened, per sensor (the oldest goes first).
pub const MAX_EXPECTATIONS: usize = 1024;
/// An announced data connection not opened within this time (microseconds) is forgotten.
pub const EXPECTATION_TIMEOUT_MICROS: i64 = 300 * 1_000_000;
/// Bytes of a data connection kept per direction for inspection.
pub const MAX_DATA: usize = 256 * 1024;

/// Bytes all data connections of the process may hold together: past it, further bytes are
/// not kept (counted in `soc_sensor_ftp_data_unkept_bytes_total`), so announcing many data
/// connections cannot make the sensor hold flows x [`MAX_DATA`].
pub const MAX_DATA_TOTAL: usize = 64 << 20;

/// Bytes held by the data connections of the process.
static DATA_HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Takes up to `want` bytes from `held`'s budget of `cap`; returns how many were granted.
fn grant(held: &std::sync::atomic::AtomicUsize, want: usize, cap: usize) -> usize {
    use std::sync::atomic::Ordering;
    let mut got = 0;
    // (an Err only means nothing was left to take)
    let _ = held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
        got = want.min(cap.saturating_sub(now));
        (got > 0).then_some(now + got)
    });
    got
}

/// The transfer command of a data connection (`ftpdata_command`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCmd {
    Stor,
    Retr,
    Stou,
    Appe,
    List,
    Nlst,
}

impl DataCmd {
    const ALL: [(DataCmd, &'static str); 6] = [
        (DataCmd::Stor, "stor"),
        (DataCmd::Retr, "retr"),
        (DataCmd::Stou, "stou"),
        (DataCmd::Appe, "appe"),
        (DataCmd::List, "list"),
        (DataCmd::Nlst, "nlst"),
    ];

    /// The value of `ftpdata_command` ([`crate::detect::AppInt::FtpdataCommand`]).
    pub fn code(self) -> u64 {
        self as u64 + 1
    }

    /// `stor`, `retr`, `stou`, `appe`, `list` or `nlst` (the keyword's values).
    pub fn from_name(s: &str) -> Option<DataCmd> {
        let s = s.trim();
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)).map(|(c, _)| *c)
    }

    fn of_command(verb: &[u8]) -> Option<DataCmd> {
        Self::ALL.iter().find(|(_, n)| verb.eq_ignore_ascii_case(n.as_bytes())).map(|(c, _)| *c)
    }
}

/// What the control channel says about a data connection (shared by both flows).
#[derive(Debug, Default)]
pub struct DataInfo {
    pub cmd: Option<DataCmd>,
    /// The transfer command's argument (the file name).
    pub file_name: Vec<u8>,
}

pub type SharedInfo = Arc<Mutex<DataInfo>>;

fn lock(i: &SharedInfo) -> std::sync::MutexGuard<'_, DataInfo> {
    i.lock().unwrap_or_else(|p| p.into_inner())
}

/// A data connection announced on a control channel.
#[derive(Debug)]
pub struct Expectation {
    /// Active mode (`PORT`/`EPRT`): the control channel's server connects to its client;
    /// passive (`227`/`229`): the client connects to the server.
    pub active: bool,
    /// The port connected to.
    pub port: u16,
    pub info: SharedInfo,
}

/// The announced data connections of one sensor, keyed by (connecting host, listening host,
/// port); at most [`MAX_EXPECTATIONS`], the oldest dropped first, each for
/// [`EXPECTATION_TIMEOUT_MICROS`].
#[derive(Debug, Default)]
pub struct Expectations {
    entries: std::collections::VecDeque<((IpAddr, IpAddr, u16), i64, SharedInfo)>,
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records `e`, announced at `now` (unix microseconds) by the control flow from `client`
    /// to `server`.
    pub fn add(&mut self, client: IpAddr, server: IpAddr, e: Expectation, now: i64) {
        let key = if e.active { (server, client, e.port) } else { (client, server, e.port) };
        self.entries.retain(|(k, at, _)| *k != key && now.saturating_sub(*at) <= EXPECTATION_TIMEOUT_MICROS);
        if self.entries.len() >= MAX_EXPECTATIONS {
            self.entries.pop_front();
            metrics::counter!("soc_sensor_ftp_expectations_dropped_total").increment(1);
        }
        self.entries.push_back((key, now, e.info));
    }

    /// The announcement a new flow from `client` to `server`:`port` answers at `now` (removed).
    pub fn take(&mut self, client: IpAddr, server: IpAddr, port: u16, now: i64) -> Option<SharedInfo> {
        let i = self.entries.iter().position(|(k, _, _)| *k == (client, server, port))?;
        let (_, at, info) = self.entries.remove(i)?;
        (now.saturating_sub(at) <= EXPECTATION_TIMEOUT_MICROS).then_some(info)
    }
}

/// The control channel's parser: announces data connections (see the module documentation).
#[derive(Debug, Default)]
pub struct FtpParser {
    lines: [Vec<u8>; 2],
    /// A line longer than [`MAX_LINE`] is being skipped.
    skipping: [bool; 2],
    /// Announced, not yet taken by the sensor.
    pending: Vec<Expectation>,
    /// The last announced data connection (the next transfer command is its).
    current: Option<SharedInfo>,
    /// The command waiting for its final reply (EVE `ftp` record).
    tx: Option<FtpLogTx>,
    /// EVE `ftp` records completed.
    logs: Vec<AppRecord>,
}

/// One command and its replies, as Suricata's `ftp` record gives them.
#[derive(Debug, Default)]
struct FtpLogTx {
    command: String,
    command_data: String,
    replies: Vec<String>,
    codes: Vec<String>,
    dynamic_port: Option<u16>,
    /// `active` (PORT/EPRT) or `passive` (PASV/EPSV).
    mode: Option<&'static str>,
}

impl FtpLogTx {
    fn record(self) -> AppRecord {
        use serde_json::Value;
        let mut o = serde_json::Map::new();
        o.insert("command".into(), Value::from(self.command));
        o.insert("command_data".into(), Value::from(self.command_data));
        let received = !self.codes.is_empty();
        if received {
            o.insert("reply".into(), Value::from(self.replies));
            o.insert("completion_code".into(), Value::from(self.codes));
        }
        if let Some(port) = self.dynamic_port {
            o.insert("dynamic_port".into(), Value::from(port));
        }
        if let Some(m) = self.mode {
            o.insert("mode".into(), Value::from(m));
        }
        o.insert("reply_received".into(), Value::from(if received { "yes" } else { "no" }));
        AppRecord::Log(Box::new(super::LogRecord::new("ftp", false, o)))
    }
}

/// A reply line's code and text (`227 Entering...`), and whether it ends the reply (a space,
/// not a `-`, after the code).
fn reply_line(line: &[u8]) -> Option<(&[u8], &[u8], bool)> {
    let code = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit))?;
    match line.get(3) {
        None => Some((code, &[], true)),
        Some(b' ') => Some((code, &line[4..], true)),
        Some(b'-') => Some((code, &line[4..], false)),
        Some(_) => None,
    }
}

impl FtpParser {
    /// The data connections announced since the last call.
    pub fn take_expectations(&mut self) -> Vec<Expectation> {
        std::mem::take(&mut self.pending)
    }

    fn on_line(&mut self, dir: Direction, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match dir {
            Direction::ToServer => {
                let Some(c) = parse_commands(line).into_iter().next() else { return };
                // a command still without its final reply is logged as it is
                if let Some(t) = self.tx.take() {
                    self.logs.push(t.record());
                }
                let name = c.name();
                let active = c.data_address().map(|(_, p)| p);
                let passive = matches!(&name[..], b"PASV" | b"EPSV");
                self.tx = Some(FtpLogTx {
                    command: String::from_utf8_lossy(&name).into_owned(),
                    command_data: String::from_utf8_lossy(c.arg).into_owned(),
                    dynamic_port: active,
                    mode: if active.is_some() {
                        Some("active")
                    } else if passive {
                        Some("passive")
                    } else {
                        None
                    },
                    ..Default::default()
                });
                if let Some((_, port)) = c.data_address() {
                    self.announce(true, port);
                } else if let Some(cmd) = DataCmd::of_command(c.verb)
                    && let Some(info) = &self.current
                {
                    let mut i = lock(info);
                    i.cmd = Some(cmd);
                    i.file_name = c.arg.to_vec();
                }
            }
            Direction::ToClient => {
                if let Some(port) = passive_port(line) {
                    self.announce(false, port);
                    if let Some(t) = self.tx.as_mut() {
                        t.dynamic_port = Some(port);
                    }
                }
                if let Some((code, text, last)) = reply_line(line)
                    && let Some(t) = self.tx.as_mut()
                {
                    t.codes.push(String::from_utf8_lossy(code).into_owned());
                    t.replies.push(String::from_utf8_lossy(text).into_owned());
                    // a final reply (not a preliminary 1xx) completes the command
                    if last
                        && code[0] != b'1'
                        && let Some(t) = self.tx.take()
                    {
                        self.logs.push(t.record());
                    }
                }
            }
        }
    }

    fn announce(&mut self, active: bool, port: u16) {
        let info = SharedInfo::default();
        self.current = Some(info.clone());
        if self.pending.len() < 16 {
            self.pending.push(Expectation { active, port, info });
        }
    }
}

/// The port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` or `229 Entering Extended
/// Passive Mode (|||port|)` reply.
pub fn passive_port(line: &[u8]) -> Option<u16> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = open + line[open..].iter().position(|&b| b == b')')?;
    let inner = &line[open + 1..close];
    if line.starts_with(b"227") {
        parse_port_arg(inner).map(|(_, p)| p)
    } else if line.starts_with(b"229") {
        let text = std::str::from_utf8(inner).ok()?;
        let delim = text.chars().next()?;
        text.split(delim).rfind(|p| !p.is_empty())?.parse().ok()
    } else {
        None
    }
}

impl AppParser for FtpParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        self.lines_of(dir, data);
        out.append(&mut self.logs);
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // the line in progress lost bytes: skip to the next line end
        self.lines[dir.index()].clear();
        self.skipping[dir.index()] = true;
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        if let Some(t) = self.tx.take() {
            self.logs.push(t.record());
        }
        out.append(&mut self.logs);
    }

    fn is_done(&self) -> bool {
        false
    }
}

impl FtpParser {
    fn lines_of(&mut self, dir: Direction, data: &[u8]) {
        let d = dir.index();
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.skipping[d] {
                self.skipping[d] = false;
            } else if self.lines[d].is_empty() {
                self.on_line(dir, &rest[..i]);
            } else {
                let mut line = std::mem::take(&mut self.lines[d]);
                line.extend_from_slice(&rest[..i]);
                self.on_line(dir, &line);
            }
            rest = &rest[i + 1..];
        }
        if !self.skipping[d] {
            if self.lines[d].len() + rest.len() > MAX_LINE {
                self.lines[d].clear();
                self.skipping[d] = true;
            } else {
                self.lines[d].extend_from_slice(rest);
            }
        }
    }
}

/// The data connection's parser: keeps the transferred bytes of each direction (the first
/// [`MAX_DATA`]) and, when the flow ends, hands each side over for inspection.
#[derive(Debug)]
pub struct FtpDataParser {
    info: SharedInfo,
    data: [Vec<u8>; 2],
    /// Bytes seen per direction (kept or not), and whether some were lost.
    seen: [u64; 2],
    lost: [bool; 2],
    closed: bool,
    /// Bytes of [`DATA_HELD`] this parser holds.
    held: usize,
}

impl FtpDataParser {
    pub fn new(info: SharedInfo) -> Self {
        FtpDataParser { info, data: Default::default(), seen: [0; 2], lost: [false; 2], closed: false, held: 0 }
    }

    fn release(&mut self) {
        DATA_HELD.fetch_sub(std::mem::take(&mut self.held), std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for FtpDataParser {
    fn drop(&mut self) {
        self.release();
    }
}

impl AppParser for FtpDataParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], _out: &mut Vec<AppRecord>) {
        let d = dir.index();
        self.seen[d] = self.seen[d].saturating_add(data.len() as u64);
        let room = MAX_DATA.saturating_sub(self.data[d].len());
        let want = data.len().min(room);
        let take = grant(&DATA_HELD, want, MAX_DATA_TOTAL);
        if take < want {
            metrics::counter!("soc_sensor_ftp_data_unkept_bytes_total").increment((want - take) as u64);
        }
        self.held += take;
        self.data[d].extend_from_slice(&data[..take]);
    }

    fn on_gap(&mut self, dir: Direction, len: u32, _out: &mut Vec<AppRecord>) {
        self.lost[dir.index()] = true;
        self.seen[dir.index()] = self.seen[dir.index()].saturating_add(u64::from(len));
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let (cmd, file_name) = {
            let i = lock(&self.info);
            (i.cmd, i.file_name.clone())
        };
        // the EVE `ftp_data` record: the transfer command and its file
        if let Some(c) = cmd {
            let name = DataCmd::ALL.iter().find(|(x, _)| *x == c).map_or("", |(_, n)| n).to_ascii_uppercase();
            let mut o = serde_json::Map::new();
            o.insert("filename".into(), serde_json::Value::from(String::from_utf8_lossy(&file_name).into_owned()));
            o.insert("command".into(), serde_json::Value::from(name));
            // the transferred file (each direction that carried bytes): a `fileinfo` record
            for dir in [Direction::ToServer, Direction::ToClient] {
                let d = dir.index();
                if self.seen[d] == 0 {
                    continue;
                }
                let mut fields = serde_json::Map::new();
                fields.insert("ftp_data".into(), serde_json::Value::Object(o.clone()));
                fields.insert("app_proto".into(), serde_json::Value::from("ftp-data"));
                let state = if self.lost[d] { "TRUNCATED" } else { "CLOSED" };
                fields.insert(
                    "fileinfo".into(),
                    serde_json::json!({"filename": o["filename"], "gaps": self.lost[d], "state": state,
                                       "stored": false, "size": self.seen[d], "tx_id": 0}),
                );
                let to_client = dir == Direction::ToClient;
                out.push(AppRecord::Log(Box::new(super::LogRecord { event_type: "fileinfo", to_client, fields })));
            }
            out.push(AppRecord::Log(Box::new(super::LogRecord::new("ftp_data", false, o))));
        }
        // Suricata's ftp-data transaction: its command is matched to the server, the file in
        // the direction the bytes travelled
        for dir in [Direction::ToServer, Direction::ToClient] {
            let d = dir.index();
            let data = std::mem::take(&mut self.data[d]);
            if data.is_empty() && dir == Direction::ToClient {
                continue;
            }
            let mut tx = TxInspect::new(AppProto::FtpData, dir);
            if let Some(c) = cmd {
                tx.ints.push((crate::detect::AppInt::FtpdataCommand, c.code()));
            }
            if !data.is_empty() {
                if !self.lost[d] && self.seen[d] == data.len() as u64 {
                    tx.ints.push((crate::detect::AppInt::FileSize, self.seen[d]));
                }
                tx.file_data = Some(data);
            }
            out.push(AppRecord::Inspect(Box::new(tx)));
        }
        // (the bytes went to the inspection records)
        self.release();
    }

    fn is_done(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_budget_of_all_connections_grants_what_is_left_and_then_nothing() {
        let held = std::sync::atomic::AtomicUsize::new(0);
        assert_eq!(grant(&held, 600, 1000), 600);
        assert_eq!(grant(&held, 600, 1000), 400);
        assert_eq!(grant(&held, 1, 1000), 0);
        held.fetch_sub(500, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(grant(&held, 600, 1000), 500);
    }

    #[test]
    fn a_data_connection_gives_back_its_bytes_when_it_closes_or_is_dropped() {
        let mut p = FtpDataParser::new(SharedInfo::default());
        p.on_data(Direction::ToClient, &[7u8; 1000], &mut Vec::new());
        assert_eq!(p.held, 1000);
        let mut out = Vec::new();
        p.on_close(&mut out);
        assert_eq!(p.held, 0);
        let kept: Vec<usize> =
            out.iter().filter_map(AppRecord::as_inspect).filter_map(|t| t.file_data.as_ref().map(Vec::len)).collect();
        assert_eq!(kept, vec![1000], "the kept bytes go to the inspection");
    }

    #[test]
    fn commands_of_a_segment_with_their_arguments() {
        let c = parse_commands(b"USER anonymous\r\nPASS x\r\nQUIT\r\n");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].verb, b"USER");
        assert_eq!(c[0].arg, b"anonymous");
        assert_eq!(c[2].verb, b"QUIT");
        assert_eq!(c[2].arg, b"");
        assert_eq!(parse_commands(b"retr a.txt\n")[0].name(), b"RETR");
    }

    #[test]
    fn non_command_text_is_not_read() {
        assert!(parse_commands(b"").is_empty());
        assert!(parse_commands(b"\x00\x01binary").is_empty());
        assert!(parse_commands(b"220 ready\r\n").is_empty());
        assert!(parse_commands(b"ABCDEFGHIJ x\r\n").is_empty());
        // a line continued from another segment stops the reading
        assert_eq!(parse_commands(b"NOOP\r\n/x/y\r\nCWD /\r\n").len(), 1);
    }

    #[test]
    fn port_and_eprt_addresses() {
        let c = parse_commands(b"PORT 192,168,1,100,200,100\r\n");
        assert_eq!(c[0].data_address(), Some((IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)), 200 * 256 + 100)));
        assert_eq!(parse_eprt_arg(b"|1|132.235.1.2|6275|"), Some(("132.235.1.2".parse().unwrap(), 6275)));
        assert_eq!(parse_eprt_arg(b"|2|1080::8:800:200c:417a|5282|").map(|x| x.1), Some(5282));
        assert_eq!(parse_port_arg(b"1,2,3,4,5"), None);
        assert_eq!(parse_port_arg(b"1,2,3,4,5,6,7"), None);
        assert_eq!(parse_port_arg(b"1,2,3,400,5,6"), None);
        assert_eq!(parse_eprt_arg(b"|3|x|1|"), None);
        assert_eq!(parse_eprt_arg(b"|1|1.2.3.4|"), None);
    }

    #[test]
    fn control_channel_announces_data_connections_and_their_command() {
        let mut p = FtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"USER a\r\nPORT 10,0,0,1,", &mut out);
        assert!(p.take_expectations().is_empty());
        p.on_data(Direction::ToServer, b"4,1\r\nSTOR index.html\r\n", &mut out);
        let e = p.take_expectations();
        assert_eq!(e.len(), 1);
        assert!(e[0].active);
        assert_eq!(e[0].port, 1025);
        assert_eq!(lock(&e[0].info).cmd, Some(DataCmd::Stor));
        assert_eq!(lock(&e[0].info).file_name, b"index.html");
        assert_eq!(DataCmd::from_name(" NLST"), Some(DataCmd::Nlst));
        assert_eq!(DataCmd::from_name("dele"), None);
        assert_ne!(DataCmd::Stou.code(), DataCmd::Stor.code());
        p.on_data(Direction::ToClient, b"227 Entering Passive Mode (10,0,0,2,19,137).\r\n", &mut out);
        p.on_data(Direction::ToClient, b"229 Entering Extended Passive Mode (|||6446|)\r\n", &mut out);
        let e = p.take_expectations();
        assert_eq!(e.iter().map(|x| (x.active, x.port)).collect::<Vec<_>>(), vec![(false, 5001), (false, 6446)]);
        // nothing to inspect (the commands are read per packet); their EVE records only
        assert!(out.iter().all(|r| matches!(r, AppRecord::Log(_))));
    }

    fn ftp_logs(out: &[AppRecord], t: &str) -> Vec<serde_json::Value> {
        out.iter().filter_map(|r| r.as_log(t).map(|l| l.fields[t].clone())).collect()
    }

    #[test]
    fn commands_and_their_replies_are_logged_as_suricata_ftp_records() {
        let mut p = FtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"USER bob\r\n", &mut out);
        p.on_data(Direction::ToClient, b"331 Please specify the password.\r\n", &mut out);
        p.on_data(Direction::ToServer, b"PASV\r\n", &mut out);
        p.on_data(Direction::ToClient, b"227 Entering Passive Mode (10,0,0,2,19,137).\r\n", &mut out);
        p.on_data(Direction::ToServer, b"RETR a.txt\r\n", &mut out);
        p.on_data(Direction::ToClient, b"150 Opening.\r\n", &mut out);
        assert_eq!(ftp_logs(&out, "ftp").len(), 2, "a preliminary reply does not end the command");
        p.on_data(Direction::ToClient, b"226-Transfer\r\n226 complete.\r\n", &mut out);
        p.on_data(Direction::ToServer, b"QUIT\r\n", &mut out);
        p.on_close(&mut out);
        let l = ftp_logs(&out, "ftp");
        assert_eq!(l.len(), 4);
        assert_eq!(
            l[0],
            serde_json::json!({"command": "USER", "command_data": "bob", "reply": ["Please specify the password."],
                "completion_code": ["331"], "reply_received": "yes"})
        );
        assert_eq!((l[1]["dynamic_port"].as_u64(), l[1]["mode"].as_str()), (Some(5001), Some("passive")));
        assert_eq!(l[2]["completion_code"], serde_json::json!(["150", "226", "226"]));
        assert_eq!(l[2]["reply"], serde_json::json!(["Opening.", "Transfer", "complete."]));
        assert_eq!(l[3], serde_json::json!({"command": "QUIT", "command_data": "", "reply_received": "no"}));
    }

    #[test]
    fn long_lines_and_gaps_do_not_announce() {
        let mut p = FtpParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &vec![b'A'; MAX_LINE + 10], &mut out);
        p.on_data(Direction::ToServer, b" PORT 1,2,3,4,5,6\r\n", &mut out);
        assert!(p.take_expectations().is_empty());
        p.on_data(Direction::ToServer, b"PORT 1,2,", &mut out);
        p.on_gap(Direction::ToServer, 10, &mut out);
        p.on_data(Direction::ToServer, b"3,4,5,6\r\n", &mut out);
        assert!(p.take_expectations().is_empty());
        assert_eq!(passive_port(b"227 no address"), None);
        assert_eq!(passive_port(b"227 (1,2,3"), None);
        assert_eq!(passive_port(b"229 (|||x|)"), None);
    }

    #[test]
    fn expectations_match_the_announced_direction_and_stay_bounded() {
        let (c, s): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut t = Expectations::default();
        t.add(c, s, Expectation { active: true, port: 1025, info: SharedInfo::default() }, 0);
        // active: the server connects to the client's port
        assert!(t.take(c, s, 1025, 1).is_none());
        assert!(t.take(s, c, 1025, 1).is_some());
        assert!(t.take(s, c, 1025, 1).is_none());
        for port in 0..(MAX_EXPECTATIONS as u16 + 5) {
            t.add(c, s, Expectation { active: false, port, info: SharedInfo::default() }, 0);
        }
        assert!(t.take(c, s, 0, 1).is_none());
        assert!(t.take(c, s, MAX_EXPECTATIONS as u16 + 4, 1).is_some());
        // too late: forgotten
        assert!(t.take(c, s, MAX_EXPECTATIONS as u16 + 3, EXPECTATION_TIMEOUT_MICROS + 1).is_none());
    }

    #[test]
    fn data_connection_is_inspected_at_its_end_with_its_command() {
        let info = SharedInfo::default();
        lock(&info).cmd = Some(DataCmd::Stor);
        let mut p = FtpDataParser::new(info);
        let mut out = Vec::new();
        p.on_data(Direction::ToClient, b"root:x:0:0", &mut out);
        assert!(out.is_empty());
        p.on_close(&mut out);
        p.on_close(&mut out);
        assert_eq!(ftp_logs(&out, "ftp_data"), vec![serde_json::json!({"filename": "", "command": "STOR"})]);
        // the bytes that went to the client: one file
        let files: Vec<&crate::app::LogRecord> = out.iter().filter_map(|r| r.as_log("fileinfo")).collect();
        assert_eq!(files.len(), 1);
        assert!(files[0].to_client);
        assert_eq!(files[0].fields["app_proto"], "ftp-data");
        assert_eq!(files[0].fields["ftp_data"], serde_json::json!({"filename": "", "command": "STOR"}));
        assert_eq!(
            files[0].fields["fileinfo"],
            serde_json::json!({"filename": "", "gaps": false, "state": "CLOSED", "stored": false, "size": 10,
                               "tx_id": 0})
        );
        out.retain(|r| !matches!(r, AppRecord::Log(_)));
        assert_eq!(out.len(), 2);
        let AppRecord::Inspect(t) = &out[1] else { panic!("not an inspection") };
        assert_eq!(t.dir, Direction::ToClient);
        assert_eq!(t.file_data.as_deref(), Some(&b"root:x:0:0"[..]));
        assert!(t.ints.contains(&(crate::detect::AppInt::FtpdataCommand, 1)));
        assert!(t.ints.contains(&(crate::detect::AppInt::FileSize, 10)));
        let AppRecord::Inspect(t) = &out[0] else { panic!("not an inspection") };
        assert_eq!((t.dir, t.file_data.is_none()), (Direction::ToServer, true));
    }

    #[test]
    fn bounce_is_a_port_to_another_host() {
        let client: IpAddr = "1.1.1.2".parse().unwrap();
        assert!(!parse_commands(b"PORT 1,1,1,2,232,157\r\n")[0].is_bounce(client));
        assert!(parse_commands(b"PORT 2,2,2,3,0,80\r\n")[0].is_bounce(client));
        assert!(!parse_commands(b"RETR 2,2,2,3,0,80\r\n")[0].is_bounce(client));
        // an IPv4-mapped client address is the same host
        let mapped: IpAddr = "::ffff:1.1.1.2".parse().unwrap();
        assert!(!parse_commands(b"PORT 1,1,1,2,0,80\r\n")[0].is_bounce(mapped));
    }
}
