//! The network sources end to end: real sockets on 127.0.0.1, records read back from a
//! `MemoryBus`.

use soc_bus::{Bus, Consumer, MemoryBus};
use soc_collector::config::{CollectorConfig, SyslogTcpConfig, SyslogUdpConfig};
use soc_collector::source::syslog_tcp::SyslogTcpSource;
use soc_collector::source::syslog_udp::SyslogUdpSource;
use soc_collector::{Collector, SourceContext};
use soc_model::{DeadLetter, Event, Kind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

fn ctx() -> SourceContext {
    SourceContext {
        sensor: "test-collector".into(),
        segment: Some("lab".into()),
        batch_size: 50,
        flush_interval: Duration::from_millis(20),
        ..SourceContext::default()
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn bus(capacity: usize) -> (Arc<MemoryBus>, Box<dyn Consumer>) {
    let bus = Arc::new(MemoryBus::new("test", capacity));
    bus.ensure_topics().await.unwrap();
    let c = bus.subscribe("check", &[Kind::Log, Kind::DeadLetter]).await.unwrap();
    (bus, c)
}

/// Reads until `logs` events and `dead` dead letters arrived (or 20 s passed).
async fn collect(c: &mut Box<dyn Consumer>, logs: usize, dead: usize) -> (Vec<Event>, Vec<DeadLetter>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (mut evs, mut dls) = (Vec::new(), Vec::new());
    while (evs.len() < logs || dls.len() < dead) && tokio::time::Instant::now() < deadline {
        let msgs = c.poll(1000, Duration::from_millis(100)).await.unwrap();
        for m in &msgs {
            match m.kind {
                Kind::Log => {
                    let ev = Event::from_json(&m.payload).unwrap();
                    assert_eq!(String::from_utf8_lossy(&m.key), ev.bus_key());
                    evs.push(ev);
                }
                Kind::DeadLetter => dls.push(serde_json::from_slice(&m.payload).unwrap()),
                k => panic!("unexpected kind {k}"),
            }
        }
        c.commit(&msgs).await.unwrap();
    }
    assert_eq!((evs.len(), dls.len()), (logs, dead), "events {evs:#?} dead letters {dls:#?}");
    (evs, dls)
}

fn message(ev: &Event) -> &str {
    ev.log.as_ref().and_then(|l| l.message.as_deref()).unwrap_or("")
}

#[tokio::test]
async fn udp_datagrams_become_events_and_dead_letters() {
    let (bus, mut c) = bus(10_000).await;
    let cfg = SyslogUdpConfig { address: local(), max_line: 300, ..SyslogUdpConfig::default() };
    let src = SyslogUdpSource::bind(cfg, ctx()).await.unwrap();
    let addr = src.local_addr();
    assert!(src.receive_buffer() > 0);
    let stats = src.stats();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));

    let sock = UdpSocket::bind(local()).await.unwrap();
    let lines: [&[u8]; 5] = [
        b"<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 52113 ssh2\n",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event",
        b"<999>not a priority",
        b"",
        &[b'x'; 400],
    ];
    for l in lines {
        sock.send_to(l, addr).await.unwrap();
    }
    let (evs, dls) = collect(&mut c, 2, 2).await;
    let ssh = evs.iter().find(|e| e.host.as_deref() == Some("web01")).unwrap();
    let log = ssh.log.as_ref().unwrap();
    assert_eq!(log.input.as_deref(), Some("syslog-udp"));
    assert_eq!(log.logsource.service.as_deref(), Some("sshd"));
    assert_eq!(log.extra["peer"], "127.0.0.1");
    assert_eq!(ssh.sensor.as_deref(), Some("test-collector"));
    assert_eq!(ssh.segment.as_deref(), Some("lab"));
    assert_eq!(ssh.id.as_deref(), Some(ssh.compute_id().as_str()));
    let rfc5424 = evs.iter().find(|e| e.host.as_deref() == Some("mymachine.example.com")).unwrap();
    assert_eq!(rfc5424.log.as_ref().unwrap().fields["structured_data"]["exampleSDID@32473"]["iut"], "3");
    let pri = dls.iter().find(|d| d.reason.contains("PRI")).unwrap();
    assert!(pri.source.starts_with("syslog-udp 127.0.0.1:"), "{}", pri.source);
    assert_eq!(pri.raw, "<999>not a priority");
    let long = dls.iter().find(|d| d.reason.contains("max_line")).unwrap();
    assert_eq!(long.raw.len(), 300);

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!((s.received, s.parsed, s.dead_lettered, s.dropped), (4, 2, 2, 0), "{s:?}");
    assert!(s.bytes > 400);
}

#[tokio::test]
async fn tcp_newline_framing_in_order_with_dead_letters() {
    let (bus, mut c) = bus(10_000).await;
    let cfg = SyslogTcpConfig { address: local(), max_line: 256, ..SyslogTcpConfig::default() };
    let src = SyslogTcpSource::bind(cfg, ctx()).await.unwrap();
    let addr = src.local_addr();
    let stats = src.stats();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));

    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut body = Vec::new();
    for i in 0..300 {
        body.extend_from_slice(format!("<134>Jun 15 10:00:00 host-{} app[{i}]: message {i}\r\n", i % 3).as_bytes());
        if i == 100 {
            body.extend_from_slice(b"\n<999>broken\n");
            body.extend_from_slice(&[b'y'; 1000]);
            body.push(b'\n');
        }
    }
    body.extend_from_slice(b"<134>Jun 15 10:00:00 h last: no newline at the end");
    // Written in odd-sized pieces, so frames straddle reads.
    for chunk in body.chunks(777) {
        s.write_all(chunk).await.unwrap();
    }
    s.shutdown().await.unwrap();
    drop(s);

    let (evs, dls) = collect(&mut c, 301, 2).await;
    let msgs: Vec<&str> = evs.iter().map(message).collect();
    let mut want: Vec<String> = (0..300).map(|i| format!("message {i}")).collect();
    want.push("no newline at the end".into());
    assert_eq!(msgs, want, "records are published in order per connection");
    assert_eq!(evs[7].log.as_ref().unwrap().pid, Some(7));
    assert_eq!(evs[7].host.as_deref(), Some("host-1"));
    assert_eq!(evs[0].log.as_ref().unwrap().input.as_deref(), Some("syslog-tcp"));
    assert!(dls[0].reason.contains("PRI"), "{}", dls[0].reason);
    assert!(dls[1].reason.contains("max_line"), "{}", dls[1].reason);
    assert_eq!(dls[1].raw.len(), 256);
    assert!(dls[1].source.starts_with("syslog-tcp 127.0.0.1:"));

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let st = stats.snapshot();
    assert_eq!((st.received, st.parsed, st.dead_lettered, st.dropped), (303, 301, 2, 0), "{st:?}");
    assert!(st.batches >= 301 / 50);
}

