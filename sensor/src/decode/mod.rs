//! Zero-copy packet decoding: link layer (Ethernet with 802.1Q/QinQ, Linux SLL/SLL2, raw IP,
//! BSD null/loopback), IPv4, IPv6 (extension headers skipped), TCP, UDP, ICMP and ICMPv6.
//! Geneve and GRE tunnels are decapsulated by the sensor with [`tunnel::inner`].
//!
//! [`decode`] borrows the frame and never allocates. Malformed or truncated input gives a
//! typed [`DecodeError`] whose [`DecodeError::event`] is Suricata's decoder event name
//! (`ipv4.trunc_pkt`, `tcp.hlen_too_small`, ...). Every access is bounds-checked.

mod checksum;
mod ether;
mod ip;
mod l4;
pub mod tunnel;

pub use checksum::{internet_checksum, l4_checksum, l4_checksum_ok, ones_complement_sum};
pub use ether::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, decode_link};
pub use ip::{decode_ip, decode_ipv4, decode_ipv6};

use std::net::IpAddr;

/// IP protocol numbers the sensor knows by name.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// TCP flag bits as they appear in the header's 13th byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Link-layer header type of a frame (pcap's `LINKTYPE_*` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_NULL` (0): 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): 4-byte address family in network byte order.
    Loop,
    /// `LINKTYPE_RAW` (101, also DLT 12/14): a bare IPv4 or IPv6 packet.
    RawIp,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture v1.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture v2.
    LinuxSll2,
    /// `LINKTYPE_C_HDLC` (104): Cisco HDLC, an address and a control byte then an ethertype.
    Chdlc,
    /// Anything else, by number: its frames are counted as decode errors.
    Other(u32),
}

impl LinkType {
    /// From a pcap/pcapng link-type number.
    pub fn from_dlt(dlt: u32) -> LinkType {
        match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            104 => LinkType::Chdlc,
            other => LinkType::Other(other),
        }
    }
    /// The pcap link-type number.
    pub fn dlt(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Chdlc => 104,
            LinkType::Other(n) => n,
        }
    }
}

/// Decoded TCP header fields (options are skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHdr {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Flag byte (see [`tcp_flags`]).
    pub flags: u8,
    pub window: u16,
    /// Header length in bytes (20..=60).
    pub hlen: u8,
}

impl TcpHdr {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The ports of an SCTP common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpHdr {
    pub sport: u16,
    pub dport: u16,
}

/// Decoded UDP header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHdr {
    pub sport: u16,
    pub dport: u16,
    /// The length field (header + payload).
    pub len: u16,
}

/// Decoded ICMP/ICMPv6 type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpHdr {
    pub icmp_type: u8,
    pub code: u8,
}

/// Transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpHdr),
    Udp(UdpHdr),
    Icmp(IcmpHdr),
    Icmpv6(IcmpHdr),
    /// SCTP: the ports of its common header (the chunks are the payload).
    Sctp(SctpHdr),
    /// A protocol the sensor does not decode (GRE, ESP, ...): flows keyed on addresses.
    Other,
    /// A non-first fragment, or a first fragment of a datagram still being reassembled.
    Fragment,
}

/// Where a packet is an IP fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv4 identification, or IPv6 fragment-header identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// One decoded IP packet, borrowing the frame it came from.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// VLAN ids, outermost first (unused entries 0).
    pub vlan: [u16; 3],
    /// Number of VLAN tags (a tag may carry id 0, priority-only).
    pub vlan_len: u8,
    pub ip_v: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol number (after IPv6 extension headers).
    pub proto: u8,
    pub ttl: u8,
    /// The IP header (for IPv6 the fixed 40 bytes).
    pub ip_header: &'a [u8],
    /// The IP header with, for IPv6, the extension headers decoded after it (up to the
    /// upper-layer header or the fragment data): Suricata's `ipv6.hdr`.
    pub ip_headers: &'a [u8],
    /// Set when this packet is an IP fragment.
    pub frag: Option<FragInfo>,
    /// The IP payload after all headers (for fragments: this fragment's data).
    pub ip_payload: &'a [u8],
    pub transport: Transport,
    /// Application payload (TCP/UDP data; ICMP body after the 8-byte header; empty for
    /// fragments and unknown protocols).
    pub payload: &'a [u8],
    /// The [`DecodeEvent`]s of this packet, one bit each ([`DecodeEvent::bit`]).
    pub events: u64,
}

