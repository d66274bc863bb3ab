use super::*;
use crate::synth::{self, ClientHello, DnsRr, Host, TcpSession, flags};
use serde_json::json;

const T0: i64 = 1_700_000_000_000_000;

fn opts() -> SensorOptions {
    SensorOptions { sensor_name: "s1".into(), segment: "lab".into(), ..Default::default() }
}

/// Runs frames (1 ms apart) through a sensor and flushes.
fn run(frames: Vec<Vec<u8>>) -> Vec<Event> {
    run_with(opts(), frames, true)
}

fn run_with(o: SensorOptions, frames: Vec<Vec<u8>>, flush: bool) -> Vec<Event> {
    let mut s = Sensor::new(o);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        s.process(Timestamp::from_unix_micros(T0 + i as i64 * 1000), LinkType::Ethernet, f, &mut out);
    }
    if flush {
        s.flush_all(&mut out);
    }
    assert!(out.iter().all(|e| e.sensor.as_deref() == Some("s1") && e.segment.as_deref() == Some("lab")));
    out
}

fn of_type<'a>(out: &'a [Event], t: &str) -> Vec<&'a Event> {
    out.iter().filter(|e| e.event_type.as_str() == t).collect()
}

#[test]
fn dns_over_udp_request_response_and_flow() {
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([10, 0, 0, 4]);
    let q = synth::dns_query(14384, "example.org", 1);
    let r = synth::dns_response(
        14384,
        "example.org",
        1,
        0,
        &[DnsRr::A("example.org", "93.184.216.34".parse().unwrap(), 60)],
    );
    let out = run(vec![synth::udp_frame(&c, 64801, &s, 53, &q), synth::udp_frame(&s, 53, &c, 64801, &r)]);
    let dns = of_type(&out, "dns");
    assert_eq!(dns.len(), 2);
    assert_eq!((dns[0].src_ip.as_deref(), dns[0].src_port), (Some("10.0.1.5"), Some(64801)));
    assert_eq!((dns[1].src_ip.as_deref(), dns[1].src_port), (Some("10.0.0.4"), Some(53)));
    assert_eq!(dns[1].dns.as_ref().unwrap().kind.as_deref(), Some("response"));
    assert_eq!(dns[1].dns.as_ref().unwrap().tx_id, Some(1));
    assert_eq!(dns[0].extra["pcap_cnt"], json!(1));
    let flow = of_type(&out, "flow");
    assert_eq!(flow.len(), 1);
    let f = flow[0];
    assert_eq!(f.app_proto.as_deref(), Some("dns"));
    assert_eq!(f.proto.as_deref(), Some("UDP"));
    assert_eq!(f.flow_id, dns[0].flow_id);
    assert_eq!(f.community_id, dns[0].community_id);
    let expect_cid = soc_model::community_id_v1(0, c.ip, s.ip, 17, 64801, 53);
    assert_eq!(f.community_id.as_deref(), Some(expect_cid.as_str()));
    let fl = f.flow.as_ref().unwrap();
    assert_eq!((fl.pkts_toserver, fl.pkts_toclient), (Some(1), Some(1)));
    assert_eq!(fl.bytes_toserver, Some(42 + q.len() as u64));
    assert_eq!(fl.state.as_deref(), Some("established"));
    assert_eq!(fl.reason.as_deref(), Some("shutdown"));
    assert_eq!(fl.extra["tx_cnt"], json!(2));
}

