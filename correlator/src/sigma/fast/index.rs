//! The literal prefilter: which rules could match an event, from the literal values they
//! require.
//!
//! For each rule a *requirement* is derived from its condition: a set of atoms, at least
//! one of which every matching event satisfies. An atom is (field, literal): the field's
//! value (as the string matchers see it, lower-cased) contains the literal (`Sub`, from
//! contains/startswith/endswith/wildcard literals), equals it (`Exact`), or the field is a
//! number equal to an integer (`Num`). `and` picks the most selective side, `or` and
//! `1 of` need every side to have a requirement and take their union; an `|re` regex requires
//! one of its prefixes (when finitely many and none empty); `not`, other regexes,
//! `|exists`, null, comparisons, field references, placeholders and dotted paths give none.
//! A keyword detection's literals are atoms of the pseudo field [`KEYWORD_FIELD`], matched
//! against every string of the event in one pass per bucket. Literals longer than 16 bytes
//! are indexed by their tail. A rule without a requirement is always a candidate.
//!
//! Per log source bucket and per field: one Aho-Corasick automaton (ASCII case-insensitive)
//! over all `Sub` literals, one hash map for `Exact`, one for `Num`. An event visits only
//! its own top-level fields that some rule of the bucket indexes. The event text is folded
//! with Unicode lower-casing plus `ſ` -> `s` (the one non-ASCII character a case-insensitive
//! regex matches against an ASCII letter and that lower-casing keeps); literals taken from
//! wildcard patterns and case-sensitive values are indexed only when ASCII, lower-case
//! values only without `ſ`, so a prefilter miss always means "cannot match".

use super::compile::{Cmp, Cond, Det, Item, Logic, Matcher, Quantifier, StrOp};
use super::eval::{Doc, V, with_lower, with_number_text};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    Sub(Box<str>),
    Exact(Box<str>),
    Num(i64),
}

/// The pseudo field of keyword atoms: satisfied by any string value of the event (the
/// strings keyword detections search). Not a possible JSON key of a normalized log.
pub const KEYWORD_FIELD: &str = "\u{0}keywords";

/// Alternatives: at least one (field, atom) holds for every matching event.
pub type Req = Vec<(Box<str>, Atom)>;

/// How many rules (of a bucket) mention each (field, atom): an atom many rules share is
/// usually a low-cardinality value (an event id, a logon type) that many events carry.
/// Keyed by field first, so a lookup borrows the field name and the atom (no allocation:
/// the costs are read for every candidate requirement of every rule).
#[derive(Debug, Default)]
pub struct Freq(FxHashMap<Box<str>, FxHashMap<Atom, u32>>);

impl Freq {
    /// Counts the atoms of every detection item of `l` (once per rule).
    pub fn add(&mut self, l: &Logic) {
        self.count(Self::atoms(l));
    }

    /// The distinct (field, atom) of every detection item of `l`: what [`Freq::count`]
    /// counts, independent of the other rules.
    pub fn atoms(l: &Logic) -> Vec<(Box<str>, Atom)> {
        let mut seen = FxHashSet::default();
        fn det(d: &Det, out: &mut FxHashSet<(Box<str>, Atom)>) {
            match d {
                Det::AllOf(items) => {
                    for i in items {
                        if let Some(r) = item_atoms(i) {
                            out.extend(r);
                        }
                    }
                }
                Det::AnyOf(ds) => ds.iter().for_each(|d| det(d, out)),
                Det::Keywords(_) => {}
            }
        }
        l.dets.iter().for_each(|d| det(d, &mut seen));
        seen.into_iter().collect()
    }

    /// Counts one rule's distinct atoms (from [`Freq::atoms`]).
    pub fn count(&mut self, atoms: Vec<(Box<str>, Atom)>) {
        for (field, atom) in atoms {
            let per_field = match self.0.get_mut(field.as_ref()) {
                Some(m) => m,
                None => self.0.entry(field).or_default(),
            };
            *per_field.entry(atom).or_default() += 1;
        }
    }

