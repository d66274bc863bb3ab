//! IPS-mode verdicts (Suricata's inline mode, `--simulate-ips`): which drops apply to the
//! whole flow.
//!
//! In IPS mode a matching drop or reject rule drops the packet. Suricata applies the action
//! to the flow too (every later packet of the flow is dropped without inspection) when the
//! rule matched an app-layer transaction or the reassembled stream, or when it is an
//! app-layer (without packet-header keywords such as `dsize`) or (like) IP-only rule; a plain
//! packet rule (`dsize`, `flags`, payload content, `flow`...) drops just that packet. A `pass`
//! follows the same scope: it passes the flow or the packet.

use super::compile::{CompiledRule, RuleProto};
use super::matcher::Inspection;

/// Suricata's IP-only rules: addresses and at most the transport, nothing else to match
/// (no ports, buffers, flow, header or state keywords).
pub fn ip_only(r: &CompiledRule) -> bool {
    like_ip_only(r) && r.src_ports.is_any() && r.dst_ports.is_any()
}

/// No buffer, flow, header, state or app-layer keyword.
fn no_keywords(r: &CompiledRule) -> bool {
    r.app_proto.is_none()
        && r.lists.is_empty()
        && r.flow.established.is_none()
        && r.flow.direction.is_none()
        && r.dsize.is_none()
        && r.urilen.is_none()
        && r.ttl.is_none()
        && r.itype.is_none()
        && r.icode.is_none()
        && r.icmp_id.is_none()
        && r.icmpv6_mtu.is_none()
        && r.icmp_seq.is_none()
        && r.ip_proto.is_none()
        && r.tcp_flags.is_none()
        && r.tcp_seq.is_none()
        && r.tcp_ack.is_none()
        && r.stream_size.is_none()
        && r.flow_counts.is_empty()
        && r.flowbits.is_empty()
        && r.flowints.is_empty()
        && r.xbits.is_empty()
        && r.app_ints.is_empty()
        && r.decode_events == 0
        && r.app_events == 0
        && !r.flow_start
}

/// Whether the rule uses a packet-header keyword: an app-layer rule using one is a packet
/// rule for Suricata (its drop stays with the packet).
fn packet_keywords(r: &CompiledRule) -> bool {
    r.dsize.is_some()
        || r.ttl.is_some()
        || r.itype.is_some()
        || r.icode.is_some()
        || r.icmp_id.is_some()
        || r.icmpv6_mtu.is_some()
        || r.icmp_seq.is_some()
        || r.ip_proto.is_some()
        || r.tcp_flags.is_some()
        || r.tcp_seq.is_some()
        || r.tcp_ack.is_some()
}

/// Suricata's "like IP-only" rules: IP-only ([`ip_only`]) but for ports.
fn like_ip_only(r: &CompiledRule) -> bool {
    matches!(
        r.proto,
        RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6 | RuleProto::Tcp | RuleProto::Udp | RuleProto::Sctp
    ) && no_keywords(r)
}

