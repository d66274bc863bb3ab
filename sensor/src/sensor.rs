//! The sensor core: decode → defragment → flow → app layer → EVE records.

use crate::app::detect::{Probe, probe_udp};
use crate::app::stream::Reassembly;
use crate::app::{AppProto, AppRecord, AppSession, Direction};
use crate::decode::{self, DecodeError, DecodeOptions, Decoded, LinkType, Packet, Transport, ipproto, tcp_flags};
use crate::defrag::{Defrag, DefragOutcome};
use crate::flow::{EndReason, Flow, FlowState, FlowTable, TcpState};
use crate::options::ExceptionPolicy;
use crate::options::SensorOptions;
use crate::stats::{MetricsPublisher, SensorStats};
use serde_json::{Map, Value};
use soc_model::{Anomaly, Event, EventType, Timestamp};
use std::net::IpAddr;

/// EVE protocol name of an IP protocol number.
pub fn proto_name(p: u8) -> String {
    match p {
        ipproto::TCP => "TCP".into(),
        ipproto::UDP => "UDP".into(),
        ipproto::ICMP => "ICMP".into(),
        ipproto::ICMPV6 => "IPv6-ICMP".into(),
        ipproto::SCTP => "SCTP".into(),
        2 => "IGMP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        89 => "OSPF".into(),
        103 => "PIM".into(),
        112 => "VRRP".into(),
        n => n.to_string(),
    }
}

/// The network sensor: feed it frames, collect [`Event`]s.
///
/// ```
/// use soc_sensor::{Sensor, SensorOptions, decode::LinkType, synth};
/// use soc_model::Timestamp;
/// let mut sensor = Sensor::new(SensorOptions { sensor_name: "s1".into(), segment: "lab".into(), ..Default::default() });
/// let c = synth::Host::v4([10, 0, 0, 1]);
/// let s = synth::Host::v4([10, 0, 0, 53]);
/// let mut out = Vec::new();
/// let q = synth::udp_frame(&c, 40000, &s, 53, &synth::dns_query(1, "example.org", 1));
/// sensor.process(Timestamp::from_unix_micros(1_700_000_000_000_000), LinkType::Ethernet, &q, &mut out);
/// sensor.flush_all(&mut out);
/// assert_eq!(out.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["dns", "flow"]);
/// assert!(out.iter().all(|e| e.sensor.as_deref() == Some("s1") && e.segment.as_deref() == Some("lab")));
/// ```
/// Packets the checksum auto mode looks at before deciding.
const CHECKSUM_AUTO_PACKETS: u32 = 1000;

pub struct Sensor {
    opts: SensorOptions,
    dopts: DecodeOptions,
    table: FlowTable,
    defrag: Defrag,
    stats: SensorStats,
    /// Packet time clock (max seen), unix micros.
    clock: i64,
    pkt_no: u64,
    scratch_flows: Vec<Flow>,
    scratch_recs: Vec<AppRecord>,
    publisher: MetricsPublisher,
    /// Checksum auto mode: packets seen and bad checksums among the first ones.
    ck_seen: u32,
    ck_bad: u32,
    /// Signature engine; `None`: no rules loaded.
    detector: Option<std::sync::Arc<crate::detect::Detector>>,
    /// TCP reassembly limits, memory and counters shared by this sensor's streams.
    reassembly: std::sync::Arc<Reassembly>,
    /// Rule reload: the slot a newer rule set is published in, and the generation in use.
    rule_slot: Option<(std::sync::Arc<crate::reload::RuleSlot>, u64)>,
    /// FTP data connections announced on control channels, not yet opened.
    ftp_expect: crate::app::ftp::Expectations,
    /// `tag`: the sessions and hosts whose packets are tagged after an alert.
    tagger: crate::tag::Tagger,
}

impl Sensor {
    pub fn new(opts: SensorOptions) -> Sensor {
        let mut table = FlowTable::new(opts.timeouts, opts.max_flows);
        table.vlan_tracking = opts.vlan_tracking;
        let defrag = Defrag::new(opts.defrag);
        let reassembly = Reassembly::new(opts.stream);
        Sensor {
            reassembly,
            dopts: DecodeOptions { checksum_check: opts.checksum_check },
            opts,
            table,
            defrag,
            stats: SensorStats::default(),
            clock: i64::MIN,
            pkt_no: 0,
            scratch_flows: Vec::new(),
            scratch_recs: Vec::new(),
            publisher: MetricsPublisher::default(),
            detector: None,
            rule_slot: None,
            ftp_expect: Default::default(),
            tagger: Default::default(),
            ck_seen: 0,
            ck_bad: 0,
        }
    }

    pub fn options(&self) -> &SensorOptions {
        &self.opts
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SensorStats {
        let mut s = self.stats.clone();
        let t = &self.table.stats;
        s.flows_created = t.created;
        s.flows_timed_out = t.timed_out;
        s.flows_evicted = t.evicted;
        s.flows_reused = t.reused;
        s.flows_active = self.table.len() as u64;
        s.fragments = self.defrag.stats.fragments;
        s.reassembled = self.defrag.stats.reassembled;
        let r = self.reassembly.counters();
        s.stream_gaps = r.gaps;
        s.stream_gap_bytes = r.gap_bytes;
        s.stream_overlaps = r.overlaps;
        s.stream_overlap_diff_data = r.overlap_diff_data;
        s.stream_memcap_drops = r.memcap_drops;
        s.stream_depth_reached = r.depth_reached;
        s.stream_memuse = r.memuse;
        s
    }

    /// Updates the `metrics` counters with what happened since the last call.
    pub fn publish_metrics(&mut self) {
        let s = self.stats();
        self.publisher.publish(&self.opts.sensor_name, &s);
    }

    /// Number of flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.table.len()
    }

    /// Inspects packets and transactions with these rules; alerts are written as EVE
    /// `alert` records next to the others.
    pub fn with_detector(mut self, detector: std::sync::Arc<crate::detect::Detector>) -> Sensor {
        self.detector = (!detector.is_empty()).then_some(detector);
        self
    }

