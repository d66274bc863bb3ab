//! Test helpers: a private medallion (TAXII 2.1 server) per test, on a free loopback port,
//! with the project's persistent backend so it can be restarted; sample incidents; the
//! stix2-validator executable.
#![allow(dead_code)]

use soc_model::{Incident, IncidentAlert, Level, Timestamp};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "soc-forwarder-test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tools_dir() -> Option<PathBuf> {
    std::env::var_os("SOC_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/soc-tools")))
}

fn require_servers() -> bool {
    std::env::var("SOC_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// A tool of the medallion venv (env override first); `None` after a visible SKIPPED line
/// (or a panic when SOC_REQUIRE_SERVERS=1).
fn tool(env: &str, name: &str, test: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| tools_dir().map(|d| d.join("medallion/venv/bin").join(name)))
        .filter(|p| p.is_file());
    if p.is_none() {
        let msg = format!("{test}: {name} not installed (run deploy/medallion.sh install, or set {env})");
        if require_servers() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED {msg}");
    }
    p
}

pub fn validator(test: &str) -> Option<PathBuf> {
    tool("SOC_STIX2_VALIDATOR", "stix2_validator", test)
}

/// A medallion process owned by the test.
pub struct Medallion {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    pub password: String,
    child: Option<Child>,
}

pub const RW: &str = "0d7a6b51-1ad4-4b5e-9d0c-4c1a0b7e2f10";
pub const RO: &str = "5f1e7c7a-8b2d-4c63-a1e4-3d2f0e9b6c21";
pub const SMALL: &str = "9a3c2e14-6f0b-4d8e-b7a5-1c9d8e7f6a32";

impl Medallion {
    pub fn start(test: &str) -> Option<Medallion> {
        let bin = tool("SOC_MEDALLION", "medallion", test)?;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        // A password unique to this run, so tests can look for it in logs and records.
        let password = format!("pw-{}-{}", std::process::id(), port);
        let base = format!("http://127.0.0.1:{port}");
        let data = dir.path().join("data.json");
        let out = Command::new("python3")
            .arg(repo().join("deploy/ncsc/make_data.py"))
            .args([&base, RW, RO, SMALL])
            .output()
            .expect("python3");
        assert!(out.status.success(), "make_data.py: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&data, out.stdout).expect("data file");
        let config = serde_json::json!({
            "backend": {"module": "persistent_backend", "module_class": "PersistentMemoryBackend", "filename": data},
            "users": {USER: password},
            "taxii": {"max_page_size": 100},
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).expect("config");
        let mut m = Medallion { bin, dir, port, password, child: None };
        m.spawn();
        Some(m)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("medallion.log"))
            .expect("log");
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--log-level", "WARN"])
            .arg(self.dir.path().join("config.json"))
            .env("PYTHONPATH", repo().join("deploy/ncsc"))
            // No __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start medallion");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        // A start-up wait (not a measured threshold): give up only if the process died or
        // never listened within a minute.
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("medallion exited ({st}) during start-up:\n{}", self.log());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "medallion did not listen:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("medallion.log")).unwrap_or_default()
    }

    /// Kills the server (SIGKILL: no goodbye) and starts it again on the same data file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn objects_url(&self, collection: &str) -> String {
        let root = if collection == SMALL { "small" } else { "api1" };
        format!("{}/{root}/collections/{collection}/objects/", self.base())
    }
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_790_000_000_000_000 + s * 1_000_000)
}

/// A bare incident: no alerts (a small bundle: identity, marking, incident).
pub fn bare_incident(n: usize) -> Incident {
    Incident {
        incident_id: format!("inc-{n:05}"),
        version: 1,
        title: format!("Test incident {n}"),
        severity: Level::High,
        segments: vec!["ministry".into()],
        alert_count: 1,
        first_seen: Some(ts(n as i64)),
        last_seen: Some(ts(n as i64 + 5)),
        updated: Some(ts(n as i64 + 10)),
        ..Default::default()
    }
}

pub fn alert(n: usize, engine: &str) -> IncidentAlert {
    IncidentAlert {
        id: format!("alert-{n}"),
        timestamp: ts(n as i64),
        engine: engine.into(),
        rule_id: format!("{}", 2_000_000 + n),
        rule_title: format!("Rule {n} seen on dc01 by alice"),
        level: Level::High,
        segment: Some("ministry".into()),
        sensor: Some("s1".into()),
        host: Some("dc01".into()),
        user: Some("alice".into()),
        src_ip: Some("10.0.0.5".into()),
        src_port: Some(49152),
        dest_ip: Some(format!("203.0.113.{}", n % 250 + 1)),
        dest_port: Some(443),
        proto: Some("TCP".into()),
        app_proto: Some("tls".into()),
        flow_id: Some(n as u64),
        community_id: Some("1:abc".into()),
        observables: vec![format!("domain:c2-{n}.example"), "url:http://c2.example/x?a='b'".into()],
        tags: vec!["attack.t1071.001".into(), "attack.command_and_control".into()],
    }
}

/// An incident with alerts of several engines and every observable kind.
pub fn rich_incident(n: usize) -> Incident {
    let mut i = bare_incident(n);
    let mut a = alert(n, "suricata");
    let mut b = alert(n + 1, "sigma");
    b.src_ip = None;
    b.dest_ip = None;
    b.observables = vec![
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
    ];
    let mut c = alert(n + 2, "ioc");
    c.dest_ip = Some("2001:db8::66".into());
    c.src_ip = Some("198.51.100.77".into());
    a.observables.push("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709".into());
    i.alerts = vec![a, b, c];
    i.alert_count = 3;
    i.entities = vec!["host:dc01".into(), "user:alice".into(), "ip:10.0.0.5".into()];
    i.tags = vec!["attack.t1059".into()];
    i
}
