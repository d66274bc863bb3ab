//! Keywords beyond content and pcre: buffer transforms, `isdataat`, `byte_test`, `byte_jump`,
//! `flowbits`, `threshold`/`detection_filter`, and the packet-header keywords (`ttl`, `itype`,
//! `icode`, `flags`, `ip_proto`). Parsing here; evaluation in [`super::matcher`].

use std::borrow::Cow;
use std::sync::Arc;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::compile::IntCond;

/// A buffer transform (Suricata's `dotprefix`, `to_lowercase`, ...), applied in rule order to
/// the sticky buffer before its contents are inspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    DotPrefix,
    StripWhitespace,
    CompressWhitespace,
    ToLowercase,
    ToUppercase,
    UrlDecode,
    ToMd5,
    ToSha1,
    ToSha256,
}

impl Transform {
    pub fn from_keyword(kw: &str) -> Option<Transform> {
        Some(match kw {
            "dotprefix" => Transform::DotPrefix,
            "strip_whitespace" => Transform::StripWhitespace,
            "compress_whitespace" => Transform::CompressWhitespace,
            "to_lowercase" => Transform::ToLowercase,
            "to_uppercase" => Transform::ToUppercase,
            "url_decode" => Transform::UrlDecode,
            "to_md5" => Transform::ToMd5,
            "to_sha1" => Transform::ToSha1,
            "to_sha256" => Transform::ToSha256,
            _ => return None,
        })
    }

    pub fn apply(self, data: &[u8]) -> Vec<u8> {
        match self {
            Transform::DotPrefix => {
                let mut v = Vec::with_capacity(data.len() + 1);
                v.push(b'.');
                v.extend_from_slice(data);
                v
            }
            Transform::StripWhitespace => data.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect(),
            Transform::CompressWhitespace => {
                let mut v = Vec::with_capacity(data.len());
                let mut in_ws = false;
                for &c in data {
                    if c.is_ascii_whitespace() {
                        if !in_ws {
                            v.push(b' ');
                        }
                        in_ws = true;
                    } else {
                        v.push(c);
                        in_ws = false;
                    }
                }
                v
            }
            Transform::ToLowercase => data.to_ascii_lowercase(),
            Transform::ToUppercase => data.to_ascii_uppercase(),
            Transform::UrlDecode => {
                let mut v = Vec::with_capacity(data.len());
                let mut i = 0;
                while i < data.len() {
                    let c = data[i];
                    if c == b'%' && i + 2 < data.len() {
                        let h = (data[i + 1] as char).to_digit(16);
                        let l = (data[i + 2] as char).to_digit(16);
                        if let (Some(h), Some(l)) = (h, l) {
                            v.push((h * 16 + l) as u8);
                            i += 3;
                            continue;
                        }
                    }
                    v.push(if c == b'+' { b' ' } else { c });
                    i += 1;
                }
                v
            }
            Transform::ToMd5 => Md5::digest(data).to_vec(),
            Transform::ToSha1 => Sha1::digest(data).to_vec(),
            Transform::ToSha256 => Sha256::digest(data).to_vec(),
        }
    }
}

/// Applies a chain of transforms (borrowing when there is none).
pub fn transform<'a>(data: &'a [u8], chain: &[Transform]) -> Cow<'a, [u8]> {
    let mut out = Cow::Borrowed(data);
    for t in chain {
        out = Cow::Owned(t.apply(&out));
    }
    out
}

/// `isdataat:[!]n[,relative]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsDataAt {
    pub offset: u32,
    pub relative: bool,
    pub negated: bool,
}

/// How `byte_test`/`byte_jump` read their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRead {
    pub nbytes: u8,
    pub offset: i32,
    pub relative: bool,
    pub little_endian: bool,
    /// `string,hex|dec|oct`: the bytes are ASCII digits in this base.
    pub string_base: Option<u32>,
    pub bitmask: Option<u64>,
}

