//! Exact evaluation of compiled rules on a borrowed view of a log (no copy of the event).
//!
//! Value semantics are the reference engine's (rsigma-eval 0.23 on a JSON object):
//! * string matchers see strings as they are, integers and floats in decimal, booleans as
//!   `true`/`false`, and any element of an array; null and objects never match;
//! * numeric matchers see numbers and strings that parse as a float;
//! * a missing field matches only a bare `null` value; `|exists` tests presence and
//!   non-null; keywords search every string value (not numbers) of the event;
//! * a dotted field name is first looked up as one key, then as a path into nested
//!   objects (arrays on the way are searched member by member).

use super::compile::{Affixes, Cmp, Cond, Det, ExpandPart, Item, Logic, Matcher, Quantifier, StrOp, StrSet};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::RefCell;

/// What a rule sees: the normalized fields plus the log message under `message`.
#[derive(Clone, Copy, Debug)]
pub struct Doc<'a> {
    pub fields: &'a Map<String, Value>,
    /// The message, when no field is called `message`.
    pub message: Option<&'a str>,
    /// The fast path from JSON text ([`super::flat`]) holds only the fields rules reference
    /// (in `slots`, and in `fields` those a pipeline made that no rule names); the strings
    /// of the others, which keyword search also sees, are here.
    pub extra: Option<&'a super::flat::FlatScratch>,
    /// The fast path's fields by their number ([`Slots`]), besides `fields`.
    pub slots: Option<Slots<'a>>,
}

/// The fields of a record flattened from JSON text by field number: every field name a rule
/// looks up is numbered once when the rules are loaded, the event's values are put in the
/// slot of their name (no per-event key copy, no map insertion).
#[derive(Clone, Copy, Debug)]
pub struct Slots<'a> {
    /// Field name -> number.
    pub ids: &'a rustc_hash::FxHashMap<Box<str>, u32>,
    /// Number -> field name.
    pub names: &'a [Box<str>],
    /// Number -> the event's value (`None`: absent).
    pub vals: &'a [Option<Value>],
    /// The numbers whose slot holds a value.
    pub filled: &'a [u32],
}

impl<'a> Slots<'a> {
    #[inline]
    fn get(&self, key: &str) -> Option<&'a Value> {
        let id = *self.ids.get(key)?;
        self.vals.get(id as usize)?.as_ref()
    }

    /// The (name, value) pairs held.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + '_ {
        let (names, vals) = (self.names, self.vals);
        self.filled.iter().filter_map(move |&id| {
            let v = vals.get(id as usize)?.as_ref()?;
            Some((names.get(id as usize)?.as_ref(), v))
        })
    }

    /// Number of fields held.
    pub fn len(&self) -> usize {
        self.filled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filled.is_empty()
    }
}

