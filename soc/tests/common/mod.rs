//! A `soc run` process driven as a user would, shared by the end-to-end tests.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// The admin password `soc run` creates its `admin` account with (`SOC_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

pub struct Run {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub base: String,
    seen: Vec<String>,
    /// `soc_session=...` after logging in as admin.
    pub cookie: String,
    /// The session's CSRF token (for writes).
    pub csrf: String,
}

impl Run {
    /// Starts `soc run ARGS --listen 127.0.0.1:API`, waits until it serves and logs in.
    pub fn start(args: &[&str], api: u16) -> Run {
        Self::start_with(args, api, &[])
    }

    /// Like [`Run::start`] with extra environment variables.
    pub fn start_with(args: &[&str], api: u16, env: &[(&str, &str)]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_soc"))
            .arg("run")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .env("SOC_LOG", "warn")
            .env("SOC_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().copied())
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
        let mut r = Run {
            child,
            lines: rx,
            base: format!("http://127.0.0.1:{api}"),
            seen: vec![],
            cookie: String::new(),
            csrf: String::new(),
        };
        r.wait_line("is running", Duration::from_secs(60));
        r.login();
        r
    }

    /// Logs in as admin (`POST /api/login`) and keeps the session cookie and CSRF token.
    fn login(&mut self) {
        let body = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
        let r = ureq::post(&format!("{}/api/login", self.base))
            .set("content-type", "application/json")
            .timeout(Duration::from_secs(10))
            .send_string(&body)
            .expect("login as admin");
        let set = r.header("set-cookie").expect("session cookie").to_string();
        self.cookie = set.split(';').next().unwrap_or_default().to_string();
        assert!(self.cookie.starts_with("soc_session="), "{set}");
        let v: serde_json::Value = r.into_json().expect("login answer");
        self.csrf = v["csrf_token"].as_str().unwrap_or_default().to_string();
    }

    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    println!("soc> {l}");
                    self.seen.push(l)
                }
                Err(_) => panic!("no line containing {needle:?} within {timeout:?}; saw {:?}", self.seen),
            }
        }
    }

    /// `GET path` with the session: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let req = ureq::get(&format!("{}{path}", self.base)).timeout(Duration::from_secs(30));
        match req.set("cookie", &self.cookie).call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Polls `path` until `done` accepts the answer.
    pub fn wait_for(&self, path: &str, secs: u64, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.json(path);
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{path} never satisfied the condition; last answer: {v}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Ctrl-C, then waits: whether it exited 0, and every line it printed.
    pub fn interrupt_and_wait(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            println!("soc> {l}");
            self.seen.push(l);
        }
        (status.success(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Run {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
