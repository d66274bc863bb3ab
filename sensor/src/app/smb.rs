//! SMB1 and SMB2/3 over NetBIOS session framing (TCP 139/445), as far as detection needs it.
//!
//! Parsed: the NetBIOS session header, the SMB1 header with AndX chains and the SMB2 header
//! with compound chains; tree connects (the share, and whether it is a named pipe share),
//! creates (file and pipe names), reads and writes (file data, DCERPC over named pipes),
//! SMB2 pipe transceive ioctls and SMB1 named-pipe transactions (DCERPC), closes. Every SMB
//! command gives one [`TxInspect`] per direction (its `smb.version`); tree connect responses
//! carry `smb.share` / `smb.named_pipe`; a file's data is inspected (`file.data`) when it is
//! closed or the flow ends; DCERPC PDUs on pipes go through [`DceState`]. Encrypted SMB3
//! messages (transform header) are skipped.
//!
//! Logged as Suricata's EVE `smb` records ([`SmbLog`]): one per SMB2 command transaction
//! (request and response; the SMB1 negotiate too), with the negotiate's dialects, GUIDs and
//! sizes, the session setup's Kerberos ticket names or NTLMSSP user, the tree connect's share,
//! the create's name, disposition, times, size and file id, the ioctl's function. DCERPC over
//! a pipe is part of the record of the write or ioctl that started the call (`dcerpc`), reads
//! and writes of a file are one transaction logged when it is closed, with a `fileinfo`
//! record. Records are numbered (`id`) as transactions are created.

use super::dcerpc::{DceState, TxInspect, pdu_len};
use super::{AppParser, AppProto, AppRecord, Direction};

/// Largest NetBIOS message buffered (SMB2 allows 24-bit lengths; larger ones end parsing of
/// their direction).
const MAX_MSG: usize = 4 << 20;
/// Most file bytes kept per file and direction for `file.data`.
const MAX_FILE_DATA: usize = 1 << 20;
/// Most file bytes kept for all the open files of a connection.
const MAX_CONN_FILE_DATA: usize = 4 << 20;
/// Most pending requests, trees and files remembered.
const MAX_PENDING: usize = 256;
const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_c017;
/// SMB2 `STATUS_BUFFER_OVERFLOW`: a pipe read that returned part of a message (data valid).
const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;
const STATUS_PENDING: u32 = 0x0000_0103;
/// The `smb.file_overlap` app-layer event bit.
const FILE_OVERLAP: u64 = 1 << (crate::detect::AppEvent::SmbFileOverlap as u8);

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// A name in UTF-16LE (`unicode`) or in bytes, up to its terminating NUL.
fn name(d: &[u8], unicode: bool) -> Vec<u8> {
    if unicode {
        let units: Vec<u16> =
            d.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
        String::from_utf16_lossy(&units).into_bytes()
    } else {
        d.iter().copied().take_while(|&b| b != 0).collect()
    }
}

/// A file or pipe opened on the connection.
#[derive(Debug)]
struct File {
    /// SMB2 FileId, or the SMB1 FID in its first two bytes.
    id: [u8; 16],
    pipe: bool,
    /// Data written (to server) and read (to client).
    data: [Vec<u8>; 2],
    /// File offset of the end of the data seen, per direction.
    end: [u64; 2],
    /// DCERPC bytes not yet framed into a PDU, per direction.
    dce_buf: [Vec<u8>; 2],
}

/// What a pending request needs its response for.
#[derive(Debug, Clone)]
enum Pending {
    TreeConnect(Vec<u8>),
    Create {
        pipe: bool,
    },
    Read([u8; 16], u64),
    PipeIo,
    /// A write that overlapped earlier data: its response carries the event too.
    WriteOverlap,
}

/// SMB state of one TCP connection.
#[derive(Debug, Default)]
pub struct SmbParser {
    buf: [Vec<u8>; 2],
    lost: [bool; 2],
    /// Requests waiting for their response, by SMB1 pid/mid or SMB2 message id.
    pending: Vec<(u64, Pending)>,
    /// Tree ids of named pipe shares.
    pipe_trees: Vec<u32>,
    files: Vec<File>,
    dce: DceState,
    /// File bytes kept in [`File::data`] (bounded by [`MAX_CONN_FILE_DATA`]).
    file_bytes: usize,
    /// Messages and commands that did not decode.
    malformed: u64,
    scratch: Vec<TxInspect>,
    /// Completed transaction sides waiting for the next packet of their direction.
    deferred: Vec<TxInspect>,
    /// A gap was seen: look for the next message header before parsing on.
    resync: [bool; 2],
    /// An SMB1 negotiate request waits for its response (which may be an SMB2 one: the
    /// transaction stays SMB1).
    smb1_negotiate: bool,
    /// The EVE `smb` records being built.
    log: SmbLog,
    /// The SMB commands that started DCERPC transactions: their record's id, command, session
    /// and tree (the DCERPC object completes the record).
    dce_txs: Vec<(u64, &'static str, u64, u32)>,
}

impl SmbParser {
    pub fn malformed(&self) -> u64 {
        self.malformed + self.dce.malformed
    }

    /// Records whether tree `tid` (just connected) is a pipe share (IPC$): a reused tree id
    /// loses its old mark, so a file share never passes for a pipe. At most MAX_PENDING kept.
    fn mark_tree(&mut self, tid: u32, pipe: bool) {
        self.pipe_trees.retain(|&t| t != tid);
        if pipe && self.pipe_trees.len() < MAX_PENDING {
            self.pipe_trees.push(tid);
        }
    }

    /// The transaction sides of direction `dir` completed by earlier packets (see
    /// [`super::Parser::take_deferred`]).
    pub fn take_deferred(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        super::dcerpc::take_deferred(&mut self.deferred, dir, out);
    }

    fn remember(&mut self, key: u64, p: Pending) {
        self.pending.retain(|(k, _)| *k != key);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push((key, p));
    }

    fn take(&mut self, key: u64) -> Option<Pending> {
        let i = self.pending.iter().position(|(k, _)| *k == key)?;
        Some(self.pending.remove(i).1)
    }

    fn open(&mut self, id: [u8; 16], pipe: bool) {
        let mut dropped = 0;
        self.files.retain(|f| {
            let keep = f.id != id;
            if !keep {
                dropped += f.data[0].len() + f.data[1].len();
            }
            keep
        });
        if self.files.len() >= MAX_PENDING {
            let f = self.files.remove(0);
            dropped += f.data[0].len() + f.data[1].len();
        }
        self.file_bytes = self.file_bytes.saturating_sub(dropped);
        self.files.push(File { id, pipe, data: Default::default(), end: [0; 2], dce_buf: Default::default() });
    }

    /// Data read from or written to file `id` at `offset`: file data, or DCERPC on a pipe.
    /// Returns whether it overlapped data already seen (`smb.file_overlap`).
    fn file_data(&mut self, id: [u8; 16], dir: Direction, offset: u64, data: &[u8], out: &mut Vec<TxInspect>) -> bool {
        let looks_dce = pdu_len(data).is_some();
        let Some(f) = self.files.iter_mut().find(|f| f.id == id) else {
            // a pipe opened before the capture started
            if looks_dce {
                self.dce.on_pdu(dir, data, AppProto::Smb, out);
            }
            return false;
        };
        if f.pipe {
            let b = &mut f.dce_buf[dir.index()];
            b.extend_from_slice(data);
            let mut at = 0;
            while let Some(len) = pdu_len(&b[at..]) {
                if b.len() - at < len {
                    break;
                }
                self.dce.on_pdu(dir, &b[at..at + len], AppProto::Smb, out);
                at += len;
            }
            if at < b.len() && pdu_len(&b[at..]).is_none() && b.len() - at >= 10 {
                // not DCERPC: drop it
                b.clear();
            } else {
                b.drain(..at);
            }
            return false;
        }
        // bytes already seen are kept as first seen (the rest is appended)
        let d = dir.index();
        let end = f.end[d];
        let overlap = offset < end;
        let skip = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX).min(data.len());
        let fresh = &data[skip..];
        f.end[d] = end.max(offset.saturating_add(data.len() as u64));
        let buf = &mut f.data[d];
        let room = MAX_FILE_DATA.saturating_sub(buf.len()).min(MAX_CONN_FILE_DATA.saturating_sub(self.file_bytes));
        let n = fresh.len().min(room);
        buf.extend_from_slice(&fresh[..n]);
        self.file_bytes += n;
        overlap
    }

    /// A pipe transceive (SMB2 ioctl, SMB1 transaction): one whole PDU each way.
    fn pipe_io(&mut self, dir: Direction, data: &[u8], out: &mut Vec<TxInspect>) {
        if pdu_len(data).is_some() {
            self.dce.on_pdu(dir, data, AppProto::Smb, out);
        }
    }

