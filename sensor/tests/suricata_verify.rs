//! The suricata-verify alert checks (`../shared/corpora/suricata-verify`) as one test.
//!
//! For every test whose `requires` allow Suricata 8.0.6 (the reference: `min-version` at most
//! 8.0.6, `lt-version` above it), the test's rules are loaded into a fresh detector, its pcap
//! runs through the sensor, and each check of `ALERT_EXPECTATIONS.jsonl` counts the EVE records
//! matching its `match` keys (dotted paths, as `run.py`'s `find_value`) and compares with the
//! expected `count` (address fields compared as addresses: Suricata 8 writes IPv6 out in full,
//! the sensor in the RFC 5952 form). Prints the pass rate overall, per keyword family (from
//! `INDEX.json`), and the failing checks; fails below the rate reached. Skips (visibly) without the corpus.
//! A test's `suricata.yaml` address and port groups and its `threshold-file` are used; a rules
//! file named `firewall.rules` is loaded as firewall rules (as `run.py` does), and
//! `--simulate-ips` switches the detector to IPS mode.
//!
//! Diagnostics: `SV_ALL_FAILURES=1` lists every failing check, `SV_RULE_ERRORS=1` the rules of
//! the failing tests that were not loaded (with sid and reason), `SV_ONLY=<part of a test
//! name>` runs the matching tests only (the floor is then not checked) and `SV_DUMP=1` prints
//! their EVE records.

use serde_json::Value;
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::detect::{Classifications, DetectorBuilder, Vars};
use soc_sensor::{Sensor, SensorOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

/// Share of the selected checks that must pass (the rate reached, rounded down).
const MIN_PASS_RATE: f64 = 0.98;

/// The reference Suricata version.
const REFERENCE: (u64, u64, u64) = (8, 0, 6);

fn version(v: &Value) -> Option<(u64, u64, u64)> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut it = s.split('.').map(|p| p.trim().parse::<u64>().unwrap_or(0));
    Some((it.next()?, it.next().unwrap_or(0), it.next().unwrap_or(0)))
}

/// Whether a `requires` object allows the reference version.
fn allows_reference(req: &Value) -> bool {
    let Some(obj) = req.as_object() else { return true };
    if let Some(min) = obj.get("min-version").and_then(version)
        && min > REFERENCE
    {
        return false;
    }
    if let Some(lt) = obj.get("lt-version").and_then(version)
        && REFERENCE >= lt
    {
        return false;
    }
    true
}

/// `run.py`'s `find_value`: a dotted path with optional `[n]` indexes.
fn find_value<'a>(name: &str, mut obj: &'a Value) -> Option<&'a Value> {
    for part in name.split('.') {
        let (key, index) = match part.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
            Some((k, i)) => (k, i.parse::<usize>().ok()),
            None => (part, None),
        };
        obj = obj.get(key)?;
        if let Some(i) = index {
            obj = obj.get(i)?;
        }
    }
    Some(obj)
}

/// Whether an EVE value matches a check's value: equal, or for an address field (`src_ip`,
/// `dest_ip`, ...) the same address. Suricata 8 writes IPv6 addresses out in full
/// (`fd01:0000:...:0101`); the sensor's EVE keeps the RFC 5952 form (`fd01::101:101`), as the
/// rest of the platform reads it, so the addresses are compared, not their spelling.
fn field_matches(key: &str, got: Option<&Value>, want: &Value) -> bool {
    // run.py's find_value gives None for a missing key: a `null` check matches its absence
    if want.is_null() {
        return got.is_none_or(Value::is_null);
    }
    let Some(got) = got else { return false };
    if got == want {
        return true;
    }
    let is_addr = key.rsplit('.').next().is_some_and(|k| k.ends_with("_ip"));
    match (got.as_str(), want.as_str()) {
        (Some(g), Some(w)) if is_addr => {
            matches!((g.parse::<std::net::IpAddr>(), w.parse::<std::net::IpAddr>()), (Ok(a), Ok(b)) if a == b)
        }
        _ => false,
    }
}

