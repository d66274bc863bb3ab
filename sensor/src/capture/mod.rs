//! Packet sources: capture files ([`offline`]) and network interfaces ([`live`]).

pub mod bpf;
pub mod ifdrops;
pub mod live;
pub mod offline;
