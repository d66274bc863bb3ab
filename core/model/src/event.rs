//! The envelope every record travels in.

use crate::Timestamp;
use crate::payload::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// What a record is. Known EVE types have variants; anything else is kept by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Flow,
    Alert,
    Http,
    Dns,
    Tls,
    Anomaly,
    Log,
    Detection,
    Incident,
    /// A step of forwarding an incident to the NCSC (audit of sends and outcomes).
    Forwarding,
    /// Any other EVE type (`smb`, `krb5`, `fileinfo`, `stats`, ...), kept as written.
    Other(String),
}

impl EventType {
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Flow => "flow",
            EventType::Alert => "alert",
            EventType::Http => "http",
            EventType::Dns => "dns",
            EventType::Tls => "tls",
            EventType::Anomaly => "anomaly",
            EventType::Log => "log",
            EventType::Detection => "detection",
            EventType::Incident => "incident",
            EventType::Forwarding => "forwarding",
            EventType::Other(s) => s,
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "flow" => EventType::Flow,
            "alert" => EventType::Alert,
            "http" => EventType::Http,
            "dns" => EventType::Dns,
            "tls" => EventType::Tls,
            "anomaly" => EventType::Anomaly,
            "log" => EventType::Log,
            "detection" => EventType::Detection,
            "incident" => EventType::Incident,
            "forwarding" => EventType::Forwarding,
            other => EventType::Other(other.to_string()),
        }
    }
    /// The bus topic family this type travels on.
    pub fn kind(&self) -> Kind {
        match self {
            EventType::Flow => Kind::Flow,
            EventType::Alert => Kind::Alert,
            EventType::Log => Kind::Log,
            EventType::Detection => Kind::Detection,
            EventType::Incident | EventType::Forwarding => Kind::Incident,
            EventType::Http | EventType::Dns | EventType::Tls | EventType::Anomaly | EventType::Other(_) => {
                Kind::Protocol
            }
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(EventType::parse(&s))
    }
}

/// Record families, one bus topic each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Flow records from sensors.
    Flow,
    /// Signature alerts from sensors.
    Alert,
    /// App-layer and anomaly records from sensors (http, dns, tls, anomaly, ...).
    Protocol,
    /// Normalized logs from collectors.
    Log,
    /// Detections raised by the correlator.
    Detection,
    /// Incidents (grouped alerts), for the dashboard and the NCSC forwarder.
    Incident,
    /// Records that could not be parsed, with the reason and the raw bytes.
    DeadLetter,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Flow, Kind::Alert, Kind::Protocol, Kind::Log, Kind::Detection, Kind::Incident, Kind::DeadLetter];
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Flow => "flow",
            Kind::Alert => "alert",
            Kind::Protocol => "protocol",
            Kind::Log => "log",
            Kind::Detection => "detection",
            Kind::Incident => "incident",
            Kind::DeadLetter => "dead-letter",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record: the envelope plus the payloads. Field names follow Suricata's EVE output;
/// `id`, `sensor`, `segment` and `host` are this platform's additions.
///
/// A record may carry several payloads: an `alert` record carries the `alert` payload and
/// the `http`/`tls`/`flow` metadata of its flow, as Suricata writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub timestamp: Timestamp,
    /// Deterministic id (see [`Event::compute_id`]); the store's deduplication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<String>,
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// `TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, or the protocol number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_v: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    /// Name of the sensor or collector that produced the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// Network segment (`ministry`, `cpnet`, ...): the unit of data access for analysts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Host the record is about (log source host; for network records, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Anomaly>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Log>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<Forwarding>,
    /// Every other field (`pcap_cnt`, `tx_id`, `tcp`, `files`, `smb`, `stats`, ...), verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why bytes could not become an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid record: {0}")]
    Json(#[from] serde_json::Error),
}

impl Event {
    /// An empty record of a type at a time; fill in what you have.
    pub fn new(event_type: EventType, timestamp: Timestamp) -> Self {
        Event {
            timestamp,
            id: None,
            flow_id: None,
            in_iface: None,
            event_type,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            ip_v: None,
            app_proto: None,
            community_id: None,
            sensor: None,
            segment: None,
            host: None,
            flow: None,
            alert: None,
            http: None,
            dns: None,
            tls: None,
            anomaly: None,
            log: None,
            detection: None,
            incident: None,
            forwarding: None,
            extra: Map::new(),
        }
    }

    /// Deterministic id: 128-bit XXH3 of the record's canonical JSON (keys sorted, `id`
    /// left out), hex. The same record always gets the same id, so a record written twice
    /// (a retry, a redelivery after a crash) is stored once. Producers that emit records
    /// whose content can legitimately repeat add a discriminator (a sequence number in
    /// `extra`, or the `tx_id`).
    pub fn compute_id(&self) -> String {
        with_canonical(self, |canonical| {
            let mut id = String::with_capacity(32);
            push_hex_id(&mut id, canonical);
            id
        })
    }