#[tokio::test]
async fn tcp_octet_counting_keeps_embedded_newlines() {
    let (bus, mut c) = bus(10_000).await;
    let src =
        SyslogTcpSource::bind(SyslogTcpConfig { address: local(), ..SyslogTcpConfig::default() }, ctx()).await.unwrap();
    let addr = src.local_addr();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));

    let msgs = [
        "<165>1 2024-06-15T10:00:00Z app01 java 77 - - Exception in thread \"main\"\n\tat Main.main(Main.java:1)",
        "<165>1 2024-06-15T10:00:01Z app01 java 77 - - second",
        "<13>Jun 15 10:00:02 app01 x: third",
    ];
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut body = Vec::new();
    for m in msgs {
        body.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    for b in body.chunks(5) {
        s.write_all(b).await.unwrap();
    }
    s.flush().await.unwrap();
    let (evs, _) = collect(&mut c, 3, 0).await;
    assert_eq!(message(&evs[0]), "Exception in thread \"main\"\n\tat Main.main(Main.java:1)");
    assert_eq!(message(&evs[1]), "second");
    assert_eq!(message(&evs[2]), "third");
    assert_eq!(evs[0].log.as_ref().unwrap().format.as_deref(), Some("rfc5424"));
    assert_eq!(evs[0].log.as_ref().unwrap().pid, Some(77));

    // The connection is still open: shutdown closes it and returns.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn tcp_shutdown_publishes_what_arrived_and_json_lines_are_accepted() {
    let (bus, mut c) = bus(10_000).await;
    let ctx = SourceContext { flush_interval: Duration::from_secs(30), ..ctx() };
    let src =
        SyslogTcpSource::bind(SyslogTcpConfig { address: local(), ..SyslogTcpConfig::default() }, ctx).await.unwrap();
    let addr = src.local_addr();
    let stats = src.stats();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"<13>Jun 15 10:00:02 h a: one\n").await.unwrap();
    // An NXLog-style JSON line with a Windows event.
    s.write_all(br#"{"EventID":4625,"Channel":"Security","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"DC01","TargetUserName":"bob","@timestamp":"2024-06-15T10:00:00Z"}"#).await.unwrap();
    s.write_all(b"\n<13>Jun 15 10:00:02 h a: partial without newline").await.unwrap();
    s.flush().await.unwrap();
    // Wait until the bytes are read (the flush interval is long: nothing is published yet).
    let t0 = tokio::time::Instant::now();
    while stats.snapshot().received < 2 && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    let (evs, dls) = collect(&mut c, 2, 1).await;
    assert_eq!(message(&evs[0]), "one");
    let win = evs[1].log.as_ref().unwrap();
    assert_eq!(win.format.as_deref(), Some("windows"));
    assert_eq!(win.fields["TargetUserName"], "bob");
    assert_eq!(evs[1].host.as_deref(), Some("DC01"));
    assert!(dls[0].reason.contains("shut down"), "{}", dls[0].reason);
    assert_eq!(dls[0].raw, "<13>Jun 15 10:00:02 h a: partial without newline");
    drop(s);
}

