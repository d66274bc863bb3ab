//! Compiles rsigma-parser's AST into the fast engine's matcher tree.
//!
//! The modifier semantics follow rsigma-eval 0.23 (the reference engine) item by item, so
//! that both engines accept and reject the same rules and match the same events:
//! * strings are case-insensitive unless `|cased` (Unicode lower-casing of both sides);
//!   wildcards (`*`, `?`) become an anchored regex (`(?i)` unless cased);
//! * `|re` is case-sensitive unless `|i`; `|m`, `|s` set the regex flags;
//! * encodings (`|wide`, `|utf16`, `|utf16be`, `|base64`, `|base64offset`, `|windash`) take
//!   the value's text literally (wildcards included); `|wide` alone changes nothing (as in
//!   rsigma), `|base64` wins over `|windash`;
//! * conflicting modifiers, `|all` with one value, empty detections and unknown condition
//!   identifiers are errors.
//!
//! Not supported (rejected with a reason): rsigma's array object-scope blocks
//! (`field[any]:`) and timestamp-part modifiers (`|hour`, ...), which are rsigma extensions,
//! and field paths with `[` or `\`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsigma_parser::value::{SpecialChar, StringPart};
use rsigma_parser::{ConditionExpr, Detection, DetectionItem, Modifier, SigmaString, SigmaValue};
use std::collections::HashMap;

/// How a plain string is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

/// A numeric comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A part of an `|expand` template.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpandPart {
    Literal(String),
    Placeholder(String),
}

/// A compiled value matcher (applies to one field value).
#[derive(Clone, Debug)]
pub enum Matcher {
    /// `needle` is lower-cased when `ci`.
    Str {
        op: StrOp,
        needle: Box<str>,
        ci: bool,
    },
    /// Wildcard patterns and `|re`. `literals`: lower-case (ASCII) literal runs every match
    /// must contain (used by the prefilter only; empty for `|re`).
    Regex {
        re: Box<LazyRegex>,
        literals: Vec<Box<str>>,
        /// For `|re`: literals (folded as the prefilter folds text) one of which every match
        /// contains, from the regex's prefixes or from inside it; `None` when they are
        /// unknown (prefilter only).
        any: Option<Vec<Box<str>>>,
    },
    Cidr(ipnet::IpNet),
    Num(Cmp, f64),
    Exists(bool),
    FieldRef {
        field: Box<str>,
        op: StrOp,
        ci: bool,
    },
    Null,
    Bool(bool),
    Expand {
        template: Vec<ExpandPart>,
        ci: bool,
    },
    Not(Box<Matcher>),
    Any(Vec<Matcher>),
    All(Vec<Matcher>),
    /// Many string matchers of one case mode OR-ed (windash variants, long value lists):
    /// one Aho-Corasick pass for the `contains` values and one hash lookup per needle length for
    /// the anchored ones, instead of one comparison per value.
    Set(Box<StrSet>),
}

/// See [`Matcher::Set`]. `needles` are lower-cased when `ci`. The search structures are
/// built on first use: most rules never get past the prefilter, and building thousands of
/// small automata dominated rule loading.
#[derive(Debug)]
pub struct StrSet {
    search: std::sync::OnceLock<Box<SetSearch>>,
    pub needles: Vec<(StrOp, Box<str>)>,
    pub ci: bool,
}

/// How a [`StrSet`] is searched: the `contains` needles by an Aho-Corasick automaton over the
/// whole value, the anchored ones (startswith, endswith, whole value) by looking the value's
/// prefixes, suffixes or the value itself up, one lookup per distinct needle length, so that
/// an endswith list does not scan a long command line.
#[derive(Debug, Default)]
pub(crate) struct SetSearch {
    /// Over the `contains` needles (in their order); `None` when there are none, or when it
    /// could not be built (`contains_fallback` then holds them, compared one by one).
    pub ac: Option<aho_corasick::AhoCorasick>,
    pub contains_fallback: Vec<Box<str>>,
    pub starts: Affixes,
    pub ends: Affixes,
    pub exact: Affixes,
}

/// Needles compared at one end of a value (or with the whole value), as bytes (lower-cased
/// when the set ignores case): those shorter than 64 bytes in a hash set with a bit per
/// length present, longer ones in a list.
#[derive(Debug, Default)]
pub(crate) struct Affixes {
    pub lens: u64,
    pub short: rustc_hash::FxHashSet<Box<[u8]>>,
    pub long: Vec<Box<[u8]>>,
}

impl Affixes {
    /// The longest needle kept in the hash set (its length's bit is the last of `lens`).
    pub const SHORT_MAX: usize = 63;

    fn add(&mut self, needle: &[u8]) {
        if needle.len() <= Self::SHORT_MAX {
            self.lens |= 1u64 << needle.len();
            self.short.insert(needle.into());
        } else {
            self.long.push(needle.into());
        }
    }
}

impl Clone for StrSet {
    fn clone(&self) -> Self {
        StrSet::new(self.needles.clone(), self.ci)
    }
}

impl StrSet {
    pub fn new(needles: Vec<(StrOp, Box<str>)>, ci: bool) -> Self {
        StrSet { search: std::sync::OnceLock::new(), needles, ci }
    }

