//! Shared test material for the Sigma tests and the benchmark: the SigmaHQ rule folders and
//! the EVTX sample events of `../shared/corpora` (beside the workspace), normalized by the
//! collector. Everything returns `None` when the material (or `tar --zstd`) is absent, so
//! callers can skip visibly.
#![allow(dead_code)]

use soc_model::Event;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.join("sigma").is_dir().then_some(p)
}

/// The SigmaHQ rule folders: generic rules, threat hunting, emerging threats.
pub fn sigmahq_rule_dirs(root: &Path) -> Vec<PathBuf> {
    ["rules", "rules-threat-hunting", "rules-emerging-threats"].iter().map(|d| root.join("sigma").join(d)).collect()
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
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

/// Every line of every evtx-samples archive: (archive-relative file name, JSON text), in a
/// stable order. `None` when the archives cannot be unpacked.
pub fn evtx_lines(root: &Path) -> Option<Vec<(String, String)>> {
    let dir = root.join("evtx-samples");
    let mut archives = Vec::new();
    files(&dir, ".jsonl.tar.zst", &mut archives);
    if archives.is_empty() {
        return None;
    }
    let tmp = tempfile::tempdir().ok()?;
    for a in &archives {
        let ok = Command::new("tar").arg("--zstd").arg("-xf").arg(a).arg("-C").arg(tmp.path()).status();
        if !ok.is_ok_and(|s| s.success()) {
            return None;
        }
    }
    let mut jsonl = Vec::new();
    files(tmp.path(), ".jsonl", &mut jsonl);
    let mut out = Vec::new();
    for p in jsonl {
        let name = p.strip_prefix(tmp.path()).unwrap_or(&p).to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).ok()?;
        out.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| (name.clone(), l.to_string())));
    }
    Some(out)
}

/// One evtx JSON line normalized like the collector does (flattened fields, log source).
pub fn normalize(line: &str, ctx: &soc_collector::parse::ParseContext<'_>) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    soc_collector::parse::windows::parse(v, ctx).ok()
}
