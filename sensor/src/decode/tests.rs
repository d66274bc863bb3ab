use super::*;
use crate::synth::{self, ClientHello, Host, TcpSession};
use std::net::{Ipv4Addr, Ipv6Addr};

fn ip(f: &[u8]) -> Packet<'_> {
    match decode(LinkType::Ethernet, f, DecodeOptions { checksum_check: true }) {
        Ok(Decoded::Ip(p)) => p,
        other => panic!("{other:?}"),
    }
}

fn sample_frames() -> Vec<(LinkType, Vec<u8>)> {
    let c = Host::v4([192, 168, 1, 10]);
    let s = Host::v4([93, 184, 216, 34]);
    let mut t = TcpSession::new(c, 50000, s, 80);
    let mut v = vec![
        (LinkType::Ethernet, t.handshake().remove(0)),
        (LinkType::Ethernet, t.client_send(&synth::http_request("GET", "example.org", "/", &[]))),
        (LinkType::Ethernet, synth::udp_frame(&c, 5353, &s, 53, &synth::dns_query(1, "example.org", 1))),
    ];
    let mut tv = TcpSession::new(c, 50001, s, 443).with_vlans(&[100, 200]);
    v.push((LinkType::Ethernet, tv.client_send(&ClientHello::default().to_record())));
    let c6 = Host::v6("2001:db8::1".parse().unwrap());
    let s6 = Host::v6("2001:db8::2".parse().unwrap());
    let mut t6 = TcpSession::new(c6, 1234, s6, 80);
    v.push((LinkType::Ethernet, t6.client_send(b"GET / HTTP/1.1\r\n\r\n")));
    v.push((
        LinkType::Ethernet,
        synth::ip_frame(&c, &s, &synth::Link::default(), 1, &synth::icmp_echo(c.ip, s.ip, false, 7, 1, b"ping")),
    ));
    // Raw IP and SLL versions of the DNS query.
    let eth = synth::udp_frame(&c, 5353, &s, 53, &synth::dns_query(2, "example.org", 28));
    v.push((LinkType::RawIp, eth[14..].to_vec()));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&eth[14..]);
    v.push((LinkType::LinuxSll, sll));
    let mut chdlc = vec![0x0f, 0x00, 0x08, 0x00];
    chdlc.extend_from_slice(&eth[14..]);
    v.push((LinkType::Chdlc, chdlc));
    v
}

#[test]
fn truncation_at_every_byte_never_panics_and_is_typed() {
    let opts_all = [DecodeOptions { checksum_check: false }, DecodeOptions { checksum_check: true }];
    for (link, frame) in sample_frames() {
        assert!(decode(link, &frame, opts_all[1]).is_ok(), "{link:?} full frame must decode");
        for n in 0..frame.len() {
            for o in opts_all {
                // Must return, never panic. A cut frame is either an error or (cut only in
                // trailing payload) a packet whose payload is shorter.
                match decode(link, &frame[..n], o) {
                    Ok(Decoded::Ip(p)) => assert!(p.payload.len() < frame.len()),
                    Ok(Decoded::NonIp { .. }) => {}
                    Err(e) => assert!(!e.event().is_empty()),
                }
            }
        }
    }
}

