//! The correlator: consumes records from the bus, runs Sigma rules over logs (later also
//! correlation windows, enrichment, incidents), stores records and detections, and commits its bus offsets
//! only after the store has acknowledged the batch. A crash between the two re-delivers the
//! batch; the store's id-based idempotence makes that harmless.
#![forbid(unsafe_code)]

pub mod correlation;
pub mod enrich;
pub mod incidents;
pub mod offline;
pub mod pipeline;
pub mod sigma;

pub use pipeline::{CorrelatorOptions, CorrelatorStats, IocOptions, run};
pub use sigma::{RuleLoadError, SigmaRules};
