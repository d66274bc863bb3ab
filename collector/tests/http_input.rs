//! The HTTP input with a real client (`curl`): `POST /api/ingest`, the Elasticsearch-compatible
//! `_bulk` (plain and gzip, per-item statuses), the `GET /` a Beats shipper checks, `429` when
//! too many requests are in progress. Skips visibly when `curl` is absent.

mod common;

use common::{bus, collect, ctx};
use serde_json::Value;
use soc_collector::config::{CollectorConfig, HttpConfig};
use soc_collector::{Collector, http::parse_bulk};
use std::io::Write;
use std::process::{Command, Stdio};
use tokio::sync::watch;

fn curl(args: &[&str], body: &[u8]) -> Option<(u16, Value)> {
    let mut child = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--data-binary", "@-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(body).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, serde_json::from_str(json).unwrap_or(Value::Null)))
}

fn have_curl() -> bool {
    Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success())
}

async fn start(
    max_inflight: usize,
) -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<soc_bus::MemoryBus>,
    Box<dyn soc_bus::Consumer>,
) {
    let (bus, c) = bus(100_000).await;
    let mut cfg = CollectorConfig::default();
    cfg.inputs.syslog_udp.enabled = false;
    cfg.inputs.syslog_tcp.enabled = false;
    cfg.inputs.http =
        HttpConfig { enabled: true, address: "127.0.0.1:0".parse().unwrap(), max_inflight, ..HttpConfig::default() };
    let col = Collector::bind(&cfg).await.unwrap();
    let addr = col.http_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let b = bus.clone();
    let task = tokio::spawn(async move { col.run(b, shutdown).await.unwrap() });
    (addr, stop, task, bus, c)
}

const WINLOGBEAT: &str = r#"{"@timestamp":"2024-06-15T03:04:05.000Z","host":{"name":"dc01"},"winlog":{"event_id":4625,"channel":"Security","provider_name":"Microsoft-Windows-Security-Auditing","computer_name":"dc01.corp","event_data":{"TargetUserName":"bob","IpAddress":"10.0.0.9"}},"message":"An account failed to log on."}"#;

