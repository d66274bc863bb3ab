//! `dataset` and `datarep`: sets of values (and reputations) a buffer is looked up in.
//!
//! `dataset:<set|unset|isset|isnotset>,<name>,type <string|md5|sha256|ipv4|ip>[,load <file>]
//! [,format csv|json|ndjson][,value_key <k>][,context_key <k>][,remove_key][,match subdomain]
//! [,memcap <n>][,hashsize <n>]` and `datarep:<name>,<op>,<value>,load <file>,type <t>`.
//!
//! Files are read when the rule is compiled, resolved relative to the rule file's directory.
//! `csv` files hold one value a line (strings base64-encoded, hashes in hex, addresses as text;
//! `datarep` lines are `value,reputation`); `json` files an array of objects and `ndjson` files
//! one object a line, the value at `value_key` (dotted path), the object reported with the
//! alert under `alert.context.<context_key>` (without the value with `remove_key`).
//! Rules naming the same set share it (see [`unify`]). `save <file>` writes the set (csv, as
//! loaded: strings base64-encoded, one value a line, sorted) when the capture ends
//! ([`crate::detect::Detector::save_datasets`]), to the file resolved in the data directory
//! ([`crate::detect::DetectorBuilder::data_dir`]; a rule saving to a relative path without one is
//! rejected). `state` (load from and save to the data directory) is not supported: a rule using
//! it is rejected.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::keywords::base64_decode;

/// The type of a set's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    String,
    Md5,
    Sha256,
    Ipv4,
    /// IPv4 or IPv6; stored as 16 bytes (IPv4 mapped).
    Ip,
}

/// The operation of a `dataset` keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetCmd {
    Set,
    Unset,
    IsSet,
    IsNotSet,
}

/// The comparison of a `datarep` keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepCmp {
    Lt,
    Gt,
    Eq,
}

/// A named set, shared by the rules using it.
#[derive(Debug, Default)]
pub struct Dataset {
    pub name: String,
    values: Mutex<HashSet<Vec<u8>>>,
    reps: HashMap<Vec<u8>, i64>,
    contexts: HashMap<Vec<u8>, Value>,
}

impl Dataset {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A set of the given values (the hash lists of `filemd5`, `filesha1`, `filesha256`).
    pub fn from_values(name: String, values: HashSet<Vec<u8>>) -> Dataset {
        Dataset { name, values: Mutex::new(values), ..Default::default() }
    }
}

/// One `dataset` or `datarep` keyword of a rule.
#[derive(Clone, Debug)]
pub struct DatasetMatch {
    pub kind: DataType,
    /// `None` for `datarep`.
    pub cmd: Option<DatasetCmd>,
    pub rep: Option<(RepCmp, i64)>,
    pub subdomain: bool,
    pub context_key: Option<String>,
    pub set: Arc<Dataset>,
    /// `save <file>`: where the set is written at the end (as written in the rule until the
    /// builder resolves it in the data directory).
    pub save: Option<std::path::PathBuf>,
}

/// What a buffer is turned into for a lookup (addresses to their fixed-size form).
fn key_of(kind: DataType, buf: &[u8]) -> Option<Vec<u8>> {
    match kind {
        DataType::String => Some(buf.to_vec()),
        DataType::Md5 => (buf.len() == 16).then(|| buf.to_vec()),
        DataType::Sha256 => (buf.len() == 32).then(|| buf.to_vec()),
        DataType::Ipv4 => (buf.len() == 4).then(|| buf.to_vec()),
        DataType::Ip => match buf.len() {
            4 => {
                let mut v = vec![0u8; 10];
                v.extend_from_slice(&[0xff, 0xff]);
                v.extend_from_slice(buf);
                Some(v)
            }
            16 => Some(buf.to_vec()),
            _ => None,
        },
    }
}

