//! EtherNet/IP encapsulation (TCP and UDP port 44818) and the CIP service of its data items:
//! the fields the `enip_command` and `cip_service` keywords inspect.

/// EtherNet/IP's explicit messaging port.
pub const PORT: u16 = 44818;
/// The encapsulation header: command, length, session, status, sender context, options.
const HEADER_LEN: usize = 24;
/// `SendRRData` and `SendUnitData`: their data carry CIP messages.
const SEND_RR_DATA: u16 = 0x6f;
const SEND_UNIT_DATA: u16 = 0x70;

/// One encapsulation message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EnipMessage {
    pub command: u16,
    /// The CIP service of its data item (the response bit cleared), for the commands that carry
    /// CIP.
    pub cip_service: Option<u8>,
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// The CIP service of a SendRRData/SendUnitData payload (interface handle, timeout, items).
fn cip_service(data: &[u8]) -> Option<u8> {
    let count = le16(data, 6)?;
    let mut at = 8;
    for _ in 0..count {
        let (ty, len) = (le16(data, at)?, usize::from(le16(data, at + 2)?));
        let item = data.get(at + 4..at + 4 + len)?;
        match ty {
            // unconnected data: the CIP message; connected data: a sequence count first
            0xb2 => return item.first().map(|s| s & 0x7f),
            0xb1 => return item.get(2).map(|s| s & 0x7f),
            _ => {}
        }
        at += 4 + len;
    }
    None
}

/// Parses the complete encapsulation messages at the start of `data` (a TCP segment or a UDP
/// datagram); stops at the first incomplete one or at an unknown command.
pub fn parse_all(mut data: &[u8]) -> Vec<EnipMessage> {
    let mut out = Vec::new();
    while data.len() >= HEADER_LEN {
        let (Some(command), Some(len)) = (le16(data, 0), le16(data, 2)) else { break };
        if !matches!(command, 0x0000 | 0x0004 | 0x0063..=0x0066 | 0x006f | 0x0070 | 0x0072 | 0x0073) {
            break;
        }
        let Some(body) = data.get(HEADER_LEN..HEADER_LEN + usize::from(len)) else { break };
        let cip = matches!(command, SEND_RR_DATA | SEND_UNIT_DATA).then(|| cip_service(body)).flatten();
        out.push(EnipMessage { command, cip_service: cip });
        data = &data[HEADER_LEN + usize::from(len)..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(command: u16, body: &[u8]) -> Vec<u8> {
        let mut m = command.to_le_bytes().to_vec();
        m.extend((body.len() as u16).to_le_bytes());
        m.extend([0u8; 20]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn send_unit_data_carries_a_cip_service() {
        // handle, timeout, 2 items: connected address (4 bytes), connected data (seq + CIP)
        let body = [0, 0, 0, 0, 0, 0, 2, 0, 0xa1, 0, 4, 0, 1, 2, 3, 4, 0xb1, 0, 4, 0, 0x89, 0x07, 0x8a, 0];
        let two = [msg(0x70, &body), msg(0x63, &[])].concat();
        let ms = parse_all(&two);
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0], EnipMessage { command: 0x70, cip_service: Some(0x0a) });
        assert_eq!(ms[1], EnipMessage { command: 0x63, cip_service: None });
        for n in 0..two.len() - 24 {
            assert!(parse_all(&two[..n]).len() < 2);
        }
        assert!(parse_all(&msg(0x1234, &[])).is_empty());
        // an item count running past the data
        assert_eq!(parse_all(&msg(0x70, &[0, 0, 0, 0, 0, 0, 9, 0]))[0].cip_service, None);
    }
}
