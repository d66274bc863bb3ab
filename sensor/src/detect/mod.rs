//! Suricata-compatible signature detection: first cut.
//!
//! The engine is split the way the full engine will be, one module per stage:
//!
//! 1. [`parse`]: rule text to [`ParsedRule`]. Syntax only: action, protocol, address and port
//!    expressions (with `$VARS` from [`Vars`], groups `[...]`, ranges, negation, CIDR, `->`/`<>`),
//!    and the option list `(key:value; key; ...)` with Suricata's escaping (`\;`, `\"`, `\\`),
//!    rules continued over several lines by a trailing backslash, comments and blank lines.
//! 2. [`compile`]: a [`ParsedRule`] to a [`CompiledRule`]: keyword semantics, per-buffer lists
//!    of content/pcre matches, the fast pattern, the implied application protocol and direction.
//!    A rule using a keyword this cut does not implement is **rejected** (a [`RuleError`] with
//!    file, line, column, keyword and reason); it is never loaded with the keyword ignored.
//! 3. [`matcher`]: [`Detector`] groups the compiled rules ([`prefilter`]: by transport,
//!    direction and `$HOME_NET` side of each address), searches each buffer of an
//!    [`Inspection`] once for the fast patterns of its group ([`literals`]), and verifies the
//!    candidate rules completely with
//!    Suricata's content-inspection semantics (relative matches with backtracking over later
//!    occurrences, `nocase`, negation, `startswith`/`endswith`, pcre `/R`).
//!
//! # Supported
//!
//! - Actions `alert`, `pass`, `drop`, `reject`, `rejectsrc`, `rejectdst`, `rejectboth`, and
//!   the explicit drop scopes `drop:packet` and `drop:flow` (IPS mode); `action-order`
//!   ([`DetectorBuilder::action_order`]).
//!   Transactional rules (`=>`) and the app-layer protocol hooks other than HTTP/1's are
//!   rejected; the packet hooks `flow_start` (the first packet of each direction) and `all`
//!   are supported (`alert tcp:flow_start ...`), and the HTTP/1 transaction hooks
//!   (`http1:request_line`, `response_complete`, ...: the rule inspects its side of each
//!   transaction, once; the `*_body` hooks, evaluated per body update, are rejected).
//!   In IPS mode ([`DetectorBuilder::ips`], [`ips`]) drop and reject hits are blocked, and a
//!   drop by an app-layer, transaction or IP-only rule drops the rest of the flow.
//! - Firewall rules ([`firewall`], [`DetectorBuilder::add_firewall_rules`]): `accept`/`drop`
//!   with scopes, packet hooks (`tcp:all`, `ip:flow_start`, `pre_flow`, `pre_stream`),
//!   default-drop packet filter, HTTP/1 and DNS transaction hooks (each side walks its hooks in
//!   order, default `drop:flow`), evaluated before these rules.
//! - Protocols: `ip`, `ipv4`/`ip4`, `ipv6`/`ip6`, `pkthdr` (alias of `ip`), `tcp`, `tcp-pkt`,
//!   `tcp-stream` (TCP payload rules inspect the reassembled stream or the segments as
//!   Suricata decides, see [`PayloadKind`]; the sensor feeds the stream chunks),
//!   `udp`, `icmp`, `icmpv4`, `icmpv6`, `sctp`, and the application protocols of Suricata's list
//!   (`http`, `http1`, `http2`, `dns`, `tls`, `smb`, `ssh`, `ftp`, `smtp`, ...); an
//!   application-protocol rule matches only when the caller sets [`Inspection::app_proto`].
//! - Meta: `msg`, `sid`, `gid`, `rev`, `classtype` (with a [`Classifications`] table in
//!   `classification.config` format), `priority`, `reference`, `metadata`, `target`.
//! - Payload: `content` (`|hex|`, `!` negation, escapes) with `nocase`, `offset`, `depth`,
//!   `distance`, `within`, `startswith`, `endswith`, `fast_pattern` (incl. `only` and the
//!   `offset,length` chop), `rawbytes` (a no-op in Suricata too); `uricontent`; `pcre`
//!   (`/re/flags` translated to the `regex` crate: flags `i s m x A E G R B O` and the buffer
//!   flags `U I H D M C P Q S Y V W`; patterns that need backtracking (backreferences,
//!   lookaround, atomic groups, possessive quantifiers) run on a backtracking fallback,
//!   `fancy-regex` over the buffer as Latin-1, see [`pcre::PcreRegex`]; recursion, verbs,
//!   conditionals, `\K`... are rejected with the reason); `isdataat`, `byte_test`, `byte_jump`,
//!   `byte_extract` (its variables in `offset`/`depth`/`distance`/`within` and as the
//!   `byte_test` value), `byte_math` (`bytes` and `rvalue` as numbers or variables, the
//!   operators `+ - * / << >>`, `result` a variable), `dsize`, `bsize`, `urilen`; `absent`
//!   (and `absent: or_else`) on a sticky buffer: missing from the inspected transaction;
//!   `base64_decode` with the `base64_data` buffer; `dataset`/`datarep` ([`dataset`]: string, md5, sha256, ipv4 and ip sets, loaded
//!   from csv/json/ndjson files next to the rule file, `alert.context` from json objects) on
//!   any buffer, including the packet addresses `ip.src`/`ip.dst`; `prefilter` (a performance
//!   hint); `dataset ... save <file>` (the set written to the data directory when the capture
//!   ends, [`DetectorBuilder::data_dir`]); `iprep` (IP reputation categories and scores,
//!   [`DetectorBuilder::reputation_categories`]) and `geoip` (countries from a MaxMind database,
//!   [`DetectorBuilder::geoip_database`]), see [`iprep`]; `tag` (session and host tagging:
//!   [`Hit::tag`], the sensor logs the tagged packets, [`crate::tag`]); `requires` (version conditions; a rule whose requirements are not met is not
//!   loaded, and no optional `feature` is claimed).
//! - Buffers: every [`Buffer`] (sticky keyword, aliases and legacy content modifiers):
//!   `pkt_data`, the HTTP request and response buffers (`http.uri`, `http.uri.raw`, `http.method`,
//!   `http.host`, `http.user_agent`, `http.header`, `http.header.raw`, `http.header_names`,
//!   `http.cookie`, `http.request_body`, `http.response_body`, `http.stat_code`, `http.stat_msg`,
//!   `http.content_type`, `http.content_len`, `http.request_line`, `http.response_line`,
//!   `http.start`, `http.protocol`, `http.referer`, `http.accept*`, `http.connection`,
//!   `http.location`, `http.server`), `file.data`, `dns.query`, `tls.sni`,
//!   `tls.cert_subject`/`_issuer`/`_serial`/`_fingerprint`, `tls.certs`, `ja3.hash`/`.string`,
//!   `ja3s.*`, `tls.random`/`_time`/`_bytes` (each side's hello random), `ssh.proto`/`.software`,
//!   `ssh.hassh`/`.string` and `ssh.hassh.server`/`.string` (from a key-exchange init message
//!   that starts a segment or follows the identification line in it), the DNS multi-buffers
//!   `dns.queries.rrname`, `dns.answers.rrname`, `dns.authorities.rrname`,
//!   `dns.additionals.rrname` and `dns.response.rrname` (DNS responses are inspected too),
//!   and the packet headers `ipv4.hdr`, `ipv6.hdr` (with the extension headers), `tcp.hdr`,
//!   `udp.hdr` (options included), `icmpv6.hdr`. A buffer the caller does not provide never
//!   matches; a buffer given several times (`tls.certs`: one per certificate) matches when one does.
//! - Transforms ([`keywords::Transform`]): `dotprefix`, `strip_whitespace`,
//!   `compress_whitespace`, `to_lowercase`, `to_uppercase`, `url_decode`, `to_md5`, `to_sha1`,
//!   `to_sha256`, `from_base64` (`bytes`, `offset`, `mode rfc4648|rfc2045|strict`), `gunzip`
//!   and `zlib_deflate` (`max-size`, 1024 bytes by default: the output is cut there); the
//!   prefilter scans the transformed buffer. A transform after a content starts a new list of
//!   the same buffer with the transforms applied (Suricata 8).
//! - `flow`: `established`, `not_established`, `stateless`, `to_server`/`from_client`,
//!   `to_client`/`from_server`, `no_stream` (a packet rule: never inspected on the reassembled
//!   stream) and `no_frag` (trivially true: fragments are not inspected). `only_stream`/
//!   `only_frag` are rejected.
//! - State: `flowbits` (`set`, `unset`, `toggle`, `isset`, `isnotset` with `|`/`&`, `noalert`)
//!   per flow ([`Inspection::flow_id`]), rules ordered as Suricata does (setters before
//!   readers); `flowint` (`=`, `+`, `-`, comparisons with numbers or other flowints,
//!   `isset`/`notset`, run in rule order) per flow; `xbits` (`track ip_src|ip_dst|ip_pair`,
//!   `expire`) and `hostbits` (`src|dst|both`) per host or host pair with expiry; the per-flow
//!   state is freed by [`Detector::end_flow`] (the sensor calls it when a flow ends); `noalert`;
//!   `threshold` (`limit`, `threshold`, `both`, `backoff`; `by_src`, `by_dst`, `by_rule`,
//!   `by_both`, `by_flow`) and `detection_filter`, on [`Inspection::ts_micros`].
//! - `threshold.config` files ([`threshold_config`], [`DetectorBuilder::add_threshold_file`]):
//!   `suppress` (all, or by source/destination/either address list),
//!   `threshold`/`event_filter` and `rate_filter` entries by gid/sid; bad lines are errors
//!   with file and line.
//! - `decode-event` for the decoder events of [`crate::decode::DecodeEvent`]: anomalies of
//!   packets that decode (`ipv6.exthdr_useless_fh`, `ipv6.exthdr_dupl_fh`,
//!   `ipv6.dstopts_unknown_opt`, `ipv6.hopopts_unknown_opt`), of fragments (`ipv4`/`ipv6`
//!   `.frag_overlap`, `.frag_pkt_too_large`; a fragment carrying one is inspected without a
//!   flow), and the failures after the IP header of packets Suricata still inspects without a
//!   flow (`ipv6.trunc_exthdr`, `ipv6.frag_invalid_length`, `tcp.pkt_too_small`,
//!   `tcp.hlen_too_small`, `tcp.invalid_optlen`, `udp.hlen_too_small`, `udp.pkt_too_small`,
//!   `udp.len_invalid`, `icmpv4.pkt_too_small`, `icmpv6.pkt_too_small`, `gre.pkt_too_small`),
//!   and the failures at the IP header (`ipv4.pkt_too_small`, `ipv4.hlen_too_small`,
//!   `ipv4.iplen_smaller_than_hlen`, `ipv4.trunc_pkt`, `ipv6.pkt_too_small`, `ipv6.trunc_pkt`:
//!   the packet has no addresses, only `decode-event` rules with `any` addresses and ports are
//!   inspected, [`Detector::inspect_addressless`]);
//!   other event names are rejected.
//! - `stream-event:3whs_syn_flood` (a stream event, kept with the decoder events as
//!   `stream.3whs_syn_flood`): a client SYN with a new sequence number beyond the ten Suricata
//!   queues while the handshake is unanswered ([`crate::flow::TcpConn`]); other stream events
//!   are rejected.
//! - `app-layer-event` for the events derived from an HTTP request's headers
//!   ([`AppEvent`]: `http.duplicate_content_length_field_in_request`,
//!   `http.request_auth_unrecognized`), `http.request_field_too_long` (a request line or header
//!   line past libhtp's 18,000-byte field limit) and from the TLS handshake (`tls.invalid_handshake_message`:
//!   the server certificate does not decode, `tls.certificate_invalid_length`: its DER is cut
//!   in a header); other event names are rejected.
//! - `xbits` with `track tx`: bits of the inspected transaction ([`Inspection::tx_id`]).
//! - DCERPC (over TCP and over SMB named pipes, [`dce`]): `dcerpc.iface` (`dce_iface`: the
//!   request's context bound to the UUID, version comparisons, `any_frag`), `dcerpc.opnum`
//!   (`dce_opnum`: numbers and ranges), the `dcerpc.stub_data` buffer (`dce_stub_data`), and
//!   the `dce` byte order of `byte_test`/`byte_jump`/`byte_extract`/`byte_math` (the PDU's).
//! - SMB: `smb.version`, the `smb.share`, `smb.named_pipe`, `smb.ntlmssp_user`,
//!   `smb.ntlmssp_domain` buffers, `file.data` of files read or written, the
//!   `smb.file_overlap` app-layer event.
//! - Files ([`crate::app::file`]): `file.data` (HTTP bodies, each file of a multipart request;
//!   SMB files; FTP data channels; SMTP attachments; a repeated `file.data` may match another
//!   file), `file.name`, `filesize`, `filemd5`/`filesha1`/`filesha256` (hash lists read relative
//!   to the rule file; files kept whole only). `filestore` and `filemagic` are rejected.
//! - FTP ([`crate::app::ftp`]): `ftp.command`, `ftpbounce`; `ftp-data` flows (announced by
//!   `PORT`/`EPRT`/`227`/`229`) with `ftpdata_command`. SMTP ([`crate::app::smtp`]): `email.date`,
//!   `email.from`, `email.to`, `email.cc`, `email.subject`, `email.message_id`, `email.x_mailer`.
//! - NTP: `ntp.version`, `ntp.stratum`, `ntp.mode` (numbers or mode names) and the
//!   `ntp.reference_id` buffer, read from the datagram's fixed header ([`AppInt`]).
//! - DNS: `dns.rcode` (the header's response code, of requests and responses, [`AppInt`]).
//! - Kerberos 5, SNMP, SIP, MQTT, EtherNet/IP, QUIC, IKEv2 ([`crate::app::msg`]: each message of a
//!   packet is a transaction): `krb5_msg_type`, `krb5_err_code`, `krb5.ticket_encryption` (one
//!   type, a name or `weak`), the `krb5.cname`/`krb5.sname` buffers (replies and errors);
//!   `snmp.version`, `snmp.pdu_type`, `snmp.trap_type`, the `snmp.community`/`snmp.usm`
//!   buffers, the `snmp` firewall hooks; `sip.method`, `sip.uri`, `sip.protocol`,
//!   `sip.request_line`, `sip.response_line`, `sip.stat_code`, `sip.stat_msg`, `sip.from`,
//!   `sip.to`, `sip.via`, `sip.user_agent`, `sip.content_type`, `sip.content_length`,
//!   `sip.server`, `frame:sip.pdu|request.line|request.headers|request.body|response.*`;
//!   `mqtt.type`, `mqtt.flags`, `mqtt.qos`, `mqtt.reason_code`, `mqtt.protocol_version`,
//!   `mqtt.connect.flags`, the `mqtt.connect.*`, `mqtt.publish.*`, `mqtt.subscribe.topic`,
//!   `mqtt.unsubscribe.topic` buffers, `frame:mqtt.pdu|header|data`, the events
//!   `mqtt.missing_connect` and `mqtt.malformed_traffic`;
//!   `enip_command`, `cip_service` (service only); `quic.version`, and for Google QUIC
//!   `quic.sni`, `quic.cyu.hash`, `quic.cyu.string`; the event `ikev2.weak_crypto_dh` (`ikev2`
//!   rules are `ike` rules). A frame name without its protocol (`frame:pdu`) is one of the
//!   rule's protocol.
//! - DNP3 ([`crate::app::dnp3`], from the reassembled stream): `dnp3_func`, `dnp3_obj`, the
//!   `dnp3_data` buffer, the events `dnp3.flooded`, `dnp3.len_too_small`, `dnp3.bad_link_crc`,
//!   `dnp3.bad_transport_crc`, `dnp3.too_long_reassembly` (`dnp3.unknown_object` and
//!   `dnp3.max_points_per_object` are rejected). LDAP ([`crate::app::ldap`]):
//!   `ldap.request.operation`, `ldap.responses.operation` (any, an index, `all`),
//!   `ldap.responses.count`.
//! - `app-layer-protocol` (`[!]proto[,to_server|to_client|direction|either|original|final]`,
//!   `unknown`, `failed`, `http1`); a rule testing nothing else matches only on the packets
//!   that complete a direction's detection or change the protocol (Suricata's PD-only rules).
//! - Transforms `xor` and `pcrexform` (besides those listed above).
//! - HTTP/2 ([`crate::app::http2`]): `http2` rules use the http.* buffers as Suricata fills them
//!   for HTTP/2 (pseudo-headers in the header buffers, `http.protocol` `HTTP/2`, an empty
//!   `http.stat_msg`, `http.response_line` `HTTP/2 <status>\r\n`); `http2.frametype`,
//!   `http2.errorcode`, `http2.priority`, `http2.window`, `http2.size_update`, `http2.settings`
//!   ([`AppInt`]), the `http2.header_name` buffer, `frame:http2.hdr|data|pdu`, the
//!   `strip_pseudo_headers` transform, the events `http2.authority_host_mismatch` and
//!   `http2.userinfo_in_uri`. `doh2` rules (DNS over HTTP/2) use the http.*, http2.* and dns.*
//!   buffers; `http`, `http2` and `dns` rules match DNS-over-HTTP/2 traffic too.
//! - Packet header: `ttl`, `itype`, `icode`, `icmp_id`, `icmp_seq`, `icmpv6.mtu` (of Packet
//!   Too Big messages), `ip_proto`, `flags` (with modifiers and mask), `sameip`; the flow's
//!   counts so far: `flow.pkts`, `flow.bytes` (`toserver`, `toclient`, `either`; and the
//!   `_toserver`/`_toclient` forms) ([`Inspection::flow_counts`]).
//!
//! # Not supported yet (rules using them are rejected)
//!
//! `byte_extract` variables in `byte_jump`/`isdataat`,
//! `dataset` `state`, `tls.version`, `asn1`, the other decoder
//! events (of packets that fail before or at their IP header, and the rarer anomalies), the
//! other `stream-event`s, the other `app-layer-event`s, `lua`, pcre
//! capture extraction, the other app-layer buffers, `frame`,
//! firewall hooks of app-layer protocols other than HTTP/1, DNS, SSH and TLS (`ftp:request_started`,
//! ...), rules mixing request and response
//! buffers (they need transaction state).
//!
//! A matching `pass` rule passes its flow, as Suricata does: the flow is not inspected again
//! (until [`Detector::end_flow`]); a pass by a packet rule (`flow`, `dsize`, payload content...)
//! passes just the packet (the scope of [`ips::drop_applies_to_flow`]).

