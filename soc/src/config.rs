//! Configuration files of the separately deployed components (`soc sensor|collector|
//! correlator|dashboard --config FILE`). Each file has the component's own table plus the
//! shared `[kafka]`, `[store]` and `[metrics]` tables it needs. Unknown keys are errors; every
//! error names the file, line and key (see deploy/config/ for commented examples).

use serde::Deserialize;
use soc_bus::kafka::KafkaConfig;
use soc_model::config::{ConfigError, load_toml};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `[metrics]`: where the component serves `/metrics`, `/healthz` and `/readyz`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// `[store]`: ClickHouse (production) or SQLite (single machine).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    Clickhouse {
        /// HTTP interface, e.g. `http://127.0.0.1:8123`.
        url: String,
        #[serde(default = "default_database")]
        database: String,
        #[serde(default = "default_user")]
        user: String,
        /// Name of the environment variable holding the password (never the password itself).
        #[serde(default)]
        password_env: Option<String>,
    },
    Sqlite {
        path: PathBuf,
    },
}

fn default_database() -> String {
    "soc".into()
}
fn default_user() -> String {
    "default".into()
}

impl StoreConfig {
    pub async fn open(&self) -> anyhow::Result<std::sync::Arc<dyn soc_store::Store>> {
        Ok(match self {
            StoreConfig::Clickhouse { url, database, user, password_env } => {
                let password = match password_env {
                    Some(var) => std::env::var(var)
                        .map_err(|_| anyhow::anyhow!("store.password_env: environment variable {var} is not set"))?,
                    None => String::new(),
                };
                std::sync::Arc::new(
                    soc_store::clickhouse::ClickHouseStore::connect(url, database, user, &password).await?,
                )
            }
            StoreConfig::Sqlite { path } => std::sync::Arc::new(soc_store::sqlite::SqliteStore::open(path)?),
        })
    }
}

/// One capture interface and the segment its records belong to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub name: String,
    /// Defaults to `[sensor] segment`.
    #[serde(default)]
    pub segment: Option<String>,
}

/// `[sensor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub name: String,
    pub segment: String,
    #[serde(default)]
    pub interfaces: Vec<InterfaceConfig>,
    #[serde(default = "yes")]
    pub checksum_check: bool,
    /// Suricata rule files or directories (empty: no signature inspection).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Address and port variables for rules (HOME_NET, EXTERNAL_NET, HTTP_PORTS, ...).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `[sensor.stream]`: TCP reassembly limits.
    #[serde(default)]
    pub stream: StreamSection,
    /// Parse the application layer of TCP sessions whose start was not seen (Suricata's
    /// `stream.midstream`); `--midstream` turns it on too.
    #[serde(default)]
    pub midstream: bool,
    /// A capture filter in BPF syntax (a subset: `host`, `net`, `port`, `portrange`, `src`/`dst`,
    /// protocols, `and`/`or`/`not`, parentheses), like the filter on Suricata's command line;
    /// packets it refuses are not processed (metric `soc_sensor_bpf_filtered_total`).
    /// `--bpf` overrides it.
    #[serde(default, deserialize_with = "de_bpf")]
    pub bpf: Option<soc_sensor::capture::bpf::BpfFilter>,
    /// VLAN ids are part of the flow key (Suricata's `vlan.use-for-tracking`, default true);
    /// false: packets of one 5-tuple on different VLANs are one flow.
    #[serde(default = "yes")]
    pub vlan_tracking: bool,
}

fn de_bpf<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<soc_sensor::capture::bpf::BpfFilter>, D::Error> {
    let text = String::deserialize(d)?;
    soc_sensor::capture::bpf::BpfFilter::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("bad BPF filter: {e}")))
}

fn yes() -> bool {
    true
}