impl DatasetMatch {
    /// Looks `buf` up (and for `set`/`unset` changes the set). Returns whether the keyword
    /// matches, with the alert context of the value found, if any.
    pub fn check(&self, buf: &[u8]) -> (bool, Option<(String, Value)>) {
        let Some(key) = key_of(self.kind, buf) else { return (self.cmd == Some(DatasetCmd::IsNotSet), None) };
        if let Some((cmp, v)) = self.rep {
            let ok = self.set.reps.get(&key).is_some_and(|&r| match cmp {
                RepCmp::Lt => r < v,
                RepCmp::Gt => r > v,
                RepCmp::Eq => r == v,
            });
            return (ok, None);
        }
        let mut values = self.set.lock();
        let found_key = if values.contains(&key) {
            Some(key.clone())
        } else if self.subdomain {
            // a parent domain of the buffer is in the set
            key.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'.')
                .map(|(i, _)| key[i + 1..].to_vec())
                .find(|k| values.contains(k))
        } else {
            None
        };
        let ok = match self.cmd {
            Some(DatasetCmd::IsSet) => found_key.is_some(),
            Some(DatasetCmd::IsNotSet) => found_key.is_none(),
            // set/unset match when they changed the set
            Some(DatasetCmd::Set) => values.insert(key),
            Some(DatasetCmd::Unset) => values.remove(&key),
            None => false,
        };
        drop(values);
        let ctx = match (&self.context_key, ok, found_key) {
            (Some(k), true, Some(f)) => self.set.contexts.get(&f).map(|c| (k.clone(), c.clone())),
            _ => None,
        };
        (ok, ctx)
    }
}

fn parse_type(t: &str) -> Result<DataType, String> {
    Ok(match t {
        "string" => DataType::String,
        "md5" => DataType::Md5,
        "sha256" => DataType::Sha256,
        "ipv4" => DataType::Ipv4,
        "ip" => DataType::Ip,
        other => return Err(format!("unknown dataset type '{other}' (string, md5, sha256, ipv4, ip)")),
    })
}

/// A value as written in a file (or a JSON value) to its stored form.
fn parse_value(kind: DataType, text: &str, base64: bool) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let hex = |len: usize| -> Result<Vec<u8>, String> {
        if t.len() != len * 2 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{t}' is not {len} bytes of hex"));
        }
        Ok((0..len).filter_map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()).collect())
    };
    match kind {
        DataType::String if base64 => {
            let v = base64_decode(t.as_bytes(), super::keywords::Base64Mode::Strict);
            if v.is_empty() && !t.is_empty() { Err(format!("'{t}' is not base64")) } else { Ok(v) }
        }
        DataType::String => Ok(t.as_bytes().to_vec()),
        DataType::Md5 => hex(16),
        DataType::Sha256 => hex(32),
        DataType::Ipv4 => match t.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Ok(a.octets().to_vec()),
            _ => Err(format!("'{t}' is not an IPv4 address")),
        },
        DataType::Ip => match t.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Ok(a.to_ipv6_mapped().octets().to_vec()),
            Ok(IpAddr::V6(a)) => Ok(a.octets().to_vec()),
            Err(_) => Err(format!("'{t}' is not an IP address")),
        },
    }
}

fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn remove_path(v: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = v;
    for p in parts {
        match cur.get_mut(p) {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(last);
    }
}

struct Options<'a> {
    kind: Option<DataType>,
    load: Option<&'a str>,
    format: &'a str,
    value_key: Option<&'a str>,
    context_key: Option<&'a str>,
    remove_key: bool,
    subdomain: bool,
    save: Option<&'a str>,
}

fn parse_options<'a>(parts: &[&'a str]) -> Result<Options<'a>, String> {
    let mut o = Options {
        kind: None,
        load: None,
        format: "csv",
        value_key: None,
        context_key: None,
        remove_key: false,
        subdomain: false,
        save: None,
    };
    for p in parts {
        let (k, v) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "type" => o.kind = Some(parse_type(v)?),
            "load" => o.load = Some(v),
            "format" => {
                if !matches!(v, "csv" | "json" | "ndjson") {
                    return Err(format!("unknown format '{v}' (csv, json, ndjson)"));
                }
                o.format = v;
            }
            "value_key" => o.value_key = Some(v),
            "context_key" => o.context_key = Some(v),
            "remove_key" if v.is_empty() => o.remove_key = true,
            "match" if v == "subdomain" => o.subdomain = true,
            // sizing hints of Suricata's hash table
            "memcap" | "hashsize" if !v.is_empty() => {}
            "save" if !v.is_empty() => o.save = Some(v),
            "state" => {
                return Err(format!(
                    "dataset option '{k}' (loading and saving in the data directory) not supported yet"
                ));
            }
            other => return Err(format!("unknown dataset option '{other}'")),
        }
    }
    Ok(o)
}