    /// Inspects with the rule set of `slot`, and from the next packet on with every set
    /// published there later (see [`crate::reload`]).
    pub fn with_rule_slot(mut self, slot: std::sync::Arc<crate::reload::RuleSlot>) -> Sensor {
        let (generation, detector) = slot.current();
        self.detector = detector.filter(|d| !d.is_empty());
        self.rule_slot = Some((slot, generation));
        self
    }

    /// Switches to a rule set published since the last packet, moving the detection state.
    fn take_new_rules(&mut self) {
        let Some((slot, seen)) = &mut self.rule_slot else { return };
        if slot.generation() == *seen {
            return;
        }
        let (generation, detector) = slot.current();
        *seen = generation;
        tracing::info!(
            sensor = %self.opts.sensor_name,
            generation,
            packets = self.stats.packets,
            "sensor switched to the reloaded rules"
        );
        let detector = detector.filter(|d| !d.is_empty());
        if let (Some(old), Some(new)) = (&self.detector, &detector) {
            new.take_state_from(old);
        }
        self.detector = detector;
    }

    /// Processes one frame captured at `ts`. Records produced (app-layer records, flow
    /// records of flows that timed out by `ts`, anomalies) are appended to `out`.
    pub fn process(&mut self, ts: Timestamp, link: LinkType, frame: &[u8], out: &mut Vec<Event>) {
        if self.rule_slot.is_some() {
            self.take_new_rules();
        }
        // a capture filter: the packets it refuses are not seen at all (the frame is decoded
        // twice only when a filter is set)
        if let Some(filter) = &self.opts.bpf
            && !matches!(decode::decode(link, frame, self.dopts), Ok(Decoded::Ip(p)) if filter.matches(&p))
        {
            metrics::counter!("soc_sensor_bpf_filtered_total").increment(1);
            return;
        }
        self.pkt_no += 1;
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        let now = ts.unix_micros();
        if now > self.clock {
            self.clock = now;
            self.expire(out);
        }
        let decoded = decode::decode(link, frame, self.dopts);
        if self.opts.checksum_auto && self.dopts.checksum_check && self.ck_seen < CHECKSUM_AUTO_PACKETS {
            self.checksum_auto(&decoded);
        }
        match decoded {
            Err(e) => {
                self.decode_error(e, ts, out);
                // a packet that decodes up to its IP layer is still inspected (decode-event)
                if self.detector.is_some()
                    && decode::DecodeEvent::of_error(e).is_some()
                    && let Some(p) = decode::decode_invalid(link, frame, self.dopts)
                {
                    self.flowless_alerts(&p, ts, out);
                }
                // a packet failing at its IP header: the decode-event rules, without addresses
                if let Some(ev) = decode::DecodeEvent::of_ip_error(e)
                    && let Some(det) = &self.detector
                {
                    for h in det.inspect_addressless(ev.bit()) {
                        self.stats.records.alert += 1;
                        let mut a = self.base_event(EventType::Alert, ts.unix_micros());
                        a.extra.insert("pcap_cnt".into(), Value::from(self.pkt_no));
                        a.alert = Some(crate::alerts::alert_payload(&h));
                        out.push(a);
                    }
                }
            }
            Ok(Decoded::NonIp { .. }) => self.stats.non_ip += 1,
            Ok(Decoded::Ip(p)) => {
                if p.frag.is_some() {
                    self.fragment(&p, frame.len(), ts, out);
                } else {
                    self.ip_or_tunnel(&p, frame.len(), ts, out, 0);
                }
            }
        }
    }

    /// A packet, and for a tunnel (Geneve, GRE: [`decode::tunnel`]) the packet it carries,
    /// processed after it as a packet of its own (up to three levels). A GRE packet that is
    /// decapsulated is inspected without a flow (Suricata tracks no flow for it).
    fn ip_or_tunnel(&mut self, p: &Packet<'_>, frame_len: usize, ts: Timestamp, out: &mut Vec<Event>, depth: u8) {
        let Some(inner) = (if depth < 3 { decode::tunnel::inner(p) } else { None }) else {
            self.ip_packet(p, frame_len, ts, out);
            return;
        };
        if p.proto == 47 {
            self.flowless_alerts(p, ts, out);
        } else {
            self.ip_packet(p, frame_len, ts, out);
        }
        metrics::counter!("soc_sensor_tunnel_packets_total").increment(1);
        let (decoded, len) = match inner {
            decode::tunnel::Inner::Ip(b) => (decode::decode_ip(b, p.vlan, self.dopts).map(Decoded::Ip), b.len()),
            decode::tunnel::Inner::Ethernet(b) => (decode::decode_link(LinkType::Ethernet, b, self.dopts), b.len()),
        };
        match decoded {
            Ok(Decoded::Ip(q)) if q.frag.is_some() => self.fragment(&q, len, ts, out),
            Ok(Decoded::Ip(q)) => self.ip_or_tunnel(&q, len, ts, out, depth + 1),
            Ok(Decoded::NonIp { .. }) => self.stats.non_ip += 1,
            Err(e) => self.decode_error(e, ts, out),
        }
    }

