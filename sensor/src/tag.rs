//! The `tag` keyword: packets after an alert, of its session or of one of its hosts, are
//! tagged and logged (Suricata's tagged packets, EVE `event_type: packet`).
//!
//! `tag:session` tags the next packets of the alert's flow (256 packets by default);
//! `tag:session,<count>,<packets|seconds|bytes>` and `tag:host,<count>,<metric>,<src|dst>`
//! set the limit, the host being the alerting packet's source or destination address (a host
//! tag covers the packets from or to it, of any flow). The alerting packet counts as the first
//! one. A tag set again by the same rule starts over. Tags are kept per sensor (per worker
//! thread: a host tag does not follow the host's flows handled by other workers), at most
//! [`MAX_TAGS`] flows and hosts; when full, the tags not seen for [`MAX_IDLE_MICROS`] (or past
//! their time) are dropped first (as Suricata's `TAG_MAX_LAST_TIME_SEEN`), then new tags are
//! counted and dropped.

use std::collections::HashMap;
use std::net::IpAddr;

/// Packets tagged by `tag:session` without a count (Suricata's default).
pub const DEFAULT_PACKETS: u64 = 256;

/// Most flows and hosts holding tags.
pub const MAX_TAGS: usize = 65_536;

/// A tag with no packet for this long is dropped when the table is full (a host that never
/// sends again, e.g. a spoofed address, does not hold its entry for ever).
pub const MAX_IDLE_MICROS: i64 = 600 * 1_000_000;

/// What a tag covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagScope {
    Session,
    /// The alerting packet's source (`false`) or destination (`true`) host.
    Host {
        dst: bool,
    },
}

/// How a tag's limit is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagMetric {
    Packets,
    Seconds,
    Bytes,
}

/// A rule's `tag` keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagSpec {
    pub scope: TagScope,
    pub count: u64,
    pub metric: TagMetric,
}

impl TagSpec {
    /// Parses the keyword's value (see the module documentation).
    pub fn parse(v: &str) -> Result<TagSpec, String> {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let scope = match parts.first().copied() {
            Some("session") => TagScope::Session,
            Some("host") => match parts.get(3).copied() {
                Some("src") => TagScope::Host { dst: false },
                Some("dst") => TagScope::Host { dst: true },
                Some(d) => return Err(format!("unknown tag direction '{d}' (src, dst)")),
                None => return Err("tag:host needs '<count>,<metric>,<src|dst>'".to_string()),
            },
            _ => return Err(format!("expected 'session' or 'host', got '{v}'")),
        };
        if parts.len() == 1 {
            return Ok(TagSpec { scope, count: DEFAULT_PACKETS, metric: TagMetric::Packets });
        }
        let max = if scope == TagScope::Session { 3 } else { 4 };
        if parts.len() < 3 || parts.len() > max {
            return Err(format!("expected '<session|host>,<count>,<metric>[,<src|dst>]', got '{v}'"));
        }
        let count =
            parts[1].parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("bad count '{}'", parts[1]))?;
        let metric = match parts[2] {
            "packets" => TagMetric::Packets,
            "seconds" => TagMetric::Seconds,
            "bytes" => TagMetric::Bytes,
            m => return Err(format!("unknown tag metric '{m}' (packets, seconds, bytes)")),
        };
        Ok(TagSpec { scope, count, metric })
    }
}

#[derive(Clone, Copy, Debug)]
struct Tag {
    rule: (u32, u32),
    metric: TagMetric,
    count: u64,
    /// Packets or bytes counted so far.
    used: u64,
    start: i64,
    /// The last packet it covered.
    last: i64,
}

impl Tag {
    /// Counts a packet; whether the tag covers it.
    fn take(&mut self, ts: i64, len: u64) -> bool {
        match self.metric {
            TagMetric::Packets if self.used < self.count => {
                self.used += 1;
                true
            }
            TagMetric::Bytes if self.used < self.count => {
                self.used += len;
                true
            }
            TagMetric::Seconds => {
                ts.saturating_sub(self.start) <= i64::try_from(self.count).unwrap_or(i64::MAX / 2) * 1_000_000
            }
            _ => false,
        }
    }

