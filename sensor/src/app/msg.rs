//! Message-level inspection of the protocols read one packet at a time: Kerberos 5, SNMP, SIP,
//! MQTT, EtherNet/IP,
//! QUIC, IKEv2 (its SA proposals' Diffie-Hellman groups) and TFTP (requests: the protocol only). Each message found in a packet's payload gives its keyword buffers and integer
//! fields, inspected as a transaction of its protocol (Suricata: one transaction per message).
//!
//! The parsers run only on packets of their ports (or, for Kerberos, of flows detected as
//! Kerberos), so other flows pay one port comparison. Over TCP they read the messages that
//! start at the beginning of a segment: a message split over segments is read as far as the
//! segment goes (Kerberos) or not at all (MQTT, SIP).

use super::{enip, ftp, ike, krb5, mqtt, quic, sip, snmp, tftp};
use crate::detect::{AppEvent, AppInt, AppProto, Buffer};

/// The keyword fields of one message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MessageFields<'a> {
    pub bufs: Vec<(Buffer, &'a [u8])>,
    /// Buffers built by the parser (a QUIC CYU string).
    pub owned: Vec<(Buffer, Vec<u8>)>,
    pub ints: Vec<(AppInt, u64)>,
    /// App-layer events of the message ([`crate::detect::AppEvent`] bits).
    pub events: u64,
}

/// Per-flow state of these parsers.
#[derive(Debug, Default)]
pub struct MsgFlowState {
    pub mqtt: mqtt::MqttFlowState,
    pub quic: quic::QuicFlowState,
}

/// Where the packet sits: its transport and ports, and what the flow was detected as.
#[derive(Clone, Copy, Debug)]
pub struct PacketCtx {
    pub tcp: bool,
    pub udp: bool,
    pub sport: u16,
    pub dport: u16,
    pub krb5_flow: bool,
    /// The packet travels to the flow's server.
    pub to_server: bool,
    /// The flow was detected as FTP (its control channel).
    pub ftp_flow: bool,
    /// The packet's source address (an FTP command's client, for `ftpbounce`).
    pub src: std::net::IpAddr,
}

impl PacketCtx {
    fn port(&self, ports: &[u16]) -> bool {
        ports.contains(&self.sport) || ports.contains(&self.dport)
    }
}

/// The messages of one packet's payload and their protocol; empty when none was found.
pub fn messages<'a>(
    ctx: PacketCtx,
    payload: &'a [u8],
    state: &MsgFlowState,
) -> Option<(AppProto, Vec<MessageFields<'a>>)> {
    if payload.is_empty() || !(ctx.tcp || ctx.udp) {
        return None;
    }
    if ctx.krb5_flow || ctx.port(&[88]) {
        let ms = if ctx.tcp { krb5::parse_tcp_all(payload) } else { krb5::parse(payload).into_iter().collect() };
        if !ms.is_empty() {
            return Some((AppProto::Krb5, ms.iter().map(krb5_fields).collect()));
        }
    }
    if ctx.udp
        && ctx.port(&snmp::PORTS)
        && let Some(m) = snmp::parse(payload)
    {
        return Some((AppProto::Snmp, vec![snmp_fields(&m)]));
    }
    if ctx.port(&sip::PORTS)
        && let Some(m) = sip::parse(payload)
    {
        return Some((AppProto::Sip, vec![sip_fields(&m)]));
    }
    if ctx.tcp && ctx.port(&[mqtt::PORT]) {
        let ms = mqtt::parse_all(payload, &state.mqtt);
        if !ms.is_empty() {
            return Some((AppProto::Mqtt, ms.iter().map(mqtt_fields).collect()));
        }
    }
    if ctx.udp && ctx.port(&[quic::PORT]) {
        if let Some(p) = quic::parse(payload) {
            return Some((AppProto::Quic, vec![quic_fields(p)]));
        }
        let ps = quic::parse_ietf(payload, usize::from(!ctx.to_server), &state.quic);
        if !ps.is_empty() {
            return Some((AppProto::Quic, ps.into_iter().map(quic_fields).collect()));
        }
    }
    if ctx.udp
        && ctx.port(&ike::PORTS)
        && let Some(m) = ike::parse(payload, ctx.sport == 4500 || ctx.dport == 4500)
    {
        let mut f = MessageFields::default();
        if m.weak_dh() {
            f.events |= AppEvent::Ikev2WeakCryptoDh.bit();
        }
        return Some((AppProto::Ike, vec![f]));
    }
    if ctx.udp && ctx.dport == tftp::PORT && tftp::is_request(payload) {
        return Some((AppProto::Tftp, vec![MessageFields::default()]));
    }
    if ctx.port(&[enip::PORT]) {
        let ms = enip::parse_all(payload);
        if !ms.is_empty() {
            return Some((AppProto::Enip, ms.iter().map(enip_fields).collect()));
        }
    }
    if ctx.tcp && ctx.to_server && (ctx.ftp_flow || ctx.dport == ftp::PORT) {
        let cs = ftp::parse_commands(payload);
        if !cs.is_empty() {
            return Some((AppProto::Ftp, cs.iter().map(|c| ftp_fields(c, ctx.src)).collect()));
        }
    }
    None
}

