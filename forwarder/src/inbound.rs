//! The inbound path: indicators the NCSC publishes on a TAXII collection are polled and
//! written as IOC list files for the correlator (`ip-ncsc.txt`, `cidr-ncsc.txt`,
//! `domain-ncsc.txt`, `url-ncsc.txt`, `hash-ncsc.txt`, one value per line), each replaced
//! atomically (temporary file, then rename) so the correlator never reads half a list.
//!
//! Only STIX patterns the lists can express are loaded: `=` comparisons on
//! `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`, `url:value`,
//! `file:hashes.<algo>` and `network-traffic:(src|dst)_ref.value`, joined by `OR`. Anything
//! else (AND, FOLLOWEDBY, qualifiers, other operators, other pattern languages) is counted
//! as unsupported and skipped, never loaded half-understood. Revoked and expired indicators
//! are dropped; the newest version of each indicator wins.

use crate::taxii::{TaxiiClient, TaxiiError};
use serde_json::Value;
use soc_model::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// IOC values by list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IocLists {
    pub ip: BTreeSet<String>,
    pub cidr: BTreeSet<String>,
    pub domain: BTreeSet<String>,
    pub url: BTreeSet<String>,
    pub hash: BTreeSet<String>,
}

impl IocLists {
    pub fn len(&self) -> usize {
        self.ip.len() + self.cidr.len() + self.domain.len() + self.url.len() + self.hash.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds a value to the list of its path; `false` when the path or the value does not fit.
    fn add(&mut self, path: &str, value: &str) -> bool {
        let (list, v) = match path {
            "ipv4-addr:value"
            | "ipv6-addr:value"
            | "network-traffic:dst_ref.value"
            | "network-traffic:src_ref.value" => match value.split_once('/') {
                Some((a, n)) if a.parse::<IpAddr>().is_ok() && n.parse::<u8>().is_ok() => {
                    (&mut self.cidr, value.to_string())
                }
                None if value.parse::<IpAddr>().is_ok() => (&mut self.ip, value.to_string()),
                _ => return false,
            },
            "domain-name:value" => {
                let d = value.trim_end_matches('.').to_ascii_lowercase();
                if d.is_empty() || d.contains(['/', ' ', ':']) {
                    return false;
                }
                (&mut self.domain, d)
            }
            "url:value" if value.contains("://") => (&mut self.url, value.to_string()),
            p if p.starts_with("file:hashes.") => {
                let h = value.to_ascii_lowercase();
                if !matches!(h.len(), 32 | 40 | 64 | 128) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return false;
                }
                (&mut self.hash, h)
            }
            _ => return false,
        };
        list.insert(v);
        true
    }
}

