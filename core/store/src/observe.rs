//! A [`Store`] that reports what it stored: [`Observed`] wraps another store, delegates every
//! method to it, and calls a callback with each batch of events whose insert the wrapped
//! store acknowledged. Benchmarks and tests use it to count what reached the store without
//! querying it.

use crate::alerts::{AlertPage, AlertQuery, AlertRecord, AlertState};
use crate::incidents::IncidentQuery;
use crate::search::{SearchQuery, SearchResult};
use crate::summary::{Summary, SummaryQuery};
use crate::{CountBy, EventQuery, RetentionReport, Store, StoreError};
use soc_model::{Event, Incident};
use std::collections::HashMap;
use std::sync::Arc;

type OnStored = Box<dyn Fn(&[Event]) + Send + Sync>;

/// `inner`, with `on_stored` called after every successful [`Store::insert_events`] (with the
/// batch, after the store acknowledged it; never for a failed insert). Everything else is
/// passed through unchanged, the name included.
pub struct Observed<S: Store + ?Sized> {
    inner: Arc<S>,
    on_stored: OnStored,
}

impl<S: Store + ?Sized> Observed<S> {
    pub fn new(inner: Arc<S>, on_stored: impl Fn(&[Event]) + Send + Sync + 'static) -> Self {
        Observed { inner, on_stored: Box::new(on_stored) }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
}

impl<S: Store + ?Sized> std::fmt::Debug for Observed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").field("inner", &self.inner.name()).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> Store for Observed<S> {
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.inner.migrate().await
    }
    async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError> {
        self.inner.insert_events(events).await?;
        (self.on_stored)(events);
        Ok(())
    }
    async fn query_events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        self.inner.query_events(q).await
    }
    async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        self.inner.count_events(q).await
    }
    async fn count_by(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.count_by(by, q).await
    }
    async fn drop_days_before(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError> {
        self.inner.drop_days_before(keep_from_day).await
    }
    async fn upsert_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError> {
        self.inner.upsert_incidents(incidents).await
    }
    async fn get_incident(&self, incident_id: &str) -> Result<Option<Incident>, StoreError> {
        self.inner.get_incident(incident_id).await
    }
    async fn get_incidents(&self, ids: &[String]) -> Result<HashMap<String, Incident>, StoreError> {
        self.inner.get_incidents(ids).await
    }
    async fn query_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        self.inner.query_incidents(q).await
    }
    async fn count_incidents(&self, q: &IncidentQuery) -> Result<u64, StoreError> {
        self.inner.count_incidents(q).await
    }
    async fn insert_forwarding(&self, records: &[Event]) -> Result<(), StoreError> {
        self.inner.insert_forwarding(records).await
    }
    async fn query_forwarding(&self, incident_id: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.inner.query_forwarding(incident_id, limit).await
    }
    async fn search(&self, q: &SearchQuery) -> Result<SearchResult, StoreError> {
        self.inner.search(q).await
    }
    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        self.inner.query_alerts(q).await
    }
    async fn update_alert(&self, id: &str, state: &AlertState) -> Result<Option<AlertRecord>, StoreError> {
        self.inner.update_alert(id, state).await
    }
    async fn summary(&self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        self.inner.summary(q).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use soc_model::{EventType, Timestamp};
    use std::sync::Mutex;

    fn flow(n: i64) -> Event {
        let mut e = Event::new(EventType::Flow, Timestamp::from_unix_micros(1_700_000_000_000_000 + n));
        e.flow_id = Some(n as u64);
        e.ensure_id();
        e
    }

    #[tokio::test]
    async fn acknowledged_batches_reach_the_callback_and_everything_else_passes_through() {
        let inner = Arc::new(SqliteStore::open_in_memory().unwrap());
        let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
        let store = Observed::new(inner.clone(), {
            let seen = seen.clone();
            move |evs: &[Event]| seen.lock().unwrap().push(evs.len())
        });
        assert_eq!(store.name(), "sqlite");
        assert!(!store.migrate().await.unwrap().is_empty(), "migrations ran on the wrapped store");
        store.insert_events(&[flow(1), flow(2)]).await.unwrap();
        // A failed insert is not reported.
        let no_id = Event::new(EventType::Flow, Timestamp::from_unix_micros(1));
        assert!(matches!(store.insert_events(&[flow(3), no_id]).await, Err(StoreError::MissingId)));
        store.insert_events(&[flow(3)]).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![2, 1]);
        assert_eq!(store.count_events(&EventQuery::default()).await.unwrap(), 3);
        assert_eq!(inner.count_events(&EventQuery::default()).await.unwrap(), 3);
        // Methods with a default in the trait reach the wrapped store too.
        let page = store.query_alerts(&AlertQuery::default()).await.unwrap();
        assert_eq!(page.total, 0);
        let inc = Incident { incident_id: "inc-1".into(), version: 1, ..Incident::default() };
        store.upsert_incidents(std::slice::from_ref(&inc)).await.unwrap();
        let got = store.get_incidents(&["inc-1".to_string(), "inc-2".to_string()]).await.unwrap();
        assert_eq!(got.get("inc-1"), Some(&inc));
        assert_eq!(got.len(), 1);
    }
}
