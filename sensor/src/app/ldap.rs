//! LDAP over TCP: LDAPMessages (BER, [`super::ber`]) read from the reassembled stream of each
//! direction, paired into transactions by message id, and the fields of the
//! `ldap.request.operation`, `ldap.responses.operation` and `ldap.responses.count` keywords.
//!
//! A transaction is a request and its responses (Suricata's model): the request side is
//! inspected when the request is complete; the response side once the last response of the
//! operation arrived (`search_result_done` for a search, the first response of the other
//! operations), or at the end of the flow. A response without a request (an unsolicited
//! notification, message id 0) is a transaction of its own. Both sides are inspected, like
//! SMB's, at the next packet of their direction ([`super::Parser::take_deferred`]).
//!
//! The integer fields of a response side: every response's operation
//! ([`AppInt::LdapResponsesOperation`]), and for the index forms of the keyword the operation at
//! each index from the start (`index << 8 | op`) and from the end (`-index`, `-1` the last), the
//! operation all responses share, and the count.
//!
//! Each transaction is also logged as Suricata's EVE `ldap` record: the request and the
//! responses with their operations' fields (search, bind, results; a search filter in its
//! `present` form only). When parsing stops (a gap, a malformed message) the open
//! transactions are logged as they are.

use super::dcerpc::TxInspect;
use super::{AppParser, AppProto, AppRecord, Direction, ber, hex};
use crate::detect::AppInt;
use serde_json::Value;

/// Bytes kept per direction waiting for a message to complete.
const MAX_PENDING: usize = 1 << 20;
/// Requests waiting for their responses at most (the oldest is dropped).
const MAX_OPEN: usize = 256;
/// Responses of one transaction kept at most.
const MAX_RESPONSES: usize = 4096;

/// Suricata's names of the protocol operations (`[APPLICATION n]` tag numbers).
const OPERATIONS: &[(&str, u8)] = &[
    ("bind_request", 0),
    ("bind_response", 1),
    ("unbind_request", 2),
    ("search_request", 3),
    ("search_result_entry", 4),
    ("search_result_done", 5),
    ("modify_request", 6),
    ("modify_response", 7),
    ("add_request", 8),
    ("add_response", 9),
    ("del_request", 10),
    ("del_response", 11),
    ("mod_dn_request", 12),
    ("mod_dn_response", 13),
    ("compare_request", 14),
    ("compare_response", 15),
    ("abandon_request", 16),
    ("search_result_reference", 19),
    ("extended_request", 23),
    ("extended_response", 24),
    ("intermediate_response", 25),
];

/// The operation number of a name (`search_request` -> 3).
pub fn operation_from_name(name: &str) -> Option<u8> {
    OPERATIONS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

fn is_response(op: u8) -> bool {
    matches!(op, 1 | 4 | 5 | 7 | 9 | 11 | 13 | 15 | 19 | 24 | 25)
}

/// Whether more responses follow this one in the same transaction.
fn continues(op: u8) -> bool {
    matches!(op, 4 | 19 | 25)
}

/// One LDAPMessage: its message id and operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub op: u8,
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Incomplete,
    Malformed,
    /// A message and its length in bytes.
    Message(Message, usize),
}

fn read_message(data: &[u8]) -> Read {
    if data.len() < 2 {
        return Read::Incomplete;
    }
    let Some(t) = ber::read_partial(data) else {
        return if data.len() < 6 { Read::Incomplete } else { Read::Malformed };
    };
    if t.tag != 0x30 {
        return Read::Malformed;
    }
    if t.content.len() < t.declared_len {
        return Read::Incomplete;
    }
    let len = data.len() - t.rest.len();
    let Some(id) = ber::expect(t.content, 0x02).and_then(|i| Some((ber::integer(i.content)?, i.rest))) else {
        return Read::Malformed;
    };
    let (id, rest) = id;
    match rest.first() {
        Some(&tag) if tag & 0xc0 == 0x40 && tag & 0x1f != 0x1f => Read::Message(Message { id, op: tag & 0x1f }, len),
        _ => Read::Malformed,
    }
}

