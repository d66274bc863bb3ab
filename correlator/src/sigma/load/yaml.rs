//! A fast reader for the YAML subset Sigma rule files are written in.
//!
//! It builds the same [`yaml_serde::Value`] tree `yaml_serde` would, several times faster, for
//! what rule files use: block mappings and sequences (also a sequence at its key's indentation
//! and compact `- key: value` items), flow sequences of scalars on one line (`[a, 'b']`),
//! plain, single- and double-quoted scalars (one line; plain ones may continue on more-indented
//! lines), literal and folded block scalars (`|`, `>`, with `-` chomping), comments and several
//! documents separated by `---`. Plain scalars resolve as `yaml_serde` resolves them (null,
//! booleans, integers, floats, else strings).
//!
//! Anything else (anchors, aliases, tags, flow mappings, directives, complex or duplicate keys,
//! tabs, carriage returns, multi-line quoted scalars, keep chomping, explicit indentation
//! indicators, odd indentation, ...) is [`Unsupported`]: the caller then gives the text to the
//! full YAML parser, which either reads it or reports the error. The reader never guesses.

use yaml_serde::{Mapping, Number, Value};

/// The text uses YAML this reader does not handle (exactly); use the full parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// One line of the text: its indentation (spaces), the rest, and whether a line break ends it.
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
    newline: bool,
}

impl Line<'_> {
    /// Blank or comment only (outside block scalars, such lines carry nothing).
    fn is_void(&self) -> bool {
        self.text.is_empty() || self.text.starts_with('#')
    }
}

/// The documents of `text`, as `yaml_serde::Deserializer::from_str` followed by
/// `Value::deserialize` on each would give them.
pub(crate) fn parse_documents(text: &str) -> R<Vec<Value>> {
    check_chars(text)?;
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(text.len() / 24 + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let (line, newline, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, ""),
        };
        let indent = line.len() - line.trim_start_matches(' ').len();
        // Trailing spaces carry nothing outside block scalars; block scalars re-read the raw
        // line through `text` (kept untrimmed).
        lines.push(Line { indent, text: &line[indent..], newline });
        rest = next;
    }
    // The documents: the lines before the first `---` (if they hold only comments, they are
    // no document), then the lines after each `---`.
    let mut docs = Vec::new();
    let mut start = 0;
    let mut first = true;
    for i in 0..=lines.len() {
        if let Some(l) = lines.get(i)
            && !document_marker(l)?
        {
            continue;
        }
        let part = &mut lines[start..i];
        if part.iter().any(|l| !l.is_void()) {
            docs.push(Document { lines: part, pos: 0 }.parse()?);
        } else if !(first && i < lines.len()) {
            // An empty document (a null, or no document at all): not ours.
            return Err(Unsupported);
        }
        first = false;
        start = i + 1;
    }
    Ok(docs)
}

/// Whether the line is a `---` document separator; other column-0 markers and directives are
/// unsupported.
fn document_marker(l: &Line<'_>) -> R<bool> {
    if l.indent != 0 {
        return Ok(false);
    }
    let t = l.text;
    if t.starts_with("---") || t.starts_with("...") {
        if t.trim_end_matches(' ') == "---" {
            return Ok(true);
        }
        if t.starts_with("--- ") || t.starts_with("...") && (t.len() == 3 || t.as_bytes()[3] == b' ') {
            return Err(Unsupported);
        }
    }
    if t.starts_with('%') {
        return Err(Unsupported);
    }
    Ok(false)
}

/// Characters libyaml treats differently from a plain reading: tabs, carriage returns, other
/// line breaks (NEL, LS, PS), the byte-order mark and non-printable characters.
fn check_chars(text: &str) -> R<()> {
    // Folded a chunk at a time without branches (vectorized): most texts have none.
    let bad_ascii = |b: u8| ((b < 0x20) & (b != b'\n')) | (b == 0x7f);
    if text.as_bytes().chunks(64).any(|c| c.iter().fold(false, |bad, &b| bad | bad_ascii(b))) {
        return Err(Unsupported);
    }
    if !text.is_ascii()
        && text
            .chars()
            .any(|c| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'))
    {
        return Err(Unsupported);
    }
    Ok(())
}

struct Document<'a, 'l> {
    lines: &'l mut [Line<'a>],
    pos: usize,
}