    /// The search structures over the needles (built on the first call).
    pub(crate) fn search(&self) -> &SetSearch {
        self.search.get_or_init(|| {
            let mut s = Box::<SetSearch>::default();
            let mut contains = Vec::new();
            for (op, n) in &self.needles {
                match op {
                    StrOp::Contains => contains.push(n),
                    StrOp::StartsWith => s.starts.add(n.as_bytes()),
                    StrOp::EndsWith => s.ends.add(n.as_bytes()),
                    StrOp::Exact => s.exact.add(n.as_bytes()),
                }
            }
            if !contains.is_empty() {
                // A contiguous NFA, not the library's usual DFA: the DFAs of the sets the
                // SigmaHQ rules evaluate on the evtx samples held 14 MiB (rules memory after
                // the events 56.7 -> 42.9 MiB), the NFA a fraction of that, for a small cost in
                // search speed (the sets are searched after the prefilter, on few events).
                s.ac = aho_corasick::AhoCorasickBuilder::new()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .ascii_case_insensitive(self.ci)
                    .build(contains.iter().map(|n| n.as_bytes()))
                    .ok();
                if s.ac.is_none() {
                    s.contains_fallback = contains.into_iter().cloned().collect();
                }
            }
            s
        })
    }
}

/// Below this many string values an OR is evaluated value by value.
const SET_MIN: usize = 6;

/// An OR of matchers, with the string matchers of each case mode folded into a [`StrSet`]
/// when there are enough of them.
fn any_of(ms: Vec<Matcher>) -> Matcher {
    let count = |ci: bool| ms.iter().filter(|m| matches!(m, Matcher::Str { ci: c, .. } if *c == ci)).count();
    let (n_ci, n_cs) = (count(true), count(false));
    if n_ci < SET_MIN && n_cs < SET_MIN {
        return Matcher::Any(ms);
    }
    let mut rest = Vec::new();
    let mut sets: [Vec<(StrOp, Box<str>)>; 2] = [Vec::new(), Vec::new()];
    for m in ms {
        match m {
            Matcher::Str { op, needle, ci } if (if ci { n_ci } else { n_cs }) >= SET_MIN && !needle.is_empty() => {
                sets[usize::from(ci)].push((op, needle));
            }
            other => rest.push(other),
        }
    }
    for (ci, needles) in [(false, std::mem::take(&mut sets[0])), (true, std::mem::take(&mut sets[1]))] {
        if !needles.is_empty() {
            rest.push(Matcher::Set(Box::new(StrSet::new(needles, ci))));
        }
    }
    if rest.len() == 1 { rest.pop().unwrap_or(Matcher::Any(Vec::new())) } else { Matcher::Any(rest) }
}

/// A compiled detection item.
#[derive(Clone, Debug)]
pub struct Item {
    /// `None`: keyword item (any string value of the event).
    pub field: Option<Box<str>>,
    pub matcher: Matcher,
    /// `Some(expect)` for `|exists`.
    pub exists: Option<bool>,
    /// The number of `field` among the fields the loaded rules look up (see
    /// [`super::eval::Slots`]), set when the rules are indexed; [`NO_SLOT`] until then.
    pub slot: u32,
}

/// [`Item::slot`] of an item whose field has no number.
pub const NO_SLOT: u32 = u32::MAX;

/// A compiled named detection.
#[derive(Clone, Debug)]
pub enum Det {
    AllOf(Vec<Item>),
    AnyOf(Vec<Det>),
    Keywords(Matcher),
}

/// Named detections plus the condition(s) over them.
#[derive(Clone, Debug)]
pub struct Logic {
    pub names: Vec<String>,
    pub dets: Vec<Det>,
    pub conditions: Vec<Cond>,
}

