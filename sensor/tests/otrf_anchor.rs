//! Runs the shared OTRF lab capture through the sensor and compares with what Suricata 8.0.6
//! wrote for it (`../shared/corpora/anchors`). Prints ours-vs-theirs counts and field-by-field
//! agreement, and asserts floors the sensor reaches. Skips (visibly) without the corpora.

use serde_json::Value;
use soc_sensor::{SensorOptions, process_file};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.join("pcaps/otrf-security-datasets/otrf-lab-merged.pcap.zst").exists().then_some(p)
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn tuple(v: &Value) -> String {
    format!("{} {}:{} > {}:{}", s(v, "proto"), s(v, "src_ip"), s(v, "src_port"), s(v, "dest_ip"), s(v, "dest_port"))
}

fn multiset<'a>(items: impl Iterator<Item = String> + 'a) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

fn common(a: &HashMap<String, usize>, b: &HashMap<String, usize>) -> usize {
    a.iter().map(|(k, n)| (*n).min(*b.get(k).unwrap_or(&0))).sum()
}

/// The 5-tuple with the client side first whichever way the record points (Suricata writes
/// some records in the direction of the packet that completed them).
fn flow_tuple(v: &Value) -> String {
    let (a, b) =
        (format!("{}:{}", s(v, "src_ip"), s(v, "src_port")), format!("{}:{}", s(v, "dest_ip"), s(v, "dest_port")));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{} {lo} {hi}", s(v, "proto"))
}

/// Records of type `t` paired by `key` (in order within a key); per field of `t`'s object, on
/// how many pairs ours equals Suricata's (`*`: the whole object). Returns (pairs, agreement).
fn pair_records(
    ours: &[Value],
    theirs: &[Value],
    t: &str,
    key: impl Fn(&Value) -> String,
) -> (usize, BTreeMap<String, usize>) {
    let mut by_key: HashMap<String, Vec<&Value>> = HashMap::new();
    for v in ours.iter().filter(|e| e["event_type"] == t) {
        by_key.entry(key(v)).or_default().push(v);
    }
    for list in by_key.values_mut() {
        list.reverse();
    }
    let (mut pairs, mut agree) = (0, BTreeMap::new());
    for v in theirs.iter().filter(|e| e["event_type"] == t) {
        let Some(o) = by_key.get_mut(&key(v)).and_then(Vec::pop) else { continue };
        pairs += 1;
        let (ob, tb) = (&o[t], &v[t]);
        if ob == tb {
            *agree.entry("*".to_string()).or_default() += 1;
        }
        for f in tb.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            if ob.get(&f) == tb.get(&f) {
                *agree.entry(f).or_default() += 1;
            }
        }
    }
    (pairs, agree)
}