/// Whether the action of `r` (a drop, a pass) on `insp` applies to the rest of the flow.
pub fn drop_applies_to_flow(r: &CompiledRule, insp: &Inspection<'_>) -> bool {
    if let Some(flow) = r.drop_scope {
        return flow && insp.flow_id != 0;
    }
    insp.flow_id != 0 && (insp.transaction || (r.app_proto.is_some() && !packet_keywords(r)) || like_ip_only(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Classifications, Vars, compile_rule, parse_rules};

    fn rule(text: &str) -> CompiledRule {
        let parsed = parse_rules(text, "t.rules", &Vars::default()).remove(0).unwrap();
        compile_rule(&parsed, &Classifications::new()).unwrap()
    }

    #[test]
    fn ip_only_rules_are_addresses_and_transport_only() {
        assert!(ip_only(&rule("drop ip 192.168.10.31 any -> any any (sid:1;)")));
        assert!(ip_only(&rule("drop tcp any any -> any any (msg:\"x\"; sid:3;)")));
        assert!(!ip_only(&rule("drop tcp any any -> any 80 (sid:1;)")), "a port");
        assert!(!ip_only(&rule("drop tcp any any -> any any (content:\"x\"; sid:1;)")), "a content");
        assert!(!ip_only(&rule("drop tcp any any -> any any (dsize:0; sid:1;)")), "a header keyword");
        assert!(!ip_only(&rule("drop tcp any any -> any any (flow:to_server; sid:1;)")), "flow");
        assert!(!ip_only(&rule("drop http any any -> any any (sid:1;)")), "an app-layer rule");
    }

    fn detector(rules: &str, threshold: &str, ips: bool) -> crate::detect::Detector {
        let mut b = crate::detect::DetectorBuilder::new().ips(ips);
        b.add_rules(rules, "t.rules");
        b.add_threshold_config(threshold, "threshold.config");
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:?}");
        d
    }

    fn packet(flow_id: u64, ts_secs: i64, to_server: bool, payload: &[u8]) -> Inspection<'_> {
        use crate::detect::{Direction, Transport};
        let (c, s) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut i = if to_server {
            Inspection::new(Transport::Tcp, c, 40000, s, 80, Direction::ToServer, payload)
        } else {
            Inspection::new(Transport::Tcp, s, 80, c, 40000, Direction::ToClient, payload)
        };
        i.flow_id = flow_id;
        i.ts_micros = ts_secs * 1_000_000;
        i
    }

    #[test]
    fn in_ips_mode_an_ip_only_drop_blocks_and_drops_the_flow_but_a_packet_drop_does_not() {
        let rules =
            "drop tcp 10.0.0.1 any -> any any (sid:1;)\ndrop tcp any any -> any any (content:\"bad\"; sid:2;)\n";
        let d = detector(rules, "", true);
        let hits = d.inspect(&packet(7, 0, true, b"hello"));
        assert_eq!(hits.iter().map(|h| (h.sid, h.blocked)).collect::<Vec<_>>(), [(1, true)]);
        assert!(d.inspect(&packet(7, 1, true, b"bad")).is_empty(), "the flow is dropped");
        d.end_flow(7);
        assert_eq!(d.inspect(&packet(7, 2, false, b"bad")).len(), 1, "a new flow is inspected again");

        let d = detector("drop tcp any any -> any any (content:\"bad\"; sid:2;)\n", "", true);
        assert!(d.inspect(&packet(8, 0, true, b"bad")).iter().all(|h| h.blocked));
        assert_eq!(d.inspect(&packet(8, 1, true, b"bad")).len(), 1, "a packet drop leaves the flow alone");

        // an app-layer rule drops the flow, unless a packet-header keyword makes it a packet rule
        let http = |flow_id: u64, ts: i64, payload: &'static [u8]| {
            let mut p = packet(flow_id, ts, true, payload);
            p.app_proto = Some(crate::detect::AppProto::Http);
            p
        };
        let d = detector("drop http any any -> any any (sid:4;)\n", "", true);
        assert_eq!(d.inspect(&http(10, 0, b"x")).len(), 1);
        assert!(d.inspect(&http(10, 1, b"x")).is_empty(), "flow dropped");
        let d = detector("drop http any any -> any any (dsize:0; sid:4;)\n", "", true);
        assert_eq!(d.inspect(&http(11, 0, b"")).len(), 1);
        assert_eq!(d.inspect(&http(11, 1, b"")).len(), 1, "packet drop only");

        let d = detector(rules, "", false);
        assert!(d.inspect(&packet(9, 0, true, b"bad")).iter().all(|h| !h.blocked), "IDS mode never blocks");
        assert_eq!(d.inspect(&packet(9, 1, true, b"bad")).len(), 2);
    }

    #[test]
    fn a_rate_filter_turns_matches_above_the_rate_into_drops_or_passes() {
        let rule = "alert tcp any any -> any any (content:\"x\"; sid:5;)\n";
        let drop = "rate_filter gen_id 1, sig_id 5, track by_dst, count 1, seconds 60, new_action drop, timeout 100\n";
        let d = detector(rule, drop, true);
        let verdicts: Vec<Vec<(crate::detect::Action, bool)>> = [(0, true), (1, false), (2, true), (3, false)]
            .iter()
            .map(|&(t, up)| d.inspect(&packet(1, t, up, b"x")).iter().map(|h| (h.action, h.blocked)).collect())
            .collect();
        use crate::detect::Action::{Alert, Drop};
        // one match per destination is allowed, the next one is a drop, which stops the flow
        // only for app-layer rules: this packet rule keeps matching (as drops) in the timeout
        assert_eq!(verdicts, [vec![(Alert, false)], vec![(Alert, false)], vec![(Drop, true)], vec![(Drop, true)]]);

        // a pass passes the flow for a rule without packet keywords, else just the packet
        let pass = "rate_filter gen_id 1, sig_id 6, track by_rule, count 1, seconds 60, new_action pass, timeout 100\n";
        let d = detector("alert tcp any any -> any any (sid:6;)\n", pass, false);
        assert_eq!(d.inspect(&packet(2, 0, true, b"x")).len(), 1);
        let passed = d.inspect(&packet(2, 1, true, b"x"));
        assert_eq!(
            passed.iter().map(|h| (h.action, h.alert)).collect::<Vec<_>>(),
            [(crate::detect::Action::Pass, false)]
        );
        assert!(d.inspect(&packet(2, 2, true, b"x")).is_empty(), "the flow is passed");
        let pass = "rate_filter gen_id 1, sig_id 5, track by_rule, count 1, seconds 60, new_action pass, timeout 100\n";
        let d = detector(rule, pass, false);
        assert_eq!(d.inspect(&packet(3, 0, true, b"x")).len(), 1);
        assert_eq!(d.inspect(&packet(3, 1, true, b"x"))[0].action, crate::detect::Action::Pass);
        assert_eq!(d.inspect(&packet(3, 2, true, b"x"))[0].action, crate::detect::Action::Pass, "packet pass only");
    }

    #[test]
    fn ips_pass_ordered_after_a_matching_drop_neither_alerts_nor_passes() {
        use crate::detect::Action;
        let mut b = crate::detect::DetectorBuilder::new().ips(true).action_order(&[Action::Drop, Action::Pass]);
        b.add_rules(
            "drop tcp any any -> any any (content:\"x\"; sid:2;)\npass tcp any any -> any any (sid:1;)\n",
            "t.rules",
        );
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:?}");
        let mut i = crate::detect::Inspection::new(
            crate::detect::Transport::Tcp,
            std::net::IpAddr::from([10, 0, 0, 1]),
            40000,
            std::net::IpAddr::from([10, 0, 0, 2]),
            80,
            crate::detect::Direction::ToServer,
            b"x",
        );
        i.flow_id = 7;
        let hits = d.inspect(&i);
        assert_eq!(hits.iter().map(|h| (h.sid, h.blocked)).collect::<Vec<_>>(), [(2, true)]);
        // the flow was not passed: the next packet is inspected again
        assert_eq!(d.inspect(&i).iter().map(|h| h.sid).collect::<Vec<_>>(), [2]);
    }
}
