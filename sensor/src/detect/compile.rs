//! [`ParsedRule`] to [`CompiledRule`]: keyword semantics.
//!
//! Options are applied in rule order, as Suricata does: `content` and `pcre` go to the current
//! buffer (the payload, or the last sticky buffer); content modifiers apply to the last
//! `content`; a legacy modifier (`http_uri`, ...) moves the last `content` to its buffer. At the
//! end each buffer's list gets its relative links (which item the next one is relative to), the
//! rule gets its fast pattern, its implied application protocol and direction.
//!
//! Every keyword outside this cut is an error ([`NOT_SUPPORTED`]); a rule is rejected with all
//! of its unsupported keywords, or with its first other error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use memchr::memmem;

use super::keywords::{
    self, Base64Decode, ByteExtract, ByteJump, ByteTest, FlowbitOp, FlowintOp, IsDataAt, TcpFlags, Threshold,
    Transform, XbitOp,
};
use super::parse::{Action, AddrExpr, ParsedRule, PortExpr, RuleOption, maybe_unquote_borrowed as maybe_unquote};
use super::pcre::{self, PcreFlags};
use super::{NOT_SUPPORTED, RuleError};

/// Direction of a packet or transaction side within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

macro_rules! app_protos {
    ($($v:ident => $name:literal, $group:literal;)*) => {
        /// Application-layer protocols, as Suricata names them in rule headers.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AppProto { $($v),* }

        impl AppProto {
            pub const ALL: &'static [AppProto] = &[$(AppProto::$v),*];

            pub fn name(self) -> &'static str {
                match self { $(AppProto::$v => $name),* }
            }

            pub fn from_name(s: &str) -> Option<AppProto> {
                match s { $($name => Some(AppProto::$v),)* _ => None }
            }

            /// Transports it runs over: "tcp", "udp" or "both".
            pub fn transport(self) -> &'static str {
                match self { $(AppProto::$v => $group),* }
            }
        }
    };
}

app_protos! {
    Http => "http", "tcp";
    Http2 => "http2", "tcp";
    Tls => "tls", "tcp";
    Quic => "quic", "udp";
    Ftp => "ftp", "tcp";
    FtpData => "ftp-data", "tcp";
    Smb => "smb", "tcp";
    Dns => "dns", "both";
    Doh2 => "doh2", "tcp";
    Mdns => "mdns", "udp";
    Dcerpc => "dcerpc", "both";
    Ldap => "ldap", "both";
    Dhcp => "dhcp", "udp";
    Ssh => "ssh", "tcp";
    Smtp => "smtp", "tcp";
    Imap => "imap", "tcp";
    Pop3 => "pop3", "tcp";
    Modbus => "modbus", "tcp";
    Dnp3 => "dnp3", "tcp";
    Enip => "enip", "both";
    Nfs => "nfs", "both";
    Ike => "ike", "udp";
    Krb5 => "krb5", "both";
    BittorrentDht => "bittorrent-dht", "udp";
    Mqtt => "mqtt", "tcp";
    Ntp => "ntp", "udp";
    Rfb => "rfb", "tcp";
    Rdp => "rdp", "tcp";
    Snmp => "snmp", "udp";
    Tftp => "tftp", "udp";
    Sip => "sip", "both";
    Telnet => "telnet", "tcp";
    Websocket => "websocket", "tcp";
    Pgsql => "pgsql", "tcp";
}

/// The protocol field of a rule header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleProto {
    Ip,
    Ipv4,
    Ipv6,
    Tcp,
    TcpPkt,
    TcpStream,
    Udp,
    Icmp,
    Icmpv4,
    Icmpv6,
    Sctp,
    /// `http1`: HTTP/1 only (`http` is `App(Http)`, which also matches HTTP/2).
    Http1,
    App(AppProto),
}

impl RuleProto {
    pub fn from_name(s: &str) -> Option<RuleProto> {
        Some(match s {
            "ip" | "pkthdr" => RuleProto::Ip,
            "ipv4" | "ip4" => RuleProto::Ipv4,
            "ipv6" | "ip6" => RuleProto::Ipv6,
            "tcp" => RuleProto::Tcp,
            "tcp-pkt" => RuleProto::TcpPkt,
            "tcp-stream" => RuleProto::TcpStream,
            "udp" => RuleProto::Udp,
            "icmp" => RuleProto::Icmp,
            "icmpv4" => RuleProto::Icmpv4,
            "icmpv6" => RuleProto::Icmpv6,
            "sctp" => RuleProto::Sctp,
            "http1" => RuleProto::Http1,
            // IKEv2's name before Suricata 7 merged it into `ike`
            "ikev2" => RuleProto::App(AppProto::Ike),
            other => RuleProto::App(AppProto::from_name(other)?),
        })
    }

    fn can_carry(self, app: AppProto) -> bool {
        match self {
            RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6 => true,
            RuleProto::Tcp | RuleProto::TcpPkt | RuleProto::TcpStream => app.transport() != "udp",
            RuleProto::Udp => app.transport() != "tcp",
            RuleProto::Http1 => app == AppProto::Http,
            RuleProto::App(a) => a == app || (a == AppProto::Http && app == AppProto::Http2) || app_carries(a, app),
            RuleProto::Icmp | RuleProto::Icmpv4 | RuleProto::Icmpv6 | RuleProto::Sctp => false,
        }
    }
}

/// Whether a rule of application protocol `rule` can use what the parser of `app` fills, as
/// Suricata allows: `http2` rules use the http.* buffers, `doh2` (DNS over HTTP/2) rules the
/// http.*, http2.* and dns.* ones.
pub fn app_carries(rule: AppProto, app: AppProto) -> bool {
    matches!(
        (rule, app),
        (AppProto::Http2, AppProto::Http) | (AppProto::Doh2, AppProto::Http | AppProto::Http2 | AppProto::Dns)
    )
}

/// The buffer of a `frame:<proto>.<type>` keyword: HTTP/2 frames (`http2.hdr`: the 9-byte
/// header, `http2.data`: the payload, `http2.pdu`: both), one buffer per frame.
fn frame_buffer(name: &str) -> Option<Buffer> {
    match name {
        "http2.hdr" => Some(Buffer::Http2FrameHdr),
        "http2.data" => Some(Buffer::Http2FrameData),
        "http2.pdu" => Some(Buffer::Http2FramePdu),
        "sip.pdu" => Some(Buffer::SipFramePdu),
        "sip.request.line" => Some(Buffer::SipFrameRequestLine),
        "sip.request.headers" => Some(Buffer::SipFrameRequestHeaders),
        "sip.request.body" => Some(Buffer::SipFrameRequestBody),
        "sip.response.line" => Some(Buffer::SipFrameResponseLine),
        "sip.response.headers" => Some(Buffer::SipFrameResponseHeaders),
        "sip.response.body" => Some(Buffer::SipFrameResponseBody),
        "mqtt.pdu" => Some(Buffer::MqttFramePdu),
        "mqtt.header" => Some(Buffer::MqttFrameHeader),
        "mqtt.data" => Some(Buffer::MqttFrameData),
        "websocket.pdu" => Some(Buffer::WebsocketFramePdu),
        "ssh.record.pdu" => Some(Buffer::SshFramePdu),
        "telnet.data" => Some(Buffer::TelnetFrameData),
        "telnet.ctl" => Some(Buffer::TelnetFrameCtl),
        "http1.request" => Some(Buffer::Http1FrameRequest),
        "http1.response" => Some(Buffer::Http1FrameResponse),
        "http1.stream" => Some(Buffer::Http1FrameStream),
        "ssh.record.hdr" => Some(Buffer::SshFrameHdr),
        "ssh.record.data" => Some(Buffer::SshFrameData),
        "websocket.header" => Some(Buffer::WebsocketFrameHeader),
        "websocket.data" => Some(Buffer::WebsocketFrameData),
        _ => None,
    }
}

macro_rules! buffers {
    ($($v:ident => $name:literal, $app:expr, $dir:expr, [$($alias:literal),*], [$($legacy:literal),*];)*) => {
        /// The buffers a content or pcre can inspect.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Buffer { $($v),* }

        impl Buffer {
            pub const ALL: &'static [Buffer] = &[$(Buffer::$v),*];

            /// The sticky-buffer keyword.
            pub fn name(self) -> &'static str {
                match self { $(Buffer::$v => $name),* }
            }

            fn sticky(kw: &str) -> Option<Buffer> {
                match kw { $($name $(| $alias)* => Some(Buffer::$v),)* _ => None }
            }

            fn legacy_modifier(kw: &str) -> Option<Buffer> {
                match kw { $($($legacy => Some(Buffer::$v),)*)* _ => None }
            }

            /// The application protocol whose parser fills it (`None` for the payload and
            /// `file.data`, which several protocols fill).
            pub fn app_proto(self) -> Option<AppProto> {
                match self { $(Buffer::$v => $app),* }
            }

            /// The only direction it exists in (`None`: both).
            pub fn direction(self) -> Option<Direction> {
                match self { $(Buffer::$v => $dir),* }
            }
        }
    };
}

const HTTP: Option<AppProto> = Some(AppProto::Http);
const TLS: Option<AppProto> = Some(AppProto::Tls);
const REQ: Option<Direction> = Some(Direction::ToServer);
const RESP: Option<Direction> = Some(Direction::ToClient);

buffers! {
    Payload => "pkt_data", None, None, [], [];
    HttpUri => "http.uri", HTTP, REQ, [], ["http_uri"];
    HttpUriRaw => "http.uri.raw", HTTP, REQ, [], ["http_raw_uri"];
    HttpMethod => "http.method", HTTP, REQ, [], ["http_method"];
    HttpHost => "http.host", HTTP, REQ, [], ["http_host"];
    HttpHostRaw => "http.host.raw", HTTP, REQ, [], ["http_raw_host"];
    HttpUserAgent => "http.user_agent", HTTP, REQ, [], ["http_user_agent"];
    HttpHeader => "http.header", HTTP, None, [], ["http_header"];
    HttpHeaderRaw => "http.header.raw", HTTP, None, [], ["http_raw_header"];
    HttpHeaderNames => "http.header_names", HTTP, None, [], [];
    HttpStatCode => "http.stat_code", HTTP, RESP, [], ["http_stat_code"];
    HttpStatMsg => "http.stat_msg", HTTP, RESP, [], ["http_stat_msg"];
    HttpCookie => "http.cookie", HTTP, None, [], ["http_cookie"];
    HttpRequestBody => "http.request_body", HTTP, REQ, ["http_client_body"], ["http_client_body"];
    HttpResponseBody => "http.response_body", HTTP, RESP, [], ["http_server_body"];
    HttpContentType => "http.content_type", HTTP, None, [], [];
    HttpContentLen => "http.content_len", HTTP, None, [], [];
    HttpRequestLine => "http.request_line", HTTP, REQ, ["http_request_line"], [];
    HttpResponseLine => "http.response_line", HTTP, RESP, ["http_response_line"], [];
    HttpStart => "http.start", HTTP, None, [], [];
    HttpProtocol => "http.protocol", HTTP, None, ["http_protocol"], [];
    HttpReferer => "http.referer", HTTP, REQ, [], [];
    HttpAccept => "http.accept", HTTP, REQ, [], [];
    HttpAcceptEnc => "http.accept_enc", HTTP, REQ, [], [];
    HttpAcceptLang => "http.accept_lang", HTTP, REQ, [], [];
    HttpConnection => "http.connection", HTTP, None, [], [];
    HttpLocation => "http.location", HTTP, RESP, [], [];
    HttpServer => "http.server", HTTP, RESP, [], [];
    HttpRequestHeader => "http.request_header", HTTP, REQ, [], [];
    HttpResponseHeader => "http.response_header", HTTP, RESP, [], [];
    FileData => "file.data", None, None, ["file_data"], [];
    Base64Data => "base64_data", None, None, [], [];
    IpSrc => "ip.src", None, None, [], [];
    IpDst => "ip.dst", None, None, [], [];
    Ipv4Hdr => "ipv4.hdr", None, None, [], [];
    Ipv6Hdr => "ipv6.hdr", None, None, [], [];
    TcpHdr => "tcp.hdr", None, None, [], [];
    UdpHdr => "udp.hdr", None, None, [], [];
    Icmpv6Hdr => "icmpv6.hdr", None, None, [], [];
    DnsQuery => "dns.query", Some(AppProto::Dns), REQ, ["dns_query"], [];
    DnsQueriesRrname => "dns.queries.rrname", Some(AppProto::Dns), None, [], [];
    DnsAnswersRrname => "dns.answers.rrname", Some(AppProto::Dns), None, [], [];
    DnsAuthoritiesRrname => "dns.authorities.rrname", Some(AppProto::Dns), None, [], [];
    DnsAdditionalsRrname => "dns.additionals.rrname", Some(AppProto::Dns), None, [], [];
    DnsResponseRrname => "dns.response.rrname", Some(AppProto::Dns), RESP, [], [];
    Http2HeaderName => "http2.header_name", Some(AppProto::Http2), None, [], [];
    Http2FrameHdr => "frame:http2.hdr", Some(AppProto::Http2), None, [], [];
    Http2FrameData => "frame:http2.data", Some(AppProto::Http2), None, [], [];
    Http2FramePdu => "frame:http2.pdu", Some(AppProto::Http2), None, [], [];
    TlsSni => "tls.sni", TLS, REQ, ["tls_sni"], [];
    TlsCertSubject => "tls.cert_subject", TLS, RESP, ["tls_cert_subject"], [];
    TlsCertIssuer => "tls.cert_issuer", TLS, RESP, ["tls_cert_issuer"], [];
    TlsCertSerial => "tls.cert_serial", TLS, RESP, ["tls_cert_serial"], [];
    TlsCertFingerprint => "tls.cert_fingerprint", TLS, RESP, ["tls_cert_fingerprint"], [];
    TlsCerts => "tls.certs", TLS, RESP, [], [];
    TlsSubjectAltName => "tls.subjectaltname", TLS, RESP, [], [];
    TlsRandom => "tls.random", TLS, None, [], [];
    TlsRandomTime => "tls.random_time", TLS, None, [], [];
    TlsRandomBytes => "tls.random_bytes", TLS, None, [], [];
    Ja3Hash => "ja3.hash", TLS, REQ, ["ja3_hash"], [];
    Ja3String => "ja3.string", TLS, REQ, ["ja3_string"], [];
    Ja3sHash => "ja3s.hash", TLS, RESP, ["ja3s_hash"], [];
    Ja3sString => "ja3s.string", TLS, RESP, ["ja3s_string"], [];
    Ja4Hash => "ja4.hash", TLS, REQ, ["ja4_hash"], [];
    SshProto => "ssh.proto", Some(AppProto::Ssh), None, ["ssh_proto"], [];
    SshSoftware => "ssh.software", Some(AppProto::Ssh), None, ["ssh_software"], [];
    SshHassh => "ssh.hassh", Some(AppProto::Ssh), REQ, [], [];
    SshHasshString => "ssh.hassh.string", Some(AppProto::Ssh), REQ, [], [];
    SshHasshServer => "ssh.hassh.server", Some(AppProto::Ssh), RESP, [], [];
    SshHasshServerString => "ssh.hassh.server.string", Some(AppProto::Ssh), RESP, [], [];
    NtpReferenceId => "ntp.reference_id", Some(AppProto::Ntp), None, [], [];
    DcerpcStubData => "dcerpc.stub_data", None, None, ["dce_stub_data"], [];
    SmbNamedPipe => "smb.named_pipe", Some(AppProto::Smb), None, ["smb_named_pipe"], [];
    SmbShare => "smb.share", Some(AppProto::Smb), None, ["smb_share"], [];
    SmbNtlmsspUser => "smb.ntlmssp_user", Some(AppProto::Smb), REQ, [], [];
    SmbNtlmsspDomain => "smb.ntlmssp_domain", Some(AppProto::Smb), REQ, [], [];
    Krb5Cname => "krb5.cname", Some(AppProto::Krb5), RESP, ["krb5_cname"], [];
    Krb5Sname => "krb5.sname", Some(AppProto::Krb5), RESP, ["krb5_sname"], [];
    SnmpCommunity => "snmp.community", Some(AppProto::Snmp), None, [], [];
    SnmpUsm => "snmp.usm", Some(AppProto::Snmp), None, [], [];
    SipMethod => "sip.method", Some(AppProto::Sip), REQ, ["sip_method"], [];
    SipUri => "sip.uri", Some(AppProto::Sip), REQ, ["sip_uri"], [];
    SipRequestLine => "sip.request_line", Some(AppProto::Sip), REQ, [], [];
    SipResponseLine => "sip.response_line", Some(AppProto::Sip), RESP, [], [];
    SipStatCode => "sip.stat_code", Some(AppProto::Sip), RESP, [], [];
    SipStatMsg => "sip.stat_msg", Some(AppProto::Sip), RESP, [], [];
    SipProtocol => "sip.protocol", Some(AppProto::Sip), None, [], [];
    SipFrom => "sip.from", Some(AppProto::Sip), None, [], [];
    SipTo => "sip.to", Some(AppProto::Sip), None, [], [];
    SipVia => "sip.via", Some(AppProto::Sip), None, [], [];
    SipUserAgent => "sip.user_agent", Some(AppProto::Sip), None, [], [];
    SipContentType => "sip.content_type", Some(AppProto::Sip), None, [], [];
    SipContentLength => "sip.content_length", Some(AppProto::Sip), None, [], [];
    SipServer => "sip.server", Some(AppProto::Sip), None, [], [];
    MqttConnectProtocolString => "mqtt.connect.protocol_string", Some(AppProto::Mqtt), REQ, [], [];
    MqttConnectClientId => "mqtt.connect.clientid", Some(AppProto::Mqtt), REQ, [], [];
    MqttConnectUsername => "mqtt.connect.username", Some(AppProto::Mqtt), REQ, [], [];
    MqttConnectPassword => "mqtt.connect.password", Some(AppProto::Mqtt), REQ, [], [];
    MqttConnectWillTopic => "mqtt.connect.willtopic", Some(AppProto::Mqtt), REQ, [], [];
    MqttConnectWillMessage => "mqtt.connect.willmessage", Some(AppProto::Mqtt), REQ, [], [];
    MqttPublishTopic => "mqtt.publish.topic", Some(AppProto::Mqtt), None, [], [];
    MqttPublishMessage => "mqtt.publish.message", Some(AppProto::Mqtt), None, [], [];
    MqttSubscribeTopic => "mqtt.subscribe.topic", Some(AppProto::Mqtt), REQ, [], [];
    MqttUnsubscribeTopic => "mqtt.unsubscribe.topic", Some(AppProto::Mqtt), REQ, [], [];
    Dnp3Data => "dnp3_data", Some(AppProto::Dnp3), None, [], [];
    QuicVersion => "quic.version", Some(AppProto::Quic), None, [], [];
    SipFramePdu => "frame:sip.pdu", Some(AppProto::Sip), None, [], [];
    SipFrameRequestLine => "frame:sip.request.line", Some(AppProto::Sip), REQ, [], [];
    SipFrameRequestHeaders => "frame:sip.request.headers", Some(AppProto::Sip), REQ, [], [];
    SipFrameRequestBody => "frame:sip.request.body", Some(AppProto::Sip), REQ, [], [];
    SipFrameResponseLine => "frame:sip.response.line", Some(AppProto::Sip), RESP, [], [];
    SipFrameResponseHeaders => "frame:sip.response.headers", Some(AppProto::Sip), RESP, [], [];
    SipFrameResponseBody => "frame:sip.response.body", Some(AppProto::Sip), RESP, [], [];
    MqttFramePdu => "frame:mqtt.pdu", Some(AppProto::Mqtt), None, [], [];
    MqttFrameHeader => "frame:mqtt.header", Some(AppProto::Mqtt), None, [], [];
    MqttFrameData => "frame:mqtt.data", Some(AppProto::Mqtt), None, [], [];
    QuicSni => "quic.sni", Some(AppProto::Quic), REQ, [], [];
    QuicCyuHash => "quic.cyu.hash", Some(AppProto::Quic), REQ, [], [];
    QuicCyuString => "quic.cyu.string", Some(AppProto::Quic), REQ, [], [];
    FtpCommand => "ftp.command", Some(AppProto::Ftp), REQ, [], [];
    FileName => "file.name", None, None, [], [];
    EmailDate => "email.date", Some(AppProto::Smtp), REQ, [], [];
    EmailFrom => "email.from", Some(AppProto::Smtp), REQ, [], [];
    EmailTo => "email.to", Some(AppProto::Smtp), REQ, [], [];
    EmailCc => "email.cc", Some(AppProto::Smtp), REQ, [], [];
    EmailSubject => "email.subject", Some(AppProto::Smtp), REQ, [], [];
    EmailMessageId => "email.message_id", Some(AppProto::Smtp), REQ, [], [];
    EmailXMailer => "email.x_mailer", Some(AppProto::Smtp), REQ, [], [];
    FileMd5 => "filemd5:digest", None, None, [], [];
    FileSha1 => "filesha1:digest", None, None, [], [];
    FileSha256 => "filesha256:digest", None, None, [], [];
    WebsocketPayload => "websocket.payload", Some(AppProto::Websocket), None, [], [];
    WebsocketFramePdu => "frame:websocket.pdu", Some(AppProto::Websocket), None, [], [];
    WebsocketFrameHeader => "frame:websocket.header", Some(AppProto::Websocket), None, [], [];
    WebsocketFrameData => "frame:websocket.data", Some(AppProto::Websocket), None, [], [];
    SshFramePdu => "frame:ssh.record.pdu", Some(AppProto::Ssh), None, [], [];
    TelnetFrameData => "frame:telnet.data", Some(AppProto::Telnet), None, [], [];
    TelnetFrameCtl => "frame:telnet.ctl", Some(AppProto::Telnet), None, [], [];
    Http1FrameRequest => "frame:http1.request", HTTP, REQ, [], [];
    Http1FrameResponse => "frame:http1.response", HTTP, RESP, [], [];
    Http1FrameStream => "frame:http1.stream", HTTP, None, [], [];
    SshFrameHdr => "frame:ssh.record.hdr", Some(AppProto::Ssh), None, [], [];
    SshFrameData => "frame:ssh.record.data", Some(AppProto::Ssh), None, [], [];
}