#[test]
fn otrf_pcap_against_suricata_anchor() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED otrf_pcap_against_suricata_anchor: ../shared/corpora not found");
        return;
    };
    let pcap = root.join("pcaps/otrf-security-datasets/otrf-lab-merged.pcap.zst");
    let anchor = root.join("anchors/suricata-8.0.6-otrf-et-open-eve.json.zst");
    let (events, summary) = process_file(&pcap, SensorOptions::default()).expect("run");
    let ours: Vec<Value> = events.iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    let raw = zstd::decode_all(std::fs::File::open(&anchor).unwrap()).unwrap();
    let theirs: Vec<Value> =
        raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    let of = |v: &[Value], t: &str| v.iter().filter(|e| e["event_type"] == t).cloned().collect::<Vec<_>>();

    let st = &summary.stats;
    eprintln!(
        "packets {} bytes {}; decoder: tcp {} udp {} icmp {} invalid {} {:?}",
        st.packets,
        st.bytes,
        st.tcp,
        st.udp,
        st.icmp,
        st.invalid,
        st.decode_errors_by_name()
    );
    assert_eq!(summary.capture.packets, 44_267);
    assert_eq!(st.bytes, 36_151_173, "Suricata's decoder.bytes");
    // Suricata: tcp 42255, udp 740, icmpv4 16, invalid 1250 (iplen_smaller_than_hlen 1220, trunc_pkt 30).
    assert_eq!((st.tcp, st.udp, st.icmp, st.invalid), (42_255, 740, 16, 1_250));

    let mut counts = BTreeMap::new();
    for t in ["flow", "dns", "http", "tls", "anomaly", "dcerpc", "krb5", "fileinfo", "smb", "ldap"] {
        let (o, a) = (of(&ours, t).len(), of(&theirs, t).len());
        eprintln!("{t:8} ours {o:5}  suricata {a:5}");
        counts.insert(t, (o, a));
    }
    eprintln!(
        "(anomaly: Suricata's default config logs no decode anomalies; ours includes {} decode ones)",
        st.invalid
    );

    // Flows, keyed by 5-tuple and start time.
    let key = |v: &Value| format!("{} {}", tuple(v), s(&v["flow"], "start"));
    let ours_flows: Vec<Value> = of(&ours, "flow");
    let theirs_flows: Vec<Value> = of(&theirs, "flow");
    let om: HashMap<String, &Value> = ours_flows.iter().map(|v| (key(v), v)).collect();
    let tm: HashMap<String, &Value> = theirs_flows.iter().map(|v| (key(v), v)).collect();
    let matched: Vec<&String> = tm.keys().filter(|k| om.contains_key(*k)).collect();
    eprintln!("flows matched by 5-tuple+start: {} (suricata {}, ours {})", matched.len(), tm.len(), om.len());
    let mut agree: BTreeMap<&str, usize> = BTreeMap::new();
    let mut tx_cnt_off: BTreeMap<String, usize> = BTreeMap::new();
    let mut gaps: HashMap<(&str, bool, bool), usize> = HashMap::new();
    for k in &matched {
        let (o, t) = (om[*k], tm[*k]);
        for f in ["pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "start", "end", "age", "state"]
        {
            if o["flow"][f] == t["flow"][f] {
                *agree.entry(f).or_default() += 1;
            }
        }
        if o["app_proto"] == t["app_proto"] {
            *agree.entry("app_proto").or_default() += 1;
        }
        // the transactions logged on the flow (Suricata writes tx_cnt when there were some)
        if o["flow"]["tx_cnt"] == t["flow"]["tx_cnt"] {
            *agree.entry("tx_cnt").or_default() += 1;
        } else {
            *tx_cnt_off.entry(s(t, "app_proto")).or_default() += 1;
        }
        for f in ["tcp_flags", "tcp_flags_ts", "tcp_flags_tc", "state"] {
            if o["tcp"][f] == t["tcp"][f] {
                *agree.entry(if f == "state" { "tcp.state" } else { f }).or_default() += 1;
            }
        }
        for f in ["ts_gap", "tc_gap"] {
            let (og, tg) = (o["tcp"][f] == true, t["tcp"][f] == true);
            *gaps.entry((f, og, tg)).or_default() += 1;
        }
    }
    eprintln!("flow field agreement over {} matched: {agree:?}", matched.len());
    eprintln!("flows whose tx_cnt differs, per Suricata's app_proto: {tx_cnt_off:?}");
    // (field, ours, Suricata's) -> flows; Suricata keeps reassembling where the sensor stops
    // once the parser is done (TLS after the handshake), so it sees more gaps.
    eprintln!("tcp gap flags over matched flows: {:?}", {
        let mut g: Vec<_> = gaps.iter().collect();
        g.sort();
        g
    });
    eprintln!(
        "stream: {}; Suricata: reassembly_gap 170, overlap 692, overlap_diff_data 0, segment_memcap_drop 0, stream_depth_reached 1",
        st.to_json()["stream"]
    );

    // DNS: 5-tuple, type, id, queries.
    let dkey = |v: &Value| {
        let q: Vec<String> = v["dns"]["queries"]
            .as_array()
            .map(|a| a.iter().map(|q| format!("{}/{}", s(q, "rrname"), s(q, "rrtype"))).collect())
            .unwrap_or_default();
        format!("{} {} {} {:?}", tuple(v), s(&v["dns"], "type"), s(&v["dns"], "id"), q)
    };
    let od = multiset(of(&ours, "dns").iter().map(dkey));
    let td = multiset(of(&theirs, "dns").iter().map(dkey));
    let dns_matched = common(&od, &td);
    let payload = |v: &Value| {
        let mut d = v["dns"].clone();
        d.as_object_mut().map(|m| m.remove("tx_id"));
        format!("{} {}", tuple(v), d)
    };
    let dns_full =
        common(&multiset(of(&ours, "dns").iter().map(payload)), &multiset(of(&theirs, "dns").iter().map(payload)));
    eprintln!(
        "dns agreement (5-tuple, type, id, rrname/rrtype): {dns_matched} of {}; whole dns object equal: {dns_full}",
        td.values().sum::<usize>()
    );

    // HTTP: 5-tuple, hostname, url, status.
    let hkey = |v: &Value| {
        format!("{} {} {} {}", tuple(v), s(&v["http"], "hostname"), s(&v["http"], "url"), s(&v["http"], "status"))
    };
    let http_matched =
        common(&multiset(of(&ours, "http").iter().map(hkey)), &multiset(of(&theirs, "http").iter().map(hkey)));
    eprintln!("http agreement (5-tuple, hostname, url, status): {http_matched} of {}", of(&theirs, "http").len());

    // TLS: per 5-tuple, per field.
    let ot: HashMap<String, Value> = of(&ours, "tls").iter().map(|v| (tuple(v), v["tls"].clone())).collect();
    let tt: HashMap<String, Value> = of(&theirs, "tls").iter().map(|v| (tuple(v), v["tls"].clone())).collect();
    let mut tls_agree: BTreeMap<String, usize> = BTreeMap::new();
    let mut tls_matched = 0;
    for (k, t) in &tt {
        let Some(o) = ot.get(k) else { continue };
        tls_matched += 1;
        for f in [
            "version",
            "sni",
            "subject",
            "issuerdn",
            "serial",
            "fingerprint",
            "notbefore",
            "notafter",
            "ja3",
            "ja3s",
            "ja4",
            "session_resumed",
        ] {
            if o.get(f) == t.get(f) {
                *tls_agree.entry(f.to_string()).or_default() += 1;
            }
        }
    }
    eprintln!("tls sessions matched: {tls_matched}; field agreement: {tls_agree:?}");

    // DCERPC over TCP: per connection and call id, the request and response types.
    let dce_key = |v: &Value| {
        let d = &v["dcerpc"];
        format!("{} {} {} {}", tuple(v), s(d, "call_id"), s(d, "request"), s(d, "response"))
    };
    let (dce_pairs, dce_agree) = pair_records(&ours, &theirs, "dcerpc", dce_key);
    eprintln!("dcerpc paired (5-tuple, call_id, request, response): {dce_pairs}; field agreement: {dce_agree:?}");

    // Kerberos: per connection (either direction), the message type and the names.
    let krb_key = |v: &Value| {
        let k = &v["krb5"];
        format!("{} {} {} {}", flow_tuple(v), s(k, "msg_type"), s(k, "cname"), s(k, "sname"))
    };
    let (krb_pairs, krb_agree) = pair_records(&ours, &theirs, "krb5", krb_key);
    eprintln!("krb5 paired (connection, msg_type, cname, sname): {krb_pairs}; field agreement: {krb_agree:?}");

    // Files: per 5-tuple (the direction the file travelled) and transaction.
    let file_key = |v: &Value| format!("{} {} {}", tuple(v), s(&v["fileinfo"], "tx_id"), s(v, "app_proto"));
    let (file_pairs, file_agree) = pair_records(&ours, &theirs, "fileinfo", file_key);
    eprintln!("fileinfo paired (5-tuple, tx_id, app_proto): {file_pairs}; field agreement: {file_agree:?}");
    // Files over SMB: their record carries the SMB transaction's object too.
    let smb_files = |v: &[Value]| -> Vec<Value> {
        v.iter().filter(|e| e["event_type"] == "fileinfo" && e["app_proto"] == "smb").cloned().collect()
    };
    let (smb_file_ours, smb_file_theirs) = (smb_files(&ours), smb_files(&theirs));
    let smb_file_equal = smb_file_theirs
        .iter()
        .filter(|t| {
            smb_file_ours
                .iter()
                .any(|o| file_key(o) == file_key(t) && o["fileinfo"] == t["fileinfo"] && o["smb"] == t["smb"])
        })
        .count();
    eprintln!(
        "fileinfo over SMB: ours {} suricata {}, equal with their smb object {smb_file_equal}",
        smb_file_ours.len(),
        smb_file_theirs.len()
    );

    // LDAP over TCP and UDP (CLDAP): per connection, the request's message id and the
    // operations.
    let ldap_key = |v: &Value| {
        let l = &v["ldap"];
        let ops: Vec<String> =
            l["responses"].as_array().map(|a| a.iter().map(|r| s(r, "operation")).collect()).unwrap_or_default();
        format!("{} {} {} {:?}", flow_tuple(v), s(&l["request"], "message_id"), s(&l["request"], "operation"), ops)
    };
    let (ldap_pairs, ldap_agree) = pair_records(&ours, &theirs, "ldap", ldap_key);
    let ldap_tcp = of(&theirs, "ldap").iter().filter(|v| v["proto"] == "TCP").count();
    let ldap_udp = of(&theirs, "ldap").len() - ldap_tcp;
    let (cldap_pairs, cldap_agree) = pair_records(
        &ours.iter().filter(|v| v["proto"] == "UDP").cloned().collect::<Vec<_>>(),
        &theirs.iter().filter(|v| v["proto"] == "UDP").cloned().collect::<Vec<_>>(),
        "ldap",
        ldap_key,
    );
    eprintln!("cldap (over UDP) paired: {cldap_pairs} of {ldap_udp}; field agreement: {cldap_agree:?}");
    eprintln!(
        "ldap paired (connection, message id, operations): {ldap_pairs} ({ldap_tcp} over TCP); field agreement: {ldap_agree:?}"
    );

    // SMB: per connection, the command and what it names (the transaction ids follow the
    // transactions created, logged or not).
    let smb_key = |v: &Value| {
        let m = &v["smb"];
        let what: Vec<String> =
            ["filename", "directory", "share", "named_pipe", "function"].iter().map(|f| s(m, f)).collect();
        format!("{} {} {what:?}", flow_tuple(v), s(m, "command"))
    };
    let (smb_pairs, smb_agree) = pair_records(&ours, &theirs, "smb", smb_key);
    eprintln!("smb paired (connection, command, names): {smb_pairs}; field agreement: {smb_agree:?}");

    // Floors (measured: flow 1116/1116 with 1115 matched, dns 598/598, tls 375/375 all fields,
    // http 398 of 399).
    let (fo, fa) = counts["flow"];
    assert!(fo.abs_diff(fa) <= 5, "flow count {fo} vs {fa}");
    assert!(matched.len() >= 1100, "flows matched {}", matched.len());
    for f in ["pkts_toserver", "bytes_toclient", "state", "tcp.state"] {
        assert!(agree.get(f).copied().unwrap_or(0) >= 1090, "flow field {f}: {:?}", agree.get(f));
    }
    assert!(agree.get("app_proto").copied().unwrap_or(0) >= 1100);
    // Measured: tx_cnt equal on 1068 (off: NTP over UDP, LDAP after gaps, the DCERPC
    // connections with extra records, 4 SMB connections where Suricata reads fragmented pipe
    // responses apart).
    assert!(agree.get("tx_cnt").copied().unwrap_or(0) >= 1065, "tx_cnt {:?} {tx_cnt_off:?}", agree.get("tx_cnt"));
    // Measured: ts_gap on 46 flows, tc_gap on 9, all flagged by Suricata too (which flags 95
    // and 27: it keeps reassembling after the parser is done).
    for f in ["ts_gap", "tc_gap"] {
        assert!(gaps.get(&(f, true, true)).copied().unwrap_or(0) >= 5, "{f}: {gaps:?}");
        assert!(gaps.get(&(f, true, false)).copied().unwrap_or(0) <= 2, "{f} set where Suricata has none: {gaps:?}");
    }
    assert_eq!(st.stream_memcap_drops, 0);
    // Suricata: 1 (a flow whose parser the sensor had finished with before 1 MiB).
    assert!(st.stream_depth_reached <= 1, "depth reached {}", st.stream_depth_reached);
    assert!(dns_matched >= 595, "dns {dns_matched}");
    assert!(dns_full >= 590, "dns payload {dns_full}");
    assert!(counts["tls"].0 == 375 && tls_matched >= 370, "tls {tls_matched}");
    for f in ["version", "ja3", "ja3s", "ja4", "session_resumed"] {
        assert!(tls_agree.get(f).copied().unwrap_or(0) >= 370, "tls {f}");
    }
    assert!(http_matched >= 398, "http {http_matched}");
    // Measured: dcerpc 1521 records for Suricata's 1375, 1367 paired, 1364 equal (extra:
    // responses on connections whose requests neither side parsed, logged once by Suricata);
    // krb5 126/126 equal; fileinfo 375 for 372 (HTTP 365 for 362, SMB 10 for 10), 372 paired,
    // 369 equal.
    assert!(dce_pairs >= 1360 && dce_agree.get("*").copied().unwrap_or(0) >= 1360, "dcerpc {dce_agree:?}");
    assert!(counts["dcerpc"].0 <= 1530, "dcerpc count {}", counts["dcerpc"].0);
    assert!(krb_pairs == 126 && krb_agree.get("*").copied().unwrap_or(0) == 126, "krb5 {krb_agree:?}");
    assert_eq!(counts["krb5"].0, 126);
    assert!(file_pairs >= 370 && file_agree.get("*").copied().unwrap_or(0) >= 367, "fileinfo {file_agree:?}");
    assert!((365..=380).contains(&counts["fileinfo"].0), "fileinfo count {}", counts["fileinfo"].0);
    // SMB files: 10 of 10 equal, 7 with their smb object too (the other 3 are written files,
    // for which Suricata logs an empty share; ours names it).
    assert!(smb_file_ours.len() == 10 && smb_file_equal >= 7, "smb files {smb_file_equal}");
    // SMB: 877 records for Suricata's 880, 872 paired, 853 equal, 856 with the same id (the
    // rest: Suricata reads a pipe response fragmented over an ioctl and reads apart, logs a
    // transceive without DCERPC and skips the bind before it).
    assert!(smb_pairs >= 870 && smb_agree.get("*").copied().unwrap_or(0) >= 850, "smb {smb_agree:?}");
    assert!(smb_agree.get("id").copied().unwrap_or(0) >= 853, "smb ids {smb_agree:?}");
    assert!((870..=890).contains(&counts["smb"].0), "smb count {}", counts["smb"].0);
    // LDAP: 134 records (Suricata 141, of which 50 CLDAP over UDP), 129 paired, all equal: 50
    // of 50 over UDP, 79 of 91 over TCP (missing: the binds Suricata reads after a gap, where
    // the parser stops).
    assert!(ldap_pairs >= 129 && ldap_agree.get("*").copied().unwrap_or(0) >= 129, "ldap {ldap_agree:?}");
    assert!(cldap_pairs == 50 && cldap_agree.get("*").copied().unwrap_or(0) == 50, "cldap {cldap_agree:?}");
    assert!(counts["ldap"].0 <= 140, "ldap count {}", counts["ldap"].0);
    assert_eq!(st.records.ldap, counts["ldap"].0 as u64);
    assert_eq!(
        st.records.dcerpc + st.records.krb5 + st.records.fileinfo + st.records.smb,
        (counts["dcerpc"].0 + counts["krb5"].0 + counts["fileinfo"].0 + counts["smb"].0) as u64
    );
    assert!((395..=405).contains(&counts["http"].0), "http count {}", counts["http"].0);
}