    /// Whether the tag can go: idle for [`MAX_IDLE_MICROS`], or its time is over.
    fn stale(&self, now: i64) -> bool {
        now.saturating_sub(self.last) > MAX_IDLE_MICROS
            || (self.metric == TagMetric::Seconds && !{ *self }.take(now, 0))
    }
}

/// The tags of one sensor.
#[derive(Debug, Default)]
pub struct Tagger {
    sessions: HashMap<u64, Vec<Tag>>,
    hosts: HashMap<IpAddr, Vec<Tag>>,
    /// When the full table was last swept for stale tags (at most once a second).
    last_sweep: Option<i64>,
}

impl Tagger {
    /// Whether any tag is held (the per-packet check is skipped otherwise).
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.hosts.is_empty()
    }

    /// Starts the tag of an alert of rule `(gid, sid)` on a packet of `flow_id` from `src` to
    /// `dst` of `len` bytes at `ts` (micros); that packet counts as the first.
    #[allow(clippy::too_many_arguments)]
    pub fn add(&mut self, spec: TagSpec, rule: (u32, u32), flow_id: u64, src: IpAddr, dst: IpAddr, ts: i64, len: u64) {
        let used = match spec.metric {
            TagMetric::Packets => 1,
            TagMetric::Bytes => len,
            TagMetric::Seconds => 0,
        };
        let tag = Tag { rule, metric: spec.metric, count: spec.count, used, start: ts, last: ts };
        let mut full = self.sessions.len() + self.hosts.len() >= MAX_TAGS;
        if full && self.last_sweep.is_none_or(|at| ts.saturating_sub(at) >= 1_000_000) {
            self.last_sweep = Some(ts);
            sweep(&mut self.sessions, ts);
            sweep(&mut self.hosts, ts);
            full = self.sessions.len() + self.hosts.len() >= MAX_TAGS;
        }
        let list = match spec.scope {
            TagScope::Session if flow_id != 0 && (!full || self.sessions.contains_key(&flow_id)) => {
                self.sessions.entry(flow_id).or_default()
            }
            TagScope::Host { dst: d } if !full || self.hosts.contains_key(&if d { dst } else { src }) => {
                self.hosts.entry(if d { dst } else { src }).or_default()
            }
            _ => {
                metrics::counter!("soc_sensor_tags_dropped_total").increment(1);
                return;
            }
        };
        match list.iter_mut().find(|t| t.rule == rule) {
            Some(t) => *t = tag,
            None => list.push(tag),
        }
    }

    /// Counts a packet against the tags of its flow and hosts; whether one covers it. Tags
    /// past their limit are removed.
    pub fn tagged(&mut self, flow_id: u64, src: IpAddr, dst: IpAddr, ts: i64, len: u64) -> bool {
        let mut hit = false;
        let mut take = |list: &mut Vec<Tag>| {
            list.retain_mut(|t| {
                let ok = t.take(ts, len);
                hit |= ok;
                t.last = ts;
                ok
            });
            list.is_empty()
        };
        if let Some(l) = self.sessions.get_mut(&flow_id)
            && take(l)
        {
            self.sessions.remove(&flow_id);
        }
        for ip in if src == dst { [Some(src), None] } else { [Some(src), Some(dst)] }.into_iter().flatten() {
            if let Some(l) = self.hosts.get_mut(&ip)
                && take(l)
            {
                self.hosts.remove(&ip);
            }
        }
        hit
    }

    /// Forgets the session tags of a flow that ended.
    pub fn end_flow(&mut self, flow_id: u64) {
        if !self.sessions.is_empty() {
            self.sessions.remove(&flow_id);
        }
    }
}