/// A looked-up value.
#[derive(Clone, Debug)]
pub enum V<'a> {
    J(&'a Value),
    S(&'a str),
    /// Several values found through a path (an array for the matchers).
    Many(Vec<V<'a>>),
}

/// Nesting depth searched by keywords (as the reference engine).
pub(crate) const MAX_DEPTH: usize = 64;

impl<'a> Doc<'a> {
    pub fn new(fields: &'a Map<String, Value>, message: Option<&'a str>) -> Self {
        let message = if fields.contains_key(super::super::engine::MESSAGE_FIELD) { None } else { message };
        Doc { fields, message, extra: None, slots: None }
    }

    /// The document of a record flattened from JSON text ([`super::flat`]).
    /// `slots`: the numbered fields ([`Slots`]) when the record holds them there.
    pub fn flat(flat: &'a super::flat::FlatScratch, slots: Option<Slots<'a>>) -> Self {
        let message = if flat.has_message_field { None } else { flat.message.as_deref() };
        Doc { fields: &flat.fields, message, extra: Some(flat), slots }
    }

    #[inline]
    pub fn top(&self, key: &str) -> Option<V<'a>> {
        if let Some(s) = &self.slots
            && let Some(v) = s.get(key)
        {
            return Some(V::J(v));
        }
        match self.fields.get(key) {
            Some(v) => Some(V::J(v)),
            None if key == super::super::engine::MESSAGE_FIELD => self.message.map(V::S),
            None => None,
        }
    }

    pub fn get(&self, path: &str) -> Option<V<'a>> {
        if let Some(v) = self.top(path) {
            return Some(v);
        }
        self.get_nested(path)
    }

    /// [`Doc::get`] for a field whose number is known ([`Item::slot`]): its slot read
    /// without looking the name up.
    pub fn get_item(&self, path: &str, slot: u32) -> Option<V<'a>> {
        let Some(s) = self.slots.as_ref().filter(|_| slot != super::compile::NO_SLOT) else {
            return self.get(path);
        };
        if let Some(v) = s.vals.get(slot as usize).and_then(Option::as_ref) {
            return Some(V::J(v));
        }
        // Not in its slot (every numbered field is held there): the message, or a path.
        if path == super::super::engine::MESSAGE_FIELD {
            return self.message.map(V::S);
        }
        self.get_nested(path)
    }

    /// The values a dotted path reaches below a top-level field.
    fn get_nested(&self, path: &str) -> Option<V<'a>> {
        if !path.contains('.') {
            return None;
        }
        let mut parts = path.split('.');
        let first = parts.next().filter(|f| !f.is_empty())?;
        let root = self.top(first)?;
        let rest: Vec<&str> = parts.collect();
        let mut out = Vec::new();
        if let V::J(v) = root {
            collect(v, &rest, &mut out);
        } else if rest.is_empty() {
            out.push(root);
        }
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ => Some(V::Many(out)),
        }
    }

    /// Calls `f` with every string value keyword search looks at (the same values, in the
    /// same traversal, as [`Doc::any_string`]).
    pub fn for_each_string(&self, f: &mut dyn FnMut(&str)) {
        fn walk(v: &Value, f: &mut dyn FnMut(&str), depth: usize) {
            if depth == 0 {
                return;
            }
            match v {
                Value::String(s) => f(s),
                Value::Object(m) => m.values().for_each(|x| walk(x, f, depth - 1)),
                Value::Array(a) => a.iter().for_each(|x| walk(x, f, depth - 1)),
                _ => {}
            }
        }
        self.fields.values().for_each(|v| walk(v, f, MAX_DEPTH - 1));
        if let Some(s) = &self.slots {
            s.iter().for_each(|(_, v)| walk(v, f, MAX_DEPTH - 1));
        }
        if let Some(x) = self.extra {
            x.extra_strings().for_each(&mut *f);
        }
        if let Some(m) = self.message {
            f(m);
        }
    }

    /// Whether `pred` holds for any string value of the event (keyword search).
    fn any_string(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.fields.values().any(|v| any_string(v, pred, MAX_DEPTH - 1))
            || self.slots.is_some_and(|s| s.iter().any(|(_, v)| any_string(v, pred, MAX_DEPTH - 1)))
            || self.extra.is_some_and(|x| x.extra_strings().any(pred))
            || self.message.is_some_and(pred)
    }
}

fn collect<'a>(v: &'a Value, keys: &[&str], out: &mut Vec<V<'a>>) {
    let Some((k, rest)) = keys.split_first() else {
        out.push(V::J(v));
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(next) = m.get(*k) {
                collect(next, rest, out);
            }
        }
        Value::Array(a) => {
            for item in a {
                collect(item, keys, out);
            }
        }
        _ => {}
    }
}

fn any_string(v: &Value, pred: &dyn Fn(&str) -> bool, depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    match v {
        Value::String(s) => pred(s),
        Value::Object(m) => m.values().any(|x| any_string(x, pred, depth - 1)),
        Value::Array(a) => a.iter().any(|x| any_string(x, pred, depth - 1)),
        _ => false,
    }
}

