//! Kafka implementation of the bus (rdkafka with its vendored librdkafka).
//!
//! Works with any Kafka-protocol broker; CI runs it against Tansu (see `deploy/kafka.sh`).
//!
//! - Topics: `<prefix>.<kind>` for every [`Kind`], created by [`Bus::ensure_topics`] with the
//!   configured partitions and replication (brokers need not auto-create topics). Existing
//!   topics are never changed (more partitions would move keys).
//! - Producing: one idempotent producer (`enable.idempotence`, `acks=all`, lz4, a few ms of
//!   linger) shared by every publisher, created on first publish and replaced if librdkafka
//!   declares it fatally broken. A batch is sent concurrently and [`Bus::publish`] returns only
//!   when every record has a delivery report (counted down per batch: one shared counter, no
//!   future per record); if any failed it returns an error and the caller
//!   publishes the batch again (ids dedupe downstream). Records are partitioned by key with
//!   `murmur2_random`, the Java client's partitioner, so a key lands on the same partition
//!   whichever client produced it; a record without key goes to a random partition.
//! - Consuming: consumer groups with auto-commit and auto offset store off. [`Consumer::commit`]
//!   synchronously commits, per partition, the offset after the highest message given, never
//!   backwards, and only for partitions the member still owns (a revoked partition is re-read
//!   by its new owner from the group's last commit). A new group starts at the earliest record.
//! - Resuming: after an assignment a member starts `rewind_on_assign` records before the
//!   group's commit and drops those records itself. Tansu 0.6 serves a fetch only from the
//!   first offset of a stored producer batch: a member resuming from a commit inside a batch
//!   would otherwise silently skip the rest of that batch (or wait for the next one).
//! - Rebalances: [`Consumer::rebalances`] reports the partitions assigned and revoked (or
//!   lost); a poll does not hand out messages it fetched of a partition revoked during it
//!   (the new owner reads them from the group's commit).
//! - Reachability: every request that can block (metadata, topic creation, commit) is bounded by
//!   `timeout_ms`; a broker that cannot be reached gives [`BusError::Unavailable`] naming the
//!   bootstrap address (at once when the port refuses connections).
//! - Security: `client` passes librdkafka properties through (SASL PLAIN over plaintext works
//!   with the default build; TLS and SCRAM need rdkafka's `ssl` feature). Values of
//!   secret-looking keys never appear in logs, errors or `Debug` output.
//! - Metrics (label `bus="kafka"`): counters `soc_bus_published_total`,
//!   `soc_bus_publish_errors_total`, `soc_bus_consumed_total`, `soc_bus_consume_errors_total`,
//!   `soc_bus_commits_total`, `soc_bus_committed_total`, `soc_bus_commit_errors_total`,
//!   `soc_bus_commit_skipped_total`, `soc_bus_rewound_skipped_total`,
//!   `soc_bus_rebalances_total`, `soc_bus_revoked_dropped_total`, `soc_bus_client_errors_total`; histogram
//!   `soc_bus_publish_seconds`; gauge `soc_bus_consumer_lag` (per group and topic, from
//!   librdkafka's statistics every `statistics_interval_ms`).

use crate::{Bus, BusError, Consumer, Message, Record, commit_points, topic_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use soc_model::Kind;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After the first message of a poll, how long to wait for the next one before returning the
/// batch: a batch fills from librdkafka's prefetch queue without waiting out the whole timeout.
const BATCH_IDLE: Duration = Duration::from_millis(5);
/// Partition changes kept for [`Consumer::rebalances`] before the oldest is dropped (counted):
/// a consumer that takes them after each poll never gets near it.
const MAX_PENDING_REBALANCES: usize = 1024;

/// librdkafka properties the bus sets itself: overriding them would break its contract.
const RESERVED: [&str; 8] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "request.required.acks",
];

/// Kafka settings (the `[bus.kafka]` table of a component's configuration).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port`: a list, or one comma-separated string.
    #[serde(deserialize_with = "de_brokers")]
    pub brokers: Vec<String>,
    /// Topics are `<topic_prefix>.<kind>` (`soc.flow`, ...); empty: just `<kind>`.
    pub topic_prefix: String,
    /// Partitions of the topics [`Bus::ensure_topics`] creates (the unit of consumer parallelism).
    pub partitions: i32,
    /// Replication factor of created topics; `-1` takes the broker's default.
    pub replication: i32,
    /// Producer compression: `none`, `gzip`, `snappy` or `lz4` (`zstd` needs librdkafka built
    /// with it).
    pub compression: String,
    /// How long the producer waits to fill a batch.
    pub linger_ms: u32,
    /// Bound on each blocking request: metadata, topic creation, commit, the reachability check.
    pub timeout_ms: u64,
    /// How long librdkafka keeps retrying a record before its delivery fails.
    pub delivery_timeout_ms: u64,
    /// Consumer-group session timeout: how soon a crashed member's partitions move to others.
    pub session_timeout_ms: u32,
    /// Interval of librdkafka statistics for the consumer-lag gauge; 0 turns them off.
    pub statistics_interval_ms: u32,
    /// After a partition is assigned, fetch from this many records before the group's
    /// committed offset and drop them client-side. Some brokers (Tansu 0.6) serve a fetch only
    /// from the start of a stored record batch and silently skip the rest of a batch a commit
    /// points into; starting at or before the batch start avoids that. Must be at least the
    /// producers' records per batch (librdkafka's `batch.num.messages`, 10000). On Apache Kafka
    /// it only costs re-reading those records after a rebalance; 0 turns it off.
    pub rewind_on_assign: u32,
    /// Extra librdkafka properties for every client, e.g. `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`. Values of secret-looking keys are
    /// never logged or printed. Producer batching can be tuned here too: larger batches
    /// (`batch.size`, bytes per partition batch, 1 MB by default, with `message.max.bytes`
    /// above it) cut the broker's and the client's CPU time per record (Tansu: about half with
    /// 4 MB batches, see `bench_syslog_tcp --raw`), but a Kafka broker refuses a batch larger
    /// than its own `message.max.bytes` (1 MB by default), so the defaults stay.
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: vec!["127.0.0.1:9092".to_string()],
            topic_prefix: "soc".to_string(),
            partitions: 6,
            replication: 1,
            compression: "lz4".to_string(),
            linger_ms: 5,
            timeout_ms: 5_000,
            delivery_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            statistics_interval_ms: 10_000,
            rewind_on_assign: 10_000,
            client: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client: BTreeMap<&str, &str> = self
            .client
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret(k) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic_prefix", &self.topic_prefix)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("compression", &self.compression)
            .field("linger_ms", &self.linger_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("statistics_interval_ms", &self.statistics_interval_ms)
            .field("rewind_on_assign", &self.rewind_on_assign)
            .field("client", &client)
            .finish()
    }
}

