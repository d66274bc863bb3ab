//! Sigma engines side by side: the correlator's own engine (`fast`) and the reference
//! (`rsigma`), with all SigmaHQ rules (rules, threat hunting, emerging threats) over the
//! evtx-samples events of `../shared/corpora`, on one thread.
//!
//! ```sh
//! cargo run --release -p soc-correlator --example sigma_bench [-- --seconds 10]
//! ```
//!
//! Per engine: rule loading time (read + parse + compile), rule memory (bytes still
//! allocated after loading, counted by a global allocator wrapper), then the events
//! repeated for at least `--seconds` per measurement:
//! * `full`: JSON text in, matched rules out, the processing pipelines applied. For `fast`,
//!   the fast path from JSON text (`SigmaRules::matching_rules_json`: only the fields the
//!   routed rules look up are parsed into values); for `rsigma`, JSON text ->
//!   `serde_json::Value` -> the collector's Windows normalizer -> pipelines -> routing +
//!   matching (the general path);
//! * `match`: routing + matching only, on events normalized (and pipelined) beforehand.
//!
//! The fast engine is also measured on the general path, to show what the path from JSON
//! text gains. `--full-only` stops after the `full` measurements (profiling).
//!
//! Rates are events per CPU second of the measuring thread (Linux `schedstat`; wall time
//! elsewhere), so that other work on the machine skews them less. Loading is wall time (it
//! uses every core). `--load-only N` loads the rules N times and stops (profiling): per load, the
//! split (walk, read/parse, compile, add, index, pipelines, freeing the parsed rules), the files
//! the fast parse path took and the rule memory after loading.
//!
//! It also evaluates one pass with both engines and reports whether every event raised the
//! same rules. Not a test: the figures depend on the machine and its load.
#![deny(unsafe_code)]

#[path = "../tests/sigma_corpus/mod.rs"]
mod sigma_corpus;

use soc_correlator::sigma::{EngineKind, FlatError, FlatScratch, SigmaRules};
use soc_model::Event;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// The one unsafe block of the benchmark: the `GlobalAlloc` contract requires `unsafe`; the
// implementation only forwards to the system allocator and counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as `GlobalAlloc::realloc`, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

struct Figures {
    name: &'static str,
    rules: usize,
    load: Duration,
    memory: isize,
    full_eps: f64,
    match_eps: f64,
    matches_per_pass: usize,
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux); `None`
/// elsewhere. On a machine shared with other work, events per CPU second are steadier than
/// events per wall second.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(s.split_whitespace().next()?.parse().ok()?))
}

