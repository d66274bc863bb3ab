//! Benchmark: syslog over TCP into the bus, 1 and 2 connections, lines/s and bytes/s.
//!
//! ```sh
//! cargo run --release -p soc-collector --example bench_syslog_tcp -- [--kafka HOST:PORT] [--lines N] [--batch N] [--stages | --stages-only] [--raw | --raw-only] [--broker-pid PID] [--set KEY=VALUE]...
//! (add `--features mimalloc` to measure the binary built with that allocator)
//! ```
//!
//! `--batch N` sets the collector's `batch_size` (messages per published batch, 5000 here),
//! and the records per publish of `--raw`.
//!
//! Each run also prints the CPU time per line of this process (all its threads: collector,
//! librdkafka) and, with `--broker-pid PID`, of the broker process: on a busy machine the
//! rates fall with the CPU share this process gets, the CPU time per line much less.
//!
//! `--set KEY=VALUE` (repeatable) passes a librdkafka producer property (`linger.ms`,
//! `compression.type`, `batch.size`, ...) to compare producer settings.
//!
//! `--stages` first prints the cost per line of each step on one core (framing and parsing,
//! encoding: id and JSON, the previous Value-tree encoding next to the current one, dropping
//! the events), the profile of where a line's time goes, in CPU time of the thread (so that
//! other processes on a busy machine do not inflate it); `--stages-only` prints just that. `--raw` (with Kafka) adds
//! the peer figure of the broker and client alone: the same records, already encoded,
//! published in batches by 1 and 2 tasks; `--raw-only` prints just that.
//!
//! Without `--kafka` (or `SOC_TEST_KAFKA`) the records go to the in-process bus, which measures
//! the collector alone (framing, parsing, normalizing, serializing). With it they go to Kafka
//! topics with a unique prefix. Each run sends N 200-byte RFC 3164 lines per connection from
//! client tasks in the same process and stops the clock when the collector has published all
//! of them. Figures depend on the machine and on what else runs on it.

use soc_bus::Record;
use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_bus::{Bus, MemoryBus};
use soc_collector::SourceContext;
use soc_collector::config::SyslogTcpConfig;
use soc_collector::parse::{Decoder, Format, ParseContext};
use soc_collector::sink::{Batch, encode, stamp};
use soc_collector::source::framing::{Frame, FrameDecoder};
use soc_collector::source::syslog_tcp::SyslogTcpSource;
use soc_model::Kind;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// `--features mimalloc`: the allocator of the `soc` binary built with `--features mimalloc`
/// (see its `main.rs`); without it the system allocator, as in the default binary.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One 200-byte line (with its `\n`).
fn line(conn: usize, i: usize) -> Vec<u8> {
    let head = format!(
        "<38>Jun 14 08:01:02 web{conn:02} sshd[4123]: Failed password for root from 203.0.113.7 port {i:08} ssh2 "
    );
    let mut l = head.into_bytes();
    l.resize(199, b'x');
    l.push(b'\n');
    l
}