impl KafkaConfig {
    /// The defaults with these bootstrap servers (comma-separated) and topic prefix.
    pub fn new(brokers: &str, topic_prefix: &str) -> Self {
        KafkaConfig { brokers: split_brokers(brokers), topic_prefix: topic_prefix.to_string(), ..Default::default() }
    }

    /// The bootstrap list as librdkafka takes it (and as errors name it).
    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }

    /// Checks what librdkafka would not (or would only report with a secret in the message).
    pub fn validate(&self) -> Result<(), BusError> {
        if self.brokers.is_empty() {
            return Err(BusError::Config("kafka.brokers is empty".into()));
        }
        if let Some(b) = self.brokers.iter().find(|b| b.trim().is_empty() || b.contains(char::is_whitespace)) {
            return Err(BusError::Config(format!("kafka.brokers: invalid address {b:?}")));
        }
        if self.partitions < 1 {
            return Err(BusError::Config(format!("kafka.partitions must be at least 1, not {}", self.partitions)));
        }
        if self.replication < 1 && self.replication != -1 {
            return Err(BusError::Config(format!(
                "kafka.replication must be at least 1 (or -1 for the broker default), not {}",
                self.replication
            )));
        }
        let longest = Kind::ALL.iter().map(|k| k.as_str().len()).max().unwrap_or(0);
        if self.topic_prefix.len() + 1 + longest > 249
            || !self.topic_prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(BusError::Config(format!(
                "kafka.topic_prefix {:?}: topic names allow only ASCII letters, digits, '.', '_' and '-' (at most 249)",
                self.topic_prefix
            )));
        }
        if self.timeout_ms == 0 {
            return Err(BusError::Config("kafka.timeout_ms must be positive".into()));
        }
        if self.rewind_on_assign > 0
            && let Some(n) = self.client.get("batch.num.messages").and_then(|v| v.trim().parse::<u64>().ok())
            && n > u64::from(self.rewind_on_assign)
        {
            return Err(BusError::Config(format!(
                "kafka.rewind_on_assign ({}) must be at least kafka.client.batch.num.messages ({n})",
                self.rewind_on_assign
            )));
        }
        for key in self.client.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(BusError::Config(format!(
                    "kafka.client.{key} is set by the bus itself (brokers, groups and delivery guarantees are not configurable here)"
                )));
            }
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Properties shared by every client; `client` overrides come last.
    fn base(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("client.id", format!("canh-gac-{role}"))
            .set("socket.connection.setup.timeout.ms", self.timeout_ms.max(1_000).to_string())
            .set_log_level(if self.client.contains_key("debug") {
                RDKafkaLogLevel::Debug
            } else {
                RDKafkaLogLevel::Warning
            });
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    fn producer_config(&self) -> ClientConfig {
        let mut c = self.base("producer");
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        // Tunables the user may override through `client`.
        if !self.client.contains_key("compression.type") && !self.client.contains_key("compression.codec") {
            c.set("compression.type", &self.compression);
        }
        if !self.client.contains_key("linger.ms") && !self.client.contains_key("queue.buffering.max.ms") {
            c.set("linger.ms", self.linger_ms.to_string());
        }
        c
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.base("consumer");
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        for (k, v) in [
            ("auto.offset.reset", "earliest".to_string()),
            ("session.timeout.ms", self.session_timeout_ms.to_string()),
            // A tenth of the session (Kafka's default is a third, 3 s): a member hears of a
            // rebalance sooner, and Tansu, which pauses joining followers for 3 s, does not
            // expire a member that is waiting on such a pause.
            ("heartbeat.interval.ms", (self.session_timeout_ms / 10).clamp(100, 3_000).to_string()),
            ("statistics.interval.ms", self.statistics_interval_ms.to_string()),
        ] {
            if !self.client.contains_key(k) {
                c.set(k, v);
            }
        }
        c
    }

    fn admin_config(&self) -> ClientConfig {
        self.base("admin")
    }
}

/// Keys whose values must never reach a log line, an error or a `Debug` print.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "oauthbearer.config", "key.pem", "keystore", "token", "credential"]
        .iter()
        .any(|s| k.contains(s))
}

fn split_brokers(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|b| !b.is_empty()).map(str::to_string).collect()
}

fn de_brokers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of \"host:port\" strings or one comma-separated string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(split_brokers(s))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.extend(split_brokers(&s));
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A librdkafka client error as a configuration error, without secret values.
fn config_error(e: KafkaError) -> BusError {
    match e {
        KafkaError::ClientConfig(_, _, key, _) if is_secret(&key) => {
            BusError::Config(format!("kafka.client.{key}: invalid value (not shown: secret)"))
        }
        KafkaError::ClientConfig(_, desc, key, _) => BusError::Config(format!("kafka property {key}: {desc}")),
        other => BusError::Config(other.to_string()),
    }
}

