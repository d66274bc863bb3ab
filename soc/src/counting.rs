//! A bus decorator that counts what producers published, per kind, for the run summary.

use soc_bus::{Bus, BusError, Consumer, Record};
use soc_model::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct CountingBus {
    inner: Arc<dyn Bus>,
    counts: [AtomicU64; 7],
}

impl CountingBus {
    pub fn new(inner: Arc<dyn Bus>) -> Self {
        CountingBus { inner, counts: Default::default() }
    }
    pub fn published(&self) -> BTreeMap<Kind, u64> {
        Kind::ALL.iter().enumerate().map(|(i, k)| (*k, self.counts[i].load(Ordering::Relaxed))).collect()
    }
}

#[async_trait::async_trait]
impl Bus for CountingBus {
    async fn ensure_topics(&self) -> Result<(), BusError> {
        self.inner.ensure_topics().await
    }
    async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError> {
        let n = records.len() as u64;
        self.inner.publish(kind, records).await?;
        if let Some(i) = Kind::ALL.iter().position(|k| *k == kind) {
            self.counts[i].fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }
    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.subscribe(group, kinds).await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