    /// Advances the packet clock without a packet (live capture when the link is quiet), so
    /// flows time out on time.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if self.rule_slot.is_some() {
            self.take_new_rules();
        }
        let n = now.unix_micros();
        if n > self.clock {
            self.clock = n;
            self.expire(out);
        }
    }

    /// Ends every flow (`reason: "shutdown"`) and writes their records. Call at the end of a
    /// capture; the sensor can be used again afterwards.
    pub fn flush_all(&mut self, out: &mut Vec<Event>) {
        let now = if self.clock == i64::MIN { 0 } else { self.clock };
        let flows = self.table.drain();
        for f in flows {
            self.finish_flow(f, EndReason::Shutdown, now, out);
        }
        self.defrag.expire(i64::MAX);
        // `dataset ... save <file>`: the sets are written when the capture ends (as Suricata at exit)
        if let Some(det) = &self.detector {
            det.save_datasets();
        }
    }

    fn expire(&mut self, out: &mut Vec<Event>) {
        if self.table.next_deadline().is_some_and(|d| d <= self.clock) {
            let mut flows = std::mem::take(&mut self.scratch_flows);
            self.table.expire(self.clock, &mut flows);
            for f in flows.drain(..) {
                self.finish_flow(f, EndReason::Timeout, self.clock, out);
            }
            self.scratch_flows = flows;
        }
    }

    fn base_event(&self, et: EventType, micros: i64) -> Event {
        let mut e = Event::new(et, Timestamp::from_unix_micros(micros));
        e.sensor = Some(self.opts.sensor_name.clone());
        e.segment = Some(self.opts.segment.clone());
        e
    }

    fn anomaly_event(&mut self, micros: i64, kind: &str, event: &str, pkt: Option<&Packet<'_>>) -> Event {
        let mut e = self.base_event(EventType::Anomaly, micros);
        e.extra.insert("pcap_cnt".into(), Value::from(self.pkt_no));
        if let Some(p) = pkt {
            e.src_ip = Some(p.src.to_string());
            e.dest_ip = Some(p.dst.to_string());
            e.proto = Some(proto_name(p.proto));
            e.ip_v = Some(p.ip_v);
        }
        e.anomaly = Some(Anomaly { kind: Some(kind.into()), event: Some(event.into()), ..Default::default() });
        self.stats.records.anomaly += 1;
        e
    }

    fn checksum_auto(&mut self, decoded: &Result<Decoded<'_>, DecodeError>) {
        self.ck_seen += 1;
        if let Err(e) = decoded
            && e.event().ends_with("invalid_checksum")
        {
            self.ck_bad += 1;
        }
        if self.ck_seen == CHECKSUM_AUTO_PACKETS && self.ck_bad * 10 > self.ck_seen {
            self.dopts.checksum_check = false;
            metrics::counter!("soc_sensor_checksum_auto_disabled_total").increment(1);
            tracing::warn!(
                sensor = %self.opts.sensor_name,
                bad = self.ck_bad,
                of = self.ck_seen,
                "over 10% of the first packets have invalid checksums (checksum offloading?): checksum validation switched off"
            );
        }
    }

    fn decode_error(&mut self, e: DecodeError, ts: Timestamp, out: &mut Vec<Event>) {
        self.stats.invalid += 1;
        self.stats.decode_errors[e.index()] += 1;
        if self.opts.decode_anomalies {
            let ev = self.anomaly_event(ts.unix_micros(), "decode", e.event(), None);
            out.push(ev);
        }
    }

    /// Alerts of a packet inspected without a flow ([`crate::alerts::flowless_packet_hits`]).
    fn flowless_alerts(&mut self, p: &Packet<'_>, ts: Timestamp, out: &mut Vec<Event>) {
        let Some(det) = &self.detector else { return };
        let hits = crate::alerts::flowless_packet_hits(det, p, ts.unix_micros());
        for h in hits {
            self.stats.records.alert += 1;
            let mut e = self.base_event(EventType::Alert, ts.unix_micros());
            e.src_ip = Some(ip_text(p.src));
            e.dest_ip = Some(ip_text(p.dst));
            if matches!(p.transport, Transport::Tcp(_) | Transport::Udp(_)) {
                e.src_port = Some(p.src_port());
                e.dest_port = Some(p.dst_port());
            }
            e.proto = Some(proto_name(p.proto));
            e.ip_v = Some(p.ip_v);
            e.extra.insert("pcap_cnt".into(), Value::from(self.pkt_no));
            e.alert = Some(crate::alerts::alert_payload(&h));
            out.push(e);
        }
    }

    fn fragment(&mut self, p: &Packet<'_>, frame_len: usize, ts: Timestamp, out: &mut Vec<Event>) {
        let mut overlap = false;
        let outcome = self.defrag.add(p, self.clock, &mut overlap);
        // a fragment is inspected (without a flow) when it carries a decoder event
        let mut events = p.events;
        if overlap {
            let (name, ev) = if p.ip_v == 6 {
                ("ipv6.frag_overlap", decode::DecodeEvent::Ipv6FragOverlap)
            } else {
                ("ipv4.frag_overlap", decode::DecodeEvent::Ipv4FragOverlap)
            };
            events |= ev.bit();
            if self.opts.decode_anomalies {
                let ev = self.anomaly_event(ts.unix_micros(), "decode", name, Some(p));
                out.push(ev);
            }
        }
        if let DefragOutcome::Dropped(crate::defrag::DefragEvent::PktTooLarge { ip_v }) = outcome {
            events |= if ip_v == 6 {
                decode::DecodeEvent::Ipv6FragPktTooLarge.bit()
            } else {
                decode::DecodeEvent::Ipv4FragPktTooLarge.bit()
            };
        }
        if events != 0 && self.detector.is_some() {
            let flagged = Packet { events, ..*p };
            self.flowless_alerts(&flagged, ts, out);
        }
        match outcome {
            DefragOutcome::Pending => {}
            DefragOutcome::Dropped(ev) => {
                if self.opts.decode_anomalies {
                    let e = self.anomaly_event(ts.unix_micros(), "decode", ev.event(), Some(p));
                    out.push(e);
                }
            }
            DefragOutcome::Reassembled(buf) => {
                let link_overhead = frame_len.saturating_sub(p.ip_header.len() + p.ip_payload.len());
                match decode::decode_ip(&buf, p.vlan, self.dopts) {
                    Ok(mut whole) => {
                        whole.vlan_len = p.vlan_len;
                        self.ip_packet(&whole, buf.len() + link_overhead, ts, out)
                    }
                    Err(e) => self.decode_error(e, ts, out),
                }
            }
        }
    }

    fn ip_packet(&mut self, p: &Packet<'_>, frame_len: usize, ts: Timestamp, out: &mut Vec<Event>) {
        let now = ts.unix_micros();
        if p.ip_v == 4 {
            self.stats.ipv4 += 1;
        } else {
            self.stats.ipv6 += 1;
        }
        match p.transport {
            Transport::Tcp(_) => self.stats.tcp += 1,
            Transport::Udp(_) => self.stats.udp += 1,
            Transport::Icmp(_) | Transport::Icmpv6(_) => self.stats.icmp += 1,
            _ => self.stats.other_ip += 1,
        }
        let mut evicted = std::mem::take(&mut self.scratch_flows);
        let mut lk = self.table.lookup_or_create(p, now, self.pkt_no, &mut evicted);
        // A new SYN on a closed TCP session's tuple starts a new flow.
        if !lk.created
            && let Transport::Tcp(t) = p.transport
            && t.flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN
            && self
                .table
                .get_mut(lk.idx)
                .is_some_and(|f| f.tcp.state == TcpState::Closed && f.tcp.isn[0] != Some(t.seq))
            && let Some(old) = self.table.remove(lk.idx)
        {
            self.table.stats.reused += 1;
            evicted.push(old);
            lk = self.table.lookup_or_create(p, now, self.pkt_no, &mut evicted);
        }
        for f in evicted.drain(..) {
            self.finish_flow(f, EndReason::Forced, self.clock.max(now), out);
        }
        self.scratch_flows = evicted;

        let midstream = self.opts.midstream;
        let mut recs = std::mem::take(&mut self.scratch_recs);
        let Some(f) = self.table.get_mut(lk.idx) else {
            self.scratch_recs = recs;
            return;
        };
        let dir = lk.dir;
        let d = dir.index();
        f.pkts[d] += 1;
        f.bytes[d] += frame_len as u64;
        // Suricata's exception policy for a TCP session picked up midstream (pass-flow,
        // bypass): the rules do not inspect the flow
        if self.opts.midstream_pass
            && f.pkts[0] + f.pkts[1] == 1
            && matches!(p.transport, Transport::Tcp(t) if !t.has(tcp_flags::SYN) || t.has(tcp_flags::ACK))
            && let Some(det) = &self.detector
        {
            det.pass_flow(f.id);
        }
        if now > f.last {
            f.last = now;
        }
        let old_state = f.state;
        let old_app_proto = f.app_proto;
        let proto_before = f.app_proto;
        // a finished parser is dropped after its last records are inspected (tls.certs)
        let mut app_done = false;
        // IPS mode: the segment's payload normalized to the bytes accepted first, and the
        // stream around it for the stream rules (see crate::app::inline)
        let mut ips_payload: Option<Vec<u8>> = None;
        let mut ips_window: Option<Vec<u8>> = None;
        // the reassembly memcap refused this segment and its exception policy leaves the
        // packet uninspected
        let mut memcap_skip = false;
        match p.transport {
            Transport::Tcp(t) => {
                // a segment the session setup ignores (Suricata's SYN_SENT checks) reaches
                // neither the state nor the streams
                let in_session = f.tcp.accepts(dir, t.flags, t.seq)
                    && f.tcp.accepts_in_syn_recv(
                        dir,
                        t.flags,
                        t.seq,
                        t.ack,
                        self.detector.as_ref().is_some_and(|d| d.is_ips()),
                    );
                f.tcp.events = 0;
                f.tcp.restarted = false;
                if in_session {
                    f.tcp.update(dir, t.flags, t.seq);
                    if self.opts.async_oneside {
                        f.tcp.update_async_oneside(dir, t.flags, t.seq, midstream);
                    }
                    if midstream {
                        f.tcp.update_midstream(dir, t.flags, t.seq);
                    }
                }
                if f.tcp.restarted {
                    // a client SYN with a new sequence number before the handshake completed:
                    // the streams start over from it
                    f.app = None;
                    f.raw = None;
                }
                // Like Suricata, flags are those of the TCP session (none without a SYN).
                if f.tcp.has_session() || midstream {
                    f.tcp_flags[d] |= t.flags;
                }
                f.state = match f.tcp.state {
                    TcpState::None | TcpState::SynSent | TcpState::SynRecv => FlowState::New,
                    TcpState::Established | TcpState::FinWait1 => FlowState::Established,
                    TcpState::Closed => FlowState::Closed,
                };
                if f.app.is_none() && f.app_proto == AppProto::Unknown && (f.tcp.has_session() || midstream) {
                    let mut app = Box::new(AppSession::new(&self.reassembly));
                    // an FTP data connection announced on its control channel
                    if !self.ftp_expect.is_empty()
                        && let Some(info) = self.ftp_expect.take(f.client, f.server, f.server_port, now)
                    {
                        app.start_ftp_data(info);
                        f.app_proto = AppProto::FtpData;
                    }
                    f.app = Some(app);
                }
                // the segment as the streams see it: with the urgent policy `oob`, urgent bytes
                // are out of band (see urgent_oob)
                let (seg_seq, seg_ack, oob_payload) = if self.opts.urgent_oob {
                    urgent_oob(&mut f.tcp.urg_removed, d, t, p.ip_payload, p.payload)
                } else {
                    (t.seq, t.ack, None)
                };
                // the QA option forcing a reassembly memcap refusal: the bytes are lost
                let simulated = self.opts.simulate_reassembly_memcap_at == Some(self.pkt_no) && !p.payload.is_empty();
                let seg_payload: &[u8] = if simulated { &[] } else { oob_payload.as_deref().unwrap_or(p.payload) };
                if in_session
                    && (f.tcp.has_session() || midstream)
                    && self.detector.as_ref().is_some_and(|d| d.is_ips())
                {
                    let side = &mut f.inline.get_or_insert_with(Default::default).sides[d];
                    ips_payload = side.on_segment(seg_seq, t.has(tcp_flags::SYN), seg_payload);
                    if !seg_payload.is_empty() {
                        ips_window = side.window(seg_seq, seg_payload.len());
                    }
                }
                // raw stream inspection by the rule engine (see crate::app::raw)
                if in_session
                    && self.detector.as_ref().is_some_and(|d| !d.is_ips())
                    && (f.tcp.has_session() || midstream)
                {
                    let ack = t.has(tcp_flags::ACK).then_some(seg_ack);
                    let raw = f.raw.get_or_insert_with(Default::default);
                    raw.on_segment(dir, seg_seq, ack, t.has(tcp_flags::SYN), seg_payload);
                    if f.tcp.async_oneside && !seg_payload.is_empty() {
                        // one side only (stream.async-oneside): no ACK will come for its
                        // bytes, they count as acknowledged as they arrive (Suricata's ASYNC
                        // session)
                        raw.side(dir).on_ack(seg_seq.wrapping_add(seg_payload.len() as u32));
                    }
                }
                if in_session && let Some(app) = f.app.as_mut() {
                    if let Some(p) = app.parser.as_mut() {
                        p.take_deferred(dir, &mut recs);
                    }
                    let ack = t.has(tcp_flags::ACK).then_some(seg_ack);
                    let gaps_before = app.streams[0].gaps.wrapping_add(app.streams[1].gaps);
                    let policy = self.opts.reassembly_memcap_policy;
                    let drops_before = (policy != ExceptionPolicy::Ignore).then(|| self.reassembly.memcap_drops());
                    app.on_tcp_segment(
                        dir,
                        seg_seq,
                        ack,
                        t.has(tcp_flags::SYN),
                        t.has(tcp_flags::FIN),
                        t.has(tcp_flags::RST),
                        seg_payload,
                        &mut recs,
                    );
                    if simulated || drops_before.is_some_and(|n| self.reassembly.memcap_drops() != n) {
                        // Suricata's stream.reassembly.memcap-policy
                        metrics::counter!("soc_sensor_stream_memcap_policy_applied_total").increment(1);
                        tracing::debug!(flow_id = f.id, ?policy, "reassembly memcap: exception policy applied");
                        if policy != ExceptionPolicy::Ignore {
                            memcap_skip = true;
                            if policy.applies_to_flow()
                                && let Some(det) = &self.detector
                            {
                                det.pass_flow(f.id);
                            }
                        }
                    }
                    if app.streams[0].gaps.wrapping_add(app.streams[1].gaps) != gaps_before {
                        // the reassembly skipped a hole with this segment (Suricata's
                        // `stream.reassembly_seq_gap`)
                        f.tcp.events |= crate::decode::DecodeEvent::StreamReassemblySeqGap.bit();
                    }
                    if self.opts.stream_inline
                        && let Some(p) = app.parser.as_mut()
                    {
                        p.take_deferred(dir, &mut recs);
                        p.take_deferred(dir.other(), &mut recs);
                    }
                    if app.proto != AppProto::Unknown {
                        f.app_proto = app.proto;
                    }
                    if f.app_proto == AppProto::Ftp {
                        for e in app.take_ftp_expectations() {
                            self.ftp_expect.add(f.client, f.server, e, now);
                        }
                    }
                    if app.done {
                        for (g, s) in f.stream_gap.iter_mut().zip(&app.streams) {
                            *g |= s.has_gap();
                        }
                        // held SMB/DCERPC transactions are inspected before the parser goes
                        if let Some(p) = app.parser.as_mut() {
                            p.take_deferred(dir, &mut recs);
                            p.take_deferred(dir.other(), &mut recs);
                        }
                        app_done = true;
                    }
                }
            }
            Transport::Udp(_) => {
                if f.pkts[1 - d] > 0 {
                    f.state = FlowState::Established;
                }
                if !p.payload.is_empty() {
                    if matches!(f.app_proto, AppProto::Unknown | AppProto::Failed) && !f.udp_tried[d] {
                        f.udp_tried[d] = true;
                        match probe_udp(dir, p.payload) {
                            Probe::Match(proto) => f.app_proto = proto,
                            _ => {
                                if f.app_proto == AppProto::Unknown {
                                    f.app_proto = AppProto::Failed;
                                }
                            }
                        }
                    }
                    if f.app_proto == AppProto::Dns {
                        f.dns_udp.on_datagram(dir, p.payload, &mut recs);
                    }
                    // CLDAP: each datagram is one LDAP message, logged as over TCP
                    if f.app_proto == AppProto::Ldap {
                        let app = f.app.get_or_insert_with(|| Box::new(AppSession::new(&self.reassembly)));
                        if let crate::app::Parser::Ldap(l) =
                            app.parser.get_or_insert_with(|| crate::app::Parser::Ldap(Box::default()))
                        {
                            crate::app::AppParser::on_data(l.as_mut(), dir, p.payload, &mut recs);
                        }
                    }
                }
            }
            Transport::Icmp(h) | Transport::Icmpv6(h) => {
                if f.pkts[1 - d] > 0 {
                    f.state = FlowState::Established;
                }
                if f.icmp[d].is_none() {
                    f.icmp[d] = Some((h.icmp_type, h.code));
                }
            }
            _ => {
                if f.pkts[1 - d] > 0 {
                    f.state = FlowState::Established;
                }
            }
        }
        // `app-layer-protocol` state: only when something can change (no cost per packet else)
        if f.app_proto != old_app_proto
            || f.alproto.detection_done
            || (!p.payload.is_empty() && f.app_proto != AppProto::Unknown && !f.alproto.side_known(dir))
        {
            crate::app::track_alproto(&mut f.alproto, f.app_proto, dir, !p.payload.is_empty());
        }
        let state_changed = f.state != old_state;
        // a completed HTTP request or response asks for the raw stream of its side to be
        // inspected once acknowledged (Suricata's TRIGGER_RAW)
        if let Some(raw) = f.raw.as_mut() {
            if f.app_proto == AppProto::Dcerpc {
                raw.scan_dcerpc();
            }
            for r in &recs {
                match r {
                    AppRecord::HttpRequest { .. } => raw.side(Direction::ToServer).trigger(),
                    AppRecord::TriggerRaw(d) => raw.side(*d).trigger(),
                    AppRecord::Http { .. } => raw.side(Direction::ToClient).trigger(),
                    _ => {}
                }
            }
        }
        let alerts_from = out.len();
        if !recs.is_empty() {
            let pkt_no = self.pkt_no;
            // Re-borrow: records need the flow's identity.
            let idx = lk.idx;
            // (straight into `out`: a vector of records per packet cost an allocation of
            // kilobytes on every SMB/DCERPC packet)
            if let Some(f) = self.table.get_mut(idx) {
                for r in recs.drain(..) {
                    // SMB and DCERPC transactions: inspected, not logged
                    if let AppRecord::Inspect(t) = &r {
                        if let Some(det) = &self.detector {
                            inspect_alerts(&self.opts, det, f, t, now, Some(pkt_no), &mut self.stats, out);
                        }
                        continue;
                    }
                    if let Some(e) = app_event(&self.opts, f, r, now, Some(pkt_no), &mut self.stats) {
                        if let Some(det) = &self.detector {
                            for h in crate::alerts::transaction_hits(det, f, &e) {
                                f.alerted = true;
                                self.stats.records.alert += 1;
                                out.push(crate::alerts::alert_from_transaction(&e, &h));
                            }
                        }
                        if !crate::alerts::request_only(&e) {
                            out.push(e);
                        }
                    }
                }
            }
        }
        if app_done && let Some(f) = self.table.get_mut(lk.idx) {
            f.app = None;
        }
        recs.clear();
        self.scratch_recs = recs;
        let raw_ready = self.table.get_mut(lk.idx).is_some_and(|f| {
            let closing = crate::alerts::closing(f);
            f.raw.as_mut().is_some_and(|r| r.side(dir).ready(closing))
        });
        // `tag`: the packet counted against the tags of its flow and hosts (before its own
        // alerts start new ones)
        let tagged = !self.tagger.is_empty()
            && self
                .table
                .get_mut(lk.idx)
                .is_some_and(|f| self.tagger.tagged(f.id, p.src, p.dst, now, frame_len as u64));
        if let Some(det) = &self.detector
            && !memcap_skip
            && (!p.payload.is_empty()
                || raw_ready
                || det.matches_empty_packets()
                || matches!(p.transport, Transport::Icmp(_) | Transport::Icmpv6(_)))
            && let Some(f) = self.table.get_mut(lk.idx)
        {
            let mut raw = f.raw.take();
            // IDS mode (not inline): the segment that made the TCP flow's protocol known is inspected as of
            // an unknown protocol (Suricata hands the data to protocol detection once the peer
            // acknowledged it, after this packet's inspection)
            let detected_now = proto_before == AppProto::Unknown
                && f.app_proto != AppProto::Unknown
                && !self.opts.stream_inline
                && !det.is_ips()
                // (one-sided: Suricata's ASYNC session hands its data over without an ACK)
                && !f.tcp.async_oneside
                && !p.payload.is_empty()
                && matches!(p.transport, Transport::Tcp(_));
            let proto = f.app_proto;
            if detected_now {
                f.app_proto = AppProto::Unknown;
            }
            let normalized;
            let pkt = match &ips_payload {
                Some(b) => {
                    normalized = Packet { payload: b, ..*p };
                    &normalized
                }
                None => p,
            };
            let hits =
                crate::alerts::packet_hits(det, f, pkt, dir, raw.as_mut().map(|r| r.side(dir)), ips_window.as_deref());
            f.app_proto = proto;
            f.raw = raw;
            for h in hits {
                f.alerted = true;
                self.stats.records.alert += 1;
                let mut e = envelope(&self.opts, f, EventType::Alert, now, dir == Direction::ToClient);
                e.app_proto = f.app_proto.name().map(str::to_string);
                e.extra.insert("pcap_cnt".into(), Value::from(self.pkt_no));
                e.extra.insert(
                    "direction".into(),
                    Value::String(if dir == Direction::ToClient { "to_client" } else { "to_server" }.into()),
                );
                e.alert = Some(crate::alerts::alert_payload(&h));
                out.push(e);
                if let Some(t) = h.tag {
                    self.tagger.add(t, (h.gid, h.sid), f.id, p.src, p.dst, now, frame_len as u64);
                }
            }
        }
        if tagged
            && !out[alerts_from..].iter().any(|e| e.event_type == EventType::Alert)
            && let Some(f) = self.table.get_mut(lk.idx)
        {
            // a tagged packet without an alert of its own: Suricata's EVE `packet` record
            let mut e = envelope(&self.opts, f, EventType::Other("packet".into()), now, dir == Direction::ToClient);
            e.extra.insert("pcap_cnt".into(), Value::from(self.pkt_no));
            out.push(e);
        }
        if let Some(det) = &self.detector {
            let discarded = cap_packet_alerts(det, self.opts.packet_alert_max, out, alerts_from);
            self.stats.records.alert = self.stats.records.alert.saturating_sub(discarded);
        }
        if state_changed {
            self.table.rearm(lk.idx);
        }
    }

    fn finish_flow(&mut self, mut f: Flow, reason: EndReason, now: i64, out: &mut Vec<Event>) {
        let alerts_from = out.len();
        if let Some(mut app) = f.app.take() {
            let mut recs = Vec::new();
            app.on_close(&mut recs);
            if app.proto != AppProto::Unknown {
                f.app_proto = app.proto;
            }
            for (g, s) in f.stream_gap.iter_mut().zip(&app.streams) {
                *g |= s.has_gap();
            }
            // the parser stays with the flow while its last records are inspected (their
            // headers and bodies live in it)
            f.app = Some(app);
            for r in recs {
                if let AppRecord::Inspect(t) = &r {
                    if let Some(det) = &self.detector {
                        inspect_alerts(&self.opts, det, &mut f, t, now, None, &mut self.stats, out);
                    }
                    continue;
                }
                if let Some(e) = app_event(&self.opts, &mut f, r, now, None, &mut self.stats) {
                    if let Some(det) = &self.detector {
                        for h in crate::alerts::transaction_hits(det, &f, &e) {
                            f.alerted = true;
                            self.stats.records.alert += 1;
                            out.push(crate::alerts::alert_from_transaction(&e, &h));
                        }
                    }
                    if !crate::alerts::request_only(&e) {
                        out.push(e);
                    }
                }
            }
            f.app = None;
        }
        // what is left of the raw streams is inspected at the end (Suricata's stream-end
        // pseudo packets)
        if let Some(det) = &self.detector
            && let Some(mut raw) = f.raw.take().or_else(|| det.firewall_mode().then(Default::default))
        {
            let dropped: u64 = raw.sides.iter().map(|s| s.dropped_segments).sum();
            if dropped > 0 {
                // out-of-order segments the raw stream's bounded queue could not keep
                metrics::counter!("soc_sensor_stream_raw_ooo_drops_total").increment(dropped);
                tracing::debug!(flow_id = f.id, dropped, "raw stream: out-of-order segments not kept");
            }
            for dir in [Direction::ToServer, Direction::ToClient] {
                for h in crate::alerts::stream_end_hits(det, &f, dir, raw.side(dir)) {
                    f.alerted = true;
                    self.stats.records.alert += 1;
                    let mut e = envelope(&self.opts, &mut f, EventType::Alert, now, dir == Direction::ToClient);
                    e.app_proto = f.app_proto.name().map(str::to_string);
                    e.extra.insert(
                        "direction".into(),
                        Value::String(if dir == Direction::ToClient { "to_client" } else { "to_server" }.into()),
                    );
                    e.alert = Some(crate::alerts::alert_payload(&h));
                    out.push(e);
                }
            }
        }
        if let Some(det) = &self.detector {
            // the alerts of the flow's end (Suricata's pseudo packets) are capped as a packet's
            let discarded = cap_packet_alerts(det, self.opts.packet_alert_max, out, alerts_from);
            self.stats.records.alert = self.stats.records.alert.saturating_sub(discarded);
            // the flow's flowbits/flowint state goes with it
            det.end_flow(f.id);
            self.tagger.end_flow(f.id);
        }
        let e = flow_event(&self.opts, &mut f, reason, now);
        self.stats.records.flow += 1;
        out.push(e);
    }
}

