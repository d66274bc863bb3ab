//! Indicator-of-compromise lists: IPs, CIDRs, domains, URLs and file hashes from files,
//! matched against every record; a match becomes a `detection` of engine `ioc`.
//!
//! A list is a text file, one indicator per line, `#` comments and blank lines ignored.
//! Its type comes from the file name (`ip*.txt`, `cidr*`, `domain*`, `url*`, `hash*`/`md5*`/
//! `sha1*`/`sha256*`), or per line with a `type:` prefix (`ip:203.0.113.7`,
//! `domain:evil.example`, `sha256:...`) which any file may use; an untyped line in a file of
//! no type is typed by its form when that is unambiguous (address, CIDR, URL, hex digest,
//! dotted name). A line that is not a valid indicator is reported with file:line and
//! skipped; the rest of the list loads.
//!
//! Domains match themselves and their subdomains (`evil.example` matches
//! `cdn.evil.example`). Lists are reloaded when a file changes ([`IocWatcher`]).

use serde_json::Value;
use soc_model::{Detection, Event, EventType, Level};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A problem in a list file; the line is skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct IocLineError {
    pub path: String,
    pub line: usize,
    pub reason: String,
}

/// The loaded indicators, with the list each came from.
#[derive(Debug, Default)]
pub struct IocSet {
    ips: HashMap<IpAddr, String>,
    /// Prefix length -> network address -> list (v4 and v6 mixed; keys are masked u128).
    cidrs: BTreeMap<(bool, u8), HashMap<u128, String>>,
    domains: HashMap<String, String>,
    urls: HashMap<String, String>,
    hashes: HashMap<String, String>,
    pub errors: Vec<IocLineError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ip,
    Cidr,
    Domain,
    Url,
    Hash,
}

fn kind_of_name(name: &str) -> Option<Kind> {
    let n = name.to_ascii_lowercase();
    [
        ("cidr", Kind::Cidr),
        ("ip", Kind::Ip),
        ("domain", Kind::Domain),
        ("url", Kind::Url),
        ("hash", Kind::Hash),
        ("md5", Kind::Hash),
        ("sha1", Kind::Hash),
        ("sha256", Kind::Hash),
    ]
    .into_iter()
    .find_map(|(p, k)| n.starts_with(p).then_some(k))
}

/// The type of an untyped line when its form leaves no doubt.
fn infer(v: &str) -> Option<Kind> {
    if v.parse::<IpAddr>().is_ok() {
        Some(Kind::Ip)
    } else if v.split_once('/').is_some_and(|(a, n)| a.parse::<IpAddr>().is_ok() && n.parse::<u8>().is_ok()) {
        Some(Kind::Cidr)
    } else if v.contains("://") {
        Some(Kind::Url)
    } else if is_hex_hash(v) {
        Some(Kind::Hash)
    } else if v.contains('.')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        && v.chars().any(|c| c.is_ascii_alphabetic())
    {
        Some(Kind::Domain)
    } else {
        None
    }
}

fn bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (false, u128::from(u32::from(v4))),
            None => (true, u128::from(v6)),
        },
    }
}

fn mask(v6: bool, value: u128, prefix: u8) -> u128 {
    let width = if v6 { 128 } else { 32 };
    if prefix == 0 {
        0
    } else {
        let shift = width - u32::from(prefix);
        (value >> shift) << shift
    }
}

