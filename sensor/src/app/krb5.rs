//! Kerberos 5 (RFC 4120) messages: the fields the `krb5_*` keywords inspect.
//!
//! Over UDP a datagram is one message; over TCP a message follows a 4-byte record length.
//! A message cut by the end of the data (a TCP segment boundary) is read as far as it goes:
//! the fields the keywords use sit near its start.
//!
//! Over TCP, [`Krb5Parser`] reads the records of the reassembled streams and logs each message
//! as Suricata's EVE `krb5` record (Kerberos over UDP is not logged yet).

use super::ber;

/// `msg-type` values.
pub const AS_REQ: u8 = 10;
pub const AS_REP: u8 = 11;
pub const TGS_REQ: u8 = 12;
pub const TGS_REP: u8 = 13;
pub const KRB_ERROR: u8 = 30;

/// The fields of one message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Krb5Message<'a> {
    pub msg_type: u8,
    /// The client name's components (`krb5.cname`).
    pub cname: Vec<&'a [u8]>,
    /// The server name's components (`krb5.sname`): the request's, the ticket's in a reply, the
    /// error's in a KRB-ERROR.
    pub sname: Vec<&'a [u8]>,
    /// KRB-ERROR `error-code`.
    pub error_code: Option<i64>,
    /// Replies: the encryption type of the ticket (`krb5.ticket_encryption`).
    pub ticket_etype: Option<i64>,
    /// The request body's realm, a reply's client realm (EVE `realm`).
    pub realm: Option<&'a [u8]>,
    /// Replies: the encryption type of the reply's encrypted part (EVE `encryption`).
    pub etype: Option<i64>,
}

/// Whether an encryption type is weak (DES and RC4 families), as Suricata's
/// `krb5.ticket_weak_encryption`.
pub fn weak_etype(etype: i64) -> bool {
    matches!(etype, 1..=8 | 23 | 24)
}

/// Encryption type names (RFC 3961/4757/3962 and Suricata's names) to numbers.
pub fn etype_from_name(name: &str) -> Option<i64> {
    Some(match name {
        "des-cbc-crc" => 1,
        "des-cbc-md4" => 2,
        "des-cbc-md5" => 3,
        "des3-cbc-md5" => 5,
        "des3-cbc-sha1" => 7,
        "des3-cbc-sha1-kd" => 16,
        "aes128-cts-hmac-sha1-96" => 17,
        "aes256-cts-hmac-sha1-96" => 18,
        "aes128-cts-hmac-sha256-128" => 19,
        "aes256-cts-hmac-sha384-192" => 20,
        "rc4-hmac" => 23,
        "rc4-hmac-exp" => 24,
        _ => return None,
    })
}

/// The name strings of a PrincipalName content.
fn principal(content: &[u8]) -> Vec<&[u8]> {
    let Some(names) = ber::field(content, 1, true) else { return Vec::new() };
    let Some(seq) = ber::read_partial(names.content).filter(|t| t.tag == 0x30) else { return Vec::new() };
    ber::children(seq.content, false).filter(|t| t.tag == 0x1b).map(|t| t.content).collect()
}

fn seq_of<'a>(t: &ber::PartialTlv<'a>) -> Option<&'a [u8]> {
    ber::read_partial(t.content).filter(|s| s.tag == 0x30).map(|s| s.content)
}

fn int_field(content: &[u8], n: u8) -> Option<i64> {
    let f = ber::field(content, n, true)?;
    let i = ber::read(f.content).filter(|t| t.tag == 0x02)?;
    ber::integer(i.content)
}

/// A `[n] GeneralString` field's bytes.
fn general_string(content: &[u8], n: u8) -> Option<&[u8]> {
    let f = ber::field(content, n, true)?;
    ber::read_partial(f.content).filter(|t| t.tag == 0x1b).map(|t| t.content)
}