/// Suricata's `packet-alert-max`: keeps the first `max` alerts of a packet (the events of
/// `out` from `from` on) in the rules' evaluation order and removes the others (the other
/// events stay). Returns how many were removed.
fn cap_packet_alerts(det: &crate::detect::Detector, max: usize, out: &mut Vec<Event>, from: usize) -> u64 {
    let Some(events) = out.get(from..) else { return 0 };
    let alerts = events.iter().filter(|e| e.event_type == EventType::Alert).count();
    if max == 0 || alerts <= max {
        return 0;
    }
    let rank = |e: &Event| {
        e.alert.as_ref().and_then(|a| {
            let gid = u32::try_from(a.gid.unwrap_or(1)).ok()?;
            det.rule_rank(gid, u32::try_from(a.signature_id?).ok()?)
        })
    };
    let mut ranked: Vec<(usize, usize)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event_type == EventType::Alert)
        .map(|(i, e)| (rank(e).unwrap_or(usize::MAX), i))
        .collect();
    ranked.sort_unstable();
    let mut drop = vec![false; events.len()];
    for &(_, i) in ranked.get(max..).unwrap_or_default() {
        drop[i] = true;
    }
    let tail = out.split_off(from);
    out.extend(tail.into_iter().zip(drop).filter_map(|(e, d)| (!d).then_some(e)));
    let discarded = (alerts - max) as u64;
    metrics::counter!("sensor_alerts_discarded_total").increment(discarded);
    discarded
}