impl Buffer {
    pub fn index(self) -> usize {
        self as usize
    }

    /// Built during verification, never an inspection's buffer: `base64_data`, and the
    /// packet's addresses `ip.src`/`ip.dst` (4 or 16 bytes). Never a prefilter buffer.
    pub fn is_virtual(self) -> bool {
        matches!(self, Buffer::Base64Data | Buffer::IpSrc | Buffer::IpDst)
    }

    /// Fast-pattern priority (Suricata: application buffers first, `http.method` below the
    /// payload).
    fn fp_priority(self) -> u8 {
        match self {
            Buffer::HttpMethod => 0,
            Buffer::Payload => 1,
            _ => 2,
        }
    }
}

/// Index of [`ContentMatch::vars`] for `offset`.
pub const VAR_OFFSET: usize = 0;
/// Index of [`ContentMatch::vars`] for `depth`.
pub const VAR_DEPTH: usize = 1;
/// Index of [`ContentMatch::vars`] for `distance`.
pub const VAR_DISTANCE: usize = 2;
/// Index of [`ContentMatch::vars`] for `within`.
pub const VAR_WITHIN: usize = 3;

/// Most `byte_extract` variables a rule can have.
pub const MAX_BYTE_VARS: usize = 16;

/// One `content` with its modifiers.
#[derive(Clone, Debug)]
pub struct ContentMatch {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: u32,
    /// Absolute end of the search window (`offset + depth`), as Suricata stores it.
    pub depth: Option<u32>,
    pub distance: Option<i32>,
    pub within: Option<i32>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: bool,
    /// `fast_pattern:offset,length`.
    pub fp_chop: Option<(usize, usize)>,
    /// `byte_extract` variables (indexes) giving the offset, depth, distance and within at
    /// match time (see [`VAR_OFFSET`]...); the plain fields then hold placeholders.
    pub vars: [Option<u8>; 4],
    /// The next item of the list is relative to this one.
    pub relative_next: bool,
    /// The next item is bounded by `within` (or is a `/R` pcre): when it fails, later
    /// occurrences of this content are tried.
    pub within_next: bool,
    depth_raw: Option<u32>,
    offset_set: bool,
    /// The case-sensitive searcher, built on the first search (most contents of a large rule
    /// set are never searched: their rules' fast patterns never hit); never for `nocase`.
    finder: std::sync::OnceLock<Box<memmem::Finder<'static>>>,
}

impl ContentMatch {
    fn new(pattern: Vec<u8>, negated: bool) -> ContentMatch {
        ContentMatch {
            finder: std::sync::OnceLock::new(),
            pattern,
            negated,
            nocase: false,
            offset: 0,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: false,
            fp_chop: None,
            vars: [None; 4],
            relative_next: false,
            within_next: false,
            depth_raw: None,
            offset_set: false,
        }
    }

    /// Makes the content case-insensitive (`nocase`).
    fn set_nocase(&mut self) {
        self.nocase = true;
    }

    /// `offset` was given (Suricata's `DETECT_CONTENT_OFFSET`).
    pub fn offset_is_set(&self) -> bool {
        self.offset_set
    }

    /// `depth` as written (the window's length from `offset`).
    pub fn depth_len(&self) -> Option<u32> {
        self.depth_raw
    }

    /// Relative to the previous match (`distance` or `within`).
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// Suricata's `DETECT_CONTENT_IS_SINGLE`: no position modifier, nothing relative to it.
    pub fn is_single(&self) -> bool {
        !(self.is_relative() || self.relative_next || self.depth.is_some() || self.offset_set)
    }

    /// First occurrence in `hay`.
    pub fn find(&self, hay: &[u8]) -> Option<usize> {
        if !self.nocase {
            return self.finder.get_or_init(|| Box::new(memmem::Finder::new(&self.pattern).into_owned())).find(hay);
        }
        let n = self.pattern.len();
        if n == 0 || hay.len() < n {
            return if n == 0 { Some(0) } else { None };
        }
        let first = self.pattern[0].to_ascii_lowercase();
        let upper = first.to_ascii_uppercase();
        let last_start = hay.len() - n;
        let mut from = 0;
        while from <= last_start {
            let pos = from + memchr::memchr2(first, upper, &hay[from..=last_start])?;
            if hay[pos..pos + n].eq_ignore_ascii_case(&self.pattern) {
                return Some(pos);
            }
            from = pos + 1;
        }
        None
    }

    /// Whether `hay` is exactly the pattern (case as configured).
    pub fn equals(&self, hay: &[u8]) -> bool {
        if self.nocase { hay.eq_ignore_ascii_case(&self.pattern) } else { hay == self.pattern.as_slice() }
    }
}

/// One `pcre`.
#[derive(Clone, Debug)]
pub struct PcreMatch {
    pub regex: pcre::PcreRegex,
    pub negated: bool,
    /// `/R`: searched from the end of the previous match.
    pub relative: bool,
    pub relative_next: bool,
    /// The pattern as written in the rule.
    pub source: String,
}

/// A buffer-inspecting item.
#[derive(Clone, Debug)]
pub enum Item {
    Content(ContentMatch),
    Pcre(PcreMatch),
    IsDataAt(IsDataAt),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    /// `byte_extract`: stores a number in a rule variable.
    ByteExtract(ByteExtract),
    /// `byte_math`: stores a computed number in a rule variable.
    ByteMath(keywords::ByteMath),
    /// `base64_decode`: always matches when it decodes something; the result is the
    /// `base64_data` buffer.
    Base64Decode(Base64Decode),
    /// `dataset`/`datarep`: the whole buffer looked up in a set.
    Dataset(super::dataset::DatasetMatch),
}

impl Item {
    /// Positioned after the previous item's match.
    pub fn is_relative(&self) -> bool {
        match self {
            Item::Content(c) => c.is_relative(),
            Item::Pcre(p) => p.relative,
            Item::IsDataAt(d) => d.relative,
            Item::ByteTest(t) => t.read.relative,
            Item::ByteJump(j) => j.read.relative,
            Item::Base64Decode(d) => d.relative,
            Item::ByteExtract(e) => e.read.relative,
            Item::ByteMath(m) => m.read.relative,
            Item::Dataset(_) => false,
        }
    }
}

/// The items of one buffer (after its transforms), with the buffer's size condition.
#[derive(Clone, Debug)]
pub struct BufferList {
    pub buffer: Buffer,
    pub transforms: Vec<Transform>,
    /// `bsize`.
    pub bsize: Option<IntCond>,
    pub items: Vec<Item>,
    /// `absent`: the buffer must be missing (`Some(false)`), or with `absent: or_else`
    /// (`Some(true)`) be missing or match the items.
    pub absent: Option<bool>,
}

/// `flow` conditions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCond {
    pub established: Option<bool>,
    pub direction: Option<Direction>,
    /// `no_stream`: the rule inspects packets, never the reassembled stream.
    pub no_stream: bool,
}

/// An integer comparison (`dsize`, Suricata's integer keyword syntax).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntCond {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// Exclusive range.
    Range(u64, u64),
    /// Outside the exclusive range.
    NotRange(u64, u64),
    Mask {
        mask: u64,
        value: u64,
        negated: bool,
    },
}

impl IntCond {
    pub fn matches(self, v: u64) -> bool {
        match self {
            IntCond::Eq(x) => v == x,
            IntCond::Ne(x) => v != x,
            IntCond::Lt(x) => v < x,
            IntCond::Le(x) => v <= x,
            IntCond::Gt(x) => v > x,
            IntCond::Ge(x) => v >= x,
            IntCond::Range(a, b) => v > a && v < b,
            IntCond::NotRange(a, b) => v <= a || v >= b,
            IntCond::Mask { mask, value, negated } => ((v & mask) == value) != negated,
        }
    }

    /// Parses `n`, `=n`, `!n`, `!=n`, `<n`, `<=n`, `>n`, `>=n`, `a-b`, `a<>b`, `!a-b`,
    /// `&mask=v`, `&mask!=v`; numbers in decimal or `0x` hex, with kb/mb/gb suffixes.
    pub fn parse(s: &str, max: u64) -> Result<IntCond, String> {
        let s = s.trim();
        let num = |t: &str| -> Result<u64, String> {
            let t = t.trim();
            let lower = t.to_ascii_lowercase();
            let (digits, mult) = [
                ("kib", 1u64 << 10),
                ("kb", 1 << 10),
                ("mib", 1 << 20),
                ("mb", 1 << 20),
                ("gib", 1 << 30),
                ("gb", 1 << 30),
            ]
            .iter()
            .find_map(|(suf, m)| lower.strip_suffix(suf).map(|d| (d.trim().to_string(), *m)))
            .unwrap_or((lower.clone(), 1));
            let v = match digits.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => digits.parse::<u64>(),
            }
            .map_err(|_| format!("invalid number '{t}'"))?;
            let v = v.checked_mul(mult).ok_or_else(|| format!("number '{t}' too large"))?;
            if v > max {
                return Err(format!("value {v} above the maximum {max}"));
            }
            Ok(v)
        };
        if let Some(rest) = s.strip_prefix('&') {
            let (m, v, neg) = if let Some((m, v)) = rest.split_once("!=") {
                (m, v, true)
            } else if let Some((m, v)) = rest.split_once('=') {
                (m, v, false)
            } else {
                return Err(format!("invalid bitmask comparison '{s}'"));
            };
            return Ok(IntCond::Mask { mask: num(m)?, value: num(v)?, negated: neg });
        }
        if let Some(r) = s.strip_prefix("<=") {
            return Ok(IntCond::Le(num(r)?));
        }
        if let Some(r) = s.strip_prefix(">=") {
            return Ok(IntCond::Ge(num(r)?));
        }
        if let Some(r) = s.strip_prefix("!=") {
            return Ok(IntCond::Ne(num(r)?));
        }
        if let Some((a, b)) = s.split_once("<>") {
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!("invalid range '{s}'"));
            }
            return Ok(IntCond::Range(a, b));
        }
        if let Some(r) = s.strip_prefix('<') {
            return Ok(IntCond::Lt(num(r)?));
        }
        if let Some(r) = s.strip_prefix('>') {
            return Ok(IntCond::Gt(num(r)?));
        }
        if let Some(r) = s.strip_prefix('=') {
            return Ok(IntCond::Eq(num(r)?));
        }
        let (neg, body) = match s.strip_prefix('!') {
            Some(r) => (true, r.trim()),
            None => (false, s),
        };
        if let Some((a, b)) = body.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!("invalid range '{s}'"));
            }
            return Ok(if neg { IntCond::NotRange(a, b) } else { IntCond::Range(a, b) });
        }
        let v = num(body)?;
        Ok(if neg { IntCond::Ne(v) } else { IntCond::Eq(v) })
    }
}

/// An integer field of an app-layer message that integer keywords compare
/// ([`CompiledRule::app_ints`], [`super::Inspection::app_ints`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppInt {
    /// `ntp.version`: the version number (bits 3-5 of the first byte).
    NtpVersion,
    /// `ntp.stratum`.
    NtpStratum,
    /// `ntp.mode`: the association mode (low 3 bits of the first byte).
    NtpMode,
    /// `dns.rcode`: the response code of a DNS message's header (its low 4 flag bits), requests
    /// included.
    DnsRcode,
    /// `smb.version`: the SMB dialect family of the transaction (1 or 2).
    SmbVersion,
    /// `http2.frametype`: the type of a frame of the HTTP/2 transaction, in the inspected
    /// direction (one value per frame).
    Http2FrameType,
    /// `http2.errorcode`: the error code of a RST_STREAM or GOAWAY frame (names or numbers).
    Http2ErrorCode,
    /// `http2.priority`: the weight of a PRIORITY frame, or of a HEADERS frame with priority.
    Http2Priority,
    /// `http2.window`: the increment of a WINDOW_UPDATE frame.
    Http2Window,
    /// `http2.size_update`: a dynamic table size update of a header block (HPACK).
    Http2SizeUpdate,
    /// `http2.settings`: a setting of a SETTINGS frame, as `id << 32 | value`
    /// ([`http2_settings_cond`]).
    Http2Settings,
    /// `krb5_msg_type`: the Kerberos message type (10 AS-REQ ... 30 KRB-ERROR).
    Krb5MsgType,
    /// `krb5_err_code`: a KRB-ERROR's error code.
    Krb5ErrCode,
    /// `krb5.ticket_encryption` with an encryption type: a reply's ticket encryption type.
    Krb5TicketEtype,
    /// `krb5.ticket_encryption:weak`: 1 when a reply's ticket encryption is weak (DES, RC4).
    Krb5TicketWeak,
    /// `snmp.version`: 1, 2 (v2c) or 3.
    SnmpVersion,
    /// `snmp.pdu_type`: the PDU's context tag number.
    SnmpPduType,
    /// `snmp.trap_type`: a v1 trap's generic trap number.
    SnmpTrapType,
    /// `mqtt.type`: the control packet type.
    MqttType,
    /// `mqtt.flags`: the fixed header flags (dup, retain).
    MqttFlags,
    /// `mqtt.qos`: a PUBLISH's QoS level.
    MqttQos,
    /// `mqtt.reason_code`: a CONNACK's return code, a reason code of MQTT 5.
    MqttReasonCode,
    /// `mqtt.protocol_version`: a CONNECT's protocol level.
    MqttProtocolVersion,
    /// `mqtt.connect.flags`: a CONNECT's flags byte.
    MqttConnectFlags,
    /// `dnp3_func`: an application fragment's function code.
    Dnp3Func,
    /// `dnp3_obj:<group>,<variation>`: an object of an application fragment, as
    /// `group << 8 | variation`.
    Dnp3Obj,
    /// `ldap.request.operation`: the operation of an LDAP request.
    LdapRequestOperation,
    /// `ldap.responses.operation:<op>[,any]`: the operation of one of the responses.
    LdapResponsesOperation,
    /// `ldap.responses.operation:<op>,<n>`: the response at index `n`, as `n << 8 | op`.
    LdapResponsesOperationAt,
    /// `ldap.responses.operation:<op>,-<n>`: the `n`th response from the end, as `n << 8 | op`.
    LdapResponsesOperationFromEnd,
    /// `ldap.responses.operation:<op>,all`: the operation every response has.
    LdapResponsesOperationAll,
    /// `ldap.responses.count`: the number of responses of the transaction.
    LdapResponsesCount,
    /// `enip_command`: an EtherNet/IP encapsulation command.
    EnipCommand,
    /// `cip_service` (service only): the CIP service of a message (the response bit cleared).
    CipService,
    /// `tls.cert_chain_len`: the number of certificates of the server's chain.
    TlsCertChainLen,
    /// `ftpbounce`: 1 when an FTP PORT/EPRT command names an address other than the client's.
    FtpBounce,
    /// `ftpdata_command`: the transfer command of an FTP data connection
    /// ([`crate::app::ftp::DataCmd::code`]).
    FtpdataCommand,
    /// `filesize`: the size of a complete file of the transaction (HTTP body, SMB file).
    FileSize,
    /// `websocket.opcode`: a frame's opcode (names or numbers).
    WebsocketOpcode,
    /// `websocket.mask`: a masked frame's mask key (32 bits).
    WebsocketMask,
    /// `websocket.flags`: a frame's FIN and RSV bits (`fin`, `comp`).
    WebsocketFlags,
}

