//! DCERPC (connection-oriented, DCE 1.1 / MS-RPCE) over TCP and over SMB named pipes.
//!
//! [`DceState`] takes whole PDUs ([`DceState::on_pdu`]); [`DcerpcParser`] frames them out of a
//! TCP stream. Binds and alter-contexts record the proposed interfaces; their acks keep the
//! accepted ones (result 0) by context id. Requests and responses are reassembled over their
//! fragments (first/last flags) and produce one [`TxInspect`] per direction with the opnum,
//! the context and the stub data: what `dcerpc.iface`, `dcerpc.opnum` and `dcerpc.stub_data`
//! inspect.
//!
//! Over TCP each call is also logged as Suricata's EVE `dcerpc` record: a bind,
//! alter context or request paired with its response by call id (`REQUEST_LOST` for a response
//! whose request was not seen, `UNREPLIED` for a request whose response never came), with the
//! bind's interfaces and their ack results, a request's opnum, fragments and stub sizes.

use super::{AppParser, AppProto, AppRecord, Direction};
use crate::detect::dce::{BoundIface, DceTx};

/// PDU types.
const REQUEST: u8 = 0;
const RESPONSE: u8 = 2;
const BIND: u8 = 11;
const BIND_ACK: u8 = 12;
const ALTER_CONTEXT: u8 = 14;
const ALTER_CONTEXT_RESP: u8 = 15;
/// `pfc_flags` bits.
const PFC_FIRST_FRAG: u8 = 0x01;
const PFC_LAST_FRAG: u8 = 0x02;
/// Common header length.
const HDR: usize = 16;
/// Most stub bytes kept per request or response.
const MAX_STUB: usize = 1 << 20;
/// Most interfaces and outstanding calls remembered.
const MAX_IFACES: usize = 64;
const MAX_CALLS: usize = 64;

/// One side of a DCERPC or SMB transaction, inspected by the rules (not logged).
#[derive(Clone, Debug, PartialEq)]
pub struct TxInspect {
    /// The protocol of the flow ([`AppProto::Dcerpc`] or [`AppProto::Smb`]).
    pub proto: AppProto,
    pub dir: Direction,
    /// SMB dialect family (1 or 2) of an SMB transaction (`smb.version`).
    pub smb_version: Option<u8>,
    /// `smb.share`: the share of a tree connect (not a named pipe).
    pub share: Option<Vec<u8>>,
    /// `smb.named_pipe`: the share of a tree connect to a named pipe share (`IPC$`).
    pub named_pipe: Option<Vec<u8>>,
    /// `file.data`: the data of a file read or written over SMB.
    pub file_data: Option<Vec<u8>>,
    /// `smb.ntlmssp_user` / `smb.ntlmssp_domain`: of an NTLMSSP authenticate message in a
    /// session setup request.
    pub ntlmssp_user: Option<Vec<u8>>,
    pub ntlmssp_domain: Option<Vec<u8>>,
    /// App-layer events of the transaction ([`crate::detect::AppEvent`] bits).
    pub app_events: u64,
    /// The DCERPC request or response.
    pub dce: Option<DceTx>,
    /// `dcerpc.stub_data`.
    pub stub: Option<Vec<u8>>,
    /// Other keyword buffers of the transaction (a WebSocket frame's, an SSH record's frames...).
    pub bufs: Vec<(crate::detect::Buffer, Vec<u8>)>,
    /// Integer fields of the transaction (a WebSocket frame's opcode, mask, flags...).
    pub ints: Vec<(crate::detect::AppInt, u64)>,
    /// For each `file.data` of `bufs` in order: whether the file was kept whole (its digests
    /// are then computed for the rules that look them up, see [`crate::app::file`]).
    pub whole_files: Vec<bool>,
}

impl TxInspect {
    pub fn new(proto: AppProto, dir: Direction) -> Self {
        TxInspect {
            proto,
            dir,
            smb_version: None,
            share: None,
            named_pipe: None,
            file_data: None,
            ntlmssp_user: None,
            ntlmssp_domain: None,
            app_events: 0,
            dce: None,
            stub: None,
            bufs: Vec::new(),
            ints: Vec::new(),
            whole_files: Vec::new(),
        }
    }
}

/// Fragments of a request or response being reassembled.
#[derive(Debug, Default)]
struct Partial {
    ctx_id: u16,
    opnum: Option<u16>,
    call_id: u32,
    stub: Vec<u8>,
}