#[test]
fn http_split_across_segments_with_tcp_flow_record() {
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([192, 168, 0, 4]);
    let mut t = TcpSession::new(c, 60997, s, 8080);
    let mut frames = t.handshake();
    let req = synth::http_request("GET", "192.168.0.4:8080", "/m", &[("User-Agent", "Mozilla/5.0")]);
    frames.extend(t.client_send_split(&req, 10));
    let body = vec![b'x'; 5000];
    let resp = synth::http_response(200, "OK", "application/octet-stream", &body);
    frames.extend(t.server_send_split(&resp, 1400));
    frames.extend(t.close());
    let out = run(frames);
    let http = of_type(&out, "http");
    assert_eq!(http.len(), 1);
    let h = http[0].http.as_ref().unwrap();
    assert_eq!(h.hostname.as_deref(), Some("192.168.0.4"));
    assert_eq!(h.http_port, Some(8080));
    assert_eq!(h.url.as_deref(), Some("/m"));
    assert_eq!(h.http_user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.length, Some(5000));
    assert_eq!(h.http_content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(http[0].extra["tx_id"], json!(0));
    assert_eq!(http[0].src_port, Some(60997));
    let flow = of_type(&out, "flow")[0];
    assert_eq!(flow.app_proto.as_deref(), Some("http"));
    let fl = flow.flow.as_ref().unwrap();
    assert_eq!(fl.state.as_deref(), Some("closed"));
    assert_eq!(
        flow.extra["tcp"],
        json!({"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"})
    );
}

#[test]
fn response_captured_before_its_request_is_still_paired() {
    // The request segment shows up in the capture after the response (capture reordering).
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([10, 0, 0, 4]);
    let mut t = TcpSession::new(c, 61093, s, 5985);
    let mut frames = t.handshake();
    let req = t.client_send(&synth::http_request("POST", "newyork:5985", "/wsman", &[("Content-Length", "0")]));
    let resp = t.server_send(&synth::http_response(200, "OK", "text/plain", b"ok"));
    frames.push(resp);
    frames.push(req);
    let out = run(frames);
    let http = of_type(&out, "http");
    assert_eq!(http.len(), 1, "{http:?}");
    let h = http[0].http.as_ref().unwrap();
    assert_eq!((h.url.as_deref(), h.status), (Some("/wsman"), Some(200)));
}

#[test]
fn tls_client_hello_sni_ja3_and_midstream_off() {
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([192, 168, 0, 4]);
    let mut t = TcpSession::new(c, 50000, s, 443);
    let mut frames = t.handshake();
    frames.push(t.client_send(&ClientHello { sni: Some("www.example.org".into()), ..Default::default() }.to_record()));
    let mut sh = synth::tls_server_hello(0x0303, 0xc02f, &[(0xff01, vec![0])], &[]);
    sh.extend_from_slice(&synth::tls_change_cipher_spec());
    frames.push(t.server_send(&sh));
    // The same hello on a flow whose SYN was never seen: no app layer (midstream off).
    let mut m = TcpSession::new(c, 50001, s, 443);
    frames.push(m.client_send(&ClientHello::default().to_record()));
    let out = run(frames.clone());
    let tls = of_type(&out, "tls");
    assert_eq!(tls.len(), 1);
    let t0 = tls[0].tls.as_ref().unwrap();
    assert_eq!(t0.sni.as_deref(), Some("www.example.org"));
    assert_eq!(t0.version.as_deref(), Some("TLS 1.2"));
    assert!(t0.ja3.as_ref().unwrap().hash.as_ref().unwrap().len() == 32);
    assert!(t0.ja4.as_ref().unwrap().starts_with("t12d0504"));
    let flows = of_type(&out, "flow");
    assert_eq!(flows.len(), 2);
    let mid = flows.iter().find(|f| f.src_port == Some(50001)).unwrap();
    assert_eq!(mid.app_proto, None);
    assert_eq!(mid.extra["tcp"], json!({"tcp_flags":"00","tcp_flags_ts":"00","tcp_flags_tc":"00"}));
    // With midstream on, the second flow is parsed too.
    let out = run_with(SensorOptions { midstream: true, ..opts() }, frames, true);
    assert_eq!(of_type(&out, "tls").len(), 2);
}

#[test]
fn decode_errors_become_counted_anomalies() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let f = synth::udp_frame(&c, 1, &s, 2, b"hello");
    let mut s1 = Sensor::new(opts());
    let mut out = Vec::new();
    s1.process(Timestamp::from_unix_micros(T0), LinkType::Ethernet, &f[..f.len() - 2], &mut out);
    assert_eq!(out.len(), 1);
    let a = out[0].anomaly.as_ref().unwrap();
    assert_eq!((a.kind.as_deref(), a.event.as_deref()), (Some("decode"), Some("ipv4.trunc_pkt")));
    let st = s1.stats();
    assert_eq!((st.packets, st.invalid, st.records.anomaly), (1, 1, 1));
    assert_eq!(st.decode_errors_by_name(), vec![("ipv4.trunc_pkt", 1)]);
    // Switched off: counted, not written.
    let mut s2 = Sensor::new(SensorOptions { decode_anomalies: false, ..opts() });
    let mut out = Vec::new();
    s2.process(Timestamp::from_unix_micros(T0), LinkType::Ethernet, &f[..20], &mut out);
    assert!(out.is_empty());
    assert_eq!(s2.stats().invalid, 1);
}

