//! Finding and parsing Sigma rule files.
//!
//! Every document that cannot be used is reported as a [`RuleLoadError`] naming its file:
//! unreadable files, YAML or Sigma syntax errors, files without any Sigma document, and
//! documents no engine evaluates. Correlation documents are loaded by
//! [`crate::correlation`] from the same files; here they only count as usable. Nothing is skipped
//! silently.

mod condition;
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
    /// Finding the rule files (directory walk; the other cores read and parse the files
    /// found meanwhile).
    pub walk: Duration,
    /// Reading and parsing the files, from the end of the walk (wall time, all threads).
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
    /// Freeing the parsed rules once compiled (tens of thousands of small blocks).
    pub free: Duration,
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
    let mut out = Vec::new();
    for p in paths {
        walk_root(p, &mut |f| out.push(f), errors);
    }
    out.sort();
    out.dedup();
    out
}

/// The rule files of one path given to the loader (see [`rule_files`]), passed to `emit` in
/// sorted order: each directory's entries are sorted and walked depth first.
fn walk_root(root: &Path, emit: &mut dyn FnMut(PathBuf), errors: &mut Vec<RuleLoadError>) {
    fn walk(dir: &Path, emit: &mut dyn FnMut(PathBuf), errors: &mut Vec<RuleLoadError>) {
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
        // By the bytes of the paths, which share `dir/`: the order of their names, as paths
        // compare, without splitting each path into components at every comparison.
        found.sort_unstable_by(|a, b| a.0.as_os_str().as_encoded_bytes().cmp(b.0.as_os_str().as_encoded_bytes()));
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
                    walk(&p, emit, errors);
                }
            } else if is_rule_file(&p) {
                emit(p);
            }
        }
    }
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => walk(root, emit, errors),
        Ok(_) => emit(root.to_path_buf()),
        Err(e) => errors.push(RuleLoadError::new(root, format!("cannot open rule path: {e}"))),
    }
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
/// its `stat` for the size: `buf` is kept zero-filled to its largest size, the file read into it
/// until the end).
fn read_text<'b>(file: &Path, buf: &'b mut Vec<u8>) -> std::io::Result<&'b str> {
    use std::io::Read;
    let mut f = std::fs::File::open(file)?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).max(64 * 1024), 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    std::str::from_utf8(&buf[..len])
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// Reads and parses the files of `files` into a [`Parsed`] (its timings: `read` and `parse`).
/// A panic of the parser (a bug in the YAML library) is reported for every file of the batch
/// rather than taking the process down.
fn load_batch(files: &[PathBuf], buf: &mut Vec<u8>) -> (Parsed, Vec<RuleLoadError>) {
    let run = std::panic::AssertUnwindSafe(|| {
        let mut parsed = Parsed::default();
        let mut errors = Vec::new();
        for file in files {
            let t = Instant::now();
            let text = read_text(file, buf);
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
    });
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        let errors = files
            .iter()
            .map(|f| RuleLoadError::new(f, "not loaded: the rule parser panicked on this file's batch"))
            .collect();
        (Parsed { files: files.len(), ..Parsed::default() }, errors)
    })
}

/// Files per batch handed to a parsing thread: small, so that the other cores start while the
/// walk goes on and finish together.
const BATCH: usize = 16;

/// Batches of files found by the walk, waiting for a parsing thread, each with its place in
/// the final order; `done` once the walk is over.
#[derive(Default)]
struct Queue {
    batches: std::collections::VecDeque<(u64, Vec<PathBuf>)>,
    done: bool,
}

