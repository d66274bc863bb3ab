//! [`Detector`]: prefilter and verification of compiled rules against an [`Inspection`].
//!
//! The rules are split into signature groups (transport, direction, whether each address is in
//! `$HOME_NET`), each with one multi-pattern search per buffer over its rules' fast patterns
//! (see [`super::prefilter`]). [`Detector::inspect`] scans each buffer present once, then
//! verifies each candidate completely: protocol, direction, `flow`, addresses and ports,
//! `dsize`, and every buffer list with Suricata's content-inspection algorithm
//! (detect-engine-content-inspection.c): offsets relative to the previous match of the same
//! buffer, and when a later item fails, the next occurrence of a content is tried if the item
//! after it is bounded by `within` (or is a `/R` pcre), with Suricata's recursion limit.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::RuleError;
use super::compile::{
    AppProto, Buffer, Classifications, CompiledRule, ContentMatch, Direction, Item, PcreMatch, RuleProto, StreamSide,
    Target, VAR_DEPTH, VAR_DISTANCE, VAR_OFFSET, VAR_WITHIN,
};
use super::firewall::{Firewall, FwRule};
use super::keywords::{
    FlowbitOp, FlowintCmp, FlowintOp, FlowintVal, Threshold, ThresholdKind, Track, XbitCmd, XbitOp, XbitTrack,
    transform,
};
use super::parse::{Action, Vars};
use super::prefilter::{AddrCheck, Prefilters};
use super::threshold_config::{RateFilter, RateKey, RateState, Suppress, ThresholdConfig};

/// Transport protocol of the inspected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// Any other IP protocol number.
    Other(u8),
}

/// What one call to [`Detector::inspect`] looks at: a packet, and the application-layer buffers
/// that became available with it.
///
/// The app-layer fields are those of the transaction side seen in `direction`: request fields
/// (`http_uri`, `http_method`, `http_host`, `http_user_agent`, `http_request_body`,
/// `dns_query`, `tls_sni`) with [`Direction::ToServer`], `http_stat_code` with
/// [`Direction::ToClient`], and `http_headers`/`http_cookie` of the side being inspected.
/// There is no per-transaction state yet: set them on the one inspection where that side of the
/// transaction became complete, or a rule matching them alerts again on every packet.
///
/// Addresses and ports are the packet's: in a [`Direction::ToClient`] inspection the source is
/// the server, as in Suricata (rule headers are matched against the packet).
#[derive(Clone, Copy, Debug)]
pub struct Inspection<'a> {
    pub proto: Transport,
    /// Application protocol detected on the flow, if any.
    pub app_proto: Option<AppProto>,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    pub direction: Direction,
    /// The packet has no flow (it decoded only to its IP layer): as in Suricata it has no
    /// flow direction, so `flow:to_server`/`to_client` rules do not match it.
    pub flowless: bool,
    /// TCP: three-way handshake seen; other transports: traffic seen both ways.
    pub established: bool,
    /// The packet payload (`pkt_data`, `dsize`).
    pub payload: &'a [u8],
    /// Normalized request URI (path and query, percent-decoding as libhtp's normalization).
    pub http_uri: Option<&'a [u8]>,
    pub http_method: Option<&'a [u8]>,
    /// Lower-cased host name without the port.
    pub http_host: Option<&'a [u8]>,
    pub http_user_agent: Option<&'a [u8]>,
    /// `Name: value\r\n` per header, Cookie/Set-Cookie excluded: see [`http_header_buffer`].
    pub http_headers: Option<&'a [u8]>,
    /// The three status digits.
    pub http_stat_code: Option<&'a [u8]>,
    pub http_cookie: Option<&'a [u8]>,
    /// The (de-chunked) request body.
    pub http_request_body: Option<&'a [u8]>,
    /// The query name, without the trailing dot.
    pub dns_query: Option<&'a [u8]>,
    pub tls_sni: Option<&'a [u8]>,
    /// Every other buffer present (`file.data`, `http.header_names`, `tls.cert_subject`, ...).
    pub other: &'a [(Buffer, &'a [u8])],
    /// The flow's identity for per-flow state (`flowbits`); 0 when unknown.
    pub flow_id: u64,
    /// Packet or transaction time, unix microseconds (`threshold`, `detection_filter`).
    pub ts_micros: i64,
    /// IP header fields of the packet (`None` on a transaction inspection).
    pub ttl: Option<u8>,
    pub ip_proto: Option<u8>,
    pub tcp_flags: Option<u8>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// TCP sequence number and payload length of the packet (`stream_size` tracking).
    pub tcp_seq: Option<(u32, u32)>,
    /// TCP acknowledgement number of the packet (`ack`).
    pub tcp_ack: Option<u32>,
    /// The flow's packet and byte counts so far, to server and to client (`flow.pkts`,
    /// `flow.bytes`); `None` when unknown.
    pub flow_counts: Option<([u64; 2], [u64; 2])>,
    /// ICMP identifier and sequence number, for the messages that carry them.
    pub icmp_id_seq: Option<(u16, u16)>,
    /// The MTU of an ICMPv6 Packet Too Big message (`icmpv6.mtu`).
    pub icmpv6_mtu: Option<u32>,
    /// App-layer integer fields of the message (`ntp.version`, ...).
    pub app_ints: &'a [(super::compile::AppInt, u64)],
    /// The DCERPC state of the inspected transaction (`dcerpc.iface`, `dcerpc.opnum`).
    pub dce: Option<&'a super::dce::DceTx>,
    /// The packet's decoder events ([`crate::decode::Packet::events`]).
    pub decode_events: u64,
    /// The transaction's app-layer events ([`super::compile::AppEvent`] bits).
    pub app_events: u64,
    /// The packet is the first of its direction in its flow (`flow_start` hooks).
    pub first_in_direction: bool,
    /// The inspected transaction's id within its flow, when known (firewall `accept:tx`).
    pub tx_id: Option<u64>,
    /// An app-layer transaction is inspected (not a packet): rules without a transaction
    /// buffer (packet rules) do not match it, and `absent` buffers are missing from it.
    pub transaction: bool,
    /// What `payload` is for TCP's split of payload rules into stream and packet rules
    /// ([`PayloadKind`]); [`PayloadKind::Any`] for everything but TCP sessions.
    pub payload_kind: PayloadKind,
    /// Sids (gid 1) already alerted for this packet by its stream inspection: not again.
    pub skip_sids: &'a [u32],
    /// A whole transaction is inspected (both sides' buffers, addresses client to server):
    /// for transactional (`=>`) rules only, and only those see it.
    pub whole_tx: bool,
    /// The flow's detected protocols (`app-layer-protocol`); `None`: no flow state.
    pub alproto: Option<super::compile::AlprotoState>,
}

/// Suricata's split of the rules inspecting a TCP payload (`SigValidate`): a rule whose
/// protocol covers TCP and that has payload matches inspects the reassembled stream, unless
/// it is a packet rule (`dsize`, `flow:no_stream`, `tcp-pkt`); a stream rule with a content
/// `depth` or `offset`, or with `stream_size`, inspects packets too. A segment added to the
/// stream is only inspected by the rules that inspect packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadKind {
    /// Not a TCP session's segment: every rule inspects `payload`.
    #[default]
    Any,
    /// `payload` is a chunk of a TCP session's reassembled stream (one direction).
    Stream,
    /// `payload` is a segment that was added to its TCP session's stream.
    StreamSegment,
}

impl<'a> Inspection<'a> {
    /// A packet with no app-layer buffers, not established, no application protocol.
    pub fn new(
        proto: Transport,
        src_ip: IpAddr,
        src_port: u16,
        dst_ip: IpAddr,
        dst_port: u16,
        direction: Direction,
        payload: &'a [u8],
    ) -> Self {
        Inspection {
            proto,
            app_proto: None,
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            direction,
            flowless: false,
            established: false,
            payload,
            http_uri: None,
            http_method: None,
            http_host: None,
            http_user_agent: None,
            http_headers: None,
            http_stat_code: None,
            http_cookie: None,
            http_request_body: None,
            dns_query: None,
            tls_sni: None,
            other: &[],
            flow_id: 0,
            ts_micros: 0,
            ttl: None,
            ip_proto: None,
            tcp_flags: None,
            icmp: None,
            tcp_seq: None,
            tcp_ack: None,
            flow_counts: None,
            icmp_id_seq: None,
            icmpv6_mtu: None,
            app_ints: &[],
            dce: None,
            decode_events: 0,
            app_events: 0,
            alproto: None,
            first_in_direction: false,
            tx_id: None,
            transaction: false,
            payload_kind: PayloadKind::Any,
            skip_sids: &[],
            whole_tx: false,
        }
    }

    /// The bytes of a buffer, if present.
    /// Every instance of a buffer: one for most, one per element for a multi-buffer given
    /// several times in [`Inspection::other`] (`tls.certs`: one per certificate).
    pub fn buffers(&self, b: Buffer) -> impl Iterator<Item = &'a [u8]> + '_ {
        let first = self.buffer(b);
        let more = self.other.iter().filter(move |(x, _)| *x == b).skip(1).map(|(_, d)| *d);
        first.into_iter().chain(more)
    }

    pub fn buffer(&self, b: Buffer) -> Option<&'a [u8]> {
        match b {
            Buffer::Payload => Some(self.payload),
            Buffer::HttpUri => self.http_uri,
            Buffer::HttpMethod => self.http_method,
            Buffer::HttpHost => self.http_host,
            Buffer::HttpUserAgent => self.http_user_agent,
            Buffer::HttpHeader => self.http_headers,
            Buffer::HttpStatCode => self.http_stat_code,
            Buffer::HttpCookie => self.http_cookie,
            Buffer::HttpRequestBody => self.http_request_body,
            Buffer::DnsQuery => self.dns_query,
            Buffer::TlsSni => self.tls_sni,
            other => match self.other.iter().find(|(b, _)| *b == other) {
                Some((_, d)) => Some(d),
                // file.data on HTTP: the body of the side inspected
                None if other == Buffer::FileData && self.direction == Direction::ToServer => self.http_request_body,
                None => None,
            },
        }
    }
}

/// Builds Suricata's normalized `http.header` buffer for one side of a transaction:
/// `Name: value\r\n` for each header in order (no extra final `\r\n`), trailing blanks of the
/// value removed, without `Cookie` in a request or `Set-Cookie` in a response (those are the
/// `http.cookie` buffer).
pub fn http_header_buffer<'h>(
    direction: Direction,
    headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
) -> Vec<u8> {
    let skip: &[u8] = match direction {
        Direction::ToServer => b"cookie",
        Direction::ToClient => b"set-cookie",
    };
    let mut out = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(skip) {
            continue;
        }
        let end = value.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(0, |p| p + 1);
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&value[..end]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A rule that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub msg: Arc<str>,
    pub classtype: Option<Arc<str>>,
    /// The classtype's description (EVE `alert.category`), when a classification table is loaded.
    pub category: Option<Arc<str>>,
    /// EVE `alert.severity`: the rule's `priority`, else its classtype's, else 3.
    pub severity: u8,
    /// EVE `alert.metadata`: values per key, in rule order.
    pub metadata: Arc<super::compile::RuleMetadata>,
    /// `pass` hits are not alerts: they only say that inspection stopped.
    pub action: Action,
    pub target: Option<Target>,
    /// Direction of the inspection that matched.
    pub direction: Direction,
    /// EVE `alert.context`: what `dataset` lookups with a `context_key` found (key, JSON text).
    pub context: Vec<(String, String)>,
    /// A `pass` hit of a rule with the `alert` keyword: it is reported as an alert too.
    pub alert: bool,
    /// IPS mode ([`DetectorBuilder::ips`]): the hit drops the packet (EVE `alert.action`
    /// `blocked`): a drop or reject rule, or a `rate_filter` changing the action to one.
    pub blocked: bool,
    /// The rule's `tag`: the sensor tags the packets after the alert ([`crate::tag`]).
    pub tag: Option<crate::tag::TagSpec>,
}

impl Hit {
    pub(crate) fn of(r: &CompiledRule, direction: Direction) -> Hit {
        let m = &r.meta;
        Hit {
            sid: m.sid,
            gid: m.gid,
            rev: m.rev,
            msg: m.msg.clone(),
            classtype: m.classtype.clone(),
            category: m.category.clone(),
            severity: m.priority,
            metadata: m.metadata.clone(),
            action: m.action,
            target: m.target,
            direction,
            context: Vec::new(),
            alert: m.alert,
            blocked: false,
            tag: r.tag,
        }
    }
}

/// Per-flow variables (`flowbits`, `flowint`).
#[derive(Default)]
struct FlowVars {
    bits: HashSet<Arc<str>>,
    ints: HashMap<Arc<str>, u32>,
    /// `stream_size`: (initial sequence number, next sequence number) per direction
    /// (to_server, to_client).
    seq: [Option<(u32, u32)>; 2],
    last_seen: i64,
}

impl FlowVars {
    /// Follows the sequence space of the packet's direction (a direction first seen without
    /// its SYN starts one byte before its first segment, as if the SYN had been there).
    fn track_seq(&mut self, dir: Direction, seq: u32, len: u32, syn: bool, fin: bool) {
        let d = usize::from(dir == Direction::ToClient);
        let end = seq.wrapping_add(len).wrapping_add(u32::from(syn)).wrapping_add(u32::from(fin));
        match &mut self.seq[d] {
            None => self.seq[d] = Some((if syn { seq } else { seq.wrapping_sub(1) }, end)),
            Some((_, next)) => {
                // only forward progress (within half the sequence space) moves it
                if end.wrapping_sub(*next) < 1 << 31 {
                    *next = end;
                }
            }
        }
    }

    /// Suricata's stream size of a direction: next sequence number minus the initial one.
    fn stream_size(&self, to_client: bool) -> Option<u64> {
        self.seq[usize::from(to_client)].map(|(isn, next)| next.wrapping_sub(isn) as u64)
    }
}

/// What an `xbits`/`hostbits` bit belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum XbitKey {
    Host(IpAddr),
    /// The lower address first.
    Pair(IpAddr, IpAddr),
    /// A transaction: flow id and transaction id.
    Tx(u64, u64),
}

/// One `threshold`/`detection_filter` counter.
#[derive(Clone, Copy)]
struct ThresholdEntry {
    first: i64,
    count: u32,
    /// `type backoff`: the count at which the next alert goes out.
    next: u64,
    /// `type both`: already alerted in this window.
    alerted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ThresholdKey {
    rule: u32,
    detection_filter: bool,
    a: Option<IpAddr>,
    b: Option<IpAddr>,
    flow: u64,
}

/// Mutable detection state: per-flow bits and threshold counters.
#[derive(Default)]
struct DetectState {
    flows: HashMap<u64, FlowVars>,
    thresholds: HashMap<ThresholdKey, ThresholdEntry>,
    /// `xbits`/`hostbits`: expiry time (micros) per bit.
    xbits: HashMap<(Arc<str>, XbitKey), i64>,
    /// Flows a `pass` rule matched: not inspected any more (Suricata passes the flow).
    passed: HashSet<u64>,
    /// IPS mode: flows a drop applied to (not inspected any more).
    dropped: HashSet<u64>,
    /// `rate_filter` counters.
    rates: HashMap<RateKey, RateState>,
}

/// Flows kept in the flowbits table before the oldest are dropped.
const MAX_FLOW_STATES: usize = 262_144;
/// A flow not seen for this long (micros) loses its bits when the table is full.
const FLOW_STATE_IDLE: i64 = 600_000_000;

impl DetectState {
    fn prune(&mut self, now: i64) {
        if self.flows.len() >= MAX_FLOW_STATES {
            self.flows.retain(|_, v| now - v.last_seen < FLOW_STATE_IDLE);
            if self.flows.len() >= MAX_FLOW_STATES {
                tracing::warn!(flows = self.flows.len(), "flowbits table full: per-flow bits dropped");
                metrics::counter!("sensor_detect_flowbits_dropped_total").increment(self.flows.len() as u64);
                self.flows.clear();
            }
        }
        if self.xbits.len() >= MAX_FLOW_STATES {
            self.xbits.retain(|_, exp| *exp > now);
            if self.xbits.len() >= MAX_FLOW_STATES {
                tracing::warn!(entries = self.xbits.len(), "xbits table full: host bits dropped");
                metrics::counter!("sensor_detect_xbits_dropped_total").increment(self.xbits.len() as u64);
                self.xbits.clear();
            }
        }
        if self.thresholds.len() >= MAX_FLOW_STATES {
            self.thresholds.retain(|_, v| now - v.first < FLOW_STATE_IDLE);
            if self.thresholds.len() >= MAX_FLOW_STATES {
                tracing::warn!(entries = self.thresholds.len(), "threshold table full: counters dropped");
                metrics::counter!("sensor_detect_threshold_dropped_total").increment(self.thresholds.len() as u64);
                self.thresholds.clear();
            }
        }
    }
}

/// A rule named by its file, line and sid.
pub type RuleRef = (String, usize, u32);

/// A loaded rule set.
///
/// Inspection takes `&self`: the per-flow `flowbits` and the `threshold` counters live behind a
/// mutex inside, so one detector can be shared, and its state follows the flows it sees.
pub struct Detector {
    rules: Vec<CompiledRule>,
    /// The signature groups and their prefilters.
    prefilter: Prefilters,
    /// Whether any rule needs [`DetectState`].
    stateful: bool,
    /// Whether any rule uses `stream_size` (sequence numbers are then followed per flow).
    stream_sizes: bool,
    /// The file digest buffers rules use (`filemd5`, `filesha1`, `filesha256`), see
    /// [`Detector::file_digests`].
    file_digests: [bool; 3],
    /// The buffers some rule inspects ([`Buffer::index`]): buffers that cost to build (HTTP/1
    /// frames) are built only when used.
    used_buffers: Vec<bool>,
    /// Some rule is transactional (`=>`): whole transactions are inspected too.
    has_transactional: bool,
    /// Whether there is a `pass` rule (passed flows are then remembered).
    has_pass: bool,
    /// Whether a flow was passed by an exception policy ([`Detector::pass_flow`]).
    exception_passes: std::sync::atomic::AtomicBool,
    /// See [`Detector::matches_empty_packets`].
    empty_packets: bool,
    /// `suppress` entries of the threshold files, per rule (same index as `rules`).
    suppress: Vec<Vec<Suppress>>,
    /// `rate_filter` entries of the threshold files, per rule (same index as `rules`).
    rate_filters: Vec<Option<RateFilter>>,
    /// IPS mode: see [`DetectorBuilder::ips`].
    ips: bool,
    /// Firewall rules, evaluated before these (see [`super::firewall`]).
    firewall: Option<Firewall>,
    state: Mutex<DetectState>,
    /// The rules testing decoder events (`decode-event`), for [`Detector::inspect_addressless`].
    decode_event_rules: Vec<u32>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("rules", &self.rules.len()).finish()
    }
}

