use super::*;
use crate::decode::{DecodeOptions, Decoded, LinkType, decode};
use crate::synth::{self, Host, TcpSession, flags};

fn pkt(f: &[u8]) -> Packet<'_> {
    match decode(LinkType::Ethernet, f, DecodeOptions::default()) {
        Ok(Decoded::Ip(p)) => p,
        other => panic!("{other:?}"),
    }
}

fn hosts() -> (Host, Host) {
    (Host::v4([10, 0, 0, 1]), Host::v4([10, 0, 0, 2]))
}

#[test]
fn both_directions_share_a_flow_and_the_first_sender_is_client() {
    let (c, s) = hosts();
    let mut t = FlowTable::new(FlowTimeouts::default(), 100);
    let mut ev = Vec::new();
    let a = synth::udp_frame(&s, 53, &c, 40000, b"x");
    let b = synth::udp_frame(&c, 40000, &s, 53, b"y");
    let la = t.lookup_or_create(&pkt(&a), 0, 1, &mut ev);
    let lb = t.lookup_or_create(&pkt(&b), 1, 2, &mut ev);
    assert!(la.created && !lb.created);
    assert_eq!(la.idx, lb.idx);
    assert_eq!((la.dir, lb.dir), (Direction::ToServer, Direction::ToClient));
    let f = t.get_mut(la.idx).unwrap();
    assert_eq!((f.client, f.client_port, f.server, f.server_port), (s.ip, 53, c.ip, 40000));
    assert_eq!(t.len(), 1);
}

#[test]
fn syn_ack_first_makes_its_receiver_the_client() {
    let (c, s) = hosts();
    let mut sess = TcpSession::new(c, 40000, s, 80);
    let hs = sess.handshake();
    let mut t = FlowTable::new(FlowTimeouts::default(), 100);
    let mut ev = Vec::new();
    let l = t.lookup_or_create(&pkt(&hs[1]), 0, 1, &mut ev);
    assert_eq!(l.dir, Direction::ToClient);
    let f = t.get_mut(l.idx).unwrap();
    assert_eq!((f.client, f.client_port), (c.ip, 40000));
    let l2 = t.lookup_or_create(&pkt(&hs[2]), 1, 2, &mut ev);
    assert_eq!(l2.dir, Direction::ToServer);
}

#[test]
fn vlans_and_protocols_separate_flows() {
    let (c, s) = hosts();
    let mut t = FlowTable::new(FlowTimeouts::default(), 100);
    let mut ev = Vec::new();
    let mut a = TcpSession::new(c, 1, s, 2);
    let mut b = TcpSession::new(c, 1, s, 2).with_vlans(&[7]);
    let fa = a.client_send(b"x");
    let fb = b.client_send(b"x");
    let fu = synth::udp_frame(&c, 1, &s, 2, b"x");
    let i1 = t.lookup_or_create(&pkt(&fa), 0, 1, &mut ev).idx;
    let i2 = t.lookup_or_create(&pkt(&fb), 0, 2, &mut ev).idx;
    let i3 = t.lookup_or_create(&pkt(&fu), 0, 3, &mut ev).idx;
    assert!(i1 != i2 && i2 != i3 && i1 != i3);
}