    fn cost(&self, field: &str, a: &Atom) -> u32 {
        let base = match a {
            // Numbers are mostly event ids and enumerations: many events carry them.
            Atom::Num(_) => 24,
            Atom::Exact(_) => 3,
            Atom::Sub(s) if s.len() < 3 => 60,
            Atom::Sub(s) if s.len() < 5 => 12,
            Atom::Sub(_) => 4,
        };
        let shared = self.0.get(field).and_then(|m| m.get(a)).copied().unwrap_or(1);
        base + 4 * shared.saturating_sub(1).min(1000)
    }

    fn req_cost(&self, r: &Req) -> u32 {
        r.iter().map(|(f, a)| self.cost(f, a)).fold(0u32, u32::saturating_add)
    }
}

struct Ctx<'a> {
    freq: &'a Freq,
}

impl Ctx<'_> {
    fn best(&self, cands: impl Iterator<Item = Option<Req>>) -> Option<Req> {
        cands.flatten().min_by_key(|r| self.freq.req_cost(r))
    }

    fn item_req(&self, i: &Item) -> Option<Req> {
        let atoms = item_atoms(i)?;
        Some(atoms)
    }

    fn det_req(&self, d: &Det) -> Option<Req> {
        match d {
            Det::AllOf(items) => self.best(items.iter().map(|i| self.item_req(i))),
            Det::AnyOf(ds) => union(ds.iter().map(|d| self.det_req(d))),
            // A keyword detection holds when one of its literals is in some string value.
            Det::Keywords(m) => {
                Some(matcher_atoms(m)?.into_iter().map(|a| (Box::<str>::from(KEYWORD_FIELD), a)).collect())
            }
        }
    }

    fn cond_req(&self, c: &Cond, dets: &[Det]) -> Option<Req> {
        match c {
            Cond::Det(i) => self.det_req(dets.get(*i)?),
            Cond::And(cs) => self.best(cs.iter().map(|c| self.cond_req(c, dets))),
            Cond::Or(cs) => union(cs.iter().map(|c| self.cond_req(c, dets))),
            Cond::Not(_) => None,
            Cond::Select { quantifier, dets: sel } => match quantifier {
                Quantifier::Count(0) => None,
                _ if sel.is_empty() => None,
                Quantifier::Any | Quantifier::Count(_) => {
                    union(sel.iter().map(|i| dets.get(*i).and_then(|d| self.det_req(d))))
                }
                Quantifier::All => self.best(sel.iter().map(|i| dets.get(*i).and_then(|d| self.det_req(d)))),
            },
            Cond::Filtered { rule, .. } => self.cond_req(rule, dets),
        }
    }
}

fn union(parts: impl Iterator<Item = Option<Req>>) -> Option<Req> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    if out.is_empty() { None } else { Some(out) }
}

fn matcher_atoms(m: &Matcher) -> Option<Vec<Atom>> {
    match m {
        Matcher::Str { op, needle, ci } => {
            // Case-insensitive needles are already Unicode lower case; the folded text holds
            // them unless they contain `ſ` (which folding turns into `s`). Case-sensitive ones
            // are lower-cased here, which only ASCII survives unchanged.
            if needle.is_empty() || (*ci && needle.contains('\u{17f}')) || (!*ci && !needle.is_ascii()) {
                return None;
            }
            let n: Box<str> = if *ci { needle.clone() } else { needle.to_ascii_lowercase().into() };
            Some(vec![if *op == StrOp::Exact { Atom::Exact(n) } else { Atom::Sub(n) }])
        }
        Matcher::Regex { any: Some(any), .. } => Some(any.iter().map(|l| Atom::Sub(l.clone())).collect()),
        Matcher::Regex { literals, .. } => literals.iter().max_by_key(|l| l.len()).map(|l| vec![Atom::Sub(l.clone())]),
        Matcher::Num(Cmp::Eq, n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(vec![Atom::Num(*n as i64)]),
        Matcher::Set(set) => {
            let mut out = Vec::with_capacity(set.needles.len());
            for (op, needle) in &set.needles {
                out.extend(matcher_atoms(&Matcher::Str { op: *op, needle: needle.clone(), ci: set.ci })?);
            }
            Some(out)
        }
        Matcher::Any(ms) => {
            let mut out = Vec::new();
            for m in ms {
                out.extend(matcher_atoms(m)?);
            }
            if out.is_empty() { None } else { Some(out) }
        }
        Matcher::All(ms) => ms.iter().filter_map(matcher_atoms).min_by_key(|a| {
            a.iter()
                .map(|x| match x {
                    Atom::Sub(s) => 64usize.saturating_sub(s.len()),
                    _ => 32,
                })
                .sum::<usize>()
        }),
        _ => None,
    }
}

fn item_atoms(i: &Item) -> Option<Req> {
    if i.exists.is_some() {
        return None;
    }
    let f = i.field.as_ref()?;
    if f.contains('.') {
        return None;
    }
    let atoms = matcher_atoms(&i.matcher)?;
    Some(atoms.into_iter().map(|a| (f.clone(), a)).collect())
}

/// The rule's requirement, `None` when it must always be evaluated.
pub fn rule_req(l: &Logic, freq: &Freq) -> Option<Req> {
    let cx = Ctx { freq };
    union(l.conditions.iter().map(|c| cx.cond_req(c, &l.dets)))
}

/// Longest literal the automata hold: a value containing a literal contains its tail, so
/// indexing only the last bytes keeps every candidate while the automata stay small (hash
/// lists alone are hundreds of KiB of 60-character literals, whose tails are as selective).
const SUB_MAX: usize = 16;

/// The last (up to) [`SUB_MAX`] bytes of `s`, cut at a character boundary.
fn sub_window(s: Box<str>) -> Box<str> {
    if s.len() <= SUB_MAX {
        return s;
    }
    let mut start = s.len() - SUB_MAX;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].into()
}

