//! Helpers shared by the integration tests that need the Emerging Threats Open ruleset.

use soc_sensor::detect::Classifications;
use std::path::PathBuf;

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ET Open unpacked into a temporary directory: the directory (kept alive by the caller), its
/// `.rules` files sorted, and its classification.config. `None`, with a visible SKIPPED line
/// naming `test`, when the archive is absent or `tar -xJf` fails.
pub fn et_open(test: &str) -> Option<(TempDir, Vec<PathBuf>, Classifications)> {
    let archive = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/et-open/et-open-rules.tar.xz");
    if !archive.exists() {
        eprintln!("SKIPPED {test}: {} not found", archive.display());
        return None;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("soc-{test}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temporary directory");
    let status = std::process::Command::new("tar").arg("-xJf").arg(&archive).arg("-C").arg(&dir.0).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED {test}: could not unpack {} with tar -xJf", archive.display());
        return None;
    }
    let rules_dir = dir.0.join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rules_dir)
        .expect("rules directory in the archive")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let classes = Classifications::load(rules_dir.join("classification.config")).expect("classification.config");
    Some((dir, files, classes))
}
