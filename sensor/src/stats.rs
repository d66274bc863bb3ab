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
}

impl RecordCounts {
    pub fn total(&self) -> u64 {
        self.flow + self.dns + self.http + self.tls + self.anomaly + self.alert
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
        json!({
            "packets": self.packets, "bytes": self.bytes,
            "decoder": {"ipv4": self.ipv4, "ipv6": self.ipv6, "tcp": self.tcp, "udp": self.udp, "icmp": self.icmp,
                        "other_ip": self.other_ip, "non_ip": self.non_ip, "invalid": self.invalid, "errors": errs,
                        "fragments": self.fragments, "reassembled": self.reassembled},
            "flow": {"created": self.flows_created, "timed_out": self.flows_timed_out, "evicted": self.flows_evicted,
                     "reused": self.flows_reused, "active": self.flows_active},
            "stream": {"gaps": self.stream_gaps, "gap_bytes": self.stream_gap_bytes},
            "records": {"flow": self.records.flow, "dns": self.records.dns, "http": self.records.http,
                        "tls": self.records.tls, "anomaly": self.records.anomaly, "alert": self.records.alert},
        })
    }
}

/// Pushes the growth of [`SensorStats`] into `metrics` counters:
/// `soc_sensor_packets_total`, `soc_sensor_bytes_total`, `soc_sensor_decode_errors_total{event}`,
/// `soc_sensor_fragments_total`, `soc_sensor_flows_created_total`,
/// `soc_sensor_flows_timed_out_total`, `soc_sensor_flows_evicted_total`,
/// `soc_sensor_stream_gaps_total`, `soc_sensor_records_total{type}` and the gauge
/// `soc_sensor_flows_active`; all labelled `sensor`.
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
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            let (c, p) = (now.decode_errors[i], l.decode_errors[i]);
            if c > p {
                metrics::counter!("soc_sensor_decode_errors_total", "sensor" => s.clone(), "event" => e.event())
                    .increment(c - p);
            }
        }
        for (t, c, p) in [
            ("flow", now.records.flow, l.records.flow),
            ("dns", now.records.dns, l.records.dns),
            ("http", now.records.http, l.records.http),
            ("tls", now.records.tls, l.records.tls),
            ("anomaly", now.records.anomaly, l.records.anomaly),
            ("alert", now.records.alert, l.records.alert),
        ] {
            if c > p {
                metrics::counter!("soc_sensor_records_total", "sensor" => s.clone(), "type" => t).increment(c - p);
            }
        }
        metrics::gauge!("soc_sensor_flows_active", "sensor" => s.clone()).set(now.flows_active as f64);
        self.last = now.clone();
    }
}
