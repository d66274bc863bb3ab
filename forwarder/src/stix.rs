//! STIX 2.1 bundles for incidents.
//!
//! An incident version becomes one bundle: the ministry SOC's `identity`, a TLP 2.0
//! `marking-definition`, the `incident` (with the incident core extension's properties), SCOs
//! for the addresses, domains, URLs, file hashes and connections involved, one
//! `observed-data` per alert, `indicator`s (STIX patterns) for the IOCs and signatures, a
//! `sighting` per indicator and `relationship`s tying them to the incident.
//!
//! Every id is deterministic, so a retry sends byte-identical objects and the server can
//! recognise what it already holds:
//! - the incident: `incident--` + UUIDv5([`NAMESPACE`], incident_id): every version of one
//!   incident is a version of ONE STIX object (`modified` = the version's `updated` time);
//! - the bundle: UUIDv5([`NAMESPACE`], `incident_id:version`);
//! - SCOs: STIX's own rule (UUIDv5 of the canonical JSON of the id-contributing properties,
//!   in the SCO namespace `00abedb4-...`);
//! - everything else: UUIDv5([`NAMESPACE`], the object's content).

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use soc_model::{Incident, IncidentAlert, IncidentStatus, Level, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The project's UUIDv5 namespace for STIX ids (a random v4 picked once; never change it:
/// ids already sent would no longer match).
pub const NAMESPACE: [u8; 16] =
    [0x3c, 0x6e, 0x0b, 0x52, 0x8a, 0x4f, 0x4d, 0x1e, 0x9b, 0x27, 0x5d, 0x61, 0xc2, 0x0e, 0x7a, 0x93];
/// STIX 2.1's namespace for deterministic SCO ids (section 2.9).
pub const SCO_NAMESPACE: [u8; 16] =
    [0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7];
/// Extension definition of the TLP 2.0 marking definitions (OASIS CTI TC).
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";
/// Extension definition of the STIX incident core extension (OASIS CTI TC).
pub const INCIDENT_CORE_EXTENSION: &str = "extension-definition--ef765651-680c-498d-9894-99799f2fa126";
/// Identity that created the TLP 2.0 marking definitions.
const TLP2_CREATOR: &str = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01";
/// `created` of our identity object: fixed, so the identity is the same object in every bundle.
const IDENTITY_CREATED: &str = "2026-01-01T00:00:00.000Z";

/// RFC 4122 version-5 UUID (SHA-1 of namespace and name), lower-case hyphenated.
pub fn uuid5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// TLP 2.0 levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tlp {
    Clear,
    Green,
    #[default]
    Amber,
    #[serde(rename = "amber+strict")]
    AmberStrict,
    Red,
}

impl Tlp {
    /// The standard marking-definition id of this level.
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }
    fn value(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
    /// The standard TLP 2.0 marking-definition object of this level.
    pub fn marking_definition(self) -> Value {
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.marking_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "created_by_ref": TLP2_CREATOR,
            "name": format!("TLP:{}", self.value().to_ascii_uppercase()),
            "extensions": { TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": self.value() } },
        })
    }
}

/// Who the bundles come from, and how they are marked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleOptions {
    /// Name of the SOC's `identity` (e.g. "Ministry SOC").
    pub identity_name: String,
    pub tlp: Tlp,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions { identity_name: "Canh Gac SOC".into(), tlp: Tlp::Amber }
    }
}

/// The SOC's identity object (same id and content in every bundle).
pub fn identity(opts: &BundleOptions) -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(opts),
        "created": IDENTITY_CREATED,
        "modified": IDENTITY_CREATED,
        "name": opts.identity_name,
        "identity_class": "organization",
        "sectors": ["government-national"],
    })
}

fn identity_id(opts: &BundleOptions) -> String {
    format!("identity--{}", uuid5(&NAMESPACE, format!("identity:{}", opts.identity_name).as_bytes()))
}

/// The STIX id of an incident (the same for all its versions).
pub fn incident_stix_id(incident_id: &str) -> String {
    format!("incident--{}", uuid5(&NAMESPACE, incident_id.as_bytes()))
}

