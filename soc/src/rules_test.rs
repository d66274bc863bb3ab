//! `soc rules test`: Suricata rules over a capture, alerts per sid compared with an
//! expectations file, like a suricata-verify check.
//!
//! The expectations file has one `SID COUNT` line per sid (`>=COUNT`: at least COUNT), `#`
//! comments and blank lines. Every sid that alerts must be listed: one that is not is
//! expected 0 times.

use crate::cli::RulesTestArgs;
use anyhow::Context;
use serde_json::json;
use soc_sensor::capture::offline::read_capture;
use soc_sensor::{Sensor, SensorOptions};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// How many alerts of a sid are expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Exactly(u64),
    AtLeast(u64),
}

impl Expected {
    fn holds(self, got: u64) -> bool {
        match self {
            Expected::Exactly(n) => got == n,
            Expected::AtLeast(n) => got >= n,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Exactly(n) => write!(f, "{n}"),
            Expected::AtLeast(n) => write!(f, ">={n}"),
        }
    }
}

/// A malformed line of the expectations file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ExpectError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Parses an expectations file's text: sid -> expectation.
pub fn parse_expectations(text: &str, file: &str) -> Result<BTreeMap<u64, Expected>, Vec<ExpectError>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let mut first_line: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| ExpectError { file: file.to_string(), line: i + 1, reason };
        let mut parts = line.split_whitespace();
        let (Some(sid), Some(count), None) = (parts.next(), parts.next(), parts.next()) else {
            errors.push(err(format!("expected `SID COUNT` (or `SID >=COUNT`), found `{line}`")));
            continue;
        };
        let Ok(sid) = sid.parse::<u64>() else {
            errors.push(err(format!("`{sid}` is not a sid (a number)")));
            continue;
        };
        let expected = match count.strip_prefix(">=") {
            Some(n) => n.parse().map(Expected::AtLeast),
            None => count.parse().map(Expected::Exactly),
        };
        let Ok(expected) = expected else {
            errors.push(err(format!("`{count}` is not a count (N or >=N)")));
            continue;
        };
        if let Some(first) = first_line.get(&sid) {
            errors.push(err(format!("sid {sid} is already listed on line {first}")));
            continue;
        }
        first_line.insert(sid, i + 1);
        out.insert(sid, expected);
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// One line of the result table.
#[derive(Debug, PartialEq, Eq)]
pub struct Check {
    pub sid: u64,
    /// `None`: not listed (expected 0).
    pub expected: Option<Expected>,
    pub got: u64,
    pub msg: String,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.expected.unwrap_or(Expected::Exactly(0)).holds(self.got)
    }
}

/// Compares alerts per sid (count, message) with the expectations: one check per sid listed
/// or alerting, by sid.
pub fn compare(got: &BTreeMap<u64, (u64, String)>, expected: &BTreeMap<u64, Expected>) -> Vec<Check> {
    let mut sids: Vec<u64> = got.keys().chain(expected.keys()).copied().collect();
    sids.sort_unstable();
    sids.dedup();
    sids.into_iter()
        .map(|sid| {
            let (n, msg) = got.get(&sid).cloned().unwrap_or_default();
            Check { sid, expected: expected.get(&sid).copied(), got: n, msg }
        })
        .collect()
}

/// The alerts of a run, per sid.
struct Run {
    packets: u64,
    alerts: BTreeMap<u64, (u64, String)>,
    loaded: usize,
    rejected: usize,
    damaged: Option<String>,
}

fn run(a: &RulesTestArgs) -> anyhow::Result<Run> {
    let (det, errors) = crate::rules::load_suricata(&a.rules, a.classification_config.as_deref())?;
    let rejected = soc_sensor::detect::rule_stats(&errors).rejected_rules;
    for e in errors.iter().take(20) {
        eprintln!("rejected: {e}");
    }
    if errors.len() > 20 {
        eprintln!("... {} more (soc rules check lists them all)", errors.len() - 20);
    }
    let loaded = det.len();
    let opts = SensorOptions {
        sensor_name: "soc-rules-test".into(),
        checksum_check: !a.no_checksum_check,
        checksum_auto: true,
        midstream: a.midstream,
        ..Default::default()
    };
    let mut sensor = Sensor::new(opts).with_detector(Arc::new(det));
    let mut alerts: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut count = |out: &mut Vec<soc_model::Event>| {
        for e in out.drain(..) {
            if let Some(al) = e.alert.as_ref()
                && let Some(sid) = al.signature_id
            {
                let entry = alerts.entry(sid).or_insert_with(|| (0, al.signature.clone().unwrap_or_default()));
                entry.0 += 1;
            }
        }
    };
    let input = crate::sensor_glue::open_input(&a.pcap)?;
    let mut out = Vec::new();
    let info = read_capture(&a.pcap, input, |ts, link, frame| {
        sensor.process(ts, link, frame, &mut out);
        if out.len() >= 4096 {
            count(&mut out);
        }
        ControlFlow::Continue(())
    })
    .with_context(|| format!("capture {}", a.pcap.display()))?;
    sensor.flush_all(&mut out);
    count(&mut out);
    Ok(Run { packets: sensor.stats().packets, alerts, loaded, rejected, damaged: info.error })
}

