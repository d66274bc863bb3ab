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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// `header_lowercase`: the header names of a header buffer (`Name: value` lines)
    /// lowercased, the values kept.
    HeaderLowercase,
    /// `strip_pseudo_headers`: the lines of a header buffer that start with `:` (HTTP/2
    /// pseudo-headers) removed.
    StripPseudoHeaders,
    /// `from_base64[:bytes N][, offset N][, mode rfc4648|rfc2045|strict]`: the buffer from
    /// `offset`, at most `bytes` of it (0: all), base64-decoded.
    FromBase64 {
        bytes: u32,
        offset: u32,
        mode: Base64Mode,
    },
    /// `gunzip[:max-size N]`: the buffer gzip-decompressed, at most `max_size` bytes of output
    /// (what decompresses before an error or the limit is kept).
    Gunzip {
        max_size: u32,
    },
    /// `zlib_deflate[:max-size N]`: the buffer zlib-decompressed, as `gunzip`.
    ZlibDeflate {
        max_size: u32,
    },
    /// `xor:"<hex key>"`: every byte XORed with the key's byte at its position modulo the key
    /// length.
    Xor(Arc<[u8]>),
    /// `pcrexform:"<regex>"`: the regex's first capture group (or its whole match when it has
    /// none); the buffer unchanged when it does not match.
    PcreXform(Arc<PcreXform>),
}

/// The regex of a `pcrexform` (compared and hashed by its source text).
#[derive(Debug)]
pub struct PcreXform {
    pub source: String,
    regex: regex::bytes::Regex,
}

impl PartialEq for PcreXform {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for PcreXform {}
impl std::hash::Hash for PcreXform {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.source.hash(h);
    }
}

/// Parses `xor`'s value: an even number of hex digits (1 to 255 key bytes).
pub fn parse_xor(v: &str) -> Result<Transform, String> {
    let v = v.trim();
    if v.is_empty() || !v.len().is_multiple_of(2) || v.len() > 510 {
        return Err(format!("xor key '{v}' must be 1 to 255 bytes in hex"));
    }
    let key = (0..v.len())
        .step_by(2)
        .map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| format!("xor key '{v}' is not hex"))?;
    Ok(Transform::Xor(key.into()))
}

/// Parses `pcrexform`'s value: a regex (no slashes, no flags) with at least one capture group.
pub fn parse_pcrexform(v: &str) -> Result<Transform, String> {
    let regex = super::pcre::compile_automaton(v, super::pcre::PcreFlags::default())?;
    if regex.captures_len() < 2 {
        return Err(format!("pcrexform regex '{v}' has no capture group"));
    }
    Ok(Transform::PcreXform(Arc::new(PcreXform { source: v.to_string(), regex })))
}

/// Suricata's default output limit of `gunzip` and `zlib_deflate`.
pub const DECOMPRESS_DEFAULT_MAX_SIZE: u32 = 1024;
/// Largest `max-size` accepted (16 MiB, as Suricata).
const DECOMPRESS_MAX_MAX_SIZE: u64 = 16 << 20;

/// Parses the value of `gunzip`/`zlib_deflate` (`max-size N`, N with an optional kb/mb unit).
pub fn parse_decompress(kw: &str, v: Option<&str>) -> Result<Transform, String> {
    let mut max_size = DECOMPRESS_DEFAULT_MAX_SIZE;
    if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
        let Some(n) = v.strip_prefix("max-size").map(str::trim).filter(|n| !n.is_empty()) else {
            return Err(format!("invalid {kw} option '{v}' (max-size N)"));
        };
        let lower = n.to_ascii_lowercase();
        let (digits, mult) = match lower.trim_end_matches('b').trim_end() {
            d if d.ends_with('k') => (d[..d.len() - 1].trim_end().to_string(), 1024u64),
            d if d.ends_with('m') => (d[..d.len() - 1].trim_end().to_string(), 1 << 20),
            d if d.ends_with('g') => (d[..d.len() - 1].trim_end().to_string(), 1 << 30),
            d => (d.to_string(), 1),
        };
        let size = digits.parse::<u64>().ok().and_then(|d| d.checked_mul(mult));
        max_size = match size {
            Some(s) if (1..=DECOMPRESS_MAX_MAX_SIZE).contains(&s) => s as u32,
            _ => return Err(format!("invalid {kw} max-size '{n}' (1 to 16 MiB)")),
        };
    }
    Ok(if kw == "gunzip" { Transform::Gunzip { max_size } } else { Transform::ZlibDeflate { max_size } })
}

