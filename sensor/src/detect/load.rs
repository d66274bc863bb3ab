//! Reading, parsing and compiling rule files, spread over the machine's cores (at most two
//! threads taking chunks of rules in turn, across the files). The rules and errors come out per
//! file, in the order of its text, as if each file had been compiled alone.

use super::RuleError;
use super::compile::{Classifications, CompiledRule, Interner, compile_rule_in};
use super::parse::{RawRule, Vars, parse_rule, split_rules};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// Below this many rules one thread compiles them all (a thread costs more than it saves).
const PARALLEL_MIN: usize = 256;

/// Rules per unit of work the threads take in turn: small, so that both finish together
/// (rules differ widely in cost: a pcre, a long address list), yet many rules per lock.
const CHUNK: usize = 64;

/// Compiled rules and errors, both in text order (of a chunk of rules, of a file).
pub(crate) type Compiled = (Vec<CompiledRule>, Vec<RuleError>);

/// The shared context of one load.
pub(crate) struct Ctx<'a> {
    pub vars: &'a Vars,
    pub classes: &'a Classifications,
    /// Metadata entries, classtype and category strings and compiled pcres, shared by the rules.
    pub strings: &'a Mutex<Interner>,
}

/// The text (lossy UTF-8) and display name of a file, or the error (at line 0) saying why it
/// cannot be read.
pub(crate) fn read_text(p: &Path) -> Result<(String, String), RuleError> {
    let name = p.display().to_string();
    match std::fs::read(p) {
        // valid UTF-8 (the usual case) is taken as it is, without a copy
        Ok(bytes) => {
            Ok((String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()), name))
        }
        Err(e) => Err(RuleError {
            file: name,
            line: 0,
            column: 0,
            keyword: None,
            reason: format!("cannot read the file: {e}"),
            rule_line: 0,
        }),
    }
}

/// The compiled rules of `text` and the errors, in chunks, in text order.
pub(crate) fn parse_and_compile(text: &str, file: &str, ctx: &Ctx<'_>) -> Vec<Compiled> {
    run(&[Source::Text { text, name: file }], ctx).pop().unwrap_or_default()
}

/// Reads, parses and compiles rule files: the outcome of each file in chunks (in text order),
/// the files in the order given (a file that cannot be read gives that error and no rules).
pub(crate) fn load_files(paths: &[&Path], ctx: &Ctx<'_>) -> Vec<Vec<Compiled>> {
    let sources: Vec<Source<'_>> = paths.iter().map(|p| Source::File(p)).collect();
    run(&sources, ctx)
}

/// Rules text to load.
enum Source<'a> {
    Text { text: &'a str, name: &'a str },
    File(&'a Path),
}

/// A chunk of a file's rules: (file index, chunk index in the file, file name, rules).
type Chunk = (usize, usize, Arc<str>, Vec<RawRule>);

/// What the threads share: the files not yet split, the chunks not yet compiled.
struct Feed {
    next_source: usize,
    chunks: std::collections::VecDeque<Chunk>,
    /// Threads splitting a file now (whose chunks are still to come).
    splitting: usize,
    read_errors: Vec<(usize, RuleError)>,
}

/// Puts the chunks of a split file in the [`Feed`] and wakes the threads waiting for them,
/// when dropped.
struct SplitDone<'a> {
    feed: &'a Mutex<Feed>,
    ready: &'a std::sync::Condvar,
    chunks: Vec<Chunk>,
}

impl Drop for SplitDone<'_> {
    fn drop(&mut self) {
        let mut f = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        f.chunks.extend(std::mem::take(&mut self.chunks));
        f.splitting -= 1;
        self.ready.notify_all();
    }
}

/// One piece of work taken from the [`Feed`].
enum Work {
    Split(usize),
    Compile(Chunk),
}

