//! The broker goes away while syslog streams in over TCP; nothing is lost.
//!
//! Each test starts its own Tansu broker (the binary in `SOC_TANSU`, which `deploy/test.sh`
//! sets; skipped with a visible line when unset, failing with `SOC_REQUIRE_SERVERS=1`).
//!
//! * `cutting_the_broker_off_mid_stream_loses_nothing_and_keeps_the_order`: the broker is
//!   reached through a TCP proxy owned by the test (the broker advertises the proxy's port, so
//!   every client connection goes through it). 100,000 lines stream in over two connections;
//!   mid-stream the proxy drops every connection and refuses new ones (the broker is
//!   unreachable, as when it is down or the network is cut), the collector spools to disk,
//!   then the proxy lets connections through again: all 100,000 lines arrive, in order per
//!   connection.
//! * `lines_sent_while_the_broker_is_killed_arrive_after_its_restart`: the broker process is
//!   killed (SIGKILL) and restarted on the same port. Tansu's storage here is in memory
//!   (`memory://`): a restart loses every topic and every record it had accepted, which is
//!   why the first test cuts the network instead of killing the process. So this variant
//!   checks what a restart can keep: the lines sent while the broker was down are spooled
//!   and arrive, in order per connection, once the broker is back and the topics exist again
//!   (recreated by the test, as an operator would). The lines the old broker had accepted are
//!   gone with its memory; with persistent storage (Apache Kafka, Tansu on disk) they stay.
//!
//! A publish that timed out may still reach the broker later (the client keeps retrying it)
//! besides being spooled: such records arrive twice (the store deduplicates by id), so the
//! order is checked on first arrivals and duplicates are counted, not forbidden.

mod common;

use soc_bus::Bus;
use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_collector::Collector;
use soc_collector::config::CollectorConfig;
use soc_collector::stats::InputStats;
use soc_model::{Event, Kind};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

fn tansu_binary(test: &str) -> Option<PathBuf> {
    // The collector's and the client library's warnings help to tell why a run failed.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    match std::env::var("SOC_TANSU") {
        Ok(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "{test}: SOC_TANSU={} is not a file", p.display());
            Some(p)
        }
        _ => {
            if std::env::var("SOC_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("{test}: SOC_TANSU is not set but SOC_REQUIRE_SERVERS=1 (deploy/test.sh sets it)");
            }
            eprintln!("SKIPPED {test}: SOC_TANSU (path of the tansu binary) not set (run deploy/test.sh)");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

/// A Tansu broker process owned by the test (killed when dropped).
struct Tansu {
    child: Child,
}

impl Tansu {
    /// Starts Tansu with memory storage on `port`, advertising `advertised` to clients, in an
    /// empty working directory with a scrubbed environment (it reads settings from both).
    async fn start(bin: &Path, dir: &Path, port: u16, advertised: u16) -> Tansu {
        let work = dir.join(format!("tansu-{port}-{}", common::unique("w")));
        std::fs::create_dir_all(&work).unwrap();
        let log = std::fs::File::create(work.join("tansu.log")).unwrap();
        let child = Command::new(bin)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{advertised}")])
            .args(["--storage-engine", "memory://tansu/"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &work)
            .env("RUST_LOG", "warn")
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let t = Tansu { child };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !port_open(port).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tansu did not open port {port} (log in {})",
                work.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        t
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy to 127.0.0.1:`upstream` that can be cut (open connections dropped, new ones
/// closed at once) and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().unwrap().push(task.abort_handle());
                }
            })
            .abort_handle()
        };
        Proxy { port, up, conns, accept }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn kafka_config(port: u16, prefix: &str) -> KafkaConfig {
    let mut c = KafkaConfig::new(&format!("127.0.0.1:{port}"), prefix);
    c.partitions = 2;
    c
}

/// A collector with the spool on, publishing to `bus`; returns its TCP address, counters and
/// the spool directory.
async fn collector(
    bus: Arc<dyn Bus>,
    state: &Path,
    shutdown: watch::Receiver<bool>,
) -> (SocketAddr, Arc<InputStats>, PathBuf, tokio::task::JoinHandle<()>) {
    let mut cfg = CollectorConfig { state_dir: state.to_path_buf(), batch_size: 1_000, ..Default::default() };
    cfg.flush_interval_ms = 50;
    cfg.spool.enabled = true;
    cfg.spool.publish_timeout_ms = 1_000;
    cfg.inputs.syslog_udp.enabled = false;
    cfg.inputs.syslog_tcp.address = common::local();
    cfg.validate("test").unwrap();
    let col = Collector::bind(&cfg).await.unwrap();
    let (addr, stats) = (col.tcp_addr().unwrap(), col.tcp_stats().unwrap());
    let task = tokio::spawn(async move { col.run(bus, shutdown).await.unwrap() });
    (addr, stats, state.join("spool"), task)
}

fn line(conn: usize, i: usize) -> String {
    format!("<13>Jun 15 10:00:00 host{conn} app: {conn} {i}\n")
}

async fn send(s: &mut TcpStream, conn: usize, range: std::ops::Range<usize>) {
    let mut buf = String::new();
    for i in range {
        buf.push_str(&line(conn, i));
        if buf.len() > 64 * 1024 {
            s.write_all(buf.as_bytes()).await.unwrap();
            buf.clear();
        }
    }
    s.write_all(buf.as_bytes()).await.unwrap();
}

async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "spool")).count())
        .unwrap_or(0)
}

