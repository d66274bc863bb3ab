//! Suricata `pcre` values to `regex::bytes::Regex`.
//!
//! Suricata runs PCRE2 in byte (non-UTF) mode. The `regex` crate with Unicode disabled has the
//! same byte semantics for everything a finite automaton can do, so the pattern is translated
//! where the two syntaxes differ and rejected where PCRE needs backtracking:
//!
//! - translated: `\h \H \v \V \R \N \e \cX \0oo` (octal), `\xH`/`\x{HH}`, `\Q...\E`, `\<`/`\>`
//!   (literals in PCRE, word boundaries in `regex`), `(?#...)` comments, `(?'name'...)`, a `{`
//!   that does not start a quantifier (literal in PCRE), `[` `&` `~` inside classes (set
//!   operations in `regex`), `\b` in a class (backspace), and `$`/`\Z` without the `m`/`E`
//!   flags (PCRE's "end, or before a final newline" is `(?:\n?\z)`).
//! - rejected: backreferences (`\1`, `\g{..}`, `\k<..>`, `(?P=..)`), lookahead and lookbehind,
//!   atomic groups, possessive quantifiers, recursion and subroutine calls, conditionals,
//!   branch reset, backtracking verbs `(*...)`, `\K`, `\G`, `\C`, `\X`, Unicode properties.

use regex::bytes::{Regex, RegexBuilder};
use std::sync::Arc;

/// PCRE flags that change the regex itself (the buffer and `R` flags are handled by the caller).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PcreFlags {
    pub caseless: bool,
    pub dotall: bool,
    pub multiline: bool,
    pub extended: bool,
    pub anchored: bool,
    pub dollar_endonly: bool,
    pub ungreedy: bool,
}

/// A compiled `pcre`: the `regex` crate's automaton, or for patterns that need backtracking
/// (backreferences, lookaround, atomic groups, possessive quantifiers) a backtracking engine
/// (`fancy-regex`) run over the buffer decoded as Latin-1 (one character per byte, so the
/// pattern's `\xHH` escapes mean the same bytes). A clone shares the pattern and the regex
/// built on first use (see [`PcreCache`]).
#[derive(Clone, Debug)]
pub enum PcreRegex {
    Automaton(Arc<Automaton>),
    Backtracking(Arc<Backtracking>),
}

/// A pattern the `regex` automaton runs: translated and parsed (validated: syntax errors are
/// load errors) at load, built on first use. Building the meta regex of every ET Open `pcre`
/// at load took most of the start-up time and well over 100 MiB, for patterns most of which
/// never run (their rules' fast patterns never hit), as Suricata's prefilter spares them too.
#[derive(Clone, Debug)]
pub struct Automaton {
    /// The translated pattern.
    pattern: String,
    flags: PcreFlags,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl Automaton {
    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match build_automaton(&self.pattern, self.flags) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = %self.pattern, error = %e, "pcre could not be compiled: never matches");
                    metrics::counter!("sensor_detect_pcre_compile_failed_total").increment(1);
                    None
                }
            })
            .as_ref()
    }
}

/// A fallback pattern: parsed (validated) at load, compiled on first use (compiling the
/// Unicode-mode sub-automata of a few hundred ET Open patterns takes seconds and hundreds of
/// MiB; most of them never run, their rules' fast patterns never hit).
#[derive(Clone, Debug)]
pub struct Backtracking {
    pattern: String,
    compiled: std::sync::OnceLock<Option<fancy_regex::Regex>>,
}

impl Backtracking {
    fn regex(&self) -> Option<&fancy_regex::Regex> {
        self.compiled
            .get_or_init(|| match fancy_regex::RegexBuilder::new(&self.pattern).backtrack_limit(BACKTRACK_LIMIT).build() {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = %self.pattern, error = %e, "pcre fallback could not be compiled: never matches");
                    metrics::counter!("sensor_detect_pcre_fallback_failed_total").increment(1);
                    None
                }
            })
            .as_ref()
    }
}

/// Backtracking steps a fallback pattern may take on one buffer before it counts as no match.
const BACKTRACK_LIMIT: usize = 100_000;

