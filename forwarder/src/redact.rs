//! Redaction before anything leaves: internal usernames, hostnames and private IP addresses
//! are kept, dropped or replaced by a keyed hash, per field, as the policy says.
//!
//! A hashed value is `h-` + the first 16 hex digits of SHA-256(salt, value): the NCSC can
//! tell that two incidents involve the same (unknown) host without learning its name. The
//! values are also replaced wherever they appear in the incident's title, and the analysts'
//! history (comments) never leaves.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use soc_model::Incident;
use std::net::IpAddr;

/// What to do with one kind of field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Send as is.
    Keep,
    /// Replace by a keyed hash.
    #[default]
    Hash,
    /// Remove.
    Drop,
}

/// `[redaction]`: one action per field kind.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// User names (`user` of alerts, `user:` entities).
    #[serde(default = "hash")]
    pub usernames: Action,
    /// Host names (`host` of alerts, `host:` entities).
    #[serde(default = "hash")]
    pub hostnames: Action,
    /// Private, loopback, link-local and CGNAT addresses (public ones are always sent).
    #[serde(default = "drop")]
    pub private_ips: Action,
    /// Key of the hash (so the NCSC cannot confirm a guessed name). Empty: no key.
    #[serde(default)]
    pub salt: String,
}

fn hash() -> Action {
    Action::Hash
}
fn drop() -> Action {
    Action::Drop
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction { usernames: Action::Hash, hostnames: Action::Hash, private_ips: Action::Drop, salt: String::new() }
    }
}

/// Whether an address is internal (never sent as is unless the policy keeps it).
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback() || v.is_unspecified() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

impl Redaction {
    fn hashed(&self, v: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update([0u8]);
        h.update(v.as_bytes());
        format!("h-{}", &hex::encode(h.finalize())[..16])
    }

    fn apply(&self, action: Action, v: &str, replaced: &mut Vec<(String, Option<String>)>) -> Option<String> {
        let out = match action {
            Action::Keep => return Some(v.to_string()),
            Action::Hash => Some(self.hashed(v)),
            Action::Drop => None,
        };
        if !v.is_empty() {
            replaced.push((v.to_string(), out.clone()));
        }
        out
    }

    fn ip(&self, v: &str, replaced: &mut Vec<(String, Option<String>)>) -> Option<String> {
        match v.parse::<IpAddr>() {
            Ok(ip) if is_internal_ip(ip) => self.apply(self.private_ips, v, replaced),
            _ => Some(v.to_string()),
        }
    }

    /// The incident as it may leave: redacted fields, no history, no owner.
    pub fn incident(&self, i: &Incident) -> Incident {
        let mut out = i.clone();
        out.history.clear();
        out.owner = None;
        out.extra.clear();
        let mut replaced: Vec<(String, Option<String>)> = Vec::new();
        for a in &mut out.alerts {
            a.user = a.user.take().and_then(|u| self.apply(self.usernames, &u, &mut replaced));
            a.host = a.host.take().and_then(|h| self.apply(self.hostnames, &h, &mut replaced));
            // A hashed address is no longer an address: it cannot be an SCO, so it goes.
            a.src_ip =
                a.src_ip.take().and_then(|ip| self.ip(&ip, &mut replaced)).filter(|s| s.parse::<IpAddr>().is_ok());
            a.dest_ip =
                a.dest_ip.take().and_then(|ip| self.ip(&ip, &mut replaced)).filter(|s| s.parse::<IpAddr>().is_ok());
            a.community_id = None;
            a.flow_id = None;
        }
        out.flow_ids.clear();
        out.entities = out
            .entities
            .iter()
            .filter_map(|e| {
                let (kind, v) = e.split_once(':')?;
                let kept = match kind {
                    "user" => self.apply(self.usernames, v, &mut replaced),
                    "host" => self.apply(self.hostnames, v, &mut replaced),
                    "ip" => self.ip(v, &mut replaced),
                    _ => Some(v.to_string()),
                }?;
                Some(format!("{kind}:{kept}"))
            })
            .collect();
        // Longest first, so `dc01.corp` is replaced before `dc01`.
        replaced.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        for (from, to) in &replaced {
            let to = to.as_deref().unwrap_or("[redacted]");
            out.title = out.title.replace(from.as_str(), to);
            for a in &mut out.alerts {
                a.rule_title = a.rule_title.replace(from.as_str(), to);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::{IncidentAlert, Timestamp};

    fn alert() -> IncidentAlert {
        IncidentAlert {
            id: "a".into(),
            timestamp: Timestamp::from_unix_micros(0),
            engine: "sigma".into(),
            rule_id: "r".into(),
            rule_title: "Logon by alice on dc01".into(),
            level: Default::default(),
            segment: None,
            sensor: None,
            host: Some("dc01".into()),
            user: Some("alice".into()),
            src_ip: Some("10.1.2.3".into()),
            src_port: Some(1),
            dest_ip: Some("203.0.113.5".into()),
            dest_port: Some(2),
            proto: None,
            app_proto: None,
            flow_id: Some(7),
            community_id: None,
            observables: vec![],
            tags: vec![],
        }
    }

    fn incident() -> Incident {
        Incident {
            incident_id: "i".into(),
            title: "alice on dc01 from 10.1.2.3".into(),
            entities: vec!["user:alice".into(), "host:dc01".into(), "ip:10.1.2.3".into(), "ip:203.0.113.5".into()],
            alerts: vec![alert()],
            ..Default::default()
        }
    }

    #[test]
    fn default_policy_hashes_names_and_drops_private_addresses_everywhere() {
        let r = Redaction::default().incident(&incident());
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["alice", "dc01", "10.1.2.3"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(r.alerts[0].dest_ip.as_deref(), Some("203.0.113.5"));
        assert!(r.alerts[0].src_ip.is_none());
        assert!(r.entities.iter().any(|e| e.starts_with("host:h-")));
        assert!(r.entities.contains(&"ip:203.0.113.5".to_string()));
    }

    #[test]
    fn hashes_are_stable_and_keyed() {
        let a = Redaction::default();
        let b = Redaction { salt: "k".into(), ..Default::default() };
        assert_eq!(a.hashed("dc01"), a.hashed("dc01"));
        assert_ne!(a.hashed("dc01"), b.hashed("dc01"));
    }

    #[test]
    fn keep_sends_values_and_drop_removes_them() {
        let r = Redaction {
            usernames: Action::Keep,
            hostnames: Action::Drop,
            private_ips: Action::Keep,
            salt: String::new(),
        };
        let out = r.incident(&incident());
        assert_eq!(out.alerts[0].user.as_deref(), Some("alice"));
        assert!(out.alerts[0].host.is_none());
        assert_eq!(out.alerts[0].src_ip.as_deref(), Some("10.1.2.3"));
        assert!(!out.entities.iter().any(|e| e.starts_with("host:")));
        assert!(out.title.contains("[redacted]"));
    }

    #[test]
    fn internal_ranges() {
        for ip in ["10.0.0.1", "192.168.1.1", "172.16.0.1", "127.0.0.1", "100.64.0.1", "fd00::1", "fe80::1"] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "203.0.113.1", "2001:db8::1"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
    }
}