#[test]
fn ip_fragments_are_reassembled_before_the_app_layer() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 53]);
    let q = synth::dns_query(99, "a-rather-long-name.for-fragmentation.example.org", 1);
    let dgram = synth::udp(c.ip, s.ip, 5000, 53, &q);
    let (a, b) = dgram.split_at(24);
    let src = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let dst = std::net::Ipv4Addr::new(10, 0, 0, 53);
    let f1 = synth::ethernet(c.mac, s.mac, 0x0800, &[], &synth::ipv4_frag(src, dst, 17, 4242, 64, 0, true, a));
    let f2 = synth::ethernet(c.mac, s.mac, 0x0800, &[], &synth::ipv4_frag(src, dst, 17, 4242, 64, 24, false, b));
    let out = run(vec![f2, f1]);
    let dns = of_type(&out, "dns");
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].dns.as_ref().unwrap().id, Some(99));
    assert_eq!(dns[0].src_port, Some(5000));
}

#[test]
fn flows_time_out_on_packet_time() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let mut sensor = Sensor::new(opts());
    let mut out = Vec::new();
    let a = synth::udp_frame(&c, 1111, &s, 9999, b"\x00\x01");
    let b = synth::udp_frame(&c, 2222, &s, 9999, b"\x00\x01");
    sensor.process(Timestamp::from_unix_micros(T0), LinkType::Ethernet, &a, &mut out);
    sensor.process(Timestamp::from_unix_micros(T0 + 29_000_000), LinkType::Ethernet, &b, &mut out);
    assert!(of_type(&out, "flow").is_empty());
    sensor.process(Timestamp::from_unix_micros(T0 + 31_000_000), LinkType::Ethernet, &b, &mut out);
    let flows = of_type(&out, "flow");
    assert_eq!(flows.len(), 1);
    let f = flows[0];
    assert_eq!(f.src_port, Some(1111));
    assert_eq!(f.flow.as_ref().unwrap().reason.as_deref(), Some("timeout"));
    assert_eq!(f.flow.as_ref().unwrap().state.as_deref(), Some("new"));
    assert_eq!(f.app_proto.as_deref(), Some("failed"));
    assert_eq!(f.timestamp.unix_micros(), T0 + 31_000_000);
    // Quiet link: tick() advances time.
    sensor.tick(Timestamp::from_unix_micros(T0 + 100_000_000), &mut out);
    assert_eq!(of_type(&out, "flow").len(), 2);
    assert_eq!(sensor.active_flows(), 0);
    let st = sensor.stats();
    assert_eq!((st.flows_created, st.flows_timed_out, st.records.flow), (2, 2, 2));
}

#[test]
fn flow_cap_evictions_are_forced_records() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let frames: Vec<Vec<u8>> = (0..5).map(|i| synth::udp_frame(&c, 1000 + i, &s, 7, b"x")).collect();
    let out = run_with(SensorOptions { max_flows: 2, ..opts() }, frames, true);
    let reasons: Vec<_> =
        of_type(&out, "flow").iter().map(|f| f.flow.as_ref().unwrap().reason.clone().unwrap()).collect();
    assert_eq!(reasons, ["forced", "forced", "forced", "shutdown", "shutdown"]);
}

#[test]
fn tcp_port_reuse_starts_a_new_flow_but_syn_retries_do_not() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let mut t = TcpSession::new(c, 40000, s, 88);
    let mut frames = vec![t.client_segment(flags::SYN, &[])];
    frames.push(t.server_segment(flags::RST | flags::ACK, &[]));
    // Retry with the same ISN: same flow.
    t.cseq = 1000;
    frames.push(t.client_segment(flags::SYN, &[]));
    // A new connection (new ISN) after the close: new flow.
    t.cseq = 90000;
    frames.push(t.client_segment(flags::SYN, &[]));
    let out = run(frames);
    let flows = of_type(&out, "flow");
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].flow.as_ref().unwrap().pkts_toserver, Some(2));
}

#[test]
fn dns_over_tcp_and_vlan_field() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 53]);
    let mut t = TcpSession::new(c, 40000, s, 53).with_vlans(&[10, 20]);
    let mut frames = t.handshake();
    let q = synth::dns_query(5, "example.org", 15);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    frames.extend(t.client_send_split(&framed, 7));
    let out = run(frames);
    let dns = of_type(&out, "dns");
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].dns.as_ref().unwrap().queries[0].rrtype.as_deref(), Some("MX"));
    assert_eq!(dns[0].extra["vlan"], json!([10, 20]));
}

