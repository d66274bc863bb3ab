//! Collector configuration (TOML).
//!
//! The annotated example with every key and its default is `collector.example.toml` in
//! the crate directory.
//!
//! Every key has a default; unknown keys are errors (with line and column).

use crate::parse::Format;
use crate::sink::SourceContext;
use serde::{Deserialize, Serialize};
use soc_model::config::{ConfigError, from_toml_str, load_toml};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The syslog address of the all-in-one mode (UDP and TCP).
pub const DEFAULT_SYSLOG_ADDR: &str = "127.0.0.1:5514";

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5514))
}
fn default_name() -> String {
    "collector".into()
}
fn default_batch() -> usize {
    DEFAULT_BATCH
}

/// Messages per published batch by default. A publish waits for the broker's
/// acknowledgement and a connection has at most three batches (about 750 bytes per 200-byte
/// line once encoded) in hand, so small batches bound a fast connection's rate by round trips:
/// into Kafka on the same machine 500 gave 72k lines/s on one connection, 5,000 gave 200k+
/// (`bench_syslog_tcp --batch`). A batch is also sent when `flush_interval_ms` passes.
pub const DEFAULT_BATCH: usize = 5_000;
fn default_flush() -> u64 {
    200
}
fn default_bus_retry() -> u64 {
    300
}
fn yes() -> bool {
    true
}
fn default_udp_max_line() -> usize {
    65_535
}
fn default_tcp_max_line() -> usize {
    102_400
}
fn default_receive_buffer() -> usize {
    8 * 1024 * 1024
}
fn default_max_connections() -> usize {
    1024
}
fn default_grace() -> u64 {
    10
}

/// The collector's configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub segment: Option<String>,
    /// Messages per published batch (see [`DEFAULT_BATCH`]).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_flush")]
    pub flush_interval_ms: u64,
    /// `+07:00`, `-0500`, `UTC`: the zone of timestamps written without one.
    #[serde(default)]
    pub local_utc_offset: Option<String>,
    #[serde(default = "default_bus_retry")]
    pub bus_retry_secs: u64,
    /// Where file inputs keep their positions (one small file per followed file).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub inputs: InputsConfig,
}

fn default_spool_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_publish_timeout() -> u64 {
    5_000
}

/// The on-disk spool used while the bus is unreachable (see [`crate::spool`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Default: `spool` under `state_dir`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Most bytes spooled; when full, inputs wait (backpressure).
    #[serde(default = "default_spool_bytes")]
    pub max_bytes: u64,
    /// How long a publish may take before its records are spooled instead.
    #[serde(default = "default_publish_timeout")]
    pub publish_timeout_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            enabled: false,
            dir: None,
            max_bytes: default_spool_bytes(),
            publish_timeout_ms: default_publish_timeout(),
        }
    }
}

/// The network inputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    #[serde(default)]
    pub syslog_udp: SyslogUdpConfig,
    #[serde(default)]
    pub syslog_tcp: SyslogTcpConfig,
    #[serde(default)]
    pub syslog_tls: SyslogTlsConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Followed files (`[[inputs.file]]`, any number).
    #[serde(default)]
    pub file: Vec<FileConfig>,
}

fn default_tls_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6514))
}

/// Syslog over TLS (RFC 5425; octet counting or newline framing inside the TLS stream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_tls_addr")]
    pub address: SocketAddr,
    /// Server certificate chain (PEM).
    #[serde(default)]
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key: PathBuf,
    /// CA bundle (PEM): when set, clients must present a certificate it signed.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default = "default_tcp_max_line")]
    pub max_line: usize,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    #[serde(default)]
    pub format: Format,
}

impl Default for SyslogTlsConfig {
    fn default() -> Self {
        SyslogTlsConfig {
            enabled: false,
            address: default_tls_addr(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: None,
            max_line: default_tcp_max_line(),
            max_connections: default_max_connections(),
            shutdown_grace_secs: default_grace(),
            format: Format::Auto,
        }
    }
}

impl SyslogTlsConfig {
    /// The TCP settings of the listener.
    pub fn tcp(&self) -> SyslogTcpConfig {
        SyslogTcpConfig {
            enabled: self.enabled,
            address: self.address,
            max_line: self.max_line,
            max_connections: self.max_connections,
            shutdown_grace_secs: self.shutdown_grace_secs,
            format: self.format,
        }
    }

