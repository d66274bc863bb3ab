//! Typed payloads. Network payloads carry Suricata's EVE field names; every struct keeps the
//! fields it does not model in `extra`, so nothing a producer wrote is lost in transit.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields a struct does not model, kept verbatim.
pub type Extra = Map<String, Value>;

/// `flow` payload: a flow record, or the flow summary attached to an alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkts_toserver: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkts_toclient: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_toserver: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_toclient: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
    /// `new`, `established`, `closed`, `bypassed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `timeout`, `forced`, `shutdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `alert` payload: a signature match (from the sensor's rule engine or an imported EVE file).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `allowed` or `blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// 1 (high) .. 4 (informational), as Suricata's classification priorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `http` payload (one HTTP transaction).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_refer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `dns` payload (EVE DNS version 3: one request or one response).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// `request` or `response`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rd: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opcode: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<DnsQuery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<DnsAnswer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorities: Option<Vec<DnsAnswer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additionals: Option<Vec<DnsAnswer>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrtype: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdata: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `tls` payload (handshake metadata).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuerdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `TLS 1.2`, `TLSv1.3`, ...: as Suricata writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Certificate validity, as Suricata writes it (`2020-05-01T06:43:20`, no offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notbefore: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notafter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_resumed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A JA3/JA3S fingerprint: the MD5 and the string it was computed from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `anomaly` payload: a decoder, stream or app-layer event (malformed or unexpected input).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// `decode`, `stream`, `applayer`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Sigma-style log source of a normalized log record; the correlator routes by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// `log` payload: a normalized log line or structured event from the collector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// Where the collector received it: `syslog-udp`, `syslog-tcp`, `http`, `file`, `demo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Parser that normalized it: `rfc3164`, `rfc5424`, `json`, `windows`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default)]
    pub logsource: LogSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Normalized fields (for Windows events: Sigma's field names, EventID, Image, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// The original text (`Value::String`) or object, unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Severity levels shared by detections, alerts and incidents (Sigma's levels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// From a Suricata alert severity (1 = highest).
    pub fn from_suricata_severity(sev: u8) -> Self {
        match sev {
            1 => Level::High,
            2 => Level::Medium,
            3 => Level::Low,
            _ => Level::Informational,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// `detection` payload: a host-log rule match (Sigma, correlation, IOC) raised by the correlator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `sigma`, `sigma-correlation`, `ioc`, ...
    pub engine: String,
    pub rule_id: String,
    pub rule_title: String,
    #[serde(default)]
    pub level: Level,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logsource: Option<LogSource>,
    /// Ids of the records that triggered it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Incident status, as analysts move it along.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    #[default]
    New,
    Acknowledged,
    Investigating,
    Resolved,
    FalsePositive,
}

/// `incident` payload: alerts about one entity (host, user, IP) grouped for analysts and for
/// the NCSC. Every change makes a new `version`; stores keep the highest version per
/// `incident_id` and the record of every version (its `history`).
///
/// The incident carries what the forwarder and the dashboard need without reading the
/// alerts back: a summary of each alert (up to a cap; `alert_count` counts them all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub incident_id: String,
    pub version: u64,
    pub title: String,
    #[serde(default)]
    pub severity: Level,
    #[serde(default)]
    pub status: IncidentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Entities the incident is about (`ip:10.0.0.4`, `host:dc01`, `user:alice`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// Network segments of its alerts (`ministry`, `cpnet`): the data scope of the incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// Ids of all alerts and detections grouped here (evidence), up to the grouper's cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_ids: Vec<String>,
    /// How many alerts were grouped (may exceed `alert_ids.len()`).
    #[serde(default)]
    pub alert_count: u64,
    /// Summaries of the grouped alerts, oldest first (the timeline's evidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<IncidentAlert>,
    /// Flow ids of the network alerts (pivot to the flow's records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow_ids: Vec<u64>,
    /// MITRE ATT&CK and other tags of the rules involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// When this version was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Timestamp>,
    /// Every change, oldest first: grouping, escalation, status, owner, comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<IncidentChange>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One alert or detection inside an incident, summarized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentAlert {
    /// Id of the alert/detection record.
    pub id: String,
    pub timestamp: Timestamp,
    /// `suricata` (sensor signature), `sigma`, `sigma-correlation`, `ioc`.
    pub engine: String,
    /// Signature id (`2034636`) or Sigma rule id.
    pub rule_id: String,
    pub rule_title: String,
    #[serde(default)]
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    /// Observables seen in the alert's record: `domain:evil.example`, `url:http://...`,
    /// `sha256:...`, `md5:...`, `sha1:...` (IPs are in src_ip/dest_ip).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observables: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One change of an incident, for its history and the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentChange {
    pub at: Timestamp,
    /// `correlator` for grouping, a user name for analyst actions.
    pub actor: String,
    /// `created`, `alerts_added`, `severity`, `status`, `owner`, `comment`, `forward_approved`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The version this change produced.
    pub version: u64,
}

/// Delivery state of one incident version to the NCSC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardState {
    /// In the outbox, waiting for its (next) attempt.
    #[default]
    Queued,
    /// Policy asks for manual approval; waiting for an analyst.
    AwaitingApproval,
    /// Accepted by the server, status not yet complete.
    Sent,
    /// The server reported every object as stored.
    Confirmed,
    /// An attempt failed and will be retried (`reason` says why).
    Failed,
    /// The server refused it for good (retrying cannot help); `reason` has its message.
    Rejected,
    /// Policy decided not to forward it (severity, segment).
    Skipped,
}

impl ForwardState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ForwardState::Queued => "queued",
            ForwardState::AwaitingApproval => "awaiting_approval",
            ForwardState::Sent => "sent",
            ForwardState::Confirmed => "confirmed",
            ForwardState::Failed => "failed",
            ForwardState::Rejected => "rejected",
            ForwardState::Skipped => "skipped",
        }
    }
}

/// `forwarding` payload: one step of delivering an incident version to the NCSC (the audit
/// record of every send and its outcome).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forwarding {
    pub incident_id: String,
    pub incident_version: u64,
    pub state: ForwardState,
    /// Where it goes (the TAXII collection URL, without credentials).
    pub destination: String,
    /// Attempt number (1 for the first send).
    #[serde(default)]
    pub attempt: u32,
    /// STIX bundle id sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    /// TAXII status resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<String>,
    /// Why it failed, was rejected or skipped (the server's message when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A record that could not be parsed, published on the dead-letter topic so nothing accepted
/// is lost: where it came from, why it failed, and the raw bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub received: Timestamp,
    /// Input that received it (`syslog-tcp 10.0.0.5:51514`, `http /api/ingest`, `pcap file.pcap`).
    pub source: String,
    pub reason: String,
    /// The raw bytes: UTF-8 text as is, anything else base64 (`raw_base64 = true`).
    pub raw: String,
    #[serde(default)]
    pub raw_base64: bool,
}

impl DeadLetter {
    pub fn new(source: impl Into<String>, reason: impl Into<String>, raw: &[u8]) -> Self {
        use base64::Engine;
        let (raw, raw_base64) = match std::str::from_utf8(raw) {
            Ok(s) => (s.to_string(), false),
            Err(_) => (base64::engine::general_purpose::STANDARD.encode(raw), true),
        };
        DeadLetter { received: Timestamp::now(), source: source.into(), reason: reason.into(), raw, raw_base64 }
    }
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