/// The bundle id of one incident version.
pub fn bundle_id(incident_id: &str, version: u64) -> String {
    format!("bundle--{}", uuid5(&NAMESPACE, format!("{incident_id}:{version}").as_bytes()))
}

/// STIX timestamp (UTC, `Z`, microseconds).
pub fn stix_time(t: Timestamp) -> String {
    t.to_utc().to_rfc3339()
}

/// Canonical JSON (keys sorted, no whitespace), as STIX's deterministic SCO ids require.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// An SCO with its deterministic id from the id-contributing properties `contrib`.
fn sco(kind: &str, contrib: Value) -> Value {
    let id = format!("{kind}--{}", uuid5(&SCO_NAMESPACE, canonical_json(&contrib).as_bytes()));
    let mut m = match contrib {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("type".into(), Value::String(kind.into()));
    m.insert("spec_version".into(), Value::String("2.1".into()));
    m.insert("id".into(), Value::String(id));
    Value::Object(m)
}

fn id_of(v: &Value) -> String {
    v.get("id").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Quotes a value for a STIX pattern string literal.
fn pattern_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn hash_key(algo: &str) -> Option<&'static str> {
    match algo.to_ascii_lowercase().as_str() {
        "md5" => Some("MD5"),
        "sha1" | "sha-1" => Some("SHA-1"),
        "sha256" | "sha-256" => Some("SHA-256"),
        "sha512" | "sha-512" => Some("SHA-512"),
        _ => None,
    }
}

fn is_hex_len(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An observable of an alert, as an SCO and the STIX pattern that matches it.
struct Observable {
    sco: Value,
    pattern: String,
}

fn ip_observable(ip: &str) -> Option<Observable> {
    let addr: IpAddr = ip.parse().ok()?;
    let kind = if addr.is_ipv4() { "ipv4-addr" } else { "ipv6-addr" };
    Some(Observable {
        sco: sco(kind, json!({ "value": addr.to_string() })),
        pattern: format!("[{kind}:value = {}]", pattern_literal(&addr.to_string())),
    })
}

/// `domain:x`, `url:x`, `sha256:x`, `md5:x`, `sha1:x` -> SCO + pattern. Anything else, or a
/// malformed value, is left out (counted by the caller).
fn tagged_observable(o: &str) -> Option<Observable> {
    let (kind, value) = o.split_once(':')?;
    let value = value.trim();
    match kind.to_ascii_lowercase().as_str() {
        "domain" => {
            let d = value.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || d.contains(['/', ' ', ':', '\'']) {
                return None;
            }
            Some(Observable {
                sco: sco("domain-name", json!({ "value": d })),
                pattern: format!("[domain-name:value = {}]", pattern_literal(&d)),
            })
        }
        "url" => {
            if !value.contains("://") || value.contains(char::is_whitespace) {
                return None;
            }
            Some(Observable {
                sco: sco("url", json!({ "value": value })),
                pattern: format!("[url:value = {}]", pattern_literal(value)),
            })
        }
        algo => {
            let key = hash_key(algo)?;
            let want = match key {
                "MD5" => 32,
                "SHA-1" => 40,
                "SHA-256" => 64,
                _ => 128,
            };
            let h = value.to_ascii_lowercase();
            if !is_hex_len(&h, want) {
                return None;
            }
            Some(Observable {
                sco: sco("file", json!({ "hashes": { key: h } })),
                pattern: format!("[file:hashes.{} = {}]", pattern_literal(key), pattern_literal(&h)),
            })
        }
    }
}

fn level_criticality(l: Level) -> u64 {
    match l {
        Level::Informational => 10,
        Level::Low => 30,
        Level::Medium => 50,
        Level::High => 75,
        Level::Critical => 95,
    }
}

/// The incident core extension's properties that fit what the SOC knows.
fn incident_extension(i: &Incident) -> Value {
    let (investigation_status, determination) = match i.status {
        IncidentStatus::New => ("new", "suspected"),
        IncidentStatus::Acknowledged | IncidentStatus::Investigating => ("open", "suspected"),
        IncidentStatus::Resolved => ("closed", "confirmed"),
        IncidentStatus::FalsePositive => ("closed", "false-positive"),
    };
    json!({
        "extension_type": "property-extension",
        "investigation_status": investigation_status,
        "determination": determination,
        "criticality": level_criticality(i.severity),
    })
}

/// MITRE ATT&CK technique id from a tag (`attack.t1059.001` -> `T1059.001`).
fn attack_technique(tag: &str) -> Option<String> {
    let t = tag.strip_prefix("attack.")?;
    let mut chars = t.chars();
    if !matches!(chars.next(), Some('t' | 'T')) {
        return None;
    }
    let rest: &str = &t[1..];
    let (main, sub) = rest.split_once('.').unwrap_or((rest, ""));
    if main.len() != 4 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !sub.is_empty() && (sub.len() != 3 || !sub.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(if sub.is_empty() { format!("T{main}") } else { format!("T{main}.{sub}") })
}

/// Deterministic bundle of one incident version. The incident should already be redacted
/// ([`crate::redact`]); this function does not look at policy.
pub fn incident_bundle(incident: &Incident, opts: &BundleOptions) -> Value {
    let ident = identity(opts);
    let ident_id = id_of(&ident);
    let marking = opts.tlp.marking_definition();
    let marking_id = opts.tlp.marking_id();
    let inc_id = incident_stix_id(&incident.incident_id);

    // Times: `created` is stable for all versions (the first sighting), `modified` is this
    // version's time and never earlier than `created`.
    let first_alert = incident.alerts.iter().map(|a| a.timestamp.unix_micros()).min();
    let created_t = incident
        .first_seen
        .map(|t| t.unix_micros())
        .or(first_alert)
        .or(incident.updated.map(|t| t.unix_micros()))
        .unwrap_or(0);
    let modified_t = incident.updated.map(|t| t.unix_micros()).unwrap_or(created_t).max(created_t);
    let created = stix_time(Timestamp::from_unix_micros(created_t));
    let modified = stix_time(Timestamp::from_unix_micros(modified_t));

    let mut objects: Vec<Value> = vec![ident, marking];
    let mut scos: BTreeMap<String, Value> = BTreeMap::new();
    let mut others: Vec<Value> = Vec::new();
    let mut related: BTreeSet<String> = BTreeSet::new();
    // pattern -> (name, first time, observed-data ids)
    let mut indicators: BTreeMap<String, (String, i64, BTreeSet<String>, u64)> = BTreeMap::new();
    let mut refs: BTreeSet<(String, String, String)> = BTreeSet::new();

    for a in &incident.alerts {
        let t = stix_time(a.timestamp);
        let mut alert_scos: Vec<String> = Vec::new();
        let mut alert_patterns: Vec<String> = Vec::new();
        let src = a.src_ip.as_deref().and_then(ip_observable);
        let dst = a.dest_ip.as_deref().and_then(ip_observable);
        for o in [&src, &dst].into_iter().flatten() {
            alert_scos.push(id_of(&o.sco));
            scos.insert(id_of(&o.sco), o.sco.clone());
        }
        // Both ports, or no connection object (STIX best practice 301 wants both).
        if (src.is_some() || dst.is_some()) && a.src_port.is_some() && a.dest_port.is_some() {
            let mut nt = Map::new();
            if let Some(s) = &src {
                nt.insert("src_ref".into(), Value::String(id_of(&s.sco)));
            }
            if let Some(d) = &dst {
                nt.insert("dst_ref".into(), Value::String(id_of(&d.sco)));
            }
            if let Some(p) = a.src_port {
                nt.insert("src_port".into(), json!(p));
            }
            if let Some(p) = a.dest_port {
                nt.insert("dst_port".into(), json!(p));
            }
            let mut protocols = vec![];
            if let Some(ip) = src.as_ref().or(dst.as_ref()) {
                protocols.push(if ip.pattern.starts_with("[ipv4") { "ipv4" } else { "ipv6" }.to_string());
            }
            if let Some(p) = a.proto.as_deref().filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
                protocols.push(p.to_ascii_lowercase());
            }
            if let Some(p) = a.app_proto.as_deref().filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric())) {
                protocols.push(p.to_ascii_lowercase());
            }
            nt.insert("protocols".into(), json!(protocols));
            nt.insert("start".into(), Value::String(t.clone()));
            let nt = sco("network-traffic", Value::Object(nt));
            alert_scos.push(id_of(&nt));
            scos.insert(id_of(&nt), nt);
        }
        for o in a.observables.iter().filter_map(|o| tagged_observable(o)) {
            alert_scos.push(id_of(&o.sco));
            alert_patterns.push(o.pattern.clone());
            scos.insert(id_of(&o.sco), o.sco);
        }
        if a.engine == "ioc" {
            // The IOC matched one of the addresses: both are indicators of that alert.
            for o in [&src, &dst].into_iter().flatten() {
                if !is_private(&o.pattern) {
                    alert_patterns.push(o.pattern.clone());
                }
            }
        }
        let od_id = if alert_scos.is_empty() {
            None
        } else {
            alert_scos.sort();
            alert_scos.dedup();
            let id = format!("observed-data--{}", uuid5(&NAMESPACE, format!("observed-data:{}", a.id).as_bytes()));
            others.push(json!({
                "type": "observed-data",
                "spec_version": "2.1",
                "id": id,
                "created": t,
                "modified": t,
                "created_by_ref": ident_id,
                "first_observed": t,
                "last_observed": t,
                "number_observed": 1,
                "object_refs": alert_scos,
                "object_marking_refs": [marking_id],
            }));
            related.insert(id.clone());
            Some(id)
        };
        // The signature: an indicator whose pattern is what it matched on the wire (the
        // external address and the port), when the alert has one.
        if a.engine != "ioc"
            && let Some(sig) = signature_pattern(a)
        {
            let name = format!("{} {}: {}", a.engine, a.rule_id, a.rule_title);
            add_indicator(&mut indicators, sig, name, a, od_id.as_deref());
        }
        for p in alert_patterns {
            let name = format!("IOC seen by {} {}: {}", a.engine, a.rule_id, a.rule_title);
            add_indicator(&mut indicators, p, name, a, od_id.as_deref());
        }
    }

    for (pattern, (name, first, ods, count)) in &indicators {
        let t = stix_time(Timestamp::from_unix_micros(*first));
        let ind_id = format!("indicator--{}", uuid5(&NAMESPACE, format!("indicator:{pattern}|{t}").as_bytes()));
        others.push(json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": ind_id,
            "created": t,
            "modified": t,
            "created_by_ref": ident_id,
            "name": name,
            "description": format!(
                "Seen {count} time(s) in the alerts of a {} incident reported by {}.",
                incident.severity.as_str(),
                opts.identity_name
            ),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": t,
            "object_marking_refs": [marking_id],
        }));
        related.insert(ind_id.clone());
        let mut sighting = json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": format!("sighting--{}", uuid5(&NAMESPACE, format!("sighting:{ind_id}|{}", incident.incident_id).as_bytes())),
            "created": t,
            "modified": modified,
            "created_by_ref": ident_id,
            "sighting_of_ref": ind_id,
            "count": count,
            "where_sighted_refs": [ident_id],
            "object_marking_refs": [marking_id],
        });
        if !ods.is_empty() {
            sighting["observed_data_refs"] = json!(ods.iter().collect::<Vec<_>>());
        }
        others.push(sighting);
        for od in ods {
            refs.insert((ind_id.clone(), "based-on".into(), od.clone()));
        }
    }
    for r in &related {
        refs.insert((inc_id.clone(), "related-to".into(), r.clone()));
    }
    for (src, rel, dst) in &refs {
        let id = format!("relationship--{}", uuid5(&NAMESPACE, format!("relationship:{src}|{rel}|{dst}").as_bytes()));
        others.push(json!({
            "type": "relationship",
            "spec_version": "2.1",
            "id": id,
            "created": created,
            "modified": created,
            "created_by_ref": ident_id,
            "relationship_type": rel,
            "source_ref": src,
            "target_ref": dst,
            "object_marking_refs": [marking_id],
        }));
    }

    // The incident itself.
    let mut ext_refs: Vec<Value> = vec![json!({ "source_name": "canh-gac", "external_id": incident.incident_id })];
    let mut rules: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut techniques: BTreeSet<String> = BTreeSet::new();
    for a in &incident.alerts {
        rules.insert((a.engine.clone(), a.rule_id.clone(), a.rule_title.clone()));
        techniques.extend(a.tags.iter().filter_map(|t| attack_technique(t)));
    }
    techniques.extend(incident.tags.iter().filter_map(|t| attack_technique(t)));
    for (engine, id, title) in &rules {
        if !id.is_empty() {
            ext_refs.push(json!({ "source_name": engine, "external_id": id, "description": title }));
        }
    }
    for t in &techniques {
        // No `url`: a URL without a content hash is a best-practice warning (302).
        ext_refs.push(json!({ "source_name": "mitre-attack", "external_id": t }));
    }
    let mut description = format!(
        "Severity {}, status {}, {} alert(s)",
        incident.severity.as_str(),
        serde_json::to_value(incident.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        incident.alert_count.max(incident.alerts.len() as u64)
    );
    if !incident.segments.is_empty() {
        description.push_str(&format!(", segments {}", incident.segments.join(", ")));
    }
    if !incident.entities.is_empty() {
        description.push_str(&format!(". Entities: {}", incident.entities.join(", ")));
    }
    if let (Some(f), Some(l)) = (incident.first_seen, incident.last_seen) {
        description.push_str(&format!(". Seen {} to {}", stix_time(f), stix_time(l)));
    }
    description.push('.');
    let mut labels: Vec<String> = vec![format!("severity:{}", incident.severity.as_str())];
    labels.extend(incident.segments.iter().map(|s| format!("segment:{s}")));
    let mut inc = json!({
        "type": "incident",
        "spec_version": "2.1",
        "id": inc_id,
        "created": created,
        "modified": modified,
        "created_by_ref": ident_id,
        "name": if incident.title.is_empty() { incident.incident_id.clone() } else { incident.title.clone() },
        "description": description,
        "labels": labels,
        "external_references": ext_refs,
        "object_marking_refs": [marking_id],
        "extensions": { INCIDENT_CORE_EXTENSION: incident_extension(incident) },
    });
    if let Some(m) = inc.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    objects.push(inc);
    objects.extend(scos.into_values());
    objects.extend(others);
    json!({
        "type": "bundle",
        "id": bundle_id(&incident.incident_id, incident.version),
        "objects": objects,
    })
}

