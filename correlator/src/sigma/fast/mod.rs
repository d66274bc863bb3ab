//! The correlator's own Sigma engine: rsigma-parser's AST compiled into a small matcher
//! tree ([`compile`]), evaluated directly on the log's borrowed fields ([`eval`]), behind a
//! literal prefilter ([`index`]) per log source bucket ([`super::route`]).
//!
//! Per event: route by log source (a few buckets), then run the prefilter of those buckets
//! (one merged prefilter per set of buckets met together, so each field is searched once)
//! over the event's indexed fields to mark candidate rules, then evaluate the candidates and
//! the rules without a literal requirement exactly (the matched fields are looked up only
//! when the caller reports them: detections do, rule-id queries do not). From JSON text
//! ([`FastEngine::matches_json_with`]), keyword literals are searched in the text itself when
//! that is equivalent, so the strings of the fields no rule names are decoded only for events
//! a keyword rule is a candidate for. Semantics are those of the reference
//! engine ([`super::RsigmaEngine`]); `tests/sigma_differential.rs` compares both on the
//! SigmaHQ rules and the EVTX samples.

pub mod compile;
pub mod eval;
pub mod flat;
pub mod index;
mod scan;

use super::engine::{RuleMatch, SigmaEngine};
use super::route::{RouteKey, Router};
use compile::{Cond, Logic};
use eval::Doc;
pub use flat::{FlatError, FlatScratch};
use index::{Index, IndexBuilder};
use rsigma_parser::{FilterRule, FilterRuleTarget, SigmaRule};
use rustc_hash::FxHashMap;
use soc_model::Log;
use std::cell::RefCell;

/// A set of field names (the fields the processing pipelines read or write).
pub type FieldSet = rustc_hash::FxHashSet<Box<str>>;

/// Runs `f` over `items` on all cores (contiguous chunks, results in order).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().div_ceil(32)).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let size = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(size).map(|c| (c, s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))).collect();
        let mut out = Vec::with_capacity(items.len());
        for (c, h) in handles {
            // A worker that panicked (a bug, not bad input) is redone here, so the panic
            // surfaces on the caller's thread like the sequential path would.
            match h.join() {
                Ok(v) => out.extend(v),
                Err(_) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

/// Runs `f` over `items` on all cores, results in order: the threads take the items one at a
/// time, heaviest (by `weight`) first, so that uneven items still share the cores evenly.
fn par_map_largest_first<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(items.get(i).map_or(0, &weight)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            if let Some(item) = items.get(i) {
                done.push((i, f(item)));
            }
        }
        done
    };
    let mut done = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in handles {
            // A worker that panicked (a bug, not bad input): the panic goes on here.
            match h.join() {
                Ok(d) => done.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

struct FastRule {
    logic: Logic,
    id: Option<String>,
    title: String,
    logsource: rsigma_parser::LogSource,
    key: RouteKey,
    /// The rule (filters included) searches keywords: its evaluation needs every string of
    /// the event (set by `finish`).
    keywords: bool,
}

struct Bucket {
    rules: Vec<u32>,
    index: Index,
    /// Dense bucket number (for [`FastEngine::field_buckets`]).
    id: u32,
    /// Some rule of the bucket searches keywords (every string of the event).
    needs_strings: bool,
}

/// The field names a rule's logic (filters included) looks up (for a dotted name, the
/// name itself and its first segment), and whether it searches keywords.
fn logic_fields<'a>(l: &'a Logic, out: &mut Vec<&'a str>, keywords: &mut bool) {
    fn name<'a>(f: &'a str, out: &mut Vec<&'a str>) {
        out.push(f);
        if let Some((first, _)) = f.split_once('.') {
            out.push(first);
        }
    }
    fn matcher<'a>(m: &'a compile::Matcher, out: &mut Vec<&'a str>) {
        use compile::{ExpandPart, Matcher};
        match m {
            Matcher::FieldRef { field, .. } => name(field, out),
            Matcher::Expand { template, .. } => {
                for p in template {
                    if let ExpandPart::Placeholder(f) = p {
                        name(f, out);
                    }
                }
            }
            Matcher::Not(m) => matcher(m, out),
            Matcher::Any(ms) | Matcher::All(ms) => ms.iter().for_each(|m| matcher(m, out)),
            _ => {}
        }
    }
    fn det<'a>(d: &'a compile::Det, out: &mut Vec<&'a str>, keywords: &mut bool) {
        match d {
            compile::Det::AllOf(items) => {
                for i in items {
                    match &i.field {
                        Some(f) => name(f, out),
                        None => *keywords = true,
                    }
                    matcher(&i.matcher, out);
                }
            }
            compile::Det::AnyOf(ds) => ds.iter().for_each(|d| det(d, out, keywords)),
            compile::Det::Keywords(m) => {
                *keywords = true;
                matcher(m, out);
            }
        }
    }
    fn cond<'a>(c: &'a Cond, out: &mut Vec<&'a str>, keywords: &mut bool) {
        match c {
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| cond(c, out, keywords)),
            Cond::Not(c) => cond(c, out, keywords),
            Cond::Filtered { rule, filter } => {
                cond(rule, out, keywords);
                logic_fields(filter, out, keywords);
            }
            Cond::Det(_) | Cond::Select { .. } => {}
        }
    }
    l.dets.iter().for_each(|d| det(d, out, keywords));
    l.conditions.iter().for_each(|c| cond(c, out, keywords));
}

/// Sets each item's [`compile::Item::slot`] (its filters' items too) from the field numbers.
fn number_items(l: &mut Logic, ids: &FxHashMap<Box<str>, u32>) {
    fn det(d: &mut compile::Det, ids: &FxHashMap<Box<str>, u32>) {
        match d {
            compile::Det::AllOf(items) => {
                for i in items {
                    i.slot = i.field.as_deref().and_then(|f| ids.get(f)).copied().unwrap_or(compile::NO_SLOT);
                }
            }
            compile::Det::AnyOf(ds) => ds.iter_mut().for_each(|d| det(d, ids)),
            compile::Det::Keywords(_) => {}
        }
    }
    fn cond(c: &mut Cond, ids: &FxHashMap<Box<str>, u32>) {
        match c {
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(|c| cond(c, ids)),
            Cond::Not(c) => cond(c, ids),
            Cond::Filtered { rule, filter } => {
                cond(rule, ids);
                number_items(filter, ids);
            }
            Cond::Det(_) | Cond::Select { .. } => {}
        }
    }
    l.dets.iter_mut().for_each(|d| det(d, ids));
    l.conditions.iter_mut().for_each(|c| cond(c, ids));
}