    /// The record's JSON with its id: the canonical JSON that [`Event::compute_id`] hashes
    /// (keys sorted, `id` left out) followed by an `id` member, the record's own id or the
    /// computed one. One serialization gives both; it reads back as the same record (with the
    /// id set), its keys in canonical order rather than the struct's.
    pub fn to_json_with_id(&self) -> Vec<u8> {
        // The canonical text is written straight into the payload (sized after the previous
        // one of this thread), then the id member appended in place.
        let direct = CANONICAL
            .try_with(|cell| {
                let mut guard = cell.try_borrow_mut().ok()?;
                let (_, scratch, hint) = &mut *guard;
                let mut payload = Vec::with_capacity(*hint + 48);
                crate::canonical::write(self, true, &mut payload, scratch).ok()?;
                *hint = payload.len();
                Some(payload)
            })
            .ok()
            .flatten();
        match direct {
            Some(payload) => self.append_id(payload),
            None => with_canonical(self, |canonical| self.append_id(canonical.to_vec())),
        }
    }

    /// `{...}` -> `{...,"id":"<id>"}` (or `{"id":"<id>"}` for an empty object): the record's
    /// own id, or the one of the canonical text `payload` holds.
    fn append_id(&self, mut payload: Vec<u8>) -> Vec<u8> {
        let computed = match &self.id {
            Some(_) => None,
            None => {
                let mut id = String::with_capacity(32);
                push_hex_id(&mut id, &payload);
                Some(id)
            }
        };
        payload.reserve(48);
        payload.pop();
        if payload.len() > 1 {
            payload.push(b',');
        }
        payload.extend_from_slice(b"\"id\":");
        match (&self.id, computed) {
            (Some(id), _) => {
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut payload, id);
            }
            (None, id) => {
                payload.push(b'"');
                payload.extend_from_slice(id.unwrap_or_default().as_bytes());
                payload.push(b'"');
            }
        }
        payload.push(b'}');
        payload
    }

    /// Sets `id` when absent and returns it.
    pub fn ensure_id(&mut self) -> &str {
        if self.id.is_none() {
            self.id = Some(self.compute_id());
        }
        self.id.as_deref().unwrap_or_default()
    }

    /// Bus partitioning key: network records by Community ID (so all records of a flow meet
    /// on one partition), then flow id; logs and detections by host.
    pub fn bus_key(&self) -> String {
        match self.event_type.kind() {
            Kind::Log | Kind::Detection => self.host.clone().or_else(|| self.src_ip.clone()).unwrap_or_default(),
            Kind::Incident => self.incident.as_ref().map(|i| i.incident_id.clone()).unwrap_or_default(),
            _ => self
                .community_id
                .clone()
                .or_else(|| self.flow_id.map(|f| f.to_string()))
                .or_else(|| self.src_ip.clone())
                .unwrap_or_default(),
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a tree of Strings, numbers and maps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

thread_local! {
    /// The canonical text of [`Event::compute_id`], working memory, the last payload's length.
    static CANONICAL: std::cell::RefCell<(Vec<u8>, crate::canonical::Scratch, usize)> = Default::default();
}

/// Calls `f` with the canonical JSON of the event without its `id` (see [`Event::compute_id`]),
/// written in reused per-thread memory.
fn with_canonical<R>(ev: &Event, f: impl Fn(&[u8]) -> R) -> R {
    let fast = CANONICAL
        .try_with(|cell| {
            // Not borrowed unless re-entered, which this module does not do.
            let mut guard = cell.try_borrow_mut().ok()?;
            let (out, scratch, _) = &mut *guard;
            out.clear();
            crate::canonical::write(ev, true, out, scratch).ok()?;
            Some(f(out))
        })
        .ok()
        .flatten();
    fast.unwrap_or_else(|| {
        // The definition: the event as a JSON tree without `id`, written out.
        let mut v = serde_json::to_value(ev).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("id");
        }
        f(v.to_string().as_bytes())
    })
}

/// Appends the id of a canonical text: its 128-bit XXH3, 32 lowercase hex digits.
fn push_hex_id(out: &mut String, canonical: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = xxhash_rust::xxh3::xxh3_128(canonical);
    for i in (0..32).rev() {
        out.push(HEX[((h >> (i * 4)) & 0xf) as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"timestamp":"2020-05-01T07:09:23.459100+0000","flow_id":1115599113405907,"pcap_cnt":1576,"event_type":"alert","src_ip":"192.168.0.4","src_port":8080,"dest_ip":"10.0.1.5","dest_port":60997,"proto":"TCP","ip_v":4,"pkt_src":"wire/pcap","tx_id":0,"alert":{"action":"allowed","gid":1,"signature_id":2034636,"rev":2,"signature":"ET INFO Python SimpleHTTP ServerBanner","category":"Misc activity","severity":3,"metadata":{"created_at":["2021_12_08"]}},"ts_progress":"request_complete","http":{"hostname":"192.168.0.4","http_port":8080,"url":"/m","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":12574},"files":[{"filename":"/m","size":12574}],"app_proto":"http","direction":"to_client","flow":{"pkts_toserver":4,"pkts_toclient":5,"bytes_toserver":295,"bytes_toclient":41421,"start":"2020-05-01T07:09:23.456353+0000","src_ip":"10.0.1.5","dest_ip":"192.168.0.4","src_port":60997,"dest_port":8080}}"#;

    #[test]
    fn eve_alert_round_trips_with_unknown_fields_kept() {
        let ev: Event = serde_json::from_str(ALERT).unwrap();
        assert_eq!(ev.event_type, EventType::Alert);
        assert_eq!(ev.alert.as_ref().unwrap().signature_id, Some(2034636));
        assert_eq!(ev.http.as_ref().unwrap().status, Some(200));
        assert!(ev.extra.contains_key("files"));
        assert!(ev.flow.as_ref().unwrap().extra.contains_key("src_ip"));
        let back = serde_json::to_value(&ev).unwrap();
        let orig: Value = serde_json::from_str(ALERT).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn id_is_deterministic_and_ignores_the_id_field() {
        let mut a: Event = serde_json::from_str(ALERT).unwrap();
        let b: Event = serde_json::from_str(ALERT).unwrap();
        assert_eq!(a.compute_id(), b.compute_id());
        let id = a.ensure_id().to_string();
        assert_eq!(a.compute_id(), id);
        let mut c = b.clone();
        c.src_port = Some(1);
        assert_ne!(c.compute_id(), id);
    }

    /// The id as defined: XXH3-128 of the event as a JSON tree (keys sorted) without `id`.
    fn tree_id(ev: &Event) -> String {
        let mut v = serde_json::to_value(ev).unwrap();
        v.as_object_mut().unwrap().remove("id");
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(v.to_string().as_bytes()))
    }

    #[test]
    fn compute_id_and_to_json_with_id_agree_with_the_json_tree_definition() {
        let alert: Event = serde_json::from_str(ALERT).unwrap();
        let mut with_id = alert.clone();
        with_id.id = Some("given \"id\" \u{20ac}".into());
        let mut odd = Event::new(EventType::Other("x\"y".into()), Timestamp::from_unix_micros(-1));
        // An `extra` key that repeats a field: the tree keeps the last one written.
        odd.extra.insert("host".into(), Value::from("from extra"));
        odd.extra.insert("a\\b".into(), serde_json::json!({"z": [1.5, {"b": null, "a": "\u{1}"}], "y": -0.0}));
        odd.extra.insert("id".into(), Value::from("extra id"));
        odd.host = Some("field".into());
        let empty = Event::new(EventType::Log, Timestamp::from_unix_micros(0));
        for (ev, reads_back) in [(alert, true), (with_id, true), (odd, false), (empty, true)] {
            let want = tree_id(&ev);
            assert_eq!(ev.compute_id(), want);
            let payload = ev.to_json_with_id();
            let mut expected = ev.clone();
            expected.ensure_id();
            // (Not the odd one: its repeated keys cannot come back as they were.)
            if reads_back {
                assert_eq!(Event::from_json(&payload).unwrap(), expected);
            }
            // The payload is the canonical text followed by the id.
            let mut tree = serde_json::to_value(&ev).unwrap();
            tree.as_object_mut().unwrap().remove("id");
            let text = tree.to_string();
            let id = serde_json::to_string(expected.id.as_deref().unwrap()).unwrap();
            assert_eq!(String::from_utf8(payload).unwrap(), format!("{},\"id\":{id}}}", &text[..text.len() - 1]));
        }
    }

    #[test]
    fn unknown_event_types_are_kept_by_name_and_routed_as_protocol() {
        let ev: Event = serde_json::from_str(
            r#"{"timestamp":"2020-05-01T07:09:23.459100+0000","event_type":"smb","smb":{"id":1}}"#,
        )
        .unwrap();
        assert_eq!(ev.event_type, EventType::Other("smb".into()));
        assert_eq!(ev.event_type.kind(), Kind::Protocol);
        assert!(ev.extra.contains_key("smb"));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert!(Event::from_json(b"{").is_err());
        assert!(Event::from_json(br#"{"event_type":"flow"}"#).is_err());
        assert!(Event::from_json(br#"{"timestamp":"nope","event_type":"flow"}"#).is_err());
        assert!(
            Event::from_json(
                br#"{"timestamp":"2020-05-01T07:09:23.459100+0000","event_type":"flow","src_port":70000}"#
            )
            .is_err()
        );
    }

    #[test]
    fn bus_keys_follow_the_design() {
        let mut e = Event::new(EventType::Dns, Timestamp::from_unix_micros(0));
        e.flow_id = Some(7);
        assert_eq!(e.bus_key(), "7");
        e.community_id = Some("1:abc".into());
        assert_eq!(e.bus_key(), "1:abc");
        let mut l = Event::new(EventType::Log, Timestamp::from_unix_micros(0));
        l.host = Some("dc01".into());
        assert_eq!(l.bus_key(), "dc01");
    }
}