async fn run(
    bus: Arc<dyn Bus>,
    conns: usize,
    lines: usize,
    batch: usize,
    broker: Option<u32>,
) -> anyhow::Result<Measure> {
    let ctx =
        SourceContext { batch_size: batch, flush_interval: Duration::from_millis(50), ..SourceContext::default() };
    let cfg = SyslogTcpConfig { address: "127.0.0.1:0".parse()?, ..SyslogTcpConfig::default() };
    let src = SyslogTcpSource::bind(cfg, ctx).await?;
    let addr = src.local_addr();
    let stats = src.stats();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus, shutdown));
    // The payload is built before the clock starts.
    let payloads: Vec<Vec<u8>> = (0..conns).map(|c| (0..lines).flat_map(|i| line(c, i)).collect()).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let cpu = CpuMeter::start(broker);
    let mut senders = Vec::new();
    for p in payloads {
        senders.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            for chunk in p.chunks(256 * 1024) {
                s.write_all(chunk).await?;
            }
            s.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let want = (conns * lines) as u64;
    while stats.snapshot().parsed < want {
        if stats.snapshot().dropped > 0 {
            anyhow::bail!("records dropped: {:?}", stats.snapshot());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let m = cpu.finish(want as usize, bytes);
    stop.send(true)?;
    task.await??;
    Ok(m)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of a process so far (all its threads, finished ones included),
/// from `/proc/<pid>/stat`; `None` where that is not readable.
fn process_cpu(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / USER_HZ)
}

/// One run's figures: rates, and the CPU time per line of this process and of the broker
/// (`--broker-pid`), which a busy machine inflates far less than it deflates the rates.
struct Measure {
    lines_per_sec: f64,
    bytes_per_sec: f64,
    cpu_us_per_line: Option<f64>,
    broker_us_per_line: Option<f64>,
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lines/s={:.0} MB/s={:.1}", self.lines_per_sec, self.bytes_per_sec / 1e6)?;
        if let Some(c) = self.cpu_us_per_line {
            write!(f, " cpu_us/line={c:.2}")?;
        }
        if let Some(b) = self.broker_us_per_line {
            write!(f, " broker_cpu_us/line={b:.2}")?;
        }
        Ok(())
    }
}

struct CpuMeter {
    start: Instant,
    own: Option<f64>,
    broker_pid: Option<u32>,
    broker: Option<f64>,
}

impl CpuMeter {
    fn start(broker_pid: Option<u32>) -> Self {
        CpuMeter {
            start: Instant::now(),
            own: process_cpu(None),
            broker_pid,
            broker: broker_pid.and_then(|p| process_cpu(Some(p))),
        }
    }

    fn finish(self, lines: usize, bytes: usize) -> Measure {
        let secs = self.start.elapsed().as_secs_f64();
        let per_line = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(a), Some(b)) if lines > 0 => Some((b - a) * 1e6 / lines as f64),
            _ => None,
        };
        Measure {
            lines_per_sec: lines as f64 / secs,
            bytes_per_sec: bytes as f64 / secs,
            cpu_us_per_line: per_line(self.own, process_cpu(None)),
            broker_us_per_line: per_line(self.broker, self.broker_pid.and_then(|p| process_cpu(Some(p)))),
        }
    }
}

/// CPU time of this thread (Linux: `/proc/thread-self/schedstat`), so that the stages do not
/// count the time other processes of a busy machine took; wall time elsewhere.
#[derive(Clone, Copy)]
struct Clock(Option<u64>, Instant);

impl Clock {
    fn now() -> Self {
        let cpu = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()));
        Clock(cpu, Instant::now())
    }
    fn elapsed(&self) -> Duration {
        match (self.0, Clock::now().0) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            _ => self.1.elapsed(),
        }
    }
}

