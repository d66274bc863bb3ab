//! Sensor errors.

use std::path::PathBuf;

/// Errors of capture and record output. Packet-level problems are never errors: they are
/// counted and become `anomaly` records.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("cannot open capture {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a pcap or pcapng capture ({reason})")]
    NotACapture { path: PathBuf, reason: String },
    #[error("reading capture {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("live capture on {interface}: {reason}")]
    Live { interface: String, reason: String },
    #[error(
        "live capture on {interface} needs privileges: run as root or grant CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode), e.g. `setcap cap_net_raw,cap_net_admin=eip <binary>` ({source})"
    )]
    LivePermission { interface: String, source: std::io::Error },
    #[error("no such interface {0:?}")]
    NoSuchInterface(String),
    #[error("record sink failed: {0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    #[error("writing records: {0}")]
    Write(#[from] std::io::Error),
}