/// Parses one message (no record marker).
pub fn parse(data: &[u8]) -> Option<Krb5Message<'_>> {
    let app = ber::read_partial(data)?;
    if app.tag & 0xe0 != 0x60 {
        return None;
    }
    let msg_type = app.tag & 0x1f;
    let body = ber::read_partial(app.content).filter(|t| t.tag == 0x30)?.content;
    let mut m = Krb5Message { msg_type, ..Default::default() };
    match msg_type {
        AS_REQ | TGS_REQ => {
            if int_field(body, 2)? != i64::from(msg_type) {
                return None;
            }
            if let Some(req) = ber::field(body, 4, true).as_ref().and_then(seq_of) {
                if let Some(c) = ber::field(req, 1, true).as_ref().and_then(seq_of) {
                    m.cname = principal(c);
                }
                m.realm = general_string(req, 2);
                if let Some(s) = ber::field(req, 3, true).as_ref().and_then(seq_of) {
                    m.sname = principal(s);
                }
            }
        }
        AS_REP | TGS_REP => {
            if int_field(body, 1)? != i64::from(msg_type) {
                return None;
            }
            if let Some(c) = ber::field(body, 4, true).as_ref().and_then(seq_of) {
                m.cname = principal(c);
            }
            m.realm = general_string(body, 3);
            m.etype = ber::field(body, 6, true).as_ref().and_then(seq_of).and_then(|enc| int_field(enc, 0));
            let ticket = ber::field(body, 5, true)
                .and_then(|t| ber::read_partial(t.content).filter(|a| a.tag == 0x61))
                .and_then(|a| ber::read_partial(a.content).filter(|s| s.tag == 0x30));
            if let Some(ticket) = ticket {
                if let Some(s) = ber::field(ticket.content, 2, true).as_ref().and_then(seq_of) {
                    m.sname = principal(s);
                }
                if let Some(enc) = ber::field(ticket.content, 3, true).as_ref().and_then(seq_of) {
                    m.ticket_etype = int_field(enc, 0);
                }
            }
        }
        KRB_ERROR => {
            if int_field(body, 1)? != i64::from(msg_type) {
                return None;
            }
            m.error_code = int_field(body, 6);
            if let Some(c) = ber::field(body, 8, true).as_ref().and_then(seq_of) {
                m.cname = principal(c);
            }
            if let Some(s) = ber::field(body, 10, true).as_ref().and_then(seq_of) {
                m.sname = principal(s);
            }
        }
        _ => return None,
    }
    Some(m)
}

/// Parses the message of a TCP segment that starts a record (4-byte length, high bit clear).
pub fn parse_tcp(data: &[u8]) -> Option<Krb5Message<'_>> {
    parse_tcp_all(data).into_iter().next()
}

/// Parses the records of a TCP segment that starts with one (4-byte length, high bit clear),
/// one after the other; the last may be cut short by the end of the segment.
pub fn parse_tcp_all(mut data: &[u8]) -> Vec<Krb5Message<'_>> {
    let mut out = Vec::new();
    while let Some(len) = data.get(..4).and_then(|l| <[u8; 4]>::try_from(l).ok()).map(u32::from_be_bytes) {
        if len & 0x8000_0000 != 0 || len < 2 {
            break;
        }
        let end = (len as usize).saturating_add(4).min(data.len());
        let Some(m) = parse(&data[4..end]) else { break };
        out.push(m);
        data = &data[end..];
    }
    out
}

/// Suricata's names of the message types (EVE `msg_type`, `failed_request`).
pub fn msg_type_name(t: u8) -> &'static str {
    match t {
        AS_REQ => "KRB_AS_REQ",
        AS_REP => "KRB_AS_REP",
        TGS_REQ => "KRB_TGS_REQ",
        TGS_REP => "KRB_TGS_REP",
        14 => "KRB_AP_REQ",
        15 => "KRB_AP_REP",
        KRB_ERROR => "KRB_ERROR",
        _ => "UNKNOWN",
    }
}