/// The expectations file text for these alerts.
fn expectations_text(alerts: &BTreeMap<u64, (u64, String)>, pcap: &Path) -> String {
    let mut s = format!(
        "# soc rules test expectations: `SID COUNT` (or `SID >=COUNT`) per line; a sid that alerts\n\
         # and is not listed fails. Written with --write-expect from {}.\n",
        pcap.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    );
    for (sid, (n, msg)) in alerts {
        let msg = msg.replace(['\n', '\r'], " ");
        s.push_str(&format!("{sid} {n}  # {msg}\n"));
    }
    s
}

/// `soc rules test`.
pub fn test(a: &RulesTestArgs) -> anyhow::Result<ExitCode> {
    let expected = if a.write_expect {
        BTreeMap::new()
    } else {
        let text = std::fs::read_to_string(&a.expect)
            .with_context(|| format!("cannot read the expectations file {}", a.expect.display()))?;
        match parse_expectations(&text, &a.expect.display().to_string()) {
            Ok(e) => e,
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                eprintln!("{} malformed line(s) in {}", errors.len(), a.expect.display());
                return Ok(ExitCode::from(2));
            }
        }
    };
    let r = run(a)?;
    if let Some(d) = &r.damaged {
        // A partial run proves nothing about the expectations: neither compare nor write them.
        eprintln!("error: capture damaged after {} packets: {d}", r.packets);
        return Ok(ExitCode::from(2));
    }
    if a.write_expect {
        std::fs::write(&a.expect, expectations_text(&r.alerts, &a.pcap))
            .with_context(|| format!("cannot write {}", a.expect.display()))?;
        let total: u64 = r.alerts.values().map(|v| v.0).sum();
        if a.format == "json" {
            let v = json!({"written": a.expect, "sids": r.alerts.len(), "alerts": total, "packets": r.packets});
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "wrote {} sids ({total} alerts over {} packets) to {}",
                r.alerts.len(),
                r.packets,
                a.expect.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let checks = compare(&r.alerts, &expected);
    let failed = checks.iter().filter(|c| !c.ok()).count();
    if a.format == "json" {
        let v = json!({
            "pcap": a.pcap,
            "packets": r.packets,
            "rules_loaded": r.loaded,
            "rules_rejected": r.rejected,
            "alerts": r.alerts.values().map(|v| v.0).sum::<u64>(),
            "checks": checks.iter().map(|c| json!({
                "sid": c.sid,
                "msg": c.msg,
                "expected": c.expected.map(|e| e.to_string()).unwrap_or_else(|| "0".into()),
                "listed": c.expected.is_some(),
                "got": c.got,
                "ok": c.ok(),
            })).collect::<Vec<_>>(),
            "failed": failed,
            "passed": failed == 0,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} packets, {} rules loaded ({} rejected), {} sids checked",
            r.packets,
            r.loaded,
            r.rejected,
            checks.len()
        );
        println!("{:>10}  {:>8}  {:>8}  {:<6}  msg", "sid", "expected", "got", "result");
        for c in &checks {
            let exp = match c.expected {
                Some(e) => e.to_string(),
                None => "0 (unl.)".to_string(),
            };
            let res = if c.ok() { "ok" } else { "FAIL" };
            println!("{:>10}  {:>8}  {:>8}  {:<6}  {}", c.sid, exp, c.got, res, c.msg);
        }
        if failed == 0 {
            println!("all {} checks passed", checks.len());
        } else {
            println!("{failed} of {} checks FAILED", checks.len());
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_parse_counts_at_least_and_comments() {
        let e = parse_expectations("# header\n\n1000001 2\n1000002 >=1  # some msg\n1000003 0\n", "e.txt").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[&1000001], Expected::Exactly(2));
        assert_eq!(e[&1000002], Expected::AtLeast(1));
        assert_eq!(e[&1000003], Expected::Exactly(0));
    }

    #[test]
    fn malformed_expectation_lines_are_reported_with_file_and_line() {
        let errors = parse_expectations("1 1\nabc 1\n2\n3 lots\n1 4\n5 1 extra\n", "e.txt").unwrap_err();
        let at: Vec<String> = errors.iter().map(|e| format!("{}:{}", e.file, e.line)).collect();
        assert_eq!(at, ["e.txt:2", "e.txt:3", "e.txt:4", "e.txt:5", "e.txt:6"]);
        assert!(errors[3].reason.contains("already listed on line 1"), "{}", errors[3].reason);
    }

    #[test]
    fn unlisted_alerting_sids_and_wrong_counts_fail() {
        let mut got = BTreeMap::new();
        got.insert(1, (2, "one".to_string()));
        got.insert(2, (1, "two".to_string()));
        got.insert(3, (5, "three".to_string()));
        let mut exp = BTreeMap::new();
        exp.insert(1, Expected::Exactly(2));
        exp.insert(3, Expected::AtLeast(4));
        exp.insert(4, Expected::Exactly(1));
        let checks = compare(&got, &exp);
        let summary: Vec<(u64, bool)> = checks.iter().map(|c| (c.sid, c.ok())).collect();
        // 2 alerts but is not listed; 4 is expected once and never alerts
        assert_eq!(summary, [(1, true), (2, false), (3, true), (4, false)]);
    }

    #[test]
    fn written_expectations_read_back_as_the_same_counts() {
        let mut got = BTreeMap::new();
        got.insert(7, (3, "seven # with a hash".to_string()));
        got.insert(9, (1, "nine".to_string()));
        let text = expectations_text(&got, Path::new("x.pcap"));
        let e = parse_expectations(&text, "w.txt").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[&7], Expected::Exactly(3));
        assert!(compare(&got, &e).iter().all(Check::ok));
    }
}
