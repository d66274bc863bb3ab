//! Signature inspection: packets and app-layer transactions go through the rule engine
//! ([`crate::detect`]); hits become EVE `alert` records with the flow's identity and the
//! transaction's app-layer metadata, as Suricata writes them.
//!
//! Each transaction is inspected once, when its record is complete (an HTTP request with its
//! response, a DNS query, a TLS handshake), with the buffers the record carries; every packet
//! with a payload is inspected once with its payload (`pkt_data`, `dsize`). Stream
//! inspection over reassembled data comes with the full TCP reassembly.

use crate::app::http::{BODY_LIMIT, TxData};
use crate::app::{AppProto, Direction, Parser};
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
    insp.flow_id = f.id;
    insp.ts_micros = f.last;
    insp.ttl = Some(p.ttl);
    insp.ip_proto = Some(p.proto);
    match p.transport {
        Transport::Tcp(t) => insp.tcp_flags = Some(t.flags),
        Transport::Icmp(h) | Transport::Icmpv6(h) => insp.icmp = Some((h.icmp_type, h.code)),
        _ => {}
    }
    keep_alerts(det.inspect(&insp))
}

/// The headers, start lines and bodies the HTTP parser keeps for a transaction record
/// (`tx_id`), while the flow's parser is alive.
fn http_tx_data<'f>(f: &'f Flow, e: &Event) -> Option<&'f TxData> {
    let id = e.extra.get("tx_id")?.as_u64()?;
    match f.app.as_ref()?.parser.as_ref()? {
        Parser::Http(p) => p.tx_data(id),
        _ => None,
    }
}

type HeaderList<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Reads a decoder to its end or its first error, keeping what it produced, at most
/// [`BODY_LIMIT`] bytes.
fn read_partial(mut r: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < BODY_LIMIT {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(BODY_LIMIT - out.len())]),
        }
    }
    out
}

/// The body as the application sees it: `Content-Encoding` layers (`gzip`/`x-gzip`,
/// `deflate` as zlib or raw deflate) undone in reverse order, as libhtp does for `file.data`.
/// `None` when the body is not encoded (or an encoding is unknown).
fn decoded_body(content_encoding: Option<&[u8]>, body: &[u8]) -> Option<Vec<u8>> {
    let enc = String::from_utf8_lossy(content_encoding?).to_ascii_lowercase();
    let layers: Vec<&str> = enc.split(',').map(str::trim).filter(|l| !l.is_empty() && *l != "identity").collect();
    if layers.is_empty() {
        return None;
    }
    let mut data = body.to_vec();
    for layer in layers.iter().rev() {
        data = match *layer {
            "gzip" | "x-gzip" => read_partial(flate2::read::MultiGzDecoder::new(data.as_slice())),
            "deflate" | "x-deflate" => {
                let z = read_partial(flate2::read::ZlibDecoder::new(data.as_slice()));
                if z.is_empty() { read_partial(flate2::read::DeflateDecoder::new(data.as_slice())) } else { z }
            }
            _ => return None,
        };
    }
    Some(data)
}

fn pairs(l: &[(Vec<u8>, Vec<u8>)]) -> HeaderList<'_> {
    l.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect()
}

fn header<'e>(hs: &[(&'e [u8], &'e [u8])], name: &str) -> Option<&'e [u8]> {
    hs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| *v)
}

/// Buffers of one side of an HTTP transaction that are built from its header list.
struct HttpSide {
    header: Vec<u8>,
    header_raw: Vec<u8>,
    header_names: Vec<u8>,
    start: Vec<u8>,
}

fn http_side(first_line: &[u8], hs: &[(&[u8], &[u8])], dir: detect::Direction) -> HttpSide {
    let header = detect::http_header_buffer(dir, hs.iter().copied());
    let mut header_raw = Vec::new();
    let mut header_names = b"\r\n".to_vec();
    for (n, v) in hs {
        header_raw.extend_from_slice(n);
        header_raw.extend_from_slice(b": ");
        header_raw.extend_from_slice(v);
        header_raw.extend_from_slice(b"\r\n");
        header_names.extend_from_slice(n);
        header_names.extend_from_slice(b"\r\n");
    }
    header_names.extend_from_slice(b"\r\n");
    let mut start = first_line.to_vec();
    start.extend_from_slice(b"\r\n");
    start.extend_from_slice(&header_raw);
    start.extend_from_slice(b"\r\n");
    HttpSide { header, header_raw, header_names, start }
}