/// A JSON number as the reference engine prints it (integer, else float).
pub fn number_text(n: &Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => n.as_f64().unwrap_or(f64::NAN).to_string(),
    }
}

/// [`number_text`] passed to `f`, without allocating for integers.
pub fn with_number_text<R>(n: &Number, f: impl FnOnce(&str) -> R) -> R {
    let Some(i) = n.as_i64() else { return f(&number_text(n)) };
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut u = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    match std::str::from_utf8(&buf[pos..]) {
        Ok(s) => f(s),
        Err(_) => f(&number_text(n)),
    }
}

fn number_f64(n: &Number) -> f64 {
    match n.as_i64() {
        Some(i) => i as f64,
        None => n.as_f64().unwrap_or(f64::NAN),
    }
}

/// Whether `pred` holds for the value seen as a string (or any member).
fn str_any(v: &V<'_>, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        V::S(s) => pred(s),
        V::Many(vs) => vs.iter().any(|x| str_any(x, pred)),
        V::J(j) => json_str_any(j, pred),
    }
}

fn json_str_any(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => pred(s),
        Value::Number(n) => with_number_text(n, pred),
        Value::Bool(b) => pred(if *b { "true" } else { "false" }),
        Value::Array(a) => a.iter().any(|x| json_str_any(x, pred)),
        _ => false,
    }
}

fn num_any(v: &V<'_>, pred: &dyn Fn(f64) -> bool) -> bool {
    match v {
        V::S(s) => s.parse::<f64>().is_ok_and(pred),
        V::Many(vs) => vs.iter().any(|x| num_any(x, pred)),
        V::J(j) => json_num_any(j, pred),
    }
}

fn json_num_any(v: &Value, pred: &dyn Fn(f64) -> bool) -> bool {
    match v {
        Value::Number(n) => pred(number_f64(n)),
        Value::String(s) => s.parse::<f64>().is_ok_and(pred),
        Value::Array(a) => a.iter().any(|x| json_num_any(x, pred)),
        _ => false,
    }
}

fn is_null(v: &V<'_>) -> bool {
    matches!(v, V::J(Value::Null))
}

/// The value as a string (scalars only).
fn as_str<'v>(v: &'v V<'_>) -> Option<Cow<'v, str>> {
    match v {
        V::S(s) => Some(Cow::Borrowed(s)),
        V::J(Value::String(s)) => Some(Cow::Borrowed(s)),
        V::J(Value::Number(n)) => Some(Cow::Owned(number_text(n))),
        V::J(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Structural equality as the reference engine's event values compare.
fn same(a: &V<'_>, b: &V<'_>) -> bool {
    fn norm<'x>(v: &V<'x>) -> Value {
        match v {
            V::S(s) => Value::String((*s).to_string()),
            V::J(j) => (*j).clone(),
            V::Many(vs) => Value::Array(vs.iter().map(norm).collect()),
        }
    }
    norm(a) == norm(b)
}

/// The last few values lower-cased on this thread, by their text: the same value is
/// lower-cased for the prefilter's lookups and again for each candidate rule that searches it.
#[derive(Default)]
struct LowerCache {
    entries: [(String, String); LOWER_KEPT],
    /// The entry the next new value replaces.
    next: usize,
}

/// Values [`LowerCache`] keeps.
const LOWER_KEPT: usize = 4;

/// Longest value [`LowerCache`] keeps (longer ones are lower-cased on every call), so the
/// cache holds at most a few MiB per thread whatever the events carry.
const LOWER_KEPT_LEN: usize = 256 * 1024;

impl LowerCache {
    /// The lower case of `s`, from the entry holding `s` or one filled now; `None` for a
    /// value longer than [`LOWER_KEPT_LEN`].
    fn lower(&mut self, s: &str) -> Option<&str> {
        if s.len() > LOWER_KEPT_LEN {
            return None;
        }
        let i = match self.entries.iter().position(|(raw, _)| raw.len() == s.len() && raw == s) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (i + 1) % LOWER_KEPT;
                let (raw, lower) = self.entries.get_mut(i)?;
                raw.clear();
                raw.push_str(s);
                lower_into(s, lower);
                i
            }
        };
        self.entries.get(i).map(|(_, lower)| lower.as_str())
    }
}

