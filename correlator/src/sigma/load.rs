//! Finding and parsing Sigma rule files.
//!
//! Every document that cannot be used is reported as a [`RuleLoadError`] naming its file:
//! unreadable files, YAML or Sigma syntax errors, files without any Sigma document, and
//! documents no engine evaluates. Correlation documents are loaded by
//! [`crate::correlation`] from the same files; here they only count as usable. Nothing is skipped
//! silently.

use rsigma_parser::{FilterRule, SigmaRule, parse_sigma_yaml};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a rule file, or a document in it, was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleLoadError {
    /// The file (as found from the paths given to the loader).
    pub file: PathBuf,
    /// What went wrong, with the rule's title when known.
    pub reason: String,
}

impl RuleLoadError {
    pub fn new(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        RuleLoadError { file: file.into(), reason: reason.into() }
    }
}

impl fmt::Display for RuleLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for RuleLoadError {}

/// Parsed documents, each with the file it came from.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub rules: Vec<(PathBuf, SigmaRule)>,
    pub filters: Vec<(PathBuf, FilterRule)>,
    /// Files read (whether or not they yielded rules).
    pub files: usize,
    /// Where the time went.
    pub timings: LoadTimings,
}

/// Where the time of a rule load went (see [`crate::sigma::SigmaRules::load_timings`]).
///
/// `walk`, `compile`, `add`, `index` and `pipelines` are wall time of the loading thread;
/// `read` and `parse` are summed over the threads that read and parsed files (so they can
/// exceed `read_parse`, the wall time of that step, on several cores).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadTimings {
    /// Finding the rule files (directory walk).
    pub walk: Duration,
    /// Reading and parsing the files (wall time, all threads).
    pub read_parse: Duration,
    /// Reading the files, summed over the threads.
    pub read: Duration,
    /// YAML and Sigma parsing, summed over the threads.
    pub parse: Duration,
    /// Compiling the rules ahead (the engine's `prepare`, on all cores).
    pub compile: Duration,
    /// Adding the rules and filters in file order (ids, duplicates, rule information).
    pub add: Duration,
    /// The engine's `finish` (indexes and automata).
    pub index: Duration,
    /// The processing pipelines.
    pub pipelines: Duration,
}

fn is_rule_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("yml" | "yaml"))
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// The rule files under `paths`: a file is taken as given (whatever its extension); a
/// directory is walked recursively for `.yml`/`.yaml` files, skipping hidden entries
/// (`.git`, `.github`, ...) and subdirectories named [`PIPELINES_DIR`] (processing pipelines
/// live there, next to the rules, and are not rules). Sorted and de-duplicated, so loading is
/// deterministic.
/// Name of the directory of processing pipelines inside a rule tree (`rules/pipelines/`).
pub const PIPELINES_DIR: &str = "pipelines";

/// Whether `p` is a [`PIPELINES_DIR`] directory.
pub fn is_pipelines_dir(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()) == Some(PIPELINES_DIR)
}

pub(crate) fn rule_files(paths: &[PathBuf], errors: &mut Vec<RuleLoadError>) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<RuleLoadError>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(RuleLoadError::new(dir, format!("cannot read directory: {e}")));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(en) => paths.push(en.path()),
                Err(e) => errors.push(RuleLoadError::new(dir, format!("cannot read directory entry: {e}"))),
            }
        }
        paths.sort();
        for p in paths {
            if is_hidden(&p) {
                continue;
            }
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() && is_pipelines_dir(&p) => {}
                Ok(m) if m.is_dir() => walk(&p, out, errors),
                Ok(_) if is_rule_file(&p) => out.push(p),
                Ok(_) => {}
                Err(e) => errors.push(RuleLoadError::new(&p, format!("cannot stat: {e}"))),
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut out, errors),
            Ok(_) => out.push(p.clone()),
            Err(e) => errors.push(RuleLoadError::new(p, format!("cannot open rule path: {e}"))),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parses one file's text (one or more YAML documents) into `parsed`.
pub(crate) fn parse_source(file: &Path, text: &str, parsed: &mut Parsed, errors: &mut Vec<RuleLoadError>) {
    parsed.files += 1;
    let collection = match parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            errors.push(RuleLoadError::new(file, e.to_string()));
            return;
        }
    };
    let before = errors.len();
    for e in &collection.errors {
        errors.push(RuleLoadError::new(file, e.clone()));
    }
    // Correlation documents are crate::correlation's (it reads the same files).
    let usable = collection.rules.len() + collection.filters.len() + collection.correlations.len();
    if usable == 0 && errors.len() == before {
        errors.push(RuleLoadError::new(file, "no Sigma rule in file"));
    }
    parsed.rules.extend(collection.rules.into_iter().map(|r| (file.to_path_buf(), r)));
    parsed.filters.extend(collection.filters.into_iter().map(|f| (file.to_path_buf(), f)));
}

/// Reads and parses every rule file under `paths`, on all cores: the files are split into
/// contiguous chunks, one per thread, and the results joined in file order (the same rules,
/// filters and errors, in the same order, as one thread would give).
pub(crate) fn load_paths(paths: &[PathBuf], errors: &mut Vec<RuleLoadError>) -> Parsed {
    let start = Instant::now();
    let files = rule_files(paths, errors);
    let walk = start.elapsed();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().div_ceil(64)).max(1);
    let load_chunk = |chunk: &[PathBuf]| {
        let mut parsed = Parsed::default();
        let mut errors = Vec::new();
        for file in chunk {
            let t = Instant::now();
            let text = std::fs::read_to_string(file);
            let read = t.elapsed();
            parsed.timings.read += read;
            match text {
                Ok(text) => {
                    parse_source(file, &text, &mut parsed, &mut errors);
                    parsed.timings.parse += t.elapsed() - read;
                }
                Err(e) => errors.push(RuleLoadError::new(file, format!("cannot read: {e}"))),
            }
        }
        (parsed, errors)
    };
    let chunks: Vec<(Parsed, Vec<RuleLoadError>)> = if threads == 1 {
        vec![load_chunk(&files)]
    } else {
        let size = files.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = files.chunks(size).map(|c| (c, s.spawn(move || load_chunk(c)))).collect();
            // A parser thread that panicked (a bug in the YAML library) is reported for every
            // file of its chunk rather than taking the process down.
            handles
                .into_iter()
                .map(|(c, h)| {
                    h.join().unwrap_or_else(|_| {
                        let errors = c
                            .iter()
                            .map(|f| RuleLoadError::new(f, "not loaded: the rule parser panicked on this file's chunk"))
                            .collect();
                        (Parsed { files: c.len(), ..Parsed::default() }, errors)
                    })
                })
                .collect()
        })
    };
    let mut parsed = Parsed::default();
    parsed.timings.walk = walk;
    parsed.timings.read_parse = start.elapsed() - walk;
    for (p, e) in chunks {
        parsed.timings.read += p.timings.read;
        parsed.timings.parse += p.timings.parse;
        parsed.files += p.files;
        parsed.rules.extend(p.rules);
        parsed.filters.extend(p.filters);
        errors.extend(e);
    }
    parsed
}