//! # Wiring
//!
//! ```ignore
//! let (detector, errors) = Detector::load_files(&["rules/suricata/demo.rules"], &Vars::default());
//! for e in &errors { eprintln!("{e}"); }
//! let insp = Inspection {
//!     app_proto: Some(AppProto::Http),
//!     established: true,
//!     http_uri: Some(b"/index.php?id=1' OR '1'='1"),
//!     ..Inspection::new(Transport::Tcp, src_ip, 51000, dst_ip, 80, Direction::ToServer, payload)
//! };
//! for hit in detector.inspect(&insp) { /* build an EVE alert */ }
//! ```

pub mod compile;
pub mod dataset;
pub mod dce;
pub mod firewall;
pub mod hook_progress;
pub mod iprep;
pub mod ips;
pub mod keywords;
pub mod literals;
mod load;
pub mod matcher;
pub mod parse;
pub mod pcre;
pub mod prefilter;
pub mod threshold_config;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use compile::{
    AppEvent, AppInt, AppProto, Buffer, BufferList, Classification, Classifications, CompiledRule, ContentMatch,
    Direction, FastPattern, FlowCond, IntCond, Item, PcreMatch, RuleMeta, RuleMetadata, RuleProto, Target,
    compile_rule,
};
pub use matcher::{
    Detector, DetectorBuilder, Hit, Inspection, PayloadKind, Transport, http_header_buffer, inspect_buffer,
    payload_modes,
};
pub use parse::{
    Action, AddrExpr, IpNet, ParsedRule, PortExpr, RawRule, RuleOption, Vars, parse_rule, parse_rules, split_rules,
};

