//! Enrichment of records before they are stored: GeoIP/ASN for public addresses
//! ([`geoip`]) and indicator-of-compromise lists ([`ioc`]), whose hits become detections.
//!
//! GeoIP results land in the record as `geoip.<field>`: `geoip.src_ip`, `geoip.dest_ip` for
//! network records, `geoip.<LogField>` for log fields that hold an address (Windows
//! `IpAddress`, Sysmon `DestinationIp`, web logs' `client_ip`, ...):
//!
//! ```json
//! "geoip": {"dest_ip": {"country_iso": "SG", "city": "Singapore", "asn": 15169, "as_org": "Google Inc.",
//!                       "network": "214.0.0.0/24"}}
//! ```
//!
//! Enrichment runs after the record's id is fixed, so a redelivered record gets the same id
//! and the same enrichment.

pub mod geoip;
pub mod ioc;

use serde_json::{Map, Value};
use soc_model::Event;
use std::net::IpAddr;

pub use geoip::{GeoInfo, GeoIp, GeoIpError};
pub use ioc::{IocSet, IocWatcher};

/// Adds GeoIP/ASN data for the public addresses of `ev`; returns how many were enriched.
pub fn enrich_geoip(geo: &GeoIp, ev: &mut Event) -> usize {
    let mut out = Map::new();
    for (field, v) in [("src_ip", &ev.src_ip), ("dest_ip", &ev.dest_ip)] {
        if let Some(info) = v.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).and_then(|ip| geo.lookup(ip)) {
            out.insert(field.to_string(), serde_json::to_value(info).unwrap_or(Value::Null));
        }
    }
    if let Some(log) = &ev.log {
        for (k, v) in &log.fields {
            if let Some(info) = v.as_str().and_then(|s| s.parse::<IpAddr>().ok()).and_then(|ip| geo.lookup(ip)) {
                out.insert(k.clone(), serde_json::to_value(info).unwrap_or(Value::Null));
            }
        }
    }
    let n = out.len();
    if n > 0 {
        metrics::counter!("soc_correlator_geoip_enriched_total").increment(n as u64);
        ev.extra.insert("geoip".into(), Value::Object(out));
    }
    n
}