/// The cost per line of each step, on one core, in batches of 5,000 lines (memory is reused
/// as in the collector, instead of growing to hold every line), and of the collector's own
/// path, where each line is parsed, stamped, encoded into the batch and dropped before the
/// next one (a batch of 5,000 decoded events, as the steps hold them, leaves the caches).
fn stages(lines: usize) {
    let data: Vec<u8> = (0..lines).flat_map(|i| line(0, i)).collect();
    let fused = {
        let mut frames = FrameDecoder::new(102_400);
        let mut decoder = Decoder::new(Format::Auto);
        let ctx = SourceContext { sensor: "bench".into(), ..SourceContext::default() };
        let mut batch = Batch::default();
        let mut spent = Duration::ZERO;
        for chunk in data.chunks(5_000 * 200) {
            frames.push(chunk);
            let t = Clock::now();
            while let Some(Frame::Message(m)) = frames.next_frame() {
                ctx.accept_decoded(&mut batch, &mut decoder, &m, "syslog-tcp", Some("127.0.0.1"), "bench");
            }
            spent += t.elapsed();
            assert_eq!(batch.events(), chunk.len() / 200);
            batch.clear();
        }
        spent
    };
    let mut frames = FrameDecoder::new(102_400);
    let mut decoder = Decoder::new(Format::Auto);
    let zero = Duration::ZERO;
    let (mut framing, mut parsing, mut separate, mut one_pass, mut dropping) = (zero, zero, zero, zero, zero);
    let mut via_tree = zero;
    let (mut old_len, mut new_len) = (0, 0);
    let mut sample = Vec::new();
    for chunk in data.chunks(5_000 * 200) {
        let t = Clock::now();
        frames.push(chunk);
        let mut msgs = Vec::with_capacity(5_000);
        while let Some(Frame::Message(m)) = frames.next_frame() {
            msgs.push(m);
        }
        framing += t.elapsed();
        let t = Clock::now();
        let mut events = Vec::with_capacity(msgs.len());
        for m in &msgs {
            let ctx = ParseContext::new("syslog-tcp", Some("127.0.0.1"));
            events.extend(decoder.push(m, &ctx).into_iter().filter_map(Result::ok));
        }
        parsing += t.elapsed();
        let mut copies = events.clone();
        let t = Clock::now();
        let old: Vec<Record> = copies
            .iter_mut()
            .map(|ev| {
                stamp(ev, "bench", None);
                Record::from_event(ev)
            })
            .collect();
        separate += t.elapsed();
        let t = Clock::now();
        let tree: Vec<Record> = events.iter().map(encode_via_tree).collect();
        via_tree += t.elapsed();
        let t = Clock::now();
        let new: Vec<Record> = events.iter().map(|ev| encode(ev).1).collect();
        one_pass += t.elapsed();
        if tree != new {
            eprintln!("the Value-tree encoding differs from encode()");
        }
        let t = Clock::now();
        drop(events);
        dropping += t.elapsed();
        old_len = old.first().map(|r| r.payload.len()).unwrap_or(0);
        new_len = new.first().map(|r| r.payload.len()).unwrap_or(0);
        if let Some(r) = new.first() {
            sample.clone_from(&r.payload);
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / lines as f64;
    println!(
        "size of an event: {} bytes (its log payload {})",
        std::mem::size_of::<soc_model::Event>(),
        std::mem::size_of::<soc_model::Log>()
    );
    println!(
        "{}\nstages (CPU time of one thread, {lines} lines): the collector's path (framing, parsing, id + JSON, dropping, line by line) {:.2} us/line; as separate steps: framing {:.2} us/line, parsing {:.2}, id + JSON as two passes (compute_id, to_json) {:.2}, id + JSON through a Value tree (the previous encode) {:.2}, id + JSON in one pass (encode) {:.2}, dropping the events {:.2}; payload {old_len} -> {new_len} bytes",
        String::from_utf8_lossy(&sample),
        per(fused),
        per(framing),
        per(parsing),
        per(separate),
        per(via_tree),
        per(one_pass),
        per(dropping),
    );
}

/// The previous `encode`, for comparison: the event as a `serde_json::Value` tree without
/// `id`, written out, hashed, the id appended.
fn encode_via_tree(ev: &soc_model::Event) -> Record {
    let mut tree = match serde_json::to_value(ev) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return encode(ev).1,
    };
    tree.remove("id");
    let mut payload = serde_json::to_vec(&tree).unwrap_or_default();
    let id = match &ev.id {
        Some(id) => id.clone(),
        None => format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&payload)),
    };
    payload.pop();
    if payload.len() > 1 {
        payload.push(b',');
    }
    payload.extend_from_slice(b"\"id\":");
    payload.extend_from_slice(&serde_json::to_vec(&id).unwrap_or_default());
    payload.push(b'}');
    Record::new(ev.bus_key(), payload)
}