#[test]
fn truncated_ipv4_frames_give_suricata_event_names() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let f = synth::udp_frame(&c, 1, &s, 2, b"hello");
    let o = DecodeOptions::default();
    assert_eq!(decode(LinkType::Ethernet, &f[..10], o).unwrap_err(), DecodeError::EthernetPktTooSmall);
    assert_eq!(decode(LinkType::Ethernet, &f[..20], o).unwrap_err(), DecodeError::Ipv4PktTooSmall);
    assert_eq!(decode(LinkType::Ethernet, &f[..f.len() - 1], o).unwrap_err(), DecodeError::Ipv4TruncPkt);
    assert_eq!(DecodeError::Ipv4TruncPkt.event(), "ipv4.trunc_pkt");
    // Total length 0 (TSO capture): iplen smaller than header.
    let mut tso = f.clone();
    tso[16] = 0;
    tso[17] = 0;
    assert_eq!(decode(LinkType::Ethernet, &tso, o).unwrap_err(), DecodeError::Ipv4IplenSmallerThanHlen);
    let mut bad_ver = f.clone();
    bad_ver[14] = 0x55;
    assert_eq!(decode(LinkType::Ethernet, &bad_ver, o).unwrap_err(), DecodeError::Ipv4WrongIpVersion);
    let mut ihl = f.clone();
    ihl[14] = 0x44;
    assert_eq!(decode(LinkType::Ethernet, &ihl, o).unwrap_err(), DecodeError::Ipv4HlenTooSmall);
    // TCP data offset below 5 words.
    let mut t = TcpSession::new(c, 1, s, 2);
    let mut seg = t.client_send(b"x");
    seg[14 + 20 + 12] = 0x40;
    assert_eq!(decode(LinkType::Ethernet, &seg, o).unwrap_err(), DecodeError::TcpHlenTooSmall);
    assert_eq!(DecodeError::TcpHlenTooSmall.event(), "tcp.hlen_too_small");
    // Data offset beyond the segment.
    seg[14 + 20 + 12] = 0xf0;
    assert_eq!(decode(LinkType::Ethernet, &seg, o).unwrap_err(), DecodeError::TcpInvalidOptlen);
    // Unknown link type.
    assert_eq!(decode(LinkType::from_dlt(147), &f, o).unwrap_err(), DecodeError::UnsupportedLinkType);
}

#[test]
fn ethernet_padding_is_ignored() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let mut f = synth::udp_frame(&c, 1, &s, 2, b"a");
    f.extend_from_slice(&[0u8; 13]);
    let p = ip(&f);
    assert_eq!(p.payload, b"a");
}

#[test]
fn checksum_validation_is_switchable() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let mut t = TcpSession::new(c, 1000, s, 80);
    let mut f = t.client_send(b"data");
    let last = f.len() - 1;
    f[last] ^= 0xff;
    assert!(decode(LinkType::Ethernet, &f, DecodeOptions { checksum_check: false }).is_ok());
    assert_eq!(
        decode(LinkType::Ethernet, &f, DecodeOptions { checksum_check: true }).unwrap_err(),
        DecodeError::TcpInvalidChecksum
    );
    let mut g = synth::udp_frame(&c, 1, &s, 2, b"x");
    g[14 + 8] ^= 1; // TTL: breaks the IPv4 header checksum
    assert_eq!(
        decode(LinkType::Ethernet, &g, DecodeOptions { checksum_check: true }).unwrap_err(),
        DecodeError::Ipv4InvalidChecksum
    );
    let mut u = synth::udp_frame(&c, 1, &s, 2, b"xyz");
    let l = u.len() - 1;
    u[l] ^= 1;
    assert_eq!(
        decode(LinkType::Ethernet, &u, DecodeOptions { checksum_check: true }).unwrap_err(),
        DecodeError::UdpInvalidChecksum
    );
}

