//! The fast path from JSON text: a Windows event in the evtx shape (`{"Event":{"System":..,
//! "EventData":..}}`, what `evtx_dump -o jsonl`, Chainsaw and Hayabusa write) flattened the
//! way the collector flattens it, without building the whole `serde_json::Value` of the event
//! nor the model `Event`.
//!
//! The text is split once into borrowed raw value texts: the sections of `Event`, then the
//! children of `EventData`, `UserData` and the rarer sections, by a byte scanner
//! ([`super::scan`], one pass, validating as `serde_json` does) or, for what the scanner leaves
//! to it (invalid text, escaped top-level keys, deep nesting), by `serde_json` with
//! [`RawValue`]s, which gives the same sections or reports the error. This gives the flattened
//! field list with the collector's precedence (first writer wins, sections and children in the
//! order of a `serde_json::Map`, i.e. sorted by name, the last of duplicate keys kept). Only
//! `System` (small) and the fields some rule, pipeline or routing decision needs are parsed
//! into values ("materialized"); the other fields are visited only for the strings keyword
//! rules search, and only when a routed bucket has keyword rules.
//!
//! The semantics copied from `soc-collector`'s `parse::windows` (which this crate cannot
//! depend on): field names without spaces, XML wrappers unwrapped (`#text` taken,
//! `#attributes` dropped unless they are all there is), the System fields added where the
//! event data has no field of that name, the log source from the channel, provider and event
//! id. `tests/sigma_flat.rs` proves the result identical to the collector's on every evtx
//! sample event.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use soc_model::LogSource;
use soc_model::windows::{
    as_int, attr, int_or_value, logsource_parts, text, text_owned, unwrap_xml_owned as unwrap_xml,
};
use std::borrow::Cow;
use std::fmt;

/// Why the fast path did not produce a record.
#[derive(Debug, thiserror::Error)]
pub enum FlatError {
    /// Not a Windows event in the evtx shape (or not the fast engine): the caller takes the
    /// general path (collector normalization, then [`crate::sigma::SigmaRules::matching_rules`]).
    #[error("not an evtx-shaped Windows event")]
    Unsupported,
    /// The text is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A JSON object as (key, raw value) pairs in `serde_json::Map` order: sorted by key, the
/// last of duplicate keys kept (the event data may stay in text order, see [`scan_sections`]).
struct RawObj<'a>(Vec<(Cow<'a, str>, &'a str)>);

/// Entries in text order, the last of duplicate keys kept: the entries of a map, in another
/// order.
fn last_of_duplicates<T>(mut v: Vec<(Cow<'_, str>, T)>) -> Vec<(Cow<'_, str>, T)> {
    let mut keep = Vec::new();
    if v.len() <= LINEAR_FIELDS {
        // Pairs compared only when their bits ([`name_bit`]) are equal.
        let mut bits = [0u64; LINEAR_FIELDS];
        for (b, (k, _)) in bits.iter_mut().zip(&v) {
            *b = name_bit(k);
        }
        let bits = bits.get(..v.len()).unwrap_or_default();
        let later = |i: usize| {
            let (Some(b), Some((k, _))) = (bits.get(i), v.get(i)) else { return false };
            bits.iter().zip(&v).skip(i + 1).any(|(c, (l, _))| c == b && l == k)
        };
        let Some(first) = (0..v.len()).find(|&i| later(i)) else {
            return v;
        };
        keep = (0..v.len()).map(|i| i < first || (i > first && !later(i))).collect();
    } else {
        // From the end, a key already seen is an earlier duplicate (linear).
        let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
        keep.resize(v.len(), true);
        for ((k, _), keep) in v.iter().zip(keep.iter_mut()).rev() {
            *keep = seen.insert(k.as_ref());
        }
    }
    let mut flags = keep.into_iter();
    v.retain(|_| flags.next().unwrap_or(true));
    v
}

/// Entries in `serde_json::Map` order: sorted by key (stable, so equal keys keep their text
/// order), the last of each run of equal keys kept.
fn map_order<T>(mut v: Vec<(Cow<'_, str>, T)>) -> Vec<(Cow<'_, str>, T)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    if v.windows(2).any(|w| w[0].0 == w[1].0) {
        // Reversed, the last of each run comes first, which `dedup_by` keeps.
        v.reverse();
        v.dedup_by(|later, kept| later.0 == kept.0);
        v.reverse();
    }
    v
}

fn raw_entries<'de, A: MapAccess<'de>>(mut map: A) -> Result<RawObj<'de>, A::Error> {
    let mut v: Vec<(Cow<'de, str>, &'de str)> = Vec::with_capacity(map.size_hint().unwrap_or(16));
    while let Some(Key(k)) = map.next_key()? {
        let raw: &'de RawValue = map.next_value()?;
        v.push((k, raw.get()));
    }
    Ok(RawObj(map_order(v)))
}

impl<'de> Deserialize<'de> for RawObj<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = RawObj<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                raw_entries(map)
            }
        }
        d.deserialize_map(ObjVisitor)
    }
}

