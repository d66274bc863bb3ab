//! MQTT 3.1, 3.1.1 and 5.0 control packets: the fields the `mqtt.*` keywords inspect.
//!
//! The parser reads the control packets that start at the beginning of a TCP segment (one
//! after the other while they are complete). The protocol version, needed to read MQTT 5
//! properties, comes from the flow's CONNECT (see [`MqttFlowState`]).

use std::cell::Cell;

/// MQTT's registered port.
pub const PORT: u16 = 1883;

/// Control packet type names (`mqtt.type`), index = type number.
pub const TYPES: [&str; 16] = [
    "UNASSIGNED",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// Per-flow MQTT state: the protocol version the CONNECT announced (0: none seen).
#[derive(Debug, Default)]
pub struct MqttFlowState {
    pub version: Cell<u8>,
    /// A CONNECT was seen.
    pub connected: Cell<bool>,
}

/// The fields of one control packet; strings borrow from the packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MqttMessage<'a> {
    pub msg_type: u8,
    /// The fixed header's low 4 bits (dup 0x8, qos 0x6, retain 0x1).
    pub flags: u8,
    /// CONNECT: the protocol level.
    pub protocol_version: Option<u8>,
    pub protocol_string: Option<&'a [u8]>,
    pub connect_flags: Option<u8>,
    pub client_id: Option<&'a [u8]>,
    pub will_topic: Option<&'a [u8]>,
    pub will_message: Option<&'a [u8]>,
    pub username: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
    pub publish_topic: Option<&'a [u8]>,
    pub publish_message: Option<&'a [u8]>,
    pub subscribe_topics: Vec<&'a [u8]>,
    pub unsubscribe_topics: Vec<&'a [u8]>,
    /// CONNACK return code, PUBACK..PUBCOMP and DISCONNECT (MQTT 5) reason code.
    pub reason_code: Option<u8>,
    /// A CONNACK without a CONNECT before it in the flow (`mqtt.missing_connect`).
    pub missing_connect: bool,
    /// The packet does not decode (`mqtt.malformed_traffic`): only its type and flags are set.
    pub malformed: bool,
    /// Frames (Suricata's `mqtt.pdu`, `mqtt.header`, `mqtt.data`): the whole control packet,
    /// its fixed header, and what follows it. As Suricata 8 builds them, the header and data
    /// frames of every packet of a segment start at the segment's start (the first packet's
    /// bytes: 2 bytes of header, then the packet's remaining length of data).
    pub pdu: &'a [u8],
    pub header: &'a [u8],
    pub data: &'a [u8],
}

impl MqttMessage<'_> {
    /// PUBLISH: the QoS level.
    pub fn qos(&self) -> Option<u8> {
        (self.msg_type == 3).then_some((self.flags >> 1) & 3)
    }
}

/// A cursor over a packet's bytes.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, r) = self.0.split_first()?;
        self.0 = r;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// A variable byte integer (at most 4 bytes).
    fn varint(&mut self) -> Option<usize> {
        let mut v = 0usize;
        for i in 0..4 {
            let b = self.u8()?;
            v |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// Skips an MQTT 5 property block.
    fn properties(&mut self) -> Option<()> {
        let n = self.varint()?;
        self.take(n).map(|_| ())
    }
}

/// Parses one control packet's variable header and payload (`body`) of type `t`.
fn parse_body<'a>(t: u8, flags: u8, body: &'a [u8], version: u8) -> Option<MqttMessage<'a>> {
    let mut c = Cur(body);
    let mut m = MqttMessage { msg_type: t, flags, ..Default::default() };
    let v5 = version == 5;
    match t {
        1 => {
            m.protocol_string = Some(c.string()?);
            let level = c.u8()?;
            m.protocol_version = Some(level);
            let cf = c.u8()?;
            m.connect_flags = Some(cf);
            c.u16()?;
            if level == 5 {
                c.properties()?;
            }
            m.client_id = Some(c.string()?);
            if cf & 0x04 != 0 {
                if level == 5 {
                    c.properties()?;
                }
                m.will_topic = Some(c.string()?);
                m.will_message = Some(c.string()?);
            }
            if cf & 0x80 != 0 {
                m.username = Some(c.string()?);
            }
            if cf & 0x40 != 0 {
                m.password = Some(c.string()?);
            }
        }
        2 => {
            c.u8()?;
            m.reason_code = Some(c.u8()?);
        }
        3 => {
            m.publish_topic = Some(c.string()?);
            if (flags >> 1) & 3 > 0 {
                c.u16()?;
            }
            if v5 {
                c.properties()?;
            }
            m.publish_message = Some(c.0);
        }
        4..=7 => {
            c.u16()?;
            if v5 {
                m.reason_code = Some(c.u8().unwrap_or(0));
            }
        }
        8 | 10 => {
            c.u16()?;
            if v5 {
                c.properties()?;
            }
            while !c.0.is_empty() {
                let topic = c.string()?;
                if t == 8 {
                    c.u8()?;
                    m.subscribe_topics.push(topic);
                } else {
                    m.unsubscribe_topics.push(topic);
                }
            }
        }
        14 if v5 => {
            m.reason_code = Some(c.u8().unwrap_or(0));
        }
        0..=15 => {}
        _ => return None,
    }
    Some(m)
}

/// Parses the complete control packets at the start of `data` (a TCP segment), updating the
/// flow's protocol version from a CONNECT. Stops at the first incomplete or malformed one.
/// The header and data frames of a packet of segment `data` with remaining length `len`:
/// Suricata makes them from the start of the data it parses at once (2 bytes of header, then
/// `len` bytes), whichever packet of it they belong to.
fn segment_frames(data: &[u8], len: usize) -> (&[u8], &[u8]) {
    let header = data.get(..2).unwrap_or(data);
    let end = len.saturating_add(2).min(data.len());
    (header, data.get(2..end).unwrap_or_default())
}