#[tokio::test]
async fn slow_bus_slows_the_sender_without_losing_records() {
    // A bus holding 20 unconsumed records: publishing waits for the consumer.
    let (bus, mut c) = bus(20).await;
    let ctx = SourceContext { batch_size: 10, ..ctx() };
    let src =
        SyslogTcpSource::bind(SyslogTcpConfig { address: local(), ..SyslogTcpConfig::default() }, ctx).await.unwrap();
    let addr = src.local_addr();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));
    let sender = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        for i in 0..500 {
            s.write_all(format!("<13>Jun 15 10:00:02 h a: n{i}\n").as_bytes()).await.unwrap();
        }
        s.shutdown().await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bus.depth()[&Kind::Log] <= 20);
    let (evs, _) = collect(&mut c, 500, 0).await;
    sender.await.unwrap();
    let want: Vec<String> = (0..500).map(|i| format!("n{i}")).collect();
    assert_eq!(evs.iter().map(message).collect::<Vec<_>>(), want);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn collector_runs_both_inputs_from_a_config() {
    let (bus, mut c) = bus(10_000).await;
    let mut cfg = CollectorConfig::from_toml(
        "test.toml",
        "name = \"col-9\"\nsegment = \"cpnet\"\nflush_interval_ms = 20\n[inputs.syslog_udp]\naddress = \"127.0.0.1:0\"\n[inputs.syslog_tcp]\naddress = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    cfg.batch_size = 10;
    let collector = Collector::bind(&cfg).await.unwrap();
    let (udp, tcp) = (collector.udp_addr().unwrap(), collector.tcp_addr().unwrap());
    let (stop, shutdown) = watch::channel(false);
    let bus_dyn: Arc<dyn Bus> = bus.clone();
    let task = tokio::spawn(collector.run(bus_dyn, shutdown));
    UdpSocket::bind(local()).await.unwrap().send_to(b"<13>Jun 15 10:00:02 u a: via udp", udp).await.unwrap();
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.write_all(b"<13>Jun 15 10:00:02 t a: via tcp\n").await.unwrap();
    let (evs, _) = collect(&mut c, 2, 0).await;
    let mut inputs: Vec<&str> = evs.iter().map(|e| e.log.as_ref().unwrap().input.as_deref().unwrap()).collect();
    inputs.sort();
    assert_eq!(inputs, ["syslog-tcp", "syslog-udp"]);
    assert!(evs.iter().all(|e| e.sensor.as_deref() == Some("col-9") && e.segment.as_deref() == Some("cpnet")));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn binding_a_taken_address_is_an_error() {
    let first =
        SyslogTcpSource::bind(SyslogTcpConfig { address: local(), ..SyslogTcpConfig::default() }, ctx()).await.unwrap();
    let taken = SyslogTcpConfig { address: first.local_addr(), ..SyslogTcpConfig::default() };
    let e = SyslogTcpSource::bind(taken, ctx()).await.err().unwrap();
    assert!(e.to_string().contains("cannot bind"), "{e}");
}