#[derive(Default)]
struct FieldBuild {
    subs: FxHashMap<Box<str>, Vec<u32>>,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    num: FxHashMap<i64, Vec<u32>>,
}

/// Collects the rules of one bucket.
#[derive(Default)]
pub struct IndexBuilder {
    fields: FxHashMap<Box<str>, FieldBuild>,
    always: Vec<u32>,
    rules: usize,
}

impl IndexBuilder {
    pub fn add(&mut self, rule: u32, req: Option<Req>) {
        self.rules += 1;
        let Some(req) = req else {
            self.always.push(rule);
            return;
        };
        for (field, atom) in req {
            let f = self.fields.entry(field).or_default();
            let slot = match atom {
                Atom::Sub(s) => f.subs.entry(sub_window(s)).or_default(),
                Atom::Exact(s) => f.exact.entry(s).or_default(),
                Atom::Num(n) => f.num.entry(n).or_default(),
            };
            if slot.last() != Some(&rule) {
                slot.push(rule);
            }
        }
    }

    pub fn build(self) -> Index {
        let mut fields = FxHashMap::default();
        fields.reserve(self.fields.len());
        for (name, fb) in self.fields {
            let mut sub_rules = Vec::with_capacity(fb.subs.len());
            let mut pats = Vec::with_capacity(fb.subs.len());
            let mut subs: Vec<(Box<str>, Vec<u32>)> = fb.subs.into_iter().collect();
            subs.sort();
            for (p, r) in subs {
                pats.push(p);
                sub_rules.push(r.into_boxed_slice());
            }
            let has_subs = !pats.is_empty();
            // Searchable in JSON text (see `Index::keywords_raw_safe`): substrings only, none
            // holding a control character JSON writes as `\u` nor made only of characters of
            // a number (the flattening writes some numbers as strings, `1E3` as `1000.0`).
            // The characters JSON escapes with a backslash are searched in their escaped form.
            let raw_safe = fb.exact.is_empty()
                && pats.iter().all(|p| {
                    !p.bytes().any(|b| b < 0x20 && json_escape(b).is_none())
                        && !p.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                });
            // The literals as the lower-cased JSON text holds them, searched case-sensitively
            // (so with the automaton's SIMD prefilter, which ASCII case folding disables).
            let raw = match (has_subs, raw_safe) {
                (true, true) if name.as_ref() == KEYWORD_FIELD => {
                    let lowered: Vec<Vec<u8>> = pats.iter().map(|p| json_escaped(&p.to_ascii_lowercase())).collect();
                    // Most texts hold no literal: a SIMD search for any of them (up to 128)
                    // decides first.
                    let any = aho_corasick::packed::Config::new().builder().extend(&lowered).build();
                    // Run on few texts: a compact automaton.
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                        .build(&lowered)
                        .map_or(RawSearch::Unsafe, |ac| RawSearch::Lowered(Box::new((ac, any))))
                }
                (false, true) => RawSearch::Nothing,
                _ => RawSearch::Unsafe,
            };
            let fi = FieldIndex {
                raw,
                ac: LazyAc { pats: pats.into_boxed_slice(), ac: OnceLock::new() },
                sub_rules,
                exact: fb.exact.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect(),
                num: fb.num.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect(),
            };
            fields.insert(name, fi);
        }
        let mut always = self.always;
        always.sort_unstable();
        always.dedup();
        let keywords = fields.remove(KEYWORD_FIELD);
        Index { fields, keywords, always, rules: self.rules }
    }
}

