//! Helpers shared by the integration tests: a `MemoryBus` and a reader of what it received.
#![allow(dead_code)]

use soc_bus::{Bus, Consumer, MemoryBus};
use soc_collector::SourceContext;
use soc_model::{DeadLetter, Event, Kind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub fn ctx() -> SourceContext {
    SourceContext {
        sensor: "test-collector".into(),
        segment: Some("lab".into()),
        batch_size: 50,
        flush_interval: Duration::from_millis(20),
        ..SourceContext::default()
    }
}

pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub async fn bus(capacity: usize) -> (Arc<MemoryBus>, Box<dyn Consumer>) {
    let bus = Arc::new(MemoryBus::new("test", capacity));
    bus.ensure_topics().await.unwrap();
    let c = bus.subscribe("check", &[Kind::Log, Kind::DeadLetter]).await.unwrap();
    (bus, c)
}

/// Reads until `logs` events and `dead` dead letters arrived (or 20 s passed).
pub async fn collect(c: &mut Box<dyn Consumer>, logs: usize, dead: usize) -> (Vec<Event>, Vec<DeadLetter>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (mut evs, mut dls) = (Vec::new(), Vec::new());
    while (evs.len() < logs || dls.len() < dead) && tokio::time::Instant::now() < deadline {
        let msgs = c.poll(1000, Duration::from_millis(100)).await.unwrap();
        for m in &msgs {
            match m.kind {
                Kind::Log => {
                    let ev = Event::from_json(&m.payload).unwrap();
                    assert_eq!(String::from_utf8_lossy(&m.key), ev.bus_key());
                    evs.push(ev);
                }
                Kind::DeadLetter => dls.push(serde_json::from_slice(&m.payload).unwrap()),
                k => panic!("unexpected kind {k}"),
            }
        }
        c.commit(&msgs).await.unwrap();
    }
    assert_eq!((evs.len(), dls.len()), (logs, dead), "events {evs:#?} dead letters {dls:#?}");
    (evs, dls)
}

/// A `MemoryBus` that can be switched off: while down, `publish` and `ensure_topics` fail as
/// an unreachable broker does.
pub struct FlakyBus {
    pub inner: Arc<MemoryBus>,
    pub down: std::sync::atomic::AtomicBool,
    pub refused: std::sync::atomic::AtomicU64,
}

impl FlakyBus {
    pub fn new(inner: Arc<MemoryBus>) -> Arc<Self> {
        Arc::new(FlakyBus { inner, down: Default::default(), refused: Default::default() })
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
    fn check(&self) -> Result<(), soc_bus::BusError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(soc_bus::BusError::Unavailable { addr: "test".into(), reason: "switched off".into() });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Bus for FlakyBus {
    async fn ensure_topics(&self) -> Result<(), soc_bus::BusError> {
        self.check()?;
        self.inner.ensure_topics().await
    }
    async fn publish(&self, kind: Kind, records: Vec<soc_bus::Record>) -> Result<(), soc_bus::BusError> {
        self.check()?;
        self.inner.publish(kind, records).await
    }
    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, soc_bus::BusError> {
        self.inner.subscribe(group, kinds).await
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

/// A `MemoryBus` whose `publish` waits while the gate is closed (a slow broker).
pub struct GateBus {
    pub inner: Arc<MemoryBus>,
    pub open: tokio::sync::watch::Sender<bool>,
    pub waiting: std::sync::atomic::AtomicU64,
}

impl GateBus {
    pub fn new(inner: Arc<MemoryBus>, open: bool) -> Arc<Self> {
        Arc::new(GateBus { inner, open: tokio::sync::watch::channel(open).0, waiting: Default::default() })
    }
}

#[async_trait::async_trait]
impl Bus for GateBus {
    async fn ensure_topics(&self) -> Result<(), soc_bus::BusError> {
        self.inner.ensure_topics().await
    }
    async fn publish(&self, kind: Kind, records: Vec<soc_bus::Record>) -> Result<(), soc_bus::BusError> {
        let mut rx = self.open.subscribe();
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = rx.wait_for(|o| *o).await;
        self.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.publish(kind, records).await
    }
    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, soc_bus::BusError> {
        self.inner.subscribe(group, kinds).await
    }
    fn name(&self) -> &'static str {
        "gate"
    }
}

/// The Kafka bootstrap address from `SOC_TEST_KAFKA`, or `None` with a visible SKIPPED line;
/// with `SOC_REQUIRE_SERVERS=1` (set by `deploy/test.sh`) a missing broker fails the test.
pub fn kafka(test: &str) -> Option<String> {
    match std::env::var("SOC_TEST_KAFKA") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("SOC_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!(
                    "{test}: SOC_TEST_KAFKA is not set but SOC_REQUIRE_SERVERS=1: the test command must start the broker"
                );
            }
            eprintln!("SKIPPED {test}: SOC_TEST_KAFKA not set (run deploy/test.sh to start the real servers)");
            None
        }
    }
}

/// A name unique to this process and call (topic prefixes, consumer groups).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), t % 1_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}