#[test]
fn icmp_flow_fields_and_ipv6() {
    let a = Host::v6("2001:db8::1".parse().unwrap());
    let b = Host::v6("2001:db8::2".parse().unwrap());
    let l = synth::Link::default();
    let frames = vec![
        synth::ip_frame(&a, &b, &l, 58, &synth::icmp_echo(a.ip, b.ip, false, 1, 1, b"x")),
        synth::ip_frame(&b, &a, &l, 58, &synth::icmp_echo(b.ip, a.ip, true, 1, 1, b"x")),
    ];
    let out = run(frames);
    let f = of_type(&out, "flow")[0];
    assert_eq!(f.proto.as_deref(), Some("IPv6-ICMP"));
    assert_eq!(f.ip_v, Some(6));
    assert_eq!(f.src_port, None);
    assert_eq!((f.extra["icmp_type"].clone(), f.extra["response_icmp_type"].clone()), (json!(128), json!(129)));
    assert_eq!(f.community_id.as_deref(), Some(soc_model::community_id_v1(0, a.ip, b.ip, 58, 128, 0).as_str()));
}

#[test]
fn records_serialize_like_eve() {
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([10, 0, 0, 4]);
    let out = run(vec![synth::udp_frame(&c, 64801, &s, 53, &synth::dns_query(1, "x.org", 1))]);
    let line = serde_json::to_string(&out[0]).unwrap();
    assert!(line.starts_with("{\"timestamp\":\"2023-11-14T22:13:20.000000+0000\",\"flow_id\":"), "{line}");
    let back: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(back, out[0]);
}

#[test]
fn mutated_traffic_never_panics_through_the_pipeline() {
    let c = Host::v4([10, 0, 1, 5]);
    let s = Host::v4([10, 0, 0, 4]);
    let mut base = Vec::new();
    let mut t = TcpSession::new(c, 50000, s, 80);
    base.extend(t.handshake());
    base.extend(t.client_send_split(
        &synth::http_request("POST", "h", "/x", &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
        9,
    ));
    base.extend(t.server_send_split(&synth::http_response(200, "OK", "a/b", b"0123456789"), 11));
    let mut u = TcpSession::new(c, 50001, s, 443);
    base.extend(u.handshake());
    base.push(u.client_send(&ClientHello { alpn: vec!["h2".into()], ..Default::default() }.to_record()));
    base.push(u.server_send(&synth::tls_certificate(&[&[0x30, 0x82, 0x01, 0x00, 1, 2, 3]])));
    base.push(synth::udp_frame(&c, 4000, &s, 53, &synth::dns_query(1, "example.org", 16)));
    base.push(synth::udp_frame(
        &s,
        53,
        &c,
        4000,
        &synth::dns_response(1, "example.org", 1, 0, &[DnsRr::Cname("example.org", "x.example.org", 5)]),
    ));
    let mut x = 0x2545f4914f6cdd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut sensor = Sensor::new(SensorOptions { checksum_check: false, midstream: round % 2 == 0, ..opts() });
        let mut out = Vec::new();
        for (i, f) in base.iter().enumerate() {
            let mut f = f.clone();
            // Flip a few bytes past the Ethernet header, sometimes truncate.
            for _ in 0..(rnd() % 4) {
                let at = 14 + (rnd() as usize) % (f.len() - 14);
                f[at] = rnd() as u8;
            }
            if rnd() % 8 == 0 {
                let keep = (rnd() as usize) % f.len();
                f.truncate(keep);
            }
            sensor.process(Timestamp::from_unix_micros(T0 + i as i64), LinkType::Ethernet, &f, &mut out);
        }
        sensor.flush_all(&mut out);
    }
}

#[test]
fn checksum_auto_mode_stops_validating_offloaded_captures_and_keeps_validating_clean_ones() {
    let c = Host::v4([10, 0, 0, 1]);
    let s = Host::v4([10, 0, 0, 2]);
    let good = synth::udp_frame(&c, 40000, &s, 9999, b"payload");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // payload byte changed: the UDP checksum no longer matches
    let auto = SensorOptions { checksum_check: true, checksum_auto: true, ..opts() };

    // Offloaded: every packet bad. After 1,000 packets validation stops and packets count.
    let frames: Vec<Vec<u8>> = (0..1500).map(|_| bad.clone()).collect();
    let out = run_with(auto.clone(), frames, true);
    let anomalies = of_type(&out, "anomaly").len();
    assert_eq!(anomalies, 1000, "only the packets before the decision are invalid");
    let flow = &of_type(&out, "flow")[0];
    assert_eq!(flow.flow.as_ref().unwrap().pkts_toserver, Some(500));

    // Clean capture with a few bad packets: validation stays on.
    let mut frames: Vec<Vec<u8>> = (0..1200).map(|_| good.clone()).collect();
    frames.push(bad.clone());
    let out = run_with(auto, frames, true);
    assert_eq!(of_type(&out, "anomaly").len(), 1);
}

