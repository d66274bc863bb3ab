//! Malformed input through a real collector into the real broker (`SOC_TEST_KAFKA`): 10,000
//! malformed messages interleaved with 10,000 valid ones over TCP (newline and octet-counting
//! framing), UDP and HTTP. Every valid message arrives on the log topic, every malformed one on
//! the dead-letter topic with its reason and its raw bytes, and the collector's counters (the
//! per-input snapshots and the Prometheus metrics) say the same.
//!
//! What is malformed is precise: RFC 3164 is lenient, so a line without PRI, or a syslog line
//! with invalid UTF-8 (replaced by U+FFFD), is a valid message here. Malformed are: a PRI out of
//! range, not a number or without its `>`; RFC 5424 headers with a bad TIMESTAMP or broken
//! STRUCTURED-DATA; lines that start like JSON and are not JSON (including invalid UTF-8 inside
//! a JSON string); frames longer than `max_line`; octet-counting frames with a broken length.
//!
//! Skips with a visible line when `SOC_TEST_KAFKA` is unset (fails with `SOC_REQUIRE_SERVERS=1`).

mod common;

use base64::Engine;
use soc_bus::Bus;
use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_collector::Collector;
use soc_collector::config::CollectorConfig;
use soc_model::{DeadLetter, Event, Kind};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const TCP_MAX: usize = 1024;
const UDP_MAX: usize = 512;
/// Per newline-framed TCP connection (two of them): this many valid and as many malformed.
const TCP_EACH: usize = 4_000;
/// The octet-counted TCP connection, the UDP input and the HTTP input: this many of each.
const OTHER_EACH: usize = 500;
const OCTET_EACH: usize = 1_000;

/// What a malformed message must become.
#[derive(Debug)]
struct Expect {
    reason: &'static str,
    raw: Vec<u8>,
    source: String,
}

/// The token (`V-...` or `M-...`) that names a message, from its text.
fn token(text: &str, tag: &str) -> Option<String> {
    let at = text.find(tag)?;
    Some(text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect())
}

