//! The text parsers against the shared corpora: go-libaudit's golden auditd output, the
//! 10,000-line Apache log of elastic/examples, the IIS and Tomcat logs of
//! EVTX-ATTACK-SAMPLES. Skips, loudly, when the corpora (`../shared/corpora` beside the
//! workspace) or `xz` are absent.

use serde_json::Value;
use soc_collector::parse::{Decoder, Format, ParseContext, auditd};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.is_dir().then_some(p)
}

fn ctx() -> ParseContext<'static> {
    ParseContext::new("file", None)
}

/// Fields go-libaudit rewrites (ids to "unset", numbers to names, SELinux contexts split,
/// `res`/`success` to `result`): both sides have them, with different spellings.
const INTERPRETED: [&str; 10] =
    ["auid", "ses", "old-auid", "arch", "syscall", "exit", "sig", "mode", "family", "saddr"];

#[test]
fn auditd_records_agree_with_go_libaudit_golden_output() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED auditd golden test: shared corpora not found");
        return;
    };
    let dir = root.join("linux-logs/go-libaudit/auparse/testdata");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    let (mut records, mut rejected, mut shared, mut agree, mut interpreted_differ) = (0usize, 0, 0, 0, 0);
    let mut differ: BTreeMap<String, usize> = BTreeMap::new();
    for log in &names {
        let golden_path = PathBuf::from(format!("{}.golden", log.display()));
        let golden: Vec<Value> = serde_json::from_slice(&std::fs::read(&golden_path).unwrap()).unwrap();
        let text = std::fs::read(log).unwrap();
        let lines: Vec<&[u8]> =
            text.split(|c| *c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).collect();
        assert_eq!(lines.len(), golden.len(), "{}", log.display());
        for (line, g) in lines.iter().zip(&golden) {
            let what = format!("{}: {}", log.display(), String::from_utf8_lossy(line));
            if g.is_null() {
                // go-libaudit rejects it (`type=UNKNOWN[1329] msg=?`): so must we.
                assert!(auditd::parse_record(line).is_err(), "{what}");
                rejected += 1;
                continue;
            }
            let r = auditd::parse_record(line).unwrap_or_else(|e| panic!("{what}: {e}"));
            records += 1;
            assert_eq!(Some(r.serial), g["sequence"].as_u64(), "{what}");
            assert_eq!(Some(r.record_type.to_ascii_lowercase().as_str()), g["record_type"].as_str(), "{what}");
            let golden_ts: soc_model::Timestamp = g["@timestamp"].as_str().unwrap().parse().unwrap();
            assert_eq!(r.timestamp.unix_micros(), golden_ts.unix_micros(), "{what}");
            let Some(data) = g["data"].as_object() else { continue };
            for (k, v) in data {
                let Some(mine) = r.fields.get(k) else { continue };
                shared += 1;
                if mine == v {
                    agree += 1;
                } else if INTERPRETED.contains(&k.as_str()) {
                    interpreted_differ += 1;
                } else {
                    *differ.entry(k.clone()).or_default() += 1;
                    eprintln!("differs: {k}: ours {mine} golden {v} ({what})");
                }
            }
        }
    }
    eprintln!(
        "go-libaudit agreement: {} files, {records} records, {rejected} rejected by both, {shared} fields both produce, {agree} equal ({:.1}%), \
         {interpreted_differ} differ because go-libaudit interprets them ({INTERPRETED:?}), others differing: {differ:?}",
        names.len(),
        100.0 * agree as f64 / shared.max(1) as f64,
    );
    assert!(records >= 80, "{records}");
    assert!(differ.is_empty(), "fields that differ from go-libaudit without interpretation: {differ:?}");
    assert!(agree * 100 >= shared * 85, "{agree}/{shared}");
}