/// Reads a set's file (see the module documentation) into `set`.
fn load(set: &mut Dataset, kind: DataType, o: &Options<'_>, path: &Path, rep: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let values = set.values.get_mut().unwrap_or_else(|p| p.into_inner());
    if o.format == "csv" {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |e: String| format!("{}:{}: {e}", path.display(), i + 1);
            if rep {
                let (v, r) = line.rsplit_once(',').ok_or_else(|| at("expected 'value,reputation'".into()))?;
                let r: i64 = r.trim().parse().map_err(|_| at(format!("invalid reputation '{r}'")))?;
                set.reps.insert(parse_value(kind, v, true).map_err(at)?, r);
            } else {
                let v = line.split(',').next().unwrap_or(line);
                values.insert(parse_value(kind, v, true).map_err(at)?);
            }
        }
        return Ok(());
    }
    let value_key = o.value_key.ok_or("format json/ndjson needs a value_key")?;
    let objects: Vec<Value> = if o.format == "json" {
        match serde_json::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", path.display()))? {
            Value::Array(a) => a,
            _ => return Err(format!("{}: expected a JSON array", path.display())),
        }
    } else {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            v.push(serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?);
        }
        v
    };
    for mut obj in objects {
        let Some(val) = json_path(&obj, value_key).and_then(Value::as_str).map(str::to_string) else {
            return Err(format!("{}: an object has no string at '{value_key}'", path.display()));
        };
        let key = parse_value(kind, &val, false).map_err(|e| format!("{}: {e}", path.display()))?;
        if o.remove_key {
            remove_path(&mut obj, value_key);
        }
        values.insert(key.clone());
        set.contexts.insert(key, obj);
    }
    Ok(())
}

/// Parses a `dataset` (`rep` false) or `datarep` value; `dir` is the rule file's directory.
pub fn parse(value: &str, rep: bool, dir: &Path) -> Result<DatasetMatch, String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let (cmd, name, rep_cond, opts) = if rep {
        if parts.len() < 3 {
            return Err("datarep needs 'name, op, value, ...'".to_string());
        }
        let cmp = match parts[1] {
            "<" => RepCmp::Lt,
            ">" => RepCmp::Gt,
            "==" => RepCmp::Eq,
            other => return Err(format!("invalid datarep operator '{other}' (<, >, ==)")),
        };
        let v: i64 = parts[2].parse().map_err(|_| format!("invalid reputation '{}'", parts[2]))?;
        (None, parts[0], Some((cmp, v)), &parts[3..])
    } else {
        if parts.len() < 2 {
            return Err("dataset needs 'cmd,name,...'".to_string());
        }
        let cmd = match parts[0] {
            "set" => DatasetCmd::Set,
            "unset" => DatasetCmd::Unset,
            "isset" => DatasetCmd::IsSet,
            "isnotset" => DatasetCmd::IsNotSet,
            other => return Err(format!("unknown dataset command '{other}'")),
        };
        (Some(cmd), parts[1], None, &parts[2..])
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("invalid set name '{name}'"));
    }
    let o = parse_options(opts)?;
    let kind = o.kind.ok_or("missing 'type'")?;
    if rep && o.load.is_none() {
        return Err("datarep needs a 'load' file".to_string());
    }
    let mut set = Dataset { name: name.to_string(), ..Dataset::default() };
    if let Some(f) = o.load {
        load(&mut set, kind, &o, &dir.join(f), rep)?;
    }
    Ok(DatasetMatch {
        kind,
        cmd,
        rep: rep_cond,
        subdomain: o.subdomain,
        context_key: o.context_key.map(str::to_string),
        set: Arc::new(set),
        save: o.save.map(std::path::PathBuf::from),
    })
}

/// Makes the rules naming the same set share one: the values loaded by each rule are merged
/// into the first one's set. `matches` are all the `dataset`/`datarep` keywords of a detector.
pub fn unify<'a>(matches: impl Iterator<Item = &'a mut DatasetMatch>) {
    let mut shared: HashMap<(String, bool), Arc<Dataset>> = HashMap::new();
    let all: Vec<&mut DatasetMatch> = matches.collect();
    for m in &all {
        let key = (m.set.name.clone(), m.rep.is_some());
        match shared.get_mut(&key) {
            None => {
                shared.insert(key, Arc::new(clone_set(&m.set)));
            }
            Some(s) => {
                if let Some(target) = Arc::get_mut(s) {
                    merge(target, &m.set);
                }
            }
        }
    }
    for m in all {
        if let Some(s) = shared.get(&(m.set.name.clone(), m.rep.is_some())) {
            m.set = s.clone();
        }
    }
}