impl ByteRead {
    /// Reads the value at `base + offset`; `None` when out of the buffer or not a number.
    /// Returns the value and the position after the bytes read.
    pub fn read(&self, buf: &[u8], base: usize) -> Option<(u64, usize)> {
        let start = base as i64 + self.offset as i64;
        if start < 0 {
            return None;
        }
        let start = start as usize;
        let end = if self.nbytes == 0 && self.string_base.is_some() {
            // nbytes 0 with string: the run of digits at the offset
            let radix = self.string_base.unwrap_or(10);
            let run = buf.get(start..)?.iter().take(20).take_while(|&&c| (c as char).is_digit(radix)).count();
            if run == 0 {
                return None;
            }
            start + run
        } else {
            start.checked_add(self.nbytes as usize)?
        };
        let bytes = buf.get(start..end)?;
        if bytes.is_empty() {
            // nbytes 0 (byte_jump): nothing read, the jump is the post_offset alone
            return Some((0, end));
        }
        let mut v = match self.string_base {
            Some(radix) => {
                let s = std::str::from_utf8(bytes).ok()?;
                let s = s.trim();
                let s = if radix == 16 { s.trim_start_matches("0x").trim_start_matches("0X") } else { s };
                u64::from_str_radix(s, radix).ok()?
            }
            None => {
                let mut v = 0u64;
                if self.little_endian {
                    for &b in bytes.iter().rev() {
                        v = (v << 8) | b as u64;
                    }
                } else {
                    for &b in bytes {
                        v = (v << 8) | b as u64;
                    }
                }
                v
            }
        };
        if let Some(m) = self.bitmask {
            v &= m;
            if m != 0 {
                v >>= m.trailing_zeros();
            }
        }
        Some((v, end))
    }
}

/// `byte_test` comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOp {
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    And,
    Or,
}

/// `byte_test:nbytes,[!]op,value,offset[,relative][,big|little][,string,hex|dec|oct][,bitmask m]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteTest {
    pub read: ByteRead,
    pub op: ByteOp,
    pub negated: bool,
    pub value: u64,
}

impl ByteTest {
    pub fn test(&self, v: u64) -> bool {
        let r = match self.op {
            ByteOp::Lt => v < self.value,
            ByteOp::Gt => v > self.value,
            ByteOp::Le => v <= self.value,
            ByteOp::Ge => v >= self.value,
            ByteOp::Eq => v == self.value,
            ByteOp::And => v & self.value != 0,
            ByteOp::Or => v ^ self.value != 0,
        };
        r != self.negated
    }
}

/// `byte_jump:nbytes,offset[,relative][,multiplier n][,big|little][,string,..][,align]
/// [,from_beginning|from_end][,post_offset n][,bitmask m]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteJump {
    pub read: ByteRead,
    pub multiplier: u64,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: i64,
}

impl ByteJump {
    /// The new detection offset, `None` when out of the buffer.
    pub fn jump(&self, buf: &[u8], base: usize) -> Option<usize> {
        let (v, after) = self.read.read(buf, if self.read.relative { base } else { 0 })?;
        let mut v = v.checked_mul(self.multiplier)? as i64;
        if self.align && v % 4 != 0 {
            v += 4 - v % 4;
        }
        let from = if self.from_beginning {
            0
        } else if self.from_end {
            buf.len() as i64
        } else {
            after as i64
        };
        let pos = from + v + self.post_offset;
        if pos < 0 || pos > buf.len() as i64 {
            return None;
        }
        Some(pos as usize)
    }
}

fn num_i64(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16),
        None => t.parse::<i64>(),
    };
    r.map_err(|_| {
        if !t.is_empty()
            && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && !t.as_bytes()[0].is_ascii_digit()
        {
            format!("'{t}' is a byte_extract variable: byte_extract not supported yet")
        } else {
            format!("invalid number '{t}'")
        }
    })
}

pub fn parse_isdataat(v: &str) -> Result<IsDataAt, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let (negated, n) = match parts[0].strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, parts[0]),
    };
    let offset = num_i64(n)?;
    if !(0..=65535).contains(&offset) {
        return Err(format!("offset {offset} out of range"));
    }
    let mut relative = false;
    for p in &parts[1..] {
        match *p {
            "relative" => relative = true,
            "rawbytes" => {}
            other => return Err(format!("unknown isdataat option '{other}'")),
        }
    }
    Ok(IsDataAt { offset: offset as u32, relative, negated })
}

