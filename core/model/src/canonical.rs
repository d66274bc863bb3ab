//! Canonical JSON: the compact JSON of a value with the members of every object sorted by key
//! (byte order of the unescaped key, as `serde_json::Map` orders them) and a repeated key kept
//! once, with its last value.
//!
//! It is what [`crate::Event::compute_id`] hashes. Building a `serde_json::Value` tree and
//! writing it out gives the same bytes, but allocates every key and string of the record; here
//! a serializer writes the record once and reorders each object's members in place when it
//! ends. Scalars are written as `serde_json` writes them (numbers, and strings that need
//! escapes, are written by `serde_json` itself). What it does not handle (map keys that are not
//! strings) is an error, and the caller falls back to the `Value` tree.

use serde::ser::{self, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Why a value has no canonical form here (it did not serialize, or it has non-string keys).
#[derive(Debug)]
pub(crate) struct NotCanonical;

impl fmt::Display for NotCanonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no canonical JSON")
    }
}
impl std::error::Error for NotCanonical {}
impl ser::Error for NotCanonical {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotCanonical
    }
}

/// Writes the canonical JSON of `value` at the end of `out`; `scratch` is working memory
/// (both keep their capacity for the next call). On error `out` is left as it was.
///
/// With `drop_top_id`, a member `id` of the outermost object is left out.
pub(crate) fn write<T: Serialize + ?Sized>(
    value: &T,
    drop_top_id: bool,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Result<(), NotCanonical> {
    let start = out.len();
    scratch.members.clear();
    let mut w = Writer { out, members: &mut scratch.members, moved: &mut scratch.moved, depth: 0, drop_top_id };
    match value.serialize(&mut w) {
        Ok(()) => Ok(()),
        Err(e) => {
            w.out.truncate(start);
            Err(e)
        }
    }
}

/// Reusable working memory of [`write`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    members: Vec<Member>,
    moved: Vec<u8>,
}

/// One object member as written: its key (with quotes), whether the key has escapes, the
/// first eight bytes of an unescaped key (see [`key_prefix`]), and the whole member
/// (`"key":value`).
#[derive(Clone, Copy, Debug)]
struct Member {
    key: (usize, usize),
    escaped: bool,
    prefix: u64,
    out: (usize, usize),
}

/// The first eight bytes of an unescaped key (without its quotes) as a big-endian number,
/// zero-padded: keys whose prefixes differ compare as their prefixes do (an unescaped key has
/// no zero byte, so a shorter key that is a prefix of a longer one orders first).
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    members: &'a mut Vec<Member>,
    moved: &'a mut Vec<u8>,
    depth: usize,
    drop_top_id: bool,
}

/// Whether a string is written as is between quotes (no byte needs an escape: no control
/// character, `"` or `\\`). Eight bytes at a time (the classic "has a byte less than n" and
/// "has a zero byte" word tricks, exact for "any").
fn plain(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        // An 8-byte chunk always converts; a zero word would only send it the slow way.
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if control | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), NotCanonical> {
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s).map_err(|_| NotCanonical)
    }
}

/// A scalar as `serde_json` writes it.
fn put_json<T: Serialize>(out: &mut Vec<u8>, v: T) -> Result<(), NotCanonical> {
    serde_json::to_writer(&mut *out, &v).map_err(|_| NotCanonical)
}

impl Writer<'_> {
    fn begin_object(&mut self) -> Object {
        let o =
            Object { base: self.members.len(), start: self.out.len(), sorted: true, top: self.depth == 0, key: None };
        self.out.push(b'{');
        self.depth += 1;
        o
    }

    fn key_cmp(&self, a: &Member, b: &Member) -> Ordering {
        key_cmp(self.out, a, b)
    }

    /// Member text written after its key: records it.
    fn end_member(&mut self, o: &mut Object, from: usize, key: (usize, usize, bool)) {
        let (ks, ke, escaped) = key;
        if o.top && self.drop_top_id && &self.out[ks..ke] == b"\"id\"" {
            self.out.truncate(from);
            return;
        }
        let prefix = if escaped { 0 } else { key_prefix(&self.out[ks + 1..ke - 1]) };
        let m = Member { key: (ks, ke), escaped, prefix, out: (ks, self.out.len()) };
        if let Some(prev) = self.members[o.base..].last()
            && self.key_cmp(prev, &m) != Ordering::Less
        {
            o.sorted = false;
        }
        self.members.push(m);
    }

    fn end_object(&mut self, o: Object) {
        self.depth -= 1;
        if !o.sorted {
            self.reorder(o.base, o.start);
        }
        self.out.push(b'}');
        self.members.truncate(o.base);
    }

    /// Rewrites the members from `base` (written after `start`'s `{`) sorted by key, the last
    /// of repeated keys kept.
    fn reorder(&mut self, base: usize, start: usize) {
        let out = &*self.out;
        // Stable: of equal keys the later one stays last.
        self.members[base..].sort_by(|a, b| key_cmp(out, a, b));
        let n = self.members.len();
        for k in base..n.saturating_sub(1) {
            if key_cmp(out, &self.members[k], &self.members[k + 1]) == Ordering::Equal {
                self.members[k].out = (0, 0);
            }
        }
        self.moved.clear();
        self.moved.extend_from_slice(&self.out[start + 1..]);
        self.out.truncate(start + 1);
        let shift = start + 1;
        let mut first = true;
        for m in &self.members[base..] {
            if m.out == (0, 0) {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.out.extend_from_slice(&self.moved[m.out.0 - shift..m.out.1 - shift]);
        }
    }
}