/// Decompresses `data` with `reader` into at most `max_size` bytes; a decompression error
/// keeps what came out before it.
fn decompress_bounded(mut reader: impl std::io::Read, max_size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < max_size as usize {
        let want = chunk.len().min(max_size as usize - out.len());
        match reader.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}

/// How a base64 decoder treats characters outside the alphabet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base64Mode {
    /// Decoding stops at the first one (Suricata's default).
    Rfc4648,
    /// They are skipped (MIME).
    Rfc2045,
    /// The whole decoding fails.
    Strict,
}

/// Decodes base64 as Suricata does: a trailing partial group yields its whole bytes, `=` ends
/// the data, other characters outside the alphabet as `mode` says.
pub fn base64_decode(data: &[u8], mode: Base64Mode) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    let (mut acc, mut nbits) = (0u32, 0u32);
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => match mode {
                Base64Mode::Rfc4648 => break,
                Base64Mode::Rfc2045 => continue,
                Base64Mode::Strict => return Vec::new(),
            },
        };
        acc = (acc << 6) | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    out
}

/// Parses the value of `from_base64` (`None`: the keyword without a value).
pub fn parse_from_base64(v: Option<&str>) -> Result<Transform, String> {
    let (mut bytes, mut offset, mut mode) = (0u32, 0u32, Base64Mode::Rfc4648);
    for part in v.unwrap_or("").split(',') {
        let p = part.trim();
        let (k, val) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "" => {}
            "bytes" => bytes = val.parse().map_err(|_| format!("invalid bytes '{val}'"))?,
            "offset" => offset = val.parse().map_err(|_| format!("invalid offset '{val}'"))?,
            "mode" => {
                mode = match val {
                    "rfc4648" => Base64Mode::Rfc4648,
                    "rfc2045" => Base64Mode::Rfc2045,
                    "strict" => Base64Mode::Strict,
                    other => return Err(format!("invalid mode '{other}' (rfc4648, rfc2045, strict)")),
                }
            }
            other => return Err(format!("unknown from_base64 option '{other}'")),
        }
    }
    Ok(Transform::FromBase64 { bytes, offset, mode })
}

/// `base64_decode[:bytes N][, offset N][, relative]`: decodes part of the buffer for
/// `base64_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base64Decode {
    /// At most this many input bytes (`None`: to the end of the buffer).
    pub bytes: Option<u32>,
    pub offset: u32,
    pub relative: bool,
}

impl Base64Decode {
    /// The decoded data, from the start of the buffer or (`relative`) from `base`.
    pub fn decode(&self, buf: &[u8], base: usize) -> Vec<u8> {
        let start = if self.relative { base } else { 0 }.saturating_add(self.offset as usize);
        let Some(rest) = buf.get(start..) else { return Vec::new() };
        let end = self.bytes.map_or(rest.len(), |b| rest.len().min(b as usize));
        base64_decode(&rest[..end], Base64Mode::Rfc2045)
    }
}