fn ftp_fields<'a>(c: &ftp::FtpCommand<'a>, client: std::net::IpAddr) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    f.owned.push((Buffer::FtpCommand, c.name()));
    f.ints.push((AppInt::FtpBounce, u64::from(c.is_bounce(client))));
    f
}

fn krb5_fields<'a>(m: &krb5::Krb5Message<'a>) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    f.ints.push((AppInt::Krb5MsgType, u64::from(m.msg_type)));
    if let Some(e) = m.error_code.and_then(|e| u64::try_from(e).ok()) {
        f.ints.push((AppInt::Krb5ErrCode, e));
    }
    if let Some(e) = m.ticket_etype {
        if let Ok(x) = u64::try_from(e) {
            f.ints.push((AppInt::Krb5TicketEtype, x));
        }
        f.ints.push((AppInt::Krb5TicketWeak, u64::from(krb5::weak_etype(e))));
    }
    f.bufs.extend(m.cname.iter().map(|n| (Buffer::Krb5Cname, *n)));
    f.bufs.extend(m.sname.iter().map(|n| (Buffer::Krb5Sname, *n)));
    f
}

fn snmp_fields<'a>(m: &snmp::SnmpMessage<'a>) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    f.ints.push((AppInt::SnmpVersion, u64::from(m.version)));
    if let Some(t) = m.pdu_type {
        f.ints.push((AppInt::SnmpPduType, u64::from(t)));
    }
    if let Some(t) = m.trap_type {
        f.ints.push((AppInt::SnmpTrapType, u64::from(t)));
    }
    if let Some(c) = m.community {
        f.bufs.push((Buffer::SnmpCommunity, c));
    }
    if let Some(u) = m.usm {
        f.bufs.push((Buffer::SnmpUsm, u));
    }
    f
}

fn sip_fields<'a>(m: &sip::SipMessage<'a>) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    f.bufs.push((Buffer::SipProtocol, m.protocol));
    f.bufs.push((Buffer::SipFramePdu, m.pdu));
    if m.is_request() {
        f.bufs.push((Buffer::SipRequestLine, m.first_line));
        f.bufs.push((Buffer::SipFrameRequestLine, m.line_frame));
        f.bufs.push((Buffer::SipFrameRequestHeaders, m.headers_frame));
        f.bufs.push((Buffer::SipFrameRequestBody, m.body));
    } else {
        f.bufs.push((Buffer::SipResponseLine, m.first_line));
        f.bufs.push((Buffer::SipFrameResponseLine, m.line_frame));
        f.bufs.push((Buffer::SipFrameResponseHeaders, m.headers_frame));
        f.bufs.push((Buffer::SipFrameResponseBody, m.body));
    }
    for (b, v) in [(Buffer::SipMethod, m.method), (Buffer::SipUri, m.uri), (Buffer::SipStatCode, m.stat_code)] {
        if let Some(v) = v {
            f.bufs.push((b, v));
        }
    }
    if let Some(v) = m.stat_msg {
        f.bufs.push((Buffer::SipStatMsg, v));
    }
    for (b, name) in [
        (Buffer::SipFrom, "from"),
        (Buffer::SipTo, "to"),
        (Buffer::SipVia, "via"),
        (Buffer::SipUserAgent, "user-agent"),
        (Buffer::SipContentType, "content-type"),
        (Buffer::SipContentLength, "content-length"),
        (Buffer::SipServer, "server"),
    ] {
        f.bufs.extend(m.header(name).map(|v| (b, v)));
    }
    f
}

fn quic_fields(p: quic::QuicPacket<'_>) -> MessageFields<'_> {
    let mut f = MessageFields::default();
    f.bufs.push((Buffer::QuicVersion, p.version));
    if let Some(sni) = p.sni {
        f.bufs.push((Buffer::QuicSni, sni));
    }
    if let Some(ja4) = p.ja4 {
        f.owned.push((Buffer::Ja4Hash, ja4.into_bytes()));
    }
    if let Some((string, hash)) = p.cyu {
        f.owned.push((Buffer::QuicCyuString, string.into_bytes()));
        f.owned.push((Buffer::QuicCyuHash, hash.into_bytes()));
    }
    f
}

fn enip_fields<'a>(m: &enip::EnipMessage) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    f.ints.push((AppInt::EnipCommand, u64::from(m.command)));
    if let Some(s) = m.cip_service {
        f.ints.push((AppInt::CipService, u64::from(s)));
    }
    f
}