/// The compiled rules of every source. Each thread takes the next chunk of rules, or when
/// there is none, reads and splits the next file into chunks: at most the rules of the files
/// being compiled are held as text at once. The outcomes are put back in the order of the
/// sources and of the rules in each.
fn run(sources: &[Source<'_>], ctx: &Ctx<'_>) -> Vec<Vec<Compiled>> {
    let feed = Mutex::new(Feed { next_source: 0, chunks: Default::default(), splitting: 0, read_errors: Vec::new() });
    let ready = std::sync::Condvar::new();
    let lock = || feed.lock().unwrap_or_else(PoisonError::into_inner);
    // each rule is parsed and compiled on the same thread, its parse tree dropped at once
    let compile = |file: &Arc<str>, raws: Vec<RawRule>| {
        let mut out: Compiled = (Vec::with_capacity(raws.len()), Vec::new());
        for raw in raws {
            match parse_rule(raw, file.clone(), ctx.vars) {
                Ok(p) => match compile_rule_in(&p, ctx.classes, Some(ctx.strings)) {
                    Ok(r) => out.0.push(r),
                    Err(es) => out.1.extend(es),
                },
                Err(e) => out.1.push(e),
            }
        }
        out
    };
    let split = |i: usize| {
        let (name, raws): (Arc<str>, Vec<RawRule>) = match sources.get(i) {
            Some(Source::Text { text, name }) => (Arc::from(*name), split_rules(text)),
            Some(Source::File(p)) => match read_text(p) {
                Ok((text, name)) => (Arc::from(name), split_rules(&text)),
                Err(e) => {
                    lock().read_errors.push((i, e));
                    (Arc::from(""), Vec::new())
                }
            },
            None => (Arc::from(""), Vec::new()),
        };
        let mut chunks = Vec::with_capacity(raws.len().div_ceil(CHUNK));
        let mut rest = raws.into_iter();
        loop {
            let c: Vec<RawRule> = rest.by_ref().take(CHUNK).collect();
            if c.is_empty() {
                break;
            }
            chunks.push((i, chunks.len(), name.clone(), c));
        }
        chunks
    };
    // takes work until none is left: the results of each chunk, with its file and index
    let work = || {
        let mut done: Vec<(usize, usize, Compiled)> = Vec::new();
        loop {
            let next = {
                let mut f = lock();
                loop {
                    if let Some(c) = f.chunks.pop_front() {
                        break Some(Work::Compile(c));
                    }
                    if f.next_source < sources.len() {
                        f.next_source += 1;
                        f.splitting += 1;
                        break Some(Work::Split(f.next_source - 1));
                    }
                    if f.splitting == 0 {
                        break None;
                    }
                    // the other thread is splitting a file: its chunks are coming
                    f = ready.wait(f).unwrap_or_else(PoisonError::into_inner);
                }
            };
            match next {
                None => break,
                Some(Work::Split(i)) => {
                    // the split is marked done even if it panics (a bug: it then goes on
                    // unwinding), so that the other thread does not wait for it forever
                    let mut marker = SplitDone { feed: &feed, ready: &ready, chunks: Vec::new() };
                    marker.chunks = split(i);
                }
                Some(Work::Compile((i, k, name, raws))) => {
                    done.push((i, k, compile(&name, raws)));
                }
            }
        }
        done
    };
    // a single source is split first: one thread compiles a short one alone
    let one_short = sources.len() == 1 && {
        let chunks = split(0);
        let short = chunks.iter().map(|c| c.3.len()).sum::<usize>() < PARALLEL_MIN;
        let mut f = lock();
        f.chunks.extend(chunks);
        f.next_source = 1;
        short
    };
    let mut done = if one_short || threads() < 2 {
        work()
    } else {
        let (mut mine, other) = std::thread::scope(|s| {
            let other = s.spawn(work);
            (work(), other.join())
        });
        match other {
            Ok(theirs) => mine.extend(theirs),
            // a panic while compiling is a bug, and it is not hidden: it goes on here
            Err(p) => std::panic::resume_unwind(p),
        }
        mine
    };
    done.sort_unstable_by_key(|(i, k, _)| (*i, *k));
    let mut out: Vec<Vec<Compiled>> = (0..sources.len()).map(|_| Vec::new()).collect();
    let feed = feed.into_inner().unwrap_or_else(PoisonError::into_inner);
    for (i, e) in feed.read_errors {
        if let Some(chunks) = out.get_mut(i) {
            chunks.push((Vec::new(), vec![e]));
        }
    }
    for (i, _, c) in done {
        if let Some(chunks) = out.get_mut(i) {
            chunks.push(c);
        }
    }
    out
}

/// Threads to use: two when the machine has them.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(2)
}

