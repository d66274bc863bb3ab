//! Sensor counters, and their export through the `metrics` crate.
//!
//! Counting in the packet path is plain integer arithmetic on [`SensorStats`]; the
//! Prometheus-style counters are updated from it in batches by [`MetricsPublisher`] (the
//! offline runner does it per batch, live capture about once a second), so the hot path
//! never touches the metrics registry.

use crate::decode::DecodeError;
use serde_json::{Map, Value, json};

/// Records written, per type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub flow: u64,
    pub dns: u64,
    pub http: u64,
    pub tls: u64,
    pub anomaly: u64,
    pub alert: u64,
    /// Records of the protocols logged as [`crate::app::AppRecord::Log`].
    pub fileinfo: u64,
    pub smb: u64,
    pub dcerpc: u64,
    pub krb5: u64,
    pub ldap: u64,
    /// Those of the other protocols (ssh, smtp, ftp...).
    pub other_app: u64,
}

impl RecordCounts {
    pub fn total(&self) -> u64 {
        self.flow + self.dns + self.http + self.tls + self.anomaly + self.alert + self.app_logs()
    }

    /// The records logged as [`crate::app::AppRecord::Log`].
    pub fn app_logs(&self) -> u64 {
        self.fileinfo + self.smb + self.dcerpc + self.krb5 + self.ldap + self.other_app
    }

    /// Each count with its EVE type name (`other_app` for the rest of the app-layer logs): the
    /// one list the stats record and the metrics are written from.
    pub fn by_type(&self) -> [(&'static str, u64); 12] {
        [
            ("flow", self.flow),
            ("dns", self.dns),
            ("http", self.http),
            ("tls", self.tls),
            ("anomaly", self.anomaly),
            ("alert", self.alert),
            ("fileinfo", self.fileinfo),
            ("smb", self.smb),
            ("dcerpc", self.dcerpc),
            ("krb5", self.krb5),
            ("ldap", self.ldap),
            ("other_app", self.other_app),
        ]
    }

    /// Counts one [`crate::app::AppRecord::Log`] record of EVE type `event_type`.
    pub fn count_log(&mut self, event_type: &str) {
        match event_type {
            "fileinfo" => self.fileinfo += 1,
            "smb" => self.smb += 1,
            "dcerpc" => self.dcerpc += 1,
            "krb5" => self.krb5 += 1,
            "ldap" => self.ldap += 1,
            _ => self.other_app += 1,
        }
    }
}

/// Counters of a [`crate::Sensor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorStats {
    pub packets: u64,
    /// Bytes of all frames (captured length).
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other_ip: u64,
    /// Frames without IP (ARP, LLDP, ...).
    pub non_ip: u64,
    /// Frames that did not decode, in total and per [`DecodeError`] (index = `DecodeError::index`).
    pub invalid: u64,
    pub decode_errors: [u64; DecodeError::COUNT],
    pub fragments: u64,
    pub reassembled: u64,
    pub flows_created: u64,
    pub flows_timed_out: u64,
    /// Flows pushed out by the flow cap.
    pub flows_evicted: u64,
    /// TCP flows ended early by a new SYN on a closed session's tuple.
    pub flows_reused: u64,
    pub flows_active: u64,
    /// Stream holes reported to parsers, and the bytes they covered.
    pub stream_gaps: u64,
    pub stream_gap_bytes: u64,
    /// Segments overlapping unacknowledged or queued bytes, and those whose bytes differed
    /// (Suricata's `tcp.overlap`, `tcp.overlap_diff_data`).
    pub stream_overlaps: u64,
    pub stream_overlap_diff_data: u64,
    /// Segments not stored because the reassembly memcap was reached (`tcp.segment_memcap_drop`).
    pub stream_memcap_drops: u64,
    /// Stream directions that reached the reassembly depth (`tcp.stream_depth_reached`).
    pub stream_depth_reached: u64,
    /// Bytes held by reassembly now (`tcp.reassembly_memuse`).
    pub stream_memuse: u64,
    pub records: RecordCounts,
}