/// DCERPC state of one connection (or one SMB pipe).
#[derive(Debug, Default)]
pub struct DceState {
    /// Interfaces of the last bind or alter-context: (context id, uuid, major version).
    proposed: Vec<(u16, [u8; 16], u16)>,
    /// Accepted interfaces.
    ifaces: Vec<BoundIface>,
    partial: [Option<Partial>; 2],
    /// Outstanding requests: call id, opnum, context id.
    calls: Vec<(u32, u16, u16)>,
    /// PDUs that did not decode.
    pub malformed: u64,
    /// EVE `dcerpc` transactions being built (DCERPC over TCP; `None`: not logged).
    log: Option<Box<DceLog>>,
}

/// An interface of the last bind, as the EVE `interfaces` list gives it.
#[derive(Debug, Clone)]
struct LogIface {
    uuid: [u8; 16],
    version: (u16, u16),
    ctx_id: u16,
    /// The bind ack's result for it (0: accepted).
    result: Option<u16>,
}

/// One EVE `dcerpc` transaction: a request (bind, alter context, request) and its response,
/// paired by call id.
#[derive(Debug, Default)]
struct LogTx {
    call_id: u32,
    /// PDU types of the request and of the response, once complete.
    req: Option<u8>,
    resp: Option<u8>,
    /// The request's type while its fragments arrive.
    req_started: Option<u8>,
    opnum: u16,
    ctx_id: u16,
    /// Fragments and stub bytes per direction.
    frags: [u64; 2],
    stub: [u64; 2],
    rpc_version: (u8, u8),
    /// The interfaces of a bind, with its ack's results.
    bind: Vec<LogIface>,
    /// [`DceLog::tag`] when it was created.
    tag: u64,
}

/// The EVE `dcerpc` log of a connection: Suricata's transaction records.
#[derive(Debug, Default)]
struct DceLog {
    open: Vec<LogTx>,
    /// Interfaces of the last bind and the alter contexts after it, with their acks' results.
    bind: Vec<LogIface>,
    /// Context ids of the last bind or alter context, in order (its ack's results follow it).
    pending: Vec<u16>,
    /// Completed transactions, with the tag they were created under.
    done: Vec<(u64, serde_json::Map<String, serde_json::Value>)>,
    /// Over SMB: the object is the one of the `smb` record (no `rpc_version`, the opnum
    /// outside `req`, the bind ack's reasons).
    smb: bool,
    /// Given by the carrier to the transactions created next (SMB: its record's id).
    tag: u64,
    /// Transactions created so far.
    created: u64,
}

/// Suricata's names of the PDU types.
fn ptype_name(t: u8) -> &'static str {
    match t {
        REQUEST => "REQUEST",
        1 => "PING",
        RESPONSE => "RESPONSE",
        3 => "FAULT",
        BIND => "BIND",
        BIND_ACK => "BINDACK",
        13 => "BINDNAK",
        ALTER_CONTEXT => "ALTER_CONTEXT",
        ALTER_CONTEXT_RESP => "ALTER_CONTEXT_RESP",
        16 => "AUTH3",
        _ => "UNKNOWN",
    }
}

fn uuid_text(u: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

impl LogTx {
    /// The EVE `dcerpc` object (Suricata's field names and order).
    fn to_json(&self, bound: &[LogIface], smb: bool) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let iface = |i: &LogIface| {
            let mut o = json!({"uuid": uuid_text(&i.uuid), "version": format!("{}.{}", i.version.0, i.version.1),
                   "ack_result": i.result.unwrap_or(0)});
            // Suricata 8 writes the reason of an ack over SMB as 0, whatever it was
            if smb && let Some(o) = o.as_object_mut() {
                o.insert("ack_reason".into(), Value::from(0));
            }
            o
        };
        // over SMB a request's interfaces have no ack result
        let req_iface = |i: &LogIface| {
            let mut o = iface(i);
            if smb && let Some(o) = o.as_object_mut() {
                o.remove("ack_result");
                o.remove("ack_reason");
            }
            o
        };
        let mut m = serde_json::Map::new();
        match self.req {
            Some(t) => {
                m.insert("request".into(), Value::from(ptype_name(t)));
                if t == REQUEST && smb {
                    m.insert("opnum".into(), Value::from(self.opnum));
                    m.insert("req".into(), json!({"frag_cnt": self.frags[0], "stub_data_size": self.stub[0]}));
                }
                if t == REQUEST {
                    if !smb {
                        m.insert(
                            "req".into(),
                            json!({"opnum": self.opnum, "frag_cnt": self.frags[0], "stub_data_size": self.stub[0]}),
                        );
                    }
                    let ifs: Vec<Value> = bound.iter().filter(|i| i.ctx_id == self.ctx_id).map(req_iface).collect();
                    if !ifs.is_empty() {
                        m.insert("interfaces".into(), Value::Array(ifs));
                    }
                } else if t == BIND {
                    m.insert("interfaces".into(), Value::Array(self.bind.iter().map(iface).collect()));
                }
            }
            None => {
                m.insert("request".into(), Value::from("REQUEST_LOST"));
            }
        }
        match self.resp {
            Some(t) => {
                m.insert("response".into(), Value::from(ptype_name(t)));
                if t == RESPONSE {
                    m.insert("res".into(), json!({"frag_cnt": self.frags[1], "stub_data_size": self.stub[1]}));
                }
            }
            None => {
                m.insert("response".into(), Value::from("UNREPLIED"));
            }
        }
        m.insert("call_id".into(), Value::from(self.call_id));
        if !smb {
            m.insert("rpc_version".into(), Value::from(format!("{}.{}", self.rpc_version.0, self.rpc_version.1)));
        }
        m
    }
}

