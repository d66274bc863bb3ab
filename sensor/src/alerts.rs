//! Signature inspection: packets and app-layer transactions go through the rule engine
//! ([`crate::detect`]); hits become EVE `alert` records with the flow's identity and the
//! transaction's app-layer metadata, as Suricata writes them.
//!
//! Each transaction is inspected once, when its record is complete (an HTTP request with its
//! response, a DNS query, a TLS handshake), with the buffers the record carries; every packet
//! with a payload is inspected once with its payload (`pkt_data`, `dsize`). In a TCP session
//! the payload rules are split as Suricata splits them ([`crate::detect::PayloadKind`]): stream
//! rules inspect the reassembled stream in chunks ([`crate::app::raw`]), packet rules each
//! segment.

use crate::app::http::TxData;
use crate::app::http2::H2Tx;
use crate::app::raw::RawSide;
use crate::app::{AppProto, Direction, Parser};
use crate::decode::{Packet, Transport};
use crate::detect::{self, Action, Detector, Hit, Inspection};
use crate::flow::{Flow, FlowState};
use serde_json::{Map, Value};
use soc_model::{Alert, Event, EventType};

fn transport(proto: u8) -> detect::Transport {
    match proto {
        6 => detect::Transport::Tcp,
        17 => detect::Transport::Udp,
        1 => detect::Transport::Icmp,
        58 => detect::Transport::Icmpv6,
        132 => detect::Transport::Sctp,
        n => detect::Transport::Other(n),
    }
}

fn app_proto(p: AppProto) -> Option<detect::AppProto> {
    p.name().and_then(detect::AppProto::from_name)
}

fn established(f: &Flow) -> bool {
    matches!(f.state, FlowState::Established | FlowState::Closed) || (f.proto != 6 && f.pkts[0] > 0 && f.pkts[1] > 0)
}

fn det_dir(d: Direction) -> detect::Direction {
    match d {
        Direction::ToServer => detect::Direction::ToServer,
        Direction::ToClient => detect::Direction::ToClient,
    }
}

/// Rules that match this packet's payload.
///
/// `raw`: the direction's raw stream when the packet belongs to a TCP session (see
/// [`crate::app::raw`]); its ready chunk is inspected by the stream rules first.
pub(crate) fn packet_hits(
    det: &Detector,
    f: &Flow,
    p: &Packet<'_>,
    dir: Direction,
    raw: Option<&mut RawSide>,
    inline_window: Option<&[u8]>,
) -> Vec<Hit> {
    let (sport, dport) = match p.transport {
        Transport::Tcp(_) | Transport::Udp(_) | Transport::Sctp(_) => (p.src_port(), p.dst_port()),
        _ => (0, 0),
    };
    let mut insp = Inspection::new(transport(p.proto), p.src, sport, p.dst, dport, det_dir(dir), p.payload);
    // the ACK completing the three-way handshake is still inspected as not established
    // (Suricata evaluates the packet against the session state before it)
    let handshake_ack =
        matches!(p.transport, Transport::Tcp(t) if t.flags & 0x17 == 0x10) && p.payload.is_empty() && f.pkts == [2, 1];
    insp.established = established(f) && !handshake_ack;
    insp.app_proto = app_proto(f.app_proto);
    insp.flow_id = f.id;
    insp.ts_micros = f.last;
    insp.ttl = Some(p.ttl);
    // the packet's decoder events and the stream events its segment raised
    let stream_events = if matches!(p.transport, Transport::Tcp(_)) { f.tcp.events } else { 0 };
    insp.decode_events = p.events | stream_events;
    insp.first_in_direction = f.pkts[usize::from(dir == Direction::ToClient)] == 1;
    insp.ip_proto = Some(p.proto);
    insp.flow_counts = Some((f.pkts, f.bytes));
    insp.alproto = Some(f.alproto);
    match p.transport {
        Transport::Tcp(t) => {
            insp.tcp_flags = Some(t.flags);
            insp.tcp_seq = Some((t.seq, p.payload.len() as u32));
            insp.tcp_ack = Some(t.ack);
        }
        Transport::Icmp(h) | Transport::Icmpv6(h) => {
            insp.icmp = Some((h.icmp_type, h.code));
            // identifier and sequence number: echo, timestamp, information and address mask
            // messages (ICMPv6: echo)
            let carries = match p.transport {
                Transport::Icmp(_) => matches!(h.icmp_type, 0 | 8 | 13..=18),
                _ => matches!(h.icmp_type, 128 | 129),
            };
            if carries
                && p.frag.is_none()
                && let Some(b) = p.ip_payload.get(4..8)
            {
                insp.icmp_id_seq = Some((u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]])));
            }
            // icmpv6.mtu: the MTU of a Packet Too Big message
            if matches!(p.transport, Transport::Icmpv6(_))
                && h.icmp_type == 2
                && p.frag.is_none()
                && let Some(b) = p.ip_payload.get(4..8)
            {
                insp.icmpv6_mtu = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
        }
        _ => {}
    }
    // An SSH identification line ("SSH-2.0-OpenSSH_8.9 comments"): the ssh.proto and
    // ssh.software buffers of its side (read from the segment that starts with it; the SSH
    // parser, [`crate::app::ssh`], gives the records' frames).
    let banner = ssh_banner(p.payload).filter(|_| matches!(p.transport, Transport::Tcp(_)));
    let mut other: Vec<(detect::Buffer, &[u8])> = match banner {
        Some((proto, software)) => vec![(detect::Buffer::SshProto, proto), (detect::Buffer::SshSoftware, software)],
        None => Vec::new(),
    };
    // An SSH key-exchange init message in the segment (after the identification line or
    // starting it): the hassh of its side (`ssh.hassh` from the client, `ssh.hassh.server`)
    let hassh = (matches!(p.transport, Transport::Tcp(_))
        && matches!(f.app_proto, AppProto::Ssh | AppProto::Unknown | AppProto::Failed))
    .then(|| ssh_kexinit_hassh(p.payload, dir == Direction::ToServer))
    .flatten();
    if let Some((string, hash)) = &hassh {
        let (b_hash, b_string) = if dir == Direction::ToServer {
            (detect::Buffer::SshHassh, detect::Buffer::SshHasshString)
        } else {
            (detect::Buffer::SshHasshServer, detect::Buffer::SshHasshServerString)
        };
        other.push((b_hash, hash.as_bytes()));
        other.push((b_string, string.as_slice()));
    }
    // ipv4.hdr, tcp.hdr, udp.hdr: the headers as on the wire (options included)
    if p.ip_v == 4 {
        other.push((detect::Buffer::Ipv4Hdr, p.ip_header));
    } else {
        other.push((detect::Buffer::Ipv6Hdr, p.ip_headers));
    }
    if p.frag.is_none() {
        match p.transport {
            Transport::Tcp(_) => {
                let hdr_len = p.ip_payload.len().saturating_sub(p.payload.len());
                if let Some(h) = p.ip_payload.get(..hdr_len).filter(|h| h.len() >= 20) {
                    other.push((detect::Buffer::TcpHdr, h));
                }
            }
            Transport::Udp(_) => {
                if let Some(h) = p.ip_payload.get(..8) {
                    other.push((detect::Buffer::UdpHdr, h));
                }
            }
            Transport::Icmpv6(_) => {
                if let Some(h) = p.ip_payload.get(..8) {
                    other.push((detect::Buffer::Icmpv6Hdr, h));
                }
            }
            _ => {}
        }
    }
    if (banner.is_some() || hassh.is_some()) && matches!(f.app_proto, AppProto::Unknown | AppProto::Failed) {
        insp.app_proto = detect::AppProto::from_name("ssh");
    }
    // NTP (there is no NTP parser: the fixed header is read from the datagram)
    let ntp = ntp_header(p, sport, dport)
        .filter(|_| matches!(f.app_proto, AppProto::Ntp | AppProto::Unknown | AppProto::Failed));
    let ntp_ints;
    if let Some((ints, reference_id)) = ntp {
        insp.app_proto = Some(detect::AppProto::Ntp);
        other.push((detect::Buffer::NtpReferenceId, reference_id));
        ntp_ints = ints;
        insp.app_ints = &ntp_ints;
    }
    // Kerberos, SNMP, SIP, MQTT, ENIP, QUIC: each message of the packet is inspected as a
    // transaction
    let msg_hits = message_hits(det, f, p, sport, dport, &mut insp);
    insp.other = &other;
    if let Some(window) = inline_window {
        // IPS mode: the stream rules inspect the stream around the segment, the packet rules
        // the segment (Suricata's inline raw reassembly, see crate::app::inline)
        let mut hits = Vec::new();
        let mut sids: Vec<u32> = Vec::new();
        let s = Inspection { payload: window, payload_kind: detect::PayloadKind::Stream, ..insp };
        for h in keep_alerts(det.inspect(&s)) {
            if !sids.contains(&h.sid) {
                sids.push(h.sid);
                hits.push(h);
            }
        }
        insp.payload_kind = detect::PayloadKind::StreamSegment;
        insp.skip_sids = &sids;
        hits.extend(keep_alerts(det.inspect(&insp)));
        hits.extend(msg_hits);
        return hits;
    }
    let Some(raw) = raw else {
        let mut hits = keep_alerts(det.inspect(&insp));
        hits.extend(msg_hits);
        return hits;
    };
    // a TCP session: the stream rules inspect the direction's reassembled stream when it has a
    // chunk ready, the packet rules the segment (Suricata's DetectEngineInspectRulePayloadMatches)
    let mut hits = Vec::new();
    let mut sids: Vec<u32> = Vec::new();
    // (a raw stream exists for sessions only: begun with a handshake, or picked up midstream)
    if raw.ready(closing(f)) {
        let _ = stream_chunk_hits(det, &insp, raw, false, &mut hits, &mut sids);
    }
    if !p.payload.is_empty() {
        insp.payload_kind = detect::PayloadKind::StreamSegment;
    }
    insp.skip_sids = &sids;
    hits.extend(keep_alerts(det.inspect(&insp)));
    hits.extend(msg_hits);
    hits
}

/// Messages (Kerberos, SNMP, SIP, MQTT, ENIP, QUIC) of one packet inspected at most;
/// the rest are counted in `soc_sensor_app_messages_not_inspected_total`.
const MAX_MESSAGES_PER_PACKET: usize = 64;