/// Drops the stale tags of a table.
fn sweep<K>(table: &mut HashMap<K, Vec<Tag>>, now: i64) {
    table.retain(|_, list| {
        list.retain(|t| !t.stale(now));
        !list.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 0, last])
    }

    #[test]
    fn tag_values_parse_with_defaults_and_reject_bad_ones() {
        assert_eq!(
            TagSpec::parse("session"),
            Ok(TagSpec { scope: TagScope::Session, count: 256, metric: TagMetric::Packets })
        );
        assert_eq!(
            TagSpec::parse("host, 9, packets, dst"),
            Ok(TagSpec { scope: TagScope::Host { dst: true }, count: 9, metric: TagMetric::Packets })
        );
        assert_eq!(
            TagSpec::parse("session,10,seconds"),
            Ok(TagSpec { scope: TagScope::Session, count: 10, metric: TagMetric::Seconds })
        );
        for bad in ["", "flow", "host", "host,1,packets", "host,1,packets,up", "session,0,packets", "session,5,hours"] {
            assert!(TagSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(TagSpec::parse("session,5,packets,dst").is_err(), "a direction is for host tags");
    }

    #[test]
    fn session_tags_count_the_alerting_packet_first() {
        let mut t = Tagger::default();
        assert!(t.is_empty());
        let spec = TagSpec { scope: TagScope::Session, count: 3, metric: TagMetric::Packets };
        t.add(spec, (1, 1), 7, ip(1), ip(2), 0, 60);
        assert!(!t.tagged(8, ip(1), ip(2), 1, 60), "another flow");
        assert!(t.tagged(7, ip(2), ip(1), 2, 60));
        assert!(t.tagged(7, ip(1), ip(2), 3, 60));
        assert!(!t.tagged(7, ip(1), ip(2), 4, 60), "the limit counts the alerting packet");
        assert!(t.is_empty(), "used up tags are removed");
        t.add(spec, (1, 1), 7, ip(1), ip(2), 0, 60);
        t.end_flow(7);
        assert!(t.is_empty());
    }

    #[test]
    fn host_tags_cover_the_host_in_any_flow_and_byte_and_time_limits_hold() {
        let mut t = Tagger::default();
        t.add(
            TagSpec { scope: TagScope::Host { dst: true }, count: 100, metric: TagMetric::Bytes },
            (1, 2),
            7,
            ip(1),
            ip(2),
            0,
            60,
        );
        assert!(t.tagged(9, ip(2), ip(9), 1, 40), "the host as source, another flow");
        assert!(!t.tagged(9, ip(1), ip(9), 1, 30), "not the tagged host");
        assert!(!t.tagged(9, ip(9), ip(2), 1, 30), "100 bytes counted (60 + 40)");
        t.add(
            TagSpec { scope: TagScope::Session, count: 2, metric: TagMetric::Seconds },
            (1, 3),
            7,
            ip(1),
            ip(2),
            0,
            60,
        );
        assert!(t.tagged(7, ip(1), ip(2), 2_000_000, 60));
        assert!(!t.tagged(7, ip(1), ip(2), 2_000_001, 60));
        assert!(t.is_empty());
    }

    #[test]
    fn a_table_full_of_idle_spoofed_hosts_makes_room_for_new_tags() {
        let mut t = Tagger::default();
        let spec = TagSpec { scope: TagScope::Host { dst: false }, count: 10, metric: TagMetric::Packets };
        let spoofed = |n: u32| IpAddr::from(n.to_be_bytes());
        for n in 0..MAX_TAGS as u32 {
            t.add(spec, (1, 1), 0, spoofed(n), ip(1), 0, 60);
        }
        let later = MAX_IDLE_MICROS / 2;
        t.add(spec, (1, 1), 0, ip(200), ip(1), later, 60);
        assert!(!t.tagged(0, ip(200), ip(9), later, 60), "full, nothing idle yet: dropped");
        // a host still sending keeps its tag
        assert!(t.tagged(0, spoofed(7), ip(9), later, 60));
        let now = MAX_IDLE_MICROS + 1;
        t.add(spec, (1, 1), 0, ip(201), ip(1), now, 60);
        assert!(t.tagged(0, ip(201), ip(9), now, 60), "the idle tags made room");
        assert!(t.tagged(0, spoofed(7), ip(9), now, 60));
        assert_eq!(t.hosts.len(), 2);
    }
}