thread_local! {
    static LOWER: RefCell<LowerCache> = RefCell::new(LowerCache::default());
}

/// `s` lower-cased (Unicode, like `str::to_lowercase`) passed to `f`, without allocating
/// after warm-up; a value met again on this thread is not lower-cased again (values up to
/// [`LOWER_KEPT_LEN`] bytes).
pub fn with_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    LOWER.with(|c| {
        // Borrowed already (`f` of an outer call lower-cases too) or too long: a fresh copy.
        if let Ok(mut c) = c.try_borrow_mut()
            && let Some(lower) = c.lower(s)
        {
            return f(lower);
        }
        let mut lower = String::new();
        lower_into(s, &mut lower);
        f(&lower)
    })
}

/// `s.to_lowercase()` written into `out` (replacing it): runs of ASCII are copied and
/// lower-cased in bulk, other characters one by one with `char::to_lowercase`, which maps
/// every character as `str::to_lowercase` does except `Σ` (its lower case depends on the
/// letters around it): text holding one is left to `str::to_lowercase`.
pub fn lower_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        // Copied and lower-cased in one vectorized pass.
        out.push_str(s);
        out.make_ascii_lowercase();
        return;
    }
    if s.contains('Σ') {
        out.push_str(&s.to_lowercase());
        return;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let ascii = rest.bytes().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        let start = out.len();
        out.push_str(run);
        if let Some(added) = out.get_mut(start..) {
            added.make_ascii_lowercase();
        }
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_lowercase());
        }
        rest = chars.as_str();
    }
}

#[inline]
pub fn str_match(s: &str, op: StrOp, needle: &str, ci: bool) -> bool {
    if !ci {
        return match op {
            StrOp::Exact => s == needle,
            StrOp::Contains => s.contains(needle),
            StrOp::StartsWith => s.starts_with(needle),
            StrOp::EndsWith => s.ends_with(needle),
        };
    }
    // Lower-case needle. Lower-casing goes character by character (the context-dependent
    // Greek sigma is not ASCII), so the lower case of a string ending (starting) with ASCII
    // text ends (starts) with that text's ASCII lower case: only that part needs checking.
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    match op {
        StrOp::EndsWith if h.len() >= n.len() && h[h.len() - n.len()..].is_ascii() => {
            return h[h.len() - n.len()..].eq_ignore_ascii_case(n);
        }
        StrOp::StartsWith if h.len() >= n.len() && h[..n.len()].is_ascii() => {
            return h[..n.len()].eq_ignore_ascii_case(n);
        }
        _ => {}
    }
    if s.is_ascii() {
        // ASCII text: compare with ASCII folding, no allocation.
        return match op {
            StrOp::Exact => h.eq_ignore_ascii_case(n),
            StrOp::StartsWith => h.len() >= n.len() && h[..n.len()].eq_ignore_ascii_case(n),
            StrOp::EndsWith => h.len() >= n.len() && h[h.len() - n.len()..].eq_ignore_ascii_case(n),
            StrOp::Contains => with_lower(s, |l| l.contains(needle)),
        };
    }
    with_lower(s, |l| match op {
        StrOp::Exact => l == needle,
        StrOp::Contains => l.contains(needle),
        StrOp::StartsWith => l.starts_with(needle),
        StrOp::EndsWith => l.ends_with(needle),
    })
}

fn lower_bool(s: &str, expected: bool) -> bool {
    match s.to_lowercase().as_str() {
        "true" | "1" | "yes" => expected,
        "false" | "0" | "no" => !expected,
        _ => false,
    }
}