impl Packet<'_> {
    pub fn src_port(&self) -> u16 {
        match self.transport {
            Transport::Tcp(t) => t.sport,
            Transport::Udp(u) => u.sport,
            Transport::Sctp(s) => s.sport,
            _ => 0,
        }
    }
    pub fn dst_port(&self) -> u16 {
        match self.transport {
            Transport::Tcp(t) => t.dport,
            Transport::Udp(u) => u.dport,
            Transport::Sctp(s) => s.dport,
            _ => 0,
        }
    }
}

/// Result of decoding a frame that is well formed.
#[derive(Clone, Copy, Debug)]
pub enum Decoded<'a> {
    Ip(Packet<'a>),
    /// A frame that carries no IP (ARP, LLDP, STP, ...): counted, not tracked.
    NonIp {
        ethertype: u16,
    },
}

macro_rules! decode_errors {
    ($( $variant:ident => $name:literal, $doc:literal; )*) => {
        /// A malformed or truncated frame. [`DecodeError::event`] gives Suricata's event name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
        #[repr(u8)]
        pub enum DecodeError {
            $( #[doc = $doc] #[error($name)] $variant, )*
        }
        impl DecodeError {
            /// Every kind, in a fixed order (the index of [`DecodeError::index`]).
            pub const ALL: &'static [DecodeError] = &[ $( DecodeError::$variant, )* ];
            /// Number of kinds.
            pub const COUNT: usize = Self::ALL.len();
            /// Suricata-style event name (`ipv4.trunc_pkt`).
            pub fn event(self) -> &'static str {
                match self { $( DecodeError::$variant => $name, )* }
            }
        }
    };
}

decode_errors! {
    UnsupportedLinkType => "decoder.unsupported_linktype", "The capture's link type is not decoded.";
    EthernetPktTooSmall => "ethernet.pkt_too_small", "Frame shorter than an Ethernet header.";
    VlanHeaderTooSmall => "vlan.header_too_small", "Truncated 802.1Q tag.";
    VlanTooManyLayers => "vlan.too_many_layers", "More than three stacked VLAN tags.";
    SllPktTooSmall => "sll.pkt_too_small", "Frame shorter than a Linux cooked header.";
    NullPktTooSmall => "null.pkt_too_small", "Frame shorter than a BSD loopback header.";
    ChdlcPktTooSmall => "chdlc.pkt_too_small", "Frame shorter than a Cisco HDLC header.";
    Ipv4PktTooSmall => "ipv4.pkt_too_small", "Shorter than a 20-byte IPv4 header.";
    Ipv4WrongIpVersion => "ipv4.wrong_ip_version", "Version field is not 4.";
    Ipv4HlenTooSmall => "ipv4.hlen_too_small", "IHL below 5 words.";
    Ipv4IplenSmallerThanHlen => "ipv4.iplen_smaller_than_hlen", "Total length below the header length (e.g. TSO frames with length 0).";
    Ipv4TruncPkt => "ipv4.trunc_pkt", "Total length beyond the captured bytes.";
    Ipv4InvalidChecksum => "ipv4.invalid_checksum", "Header checksum mismatch (checksum validation on).";
    Ipv6PktTooSmall => "ipv6.pkt_too_small", "Shorter than a 40-byte IPv6 header.";
    Ipv6WrongIpVersion => "ipv6.wrong_ip_version", "Version field is not 6.";
    Ipv6TruncPkt => "ipv6.trunc_pkt", "Payload length beyond the captured bytes.";
    Ipv6TruncExthdr => "ipv6.trunc_exthdr", "Truncated extension header.";
    Ipv6ExthdrTooMany => "ipv6.exthdr_too_many", "Extension header chain longer than the sensor follows.";
    TcpPktTooSmall => "tcp.pkt_too_small", "Shorter than a 20-byte TCP header.";
    TcpHlenTooSmall => "tcp.hlen_too_small", "Data offset below 5 words.";
    TcpInvalidOptlen => "tcp.invalid_optlen", "Data offset beyond the segment.";
    TcpInvalidChecksum => "tcp.invalid_checksum", "TCP checksum mismatch (checksum validation on).";
    UdpHlenTooSmall => "udp.hlen_too_small", "Shorter than an 8-byte UDP header.";
    UdpPktTooSmall => "udp.pkt_too_small", "UDP length beyond the IP payload.";
    UdpLenInvalid => "udp.len_invalid", "UDP length field below 8.";
    UdpInvalidChecksum => "udp.invalid_checksum", "UDP checksum mismatch (checksum validation on).";
    Icmpv4PktTooSmall => "icmpv4.pkt_too_small", "Shorter than an 8-byte ICMP header.";
    Icmpv4InvalidChecksum => "icmpv4.invalid_checksum", "ICMP checksum mismatch (checksum validation on).";
    Icmpv6PktTooSmall => "icmpv6.pkt_too_small", "Shorter than an 8-byte ICMPv6 header.";
    Icmpv6InvalidChecksum => "icmpv6.invalid_checksum", "ICMPv6 checksum mismatch (checksum validation on).";
    GrePktTooSmall => "gre.pkt_too_small", "GRE payload shorter than the 4-byte GRE header.";
    Ipv6FragInvalidLength => "ipv6.frag_invalid_length", "IPv6 fragment, not the last, whose data is not a multiple of 8 bytes.";
}

