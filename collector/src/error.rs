//! Collector errors.

use soc_bus::BusError;
use soc_model::config::ConfigError;

/// Why a collector input stopped (parse failures are not errors: they become dead letters).
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("{input}: cannot bind {addr}: {source}")]
    Bind { input: &'static str, addr: String, source: std::io::Error },
    #[error("{input}: {source}")]
    Io { input: &'static str, source: std::io::Error },
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{input}: {source}")]
    Tls { input: &'static str, source: crate::tls::TlsError },
    #[error("{input}: task failed: {reason}")]
    Task { input: &'static str, reason: String },
}