/// Most transactions open at once in the EVE log (the oldest is logged unreplied beyond).
const MAX_LOG_TXS: usize = 256;

impl DceLog {
    /// Follows one PDU (its header already checked by [`DceState::pdu`]).
    fn on_pdu(&mut self, dir: Direction, pdu: &[u8], frag_len: usize) -> Option<()> {
        let (ptype, flags, le) = (pdu[2], pdu[3], pdu[4] & 0x10 != 0);
        let call_id = u32_at(pdu, 12, le)?;
        let version = (pdu[0], pdu[1]);
        match (dir, ptype) {
            (Direction::ToServer, BIND | ALTER_CONTEXT | REQUEST) => {
                let last = ptype != REQUEST || flags & PFC_LAST_FRAG != 0;
                let stub = if ptype == REQUEST { frag_len.saturating_sub(24) as u64 } else { 0 };
                let mut bind = Vec::new();
                if ptype != REQUEST {
                    let n = *pdu.get(24)? as usize;
                    let mut at = 28;
                    for _ in 0..n.min(MAX_IFACES) {
                        let ctx_id = u16_at(pdu, at, le)?;
                        let n_syntax = *pdu.get(at + 2)? as usize;
                        let uuid = uuid_at(pdu, at + 4, le)?;
                        let v = (u16_at(pdu, at + 20, le)?, u16_at(pdu, at + 22, le)?);
                        bind.push(LogIface { uuid, version: v, ctx_id, result: None });
                        at += 24 + 20 * n_syntax;
                    }
                }
                let i = match self.open.iter().position(|t| t.call_id == call_id && t.req.is_none()) {
                    Some(i) => i,
                    None => {
                        if self.open.len() >= MAX_LOG_TXS {
                            let old = self.open.remove(0);
                            self.done.push((old.tag, old.to_json(&self.bind, self.smb)));
                        }
                        let (ctx_id, opnum) =
                            if ptype == REQUEST { (u16_at(pdu, 20, le)?, u16_at(pdu, 22, le)?) } else { (0, 0) };
                        self.created += 1;
                        let tag = self.tag;
                        self.open.push(LogTx {
                            call_id,
                            ctx_id,
                            opnum,
                            rpc_version: version,
                            tag,
                            ..Default::default()
                        });
                        self.open.len() - 1
                    }
                };
                let tx = &mut self.open[i];
                tx.req_started = Some(ptype);
                tx.frags[0] += 1;
                tx.stub[0] += stub;
                // a bind's interfaces replace the connection's, an alter context's join them
                if ptype == BIND {
                    tx.bind = bind.clone();
                    self.bind.clear();
                }
                self.bind.retain(|x| bind.iter().all(|b| b.ctx_id != x.ctx_id));
                self.pending = bind.iter().map(|b| b.ctx_id).collect();
                self.bind.extend(bind);
                if last {
                    tx.req = Some(ptype);
                }
            }
            (Direction::ToClient, BIND_ACK | ALTER_CONTEXT_RESP | RESPONSE | 3 | 13) => {
                let last = ptype != RESPONSE || flags & PFC_LAST_FRAG != 0;
                // (Suricata counts a response's stub without its 8 bytes of header over SMB, with
                // them over TCP)
                let hdr = if self.smb { HDR + 8 } else { HDR };
                let stub = if ptype == RESPONSE { frag_len.saturating_sub(hdr) as u64 } else { 0 };
                let i = match self.open.iter().position(|t| t.call_id == call_id && t.resp.is_none()) {
                    Some(i) => i,
                    None => {
                        self.created += 1;
                        let tag = self.tag;
                        self.open.push(LogTx { call_id, rpc_version: version, tag, ..Default::default() });
                        self.open.len() - 1
                    }
                };
                if ptype == BIND_ACK || ptype == ALTER_CONTEXT_RESP {
                    let sec_len = u16_at(pdu, 24, le)? as usize;
                    let at = (26 + sec_len).div_ceil(4) * 4;
                    let n = *pdu.get(at)? as usize;
                    for k in 0..n.min(MAX_IFACES) {
                        let result = u16_at(pdu, at + 4 + k * 24, le)?;
                        let ctx = self.pending.get(k).copied();
                        if let Some(x) = self.bind.iter_mut().find(|x| Some(x.ctx_id) == ctx) {
                            x.result = Some(result);
                        }
                        if let Some(x) = self.open[i].bind.get_mut(k) {
                            x.result = Some(result);
                        }
                    }
                }
                let tx = &mut self.open[i];
                tx.frags[1] += 1;
                tx.stub[1] += stub;
                if last {
                    // (Suricata names the ack of a bind or alter context it did not see BINDACK)
                    tx.resp =
                        Some(if tx.req_started.is_none() && ptype == ALTER_CONTEXT_RESP { BIND_ACK } else { ptype });
                    let tx = self.open.remove(i);
                    self.done.push((tx.tag, tx.to_json(&self.bind, self.smb)));
                }
            }
            _ => {}
        }
        Some(())
    }