impl PcreRegex {
    /// The first match starting at or after `start`, as a byte range of `hay`.
    pub fn find_at(&self, hay: &[u8], start: usize) -> Option<std::ops::Range<usize>> {
        match self {
            PcreRegex::Automaton(a) => a.regex()?.find_at(hay, start).map(|m| m.range()),
            PcreRegex::Backtracking(b) => {
                let r = b.regex()?;
                let text: String = hay.iter().map(|&b| b as char).collect();
                // byte offset in `text` of each character (and of the end)
                let mut at = Vec::with_capacity(hay.len() + 1);
                let mut off = 0;
                for &b in hay {
                    at.push(off);
                    off += if b < 0x80 { 1 } else { 2 };
                }
                at.push(off);
                let pos = *at.get(start)?;
                match r.find_from_pos(&text, pos) {
                    Ok(Some(m)) => {
                        let s = at.binary_search(&m.start()).ok()?;
                        let e = at.binary_search(&m.end()).ok()?;
                        Some(s..e)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(error = %e, "pcre fallback gave up on a buffer");
                        metrics::counter!("sensor_detect_pcre_backtrack_limit_total").increment(1);
                        None
                    }
                }
            }
        }
    }
}

/// Compiles a PCRE pattern (the text between the slashes) with its flags: to the automaton
/// when it can run it, else to the backtracking fallback, else an error with the reason.
pub fn compile(pattern: &str, flags: PcreFlags) -> Result<PcreRegex, String> {
    match validate_automaton(pattern, flags) {
        Ok((translated, size)) => {
            let compiled = std::sync::OnceLock::new();
            if size > EAGER_BUILD_ESTIMATE {
                // Large counted repetitions can exceed the automaton's size limit: build now,
                // so such a rule is rejected at load instead of never matching.
                let _ = compiled.set(Some(build_automaton(&translated, flags)?));
            }
            Ok(PcreRegex::Automaton(Arc::new(Automaton { pattern: translated, flags, compiled })))
        }
        Err(e) if e.contains("needs backtracking") => {
            let mut translated = translate_mode(pattern, flags, true)
                .map_err(|e2| if e2.contains("needs backtracking") { e2 } else { e.clone() })?;
            if flags.anchored {
                translated = format!(r"\A(?:{translated})");
            }
            let mut prefix = String::from("(?");
            for (on, f) in [(flags.caseless, 'i'), (flags.dotall, 's'), (flags.multiline, 'm'), (flags.extended, 'x')] {
                if on {
                    prefix.push(f);
                }
            }
            let full = if prefix.len() > 2 { format!("{prefix}){translated}") } else { translated };
            if flags.ungreedy {
                return Err(format!("{e}; the backtracking fallback has no ungreedy (G) mode"));
            }
            fancy_regex::Expr::parse_tree(&full)
                .map_err(|f| format!("{e}; the backtracking fallback rejected it too: {f}"))?;
            Ok(PcreRegex::Backtracking(Arc::new(Backtracking { pattern: full, compiled: std::sync::OnceLock::new() })))
        }
        Err(e) => Err(e),
    }
}

/// The outcome of [`compile`] by pattern and flags, for the rules of one detector: ET Open
/// repeats about half of its `pcre` values (2,570 values, 1,315 distinct), and translating and
/// parsing a pattern was the largest part of compiling a rule. The rules sharing a pattern
/// share its regex too, built once on first use.
#[derive(Debug, Default)]
pub(crate) struct PcreCache {
    by_pattern: rustc_hash::FxHashMap<Box<str>, Vec<(PcreFlags, Compiled)>>,
}

/// The outcome of [`compile`].
type Compiled = Result<PcreRegex, String>;

impl PcreCache {
    /// The outcome of an earlier [`compile`] of `pattern` with `flags`.
    pub(crate) fn get(&self, pattern: &str, flags: PcreFlags) -> Option<Compiled> {
        self.by_pattern.get(pattern)?.iter().find(|(f, _)| *f == flags).map(|(_, r)| r.clone())
    }

    /// Records the outcome of [`compile`] for `pattern` and `flags` (the first one stays).
    pub(crate) fn insert(&mut self, pattern: &str, flags: PcreFlags, r: &Compiled) {
        let v = self.by_pattern.entry(Box::from(pattern)).or_default();
        if !v.iter().any(|(f, _)| *f == flags) {
            v.push((flags, r.clone()));
        }
    }
}

/// Compiles to the `regex` crate's automaton, or says why it cannot.
pub fn compile_automaton(pattern: &str, flags: PcreFlags) -> Result<Regex, String> {
    build_automaton(&translate_anchored(pattern, flags)?, flags)
}

/// The pattern in `regex` syntax, `A` (anchored) applied.
fn translate_anchored(pattern: &str, flags: PcreFlags) -> Result<String, String> {
    let translated = translate(pattern, flags)?;
    Ok(if flags.anchored { format!(r"\A(?:{translated})") } else { translated })
}

