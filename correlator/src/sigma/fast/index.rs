//! The literal prefilter: which rules could match an event, from the literal values they
//! require.
//!
//! For each rule a *requirement* is derived from its condition: a set of atoms, at least
//! one of which every matching event satisfies. An atom is (field, literal): the field's
//! value (as the string matchers see it, lower-cased) contains the literal (`Sub`, from
//! contains/startswith/endswith/wildcard literals), equals it (`Exact`), or the field is a
//! number equal to an integer (`Num`). `and` picks the most selective side, `or` and
//! `1 of` need every side to have a requirement and take their union; an `|re` regex requires
//! one of its prefixes (when finitely many and none empty) or, when they are longer, one of
//! the literals inside every match (`compile::required_factors`); `not`, other regexes,
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
//! wildcard patterns and case-sensitive values are indexed only when made of ASCII and
//! characters without case variants (emoji), lower-case values only without `ſ`, so a
//! prefilter miss always means "cannot match".

use super::compile::{Cmp, Cond, Det, Item, Logic, Matcher, Quantifier, StrOp};
use super::eval::{Doc, V, with_lower, with_number_text};
use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::OnceLock;

/// A literal requirement's unit, borrowed from the compiled rule it comes from (a
/// case-sensitive needle with upper-case letters is the one atom that is lower-cased, so
/// owned). Costs and frequencies are computed for every candidate requirement of every rule
/// on these, without copying any literal; only the requirement a rule keeps is indexed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom<'a> {
    Sub(Cow<'a, str>),
    Exact(Cow<'a, str>),
    Num(i64),
}

/// The pseudo field of keyword atoms: satisfied by any string value of the event (the
/// strings keyword detections search). Not a possible JSON key of a normalized log.
pub const KEYWORD_FIELD: &str = "\u{0}keywords";

/// Alternatives: at least one (field, atom) holds for every matching event.
pub type Req<'a> = Vec<(&'a str, Atom<'a>)>;

/// How many rules (of a bucket) mention each (field, atom): an atom many rules share is
/// usually a low-cardinality value (an event id, a logon type) that many events carry.
/// Keyed by field first, so a lookup borrows the field name and the atom. Each count
/// carries the number (plus one) of the last rule counted, so a rule counts an atom once
/// however many of its items hold it, without a per-rule set.
#[derive(Debug, Default)]
pub struct Freq<'a>(FxHashMap<&'a str, FxHashMap<Atom<'a>, (u32, u32)>>);

impl<'a> Freq<'a> {
    /// Counts the distinct atoms of every detection item of `l`, rule number `rule` (once
    /// per rule: call it once per rule, with distinct numbers).
    pub fn add(&mut self, rule: u32, l: &'a Logic) {
        let mut atoms = Vec::new();
        fn det<'a>(d: &'a Det, rule: u32, atoms: &mut Vec<Atom<'a>>, freq: &mut Freq<'a>) {
            match d {
                Det::AllOf(items) => {
                    for i in items {
                        atoms.clear();
                        if let Some(f) = item_atoms(i, atoms) {
                            for a in atoms.drain(..) {
                                freq.count_once(f, a, rule);
                            }
                        }
                    }
                }
                Det::AnyOf(ds) => ds.iter().for_each(|d| det(d, rule, atoms, freq)),
                Det::Keywords(_) => {}
            }
        }
        l.dets.iter().for_each(|d| det(d, rule, &mut atoms, self));
    }

    /// Counts (field, atom) for `rule`, unless that rule already counted it.
    fn count_once(&mut self, field: &'a str, atom: Atom<'a>, rule: u32) {
        let stamp = rule.wrapping_add(1);
        let slot = self.0.entry(field).or_default().entry(atom).or_insert((0, 0));
        if slot.1 != stamp {
            slot.0 += 1;
            slot.1 = stamp;
        }
    }

    fn cost(&self, field: &str, a: &Atom<'a>) -> u32 {
        let base = match a {
            // Numbers are mostly event ids and enumerations: many events carry them.
            Atom::Num(_) => 24,
            Atom::Exact(_) => 3,
            Atom::Sub(s) if s.len() < 3 => 60,
            Atom::Sub(s) if s.len() < 5 => 12,
            Atom::Sub(_) => 4,
        };
        let shared = self.0.get(field).and_then(|m| m.get(a)).map_or(1, |c| c.0);
        base + 4 * shared.saturating_sub(1).min(1000)
    }
}