    /// Loads the certificates and key.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, crate::tls::TlsError> {
        crate::tls::acceptor(&self.cert, &self.key, self.client_ca.as_deref())
    }
}

fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9200))
}
fn default_max_body() -> usize {
    crate::http::DEFAULT_MAX_BODY
}
fn default_max_inflight() -> usize {
    crate::http::DEFAULT_MAX_INFLIGHT
}

/// The HTTP input (see [`crate::http`]): `POST /api/ingest` and the Elasticsearch-compatible
/// `_bulk` endpoint. Off by default (`soc run` serves the same routes on its API port).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default)]
    pub enabled: bool,
    /// 9200 by default: where Beats look for Elasticsearch.
    #[serde(default = "default_http_addr")]
    pub address: SocketAddr,
    /// Largest body, after decompression.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// Requests parsed and published at once; more are answered `429`.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: false,
            address: default_http_addr(),
            max_body: default_max_body(),
            max_inflight: default_max_inflight(),
        }
    }
}

/// Where a file without a saved position is read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only what is written from now on (like `tail -F`).
    #[default]
    End,
    /// The whole file (back-fill).
    Beginning,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("collector-state")
}
fn default_poll() -> u64 {
    250
}

/// A followed log file (see [`crate::source::file`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub path: PathBuf,
    /// Format of the lines (see [`SyslogUdpConfig::format`]).
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub start_at: StartAt,
    /// Stop at the end of the file instead of following it (one-shot back-fill).
    #[serde(default)]
    pub stop_at_eof: bool,
    /// How often the end of the file is looked at again.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Longest line; a longer one is dead-lettered with its first `max_line` bytes.
    #[serde(default = "default_tcp_max_line")]
    pub max_line: usize,
    /// The position file (default: derived from the path, under `state_dir`).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

impl FileConfig {
    /// A file input with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileConfig {
            path: path.into(),
            format: Format::Auto,
            start_at: StartAt::End,
            stop_at_eof: false,
            poll_interval_ms: default_poll(),
            max_line: default_tcp_max_line(),
            state_file: None,
        }
    }
}

/// Syslog over UDP (RFC 5426: one message per datagram).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogUdpConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_addr")]
    pub address: SocketAddr,
    /// Largest message accepted; a larger datagram is dead-lettered with its first bytes.
    #[serde(default = "default_udp_max_line")]
    pub max_line: usize,
    /// Socket receive buffer asked of the kernel (SO_RCVBUF; Linux caps it at
    /// `net.core.rmem_max`): what absorbs bursts while a batch is being published.
    #[serde(default = "default_receive_buffer")]
    pub receive_buffer: usize,
    /// Format of the messages: `auto` (sniffed per message), `syslog`, `json`, `auditd`,
    /// `apache`, `nginx`, `iis`.
    #[serde(default)]
    pub format: Format,
}

impl Default for SyslogUdpConfig {
    fn default() -> Self {
        SyslogUdpConfig {
            enabled: true,
            address: default_addr(),
            max_line: default_udp_max_line(),
            receive_buffer: default_receive_buffer(),
            format: Format::Auto,
        }
    }
}

/// Syslog over TCP (RFC 6587: octet counting or newline framing, detected per connection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTcpConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_addr")]
    pub address: SocketAddr,
    /// Largest frame accepted; a larger one is dead-lettered with its first `max_line` bytes.
    #[serde(default = "default_tcp_max_line")]
    pub max_line: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long open connections get to finish their batches on shutdown.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Format of the messages (see [`SyslogUdpConfig::format`]); audit records are joined
    /// into events per connection.
    #[serde(default)]
    pub format: Format,
}

impl Default for SyslogTcpConfig {
    fn default() -> Self {
        SyslogTcpConfig {
            enabled: true,
            address: default_addr(),
            max_line: default_tcp_max_line(),
            max_connections: default_max_connections(),
            shutdown_grace_secs: default_grace(),
            format: Format::Auto,
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            name: default_name(),
            segment: None,
            batch_size: default_batch(),
            flush_interval_ms: default_flush(),
            local_utc_offset: None,
            bus_retry_secs: default_bus_retry(),
            state_dir: default_state_dir(),
            spool: SpoolConfig::default(),
            inputs: InputsConfig::default(),
        }
    }
}

