//! Offline detection (`soc detect`): Sigma rules over a finite set of already-normalized
//! events, one JSON line per detection written out, counts per rule returned.
//!
//! Reading and normalizing the input files is the caller's job (the binary uses the
//! collector's parsers); this module only detects, writes and counts, so it needs no bus and
//! no store.

use crate::sigma::SigmaRules;
use soc_model::Event;
use std::collections::BTreeMap;
use std::io::Write;

/// Matches of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCount {
    pub title: String,
    pub matches: usize,
}

/// What an offline run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineReport {
    /// Events given.
    pub events: usize,
    /// Of which `log` events (the only ones Sigma rules see).
    pub logs: usize,
    /// Detection lines written.
    pub detections: usize,
    /// Matches per rule id, for the rules that matched.
    pub per_rule: BTreeMap<String, RuleCount>,
}

impl OfflineReport {
    /// Adds the counts of another run (another input file) to these.
    pub fn add(&mut self, other: OfflineReport) {
        self.events += other.events;
        self.logs += other.logs;
        self.detections += other.detections;
        for (id, c) in other.per_rule {
            let mine = self.per_rule.entry(id).or_default();
            mine.matches += c.matches;
            mine.title = c.title;
        }
    }

    /// The per-rule counts, most matches first (ties by id), as text lines.
    pub fn lines(&self) -> Vec<String> {
        let mut v: Vec<(&String, &RuleCount)> = self.per_rule.iter().collect();
        v.sort_by(|a, b| b.1.matches.cmp(&a.1.matches).then(a.0.cmp(b.0)));
        v.into_iter().map(|(id, c)| format!("{:>8}  {id}  {}", c.matches, c.title)).collect()
    }
}

/// Normalizes every event with the rules' pipelines ([`SigmaRules::normalize`]), evaluates `rules` on it and writes each detection as one JSON line to `out`
/// (the same `detection` events the correlator stores). Errors are the writer's.
pub fn detect<W: Write>(
    rules: &SigmaRules,
    events: impl IntoIterator<Item = Event>,
    out: &mut W,
) -> std::io::Result<OfflineReport> {
    let mut report = OfflineReport::default();
    let mut dets = Vec::new();
    for mut ev in events {
        report.events += 1;
        rules.normalize(&mut ev);
        if ev.log.is_some() {
            report.logs += 1;
        }
        dets.clear();
        rules.evaluate_into(&ev, &mut dets);
        for d in &dets {
            out.write_all(&d.to_json())?;
            out.write_all(b"\n")?;
            report.detections += 1;
            if let Some(det) = &d.detection {
                let c = report.per_rule.entry(det.rule_id.clone()).or_default();
                c.title.clone_from(&det.rule_title);
                c.matches += 1;
            }
        }
    }
    out.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use soc_model::{EventType, Log, LogSource};

    fn log(msg: &str) -> Event {
        let Ok(ts) = "2026-11-27T03:04:05Z".parse() else { panic!("timestamp") };
        let mut ev = Event::new(EventType::Log, ts);
        ev.log = Some(Log {
            logsource: LogSource {
                product: Some("linux".into()),
                service: Some("sshd".into()),
                ..LogSource::default()
            },
            message: Some(msg.into()),
            fields: match json!({}) {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            ..Log::default()
        });
        ev
    }

    #[test]
    fn reports_of_several_files_add_up_per_rule() {
        let count = |title: &str, matches| RuleCount { title: title.into(), matches };
        let mut a = OfflineReport { events: 3, logs: 2, detections: 2, per_rule: BTreeMap::new() };
        a.per_rule.insert("r1".into(), count("one", 2));
        let mut b = OfflineReport { events: 5, logs: 5, detections: 4, per_rule: BTreeMap::new() };
        b.per_rule.insert("r1".into(), count("one", 1));
        b.per_rule.insert("r2".into(), count("two", 3));
        a.add(b);
        assert_eq!((a.events, a.logs, a.detections), (8, 7, 6));
        assert_eq!(a.per_rule["r1"], count("one", 3));
        assert_eq!(a.per_rule["r2"], count("two", 3));
        assert_eq!(a.lines().len(), 2);
    }

    #[test]
    fn each_match_is_one_json_line_and_counted_per_rule() {
        let (rules, errors) = SigmaRules::builtin();
        assert!(errors.is_empty(), "{errors:?}");
        let mut other = log("x");
        other.event_type = EventType::Other("flow".into());
        other.log = None;
        let events = vec![
            log("Failed password for root from 203.0.113.7 port 1 ssh2"),
            log("Accepted publickey for a from 10.0.0.1 port 2 ssh2"),
            log("Failed password for invalid user b from 203.0.113.7 port 3 ssh2"),
            other,
        ];
        let mut out = Vec::new();
        let report = detect(&rules, events, &mut out).unwrap_or_default();
        assert_eq!((report.events, report.logs, report.detections), (4, 3, 2));
        let text = String::from_utf8(out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for l in &lines {
            let ev = Event::from_json(l.as_bytes()).map_err(|e| e.to_string());
            assert!(ev.as_ref().is_ok_and(|e| e.event_type == EventType::Detection), "{l}: {ev:?}");
        }
        assert_eq!(report.per_rule.len(), 1);
        let (id, c) = report.per_rule.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
        assert_eq!((id.as_str(), c.matches), ("6e94893f-f137-4b39-891f-bc29d6640547", 2));
        assert!(report.lines()[0].contains("6e94893f"));
    }

    #[test]
    fn security_4688_events_meet_process_creation_rules_through_the_default_pipelines() {
        let (rules, errors) = SigmaRules::builtin();
        assert!(errors.is_empty(), "{errors:?}");
        let Ok(ts) = "2026-11-27T03:04:05Z".parse() else { panic!("timestamp") };
        let mut ev = Event::new(EventType::Log, ts);
        let mut fields = serde_json::Map::new();
        fields.insert("EventID".into(), json!(4688));
        fields.insert("NewProcessName".into(), json!("C:\\Windows\\System32\\whoami.exe"));
        fields.insert("MandatoryLabel".into(), json!("S-1-16-8192"));
        ev.log = Some(Log {
            logsource: LogSource {
                product: Some("windows".into()),
                service: Some("security".into()),
                category: Some("process_creation".into()),
            },
            fields,
            ..Log::default()
        });
        assert!(rules.evaluate(&ev).is_empty(), "the rule names Image, the event NewProcessName");
        let mut out = Vec::new();
        let report = detect(&rules, vec![ev.clone()], &mut out).unwrap_or_default();
        assert_eq!(report.detections, 1, "{report:?}");
        assert!(report.per_rule.contains_key("f76645b0-93f5-44e2-816b-6428508dd085"), "{report:?}");
        let none = SigmaRules::builtin().0.with_pipelines(crate::sigma::Pipelines::none());
        let report = detect(&none, vec![ev], &mut Vec::new()).unwrap_or_default();
        assert_eq!(report.detections, 0, "without the pipelines nothing matches");
    }
}