/// The cost of a candidate requirement and how many atoms it has (a requirement without
/// atoms is no requirement when it is a union, see [`union_cost`]).
type Cost = (u32, usize);

struct Ctx<'a, 'f> {
    freq: &'f Freq<'a>,
    /// Reused for the atoms of one matcher at a time.
    atoms: Vec<Atom<'a>>,
}

/// The first cheapest of `costs` (as `Iterator::min_by_key`), with its position.
fn cheapest(costs: impl Iterator<Item = Option<Cost>>) -> Option<(usize, Cost)> {
    let mut best: Option<(usize, Cost)> = None;
    for (i, c) in costs.enumerate() {
        if let Some(c) = c
            && best.is_none_or(|(_, b)| c.0 < b.0)
        {
            best = Some((i, c));
        }
    }
    best
}

/// A union's cost: every part must have a requirement, and together at least one atom.
fn union_cost(parts: impl Iterator<Item = Option<Cost>>) -> Option<Cost> {
    let mut total: Cost = (0, 0);
    for p in parts {
        let (c, n) = p?;
        total = (total.0.saturating_add(c), total.1 + n);
    }
    (total.1 > 0).then_some(total)
}

/// The requirement of a rule is chosen in two passes over its compiled logic: the costs of
/// every candidate (`*_cost`, from borrowed atoms), then the atoms of the chosen candidates
/// only (`*_emit`, which repeats the same choices).
impl<'a> Ctx<'a, '_> {
    fn atoms_cost(&self, field: &str, atoms: &[Atom<'a>]) -> Cost {
        (atoms.iter().map(|a| self.freq.cost(field, a)).fold(0u32, u32::saturating_add), atoms.len())
    }

    fn item_cost(&mut self, i: &'a Item) -> Option<Cost> {
        let mut atoms = std::mem::take(&mut self.atoms);
        atoms.clear();
        let cost = item_atoms(i, &mut atoms).map(|f| self.atoms_cost(f, &atoms));
        self.atoms = atoms;
        cost
    }

    fn det_cost(&mut self, d: &'a Det) -> Option<Cost> {
        match d {
            Det::AllOf(items) => cheapest(items.iter().map(|i| self.item_cost(i))).map(|(_, c)| c),
            Det::AnyOf(ds) => union_cost(ds.iter().map(|d| self.det_cost(d))),
            // A keyword detection holds when one of its literals is in some string value.
            Det::Keywords(m) => {
                let mut atoms = std::mem::take(&mut self.atoms);
                atoms.clear();
                let cost = matcher_atoms(m, &mut atoms).then(|| self.atoms_cost(KEYWORD_FIELD, &atoms));
                self.atoms = atoms;
                cost
            }
        }
    }

    fn sel_cost(&mut self, i: usize, dets: &'a [Det]) -> Option<Cost> {
        dets.get(i).and_then(|d| self.det_cost(d))
    }

    fn cond_cost(&mut self, c: &'a Cond, dets: &'a [Det]) -> Option<Cost> {
        match c {
            Cond::Det(i) => self.sel_cost(*i, dets),
            Cond::And(cs) => cheapest(cs.iter().map(|c| self.cond_cost(c, dets))).map(|(_, c)| c),
            Cond::Or(cs) => union_cost(cs.iter().map(|c| self.cond_cost(c, dets))),
            Cond::Not(_) => None,
            Cond::Select { quantifier, dets: sel } => match quantifier {
                Quantifier::Count(0) => None,
                _ if sel.is_empty() => None,
                Quantifier::Any | Quantifier::Count(_) => union_cost(sel.iter().map(|i| self.sel_cost(*i, dets))),
                Quantifier::All => cheapest(sel.iter().map(|i| self.sel_cost(*i, dets))).map(|(_, c)| c),
            },
            Cond::Filtered { rule, .. } => self.cond_cost(rule, dets),
        }
    }

    /// Appends the atoms of the requirement [`Ctx::det_cost`] priced (which has one).
    fn det_emit(&mut self, d: &'a Det, out: &mut Req<'a>) {
        match d {
            Det::AllOf(items) => {
                if let Some((i, _)) = cheapest(items.iter().map(|i| self.item_cost(i)))
                    && let Some(item) = items.get(i)
                {
                    let mut atoms = Vec::new();
                    if let Some(f) = item_atoms(item, &mut atoms) {
                        out.extend(atoms.into_iter().map(|a| (f, a)));
                    }
                }
            }
            Det::AnyOf(ds) => ds.iter().for_each(|d| self.det_emit(d, out)),
            Det::Keywords(m) => {
                let mut atoms = Vec::new();
                if matcher_atoms(m, &mut atoms) {
                    out.extend(atoms.into_iter().map(|a| (KEYWORD_FIELD, a)));
                }
            }
        }
    }

    /// Appends the atoms of the requirement [`Ctx::cond_cost`] priced (which has one).
    fn cond_emit(&mut self, c: &'a Cond, dets: &'a [Det], out: &mut Req<'a>) {
        match c {
            Cond::Det(i) => {
                if let Some(d) = dets.get(*i) {
                    self.det_emit(d, out);
                }
            }
            Cond::And(cs) => {
                if let Some((i, _)) = cheapest(cs.iter().map(|c| self.cond_cost(c, dets)))
                    && let Some(c) = cs.get(i)
                {
                    self.cond_emit(c, dets, out);
                }
            }
            Cond::Or(cs) => cs.iter().for_each(|c| self.cond_emit(c, dets, out)),
            Cond::Not(_) => {}
            Cond::Select { quantifier, dets: sel } => match quantifier {
                Quantifier::Count(0) => {}
                Quantifier::Any | Quantifier::Count(_) => {
                    for i in sel {
                        if let Some(d) = dets.get(*i) {
                            self.det_emit(d, out);
                        }
                    }
                }
                Quantifier::All => {
                    if let Some((k, _)) = cheapest(sel.iter().map(|i| self.sel_cost(*i, dets)))
                        && let Some(d) = sel.get(k).and_then(|i| dets.get(*i))
                    {
                        self.det_emit(d, out);
                    }
                }
            },
            Cond::Filtered { rule, .. } => self.cond_emit(rule, dets, out),
        }
    }
}