fn set_endpoints(e: &mut Event, f: &Flow, reverse: bool) {
    let (src, sp, dst, dp) = if reverse {
        (f.server, f.server_port, f.client, f.client_port)
    } else {
        (f.client, f.client_port, f.server, f.server_port)
    };
    e.src_ip = Some(ip_text(src));
    e.dest_ip = Some(ip_text(dst));
    if matches!(f.proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP) {
        e.src_port = Some(sp);
        e.dest_port = Some(dp);
    }
    e.proto = Some(proto_name(f.proto));
    e.ip_v = Some(f.ip_v);
}

fn ip_text(a: IpAddr) -> String {
    a.to_string()
}

fn envelope(opts: &SensorOptions, f: &mut Flow, et: EventType, micros: i64, reverse: bool) -> Event {
    let mut e = Event::new(et, Timestamp::from_unix_micros(micros));
    e.flow_id = Some(f.id);
    set_endpoints(&mut e, f, reverse);
    if opts.community_id {
        e.community_id = Some(f.community_id());
    }
    e.sensor = Some(opts.sensor_name.clone());
    e.segment = Some(opts.segment.clone());
    let vlans: Vec<Value> = f.vlan.iter().take(f.vlan_len as usize).map(|v| Value::from(*v)).collect();
    if !vlans.is_empty() {
        e.extra.insert("vlan".into(), Value::Array(vlans));
    }
    e
}