/// Orders two members by their unescaped key.
fn key_cmp(out: &[u8], a: &Member, b: &Member) -> Ordering {
    if !a.escaped && !b.escaped && a.prefix != b.prefix {
        return a.prefix.cmp(&b.prefix);
    }
    let (ka, kb) = (&out[a.key.0..a.key.1], &out[b.key.0..b.key.1]);
    if !a.escaped && !b.escaped {
        // Without the quotes: `"a"` must come before `"a b"`.
        return bytes_cmp(&ka[1..ka.len() - 1], &kb[1..kb.len() - 1]);
    }
    let unescape = |k: &[u8]| serde_json::from_slice::<String>(k).unwrap_or_default();
    unescape(ka).cmp(&unescape(kb))
}

/// `a.cmp(b)` for short byte strings (keys) without a call to `memcmp`.
fn bytes_cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// An object being written.
struct Object {
    base: usize,
    start: usize,
    sorted: bool,
    top: bool,
    /// The key just written: (start, end, has escapes), and where its member starts (before
    /// the comma).
    key: Option<((usize, usize, bool), usize)>,
}

/// An object under construction: the writer and its state.
pub(crate) struct ObjectWriter<'w, 'a> {
    w: &'w mut Writer<'a>,
    o: Object,
}

impl ObjectWriter<'_, '_> {
    fn key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), NotCanonical> {
        let from = self.w.out.len();
        // A member kept so far (a dropped `id` left nothing behind).
        if from > self.o.start + 1 {
            self.w.out.push(b',');
        }
        let ks = self.w.out.len();
        key.serialize(KeyWriter { out: self.w.out })?;
        let ke = self.w.out.len();
        let escaped = self.w.out[ks + 1..ke - 1].contains(&b'\\');
        self.w.out.push(b':');
        self.o.key = Some(((ks, ke, escaped), from));
        Ok(())
    }
    fn value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), NotCanonical> {
        let (key, from) = self.o.key.take().ok_or(NotCanonical)?;
        value.serialize(&mut *self.w)?;
        self.w.end_member(&mut self.o, from, key);
        Ok(())
    }
    fn finish(self) {
        self.w.end_object(self.o);
    }
}

/// A sequence under construction.
pub(crate) struct SeqWriter<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    /// Closing text: `]`, or `]}` for a tuple variant.
    close: &'static [u8],
}