/// A condition with identifiers resolved to detection indices.
#[derive(Clone, Debug)]
pub enum Cond {
    Det(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// Quantified selector over the detections at these indices.
    Select {
        quantifier: Quantifier,
        dets: Vec<usize>,
    },
    /// A rule's own condition(s) AND a filter's condition(s) (filters are separate logic).
    Filtered {
        rule: Box<Cond>,
        filter: Box<Logic>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
    Count(u64),
}

#[derive(Default, Clone, Copy)]
struct Mods {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    base64: bool,
    base64offset: bool,
    wide: bool,
    utf16be: bool,
    utf16: bool,
    windash: bool,
    re: bool,
    cidr: bool,
    cased: bool,
    exists: bool,
    fieldref: bool,
    gt: bool,
    gte: bool,
    lt: bool,
    lte: bool,
    neq: bool,
    i: bool,
    m: bool,
    s: bool,
    expand: bool,
    time_part: Option<&'static str>,
}

impl Mods {
    fn of(modifiers: &[Modifier]) -> Mods {
        let mut c = Mods::default();
        for m in modifiers {
            match m {
                Modifier::Contains => c.contains = true,
                Modifier::StartsWith => c.startswith = true,
                Modifier::EndsWith => c.endswith = true,
                Modifier::All => c.all = true,
                Modifier::Base64 => c.base64 = true,
                Modifier::Base64Offset => c.base64offset = true,
                Modifier::Wide => c.wide = true,
                Modifier::Utf16be => c.utf16be = true,
                Modifier::Utf16 => c.utf16 = true,
                Modifier::WindAsh => c.windash = true,
                Modifier::Re => c.re = true,
                Modifier::Cidr => c.cidr = true,
                Modifier::Cased => c.cased = true,
                Modifier::Exists => c.exists = true,
                Modifier::FieldRef => c.fieldref = true,
                Modifier::Gt => c.gt = true,
                Modifier::Gte => c.gte = true,
                Modifier::Lt => c.lt = true,
                Modifier::Lte => c.lte = true,
                Modifier::Neq => c.neq = true,
                Modifier::IgnoreCase => c.i = true,
                Modifier::Multiline => c.m = true,
                Modifier::DotAll => c.s = true,
                Modifier::Expand => c.expand = true,
                Modifier::Hour => c.time_part = Some("hour"),
                Modifier::Day => c.time_part = Some("day"),
                Modifier::Week => c.time_part = Some("week"),
                Modifier::Month => c.time_part = Some("month"),
                Modifier::Year => c.time_part = Some("year"),
                Modifier::Minute => c.time_part = Some("minute"),
            }
        }
        c
    }
    fn ci(&self) -> bool {
        !self.cased
    }
    fn numeric(&self) -> bool {
        self.gt || self.gte || self.lt || self.lte
    }
    fn op(&self) -> StrOp {
        if self.contains {
            StrOp::Contains
        } else if self.startswith {
            StrOp::StartsWith
        } else if self.endswith {
            StrOp::EndsWith
        } else {
            StrOp::Exact
        }
    }
    fn fieldref_conflicts(&self) -> bool {
        let string_ops = u8::from(self.contains) + u8::from(self.startswith) + u8::from(self.endswith);
        self.re || self.cidr || self.exists || self.numeric() || self.time_part.is_some() || string_ops > 1
    }
}

/// The same modifier checks as the reference engine (same rules rejected).
fn validate(c: &Mods, modifiers: &[Modifier]) -> Result<(), String> {
    let mut ops: Vec<&str> = Vec::new();
    for (on, name) in [
        (c.contains, "contains"),
        (c.startswith, "startswith"),
        (c.endswith, "endswith"),
        (c.re, "re"),
        (c.cidr, "cidr"),
        (c.exists, "exists"),
        (c.fieldref && c.fieldref_conflicts(), "fieldref"),
        (c.gt, "gt"),
        (c.gte, "gte"),
        (c.lt, "lt"),
        (c.lte, "lte"),
    ] {
        if on {
            ops.push(name);
        }
    }
    if let Some(p) = c.time_part {
        ops.push(p);
    }
    if c.fieldref && !c.fieldref_conflicts() {
        let at = modifiers.iter().position(|m| matches!(m, Modifier::FieldRef)).unwrap_or(0);
        if let Some(name) = modifiers[..at].iter().find_map(|m| match m {
            Modifier::Contains => Some("contains"),
            Modifier::StartsWith => Some("startswith"),
            Modifier::EndsWith => Some("endswith"),
            _ => None,
        }) {
            return Err(format!("conflicting modifiers: |{name} must follow |fieldref"));
        }
    }
    if ops.len() > 1 {
        return Err(format!("conflicting modifiers: at most one operator per field; got |{}", ops.join(", |")));
    }
    if u8::from(c.wide) + u8::from(c.utf16) + u8::from(c.utf16be) > 1 {
        return Err("conflicting modifiers: |wide, |utf16 and |utf16be are mutually exclusive".into());
    }
    if c.base64 && c.base64offset {
        return Err("conflicting modifiers: |base64 and |base64offset are mutually exclusive".into());
    }
    let non_string = c.re || c.cidr || c.exists || c.fieldref || c.numeric() || c.time_part.is_some();
    let transforms = c.base64 || c.base64offset || c.wide || c.utf16 || c.utf16be || c.windash || c.expand;
    if non_string && transforms {
        return Err("conflicting modifiers: value transformations only apply to string match operators".into());
    }
    if !c.re && (c.i || c.m || c.s) {
        return Err("regex flag modifiers |i, |m, |s have no effect without |re".into());
    }
    if let Some(p) = c.time_part {
        return Err(format!("modifier |{p} (timestamp part) is not supported by the fast engine"));
    }
    Ok(())
}

fn plain_or_original(s: &SigmaString) -> String {
    s.as_plain().unwrap_or_else(|| s.original.clone())
}

fn plain_text(v: &SigmaValue) -> Result<String, String> {
    match v {
        SigmaValue::String(s) => Ok(plain_or_original(s)),
        SigmaValue::Integer(n) => Ok(n.to_string()),
        SigmaValue::Float(n) => Ok(n.to_string()),
        SigmaValue::Bool(b) => Ok(b.to_string()),
        SigmaValue::Null => Err("null value for string modifier".into()),
    }
}

fn to_f64(v: &SigmaValue) -> Result<f64, String> {
    match v {
        SigmaValue::Integer(n) => Ok(*n as f64),
        SigmaValue::Float(n) => Ok(*n),
        SigmaValue::String(s) => {
            let p = plain_or_original(s);
            p.parse::<f64>().map_err(|_| format!("expected a numeric value, got {p}"))
        }
        other => Err(format!("expected a numeric value, got {other:?}")),
    }
}

fn str_matcher(plain: &str, op: StrOp, ci: bool) -> Matcher {
    Matcher::Str { op, needle: if ci { plain.to_lowercase() } else { plain.to_string() }.into(), ci }
}

/// A regex checked at load time and compiled on first use: most rules never reach their
/// regexes (the prefilter drops them first), and a compiled regex costs tens of KiB.
#[derive(Debug)]
pub struct LazyRegex {
    pattern: Box<str>,
    re: std::sync::OnceLock<Option<regex::Regex>>,
}

impl Clone for LazyRegex {
    fn clone(&self) -> Self {
        LazyRegex { pattern: self.pattern.clone(), re: std::sync::OnceLock::new() }
    }
}

impl LazyRegex {
    /// Whether the regex matches `s`. A pattern that passed the load-time check but does
    /// not build (size limits) never matches; it is logged and counted once.
    pub fn is_match(&self, s: &str) -> bool {
        self.re
            .get_or_init(|| match regex::Regex::new(&self.pattern) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = %self.pattern, error = %e, "sigma regex does not build; it never matches");
                    metrics::counter!("soc_correlator_sigma_regex_build_errors_total").increment(1);
                    None
                }
            })
            .as_ref()
            .is_some_and(|r| r.is_match(s))
    }
}