    fn close(&mut self, id: [u8; 16], out: &mut Vec<TxInspect>) {
        let Some(i) = self.files.iter().position(|f| f.id == id) else { return };
        let f = self.files.remove(i);
        self.file_bytes = self.file_bytes.saturating_sub(f.data[0].len() + f.data[1].len());
        flush_file(f, out);
    }

    fn message(&mut self, dir: Direction, msg: &[u8], out: &mut Vec<TxInspect>) {
        let ok = match msg.get(..4) {
            Some(b"\xffSMB") => self.smb1(dir, msg, out),
            Some(b"\xfeSMB") => self.smb2(dir, msg, out),
            // SMB3 transform (encrypted) or compression header
            Some(b"\xfdSMB") | Some(b"\xfcSMB") => Some(()),
            _ => None,
        };
        if ok.is_none() {
            self.malformed += 1;
        }
    }

    fn smb1(&mut self, dir: Direction, m: &[u8], out: &mut Vec<TxInspect>) -> Option<()> {
        let mut cmd = *m.get(4)?;
        let status = le32(m, 5)?;
        let reply = m.get(9)? & 0x80 != 0;
        let unicode = le16(m, 10)? & 0x8000 != 0;
        let tid = le16(m, 24)?;
        let key = (u64::from(le16(m, 26)?) << 16) | u64::from(le16(m, 30)?);
        let mut at = 32;
        for _ in 0..8 {
            let wc = *m.get(at)? as usize;
            let words = m.get(at + 1..at + 1 + wc * 2)?;
            let bc = le16(m, at + 1 + wc * 2)? as usize;
            let bytes_at = at + 3 + wc * 2;
            let bytes = m.get(bytes_at..(bytes_at + bc).min(m.len()))?;
            let mut tx = TxInspect::new(AppProto::Smb, dir);
            tx.smb_version = Some(1);
            let n = out.len();
            match (cmd, reply) {
                (0x73, false) => ntlmssp_auth(bytes, &mut tx),
                (0x72, false) => {
                    self.smb1_negotiate = true;
                    let tx = self.log.start(SMB1_NEGOTIATE_KEY, "SMB1_COMMAND_NEGOTIATE_PROTOCOL", 0, 0);
                    tx.fields.insert("client_dialects".into(), Value::Array(smb1_dialects(bytes)));
                }
                (0x72, true) => {
                    self.smb1_negotiate = false;
                    if let Some(mut tx) = self.log.take(SMB1_NEGOTIATE_KEY) {
                        tx.status = Some(status);
                        self.log.finish(tx);
                    }
                }
                (0x75, false) => {
                    let pw_len = le16(words, 6)? as usize;
                    let mut p = bytes_at + pw_len;
                    if unicode && p % 2 == 1 {
                        p += 1;
                    }
                    let share = name(m.get(p..bytes_at + bytes.len())?, unicode);
                    request_share(&mut tx, &share);
                    self.remember(key, Pending::TreeConnect(share));
                }
                (0x75, true) => {
                    if let Some(Pending::TreeConnect(share)) = self.take(key)
                        && status == 0
                    {
                        let pipe = bytes.starts_with(b"IPC") || share.ends_with(b"IPC$");
                        self.mark_tree(u32::from(tid), pipe);
                        if !pipe {
                            tx.share = Some(share);
                        }
                    }
                }
                (0xa2, false) => {
                    self.remember(key, Pending::Create { pipe: self.pipe_trees.contains(&u32::from(tid)) });
                }
                (0xa2, true) => {
                    if let Some(Pending::Create { pipe }) = self.take(key)
                        && status == 0
                    {
                        let fid = le16(words, 5)?;
                        self.open(fid1(fid), pipe);
                    }
                }
                (0x2f, false) => {
                    let fid = le16(words, 4)?;
                    let len = (usize::from(le16(words, 18)?) << 16) | usize::from(le16(words, 20)?);
                    let off = le16(words, 22)? as usize;
                    let mut file_off = u64::from(le32(words, 6)?);
                    if wc >= 14 {
                        file_off |= u64::from(le32(words, 24)?) << 32;
                    }
                    let data = m.get(off..(off + len).min(m.len()))?;
                    if self.file_data(fid1(fid), dir, file_off, data, out) {
                        tx.app_events |= FILE_OVERLAP;
                        self.remember(key, Pending::WriteOverlap);
                    }
                }
                (0x2f, true) => {
                    if let Some(Pending::WriteOverlap) = self.take(key) {
                        tx.app_events |= FILE_OVERLAP;
                    }
                }
                (0x2e, false) => {
                    let fid = le16(words, 4)?;
                    let mut file_off = u64::from(le32(words, 6)?);
                    if wc >= 12 {
                        file_off |= u64::from(le32(words, 20)?) << 32;
                    }
                    self.remember(key, Pending::Read(fid1(fid), file_off));
                }
                (0x2e, true) => {
                    if let Some(Pending::Read(id, file_off)) = self.take(key)
                        && (status == 0 || status == STATUS_BUFFER_OVERFLOW)
                    {
                        let len = le16(words, 10)? as usize;
                        let off = le16(words, 12)? as usize;
                        let data = m.get(off..(off + len).min(m.len()))?;
                        if self.file_data(id, dir, file_off, data, out) {
                            tx.app_events |= FILE_OVERLAP;
                        }
                    }
                }
                (0x25, false) => {
                    let data_count = le16(words, 22)? as usize;
                    let data_off = le16(words, 24)? as usize;
                    let setup_count = *words.get(26)?;
                    if setup_count >= 2 && le16(words, 28)? == 0x26 {
                        self.remember(key, Pending::PipeIo);
                        let data = m.get(data_off..(data_off + data_count).min(m.len()))?;
                        self.pipe_io(dir, data, out);
                    }
                }
                (0x25, true) => {
                    if let Some(Pending::PipeIo) = self.take(key) {
                        let data_count = le16(words, 12)? as usize;
                        let data_off = le16(words, 14)? as usize;
                        let data = m.get(data_off..(data_off + data_count).min(m.len()))?;
                        self.pipe_io(dir, data, out);
                    }
                }
                (0x04, false) => {
                    let fid = le16(words, 0)?;
                    self.close(fid1(fid), out);
                }
                _ => {}
            }
            merge_dce(&mut tx, out, n);
            out.push(tx);
            // AndX chain
            let andx = matches!(cmd, 0x73 | 0x75 | 0xa2 | 0x2e | 0x2f | 0x24 | 0x74);
            if !andx || wc < 2 {
                break;
            }
            let next = words[0];
            let next_at = le16(words, 2)? as usize;
            if next == 0xff || next_at <= at || next_at >= m.len() {
                break;
            }
            cmd = next;
            at = next_at;
        }
        Some(())
    }

    fn smb2(&mut self, dir: Direction, msg: &[u8], out: &mut Vec<TxInspect>) -> Option<()> {
        let mut start = 0;
        for _ in 0..32 {
            let m = msg.get(start..)?;
            let next = le32(m, 20)? as usize;
            let end = if next == 0 { m.len() } else { next.min(m.len()) };
            self.smb2_one(dir, &m[..end], out)?;
            if next == 0 || next >= m.len() {
                break;
            }
            start += next;
        }
        Some(())
    }