fn bool_match(v: &V<'_>, expected: bool) -> bool {
    match v {
        V::J(Value::Bool(b)) => *b == expected,
        V::J(Value::String(s)) => lower_bool(s, expected),
        V::S(s) => lower_bool(s, expected),
        V::J(Value::Array(a)) => a.iter().any(|x| bool_match(&V::J(x), expected)),
        V::Many(vs) => vs.iter().any(|x| bool_match(x, expected)),
        _ => false,
    }
}

impl StrSet {
    /// Whether any needle matches `s` with its operator (lower-casing `s` when `ci`).
    pub fn matches_str(&self, s: &str) -> bool {
        if self.ci && !s.is_ascii() {
            return with_lower(s, |l| self.scan(l));
        }
        // ASCII text: the automaton folds ASCII case itself.
        self.scan(s)
    }

    fn scan(&self, h: &str) -> bool {
        let search = self.search();
        let (b, ci) = (h.as_bytes(), self.ci);
        // The value's first and last bytes, as many as the longest short needle at that end
        // (a whole value of an exact needle's length included), lower-cased once for every
        // length.
        let longest = |lens: u64| lens.checked_ilog2().map_or(0, |l| l as usize);
        let (nh, nt) =
            (b.len().min(longest(search.starts.lens | search.exact.lens)), b.len().min(longest(search.ends.lens)));
        let (mut head, mut tail) = ([0u8; Affixes::SHORT_MAX], [0u8; Affixes::SHORT_MAX]);
        let head = fold_into(&mut head, b.get(..nh).unwrap_or_default(), ci);
        let tail = fold_into(&mut tail, b.get(b.len() - nt..).unwrap_or_default(), ci);
        let same =
            |part: Option<&[u8]>, n: &[u8]| part.is_some_and(|p| if ci { p.eq_ignore_ascii_case(n) } else { p == n });
        let exact = &search.exact;
        if (b.len() <= Affixes::SHORT_MAX && exact.lens & (1u64 << b.len()) != 0 && exact.short.contains(head))
            || exact.long.iter().any(|x| same(Some(b), x))
            || search.starts.any_short(|l| head.get(..l))
            || search.starts.long.iter().any(|x| same(b.get(..x.len()), x))
            || search.ends.any_short(|l| tail.len().checked_sub(l).and_then(|i| tail.get(i..)))
            || search.ends.long.iter().any(|x| same(b.len().checked_sub(x.len()).and_then(|i| b.get(i..)), x))
        {
            return true;
        }
        match &search.ac {
            Some(ac) => ac.find(h).is_some(),
            None => search.contains_fallback.iter().any(|n| str_match(h, StrOp::Contains, n, ci)),
        }
    }
}

/// `src` copied into `buf` with its ASCII letters lower-cased when `ci` (the needles of a
/// case-insensitive set are), else `src` itself.
fn fold_into<'a>(buf: &'a mut [u8; Affixes::SHORT_MAX], src: &'a [u8], ci: bool) -> &'a [u8] {
    if !ci {
        return src;
    }
    let dst = &mut buf[..src.len().min(Affixes::SHORT_MAX)];
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_ascii_lowercase();
    }
    dst
}

impl Affixes {
    /// Whether `part(l)` (the value's first or last `l` bytes, folded) is one of the short
    /// needles, for every length `l` a short needle has (`None`: the value is shorter).
    fn any_short<'p>(&self, part: impl Fn(usize) -> Option<&'p [u8]>) -> bool {
        let mut lens = self.lens;
        while lens != 0 {
            let l = lens.trailing_zeros() as usize;
            lens &= lens - 1;
            if part(l).is_some_and(|p| self.short.contains(p)) {
                return true;
            }
        }
        false
    }
}

