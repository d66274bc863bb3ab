//! TCP connection state, as far as flow records need it (Suricata's state names).

use crate::app::Direction;
use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};

/// TCP session state (names as Suricata writes them in the flow record's `tcp.state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TcpState {
    /// No session: the flow did not start with a client SYN (midstream pick-up is off).
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    /// One side sent FIN.
    FinWait1,
    /// Both sides sent FIN, or a RST was seen.
    Closed,
}

impl TcpState {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::Closed => "closed",
        }
    }
}

/// Per-flow TCP state machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpConn {
    pub state: TcpState,
    /// FIN seen to server / to client.
    pub fin: [bool; 2],
    pub rst: bool,
    /// Initial sequence numbers (from SYN / SYN-ACK) to server / to client.
    pub isn: [Option<u32>; 2],
    /// Client SYNs with a new sequence number while the first was unanswered (Suricata queues
    /// up to [`MAX_SYN_QUEUED`] of them; the session follows the latest).
    pub syns_queued: u8,
    /// Stream events of the last segment ([`crate::decode::DecodeEvent`] bits, the `stream.*`
    /// ones).
    pub events: u64,
    /// The last segment was a client SYN with a new sequence number: the session restarts
    /// from it (its streams must be set up again).
    pub restarted: bool,
    /// The side whose RST closed the session, until it sends a regular segment (Suricata's
    /// `STREAMTCP_STREAM_FLAG_RST_RECV` on the other side).
    pub rst_from: Option<Direction>,
    /// The session was set up by [`TcpConn::update_async_oneside`]: only the client's side is
    /// seen (Suricata's `STREAMTCP_FLAG_ASYNC`).
    pub async_oneside: bool,
    /// The session was picked up midstream from a server SYN-ACK.
    pub midstream_synack: bool,
    /// Urgent bytes taken out of each direction's stream (`stream.reassembly.urgent.policy:
    /// oob`), to server / to client.
    pub urg_removed: [u32; 2],
}

/// Client SYNs with a different sequence number Suricata keeps during the handshake
/// (`stream.max-syn-queued`); each one beyond is a `stream.3whs_syn_flood` event.
pub const MAX_SYN_QUEUED: u8 = 10;

impl TcpConn {
    /// Advances the state machine with one segment. Returns true when the state changed.
    pub fn update(&mut self, dir: Direction, flags: u8, seq: u32) -> bool {
        let before = self.state;
        let d = dir as usize;
        self.events = 0;
        self.restarted = false;
        let syn = flags & SYN != 0;
        let ack = flags & ACK != 0;
        match self.state {
            TcpState::None => {
                if syn && !ack && dir == Direction::ToServer {
                    self.state = TcpState::SynSent;
                    self.isn[0] = Some(seq);
                }
                return self.state != before;
            }
            TcpState::SynSent => {
                if syn && !ack && dir == Direction::ToServer && self.isn[0] != Some(seq) {
                    // a new SYN: the session follows it; beyond the queue it is a flood
                    if self.syns_queued >= MAX_SYN_QUEUED {
                        self.events |= crate::decode::DecodeEvent::Stream3whsSynFlood.bit();
                    } else {
                        self.syns_queued += 1;
                    }
                    self.isn[0] = Some(seq);
                    self.restarted = true;
                } else if syn && ack && dir == Direction::ToClient {
                    self.state = TcpState::SynRecv;
                    self.isn[1] = Some(seq);
                }
            }
            TcpState::SynRecv => {
                if syn && ack && dir == Direction::ToClient {
                    self.isn[1] = Some(seq);
                } else if ack && !syn && (dir == Direction::ToServer || flags & (RST | FIN) == 0) {
                    // the client's ACK, or the server's next segment after a missed one
                    self.state = TcpState::Established;
                }
            }
            TcpState::Established | TcpState::FinWait1 | TcpState::Closed => {}
        }
        if flags & RST == 0 && self.rst_from == Some(dir) {
            // the RST's sender goes on as if it had not sent it: the RST was likely injected
            self.events |= crate::decode::DecodeEvent::StreamSuspectedRstInject.bit();
            self.rst_from = None;
        }
        if flags & RST != 0 {
            if before != TcpState::Closed {
                self.rst_from = Some(dir);
            }
            self.rst = true;
            self.state = TcpState::Closed;
        } else if flags & FIN != 0
            && matches!(self.state, TcpState::Established | TcpState::FinWait1 | TcpState::SynRecv)
        {
            self.fin[d] = true;
            self.state = if self.fin[0] && self.fin[1] { TcpState::Closed } else { TcpState::FinWait1 };
        }
        self.state != before
    }