    fn smb2_one(&mut self, dir: Direction, m: &[u8], out: &mut Vec<TxInspect>) -> Option<()> {
        if m.get(..4)? != b"\xfeSMB" {
            return None;
        }
        let status = le32(m, 8)?;
        let cmd = le16(m, 12)?;
        let reply = le32(m, 16)? & 1 != 0;
        let key = le64(m, 24)?;
        let tree = le32(m, 36)?;
        let b = m.get(64..)?;
        let file_id = |at: usize| -> Option<[u8; 16]> { b.get(at..at + 16)?.try_into().ok() };
        if reply && status == STATUS_PENDING {
            // an interim response: the final one follows
            return Some(());
        }
        let h = Hdr2 { cmd, key, session: le64(m, 40)?, tree, status };
        if self.log_smb2(h, reply, m).is_none() {
            self.malformed += 1;
        }
        // DCERPC transactions started by this command get the id of its record
        let dce_before = matches!(cmd, 8 | 9 | 0xb).then(|| self.dce.set_log_tag(self.log.next_id + 1));
        let mut tx = TxInspect::new(AppProto::Smb, dir);
        tx.smb_version = Some(2);
        let n = out.len();
        match (cmd, reply) {
            (0, true) if std::mem::take(&mut self.smb1_negotiate) => tx.smb_version = Some(1),
            (1, false) => ntlmssp_auth(b, &mut tx),
            (3, false) => {
                let off = le16(b, 4)? as usize;
                let len = le16(b, 6)? as usize;
                let share = name(m.get(off..(off + len).min(m.len()))?, true);
                request_share(&mut tx, &share);
                self.remember(key, Pending::TreeConnect(share));
            }
            (3, true) => {
                if let Some(Pending::TreeConnect(_)) = self.take(key)
                    && status == 0
                {
                    // the share was inspected with the request (SMB1 inspects it with both
                    // sides, as Suricata's alert counts show)
                    self.mark_tree(tree, *b.get(2)? == 2);
                }
            }
            (5, false) => {
                self.remember(key, Pending::Create { pipe: self.pipe_trees.contains(&tree) });
            }
            (5, true) => {
                if let Some(Pending::Create { pipe }) = self.take(key)
                    && status == 0
                {
                    self.open(file_id(64)?, pipe);
                }
            }
            (8, false) => self.remember(key, Pending::Read(file_id(16)?, le64(b, 8)?)),
            (8, true) => {
                if let Some(Pending::Read(id, file_off)) = self.take(key)
                    && (status == 0 || status == STATUS_BUFFER_OVERFLOW)
                {
                    let off = *b.get(2)? as usize;
                    let len = le32(b, 4)? as usize;
                    let data = m.get(off..off.saturating_add(len).min(m.len()))?;
                    if self.file_data(id, dir, file_off, data, out) {
                        tx.app_events |= FILE_OVERLAP;
                    }
                }
            }
            (9, false) => {
                let off = le16(b, 2)? as usize;
                let len = le32(b, 4)? as usize;
                let data = m.get(off..off.saturating_add(len).min(m.len()))?;
                if self.file_data(file_id(16)?, dir, le64(b, 8)?, data, out) {
                    tx.app_events |= FILE_OVERLAP;
                    self.remember(key, Pending::WriteOverlap);
                }
            }
            (9, true) => {
                if let Some(Pending::WriteOverlap) = self.take(key) {
                    tx.app_events |= FILE_OVERLAP;
                }
            }
            (0xb, false) if le32(b, 4)? == FSCTL_PIPE_TRANSCEIVE => {
                self.remember(key, Pending::PipeIo);
                let off = le32(b, 24)? as usize;
                let len = le32(b, 28)? as usize;
                let data = m.get(off..off.saturating_add(len).min(m.len()))?;
                self.pipe_io(dir, data, out);
            }
            (0xb, true) => {
                if let Some(Pending::PipeIo) = self.take(key)
                    && (status == 0 || status == STATUS_BUFFER_OVERFLOW)
                {
                    let off = le32(b, 32)? as usize;
                    let len = le32(b, 36)? as usize;
                    let data = m.get(off..off.saturating_add(len).min(m.len()))?;
                    self.pipe_io(dir, data, out);
                }
            }
            (6, false) => self.close(file_id(8)?, out),
            _ => {}
        }
        if let Some(before) = dce_before {
            self.log_dce(h, reply, before);
        }
        merge_dce(&mut tx, out, n);
        out.push(tx);
        Some(())
    }
}

/// A tree connect request: its share is a named pipe when it is `IPC$` (the response tells for
/// sure); named pipes are inspected with the request only, other shares with both sides.
fn request_share(tx: &mut TxInspect, share: &[u8]) {
    if share.len() >= 4 && share[share.len() - 4..].eq_ignore_ascii_case(b"IPC$") {
        tx.named_pipe = Some(share.to_vec());
    } else {
        tx.share = Some(share.to_vec());
    }
}

/// The user and domain of an NTLMSSP authenticate message (type 3) in a session setup's
/// security blob.
fn ntlmssp_auth(blob: &[u8], tx: &mut TxInspect) {
    let Some(at) = memchr::memmem::find(blob, b"NTLMSSP\0\x03\0\0\0") else { return };
    let m = &blob[at..];
    let unicode = le32(m, 60).is_some_and(|f| f & 1 != 0);
    let field = |at: usize| -> Option<Vec<u8>> {
        let len = le16(m, at)? as usize;
        let off = le32(m, at + 4)? as usize;
        let raw = m.get(off..off.checked_add(len)?)?;
        Some(if unicode { name(raw, true) } else { raw.to_vec() })
    };
    tx.ntlmssp_domain = field(28);
    tx.ntlmssp_user = field(36);
}

/// The offset of the first NetBIOS session message header followed by an SMB1 or SMB2 header.
fn resync_point(buf: &[u8]) -> Option<usize> {
    (0..buf.len().saturating_sub(7))
        .find(|&i| buf[i] == 0 && buf[i + 1] == 0 && matches!(&buf[i + 4..i + 8], b"\xffSMB" | b"\xfeSMB" | b"\xfdSMB"))
}

/// An SMB1 FID as a file id.
fn fid1(fid: u16) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..2].copy_from_slice(&fid.to_le_bytes());
    id
}

/// The DCERPC request or response a command completed (pushed to `out` after index `n`)
/// becomes part of the command's own inspection; file records stay separate.
fn merge_dce(tx: &mut TxInspect, out: &mut Vec<TxInspect>, n: usize) {
    if let Some(i) = (n..out.len()).rev().find(|&i| out[i].dce.is_some() && out[i].dir == tx.dir) {
        let d = out.remove(i);
        tx.dce = d.dce;
        tx.stub = d.stub;
    }
}

fn flush_file(f: File, out: &mut Vec<TxInspect>) {
    for (i, data) in f.data.into_iter().enumerate() {
        if !data.is_empty() {
            let dir = if i == 0 { Direction::ToServer } else { Direction::ToClient };
            let mut tx = TxInspect::new(AppProto::Smb, dir);
            // a file kept whole (from offset 0, nothing cut): its size for `filesize`
            if f.end[i] == data.len() as u64 {
                tx.ints.push((crate::detect::AppInt::FileSize, f.end[i]));
            }
            tx.file_data = Some(data);
            out.push(tx);
        }
    }
}

/// Suricata's names of the NT status codes seen in SMB responses (others: their hex code).
fn status_name(status: u32) -> String {
    let n = match status {
        0 => "STATUS_SUCCESS",
        0x0000_0103 => "STATUS_PENDING",
        0x8000_0005 => "STATUS_BUFFER_OVERFLOW",
        0x8000_0006 => "STATUS_NO_MORE_FILES",
        0xc000_000d => "STATUS_INVALID_PARAMETER",
        0xc000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xc000_0011 => "STATUS_END_OF_FILE",
        0xc000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xc000_0022 => "STATUS_ACCESS_DENIED",
        0xc000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xc000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xc000_003a => "STATUS_OBJECT_PATH_NOT_FOUND",
        0xc000_0043 => "STATUS_SHARING_VIOLATION",
        0xc000_006d => "STATUS_LOGON_FAILURE",
        0xc000_00bb => "STATUS_NOT_SUPPORTED",
        0xc000_00c9 => "STATUS_NETWORK_NAME_DELETED",
        0xc000_00cc => "STATUS_BAD_NETWORK_NAME",
        0xc000_019c => "STATUS_FS_DRIVER_REQUIRED",
        0xc000_0203 => "STATUS_USER_SESSION_DELETED",
        0xc000_0225 => "STATUS_NOT_FOUND",
        _ => return format!("{status:#x}"),
    };
    n.to_string()
}

/// Suricata's names of the SMB2 commands.
fn smb2_command_name(cmd: u16) -> &'static str {
    match cmd {
        0 => "SMB2_COMMAND_NEGOTIATE_PROTOCOL",
        1 => "SMB2_COMMAND_SESSION_SETUP",
        2 => "SMB2_COMMAND_SESSION_LOGOFF",
        3 => "SMB2_COMMAND_TREE_CONNECT",
        4 => "SMB2_COMMAND_TREE_DISCONNECT",
        5 => "SMB2_COMMAND_CREATE",
        6 => "SMB2_COMMAND_CLOSE",
        7 => "SMB2_COMMAND_FLUSH",
        8 => "SMB2_COMMAND_READ",
        9 => "SMB2_COMMAND_WRITE",
        0xa => "SMB2_COMMAND_LOCK",
        0xb => "SMB2_COMMAND_IOCTL",
        0xc => "SMB2_COMMAND_CANCEL",
        0xd => "SMB2_COMMAND_KEEPALIVE",
        0xe => "SMB2_COMMAND_FIND",
        0xf => "SMB2_COMMAND_CHANGE_NOTIFY",
        0x10 => "SMB2_COMMAND_GET_INFO",
        0x11 => "SMB2_COMMAND_SET_INFO",
        0x12 => "SMB2_COMMAND_OPLOCK_BREAK",
        _ => "SMB2_COMMAND_UNKNOWN",
    }
}