/// A request waiting for its responses.
#[derive(Debug)]
struct Open {
    id: i64,
    responses: Vec<u8>,
    /// The EVE `ldap` record's request and responses so far.
    log_request: Option<Value>,
    log_responses: Vec<Value>,
}

type Map = serde_json::Map<String, Value>;

/// Suricata's name of an operation.
fn operation_name(op: u8) -> String {
    OPERATIONS.iter().find(|(_, c)| *c == op).map_or_else(|| format!("unknown_{op}"), |(n, _)| (*n).to_string())
}

/// An octet string as text: UTF-8 as is, other bytes above 0x7f as `\xNN`.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut s = String::with_capacity(b.len() * 2);
            for &c in b {
                if c < 0x80 {
                    s.push(char::from(c));
                } else {
                    s.push_str("\\x");
                    super::push_hex(&mut s, &[c]);
                }
            }
            s
        }
    }
}

/// RFC 4511 result codes, as Suricata names them.
fn result_code_name(code: i64) -> String {
    let name = match code {
        0 => "success",
        1 => "operations_error",
        2 => "protocol_error",
        3 => "time_limit_exceeded",
        4 => "size_limit_exceeded",
        5 => "compare_false",
        6 => "compare_true",
        7 => "auth_method_not_supported",
        8 => "stronger_auth_required",
        10 => "referral",
        11 => "admin_limit_exceeded",
        12 => "unavailable_critical_extension",
        13 => "confidentiality_required",
        14 => "sasl_bind_in_progress",
        16 => "no_such_attribute",
        17 => "undefined_attribute_type",
        18 => "inappropriate_matching",
        19 => "constraint_violation",
        20 => "attribute_or_value_exists",
        21 => "invalid_attribute_syntax",
        32 => "no_such_object",
        33 => "alias_problem",
        34 => "invalid_dns_syntax",
        36 => "alias_dereferencing_problem",
        48 => "inappropriate_authentication",
        49 => "invalid_credentials",
        50 => "insufficient_access_rights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwilling_to_perform",
        54 => "loop_detect",
        64 => "naming_violation",
        65 => "object_class_violation",
        66 => "not_allowed_on_non_leaf",
        67 => "not_allowed_on_rdn",
        68 => "entry_already_exists",
        69 => "object_class_mods_prohibited",
        71 => "affects_multiple_dsas",
        80 => "other",
        n => return n.to_string(),
    };
    name.to_string()
}

fn int_of(t: &ber::Tlv<'_>) -> Option<i64> {
    ber::integer(t.content)
}

/// An LDAPResult's fields (a response's `result_code`, `matched_dn`, `message`); the TLVs
/// after them are returned.
fn ldap_result<'a>(c: &'a [u8], o: &mut Map) -> Option<&'a [u8]> {
    let code = ber::read(c)?;
    let dn = ber::read(code.rest)?;
    let msg = ber::read(dn.rest)?;
    o.insert("result_code".into(), Value::from(result_code_name(int_of(&code)?)));
    o.insert("matched_dn".into(), Value::from(text(dn.content)));
    o.insert("message".into(), Value::from(text(msg.content)));
    Some(msg.rest)
}

/// A search filter as Suricata logs it (the `present` form; other forms are left out).
fn filter(t: &ber::Tlv<'_>) -> Option<Value> {
    (t.tag == 0x87).then(|| serde_json::json!({"type": "present", "value": text(t.content)}))
}