/// Shared trailing options of byte_test/byte_jump. Returns the unconsumed options.
fn byte_common<'a>(read: &mut ByteRead, opts: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let mut rest = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let o = opts[i];
        match o {
            "relative" => read.relative = true,
            "big" => read.little_endian = false,
            "little" => read.little_endian = true,
            "string" => {
                let base = opts.get(i + 1).copied().unwrap_or("dec");
                read.string_base = Some(match base {
                    "hex" => 16,
                    "dec" => 10,
                    "oct" => 8,
                    other => return Err(format!("invalid string base '{other}'")),
                });
                if opts.get(i + 1).is_some() {
                    i += 1;
                }
            }
            "hex" | "dec" | "oct" if read.string_base.is_some() => {}
            "dce" => return Err("dce (DCERPC byte order) not supported yet".to_string()),
            _ => {
                if let Some(m) = o.strip_prefix("bitmask") {
                    let m = num_i64(m)?;
                    if m <= 0 {
                        return Err(format!("invalid bitmask {m}"));
                    }
                    read.bitmask = Some(m as u64);
                } else {
                    rest.push(o);
                }
            }
        }
        i += 1;
    }
    let max = if read.string_base.is_some() { 23 } else { 8 };
    if read.nbytes as usize > max {
        return Err(format!("nbytes {} out of range 0-{max}", read.nbytes));
    }
    Ok(rest)
}

fn nbytes(s: &str) -> Result<u8, String> {
    let n = num_i64(s)?;
    u8::try_from(n).map_err(|_| format!("invalid nbytes {n}"))
}

pub fn parse_byte_test(v: &str) -> Result<ByteTest, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 4 {
        return Err("expected nbytes,operator,value,offset".to_string());
    }
    let (negated, op) = match parts[1].strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, parts[1]),
    };
    let op = match op {
        "<" => ByteOp::Lt,
        ">" => ByteOp::Gt,
        "<=" => ByteOp::Le,
        ">=" => ByteOp::Ge,
        "=" => ByteOp::Eq,
        "&" => ByteOp::And,
        "^" => ByteOp::Or,
        other => return Err(format!("invalid operator '{other}'")),
    };
    let value = num_i64(parts[2])?;
    let offset = num_i64(parts[3])?;
    let mut read = ByteRead {
        nbytes: nbytes(parts[0])?,
        offset: i32::try_from(offset).map_err(|_| format!("offset {offset} out of range"))?,
        relative: false,
        little_endian: false,
        string_base: None,
        bitmask: None,
    };
    let rest = byte_common(&mut read, &parts[4..])?;
    if let Some(o) = rest.first() {
        return Err(format!("unknown byte_test option '{o}'"));
    }
    Ok(ByteTest { read, op, negated, value: value as u64 })
}

pub fn parse_byte_jump(v: &str) -> Result<ByteJump, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 2 {
        return Err("expected nbytes,offset".to_string());
    }
    let offset = num_i64(parts[1])?;
    let mut read = ByteRead {
        nbytes: nbytes(parts[0])?,
        offset: i32::try_from(offset).map_err(|_| format!("offset {offset} out of range"))?,
        relative: false,
        little_endian: false,
        string_base: None,
        bitmask: None,
    };
    let rest = byte_common(&mut read, &parts[2..])?;
    let mut j = ByteJump { read, multiplier: 1, align: false, from_beginning: false, from_end: false, post_offset: 0 };
    for o in rest {
        if let Some(m) = o.strip_prefix("multiplier") {
            let m = num_i64(m)?;
            if !(1..=65535).contains(&m) {
                return Err(format!("invalid multiplier {m}"));
            }
            j.multiplier = m as u64;
        } else if let Some(p) = o.strip_prefix("post_offset") {
            j.post_offset = num_i64(p)?;
        } else {
            match o {
                "align" => j.align = true,
                "from_beginning" => j.from_beginning = true,
                "from_end" => j.from_end = true,
                other => return Err(format!("unknown byte_jump option '{other}'")),
            }
        }
    }
    if j.from_beginning && j.from_end {
        return Err("from_beginning and from_end together".to_string());
    }
    Ok(j)
}

/// One `flowbits` operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowbitOp {
    Set(Arc<str>),
    Unset(Arc<str>),
    Toggle(Arc<str>),
    /// `isset:a|b` (any) or `isset:a&b` (all).
    IsSet(Vec<Arc<str>>, bool),
    /// `isnotset:a|b` (any not set) or `isnotset:a&b` (all not set).
    IsNotSet(Vec<Arc<str>>, bool),
}

impl FlowbitOp {
    pub fn is_read(&self) -> bool {
        matches!(self, FlowbitOp::IsSet(..) | FlowbitOp::IsNotSet(..))
    }
}