#[test]
fn vlan_and_qinq_ids_are_kept() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let one = synth::ethernet(
        c.mac,
        s.mac,
        0x0800,
        &[42],
        &synth::ipv4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, 1, 64, &synth::udp(c.ip, s.ip, 1, 2, b"")),
    );
    assert_eq!(ip(&one).vlan, [42, 0, 0]);
    let mut t = TcpSession::new(c, 1, s, 2).with_vlans(&[100, 200]);
    let two = t.client_send(b"x");
    assert_eq!(&two[12..14], &[0x88, 0xa8]);
    assert_eq!(ip(&two).vlan, [100, 200, 0]);
    let four = synth::ethernet(c.mac, s.mac, 0x0800, &[1, 2, 3, 4], &[0x45]);
    assert_eq!(
        decode(LinkType::Ethernet, &four, DecodeOptions::default()).unwrap_err(),
        DecodeError::VlanTooManyLayers
    );
    let cut = &two[..16];
    assert_eq!(decode(LinkType::Ethernet, cut, DecodeOptions::default()).unwrap_err(), DecodeError::VlanHeaderTooSmall);
    // ARP is not IP.
    let arp = synth::ethernet(c.mac, [0xff; 6], 0x0806, &[7], &[0u8; 28]);
    assert!(matches!(
        decode(LinkType::Ethernet, &arp, DecodeOptions::default()),
        Ok(Decoded::NonIp { ethertype: 0x0806 })
    ));
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: Ipv6Addr = "fe80::2".parse().unwrap();
    let udp = synth::udp(src.into(), dst.into(), 546, 547, b"dhcpdhcp"); // 16 bytes: a valid first fragment
    // Hop-by-hop (8 bytes, next = routing), routing (8, next = dest opts), dest opts (16,
    // next = fragment), atomic fragment (next = UDP).
    let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
    ext.extend_from_slice(&[44, 1, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    ext.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]);
    let pkt = synth::ipv6(src, dst, 0, 64, &ext, &udp);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    let p = ip(&f);
    assert_eq!(p.proto, 17);
    assert!(matches!(p.transport, Transport::Udp(u) if u.sport == 546 && u.dport == 547));
    assert_eq!(p.payload, b"dhcpdhcp");
    // A real fragment (offset 0, more fragments) is flagged, not decoded further.
    let mut frag_ext = vec![17, 0, 0, 1, 0, 0, 0, 9];
    frag_ext[3] = 1;
    let pkt = synth::ipv6(src, dst, 44, 64, &frag_ext, &udp);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    let p = ip(&f);
    assert_eq!(p.frag, Some(FragInfo { id: 9, offset: 0, more: true }));
    assert_eq!(p.transport, Transport::Fragment);
    // Truncated extension header.
    let pkt = synth::ipv6(src, dst, 0, 64, &[17, 4], &[]);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    assert_eq!(decode(LinkType::Ethernet, &f, DecodeOptions::default()).unwrap_err(), DecodeError::Ipv6TruncExthdr);
    // A fragment that is not the last must carry a multiple of 8 bytes; decode_invalid gives
    // it (not reassembled) with the event, as it does a truncated extension header.
    let short = synth::udp(src.into(), dst.into(), 546, 547, b"dhcp");
    let pkt = synth::ipv6(src, dst, 44, 64, &frag_ext, &short);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    assert_eq!(
        decode(LinkType::Ethernet, &f, DecodeOptions::default()).unwrap_err(),
        DecodeError::Ipv6FragInvalidLength
    );
    let p = super::decode_invalid(LinkType::Ethernet, &f, DecodeOptions::default()).unwrap();
    assert_eq!((p.frag, p.transport), (None, Transport::Other));
    assert_eq!(p.events, super::DecodeEvent::Ipv6FragInvalidLength.bit());
    let pkt = synth::ipv6(src, dst, 0, 64, &[17, 4], &[]);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    let p = super::decode_invalid(LinkType::Ethernet, &f, DecodeOptions::default()).unwrap();
    assert_eq!(p.events, super::DecodeEvent::Ipv6TruncExthdr.bit());
    // a packet that decodes, or fails at its IP header, is not one
    let ok = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &synth::ipv6(src, dst, 17, 64, &[], &udp));
    assert!(super::decode_invalid(LinkType::Ethernet, &ok, DecodeOptions::default()).is_none());
    assert!(super::decode_invalid(LinkType::Ethernet, &f[..30], DecodeOptions::default()).is_none());
    // A loop of hop-by-hop headers is cut off.
    let mut many = Vec::new();
    for _ in 0..12 {
        many.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    }
    let pkt = synth::ipv6(src, dst, 0, 64, &many, &[]);
    let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
    assert_eq!(decode(LinkType::Ethernet, &f, DecodeOptions::default()).unwrap_err(), DecodeError::Ipv6ExthdrTooMany);
}

#[test]
fn ipv4_fragments_are_flagged() {
    let f = synth::ethernet(
        [2; 6],
        [3; 6],
        0x0800,
        &[],
        &synth::ipv4_frag(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2), 6, 5, 64, 8, false, &[0; 8]),
    );
    let p = ip(&f);
    assert_eq!(p.frag, Some(FragInfo { id: 5, offset: 8, more: false }));
    assert_eq!(p.transport, Transport::Fragment);
}

