//! Bidirectional flow tracking.
//!
//! A [`FlowTable`] maps a direction-independent [`FlowKey`] (protocol, addresses, ports,
//! VLAN ids) to a [`Flow`] stored in a slab. The first packet's sender is the client, except
//! that a TCP flow first seen with a SYN/ACK takes the SYN/ACK's receiver as client.
//!
//! Timeouts follow Suricata's defaults (see [`FlowTimeouts`]) and are driven by packet time,
//! so offline results never depend on the wall clock. Expiry uses a min-heap of deadlines
//! checked lazily: a packet only updates `last`; when a heap entry comes due, the flow's real
//! deadline is recomputed and the entry re-armed if the flow was active since. A flow cap
//! evicts the flow closest to its deadline.

pub mod tcp;

use crate::app::{AppProto, AppSession, Direction};
use crate::decode::{Packet, Transport, ipproto};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
pub use tcp::{MAX_SYN_QUEUED, TcpConn, TcpState};

/// Flow timeouts in seconds, per protocol and state. The defaults are Suricata's
/// (`flow-timeouts` in its default `suricata.yaml`): TCP new 60 / established 600 / closed 60,
/// UDP new 30 / established 300, ICMP and other protocols new 30 / established 300 / closed 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    pub tcp_new: u32,
    pub tcp_established: u32,
    pub tcp_closed: u32,
    pub udp_new: u32,
    pub udp_established: u32,
    pub other_new: u32,
    pub other_established: u32,
    pub other_closed: u32,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        FlowTimeouts {
            tcp_new: 60,
            tcp_established: 600,
            tcp_closed: 60,
            udp_new: 30,
            udp_established: 300,
            other_new: 30,
            other_established: 300,
            other_closed: 0,
        }
    }
}

impl FlowTimeouts {
    /// Timeout in microseconds of a flow of `proto` in `state`.
    pub fn micros(&self, proto: u8, state: FlowState) -> i64 {
        let s = match (proto, state) {
            (ipproto::TCP, FlowState::New) => self.tcp_new,
            (ipproto::TCP, FlowState::Established) => self.tcp_established,
            (ipproto::TCP, FlowState::Closed) => self.tcp_closed,
            (ipproto::UDP, FlowState::New) => self.udp_new,
            (ipproto::UDP, _) => self.udp_established,
            (_, FlowState::New) => self.other_new,
            (_, FlowState::Established) => self.other_established,
            (_, FlowState::Closed) => self.other_closed,
        };
        s as i64 * 1_000_000
    }
}

/// EVE flow state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowState {
    New,
    Established,
    Closed,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a flow record is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    Timeout,
    /// Evicted by the flow cap, or replaced by a new TCP session on the same tuple.
    Forced,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Direction-independent flow key. Addresses are stored as 16 bytes (IPv4 mapped), the
/// (address, port) pair that sorts lower first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub lo: [u8; 16],
    pub hi: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub ip_v: u8,
    pub vlan: [u16; 3],
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.lo));
        state.write_u128(u128::from_ne_bytes(self.hi));
        state.write_u64(
            (self.lo_port as u64) | (self.hi_port as u64) << 16 | (self.proto as u64) << 32 | (self.ip_v as u64) << 40,
        );
        state.write_u64((self.vlan[0] as u64) | (self.vlan[1] as u64) << 16 | (self.vlan[2] as u64) << 32);
    }
}

fn addr16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

impl FlowKey {
    /// The key of a packet and whether the packet's source is the key's `lo` side.
    pub fn of(p: &Packet<'_>) -> (FlowKey, bool) {
        let (sp, dp) = match p.transport {
            Transport::Tcp(t) => (t.sport, t.dport),
            Transport::Udp(u) => (u.sport, u.dport),
            Transport::Sctp(c) => (c.sport, c.dport),
            _ => (0, 0),
        };
        let s = addr16(p.src);
        let d = addr16(p.dst);
        let src_lo = (s, sp) <= (d, dp);
        let (lo, lo_port, hi, hi_port) = if src_lo { (s, sp, d, dp) } else { (d, dp, s, sp) };
        (FlowKey { lo, hi, lo_port, hi_port, proto: p.proto, ip_v: p.ip_v, vlan: p.vlan }, src_lo)
    }

