//! Live capture on the loopback interface. Needs CAP_NET_RAW: without it the capture must fail
//! with the permission error that names the capabilities (and the test checks that instead).

use soc_sensor::{LiveOptions, SensorError, SensorOptions, run_live};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn unknown_interface_is_a_clear_error() {
    let stop = AtomicBool::new(false);
    let r =
        run_live(&LiveOptions::new("no-such-if0"), SensorOptions::default(), &stop, |_| Ok::<(), std::io::Error>(()));
    assert!(matches!(r, Err(SensorError::NoSuchInterface(_))), "{r:?}");
}

#[test]
fn loopback_capture_sees_dns_or_reports_missing_privileges() {
    if !soc_sensor::capture::live::list_interfaces().iter().any(|i| i == "lo") {
        eprintln!("SKIPPED loopback_capture: no `lo` interface");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (s2, e2) = (stop.clone(), events.clone());
    let handle = std::thread::spawn(move || {
        let mut live = LiveOptions::new("lo");
        live.read_timeout = Duration::from_millis(50);
        live.batch_interval = Duration::from_millis(100);
        run_live(&live, SensorOptions { sensor_name: "live-test".into(), ..Default::default() }, &s2, |mut b| {
            e2.lock().unwrap().append(&mut b);
            Ok::<(), std::io::Error>(())
        })
    });
    // Give the capture a moment to open, then send a few DNS queries to a local port.
    std::thread::sleep(Duration::from_millis(300));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let q = soc_sensor::synth::dns_query(0x4242, "live.example.org", 1);
    for _ in 0..5 {
        let _ = sock.send_to(&q, "127.0.0.1:53535");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    match handle.join().unwrap() {
        Ok(stats) => {
            let ev = events.lock().unwrap();
            let dns = ev
                .iter()
                .filter(|e| e.event_type.as_str() == "dns" && e.dns.as_ref().is_some_and(|d| d.id == Some(0x4242)))
                .count();
            eprintln!("live: {} packets, {} records, {dns} of our dns queries", stats.packets, ev.len());
            assert!((1..=5).contains(&dns), "{dns} dns records for 5 queries on loopback");
            assert!(ev.iter().any(|e| e.event_type.as_str() == "flow"), "flows are flushed on stop");
        }
        Err(SensorError::LivePermission { .. }) => {
            let msg = format!(
                "{}",
                SensorError::LivePermission { interface: "lo".into(), source: std::io::Error::from_raw_os_error(1) }
            );
            assert!(msg.contains("CAP_NET_RAW") && msg.contains("CAP_NET_ADMIN"));
            eprintln!("SKIPPED loopback capture: not privileged ({msg})");
        }
        Err(e) => panic!("live capture failed: {e}"),
    }
}