#[test]
fn auditd_logs_join_into_events() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED auditd join test: shared corpora not found");
        return;
    };
    let text = std::fs::read(root.join("linux-logs/go-libaudit/auparse/testdata/test3.log")).unwrap();
    let mut d = Decoder::new(Format::Auto);
    let mut events = Vec::new();
    for line in text.split(|c| *c == b'\n') {
        events.extend(d.push(line, &ctx()));
    }
    events.extend(d.finish(&ctx()));
    let events: Vec<_> = events.into_iter().map(|r| r.unwrap()).collect();
    // 17 records: 7 SYSCALL+PROCTITLE pairs (interleaved) and 3 single records.
    let serials: Vec<u64> = events.iter().map(|e| e.log.as_ref().unwrap().fields["serial"].as_u64().unwrap()).collect();
    let mut unique = serials.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), serials.len(), "one event per serial: {serials:?}");
    let joined = events
        .iter()
        .filter(|e| {
            e.log.as_ref().unwrap().fields.get("records").and_then(Value::as_array).is_some_and(|r| r.len() == 2)
        })
        .count();
    eprintln!("test3.log: 17 records -> {} events, {joined} of them SYSCALL+PROCTITLE", events.len());
    assert_eq!((events.len(), joined), (10, 7));
    let ev = events.iter().find(|e| e.log.as_ref().unwrap().fields["serial"] == 194435).unwrap();
    assert_eq!(ev.log.as_ref().unwrap().fields["proctitle"], "sshd: burn [priv]");
}

fn xz_lines(path: &Path) -> Option<Vec<u8>> {
    let out = Command::new("xz").arg("-dc").arg(path).output().ok()?;
    out.status.success().then_some(out.stdout)
}

#[test]
fn all_apache_log_lines_parse() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED apache corpus test: shared corpora not found");
        return;
    };
    let Some(text) = xz_lines(&root.join("web-logs/elastic-examples/apache_logs.xz")) else {
        eprintln!("SKIPPED apache corpus test: xz not available");
        return;
    };
    let (mut n, mut by_status) = (0usize, BTreeMap::<i64, usize>::new());
    for (i, line) in text.split(|c| *c == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        // Sniffed (auto) and explicit format agree.
        let ev = soc_collector::parse::parse_line(line, &ctx())
            .unwrap_or_else(|e| panic!("line {}: {e}: {}", i + 1, String::from_utf8_lossy(line)));
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.category.as_deref(), Some("webserver"), "line {}", i + 1);
        assert!(log.fields["cs-method"].is_string() || log.fields.contains_key("request"), "line {}", i + 1);
        *by_status.entry(log.fields["sc-status"].as_i64().unwrap()).or_default() += 1;
        n += 1;
    }
    eprintln!("apache_logs: {n} lines parsed, by status {by_status:?}");
    assert_eq!(n, 10_000);
}

#[test]
fn iis_and_tomcat_logs_of_evtx_attack_samples_parse() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED IIS/Tomcat corpus test: shared corpora not found");
        return;
    };
    let dir = root.join("evtx-samples/EVTX-ATTACK-SAMPLES-non-evtx/Command and Control");
    let iis = std::fs::read(dir.join("Tunna_rdp_tunnel_IIS.log")).unwrap();
    let mut d = Decoder::new(Format::Iis);
    let mut events = Vec::new();
    for line in iis.split(|c| *c == b'\n') {
        for r in d.push(line, &ctx()) {
            events.push(r.unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line))));
        }
    }
    let tunna = events
        .iter()
        .filter(|e| {
            e.log
                .as_ref()
                .unwrap()
                .fields
                .get("cs-uri-query")
                .and_then(Value::as_str)
                .is_some_and(|q| q.contains("proxy"))
        })
        .count();
    eprintln!("Tunna IIS log: {} events, {tunna} with the Tunna query", events.len());
    assert!(events.len() >= 2 && tunna >= 2);
    assert!(events.iter().all(|e| e.log.as_ref().unwrap().logsource.service.as_deref() == Some("iis")));
    // The same file sniffed: the #Fields header switches the auto decoder to W3C.
    let mut d = Decoder::new(Format::Auto);
    let auto: usize =
        iis.split(|c| *c == b'\n').map(|l| d.push(l, &ctx()).into_iter().filter(Result::is_ok).count()).sum();
    assert_eq!(auto, events.len());

    let tomcat = std::fs::read(dir.join("web_attack_and_isp_webshell_localhost_access_log.txt")).unwrap();
    let mut n = 0;
    let mut d = Decoder::new(Format::Auto);
    for (i, line) in tomcat.split(|c| *c == b'\n').enumerate() {
        for r in d.push(line, &ctx()) {
            let ev = r.unwrap_or_else(|e| panic!("line {}: {e}: {}", i + 1, String::from_utf8_lossy(line)));
            assert_eq!(ev.log.as_ref().unwrap().format.as_deref(), Some("common"), "line {}", i + 1);
            n += 1;
        }
    }
    eprintln!("Tomcat access log: {n} lines parsed");
    assert!(n > 100, "{n}");
}