/// Encryption type names as Suricata writes them.
pub fn etype_name(etype: i64) -> String {
    match etype {
        1 => "des-cbc-crc",
        2 => "des-cbc-md4",
        3 => "des-cbc-md5",
        5 => "des3-cbc-md5",
        7 => "des3-cbc-sha1",
        16 => "des3-cbc-sha1-kd",
        17 => "aes128-cts-hmac-sha1-96",
        18 => "aes256-cts-hmac-sha1-96",
        19 => "aes128-cts-hmac-sha256-128",
        20 => "aes256-cts-hmac-sha384-192",
        23 => "rc4-hmac",
        24 => "rc4-hmac-exp",
        n => return format!("EncryptionType({n})"),
    }
    .to_string()
}

/// RFC 4120 error code names (EVE `error_code`).
pub fn error_name(code: i64) -> String {
    const NAMES: [&str; 69] = [
        "KDC_ERR_NONE",
        "KDC_ERR_NAME_EXP",
        "KDC_ERR_SERVICE_EXP",
        "KDC_ERR_BAD_PVNO",
        "KDC_ERR_C_OLD_MAST_KVNO",
        "KDC_ERR_S_OLD_MAST_KVNO",
        "KDC_ERR_C_PRINCIPAL_UNKNOWN",
        "KDC_ERR_S_PRINCIPAL_UNKNOWN",
        "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
        "KDC_ERR_NULL_KEY",
        "KDC_ERR_CANNOT_POSTDATE",
        "KDC_ERR_NEVER_VALID",
        "KDC_ERR_POLICY",
        "KDC_ERR_BADOPTION",
        "KDC_ERR_ETYPE_NOSUPP",
        "KDC_ERR_SUMTYPE_NOSUPP",
        "KDC_ERR_PADATA_TYPE_NOSUPP",
        "KDC_ERR_TRTYPE_NOSUPP",
        "KDC_ERR_CLIENT_REVOKED",
        "KDC_ERR_SERVICE_REVOKED",
        "KDC_ERR_TGT_REVOKED",
        "KDC_ERR_CLIENT_NOTYET",
        "KDC_ERR_SERVICE_NOTYET",
        "KDC_ERR_KEY_EXPIRED",
        "KDC_ERR_PREAUTH_FAILED",
        "KDC_ERR_PREAUTH_REQUIRED",
        "KDC_ERR_SERVER_NOMATCH",
        "KDC_ERR_MUST_USE_USER2USER",
        "KDC_ERR_PATH_NOT_ACCEPTED",
        "KDC_ERR_SVC_UNAVAILABLE",
        "",
        "KRB_AP_ERR_BAD_INTEGRITY",
        "KRB_AP_ERR_TKT_EXPIRED",
        "KRB_AP_ERR_TKT_NYV",
        "KRB_AP_ERR_REPEAT",
        "KRB_AP_ERR_NOT_US",
        "KRB_AP_ERR_BADMATCH",
        "KRB_AP_ERR_SKEW",
        "KRB_AP_ERR_BADADDR",
        "KRB_AP_ERR_BADVERSION",
        "KRB_AP_ERR_MSG_TYPE",
        "KRB_AP_ERR_MODIFIED",
        "KRB_AP_ERR_BADORDER",
        "",
        "KRB_AP_ERR_BADKEYVER",
        "KRB_AP_ERR_NOKEY",
        "KRB_AP_ERR_MUT_FAIL",
        "KRB_AP_ERR_BADDIRECTION",
        "KRB_AP_ERR_METHOD",
        "KRB_AP_ERR_BADSEQ",
        "KRB_AP_ERR_INAPP_CKSUM",
        "KRB_AP_PATH_NOT_ACCEPTED",
        "KRB_ERR_RESPONSE_TOO_BIG",
        "",
        "",
        "",
        "",
        "",
        "",
        "KRB_ERR_GENERIC",
        "KRB_ERR_FIELD_TOOLONG",
        "KDC_ERROR_CLIENT_NOT_TRUSTED",
        "KDC_ERROR_KDC_NOT_TRUSTED",
        "KDC_ERROR_INVALID_SIG",
        "KDC_ERR_KEY_TOO_WEAK",
        "KDC_ERR_CERTIFICATE_MISMATCH",
        "KRB_AP_ERR_NO_TGT",
        "KDC_ERR_WRONG_REALM",
        "KRB_AP_ERR_USER_TO_USER_REQUIRED",
    ];
    match usize::try_from(code).ok().and_then(|i| NAMES.get(i)).filter(|n| !n.is_empty()) {
        Some(n) => (*n).to_string(),
        None => format!("ErrorCode({code})"),
    }
}