impl Matcher {
    pub fn matches(&self, v: &V<'_>, doc: &Doc<'_>) -> bool {
        match self {
            Matcher::Str { op, needle, ci } => str_any(v, &|s| str_match(s, *op, needle, *ci)),
            Matcher::Regex { re, .. } => str_any(v, &|s| re.is_match(s)),
            Matcher::Cidr(net) => str_any(v, &|s| s.parse::<std::net::IpAddr>().is_ok_and(|ip| net.contains(&ip))),
            Matcher::Num(cmp, n) => {
                let n = *n;
                match cmp {
                    Cmp::Eq => num_any(v, &|x| (x - n).abs() < f64::EPSILON),
                    Cmp::Gt => num_any(v, &|x| x > n),
                    Cmp::Gte => num_any(v, &|x| x >= n),
                    Cmp::Lt => num_any(v, &|x| x < n),
                    Cmp::Lte => num_any(v, &|x| x <= n),
                }
            }
            Matcher::Exists(expect) => is_null(v) != *expect,
            Matcher::Null => is_null(v),
            Matcher::Bool(b) => bool_match(v, *b),
            Matcher::FieldRef { field, op, ci } => {
                let Some(r) = doc.get(field) else { return false };
                match op {
                    StrOp::Exact => {
                        if *ci {
                            match (as_str(v), as_str(&r)) {
                                (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
                                _ => same(v, &r),
                            }
                        } else {
                            same(v, &r)
                        }
                    }
                    _ => {
                        let Some(needle) = as_str(&r) else { return false };
                        let needle = if *ci { needle.to_lowercase() } else { needle.into_owned() };
                        str_any(v, &|s| {
                            if *ci {
                                str_match(&s.to_lowercase(), *op, &needle, false)
                            } else {
                                str_match(s, *op, &needle, false)
                            }
                        })
                    }
                }
            }
            Matcher::Expand { template, ci } => {
                let mut expanded = String::new();
                for p in template {
                    match p {
                        ExpandPart::Literal(s) => expanded.push_str(s),
                        ExpandPart::Placeholder(f) => {
                            if let Some(x) = doc.get(f)
                                && let Some(s) = as_str(&x)
                            {
                                expanded.push_str(&s);
                            }
                        }
                    }
                }
                if *ci {
                    let e = expanded.to_lowercase();
                    str_any(v, &|s| s.to_lowercase() == e)
                } else {
                    str_any(v, &|s| s == expanded)
                }
            }
            Matcher::Set(set) => str_any(v, &|s| set.matches_str(s)),
            Matcher::Not(m) => !m.matches(v, doc),
            Matcher::Any(ms) => ms.iter().any(|m| m.matches(v, doc)),
            Matcher::All(ms) => ms.iter().all(|m| m.matches(v, doc)),
        }
    }

    /// The matcher applied to one string of a keyword search (only string matchers apply).
    fn matches_text(&self, s: &str) -> bool {
        match self {
            Matcher::Str { op, needle, ci } => str_match(s, *op, needle, *ci),
            Matcher::Regex { re, .. } => re.is_match(s),
            Matcher::Set(set) => set.matches_str(s),
            Matcher::Not(m) => !m.matches_text(s),
            Matcher::Any(ms) => ms.iter().any(|m| m.matches_text(s)),
            Matcher::All(ms) => ms.iter().all(|m| m.matches_text(s)),
            _ => false,
        }
    }

    fn matches_keyword(&self, doc: &Doc<'_>) -> bool {
        doc.any_string(&|s| self.matches_text(s))
    }
}

pub fn eval_item(item: &Item, doc: &Doc<'_>) -> bool {
    if let Some(expect) = item.exists {
        return match &item.field {
            Some(f) => doc.get_item(f, item.slot).is_some_and(|v| !is_null(&v)) == expect,
            None => !expect,
        };
    }
    match &item.field {
        Some(f) => match doc.get_item(f, item.slot) {
            Some(v) => item.matcher.matches(&v, doc),
            None => matches!(item.matcher, Matcher::Null),
        },
        None => item.matcher.matches_keyword(doc),
    }
}

pub fn eval_det(d: &Det, doc: &Doc<'_>) -> bool {
    match d {
        Det::AllOf(items) => items.iter().all(|i| eval_item(i, doc)),
        Det::AnyOf(ds) => ds.iter().any(|d| eval_det(d, doc)),
        Det::Keywords(m) => m.matches_keyword(doc),
    }
}

pub fn eval_cond(c: &Cond, dets: &[Det], doc: &Doc<'_>) -> bool {
    match c {
        Cond::Det(i) => dets.get(*i).is_some_and(|d| eval_det(d, doc)),
        Cond::And(cs) => cs.iter().all(|c| eval_cond(c, dets, doc)),
        Cond::Or(cs) => cs.iter().any(|c| eval_cond(c, dets, doc)),
        Cond::Not(c) => !eval_cond(c, dets, doc),
        Cond::Select { quantifier, dets: sel } => {
            let hit = |i: &usize| dets.get(*i).is_some_and(|d| eval_det(d, doc));
            match quantifier {
                Quantifier::Any => sel.iter().any(hit),
                Quantifier::All => sel.iter().all(hit),
                Quantifier::Count(0) => true,
                Quantifier::Count(n) => {
                    let mut k = 0u64;
                    sel.iter().any(|i| {
                        if hit(i) {
                            k += 1;
                        }
                        k >= *n
                    })
                }
            }
        }
        Cond::Filtered { rule, filter } => eval_cond(rule, dets, doc) && eval_logic(filter, doc),
    }
}

/// Whether any condition of `logic` holds.
pub fn eval_logic(logic: &Logic, doc: &Doc<'_>) -> bool {
    logic.conditions.iter().any(|c| eval_cond(c, &logic.dets, doc))
}

/// The (field, value) pairs that made the positive parts of a matching condition true.
pub fn matched_fields(logic: &Logic, doc: &Doc<'_>, out: &mut Vec<(String, Value)>) {
    fn det(d: &Det, doc: &Doc<'_>, out: &mut Vec<(String, Value)>) {
        match d {
            Det::AllOf(items) => {
                for i in items {
                    if let Some(f) = &i.field
                        && let Some(v) = doc.get_item(f, i.slot)
                        && eval_item(i, doc)
                    {
                        out.push((f.to_string(), to_json(&v)));
                    }
                }
            }
            Det::AnyOf(ds) => {
                for d in ds {
                    if eval_det(d, doc) {
                        det(d, doc, out);
                    }
                }
            }
            Det::Keywords(_) => {}
        }
    }
    fn cond(c: &Cond, dets: &[Det], doc: &Doc<'_>, out: &mut Vec<(String, Value)>) {
        match c {
            Cond::Det(i) => {
                if let Some(d) = dets.get(*i)
                    && eval_det(d, doc)
                {
                    det(d, doc, out);
                }
            }
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| cond(c, dets, doc, out)),
            Cond::Select { dets: sel, .. } => {
                sel.iter().for_each(|i| cond(&Cond::Det(*i), dets, doc, out));
            }
            Cond::Filtered { rule, .. } => cond(rule, dets, doc, out),
            Cond::Not(_) => {}
        }
    }
    if let Some(c) = logic.conditions.iter().find(|c| eval_cond(c, &logic.dets, doc)) {
        cond(c, &logic.dets, doc, out);
    }
}