/// The messages of a Kerberos, SNMP, SIP, MQTT, EtherNet/IP or QUIC packet
/// ([`crate::app::msg`]), each inspected as a transaction of its protocol; `insp` (the packet's
/// inspection) gets the protocol when the flow's detection did not give one.
fn message_hits(
    det: &Detector,
    f: &Flow,
    p: &Packet<'_>,
    sport: u16,
    dport: u16,
    insp: &mut Inspection<'_>,
) -> Vec<Hit> {
    let ctx = crate::app::msg::PacketCtx {
        tcp: matches!(p.transport, Transport::Tcp(_)),
        udp: matches!(p.transport, Transport::Udp(_)),
        sport,
        dport,
        krb5_flow: f.app_proto == AppProto::Krb5,
        to_server: insp.direction == detect::Direction::ToServer,
        ftp_flow: f.app_proto == AppProto::Ftp,
        src: p.src,
    };
    let Some((proto, msgs)) = crate::app::msg::messages(ctx, p.payload, &f.msg_state) else { return Vec::new() };
    // a flow detected as another protocol is not read as this one
    let detected = !matches!(f.app_proto, AppProto::Unknown | AppProto::Failed);
    if detected && app_proto(f.app_proto) != Some(proto) {
        return Vec::new();
    }
    insp.app_proto = Some(proto);
    let mut hits = Vec::new();
    if msgs.len() > MAX_MESSAGES_PER_PACKET {
        // e.g. a segment of 2-byte MQTT PINGREQs: each message is a rule-engine pass
        let skipped = (msgs.len() - MAX_MESSAGES_PER_PACKET) as u64;
        metrics::counter!("soc_sensor_app_messages_not_inspected_total").increment(skipped);
        tracing::debug!(skipped, "too many app-layer messages in one packet: the rest not inspected");
    }
    for m in msgs.iter().take(MAX_MESSAGES_PER_PACKET) {
        let mut bufs = m.bufs.clone();
        bufs.extend(m.owned.iter().map(|(b, v)| (*b, v.as_slice())));
        let tx = Inspection {
            app_proto: Some(proto),
            payload: &[],
            other: &bufs,
            app_ints: &m.ints,
            app_events: m.events,
            transaction: true,
            payload_kind: detect::PayloadKind::Any,
            skip_sids: &[],
            ..*insp
        };
        hits.extend(keep_alerts(det.inspect(&tx)));
    }
    hits
}

/// Suricata inspects a raw stream whatever its chunk size once the session is closing (its
/// state past `TIME_WAIT`: the server closed first, both closed, or a RST).
pub(crate) fn closing(f: &Flow) -> bool {
    f.tcp.state == crate::flow::TcpState::Closed || (f.tcp.fin[1] && !f.tcp.fin[0])
}

/// The stream rules over what is left of one direction's raw stream at the end of the flow
/// (Suricata's stream-end pseudo packets), acknowledged or not.
pub(crate) fn stream_end_hits(det: &Detector, f: &Flow, dir: Direction, raw: &mut RawSide) -> Vec<Hit> {
    let (src, sport, dst, dport) = match dir {
        Direction::ToServer => (f.client, f.client_port, f.server, f.server_port),
        Direction::ToClient => (f.server, f.server_port, f.client, f.client_port),
    };
    let mut insp = Inspection::new(transport(f.proto), src, sport, dst, dport, det_dir(dir), &[]);
    insp.established = established(f);
    insp.app_proto = app_proto(f.app_proto);
    insp.flow_id = f.id;
    insp.ts_micros = f.last;
    insp.ip_proto = Some(f.proto);
    insp.flow_counts = Some((f.pkts, f.bytes));
    insp.alproto = Some(detect::compile::AlprotoState { detection_done: false, ..f.alproto });
    let (mut hits, mut sids) = (Vec::new(), Vec::new());
    let chunks = stream_chunk_hits(det, &insp, raw, true, &mut hits, &mut sids);
    // firewall mode: the pseudo packet of an encrypted session still open (its data left
    // unreassembled, as Suricata does after the handshake) goes through the packet tables and
    // the rules even without stream data left
    if chunks == 0
        && det.firewall_mode()
        && f.proto == 6
        && f.tcp.state == crate::flow::TcpState::Established
        && matches!(f.app_proto, AppProto::Ssh | AppProto::Tls)
    {
        hits.extend(keep_alerts(det.inspect(&insp)));
    }
    hits
}

/// The stream rules over the chunk(s) `raw` hands over (see [`RawSide::take`]), inspected as
/// `insp` with the chunk as payload; a sid alerts once per packet (`sids` collects them).
fn stream_chunk_hits(
    det: &Detector,
    insp: &Inspection<'_>,
    raw: &mut RawSide,
    eof: bool,
    hits: &mut Vec<Hit>,
    sids: &mut Vec<u32>,
) -> usize {
    let mut chunks = 0;
    raw.take(eof, &mut |chunk| {
        chunks += 1;
        let s = Inspection { payload: chunk, payload_kind: detect::PayloadKind::Stream, ..*insp };
        for h in keep_alerts(det.inspect(&s)) {
            if !sids.contains(&h.sid) {
                sids.push(h.sid);
                hits.push(h);
            }
        }
    });
    chunks
}

/// Rules that match a packet inspected without a flow: one that decodes only up to its IP
/// layer ([`crate::decode::decode_invalid`]) or an IP fragment carrying a decoder event. As in
/// Suricata, its decoder events are visible to `decode-event`, it is not established and has no
/// flow state.
pub(crate) fn flowless_packet_hits(det: &Detector, p: &Packet<'_>, ts_micros: i64) -> Vec<Hit> {
    let (sport, dport) = (p.src_port(), p.dst_port());
    let mut insp =
        Inspection::new(transport(p.proto), p.src, sport, p.dst, dport, detect::Direction::ToServer, p.payload);
    insp.flowless = true;
    insp.ts_micros = ts_micros;
    insp.ttl = Some(p.ttl);
    insp.ip_proto = Some(p.proto);
    insp.decode_events = p.events;
    let hdr =
        [if p.ip_v == 4 { (detect::Buffer::Ipv4Hdr, p.ip_header) } else { (detect::Buffer::Ipv6Hdr, p.ip_headers) }];
    insp.other = &hdr;
    keep_alerts(det.inspect(&insp))
}

/// `ntp.version`, `ntp.stratum` and `ntp.mode` of an NTP header.
type NtpInts = [(detect::AppInt, u64); 3];

/// The integer fields and the reference id of an NTP header: a UDP datagram from or to port
/// 123 of at least the 48 bytes of the header, version 1 to 4 (Suricata's NTP probe).
fn ntp_header<'p>(p: &Packet<'p>, sport: u16, dport: u16) -> Option<(NtpInts, &'p [u8])> {
    if !matches!(p.transport, Transport::Udp(_)) || (sport != 123 && dport != 123) || p.payload.len() < 48 {
        return None;
    }
    let first = p.payload[0];
    let version = (first >> 3) & 7;
    if !(1..=4).contains(&version) {
        return None;
    }
    let ints = [
        (detect::AppInt::NtpVersion, u64::from(version)),
        (detect::AppInt::NtpStratum, u64::from(p.payload[1])),
        (detect::AppInt::NtpMode, u64::from(first & 7)),
    ];
    Some((ints, &p.payload[12..16]))
}

/// The app-layer events of an HTTP request, from its headers (libhtp's): a repeated
/// Content-Length, an Authorization scheme other than Basic, Digest and Bearer.
fn http_request_events(headers: &[(&[u8], &[u8])]) -> u64 {
    let mut events = 0;
    if headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length")).count() > 1 {
        events |= detect::AppEvent::HttpDuplicateContentLengthFieldInRequest.bit();
    }
    if let Some(auth) = header(headers, "authorization") {
        let scheme = auth.trim_ascii().split(|b| b.is_ascii_whitespace()).next().unwrap_or_default();
        if !["basic", "digest", "bearer"].iter().any(|s| scheme.eq_ignore_ascii_case(s.as_bytes())) {
            events |= detect::AppEvent::HttpRequestAuthUnrecognized.bit();
        }
    }
    events
}

/// The hassh of an SSH_MSG_KEXINIT at the start of `payload` (or right after an identification
/// line starting it): the string `kex;encryption;mac;compression` of the side (client to
/// server algorithms for the client, server to client for the server) and its MD5 in hex.
pub(crate) fn ssh_kexinit_hassh(payload: &[u8], client: bool) -> Option<(Vec<u8>, String)> {
    use md5::{Digest as _, Md5};
    let mut pkt = payload;
    if pkt.starts_with(b"SSH-") {
        let eol = pkt.iter().position(|&b| b == b'\n')?;
        pkt = &pkt[eol + 1..];
    }
    // binary packet: length, padding length, message (20 = KEXINIT), 16-byte cookie
    // (RFC 4253: at least 4 bytes of padding, packets up to 35,000 bytes)
    let len = u32::from_be_bytes(pkt.get(..4)?.try_into().ok()?) as usize;
    if !(22..=35_000).contains(&len) || *pkt.get(4)? < 4 || *pkt.get(5)? != 20 {
        return None;
    }
    let mut rest = pkt.get(22..)?;
    // the ten name-lists; the hassh takes kex (0), then encryption, mac and compression
    // (2, 4, 6 from the client; 3, 5, 7 from the server)
    let mut lists: Vec<&[u8]> = Vec::with_capacity(8);
    for _ in 0..8 {
        let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let list = rest.get(4..4 + n)?;
        if !list.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        lists.push(list);
        rest = &rest[4 + n..];
    }
    let pick: [usize; 4] = if client { [0, 2, 4, 6] } else { [0, 3, 5, 7] };
    let string = pick.iter().map(|&i| lists[i]).collect::<Vec<_>>().join(&b';');
    let hash = Md5::digest(&string).iter().map(|b| format!("{b:02x}")).collect();
    Some((string, hash))
}

/// The names of a DNS record section, one buffer per record (multi-buffers).
fn dns_names(rrs: Option<&[soc_model::DnsAnswer]>) -> Vec<&[u8]> {
    rrs.into_iter().flatten().filter_map(|r| r.rrname.as_deref()).map(str::as_bytes).collect()
}

/// The protocol version and software of an SSH identification line at the start of `payload`.
fn ssh_banner(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = payload.strip_prefix(b"SSH-")?;
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = &rest[..end];
    let dash = line.iter().position(|&b| b == b'-')?;
    let software = &line[dash + 1..];
    let software = &software[..software.iter().position(|&b| b == b' ').unwrap_or(software.len())];
    Some((&line[..dash], software))
}

/// The headers, start lines and bodies the HTTP parser keeps for a transaction record
/// (`tx_id`), while the flow's parser is alive.
fn http_tx_data<'f>(f: &'f Flow, e: &Event) -> Option<&'f TxData> {
    let id = e.extra.get("tx_id")?.as_u64()?;
    match f.app.as_ref()?.parser.as_ref()? {
        Parser::Http(p) => p.tx_data(id),
        Parser::Http2(p) => p.h1_tx_data(id),
        Parser::Websocket(p) => p.h1_tx_data(id),
        _ => None,
    }
}

/// `tls.random`, `tls.random_time` (its first 4 bytes) and `tls.random_bytes` (the other 28).
fn random_buffers(r: &[u8]) -> [(detect::Buffer, &[u8]); 3] {
    use detect::Buffer as B;
    [(B::TlsRandom, r), (B::TlsRandomTime, r.get(..4).unwrap_or(r)), (B::TlsRandomBytes, r.get(4..).unwrap_or(&[]))]
}

type HeaderList<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The body as the application sees it: `Content-Encoding` layers undone as libhtp does for
/// `file.data` ([`crate::app::http::decode_body`]). `None` when the body is not encoded.
fn decoded_body(content_encoding: Option<&[u8]>, body: &[u8]) -> Option<Vec<u8>> {
    crate::app::http::decode_body(content_encoding?, body)
}

fn pairs(l: &[(Vec<u8>, Vec<u8>)]) -> HeaderList<'_> {
    l.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect()
}