/// Literals one of which every match of a regex contains (see [`regex_with_prefixes`]).
type Prefixes = Vec<Box<str>>;

/// The regex `pattern` (checked) and the literals one of which every match contains: the
/// regex's prefixes (every match starts with one of them) when there are finitely many and
/// none is empty, folded like the prefilter folds text (Unicode lower case, `ſ` as `s`), or
/// the literals inside every match ([`required_factors`]) when their shortest is longer.
/// `None` for the literals when unknown, or when a prefix holds a character whose lower case
/// depends on its neighbours (Greek sigma): the folded text might not hold it then.
fn regex_with_prefixes(pattern: &str) -> Result<(Box<LazyRegex>, Option<Prefixes>), String> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(pattern).map_err(|e| format!("invalid regex: {e}"))?;
    let re = Box::new(LazyRegex { pattern: pattern.into(), re: std::sync::OnceLock::new() });
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let prefixes = || -> Option<Prefixes> {
        let lits = seq.literals()?;
        if lits.is_empty() {
            return None;
        }
        let mut out: Vec<Box<str>> = Vec::with_capacity(lits.len());
        for l in lits {
            let s = std::str::from_utf8(l.as_bytes()).ok()?;
            if s.is_empty() || s.chars().any(|c| matches!(c, 'Σ' | 'σ' | 'ς')) {
                return None;
            }
            out.push(s.to_lowercase().replace('\u{17f}', "s").into());
        }
        out.sort();
        out.dedup();
        Some(out)
    };
    // Prefixes, or literals inside the matches when those are longer (`\.exe\s+.*werfault`
    // is found through `werfault`, not `.exe`).
    let any = match (prefixes(), required_factors(&hir)) {
        (Some(p), Some(f)) => Some(if factor_score(&f) > factor_score(&p) { f } else { p }),
        (p, f) => p.or(f),
    };
    Ok((re, any))
}

/// How selective a literal set is as a prefilter requirement: its shortest member first,
/// then fewer members.
fn factor_score(set: &[Box<str>]) -> (usize, std::cmp::Reverse<usize>) {
    (set.iter().map(|s| s.len()).min().unwrap_or(0), std::cmp::Reverse(set.len()))
}

/// A character without case variants (emoji, symbols, most scripts): a regex matches it
/// only as itself, case-insensitive or not, and the prefilter's folding keeps it.
pub(crate) fn caseless(c: char) -> bool {
    let (mut l, mut u) = (c.to_lowercase(), c.to_uppercase());
    l.next() == Some(c) && l.next().is_none() && u.next() == Some(c) && u.next().is_none()
}

/// Most alternatives a factor set keeps (beyond, the requirement is dropped).
const FACTORS_MAX: usize = 32;

/// A character as the prefilter folds text (Unicode lower case, `ſ` as `s`), when it is one
/// character and its folding does not depend on its neighbours (Greek sigma).
fn fold_char(c: char) -> Option<char> {
    if matches!(c, 'Σ' | 'σ' | 'ς') {
        return None;
    }
    let mut l = c.to_lowercase();
    let f = l.next()?;
    if l.next().is_some() {
        return None;
    }
    Some(if f == '\u{17f}' { 's' } else { f })
}

/// What the factor analysis knows of a regex node: the one text it matches, folded (`lit`),
/// and a set of folded literals one of which every match of it contains (`req`).
#[derive(Default)]
struct Factors {
    lit: Option<String>,
    req: Option<Vec<Box<str>>>,
}

impl Factors {
    /// The requirement, a whole literal counting as one (a non-empty one).
    fn required(&self) -> Option<Vec<Box<str>>> {
        match (&self.req, &self.lit) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(l)) if !l.is_empty() => Some(vec![l.as_str().into()]),
            _ => None,
        }
    }
}

