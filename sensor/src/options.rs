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
    /// Suricata's `stream.async-oneside`: a TCP session of which only the client's side is
    /// seen is set up by the client's ACK ([`crate::flow::TcpConn::update_async_oneside`]).
    pub async_oneside: bool,
    /// Suricata's `stream.reassembly.memcap-policy`: what follows when the reassembly memcap
    /// refuses a segment's bytes.
    pub reassembly_memcap_policy: ExceptionPolicy,
    /// Suricata's QA option `--simulate-packet-tcp-reassembly-memcap=<n>`: the memcap refuses
    /// the payload of packet number `n` (counted from 1), to test the policy.
    pub simulate_reassembly_memcap_at: Option<u64>,
    /// Suricata's `stream.reassembly.urgent.policy: oob`: the urgent byte of a TCP segment is
    /// out of band, left out of the reassembled stream (the default, `inline`, keeps it).
    pub urgent_oob: bool,
    /// A capture filter (Suricata's BPF expression on its command line, [`crate::capture::bpf`]):
    /// the packets it refuses are not processed, as if not captured (counted in
    /// `soc_sensor_bpf_filtered_total`).
    pub bpf: Option<crate::capture::bpf::BpfFilter>,
    /// Suricata's `vlan.use-for-tracking`: the VLAN ids are part of the flow key (default);
    /// off, packets of one 5-tuple on different VLANs are one flow.
    pub vlan_tracking: bool,
}

/// Suricata's exception policies (`exception-policy`, `stream.reassembly.memcap-policy`, ...):
/// how a packet or flow the engine could not process as usual is treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExceptionPolicy {
    /// Carry on as if nothing happened.
    #[default]
    Ignore,
    /// The packet is dropped (IPS) and not inspected.
    DropPacket,
    /// The packet is not inspected.
    PassPacket,
    /// The packet and the rest of the flow are dropped (IPS) and not inspected.
    DropFlow,
    /// The rest of the flow is not inspected.
    PassFlow,
    /// The flow is bypassed: the rest of it is not inspected.
    Bypass,
    /// As `DropFlow`, and the sender is answered with a reset.
    Reject,
}

impl ExceptionPolicy {
    /// The policy of a setting value (`drop-flow`, `bypass`, ...).
    pub fn parse(s: &str) -> Option<ExceptionPolicy> {
        Some(match s.trim() {
            "ignore" => ExceptionPolicy::Ignore,
            "drop-packet" => ExceptionPolicy::DropPacket,
            "pass-packet" => ExceptionPolicy::PassPacket,
            "drop-flow" => ExceptionPolicy::DropFlow,
            "pass-flow" => ExceptionPolicy::PassFlow,
            "bypass" => ExceptionPolicy::Bypass,
            "reject" => ExceptionPolicy::Reject,
            _ => return None,
        })
    }

    /// Whether the rest of the flow is left uninspected (the current packet is never inspected).
    pub fn applies_to_flow(self) -> bool {
        matches!(
            self,
            ExceptionPolicy::DropFlow | ExceptionPolicy::PassFlow | ExceptionPolicy::Bypass | ExceptionPolicy::Reject
        )
    }
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
            async_oneside: false,
            reassembly_memcap_policy: ExceptionPolicy::Ignore,
            simulate_reassembly_memcap_at: None,
            urgent_oob: false,
            bpf: None,
            vlan_tracking: true,
        }
    }
}