/// Decoder events of a packet (Suricata's decoder events), recorded in [`Packet::events`] for
/// the `decode-event` rule keyword: anomalies of a packet that still decodes, and the failure
/// of a packet that decodes up to its IP layer only ([`decode_invalid`]: Suricata inspects such
/// a packet without a flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DecodeEvent {
    /// An IPv6 fragment header with offset 0 and no more fragments (an atomic fragment).
    Ipv6ExthdrUselessFh,
    /// More than one IPv6 fragment header.
    Ipv6ExthdrDuplFh,
    /// An IPv6 destination-options header with an option type Suricata does not know.
    Ipv6DstoptsUnknownOpt,
    /// The same in a hop-by-hop options header.
    Ipv6HopoptsUnknownOpt,
    /// An IPv6 fragment with more fragments following whose length is not a multiple of 8
    /// (the packet is not reassembled: [`decode_invalid`]).
    Ipv6FragInvalidLength,
    /// A fragment overlapping data already received ([`crate::defrag`]).
    Ipv4FragOverlap,
    Ipv6FragOverlap,
    /// A fragment whose data ends beyond 65,535 bytes ([`crate::defrag`]).
    Ipv4FragPktTooLarge,
    Ipv6FragPktTooLarge,
    /// The failures after the IP header ([`decode_invalid`]).
    Ipv6TruncExthdr,
    TcpPktTooSmall,
    TcpHlenTooSmall,
    TcpInvalidOptlen,
    UdpHlenTooSmall,
    UdpPktTooSmall,
    UdpLenInvalid,
    Icmpv4PktTooSmall,
    Icmpv6PktTooSmall,
    /// A GRE packet shorter than the 4-byte GRE header.
    GrePktTooSmall,
    /// Failures at the IP header (the packet has no addresses: [`DecodeEvent::of_ip_error`]).
    Ipv4PktTooSmall,
    Ipv4HlenTooSmall,
    Ipv4IplenSmallerThanHlen,
    Ipv4TruncPkt,
    Ipv6PktTooSmall,
    Ipv6TruncPkt,
    /// Stream events (Suricata's `stream-event` keyword tests them as `stream.<name>` decoder
    /// events): a client SYN with a new sequence number beyond the SYNs queued during the
    /// handshake ([`crate::flow::TcpConn`]).
    Stream3whsSynFlood,
    /// A regular (non-RST) segment from the side that sent the RST closing the session: the
    /// RST was probably forged by someone else ([`crate::flow::TcpConn`]).
    StreamSuspectedRstInject,
    /// The reassembly skipped over a hole in a direction's sequence space (bytes that never
    /// arrived): the segment with which the stream resumed after it.
    StreamReassemblySeqGap,
}