/// Alerts of one side of an SMB or DCERPC transaction ([`AppRecord::Inspect`]).
#[allow(clippy::too_many_arguments)]
fn inspect_alerts(
    opts: &SensorOptions,
    det: &crate::detect::Detector,
    f: &mut Flow,
    t: &crate::app::dcerpc::TxInspect,
    micros: i64,
    pkt_no: Option<u64>,
    stats: &mut SensorStats,
    out: &mut Vec<Event>,
) {
    let hits = crate::alerts::inspect_tx_hits(det, f, t, micros);
    if hits.is_empty() {
        return;
    }
    let et = EventType::Other(t.proto.name().unwrap_or("unknown").to_string());
    let mut base = envelope(opts, f, et, micros, false);
    if let Some(n) = pkt_no {
        base.extra.insert("pcap_cnt".into(), Value::from(n));
    }
    for h in hits {
        f.alerted = true;
        stats.records.alert += 1;
        out.push(crate::alerts::alert_from_transaction(&base, &h));
    }
}

/// Suricata's `stream.reassembly.urgent.policy: oob`: the urgent byte of a segment (the one
/// before its urgent pointer) is out of band, not part of the stream; the sequence numbers of
/// the direction's later bytes, and the peer's acknowledgements of them, are shifted by the
/// urgent bytes removed so far (`removed`, per direction). Returns the segment's sequence
/// number, its acknowledgement number and, when a byte was removed, its stream payload.
fn urgent_oob(
    removed: &mut [u32; 2],
    d: usize,
    t: crate::decode::TcpHdr,
    segment: &[u8],
    payload: &[u8],
) -> (u32, u32, Option<Vec<u8>>) {
    let seq = t.seq.wrapping_sub(removed[d]);
    let ack = t.ack.wrapping_sub(removed[1 - d]);
    if !t.has(tcp_flags::URG) {
        return (seq, ack, None);
    }
    let urgp = segment.get(18..20).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    if urgp == 0 || urgp > payload.len() {
        return (seq, ack, None);
    }
    removed[d] = removed[d].wrapping_add(1);
    let mut v = Vec::with_capacity(payload.len() - 1);
    v.extend_from_slice(&payload[..urgp - 1]);
    v.extend_from_slice(&payload[urgp..]);
    (seq, ack, Some(v))
}