/// The body object of an operation (`search_request: {...}`), when it has one.
fn op_body(op: u8, c: &[u8]) -> Option<Map> {
    let mut o = Map::new();
    match op {
        0 => {
            let version = ber::read(c)?;
            let name = ber::read(version.rest)?;
            o.insert("version".into(), Value::from(int_of(&version)?));
            o.insert("name".into(), Value::from(text(name.content)));
            let auth = ber::read(name.rest)?;
            match auth.tag {
                0x80 => {
                    o.insert("simple".into(), Value::from(text(auth.content)));
                }
                0xa3 => {
                    let mech = ber::read(auth.content)?;
                    let mut sasl = Map::new();
                    sasl.insert("mechanism".into(), Value::from(text(mech.content)));
                    if let Some(cred) = ber::read(mech.rest) {
                        sasl.insert("credentials".into(), Value::from(hex(cred.content)));
                    }
                    o.insert("sasl".into(), Value::Object(sasl));
                }
                _ => {}
            }
        }
        3 => {
            let base = ber::read(c)?;
            let scope = ber::read(base.rest)?;
            let deref = ber::read(scope.rest)?;
            let size = ber::read(deref.rest)?;
            let time = ber::read(size.rest)?;
            let types = ber::read(time.rest)?;
            let filt = ber::read(types.rest)?;
            let attrs = ber::read(filt.rest)?;
            o.insert("base_object".into(), Value::from(text(base.content)));
            o.insert("scope".into(), Value::from(int_of(&scope)?));
            o.insert("deref_alias".into(), Value::from(int_of(&deref)?));
            o.insert("size_limit".into(), Value::from(int_of(&size)?));
            o.insert("time_limit".into(), Value::from(int_of(&time)?));
            o.insert("types_only".into(), Value::Bool(types.content.first().is_some_and(|&b| b != 0)));
            if let Some(f) = filter(&filt) {
                o.insert("filter".into(), f);
            }
            let names: Vec<Value> = ber::children(attrs.content, false).map(|a| Value::from(text(a.content))).collect();
            o.insert("attributes".into(), Value::Array(names));
        }
        4 => {
            let name = ber::read(c)?;
            let attrs = ber::read(name.rest)?;
            o.insert("base_object".into(), Value::from(text(name.content)));
            let mut list = Vec::new();
            for a in ber::children(attrs.content, false) {
                let Some(ty) = ber::read(a.content) else { continue };
                let vals: Vec<Value> = ber::read(ty.rest)
                    .map(|set| ber::children(set.content, false).map(|v| Value::from(text(v.content))).collect())
                    .unwrap_or_default();
                list.push(serde_json::json!({"type": text(ty.content), "values": vals}));
            }
            o.insert("attributes".into(), Value::Array(list));
        }
        1 => {
            let mut rest = ldap_result(c, &mut o)?;
            while let Some(t) = ber::read(rest) {
                if t.tag == 0x87 {
                    o.insert("server_sasl_creds".into(), Value::from(hex(t.content)));
                }
                rest = t.rest;
            }
        }
        5 | 7 | 9 | 11 | 13 | 15 | 24 => {
            ldap_result(c, &mut o)?;
        }
        _ => return None,
    }
    Some(o)
}

/// The EVE form of one request or response (`operation` and its body object); `with_id`: with
/// its `message_id`.
fn log_part(m: &Message, raw: &[u8], with_id: bool) -> Value {
    let mut o = Map::new();
    let name = operation_name(m.op);
    if with_id && !is_response(m.op) {
        o.insert("message_id".into(), Value::from(m.id));
    }
    o.insert("operation".into(), Value::from(name.clone()));
    if with_id && is_response(m.op) {
        o.insert("message_id".into(), Value::from(m.id));
    }
    let body = ber::read(raw)
        .and_then(|seq| ber::read(seq.content))
        .and_then(|id| ber::read(id.rest))
        .and_then(|op| op_body(m.op, op.content));
    if let Some(b) = body {
        o.insert(name, Value::Object(b));
    }
    Value::Object(o)
}

/// The EVE `ldap` record of a transaction.
fn log_record(request: Option<Value>, responses: Vec<Value>) -> AppRecord {
    let mut o = Map::new();
    if let Some(r) = request {
        o.insert("request".into(), r);
    }
    if !responses.is_empty() {
        o.insert("responses".into(), Value::Array(responses));
    }
    AppRecord::Log(Box::new(super::LogRecord::new("ldap", false, o)))
}