/// The last line of a `regex` error message, as the rejection reason.
fn engine_rejection(msg: &str) -> String {
    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    format!("the regex engine rejected the pattern: {}", last.trim_start_matches("error: "))
}

/// Above this estimate (see [`size_estimate`]) a pattern's automaton is built at load.
const EAGER_BUILD_ESTIMATE: u64 = 4096;

/// A rough count of the automaton states a pattern needs: literals count their bytes, counted
/// repetitions multiply their operand. Cheap, and only used to decide when to build at load.
fn size_estimate(h: &regex_syntax::hir::Hir) -> u64 {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(_) => 1,
        HirKind::Literal(l) => l.0.len() as u64,
        HirKind::Repetition(r) => {
            let n = u64::from(r.max.unwrap_or(r.min).max(r.min)).max(1);
            size_estimate(&r.sub).saturating_mul(n)
        }
        HirKind::Capture(c) => size_estimate(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => {
            v.iter().map(size_estimate).fold(0u64, |a, b| a.saturating_add(b))
        }
    }
}

/// Translates and parses a pattern as [`compile_automaton`] would compile it, without building
/// the automaton: the translated pattern and its [`size_estimate`], or the reason it is rejected.
fn validate_automaton(pattern: &str, flags: PcreFlags) -> Result<(String, u64), String> {
    let translated = translate_anchored(pattern, flags)?;
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(flags.caseless)
        .dot_matches_new_line(flags.dotall)
        .multi_line(flags.multiline)
        .ignore_whitespace(flags.extended)
        .swap_greed(flags.ungreedy)
        .build()
        .parse(&translated)
        .map_err(|e| engine_rejection(&e.to_string()))?;
    Ok((translated, size_estimate(&hir)))
}

/// Builds the automaton of a translated pattern.
fn build_automaton(translated: &str, flags: PcreFlags) -> Result<Regex, String> {
    RegexBuilder::new(translated)
        .unicode(false)
        .case_insensitive(flags.caseless)
        .dot_matches_new_line(flags.dotall)
        .multi_line(flags.multiline)
        .ignore_whitespace(flags.extended)
        .swap_greed(flags.ungreedy)
        .size_limit(32 << 20)
        .build()
        .map_err(|e| engine_rejection(&e.to_string()))
}

fn unsupported(what: &str) -> String {
    format!("{what} not supported by the regex engine (needs backtracking)")
}

fn hex_byte(out: &mut String, v: u32) -> Result<(), String> {
    if v > 0xFF {
        return Err(format!("character value {v:#x} above 0xff in a byte pattern"));
    }
    out.push_str(&format!(r"\x{v:02X}"));
    Ok(())
}

/// Rewrites a PCRE pattern into `regex` syntax (see the module documentation).
pub fn translate(pat: &str, flags: PcreFlags) -> Result<String, String> {
    translate_mode(pat, flags, false)
}