/// Suricata's names of the IOCTL function codes.
fn fsctl_name(code: u32) -> String {
    let n = match code {
        0x0006_0194 => "FSCTL_DFS_GET_REFERRALS",
        0x0006_01b0 => "FSCTL_DFS_GET_REFERRALS_EX",
        0x0011_0018 => "FSCTL_PIPE_WAIT",
        0x0011_400c => "FSCTL_PIPE_PEEK",
        FSCTL_PIPE_TRANSCEIVE => "FSCTL_PIPE_TRANSCEIVE",
        0x0014_0078 => "FSCTL_SRV_REQUEST_RESUME_KEY",
        0x0014_01fc => "FSCTL_QUERY_NETWORK_INTERFACE_INFO",
        0x0014_0204 => "FSCTL_VALIDATE_NEGOTIATE_INFO",
        0x0014_4064 => "FSCTL_SRV_ENUMERATE_SNAPSHOTS",
        0x0014_40f2 => "FSCTL_SRV_COPYCHUNK",
        0x0014_c0f2 => "FSCTL_SRV_COPYCHUNK_WRITE",
        0x0009_00a4 => "FSCTL_SET_REPARSE_POINT",
        0x0009_00a8 => "FSCTL_GET_REPARSE_POINT",
        _ => return format!("{code:#x}"),
    };
    n.to_string()
}

/// An SMB2 dialect revision as Suricata writes it (`3.11`, `2.??` for the wildcard).
fn dialect_text(d: u16) -> String {
    if d == 0x02ff { "2.??".to_string() } else { format!("{:x}.{:02x}", d >> 8, d & 0xff) }
}

/// A GUID or SMB2 file id as Suricata writes it.
fn guid_text(g: &[u8]) -> String {
    let Some(g) = g.get(..16) else { return String::new() };
    let h = |i: &[usize]| super::hex(&i.iter().map(|&i| g[i]).collect::<Vec<u8>>());
    format!("{}-{}-{}-{}-{}", h(&[3, 2, 1, 0]), h(&[5, 4]), h(&[7, 6]), h(&[9, 8]), h(&[11, 10, 15, 14, 13, 12]))
}

/// A FILETIME (100 ns since 1601) as Unix seconds (0 when unset).
fn filetime_secs(ft: u64) -> u64 {
    (ft / 10_000_000).saturating_sub(11_644_473_600)
}

/// Suricata's names of the create dispositions.
fn disposition_name(d: u32) -> &'static str {
    match d {
        0 => "FILE_SUPERSEDE",
        1 => "FILE_OPEN",
        2 => "FILE_CREATE",
        3 => "FILE_OPEN_IF",
        4 => "FILE_OVERWRITE",
        5 => "FILE_OVERWRITE_IF",
        _ => "UNKNOWN",
    }
}

/// The realm and service names of the Kerberos ticket of an AP-REQ in a session setup's
/// security blob (SPNEGO around a GSS-API Kerberos token).
fn krb_ticket(blob: &[u8]) -> Option<(String, Vec<String>)> {
    use super::ber;
    // the Kerberos 5 mechanism OID followed by the AP-REQ token id
    let at = memchr::memmem::find(blob, b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00")?;
    let ap = ber::read_partial(blob.get(at + 11..)?).filter(|t| t.tag == 0x6e)?;
    let body = ber::read_partial(ap.content).filter(|t| t.tag == 0x30)?;
    let ticket = ber::field(body.content, 3, true)?;
    let ticket = ber::read_partial(ticket.content).filter(|t| t.tag == 0x61)?;
    let ticket = ber::read_partial(ticket.content).filter(|t| t.tag == 0x30)?;
    let realm = ber::field(ticket.content, 1, true)?;
    let realm = ber::read_partial(realm.content).filter(|t| t.tag == 0x1b)?;
    let sname = ber::field(ticket.content, 2, true)?;
    let sname = ber::read_partial(sname.content).filter(|t| t.tag == 0x30)?;
    let names = ber::field(sname.content, 1, true)?;
    let names = ber::read_partial(names.content).filter(|t| t.tag == 0x30)?;
    let snames = ber::children(names.content, true)
        .filter(|t| t.tag == 0x1b)
        .map(|t| String::from_utf8_lossy(t.content).into_owned())
        .collect();
    Some((String::from_utf8_lossy(realm.content).into_owned(), snames))
}

/// The user, domain and host of an NTLMSSP authenticate message (type 3) in a security blob.
fn ntlmssp_fields(blob: &[u8]) -> Option<Map> {
    let at = memchr::memmem::find(blob, b"NTLMSSP\0\x03\0\0\0")?;
    let m = &blob[at..];
    let unicode = le32(m, 60).is_some_and(|f| f & 1 != 0);
    let field = |at: usize| -> Option<String> {
        let len = le16(m, at)? as usize;
        let off = le32(m, at + 4)? as usize;
        let raw = m.get(off..off.checked_add(len)?)?;
        let v = if unicode { name(raw, true) } else { raw.to_vec() };
        Some(String::from_utf8_lossy(&v).into_owned())
    };
    let mut o = Map::new();
    o.insert("domain".into(), Value::from(field(28)?));
    o.insert("user".into(), Value::from(field(36)?));
    o.insert("host".into(), Value::from(field(44)?));
    Some(o)
}

type Map = serde_json::Map<String, serde_json::Value>;
use serde_json::Value;

/// One EVE `smb` transaction being built: a command's request and response.
#[derive(Debug)]
struct LogTx {
    id: u64,
    /// SMB2 message id (SMB1: pid/mid), [`SMB1_NEGOTIATE_KEY`] for an SMB1 negotiate.
    key: u64,
    /// A file transaction (reads or writes of one file, logged when it is closed): its id.
    fuid: Option<[u8; 16]>,
    command: &'static str,
    session_id: u64,
    tree_id: u32,
    status: Option<u32>,
    /// The command's own fields.
    fields: Map,
}

/// The key of the SMB1 negotiate transaction (answered by an SMB2 negotiate response).
const SMB1_NEGOTIATE_KEY: u64 = u64::MAX;

/// The EVE `smb` log of a connection (Suricata's transaction records).
#[derive(Debug, Default)]
struct SmbLog {
    next_id: u64,
    dialect: Option<String>,
    open: Vec<LogTx>,
    /// Share names per tree id, and file names per file id.
    trees: Vec<(u32, String)>,
    names: Vec<([u8; 16], String)>,
    done: Vec<Map>,
    /// `fileinfo` records: whether the file travelled to the client, and the fields.
    files: Vec<(bool, Map)>,
}

impl SmbLog {
    fn start(&mut self, key: u64, command: &'static str, session_id: u64, tree_id: u32) -> &mut LogTx {
        if self.open.len() >= MAX_PENDING {
            let old = self.open.remove(0);
            self.finish(old);
        }
        self.next_id += 1;
        let tx =
            LogTx { id: self.next_id, key, fuid: None, command, session_id, tree_id, status: None, fields: Map::new() };
        self.open.push(tx);
        let i = self.open.len() - 1;
        &mut self.open[i]
    }

    fn take(&mut self, key: u64) -> Option<LogTx> {
        let i = self.open.iter().position(|t| t.key == key && t.fuid.is_none())?;
        Some(self.open.remove(i))
    }

    fn finish(&mut self, tx: LogTx) {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(tx.id));
        m.insert("dialect".into(), Value::from(self.dialect.clone().unwrap_or_else(|| "unknown".to_string())));
        m.insert("command".into(), Value::from(tx.command));
        if let Some(s) = tx.status {
            m.insert("status".into(), Value::from(status_name(s)));
            m.insert("status_code".into(), Value::from(format!("{s:#x}")));
        }
        m.insert("session_id".into(), Value::from(tx.session_id));
        m.insert("tree_id".into(), Value::from(tx.tree_id));
        m.extend(tx.fields);
        self.done.push(m);
    }

    /// The file transaction of file `fuid` gets its record, and the file its `fileinfo`
    /// record: `size` bytes (per direction), `closed` by the client (else the flow ended).
    fn close_file(&mut self, fuid: [u8; 16], size: [u64; 2], closed: bool) {
        let Some(i) = self.open.iter().position(|t| t.fuid == Some(fuid)) else { return };
        let tx = self.open.remove(i);
        let (tx_id, to_client) = (tx.id.saturating_sub(1), tx.command == smb2_command_name(8));
        let filename = tx.fields.get("filename").cloned().unwrap_or_default();
        self.finish(tx);
        let Some(smb) = self.done.last().cloned() else { return };
        let mut f = Map::new();
        f.insert("smb".into(), Value::Object(smb));
        f.insert("app_proto".into(), Value::from("smb"));
        f.insert(
            "fileinfo".into(),
            serde_json::json!({"filename": filename, "gaps": false, "state": if closed { "CLOSED" } else { "TRUNCATED" },
                               "stored": false, "size": size[usize::from(to_client)], "tx_id": tx_id}),
        );
        self.files.push((to_client, f));
    }

    fn name_of(&self, fuid: &[u8; 16]) -> String {
        self.names.iter().rev().find(|(f, _)| f == fuid).map(|(_, n)| n.clone()).unwrap_or_default()
    }

    fn share_of(&self, tree: u32) -> String {
        self.trees.iter().rev().find(|(t, _)| *t == tree).map(|(_, n)| n.clone()).unwrap_or_default()
    }

    /// A read or write of a file (not a pipe): one transaction per file, named by its first
    /// operation.
    fn file_op(&mut self, h: &Hdr2, fuid: [u8; 16]) {
        if self.open.iter().any(|t| t.fuid == Some(fuid)) {
            return;
        }
        let (filename, share) = (self.name_of(&fuid), self.share_of(h.tree));
        let tx = self.start(h.key, smb2_command_name(h.cmd), h.session, h.tree);
        tx.fuid = Some(fuid);
        tx.fields.insert("filename".into(), Value::from(filename));
        tx.fields.insert("share".into(), Value::from(share));
        tx.fields.insert("fuid".into(), Value::from(guid_text(&fuid)));
    }

    /// The status of a file transaction's first response.
    fn file_status(&mut self, key: u64, status: u32) {
        if let Some(t) = self.open.iter_mut().find(|t| t.fuid.is_some() && t.key == key && t.status.is_none()) {
            t.status = Some(status);
        }
    }

    /// All transactions still open get their record (the flow ends).
    fn close(&mut self) {
        for tx in std::mem::take(&mut self.open) {
            self.finish(tx);
        }
    }
}