pub fn parse_base64_decode(v: Option<&str>) -> Result<Base64Decode, String> {
    let mut d = Base64Decode { bytes: None, offset: 0, relative: false };
    for part in v.unwrap_or("").split(',') {
        let p = part.trim();
        let (k, val) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "" => {}
            "bytes" => {
                let n: u32 = val.parse().map_err(|_| format!("invalid bytes '{val}'"))?;
                if n == 0 {
                    return Err("bytes must be above 0".to_string());
                }
                d.bytes = Some(n);
            }
            "offset" => d.offset = val.parse().map_err(|_| format!("invalid offset '{val}'"))?,
            "relative" if val.is_empty() => d.relative = true,
            other => return Err(format!("unknown base64_decode option '{other}'")),
        }
    }
    Ok(d)
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
            "header_lowercase" => Transform::HeaderLowercase,
            "strip_pseudo_headers" => Transform::StripPseudoHeaders,
            _ => return None,
        })
    }

    pub fn apply(&self, data: &[u8]) -> Vec<u8> {
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
            Transform::HeaderLowercase => {
                let mut v = Vec::with_capacity(data.len());
                let mut in_name = true;
                for &c in data {
                    if c == b'\n' {
                        in_name = true;
                    } else if c == b':' {
                        in_name = false;
                    }
                    v.push(if in_name { c.to_ascii_lowercase() } else { c });
                }
                v
            }
            Transform::StripPseudoHeaders => {
                let mut v = Vec::with_capacity(data.len());
                for line in data.split_inclusive(|&c| c == b'\n') {
                    if line.first() != Some(&b':') {
                        v.extend_from_slice(line);
                    }
                }
                v
            }
            &Transform::FromBase64 { bytes, offset, mode } => {
                let rest = data.get(offset as usize..).unwrap_or_default();
                let end = if bytes == 0 { rest.len() } else { rest.len().min(bytes as usize) };
                base64_decode(&rest[..end], mode)
            }
            &Transform::Gunzip { max_size } => decompress_bounded(flate2::bufread::GzDecoder::new(data), max_size),
            &Transform::ZlibDeflate { max_size } => {
                decompress_bounded(flate2::bufread::ZlibDecoder::new(data), max_size)
            }
            Transform::Xor(key) => data.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k).collect(),
            Transform::PcreXform(x) => match x.regex.captures(data) {
                Some(c) => c.get(1).or_else(|| c.get(0)).map_or_else(Vec::new, |m| m.as_bytes().to_vec()),
                None => data.to_vec(),
            },
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
    /// `dce`: the byte order of the inspected DCERPC PDU (its data representation); big
    /// endian outside a DCERPC transaction.
    pub dce: bool,
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
                let little = if self.dce { DCE_LITTLE_ENDIAN.with(std::cell::Cell::get) } else { self.little_endian };
                if little {
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
    /// The value is this `byte_extract` variable of the rule (index).
    pub value_var: Option<u8>,
}

impl ByteTest {
    pub fn test(&self, v: u64) -> bool {
        self.test_against(v, self.value)
    }