fn header<'e>(hs: &[(&'e [u8], &'e [u8])], name: &str) -> Option<&'e [u8]> {
    hs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| *v)
}

/// Buffers of one side of an HTTP transaction that are built from its header list.
struct HttpSide {
    header: Vec<u8>,
    header_raw: Vec<u8>,
    header_names: Vec<u8>,
    start: Vec<u8>,
}

fn http_side(first_line: &[u8], hs: &[(&[u8], &[u8])], dir: detect::Direction) -> HttpSide {
    let header = detect::http_header_buffer(dir, hs.iter().copied());
    let mut header_raw = Vec::new();
    let mut header_names = b"\r\n".to_vec();
    for (n, v) in hs {
        header_raw.extend_from_slice(n);
        header_raw.extend_from_slice(b": ");
        header_raw.extend_from_slice(v);
        header_raw.extend_from_slice(b"\r\n");
        header_names.extend_from_slice(n);
        header_names.extend_from_slice(b"\r\n");
    }
    header_names.extend_from_slice(b"\r\n");
    let mut start = first_line.to_vec();
    start.extend_from_slice(b"\r\n");
    start.extend_from_slice(&header_raw);
    start.extend_from_slice(b"\r\n");
    HttpSide { header, header_raw, header_names, start }
}

/// Inspects the response side of an HTTP transaction, or the server side of a TLS handshake:
/// addresses as a server-to-client packet.
fn to_client<'a>(insp: &Inspection<'a>, other: &'a [(detect::Buffer, &'a [u8])]) -> Inspection<'a> {
    Inspection {
        src_ip: insp.dst_ip,
        src_port: insp.dst_port,
        dst_ip: insp.src_ip,
        dst_port: insp.src_port,
        direction: detect::Direction::ToClient,
        other,
        ..Inspection::new(
            insp.proto,
            insp.dst_ip,
            insp.dst_port,
            insp.src_ip,
            insp.src_port,
            detect::Direction::ToClient,
            &[],
        )
    }
}

/// The `extra` key marking an HTTP record built for a complete request
/// ([`crate::app::AppRecord::HttpRequest`]): inspected, never logged.
pub(crate) const REQUEST_ONLY: &str = "_request_only";

/// Whether `e` is a request-side inspection record (not to be logged).
pub(crate) fn request_only(e: &Event) -> bool {
    e.extra.contains_key(REQUEST_ONLY)
}