    /// Stable 64-bit flow id: XXH3 of the key and the flow's start time, kept to 53 bits (so
    /// JSON consumers keep it exact) and never zero.
    pub fn flow_id(&self, start_micros: i64) -> u64 {
        let mut b = [0u8; 16 + 16 + 2 + 2 + 1 + 1 + 6 + 8];
        b[..16].copy_from_slice(&self.lo);
        b[16..32].copy_from_slice(&self.hi);
        b[32..34].copy_from_slice(&self.lo_port.to_be_bytes());
        b[34..36].copy_from_slice(&self.hi_port.to_be_bytes());
        b[36] = self.proto;
        b[37] = self.ip_v;
        for (i, v) in self.vlan.iter().enumerate() {
            b[38 + 2 * i..40 + 2 * i].copy_from_slice(&v.to_be_bytes());
        }
        b[44..52].copy_from_slice(&start_micros.to_be_bytes());
        let h = xxhash_rust::xxh3::xxh3_64(&b) & ((1u64 << 53) - 1);
        if h == 0 { 1 } else { h }
    }
}

/// One tracked flow.
pub struct Flow {
    pub key: FlowKey,
    pub id: u64,
    pub client: IpAddr,
    pub server: IpAddr,
    pub client_port: u16,
    pub server_port: u16,
    /// Whether the client is the key's `lo` side.
    pub client_is_lo: bool,
    pub proto: u8,
    pub ip_v: u8,
    pub vlan: [u16; 3],
    /// Number of VLAN tags of the flow's first packet.
    pub vlan_len: u8,
    /// First and last packet time (unix micros).
    pub start: i64,
    pub last: i64,
    /// Packets and bytes (whole frames) to server / to client.
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// TCP flags seen to server / to client.
    pub tcp_flags: [u8; 2],
    pub tcp: TcpConn,
    pub state: FlowState,
    /// First ICMP type/code seen to server / to client.
    pub icmp: [Option<(u8, u8)>; 2],
    pub app_proto: AppProto,
    /// The detected protocols as `app-layer-protocol` tests them (per direction, original,
    /// final; see [`crate::app::track_alproto`]).
    pub alproto: crate::detect::compile::AlprotoState,
    /// App-layer state while there is something left to parse.
    pub app: Option<Box<AppSession>>,
    pub community_id: Option<String>,
    /// UDP: detection tried to server / to client.
    pub udp_tried: [bool; 2],
    /// A signature alerted on this flow (EVE `flow.alerted`).
    pub alerted: bool,
    /// UDP DNS message counter.
    pub dns_udp: crate::app::dns::DnsUdpState,
    /// State of the per-packet message parsers (Kerberos, SNMP, SIP, MQTT).
    pub msg_state: crate::app::msg::MsgFlowState,
    /// App-layer transactions logged.
    pub tx_cnt: u64,
    /// `pcap_cnt`-style number of the packet that created the flow.
    pub first_pkt: u64,
    /// TCP reassembly reported a gap to server / to client (EVE `tcp.ts_gap` / `tcp.tc_gap`).
    pub stream_gap: [bool; 2],
    /// Raw stream inspection of a TCP session's two directions (with a rule engine).
    pub raw: Option<Box<crate::app::raw::RawStreams>>,
    /// IPS mode: the stream around each segment, for the stream rules (see
    /// [`crate::app::inline`]).
    pub inline: Option<Box<crate::app::inline::InlineStreams>>,
}

