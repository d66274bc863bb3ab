//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>).

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

const ICMP4_PAIRS: &[(u8, u8)] = &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)];
const ICMP6_PAIRS: &[(u8, u8)] = &[(128, 129), (133, 134), (135, 136), (130, 131), (144, 145), (146, 147)];

/// Community ID v1 (`1:<base64 sha1>`) of a flow. For ICMP/ICMPv6 pass the type as
/// `src_port` and the code as `dst_port`, as the specification says.
///
/// ```
/// use soc_model::community_id_v1;
/// // Test vector from the specification (tcp, seed 0).
/// let id = community_id_v1(0, "128.232.110.120".parse().unwrap(), "66.35.250.204".parse().unwrap(),
///                          6, 34855, 80);
/// assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
/// ```
pub fn community_id_v1(seed: u16, src: IpAddr, dst: IpAddr, proto: u8, src_port: u16, dst_port: u16) -> String {
    let (mut sp, mut dp) = (src_port, dst_port);
    let mut one_way = false;
    if proto == 1 || proto == 58 {
        let pairs = if proto == 1 { ICMP4_PAIRS } else { ICMP6_PAIRS };
        let t = src_port as u8;
        match pairs.iter().find_map(|&(a, b)| {
            if a == t {
                Some(b)
            } else if b == t {
                Some(a)
            } else {
                None
            }
        }) {
            Some(other) => dp = other as u16,
            None => one_way = true,
        }
        sp = t as u16;
        if one_way {
            dp = dst_port;
        }
    }
    let (s_bytes, d_bytes): (Vec<u8>, Vec<u8>) = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (a.octets().to_vec(), b.octets().to_vec()),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.octets().to_vec(), b.octets().to_vec()),
        (a, b) => (ip_bytes(a), ip_bytes(b)),
    };
    let ordered = one_way || (s_bytes.as_slice(), sp) <= (d_bytes.as_slice(), dp);
    let (a, ap, b, bp) = if ordered { (&s_bytes, sp, &d_bytes, dp) } else { (&d_bytes, dp, &s_bytes, sp) };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if matches!(proto, 1 | 6 | 17 | 58 | 132) {
        h.update(ap.to_be_bytes());
        h.update(bp.to_be_bytes());
    }
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(h.finalize()))
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // Vectors from the Community ID specification's baseline (seed 0).
    #[test]
    fn matches_specification_vectors() {
        assert_eq!(
            community_id_v1(0, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id_v1(0, ip("66.35.250.204"), ip("128.232.110.120"), 6, 80, 34855),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id_v1(0, ip("192.168.1.52"), ip("8.8.8.8"), 17, 54585, 53),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
    }

    #[test]
    fn icmp_request_and_reply_share_an_id_and_seed_changes_it() {
        let req = community_id_v1(0, ip("192.168.0.89"), ip("192.168.0.1"), 1, 8, 0);
        let rep = community_id_v1(0, ip("192.168.0.1"), ip("192.168.0.89"), 1, 0, 0);
        assert_eq!(req, rep);
        let na = community_id_v1(0, ip("fe80::1"), ip("ff02::1"), 58, 135, 0);
        let nb = community_id_v1(0, ip("ff02::1"), ip("fe80::1"), 58, 136, 0);
        assert_eq!(na, nb);
        assert_ne!(
            community_id_v1(0, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80),
            community_id_v1(1, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80)
        );
    }
}
