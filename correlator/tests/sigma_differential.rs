//! Differential test: the correlator's own Sigma engine against the reference (rsigma-eval)
//! on every SigmaHQ rule (rules, threat hunting, emerging threats) and every evtx-samples
//! event. The reference sees the event normalized by the collector, with the processing
//! pipelines applied; the own engine is run both on that event and on the JSON text through
//! its fast path (`SigmaRules::matching_rules_json`). Both engines must load the same rules
//! and, for every event, raise the same set of rules on every path. Any accepted difference
//! is listed in [`ALLOWED`] with its reason. Skips visibly when `../shared/corpora` is absent.

mod sigma_corpus;

use soc_correlator::sigma::{EngineKind, FlatScratch, SigmaRules};
use std::collections::{BTreeMap, BTreeSet};

/// Accepted differences: (rule id, reason). Empty: the engines agree everywhere.
const ALLOWED: &[(&str, &str)] = &[];

fn fired(rules: &SigmaRules, ev: &soc_model::Event) -> BTreeSet<String> {
    rules.evaluate(ev).into_iter().filter_map(|d| d.detection.map(|d| d.rule_id)).collect()
}

#[test]
fn fast_engine_matches_exactly_what_rsigma_matches_on_sigmahq_rules_and_evtx_samples() {
    let Some(root) = sigma_corpus::corpora() else {
        eprintln!("SKIPPED fast_engine_matches_exactly_what_rsigma_matches: ../shared/corpora not found");
        return;
    };
    let Some(lines) = sigma_corpus::evtx_lines(&root) else {
        eprintln!("SKIPPED fast_engine_matches_exactly_what_rsigma_matches: evtx-samples not unpacked (tar --zstd)");
        return;
    };
    let dirs = sigma_corpus::sigmahq_rule_dirs(&root);
    let (fast, fast_errors) = SigmaRules::load_with(&dirs, EngineKind::Fast);
    let (reference, ref_errors) = SigmaRules::load_with(&dirs, EngineKind::Rsigma);
    eprintln!(
        "rules loaded: fast {} ({} errors), rsigma {} ({} errors)",
        fast.len(),
        fast_errors.len(),
        reference.len(),
        ref_errors.len()
    );
    let ids = |r: &SigmaRules| r.rules().iter().map(|i| i.id.clone()).collect::<BTreeSet<_>>();
    let (fast_ids, ref_ids) = (ids(&fast), ids(&reference));
    let only_fast: Vec<_> = fast_ids.difference(&ref_ids).collect();
    let only_ref: Vec<_> = ref_ids.difference(&fast_ids).collect();
    for e in fast_errors.iter().filter(|e| !ref_errors.contains(e)) {
        eprintln!("  fast-only load error: {e}");
    }
    for e in ref_errors.iter().filter(|e| !fast_errors.contains(e)) {
        eprintln!("  rsigma-only load error: {e}");
    }
    assert!(fast.len() > 3000, "{} SigmaHQ rules", fast.len());

    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let ctx = soc_collector::parse::ParseContext::new("test", None);
    let (mut events, mut matches, mut diffs, mut unparsed) = (0usize, 0usize, Vec::new(), 0usize);
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut scratch = FlatScratch::new();
    let mut idx = Vec::new();
    for (file, line) in &lines {
        let Some(mut ev) = sigma_corpus::normalize(line, &ctx) else {
            unparsed += 1;
            continue;
        };
        reference.normalize(&mut ev);
        events += 1;
        let a = fired(&fast, &ev);
        let b = fired(&reference, &ev);
        idx.clear();
        let flat: BTreeSet<String> = match fast.matching_rules_json(line, &mut scratch, &mut idx) {
            Ok(()) => idx.iter().map(|i| fast.rules()[*i].id.clone()).collect(),
            Err(e) => {
                diffs.push(format!("{file}: fast path failed: {e}"));
                continue;
            }
        };
        matches += b.len();
        for r in &b {
            *per_rule.entry(r.clone()).or_default() += 1;
        }
        for (got, path) in [(&a, "fast"), (&flat, "fast from JSON")] {
            for r in got.symmetric_difference(&b) {
                if allowed.contains_key(r.as_str()) {
                    continue;
                }
                let side = if got.contains(r) { format!("{path} only") } else { format!("rsigma, not {path}") };
                let record = ev.log.as_ref().map(|l| serde_json::Value::Object(l.fields.clone())).unwrap_or_default();
                diffs.push(format!("{r} ({side}) in {file}: {record}"));
            }
        }
    }
    eprintln!(
        "events: {events} ({unparsed} not parsed), rsigma matches: {matches} by {} rules, differences: {}",
        per_rule.len(),
        diffs.len()
    );
    for d in diffs.iter().take(20) {
        eprintln!("  DIFF {d}");
    }
    assert!(
        only_fast.is_empty() && only_ref.is_empty(),
        "loaded only by fast: {only_fast:?}; only by rsigma: {only_ref:?}"
    );
    assert!(events > 25_000, "{events} events");
    assert!(matches > 0);
    assert!(diffs.is_empty(), "{} differences", diffs.len());
}