/// The atom of a string needle, if the folded text of a matching value holds it.
fn str_atom(op: StrOp, needle: &str, ci: bool) -> Option<Atom<'_>> {
    // Case-insensitive needles are already Unicode lower case; the folded text holds them
    // unless they contain `ſ` (which folding turns into `s`). Case-sensitive ones are
    // lower-cased here, which only ASCII and characters without case survive unchanged.
    if needle.is_empty()
        || (ci && needle.contains('\u{17f}'))
        || (!ci && !needle.chars().all(|c| c.is_ascii() || super::compile::caseless(c)))
    {
        return None;
    }
    let n = if ci || !needle.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(needle)
    } else {
        Cow::Owned(needle.to_ascii_lowercase())
    };
    Some(if op == StrOp::Exact { Atom::Exact(n) } else { Atom::Sub(n) })
}

/// Pushes `atom` when there is one; whether there was.
fn push<'a>(out: &mut Vec<Atom<'a>>, atom: Option<Atom<'a>>) -> bool {
    match atom {
        Some(a) => {
            out.push(a);
            true
        }
        None => false,
    }
}

/// Appends to `out` the atoms one of which every value `m` matches holds; `false` (and
/// `out` as it was) when there are none such.
fn matcher_atoms<'a>(m: &'a Matcher, out: &mut Vec<Atom<'a>>) -> bool {
    let start = out.len();
    let found = match m {
        Matcher::Str { op, needle, ci } => push(out, str_atom(*op, needle, *ci)),
        Matcher::Regex { any: Some(any), .. } => {
            out.extend(any.iter().map(|l| Atom::Sub(Cow::Borrowed(l.as_ref()))));
            true
        }
        Matcher::Regex { literals, .. } => {
            push(out, literals.iter().max_by_key(|l| l.len()).map(|l| Atom::Sub(Cow::Borrowed(l.as_ref()))))
        }
        Matcher::Num(Cmp::Eq, n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            out.push(Atom::Num(*n as i64));
            true
        }
        Matcher::Set(set) => set.needles.iter().all(|(op, needle)| push(out, str_atom(*op, needle, set.ci))),
        Matcher::Any(ms) => ms.iter().all(|m| matcher_atoms(m, out)) && out.len() > start,
        Matcher::All(ms) => {
            // The alternative whose literals are longest (as a cost: short ones are common).
            let mut best: Option<(usize, usize)> = None;
            for (i, m) in ms.iter().enumerate() {
                let at = out.len();
                if matcher_atoms(m, out) {
                    let key = out[at..]
                        .iter()
                        .map(|x| match x {
                            Atom::Sub(s) => 64usize.saturating_sub(s.len()),
                            _ => 32,
                        })
                        .sum::<usize>();
                    if best.is_none_or(|(_, b)| key < b) {
                        best = Some((i, key));
                    }
                }
                out.truncate(at);
            }
            best.and_then(|(i, _)| ms.get(i)).is_some_and(|m| matcher_atoms(m, out))
        }
        _ => false,
    };
    if !found {
        out.truncate(start);
    }
    found
}

