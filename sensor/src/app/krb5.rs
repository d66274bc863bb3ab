//! Kerberos 5 (RFC 4120) messages: the fields the `krb5_*` keywords inspect.
//!
//! Over UDP a datagram is one message; over TCP a message follows a 4-byte record length.
//! A message cut by the end of the data (a TCP segment boundary) is read as far as it goes:
//! the fields the keywords use sit near its start.

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
