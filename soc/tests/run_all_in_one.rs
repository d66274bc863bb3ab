//! End-to-end: the `soc run` binary, driven as a user would: demo traffic, syslog over UDP
//! and TCP, JSON over HTTP, the API, Ctrl-C, the summary, and a restart on the same data dir.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{Run, free_port};

/// Event queries of the tests in this file.
trait Events {
    fn events(&self, query: &str) -> Vec<serde_json::Value>;
    fn wait_events(&self, query: &str, min: usize, timeout: Duration) -> Vec<serde_json::Value>;
}

impl Events for Run {
    fn events(&self, query: &str) -> Vec<serde_json::Value> {
        let (code, body) = self.get(&format!("/api/events?{query}"));
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["events"].as_array().cloned().unwrap_or_default()
    }

    fn wait_events(&self, query: &str, min: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let ev = self.events(query);
            if ev.len() >= min {
                return ev;
            }
            assert!(Instant::now() < deadline, "fewer than {min} events for {query} after {timeout:?}: {}", ev.len());
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

#[test]
fn demo_run_serves_flows_logs_and_ingested_records_and_keeps_them_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (api, syslog) = (free_port(), free_port());
    let syslog_addr = format!("127.0.0.1:{syslog}");
    let run = Run::start(&["--demo", "--data-dir", &data, "--syslog", &syslog_addr], api);

    // Demo traffic becomes flows, app-layer records and logs on both segments.
    let flows = run.wait_events("type=flow&limit=50", 1, Duration::from_secs(90));
    assert!(flows.iter().all(|f| f["flow"]["pkts_toserver"].as_u64().is_some()), "{flows:?}");
    run.wait_events("type=dns&limit=5", 1, Duration::from_secs(30));
    run.wait_events("type=http&limit=5", 1, Duration::from_secs(30));
    run.wait_events("type=log&segment=ministry&limit=5", 1, Duration::from_secs(30));
    run.wait_events("segment=cpnet&limit=5", 1, Duration::from_secs(30));
    // The attack scenario raises signature alerts (sensor) and Sigma detections (correlator).
    let alerts = run.wait_events("type=alert&limit=50", 2, Duration::from_secs(30));
    assert!(
        alerts.iter().all(|a| a["alert"]["signature_id"].as_u64().is_some() && a["flow_id"].as_u64().is_some()),
        "{alerts:?}"
    );
    let det = run.wait_events("type=detection&limit=50", 2, Duration::from_secs(30));
    assert!(det.iter().any(|d| d["detection"]["rule_title"].as_str().unwrap_or("").contains("Encoded")), "{det:?}");

    // Syslog over UDP and TCP.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<34>Oct 11 22:14:15 e2e-udp-host su: 'su root' failed for lonvick on /dev/pts/8", &syslog_addr)
        .unwrap();
    let mut tcp = TcpStream::connect(&syslog_addr).unwrap();
    tcp.write_all(b"<165>1 2026-11-27T10:00:00.000+07:00 e2e-tcp-host sshd 4242 ID47 - Failed password for root from 203.0.113.9 port 4242 ssh2\n").unwrap();
    tcp.flush().unwrap();
    drop(tcp);
    let u = run.wait_events("type=log&host=e2e-udp-host", 1, Duration::from_secs(30));
    assert_eq!(u[0]["log"]["program"], "su", "{u:?}");
    let t = run.wait_events("type=log&host=e2e-tcp-host", 1, Duration::from_secs(30));
    assert_eq!(t[0]["log"]["program"], "sshd", "{t:?}");

    // JSON over HTTP: a Windows event in the evtx shape, plus a malformed line.
    let body = concat!(
        r##"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"e2e-win-host","Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"TimeCreated":{"#attributes":{"SystemTime":"2026-11-27T03:00:00.000000Z"}}},"EventData":{"Image":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /all"}}}"##,
        "\n{broken\n"
    );
    let r = ureq::post(&format!("{}/api/ingest", run.base))
        .set("content-type", "application/x-ndjson")
        .send_string(body)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["dead_letters"], 1, "{v}");
    let w = run.wait_events("type=log&host=e2e-win-host", 1, Duration::from_secs(30));
    assert_eq!(w[0]["log"]["fields"]["EventID"], 1, "{w:?}");
    assert_eq!(w[0]["log"]["fields"]["Image"], "C:\\Windows\\System32\\whoami.exe");
    run.wait_events("type=dead_letter", 1, Duration::from_secs(30));

    // The rest of the API.
    let (code, stats) = run.get("/api/stats");
    assert_eq!(code, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["total"].as_u64().unwrap() > 0);
    assert_eq!(run.get("/api/events?limit=0").0, 400);
    assert_eq!(run.get("/api/events?since=someday").0, 400);
    assert_eq!(run.get("/api/nope").0, 404);
    let anonymous = ureq::get(&format!("{}/api/events", run.base)).call();
    assert!(matches!(anonymous, Err(ureq::Error::Status(401, _))), "without a session: 401");
    assert_eq!(run.get("/healthz").0, 200);
    assert_eq!(run.get("/readyz").0, 200);
    let (_, metrics) = run.get("/metrics");
    assert!(metrics.contains("soc_correlator_stored_total"), "{metrics}");