/// The better of two requirements (see [`factor_score`]).
fn better(a: Option<Vec<Box<str>>>, b: Option<Vec<Box<str>>>) -> Option<Vec<Box<str>>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if factor_score(&b) > factor_score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Literals one of which every match of `hir` contains, folded like the prefilter folds
/// text: literal runs (case-insensitive letters, which the parser writes as classes such as
/// `[Ww]` or `[Ssſ]`, count when every member folds to one character), through captures,
/// repetitions of at least one, and alternations whose every branch has some. `None` when
/// a match may hold no known literal.
fn required_factors(hir: &regex_syntax::hir::Hir) -> Option<Vec<Box<str>>> {
    let mut set = factors(hir, 0).required()?;
    set.sort();
    set.dedup();
    (!set.is_empty() && set.iter().all(|s| !s.is_empty()) && set.len() <= FACTORS_MAX).then_some(set)
}

fn factors(hir: &regex_syntax::hir::Hir, depth: usize) -> Factors {
    use regex_syntax::hir::{Class, HirKind};
    if depth > 64 {
        return Factors::default();
    }
    match hir.kind() {
        HirKind::Empty => Factors { lit: Some(String::new()), req: None },
        HirKind::Literal(l) => {
            let lit = std::str::from_utf8(&l.0).ok().and_then(|t| t.chars().map(fold_char).collect::<Option<String>>());
            Factors { lit, req: None }
        }
        HirKind::Class(Class::Unicode(c)) => {
            // A small class whose members all fold to one character is that character.
            let mut one: Option<char> = None;
            let mut count = 0u32;
            for r in c.ranges() {
                count += r.end() as u32 - r.start() as u32 + 1;
                if count > 8 {
                    return Factors::default();
                }
                for ch in r.start()..=r.end() {
                    match (fold_char(ch), one) {
                        (Some(f), None) => one = Some(f),
                        (Some(f), Some(o)) if f == o => {}
                        _ => return Factors::default(),
                    }
                }
            }
            Factors { lit: one.map(String::from), req: None }
        }
        HirKind::Class(Class::Bytes(c)) => {
            let lit = match c.ranges() {
                [r] if r.start() == r.end() && r.start().is_ascii() => {
                    Some((r.start().to_ascii_lowercase() as char).to_string())
                }
                _ => None,
            };
            Factors { lit, req: None }
        }
        HirKind::Look(_) => Factors::default(),
        HirKind::Capture(c) => factors(&c.sub, depth + 1),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                return Factors::default();
            }
            let inner = factors(&r.sub, depth + 1);
            let lit = match (&inner.lit, r.max) {
                (Some(l), Some(max)) if max == r.min && l.len() * r.min as usize <= 256 => {
                    Some(l.repeat(r.min as usize))
                }
                _ => None,
            };
            Factors { req: inner.required(), lit }
        }
        HirKind::Concat(subs) => {
            let mut run = String::new();
            let mut whole = true;
            let mut best: Option<Vec<Box<str>>> = None;
            for sub in subs {
                let f = factors(sub, depth + 1);
                match f.lit {
                    Some(l) => run.push_str(&l),
                    None => {
                        whole = false;
                        if !run.is_empty() {
                            best = better(best, Some(vec![std::mem::take(&mut run).into()]));
                        }
                        best = better(best, f.req);
                    }
                }
            }
            if whole {
                return Factors { lit: Some(run), req: best };
            }
            if !run.is_empty() {
                best = better(best, Some(vec![run.into()]));
            }
            Factors { lit: None, req: best }
        }
        HirKind::Alternation(subs) => {
            let mut union: Vec<Box<str>> = Vec::new();
            for sub in subs {
                match factors(sub, depth + 1).required() {
                    Some(r) if union.len() + r.len() <= FACTORS_MAX => union.extend(r),
                    _ => return Factors::default(),
                }
            }
            Factors { lit: None, req: Some(union) }
        }
    }
}

/// A string with wildcards: an anchored regex, plus the literal runs (for the prefilter).
fn wildcard_matcher(s: &SigmaString, op: StrOp, ci: bool) -> Result<Matcher, String> {
    let mut pattern = String::new();
    if ci {
        pattern.push_str("(?i)");
    }
    if !matches!(op, StrOp::Contains | StrOp::StartsWith) {
        pattern.push('^');
    }
    let mut literals = Vec::new();
    for part in &s.parts {
        match part {
            StringPart::Plain(t) => {
                pattern.push_str(&regex::escape(t));
                if !t.is_empty() && t.chars().all(|c| c.is_ascii() || caseless(c)) {
                    literals.push(t.to_ascii_lowercase().into_boxed_str());
                }
            }
            StringPart::Special(SpecialChar::WildcardMulti) => pattern.push_str(".*"),
            StringPart::Special(SpecialChar::WildcardSingle) => pattern.push('.'),
        }
    }
    if !matches!(op, StrOp::Contains | StrOp::EndsWith) {
        pattern.push('$');
    }
    // Not checked with the regex parser like `|re` patterns: escaped text, `.`, `.*`, the
    // anchors and `(?i)` always make a valid regex, and parsing each of the rules' thousands
    // of wildcard values was about a fifth of compiling them.
    Ok(Matcher::Regex {
        re: Box::new(LazyRegex { pattern: pattern.into(), re: std::sync::OnceLock::new() }),
        literals,
        any: None,
    })
}

fn sigma_string(s: &SigmaString, op: StrOp, ci: bool) -> Result<Matcher, String> {
    match s.as_plain() {
        Some(p) => Ok(str_matcher(&p, op, ci)),
        None => wildcard_matcher(s, op, ci),
    }
}

