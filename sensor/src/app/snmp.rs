//! SNMP v1, v2c and v3 messages (one per UDP datagram): the fields the `snmp.*` keywords
//! inspect.

use super::ber;

/// SNMP's agent and trap ports.
pub const PORTS: [u16; 2] = [161, 162];

/// The fields of one message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SnmpMessage<'a> {
    /// The version as `snmp.version` counts it: 1, 2 or 3.
    pub version: u8,
    /// v1/v2c community.
    pub community: Option<&'a [u8]>,
    /// The PDU's context tag number (0 get ... 8 report); `None` when encrypted (v3).
    pub pdu_type: Option<u8>,
    /// v3: the USM user name.
    pub usm: Option<&'a [u8]>,
    /// v1 trap: the generic trap number.
    pub trap_type: Option<u8>,
}

fn pdu(t: ber::Tlv<'_>, m: &mut SnmpMessage<'_>) {
    if t.tag & 0xe0 == 0xa0 && t.tag & 0x1f <= 8 {
        m.pdu_type = Some(t.tag & 0x1f);
        if t.tag == 0xa4 {
            // Trap-PDU: enterprise OID, agent address, generic-trap INTEGER, ...
            m.trap_type = ber::children(t.content, false)
                .nth(2)
                .filter(|g| g.tag == 0x02)
                .and_then(|g| ber::integer(g.content))
                .and_then(|g| u8::try_from(g).ok());
        }
    }
}

/// Parses one message; `None` when it is not SNMP.
pub fn parse(data: &[u8]) -> Option<SnmpMessage<'_>> {
    let msg = ber::expect(data, 0x30)?;
    let version = ber::expect(msg.content, 0x02)?;
    let v = ber::integer(version.content)?;
    let mut m = SnmpMessage::default();
    match v {
        0 | 1 => {
            m.version = v as u8 + 1;
            let community = ber::expect(version.rest, 0x04)?;
            m.community = Some(community.content);
            pdu(ber::read(community.rest)?, &mut m);
        }
        3 => {
            m.version = 3;
            let global = ber::expect(version.rest, 0x30)?;
            let sec = ber::expect(global.rest, 0x04)?;
            // msgSecurityParameters: the USM SEQUENCE { engineID, boots, time, userName, ... }
            if let Some(usm) = ber::expect(sec.content, 0x30) {
                m.usm = ber::children(usm.content, false).nth(3).filter(|u| u.tag == 0x04).map(|u| u.content);
            }
            let data = ber::read(sec.rest)?;
            if data.tag == 0x30 {
                // ScopedPDU: contextEngineID, contextName, data
                let engine = ber::expect(data.content, 0x04)?;
                let name = ber::expect(engine.rest, 0x04)?;
                pdu(ber::read(name.rest)?, &mut m);
            } else if data.tag != 0x04 {
                return None;
            }
        }
        _ => return None,
    }
    Some(m)
}

/// `snmp.trap_type` names.
pub fn trap_type_from_name(name: &str) -> Option<u8> {
    Some(match name {
        "coldstart" => 0,
        "warmstart" => 1,
        "linkdown" => 2,
        "linkup" => 3,
        "authenticationfailure" => 4,
        "egpneighborloss" => 5,
        "enterprisespecific" => 6,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        [vec![tag, content.len() as u8], content.to_vec()].concat()
    }

    #[test]
    fn v2c_get_request() {
        let pdu = tlv(0xa0, &[tlv(0x02, &[1]), tlv(0x02, &[0]), tlv(0x02, &[0]), tlv(0x30, &[])].concat());
        let msg = tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, b"public"), pdu].concat());
        let m = parse(&msg).unwrap();
        assert_eq!((m.version, m.community, m.pdu_type), (2, Some(&b"public"[..]), Some(0)));
        for n in 0..msg.len() {
            assert!(parse(&msg[..n]).is_none());
        }
    }

    #[test]
    fn v3_user_and_encrypted_pdu() {
        let usm = tlv(
            0x30,
            &[tlv(0x04, b"e"), tlv(0x02, &[0]), tlv(0x02, &[0]), tlv(0x04, b"admin"), tlv(0x04, b""), tlv(0x04, b"")]
                .concat(),
        );
        let global = tlv(0x30, &[tlv(0x02, &[1]), tlv(0x02, &[0x7f]), tlv(0x04, &[3]), tlv(0x02, &[3])].concat());
        let msg = tlv(0x30, &[tlv(0x02, &[3]), global, tlv(0x04, &usm), tlv(0x04, b"secret")].concat());
        let m = parse(&msg).unwrap();
        assert_eq!((m.version, m.usm, m.pdu_type), (3, Some(&b"admin"[..]), None));
        assert!(parse(b"\x30\x03\x02\x01\x07").is_none());
    }
}