/// Runs frames through a sensor, returns the records and the counters.
fn run_stats(o: SensorOptions, frames: Vec<Vec<u8>>) -> (Vec<Event>, SensorStats) {
    let mut s = Sensor::new(o);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        s.process(Timestamp::from_unix_micros(T0 + i as i64 * 1000), LinkType::Ethernet, f, &mut out);
    }
    s.flush_all(&mut out);
    (out, s.stats())
}

fn http_session(port: u16) -> TcpSession {
    TcpSession::new(Host::v4([10, 0, 1, 5]), port, Host::v4([192, 168, 0, 4]), 80)
}

#[test]
fn a_lost_request_segment_is_a_gap_in_the_counters_and_the_flow_record() {
    let mut t = http_session(50001);
    let mut frames = t.handshake();
    let req = synth::http_request("GET", "example.org", "/a/long/path/to/fill/segments", &[]);
    let mut segs = t.client_send_split(&req, 10);
    segs.remove(1);
    frames.extend(segs);
    // The response acknowledges the whole request, the lost segment too.
    frames.extend(t.server_send_split(&synth::http_response(200, "OK", "text/plain", b"hello"), 1400));
    frames.extend(t.close());
    let (out, st) = run_stats(opts(), frames);
    assert_eq!((st.stream_gaps, st.stream_gap_bytes), (1, 10));
    let flow = of_type(&out, "flow")[0];
    assert_eq!(flow.extra["tcp"]["ts_gap"], json!(true));
    assert!(flow.extra["tcp"].get("tc_gap").is_none());
}

#[test]
fn a_complete_session_has_no_gap_fields() {
    let mut t = http_session(50002);
    let mut frames = t.handshake();
    frames.push(t.client_send(&synth::http_request("GET", "example.org", "/", &[])));
    frames.push(t.server_send(&synth::http_response(200, "OK", "text/plain", b"hello")));
    frames.extend(t.close());
    let (out, st) = run_stats(opts(), frames);
    assert_eq!((st.stream_gaps, st.stream_overlaps, st.stream_memuse), (0, 0, 0));
    let tcp = &of_type(&out, "flow")[0].extra["tcp"];
    assert!(tcp.get("ts_gap").is_none() && tcp.get("tc_gap").is_none(), "{tcp}");
}

#[test]
fn a_retransmission_with_other_bytes_is_counted_and_the_parser_sees_the_first_copy() {
    let mut t = http_session(50003);
    let mut frames = t.handshake();
    let first = synth::http_request("GET", "example.org", "/index.html", &[]);
    let mut other = first.clone();
    let at = other.windows(10).position(|w| w == b"index.html").unwrap();
    other[at..at + 10].copy_from_slice(b"evil.phpXX");
    let seq = t.cseq;
    frames.push(t.client_send(&first));
    t.cseq = seq;
    frames.push(t.client_send(&other));
    frames.push(t.server_send(&synth::http_response(200, "OK", "text/plain", b"hello")));
    frames.extend(t.close());
    let (out, st) = run_stats(opts(), frames);
    assert_eq!((st.stream_overlaps, st.stream_overlap_diff_data), (1, 1));
    let http = of_type(&out, "http");
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].http.as_ref().unwrap().url.as_deref(), Some("/index.html"));
    assert_eq!(st.to_json()["stream"]["overlap_diff_data"], json!(1));
}

#[test]
fn past_the_depth_the_parser_gets_nothing_more_but_the_flow_is_still_counted() {
    let o = SensorOptions { stream: crate::app::stream::StreamConfig { depth: 200, ..Default::default() }, ..opts() };
    let mut t = http_session(50004);
    let mut frames = t.handshake();
    frames.push(t.client_send(&synth::http_request("GET", "example.org", "/first", &[])));
    frames.extend(t.server_send_split(&synth::http_response(200, "OK", "text/plain", &[b'x'; 1000]), 100));
    // The client's direction stays below the depth, the server's is past it: the second
    // request is parsed, its response is not.
    frames.push(t.client_send(&synth::http_request("GET", "example.org", "/second", &[])));
    frames.push(t.server_send(&synth::http_response(404, "Not Found", "text/plain", b"no")));
    frames.extend(t.close());
    let n_frames = frames.len() as u64;
    let (out, st) = run_stats(o, frames);
    assert_eq!(st.stream_depth_reached, 1);
    let http = of_type(&out, "http");
    assert_eq!(http.len(), 2, "both requests are logged");
    assert_eq!(http[0].http.as_ref().unwrap().status, Some(200));
    assert_eq!(http[1].http.as_ref().unwrap().url.as_deref(), Some("/second"));
    assert_eq!(http[1].http.as_ref().unwrap().status, None, "the response after the depth is not parsed");
    let f = of_type(&out, "flow")[0].flow.as_ref().unwrap();
    assert_eq!(f.pkts_toserver.unwrap() + f.pkts_toclient.unwrap(), n_frames);
}

