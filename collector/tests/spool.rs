//! The on-disk spool: records keep flowing in while the bus is down, arrive in order per
//! connection when it is back, survive a restart, and a full spool pushes back on the inputs.

mod common;

use common::{FlakyBus, bus, ctx};
use soc_bus::{Bus, Record};
use soc_collector::Collector;
use soc_collector::config::CollectorConfig;
use soc_collector::spool::{SpoolBus, SpoolOptions};
use soc_model::{Event, Kind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

#[tokio::test]
async fn tcp_lines_sent_while_the_bus_is_down_arrive_in_order_when_it_returns() {
    let (mem, mut c) = bus(1_000_000).await;
    let flaky = FlakyBus::new(mem.clone());
    flaky.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CollectorConfig { state_dir: dir.path().to_path_buf(), ..Default::default() };
    cfg.spool.enabled = true;
    cfg.spool.publish_timeout_ms = 200;
    cfg.batch_size = 200;
    cfg.inputs.syslog_udp.enabled = false;
    cfg.inputs.syslog_tcp.address = "127.0.0.1:0".parse().unwrap();
    let _ = ctx();
    let col = Collector::bind(&cfg).await.unwrap();
    let addr = col.tcp_addr().unwrap();
    let stats = col.tcp_stats().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let b: Arc<dyn Bus> = flaky.clone();
    let task = tokio::spawn(async move { col.run(b, shutdown).await });

    // Two connections, 10,000 lines each, all written while the bus is down.
    const N: usize = 10_000;
    let mut senders = Vec::new();
    for conn in 0..2 {
        senders.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut text = String::new();
            for i in 0..N {
                text.push_str(&format!("<13>Jun 15 10:00:00 host{conn} app: {conn} {i}\n"));
            }
            s.write_all(text.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    // Everything is taken in (spooled) while the bus is still down.
    while stats.snapshot().parsed < 2 * N as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(flaky.refused.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(std::fs::read_dir(dir.path().join("spool")).unwrap().count() > 0);
    flaky.set_down(false);

    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut total = 0;
    while total < 2 * N && tokio::time::Instant::now() < deadline {
        let msgs = c.poll(10_000, Duration::from_millis(100)).await.unwrap();
        for m in &msgs {
            assert_eq!(m.kind, Kind::Log);
            let ev = Event::from_json(&m.payload).unwrap();
            let msg = ev.log.unwrap().message.unwrap();
            let (conn, i) = msg.split_once(' ').unwrap();
            seen.entry(conn.to_string()).or_default().push(i.parse().unwrap());
            total += 1;
        }
        c.commit(&msgs).await.unwrap();
    }
    for (conn, got) in &seen {
        assert_eq!(got.len(), N, "connection {conn}");
        assert!(got.windows(2).all(|w| w[0] + 1 == w[1]), "connection {conn} out of order");
    }
    assert_eq!(seen.len(), 2);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!((s.received, s.parsed, s.dropped), (2 * N as u64, 2 * N as u64, 0));
    assert_eq!(std::fs::read_dir(dir.path().join("spool")).unwrap().count(), 0);
}

fn recs(from: usize, n: usize) -> Vec<Record> {
    (from..from + n).map(|i| Record::new("k", i.to_string().into_bytes())).collect()
}

#[tokio::test]
async fn a_full_spool_pushes_back_and_files_survive_a_restart() {
    let (mem, mut c) = bus(100_000).await;
    let flaky = FlakyBus::new(mem.clone());
    flaky.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let opts =
        SpoolOptions { dir: dir.path().to_path_buf(), max_bytes: 5000, publish_timeout: Duration::from_millis(50) };
    let sp = Arc::new(SpoolBus::open(opts.clone(), flaky.clone()).await.unwrap());
    // About 1.2 KB per call: four fit in 5,000 bytes.
    for k in 0..4 {
        sp.publish(Kind::Log, recs(k * 100, 100)).await.unwrap();
    }
    assert_eq!(sp.counts().await.files, 4);
    // The fifth waits for room while the bus stays down.
    let fifth = tokio::spawn({
        let sp = sp.clone();
        async move { sp.publish(Kind::Log, recs(400, 100)).await }
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!fifth.is_finished(), "a full spool must make the publisher wait");
    // "Restart": a new spool on the same directory finds the files.
    fifth.abort();
    drop(sp);
    let sp = SpoolBus::open(opts, flaky.clone()).await.unwrap();
    assert_eq!(sp.counts().await.files, 4);
    // Back up: the old files go first, then the new call (spooled behind them, not published
    // directly, so the order holds).
    flaky.set_down(false);
    sp.publish(Kind::Log, recs(400, 100)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(sp.drained(Duration::from_secs(30)).await);
    let mut got = Vec::new();
    loop {
        let msgs = c.poll(10_000, Duration::from_millis(50)).await.unwrap();
        if msgs.is_empty() {
            break;
        }
        got.extend(msgs.iter().map(|m| String::from_utf8(m.payload.clone()).unwrap().parse::<usize>().unwrap()));
        c.commit(&msgs).await.unwrap();
    }
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    let counts = sp.counts().await;
    assert_eq!((counts.files, counts.bytes, counts.replayed), (0, 0, 500));
}