/// Line `i` of a syslog stream (TCP or UDP): even lines valid, odd lines malformed, each kind
/// in turn. Returns the bytes and, for a malformed one, the reason it must get and the bytes
/// the dead letter must keep (given the input's `max`).
fn syslog_line(tag: &str, i: usize, max: usize) -> (Vec<u8>, Option<(&'static str, Vec<u8>)>) {
    let k = i / 2;
    if i.is_multiple_of(2) {
        let v = format!("V-{tag}-{k}");
        let line: Vec<u8> = match k % 5 {
            0 => format!("<13>Jun 15 10:00:00 host-{tag} app: {v} ok").into_bytes(),
            // No PRI: RFC 3164 is lenient, this is a message.
            1 => format!("Jun 15 10:00:00 host-{tag} app: {v} no pri").into_bytes(),
            2 => format!("<165>1 2024-06-15T10:00:00.123Z host-{tag} app 42 ID7 [ex@32473 a=\"1\"] {v} 5424")
                .into_bytes(),
            // Invalid UTF-8 in a syslog message is replaced, not rejected.
            3 => [format!("<13>Jun 15 10:00:00 host-{tag} app: {v} bytes ").as_bytes(), b"\xff\xfe"].concat(),
            _ => format!("{{\"message\":\"{v} json\",\"host\":\"host-{tag}\"}}").into_bytes(),
        };
        return (line, None);
    }
    let m = format!("M-{tag}-{k}");
    let (line, reason): (Vec<u8>, &'static str) = match k % 8 {
        0 => (format!("<999>Jun 15 10:00:00 host app: {m}").into_bytes(), "invalid syslog PRI: 999 is out of range"),
        1 => {
            (format!("<1x3>Jun 15 10:00:00 host app: {m}").into_bytes(), "invalid syslog PRI: \"1x3\" is not a number")
        }
        2 => (format!("<13 Jun 15 10:00:00 host app: {m}").into_bytes(), "invalid syslog PRI: no closing '>'"),
        3 => {
            (format!("<13>1 yesterday host app - - - {m}").into_bytes(), "invalid RFC 5424 message: invalid TIMESTAMP")
        }
        4 => (
            format!("<13>1 2024-06-15T10:00:00Z host app 1 ID [ex@1 a=\"unterminated {m}").into_bytes(),
            "invalid RFC 5424 message: malformed STRUCTURED-DATA",
        ),
        5 => (format!("{{\"message\": \"{m}\", \"n\": }}").into_bytes(), "invalid JSON"),
        // Invalid UTF-8 inside a JSON string: not JSON (the dead letter keeps it as base64).
        6 => ([format!("{{\"message\":\"{m} ").as_bytes(), b"\xff\"}"].concat(), "invalid JSON"),
        _ => {
            let mut l = format!("<13>Jun 15 10:00:00 host app: {m} ").into_bytes();
            l.resize(max + 300, b'x');
            (l, "exceeds max_line")
        }
    };
    let kept = line[..line.len().min(max)].to_vec();
    (line, Some((reason, kept)))
}

/// Extracts the value of `name{...input="<input>"...}` from a Prometheus text page.
fn metric(page: &str, name: &str, input: &str) -> u64 {
    let label = format!("input=\"{input}\"");
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn http_post(addr: SocketAddr, body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/ingest HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_messages_reach_the_dead_letter_topic_and_valid_ones_the_log_topic() {
    let test = "ten_thousand_malformed_messages_reach_the_dead_letter_topic_and_valid_ones_the_log_topic";
    let Some(brokers) = common::kafka(test) else { return };
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let prefix = common::unique("malformed");
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(KafkaConfig::new(&brokers, &prefix)).unwrap());
    bus.ensure_topics().await.unwrap();
    let mut consumer = bus.subscribe(&common::unique("check"), &[Kind::Log, Kind::DeadLetter]).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CollectorConfig { state_dir: dir.path().to_path_buf(), batch_size: 500, ..Default::default() };
    cfg.flush_interval_ms = 50;
    cfg.inputs.syslog_tcp.address = common::local();
    cfg.inputs.syslog_tcp.max_line = TCP_MAX;
    cfg.inputs.syslog_udp.address = common::local();
    cfg.inputs.syslog_udp.max_line = UDP_MAX;
    cfg.inputs.http.enabled = true;
    cfg.inputs.http.address = common::local();
    cfg.validate("test").unwrap();
    let col = Collector::bind(&cfg).await.unwrap();
    let (tcp, udp, http) = (col.tcp_addr().unwrap(), col.udp_addr().unwrap(), col.http_addr().unwrap());
    let (tcp_stats, udp_stats) = (col.tcp_stats().unwrap(), col.udp_stats().unwrap());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(col.run(bus.clone(), shutdown));

    let mut valid: BTreeMap<String, Option<&'static str>> = BTreeMap::new();
    let mut malformed: BTreeMap<String, Expect> = BTreeMap::new();

    // TCP, newline framing: two connections.
    let mut senders = Vec::new();
    for conn in 0..2 {
        let tag = format!("t{conn}");
        let mut stream = Vec::new();
        for i in 0..2 * TCP_EACH {
            let (line, bad) = syslog_line(&tag, i, TCP_MAX);
            match bad {
                None => {
                    let tok = token(&String::from_utf8_lossy(&line), "V-").unwrap();
                    valid.insert(tok, ((i / 2) % 5 == 3).then_some("\u{fffd}"));
                }
                Some((reason, raw)) => {
                    let tok = token(&String::from_utf8_lossy(&line), "M-").unwrap();
                    malformed.insert(tok, Expect { reason, raw, source: "syslog-tcp 127.0.0.1:".into() });
                }
            }
            stream.extend_from_slice(&line);
            stream.push(b'\n');
        }
        senders.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
            for chunk in stream.chunks(7_919) {
                s.write_all(chunk).await.unwrap();
            }
            s.shutdown().await.unwrap();
        }));
    }
    // TCP, octet counting: valid frames and frames with a broken length header.
    {
        let mut stream = Vec::new();
        for k in 0..OCTET_EACH {
            let v = format!("<13>1 2024-06-15T10:00:00Z host-o app - - - V-o-{k} octet");
            valid.insert(format!("V-o-{k}"), None);
            stream.extend_from_slice(format!("{} {v}", v.len()).as_bytes());
            let m = format!("x{k} <13>Jun 15 10:00:00 host app: M-o-{k}");
            malformed.insert(
                format!("M-o-{k}"),
                Expect {
                    reason: "octet-counting: invalid frame length",
                    raw: m.as_bytes().to_vec(),
                    source: "syslog-tcp 127.0.0.1:".into(),
                },
            );
            stream.extend_from_slice(m.as_bytes());
            stream.push(b'\n');
        }
        senders.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
            s.write_all(&stream).await.unwrap();
            s.shutdown().await.unwrap();
        }));
    }

    // UDP: paced (each burst waits until the collector took the previous one), so the socket
    // buffer never overflows; the kernel-drop counter must stay 0.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..2 * OTHER_EACH {
        let (line, bad) = syslog_line("u", i, UDP_MAX);
        match bad {
            None => {
                valid.insert(
                    token(&String::from_utf8_lossy(&line), "V-").unwrap(),
                    ((i / 2) % 5 == 3).then_some("\u{fffd}"),
                );
            }
            Some((reason, raw)) => {
                let tok = token(&String::from_utf8_lossy(&line), "M-").unwrap();
                // UDP tells an oversized datagram by its length, in the same words.
                malformed.insert(tok, Expect { reason, raw, source: "syslog-udp 127.0.0.1:".into() });
            }
        }
        sock.send_to(&line, udp).await.unwrap();
        if i % 50 == 49 {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while udp_stats.snapshot().received < (i + 1) as u64 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    // HTTP: JSON lines, a malformed line after each valid one.
    for req in 0..10 {
        let mut body = Vec::new();
        for j in 0..OTHER_EACH / 10 {
            let k = req * (OTHER_EACH / 10) + j;
            body.extend_from_slice(format!("{{\"message\":\"V-h-{k} http\"}}\n").as_bytes());
            valid.insert(format!("V-h-{k}"), None);
            let line: Vec<u8> = match k % 2 {
                0 => format!("{{\"message\": \"M-h-{k}\", bad}}").into_bytes(),
                _ => [format!("{{\"message\":\"M-h-{k} ").as_bytes(), b"\xc3\x28\"}"].concat(),
            };
            malformed.insert(
                format!("M-h-{k}"),
                Expect { reason: "invalid JSON: line", raw: line.clone(), source: "http 127.0.0.1:".into() },
            );
            body.extend_from_slice(&line);
            body.push(b'\n');
        }
        let answer = http_post(http, &body).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(&format!("\"accepted\":{}", OTHER_EACH / 10)), "{answer}");
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!((valid.len(), malformed.len()), (10_000, 10_000));

    // Everything arrives once.
    let (mut logs, mut dead): (Vec<Event>, Vec<DeadLetter>) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while (logs.len() < valid.len() || dead.len() < malformed.len()) && tokio::time::Instant::now() < deadline {
        let msgs = consumer.poll(5_000, Duration::from_millis(500)).await.unwrap();
        for m in &msgs {
            match m.kind {
                Kind::Log => logs.push(Event::from_json(&m.payload).unwrap()),
                Kind::DeadLetter => dead.push(serde_json::from_slice(&m.payload).unwrap()),
                k => panic!("unexpected kind {k}"),
            }
        }
        consumer.commit(&msgs).await.unwrap();
    }
    let extra = consumer.poll(5_000, Duration::from_secs(2)).await.unwrap();
    assert!(extra.is_empty(), "{} records beyond the expected ones", extra.len());

    let mut seen_valid = BTreeMap::new();
    for ev in &logs {
        let msg = ev.log.as_ref().and_then(|l| l.message.clone()).unwrap_or_default();
        let tok = token(&msg, "V-").unwrap_or_else(|| panic!("log without a token: {ev:?}"));
        let want = valid.get(&tok).unwrap_or_else(|| panic!("unexpected log {tok}: {msg}"));
        if let Some(s) = want {
            assert!(msg.contains(s), "{tok}: invalid UTF-8 must be replaced in {msg:?}");
        }
        *seen_valid.entry(tok).or_insert(0) += 1;
    }
    let missing: Vec<&String> = valid.keys().filter(|k| !seen_valid.contains_key(*k)).take(10).collect();
    assert!(missing.is_empty(), "valid messages missing from the log topic (first 10): {missing:?}");
    assert!(seen_valid.values().all(|n| *n == 1));
    assert_eq!(logs.len(), valid.len());

    let mut seen_dead = BTreeMap::new();
    for d in &dead {
        let raw = if d.raw_base64 {
            base64::engine::general_purpose::STANDARD.decode(&d.raw).unwrap()
        } else {
            d.raw.as_bytes().to_vec()
        };
        let tok =
            token(&String::from_utf8_lossy(&raw), "M-").unwrap_or_else(|| panic!("dead letter without token: {d:?}"));
        let want = malformed.get(&tok).unwrap_or_else(|| panic!("unexpected dead letter {tok}: {d:?}"));
        assert!(d.reason.contains(want.reason), "{tok}: reason {:?} lacks {:?}", d.reason, want.reason);
        assert_eq!(raw, want.raw, "{tok}: raw bytes");
        assert_eq!(d.raw_base64, std::str::from_utf8(&want.raw).is_err(), "{tok}");
        assert!(d.source.starts_with(&want.source), "{tok}: source {:?}", d.source);
        *seen_dead.entry(tok).or_insert(0) += 1;
    }
    let missing: Vec<&String> = malformed.keys().filter(|k| !seen_dead.contains_key(*k)).take(10).collect();
    assert!(missing.is_empty(), "malformed messages missing from the dead-letter topic (first 10): {missing:?}");
    assert!(seen_dead.values().all(|n| *n == 1));
    assert_eq!(dead.len(), malformed.len());

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // The counters agree with what arrived, per input.
    let want_tcp = (2 * TCP_EACH + OCTET_EACH) as u64;
    let want_other = OTHER_EACH as u64;
    let (t, u, h) = (tcp_stats.snapshot(), udp_stats.snapshot(), soc_collector::ingest::stats().snapshot());
    assert_eq!((t.received, t.parsed, t.dead_lettered, t.dropped), (2 * want_tcp, want_tcp, want_tcp, 0), "{t:?}");
    assert_eq!(
        (u.received, u.parsed, u.dead_lettered, u.dropped),
        (2 * want_other, want_other, want_other, 0),
        "{u:?}"
    );
    assert_eq!(
        (h.received, h.parsed, h.dead_lettered, h.dropped),
        (2 * want_other, want_other, want_other, 0),
        "{h:?}"
    );
    assert_eq!(u.kernel_dropped, 0, "paced UDP must not overflow the socket: {u:?}");
    let page = prometheus.render();
    assert!(page.contains("soc_collector_kernel_dropped_total{input=\"syslog-udp\"} 0"), "{page}");
    for (input, n) in [("syslog-tcp", want_tcp), ("syslog-udp", want_other), ("http", want_other)] {
        assert_eq!(metric(&page, "soc_collector_received_total", input), 2 * n, "{input}\n{page}");
        assert_eq!(metric(&page, "soc_collector_parsed_total", input), n, "{input}\n{page}");
        assert_eq!(metric(&page, "soc_collector_dead_letters_total", input), n, "{input}\n{page}");
        assert_eq!(metric(&page, "soc_collector_dropped_total", input), 0, "{input}\n{page}");
    }
}