    /// The comparison with `value` in place of the rule's (a variable's value).
    pub fn test_against(&self, v: u64, value: u64) -> bool {
        let r = match self.op {
            ByteOp::Lt => v < value,
            ByteOp::Gt => v > value,
            ByteOp::Le => v <= value,
            ByteOp::Ge => v >= value,
            ByteOp::Eq => v == value,
            ByteOp::And => v & value != 0,
            ByteOp::Or => v ^ value != 0,
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
            format!("'{t}' is not a number: byte_extract variables are not supported here yet (or it is not one)")
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

thread_local! {
    /// The byte order of the DCERPC PDU under inspection, for `dce` reads (set per inspection
    /// by the matcher).
    static DCE_LITTLE_ENDIAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets the byte order `dce` reads use on this thread (the inspected DCERPC PDU's).
pub fn set_dce_little_endian(little: bool) {
    DCE_LITTLE_ENDIAN.with(|c| c.set(little));
}

/// Shared trailing options of byte_test/byte_jump. Returns the unconsumed options.
fn byte_common<'a>(read: &mut ByteRead, opts: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let mut rest = Vec::new();
    let mut i = 0;
    let mut endian_given = false;
    while i < opts.len() {
        let o = opts[i];
        match o {
            "relative" => read.relative = true,
            "big" | "little" if read.dce => return Err("dce cannot be combined with big or little".to_string()),
            "big" => {
                read.little_endian = false;
                endian_given = true;
            }
            "little" => {
                read.little_endian = true;
                endian_given = true;
            }
            "string" => {
                // the base follows, decimal when it does not
                read.string_base = Some(match opts.get(i + 1).copied() {
                    Some("hex") => 16,
                    Some("oct") => 8,
                    _ => 10,
                });
                if matches!(opts.get(i + 1).copied(), Some("hex" | "dec" | "oct")) {
                    i += 1;
                }
            }
            "hex" | "dec" | "oct" if read.string_base.is_some() => {}
            "dce" if endian_given => return Err("dce cannot be combined with big or little".to_string()),
            "dce" => read.dce = true,
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
    if read.dce && read.string_base.is_some() {
        return Err("dce cannot be combined with string".to_string());
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

/// Parses `byte_test`; `var` resolves a variable name used as the value.
pub fn parse_byte_test_with(v: &str, var: &dyn Fn(&str) -> Option<u8>) -> Result<ByteTest, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    match parts.get(2).and_then(|n| var(n)) {
        Some(idx) => {
            let mut p = parts.clone();
            p[2] = "0";
            let mut t = parse_byte_test(&p.join(","))?;
            t.value_var = Some(idx);
            Ok(t)
        }
        None => parse_byte_test(v),
    }
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
        dce: false,
        string_base: None,
        bitmask: None,
    };
    let rest = byte_common(&mut read, &parts[4..])?;
    if let Some(o) = rest.first() {
        return Err(format!("unknown byte_test option '{o}'"));
    }
    Ok(ByteTest { read, op, negated, value: value as u64, value_var: None })
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
        dce: false,
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

/// `byte_extract:nbytes,offset,name[,relative][,multiplier n][,big|little][,string[,hex|dec|oct]]
/// [,align 2|4][,bitmask m]`: reads a number into a rule variable (`var`, an index into the
/// rule's variables) and moves the detection offset past the bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteExtract {
    pub read: ByteRead,
    pub multiplier: u64,
    pub align: u64,
    pub var: u8,
}

impl ByteExtract {
    /// The value and the position after the bytes read.
    pub fn extract(&self, buf: &[u8], base: usize) -> Option<(u64, usize)> {
        let (v, after) = self.read.read(buf, if self.read.relative { base } else { 0 })?;
        let mut v = v.checked_mul(self.multiplier)?;
        if self.align > 1 && v % self.align != 0 {
            v += self.align - v % self.align;
        }
        Some((v, after))
    }
}

/// Parses `byte_extract`; returns it (with `var` 0) and the variable's name.
pub fn parse_byte_extract(v: &str) -> Result<(ByteExtract, String), String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 3 {
        return Err("expected nbytes,offset,name".to_string());
    }
    let offset = num_i64(parts[1])?;
    let name = parts[2];
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || name.as_bytes()[0].is_ascii_digit()
    {
        return Err(format!("invalid variable name '{name}'"));
    }
    let mut read = ByteRead {
        nbytes: nbytes(parts[0])?,
        offset: i32::try_from(offset).map_err(|_| format!("offset {offset} out of range"))?,
        relative: false,
        little_endian: false,
        dce: false,
        string_base: None,
        bitmask: None,
    };
    if read.nbytes == 0 {
        return Err("nbytes must be above 0".to_string());
    }
    let rest = byte_common(&mut read, &parts[3..])?;
    let mut e = ByteExtract { read, multiplier: 1, align: 0, var: 0 };
    for o in rest {
        if let Some(m) = o.strip_prefix("multiplier") {
            let m = num_i64(m)?;
            if !(1..=65535).contains(&m) {
                return Err(format!("invalid multiplier {m}"));
            }
            e.multiplier = m as u64;
        } else if let Some(a) = o.strip_prefix("align") {
            e.align = match num_i64(a)? {
                2 => 2,
                4 => 4,
                other => return Err(format!("invalid align {other} (2 or 4)")),
            };
        } else {
            return Err(format!("unknown byte_extract option '{o}'"));
        }
    }
    Ok((e, name.to_string()))
}

/// `byte_math` operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
    Shl,
    Shr,
}

/// `byte_math:bytes n|var, offset n, oper +|-|*|/|<<|>>, rvalue n|var, result name
/// [, relative] [, endian big|little] [, string hex|dec|oct] [, bitmask m]`: reads a number,
/// combines it with `rvalue` and stores the result in a rule variable (`var`); the detection
/// offset moves past the bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteMath {
    pub read: ByteRead,
    /// `bytes` is this variable of the rule (index).
    pub nbytes_var: Option<u8>,
    pub oper: MathOp,
    pub rvalue: u64,
    /// `rvalue` is this variable of the rule (index).
    pub rvalue_var: Option<u8>,
    pub var: u8,
}

impl ByteMath {
    /// The result and the position after the bytes read, with the variables' values given by
    /// `var`; `None` when out of the buffer, not a number or a division by zero.
    pub fn compute(&self, buf: &[u8], base: usize, var: &dyn Fn(u8) -> u64) -> Option<(u64, usize)> {
        let mut read = self.read;
        if let Some(i) = self.nbytes_var {
            let n = var(i);
            let max = if read.string_base.is_some() { 10 } else { 4 };
            if n == 0 || n > max {
                return None;
            }
            read.nbytes = n as u8;
        }
        let (v, after) = read.read(buf, if read.relative { base } else { 0 })?;
        let r = self.rvalue_var.map_or(self.rvalue, var);
        let out = match self.oper {
            MathOp::Add => v.wrapping_add(r),
            MathOp::Sub => v.wrapping_sub(r),
            MathOp::Mul => v.wrapping_mul(r),
            MathOp::Div => v.checked_div(r)?,
            MathOp::Shl => v.checked_shl(u32::try_from(r).ok()?).unwrap_or(0),
            MathOp::Shr => v.checked_shr(u32::try_from(r).ok()?).unwrap_or(0),
        };
        Some((out, after))
    }
}

/// Parses `byte_math`; `var` resolves the variable names the rule defined before. Returns it
/// (with `var` 0) and the result variable's name.
pub fn parse_byte_math(v: &str, var: &dyn Fn(&str) -> Option<u8>) -> Result<(ByteMath, String), String> {
    let mut read = ByteRead {
        nbytes: 0,
        offset: 0,
        relative: false,
        little_endian: false,
        dce: false,
        string_base: None,
        bitmask: None,
    };
    let (mut bytes, mut offset, mut oper, mut rvalue, mut result) = (None, None, None, None, None);
    let mut nbytes_var = None;
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = match part.split_once(char::is_whitespace) {
            Some((k, val)) => (k, val.trim()),
            None => (part, ""),
        };
        match k {
            "bytes" => bytes = Some(val),
            "offset" => offset = Some(num_i64(val)?),
            "oper" => {
                oper = Some(match val {
                    "+" => MathOp::Add,
                    "-" => MathOp::Sub,
                    "*" => MathOp::Mul,
                    "/" => MathOp::Div,
                    "<<" => MathOp::Shl,
                    ">>" => MathOp::Shr,
                    o => return Err(format!("unknown oper '{o}' (+, -, *, /, <<, >>)")),
                })
            }
            "rvalue" => rvalue = Some(val),
            "result" => result = Some(val),
            "relative" => read.relative = true,
            "endian" => match val {
                "big" => read.little_endian = false,
                "little" => read.little_endian = true,
                "dce" => read.dce = true,
                e => return Err(format!("unknown endian '{e}'")),
            },
            "string" => {
                read.string_base = Some(match val {
                    "hex" => 16,
                    "oct" => 8,
                    "dec" => 10,
                    b => return Err(format!("unknown string base '{b}' (hex, dec, oct)")),
                })
            }
            "dce" => read.dce = true,
            "bitmask" => {
                let m = num_i64(val)?;
                if m <= 0 {
                    return Err(format!("invalid bitmask {m}"));
                }
                read.bitmask = Some(m as u64);
            }
            o => return Err(format!("unknown byte_math option '{o}'")),
        }
    }
    let bytes = bytes.ok_or("bytes missing")?;
    match var(bytes) {
        Some(i) => nbytes_var = Some(i),
        None => {
            read.nbytes = nbytes(bytes)?;
            let max = if read.string_base.is_some() { 10 } else { 4 };
            if read.nbytes == 0 || read.nbytes > max {
                return Err(format!("bytes {} out of range 1-{max}", read.nbytes));
            }
        }
    }
    let offset = offset.ok_or("offset missing")?;
    read.offset = i32::try_from(offset).map_err(|_| format!("offset {offset} out of range"))?;
    let oper = oper.ok_or("oper missing")?;
    let rvalue = rvalue.ok_or("rvalue missing")?;
    let (rvalue, rvalue_var) = match var(rvalue) {
        Some(i) => (0, Some(i)),
        None => (u64::try_from(num_i64(rvalue)?).map_err(|_| format!("invalid rvalue '{rvalue}'"))?, None),
    };
    let name = result.ok_or("result missing")?;
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || name.as_bytes()[0].is_ascii_digit()
    {
        return Err(format!("invalid variable name '{name}'"));
    }
    Ok((ByteMath { read, nbytes_var, oper, rvalue, rvalue_var, var: 0 }, name.to_string()))
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

/// The operand of a `flowint` operation: a number or another flowint of the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowintVal {
    Num(u32),
    Var(Arc<str>),
}

/// A `flowint` comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowintCmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One `flowint` operation (`flowint:name,op[,value]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowintOp {
    Set(Arc<str>, FlowintVal),
    Add(Arc<str>, FlowintVal),
    Sub(Arc<str>, FlowintVal),
    Cmp(Arc<str>, FlowintCmp, FlowintVal),
    IsSet(Arc<str>),
    IsNotSet(Arc<str>),
}

impl FlowintOp {
    /// A condition (as opposed to a modifier).
    pub fn is_read(&self) -> bool {
        matches!(self, FlowintOp::Cmp(..) | FlowintOp::IsSet(_) | FlowintOp::IsNotSet(_))
    }
}

fn var_name(n: &str) -> Result<Arc<str>, String> {
    let n = n.trim();
    if n.is_empty() || n.contains(char::is_whitespace) {
        return Err(format!("invalid variable name '{n}'"));
    }
    Ok(Arc::from(n))
}

/// Parses `flowint:name,op[,value]` (ops `=`, `+`, `-`, `==`, `!=`, `<`, `<=`, `>`, `>=`,
/// `isset`, `notset`/`isnotset`; the value a number or another flowint's name).
pub fn parse_flowint(v: &str) -> Result<FlowintOp, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let name = var_name(parts.first().copied().unwrap_or(""))?;
    let op = parts.get(1).copied().ok_or("flowint needs 'name,operator[,value]'")?;
    let value = || -> Result<FlowintVal, String> {
        if parts.len() != 3 {
            return Err(format!("flowint operator '{op}' needs one value"));
        }
        let t = parts[2];
        if t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse::<u32>().map(FlowintVal::Num).map_err(|_| format!("flowint value '{t}' out of range (u32)"))
        } else {
            var_name(t).map(FlowintVal::Var)
        }
    };
    let no_value = |op: FlowintOp| -> Result<FlowintOp, String> {
        if parts.len() > 2 {
            return Err("isset/notset take no value".to_string());
        }
        Ok(op)
    };
    Ok(match op {
        "=" => FlowintOp::Set(name, value()?),
        "+" => FlowintOp::Add(name, value()?),
        "-" => FlowintOp::Sub(name, value()?),
        "==" => FlowintOp::Cmp(name, FlowintCmp::Eq, value()?),
        "!=" => FlowintOp::Cmp(name, FlowintCmp::Ne, value()?),
        "<" => FlowintOp::Cmp(name, FlowintCmp::Lt, value()?),
        "<=" => FlowintOp::Cmp(name, FlowintCmp::Le, value()?),
        ">" => FlowintOp::Cmp(name, FlowintCmp::Gt, value()?),
        ">=" => FlowintOp::Cmp(name, FlowintCmp::Ge, value()?),
        "isset" => no_value(FlowintOp::IsSet(name))?,
        "notset" | "isnotset" => no_value(FlowintOp::IsNotSet(name))?,
        other => return Err(format!("unknown flowint operator '{other}'")),
    })
}