/// Inspects the response side of an HTTP transaction, or the server side of a TLS handshake:
/// addresses as a server-to-client packet.
fn to_client<'a>(insp: &Inspection<'a>, other: &'a [(detect::Buffer, &'a [u8])]) -> Inspection<'a> {
    Inspection {
        src_ip: insp.dst_ip,
        src_port: insp.dst_port,
        dst_ip: insp.src_ip,
        dst_port: insp.src_port,
        direction: detect::Direction::ToClient,
        other,
        ..Inspection::new(
            insp.proto,
            insp.dst_ip,
            insp.dst_port,
            insp.src_ip,
            insp.src_port,
            detect::Direction::ToClient,
            &[],
        )
    }
}

/// Rules that match one app-layer transaction record (`http` request and response, `dns`
/// request, `tls` client and server side). Each side is inspected once, with the buffers the
/// record carries.
pub(crate) fn transaction_hits(det: &Detector, f: &Flow, e: &Event) -> Vec<Hit> {
    use detect::Buffer as B;
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
    insp.flow_id = f.id;
    insp.ts_micros = e.timestamp.unix_micros();
    match e.event_type {
        EventType::Http => {
            let Some(h) = &e.http else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("http");
            let data = http_tx_data(f, e);
            let req_h: HeaderList<'_> = data.map(|d| pairs(&d.request_headers)).unwrap_or_default();
            let resp_h: HeaderList<'_> = data.map(|d| pairs(&d.response_headers)).unwrap_or_default();
            let method = h.http_method.as_deref().unwrap_or("");
            let url = h.url.as_deref().unwrap_or("");
            let proto = h.protocol.as_deref().unwrap_or("");
            let request_line = match data {
                Some(d) if !d.request_line.is_empty() => d.request_line.clone(),
                _ => format!("{method} {url} {proto}").into_bytes(),
            };
            let req = http_side(&request_line, &req_h, detect::Direction::ToServer);
            let host_lc = h.hostname.as_deref().map(|s| s.to_ascii_lowercase());
            insp.http_uri = h.url.as_deref().map(str::as_bytes);
            insp.http_method = h.http_method.as_deref().map(str::as_bytes);
            insp.http_host = host_lc.as_deref().map(str::as_bytes);
            insp.http_user_agent = h.http_user_agent.as_deref().map(str::as_bytes);
            insp.http_cookie = header(&req_h, "cookie");
            let have_req_headers = !req_h.is_empty();
            if have_req_headers {
                insp.http_headers = Some(&req.header);
            }
            if let Some(d) = data
                && !d.request_body.is_empty()
            {
                insp.http_request_body = Some(&d.request_body);
            }
            let mut other: Vec<(B, &[u8])> = vec![(B::HttpRequestLine, request_line.as_slice())];
            if let Some(u) = &h.url {
                other.push((B::HttpUriRaw, u.as_bytes()));
            }
            if let Some(x) = &h.hostname {
                other.push((B::HttpHostRaw, x.as_bytes()));
            }
            if !proto.is_empty() {
                other.push((B::HttpProtocol, proto.as_bytes()));
            }
            if have_req_headers {
                other.extend([
                    (B::HttpHeaderRaw, req.header_raw.as_slice()),
                    (B::HttpHeaderNames, req.header_names.as_slice()),
                    (B::HttpStart, req.start.as_slice()),
                ]);
            }
            for (b, name) in [
                (B::HttpReferer, "referer"),
                (B::HttpAccept, "accept"),
                (B::HttpAcceptEnc, "accept-encoding"),
                (B::HttpAcceptLang, "accept-language"),
                (B::HttpConnection, "connection"),
                (B::HttpContentType, "content-type"),
                (B::HttpContentLen, "content-length"),
            ] {
                if let Some(v) = header(&req_h, name) {
                    other.push((b, v));
                }
            }
            if h.http_refer.is_some() && header(&req_h, "referer").is_none() {
                other.push((B::HttpReferer, h.http_refer.as_deref().unwrap_or("").as_bytes()));
            }
            insp.other = &other;
            let mut hits = keep_alerts(det.inspect(&insp));
            // the response side
            let Some(status) = h.status else { return hits };
            let stat = status.to_string();
            let status_line = match data {
                Some(d) if !d.response_line.is_empty() => d.response_line.clone(),
                _ => format!("{proto} {stat}").into_bytes(),
            };
            let resp = http_side(&status_line, &resp_h, detect::Direction::ToClient);
            let mut rother: Vec<(B, &[u8])> = vec![(B::HttpResponseLine, status_line.as_slice())];
            let decoded = data.and_then(|d| decoded_body(header(&resp_h, "content-encoding"), &d.response_body));
            if let Some(d) = data
                && !d.response_body.is_empty()
            {
                let body = decoded.as_deref().unwrap_or(&d.response_body);
                rother.push((B::HttpResponseBody, body));
                rother.push((B::FileData, body));
            }
            if let Some(msg) = status_line.splitn(3, |&c| c == b' ').nth(2) {
                rother.push((B::HttpStatMsg, msg));
            }
            if !proto.is_empty() {
                rother.push((B::HttpProtocol, proto.as_bytes()));
            }
            if !resp_h.is_empty() {
                rother.extend([
                    (B::HttpHeaderRaw, resp.header_raw.as_slice()),
                    (B::HttpHeaderNames, resp.header_names.as_slice()),
                    (B::HttpStart, resp.start.as_slice()),
                ]);
            }
            for (b, name) in [
                (B::HttpLocation, "location"),
                (B::HttpServer, "server"),
                (B::HttpConnection, "connection"),
                (B::HttpContentType, "content-type"),
                (B::HttpContentLen, "content-length"),
            ] {
                if let Some(v) = header(&resp_h, name) {
                    rother.push((b, v));
                }
            }
            if resp_h.is_empty() {
                if let Some(ct) = &h.http_content_type {
                    rother.push((B::HttpContentType, ct.as_bytes()));
                }
                if let Some(loc) = &h.redirect {
                    rother.push((B::HttpLocation, loc.as_bytes()));
                }
            }
            let mut r = to_client(&insp, &rother);
            r.app_proto = insp.app_proto;
            r.established = insp.established;
            r.flow_id = insp.flow_id;
            r.ts_micros = insp.ts_micros;
            r.http_stat_code = Some(stat.as_bytes());
            r.http_cookie = header(&resp_h, "set-cookie");
            if !resp_h.is_empty() {
                r.http_headers = Some(&resp.header);
            }
            hits.extend(keep_alerts(det.inspect(&r)));
            hits
        }
        EventType::Dns => {
            let Some(d) = &e.dns else { return Vec::new() };
            if d.kind.as_deref() != Some("request") {
                return Vec::new();
            }
            let Some(q) = d.queries.first().and_then(|q| q.rrname.as_deref()) else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("dns");
            insp.dns_query = Some(q.as_bytes());
            keep_alerts(det.inspect(&insp))
        }
        EventType::Tls => {
            let Some(t) = &e.tls else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("tls");
            insp.tls_sni = t.sni.as_deref().map(str::as_bytes);
            let mut other: Vec<(B, &[u8])> = Vec::new();
            if let Some(j) = &t.ja3 {
                if let Some(x) = &j.hash {
                    other.push((B::Ja3Hash, x.as_bytes()));
                }
                if let Some(x) = &j.string {
                    other.push((B::Ja3String, x.as_bytes()));
                }
            }
            insp.other = &other;
            let mut hits = keep_alerts(det.inspect(&insp));
            let mut rother: Vec<(B, &[u8])> = Vec::new();
            for (b, v) in [
                (B::TlsCertSubject, &t.subject),
                (B::TlsCertIssuer, &t.issuerdn),
                (B::TlsCertSerial, &t.serial),
                (B::TlsCertFingerprint, &t.fingerprint),
            ] {
                if let Some(v) = v {
                    rother.push((b, v.as_bytes()));
                }
            }
            if let Some(j) = &t.ja3s {
                if let Some(x) = &j.hash {
                    rother.push((B::Ja3sHash, x.as_bytes()));
                }
                if let Some(x) = &j.string {
                    rother.push((B::Ja3sString, x.as_bytes()));
                }
            }
            if !rother.is_empty() {
                let mut r = to_client(&insp, &rother);
                r.app_proto = insp.app_proto;
                r.established = insp.established;
                r.flow_id = insp.flow_id;
                r.ts_micros = insp.ts_micros;
                hits.extend(keep_alerts(det.inspect(&r)));
            }
            hits
        }
        _ => Vec::new(),
    }
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
    if h.direction == detect::Direction::ToClient {
        std::mem::swap(&mut e.src_ip, &mut e.dest_ip);
        std::mem::swap(&mut e.src_port, &mut e.dest_port);
        e.extra.insert("direction".into(), Value::String("to_client".into()));
    } else {
        e.extra.insert("direction".into(), Value::String("to_server".into()));
    }
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
    fn content_encoded_bodies_are_decoded_for_file_data() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"EICAR test body").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"gzip"), &gz).as_deref(), Some(&b"EICAR test body"[..]));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib body").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"deflate"), &z).as_deref(), Some(&b"zlib body"[..]));
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"raw body").unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"Deflate"), &raw).as_deref(), Some(&b"raw body"[..]));
        // truncated: what was decoded so far
        let cut = super::decoded_body(Some(b"gzip"), &gz[..gz.len() - 8]).unwrap();
        assert!(b"EICAR test body".starts_with(&cut));
        assert_eq!(super::decoded_body(None, b"plain"), None);
        assert_eq!(super::decoded_body(Some(b"br"), b"x"), None);
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