/// The librdkafka error code of an error, admin results included.
fn code_of(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

fn is_unreachable(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::TimedOutQueue
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
    )
}

fn is_unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownPartition
    )
}

/// The callbacks of every client: librdkafka logs and errors into `tracing`, rebalances into
/// logs and metrics, statistics into the lag gauge.
struct Ctx {
    role: &'static str,
    brokers: String,
    group: String,
    /// Topic name to kind, for labels.
    kinds: HashMap<String, Kind>,
    /// Consumers: records to re-read before the committed offset on assignment.
    rewind: i64,
    timeout: Duration,
    /// Consumers: per topic and partition, the committed offset below which rewound records
    /// are dropped.
    floors: Mutex<HashMap<String, BTreeMap<i32, i64>>>,
    /// Consumers: partition changes not yet taken by [`Consumer::rebalances`].
    changes: Mutex<Vec<crate::Rebalance>>,
    /// Consumers: partitions revoked since the poll last looked (set when not empty).
    revoked: Mutex<BTreeSet<(Kind, i32)>>,
    revoked_any: std::sync::atomic::AtomicBool,
}

impl Ctx {
    fn new(role: &'static str, cfg: &KafkaConfig) -> Self {
        Ctx {
            role,
            brokers: cfg.bootstrap(),
            group: String::new(),
            kinds: HashMap::new(),
            rewind: i64::from(cfg.rewind_on_assign),
            timeout: cfg.timeout(),
            floors: Mutex::new(HashMap::new()),
            changes: Mutex::new(Vec::new()),
            revoked: Mutex::new(BTreeSet::new()),
            revoked_any: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for e in tpl.elements() {
        by_topic.entry(e.topic().to_string()).or_default().push(e.partition());
    }
    by_topic.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect::<Vec<_>>().join(" ")
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        let role = self.role;
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", role, fac, "{msg}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", role, fac, "{msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", role, fac, "{msg}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", role, fac, "{msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        metrics::counter!("soc_bus_client_errors_total", "bus" => "kafka", "role" => self.role).increment(1);
        let transient = code_of(&error).is_some_and(is_unreachable);
        if transient {
            tracing::warn!(role = self.role, brokers = %self.brokers, %error, reason, "kafka broker connection problem");
        } else {
            tracing::error!(role = self.role, brokers = %self.brokers, %error, reason, "kafka client error");
        }
    }

    fn stats(&self, stats: Statistics) {
        if self.group.is_empty() {
            return;
        }
        for (topic, t) in &stats.topics {
            let Some(kind) = self.kinds.get(topic) else {
                continue;
            };
            let lag: i64 = t
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && p.desired && p.consumer_lag > 0)
                .map(|p| p.consumer_lag)
                .sum();
            metrics::gauge!("soc_bus_consumer_lag", "bus" => "kafka", "group" => self.group.clone(), "topic" => kind.as_str())
                .set(lag as f64);
        }
    }
}

impl Ctx {
    /// Moves the start of each newly assigned partition `rewind` records before the group's
    /// committed offset and remembers the committed offset as the floor below which
    /// [`KafkaConsumer::poll`] drops records (see [`KafkaConfig::rewind_on_assign`]).
    fn rewind(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        if self.rewind <= 0 || tpl.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(tpl.clone(), self.timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "could not read committed offsets; resuming without rewind");
                return;
            }
        };
        let mut floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        for e in committed.elements() {
            let Offset::Offset(c) = e.offset() else {
                continue;
            };
            if c <= 0 {
                continue;
            }
            let start = c.saturating_sub(self.rewind).max(0);
            match tpl.set_partition_offset(e.topic(), e.partition(), Offset::Offset(start)) {
                Ok(()) => {
                    floors.entry(e.topic().to_string()).or_default().insert(e.partition(), c);
                }
                Err(err) => {
                    tracing::warn!(topic = e.topic(), partition = e.partition(), error = %err, "could not rewind")
                }
            }
        }
    }

    fn forget(&self, tpl: &TopicPartitionList) {
        let mut floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        for e in tpl.elements() {
            if let Some(parts) = floors.get_mut(e.topic()) {
                parts.remove(&e.partition());
            }
        }
        floors.retain(|_, parts| !parts.is_empty());
    }

    /// Whether a record is below its partition's floor (already committed: drop it). The
    /// floor goes away at the first record that reaches it.
    fn below_floor(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let mut floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        let Some(parts) = floors.get_mut(topic) else {
            return false;
        };
        let Some(floor) = parts.get(&partition).copied() else {
            return false;
        };
        if offset < floor {
            return true;
        }
        parts.remove(&partition);
        if parts.is_empty() {
            floors.remove(topic);
        }
        false
    }

    /// Remembers a partition change for [`Consumer::rebalances`].
    fn note(&self, tpl: &TopicPartitionList, assigned: bool) {
        let parts: Vec<(Kind, i32)> =
            tpl.elements().iter().filter_map(|e| self.kinds.get(e.topic()).map(|k| (*k, e.partition()))).collect();
        if parts.is_empty() {
            return;
        }
        if !assigned {
            self.revoked.lock().unwrap_or_else(|p| p.into_inner()).extend(parts.iter().copied());
            self.revoked_any.store(true, std::sync::atomic::Ordering::Release);
        }
        let change = if assigned { crate::Rebalance::Assigned(parts) } else { crate::Rebalance::Revoked(parts) };
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        // Consumers that never take the changes (only the correlator does) keep a bounded list.
        if changes.len() >= MAX_PENDING_REBALANCES {
            changes.remove(0);
            metrics::counter!("soc_bus_rebalance_changes_dropped_total").increment(1);
        }
        changes.push(change);
    }