fn family(kw: &str) -> &str {
    match kw {
        k if k.starts_with("http") || k.starts_with("uri") || k == "file_data" || k == "file.data" => "http/file",
        k if k.starts_with("tls") || k.starts_with("ja3") || k.starts_with("ja4") => "tls",
        k if k.starts_with("dns") => "dns",
        k if k.starts_with("byte_") || k == "isdataat" => "byte_*/isdataat",
        "flowbits" | "xbits" | "flowint" | "noalert" => "flowbits/xbits/flowint",
        "threshold" | "detection_filter" => "threshold",
        "content" | "nocase" | "offset" | "depth" | "distance" | "within" | "startswith" | "endswith"
        | "fast_pattern" | "rawbytes" => "content",
        "pcre" => "pcre",
        "flow" => "flow",
        "dsize" | "bsize" | "urilen" => "sizes",
        "ttl" | "itype" | "icode" | "flags" | "ip_proto" | "sameip" | "stream_size" => "header",
        "dotprefix"
        | "to_lowercase"
        | "strip_whitespace"
        | "compress_whitespace"
        | "url_decode"
        | "to_md5"
        | "to_sha256"
        | "to_sha1"
        | "to_uppercase" => "transforms",
        _ => "other",
    }
}

struct Check {
    index: u64,
    count: u64,
    matcher: serde_json::Map<String, Value>,
}

struct TestCase {
    dir: PathBuf,
    pcap: PathBuf,
    rules: Vec<PathBuf>,
    args: Vec<String>,
    checks: Vec<Check>,
}

/// The address and port groups of a test's `suricata.yaml` (`vars:` / `address-groups:` and
/// `port-groups:`, one `NAME: "value"` a line), over Suricata's defaults.
fn yaml_vars(path: &std::path::Path) -> Vars {
    let mut vars = Vars::default();
    let Ok(text) = std::fs::read_to_string(path) else { return vars };
    let mut section = "";
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            section = "";
            continue;
        }
        if let Some(name) = t.strip_suffix(':') {
            section = if name == "address-groups" || name == "port-groups" { name } else { "" };
            continue;
        }
        if section.is_empty() {
            continue;
        }
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            if section == "address-groups" {
                vars.set_address(k.trim(), v);
            } else {
                vars.set_port(k.trim(), v);
            }
        }
    }
    vars
}