#[cfg(test)]
mod tests {
    use crate::detect::DetectorBuilder;

    #[test]
    fn metadata_entries_are_shared_by_the_rules_of_both_compiling_threads() {
        // enough rules for two threads, two distinct dates
        let n = 2 * super::PARALLEL_MIN;
        let text: String = (1..=n)
            .map(|sid| {
                format!(
                    "alert tcp any any -> any any (content:\"x{sid}\"; metadata:deployment Perimeter, created_at 2020_01_0{}; sid:{sid};)\n",
                    sid % 2
                )
            })
            .collect();
        let mut b = DetectorBuilder::new();
        b.add_rules(&text, "t.rules");
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(d.rules().len(), n);
        let entry = |i: usize, k: &str| d.rules()[i].meta.metadata.get(k).map(|v| v.as_ptr());
        let first = entry(0, "deployment");
        assert!(first.is_some());
        assert!((0..n).all(|i| entry(i, "deployment") == first), "one entry for every rule");
        let dates: std::collections::HashSet<_> = (0..n).filter_map(|i| entry(i, "created_at")).collect();
        assert_eq!(dates.len(), 2, "one entry per distinct date");
        assert_eq!(d.rules()[0].meta.metadata.get("created_at").map(|v| &*v[0]), Some("2020_01_01"));
    }

    /// A file of `n` rules from sid `first`, every 7th one rejected (an unknown keyword), every
    /// 5th with one of a few pcres (the same pattern in many rules, one rejected).
    fn rules_text(first: usize, n: usize) -> String {
        (first..first + n)
            .map(|sid| {
                let extra = match (sid % 7, sid % 5) {
                    (0, _) => "nosuchkeyword; ".to_string(),
                    (_, 0) => format!("pcre:\"/x{}[0-9]+/i\"; ", sid % 3),
                    (_, 1) if sid % 2 == 0 => "pcre:\"/a(?R)/\"; ".to_string(),
                    _ => String::new(),
                };
                format!("alert tcp any any -> any any (msg:\"m{sid}\"; content:\"x{sid}\"; {extra}sid:{sid};)\n# c\n\n")
            })
            .collect()
    }

    #[test]
    fn files_compiled_together_give_the_rules_and_errors_of_each_file_compiled_alone() {
        let dir = tempfile::tempdir().unwrap();
        // files big and small (the threads take chunks across them), one missing in between
        let sizes = [3 * super::CHUNK + 5, 2, 0, 40, super::PARALLEL_MIN + 1, 1];
        let mut paths = Vec::new();
        let mut first = 1;
        for (i, n) in sizes.into_iter().enumerate() {
            let p = dir.path().join(format!("f{i}.rules"));
            std::fs::write(&p, rules_text(first, n)).unwrap();
            first += n;
            paths.push(p);
            if i == 2 {
                paths.push(dir.path().join("missing.rules"));
            }
        }
        let mut one_by_one = DetectorBuilder::new();
        for p in &paths {
            one_by_one.add_file(p);
        }
        let mut together = DetectorBuilder::new();
        together.add_files(&paths);
        assert_eq!(together.len(), one_by_one.len());
        let (a, a_errors) = one_by_one.build();
        let (b, b_errors) = together.build();
        let sids = |d: &crate::detect::Detector| d.rules().iter().map(|r| r.meta.sid).collect::<Vec<_>>();
        assert_eq!(sids(&b), sids(&a));
        assert_eq!(b_errors, a_errors);
        // the rejections are all there: unknown keywords, the recursive pcre, the missing file
        let total: usize = sizes.iter().sum();
        let rejected = (1..=total).filter(|s| s % 7 == 0 || (s % 5 == 1 && s % 2 == 0)).count();
        assert_eq!(a.rules().len(), total - rejected);
        assert_eq!(a_errors.len(), rejected + 1, "{a_errors:#?}");
        assert!(a_errors.iter().any(|e| e.line == 0 && e.file.ends_with("missing.rules")));
        assert!(a_errors.iter().any(|e| e.reason.contains("recursion")));
        // in text order: the errors of each file by line, the files in the order given
        let order: Vec<(usize, usize)> = a_errors
            .iter()
            .map(|e| (paths.iter().position(|p| p.display().to_string() == e.file).unwrap(), e.line))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }
}