/// What an `xbits`/`hostbits` bit is stored with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XbitTrack {
    /// The packet's source host.
    IpSrc,
    /// The packet's destination host.
    IpDst,
    /// Both hosts (`hostbits` direction `both`).
    IpBoth,
    /// The pair of hosts, either way round.
    IpPair,
    /// The inspected transaction (`track tx`): the bit lives with the transaction of its flow.
    Tx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XbitCmd {
    Set,
    Unset,
    Toggle,
    IsSet,
    IsNotSet,
}

/// One `xbits` or `hostbits` operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XbitOp {
    pub cmd: XbitCmd,
    pub name: Arc<str>,
    pub track: XbitTrack,
    /// Lifetime of a set bit, seconds.
    pub expire: u32,
}

impl XbitOp {
    pub fn is_read(&self) -> bool {
        matches!(self.cmd, XbitCmd::IsSet | XbitCmd::IsNotSet)
    }
}

/// Suricata's default lifetime of an `xbits`/`hostbits` bit, seconds.
pub const XBITS_EXPIRE_DEFAULT: u32 = 30;

fn xbit_cmd(c: &str) -> Result<XbitCmd, String> {
    Ok(match c {
        "set" => XbitCmd::Set,
        "unset" => XbitCmd::Unset,
        "toggle" => XbitCmd::Toggle,
        "isset" => XbitCmd::IsSet,
        "isnotset" => XbitCmd::IsNotSet,
        other => return Err(format!("unknown command '{other}'")),
    })
}