/// A section of `Event` (`System`, `EventData`, ...), read in the one pass over the text: an
/// object's entries (values left raw), null, or another value.
enum Section<'a> {
    Obj(RawObj<'a>),
    Null,
    Val(Value),
}

impl<'de> Deserialize<'de> for Section<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SectionVisitor;
        impl<'de> Visitor<'de> for SectionVisitor {
            type Value = Section<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                raw_entries(map).map(Section::Obj)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Section::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Section::Val(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Section::Val(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Section::Val(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Section::Val(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Section::Val(Value::String(v.to_string())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                Ok(Section::Val(Value::Array(out)))
            }
        }
        d.deserialize_any(SectionVisitor)
    }
}

/// The top-level object's `Event`, as its sections (in map order), or `None` when `Event` is
/// absent or not an object.
struct Top<'a>(Option<Vec<(Cow<'a, str>, Section<'a>)>>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sections<'a>(Option<Vec<(Cow<'a, str>, Section<'a>)>>);
        impl<'de> Deserialize<'de> for Sections<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct SecVisitor;
                impl<'de> Visitor<'de> for SecVisitor {
                    type Value = Sections<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("any JSON value")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        let mut v = Vec::with_capacity(4);
                        while let Some(Key(k)) = map.next_key()? {
                            let s: Section<'de> = map.next_value()?;
                            v.push((k, s));
                        }
                        Ok(Sections(Some(map_order(v))))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                        Ok(Sections(None))
                    }
                    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                        Ok(Sections(None))
                    }
                }
                d.deserialize_any(SecVisitor)
            }
        }
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut event = None;
                while let Some(Key(k)) = map.next_key()? {
                    if k == "Event" {
                        // The last of duplicate keys wins, as in a map.
                        event = map.next_value::<Sections<'de>>()?.0;
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(Top(event))
            }
        }
        d.deserialize_map(TopVisitor)
    }
}

/// `System` values the flattening reads, by their slot in [`split_sections`]' tables.
const CHANNEL: usize = 0;
const COMPUTER: usize = 1;
const EVENT_ID: usize = 2;
const EVENT_RECORD_ID: usize = 3;
const KEYWORDS: usize = 4;
const LEVEL: usize = 5;
const OPCODE: usize = 6;
const PROVIDER: usize = 7;
const SECURITY: usize = 8;
const TASK: usize = 9;
const TIME_CREATED: usize = 10;
const VERSION: usize = 11;
const SYSTEM_SLOTS: usize = 12;

/// The slot of a `System` child the flattening reads.
fn system_slot(k: &str) -> Option<usize> {
    Some(match k {
        "Channel" => CHANNEL,
        "Computer" => COMPUTER,
        "EventID" => EVENT_ID,
        "EventRecordID" => EVENT_RECORD_ID,
        "Keywords" => KEYWORDS,
        "Level" => LEVEL,
        "Opcode" => OPCODE,
        "Provider" => PROVIDER,
        "Security" => SECURITY,
        "Task" => TASK,
        "TimeCreated" => TIME_CREATED,
        "Version" => VERSION,
        _ => return None,
    })
}

/// Up to this many event data fields, [`Split::has`] compares names one by one (after the
/// bitmask); beyond, they are sorted once and binary-searched.
const LINEAR_FIELDS: usize = 48;

/// A bit standing for a field name in [`Split::names`] (by length and first byte): a name
/// whose bit is clear is not among the fields, without comparing any.
fn name_bit(name: &str) -> u64 {
    let first = name.as_bytes().first().copied().unwrap_or(0) as u32;
    1u64 << ((name.len() as u32).wrapping_mul(7).wrapping_add(first) & 63)
}

impl<'a> RawObj<'a> {
    /// The object `raw`: by the scanner, else by `serde_json` (which reports the error).
    fn parse(raw: &'a str) -> Result<Self, serde_json::Error> {
        match super::scan::object(raw) {
            Some(e) => Ok(RawObj(map_order(e))),
            None => serde_json::from_str(raw),
        }
    }
    /// The value of key `k` (keys are unique; sorted or not).
    fn get(&self, k: &str) -> Option<&'a str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| *v)
    }
}

/// The first byte of a raw value (its JSON type).
fn kind(raw: &str) -> u8 {
    raw.as_bytes().first().copied().unwrap_or(b'n')
}

fn is_object(raw: &str) -> bool {
    kind(raw) == b'{'
}

/// Field name with the spaces removed (`Product Name` -> `ProductName`).
fn field_name(k: Cow<'_, str>) -> Cow<'_, str> {
    if k.contains(' ') { Cow::Owned(k.chars().filter(|c| *c != ' ').collect()) } else { k }
}

/// Where a flattened field's value is.
enum Src<'a> {
    Raw(&'a str),
    Val(Value),
}

/// The flattened fields of one event, before materialization.
pub(crate) struct Split<'a> {
    input: &'a str,
    entries: Vec<(Cow<'a, str>, Src<'a>)>,
    /// `entries[..sorted]` are sorted by name (binary-searched by [`Split::has`]): the event
    /// data when it has many fields, so that looking names up stays cheap however many.
    sorted: usize,
    /// The [`name_bit`]s of the names in `entries`.
    names: u64,
    /// The log source's category and service (its product is `windows`), see
    /// [`Split::logsource_into`].
    category: Option<&'static str>,
    service: Option<&'static str>,
    pub message: Option<String>,
    /// Some flattened field is called `message` (the log message is then not a field).
    pub has_message_field: bool,
}