    fn rebalanced(&self, change: &'static str) {
        metrics::counter!("soc_bus_rebalances_total", "bus" => "kafka", "group" => self.group.clone(), "change" => change)
            .increment(1);
    }
}

impl ConsumerContext for Ctx {
    /// librdkafka's default rebalance (assign / unassign, eager or cooperative) plus the
    /// rewind of newly assigned partitions, logs and metrics.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.rewind(consumer, tpl);
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                self.rebalanced("assign");
                match r {
                    Ok(()) => {
                        self.note(tpl, true);
                        tracing::info!(group = %self.group, partitions = %describe(tpl), "kafka rebalance: partitions assigned")
                    }
                    Err(e) => {
                        tracing::error!(group = %self.group, partitions = %describe(tpl), error = %e, "kafka rebalance: assign failed")
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.forget(tpl);
                self.note(tpl, false);
                let lost = consumer.assignment_lost();
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                self.rebalanced(if lost { "lost" } else { "revoke" });
                match r {
                    Ok(()) => {
                        tracing::info!(group = %self.group, partitions = %describe(tpl), lost, "kafka rebalance: partitions revoked")
                    }
                    Err(e) => {
                        tracing::error!(group = %self.group, error = %e, "kafka rebalance: unassign failed")
                    }
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                self.rebalanced("error");
                tracing::warn!(group = %self.group, error = %code, "kafka rebalance failed; dropping the assignment");
                self.forget(tpl);
                self.note(tpl, false);
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    tracing::error!(group = %self.group, error = %e, "kafka rebalance: unassign failed");
                }
            }
        }
    }
}

type Producer = ThreadedProducer<ProducerCtx>;

/// The producer's callbacks: the client ones of [`Ctx`], and delivery reports settling the
/// [`Pending`] of the publish that sent the record.
struct ProducerCtx(Ctx);

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.0.log(level, fac, msg)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason)
    }
    fn stats(&self, stats: Statistics) {
        self.0.stats(stats)
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Arc<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Arc<Pending>) {
        match result {
            Ok(_) => pending.settle(None),
            Err((e, _)) => pending.settle(Some(e.clone())),
        }
    }
}

/// The delivery reports one [`Bus::publish`] waits for: one shared counter per batch instead of
/// a future per record. Every record sent holds a clone of the `Arc` as its delivery opaque
/// (librdkafka hands it to exactly one delivery report, success or failure, at the latest when
/// `delivery_timeout_ms` has passed).
struct Pending {
    /// Records of the batch not yet reported (all counted before the first is sent), plus one
    /// held by the publisher while it sends.
    outstanding: std::sync::atomic::AtomicUsize,
    /// Failures: how many, and the first error.
    tally: Mutex<Tally>,
    /// Notified when `outstanding` reaches zero.
    done: tokio::sync::Notify,
    /// Set while the publisher waits for room in librdkafka's queue; reports then notify
    /// `progress`.
    want_progress: std::sync::atomic::AtomicBool,
    progress: tokio::sync::Notify,
}

impl Pending {
    fn new() -> Self {
        Pending {
            outstanding: std::sync::atomic::AtomicUsize::new(1),
            tally: Mutex::new(Tally::default()),
            done: tokio::sync::Notify::new(),
            want_progress: std::sync::atomic::AtomicBool::new(false),
            progress: tokio::sync::Notify::new(),
        }
    }

    /// One record's outcome: `None` delivered, `Some(e)` failed.
    fn settle(&self, failure: Option<KafkaError>) {
        if let Some(e) = failure {
            self.tally.lock().unwrap_or_else(|p| p.into_inner()).fail(e);
        }
        self.release();
    }

    /// One less to wait for (a report, a record that could not be sent, the publisher's own).
    fn release(&self) {
        use std::sync::atomic::Ordering;
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
        if self.want_progress.load(Ordering::Acquire) {
            self.progress.notify_one();
        }
    }

    /// Waits until every record sent has its report (after the publisher's own release).
    async fn wait(&self) {
        while self.outstanding.load(std::sync::atomic::Ordering::Acquire) > 0 {
            // Only the release to zero notifies (once, a permit kept when nobody waits yet).
            self.done.notified().await;
        }
    }
}

/// The Kafka bus. Cheap to share behind an `Arc`; one producer serves every publisher.
pub struct KafkaBus {
    cfg: KafkaConfig,
    topics: BTreeMap<Kind, String>,
    admin: Arc<AdminClient<Ctx>>,
    /// Created on first publish (a consume-only process opens no producer), replaced after a
    /// fatal producer error.
    producer: Mutex<Option<Arc<Producer>>>,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Validates the configuration and creates the clients. Does not wait for the broker:
    /// [`Bus::ensure_topics`] (the first call of every component) reports an unreachable one.
    pub fn connect(cfg: KafkaConfig) -> Result<KafkaBus, BusError> {
        cfg.validate()?;
        // Let librdkafka check every property set now rather than at first use.
        cfg.producer_config().create_native_config().map_err(config_error)?;
        cfg.consumer_config("check").create_native_config().map_err(config_error)?;
        let admin: AdminClient<Ctx> =
            cfg.admin_config().create_with_context(Ctx::new("admin", &cfg)).map_err(config_error)?;
        let topics = Kind::ALL.iter().map(|k| (*k, topic_name(&cfg.topic_prefix, *k))).collect();
        tracing::info!(brokers = %cfg.bootstrap(), prefix = %cfg.topic_prefix, "kafka bus configured");
        Ok(KafkaBus { cfg, topics, admin: Arc::new(admin), producer: Mutex::new(None) })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.cfg
    }

    /// The topic of a kind.
    pub fn topic(&self, kind: Kind) -> &str {
        self.topics.get(&kind).map(String::as_str).unwrap_or_default()
    }