fn run_test(tc: &TestCase, classes: &Classifications, errors: &mut Vec<String>) -> Result<Vec<Value>, String> {
    let ips = tc.args.iter().any(|a| a.contains("--simulate-ips"));
    let mut b =
        DetectorBuilder::new().classifications(classes.clone()).vars(yaml_vars(&tc.dir.join("suricata.yaml"))).ips(ips);
    // suricata.yaml `action-order:` (a list of actions)
    let yaml = std::fs::read_to_string(tc.dir.join("suricata.yaml")).unwrap_or_default();
    if let Some(at) = yaml.lines().position(|l| l.trim_end() == "action-order:") {
        let order: Vec<soc_sensor::detect::Action> = yaml
            .lines()
            .skip(at + 1)
            .map_while(|l| l.trim().strip_prefix("- "))
            .filter_map(|a| soc_sensor::detect::Action::parse(a.trim()))
            .collect();
        b = b.action_order(&order);
    }
    // --set reputation-categories-file=, reputation-files.N=, geoip-database= (before the rules:
    // `iprep`/`geoip` bind to them as they load); ${TEST_DIR} and relative paths are the test's
    let set_path = |w: &str, key: &str| {
        w.strip_prefix(key).map(|p| tc.dir.join(p.trim_start_matches("${TEST_DIR}/").trim_start_matches("./")))
    };
    for w in tc.args.iter().flat_map(|a| a.split_whitespace()) {
        if let Some(p) = set_path(w, "reputation-categories-file=") {
            b.reputation_categories_file(p);
        }
    }
    for w in tc.args.iter().flat_map(|a| a.split_whitespace()) {
        if let Some(p) = w.strip_prefix("reputation-files.").and_then(|r| set_path(r.split_once('=')?.1, "")) {
            b.reputation_file(p);
        } else if let Some(p) = set_path(w, "geoip-database=") {
            b.geoip_database(p);
        }
    }
    // --data-dir=${OUTPUT_DIR}: `dataset ... save` files go to a temporary directory
    let data_dir = if tc.args.iter().any(|a| a.contains("--data-dir=")) { tempfile::tempdir().ok() } else { None };
    if let Some(d) = &data_dir {
        b.data_dir(d.path());
    }
    for r in &tc.rules {
        // run.py: a file named firewall.rules is loaded as firewall rules
        if r.file_name().is_some_and(|n| n.to_string_lossy().ends_with("firewall.rules")) {
            b.add_firewall_file(r);
        } else {
            b.add_file(r);
        }
    }
    // --set threshold-file=${TEST_DIR}/...
    for a in &tc.args {
        if let Some(f) = a.split_whitespace().find_map(|w| w.strip_prefix("threshold-file=${TEST_DIR}/")) {
            b.add_threshold_file(tc.dir.join(f));
        }
    }
    let (det, rule_errors) = b.build();
    for e in &rule_errors {
        // the sid of the rejected rule, for the failure report
        let sid = std::fs::read_to_string(&e.file)
            .ok()
            .and_then(|t| {
                let rest = t.lines().skip(e.rule_line.saturating_sub(1)).collect::<Vec<_>>().join("\n");
                let at = rest.find("sid:")?;
                Some(rest[at + 4..].chars().take_while(char::is_ascii_digit).collect::<String>())
            })
            .unwrap_or_default();
        errors.push(format!("sid {sid}: {}: {}", e.keyword.as_deref().unwrap_or("(syntax)"), e.reason));
    }
    let mut opts = SensorOptions::default();
    if tc.args.iter().any(|a| a.contains("-k none")) {
        opts.checksum_check = false;
        opts.checksum_auto = false;
    }
    if tc.args.iter().any(|a| a.contains("stream.midstream=true")) {
        opts.midstream = true;
    }
    if tc.args.iter().any(|a| a.contains("vlan.use-for-tracking=false")) {
        opts.vlan_tracking = false;
    }
    // the exception policy of a session picked up midstream: `stream.midstream-policy`, else
    // the master switch `exception-policy` of the test's suricata.yaml (pass-flow and bypass)
    let yaml = std::fs::read_to_string(tc.dir.join("suricata.yaml")).unwrap_or_default();
    let master = yaml.lines().find_map(|l| l.strip_prefix("exception-policy:")).map(str::trim);
    let policy = tc.args.iter().find_map(|a| a.split("stream.midstream-policy=").nth(1)).map(str::trim).or(master);
    opts.midstream_pass = matches!(policy, Some("pass-flow" | "bypass"));
    // packet-alert-max of the test's suricata.yaml
    if let Some(n) = yaml.lines().find_map(|l| l.strip_prefix("packet-alert-max:")).and_then(|v| v.trim().parse().ok())
    {
        opts.packet_alert_max = n;
    }
    // the reassembly memcap's exception policy, and the QA option forcing a memcap hit
    if let Some(v) = tc.args.iter().find_map(|a| a.split("stream.reassembly.memcap-policy=").nth(1)) {
        opts.reassembly_memcap_policy = soc_sensor::options::ExceptionPolicy::parse(v).unwrap_or_default();
    }
    if let Some(v) = tc.args.iter().find_map(|a| a.split("--simulate-packet-tcp-reassembly-memcap=").nth(1)) {
        opts.simulate_reassembly_memcap_at = v.trim().parse().ok();
    }
    if tc.args.iter().any(|a| a.contains("stream.reassembly.urgent.policy=oob")) {
        opts.urgent_oob = true;
    }
    if tc.args.iter().any(|a| a.contains("stream.async-oneside=true")) {
        opts.async_oneside = true;
    }
    // a BPF filter: the words after the last option of the command line (`-k none port 22`)
    let words: Vec<&str> = tc.args.iter().flat_map(|a| a.split_whitespace()).collect();
    let mut i = 0;
    let mut filter_from = None;
    while i < words.len() {
        let w = words[i];
        if w.starts_with('-') {
            // options with a separate value
            i += if matches!(w, "-k" | "--set" | "--runmode" | "-S" | "-s" | "-c") { 2 } else { 1 };
            filter_from = None;
        } else {
            filter_from.get_or_insert(i);
            i += 1;
        }
    }
    if let Some(from) = filter_from {
        let text = words[from..].join(" ");
        match soc_sensor::capture::bpf::BpfFilter::parse(&text) {
            Ok(f) => opts.bpf = Some(f),
            Err(e) => errors.push(format!("BPF filter '{text}' not applied: {e}")),
        }
    }
    if tc.args.iter().any(|a| a.contains("stream.inline=true")) {
        opts.stream_inline = true;
    }
    // stream.reassembly.depth=<n>[kb|mb] (0: unlimited)
    if let Some(v) = tc.args.iter().find_map(|a| a.split("stream.reassembly.depth=").nth(1)) {
        let v = v.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let (digits, mult) = match (v.strip_suffix("kb"), v.strip_suffix("mb")) {
            (Some(d), _) => (d, 1 << 10),
            (_, Some(d)) => (d, 1 << 20),
            _ => (v.as_str(), 1),
        };
        if let Ok(n) = digits.parse::<u64>() {
            opts.stream.depth = n * mult;
        }
    }
    let mut sensor = Sensor::new(opts).with_detector(Arc::new(det));
    let input = open_capture(&tc.pcap).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    read_capture(&tc.pcap, input, |ts, link, frame| {
        sensor.process(ts, link, frame, &mut out);
        ControlFlow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    sensor.flush_all(&mut out);
    Ok(out.iter().filter_map(|e| serde_json::to_value(e).ok()).collect())
}

#[test]
fn suricata_verify_alert_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/suricata-verify");
    let Ok(text) = std::fs::read_to_string(root.join("ALERT_EXPECTATIONS.jsonl")) else {
        eprintln!("SKIPPED suricata_verify: {} not found", root.display());
        return;
    };
    let classes = Classifications::load(root.join("etc/classification.config")).unwrap_or_default();
    let index: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("INDEX.json")).unwrap_or_default()).unwrap_or_default();
    let keywords: HashMap<String, BTreeSet<String>> = index
        .iter()
        .filter_map(|t| {
            let name = t.get("test")?.as_str()?.to_string();
            let kws = t.get("keywords")?.as_array()?.iter().filter_map(|k| Some(k.as_str()?.to_string())).collect();
            Some((name, kws))
        })
        .collect();

    let mut tests: BTreeMap<String, TestCase> = BTreeMap::new();
    let mut skipped_version = 0usize;
    let mut skipped_missing = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).expect("ALERT_EXPECTATIONS.jsonl line");
        let Some(name) = row["test"].as_str() else { continue };
        if !allows_reference(&row["requires"]) || !allows_reference(&row["filter_requires"]) {
            skipped_version += 1;
            continue;
        }
        let dir = root.join("tests").join(name);
        let Some(pcap) = row["pcap"].get(0).and_then(Value::as_str).map(|p| dir.join(p)) else { continue };
        let dir = dir.clone();
        let rules: Vec<PathBuf> =
            row["rules"].as_array().into_iter().flatten().filter_map(Value::as_str).map(|r| dir.join(r)).collect();
        if !pcap.exists() || rules.iter().any(|r| !r.exists()) {
            skipped_missing += 1;
            continue;
        }
        let mut args: Vec<String> =
            row["args"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        // run.py: a test whose directory name contains "ips" runs with --simulate-ips
        if name.rsplit('/').next().is_some_and(|n| n.contains("ips")) {
            args.push("--simulate-ips".to_string());
        }
        let check = Check {
            index: row["check_index"].as_u64().unwrap_or(0),
            count: row["count"].as_u64().unwrap_or(1),
            matcher: row["match"].as_object().cloned().unwrap_or_default(),
        };
        tests
            .entry(name.to_string())
            .or_insert_with(|| TestCase { dir, pcap, rules, args, checks: Vec::new() })
            .checks
            .push(check);
    }

    let (mut passed, mut total) = (0usize, 0usize);
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut tests_passed = 0usize;
    // SV_ONLY=substring runs only the matching tests; SV_DUMP prints their EVE records.
    let only = std::env::var("SV_ONLY").ok();
    for (name, tc) in tests.iter().filter(|(n, _)| only.as_deref().is_none_or(|o| n.contains(o))) {
        let mut rule_errors = Vec::new();
        let events = match run_test(tc, &classes, &mut rule_errors) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: capture error {e}"));
                Vec::new()
            }
        };
        if std::env::var_os("SV_DUMP").is_some() {
            for e in &events {
                eprintln!("  {name} event: {e}");
            }
        }
        let fams: BTreeSet<&str> =
            keywords.get(name).into_iter().flatten().map(|k| family(k)).filter(|f| *f != "other").collect();
        let mut all_ok = true;
        for c in &tc.checks {
            let got =
                events.iter().filter(|e| c.matcher.iter().all(|(k, v)| field_matches(k, find_value(k, e), v))).count()
                    as u64;
            let ok = got == c.count;
            total += 1;
            passed += usize::from(ok);
            all_ok &= ok;
            for f in fams.iter().copied().chain(std::iter::once("(all)")) {
                let e = per_family.entry(f.to_string()).or_default();
                e.0 += usize::from(ok);
                e.1 += 1;
            }
            if !ok {
                failures.push(format!(
                    "{name} #{}: {} expected {} got {got}",
                    c.index,
                    Value::Object(c.matcher.clone()),
                    c.count
                ));
            }
        }
        tests_passed += usize::from(all_ok);
        if !all_ok && std::env::var_os("SV_RULE_ERRORS").is_some() {
            rule_errors.sort();
            rule_errors.dedup();
            for e in &rule_errors {
                eprintln!("  rule error in {name}: {e}");
            }
        }
    }
    let rate = passed as f64 / total.max(1) as f64;
    eprintln!(
        "suricata-verify: {} tests ({tests_passed} fully passing), {passed}/{total} checks pass ({:.1}%); \
         {skipped_version} checks skipped by version requirements, {skipped_missing} without pcap/rules",
        tests.len(),
        rate * 100.0
    );
    eprintln!("pass rate per keyword family (checks of tests using it):");
    for (f, (p, t)) in &per_family {
        eprintln!("  {f:<24} {p:>5}/{t:<5} {:>5.1}%", *p as f64 * 100.0 / (*t).max(1) as f64);
    }
    let show = if std::env::var_os("SV_ALL_FAILURES").is_some() { usize::MAX } else { 40 };
    eprintln!("failing checks ({}; first {}):", failures.len(), show.min(failures.len()));
    for f in failures.iter().take(show) {
        eprintln!("  {f}");
    }
    assert!(total > 0, "no checks selected");
    if only.is_some() {
        return; // a subset: the floor is for the whole corpus
    }
    assert!(rate >= MIN_PASS_RATE, "pass rate {:.1}% below the floor {:.1}%", rate * 100.0, MIN_PASS_RATE * 100.0);
}

