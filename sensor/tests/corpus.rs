//! Every shared capture (Zeek's test traces, the raw OTRF captures, some of them damaged) runs
//! through the sensor without a panic; a few get content checks. Skips (visibly) without the
//! corpora.

use soc_sensor::{SensorError, SensorOptions, process_file};
use std::path::{Path, PathBuf};

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/pcaps");
    p.exists().then_some(p)
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if [".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcap.zst"].iter().any(|s| name.ends_with(s)) {
                out.push(p);
            }
        }
    }
}

#[test]
fn every_shared_capture_runs_without_panic() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED every_shared_capture_runs_without_panic: ../shared/corpora not found");
        return;
    };
    let mut files = Vec::new();
    captures(&root.join("zeek-traces"), &mut files);
    captures(&root.join("otrf-security-datasets/raw"), &mut files);
    assert!(files.len() > 100, "found {} captures", files.len());
    let (mut ok, mut damaged, mut rejected) = (0, 0, 0);
    let (mut packets, mut records) = (0u64, 0u64);
    for f in &files {
        match process_file(f, SensorOptions::default()) {
            Ok((events, s)) => {
                ok += 1;
                packets += s.capture.packets;
                records += events.len() as u64;
                if let Some(e) = &s.capture.error {
                    damaged += 1;
                    eprintln!("damaged: {} after {} packets: {e}", f.display(), s.capture.packets);
                }
                // Every record has the envelope a consumer relies on.
                for e in &events {
                    assert!(e.sensor.is_some() && e.segment.is_some());
                    if e.event_type.as_str() != "anomaly" {
                        assert!(
                            e.flow_id.is_some() && e.community_id.is_some() && e.src_ip.is_some(),
                            "{}: {e:?}",
                            f.display()
                        );
                    }
                }
            }
            Err(SensorError::NotACapture { reason, .. }) => {
                rejected += 1;
                eprintln!("not a capture: {}: {reason}", f.display());
            }
            Err(e) => panic!("{}: {e}", f.display()),
        }
    }
    eprintln!("{ok} captures processed ({damaged} damaged, {rejected} rejected): {packets} packets, {records} records");
    assert!(damaged >= 1, "the truncated OTRF capture must be reported");
}

fn types(path: &Path) -> Vec<String> {
    let (events, _) = process_file(path, SensorOptions::default()).unwrap();
    events.iter().map(|e| e.event_type.as_str().to_string()).collect()
}

#[test]
fn selected_traces_have_expected_records() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED selected_traces_have_expected_records: ../shared/corpora not found");
        return;
    };
    let z = root.join("zeek-traces");
    let count = |p: &str, t: &str| types(&z.join(p)).iter().filter(|x| *x == t).count();
    assert!(count("dns53.pcap", "dns") >= 1);
    assert!(count("http/get.pcap", "http") >= 1);
    assert!(count("http/pipelined-requests.pcap", "http") >= 3);
    assert!(count("wikipedia.pcap", "dns") >= 1);
    // QinQ-tagged HTTP.
    let (events, _) = process_file(z.join("http-qinq-0.pcap"), SensorOptions::default()).unwrap();
    let http: Vec<_> = events.iter().filter(|e| e.event_type.as_str() == "http").collect();
    assert!(!http.is_empty());
    assert_eq!(http[0].extra.get("vlan"), Some(&serde_json::json!([0, 0])), "{:?}", http[0].extra);
    // TLS traces produce tls records.
    let mut tls_files = Vec::new();
    captures(&z.join("tls"), &mut tls_files);
    let tls: usize = tls_files
        .iter()
        .filter_map(|f| process_file(f, SensorOptions::default()).ok())
        .map(|(e, _)| e.iter().filter(|x| x.event_type.as_str() == "tls").count())
        .sum();
    eprintln!("tls records over {} zeek tls traces: {tls}", tls_files.len());
    assert!(tls >= tls_files.len() / 2);
}