#[test]
fn reaching_the_memcap_drops_queued_segments_as_lost_bytes() {
    let cfg = crate::app::stream::StreamConfig { memcap: 32, overlap_check_bytes: 0, ..Default::default() };
    let o = SensorOptions { stream: cfg, ..opts() };
    let mut t = http_session(50005);
    let mut frames = t.handshake();
    let req = synth::http_request("GET", "example.org", "/a/path/long/enough/for/several/segments", &[]);
    let segs = t.client_send_split(&req, 20);
    assert!(segs.len() >= 4);
    // The second segment is queued (20 bytes), the third would exceed the 32-byte memcap and
    // is dropped; the first fills the hole, the fourth follows the lost third.
    frames.extend([segs[1].clone(), segs[2].clone(), segs[0].clone()]);
    frames.extend(segs[3..].iter().cloned());
    frames.push(t.server_send(&synth::http_response(200, "OK", "text/plain", b"hello")));
    frames.extend(t.close());
    let (out, st) = run_stats(o, frames);
    assert_eq!(st.stream_memcap_drops, 1, "{:?}", st.to_json());
    assert_eq!((st.stream_gaps, st.stream_gap_bytes), (1, 20));
    assert_eq!(st.stream_memuse, 0);
    assert_eq!(of_type(&out, "flow")[0].extra["tcp"]["ts_gap"], json!(true));
}

#[test]
fn packet_alert_max_keeps_the_alerts_of_the_first_rules_in_evaluation_order() {
    let rules = "alert tcp any any -> any any (sid:1;)\nalert tcp any any -> any any (sid:2;)\n\
                 drop tcp any any -> any any (sid:3;)\n";
    let (det, errors) = crate::detect::Detector::from_rules(rules, "t.rules", &crate::detect::Vars::default());
    assert!(errors.is_empty(), "{errors:?}");
    let alert = |sid: u64| {
        let mut e = Event::new(EventType::Alert, Timestamp::from_unix_micros(T0));
        e.alert = Some(soc_model::Alert { gid: Some(1), signature_id: Some(sid), ..Default::default() });
        e
    };
    let mut out =
        vec![alert(2), alert(1), Event::new(EventType::Flow, Timestamp::from_unix_micros(T0)), alert(3), alert(2)];
    // the packet's events start at index 1; the drop rule comes first in evaluation order
    assert_eq!(cap_packet_alerts(&det, 2, &mut out, 1), 1);
    let kept: Vec<Option<u64>> = out.iter().map(|e| e.alert.as_ref().and_then(|a| a.signature_id)).collect();
    assert_eq!(kept, [Some(2), Some(1), None, Some(3)]);
    assert_eq!(cap_packet_alerts(&det, 0, &mut out, 0), 0, "0: no limit");
    assert_eq!(cap_packet_alerts(&det, 2, &mut out, 9), 0, "nothing after the end");
}

#[test]
fn reset_state_lets_a_replay_of_the_same_capture_alert_as_the_first_time() {
    let rules = "alert tcp any any -> any 80 (msg:\"once\"; content:\"GET\"; \
                 threshold:type limit, track by_src, count 1, seconds 3600; sid:7;)\n";
    let (det, errors) = crate::detect::Detector::from_rules(rules, "t.rules", &crate::detect::Vars::default());
    assert!(errors.is_empty(), "{errors:?}");
    let det = std::sync::Arc::new(det);
    let replay = || {
        let mut t = http_session(50002);
        let mut frames = t.handshake();
        frames.extend(t.client_send_split(&synth::http_request("GET", "example.org", "/", &[]), 1400));
        frames.extend(t.close());
        let mut s = Sensor::new(opts()).with_detector(det.clone());
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            s.process(Timestamp::from_unix_micros(T0 + i as i64 * 1000), LinkType::Ethernet, f, &mut out);
        }
        s.flush_all(&mut out);
        of_type(&out, "alert").len()
    };
    assert_eq!(replay(), 1);
    assert_eq!(replay(), 0, "the threshold remembers the first replay");
    det.reset_state();
    assert_eq!(replay(), 1);
}