/// LDAP parser of one connection.
#[derive(Debug, Default)]
pub struct LdapParser {
    buf: [Vec<u8>; 2],
    stopped: [bool; 2],
    open: Vec<Open>,
    deferred: Vec<TxInspect>,
    /// EVE `ldap` records completed.
    logs: Vec<AppRecord>,
}

impl LdapParser {
    /// The transaction sides of direction `dir` completed by earlier packets (see
    /// [`super::Parser::take_deferred`]).
    pub fn take_deferred(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        super::dcerpc::take_deferred(&mut self.deferred, dir, out);
    }

    fn on_message(&mut self, dir: Direction, m: Message, raw: &[u8]) {
        if !is_response(m.op) {
            let mut t = TxInspect::new(AppProto::Ldap, dir);
            t.ints.push((AppInt::LdapRequestOperation, u64::from(m.op)));
            self.deferred.push(t);
            let request = log_part(&m, raw, true);
            // abandon and unbind get no response
            if matches!(m.op, 2 | 16) {
                self.logs.push(log_record(Some(request), Vec::new()));
            } else {
                self.open_tx(m.id, Some(request));
            }
            return;
        }
        let i = match self.open.iter().position(|o| o.id == m.id) {
            Some(i) => i,
            None => self.open_tx(m.id, None),
        };
        if self.open[i].responses.len() < MAX_RESPONSES {
            self.open[i].responses.push(m.op);
            // (a response without its request carries the message id)
            let orphan = self.open[i].log_request.is_none();
            self.open[i].log_responses.push(log_part(&m, raw, orphan));
        }
        if !continues(m.op) {
            let o = self.open.remove(i);
            self.deferred.push(response_side(dir, &o.responses));
            self.logs.push(log_record(o.log_request, o.log_responses));
        }
    }

    /// Opens a transaction (the oldest open one is logged as it is beyond [`MAX_OPEN`]);
    /// returns its index.
    fn open_tx(&mut self, id: i64, log_request: Option<Value>) -> usize {
        if self.open.len() >= MAX_OPEN {
            let o = self.open.remove(0);
            self.logs.push(log_record(o.log_request, o.log_responses));
        }
        self.open.push(Open { id, responses: Vec::new(), log_request, log_responses: Vec::new() });
        self.open.len() - 1
    }
}

/// The response side of a transaction with these responses.
fn response_side(dir: Direction, responses: &[u8]) -> TxInspect {
    let mut t = TxInspect::new(AppProto::Ldap, dir);
    let n = responses.len();
    t.ints.push((AppInt::LdapResponsesCount, n as u64));
    for (i, &op) in responses.iter().enumerate() {
        t.ints.push((AppInt::LdapResponsesOperation, u64::from(op)));
        t.ints.push((AppInt::LdapResponsesOperationAt, (i as u64) << 8 | u64::from(op)));
        t.ints.push((AppInt::LdapResponsesOperationFromEnd, ((n - i) as u64) << 8 | u64::from(op)));
    }
    if let Some(&first) = responses.first()
        && responses.iter().all(|&op| op == first)
    {
        t.ints.push((AppInt::LdapResponsesOperationAll, u64::from(first)));
    }
    t
}

impl AppParser for LdapParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.stopped[d] {
            return;
        }
        self.parse(dir, data);
        out.append(&mut self.logs);
    }

    fn on_gap(&mut self, _dir: Direction, _len: u32, out: &mut Vec<AppRecord>) {
        self.stopped = [true; 2];
        self.buf = Default::default();
        self.log_open();
        out.append(&mut self.logs);
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        // transactions whose last response never came: their response side as it is
        for o in std::mem::take(&mut self.open) {
            if !o.responses.is_empty() {
                self.deferred.push(response_side(Direction::ToClient, &o.responses));
            }
            if o.log_request.is_some() || !o.log_responses.is_empty() {
                self.logs.push(log_record(o.log_request, o.log_responses));
            }
        }
        self.take_deferred(Direction::ToServer, out);
        self.take_deferred(Direction::ToClient, out);
        out.append(&mut self.logs);
    }

    fn is_done(&self) -> bool {
        // the sensor takes what is deferred when the parser is done
        self.stopped[0] && self.stopped[1]
    }
}

