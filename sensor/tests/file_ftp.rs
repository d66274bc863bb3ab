//! File keywords (`filemd5`, `filesha1`, `filesha256`, `filesize`) and FTP (`ftp.command`,
//! `ftpbounce`, `ftpdata_command`, `ftp-data` flows) over captures of the suricata-verify
//! corpus, with rules and hash lists written to a temporary directory.

use serde_json::Value;
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::detect::DetectorBuilder;
use soc_sensor::{Sensor, SensorOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/suricata-verify/tests")
}

/// A fresh directory for one test's rule file and hash lists.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("soc_file_ftp_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `pcap` with the rules of `dir/test.rules` (every rule must load); the alert events.
fn alerts(dir: &Path, rules: &str, files: &[(&str, &str)], pcap: &Path) -> Vec<Value> {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write list");
    }
    let rule_file = dir.join("test.rules");
    std::fs::write(&rule_file, rules).expect("write rules");
    let mut b = DetectorBuilder::new();
    b.add_file(&rule_file);
    let (det, errors) = b.build();
    assert!(errors.is_empty(), "rule errors: {errors:?}");
    let opts = SensorOptions { checksum_check: false, checksum_auto: false, ..SensorOptions::default() };
    let mut sensor = Sensor::new(opts).with_detector(Arc::new(det));
    let input = open_capture(pcap).expect("open capture");
    let mut out = Vec::new();
    read_capture(pcap, input, |ts, link, frame| {
        sensor.process(ts, link, frame, &mut out);
        ControlFlow::Continue(())
    })
    .expect("read capture");
    sensor.flush_all(&mut out);
    out.iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter(|v| v.get("event_type").and_then(Value::as_str) == Some("alert"))
        .collect()
}

fn count(alerts: &[Value], sid: u64) -> usize {
    alerts.iter().filter(|a| a.pointer("/alert/signature_id").and_then(Value::as_u64) == Some(sid)).count()
}

const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const EICAR_SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";
const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

