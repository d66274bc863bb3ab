//! GeoIP and ASN lookups with MaxMind DB files (`maxminddb`): GeoIP2/GeoLite2 City or
//! Country databases and GeoLite2 ASN (or any database with the same record shapes, such
//! as DB-IP's).
//!
//! Public addresses only: private, loopback, link-local, CGNAT, multicast and documentation
//! ranges are never looked up ([`is_public`]). A database that cannot be read is an error at
//! start-up naming the file; a record that cannot be decoded at lookup time is counted
//! (`soc_correlator_geoip_errors_total`) and the address left unenriched.

use maxminddb::{Reader, geoip2};
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("GeoIP database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
}

/// What is known about one address. Serialized into records as `geoip.<field>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GeoInfo {
    /// ISO 3166-1 code of the country where the address is located.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_iso: Option<String>,
    /// ISO 3166-1 code of the country where the network is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_country_iso: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// ISO 3166-2 subdivision codes, largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subdivisions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    /// The database network that matched (location database, else ASN database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl GeoInfo {
    pub fn is_empty(&self) -> bool {
        self.country_iso.is_none() && self.registered_country_iso.is_none() && self.city.is_none() && self.asn.is_none()
    }
}

/// Location and ASN databases (either may be absent).
pub struct GeoIp {
    location: Option<(PathBuf, Reader<Vec<u8>>)>,
    asn: Option<(PathBuf, Reader<Vec<u8>>)>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("location", &self.location.as_ref().map(|(p, _)| p))
            .field("asn", &self.asn.as_ref().map(|(p, _)| p))
            .finish()
    }
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, GeoIpError> {
    let reader = Reader::open_readfile(path)
        .map_err(|e| GeoIpError::Open { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(reader)
}

/// True for addresses worth looking up: not private, loopback, link-local, unspecified,
/// shared (100.64/10), multicast, broadcast, or unique-local/link-local IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

impl GeoIp {
    /// Opens the databases; each path is optional. Fails naming the file that is missing,
    /// unreadable or not a MaxMind DB.
    pub fn open(location: Option<&Path>, asn: Option<&Path>) -> Result<Self, GeoIpError> {
        let location = location.map(|p| open(p).map(|r| (p.to_path_buf(), r))).transpose()?;
        let asn = asn.map(|p| open(p).map(|r| (p.to_path_buf(), r))).transpose()?;
        // Probe one lookup so a database whose tree or data section is broken fails now, with
        // its name, rather than on every record later.
        for (path, r) in location.iter().chain(asn.iter()) {
            let probe: IpAddr = if r.metadata().ip_version == 6 { "2001:db8::1".parse() } else { "1.1.1.1".parse() }
                .map_err(|_| GeoIpError::Open { path: path.clone(), reason: "probe address".into() })?;
            if let Err(e) = r.lookup(probe).and_then(|l| l.decode::<serde::de::IgnoredAny>()) {
                return Err(GeoIpError::Open { path: path.clone(), reason: format!("unusable: {e}") });
            }
        }
        Ok(GeoIp { location, asn })
    }

    /// Looks up one address in every database; `None` when nothing is known (or the address
    /// is not public). Decoding errors are counted and logged, never fatal.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        if !is_public(ip) {
            return None;
        }
        self.lookup_any(ip)
    }

    /// Like [`lookup`](Self::lookup) without the public-address filter (for tests against
    /// databases that hold private ranges).
    pub fn lookup_any(&self, ip: IpAddr) -> Option<GeoInfo> {
        let mut info = GeoInfo::default();
        // A network can be in a database with an empty record: still a match (its network).
        let mut found = false;
        if let Some((path, r)) = &self.location {
            match r.lookup(ip).and_then(|l| Ok((l.decode::<geoip2::City>()?, l.network().ok(), l.has_data()))) {
                Ok((Some(c), net, true)) => {
                    found = true;
                    info.country_iso = c.country.iso_code.map(str::to_string);
                    info.registered_country_iso = c.registered_country.iso_code.map(str::to_string);
                    info.country_name = c.country.names.english.map(str::to_string);
                    info.city = c.city.names.english.map(str::to_string);
                    info.subdivisions = c.subdivisions.iter().filter_map(|s| s.iso_code.map(str::to_string)).collect();
                    info.latitude = c.location.latitude;
                    info.longitude = c.location.longitude;
                    info.network = net.map(|n| n.to_string());
                }
                Ok(_) => {}
                Err(e) => lookup_error(path, ip, &e),
            }
        }
        if let Some((path, r)) = &self.asn {
            match r.lookup(ip).and_then(|l| Ok((l.decode::<geoip2::Asn>()?, l.network().ok()))) {
                Ok((Some(a), net)) => {
                    found = true;
                    info.asn = a.autonomous_system_number;
                    info.as_org = a.autonomous_system_organization.map(str::to_string);
                    if info.network.is_none() {
                        info.network = net.map(|n| n.to_string());
                    }
                }
                Ok(_) => {}
                Err(e) => lookup_error(path, ip, &e),
            }
        }
        found.then_some(info)
    }
}

fn lookup_error(path: &Path, ip: IpAddr, e: &maxminddb::MaxMindDbError) {
    metrics::counter!("soc_correlator_geoip_errors_total").increment(1);
    tracing::debug!(db = %path.display(), %ip, error = %e, "GeoIP lookup failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "81.2.69.160", "2001:218::1", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn a_missing_or_non_mmdb_file_is_an_error_naming_it() {
        let err = GeoIp::open(Some(Path::new("no/such/GeoLite2-City.mmdb")), None).unwrap_err();
        assert!(err.to_string().contains("GeoLite2-City.mmdb"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.mmdb");
        std::fs::write(&p, b"not a database").unwrap();
        let err = GeoIp::open(None, Some(&p)).unwrap_err();
        assert!(err.to_string().contains("junk.mmdb"), "{err}");
    }
}