/// The SMB2 header fields the log needs.
#[derive(Debug, Clone, Copy)]
struct Hdr2 {
    cmd: u16,
    key: u64,
    session: u64,
    tree: u32,
    status: u32,
}

impl SmbParser {
    /// The EVE `smb` log of one SMB2 command (see [`SmbLog`]); `m` is the whole message.
    fn log_smb2(&mut self, h: Hdr2, reply: bool, m: &[u8]) -> Option<()> {
        let b = m.get(64..)?;
        let fid = |at: usize| -> Option<[u8; 16]> { b.get(at..at + 16)?.try_into().ok() };
        let text = |off: usize, len: usize| -> Option<String> {
            let raw = m.get(off..off.checked_add(len)?.min(m.len()))?;
            Some(String::from_utf8_lossy(&name(raw, true)).into_owned())
        };
        if !reply {
            match h.cmd {
                8 | 9 => {
                    let fuid = fid(16)?;
                    if !self.files.iter().any(|f| f.id == fuid && f.pipe) {
                        self.log.file_op(&h, fuid);
                    }
                    return Some(());
                }
                // a file's disposition (delete on close) set
                0x11 if b.get(2..4) == Some(&[1, 13]) => {
                    let fuid = fid(16)?;
                    let off = le16(b, 8)? as usize;
                    let delete = m.get(off).is_some_and(|&d| d != 0);
                    let filename = self.log.name_of(&fuid);
                    let tx = self.log.start(h.key, smb2_command_name(h.cmd), h.session, h.tree);
                    tx.fields.insert("filename".into(), Value::from(filename));
                    tx.fields.insert("access".into(), Value::from(if delete { "delete on close" } else { "normal" }));
                    tx.fields.insert("fuid".into(), Value::from(guid_text(&fuid)));
                    return Some(());
                }
                0x10 | 0x11 => return Some(()),
                // a pipe transceive carrying DCERPC: logged with its DCERPC transaction
                0xb if le32(b, 4)? == FSCTL_PIPE_TRANSCEIVE && {
                    let (off, len) = (le32(b, 24)? as usize, le32(b, 28)? as usize);
                    m.get(off..off.saturating_add(len).min(m.len())).is_some_and(|d| pdu_len(d).is_some())
                } =>
                {
                    return Some(());
                }
                6 => self.close_file_tx(fid(8)?, true),
                _ => {}
            }
            let mut f = Map::new();
            match h.cmd {
                0 => {
                    let n = le16(b, 2)? as usize;
                    let dialects: Vec<Value> =
                        (0..n).filter_map(|i| le16(b, 36 + 2 * i)).map(|d| Value::from(dialect_text(d))).collect();
                    f.insert("client_dialects".into(), Value::Array(dialects));
                    f.insert("client_guid".into(), Value::from(guid_text(b.get(12..28)?)));
                }
                1 => {
                    let off = le16(b, 12)? as usize;
                    let len = le16(b, 14)? as usize;
                    let blob = m.get(off..off.saturating_add(len).min(m.len())).unwrap_or_default();
                    if let Some(n) = ntlmssp_fields(blob) {
                        f.insert("ntlmssp".into(), Value::Object(n));
                    }
                    if let Some((realm, snames)) = krb_ticket(blob) {
                        f.insert("kerberos".into(), serde_json::json!({"realm": realm, "snames": snames}));
                    }
                }
                3 => {
                    f.insert("share".into(), Value::from(text(le16(b, 4)? as usize, le16(b, 6)? as usize)?));
                }
                5 => {
                    let name = text(le16(b, 44)? as usize, le16(b, 46)? as usize)?;
                    let options = le32(b, 40)?;
                    f.insert(if options & 1 != 0 { "directory" } else { "filename" }.into(), Value::from(name));
                    f.insert("disposition".into(), Value::from(disposition_name(le32(b, 36)?)));
                    let access = if options & 0x1000 != 0 { "delete on close" } else { "normal" };
                    f.insert("access".into(), Value::from(access));
                    for k in ["created", "accessed", "modified", "changed", "size"] {
                        f.insert(k.into(), Value::from(0));
                    }
                    f.insert("fuid".into(), Value::from(""));
                }
                0xb => {
                    f.insert("function".into(), Value::from(fsctl_name(le32(b, 4)?)));
                }
                _ => {}
            }
            self.log.start(h.key, smb2_command_name(h.cmd), h.session, h.tree).fields = f;
            return Some(());
        }
        if matches!(h.cmd, 8 | 9) {
            self.log.file_status(h.key, h.status);
            return Some(());
        }
        let tx = self.log.take(h.key).or_else(|| if h.cmd == 0 { self.log.take(SMB1_NEGOTIATE_KEY) } else { None });
        let Some(mut tx) = tx else { return Some(()) };
        tx.status = Some(h.status);
        let f = &mut tx.fields;
        match h.cmd {
            0 => {
                if let Some(d) = le16(b, 4) {
                    self.log.dialect = Some(dialect_text(d));
                }
                if let Some(g) = b.get(8..24) {
                    f.insert("server_guid".into(), Value::from(guid_text(g)));
                }
                if let (Some(r), Some(w)) = (le32(b, 32), le32(b, 36)) {
                    f.insert("max_read_size".into(), Value::from(r));
                    f.insert("max_write_size".into(), Value::from(w));
                }
            }
            1 => tx.session_id = h.session,
            3 => {
                tx.tree_id = h.tree;
                let kind = match b.get(2) {
                    Some(1) => "FILE",
                    Some(2) => "PIPE",
                    Some(3) => "PRINT",
                    _ => "UNKNOWN",
                };
                if kind == "PIPE"
                    && let Some(s) = f.remove("share")
                {
                    f.insert("named_pipe".into(), s);
                }
                f.insert("share_type".into(), Value::from(kind));
                if h.status == 0 {
                    let share = f.get("share").or_else(|| f.get("named_pipe")).and_then(Value::as_str);
                    let share = share.unwrap_or_default().to_string();
                    self.log.trees.retain(|(t, _)| *t != h.tree);
                    if self.log.trees.len() < MAX_PENDING {
                        self.log.trees.push((h.tree, share));
                    }
                }
            }
            5 if h.status == 0 => {
                let times = [("created", 8), ("accessed", 16), ("modified", 24), ("changed", 32)];
                for (k, at) in times {
                    f.insert(k.into(), Value::from(filetime_secs(le64(b, at).unwrap_or(0))));
                }
                f.insert("size".into(), Value::from(le64(b, 48).unwrap_or(0)));
                if let Some(fuid) = fid(64) {
                    f.insert("fuid".into(), Value::from(guid_text(&fuid)));
                    let name = f.get("filename").or_else(|| f.get("directory")).and_then(Value::as_str);
                    let name = name.unwrap_or_default().to_string();
                    self.log.names.retain(|(x, _)| *x != fuid);
                    if self.log.names.len() >= MAX_PENDING {
                        self.log.names.remove(0);
                    }
                    self.log.names.push((fuid, name));
                }
            }
            _ => {}
        }
        self.log.finish(tx);
        Some(())
    }