/// `[sensor.stream]`: TCP reassembly limits (the sensor's `app::stream` module documents
/// what each does). Sizes are bytes, as an integer or a string with a unit: `"256mb"`,
/// `"1mib"`, `"64kb"` (k/m/g, 1024-based as in Suricata's configuration).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// Bytes reassembly may hold for the whole sensor, divided evenly among its workers and
    /// interfaces (Suricata's `stream.reassembly.memcap`); a segment that would exceed it is
    /// treated as lost.
    #[serde(default = "default_memcap", deserialize_with = "de_memcap")]
    pub memcap: u64,
    /// Bytes per direction fed to the app layer, 0 = unlimited (`stream.reassembly.depth`).
    #[serde(default = "default_depth", deserialize_with = "de_depth")]
    pub depth: u64,
    /// Out-of-order bytes queued per flow direction before a hole is given up.
    #[serde(default = "default_queued_bytes", deserialize_with = "de_queued_bytes")]
    pub max_queued_bytes: u64,
    /// Out-of-order segments queued per flow direction before a hole is given up.
    #[serde(default = "default_queued_segments", deserialize_with = "de_queued_segments")]
    pub max_queued_segments: u64,
    /// Delivered, unacknowledged bytes kept per direction to compare retransmissions with
    /// (overlaps with different data); 0 = no comparison.
    #[serde(default = "default_overlap_check", deserialize_with = "de_overlap_check")]
    pub overlap_check: u64,
    /// A session of which only one side is captured (asymmetric routing) is set up by the
    /// client's ACK and its bytes count as acknowledged on arrival (Suricata's
    /// `stream.async-oneside`).
    #[serde(default)]
    pub async_oneside: bool,
    /// `"inline"` (default): a TCP urgent byte stays in the stream; `"oob"`: it is out of band
    /// and left out (Suricata's `stream.reassembly.urgent.policy`).
    #[serde(default, deserialize_with = "de_urgent_policy")]
    pub urgent_policy: UrgentPolicy,
    /// What follows when the memcap refuses a segment (Suricata's
    /// `stream.reassembly.memcap-policy`): `ignore` (default), `drop-packet`, `pass-packet`,
    /// `drop-flow`, `pass-flow`, `bypass`, `reject`.
    #[serde(default, deserialize_with = "de_exception_policy")]
    pub memcap_policy: soc_sensor::options::ExceptionPolicy,
}

/// `[sensor.stream] urgent_policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UrgentPolicy {
    #[default]
    Inline,
    Oob,
}

fn de_urgent_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<UrgentPolicy, D::Error> {
    match String::deserialize(d)?.as_str() {
        "inline" => Ok(UrgentPolicy::Inline),
        "oob" => Ok(UrgentPolicy::Oob),
        other => Err(serde::de::Error::custom(format!("unknown urgent policy {other:?} (inline or oob)"))),
    }
}

fn de_exception_policy<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<soc_sensor::options::ExceptionPolicy, D::Error> {
    let text = String::deserialize(d)?;
    soc_sensor::options::ExceptionPolicy::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown policy {text:?} (ignore, drop-packet, pass-packet, drop-flow, pass-flow, bypass, reject)"
        ))
    })
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            memcap: default_memcap(),
            depth: default_depth(),
            max_queued_bytes: default_queued_bytes(),
            max_queued_segments: default_queued_segments(),
            overlap_check: default_overlap_check(),
            async_oneside: false,
            urgent_policy: UrgentPolicy::Inline,
            memcap_policy: Default::default(),
        }
    }
}

impl StreamSection {
    /// The sensor library's limits (memcap for the whole sensor; see `per_instance`).
    pub fn config(&self) -> soc_sensor::app::stream::StreamConfig {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        soc_sensor::app::stream::StreamConfig {
            memcap: size(self.memcap),
            max_ooo_bytes: size(self.max_queued_bytes),
            max_ooo_segments: size(self.max_queued_segments),
            depth: self.depth,
            overlap_check_bytes: size(self.overlap_check),
        }
    }
}