fn is_hex_hash(s: &str) -> bool {
    matches!(s.len(), 32 | 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl IocSet {
    /// Number of indicators loaded.
    pub fn len(&self) -> usize {
        self.ips.len()
            + self.cidrs.values().map(HashMap::len).sum::<usize>()
            + self.domains.len()
            + self.urls.len()
            + self.hashes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads every file under `paths` (files or directories, not recursive).
    pub fn load(paths: &[PathBuf]) -> Self {
        let mut set = IocSet::default();
        for f in list_files(paths) {
            match std::fs::read_to_string(&f) {
                Ok(text) => set.add_text(&f, &text),
                Err(e) => set.errors.push(IocLineError {
                    path: f.display().to_string(),
                    line: 0,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
        set
    }

    /// Adds the indicators of one file's text.
    pub fn add_text(&mut self, path: &Path, text: &str) {
        let list = path.file_stem().and_then(|s| s.to_str()).unwrap_or("ioc").to_string();
        let default = path.file_name().and_then(|s| s.to_str()).and_then(kind_of_name);
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(reason) = self.add_line(line, default, &list) {
                self.errors.push(IocLineError { path: path.display().to_string(), line: n + 1, reason });
            }
        }
    }

    fn add_line(&mut self, line: &str, default: Option<Kind>, list: &str) -> Result<(), String> {
        let (kind, value) = match line.split_once(':') {
            Some((p, v))
                if matches!(
                    p.to_ascii_lowercase().as_str(),
                    "ip" | "cidr" | "domain" | "url" | "hash" | "md5" | "sha1" | "sha256"
                ) =>
            {
                (kind_of_name(p), v.trim())
            }
            _ => (default, line),
        };
        let kind = kind.or_else(|| infer(value)).ok_or_else(|| {
            "unknown indicator type: name the file ip/cidr/domain/url/hash*.txt or prefix the line (ip:, domain:, ...)"
                .to_string()
        })?;
        match kind {
            Kind::Ip => {
                let ip: IpAddr = value.parse().map_err(|_| format!("{value:?} is not an IP address"))?;
                self.ips.insert(ip, list.into());
            }
            Kind::Cidr => {
                let (addr, len) =
                    value.split_once('/').ok_or_else(|| format!("{value:?} is not a CIDR (a.b.c.d/n)"))?;
                let ip: IpAddr = addr.parse().map_err(|_| format!("{value:?}: {addr:?} is not an IP address"))?;
                let len: u8 = len.parse().map_err(|_| format!("{value:?}: bad prefix length"))?;
                let (v6, b) = bits(ip);
                let len = if ip.is_ipv6() && !v6 { len.saturating_sub(96) } else { len };
                if len > if v6 { 128 } else { 32 } {
                    return Err(format!("{value:?}: prefix length too long"));
                }
                self.cidrs.entry((v6, len)).or_default().insert(mask(v6, b, len), list.into());
            }
            Kind::Domain => {
                let d = value.trim_end_matches('.').to_ascii_lowercase();
                if d.is_empty() || d.contains(['/', ' ', ':']) {
                    return Err(format!("{value:?} is not a domain name"));
                }
                self.domains.insert(d, list.into());
            }
            Kind::Url => {
                if !value.contains("://") {
                    return Err(format!("{value:?} is not a URL (scheme://host/path)"));
                }
                self.urls.insert(value.to_string(), list.into());
            }
            Kind::Hash => {
                let h = value.to_ascii_lowercase();
                if !is_hex_hash(&h) {
                    return Err(format!("{value:?} is not an MD5, SHA-1 or SHA-256 hex digest"));
                }
                self.hashes.insert(h, list.into());
            }
        }
        Ok(())
    }

    fn match_ip(&self, ip: IpAddr) -> Option<&str> {
        if let Some(l) = self.ips.get(&ip) {
            return Some(l);
        }
        let (v6, b) = bits(ip);
        self.cidrs
            .iter()
            .rev()
            .filter(|((is6, _), _)| *is6 == v6)
            .find_map(|((_, len), nets)| nets.get(&mask(v6, b, *len)).map(String::as_str))
    }

    /// The list of `name` or of the closest listed parent domain, with the listed domain.
    fn match_domain(&self, name: &str) -> Option<(&str, String)> {
        if self.domains.is_empty() {
            return None;
        }
        let d = name.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = d.as_str();
        loop {
            if let Some(l) = self.domains.get(rest) {
                return Some((l.as_str(), rest.to_string()));
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// The indicators a record contains. Values are checked where they stand; nothing is
    /// allocated for a record without a hit (this runs on every record).
    pub fn matches(&self, ev: &Event) -> Vec<IocHit> {
        let mut hits = Hits { set: self, out: Vec::new() };
        if self.is_empty() {
            return hits.out;
        }
        for (f, v) in [("src_ip", &ev.src_ip), ("dest_ip", &ev.dest_ip)] {
            if let Some(v) = v {
                hits.ip(("", f), v);
            }
        }
        if let Some(h) = &ev.http
            && let Some(host) = &h.hostname
        {
            hits.domain(("", "http.hostname"), host);
            if let (Some(u), false) = (&h.url, self.urls.is_empty()) {
                hits.url(("", "http.url"), &format!("http://{host}{u}"));
            }
        }
        if let Some(d) = &ev.dns {
            for q in &d.queries {
                if let Some(n) = &q.rrname {
                    hits.domain(("", "dns.rrname"), n);
                }
            }
        }
        if let Some(sni) = ev.tls.as_ref().and_then(|t| t.sni.as_ref()) {
            hits.domain(("", "tls.sni"), sni);
        }
        if let Some(fi) = ev.extra.get("fileinfo") {
            for (algo, field) in [("md5", "fileinfo.md5"), ("sha1", "fileinfo.sha1"), ("sha256", "fileinfo.sha256")] {
                if let Some(h) = fi.get(algo).and_then(Value::as_str) {
                    hits.hash(("", field), h);
                }
            }
        }
        if let Some(l) = &ev.log {
            for (k, v) in &l.fields {
                let Value::String(v) = v else { continue };
                let field = ("log.", k.as_str());
                if v.parse::<IpAddr>().is_ok() {
                    hits.ip(field, v);
                } else if k.eq_ignore_ascii_case("hashes") {
                    // Sysmon: "SHA1=...,MD5=...,SHA256=...,IMPHASH=..."
                    for part in v.split(',') {
                        if let Some((_, h)) = part.split_once('=') {
                            hits.hash(field, h);
                        }
                    }
                } else if is_hex_hash(v) {
                    hits.hash(field, v);
                } else if ["query", "domain", "host"].iter().any(|w| contains_ci(k, w)) {
                    hits.domain(field, v);
                } else if contains_ci(k, "url") || v.starts_with("http://") || v.starts_with("https://") {
                    hits.url(field, v);
                }
            }
        }
        hits.out
    }
}

/// `needle` (lowercase ASCII) in `hay`, ignoring ASCII case.
fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Hits of one record, each (type, indicator) once. Fields are `(prefix, name)` and only
/// joined into a string for a hit.
struct Hits<'a> {
    set: &'a IocSet,
    out: Vec<IocHit>,
}

impl Hits<'_> {
    fn push(&mut self, kind: &'static str, indicator: &str, field: (&str, &str), value: &str, list: &str) {
        if !self.out.iter().any(|h| h.kind == kind && h.indicator == indicator) {
            self.out.push(IocHit::new(kind, indicator, &format!("{}{}", field.0, field.1), value, list));
        }
    }
    fn ip(&mut self, field: (&str, &str), v: &str) {
        if let Some(list) = v.parse::<IpAddr>().ok().and_then(|ip| self.set.match_ip(ip)) {
            self.push("ip", v, field, v, list);
        }
    }
    fn domain(&mut self, field: (&str, &str), v: &str) {
        if let Some((list, d)) = self.set.match_domain(v) {
            self.push("domain", &d, field, v, list);
        }
    }
    fn url(&mut self, field: (&str, &str), v: &str) {
        if let Some(list) = self.set.urls.get(v) {
            self.push("url", v, field, v, list);
        }
    }
    fn hash(&mut self, field: (&str, &str), v: &str) {
        if self.set.hashes.is_empty() || !is_hex_hash(v) {
            return;
        }
        if let Some(list) = self.set.hashes.get(&v.to_ascii_lowercase()) {
            self.push("hash", &v.to_ascii_lowercase(), field, v, list);
        }
    }
}

/// One indicator found in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IocHit {
    pub kind: &'static str,
    pub indicator: String,
    pub field: String,
    pub value: String,
    pub list: String,
}

impl IocHit {
    fn new(kind: &'static str, indicator: &str, field: &str, value: &str, list: &str) -> Self {
        IocHit {
            kind,
            indicator: indicator.to_string(),
            field: field.to_string(),
            value: value.to_string(),
            list: list.to_string(),
        }
    }

    /// The `detection` record of this hit on `ev` (deterministic id: same record, same hit).
    pub fn detection(&self, ev: &Event, level: Level) -> Event {
        let mut d = Event::new(EventType::Detection, ev.timestamp);
        d.host = ev.host.clone();
        d.segment = ev.segment.clone();
        d.sensor = ev.sensor.clone();
        d.src_ip = ev.src_ip.clone();
        d.src_port = ev.src_port;
        d.dest_ip = ev.dest_ip.clone();
        d.dest_port = ev.dest_port;
        d.proto = ev.proto.clone();
        d.flow_id = ev.flow_id;
        d.community_id = ev.community_id.clone();
        let mut extra = serde_json::Map::new();
        extra.insert("matched_fields".into(), serde_json::json!([{"field": self.field, "value": self.value}]));
        extra.insert(
            "ioc".into(),
            serde_json::json!({"type": self.kind, "indicator": self.indicator, "list": self.list}),
        );
        d.detection = Some(Detection {
            engine: "ioc".into(),
            rule_id: format!("ioc:{}:{}", self.kind, self.indicator),
            rule_title: format!("IOC match: {} {} (list {})", self.kind, self.indicator, self.list),
            level,
            tags: Vec::new(),
            logsource: ev.log.as_ref().map(|l| l.logsource.clone()),
            evidence: vec![ev.id.clone().unwrap_or_else(|| ev.compute_id())],
            extra,
        });
        d.ensure_id();
        d
    }
}

fn list_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                let mut files: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| {
                        f.is_file()
                            && !f
                                .file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with('.') || n.ends_with(".tmp"))
                    })
                    .collect();
                files.sort();
                out.extend(files);
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Reloads the lists when a file is added, removed or modified (checked at most every
/// `interval`). A reload that fails to read keeps the previous set.
#[derive(Debug)]
pub struct IocWatcher {
    paths: Vec<PathBuf>,
    interval: Duration,
    checked: Instant,
    stamp: Vec<(PathBuf, Option<SystemTime>, u64)>,
    pub set: IocSet,
    pub level: Level,
}

fn stamp(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    list_files(paths)
        .into_iter()
        .map(|f| {
            let md = std::fs::metadata(&f).ok();
            let m = md.as_ref().and_then(|m| m.modified().ok());
            let len = md.map_or(0, |m| m.len());
            (f, m, len)
        })
        .collect()
}

impl IocWatcher {
    pub fn new(paths: Vec<PathBuf>, level: Level, interval: Duration) -> Self {
        let stamp = stamp(&paths);
        let set = IocSet::load(&paths);
        report(&set);
        IocWatcher { paths, interval, checked: Instant::now(), stamp, set, level }
    }

    /// Reloads when due and changed; returns true when it reloaded.
    pub fn maybe_reload(&mut self) -> bool {
        if self.checked.elapsed() < self.interval {
            return false;
        }
        self.checked = Instant::now();
        let now = stamp(&self.paths);
        if now == self.stamp {
            return false;
        }
        self.stamp = now;
        self.set = IocSet::load(&self.paths);
        report(&self.set);
        true
    }

    /// Detections for the indicators in `ev`.
    pub fn detect(&self, ev: &Event, out: &mut Vec<Event>) {
        if ev.event_type == EventType::Detection {
            return;
        }
        for hit in self.set.matches(ev) {
            metrics::counter!("soc_correlator_ioc_hits_total", "type" => hit.kind).increment(1);
            out.push(hit.detection(ev, self.level));
        }
    }
}

fn report(set: &IocSet) {
    metrics::gauge!("soc_correlator_ioc_indicators").set(set.len() as f64);
    for e in &set.errors {
        tracing::warn!(error = %e, "IOC list line skipped");
    }
    metrics::counter!("soc_correlator_ioc_bad_lines_total").increment(set.errors.len() as u64);
    tracing::info!(indicators = set.len(), bad_lines = set.errors.len(), "IOC lists loaded");
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::{Dns, DnsQuery, Log, Timestamp};

    fn set(files: &[(&str, &str)]) -> IocSet {
        let mut s = IocSet::default();
        for (name, text) in files {
            s.add_text(Path::new(name), text);
        }
        s
    }

    fn net(src: &str, dst: &str) -> Event {
        let mut e = Event::new(EventType::Flow, Timestamp::from_unix_micros(1_700_000_000_000_000));
        e.src_ip = Some(src.into());
        e.dest_ip = Some(dst.into());
        e
    }

    #[test]
    fn ips_cidrs_domains_urls_and_hashes_match() {
        let s = set(&[
            ("ip.txt", "# bad hosts\n203.0.113.7\n2001:db8::66\n"),
            ("cidr-ncsc.txt", "198.51.100.0/24\n10.0.0.0/8\n"),
            (
                "mixed.txt",
                "domain:evil.example\nurl:http://bad.example/x.exe\nsha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
            ),
        ]);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.len(), 7);
        let hits = s.matches(&net("192.168.1.2", "203.0.113.7"));
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].kind, hits[0].list.as_str()), ("ip", "ip"));
        assert_eq!(s.matches(&net("198.51.100.200", "8.8.8.8"))[0].list, "cidr-ncsc");
        assert_eq!(s.matches(&net("2001:db8::66", "8.8.8.8")).len(), 1);
        assert!(s.matches(&net("198.51.101.1", "8.8.8.8")).is_empty());
        let mut dns = net("10.1.1.1", "10.1.1.53");
        dns.dns = Some(Dns {
            queries: vec![DnsQuery { rrname: Some("CDN.Evil.Example.".into()), ..Default::default() }],
            ..Default::default()
        });
        let hits = s.matches(&dns);
        assert!(hits.iter().any(|h| h.kind == "domain" && h.indicator == "evil.example"), "{hits:?}");
        let mut log = Event::new(EventType::Log, Timestamp::from_unix_micros(0));
        let mut l = Log::default();
        l.fields.insert("Hashes".into(), Value::String(format!("MD5=00,SHA256={}", "a".repeat(64))));
        l.fields.insert("DestinationIp".into(), Value::String("203.0.113.7".into()));
        log.log = Some(l);
        let kinds: Vec<&str> = s.matches(&log).iter().map(|h| h.kind).collect();
        assert_eq!(kinds, vec!["ip", "hash"]);
    }

    #[test]
    fn bad_lines_are_reported_with_file_and_line_and_the_rest_loads() {
        let s = set(&[
            ("ip.txt", "203.0.113.7\nnot-an-ip\n\n198.51.100.1\n"),
            ("hash.txt", "xyz\n"),
            ("misc.txt", "foo\n192.0.2.1\n10.9.0.0/16\nbad.example\n"),
        ]);
        assert_eq!(s.len(), 5, "untyped lines of a clear form are inferred");
        let where_: Vec<String> = s.errors.iter().map(|e| format!("{}:{}", e.path, e.line)).collect();
        assert_eq!(where_, vec!["ip.txt:2", "hash.txt:1", "misc.txt:1"]);
        assert!(s.errors[0].reason.contains("not-an-ip"));
    }

    #[test]
    fn hits_become_deterministic_detections_and_lists_reload_on_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ip.txt"), "203.0.113.7\n").unwrap();
        let mut w = IocWatcher::new(vec![dir.path().to_path_buf()], Level::High, Duration::ZERO);
        let mut e = net("10.0.0.1", "203.0.113.7");
        e.ensure_id();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        w.detect(&e, &mut a);
        w.detect(&e, &mut b);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, b[0].id);
        let d = a[0].detection.as_ref().unwrap();
        assert_eq!((d.engine.as_str(), d.level), ("ioc", Level::High));
        assert_eq!(d.evidence, vec![e.id.clone().unwrap()]);
        assert!(!w.maybe_reload(), "unchanged");
        std::fs::write(dir.path().join("ip.txt"), "203.0.113.7\n203.0.113.8\n").unwrap();
        assert!(w.maybe_reload());
        assert_eq!(w.set.len(), 2);
    }
}