fn mqtt_fields<'a>(m: &mqtt::MqttMessage<'a>) -> MessageFields<'a> {
    let mut f = MessageFields::default();
    if m.missing_connect {
        f.events |= AppEvent::MqttMissingConnect.bit();
    }
    f.bufs.extend([
        (Buffer::MqttFramePdu, m.pdu),
        (Buffer::MqttFrameHeader, m.header),
        (Buffer::MqttFrameData, m.data),
    ]);
    if m.malformed {
        f.events |= AppEvent::MqttMalformedTraffic.bit();
        return f;
    }
    f.ints.push((AppInt::MqttType, u64::from(m.msg_type)));
    f.ints.push((AppInt::MqttFlags, u64::from(m.flags)));
    for (k, v) in [
        (AppInt::MqttQos, m.qos()),
        (AppInt::MqttReasonCode, m.reason_code),
        (AppInt::MqttProtocolVersion, m.protocol_version),
        (AppInt::MqttConnectFlags, m.connect_flags),
    ] {
        if let Some(v) = v {
            f.ints.push((k, u64::from(v)));
        }
    }
    for (b, v) in [
        (Buffer::MqttConnectProtocolString, m.protocol_string),
        (Buffer::MqttConnectClientId, m.client_id),
        (Buffer::MqttConnectUsername, m.username),
        (Buffer::MqttConnectPassword, m.password),
        (Buffer::MqttConnectWillTopic, m.will_topic),
        (Buffer::MqttConnectWillMessage, m.will_message),
        (Buffer::MqttPublishTopic, m.publish_topic),
        (Buffer::MqttPublishMessage, m.publish_message),
    ] {
        if let Some(v) = v {
            f.bufs.push((b, v));
        }
    }
    f.bufs.extend(m.subscribe_topics.iter().map(|t| (Buffer::MqttSubscribeTopic, *t)));
    f.bufs.extend(m.unsubscribe_topics.iter().map(|t| (Buffer::MqttUnsubscribeTopic, *t)));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tcp: bool, sport: u16, dport: u16) -> PacketCtx {
        PacketCtx {
            tcp,
            udp: !tcp,
            sport,
            dport,
            krb5_flow: false,
            to_server: true,
            ftp_flow: false,
            src: std::net::IpAddr::V4(std::net::Ipv4Addr::new(1, 1, 1, 2)),
        }
    }

    #[test]
    fn sip_on_its_port_only() {
        let st = MsgFlowState::default();
        let msg = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        let (proto, ms) = messages(ctx(false, 5060, 5060), msg, &st).unwrap();
        assert_eq!(proto, AppProto::Sip);
        assert!(ms[0].bufs.contains(&(Buffer::SipStatCode, &b"200"[..])));
        assert!(ms[0].bufs.contains(&(Buffer::SipVia, &b"SIP/2.0/UDP h"[..])));
        assert!(messages(ctx(false, 4000, 4001), msg, &st).is_none());
    }

    #[test]
    fn mqtt_messages_of_a_segment_are_inspected_one_by_one() {
        let st = MsgFlowState::default();
        let (proto, ms) = messages(ctx(true, 40000, 1883), &[0xc0, 0, 0xe0, 0], &st).unwrap();
        assert_eq!(proto, AppProto::Mqtt);
        assert_eq!(ms.len(), 2);
        assert!(ms[1].ints.contains(&(AppInt::MqttType, 14)));
        assert!(messages(ctx(false, 40000, 1883), &[0xc0, 0], &st).is_none());
    }

    #[test]
    fn ftp_commands_to_port_21_with_bounce_flag() {
        let st = MsgFlowState::default();
        let (proto, ms) = messages(ctx(true, 40000, 21), b"PORT 2,2,2,3,0,80\r\nRETR a\r\n", &st).unwrap();
        assert_eq!(proto, AppProto::Ftp);
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].owned, vec![(Buffer::FtpCommand, b"PORT".to_vec())]);
        assert!(ms[0].ints.contains(&(AppInt::FtpBounce, 1)));
        assert!(ms[1].ints.contains(&(AppInt::FtpBounce, 0)));
        // replies (to the client) are not commands
        let reply = PacketCtx { to_server: false, ..ctx(true, 21, 40000) };
        assert!(messages(reply, b"220 ready\r\n", &st).is_none());
    }
}
