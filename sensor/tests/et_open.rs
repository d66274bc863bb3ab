//! Loads every enabled rule of the Emerging Threats Open ruleset (`../shared/corpora/et-open`,
//! a tar.xz unpacked into a temporary directory) and prints how many load, how many are
//! rejected, and the top rejection keywords and reasons. Fails below the load rate the engine
//! reached. Skips (visibly) without the corpora or without `tar`.

use soc_sensor::detect::{Classifications, DetectorBuilder, rule_stats, split_rules};
use std::path::PathBuf;
use std::time::Instant;

/// Share of the enabled rules that must load (the rate reached, rounded down).
const MIN_LOADED: f64 = 0.995;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn et_open_enabled_rules_load_and_rejections_are_reported() {
    let archive = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/et-open/et-open-rules.tar.xz");
    if !archive.exists() {
        eprintln!("SKIPPED et_open: {} not found", archive.display());
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("soc-et-open-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temporary directory");
    let status = std::process::Command::new("tar").arg("-xJf").arg(&archive).arg("-C").arg(&dir.0).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED et_open: could not unpack {} with tar -xJf", archive.display());
        return;
    }
    let rules_dir = dir.0.join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rules_dir)
        .expect("rules directory in the archive")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let classes = Classifications::load(rules_dir.join("classification.config")).expect("classification.config");
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
