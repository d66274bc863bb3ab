//! The ClickHouse store against a real server (`SOC_TEST_CLICKHOUSE`, e.g.
//! `http://127.0.0.1:8123`; `deploy/clickhouse.sh start` runs one): the same conformance
//! suite as SQLite, migrations, and the errors callers rely on. Every test works in its own
//! database (`soc_tests::unique`) and drops it at the end, also when the test fails.

use soc_store::{ClickHouseStore, EventQuery, Store, StoreError};
use std::future::Future;

const TEST: &str = "clickhouse_store";

async fn connect(url: &str, db: &str) -> ClickHouseStore {
    match ClickHouseStore::connect(url, db, "default", "").await {
        Ok(s) => s,
        Err(e) => panic!("connect to {url} (database {db}): {e}"),
    }
}

/// Runs `body` with a store in a fresh database, then drops the database whatever happened.
async fn with_fresh_db<F, Fut>(url: &str, prefix: &str, body: F)
where
    F: FnOnce(ClickHouseStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = soc_tests::unique(prefix);
    let store = connect(url, &db).await;
    eprintln!("{TEST}: server {} , database {db}", store.server_version().text);
    // In a task so that a panic comes back as an error and the database is still dropped.
    let outcome = tokio::spawn(body(store.clone())).await;
    if let Err(e) = store.drop_database().await {
        eprintln!("{TEST}: could not drop database {db}: {e}");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("{TEST}: test task failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_clickhouse() {
    let Some(url) = soc_tests::server("SOC_TEST_CLICKHOUSE", TEST) else {
        return;
    };
    with_fresh_db(&url, "soc_conf", |store| async move {
        soc_store::conformance::run_all(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_across_connections() {
    let Some(url) = soc_tests::server("SOC_TEST_CLICKHOUSE", TEST) else {
        return;
    };
    let url2 = url.clone();
    with_fresh_db(&url, "soc_migr", |store| async move {
        let all: Vec<u32> = soc_store::migrations::CLICKHOUSE.iter().map(|m| m.version).collect();
        assert_eq!(store.migrate().await.expect("first migrate"), all, "a fresh database gets every migration");
        assert_eq!(store.migrate().await.expect("second migrate"), Vec::<u32>::new(), "second run applies nothing");
        // A second process (a new connection) sees the recorded versions too.
        let other = connect(&url2, store.database()).await;
        assert_eq!(other.migrate().await.expect("migrate from another connection"), Vec::<u32>::new());
        assert_eq!(other.count_events(&EventQuery::default()).await.expect("count"), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_errors_are_query_errors_not_outages() {
    let Some(url) = soc_tests::server("SOC_TEST_CLICKHOUSE", TEST) else {
        return;
    };
    with_fresh_db(&url, "soc_err", |store| async move {
        store.ping().await.expect("ping");
        // No `events` table before migrating: the server rejects the statement.
        match store.count_events(&EventQuery::default()).await {
            Err(StoreError::Query(msg)) => assert!(msg.contains("events"), "{msg}"),
            other => panic!("want a Query error for a missing table, got {other:?}"),
        }
        // Hostile filter values are bound (escaped), not spliced into the SQL.
        store.migrate().await.expect("migrate");
        let q = EventQuery { sensor: Some("x' OR 1=1 --".into()), ip: Some("?".into()), ..Default::default() };
        assert_eq!(store.count_events(&q).await.expect("escaped values"), 0);
    })
    .await;
}

/// Needs no server: nothing listens on port 1.
#[tokio::test]
async fn unreachable_server_at_start_up_is_unavailable_and_names_the_address() {
    let addr = "http://127.0.0.1:1";
    let err = ClickHouseStore::connect(addr, "soc", "default", "").await.expect_err("nothing listens on port 1");
    match &err {
        StoreError::Unavailable { addr: a, reason } => {
            assert_eq!(a, addr);
            assert!(!reason.is_empty());
        }
        other => panic!("want Unavailable, got {other:?}"),
    }
    assert!(err.is_transient());
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(msg.contains("deploy/clickhouse.sh start"), "{msg}");
}

#[tokio::test]
async fn bad_database_names_are_refused_before_connecting() {
    let err = ClickHouseStore::connect("http://127.0.0.1:1", "x`; DROP", "default", "").await.expect_err("bad name");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}