/// Parses `flowbits:cmd[,name]`. `Ok(None)` is `noalert`.
pub fn parse_flowbits(v: &str) -> Result<Option<FlowbitOp>, String> {
    let (cmd, name) = match v.split_once(',') {
        Some((c, n)) => (c.trim(), Some(n.trim())),
        None => (v.trim(), None),
    };
    if cmd == "noalert" {
        return match name {
            None => Ok(None),
            Some(_) => Err("noalert takes no name".to_string()),
        };
    }
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| format!("flowbits {cmd} needs a name"))?;
    let valid = |n: &str| !n.is_empty() && !n.contains(char::is_whitespace);
    let (names, all): (Vec<&str>, bool) = if name.contains('&') {
        (name.split('&').map(str::trim).collect(), true)
    } else {
        (name.split('|').map(str::trim).collect(), false)
    };
    if names.iter().any(|n| !valid(n)) {
        return Err(format!("invalid flowbit name '{name}'"));
    }
    let single = || -> Result<Arc<str>, String> {
        if names.len() != 1 {
            return Err(format!("flowbits {cmd} takes one name"));
        }
        Ok(Arc::from(names[0]))
    };
    Ok(Some(match cmd {
        "set" => FlowbitOp::Set(single()?),
        "unset" => FlowbitOp::Unset(single()?),
        "toggle" => FlowbitOp::Toggle(single()?),
        "isset" => FlowbitOp::IsSet(names.into_iter().map(Arc::from).collect(), all),
        "isnotset" => FlowbitOp::IsNotSet(names.into_iter().map(Arc::from).collect(), all),
        other => return Err(format!("unknown flowbits command '{other}'")),
    }))
}

/// `threshold` types; `detection_filter` is its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    DetectionFilter,
}

/// What a threshold counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
    ByFlow,
}

/// `threshold: type T, track X, count N, seconds S` or `detection_filter: track X, count N, seconds S`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

pub fn parse_threshold(v: &str, detection_filter: bool) -> Result<Threshold, String> {
    let mut kind = detection_filter.then_some(ThresholdKind::DetectionFilter);
    let (mut track, mut count, mut seconds) = (None, None, None);
    for part in v.split(',') {
        let p = part.trim();
        let (k, val) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "type" if !detection_filter => {
                kind = Some(match val {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    other => return Err(format!("invalid threshold type '{other}'")),
                })
            }
            "track" => {
                track = Some(match val {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    "by_flow" => Track::ByFlow,
                    other => return Err(format!("invalid track '{other}'")),
                })
            }
            "count" => count = Some(val.parse::<u32>().map_err(|_| format!("invalid count '{val}'"))?),
            "seconds" => seconds = Some(val.parse::<u32>().map_err(|_| format!("invalid seconds '{val}'"))?),
            "" => {}
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let kind = kind.ok_or("missing type")?;
    let track = track.ok_or("missing track")?;
    let count = count.ok_or("missing count")?;
    let seconds = seconds.ok_or("missing seconds")?;
    if count == 0 && kind != ThresholdKind::DetectionFilter {
        return Err("count must be greater than 0".to_string());
    }
    Ok(Threshold { kind, track, count, seconds })
}

/// TCP `flags:[modifier]flags[,mask]` (`F S R P A U C E`, `0` none; modifiers `+` all of them
/// and any other, `*` any of them, `!` none of them; default: exactly these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlags {
    pub flags: u8,
    pub mask: u8,
    pub modifier: Option<char>,
}

fn flag_bits(s: &str) -> Result<u8, String> {
    let mut v = 0u8;
    for c in s.chars() {
        v |= match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            other => return Err(format!("invalid tcp flag '{other}'")),
        };
    }
    Ok(v)
}

pub fn parse_flags(v: &str) -> Result<TcpFlags, String> {
    let (f, mask) = match v.split_once(',') {
        Some((f, m)) => (f.trim(), flag_bits(m.trim())?),
        None => (v.trim(), 0),
    };
    let (modifier, f) = match f.chars().next() {
        Some(c @ ('+' | '*' | '!')) => (Some(c), &f[1..]),
        _ => match f.chars().last() {
            Some(c @ ('+' | '*' | '!')) => (Some(c), &f[..f.len() - 1]),
            _ => (None, f),
        },
    };
    if f.is_empty() {
        return Err("no flags".to_string());
    }
    Ok(TcpFlags { flags: flag_bits(f)?, mask, modifier })
}

impl TcpFlags {
    pub fn matches(&self, pkt: u8) -> bool {
        let v = pkt & !self.mask;
        match self.modifier {
            None => v == self.flags,
            Some('+') => v & self.flags == self.flags,
            Some('*') => v & self.flags != 0,
            Some('!') => v & self.flags == 0,
            _ => false,
        }
    }
}