#[test]
fn timeouts_follow_packet_time_and_state() {
    let (c, s) = hosts();
    let mut t = FlowTable::new(FlowTimeouts::default(), 100);
    let mut ev = Vec::new();
    let q = synth::udp_frame(&c, 40000, &s, 53, b"q");
    let l = t.lookup_or_create(&pkt(&q), 0, 1, &mut ev);
    let mut out = Vec::new();
    t.expire(29_999_999, &mut out);
    assert!(out.is_empty());
    // Activity at 20 s pushes the deadline to 50 s.
    t.get_mut(l.idx).unwrap().last = 20_000_000;
    t.expire(31_000_000, &mut out);
    assert!(out.is_empty(), "the re-armed entry must not expire early");
    t.expire(50_000_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(t.stats.timed_out, 1);
    assert!(t.is_empty());

    // Established UDP: 300 s. A state change to a shorter timeout is re-armed.
    let l = t.lookup_or_create(&pkt(&q), 100_000_000, 2, &mut ev);
    t.get_mut(l.idx).unwrap().state = FlowState::Established;
    t.expire(200_000_000, &mut out);
    assert_eq!(out.len(), 1, "still alive at +100 s");
    t.expire(400_000_001, &mut out);
    assert_eq!(out.len(), 2);

    // TCP: closed after FIN exchange → 60 s instead of 600 s.
    let mut sess = TcpSession::new(c, 5, s, 6);
    let syn = sess.client_segment(flags::SYN, &[]);
    let l = t.lookup_or_create(&pkt(&syn), 1_000_000_000, 3, &mut ev);
    {
        let f = t.get_mut(l.idx).unwrap();
        f.state = FlowState::Closed;
    }
    t.rearm(l.idx);
    t.expire(1_000_000_000 + 60_000_000, &mut out);
    assert_eq!(out.len(), 3);
}

#[test]
fn flow_cap_evicts_and_counts() {
    let (c, s) = hosts();
    let mut t = FlowTable::new(FlowTimeouts::default(), 3);
    let mut ev = Vec::new();
    for port in 0..10u16 {
        let f = synth::udp_frame(&c, 1000 + port, &s, 53, b"q");
        t.lookup_or_create(&pkt(&f), port as i64, port as u64, &mut ev);
        assert!(t.len() <= 3);
    }
    assert_eq!(t.stats.evicted, 7);
    assert_eq!(ev.len(), 7);
    // Oldest first.
    assert_eq!(ev[0].client_port, 1000);
    let all = t.drain();
    assert_eq!(all.len(), 3);
    assert!(t.is_empty());
}

#[test]
fn flow_ids_are_stable_nonzero_and_53_bit() {
    let (c, s) = hosts();
    let f = synth::udp_frame(&c, 1, &s, 2, b"x");
    let r = synth::udp_frame(&s, 2, &c, 1, b"x");
    let (k1, lo1) = FlowKey::of(&pkt(&f));
    let (k2, lo2) = FlowKey::of(&pkt(&r));
    assert_eq!(k1, k2);
    assert_ne!(lo1, lo2);
    let a = k1.flow_id(123);
    assert_eq!(a, k2.flow_id(123));
    assert_ne!(a, k1.flow_id(124));
    assert!(a != 0 && a < (1 << 53));
}

#[test]
fn tcp_state_machine() {
    use crate::app::Direction::*;
    let mut t = TcpConn::default();
    assert!(!t.update(ToClient, flags::SYN | flags::ACK, 1));
    assert_eq!(t.state, TcpState::None);
    assert!(t.update(ToServer, flags::SYN, 10));
    assert_eq!(t.isn[0], Some(10));
    assert!(t.update(ToClient, flags::SYN | flags::ACK, 20));
    assert!(t.update(ToServer, flags::ACK, 11));
    assert_eq!(t.state, TcpState::Established);
    assert!(t.update(ToServer, flags::FIN | flags::ACK, 11));
    assert_eq!(t.state, TcpState::FinWait1);
    assert!(t.update(ToClient, flags::FIN | flags::ACK, 21));
    assert_eq!(t.state, TcpState::Closed);
    let mut r = TcpConn::default();
    r.update(ToServer, flags::SYN, 1);
    r.update(ToClient, flags::RST | flags::ACK, 0);
    assert_eq!(r.state, TcpState::Closed);
}

#[test]
fn segments_foreign_to_an_unanswered_syn_are_ignored_and_a_retransmitted_syn_sets_up_the_session() {
    use crate::decode::tcp_flags::{ACK, RST, SYN};
    let mut c = TcpConn::default();
    assert!(c.accepts(Direction::ToServer, SYN, 1000));
    c.update(Direction::ToServer, SYN, 1000);
    assert_eq!(c.state, TcpState::SynSent);
    // a stray ACK from the server and the client's RST answering it (another sequence space)
    assert!(!c.accepts(Direction::ToClient, ACK, 77));
    assert!(!c.accepts(Direction::ToServer, RST, 555));
    // the client's own RST, a refusal from the server, the SYN-ACK: accepted
    assert!(c.accepts(Direction::ToServer, RST, 1001));
    assert!(c.accepts(Direction::ToClient, RST | ACK, 0));
    assert!(c.accepts(Direction::ToServer, SYN, 1000));
    assert!(c.accepts(Direction::ToClient, SYN | ACK, 9000));
    c.update(Direction::ToClient, SYN | ACK, 9000);
    c.update(Direction::ToServer, ACK, 1001);
    assert_eq!(c.state, TcpState::Established);
    // past the setup everything is the session's
    assert!(c.accepts(Direction::ToServer, RST, 12345));
}

#[test]
fn new_client_syns_restart_the_handshake_and_those_beyond_the_queue_are_syn_flood_events() {
    use crate::decode::DecodeEvent;
    use crate::decode::tcp_flags::{ACK, SYN};
    let mut c = TcpConn::default();
    c.update(Direction::ToServer, SYN, 100);
    assert!(!c.restarted && c.events == 0);
    // the same SYN again: a retransmission
    c.update(Direction::ToServer, SYN, 100);
    assert!(!c.restarted);
    let flood = DecodeEvent::Stream3whsSynFlood.bit();
    let mut floods = 0;
    for i in 0..(MAX_SYN_QUEUED as u32 + 3) {
        c.update(Direction::ToServer, SYN, 1000 + i);
        assert!(c.restarted);
        floods += usize::from(c.events & flood != 0);
    }
    assert_eq!(floods, 3);
    // the session follows the latest SYN
    let last = 1000 + MAX_SYN_QUEUED as u32 + 2;
    assert_eq!(c.isn[0], Some(last));
    c.update(Direction::ToClient, SYN | ACK, 7);
    assert_eq!((c.state, c.events), (TcpState::SynRecv, 0));
}