impl Flow {
    /// Direction of a packet whose source is the key's `lo` side (`src_lo`).
    pub fn direction(&self, src_lo: bool) -> Direction {
        if src_lo == self.client_is_lo { Direction::ToServer } else { Direction::ToClient }
    }

    /// Community ID v1 (seed 0), computed once and cached.
    pub fn community_id(&mut self) -> String {
        if let Some(c) = &self.community_id {
            return c.clone();
        }
        let (sp, dp) = match self.proto {
            ipproto::ICMP | ipproto::ICMPV6 => {
                let (t, c) = self.icmp[0].or(self.icmp[1]).unwrap_or((0, 0));
                (t as u16, c as u16)
            }
            _ => (self.client_port, self.server_port),
        };
        let c = soc_model::community_id_v1(0, self.client, self.server, self.proto, sp, dp);
        self.community_id = Some(c.clone());
        c
    }

    /// Flow age as Suricata computes it: end second minus start second.
    pub fn age_secs(&self) -> u64 {
        (self.last.div_euclid(1_000_000) - self.start.div_euclid(1_000_000)).max(0) as u64
    }
}

struct Slot {
    epoch: u32,
    flow: Option<Flow>,
}

/// Counters of the flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub created: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub reused: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
}

/// The flow table.
pub struct FlowTable {
    map: FxHashMap<FlowKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    timers: BinaryHeap<Reverse<(i64, u32, u32)>>,
    timeouts: FlowTimeouts,
    max_flows: usize,
    pub stats: FlowStats,
    /// The VLAN ids are part of the flow key (Suricata's `vlan.use-for-tracking`).
    pub vlan_tracking: bool,
}

/// Result of looking a packet up.
pub struct Lookup {
    pub idx: u32,
    pub dir: Direction,
    pub created: bool,
}

