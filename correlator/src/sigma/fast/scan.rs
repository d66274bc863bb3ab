//! A byte scanner over JSON text for the fast path ([`super::flat`]): the entries of an object
//! as (key, raw value text) pairs, every value validated as `serde_json` validates a value it
//! skips (string escapes and control characters, number grammar, literals), nothing decoded
//! but the keys that hold escapes, nothing allocated but the entry list.
//!
//! It answers `None` for whatever it does not handle the way `serde_json` would (invalid
//! text, deep nesting, a key whose escapes do not decode): the caller then takes the
//! `serde_json` path, which gives the same result or reports the error. So the scanner is
//! never more lenient than `serde_json` and only ever faster.

use std::borrow::Cow;

/// Nesting deeper than this is left to `serde_json` (its recursion limit is 128).
const MAX_DEPTH: usize = 96;

/// An object's entries in text order: (key, the value's text without surrounding blanks).
pub(crate) type Entries<'a> = Vec<(Cow<'a, str>, &'a str)>;

struct Scanner<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }

    fn blanks(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string starting at `self.i` (its opening quote); returns whether it holds escapes.
    fn string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let b = self.text.as_bytes();
        let mut escaped = false;
        loop {
            // The plain run up to the next quote, backslash or control character.
            self.i += special(b.get(self.i..)?)?;
            let c = *b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    match *b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// A number, with `serde_json`'s grammar.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        if self.text.as_bytes().get(self.i..self.i + word.len()) == Some(word.as_bytes()) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips one value (after blanks); returns its text.
    fn value(&mut self, depth: usize) -> Option<&'a str> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.blanks();
        let start = self.i;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' => {
                self.i += 1;
                self.blanks();
                if self.eat(b'}').is_none() {
                    loop {
                        self.blanks();
                        self.string()?;
                        self.blanks();
                        self.eat(b':')?;
                        self.value(depth + 1)?;
                        self.blanks();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.blanks();
                if self.eat(b']').is_none() {
                    loop {
                        self.value(depth + 1)?;
                        self.blanks();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            _ => self.number()?,
        }
        self.text.get(start..self.i)
    }

    /// The entries of the object starting at `self.i` (after blanks), in text order.
    fn object(&mut self, depth: usize) -> Option<Entries<'a>> {
        let mut out = Vec::with_capacity(16);
        self.entries(depth, &mut |k, v, _| out.push((k, v)), false)?;
        Some(out)
    }

    /// Calls `push` with each entry of the object starting at `self.i` (after blanks), in
    /// text order; with `nested`, with the entries of each value that is an object too.
    fn entries<F: FnMut(Cow<'a, str>, &'a str, Option<Entries<'a>>)>(
        &mut self,
        depth: usize,
        push: &mut F,
        nested: bool,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.blanks();
        self.eat(b'{')?;
        self.blanks();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.blanks();
            let k0 = self.i;
            let escaped = self.string()?;
            let quoted = self.text.get(k0..self.i)?;
            let key = if escaped {
                // Rare: decoded (and checked) by serde_json.
                Cow::Owned(serde_json::from_str::<String>(quoted).ok()?)
            } else {
                Cow::Borrowed(quoted.get(1..quoted.len() - 1)?)
            };
            self.blanks();
            self.eat(b':')?;
            self.blanks();
            if nested && self.peek() == Some(b'{') {
                let v0 = self.i;
                let inner = self.object(depth + 1)?;
                push(key, self.text.get(v0..self.i)?, Some(inner));
            } else {
                let v = self.value(depth + 1)?;
                push(key, v, None);
            }
            self.blanks();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The entries of the JSON object `text` (the whole text, blanks around allowed), in text
/// order; `None` when `text` is not an object the scanner handles (see the module).
pub(crate) fn object(text: &str) -> Option<Entries<'_>> {
    let mut s = Scanner { text, i: 0 };
    let out = s.object(0)?;
    s.blanks();
    (s.i == text.len()).then_some(out)
}

/// The raw text of member `key` of the JSON object `text` (the last of duplicate keys, as in
/// a map), without collecting the entries: `Some(None)` when the object has no such member,
/// `None` when `text` is not an object the scanner handles (see the module).
pub(crate) fn member<'a>(text: &'a str, key: &str) -> Option<Option<&'a str>> {
    let mut s = Scanner { text, i: 0 };
    let mut found = None;
    s.entries(
        0,
        &mut |k, v, _| {
            if k == key {
                found = Some(v);
            }
        },
        false,
    )?;
    s.blanks();
    (s.i == text.len()).then_some(found)
}

/// [`member`] for a text already validated (by the scanner or `serde_json`), along a path of
/// keys: the member `path[1]` of the member `path[0]`..., each level the last of duplicate
/// keys (as in a map), `Some(None)` when a level is absent or not an object. The text is not
/// validated again (strings skipped to their closing quote, objects and arrays by bracket
/// depth), and walked once: the object a key leads to is searched where it stands rather
/// than skipped and searched again. `None` when `text` is not an object or a key on the way
/// holds escapes (the caller asks [`member`] then).
pub(crate) fn member_path_trusted<'a>(text: &'a str, path: &[&str]) -> Option<Option<&'a str>> {
    let b = text.as_bytes();
    let (found, _) = member_at(b, skip_blanks(b, 0), path)?;
    match found {
        Some((start, end)) => text.get(start..end).map(Some),
        None => Some(None),
    }
}