    // Ctrl-C: flush, summary, exit 0.
    let (ok, lines) = run.interrupt_and_wait();
    assert!(ok, "soc run did not exit 0: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("Summary")), "{lines:?}");

    // What was accepted survives a process restart.
    let api2 = free_port();
    let run2 = Run::start(&["--data-dir", &data, "--no-syslog"], api2);
    assert_eq!(run2.events("type=log&host=e2e-tcp-host").len(), 1);
    assert_eq!(run2.events("type=log&host=e2e-win-host").len(), 1);
    let (ok, _) = run2.interrupt_and_wait();
    assert!(ok);
}

#[test]
fn duration_flag_exits_zero_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["run", "--demo", "--duration", "3", "--no-syslog", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .env("SOC_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let stored = stdout.lines().find(|l| l.contains("stored (total)")).unwrap_or_else(|| panic!("{stdout}"));
    let n: u64 = stored.split_whitespace().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!(n > 0, "{stdout}");
}

#[test]
fn busy_port_is_reported_clearly() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["run", "--duration", "1", "--no-syslog", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("--listen"), "{err}");
}

#[test]
fn every_subcommand_explains_its_flags() {
    for sub in ["run", "sensor", "collector", "correlator", "dashboard", "forwarder", "rules"] {
        let out = Command::new(env!("CARGO_BIN_EXE_soc")).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: soc"), "{sub}: {text}");
    }
    // A daemon without its config says which flag and which example to use.
    let out = Command::new(env!("CARGO_BIN_EXE_soc")).args(["forwarder"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--config") && err.contains("deploy/config/forwarder.toml"), "{err}");
}

#[test]
fn sensor_reads_a_pcap_and_writes_eve_with_alerts_like_suricata_r() {
    use soc_sensor::synth::{self, Host, TcpSession};
    let dir = tempfile::tempdir().unwrap();
    let mut s = TcpSession::new(Host::v4([10, 1, 1, 5]), 50000, Host::v4([10, 1, 1, 80]), 80);
    let mut frames = s.handshake();
    frames.push(s.client_send(&synth::http_request(
        "GET",
        "portal",
        "/x?f=../../etc/passwd",
        &[("User-Agent", "sqlmap/1.7")],
    )));
    frames.push(s.server_send(&synth::http_response(404, "Not Found", "text/plain", b"no")));
    frames.extend(s.close());
    let timed: Vec<(i64, Vec<u8>)> =
        frames.into_iter().enumerate().map(|(i, f)| (1_700_000_000_000_000 + i as i64 * 1000, f)).collect();
    let pcap = dir.path().join("t.pcap");
    std::fs::write(&pcap, synth::pcap_bytes(1, &timed)).unwrap();
    let eve = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["sensor", "--pcap", pcap.to_str().unwrap(), "--eve", eve.to_str().unwrap(), "--segment", "cpnet"])
        .args(["--rules", std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/suricata").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&eve).unwrap();
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = recs.iter().filter_map(|r| r["event_type"].as_str()).collect();
    assert!(types.contains(&"flow") && types.contains(&"http") && types.contains(&"alert"), "{types:?}");
    assert!(recs.iter().all(|r| r["segment"] == "cpnet"));
    let sids: Vec<u64> = recs.iter().filter_map(|r| r["alert"]["signature_id"].as_u64()).collect();
    assert!(sids.contains(&9000003) && sids.contains(&9000006), "{sids:?}");

    // A file that is not a capture is a clear error, not a panic.
    let bogus = dir.path().join("bogus.pcap");
    std::fs::write(&bogus, b"this is not a pcap").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["sensor", "--pcap", bogus.to_str().unwrap(), "--eve", "-"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus.pcap"));
}

#[test]
fn rules_check_reports_rejected_rules_with_file_line_and_keyword() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("local.rules");
    std::fs::write(&f, "alert tcp any any -> any any (msg:\"ok\"; content:\"a\"; sid:1;)\nalert tcp any any -> any any (msg:\"x\"; byte_frobnicate:1; sid:2;)\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["rules", "check", "--format", "json", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["suricata"]["loaded"], 1);
    assert_eq!(v["suricata"]["rejected"], 1);
    assert_eq!(v["suricata"]["errors"][0]["line"], 2);
    assert_eq!(v["suricata"]["errors"][0]["keyword"], "byte_frobnicate");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let out =
        Command::new(env!("CARGO_BIN_EXE_soc")).args(["rules", "check", root.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // The project's tree: processing pipelines are checked as pipelines, not as Sigma rules.
    let out = Command::new(env!("CARGO_BIN_EXE_soc"))
        .args(["rules", "check", "--format", "json", root.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pipeline_files = std::fs::read_dir(root.join("pipelines"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yml"))
        .count();
    assert!(pipeline_files > 0);
    assert_eq!(v["sigma"]["pipeline_files"], pipeline_files);
    assert_eq!(v["sigma"]["rejected"], 0, "{v}");
}