fn app_event(
    opts: &SensorOptions,
    f: &mut Flow,
    r: AppRecord,
    micros: i64,
    pkt_no: Option<u64>,
    stats: &mut SensorStats,
) -> Option<Event> {
    let mut e = match r {
        AppRecord::Dns { dir, dns } => {
            let mut e = envelope(opts, f, EventType::Dns, micros, dir == Direction::ToClient);
            e.dns = Some(*dns);
            stats.records.dns += 1;
            f.tx_cnt += 1;
            e
        }
        AppRecord::Http { tx_id, http } => {
            let mut e = envelope(opts, f, EventType::Http, micros, false);
            e.extra.insert("tx_id".into(), Value::from(tx_id));
            e.http = Some(*http);
            stats.records.http += 1;
            f.tx_cnt += 1;
            e
        }
        AppRecord::HttpRequest { tx_id, http } => {
            // inspected for alerts at the packet completing the request, not logged
            let mut e = envelope(opts, f, EventType::Http, micros, false);
            e.extra.insert("tx_id".into(), Value::from(tx_id));
            e.extra.insert(crate::alerts::REQUEST_ONLY.into(), Value::Bool(true));
            e.http = Some(*http);
            e
        }
        AppRecord::Tls(tls) => {
            let mut e = envelope(opts, f, EventType::Tls, micros, false);
            e.tls = Some(*tls);
            stats.records.tls += 1;
            f.tx_cnt += 1;
            e
        }
        // inspected where the records are produced, never logged
        AppRecord::Inspect(_) | AppRecord::TriggerRaw(_) => return None,
        AppRecord::Log(l) => {
            let crate::app::LogRecord { event_type, to_client, fields } = *l;
            let mut e = envelope(opts, f, EventType::Other(event_type.to_string()), micros, to_client);
            for (k, v) in fields {
                // the envelope's typed fields (a file's transaction and protocol)
                match (k.as_str(), v) {
                    ("app_proto", Value::String(p)) => e.app_proto = Some(p),
                    // (kept as it is when it does not fit the typed payload)
                    ("http", v) => match serde_json::from_value(v.clone()) {
                        Ok(h) => e.http = Some(h),
                        Err(_) => {
                            e.extra.insert(k, v);
                        }
                    },
                    (_, v) => {
                        e.extra.insert(k, v);
                    }
                }
            }
            stats.records.count_log(event_type);
            // a file is part of its transaction, logged on its own
            if event_type != "fileinfo" {
                f.tx_cnt += 1;
            }
            e
        }
        AppRecord::Anomaly { proto, event, dir } => {
            if !opts.applayer_anomalies {
                return None;
            }
            let mut e = envelope(opts, f, EventType::Anomaly, micros, dir == Direction::ToClient);
            e.anomaly = Some(Anomaly {
                kind: Some("applayer".into()),
                event: Some(event.into()),
                layer: Some("proto_parser".into()),
                app_proto: proto.name().map(str::to_string),
                ..Default::default()
            });
            stats.records.anomaly += 1;
            e
        }
    };
    if let Some(n) = pkt_no {
        e.extra.insert("pcap_cnt".into(), Value::from(n));
    }
    Some(e)
}

