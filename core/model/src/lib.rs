//! The Canh Gác event model.
//!
//! Every record that crosses the bus or lands in the store is an [`Event`]: one envelope
//! (timestamp, `event_type`, sensor, segment, 5-tuple, `flow_id`, `community_id`, host, ...)
//! plus typed payloads. Network records use Suricata's EVE JSON field names, so an EVE line
//! deserializes into an [`Event`] and serializes back to the same JSON value; fields the
//! model does not know are kept in `extra` maps, never dropped.
//!
//! ```
//! use soc_model::Event;
//! let line = r#"{"timestamp":"2020-05-01T07:02:24.441272+0000","flow_id":1,"event_type":"dns",
//!   "src_ip":"10.0.1.5","src_port":64801,"dest_ip":"10.0.0.4","dest_port":53,"proto":"UDP",
//!   "dns":{"type":"request","id":14384,"queries":[{"rrname":"example.org","rrtype":"A"}]}}"#;
//! let ev: Event = serde_json::from_str(line).unwrap();
//! assert_eq!(ev.event_type.as_str(), "dns");
//! assert_eq!(ev.dns.as_ref().unwrap().queries[0].rrname.as_deref(), Some("example.org"));
//! ```
#![forbid(unsafe_code)]

mod canonical;
pub mod community_id;
pub mod config;
pub mod event;
pub mod payload;
pub mod timestamp;
pub mod windows;

pub use community_id::community_id_v1;
pub use event::{Event, EventType, Kind};
pub use payload::*;
pub use timestamp::Timestamp;

/// Version of the serialized envelope. Bumped when a field changes meaning; readers accept
/// records without it (EVE lines from Suricata) as version 1.
pub const SCHEMA_VERSION: u32 = 1;