#[test]
fn urgent_oob_takes_the_urgent_byte_out_of_the_stream_and_shifts_the_later_sequence_numbers() {
    use crate::decode::TcpHdr;
    let hdr = |seq, ack, flags| TcpHdr { sport: 1, dport: 2, seq, ack, flags, window: 0, hlen: 20 };
    let seg = |urgp: u16| {
        let mut s = vec![0u8; 20];
        s[18..20].copy_from_slice(&urgp.to_be_bytes());
        s
    };
    let (urg, ack) = (tcp_flags::URG | tcp_flags::ACK, tcp_flags::ACK);
    let mut removed = [0u32; 2];
    // "X" sent urgent (pointer 1): out of band
    assert_eq!(urgent_oob(&mut removed, 0, hdr(100, 7, urg), &seg(1), b"X"), (100, 7, Some(Vec::new())));
    // the client's next bytes follow on at 100; the server's ACK of 101 acknowledges 100
    assert_eq!(urgent_oob(&mut removed, 0, hdr(101, 7, ack), &seg(0), b"ious"), (100, 7, None));
    assert_eq!(urgent_oob(&mut removed, 1, hdr(7, 105, ack), &seg(0), b""), (7, 104, None));
    // an urgent byte inside the payload; a pointer past the payload or 0 changes nothing
    assert_eq!(urgent_oob(&mut removed, 0, hdr(105, 7, urg), &seg(2), b"abc"), (104, 7, Some(b"ac".to_vec())));
    assert_eq!(urgent_oob(&mut removed, 0, hdr(108, 7, urg), &seg(9), b"abc"), (106, 7, None));
    assert_eq!(urgent_oob(&mut removed, 0, hdr(111, 7, urg), &seg(0), b"abc"), (109, 7, None));
    assert_eq!(removed, [2, 0]);
}