impl<'a> Document<'a, '_> {
    fn parse(mut self) -> R<Value> {
        self.skip_void();
        let Some(first) = self.current() else { return Err(Unsupported) };
        let v = self.node(first.indent)?;
        self.skip_void();
        if self.pos < self.lines.len() {
            return Err(Unsupported);
        }
        Ok(v)
    }

    fn current(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    fn skip_void(&mut self) {
        while self.lines.get(self.pos).is_some_and(|l| l.is_void()) {
            self.pos += 1;
        }
    }

    /// The collection starting at the current line, which is indented by `indent` (scalars on
    /// a line of their own are unsupported).
    fn node(&mut self, indent: usize) -> R<Value> {
        let Some(line) = self.current() else { return Err(Unsupported) };
        debug_assert_eq!(line.indent, indent);
        if is_seq_item(line.text) {
            return self.sequence(indent);
        }
        if is_key(line.text)? {
            return self.mapping(indent);
        }
        Err(Unsupported)
    }

    fn sequence(&mut self, indent: usize) -> R<Value> {
        let mut items = Vec::new();
        loop {
            self.skip_void();
            let Some(line) = self.current() else { break };
            if line.indent < indent || line.indent == indent && !is_seq_item(line.text) {
                break;
            }
            if line.indent > indent {
                return Err(Unsupported);
            }
            // `-` then spaces then the item (or nothing: the item is on the following lines).
            let after = &line.text[1..];
            let rest = after.trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.pos += 1;
                items.push(self.value_below(indent, true)?);
                continue;
            }
            let col = indent + 1 + (after.len() - rest.len());
            if is_seq_item(rest) {
                return Err(Unsupported);
            }
            if is_key(rest)? {
                // A compact mapping: its first entry is on the dash's line.
                self.lines[self.pos] = Line { indent: col, text: rest, newline: line.newline };
                items.push(self.mapping(col)?);
                continue;
            }
            self.pos += 1;
            items.push(self.inline_value(rest, indent)?);
        }
        Ok(Value::Sequence(items))
    }

    fn mapping(&mut self, indent: usize) -> R<Value> {
        let mut map = Mapping::new();
        loop {
            self.skip_void();
            let Some(line) = self.current() else { break };
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_seq_item(line.text) {
                return Err(Unsupported);
            }
            let Some((key, rest)) = find_key(line.text)? else { return Err(Unsupported) };
            if key.as_str() == Some("<<") {
                return Err(Unsupported);
            }
            self.pos += 1;
            let rest = rest.trim_start_matches(' ');
            let value = if rest.is_empty() || rest.starts_with('#') {
                self.value_below(indent, false)?
            } else {
                self.inline_value(rest, indent)?
            };
            if map.insert(key, value).is_some() {
                // yaml_serde refuses duplicate keys: let it report them.
                return Err(Unsupported);
            }
        }
        Ok(Value::Mapping(map))
    }

    /// The value of `key:` or `-` with nothing after it on the line: a node on the following
    /// lines, more indented than `indent` (a mapping's value may also be a sequence at the
    /// mapping's own indentation), else null.
    fn value_below(&mut self, indent: usize, in_sequence: bool) -> R<Value> {
        self.skip_void();
        let Some(line) = self.current() else { return Ok(Value::Null) };
        if line.indent > indent {
            if !is_seq_item(line.text) && !is_key(line.text)? {
                // A plain or quoted scalar on its own line(s).
                return Err(Unsupported);
            }
            return self.node(line.indent);
        }
        if line.indent == indent && !in_sequence && is_seq_item(line.text) {
            return self.sequence(indent);
        }
        Ok(Value::Null)
    }

    /// A value that starts on the line just consumed (`rest`, after `key: ` or `- `); `indent`
    /// is the indentation of the collection it belongs to.
    fn inline_value(&mut self, rest: &'a str, indent: usize) -> R<Value> {
        let b = rest.as_bytes()[0];
        match b {
            b'\'' | b'"' => {
                let (s, after) = quoted(rest)?;
                if !is_void_tail(after) {
                    return Err(Unsupported);
                }
                Ok(Value::String(s))
            }
            b'|' | b'>' => self.block_scalar(rest, indent),
            b'[' => flow_sequence(rest),
            b'{' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b']' | b'}' | b',' | b'?' | b':' | b'-' => {
                // `-x` and `:x` may be plain scalars, but rule files do not need them.
                if b == b'-' && rest.len() > 1 && !matches!(rest.as_bytes()[1], b' ' | b'-') {
                    self.plain(rest, indent)
                } else {
                    Err(Unsupported)
                }
            }
            _ => self.plain(rest, indent),
        }
    }

    /// A plain scalar, possibly continued on following lines more indented than `indent`.
    fn plain(&mut self, first: &'a str, indent: usize) -> R<Value> {
        let first = plain_part(first)?;
        let mut joined: Option<String> = None;
        while let Some(line) = self.current() {
            if line.text.is_empty() || line.indent <= indent {
                break;
            }
            if line.text.starts_with('#') {
                return Err(Unsupported);
            }
            let part = plain_part(line.text)?;
            if is_seq_item(part) || part.starts_with(['#', '&', '*', '!', '|', '>', '\'', '"', '[', '{', '?']) {
                return Err(Unsupported);
            }
            joined.get_or_insert_with(|| first.to_string()).push(' ');
            if let Some(j) = joined.as_mut() {
                j.push_str(part);
            }
            self.pos += 1;
        }
        // A continued scalar resolves like a one-line one. (A blank line followed by more of
        // it is caught by the caller: a line more indented than its collection.)
        match joined {
            Some(j) => resolve_plain(&j),
            None => resolve_plain(first),
        }
    }

    /// A literal (`|`) or folded (`>`) block scalar whose header is `header`; the content is
    /// the following lines more indented than `parent`.
    fn block_scalar(&mut self, header: &str, parent: usize) -> R<Value> {
        let literal = header.starts_with('|');
        let ind = header[1..].trim_end_matches(' ');
        let (strip, tail) = match ind.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, ind),
        };
        if !(tail.is_empty() || tail.starts_with(' ') && tail.trim_start_matches(' ').starts_with('#')) {
            // `+` (keep), an explicit indentation digit, or text after the header.
            return Err(Unsupported);
        }
        // Content indentation: the first non-empty line's; leading empty lines may not be
        // more indented than it.
        let start = self.pos;
        let mut block_indent = None;
        let mut max_leading = 0;
        for l in &self.lines[start..] {
            if l.text.is_empty() {
                max_leading = max_leading.max(l.indent);
                continue;
            }
            block_indent = Some(l.indent);
            break;
        }
        let Some(bi) = block_indent.filter(|&bi| bi > parent) else { return Err(Unsupported) };
        if max_leading > bi {
            return Err(Unsupported);
        }
        let mut out = String::new();
        let mut leading_break = String::new();
        let mut trailing_breaks = String::new();
        let mut leading_blank = false;
        let mut any_line = false;
        while let Some(l) = self.current() {
            let empty = l.text.is_empty() && l.indent <= bi;
            if empty {
                trailing_breaks.push('\n');
                self.pos += 1;
                continue;
            }
            if l.indent < bi {
                break;
            }
            // A content line: the spaces past the block's indentation, then the text.
            let extra = l.indent - bi;
            let trailing_blank = extra > 0;
            if !literal && leading_break.starts_with('\n') && !leading_blank && !trailing_blank {
                if trailing_breaks.is_empty() {
                    out.push(' ');
                }
                leading_break.clear();
            } else {
                out.push_str(&leading_break);
                leading_break.clear();
            }
            out.push_str(&trailing_breaks);
            trailing_breaks.clear();
            leading_blank = trailing_blank;
            out.extend(std::iter::repeat_n(' ', extra));
            out.push_str(l.text);
            if l.newline {
                leading_break.push('\n');
            }
            any_line = true;
            self.pos += 1;
        }
        if !any_line {
            return Err(Unsupported);
        }
        if !strip {
            out.push_str(&leading_break);
        }
        Ok(Value::String(out))
    }
}

