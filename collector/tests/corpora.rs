//! Every Windows event of the shared corpora parses and normalizes: the evtx-samples archives
//! (JSON lines written by evtx_dump) and Sigma's regression data (concatenated pretty-printed
//! objects). Skips, loudly, when the shared corpora (`../shared/corpora` beside the workspace)
//! or `tar --zstd` are absent.

use serde_json::Value;
use soc_collector::ingest::parse_http_body;
use soc_model::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.is_dir().then_some(p)
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

#[derive(Default)]
struct Tally {
    events: usize,
    by_service: BTreeMap<String, usize>,
    by_category: BTreeMap<String, usize>,
    sysmon_1: usize,
    failed_logons: usize,
}

/// The checks every normalized Windows event must pass.
fn check(ev: &Event, what: &str, t: &mut Tally) {
    let log = ev.log.as_ref().unwrap_or_else(|| panic!("{what}: no log payload"));
    assert_eq!(log.format.as_deref(), Some("windows"), "{what}");
    assert_eq!(log.logsource.product.as_deref(), Some("windows"), "{what}");
    let f = &log.fields;
    let id =
        f.get("EventID").and_then(Value::as_i64).unwrap_or_else(|| panic!("{what}: EventID is not an integer: {f:?}"));
    let original = log.original.as_ref().unwrap_or_else(|| panic!("{what}: no original"));
    let system = &original["Event"]["System"];
    // host = System.Computer; timestamp = System.TimeCreated.
    assert_eq!(ev.host.as_deref(), system["Computer"].as_str(), "{what}");
    let created =
        system["TimeCreated"]["#attributes"]["SystemTime"].as_str().unwrap_or_else(|| panic!("{what}: no SystemTime"));
    assert_eq!(ev.timestamp.to_rfc3339()[..19], created[..19], "{what}");
    assert!(!f.keys().any(|k| k.contains(' ') || k.starts_with('#')), "{what}: {:?}", f.keys());
    let service = log.logsource.service.clone().unwrap_or_else(|| "-".into());
    let category = log.logsource.category.clone().unwrap_or_else(|| "-".into());
    if service == "sysmon" && id == 1 {
        t.sysmon_1 += 1;
        assert_eq!(category, "process_creation", "{what}");
        for k in ["Image", "CommandLine", "ParentImage", "ProcessId"] {
            assert!(f.contains_key(k), "{what}: Sysmon 1 without {k}");
        }
        assert!(f["Image"].as_str().is_some_and(|s| !s.is_empty()), "{what}");
    }
    if service == "security" && id == 4625 {
        t.failed_logons += 1;
        assert!(f.get("TargetUserName").is_some_and(Value::is_string), "{what}: 4625 without TargetUserName");
    }
    if service == "security" && id == 4688 {
        assert_eq!(category, "process_creation", "{what}");
        assert!(f.contains_key("NewProcessName"), "{what}");
    }
    t.events += 1;
    *t.by_service.entry(service).or_default() += 1;
    *t.by_category.entry(category).or_default() += 1;
}

#[test]
fn every_evtx_sample_event_normalizes() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED: ../shared/corpora not found; evtx-samples not checked");
        return;
    };
    let dir = root.join("evtx-samples");
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("INDEX.json")).unwrap()).unwrap();
    let expected: u64 = index.as_array().unwrap().iter().map(|e| e["events"].as_u64().unwrap()).sum();
    let mut archives = Vec::new();
    files(&dir, ".jsonl.tar.zst", &mut archives);
    assert!(!archives.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    for a in &archives {
        let ok = Command::new("tar").arg("--zstd").arg("-xf").arg(a).arg("-C").arg(tmp.path()).status();
        if !ok.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: `tar --zstd -xf` failed for {}; evtx-samples not checked", a.display());
            return;
        }
    }
    let mut jsonl = Vec::new();
    files(tmp.path(), ".jsonl", &mut jsonl);
    let mut t = Tally::default();
    let mut lines = 0usize;
    for p in &jsonl {
        let body = std::fs::read(p).unwrap();
        lines += body.split(|c| *c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        let out = parse_http_body(&body, Some("application/x-ndjson"), "127.0.0.1:9");
        assert!(out.dead_letters.is_empty(), "{}: {:?}", p.display(), out.dead_letters.first());
        for (i, ev) in out.events.iter().enumerate() {
            check(ev, &format!("{}#{}", p.display(), i + 1), &mut t);
        }
    }
    eprintln!(
        "evtx-samples: {} archives, {} files, {} events; Sysmon 1: {}, Security 4625: {}",
        archives.len(),
        jsonl.len(),
        t.events,
        t.sysmon_1,
        t.failed_logons
    );
    eprintln!("  by service: {:?}", t.by_service);
    eprintln!("  by category: {:?}", t.by_category);
    assert_eq!(t.events, lines);
    assert_eq!(t.events as u64, expected, "INDEX.json counts {expected} events");
    assert!(t.sysmon_1 > 0 && t.failed_logons > 0);
}