    /// Suricata's midstream pick-up (`stream.midstream`), after [`TcpConn::update`]: a flow
    /// whose client SYN was not seen gets a session from a server SYN-ACK (the handshake then
    /// completes with the next ACK, from either side, as Suricata's `MIDSTREAM_SYNACK`
    /// sessions) or from any other ACK segment (established at once). A RST starts none.
    pub fn update_midstream(&mut self, dir: Direction, flags: u8, seq: u32) {
        if flags & RST != 0 {
            return;
        }
        let synack = flags & (SYN | ACK) == SYN | ACK;
        match self.state {
            TcpState::None if synack && dir == Direction::ToClient => {
                self.state = TcpState::SynRecv;
                self.isn[1] = Some(seq);
                self.midstream_synack = true;
            }
            TcpState::None if flags & (SYN | ACK) == ACK => self.state = TcpState::Established,
            TcpState::SynRecv if self.midstream_synack && flags & (SYN | ACK) == ACK => {
                self.state = TcpState::Established;
            }
            _ => {}
        }
    }

    /// Suricata's `stream.async-oneside`: only the client's side of the session may be seen.
    /// After [`TcpConn::update`], a client ACK (no SYN, no RST) completes the session without
    /// the server's SYN-ACK when it follows the client's SYN (sequence number SYN + 1), or,
    /// with `midstream` pick-up, starts one on a flow whose SYN was not seen.
    pub fn update_async_oneside(&mut self, dir: Direction, flags: u8, seq: u32, midstream: bool) {
        if dir != Direction::ToServer || flags & (SYN | ACK | RST) != ACK {
            return;
        }
        match self.state {
            TcpState::SynSent if self.isn[0].map(|i| i.wrapping_add(1)) == Some(seq) => {}
            TcpState::None if midstream => {}
            _ => return,
        }
        self.state = TcpState::Established;
        self.async_oneside = true;
    }

    /// Whether a segment belongs to the session being set up, as Suricata's SYN_SENT state
    /// judges it: while the client's SYN is unanswered, a segment from the server other than
    /// a SYN-ACK or a RST, and a client RST whose sequence number is not that of the SYN, are
    /// ignored (neither the state nor the streams see them).
    pub fn accepts(&self, dir: Direction, flags: u8, seq: u32) -> bool {
        if self.state != TcpState::SynSent {
            return true;
        }
        let rst = flags & RST != 0;
        match dir {
            Direction::ToClient => rst || flags & SYN != 0,
            Direction::ToServer => !rst || self.isn[0].is_none_or(|isn| seq == isn || seq == isn.wrapping_add(1)),
        }
    }

    /// Whether a segment completing the handshake belongs to the session, as Suricata's
    /// SYN_RECV state judges it (a plain ACK segment: no SYN, RST or FIN): from the client,
    /// the sequence number right after its SYN and the acknowledgement of the SYN-ACK (or a
    /// sequence number beyond, with that acknowledgement: packets were missed); from the
    /// server, in IDS mode only, its next byte acknowledging the client's SYN (the client's
    /// ACK was missed). Inline (`inline`), a server segment before the handshake completed is
    /// refused. Other states, and a session picked up from a SYN-ACK, accept everything.
    pub fn accepts_in_syn_recv(&self, dir: Direction, flags: u8, seq: u32, ack: u32, inline: bool) -> bool {
        if self.state != TcpState::SynRecv || self.midstream_synack || flags & (SYN | RST | FIN | ACK) != ACK {
            return true;
        }
        let (Some(c), Some(s)) = (self.isn[0], self.isn[1]) else { return true };
        let (client_next, server_next) = (c.wrapping_add(1), s.wrapping_add(1));
        match dir {
            Direction::ToServer => ack == server_next && (seq.wrapping_sub(client_next) as i32) >= 0,
            Direction::ToClient => !inline && ack == client_next && seq == server_next,
        }
    }

    /// True once the client's SYN was seen (a session exists, app-layer may run).
    pub fn has_session(&self) -> bool {
        self.state != TcpState::None
    }
}
