//! IKEv2 over UDP (ports 500 and 4500): the header and payload chain of a message, and the
//! Security Association proposals of an IKE_SA_INIT, for the `ikev2.weak_crypto_dh` event
//! (Suricata's: a proposal offering a Diffie-Hellman group below 2048 bits, MODP 768, 1024,
//! 1536 or 1024 with 160-bit subgroup). Read one datagram at a time
//! ([`super::msg`]); IKEv1 and encrypted payloads are not read.

/// IKE's ports (4500: NAT traversal, the message after a 4-byte non-ESP marker).
pub const PORTS: [u16; 2] = [500, 4500];

const HEADER_LEN: usize = 28;
/// Payload type of a Security Association.
const SA: u8 = 33;
/// Payloads walked per message at most.
const MAX_PAYLOADS: usize = 64;

/// What one IKEv2 message says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ikev2Message {
    pub exchange_type: u8,
    /// Diffie-Hellman groups its SA proposals offer.
    pub dh_groups: Vec<u16>,
}

impl Ikev2Message {
    /// A proposal offers a weak Diffie-Hellman group.
    pub fn weak_dh(&self) -> bool {
        self.dh_groups.iter().any(|g| matches!(g, 1 | 2 | 5 | 22))
    }
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Parses an IKEv2 message (on port 4500 after its zero non-ESP marker); `None` when the
/// datagram is not one.
pub fn parse(datagram: &[u8], nat_t: bool) -> Option<Ikev2Message> {
    let data = if nat_t { datagram.strip_prefix(&[0, 0, 0, 0])? } else { datagram };
    let h = data.get(..HEADER_LEN)?;
    if h[17] >> 4 != 2 {
        return None;
    }
    let len = u32::from_be_bytes([h[24], h[25], h[26], h[27]]) as usize;
    if len < HEADER_LEN || len > data.len() {
        return None;
    }
    let mut m = Ikev2Message { exchange_type: h[18], dh_groups: Vec::new() };
    let mut next = h[16];
    let mut at = HEADER_LEN;
    for _ in 0..MAX_PAYLOADS {
        if next == 0 {
            break;
        }
        let plen = usize::from(u16_at(data, at + 2)?);
        let body = data.get(at + 4..at + plen.max(4))?;
        if plen < 4 {
            return Some(m);
        }
        if next == SA {
            sa_dh_groups(body, &mut m.dh_groups);
        }
        // an Encrypted payload ends the readable chain
        if next == 46 {
            break;
        }
        next = data[at];
        at += plen;
    }
    Some(m)
}

/// The Diffie-Hellman transforms (type 4) of the proposals of an SA payload's body.
fn sa_dh_groups(mut body: &[u8], out: &mut Vec<u16>) {
    while body.len() >= 8 {
        let last = body[0] == 0;
        let Some(plen) = u16_at(body, 2).map(usize::from) else { return };
        let Some(prop) = body.get(..plen).filter(|_| plen >= 8) else { return };
        let spi_size = usize::from(prop[6]);
        let count = prop[7];
        let mut t = prop.get(8 + spi_size..).unwrap_or_default();
        for _ in 0..count {
            let Some(tlen) = u16_at(t, 2).map(usize::from) else { break };
            if tlen < 8 || tlen > t.len() {
                break;
            }
            if t[4] == 4
                && let Some(id) = u16_at(t, 6)
            {
                out.push(id);
            }
            t = &t[tlen..];
        }
        if last {
            return;
        }
        body = &body[plen..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IKE_SA_INIT with one proposal: AES-CBC, PRF SHA-256, DH `group`.
    fn sa_init(group: u16) -> Vec<u8> {
        let mut transforms = Vec::new();
        for (last, ty, id) in [(3u8, 1u8, 12u16), (3, 2, 5), (0, 4, group)] {
            transforms.extend([last, 0, 0, 8, ty, 0]);
            transforms.extend(id.to_be_bytes());
        }
        let mut prop = vec![0, 0, 0, 0, 1, 1, 0, 3];
        prop.extend(&transforms);
        let plen = prop.len() as u16;
        prop[2..4].copy_from_slice(&plen.to_be_bytes());
        let mut sa = vec![0, 0, 0, 0];
        sa.extend(&prop);
        let salen = sa.len() as u16;
        sa[2..4].copy_from_slice(&salen.to_be_bytes());
        let mut m =
            vec![0x61, 0xd3, 0x69, 0x3c, 0xe1, 0x2a, 0xf5, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, SA, 0x20, 34, 8, 0, 0, 0, 0];
        let total = (HEADER_LEN + sa.len()) as u32;
        m.extend(total.to_be_bytes());
        m.extend(sa);
        m
    }

    #[test]
    fn weak_dh_groups_are_found_in_the_proposals() {
        let m = parse(&sa_init(2), false).unwrap();
        assert_eq!((m.exchange_type, m.dh_groups.clone()), (34, vec![2]));
        assert!(m.weak_dh());
        assert!(!parse(&sa_init(14), false).unwrap().weak_dh());
        let natt = [&[0u8, 0, 0, 0][..], &sa_init(1)].concat();
        assert!(parse(&natt, true).unwrap().weak_dh());
        // truncated or not IKEv2: no panic
        let full = sa_init(2);
        for n in 0..full.len() {
            let _ = parse(&full[..n], false);
        }
        let mut v1 = full.clone();
        v1[17] = 0x10;
        assert!(parse(&v1, false).is_none());
    }
}
