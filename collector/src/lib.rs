//! The Canh Gác collector: receives logs, normalizes them into [`soc_model::Event`] records
//! (`event_type = "log"`, payload [`soc_model::Log`]) and publishes them on the bus.
//!
//! The shape follows Vector's: **sources -> parse/normalize -> sink**.
//!
//! * [`source`]: network inputs ([`source::syslog_udp`], [`source::syslog_tcp`]); each one
//!   binds, reads, frames, hands every message to the parsers and publishes in batches.
//! * [`parse`]: pure functions from bytes or JSON to events ([`parse::syslog`] for RFC 3164
//!   and RFC 5424, [`parse::windows`] for Windows events in the evtx, Winlogbeat and NXLog
//!   shapes, [`parse::json`] for generic JSON). They never panic on any input; what they cannot
//!   read is a [`parse::ParseError`] that becomes a [`soc_model::DeadLetter`] with the reason.
//! * [`sink`]: stamps events (collector name, segment, id), batches them and publishes events
//!   and dead letters with retries (awaiting the bus is the backpressure).
//! * [`ingest`]: [`ingest::parse_http_body`] for `POST /api/ingest`; [`http`]: the HTTP input's
//!   routes (`/api/ingest`, the Elasticsearch-compatible `_bulk`).
//! * [`source::file`]: files followed through rotation, with their position remembered.
//! * [`config`]: [`CollectorConfig`] and [`check_config`].
//!
//! ```no_run
//! # async fn demo(bus: std::sync::Arc<dyn soc_bus::Bus>) -> Result<(), soc_collector::CollectorError> {
//! let cfg = soc_collector::check_config(std::path::Path::new("collector.toml"))?;
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! soc_collector::run(cfg, bus, shutdown).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod http;
pub mod ingest;
pub mod parse;
pub mod sink;
pub mod source;
pub mod spool;
pub mod stats;
pub mod tls;

pub use config::{
    CollectorConfig, FileConfig, HttpConfig, InputsConfig, SyslogTcpConfig, SyslogUdpConfig, check_config,
};
pub use error::CollectorError;
pub use ingest::{IngestOutcome, parse_http_body, publish_outcome};
pub use sink::SourceContext;
pub use source::{Collector, run};
pub use stats::{InputCounts, InputStats};