fn add_indicator(
    indicators: &mut BTreeMap<String, (String, i64, BTreeSet<String>, u64)>,
    pattern: String,
    name: String,
    a: &IncidentAlert,
    od: Option<&str>,
) {
    let t = a.timestamp.unix_micros();
    let e = indicators.entry(pattern).or_insert_with(|| (name, t, BTreeSet::new(), 0));
    e.1 = e.1.min(t);
    e.3 += 1;
    if let Some(od) = od {
        e.2.insert(od.to_string());
    }
}

fn is_private(pattern: &str) -> bool {
    let v = pattern.rsplit_once(" = '").map(|(_, v)| v.trim_end_matches("']")).unwrap_or_default();
    v.parse::<IpAddr>().map(crate::redact::is_internal_ip).unwrap_or(false)
}

/// The pattern of a signature alert: the external (public) address it involved and, when
/// known, the port, as a `network-traffic` pattern.
fn signature_pattern(a: &IncidentAlert) -> Option<String> {
    let pick = |ip: &Option<String>| {
        ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).filter(|ip| !crate::redact::is_internal_ip(*ip))
    };
    let (side, ip, port) = if let Some(ip) = pick(&a.dest_ip) {
        ("dst", ip, a.dest_port)
    } else if let Some(ip) = pick(&a.src_ip) {
        ("src", ip, a.src_port)
    } else {
        return None;
    };
    let kind = if ip.is_ipv4() { "ipv4-addr" } else { "ipv6-addr" };
    let _ = kind;
    let mut p = format!("[network-traffic:{side}_ref.value = {}", pattern_literal(&ip.to_string()));
    if let Some(port) = port {
        p.push_str(&format!(" AND network-traffic:{side}_port = {port}"));
    }
    p.push(']');
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid5_matches_the_rfc_4122_algorithm() {
        // Python: uuid.uuid5(uuid.UUID('00abedb4-aa42-466c-9c01-fed23315a9b7'), '{"value":"198.51.100.3"}')
        assert_eq!(uuid5(&SCO_NAMESPACE, br#"{"value":"198.51.100.3"}"#), "28bb3599-77cd-5a82-a950-b5bc3caf07c4");
    }

    #[test]
    fn canonical_json_sorts_keys_without_spaces() {
        let v = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn sco_ids_follow_the_stix_rule() {
        let o = ip_observable("198.51.100.3").unwrap();
        assert_eq!(id_of(&o.sco), "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4");
    }

    #[test]
    fn attack_tags_become_technique_ids() {
        assert_eq!(attack_technique("attack.t1059.001").as_deref(), Some("T1059.001"));
        assert_eq!(attack_technique("attack.t1059").as_deref(), Some("T1059"));
        assert_eq!(attack_technique("attack.execution"), None);
        assert_eq!(attack_technique("attack.t12"), None);
    }

    #[test]
    fn malformed_observables_are_left_out() {
        assert!(tagged_observable("sha256:xyz").is_none());
        assert!(tagged_observable("url:not a url").is_none());
        assert!(tagged_observable("domain:evil.example").is_some());
        assert!(tagged_observable("md5:d41d8cd98f00b204e9800998ecf8427e").is_some());
        assert!(tagged_observable("whatever").is_none());
    }

    fn incident(version: u64, updated: i64) -> Incident {
        Incident {
            incident_id: "inc-1".into(),
            version,
            title: "Beacon".into(),
            severity: Level::High,
            first_seen: Some(Timestamp::from_unix_micros(1_000_000)),
            updated: Some(Timestamp::from_unix_micros(updated)),
            alerts: vec![IncidentAlert {
                id: "a1".into(),
                timestamp: Timestamp::from_unix_micros(1_000_000),
                engine: "suricata".into(),
                rule_id: "2000001".into(),
                rule_title: "ET test".into(),
                level: Level::High,
                segment: None,
                sensor: None,
                host: None,
                user: None,
                src_ip: Some("10.0.0.5".into()),
                src_port: Some(50000),
                dest_ip: Some("203.0.113.9".into()),
                dest_port: Some(443),
                proto: Some("TCP".into()),
                app_proto: Some("tls".into()),
                flow_id: None,
                community_id: None,
                observables: vec!["domain:evil.example".into()],
                tags: vec!["attack.t1071".into()],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn versions_share_the_incident_id_and_differ_in_bundle_and_modified() {
        let o = BundleOptions::default();
        let a = incident_bundle(&incident(1, 2_000_000), &o);
        let b = incident_bundle(&incident(2, 3_000_000), &o);
        let inc =
            |b: &Value| b["objects"].as_array().unwrap().iter().find(|o| o["type"] == "incident").cloned().unwrap();
        assert_eq!(inc(&a)["id"], inc(&b)["id"]);
        assert_ne!(inc(&a)["modified"], inc(&b)["modified"]);
        assert_eq!(inc(&a)["created"], inc(&b)["created"]);
        assert_ne!(a["id"], b["id"]);
        // Deterministic: the same version twice is the same bundle.
        assert_eq!(a, incident_bundle(&incident(1, 2_000_000), &o));
    }

    #[test]
    fn bundle_holds_identity_marking_scos_indicators_and_relationships() {
        let b = incident_bundle(&incident(1, 2_000_000), &BundleOptions::default());
        let types: BTreeSet<&str> =
            b["objects"].as_array().unwrap().iter().filter_map(|o| o["type"].as_str()).collect();
        for t in [
            "identity",
            "marking-definition",
            "incident",
            "ipv4-addr",
            "domain-name",
            "network-traffic",
            "observed-data",
            "indicator",
            "sighting",
            "relationship",
        ] {
            assert!(types.contains(t), "missing {t} in {types:?}");
        }
        let patterns: Vec<&str> = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "indicator")
            .filter_map(|o| o["pattern"].as_str())
            .collect();
        assert!(patterns.contains(&"[domain-name:value = 'evil.example']"), "{patterns:?}");
        assert!(
            patterns.contains(&"[network-traffic:dst_ref.value = '203.0.113.9' AND network-traffic:dst_port = 443]")
        );
    }
}