impl AppInt {
    pub fn from_keyword(kw: &str) -> Option<AppInt> {
        Some(match kw {
            "ntp.version" => AppInt::NtpVersion,
            "ntp.stratum" => AppInt::NtpStratum,
            "ntp.mode" => AppInt::NtpMode,
            "dns.rcode" => AppInt::DnsRcode,
            "smb.version" => AppInt::SmbVersion,
            "http2.frametype" => AppInt::Http2FrameType,
            "http2.errorcode" => AppInt::Http2ErrorCode,
            "http2.priority" => AppInt::Http2Priority,
            "http2.window" => AppInt::Http2Window,
            "http2.size_update" => AppInt::Http2SizeUpdate,
            "http2.settings" => AppInt::Http2Settings,
            "krb5_msg_type" => AppInt::Krb5MsgType,
            "krb5_err_code" => AppInt::Krb5ErrCode,
            "krb5.ticket_encryption" => AppInt::Krb5TicketEtype,
            "snmp.version" => AppInt::SnmpVersion,
            "snmp.pdu_type" => AppInt::SnmpPduType,
            "snmp.trap_type" => AppInt::SnmpTrapType,
            "mqtt.type" => AppInt::MqttType,
            "mqtt.flags" => AppInt::MqttFlags,
            "mqtt.qos" => AppInt::MqttQos,
            "mqtt.reason_code" => AppInt::MqttReasonCode,
            "mqtt.protocol_version" => AppInt::MqttProtocolVersion,
            "mqtt.connect.flags" => AppInt::MqttConnectFlags,
            "mqtt.connack.return_code" => AppInt::MqttReasonCode,
            "dnp3_func" | "dnp3.func" => AppInt::Dnp3Func,
            "dnp3_obj" | "dnp3.obj" => AppInt::Dnp3Obj,
            "ldap.request.operation" => AppInt::LdapRequestOperation,
            "ldap.responses.operation" => AppInt::LdapResponsesOperation,
            "ldap.responses.count" => AppInt::LdapResponsesCount,
            "enip_command" | "enip.command" => AppInt::EnipCommand,
            "cip_service" => AppInt::CipService,
            "tls.cert_chain_len" => AppInt::TlsCertChainLen,
            "ftpbounce" => AppInt::FtpBounce,
            "ftpdata_command" => AppInt::FtpdataCommand,
            "filesize" => AppInt::FileSize,
            "websocket.opcode" => AppInt::WebsocketOpcode,
            "websocket.mask" => AppInt::WebsocketMask,
            "websocket.flags" => AppInt::WebsocketFlags,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            AppInt::NtpVersion => "ntp.version",
            AppInt::NtpStratum => "ntp.stratum",
            AppInt::NtpMode => "ntp.mode",
            AppInt::DnsRcode => "dns.rcode",
            AppInt::SmbVersion => "smb.version",
            AppInt::Http2FrameType => "http2.frametype",
            AppInt::Http2ErrorCode => "http2.errorcode",
            AppInt::Http2Priority => "http2.priority",
            AppInt::Http2Window => "http2.window",
            AppInt::Http2SizeUpdate => "http2.size_update",
            AppInt::Http2Settings => "http2.settings",
            AppInt::Krb5MsgType => "krb5_msg_type",
            AppInt::Krb5ErrCode => "krb5_err_code",
            AppInt::Krb5TicketEtype => "krb5.ticket_encryption",
            AppInt::Krb5TicketWeak => "krb5.ticket_encryption",
            AppInt::SnmpVersion => "snmp.version",
            AppInt::SnmpPduType => "snmp.pdu_type",
            AppInt::SnmpTrapType => "snmp.trap_type",
            AppInt::MqttType => "mqtt.type",
            AppInt::MqttFlags => "mqtt.flags",
            AppInt::MqttQos => "mqtt.qos",
            AppInt::MqttReasonCode => "mqtt.reason_code",
            AppInt::MqttProtocolVersion => "mqtt.protocol_version",
            AppInt::MqttConnectFlags => "mqtt.connect.flags",
            AppInt::Dnp3Func => "dnp3_func",
            AppInt::Dnp3Obj => "dnp3_obj",
            AppInt::LdapRequestOperation => "ldap.request.operation",
            AppInt::LdapResponsesOperation
            | AppInt::LdapResponsesOperationAt
            | AppInt::LdapResponsesOperationFromEnd
            | AppInt::LdapResponsesOperationAll => "ldap.responses.operation",
            AppInt::LdapResponsesCount => "ldap.responses.count",
            AppInt::EnipCommand => "enip_command",
            AppInt::CipService => "cip_service",
            AppInt::TlsCertChainLen => "tls.cert_chain_len",
            AppInt::FtpBounce => "ftpbounce",
            AppInt::FtpdataCommand => "ftpdata_command",
            AppInt::FileSize => "filesize",
            AppInt::WebsocketOpcode => "websocket.opcode",
            AppInt::WebsocketMask => "websocket.mask",
            AppInt::WebsocketFlags => "websocket.flags",
        }
    }

    pub fn app_proto(self) -> AppProto {
        match self {
            AppInt::NtpVersion | AppInt::NtpStratum | AppInt::NtpMode => AppProto::Ntp,
            AppInt::DnsRcode => AppProto::Dns,
            AppInt::SmbVersion => AppProto::Smb,
            AppInt::Http2FrameType
            | AppInt::Http2ErrorCode
            | AppInt::Http2Priority
            | AppInt::Http2Window
            | AppInt::Http2SizeUpdate
            | AppInt::Http2Settings => AppProto::Http2,
            AppInt::Krb5MsgType | AppInt::Krb5ErrCode | AppInt::Krb5TicketEtype | AppInt::Krb5TicketWeak => {
                AppProto::Krb5
            }
            AppInt::SnmpVersion | AppInt::SnmpPduType | AppInt::SnmpTrapType => AppProto::Snmp,
            AppInt::MqttType
            | AppInt::MqttFlags
            | AppInt::MqttQos
            | AppInt::MqttReasonCode
            | AppInt::MqttProtocolVersion
            | AppInt::MqttConnectFlags => AppProto::Mqtt,
            AppInt::Dnp3Func | AppInt::Dnp3Obj => AppProto::Dnp3,
            AppInt::LdapRequestOperation
            | AppInt::LdapResponsesOperation
            | AppInt::LdapResponsesOperationAt
            | AppInt::LdapResponsesOperationFromEnd
            | AppInt::LdapResponsesOperationAll
            | AppInt::LdapResponsesCount => AppProto::Ldap,
            AppInt::EnipCommand | AppInt::CipService => AppProto::Enip,
            AppInt::TlsCertChainLen => AppProto::Tls,
            AppInt::FtpBounce => AppProto::Ftp,
            AppInt::FtpdataCommand => AppProto::FtpData,
            // any protocol carrying files: not a protocol constraint (see `binds_proto`)
            AppInt::FileSize => AppProto::Http,
            AppInt::WebsocketOpcode | AppInt::WebsocketMask | AppInt::WebsocketFlags => AppProto::Websocket,
        }
    }

    /// Whether the field is read from a transaction record (`dns.rcode`), not from the packet
    /// (the NTP header fields).
    pub fn transactional(self) -> bool {
        matches!(
            self,
            AppInt::DnsRcode | AppInt::SmbVersion | AppInt::TlsCertChainLen | AppInt::FtpBounce | AppInt::FileSize
        ) || self == AppInt::FtpdataCommand
            || self.app_proto() == AppProto::Http2
            || matches!(
                self.app_proto(),
                AppProto::Krb5
                    | AppProto::Snmp
                    | AppProto::Mqtt
                    | AppProto::Dnp3
                    | AppProto::Enip
                    | AppProto::Websocket
                    | AppProto::Ldap
            )
    }

    /// Parses the keyword's value: Suricata's integer syntax over a `u8` (`u16` for `dns.rcode`),
    /// and for `ntp.mode` the mode names (`client`, `server`, ...), `!` negating one.
    pub fn parse(self, v: &str) -> Result<IntCond, String> {
        let v = v.trim();
        if let Some(c) = self.parse_named(v) {
            return c;
        }
        if self == AppInt::NtpMode {
            let (neg, name) = match v.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, v),
            };
            let mode = match name {
                "reserved" => Some(0),
                "symmetric_active" => Some(1),
                "symmetric_passive" => Some(2),
                "client" => Some(3),
                "server" => Some(4),
                "broadcast" => Some(5),
                "control" => Some(6),
                "private" => Some(7),
                _ => None,
            };
            if let Some(m) = mode {
                return Ok(if neg { IntCond::Ne(m) } else { IntCond::Eq(m) });
            }
        }
        if self == AppInt::DnsRcode {
            return IntCond::parse(v, u16::MAX as u64);
        }
        if self == AppInt::FileSize {
            return IntCond::parse(v, u64::MAX);
        }
        if self == AppInt::TlsCertChainLen {
            return IntCond::parse(v, u32::MAX as u64);
        }
        IntCond::parse(v, u8::MAX as u64)
    }

    /// The values of the Kerberos, SNMP and MQTT keywords that are not plain integers (names,
    /// flag lists) and their integer widths; `None`: the default `u8` syntax applies.
    fn parse_named(self, v: &str) -> Option<Result<IntCond, String>> {
        let named = |v: &str, f: &dyn Fn(&str) -> Option<u64>| -> Option<Result<IntCond, String>> {
            let (neg, name) = match v.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, v),
            };
            let x = f(name)?;
            Some(Ok(if neg { IntCond::Ne(x) } else { IntCond::Eq(x) }))
        };
        match self {
            AppInt::Krb5MsgType | AppInt::Krb5ErrCode | AppInt::SnmpVersion | AppInt::SnmpPduType => {
                Some(IntCond::parse(v, u32::MAX as u64))
            }
            AppInt::Krb5TicketEtype => {
                if v.contains(',') {
                    return Some(Err("lists of encryption types are not supported yet".to_string()));
                }
                named(v, &|n| crate::app::krb5::etype_from_name(n).and_then(|e| u64::try_from(e).ok()))
                    .or_else(|| Some(IntCond::parse(v, i32::MAX as u64)))
            }
            AppInt::SnmpTrapType => {
                named(v, &|n| crate::app::snmp::trap_type_from_name(n).map(u64::from)).or(Some(IntCond::parse(v, 6)))
            }
            AppInt::EnipCommand => Some(IntCond::parse(v, u16::MAX as u64)),
            AppInt::CipService if v.contains(',') => {
                Some(Err("cip_service with a class or attribute is not supported yet".to_string()))
            }
            AppInt::Dnp3Func => named(v, &|n| crate::app::dnp3::function_from_name(n).map(u64::from)),
            AppInt::Dnp3Obj => Some(dnp3_obj_cond(v)),
            AppInt::LdapRequestOperation => Some(crate::app::ldap::operation(v).map(IntCond::Eq)),
            AppInt::LdapResponsesCount => Some(IntCond::parse(v, u32::MAX as u64)),
            AppInt::MqttType => {
                named(v, &|n| crate::app::mqtt::TYPES.iter().position(|t| t.eq_ignore_ascii_case(n)).map(|i| i as u64))
            }
            // HTTP/2: frame type and error code names (`PING`, `!NO_ERROR`) or numbers
            AppInt::Http2FrameType => named(v, &|n| crate::app::http2::frame::from_name(n).map(u64::from)),
            AppInt::Http2ErrorCode => named(v, &|n| crate::app::http2::error_code_from_name(n).map(u64::from))
                .or_else(|| Some(IntCond::parse(v, u32::MAX as u64))),
            AppInt::Http2Window => Some(IntCond::parse(v, u32::MAX as u64)),
            AppInt::Http2SizeUpdate => Some(IntCond::parse(v, u64::MAX)),
            AppInt::Http2Settings => Some(http2_settings_cond(v)),
            AppInt::WebsocketOpcode => named(v, &|n| crate::app::websocket::opcode_from_name(n).map(u64::from)),
            AppInt::WebsocketMask => Some(IntCond::parse(v, u32::MAX as u64)),
            AppInt::WebsocketFlags => Some(crate::app::websocket::parse_flags(v).map(|(mask, value)| IntCond::Mask {
                mask,
                value,
                negated: false,
            })),
            AppInt::MqttFlags | AppInt::MqttConnectFlags => Some(
                crate::app::mqtt::parse_flag_list(v, self == AppInt::MqttConnectFlags)
                    .map(|(mask, value)| IntCond::Mask { mask, value, negated: false }),
            ),
            _ => None,
        }
    }
}

/// The protocol an `app-layer-protocol` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlprotoName {
    /// `unknown`: detection has not concluded.
    Unknown,
    /// `failed`: detection found no protocol.
    Failed,
    /// `http1`: HTTP/1 only (`http` is HTTP/1 or HTTP/2).
    Http1,
    Proto(AppProto),
}

/// Which detected protocol of the flow an `app-layer-protocol` tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlprotoMode {
    /// The packet's direction's (the default).
    Direction,
    ToServer,
    ToClient,
    /// Either direction's.
    Either,
    /// The first protocol detected on the flow (before a change such as an HTTP/2 upgrade).
    Original,
    /// The flow's protocol now.
    Final,
}

/// `app-layer-protocol:[!]<proto>[,<mode>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlprotoCond {
    pub proto: AlprotoName,
    pub negated: bool,
    pub mode: AlprotoMode,
}

/// The `app-layer-protocol` conditions of a rule; `pd_only` when they are all the rule tests
/// (Suricata's protocol-detection-only signatures, which match on the packets that complete a
/// direction's protocol detection only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlprotoRule {
    pub conds: Vec<AlprotoCond>,
    pub pd_only: bool,
}

/// A flow's detected protocol as `app-layer-protocol` sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alproto {
    #[default]
    Unknown,
    Failed,
    Known(AppProto),
}

/// The detected protocols of a packet's flow ([`super::Inspection::alproto`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlprotoState {
    pub to_server: Alproto,
    pub to_client: Alproto,
    pub original: Alproto,
    pub final_: Alproto,
    /// The packet completed a direction's detection (or changed the protocol).
    pub detection_done: bool,
}

impl AlprotoCond {
    pub fn parse(v: &str) -> Result<AlprotoCond, String> {
        let (name, mode) = match v.split_once(',') {
            Some((n, m)) => (n.trim(), Some(m.trim())),
            None => (v.trim(), None),
        };
        let (negated, name) = match name.strip_prefix('!') {
            Some(n) => (true, n.trim()),
            None => (false, name),
        };
        let proto = match name {
            "unknown" if negated => return Err("'unknown' cannot be negated".to_string()),
            "unknown" => AlprotoName::Unknown,
            "failed" => AlprotoName::Failed,
            "http1" => AlprotoName::Http1,
            n => AlprotoName::Proto(AppProto::from_name(n).ok_or_else(|| format!("unknown protocol '{n}'"))?),
        };
        let mode = match mode {
            None | Some("direction") => AlprotoMode::Direction,
            Some("to_server") => AlprotoMode::ToServer,
            Some("to_client") => AlprotoMode::ToClient,
            Some("either") => AlprotoMode::Either,
            Some("original") => AlprotoMode::Original,
            Some("final") => AlprotoMode::Final,
            Some(m) => return Err(format!("unknown mode '{m}'")),
        };
        Ok(AlprotoCond { proto, negated, mode })
    }

    /// Whether the packet (of direction `dir`) with its flow's protocols `st` matches.
    pub fn matches(&self, st: &AlprotoState, dir: Direction) -> bool {
        let of_dir = |d: Direction| if d == Direction::ToServer { st.to_server } else { st.to_client };
        let values: [Option<Alproto>; 2] = match self.mode {
            AlprotoMode::Direction => [Some(of_dir(dir)), None],
            AlprotoMode::ToServer => [Some(st.to_server), None],
            AlprotoMode::ToClient => [Some(st.to_client), None],
            AlprotoMode::Either => [Some(st.to_server), Some(st.to_client)],
            AlprotoMode::Original => [Some(st.original), None],
            AlprotoMode::Final => [Some(st.final_), None],
        };
        let values = values.into_iter().flatten();
        if self.proto == AlprotoName::Unknown {
            return values.into_iter().any(|v| v == Alproto::Unknown);
        }
        let known: Vec<Alproto> = values.filter(|v| *v != Alproto::Unknown).collect();
        if known.is_empty() {
            return false;
        }
        let eq = |v: &Alproto| match (self.proto, *v) {
            (AlprotoName::Failed, Alproto::Failed) => true,
            (AlprotoName::Http1, Alproto::Known(AppProto::Http)) => true,
            (AlprotoName::Proto(AppProto::Http), Alproto::Known(AppProto::Http | AppProto::Http2)) => true,
            (AlprotoName::Proto(a), Alproto::Known(b)) => a == b,
            _ => false,
        };
        known.iter().any(eq) != self.negated
    }
}

/// Whether a rule's options test nothing but `app-layer-protocol` (besides its metadata).
fn alproto_only(options: &[RuleOption]) -> bool {
    options.iter().all(|o| {
        matches!(
            o.keyword.as_str(),
            "app-layer-protocol"
                | "msg"
                | "sid"
                | "rev"
                | "gid"
                | "classtype"
                | "priority"
                | "metadata"
                | "reference"
                | "prefilter"
                | "target"
                | "noalert"
                | "alert"
        )
    })
}