/// Collects rules, then builds a [`Detector`].
pub struct DetectorBuilder {
    vars: Vars,
    classifications: Classifications,
    rules: Vec<CompiledRule>,
    errors: Vec<RuleError>,
    threshold_config: ThresholdConfig,
    ips: bool,
    /// Suricata's `action-order` (default pass, drop, reject, alert).
    action_order: Option<Vec<Action>>,
    firewall_rules: Vec<FwRule>,
    /// Metadata and classtype strings, one copy shared by all rules (and by the threads
    /// compiling them).
    strings: Mutex<super::compile::Interner>,
    /// IP reputation data for `iprep` ([`DetectorBuilder::reputation_categories`]).
    reputation: Option<Arc<super::iprep::Reputation>>,
    /// The MaxMind database for `geoip` ([`DetectorBuilder::geoip_database`]).
    geoip: Option<Arc<super::iprep::GeoDb>>,
    /// Where `dataset ... save <file>` writes ([`DetectorBuilder::data_dir`]).
    data_dir: Option<std::path::PathBuf>,
}

impl Default for DetectorBuilder {
    fn default() -> Self {
        DetectorBuilder {
            vars: Vars::default(),
            classifications: Classifications::new(),
            rules: Vec::new(),
            errors: Vec::new(),
            threshold_config: ThresholdConfig::default(),
            ips: false,
            action_order: None,
            firewall_rules: Vec::new(),
            strings: Default::default(),
            reputation: None,
            geoip: None,
            data_dir: None,
        }
    }
}

impl DetectorBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// IPS mode (Suricata's inline mode, `--simulate-ips`): hits of drop and reject rules are
    /// [`Hit::blocked`], and a drop by an app-layer, transaction or IP-only rule drops the rest
    /// of the flow (it is not inspected any more until [`Detector::end_flow`]).
    pub fn ips(mut self, on: bool) -> Self {
        self.ips = on;
        self
    }

    /// Suricata's `action-order`: the order of the rule actions in the evaluation order
    /// (default pass, drop, reject, alert); the actions not listed come after, in the default
    /// order.
    pub fn action_order(mut self, order: &[Action]) -> Self {
        self.action_order = Some(order.to_vec());
        self
    }

    /// Variables for the rules added after this call.
    pub fn vars(mut self, vars: Vars) -> Self {
        self.vars = vars;
        self
    }

    /// Classification table for the rules added after this call.
    pub fn classifications(mut self, c: Classifications) -> Self {
        self.classifications = c;
        self
    }

    /// Parses and compiles the rules of one file's text.
    pub fn add_rules(&mut self, text: &str, file: &str) -> &mut Self {
        // metadata, classtype and category strings shared as they are compiled
        let compiled = super::load::parse_and_compile(text, file, &self.load_ctx());
        self.add_compiled(compiled);
        self
    }

    /// The variables, classifications and shared strings the rules are compiled with.
    fn load_ctx(&self) -> super::load::Ctx<'_> {
        super::load::Ctx { vars: &self.vars, classes: &self.classifications, strings: &self.strings }
    }

    /// Takes the compiled rules and the errors of one file, in chunks in text order: its
    /// compile errors, then those of binding the host conditions, then of the dataset files.
    fn add_compiled(&mut self, mut chunks: Vec<super::load::Compiled>) {
        for (_, errors) in &mut chunks {
            self.errors.append(errors);
        }
        for (rules, _) in &mut chunks {
            self.bind_host_conds(rules, |r| r);
        }
        for (rules, _) in &mut chunks {
            self.resolve_dataset_saves(rules);
        }
        self.rules.reserve(chunks.iter().map(|c| c.0.len()).sum());
        for (rules, _) in chunks {
            self.rules.extend(rules);
        }
    }

    /// The data directory (Suricata's `--data-dir`): `dataset ... save <file>` files are
    /// written there. Set it before adding the rules.
    pub fn data_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Resolves the `save` files of new rules' datasets in the data directory; a rule saving
    /// to a relative path without a data directory is removed, with an error.
    fn resolve_dataset_saves(&mut self, rules: &mut Vec<CompiledRule>) {
        let data_dir = self.data_dir.clone();
        let errors = &mut self.errors;
        rules.retain_mut(|r| {
            let mut ok = true;
            for l in r.lists.iter_mut() {
                for i in l.items.iter_mut() {
                    if let Item::Dataset(m) = i
                        && let Some(p) = m.save.take()
                    {
                        match (&data_dir, p.is_absolute()) {
                            (_, true) => m.save = Some(p),
                            (Some(d), false) => m.save = Some(d.join(p)),
                            (None, false) => ok = false,
                        }
                    }
                }
            }
            if !ok {
                errors.push(RuleError {
                    file: r.file.to_string(),
                    line: r.line,
                    column: 1,
                    keyword: Some("dataset".to_string()),
                    reason: "dataset 'save' to a relative path needs a data directory (--data-dir)".to_string(),
                    rule_line: r.line,
                });
            }
            ok
        });
    }

    /// Binds the `iprep`/`geoip` conditions of new rules to the reputation data and the geoip
    /// database; a rule whose condition can't be bound is removed, with an error.
    fn bind_host_conds<T>(&mut self, rules: &mut Vec<T>, rule: impl Fn(&mut T) -> &mut CompiledRule) {
        let (rep, geo) = (self.reputation.clone(), self.geoip.clone());
        let errors = &mut self.errors;
        rules.retain_mut(|t| {
            let r = rule(t);
            let Some(h) = r.host_conds.as_deref_mut() else { return true };
            match h.bind(rep.as_ref(), geo.as_ref()) {
                Ok(()) => true,
                Err(reason) => {
                    let keyword = if h.iprep.is_empty() { "geoip" } else { "iprep" };
                    errors.push(RuleError {
                        file: r.file.to_string(),
                        line: r.line,
                        column: 1,
                        keyword: Some(keyword.to_string()),
                        reason,
                        rule_line: r.line,
                    });
                    false
                }
            }
        });
    }

    /// Adds the categories of an IP reputation categories file's text (Suricata's
    /// `reputation-categories-file`) for `iprep`; set them, and the scores
    /// ([`DetectorBuilder::reputation_scores`]), before adding the rules. Bad lines are errors.
    pub fn reputation_categories(&mut self, text: &str, file: &str) -> &mut Self {
        let rep = Arc::make_mut(self.reputation.get_or_insert_default());
        let errs = rep.add_categories(text, file);
        self.push_rep_errors(errs);
        self
    }

    /// Adds the scores of an IP reputation file's text (Suricata's `reputation-files`); the
    /// categories must be set first.
    pub fn reputation_scores(&mut self, text: &str, file: &str) -> &mut Self {
        let rep = Arc::make_mut(self.reputation.get_or_insert_default());
        let errs = rep.add_scores(text, file);
        self.push_rep_errors(errs);
        self
    }

    /// Reads a reputation categories file ([`DetectorBuilder::reputation_categories`]).
    pub fn reputation_categories_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        if let Some((text, name)) = self.read_source(path.as_ref()) {
            self.reputation_categories(&text, &name);
        }
        self
    }

    /// Reads a reputation file ([`DetectorBuilder::reputation_scores`]).
    pub fn reputation_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        if let Some((text, name)) = self.read_source(path.as_ref()) {
            self.reputation_scores(&text, &name);
        }
        self
    }

    fn push_rep_errors(&mut self, errs: Vec<super::iprep::RepError>) {
        self.errors.extend(errs.into_iter().map(|e| RuleError {
            file: e.file,
            line: e.line,
            column: 1,
            keyword: None,
            reason: e.reason,
            rule_line: e.line,
        }));
    }

    /// Opens the MaxMind database (Suricata's `geoip-database`) for `geoip`; set it before
    /// adding the rules. A file that can't be opened is an error at line 0.
    pub fn geoip_database(&mut self, path: impl AsRef<Path>) -> &mut Self {
        match super::iprep::GeoDb::open(path.as_ref()) {
            Ok(db) => self.geoip = Some(Arc::new(db)),
            Err(reason) => self.errors.push(RuleError {
                file: path.as_ref().display().to_string(),
                line: 0,
                column: 0,
                keyword: None,
                reason: format!("cannot open the geoip database: {reason}"),
                rule_line: 0,
            }),
        }
        self
    }

    /// Reads and adds a rules file; a file that cannot be read is an error at line 0.
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.add_files(&[path])
    }

    /// Reads and adds rules files, as [`DetectorBuilder::add_file`] on each in turn (the
    /// same rules and errors, in the same order), but with the files read and their rules
    /// compiled on two threads across all the files.
    pub fn add_files<P: AsRef<Path>>(&mut self, paths: &[P]) -> &mut Self {
        let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
        let files = super::load::load_files(&paths, &self.load_ctx());
        self.rules.reserve(files.iter().flatten().map(|c| c.0.len()).sum());
        for chunks in files {
            self.add_compiled(chunks);
        }
        self
    }

    /// The text (lossy UTF-8) and display name of a file for the `add_*_file` methods; a
    /// file that cannot be read is recorded as an error at line 0 and gives `None`.
    fn read_source(&mut self, p: &Path) -> Option<(String, String)> {
        match super::load::read_text(p) {
            Ok(source) => Some(source),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Adds the entries of a threshold file's text (see [`super::threshold_config`]); they
    /// apply to every rule of the detector, whenever it was added.
    pub fn add_threshold_config(&mut self, text: &str, file: &str) -> &mut Self {
        let (cfg, errors) = ThresholdConfig::parse(text, file, &self.vars);
        self.threshold_config.extend(cfg);
        self.errors.extend(errors);
        self
    }

    /// Reads and adds a threshold file; a file that cannot be read is an error at line 0.
    pub fn add_threshold_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        if let Some((text, name)) = self.read_source(path.as_ref()) {
            self.add_threshold_config(&text, &name);
        }
        self
    }

    /// Adds firewall rules (Suricata's `--firewall-rules-exclusive` file; see
    /// [`super::firewall`]): evaluated on every packet before the other rules.
    pub fn add_firewall_rules(&mut self, text: &str, file: &str) -> &mut Self {
        let (mut rules, errors) = Firewall::parse(text, file, &self.vars, &self.classifications);
        self.errors.extend(errors);
        self.bind_host_conds(&mut rules, |r| &mut r.rule);
        self.firewall_rules.extend(rules);
        self
    }

    /// Reads and adds a firewall rules file; a file that cannot be read is an error at line 0.
    pub fn add_firewall_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        if let Some((text, name)) = self.read_source(path.as_ref()) {
            self.add_firewall_rules(&text, &name);
        }
        self
    }

    /// Rules loaded so far.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.firewall_rules.is_empty()
    }

    /// Drops duplicate (gid, sid) pairs (the higher rev stays, as in Suricata), orders the
    /// rules (action order pass/drop/reject/alert, then priority, then load order) and builds
    /// the prefilters.
    pub fn build(self) -> (Detector, Vec<RuleError>) {
        // the address groups split on $HOME_NET (the variables of the last rules added)
        let home = self.vars.address("HOME_NET").and_then(|_| self.vars.parse_address("$HOME_NET").ok());
        let DetectorBuilder { rules, mut errors, threshold_config, ips, firewall_rules, action_order, .. } = self;
        let firewall = (!firewall_rules.is_empty()).then(|| Firewall::new(firewall_rules));
        let mut keep: HashMap<(u32, u32), usize> = HashMap::new();
        let mut dropped = vec![false; rules.len()];
        for (i, r) in rules.iter().enumerate() {
            let key = (r.meta.gid, r.meta.sid);
            match keep.get(&key).copied() {
                None => {
                    keep.insert(key, i);
                }
                Some(j) => {
                    let (lose, win) = if r.meta.rev > rules[j].meta.rev { (j, i) } else { (i, j) };
                    dropped[lose] = true;
                    keep.insert(key, win);
                    let (l, w) = (&rules[lose], &rules[win]);
                    errors.push(RuleError {
                        file: l.file.to_string(),
                        line: l.line,
                        column: 1,
                        keyword: Some("sid".to_string()),
                        reason: format!(
                            "duplicate sid {} (gid {}): the rule of {}:{} (rev {}) is kept",
                            l.meta.sid, l.meta.gid, w.file, w.line, w.meta.rev
                        ),
                        rule_line: l.line,
                    });
                }
            }
        }
        let mut rules: Vec<CompiledRule> =
            rules.into_iter().zip(dropped).filter_map(|(r, d)| (!d).then_some(r)).collect();
        // the collect reuses the buffer the files were appended to: drop its spare capacity
        rules.shrink_to_fit();
        // Suricata's order: action, then flowbits, flowint and xbits/hostbits (setters, setters
        // that also read, readers, the rest), then priority; load order otherwise (stable sort;
        // each key computed once, then the rules permuted: they are large)
        rules.sort_by_cached_key(|r| {
            let fb = state_order(r.flowbits.iter().any(FlowbitOp::is_read), r.flowbits.iter().any(|o| !o.is_read()));
            let fi = state_order(r.flowints.iter().any(FlowintOp::is_read), r.flowints.iter().any(|o| !o.is_read()));
            let xb = state_order(r.xbits.iter().any(XbitOp::is_read), r.xbits.iter().any(|o| !o.is_read()));
            let action = match &action_order {
                // (reject and its variants share a place)
                Some(order) => order
                    .iter()
                    .position(|a| a.order() == r.meta.action.order())
                    .unwrap_or(order.len() + usize::from(r.meta.action.order())),
                None => usize::from(r.meta.action.order()),
            };
            (action, fb, fi, xb, r.meta.priority)
        });
        for r in rules.iter_mut() {
            r.threshold = threshold_config.threshold_for(r.meta.gid, r.meta.sid, r.threshold);
        }
        let suppress: Vec<Vec<Suppress>> =
            rules.iter().map(|r| threshold_config.suppress_for(r.meta.gid, r.meta.sid)).collect();
        let rate_filters: Vec<Option<RateFilter>> =
            rules.iter().map(|r| threshold_config.rate_filter_for(r.meta.gid, r.meta.sid)).collect();
        super::dataset::unify(
            rules.iter_mut().flat_map(|r| r.lists.iter_mut()).flat_map(|l| l.items.iter_mut()).filter_map(
                |i| match i {
                    Item::Dataset(m) => Some(m),
                    _ => None,
                },
            ),
        );
        let prefilter = Prefilters::build(&rules, home.as_ref());
        let stateful = rules.iter().any(uses_state);
        let stream_sizes = rules.iter().any(|r| r.stream_size.is_some());
        let file_digests = [Buffer::FileMd5, Buffer::FileSha1, Buffer::FileSha256]
            .map(|b| rules.iter().any(|r| r.lists.iter().any(|l| l.buffer == b)));
        let has_transactional = rules.iter().any(|r| r.transactional);
        let mut used_buffers = vec![false; Buffer::ALL.len()];
        for l in rules.iter().flat_map(|r| r.lists.iter()) {
            if let Some(u) = used_buffers.get_mut(l.buffer.index()) {
                *u = true;
            }
        }
        let has_pass = rules.iter().any(|r| r.meta.action == Action::Pass)
            || rate_filters.iter().flatten().any(|rf| rf.new_action == Action::Pass);
        // (an app-layer rule inspecting only packet headers or addresses is a packet rule too)
        let packet_buffer = |b: Buffer| {
            matches!(
                b,
                Buffer::Ipv4Hdr | Buffer::Ipv6Hdr | Buffer::TcpHdr | Buffer::UdpHdr | Buffer::IpSrc | Buffer::IpDst
            )
        };
        let empty_packets = rules.iter().any(|r| {
            (r.app_proto.is_none() || r.lists.iter().any(|l| packet_buffer(l.buffer)))
                && r.urilen.is_none()
                && r.dce.is_none()
                && r.lists.iter().all(|l| (l.items.is_empty() && l.bsize.is_none()) || packet_buffer(l.buffer))
        }) || firewall.is_some()
            // an app-layer rule for empty packets (`dsize:0`)
            || rules.iter().any(|r| r.lists.is_empty() && r.dsize.is_some_and(|c| c.matches(0)))
            // an app-layer rule with nothing to inspect but the protocol (`alert http ...
            // (sid:1;)`): every packet of the protocol's flows
            || rules.iter().any(|r| {
                r.app_proto.is_some()
                    && r.lists.is_empty()
                    && r.urilen.is_none()
                    && r.dce.is_none()
                    && r.app_events == 0
                    && r.app_ints.is_empty()
                    && r.tx_hook.is_none()
            });
        let decode_event_rules: Vec<u32> =
            (0..rules.len() as u32).filter(|&i| rules[i as usize].decode_events != 0).collect();
        (
            Detector {
                rules,
                prefilter,
                stateful,
                stream_sizes,
                file_digests,
                used_buffers,
                has_transactional,
                has_pass,
                exception_passes: std::sync::atomic::AtomicBool::new(false),
                empty_packets,
                suppress,
                rate_filters,
                ips,
                firewall,
                state: Mutex::new(DetectState::default()),
                decode_event_rules,
            },
            errors,
        )
    }
}