/// How a field's literals are searched in JSON text (see [`Index::keywords_raw_safe`]).
enum RawSearch {
    /// They cannot be.
    Unsafe,
    /// There is no literal to search.
    Nothing,
    /// With this case-sensitive automaton over the literals as the ASCII-lower-cased JSON
    /// text holds them (`\\` for `\`, `\"` for `"`, ...), pattern `i` being literal `i`,
    /// run when the searcher (when there is one) finds any of them in the text.
    Lowered(Box<(AhoCorasick, Option<aho_corasick::packed::Searcher>)>),
}

/// The two-character escape JSON writes for byte `b`, when it has one (`/` is written as
/// it is: texts holding `\/` are not searched raw).
fn json_escape(b: u8) -> Option<u8> {
    Some(match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => return None,
    })
}

/// `p` as it appears inside a JSON string written without `\u` escapes nor `\/`.
fn json_escaped(p: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() + 4);
    for b in p.bytes() {
        match json_escape(b) {
            Some(e) => out.extend_from_slice(&[b'\\', e]),
            None => out.push(b),
        }
    }
    out
}

struct FieldIndex {
    /// Whether and how the literals can be searched in JSON text.
    raw: RawSearch,
    /// The substring literals, pattern `i` being `sub_rules[i]`'s.
    ac: LazyAc,
    sub_rules: Vec<Box<[u32]>>,
    exact: FxHashMap<Box<str>, Box<[u32]>>,
    num: FxHashMap<i64, Box<[u32]>>,
}

/// A field's automaton over its substring literals (ASCII case-insensitive), built on the
/// first search of that field in that bucket: building every automaton of every bucket was
/// a third of the rule loading time, and an event only searches the fields of its own
/// buckets. The literals are plain bytes (nothing to validate at load).
struct LazyAc {
    pats: Box<[Box<str>]>,
    /// `None` inside: the automaton could not be built (see [`FieldIndex::marks_all`]).
    ac: OnceLock<Option<AhoCorasick>>,
}

impl LazyAc {
    fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    /// The automaton (`Err(())` when it could not be built); `Ok(None)` without literals.
    fn get(&self) -> Result<Option<&AhoCorasick>, ()> {
        if self.pats.is_empty() {
            return Ok(None);
        }
        let ac = self.ac.get_or_init(|| {
            let built = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .build(self.pats.iter().map(|p| p.as_bytes()));
            match built {
                Ok(ac) => Some(ac),
                Err(e) => {
                    tracing::warn!(error = %e, literals = self.pats.len(), "sigma prefilter automaton not built: its rules are always candidates");
                    None
                }
            }
        });
        ac.as_ref().map(Some).ok_or(())
    }
}

/// The prefilter of one bucket.
pub struct Index {
    /// Looked up by the event's field names: a fast hash (the keys come from the rules).
    fields: FxHashMap<Box<str>, FieldIndex>,
    /// Keyword literals ([`KEYWORD_FIELD`]), matched against every string of the event.
    keywords: Option<FieldIndex>,
    always: Vec<u32>,
    rules: usize,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("rules", &self.rules)
            .field("always", &self.always.len())
            .field("fields", &self.fields.len())
            .finish()
    }
}

impl Index {
    /// Rules without a requirement.
    pub fn always(&self) -> &[u32] {
        &self.always
    }

    pub fn indexed_fields(&self) -> usize {
        self.fields.len()
    }