/// Most bytes of one TCP record kept while it arrives.
const MAX_RECORD: usize = 1 << 20;

/// Kerberos over TCP: frames the records of each direction and logs each message as an EVE
/// `krb5` record (as Suricata, one transaction per message; an error names the last
/// request's type as its `failed_request`).
#[derive(Debug, Default)]
pub struct Krb5Parser {
    buf: [Vec<u8>; 2],
    /// A direction whose data stopped being records (or had a gap): not parsed any more.
    lost: [bool; 2],
    last_request: Option<u8>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn name_or_empty(parts: &[&[u8]]) -> String {
    if parts.is_empty() { "<empty>".into() } else { parts.iter().map(|p| text(p)).collect::<Vec<_>>().join("/") }
}

impl Krb5Parser {
    /// The EVE `krb5` object of one message.
    pub fn log_fields(&mut self, m: &Krb5Message<'_>) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut o = serde_json::Map::new();
        o.insert("msg_type".into(), Value::from(msg_type_name(m.msg_type)));
        let error = m.msg_type == KRB_ERROR;
        if error {
            let failed = self.last_request.map_or("UNKNOWN", msg_type_name);
            o.insert("failed_request".into(), Value::from(failed));
            o.insert("error_code".into(), Value::from(error_name(m.error_code.unwrap_or(-1))));
        } else if matches!(m.msg_type, AS_REQ | TGS_REQ) {
            self.last_request = Some(m.msg_type);
        }
        let cname = if error { "<empty>".into() } else { name_or_empty(&m.cname) };
        o.insert("cname".into(), Value::from(cname));
        let realm = if error { None } else { m.realm };
        o.insert("realm".into(), Value::from(realm.map_or_else(|| "<empty>".into(), text)));
        o.insert("sname".into(), Value::from(name_or_empty(&m.sname)));
        o.insert("encryption".into(), Value::from(m.etype.map_or_else(|| "<none>".into(), etype_name)));
        o.insert("weak_encryption".into(), Value::Bool(m.etype.is_some_and(weak_etype)));
        if let Some(t) = m.ticket_etype {
            o.insert("ticket_encryption".into(), Value::from(etype_name(t)));
            o.insert("ticket_weak_encryption".into(), Value::Bool(weak_etype(t)));
        }
        o
    }
}

impl super::AppParser for Krb5Parser {
    fn on_data(&mut self, dir: super::Direction, data: &[u8], out: &mut Vec<super::AppRecord>) {
        let d = dir.index();
        if self.lost[d] {
            return;
        }
        self.buf[d].extend_from_slice(data);
        let mut at = 0;
        let mut buf = std::mem::take(&mut self.buf[d]);
        while let Some(len) = buf.get(at..at + 4).and_then(|l| <[u8; 4]>::try_from(l).ok()).map(u32::from_be_bytes) {
            let len = len as usize;
            if len & 0x8000_0000 != 0 || len > MAX_RECORD {
                self.lost[d] = true;
                break;
            }
            let Some(msg) = buf.get(at + 4..at + 4 + len) else { break };
            if let Some(m) = parse(msg) {
                let fields = self.log_fields(&m);
                // Suricata writes the record at the next packet, of the other direction
                let rec = super::LogRecord::new("krb5", dir == super::Direction::ToServer, fields);
                out.push(super::AppRecord::Log(Box::new(rec)));
            }
            at += 4 + len;
        }
        if self.lost[d] {
            buf = Vec::new();
        } else {
            buf.drain(..at);
        }
        self.buf[d] = buf;
    }