/// Like [`translate`]; with `backtrack` the constructs the backtracking fallback engine runs
/// (backreferences, lookaround, atomic groups, possessive quantifiers) are kept.
fn translate_mode(pat: &str, flags: PcreFlags, backtrack: bool) -> Result<String, String> {
    let c: Vec<char> = pat.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(pat.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false; // right after '[' or '[^': a ']' here is a literal
    // backtracking mode: a negated class is written as an intersection with Latin-1
    // (`[\x00-\xFF&&[^...]]`) so the Unicode-mode engine does not build UTF-8 automata for
    // the whole Unicode range
    let mut class_wrapped = false;
    let mut after_quantifier = false;
    let end_dollar = r"(?:\n?\z)";
    while i < n {
        let ch = c[i];
        if in_class {
            let first = class_start;
            class_start = false;
            match ch {
                '\\' => {
                    if backtrack && let Some(set) = c.get(i + 1).and_then(|&e| ascii_class(e, true)) {
                        out.push_str(set);
                        i += 2;
                        continue;
                    }
                    i = class_escape(&c, i, &mut out)?;
                    continue;
                }
                ']' if !first => {
                    in_class = false;
                    out.push(']');
                    if class_wrapped {
                        out.push(']');
                        class_wrapped = false;
                    }
                }
                '[' => {
                    // POSIX class [:name:] is the same in both; any other '[' is a literal
                    if c.get(i + 1) == Some(&':')
                        && let Some(end) = (i + 2..n.saturating_sub(1)).find(|&j| c[j] == ':' && c[j + 1] == ']')
                    {
                        out.extend(&c[i..=end + 1]);
                        i = end + 2;
                        continue;
                    }
                    out.push_str(r"\[");
                }
                '&' | '~' => {
                    out.push('\\');
                    out.push(ch);
                }
                '-' if c.get(i + 1) == Some(&'-') => out.push_str(r"\-"),
                _ => out.push(ch),
            }
            i += 1;
            continue;
        }
        let was_quantifier = after_quantifier;
        after_quantifier = false;
        match ch {
            '\\' => {
                i = escape(&c, i, &mut out, backtrack)?;
                continue;
            }
            '[' => {
                in_class = true;
                class_start = true;
                if c.get(i + 1) == Some(&'^') {
                    if backtrack {
                        out.push_str(r"[\x00-\xFF&&[^");
                        class_wrapped = true;
                    } else {
                        out.push_str("[^");
                    }
                    i += 1;
                } else {
                    out.push('[');
                }
            }
            '(' => {
                if c.get(i + 1) == Some(&'*') {
                    return Err(unsupported("backtracking control verbs '(*...)'"));
                }
                if c.get(i + 1) == Some(&'?') {
                    let rest: String = c[i + 2..n.min(i + 6)].iter().collect();
                    let r = rest.as_str();
                    if r.starts_with('=') || r.starts_with('!') || r.starts_with("<=") || r.starts_with("<!") {
                        if !backtrack {
                            return Err(unsupported("lookaround assertions"));
                        }
                        let len = if r.starts_with('<') { 4 } else { 3 };
                        out.extend(&c[i..i + len]);
                        i += len;
                        continue;
                    }
                    if r.starts_with('>') {
                        if !backtrack {
                            return Err(unsupported("atomic groups '(?>...)'"));
                        }
                        out.push_str("(?>");
                        i += 3;
                        continue;
                    }
                    if r.starts_with('|') {
                        return Err(unsupported("branch reset groups '(?|...)'"));
                    }
                    if r.starts_with('(') {
                        return Err(unsupported("conditional groups '(?(...)...)'"));
                    }
                    if r.starts_with("P=") {
                        if !backtrack {
                            return Err(unsupported("backreferences"));
                        }
                        let end = (i + 4..n).find(|&j| c[j] == ')').ok_or("unterminated (?P=name)")?;
                        out.push_str(r"\k<");
                        out.extend(&c[i + 4..end]);
                        out.push('>');
                        i = end + 1;
                        continue;
                    }
                    if r.starts_with("P>")
                        || r.starts_with('&')
                        || r.starts_with('R')
                        || r.starts_with(|x: char| {
                            x.is_ascii_digit()
                                || x == '+'
                                || (x == '-' && r[1..].starts_with(|y: char| y.is_ascii_digit()))
                        })
                    {
                        return Err(unsupported("recursion and subroutine calls"));
                    }
                    if r.starts_with('C') {
                        return Err(unsupported("callouts '(?C...)'"));
                    }
                    if r.starts_with('#') {
                        // comment: dropped
                        match (i + 3..n).find(|&j| c[j] == ')') {
                            Some(end) => {
                                i = end + 1;
                                continue;
                            }
                            None => return Err("unterminated '(?#' comment".to_string()),
                        }
                    }
                    if r.starts_with('\'') {
                        // (?'name'...) -> (?P<name>...)
                        match (i + 3..n).find(|&j| c[j] == '\'') {
                            Some(end) => {
                                out.push_str("(?P<");
                                out.extend(&c[i + 3..end]);
                                out.push('>');
                                i = end + 1;
                                continue;
                            }
                            None => return Err("unterminated group name".to_string()),
                        }
                    }
                    if r.starts_with("P<") || (r.starts_with('<') && !r.starts_with("<=") && !r.starts_with("<!")) {
                        out.push_str("(?");
                        i += 2;
                        continue;
                    }
                    // inline flags (?imsx-imsx) or (?imsx-imsx:...)
                    let mut j = i + 2;
                    while j < n && c[j] != ')' && c[j] != ':' {
                        match c[j] {
                            'i' | 'm' | 's' | 'x' | 'U' | '-' => {}
                            other => {
                                return Err(format!("inline option '{other}' in '(?...)' not supported"));
                            }
                        }
                        j += 1;
                    }
                }
                out.push('(');
            }
            '{' => {
                // a quantifier only if {n}, {n,} or {n,m}; PCRE takes anything else literally
                let mut j = i + 1;
                let digits = |j: &mut usize| {
                    let s = *j;
                    while *j < n && c[*j].is_ascii_digit() {
                        *j += 1;
                    }
                    *j > s
                };
                let mut quant = digits(&mut j);
                if quant && j < n && c[j] == ',' {
                    j += 1;
                    digits(&mut j);
                }
                quant = quant && j < n && c[j] == '}';
                if quant {
                    out.extend(&c[i..=j]);
                    i = j + 1;
                    after_quantifier = true;
                    if c.get(i) == Some(&'+') {
                        if !backtrack {
                            return Err(unsupported("possessive quantifiers"));
                        }
                        out.push('+');
                        i += 1;
                        after_quantifier = false;
                    }
                    continue;
                }
                out.push_str(r"\{");
            }
            '}' => out.push_str(r"\}"),
            '*' | '+' | '?' => {
                if ch == '+' && was_quantifier {
                    if !backtrack {
                        return Err(unsupported("possessive quantifiers"));
                    }
                    out.push('+');
                    i += 1;
                    continue;
                }
                out.push(ch);
                // a '?' after a quantifier makes it lazy; '+' after it would be possessive
                after_quantifier = !(ch == '?' && was_quantifier);
            }
            '$' if !flags.multiline && !flags.dollar_endonly => out.push_str(end_dollar),
            '.' if backtrack => out.push_str(if flags.dotall { r"[\x00-\xFF]" } else { r"[\x00-\x09\x0B-\xFF]" }),
            _ => out.push(ch),
        }
        i += 1;
    }
    if in_class {
        return Err("unterminated character class".to_string());
    }
    Ok(out)
}

/// Reads up to `max` digits of `radix` at `i`; returns (value, next index).
fn digits(c: &[char], mut i: usize, radix: u32, max: usize) -> (u32, usize) {
    let mut v = 0u32;
    let start = i;
    while i < c.len() && i - start < max {
        match c[i].to_digit(radix) {
            Some(d) => v = v * radix + d,
            None => break,
        }
        i += 1;
    }
    (v, i)
}

/// `\x..` at `i` (pointing at the 'x'): returns (value, next index).
fn hex_escape(c: &[char], i: usize) -> Result<(u32, usize), String> {
    if c.get(i + 1) == Some(&'{') {
        let end = (i + 2..c.len()).find(|&j| c[j] == '}').ok_or("unterminated \\x{...}")?;
        let s: String = c[i + 2..end].iter().collect();
        let v = u32::from_str_radix(s.trim(), 16).map_err(|_| format!("invalid \\x{{{s}}}"))?;
        return Ok((v, end + 1));
    }
    Ok(digits(c, i + 1, 16, 2))
}

fn push_literal(out: &mut String, ch: char) {
    if ch.is_ascii() && !ch.is_ascii_alphanumeric() && ch != '<' && ch != '>' && !ch.is_ascii_whitespace() {
        out.push('\\');
        out.push(ch);
    } else if ch == ' ' {
        out.push_str(r"\x20");
    } else if ch.is_ascii_whitespace() {
        out.push_str(&format!(r"\x{:02X}", ch as u32));
    } else {
        out.push(ch);
    }
}

/// An escape outside a class; `i` points at the backslash. Returns the next index.
fn escape(c: &[char], i: usize, out: &mut String, backtrack: bool) -> Result<usize, String> {
    let Some(&e) = c.get(i + 1) else {
        return Err("pattern ends with a backslash".to_string());
    };
    let next = i + 2;
    match e {
        'd' | 'D' | 'w' | 'W' | 's' | 'S' if backtrack => {
            // PCRE's byte mode: ASCII classes (the fallback runs on Latin-1 text)
            if let Some(set) = ascii_class(e, false) {
                out.push_str(set);
            }
            return Ok(next);
        }
        '1'..='9' if backtrack => {
            let (v, j) = digits(c, i + 1, 10, 2);
            out.push_str(&format!(r"\{v}"));
            return Ok(j);
        }
        'g' | 'k' if backtrack => {
            // \gN, \g{N}, \g{-N} (relative: not supported), \k<name>, \k{name}, \k'name'
            let (open, close) = match c.get(i + 2) {
                Some('{') => ('{', '}'),
                Some('<') => ('<', '>'),
                Some('\'') => ('\'', '\''),
                Some(d) if d.is_ascii_digit() && e == 'g' => {
                    let (v, j) = digits(c, i + 2, 10, 2);
                    out.push_str(&format!(r"\{v}"));
                    return Ok(j);
                }
                _ => return Err(format!("invalid \\{e} backreference")),
            };
            let _ = open;
            let end = (i + 3..c.len()).find(|&j| c[j] == close).ok_or("unterminated backreference name")?;
            let name: String = c[i + 3..end].iter().collect();
            if name.starts_with('-') || name.starts_with('+') {
                return Err(unsupported("relative backreferences"));
            }
            if name.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!(r"\{name}"));
            } else {
                out.push_str(&format!(r"\k<{name}>"));
            }
            return Ok(end + 1);
        }
        '1'..='9' => return Err(unsupported("backreferences")),
        'g' | 'k' => return Err(unsupported("backreferences")),
        '0' => {
            let (v, j) = digits(c, i + 1, 8, 3);
            hex_byte(out, v)?;
            return Ok(j);
        }
        'o' => return Err("\\o{...} octal escapes not supported".to_string()),
        'x' => {
            let (v, j) = hex_escape(c, i + 1)?;
            hex_byte(out, v)?;
            return Ok(j);
        }
        'c' => {
            let x = c.get(i + 2).ok_or("\\c at end of pattern")?;
            hex_byte(out, (x.to_ascii_uppercase() as u32) ^ 0x40)?;
            return Ok(i + 3);
        }
        'Q' => {
            let mut j = next;
            while j < c.len() && !(c[j] == '\\' && c.get(j + 1) == Some(&'E')) {
                push_literal(out, c[j]);
                j += 1;
            }
            return Ok(if j < c.len() { j + 2 } else { j });
        }
        'E' => {}
        'e' => out.push_str(r"\x1B"),
        'a' => out.push_str(r"\x07"),
        'h' => out.push_str(r"[\x09\x20\xA0]"),
        'H' if backtrack => out.push_str(r"[\x00-\xFF&&[^\x09\x20\xA0]]"),
        'H' => out.push_str(r"[^\x09\x20\xA0]"),
        'v' => out.push_str(r"[\x0A-\x0D\x85]"),
        'V' if backtrack => out.push_str(r"[\x00-\xFF&&[^\x0A-\x0D\x85]]"),
        'V' => out.push_str(r"[^\x0A-\x0D\x85]"),
        'R' => out.push_str(r"(?:\x0D\x0A|[\x0A-\x0D\x85])"),
        'N' if backtrack => out.push_str(r"[\x00-\x09\x0B-\xFF]"),
        'N' => out.push_str(r"[^\n]"),
        'Z' => out.push_str(r"(?:\n?\z)"),
        'z' | 'A' | 'b' | 'B' | 'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 'r' | 't' | 'f' => {
            out.push('\\');
            out.push(e);
        }
        'K' => return Err(unsupported("\\K (match start reset)")),
        'G' => return Err(unsupported("\\G (previous match end)")),
        'C' | 'X' => return Err(format!("\\{e} not supported")),
        'p' | 'P' => {
            return Err("Unicode properties (\\p, \\P) not supported in byte mode".to_string());
        }
        '<' | '>' => out.push(e),
        _ if e.is_ascii_alphanumeric() => return Err(format!("unknown escape '\\{e}'")),
        _ => push_literal(out, e),
    }
    Ok(next)
}

