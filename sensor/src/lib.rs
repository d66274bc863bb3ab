//! Canh Gác network sensor.
//!
//! Captures packets (pcap/pcapng files, plain or zstd-compressed, or a live interface),
//! decodes them without copying, tracks bidirectional flows, detects and parses application
//! protocols, and writes records in Suricata's EVE JSON shape as [`soc_model::Event`]s:
//! `flow`, `dns` (EVE DNS v3), `http`, `tls` (with JA3/JA3S/JA4) and `anomaly`.
//!
//! Layout, one module per concern:
//! - [`decode`]: link layers, IPv4/IPv6, TCP/UDP/ICMP; typed [`decode::DecodeError`]s.
//! - [`defrag`]: bounded IPv4/IPv6 fragment reassembly.
//! - [`flow`]: flow keys, the flow table, timeouts, TCP state.
//! - [`app`]: content-based protocol detection, the in-order stream, DNS/HTTP/TLS parsers.
//! - [`sensor`]: [`Sensor`], which ties them together and builds EVE records.
//! - [`capture`]: offline files ([`run_offline`]) and live interfaces ([`capture::live::run_live`]).
//! - [`workers`]: frames hashed by flow to worker threads, one [`Sensor`] each.
//! - [`reload`]: a new rule set taken up by running sensors between packets.
//! - [`eve`]: EVE line writer. [`stats`]: counters and `metrics` export. [`synth`]: packet builder.
//!
//! ```no_run
//! use soc_sensor::{run_offline, SensorOptions, eve::EveWriter};
//! let mut w = EveWriter::create("eve.json")?;
//! let summary = run_offline("capture.pcap.zst", SensorOptions::default(), |batch| w.write_all(&batch))?;
//! w.flush()?;
//! println!("{} packets, {} records", summary.capture.packets, summary.records);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod alerts;
pub mod app;
pub mod capture;
pub mod decode;
pub mod defrag;
pub mod detect;
pub mod error;
pub mod eve;
pub mod flow;
pub mod options;
pub mod reload;
pub mod sensor;
pub mod stats;
pub mod synth;
pub mod tag;
pub mod workers;

pub use capture::live::{LiveOptions, run_live, run_live_with};
pub use capture::offline::{OfflineSummary, process_file, run_offline};
pub use error::SensorError;
pub use eve::{EveWriter, write_eve};
pub use options::SensorOptions;
pub use sensor::Sensor;
pub use stats::SensorStats;