    fn on_gap(&mut self, dir: super::Direction, _len: u32, _out: &mut Vec<super::AppRecord>) {
        self.lost[dir.index()] = true;
        self.buf[dir.index()] = Vec::new();
    }

    fn on_close(&mut self, _out: &mut Vec<super::AppRecord>) {}

    fn is_done(&self) -> bool {
        self.lost[0] && self.lost[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        v.extend_from_slice(content);
        v
    }

    fn int(n: u8, v: u8) -> Vec<u8> {
        tlv(0xa0 | n, &tlv(0x02, &[v]))
    }

    fn pname(n: u8, parts: &[&[u8]]) -> Vec<u8> {
        let strings: Vec<u8> = parts.iter().flat_map(|p| tlv(0x1b, p)).collect();
        let inner = [int(0, 1), tlv(0xa1, &tlv(0x30, &strings))].concat();
        tlv(0xa0 | n, &tlv(0x30, &inner))
    }

    fn as_req() -> Vec<u8> {
        let req_body = tlv(0x30, &[pname(1, &[b"user01"]), pname(3, &[b"krbtgt", b"EX.COM"])].concat());
        let body = [int(1, 5), int(2, 10), tlv(0xa4, &req_body)].concat();
        tlv(0x6a, &tlv(0x30, &body))
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = (msg.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(msg);
        v
    }

    fn logged(out: &[super::super::AppRecord]) -> Vec<(bool, serde_json::Value)> {
        out.iter().filter_map(|r| r.as_log("krb5").map(|l| (l.to_client, l.fields["krb5"].clone()))).collect()
    }

    #[test]
    fn tcp_messages_are_logged_as_suricata_krb5_records() {
        use super::super::{AppParser, Direction};
        let mut p = Krb5Parser::default();
        let mut out = Vec::new();
        // a request split over two segments, with its realm
        let req_body = tlv(
            0x30,
            &[pname(1, &[b"user01"]), tlv(0xa2, &tlv(0x1b, b"EX.COM")), pname(3, &[b"krbtgt", b"EX.COM"])].concat(),
        );
        let req = framed(&tlv(0x6a, &tlv(0x30, &[int(1, 5), int(2, 10), tlv(0xa4, &req_body)].concat())));
        p.on_data(Direction::ToServer, &req[..9], &mut out);
        assert!(logged(&out).is_empty());
        p.on_data(Direction::ToServer, &req[9..], &mut out);
        let want = serde_json::json!({"msg_type": "KRB_AS_REQ", "cname": "user01", "realm": "EX.COM",
            "sname": "krbtgt/EX.COM", "encryption": "<none>", "weak_encryption": false});
        assert_eq!(logged(&out), vec![(true, want)]);
        out.clear();
        // the error answering it names the request
        let err =
            framed(&tlv(0x7e, &tlv(0x30, &[int(0, 5), int(1, 30), int(6, 25), pname(10, &[b"krbtgt"])].concat())));
        // a reply with an RC4 ticket and an AES encrypted part
        let enc = |n: u8, e: u8| tlv(0xa0 | n, &tlv(0x30, &[int(0, e), tlv(0xa2, &tlv(0x04, &[0; 8]))].concat()));
        let ticket = tlv(0xa5, &tlv(0x61, &tlv(0x30, &[int(0, 5), pname(2, &[b"HTTP", b"web"]), enc(3, 23)].concat())));
        let rep = [int(0, 5), int(1, 13), tlv(0xa3, &tlv(0x1b, b"EX.COM")), pname(4, &[b"user01"]), ticket, enc(6, 18)];
        let rep = framed(&tlv(0x6d, &tlv(0x30, &rep.concat())));
        p.on_data(Direction::ToClient, &[err, rep].concat(), &mut out);
        let l = logged(&out);
        assert_eq!(l.len(), 2);
        assert!(!l[0].0 && !l[1].0, "written in the direction of the next packet");
        assert_eq!(l[0].1["error_code"], "KDC_ERR_PREAUTH_REQUIRED");
        assert_eq!(l[0].1["failed_request"], "KRB_AS_REQ");
        assert_eq!((l[0].1["cname"].as_str(), l[0].1["sname"].as_str()), (Some("<empty>"), Some("krbtgt")));
        let r = &l[1].1;
        assert_eq!((r["msg_type"].as_str(), r["realm"].as_str()), (Some("KRB_TGS_REP"), Some("EX.COM")));
        assert_eq!(
            (r["encryption"].as_str(), r["weak_encryption"].as_bool()),
            (Some("aes256-cts-hmac-sha1-96"), Some(false))
        );
        assert_eq!(
            (r["ticket_encryption"].as_str(), r["ticket_weak_encryption"].as_bool()),
            (Some("rc4-hmac"), Some(true))
        );
        // a record length with the high bit set: the direction is not parsed any more
        p.on_data(Direction::ToClient, &[0x80, 0, 0, 0], &mut out);
        p.on_data(Direction::ToClient, &rep_again(), &mut out);
        assert_eq!(logged(&out).len(), 2);
        assert_eq!((error_name(99), etype_name(99)), ("ErrorCode(99)".to_string(), "EncryptionType(99)".to_string()));
    }

    fn rep_again() -> Vec<u8> {
        framed(&tlv(0x7e, &tlv(0x30, &[int(0, 5), int(1, 30), int(6, 6)].concat())))
    }

    #[test]
    fn reads_the_names_of_a_request() {
        let req = as_req();
        let m = parse(&req).unwrap();
        assert_eq!(m.msg_type, AS_REQ);
        assert_eq!(m.cname, vec![&b"user01"[..]]);
        assert_eq!(m.sname, vec![&b"krbtgt"[..], &b"EX.COM"[..]]);
        let mut tcp = (as_req().len() as u32).to_be_bytes().to_vec();
        tcp.extend(as_req());
        assert_eq!(parse_tcp(&tcp).unwrap().msg_type, AS_REQ);
        // two records in one segment, the second cut short
        let two = [tcp.clone(), tcp[..tcp.len() - 5].to_vec()].concat();
        assert_eq!(parse_tcp_all(&two).len(), 2);
    }

    #[test]
    fn reads_the_ticket_of_a_reply_cut_short() {
        let enc = tlv(0xa3, &tlv(0x30, &[int(0, 23), tlv(0xa2, &tlv(0x04, &[0; 300]))].concat()));
        let ticket = tlv(0xa5, &tlv(0x61, &tlv(0x30, &[int(0, 5), pname(2, &[b"HTTP", b"web"]), enc].concat())));
        let body = [int(0, 5), int(1, 13), pname(4, &[b"user01"]), ticket].concat();
        let msg = tlv(0x6d, &tlv(0x30, &body));
        let m = parse(&msg[..msg.len() - 200]).unwrap();
        assert_eq!((m.msg_type, m.ticket_etype), (TGS_REP, Some(23)));
        assert_eq!(m.sname, vec![&b"HTTP"[..], &b"web"[..]]);
        assert!(weak_etype(23) && !weak_etype(18));
    }

    #[test]
    fn errors_and_garbage() {
        let body = [int(0, 5), int(1, 30), int(6, 25), pname(10, &[b"krbtgt"])].concat();
        let err = tlv(0x7e, &tlv(0x30, &body));
        let m = parse(&err).unwrap();
        assert_eq!((m.msg_type, m.error_code), (KRB_ERROR, Some(25)));
        // a msg-type field that disagrees with the application tag
        let bad = [int(0, 5), int(1, 11)].concat();
        assert!(parse(&tlv(0x7e, &tlv(0x30, &bad))).is_none());
        assert!(parse(b"GET / HTTP/1.1").is_none());
        assert!(parse_tcp(&[0, 0]).is_none());
        assert!(parse_tcp(&[0xff, 0, 0, 0, 0x6a]).is_none());
        for n in 0..as_req().len() {
            let _ = parse(&as_req()[..n]);
        }
    }
}
