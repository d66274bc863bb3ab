//! The correlator: consumes records from the bus, enriches them, runs Sigma rules over logs
//! (normalized by processing pipelines), correlation windows, alert deduplication and incident
//! grouping, stores records and detections, checkpoints its per-partition state and commits its
//! bus offsets only after the store has acknowledged the batch. A crash between the two
//! re-delivers the batch; the store's id-based idempotence and the checkpoint's offsets make
//! that harmless.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod correlation;
pub mod dedup;
pub mod enrich;
pub mod incidents;
pub mod offline;
pub mod pipeline;
pub mod sigma;

pub use pipeline::{CorrelatorOptions, CorrelatorStats, IocOptions, PhaseTimes, run};
pub use sigma::{RuleLoadError, SigmaRules};