    fn unavailable(&self, reason: impl Into<String>) -> BusError {
        BusError::Unavailable { addr: self.cfg.bootstrap(), reason: reason.into() }
    }

    fn producer(&self) -> Result<Arc<Producer>, BusError> {
        let mut slot = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p: Producer = self
            .cfg
            .producer_config()
            .create_with_context(ProducerCtx(Ctx::new("producer", &self.cfg)))
            .map_err(config_error)?;
        tracing::info!(brokers = %self.cfg.bootstrap(), "kafka producer created");
        let p = Arc::new(p);
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Drops a producer that librdkafka has declared unusable; the next publish makes a new one.
    fn check_fatal(&self, p: &Arc<Producer>) {
        if let Some((code, reason)) = p.client().fatal_error() {
            tracing::error!(%code, reason, "kafka producer hit a fatal error; replacing it");
            let mut slot = self.producer.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, p)) {
                *slot = None;
            }
        }
    }

    /// Drops the producer after deliveries timed out or found no broker; the next publish makes
    /// a new one. An idempotent producer keeps its producer id and sequence numbers across a
    /// broker restart; a broker that lost its state (a restarted broker on memory storage, a
    /// replaced cluster) can leave it timing out on every later send. A fresh producer starts
    /// a new idempotence session; records it re-sends are recognised downstream by their ids.
    fn replace_producer(&self, p: &Arc<Producer>, e: &KafkaError) {
        let mut slot = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, p)) {
            tracing::warn!(error = %e, "kafka deliveries failed; replacing the producer");
            metrics::counter!("soc_bus_producer_replaced_total", "bus" => "kafka").increment(1);
            *slot = None;
        }
    }

    /// Fails fast with the OS's reason when no bootstrap address accepts TCP connections
    /// (librdkafka would only report a timeout after retrying).
    async fn probe(&self) -> Result<(), BusError> {
        let limit = self.cfg.timeout().min(Duration::from_secs(3));
        let mut reasons = Vec::new();
        for b in &self.cfg.brokers {
            // librdkafka accepts `proto://host:port` and a missing port (9092).
            let addr = b.rsplit("://").next().unwrap_or(b);
            let addr = if addr.rsplit_once(':').is_some_and(|(_, port)| !port.ends_with(']')) {
                addr.to_string()
            } else {
                format!("{addr}:9092")
            };
            match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr.as_str())).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => reasons.push(format!("{addr}: {e}")),
                Err(_) => reasons.push(format!("{addr}: no answer within {} ms", limit.as_millis())),
            }
        }
        Err(self.unavailable(reasons.join("; ")))
    }

    /// Topics of the cluster and their partition counts, bounded by `timeout_ms`.
    async fn metadata(&self) -> Result<BTreeMap<String, usize>, BusError> {
        self.probe().await?;
        let admin = self.admin.clone();
        let timeout = self.cfg.timeout();
        let res = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(None, timeout).map(|md| {
                md.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| (t.name().to_string(), t.partitions().len()))
                    .collect::<BTreeMap<_, _>>()
            })
        })
        .await
        .map_err(|e| self.unavailable(format!("metadata task failed: {e}")))?;
        res.map_err(|e| self.unavailable(format!("no metadata within {} ms: {e}", timeout.as_millis())))
    }

    /// Partition counts of this bus's topics that exist on the broker.
    pub async fn topic_partitions(&self) -> Result<BTreeMap<Kind, usize>, BusError> {
        let md = self.metadata().await?;
        Ok(self.topics.iter().filter_map(|(k, t)| md.get(t).map(|n| (*k, *n))).collect())
    }

    /// A consumer-group member on the topics of `kinds` (what [`Bus::subscribe`] boxes).
    pub async fn consumer(&self, group: &str, kinds: &[Kind]) -> Result<KafkaConsumer, BusError> {
        if group.is_empty() {
            return Err(BusError::Config("consumer group name is empty".into()));
        }
        let kinds: BTreeSet<Kind> = kinds.iter().copied().collect();
        if kinds.is_empty() {
            return Err(BusError::Config(format!("group {group}: subscribe to at least one kind")));
        }
        let md = self.metadata().await?;
        let mut topics = BTreeMap::new();
        for k in &kinds {
            let t = self.topic(*k).to_string();
            if !md.contains_key(&t) {
                return Err(BusError::Topic { topic: t, reason: "does not exist (call ensure_topics first)".into() });
            }
            topics.insert(*k, t);
        }
        let mut ctx = Ctx::new("consumer", &self.cfg);
        ctx.group = group.to_string();
        ctx.kinds = topics.iter().map(|(k, t)| (t.clone(), *k)).collect();
        let kinds_by_topic = ctx.kinds.clone();
        let consumer: StreamConsumer<Ctx> =
            self.cfg.consumer_config(group).create_with_context(ctx).map_err(config_error)?;
        let names: Vec<&str> = topics.values().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(|e| BusError::Consume(format!("subscribe to {names:?}: {e}")))?;
        tracing::info!(group, topics = ?names, brokers = %self.cfg.bootstrap(), "kafka consumer subscribed");
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            group: group.to_string(),
            kinds: kinds_by_topic,
            topics,
            committed: HashMap::new(),
            timeout: self.cfg.timeout(),
        })
    }
}

/// Delivery failures of one publish: how many, and the first error.
#[derive(Default)]
struct Tally {
    failed: u64,
    first: Option<KafkaError>,
}

impl Tally {
    fn fail(&mut self, e: KafkaError) {
        self.failed += 1;
        self.first.get_or_insert(e);
    }
}

