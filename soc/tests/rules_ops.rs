//! Rule operations as an analyst runs them: `soc rules test` over a capture, rule files that
//! load dataset files next to them, `soc sensor --midstream`, and rule reload on SIGHUP
//! while a sensor reads a capture stream.

use base64::Engine as _;
use soc_sensor::synth::{self, Host, TcpSession};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000_000;

fn soc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_soc"));
    c.env("SOC_LOG", "warn");
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// DNS queries for a bad and a good name, and an HTTP session whose request carries "attack".
fn capture() -> Vec<(i64, Vec<u8>)> {
    let c = Host::v4([10, 0, 0, 5]);
    let dns = Host::v4([10, 0, 0, 53]);
    let mut frames = vec![
        synth::udp_frame(&c, 40001, &dns, 53, &synth::dns_query(1, "evil.example", 1)),
        synth::udp_frame(&c, 40002, &dns, 53, &synth::dns_query(2, "good.example", 1)),
        synth::udp_frame(&c, 40003, &dns, 53, &synth::dns_query(3, "evil.example", 1)),
    ];
    let mut s = TcpSession::new(c, 51000, Host::v4([192, 0, 2, 80]), 80);
    frames.extend(s.handshake());
    frames.push(s.client_send(&synth::http_request("GET", "shop.example", "/attack?id=1", &[])));
    frames.push(s.server_send(&synth::http_response(200, "OK", "text/plain", b"fine")));
    frames.extend(s.close());
    synth::timed(frames, T0, 10_000)
}

/// `dir/rules/local.rules` with a dataset file beside it (`bad.csv`), and the capture.
fn workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/local.rules"),
        "alert dns any any -> any any (msg:\"bad domain\"; dns.query; dataset:isset,bad_domains,type string,load bad.csv; sid:1000001;)\n\
         alert http any any -> any any (msg:\"attack in uri\"; http.uri; content:\"attack\"; sid:1000002;)\n\
         alert tcp any any -> any any (msg:\"never\"; content:\"no such bytes\"; sid:1000003;)\n",
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode("evil.example");
    std::fs::write(dir.join("rules/bad.csv"), format!("{b64}\n")).unwrap();
    std::fs::write(dir.join("traffic.pcap"), synth::pcap_bytes(1, &capture())).unwrap();
}