/// The span of the member at `path` in the object opening at `i` (a validated text), and
/// the position after that object.
fn member_at(b: &[u8], i: usize, path: &[&str]) -> Option<(Option<(usize, usize)>, usize)> {
    let (key, rest) = path.split_first()?;
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = i + 1;
    let mut found = None;
    loop {
        i = skip_blanks(b, i);
        match b.get(i)? {
            b'}' => return Some((found, i + 1)),
            b'"' => {}
            _ => return None,
        }
        let (end, escaped) = string_end_escaped(b, i)?;
        if escaped {
            return None;
        }
        let k = b.get(i + 1..end)?;
        i = skip_blanks(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_blanks(b, i + 1);
        let start = i;
        if k == key.as_bytes() {
            if rest.is_empty() {
                i = value_end(b, i)?;
                found = Some((start, i));
            } else if b.get(i) == Some(&b'{') {
                (found, i) = member_at(b, i, rest)?;
            } else {
                i = value_end(b, i)?;
                found = None;
            }
        } else {
            i = value_end(b, i)?;
        }
        i = skip_blanks(b, i);
        match b.get(i)? {
            b',' => i += 1,
            b'}' => return Some((found, i + 1)),
            _ => return None,
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` equal to `c`, and maybe of bytes above the lowest such
/// byte (the usual "has a zero byte" word test, whose borrow only ever flags bytes above a
/// true match): the lowest flagged byte is always a true match.
#[inline(always)]
fn eq_bits(x: u64, c: u8) -> u64 {
    let q = x ^ (LO * u64::from(c));
    q.wrapping_sub(LO) & !q & HI
}

/// The first position of `b` whose byte `flags` flags (see [`eq_bits`]), eight bytes at a
/// time, the tail byte by byte with `is`. JSON strings are mostly short (keys, names, numbers
/// as text), where this beats a SIMD search's set-up.
#[inline(always)]
fn find_by(b: &[u8], flags: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let m = flags(u64::from_le_bytes(w));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| is(c)).map(|p| i + p)
}

/// The position of the first quote, backslash or control character (below 0x20) of `b`.
fn special(b: &[u8]) -> Option<usize> {
    find_by(
        b,
        |x| eq_bits(x, b'"') | eq_bits(x, b'\\') | (x.wrapping_sub(LO * 0x20) & !x & HI),
        |c| c == b'"' || c == b'\\' || c < 0x20,
    )
}

/// The position of the first quote or backslash of `b`.
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    find_by(b, |x| eq_bits(x, b'"') | eq_bits(x, b'\\'), |c| c == b'"' || c == b'\\')
}

/// Texts longer than this are searched by `memchr` (32 bytes at a time once set up), shorter
/// ones eight bytes at a time.
const SHORT: usize = 64;

/// The position of the first backslash of `b`: word at a time for short texts (most values),
/// `memchr` for long ones (command lines, script blocks).
pub(crate) fn backslash(b: &[u8]) -> Option<usize> {
    if b.len() > SHORT {
        return memchr::memchr(b'\\', b);
    }
    find_by(b, |x| eq_bits(x, b'\\'), |c| c == b'\\')
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The position of the closing quote of the (valid) string opening at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    string_end_escaped(b, i).map(|(end, _)| end)
}

/// [`string_end`], and whether the string holds escapes.
fn string_end_escaped(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j += quote_or_backslash(b.get(j..)?)?;
        if b.get(j)? == &b'"' {
            return Some((j, escaped));
        }
        escaped = true;
        j += 2;
    }
}

/// The position after the (valid) value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => Some(string_end(b, i)? + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => j = string_end(b, j)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b.get(j).is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r')) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// An entry whose value may be an object, then with its entries too.
pub(crate) type Nested<'a> = Vec<(Cow<'a, str>, &'a str, Option<Entries<'a>>)>;

/// The entries of the object under key `key` of the top-level object `text` (the last
/// occurrence of `key` wins, as in a map), each with its own entries when its value is an
/// object, the whole text validated; `None` when the top level or that value is not an
/// object, or as [`object`].
pub(crate) fn object_under<'a>(text: &'a str, key: &str) -> Option<Nested<'a>> {
    let mut s = Scanner { text, i: 0 };
    s.blanks();
    s.eat(b'{')?;
    let mut found = None;
    s.blanks();
    if s.eat(b'}').is_none() {
        loop {
            s.blanks();
            let k0 = s.i;
            let escaped = s.string()?;
            if escaped {
                return None;
            }
            let k = text.get(k0 + 1..s.i - 1)?;
            s.blanks();
            s.eat(b':')?;
            if k == key {
                let mut v = Vec::with_capacity(8);
                s.entries(1, &mut |k, raw, inner| v.push((k, raw, inner)), true)?;
                found = Some(v);
            } else {
                s.value(1)?;
            }
            s.blanks();
            match s.peek()? {
                b',' => s.i += 1,
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.blanks();
    if s.i != text.len() {
        return None;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(e: &'a Entries<'_>) -> Vec<(&'a str, &'a str)> {
        e.iter().map(|(k, v)| (k.as_ref(), *v)).collect()
    }

    #[test]
    fn the_word_searches_find_the_first_byte_they_look_for() {
        // Every length to 80 (past `SHORT`), every special byte at every position, over
        // fillers that sit next to the tested values (0x1f/0x20, 0x21-0x23, 0x5b-0x5d,
        // 0x7f-0x81, 0xff).
        let fillers = [0x20u8, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0x81, 0xa2, 0xdc, 0xff, b'a'];
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut seed = 7u32;
        for len in 0..80 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    fillers[(seed >> 16) as usize % fillers.len()]
                })
                .collect();
            assert_eq!(special(&b), naive(&b), "{b:?}");
            assert_eq!(quote_or_backslash(&b), b.iter().position(|&c| c == b'"' || c == b'\\'), "{b:?}");
            assert_eq!(backslash(&b), b.iter().position(|&c| c == b'\\'), "{b:?}");
            for at in 0..len {
                for c in [b'"', b'\\', 0x00, 0x0a, 0x1f] {
                    let keep = b[at];
                    b[at] = c;
                    assert_eq!(special(&b), naive(&b), "{b:?}");
                    assert_eq!(quote_or_backslash(&b), b.iter().position(|&c| c == b'"' || c == b'\\'), "{b:?}");
                    assert_eq!(backslash(&b), b.iter().position(|&c| c == b'\\'), "{b:?}");
                    // A second special byte later does not hide the first.
                    if at + 3 < len {
                        let later = b[at + 3];
                        b[at + 3] = b'"';
                        assert_eq!(special(&b), Some(at), "{b:?}");
                        b[at + 3] = later;
                    }
                    b[at] = keep;
                }
            }
        }
    }

    #[test]
    fn entries_are_raw_value_texts_in_text_order() {
        let Some(e) = object(r#" { "b" : [1, {"x":null}] , "a\u0020c":"q\"\\" , "n":-0.5e+3,"t":true } "#) else {
            panic!("not scanned")
        };
        assert_eq!(keys(&e), [("b", r#"[1, {"x":null}]"#), ("a c", r#""q\"\\""#), ("n", "-0.5e+3"), ("t", "true")]);
        assert_eq!(object("{}").map(|e| e.len()), Some(0));
    }

    #[test]
    fn whatever_serde_json_rejects_is_not_scanned() {
        for bad in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":"x\q"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"x\u{1}\"}",
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            r#"{"\ud800":1}"#,
        ] {
            assert!(object(bad).is_none(), "{bad}");
            assert!(serde_json::from_str::<serde_json::Value>(bad).is_err(), "serde_json accepts {bad}");
        }
        // Deep nesting is left to serde_json.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(120), "]".repeat(120));
        assert!(object(&deep).is_none());
    }

    #[test]
    fn the_object_under_a_key_is_found_and_the_last_occurrence_wins() {
        let text = r#"{"x":[{"Event":1}],"Event":{"A":1},"Event":{"B":{"C":2}}}"#;
        let Some(e) = object_under(text, "Event") else { panic!("not scanned") };
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0.as_ref(), e[0].1), ("B", r#"{"C":2}"#));
        assert_eq!(e[0].2.as_ref().map(keys), Some(vec![("C", "2")]));
        assert!(object_under(r#"{"Event":1}"#, "Event").is_none());
        assert!(object_under(r#"{"Other":{}}"#, "Event").is_none());
        assert!(object_under(r#"[{"Event":{}}]"#, "Event").is_none());
    }

    #[test]
    fn a_member_of_validated_text_is_the_one_the_validating_scan_finds() {
        for (text, key) in [
            (r#" {"a":1,"b":{"a":2},"a" : [3, {"x":"]}\\""}] } "#, "a"),
            (r#"{"b":{"a":2}}"#, "a"),
            (r##"{"#attributes":{"Name":"P\"x","Guid":"{1}"},"a":-1.5e3}"##, "#attributes"),
            (r#"{"x":"a\\","a":"\\\"","y":[[],{}]}"#, "a"),
            (r#"{"a":true,"b":null}"#, "b"),
            ("{}", "a"),
        ] {
            assert_eq!(member_path_trusted(text, &[key]), member(text, key), "{text}");
        }
        // Escaped keys and what is not an object are left to the validating scan.
        assert_eq!(member_path_trusted(r#"{"\u0061":"x"}"#, &["a"]), None);
        assert_eq!(member_path_trusted("[1]", &["a"]), None);
    }

    #[test]
    fn a_member_along_a_path_is_the_one_serde_json_reaches_key_by_key() {
        for text in [
            r##"{"#attributes":{"Name":"A","Guid":"{x}"}}"##,
            // The last of duplicate keys at each level, even when it lacks the inner key.
            r##"{"#attributes":{"Name":"A"},"x":[{"Name":1}],"#attributes":{"Name":"B","Name":"C"}}"##,
            r##"{"#attributes":{"Name":"A"},"#attributes":{"Other":"B"}}"##,
            r##"{"#attributes":{"Name":"A"},"#attributes":"s"}"##,
            r##"{"#attributes":"s","#attributes":{ "Name" : {"#text":"T"} } , "y":{"#attributes":{"Name":"Z"}}}"##,
            r##"{"Name":"top"}"##,
            "{}",
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let want = v.get("#attributes").and_then(|a| a.get("Name")).map(|x| x.to_string());
            let got = member_path_trusted(text, &["#attributes", "Name"])
                .map(|f| f.map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap().to_string()));
            assert_eq!(got, Some(want), "{text}");
        }
        assert_eq!(member_path_trusted(r#"{"\u0061":{"b":1}}"#, &["a", "b"]), None);
        assert_eq!(member_path_trusted(r#"{"a":{"\u0062":1}}"#, &["a", "b"]), None);
    }

    #[test]
    fn a_member_is_the_last_of_its_key_and_its_absence_is_told_apart_from_a_refusal() {
        assert_eq!(member(r#" {"a":1,"b":{"a":2},"a" : [3] } "#, "a"), Some(Some("[3]")));
        assert_eq!(member(r#"{"b":{"a":2}}"#, "a"), Some(None));
        assert_eq!(member(r#"{"\u0061":"x"}"#, "a"), Some(Some(r#""x""#)));
        assert_eq!(member(r#"{"a":01}"#, "a"), None);
        assert_eq!(member("[1]", "a"), None);
    }
}