/// Per connection, the line numbers in order of first arrival, and the duplicates.
struct Arrivals {
    first: BTreeMap<usize, Vec<usize>>,
    seen: HashSet<(usize, usize)>,
    duplicates: usize,
}

async fn consume(bus: &dyn Bus, want: usize, secs: u64) -> Arrivals {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    // Right after the broker is back, the clients may still be in their reconnect backoff.
    let group = common::unique("check");
    let mut c = loop {
        match bus.subscribe(&group, &[Kind::Log]).await {
            Ok(c) => break c,
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot subscribe: {e}"),
        }
    };
    let mut a = Arrivals { first: BTreeMap::new(), seen: HashSet::new(), duplicates: 0 };
    while a.seen.len() < want && tokio::time::Instant::now() < deadline {
        let msgs = c.poll(10_000, Duration::from_millis(500)).await.unwrap();
        for m in &msgs {
            let ev = Event::from_json(&m.payload).unwrap();
            let msg = ev.log.and_then(|l| l.message).unwrap_or_default();
            let (conn, i) = msg.split_once(' ').unwrap_or_else(|| panic!("unexpected message {msg:?}"));
            let (conn, i): (usize, usize) = (conn.parse().unwrap(), i.parse().unwrap());
            if a.seen.insert((conn, i)) {
                a.first.entry(conn).or_default().push(i);
            } else {
                a.duplicates += 1;
            }
        }
        c.commit(&msgs).await.unwrap();
    }
    a
}

fn assert_in_order(a: &Arrivals, conn: usize, range: std::ops::Range<usize>) {
    let got = a.first.get(&conn).map(Vec::as_slice).unwrap_or_default();
    let want: Vec<usize> = range.collect();
    if got != want.as_slice() {
        let missing = want.iter().filter(|i| !a.seen.contains(&(conn, **i))).count();
        let out_of_order = got.windows(2).filter(|w| w[0] > w[1]).count();
        panic!(
            "connection {conn}: {} first arrivals for {} lines sent, {missing} missing, {out_of_order} out of order",
            got.len(),
            want.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_broker_off_mid_stream_loses_nothing_and_keeps_the_order() {
    let test = "cutting_the_broker_off_mid_stream_loses_nothing_and_keeps_the_order";
    let Some(bin) = tansu_binary(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    // The proxy first: the broker advertises its port.
    let proxy = Proxy::start(broker_port).await;
    let _tansu = Tansu::start(&bin, dir.path(), broker_port, proxy.port).await;
    let prefix = common::unique("cut");
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(kafka_config(proxy.port, &prefix)).unwrap());
    bus.ensure_topics().await.unwrap();

    let (stop, shutdown) = watch::channel(false);
    let (addr, stats, spool, task) = collector(bus.clone(), dir.path(), shutdown).await;
    const CONNS: usize = 2;
    const PER_CONN: usize = 50_000;
    const BEFORE: usize = 20_000;
    let (cut_tx, cut_rx) = watch::channel(false);
    let mut senders = Vec::new();
    for conn in 0..CONNS {
        let mut cut_rx = cut_rx.clone();
        senders.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            send(&mut s, conn, 0..BEFORE).await;
            let _ = cut_rx.wait_for(|c| *c).await;
            send(&mut s, conn, BEFORE..PER_CONN).await;
            s.shutdown().await.unwrap();
        }));
    }
    // Part of the stream goes through, then the broker becomes unreachable mid-stream.
    wait_for("the first lines to be published", 120, || stats.snapshot().parsed >= 15_000).await;
    proxy.cut();
    cut_tx.send(true).unwrap();
    for s in senders {
        s.await.unwrap();
    }
    // Everything is taken in while the broker is unreachable: spooled.
    wait_for("every line to be taken in", 300, || stats.snapshot().parsed == (CONNS * PER_CONN) as u64).await;
    let spooled = spool_files(&spool);
    assert!(spooled > 0, "the collector must have spooled while the broker was cut off");
    proxy.restore();

    let a = consume(&*bus, CONNS * PER_CONN, 300).await;
    for conn in 0..CONNS {
        assert_in_order(&a, conn, 0..PER_CONN);
    }
    eprintln!(
        "{} lines arrived ({} duplicates); {spooled} spool files while cut off; collector {:?}",
        a.seen.len(),
        a.duplicates,
        stats.snapshot()
    );
    wait_for("the spool to drain", 120, || spool_files(&spool) == 0).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let s = stats.snapshot();
    assert_eq!((s.received, s.parsed, s.dropped), ((CONNS * PER_CONN) as u64, (CONNS * PER_CONN) as u64, 0));
}