/// `dnp3_obj:<group>,<variation>` (decimal, each 0-255) as a condition on `group << 8 | variation`.
fn dnp3_obj_cond(v: &str) -> Result<IntCond, String> {
    let (g, var) = v.split_once(',').ok_or_else(|| format!("dnp3_obj '{v}': expected <group>,<variation>"))?;
    let g: u8 = g.trim().parse().map_err(|_| format!("dnp3_obj: invalid group '{}'", g.trim()))?;
    let var: u8 = var.trim().parse().map_err(|_| format!("dnp3_obj: invalid variation '{}'", var.trim()))?;
    Ok(IntCond::Eq(u64::from(g) << 8 | u64::from(var)))
}

/// `http2.settings:NAME[<op>value]` (`SETTINGS_ENABLE_PUSH=0`, `SETTINGS_HEADER_TABLE_SIZE>4096`,
/// or the name alone) as a condition on `id << 32 | value` ([`AppInt::Http2Settings`]).
pub fn http2_settings_cond(v: &str) -> Result<IntCond, String> {
    let v = v.trim();
    let end = v.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(v.len());
    let (name, rest) = (&v[..end], v[end..].trim());
    let id = crate::app::http2::settings_id_from_name(name).ok_or_else(|| format!("unknown setting '{name}'"))?;
    let base = u64::from(id) << 32;
    let top = base + (1 << 32);
    if rest.is_empty() {
        return Ok(IntCond::Range(base - 1, top));
    }
    let rest = rest.strip_prefix('=').filter(|r| !r.starts_with('=')).map_or(rest, str::trim);
    Ok(match IntCond::parse(rest, u32::MAX as u64)? {
        IntCond::Eq(x) => IntCond::Eq(base + x),
        IntCond::Lt(x) => IntCond::Range(base - 1, base + x),
        IntCond::Le(x) => IntCond::Range(base - 1, base + x + 1),
        IntCond::Gt(x) => IntCond::Range(base + x, top),
        IntCond::Ge(x) => IntCond::Range(base + x - 1, top),
        IntCond::Range(a, b) => IntCond::Range(base + a, base + b.min(1 << 32)),
        _ => return Err(format!("'{rest}': only =, <, <=, >, >= and ranges are supported for a setting")),
    })
}

/// App-layer parser events the `app-layer-event` keyword can test ([`CompiledRule::app_events`],
/// [`super::Inspection::app_events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AppEvent {
    /// A request with more than one Content-Length header.
    HttpDuplicateContentLengthFieldInRequest,
    /// A request Authorization header whose scheme is not Basic, Digest or Bearer.
    HttpRequestAuthUnrecognized,
    /// A request line or header line longer than the HTTP parser's field limit.
    HttpRequestFieldTooLong,
    /// A TLS handshake message that does not decode (here: a Certificate message with a
    /// certificate that does not).
    TlsInvalidHandshakeMessage,
    /// A certificate whose DER lengths run past its data.
    TlsCertificateInvalidLength,
    /// An HTTP/2 request whose `:authority` and `host` name different hosts.
    Http2AuthorityHostMismatch,
    /// An HTTP/2 request whose `:authority` carries userinfo (`user@host`).
    Http2UserinfoInUri,
    /// An SMB read or write of file data that overlaps data already seen for the file.
    SmbFileOverlap,
    /// An MQTT CONNACK without a CONNECT before it.
    MqttMissingConnect,
    /// An MQTT control packet that does not decode.
    MqttMalformedTraffic,
    /// More DNP3 requests without a response than the flood limit.
    Dnp3Flooded,
    /// A DNP3 link length below 5, or a user data frame too short for its headers.
    Dnp3LenTooSmall,
    /// A DNP3 link header whose CRC is wrong.
    Dnp3BadLinkCrc,
    /// A DNP3 user data block whose CRC is wrong.
    Dnp3BadTransportCrc,
    /// A DNP3 application fragment longer than the reassembly bound.
    Dnp3TooLongReassembly,
    /// An IKEv2 proposal offering a weak Diffie-Hellman group.
    Ikev2WeakCryptoDh,
}

impl AppEvent {
    pub const ALL: &'static [AppEvent] = &[
        AppEvent::HttpDuplicateContentLengthFieldInRequest,
        AppEvent::HttpRequestAuthUnrecognized,
        AppEvent::HttpRequestFieldTooLong,
        AppEvent::TlsInvalidHandshakeMessage,
        AppEvent::TlsCertificateInvalidLength,
        AppEvent::Http2AuthorityHostMismatch,
        AppEvent::Http2UserinfoInUri,
        AppEvent::SmbFileOverlap,
        AppEvent::MqttMissingConnect,
        AppEvent::MqttMalformedTraffic,
        AppEvent::Dnp3Flooded,
        AppEvent::Dnp3LenTooSmall,
        AppEvent::Dnp3BadLinkCrc,
        AppEvent::Dnp3BadTransportCrc,
        AppEvent::Dnp3TooLongReassembly,
        AppEvent::Ikev2WeakCryptoDh,
    ];

    /// Suricata's name (`http.request_auth_unrecognized`).
    pub fn name(self) -> &'static str {
        match self {
            AppEvent::HttpDuplicateContentLengthFieldInRequest => "http.duplicate_content_length_field_in_request",
            AppEvent::HttpRequestAuthUnrecognized => "http.request_auth_unrecognized",
            AppEvent::HttpRequestFieldTooLong => "http.request_field_too_long",
            AppEvent::TlsInvalidHandshakeMessage => "tls.invalid_handshake_message",
            AppEvent::TlsCertificateInvalidLength => "tls.certificate_invalid_length",
            AppEvent::Http2AuthorityHostMismatch => "http2.authority_host_mismatch",
            AppEvent::Http2UserinfoInUri => "http2.userinfo_in_uri",
            AppEvent::SmbFileOverlap => "smb.file_overlap",
            AppEvent::MqttMissingConnect => "mqtt.missing_connect",
            AppEvent::MqttMalformedTraffic => "mqtt.malformed_traffic",
            AppEvent::Dnp3Flooded => "dnp3.flooded",
            AppEvent::Dnp3LenTooSmall => "dnp3.len_too_small",
            AppEvent::Dnp3BadLinkCrc => "dnp3.bad_link_crc",
            AppEvent::Dnp3BadTransportCrc => "dnp3.bad_transport_crc",
            AppEvent::Dnp3TooLongReassembly => "dnp3.too_long_reassembly",
            AppEvent::Ikev2WeakCryptoDh => "ikev2.weak_crypto_dh",
        }
    }

    pub fn from_name(name: &str) -> Option<AppEvent> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }

    pub fn app_proto(self) -> AppProto {
        match self {
            AppEvent::HttpDuplicateContentLengthFieldInRequest
            | AppEvent::HttpRequestAuthUnrecognized
            | AppEvent::HttpRequestFieldTooLong => AppProto::Http,
            AppEvent::TlsInvalidHandshakeMessage | AppEvent::TlsCertificateInvalidLength => AppProto::Tls,
            AppEvent::Http2AuthorityHostMismatch | AppEvent::Http2UserinfoInUri => AppProto::Http2,
            AppEvent::SmbFileOverlap => AppProto::Smb,
            AppEvent::MqttMissingConnect | AppEvent::MqttMalformedTraffic => AppProto::Mqtt,
            AppEvent::Dnp3Flooded
            | AppEvent::Dnp3LenTooSmall
            | AppEvent::Dnp3BadLinkCrc
            | AppEvent::Dnp3BadTransportCrc
            | AppEvent::Dnp3TooLongReassembly => AppProto::Dnp3,
            AppEvent::Ikev2WeakCryptoDh => AppProto::Ike,
        }
    }

    /// Its bit in [`CompiledRule::app_events`].
    pub fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

/// The side(s) of a TCP session a `stream_size` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSide {
    /// Bytes sent by the server.
    Server,
    /// Bytes sent by the client.
    Client,
    Both,
    Either,
}

/// The direction(s) `flow.pkts` / `flow.bytes` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountSide {
    ToServer,
    ToClient,
    Either,
}

/// `flow.pkts` (`bytes` false) or `flow.bytes` (`bytes` true): the flow's packet or byte
/// count so far, in a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCount {
    pub bytes: bool,
    pub side: CountSide,
    pub cond: IntCond,
}

/// `target:src_ip|dest_ip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    SrcIp,
    DestIp,
}

/// One entry of a classification table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub name: String,
    pub description: String,
    pub priority: u8,
}

/// A classification table (`classification.config`: `config classification: name,description,priority`).
///
/// An empty table (the default) accepts every `classtype` with no category and priority 3;
/// with a table loaded an unknown `classtype` rejects the rule, as in Suricata.
#[derive(Clone, Debug, Default)]
pub struct Classifications {
    map: HashMap<String, Classification>,
}

impl Classifications {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let body = l.strip_prefix("config classification:").ok_or_else(|| {
                format!("line {}: expected 'config classification: name,description,priority'", i + 1)
            })?;
            let parts: Vec<&str> = body.splitn(3, ',').map(str::trim).collect();
            if parts.len() != 3 || parts[0].is_empty() {
                return Err(format!("line {}: expected 'name,description,priority'", i + 1));
            }
            let priority =
                parts[2].parse::<u8>().map_err(|_| format!("line {}: invalid priority '{}'", i + 1, parts[2]))?;
            map.insert(
                parts[0].to_string(),
                Classification { name: parts[0].to_string(), description: parts[1].to_string(), priority },
            );
        }
        Ok(Classifications { map })
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, String> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub fn get(&self, name: &str) -> Option<&Classification> {
        self.map.get(name)
    }

    pub fn insert(&mut self, c: Classification) {
        self.map.insert(c.name.clone(), c);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The `metadata` of a rule (EVE `alert.metadata`): values per key, keys in sorted order, values
/// in rule order. The strings, and each key with its values, are shared between the rules of a
/// detector ([`Interner`]): ET Open repeats a few thousand keys and values across its 20,000
/// rules, and most entries (`deployment Perimeter`, `created_at 2019_01_01`) whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleMetadata(Box<[MetadataEntry]>);

/// A metadata key followed by its values (never empty: the key is always there).
type MetadataEntry = Arc<[Arc<str>]>;

impl RuleMetadata {
    /// The rule's own copy, shared with no other rule (the detector builder compiles with an
    /// [`Interner`] instead, see [`Self::interned_from`]).
    fn new(map: BTreeMap<&str, Vec<&str>>) -> RuleMetadata {
        RuleMetadata(
            map.into_iter()
                .map(|(k, vs)| std::iter::once(Arc::from(k)).chain(vs.into_iter().map(Arc::from)).collect())
                .collect(),
        )
    }

    /// The entries of `map` taken from (or added to) `strings`.
    fn interned_from(map: &BTreeMap<&str, Vec<&str>>, strings: &mut Interner) -> RuleMetadata {
        RuleMetadata(map.iter().map(|(k, vs)| strings.entry(k, vs)).collect())
    }

    /// Keys (sorted) with their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Arc<str>])> {
        self.0.iter().filter_map(|e| e.split_first()).map(|(k, vs)| (&**k, vs))
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> Option<&[Arc<str>]> {
        let i = self.0.binary_search_by(|e| e.first().map_or("", |k| &**k).cmp(key)).ok()?;
        self.0.get(i).and_then(|e| e.get(1..))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One shared copy of each string (rule metadata, classtypes) and of each metadata entry for
/// the rules of a detector.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    strings: rustc_hash::FxHashSet<Arc<str>>,
    /// By the hash of their text (see [`Interner::entry`]).
    entries: rustc_hash::FxHashMap<u64, MetadataEntry>,
    /// Each distinct `pcre` compiled once.
    pub(crate) pcres: pcre::PcreCache,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> Arc<str> {
        match self.strings.get(s) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(s);
                self.strings.insert(a.clone());
                a
            }
        }
    }

    /// The shared entry of key `k` with values `vs`, its strings interned. Looked up by the
    /// hash of the text, then compared: an entry whose hash collides with another's is not
    /// shared (correct, only less compact).
    fn entry<S: AsRef<str>>(&mut self, k: &str, vs: &[S]) -> MetadataEntry {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        k.hash(&mut h);
        for v in vs {
            v.as_ref().hash(&mut h);
        }
        let hash = h.finish();
        if let Some(e) = self.entries.get(&hash)
            && e.len() == vs.len() + 1
            && e.first().is_some_and(|ek| &**ek == k)
            && e.iter().skip(1).zip(vs).all(|(a, b)| &**a == b.as_ref())
        {
            return e.clone();
        }
        let e: MetadataEntry =
            std::iter::once(self.intern(k)).chain(vs.iter().map(|v| self.intern(v.as_ref()))).collect();
        self.entries.entry(hash).or_insert_with(|| e.clone());
        e
    }
}

/// What an alert reports about its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMeta {
    pub action: Action,
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub msg: Arc<str>,
    pub classtype: Option<Arc<str>>,
    /// The classtype's description (EVE `alert.category`).
    pub category: Option<Arc<str>>,
    /// `priority`, else the classtype's, else 3 (EVE `alert.severity`).
    pub priority: u8,
    pub references: Vec<(String, String)>,
    pub metadata: Arc<RuleMetadata>,
    pub target: Option<Target>,
    /// The `alert` keyword: a `pass` rule that also alerts.
    pub alert: bool,
}

/// The prefilter pattern of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastPattern {
    pub buffer: Buffer,
    /// Transforms of the buffer the pattern is searched in.
    pub transforms: Vec<Transform>,
    pub bytes: Vec<u8>,
}

/// A rule ready to match.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub meta: RuleMeta,
    pub proto: RuleProto,
    pub src: AddrExpr,
    pub src_ports: PortExpr,
    pub dst: AddrExpr,
    pub dst_ports: PortExpr,
    pub bidirectional: bool,
    pub flow: FlowCond,
    pub dsize: Option<IntCond>,
    /// `urilen` (on the normalized, or with `raw` the raw, request URI).
    pub urilen: Option<(IntCond, bool)>,
    pub ttl: Option<IntCond>,
    pub itype: Option<IntCond>,
    pub icode: Option<IntCond>,
    /// `icmp_id` / `icmp_seq` (echo and the other messages carrying them).
    pub icmp_id: Option<IntCond>,
    pub icmp_seq: Option<IntCond>,
    /// `icmpv6.mtu`: the MTU of an ICMPv6 Packet Too Big message (no match on other packets).
    pub icmpv6_mtu: Option<IntCond>,
    pub ip_proto: Option<IntCond>,
    pub tcp_flags: Option<TcpFlags>,
    /// `seq` / `ack`: the TCP header's sequence and acknowledgement numbers (exact values).
    pub tcp_seq: Option<u32>,
    pub tcp_ack: Option<u32>,
    /// `sameip`.
    pub sameip: bool,
    /// `iprep` / `geoip` conditions on the packet's addresses ([`super::iprep`]).
    pub host_conds: Option<Box<super::iprep::HostConds>>,
    /// `tag`: the packets after an alert to tag ([`crate::tag`]).
    pub tag: Option<crate::tag::TagSpec>,
    /// `stream_size:<side>,<op>,<n>`: sequence-space size of the session's sides.
    pub stream_size: Option<(StreamSide, IntCond)>,
    /// `flow.pkts` / `flow.bytes` (and their `_toserver` / `_toclient` forms).
    pub flow_counts: Vec<FlowCount>,
    /// App-layer integer keywords (`ntp.version`, ...).
    pub app_ints: Vec<(AppInt, IntCond)>,
    /// `dcerpc.iface` / `dcerpc.opnum`: conditions on the inspected DCERPC transaction.
    pub dce: Option<Box<super::dce::DceCond>>,
    /// `decode-event`: the [`crate::decode::DecodeEvent`] bits the packet must have.
    pub decode_events: u64,
    /// `app-layer-event`: the [`AppEvent`] bits the transaction must have.
    pub app_events: u64,
    /// `app-layer-protocol` conditions (packet keyword), `None` without.
    pub alproto: Option<Box<AlprotoRule>>,
    /// `proto:flow_start`: only the first packet of each direction.
    pub flow_start: bool,
    /// The explicit scope of a drop (`drop:flow`: `Some(true)`, `drop:packet`).
    pub drop_scope: Option<bool>,
    /// An HTTP/1 transaction hook: the request side (`Some(true)`) or the response side only.
    pub tx_hook: Option<bool>,
    /// `=>`: inspected on whole transactions only (both sides' buffers together), see
    /// [`super::Inspection::whole_tx`].
    pub transactional: bool,
    pub flowbits: Vec<FlowbitOp>,
    /// `flowint` conditions and modifiers.
    pub flowints: Vec<FlowintOp>,
    /// `xbits` and `hostbits` (host and host-pair bits).
    pub xbits: Vec<XbitOp>,
    /// `noalert` (or `flowbits:noalert`): the rule only acts on state.
    pub noalert: bool,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    /// Application protocol the rule needs (from the header or its buffers).
    pub app_proto: Option<AppProto>,
    /// `http` rules also match HTTP/2; `http1` rules do not.
    pub http1_only: bool,
    /// Direction the rule can match in (from `flow` or its buffers).
    pub direction: Option<Direction>,
    /// Per-buffer lists, in order of first use.
    pub lists: Vec<BufferList>,
    pub fast_pattern: Option<FastPattern>,
    pub file: Arc<str>,
    pub line: usize,
}

/// Where the next `content`/`pcre` goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Buffer(Buffer),
    /// After an unsupported sticky buffer: items are kept apart (the rule is rejected anyway).
    Unsupported,
}

struct Builder<'a> {
    rule: &'a ParsedRule,
    unsupported: Vec<RuleError>,
    lists: Vec<BufferList>,
    /// Transforms of the active sticky buffer.
    transforms: Vec<Transform>,
    junk: Vec<Item>,
    cursor: Cursor,
    /// (list index or usize::MAX for junk, item index) of the last content
    last_content: Option<(usize, usize)>,
    sticky_open: Option<(&'a RuleOption, usize)>,
    fast_pattern_seen: bool,
    /// `byte_extract` variable names, by index.
    byte_vars: Vec<String>,
    /// `file.data` named again: its next list is a new one (Suricata 8: each use may match a
    /// different file of the transaction).
    new_list: Option<Buffer>,
    /// The detector's shared strings and compiled pcres.
    strings: Option<&'a std::sync::Mutex<Interner>>,
}