#[test]
fn version_requirements_follow_run_py() {
    assert!(allows_reference(&Value::Null));
    assert!(allows_reference(&serde_json::json!({"min-version": 8})));
    assert!(allows_reference(&serde_json::json!({"min-version": "8.0.6"})));
    assert!(!allows_reference(&serde_json::json!({"min-version": "8.0.7"})));
    assert!(!allows_reference(&serde_json::json!({"min-version": 9})));
    assert!(!allows_reference(&serde_json::json!({"lt-version": 8.0})));
    assert!(allows_reference(&serde_json::json!({"lt-version": 9})));
    let e = serde_json::json!({"alert": {"signature_id": 5}, "a": [{"b": 1}]});
    assert_eq!(find_value("alert.signature_id", &e), Some(&serde_json::json!(5)));
    assert_eq!(find_value("a[0].b", &e), Some(&serde_json::json!(1)));
    assert_eq!(find_value("alert.nope", &e), None);
}

#[test]
fn address_fields_compare_addresses_and_other_fields_their_values() {
    let full = serde_json::json!("fd01:0000:0000:0000:0000:0000:0101:0101");
    let short = serde_json::json!("fd01::101:101");
    assert!(field_matches("src_ip", Some(&short), &full));
    assert!(field_matches("flow.dest_ip", Some(&short), &full));
    assert!(!field_matches("src_ip", Some(&serde_json::json!("fd01::101:102")), &full));
    assert!(!field_matches("dns.rrname", Some(&short), &full));
    assert!(!field_matches("src_ip", None, &full));
    assert!(field_matches("src_ip", None, &Value::Null), "a missing field is null");
    assert!(!field_matches("src_ip", Some(&short), &Value::Null));
    assert!(field_matches("src_port", Some(&serde_json::json!(53)), &serde_json::json!(53)));
}
