//! GeoIP/ASN lookups agree with MaxMind's expected lookups for its test databases, and the
//! corrupt databases give clear errors, not panics.

use soc_correlator::enrich::GeoIp;
use std::path::PathBuf;

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/maxmind-db");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/corpora/maxmind-db not found");
        None
    }
}

#[test]
fn lookups_agree_with_maxminds_expected_results() {
    let Some(dir) = corpora() else { return };
    let tsv = std::fs::read_to_string(dir.join("EXPECTED_LOOKUPS.tsv")).expect("EXPECTED_LOOKUPS.tsv");
    let mut dbs: std::collections::HashMap<String, GeoIp> = Default::default();
    let (mut checked, mut disagree) = (0usize, Vec::new());
    for (n, line) in tsv.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [db, _net, probe, found, summary] = cols[..] else { panic!("line {}: {line:?}", n + 1) };
        let geo = dbs.entry(db.to_string()).or_insert_with(|| {
            let p = dir.join("test-data").join(db);
            if db.contains("ASN") { GeoIp::open(None, Some(&p)) } else { GeoIp::open(Some(&p), None) }
                .unwrap_or_else(|e| panic!("{e}"))
        });
        let want: serde_json::Value = serde_json::from_str(summary).expect("summary json");
        let got = geo.lookup_any(probe.parse().expect("probe ip")).unwrap_or_default();
        let mut ok = got.network.as_deref() == Some(found) || (got.network.is_none() && found.is_empty());
        let s = |v: &Option<String>| v.clone().map_or(serde_json::Value::Null, serde_json::Value::String);
        for (k, v) in want.as_object().expect("object") {
            let mine = match k.as_str() {
                "country" => s(&got.country_iso),
                "registered_country" => s(&got.registered_country_iso),
                "city" => s(&got.city),
                "subdivision" => serde_json::json!(got.subdivisions),
                "asn" => got.asn.map_or(serde_json::Value::Null, |a| a.into()),
                "org" => s(&got.as_org),
                other => panic!("unknown summary key {other}"),
            };
            ok &= &mine == v;
        }
        checked += 1;
        if !ok {
            disagree.push(format!("{db} {probe}: want {found} {summary}, got {got:?}"));
        }
    }
    println!("GeoIP: {checked} expected lookups checked, {} disagree", disagree.len());
    assert_eq!(checked, 1802);
    assert!(
        disagree.is_empty(),
        "{} lookups disagree:\n{}",
        disagree.len(),
        disagree[..disagree.len().min(20)].join("\n")
    );
}

#[test]
fn corrupt_databases_are_clear_errors_or_counted_lookup_failures_never_panics() {
    let Some(dir) = corpora() else { return };
    let mut refused = 0;
    let mut files = 0;
    for sub in std::fs::read_dir(dir.join("bad-data")).expect("bad-data") {
        let sub = sub.expect("entry").path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).expect("dir") {
            let f = f.expect("entry").path();
            if f.extension().and_then(|e| e.to_str()) != Some("mmdb") {
                continue;
            }
            files += 1;
            match GeoIp::open(Some(&f), None) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(f.file_name().and_then(|n| n.to_str()).unwrap_or("?")), "{msg}");
                    refused += 1;
                }
                Ok(geo) => {
                    // Opened: lookups over a spread of addresses must not panic.
                    for ip in ["1.1.1.1", "81.2.69.160", "214.0.0.1", "2001:218::1", "::1.2.3.4"] {
                        let _ = geo.lookup_any(ip.parse().expect("ip"));
                    }
                }
            }
        }
    }
    println!(
        "bad-data: {files} corrupt databases, {refused} refused at open with the file named, the rest survived lookups"
    );
    assert!(files >= 20, "expected the corrupt database corpus, found {files}");
    assert!(refused > 0);
}