/// Rules that match one app-layer transaction record (`http` request and response, `dns`
/// request, `tls` client and server side). Each side is inspected once, with the buffers the
/// record carries.
pub(crate) fn transaction_hits(det: &Detector, f: &Flow, e: &Event) -> Vec<Hit> {
    use detect::Buffer as B;
    let (client, server) = (f.client, f.server);
    let mut insp = Inspection::new(
        transport(f.proto),
        client,
        f.client_port,
        server,
        f.server_port,
        detect::Direction::ToServer,
        &[],
    );
    insp.established = established(f);
    insp.app_proto = app_proto(f.app_proto);
    insp.flow_id = f.id;
    insp.ts_micros = e.timestamp.unix_micros();
    insp.transaction = true;
    insp.alproto = Some(detect::compile::AlprotoState { detection_done: false, ..f.alproto });
    insp.tx_id = e.extra.get("tx_id").and_then(Value::as_u64);
    match e.event_type {
        EventType::Http => {
            let Some(h) = &e.http else { return Vec::new() };
            if h.protocol.as_deref() == Some("HTTP/2")
                && let Some(Parser::Http2(p)) = f.app.as_ref().and_then(|a| a.parser.as_ref())
                && let Some(id) = insp.tx_id
                && p.h1_tx_data(id).is_none()
            {
                // an HTTP/2 transaction no longer kept (too many finished at once) is not inspected
                let Some(tx) = p.tx(id) else {
                    metrics::counter!("soc_sensor_http2_tx_not_inspected_total").increment(1);
                    tracing::debug!(tx_id = id, "HTTP/2 transaction no longer kept: not inspected");
                    return Vec::new();
                };
                insp.app_proto = detect::AppProto::from_name(if p.is_doh() { "doh2" } else { "http2" });
                return http2_hits(det, &insp, tx, request_only(e));
            }
            insp.app_proto = detect::AppProto::from_name("http");
            let data = http_tx_data(f, e);
            let req_h: HeaderList<'_> = data.map(|d| pairs(&d.request_headers)).unwrap_or_default();
            let resp_h: HeaderList<'_> = data.map(|d| pairs(&d.response_headers)).unwrap_or_default();
            let method = h.http_method.as_deref().unwrap_or("");
            let url = h.url.as_deref().unwrap_or("");
            let proto = h.protocol.as_deref().unwrap_or("");
            let request_line = match data {
                Some(d) if !d.request_line.is_empty() => d.request_line.clone(),
                _ => format!("{method} {url} {proto}").into_bytes(),
            };
            let req = http_side(&request_line, &req_h, detect::Direction::ToServer);
            let host_lc = h.hostname.as_deref().map(|s| s.to_ascii_lowercase());
            let uri_norm = h.url.as_deref().map(|u| crate::app::http::normalize_uri(u.as_bytes()));
            insp.http_uri = uri_norm.as_deref();
            insp.http_method = h.http_method.as_deref().map(str::as_bytes);
            insp.http_host = host_lc.as_deref().map(str::as_bytes);
            insp.http_user_agent = h.http_user_agent.as_deref().map(str::as_bytes);
            insp.http_cookie = header(&req_h, "cookie");
            let mut req_events = http_request_events(&req_h);
            if data.is_some_and(|d| d.request_field_too_long) {
                req_events |= detect::AppEvent::HttpRequestFieldTooLong.bit();
            }
            insp.app_events = req_events;
            let have_req_headers = !req_h.is_empty();
            if have_req_headers {
                insp.http_headers = Some(&req.header);
            }
            // the request body as the application sees it (Content-Encoding undone, as libhtp)
            let req_decoded = data.and_then(|d| decoded_body(header(&req_h, "content-encoding"), &d.request_body));
            if let Some(d) = data
                && !d.request_body.is_empty()
            {
                insp.http_request_body = Some(req_decoded.as_deref().unwrap_or(&d.request_body));
            }
            // the request's files: the parts of a multipart body that name a file, or a PUT's
            // body (named by the URI's path)
            let url_path = url.split('?').next().unwrap_or(url).as_bytes();
            let req_body = data.map(|d| req_decoded.as_deref().unwrap_or(&d.request_body)).unwrap_or_default();
            let req_cut = data.is_some_and(|d| d.request_body.len() >= crate::app::http::BODY_LIMIT);
            let mut req_files: Vec<(&[u8], &[u8], bool)> = header(&req_h, "content-type")
                .map(|ct| crate::app::file::multipart_files(ct, req_body))
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, p.data, p.complete))
                .collect();
            if method.eq_ignore_ascii_case("PUT") && !req_body.is_empty() {
                req_files.push((url_path, req_body, !req_cut));
            }
            let req_file_fields: Vec<crate::app::file::FileFields> = req_files
                .iter()
                .map(|(_, d, complete)| crate::app::file::FileFields::of(d, *complete, det.file_digests()))
                .collect();
            let req_file_ints: Vec<(detect::AppInt, u64)> =
                req_file_fields.iter().flat_map(|f| f.ints.iter().copied()).collect();
            let mut other: Vec<(B, &[u8])> = vec![(B::HttpRequestLine, request_line.as_slice())];
            for (name, d, _) in &req_files {
                other.extend([(B::FileData, *d), (B::FileName, *name)]);
            }
            for f in &req_file_fields {
                other.extend(f.digests.iter().map(|(b, v)| (*b, v.as_slice())));
            }
            insp.app_ints = &req_file_ints;
            if let Some(u) = &h.url {
                other.push((B::HttpUriRaw, u.as_bytes()));
            }
            if let Some(x) = &h.hostname {
                other.push((B::HttpHostRaw, x.as_bytes()));
            }
            if !proto.is_empty() {
                other.push((B::HttpProtocol, proto.as_bytes()));
            }
            if have_req_headers {
                other.extend([
                    (
                        B::HttpHeaderRaw,
                        data.map(|d| d.request_headers_raw.as_slice())
                            .filter(|r| !r.is_empty())
                            .unwrap_or(&req.header_raw),
                    ),
                    (B::HttpHeaderNames, req.header_names.as_slice()),
                    (B::HttpStart, req.start.as_slice()),
                ]);
            }
            for (b, name) in [
                (B::HttpReferer, "referer"),
                (B::HttpAccept, "accept"),
                (B::HttpAcceptEnc, "accept-encoding"),
                (B::HttpAcceptLang, "accept-language"),
                (B::HttpConnection, "connection"),
                (B::HttpContentType, "content-type"),
                (B::HttpContentLen, "content-length"),
            ] {
                if let Some(v) = header(&req_h, name) {
                    other.push((b, v));
                }
            }
            // http.request_header: one buffer per header, "Name: value"
            let req_lines: Vec<Vec<u8>> = req_h.iter().map(|(n, v)| [*n, b": ", *v].concat()).collect();
            other.extend(req_lines.iter().map(|l| (B::HttpRequestHeader, l.as_slice())));
            if h.http_refer.is_some() && header(&req_h, "referer").is_none() {
                other.push((B::HttpReferer, h.http_refer.as_deref().unwrap_or("").as_bytes()));
            }
            let req_frame = data
                .filter(|d| !d.request_line.is_empty() && http1_frames_used(det))
                .map(|d| http1_frame(&d.request_line, &d.request_headers_raw, &d.request_body));
            if let Some(fr) = &req_frame {
                other.extend([(B::Http1FrameRequest, fr.as_slice()), (B::Http1FrameStream, fr.as_slice())]);
            }
            insp.other = &other;
            // the request side, once: at the packet completing it, or with the record when
            // the request never completed
            let mut hits = if request_only(e) || !data.is_some_and(|d| d.request_inspected) {
                keep_alerts(det.inspect(&insp))
            } else {
                Vec::new()
            };
            if request_only(e) {
                return hits;
            }
            // the response side (a response without a valid status code is still inspected)
            let response_seen = data.is_some_and(|d| !d.response_line.is_empty() || !d.response_body.is_empty());
            if h.status.is_none() && !response_seen {
                return hits;
            }
            let stat = h.status.map(|s| s.to_string()).unwrap_or_default();
            let status_line = match data {
                Some(d) if !d.response_line.is_empty() => d.response_line.clone(),
                _ => format!("{proto} {stat}").into_bytes(),
            };
            let resp = http_side(&status_line, &resp_h, detect::Direction::ToClient);
            let mut rother: Vec<(B, &[u8])> = vec![(B::HttpResponseLine, status_line.as_slice())];
            let decoded = data.and_then(|d| decoded_body(d.response_content_encoding.as_deref(), &d.response_body));
            // the response body's file: size and digests when no byte of it was cut
            let mut file = crate::app::file::FileFields::default();
            if let Some(d) = data
                && !d.response_body.is_empty()
            {
                let body = decoded.as_deref().unwrap_or(&d.response_body);
                rother.push((B::HttpResponseBody, body));
                rother.push((B::FileData, body));
                let limit = crate::app::http::BODY_LIMIT;
                let complete = d.response_body.len() < limit && body.len() < limit;
                file = crate::app::file::FileFields::of(body, complete, det.file_digests());
                // file.name: the Content-Disposition's file name, else the URI's path
                let name = header(&resp_h, "content-disposition").and_then(crate::app::file::disposition_filename);
                rother.push((B::FileName, name.unwrap_or(url_path)));
            }
            rother.extend(file.digests.iter().map(|(b, v)| (*b, v.as_slice())));
            let resp_lines: Vec<Vec<u8>> = resp_h.iter().map(|(n, v)| [*n, b": ", *v].concat()).collect();
            rother.extend(resp_lines.iter().map(|l| (B::HttpResponseHeader, l.as_slice())));
            if let Some(msg) = status_line.splitn(3, |&c| c == b' ').nth(2) {
                rother.push((B::HttpStatMsg, msg));
            }
            if !proto.is_empty() {
                rother.push((B::HttpProtocol, proto.as_bytes()));
            }
            if !resp_h.is_empty() {
                rother.extend([
                    (
                        B::HttpHeaderRaw,
                        data.map(|d| d.response_headers_raw.as_slice())
                            .filter(|r| !r.is_empty())
                            .unwrap_or(&resp.header_raw),
                    ),
                    (B::HttpHeaderNames, resp.header_names.as_slice()),
                    (B::HttpStart, resp.start.as_slice()),
                ]);
            }
            for (b, name) in [
                (B::HttpLocation, "location"),
                (B::HttpServer, "server"),
                (B::HttpConnection, "connection"),
                (B::HttpContentType, "content-type"),
                (B::HttpContentLen, "content-length"),
            ] {
                if let Some(v) = header(&resp_h, name) {
                    rother.push((b, v));
                }
            }
            let resp_frame = data
                .filter(|d| !d.response_line.is_empty() && http1_frames_used(det))
                .map(|d| http1_frame(&d.response_line, &d.response_headers_raw, &d.response_body));
            if let Some(fr) = &resp_frame {
                rother.extend([(B::Http1FrameResponse, fr.as_slice()), (B::Http1FrameStream, fr.as_slice())]);
            }
            if resp_h.is_empty() {
                if let Some(ct) = &h.http_content_type {
                    rother.push((B::HttpContentType, ct.as_bytes()));
                }
                if let Some(loc) = &h.redirect {
                    rother.push((B::HttpLocation, loc.as_bytes()));
                }
            }
            let mut r = to_client(&insp, &rother);
            r.app_proto = insp.app_proto;
            r.established = insp.established;
            r.transaction = true;
            r.flow_id = insp.flow_id;
            r.tx_id = insp.tx_id;
            r.ts_micros = insp.ts_micros;
            r.app_ints = &file.ints;
            r.http_stat_code = h.status.is_some().then_some(stat.as_bytes());
            r.http_cookie = header(&resp_h, "set-cookie");
            if !resp_h.is_empty() {
                r.http_headers = Some(&resp.header);
            }
            hits.extend(keep_alerts(det.inspect(&r)));
            hits
        }
        EventType::Dns => {
            let Some(d) = &e.dns else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("dns");
            // the names of each section, one buffer per record (multi-buffers)
            let queries: Vec<&[u8]> = d.queries.iter().filter_map(|q| q.rrname.as_deref()).map(str::as_bytes).collect();
            let mut other: Vec<(B, &[u8])> = queries.iter().map(|q| (B::DnsQueriesRrname, *q)).collect();
            let (answers, authorities, additionals) = (
                dns_names(d.answers.as_deref()),
                dns_names(d.authorities.as_deref()),
                dns_names(d.additionals.as_deref()),
            );
            other.extend(answers.iter().map(|n| (B::DnsAnswersRrname, *n)));
            other.extend(authorities.iter().map(|n| (B::DnsAuthoritiesRrname, *n)));
            other.extend(additionals.iter().map(|n| (B::DnsAdditionalsRrname, *n)));
            // dns.rcode: the header's response code (in requests too), from the flags
            let rcode = d.flags.as_deref().and_then(|f| u16::from_str_radix(f, 16).ok()).map(|f| f & 0xf);
            let rcode_int = rcode.map(|r| [(detect::AppInt::DnsRcode, u64::from(r))]);
            if let Some(ints) = &rcode_int {
                insp.app_ints = ints;
            }
            match d.kind.as_deref() {
                Some("request") => {
                    let Some(q) = queries.first() else { return Vec::new() };
                    insp.dns_query = Some(q);
                    insp.other = &other;
                    keep_alerts(det.inspect(&insp))
                }
                Some("response") => {
                    // dns.response.rrname: every name of the response, queries first
                    let all: Vec<&[u8]> =
                        queries.iter().chain(&answers).chain(&authorities).chain(&additionals).copied().collect();
                    other.extend(all.iter().map(|n| (B::DnsResponseRrname, *n)));
                    let mut resp = to_client(&insp, &other);
                    resp.app_proto = insp.app_proto;
                    resp.established = insp.established;
                    resp.flow_id = insp.flow_id;
                    resp.ts_micros = insp.ts_micros;
                    resp.transaction = true;
                    resp.tx_id = insp.tx_id;
                    resp.app_ints = insp.app_ints;
                    keep_alerts(det.inspect(&resp))
                }
                _ => Vec::new(),
            }
        }
        EventType::Tls => {
            let Some(t) = &e.tls else { return Vec::new() };
            insp.app_proto = detect::AppProto::from_name("tls");
            insp.tls_sni = t.sni.as_deref().map(str::as_bytes);
            let mut other: Vec<(B, &[u8])> = Vec::new();
            if let Some(j4) = &t.ja4 {
                other.push((B::Ja4Hash, j4.as_bytes()));
            }
            if let Some(j) = &t.ja3 {
                if let Some(x) = &j.hash {
                    other.push((B::Ja3Hash, x.as_bytes()));
                }
                if let Some(x) = &j.string {
                    other.push((B::Ja3String, x.as_bytes()));
                }
            }
            // tls.random / _time / _bytes: each side's hello random, while the parser is alive
            let tls_parser = match f.app.as_ref().and_then(|a| a.parser.as_ref()) {
                Some(Parser::Tls(p)) => Some(p),
                _ => None,
            };
            let (client_random, server_random) = tls_parser.map(|p| p.randoms()).unwrap_or_default();
            if let Some(r) = client_random {
                other.extend(random_buffers(r));
            }
            insp.other = &other;
            let mut hits = keep_alerts(det.inspect(&insp));
            let mut rother: Vec<(B, &[u8])> = Vec::new();
            if let Some(r) = server_random {
                rother.extend(random_buffers(r));
            }
            for (b, v) in [
                (B::TlsCertSubject, &t.subject),
                (B::TlsCertIssuer, &t.issuerdn),
                (B::TlsCertSerial, &t.serial),
                (B::TlsCertFingerprint, &t.fingerprint),
            ] {
                if let Some(v) = v {
                    rother.push((b, v.as_bytes()));
                }
            }
            // tls.subjectaltname: one buffer per name of the server certificate
            if let Some(Value::Array(names)) = t.extra.get("subjectaltname") {
                for n in names.iter().filter_map(Value::as_str) {
                    rother.push((B::TlsSubjectAltName, n.as_bytes()));
                }
            }
            // tls.certs: one buffer per certificate of the chain, while the parser is alive
            if let Some(p) = tls_parser {
                for c in p.certificates() {
                    rother.push((B::TlsCerts, c.as_slice()));
                }
            }
            if let Some(j) = &t.ja3s {
                if let Some(x) = &j.hash {
                    rother.push((B::Ja3sHash, x.as_bytes()));
                }
                if let Some(x) = &j.string {
                    rother.push((B::Ja3sString, x.as_bytes()));
                }
            }
            // the handshake's decoding anomalies (app-layer-event), with the server side
            let anomalies = tls_parser.map(|p| p.anomalies()).unwrap_or_default();
            let mut events = 0;
            if anomalies.invalid_handshake_message {
                events |= detect::AppEvent::TlsInvalidHandshakeMessage.bit();
            }
            if anomalies.certificate_invalid_length {
                events |= detect::AppEvent::TlsCertificateInvalidLength.bit();
            }
            // tls.cert_chain_len: the server's chain, while the parser is alive
            let chain = tls_parser
                .map(|p| p.certificates().len() as u64)
                .filter(|&n| n > 0)
                .map(|n| [(detect::AppInt::TlsCertChainLen, n)]);
            if !rother.is_empty() || events != 0 {
                let mut r = to_client(&insp, &rother);
                if let Some(c) = &chain {
                    r.app_ints = c;
                }
                r.app_events = events;
                r.app_proto = insp.app_proto;
                r.established = insp.established;
                r.transaction = true;
                r.flow_id = insp.flow_id;
                r.tx_id = insp.tx_id;
                r.ts_micros = insp.ts_micros;
                hits.extend(keep_alerts(det.inspect(&r)));
            }
            // transactional (`=>`) rules: the handshake with both sides' buffers
            if det.has_transactional() && !rother.is_empty() {
                let both: Vec<(B, &[u8])> = other.iter().chain(rother.iter()).copied().collect();
                let w = Inspection { other: &both, whole_tx: true, app_events: events, ..insp };
                hits.extend(keep_alerts(det.inspect(&w)));
            }
            hits
        }
        _ => Vec::new(),
    }
}

/// Rules that match one side of an SMB or DCERPC transaction (see
/// [`crate::app::dcerpc::TxInspect`]): `smb.*`, `dcerpc.*` and SMB `file.data`.
pub(crate) fn inspect_tx_hits(det: &Detector, f: &Flow, t: &crate::app::dcerpc::TxInspect, ts_micros: i64) -> Vec<Hit> {
    use detect::Buffer as B;
    let mut other: Vec<(B, &[u8])> = Vec::new();
    for (b, v) in [
        (B::DcerpcStubData, &t.stub),
        (B::SmbShare, &t.share),
        (B::SmbNamedPipe, &t.named_pipe),
        (B::FileData, &t.file_data),
        (B::SmbNtlmsspUser, &t.ntlmssp_user),
        (B::SmbNtlmsspDomain, &t.ntlmssp_domain),
    ] {
        if let Some(v) = v {
            other.push((b, v.as_slice()));
        }
    }
    other.extend(t.bufs.iter().map(|(b, v)| (*b, v.as_slice())));
    // a complete file (its size known): the digests the rules look up
    let complete = t.ints.iter().any(|(k, _)| *k == detect::AppInt::FileSize);
    let file = match &t.file_data {
        Some(d) if complete => crate::app::file::FileFields::of(d, true, det.file_digests()),
        _ => crate::app::file::FileFields::default(),
    };
    other.extend(file.digests.iter().map(|(b, v)| (*b, v.as_slice())));
    // the whole files among the transaction's file.data buffers (an SMTP mail's attachments)
    let want = det.file_digests();
    let digests: Vec<crate::app::file::FileFields> = if want.contains(&true) {
        t.bufs
            .iter()
            .filter(|(b, _)| *b == B::FileData)
            .zip(&t.whole_files)
            .map(|((_, d), whole)| crate::app::file::FileFields::of(d, *whole, want))
            .collect()
    } else {
        Vec::new()
    };
    for f in &digests {
        other.extend(f.digests.iter().map(|(b, v)| (*b, v.as_slice())));
    }
    let mut ints: Vec<(detect::AppInt, u64)> = t.ints.clone();
    ints.extend(t.smb_version.map(|v| (detect::AppInt::SmbVersion, u64::from(v))));
    let base = Inspection::new(
        transport(f.proto),
        f.client,
        f.client_port,
        f.server,
        f.server_port,
        detect::Direction::ToServer,
        &[],
    );
    let mut insp = match t.dir {
        Direction::ToClient => to_client(&base, &other),
        Direction::ToServer => Inspection { other: &other, ..base },
    };
    insp.established = established(f);
    insp.app_proto = app_proto(t.proto);
    insp.flow_id = f.id;
    insp.ts_micros = ts_micros;
    insp.transaction = true;
    insp.alproto = Some(detect::compile::AlprotoState { detection_done: false, ..f.alproto });
    insp.app_ints = &ints;
    insp.dce = t.dce.as_ref();
    insp.app_events = t.app_events;
    keep_alerts(det.inspect(&insp))
}