pub fn parse_all<'a>(data: &'a [u8], state: &MqttFlowState) -> Vec<MqttMessage<'a>> {
    let mut out = Vec::new();
    let mut c = Cur(data);
    while let Some(b0) = c.u8() {
        let start = data.len() - c.0.len() - 1;
        let Some(len) = c.varint() else { break };
        let (t, flags) = (b0 >> 4, b0 & 0x0f);
        // a PUBLISH cut by the end of the segment: its message as far as it goes
        let body = match c.take(len) {
            Some(body) => body,
            None if t == 3 => std::mem::take(&mut c.0),
            None => break,
        };
        if t == 0 {
            break;
        }
        let pdu = &data[start..data.len() - c.0.len()];
        let Some(mut m) = parse_body(t, flags, body, state.version.get()) else {
            out.push(MqttMessage {
                msg_type: t,
                flags,
                malformed: true,
                pdu,
                header: segment_frames(data, len).0,
                data: segment_frames(data, len).1,
                ..Default::default()
            });
            break;
        };
        (m.pdu, (m.header, m.data)) = (pdu, segment_frames(data, len));
        if let Some(v) = m.protocol_version {
            state.version.set(v);
            state.connected.set(true);
        }
        m.missing_connect = t == 2 && !state.connected.get();
        out.push(m);
    }
    out
}

/// Whether a TCP segment starts with an MQTT CONNECT (Suricata's MQTT probe).
pub fn probe(data: &[u8]) -> bool {
    let mut c = Cur(data);
    let Some(b0) = c.u8() else { return false };
    if b0 != 0x10 || c.varint().is_none() {
        return false;
    }
    let Some(name) = c.string() else { return false };
    (name == b"MQTT" || name == b"MQIsdp") && c.u8().is_some_and(|l| matches!(l, 3..=5))
}

/// `mqtt.flags` / `mqtt.connect.flags` values: a comma-separated list of flag names, each
/// optionally negated with `!`, as a (mask, value) pair over the flags byte.
pub fn parse_flag_list(v: &str, connect: bool) -> Result<(u64, u64), String> {
    super::parse_named_bits(v, &[','], |name| {
        Some(match (connect, name) {
            (false, "dup") => 0x08,
            (false, "retain") => 0x01,
            (true, "username") => 0x80,
            (true, "password") => 0x40,
            (true, "will_retain") => 0x20,
            (true, "will") => 0x04,
            (true, "clean_session") => 0x02,
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_v5() -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0xc2, 0, 60, 0];
        body.extend([0, 2, b'i', b'd', 0, 4, b'u', b's', b'e', b'r', 0, 4, b'p', b'a', b's', b's']);
        [vec![0x10, body.len() as u8], body].concat()
    }

    #[test]
    fn connect_then_v5_publish_with_properties() {
        let st = MqttFlowState::default();
        let connect = connect_v5();
        let ms = parse_all(&connect, &st);
        assert_eq!(ms.len(), 1);
        let m = &ms[0];
        assert_eq!((m.protocol_version, m.connect_flags), (Some(5), Some(0xc2)));
        assert_eq!((m.username, m.password), (Some(&b"user"[..]), Some(&b"pass"[..])));
        assert!(probe(&connect_v5()));
        // PUBLISH qos 1: topic, id, properties (1 byte: a payload format indicator), payload
        let publish = [0x32, 11, 0, 1, b't', 0, 7, 2, 0x01, 0x01, 0xff, 0xd8, 0xff];
        let disconnect = [0xe0, 0];
        let both = [&publish[..], &disconnect].concat();
        let ms = parse_all(&both, &st);
        assert_eq!(ms[0].publish_message, Some(&[0xff, 0xd8, 0xff][..]));
        assert_eq!(ms[0].qos(), Some(1));
        assert_eq!((ms[1].msg_type, ms[1].reason_code), (14, Some(0)));
        // (the second packet's header and data frames start at the segment's start, as Suricata's)
        assert_eq!((ms[1].pdu, ms[1].header, ms[1].data), (&disconnect[..], &publish[..2], &[][..]));
        assert_eq!((ms[0].header, ms[0].data.len()), (&publish[..2], 11));
    }

    #[test]
    fn truncated_and_malformed_packets_stop_the_parse() {
        let st = MqttFlowState::default();
        let c = connect_v5();
        for n in 0..c.len() {
            assert!(parse_all(&c[..n], &st).is_empty());
        }
        assert!(parse_all(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], &st).is_empty());
        // a PUBLISH longer than the segment gives the start of its message
        let ms = parse_all(&[0x30, 0x7f, 0, 1, b't', b'a', b'b'], &st);
        assert_eq!(ms[0].publish_message, Some(&b"ab"[..]));
        // a SUBSCRIBE whose topic runs past the packet is malformed
        let ms = parse_all(&[0x82, 3, 0, 1, 0], &st);
        assert!(ms.len() == 1 && ms[0].malformed && ms[0].msg_type == 8);
        // a CONNACK before any CONNECT
        assert!(parse_all(&[0x20, 2, 0, 0], &MqttFlowState::default())[0].missing_connect);
        assert!(!probe(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn flag_lists() {
        assert_eq!(parse_flag_list("!retain,!dup", false), Ok((0x09, 0)));
        assert_eq!(parse_flag_list("username,password,clean_session", true), Ok((0xc2, 0xc2)));
        assert!(parse_flag_list("bogus", false).is_err());
        assert!(parse_flag_list("dup,dup", false).is_err());
    }
}
