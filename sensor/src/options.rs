//! Sensor settings.

use crate::app::stream::StreamConfig;
use crate::defrag::DefragConfig;
use crate::flow::FlowTimeouts;

/// Everything [`crate::Sensor::new`] needs. `Default` gives Suricata-like behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorOptions {
    /// Written in every record's `sensor` field.
    pub sensor_name: String,
    /// Written in every record's `segment` field.
    pub segment: String,
    /// Validate IPv4/TCP/UDP/ICMP checksums; invalid packets become decode anomalies.
    /// Off by default, like `suricata -k none` (captures with offloading have bad checksums).
    pub checksum_check: bool,
    /// With `checksum_check`: stop validating when more than 10% of the first 1,000 packets
    /// carry bad checksums, as captures taken with checksum offloading do (Suricata's
    /// `checksum-validation: auto`). Logged when it happens.
    pub checksum_auto: bool,
    /// Flow timeouts (Suricata's defaults).
    pub timeouts: FlowTimeouts,
    /// Most flows tracked at once; beyond it the flow nearest to its timeout is evicted
    /// (flow record with `reason: "forced"`) and counted.
    pub max_flows: usize,
    /// IP fragment reassembly limits.
    pub defrag: DefragConfig,
    /// TCP reassembly limits: memcap of this sensor instance (divide a total among workers
    /// with [`StreamConfig::per_instance`]), per-direction queue, depth, overlap check.
    pub stream: StreamConfig,
    /// Write an `anomaly` record (`type: "decode"`) for every undecodable packet.
    pub decode_anomalies: bool,
    /// Write `anomaly` records (`type: "applayer"`) for app-layer protocol errors.
    pub applayer_anomalies: bool,
    /// Parse app layers of TCP flows whose SYN was not seen (Suricata's `stream.midstream`).
    pub midstream: bool,
    /// Suricata's `packet-alert-max`: the alerts kept per packet (its transactions included),
    /// those of the rules first in the evaluation order; the others are discarded (counted in
    /// `sensor_alerts_discarded_total`), their actions still apply. 0: no limit.
    pub packet_alert_max: usize,
    /// Suricata's exception policy `pass-flow` or `bypass` for a TCP session picked up
    /// midstream (`stream.midstream-policy`, or the master `exception-policy`), with or without
    /// midstream pick-up: the rules do not inspect the flow.
    pub midstream_pass: bool,
    /// Suricata's `stream.inline`: SMB and DCERPC transactions are inspected at the packet
    /// completing them, not (IDS mode) at the next packet of their direction.
    pub stream_inline: bool,
    /// Compute Community ID (v1, seed 0) for flow-bound records.
    pub community_id: bool,
}

impl Default for SensorOptions {
    fn default() -> Self {
        SensorOptions {
            sensor_name: "sensor".to_string(),
            segment: "default".to_string(),
            checksum_check: false,
            checksum_auto: false,
            timeouts: FlowTimeouts::default(),
            max_flows: 1 << 20,
            defrag: DefragConfig::default(),
            stream: StreamConfig::default(),
            decode_anomalies: true,
            applayer_anomalies: true,
            midstream: false,
            midstream_pass: false,
            packet_alert_max: 15,
            stream_inline: false,
            community_id: true,
        }
    }
}
