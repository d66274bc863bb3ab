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
}

impl TcpConn {
    /// Advances the state machine with one segment. Returns true when the state changed.
    pub fn update(&mut self, dir: Direction, flags: u8, seq: u32) -> bool {
        let before = self.state;
        let d = dir as usize;
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
                if syn && ack && dir == Direction::ToClient {
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

    /// True once the client's SYN was seen (a session exists, app-layer may run).
    pub fn has_session(&self) -> bool {
        self.state != TcpState::None
    }
}