impl<'a> Split<'a> {
    fn has(&self, name: &str) -> bool {
        if self.names & name_bit(name) == 0 {
            return false;
        }
        let (sorted, rest) = self.entries.split_at(self.sorted.min(self.entries.len()));
        sorted.binary_search_by(|(k, _)| k.as_ref().cmp(name)).is_ok() || rest.iter().any(|(k, _)| k == name)
    }

    fn push_first(&mut self, name: Cow<'a, str>, src: Src<'a>) {
        if !self.has(&name) {
            self.push(name, src);
        }
    }

    fn push(&mut self, name: Cow<'a, str>, src: Src<'a>) {
        self.names |= name_bit(&name);
        self.entries.push((name, src));
    }

    /// Adds field `k` with the value `v` gives when there is no field of that name (and the
    /// value is not null); `v` runs only then.
    fn insert_absent(&mut self, k: &'static str, v: impl FnOnce() -> Option<Value>) {
        if !self.has(k)
            && let Some(v) = v().filter(|v| !v.is_null())
        {
            self.push(Cow::Borrowed(k), Src::Val(v));
        }
    }

    /// Moves an element's children to the flattened fields (first writer wins).
    fn flatten_into(&mut self, obj: RawObj<'a>) {
        // The first element's children are unique (in map order, or in text order for the
        // event data): without spaces to remove from their names they stay so, and need no
        // check.
        if self.entries.is_empty() && !obj.0.iter().any(|(k, _)| k.contains(' ')) {
            self.entries.extend(obj.0.into_iter().filter(|(k, _)| k != "#attributes").map(|(k, v)| (k, Src::Raw(v))));
            self.names = self.entries.iter().fold(0, |m, (k, _)| m | name_bit(k));
            if self.entries.len() > LINEAR_FIELDS {
                self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                self.sorted = self.entries.len();
            }
            return;
        }
        for (k, v) in obj.0 {
            if k != "#attributes" {
                self.push_first(field_name(k), Src::Raw(v));
            }
        }
    }

    /// Writes the event's log source into `out`, reusing its strings' buffers (what
    /// `soc_model::windows::logsource` gives).
    pub fn logsource_into(&self, out: &mut LogSource) {
        fn set(slot: &mut Option<String>, v: Option<&str>) {
            match (slot.as_mut(), v) {
                (Some(s), Some(v)) => {
                    s.clear();
                    s.push_str(v);
                }
                (_, v) => *slot = v.map(str::to_string),
            }
        }
        set(&mut out.product, Some("windows"));
        set(&mut out.category, self.category);
        set(&mut out.service, self.service);
    }

    /// Number of flattened fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Name of field `i`.
    pub fn name(&self, i: usize) -> &str {
        self.entries.get(i).map_or("", |(k, _)| k.as_ref())
    }

    /// The value of field `i`, as the collector's flattened fields hold it.
    pub fn value(&self, i: usize) -> Result<Value, serde_json::Error> {
        match self.entries.get(i).map(|(_, s)| s) {
            // A string (the text was validated, by the scanner or `serde_json`): its text,
            // unescaped (Windows paths are full of `\\`).
            Some(Src::Raw(r)) => match plain_string(r) {
                Some(s) => Ok(Value::String(s)),
                None => Ok(unwrap_xml(serde_json::from_str(r)?)),
            },
            Some(Src::Val(v)) => Ok(v.clone()),
            None => Ok(Value::Null),
        }
    }

    /// [`Split::value`], a string value's text written into a buffer taken from `pool` (the
    /// buffers of the previous event's values, see [`FlatScratch::recycle`]).
    pub fn value_pooled(&self, i: usize, pool: &mut Vec<String>) -> Result<Value, serde_json::Error> {
        if let Some(Src::Raw(r)) = self.entries.get(i).map(|(_, s)| s)
            && r.starts_with('"')
        {
            let mut buf = pool.pop().unwrap_or_default();
            if plain_string_into(r, &mut buf) {
                return Ok(Value::String(buf));
            }
            pool.push(buf);
        }
        self.value(i)
    }

    /// Appends the strings keyword search sees in field `i` (every string of the value,
    /// nested ones included, down to the reference's depth limit) to `buf`, their ends to
    /// `ends`.
    pub fn strings(&self, i: usize, buf: &mut String, ends: &mut Vec<u32>) -> Result<(), serde_json::Error> {
        match self.entries.get(i).map(|(_, s)| s) {
            Some(Src::Raw(r)) => match kind(r) {
                b'"' => {
                    let mut de = serde_json::Deserializer::from_str(r);
                    AppendStr(buf).deserialize(&mut de)?;
                    ends.push(buf.len() as u32);
                }
                b'{' | b'[' => {
                    let v = unwrap_xml(serde_json::from_str(r)?);
                    walk_strings(&v, buf, ends, super::eval::MAX_DEPTH - 1);
                }
                _ => {}
            },
            Some(Src::Val(v)) => walk_strings(v, buf, ends, super::eval::MAX_DEPTH - 1),
            None => {}
        }
        Ok(())
    }