impl LdapParser {
    /// Parsing stops: the open transactions are logged as they are (the sensor drops a parser
    /// that is done without closing it).
    fn log_open(&mut self) {
        for o in &mut self.open {
            let request = o.log_request.take();
            let responses = std::mem::take(&mut o.log_responses);
            if request.is_some() || !responses.is_empty() {
                self.logs.push(log_record(request, responses));
            }
        }
    }

    fn parse(&mut self, dir: Direction, data: &[u8]) {
        let d = dir.index();
        self.buf[d].extend_from_slice(data);
        let mut buf = std::mem::take(&mut self.buf[d]);
        let mut at = 0;
        while at < buf.len() {
            match read_message(&buf[at..]) {
                Read::Incomplete => break,
                Read::Malformed => {
                    // as Suricata's parser error: the flow is not parsed any more
                    self.stopped = [true; 2];
                    self.log_open();
                    at = buf.len();
                }
                Read::Message(m, len) => {
                    self.on_message(dir, m, &buf[at..at + len]);
                    at += len;
                }
            }
        }
        // kept in place: a message arriving in many segments is not copied at each one
        if buf.len().saturating_sub(at) > MAX_PENDING {
            self.stopped[d] = true;
        } else {
            buf.drain(..at.min(buf.len()));
            self.buf[d] = buf;
        }
    }
}

/// `ldap.responses.operation:<op>[,<index>|any|all]` as an integer field and condition value:
/// `any` (the default) on [`AppInt::LdapResponsesOperation`], an index from the start on
/// [`AppInt::LdapResponsesOperationAt`], a negative one on
/// [`AppInt::LdapResponsesOperationFromEnd`], `all` on [`AppInt::LdapResponsesOperationAll`].
pub fn responses_operation(v: &str) -> Result<(AppInt, u64), String> {
    let (name, index) = match v.split_once(',') {
        Some((n, i)) => (n.trim(), Some(i.trim())),
        None => (v.trim(), None),
    };
    let op = operation(name)?;
    Ok(match index {
        None | Some("any") => (AppInt::LdapResponsesOperation, op),
        Some("all") => (AppInt::LdapResponsesOperationAll, op),
        Some(i) => {
            let n: i64 = i.parse().map_err(|_| format!("invalid index '{i}'"))?;
            if n >= 0 {
                (AppInt::LdapResponsesOperationAt, (n as u64) << 8 | op)
            } else {
                (AppInt::LdapResponsesOperationFromEnd, n.unsigned_abs() << 8 | op)
            }
        }
    })
}