fn default_memcap() -> u64 {
    soc_sensor::app::stream::DEFAULT_MEMCAP as u64
}
fn default_depth() -> u64 {
    soc_sensor::app::stream::DEFAULT_DEPTH
}
fn default_queued_bytes() -> u64 {
    soc_sensor::app::stream::MAX_OOO_BYTES as u64
}
fn default_queued_segments() -> u64 {
    soc_sensor::app::stream::MAX_OOO_SEGMENTS as u64
}
fn default_overlap_check() -> u64 {
    soc_sensor::app::stream::DEFAULT_OVERLAP_CHECK as u64
}

/// Parses `"64kb"`, `"1 MiB"`, `"2g"`, `"512"` (1024-based units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a size (e.g. 65536, \"64kb\", \"256mb\")"))?;
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("{text:?}: unknown unit {u:?} (b, kb, mb, gb)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Int(u64),
    Text(String),
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D, min: u64, max: u64) -> Result<u64, D::Error> {
    let v = match SizeValue::deserialize(d)? {
        SizeValue::Int(n) => n,
        SizeValue::Text(t) => parse_size(&t).map_err(serde::de::Error::custom)?,
    };
    if !(min..=max).contains(&v) {
        return Err(serde::de::Error::custom(format!("{v} bytes is out of range ({min}..={max})")));
    }
    Ok(v)
}
fn de_memcap<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_size(d, 1 << 20, 1 << 40)
}
fn de_depth<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_size(d, 0, 1 << 40)
}
fn de_queued_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_size(d, 1 << 10, 1 << 30)
}
fn de_queued_segments<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if !(1..=65_535).contains(&n) {
        return Err(serde::de::Error::custom(format!("{n} is out of range (1..=65535)")));
    }
    Ok(n)
}
fn de_overlap_check<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_size(d, 0, 1 << 20)
}

