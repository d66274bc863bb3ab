//! Shared helpers for the integration tests in this folder.
//!
//! Tests that need a real server read its address from the environment:
//! `SOC_TEST_KAFKA` (bootstrap servers, e.g. `127.0.0.1:9092`) and `SOC_TEST_CLICKHOUSE`
//! (HTTP URL, e.g. `http://127.0.0.1:8123`). `deploy/test.sh` starts the servers, sets these
//! and `SOC_REQUIRE_SERVERS=1`; then a missing server fails the test instead of skipping it.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The address of a server from `var`, or `None` (with a visible SKIPPED line) when it is
/// not configured and servers are not required.
///
/// # Panics
/// When `SOC_REQUIRE_SERVERS=1` and `var` is unset: the test command promised a server.
pub fn server(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("SOC_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{test}: {var} is not set but SOC_REQUIRE_SERVERS=1: the test command must start the server");
            }
            eprintln!("SKIPPED {test}: {var} not set (run deploy/test.sh to start the real servers)");
            None
        }
    }
}

/// `../shared/corpora` next to the repository, when present.
pub fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.is_dir().then_some(p)
}

/// A name unique to this process and call, for topics, groups and databases.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), t % 1_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}