type Res<T> = Result<T, RuleError>;

impl<'a> Builder<'a> {
    fn err(&self, o: &RuleOption, reason: impl Into<String>) -> RuleError {
        self.rule.error(o.line, o.column, Some(&o.keyword), reason)
    }

    fn value_err(&self, o: &RuleOption, reason: impl Into<String>) -> RuleError {
        self.rule.error(o.value_line, o.value_column, Some(&o.keyword), reason)
    }

    fn value<'o>(&self, o: &'o RuleOption) -> Res<&'o str> {
        o.value.as_deref().ok_or_else(|| self.err(o, "needs a value"))
    }

    fn no_value(&self, o: &RuleOption) -> Res<()> {
        match &o.value {
            Some(_) => Err(self.err(o, "takes no value")),
            None => Ok(()),
        }
    }

    fn list_with(&mut self, b: Buffer, transforms: &[Transform]) -> usize {
        let fresh = self.new_list.take_if(|x| *x == b).is_some();
        match self.lists.iter().rposition(|l| l.buffer == b && l.transforms == transforms).filter(|_| !fresh) {
            Some(i) => i,
            None => {
                self.lists.push(BufferList {
                    buffer: b,
                    transforms: transforms.to_vec(),
                    bsize: None,
                    items: Vec::new(),
                    absent: None,
                });
                self.lists.len() - 1
            }
        }
    }

    fn list_mut(&mut self, b: Buffer) -> usize {
        self.list_with(b, &[])
    }

    /// The list of the cursor's buffer with the active transforms.
    fn cursor_list(&mut self) -> Option<usize> {
        match self.cursor {
            Cursor::Buffer(b) => {
                let t = std::mem::take(&mut self.transforms);
                let li = self.list_with(b, &t);
                self.transforms = t;
                Some(li)
            }
            Cursor::Unsupported => None,
        }
    }

    fn push_item(&mut self, item: Item) -> (usize, usize) {
        match self.cursor_list() {
            Some(li) => {
                self.lists[li].items.push(item);
                (li, self.lists[li].items.len() - 1)
            }
            None => {
                self.junk.push(item);
                (usize::MAX, self.junk.len() - 1)
            }
        }
    }

    /// A relative item (`isdataat`, `byte_*`, `pcre /R`, `base64_decode` with `relative`) goes
    /// to the list of the content it is relative to when no sticky buffer is active: after
    /// `uricontent` or a legacy modifier (`http_uri`, ...) that is not the payload (Suricata).
    fn push_relative(&mut self, item: Item) -> (usize, usize) {
        if item.is_relative()
            && self.cursor == Cursor::Buffer(Buffer::Payload)
            && let Some((li, _)) = self.last_content
            && li != usize::MAX
            && self.lists[li].buffer != Buffer::Payload
        {
            self.lists[li].items.push(item);
            return (li, self.lists[li].items.len() - 1);
        }
        self.push_item(item)
    }

    fn item_count(&self) -> usize {
        self.lists.iter().map(|l| l.items.len() + usize::from(l.bsize.is_some() || l.absent.is_some())).sum::<usize>()
            + self.junk.len()
    }

    fn close_sticky(&mut self) -> Res<()> {
        if let Some((o, count)) = self.sticky_open.take()
            && self.item_count() == count
            && self.unsupported.is_empty()
        {
            return Err(self.err(o, "sticky buffer is not followed by a content or pcre"));
        }
        Ok(())
    }

    fn last_content(&mut self, o: &RuleOption) -> Res<&mut ContentMatch> {
        let Some((li, ii)) = self.last_content else {
            return Err(self.err(o, "needs a preceding content"));
        };
        let item = if li == usize::MAX { &mut self.junk[ii] } else { &mut self.lists[li].items[ii] };
        match item {
            Item::Content(c) => Ok(c),
            _ => Err(self.rule.error(o.line, o.column, Some(&o.keyword), "needs a preceding content")),
        }
    }
}

fn parse_content_value(value: &str) -> Result<(bool, Vec<u8>), String> {
    let v = value.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, v),
    };
    if v.len() < 2 || !v.starts_with('"') || !v.ends_with('"') {
        return Err("value must be a double-quoted string".to_string());
    }
    let inner = &v.as_bytes()[1..v.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut in_hex = false;
    let mut nibble: Option<u8> = None;
    let mut escape = false;
    for &b in inner {
        if in_hex {
            match b {
                b'|' => {
                    if nibble.is_some() {
                        return Err("odd number of hex digits between '|'".to_string());
                    }
                    in_hex = false;
                }
                b' ' | b'\t' => {}
                _ if b.is_ascii_hexdigit() => {
                    let d = (b as char).to_digit(16).unwrap_or(0) as u8;
                    match nibble.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => nibble = Some(d),
                    }
                }
                _ => return Err(format!("invalid character '{}' in hex bytes", b as char)),
            }
        } else if escape {
            if !matches!(b, b'\\' | b';' | b'"' | b':') {
                return Err(format!("invalid escape '\\{}' (only \\\\ \\; \\\" \\: are allowed)", b as char));
            }
            out.push(b);
            escape = false;
        } else if b == b'\\' {
            escape = true;
        } else if b == b'|' {
            in_hex = true;
        } else {
            out.push(b);
        }
    }
    if in_hex {
        return Err("unterminated hex bytes ('|' without its closing '|')".to_string());
    }
    if escape {
        return Err("value ends with a backslash".to_string());
    }
    if out.is_empty() {
        return Err("empty content".to_string());
    }
    Ok((negated, out))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') {
        return Err(format!("'{t}' is a byte_extract variable: byte_extract not supported yet"));
    }
    t.parse::<u32>().map_err(|_| format!("invalid number '{t}'"))
}

fn parse_i32(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') {
        return Err(format!("'{t}' is a byte_extract variable: byte_extract not supported yet"));
    }
    let v = t.parse::<i32>().map_err(|_| format!("invalid number '{t}'"))?;
    if v.unsigned_abs() > 1 << 20 {
        return Err(format!("{v} is beyond the 1MB limit"));
    }
    Ok(v)
}

/// The Suricata version this engine's rule language follows (for `requires`).
pub const SURICATA_VERSION: (u64, u64, u64) = (8, 0, 6);

/// Optional Suricata features this engine has (`requires: feature ...`).
pub const FEATURES: &[&str] = &["ja4"];

/// Checks `requires: feature X, version >= A [< B]` against [`FEATURES`] and
/// [`SURICATA_VERSION`]; a rule whose requirements are not met is not loaded (the reason says
/// why).
fn requirements_met(v: &str) -> Result<(), String> {
    let parse_ver = |t: &str| -> Result<(u64, u64, u64), String> {
        let mut it = t.trim().split('.').map(|p| p.trim().parse::<u64>());
        let mut next = |req: bool| match it.next() {
            Some(Ok(n)) => Ok(n),
            None if !req => Ok(0),
            _ => Err(format!("invalid version '{t}'")),
        };
        Ok((next(true)?, next(false)?, next(false)?))
    };
    for part in v.split(',') {
        let p = part.trim();
        let (k, rest) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "feature" if FEATURES.contains(&rest) => {}
            "feature" => return Err(format!("requires feature '{rest}', which this engine does not have")),
            "version" => {
                let mut toks = rest.split_whitespace();
                while let Some(op) = toks.next() {
                    let ver = parse_ver(toks.next().ok_or_else(|| format!("missing version after '{op}'"))?)?;
                    let ok = match op {
                        ">=" => SURICATA_VERSION >= ver,
                        ">" => SURICATA_VERSION > ver,
                        "<=" => SURICATA_VERSION <= ver,
                        "<" => SURICATA_VERSION < ver,
                        "=" | "==" => SURICATA_VERSION == ver,
                        other => return Err(format!("invalid version operator '{other}'")),
                    };
                    if !ok {
                        return Err(format!("requires version {rest}: this engine follows Suricata 8.0.6"));
                    }
                }
            }
            "" => {}
            other => return Err(format!("unknown requirement '{other}'")),
        }
    }
    Ok(())
}

/// Suricata's pattern strength (detect-engine-mpm.c `PatternStrength`).
fn pattern_strength(p: &[u8]) -> u32 {
    let mut seen = [false; 256];
    let mut s = 0;
    for &b in p {
        if !seen[b as usize] {
            s += if b.is_ascii_alphabetic() {
                3
            } else if b.is_ascii_graphic() || b == b' ' || b == 0 || b == 1 || b == 0xff {
                4
            } else {
                6
            };
            seen[b as usize] = true;
        } else {
            s += 1;
        }
    }
    s
}