#[tokio::test]
async fn bulk_like_elasticsearch_with_per_item_status() {
    if !have_curl() {
        eprintln!("SKIPPED bulk test: curl not found");
        return;
    }
    let (addr, stop, task, _bus, mut c) = start(16).await;
    let base = format!("http://{addr}");
    // What Beats ask first.
    let info = tokio::task::spawn_blocking({
        let u = format!("{base}/");
        move || Command::new("curl").args(["-s", &u]).output().unwrap()
    })
    .await
    .unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert!(info["version"]["number"].as_str().unwrap().starts_with('8'));

    let body = format!(
        "{{\"create\":{{\"_index\":\"winlogbeat-8\"}}}}\n{WINLOGBEAT}\n\
         {{\"index\":{{}}}}\n{{\"message\":\"filebeat line\",\"log\":{{\"file\":{{\"path\":\"/var/log/x\"}}}}}}\n\
         {{\"index\":{{\"_id\":\"abc\"}}}}\n{{not json\n\
         {{\"delete\":{{\"_id\":\"abc\"}}}}\n"
    );
    let url = format!("{base}/logs-default/_bulk");
    let (code, resp) = tokio::task::spawn_blocking(move || {
        curl(&["-H", "Content-Type: application/x-ndjson", &url], body.as_bytes()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["errors"], true);
    let items = resp["items"].as_array().unwrap();
    let statuses: Vec<(String, i64)> = items
        .iter()
        .map(|i| {
            let (op, v) = i.as_object().unwrap().iter().next().unwrap();
            (op.clone(), v["status"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        statuses,
        [("create".into(), 201), ("index".into(), 201), ("index".into(), 400), ("delete".into(), 404)]
    );
    assert_eq!(items[0]["create"]["_index"], "winlogbeat-8");
    assert_eq!(items[1]["index"]["_index"], "logs-default");
    assert_eq!(items[2]["index"]["_id"], "abc");
    assert!(items[2]["index"]["error"]["reason"].as_str().unwrap().contains("invalid JSON"));

    let (evs, dls) = collect(&mut c, 2, 1).await;
    let win = evs.iter().find(|e| e.log.as_ref().unwrap().format.as_deref() == Some("windows")).unwrap();
    let log = win.log.as_ref().unwrap();
    assert_eq!(log.fields["EventID"], 4625);
    assert_eq!(log.fields["TargetUserName"], "bob");
    assert_eq!(log.fields["_index"], "winlogbeat-8");
    assert_eq!(items[0]["create"]["_id"], win.id.clone().unwrap().as_str());
    assert_eq!(dls[0].raw, "{not json");

    // gzip, as Beats send by default.
    let body = format!("{{\"create\":{{}}}}\n{WINLOGBEAT}\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let url = format!("{base}/_bulk");
    let (code, resp) = tokio::task::spawn_blocking(move || {
        curl(&["-H", "Content-Type: application/x-ndjson", "-H", "Content-Encoding: gzip", &url], &gz).unwrap()
    })
    .await
    .unwrap();
    assert_eq!((code, resp["errors"].clone()), (200, Value::Bool(false)), "{resp}");
    collect(&mut c, 1, 0).await;

    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn ingest_takes_arrays_and_json_lines() {
    if !have_curl() {
        eprintln!("SKIPPED ingest test: curl not found");
        return;
    }
    let (addr, stop, task, _bus, mut c) = start(16).await;
    let url = format!("http://{addr}/api/ingest");
    let u = url.clone();
    let (code, resp) = tokio::task::spawn_blocking(move || {
        curl(&["-H", "Content-Type: application/json", &u], br#"[{"message":"a"},{"message":"b"},7]"#).unwrap()
    })
    .await
    .unwrap();
    assert_eq!((code, resp["accepted"].as_i64(), resp["dead_letters"].as_i64()), (200, Some(2), Some(1)));
    let (code, resp) = tokio::task::spawn_blocking(move || {
        curl(&["-H", "Content-Type: text/plain", &url], b"{\"message\":\"c\"}\n<13>Jun 15 10:00:00 h app: d\n").unwrap()
    })
    .await
    .unwrap();
    assert_eq!((code, resp["accepted"].as_i64()), (200, Some(2)));
    let (evs, _) = collect(&mut c, 4, 1).await;
    assert!(evs.iter().all(|e| e.sensor.as_deref() == Some("collector") && e.id.is_some()));
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[test]
fn bulk_bodies_that_cannot_be_paired_stop_with_an_error_item() {
    let ctx = ctx();
    let (out, items) = parse_bulk(
        b"{\"index\":{}}\n{\"message\":\"a\"}\n{\"update\":{}}\n{\"doc\":{}}\n[1]\n{\"message\":\"b\"}\n",
        None,
        "10.0.0.1:5",
        &ctx,
    );
    assert_eq!(out.events.len(), 1);
    let statuses: Vec<u16> = items.iter().map(|i| i.2).collect();
    assert_eq!(statuses, [201, 400, 400]);
    assert_eq!(out.dead_letters.len(), 1);
    assert!(out.dead_letters[0].reason.contains("line 5"), "{}", out.dead_letters[0].reason);
    let (out, items) = parse_bulk(b"{\"create\":{}}\n", Some("i"), "h", &ctx);
    assert!(out.events.is_empty());
    assert_eq!(items[0].2, 400);
}

#[tokio::test]
async fn a_slow_bus_holds_requests_and_extra_ones_get_429() {
    if !have_curl() {
        eprintln!("SKIPPED 429 test: curl not found");
        return;
    }
    let (mem, mut c) = bus(100_000).await;
    let gate = common::GateBus::new(mem, false);
    let mut cfg = CollectorConfig::default();
    cfg.inputs.syslog_udp.enabled = false;
    cfg.inputs.syslog_tcp.enabled = false;
    cfg.inputs.http =
        HttpConfig { enabled: true, address: "127.0.0.1:0".parse().unwrap(), max_inflight: 1, ..HttpConfig::default() };
    let col = Collector::bind(&cfg).await.unwrap();
    let url = format!("http://{}/_bulk", col.http_addr().unwrap());
    let (stop, shutdown) = watch::channel(false);
    let b: std::sync::Arc<dyn soc_bus::Bus> = gate.clone();
    let task = tokio::spawn(async move { col.run(b, shutdown).await.unwrap() });
    let body = format!("{{\"create\":{{}}}}\n{WINLOGBEAT}\n");
    // The first request waits for the bus ...
    let first = tokio::task::spawn_blocking({
        let (u, b) = (url.clone(), body.clone());
        move || curl(&["-H", "Content-Type: application/x-ndjson", &u], b.as_bytes()).unwrap()
    });
    while gate.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // ... so the second is turned away the way Elasticsearch does, to be retried.
    let (code, resp) = tokio::task::spawn_blocking({
        let (u, b) = (url.clone(), body.clone());
        move || curl(&["-H", "Content-Type: application/x-ndjson", &u], b.as_bytes()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!((code, resp["error"]["type"].as_str()), (429, Some("es_rejected_execution_exception")), "{resp}");
    assert!(!first.is_finished());
    gate.open.send(true).unwrap();
    let (code, resp) = first.await.unwrap();
    assert_eq!((code, resp["errors"].as_bool()), (200, Some(false)), "{resp}");
    collect(&mut c, 1, 0).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}