/// Whether a rule inspects an HTTP/1 frame (they are built for those only).
fn http1_frames_used(det: &Detector) -> bool {
    use detect::Buffer as B;
    [B::Http1FrameRequest, B::Http1FrameResponse, B::Http1FrameStream].iter().any(|b| det.uses_buffer(*b))
}

/// An HTTP/1 message as on the wire (`frame:http1.request`, `frame:http1.response`): its start
/// line, its header lines as sent, the blank line and its body as the parser kept it (up to
/// its limit, without what a gap lost). `frame:http1.stream` (the direction's stream data) is
/// inspected as the message that brought it.
fn http1_frame(line: &[u8], headers_raw: &[u8], body: &[u8]) -> Vec<u8> {
    [line, b"\r\n", headers_raw, b"\r\n", body].concat()
}

/// Buffers of one side of an HTTP/2 transaction, as Suricata builds them from the decoded
/// header fields (pseudo-headers included).
struct Http2Side {
    header: Vec<u8>,
    header_raw: Vec<u8>,
    header_names: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

fn http2_side(hs: &[(&[u8], &[u8])], dir: detect::Direction) -> Http2Side {
    let header = detect::http_header_buffer(dir, hs.iter().copied());
    let mut header_raw = Vec::new();
    let mut header_names = b"\r\n".to_vec();
    let mut lines = Vec::with_capacity(hs.len());
    for (n, v) in hs {
        header_raw.extend_from_slice(n);
        header_raw.extend_from_slice(b": ");
        header_raw.extend_from_slice(v);
        header_raw.extend_from_slice(b"\r\n");
        header_names.extend_from_slice(n);
        header_names.extend_from_slice(b"\r\n");
        lines.push([*n, b": ", *v].concat());
    }
    header_names.extend_from_slice(b"\r\n");
    Http2Side { header, header_raw, header_names, lines }
}

/// `frame:http2.hdr`, `.data` and `.pdu` of each frame.
fn frame_buffers(frames: &[Vec<u8>]) -> impl Iterator<Item = (detect::Buffer, &[u8])> {
    use detect::Buffer as B;
    frames.iter().flat_map(|f| {
        let (hdr, data) = f.split_at(f.len().min(9));
        [(B::Http2FrameHdr, hdr), (B::Http2FrameData, data), (B::Http2FramePdu, f.as_slice())]
    })
}

/// The EVE form of a DNS-over-HTTPS message (for its names).
fn doh_dns(msg: Option<&[u8]>) -> Option<soc_model::Dns> {
    let m = crate::app::dns::parse_message(msg?).ok()?;
    Some(crate::app::dns::to_eve(&m, 0))
}

/// The app-layer events of an HTTP/2 request: userinfo in `:authority`, and an `:authority`
/// whose host differs from the `host` header's.
fn http2_request_events(tx: &H2Tx) -> u64 {
    use crate::app::Direction as D;
    use crate::app::http2::host_of;
    let mut events = 0;
    let Some(authority) = tx.header(D::ToServer, ":authority") else { return 0 };
    if authority.contains(&b'@') {
        events |= detect::AppEvent::Http2UserinfoInUri.bit();
    }
    if let Some(host) = tx.header(D::ToServer, "host")
        && !host_of(authority).eq_ignore_ascii_case(host_of(host))
    {
        events |= detect::AppEvent::Http2AuthorityHostMismatch.bit();
    }
    events
}

/// Rules that match one HTTP/2 transaction ([`crate::app::http2`]): the request side at its
/// request record (or with the final record when it had none), the response side with the
/// final record; a global (stream 0) transaction's two sides at once. http.* buffers as
/// Suricata maps them for HTTP/2, `http2.frametype`, and the dns.* buffers of a DNS-over-HTTPS
/// message.
fn http2_hits(det: &Detector, base: &Inspection<'_>, tx: &H2Tx, request_record: bool) -> Vec<Hit> {
    use crate::app::Direction as D;
    use detect::Buffer as B;
    const PROTO: &[u8] = b"HTTP/2";
    let mut hits = Vec::new();
    let frame_ints = |d: usize| -> Vec<(detect::AppInt, u64)> {
        use detect::AppInt as I;
        let mut v: Vec<(I, u64)> = tx.frames[d].iter().map(|&t| (I::Http2FrameType, u64::from(t))).collect();
        v.extend(tx.error_codes[d].iter().map(|&c| (I::Http2ErrorCode, u64::from(c))));
        v.extend(tx.windows[d].iter().map(|&w| (I::Http2Window, u64::from(w))));
        v.extend(tx.priorities[d].iter().map(|&p| (I::Http2Priority, u64::from(p))));
        v.extend(tx.size_updates[d].iter().map(|&u| (I::Http2SizeUpdate, u)));
        v.extend(tx.settings[d].iter().map(|&x| (I::Http2Settings, x)));
        v
    };
    if request_record || !tx.request_handed() {
        let hs = pairs(&tx.request_headers);
        let side = http2_side(&hs, detect::Direction::ToServer);
        let method = tx.header(D::ToServer, ":method");
        let path = tx.header(D::ToServer, ":path");
        let authority = tx.header(D::ToServer, ":authority");
        let host = authority.map(|a| crate::app::http2::host_of(a).to_ascii_lowercase());
        let request_line = (method.is_some() || path.is_some())
            .then(|| [method.unwrap_or_default(), b" ", path.unwrap_or_default(), b" HTTP/2"].concat());
        let body = decoded_body(header(&hs, "content-encoding"), &tx.request_body);
        let dns = doh_dns(tx.dns_request.as_deref());
        let queries: Vec<&[u8]> = dns
            .as_ref()
            .map(|d| d.queries.iter().filter_map(|q| q.rrname.as_deref()).map(str::as_bytes).collect())
            .unwrap_or_default();
        let ints = frame_ints(0);
        let mut insp = *base;
        insp.app_ints = &ints;
        insp.http_uri = path;
        insp.http_method = method;
        insp.http_host = host.as_deref();
        insp.http_user_agent = tx.header(D::ToServer, "user-agent");
        insp.http_cookie = tx.header(D::ToServer, "cookie");
        if !hs.is_empty() {
            insp.http_headers = Some(&side.header);
        }
        if !tx.request_body.is_empty() {
            insp.http_request_body = Some(body.as_deref().unwrap_or(&tx.request_body));
        }
        insp.dns_query = queries.first().copied();
        insp.app_events = http2_request_events(tx);
        let mut other: Vec<(B, &[u8])> = vec![(B::HttpProtocol, PROTO)];
        if let Some(l) = &request_line {
            other.push((B::HttpRequestLine, l));
        }
        if let Some(p) = path {
            other.push((B::HttpUriRaw, p));
        }
        if let Some(a) = authority {
            other.push((B::HttpHostRaw, a));
        }
        if !hs.is_empty() {
            other.extend([(B::HttpHeaderRaw, side.header_raw.as_slice()), (B::HttpHeaderNames, &side.header_names)]);
        }
        other.extend(side.lines.iter().map(|l| (B::HttpRequestHeader, l.as_slice())));
        for (b, name) in [
            (B::HttpReferer, "referer"),
            (B::HttpAccept, "accept"),
            (B::HttpAcceptEnc, "accept-encoding"),
            (B::HttpAcceptLang, "accept-language"),
            (B::HttpContentType, "content-type"),
            (B::HttpContentLen, "content-length"),
        ] {
            if let Some(v) = tx.header(D::ToServer, name) {
                other.push((b, v));
            }
        }
        other.extend(queries.iter().map(|q| (B::DnsQueriesRrname, *q)));
        other.extend(frame_buffers(&tx.raw_frames[0]));
        other.extend(tx.request_headers.iter().map(|(n, _)| (B::Http2HeaderName, n.as_slice())));
        insp.other = &other;
        hits.extend(keep_alerts(det.inspect(&insp)));
    }
    if request_record && !tx.global {
        return hits;
    }
    let hs = pairs(&tx.response_headers);
    let side = http2_side(&hs, detect::Direction::ToClient);
    let status = tx.header(D::ToClient, ":status");
    let response_line = status.map(|s| [b"HTTP/2 ", s, b"\r\n"].concat());
    let body = decoded_body(header(&hs, "content-encoding"), &tx.response_body);
    let dns = doh_dns(tx.dns_response.as_deref());
    let names = |f: fn(&soc_model::Dns) -> Vec<&[u8]>| dns.as_ref().map(f).unwrap_or_default();
    let queries = names(|d| d.queries.iter().filter_map(|q| q.rrname.as_deref()).map(str::as_bytes).collect());
    let answers = names(|d| dns_names(d.answers.as_deref()));
    let authorities = names(|d| dns_names(d.authorities.as_deref()));
    let additionals = names(|d| dns_names(d.additionals.as_deref()));
    let ints = frame_ints(1);
    // http.stat_msg: HTTP/2 has no reason phrase, an empty buffer
    let mut rother: Vec<(B, &[u8])> = vec![(B::HttpProtocol, PROTO), (B::HttpStatMsg, b"")];
    if let Some(l) = &response_line {
        rother.push((B::HttpResponseLine, l));
    }
    if !tx.response_body.is_empty() {
        let b = body.as_deref().unwrap_or(&tx.response_body);
        rother.extend([(B::HttpResponseBody, b), (B::FileData, b)]);
    }
    if !hs.is_empty() {
        rother.extend([(B::HttpHeaderRaw, side.header_raw.as_slice()), (B::HttpHeaderNames, &side.header_names)]);
    }
    rother.extend(side.lines.iter().map(|l| (B::HttpResponseHeader, l.as_slice())));
    for (b, name) in [
        (B::HttpLocation, "location"),
        (B::HttpServer, "server"),
        (B::HttpContentType, "content-type"),
        (B::HttpContentLen, "content-length"),
    ] {
        if let Some(v) = tx.header(D::ToClient, name) {
            rother.push((b, v));
        }
    }
    rother.extend(frame_buffers(&tx.raw_frames[1]));
    rother.extend(tx.response_headers.iter().map(|(n, _)| (B::Http2HeaderName, n.as_slice())));
    if dns.is_some() {
        rother.extend(queries.iter().map(|n| (B::DnsQueriesRrname, *n)));
        rother.extend(answers.iter().map(|n| (B::DnsAnswersRrname, *n)));
        rother.extend(authorities.iter().map(|n| (B::DnsAuthoritiesRrname, *n)));
        rother.extend(additionals.iter().map(|n| (B::DnsAdditionalsRrname, *n)));
        let all = queries.iter().chain(&answers).chain(&authorities).chain(&additionals);
        rother.extend(all.map(|n| (B::DnsResponseRrname, *n)));
    }
    let mut r = to_client(base, &rother);
    r.app_proto = base.app_proto;
    r.established = base.established;
    r.transaction = true;
    r.flow_id = base.flow_id;
    r.tx_id = base.tx_id;
    r.ts_micros = base.ts_micros;
    r.app_ints = &ints;
    r.http_stat_code = status;
    r.http_cookie = tx.header(D::ToClient, "set-cookie");
    if !hs.is_empty() {
        r.http_headers = Some(&side.header);
    }
    hits.extend(keep_alerts(det.inspect(&r)));
    hits
}

/// `pass` hits stop inspection; they are not alerts (unless the rule has the `alert` keyword).
fn keep_alerts(hits: Vec<Hit>) -> Vec<Hit> {
    hits.into_iter().filter(|h| h.action != Action::Pass || h.alert).collect()
}

/// The EVE `alert` payload of a hit. In IDS mode drop/reject rules alert and are marked
/// (`action: "allowed"`, the rule's action kept in `alert.rule_action`); in IPS mode their
/// hits are [`Hit::blocked`] (`action: "blocked"`).
pub(crate) fn alert_payload(h: &Hit) -> Alert {
    let mut meta = Map::new();
    for (k, vs) in h.metadata.iter() {
        meta.insert(k.to_string(), Value::Array(vs.iter().map(|v| Value::String(v.to_string())).collect()));
    }
    let mut a = Alert {
        action: Some(if h.blocked { "blocked" } else { "allowed" }.into()),
        gid: Some(h.gid as u64),
        signature_id: Some(h.sid as u64),
        rev: Some(h.rev as u64),
        signature: Some(h.msg.to_string()),
        category: Some(h.category.as_deref().unwrap_or("").to_string()),
        severity: Some(h.severity),
        metadata: (!meta.is_empty()).then_some(meta),
        ..Default::default()
    };
    if h.action != Action::Alert {
        a.extra.insert("rule_action".into(), Value::String(format!("{:?}", h.action).to_ascii_lowercase()));
    }
    if !h.context.is_empty() {
        let ctx: Map<String, Value> =
            h.context.iter().map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or(Value::Null))).collect();
        a.extra.insert("context".into(), Value::Object(ctx));
    }
    a
}