    /// Whether the keyword literals can be searched in the JSON text of an event instead of
    /// its decoded strings: they are substrings (not whole-string values), hold no control
    /// character JSON writes as `\u` and are not made only of the characters of a number
    /// (some numbers become strings, rewritten). For a text in ASCII without `\u` and `\/`
    /// escapes, such a literal inside a string of the flattened event is inside the text in
    /// its escaped form (`\\` for `\`, `\"` for `"`, ...).
    pub fn keywords_raw_safe(&self) -> bool {
        self.keywords.as_ref().is_none_or(|k| !matches!(k.raw, RawSearch::Unsafe))
    }

    /// Calls `mark` with every rule one of whose atoms the event satisfies (rules may be
    /// reported more than once). With `lowered` (the event's JSON text, ASCII, without `\u`
    /// and `\/` escapes, ASCII-lower-cased, and [`Index::keywords_raw_safe`]), keyword literals
    /// are searched in that text rather than in the strings of `doc` (a superset of
    /// candidates).
    pub fn candidates(&self, doc: &Doc<'_>, lowered: Option<&str>, mark: &mut dyn FnMut(u32)) {
        if let Some(kw) = &self.keywords {
            match (lowered, &kw.raw) {
                (Some(text), RawSearch::Lowered(l)) => {
                    let (ac, any) = l.as_ref();
                    if any.as_ref().is_none_or(|s| s.find(text).is_some()) {
                        kw.marks(ac, text, mark);
                    }
                }
                (Some(_), RawSearch::Nothing) => {}
                _ => doc.for_each_string(&mut |s| kw.text_only(s, mark)),
            }
        }
        if self.fields.is_empty() {
            return;
        }
        let held = doc.fields.len() + doc.slots.map_or(0, |s| s.len());
        if self.fields.len() < held {
            for (name, fi) in &self.fields {
                if let Some(v) = doc.top(name) {
                    fi.scan(&v, mark);
                }
            }
        } else {
            for (k, v) in doc.fields {
                if let Some(fi) = self.fields.get(k.as_str()) {
                    fi.scan(&V::J(v), mark);
                }
            }
            if let Some(s) = &doc.slots {
                for (k, v) in s.iter() {
                    if let Some(fi) = self.fields.get(k) {
                        fi.scan(&V::J(v), mark);
                    }
                }
            }
            if let Some(m) = doc.message
                && let Some(fi) = self.fields.get(super::super::engine::MESSAGE_FIELD)
            {
                fi.scan(&V::S(m), mark);
            }
        }
    }
}

fn fold_non_ascii(s: &str) -> String {
    s.to_lowercase().replace('\u{17f}', "s")
}

impl FieldIndex {
    fn scan(&self, v: &V<'_>, mark: &mut dyn FnMut(u32)) {
        match v {
            V::S(s) => self.text(s, mark),
            V::Many(vs) => vs.iter().for_each(|x| self.scan(x, mark)),
            V::J(j) => self.json(j, mark),
        }
    }

    fn json(&self, v: &Value, mark: &mut dyn FnMut(u32)) {
        match v {
            Value::String(s) => self.text(s, mark),
            Value::Number(n) => {
                if !self.num.is_empty() {
                    let x = n.as_i64().map(|i| i as f64).or_else(|| n.as_f64()).unwrap_or(f64::NAN);
                    self.number(x, mark);
                }
                if !self.ac.is_empty() || !self.exact.is_empty() {
                    with_number_text(n, |t| self.text_only(t, mark));
                }
            }
            Value::Bool(b) => self.text_only(if *b { "true" } else { "false" }, mark),
            Value::Array(a) => a.iter().for_each(|x| self.json(x, mark)),
            _ => {}
        }
    }

    fn number(&self, x: f64, mark: &mut dyn FnMut(u32)) {
        let r = x.round();
        if x.is_finite()
            && (x - r).abs() < 1e-6
            && r.abs() < 9.0e15
            && let Some(rules) = self.num.get(&(r as i64))
        {
            rules.iter().for_each(|r| mark(*r));
        }
    }

    fn text(&self, s: &str, mark: &mut dyn FnMut(u32)) {
        if !self.num.is_empty()
            && let Ok(x) = s.parse::<f64>()
        {
            self.number(x, mark);
        }
        self.text_only(s, mark);
    }

    fn text_only(&self, s: &str, mark: &mut dyn FnMut(u32)) {
        if s.is_ascii() {
            self.folded(s, mark);
        } else {
            self.folded(&fold_non_ascii(s), mark);
        }
    }