    /// A path into the event as received (`Event.UserData.LogFileCleared.Channel`), for the
    /// pipelines' dotted sources: the whole text is parsed, which only the rare events such a
    /// mapping applies to pay.
    pub fn original(&self) -> Option<Value> {
        serde_json::from_str(self.input).ok()
    }
}

fn walk_strings(v: &Value, buf: &mut String, ends: &mut Vec<u32>, depth: usize) {
    if depth == 0 {
        return;
    }
    match v {
        Value::String(s) => {
            buf.push_str(s);
            ends.push(buf.len() as u32);
        }
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, buf, ends, depth - 1)),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, buf, ends, depth - 1)),
        _ => {}
    }
}

/// Appends a JSON string's text to a buffer without allocating.
struct AppendStr<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        struct V<'b>(&'b mut String);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
                self.0.push_str(v);
                Ok(())
            }
        }
        d.deserialize_str(V(self.0))
    }
}

/// Splits an evtx-shaped event into its flattened fields (see the module documentation).
/// Removes and returns the section called `name`.
fn take_section<'a>(sections: &mut Vec<(Cow<'a, str>, Section<'a>)>, name: &str) -> Option<Section<'a>> {
    sections.iter().position(|(k, _)| k == name).map(|i| sections.remove(i).1)
}

/// The sections of `Event` by the scanner ([`super::scan`]); `None` when it leaves the text to
/// `serde_json`.
fn scan_sections(input: &str) -> Option<Vec<(Cow<'_, str>, Section<'_>)>> {
    let entries = super::scan::object_under(input, "Event")?;
    let mut out = Vec::with_capacity(entries.len());
    for (k, raw, inner) in entries {
        let section = match (inner, kind(raw)) {
            // `System` is read key by key, in text order, the last of duplicates kept (see
            // `split_sections`): the same values as in map order, without the sort.
            (Some(inner), _) if k == "System" => Section::Obj(RawObj(inner)),
            // The event data, first flattened, without names holding spaces (which change
            // when removed): any order of its unique keys gives the same fields
            // (`Split::flatten_into`), so it is not sorted.
            (Some(inner), _) if k == "EventData" && !inner.iter().any(|(k, _)| k.contains(' ')) => {
                Section::Obj(RawObj(last_of_duplicates(inner)))
            }
            (Some(inner), _) => Section::Obj(RawObj(map_order(inner))),
            (None, b'n') => Section::Null,
            (None, _) => Section::Val(serde_json::from_str(raw).ok()?),
        };
        out.push((k, section));
    }
    Some(map_order(out))
}

/// The sections of `Event` by `serde_json` (what the scanner leaves to it, and the errors).
fn serde_sections(input: &str) -> Result<Vec<(Cow<'_, str>, Section<'_>)>, FlatError> {
    let top: Top<'_> = serde_json::from_str(input).map_err(|e| {
        // Valid JSON that is not an object is another shape, not an error.
        if e.is_data() { FlatError::Unsupported } else { FlatError::Json(e) }
    })?;
    top.0.ok_or(FlatError::Unsupported)
}

pub(crate) fn split(input: &str) -> Result<Split<'_>, FlatError> {
    let sections = match scan_sections(input) {
        Some(s) => s,
        None => serde_sections(input)?,
    };
    split_sections(input, sections)
}