/// Parses `xbits:cmd,name,track ip_src|ip_dst|ip_pair|tx[,expire N]`. `Ok(None)` is `noalert`.
pub fn parse_xbits(v: &str) -> Result<Option<XbitOp>, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts == ["noalert"] {
        return Ok(None);
    }
    let cmd = xbit_cmd(parts[0])?;
    let name = var_name(parts.get(1).copied().ok_or("xbits needs 'cmd,name,track ...'")?)?;
    let mut track = None;
    let mut expire = XBITS_EXPIRE_DEFAULT;
    for p in parts.iter().skip(2) {
        if let Some(t) = p.strip_prefix("track") {
            track = Some(match t.trim() {
                "ip_src" => XbitTrack::IpSrc,
                "ip_dst" => XbitTrack::IpDst,
                "ip_pair" => XbitTrack::IpPair,
                "tx" => XbitTrack::Tx,
                other => return Err(format!("unknown xbits track '{other}'")),
            });
        } else if let Some(e) = p.strip_prefix("expire") {
            expire = e.trim().parse().map_err(|_| format!("invalid expire '{}'", e.trim()))?;
            if expire == 0 {
                return Err("expire must be above 0".to_string());
            }
        } else {
            return Err(format!("unknown xbits option '{p}'"));
        }
    }
    let track = track.ok_or("xbits needs 'track ip_src|ip_dst|ip_pair|tx'")?;
    Ok(Some(XbitOp { cmd, name, track, expire }))
}