impl DecodeEvent {
    pub const ALL: &'static [DecodeEvent] = &[
        DecodeEvent::Ipv6ExthdrUselessFh,
        DecodeEvent::Ipv6ExthdrDuplFh,
        DecodeEvent::Ipv6DstoptsUnknownOpt,
        DecodeEvent::Ipv6HopoptsUnknownOpt,
        DecodeEvent::Ipv6FragInvalidLength,
        DecodeEvent::Ipv4FragOverlap,
        DecodeEvent::Ipv6FragOverlap,
        DecodeEvent::Ipv4FragPktTooLarge,
        DecodeEvent::Ipv6FragPktTooLarge,
        DecodeEvent::Ipv6TruncExthdr,
        DecodeEvent::TcpPktTooSmall,
        DecodeEvent::TcpHlenTooSmall,
        DecodeEvent::TcpInvalidOptlen,
        DecodeEvent::UdpHlenTooSmall,
        DecodeEvent::UdpPktTooSmall,
        DecodeEvent::UdpLenInvalid,
        DecodeEvent::Icmpv4PktTooSmall,
        DecodeEvent::Icmpv6PktTooSmall,
        DecodeEvent::GrePktTooSmall,
        DecodeEvent::Ipv4PktTooSmall,
        DecodeEvent::Ipv4HlenTooSmall,
        DecodeEvent::Ipv4IplenSmallerThanHlen,
        DecodeEvent::Ipv4TruncPkt,
        DecodeEvent::Ipv6PktTooSmall,
        DecodeEvent::Ipv6TruncPkt,
        DecodeEvent::Stream3whsSynFlood,
        DecodeEvent::StreamSuspectedRstInject,
        DecodeEvent::StreamReassemblySeqGap,
    ];

    /// Suricata's event name (`ipv6.exthdr_useless_fh`).
    pub fn name(self) -> &'static str {
        match self {
            DecodeEvent::Ipv6ExthdrUselessFh => "ipv6.exthdr_useless_fh",
            DecodeEvent::Ipv6ExthdrDuplFh => "ipv6.exthdr_dupl_fh",
            DecodeEvent::Ipv6DstoptsUnknownOpt => "ipv6.dstopts_unknown_opt",
            DecodeEvent::Ipv6HopoptsUnknownOpt => "ipv6.hopopts_unknown_opt",
            DecodeEvent::Ipv6FragInvalidLength => "ipv6.frag_invalid_length",
            DecodeEvent::Ipv4FragOverlap => "ipv4.frag_overlap",
            DecodeEvent::Ipv6FragOverlap => "ipv6.frag_overlap",
            DecodeEvent::Ipv4FragPktTooLarge => "ipv4.frag_pkt_too_large",
            DecodeEvent::Ipv6FragPktTooLarge => "ipv6.frag_pkt_too_large",
            DecodeEvent::Ipv6TruncExthdr => "ipv6.trunc_exthdr",
            DecodeEvent::TcpPktTooSmall => "tcp.pkt_too_small",
            DecodeEvent::TcpHlenTooSmall => "tcp.hlen_too_small",
            DecodeEvent::TcpInvalidOptlen => "tcp.invalid_optlen",
            DecodeEvent::UdpHlenTooSmall => "udp.hlen_too_small",
            DecodeEvent::UdpPktTooSmall => "udp.pkt_too_small",
            DecodeEvent::UdpLenInvalid => "udp.len_invalid",
            DecodeEvent::Icmpv4PktTooSmall => "icmpv4.pkt_too_small",
            DecodeEvent::Icmpv6PktTooSmall => "icmpv6.pkt_too_small",
            DecodeEvent::GrePktTooSmall => "gre.pkt_too_small",
            DecodeEvent::Ipv4PktTooSmall => "ipv4.pkt_too_small",
            DecodeEvent::Ipv4HlenTooSmall => "ipv4.hlen_too_small",
            DecodeEvent::Ipv4IplenSmallerThanHlen => "ipv4.iplen_smaller_than_hlen",
            DecodeEvent::Ipv4TruncPkt => "ipv4.trunc_pkt",
            DecodeEvent::Ipv6PktTooSmall => "ipv6.pkt_too_small",
            DecodeEvent::Ipv6TruncPkt => "ipv6.trunc_pkt",
            DecodeEvent::Stream3whsSynFlood => "stream.3whs_syn_flood",
            DecodeEvent::StreamSuspectedRstInject => "stream.suspected_rst_inject",
            DecodeEvent::StreamReassemblySeqGap => "stream.reassembly_seq_gap",
        }
    }

    pub fn from_name(name: &str) -> Option<DecodeEvent> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// The event of a decode failure after the IP header, if it is one.
    pub fn of_error(e: DecodeError) -> Option<DecodeEvent> {
        Some(match e {
            DecodeError::Ipv6TruncExthdr => DecodeEvent::Ipv6TruncExthdr,
            DecodeError::Ipv6FragInvalidLength => DecodeEvent::Ipv6FragInvalidLength,
            DecodeError::TcpPktTooSmall => DecodeEvent::TcpPktTooSmall,
            DecodeError::TcpHlenTooSmall => DecodeEvent::TcpHlenTooSmall,
            DecodeError::TcpInvalidOptlen => DecodeEvent::TcpInvalidOptlen,
            DecodeError::UdpHlenTooSmall => DecodeEvent::UdpHlenTooSmall,
            DecodeError::UdpPktTooSmall => DecodeEvent::UdpPktTooSmall,
            DecodeError::UdpLenInvalid => DecodeEvent::UdpLenInvalid,
            DecodeError::Icmpv4PktTooSmall => DecodeEvent::Icmpv4PktTooSmall,
            DecodeError::Icmpv6PktTooSmall => DecodeEvent::Icmpv6PktTooSmall,
            DecodeError::GrePktTooSmall => DecodeEvent::GrePktTooSmall,
            _ => return None,
        })
    }

    /// The event of a decode failure at the IP header (no addresses), if it is one: such a
    /// packet is inspected by the `decode-event` rules only
    /// ([`crate::detect::Detector::inspect_addressless`]).
    pub fn of_ip_error(e: DecodeError) -> Option<DecodeEvent> {
        Some(match e {
            DecodeError::Ipv4PktTooSmall => DecodeEvent::Ipv4PktTooSmall,
            DecodeError::Ipv4HlenTooSmall => DecodeEvent::Ipv4HlenTooSmall,
            DecodeError::Ipv4IplenSmallerThanHlen => DecodeEvent::Ipv4IplenSmallerThanHlen,
            DecodeError::Ipv4TruncPkt => DecodeEvent::Ipv4TruncPkt,
            DecodeError::Ipv6PktTooSmall => DecodeEvent::Ipv6PktTooSmall,
            DecodeError::Ipv6TruncPkt => DecodeEvent::Ipv6TruncPkt,
            _ => return None,
        })
    }

    /// Its bit in [`Packet::events`].
    pub fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