const WINDASH: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn windash_variants(input: &str) -> Result<Vec<String>, String> {
    let dashes: Vec<usize> = input.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
    if dashes.len() > 8 {
        return Err(format!("windash modifier: value contains {} dashes, max is 8", dashes.len()));
    }
    let total = WINDASH.len().pow(dashes.len() as u32);
    let mut out = Vec::with_capacity(total);
    for combo in 0..total {
        let mut v = input.to_string();
        let mut idx = combo;
        for &pos in dashes.iter().rev() {
            v.replace_range(pos..pos + 1, WINDASH[idx % WINDASH.len()].encode_utf8(&mut [0u8; 4]));
            idx /= WINDASH.len();
        }
        out.push(v);
    }
    Ok(out)
}

fn utf16(s: &[u8], big_endian: bool) -> Vec<u8> {
    let s = String::from_utf8_lossy(s);
    let mut out = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        out.extend_from_slice(&if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
    }
    out
}

fn base64_offsets(value: &[u8]) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value);
        let encoded = BASE64.encode(&padded);
        let start = (offset * 4).div_ceil(3);
        let trimmed = encoded.trim_end_matches('=');
        if start < trimmed.len() {
            out.push(trimmed[start..].to_string());
        }
    }
    out
}

/// `%name%` placeholders (unterminated ones stay literal text).
pub fn parse_expand(s: &str) -> Vec<ExpandPart> {
    let mut parts = Vec::new();
    let (mut cur, mut ph, mut inside) = (String::new(), String::new(), false);
    for ch in s.chars() {
        if ch == '%' {
            if inside {
                if !ph.is_empty() {
                    parts.push(ExpandPart::Placeholder(std::mem::take(&mut ph)));
                }
                inside = false;
            } else {
                if !cur.is_empty() {
                    parts.push(ExpandPart::Literal(std::mem::take(&mut cur)));
                }
                inside = true;
            }
        } else if inside {
            ph.push(ch);
        } else {
            cur.push(ch);
        }
    }
    if inside && !ph.is_empty() {
        cur.push('%');
        cur.push_str(&ph);
    }
    if !cur.is_empty() {
        parts.push(ExpandPart::Literal(cur));
    }
    parts
}

fn compile_value(v: &SigmaValue, c: &Mods) -> Result<Matcher, String> {
    let ci = c.ci();
    if c.expand {
        return Ok(Matcher::Expand { template: parse_expand(&plain_text(v)?), ci });
    }
    if c.fieldref {
        let field = match v {
            SigmaValue::String(s) => s.as_plain().ok_or("field reference must not contain wildcards")?,
            other => plain_text(other)?,
        };
        return Ok(Matcher::FieldRef { field: field.into(), op: c.op(), ci });
    }
    if c.re {
        let mut flags = String::new();
        for (on, f) in [(c.i, 'i'), (c.m, 'm'), (c.s, 's')] {
            if on {
                flags.push(f);
            }
        }
        let p = plain_text(v)?;
        let pattern = if flags.is_empty() { p } else { format!("(?{flags}){p}") };
        let (re, any) = regex_with_prefixes(&pattern)?;
        return Ok(Matcher::Regex { re, literals: Vec::new(), any });
    }
    if c.cidr {
        let net = plain_text(v)?.parse::<ipnet::IpNet>().map_err(|e| format!("invalid CIDR: {e}"))?;
        return Ok(Matcher::Cidr(net));
    }
    if c.numeric() {
        let n = to_f64(v)?;
        let cmp = if c.gt {
            Cmp::Gt
        } else if c.gte {
            Cmp::Gte
        } else if c.lt {
            Cmp::Lt
        } else {
            Cmp::Lte
        };
        return Ok(Matcher::Num(cmp, n));
    }
    let substring = c.contains || c.startswith || c.endswith;
    let s = match v {
        SigmaValue::Integer(n) if substring => return Ok(str_matcher(&n.to_string(), c.op(), ci)),
        SigmaValue::Integer(n) => return Ok(Matcher::Num(Cmp::Eq, *n as f64)),
        SigmaValue::Float(n) if substring => return Ok(str_matcher(&n.to_string(), c.op(), ci)),
        SigmaValue::Float(n) => return Ok(Matcher::Num(Cmp::Eq, *n)),
        SigmaValue::Bool(b) => return Ok(Matcher::Bool(*b)),
        SigmaValue::Null => return Ok(Matcher::Null),
        SigmaValue::String(s) => s,
    };
    let encoded = c.wide || c.utf16be || c.utf16 || c.base64 || c.base64offset || c.windash;
    if !encoded {
        return sigma_string(s, c.op(), ci);
    }
    // Encodings take the text literally, wildcards included.
    let plain = plain_or_original(s);
    let mut bytes = plain.clone().into_bytes();
    if c.wide {
        bytes = utf16(&bytes, false);
    }
    if c.utf16be {
        bytes = utf16(&bytes, true);
    }
    if c.utf16 {
        let mut b = vec![0xFF, 0xFE];
        b.extend_from_slice(&utf16(&bytes, false));
        bytes = b;
    }
    if c.base64 {
        return Ok(str_matcher(&BASE64.encode(&bytes), c.op(), ci));
    }
    if c.base64offset {
        return Ok(Matcher::Any(base64_offsets(&bytes).iter().map(|p| str_matcher(p, StrOp::Contains, ci)).collect()));
    }
    if c.windash {
        return Ok(any_of(windash_variants(&plain)?.iter().map(|v| str_matcher(v, c.op(), ci)).collect()));
    }
    Ok(str_matcher(&plain, c.op(), ci))
}