/// The text of a set's csv file: one value a line (strings base64-encoded, hashes in hex,
/// addresses as text), sorted.
pub fn to_csv(set: &Dataset, kind: DataType) -> String {
    let mut lines: Vec<String> = set
        .lock()
        .iter()
        .map(|v| match kind {
            DataType::String => base64_encode(v),
            DataType::Md5 | DataType::Sha256 => v.iter().map(|b| format!("{b:02x}")).collect(),
            DataType::Ipv4 => {
                <[u8; 4]>::try_from(v.as_slice()).map(|a| IpAddr::from(a).to_string()).unwrap_or_default()
            }
            DataType::Ip => <[u8; 16]>::try_from(v.as_slice())
                .map(|a| {
                    let a = std::net::Ipv6Addr::from(a);
                    a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4).to_string()
                })
                .unwrap_or_default(),
        })
        .collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn base64_encode(v: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn clone_set(s: &Dataset) -> Dataset {
    Dataset {
        name: s.name.clone(),
        values: Mutex::new(s.lock().clone()),
        reps: s.reps.clone(),
        contexts: s.contexts.clone(),
    }
}

fn merge(into: &mut Dataset, from: &Dataset) {
    let add = from.lock().clone();
    into.values.get_mut().unwrap_or_else(|p| p.into_inner()).extend(add);
    into.reps.extend(from.reps.iter().map(|(k, v)| (k.clone(), *v)));
    into.contexts.extend(from.contexts.iter().map(|(k, v)| (k.clone(), v.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("soc-dataset-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    }

    #[test]
    fn sets_load_look_up_and_change() {
        let d = dir();
        std::fs::write(d.join("hosts.csv"), "ZXhhbXBsZS5jb20=\n# comment\n").unwrap_or_default();
        std::fs::write(d.join("ips.csv"), "192.0.2.1\n2001:db8::1\n").unwrap_or_default();
        std::fs::write(d.join("rep.csv"), "ZXhhbXBsZS5jb20=,250\n").unwrap_or_default();
        std::fs::write(d.join("ctx.json"), r#"[{"host":"bad.org","why":"test"}]"#).unwrap_or_default();
        let m = parse("isset,hosts,type string,load hosts.csv,match subdomain", false, &d).unwrap();
        assert!(m.check(b"example.com").0);
        assert!(m.check(b"www.example.com").0, "a subdomain");
        assert!(!m.check(b"badexample.com").0);
        let ip = parse("isset,ips,type ip,load ips.csv", false, &d).unwrap();
        assert!(ip.check(&[192, 0, 2, 1]).0, "IPv4 in an ip set");
        assert!(!ip.check(&[192, 0, 2, 2]).0);
        let set = parse("set,seen,type string", false, &d).unwrap();
        assert!(set.check(b"a").0, "newly added");
        assert!(!set.check(b"a").0, "already there");
        let rep = parse("hosts, >, 200, load rep.csv, type string", true, &d).unwrap();
        assert!(rep.check(b"example.com").0);
        let ctx =
            parse("isset,bad,type string,load ctx.json,format json,value_key host,context_key c,remove_key", false, &d)
                .unwrap();
        let (ok, c) = ctx.check(b"bad.org");
        assert!(ok);
        assert_eq!(c, Some(("c".to_string(), serde_json::json!({"why": "test"}))));
        assert!(parse("isset,x,type string,state x.csv", false, &d).is_err());
        let saved = parse("set,x,type string,save x.csv", false, &d).unwrap();
        assert_eq!(saved.save.as_deref(), Some(Path::new("x.csv")));
        assert!(parse("isset,x,type string,load missing.csv", false, &d).is_err());
        assert!(parse("isset,x,type bogus", false, &d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn saved_sets_are_csv_as_loaded() {
        let d = std::env::temp_dir().join(format!("soc-dataset-save-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        let set = parse("set,ua,type string,save after.csv", false, &d).unwrap();
        let unset = DatasetMatch { cmd: Some(DatasetCmd::Unset), ..set.clone() };
        assert!(set.check(b"useragent1").0);
        assert!(set.check(b"useragent2").0);
        assert!(unset.check(b"useragent1").0, "removed");
        assert!(!unset.check(b"useragent1").0, "already gone");
        assert_eq!(to_csv(&set.set, DataType::String), "dXNlcmFnZW50Mg==\n");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b""), "");
        // what is saved loads back
        std::fs::write(d.join("after.csv"), to_csv(&set.set, DataType::String)).unwrap_or_default();
        let back = parse("isset,ua2,type string,load after.csv", false, &d).unwrap();
        assert!(back.check(b"useragent2").0);
        assert!(!back.check(b"useragent1").0);
        let ips = parse("set,ips,type ip", false, &d).unwrap();
        assert!(ips.check(&[192, 0, 2, 1]).0);
        assert!(ips.check(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).0);
        assert_eq!(to_csv(&ips.set, DataType::Ip), "192.0.2.1\n2001:db8::1\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
