//! Runs the shared OTRF lab capture through the sensor with all of ET Open loaded and compares
//! the alerts per sid with what Suricata 8.0.6 raised
//! (`../shared/corpora/anchors/suricata-8.0.6-otrf-et-open-alerts.tsv`: sid, count, min and max
//! over 18 runs). Prints every sid of either side with both counts, the sids in agreement
//! (count within Suricata's own min..max), and fails below the agreement reached. Skips
//! (visibly) without the corpora or without `tar`.

use soc_model::EventType;
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::detect::DetectorBuilder;
use soc_sensor::{Sensor, SensorOptions};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

/// Anchor sids whose alert count we must reproduce (the number reached).
const MIN_AGREEING_SIDS: usize = 25;

mod common;

#[test]
fn otrf_et_open_alerts_per_sid_against_suricata() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    let pcap = root.join("pcaps/otrf-security-datasets/otrf-lab-merged.pcap.zst");
    let anchor = root.join("anchors/suricata-8.0.6-otrf-et-open-alerts.tsv");
    if !(pcap.exists() && anchor.exists()) {
        eprintln!("SKIPPED otrf_alerts: ../shared/corpora (OTRF pcap, anchors) not found");
        return;
    }
    let Some((_dir, files, classes)) = common::et_open("otrf_alerts") else { return };
    let mut b = DetectorBuilder::new().classifications(classes);
    for f in &files {
        b.add_file(f);
    }
    let (det, _errors) = b.build();
    let loaded: std::collections::HashMap<u64, ()> = det.rules().iter().map(|r| (r.meta.sid as u64, ())).collect();

    let mut sensor = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
    let mut ours: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    // SOC_OTRF_ALERTS_OUT=FILE writes our alerts there as EVE lines (to compare with the anchor's)
    let mut dump = std::env::var_os("SOC_OTRF_ALERTS_OUT")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("create SOC_OTRF_ALERTS_OUT")));
    let mut count = |out: &mut Vec<soc_model::Event>| {
        for e in out.drain(..) {
            if e.event_type == EventType::Alert
                && let Some(sid) = e.alert.as_ref().and_then(|a| a.signature_id)
            {
                *ours.entry(sid).or_default() += 1;
                if let Some(w) = dump.as_mut() {
                    use std::io::Write;
                    let line = serde_json::to_string(&e).expect("alert to JSON");
                    writeln!(w, "{line}").expect("write SOC_OTRF_ALERTS_OUT");
                }
            }
        }
    };
    read_capture(&pcap, open_capture(&pcap).expect("open pcap"), |ts, link, frame| {
        sensor.process(ts, link, frame, &mut out);
        if out.len() > 4096 {
            count(&mut out);
        }
        ControlFlow::Continue(())
    })
    .expect("read pcap");
    sensor.flush_all(&mut out);
    count(&mut out);

    // sid -> (count, min, max, msg)
    let mut theirs: BTreeMap<u64, (u64, u64, u64, String)> = BTreeMap::new();
    for line in std::fs::read_to_string(&anchor).expect("anchor").lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            continue;
        }
        let n = |i: usize| f[i].trim().parse::<u64>().unwrap_or(0);
        theirs.insert(n(0), (n(1), n(2), n(3), f[4].to_string()));
    }
    let mut agree = 0usize;
    let (mut ours_total, mut theirs_total) = (0u64, 0u64);
    eprintln!("{:>9} {:>6} {:>9} {:>6}  msg", "sid", "ours", "suricata", "loaded");
    for (sid, (c, lo, hi, msg)) in &theirs {
        let o = ours.get(sid).copied().unwrap_or(0);
        theirs_total += c;
        let ok = (*lo..=*hi).contains(&o);
        agree += usize::from(ok);
        eprintln!(
            "{sid:>9} {o:>6} {c:>9} {:>6}  {}{msg}",
            if loaded.contains_key(sid) { "yes" } else { "no" },
            if ok { "" } else { "MISMATCH " }
        );
    }
    for (sid, o) in &ours {
        ours_total += o;
        if !theirs.contains_key(sid) {
            eprintln!("{sid:>9} {o:>6} {:>9} {:>6}  EXTRA (Suricata raised none)", 0, "yes");
        }
    }
    let extra = ours.keys().filter(|s| !theirs.contains_key(s)).count();
    eprintln!(
        "OTRF with ET Open: {agree}/{} anchor sids with Suricata's count; {extra} extra sids; alerts: ours {ours_total}, \
         Suricata {theirs_total}",
        theirs.len()
    );
    assert!(agree >= MIN_AGREEING_SIDS, "{agree} sids agree, floor {MIN_AGREEING_SIDS}");
}