/// Reads and parses every rule file under `paths`, on all cores, in the order of
/// [`rule_files`] (the same rules, filters and errors, in the same order, as one thread
/// would give). The other cores parse the files while this thread is still walking the
/// directories (in batches of [`BATCH`] files), then this thread parses too; the results
/// are joined in file order.
pub(crate) fn load_paths(paths: &[PathBuf], errors: &mut Vec<RuleLoadError>) -> Parsed {
    let start = Instant::now();
    // Roots are walked in the order given (walk errors keep that order) but their files are
    // placed in sorted order: the sorted roots' files in turn, each root's already sorted.
    // That is `rule_files`' order unless a root holds another (its files would come twice):
    // then walk first, the simple way.
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    if sorted.windows(2).any(|w| w[1].starts_with(w[0])) {
        return load_walked(paths, errors, start);
    }
    let rank = |p: &PathBuf| sorted.iter().position(|s| *s == p).unwrap_or(0);
    let queue = std::sync::Mutex::new(Queue::default());
    let ready = std::sync::Condvar::new();
    let lock = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Takes batches until the walk is over and none is left.
    let parse = || {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let mut q = lock();
            let batch = loop {
                if let Some(b) = q.batches.pop_front() {
                    break Some(b);
                }
                if q.done {
                    break None;
                }
                q = ready.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner);
            };
            drop(q);
            let Some((place, files)) = batch else { return out };
            out.push((place, load_batch(&files, &mut buf)));
        }
    };
    let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
    let mut walk = Duration::ZERO;
    let mut walk_errors = Vec::new();
    let mut done = std::thread::scope(|s| {
        let handles: Vec<_> = (0..helpers).map(|_| s.spawn(parse)).collect();
        // Batches numbered root by root in sorted order, then in walk order.
        let mut pending: Vec<PathBuf> = Vec::with_capacity(BATCH);
        let send = |place: u64, batch: Vec<PathBuf>| {
            lock().batches.push_back((place, batch));
            ready.notify_one();
        };
        for p in paths {
            let base = (rank(p) as u64) << 32;
            let mut n = 0u64;
            walk_root(
                p,
                &mut |f| {
                    pending.push(f);
                    if pending.len() == BATCH {
                        send(base + n, std::mem::replace(&mut pending, Vec::with_capacity(BATCH)));
                        n += 1;
                    }
                },
                &mut walk_errors,
            );
            if !pending.is_empty() {
                send(base + n, std::mem::take(&mut pending));
            }
        }
        lock().done = true;
        ready.notify_all();
        walk = start.elapsed();
        let mut done = parse();
        for h in handles {
            // A helper that panicked outside the parser (a bug): the panic goes on here.
            match h.join() {
                Ok(d) => done.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(place, _)| *place);
    errors.extend(walk_errors);
    let mut parsed = Parsed::default();
    parsed.timings.walk = walk;
    parsed.timings.read_parse = start.elapsed() - walk;
    for (_, (p, e)) in done {
        parsed.add(p);
        errors.extend(e);
    }
    parsed
}

impl Parsed {
    /// Appends `other` (files read later).
    fn add(&mut self, other: Parsed) {
        self.timings.read += other.timings.read;
        self.timings.parse += other.timings.parse;
        self.files += other.files;
        self.timings.quick_files += other.timings.quick_files;
        self.rules.extend(other.rules);
        self.filters.extend(other.filters);
    }
}

/// [`load_paths`] for roots that hold one another: the sorted, de-duplicated [`rule_files`],
/// then read and parsed on all cores in contiguous chunks.
fn load_walked(paths: &[PathBuf], errors: &mut Vec<RuleLoadError>, start: Instant) -> Parsed {
    let files = rule_files(paths, errors);
    let walk = start.elapsed();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().div_ceil(64)).max(1);
    let chunks: Vec<(Parsed, Vec<RuleLoadError>)> = if threads == 1 {
        vec![load_batch(&files, &mut Vec::new())]
    } else {
        let size = files.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = files.chunks(size).map(|c| s.spawn(move || load_batch(c, &mut Vec::new()))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        })
    };
    let mut parsed = Parsed::default();
    parsed.timings.walk = walk;
    parsed.timings.read_parse = start.elapsed() - walk;
    for (p, e) in chunks {
        parsed.add(p);
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