    /// After an SMB2 read, write or ioctl (`before`: the DCERPC transactions created before
    /// it): a DCERPC transaction it started takes the next record id, those it completed
    /// become the records of the commands that started them (with this response's status).
    fn log_dce(&mut self, h: Hdr2, reply: bool, before: u64) {
        if self.dce.set_log_tag(0) > before {
            self.log.next_id += 1;
            if self.dce_txs.len() >= MAX_PENDING {
                self.dce_txs.remove(0);
            }
            self.dce_txs.push((self.log.next_id, smb2_command_name(h.cmd), h.session, h.tree));
        }
        let status = reply.then_some(h.status);
        self.log_dce_done(false, status);
    }

    /// The DCERPC transactions completed (`close`: all, the open ones unreplied) become
    /// `smb` records.
    fn log_dce_done(&mut self, close: bool, status: Option<u32>) {
        for (tag, obj) in self.dce.take_log(close) {
            let Some(i) = self.dce_txs.iter().position(|t| t.0 == tag) else { continue };
            let (id, command, session_id, tree_id) = self.dce_txs.remove(i);
            let mut fields = Map::new();
            fields.insert("dcerpc".into(), Value::Object(obj));
            self.log.finish(LogTx { id, key: 0, fuid: None, command, session_id, tree_id, status, fields });
        }
    }

    /// The EVE `smb` records completed so far, and the `fileinfo` ones.
    fn take_logs(&mut self, out: &mut Vec<AppRecord>) {
        for m in self.log.done.drain(..) {
            out.push(AppRecord::Log(Box::new(super::LogRecord::new("smb", false, m))));
        }
        for (to_client, fields) in self.log.files.drain(..) {
            out.push(AppRecord::Log(Box::new(super::LogRecord { event_type: "fileinfo", to_client, fields })));
        }
    }

    /// The file transaction of file `fuid` ends (`closed`, or the flow ends), with the bytes
    /// seen of the file.
    fn close_file_tx(&mut self, fuid: [u8; 16], closed: bool) {
        let size = self.files.iter().find(|f| f.id == fuid).map_or([0; 2], |f| f.end);
        self.log.close_file(fuid, size, closed);
    }

    /// The flow ends: the open transactions get their records.
    fn close_log(&mut self) {
        let fuids: Vec<[u8; 16]> = self.log.open.iter().filter_map(|t| t.fuid).collect();
        for fuid in fuids {
            self.close_file_tx(fuid, false);
        }
        self.log_dce_done(true, None);
        self.log.close();
    }
}

/// The dialect strings of an SMB1 negotiate request's bytes (each `0x02` then NUL-terminated).
fn smb1_dialects(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&c| c == 0)
        .filter_map(|d| d.strip_prefix(b"\x02"))
        .map(|d| Value::from(String::from_utf8_lossy(d).into_owned()))
        .collect()
}

impl AppParser for SmbParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.lost[d] {
            return;
        }
        self.dce.log_for_smb();
        self.on_data_inner(dir, data);
        if self.lost[0] && self.lost[1] {
            // the sensor drops a done parser without closing it
            self.close_log();
        }
        self.take_logs(out);
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // the message in progress is lost; parsing resumes at the next SMB header
        self.resync[dir.index()] = true;
        self.buf[dir.index()] = Vec::new();
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        self.close_log();
        let mut v = std::mem::take(&mut self.deferred);
        for f in std::mem::take(&mut self.files) {
            flush_file(f, &mut v);
        }
        out.extend(v.into_iter().map(|t| AppRecord::Inspect(Box::new(t))));
        self.take_logs(out);
    }

    fn is_done(&self) -> bool {
        self.lost[0] && self.lost[1]
    }
}

impl SmbParser {
    /// Frames the NetBIOS session messages of `data` and parses them.
    fn on_data_inner(&mut self, dir: Direction, data: &[u8]) {
        let d = dir.index();
        let mut buf = std::mem::take(&mut self.buf[d]);
        buf.extend_from_slice(data);
        if self.resync[d] {
            // after a gap: resume at the next NetBIOS session message holding an SMB header
            match resync_point(&buf) {
                Some(i) => {
                    buf.drain(..i);
                    self.resync[d] = false;
                }
                None => {
                    let keep = buf.len().min(7);
                    buf.drain(..buf.len() - keep);
                    self.buf[d] = buf;
                    return;
                }
            }
        }
        let mut at = 0;
        let mut scratch = std::mem::take(&mut self.scratch);
        while buf.len() - at >= 4 {
            let h = &buf[at..at + 4];
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            match h[0] {
                0x00 | 0x81 | 0x82 | 0x83 | 0x84 | 0x85 => {}
                _ => {
                    self.lost[d] = true;
                    self.malformed += 1;
                    break;
                }
            }
            if len > MAX_MSG {
                self.lost[d] = true;
                self.malformed += 1;
                break;
            }
            if buf.len() - at - 4 < len {
                break;
            }
            if h[0] == 0 {
                self.message(dir, &buf[at + 4..at + 4 + len], &mut scratch);
            }
            at += 4 + len;
        }
        if self.lost[d] {
            buf = Vec::new();
        } else {
            buf.drain(..at);
        }
        self.buf[d] = buf;
        self.deferred.append(&mut scratch);
        self.scratch = scratch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::dcerpc::tests::{bind, bind_ack, request};

    fn nbss(msg: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, (msg.len() >> 8) as u8, msg.len() as u8];
        v.extend_from_slice(msg);
        v
    }

    fn smb2(cmd: u16, reply: bool, msg_id: u64, tree: u32, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\xfeSMB");
        h[4] = 64;
        h[12..14].copy_from_slice(&cmd.to_le_bytes());
        h[16] = u8::from(reply);
        h[24..32].copy_from_slice(&msg_id.to_le_bytes());
        h[36..40].copy_from_slice(&tree.to_le_bytes());
        h.extend_from_slice(body);
        h
    }

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn tree_connect(msg_id: u64, path: &str) -> Vec<u8> {
        let p = utf16(path);
        let mut b = vec![9, 0, 0, 0];
        b.extend_from_slice(&72u16.to_le_bytes());
        b.extend_from_slice(&(p.len() as u16).to_le_bytes());
        b.extend_from_slice(&p);
        smb2(3, false, msg_id, 0, &b)
    }