#[async_trait::async_trait]
impl Bus for KafkaBus {
    async fn ensure_topics(&self) -> Result<(), BusError> {
        let existing = self.metadata().await?;
        for (kind, topic) in &self.topics {
            if let Some(n) = existing.get(topic)
                && (*n as i32) < self.cfg.partitions
            {
                tracing::warn!(
                    topic,
                    kind = kind.as_str(),
                    partitions = n,
                    configured = self.cfg.partitions,
                    "topic has fewer partitions than configured; not changing it (that would move keys between partitions)"
                );
            }
        }
        let missing: Vec<&str> =
            self.topics.values().filter(|t| !existing.contains_key(*t)).map(String::as_str).collect();
        if missing.is_empty() {
            tracing::debug!(prefix = %self.cfg.topic_prefix, "kafka topics present");
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| NewTopic::new(t, self.cfg.partitions, TopicReplication::Fixed(self.cfg.replication)))
            .collect();
        let timeout = self.cfg.timeout();
        let opts = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
        let results = match self.admin.create_topics(&new, &opts).await {
            Ok(r) => r,
            Err(e) => {
                return Err(match code_of(&e) {
                    Some(code) if is_unreachable(code) => self.unavailable(format!("creating topics: {e}")),
                    _ => BusError::Topic { topic: missing.join(","), reason: e.to_string() },
                });
            }
        };
        for r in results {
            match r {
                Ok(t) => {
                    tracing::info!(topic = %t, partitions = self.cfg.partitions, replication = self.cfg.replication, "kafka topic created")
                }
                Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(topic = %t, "kafka topic already exists")
                }
                Err((t, code)) if is_unreachable(code) => {
                    return Err(self.unavailable(format!("creating topic {t}: {code}")));
                }
                Err((t, code)) => {
                    return Err(BusError::Topic { topic: t, reason: code.to_string() });
                }
            }
        }
        // Creation is asynchronous on some brokers: wait (bounded) until metadata shows them all.
        let deadline = Instant::now() + timeout;
        loop {
            let md = self.metadata().await?;
            let still: Vec<&str> = missing.iter().copied().filter(|t| !md.contains_key(*t)).collect();
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BusError::Topic {
                    topic: still.join(","),
                    reason: format!("created but not in the metadata after {} ms", timeout.as_millis()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError> {
        self.publish_ref(kind, &records).await
    }

    async fn publish_ref(&self, kind: Kind, records: &[Record]) -> Result<(), BusError> {
        if records.is_empty() {
            return Ok(());
        }
        let topic = self.topic(kind);
        let producer = self.producer()?;
        let started = Instant::now();
        let total = records.len();
        let pending = Arc::new(Pending::new());
        // Every record is counted up front (one atomic add instead of one per record, on a
        // counter the delivery thread is decrementing meanwhile); a record that cannot be sent
        // releases its count below.
        pending.outstanding.fetch_add(total, std::sync::atomic::Ordering::AcqRel);
        for r in records {
            let mut rec = BaseRecord::with_opaque_to(topic, pending.clone()).payload(r.payload.as_slice());
            if !r.key.is_empty() {
                rec = rec.key(r.key.as_slice());
            }
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for a report of this batch (or, as
                        // records of other publishers also free room, a few ms) and retry.
                        rec = back;
                        let progress = pending.progress.notified();
                        pending.want_progress.store(true, std::sync::atomic::Ordering::Release);
                        let _ = tokio::time::timeout(Duration::from_millis(10), progress).await;
                        pending.want_progress.store(false, std::sync::atomic::Ordering::Release);
                    }
                    Err((e, _)) => {
                        pending.settle(Some(e));
                        break;
                    }
                }
            }
        }
        // The publisher's own count: from here only reports release.
        pending.release();
        pending.wait().await;
        let tally = std::mem::take(&mut *pending.tally.lock().unwrap_or_else(|p| p.into_inner()));
        let failed = tally.failed;
        let ok = total as u64 - failed;
        metrics::counter!("soc_bus_published_total", "bus" => "kafka", "topic" => kind.as_str()).increment(ok);
        metrics::histogram!("soc_bus_publish_seconds", "bus" => "kafka", "topic" => kind.as_str())
            .record(started.elapsed().as_secs_f64());
        let Some(e) = tally.first else { return Ok(()) };
        metrics::counter!("soc_bus_publish_errors_total", "bus" => "kafka", "topic" => kind.as_str()).increment(failed);
        self.check_fatal(&producer);
        if code_of(&e).is_some_and(is_unreachable) {
            self.replace_producer(&producer, &e);
        }
        let reason = format!("{failed} of {total} records not delivered: {e}");
        tracing::warn!(topic, failed, total, error = %e, "kafka publish failed");
        Err(match code_of(&e) {
            Some(code) if is_unknown_topic(code) => {
                BusError::Topic { topic: topic.to_string(), reason: format!("{reason} (call ensure_topics first)") }
            }
            Some(code) if is_unreachable(code) => self.unavailable(reason),
            _ => BusError::Publish { topic: topic.to_string(), reason },
        })
    }

    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(self.consumer(group, kinds).await?))
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

/// A Kafka consumer-group member. Dropping it leaves the group (its partitions move to the
/// other members, which resume from the group's commits).
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<Ctx>>,
    group: String,
    kinds: HashMap<String, Kind>,
    topics: BTreeMap<Kind, String>,
    /// Offsets this member committed (next to read), so a late commit never moves one back.
    committed: HashMap<(Kind, i32), i64>,
    timeout: Duration,
}

impl KafkaConsumer {
    /// The group this member belongs to.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The partitions currently assigned to this member.
    pub fn assignment(&self) -> Result<Vec<(Kind, i32)>, BusError> {
        let tpl = self.consumer.assignment().map_err(|e| BusError::Consume(format!("assignment: {e}")))?;
        let mut v: Vec<(Kind, i32)> =
            tpl.elements().iter().filter_map(|e| self.kinds.get(e.topic()).map(|k| (*k, e.partition()))).collect();
        v.sort();
        Ok(v)
    }