/// PCRE's byte-mode meaning of `\d \w \s` (and their negations outside a class) for the
/// Unicode-aware fallback engine; `None` when it has no expansion there. (`\b` stays
/// Unicode-aware there: Latin-1 letters above 0x7f count as word characters.)
fn ascii_class(e: char, in_class: bool) -> Option<&'static str> {
    Some(match (e, in_class) {
        ('d', false) => "[0-9]",
        ('D', false) => r"[\x00-\xFF&&[^0-9]]",
        ('w', false) => "[0-9A-Za-z_]",
        ('W', false) => r"[\x00-\xFF&&[^0-9A-Za-z_]]",
        ('s', false) => r"[\t\n\x0B\x0C\r ]",
        ('S', false) => r"[\x00-\xFF&&[^\t\n\x0B\x0C\r ]]",
        ('d', true) => "0-9",
        ('w', true) => "0-9A-Za-z_",
        ('s', true) => r"\t\n\x0B\x0C\r ",
        _ => return None,
    })
}

/// An escape inside a class; `i` points at the backslash. Returns the next index.
fn class_escape(c: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let Some(&e) = c.get(i + 1) else {
        return Err("pattern ends with a backslash".to_string());
    };
    let next = i + 2;
    match e {
        '0'..='7' => {
            let (v, j) = digits(c, i + 1, 8, 3);
            hex_byte(out, v)?;
            return Ok(j);
        }
        'x' => {
            let (v, j) = hex_escape(c, i + 1)?;
            hex_byte(out, v)?;
            return Ok(j);
        }
        'c' => {
            let x = c.get(i + 2).ok_or("\\c at end of pattern")?;
            hex_byte(out, (x.to_ascii_uppercase() as u32) ^ 0x40)?;
            return Ok(i + 3);
        }
        'b' => out.push_str(r"\x08"),
        'e' => out.push_str(r"\x1B"),
        'a' => out.push_str(r"\x07"),
        'h' => out.push_str(r"\x09\x20\xA0"),
        'v' => out.push_str(r"\x0A-\x0D\x85"),
        'E' => {}
        'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 'r' | 't' | 'f' => {
            out.push('\\');
            out.push(e);
        }
        'p' | 'P' => {
            return Err("Unicode properties (\\p, \\P) not supported in byte mode".to_string());
        }
        _ if e.is_ascii_alphanumeric() => {
            return Err(format!("escape '\\{e}' not supported in a character class"));
        }
        _ => push_literal(out, e),
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, flags: PcreFlags, hay: &[u8]) -> bool {
        compile(pat, flags).unwrap().find_at(hay, 0).is_some()
    }

    #[test]
    fn cached_patterns_share_the_regex_built_on_first_use() {
        let flags = PcreFlags { caseless: true, ..PcreFlags::default() };
        let first = compile("ab+c", flags);
        let mut cache = PcreCache::default();
        cache.insert("ab+c", flags, &first);
        cache.insert("ab+c", flags, &compile("ab+c", flags));
        assert_eq!(cache.by_pattern.get("ab+c").map(Vec::len), Some(1), "one entry per pattern and flags");
        assert!(cache.get("ab+c", PcreFlags::default()).is_none(), "other flags are another entry");
        assert!(cache.get("ab+", flags).is_none());
        let (Ok(PcreRegex::Automaton(a)), Some(Ok(b))) = (first, cache.get("ab+c", flags)) else {
            panic!("an automaton, cached");
        };
        assert!(a.compiled.get().is_none(), "not built at load");
        assert_eq!(b.find_at(b"xABBC", 0), Some(1..5));
        assert!(a.compiled.get().is_some(), "built once, for every rule with the pattern");
        // a rejection is remembered with its reason
        let bad = compile("a(?R)", flags);
        cache.insert("a(?R)", flags, &bad);
        assert_eq!(cache.get("a(?R)", flags).map(|r| r.err()), Some(bad.err()));
        assert!(cache.get("a(?R)", flags).is_some_and(|r| r.is_err()));
    }

    #[test]
    fn translations() {
        let f = PcreFlags::default();
        assert!(m(r"a\<b\>", f, b"a<b>"));
        assert!(m(r"x{", f, b"x{"));
        assert!(m(r"\{foo\}", f, b"{foo}"));
        assert!(m(r"a{2}", f, b"aa") && !m(r"^a{2}$", f, b"a"));
        assert!(m(r"[[]", f, b"["));
        assert!(m(r"[a&&b]", f, b"&"));
        assert!(m(r"[\b]", f, b"\x08"));
        assert!(m(r"\h+x", f, b" \tx"));
        assert!(m(r"a\Q.*\E", f, b"a.*") && !m(r"a\Q.*\E", f, b"abc"));
        assert!(m(r"\x41\x{42}\x43", f, b"ABC"));
        assert!(m(r"a\012b\0c", f, b"a\nb\0c"));
        assert!(m(r"[\101-\103]{3}", f, b"ABC"));
        assert!(m(r"(?#comment)abc", f, b"abc"));
        assert!(m(r"(?'n'abc)", f, b"abc"));
        assert!(m(r"\cA", f, b"\x01"));
        assert!(m(r"[[:digit:]]+", f, b"123"));
        // '$' is "end or before a final newline" unless E or m
        assert!(m(r"abc$", f, b"abc\n"));
        assert!(!m(r"abc$", PcreFlags { dollar_endonly: true, ..f }, b"abc\n"));
        assert!(m(r"^b$", PcreFlags { multiline: true, ..f }, b"a\nb\nc"));
        // byte semantics
        assert!(m(r"\xff\x00", f, b"\xff\x00"));
        assert!(m(r".", f, b"\xfe"));
        assert!(!m(r"a.b", f, b"a\nb") && m(r"a.b", PcreFlags { dotall: true, ..f }, b"a\nb"));
        assert!(m(r"ABC", PcreFlags { caseless: true, ..f }, b"xabcx"));
        assert!(m(r"a b # c", PcreFlags { extended: true, ..f }, b"ab"));
        assert!(!m(r"bc", PcreFlags { anchored: true, ..f }, b"abc"));
        let lazy = compile(r"a.+b", PcreFlags { ungreedy: true, ..f }).unwrap();
        assert_eq!(lazy.find_at(b"a1b2b", 0).unwrap().end, 3);
    }

    #[test]
    fn rejections() {
        let f = PcreFlags::default();
        for (p, want) in [
            (r"(a)\1", "backreferences"),
            (r"(?<n>a)\k<n>", "backreferences"),
            (r"foo(?=bar)", "lookaround"),
            (r"(?<!x)foo", "lookaround"),
            (r"(?>a+)b", "atomic"),
            (r"a++b", "possessive"),
            (r"a{2}+", "possessive"),
            (r"(?R)", "recursion"),
            (r"(?P<q>a)(?P=q)", "backreferences"),
            (r"(*UTF)a", "verbs"),
            (r"\Kfoo", "\\K"),
            (r"\p{L}", "Unicode"),
            (r"[a", "unterminated"),
            (r"(a", "rejected the pattern"),
        ] {
            let e = compile_automaton(p, f).unwrap_err();
            assert!(e.contains(want), "{p}: {e}");
        }
        assert!(compile(r"a*?b+?c??", f).is_ok());
        // an automaton over the size limit is rejected at load, not left to never match
        let big = r"(?:a{10000}){10000}";
        let e = compile(big, f).unwrap_err();
        assert_eq!(e, compile_automaton(big, f).unwrap_err());
        assert!(compile(r"(?:a{10}){10}", f).is_ok());
        // the automaton is built on first use, but what it would reject is rejected at load
        for p in [r"(a", r"a{2,1}", r"[z-a]", r"a)"] {
            let lazy = compile(p, f).unwrap_err();
            assert_eq!(lazy, compile_automaton(p, f).unwrap_err(), "{p}");
        }
        // what the fallback cannot run either is rejected with both reasons
        for (p, want) in [(r"(?R)", "recursion"), (r"(*UTF)a", "verbs"), (r"\Kfoo", "\\K"), (r"[a", "unterminated")] {
            let e = compile(p, f).unwrap_err();
            assert!(e.contains(want), "{p}: {e}");
        }
        assert!(compile(r"(a)\1", PcreFlags { ungreedy: true, ..f }).unwrap_err().contains("ungreedy"));
    }

    #[test]
    fn backtracking_fallback_matches_like_pcre_on_bytes() {
        let f = PcreFlags::default();
        let fb = |p: &str, flags: PcreFlags| {
            let r = compile(p, flags).unwrap();
            assert!(matches!(r, PcreRegex::Backtracking(_)), "{p} should need the fallback");
            r
        };
        let r = fb(r"(a.)\1", f);
        assert_eq!(r.find_at(b"xxa1a1", 0), Some(2..6));
        assert_eq!(r.find_at(b"a1a2", 0), None);
        // offsets are byte offsets even with bytes above 0x7f before the match
        let r = fb(r"(?<=\xff)ab(?!c)", f);
        assert_eq!(r.find_at(b"\xff\xfeab\xffab", 0), Some(5..7));
        assert_eq!(r.find_at(b"\xffabc", 0), None);
        // start position, case-insensitivity, ASCII classes, possessive and atomic forms
        let r = fb(r"(\w)\1", PcreFlags { caseless: true, ..f });
        assert_eq!(r.find_at(b"aA bb", 2), Some(3..5));
        assert!(fb(r"(\w)\1", f).find_at(b"\xe9\xe9", 0).is_none());
        assert_eq!(fb(r"a++b", f).find_at(b"aaab", 0), Some(0..4));
        assert!(fb(r"(?>a+)ab", f).find_at(b"aaab", 0).is_none());
        assert_eq!(fb(r"(?P<q>x)(?P=q)", f).find_at(b"axx", 0), Some(1..3));
        // negated classes and '.' stay within Latin-1 and keep PCRE's meaning
        assert_eq!(fb(r"(a)[^b]\1", f).find_at(b"ab a\xffa", 0), Some(3..6));
        assert_eq!(fb(r"(a).\1", f).find_at(b"a\na axa", 0), Some(2..5));
        assert_eq!(fb(r"(a).\1", PcreFlags { dotall: true, ..f }).find_at(b"a\na", 0), Some(0..3));
        assert_eq!(fb(r"(a)\D\1", f).find_at(b"a1a a-a", 0), Some(2..5));
    }
}