#[test]
fn a_segment_refused_by_the_reassembly_memcap_follows_the_exception_policy() {
    let rules = "alert tcp any any -> any any (content:\"secret\"; sid:1;)\n\
                 alert tcp any any -> any any (content:\"later\"; sid:2;)\n\
                 alert tcp any any -> any any (content:\"secret\"; dsize:6; sid:3;)\n";
    let (det, errors) = crate::detect::Detector::from_rules(rules, "t.rules", &crate::detect::Vars::default());
    assert!(errors.is_empty(), "{errors:?}");
    let det = std::sync::Arc::new(det);
    let sids = |policy: ExceptionPolicy| {
        det.reset_state();
        let mut t = http_session(50003);
        let mut frames = t.handshake();
        frames.push(t.client_send(b"secret"));
        frames.push(t.server_send(b"ok"));
        frames.push(t.client_send(b"later"));
        frames.extend(t.close());
        // packet 4 (the first data) is refused
        let o = SensorOptions { reassembly_memcap_policy: policy, simulate_reassembly_memcap_at: Some(4), ..opts() };
        let mut s = Sensor::new(o).with_detector(det.clone());
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            s.process(Timestamp::from_unix_micros(T0 + i as i64 * 1000), LinkType::Ethernet, f, &mut out);
        }
        s.flush_all(&mut out);
        let mut v: Vec<u64> =
            of_type(&out, "alert").iter().filter_map(|e| e.alert.as_ref().and_then(|a| a.signature_id)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // the refused bytes never reach the stream (sid 1); the packet itself is inspected (sid 3)
    assert_eq!(sids(ExceptionPolicy::Ignore), [2, 3], "ignore: the flow goes on");
    assert_eq!(sids(ExceptionPolicy::PassPacket), [2], "the packet is not inspected, the flow is");
    assert_eq!(sids(ExceptionPolicy::DropFlow), Vec::<u64>::new(), "nothing of the flow is inspected");
    assert_eq!(sids(ExceptionPolicy::Bypass), Vec::<u64>::new());
}

#[test]
fn dcerpc_calls_are_logged_counted_and_make_the_flows_tx_cnt() {
    use crate::app::dcerpc::tests::{bind, bind_ack, request, response};
    let mut t = TcpSession::new(Host::v4([10, 0, 1, 5]), 61013, Host::v4([10, 0, 0, 4]), 135);
    let mut frames = t.handshake();
    frames.push(t.client_send(&bind(0, 3)));
    frames.push(t.server_send(&bind_ack(0)));
    frames.push(t.client_send(&request(3, 0, 4, b"stub", 2)));
    frames.push(t.server_send(&response(b"answer", 2)));
    frames.extend(t.close());
    let (out, stats) = run_stats(opts(), frames);
    let dce = of_type(&out, "dcerpc");
    assert_eq!(dce.len(), 2, "{out:?}");
    let v = serde_json::to_value(dce[1]).unwrap();
    assert_eq!((v["src_port"].as_u64(), v["dest_port"].as_u64()), (Some(61013), Some(135)));
    assert_eq!(v["dcerpc"]["request"], "REQUEST");
    assert_eq!(v["dcerpc"]["req"]["opnum"], 4);
    assert_eq!(v["dcerpc"]["response"], "RESPONSE");
    assert_eq!(dce[0].event_type.kind(), soc_model::Kind::Protocol);
    assert_eq!((stats.records.dcerpc, stats.records.app_logs()), (2, 2));
    assert_eq!(stats.to_json()["records"]["dcerpc"], 2);
    let flow = of_type(&out, "flow")[0];
    assert_eq!(flow.app_proto.as_deref(), Some("dcerpc"));
    assert_eq!(flow.flow.as_ref().unwrap().extra["tx_cnt"], 2);
}

#[test]
fn an_http_body_is_a_fileinfo_record_with_its_transaction() {
    let mut t = http_session(50010);
    let mut frames = t.handshake();
    frames.push(t.client_send(&synth::http_request("GET", "example.org", "/f.bin?x", &[])));
    frames.push(t.server_send(&synth::http_response(200, "OK", "application/octet-stream", b"0123456789")));
    frames.extend(t.close());
    let (out, stats) = run_stats(opts(), frames);
    let files = of_type(&out, "fileinfo");
    assert_eq!(files.len(), 1, "{out:?}");
    let v = serde_json::to_value(files[0]).unwrap();
    assert_eq!(
        v["fileinfo"],
        json!({"filename": "/f.bin", "gaps": false, "state": "CLOSED", "stored": false, "size": 10, "tx_id": 0})
    );
    // the server sent it; the envelope carries the transaction and the protocol
    assert_eq!((v["src_port"].as_u64(), v["app_proto"].as_str()), (Some(80), Some("http")));
    assert_eq!(v["http"]["url"], "/f.bin?x");
    assert_eq!(stats.records.fileinfo, 1);
    // a file is not a transaction of its own
    let flow = of_type(&out, "flow")[0];
    assert_eq!(flow.flow.as_ref().unwrap().extra["tx_cnt"], 1);
}

#[test]
fn cldap_datagrams_are_logged_as_ldap_records_and_count_in_the_flows_tx_cnt() {
    let (c, s) = (Host::v4([10, 0, 1, 5]), Host::v4([10, 0, 0, 4]));
    // searchRequest (id 1, base "", present objectClass, attribute Netlogon), then searchResDone
    let mut req = vec![0x30, 0x2f, 0x02, 0x01, 0x01, 0x63, 0x2a, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00];
    req.extend_from_slice(&[0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00, 0x87, 0x0b]);
    req.extend_from_slice(b"objectClass");
    req.extend_from_slice(&[0x30, 0x0a, 0x04, 0x08]);
    req.extend_from_slice(b"Netlogon");
    let resp = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00];
    let (out, stats) = run_stats(
        opts(),
        vec![synth::udp_frame(&c, 53751, &s, 389, &req), synth::udp_frame(&s, 389, &c, 53751, &resp)],
    );
    let ldap = of_type(&out, "ldap");
    assert_eq!(ldap.len(), 1, "{out:?}");
    let v = serde_json::to_value(ldap[0]).unwrap();
    assert_eq!((v["proto"].as_str(), v["dest_port"].as_u64()), (Some("UDP"), Some(389)));
    assert_eq!(v["ldap"]["request"]["operation"], "search_request");
    assert_eq!(v["ldap"]["request"]["search_request"]["attributes"], json!(["Netlogon"]));
    assert_eq!(v["ldap"]["responses"][0]["operation"], "search_result_done");
    assert_eq!(stats.records.ldap, 1);
    let flow = of_type(&out, "flow")[0];
    assert_eq!(flow.app_proto.as_deref(), Some("ldap"));
    assert_eq!(flow.flow.as_ref().unwrap().extra["tx_cnt"], 1);
}