fn split_sections<'a>(input: &'a str, mut sections: Vec<(Cow<'a, str>, Section<'a>)>) -> Result<Split<'a>, FlatError> {
    let Some(Section::Obj(sys_obj)) = take_section(&mut sections, "System") else {
        return Err(FlatError::Unsupported);
    };
    // By slot ([`system_slot`]), in text order (the scanner does not sort
    // `System`): a later duplicate key overwrites, as in a map. The elements read through
    // their attributes only (`Provider`, `Security`, `TimeCreated`) stay raw: [`attribute`]
    // parses just the attribute (no map of maps per event); the others are small scalars.
    let mut sys: [Option<Value>; SYSTEM_SLOTS] = Default::default();
    let mut sys_raw: [Option<&str>; SYSTEM_SLOTS] = Default::default();
    for (k, v) in sys_obj.0 {
        if let Some(i) = system_slot(&k) {
            if matches!(i, PROVIDER | SECURITY | TIME_CREATED) {
                if let Some(r) = sys_raw.get_mut(i) {
                    *r = Some(v);
                }
            } else if let Some(x) = sys.get_mut(i) {
                *x = Some(match scalar(v) {
                    Some(v) => v,
                    None => serde_json::from_str(v)?,
                });
            }
        }
    }
    // Read once: moved out of `sys` rather than copied.
    let [channel, computer, keywords] =
        [CHANNEL, COMPUTER, KEYWORDS].map(|i| text_owned(sys.get_mut(i).and_then(Option::take)));
    let sys_get = |i: usize| sys.get(i).and_then(Option::as_ref);
    let raw_get = |i: usize| sys_raw.get(i).copied().flatten();
    let mut s = Split {
        input,
        entries: Vec::with_capacity(32),
        sorted: 0,
        names: 0,
        category: None,
        service: None,
        message: None,
        has_message_field: false,
    };
    match take_section(&mut sections, "EventData") {
        Some(Section::Obj(o)) => s.flatten_into(o),
        Some(Section::Null) | None => {}
        Some(Section::Val(v)) => s.push(Cow::Borrowed("EventData"), Src::Val(unwrap_xml(v))),
    }
    let rendering = take_section(&mut sections, "RenderingInfo");
    for (name, body) in sections {
        if name == "#attributes" {
            continue;
        }
        match body {
            Section::Obj(o) => {
                for (name, child) in o.0 {
                    if name == "#attributes" {
                        continue;
                    }
                    if is_object(child) {
                        let c = RawObj::parse(child)?;
                        if c.get("#text").is_none() {
                            s.flatten_into(c);
                            continue;
                        }
                    }
                    s.push_first(field_name(name), Src::Raw(child));
                }
            }
            Section::Null => {}
            Section::Val(v) => s.push_first(field_name(name), Src::Val(unwrap_xml(v))),
        }
    }
    let provider = raw_get(PROVIDER);
    // The string of a string value (moved, not copied).
    let as_string = |v: Option<Value>| match v {
        Some(Value::String(t)) => Some(t),
        _ => None,
    };
    let event_id = sys_get(EVENT_ID).and_then(as_int);
    let provider_name =
        as_string(attribute_text(provider, "Name").or_else(|| text(provider.and_then(|p| member(p, "Name")).as_ref())));
    let (channel, computer) = (as_string(channel), as_string(computer));
    // The log source first: the channel and provider name are then moved into their fields.
    // Sysmon 12's category depends on the event data's EventType.
    let event_type = match s.entries.iter().position(|(k, _)| k == "EventType") {
        Some(i) => s.value(i)?,
        None => Value::Null,
    };
    let (category, service) =
        logsource_parts(channel.as_deref(), provider_name.as_deref(), event_id, event_type.as_str());
    s.insert_absent("EventID", || event_id.map(Value::from));
    s.insert_absent("Provider_Name", || provider_name.map(Value::String));
    s.insert_absent("Channel", || channel.map(Value::String));
    s.insert_absent("Computer", || computer.map(Value::String));
    s.insert_absent("Level", || int_or_value(sys_get(LEVEL)));
    s.insert_absent("Task", || int_or_value(sys_get(TASK)));
    s.insert_absent("Opcode", || int_or_value(sys_get(OPCODE)));
    s.insert_absent("EventRecordID", || int_or_value(sys_get(EVENT_RECORD_ID)));
    s.insert_absent("Version", || int_or_value(sys_get(VERSION)));
    s.insert_absent("Keywords", || keywords);
    s.insert_absent("Security_UserID", || attribute_text(raw_get(SECURITY), "UserID"));
    s.insert_absent("TimeCreated", || attribute_text(raw_get(TIME_CREATED), "SystemTime"));
    // Forwarded events carry the rendered message.
    if let Some(Section::Obj(r)) = rendering
        && let Some(m) = r.get("Message")
    {
        s.message = match unwrap_xml(serde_json::from_str(m)?) {
            Value::String(t) => Some(t),
            _ => None,
        };
    }
    s.has_message_field = s.has(super::super::engine::MESSAGE_FIELD);
    (s.category, s.service) = (category, service);
    Ok(s)
}

/// Member `name` of the raw JSON value `raw` (the last of duplicate keys), parsed: what
/// `Value::get(name)` gives on `raw` parsed (`None` for what is not an object).
fn member(raw: &str, name: &str) -> Option<Value> {
    if !is_object(raw) {
        return None;
    }
    match super::scan::member(raw, name) {
        Some(v) => parse_raw(v?),
        None => serde_json::from_str::<Value>(raw).ok()?.get(name).cloned(),
    }
}

/// A raw (validated) JSON value parsed; a string without escapes is its text.
fn parse_raw(r: &str) -> Option<Value> {
    match plain_string(r) {
        Some(s) => Some(Value::String(s)),
        None => serde_json::from_str(r).ok(),
    }
}

/// The validated JSON value `raw` parsed when it is a string or an integer of up to 19
/// digits (what `System` holds but `EventID` with its qualifiers): the value `serde_json`
/// gives, without it. `None` for anything else.
fn scalar(raw: &str) -> Option<Value> {
    match raw.as_bytes().first()? {
        b'"' => plain_string(raw).map(Value::String),
        b'0'..=b'9' if raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit()) => {
            raw.parse::<u64>().ok().map(Value::from)
        }
        _ => None,
    }
}

/// The text of the validated JSON string `raw` (quotes included), its escapes decoded; `None`
/// when `raw` is not a string or holds a `\u` escape (left to `serde_json`, which checks
/// surrogate pairs).
fn plain_string(raw: &str) -> Option<String> {
    let mut out = String::new();
    plain_string_into(raw, &mut out).then_some(out)
}