/// Why a rule was not loaded, and where.
///
/// `line` and `column` are 1-based and point at the physical line of the rule file (for a rule
/// continued over several lines, the line holding the offending keyword). `line` 0 means the
/// whole file (it could not be read). `rule_line` is the first physical line of the rule, the
/// same for every error of one rule (a rule can have several: every unsupported keyword).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The rule keyword the error is about (`None` for the header and the option syntax).
    pub keyword: Option<String>,
    pub reason: String,
    pub rule_line: usize,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(k) = &self.keyword {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for RuleError {}

/// The reason every rule using a keyword outside this cut is rejected with.
pub const NOT_SUPPORTED: &str = "keyword not supported yet";

/// Counts over a set of [`RuleError`]s, for `soc rules check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// Errors in total (a rule can have several: every unsupported keyword it uses).
    pub errors: usize,
    /// Distinct rejected rules (distinct file and line of the rule's first physical line).
    pub rejected_rules: usize,
    /// Rules per keyword (a rule counts once per keyword), most frequent first; the header and
    /// syntax errors are under `"(syntax)"`.
    pub by_keyword: Vec<(String, usize)>,
    /// Errors per reason, most frequent first.
    pub by_reason: Vec<(String, usize)>,
    /// Rules whose only blocking keyword is this one: what implementing it would unlock.
    pub sole_blocker: Vec<(String, usize)>,
}

