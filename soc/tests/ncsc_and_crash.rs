//! End-to-end, through the `soc run` binary:
//! - demo traffic and logs -> alerts and detections -> incidents -> the NCSC's TAXII 2.1
//!   collection (a real medallion server), with the forwarding audit and the STIX bundle
//!   visible through the dashboard API;
//! - records acknowledged by `POST /api/ingest` survive `kill -9` of the process and are
//!   stored after the restart (the in-process bus journal).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "e2e-admin-password";
/// The test account of the medallion server `deploy/medallion.sh` starts (not a secret).
const NCSC_USER: &str = "soc-test";
const NCSC_PASSWORD: &str = "soc-test-password";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

struct Run {
    child: Child,
    base: String,
    cookie: String,
    csrf: String,
    _lines: mpsc::Receiver<String>,
}

impl Run {
    fn start(args: &[&str], data_dir: &std::path::Path) -> Run {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_soc"))
            .arg("run")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--no-syslog"])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .env("SOC_LOG", "warn")
            .env("SOC_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SOC_NCSC_USER", NCSC_USER)
            .env("SOC_NCSC_PASSWORD", NCSC_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start soc run");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains("is running") => break,
                Ok(_) => {}
                Err(_) => assert!(Instant::now() < deadline, "soc run did not start"),
            }
        }
        let mut r = Run {
            child,
            base: format!("http://127.0.0.1:{port}"),
            cookie: String::new(),
            csrf: String::new(),
            _lines: rx,
        };
        let body = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
        let resp = ureq::post(&format!("{}/api/login", r.base))
            .set("content-type", "application/json")
            .send_string(&body)
            .expect("login");
        let cookie = resp.header("set-cookie").unwrap_or_default().split(';').next().unwrap_or_default().to_string();
        let v: serde_json::Value = resp.into_json().unwrap();
        r.cookie = cookie;
        r.csrf = v["csrf_token"].as_str().unwrap_or_default().to_string();
        r
    }

    fn get(&self, path: &str) -> serde_json::Value {
        ureq::get(&format!("{}{path}", self.base))
            .set("cookie", &self.cookie)
            .timeout(Duration::from_secs(30))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
    }

    /// Polls `path` until `done` accepts the answer.
    fn wait_for(&self, path: &str, secs: u64, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.get(path);
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{path} never satisfied the condition; last answer: {v}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        // (Drop kills the process if this does not end it.)
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "soc run exited with {st}");
                return;
            }
            assert!(Instant::now() < deadline, "soc run did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Run {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn taxii_server(test: &str) -> Option<String> {
    match std::env::var("SOC_TEST_TAXII") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("SOC_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{test}: SOC_TEST_TAXII is not set but SOC_REQUIRE_SERVERS=1");
            }
            eprintln!("SKIPPED {test}: SOC_TEST_TAXII not set (deploy/test.sh starts medallion)");
            None
        }
    }
}

#[test]
fn demo_incidents_reach_the_ncsc_collection_and_their_stix_and_audit_are_served() {
    let test = "demo_incidents_reach_the_ncsc_collection_and_their_stix_and_audit_are_served";
    let Some(collection) = taxii_server(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&["--demo", "--ncsc-url", &collection], dir.path());
    // The demo's attack scenario raises incidents within its first minute.
    let list = run.wait_for("/api/incidents?per_page=100", 90, |v| v["total"].as_u64().unwrap_or(0) >= 2);
    let first = list["items"][0].clone();
    let id = first["incident_id"].as_str().unwrap().to_string();
    // Every incident is forwarded (soc run sends low and above) and confirmed by the server.
    let fwd = run.wait_for("/api/forwarding", 120, |v| {
        v["items"].as_array().is_some_and(|a| {
            a.iter().any(|r| r["forwarding"]["incident_id"] == id.as_str() && r["forwarding"]["state"] == "confirmed")
        })
    });
    let confirmed: Vec<String> = fwd["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["forwarding"]["state"] == "confirmed")
        .map(|r| r["forwarding"]["incident_id"].as_str().unwrap().to_string())
        .collect();
    let detail = run.get(&format!("/api/incidents/{id}"));
    assert!(detail["forwarding"].as_array().is_some_and(|a| a.len() >= 2), "queued and confirmed at least: {detail}");
    // The bundle the dashboard serves is the one the server holds: same incident object id.
    let bundle = run.get(&format!("/api/incidents/{id}/stix"));
    assert_eq!(bundle["type"], "bundle");
    let inc_obj = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "incident")
        .expect("an incident object in the bundle")
        .clone();
    let stix_id = inc_obj["id"].as_str().unwrap();
    let url = format!("{}?match[id]={stix_id}&match[version]=all", collection.trim_end_matches('/').to_string() + "/");
    let auth = format!("Basic {}", base64_encode(format!("{NCSC_USER}:{NCSC_PASSWORD}").as_bytes()));
    let held: serde_json::Value = ureq::get(&url)
        .set("accept", "application/taxii+json;version=2.1")
        .set("authorization", &auth)
        .call()
        .expect("medallion objects")
        .into_json()
        .unwrap();
    let versions = held["objects"].as_array().map(Vec::len).unwrap_or(0);
    assert!(versions >= 1, "the NCSC collection holds incident {stix_id}: {held}");
    // Credentials never reach the API.
    let text = fwd.to_string() + &detail.to_string();
    assert!(!text.contains(NCSC_PASSWORD));
    println!(
        "{} incidents, {} confirmed at the NCSC; {stix_id} has {versions} version(s) there",
        list["total"],
        confirmed.len()
    );
    run.stop();
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn records_acknowledged_by_ingest_survive_kill_9_and_are_stored_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&[], dir.path());
    let n = 20_000usize;
    let body: String = (0..n)
        .map(|i| serde_json::json!({"@timestamp": "2026-11-27T08:00:00Z", "host": "crash-test", "message": format!("line {i}"), "seq": i}).to_string() + "\n")
        .collect();
    let resp = ureq::post(&format!("{}/api/ingest", run.base))
        .set("content-type", "application/x-ndjson")
        .set("cookie", &run.cookie)
        .set("x-csrf-token", &run.csrf)
        .send_string(&body)
        .expect("ingest");
    let v: serde_json::Value = resp.into_json().unwrap();
    assert_eq!(v["accepted"].as_u64(), Some(n as u64), "{v}");
    // Acknowledged means on the bus. Kill the process at once, without a clean stop.
    let mut run = run;
    run.child.kill().expect("kill -9");
    let _ = run.child.wait();
    drop(run);
    let run = Run::start(&[], dir.path());
    let stored = run.wait_for("/api/events?type=log&host=crash-test&limit=1", 120, |_| true);
    drop(stored);
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = loop {
        let v = run.get("/api/stats");
        let logs = v["events_by_type"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["key"] == "log"))
            .and_then(|e| e["count"].as_u64())
            .unwrap_or(0);
        if logs >= n as u64 || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(count, n as u64, "every acknowledged record is stored after the crash, once");
    run.stop();
}