    /// Drops from a batch being collected the messages of partitions revoked since the last
    /// look (counted and logged).
    fn drop_revoked(&self, out: &mut Vec<Message>) {
        let ctx = self.consumer.context();
        if !ctx.revoked_any.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let revoked = std::mem::take(&mut *ctx.revoked.lock().unwrap_or_else(|p| p.into_inner()));
        let before = out.len();
        out.retain(|m| !revoked.contains(&(m.kind, m.partition)));
        let dropped = before - out.len();
        if dropped > 0 {
            metrics::counter!("soc_bus_revoked_dropped_total", "bus" => "kafka", "group" => self.group.clone())
                .increment(dropped as u64);
            tracing::info!(group = %self.group, dropped, "messages of partitions revoked during the poll left to their new owner");
        }
    }

    fn to_message(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Option<Message> {
        if self.consumer.context().below_floor(m.topic(), m.partition(), m.offset()) {
            metrics::counter!("soc_bus_rewound_skipped_total", "bus" => "kafka", "group" => self.group.clone())
                .increment(1);
            return None;
        }
        let Some(kind) = self.kinds.get(m.topic()) else {
            tracing::warn!(topic = m.topic(), group = %self.group, "message from a topic this member did not subscribe to; skipped");
            return None;
        };
        Some(Message {
            kind: *kind,
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().unwrap_or_default().to_vec(),
            payload: m.payload().unwrap_or_default().to_vec(),
        })
    }
}

#[async_trait::async_trait]
impl Consumer for KafkaConsumer {
    /// Waits up to `timeout` for the first message, then takes what is ready up to `max`,
    /// returning early when nothing more arrives within a few milliseconds.
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out: Vec<Message> = Vec::new();
        while out.len() < max {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = if out.is_empty() { left } else { left.min(BATCH_IDLE) };
            let got = match tokio::time::timeout(wait, self.consumer.recv()).await {
                Err(_) => break,
                Ok(r) => r.map(|m| self.to_message(&m)),
            };
            // A revocation served by this receive: what was fetched before it is the new
            // owner's (it reads it from the group's commit), not ours to hand out.
            self.drop_revoked(&mut out);
            match got {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => {
                    metrics::counter!("soc_bus_consume_errors_total", "bus" => "kafka", "group" => self.group.clone())
                        .increment(1);
                    if !out.is_empty() {
                        tracing::warn!(group = %self.group, error = %e, "kafka consume error after part of a batch");
                        break;
                    }
                    return Err(match code_of(&e) {
                        Some(code) if is_unknown_topic(code) => BusError::Topic {
                            topic: self.topics.values().cloned().collect::<Vec<_>>().join(","),
                            reason: format!("{e} (call ensure_topics first)"),
                        },
                        _ => BusError::Consume(e.to_string()),
                    });
                }
            }
        }
        self.drop_revoked(&mut out);
        if !out.is_empty() {
            let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
            for m in &out {
                *counts.entry(m.kind).or_default() += 1;
            }
            for (k, n) in counts {
                metrics::counter!("soc_bus_consumed_total", "bus" => "kafka", "topic" => k.as_str(), "group" => self.group.clone())
                    .increment(n);
            }
        }
        Ok(out)
    }