    /// `raw`: ASCII text (the automaton folds its case) or already folded text.
    fn folded(&self, raw: &str, mark: &mut dyn FnMut(u32)) {
        if !self.exact.is_empty() {
            with_lower(raw, |l| {
                if let Some(rules) = self.exact.get(l) {
                    rules.iter().for_each(|r| mark(*r));
                }
            });
        }
        match self.ac.get() {
            Ok(Some(ac)) => self.marks(ac, raw, mark),
            Ok(None) => {}
            Err(()) => self.marks_all(mark),
        }
    }

    /// Marks the rules of every literal: an automaton that could not be built must not lose
    /// candidates (the rules are then evaluated on every event that has the field).
    fn marks_all(&self, mark: &mut dyn FnMut(u32)) {
        self.sub_rules.iter().flat_map(|r| r.iter()).for_each(|r| mark(*r));
    }

    /// Marks the rules of every literal `ac` (this field's automaton, or one with the same
    /// pattern numbers) finds in `text`.
    fn marks(&self, ac: &AhoCorasick, text: &str, mark: &mut dyn FnMut(u32)) {
        for m in ac.find_overlapping_iter(text) {
            if let Some(rules) = self.sub_rules.get(m.pattern().as_usize()) {
                rules.iter().for_each(|r| mark(*r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> Index {
        let mut b = IndexBuilder::default();
        b.add(0, Some(vec![("CommandLine".into(), Atom::Sub("mimikatz".into()))]));
        b.add(1, Some(vec![("CommandLine".into(), Atom::Sub("-enc ".into()))]));
        b.add(2, Some(vec![("Image".into(), Atom::Sub("\\rundll32.exe".into()))]));
        b.build()
    }

    fn candidates(index: &Index, fields: serde_json::Value) -> Vec<u32> {
        let Some(map) = fields.as_object() else { panic!("an object") };
        let mut out = Vec::new();
        index.candidates(&Doc::new(map, None), None, &mut |r| out.push(r));
        out.sort_unstable();
        out.dedup();
        out
    }

    fn built(index: &Index, field: &str) -> bool {
        index.fields.get(field).is_some_and(|f| f.ac.ac.get().is_some())
    }

    #[test]
    fn an_atom_costs_more_the_more_rules_of_the_bucket_share_it_on_the_same_field() {
        let sub = || Atom::Sub("whoami".into());
        let mut f = Freq::default();
        f.count(vec![("CommandLine".into(), sub())]);
        f.count(vec![("CommandLine".into(), sub()), ("Image".into(), sub())]);
        f.count(vec![("CommandLine".into(), sub())]);
        assert_eq!(f.cost("CommandLine", &sub()), 4 + 4 * 2);
        assert_eq!(f.cost("Image", &sub()), 4, "another field does not share it");
        assert_eq!(f.cost("ParentImage", &sub()), 4, "an atom no rule holds");
        assert_eq!(f.cost("CommandLine", &Atom::Exact("whoami".into())), 3, "an exact value is another atom");
    }

    #[test]
    fn field_automata_are_built_on_the_first_search_of_their_field() {
        let index = index();
        assert!(!built(&index, "CommandLine") && !built(&index, "Image"), "nothing built at load");
        assert_eq!(candidates(&index, json!({"CommandLine": "C:\\x\\MimiKatz.exe"})), vec![0]);
        assert!(built(&index, "CommandLine"));
        assert!(!built(&index, "Image"), "a field no event carried is still not built");
        assert_eq!(
            candidates(&index, json!({"CommandLine": "powershell -enc AAA", "Image": "C:\\rundll32.exe"})),
            vec![1, 2]
        );
        assert!(built(&index, "Image"));
    }

    #[test]
    fn an_automaton_that_could_not_be_built_keeps_every_rule_of_its_field_a_candidate() {
        let mut index = index();
        let Some(f) = index.fields.get_mut("CommandLine") else { panic!("indexed field") };
        f.ac.ac = OnceLock::from(None);
        assert_eq!(candidates(&index, json!({"CommandLine": "nothing here"})), vec![0, 1]);
        assert_eq!(candidates(&index, json!({"Image": "nothing here"})), Vec::<u32>::new());
    }
}