/// `- ` (or a lone `-`) starting a block sequence item.
fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// After a quoted scalar or a flow collection: nothing, or a comment.
fn is_void_tail(after: &str) -> bool {
    let t = after.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < after.len())
}

/// The key of a `key: value` line and the text after the colon, if the line is a mapping
/// entry; unsupported for keys this reader does not read.
fn find_key(text: &str) -> R<Option<(Value, &str)>> {
    let found = find_key_unchecked(text)?;
    // libyaml refuses implicit keys longer than 1024 characters.
    if let Some((_, rest)) = &found
        && text.len() - rest.len() > 1024
    {
        return Err(Unsupported);
    }
    Ok(found)
}

fn find_key_unchecked(text: &str) -> R<Option<(Value, &str)>> {
    let b = text.as_bytes();
    let Some(&first) = b.first() else { return Ok(None) };
    if first == b'\'' || first == b'"' {
        let (key, after) = quoted(text)?;
        let t = after.trim_start_matches(' ');
        return match t.strip_prefix(':') {
            Some(r) if r.is_empty() || r.starts_with(' ') => Ok(Some((Value::String(key), r))),
            _ => Ok(None),
        };
    }
    match plain_key(text)? {
        Some((key, rest)) => Ok(Some((resolve_plain(key)?, rest))),
        None => Ok(None),
    }
}