/// With `--passes N`: every measurement runs exactly N passes (`--phase`'s; the others one),
/// whatever the time, so that counts such as `perf stat -e instructions` compare runs.
static PASSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `pass` (one pass over the events, returning the match count) until `secs` elapsed;
/// events per second (per CPU second of this thread when it is known, see [`thread_cpu`]).
///
/// A first pass, not timed, warms both engines alike (lazily built regexes and automata,
/// caches, buffers); with `--passes`, it is left out, so that instruction counts stay the
/// measured passes' (`--phase` runs one cold pass of each other measurement anyway).
fn rate(events: usize, secs: f64, mut pass: impl FnMut() -> usize) -> (f64, usize) {
    if secs > 0.0 && PASSES.load(Ordering::Relaxed) == 0 {
        pass();
    }
    let start = Instant::now();
    let cpu = thread_cpu();
    let fixed = match PASSES.load(Ordering::Relaxed) {
        0 => None,
        n if secs > 0.0 => Some(n),
        _ => Some(1),
    };
    let mut n = 0usize;
    let mut passes = 0usize;
    loop {
        let matches = pass();
        n += events;
        passes += 1;
        let wall = start.elapsed().as_secs_f64();
        if fixed.map_or(wall >= secs, |f| passes >= f) {
            let spent = match (cpu, thread_cpu()) {
                (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
                _ => wall,
            };
            return (n as f64 / spent, matches);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut secs = 10.0f64;
    let mut engines = vec![EngineKind::Fast, EngineKind::Rsigma];
    let mut load_only = 0usize;
    let mut full_only = false;
    // One measurement only (`full`, `general`, `match`; the others run one pass): profiling.
    let mut phase: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => secs = args.next().ok_or("--seconds needs a value")?.parse()?,
            // One engine only (profiling); the comparison needs both.
            "--engine" => engines = vec![args.next().ok_or("--engine needs a value")?.parse::<EngineKind>()?],
            // Rule loading only, repeated (profiling the loader).
            "--load-only" => load_only = args.next().ok_or("--load-only needs a count")?.parse()?,
            // The `full` measurement only (profiling the path from JSON text).
            "--full-only" => full_only = true,
            "--passes" => PASSES.store(args.next().ok_or("--passes needs a count")?.parse()?, Ordering::Relaxed),
            "--phase" => phase = Some(args.next().ok_or("--phase needs full, general or match")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let root = sigma_corpus::corpora().ok_or("../shared/corpora not found beside the workspace")?;
    if load_only > 0 {
        let dirs = sigma_corpus::sigmahq_rule_dirs(&root);
        for &kind in &engines {
            for _ in 0..load_only {
                let before = live();
                let t = Instant::now();
                let (rules, errors) = SigmaRules::load_with(&dirs, kind);
                let load = t.elapsed();
                let memory = live() - before;
                let s = rules.load_timings();
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                println!(
                    "{}: {} rules, {} errors, {} of {} files on the fast parse path, load {:.3} s = walk {:.0} + \
                     read/parse {:.0} (read {:.0}, parse {:.0} summed over threads) + compile {:.0} + add {:.0} + \
                     index {:.0} + pipelines {:.0} + free {:.0} ms; rule memory after loading {:.1} MiB",
                    kind.name(),
                    rules.len(),
                    errors.len(),
                    s.quick_files,
                    rules.file_count(),
                    load.as_secs_f64(),
                    ms(s.walk),
                    ms(s.read_parse),
                    ms(s.read),
                    ms(s.parse),
                    ms(s.compile),
                    ms(s.add),
                    ms(s.index),
                    ms(s.pipelines),
                    ms(s.free),
                    memory as f64 / (1024.0 * 1024.0),
                );
            }
        }
        return Ok(());
    }
    let lines = sigma_corpus::evtx_lines(&root).ok_or("evtx-samples could not be unpacked (tar --zstd)")?;
    let ctx = soc_collector::parse::ParseContext::new("bench", None);
    // Normalized and with the project's pipelines applied (what `match` evaluates).
    let pipelines = soc_correlator::sigma::Pipelines::builtin().map_err(|e| format!("{e:?}"))?;
    let events: Vec<Event> = lines
        .iter()
        .filter_map(|(_, l)| sigma_corpus::normalize(l, &ctx))
        .map(|mut ev| {
            pipelines.apply(&mut ev);
            ev
        })
        .collect();
    if events.len() != lines.len() {
        return Err(format!("{} of {} events did not normalize", lines.len() - events.len(), lines.len()).into());
    }
    let dirs = sigma_corpus::sigmahq_rule_dirs(&root);
    let secs_of = |p: &str| if phase.as_deref().is_none_or(|x| x == p) { secs } else { 0.0 };
    println!("{} events, rules from {} folders, >= {secs} s per measurement, one thread", events.len(), dirs.len());

    // The fixed cost both engines share: JSON parsing and normalization.
    let (norm_eps, _) = rate(lines.len(), if full_only || phase.is_some() { 0.0 } else { secs }, || {
        let mut n = 0;
        for (_, l) in &lines {
            n += usize::from(sigma_corpus::normalize(l, &ctx).is_some());
        }
        n
    });
    println!("JSON parse + normalize only: {norm_eps:.0} events/s");

    let mut figures = Vec::new();
    let mut general_fast = None;
    let mut per_event: Vec<Vec<Vec<usize>>> = Vec::new();
    let mut ids: Vec<Vec<String>> = Vec::new();
    for &kind in &engines {
        let before = live();
        let t = Instant::now();
        let (rules, errors) = SigmaRules::load_with(&dirs, kind);
        let load = t.elapsed();
        let memory = live() - before;
        if !errors.is_empty() {
            println!("{}: {} rules rejected, first: {}", kind.name(), errors.len(), errors[0]);
        }
        let mut idx = Vec::new();
        let mut scratch = FlatScratch::new();
        // The general path: parse, normalize, pipelines, match.
        let general = |l: &str, idx: &mut Vec<usize>| {
            if let Some(mut ev) = sigma_corpus::normalize(l, &ctx) {
                rules.normalize(&mut ev);
                if let Some(log) = &ev.log {
                    rules.matching_rules(log, idx);
                }
            }
        };
        let (full_eps, _) = rate(lines.len(), secs_of("full"), || {
            let mut m = 0;
            for (_, l) in &lines {
                idx.clear();
                match rules.matching_rules_json(l, &mut scratch, &mut idx) {
                    Ok(()) => {}
                    Err(FlatError::Unsupported) => general(l, &mut idx),
                    Err(FlatError::Json(_)) => {}
                }
                m += idx.len();
            }
            m
        });
        // The fast engine on the general path too, for the gain of the path from JSON text.
        let general_eps = if kind == EngineKind::Fast {
            let (eps, _) = rate(lines.len(), secs_of("general"), || {
                let mut m = 0;
                for (_, l) in &lines {
                    idx.clear();
                    general(l, &mut idx);
                    m += idx.len();
                }
                m
            });
            println!("{}: full on the general path (normalize, pipelines, match) {eps:.0} ev/s", kind.name());
            Some(eps)
        } else {
            None
        };
        if full_only {
            println!("{}: full {full_eps:.0} ev/s", kind.name());
            continue;
        }
        general_fast = general_fast.or(general_eps);
        let (match_eps, matches_per_pass) = rate(events.len(), secs_of("match"), || {
            let mut m = 0;
            for ev in &events {
                if let Some(log) = &ev.log {
                    idx.clear();
                    rules.matching_rules(log, &mut idx);
                    m += idx.len();
                }
            }
            m
        });
        // Regexes and prefilter automata are built on first use: what the rules hold once every
        // event was seen (the measurement buffers, a few KiB, included).
        println!(
            "{}: rule memory after the passes {:.1} MiB (after loading {:.1} MiB)",
            kind.name(),
            (live() - before) as f64 / (1024.0 * 1024.0),
            memory as f64 / (1024.0 * 1024.0)
        );
        // The sets compared: what the `full` measurement computed, event by event.
        let sets: Vec<Vec<usize>> = lines
            .iter()
            .map(|(_, l)| {
                let mut v = Vec::new();
                match rules.matching_rules_json(l, &mut scratch, &mut v) {
                    Ok(()) | Err(FlatError::Json(_)) => {}
                    Err(FlatError::Unsupported) => general(l, &mut v),
                }
                v
            })
            .collect();
        per_event.push(sets);
        ids.push(rules.rules().iter().map(|r| r.id.clone()).collect());
        figures.push(Figures {
            name: kind.name(),
            rules: rules.len(),
            load,
            memory,
            full_eps,
            match_eps,
            matches_per_pass,
        });
        println!(
            "{:>6}: {} rules, load {:.3} s, rule memory {:.1} MiB, full {:.0} ev/s, match only {:.0} ev/s, {} matches per pass",
            kind.name(),
            rules.len(),
            load.as_secs_f64(),
            memory as f64 / (1024.0 * 1024.0),
            full_eps,
            match_eps,
            matches_per_pass
        );
    }

    if let Some(g) = general_fast {
        println!("fast: path from JSON text vs general path: {:.2}x", figures[0].full_eps / g);
    }
    if figures.len() < 2 {
        return Ok(());
    }
    // Agreement, by rule id (each engine numbers its own rules).
    let named = |k: usize, e: usize| -> Vec<&str> {
        let mut v: Vec<&str> = per_event[k][e].iter().map(|i| ids[k][*i].as_str()).collect();
        v.sort_unstable();
        v
    };
    let differing = (0..events.len()).filter(|&e| named(0, e) != named(1, e)).count();
    let (f, r) = (&figures[0], &figures[1]);
    println!();
    println!(
        "| engine | rules | load (s) | rule memory (MiB) | full (events/s) | match only (events/s) | matches/pass |"
    );
    println!("|---|---|---|---|---|---|---|");
    for x in &figures {
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.0} | {:.0} | {} |",
            x.name,
            x.rules,
            x.load.as_secs_f64(),
            x.memory as f64 / (1024.0 * 1024.0),
            x.full_eps,
            x.match_eps,
            x.matches_per_pass
        );
    }
    println!();
    println!(
        "fast / rsigma: full {:.1}x, match only {:.1}x, load {:.1}x faster, memory {:.1}x smaller",
        f.full_eps / r.full_eps,
        f.match_eps / r.match_eps,
        r.load.as_secs_f64() / f.load.as_secs_f64(),
        r.memory as f64 / f.memory.max(1) as f64
    );
    println!("events whose matched rules differ between the engines: {differing} of {}", events.len());
    Ok(())
}