/// The broker is killed (not cut off) while lines stream in, and restarted on the same port.
/// Tansu's memory storage loses everything it held, so the test recreates the topics as an
/// operator would; what was consumed before the kill is checked before it. Lines sent while
/// it is down are spooled and arrive after the restart. The bus's producer is replaced after
/// its deliveries time out: a kept idempotent producer never got an answer from the restarted
/// broker, which does not know its producer id (every replay ended in `MessageTimedOut`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_sent_while_the_broker_is_killed_arrive_after_its_restart() {
    let test = "lines_sent_while_the_broker_is_killed_arrive_after_its_restart";
    let Some(bin) = tansu_binary(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut tansu = Tansu::start(&bin, dir.path(), port, port).await;
    let prefix = common::unique("kill");
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(kafka_config(port, &prefix)).unwrap());
    bus.ensure_topics().await.unwrap();

    let (stop, shutdown) = watch::channel(false);
    let (addr, stats, spool, task) = collector(bus.clone(), dir.path(), shutdown).await;
    const CONNS: usize = 2;
    const BEFORE: usize = 5_000;
    const DURING: usize = 10_000;
    let mut streams = Vec::new();
    for conn in 0..CONNS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        send(&mut s, conn, 0..BEFORE).await;
        streams.push(s);
    }
    let before = consume(&*bus, CONNS * BEFORE, 120).await;
    for conn in 0..CONNS {
        assert_in_order(&before, conn, 0..BEFORE);
    }

    tansu.kill();
    for (conn, s) in streams.iter_mut().enumerate() {
        send(s, conn, BEFORE..BEFORE + DURING).await;
        s.shutdown().await.unwrap();
    }
    wait_for("every line to be taken in", 300, || stats.snapshot().parsed == (CONNS * (BEFORE + DURING)) as u64).await;
    assert!(spool_files(&spool) > 0, "lines sent while the broker is down must be spooled");

    // Restart on the same port: memory storage, so the topics are recreated (an operator's
    // step) and the lines accepted before the kill are gone.
    let _tansu = Tansu::start(&bin, dir.path(), port, port).await;
    drop(tansu);
    let operator: Arc<dyn Bus> = Arc::new(KafkaBus::connect(kafka_config(port, &prefix)).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Err(e) = operator.ensure_topics().await {
        assert!(tokio::time::Instant::now() < deadline, "cannot recreate the topics: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = consume(&*operator, CONNS * DURING, 300).await;
    for conn in 0..CONNS {
        assert_in_order(&after, conn, BEFORE..BEFORE + DURING);
    }
    eprintln!(
        "{} lines sent while the broker was down arrived after its restart ({} duplicates); collector {:?}",
        after.seen.len(),
        after.duplicates,
        stats.snapshot()
    );
    wait_for("the spool to drain", 120, || spool_files(&spool) == 0).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(stats.snapshot().dropped, 0);
}