/// `a OR (b OR c)` -> `a OR b OR c` (windash values inside a value list).
fn flatten_any(ms: Vec<Matcher>) -> Vec<Matcher> {
    let mut out = Vec::with_capacity(ms.len());
    for m in ms {
        match m {
            Matcher::Any(inner) => out.extend(flatten_any(inner)),
            Matcher::Set(set) => {
                let StrSet { needles, ci, .. } = *set;
                out.extend(needles.into_iter().map(|(op, needle)| Matcher::Str { op, needle, ci }));
            }
            other => out.push(other),
        }
    }
    out
}

fn check_field(name: &str) -> Result<(), String> {
    if name.contains('[') || name.contains('\\') {
        return Err(format!("field path '{name}' (with '[' or '\\') is not supported by the fast engine"));
    }
    Ok(())
}

fn compile_item(item: &DetectionItem) -> Result<Item, String> {
    for v in &item.values {
        if let SigmaValue::String(s) = v
            && s.original.contains("${source.")
        {
            return Err(format!("unresolved source placeholder in detection value: {}", s.original));
        }
    }
    let c = Mods::of(&item.field.modifiers);
    validate(&c, &item.field.modifiers)?;
    let field = item.field.name.as_deref().map(|f| check_field(f).map(|()| Box::<str>::from(f))).transpose()?;
    if c.exists {
        let expect = match item.values.first() {
            Some(SigmaValue::Bool(b)) => *b,
            Some(SigmaValue::String(s)) => !matches!(s.as_plain().as_deref(), Some("false" | "no")),
            _ => true,
        };
        return Ok(Item { field, matcher: Matcher::Exists(expect), exists: Some(expect), slot: NO_SLOT });
    }
    if c.all && item.values.len() <= 1 {
        return Err("|all modifier requires more than one value".into());
    }
    let vc = Mods { neq: false, ..c };
    let mut ms = item.values.iter().map(|v| compile_value(v, &vc)).collect::<Result<Vec<_>, _>>()?;
    let combined = if ms.len() == 1 {
        ms.pop().unwrap_or(Matcher::Any(Vec::new()))
    } else if c.all {
        Matcher::All(ms)
    } else {
        any_of(flatten_any(ms))
    };
    let matcher = if c.neq { Matcher::Not(Box::new(combined)) } else { combined };
    Ok(Item { field, matcher, exists: None, slot: NO_SLOT })
}

fn keyword_value(v: &SigmaValue) -> Result<Matcher, String> {
    Ok(match v {
        SigmaValue::String(s) => sigma_string(s, StrOp::Contains, true)?,
        SigmaValue::Integer(n) => Matcher::Num(Cmp::Eq, *n as f64),
        SigmaValue::Float(n) => Matcher::Num(Cmp::Eq, *n),
        SigmaValue::Bool(b) => Matcher::Bool(*b),
        SigmaValue::Null => Matcher::Null,
    })
}

pub fn compile_detection(d: &Detection) -> Result<Det, String> {
    match d {
        Detection::AllOf(items) if items.is_empty() => Err("AllOf detection must not be empty".into()),
        Detection::AllOf(items) => Ok(Det::AllOf(items.iter().map(compile_item).collect::<Result<_, _>>()?)),
        Detection::AnyOf(ds) if ds.is_empty() => Err("AnyOf detection must not be empty".into()),
        Detection::AnyOf(ds) => Ok(Det::AnyOf(ds.iter().map(compile_detection).collect::<Result<_, _>>()?)),
        Detection::Keywords(vs) => {
            let mut ms = vs.iter().map(keyword_value).collect::<Result<Vec<_>, _>>()?;
            match ms.len() {
                0 => Err("Keywords detection must not be empty".into()),
                1 => Ok(Det::Keywords(ms.pop().unwrap_or(Matcher::Any(Vec::new())))),
                _ => Ok(Det::Keywords(any_of(ms))),
            }
        }
        _ => Err("array object-scope detections (field[any]/field[all]) are not supported by the fast engine".into()),
    }
}

fn compile_cond(e: &ConditionExpr, index: &HashMap<&str, usize>, names: &[String]) -> Result<Cond, String> {
    Ok(match e {
        ConditionExpr::Identifier(n) => {
            Cond::Det(*index.get(n.as_str()).ok_or_else(|| format!("unknown detection identifier '{n}'"))?)
        }
        ConditionExpr::And(es) => {
            Cond::And(es.iter().map(|e| compile_cond(e, index, names)).collect::<Result<_, _>>()?)
        }
        ConditionExpr::Or(es) => Cond::Or(es.iter().map(|e| compile_cond(e, index, names)).collect::<Result<_, _>>()?),
        ConditionExpr::Not(e) => Cond::Not(Box::new(compile_cond(e, index, names)?)),
        ConditionExpr::Selector { quantifier, pattern } => Cond::Select {
            quantifier: match quantifier {
                rsigma_parser::Quantifier::Any => Quantifier::Any,
                rsigma_parser::Quantifier::All => Quantifier::All,
                rsigma_parser::Quantifier::Count(n) => Quantifier::Count(*n),
            },
            dets: names.iter().enumerate().filter(|(_, n)| pattern.matches_detection_name(n)).map(|(i, _)| i).collect(),
        },
    })
}