/// [`plain_string`] written into `out` (cleared first; its allocation reused): whether `raw`
/// was such a string (`out` is then its text; otherwise unspecified).
fn plain_string_into(raw: &str, out: &mut String) -> bool {
    out.clear();
    plain_into(raw, out).is_some()
}

fn plain_into(raw: &str, out: &mut String) -> Option<()> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let Some(first) = super::scan::backslash(b) else {
        out.push_str(inner);
        return Some(());
    };
    out.reserve(inner.len());
    out.push_str(inner.get(..first)?);
    let mut i = first;
    loop {
        // `b[i]` is a backslash.
        out.push(match b.get(i + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => return None,
        });
        i += 2;
        let rest = b.get(i..)?;
        match super::scan::backslash(rest) {
            Some(p) => {
                out.push_str(inner.get(i..i + p)?);
                i += p;
            }
            None => {
                out.push_str(inner.get(i..)?);
                return Some(());
            }
        }
    }
}

/// `text(attribute(raw, name))`: the attribute as the flattening writes it. An attribute
/// written as a string without escapes (the usual `{"#attributes":{"SystemTime":"..."}}`)
/// is read from the validated text without parsing it again.
fn attribute_text(raw: Option<&str>, name: &str) -> Option<Value> {
    if let Some(r) = raw.filter(|r| is_object(r))
        && let Some(Some(v)) = super::scan::member_path_trusted(r, &["#attributes", name])
        && v.len() >= 2
        && v.starts_with('"')
        && super::scan::backslash(v.as_bytes()).is_none()
    {
        return v.get(1..v.len() - 1).map(|t| Value::String(t.to_string()));
    }
    text(attribute(raw, name).as_ref())
}

/// Attribute `name` of an XML-as-JSON element's raw text, parsed: what
/// `soc_model::windows::attr` gives on the parsed element.
fn attribute(raw: Option<&str>, name: &str) -> Option<Value> {
    let raw = raw?;
    if !is_object(raw) {
        return None;
    }
    match super::scan::member(raw, "#attributes") {
        Some(attrs) => member(attrs?, name),
        None => attr(Some(&serde_json::from_str::<Value>(raw).ok()?), name).cloned(),
    }
}

/// Reused buffers of the fast path (one per thread of evaluation).
#[derive(Debug, Default)]
pub struct FlatScratch {
    /// The materialized fields of the last event.
    pub fields: Map<String, Value>,
    /// Keyword strings of the fields not materialized, concatenated; `ends[i]` ends string i.
    pub strings: String,
    pub ends: Vec<u32>,
    pub logsource: LogSource,
    pub message: Option<String>,
    pub has_message_field: bool,
    /// Per flattened field: materialized for the pipelines.
    pub(crate) done: Vec<bool>,
    /// The event's JSON text, ASCII-lower-cased (searched for keyword literals).
    pub(crate) lowered: String,
    /// The materialized fields rules name, by field number (see [`super::eval::Slots`]):
    /// those read from the text, and those the pipelines left in `fields`, moved here;
    /// `filled` lists the numbers set for the last event.
    pub(crate) slots: Vec<Option<Value>>,
    pub(crate) filled: Vec<u32>,
    /// How many of the first `filled` hold values the pipelines made (exact-size strings,
    /// freed rather than pooled: grown again for the next text value, they cost more).
    pub(crate) piped: usize,
    /// String buffers of earlier events' slot values, reused (no allocation per string).
    pub(crate) pool: Vec<String>,
}

/// Slot strings longer than this are freed rather than kept for reuse (one huge value must
/// not stay allocated for the life of the thread).
const POOLED_MAX: usize = 4096;

/// At most this many buffers are kept: slots also hold strings that did not come from the
/// pool (System values, decoded `\u` escapes), so without a bound it would grow by those on
/// every event.
const POOL_LEN: usize = 128;