/// Sigma detection rules compiled and evaluated by the correlator's own engine.
pub struct FastEngine {
    rules: Vec<Option<FastRule>>,
    router: Router<Bucket>,
    /// Rules compiled ahead by [`SigmaEngine::prepare`], by the address of their AST (the
    /// caller adds the same values it prepared); consumed by `add_rule`.
    prepared: FxHashMap<usize, Result<Logic, String>>,
    /// For the fast path from JSON text: each field name some rule looks up, numbered
    /// (its slot, see [`eval::Slots`]), ...
    field_ids: FxHashMap<Box<str>, u32>,
    /// ... the names by number, ...
    field_names: Vec<Box<str>>,
    /// ... and by number, the (sorted) ids of the buckets of the rules that look it up.
    field_buckets: Vec<Vec<u32>>,
    /// One prefilter per set of buckets events were routed to together (built on the first
    /// such event, at most [`MERGED_MAX`]): each field of the event is searched once, by
    /// one automaton over the literals of all its buckets, instead of once per bucket.
    merged: std::sync::RwLock<FxHashMap<RouteSet, Index>>,
}

/// The ids of the buckets an event is routed to, sorted (unused places `u32::MAX`).
type RouteSet = [u32; ROUTE_SET_MAX];

/// Most buckets an event meets: 2 product x 3 category (unset, its own, a broader one) x 2
/// service slots.
const ROUTE_SET_MAX: usize = 12;

/// Most merged prefilters kept: the sets of buckets met together are few (one per kind of
/// log source); past this, further sets are searched bucket by bucket.
const MERGED_MAX: usize = 256;

impl std::fmt::Debug for FastEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEngine").field("rules", &self.rules.len()).field("buckets", &self.router.len()).finish()
    }
}

impl Default for FastEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-thread scratch: a stamp per rule so a candidate is evaluated once per event.
#[derive(Default)]
struct Scratch {
    stamp: Vec<u32>,
    epoch: u32,
    cands: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Prefilter statistics of a rule set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub buckets: usize,
    pub rules: usize,
    /// Rules without a literal requirement (evaluated for every event of their buckets).
    pub always: usize,
}

impl FastEngine {
    pub fn new() -> Self {
        FastEngine {
            rules: Vec::new(),
            router: Router::new(),
            prepared: FxHashMap::default(),
            field_ids: Default::default(),
            field_names: Vec::new(),
            field_buckets: Vec::new(),
            merged: Default::default(),
        }
    }

    pub fn index_stats(&self) -> IndexStats {
        let mut s = IndexStats { buckets: self.router.len(), ..IndexStats::default() };
        for b in self.router.iter() {
            s.rules += b.rules.len();
            s.always += b.index.always().len();
        }
        s
    }

    /// Starts the candidates of one event: a new stamp epoch, no candidate.
    fn begin(&self, sc: &mut Scratch) {
        sc.epoch = sc.epoch.wrapping_add(1);
        if sc.epoch == 0 {
            sc.stamp.iter_mut().for_each(|s| *s = 0);
            sc.epoch = 1;
        }
        if sc.stamp.len() < self.rules.len() {
            sc.stamp.resize(self.rules.len(), 0);
        }
        sc.cands.clear();
    }

    /// Adds the candidates of the routed `buckets` (their rules without a literal
    /// requirement, and those the prefilter finds) to `sc.cands`, each rule once per event.
    /// Several buckets are searched through their merged prefilter. `raw`: the
    /// JSON text of the event, ASCII-lower-cased, searched for keyword literals instead of
    /// its strings (see [`index::Index::candidates`]).
    fn mark_buckets(&self, buckets: &[&Bucket], doc: &Doc<'_>, raw: Option<&str>, sc: &mut Scratch) {
        self.begin(sc);
        let epoch = sc.epoch;
        let Scratch { stamp, cands, .. } = sc;
        let mut mark = |r: u32| {
            if let Some(s) = stamp.get_mut(r as usize)
                && *s != epoch
            {
                *s = epoch;
                cands.push(r);
            }
        };
        let mut search = |index: &Index| {
            index.always().iter().for_each(|r| mark(*r));
            index.candidates(doc, raw, &mut mark);
        };
        if buckets.len() > 1
            && let Some(set) = self.route_set(buckets)
            && self.with_merged(set, buckets, &mut search)
        {
            return;
        }
        buckets.iter().for_each(|b| search(&b.index));
    }

    /// Runs `f` on the merged prefilter of `buckets` (whose ids are `set`), building it when
    /// there is none yet and room for it; `false` (and `f` not run) otherwise.
    fn with_merged(&self, set: RouteSet, buckets: &[&Bucket], f: &mut impl FnMut(&Index)) -> bool {
        if let Ok(m) = self.merged.read()
            && let Some(ix) = m.get(&set)
        {
            f(ix);
            return true;
        }
        let Ok(mut m) = self.merged.write() else { return false };
        if m.len() >= MERGED_MAX && !m.contains_key(&set) {
            return false;
        }
        f(m.entry(set).or_insert_with(|| {
            let mut b = IndexBuilder::default();
            buckets.iter().for_each(|x| b.absorb(&x.index));
            b.build()
        }));
        true
    }

    /// The sorted ids of `buckets` (`None` when there are more than [`ROUTE_SET_MAX`]).
    fn route_set(&self, buckets: &[&Bucket]) -> Option<RouteSet> {
        if buckets.len() > ROUTE_SET_MAX {
            return None;
        }
        let mut set = [u32::MAX; ROUTE_SET_MAX];
        for (slot, b) in set.iter_mut().zip(buckets) {
            *slot = b.id;
        }
        set.sort_unstable();
        Some(set)
    }

    /// Whether some candidate searches keywords.
    fn cands_need_strings(&self, sc: &Scratch) -> bool {
        sc.cands.iter().any(|&r| self.rules.get(r as usize).is_some_and(|x| x.as_ref().is_some_and(|x| x.keywords)))
    }

    /// Evaluates the candidates exactly; with `fields`, the matched fields of each match are
    /// reported too (detections show them; rule ids alone do not need them).
    fn eval_cands(&self, doc: &Doc<'_>, sc: &Scratch, fields: bool, out: &mut Vec<RuleMatch>) {
        for &r in sc.cands.iter() {
            let Some(Some(rule)) = self.rules.get(r as usize) else { continue };
            if eval::eval_logic(&rule.logic, doc) {
                let mut matched_fields = Vec::new();
                if fields {
                    eval::matched_fields(&rule.logic, doc, &mut matched_fields);
                }
                out.push(RuleMatch { rule: r as usize, matched_fields });
            }
        }
    }

    /// [`SigmaEngine::matches`], the matched fields reported only with `fields`.
    fn matches_with(&self, log: &Log, fields: bool, out: &mut Vec<RuleMatch>) {
        let buckets = self.router.candidates(&log.logsource);
        if buckets.is_empty() {
            return;
        }
        let doc = Doc::new(&log.fields, log.message.as_deref());
        with_scratch(|sc| {
            self.mark_buckets(&buckets, &doc, None, sc);
            self.eval_cands(&doc, sc, fields, out);
        });
    }
}

