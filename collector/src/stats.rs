//! Per-input counters, kept both as `metrics` counters (labelled `input`) and as atomics the
//! owner of a source can read (tests, status pages).
//!
//! | metric | meaning |
//! | --- | --- |
//! | `soc_collector_received_total{input}` | messages received (frames, datagrams, body items) |
//! | `soc_collector_bytes_total{input}` | bytes received |
//! | `soc_collector_parsed_total{input}` | messages normalized into events |
//! | `soc_collector_dead_letters_total{input}` | messages sent to the dead-letter topic |
//! | `soc_collector_dropped_total{input,reason}` | messages lost (`bus`: publishing failed for good) |
//! | `soc_collector_kernel_dropped_total{input}` | UDP: datagrams the kernel dropped before the collector read them (receive buffer full) |
//! | `soc_collector_batches_total{input}` | batches published |
//! | `soc_collector_connections{input}` | open TCP connections |
//! | `soc_collector_rejected_connections_total{input,reason}` | connections closed before any message (`tls`: failed handshake) |
//! | `soc_collector_lag_bytes{input,path}` | file inputs: bytes written to the file and not yet published |
//!
//! Kernel drops are not part of `received`: those datagrams never reached the collector. The
//! UDP input does not drop anything itself when it falls behind: its receive loop waits for the
//! publisher, the socket buffer fills, and what does not fit is dropped by the kernel and
//! counted here (read from the socket's `drops` counter, see [`crate::source::syslog_udp`]).
//!
//! Every received message ends up parsed, dead-lettered or dropped, with two exceptions that
//! produce fewer events than lines: audit records joined into one event, and W3C directive
//! lines (`#Fields:`), which configure the parser and are not records.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one input.
#[derive(Debug)]
pub struct InputStats {
    input: &'static str,
    received: AtomicU64,
    bytes: AtomicU64,
    parsed: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    kernel_dropped: AtomicU64,
    batches: AtomicU64,
}

/// A snapshot of an input's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputCounts {
    pub received: u64,
    pub bytes: u64,
    pub parsed: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
    /// UDP: datagrams the kernel dropped (receive buffer full); not counted in `received`.
    pub kernel_dropped: u64,
    pub batches: u64,
}

/// Registers the descriptions of the collector's metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!("soc_collector_received_total", "Messages received, per input.");
    metrics::describe_counter!("soc_collector_bytes_total", metrics::Unit::Bytes, "Bytes received, per input.");
    metrics::describe_counter!("soc_collector_parsed_total", "Messages normalized into events, per input.");
    metrics::describe_counter!(
        "soc_collector_dead_letters_total",
        "Messages sent to the dead-letter topic, per input."
    );
    metrics::describe_counter!("soc_collector_dropped_total", "Messages lost, per input and reason.");
    metrics::describe_counter!(
        "soc_collector_kernel_dropped_total",
        "UDP datagrams the kernel dropped before the collector read them (receive buffer full), per input."
    );
    metrics::describe_counter!("soc_collector_batches_total", "Batches published, per input.");
    metrics::describe_gauge!("soc_collector_connections", "Open connections, per input.");
    metrics::describe_counter!(
        "soc_collector_rejected_connections_total",
        "Connections closed before any message, per input and reason."
    );
    metrics::describe_gauge!(
        "soc_collector_lag_bytes",
        metrics::Unit::Bytes,
        "File inputs: bytes in the file not yet published."
    );
}

impl InputStats {
    pub const fn new(input: &'static str) -> Self {
        InputStats {
            input,
            received: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            parsed: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            kernel_dropped: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }

    pub fn input(&self) -> &'static str {
        self.input
    }

    pub fn snapshot(&self) -> InputCounts {
        InputCounts {
            received: self.received.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            parsed: self.parsed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            kernel_dropped: self.kernel_dropped.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("soc_collector_bytes_total", "input" => self.input).increment(n as u64);
    }

    pub(crate) fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("soc_collector_received_total", "input" => self.input).increment(n);
    }

    pub(crate) fn parsed(&self, n: u64) {
        self.parsed.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("soc_collector_parsed_total", "input" => self.input).increment(n);
    }

    pub(crate) fn dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("soc_collector_dead_letters_total", "input" => self.input).increment(n);
    }

    pub(crate) fn dropped(&self, n: u64, reason: &'static str) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("soc_collector_dropped_total", "input" => self.input, "reason" => reason).increment(n);
    }

    /// Adds `n` datagrams the kernel dropped (`n = 0` makes the metric visible at 0).
    pub(crate) fn kernel_dropped(&self, n: u64) {
        self.kernel_dropped.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("soc_collector_kernel_dropped_total", "input" => self.input).increment(n);
    }

    pub(crate) fn batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("soc_collector_batches_total", "input" => self.input).increment(1);
    }

    pub(crate) fn dropped_connection(&self, reason: &'static str) {
        metrics::counter!("soc_collector_rejected_connections_total", "input" => self.input, "reason" => reason)
            .increment(1);
    }

    pub(crate) fn connections(&self, delta: f64) {
        metrics::gauge!("soc_collector_connections", "input" => self.input).increment(delta);
    }
}