impl FlowTable {
    pub fn new(timeouts: FlowTimeouts, max_flows: usize) -> Self {
        FlowTable {
            map: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            timeouts,
            max_flows: max_flows.max(1),
            stats: FlowStats::default(),
            vlan_tracking: true,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn timeouts(&self) -> &FlowTimeouts {
        &self.timeouts
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut Flow> {
        self.slots.get_mut(idx as usize).and_then(|s| s.flow.as_mut())
    }

    /// Index of the flow with `key`, if tracked.
    pub fn find(&self, key: &FlowKey) -> Option<u32> {
        self.map.get(key).copied()
    }

    /// Removes and returns a flow.
    pub fn remove(&mut self, idx: u32) -> Option<Flow> {
        let slot = self.slots.get_mut(idx as usize)?;
        let flow = slot.flow.take()?;
        slot.epoch = slot.epoch.wrapping_add(1);
        self.map.remove(&flow.key);
        self.free.push(idx);
        Some(flow)
    }

    /// Re-arms the expiry timer of a flow whose timeout may have become shorter (a state
    /// change), so it expires on time.
    pub fn rearm(&mut self, idx: u32) {
        if let Some(slot) = self.slots.get(idx as usize)
            && let Some(f) = &slot.flow
        {
            let d = f.last + self.timeouts.micros(f.proto, f.state);
            self.timers.push(Reverse((d, idx, slot.epoch)));
        }
    }

    /// Earliest pending deadline (unix micros), if any.
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Moves every flow whose timeout has passed at `now` into `out`.
    pub fn expire(&mut self, now: i64, out: &mut Vec<Flow>) {
        while let Some(&Reverse((deadline, idx, epoch))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get(idx as usize) else {
                continue;
            };
            if slot.epoch != epoch {
                continue;
            }
            let Some(f) = &slot.flow else { continue };
            let real = f.last + self.timeouts.micros(f.proto, f.state);
            if real > now {
                self.timers.push(Reverse((real, idx, epoch)));
                continue;
            }
            if let Some(f) = self.remove(idx) {
                self.stats.timed_out += 1;
                out.push(f);
            }
        }
    }

    /// Evicts the flow nearest to its deadline (for the flow cap).
    fn evict_one(&mut self) -> Option<Flow> {
        while let Some(Reverse((_, idx, epoch))) = self.timers.pop() {
            let valid = self.slots.get(idx as usize).is_some_and(|s| s.epoch == epoch && s.flow.is_some());
            if valid {
                return self.remove(idx);
            }
        }
        None
    }

    /// Finds the packet's flow or creates it. Flows pushed out to make room (flow cap) are
    /// appended to `evicted`.
    pub fn lookup_or_create(&mut self, p: &Packet<'_>, ts: i64, pkt_no: u64, evicted: &mut Vec<Flow>) -> Lookup {
        let (mut key, src_lo) = FlowKey::of(p);
        if !self.vlan_tracking {
            key.vlan = [0; 3];
        }
        if let Some(&idx) = self.map.get(&key)
            && let Some(f) = self.slots.get(idx as usize).and_then(|s| s.flow.as_ref())
        {
            return Lookup { idx, dir: f.direction(src_lo), created: false };
        }
        while self.map.len() >= self.max_flows {
            match self.evict_one() {
                Some(f) => {
                    self.stats.evicted += 1;
                    evicted.push(f);
                }
                None => break,
            }
        }
        // Client: the sender, unless this is a TCP SYN/ACK (then its receiver).
        let mut client_is_src = true;
        if let Transport::Tcp(t) = p.transport
            && t.flags & 0x12 == 0x12
        {
            client_is_src = false;
        }
        let (client, server, cport, sport) = if client_is_src {
            (p.src, p.dst, p.src_port(), p.dst_port())
        } else {
            (p.dst, p.src, p.dst_port(), p.src_port())
        };
        let client_is_lo = src_lo == client_is_src;
        let flow = Flow {
            key,
            id: key.flow_id(ts),
            client,
            server,
            client_port: cport,
            server_port: sport,
            client_is_lo,
            proto: p.proto,
            ip_v: p.ip_v,
            vlan: p.vlan,
            vlan_len: p.vlan_len,
            start: ts,
            last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
            tcp: TcpConn::default(),
            state: FlowState::New,
            icmp: [None; 2],
            app_proto: AppProto::Unknown,
            alproto: Default::default(),
            app: None,
            community_id: None,
            udp_tried: [false; 2],
            alerted: false,
            dns_udp: Default::default(),
            msg_state: Default::default(),
            tx_cnt: 0,
            first_pkt: pkt_no,
            stream_gap: [false; 2],
            raw: None,
            inline: None,
        };
        let dir = flow.direction(src_lo);
        self.stats.created += 1;
        match p.proto {
            ipproto::TCP => self.stats.tcp += 1,
            ipproto::UDP => self.stats.udp += 1,
            ipproto::ICMP | ipproto::ICMPV6 => self.stats.icmp += 1,
            _ => self.stats.other += 1,
        }
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    s.flow = Some(flow);
                }
                i
            }
            None => {
                self.slots.push(Slot { epoch: 0, flow: Some(flow) });
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        let epoch = self.slots.get(idx as usize).map(|s| s.epoch).unwrap_or(0);
        let deadline = ts + self.timeouts.micros(p.proto, FlowState::New);
        self.timers.push(Reverse((deadline, idx, epoch)));
        Lookup { idx, dir, created: true }
    }

    /// Removes every flow (shutdown), oldest first.
    pub fn drain(&mut self) -> Vec<Flow> {
        let mut all: Vec<Flow> = self
            .slots
            .iter_mut()
            .filter_map(|s| {
                let f = s.flow.take();
                if f.is_some() {
                    s.epoch = s.epoch.wrapping_add(1);
                }
                f
            })
            .collect();
        self.map.clear();
        self.timers.clear();
        self.free.clear();
        self.slots.clear();
        all.sort_by_key(|f| (f.start, f.first_pkt));
        all
    }
}

#[cfg(test)]
mod tests;