#[test]
fn link_types_round_trip() {
    for dlt in [0u32, 1, 101, 104, 108, 113, 228, 229, 276, 999] {
        assert_eq!(LinkType::from_dlt(dlt).dlt(), dlt);
    }
    let names: std::collections::HashSet<_> = DecodeError::ALL.iter().map(|e| e.event()).collect();
    assert_eq!(names.len(), DecodeError::COUNT);
    for (i, e) in DecodeError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
    }
}

#[test]
fn cisco_hdlc_frames_decode_to_their_ip_packet() {
    let (c, s) = (Host::v4([192, 168, 1, 10]), Host::v4([93, 184, 216, 34]));
    let eth = synth::udp_frame(&c, 5353, &s, 53, &synth::dns_query(2, "example.org", 1));
    let mut frame = vec![0x0f, 0x00, 0x08, 0x00];
    frame.extend_from_slice(&eth[14..]);
    let opts = DecodeOptions { checksum_check: true };
    match decode(LinkType::Chdlc, &frame, opts) {
        Ok(Decoded::Ip(p)) => assert_eq!((p.src, p.dst, p.dst_port()), (c.ip, s.ip, 53)),
        other => panic!("{other:?}"),
    }
    assert_eq!(decode(LinkType::Chdlc, &frame[..3], opts).err(), Some(DecodeError::ChdlcPktTooSmall));
}