impl SeqWriter<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        v.serialize(&mut *self.w)
    }
    fn finish(self) {
        self.w.depth -= 1;
        self.w.out.extend_from_slice(self.close);
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = NotCanonical;
    type SerializeSeq = SeqWriter<'w, 'a>;
    type SerializeTuple = SeqWriter<'w, 'a>;
    type SerializeTupleStruct = SeqWriter<'w, 'a>;
    type SerializeTupleVariant = SeqWriter<'w, 'a>;
    type SerializeMap = ObjectWriter<'w, 'a>;
    type SerializeStruct = ObjectWriter<'w, 'a>;
    type SerializeStructVariant = VariantWriter<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), NotCanonical> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), NotCanonical> {
        // The `Value` tree holds 64 bits: leave the rest to it.
        put_json(self.out, i64::try_from(v).map_err(|_| NotCanonical)?)
    }
    fn serialize_u8(self, v: u8) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), NotCanonical> {
        put_json(self.out, u64::try_from(v).map_err(|_| NotCanonical)?)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotCanonical> {
        // The `Value` tree widens it to f64 first, which writes differently: leave it to it.
        Err(NotCanonical)
    }
    fn serialize_f64(self, v: f64) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), NotCanonical> {
        put_str(self.out, v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), NotCanonical> {
        put_str(self.out, v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), NotCanonical> {
        put_json(self.out, v)
    }
    fn serialize_none(self) -> Result<(), NotCanonical> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), NotCanonical> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotCanonical> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotCanonical> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), NotCanonical> {
        put_str(self.out, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), NotCanonical> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), NotCanonical> {
        // One member: nothing to sort.
        self.out.push(b'{');
        put_str(self.out, variant)?;
        self.out.push(b':');
        self.depth += 1;
        v.serialize(&mut *self)?;
        self.depth -= 1;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<SeqWriter<'w, 'a>, NotCanonical> {
        self.out.push(b'[');
        self.depth += 1;
        Ok(SeqWriter { w: self, first: true, close: b"]" })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqWriter<'w, 'a>, NotCanonical> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqWriter<'w, 'a>, NotCanonical> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<SeqWriter<'w, 'a>, NotCanonical> {
        self.out.push(b'{');
        put_str(self.out, variant)?;
        self.out.extend_from_slice(b":[");
        self.depth += 1;
        Ok(SeqWriter { w: self, first: true, close: b"]}" })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<ObjectWriter<'w, 'a>, NotCanonical> {
        let o = self.begin_object();
        Ok(ObjectWriter { w: self, o })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<ObjectWriter<'w, 'a>, NotCanonical> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantWriter<'w, 'a>, NotCanonical> {
        self.out.push(b'{');
        put_str(self.out, variant)?;
        self.out.push(b':');
        // The outer object is not the top one: its inner object is a value.
        self.depth += 1;
        let o = self.begin_object();
        Ok(VariantWriter(ObjectWriter { w: self, o }))
    }
}

impl ser::SerializeSeq for SeqWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        self.element(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}
impl ser::SerializeTuple for SeqWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        self.element(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}
impl ser::SerializeTupleStruct for SeqWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        self.element(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}
impl ser::SerializeTupleVariant for SeqWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        self.element(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}
impl ser::SerializeMap for ObjectWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotCanonical> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), NotCanonical> {
        self.value(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}
impl ser::SerializeStruct for ObjectWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), NotCanonical> {
        self.key(key)?;
        self.value(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        self.finish();
        Ok(())
    }
}

/// A struct variant: `{"Variant":{...}}`.
pub(crate) struct VariantWriter<'w, 'a>(ObjectWriter<'w, 'a>);

impl ser::SerializeStructVariant for VariantWriter<'_, '_> {
    type Ok = ();
    type Error = NotCanonical;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), NotCanonical> {
        self.0.key(key)?;
        self.0.value(v)
    }
    fn end(self) -> Result<(), NotCanonical> {
        let w = self.0.w;
        w.end_object(self.0.o);
        w.depth -= 1;
        w.out.push(b'}');
        Ok(())
    }
}

/// Writes a map key: strings (and chars) only; anything else is left to the `Value` tree.
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = NotCanonical;
    type SerializeSeq = ser::Impossible<(), NotCanonical>;
    type SerializeTuple = ser::Impossible<(), NotCanonical>;
    type SerializeTupleStruct = ser::Impossible<(), NotCanonical>;
    type SerializeTupleVariant = ser::Impossible<(), NotCanonical>;
    type SerializeMap = ser::Impossible<(), NotCanonical>;
    type SerializeStruct = ser::Impossible<(), NotCanonical>;
    type SerializeStructVariant = ser::Impossible<(), NotCanonical>;

    fn serialize_str(self, v: &str) -> Result<(), NotCanonical> {
        put_str(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), NotCanonical> {
        put_str(self.out, v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), NotCanonical> {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_i8(self, _: i8) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_i16(self, _: i16) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_i32(self, _: i32) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_i64(self, _: i64) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_u8(self, _: u8) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_u16(self, _: u16) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_u32(self, _: u32) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_u64(self, _: u64) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_none(self) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_unit(self) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotCanonical> {
        Err(NotCanonical)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotCanonical> {
        Err(NotCanonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    fn canonical(v: &impl Serialize) -> String {
        let mut out = Vec::new();
        write(v, false, &mut out, &mut Scratch::default()).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// What `serde_json::Value` makes of a value: the definition being matched.
    fn through_value(v: &impl Serialize) -> String {
        serde_json::to_value(v).unwrap().to_string()
    }

    #[derive(Serialize)]
    struct Unsorted {
        zeta: u32,
        alpha: Option<&'static str>,
        #[serde(rename = "a\"q")]
        quoted: bool,
        mid: Vec<Value>,
        #[serde(flatten)]
        extra: serde_json::Map<String, Value>,
    }

    #[test]
    fn matches_the_value_tree_for_unsorted_nested_and_escaped_keys() {
        let mut extra = serde_json::Map::new();
        extra.insert("b".into(), json!({"y": [1, {"k": "v", "a": null}], "x": -2.5e-7}));
        extra.insert("a\\b".into(), json!("tab\there \u{1} \u{20ac} \"q\""));
        extra.insert("".into(), json!([]));
        extra.insert("a b".into(), json!(" "));
        extra.insert("a!".into(), json!("!"));
        extra.insert("a".into(), json!("a"));
        extra.insert("aa".into(), json!({}));
        let v = Unsorted {
            zeta: 7,
            alpha: None,
            quoted: true,
            mid: vec![json!(1.0), json!(u64::MAX), json!(i64::MIN), json!({"z": 1, "Z": 2})],
            extra,
        };
        assert_eq!(canonical(&v), through_value(&v));
    }

    #[test]
    fn keys_sharing_their_first_eight_bytes_or_not_ascii_sort_as_the_value_tree_sorts_them() {
        // A HashMap writes its keys in no particular order.
        let keys = [
            "abcdefgh",
            "abcdefghi",
            "abcdefgha",
            "abcdefg",
            "abcdefgi",
            "abcdefgh\u{1}",
            "abcdefgh\"x",
            "\u{e9}",
            "\u{e9}a",
            "e\u{301}",
            "z",
            "Z",
            "",
            "a",
            "ab\\",
            "abcdefghabcdefgh",
            "abcdefghabcdefga",
        ];
        let map: std::collections::HashMap<String, usize> =
            keys.iter().enumerate().map(|(i, k)| (k.to_string(), i)).collect();
        assert_eq!(canonical(&map), through_value(&map));
        assert_eq!(canonical(&json!({"nested": map})), through_value(&json!({"nested": map})));
    }

    #[derive(Serialize)]
    struct Repeated {
        host: &'static str,
        #[serde(flatten)]
        extra: serde_json::Map<String, Value>,
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_the_value_tree_does() {
        let mut extra = serde_json::Map::new();
        extra.insert("host".into(), json!("from extra"));
        extra.insert("a".into(), json!(1));
        let v = Repeated { host: "field", extra };
        assert_eq!(canonical(&v), through_value(&v));
        assert_eq!(canonical(&v), r#"{"a":1,"host":"from extra"}"#);
    }

    #[test]
    fn strings_needing_escapes_are_found_at_every_position() {
        let base = "abcdefghijklmnopqrstuvwxyz\u{e9}\u{20ac}0123456789".to_string();
        assert!(plain(base.as_bytes()));
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for i in 0..=base.len() {
                if !base.is_char_boundary(i) {
                    continue;
                }
                let mut s = base.clone();
                s.insert(i, special);
                assert!(!plain(s.as_bytes()), "{s:?}");
                assert_eq!(canonical(&s), serde_json::to_string(&s).unwrap());
            }
        }
        // DEL and bytes above ASCII are written as they are.
        assert!(plain("\u{7f}\u{80}\u{ff} ~!".as_bytes()));
    }

    #[test]
    fn scalars_and_empty_containers() {
        for v in [json!(null), json!(true), json!(-0.0), json!("x"), json!([]), json!({}), json!([[], [{}]])] {
            assert_eq!(canonical(&v), v.to_string());
        }
    }

    #[test]
    fn what_the_value_tree_writes_differently_is_an_error_left_to_it() {
        let mut scratch = Scratch::default();
        let mut out = b"keep".to_vec();
        let mut m = std::collections::BTreeMap::new();
        m.insert(1u32, "one");
        assert!(write(&m, false, &mut out, &mut scratch).is_err());
        assert!(write(&vec![json!({"a": 1}), json!(1.5f32)], false, &mut out, &mut scratch).is_ok());
        assert!(write(&(1, 0.5f32), false, &mut out, &mut scratch).is_err());
        assert!(write(&u128::MAX, false, &mut out, &mut scratch).is_err());
        assert_eq!(out, br#"keep[{"a":1},1.5]"#);
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Tuple(u8, &'static str),
        Struct { z: u8, a: Option<u8> },
    }

    #[test]
    fn enums_bytes_and_the_top_id_are_written_as_the_value_tree_does() {
        let v = vec![Shape::Unit, Shape::New(1), Shape::Tuple(2, "t"), Shape::Struct { z: 3, a: None }];
        assert_eq!(canonical(&v), through_value(&v));
        let bytes = serde_json::json!({"b": serde_bytes_like(), "id": 1, "a": {"id": 2}});
        assert_eq!(canonical(&bytes), through_value(&bytes));
        let mut out = Vec::new();
        write(&bytes, true, &mut out, &mut Scratch::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":{"id":2},"b":[1,2,255]}"#);
    }

    fn serde_bytes_like() -> Value {
        serde_json::to_value(&[1u8, 2, 255][..]).unwrap()
    }
}