/// An operation name or number.
pub fn operation(v: &str) -> Result<u64, String> {
    let v = v.trim();
    if let Some(op) = operation_from_name(v) {
        return Ok(u64::from(op));
    }
    match v.parse::<u8>() {
        Ok(n) if n < 31 => Ok(u64::from(n)),
        _ => Err(format!("unknown LDAP operation '{v}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH: &str = "30560201026351041164633d6578616d706c652c64633d636f6d0a01020a0100020203e802011e010100a024a315040b6f626a656374436c6173730406706572736f6ea30b040375696404046a646f65300604012a04012b";
    const ENTRY: &str = "30490201026444041164633d6578616d706c652c64633d636f6d302f301c040b6f626a656374436c617373310d0403746f700406646f6d61696e300f04026463310904076578616d706c65";
    const DONE: &str = "300c02010265070a010004000400";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn feed(p: &mut LdapParser, dir: Direction, data: &[u8]) -> Vec<TxInspect> {
        let mut out = Vec::new();
        p.on_data(dir, data, &mut out);
        p.take_deferred(dir, &mut out);
        out.into_iter().filter_map(AppRecord::into_inspect).collect()
    }

    #[test]
    fn binary_values_are_written_in_lower_case_hex_and_text_escapes_only_non_utf8_bytes() {
        assert_eq!(crate::app::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(text(b"cn=admin"), "cn=admin");
        assert_eq!(text("é".as_bytes()), "é");
        assert_eq!(text(b"a\xe9b\x80"), "a\\xe9b\\x80");
    }

    #[test]
    fn a_large_message_in_many_segments_reads_and_a_larger_one_stops_the_direction() {
        // a search request whose filter is 200 KiB, in 1,000-byte segments, then a second one
        let body_len = 200 * 1024;
        let mut msg = vec![0x30, 0x83];
        msg.extend(&((body_len + 8) as u32).to_be_bytes()[1..]);
        msg.extend([0x02, 0x01, 0x07, 0x63, 0x83]);
        msg.extend(&(body_len as u32).to_be_bytes()[1..]);
        msg.resize(msg.len() + body_len, 0x04);
        let two = [&msg[..], &msg[..]].concat();
        let mut p = LdapParser::default();
        let n: usize = two.chunks(1000).map(|c| feed(&mut p, Direction::ToServer, c).len()).sum();
        assert_eq!(n, 2);
        assert!(p.buf[0].is_empty());
        // a message declared longer than what is kept: the direction stops, its bytes freed
        let mut p = LdapParser::default();
        let mut big = vec![0x30, 0x84, 0x00, 0x20, 0x00, 0x00, 0x02, 0x01, 0x07, 0x63];
        big.resize(MAX_PENDING + 10, 0);
        for c in big.chunks(1460) {
            feed(&mut p, Direction::ToServer, c);
        }
        assert!(p.stopped[0] && p.buf[0].capacity() == 0);
    }

    fn logs(out: &[AppRecord]) -> Vec<Value> {
        out.iter().filter_map(|r| r.as_log("ldap").map(|l| l.fields["ldap"].clone())).collect()
    }

    #[test]
    fn transactions_are_logged_as_suricata_ldap_records() {
        let mut p = LdapParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &hex(SEARCH), &mut out);
        p.on_data(Direction::ToClient, &hex(ENTRY), &mut out);
        assert!(logs(&out).is_empty(), "the entry alone does not end the search");
        p.on_data(Direction::ToClient, &hex(DONE), &mut out);
        let want = serde_json::json!({
            "request": {"message_id": 2, "operation": "search_request", "search_request": {
                "base_object": "dc=example,dc=com", "scope": 2, "deref_alias": 0, "size_limit": 1000,
                "time_limit": 30, "types_only": false, "attributes": ["*", "+"]}},
            "responses": [
                {"operation": "search_result_entry", "search_result_entry": {"base_object": "dc=example,dc=com",
                    "attributes": [{"type": "objectClass", "values": ["top", "domain"]},
                                   {"type": "dc", "values": ["example"]}]}},
                {"operation": "search_result_done",
                 "search_result_done": {"result_code": "success", "matched_dn": "", "message": ""}}]});
        assert_eq!(logs(&out), vec![want]);
        out.clear();
        // a response without its request carries the message id; a request left open when a
        // gap stops the parser is logged without responses
        p.on_data(Direction::ToClient, &hex("300c02010965070a010004000400"), &mut out);
        p.on_data(Direction::ToServer, &hex(SEARCH), &mut out);
        p.on_gap(Direction::ToClient, 100, &mut out);
        let l = logs(&out);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0]["responses"][0]["message_id"], 9);
        assert!(l[0].get("request").is_none());
        assert_eq!(l[1]["request"]["operation"], "search_request");
        assert!(l[1].get("responses").is_none());
        p.on_close(&mut out);
        assert_eq!(logs(&out).len(), 2, "logged once");
        // present filters, binds (simple and SASL) and their responses; non-UTF-8 values
        let filter = ber::read(&[0x87, 3, b'c', b'n', 0xff]).map(|t| filter(&t));
        assert_eq!(filter, Some(Some(serde_json::json!({"type": "present", "value": "cn\\xff"}))));
        let bind = op_body(0, &hex("020103040161a30b0406475353415049040102")).unwrap_or_default();
        assert_eq!(
            Value::Object(bind),
            serde_json::json!({"version": 3, "name": "a", "sasl": {"mechanism": "GSSAPI", "credentials": "02"}})
        );
        let resp = op_body(1, &hex("0a010e04000400870103")).unwrap_or_default();
        assert_eq!(resp["result_code"], "sasl_bind_in_progress");
        assert_eq!(resp["server_sasl_creds"], "03");
        assert!(op_body(3, &hex("0400")).is_none(), "a truncated search body has no object");
    }

    #[test]
    fn a_search_is_one_transaction_with_its_responses() {
        let mut p = LdapParser::default();
        let req = feed(&mut p, Direction::ToServer, &hex(SEARCH));
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].ints, vec![(AppInt::LdapRequestOperation, 3)]);
        // the entry alone does not finish the transaction; a message split anywhere still reads
        let entry = hex(ENTRY);
        assert!(feed(&mut p, Direction::ToClient, &entry[..7]).is_empty());
        assert!(feed(&mut p, Direction::ToClient, &entry[7..]).is_empty());
        let resp = feed(&mut p, Direction::ToClient, &hex(DONE));
        assert_eq!(resp.len(), 1);
        let ints = &resp[0].ints;
        assert!(ints.contains(&(AppInt::LdapResponsesCount, 2)));
        assert!(ints.contains(&(AppInt::LdapResponsesOperation, 4)));
        assert!(ints.contains(&(AppInt::LdapResponsesOperationAt, 1 << 8 | 5)));
        assert!(ints.contains(&(AppInt::LdapResponsesOperationFromEnd, 1 << 8 | 5)));
        assert!(!ints.iter().any(|(k, _)| *k == AppInt::LdapResponsesOperationAll));
    }

    #[test]
    fn unsolicited_responses_and_malformed_input() {
        let notice = hex("300c02010078070a013404000400");
        let mut p = LdapParser::default();
        let t = feed(&mut p, Direction::ToClient, &notice);
        assert_eq!(t.len(), 1);
        assert!(t[0].ints.contains(&(AppInt::LdapResponsesOperationAll, 24)));
        // not BER: the flow is given up on, no panic on any prefix
        assert!(feed(&mut p, Direction::ToServer, b"GET / HTTP/1.1\r\n").is_empty());
        assert!(feed(&mut p, Direction::ToServer, &hex(SEARCH)).is_empty());
        assert!(feed(&mut p, Direction::ToClient, &notice).is_empty());
        assert!(p.is_done());
        let search = hex(SEARCH);
        for n in 0..search.len() {
            let mut p = LdapParser::default();
            assert!(feed(&mut p, Direction::ToServer, &search[..n]).is_empty());
        }
    }

    #[test]
    fn keyword_values() {
        assert_eq!(operation("search_request"), Ok(3));
        assert_eq!(operation("3"), Ok(3));
        assert!(operation("nope").is_err());
        assert_eq!(responses_operation("search_result_done"), Ok((AppInt::LdapResponsesOperation, 5)));
        assert_eq!(responses_operation("search_result_done,any"), Ok((AppInt::LdapResponsesOperation, 5)));
        assert_eq!(responses_operation("search_result_done,1"), Ok((AppInt::LdapResponsesOperationAt, 0x105)));
        assert_eq!(responses_operation("search_result_done,-1"), Ok((AppInt::LdapResponsesOperationFromEnd, 0x105)));
        assert_eq!(responses_operation("search_result_done,all"), Ok((AppInt::LdapResponsesOperationAll, 5)));
        assert!(responses_operation("search_result_done,x").is_err());
    }
}