#[test]
fn every_sigma_regression_event_normalizes() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED: ../shared/corpora not found; Sigma regression data not checked");
        return;
    };
    let mut json = Vec::new();
    files(&root.join("sigma/regression_data"), ".json", &mut json);
    assert!(!json.is_empty());
    let mut t = Tally::default();
    let mut objects = 0usize;
    for p in &json {
        let body = std::fs::read(p).unwrap();
        for v in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
            v.unwrap();
            objects += 1;
        }
        let out = parse_http_body(&body, Some("application/json"), "127.0.0.1:9");
        assert!(out.dead_letters.is_empty(), "{}: {:?}", p.display(), out.dead_letters.first());
        // The rule's file name starts with its log source category (Sigma's naming rule).
        let rule = p.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let want = [
            ("proc_creation_", "process_creation"),
            ("file_event_", "file_event"),
            ("image_load_", "image_load"),
            ("pipe_created_", "pipe_created"),
            ("registry_set_", "registry_set"),
            ("registry_delete_", "registry_delete"),
            ("registry_add_", "registry_add"),
            ("registry_event_", "registry_"),
            ("sysmon_", "sysmon_"),
        ]
        .iter()
        .find(|(prefix, _)| rule.starts_with(prefix))
        .map(|(_, category)| *category);
        for (i, ev) in out.events.iter().enumerate() {
            let what = format!("{}#{}", p.display(), i + 1);
            check(ev, &what, &mut t);
            if let Some(want) = want {
                let got = ev.log.as_ref().and_then(|l| l.logsource.category.as_deref()).unwrap_or("-");
                assert!(got.starts_with(want), "{what}: category {got}, rule {rule}");
            }
        }
    }
    eprintln!("sigma regression data: {} files, {} events; by category: {:?}", json.len(), t.events, t.by_category);
    assert_eq!(t.events, objects);
}

#[test]
fn otrf_nxlog_flat_events_normalize() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED: ../shared/corpora not found; OTRF datasets not checked");
        return;
    };
    let mut zips = Vec::new();
    files(&root.join("security-datasets/datasets/atomic/windows"), ".zip", &mut zips);
    zips.retain(|p| p.to_string_lossy().contains("/host/"));
    // The smallest few host datasets: every shape variation NXLog writes, in little time.
    zips.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX));
    zips.truncate(8);
    assert!(!zips.is_empty());
    let mut events = 0usize;
    for z in &zips {
        let out = match Command::new("unzip").arg("-p").arg(z).output() {
            Ok(o) if o.status.success() => o.stdout,
            _ => {
                eprintln!("SKIPPED: `unzip -p` failed for {}; OTRF datasets not checked", z.display());
                return;
            }
        };
        let lines = out.split(|c| *c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        let o = parse_http_body(&out, Some("application/x-ndjson"), "127.0.0.1:9");
        assert!(o.dead_letters.is_empty(), "{}: {:?}", z.display(), o.dead_letters.first());
        assert_eq!(o.events.len(), lines, "{}", z.display());
        for ev in &o.events {
            let log = ev.log.as_ref().unwrap();
            let what = format!("{}: {:?}", z.display(), log.original);
            assert_eq!(log.format.as_deref(), Some("windows"), "{what}");
            assert!(log.fields["EventID"].is_i64(), "{what}");
            let original = log.original.as_ref().unwrap();
            assert_eq!(ev.host.as_deref(), original["Hostname"].as_str(), "{what}");
            // `@timestamp`, or (older datasets) TimeCreated in UTC without a zone.
            let ts: soc_model::Timestamp = match original["@timestamp"].as_str() {
                Some(t) => t.parse().unwrap(),
                None => format!("{}Z", original["TimeCreated"].as_str().unwrap()).parse().unwrap(),
            };
            assert_eq!(ev.timestamp, ts, "{what}");
            if log.fields["EventID"] == 1 && log.logsource.service.as_deref() == Some("sysmon") {
                assert_eq!(log.logsource.category.as_deref(), Some("process_creation"), "{what}");
                assert!(log.fields.contains_key("CommandLine"), "{what}");
            }
        }
        events += o.events.len();
    }
    eprintln!("OTRF (NXLog flat shape): {} datasets, {events} events", zips.len());
}