/// Parses `hostbits:cmd,name[,src|dst|both]` (default `src`). `Ok(None)` is `noalert`.
pub fn parse_hostbits(v: &str) -> Result<Option<XbitOp>, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts == ["noalert"] {
        return Ok(None);
    }
    let cmd = xbit_cmd(parts[0])?;
    let name = var_name(parts.get(1).copied().ok_or("hostbits needs 'cmd,name[,src|dst|both]'")?)?;
    let track = match parts.get(2).copied() {
        None | Some("src") => XbitTrack::IpSrc,
        Some("dst") => XbitTrack::IpDst,
        Some("both") => XbitTrack::IpBoth,
        Some(other) => return Err(format!("unknown hostbits direction '{other}' (src, dst or both)")),
    };
    if parts.len() > 3 {
        return Err("hostbits takes at most 'cmd,name,direction'".to_string());
    }
    Ok(Some(XbitOp { cmd, name, track, expire: XBITS_EXPIRE_DEFAULT }))
}

/// `threshold` types; `detection_filter` is its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    /// `type backoff`: alerts at the `count`-th match, then each time the count reaches the
    /// previous mark times `multiplier`.
    Backoff,
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

/// `threshold: type T, track X, count N, seconds S` (`type backoff`: `multiplier M`, no
/// seconds) or `detection_filter: track X, count N, seconds S`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
    /// `type backoff` only.
    pub multiplier: u32,
}