    async fn commit(&mut self, done: &[Message]) -> Result<(), BusError> {
        let owned: BTreeSet<(Kind, i32)> = self.assignment()?.into_iter().collect();
        let mut tpl = TopicPartitionList::new();
        let mut points = Vec::new();
        let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
        for m in done {
            *counts.entry(m.kind).or_default() += 1;
        }
        for ((kind, partition), offset) in commit_points(done) {
            let next = offset + 1;
            if self.committed.get(&(kind, partition)).is_some_and(|c| *c >= next) {
                continue;
            }
            if !owned.contains(&(kind, partition)) {
                metrics::counter!("soc_bus_commit_skipped_total", "bus" => "kafka", "group" => self.group.clone())
                    .increment(1);
                tracing::debug!(group = %self.group, kind = kind.as_str(), partition, "not committing a partition this member no longer owns");
                continue;
            }
            let Some(topic) = self.topics.get(&kind) else {
                return Err(BusError::Commit(format!("{} is not a topic of group {}", kind.as_str(), self.group)));
            };
            tpl.add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(|e| BusError::Commit(format!("{topic}[{partition}]@{next}: {e}")))?;
            points.push(((kind, partition), next));
        }
        if points.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let task = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
        let res = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(r)) => r.map_err(|e| BusError::Commit(format!("group {}: {e}", self.group))),
            Ok(Err(e)) => Err(BusError::Commit(format!("group {}: commit task failed: {e}", self.group))),
            Err(_) => {
                Err(BusError::Commit(format!("group {}: no answer within {} ms", self.group, self.timeout.as_millis())))
            }
        };
        if let Err(e) = res {
            metrics::counter!("soc_bus_commit_errors_total", "bus" => "kafka", "group" => self.group.clone())
                .increment(1);
            tracing::warn!(group = %self.group, error = %e, "kafka commit failed");
            return Err(e);
        }
        for (k, next) in points {
            self.committed.insert(k, next);
        }
        metrics::counter!("soc_bus_commits_total", "bus" => "kafka", "group" => self.group.clone()).increment(1);
        for (k, n) in counts {
            metrics::counter!("soc_bus_committed_total", "bus" => "kafka", "topic" => k.as_str(), "group" => self.group.clone())
                .increment(n);
        }
        Ok(())
    }

    fn rebalances(&mut self) -> Vec<crate::Rebalance> {
        std::mem::take(&mut *self.consumer.context().changes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publish's reports as librdkafka gives them: from another thread, in any order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_completes_when_every_report_is_in_and_keeps_the_first_failure() {
        for failures in [0usize, 1, 3] {
            let pending = Arc::new(Pending::new());
            let records = 10_000usize;
            pending.outstanding.fetch_add(records, std::sync::atomic::Ordering::AcqRel);
            let reporter = {
                let pending = pending.clone();
                std::thread::spawn(move || {
                    for i in 0..records {
                        let failure = (i < failures).then(|| {
                            KafkaError::MessageProduction(if i == 0 {
                                RDKafkaErrorCode::MessageTimedOut
                            } else {
                                RDKafkaErrorCode::MessageSizeTooLarge
                            })
                        });
                        pending.settle(failure);
                    }
                })
            };
            pending.release();
            pending.wait().await;
            assert_eq!(pending.outstanding.load(std::sync::atomic::Ordering::Acquire), 0);
            let tally = std::mem::take(&mut *pending.tally.lock().unwrap());
            assert_eq!(tally.failed, failures as u64);
            match failures {
                0 => assert!(tally.first.is_none()),
                _ => assert!(matches!(
                    tally.first,
                    Some(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut))
                )),
            }
            reporter.join().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_for_a_report_still_missing() {
        let pending = Arc::new(Pending::new());
        pending.outstanding.fetch_add(2, std::sync::atomic::Ordering::AcqRel);
        pending.settle(None);
        pending.release();
        // One report is missing: the wait does not finish on its own.
        let waited = tokio::time::timeout(Duration::from_millis(50), pending.wait()).await;
        assert!(waited.is_err());
        pending.settle(None);
        pending.wait().await;
    }

    #[test]
    fn secrets_are_recognised_and_redacted() {
        for k in
            ["sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret", "sasl.jaas.config", "ssl.key.pem"]
        {
            assert!(is_secret(k), "{k}");
        }
        for k in ["sasl.username", "security.protocol", "compression.type"] {
            assert!(!is_secret(k), "{k}");
        }
        let mut c = KafkaConfig::default();
        c.client.insert("sasl.password".into(), "hunter2".into());
        c.client.insert("sasl.username".into(), "soc".into());
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>") && d.contains("soc"), "{d}");
    }

    #[test]
    fn validation() {
        KafkaConfig::default().validate().unwrap();
        let with = |k: &str, v: &str| {
            let mut c = KafkaConfig::default();
            c.client.insert(k.into(), v.into());
            c.validate()
        };
        for k in RESERVED {
            assert!(matches!(with(k, "x"), Err(BusError::Config(_))), "{k}");
        }
        assert!(with("batch.num.messages", "10000").is_ok());
        assert!(
            matches!(with("batch.num.messages", "20000"), Err(BusError::Config(m)) if m.contains("rewind_on_assign"))
        );
        let mut c = KafkaConfig::new(" a:1 ,, b:2 ", "");
        assert_eq!(c.brokers, vec!["a:1", "b:2"]);
        c.validate().unwrap();
        assert_eq!(topic_name(&c.topic_prefix, Kind::Flow), "flow");
        c.replication = 0;
        assert!(c.validate().is_err());
        c.replication = -1;
        c.validate().unwrap();
    }

    #[test]
    fn librdkafka_rejections_do_not_leak_secrets() {
        let mut c = KafkaConfig::default();
        c.client.insert("socket.timeout.ms".into(), "soon".into());
        match KafkaBus::connect(c) {
            Err(BusError::Config(m)) => assert!(m.contains("socket.timeout.ms"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut c = KafkaConfig::default();
        c.client.insert("x.password".into(), "hunter2".into());
        match KafkaBus::connect(c) {
            Err(BusError::Config(m)) => {
                assert!(m.contains("x.password") && !m.contains("hunter2"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// librdkafka's mock cluster (Kafka semantics, no server): topics, keyed publish, a commit
    /// in the middle of a batch and the next member resuming exactly there through the rewind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_cluster_round_trip_and_resume() {
        let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
        // The mock cluster does not implement CreateTopics: create them as an operator would.
        for k in Kind::ALL {
            mock.create_topic(&topic_name("unit", k), 2, 1).unwrap();
        }
        let mut cfg = KafkaConfig::new(&mock.bootstrap_servers(), "unit");
        cfg.partitions = 2;
        cfg.statistics_interval_ms = 0;
        cfg.session_timeout_ms = 4_000;
        let bus = KafkaBus::connect(cfg).unwrap();
        bus.ensure_topics().await.unwrap();
        bus.ensure_topics().await.unwrap();
        assert_eq!(bus.topic_partitions().await.unwrap().get(&Kind::Flow), Some(&2));
        let recs: Vec<Record> =
            (0..200u32).map(|i| Record::new(format!("k{}", i % 7), i.to_be_bytes().to_vec())).collect();
        bus.publish(Kind::Flow, recs).await.unwrap();

        let mut c = bus.consumer("g", &[Kind::Flow]).await.unwrap();
        let mut first = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while first.len() < 120 {
            assert!(Instant::now() < deadline);
            first.extend(c.poll(120 - first.len(), Duration::from_secs(1)).await.unwrap());
        }
        c.commit(&first).await.unwrap();
        // A late commit of older messages never moves the group back.
        c.commit(&first[..10]).await.unwrap();
        drop(c);

        let mut c = bus.consumer("g", &[Kind::Flow]).await.unwrap();
        let mut rest = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while first.len() + rest.len() < 200 {
            assert!(Instant::now() < deadline, "{} + {}", first.len(), rest.len());
            rest.extend(c.poll(200, Duration::from_millis(500)).await.unwrap());
        }
        assert!(c.poll(200, Duration::from_millis(300)).await.unwrap().is_empty());
        let mut all: Vec<u32> = first
            .iter()
            .chain(rest.iter())
            .map(|m| u32::from_be_bytes(m.payload.as_slice().try_into().unwrap()))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<u32>>(), "every record once");
    }
}