/// An alert record for a hit on a transaction record `tx` (its app-layer object is copied).
pub(crate) fn alert_from_transaction(tx: &Event, h: &Hit) -> Event {
    let mut e = Event::new(EventType::Alert, tx.timestamp);
    e.flow_id = tx.flow_id;
    e.src_ip = tx.src_ip.clone();
    e.src_port = tx.src_port;
    e.dest_ip = tx.dest_ip.clone();
    e.dest_port = tx.dest_port;
    e.proto = tx.proto.clone();
    e.ip_v = tx.ip_v;
    e.community_id = tx.community_id.clone();
    e.sensor = tx.sensor.clone();
    e.segment = tx.segment.clone();
    e.app_proto = Some(tx.event_type.to_string());
    if tx.http.as_ref().is_some_and(|h| h.protocol.as_deref() == Some("HTTP/2")) {
        e.app_proto = Some("http2".into());
    }
    e.http = tx.http.clone();
    e.dns = tx.dns.clone();
    e.tls = tx.tls.clone();
    for k in ["pcap_cnt", "tx_id", "vlan"] {
        if let Some(v) = tx.extra.get(k) {
            e.extra.insert(k.into(), v.clone());
        }
    }
    if h.direction == detect::Direction::ToClient {
        std::mem::swap(&mut e.src_ip, &mut e.dest_ip);
        std::mem::swap(&mut e.src_port, &mut e.dest_port);
        e.extra.insert("direction".into(), Value::String("to_client".into()));
    } else {
        e.extra.insert("direction".into(), Value::String("to_server".into()));
    }
    e.alert = Some(alert_payload(h));
    e
}

#[cfg(test)]
mod tests {
    use crate::decode::LinkType;
    use crate::detect::{Detector, Vars};
    use crate::synth::{self, Host, TcpSession};
    use crate::{Sensor, SensorOptions};
    use soc_model::{Event, EventType, Timestamp};
    use std::sync::Arc;

    const RULES: &str = r#"
alert http any any -> any any (msg:"uri traversal"; flow:established,to_server; http.uri; content:"../"; sid:1; rev:2;)
alert tcp any any -> any 80 (msg:"raw payload"; flow:to_server; content:"passwd"; sid:2;)
alert dns any any -> any any (msg:"bad domain"; dns.query; content:"evil.example"; endswith; sid:3;)
pass http any any -> any any (msg:"pass allowed host"; http.host; content:"allowed.example"; sid:4;)
"#;

    fn sensor() -> Sensor {
        let (det, errors) = Detector::from_rules(RULES, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        Sensor::new(SensorOptions { sensor_name: "s".into(), segment: "cpnet".into(), ..Default::default() })
            .with_detector(Arc::new(det))
    }

    fn run(sensor: &mut Sensor, frames: Vec<Vec<u8>>) -> Vec<Event> {
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            sensor.process(
                Timestamp::from_unix_micros(1_700_000_000_000_000 + i as i64 * 1000),
                LinkType::Ethernet,
                f,
                &mut out,
            );
        }
        sensor.flush_all(&mut out);
        out
    }