/// `itype`, `icode`, `ttl`, `ip_proto` and the like: an [`IntCond`] on a header field.
pub fn parse_u8_cond(v: &str) -> Result<IntCond, String> {
    IntCond::parse(v, u8::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_rewrite_the_buffer() {
        assert_eq!(transform(b"evil.com", &[Transform::DotPrefix]).as_ref(), b".evil.com");
        assert_eq!(transform(b"A  b\tC", &[Transform::CompressWhitespace]).as_ref(), b"A b C");
        assert_eq!(transform(b"A  b\tC", &[Transform::StripWhitespace, Transform::ToLowercase]).as_ref(), b"abc");
        assert_eq!(transform(b"%41+b%zz%4", &[Transform::UrlDecode]).as_ref(), b"A b%zz%4");
        assert_eq!(transform(b"abc", &[Transform::ToMd5]).len(), 16);
    }

    #[test]
    fn byte_test_reads_binary_and_string_numbers() {
        let t = parse_byte_test("2,>,0x100,1").unwrap();
        assert_eq!(t.read.read(b"\x00\x01\x01\x00", 0), Some((0x101, 3)));
        assert!(t.test(0x101));
        let t = parse_byte_test("3,=,123,0,string,dec").unwrap();
        assert_eq!(t.read.read(b"123x", 0), Some((123, 3)));
        let t = parse_byte_test("2,=,1,0,little").unwrap();
        assert_eq!(t.read.read(b"\x01\x00", 0), Some((1, 2)));
        assert!(parse_byte_test("2,=,1").is_err());
        assert!(parse_byte_test("9,=,1,0").is_err());
        // nbytes 0 with string: the digits at the offset
        let t = parse_byte_test("0,>,100,0,string,dec").unwrap();
        assert_eq!(t.read.read(b"1234 x", 0), Some((1234, 4)));
        assert_eq!(t.read.read(b"x", 0), None);
        let t = parse_byte_test("1,!&,0x80,0").unwrap();
        assert!(t.test(0x7f) && !t.test(0x80));
    }

    #[test]
    fn byte_jump_moves_past_the_length_field() {
        let j = parse_byte_jump("1,0,relative").unwrap();
        // length 2 at 0, then "ab", then "cd"
        assert_eq!(j.jump(b"\x02abcd", 0), Some(3));
        let j = parse_byte_jump("1,0,from_beginning,post_offset 1").unwrap();
        assert_eq!(j.jump(b"\x02abcd", 0), Some(3));
        assert_eq!(parse_byte_jump("1,0").unwrap().jump(b"\x09ab", 0), None);
        // nbytes 0: only the post_offset moves
        assert_eq!(parse_byte_jump("0,0,relative,post_offset -2").unwrap().jump(b"abcdef", 5), Some(3));
    }

    #[test]
    fn flowbits_and_thresholds_parse() {
        assert_eq!(parse_flowbits("noalert").unwrap(), None);
        assert_eq!(parse_flowbits("set, a.b").unwrap(), Some(FlowbitOp::Set(Arc::from("a.b"))));
        assert_eq!(
            parse_flowbits("isset,a|b").unwrap(),
            Some(FlowbitOp::IsSet(vec![Arc::from("a"), Arc::from("b")], false))
        );
        assert!(parse_flowbits("set").is_err());
        assert!(parse_flowbits("frob,x").is_err());
        let t = parse_threshold("type limit, track by_src, count 1, seconds 60", false).unwrap();
        assert_eq!((t.kind, t.track, t.count, t.seconds), (ThresholdKind::Limit, Track::BySrc, 1, 60));
        assert!(parse_threshold("type limit, count 1, seconds 60", false).is_err());
        let d = parse_threshold("track by_dst, count 5, seconds 10", true).unwrap();
        assert_eq!(d.kind, ThresholdKind::DetectionFilter);
    }

    #[test]
    fn tcp_flags_modifiers() {
        let syn = parse_flags("S").unwrap();
        assert!(syn.matches(0x02) && !syn.matches(0x12));
        let syn_any = parse_flags("S+").unwrap();
        assert!(syn_any.matches(0x12));
        let masked = parse_flags("S,12").unwrap();
        assert!(masked.matches(0x02 | 0x80));
        assert!(parse_flags("SA*").unwrap().matches(0x10));
        assert!(parse_flags("!R").unwrap().matches(0x10));
        assert!(parse_flags("X").is_err());
    }
}
