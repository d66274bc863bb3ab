//! Signature inspection: packets and app-layer transactions go through the rule engine
//! ([`crate::detect`]); hits become EVE `alert` records with the flow's identity and the
//! transaction's app-layer metadata, as Suricata writes them.
//!
//! Each transaction is inspected once, when its record is complete (an HTTP request with its
//! response, a DNS query, a TLS handshake), with the buffers the record carries; every packet
//! with a payload is inspected once with its payload (`pkt_data`, `dsize`). Stream
//! inspection over reassembled data comes with the full TCP reassembly.

use crate::app::{AppProto, Direction};
use crate::decode::{Packet, Transport};
use crate::detect::{self, Action, Detector, Hit, Inspection};
use crate::flow::{Flow, FlowState};
use serde_json::{Map, Value};
use soc_model::{Alert, Event, EventType};

fn transport(proto: u8) -> detect::Transport {
    match proto {
        6 => detect::Transport::Tcp,
        17 => detect::Transport::Udp,
        1 => detect::Transport::Icmp,
        58 => detect::Transport::Icmpv6,
        132 => detect::Transport::Sctp,
        n => detect::Transport::Other(n),
    }
}

fn app_proto(p: AppProto) -> Option<detect::AppProto> {
    p.name().and_then(detect::AppProto::from_name)
}

fn established(f: &Flow) -> bool {
    matches!(f.state, FlowState::Established | FlowState::Closed) || (f.proto != 6 && f.pkts[0] > 0 && f.pkts[1] > 0)
}

fn det_dir(d: Direction) -> detect::Direction {
    match d {
        Direction::ToServer => detect::Direction::ToServer,
        Direction::ToClient => detect::Direction::ToClient,
    }
}

/// Rules that match this packet's payload.
pub(crate) fn packet_hits(det: &Detector, f: &Flow, p: &Packet<'_>, dir: Direction) -> Vec<Hit> {
    let (sport, dport) = match p.transport {
        Transport::Tcp(_) | Transport::Udp(_) => (p.src_port(), p.dst_port()),
        _ => (0, 0),
    };
    let mut insp = Inspection::new(transport(p.proto), p.src, sport, p.dst, dport, det_dir(dir), p.payload);
    insp.established = established(f);
    insp.app_proto = app_proto(f.app_proto);
    keep_alerts(det.inspect(&insp))
}

/// Rules that match one app-layer transaction record (`http`, `dns` request, `tls`).
pub(crate) fn transaction_hits(det: &Detector, f: &Flow, e: &Event) -> Vec<Hit> {
    let (client, server) = (f.client, f.server);
    let mut insp = Inspection::new(
        transport(f.proto),
        client,
        f.client_port,
        server,
        f.server_port,
        detect::Direction::ToServer,
        &[],
    );
    insp.established = established(f);
    insp.app_proto = app_proto(f.app_proto);
    let host_lc;
    let headers;
    match e.event_type {
        EventType::Http => {
            let Some(h) = &e.http else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("http");
            insp.http_uri = h.url.as_deref().map(str::as_bytes);
            insp.http_method = h.http_method.as_deref().map(str::as_bytes);
            host_lc = h.hostname.as_deref().map(|s| s.to_ascii_lowercase());
            insp.http_host = host_lc.as_deref().map(str::as_bytes);
            insp.http_user_agent = h.http_user_agent.as_deref().map(str::as_bytes);
            headers = request_headers(e);
            insp.http_headers = headers.as_deref();
        }
        EventType::Dns => {
            let Some(d) = &e.dns else { return Vec::new() };
            if d.kind.as_deref() != Some("request") {
                return Vec::new();
            }
            let Some(q) = d.queries.first().and_then(|q| q.rrname.as_deref()) else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("dns");
            insp.dns_query = Some(q.as_bytes());
            return keep_alerts(det.inspect(&insp));
        }
        EventType::Tls => {
            let Some(t) = &e.tls else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("tls");
            insp.tls_sni = t.sni.as_deref().map(str::as_bytes);
            return keep_alerts(det.inspect(&insp));
        }
        _ => return Vec::new(),
    }
    keep_alerts(det.inspect(&insp))
}