/// Suricata's ordering of rules using one kind of state variable: rules that only set first,
/// then set-and-read, then read-only, then the rest.
fn state_order(read: bool, write: bool) -> u8 {
    match (write, read) {
        (true, false) => 0,
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
    }
}

/// Whether a rule reads or writes [`DetectState`].
fn uses_state(r: &CompiledRule) -> bool {
    r.stream_size.is_some()
        || !r.flowbits.is_empty()
        || !r.flowints.is_empty()
        || !r.xbits.is_empty()
        || r.threshold.is_some()
        || r.detection_filter.is_some()
}

impl Detector {
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder::new()
    }

    /// Loads the rules of one text (`file` names it in errors), with no classification table.
    pub fn from_rules(text: &str, file: &str, vars: &Vars) -> (Detector, Vec<RuleError>) {
        let mut b = DetectorBuilder::new().vars(vars.clone());
        b.add_rules(text, file);
        b.build()
    }

    /// Loads rule files, with no classification table (see [`DetectorBuilder`] for one).
    pub fn load_files<P: AsRef<Path>>(paths: &[P], vars: &Vars) -> (Detector, Vec<RuleError>) {
        let mut b = DetectorBuilder::new().vars(vars.clone());
        b.add_files(paths);
        b.build()
    }

    /// IPS mode ([`DetectorBuilder::ips`]): the sensor then inspects TCP payload rules on each
    /// segment as it comes (Suricata's inline stream inspection), not on acknowledged chunks.
    pub fn is_ips(&self) -> bool {
        self.ips
    }

    /// Size figures of the signature groups and their prefilters.
    pub fn prefilter_stats(&self) -> super::prefilter::PrefilterStats {
        self.prefilter.stats()
    }

    /// Number of loaded rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Which file digests the rules look up (md5, sha1, sha256): the sensor computes only
    /// those, for complete files.
    pub fn file_digests(&self) -> [bool; 3] {
        self.file_digests
    }

    /// Whether some rule is transactional (`=>`): whole transactions are worth inspecting
    /// ([`Inspection::whole_tx`]).
    pub fn has_transactional(&self) -> bool {
        self.has_transactional
    }

    /// Whether some rule inspects buffer `b`.
    pub fn uses_buffer(&self, b: Buffer) -> bool {
        self.used_buffers.get(b.index()).copied().unwrap_or(false)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.firewall.is_none()
    }

    /// The loaded rules, in evaluation order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The rules matching `insp`, in evaluation order. When a `pass` rule matches, only that
    /// hit is returned (Suricata stops inspecting the packet). Matching rules update the
    /// flow's `flowbits`; `noalert` rules and hits held back by `threshold` or
    /// `detection_filter` are not returned.
    pub fn inspect(&self, insp: &Inspection<'_>) -> Vec<Hit> {
        match &self.firewall {
            Some(fw) => fw.inspect(
                insp,
                |i| self.inspect_td(i),
                |id| self.ips && self.state.lock().unwrap_or_else(|p| p.into_inner()).dropped.contains(&id),
            ),
            None => self.inspect_td(insp),
        }
    }

    /// Whether firewall rules are loaded (Suricata's firewall mode).
    pub fn firewall_mode(&self) -> bool {
        self.firewall.is_some()
    }

    /// [`Detector::inspect`] with the threat-detection rules only.
    fn inspect_td(&self, insp: &Inspection<'_>) -> Vec<Hit> {
        if (self.has_pass || self.ips || self.exception_passes.load(std::sync::atomic::Ordering::Relaxed))
            && insp.flow_id != 0
            && {
                let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.passed.contains(&insp.flow_id) || st.dropped.contains(&insp.flow_id)
            }
        {
            return Vec::new();
        }
        // (the buffer of the previous inspection on this thread, so it is not grown again)
        let mut cands: Vec<u32> = CANDIDATES.with(|c| std::mem::take(&mut *c.borrow_mut()));
        cands.clear();
        self.prefilter.candidates(insp, &mut cands);
        cands.sort_unstable();
        cands.dedup();
        let mut hits = Vec::new();
        let mut state = None;
        let mut drop_flow = false;
        if self.stream_sizes
            && let Some((seq, len)) = insp.tcp_seq
        {
            let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let flag = |m: u8| insp.tcp_flags.is_some_and(|f| f & m != 0);
            let v = g.flows.entry(insp.flow_id).or_default();
            v.last_seen = insp.ts_micros;
            v.track_seq(insp.direction, seq, len, flag(0x02), flag(0x01));
        }
        for &r in &cands {
            let rule = &self.rules[r as usize];
            if !rule_matches_in(rule, insp, self.prefilter.addr_check(r)) {
                continue;
            }
            let alert = if self.stateful && uses_state(rule) {
                let st = state.get_or_insert_with(|| {
                    let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    g.prune(insp.ts_micros);
                    g
                });
                if !apply_state(rule, r, insp, st) {
                    continue;
                }
                let mut alert = true;
                if let Some(df) = &rule.detection_filter {
                    alert &= count_threshold(st, df, r, insp, true);
                }
                if let Some(t) = &rule.threshold {
                    alert &= count_threshold(st, t, r, insp, false);
                }
                alert
            } else {
                true
            };
            // a rate_filter changes the action once its rate is exceeded
            let (mut action, mut silent) = (rule.meta.action, false);
            if alert && let Some(rf) = &self.rate_filters[r as usize] {
                let st = state.get_or_insert_with(|| self.state.lock().unwrap_or_else(|p| p.into_inner()));
                let key = RateKey::new(rf, r, insp.src_ip, insp.dst_ip);
                if rf.exceeded(st.rates.entry(key).or_default(), insp.ts_micros) {
                    (action, silent) = (rf.new_action, rf.silent);
                }
            }
            // IPS: a pass ordered after a drop that matched the packet (`action-order`) ends
            // the packet's inspection without alerting or passing anything: the drop stands
            // (Suricata's util-action tests)
            if action == Action::Pass && hits.iter().any(|h: &Hit| h.blocked) {
                break;
            }
            if action == Action::Pass {
                // the flow is passed: nothing of it is inspected any more (Suricata); a
                // packet rule's pass passes just the packet
                if super::ips::drop_applies_to_flow(rule, insp) {
                    drop(state);
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).passed.insert(insp.flow_id);
                }
                let mut h = Hit::of(rule, insp.direction);
                h.alert &= rule.meta.action == Action::Pass;
                h.action = Action::Pass;
                // (the hits of the rules ordered before it stay: see `action_order`)
                hits.push(h);
                return hits;
            }
            let blocked = self.ips && alert && action != Action::Alert;
            drop_flow |= blocked && super::ips::drop_applies_to_flow(rule, insp);
            let suppressed = || self.suppress[r as usize].iter().any(|s| s.suppresses(insp.src_ip, insp.dst_ip));
            if alert && !rule.noalert && !silent && !suppressed() {
                let mut h = Hit::of(rule, insp.direction);
                h.context = DATASET_CONTEXT.with(|c| std::mem::take(&mut *c.borrow_mut()));
                h.action = action;
                h.blocked = blocked;
                hits.push(h);
            }
        }
        if drop_flow {
            let mut st = state.unwrap_or_else(|| self.state.lock().unwrap_or_else(|p| p.into_inner()));
            st.dropped.insert(insp.flow_id);
        }
        CANDIDATES.with(|c| *c.borrow_mut() = cands);
        hits
    }

    /// Whether some rule can match a packet without payload (no buffer list: header keywords,
    /// flowbits, or nothing at all), so empty packets are worth inspecting.
    pub fn matches_empty_packets(&self) -> bool {
        self.empty_packets
    }

    /// Flowbits that rules check (`isset`/`isnotset`) but no loaded rule sets or toggles, with
    /// the checking rules (file, line, sid), by name.
    pub fn flowbits_never_set(&self) -> Vec<(String, Vec<RuleRef>)> {
        let mut set: HashSet<&str> = HashSet::new();
        for r in &self.rules {
            for op in &r.flowbits {
                if let FlowbitOp::Set(n) | FlowbitOp::Toggle(n) = op {
                    set.insert(n);
                }
            }
        }
        let mut out: std::collections::BTreeMap<String, Vec<RuleRef>> = Default::default();
        for r in &self.rules {
            for op in &r.flowbits {
                if let FlowbitOp::IsSet(ns, _) | FlowbitOp::IsNotSet(ns, _) = op {
                    for n in ns.iter().filter(|n| !set.contains(n.as_ref())) {
                        let v = out.entry(n.to_string()).or_default();
                        if !v.iter().any(|x| x.2 == r.meta.sid) {
                            v.push((r.file.to_string(), r.line, r.meta.sid));
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// The place of rule (`gid`, `sid`) in the evaluation order (`None`: not loaded).
    pub fn rule_rank(&self, gid: u32, sid: u32) -> Option<usize> {
        self.rules.iter().position(|r| r.meta.gid == gid && r.meta.sid == sid)
    }

    /// Forgets what the rules remembered (flowbits, thresholds, xbits/hostbits, passed and
    /// dropped flows, rate filters), as if the rules had just been loaded. For replaying the
    /// same capture again with the same compiled rules (benchmarks): without it, thresholds and hostbits of the first replay suppress alerts in the next.
    pub fn reset_state(&self) {
        if let Ok(mut st) = self.state.lock() {
            *st = DetectState::default();
        }
        self.exception_passes.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Passes a flow (Suricata's exception policies `pass-flow` and `bypass`): no rule
    /// inspects it any more.
    pub fn pass_flow(&self, flow_id: u64) {
        if flow_id != 0 {
            self.exception_passes.store(true, std::sync::atomic::Ordering::Relaxed);
            self.state.lock().unwrap_or_else(|p| p.into_inner()).passed.insert(flow_id);
        }
    }

    /// The `decode-event` rules matching a packet that failed to decode at its IP header
    /// (`events`: its [`crate::decode::DecodeEvent`] bits; no addresses, ports or transport), as
    /// Suricata's decoder-event rule group: rules of the `ip`/`pkthdr` protocols (or `ipv4`/
    /// `ipv6`) with `any` addresses and ports whose events the packet has; rules using state
    /// keywords or thresholds are not inspected (there is no flow or host to keep them on).
    pub fn inspect_addressless(&self, events: u64) -> Vec<Hit> {
        use super::compile::RuleProto;
        let mut hits = Vec::new();
        for &i in &self.decode_event_rules {
            let r = &self.rules[i as usize];
            if r.decode_events & !events == 0
                && matches!(r.proto, RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6)
                && r.src == super::parse::AddrExpr::Any
                && r.dst == super::parse::AddrExpr::Any
                && r.src_ports.is_any()
                && r.dst_ports.is_any()
                && r.lists.is_empty()
                && r.threshold.is_none()
                && r.detection_filter.is_none()
                && !uses_state(r)
                && !r.noalert
                && r.meta.action != Action::Pass
            {
                let mut h = Hit::of(r, Direction::ToServer);
                h.blocked = self.ips && r.meta.action != Action::Alert;
                hits.push(h);
            }
        }
        hits
    }

    /// Writes the sets of the `dataset` keywords with `save <file>` to their files (csv, see
    /// [`super::dataset`]); the sensor calls it when its capture ends. Returns the files
    /// written; a file that can't be written is counted and logged.
    pub fn save_datasets(&self) -> usize {
        let (mut done, mut written): (Vec<&Path>, usize) = (Vec::new(), 0);
        for m in self.rules.iter().flat_map(|r| r.lists.iter()).flat_map(|l| l.items.iter()) {
            let Item::Dataset(m) = m else { continue };
            let Some(path) = m.save.as_deref() else { continue };
            if done.contains(&path) {
                continue;
            }
            done.push(path);
            match std::fs::write(path, super::dataset::to_csv(&m.set, m.kind)) {
                Ok(()) => written += 1,
                Err(e) => {
                    metrics::counter!("soc_sensor_dataset_save_errors_total").increment(1);
                    tracing::warn!(file = %path.display(), set = %m.set.name, error = %e, "dataset not saved");
                }
            }
        }
        written
    }

    /// Forgets the per-flow state of a flow that ended.
    pub fn end_flow(&self, flow_id: u64) {
        if self.stateful || self.has_pass || self.exception_passes.load(std::sync::atomic::Ordering::Relaxed) {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.flows.remove(&flow_id);
            st.passed.remove(&flow_id);
        }
        if self.ips {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).dropped.remove(&flow_id);
        }
        if let Some(fw) = &self.firewall {
            fw.end_flow(flow_id);
        }
    }

    /// Moves the detection state of `old`, the rule set this one replaces on a reload, into
    /// this one, so that a reload forgets nothing the new rules can still use: per-flow
    /// `flowbits` and `flowint` variables and `xbits`/`hostbits` whose names a rule of this set
    /// uses, `stream_size` tracking, flows passed by a `pass` rule (when this set has one), and
    /// the `threshold`/`detection_filter` counters of the rules of the same gid:sid whose
    /// threshold did not change. The rest is dropped. `old` is left empty; moving again (one
    /// call per sensor that switches) brings over what `old` gathered in between, replacing
    /// entries of the same key.
    pub fn take_state_from(&self, old: &Detector) {
        if std::ptr::eq(self, old) {
            return;
        }
        let taken = std::mem::take(&mut *old.state.lock().unwrap_or_else(|p| p.into_inner()));
        if !(self.stateful || self.has_pass) {
            return;
        }
        let mut names: HashSet<&str> = HashSet::new();
        for r in &self.rules {
            for op in &r.flowbits {
                match op {
                    FlowbitOp::Set(n) | FlowbitOp::Unset(n) | FlowbitOp::Toggle(n) => {
                        names.insert(n);
                    }
                    FlowbitOp::IsSet(ns, _) | FlowbitOp::IsNotSet(ns, _) => names.extend(ns.iter().map(|n| &**n)),
                }
            }
            for op in &r.flowints {
                let (n, v) = match op {
                    FlowintOp::Set(n, v) | FlowintOp::Add(n, v) | FlowintOp::Sub(n, v) | FlowintOp::Cmp(n, _, v) => {
                        (n, Some(v))
                    }
                    FlowintOp::IsSet(n) | FlowintOp::IsNotSet(n) => (n, None),
                };
                names.insert(n);
                if let Some(FlowintVal::Var(w)) = v {
                    names.insert(w);
                }
            }
            names.extend(r.xbits.iter().map(|x| &*x.name));
        }
        let by_sid: HashMap<(u32, u32), usize> =
            self.rules.iter().enumerate().map(|(i, r)| ((r.meta.gid, r.meta.sid), i)).collect();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.stateful {
            for (id, mut vars) in taken.flows {
                vars.bits.retain(|n| names.contains(&**n));
                vars.ints.retain(|n, _| names.contains(&**n));
                st.flows.insert(id, vars);
            }
            st.xbits.extend(taken.xbits.into_iter().filter(|((n, _), _)| names.contains(&**n)));
            for (key, entry) in taken.thresholds {
                let Some(was) = old.rules.get(key.rule as usize) else { continue };
                let Some(&now) = by_sid.get(&(was.meta.gid, was.meta.sid)) else { continue };
                let is = &self.rules[now];
                let same = if key.detection_filter {
                    is.detection_filter == was.detection_filter
                } else {
                    is.threshold == was.threshold
                };
                if same {
                    st.thresholds.insert(ThresholdKey { rule: now as u32, ..key }, entry);
                }
            }
        }
        if self.has_pass {
            st.passed.extend(taken.passed);
        }
    }
}

/// The hosts an `xbits`/`hostbits` operation addresses.
fn xbit_keys(track: XbitTrack, insp: &Inspection<'_>) -> Vec<XbitKey> {
    match track {
        XbitTrack::IpSrc => vec![XbitKey::Host(insp.src_ip)],
        XbitTrack::IpDst => vec![XbitKey::Host(insp.dst_ip)],
        XbitTrack::IpBoth => vec![XbitKey::Host(insp.src_ip), XbitKey::Host(insp.dst_ip)],
        XbitTrack::IpPair => vec![XbitKey::Pair(insp.src_ip.min(insp.dst_ip), insp.src_ip.max(insp.dst_ip))],
        // a packet (no transaction) has no transaction bits
        XbitTrack::Tx => insp.tx_id.map(|t| XbitKey::Tx(insp.flow_id, t)).into_iter().collect(),
    }
}

/// Checks the rule's `flowbits`, `flowint` and `xbits`/`hostbits` conditions, and when they all
/// hold applies its modifiers (set/unset/toggle, `=`/`+`/`-`). Returns whether they held.
fn apply_state(rule: &CompiledRule, _idx: u32, insp: &Inspection<'_>, st: &mut DetectState) -> bool {
    if rule.flowbits.is_empty() && rule.flowints.is_empty() && rule.xbits.is_empty() && rule.stream_size.is_none() {
        return true;
    }
    let now = insp.ts_micros;
    for op in rule.xbits.iter().filter(|o| o.is_read()) {
        let set = xbit_keys(op.track, insp)
            .into_iter()
            .any(|k| st.xbits.get(&(op.name.clone(), k)).is_some_and(|&exp| exp > now));
        if set != (op.cmd == XbitCmd::IsSet) {
            return false;
        }
    }
    let vars = st.flows.entry(insp.flow_id).or_default();
    vars.last_seen = now;
    if let Some((side, cond)) = rule.stream_size {
        let size = |to_client: bool| vars.stream_size(to_client).is_some_and(|v| cond.matches(v));
        let ok = match side {
            StreamSide::Server => size(true),
            StreamSide::Client => size(false),
            StreamSide::Both => size(true) && size(false),
            StreamSide::Either => size(true) || size(false),
        };
        if !ok {
            return false;
        }
    }
    for op in &rule.flowbits {
        let ok = match op {
            FlowbitOp::IsSet(names, all) => {
                if *all {
                    names.iter().all(|n| vars.bits.contains(n))
                } else {
                    names.iter().any(|n| vars.bits.contains(n))
                }
            }
            FlowbitOp::IsNotSet(names, all) => {
                if *all {
                    names.iter().all(|n| !vars.bits.contains(n))
                } else {
                    names.iter().any(|n| !vars.bits.contains(n))
                }
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    let val = |ints: &HashMap<Arc<str>, u32>, v: &FlowintVal| match v {
        FlowintVal::Num(n) => Some(*n),
        FlowintVal::Var(name) => ints.get(name).copied(),
    };
    // flowint operations run in rule order, as Suricata's match list: a modifier acts when it
    // is reached, a later condition sees its result
    for op in &rule.flowints {
        let ok = match op {
            FlowintOp::IsSet(n) => vars.ints.contains_key(n),
            FlowintOp::IsNotSet(n) => !vars.ints.contains_key(n),
            FlowintOp::Cmp(n, cmp, v) => match (vars.ints.get(n).copied(), val(&vars.ints, v)) {
                (Some(a), Some(b)) => match cmp {
                    FlowintCmp::Eq => a == b,
                    FlowintCmp::Ne => a != b,
                    FlowintCmp::Lt => a < b,
                    FlowintCmp::Le => a <= b,
                    FlowintCmp::Gt => a > b,
                    FlowintCmp::Ge => a >= b,
                },
                _ => false,
            },
            // a modifier whose operand variable is not set does nothing (Suricata)
            FlowintOp::Set(n, v) => {
                if let Some(x) = val(&vars.ints, v) {
                    vars.ints.insert(n.clone(), x);
                }
                true
            }
            FlowintOp::Add(n, v) | FlowintOp::Sub(n, v) => {
                if let Some(x) = val(&vars.ints, v) {
                    let cur = vars.ints.get(n).copied().unwrap_or(0);
                    let new =
                        if matches!(op, FlowintOp::Add(..)) { cur.wrapping_add(x) } else { cur.saturating_sub(x) };
                    vars.ints.insert(n.clone(), new);
                }
                true
            }
        };
        if !ok {
            return false;
        }
    }
    for op in &rule.flowbits {
        match op {
            FlowbitOp::Set(n) => {
                vars.bits.insert(n.clone());
            }
            FlowbitOp::Unset(n) => {
                vars.bits.remove(n);
            }
            FlowbitOp::Toggle(n) if !vars.bits.remove(n) => {
                vars.bits.insert(n.clone());
            }
            _ => {}
        }
    }
    for op in rule.xbits.iter().filter(|o| !o.is_read()) {
        for k in xbit_keys(op.track, insp) {
            let key = (op.name.clone(), k);
            let live = st.xbits.get(&key).is_some_and(|&exp| exp > now);
            let expiry = now.saturating_add(op.expire as i64 * 1_000_000);
            match op.cmd {
                XbitCmd::Set => {
                    st.xbits.insert(key, expiry);
                }
                XbitCmd::Unset => {
                    st.xbits.remove(&key);
                }
                XbitCmd::Toggle => {
                    if live {
                        st.xbits.remove(&key);
                    } else {
                        st.xbits.insert(key, expiry);
                    }
                }
                XbitCmd::IsSet | XbitCmd::IsNotSet => {}
            }
        }
    }
    true
}

/// Counts one match against a `threshold`/`detection_filter` (Suricata's
/// detect-engine-threshold.c semantics, whole-second windows). Returns whether it alerts.
fn count_threshold(st: &mut DetectState, t: &Threshold, rule: u32, insp: &Inspection<'_>, df: bool) -> bool {
    let (a, b, flow) = match t.track {
        Track::BySrc => (Some(insp.src_ip), None, 0),
        Track::ByDst => (Some(insp.dst_ip), None, 0),
        Track::ByBoth => (Some(insp.src_ip.min(insp.dst_ip)), Some(insp.src_ip.max(insp.dst_ip)), 0),
        Track::ByRule => (None, None, 0),
        Track::ByFlow => (None, None, insp.flow_id),
    };
    let key = ThresholdKey { rule, detection_filter: df, a, b, flow };
    let now = insp.ts_micros;
    let window = t.seconds as i64 * 1_000_000;
    let e = st.thresholds.entry(key);
    let entry = match e {
        std::collections::hash_map::Entry::Vacant(v) => {
            if t.kind == ThresholdKind::Backoff {
                let first = t.count <= 1;
                let next = if first { t.count as u64 * t.multiplier as u64 } else { t.count as u64 };
                v.insert(ThresholdEntry { first: now, count: 1, next, alerted: false });
                return first;
            }
            v.insert(ThresholdEntry { first: now, count: 1, next: 0, alerted: false });
            return match t.kind {
                ThresholdKind::Limit | ThresholdKind::Backoff => true,
                ThresholdKind::Threshold | ThresholdKind::Both => {
                    if t.count <= 1 {
                        if let Some(x) = st.thresholds.get_mut(&ThresholdKey { rule, detection_filter: df, a, b, flow })
                        {
                            x.count = 0;
                            x.alerted = true;
                        }
                        true
                    } else {
                        false
                    }
                }
                ThresholdKind::DetectionFilter => t.count == 0,
            };
        }
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
    };
    let in_window = now - entry.first < window;
    match t.kind {
        ThresholdKind::Limit => {
            if in_window {
                entry.count += 1;
                entry.count <= t.count
            } else {
                *entry = ThresholdEntry { first: now, count: 1, next: 0, alerted: false };
                true
            }
        }
        ThresholdKind::Threshold => {
            if in_window {
                entry.count += 1;
                if entry.count >= t.count {
                    entry.count = 0;
                    true
                } else {
                    false
                }
            } else {
                *entry = ThresholdEntry { first: now, count: 1, next: 0, alerted: false };
                if t.count <= 1 {
                    entry.count = 0;
                    true
                } else {
                    false
                }
            }
        }
        ThresholdKind::Both => {
            if in_window {
                entry.count += 1;
                if entry.count >= t.count && !entry.alerted {
                    entry.alerted = true;
                    true
                } else {
                    false
                }
            } else {
                *entry = ThresholdEntry { first: now, count: 1, next: 0, alerted: t.count <= 1 };
                t.count <= 1
            }
        }
        ThresholdKind::Backoff => {
            entry.count = entry.count.saturating_add(1);
            if entry.count as u64 >= entry.next {
                entry.next = entry.next.saturating_mul(t.multiplier as u64);
                true
            } else {
                false
            }
        }
        ThresholdKind::DetectionFilter => {
            if in_window {
                entry.count = entry.count.saturating_add(1);
            } else {
                *entry = ThresholdEntry { first: now, count: 1, next: 0, alerted: false };
            }
            entry.count > t.count
        }
    }
}

fn proto_matches(r: &CompiledRule, insp: &Inspection<'_>) -> bool {
    let l4 = match r.proto {
        RuleProto::Ip => true,
        RuleProto::Ipv4 => insp.src_ip.is_ipv4(),
        RuleProto::Ipv6 => insp.src_ip.is_ipv6(),
        RuleProto::Tcp | RuleProto::TcpPkt | RuleProto::TcpStream => insp.proto == Transport::Tcp,
        RuleProto::Udp => insp.proto == Transport::Udp,
        RuleProto::Icmp => matches!(insp.proto, Transport::Icmp | Transport::Icmpv6),
        RuleProto::Icmpv4 => insp.proto == Transport::Icmp,
        RuleProto::Icmpv6 => insp.proto == Transport::Icmpv6,
        RuleProto::Sctp => insp.proto == Transport::Sctp,
        RuleProto::Http1 | RuleProto::App(_) => true,
    };
    l4 && match (r.app_proto, insp.app_proto) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(want), Some(got)) => {
            want == got
                || (want == AppProto::Http && got == AppProto::Http2 && !r.http1_only)
                // DNS over HTTP/2: http, http2 and dns rules match it too
                || (got == AppProto::Doh2
                    && (matches!(want, AppProto::Http2 | AppProto::Dns) || (want == AppProto::Http && !r.http1_only)))
                // DCERPC over SMB named pipes: dcerpc rules match it too
                || (want == AppProto::Dcerpc && got == AppProto::Smb && insp.dce.is_some())
        }
    }
}

/// Whether `r` inspects the TCP stream and whether it inspects TCP packets (segments added to
/// the stream), as Suricata's `SigValidate` decides: see [`PayloadKind`].
pub fn payload_modes(r: &CompiledRule) -> (bool, bool) {
    let tcp = !matches!(
        r.proto,
        RuleProto::Udp | RuleProto::Icmp | RuleProto::Icmpv4 | RuleProto::Icmpv6 | RuleProto::Sctp | RuleProto::TcpPkt
    );
    let mut payload = r.lists.iter().filter(|l| l.buffer == Buffer::Payload).peekable();
    if !tcp || payload.peek().is_none() || r.dsize.is_some() || r.flow.no_stream {
        return (false, true);
    }
    let depth_offset = payload
        .any(|l| l.items.iter().any(|i| matches!(i, Item::Content(c) if c.depth_len().is_some() || c.offset_is_set())));
    // `tcp-stream` rules are stream rules only, whatever their contents
    (true, r.proto != RuleProto::TcpStream && (depth_offset || r.stream_size.is_some()))
}

/// Header, flow, dsize and every buffer list of `r` against `insp`.
pub(crate) fn rule_matches(r: &CompiledRule, insp: &Inspection<'_>) -> bool {
    rule_matches_in(r, insp, &AddrCheck::Exprs)
}

/// [`rule_matches`] with the addresses checked as `addrs` says (a candidate of a signature
/// group: see [`AddrCheck`]).
fn rule_matches_in(r: &CompiledRule, insp: &Inspection<'_>, addrs: &AddrCheck) -> bool {
    if !proto_matches(r, insp) {
        return false;
    }
    // TCP stream versus packet inspection (see PayloadKind)
    if insp.payload_kind != PayloadKind::Any || !insp.skip_sids.is_empty() {
        let (stream, packet) = payload_modes(r);
        let ok = match insp.payload_kind {
            PayloadKind::Any => true,
            PayloadKind::Stream => stream,
            PayloadKind::StreamSegment => packet,
        };
        if !ok || (r.meta.gid == 1 && insp.skip_sids.contains(&r.meta.sid)) {
            return false;
        }
    }
    // transactional (`=>`) rules see whole transactions, and only they do
    if r.transactional != insp.whole_tx {
        return false;
    }
    // a transaction hook rule inspects its side of transactions only
    if let Some(request) = r.tx_hook {
        if !insp.transaction || (insp.direction == Direction::ToServer) != request {
            return false;
        }
    // a packet rule (header keywords, payload, flow state only) is inspected on packets
    } else if insp.transaction
        && r.urilen.is_none()
        && r.app_events == 0
        && r.dce.is_none()
        && !r.app_ints.iter().any(|(k, _)| k.transactional())
        && !r.lists.iter().any(|l| {
            !l.buffer.is_virtual()
                && !matches!(
                    l.buffer,
                    Buffer::Payload | Buffer::Ipv4Hdr | Buffer::Ipv6Hdr | Buffer::TcpHdr | Buffer::UdpHdr
                )
        })
    {
        return false;
    }
    if r.direction.is_some_and(|d| insp.flowless || d != insp.direction) {
        return false;
    }
    if r.flow.established.is_some_and(|e| e != insp.established) {
        return false;
    }
    let fwd = addrs.matches(r, insp.src_ip, insp.dst_ip)
        && r.src_ports.matches(insp.src_port)
        && r.dst_ports.matches(insp.dst_port);
    let rev = || {
        addrs.matches(r, insp.dst_ip, insp.src_ip)
            && r.src_ports.matches(insp.dst_port)
            && r.dst_ports.matches(insp.src_port)
    };
    if !(fwd || (r.bidirectional && rev())) {
        return false;
    }
    if let Some(d) = r.dsize
        && !d.matches(insp.payload.len() as u64)
    {
        return false;
    }
    let field = |c: Option<super::compile::IntCond>, v: Option<u8>| match (c, v) {
        (None, _) => true,
        (Some(c), Some(v)) => c.matches(v as u64),
        (Some(_), None) => false,
    };
    if !(field(r.ttl, insp.ttl)
        && field(r.ip_proto, insp.ip_proto)
        && field(r.itype, insp.icmp.map(|i| i.0))
        && field(r.icode, insp.icmp.map(|i| i.1)))
    {
        return false;
    }
    if let Some(f) = r.tcp_flags
        && !insp.tcp_flags.is_some_and(|v| f.matches(v))
    {
        return false;
    }
    if r.tcp_seq.is_some_and(|n| insp.tcp_seq.is_none_or(|(s, _)| s != n))
        || r.tcp_ack.is_some_and(|n| insp.tcp_ack != Some(n))
    {
        return false;
    }
    if r.sameip && insp.src_ip != insp.dst_ip {
        return false;
    }
    if let Some(h) = &r.host_conds
        && !h.matches(insp.src_ip, insp.dst_ip)
    {
        return false;
    }
    let id_seq = |c: Option<super::compile::IntCond>, v: Option<u16>| match (c, v) {
        (None, _) => true,
        (Some(c), Some(v)) => c.matches(v as u64),
        (Some(_), None) => false,
    };
    if !(id_seq(r.icmp_id, insp.icmp_id_seq.map(|x| x.0)) && id_seq(r.icmp_seq, insp.icmp_id_seq.map(|x| x.1))) {
        return false;
    }
    if r.icmpv6_mtu.is_some_and(|c| !insp.icmpv6_mtu.is_some_and(|m| c.matches(u64::from(m)))) {
        return false;
    }
    if insp.decode_events & r.decode_events != r.decode_events
        || insp.app_events & r.app_events != r.app_events
        || (r.flow_start && (insp.transaction || !insp.first_in_direction))
    {
        return false;
    }
    if let Some(a) = &r.alproto {
        let Some(st) = insp.alproto.as_ref() else { return false };
        if (a.pd_only && !st.detection_done) || !a.conds.iter().all(|c| c.matches(st, insp.direction)) {
            return false;
        }
    }
    for (k, c) in &r.app_ints {
        if !insp.app_ints.iter().any(|(x, v)| x == k && c.matches(*v)) {
            return false;
        }
    }
    if r.dce.as_ref().is_some_and(|c| !c.matches(insp.dce)) {
        return false;
    }
    for fc in &r.flow_counts {
        let Some((pkts, bytes)) = insp.flow_counts else { return false };
        let n = if fc.bytes { bytes } else { pkts };
        let ok = match fc.side {
            super::compile::CountSide::ToServer => fc.cond.matches(n[0]),
            super::compile::CountSide::ToClient => fc.cond.matches(n[1]),
            super::compile::CountSide::Either => fc.cond.matches(n[0]) || fc.cond.matches(n[1]),
        };
        if !ok {
            return false;
        }
    }
    if let Some((cond, raw)) = r.urilen {
        let uri = insp.buffer(if raw { Buffer::HttpUriRaw } else { Buffer::HttpUri });
        if !uri.is_some_and(|u| cond.matches(u.len() as u64)) {
            return false;
        }
    }
    BASE64_DATA.with(|b| *b.borrow_mut() = None);
    super::keywords::set_dce_little_endian(insp.dce.is_some_and(|d| d.little_endian));
    DATASET_CONTEXT.with(|c| c.borrow_mut().clear());
    let addr = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    r.lists.iter().all(|l| {
        let check = |base: &[u8]| {
            let data = transform(base, &l.transforms);
            l.bsize.is_none_or(|c| c.matches(data.len() as u64)) && inspect_buffer(&l.items, &data)
        };
        match l.buffer {
            // lists are in rule order: the base64_decode ran before
            Buffer::Base64Data => BASE64_DATA.with(|b| b.borrow().as_deref().is_some_and(check)),
            Buffer::IpSrc => check(&addr(insp.src_ip)),
            Buffer::IpDst => check(&addr(insp.dst_ip)),
            b => {
                let mut present = insp.buffers(b).peekable();
                match (present.peek().is_some(), l.absent) {
                    // absent: only where a transaction of its protocol and direction is
                    // inspected (no packet header fields)
                    (false, absent) => {
                        absent.is_some()
                            && insp.transaction
                            && b.direction().is_none_or(|d| d == insp.direction)
                            && b.app_proto().is_none_or(|a| insp.app_proto == Some(a))
                    }
                    (true, Some(false)) => false,
                    (true, _) => present.any(check),
                }
            }
        }
    })
}

/// Suricata's `inspection_recursion_limit` default.
const RECURSION_LIMIT: u32 = 3000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Match,
    NoMatch,
    /// No match, and no other occurrence of an earlier item can change that.
    Discontinue,
}

/// Whether the items of one buffer list all match `buf`.
pub fn inspect_buffer(items: &[Item], buf: &[u8]) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut budget = 0;
    run(items, 0, buf, 0, &mut budget) == Outcome::Match
}

fn run(items: &[Item], i: usize, buf: &[u8], buffer_offset: usize, budget: &mut u32) -> Outcome {
    *budget += 1;
    if *budget >= RECURSION_LIMIT {
        return Outcome::Discontinue;
    }
    match &items[i] {
        Item::Content(cd) => run_content(cd, items, i, buf, buffer_offset, budget),
        Item::Pcre(pe) => run_pcre(pe, items, i, buf, buffer_offset, budget),
        Item::IsDataAt(d) => {
            // Suricata: relative, `offset` more bytes after the match (up to the end); absolute,
            // a byte at `offset`
            let present = if d.relative {
                buffer_offset as u64 + d.offset as u64 <= buf.len() as u64
            } else {
                (d.offset as u64) < buf.len() as u64
            };
            if present != d.negated { next(items, i, buf, buffer_offset, budget) } else { Outcome::NoMatch }
        }
        Item::ByteTest(t) => {
            let base = if t.read.relative { buffer_offset } else { 0 };
            let value = t.value_var.map_or(t.value, byte_var);
            match t.read.read(buf, base) {
                Some((v, _)) if t.test_against(v, value) => next(items, i, buf, buffer_offset, budget),
                _ => Outcome::NoMatch,
            }
        }
        Item::ByteJump(j) => match j.jump(buf, buffer_offset) {
            Some(pos) => next(items, i, buf, pos, budget),
            None => Outcome::NoMatch,
        },
        Item::Dataset(m) => {
            let (ok, ctx) = m.check(buf);
            if !ok {
                return Outcome::NoMatch;
            }
            if let Some((k, v)) = ctx {
                DATASET_CONTEXT.with(|c| c.borrow_mut().push((k, v.to_string())));
            }
            next(items, i, buf, buffer_offset, budget)
        }
        Item::ByteExtract(e) => match e.extract(buf, buffer_offset) {
            Some((v, after)) => {
                BYTE_VARS.with(|b| b.borrow_mut()[e.var as usize] = v);
                next(items, i, buf, after, budget)
            }
            None => Outcome::NoMatch,
        },
        Item::ByteMath(m) => match m.compute(buf, buffer_offset, &byte_var) {
            Some((v, after)) => {
                BYTE_VARS.with(|b| b.borrow_mut()[m.var as usize] = v);
                next(items, i, buf, after, budget)
            }
            None => Outcome::NoMatch,
        },
        Item::Base64Decode(d) => {
            let decoded = d.decode(buf, buffer_offset);
            if decoded.is_empty() {
                return Outcome::NoMatch;
            }
            BASE64_DATA.with(|b| *b.borrow_mut() = Some(decoded));
            next(items, i, buf, buffer_offset, budget)
        }
    }
}

/// The value of a `byte_extract` variable of the rule being verified on this thread.
fn byte_var(idx: u8) -> u64 {
    BYTE_VARS.with(|b| b.borrow().get(idx as usize).copied().unwrap_or(0))
}

thread_local! {
    /// `byte_extract` variables of the rule being verified on this thread (Suricata keeps
    /// them in the thread's detection context too).
    static BYTE_VARS: std::cell::RefCell<[u64; super::compile::MAX_BYTE_VARS]> =
        const { std::cell::RefCell::new([0; super::compile::MAX_BYTE_VARS]) };
    /// Alert context of the `dataset` values the rule being verified on this thread found
    /// (key, JSON text).
    static DATASET_CONTEXT: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The candidate rules of [`Detector::inspect_td`], kept between inspections.
    static CANDIDATES: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The `base64_data` of the rule being verified on this thread: what its `base64_decode`
    /// decoded last (on a match, the one of the matching path, evaluated last).
    static BASE64_DATA: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// "goto match": the item matched with the detection offset at `offset`; inspect the next one.
fn next(items: &[Item], i: usize, buf: &[u8], offset: usize, budget: &mut u32) -> Outcome {
    if i + 1 == items.len() { Outcome::Match } else { run(items, i + 1, buf, offset, budget) }
}

fn run_content(
    cd: &ContentMatch,
    items: &[Item],
    i: usize,
    buf: &[u8],
    buffer_offset: usize,
    budget: &mut u32,
) -> Outcome {
    let len = buf.len() as i64;
    let plen = cd.pattern.len();
    let prev_buffer_offset = buffer_offset as i64;
    let relative = cd.is_relative();
    let is_last = i + 1 == items.len();
    // position modifiers, from byte_extract variables where the rule names them
    let var = |k: usize| cd.vars[k].map(|v| byte_var(v) as i64);
    let c_offset = var(VAR_OFFSET).unwrap_or(cd.offset as i64);
    let c_depth = match (var(VAR_DEPTH), cd.vars[VAR_OFFSET]) {
        (Some(d), _) => Some(c_offset + d),
        (None, Some(_)) => cd.depth_len().map(|d| c_offset + d as i64),
        (None, None) => cd.depth.map(|d| d as i64),
    };
    let c_distance = var(VAR_DISTANCE).or(cd.distance.map(i64::from));
    let c_within = var(VAR_WITHIN).or(cd.within.map(i64::from));
    let mut prev_offset: i64 = 0;
    loop {
        let (mut offset, mut depth);
        if relative {
            offset = prev_buffer_offset;
            depth = len;
            let distance = c_distance.unwrap_or(0);
            if c_distance.is_some() {
                offset = (offset + distance).max(0);
            }
            if let Some(w) = c_within {
                depth = depth.min(prev_buffer_offset + w + distance);
            }
        } else {
            depth = c_depth.unwrap_or(len);
            offset = c_offset;
        }
        if prev_offset != 0 {
            offset = prev_offset;
        }
        depth = depth.min(len);
        // an empty window can never hold the pattern, but satisfies a negated one
        if offset > depth || depth <= 0 {
            return if cd.negated { next(items, i, buf, buffer_offset, budget) } else { Outcome::NoMatch };
        }
        let (o, d) = (offset as usize, depth as usize);
        let window = &buf[o..d];
        let found = if cd.endswith {
            // the only occurrence that can count ends at the end of the buffer
            if d < buf.len() || window.len() < plen {
                None
            } else {
                cd.equals(&window[window.len() - plen..]).then_some(d - plen)
            }
        } else if plen > window.len() {
            None
        } else {
            cd.find(window).map(|p| p + o)
        };
        let Some(start) = found else {
            if cd.negated {
                return next(items, i, buf, buffer_offset, budget);
            }
            // an absolute content not found anywhere: nothing earlier can change that
            return if relative { Outcome::NoMatch } else { Outcome::Discontinue };
        };
        if cd.negated {
            return if cd.is_single() { Outcome::Discontinue } else { Outcome::NoMatch };
        }
        let match_offset = start + plen;
        if is_last {
            return Outcome::Match;
        }
        match run(items, i + 1, buf, match_offset, budget) {
            Outcome::Match => return Outcome::Match,
            Outcome::Discontinue => return Outcome::Discontinue,
            Outcome::NoMatch => {}
        }
        // only a 'within' bound on the next item makes a later occurrence worth trying
        if !cd.within_next {
            return Outcome::Discontinue;
        }
        prev_offset = start as i64 + 1;
    }
}

fn run_pcre(pe: &PcreMatch, items: &[Item], i: usize, buf: &[u8], buffer_offset: usize, budget: &mut u32) -> Outcome {
    let base = if pe.relative { buffer_offset.min(buf.len()) } else { 0 };
    let subject = &buf[base..];
    // absolute position after which to look for the next occurrence (0: from the start)
    let mut match_start_offset = 0usize;
    loop {
        let start = if match_start_offset != 0 { match_start_offset - base } else { 0 };
        let m = if start <= subject.len() { pe.regex.find_at(subject, start) } else { None };
        let (offset, restart) = match (m, pe.negated) {
            (Some(m), false) => (base + m.end, base + m.start + 1),
            (None, true) => (buffer_offset, 0),
            _ => return Outcome::NoMatch,
        };
        if !pe.relative_next {
            return next(items, i, buf, offset, budget);
        }
        match next(items, i, buf, offset, budget) {
            Outcome::Match => return Outcome::Match,
            Outcome::Discontinue => return Outcome::Discontinue,
            Outcome::NoMatch => {}
        }
        if restart == 0 {
            return Outcome::NoMatch;
        }
        match_start_offset = restart;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rule_stats;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));

    fn detector(rules: &str) -> Detector {
        let (d, errors) = Detector::from_rules(rules, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:#?}");
        d
    }

    fn tcp(payload: &[u8]) -> Inspection<'_> {
        Inspection {
            established: true,
            ..Inspection::new(Transport::Tcp, CLIENT, 40000, SERVER, 80, Direction::ToServer, payload)
        }
    }

    fn sids(d: &Detector, insp: &Inspection<'_>) -> Vec<u32> {
        let mut v: Vec<u32> = d.inspect(insp).iter().map(|h| h.sid).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn action_order_changes_which_action_comes_first_and_exception_passes_stop_inspection() {
        let rules = "pass tcp any any -> any any (content:\"hi\"; sid:1;)\nalert tcp any any -> any any (sid:2;)\n";
        let order = |b: DetectorBuilder| {
            let mut b = b;
            b.add_rules(rules, "t.rules");
            let (d, errors) = b.build();
            assert!(errors.is_empty(), "{errors:?}");
            d.inspect(&tcp(b"hi")).iter().map(|h| h.sid).collect::<Vec<_>>()
        };
        assert_eq!(order(DetectorBuilder::new()), [1], "pass first: nothing else");
        assert_eq!(order(DetectorBuilder::new().action_order(&[Action::Alert, Action::Pass])), [2, 1]);

        let d = detector("alert tcp any any -> any any (sid:1;)\n");
        assert_eq!(sids(&d, &Inspection { flow_id: 7, ..tcp(b"x") }), [1]);
        d.pass_flow(7);
        assert!(sids(&d, &Inspection { flow_id: 7, ..tcp(b"x") }).is_empty(), "passed by an exception policy");
        assert_eq!(sids(&d, &Inspection { flow_id: 8, ..tcp(b"x") }), [1]);
        d.end_flow(7);
        assert_eq!(sids(&d, &Inspection { flow_id: 7, ..tcp(b"x") }), [1], "a new flow with the id");
    }

    #[test]
    fn http1_transaction_hooks_match_their_side_of_transactions_only() {
        let d = detector(concat!(
            "alert http1:request_line any any -> any any (sid:1;)\n",
            "alert http1:response_complete any any -> any any (sid:2;)\n",
        ));
        let http = |dir: Direction, transaction: bool| Inspection {
            app_proto: Some(AppProto::Http),
            direction: dir,
            transaction,
            ..tcp(b"GET / HTTP/1.1\r\n")
        };
        assert_eq!(sids(&d, &http(Direction::ToServer, true)), [1]);
        assert_eq!(sids(&d, &http(Direction::ToClient, true)), [2]);
        assert!(sids(&d, &http(Direction::ToServer, false)).is_empty(), "not on packets");
        let (_, errors) = Detector::from_rules(
            "alert http1:response_body any any -> any any (sid:3;)\n",
            "t.rules",
            &Vars::default(),
        );
        assert!(errors[0].reason.contains("not supported"), "{}", errors[0]);
    }

    /// Does a rule made of `opts` match `payload` (TCP, to_server, established)?
    fn payload_match(opts: &str, payload: &[u8]) -> bool {
        let d = detector(&format!("alert tcp any any -> any any ({opts} sid:1;)"));
        !d.inspect(&tcp(payload)).is_empty()
    }

    #[test]
    fn detector_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detector>();
        assert_send_sync::<Hit>();
    }

    #[test]
    fn offset_and_depth() {
        assert!(payload_match(r#"content:"def"; offset:3; depth:3;"#, b"abcdefgh"));
        assert!(!payload_match(r#"content:"def"; offset:4;"#, b"abcdefgh"));
        assert!(!payload_match(r#"content:"def"; depth:5;"#, b"abcdefgh"));
        assert!(payload_match(r#"content:"def"; depth:6;"#, b"abcdefgh"));
        // depth counts from offset
        assert!(payload_match(r#"content:"gh"; offset:4; depth:4;"#, b"abcdefgh"));
        assert!(!payload_match(r#"content:"gh"; offset:4; depth:3;"#, b"abcdefgh"));
    }

    #[test]
    fn distance_and_within() {
        assert!(payload_match(r#"content:"ab"; content:"ef"; distance:2;"#, b"abcdef"));
        assert!(!payload_match(r#"content:"ab"; content:"ef"; distance:3;"#, b"abcdef"));
        assert!(payload_match(r#"content:"ab"; content:"cd"; within:2;"#, b"abcdef"));
        assert!(!payload_match(r#"content:"ab"; content:"de"; within:2;"#, b"abcdef"));
        assert!(payload_match(r#"content:"ab"; content:"de"; distance:1; within:2;"#, b"abcdef"));
        // negative distance: overlapping the previous match
        assert!(payload_match(r#"content:"cd"; content:"bcde"; distance:-3; within:4;"#, b"abcdef"));
        // relative to the first occurrence fails, the third occurrence works: backtracking
        assert!(payload_match(r#"content:"a"; content:"b"; distance:0; within:1;"#, b"a_a_ab"));
        // three levels of backtracking
        assert!(payload_match(
            r#"content:"x"; content:"y"; distance:0; within:1; content:"z"; distance:0; within:1;"#,
            b"xy_xyq_xyz"
        ));
        // no within on the next content: a later occurrence can't help (Suricata gives up)
        assert!(!payload_match(r#"content:"a"; content:"b"; distance:2;"#, b"a_b_a"));
        // a relative content first in the list is relative to the buffer start
        assert!(payload_match(r#"content:"ab"; distance:0; within:2;"#, b"abc"));
        assert!(!payload_match(r#"content:"bc"; distance:0; within:2;"#, b"abc"));
    }

    #[test]
    fn suricata_doc_firefox_example() {
        let opts = r#"content:"User-Agent|3A| Mozilla/5.0 |28|Windows|3B| "; content:"Firefox/3."; distance:0; content:!"Firefox/3.6.13"; distance:-10;"#;
        assert!(payload_match(opts, b"User-Agent: Mozilla/5.0 (Windows; U) Gecko Firefox/3.6.12\r\n"));
        assert!(!payload_match(opts, b"User-Agent: Mozilla/5.0 (Windows; U) Gecko Firefox/3.6.13\r\n"));
    }

    #[test]
    fn nocase_negation_startswith_endswith() {
        assert!(payload_match(r#"content:"SELECT"; nocase;"#, b"x select y"));
        assert!(!payload_match(r#"content:"SELECT";"#, b"x select y"));
        assert!(payload_match(r#"content:"|53 45|LECT"; nocase;"#, b"sElEcT"));
        assert!(payload_match(r#"content:!"evil";"#, b"good"));
        assert!(!payload_match(r#"content:!"evil";"#, b"so evil"));
        assert!(payload_match(r#"content:"GET "; startswith;"#, b"GET / HTTP/1.1"));
        assert!(!payload_match(r#"content:"GET "; startswith;"#, b" GET / HTTP/1.1"));
        assert!(payload_match(r#"content:".php"; endswith;"#, b"/a.php/b.php"));
        assert!(!payload_match(r#"content:".php"; endswith;"#, b"/a.php?x"));
        assert!(payload_match(r#"content:"/a"; startswith; content:".php"; endswith;"#, b"/a.php"));
        assert!(payload_match(r#"content:!".php"; endswith;"#, b"/a.php?x"));
        assert!(!payload_match(r#"content:!".php"; endswith;"#, b"/x.php/a.php"));
        assert!(payload_match(r#"content:"/"; content:"b"; distance:0; endswith;"#, b"/a/b"));
        // negated relative content: absent right after the match
        assert!(payload_match(r#"content:"user="; content:!"admin"; within:5;"#, b"user=guest&x=admin"));
        assert!(!payload_match(r#"content:"user="; content:!"admin"; within:5;"#, b"user=admin"));
        // a negated content with positive ones around it
        assert!(payload_match(r#"content:"a"; content:!"zz"; content:"b";"#, b"a b"));
        assert!(!payload_match(r#"content:"a"; content:!"zz"; content:"b";"#, b"a zz b"));
    }

    #[test]
    fn pcre_flags_and_relative() {
        assert!(payload_match(r#"pcre:"/un.on\s+select/i";"#, b"x UNION  SELECT y"));
        assert!(!payload_match(r#"pcre:"/un.on\s+select/";"#, b"x UNION  SELECT y"));
        assert!(payload_match(r#"pcre:"/^b$/m";"#, b"a\nb\nc"));
        assert!(!payload_match(r#"pcre:"/^b$/";"#, b"a\nb\nc"));
        assert!(payload_match(r#"pcre:"/a.c/s";"#, b"a\nc"));
        assert!(!payload_match(r#"pcre:"/a.c/";"#, b"a\nc"));
        assert!(payload_match(r#"pcre:"/a b c/x";"#, b"abc"));
        assert!(!payload_match(r#"pcre:"/bc/A";"#, b"abc"));
        assert!(payload_match(r#"pcre:!"/evil/";"#, b"good"));
        assert!(!payload_match(r#"pcre:!"/evil/";"#, b"evil"));
        // R: anchored at the end of the previous match
        assert!(payload_match(r#"content:"id="; pcre:"/^\d+&/R";"#, b"x=1&id=42&y"));
        assert!(!payload_match(r#"content:"id="; pcre:"/^\d+&/R";"#, b"id=x&id2=42&"));
        // R with a later occurrence of the content: tried again (pcre R sets within_next)
        assert!(payload_match(r#"content:"id="; pcre:"/^\d/R";"#, b"id=x id=7"));
        // a content relative to a pcre match
        assert!(payload_match(r#"pcre:"/user=\w+/"; content:"&pw="; within:4;"#, b"user=bob&pw=1"));
        assert!(payload_match(r#"content:"a"; pcre:"/b/R"; content:"c"; distance:0; within:1;"#, b"a b d a bc"));
        // pcre escapes as Suricata writes them inside a rule
        assert!(payload_match(r#"pcre:"/a\;b\x22c/";"#, b"a;b\"c"));
    }

    #[test]
    fn buffer_selection() {
        let d = detector(concat!(
            "alert http any any -> any any (http.uri; content:\"/admin\"; sid:1;)\n",
            "alert http any any -> any any (content:\"/admin\"; http_uri; content:\"POST\"; http_method; sid:2;)\n",
            "alert http any any -> any any (content:\"/admin\"; sid:3;)\n",
            "alert http any any -> any any (pcre:\"/^\\/admin/U\"; sid:4;)\n",
            "alert http any any -> any any (http.user_agent; content:\"sqlmap\"; nocase; sid:5;)\n",
            "alert http any any -> any any (http.header; content:\"X-Evil|3a 20|1|0d 0a|\"; sid:6;)\n",
            "alert http any any -> any any (http.host; content:\"bad.example\"; endswith; sid:7;)\n",
            "alert http any any -> any any (http.stat_code; content:\"500\"; sid:8;)\n",
            "alert http any any -> any any (http.cookie; content:\"session=\"; pcre:\"/n=1/C\"; sid:9;)\n",
            "alert http any any -> any any (http.request_body; content:\"pass=\"; sid:10;)\n",
            "alert dns any any -> any any (dns.query; content:\"evil\"; sid:11;)\n",
            "alert tls any any -> any any (tls.sni; content:\"evil\"; sid:12;)\n",
        ));
        let headers = http_header_buffer(
            Direction::ToServer,
            [
                (&b"Host"[..], &b"www.BAD.example"[..]),
                (b"User-Agent", b"SQLMap/1.7  "),
                (b"Cookie", b"session=1"),
                (b"X-Evil", b"1"),
            ],
        );
        let response = http_header_buffer(
            Direction::ToClient,
            [(&b"Set-Cookie"[..], &b"a=1"[..]), (b"Cookie", b"b=2"), (b"Server", b"x")],
        );
        assert_eq!(response, b"Cookie: b=2\r\nServer: x\r\n");
        assert_eq!(headers, b"Host: www.BAD.example\r\nUser-Agent: SQLMap/1.7\r\nX-Evil: 1\r\n");
        let insp = Inspection {
            app_proto: Some(AppProto::Http),
            http_uri: Some(b"/admin/login.php"),
            http_method: Some(b"POST"),
            http_host: Some(b"www.bad.example"),
            http_user_agent: Some(b"SQLMap/1.7"),
            http_headers: Some(&headers),
            http_cookie: Some(b"session=1"),
            http_request_body: Some(b"user=a&pass=b"),
            ..tcp(b"POST /admin/login.php HTTP/1.1\r\n")
        };
        assert_eq!(sids(&d, &insp), [1, 2, 3, 4, 5, 6, 7, 9, 10]);
        // the URI only in the payload: only the payload rule
        let insp2 = Inspection { app_proto: Some(AppProto::Http), ..tcp(b"GET /admin HTTP/1.1\r\n") };
        assert_eq!(sids(&d, &insp2), [3]);
        // app-layer rules need the protocol
        assert_eq!(sids(&d, &Inspection { app_proto: None, ..insp }), Vec::<u32>::new());
        let resp = Inspection {
            app_proto: Some(AppProto::Http),
            http_stat_code: Some(b"500"),
            direction: Direction::ToClient,
            ..tcp(b"HTTP/1.1 500 Oops\r\n")
        };
        assert_eq!(sids(&d, &resp), [8]);
        // a to_server-only buffer is not inspected in the response direction
        assert_eq!(sids(&d, &Inspection { http_uri: Some(b"/admin"), ..resp }), [8]);
        let dns = Inspection {
            app_proto: Some(AppProto::Dns),
            dns_query: Some(b"www.evil-c2.example"),
            ..Inspection::new(Transport::Udp, CLIENT, 5353, SERVER, 53, Direction::ToServer, b"")
        };
        assert_eq!(sids(&d, &dns), [11]);
        let tls = Inspection { app_proto: Some(AppProto::Tls), tls_sni: Some(b"evil.example"), ..tcp(b"\x16\x03\x01") };
        assert_eq!(sids(&d, &tls), [12]);
    }

    #[test]
    fn flow_direction_established_addresses() {
        let d = detector(concat!(
            "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (flow:established,to_server; content:\"x\"; sid:1;)\n",
            "alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET any (flow:to_client; content:\"x\"; sid:2;)\n",
            "alert tcp any any -> any any (flow:not_established; content:\"x\"; sid:3;)\n",
            "alert tcp 203.0.113.5 any <> 192.168.1.0/24 any (content:\"x\"; sid:4;)\n",
            "alert tcp any any -> any ![80,443] (content:\"x\"; sid:5;)\n",
            "alert udp any any -> any any (content:\"x\"; sid:6;)\n",
            "alert ip any any -> any any (content:\"x\"; sid:7;)\n",
            "alert tcp any any -> any any (flow:from_server; content:\"x\"; sid:8;)\n",
        ));
        let req = tcp(b"x");
        assert_eq!(sids(&d, &req), [1, 4, 7]);
        let resp = Inspection {
            src_ip: SERVER,
            src_port: 80,
            dst_ip: CLIENT,
            dst_port: 40000,
            direction: Direction::ToClient,
            ..req
        };
        assert_eq!(sids(&d, &resp), [2, 4, 5, 7, 8]);
        assert_eq!(sids(&d, &Inspection { established: false, ..req }), [3, 4, 7]);
        assert_eq!(sids(&d, &Inspection { dst_port: 8080, ..req }), [4, 5, 7]);
        let udp = Inspection { proto: Transport::Udp, ..req };
        assert_eq!(sids(&d, &udp), [6, 7]);
    }

    #[test]
    fn rules_without_content_dsize_and_pass() {
        let d = detector(concat!(
            "alert tcp any any -> any any (dsize:>5; sid:1;)\n",
            "alert tcp any any -> any any (dsize:0; flow:established; sid:2;)\n",
            "alert tcp any any -> any any (content:\"hello\"; sid:3;)\n",
            "pass tcp any any -> any 22 (sid:4;)\n",
        ));
        assert_eq!(sids(&d, &tcp(b"hello world")), [1, 3]);
        assert_eq!(sids(&d, &tcp(b"")), [2]);
        let hits = d.inspect(&Inspection { dst_port: 22, flow_id: 3, ..tcp(b"hello world") });
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].sid, hits[0].action, hits[0].alert), (4, Action::Pass, false));
        assert_eq!(sids(&d, &Inspection { flow_id: 3, ..tcp(b"hello world") }), Vec::<u32>::new(), "flow passed");
        assert_eq!(sids(&d, &Inspection { flow_id: 4, ..tcp(b"hello world") }), [1, 3], "not another flow");
        d.end_flow(3);
        assert_eq!(sids(&d, &Inspection { flow_id: 3, ..tcp(b"hello world") }), [1, 3], "a new flow with the id");
        let a = detector("pass tcp any any -> any 22 (alert; sid:5;)");
        assert!(a.inspect(&Inspection { dst_port: 22, ..tcp(b"x") })[0].alert, "pass with alert");
    }

    #[test]
    fn tcp_payload_rules_split_into_stream_and_packet_rules_as_suricata_does() {
        let modes = |r: &str| payload_modes(&detector(r).rules()[0]);
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; sid:1;)"), (true, false));
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; depth:4; sid:1;)"), (true, true));
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; offset:1; sid:1;)"), (true, true));
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; stream_size:client,>,1; sid:1;)"), (true, true));
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; dsize:>1; sid:1;)"), (false, true));
        assert_eq!(modes("alert tcp any any -> any any (content:\"a\"; flow:no_stream; sid:1;)"), (false, true));
        assert_eq!(modes("alert tcp-pkt any any -> any any (content:\"a\"; sid:1;)"), (false, true));
        assert_eq!(modes("alert tcp-stream any any -> any any (content:\"a\"; depth:4; sid:1;)"), (true, false));
        assert_eq!(modes("alert ip any any -> any any (content:\"a\"; sid:1;)"), (true, false));
        assert_eq!(modes("alert smb any any -> any any (content:\"SMB\"; depth:8; sid:1;)"), (true, true));
        assert_eq!(modes("alert udp any any -> any any (content:\"a\"; sid:1;)"), (false, true));
        assert_eq!(modes("alert http any any -> any any (http.uri; content:\"a\"; sid:1;)"), (false, true));

        let d = detector(concat!(
            "alert tcp any any -> any any (content:\"hello\"; sid:1;)\n",
            "alert tcp any any -> any any (content:\"hello\"; depth:5; sid:2;)\n",
            "alert tcp-pkt any any -> any any (content:\"hello\"; sid:3;)\n",
        ));
        assert_eq!(sids(&d, &tcp(b"hello")), [1, 2, 3], "not a TCP session: every rule");
        let seg = Inspection { payload_kind: PayloadKind::StreamSegment, ..tcp(b"hello") };
        assert_eq!(sids(&d, &seg), [2, 3], "a segment added to the stream: packet rules");
        let chunk = Inspection { payload_kind: PayloadKind::Stream, ..tcp(b"hello") };
        assert_eq!(sids(&d, &chunk), [1, 2], "a stream chunk: stream rules");
        assert_eq!(sids(&d, &Inspection { skip_sids: &[2], ..seg }), [3], "alerted by the stream already");
    }

    #[test]
    fn prefilter_is_case_insensitive_and_verifies_case() {
        let d = detector(concat!(
            "alert tcp any any -> any any (content:\"Evil\"; sid:1;)\n",
            "alert tcp any any -> any any (content:\"evil\"; nocase; sid:2;)\n",
            "alert tcp any any -> any any (content:\"EVIL\"; sid:3;)\n",
            "alert tcp any any -> any any (content:\"abc\"; content:\"evil\"; fast_pattern; sid:4;)\n",
        ));
        assert_eq!(sids(&d, &tcp(b"so Evil")), [1, 2]);
        assert_eq!(sids(&d, &tcp(b"so EVIL abc evil")), [2, 3, 4]);
        assert_eq!(sids(&d, &tcp(b"nothing")), Vec::<u32>::new());
    }

    #[test]
    fn hit_fields_and_duplicates() {
        let text = concat!(
            "alert http any any -> any any (msg:\"one\"; http.uri; content:\"/x\"; classtype:web-application-attack; priority:2; metadata:created_at 2026_11_27, tag a; target:dest_ip; sid:9000001; rev:1;)\n",
            "drop http any any -> any any (msg:\"newer\"; http.uri; content:\"/x\"; sid:9000001; rev:2;)\n",
        );
        let (d, errors) = Detector::from_rules(text, "dup.rules", &Vars::default());
        assert_eq!(d.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("duplicate sid 9000001"), "{}", errors[0]);
        assert_eq!((errors[0].line, errors[0].keyword.as_deref()), (1, Some("sid")));
        let insp = Inspection { app_proto: Some(AppProto::Http), http_uri: Some(b"/x"), ..tcp(b"") };
        let hits = d.inspect(&insp);
        assert_eq!((hits[0].rev, &*hits[0].msg, hits[0].action), (2, "newer", Action::Drop));
        let (d, _) = Detector::from_rules(
            &text.lines().next().unwrap().replace("9000001", "9000002"),
            "a.rules",
            &Vars::default(),
        );
        let h = &d.inspect(&insp)[0];
        assert_eq!((h.sid, h.gid, h.rev, h.severity, h.target), (9000002, 1, 1, 2, Some(Target::DestIp)));
        assert_eq!(h.classtype.as_deref(), Some("web-application-attack"));
        assert_eq!(h.metadata.get("created_at").map(|v| v[0].to_string()), Some("2026_11_27".to_string()));
    }

    #[test]
    fn errors_from_detector_and_stats() {
        let text = concat!(
            "alert tcp any any -> any any (msg:\"ok\"; content:\"a\"; sid:1;)\n",
            "alert http any any -> any any (msg:\"fi\"; lua:xxxxxxx; content:\"a\"; sid:2;)\n",
            "alert tcp any any -> any any (msg:\"ss\"; content:\"a\"; asn1:bitstring_overflow; sid:3;)\n",
            "alert tcp any any -> any any (msg:\"two\"; lua:x,=,1; tag:session,10,packets; sid:4;)\n",
            "alert tcp any any -> any (sid:5;)\n",
        );
        let (d, errors) = Detector::from_rules(text, "mixed.rules", &Vars::default());
        assert_eq!(d.len(), 1);
        let e = &errors[0];
        assert_eq!((e.file.as_str(), e.line, e.column, e.keyword.as_deref()), ("mixed.rules", 2, 42, Some("lua")));
        assert_eq!(e.to_string(), "mixed.rules:2:42: lua: keyword not supported yet");
        assert_eq!(errors[1].keyword.as_deref(), Some("asn1"));
        let stats = rule_stats(&errors);
        assert_eq!((stats.rejected_rules, stats.errors), (4, 4));
        assert_eq!(stats.by_keyword[0], ("lua".to_string(), 2));
        assert!(stats.sole_blocker.contains(&("asn1".to_string(), 1)));
        assert!(stats.sole_blocker.contains(&("(syntax)".to_string(), 1)));
        assert!(!stats.sole_blocker.iter().any(|(k, _)| k == "tag"));
        assert!(stats.to_string().contains("4 rules rejected"));
    }

    #[test]
    fn recursion_limit_bounds_pathological_rules() {
        let opts = (0..12).map(|_| r#"content:"a"; distance:0; within:50;"#).collect::<Vec<_>>().join(" ");
        let payload = vec![b'a'; 400];
        let mut tail = payload.clone();
        tail.push(b'b');
        let d = detector(&format!(
            "alert tcp any any -> any any (content:\"a\"; {opts} content:\"b\"; distance:0; within:1; sid:1;)"
        ));
        let t = Instant::now();
        assert!(d.inspect(&tcp(&payload)).is_empty());
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn metadata_and_classtype_strings_are_shared_between_rules_of_different_files() {
        let mut b = DetectorBuilder::new();
        b.add_rules(
            "alert tcp any any -> any any (msg:\"a\"; content:\"x\"; classtype:trojan-activity; metadata:deployment Perimeter, created_at 2020_01_01; sid:1;)\n",
            "a.rules",
        );
        b.add_rules(
            "alert tcp any any -> any any (msg:\"b\"; content:\"y\"; classtype:trojan-activity; metadata:created_at 2021_02_02, deployment Perimeter; sid:2;)\n",
            "b.rules",
        );
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:#?}");
        let by_sid = |sid| d.rules().iter().find(|r| r.meta.sid == sid).map(|r| &r.meta);
        let (Some(a), Some(b)) = (by_sid(1), by_sid(2)) else { panic!("rules 1 and 2 not loaded") };
        let entry = |m: &super::super::compile::RuleMeta, k: &str| m.metadata.get(k).map(|v| v[0].clone());
        let (Some(da), Some(db)) = (entry(a, "deployment"), entry(b, "deployment")) else { panic!("no deployment") };
        assert!(Arc::ptr_eq(&da, &db), "the value Perimeter is one shared string");
        assert_eq!(&*da, "Perimeter");
        let (Some(ka), Some(kb)) = (a.metadata.iter().next(), b.metadata.iter().next()) else { panic!("no keys") };
        assert_eq!((ka.0, kb.0), ("created_at", "created_at"), "keys in sorted order");
        assert!(std::ptr::eq(ka.0, kb.0), "the key created_at is one shared string");
        assert_eq!(entry(a, "created_at").as_deref(), Some("2020_01_01"));
        assert_eq!(entry(b, "created_at").as_deref(), Some("2021_02_02"));
        let (Some(ca), Some(cb)) = (&a.classtype, &b.classtype) else { panic!("no classtype") };
        assert!(Arc::ptr_eq(ca, cb));
    }

    #[test]
    fn demo_rules_fire_on_demo_traffic() {
        let text = include_str!("../../../rules/suricata/demo.rules");
        let (d, errors) = Detector::from_rules(text, "demo.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(d.len() >= 6);
        for r in d.rules() {
            assert!(r.meta.sid >= 9_000_000, "{}", r.meta.sid);
            assert_eq!(r.meta.metadata.get("created_at").map(|v| &*v[0]), Some("2026_11_27"));
        }
        // the addresses of `soc run --demo`: an external attacker, the ministry web server
        let attacker: IpAddr = "203.0.113.66".parse().unwrap();
        let web: IpAddr = "10.10.0.80".parse().unwrap();
        let victim: IpAddr = "10.20.1.25".parse().unwrap();
        let c2: IpAddr = "198.51.100.77".parse().unwrap();
        let http = |uri: &'static [u8], ua: &'static [u8], headers: &'static [u8]| Inspection {
            app_proto: Some(AppProto::Http),
            established: true,
            http_method: Some(b"GET"),
            http_uri: Some(uri),
            http_host: Some(b"portal.moha.gov.vn"),
            http_user_agent: Some(ua),
            http_headers: Some(headers),
            ..Inspection::new(Transport::Tcp, attacker, 51000, web, 80, Direction::ToServer, b"")
        };
        let fired =
            |insp: &Inspection<'_>| d.inspect(insp).iter().map(|h| h.msg.to_string()).collect::<Vec<_>>().join(" | ");
        let normal = http(b"/index.html", b"Mozilla/5.0", b"Host: shop.example\r\nUser-Agent: Mozilla/5.0\r\n");
        assert_eq!(fired(&normal), "");
        let sqli = http(b"/item.php?id=1' OR '1'='1", b"Mozilla/5.0", b"Host: shop.example\r\n");
        assert!(fired(&sqli).contains("SQL"), "{}", fired(&sqli));
        let sqli_encoded = http(b"/van-ban?id=1'%20OR%20'1'='1", b"Mozilla/5.0", b"Host: shop.example\r\n");
        assert!(fired(&sqli_encoded).contains("SQL"), "{}", fired(&sqli_encoded));
        let union =
            http(b"/item.php?id=1 UNION SELECT user,pass FROM users", b"Mozilla/5.0", b"Host: shop.example\r\n");
        assert!(fired(&union).contains("SQL"), "{}", fired(&union));
        let trav = http(b"/download.php?file=../../../../etc/passwd", b"Mozilla/5.0", b"Host: shop.example\r\n");
        assert!(fired(&trav).contains("traversal"), "{}", fired(&trav));
        let jndi_ua = http(b"/", b"${jndi:ldap://203.0.113.9/a}", b"User-Agent: ${jndi:ldap://203.0.113.9/a}\r\n");
        assert!(fired(&jndi_ua).contains("Log4Shell"), "{}", fired(&jndi_ua));
        let jndi_uri = http(b"/?x=${jndi:rmi://203.0.113.9/a}", b"curl/8", b"Host: shop.example\r\n");
        assert!(fired(&jndi_uri).contains("Log4Shell"), "{}", fired(&jndi_uri));
        let scanner = http(b"/", b"sqlmap/1.7.2#stable (https://sqlmap.org)", b"Host: shop.example\r\n");
        assert!(fired(&scanner).contains("scanner"), "{}", fired(&scanner));
        let nikto = http(b"/", b"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)", b"Host: shop.example\r\n");
        assert!(fired(&nikto).contains("scanner"), "{}", fired(&nikto));
        let dns = Inspection {
            app_proto: Some(AppProto::Dns),
            dns_query: Some(b"evil-c2.example"),
            ..Inspection::new(
                Transport::Udp,
                victim,
                53000,
                "10.20.0.53".parse().unwrap(),
                53,
                Direction::ToServer,
                b"",
            )
        };
        assert!(fired(&dns).contains("DNS"), "{}", fired(&dns));
        assert!(fired(&Inspection { dns_query: Some(b"beacon.evil-c2.example"), ..dns }).contains("DNS"));
        assert_eq!(fired(&Inspection { dns_query: Some(b"www.example.com"), ..dns }), "");
        assert_eq!(fired(&Inspection { dns_query: Some(b"notevil-c2.example"), ..dns }), "");
        let tls = Inspection {
            app_proto: Some(AppProto::Tls),
            established: true,
            tls_sni: Some(b"evil-c2.example"),
            ..Inspection::new(Transport::Tcp, victim, 49000, c2, 443, Direction::ToServer, b"\x16\x03\x01")
        };
        assert!(fired(&tls).contains("TLS"), "{}", fired(&tls));
        assert_eq!(fired(&Inspection { tls_sni: Some(b"www.google.com"), ..tls }), "");
    }

    #[test]
    fn flowbits_set_then_isset_on_the_same_flow_only() {
        let d = detector(concat!(
            "alert tcp any any -> any any (msg:\"login\"; content:\"USER\"; flowbits:set,logged; flowbits:noalert; sid:1;)\n",
            "alert tcp any any -> any any (msg:\"after login\"; content:\"RETR\"; flowbits:isset,logged; sid:2;)\n",
            "alert tcp any any -> any any (msg:\"not logged\"; content:\"RETR\"; flowbits:isnotset,logged; sid:3;)\n",
            "alert tcp any any -> any any (msg:\"logout\"; content:\"QUIT\"; flowbits:unset,logged; sid:4;)\n",
        ));
        let on = |flow: u64, p: &'static [u8]| sids(&d, &Inspection { flow_id: flow, ..tcp(p) });
        assert_eq!(on(1, b"RETR x"), [3]);
        assert_eq!(on(1, b"USER bob"), Vec::<u32>::new(), "noalert");
        assert_eq!(on(1, b"RETR x"), [2]);
        assert_eq!(on(2, b"RETR x"), [3], "another flow has no bit");
        assert_eq!(on(1, b"QUIT"), [4]);
        assert_eq!(on(1, b"RETR x"), [3]);
        // a setter and a reader on the same packet: the setter runs first (Suricata's ordering)
        let d2 = detector(concat!(
            "alert tcp any any -> any any (content:\"B\"; flowbits:isset,a; sid:10;)\n",
            "alert tcp any any -> any any (content:\"A\"; flowbits:set,a; sid:11;)\n",
        ));
        assert_eq!(sids(&d2, &Inspection { flow_id: 9, ..tcp(b"AB") }), [10, 11]);
        d2.end_flow(9);
        assert_eq!(sids(&d2, &Inspection { flow_id: 9, ..tcp(b"B") }), Vec::<u32>::new());
        let d3 = detector(concat!(
            "alert tcp any any -> any any (content:\"B\"; flowbits:isset,a; flowbits:isnotset,b|c; sid:10;)\n",
            "alert tcp any any -> any any (content:\"A\"; flowbits:set,a; flowbits:toggle,c; sid:11;)\n",
        ));
        assert_eq!(d3.flowbits_never_set(), [("b".to_string(), vec![("test.rules".to_string(), 1, 10)])]);
    }

    #[test]
    fn flowint_counts_per_flow_and_is_freed_at_flow_end() {
        let d = detector(concat!(
            "alert tcp any any -> any any (content:\"A\"; flowint:n,+,1; noalert; sid:1;)\n",
            "alert tcp any any -> any any (content:\"B\"; flowint:n,>=,2; sid:2;)\n",
            "alert tcp any any -> any any (content:\"B\"; flowint:n,notset; sid:3;)\n",
            "alert tcp any any -> any any (content:\"C\"; flowint:m,=,n; flowint:m,==,n; sid:4;)\n",
            "alert tcp any any -> any any (content:\"D\"; flowint:m,isset; flowint:n,-,5; sid:5;)\n",
            "alert tcp any any -> any any (content:\"E\"; flowint:n,==,0; sid:6;)\n",
        ));
        let on = |flow: u64, p: &'static [u8]| sids(&d, &Inspection { flow_id: flow, ..tcp(p) });
        assert_eq!(on(1, b"B"), [3], "unset: only notset holds");
        assert_eq!(on(1, b"A"), Vec::<u32>::new());
        assert_eq!(on(1, b"B"), Vec::<u32>::new(), "n = 1");
        assert_eq!(on(1, b"A"), Vec::<u32>::new());
        assert_eq!(on(1, b"B"), [2], "n = 2");
        assert_eq!(on(2, b"B"), [3], "another flow has its own counter");
        assert_eq!(on(1, b"D"), Vec::<u32>::new(), "m not set yet");
        assert_eq!(on(1, b"C"), [4], "m = n, a variable operand");
        assert_eq!(on(1, b"D"), [5]);
        assert_eq!(on(1, b"E"), [6], "a subtraction stops at 0");
        d.end_flow(1);
        assert_eq!(on(1, b"B"), [3], "the flow's variables went with it");
        for bad in ["flowint:n,+;", "flowint:n,~,1;", "flowint:n,isset,1;", "flowint:n,+,99999999999;"] {
            let (_, errors) =
                Detector::from_rules(&format!("alert tcp any any -> any any ({bad} sid:1;)"), "t", &Vars::default());
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn xbits_and_hostbits_follow_hosts_and_expire() {
        let d = detector(concat!(
            "alert tcp any any -> any any (content:\"S\"; xbits:set,seen,track ip_src,expire 10; xbits:noalert; sid:1;)\n",
            "alert tcp any any -> any any (content:\"Q\"; xbits:isset,seen,track ip_src; sid:2;)\n",
            "alert tcp any any -> any any (content:\"P\"; xbits:set,pair,track ip_pair; noalert; sid:3;)\n",
            "alert tcp any any -> any any (content:\"R\"; xbits:isset,pair,track ip_pair; sid:4;)\n",
            "alert tcp any any -> any any (content:\"H\"; hostbits:set,h,dst; noalert; sid:5;)\n",
            "alert tcp any any -> any any (content:\"I\"; hostbits:isset,h,src; sid:6;)\n",
            "alert tcp any any -> any any (content:\"J\"; hostbits:isnotset,h; sid:7;)\n",
        ));
        let at = |src: IpAddr, dst: IpAddr, ts: i64, p: &'static [u8]| {
            sids(&d, &Inspection { src_ip: src, dst_ip: dst, ts_micros: ts, flow_id: ts as u64, ..tcp(p) })
        };
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(at(CLIENT, SERVER, 0, b"Q"), Vec::<u32>::new());
        at(CLIENT, SERVER, 1_000_000, b"S");
        assert_eq!(at(CLIENT, other, 2_000_000, b"Q"), [2], "the bit is on the host, not the flow");
        assert_eq!(at(SERVER, CLIENT, 2_000_000, b"Q"), Vec::<u32>::new(), "not on the other host");
        assert_eq!(at(CLIENT, SERVER, 12_000_000, b"Q"), Vec::<u32>::new(), "expired after 10 s");
        at(CLIENT, SERVER, 0, b"P");
        assert_eq!(at(SERVER, CLIENT, 1, b"R"), [4], "a pair either way round");
        assert_eq!(at(CLIENT, other, 1, b"R"), Vec::<u32>::new());
        at(CLIENT, SERVER, 0, b"H");
        assert_eq!(at(SERVER, other, 1, b"I"), [6], "set on the destination, read as a source");
        assert_eq!(at(CLIENT, other, 1, b"J"), [7]);
        let (_, errors) = Detector::from_rules(
            "alert tcp any any -> any any (xbits:set,a,track tx; sid:1;)\nalert tcp any any -> any any (xbits:set,a; sid:2;)",
            "t",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1, "a missing track is rejected: {errors:?}");
        // track tx: the bit belongs to the transaction (flow and tx id); packets have none
        let (d, errors) = Detector::from_rules(
            "alert http any any -> any any (http.uri; content:\"/set\"; xbits:set,t,track tx; noalert; sid:1;)\n\
             alert http any any -> any any (http.stat_code; content:\"200\"; xbits:isset,t,track tx; sid:2;)",
            "t",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let tx = |tx_id: u64, uri: &'static [u8], status: Option<&'static [u8]>| {
            let mut i = tcp(b"");
            i.app_proto = Some(AppProto::Http);
            i.transaction = true;
            i.flow_id = 9;
            i.tx_id = Some(tx_id);
            match status {
                Some(s) => {
                    i.direction = Direction::ToClient;
                    i.http_stat_code = Some(s);
                }
                None => i.http_uri = Some(uri),
            }
            i
        };
        assert!(sids(&d, &tx(0, b"/set", None)).is_empty());
        assert_eq!(sids(&d, &tx(0, b"", Some(b"200"))), [2], "set by the request of the same transaction");
        assert!(sids(&d, &tx(1, b"", Some(b"200"))).is_empty(), "another transaction");
    }

    #[test]
    fn base64_decode_data_and_from_base64() {
        // "dGhpc2lzYXRlc3QK" is "thisisatest\n"
        assert!(payload_match(
            r#"content:"arg="; base64_decode:bytes 16, offset 0, relative; base64_data; content:"thisisatest";"#,
            b"GET /?arg=dGhpc2lzYXRlc3QK HTTP/1.1"
        ));
        assert!(!payload_match(
            r#"content:"arg="; base64_decode:bytes 16, offset 4, relative; base64_data; content:"thisisatest";"#,
            b"GET /?arg=dGhpc2lzYXRlc3QK HTTP/1.1"
        ));
        assert!(!payload_match(r#"content:"arg="; base64_decode:relative; base64_data; content:"x";"#, b"arg=***"));
        let (_, errors) = Detector::from_rules(
            "alert tcp any any -> any any (base64_data; content:\"a\"; sid:1;)",
            "t",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1, "base64_data without base64_decode");
        let d = detector(concat!(
            "alert http any any -> any any (http.uri; content:\"/?arg=\"; from_base64: offset 6; content:\"thisisatest\"; sid:1;)\n",
            "alert http any any -> any any (http.uri; from_base64: bytes 6, offset 6; content:\"this\"; bsize:4; sid:2;)\n",
            "alert http any any -> any any (http.uri; from_base64: offset 6, mode strict; content:\"this\"; sid:3;)\n",
            "alert http any any -> any any (http.uri; from_base64: offset 6, mode rfc2045; content:\"thisisatest\"; sid:4;)\n",
        ));
        let insp = |uri: &'static [u8]| Inspection { app_proto: Some(AppProto::Http), http_uri: Some(uri), ..tcp(b"") };
        assert_eq!(sids(&d, &insp(b"/?arg=dGhpc2lzYXRlc3QK")), [1, 2, 3, 4]);
        assert_eq!(sids(&d, &insp(b"/?arg=dGhpc2lz*XRlc3QK")), [2], "strict fails, rfc4648 stops, rfc2045 skips");
    }

    #[test]
    fn byte_extract_variables_position_contents_and_feed_byte_test() {
        // the digit at offset 2 ("2") bounds the depth of the content
        assert!(payload_match(r#"byte_extract:1,2,n,string,dec; content:"34"; offset:0; depth:n;"#, b"342"));
        assert!(!payload_match(r#"byte_extract:1,2,n,string,dec; content:"34"; offset:0; depth:n;"#, b"341"));
        // relative: the extraction moves the detection offset past the byte read
        let r = r#"content:"L="; byte_extract:1,0,len,string,relative; content:"X"; distance:len; within:1;"#;
        assert!(payload_match(r, b"L=3abcX"));
        assert!(!payload_match(r, b"L=3abXc"));
        assert!(payload_match(r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#, b"\x07\x07"));
        assert!(!payload_match(r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#, b"\x07\x08"));
        for bad in [
            r#"byte_extract:1,0,v; byte_extract:1,1,v; content:"a";"#,
            r#"content:"a"; offset:nosuchvar;"#,
            r#"byte_extract:0,0,v;"#,
        ] {
            let (_, errors) =
                Detector::from_rules(&format!("alert tcp any any -> any any ({bad} sid:1;)"), "t", &Vars::default());
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn flow_pkts_and_bytes_compare_the_flow_counts_per_direction() {
        let d = detector(
            "alert tcp any any -> any any (flow.pkts:toserver,=3; sid:1;)\n\
             alert tcp any any -> any any (flow.pkts:either,>=10; flow.bytes:toclient,>1000; sid:2;)\n\
             alert tcp any any -> any any (flow.bytes_toserver:<100; sid:3;)",
        );
        let sids = |pkts: [u64; 2], bytes: [u64; 2]| -> Vec<u32> {
            let mut i = tcp(b"");
            i.flow_counts = Some((pkts, bytes));
            let mut v: Vec<u32> = d.inspect(&i).iter().map(|h| h.sid).collect();
            v.sort();
            v
        };
        assert_eq!(sids([3, 0], [500, 0]), vec![1]);
        assert_eq!(sids([2, 10], [50, 1001]), vec![2, 3]);
        assert_eq!(sids([2, 10], [50, 1000]), vec![3]);
        // without the flow's counts nothing matches
        assert!(d.inspect(&tcp(b"")).is_empty());
        let (_, errors) =
            Detector::from_rules("alert tcp any any -> any any (flow.pkts:sideways,1; sid:1;)", "t", &Vars::default());
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn packet_rules_do_not_match_transaction_inspections() {
        let d = detector(
            "alert tcp any any -> any any (flow:to_server; sid:1;)\n\
             alert http any any -> any any (flow:to_server; sid:2;)\n\
             alert http any any -> any any (http.method; content:\"GET\"; sid:3;)",
        );
        let sids = |transaction: bool| -> Vec<u32> {
            let mut i = tcp(b"");
            i.app_proto = AppProto::from_name("http");
            i.http_method = Some(b"GET");
            i.transaction = transaction;
            let mut v: Vec<u32> = d.inspect(&i).iter().map(|h| h.sid).collect();
            v.sort();
            v
        };
        assert_eq!(sids(false), vec![1, 2, 3]);
        assert_eq!(sids(true), vec![3]);
    }

    #[test]
    fn transactional_rules_match_whole_transactions_only_and_others_never_do() {
        let d = detector(
            "alert tls any any => any any (ja3s.hash; content:\"bb\"; ja3.string; content:\"771,\"; sid:1;)\n\
             alert tls any any -> any any (ja3.string; content:\"771,\"; sid:2;)",
        );
        assert!(d.has_transactional());
        let other = [(Buffer::Ja3String, &b"771,4865"[..]), (Buffer::Ja3sHash, &b"aabb"[..])];
        let sids_of = |whole_tx: bool, other: &[(Buffer, &'static [u8])]| -> Vec<u32> {
            let mut i = tcp(b"");
            i.app_proto = AppProto::from_name("tls");
            i.transaction = true;
            i.whole_tx = whole_tx;
            i.other = Box::leak(other.to_vec().into_boxed_slice());
            sids(&d, &i)
        };
        assert_eq!(sids_of(true, &other), vec![1]);
        assert_eq!(sids_of(false, &other), vec![2]);
        assert!(sids_of(true, &other[..1]).is_empty(), "the response side is needed too");
        let (_, errors) = Detector::from_rules(
            "alert http any any => any any (http.uri; content:\"a\"; sid:3;)",
            "t",
            &Vars::default(),
        );
        assert!(errors[0].reason.contains("tls only"), "{errors:?}");
    }

    #[test]
    fn absent_matches_a_missing_buffer_of_an_inspected_transaction_only() {
        let d = detector(
            "alert http any any -> any any (http.request_body; absent; sid:1;)\n\
             alert http any any -> any any (http.request_body; absent: or_else; content:!\"abc\"; sid:2;)",
        );
        let sids = |body: Option<&[u8]>, packet: bool| -> Vec<u32> {
            let mut i = tcp(b"");
            i.app_proto = AppProto::from_name("http");
            i.http_request_body = body;
            i.transaction = !packet;
            let mut v: Vec<u32> = d.inspect(&i).iter().map(|h| h.sid).collect();
            v.sort();
            v
        };
        assert_eq!(sids(None, false), vec![1, 2]);
        assert_eq!(sids(Some(b"xyz"), false), vec![2]);
        assert!(sids(Some(b"abc"), false).is_empty());
        // a packet carries no transaction: nothing is absent from it
        assert!(sids(None, true).is_empty());
        for bad in [r#"absent;"#, r#"http.request_body; content:"a"; absent;"#, r#"http.request_body; absent:maybe;"#] {
            let (_, errors) =
                Detector::from_rules(&format!("alert http any any -> any any ({bad} sid:1;)"), "t", &Vars::default());
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn byte_math_combines_a_read_number_with_a_value_or_variable() {
        // 0x03 + 2 == 0x05
        assert!(payload_match(
            r#"byte_math:bytes 1, offset 0, oper +, rvalue 2, result r; byte_test:1,=,r,1;"#,
            b"\x03\x05"
        ));
        assert!(!payload_match(
            r#"byte_math:bytes 1, offset 0, oper +, rvalue 2, result r; byte_test:1,=,r,1;"#,
            b"\x03\x06"
        ));
        // rvalue and bytes from byte_extract variables; 0x0102 * 2 == 0x0204
        let r = r#"byte_extract:1,0,n; byte_extract:1,1,m; byte_math:bytes n, offset 2, oper *, rvalue m, result r; byte_test:2,=,r,4;"#;
        assert!(payload_match(r, b"\x02\x02\x01\x02\x02\x04"));
        assert!(!payload_match(r, b"\x02\x03\x01\x02\x02\x04"));
        // subtraction wraps as an unsigned number; division by zero never matches
        assert!(payload_match(
            r#"byte_math:bytes 1, offset 0, oper -, rvalue 1, result r; byte_test:1,<,r,0;"#,
            b"\x00"
        ));
        assert!(!payload_match(
            r#"byte_math:bytes 1, offset 0, oper /, rvalue 0, result r; byte_test:1,>=,r,0;"#,
            b"\x00"
        ));
        // relative to the previous match, the detection offset moves past the bytes read
        let r = r#"content:"L"; byte_math:bytes 1, offset 0, oper >>, rvalue 1, result r, relative; byte_test:1,=,r,0,relative;"#;
        assert!(payload_match(r, b"L\x08\x04"));
        assert!(!payload_match(r, b"L\x08\x08"));
        for bad in [
            r#"byte_math:bytes 1, offset 0, oper %, rvalue 1, result r;"#,
            r#"byte_math:bytes 1, offset 0, oper +, result r;"#,
            r#"byte_math:bytes 9, offset 0, oper +, rvalue 1, result r;"#,
            r#"byte_math:bytes 1, offset 0, oper +, rvalue nosuchvar, result r;"#,
        ] {
            let (_, errors) =
                Detector::from_rules(&format!("alert tcp any any -> any any ({bad} sid:1;)"), "t", &Vars::default());
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn stream_size_follows_sequence_numbers_per_side() {
        let d = detector(concat!(
            "alert tcp any any -> any any (stream_size:client,>,5; sid:1;)\n",
            "alert tcp any any -> any any (stream_size:server,=,1; sid:2;)\n",
            "alert tcp any any -> any any (stream_size:either,>=,3; sid:3;)\n",
            "alert tcp any any -> any any (stream_size:both,<,100; sid:4;)\n",
        ));
        let pkt = |dir: Direction, seq: u32, flags: u8, p: &'static [u8]| Inspection {
            direction: dir,
            flow_id: 7,
            tcp_flags: Some(flags),
            tcp_seq: Some((seq, p.len() as u32)),
            ..tcp(p)
        };
        assert_eq!(sids(&d, &pkt(Direction::ToServer, 1000, 0x02, b"")), Vec::<u32>::new(), "SYN: client 1");
        assert_eq!(sids(&d, &pkt(Direction::ToClient, 5000, 0x12, b"")), [2, 4], "SYN/ACK: server 1");
        assert_eq!(sids(&d, &pkt(Direction::ToServer, 1001, 0x18, b"abc")), [2, 3, 4], "client 4");
        assert_eq!(sids(&d, &pkt(Direction::ToServer, 1004, 0x18, b"de")), [1, 2, 3, 4], "client 6");
        assert_eq!(sids(&d, &pkt(Direction::ToServer, 1001, 0x18, b"abc")), [1, 2, 3, 4], "a retransmission");
        d.end_flow(7);
        let (_, errors) = Detector::from_rules(
            "alert tcp any any -> any any (stream_size:sideways,>,1; sid:1;)",
            "t",
            &Vars::default(),
        );
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn threshold_and_detection_filter_count_per_window() {
        let d = detector(concat!(
            "alert tcp any any -> any any (content:\"L\"; threshold:type limit,track by_src,count 2,seconds 10; sid:1;)\n",
            "alert tcp any any -> any any (content:\"T\"; threshold:type threshold,track by_src,count 3,seconds 10; sid:2;)\n",
            "alert tcp any any -> any any (content:\"B\"; threshold:type both,track by_dst,count 2,seconds 10; sid:3;)\n",
            "alert tcp any any -> any any (content:\"D\"; detection_filter:track by_rule,count 2,seconds 10; sid:4;)\n",
        ));
        let at =
            |secs: i64, p: &'static [u8]| !d.inspect(&Inspection { ts_micros: secs * 1_000_000, ..tcp(p) }).is_empty();
        let l: Vec<bool> = (0..4).map(|i| at(i, b"L")).collect();
        assert_eq!(l, [true, true, false, false]);
        assert!(at(20, b"L"), "a new window");
        let t: Vec<bool> = (0..6).map(|i| at(i, b"T")).collect();
        assert_eq!(t, [false, false, true, false, false, true]);
        let b: Vec<bool> = (0..4).map(|i| at(i, b"B")).collect();
        assert_eq!(b, [false, true, false, false]);
        let df: Vec<bool> = (0..4).map(|i| at(i, b"D")).collect();
        assert_eq!(df, [false, false, true, true]);
        let other_src = Inspection { ts_micros: 5_000_000, src_ip: "10.9.9.9".parse().unwrap(), ..tcp(b"L") };
        assert_eq!(d.inspect(&other_src).len(), 1, "by_src counts per source");
    }

    #[test]
    fn bsize_transforms_and_byte_keywords() {
        let dns = |q: &'static [u8]| Inspection {
            app_proto: Some(AppProto::Dns),
            dns_query: Some(q),
            ..Inspection::new(Transport::Udp, CLIENT, 5000, SERVER, 53, Direction::ToServer, b"")
        };
        let d = detector(concat!(
            "alert dns any any -> any any (dns.query; dotprefix; content:\".evil.com\"; endswith; sid:1;)\n",
            "alert dns any any -> any any (dns.query; bsize:8; content:\"evil\"; sid:2;)\n",
            "alert dns any any -> any any (dns.query; to_lowercase; content:\"shout\"; sid:3;)\n",
        ));
        assert_eq!(sids(&d, &dns(b"evil.com")), [1, 2]);
        assert_eq!(sids(&d, &dns(b"a.evil.com")), [1]);
        assert_eq!(sids(&d, &dns(b"notevil.com")), Vec::<u32>::new());
        assert_eq!(sids(&d, &dns(b"SHOUT.org")), [3]);
        assert!(payload_match(r#"content:"LEN"; byte_test:1,>,3,0,relative;"#, b"LEN\x05"));
        assert!(!payload_match(r#"content:"LEN"; byte_test:1,>,3,0,relative;"#, b"LEN\x02"));
        assert!(payload_match(r#"content:"LEN"; byte_jump:1,0,relative; content:"X"; within:1;"#, b"LEN\x02abXc"));
        assert!(!payload_match(r#"content:"LEN"; byte_jump:1,0,relative; content:"X"; within:1;"#, b"LEN\x01abXc"));
        assert!(payload_match(r#"content:"AB"; isdataat:2,relative;"#, b"ABcde"));
        assert!(!payload_match(r#"content:"AB"; isdataat:3,relative;"#, b"ABcd"));
        assert!(payload_match(r#"content:"AB"; isdataat:2,relative;"#, b"ABcd"), "2 more bytes: up to the end");
        assert!(payload_match(r#"isdataat:4,relative;"#, b"ABcd"));
        assert!(!payload_match(r#"isdataat:4;"#, b"ABcd"), "absolute: a byte at offset 4");
        assert!(payload_match(r#"content:"AB"; isdataat:!3,relative;"#, b"ABcd"));
        assert!(payload_match(r#"content:"A"; pcre:"/(x.)\1/R";"#, b"Ax1x1"));
        assert!(!payload_match(r#"content:"A"; pcre:"/(x.)\1/R";"#, b"Ax1x2"));
    }

    #[test]
    fn address_list_rules_are_indexed_by_network() {
        let d = detector(concat!(
            "alert ip [203.0.113.5,198.51.100.0/24] any -> $HOME_NET any (msg:\"rep\"; sid:1;)\n",
            "alert ip $HOME_NET any -> [2001:db8::1] any (msg:\"rep6\"; sid:2;)\n",
        ));
        assert!(d.prefilter_stats().by_addr > 0, "indexed, not checked on every packet");
        assert_eq!(sids(&d, &tcp(b"x")), Vec::<u32>::new(), "SERVER is the destination, not the source");
        let from = |src: &str, dst: &str| Inspection {
            src_ip: src.parse().unwrap(),
            dst_ip: dst.parse().unwrap(),
            ..tcp(b"")
        };
        assert_eq!(sids(&d, &from("203.0.113.5", "192.168.1.10")), [1]);
        assert_eq!(sids(&d, &from("198.51.100.77", "10.1.1.1")), [1]);
        assert_eq!(sids(&d, &from("198.51.101.77", "10.1.1.1")), Vec::<u32>::new());
        assert_eq!(sids(&d, &from("10.1.1.1", "2001:db8::1")), [2]);
        assert_eq!(sids(&d, &from("fd00::1", "2001:db8::1")), Vec::<u32>::new(), "fd00::1 not in HOME_NET");
    }

    #[test]
    fn seq_and_ack_match_the_tcp_header_numbers_exactly() {
        let d = detector(concat!(
            "alert tcp any any -> any any (seq:3964863680; ack:2403674603; sid:1;)\n",
            "alert tcp any any -> any any (ack:7; sid:2;)\n",
        ));
        let both = Inspection { tcp_seq: Some((3964863680, 0)), tcp_ack: Some(2403674603), ..tcp(b"") };
        assert_eq!(sids(&d, &both), [1]);
        let other_seq = Inspection { tcp_seq: Some((3964863681, 0)), tcp_ack: Some(2403674603), ..tcp(b"") };
        assert_eq!(sids(&d, &other_seq), Vec::<u32>::new());
        assert_eq!(sids(&d, &Inspection { tcp_seq: Some((1, 0)), tcp_ack: Some(7), ..tcp(b"") }), [2]);
        assert_eq!(sids(&d, &tcp(b"")), Vec::<u32>::new(), "no TCP header: no match");
        let bad =
            "alert tcp any any -> any any (seq:-1; sid:3;)\nalert tcp any any -> any any (ack:99999999999; sid:4;)\n";
        let (_, errors) = Detector::from_rules(bad, "t.rules", &Vars::default());
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn header_keywords_match_packet_fields_only() {
        let d = detector(concat!(
            "alert tcp any any -> any any (flags:SA; sid:1;)\n",
            "alert ip any any -> any any (ttl:<5; sid:2;)\n",
            "alert icmp any any -> any any (itype:8; icode:0; sid:3;)\n",
        ));
        assert!(d.matches_empty_packets());
        let syn_ack = Inspection { tcp_flags: Some(0x12), ttl: Some(64), ..tcp(b"") };
        assert_eq!(sids(&d, &syn_ack), [1]);
        assert_eq!(sids(&d, &Inspection { tcp_flags: Some(0x02), ttl: Some(3), ..tcp(b"") }), [2]);
        assert_eq!(sids(&d, &tcp(b"")), Vec::<u32>::new(), "no header fields: no match");
        let ping = Inspection {
            icmp: Some((8, 0)),
            ..Inspection::new(Transport::Icmp, CLIENT, 0, SERVER, 0, Direction::ToServer, b"x")
        };
        assert_eq!(sids(&d, &ping), [3]);
        assert_eq!(sids(&d, &Inspection { icmp: Some((0, 0)), ..ping }), Vec::<u32>::new());
        assert!(!detector(r#"alert tcp any any -> any any (content:"a"; sid:1;)"#).matches_empty_packets());
        // a protocol-only app-layer rule matches every packet of its flows, empty ones too
        assert!(detector("alert http any any -> any any (sid:1;)\n").matches_empty_packets());
        assert!(!detector("alert http any any -> any any (http.uri; content:\"a\"; sid:1;)\n").matches_empty_packets());
    }

    #[test]
    fn urilen_and_response_buffers() {
        let d = detector(concat!(
            "alert http any any -> any any (urilen:<5; sid:1;)\n",
            "alert http any any -> any any (flow:to_client; http.server; content:\"nginx\"; sid:2;)\n",
            "alert http any any -> any any (http.header_names; content:\"|0d 0a|X-Evil|0d 0a|\"; sid:3;)\n",
        ));
        let req = |uri: &'static [u8], other: &'static [(Buffer, &'static [u8])]| Inspection {
            app_proto: Some(AppProto::Http),
            http_uri: Some(uri),
            other,
            ..tcp(b"")
        };
        assert_eq!(sids(&d, &req(b"/a", &[])), [1]);
        assert_eq!(sids(&d, &req(b"/abcdef", &[(Buffer::HttpHeaderNames, b"\r\nHost\r\nX-Evil\r\n\r\n")])), [3]);
        let resp = Inspection {
            app_proto: Some(AppProto::Http),
            other: &[(Buffer::HttpServer, b"nginx/1.2")],
            ..Inspection::new(Transport::Tcp, SERVER, 80, CLIENT, 40000, Direction::ToClient, b"")
        };
        assert_eq!(sids(&d, &resp), [2]);
    }

    #[test]
    fn rule_threshold_and_firewall_files_that_cannot_be_read_are_errors_at_line_0() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("local.rules");
        std::fs::write(&rules, "alert tcp any any -> any any (msg:\"a\"; content:\"x\"; sid:1;)\n").unwrap();
        let missing = |name: &str| dir.path().join(name);
        let mut b = DetectorBuilder::new();
        b.add_file(&rules)
            .add_file(missing("gone.rules"))
            .add_threshold_file(missing("threshold.config"))
            .add_firewall_file(missing("firewall.rules"));
        assert_eq!(b.len(), 1, "the readable file is loaded");
        let (_, errors) = b.build();
        let got: Vec<(String, usize)> = errors
            .iter()
            .filter(|e| e.reason.starts_with("cannot read the file"))
            .map(|e| (e.file.rsplit(['/', '\\']).next().unwrap_or_default().to_string(), e.line))
            .collect();
        let want = [("gone.rules", 0), ("threshold.config", 0), ("firewall.rules", 0)];
        assert_eq!(got, want.map(|(f, l)| (f.to_string(), l)), "{errors:#?}");
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }
}
