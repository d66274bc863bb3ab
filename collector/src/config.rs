//! Collector configuration (TOML).
//!
//! The annotated example with every key and its default is `collector.example.toml` in
//! the crate directory.
//!
//! Every key has a default; unknown keys are errors (with line and column).

use crate::sink::SourceContext;
use serde::{Deserialize, Serialize};
use soc_model::config::{ConfigError, from_toml_str, load_toml};
use std::net::SocketAddr;
use std::path::Path;
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
    500
}
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
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_flush")]
    pub flush_interval_ms: u64,
    /// `+07:00`, `-0500`, `UTC`: the zone of timestamps written without one.
    #[serde(default)]
    pub local_utc_offset: Option<String>,
    #[serde(default = "default_bus_retry")]
    pub bus_retry_secs: u64,
    #[serde(default)]
    pub inputs: InputsConfig,
}

/// The network inputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    #[serde(default)]
    pub syslog_udp: SyslogUdpConfig,
    #[serde(default)]
    pub syslog_tcp: SyslogTcpConfig,
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
}

impl Default for SyslogUdpConfig {
    fn default() -> Self {
        SyslogUdpConfig {
            enabled: true,
            address: default_addr(),
            max_line: default_udp_max_line(),
            receive_buffer: default_receive_buffer(),
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
}

impl Default for SyslogTcpConfig {
    fn default() -> Self {
        SyslogTcpConfig {
            enabled: true,
            address: default_addr(),
            max_line: default_tcp_max_line(),
            max_connections: default_max_connections(),
            shutdown_grace_secs: default_grace(),
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
        Ok(())
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