/// Suricata's `http.header` buffer for the request side, from the headers the HTTP record
/// kept (`request_headers` in `extra`, when the parser logged them).
fn request_headers(e: &Event) -> Option<Vec<u8>> {
    let list = e.http.as_ref()?.extra.get("request_headers")?.as_array()?;
    let mut out = Vec::new();
    for h in list {
        let (Some(n), Some(v)) = (h.get("name").and_then(Value::as_str), h.get("value").and_then(Value::as_str)) else {
            continue;
        };
        if n.eq_ignore_ascii_case("cookie") {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// `pass` hits stop inspection; they are not alerts.
fn keep_alerts(hits: Vec<Hit>) -> Vec<Hit> {
    hits.into_iter().filter(|h| h.action != Action::Pass).collect()
}

/// The EVE `alert` payload of a hit. In IDS mode drop/reject rules alert and are marked
/// (`action: "allowed"`, the rule's action kept in `alert.rule_action`).
pub(crate) fn alert_payload(h: &Hit) -> Alert {
    let mut meta = Map::new();
    for (k, vs) in h.metadata.iter() {
        meta.insert(k.clone(), Value::Array(vs.iter().map(|v| Value::String(v.clone())).collect()));
    }
    let mut a = Alert {
        action: Some("allowed".into()),
        gid: Some(h.gid as u64),
        signature_id: Some(h.sid as u64),
        rev: Some(h.rev as u64),
        signature: Some(h.msg.to_string()),
        category: Some(h.category.as_deref().unwrap_or("").to_string()),
        severity: Some(h.severity),
        metadata: (!meta.is_empty()).then_some(meta),
        ..Default::default()
    };
    if h.action != Action::Alert {
        a.extra.insert("rule_action".into(), Value::String(format!("{:?}", h.action).to_ascii_lowercase()));
    }
    a
}

/// An alert record for a hit on a transaction record `tx` (its app-layer object is copied).
pub(crate) fn alert_from_transaction(tx: &Event, h: &Hit) -> Event {
    let mut e = Event::new(EventType::Alert, tx.timestamp);
    e.flow_id = tx.flow_id;
    e.src_ip = tx.src_ip.clone();
    e.src_port = tx.src_port;
    e.dest_ip = tx.dest_ip.clone();
    e.dest_port = tx.dest_port;
    e.proto = tx.proto.clone();
    e.ip_v = tx.ip_v;
    e.community_id = tx.community_id.clone();
    e.sensor = tx.sensor.clone();
    e.segment = tx.segment.clone();
    e.app_proto = Some(tx.event_type.to_string());
    e.http = tx.http.clone();
    e.dns = tx.dns.clone();
    e.tls = tx.tls.clone();
    for k in ["pcap_cnt", "tx_id", "vlan"] {
        if let Some(v) = tx.extra.get(k) {
            e.extra.insert(k.into(), v.clone());
        }
    }
    e.extra.insert("direction".into(), Value::String("to_server".into()));
    e.alert = Some(alert_payload(h));
    e
}

#[cfg(test)]
mod tests {
    use crate::decode::LinkType;
    use crate::detect::{Detector, Vars};
    use crate::synth::{self, Host, TcpSession};
    use crate::{Sensor, SensorOptions};
    use soc_model::{Event, EventType, Timestamp};
    use std::sync::Arc;

    const RULES: &str = r#"
alert http any any -> any any (msg:"uri traversal"; flow:established,to_server; http.uri; content:"../"; sid:1; rev:2;)
alert tcp any any -> any 80 (msg:"raw payload"; flow:to_server; content:"passwd"; sid:2;)
alert dns any any -> any any (msg:"bad domain"; dns.query; content:"evil.example"; endswith; sid:3;)
pass http any any -> any any (msg:"pass allowed host"; http.host; content:"allowed.example"; sid:4;)
"#;

    fn sensor() -> Sensor {
        let (det, errors) = Detector::from_rules(RULES, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        Sensor::new(SensorOptions { sensor_name: "s".into(), segment: "cpnet".into(), ..Default::default() })
            .with_detector(Arc::new(det))
    }

    fn run(sensor: &mut Sensor, frames: Vec<Vec<u8>>) -> Vec<Event> {
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            sensor.process(
                Timestamp::from_unix_micros(1_700_000_000_000_000 + i as i64 * 1000),
                LinkType::Ethernet,
                f,
                &mut out,
            );
        }
        sensor.flush_all(&mut out);
        out
    }

    fn http_frames(host: &str, path: &str) -> Vec<Vec<u8>> {
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 80]), 80);
        let mut f = s.handshake();
        f.push(s.client_send(&synth::http_request("GET", host, path, &[])));
        f.push(s.server_send(&synth::http_response(404, "Not Found", "text/plain", b"no")));
        f.extend(s.close());
        f
    }

    #[test]
    fn transaction_and_packet_hits_become_eve_alerts_with_flow_and_http_metadata() {
        let mut s = sensor();
        let out = run(&mut s, http_frames("portal.example", "/a/../../etc/passwd"));
        let alerts: Vec<&Event> = out.iter().filter(|e| e.event_type == EventType::Alert).collect();
        let sids: Vec<u64> = alerts.iter().filter_map(|a| a.alert.as_ref()?.signature_id).collect();
        assert!(sids.contains(&1) && sids.contains(&2), "{sids:?}");
        let tx = alerts.iter().find(|a| a.alert.as_ref().unwrap().signature_id == Some(1)).unwrap();
        assert_eq!(tx.http.as_ref().unwrap().url.as_deref(), Some("/a/../../etc/passwd"));
        assert_eq!(tx.src_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(tx.alert.as_ref().unwrap().rev, Some(2));
        assert_eq!(tx.segment.as_deref(), Some("cpnet"));
        let flow = out.iter().find(|e| e.event_type == EventType::Flow).unwrap();
        assert_eq!(flow.flow.as_ref().unwrap().alerted, Some(true));
        assert_eq!(tx.flow_id, flow.flow_id);
        assert_eq!(s.stats().records.alert, alerts.len() as u64);
    }

    #[test]
    fn dns_query_rules_match_requests_and_benign_traffic_is_quiet() {
        let mut s = sensor();
        let c = Host::v4([10, 0, 0, 5]);
        let d = Host::v4([10, 0, 0, 53]);
        let q = synth::udp_frame(&c, 40000, &d, 53, &synth::dns_query(7, "www.evil.example", 1));
        let ok = synth::udp_frame(&c, 40001, &d, 53, &synth::dns_query(8, "moha.gov.vn", 1));
        let out = run(&mut s, vec![q, ok]);
        let alerts: Vec<&Event> = out.iter().filter(|e| e.event_type == EventType::Alert).collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].dns.as_ref().unwrap().queries[0].rrname.as_deref(), Some("www.evil.example"));
        let benign = run(&mut sensor(), http_frames("portal.example", "/index.html"));
        assert!(benign.iter().all(|e| e.event_type != EventType::Alert));
    }
}