/// Runs `f` with this thread's [`Scratch`] (a fresh one when it is already in use).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|scr| match scr.try_borrow_mut() {
        Ok(mut scr) => f(&mut scr),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Whether keyword literals can be searched in the JSON text itself instead of its decoded
/// strings: every string of the event is then ASCII and written in the text as it is, except
/// for the characters JSON escapes with a backslash (`"`, `\`, `\n`, ...), which the keyword
/// automaton of such a search holds in their escaped form ([`index::Index::keywords_raw_safe`]).
/// Without `\u` and `\/` escapes, each character of a string has one written form, so a
/// literal inside a decoded string is inside the text as written. The text holds more (keys,
/// numbers, the joints between values), which only adds candidates, evaluated exactly.
fn raw_keyword_text(json: &str) -> bool {
    if !json.is_ascii() {
        return false;
    }
    // Backslashes occur only in escapes (inside strings); `\\u` is an escaped backslash.
    let b = json.as_bytes();
    let mut i = 0;
    while let Some(p) = b.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        if let Some(b'u' | b'/') = b.get(i + p + 1) {
            return false;
        }
        i += p + 2;
    }
    true
}

fn filter_logsource_contains(f: &rsigma_parser::LogSource, r: &rsigma_parser::LogSource) -> bool {
    fn dim(f: &Option<String>, r: &Option<String>) -> bool {
        match f {
            None => true,
            Some(fv) => r.as_ref().is_some_and(|rv| fv.eq_ignore_ascii_case(rv)),
        }
    }
    dim(&f.category, &r.category) && dim(&f.product, &r.product) && dim(&f.service, &r.service)
}

impl FastEngine {
    /// Flattens the JSON text of a Windows event into `sc` (see [`flat`]), applies
    /// `pipelines` (which read and write only the `pipeline_fields`) and routes it:
    /// the buckets whose rules apply. `sc.fields` then holds every field those rules (and the
    /// pipelines) look up, `sc.strings` the strings of the other fields when a bucket searches
    /// keywords; with `all`, every field is materialized. With `slots`, the fields no
    /// pipeline touches go to `sc.slots` by field number instead of `sc.fields` (what
    /// [`FastEngine::slots`] views).
    #[allow(clippy::too_many_arguments)]
    fn flatten<'j>(
        &self,
        json: &'j str,
        pipelines: &super::Pipelines,
        pipeline_fields: &FieldSet,
        sc: &mut FlatScratch,
        all: bool,
        defer_strings: bool,
        slots: bool,
    ) -> Result<(Vec<&Bucket>, flat::Split<'j>), FlatError> {
        let mut s = flat::split(json)?;
        sc.fields.clear();
        sc.recycle();
        if sc.slots.len() < self.field_names.len() {
            sc.slots.resize(self.field_names.len(), None);
        }
        sc.strings.clear();
        sc.ends.clear();
        s.logsource_into(&mut sc.logsource);
        sc.message = s.message.take();
        sc.has_message_field = s.has_message_field;
        let n = s.len();
        sc.done.clear();
        sc.done.resize(n, false);
        if !pipelines.is_empty() {
            for i in 0..n {
                let name = s.name(i);
                if all || pipeline_fields.contains(name) {
                    sc.fields.insert(name.to_string(), s.value(i)?);
                    sc.done[i] = true;
                }
            }
            let mut original: Option<Option<serde_json::Value>> = None;
            pipelines.apply_to(&mut sc.logsource, &mut sc.fields, &mut |p| {
                super::pipeline::path(original.get_or_insert_with(|| s.original()).as_ref(), p)
            });
        }
        if slots && !sc.fields.is_empty() {
            // The numbered fields the pipelines left go to their slots too (rules read them
            // by number); a slot the loop below fills from the text wins, as a slot did over
            // a field held by name.
            for (k, v) in std::mem::take(&mut sc.fields) {
                match self.field_ids.get(k.as_str()).and_then(|&id| Some((id, sc.slots.get_mut(id as usize)?))) {
                    Some((id, slot)) => {
                        *slot = Some(v);
                        sc.filled.push(id);
                        sc.piped += 1;
                    }
                    None => {
                        sc.fields.insert(k, v);
                    }
                }
            }
        }
        let buckets = self.router.candidates(&sc.logsource);
        if buckets.is_empty() && !all {
            return Ok((buckets, s));
        }
        let needs_strings = !defer_strings && buckets.iter().any(|b| b.needs_strings);
        for i in 0..n {
            if sc.done[i] {
                continue;
            }
            let name = s.name(i);
            let id = self.field_ids.get(name).copied();
            let wanted = all
                || id
                    .and_then(|id| self.field_buckets.get(id as usize))
                    .is_some_and(|ids| buckets.iter().any(|b| ids.binary_search(&b.id).is_ok()));
            if wanted {
                match id.filter(|_| slots).and_then(|id| Some((id, sc.slots.get_mut(id as usize)?))) {
                    Some((id, slot)) => {
                        *slot = Some(s.value_pooled(i, &mut sc.pool)?);
                        sc.filled.push(id);
                    }
                    None => {
                        sc.fields.insert(name.to_string(), s.value(i)?);
                    }
                }
                sc.done[i] = true;
            } else if needs_strings {
                s.strings(i, &mut sc.strings, &mut sc.ends)?;
            }
        }
        Ok((buckets, s))
    }

    /// The view of `sc`'s numbered fields.
    fn slots<'s>(&'s self, sc: &'s FlatScratch) -> eval::Slots<'s> {
        eval::Slots { ids: &self.field_ids, names: &self.field_names, vals: &sc.slots, filled: &sc.filled }
    }

    /// [`SigmaEngine::matches`] from the JSON text of a Windows event in the evtx shape,
    /// after the processing pipelines: the same matches as the collector's normalization,
    /// `pipelines.apply` and [`SigmaEngine::matches`] give, without building the event.
    /// [`FlatError::Unsupported`] for other shapes (the caller takes that path then).
    pub fn matches_json(
        &self,
        json: &str,
        pipelines: &super::Pipelines,
        pipeline_fields: &FieldSet,
        sc: &mut FlatScratch,
        out: &mut Vec<RuleMatch>,
    ) -> Result<(), FlatError> {
        self.matches_json_with(json, pipelines, pipeline_fields, sc, true, out)
    }

    /// [`FastEngine::matches_json`], the matched fields reported only with `fields`.
    ///
    /// The strings of the fields no routed rule names (what keyword rules search) are decoded
    /// only when a candidate rule searches keywords: the keyword prefilter runs on the JSON
    /// text itself when that finds every candidate it would find in the strings (see
    /// [`raw_keyword_text`]), so events that no keyword literal occurs in skip them.
    pub fn matches_json_with(
        &self,
        json: &str,
        pipelines: &super::Pipelines,
        pipeline_fields: &FieldSet,
        sc: &mut FlatScratch,
        fields: bool,
        out: &mut Vec<RuleMatch>,
    ) -> Result<(), FlatError> {
        let raw_ok = raw_keyword_text(json);
        let (buckets, split) = self.flatten(json, pipelines, pipeline_fields, sc, false, raw_ok, true)?;
        if buckets.is_empty() {
            return Ok(());
        }
        // Strings deferred: the keyword automata of the routed buckets search the text.
        let deferred =
            raw_ok && buckets.iter().any(|b| b.needs_strings) && buckets.iter().all(|b| b.index.keywords_raw_safe());
        if raw_ok && !deferred && buckets.iter().any(|b| b.needs_strings) {
            // A keyword automaton the text cannot stand in for: decode the strings now.
            for i in 0..split.len() {
                if !sc.done[i] {
                    split.strings(i, &mut sc.strings, &mut sc.ends)?;
                }
            }
        }
        // One lower-cased copy of the text for the keyword automata of all routed buckets.
        let mut lowered = std::mem::take(&mut sc.lowered);
        lowered.clear();
        if deferred {
            lowered.push_str(json);
            lowered.make_ascii_lowercase();
        }
        let raw = deferred.then_some(lowered.as_str());
        let result = with_scratch(|scr| {
            self.mark_buckets(&buckets, &Doc::flat(sc, Some(self.slots(sc))), raw, scr);
            if deferred && self.cands_need_strings(scr) {
                for i in 0..split.len() {
                    if !sc.done[i] {
                        split.strings(i, &mut sc.strings, &mut sc.ends)?;
                    }
                }
            }
            self.eval_cands(&Doc::flat(sc, Some(self.slots(sc))), scr, fields, out);
            Ok(())
        });
        sc.lowered = lowered;
        result
    }

    /// The record [`FastEngine::matches_json`] evaluates, left in `sc` (for tests): with
    /// `all`, every flattened field. Returns whether a routed bucket searches keywords.
    pub fn flat_record(
        &self,
        json: &str,
        pipelines: &super::Pipelines,
        pipeline_fields: &FieldSet,
        sc: &mut FlatScratch,
        all: bool,
    ) -> Result<FlatInfo, FlatError> {
        let (buckets, _) = self.flatten(json, pipelines, pipeline_fields, sc, all, false, false)?;
        let routed: Vec<u32> = buckets.iter().map(|b| b.id).collect();
        let referenced = self
            .field_names
            .iter()
            .zip(&self.field_buckets)
            .filter(|(_, ids)| ids.iter().any(|i| routed.contains(i)))
            .map(|(k, _)| k.to_string())
            .collect();
        Ok(FlatInfo { needs_strings: buckets.iter().any(|b| b.needs_strings), referenced })
    }
}