/// Whether the line is a mapping entry, as [`find_key`] decides, without building a plain
/// key: the caller then reads the line with [`find_key`], which reports what this skips (a
/// key that does not resolve, or is too long).
fn is_key(text: &str) -> R<bool> {
    match text.as_bytes().first() {
        Some(b'\'' | b'"') => Ok(find_key(text)?.is_some()),
        _ => Ok(plain_key(text)?.is_some()),
    }
}

/// A plain key's text and the text after its colon.
fn plain_key(text: &str) -> R<Option<(&str, &str)>> {
    // A plain key runs to the first `: ` (or a colon ending the line), unless a comment starts
    // first. Values such as `C:\x` or URLs have colons not followed by a space.
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(found) = b.get(i..).and_then(|rest| memchr::memchr2(b':', b'#', rest)) {
        i += found;
        match b[i] {
            b':' if i + 1 == b.len() || b[i + 1] == b' ' => {
                let key = text[..i].trim_end_matches(' ');
                if key.is_empty() {
                    return Err(Unsupported);
                }
                if matches!(
                    key.as_bytes()[0],
                    b'-' | b'?'
                        | b':'
                        | b','
                        | b'['
                        | b']'
                        | b'{'
                        | b'}'
                        | b'#'
                        | b'&'
                        | b'*'
                        | b'!'
                        | b'|'
                        | b'>'
                        | b'%'
                        | b'@'
                        | b'`'
                ) {
                    return Err(Unsupported);
                }
                return Ok(Some((key, &text[i + 1..])));
            }
            b'#' if i > 0 && b[i - 1] == b' ' => return Ok(None),
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

/// A one-line plain scalar's text: up to a comment, without trailing spaces. A `: ` inside is
/// an error for YAML (unsupported here).
fn plain_part(text: &str) -> R<&str> {
    let b = text.as_bytes();
    let mut end = b.len();
    let mut i = 0;
    while let Some(found) = b.get(i..).and_then(|rest| memchr::memchr2(b':', b'#', rest)) {
        i += found;
        if b[i] == b'#' && i > 0 && b[i - 1] == b' ' {
            end = i;
            break;
        }
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ') {
            return Err(Unsupported);
        }
        i += 1;
    }
    Ok(text[..end].trim_end_matches(' '))
}

/// A single- or double-quoted scalar at the start of `text` (closed on the same line), and the
/// text after its closing quote.
fn quoted(text: &str) -> R<(String, &str)> {
    let b = text.as_bytes();
    let mut out = String::new();
    if b[0] == b'\'' {
        let mut i = 1;
        let mut start = 1;
        while i < b.len() {
            if b[i] == b'\'' {
                out.push_str(&text[start..i]);
                if b.get(i + 1) == Some(&b'\'') {
                    out.push('\'');
                    i += 2;
                    start = i;
                    continue;
                }
                return Ok((out, &text[i + 1..]));
            }
            i += 1;
        }
        return Err(Unsupported);
    }
    let mut i = 1;
    let mut start = 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&text[start..i]);
                return Ok((out, &text[i + 1..]));
            }
            b'\\' => {
                out.push_str(&text[start..i]);
                let Some(&e) = b.get(i + 1) else { return Err(Unsupported) };
                i += 2;
                let c = match e {
                    b'0' => '\0',
                    b'a' => '\u{7}',
                    b'b' => '\u{8}',
                    b't' => '\t',
                    b'n' => '\n',
                    b'v' => '\u{b}',
                    b'f' => '\u{c}',
                    b'r' => '\r',
                    b'e' => '\u{1b}',
                    b' ' => ' ',
                    b'"' => '"',
                    b'/' => '/',
                    b'\\' => '\\',
                    b'N' => '\u{85}',
                    b'_' => '\u{a0}',
                    b'L' => '\u{2028}',
                    b'P' => '\u{2029}',
                    b'x' | b'u' | b'U' => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = text.get(i..i + n).ok_or(Unsupported)?;
                        if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                            return Err(Unsupported);
                        }
                        i += n;
                        let code = u32::from_str_radix(hex, 16).map_err(|_| Unsupported)?;
                        char::from_u32(code).ok_or(Unsupported)?
                    }
                    _ => return Err(Unsupported),
                };
                out.push(c);
                start = i;
            }
            _ => i += 1,
        }
    }
    Err(Unsupported)
}