/// The field of an item with a literal requirement, its atoms appended to `out`.
fn item_atoms<'a>(i: &'a Item, out: &mut Vec<Atom<'a>>) -> Option<&'a str> {
    if i.exists.is_some() {
        return None;
    }
    let f = i.field.as_deref()?;
    if f.contains('.') {
        return None;
    }
    matcher_atoms(&i.matcher, out).then_some(f)
}

/// The rule's requirement, `None` when it must always be evaluated.
pub fn rule_req<'a>(l: &'a Logic, freq: &Freq<'a>) -> Option<Req<'a>> {
    let mut cx = Ctx { freq, atoms: Vec::new() };
    union_cost(l.conditions.iter().map(|c| cx.cond_cost(c, &l.dets)))?;
    let mut out = Vec::new();
    for c in &l.conditions {
        cx.cond_emit(c, &l.dets, &mut out);
    }
    Some(out)
}

/// Longest literal the automata hold: a value containing a literal contains its tail, so
/// indexing only the last bytes keeps every candidate while the automata stay small (hash
/// lists alone are hundreds of KiB of 60-character literals, whose tails are as selective).
const SUB_MAX: usize = 16;

/// The last (up to) [`SUB_MAX`] bytes of `s`, cut at a character boundary.
fn sub_window(s: &str) -> &str {
    if s.len() <= SUB_MAX {
        return s;
    }
    let mut start = s.len() - SUB_MAX;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
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
    pub fn add(&mut self, rule: u32, req: Option<Req<'_>>) {
        self.rules += 1;
        let Some(req) = req else {
            self.always.push(rule);
            return;
        };
        for (field, atom) in req {
            let f = match self.fields.get_mut(field) {
                Some(f) => f,
                None => self.fields.entry(field.into()).or_default(),
            };
            let slot = match &atom {
                Atom::Num(n) => f.num.entry(*n).or_default(),
                Atom::Sub(s) | Atom::Exact(s) => {
                    let (map, key) = match atom {
                        Atom::Sub(_) => (&mut f.subs, sub_window(s)),
                        _ => (&mut f.exact, s.as_ref()),
                    };
                    // The literal is copied only the first time it is seen.
                    match map.get_mut(key) {
                        Some(rules) => rules,
                        None => map.entry(key.into()).or_default(),
                    }
                }
            };
            if slot.last() != Some(&rule) {
                slot.push(rule);
            }
        }
    }

    /// Adds every (field, literal) -> rules entry and the always-evaluated rules of `index`
    /// (a built bucket prefilter), for one prefilter over several buckets' rules.
    pub fn absorb(&mut self, index: &Index) {
        self.rules += index.rules;
        self.always.extend_from_slice(&index.always);
        let named = index.fields.iter().map(|(k, f)| (k.as_ref(), f));
        for (name, fi) in named.chain(index.keywords.iter().map(|k| (KEYWORD_FIELD, k))) {
            // Once per set of buckets: the names are simply copied.
            let f = self.fields.entry(name.into()).or_default();
            for (p, rules) in fi.ac.pats.iter().zip(&fi.sub_rules) {
                f.subs.entry(p.clone()).or_default().extend_from_slice(rules);
            }
            for (v, rules) in &fi.exact {
                f.exact.entry(v.clone()).or_default().extend_from_slice(rules);
            }
            for (n, rules) in &fi.num {
                f.num.entry(*n).or_default().extend_from_slice(rules);
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
                    literal_nfa(&lowered, false).map_or(RawSearch::Unsafe, |ac| RawSearch::Lowered(Box::new((ac, any))))
                }
                (false, true) => RawSearch::Nothing,
                _ => RawSearch::Unsafe,
            };
            let fi = FieldIndex {
                raw,
                ac: LazyAc { pats: pats.into_boxed_slice(), ac: OnceLock::new() },
                sub_rules,
                exact_lens: fb.exact.keys().fold(0u64, |m, k| m | len_bit(k.len())),
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

/// A bit standing for a byte length (lengths from 63 on share one).
fn len_bit(len: usize) -> u64 {
    1u64 << len.min(63)
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
    Lowered(Box<(NFA, Option<aho_corasick::packed::Searcher>)>),
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
    /// The [`len_bit`]s of the `exact` literals' lengths: a value of another length is not
    /// looked up (nor lower-cased for the lookup).
    exact_lens: u64,
    num: FxHashMap<i64, Box<[u32]>>,
}

/// The automaton [`FieldIndex::marks`] walks over `pats` (pattern `i` being `pats[i]`):
/// every literal ending at a position is reported (standard semantics); with `ci`, ASCII
/// case folded. Built without the library's prefilter, which the walk does not use.
fn literal_nfa<I, P>(pats: I, ci: bool) -> Result<NFA, aho_corasick::BuildError>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    NFA::builder().match_kind(MatchKind::Standard).ascii_case_insensitive(ci).prefilter(false).build(pats)
}

/// A field's automaton over its substring literals (ASCII case-insensitive), built on the
/// first search of that field in that bucket: building every automaton of every bucket was
/// a third of the rule loading time, and an event only searches the fields of its own
/// buckets. The literals are plain bytes (nothing to validate at load).
struct LazyAc {
    pats: Box<[Box<str>]>,
    /// `None` inside: the automaton could not be built (see [`FieldIndex::marks_all`]).
    ac: OnceLock<Option<Box<FieldAc>>>,
}

/// A field's built search structures.
struct FieldAc {
    nfa: NFA,
    /// A SIMD test (Teddy) for any of the literals in the lower-cased value, run before the
    /// byte-by-byte walk of `nfa` on values long enough for it: most values hold none. The
    /// library builds it only for sets its fingerprints stay selective on (at most 64
    /// literals, fewer when some are one or two bytes long); turning that limit off measured
    /// more instructions per event, not fewer.
    any: Option<aho_corasick::packed::Searcher>,
}

impl LazyAc {
    fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    /// The automaton (`Err(())` when it could not be built); `Ok(None)` without literals.
    fn get(&self) -> Result<Option<&FieldAc>, ()> {
        if self.pats.is_empty() {
            return Ok(None);
        }
        let ac = self.ac.get_or_init(|| {
            match literal_nfa(self.pats.iter().map(|p| p.as_bytes()), true) {
                Ok(nfa) => {
                    let lowered = self.pats.iter().map(|p| p.to_ascii_lowercase());
                    let any = aho_corasick::packed::Config::new().builder().extend(lowered).build();
                    Some(Box::new(FieldAc { nfa, any }))
                }
                Err(e) => {
                    tracing::warn!(error = %e, literals = self.pats.len(), "sigma prefilter automaton not built: its rules are always candidates");
                    None
                }
            }
        });
        ac.as_deref().map(Some).ok_or(())
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
    with_lower(s, |l| l.replace('\u{17f}', "s"))
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
            self.folded(s, false, mark);
        } else {
            self.folded(&fold_non_ascii(s), true, mark);
        }
    }

    /// `raw`: ASCII text (the automaton folds its case), or with `lower_done` text already
    /// folded (lower-cased again it would not change: lower-casing is idempotent).
    fn folded(&self, raw: &str, lower_done: bool, mark: &mut dyn FnMut(u32)) {
        // Lower-casing ASCII text or folded text keeps its length.
        let exact = self.exact_lens & len_bit(raw.len()) != 0;
        let ac = match self.ac.get() {
            Ok(ac) => ac,
            Err(()) => {
                self.marks_all(mark);
                None
            }
        };
        // The SIMD test, on values as long as it needs (shorter ones it searches with a
        // scalar fallback that measured slower than walking them).
        let test = ac.and_then(|a| a.any.as_ref()).filter(|t| raw.len() >= t.minimum_len());
        let mut walk = ac.is_some();
        if exact || test.is_some() {
            // The exact lookup and the SIMD test share one lower-cased copy.
            let mut check = |l: &str| {
                if exact && let Some(rules) = self.exact.get(l) {
                    rules.iter().for_each(|r| mark(*r));
                }
                if let Some(t) = test {
                    walk = t.find(l).is_some();
                }
            };
            if lower_done { check(raw) } else { with_lower(raw, check) }
        }
        // The automaton (ASCII case-insensitive) walks the value as it is, only when the
        // SIMD test (if any) found a literal.
        if walk && let Some(FieldAc { nfa, .. }) = ac {
            self.marks(nfa, raw, mark);
        }
    }

    /// Marks the rules of every literal: an automaton that could not be built must not lose
    /// candidates (the rules are then evaluated on every event that has the field).
    fn marks_all(&self, mark: &mut dyn FnMut(u32)) {
        self.sub_rules.iter().flat_map(|r| r.iter()).for_each(|r| mark(*r));
    }

    /// Marks the rules of every literal `ac` (this field's automaton, or one with the same
    /// pattern numbers) finds in `text`.
    ///
    /// The automaton is walked byte by byte here rather than through the library's
    /// overlapping iterator, which sets up every search and re-enters for every literal
    /// found (the walk measured 1.3% fewer instructions per event over the evtx samples):
    /// every state reached that holds literals (the literals ending there, those of its
    /// failure chain included) marks their rules, which is what the overlapping search
    /// reports. With standard match semantics an unanchored walk never reaches a dead state.
    fn marks(&self, ac: &NFA, text: &str, mark: &mut dyn FnMut(u32)) {
        let Ok(mut sid) = ac.start_state(Anchored::No) else {
            // Not built for unanchored search (never, see the builders): no literal lost.
            self.marks_all(mark);
            return;
        };
        let mut found = |sid| {
            for i in 0..ac.match_len(sid) {
                if let Some(rules) = self.sub_rules.get(ac.match_pattern(sid, i).as_usize()) {
                    rules.iter().for_each(|r| mark(*r));
                }
            }
        };
        if ac.is_match(sid) {
            found(sid);
        }
        for &b in text.as_bytes() {
            sid = ac.next_state(Anchored::No, sid, b);
            if ac.is_special(sid) && ac.is_match(sid) {
                found(sid);
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
        b.add(0, Some(vec![("CommandLine", Atom::Sub("mimikatz".into()))]));
        b.add(1, Some(vec![("CommandLine", Atom::Sub("-enc ".into()))]));
        b.add(2, Some(vec![("Image", Atom::Sub("\\rundll32.exe".into()))]));
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
        f.count_once("CommandLine", sub(), 0);
        f.count_once("CommandLine", sub(), 1);
        f.count_once("Image", sub(), 1);
        f.count_once("CommandLine", sub(), 2);
        // A rule holding the atom twice counts once.
        f.count_once("CommandLine", sub(), 2);
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

    #[test]
    fn the_automaton_walk_marks_every_literal_the_overlapping_search_finds() {
        // Literals nested in one another, sharing prefixes and suffixes, of one byte, with
        // upper-case letters and non-ASCII bytes; each the requirement of one rule.
        let pats = [
            "a", "ab", "abc", "bc", "c", "abcd", "cd", "dab", "rundll32", "dll", "LL3", "32.exe", "\\", "é", "ée",
            "-enc ", "enc", "mimikatz", "katz", "mi",
        ];
        let mut b = IndexBuilder::default();
        for (r, p) in pats.iter().enumerate() {
            b.add(r as u32, Some(vec![("F", Atom::Sub((*p).into()))]));
        }
        let index = b.build();
        let reference = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(pats)
            .unwrap_or_else(|e| panic!("reference automaton: {e}"));
        let texts = [
            "",
            "a",
            "abcdab",
            "xxABCDabcd",
            "C:\\Windows\\RUNDLL32.exe",
            "powershell -ENC aGVsbG8=",
            "mimimikatz katz",
            "éée",
            "zzzz",
            "dabcdabcd",
            "rundll32rundll32.EXE",
            // Long values: with one-byte literals in the set, the library builds no SIMD test
            // for it, so these are walked whole (the SIMD test has its own test below).
            "C:\\Windows\\System32\\RUNDLL32.EXE shell32.dll,Control_RunDLL -ENC aGVsbG8= MIMIKATZ",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzééE",
        ];
        for text in texts {
            let mut walked = candidates(&index, json!({ "F": text }));
            walked.sort_unstable();
            let mut found: Vec<u32> = reference.find_overlapping_iter(text).map(|m| m.pattern().as_u32()).collect();
            found.sort_unstable();
            found.dedup();
            assert_eq!(walked, found, "{text:?}");
        }
    }

    #[test]
    fn a_value_the_simd_test_passes_or_stops_gives_what_the_automaton_alone_gives() {
        let pats = ["\\rundll32.exe", "-enc ", "MimiKatz", "vssadmin delete shadows", "ĳ"];
        let mut b = IndexBuilder::default();
        for (r, p) in pats.iter().enumerate() {
            b.add(r as u32, Some(vec![("CommandLine", Atom::Sub((*p).into()))]));
        }
        let index = b.build();
        let long = |s: &str| format!("C:\\Program Files\\Some Vendor\\tool.exe --flag {s} --other-flag value");
        let cases: [(&str, &[u32]); 7] = [
            ("nothing to see", &[]),
            ("c:\\windows\\system32\\RUNDLL32.EXE", &[0]),
            ("powershell.exe -ENC aGVsbG8=", &[1]),
            ("mimikatz.exe privilege::debug", &[2]),
            ("VSSADMIN Delete Shadows /all /quiet", &[3]),
            ("ĲSSEL", &[4]),
            ("-Enc C:\\x\\rundll32.exe mimiKATZ", &[0, 1, 2]),
        ];
        for (text, want) in cases {
            assert_eq!(
                candidates(&index, json!({ "CommandLine": long(text) })),
                want.to_vec(),
                "{text:?} in a long value"
            );
        }
        let Some(f) = index.fields.get("CommandLine") else { panic!("indexed field") };
        let Ok(Some(FieldAc { any: Some(any), .. })) = f.ac.get() else { panic!("a SIMD test for five literals") };
        assert!(long("").len() >= any.minimum_len(), "the values are long enough for the SIMD test");
    }
}