    /// The flow ends: the transactions without their response are logged unreplied.
    fn close(&mut self) {
        for mut tx in std::mem::take(&mut self.open) {
            if tx.req.is_none() && tx.req_started.is_some() {
                tx.req = tx.req_started;
            }
            self.done.push((tx.tag, tx.to_json(&self.bind, self.smb)));
        }
    }
}

fn u16_at(d: &[u8], at: usize, le: bool) -> Option<u16> {
    let b: [u8; 2] = d.get(at..at + 2)?.try_into().ok()?;
    Some(if le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
}

fn u32_at(d: &[u8], at: usize, le: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
}

/// A UUID as it is on the wire (its first three fields in the PDU's byte order) to its bytes
/// in textual order.
fn uuid_at(d: &[u8], at: usize, le: bool) -> Option<[u8; 16]> {
    let mut u: [u8; 16] = d.get(at..at + 16)?.try_into().ok()?;
    if le {
        u[0..4].reverse();
        u[4..6].reverse();
        u[6..8].reverse();
    }
    Some(u)
}

/// Whether `d` starts like a connection-oriented DCERPC PDU header.
pub fn looks_like_pdu(d: &[u8]) -> bool {
    d.len() >= HDR && d[0] == 5 && d[1] == 0 && d[2] <= 20
}

/// The length a PDU header announces (`None`: not a PDU header).
pub fn pdu_len(d: &[u8]) -> Option<usize> {
    if d.len() < 10 || d[0] != 5 {
        return None;
    }
    let len = u16_at(d, 8, d[4] & 0x10 != 0)? as usize;
    (len >= HDR).then_some(len)
}

impl DceState {
    /// DCERPC over SMB: the transactions are logged as part of the `smb` records.
    pub(crate) fn log_for_smb(&mut self) {
        self.log.get_or_insert_with(|| Box::new(DceLog { smb: true, ..Default::default() }));
    }

    /// Tags the transactions created next (see [`DceLog::tag`]); returns how many were
    /// created so far.
    pub(crate) fn set_log_tag(&mut self, tag: u64) -> u64 {
        self.log.as_mut().map_or(0, |l| {
            l.tag = tag;
            l.created
        })
    }

    /// The transactions completed so far, with their tags; `close`: the open ones too
    /// (unreplied).
    pub(crate) fn take_log(&mut self, close: bool) -> Vec<(u64, serde_json::Map<String, serde_json::Value>)> {
        let Some(l) = self.log.as_mut() else { return Vec::new() };
        if close {
            l.close();
        }
        std::mem::take(&mut l.done)
    }

    /// One whole PDU that travelled in `dir`. `out` gets the completed request or response.
    pub fn on_pdu(&mut self, dir: Direction, pdu: &[u8], proto: AppProto, out: &mut Vec<TxInspect>) {
        if self.pdu(dir, pdu, proto, out).is_none() {
            self.malformed += 1;
        }
    }

    fn pdu(&mut self, dir: Direction, pdu: &[u8], proto: AppProto, out: &mut Vec<TxInspect>) -> Option<()> {
        if !looks_like_pdu(pdu) {
            return None;
        }
        let (ptype, flags, le) = (pdu[2], pdu[3], pdu[4] & 0x10 != 0);
        let frag_len = (u16_at(pdu, 8, le)? as usize).min(pdu.len());
        let auth_len = u16_at(pdu, 10, le)? as usize;
        let call_id = u32_at(pdu, 12, le)?;
        if auth_len > frag_len.saturating_sub(HDR) {
            return None;
        }
        if let Some(log) = self.log.as_mut() {
            log.on_pdu(dir, pdu, frag_len);
        }
        match ptype {
            BIND | ALTER_CONTEXT => {
                let n = *pdu.get(24)? as usize;
                let mut at = 28;
                let mut proposed = Vec::with_capacity(n.min(MAX_IFACES));
                for _ in 0..n {
                    let ctx_id = u16_at(pdu, at, le)?;
                    let n_syntax = *pdu.get(at + 2)? as usize;
                    let uuid = uuid_at(pdu, at + 4, le)?;
                    let version = u16_at(pdu, at + 20, le)?;
                    if proposed.len() < MAX_IFACES {
                        proposed.push((ctx_id, uuid, version));
                    }
                    at += 24 + 20 * n_syntax;
                }
                self.proposed = proposed;
            }
            BIND_ACK | ALTER_CONTEXT_RESP => {
                let sec_len = u16_at(pdu, 24, le)? as usize;
                // the secondary address, then padding to a 4-byte boundary
                let at = (26 + sec_len).div_ceil(4) * 4;
                let n = *pdu.get(at)? as usize;
                for i in 0..n {
                    let result = u16_at(pdu, at + 4 + i * 24, le)?;
                    let Some(&(ctx_id, uuid, version)) = self.proposed.get(i) else { break };
                    if result == 0 {
                        self.ifaces.retain(|x| x.ctx_id != ctx_id);
                        if self.ifaces.len() < MAX_IFACES {
                            self.ifaces.push(BoundIface { uuid, version, ctx_id });
                        }
                    }
                }
            }
            REQUEST | RESPONSE => {
                let d = dir.index();
                let ctx_id = u16_at(pdu, 20, le)?;
                // Suricata's stub data: a request's body after its opnum (an object UUID and
                // the authentication verifier included), a response's whole body
                let (opnum, stub_at) = if ptype == REQUEST {
                    (Some(u16_at(pdu, 22, le)?), 24)
                } else {
                    (self.calls.iter().find(|c| c.0 == call_id).map(|c| c.1), HDR)
                };
                let stub = pdu.get(stub_at..frag_len.max(stub_at))?;
                let first = flags & PFC_FIRST_FRAG != 0;
                if first || self.partial[d].as_ref().is_none_or(|p| p.call_id != call_id) {
                    self.partial[d] = Some(Partial { ctx_id, opnum, call_id, stub: Vec::new() });
                }
                let p = self.partial[d].as_mut()?;
                let room = MAX_STUB.saturating_sub(p.stub.len());
                p.stub.extend_from_slice(&stub[..stub.len().min(room)]);
                if flags & PFC_LAST_FRAG != 0 {
                    let p = self.partial[d].take()?;
                    if ptype == REQUEST {
                        if let Some(op) = p.opnum {
                            self.calls.retain(|c| c.0 != call_id);
                            if self.calls.len() >= MAX_CALLS {
                                self.calls.remove(0);
                            }
                            self.calls.push((call_id, op, p.ctx_id));
                        }
                    } else {
                        self.calls.retain(|c| c.0 != call_id);
                    }
                    out.push(TxInspect {
                        dce: Some(DceTx {
                            opnum: p.opnum,
                            ctx_id: p.ctx_id,
                            first_frag: first,
                            ifaces: self.ifaces.clone(),
                            little_endian: le,
                        }),
                        stub: Some(p.stub),
                        ..TxInspect::new(proto, dir)
                    });
                }
            }
            _ => {}
        }
        Some(())
    }
}

/// DCERPC over TCP: frames PDUs out of each direction's stream.
#[derive(Debug, Default)]
pub struct DcerpcParser {
    state: DceState,
    buf: [Vec<u8>; 2],
    /// A direction whose data stopped being PDUs (or had a gap): not parsed any more.
    lost: [bool; 2],
    scratch: Vec<TxInspect>,
    /// Completed transaction sides waiting for the next packet of their direction.
    deferred: Vec<TxInspect>,
}

impl DcerpcParser {
    pub fn malformed(&self) -> u64 {
        self.state.malformed
    }

    /// Both directions stopped: the sensor drops the parser without closing it, so the calls
    /// still open are logged now (unreplied).
    fn close_log_if_done(&mut self) {
        if self.lost[0]
            && self.lost[1]
            && let Some(log) = self.state.log.as_mut()
        {
            log.close();
        }
    }

    /// The EVE `dcerpc` records completed so far.
    fn take_logs(&mut self, out: &mut Vec<AppRecord>) {
        if let Some(log) = self.state.log.as_mut() {
            for (_, m) in log.done.drain(..) {
                out.push(AppRecord::Log(Box::new(super::LogRecord::new("dcerpc", false, m))));
            }
        }
    }

    /// The transaction sides of direction `dir` completed by earlier packets (see
    /// [`super::Parser::take_deferred`]).
    pub fn take_deferred(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        take_deferred(&mut self.deferred, dir, out);
    }
}

/// Moves the records of `dir` out of `deferred`, in order.
pub(crate) fn take_deferred(deferred: &mut Vec<TxInspect>, dir: Direction, out: &mut Vec<AppRecord>) {
    // in place: no vectors built per packet (this runs on every packet of an SMB/DCERPC flow)
    out.extend(deferred.extract_if(.., |t| t.dir == dir).map(|t| AppRecord::Inspect(Box::new(t))));
}

impl AppParser for DcerpcParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.lost[d] {
            return;
        }
        // DCERPC over TCP logs its transactions (over SMB they are part of the `smb` records)
        self.state.log.get_or_insert_with(Default::default);
        self.buf[d].extend_from_slice(data);
        let mut at = 0;
        loop {
            let rest = &self.buf[d][at..];
            if rest.len() < 10 {
                break;
            }
            let Some(len) = pdu_len(rest) else {
                self.lost[d] = true;
                self.state.malformed += 1;
                break;
            };
            if rest.len() < len {
                break;
            }
            self.state.on_pdu(dir, &rest[..len], AppProto::Dcerpc, &mut self.scratch);
            at += len;
        }
        if self.lost[d] {
            self.buf[d] = Vec::new();
        } else {
            self.buf[d].drain(..at);
        }
        self.deferred.append(&mut self.scratch);
        self.close_log_if_done();
        self.take_logs(out);
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, out: &mut Vec<AppRecord>) {
        self.lost[dir.index()] = true;
        self.buf[dir.index()] = Vec::new();
        self.close_log_if_done();
        self.take_logs(out);
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        out.extend(self.deferred.drain(..).map(|t| AppRecord::Inspect(Box::new(t))));
        if let Some(log) = self.state.log.as_mut() {
            log.close();
        }
        self.take_logs(out);
    }

    fn is_done(&self) -> bool {
        self.lost[0] && self.lost[1]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const UUID: &str = "367abb81-9844-35f1-ad32-98f038001003";

    #[test]
    fn uuid_text_is_the_canonical_lowercase_form() {
        let u = crate::detect::dce::parse_uuid(UUID).unwrap_or_default();
        assert_eq!(uuid_text(&u), UUID);
        assert_eq!(uuid_text(&[0xab; 16]), "abababab-abab-abab-abab-abababababab");
    }

    fn uuid_le() -> [u8; 16] {
        let mut u = crate::detect::dce::parse_uuid(UUID).unwrap_or_default();
        u[0..4].reverse();
        u[4..6].reverse();
        u[6..8].reverse();
        u
    }

    fn hdr(ptype: u8, flags: u8, body: &[u8], call_id: u32) -> Vec<u8> {
        let mut p = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
        p.extend_from_slice(&((HDR + body.len()) as u16).to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&call_id.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    pub(crate) fn bind(ctx: u16, version: u16) -> Vec<u8> {
        let mut b = vec![0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0];
        b.extend_from_slice(&ctx.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&uuid_le());
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&[0x04; 20]);
        hdr(BIND, 3, &b, 1)
    }

    pub(crate) fn bind_ack(result: u16) -> Vec<u8> {
        let mut b = vec![0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0];
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(b"135\0");
        b.extend_from_slice(&[0, 0]); // pad: 26 + 4 = 30 -> 32
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&result.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&[0x04; 20]);
        hdr(BIND_ACK, 3, &b, 1)
    }

    pub(crate) fn request(flags: u8, ctx: u16, opnum: u16, stub: &[u8], call_id: u32) -> Vec<u8> {
        let mut b = vec![0; 4];
        b.extend_from_slice(&ctx.to_le_bytes());
        b.extend_from_slice(&opnum.to_le_bytes());
        b.extend_from_slice(stub);
        hdr(REQUEST, flags, &b, call_id)
    }

    pub(crate) fn response(stub: &[u8], call_id: u32) -> Vec<u8> {
        let mut b = vec![0; 8];
        b.extend_from_slice(stub);
        hdr(RESPONSE, 3, &b, call_id)
    }

    fn inspects(mut out: Vec<AppRecord>, p: &mut DcerpcParser) -> Vec<TxInspect> {
        p.on_close(&mut out);
        out.into_iter().filter_map(AppRecord::into_inspect).collect()
    }

    fn logs(out: &[AppRecord]) -> Vec<serde_json::Value> {
        out.iter().filter_map(|r| r.as_log("dcerpc").map(|l| l.fields["dcerpc"].clone())).collect()
    }

    #[test]
    fn binds_and_calls_are_logged_as_suricata_dcerpc_records() {
        let mut p = DcerpcParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &bind(0, 2), &mut out);
        assert!(logs(&out).is_empty(), "nothing before the ack");
        p.on_data(Direction::ToClient, &bind_ack(0), &mut out);
        let bind = serde_json::json!({"request": "BIND", "response": "BINDACK", "call_id": 1, "rpc_version": "5.0",
            "interfaces": [{"uuid": UUID, "version": "2.0", "ack_result": 0}]});
        assert_eq!(logs(&out), vec![bind]);
        out.clear();
        // a request in two fragments, its response in one; then a request never answered
        p.on_data(Direction::ToServer, &request(PFC_FIRST_FRAG, 0, 15, b"abcd", 7), &mut out);
        p.on_data(Direction::ToServer, &request(PFC_LAST_FRAG, 0, 15, b"ef", 7), &mut out);
        p.on_data(Direction::ToClient, &response(b"answer", 7), &mut out);
        p.on_data(Direction::ToServer, &request(3, 0, 4, b"", 8), &mut out);
        // a response to a request not seen
        p.on_data(Direction::ToClient, &response(b"x", 9), &mut out);
        p.on_close(&mut out);
        let l = logs(&out);
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(l[0]["request"], "REQUEST");
        assert_eq!(l[0]["req"], serde_json::json!({"opnum": 15, "frag_cnt": 2, "stub_data_size": 6}));
        assert_eq!(l[0]["res"], serde_json::json!({"frag_cnt": 1, "stub_data_size": 8 + 6}));
        assert_eq!(l[0]["interfaces"][0]["uuid"], UUID);
        assert_eq!((l[0]["response"].as_str(), l[0]["call_id"].as_u64()), (Some("RESPONSE"), Some(7)));
        assert_eq!((l[1]["request"].as_str(), l[1]["response"].as_str()), (Some("REQUEST_LOST"), Some("RESPONSE")));
        assert_eq!((l[2]["request"].as_str(), l[2]["response"].as_str()), (Some("REQUEST"), Some("UNREPLIED")));
        assert_eq!(l[2]["req"]["opnum"], 4);
    }

    #[test]
    fn bind_ack_request_and_response_give_iface_opnum_and_stub() {
        let mut p = DcerpcParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &bind(0, 2), &mut out);
        p.on_data(Direction::ToClient, &bind_ack(0), &mut out);
        // (the bind's EVE record: see binds_and_calls_are_logged_as_suricata_dcerpc_records)
        out.retain(|r| !matches!(r, AppRecord::Log(_)));
        // a request split over two segments
        let req = request(3, 0, 15, b"\x09\x00stub", 2);
        p.on_data(Direction::ToServer, &req[..20], &mut out);
        p.take_deferred(Direction::ToServer, &mut out);
        assert!(out.is_empty());
        p.on_data(Direction::ToServer, &req[20..], &mut out);
        // held until the next packet of its direction
        p.take_deferred(Direction::ToClient, &mut out);
        assert!(out.is_empty());
        p.take_deferred(Direction::ToServer, &mut out);
        assert_eq!(out.len(), 1);
        p.on_data(Direction::ToClient, &response(b"answer", 2), &mut out);
        let t = inspects(out, &mut p);
        assert_eq!(t.len(), 2);
        let dce = t[0].dce.clone().unwrap_or_default();
        assert_eq!(dce.opnum, Some(15));
        assert_eq!(dce.ifaces.len(), 1);
        assert_eq!(dce.ifaces[0].version, 2);
        assert_eq!(dce.ifaces[0].uuid, crate::detect::dce::parse_uuid(UUID).unwrap_or_default());
        assert_eq!(t[0].stub.as_deref(), Some(&b"\x09\x00stub"[..]));
        assert_eq!(t[1].dir, Direction::ToClient);
        assert_eq!(t[1].dce.as_ref().and_then(|d| d.opnum), Some(15));
        // a response's stub data starts with its header (as Suricata's)
        assert_eq!(t[1].stub.as_deref(), Some(&b"\0\0\0\0\0\0\0\0answer"[..]));
    }

    #[test]
    fn rejected_binds_bind_nothing_and_fragments_are_reassembled() {
        let mut p = DcerpcParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &bind(0, 1), &mut out);
        p.on_data(Direction::ToClient, &bind_ack(2), &mut out);
        p.on_data(Direction::ToServer, &request(PFC_FIRST_FRAG, 0, 4, b"ab", 7), &mut out);
        p.on_data(Direction::ToServer, &request(0, 0, 4, b"cd", 7), &mut out);
        p.on_data(Direction::ToServer, &request(PFC_LAST_FRAG, 0, 4, b"ef", 7), &mut out);
        let t = inspects(out, &mut p);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].stub.as_deref(), Some(&b"abcdef"[..]));
        let dce = t[0].dce.clone().unwrap_or_default();
        assert!(dce.ifaces.is_empty());
        assert!(!dce.first_frag);
    }

    /// The `pcap_cnt` of each alert of `sid` when a bind, its ack, a request and its response
    /// cross a TCP session (packets 4 to 7; the client acknowledges at packet 8).
    fn alert_packets(inline: bool, sid: u64) -> Vec<u64> {
        use crate::decode::LinkType;
        use crate::detect::{Detector, Vars};
        use crate::synth::{Host, TcpSession};
        use crate::{Sensor, SensorOptions};
        use soc_model::Timestamp;
        let rules = format!(
            "alert dcerpc any any -> any any (dcerpc.iface:{UUID}; dcerpc.opnum:15; sid:1;)\n\
             alert tcp any any -> any any (dcerpc.opnum:16; sid:2;)\n\
             alert tcp any any -> any any (flow:to_client; dcerpc.stub_data; content:\"answer\"; sid:3;)\n"
        );
        let (det, errors) = Detector::from_rules(&rules, "t.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut sensor =
            Sensor::new(SensorOptions { stream_inline: inline, ..Default::default() }).with_detector(det.into());
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 9]), 135);
        let mut frames = s.handshake();
        frames.push(s.client_send(&bind(0, 1)));
        frames.push(s.server_send(&bind_ack(0)));
        frames.push(s.client_send(&request(3, 0, 15, b"\x09\x00", 2)));
        frames.push(s.server_send(&response(b"answer", 2)));
        frames.push(s.client_segment(0x10, &[]));
        frames.extend(s.close());
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            sensor.process(
                Timestamp::from_unix_micros(1_700_000_000_000_000 + i as i64),
                LinkType::Ethernet,
                f,
                &mut out,
            );
        }
        sensor.flush_all(&mut out);
        out.iter()
            .filter(|e| e.alert.as_ref().is_some_and(|a| a.signature_id == Some(sid)))
            .map(|e| e.extra.get("pcap_cnt").and_then(serde_json::Value::as_u64).unwrap_or(0))
            .collect()
    }

    #[test]
    fn transactions_alert_at_the_next_packet_of_their_direction_or_inline_at_their_own() {
        // a rule without direction matches the request and the response (the opnum and the
        // context are the request's), as Suricata counts them
        assert_eq!(alert_packets(false, 1), vec![8, 10]);
        assert_eq!(alert_packets(true, 1), vec![6, 7]);
        assert_eq!(alert_packets(false, 2), Vec::<u64>::new());
        assert_eq!(alert_packets(true, 3), vec![7]);
        // no later packet from the server: inspected at the end of the flow
        assert_eq!(alert_packets(false, 3).len(), 1);
    }

    #[test]
    fn truncated_and_malformed_pdus_never_panic() {
        let good = request(3, 0, 1, b"xyz", 1);
        for n in 0..good.len() {
            let mut s = DceState::default();
            let mut out = Vec::new();
            s.on_pdu(Direction::ToServer, &good[..n], AppProto::Dcerpc, &mut out);
            let mut b = bind(0, 1);
            b.truncate(n.min(b.len()));
            s.on_pdu(Direction::ToServer, &b, AppProto::Dcerpc, &mut out);
            let mut a = bind_ack(0);
            a.truncate(n.min(a.len()));
            s.on_pdu(Direction::ToClient, &a, AppProto::Dcerpc, &mut out);
        }
        // a bogus header stops the direction
        let mut p = DcerpcParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"\x04\x00\x00\x00garbage-garbage", &mut out);
        p.on_data(Direction::ToServer, &good, &mut out);
        assert!(out.is_empty());
        assert_eq!(p.malformed(), 1);
        // an auth length larger than the PDU
        let mut bad = good.clone();
        bad[10] = 0xff;
        let mut s = DceState::default();
        let mut txs = Vec::new();
        s.on_pdu(Direction::ToServer, &bad, AppProto::Dcerpc, &mut txs);
        assert!(txs.is_empty());
        assert_eq!(s.malformed, 1);
    }
}
