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
                } else if ack && !syn && dir == Direction::ToServer {
                    self.state = TcpState::Established;
                }
            }
            TcpState::Established | TcpState::FinWait1 | TcpState::Closed => {}
        }
        if flags & RST != 0 {
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

    /// True once the client's SYN was seen (a session exists, app-layer may run).
    pub fn has_session(&self) -> bool {
        self.state != TcpState::None
    }
}
