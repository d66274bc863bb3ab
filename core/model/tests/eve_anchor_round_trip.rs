//! Every line Suricata 8.0.6 wrote for the shared OTRF pcap deserializes into the model and
//! serializes back to the same JSON value. Skips, loudly, when the shared corpora are absent.

use serde_json::Value;
use soc_model::{Event, EventType};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    p.is_dir().then_some(p)
}

#[test]
fn every_suricata_eve_line_round_trips_without_losing_a_field() {
    let Some(dir) = corpora() else {
        eprintln!("SKIPPED: ../shared/corpora not found; EVE round-trip oracle not run");
        return;
    };
    let f = std::fs::File::open(dir.join("anchors/suricata-8.0.6-otrf-et-open-eve.json.zst")).unwrap();
    let rd = BufReader::new(zstd::Decoder::new(f).unwrap());
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut typed = 0usize;
    for (n, line) in rd.lines().enumerate() {
        let line = line.unwrap();
        let orig: Value = serde_json::from_str(&line).unwrap();
        let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let back = serde_json::to_value(&ev).unwrap();
        assert_eq!(back, orig, "line {} changed in a round trip", n + 1);
        // The id is the XXH3-128 of the JSON tree without `id` (keys sorted), however computed.
        let mut tree = back.clone();
        tree.as_object_mut().unwrap().remove("id");
        let want = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(tree.to_string().as_bytes()));
        assert_eq!(ev.compute_id(), want, "line {}: id", n + 1);
        let text = tree.to_string();
        let payload = format!("{},\"id\":\"{want}\"}}", &text[..text.len() - 1]);
        assert_eq!(String::from_utf8(ev.to_json_with_id()).unwrap(), payload, "line {}: payload", n + 1);
        // The typed payload of the record's own type is populated, not left in `extra`.
        let own = match &ev.event_type {
            EventType::Flow => ev.flow.is_some(),
            EventType::Alert => ev.alert.is_some(),
            EventType::Http => ev.http.is_some(),
            EventType::Dns => ev.dns.is_some(),
            EventType::Tls => ev.tls.is_some(),
            EventType::Anomaly => ev.anomaly.is_some(),
            _ => true,
        };
        assert!(own, "line {}: typed payload missing", n + 1);
        if !matches!(ev.event_type, EventType::Other(_)) {
            typed += 1;
        }
        *per_type.entry(ev.event_type.to_string()).or_default() += 1;
    }
    eprintln!("round-tripped per type: {per_type:?}");
    assert_eq!(per_type.get("flow"), Some(&1116));
    assert_eq!(per_type.get("dns"), Some(&598));
    assert_eq!(per_type.get("tls"), Some(&375));
    assert_eq!(per_type.get("http"), Some(&399));
    assert_eq!(per_type.get("alert"), Some(&372));
    assert!(typed > 3000);
}
