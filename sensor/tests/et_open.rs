//! Loads every enabled rule of the Emerging Threats Open ruleset (`../shared/corpora/et-open`,
//! a tar.xz unpacked into a temporary directory) and prints how many load, how many are
//! rejected, and the top rejection keywords and reasons. Fails below the load rate the engine
//! reached. Skips (visibly) without the corpora or without `tar`.

use soc_sensor::detect::{DetectorBuilder, rule_stats, split_rules};
use std::time::Instant;

/// Share of the enabled rules that must load (the rate reached, rounded down).
const MIN_LOADED: f64 = 0.998;

mod common;

#[test]
fn et_open_enabled_rules_load_and_rejections_are_reported() {
    let Some((_dir, files, classes)) = common::et_open("et_open") else { return };
    let total: usize =
        files.iter().map(|f| split_rules(&String::from_utf8_lossy(&std::fs::read(f).expect("rules file"))).len()).sum();

    let t0 = Instant::now();
    let mut b = DetectorBuilder::new().classifications(classes);
    for f in &files {
        b.add_file(f);
    }
    let (detector, errors) = b.build();
    let load = t0.elapsed();
    let stats = rule_stats(&errors);
    let loaded = detector.len();
    let rate = loaded as f64 / total.max(1) as f64;
    eprintln!(
        "ET Open: {} files, {total} enabled rules: {loaded} loaded ({:.2}%), {} rejected, {} errors, in {load:.2?} \
         (debug build)",
        files.len(),
        rate * 100.0,
        stats.rejected_rules,
        stats.errors
    );
    eprintln!("rejected rules per keyword:");
    for (k, n) in stats.by_keyword.iter().take(30) {
        eprintln!("  {n:>6}  {k}");
    }
    eprintln!("rules unlocked by implementing one keyword:");
    for (k, n) in stats.sole_blocker.iter().take(20) {
        eprintln!("  {n:>6}  {k}");
    }
    eprintln!("errors per reason:");
    for (r, n) in stats.by_reason.iter().take(30) {
        eprintln!("  {n:>6}  {r}");
    }
    if std::env::var_os("ET_OPEN_LIST_REJECTED").is_some() {
        for e in &errors {
            eprintln!("{e}");
        }
    }
    // every enabled rule is loaded or rejected with a reason; ET Open has no duplicate sids
    assert_eq!(loaded + stats.rejected_rules, total, "rules neither loaded nor rejected");
    assert!(errors.iter().all(|e| e.line > 0 && !e.reason.is_empty()), "errors without a position or reason");
    assert!(rate >= MIN_LOADED, "ET Open load rate {:.2}% below the floor {:.2}%", rate * 100.0, MIN_LOADED * 100.0);
}