/// `[a, 'b', "c"]` on one line, of scalars only.
fn flow_sequence(text: &str) -> R<Value> {
    let mut items = Vec::new();
    let mut rest = text[1..].trim_start_matches(' ');
    if let Some(after) = rest.strip_prefix(']') {
        return if is_void_tail(after) { Ok(Value::Sequence(items)) } else { Err(Unsupported) };
    }
    loop {
        let item;
        match rest.as_bytes().first() {
            Some(b'\'' | b'"') => {
                let (s, after) = quoted(rest)?;
                item = Value::String(s);
                rest = after.trim_start_matches(' ');
            }
            Some(_) => {
                let end = rest.find([',', ']']).ok_or(Unsupported)?;
                let s = rest[..end].trim_end_matches(' ');
                if s.is_empty()
                    || s.contains([':', '#', '[', '{', '}', '\'', '"'])
                    || s.starts_with(['-', '&', '*', '!', '?', '|', '>', '%', '@', '`'])
                {
                    return Err(Unsupported);
                }
                item = resolve_plain(s)?;
                rest = &rest[end..];
            }
            None => return Err(Unsupported),
        }
        items.push(item);
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start_matches(' ');
            if rest.starts_with(']') || rest.is_empty() {
                // A trailing comma, or a sequence continued on the next line.
                return Err(Unsupported);
            }
        } else if let Some(after) = rest.strip_prefix(']') {
            return if is_void_tail(after) { Ok(Value::Sequence(items)) } else { Err(Unsupported) };
        } else {
            return Err(Unsupported);
        }
    }
}