/// `[output]` of a sensor: an EVE file, Kafka, or both.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorOutput {
    #[serde(default)]
    pub eve: Option<PathBuf>,
    /// Publish to the `[kafka]` bus.
    #[serde(default)]
    pub kafka: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorFile {
    pub sensor: SensorSection,
    #[serde(default)]
    pub output: SensorOutput,
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorFile {
    pub collector: soc_collector::CollectorConfig,
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[correlator]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelatorSection {
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Sigma rule files or directories (empty: the project's built-in rules).
    #[serde(default)]
    pub sigma_rules: Vec<PathBuf>,
    /// Where correlation windows and alert deduplication state are checkpointed per bus
    /// partition with the committed offsets (shared by the group's members when they can take
    /// over one another's partitions); unset: in memory only.
    #[serde(default)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Correlation windows (correlation rule and group) kept per bus partition; beyond it the
    /// least recently updated are evicted, counted and logged.
    #[serde(default = "default_max_correlation_groups")]
    pub max_correlation_groups: usize,
    /// Processing pipeline files or directories (field-name mappings per log source) that
    /// replace the built-in ones (`rules/pipelines/` in the repository); empty: the built-in.
    #[serde(default)]
    pub pipelines: Vec<PathBuf>,
    /// `[correlator.dedup]`: one alert per rule and entity within a window; absent: off.
    #[serde(default)]
    pub dedup: Option<DedupSection>,
}

/// `[correlator.dedup]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSection {
    /// Later detections of a rule and entity within this many seconds of the first are folded
    /// into it (its `count` grows).
    #[serde(default = "default_dedup_window_secs")]
    pub window_secs: u64,
    /// Fields naming the entity (`host`, `src_ip`, `dest_ip`, `segment`, `sensor`, `user`).
    #[serde(default = "default_dedup_entity_fields")]
    pub entity_fields: Vec<String>,
    /// Open alerts kept per bus partition.
    #[serde(default = "default_dedup_max_keys")]
    pub max_keys: usize,
}

fn default_max_correlation_groups() -> usize {
    soc_correlator::correlation::MAX_GROUPS
}
fn default_dedup_window_secs() -> u64 {
    600
}
fn default_dedup_entity_fields() -> Vec<String> {
    soc_correlator::dedup::DedupOptions::default().entity_fields
}
fn default_dedup_max_keys() -> usize {
    100_000
}

impl DedupSection {
    pub fn options(&self) -> soc_correlator::dedup::DedupOptions {
        soc_correlator::dedup::DedupOptions {
            window: std::time::Duration::from_secs(self.window_secs),
            entity_fields: self.entity_fields.clone(),
            max_keys: self.max_keys,
            ..Default::default()
        }
    }
}

fn default_group() -> String {
    "soc-correlator".into()
}
fn default_batch() -> usize {
    5_000
}

/// `[incidents]`: how the correlator groups alerts into incidents.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsSection {
    /// Group alerts into incidents at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An alert joins an incident whose last alert is at most this many seconds older.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// Alerts below this level are not grouped (informational, low, medium, high, critical).
    #[serde(default = "default_min_level")]
    pub min_level: soc_model::Level,
    /// Severity rises one level once an incident holds this many alerts (0: never).
    #[serde(default = "default_escalate_at")]
    pub escalate_at: u64,
    /// Entities never used for grouping, e.g. a shared DNS server: `["ip:10.0.0.53"]`.
    #[serde(default)]
    pub ignore_entities: Vec<String>,
    /// Asset criticality: `"host:dc01" = "critical"`; incidents about them are at least that severe.
    #[serde(default)]
    pub assets: std::collections::BTreeMap<String, soc_model::Level>,
}

fn default_window_secs() -> u64 {
    3600
}
fn default_min_level() -> soc_model::Level {
    soc_model::Level::Low
}
fn default_escalate_at() -> u64 {
    25
}

impl Default for IncidentsSection {
    fn default() -> Self {
        IncidentsSection {
            enabled: true,
            window_secs: default_window_secs(),
            min_level: default_min_level(),
            escalate_at: default_escalate_at(),
            ignore_entities: Vec::new(),
            assets: Default::default(),
        }
    }
}

impl IncidentsSection {
    /// The grouping options, or `None` when grouping is off.
    pub fn options(&self) -> Option<soc_correlator::incidents::IncidentOptions> {
        self.enabled.then(|| soc_correlator::incidents::IncidentOptions {
            window: std::time::Duration::from_secs(self.window_secs),
            min_level: self.min_level,
            escalate_at: self.escalate_at,
            asset_criticality: self.assets.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ignore_entities: self.ignore_entities.iter().cloned().collect(),
            ..Default::default()
        })
    }
}

/// Entity names are `ip:`, `host:` or `user:` followed by a value.
fn check_entity(path: &Path, key: &str, e: &str) -> Result<(), ConfigError> {
    let ok = ["ip:", "host:", "user:"].iter().any(|p| e.strip_prefix(p).is_some_and(|v| !v.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(semantic(path, format!("{key}: {e:?} is not an entity (ip:ADDR, host:NAME or user:NAME)")))
    }
}

/// `[enrich]`: GeoIP/ASN databases and IOC lists for the correlator.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichSection {
    /// MaxMind-format City or Country database (GeoLite2-City.mmdb, DB-IP city lite, ...).
    #[serde(default)]
    pub geoip_location: Option<PathBuf>,
    /// MaxMind-format ASN database (GeoLite2-ASN.mmdb, ...).
    #[serde(default)]
    pub geoip_asn: Option<PathBuf>,
    /// IOC list files or directories (reloaded when they change).
    #[serde(default)]
    pub ioc: Vec<PathBuf>,
    /// Level of IOC-hit detections.
    #[serde(default = "default_ioc_level")]
    pub ioc_level: soc_model::Level,
    /// How often IOC files are checked for changes, in seconds.
    #[serde(default = "default_ioc_reload")]
    pub ioc_reload_secs: u64,
}

fn default_ioc_level() -> soc_model::Level {
    soc_model::Level::High
}
fn default_ioc_reload() -> u64 {
    10
}

impl EnrichSection {
    /// Opens the GeoIP databases (`None` when none is configured).
    pub fn geoip(
        &self,
    ) -> Result<Option<std::sync::Arc<soc_correlator::enrich::GeoIp>>, soc_correlator::enrich::GeoIpError> {
        if self.geoip_location.is_none() && self.geoip_asn.is_none() {
            return Ok(None);
        }
        soc_correlator::enrich::GeoIp::open(self.geoip_location.as_deref(), self.geoip_asn.as_deref())
            .map(|g| Some(std::sync::Arc::new(g)))
    }
    /// IOC options (`None` when no list is configured).
    pub fn ioc(&self) -> Option<soc_correlator::IocOptions> {
        (!self.ioc.is_empty()).then(|| soc_correlator::IocOptions {
            paths: self.ioc.clone(),
            level: self.ioc_level,
            reload_every: std::time::Duration::from_secs(self.ioc_reload_secs.max(1)),
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelatorFile {
    #[serde(default)]
    pub enrich: EnrichSection,
    pub correlator: CorrelatorSection,
    #[serde(default)]
    pub incidents: IncidentsSection,
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[dashboard]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSection {
    pub listen: SocketAddr,
    /// The dashboard's own database (users, sessions, audit log, alert triage); default
    /// `dashboard.sqlite` in systemd's state directory, else in the working directory.
    #[serde(default)]
    pub state_db: Option<PathBuf>,
    /// Mark the session cookie `Secure` and send HSTS (set when served over TLS).
    #[serde(default)]
    pub secure_cookie: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardFile {
    pub dashboard: DashboardSection,
    pub store: StoreConfig,
}

fn semantic(path: &Path, message: String) -> ConfigError {
    ConfigError::Semantic { path: path.display().to_string(), message }
}

pub fn load_sensor(path: &Path) -> Result<SensorFile, ConfigError> {
    let f: SensorFile = load_toml(path)?;
    if f.sensor.name.trim().is_empty() {
        return Err(semantic(path, "sensor.name: must not be empty".into()));
    }
    if let Some(bad) =
        f.sensor.vars.keys().find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(semantic(path, format!("sensor.vars: {bad:?} is not a variable name (letters, digits, _)")));
    }
    if f.output.kafka && f.kafka.is_none() {
        return Err(semantic(path, "output.kafka = true needs a [kafka] table".into()));
    }
    if f.output.eve.is_none() && !f.output.kafka {
        return Err(semantic(path, "output: set eve = \"FILE\" and/or kafka = true, or records go nowhere".into()));
    }
    if let Some(k) = &f.kafka {
        k.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    }
    Ok(f)
}

pub fn load_collector(path: &Path) -> Result<CollectorFile, ConfigError> {
    let f: CollectorFile = load_toml(path)?;
    f.collector.validate(&path.display().to_string())?;
    f.kafka.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    Ok(f)
}

pub fn load_correlator(path: &Path) -> Result<CorrelatorFile, ConfigError> {
    let f: CorrelatorFile = load_toml(path)?;
    if !(1..=100_000).contains(&f.correlator.batch) {
        return Err(semantic(path, format!("correlator.batch: {} is out of range (1..=100000)", f.correlator.batch)));
    }
    f.kafka.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    if !f.correlator.pipelines.is_empty()
        && let Err(errs) = soc_correlator::sigma::Pipelines::load(&f.correlator.pipelines)
    {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(semantic(path, format!("correlator.pipelines: {}", lines.join("; "))));
    }
    if f.correlator.max_correlation_groups == 0 {
        return Err(semantic(path, "correlator.max_correlation_groups must be at least 1".into()));
    }
    if let Some(d) = &f.correlator.dedup {
        if d.window_secs == 0 || d.max_keys == 0 {
            return Err(semantic(path, "correlator.dedup: window_secs and max_keys must be at least 1".into()));
        }
        if let Some(bad) = d.entity_fields.iter().find(|f| f.trim().is_empty()) {
            return Err(semantic(path, format!("correlator.dedup.entity_fields: {bad:?} is not a field name")));
        }
    }
    if f.incidents.window_secs == 0 {
        return Err(semantic(path, "incidents.window_secs: must be at least 1".into()));
    }
    for e in &f.incidents.ignore_entities {
        check_entity(path, "incidents.ignore_entities", e)?;
    }
    for e in f.incidents.assets.keys() {
        check_entity(path, "incidents.assets", e)?;
    }
    for (key, p) in [("enrich.geoip_location", &f.enrich.geoip_location), ("enrich.geoip_asn", &f.enrich.geoip_asn)] {
        if let Some(p) = p
            && !p.is_file()
        {
            return Err(semantic(path, format!("{key}: {} is not a file", p.display())));
        }
    }
    if let Err(e) = f.enrich.geoip() {
        return Err(semantic(path, format!("enrich: {e}")));
    }
    for p in &f.enrich.ioc {
        if !p.exists() {
            return Err(semantic(path, format!("enrich.ioc: {} does not exist", p.display())));
        }
    }
    Ok(f)
}

pub fn load_dashboard(path: &Path) -> Result<DashboardFile, ConfigError> {
    load_toml(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn example_configs_in_deploy_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let r = if name.starts_with("sensor") {
                load_sensor(&p).map(|_| ())
            } else if name.starts_with("collector") {
                load_collector(&p).map(|_| ())
            } else if name.starts_with("correlator") {
                load_correlator(&p).map(|_| ())
            } else if name.starts_with("dashboard") {
                load_dashboard(&p).map(|_| ())
            } else {
                continue;
            };
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 5, "expected the example configs, found {n}");
    }

    #[test]
    fn correlator_dedup_checkpoint_and_pipelines_are_read_and_checked() {
        let base = "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n[store]\nkind = \"sqlite\"\npath = \"x.sqlite\"\n";
        let ok = format!(
            "[correlator]\ncheckpoint_dir = \"state\"\nmax_correlation_groups = 5000\n[correlator.dedup]\nwindow_secs = 60\nentity_fields = [\"host\", \"user\"]\n{base}"
        );
        let f = write(&ok);
        let c = load_correlator(f.path()).unwrap();
        let d = c.correlator.dedup.unwrap().options();
        assert_eq!(
            (d.window.as_secs(), d.entity_fields, d.max_keys),
            (60, vec!["host".into(), "user".into()], 100_000)
        );
        assert_eq!(c.correlator.checkpoint_dir, Some(PathBuf::from("state")));
        assert_eq!(c.correlator.max_correlation_groups, 5000);
        let f = write(&format!("[correlator]\nmax_correlation_groups = 0\n{base}"));
        let e = load_correlator(f.path()).unwrap_err().to_string();
        assert!(e.contains("max_correlation_groups"), "{e}");
        let f = write(&format!("[correlator]\n[correlator.dedup]\nwindow_secs = 0\n{base}"));
        let e = load_correlator(f.path()).unwrap_err().to_string();
        assert!(e.contains("correlator.dedup"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yml");
        std::fs::write(
            &bad,
            "name: x\ntransformations:\n  - type: field_name_mapping\n    mapping: {A: b}\n    oops: 1\n",
        )
        .unwrap();
        let f = write(&format!("[correlator]\npipelines = [{:?}]\n{base}", bad.display().to_string()));
        let e = load_correlator(f.path()).unwrap_err().to_string();
        assert!(e.contains("bad.yml:") && e.contains("oops"), "{e}");
    }

    #[test]
    fn misspelled_key_names_file_line_and_key() {
        let f = write("[sensor]\nname = \"s\"\nsegmnt = \"cpnet\"\n");
        let e = load_sensor(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("segmnt"), "{e}");
    }

    #[test]
    fn sensor_stream_limits_take_sizes_with_units_and_default_to_suricatas() {
        let base = "[sensor]\nname = \"s\"\nsegment = \"cpnet\"\n[output]\neve = \"x.json\"\n";
        let d = load_sensor(write(base).path()).unwrap().sensor.stream;
        assert_eq!(
            (d.memcap, d.depth, d.max_queued_bytes, d.max_queued_segments),
            (256 << 20, 1 << 20, 256 << 10, 128)
        );
        let f = write(&format!(
            "{base}[sensor.stream]\nmemcap = \"64mb\"\ndepth = 0\nmax_queued_bytes = \"1 MiB\"\nmax_queued_segments = 512\noverlap_check = \"8kb\"\n"
        ));
        let c = load_sensor(f.path()).unwrap().sensor.stream.config();
        assert_eq!(
            (c.memcap, c.depth, c.max_ooo_bytes, c.max_ooo_segments, c.overlap_check_bytes),
            (64 << 20, 0, 1 << 20, 512, 8192)
        );
        assert_eq!(c.per_instance(2).memcap, 32 << 20);
    }

    #[test]
    fn bad_stream_limits_name_file_line_and_reason() {
        let base = "[sensor]\nname = \"s\"\nsegment = \"cpnet\"\n[output]\neve = \"x.json\"\n[sensor.stream]\n";
        for (line, why) in [
            ("memcap = \"12 parsecs\"", "unknown unit"),
            ("memcap = \"lots\"", "not a size"),
            ("memcap = 1000", "out of range"),
            ("max_queued_segments = 0", "out of range"),
            ("overlap_check = \"2gb\"", "out of range"),
            ("reassembly_depth = 5", "reassembly_depth"),
        ] {
            let e = load_sensor(write(&format!("{base}{line}\n")).path()).unwrap_err().to_string();
            assert!(e.contains(":7:") && e.contains(why), "{line}: {e}");
        }
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("99999999999gb").unwrap_err().contains("too large"));
    }

    #[test]
    fn sensor_bpf_and_stream_policies_are_read_and_bad_values_name_the_line() {
        let base = "[sensor]\nname = \"s\"\nsegment = \"cpnet\"\n";
        let out = "[output]\neve = \"x.json\"\n";
        let c = load_sensor(write(&format!("{base}{out}")).path()).unwrap().sensor;
        assert!(c.bpf.is_none() && c.vlan_tracking);
        assert_eq!(
            (c.stream.async_oneside, c.stream.urgent_policy, c.stream.memcap_policy),
            (false, UrgentPolicy::Inline, soc_sensor::options::ExceptionPolicy::Ignore)
        );
        let f = write(&format!(
            "{base}bpf = \"not port 22\"\nvlan_tracking = false\n{out}[sensor.stream]\nasync_oneside = true\nurgent_policy = \"oob\"\nmemcap_policy = \"drop-flow\"\n"
        ));
        let c = load_sensor(f.path()).unwrap().sensor;
        assert_eq!(c.bpf.as_ref().map(|b| b.text()), Some("not port 22"));
        assert!(!c.vlan_tracking);
        assert_eq!(
            (c.stream.async_oneside, c.stream.urgent_policy, c.stream.memcap_policy),
            (true, UrgentPolicy::Oob, soc_sensor::options::ExceptionPolicy::DropFlow)
        );
        for (line, at, why) in [
            ("bpf = \"port banana\"", ":4:", "bad BPF filter"),
            ("[sensor.stream]\nurgent_policy = \"sideways\"", ":5:", "unknown urgent policy"),
            ("[sensor.stream]\nmemcap_policy = \"panic\"", ":5:", "unknown policy"),
        ] {
            let e = load_sensor(write(&format!("{base}{line}\n")).path()).unwrap_err().to_string();
            assert!(e.contains(at) && e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn sensor_without_output_is_rejected_with_the_reason() {
        let f = write("[sensor]\nname = \"s\"\nsegment = \"cpnet\"\n");
        let e = load_sensor(f.path()).unwrap_err().to_string();
        assert!(e.contains("output"), "{e}");
    }

    #[test]
    fn wrong_store_kind_is_rejected() {
        let f = write("[dashboard]\nlisten = \"127.0.0.1:8080\"\n[store]\nkind = \"postgres\"\n");
        let e = load_dashboard(f.path()).unwrap_err().to_string();
        assert!(e.contains(":4:") || e.contains(":3:"), "{e}");
    }
}