impl FlatScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the slots of the last event, keeping their string buffers in the pool.
    pub(crate) fn recycle(&mut self) {
        let piped = std::mem::take(&mut self.piped);
        for (i, id) in self.filled.drain(..).enumerate() {
            if let Some(Some(Value::String(s))) = self.slots.get_mut(id as usize).map(Option::take)
                && i >= piped
                && s.capacity() <= POOLED_MAX
                && self.pool.len() < POOL_LEN
            {
                self.pool.push(s);
            }
        }
    }

    /// The keyword strings of the fields not materialized.
    pub fn extra_strings(&self) -> impl Iterator<Item = &str> {
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let s = self.strings.get(start..e as usize).unwrap_or("");
            start = e as usize;
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_strings_are_unescaped_like_serde_json_does() {
        for raw in
            [r#""""#, r#""plain""#, r#""C:\\Windows\\x.exe""#, r#""a\"b\/c\n\t\r\b\f\\""#, r#""\\""#, r#""end\\\"""#]
        {
            let want: String = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(plain_string(raw), Some(want), "{raw}");
        }
        assert_eq!(plain_string(r#""\u0041""#), None, "left to serde_json");
        for raw in ["0", "4688", "9999999999999999999", r#""x\\y""#] {
            assert_eq!(scalar(raw), serde_json::from_str::<Value>(raw).ok(), "{raw}");
        }
        for raw in ["-1", "1.5", "1e3", "99999999999999999999", "null", "{}"] {
            assert_eq!(scalar(raw), None, "{raw}: left to serde_json");
        }
        assert_eq!(plain_string("12"), None);
    }

    #[test]
    fn pooled_values_equal_fresh_ones_whatever_the_reused_buffer_held() {
        let text = r##"{"Event":{"System":{"Channel":"Security","EventID":4688},"EventData":{"A":"C:\\x\"y","B":"\u0041b","C":7,"D":{"#text":"t"},"E":"","F":null,"G":[1,"z"]}}}"##;
        let s = split(text).unwrap();
        let mut pool = vec![String::from("left over from another event, longer than the values")];
        for i in 0..s.len() {
            assert_eq!(s.value_pooled(i, &mut pool).unwrap(), s.value(i).unwrap(), "{}", s.name(i));
        }
        assert!(pool.len() <= 1, "a buffer is taken, not multiplied");
    }

    #[test]
    fn the_buffer_pool_stays_bounded_when_slots_hold_strings_it_did_not_give() {
        let mut sc = FlatScratch::new();
        sc.slots.resize(300, None);
        for _ in 0..50 {
            // Every event fills every slot with a string of its own (not from the pool), one
            // of them too long to keep.
            for id in 0..300u32 {
                let len = if id == 0 { POOLED_MAX + 1 } else { 16 };
                sc.slots[id as usize] = Some(Value::String("x".repeat(len)));
                sc.filled.push(id);
            }
            sc.recycle();
            assert!(sc.pool.len() <= POOL_LEN, "{}", sc.pool.len());
            assert!(sc.pool.iter().all(|b| b.capacity() <= POOLED_MAX));
            assert!(sc.filled.is_empty() && sc.slots.iter().all(Option::is_none));
        }
    }

    #[test]
    fn duplicate_event_data_keys_keep_the_last_in_any_order() {
        let text =
            r#"{"Event":{"System":{"Channel":"Security","EventID":4688},"EventData":{"b":1,"a":2,"b":3,"c":"x"}}}"#;
        let s = split(text).unwrap();
        let got: Map<String, Value> = (0..s.len()).map(|i| (s.name(i).to_string(), s.value(i).unwrap())).collect();
        assert_eq!(got.get("b"), Some(&json!(3)));
        assert_eq!(got.get("a"), Some(&json!(2)));
        assert_eq!((0..s.len()).filter(|&i| s.name(i) == "b").count(), 1);
        let v: Vec<(Cow<'_, str>, u8)> = vec![("x".into(), 1), ("y".into(), 2), ("x".into(), 3)];
        assert_eq!(last_of_duplicates(v), vec![("y".into(), 2), ("x".into(), 3)]);
        // Many fields: sorted once and searched, the same fields found.
        let many: String = (0..200).map(|i| format!(r#""F{i}":{i},"#)).collect();
        let text = format!(
            r#"{{"Event":{{"System":{{"Channel":"Security","EventID":1}},"EventData":{{{many}"F7":"last"}},"UserData":{{"U":{{"F9":"no","G":"yes"}}}}}}}}"#
        );
        let s = split(&text).unwrap();
        let got: Map<String, Value> = (0..s.len()).map(|i| (s.name(i).to_string(), s.value(i).unwrap())).collect();
        assert_eq!(got.get("F7"), Some(&json!("last")));
        assert_eq!(got.get("F9"), Some(&json!(9)), "the event data wins");
        assert_eq!(got.get("G"), Some(&json!("yes")));
        assert_eq!(got.get("EventID"), Some(&json!(1)));
        assert_eq!(s.len(), 200 + 3, "the event data, G, EventID and Channel");
    }

    #[test]
    fn keys_follow_map_order_and_the_last_duplicate_wins() {
        let o: RawObj<'_> = serde_json::from_str(r#"{"b":1,"a":2,"b":3,"a\u0020c":4}"#).unwrap();
        let keys: Vec<&str> = o.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "a c", "b"]);
        assert_eq!(o.get("b"), Some("3"));
    }

    #[test]
    fn evtx_event_is_flattened_like_the_collector() {
        let text = json!({"Event":{"System":{
            "Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},
            "EventID":{"#attributes":{"Qualifiers":16384},"#text":12},
            "Level":"4","Task":"Registry","Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"pc1",
            "TimeCreated":{"#attributes":{"SystemTime":"2020-01-01T00:00:00Z"}}},
            "EventData":{"EventType":"DeleteKey","Product Name":{"#text":"X"},"Data":{"#text":["a","b"]},"#attributes":{"N":"1"}},
            "UserData":{"Inner":{"#attributes":{"xmlns":"x"},"Channel":"custom","Only":{"#attributes":{"A":"1","xmlns":"y"}}}}}})
        .to_string();
        let s = split(&text).unwrap();
        let got: Map<String, Value> = (0..s.len()).map(|i| (s.name(i).to_string(), s.value(i).unwrap())).collect();
        assert_eq!(
            Value::Object(got),
            json!({"EventType":"DeleteKey","ProductName":"X","Data":["a","b"],"Channel":"custom","Only":{"A":"1"},
                "EventID":12,"Provider_Name":"Microsoft-Windows-Sysmon","Computer":"pc1","Level":4,"Task":"Registry",
                "TimeCreated":"2020-01-01T00:00:00Z"})
        );
        let mut ls = LogSource { category: Some("stale".into()), ..LogSource::default() };
        s.logsource_into(&mut ls);
        assert_eq!(ls.product.as_deref(), Some("windows"));
        assert_eq!(ls.service.as_deref(), Some("sysmon"));
        assert_eq!(ls.category.as_deref(), Some("registry_delete"));
        let (mut buf, mut ends) = (String::new(), Vec::new());
        for i in 0..s.len() {
            s.strings(i, &mut buf, &mut ends).unwrap();
        }
        assert_eq!(ends.len(), 10, "{buf}");
    }

    /// The flattened fields (name, value) and log source, from the scanner's sections or
    /// serde_json's.
    fn flattened(text: &str, scanned: bool) -> (Vec<(String, Value)>, LogSource) {
        let sections = if scanned { scan_sections(text).unwrap() } else { serde_sections(text).unwrap() };
        let s = split_sections(text, sections).unwrap();
        let mut ls = LogSource::default();
        s.logsource_into(&mut ls);
        ((0..s.len()).map(|i| (s.name(i).to_string(), s.value(i).unwrap())).collect(), ls)
    }

    #[test]
    fn the_scanner_splits_like_serde_json() {
        for text in [
            r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4688,"Channel":"Security","Computer":"pc"},"EventData":{"B":1,"A":"x","B":2,"C D":{"#text":"t"},"#attributes":{"x":1}}}}"##,
            // Blanks, escaped keys, a null section, a scalar section, nested UserData, a
            // duplicate `Event` (the last wins) and other top-level keys.
            " {\"x\" : [1, {\"Event\": 2}], \"Event\": {\"System\": {}}, \"Event\" : { \"System\" : {\"EventID\" : 1 , \"Channel\":\"Microsoft-Windows-Sysmon/Operational\"} , \"EventData\": null, \"Extra\": \"s\\u00e9\", \"UserData\": {\"Inner\": {\"K\\u0020ey\": [true, -1.5e3], \"Channel\": \"c\"}}, \"System\": {\"EventID\": 12, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Provider\": {\"Name\": \"Microsoft-Windows-Sysmon\"}}} } ",
            // Duplicate System keys (the last wins), attributes given twice.
            r##"{"Event":{"System":{"EventID":1,"Provider":{"#attributes":{"Name":"A"}},"Channel":"Security","EventID":4625,"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Name":"B"}},"TimeCreated":{"#attributes":{"SystemTime":"t1"},"#attributes":{"SystemTime":"t2"}}},"EventData":{"A":"x"}}}"##,
        ] {
            assert_eq!(flattened(text, true), flattened(text, false), "{text}");
        }
        // What the scanner leaves to serde_json: the same result or error through `split`.
        assert!(scan_sections(r#"{"Event":{"System":{"EventID":01}}}"#).is_none());
        assert!(matches!(split(r#"{"Event":{"System":{"EventID":01}}}"#), Err(FlatError::Json(_))));
        assert!(scan_sections(r#"{"\u0045vent":{"System":{}}}"#).is_none());
        assert!(split(r#"{"\u0045vent":{"System":{"EventID":1}}}"#).is_ok());
        assert!(scan_sections(r#"{"Event":5,"Event":{"System":{"EventID":1}}}"#).is_none());
        assert!(split(r#"{"Event":5,"Event":{"System":{"EventID":1}}}"#).is_ok());
    }

    #[test]
    fn attributes_and_members_read_from_raw_text_are_those_of_the_parsed_value() {
        for raw in [
            r##"{"#attributes":{"Name":"A","Name":"B","Guid":"{x}"}}"##,
            r##"{"#attributes":{"Name":5},"#attributes":{"Other":1},"Name":"M"}"##,
            r##"{"Name":{"#text":"T"}}"##,
            r##"{"#attributes":[1]}"##,
            r##""Name""##,
            "[1]",
            r##"{"#attri\u0062utes":{"N\u0061me":"E"}}"##,
        ] {
            let v: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(attribute(Some(raw), "Name").as_ref(), attr(Some(&v), "Name"), "{raw}");
            assert_eq!(member(raw, "Name").as_ref(), v.get("Name"), "{raw}");
        }
        assert_eq!(attribute(None, "Name"), None);
    }

    #[test]
    fn other_shapes_are_unsupported_and_bad_json_is_an_error() {
        assert!(matches!(split(r#"{"winlog":{"event_id":1}}"#), Err(FlatError::Unsupported)));
        assert!(matches!(split(r#"{"Event":{"System":1}}"#), Err(FlatError::Unsupported)));
        assert!(matches!(split("[1]"), Err(FlatError::Unsupported)));
        assert!(matches!(split(r#"{"Event":"#), Err(FlatError::Json(_))));
    }
}