fn to_json(v: &V<'_>) -> Value {
    match v {
        V::S(s) => Value::String((*s).to_string()),
        V::J(j) => (*j).clone(),
        V::Many(vs) => Value::Array(vs.iter().map(to_json).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_casing_by_ascii_runs_and_from_the_cache_equals_str_to_lowercase() {
        let long = format!("{}ÉCOLE{}", "C:\\Windows\\System32\\".repeat(40), "Write-Host 'Xin CHÀO' ".repeat(30));
        let texts = [
            "",
            "ASCII Only",
            "Đăng NHẬP thất bại",
            "ΟΔΟΣ ΟΔΟΣ.",
            "ὈΔΥΣΣΕΎΣ",
            "İstanbul KELVIN \u{212a} ſ ǅ",
            "emoji 🦀 MIXED",
            long.as_str(),
        ];
        let mut out = String::from("stale");
        for t in texts {
            lower_into(t, &mut out);
            assert_eq!(out, t.to_lowercase(), "{t:?}");
        }
        let too_long = format!("{}ÀB", "X".repeat(LOWER_KEPT_LEN));
        assert_eq!(
            with_lower(&too_long, str::to_string),
            too_long.to_lowercase(),
            "a value longer than the cache keeps"
        );
        // Values of the same length, more of them than the cache keeps, each met twice.
        let same_len = ["ABCD", "abcd", "AbCd", "WXYZ", "wxyz", "ÀBCD", "ABCD"];
        for t in same_len.iter().chain(same_len.iter().rev()).chain(texts.iter()) {
            assert_eq!(with_lower(t, str::to_string), t.to_lowercase(), "{t:?}");
            assert_eq!(with_lower(t, |l| with_lower(l, str::to_string)), t.to_lowercase(), "nested, {t:?}");
        }
    }

    /// The needles of a set one by one, as `Matcher::Any` of `Matcher::Str` would.
    fn naive(needles: &[(StrOp, Box<str>)], ci: bool, s: &str) -> bool {
        let folded = if ci { s.to_lowercase() } else { s.to_string() };
        needles.iter().any(|(op, n)| str_match(&folded, *op, n, ci))
    }

    #[test]
    fn a_set_finds_what_its_needles_find_one_by_one_at_either_end_and_inside() {
        let long = "x".repeat(70) + "\\evil.exe";
        // The longest needle of the hash set (63 bytes) and the shortest of the list (64).
        let (z63, z64) = ("z".repeat(63), "z".repeat(64));
        let words = [
            "a",
            "ab",
            "\\cmd.exe",
            "exe",
            "Time",
            "next",
            "é",
            "ǅ",
            "\u{1F600}",
            "-",
            &long,
            "rundll32",
            "A\\B",
            &z63,
            &z64,
        ];
        let ops = [StrOp::Contains, StrOp::StartsWith, StrOp::EndsWith, StrOp::Exact];
        let hays = [
            "".to_string(),
            "a".to_string(),
            "AB".to_string(),
            "C:\\Windows\\System32\\CMD.EXE".to_string(),
            "rundll32.exe shell32.dll,Control_RunDLL next".to_string(),
            "Rundll32 x TIME".to_string(),
            "café".to_string(),
            "CAFÉ".to_string(),
            "ǄǅǆEXE".to_string(),
            "smile \u{1F600}".to_string(),
            "-".to_string(),
            long.to_uppercase(),
            format!("{}\\EVIL.EXE tail", "X".repeat(70)),
            "y".repeat(63),
            "y".repeat(64),
            "Z".repeat(63),
            "Z".repeat(64),
            "z".repeat(65),
            format!("a{}", "z".repeat(63)),
        ];
        // Every operator with every word, alone and mixed, both case modes.
        for ci in [false, true] {
            let fold = |w: &str| if ci { w.to_lowercase() } else { w.to_string() };
            let mut sets: Vec<Vec<(StrOp, Box<str>)>> = Vec::new();
            for op in ops {
                sets.push(words.iter().map(|w| (op, fold(w).into_boxed_str())).collect());
                for w in words {
                    sets.push(vec![(op, fold(w).into_boxed_str())]);
                }
            }
            sets.push(words.iter().zip(ops.iter().cycle()).map(|(w, op)| (*op, fold(w).into_boxed_str())).collect());
            for needles in sets {
                let set = StrSet::new(needles.clone(), ci);
                for h in &hays {
                    assert_eq!(set.matches_str(h), naive(&needles, ci, h), "ci {ci}, {needles:?} in {h:?}");
                }
            }
        }
    }
}