/// The broker and client alone: pre-encoded records published in batches by `tasks` tasks.
async fn raw(
    cfg: &KafkaConfig,
    tasks: usize,
    lines: usize,
    batch: usize,
    broker: Option<u32>,
) -> anyhow::Result<Measure> {
    let prefix = format!("benchraw{}x{}", std::process::id(), tasks);
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(KafkaConfig { topic_prefix: prefix, ..cfg.clone() })?);
    bus.ensure_topics().await?;
    let mut decoder = Decoder::new(Format::Auto);
    let records: Vec<Record> = (0..lines)
        .flat_map(|i| {
            let ctx = ParseContext::new("syslog-tcp", Some("127.0.0.1"));
            decoder.push(&line(0, i), &ctx).into_iter().filter_map(Result::ok).map(|ev| encode(&ev).1)
        })
        .collect();
    let bytes: usize = records.iter().map(|r| r.payload.len()).sum::<usize>() * tasks;
    let cpu = CpuMeter::start(broker);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (bus, records) = (bus.clone(), records.clone());
        set.spawn(async move {
            for chunk in records.chunks(batch.max(1)) {
                bus.publish(Kind::Log, chunk.to_vec()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(cpu.finish(tasks * lines, bytes))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let lines: usize = arg("--lines").map(|s| s.parse()).transpose()?.unwrap_or(500_000);
    let batch: usize = arg("--batch").map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let broker_pid: Option<u32> = arg("--broker-pid").map(|s| s.parse()).transpose()?;
    let kafka = arg("--kafka").or_else(|| std::env::var("SOC_TEST_KAFKA").ok().filter(|s| !s.is_empty()));
    let mut client = std::collections::BTreeMap::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--set" {
            let kv = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--set needs KEY=VALUE"))?;
            let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--set {kv}: expected KEY=VALUE"))?;
            client.insert(k.to_string(), v.to_string());
        }
    }
    let kafka_cfg =
        |brokers: &str, prefix: &str| KafkaConfig { client: client.clone(), ..KafkaConfig::new(brokers, prefix) };
    if !client.is_empty() {
        println!("producer properties: {client:?}");
    }
    if args.iter().any(|a| a == "--stages" || a == "--stages-only") {
        stages(lines.min(200_000));
        if args.iter().any(|a| a == "--stages-only") {
            return Ok(());
        }
    }
    let raw_only = args.iter().any(|a| a == "--raw-only");
    if let (Some(b), true) = (&kafka, raw_only || args.iter().any(|a| a == "--raw")) {
        for tasks in [1, 2] {
            let m = raw(&kafka_cfg(b, "raw"), tasks, lines, batch, broker_pid).await?;
            println!(
                "raw producer (pre-encoded records, batches of {batch}): tasks={tasks} records={} {m}",
                tasks * lines,
            );
        }
        if raw_only {
            return Ok(());
        }
    }
    for conns in [1, 2] {
        let bus: Arc<dyn Bus> = match &kafka {
            Some(b) => {
                let prefix = format!("bench{}x{}", std::process::id(), conns);
                Arc::new(KafkaBus::connect(kafka_cfg(b, &prefix))?)
            }
            None => Arc::new(MemoryBus::new("bench", usize::MAX / 2)),
        };
        bus.ensure_topics().await?;
        if kafka.is_none() {
            // Keep the in-process bus from holding every record: a consumer drains it.
            let mut c = bus.subscribe("drain", &[soc_model::Kind::Log]).await?;
            tokio::spawn(async move {
                while let Ok(m) = c.poll(100_000, Duration::from_millis(100)).await {
                    let _ = c.commit(&m).await;
                }
            });
        }
        let m = run(bus, conns, lines, batch, broker_pid).await?;
        println!(
            "bus={} connections={conns} lines={} {m}",
            if kafka.is_some() { "kafka" } else { "memory" },
            conns * lines,
        );
    }
    Ok(())
}
