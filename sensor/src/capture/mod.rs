//! Packet sources: capture files ([`offline`]) and network interfaces ([`live`]).

pub mod live;
pub mod offline;