    fn http_frames(host: &str, path: &str) -> Vec<Vec<u8>> {
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 80]), 80);
        let mut f = s.handshake();
        f.push(s.client_send(&synth::http_request("GET", host, path, &[])));
        f.push(s.server_send(&synth::http_response(404, "Not Found", "text/plain", b"no")));
        f.extend(s.close());
        f
    }

    #[test]
    fn transaction_and_packet_hits_become_eve_alerts_with_flow_and_http_metadata() {
        let mut s = sensor();
        // in the query: the normalized http.uri keeps it (dot segments of the path are removed)
        let out = run(&mut s, http_frames("portal.example", "/a?f=../../etc/passwd"));
        let alerts: Vec<&Event> = out.iter().filter(|e| e.event_type == EventType::Alert).collect();
        let sids: Vec<u64> = alerts.iter().filter_map(|a| a.alert.as_ref()?.signature_id).collect();
        assert!(sids.contains(&1) && sids.contains(&2), "{sids:?}");
        let tx = alerts.iter().find(|a| a.alert.as_ref().unwrap().signature_id == Some(1)).unwrap();
        assert_eq!(tx.http.as_ref().unwrap().url.as_deref(), Some("/a?f=../../etc/passwd"));
        assert_eq!(tx.src_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(tx.alert.as_ref().unwrap().rev, Some(2));
        assert_eq!(tx.segment.as_deref(), Some("cpnet"));
        let flow = out.iter().find(|e| e.event_type == EventType::Flow).unwrap();
        assert_eq!(flow.flow.as_ref().unwrap().alerted, Some(true));
        assert_eq!(tx.flow_id, flow.flow_id);
        assert_eq!(s.stats().records.alert, alerts.len() as u64);
    }

    #[test]
    fn request_side_rules_alert_once_at_the_packet_completing_the_request() {
        let mut s = sensor();
        let out = run(&mut s, http_frames("portal.example", "/a?f=../x"));
        let pcap_cnt = |e: &Event| e.extra.get("pcap_cnt").and_then(serde_json::Value::as_u64);
        let uri_alerts: Vec<&Event> =
            out.iter().filter(|e| e.alert.as_ref().is_some_and(|a| a.signature_id == Some(1))).collect();
        assert_eq!(uri_alerts.len(), 1, "{uri_alerts:?}");
        // one http record, logged when the transaction completes, after the request's alert
        let http: Vec<&Event> = out.iter().filter(|e| e.event_type == EventType::Http).collect();
        assert_eq!(http.len(), 1);
        assert!(!http[0].extra.contains_key(super::REQUEST_ONLY));
        let (a, h) = (pcap_cnt(uri_alerts[0]), pcap_cnt(http[0]));
        assert!(a.is_some() && h.is_some() && a < h, "alert at {a:?}, record at {h:?}");
        assert_eq!(uri_alerts[0].http.as_ref().and_then(|h| h.http_method.as_deref()), Some("GET"));
    }

    #[test]
    fn header_buffers_and_flow_counts_are_inspected_on_packets_without_payload() {
        let rules = "alert tcp any any -> any 80 (tcp.hdr; content:\"|00 50|\"; offset:2; depth:2; sid:10;)\n\
                     alert tcp any any -> any 80 (ipv4.hdr; content:\"|06|\"; offset:9; depth:1; flow.pkts:toserver,=1; sid:11;)";
        let (det, errors) = Detector::from_rules(rules, "t.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let out = run(&mut s, http_frames("a.example", "/"));
        let count =
            |sid: u64| out.iter().filter(|e| e.alert.as_ref().is_some_and(|a| a.signature_id == Some(sid))).count();
        // every client packet to port 80 (SYN, ACK, request, FIN, ...); the first one only
        assert!(count(10) >= 3, "{}", count(10));
        assert_eq!(count(11), 1);
    }

    #[test]
    fn content_encoded_bodies_are_decoded_for_file_data() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"EICAR test body").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"gzip"), &gz).as_deref(), Some(&b"EICAR test body"[..]));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib body").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"deflate"), &z).as_deref(), Some(&b"zlib body"[..]));
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"raw body").unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(super::decoded_body(Some(b"Deflate"), &raw).as_deref(), Some(&b"raw body"[..]));
        // truncated: what was decoded so far
        let cut = super::decoded_body(Some(b"gzip"), &gz[..gz.len() - 8]).unwrap();
        assert!(b"EICAR test body".starts_with(&cut));
        assert_eq!(super::decoded_body(None, b"plain"), None);
        assert_eq!(super::decoded_body(Some(b"br"), b"x"), None);
    }

    #[test]
    fn dns_query_rules_match_requests_and_benign_traffic_is_quiet() {
        let mut s = sensor();
        let c = Host::v4([10, 0, 0, 5]);
        let d = Host::v4([10, 0, 0, 53]);
        let q = synth::udp_frame(&c, 40000, &d, 53, &synth::dns_query(7, "www.evil.example", 1));
        let ok = synth::udp_frame(&c, 40001, &d, 53, &synth::dns_query(8, "moha.gov.vn", 1));
        let out = run(&mut s, vec![q, ok]);
        let alerts: Vec<&Event> = out.iter().filter(|e| e.event_type == EventType::Alert).collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].dns.as_ref().unwrap().queries[0].rrname.as_deref(), Some("www.evil.example"));
        let benign = run(&mut sensor(), http_frames("portal.example", "/index.html"));
        assert!(benign.iter().all(|e| e.event_type != EventType::Alert));
    }

    #[test]
    fn dns_responses_are_inspected_with_the_names_of_each_section() {
        let rules = "alert dns any any -> any any (dns.response.rrname; content:\"cdn.example\"; sid:1;)\n\
                     alert dns any any -> any any (dns.answers.rrname; content:\"www.example\"; sid:2;)\n\
                     alert dns any any -> any any (flow:to_server; dns.queries.rrname; content:\"www.example\"; sid:3;)\n\
                     alert dns any any -> any any (dns.response.rrname; content:\"other.example\"; sid:4;)\n";
        let (det, errors) = Detector::from_rules(rules, "dns.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (c, d) = (Host::v4([10, 0, 0, 5]), Host::v4([10, 0, 0, 53]));
        let answers = [
            synth::DnsRr::Cname("www.example", "cdn.example", 60),
            synth::DnsRr::A("cdn.example", [1, 2, 3, 4].into(), 60),
        ];
        let frames = vec![
            synth::udp_frame(&c, 40000, &d, 53, &synth::dns_query(7, "www.example", 1)),
            synth::udp_frame(&d, 53, &c, 40000, &synth::dns_response(7, "www.example", 1, 0, &answers)),
        ];
        let out = run(&mut s, frames);
        let mut sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        sids.sort_unstable();
        assert_eq!(sids, [1, 2, 3], "{out:?}");
    }

    #[test]
    fn dns_rcode_matches_the_header_code_of_requests_and_responses() {
        let rules = "alert dns any any -> any any (dns.rcode:3; flow:to_client; sid:1;)\n\
                     alert dns any any -> any any (dns.rcode:!0; sid:2;)\n\
                     alert dns any any -> any any (dns.rcode:0; flow:to_server; sid:3;)\n\
                     alert dns any any -> any any (dns.rcode:2; sid:4;)\n";
        let (det, errors) = Detector::from_rules(rules, "dns.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (c, d) = (Host::v4([10, 0, 0, 5]), Host::v4([10, 0, 0, 53]));
        let frames = vec![
            synth::udp_frame(&c, 40000, &d, 53, &synth::dns_query(7, "gone.example", 1)),
            synth::udp_frame(&d, 53, &c, 40000, &synth::dns_response(7, "gone.example", 1, 3, &[])),
        ];
        let out = run(&mut s, frames);
        let mut sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        sids.sort_unstable();
        assert_eq!(sids, [1, 2, 3], "{out:?}");
        let (_, errors) = Detector::from_rules(
            "alert dns any any -> any any (dns.rcode:70000; sid:5;)\n",
            "dns.rules",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn ntp_header_keywords_match_requests_and_replies() {
        let rules = "alert ntp any any -> any any (ntp.version:4; ntp.mode:client; sid:1;)\n\
                     alert ntp any any -> any any (flow:to_client; ntp.stratum:>1; ntp.reference_id; content:\"LOCL\"; sid:2;)\n\
                     alert ntp any any -> any any (ntp.mode:!server; ntp.version:<4; sid:3;)\n";
        let (det, errors) = Detector::from_rules(rules, "ntp.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (c, d) = (Host::v4([10, 0, 0, 5]), Host::v4([10, 0, 0, 123]));
        let mut req = vec![0u8; 48];
        req[0] = 0x23; // version 4, client
        let mut rsp = vec![0u8; 48];
        rsp[0] = 0x24; // version 4, server
        rsp[1] = 2;
        rsp[12..16].copy_from_slice(b"LOCL");
        let frames = vec![synth::udp_frame(&c, 40000, &d, 123, &req), synth::udp_frame(&d, 123, &c, 40000, &rsp)];
        let out = run(&mut s, frames);
        let sids: Vec<u64> =
            out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect::<Vec<_>>();
        assert_eq!(sids, [1, 2], "{out:?}");
    }

    #[test]
    fn sip_and_snmp_messages_are_inspected_as_transactions_of_their_protocol() {
        let rules = "alert sip any any -> any any (flow:to_server; sip.method; content:\"INVITE\"; sid:1;)\n\
                     alert sip any any -> any any (sip.stat_code; content:\"200\"; sid:2;)\n\
                     alert snmp any any -> any any (snmp.version:2; snmp.community; content:\"public\"; sid:3;)\n\
                     alert sip any any -> any any (sip.method; content:\"BYE\"; sid:4;)\n";
        let (det, errors) = Detector::from_rules(rules, "msg.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (c, d) = (Host::v4([10, 0, 0, 5]), Host::v4([10, 0, 0, 60]));
        let invite = b"INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        // SNMPv2c get-request, community "public"
        let snmp = [
            0x30, 0x19, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x0c, 0x02, 0x01, 0x01,
            0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x01, 0x00,
        ];
        let frames = vec![
            synth::udp_frame(&c, 5060, &d, 5060, invite),
            synth::udp_frame(&d, 5060, &c, 5060, ok),
            synth::udp_frame(&c, 40000, &d, 161, &snmp),
            // the same SIP message on other ports is not SIP
            synth::udp_frame(&c, 7000, &d, 7001, invite),
        ];
        let out = run(&mut s, frames);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids, [1, 2, 3], "{out:?}");
    }

    #[test]
    fn decode_event_rules_match_packets_with_the_event_and_unknown_events_are_rejected() {
        let rules = "alert ipv6 any any -> any any (decode-event:ipv6.exthdr_useless_fh; sid:1;)\n\
                     alert ipv6 any any -> any any (decode-event:ipv6.exthdr_dupl_fh; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "events.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let udp = synth::udp(src.into(), dst.into(), 5000, 53, b"q");
        let frame = |first: u8, ext: &[u8]| {
            synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &synth::ipv6(src, dst, first, 64, ext, &udp))
        };
        let out = run(&mut s, vec![frame(17, &[]), frame(44, &[17, 0, 0, 0, 0, 0, 0, 1])]);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids, [1], "{out:?}");

        let (_, errors) = Detector::from_rules(
            "alert ip any any -> any any (decode-event:ipv4.opt_invalid; sid:3;)\n",
            "events.rules",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("'ipv4.opt_invalid' not supported"), "{}", errors[0]);
    }

    #[test]
    fn stream_event_rules_see_syn_floods_and_the_session_follows_the_latest_syn() {
        let rules = "alert tcp any any -> any any (stream-event:3whs_syn_flood; sid:1;)\n\
                     alert http any any -> any any (http.method; content:\"POST\"; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "events.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let mut t = synth::TcpSession::new(synth::Host::v4([10, 0, 0, 1]), 40000, synth::Host::v4([10, 0, 0, 2]), 80);
        let mut frames = Vec::new();
        // 14 SYNs with new sequence numbers: 10 are queued, 3 beyond the queue are floods
        for i in 0..14u32 {
            t.cseq = 1000 + i * 100_000;
            frames.push(t.client_segment(synth::flags::SYN, &[]));
        }
        frames.push(t.server_segment(synth::flags::SYN | synth::flags::ACK, &[]));
        frames.push(t.client_segment(synth::flags::ACK, &[]));
        frames.push(t.client_send(&synth::http_request("POST", "example.com", "/", &[])));
        frames.push(t.server_send(&synth::http_response(200, "OK", "text/plain", b"ok")));
        frames.extend(t.close());
        let out = run(&mut s, frames);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids.iter().filter(|&&x| x == 1).count(), 3, "{sids:?}");
        assert_eq!(sids.iter().filter(|&&x| x == 2).count(), 1, "{sids:?}");

        let (_, errors) = Detector::from_rules(
            "alert tcp any any -> any any (stream-event:no_such_event; sid:3;)\n",
            "events.rules",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("'no_such_event' not supported"), "{}", errors[0]);
    }

    #[test]
    fn ipv6_hdr_covers_the_extension_headers_and_icmpv6_mtu_the_packet_too_big_mtu() {
        let rules = "alert ipv6 any any -> any any (ipv6.hdr; content:\"|11 00 00 00 00 00 00 01|\"; offset:40; endswith; sid:1;)\n\
                     alert ipv6 any any -> any any (icmpv6.mtu:<1280; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "v6.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let udp = synth::udp(src.into(), dst.into(), 5000, 53, b"q");
        let frame = |first: u8, ext: &[u8], l4: &[u8]| {
            synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &synth::ipv6(src, dst, first, 64, ext, l4))
        };
        let too_big = |mtu: u32| {
            let mut m = vec![2, 0, 0, 0];
            m.extend_from_slice(&mtu.to_be_bytes());
            m.extend_from_slice(&[0x60; 48]);
            m
        };
        let frames = vec![
            frame(17, &[], &udp),                           // no extension header: no sid 1
            frame(44, &[17, 0, 0, 0, 0, 0, 0, 1], &udp),    // atomic fragment header: sid 1
            frame(58, &[], &too_big(1000)),                 // sid 2
            frame(58, &[], &too_big(1500)),                 // MTU too large: no sid 2
            frame(58, &[], &[128, 0, 0, 0, 0, 0, 0x04, 0]), // echo: no MTU field
        ];
        let out = run(&mut s, frames);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids, [1, 2], "{out:?}");
    }

    #[test]
    fn packets_that_decode_only_to_their_ip_layer_are_inspected_with_their_decoder_event() {
        let rules = "alert tcp any any -> any any (decode-event:tcp.pkt_too_small; sid:1;)\n\
                     alert udp any any -> any any (decode-event:udp.hlen_too_small; sid:2;)\n\
                     alert ip any any -> any any (decode-event:gre.pkt_too_small; sid:3;)\n\
                     alert ipv6 any any -> any any (decode-event:ipv6.dstopts_unknown_opt; sid:4;)\n\
                     alert ipv6 any any -> any any (decode-event:ipv6.trunc_exthdr; sid:5;)\n\
                     alert tcp any any -> any any (flow:to_server; decode-event:tcp.pkt_too_small; sid:6;)\n\
                     alert tcp any any -> any any (flow:to_client; decode-event:tcp.pkt_too_small; sid:7;)\n";
        // sids 6 and 7: a packet without a flow has no flow direction (as in Suricata)
        let (det, errors) = Detector::from_rules(rules, "events.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (a, b) = (std::net::Ipv4Addr::new(1, 1, 1, 1), std::net::Ipv4Addr::new(2, 2, 2, 2));
        let v4 =
            |proto: u8, l4: &[u8]| synth::ethernet([2; 6], [3; 6], 0x0800, &[], &synth::ipv4(a, b, proto, 1, 64, l4));
        let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let udp = synth::udp(src.into(), dst.into(), 5000, 53, b"q");
        let v6 = |first: u8, ext: &[u8], l4: &[u8]| {
            synth::ethernet([2; 6], [3; 6], 0x86dd, &[], &synth::ipv6(src, dst, first, 64, ext, l4))
        };
        let frames = vec![
            v4(6, &[0; 10]),                                     // 10 bytes of a 20-byte TCP header
            v4(17, &[0; 4]),                                     // half a UDP header
            v4(47, &[0; 2]),                                     // half a GRE header
            v4(17, &synth::udp(a.into(), b.into(), 1, 2, b"x")), // fine
            v6(60, &[17, 0, 0x1e, 1, 0, 0, 0, 0], &udp),         // destination option 0x1e: unknown
            v6(60, &[17, 0, 1, 4, 0, 0, 0, 0], &udp),            // PadN only: fine
            v6(60, &[17, 1, 1, 4], &[]),                         // an 8-byte header cut at 4
        ];
        let out = run(&mut s, frames);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids, [1, 2, 3, 4, 5], "{out:?}");
        let first = out.iter().find(|e| e.alert.is_some()).unwrap();
        assert_eq!((first.src_ip.as_deref(), first.proto.as_deref()), (Some("1.1.1.1"), Some("TCP")));
        assert!(first.flow_id.is_none(), "inspected without a flow");
    }

    #[test]
    fn fragments_with_a_decoder_event_are_inspected_without_a_flow() {
        let rules = "alert ip any any -> any any (decode-event:ipv4.frag_overlap; sid:1;)\n\
                     alert ip any any -> any any (decode-event:ipv4.frag_pkt_too_large; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "frag.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let (a, b) = (std::net::Ipv4Addr::new(10, 0, 0, 1), std::net::Ipv4Addr::new(10, 0, 0, 2));
        let frag = |id: u16, offset: u16, more: bool, data: &[u8]| {
            synth::ethernet([2; 6], [3; 6], 0x0800, &[], &synth::ipv4_frag(a, b, 17, id, 64, offset, more, data))
        };
        let frames = vec![
            frag(1, 0, true, &[1; 16]),
            frag(1, 8, true, &[2; 16]),     // overlaps the first: alerts
            frag(2, 0, true, &[1; 16]),     // another datagram, no overlap: quiet
            frag(3, 65512, true, &[0; 16]), // ends past 65,535 bytes: alerts
        ];
        let out = run(&mut s, frames);
        let sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        assert_eq!(sids, [1, 2], "{out:?}");
    }

    #[test]
    fn ssh_kexinit_gives_the_hassh_of_each_side() {
        let rules = "alert ssh any any -> any any (ssh.hassh; content:\"e97d07603350d1111ec2b64bf25413c9\"; sid:1;)\n\
                     alert ssh any any -> any any (ssh.hassh.string; content:\"curve25519-sha256|3b|aes128-ctr|3b|\"; startswith; sid:2;)\n\
                     alert ssh any any -> any any (ssh.hassh.server; content:\"1d28bf246fed683b2556414dbd13cd28\"; sid:3;)\n\
                     alert ssh any any -> any any (ssh.hassh.server.string; content:\"|3b|hmac-sha1|3b|zlib\"; endswith; sid:4;)\n";
        let (det, errors) = Detector::from_rules(rules, "ssh.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        // lists: kex, host key, enc c2s, enc s2c, mac c2s, mac s2c, comp c2s, comp s2c, lang x2
        let kexinit = |lists: [&str; 10]| {
            let mut body = vec![20u8];
            body.extend_from_slice(&[7; 16]);
            for l in lists {
                body.extend_from_slice(&(l.len() as u32).to_be_bytes());
                body.extend_from_slice(l.as_bytes());
            }
            body.extend_from_slice(&[0, 0, 0, 0, 0]);
            let pad = 4u8;
            let mut pkt = ((body.len() + 1 + pad as usize) as u32).to_be_bytes().to_vec();
            pkt.push(pad);
            pkt.extend_from_slice(&body);
            pkt.extend_from_slice(&[0; 4]);
            pkt
        };
        let c = kexinit([
            "curve25519-sha256",
            "ssh-ed25519",
            "aes128-ctr",
            "aes256-ctr",
            "hmac-sha2-256",
            "hmac-sha1",
            "none",
            "zlib",
            "",
            "",
        ]);
        let mut banner_and_kex = b"SSH-2.0-OpenSSH_9.0\r\n".to_vec();
        banner_and_kex.extend_from_slice(&c);
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let mut t = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 22]), 22);
        let mut f = t.handshake();
        f.push(t.server_send(b"SSH-2.0-OpenSSH_8.0\r\n"));
        f.push(t.client_send(&banner_and_kex));
        f.push(t.server_send(&c)); // the server's lists, read from the server's side
        f.extend(t.close());
        let out = run(&mut s, f);
        let mut sids: Vec<u64> = out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect();
        sids.sort_unstable();
        assert_eq!(sids, [1, 2, 3, 4], "{out:?}");
    }

    #[test]
    fn http_request_events_match_app_layer_event_rules() {
        let rules = "alert http any any -> any any (flow:to_server; app-layer-event:http.request_auth_unrecognized; sid:1;)\n\
                     alert http any any -> any any (app-layer-event:http.duplicate_content_length_field_in_request; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "events.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let det = Arc::new(det);
        let run_request = |headers: &[(&str, &str)]| {
            let mut s = Sensor::new(SensorOptions::default()).with_detector(det.clone());
            let mut t = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 80]), 80);
            let mut f = t.handshake();
            f.push(t.client_send(&synth::http_request("GET", "h.example", "/", headers)));
            f.push(t.server_send(&synth::http_response(200, "OK", "text/plain", b"ok")));
            f.extend(t.close());
            let out = run(&mut s, f);
            out.iter().filter_map(|e| e.alert.as_ref()).filter_map(|a| a.signature_id).collect::<Vec<u64>>()
        };
        assert_eq!(run_request(&[("Authorization", "Turbo abc")]), [1]);
        assert!(run_request(&[("Authorization", "Basic YTpi")]).is_empty());
        assert!(run_request(&[("Authorization", "bearer x")]).is_empty());
        assert_eq!(run_request(&[("Content-Length", "0"), ("Content-Length", "0")]), [2]);
        assert!(run_request(&[("Content-Length", "0")]).is_empty());
        let (_, errors) = Detector::from_rules(
            "alert http any any -> any any (app-layer-event:http.too_many_encoding_layers; sid:3;)\n",
            "events.rules",
            &Vars::default(),
        );
        assert!(errors[0].reason.contains("not supported yet"), "{errors:?}");
    }

    #[test]
    fn flow_start_hook_rules_see_the_first_packet_of_each_direction_only() {
        let rules = "alert tcp:flow_start any any -> any any (sid:1;)\n\
                     alert ip:flow_start any any -> any any (flow:to_server; sid:2;)\n\
                     alert tcp:all any any -> any any (dsize:0; sid:3;)\n";
        let (det, errors) = Detector::from_rules(rules, "hooks.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let mut t = TcpSession::new(Host::v4([10, 0, 0, 5]), 50000, Host::v4([10, 0, 0, 80]), 80);
        let mut f = t.handshake();
        f.push(t.client_send(b"hello"));
        let out = run(&mut s, f);
        let count =
            |sid: u64| out.iter().filter(|e| e.alert.as_ref().and_then(|a| a.signature_id) == Some(sid)).count();
        assert_eq!((count(1), count(2), count(3)), (2, 1, 3), "SYN and SYN-ACK; the SYN; every empty packet");
        let (_, errors) = Detector::from_rules(
            "alert http1:request_body any any -> any any (sid:4;)\n",
            "hooks.rules",
            &Vars::default(),
        );
        assert!(errors[0].reason.contains("protocol hooks"), "{errors:?}");
    }

    /// One HTTP/2 frame (RFC 9113 section 4.1).
    fn h2_frame(ftype: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[ftype, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn http2_prior_knowledge_streams_match_http_and_http2_keywords_and_doh_dns_keywords() {
        let rules = r#"
alert http2 any any -> any any (http.uri; content:"/dns-query"; sid:10;)
alert http1 any any -> any any (http.uri; content:"/dns-query"; sid:11;)
alert http2 any any -> any any (http2.frametype:PING; sid:12;)
alert http2 any any -> any any (http2.window:>1000; sid:13;)
alert http2 any any -> any any (http2.header_name; content:"x-test"; sid:14;)
alert doh2 any any -> any any (dns.query; content:"www.example.com"; sid:15;)
alert http2 any any -> any any (http.stat_code; content:"200"; http.response_line; content:"HTTP/2 200|0d 0a|"; sid:16;)
alert http2 any any -> any any (frame:http2.hdr; content:"|00 00 08 06|"; startswith; sid:17;)
alert http2 any any -> any any (http.header_names; strip_pseudo_headers; content:"|0d 0a|x-test|0d 0a|"; startswith; sid:18;)
alert http2 any any -> any any (http2.settings:SETTINGS_MAX_CONCURRENT_STREAMS>50; sid:19;)
alert http2 any any -> any any (http2.settings:SETTINGS_MAX_CONCURRENT_STREAMS<50; sid:20;)
alert http2 any any -> any any (http2.settings:SETTINGS_ENABLE_PUSH; sid:21;)
"#;
        let (det, errors) = Detector::from_rules(rules, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut sensor = Sensor::new(SensorOptions::default()).with_detector(Arc::new(det));
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 5]), 50001, Host::v4([10, 0, 0, 80]), 80);
        let mut frames = s.handshake();
        // GET /dns-query?dns=<www.example.com A>, :authority dns.example, x-test: 1 (literal fields)
        let mut block = vec![0x82, 0x86];
        let path = b"/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
        block.extend_from_slice(&[0x04, path.len() as u8]);
        block.extend_from_slice(path);
        block.extend_from_slice(b"\x01\x0bdns.example\x00\x06x-test\x011");
        let mut ts = crate::app::http2::PREFACE.to_vec();
        ts.extend(h2_frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        ts.extend(h2_frame(8, 0, 0, &5000u32.to_be_bytes()));
        ts.extend(h2_frame(1, 0x5, 1, &block));
        frames.push(s.client_send(&ts));
        let mut tc = h2_frame(4, 0, 0, &[]);
        tc.extend(h2_frame(1, 0x4, 1, &[0x88]));
        tc.extend(h2_frame(0, 0x1, 1, b"\x00\x01\x81\x80\x00\x00\x00\x00\x00\x00\x00\x00"));
        tc.extend(h2_frame(6, 0, 0, &[0; 8]));
        frames.push(s.server_send(&tc));
        frames.extend(s.close());
        let out = run(&mut sensor, frames);
        let count =
            |sid: u64| out.iter().filter(|e| e.alert.as_ref().is_some_and(|a| a.signature_id == Some(sid))).count();
        assert_eq!(count(10), 1, "the stream's request");
        assert_eq!(count(11), 0, "http1 rules do not match HTTP/2");
        assert_eq!(count(12), 1, "the PING frame is a stream-0 transaction of its own");
        assert_eq!(count(13), 1);
        assert_eq!(count(14), 1);
        assert_eq!(count(15), 1, "the DNS query of the DoH GET");
        assert_eq!(count(16), 1);
        assert_eq!(count(17), 1);
        assert_eq!(count(18), 1);
        assert_eq!((count(19), count(20), count(21)), (1, 0, 0), "settings compared by id and value");
        let flow = out.iter().find(|e| e.event_type == EventType::Flow);
        assert_eq!(flow.and_then(|f| f.app_proto.as_deref()), Some("http2"));
    }
}