#[test]
fn sctp_packets_give_their_ports_and_chunks_as_payload() {
    let (a, b) = (Ipv4Addr::new(192, 168, 170, 56), Ipv4Addr::new(192, 168, 170, 8));
    let mut sctp = vec![0, 7, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
    let chunk = [1u8, 0, 0, 8, 0xaa, 0xbb, 0xcc, 0xdd];
    sctp.extend_from_slice(&chunk);
    let frame = |l4: &[u8]| synth::ethernet([2; 6], [3; 6], 0x0800, &[], &synth::ipv4(a, b, 132, 1, 64, l4));
    let opts = DecodeOptions { checksum_check: false };
    let f = frame(&sctp);
    match decode(LinkType::Ethernet, &f, opts) {
        Ok(Decoded::Ip(p)) => {
            assert_eq!((p.src_port(), p.dst_port(), p.payload), (7, 9, &chunk[..]));
            assert!(matches!(p.transport, Transport::Sctp(_)));
        }
        other => panic!("{other:?}"),
    }
    // shorter than the common header: kept as an undecoded protocol
    let f = frame(&sctp[..8]);
    match decode(LinkType::Ethernet, &f, opts) {
        Ok(Decoded::Ip(p)) => assert_eq!((p.transport, p.src_port()), (Transport::Other, 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut x = 0x9e3779b97f4a7c15u64;
    let links = [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Chdlc,
    ];
    for i in 0..20000 {
        let len = i % 120;
        let mut f = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.push(x as u8);
        }
        // Make IP-looking starts common.
        if len > 14 && i % 2 == 0 {
            f[12] = 0x08;
            f[13] = 0;
            f[14] = 0x45;
        }
        let _ = decode(links[i % links.len()], &f, DecodeOptions { checksum_check: i % 3 == 0 });
    }
}

#[test]
fn atomic_and_repeated_ipv6_fragment_headers_are_recorded_as_events() {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let udp = synth::udp(src.into(), dst.into(), 5000, 53, b"qqqqqqqq"); // 16 bytes: a valid first fragment
    let decode_with = |ext: &[u8], first: u8| {
        let pkt = synth::ipv6(src, dst, first, 64, ext, &udp);
        let f = synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &pkt);
        ip(&f).events
    };
    let useless = super::DecodeEvent::Ipv6ExthdrUselessFh.bit();
    let dupl = super::DecodeEvent::Ipv6ExthdrDuplFh.bit();
    assert_eq!(decode_with(&[], 17), 0, "no extension header, no event");
    // one atomic fragment header (offset 0, no more fragments), then UDP
    assert_eq!(decode_with(&[17, 0, 0, 0, 0, 0, 0, 1], 44), useless);
    // two of them
    assert_eq!(decode_with(&[44, 0, 0, 0, 0, 0, 0, 1, 17, 0, 0, 0, 0, 0, 0, 1], 44), useless | dupl);
    // a real first fragment is not useless
    assert_eq!(decode_with(&[17, 0, 0, 1, 0, 0, 0, 9], 44), 0);
    // any number of atomic fragment headers is decoded (the chain limit is for the others)
    let mut chain: Vec<u8> = (0..141).flat_map(|_| [44, 0, 0, 0, 0, 0, 0, 1]).collect();
    chain.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(decode_with(&chain, 44), useless | dupl);
}

#[test]
fn a_truncated_ipv4_packet_alerts_decode_event_rules_without_addresses() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let f = synth::udp_frame(&c, 1, &s, 2, b"hello");
    let e = DecodeError::Ipv4TruncPkt;
    assert_eq!(DecodeEvent::of_ip_error(e), Some(DecodeEvent::Ipv4TruncPkt));
    assert_eq!(DecodeEvent::of_ip_error(DecodeError::TcpPktTooSmall), None, "after the IP header: of_error");
    assert_eq!(DecodeEvent::from_name("ipv4.trunc_pkt"), Some(DecodeEvent::Ipv4TruncPkt));
    let rules = "alert pkthdr any any -> any any (decode-event:ipv4.trunc_pkt; sid:1;)\n\
                 alert ip any any -> any any (sid:2;)\n\
                 alert ip 10.0.0.0/8 any -> any any (decode-event:ipv4.trunc_pkt; sid:3;)\n";
    let (det, errors) = crate::detect::Detector::from_rules(rules, "t.rules", &crate::detect::Vars::default());
    assert!(errors.is_empty(), "{errors:?}");
    let mut sensor = crate::Sensor::new(crate::SensorOptions::default()).with_detector(std::sync::Arc::new(det));
    let mut out = Vec::new();
    sensor.process(soc_model::Timestamp::from_unix_micros(1_000_000), LinkType::Ethernet, &f[..f.len() - 1], &mut out);
    let alerts: Vec<_> = out.iter().filter(|e| e.event_type == soc_model::EventType::Alert).collect();
    // only the decoder-event rule with any addresses: the packet has none
    assert_eq!(alerts.iter().filter_map(|e| e.alert.as_ref()?.signature_id).collect::<Vec<_>>(), [1]);
    assert!(alerts[0].src_ip.is_none() && alerts[0].dest_ip.is_none());
}

#[test]
fn a_geneve_tunnel_is_decapsulated_into_a_flow_of_its_own() {
    let (c, s) = (Host::v4([10, 0, 0, 1]), Host::v4([10, 0, 0, 2]));
    let (ic, is) = (Host::v4([192, 168, 1, 1]), Host::v4([192, 168, 1, 2]));
    let inner = synth::udp_frame(&ic, 1111, &is, 53, b"inner");
    // Geneve: version 0, one 4-byte option word, protocol IPv4
    let mut payload = vec![0x01, 0, 0x08, 0x00, 0, 0, 1, 0, 9, 9, 9, 9];
    payload.extend_from_slice(&inner[14..]);
    let outer = synth::udp_frame(&c, 5000, &s, tunnel::GENEVE_PORT, &payload);
    let mut sensor = crate::Sensor::new(crate::SensorOptions::default());
    let mut out = Vec::new();
    sensor.process(soc_model::Timestamp::from_unix_micros(1_000_000), LinkType::Ethernet, &outer, &mut out);
    sensor.flush_all(&mut out);
    let mut ports: Vec<_> =
        out.iter().filter(|e| e.event_type == soc_model::EventType::Flow).filter_map(|e| e.dest_port).collect();
    ports.sort_unstable();
    assert_eq!(ports, [53, tunnel::GENEVE_PORT], "the outer and the inner flow");
}