/// A plain scalar's value as `yaml_serde` resolves it: null (empty, `~`, `null`), booleans,
/// integers (decimal, `0x`, `0o`, `0b`; a leading zero makes digits a string), floats, else
/// a string.
pub(crate) fn resolve_plain(s: &str) -> R<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"+").or(b.strip_prefix(b"-")).unwrap_or(b);
    if !unsigned.first().is_some_and(|c| c.is_ascii_digit() || *c == b'.' || *c == b'+' || *c == b'-') {
        return Ok(Value::String(s.to_string()));
    }
    if s.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-' | b'e' | b'E')) {
        return resolve_decimal(s);
    }
    // Letters: a number only with a 0x/0o/0b prefix or as .inf/.nan; let yaml_serde decide.
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_start_matches(['+', '-']);
    if digits.starts_with("0x")
        || digits.starts_with("0o")
        || digits.starts_with("0b")
        || lower.contains("inf")
        || lower.contains("nan")
    {
        return scalar_by_yaml_serde(s);
    }
    Ok(Value::String(s.to_string()))
}

/// The rare scalar whose resolution this reader leaves to yaml_serde.
fn scalar_by_yaml_serde(s: &str) -> R<Value> {
    match yaml_serde::from_str::<Value>(s) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => Ok(v),
        _ => Err(Unsupported),
    }
}

/// Leading zero(s) then digits: a string for YAML 1.2.
fn digits_not_number(s: &str) -> bool {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    d.len() > 1 && d.starts_with('0') && d.bytes().all(|c| c.is_ascii_digit())
}

