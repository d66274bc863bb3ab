//! The inbound path on the OASIS STIX 2.1 example bundles (`../shared/corpora/stix-taxii`):
//! every indicator is either loaded into an IOC list or counted as unsupported, never lost
//! silently, and the simple patterns land in the right lists.

use serde_json::Value;
use soc_forwarder::inbound::lists_from_indicators;
use std::path::PathBuf;

fn examples() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/stix-taxii/cti-stix2-json-schemas/examples");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED oasis_example_indicators_become_ioc_lists: {} is absent", p.display());
        None
    }
}

#[test]
fn oasis_example_indicators_become_ioc_lists() {
    let Some(dir) = examples() else { return };
    let mut objects: Vec<Value> = vec![];
    for sub in ["", "threat-reports"] {
        let d = dir.join(sub);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            objects.extend(v["objects"].as_array().cloned().unwrap_or_default());
        }
    }
    let indicators: std::collections::BTreeSet<&str> =
        objects.iter().filter(|o| o["type"] == "indicator").filter_map(|o| o["id"].as_str()).collect();
    assert!(indicators.len() >= 30, "expected the example indicators, found {}", indicators.len());
    // The epoch as "now": no example counts as expired because of the date the test runs.
    let (lists, st) = lists_from_indicators(&objects, soc_model::Timestamp::from_unix_micros(0));
    assert_eq!(st.indicators as usize, indicators.len());
    assert_eq!(st.loaded + st.unsupported + st.expired_or_revoked, st.indicators, "{st:?}");
    assert!(lists.cidr.contains("223.166.0.0/15"), "{:?}", lists.cidr);
    assert!(lists.domain.contains("hugesoft.org"), "{:?}", lists.domain);
    assert!(lists.ip.contains("10.0.0.0"));
    assert!(lists.hash.contains("ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"));
    // The e-mail patterns (MATCHES) cannot be an IOC list: counted, not loaded.
    assert!(st.unsupported >= 2, "{st:?}");
    eprintln!("OASIS examples: {st:?}, {} list entries", lists.len());
}
