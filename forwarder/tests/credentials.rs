//! Credentials (HTTP Basic password) never appear in logs, forwarding records or Debug
//! output, whatever the outcome of a send. Its own test binary: the log capture is the
//! process-wide subscriber, so no other test's threads can hide events from it.

mod common;

use common::{Medallion, RO, RW, USER};
use soc_forwarder::outbox::Backoff;
use soc_forwarder::taxii::{Credentials, Secret};
use soc_forwarder::{Forwarder, ForwarderOptions};
use soc_model::Level;
use soc_store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn options(m: &Medallion, collection: &str, password: &str, outbox: &Path) -> ForwarderOptions {
    let mut o = ForwarderOptions::new(m.objects_url(collection), outbox);
    o.client.credentials = Some(Credentials { username: USER.into(), password: Secret::new(password) });
    o.backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(500) };
    o.status_wait = Duration::from_secs(5);
    o.policy.min_severity = Level::Informational;
    o
}

/// A log sink for the credentials test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_never_appear_in_logs_records_or_debug_output() {
    let Some(m) = Medallion::start("credentials_never_appear") else { return };
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = soc_store::sqlite::SqliteStore::open(dir.path().join("soc.sqlite")).unwrap();
    s.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(s);
    let wrong = format!("{}-wrong", m.password);
    let mut debug = String::new();
    let mut outcomes = BTreeMap::new();
    for (n, (collection, password)) in
        [(RW, m.password.clone()), (RW, wrong.clone()), (RO, m.password.clone())].into_iter().enumerate()
    {
        let fwd = Forwarder::new(
            options(&m, collection, &password, &dir.path().join(format!("o{n}.sqlite"))),
            Some(store.clone()),
        )
        .unwrap();
        let inc = common::rich_incident(200 + n * 10);
        fwd.accept(&inc).await.unwrap();
        let st = fwd.send_due(10).await.unwrap();
        outcomes.insert(n, st);
        debug.push_str(&format!("{fwd:?} {:?}", fwd.outbox().all().unwrap()));
    }
    assert_eq!(outcomes[&0].confirmed, 1);
    assert_eq!(outcomes[&1].rejected, 1);
    assert_eq!(outcomes[&2].rejected, 1);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("confirmed by the NCSC") && text.contains("HTTP 401"), "logs were not captured:\n{text}");
    let recs = serde_json::to_string(&store.query_forwarding(None, 1000).await.unwrap()).unwrap();
    assert!(recs.contains("rejected"));
    for secret in [m.password.as_str(), wrong.as_str()] {
        assert!(!text.contains(secret), "a password is in the logs");
        assert!(!recs.contains(secret), "a password is in the forwarding records");
        assert!(!debug.contains(secret), "a password is in Debug output");
    }
}
