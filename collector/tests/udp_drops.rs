//! UDP drops are counted: with a tiny socket receive buffer and the bus stalled (so the
//! receive loop stops reading), a flood overflows the socket; the datagrams the kernel dropped
//! are counted (`kernel_dropped`, `soc_collector_kernel_dropped_total`), and every datagram
//! sent is either received (and published once the bus moves) or counted as dropped.

mod common;

use common::{GateBus, bus, ctx, local};
use soc_collector::config::SyslogUdpConfig;
use soc_collector::source::syslog_udp::SyslogUdpSource;
use std::time::Duration;
use tokio::sync::watch;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_a_tiny_receive_buffer_is_received_or_counted_as_kernel_drops() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    const N: u64 = 3_000;
    let (mem, mut c) = bus(1_000_000).await;
    // The bus is stalled: the publisher waits, its queue fills, the receive loop stops reading.
    let gate = GateBus::new(mem, false);
    let cfg = SyslogUdpConfig { address: local(), receive_buffer: 1, ..Default::default() };
    let src = SyslogUdpSource::bind(cfg, soc_collector::SourceContext { batch_size: 10, ..ctx() }).await.unwrap();
    let (addr, stats) = (src.local_addr(), src.stats());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(gate.clone(), shutdown));

    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..N {
        sock.send_to(format!("<13>Jun 15 10:00:00 flood app: datagram {i}").as_bytes(), addr).await.unwrap();
        if i % 100 == 99 {
            // Let loopback delivery keep up, so datagrams are dropped at the socket (counted
            // there) and not in the device backlog.
            tokio::task::yield_now().await;
        }
    }
    // Every datagram is accounted for once the bus moves again.
    gate.open.send_replace(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut s = stats.snapshot();
    while s.received + s.kernel_dropped < N && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s = stats.snapshot();
    }
    assert_eq!(s.received + s.kernel_dropped, N, "{s:?}");
    assert!(s.kernel_dropped > 0, "a flood into a stalled tiny buffer must overflow it: {s:?}");
    assert!(s.received > 0, "{s:?}");
    eprintln!("sent {N}: received {}, kernel dropped {}", s.received, s.kernel_dropped);

    // What was received is published, one event per datagram.
    let (evs, _) = common::collect(&mut c, s.received as usize, 0).await;
    assert_eq!(evs.len() as u64, s.received);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let end = stats.snapshot();
    assert_eq!(
        (end.received, end.parsed, end.dropped, end.kernel_dropped),
        (s.received, s.received, 0, s.kernel_dropped)
    );

    let page = prometheus.render();
    let line = page
        .lines()
        .find(|l| l.starts_with("soc_collector_kernel_dropped_total{") && l.contains("input=\"syslog-udp\""))
        .unwrap_or_else(|| panic!("no kernel drop metric in\n{page}"));
    assert_eq!(line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()), Some(s.kernel_dropped as f64), "{line}");
}