impl Default for SensorStats {
    fn default() -> Self {
        SensorStats {
            packets: 0,
            bytes: 0,
            ipv4: 0,
            ipv6: 0,
            tcp: 0,
            udp: 0,
            icmp: 0,
            other_ip: 0,
            non_ip: 0,
            invalid: 0,
            decode_errors: [0; DecodeError::COUNT],
            fragments: 0,
            reassembled: 0,
            flows_created: 0,
            flows_timed_out: 0,
            flows_evicted: 0,
            flows_reused: 0,
            flows_active: 0,
            stream_gaps: 0,
            stream_gap_bytes: 0,
            stream_overlaps: 0,
            stream_overlap_diff_data: 0,
            stream_memcap_drops: 0,
            stream_depth_reached: 0,
            stream_memuse: 0,
            records: RecordCounts::default(),
        }
    }
}

impl SensorStats {
    /// Non-zero decode errors by Suricata event name.
    pub fn decode_errors_by_name(&self) -> Vec<(&'static str, u64)> {
        DecodeError::ALL
            .iter()
            .zip(self.decode_errors.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| (e.event(), *n))
            .collect()
    }

    /// A JSON summary (for logs and the CLI).
    pub fn to_json(&self) -> Value {
        let mut errs = Map::new();
        for (k, v) in self.decode_errors_by_name() {
            errs.insert(k.to_string(), Value::from(v));
        }
        let records: Map<String, Value> =
            self.records.by_type().into_iter().map(|(t, n)| (t.to_string(), Value::from(n))).collect();
        json!({
            "packets": self.packets, "bytes": self.bytes,
            "decoder": {"ipv4": self.ipv4, "ipv6": self.ipv6, "tcp": self.tcp, "udp": self.udp, "icmp": self.icmp,
                        "other_ip": self.other_ip, "non_ip": self.non_ip, "invalid": self.invalid, "errors": errs,
                        "fragments": self.fragments, "reassembled": self.reassembled},
            "flow": {"created": self.flows_created, "timed_out": self.flows_timed_out, "evicted": self.flows_evicted,
                     "reused": self.flows_reused, "active": self.flows_active},
            "stream": {"gaps": self.stream_gaps, "gap_bytes": self.stream_gap_bytes, "overlaps": self.stream_overlaps,
                       "overlap_diff_data": self.stream_overlap_diff_data, "memcap_drops": self.stream_memcap_drops,
                       "depth_reached": self.stream_depth_reached, "memuse": self.stream_memuse},
            "records": records,
        })
    }
}

/// Pushes the growth of [`SensorStats`] into `metrics` counters:
/// `soc_sensor_packets_total`, `soc_sensor_bytes_total`, `soc_sensor_decode_errors_total{event}`,
/// `soc_sensor_fragments_total`, `soc_sensor_flows_created_total`,
/// `soc_sensor_flows_timed_out_total`, `soc_sensor_flows_evicted_total`,
/// `soc_sensor_stream_gaps_total`, `soc_sensor_stream_overlaps_total`,
/// `soc_sensor_stream_overlap_diff_data_total`, `soc_sensor_stream_memcap_drops_total`,
/// `soc_sensor_stream_depth_reached_total`, `soc_sensor_records_total{type}` and the gauges
/// `soc_sensor_flows_active` and `soc_sensor_stream_memuse_bytes`; all labelled `sensor`.
#[derive(Debug, Default)]
pub struct MetricsPublisher {
    last: SensorStats,
}