impl fmt::Display for RuleStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} rules rejected ({} errors)", self.rejected_rules, self.errors)?;
        writeln!(f, "rules per keyword:")?;
        for (k, n) in &self.by_keyword {
            writeln!(f, "  {n:>7}  {k}")?;
        }
        writeln!(f, "rules unlocked by implementing one keyword:")?;
        for (k, n) in &self.sole_blocker {
            writeln!(f, "  {n:>7}  {k}")?;
        }
        writeln!(f, "errors per reason:")?;
        for (r, n) in &self.by_reason {
            writeln!(f, "  {n:>7}  {r}")?;
        }
        Ok(())
    }
}

/// Counts rejected rules per keyword and per reason. Errors are grouped into rules by
/// `(file, rule_line)`.
pub fn rule_stats(errors: &[RuleError]) -> RuleStats {
    let mut by_keyword: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut sole: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_rule: BTreeMap<(&str, usize), BTreeSet<String>> = BTreeMap::new();
    for e in errors {
        *by_reason.entry(e.reason.clone()).or_default() += 1;
        per_rule
            .entry((e.file.as_str(), e.rule_line))
            .or_default()
            .insert(e.keyword.clone().unwrap_or_else(|| "(syntax)".to_string()));
    }
    for kws in per_rule.values() {
        if kws.len() == 1
            && let Some(k) = kws.iter().next()
        {
            *sole.entry(k.clone()).or_default() += 1;
        }
        for k in kws {
            *by_keyword.entry(k.clone()).or_default() += 1;
        }
    }
    RuleStats {
        errors: errors.len(),
        rejected_rules: per_rule.len(),
        by_keyword: sorted_desc(by_keyword),
        by_reason: sorted_desc(by_reason),
        sole_blocker: sorted_desc(sole),
    }
}

fn sorted_desc(m: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}
