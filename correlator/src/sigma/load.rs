//! Finding and parsing Sigma rule files.
//!
//! Every document that cannot be used is reported as a [`RuleLoadError`] naming its file:
//! unreadable files, YAML or Sigma syntax errors, files without any Sigma document, and
//! documents no engine evaluates. Correlation documents are loaded by
//! [`crate::correlation`] from the same files; here they only count as usable. Nothing is skipped
//! silently.

mod rule;
mod yaml;

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
    /// Files parsed by the fast path (the others by rsigma-parser's YAML parser).
    pub quick_files: usize,
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
        // The entry's type comes with the directory listing (no `stat` per file); symbolic links
        // (and file systems that do not report types) are followed with `metadata`.
        let mut found: Vec<(PathBuf, Option<std::fs::FileType>)> = Vec::new();
        for entry in entries {
            match entry {
                Ok(en) => found.push((en.path(), en.file_type().ok().filter(|t| !t.is_symlink()))),
                Err(e) => errors.push(RuleLoadError::new(dir, format!("cannot read directory entry: {e}"))),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for (p, file_type) in found {
            if is_hidden(&p) {
                continue;
            }
            let is_dir = match file_type {
                Some(t) => t.is_dir(),
                None => match std::fs::metadata(&p) {
                    Ok(m) => m.is_dir(),
                    Err(e) => {
                        errors.push(RuleLoadError::new(&p, format!("cannot stat: {e}")));
                        continue;
                    }
                },
            };
            if is_dir {
                if !is_pipelines_dir(&p) {
                    walk(&p, out, errors);
                }
            } else if is_rule_file(&p) {
                out.push(p);
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
///
/// A file of plain detection rules, in the YAML subset rule files use, takes a fast path
/// ([`yaml`] reads the tree, [`rule`] builds rsigma's rules from it); every other file, and
/// every file with an error or a warning, goes through `rsigma_parser::parse_sigma_yaml`. Both
/// give the same rules.
pub(crate) fn parse_source(file: &Path, text: &str, parsed: &mut Parsed, errors: &mut Vec<RuleLoadError>) {
    parsed.files += 1;
    if let Some(collection) = rule::parse_quick(text) {
        parsed.timings.quick_files += 1;
        parsed.rules.extend(collection.rules.into_iter().map(|r| (file.to_path_buf(), r)));
        return;
    }
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

/// The text of `file`, read into `buf` (as `std::fs::read_to_string`, without its allocation and
/// `stat`).
fn read_text<'b>(file: &Path, buf: &'b mut Vec<u8>) -> std::io::Result<&'b str> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(file)?.read_to_end(buf)?;
    std::str::from_utf8(buf)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
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
        // One buffer per thread, reused from file to file.
        let mut buf = Vec::new();
        for file in chunk {
            let t = Instant::now();
            let text = read_text(file, &mut buf);
            let read = t.elapsed();
            parsed.timings.read += read;
            match text {
                Ok(text) => {
                    parse_source(file, text, &mut parsed, &mut errors);
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
        parsed.timings.quick_files += p.timings.quick_files;
        parsed.rules.extend(p.rules);
        parsed.filters.extend(p.filters);
        errors.extend(e);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: t\ndetection:\n    s:\n        a: b\n    condition: s\n";

    #[test]
    fn the_walk_follows_symbolic_links_skips_hidden_and_pipelines_and_reports_dangling_links() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("rules");
        let other = dir.path().join("elsewhere");
        for d in [root.join("a"), root.join(".git"), root.join(PIPELINES_DIR), other.clone()] {
            std::fs::create_dir_all(d).expect("create");
        }
        for f in [root.join("a/x.yml"), root.join(".git/h.yml"), root.join("pipelines/p.yml"), other.join("y.yaml")] {
            std::fs::write(f, RULE).expect("write");
        }
        std::fs::write(root.join("README.md"), "not a rule").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&other, root.join("linked")).expect("symlink");
            std::os::unix::fs::symlink(dir.path().join("missing.yml"), root.join("dangling.yml")).expect("symlink");
        }
        let mut errors = Vec::new();
        let files = rule_files(std::slice::from_ref(&root), &mut errors);
        let names: Vec<String> =
            files.iter().map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string()).collect();
        if cfg!(unix) {
            assert_eq!(names, ["a/x.yml", "linked/y.yaml"]);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].file.ends_with("dangling.yml") && errors[0].reason.starts_with("cannot stat"));
        } else {
            assert_eq!(names, ["a/x.yml"]);
        }
    }

    #[test]
    fn rules_and_errors_are_the_same_on_the_fast_path_and_through_rsigma() {
        let mut quick = Parsed::default();
        let mut errors = Vec::new();
        parse_source(Path::new("q.yml"), RULE, &mut quick, &mut errors);
        assert_eq!(quick.timings.quick_files, 1);
        assert!(errors.is_empty());
        let full = parse_sigma_yaml(RULE).expect("rsigma parses it");
        assert_eq!(quick.rules.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), full.rules);
        // A warning: rsigma's wording, with the file.
        let mut parsed = Parsed::default();
        parse_source(Path::new("w.yml"), &format!("{RULE}level: severe\n"), &mut parsed, &mut errors);
        assert_eq!(parsed.timings.quick_files, 0);
        assert_eq!(errors, [RuleLoadError::new("w.yml", "invalid level: 'severe'")]);
        assert_eq!(parsed.rules.len(), 1);
    }
}