pub fn parse_threshold(v: &str, detection_filter: bool) -> Result<Threshold, String> {
    let mut kind = detection_filter.then_some(ThresholdKind::DetectionFilter);
    let (mut track, mut count, mut seconds, mut multiplier) = (None, None, None, None);
    for part in v.split(',') {
        let p = part.trim();
        let (k, val) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "type" if !detection_filter => {
                kind = Some(match val {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    "backoff" => ThresholdKind::Backoff,
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
            "multiplier" => multiplier = Some(val.parse::<u32>().map_err(|_| format!("invalid multiplier '{val}'"))?),
            "" => {}
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let kind = kind.ok_or("missing type")?;
    let track = track.ok_or("missing track")?;
    let count = count.ok_or("missing count")?;
    let (seconds, multiplier) = if kind == ThresholdKind::Backoff {
        if seconds.is_some() {
            return Err("type backoff takes no seconds".to_string());
        }
        match multiplier.ok_or("type backoff needs a multiplier")? {
            0 | 1 => return Err("multiplier must be above 1".to_string()),
            m => (0, m),
        }
    } else {
        if multiplier.is_some() {
            return Err("multiplier is for type backoff only".to_string());
        }
        (seconds.ok_or("missing seconds")?, 0)
    };
    if count == 0 && kind != ThresholdKind::DetectionFilter {
        return Err("count must be greater than 0".to_string());
    }
    Ok(Threshold { kind, track, count, seconds, multiplier })
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
    fn strip_pseudo_headers_drops_the_lines_starting_with_a_colon() {
        let t = Transform::from_keyword("strip_pseudo_headers");
        assert_eq!(t, Some(Transform::StripPseudoHeaders));
        let names = b"\r\n:status\r\naccept-ranges\r\n:x\r\n\r\n";
        assert_eq!(transform(names, &[Transform::StripPseudoHeaders]).as_ref(), b"\r\naccept-ranges\r\n\r\n");
        let headers = b":method: GET\r\nuser-agent: a:b\r\n:path: /";
        assert_eq!(transform(headers, &[Transform::StripPseudoHeaders]).as_ref(), b"user-agent: a:b\r\n");
        assert!(transform(b"", &[Transform::StripPseudoHeaders]).is_empty());
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(data);
        e.finish().unwrap_or_default()
    }

    #[test]
    fn gunzip_decompresses_up_to_its_max_size_and_keeps_a_truncated_stream_prefix() {
        let z = gzip(b"This is compressed\n");
        let t = parse_decompress("gunzip", None).unwrap();
        assert_eq!(t, Transform::Gunzip { max_size: DECOMPRESS_DEFAULT_MAX_SIZE });
        assert_eq!(transform(&z, std::slice::from_ref(&t)).as_ref(), b"This is compressed\n");
        let t8 = parse_decompress("gunzip", Some("max-size 8")).unwrap();
        assert_eq!(transform(&z, &[t8]).as_ref(), b"This is ");
        assert_eq!(parse_decompress("gunzip", Some("max-size 2kb")).unwrap(), Transform::Gunzip { max_size: 2048 });
        // not gzip, or cut: no panic, what decompressed is kept
        assert!(transform(b"plain text", std::slice::from_ref(&t)).is_empty());
        assert!(transform(&z[..z.len() / 2], std::slice::from_ref(&t)).len() <= 19);
        assert!(transform(&[], &[t]).is_empty());
        // zlib
        use std::io::Write as _;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(b"zlib data");
        let zl = e.finish().unwrap_or_default();
        let tz = parse_decompress("zlib_deflate", None).unwrap();
        assert_eq!(transform(&zl, &[tz]).as_ref(), b"zlib data");
        for bad in ["max-size 0", "max-size", "size 8", "max-size 17mb", "max-size x"] {
            assert!(parse_decompress("gunzip", Some(bad)).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn xor_and_pcrexform_transforms() {
        let uri = crate::app::http::normalize_uri(b"/get?data=%7Dk%BB%8Cze%BA%9B0y%BD%8Fhx%BB%9Anx%AD%8B");
        let x = parse_pcrexform(r"/get\?data=(.*)").unwrap();
        let key = parse_xor("0d0ac8ff").unwrap();
        assert_eq!(transform(&uri, &[x.clone(), key]).as_ref(), b"password=supersecret");
        // no match: unchanged
        assert_eq!(transform(b"/other", &[x]).as_ref(), b"/other");
        let line = parse_pcrexform(r"[a-zA-Z]+\s+(.*)\s+HTTP").unwrap();
        assert_eq!(transform(b"GET /a.jpg HTTP/1.1", &[line]).as_ref(), b"/a.jpg");
        assert!(parse_xor("0d0").is_err());
        assert!(parse_xor("zz").is_err());
        assert!(parse_xor("").is_err());
        assert!(parse_pcrexform("no-capture").is_err());
        assert!(parse_pcrexform("(unclosed").is_err());
    }
}