impl DecodeError {
    /// Position in [`DecodeError::ALL`] (for per-kind counters without allocation).
    pub fn index(self) -> usize {
        self as u8 as usize
    }
}

/// Decoder settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Validate IPv4 header, TCP, UDP and ICMP checksums (off = like `suricata -k none`).
    pub checksum_check: bool,
}

/// Decodes one frame of a link type. Never panics, never allocates.
pub fn decode<'a>(link: LinkType, frame: &'a [u8], opts: DecodeOptions) -> Result<Decoded<'a>, DecodeError> {
    decode_link(link, frame, opts)
}

/// The IP packet of a frame that [`decode`] rejects after its IP header (a truncated IPv6
/// extension header, a transport header too short or inconsistent: the errors
/// [`DecodeEvent::of_error`] maps): addresses and protocol from the IP header,
/// [`Transport::Other`], no payload, and the failure in [`Packet::events`]. Suricata still runs
/// such a packet through detection (without a flow), so `decode-event` rules see it. `None`
/// for a frame that fails before or at its IP header, or that decodes.
pub fn decode_invalid<'a>(link: LinkType, frame: &'a [u8], opts: DecodeOptions) -> Option<Packet<'a>> {
    match ether::decode_link_mode(link, frame, opts, true) {
        Ok(Decoded::Ip(p)) if p.events & INVALID_EVENTS != 0 => Some(p),
        _ => None,
    }
}

/// The events of [`DecodeEvent::of_error`] (a packet carrying one did not decode fully).
const INVALID_EVENTS: u64 = {
    let all = [
        DecodeEvent::Ipv6TruncExthdr,
        DecodeEvent::Ipv6FragInvalidLength,
        DecodeEvent::TcpPktTooSmall,
        DecodeEvent::TcpHlenTooSmall,
        DecodeEvent::TcpInvalidOptlen,
        DecodeEvent::UdpHlenTooSmall,
        DecodeEvent::UdpPktTooSmall,
        DecodeEvent::UdpLenInvalid,
        DecodeEvent::Icmpv4PktTooSmall,
        DecodeEvent::Icmpv6PktTooSmall,
        DecodeEvent::GrePktTooSmall,
    ];
    let mut bits = 0u64;
    let mut i = 0;
    while i < all.len() {
        bits |= 1 << (all[i] as u8);
        i += 1;
    }
    bits
};

#[cfg(test)]
mod tests;