impl MetricsPublisher {
    pub fn publish(&mut self, sensor: &str, now: &SensorStats) {
        let s = sensor.to_string();
        let inc = |name: &'static str, cur: u64, prev: u64| {
            if cur > prev {
                metrics::counter!(name, "sensor" => s.clone()).increment(cur - prev);
            }
        };
        let l = &self.last;
        inc("soc_sensor_packets_total", now.packets, l.packets);
        inc("soc_sensor_bytes_total", now.bytes, l.bytes);
        inc("soc_sensor_fragments_total", now.fragments, l.fragments);
        inc("soc_sensor_flows_created_total", now.flows_created, l.flows_created);
        inc("soc_sensor_flows_timed_out_total", now.flows_timed_out, l.flows_timed_out);
        inc("soc_sensor_flows_evicted_total", now.flows_evicted, l.flows_evicted);
        inc("soc_sensor_stream_gaps_total", now.stream_gaps, l.stream_gaps);
        inc("soc_sensor_stream_overlaps_total", now.stream_overlaps, l.stream_overlaps);
        inc("soc_sensor_stream_overlap_diff_data_total", now.stream_overlap_diff_data, l.stream_overlap_diff_data);
        inc("soc_sensor_stream_memcap_drops_total", now.stream_memcap_drops, l.stream_memcap_drops);
        inc("soc_sensor_stream_depth_reached_total", now.stream_depth_reached, l.stream_depth_reached);
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            let (c, p) = (now.decode_errors[i], l.decode_errors[i]);
            if c > p {
                metrics::counter!("soc_sensor_decode_errors_total", "sensor" => s.clone(), "event" => e.event())
                    .increment(c - p);
            }
        }
        for ((t, c), (_, p)) in now.records.by_type().into_iter().zip(l.records.by_type()) {
            if c > p {
                metrics::counter!("soc_sensor_records_total", "sensor" => s.clone(), "type" => t).increment(c - p);
            }
        }
        metrics::gauge!("soc_sensor_flows_active", "sensor" => s.clone()).set(now.flows_active as f64);
        metrics::gauge!("soc_sensor_stream_memuse_bytes", "sensor" => s.clone()).set(now.stream_memuse as f64);
        self.last = now.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_app_log_type_is_counted_under_its_name_in_the_stats_record() {
        let mut st = SensorStats::default();
        for (i, t) in ["fileinfo", "smb", "dcerpc", "krb5", "ldap", "ssh"].into_iter().enumerate() {
            for _ in 0..=i {
                st.records.count_log(t);
            }
        }
        let j = st.to_json();
        let want = [("fileinfo", 1), ("smb", 2), ("dcerpc", 3), ("krb5", 4), ("ldap", 5), ("other_app", 6)];
        for (t, n) in want {
            assert_eq!(j["records"][t], n, "{t}");
        }
        assert_eq!(j["records"].as_object().unwrap().len(), st.records.by_type().len());
        assert_eq!(st.records.app_logs(), 21);
    }

    #[test]
    fn reassembly_counters_reach_prometheus_as_their_growth() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let mut p = MetricsPublisher::default();
        let mut s = SensorStats {
            stream_gaps: 7,
            stream_overlaps: 5,
            stream_overlap_diff_data: 2,
            stream_memcap_drops: 3,
            stream_depth_reached: 1,
            stream_memuse: 4096,
            ..Default::default()
        };
        metrics::with_local_recorder(&recorder, || {
            p.publish("s1", &s);
            s.stream_memcap_drops = 4;
            s.stream_memuse = 0;
            p.publish("s1", &s);
        });
        let text = handle.render();
        for line in [
            r#"soc_sensor_stream_gaps_total{sensor="s1"} 7"#,
            r#"soc_sensor_stream_overlaps_total{sensor="s1"} 5"#,
            r#"soc_sensor_stream_overlap_diff_data_total{sensor="s1"} 2"#,
            r#"soc_sensor_stream_memcap_drops_total{sensor="s1"} 4"#,
            r#"soc_sensor_stream_depth_reached_total{sensor="s1"} 1"#,
            r#"soc_sensor_stream_memuse_bytes{sensor="s1"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in:\n{text}");
        }
        assert_eq!(s.to_json()["stream"]["memcap_drops"], 4);
    }
}