impl CollectorConfig {
    /// Parses and validates TOML text; `path` names it in errors.
    pub fn from_toml(path: &str, text: &str) -> Result<Self, ConfigError> {
        let cfg: CollectorConfig = from_toml_str(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks what the types cannot: ranges, the offset's syntax.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |message: String| Err(ConfigError::Semantic { path: path.to_string(), message });
        if self.name.trim().is_empty() {
            return bad("name: must not be empty".into());
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return bad(format!("batch_size: {} is out of range (1..=100000)", self.batch_size));
        }
        if !(1..=60_000).contains(&self.flush_interval_ms) {
            return bad(format!("flush_interval_ms: {} is out of range (1..=60000)", self.flush_interval_ms));
        }
        if let Some(o) = &self.local_utc_offset
            && crate::parse::parse_utc_offset(o).is_none()
        {
            return bad(format!("local_utc_offset: {o:?} is not a UTC offset (\"+07:00\", \"-0500\", \"UTC\")"));
        }
        let udp = &self.inputs.syslog_udp;
        if !(256..=65_535).contains(&udp.max_line) {
            return bad(format!("inputs.syslog_udp.max_line: {} is out of range (256..=65535)", udp.max_line));
        }
        let tcp = &self.inputs.syslog_tcp;
        if !(256..=64 * 1024 * 1024).contains(&tcp.max_line) {
            return bad(format!("inputs.syslog_tcp.max_line: {} is out of range (256..=67108864)", tcp.max_line));
        }
        if tcp.max_connections == 0 {
            return bad("inputs.syslog_tcp.max_connections: must be at least 1".into());
        }
        if self.spool.max_bytes < 1024 * 1024 {
            return bad(format!("spool.max_bytes: {} is below 1048576", self.spool.max_bytes));
        }
        if !(1..=600_000).contains(&self.spool.publish_timeout_ms) {
            return bad(format!(
                "spool.publish_timeout_ms: {} is out of range (1..=600000)",
                self.spool.publish_timeout_ms
            ));
        }
        let tls = &self.inputs.syslog_tls;
        if tls.enabled {
            if tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty() {
                return bad("inputs.syslog_tls: cert and key are required when enabled".into());
            }
            if !(256..=64 * 1024 * 1024).contains(&tls.max_line) {
                return bad(format!("inputs.syslog_tls.max_line: {} is out of range (256..=67108864)", tls.max_line));
            }
            if tls.max_connections == 0 {
                return bad("inputs.syslog_tls.max_connections: must be at least 1".into());
            }
            if let Err(e) = tls.acceptor() {
                return bad(format!("inputs.syslog_tls: {e}"));
            }
        }
        let http = &self.inputs.http;
        if !(1024..=1024 * 1024 * 1024).contains(&http.max_body) {
            return bad(format!("inputs.http.max_body: {} is out of range (1024..=1073741824)", http.max_body));
        }
        if http.max_inflight == 0 {
            return bad("inputs.http.max_inflight: must be at least 1".into());
        }
        let mut states = std::collections::BTreeSet::new();
        for (n, f) in self.inputs.file.iter().enumerate() {
            if f.path.as_os_str().is_empty() {
                return bad(format!("inputs.file[{n}].path: must not be empty"));
            }
            if !(256..=64 * 1024 * 1024).contains(&f.max_line) {
                return bad(format!("inputs.file[{n}].max_line: {} is out of range (256..=67108864)", f.max_line));
            }
            if !(1..=60_000).contains(&f.poll_interval_ms) {
                return bad(format!(
                    "inputs.file[{n}].poll_interval_ms: {} is out of range (1..=60000)",
                    f.poll_interval_ms
                ));
            }
            if !states.insert(self.file_state(f)) {
                return bad(format!("inputs.file[{n}]: {} is followed twice (same state file)", f.path.display()));
            }
        }
        Ok(())
    }

    /// The spool settings, when enabled.
    pub fn spool_options(&self) -> Option<crate::spool::SpoolOptions> {
        self.spool.enabled.then(|| crate::spool::SpoolOptions {
            dir: self.spool.dir.clone().unwrap_or_else(|| self.state_dir.join("spool")),
            max_bytes: self.spool.max_bytes,
            publish_timeout: Duration::from_millis(self.spool.publish_timeout_ms),
        })
    }

    /// The state file of a file input.
    pub fn file_state(&self, f: &FileConfig) -> PathBuf {
        f.state_file.clone().unwrap_or_else(|| crate::source::file::state_file_for(&self.state_dir, &f.path))
    }

    /// What the sources need from this configuration.
    pub fn source_context(&self) -> SourceContext {
        SourceContext {
            sensor: self.name.clone(),
            segment: self.segment.clone(),
            batch_size: self.batch_size.max(1),
            flush_interval: Duration::from_millis(self.flush_interval_ms.max(1)),
            local_offset_secs: self.local_utc_offset.as_deref().and_then(crate::parse::parse_utc_offset).unwrap_or(0),
            bus_retry: Duration::from_secs(self.bus_retry_secs),
        }
    }
}

/// Loads and validates a configuration file: `path:line:column: message` on errors.
pub fn check_config(path: &Path) -> Result<CollectorConfig, ConfigError> {
    let cfg: CollectorConfig = load_toml(path)?;
    cfg.validate(&path.display().to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_all_in_one_setup() {
        let cfg = CollectorConfig::from_toml("c.toml", "").unwrap();
        assert_eq!(cfg, CollectorConfig::default());
        assert_eq!(cfg.inputs.syslog_udp.address.to_string(), DEFAULT_SYSLOG_ADDR);
        assert_eq!(cfg.inputs.syslog_tcp.address.to_string(), DEFAULT_SYSLOG_ADDR);
        assert!(cfg.inputs.syslog_udp.enabled && cfg.inputs.syslog_tcp.enabled);
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let cfg =
            CollectorConfig::from_toml("collector.example.toml", include_str!("../collector.example.toml")).unwrap();
        assert_eq!(cfg, CollectorConfig::default());
    }

    #[test]
    fn full_file() {
        let text = r#"
name = "col-hq"
segment = "ministry"
batch_size = 100
flush_interval_ms = 50
local_utc_offset = "+07:00"

[inputs.syslog_udp]
address = "0.0.0.0:514"
receive_buffer = 1048576

[inputs.syslog_tcp]
enabled = false
address = "[::1]:6514"
max_line = 4096
"#;
        let cfg = CollectorConfig::from_toml("c.toml", text).unwrap();
        assert_eq!(cfg.inputs.syslog_udp.address.port(), 514);
        assert!(!cfg.inputs.syslog_tcp.enabled);
        assert_eq!(cfg.inputs.syslog_tcp.max_line, 4096);
        let ctx = cfg.source_context();
        assert_eq!(ctx.local_offset_secs, 25200);
        assert_eq!(ctx.sensor, "col-hq");
        assert_eq!(ctx.segment.as_deref(), Some("ministry"));
        assert_eq!(ctx.flush_interval, Duration::from_millis(50));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = CollectorConfig::from_toml("c.toml", "name = \"x\"\n[inputs.syslog_tcp]\nmax_lines = 5\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3:"), "{e}");
        assert!(e.to_string().contains("max_lines"), "{e}");
        let e = CollectorConfig::from_toml("c.toml", "[inputs.syslog_udp]\naddress = \"nowhere\"\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:2:"), "{e}");
        let e = CollectorConfig::from_toml("c.toml", "local_utc_offset = \"+7h\"\n").unwrap_err();
        assert!(e.to_string().contains("local_utc_offset"), "{e}");
        let e = CollectorConfig::from_toml("c.toml", "batch_size = 0\n").unwrap_err();
        assert!(e.to_string().contains("batch_size"), "{e}");
    }

    #[test]
    fn check_config_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("collector.toml");
        std::fs::write(&p, "name = \"c1\"\n").unwrap();
        assert_eq!(check_config(&p).unwrap().name, "c1");
        std::fs::write(&p, "name = \"c1\"\nbogus = 1\n").unwrap();
        let e = check_config(&p).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("bogus"), "{e}");
        assert!(check_config(&dir.path().join("missing.toml")).is_err());
    }
}
