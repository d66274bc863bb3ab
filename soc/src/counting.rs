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
    fn count(&self, kind: Kind, n: usize) {
        if let Some(i) = Kind::ALL.iter().position(|k| *k == kind) {
            self.counts[i].fetch_add(n as u64, Ordering::Relaxed);
        }
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
        let n = records.len();
        self.inner.publish(kind, records).await?;
        self.count(kind, n);
        Ok(())
    }
    async fn publish_ref(&self, kind: Kind, records: &[Record]) -> Result<(), BusError> {
        self.inner.publish_ref(kind, records).await?;
        self.count(kind, records.len());
        Ok(())
    }
    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.subscribe(group, kinds).await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
