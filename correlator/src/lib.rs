//! The correlator: consumes records from the bus, turns them into stored events (later:
//! Sigma detection, correlation windows, enrichment, incidents), and commits its bus offsets
//! only after the store has acknowledged the batch. A crash between the two re-delivers the
//! batch; the store's id-based idempotence makes that harmless.
#![forbid(unsafe_code)]

pub mod pipeline;

pub use pipeline::{run, CorrelatorOptions, CorrelatorStats};