    fn tree_connect_resp(msg_id: u64, tree: u32, share_type: u8) -> Vec<u8> {
        smb2(3, true, msg_id, tree, &[16, 0, share_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    fn create_resp(msg_id: u64, tree: u32, fid: u8) -> Vec<u8> {
        let mut b = vec![0u8; 88];
        b[0] = 89;
        b[64..80].copy_from_slice(&[fid; 16]);
        smb2(5, true, msg_id, tree, &b)
    }

    fn write(msg_id: u64, tree: u32, fid: u8, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[2..4].copy_from_slice(&112u16.to_le_bytes());
        b[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
        b[16..32].copy_from_slice(&[fid; 16]);
        b.extend_from_slice(data);
        smb2(9, false, msg_id, tree, &b)
    }

    fn close(msg_id: u64, tree: u32, fid: u8) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        b[0] = 24;
        b[8..24].copy_from_slice(&[fid; 16]);
        smb2(6, false, msg_id, tree, &b)
    }

    fn run(p: &mut SmbParser, msgs: &[(Direction, Vec<u8>)]) -> Vec<TxInspect> {
        let mut out = Vec::new();
        for (d, m) in msgs {
            p.on_data(*d, &nbss(m), &mut out);
        }
        p.on_close(&mut out);
        out.into_iter().filter_map(AppRecord::into_inspect).collect()
    }

    use Direction::{ToClient as C, ToServer as S};

    #[test]
    fn smb2_tree_connect_gives_share_or_named_pipe_and_written_files_their_data() {
        let mut p = SmbParser::default();
        let t = run(
            &mut p,
            &[
                (S, tree_connect(1, "\\\\10.0.0.12\\smb2")),
                (C, tree_connect_resp(1, 5, 1)),
                (S, tree_connect(2, "\\\\10.0.0.12\\IPC$")),
                (C, tree_connect_resp(2, 6, 2)),
                (S, smb2(5, false, 3, 5, &[57, 0])),
                (C, create_resp(3, 5, 7)),
                (S, write(4, 5, 7, b"%PDF-1.5 ...")),
                (S, close(5, 5, 7)),
            ],
        );
        assert!(t.iter().all(|x| x.dce.is_none()));
        assert_eq!(t.iter().filter(|x| x.smb_version == Some(2)).count(), 8);
        assert_eq!(t.iter().find_map(|x| x.share.clone()), Some(b"\\\\10.0.0.12\\smb2".to_vec()));
        assert_eq!(t.iter().find_map(|x| x.named_pipe.clone()), Some(b"\\\\10.0.0.12\\IPC$".to_vec()));
        let files: Vec<_> = t.iter().filter_map(|x| x.file_data.clone()).collect();
        assert_eq!(files, vec![b"%PDF-1.5 ...".to_vec()]);
    }

    #[test]
    fn dcerpc_over_a_pipe_write_is_bound_and_inspected() {
        let mut p = SmbParser::default();
        let read_resp = |id: u64, data: &[u8]| {
            let mut b = vec![17u8, 0, 80, 0];
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&[0u8; 8]);
            b.extend_from_slice(data);
            smb2(8, true, id, 6, &b)
        };
        let read_req = |id: u64| {
            let mut b = vec![0u8; 48];
            b[0] = 49;
            b[16..32].copy_from_slice(&[9; 16]);
            smb2(8, false, id, 6, &b)
        };
        let t = run(
            &mut p,
            &[
                (S, tree_connect(1, "\\\\h\\IPC$")),
                (C, tree_connect_resp(1, 6, 2)),
                (S, smb2(5, false, 2, 6, &[57, 0])),
                (C, create_resp(2, 6, 9)),
                (S, write(3, 6, 9, &bind(0, 1))),
                (S, read_req(4)),
                (C, read_resp(4, &bind_ack(0))),
                (S, write(5, 6, 9, &request(3, 0, 15, b"stub!", 2))),
            ],
        );
        let dce: Vec<_> = t.iter().filter(|x| x.dce.is_some()).collect();
        assert_eq!(dce.len(), 1);
        assert_eq!(dce[0].smb_version, Some(2));
        assert_eq!(dce[0].dce.as_ref().and_then(|d| d.opnum), Some(15));
        assert_eq!(dce[0].dce.as_ref().map(|d| d.ifaces.len()), Some(1));
        assert_eq!(dce[0].stub.as_deref(), Some(&b"stub!"[..]));
        assert!(t.iter().all(|x| x.file_data.is_none()));
    }

    fn create(msg_id: u64, tree: u32, path: &str, options: u32) -> Vec<u8> {
        let p = utf16(path);
        let mut b = vec![0u8; 56];
        b[0] = 57;
        b[36..40].copy_from_slice(&1u32.to_le_bytes());
        b[40..44].copy_from_slice(&options.to_le_bytes());
        b[44..46].copy_from_slice(&120u16.to_le_bytes());
        b[46..48].copy_from_slice(&(p.len() as u16).to_le_bytes());
        b.extend_from_slice(&p);
        smb2(5, false, msg_id, tree, &b)
    }

    fn read_req(msg_id: u64, tree: u32, fid: u8) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[16..32].copy_from_slice(&[fid; 16]);
        smb2(8, false, msg_id, tree, &b)
    }

    fn read_resp(msg_id: u64, tree: u32, data: &[u8]) -> Vec<u8> {
        let mut b = vec![17u8, 0, 80, 0];
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(data);
        smb2(8, true, msg_id, tree, &b)
    }

    /// The EVE records of a session, as (type, fields).
    fn logs(msgs: &[(Direction, Vec<u8>)]) -> Vec<(&'static str, serde_json::Value)> {
        let mut p = SmbParser::default();
        let mut out = Vec::new();
        for (d, m) in msgs {
            p.on_data(*d, &nbss(m), &mut out);
        }
        p.on_close(&mut out);
        out.into_iter()
            .filter_map(|r| match r {
                AppRecord::Log(l) => Some((l.event_type, serde_json::Value::Object(l.fields))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn smb2_commands_are_logged_as_smb_records_with_dcerpc_on_pipes_merged_into_the_write() {
        let l = logs(&[
            (S, tree_connect(1, "\\\\h\\IPC$")),
            (C, tree_connect_resp(1, 6, 2)),
            (S, create(2, 6, "lsarpc", 0)),
            (C, create_resp(2, 6, 9)),
            (S, write(3, 6, 9, &bind(0, 1))),
            (C, smb2(9, true, 3, 6, &[17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            (S, read_req(4, 6, 9)),
            (C, read_resp(4, 6, &bind_ack(0))),
            (S, write(5, 6, 9, &request(3, 0, 15, b"stub!", 2))),
            (S, close(6, 6, 9)),
            (C, smb2(6, true, 6, 6, &[60, 0])),
        ]);
        let smb: Vec<&serde_json::Value> = l.iter().filter(|(t, _)| *t == "smb").map(|(_, v)| &v["smb"]).collect();
        let cmds: Vec<(u64, &str)> =
            smb.iter().map(|v| (v["id"].as_u64().unwrap_or(0), v["command"].as_str().unwrap_or(""))).collect();
        assert_eq!(
            cmds,
            [
                (1, "SMB2_COMMAND_TREE_CONNECT"),
                (2, "SMB2_COMMAND_CREATE"),
                (3, "SMB2_COMMAND_WRITE"),
                (5, "SMB2_COMMAND_CLOSE"),
                (4, "SMB2_COMMAND_WRITE")
            ]
        );
        assert_eq!(smb[0]["named_pipe"], "\\\\h\\IPC$");
        assert_eq!(smb[0]["share_type"], "PIPE");
        assert_eq!(smb[0]["tree_id"], 6);
        assert_eq!(smb[1]["filename"], "lsarpc");
        assert_eq!(smb[1]["disposition"], "FILE_OPEN");
        assert_eq!(smb[1]["fuid"], "09090909-0909-0909-0909-090909090909");
        assert_eq!(smb[2]["dcerpc"]["request"], "BIND");
        assert_eq!(smb[2]["dcerpc"]["response"], "BINDACK");
        assert_eq!(smb[2]["status"], "STATUS_SUCCESS");
        // the request never answered: logged at the end, without a status
        assert_eq!(smb[4]["dcerpc"]["request"], "REQUEST");
        assert_eq!(smb[4]["dcerpc"]["response"], "UNREPLIED");
        assert_eq!(smb[4]["dcerpc"]["opnum"], 15);
        assert!(smb[4].get("status").is_none());
        assert_eq!(smb.len(), 5);
        // pipes are no files
        assert!(l.iter().all(|(t, _)| *t != "fileinfo"));
    }

    #[test]
    fn a_file_read_is_one_transaction_and_a_fileinfo_record_when_closed() {
        let l = logs(&[
            (S, tree_connect(1, "\\\\h\\sysvol")),
            (C, tree_connect_resp(1, 5, 1)),
            (S, create(2, 5, "dir\\gpt.ini", 0)),
            (C, create_resp(2, 5, 7)),
            (S, read_req(3, 5, 7)),
            (C, read_resp(3, 5, b"[General]\r\n")),
            (S, read_req(4, 5, 7)),
            (C, read_resp(4, 5, b"")),
            (S, close(5, 5, 7)),
        ]);
        let smb: Vec<&serde_json::Value> = l.iter().filter(|(t, _)| *t == "smb").map(|(_, v)| &v["smb"]).collect();
        let reads: Vec<_> = smb.iter().filter(|v| v["command"] == "SMB2_COMMAND_READ").collect();
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0]["filename"], "dir\\gpt.ini");
        assert_eq!(reads[0]["share"], "\\\\h\\sysvol");
        let files: Vec<_> = l.iter().filter(|(t, _)| *t == "fileinfo").map(|(_, v)| v).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0]["fileinfo"]["size"], 11);
        assert_eq!(files[0]["fileinfo"]["state"], "CLOSED");
        assert_eq!(files[0]["fileinfo"]["tx_id"], reads[0]["id"].as_u64().unwrap_or(0) - 1);
        assert_eq!(&files[0]["smb"], *reads[0]);
        assert_eq!(files[0]["app_proto"], "smb");
    }

    #[test]
    fn a_delete_on_close_set_info_is_logged_with_the_file_name() {
        let mut info = vec![0u8; 32];
        info[0] = 33;
        info[2] = 1;
        info[3] = 13;
        info[4] = 1;
        info[8..10].copy_from_slice(&96u16.to_le_bytes());
        info[16..32].copy_from_slice(&[7; 16]);
        info.push(1);
        let l = logs(&[
            (S, create(1, 5, "Windows\\Tasks\\x.xml", 0)),
            (C, create_resp(1, 5, 7)),
            (S, smb2(0x11, false, 2, 5, &info)),
            (C, smb2(0x11, true, 2, 5, &[2, 0])),
        ]);
        let v = &l[1].1["smb"];
        assert_eq!(v["command"], "SMB2_COMMAND_SET_INFO");
        assert_eq!(v["filename"], "Windows\\Tasks\\x.xml");
        assert_eq!(v["access"], "delete on close");
        assert_eq!(v["fuid"], "07070707-0707-0707-0707-070707070707");
        assert_eq!(v["status"], "STATUS_SUCCESS");
    }

    #[test]
    fn negotiate_records_give_dialects_guids_and_sizes() {
        let mut req = vec![0u8; 36];
        req[0] = 36;
        req[2] = 2;
        req[12..28].copy_from_slice(&[0xaa; 16]);
        req.extend_from_slice(&[0x02, 0x02, 0x11, 0x03]);
        let mut resp = vec![0u8; 64];
        resp[0] = 65;
        resp[4..6].copy_from_slice(&0x0311u16.to_le_bytes());
        resp[8..24].copy_from_slice(&[0xbb; 16]);
        resp[32..36].copy_from_slice(&65536u32.to_le_bytes());
        resp[36..40].copy_from_slice(&4096u32.to_le_bytes());
        let l = logs(&[(S, smb2(0, false, 0, 0, &req)), (C, smb2(0, true, 0, 0, &resp))]);
        let v = &l[0].1["smb"];
        assert_eq!(v["command"], "SMB2_COMMAND_NEGOTIATE_PROTOCOL");
        assert_eq!(v["dialect"], "3.11");
        assert_eq!(v["client_dialects"], serde_json::json!(["2.02", "3.11"]));
        assert_eq!(v["client_guid"], "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
        assert_eq!(v["server_guid"], "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb");
        assert_eq!((v["max_read_size"].as_u64(), v["max_write_size"].as_u64()), (Some(65536), Some(4096)));
        assert_eq!(
            guid_text(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
            "03020100-0504-0706-0908-0b0a0f0e0d0c"
        );
    }

    #[test]
    fn overlapping_writes_raise_file_overlap_and_keep_the_first_bytes() {
        let mut p = SmbParser::default();
        let mut second = write(5, 5, 7, b"EICAR");
        // the second write starts at offset 0 again
        second[64 + 8..64 + 16].copy_from_slice(&0u64.to_le_bytes());
        let mut first = write(4, 5, 7, b"X");
        first[64 + 8..64 + 16].copy_from_slice(&0u64.to_le_bytes());
        let t = run(
            &mut p,
            &[
                (S, smb2(5, false, 3, 5, &[57, 0])),
                (C, create_resp(3, 5, 7)),
                (S, first),
                (S, second),
                (C, smb2(9, true, 5, 5, &[17, 0])),
                (S, close(6, 5, 7)),
            ],
        );
        let overlaps: Vec<Direction> = t.iter().filter(|x| x.app_events & FILE_OVERLAP != 0).map(|x| x.dir).collect();
        assert_eq!(overlaps, vec![S, C]);
        let files: Vec<_> = t.iter().filter_map(|x| x.file_data.clone()).collect();
        assert_eq!(files, vec![b"XICAR".to_vec()]);
    }

    #[test]
    fn session_setup_gives_the_ntlmssp_user_and_domain() {
        let mut ntlm = b"NTLMSSP\0\x03\0\0\0".to_vec();
        ntlm.resize(64, 0);
        let domain = utf16("CONTOSO");
        let user = utf16("Administrator");
        ntlm[28..30].copy_from_slice(&(domain.len() as u16).to_le_bytes());
        ntlm[32..36].copy_from_slice(&64u32.to_le_bytes());
        ntlm[36..38].copy_from_slice(&(user.len() as u16).to_le_bytes());
        ntlm[40..44].copy_from_slice(&((64 + domain.len()) as u32).to_le_bytes());
        ntlm[60] = 1; // unicode
        ntlm.extend_from_slice(&domain);
        ntlm.extend_from_slice(&user);
        let mut body = vec![25u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&ntlm);
        let t = run(&mut SmbParser::default(), &[(S, smb2(1, false, 1, 0, &body))]);
        assert_eq!(t[0].ntlmssp_user.as_deref(), Some(&b"Administrator"[..]));
        assert_eq!(t[0].ntlmssp_domain.as_deref(), Some(&b"CONTOSO"[..]));
        // offsets past the message: nothing, no panic
        let mut bad = body.clone();
        bad[24 + 40] = 0xff;
        let t = run(&mut SmbParser::default(), &[(S, smb2(1, false, 1, 0, &bad))]);
        assert_eq!(t[0].ntlmssp_user, None);
    }

    #[test]
    fn smb1_tree_connect_andx_names_the_share_and_the_negotiate_response_stays_smb1() {
        let smb1 = |cmd: u8, reply: bool, words: &[u8], bytes: &[u8]| {
            let mut m = b"\xffSMB".to_vec();
            m.push(cmd);
            m.extend_from_slice(&[0; 4]);
            m.push(if reply { 0x80 } else { 0 });
            m.extend_from_slice(&[0; 22]);
            m.push((words.len() / 2) as u8);
            m.extend_from_slice(words);
            m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            m.extend_from_slice(bytes);
            m
        };
        let tc_words = [0xff, 0, 0, 0, 0, 0, 1, 0];
        let t = run(
            &mut SmbParser::default(),
            &[
                (S, smb1(0x72, false, &[], b"\x02NT LM 0.12\0")),
                (C, smb2(0, true, 0, 0, &[65, 0])),
                (S, smb1(0x75, false, &tc_words, b"\0\\\\srv\\C$\0?????\0")),
                (C, smb1(0x75, true, &[0xff, 0, 0, 0, 0, 0], b"A:\0")),
                (S, smb1(0x75, false, &tc_words, b"\0\\\\srv\\IPC$\0?????\0")),
                (C, smb1(0x75, true, &[0xff, 0, 0, 0, 0, 0], b"IPC\0")),
            ],
        );
        let versions: Vec<Option<u8>> = t.iter().map(|x| x.smb_version).collect();
        assert_eq!(versions, vec![Some(1); 6]);
        let shares: Vec<_> = t.iter().filter_map(|x| x.share.clone()).collect();
        assert_eq!(shares, vec![b"\\\\srv\\C$".to_vec(), b"\\\\srv\\C$".to_vec()]);
        let pipes: Vec<_> = t.iter().filter_map(|x| x.named_pipe.clone()).collect();
        assert_eq!(pipes, vec![b"\\\\srv\\IPC$".to_vec()]);
    }

    #[test]
    fn parsing_resumes_at_the_next_smb_header_after_a_gap() {
        let mut p = SmbParser::default();
        let mut out = Vec::new();
        p.on_data(S, &nbss(&tree_connect(1, "\\\\h\\a"))[..20], &mut out);
        p.on_gap(S, 100, &mut out);
        // the tail of a lost message, then a whole one
        let mut data = b"tail of a lost message".to_vec();
        data.extend_from_slice(&nbss(&tree_connect(2, "\\\\h\\b")));
        p.on_data(S, &data[..30], &mut out);
        p.on_data(S, &data[30..], &mut out);
        assert!(!p.is_done());
        let t = run(&mut p, &[]);
        assert_eq!(t.iter().filter_map(|x| x.share.clone()).collect::<Vec<_>>(), vec![b"\\\\h\\b".to_vec()]);
    }

    #[test]
    fn mutated_sessions_never_panic() {
        let msgs = [
            (S, tree_connect(1, "\\\\h\\IPC$")),
            (C, tree_connect_resp(1, 6, 2)),
            (S, smb2(5, false, 2, 6, &[57, 0])),
            (C, create_resp(2, 6, 9)),
            (S, write(3, 6, 9, &bind(0, 1))),
            (S, write(5, 6, 9, &request(3, 0, 15, b"stub!", 2))),
            (S, close(6, 6, 9)),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut p = SmbParser::default();
            let mut out = Vec::new();
            for (d, m) in &msgs {
                let mut m = nbss(m);
                for _ in 0..(next() % 6) {
                    let i = (next() as usize) % m.len();
                    m[i] = next() as u8;
                }
                let cut = (next() as usize) % (m.len() + 1);
                p.on_data(*d, &m[..cut], &mut out);
                p.on_data(*d, &m[cut..], &mut out);
            }
            p.on_close(&mut out);
        }
    }

    #[test]
    fn truncated_and_malformed_messages_never_panic() {
        let msgs = [
            tree_connect(1, "\\\\h\\share"),
            tree_connect_resp(1, 5, 1),
            create_resp(3, 5, 7),
            write(4, 5, 7, b"data"),
            close(5, 5, 7),
        ];
        for m in &msgs {
            for n in 0..m.len() {
                let mut p = SmbParser::default();
                let mut out = Vec::new();
                p.on_data(S, &nbss(&m[..n]), &mut out);
                p.on_data(C, &nbss(&m[..n]), &mut out);
                p.on_close(&mut out);
            }
        }
        // SMB1 header with a word count past the end
        let mut smb1 = b"\xffSMB\x75".to_vec();
        smb1.resize(32, 0);
        smb1.push(200);
        let mut p = SmbParser::default();
        let mut out = Vec::new();
        p.on_data(S, &nbss(&smb1), &mut out);
        assert_eq!(p.malformed(), 1);
        // not NetBIOS: the direction is given up
        p.on_data(C, b"\x17\x03\x03\x00\x10", &mut out);
        assert!(!p.is_done());
        p.on_data(S, b"\x17\x03\x03\x00\x10", &mut out);
        assert!(p.is_done());
    }
}