#[test]
fn smb_file_digests_and_size_match_hash_lists() {
    let pcap = corpus().join("smb-eicar-file/input.pcap");
    if !pcap.exists() {
        eprintln!("SKIPPED smb_file_digests_and_size_match_hash_lists: {} not found", pcap.display());
        return;
    }
    let dir = temp_dir("smb");
    let rules = "alert smb any any -> any any (filemd5:eicar.md5; sid:1;)\n\
                 alert smb any any -> any any (filemd5:other.md5; sid:2;)\n\
                 alert smb any any -> any any (filemd5:!other.md5; sid:3;)\n\
                 alert smb any any -> any any (filesha1:eicar.sha1; sid:4;)\n\
                 alert smb any any -> any any (filesha256:eicar.sha256; sid:5;)\n\
                 alert tcp any any -> any any (filesize:68; sid:6;)\n\
                 alert tcp any any -> any any (filesize:>68; sid:7;)\n";
    let files = [
        ("eicar.md5", &*format!("# eicar\n{}\n", EICAR_MD5.to_uppercase())),
        ("other.md5", "00000000000000000000000000000000\n"),
        ("eicar.sha1", EICAR_SHA1),
        ("eicar.sha256", EICAR_SHA256),
    ];
    let a = alerts(&dir, rules, &files, &pcap);
    assert_eq!(count(&a, 1), 1, "md5 in the list");
    assert_eq!(count(&a, 2), 0, "md5 not in the list");
    assert_eq!(count(&a, 3), 1, "negated list");
    assert_eq!(count(&a, 4), 1, "sha1");
    assert_eq!(count(&a, 5), 1, "sha256");
    assert_eq!(count(&a, 6), 1, "size of the eicar file");
    assert_eq!(count(&a, 7), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_hash_list_rejects_the_rule_with_file_and_line() {
    let dir = temp_dir("bad");
    std::fs::write(dir.join("bad.md5"), format!("{EICAR_MD5}\nnot-a-hash\n")).expect("write list");
    let mut b = DetectorBuilder::new();
    b.add_rules("alert http any any -> any any (filemd5:bad.md5; sid:1;)", &dir.join("x.rules").to_string_lossy());
    let (det, errors) = b.build();
    assert_eq!(det.len(), 0);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("bad.md5:2"), "{}", errors[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ftp_data_channels_carry_their_command_and_file() {
    for (mode, cmd, other) in [("ftp-download-passive", "retr", "stor"), ("ftp-download-active", "retr", "stor")] {
        let pcap = corpus().join("ftp").join(mode).join("input.pcap");
        if !pcap.exists() {
            eprintln!("SKIPPED ftp_data_channels_carry_their_command_and_file: {} not found", pcap.display());
            return;
        }
        let dir = temp_dir(mode);
        let rules = format!(
            "alert ftp-data any any -> any any (ftpdata_command:{cmd}; sid:1;)\n\
             alert ftp-data any any -> any any (ftpdata_command:{other}; sid:2;)\n\
             alert ftp any any -> any any (ftp.command; content:\"RETR\"; sid:3;)\n\
             alert tcp any any -> any any (ftpbounce; sid:4;)\n\
             alert ftp-data any any -> any any (filesize:>0; sid:5;)\n"
        );
        let a = alerts(&dir, &rules, &[], &pcap);
        assert!(count(&a, 1) >= 1, "{mode}: ftpdata_command:{cmd}");
        assert!(a.iter().filter(|x| count(std::slice::from_ref(x), 1) == 1).all(|x| x["app_proto"] == "ftp-data"));
        assert_eq!(count(&a, 2), 0, "{mode}: ftpdata_command:{other}");
        assert_eq!(count(&a, 3), 1, "{mode}: ftp.command");
        assert_eq!(count(&a, 4), 0, "{mode}: no bounce");
        assert!(count(&a, 5) >= 1, "{mode}: data file size");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn ftp_bounce_is_the_port_command_to_a_third_host() {
    let pcap = corpus().join("ftp/ftp-bounce/test.pcap");
    if !pcap.exists() {
        eprintln!("SKIPPED ftp_bounce_is_the_port_command_to_a_third_host: {} not found", pcap.display());
        return;
    }
    let dir = temp_dir("bounce");
    let a = alerts(&dir, "alert tcp any any -> any any (ftpbounce; sid:1;)\n", &[], &pcap);
    assert_eq!(count(&a, 1), 1);
    assert_eq!(a[0]["src_port"], 58316);
    assert_eq!(a[0]["app_proto"], "ftp");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn smtp_mail_headers_and_attachments_are_inspected_once_per_mail() {
    let (date_pcap, encap_pcap) = (
        corpus().join("mime/mime-dec-parse-full-msg-test02/input.pcap"),
        corpus().join("mime/smtp-mime-encap-8649-combined/input.pcap"),
    );
    if !date_pcap.exists() || !encap_pcap.exists() {
        eprintln!("SKIPPED smtp_mail_headers_and_attachments_are_inspected_once_per_mail: corpus not found");
        return;
    }
    let dir = temp_dir("smtp");
    let rules = "alert smtp any any -> any any (email.date; content:\"Fri, 21 Apr 2023\"; startswith; sid:1;)\n\
                 alert smtp any any -> any any (email.subject; content:\"This is a test email\"; bsize:20; sid:2;)\n\
                 alert smtp any any -> any any (email.from; content:\"nobody\"; sid:3;)\n\
                 alert smtp any any -> any any (file.name; content:\"malware.exe\"; sid:4;)\n\
                 alert smtp any any -> any any (file.data; content:\"EICAR-MIME-BYPASS\"; sid:5;)\n\
                 alert smtp any any -> any any (file.name; content:\"innocent.txt\"; sid:6;)\n\
                 alert smtp any any -> any any (filesize:30; sid:7;)\n";
    let a = alerts(&dir, rules, &[], &date_pcap);
    assert_eq!((count(&a, 1), count(&a, 2), count(&a, 3), count(&a, 4)), (1, 1, 0, 0));
    let a = alerts(&dir, rules, &[], &encap_pcap);
    assert_eq!((count(&a, 1), count(&a, 4), count(&a, 5)), (0, 1, 1));
    // the encapsulating part is a container, not a file
    assert_eq!(count(&a, 6), 0);
    // the attachment without the line end of the mail's terminator
    assert_eq!(count(&a, 7), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_response_file_is_the_decoded_body_with_its_disposition_name() {
    let pcap = corpus().join("http-evader/http-evader-116-lzma/input.pcap");
    if !pcap.exists() {
        eprintln!(
            "SKIPPED http_response_file_is_the_decoded_body_with_its_disposition_name: {} not found",
            pcap.display()
        );
        return;
    }
    let dir = temp_dir("http");
    let rules = "alert http any any -> any any (filemd5:eicar.md5; sid:1;)\n\
                 alert http any any -> any any (file.name; content:\"eicar.txt\"; bsize:9; sid:2;)\n\
                 alert http any any -> any any (filesize:68; sid:3;)\n";
    let a = alerts(&dir, rules, &[("eicar.md5", EICAR_MD5)], &pcap);
    assert_eq!((count(&a, 1), count(&a, 2), count(&a, 3)), (1, 1, 1));
    let _ = std::fs::remove_dir_all(&dir);
}