/// What [`FastEngine::flat_record`] reports besides the record.
#[derive(Clone, Debug, Default)]
pub struct FlatInfo {
    /// A routed bucket searches keywords (the strings of the other fields were collected).
    pub needs_strings: bool,
    /// The field names the routed rules look up.
    pub referenced: Vec<String>,
}

impl SigmaEngine for FastEngine {
    fn name(&self) -> &'static str {
        "fast"
    }

    fn prepare(&mut self, rules: &[&SigmaRule]) {
        let compiled = par_map(rules, |r| compile::compile_logic(&r.detection));
        self.prepared = rules.iter().map(|r| *r as *const SigmaRule as usize).zip(compiled).collect();
    }

    fn add_rule(&mut self, index: usize, rule: &SigmaRule) -> Result<(), String> {
        let logic = match self.prepared.remove(&(rule as *const SigmaRule as usize)) {
            Some(compiled) => compiled?,
            None => compile::compile_logic(&rule.detection)?,
        };
        if logic.conditions.is_empty() {
            return Err("no condition".into());
        }
        let ls = &rule.logsource;
        let key = RouteKey::new(ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref());
        if self.rules.len() <= index {
            self.rules.resize_with(index + 1, || None);
        }
        self.rules[index] = Some(FastRule {
            logic,
            id: rule.id.clone(),
            title: rule.title.clone(),
            logsource: ls.clone(),
            key,
            keywords: false,
        });
        Ok(())
    }

    fn add_filter(&mut self, filter: &FilterRule) -> Result<(), String> {
        let mut logic = compile::compile_logic(&filter.detection).map_err(|e| format!("filter: {e}"))?;
        if logic.dets.is_empty() {
            return Ok(());
        }
        // Like the reference engine: the first condition, or all detections AND-ed.
        let cond = match logic.conditions.first() {
            Some(c) => c.clone(),
            None => Cond::And((0..logic.dets.len()).map(Cond::Det).collect()),
        };
        logic.conditions = vec![cond];
        for rule in self.rules.iter_mut().flatten() {
            let targeted = match &filter.rules {
                FilterRuleTarget::Any => true,
                FilterRuleTarget::Specific(refs) => {
                    refs.iter().any(|r| rule.id.as_deref() == Some(r.as_str()) || rule.title == *r)
                }
            };
            if !targeted || filter.logsource.as_ref().is_some_and(|f| !filter_logsource_contains(f, &rule.logsource)) {
                continue;
            }
            rule.logic.conditions = std::mem::take(&mut rule.logic.conditions)
                .into_iter()
                .map(|c| Cond::Filtered { rule: Box::new(c), filter: Box::new(logic.clone()) })
                .collect();
        }
        Ok(())
    }

    fn finish(&mut self) {
        // Buckets numbered densely in the order their rules first come (`Bucket::id`), with
        // their rules in rule order.
        let mut numbers: FxHashMap<&RouteKey, u32> = FxHashMap::default();
        let mut keys: Vec<&RouteKey> = Vec::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let Some(r) = r else { continue };
            let b = *numbers.entry(&r.key).or_insert_with(|| {
                keys.push(&r.key);
                members.push(Vec::new());
                (keys.len() - 1) as u32
            });
            if let Some(m) = members.get_mut(b as usize) {
                m.push(i as u32);
            }
        }
        let rules = &self.rules;
        let logic = |i: u32| rules.get(i as usize).and_then(Option::as_ref).map(|r| &r.logic);
        // The field names each rule looks up (borrowed from the rules), with the buckets of
        // the rules that look each up, and which rules search keywords.
        let mut field_buckets: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        let mut keyword_rules: Vec<u32> = Vec::new();
        let mut needs_strings = vec![false; keys.len()];
        let mut names = Vec::new();
        for (b, ms) in members.iter().enumerate() {
            for &i in ms {
                let Some(l) = logic(i) else { continue };
                let mut keywords = false;
                logic_fields(l, &mut names, &mut keywords);
                if keywords {
                    keyword_rules.push(i);
                    if let Some(n) = needs_strings.get_mut(b) {
                        *n = true;
                    }
                }
                for n in names.drain(..) {
                    let ids = field_buckets.entry(n).or_default();
                    if !ids.contains(&(b as u32)) {
                        ids.push(b as u32);
                    }
                }
            }
        }
        // Numbered in name order (a stable numbering for a given rule set).
        let mut numbered: Vec<(&str, Vec<u32>)> = field_buckets.into_iter().collect();
        numbered.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut field_ids = FxHashMap::default();
        field_ids.reserve(numbered.len());
        let mut field_names = Vec::with_capacity(numbered.len());
        let mut field_bucket_ids = Vec::with_capacity(numbered.len());
        for (i, (name, mut ids)) in numbered.into_iter().enumerate() {
            ids.sort_unstable();
            let name: Box<str> = name.into();
            field_ids.insert(name.clone(), i as u32);
            field_names.push(name);
            field_bucket_ids.push(ids);
        }
        // Each bucket's prefilter: the frequencies of its atoms, each rule's requirement, the
        // index. Buckets are independent: built on all cores, largest first, each wholly on
        // one thread (its temporary tables freed where they were allocated).
        let indexes = par_map_largest_first(&members, Vec::len, |ms| {
            let mut freq = index::Freq::default();
            for &i in ms {
                if let Some(l) = logic(i) {
                    freq.add(i, l);
                }
            }
            let mut builder = IndexBuilder::default();
            for &i in ms {
                if let Some(l) = logic(i) {
                    builder.add(i, index::rule_req(l, &freq));
                }
            }
            builder.build()
        });
        let mut out: Router<Bucket> = Router::new();
        for (id, ((key, ms), index)) in keys.iter().zip(members).zip(indexes).enumerate() {
            let needs_strings = needs_strings.get(id).copied().unwrap_or(false);
            out.bucket_mut(key, || Bucket { rules: ms, index, id: id as u32, needs_strings });
        }
        for r in self.rules.iter_mut().flatten() {
            r.keywords = false;
            number_items(&mut r.logic, &field_ids);
        }
        for i in keyword_rules {
            if let Some(Some(r)) = self.rules.get_mut(i as usize) {
                r.keywords = true;
            }
        }
        self.field_ids = field_ids;
        self.field_names = field_names;
        self.field_buckets = field_bucket_ids;
        self.prepared.clear();
        self.router = out;
        if let Ok(m) = self.merged.get_mut() {
            m.clear();
        }
    }

    fn as_fast(&self) -> Option<&FastEngine> {
        Some(self)
    }

    fn matches(&self, log: &Log, out: &mut Vec<RuleMatch>) {
        self.matches_with(log, true, out);
    }

    fn matching(&self, log: &Log, out: &mut Vec<RuleMatch>) {
        self.matches_with(log, false, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EngineKind, SigmaRules};
    use serde_json::{Value, json};
    use soc_model::{Event, EventType, Log, LogSource};

    fn rule(detection: &str) -> String {
        format!(
            "title: T\nid: 0c3c4d6e-0000-4000-8000-0000000000aa\nlogsource:\n    product: windows\ndetection:\n{detection}\nlevel: low\n"
        )
    }

    /// Rule sources loaded by the fast engine (as files `r0.yml`, `r1.yml`...), without error.
    fn load_fast(srcs: &[impl AsRef<str>]) -> SigmaRules {
        let named: Vec<(String, &str)> =
            srcs.iter().enumerate().map(|(i, s)| (format!("r{i}.yml"), s.as_ref())).collect();
        let (rules, errors) =
            SigmaRules::from_sources_with(named.iter().map(|(n, s)| (n.as_str(), *s)), EngineKind::Fast);
        assert!(errors.is_empty(), "{errors:?}");
        rules
    }

    fn event(fields: Value, message: Option<&str>) -> Event {
        let Ok(ts) = "2026-11-27T03:04:05Z".parse() else { panic!("timestamp") };
        let mut ev = Event::new(EventType::Log, ts);
        ev.log = Some(Log {
            logsource: LogSource { product: Some("windows".into()), ..LogSource::default() },
            fields: match fields {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            message: message.map(Into::into),
            ..Log::default()
        });
        ev
    }

    /// Evaluates with both engines, asserts they agree and returns the verdict.
    fn both(detection: &str, fields: Value) -> bool {
        let src = rule(detection);
        let ev = event(fields.clone(), None);
        let mut verdicts = Vec::new();
        for kind in [EngineKind::Fast, EngineKind::Rsigma] {
            let (rules, errors) = SigmaRules::from_sources_with([("r.yml", src.as_str())], kind);
            assert!(errors.is_empty(), "{kind:?}: {errors:?}\n{src}");
            verdicts.push(!rules.evaluate(&ev).is_empty());
        }
        assert_eq!(verdicts[0], verdicts[1], "engines disagree on\n{detection}\n{fields}");
        verdicts[0]
    }

    fn sel(body: &str) -> String {
        format!("    sel:\n{body}\n    condition: sel")
    }

    #[test]
    fn null_and_missing_fields_follow_the_reference() {
        assert!(both(&sel("        A: null"), json!({"B": 1})), "missing field matches null");
        assert!(both(&sel("        A: null"), json!({"A": null})));
        assert!(!both(&sel("        A: null"), json!({"A": ""})));
        // A list holding null is not a bare null: a missing field does not match it.
        assert!(!both(&sel("        A:\n            - null\n            - x"), json!({})));
        assert!(!both(&sel("        A|contains: x"), json!({})));
        assert!(both(&sel("        A|exists: false"), json!({"A": null})));
        assert!(both(&sel("        A|exists: true"), json!({"A": 0})));
    }

    #[test]
    fn numbers_and_strings_compare_like_the_reference() {
        assert!(both(&sel("        EventID: 4688"), json!({"EventID": 4688})));
        assert!(both(&sel("        EventID: 4688"), json!({"EventID": "4688"})));
        assert!(both(&sel("        EventID: '4688'"), json!({"EventID": 4688})));
        assert!(both(&sel("        EventID|contains: 68"), json!({"EventID": 4688})));
        assert!(!both(&sel("        EventID: 4688"), json!({"EventID": "4688 "})));
        assert!(both(&sel("        Size|gte: 10"), json!({"Size": "12.5"})));
        assert!(both(&sel("        Flag: true"), json!({"Flag": "Yes"})));
        assert!(both(&sel("        Ids: 7"), json!({"Ids": [1, 7]})));
    }

    #[test]
    fn string_modifiers_follow_the_reference() {
        assert!(both(&sel("        Image|endswith: '\\WHOAMI.exe'"), json!({"Image": "C:\\x\\whoami.EXE"})));
        assert!(!both(&sel("        Image|endswith|cased: '\\WHOAMI.exe'"), json!({"Image": "C:\\x\\whoami.exe"})));
        // Non-ASCII text before (after) the ASCII end (start) compared.
        assert!(both(&sel("        Image|endswith: '\\WHOAMI.exe'"), json!({"Image": "C:\\Ünï\\whoami.EXE"})));
        assert!(both(&sel("        Image|startswith: 'C:\\ÜNÏ'"), json!({"Image": "c:\\ünï\\x"})));
        assert!(both(&sel("        Image|startswith: 'C:\\U'"), json!({"Image": "c:\\uñ"})));
        assert!(both(&sel("        Image|endswith: 'K.exe'"), json!({"Image": "x\u{212a}.exe"})), "Kelvin sign");
        assert!(!both(&sel("        Image|endswith: 'ñ.exe'"), json!({"Image": "xn.exe"})));
        assert!(both(&sel("        C: 'a*b?d'"), json!({"C": "AxxbCd"})));
        assert!(!both(&sel("        C: 'a*b?d'"), json!({"C": "xAxxbCd"})));
        assert!(both(&sel("        C|contains|windash: ' -accepteula'"), json!({"C": "psexec /ACCEPTEULA"})));
        assert!(both(&sel("        C|contains|windash: ' -accepteula'"), json!({"C": "psexec \u{2013}accepteula"})));
        // The reference keeps the offset-0 pattern's last, alignment-dependent character
        // ("aHR0cA" for "http"): same here.
        assert!(both(&sel("        C|base64offset|contains: 'http'"), json!({"C": "x aHR0cA"})));
        assert!(both(&sel("        C|base64offset|contains: 'http'"), json!({"C": "x Rodh0dHA"})));
        assert!(both(&sel("        C|contains|all:\n            - 'a'\n            - 'b'"), json!({"C": "BA"})));
        assert!(!both(&sel("        C|contains|all:\n            - 'a'\n            - 'b'"), json!({"C": "A"})));
        assert!(both(&sel("        C|re: '^a.c$'"), json!({"C": "abc"})));
        assert!(!both(&sel("        C|re: '^a.c$'"), json!({"C": "ABC"})));
        assert!(both(&sel("        C|re|i: '^a.c$'"), json!({"C": "ABC"})));
        assert!(both(&sel("        Ip|cidr: '10.0.0.0/8'"), json!({"Ip": "10.2.3.4"})));
        assert!(both(&sel("        A|neq: x"), json!({"A": "y"})));
        assert!(both(&sel("        A|fieldref: B"), json!({"A": "Same", "B": "same"})));
        assert!(both(&sel("        A|expand: '%B%\\\\x'"), json!({"A": "dom\\x", "B": "DOM"})));
        assert!(both(&sel("        D: 'Gnu’s'"), json!({"D": "GNU’S"})));
        // Many values: folded into one automaton, same verdicts.
        let many = "        C|contains:\n            - aa1\n            - bb2\n            - cc3\n            - dd4\n            - ee5\n            - ff6\n            - gg7";
        assert!(both(&sel(many), json!({"C": "xxFF6yy"})));
        assert!(!both(&sel(many), json!({"C": "xxFF7yy"})));
    }

    #[test]
    fn conditions_keywords_and_nested_fields_follow_the_reference() {
        let d = "    a:\n        A: 1\n    b:\n        B: 2\n    c:\n        C: 3\n    condition: 2 of them and not c";
        assert!(both(d, json!({"A": 1, "B": 2})));
        assert!(!both(d, json!({"A": 1, "B": 2, "C": 3})));
        assert!(!both(d, json!({"A": 1})));
        let kw = "    keywords:\n        - 'mimikatz'\n        - 'sekurlsa::*'\n    condition: keywords";
        assert!(both(kw, json!({"X": {"Y": ["x sekurlsa::logonpasswords"]}})));
        assert!(!both(kw, json!({"X": 5})));
        assert!(both(&sel("        a.b: x"), json!({"a": [{"b": "X"}, {"b": "y"}]})));
        assert!(both(&sel("        a.b: x"), json!({"a.b": "x"})));
    }

    #[test]
    fn regexes_found_through_their_prefixes_match_like_the_reference() {
        let re = |p: &str| sel(&format!("        C|re: '{p}'"));
        assert!(both(&re(r"ipconfig\s+/all"), json!({"C": "x ipconfig  /all"})));
        assert!(!both(&re(r"ipconfig\s+/all"), json!({"C": "x IPCONFIG /all"})));
        assert!(both(&re("a|bc+"), json!({"C": "xbccc"})));
        assert!(both(&re("(?i)k1"), json!({"C": "x\u{212a}1"})), "Kelvin sign");
        assert!(both(&re("(?i)wsass"), json!({"C": "W\u{17f}ASS"})), "long s");
        assert!(both(&re("(?i)wsass"), json!({"C": "Ünicode WSAsS"})));
        assert!(both(&re(".*x"), json!({"C": "abx"})));
        assert!(both(&sel("        N|re: '^4[0-9]88$'"), json!({"N": 4688})), "numbers as text");
    }

    #[test]
    fn emoji_wildcards_and_literals_inside_regexes_make_rules_indexed_not_always_evaluated() {
        let cases = [
            // A wildcard before characters without case (an emoji keycap).
            (
                "        C|contains:\n            - '\u{1f986}'\n            - '*\u{fe0f}\u{20e3}'",
                "run 1\u{fe0f}\u{20e3} x",
                "run 1 x",
            ),
            // Case-sensitive emoji.
            ("        C|contains|cased: '\u{1f986}'", "a \u{1f986} b", "a b"),
            // The literal inside the match, not its short prefix.
            (
                "        C|re: '(?i)\\.exe[\"'']?\\s+[^\"]{0,64}werfaultsecure\\.exe'",
                "x.exe  C:\\WerFaultSecure.EXE 1",
                "x.exe  C:\\werfault.exe 1",
            ),
            ("        C|re: '\\w+`(\\w+|-|.)`'", "i`e`x", "iex"),
        ];
        for (d, hit, miss) in cases {
            let src = rule(&sel(d));
            let (rules, errors) = SigmaRules::from_sources_with([("r.yml", src.as_str())], EngineKind::Fast);
            assert!(errors.is_empty(), "{errors:?}");
            let Some(fast) = rules.engine.as_fast() else { panic!("the fast engine") };
            assert_eq!(fast.index_stats().always, 0, "{d}: evaluated for every event");
            assert!(both(&sel(d), json!({"C": hit})), "{d} on {hit}");
            assert!(!both(&sel(d), json!({"C": miss})), "{d} on {miss}");
        }
    }

    #[test]
    fn events_routed_to_several_buckets_meet_every_rule_that_matches_alone_through_one_merged_prefilter() {
        // Rules of four buckets an event from (windows, process_creation, security) meets,
        // with literals on the same fields, an exact value, a number, keywords and a rule
        // without a literal requirement; one bucket it does not meet.
        let rule = |n: u32, logsource: &str, detection: &str| {
            format!(
                "title: R{n}\nid: 0c3c4d6e-0000-4000-8000-0000000001{n:02}\nlogsource:\n{logsource}\ndetection:\n{detection}\nlevel: low\n"
            )
        };
        let windows = "    product: windows";
        let creation = "    product: windows\n    category: process_creation";
        let security = "    product: windows\n    service: security";
        let any_creation = "    category: process_creation";
        let linux = "    product: linux";
        let sources = [
            rule(0, windows, "    sel:\n        CommandLine|contains: mimikatz\n    condition: sel"),
            rule(1, creation, "    sel:\n        CommandLine|contains: 'sekurlsa::'\n    condition: sel"),
            rule(2, creation, "    sel:\n        Image|endswith: '\\rundll32.exe'\n    condition: sel"),
            rule(
                3,
                security,
                "    sel:\n        EventID: 4688\n        CommandLine|contains: mimikatz\n    condition: sel",
            ),
            rule(4, security, "    sel:\n        User: 'corp\\admin'\n    condition: sel"),
            rule(5, any_creation, "    sel:\n        CommandLine|re: '.*'\n    condition: sel"),
            rule(6, windows, "    keywords:\n        - 'sekurlsa'\n    condition: keywords"),
            rule(7, linux, "    sel:\n        CommandLine|contains: mimikatz\n    condition: sel"),
            rule(8, security, "    sel:\n        CommandLine|contains: 'not here'\n    condition: sel"),
        ];
        let titles = |rules: &SigmaRules, ev: &Event| -> Vec<String> {
            let mut t: Vec<String> =
                rules.evaluate(ev).into_iter().filter_map(|d| d.detection.map(|d| d.rule_title)).collect();
            t.sort();
            t
        };
        let ev = |fields: Value| {
            let mut e = event(fields, None);
            if let Some(log) = e.log.as_mut() {
                log.logsource = LogSource {
                    product: Some("Windows".into()),
                    category: Some("process_creation".into()),
                    service: Some("security".into()),
                };
            }
            e
        };
        let all = load_fast(&sources);
        let events = [
            ev(
                json!({"EventID": 4688, "CommandLine": "MimiKatz.exe sekurlsa::logonpasswords", "Image": "C:\\x\\RUNDLL32.EXE", "User": "CORP\\Admin"}),
            ),
            ev(json!({"EventID": "4688", "CommandLine": "mimikatz"})),
            ev(json!({"EventID": 1, "Image": "c:\\rundll32.exe", "Other": "sekurlsa"})),
            ev(json!({"User": "corp\\admin2"})),
        ];
        let expected: [&[&str]; 4] =
            [&["R0", "R1", "R2", "R3", "R4", "R5", "R6"], &["R0", "R3", "R5"], &["R2", "R6"], &[]];
        for (e, expected) in events.iter().zip(expected) {
            let mut alone: Vec<String> = sources
                .iter()
                .filter(|s| !load_fast(&[s]).evaluate(e).is_empty())
                .map(|s| s[7..9].to_string())
                .collect();
            alone.sort();
            assert_eq!(alone, expected, "the rules alone");
            assert_eq!(titles(&all, e), alone, "{:?}", e.log.as_ref().map(|l| &l.fields));
        }
        let Some(fast) = all.engine.as_fast() else { panic!("the fast engine") };
        let merged = fast.merged.read().map(|m| m.len()).unwrap_or(0);
        assert_eq!(merged, 1, "one merged prefilter for the one set of buckets met");
    }

    #[test]
    fn long_literals_are_indexed_by_their_tail_and_still_matched_exactly() {
        // The prefilter holds only the last 16 bytes; the exact evaluation decides.
        let d = "        Hashes|contains: 'SHA256=0123456789ABCDEF0123456789ABCDEF'";
        assert!(both(&sel(d), json!({"Hashes": "MD5=1,sha256=0123456789abcdef0123456789abcdef,X=2"})));
        assert!(!both(&sel(d), json!({"Hashes": "SHA1=0123456789ABCDEF0123456789ABCDEF"})));
    }

    #[test]
    fn keyword_rules_are_found_through_the_keyword_prefilter() {
        let kw = "    keywords:\n        - 'mimikatz'\n        - 'sekurlsa::*'\n    condition: keywords";
        // Nested and in arrays, like the reference's keyword search; numbers are not text.
        assert!(both(kw, json!({"A": {"B": [{"C": "run MIMIKATZ now"}]}})));
        assert!(!both(kw, json!({"A": "mimi katz", "N": 5})));
        // A keyword detection AND-ed with a field selection.
        let d = "    keywords:\n        - 'lsass'\n    sel:\n        EventID: 10\n    condition: keywords and sel";
        assert!(both(d, json!({"EventID": 10, "TargetImage": "C:\\Windows\\lsass.exe"})));
        assert!(!both(d, json!({"EventID": 11, "TargetImage": "C:\\Windows\\lsass.exe"})));
    }

    #[test]
    fn the_message_is_a_field_and_keywords_search_it() {
        let src = rule("    keywords:\n        - 'Failed password'\n    condition: keywords");
        let (rules, errors) = SigmaRules::from_sources_with([("r.yml", src.as_str())], EngineKind::Fast);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules.evaluate(&event(json!({}), Some("Failed password for root"))).len(), 1);
        assert!(rules.evaluate(&event(json!({}), Some("Accepted password"))).is_empty());
    }

    #[test]
    fn keyword_literals_are_found_in_json_text_escaped_or_not() {
        let rules_src = [
            (
                "a.yml",
                "title: A\nid: 0c3c4d6e-0000-4000-8000-0000000000a1\nlogsource:\n    product: windows\ndetection:\n    keywords:\n        - 'sekurlsa::'\n    condition: keywords\nlevel: low\n",
            ),
            (
                "b.yml",
                "title: B\nid: 0c3c4d6e-0000-4000-8000-0000000000a2\nlogsource:\n    product: windows\n    service: sysmon\ndetection:\n    keywords:\n        - 'c:/tools/x'\n    condition: keywords\nlevel: low\n",
            ),
        ];
        let (rules, errors) = SigmaRules::from_sources_with(rules_src, EngineKind::Fast);
        assert!(errors.is_empty(), "{errors:?}");
        let security = |data: &str| {
            format!(
                r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Security-Auditing"}}}},"EventID":4688,"Channel":"Security","Computer":"pc"}},"EventData":{data}}}}}"##
            )
        };
        let sysmon = |data: &str| {
            format!(
                r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Sysmon"}}}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"pc"}},"EventData":{data}}}}}"##
            )
        };
        let mut sc = super::FlatScratch::new();
        let mut ids = |json: String| -> Vec<&str> {
            let mut out = Vec::new();
            let r = rules.matching_rules_json(&json, &mut sc, &mut out);
            assert!(r.is_ok(), "{json}: {r:?}");
            out.iter().map(|i| rules.rules()[*i].id.as_str()).collect()
        };
        let (a, b) = ("0c3c4d6e-0000-4000-8000-0000000000a1", "0c3c4d6e-0000-4000-8000-0000000000a2");
        // Literal in the text as written, in another case, after escaped backslashes.
        assert_eq!(ids(security(r#"{"CommandLine":"run SEKURLSA::logonpasswords"}"#)), [a]);
        assert_eq!(ids(security(r#"{"CommandLine":"C:\\Users\\sekurlsa::x"}"#)), [a]);
        // Written with a \u escape: the strings are decoded and searched.
        assert_eq!(ids(security(r#"{"CommandLine":"\u0073ekurlsa::x"}"#)), [a]);
        // In the text but in no string (a key; across two values): no match.
        assert!(ids(security(r#"{"sekurlsa::":"x"}"#)).is_empty());
        assert!(ids(security(r#"{"A":"sekurl","B":"sa::"}"#)).is_empty());
        assert!(ids(security(r#"{"CommandLine":"sekurlsa:x"}"#)).is_empty());
        // A literal with a character JSON may escape (`/`): searched in the decoded strings.
        assert_eq!(ids(sysmon(r#"{"Image":"C:\/Tools\/x.exe"}"#)), [b]);
        assert_eq!(ids(sysmon(r#"{"Image":"c:/tools/x.exe","P":"sekurlsa::"}"#)), [a, b]);
        assert!(ids(sysmon(r#"{"Image":"c:/tools/y.exe"}"#)).is_empty());
    }

    #[test]
    fn fields_the_pipelines_map_are_what_rules_read_from_json_text_event_after_event() {
        let src = |n: u8, sel: &str| {
            format!(
                "title: P{n}\nid: 0c3c4d6e-0000-4000-8000-0000000000b{n}\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n{sel}\n    condition: selection\nlevel: low\n"
            )
        };
        let srcs = [
            src(1, "        Image|endswith: '\\whoami.exe'\n        ParentProcessId: '0x4'"),
            src(2, "        ProcessId: '0x10'"),
            src(3, "        ProcessId: '0x4'"),
        ];
        let rules = load_fast(&srcs);
        // Security 4688: the pipeline gives Image, and swaps the process ids.
        let security = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4688,"Channel":"Security","Computer":"pc"},"EventData":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe","NewProcessId":"0x10","ProcessId":"0x4"}}}"##;
        // Sysmon 1 has those names already.
        let sysmon = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"pc"},"EventData":{"Image":"C:\\Windows\\System32\\whoami.exe","ProcessId":"0x4","ParentProcessId":"0x8"}}}"##;
        let mut sc = super::FlatScratch::new();
        let mut titles = |json: &str| -> Vec<String> {
            let mut out = Vec::new();
            let r = rules.matching_rules_json(json, &mut sc, &mut out);
            assert!(r.is_ok(), "{json}: {r:?}");
            out.iter().map(|i| rules.rules()[*i].title.clone()).collect()
        };
        for _ in 0..2 {
            assert_eq!(titles(security), ["P1", "P2"]);
            assert_eq!(titles(sysmon), ["P3"]);
        }
    }

    #[test]
    fn keyword_literals_with_characters_json_escapes_are_found_in_their_escaped_form() {
        let kw = |id: &str, lit: &str| {
            format!(
                "title: K\nid: {id}\nlogsource:\n    product: windows\ndetection:\n    keywords:\n        - '{lit}'\n    condition: keywords\nlevel: low\n"
            )
        };
        let (a, b) = ("0c3c4d6e-0000-4000-8000-0000000000b1", "0c3c4d6e-0000-4000-8000-0000000000b2");
        let (sa, sb) = (kw(a, "\\temp\\x.ps1"), kw(b, "say \"hi\""));
        let (rules, errors) =
            SigmaRules::from_sources_with([("a.yml", sa.as_str()), ("b.yml", sb.as_str())], EngineKind::Fast);
        assert!(errors.is_empty(), "{errors:?}");
        let event = |data: &str| {
            format!(
                r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"Microsoft-Windows-Security-Auditing"}}}},"EventID":4688,"Channel":"Security","Computer":"pc"}},"EventData":{data}}}}}"##
            )
        };
        let mut sc = super::FlatScratch::new();
        let mut ids = |json: String| -> Vec<&str> {
            let mut out = Vec::new();
            let r = rules.matching_rules_json(&json, &mut sc, &mut out);
            assert!(r.is_ok(), "{json}: {r:?}");
            out.iter().map(|i| rules.rules()[*i].id.as_str()).collect()
        };
        // Backslashes and quotes are written escaped in the text: found there.
        assert_eq!(ids(event(r#"{"CommandLine":"run C:\\TEMP\\x.ps1"}"#)), [a]);
        assert_eq!(ids(event(r#"{"CommandLine":"echo SAY \"HI\" now"}"#)), [b]);
        // The same characters decoded differently: no match.
        assert!(ids(event(r#"{"CommandLine":"run C:/temp/x.ps1"}"#)).is_empty());
        assert!(ids(event(r#"{"CommandLine":"say hi"}"#)).is_empty());
        // `\/` and `\u` escapes: the strings are decoded and searched.
        assert_eq!(ids(event(r#"{"CommandLine":"C:\\temp\\x.ps1","P":"a\/b"}"#)), [a]);
        assert_eq!(ids(event(r#"{"CommandLine":"C:\u005ctemp\\x.ps1"}"#)), [a]);
    }

    #[test]
    fn numeric_keyword_literals_see_numbers_the_flattening_rewrote_as_strings() {
        // `Computer` written as a number becomes the string "1000.0": not in the text.
        let src = "title: N\nid: 0c3c4d6e-0000-4000-8000-0000000000a3\nlogsource:\n    product: windows\ndetection:\n    keywords:\n        - '000.0'\n    condition: keywords\nlevel: low\n";
        let (rules, errors) = SigmaRules::from_sources_with([("n.yml", src)], EngineKind::Fast);
        assert!(errors.is_empty(), "{errors:?}");
        let json = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4688,"Channel":"Security","Computer":1E3},"EventData":{"A":"x"}}}"##;
        let mut out = Vec::new();
        let r = rules.matching_rules_json(json, &mut super::FlatScratch::new(), &mut out);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(out, [0]);
    }

    #[test]
    fn rules_the_fast_engine_cannot_run_are_rejected_with_a_reason() {
        for d in [
            "    sel:\n        T|hour: 3\n    condition: sel",
            "    sel:\n        A|contains|startswith: x\n    condition: sel",
            "    sel:\n        A|re: '(unclosed'\n    condition: sel",
            "    sel:\n        A|contains|all: x\n    condition: sel",
        ] {
            let (rules, errors) = SigmaRules::from_sources_with([("r.yml", rule(d))], EngineKind::Fast);
            assert!(rules.is_empty() && errors.len() == 1, "{d}: {errors:?}");
            assert_eq!(errors[0].file, std::path::Path::new("r.yml"));
        }
    }
}