/// Compiles a rule's (or filter's) detection section.
pub fn compile_logic(section: &rsigma_parser::Detections) -> Result<Logic, String> {
    let mut names: Vec<String> = section.named.keys().cloned().collect();
    names.sort();
    let mut dets = Vec::with_capacity(names.len());
    for n in &names {
        let d = section.named.get(n).ok_or("detection vanished")?;
        dets.push(compile_detection(d).map_err(|e| format!("detection '{n}': {e}"))?);
    }
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let conditions =
        section.conditions.iter().map(|c| compile_cond(c, &index, &names)).collect::<Result<Vec<_>, _>>()?;
    Ok(Logic { names, dets, conditions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_prefixes_are_the_folded_literals_every_match_starts_with() {
        let any = |p: &str| {
            regex_with_prefixes(p).map(|(_, a)| a.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        };
        assert_eq!(any(r"ipconfig\s+/all"), Ok(Some(vec!["ipconfig".to_string()])));
        // Case variants are bounded: the extraction keeps shorter prefixes then.
        let ci = any(r"(?i)WSASS\.exe");
        assert!(
            matches!(&ci, Ok(Some(v)) if v.len() == 1 && v[0].len() >= 4 && "wsass.exe".starts_with(v[0].as_str())),
            "{ci:?}"
        );
        assert_eq!(any("a|bc+"), Ok(Some(vec!["a".to_string(), "bc".to_string()])));
        // A match may start anywhere: the literal inside is required instead.
        assert_eq!(any(".*x"), Ok(Some(vec!["x".to_string()])));
        assert_eq!(any("x?"), Ok(None));
        // Greek sigma folds by context: not used, the rest is.
        assert_eq!(any("(?i)Σx"), Ok(Some(vec!["x".to_string()])));
        assert_eq!(any("(?i)Σ"), Ok(None));
        assert!(regex_with_prefixes("(unclosed").is_err());
    }

    #[test]
    fn regex_requirements_are_the_longest_literals_every_match_contains() {
        let any = |p: &str| {
            regex_with_prefixes(p).map(|(_, a)| a.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        };
        let one = |s: &str| Ok(Some(vec![s.to_string()]));
        // Inside the match, case-insensitive letters included (`[Ssſ]` folds to `s`).
        assert_eq!(any(r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#), one("werfaultsecure.exe"));
        assert_eq!(any(r"\w+`(\w+|-|.)`[\w+|\s]"), one("`"));
        assert_eq!(any(r"(?i)\\(mimi|kiwi)katz\.exe"), one("katz.exe"));
        assert_eq!(
            any(r"(?i)(invoke-mimikatz|sekurlsa::\w+)"),
            Ok(Some(vec!["invoke-mimikatz".into(), "sekurlsa::".into()]))
        );
        assert_eq!(any(r"x(ab){2}y+z"), one("xababy"));
        // A class of letters that fold differently, an optional part, or a branch without
        // literal: nothing required there.
        assert_eq!(any(r".*[ab]c?"), Ok(None));
        assert_eq!(any(r".*(a|\d+)"), Ok(None));
        // Characters with context- or neighbour-dependent folding are left out.
        assert_eq!(any(r".*(?i)βx"), one("x"));
        assert_eq!(any(r".*Σ"), Ok(None));
    }

    #[test]
    fn wildcard_values_always_make_valid_regexes() {
        for value in ["*a.b(c)[d]{e}|f+g^h$i\\j*", "?\u{e9}\u{17f}*", "C:\\Windows\\*\\x?.exe", "**", "(?i)*", "#*%"] {
            for op in [StrOp::Exact, StrOp::Contains, StrOp::StartsWith, StrOp::EndsWith] {
                for ci in [true, false] {
                    let Ok(Matcher::Regex { re, .. }) = wildcard_matcher(&SigmaString::new(value), op, ci) else {
                        panic!("{value}: not a regex matcher")
                    };
                    assert!(regex::Regex::new(&re.pattern).is_ok(), "{value} -> {}", re.pattern);
                }
            }
        }
    }

    #[test]
    fn windash_expands_every_dash_to_five_variants() {
        let v = windash_variants("-a -b").unwrap_or_default();
        assert_eq!(v.len(), 25);
        assert!(v.contains(&"/a \u{2014}b".to_string()));
        assert!(windash_variants("---------").is_err());
    }

    #[test]
    fn base64offset_gives_the_three_alignments() {
        // "http" at offsets 0, 1, 2, trimmed like the reference engine does (leading
        // characters that depend on the padding dropped, trailing `=` removed).
        assert_eq!(base64_offsets(b"http"), ["aHR0cA", "h0dHA", "odHRw"]);
    }

    #[test]
    fn expand_templates_keep_unterminated_percent_text() {
        assert_eq!(
            parse_expand("a%x%b%y"),
            [
                ExpandPart::Literal("a".into()),
                ExpandPart::Placeholder("x".into()),
                ExpandPart::Literal("b".into()),
                ExpandPart::Literal("%y".into())
            ]
        );
    }
}