/// `soc rules test` run in `dir` with relative paths (the dataset file is found next to the
/// rule file, not in the working directory).
fn rules_test(dir: &Path, expect: &str, extra: &[&str]) -> Output {
    std::fs::write(dir.join("expect.txt"), expect).unwrap();
    soc()
        .current_dir(dir)
        .args(["rules", "test", "--rules", "rules/local.rules", "--pcap", "traffic.pcap", "--expect", "expect.txt"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn rules_test_passes_when_alert_counts_match_the_expectations() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let out = rules_test(dir.path(), "# the bad domain twice\n1000001 2\n1000002 >=1\n1000003 0\n", &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("all 3 checks passed"), "{t}");
    let row = t.lines().find(|l| l.contains("1000001")).unwrap();
    assert!(row.contains(" ok ") && row.contains("bad domain"), "{row}");
    // the same as JSON
    let out = rules_test(dir.path(), "1000001 2\n1000002 1\n", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["rules_loaded"], 3);
    assert_eq!(v["packets"], capture().len());
    assert_eq!(v["checks"][0]["sid"], 1000001);
    assert_eq!(v["checks"][0]["got"], 2);
}

#[test]
fn rules_test_fails_with_exit_1_on_a_wrong_count_or_an_unlisted_alert() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let out = rules_test(dir.path(), "1000001 1\n1000002 1\n", &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let row = t.lines().find(|l| l.contains("1000001")).unwrap();
    assert!(row.contains("FAIL"), "{row}");
    assert!(t.contains("1 of 2 checks FAILED"), "{t}");
    // sid 1000002 alerts but is not listed
    let out = rules_test(dir.path(), "1000001 2\n", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], false);
    let unlisted = v["checks"].as_array().unwrap().iter().find(|c| c["sid"] == 1000002).unwrap();
    assert_eq!((unlisted["listed"].as_bool(), unlisted["ok"].as_bool()), (Some(false), Some(false)));
    // an expected alert that never comes
    let out = rules_test(dir.path(), "1000001 2\n1000002 1\n1000003 >=1\n", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn rules_test_rejects_a_malformed_expectations_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let out = rules_test(dir.path(), "1000001 2\n1000002 some\n", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expect.txt:2:"), "{}", text(&out));
}

#[test]
fn rules_test_writes_expectations_that_the_next_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let out = rules_test(dir.path(), "", &["--write-expect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("expect.txt")).unwrap();
    let lines: Vec<&str> = written.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["1000001 2  # bad domain", "1000002 1  # attack in uri"]);
    let out = soc()
        .current_dir(dir.path())
        .args(["rules", "test", "--rules", "rules", "--pcap", "traffic.pcap", "--expect", "expect.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_threshold_config_beside_the_rule_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    std::fs::write(dir.path().join("rules/threshold.config"), "suppress gen_id 1, sig_id 1000002\n").unwrap();
    let out = rules_test(dir.path(), "1000001 2\n1000002 0\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // a bad line of it is reported with its file and line
    std::fs::write(dir.path().join("rules/threshold.config"), "suppress gen_id 1\nsuppress nonsense\n").unwrap();
    let out = soc().current_dir(dir.path()).args(["rules", "check", "rules"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("threshold.config:"), "{}", text(&out));
}

#[test]
fn dataset_files_are_resolved_next_to_the_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    // relative rule path from the parent directory: bad.csv is not in the working directory
    let out = soc().current_dir(dir.path()).args(["rules", "check", "rules/local.rules"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dir.path().join("bad.csv").exists());
    // the sensor finds it too and alerts on both queries
    let eve = dir.path().join("eve.json");
    let out = soc()
        .current_dir(dir.path())
        .args(["sensor", "--pcap", "traffic.pcap", "--rules", "rules/local.rules", "--eve", "eve.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(alert_sids(&eve).iter().filter(|&&s| s == 1000001).count(), 2);
    // a dataset file that is missing is reported at the rule's line
    std::fs::remove_file(dir.path().join("rules/bad.csv")).unwrap();
    let out = soc()
        .current_dir(dir.path())
        .args(["rules", "check", "--format", "json", "rules/local.rules"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["suricata"]["errors"][0]["line"], 1);
    assert!(v["suricata"]["errors"][0]["reason"].as_str().unwrap().contains("bad.csv"), "{v}");
}

#[test]
fn rules_check_lists_duplicate_sids_and_rejections_per_keyword_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dup.rules");
    std::fs::write(
        &f,
        "alert tcp any any -> any any (msg:\"a\"; content:\"a\"; sid:5; rev:1;)\n\
         alert tcp any any -> any any (msg:\"b\"; content:\"b\"; sid:5; rev:2;)\n\
         alert tcp any any -> any any (msg:\"c\"; byte_frobnicate:1; sid:6;)\n\
         alert tcp any any -> any any (msg:\"d\"; flowbits:isset,never_set; sid:7;)\n",
    )
    .unwrap();
    let out = soc().args(["rules", "check", "--format", "json", f.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["suricata"];
    assert_eq!(s["loaded"], 2, "{s}");
    assert_eq!(s["duplicate_sids"], 1);
    assert_eq!(s["duplicates"][0]["sid"], 5);
    assert_eq!(s["duplicates"][0]["line"], 1, "the lower rev is dropped: {s}");
    assert_eq!(s["duplicates"][0]["kept_line"], 2, "{s}");
    let kw: Vec<&str> =
        s["rejected_per_keyword"].as_array().unwrap().iter().filter_map(|k| k["keyword"].as_str()).collect();
    assert!(kw.contains(&"byte_frobnicate"), "{s}");
    assert_eq!(s["flowbits_checked_never_set"][0]["flowbit"], "never_set");
    let out = soc().args(["rules", "check", f.to_str().unwrap()]).output().unwrap();
    let t = text(&out);
    assert!(t.contains("duplicate sids: 1"), "{t}");
    assert!(t.contains("sid 5 (gid 1): dup.rules:1") || t.contains("dup.rules:1"), "{t}");
    assert!(t.contains("rules per keyword:") && t.contains("byte_frobnicate"), "{t}");
    assert!(t.contains("never_set"), "{t}");
}

/// Signature ids of the alerts in an EVE file.
fn alert_sids(eve: &Path) -> Vec<u64> {
    eve_lines(eve)
        .iter()
        .filter(|v| v["event_type"] == "alert")
        .filter_map(|v| v["alert"]["signature_id"].as_u64())
        .collect()
}

fn eve_lines(eve: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(eve).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// An HTTP exchange on a TCP session whose handshake is not in the capture.
fn midstream_capture() -> Vec<u8> {
    let mut s = TcpSession::new(Host::v4([10, 0, 0, 7]), 52000, Host::v4([192, 0, 2, 8]), 80);
    s.handshake(); // happened before the capture started
    let frames = vec![
        s.client_send(&synth::http_request("GET", "mid.example", "/already-open", &[])),
        s.server_send(&synth::http_response(200, "OK", "text/plain", b"hello")),
    ];
    synth::pcap_bytes(1, &synth::timed(frames, T0, 1000))
}

/// `soc sensor --pcap PCAP --eve EVE EXTRA...`: its output and the EVE path.
fn sensor_on(pcap: &Path, eve: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let out = soc()
        .args(["sensor", "--pcap", pcap.to_str().unwrap(), "--eve", eve.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (out, eve.to_path_buf())
}

fn http_records(eve: &Path) -> usize {
    eve_lines(eve).iter().filter(|v| v["event_type"] == "http").count()
}

#[test]
fn midstream_sessions_get_app_layer_records_only_with_the_flag_or_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("mid.pcap");
    std::fs::write(&pcap, midstream_capture()).unwrap();
    let run = |name: &str, extra: &[&str]| {
        let (out, eve) = sensor_on(&pcap, &dir.path().join(name), extra);
        assert!(out.status.success(), "{}", text(&out));
        eve
    };
    let without = run("without.json", &[]);
    assert_eq!(http_records(&without), 0);
    assert!(eve_lines(&without).iter().any(|v| v["event_type"] == "flow"));
    let with = run("with.json", &["--midstream"]);
    assert_eq!(http_records(&with), 1);
    let rec = eve_lines(&with).into_iter().find(|v| v["event_type"] == "http").unwrap();
    assert_eq!(rec["http"]["url"], "/already-open");
    // `[sensor] midstream = true` in the config does the same
    let cfg = dir.path().join("sensor.toml");
    let out_cfg = format!("[output]\neve = {:?}\n", dir.path().join("unused.json").to_str().unwrap());
    std::fs::write(&cfg, format!("[sensor]\nname = \"s1\"\nsegment = \"lab\"\nmidstream = true\n{out_cfg}")).unwrap();
    let by_config = run("config.json", &["--config", cfg.to_str().unwrap()]);
    assert_eq!(http_records(&by_config), 1);
    std::fs::write(&cfg, format!("[sensor]\nname = \"s1\"\nsegment = \"lab\"\n{out_cfg}")).unwrap();
    let by_config = run("config-off.json", &["--config", cfg.to_str().unwrap()]);
    assert_eq!(http_records(&by_config), 0);
}

#[test]
fn a_bpf_filter_from_the_flag_or_config_keeps_refused_packets_out_and_a_bad_one_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("mid.pcap");
    std::fs::write(&pcap, midstream_capture()).unwrap();
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["--midstream"];
        args.extend_from_slice(extra);
        sensor_on(&pcap, &dir.path().join(name), &args)
    };
    let (out, kept) = run("kept.json", &["--bpf", "tcp and port 80"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(http_records(&kept), 1);
    let (out, refused) = run("refused.json", &["--bpf", "not host 192.0.2.8"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(eve_lines(&refused).len(), 0, "every packet of the capture goes to 192.0.2.8");
    let cfg = dir.path().join("sensor.toml");
    let out_cfg = format!("[output]\neve = {:?}\n", dir.path().join("unused.json").to_str().unwrap());
    std::fs::write(&cfg, format!("[sensor]\nname = \"s1\"\nsegment = \"lab\"\nbpf = \"port 443\"\n{out_cfg}")).unwrap();
    let (out, by_config) = run("config.json", &["--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(eve_lines(&by_config).len(), 0);
    let (out, _) = run("bad.json", &["--bpf", "port banana"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--bpf"), "{}", text(&out));
}

/// A `soc sensor --pcap -` process fed through its standard input, its stderr lines
/// collected.
struct StreamSensor {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl StreamSensor {
    fn start(rules: &Path, eve: &Path, workers: &str) -> StreamSensor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_soc"))
            .args(["--log-format", "json", "sensor", "--pcap", "-", "--workers", workers])
            .args(["--rules", rules.to_str().unwrap(), "--eve", eve.to_str().unwrap()])
            .env("SOC_LOG", "info")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut s = StreamSensor { child, stdin, lines: rx, seen: Vec::new() };
        s.wait_for("rule reload on SIGHUP enabled");
        s
    }

    /// Waits for a stderr line containing `what` (the process logs it when it happened).
    fn wait_for(&mut self, what: &str) -> String {
        self.wait_for_since(self.seen.len(), what)
    }

    /// Like [`StreamSensor::wait_for`], also looking at the lines since line `mark` (lines of
    /// the reloading task and of the sensor thread come in either order).
    fn wait_for_since(&mut self, mark: usize, what: &str) -> String {
        if let Some(l) = self.seen.iter().skip(mark).find(|l| l.contains(what)) {
            return l.clone();
        }
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(_) => panic!("no `{what}` from the sensor; it said:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
    }

    fn hangup(&self) {
        let st = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(st.success());
    }

    /// Closes the capture stream and waits for the summary line.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        let summary = self.wait_for("processed)");
        let st = self.child.wait().unwrap();
        assert!(st.success(), "{}", self.seen.join("\n"));
        summary
    }
}

/// Pcap record bytes (no file header) of these frames.
fn records(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    synth::pcap_bytes(1, frames)[24..].to_vec()
}

/// A sensor reads a capture stream; the rules change twice on SIGHUP (the second edit is
/// broken and refused). With one worker the order of packets and reloads is known exactly, and
/// the new rules do not set the flowbit they read: it can only come from before the reload.
fn reload_keeps_packets_flows_and_flowbits(workers: &str) {
    let exact = workers == "1";
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("site.rules");
    let eve = dir.path().join("eve.json");
    // packet rules (`tcp-pkt`): each segment is inspected as it comes (a `tcp` payload rule
    // inspects the reassembled stream in chunks, as Suricata does)
    let login = "alert tcp-pkt any any -> any any (msg:\"login\"; content:\"LOGIN\"; flowbits:set,logged_in; sid:1;)\n";
    let secret = "alert tcp-pkt any any -> any any (msg:\"secret after login\"; content:\"SECRET\"; flowbits:isset,logged_in; sid:2;)\n";
    std::fs::write(&rules, login).unwrap();
    let mut sensor = StreamSensor::start(&rules, &eve, workers);

    // one session across the reloads, and other hosts' sessions (spread over the workers)
    let mut main = TcpSession::new(Host::v4([10, 9, 0, 1]), 40000, Host::v4([10, 9, 0, 2]), 7000);
    let mut others: Vec<TcpSession> =
        (1..=6u8).map(|h| TcpSession::new(Host::v4([10, 8, 0, h]), 41000, Host::v4([10, 9, 0, 2]), 7000)).collect();
    let mut t = T0;
    let mut timed = |frames: Vec<Vec<u8>>| {
        frames
            .into_iter()
            .map(|f| {
                t += 1000;
                (t, f)
            })
            .collect::<Vec<_>>()
    };
    let mut part1 = main.handshake();
    part1.push(main.client_send(b"LOGIN alice\r\n"));
    for o in &mut others {
        part1.extend(o.handshake());
        part1.push(o.client_send(b"LOGIN bob\r\n"));
    }
    let part1 = timed(part1);
    let mut file = synth::pcap_bytes(1, &[]);
    file.extend(records(&part1));
    sensor.send(&file);

    // Reloads of the same file, each followed by one packet, until the sensor switches at that
    // packet: then every packet sent before was inspected before the reload (the sensor may
    // not even have started reading when the first reload comes).
    let mut nop = Vec::new();
    let mut generation = 0;
    loop {
        generation += 1;
        assert!(generation < 50, "the sensor never caught up: {}", sensor.seen.join("\n"));
        let mark = sensor.seen.len();
        sensor.hangup();
        sensor.wait_for_since(mark, &format!("\"generation\":{generation},\"loaded\":1"));
        let before = part1.len() + nop.len();
        let one = timed(vec![main.client_send(b"NOOP\r\n")]);
        sensor.send(&records(&one));
        nop.extend(one);
        if !exact {
            break;
        }
        let switched = sensor.wait_for_since(mark, &format!("\"generation\":{generation},\"packets\""));
        if switched.contains(&format!("\"packets\":{before}}}")) {
            break;
        }
    }

    // new rules: sid 2 reads the flowbit set before the reload
    let new_rules = if exact { secret.to_string() } else { format!("{login}{secret}") };
    std::fs::write(&rules, &new_rules).unwrap();
    let mark = sensor.seen.len();
    sensor.hangup();
    generation += 1;
    let reloaded = sensor.wait_for_since(mark, "rules reloaded");
    assert!(
        reloaded.contains(&format!("\"generation\":{generation},\"loaded\":{}", if exact { 1 } else { 2 })),
        "{reloaded}"
    );
    let mut part2 = vec![main.client_send(b"SECRET 1\r\n")];
    for o in &mut others {
        part2.push(o.client_send(b"SECRET 2\r\n"));
    }
    let part2 = timed(part2);
    sensor.send(&records(&part2));
    if exact {
        let switched = sensor.wait_for_since(mark, &format!("\"generation\":{generation},\"packets\""));
        assert!(switched.contains(&format!("\"packets\":{}}}", part1.len() + nop.len())), "{switched}");
    }

    // a broken edit is refused: the running rules stay
    std::fs::write(&rules, format!("{new_rules}alert tcp any any -> any any (msg:\"typo\"; contnet:\"x\"; sid:3;)\n"))
        .unwrap();
    sensor.hangup();
    let failed = sensor.wait_for("rule reload failed");
    assert!(failed.contains("reject 1 rules"), "{failed}");
    let mut part3 = vec![main.client_send(b"SECRET 3\r\n")];
    part3.extend(main.close());
    for o in &mut others {
        part3.extend(o.close());
    }
    let part3 = timed(part3);
    sensor.send(&records(&part3));
    let summary = sensor.finish();

    // no packet lost: every packet of the stream was processed
    let total = part1.len() + nop.len() + part2.len() + part3.len();
    assert!(summary.contains(&format!("{total} packets ({total} processed)")), "{summary}");
    let sids = alert_sids(&eve);
    assert_eq!(sids.iter().filter(|&&s| s == 1).count(), 7, "{sids:?}");
    // the new rule after the swap, with the flowbit carried over: every session's SECRET
    // (and the main session's second one, under the rules kept after the refused reload)
    assert_eq!(sids.iter().filter(|&&s| s == 2).count(), 8, "{sids:?}");
    assert!(!sids.contains(&3));
    // flow state survived: one flow record per session with all its packets
    let flows: Vec<serde_json::Value> = eve_lines(&eve).into_iter().filter(|v| v["event_type"] == "flow").collect();
    assert_eq!(flows.len(), 7);
    let count = |f: &serde_json::Value| {
        f["flow"]["pkts_toserver"].as_u64().unwrap() + f["flow"]["pkts_toclient"].as_u64().unwrap()
    };
    assert_eq!(flows.iter().map(count).sum::<u64>(), total as u64);
    let main_flow = flows.iter().find(|f| f["src_ip"] == "10.9.0.1").unwrap();
    assert_eq!(count(main_flow), (3 + 1 + nop.len() + 1 + 1 + 4) as u64);
}

#[test]
fn sighup_reloads_rules_without_losing_packets_flows_or_flowbits() {
    reload_keeps_packets_flows_and_flowbits("1");
}

#[test]
fn sighup_reloads_rules_on_every_worker() {
    reload_keeps_packets_flows_and_flowbits("2");
}

/// suricata-verify tests (rules, pcap and alert counts from the shared corpus) that
/// `soc rules test` passes; one count changed makes it fail.
#[test]
fn rules_test_agrees_with_suricata_verify_checks() {
    let sv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/suricata-verify");
    let Ok(index) = std::fs::read_to_string(sv.join("ALERT_EXPECTATIONS.jsonl")) else {
        eprintln!("SKIPPED rules_test_agrees_with_suricata_verify_checks: {} is absent", sv.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for test in ["detect-itype", "detect-flow-pkts-either", "byte-extract-01", "tls/tls-random"] {
        let checks: Vec<serde_json::Value> = index
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|c| c["test"] == test)
            .collect();
        assert!(!checks.is_empty(), "{test} is not in the index");
        let mut expect = String::new();
        for c in &checks {
            expect.push_str(&format!("{} {}\n", c["match"]["alert.signature_id"], c["count"]));
        }
        let tdir = sv.join("tests").join(test);
        let pcap = tdir.join(checks[0]["pcap"][0].as_str().unwrap());
        let run = |expect: &str| {
            let f = dir.path().join("expect.txt");
            std::fs::write(&f, expect).unwrap();
            soc()
                .args(["rules", "test", "--no-checksum-check", "--rules"])
                .arg(tdir.join("test.rules"))
                .arg("--pcap")
                .arg(&pcap)
                .arg("--expect")
                .arg(&f)
                .output()
                .unwrap()
        };
        let out = run(&expect);
        assert_eq!(out.status.code(), Some(0), "{test}:\n{expect}\n{}", text(&out));
        // the first check's count plus one
        let c = &checks[0];
        let wrong = expect.replacen(
            &format!("{} {}\n", c["match"]["alert.signature_id"], c["count"]),
            &format!("{} {}\n", c["match"]["alert.signature_id"], c["count"].as_u64().unwrap() + 1),
            1,
        );
        let out = run(&wrong);
        assert_eq!(out.status.code(), Some(1), "{test}:\n{wrong}\n{}", text(&out));
    }
}

/// `soc detect` over two event files: each file's matches are written and counted, the totals
/// add up over the files; a missing input stops the run before any output is written.
#[test]
fn sigma_detect_over_several_files_adds_up_and_a_missing_file_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("whoami.yml");
    std::fs::write(
        &rule,
        "title: Whoami run\nid: 8f2b6c1e-0000-4000-8000-000000000001\nstatus: test\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  selection:\n    Image|endswith: '\\whoami.exe'\n  condition: selection\nlevel: medium\n",
    )
    .unwrap();
    // `image` as JSON text (backslashes escaped).
    let event = |host: &str, image: &str| {
        format!(
            r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Sysmon"}}}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"{host}","TimeCreated":{{"#attributes":{{"SystemTime":"2024-06-15T10:00:00Z"}}}}}},"EventData":{{"Image":"{image}","CommandLine":"x"}}}}}}"##
        )
    };
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(
        &a,
        format!("{}\n{}\n", event("h1", r"C:\\Windows\\System32\\whoami.exe"), event("h1", r"C:\\x\\cmd.exe")),
    )
    .unwrap();
    std::fs::write(&b, format!("{}\n", event("h2", r"C:\\Windows\\System32\\whoami.exe"))).unwrap();
    let detect = |events: &[&Path], out: &Path| {
        soc()
            .args(["detect", "--sigma"])
            .arg(&rule)
            .arg("--events")
            .args(events)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = dir.path().join("out.jsonl");
    let o = detect(&[&a, &b], &out);
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("2 files, 3 events (0 rejected), 2 detections by 1 rules"), "{said}");
    assert!(said.contains("2  8f2b6c1e-0000-4000-8000-000000000001  Whoami run"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);

    let out2 = dir.path().join("out2.jsonl");
    let o = detect(&[&a, &dir.path().join("missing.json")], &out2);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("missing.json"), "{}", text(&o));
    assert!(!out2.exists(), "output written although an input is missing");
}
