//! The fast path from JSON text (`SigmaRules::matching_rules_json`) against the general path
//! (the collector's Windows normalization, then the processing pipelines) on every
//! evtx-samples event, with all SigmaHQ rules loaded:
//! * flattening everything gives exactly the normalized event's fields, log source and
//!   message;
//! * the record actually evaluated holds, with identical values, every field the routed rules
//!   look up, and (when a routed rule searches keywords) exactly the strings of the fields it
//!   leaves out;
//! * both paths raise the same rules.
//!
//! Skips visibly when `../shared/corpora` is absent.

mod sigma_corpus;

use serde_json::{Map, Value};
use soc_correlator::sigma::{EngineKind, FlatScratch, SigmaRules};

fn strings(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth == 0 {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Object(m) => m.values().for_each(|x| strings(x, out, depth - 1)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out, depth - 1)),
        _ => {}
    }
}

#[test]
fn flat_records_hold_the_normalized_values_of_every_referenced_field_and_match_the_same_rules() {
    let Some(root) = sigma_corpus::corpora() else {
        eprintln!("SKIPPED flat_records_hold_the_normalized_values: ../shared/corpora not found");
        return;
    };
    let Some(lines) = sigma_corpus::evtx_lines(&root) else {
        eprintln!("SKIPPED flat_records_hold_the_normalized_values: evtx-samples not unpacked (tar --zstd)");
        return;
    };
    let (rules, _) = SigmaRules::load_with(&sigma_corpus::sigmahq_rule_dirs(&root), EngineKind::Fast);
    assert!(rules.len() > 3000, "{} rules", rules.len());
    let ctx = soc_collector::parse::ParseContext::new("test", None);
    let mut sc = FlatScratch::new();
    let (mut events, mut materialized, mut total, mut keyword_events, mut pipelined) = (0usize, 0, 0, 0, 0);
    let mut problems: Vec<String> = Vec::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (file, line) in &lines {
        let Some(mut ev) = sigma_corpus::normalize(line, &ctx) else { continue };
        if rules.normalize(&mut ev) > 0 {
            pipelined += 1;
        }
        let Some(log) = ev.log.as_ref() else { continue };
        events += 1;
        let mut problem = |p: String| {
            if problems.len() < 20 {
                problems.push(format!("{file}: {p}"));
            }
        };

        // Everything flattened: the normalized event itself.
        if let Err(e) = rules.flat_record(line, &mut sc, true) {
            problem(format!("not flattened: {e}"));
            continue;
        }
        if sc.fields != log.fields {
            problem(format!("fields differ:\n  flat {:?}\n  norm {:?}", sc.fields, log.fields));
        }
        if sc.logsource != log.logsource {
            problem(format!("log source {:?} != {:?}", sc.logsource, log.logsource));
        }
        if sc.message != log.message {
            problem(format!("message {:?} != {:?}", sc.message, log.message));
        }

        // The record evaluated: the referenced fields, plus the strings of the others.
        let info = match rules.flat_record(line, &mut sc, false) {
            Ok(i) => i,
            Err(e) => {
                problem(format!("not flattened: {e}"));
                continue;
            }
        };
        total += log.fields.len();
        materialized += sc.fields.len();
        for (k, v) in &sc.fields {
            if log.fields.get(k) != Some(v) {
                problem(format!("field {k}: {v} != {:?}", log.fields.get(k)));
            }
        }
        for k in &info.referenced {
            if log.fields.contains_key(k) && !sc.fields.contains_key(k) {
                problem(format!("referenced field {k} missing"));
            }
        }
        if sc.has_message_field != log.fields.contains_key("message") {
            problem("message field flag".into());
        }
        if info.needs_strings {
            keyword_events += 1;
            let rest: Map<String, Value> = log
                .fields
                .iter()
                .filter(|(k, _)| !sc.fields.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut want = Vec::new();
            strings(&Value::Object(rest), &mut want, 65);
            let mut got: Vec<String> = sc.extra_strings().map(str::to_string).collect();
            want.sort();
            got.sort();
            if got != want {
                problem(format!("keyword strings differ:\n  flat {got:?}\n  norm {want:?}"));
            }
        }

        // Same rules raised.
        a.clear();
        b.clear();
        if let Err(e) = rules.matching_rules_json(line, &mut sc, &mut a) {
            problem(format!("not matched: {e}"));
        }
        rules.matching_rules(log, &mut b);
        if a != b {
            problem(format!("rules {a:?} != {b:?}"));
        }
    }
    eprintln!(
        "events: {events}, pipelines applied to {pipelined}; fields materialized {materialized} of {total}; \
         {keyword_events} events routed to keyword rules"
    );
    for p in &problems {
        eprintln!("  {p}");
    }
    assert!(events > 25_000, "{events} events");
    assert!(pipelined > 0, "the pipelines were exercised");
    assert!(materialized < total, "only referenced fields are materialized");
    assert!(keyword_events > 0, "keyword strings were exercised");
    assert!(problems.is_empty(), "{} problems", problems.len());
}