fn apply_option<'a>(b: &mut Builder<'a>, o: &'a RuleOption, st: &mut MetaState<'a>) -> Res<()> {
    let kw = o.keyword.as_str();
    // a keyword that is both (`http_client_body`) modifies a payload content it follows
    let modifies_content = b.cursor == Cursor::Buffer(Buffer::Payload)
        && b.last_content.is_some_and(|(li, _)| b.lists.get(li).is_some_and(|l| l.buffer == Buffer::Payload));
    if kw == "frame" {
        let v = maybe_unquote(b.value(o)?);
        // a frame name without its protocol is one of the rule's protocol (`frame:pdu`)
        let Some(buf) = frame_buffer(v.trim()).or_else(|| frame_buffer(&format!("{}.{}", b.rule.proto, v.trim())))
        else {
            return Err(b.err(o, format!("frame type '{}' not supported yet", v.trim())));
        };
        b.close_sticky()?;
        b.cursor = Cursor::Buffer(buf);
        b.transforms.clear();
        b.sticky_open = Some((o, b.item_count()));
        return Ok(());
    }
    if let Some(buf) = Buffer::sticky(kw).filter(|_| !(modifies_content && Buffer::legacy_modifier(kw).is_some())) {
        b.no_value(o)?;
        if buf == Buffer::Base64Data && !st.base64_decode {
            return Err(b.err(o, "base64_data needs a base64_decode before it"));
        }
        b.close_sticky()?;
        b.new_list = (buf == Buffer::FileData && b.lists.iter().any(|l| l.buffer == buf)).then_some(buf);
        b.cursor = Cursor::Buffer(buf);
        b.transforms.clear();
        if buf != Buffer::Payload {
            b.sticky_open = Some((o, b.item_count()));
        }
        return Ok(());
    }
    if let Some(buf) = Buffer::legacy_modifier(kw) {
        b.no_value(o)?;
        let Some((li, ii)) = b.last_content else {
            return Err(b.err(o, "needs a preceding content"));
        };
        if li == usize::MAX {
            return Ok(()); // content of an unsupported buffer: the rule is rejected anyway
        }
        if b.lists[li].buffer != Buffer::Payload {
            return Err(b.err(
                o,
                format!(
                    "the content is already in the {} buffer (a sticky buffer is active)",
                    b.lists[li].buffer.name()
                ),
            ));
        }
        let item = b.lists[li].items.remove(ii);
        let target = b.list_mut(buf);
        b.lists[target].items.push(item);
        b.last_content = Some((target, b.lists[target].items.len() - 1));
        if b.lists[li].items.is_empty() && b.lists[li].buffer == Buffer::Payload && b.lists[li].bsize.is_none() {
            b.lists.remove(li);
            if let Some((t, i)) = b.last_content {
                b.last_content = Some((if t > li { t - 1 } else { t }, i));
            }
        }
        return Ok(());
    }
    match kw {
        "msg" => {
            st.msg = Some(maybe_unquote(b.value(o)?));
        }
        "sid" | "gid" | "rev" => {
            let v = b.value(o)?;
            let n = maybe_unquote(v).parse::<u32>().map_err(|_| b.value_err(o, format!("invalid number '{v}'")))?;
            if kw == "sid" && n == 0 {
                return Err(b.value_err(o, "sid must be greater than 0"));
            }
            let slot = match kw {
                "sid" => &mut st.sid,
                "gid" => &mut st.gid,
                _ => &mut st.rev,
            };
            if slot.is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
            *slot = Some(n);
        }
        "classtype" => {
            if st.classtype.is_some() {
                return Err(b.err(o, "classtype given twice"));
            }
            st.classtype = Some((maybe_unquote(b.value(o)?), o));
        }
        "priority" => {
            let v = maybe_unquote(b.value(o)?);
            match v.parse::<u8>() {
                Ok(p) if p > 0 => st.priority = Some(p),
                _ => return Err(b.value_err(o, format!("invalid priority '{v}' (1-255)"))),
            }
        }
        "reference" => {
            let v = maybe_unquote(b.value(o)?);
            let (t, val) = v.split_once(',').ok_or_else(|| b.value_err(o, "expected 'type,value'"))?;
            st.references.push((t.trim().to_string(), val.trim().to_string()));
        }
        "metadata" => {
            for item in b.value(o)?.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (k, v) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
                st.metadata.entry(k.trim()).or_default().push(v.trim());
            }
        }
        "target" => {
            st.target = Some(match &*maybe_unquote(b.value(o)?) {
                "src_ip" => Target::SrcIp,
                "dest_ip" => Target::DestIp,
                other => {
                    return Err(b.value_err(o, format!("invalid target '{other}' (src_ip or dest_ip)")));
                }
            });
        }
        "content" | "uricontent" => {
            let (negated, pattern) = parse_content_value(b.value(o)?).map_err(|e| b.value_err(o, e))?;
            let saved = b.cursor;
            if kw == "uricontent" && b.cursor != Cursor::Unsupported {
                b.cursor = Cursor::Buffer(Buffer::HttpUri);
            }
            let at = b.push_item(Item::Content(ContentMatch::new(pattern, negated)));
            b.cursor = saved;
            b.last_content = Some(at);
        }
        "nocase" => {
            b.no_value(o)?;
            let c = b.last_content(o)?;
            if c.nocase {
                return Err(b.err(o, "nocase given twice for the same content"));
            }
            c.set_nocase();
        }
        "rawbytes" => {
            b.no_value(o)?;
            b.last_content(o)?;
        }
        "offset" | "depth" => {
            let text = maybe_unquote(b.value(o)?);
            let var = b.byte_vars.iter().position(|n| *n == text.trim()).map(|i| i as u8);
            let v = match var {
                Some(_) => 0,
                None => parse_u32(&text).map_err(|e| b.value_err(o, e))?,
            };
            let c = b.last_content(o)?;
            c.vars[if kw == "offset" { VAR_OFFSET } else { VAR_DEPTH }] = var;
            let reason = if c.startswith {
                Some("can't be combined with startswith".to_string())
            } else if c.is_relative() {
                Some("can't use a relative keyword like within/distance with an absolute one like depth/offset for the same content".to_string())
            } else if (kw == "offset" && c.offset_set) || (kw == "depth" && c.depth_raw.is_some()) {
                Some(format!("{kw} given twice for the same content"))
            } else if kw == "depth" && var.is_none() && (v as usize) < c.pattern.len() {
                Some(format!("depth {v} is smaller than the content length {}: can never match", c.pattern.len()))
            } else {
                None
            };
            if let Some(r) = reason {
                return Err(b.value_err(o, r));
            }
            if kw == "offset" {
                c.offset = v;
                c.offset_set = true;
            } else {
                c.depth_raw = Some(v);
            }
        }
        "distance" | "within" => {
            let text = maybe_unquote(b.value(o)?);
            let var = b.byte_vars.iter().position(|n| *n == text.trim()).map(|i| i as u8);
            let v = match var {
                // a placeholder that passes the checks below
                Some(_) => i32::MAX / 2,
                None => parse_i32(&text).map_err(|e| b.value_err(o, e))?,
            };
            let c = b.last_content(o)?;
            c.vars[if kw == "distance" { VAR_DISTANCE } else { VAR_WITHIN }] = var;
            let reason = if c.startswith {
                Some("can't be combined with startswith".to_string())
            } else if c.offset_set || c.depth_raw.is_some() {
                Some("can't use a relative keyword like within/distance with an absolute one like depth/offset for the same content".to_string())
            } else if (kw == "distance" && c.distance.is_some()) || (kw == "within" && c.within.is_some()) {
                Some(format!("{kw} given twice for the same content"))
            } else if kw == "within" && v == 0 {
                Some("within can not be 0".to_string())
            } else if kw == "within" && (v as i64) < c.pattern.len() as i64 {
                Some(format!("within {v} is less than the content length {}: can never match", c.pattern.len()))
            } else {
                None
            };
            if let Some(r) = reason {
                return Err(b.value_err(o, r));
            }
            if kw == "distance" {
                c.distance = Some(v);
            } else {
                c.within = Some(v);
            }
        }
        "startswith" | "endswith" => {
            b.no_value(o)?;
            let c = b.last_content(o)?;
            if kw == "startswith" {
                if c.is_relative() || c.offset_set || c.depth_raw.is_some() {
                    return Err(b.err(o, "startswith can't be mixed with depth, offset, within or distance"));
                }
                if c.startswith {
                    return Err(b.err(o, "startswith given twice"));
                }
                c.startswith = true;
            } else {
                if c.endswith {
                    return Err(b.err(o, "endswith given twice"));
                }
                c.endswith = true;
            }
        }
        "fast_pattern" => {
            if b.fast_pattern_seen {
                return Err(b.err(o, "fast_pattern can only be set once per rule"));
            }
            b.fast_pattern_seen = true;
            let chop = match o.value.as_deref().map(str::trim) {
                None | Some("only") => None,
                Some(v) => {
                    let (x, y) =
                        v.split_once(',').ok_or_else(|| b.value_err(o, "expected 'only' or 'offset,length'"))?;
                    let x = x.trim().parse::<usize>().map_err(|_| b.value_err(o, "invalid offset"))?;
                    let y = y.trim().parse::<usize>().map_err(|_| b.value_err(o, "invalid length"))?;
                    Some((x, y))
                }
            };
            let c = b.last_content(o)?;
            if let Some((x, y)) = chop
                && (y == 0 || x + y > c.pattern.len())
            {
                return Err(b.value_err(o, "fast_pattern offset,length is outside the content"));
            }
            c.fast_pattern = true;
            c.fp_chop = chop;
        }
        "pcre" => {
            let item = parse_pcre(b, o)?;
            let (pm, buffer) = item;
            if let Some(buf) = buffer {
                match b.cursor {
                    Cursor::Buffer(cur) if cur != Buffer::Payload && cur != buf => {
                        return Err(b.err(
                            o,
                            format!(
                                "pcre buffer modifier for {} while the sticky buffer {} is active",
                                buf.name(),
                                cur.name()
                            ),
                        ));
                    }
                    Cursor::Unsupported => {
                        b.push_item(Item::Pcre(pm));
                        return Ok(());
                    }
                    _ => {}
                }
                let saved = b.cursor;
                b.cursor = Cursor::Buffer(buf);
                b.push_item(Item::Pcre(pm));
                b.cursor = saved;
            } else {
                b.push_relative(Item::Pcre(pm));
            }
        }
        "flow" => {
            if st.flow_seen {
                return Err(b.err(o, "only one flow keyword per rule"));
            }
            st.flow_seen = true;
            for part in b.value(o)?.split(',') {
                let p = part.trim();
                let dir = match p {
                    "to_server" | "from_client" => Some(Direction::ToServer),
                    "to_client" | "from_server" => Some(Direction::ToClient),
                    _ => None,
                };
                if let Some(d) = dir {
                    if st.flow.direction.is_some() {
                        return Err(b.value_err(o, "two directions in flow"));
                    }
                    st.flow.direction = Some(d);
                    continue;
                }
                match p {
                    "established" | "not_established" => {
                        if st.flow.established.is_some() {
                            return Err(b.value_err(o, "established and not_established given together or twice"));
                        }
                        st.flow.established = Some(p == "established");
                    }
                    // every inspected packet belongs to a flow; fragments are never inspected
                    "stateless" | "no_frag" => {}
                    // a packet rule: not inspected on the reassembled stream
                    "no_stream" => st.flow.no_stream = true,
                    "only_stream" | "only_frag" => {
                        return Err(b.value_err(
                            o,
                            format!("flow option '{p}' not supported yet (no stream/fragment reassembly)"),
                        ));
                    }
                    _ => return Err(b.value_err(o, format!("unknown flow option '{p}'"))),
                }
            }
        }
        "dsize" => {
            if st.dsize.is_some() {
                return Err(b.err(o, "dsize given twice"));
            }
            st.dsize =
                Some(IntCond::parse(&maybe_unquote(b.value(o)?), u16::MAX as u64).map_err(|e| b.value_err(o, e))?);
        }
        "absent" => {
            let or_else = match o.value.as_deref().map(str::trim) {
                None => false,
                Some("or_else") => true,
                Some(v) => return Err(b.value_err(o, format!("unknown value '{v}' (or_else)"))),
            };
            if b.cursor == Cursor::Buffer(Buffer::Payload) {
                return Err(b.err(o, "absent needs a sticky buffer"));
            }
            if let Some(li) = b.cursor_list() {
                if !b.lists[li].items.is_empty() {
                    return Err(b.err(o, "absent must come before the buffer's content"));
                }
                b.lists[li].absent = Some(or_else);
            }
        }
        "bsize" => {
            let cond = IntCond::parse(&maybe_unquote(b.value(o)?), u32::MAX as u64).map_err(|e| b.value_err(o, e))?;
            if b.cursor == Cursor::Buffer(Buffer::Payload) {
                return Err(b.err(o, "bsize needs a sticky buffer"));
            }
            if let Some(li) = b.cursor_list() {
                if b.lists[li].bsize.is_some() {
                    return Err(b.err(o, "bsize given twice for the same buffer"));
                }
                b.lists[li].bsize = Some(cond);
            }
        }
        "isdataat" => {
            let d = keywords::parse_isdataat(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            b.push_relative(Item::IsDataAt(d));
        }
        "byte_extract" => {
            let (mut e, name) =
                keywords::parse_byte_extract(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            if b.byte_vars.contains(&name) {
                return Err(b.value_err(o, format!("variable '{name}' defined twice")));
            }
            if b.byte_vars.len() >= MAX_BYTE_VARS {
                return Err(b.value_err(o, format!("more than {MAX_BYTE_VARS} byte_extract variables")));
            }
            e.var = b.byte_vars.len() as u8;
            b.byte_vars.push(name);
            b.push_relative(Item::ByteExtract(e));
        }
        "byte_math" => {
            let vars = b.byte_vars.clone();
            let lookup = |n: &str| vars.iter().position(|v| v == n).map(|i| i as u8);
            let (mut m, name) =
                keywords::parse_byte_math(&maybe_unquote(b.value(o)?), &lookup).map_err(|e| b.value_err(o, e))?;
            // the result may reuse a variable's name: it is then overwritten
            m.var = match lookup(&name) {
                Some(i) => i,
                None => {
                    if b.byte_vars.len() >= MAX_BYTE_VARS {
                        return Err(b.value_err(o, format!("more than {MAX_BYTE_VARS} byte_extract variables")));
                    }
                    b.byte_vars.push(name);
                    (b.byte_vars.len() - 1) as u8
                }
            };
            b.push_relative(Item::ByteMath(m));
        }
        "byte_test" => {
            let vars = b.byte_vars.clone();
            let lookup = |n: &str| vars.iter().position(|v| v == n).map(|i| i as u8);
            let t =
                keywords::parse_byte_test_with(&maybe_unquote(b.value(o)?), &lookup).map_err(|e| b.value_err(o, e))?;
            b.push_relative(Item::ByteTest(t));
        }
        "base64_decode" => {
            let d = keywords::parse_base64_decode(o.value.as_deref().map(maybe_unquote).as_deref())
                .map_err(|e| b.value_err(o, e))?;
            if b.cursor == Cursor::Buffer(Buffer::Base64Data) {
                return Err(b.err(o, "base64_decode can't inspect base64_data"));
            }
            b.push_relative(Item::Base64Decode(d));
            st.base64_decode = true;
        }
        "dataset" | "datarep" => {
            let dir =
                std::path::Path::new(&*b.rule.file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let m = super::dataset::parse(&maybe_unquote(b.value(o)?), kw == "datarep", &dir)
                .map_err(|e| b.value_err(o, e))?;
            if b.cursor == Cursor::Buffer(Buffer::Payload) {
                return Err(b.err(o, format!("{kw} needs a sticky buffer")));
            }
            b.push_item(Item::Dataset(m));
        }
        "from_base64" => {
            let t = keywords::parse_from_base64(o.value.as_deref().map(maybe_unquote).as_deref())
                .map_err(|e| b.value_err(o, e))?;
            match b.cursor {
                Cursor::Buffer(Buffer::Payload) => return Err(b.err(o, "a transform needs a sticky buffer")),
                Cursor::Buffer(_) => b.transforms.push(t),
                Cursor::Unsupported => {}
            }
        }
        "xor" | "pcrexform" => {
            // the regex keeps its escapes: only the quotes are removed
            let raw = b.value(o)?.trim();
            let v = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(inner) if kw == "pcrexform" => inner.to_string(),
                _ => maybe_unquote(raw).into_owned(),
            };
            let t = if kw == "xor" { keywords::parse_xor(&v) } else { keywords::parse_pcrexform(&v) }
                .map_err(|e| b.value_err(o, e))?;
            match b.cursor {
                Cursor::Buffer(Buffer::Payload) => return Err(b.err(o, "a transform needs a sticky buffer")),
                Cursor::Buffer(_) => b.transforms.push(t),
                Cursor::Unsupported => {}
            }
        }
        "gunzip" | "zlib_deflate" => {
            let t = keywords::parse_decompress(kw, o.value.as_deref().map(maybe_unquote).as_deref())
                .map_err(|e| b.value_err(o, e))?;
            match b.cursor {
                Cursor::Buffer(Buffer::Payload) => return Err(b.err(o, "a transform needs a sticky buffer")),
                Cursor::Buffer(_) => b.transforms.push(t),
                Cursor::Unsupported => {}
            }
        }
        "byte_jump" => {
            let j = keywords::parse_byte_jump(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            b.push_relative(Item::ByteJump(j));
        }
        "urilen" => {
            if st.urilen.is_some() {
                return Err(b.err(o, "urilen given twice"));
            }
            let v = maybe_unquote(b.value(o)?);
            let (cond, raw) = match v.split_once(',') {
                Some((c, m)) => match m.trim() {
                    "raw" => (c, true),
                    "norm" => (c, false),
                    other => return Err(b.value_err(o, format!("invalid urilen option '{other}' (raw or norm)"))),
                },
                None => (&*v, false),
            };
            st.urilen = Some((IntCond::parse(cond, u16::MAX as u64).map_err(|e| b.value_err(o, e))?, raw));
        }
        "ttl" | "itype" | "icode" | "ip_proto" => {
            let v = maybe_unquote(b.value(o)?);
            let cond = if kw == "ip_proto" {
                match v.trim() {
                    "tcp" => IntCond::Eq(6),
                    "udp" => IntCond::Eq(17),
                    "icmp" => IntCond::Eq(1),
                    "ipv6-icmp" | "icmpv6" => IntCond::Eq(58),
                    "gre" => IntCond::Eq(47),
                    "esp" => IntCond::Eq(50),
                    "sctp" => IntCond::Eq(132),
                    other => keywords::parse_u8_cond(other).map_err(|e| b.value_err(o, e))?,
                }
            } else {
                keywords::parse_u8_cond(&v).map_err(|e| b.value_err(o, e))?
            };
            let slot = match kw {
                "ttl" => &mut st.ttl,
                "itype" => &mut st.itype,
                "icode" => &mut st.icode,
                _ => &mut st.ip_proto,
            };
            if slot.is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
            *slot = Some(cond);
        }
        "app-layer-protocol" => {
            let c = AlprotoCond::parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.alprotos.push(c);
        }
        "app-layer-event" => {
            let v = maybe_unquote(b.value(o)?);
            let name = v.trim();
            let Some(e) = AppEvent::from_name(name) else {
                return Err(b.value_err(o, format!("app-layer event '{name}' not supported yet")));
            };
            st.app_events |= e.bit();
        }
        "stream-event" => {
            // stream events are decoder events named `stream.<event>`
            let v = maybe_unquote(b.value(o)?);
            let name = format!("stream.{}", v.trim());
            let Some(e) = crate::decode::DecodeEvent::from_name(&name) else {
                return Err(b.value_err(o, format!("stream event '{}' not supported yet", v.trim())));
            };
            st.decode_events |= e.bit();
        }
        "decode-event" => {
            let v = maybe_unquote(b.value(o)?);
            let name = v.trim();
            let Some(e) = crate::decode::DecodeEvent::from_name(name) else {
                return Err(b.value_err(o, format!("decoder event '{name}' not supported yet")));
            };
            st.decode_events |= e.bit();
        }
        "dcerpc.iface" | "dce_iface" => {
            let c = super::dce::parse_iface(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            if st.dce.get_or_insert_with(Default::default).iface.replace(c).is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
        }
        "dcerpc.opnum" | "dce_opnum" => {
            let c = super::dce::parse_opnums(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            if st.dce.get_or_insert_with(Default::default).opnums.replace(c).is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
        }
        "krb5.ticket_encryption" => {
            let v = maybe_unquote(b.value(o)?);
            let v = v.trim();
            let (k, cond) = match v.strip_prefix('!').map(str::trim).unwrap_or(v) {
                "weak" => (AppInt::Krb5TicketWeak, IntCond::Eq(u64::from(!v.starts_with('!')))),
                _ => (AppInt::Krb5TicketEtype, AppInt::Krb5TicketEtype.parse(v).map_err(|e| b.value_err(o, e))?),
            };
            st.app_ints.push((k, cond));
        }
        "ftpbounce" => {
            b.no_value(o)?;
            st.app_ints.push((AppInt::FtpBounce, IntCond::Eq(1)));
        }
        "ftpdata_command" => {
            let v = maybe_unquote(b.value(o)?);
            let Some(c) = crate::app::ftp::DataCmd::from_name(&v) else {
                return Err(b.value_err(o, format!("'{}': expected stor, retr, stou, appe, list or nlst", v.trim())));
            };
            st.app_ints.push((AppInt::FtpdataCommand, IntCond::Eq(c.code())));
        }
        "filestore" | "filemagic" => {
            let reason = if kw == "filestore" {
                "not supported: the sensor inspects files but does not store them"
            } else {
                "not supported: no file type (libmagic) detection"
            };
            b.unsupported.push(b.err(o, reason));
        }
        "filesize" => {
            let cond = AppInt::FileSize.parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.app_ints.push((AppInt::FileSize, cond));
        }
        "filemd5" | "filesha1" | "filesha256" => {
            // the digest of each complete file looked up in the hash list (one hex digest a
            // line, `!` before the file name: not in the list), read relative to the rule file
            let (buffer, len) = match kw {
                "filemd5" => (Buffer::FileMd5, 16),
                "filesha1" => (Buffer::FileSha1, 20),
                _ => (Buffer::FileSha256, 32),
            };
            let v = maybe_unquote(b.value(o)?);
            let (negated, name) = match v.trim().strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, v.trim()),
            };
            let dir =
                std::path::Path::new(&*b.rule.file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let path = dir.join(name);
            let values = crate::app::file::load_hash_list(&path, len).map_err(|e| b.value_err(o, e))?;
            let set = super::dataset::Dataset::from_values(format!("{kw}:{}", path.display()), values);
            use super::dataset::DatasetCmd;
            let m = super::dataset::DatasetMatch {
                kind: super::dataset::DataType::String,
                cmd: Some(if negated { DatasetCmd::IsNotSet } else { DatasetCmd::IsSet }),
                rep: None,
                subdomain: false,
                context_key: None,
                set: std::sync::Arc::new(set),
                save: None,
            };
            let li = b.list_mut(buffer);
            b.lists[li].items.push(Item::Dataset(m));
        }
        "krb5_msg_type"
        | "krb5_err_code"
        | "snmp.version"
        | "snmp.pdu_type"
        | "snmp.trap_type"
        | "mqtt.type"
        | "mqtt.flags"
        | "mqtt.qos"
        | "mqtt.reason_code"
        | "mqtt.connack.return_code"
        | "mqtt.protocol_version"
        | "mqtt.connect.flags"
        | "dnp3_func"
        | "dnp3.func"
        | "dnp3_obj"
        | "dnp3.obj"
        | "ldap.request.operation"
        | "ldap.responses.count"
        | "enip_command"
        | "enip.command"
        | "cip_service" => {
            let Some(k) = AppInt::from_keyword(kw) else { return Err(b.err(o, NOT_SUPPORTED)) };
            let cond = k.parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.app_ints.push((k, cond));
        }
        "ldap.responses.operation" => {
            let v = maybe_unquote(b.value(o)?);
            let (k, v) = crate::app::ldap::responses_operation(&v).map_err(|e| b.value_err(o, e))?;
            st.app_ints.push((k, IntCond::Eq(v)));
        }
        "ntp.version" | "ntp.stratum" | "ntp.mode" | "dns.rcode" | "smb.version" | "http2.frametype"
        | "http2.errorcode" | "http2.priority" | "http2.window" | "http2.size_update" | "http2.settings"
        | "tls.cert_chain_len" | "websocket.opcode" | "websocket.mask" | "websocket.flags" => {
            let Some(k) = AppInt::from_keyword(kw) else { return Err(b.err(o, NOT_SUPPORTED)) };
            let cond = k.parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.app_ints.push((k, cond));
        }
        "icmpv6.mtu" => {
            let cond = IntCond::parse(&maybe_unquote(b.value(o)?), u32::MAX as u64).map_err(|e| b.value_err(o, e))?;
            if st.icmpv6_mtu.replace(cond).is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
        }
        "icmp_id" | "icmp_seq" => {
            let cond = IntCond::parse(&maybe_unquote(b.value(o)?), u16::MAX as u64).map_err(|e| b.value_err(o, e))?;
            let slot = if kw == "icmp_id" { &mut st.icmp_id } else { &mut st.icmp_seq };
            if slot.is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
            *slot = Some(cond);
        }
        "tls.fingerprint" | "tls.subject" | "tls.issuerdn" => {
            // legacy value keywords: the fingerprint compared whole and without case, the
            // subject and issuer searched for the value (`!` negates)
            let (negated, pattern) = parse_content_value(b.value(o)?).map_err(|e| b.value_err(o, e))?;
            let buffer = match kw {
                "tls.fingerprint" => Buffer::TlsCertFingerprint,
                "tls.subject" => Buffer::TlsCertSubject,
                _ => Buffer::TlsCertIssuer,
            };
            let mut c = ContentMatch::new(pattern, negated);
            if kw == "tls.fingerprint" {
                c.set_nocase();
                c.startswith = true;
                c.endswith = true;
            }
            let li = b.list_mut(buffer);
            b.lists[li].items.push(Item::Content(c));
        }
        "flow.pkts"
        | "flow.bytes"
        | "flow.pkts_toserver"
        | "flow.pkts_toclient"
        | "flow.bytes_toserver"
        | "flow.bytes_toclient" => {
            let v = maybe_unquote(b.value(o)?);
            let (kind, fixed) = kw.split_once('_').map_or((kw, None), |(k, d)| (k, Some(d)));
            let (side, cond) = match fixed {
                Some(d) => (d, &*v),
                None => v
                    .split_once(',')
                    .map(|(d, c)| (d.trim(), c))
                    .ok_or_else(|| b.value_err(o, "expected '<toserver|toclient|either>,<number or comparison>'"))?,
            };
            let side = match side {
                "toserver" => CountSide::ToServer,
                "toclient" => CountSide::ToClient,
                "either" => CountSide::Either,
                other => {
                    return Err(b.value_err(o, format!("invalid direction '{other}' (toserver, toclient, either)")));
                }
            };
            let cond = IntCond::parse(cond, u64::MAX).map_err(|e| b.value_err(o, e))?;
            st.flow_counts.push(FlowCount { bytes: kind == "flow.bytes", side, cond });
        }
        "stream_size" => {
            if st.stream_size.is_some() {
                return Err(b.err(o, "stream_size given twice"));
            }
            let v = maybe_unquote(b.value(o)?);
            let parts: Vec<&str> = v.split(',').map(str::trim).collect();
            let [side, op, n] = parts[..] else {
                return Err(b.value_err(o, "expected '<server|client|both|either>,<op>,<number>'"));
            };
            let side = match side {
                "server" => StreamSide::Server,
                "client" => StreamSide::Client,
                "both" => StreamSide::Both,
                "either" => StreamSide::Either,
                other => return Err(b.value_err(o, format!("invalid side '{other}' (server, client, both, either)"))),
            };
            if !matches!(op, "<" | "<=" | ">" | ">=" | "=" | "!=") {
                return Err(b.value_err(o, format!("invalid operator '{op}'")));
            }
            let cond = IntCond::parse(&format!("{op}{n}"), u32::MAX as u64).map_err(|e| b.value_err(o, e))?;
            st.stream_size = Some((side, cond));
        }
        "alert" => {
            b.no_value(o)?;
            st.alert = true;
        }
        "prefilter" => {
            // which keyword feeds the prefilter: a performance hint, no effect on what matches
            b.no_value(o)?;
        }
        "requires" => {
            if let Err(unmet) = requirements_met(&maybe_unquote(b.value(o)?)) {
                return Err(b.value_err(o, unmet));
            }
        }
        "flags" | "tcp.flags" => {
            if st.tcp_flags.is_some() {
                return Err(b.err(o, "flags given twice"));
            }
            st.tcp_flags = Some(keywords::parse_flags(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?);
        }
        "seq" | "ack" => {
            // Suricata's `seq:<n>` / `ack:<n>`: an exact 32-bit value
            let v = maybe_unquote(b.value(o)?);
            let n =
                v.trim().parse::<u32>().map_err(|_| b.value_err(o, format!("invalid {kw} value '{}'", v.trim())))?;
            let slot = if kw == "seq" { &mut st.tcp_seq } else { &mut st.tcp_ack };
            if slot.replace(n).is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
        }
        "sameip" => {
            b.no_value(o)?;
            st.sameip = true;
        }
        "tag" => {
            let t = crate::tag::TagSpec::parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            if st.tag.replace(t).is_some() {
                return Err(b.err(o, "tag given twice"));
            }
        }
        "iprep" => {
            let c = super::iprep::IpRepCond::parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.host_conds.get_or_insert_default().iprep.push(c);
        }
        "geoip" => {
            let c = super::iprep::GeoipCond::parse(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?;
            st.host_conds.get_or_insert_default().geoip.push(c);
        }
        "noalert" => {
            b.no_value(o)?;
            st.noalert = true;
        }
        "flowbits" => match keywords::parse_flowbits(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))? {
            None => st.noalert = true,
            Some(op) => st.flowbits.push(op),
        },
        "flowint" => {
            st.flowints.push(keywords::parse_flowint(&maybe_unquote(b.value(o)?)).map_err(|e| b.value_err(o, e))?);
        }
        "xbits" | "hostbits" => {
            let v = maybe_unquote(b.value(o)?);
            let op = if kw == "xbits" { keywords::parse_xbits(&v) } else { keywords::parse_hostbits(&v) };
            match op.map_err(|e| b.value_err(o, e))? {
                None => st.noalert = true,
                Some(op) => st.xbits.push(op),
            }
        }
        "threshold" | "detection_filter" => {
            let t = keywords::parse_threshold(&maybe_unquote(b.value(o)?), kw == "detection_filter")
                .map_err(|e| b.value_err(o, e))?;
            let slot = if kw == "threshold" { &mut st.threshold } else { &mut st.detection_filter };
            if slot.is_some() {
                return Err(b.err(o, format!("{kw} given twice")));
            }
            *slot = Some(t);
        }
        _ if keywords::Transform::from_keyword(kw).is_some() => {
            b.no_value(o)?;
            let Some(t) = keywords::Transform::from_keyword(kw) else { return Ok(()) };
            match b.cursor {
                Cursor::Buffer(Buffer::Payload) => return Err(b.err(o, "a transform needs a sticky buffer")),
                Cursor::Buffer(_) => b.transforms.push(t),
                Cursor::Unsupported => {}
            }
        }
        _ => {
            b.unsupported.push(b.err(o, NOT_SUPPORTED));
            if o.value.is_none() {
                // most likely an unsupported sticky buffer: keep what follows out of the lists
                let _ = b.close_sticky();
                b.cursor = Cursor::Unsupported;
            }
        }
    }
    Ok(())
}

fn parse_pcre(b: &Builder<'_>, o: &RuleOption) -> Res<(PcreMatch, Option<Buffer>)> {
    let raw = b.value(o)?.trim();
    let (negated, rest) = match raw.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, raw),
    };
    let body =
        if rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"') { &rest[1..rest.len() - 1] } else { rest };
    let body = body.trim();
    let err = |r: String| b.value_err(o, r);
    if !body.starts_with('/') {
        return Err(err("expected \"/regex/flags\"".to_string()));
    }
    let last = body.rfind('/').filter(|&l| l > 0).ok_or_else(|| err("expected \"/regex/flags\"".to_string()))?;
    let pattern = &body[1..last];
    let flag_text = &body[last + 1..];
    if flag_text.contains(',') {
        return Err(err("pcre capture extraction (flow:/pkt:/alert: variables) not supported yet".to_string()));
    }
    let mut flags = PcreFlags::default();
    let mut relative = false;
    let mut buffer: Option<Buffer> = None;
    for f in flag_text.trim().chars() {
        let buf = match f {
            'i' => {
                flags.caseless = true;
                None
            }
            's' => {
                flags.dotall = true;
                None
            }
            'm' => {
                flags.multiline = true;
                None
            }
            'x' => {
                flags.extended = true;
                None
            }
            'A' => {
                flags.anchored = true;
                None
            }
            'E' => {
                flags.dollar_endonly = true;
                None
            }
            'G' => {
                flags.ungreedy = true;
                None
            }
            'R' => {
                relative = true;
                None
            }
            'B' | 'O' => None,
            'U' => Some(Buffer::HttpUri),
            'M' => Some(Buffer::HttpMethod),
            'H' => Some(Buffer::HttpHeader),
            'C' => Some(Buffer::HttpCookie),
            'P' => Some(Buffer::HttpRequestBody),
            'S' => Some(Buffer::HttpStatCode),
            'V' => Some(Buffer::HttpUserAgent),
            'W' => Some(Buffer::HttpHost),
            'I' => Some(Buffer::HttpUriRaw),
            'Q' => Some(Buffer::HttpResponseBody),
            'D' => Some(Buffer::HttpHeaderRaw),
            'Y' => Some(Buffer::HttpStatMsg),
            other => return Err(err(format!("unknown pcre modifier '{other}'"))),
        };
        if let Some(x) = buf {
            if buffer.is_some_and(|y| y != x) {
                return Err(err("more than one pcre buffer modifier".to_string()));
            }
            buffer = Some(x);
        }
    }
    let regex = compile_pcre(b.strings, pattern, flags).map_err(|e| err(format!("pcre: {e}")))?;
    Ok((PcreMatch { regex, negated, relative, relative_next: false, source: body.to_string() }, buffer))
}

/// [`pcre::compile`], each distinct pattern and flags once per detector when `strings` is given.
fn compile_pcre(
    strings: Option<&std::sync::Mutex<Interner>>,
    pattern: &str,
    flags: pcre::PcreFlags,
) -> Result<pcre::PcreRegex, String> {
    let Some(strings) = strings else { return pcre::compile(pattern, flags) };
    let lock = || strings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = lock().pcres.get(pattern, flags) {
        return r;
    }
    // compiled unlocked: the other thread may compile the same pattern meanwhile (the first
    // one recorded is kept, the same outcome)
    let r = pcre::compile(pattern, flags);
    lock().pcres.insert(pattern, flags, &r);
    r
}

#[derive(Default)]
struct MetaState<'a> {
    msg: Option<std::borrow::Cow<'a, str>>,
    sid: Option<u32>,
    gid: Option<u32>,
    rev: Option<u32>,
    classtype: Option<(std::borrow::Cow<'a, str>, &'a RuleOption)>,
    priority: Option<u8>,
    references: Vec<(String, String)>,
    metadata: BTreeMap<&'a str, Vec<&'a str>>,
    target: Option<Target>,
    flow: FlowCond,
    flow_seen: bool,
    dsize: Option<IntCond>,
    urilen: Option<(IntCond, bool)>,
    ttl: Option<IntCond>,
    itype: Option<IntCond>,
    icode: Option<IntCond>,
    icmp_id: Option<IntCond>,
    icmp_seq: Option<IntCond>,
    icmpv6_mtu: Option<IntCond>,
    ip_proto: Option<IntCond>,
    tcp_flags: Option<TcpFlags>,
    tcp_seq: Option<u32>,
    tcp_ack: Option<u32>,
    sameip: bool,
    host_conds: Option<Box<super::iprep::HostConds>>,
    tag: Option<crate::tag::TagSpec>,
    stream_size: Option<(StreamSide, IntCond)>,
    flow_counts: Vec<FlowCount>,
    app_ints: Vec<(AppInt, IntCond)>,
    dce: Option<super::dce::DceCond>,
    decode_events: u64,
    app_events: u64,
    alprotos: Vec<AlprotoCond>,
    alert: bool,
    flowbits: Vec<FlowbitOp>,
    flowints: Vec<FlowintOp>,
    xbits: Vec<XbitOp>,
    noalert: bool,
    threshold: Option<Threshold>,
    detection_filter: Option<Threshold>,
    base64_decode: bool,
}

/// Compiles one parsed rule. On failure returns every unsupported keyword of the rule, or the
/// first other error.
pub fn compile_rule(rule: &ParsedRule, classes: &Classifications) -> Result<CompiledRule, Vec<RuleError>> {
    compile_rule_in(rule, classes, None)
}

/// [`compile_rule`] with the metadata entries, classtype and category strings taken from (or
/// added to) `strings`, which the threads compiling one detector's rules share.
pub(crate) fn compile_rule_in(
    rule: &ParsedRule,
    classes: &Classifications,
    strings: Option<&std::sync::Mutex<Interner>>,
) -> Result<CompiledRule, Vec<RuleError>> {
    let mut b = Builder {
        rule,
        unsupported: Vec::new(),
        lists: Vec::new(),
        transforms: Vec::new(),
        junk: Vec::new(),
        cursor: Cursor::Buffer(Buffer::Payload),
        last_content: None,
        sticky_open: None,
        fast_pattern_seen: false,
        byte_vars: Vec::new(),
        new_list: None,
        strings,
    };
    let mut st = MetaState::default();
    let header_err = |reason: String| vec![rule.error(rule.line(), rule.proto_column, None, reason)];
    let proto = match RuleProto::from_name(&rule.proto) {
        Some(p) => p,
        None => {
            let reason = match rule.proto.as_str() {
                "ether" | "arp" | "igmp" | "llmnr" | "ike" | "sdp" => {
                    format!("protocol '{}' not supported yet", rule.proto)
                }
                _ => format!("unknown protocol '{}'", rule.proto),
            };
            return Err(header_err(reason));
        }
    };
    for o in &rule.options {
        if let Err(e) = apply_option(&mut b, o, &mut st) {
            // an unsupported keyword already rejects the rule; report those, plus this error
            // only when it is not a consequence of them
            let mut errs = std::mem::take(&mut b.unsupported);
            if errs.is_empty() || !matches!(b.cursor, Cursor::Unsupported) {
                errs.push(e);
            }
            return Err(errs);
        }
    }
    if let Err(e) = b.close_sticky() {
        let mut errs = std::mem::take(&mut b.unsupported);
        errs.push(e);
        return Err(errs);
    }
    if !b.unsupported.is_empty() {
        return Err(b.unsupported);
    }
    let rule_err = |kw: Option<&str>, reason: String| vec![rule.error(rule.line(), 1, kw, reason)];
    let Some(sid) = st.sid else {
        return Err(rule_err(Some("sid"), "rule has no sid".to_string()));
    };

    // classification
    let (classtype, category, class_prio) = match &st.classtype {
        None => (None, None, None),
        Some((name, o)) => {
            if classes.is_empty() {
                (Some(Arc::<str>::from(&**name)), None, None)
            } else {
                match classes.get(name) {
                    Some(c) => (
                        Some(Arc::<str>::from(&**name)),
                        Some(Arc::<str>::from(c.description.as_str())),
                        Some(c.priority),
                    ),
                    None => {
                        return Err(vec![b.value_err(o, format!("unknown classtype '{name}'"))]);
                    }
                }
            }
        }
    };

    let mut lists = std::mem::take(&mut b.lists);
    lists.retain(|l| !l.items.is_empty() || l.bsize.is_some() || l.absent.is_some());
    // finish contents: absolute depth, startswith; relative links
    for BufferList { buffer: buf, items, transforms, .. } in lists.iter_mut() {
        let buf = &*buf;
        let lowercased = transforms.iter().rev().find_map(|t| match t {
            Transform::ToLowercase => Some(true),
            Transform::ToUppercase | Transform::ToMd5 | Transform::ToSha1 | Transform::ToSha256 => Some(false),
            Transform::Gunzip { .. } | Transform::ZlibDeflate { .. } => Some(false),
            _ => None,
        });
        for it in items.iter_mut() {
            if let Item::Content(c) = it {
                if c.startswith {
                    c.offset = 0;
                    c.depth = Some(c.pattern.len() as u32);
                } else if let Some(d) = c.depth_raw {
                    c.depth = Some(d.saturating_add(c.offset));
                }
                if *buf == Buffer::HttpHost && lowercased.is_none() || lowercased == Some(true) {
                    if c.nocase {
                        return Err(rule_err(
                            Some("nocase"),
                            "http.host is normalized to lowercase: nocase is not allowed, use a lowercase pattern"
                                .to_string(),
                        ));
                    }
                    if c.pattern.iter().any(u8::is_ascii_uppercase) {
                        return Err(rule_err(
                            Some("content"),
                            "http.host is normalized to lowercase: the pattern has uppercase characters".to_string(),
                        ));
                    }
                }
            }
        }
        for i in 1..items.len() {
            let (rel, within) = match &items[i] {
                Item::Content(c) => (c.is_relative(), c.within.is_some()),
                Item::Pcre(p) => (p.relative, p.relative),
                other => (other.is_relative(), false),
            };
            if !rel {
                continue;
            }
            match &mut items[i - 1] {
                Item::Content(prev) => {
                    prev.relative_next = true;
                    prev.within_next |= within;
                }
                Item::Pcre(prev) => prev.relative_next = true,
                _ => {}
            }
        }
    }

    // application protocol and direction
    let mut app_proto = match proto {
        RuleProto::App(a) => Some(a),
        RuleProto::Http1 => Some(AppProto::Http),
        _ => None,
    };
    let mut direction = st.flow.direction;
    let mut buf_dir: Option<(Direction, Buffer)> = None;
    let mut used: Vec<Buffer> = lists.iter().map(|l| l.buffer).collect();
    if let Some((_, raw)) = st.urilen {
        used.push(if raw { Buffer::HttpUriRaw } else { Buffer::HttpUri });
    }
    for buf in &used {
        // `ja4.hash` is filled by the TLS parser and for QUIC rules by the QUIC one
        let carrier = match (buf, proto) {
            (Buffer::Ja4Hash, RuleProto::App(AppProto::Quic)) => Some(AppProto::Quic),
            _ => buf.app_proto(),
        };
        if let Some(a) = carrier {
            if !proto.can_carry(a) {
                return Err(header_err(format!(
                    "{} needs protocol {}, the rule's protocol is '{}'",
                    buf.name(),
                    a.name(),
                    rule.proto
                )));
            }
            match app_proto {
                Some(x) if x != a && !(a == AppProto::Http && x == AppProto::Http2) && !app_carries(x, a) => {
                    return Err(header_err(format!(
                        "{} needs protocol {}, the rule also uses {}",
                        buf.name(),
                        a.name(),
                        x.name()
                    )));
                }
                Some(_) => {}
                None => app_proto = Some(a),
            }
        }
        if let Some(d) = buf.direction()
            && !rule.transactional
        {
            match buf_dir {
                Some((d0, b0)) if d0 != d => {
                    return Err(rule_err(
                        Some(buf.name()),
                        format!(
                            "mixes request ({}) and response ({}) buffers: needs transaction state, not supported yet",
                            if d0 == Direction::ToServer { b0.name() } else { buf.name() },
                            if d0 == Direction::ToServer { buf.name() } else { b0.name() }
                        ),
                    ));
                }
                _ => buf_dir = Some((d, *buf)),
            }
        }
    }
    let event_protos = AppEvent::ALL.iter().filter(|e| st.app_events & e.bit() != 0).map(|e| (e.name(), e.app_proto()));
    let int_protos =
        st.app_ints.iter().filter(|(k, _)| *k != AppInt::FileSize).map(|(k, _)| (k.keyword(), k.app_proto()));
    for (keyword, a) in int_protos.chain(event_protos) {
        if !proto.can_carry(a) || app_proto.is_some_and(|x| x != a && !app_carries(x, a)) {
            return Err(header_err(format!(
                "{} needs protocol {}, the rule's protocol is '{}'",
                keyword,
                a.name(),
                app_proto.map_or(rule.proto.as_str(), |x| x.name())
            )));
        }
        if !app_proto.is_some_and(|x| app_carries(x, a)) {
            app_proto = Some(a);
        }
    }
    // a transactional rule is inspected on a whole transaction: only TLS handshakes are
    // inspected that way yet
    if rule.transactional && app_proto != Some(AppProto::Tls) {
        return Err(header_err(format!(
            "transactional rules ('=>') of protocol '{}' not supported yet (tls only)",
            app_proto.map_or(rule.proto.as_str(), |x| x.name())
        )));
    }
    if let Some((d, buf)) = buf_dir {
        match direction {
            Some(fd) if fd != d => {
                return Err(rule_err(
                    Some("flow"),
                    format!(
                        "flow direction conflicts with {} (only seen {})",
                        buf.name(),
                        if d == Direction::ToServer { "to_server" } else { "to_client" }
                    ),
                ));
            }
            _ => direction = Some(d),
        }
    }

    // fast pattern: the one marked, else the strongest positive content
    type Candidate = (u8, usize, u32, Buffer, Vec<Transform>, Vec<u8>);
    let mut best: Option<Candidate> = None;
    let mut explicit: Option<Option<FastPattern>> = None;
    // base64_data exists only during inspection: never a prefilter buffer
    for BufferList { buffer: buf, items, transforms, .. } in lists.iter().filter(|l| !l.buffer.is_virtual()) {
        for it in items {
            let Item::Content(c) = it else { continue };
            let bytes = match c.fp_chop {
                Some((x, y)) => c.pattern[x..x + y].to_vec(),
                None => c.pattern.clone(),
            };
            if c.fast_pattern {
                explicit = Some(if c.negated {
                    None
                } else {
                    Some(FastPattern { buffer: *buf, transforms: transforms.clone(), bytes })
                });
                continue;
            }
            if c.negated {
                continue;
            }
            let key = (buf.fp_priority(), c.pattern.len(), pattern_strength(&c.pattern));
            if best.as_ref().is_none_or(|b| (b.0, b.1, b.2) < key) {
                best = Some((key.0, key.1, key.2, *buf, transforms.clone(), bytes));
            }
        }
    }
    let fast_pattern = match explicit {
        Some(fp) => fp,
        None => best.map(|(_, _, _, buffer, transforms, bytes)| FastPattern { buffer, transforms, bytes }),
    };

    let http1_only = proto == RuleProto::Http1;
    // the rule lives as long as the detector: no spare capacity from building it
    for l in lists.iter_mut() {
        l.items.shrink_to_fit();
        l.transforms.shrink_to_fit();
    }
    lists.shrink_to_fit();
    let mut references = st.references;
    references.shrink_to_fit();
    // shared across rules with `strings` (else [`super::matcher::DetectorBuilder`] shares them)
    let mut strings = strings.map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let metadata = match strings.as_deref_mut() {
        Some(s) => RuleMetadata::interned_from(&st.metadata, s),
        None => RuleMetadata::new(st.metadata),
    };
    let (classtype, category) = match strings.as_deref_mut() {
        Some(s) => (classtype.as_deref().map(|c| s.intern(c)), category.as_deref().map(|c| s.intern(c))),
        None => (classtype, category),
    };
    drop(strings);
    let (mut flow_counts, mut app_ints) = (st.flow_counts, st.app_ints);
    flow_counts.shrink_to_fit();
    app_ints.shrink_to_fit();
    let (mut flowbits, mut flowints, mut xbits) = (st.flowbits, st.flowints, st.xbits);
    flowbits.shrink_to_fit();
    flowints.shrink_to_fit();
    xbits.shrink_to_fit();
    Ok(CompiledRule {
        meta: RuleMeta {
            action: rule.action,
            sid,
            gid: st.gid.unwrap_or(1),
            rev: st.rev.unwrap_or(0),
            msg: Arc::from(st.msg.as_deref().unwrap_or("")),
            classtype,
            category,
            priority: st.priority.or(class_prio).unwrap_or(3),
            references,
            metadata: Arc::new(metadata),
            target: st.target,
            alert: st.alert,
        },
        proto,
        src: rule.src.clone(),
        src_ports: rule.src_ports.clone(),
        dst: rule.dst.clone(),
        dst_ports: rule.dst_ports.clone(),
        bidirectional: rule.bidirectional,
        flow: st.flow,
        dsize: st.dsize,
        urilen: st.urilen,
        ttl: st.ttl,
        itype: st.itype,
        icode: st.icode,
        icmp_id: st.icmp_id,
        icmp_seq: st.icmp_seq,
        icmpv6_mtu: st.icmpv6_mtu,
        ip_proto: st.ip_proto,
        tcp_flags: st.tcp_flags,
        tcp_seq: st.tcp_seq,
        tcp_ack: st.tcp_ack,
        sameip: st.sameip,
        host_conds: st.host_conds,
        tag: st.tag,
        stream_size: st.stream_size,
        flow_counts,
        app_ints,
        dce: st.dce.map(Box::new),
        decode_events: st.decode_events,
        app_events: st.app_events,
        alproto: (!st.alprotos.is_empty())
            .then(|| Box::new(AlprotoRule { conds: st.alprotos, pd_only: alproto_only(&rule.options) })),
        flow_start: rule.flow_start,
        drop_scope: rule.drop_scope,
        tx_hook: rule.tx_hook,
        transactional: rule.transactional,
        flowbits,
        flowints,
        xbits,
        noalert: st.noalert,
        threshold: st.threshold,
        detection_filter: st.detection_filter,
        app_proto,
        http1_only,
        direction,
        lists,
        fast_pattern,
        file: rule.file.clone(),
        line: rule.line(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Vars, parse_rules};
    use super::*;

    #[test]
    fn http2_settings_conditions_compare_the_value_of_one_setting() {
        let id = |i: u64, v: u64| (i << 32) | v;
        let c = http2_settings_cond("SETTINGS_HEADER_TABLE_SIZE>4096").unwrap_or(IntCond::Eq(0));
        assert!(c.matches(id(1, 8192)) && !c.matches(id(1, 4096)) && !c.matches(id(2, 8192)));
        let c = http2_settings_cond("SETTINGS_ENABLE_PUSH=0").unwrap_or(IntCond::Eq(1));
        assert!(c.matches(id(2, 0)) && !c.matches(id(2, 1)));
        let c = http2_settings_cond("SETTINGS_MAX_FRAME_SIZE").unwrap_or(IntCond::Eq(0));
        assert!(c.matches(id(5, 0)) && c.matches(id(5, u32::MAX as u64)) && !c.matches(id(6, 0)));
        let c = http2_settings_cond("SETTINGS_INITIAL_WINDOW_SIZE<10").unwrap_or(IntCond::Eq(0));
        assert!(c.matches(id(4, 9)) && !c.matches(id(4, 10)) && !c.matches(id(3, 5)));
        assert!(http2_settings_cond("SETTINGS_NOPE=1").is_err());
        assert!(http2_settings_cond("SETTINGS_ENABLE_PUSH!=1").is_err());
    }

    fn compile_one(text: &str) -> Result<CompiledRule, Vec<RuleError>> {
        let parsed = parse_rules(text, "t.rules", &Vars::default()).remove(0).map_err(|e| vec![e])?;
        compile_rule(&parsed, &Classifications::new())
    }

    fn content(r: &CompiledRule, list: usize, item: usize) -> &ContentMatch {
        match &r.lists[list].items[item] {
            Item::Content(c) => c,
            _ => panic!("not a content"),
        }
    }

    #[test]
    fn content_value_parsing() {
        assert_eq!(parse_content_value(r#""a|0D 0a|b""#).unwrap(), (false, b"a\r\nb".to_vec()));
        assert_eq!(parse_content_value(r#"!"|61 62|c""#).unwrap(), (true, b"abc".to_vec()));
        assert_eq!(parse_content_value(r#""a\;b\"c\\d\:e""#).unwrap(), (false, b"a;b\"c\\d:e".to_vec()));
        assert!(parse_content_value(r#""|0|""#).unwrap_err().contains("odd number"));
        assert!(parse_content_value(r#""|0G|""#).unwrap_err().contains("invalid character"));
        assert!(parse_content_value(r#""|00""#).unwrap_err().contains("unterminated"));
        assert!(parse_content_value(r#""a\nb""#).unwrap_err().contains("invalid escape"));
        assert!(parse_content_value("abc").unwrap_err().contains("double-quoted"));
        assert!(parse_content_value(r#""""#).is_err());
    }

    #[test]
    fn modifiers_and_links() {
        let r = compile_one(
            r#"alert tcp any any -> any any (content:"abc"; offset:2; depth:5; content:"de"; distance:1; within:4; pcre:"/x/R"; content:"z"; distance:0; sid:1;)"#,
        )
        .unwrap();
        let a = content(&r, 0, 0);
        assert_eq!((a.offset, a.depth), (2, Some(7)));
        assert!(a.relative_next && a.within_next && !a.is_single());
        let d = content(&r, 0, 1);
        assert!(d.relative_next && d.within_next, "a /R pcre next counts as within");
        match &r.lists[0].items[2] {
            Item::Pcre(p) => assert!(p.relative && p.relative_next),
            _ => panic!(),
        }
        let r = compile_one(r#"alert tcp any any -> any any (content:"ab"; content:"c"; distance:0; sid:1;)"#).unwrap();
        let a = content(&r, 0, 0);
        assert!(a.relative_next && !a.within_next);
        let r = compile_one(r#"alert tcp any any -> any any (content:"GET "; startswith; sid:1;)"#).unwrap();
        assert_eq!((content(&r, 0, 0).offset, content(&r, 0, 0).depth), (0, Some(4)));
    }

    #[test]
    fn invalid_combinations() {
        for (rule, want) in [
            (r#"content:"abc"; depth:2;"#, "smaller than the content length"),
            (r#"content:"abc"; distance:0; within:2;"#, "less than the content length"),
            (r#"content:"abc"; offset:1; distance:0;"#, "relative keyword"),
            (r#"content:"abc"; distance:0; depth:5;"#, "relative keyword"),
            (r#"content:"abc"; startswith; offset:1;"#, "startswith"),
            (r#"content:"abc"; nocase; nocase;"#, "twice"),
            (r#"nocase;"#, "needs a preceding content"),
            (r#"content:"a"; fast_pattern; content:"b"; fast_pattern;"#, "once per rule"),
            (r#"content:"abc"; fast_pattern:2,5;"#, "outside the content"),
            (r#"http.uri; content:"a"; http_uri;"#, "already in the http.uri buffer"),
            (r#"http.host; content:"Evil.com";"#, "uppercase"),
            (r#"http.host; content:"evil.com"; nocase;"#, "nocase is not allowed"),
            (r#"http.uri; pcre:"/a/H";"#, "while the sticky buffer http.uri"),
            (r#"http.uri;"#, "not followed by a content"),
            (r#"flow:to_client; http.uri; content:"a";"#, "conflicts"),
            (r#"http.uri; content:"a"; http.stat_code; content:"200";"#, "mixes request"),
            (r#"content:"a"; distance:x;"#, "byte_extract"),
            (r#"flow:established,not_established;"#, "established"),
            (r#"flow:only_stream;"#, "only_stream"),
            (r#"dsize:70000;"#, "maximum"),
            (r#"msg:"no sid";"#, "no sid"),
            (r#"pcre:"/a/Z";"#, "unknown pcre modifier"),
            (r#"pcre:"/(?R)/";"#, "recursion"),
            (r#"pcre:"/a/i, flow:x";"#, "capture extraction"),
            (r#"target:both;"#, "invalid target"),
        ] {
            let text = format!("alert tcp any any -> any any ({rule} sid:1;)").replace("sid:1; sid:1;", "sid:1;");
            let text = if want == "no sid" { format!("alert tcp any any -> any any ({rule})") } else { text };
            let errs = compile_one(&text).unwrap_err();
            assert!(errs.iter().any(|e| e.reason.contains(want)), "{rule}: {errs:?}");
        }
        let errs = compile_one(r#"alert dns any any -> any any (http.uri; content:"a"; sid:1;)"#).unwrap_err();
        assert!(errs[0].reason.contains("needs protocol http"), "{errs:?}");
        let errs = compile_one(r#"alert udp any any -> any any (tls.sni; content:"a"; sid:1;)"#).unwrap_err();
        assert!(errs[0].reason.contains("needs protocol tls"), "{errs:?}");
        let errs = compile_one(r#"alert foo any any -> any any (sid:1;)"#).unwrap_err();
        assert_eq!((errs[0].column, errs[0].reason.as_str()), (7, "unknown protocol 'foo'"));
    }

    #[test]
    fn unsupported_keywords_are_all_named() {
        let text = "alert http any any -> any any (msg:\"x\"; flow:established,to_server; lua:foo.lua; \
                    http.uri; content:\"/a\"; asn1:bitstring_overflow; rfb.name; content:\"b\"; nocase; sid:1;)";
        let errs = compile_one(text).unwrap_err();
        let kws: Vec<&str> = errs.iter().map(|e| e.keyword.as_deref().unwrap()).collect();
        assert_eq!(kws, ["lua", "asn1", "rfb.name"]);
        assert!(errs.iter().all(|e| e.reason == NOT_SUPPORTED && e.line == 1));
        assert_eq!(errs[0].column, text.find("lua").unwrap() + 1);
    }

    #[test]
    fn buffers_protocol_and_direction() {
        let r =
            compile_one(r#"alert tcp any any -> any any (content:"GET"; http_method; content:"/x"; http_uri; sid:1;)"#)
                .unwrap();
        let bufs: Vec<Buffer> = r.lists.iter().map(|l| l.buffer).collect();
        assert_eq!(bufs, [Buffer::HttpMethod, Buffer::HttpUri]);
        assert_eq!((r.app_proto, r.direction), (Some(AppProto::Http), Some(Direction::ToServer)));
        assert_eq!(
            r.fast_pattern,
            Some(FastPattern { buffer: Buffer::HttpUri, transforms: Vec::new(), bytes: b"/x".to_vec() })
        );
        let r = compile_one(r#"alert http any any -> any any (http.stat_code; content:"404"; sid:1;)"#).unwrap();
        assert_eq!(r.direction, Some(Direction::ToClient));
        let r = compile_one(
            r#"alert tcp any any -> any any (content:"aaaa"; content:"xyz"; fast_pattern; pcre:"/a/U"; sid:1;)"#,
        )
        .unwrap();
        assert_eq!(r.fast_pattern.as_ref().unwrap().bytes, b"xyz");
        assert_eq!(r.lists[1].buffer, Buffer::HttpUri);
        let r = compile_one(r#"alert tcp any any -> any any (content:"aaaa"; content:"abcd"; sid:1;)"#).unwrap();
        assert_eq!(r.fast_pattern.as_ref().unwrap().bytes, b"abcd", "stronger pattern wins a length tie");
        let r = compile_one(r#"alert tcp any any -> any any (content:!"abc"; sid:1;)"#).unwrap();
        assert_eq!(r.fast_pattern, None);
        let r = compile_one(r#"alert tcp any any -> any any (content:"abcdef"; fast_pattern:1,3; sid:1;)"#).unwrap();
        assert_eq!(r.fast_pattern.as_ref().unwrap().bytes, b"bcd");
        let r = compile_one(r#"alert udp any any -> any 53 (dns_query; content:"evil"; sid:1;)"#).unwrap();
        assert_eq!((r.app_proto, r.lists[0].buffer), (Some(AppProto::Dns), Buffer::DnsQuery));
        let r = compile_one(r#"alert tcp any any -> any any (uricontent:"/a"; content:"b"; sid:1;)"#).unwrap();
        assert_eq!(r.lists.iter().map(|l| l.buffer).collect::<Vec<_>>(), [Buffer::HttpUri, Buffer::Payload]);
        let r = compile_one(r#"alert http any any -> any any (http.uri; content:"a"; pkt_data; content:"b"; sid:1;)"#)
            .unwrap();
        assert_eq!(r.lists.iter().map(|l| l.buffer).collect::<Vec<_>>(), [Buffer::HttpUri, Buffer::Payload]);
    }

    #[test]
    fn meta_and_classification() {
        let mut classes = Classifications::new();
        classes.insert(Classification {
            name: "web-application-attack".into(),
            description: "Web Application Attack".into(),
            priority: 1,
        });
        let text = r#"alert http any any -> any any (msg:"SQLi \"x\""; content:"a"; reference:url,example.com/x; classtype:web-application-attack; metadata: created_at 2026_11_27, tag SQLi, tag web; target:dest_ip; sid:9000001; rev:3; gid:5;)"#;
        let parsed = parse_rules(text, "t.rules", &Vars::default()).remove(0).unwrap();
        let r = compile_rule(&parsed, &classes).unwrap();
        let m = &r.meta;
        assert_eq!((m.sid, m.gid, m.rev, &*m.msg), (9000001, 5, 3, "SQLi \"x\""));
        assert_eq!((m.category.as_deref(), m.priority), (Some("Web Application Attack"), 1));
        let values = |k: &str| m.metadata.get(k).map(|vs| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>());
        assert_eq!(values("tag"), Some(vec!["SQLi".to_string(), "web".to_string()]));
        assert_eq!(values("created_at"), Some(vec!["2026_11_27".to_string()]));
        assert_eq!(m.metadata.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["created_at", "tag"]);
        assert_eq!(m.references, [("url".to_string(), "example.com/x".to_string())]);
        assert_eq!(m.target, Some(Target::DestIp));
        let text = r#"alert tcp any any -> any any (classtype:web-application-attack; priority:2; sid:1;)"#;
        let parsed = parse_rules(text, "t.rules", &Vars::default()).remove(0).unwrap();
        assert_eq!(compile_rule(&parsed, &classes).unwrap().meta.priority, 2);
        let text = r#"alert tcp any any -> any any (classtype:nope; sid:1;)"#;
        let parsed = parse_rules(text, "t.rules", &Vars::default()).remove(0).unwrap();
        let e = compile_rule(&parsed, &classes).unwrap_err();
        assert!(e[0].reason.contains("unknown classtype"));
        let c =
            Classifications::parse("# x\nconfig classification: not-suspicious,Not Suspicious Traffic,3\n").unwrap();
        assert_eq!(c.get("not-suspicious").unwrap().priority, 3);
        assert!(Classifications::parse("config classification: a,b\n").is_err());
    }

    #[test]
    fn int_conditions() {
        let p = |s| IntCond::parse(s, 65535).unwrap();
        assert!(p("10").matches(10) && !p("10").matches(11));
        assert!(p("!9").matches(10) && !p("!9").matches(9));
        assert!(p("<10").matches(9) && !p("<10").matches(10));
        assert!(p("<=10").matches(10) && p(">=10").matches(10) && p(">8").matches(9));
        assert!(p("8<>20").matches(9) && !p("8<>20").matches(8) && !p("8<>20").matches(20));
        assert!(p("8-20").matches(19) && p("!8-20").matches(8) && !p("!8-20").matches(9));
        assert!(p("0x10").matches(16) && p("1kb").matches(1024));
        assert!(p("&0xc0=0x80").matches(0x85) && p("&0xc0!=0").matches(0x40));
        assert!(IntCond::parse("20<>8", 65535).is_err() && IntCond::parse("x", 65535).is_err());
    }

    #[test]
    fn classification_file_of_suricata() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpora/suricata-rules/etc/classification.config");
        if !path.exists() {
            eprintln!("SKIPPED: {} not found; Suricata's classification.config not checked", path.display());
            return;
        }
        let c = Classifications::load(&path).unwrap();
        assert!(c.len() > 30, "{}", c.len());
        let t = c.get("trojan-activity").unwrap();
        assert_eq!((t.description.as_str(), t.priority), ("A Network Trojan was detected", 1));
    }
}