/// The `=` comparisons of a pattern made only of `[path = 'value']` joined by OR (inside or
/// across brackets). `None` when the pattern uses anything else.
pub fn simple_comparisons(pattern: &str) -> Option<Vec<(String, String)>> {
    let b = pattern.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut expect_term = true;
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        match b[i] {
            b'[' | b'(' if expect_term => i += 1,
            b']' | b')' if !expect_term => i += 1,
            _ if !expect_term => {
                if pattern[i..].starts_with("OR")
                    && pattern[i + 2..].starts_with(|c: char| c.is_whitespace() || c == '[')
                {
                    i += 2;
                    expect_term = true;
                } else {
                    return None;
                }
            }
            _ => {
                // path: up to whitespace or '=', quoted segments allowed after '.'
                let start = i;
                while i < b.len() && !(b[i] as char).is_ascii_whitespace() && b[i] != b'=' && b[i] != b'!' {
                    if b[i] == b'\'' {
                        i += 1;
                        while i < b.len() && b[i] != b'\'' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                let path = pattern.get(start..i.min(b.len()))?.replace('\'', "");
                skip_ws(&mut i);
                if i >= b.len() || b[i] != b'=' {
                    return None;
                }
                i += 1;
                skip_ws(&mut i);
                if i >= b.len() || b[i] != b'\'' {
                    return None;
                }
                i += 1;
                let mut v = String::new();
                let mut closed = false;
                while i < b.len() {
                    let c = pattern[i..].chars().next()?;
                    if c == '\\' {
                        let n = pattern[i + 1..].chars().next()?;
                        v.push(n);
                        i += 1 + n.len_utf8();
                    } else if c == '\'' {
                        i += 1;
                        closed = true;
                        break;
                    } else {
                        v.push(c);
                        i += c.len_utf8();
                    }
                }
                if !closed {
                    return None;
                }
                out.push((path, v));
                expect_term = false;
            }
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// What a load found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub indicators: u64,
    pub loaded: u64,
    pub unsupported: u64,
    pub expired_or_revoked: u64,
}

/// The IOC lists of a set of indicator objects (newest version of each id).
pub fn lists_from_indicators(objects: &[Value], now: Timestamp) -> (IocLists, LoadStats) {
    let mut newest: BTreeMap<&str, &Value> = BTreeMap::new();
    for o in objects.iter().filter(|o| o.get("type").and_then(Value::as_str) == Some("indicator")) {
        let Some(id) = o.get("id").and_then(Value::as_str) else { continue };
        let m = |o: &Value| o.get("modified").and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok());
        match newest.get(id) {
            Some(prev) if m(prev).map(|t| t.unix_micros()) >= m(o).map(|t| t.unix_micros()) => {}
            _ => {
                newest.insert(id, o);
            }
        }
    }
    let mut lists = IocLists::default();
    let mut st = LoadStats::default();
    for o in newest.values() {
        st.indicators += 1;
        let revoked = o.get("revoked").and_then(Value::as_bool).unwrap_or(false);
        let expired = o
            .get("valid_until")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
            .is_some_and(|t| t.unix_micros() < now.unix_micros());
        if revoked || expired {
            st.expired_or_revoked += 1;
            continue;
        }
        let stix = o.get("pattern_type").and_then(Value::as_str).unwrap_or("stix") == "stix";
        let comps = o.get("pattern").and_then(Value::as_str).filter(|_| stix).and_then(simple_comparisons);
        let Some(comps) = comps else {
            st.unsupported += 1;
            continue;
        };
        let mut any = false;
        for (path, v) in comps {
            any |= lists.add(&path, &v);
        }
        if any {
            st.loaded += 1;
        } else {
            st.unsupported += 1;
        }
    }
    (lists, st)
}

fn write_atomic(path: &Path, lines: &BTreeSet<String>, header: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("txt.tmp");
    let mut text = format!("# {header}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes the five list files into `dir` (created if missing), each replaced atomically.
pub fn write_lists(dir: &Path, lists: &IocLists) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let h = "indicators published by the NCSC (written by soc forwarder; replaced on every poll)";
    write_atomic(&dir.join("ip-ncsc.txt"), &lists.ip, h)?;
    write_atomic(&dir.join("cidr-ncsc.txt"), &lists.cidr, h)?;
    write_atomic(&dir.join("domain-ncsc.txt"), &lists.domain, h)?;
    write_atomic(&dir.join("url-ncsc.txt"), &lists.url, h)?;
    write_atomic(&dir.join("hash-ncsc.txt"), &lists.hash, h)
}

/// Inbound failures.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Taxii(#[from] TaxiiError),
    #[error("writing IOC lists to {dir}: {source}")]
    Write { dir: String, source: std::io::Error },
}

/// Polls one collection and keeps the lists up to date.
#[derive(Debug)]
pub struct Inbound {
    client: TaxiiClient,
    collection_url: String,
    out_dir: PathBuf,
    indicators: Vec<Value>,
    added_after: Option<String>,
}

impl Inbound {
    pub fn new(client: TaxiiClient, collection_url: impl Into<String>, out_dir: impl Into<PathBuf>) -> Self {
        Inbound {
            client,
            collection_url: collection_url.into(),
            out_dir: out_dir.into(),
            indicators: vec![],
            added_after: None,
        }
    }

    /// One poll: fetches indicators added since the last poll, rewrites the lists.
    pub async fn poll_once(&mut self) -> Result<LoadStats, InboundError> {
        let mut params: Vec<(&str, &str)> = vec![("match[type]", "indicator"), ("match[version]", "all")];
        let after = self.added_after.clone();
        if let Some(a) = &after {
            params.push(("added_after", a));
        }
        let page = self.client.get_all_objects(&self.collection_url, &params).await?;
        if page.date_added_last.is_some() {
            self.added_after = page.date_added_last;
        }
        self.indicators.extend(page.objects);
        let (lists, st) = lists_from_indicators(&self.indicators, Timestamp::now());
        write_lists(&self.out_dir, &lists)
            .map_err(|source| InboundError::Write { dir: self.out_dir.display().to_string(), source })?;
        metrics::gauge!("soc_forwarder_inbound_iocs").set(lists.len() as f64);
        metrics::counter!("soc_forwarder_inbound_unsupported_total").absolute(st.unsupported);
        Ok(st)
    }
}

/// Polls every `interval` until `stop`; a failed poll is logged, counted and retried at the
/// next interval (the previous lists stay in place).
pub async fn run(mut inbound: Inbound, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match inbound.poll_once().await {
            Ok(st) => tracing::info!(
                indicators = st.indicators,
                loaded = st.loaded,
                unsupported = st.unsupported,
                expired_or_revoked = st.expired_or_revoked,
                "NCSC indicators loaded"
            ),
            Err(e) => {
                metrics::counter!("soc_forwarder_inbound_errors_total").increment(1);
                tracing::warn!(error = %e, "NCSC indicator poll failed; keeping the previous lists");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_patterns_are_understood() {
        assert_eq!(
            simple_comparisons("[ipv4-addr:value = '198.51.100.1']").unwrap(),
            vec![("ipv4-addr:value".to_string(), "198.51.100.1".to_string())]
        );
        assert_eq!(
            simple_comparisons("[file:hashes.'SHA-256' = 'AB' OR domain-name:value = 'it\\'s.example']").unwrap(),
            vec![
                ("file:hashes.SHA-256".to_string(), "AB".to_string()),
                ("domain-name:value".to_string(), "it's.example".to_string())
            ]
        );
        assert!(simple_comparisons("[ipv4-addr:value = '1.2.3.4'] OR [url:value = 'http://x/']").is_some());
    }

    #[test]
    fn complex_patterns_are_refused_not_half_loaded() {
        for p in [
            "[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 80]",
            "[ipv4-addr:value != '1.2.3.4']",
            "[domain-name:value LIKE '%.evil']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 10 SECONDS",
            "[ipv4-addr:value = '1.2.3.4",
            "",
        ] {
            assert!(simple_comparisons(p).is_none(), "{p}");
        }
    }

    fn ind(id: &str, modified: &str, pattern: &str) -> Value {
        json!({"type": "indicator", "id": id, "modified": modified, "pattern": pattern, "pattern_type": "stix"})
    }

    #[test]
    fn newest_version_wins_and_revoked_or_expired_indicators_are_dropped() {
        let mut revoked = ind("indicator--3", "2026-01-01T00:00:00Z", "[domain-name:value = 'gone.example']");
        revoked["revoked"] = json!(true);
        let mut expired = ind("indicator--4", "2026-01-01T00:00:00Z", "[url:value = 'http://old.example/']");
        expired["valid_until"] = json!("2020-01-01T00:00:00Z");
        let objs = vec![
            ind("indicator--1", "2026-01-01T00:00:00Z", "[ipv4-addr:value = '198.51.100.1']"),
            ind("indicator--1", "2026-02-01T00:00:00Z", "[ipv4-addr:value = '198.51.100.2']"),
            ind(
                "indicator--2",
                "2026-01-01T00:00:00Z",
                "[ipv4-addr:value = '203.0.113.0/24' OR file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']",
            ),
            revoked,
            expired,
            ind("indicator--5", "2026-01-01T00:00:00Z", "[process:name = 'x']"),
        ];
        let (l, st) = lists_from_indicators(&objs, Timestamp::now());
        assert_eq!(l.ip.iter().collect::<Vec<_>>(), vec!["198.51.100.2"]);
        assert!(l.cidr.contains("203.0.113.0/24"));
        assert!(l.hash.contains("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(l.domain.is_empty() && l.url.is_empty());
        assert_eq!(st, LoadStats { indicators: 5, loaded: 2, unsupported: 1, expired_or_revoked: 2 });
    }

    #[test]
    fn lists_are_written_one_value_per_line() {
        let d = tempfile::tempdir().unwrap();
        let mut l = IocLists::default();
        l.domain.insert("evil.example".into());
        write_lists(d.path(), &l).unwrap();
        let text = std::fs::read_to_string(d.path().join("domain-ncsc.txt")).unwrap();
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(), vec!["evil.example"]);
        assert!(d.path().join("ip-ncsc.txt").is_file());
        assert!(!d.path().join("domain-ncsc.txt.tmp").exists());
    }
}
