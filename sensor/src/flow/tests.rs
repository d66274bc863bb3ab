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
fn vlans_split_flows_unless_vlan_tracking_is_off() {
    let (c, s) = hosts();
    let on_vlan = |v: u16, from_client: bool| {
        let link = synth::Link { vlans: vec![v] };
        let (src, sp, dst, dp) = if from_client { (&c, 40000, &s, 53) } else { (&s, 53, &c, 40000) };
        synth::ip_frame(src, dst, &link, 17, &synth::udp(src.ip, dst.ip, sp, dp, b"x"))
    };
    let (a, b) = (on_vlan(10, true), on_vlan(20, false));
    for (tracking, flows) in [(true, 2), (false, 1)] {
        let mut t = FlowTable::new(FlowTimeouts::default(), 100);
        t.vlan_tracking = tracking;
        let mut ev = Vec::new();
        let la = t.lookup_or_create(&pkt(&a), 0, 1, &mut ev);
        let lb = t.lookup_or_create(&pkt(&b), 1, 2, &mut ev);
        assert_eq!(t.len(), flows);
        if !tracking {
            assert_eq!((la.idx, lb.dir), (lb.idx, Direction::ToClient));
        }
    }
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

#[test]
fn a_regular_segment_from_the_rst_sender_is_a_suspected_rst_injection_once() {
    use crate::decode::DecodeEvent;
    use crate::decode::tcp_flags::{ACK, PSH, RST, SYN};
    let inject = DecodeEvent::StreamSuspectedRstInject.bit();
    let mut c = TcpConn::default();
    c.update(Direction::ToServer, SYN, 100);
    c.update(Direction::ToClient, SYN | ACK, 900);
    c.update(Direction::ToServer, ACK, 101);
    c.update(Direction::ToServer, RST | ACK, 101);
    assert_eq!((c.state, c.events), (TcpState::Closed, 0));
    // the other side answering is not suspicious; more RSTs are not either
    c.update(Direction::ToClient, ACK, 901);
    assert_eq!(c.events, 0);
    c.update(Direction::ToServer, RST | ACK, 101);
    assert_eq!(c.events, 0);
    // the RST's sender sends data as if nothing happened
    c.update(Direction::ToServer, PSH | ACK, 101);
    assert_eq!(c.events, inject);
    c.update(Direction::ToServer, PSH | ACK, 150);
    assert_eq!(c.events, 0, "reported once");
}

#[test]
fn async_oneside_completes_the_session_on_the_client_ack_alone() {
    use crate::decode::tcp_flags::{ACK, SYN};
    let mut c = TcpConn::default();
    c.update(Direction::ToServer, SYN, 100);
    // an ACK with another sequence number does not complete it
    c.update_async_oneside(Direction::ToServer, ACK, 500, false);
    assert_eq!(c.state, TcpState::SynSent);
    c.update(Direction::ToServer, ACK, 101);
    c.update_async_oneside(Direction::ToServer, ACK, 101, false);
    assert_eq!(c.state, TcpState::Established);
    assert!(c.async_oneside);
    // midstream pick-up: the client's ACK starts an established session
    let mut m = TcpConn::default();
    m.update_async_oneside(Direction::ToServer, ACK, 7, false);
    assert_eq!(m.state, TcpState::None, "no pick-up without midstream");
    m.update_async_oneside(Direction::ToClient, ACK, 7, true);
    assert_eq!(m.state, TcpState::None, "only the client's side");
    m.update_async_oneside(Direction::ToServer, ACK, 7, true);
    assert_eq!(m.state, TcpState::Established);
}

#[test]
fn midstream_pickup_starts_a_session_from_a_syn_ack_or_an_ack() {
    use crate::decode::tcp_flags::{ACK, PSH, RST, SYN};
    let mut s = TcpConn::default();
    s.update(Direction::ToClient, SYN | ACK, 500);
    s.update_midstream(Direction::ToClient, SYN | ACK, 500);
    assert_eq!((s.state, s.isn[1]), (TcpState::SynRecv, Some(500)));
    // the server's own ACK completes a SYN-ACK pick-up (only its side may be captured)
    s.update(Direction::ToClient, ACK, 501);
    s.update_midstream(Direction::ToClient, ACK, 501);
    assert_eq!(s.state, TcpState::Established);
    let mut a = TcpConn::default();
    a.update_midstream(Direction::ToServer, RST | ACK, 7);
    assert_eq!(a.state, TcpState::None, "a RST starts no session");
    a.update_midstream(Direction::ToClient, PSH | ACK, 7);
    assert_eq!(a.state, TcpState::Established);
    assert!(a.has_session());
}

#[test]
fn the_handshake_completes_only_with_the_expected_numbers() {
    use crate::decode::tcp_flags::{ACK, FIN, PSH, SYN};
    let mut c = TcpConn::default();
    c.update(Direction::ToServer, SYN, 100);
    c.update(Direction::ToClient, SYN | ACK, 900);
    // the client's ACK: right sequence number, acknowledging the SYN-ACK
    assert!(c.accepts_in_syn_recv(Direction::ToServer, ACK, 101, 901, false));
    // ... a wrong acknowledgement (it acknowledges server bytes never seen): refused
    assert!(!c.accepts_in_syn_recv(Direction::ToServer, PSH | ACK, 101, 1005, false));
    // ... beyond the expected sequence number (client packets missed): accepted
    assert!(c.accepts_in_syn_recv(Direction::ToServer, PSH | ACK, 150, 901, false));
    // the server's first byte after a missed client ACK: IDS accepts, inline refuses
    assert!(c.accepts_in_syn_recv(Direction::ToClient, PSH | ACK, 901, 101, false));
    assert!(!c.accepts_in_syn_recv(Direction::ToClient, PSH | ACK, 901, 101, true));
    assert!(!c.accepts_in_syn_recv(Direction::ToClient, PSH | ACK, 950, 101, false));
    // a FIN is not judged here
    assert!(c.accepts_in_syn_recv(Direction::ToServer, FIN | ACK, 7, 7, true));
    c.update(Direction::ToClient, PSH | ACK, 901);
    assert_eq!(c.state, TcpState::Established);
    assert!(c.accepts_in_syn_recv(Direction::ToServer, ACK, 5, 5, true), "established: not judged");
}
