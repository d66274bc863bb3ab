//! Benchmark: syslog over TCP into the bus, 1 and 2 connections, lines/s and bytes/s.
//!
//! ```sh
//! cargo run --release -p soc-collector --example bench_syslog_tcp -- [--kafka HOST:PORT] [--lines N]
//! ```
//!
//! Without `--kafka` (or `SOC_TEST_KAFKA`) the records go to the in-process bus, which measures
//! the collector alone (framing, parsing, normalizing, serializing). With it they go to Kafka
//! topics with a unique prefix. Each run sends N 200-byte RFC 3164 lines per connection from
//! client tasks in the same process and stops the clock when the collector has published all
//! of them. Figures depend on the machine and on what else runs on it.

use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_bus::{Bus, MemoryBus};
use soc_collector::SourceContext;
use soc_collector::config::SyslogTcpConfig;
use soc_collector::source::syslog_tcp::SyslogTcpSource;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

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

async fn run(bus: Arc<dyn Bus>, conns: usize, lines: usize) -> anyhow::Result<(f64, f64)> {
    let ctx =
        SourceContext { batch_size: 5_000, flush_interval: Duration::from_millis(50), ..SourceContext::default() };
    let cfg = SyslogTcpConfig { address: "127.0.0.1:0".parse()?, ..SyslogTcpConfig::default() };
    let src = SyslogTcpSource::bind(cfg, ctx).await?;
    let addr = src.local_addr();
    let stats = src.stats();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus, shutdown));
    // The payload is built before the clock starts.
    let payloads: Vec<Vec<u8>> = (0..conns).map(|c| (0..lines).flat_map(|i| line(c, i)).collect()).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let start = Instant::now();
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
    let secs = start.elapsed().as_secs_f64();
    stop.send(true)?;
    task.await??;
    Ok((want as f64 / secs, bytes as f64 / secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let lines: usize = arg("--lines").map(|s| s.parse()).transpose()?.unwrap_or(500_000);
    let kafka = arg("--kafka").or_else(|| std::env::var("SOC_TEST_KAFKA").ok().filter(|s| !s.is_empty()));
    for conns in [1, 2] {
        let bus: Arc<dyn Bus> = match &kafka {
            Some(b) => {
                let prefix = format!("bench{}x{}", std::process::id(), conns);
                Arc::new(KafkaBus::connect(KafkaConfig::new(b, &prefix))?)
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
        let (lps, bps) = run(bus, conns, lines).await?;
        println!(
            "bus={} connections={conns} lines={} lines/s={:.0} MB/s={:.1}",
            if kafka.is_some() { "kafka" } else { "memory" },
            conns * lines,
            lps,
            bps / 1e6
        );
    }
    Ok(())
}