/// `s` of digits, signs, dots and exponents only: as yaml_serde resolves it.
fn resolve_decimal(s: &str) -> R<Value> {
    let string = || Ok(Value::String(s.to_string()));
    if digits_not_number(s) {
        return string();
    }
    // Unsigned: one optional `+`.
    let unpositive = s.strip_prefix('+').unwrap_or(s);
    if !unpositive.starts_with(['+', '-'])
        && let Ok(n) = unpositive.parse::<u64>()
    {
        return Ok(Value::Number(Number::from(n)));
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(Value::Number(Number::from(n)));
    }
    if unpositive.parse::<u128>().is_ok() || s.parse::<i128>().is_ok() {
        // Beyond 64 bits: whatever yaml_serde makes of it.
        return scalar_by_yaml_serde(s);
    }
    let float_text = match s.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return string(),
        Some(u) => u,
        None => s,
    };
    match float_text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Number(Number::from(f))),
        _ => string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn reference(text: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(text) {
            out.push(Value::deserialize(doc).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[track_caller]
    fn same(text: &str) {
        let ours = parse_documents(text).unwrap_or_else(|_| panic!("unsupported: {text:?}"));
        assert_eq!(Ok(ours), reference(text), "{text:?}");
    }

    #[track_caller]
    fn unsupported(text: &str) {
        assert_eq!(parse_documents(text), Err(Unsupported), "{text:?}");
    }

    #[test]
    fn reads_a_rule_like_yaml_serde() {
        same(concat!(
            "title: Test 'rule'\n",
            "id: 5f1ab1e8-0000-4000-8000-000000000000 # a comment\n",
            "status: test\n",
            "description: |\n",
            "    Line one\n",
            "      indented\n",
            "\n",
            "    after a blank line\n",
            "references:\n",
            "    - https://example.com/a:b#frag\n",
            "    - 'C:\\Windows\\'\n",
            "author: A, B\n",
            "date: 2023-01-01\n",
            "modified: 2023/01/02\n",
            "tags: [attack.t1059, 'x y', \"z\"]\n",
            "logsource:\n",
            "  category: process_creation\n",
            "  product: windows\n",
            "detection:\n",
            "  selection:\n",
            "    - Image|endswith: '\\foo.exe'\n",
            "      CommandLine|contains|all:\n",
            "      - \"a\\\\b\\\"c\\x41\\u00e9\"\n",
            "      - b\n",
            "    - EventID: 4688\n",
            "      Other: -12\n",
            "  filter:\n",
            "    Field: null\n",
            "    F2: ''\n",
            "    F3:\n",
            "  condition: selection and not filter\n",
            "falsepositives:\n",
            "  - Unknown\n",
            "level: high\n",
        ));
    }

    #[test]
    fn resolves_plain_scalars_like_yaml_serde() {
        // Scalars separated by `|`.
        let cases = concat!(
            "0|1|007|-0|+5|-5|12.5|1e3|1.5e-3|.5|5.|-.5|1_000|0x1F|0o17|0b101|-0x10|0xZZ|.inf|-.inf|",
            ".nan|.NaN|inf|nan|Infinity|2023-01-01|1.2.3|18446744073709551615|18446744073709551616|",
            "-9223372036854775809|99999999999999999999999|1e999|+-5|--5|+|-|.|~|null|Null|NULL|nULL|",
            "true|True|TRUE|tRue|yes|no|on|off|y|n|e5|5e|0.0|-0.0|00.5|0e0|4688|1-2|+.5|12:30|1:1|0b|",
            "0x|+0x10|inFinity|banana|C:\\x|a b",
        );
        for s in cases.split('|') {
            let text = format!("k: {s}\n");
            if let Ok(v) = parse_documents(&text) {
                assert_eq!(Ok(v), reference(&text), "{s}");
            }
            let whole = reference(&format!("{s}\n"));
            let scalar =
                matches!(whole.as_deref(), Ok([Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)]));
            if let (Ok(v), true) = (resolve_plain(s), scalar) {
                assert_eq!(Ok(vec![v]), whole, "{s}");
            }
        }
    }

    #[test]
    fn reads_block_scalars_like_yaml_serde() {
        for text in [
            "a: |\n  x\n  y\n",
            "a: |-\n  x\n  y\n\n\nb: 1\n",
            "a: >\n  folded\n  text\n\n  para\n    more\n  back\n",
            "a: >-\n  x\n  y\n",
            "a: |\n  x\n\n\n",
            "a: |\n  x",
            "a: >\n  x\n   \n  y\n",
            "a: |\n\n  x\n",
            "a: |  # comment\n  x\n",
            "- |\n  x\n- y\n",
            "a:\n  - |\n    x\n    y\n  - z\n",
        ] {
            same(text);
        }
    }

    #[test]
    fn reads_documents_and_structure_like_yaml_serde() {
        for text in [
            "a: 1\n---\nb: 2\n",
            "---\na: 1\n",
            "# c\n---\na: 1\n---\nb: [ ]\n",
            "a:\n- 1\n- 2\nb: 3\n",
            "a:\n  b:\n    c: d\n  e: f\n",
            "- a: 1\n  b: 2\n- c\n",
            "a: b\n  c d\n",
            "'quoted key': 1\n\"k2\": 2\n",
            "a: 'it''s'\n",
            "a: x # c\nb: y#z\n",
            "a: - b\n",
            "1: one\ntrue: t\n",
            "a:   spaced   \n",
        ] {
            match parse_documents(text) {
                Ok(v) => assert_eq!(Ok(v), reference(text), "{text:?}"),
                Err(Unsupported) => assert!(
                    matches!(text, "a: - b\n" | "# c\n---\na: 1\n---\nb: [ ]\n"),
                    "unexpectedly unsupported: {text:?}"
                ),
            }
        }
    }

    #[test]
    fn leaves_what_it_does_not_read_to_the_full_parser() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !tag x\n",
            "a: {b: 1}\n",
            "%YAML 1.2\n---\na: 1\n",
            "? a\n: b\n",
            "a: 1\na: 2\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: \"multi\n  line\"\n",
            "a: |+\n  x\n\n",
            "a: |2\n   x\n",
            "a: 1\n---\n",
            "a: [1,\n  2]\n",
            "a: [1, 2,]\n",
            "<<: {a: 1}\n",
            "a: 1\n b: 2\n",
            "",
            "# only a comment\n",
            "a: b: c\n",
        ] {
            unsupported(text);
        }
    }
}