fn flow_event(opts: &SensorOptions, f: &mut Flow, reason: EndReason, micros: i64) -> Event {
    let mut e = envelope(opts, f, EventType::Flow, micros, false);
    e.app_proto = f.app_proto.name().map(str::to_string);
    let mut flow = soc_model::Flow {
        pkts_toserver: Some(f.pkts[0]),
        pkts_toclient: Some(f.pkts[1]),
        bytes_toserver: Some(f.bytes[0]),
        bytes_toclient: Some(f.bytes[1]),
        start: Some(Timestamp::from_unix_micros(f.start)),
        end: Some(Timestamp::from_unix_micros(f.last)),
        age: Some(f.age_secs()),
        state: Some(f.state.as_str().into()),
        reason: Some(reason.as_str().into()),
        alerted: Some(f.alerted),
        ..Default::default()
    };
    if f.tx_cnt > 0 {
        flow.extra.insert("tx_cnt".into(), Value::from(f.tx_cnt));
    }
    e.flow = Some(flow);
    match f.proto {
        ipproto::TCP => {
            let all = f.tcp_flags[0] | f.tcp_flags[1];
            let mut t = Map::new();
            t.insert("tcp_flags".into(), Value::String(format!("{all:02x}")));
            t.insert("tcp_flags_ts".into(), Value::String(format!("{:02x}", f.tcp_flags[0])));
            t.insert("tcp_flags_tc".into(), Value::String(format!("{:02x}", f.tcp_flags[1])));
            if f.tcp.has_session() {
                for (bit, name) in [
                    (tcp_flags::SYN, "syn"),
                    (tcp_flags::FIN, "fin"),
                    (tcp_flags::RST, "rst"),
                    (tcp_flags::PSH, "psh"),
                    (tcp_flags::ACK, "ack"),
                    (tcp_flags::URG, "urg"),
                    (tcp_flags::ECE, "ecn"),
                    (tcp_flags::CWR, "cwr"),
                ] {
                    if all & bit != 0 {
                        t.insert(name.into(), Value::Bool(true));
                    }
                }
                t.insert("state".into(), Value::String(f.tcp.state.as_str().into()));
                // Like Suricata: present (and true) only for a direction that had a gap.
                if f.stream_gap[1] {
                    t.insert("tc_gap".into(), Value::Bool(true));
                }
                if f.stream_gap[0] {
                    t.insert("ts_gap".into(), Value::Bool(true));
                }
            }
            e.extra.insert("tcp".into(), Value::Object(t));
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            if let Some((t, c)) = f.icmp[0] {
                e.extra.insert("icmp_type".into(), Value::from(t));
                e.extra.insert("icmp_code".into(), Value::from(c));
            }
            if let Some((t, c)) = f.icmp[1] {
                e.extra.insert("response_icmp_type".into(), Value::from(t));
                e.extra.insert("response_icmp_code".into(), Value::from(c));
            }
        }
        _ => {}
    }
    e
}

#[cfg(test)]
mod tests;
