//! `threshold.config` (Suricata's `threshold-file`): `suppress` and `threshold`/`event_filter`
//! entries applied to loaded rules by gid and sid.
//!
//! - `suppress gen_id G, sig_id S` drops every alert of the rule; with
//!   `, track by_src|by_dst|by_either, ip ADDR` only those whose source, destination, or either
//!   address is in `ADDR` (an address expression, `$VARS` allowed).
//! - `threshold gen_id G, sig_id S, type T, track X, count N, seconds S` (and its alias
//!   `event_filter`) sets the rule's threshold, replacing its `threshold` keyword.
//!
//! `sig_id 0` means every rule of the gid, `gen_id 0, sig_id 0` every rule; such a global
//! threshold applies only to rules without a threshold of their own.
//! - `rate_filter gen_id G, sig_id S, track X, count N, seconds S, new_action A, timeout T`
//!   changes the action of the rule's matches once more than `N` matched within `S` seconds
//!   (per source, destination, unordered address pair or rule): they take `new_action`
//!   (`alert`, `drop`, `pass`, `reject`, `sdrop`) for `T` seconds, then counting restarts.
//!
//! Malformed lines are reported as errors with their file and line.

use super::RuleError;
use super::keywords::{Threshold, Track, parse_threshold};
use super::parse::{Action, AddrExpr, Vars};

/// Which packet address a `suppress` with an address list looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuppressTrack {
    BySrc,
    ByDst,
    ByEither,
}

/// One `suppress` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Suppress {
    pub gid: u32,
    pub sid: u32,
    /// `None`: every alert of the rule is suppressed.
    pub addresses: Option<(SuppressTrack, AddrExpr)>,
}

/// One `threshold`/`event_filter` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdOverride {
    pub gid: u32,
    pub sid: u32,
    pub threshold: Threshold,
}

/// One `rate_filter` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateFilter {
    pub gid: u32,
    pub sid: u32,
    /// `by_src`, `by_dst`, `by_both` (the unordered address pair) or `by_rule`.
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
    /// The action matches take once the rate is exceeded (`sdrop` is `drop` without an alert:
    /// see [`RateFilter::silent`]).
    pub new_action: Action,
    pub silent: bool,
    pub timeout: u32,
}

/// What a `rate_filter` counts by: the rule, and the tracked address or unordered pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub rule: u32,
    pub a: Option<std::net::IpAddr>,
    pub b: Option<std::net::IpAddr>,
}

impl RateKey {
    pub fn new(rf: &RateFilter, rule: u32, src: std::net::IpAddr, dst: std::net::IpAddr) -> RateKey {
        let (a, b) = match rf.track {
            Track::BySrc => (Some(src), None),
            Track::ByDst => (Some(dst), None),
            Track::ByBoth => (Some(src.min(dst)), Some(src.max(dst))),
            Track::ByRule | Track::ByFlow => (None, None),
        };
        RateKey { rule, a, b }
    }
}

/// The counter of one `rate_filter` key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    /// Start of the counting window, micros.
    pub window_start: i64,
    pub count: u32,
    /// While set (micros), matches take the new action.
    pub until: Option<i64>,
}

impl RateFilter {
    /// Counts a match at `now` (micros) in `st`; whether it takes the new action.
    pub fn exceeded(&self, st: &mut RateState, now: i64) -> bool {
        if let Some(until) = st.until {
            if now <= until {
                return true;
            }
            st.until = None;
            st.window_start = now;
            st.count = 1;
            return false;
        }
        if st.count == 0 || now.saturating_sub(st.window_start) > i64::from(self.seconds) * 1_000_000 {
            st.window_start = now;
            st.count = 1;
        } else {
            st.count = st.count.saturating_add(1);
        }
        if st.count > self.count {
            st.until = Some(now.saturating_add(i64::from(self.timeout) * 1_000_000));
            return true;
        }
        false
    }
}

/// The entries of threshold files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThresholdConfig {
    pub suppress: Vec<Suppress>,
    pub thresholds: Vec<ThresholdOverride>,
    pub rate_filters: Vec<RateFilter>,
}

/// Whether an entry for (`gid`, `sid`) covers the rule (`sid 0`: every rule of the gid;
/// `gid 0, sid 0`: every rule).
pub fn covers(entry: (u32, u32), rule: (u32, u32)) -> bool {
    match entry {
        (0, 0) => true,
        (g, 0) => g == rule.0,
        e => e == rule,
    }
}

impl Suppress {
    /// Whether this entry suppresses an alert between these addresses.
    pub fn suppresses(&self, src: std::net::IpAddr, dst: std::net::IpAddr) -> bool {
        match &self.addresses {
            None => true,
            Some((SuppressTrack::BySrc, a)) => a.matches(src),
            Some((SuppressTrack::ByDst, a)) => a.matches(dst),
            Some((SuppressTrack::ByEither, a)) => a.matches(src) || a.matches(dst),
        }
    }
}

impl ThresholdConfig {
    /// Parses a threshold file's text (`file` names it in errors). Lines that cannot be used
    /// are errors; the others are kept.
    pub fn parse(text: &str, file: &str, vars: &Vars) -> (ThresholdConfig, Vec<RuleError>) {
        let mut cfg = ThresholdConfig::default();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let column = raw.len() - raw.trim_start().len() + 1;
            let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let err = |reason: String| RuleError {
                file: file.to_string(),
                line: i + 1,
                column,
                keyword: Some(kind.to_string()),
                reason,
                rule_line: i + 1,
            };
            match parse_entry(kind, rest, vars) {
                Ok(Entry::Suppress(s)) => cfg.suppress.push(s),
                Ok(Entry::Threshold(t)) => cfg.thresholds.push(t),
                Ok(Entry::Rate(r)) => cfg.rate_filters.push(r),
                Err(reason) => errors.push(err(reason)),
            }
        }
        (cfg, errors)
    }

    /// Adds the entries of another file.
    pub fn extend(&mut self, other: ThresholdConfig) {
        self.suppress.extend(other.suppress);
        self.thresholds.extend(other.thresholds);
        self.rate_filters.extend(other.rate_filters);
    }

    pub fn is_empty(&self) -> bool {
        self.suppress.is_empty() && self.thresholds.is_empty() && self.rate_filters.is_empty()
    }

    /// The `rate_filter` of a rule: the last specific entry, else the last covering one.
    pub fn rate_filter_for(&self, gid: u32, sid: u32) -> Option<RateFilter> {
        let specific = self.rate_filters.iter().rev().find(|r| r.sid != 0 && (r.gid, r.sid) == (gid, sid));
        specific.or_else(|| self.rate_filters.iter().rev().find(|r| covers((r.gid, r.sid), (gid, sid)))).copied()
    }

    /// The threshold a rule gets from this configuration: a specific entry replaces the rule's
    /// own, a global one (sid 0) applies only when the rule has none.
    pub fn threshold_for(&self, gid: u32, sid: u32, own: Option<Threshold>) -> Option<Threshold> {
        let specific = self.thresholds.iter().rev().find(|t| t.sid != 0 && (t.gid, t.sid) == (gid, sid));
        if let Some(t) = specific {
            return Some(t.threshold);
        }
        own.or_else(|| {
            self.thresholds.iter().rev().find(|t| t.sid == 0 && covers((t.gid, t.sid), (gid, sid))).map(|t| t.threshold)
        })
    }

    /// The `suppress` entries covering a rule.
    pub fn suppress_for(&self, gid: u32, sid: u32) -> Vec<Suppress> {
        self.suppress.iter().filter(|s| covers((s.gid, s.sid), (gid, sid))).cloned().collect()
    }
}

enum Entry {
    Suppress(Suppress),
    Threshold(ThresholdOverride),
    Rate(RateFilter),
}

fn parse_rate_filter(gid: u32, sid: u32, opts: &[&str]) -> Result<RateFilter, String> {
    let (mut track, mut count, mut seconds, mut action, mut timeout) = (None, None, None, None, None);
    let num = |k: &str, v: &str| v.parse::<u32>().map_err(|_| format!("invalid {k} '{v}'"));
    for p in opts {
        let (k, v) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "track" => {
                track = Some(match v {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    other => {
                        return Err(format!("invalid rate_filter track '{other}' (by_src, by_dst, by_both, by_rule)"));
                    }
                })
            }
            "count" => count = Some(num(k, v)?),
            "seconds" => seconds = Some(num(k, v)?),
            "timeout" => timeout = Some(num(k, v)?),
            "new_action" => {
                action = Some(match v {
                    "sdrop" => (Action::Drop, true),
                    other => (
                        Action::parse(other).ok_or_else(|| {
                            format!("invalid new_action '{other}' (alert, drop, sdrop, pass, reject)")
                        })?,
                        false,
                    ),
                })
            }
            other => return Err(format!("unknown rate_filter option '{other}'")),
        }
    }
    let (new_action, silent) = action.ok_or("missing new_action")?;
    Ok(RateFilter {
        gid,
        sid,
        track: track.ok_or("missing track")?,
        count: count.ok_or("missing count")?,
        seconds: seconds.ok_or("missing seconds")?,
        new_action,
        silent,
        timeout: timeout.ok_or("missing timeout")?,
    })
}

fn parse_entry(kind: &str, rest: &str, vars: &Vars) -> Result<Entry, String> {
    let mut gid = None;
    let mut sid = None;
    let mut track = None;
    let mut ip = None;
    let mut threshold_opts: Vec<&str> = Vec::new();
    for part in rest.split(',') {
        let p = part.trim();
        let (k, v) = p.split_once(char::is_whitespace).map(|(a, b)| (a, b.trim())).unwrap_or((p, ""));
        match k {
            "gen_id" => gid = Some(v.parse::<u32>().map_err(|_| format!("invalid gen_id '{v}'"))?),
            "sig_id" => sid = Some(v.parse::<u32>().map_err(|_| format!("invalid sig_id '{v}'"))?),
            "track" if kind == "suppress" => track = Some(v),
            "ip" if kind == "suppress" => ip = Some(v),
            "" => {}
            _ => threshold_opts.push(p),
        }
    }
    let gid = gid.ok_or("missing gen_id")?;
    let sid = sid.ok_or("missing sig_id")?;
    match kind {
        "suppress" => {
            if let Some(o) = threshold_opts.first() {
                return Err(format!("unknown suppress option '{o}'"));
            }
            let addresses = match (track, ip) {
                (None, None) => None,
                (Some(t), Some(ip)) => {
                    let track = match t {
                        "by_src" => SuppressTrack::BySrc,
                        "by_dst" => SuppressTrack::ByDst,
                        "by_either" => SuppressTrack::ByEither,
                        other => return Err(format!("invalid suppress track '{other}' (by_src, by_dst, by_either)")),
                    };
                    Some((track, vars.parse_address(ip).map_err(|e| format!("ip: {e}"))?))
                }
                (Some(_), None) => return Err("suppress with a track needs an ip".to_string()),
                (None, Some(_)) => return Err("suppress with an ip needs a track".to_string()),
            };
            Ok(Entry::Suppress(Suppress { gid, sid, addresses }))
        }
        "threshold" | "event_filter" => {
            let threshold = parse_threshold(&threshold_opts.join(","), false)?;
            Ok(Entry::Threshold(ThresholdOverride { gid, sid, threshold }))
        }
        "rate_filter" => Ok(Entry::Rate(parse_rate_filter(gid, sid, &threshold_opts)?)),
        other => Err(format!("unknown entry type '{other}' (suppress, threshold, event_filter, rate_filter)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::keywords::ThresholdKind;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn entries_parse_and_bad_lines_are_reported_with_their_line() {
        let mut vars = Vars::default();
        vars.set_address("SUPPRESS", "[10.0.0.0/8,145.0.0.0/8]");
        let text = "# comment\n\
                    suppress gen_id 1, sig_id 100\n\
                    suppress gen_id 1, sig_id 200, track by_src, ip $SUPPRESS\n\
                    threshold gen_id 1, sig_id 300, type limit, track by_dst, count 2, seconds 60\n\
                    event_filter gen_id 0, sig_id 0, type both, track by_src, count 1, seconds 5\n\
                    rate_filter gen_id 1, sig_id 1, track by_src, count 1, seconds 60, new_action drop, timeout 10\n\
                    suppress gen_id 1, sig_id 2, track by_src\n\
                    bogus gen_id 1, sig_id 2\n\
                    rate_filter gen_id 1, sig_id 3, track by_flow, count 1, seconds 60, new_action drop, timeout 10\n";
        let (cfg, errors) = ThresholdConfig::parse(text, "threshold.config", &vars);
        assert_eq!(cfg.suppress.len(), 2);
        assert_eq!(cfg.thresholds.len(), 2);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(errors[2].keyword.as_deref(), Some("rate_filter"));
        assert!(errors[2].to_string().starts_with("threshold.config:9:1: rate_filter: invalid rate_filter track"));
        let rf = cfg.rate_filter_for(1, 1).unwrap();
        assert_eq!(
            (rf.track, rf.count, rf.seconds, rf.new_action, rf.timeout),
            (Track::BySrc, 1, 60, Action::Drop, 10)
        );
        assert_eq!(cfg.rate_filter_for(1, 2), None);

        let all = &cfg.suppress_for(1, 100)[0];
        let a = IpAddr::V4(Ipv4Addr::new(145, 254, 1, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert!(all.suppresses(a, b));
        let by_src = &cfg.suppress_for(1, 200)[0];
        assert!(by_src.suppresses(a, b));
        assert!(!by_src.suppresses(b, a));
        assert!(cfg.suppress_for(1, 201).is_empty());

        let t = cfg.threshold_for(1, 300, None).unwrap();
        assert_eq!((t.kind, t.track, t.count, t.seconds), (ThresholdKind::Limit, Track::ByDst, 2, 60));
        let own = parse_threshold("type threshold, track by_rule, count 9, seconds 9", false).unwrap();
        assert_eq!(cfg.threshold_for(1, 300, Some(own)).map(|t| t.count), Some(2), "a specific entry wins");
        assert_eq!(cfg.threshold_for(3, 7, Some(own)), Some(own), "a global entry does not replace a rule's");
        assert_eq!(cfg.threshold_for(3, 7, None).map(|t| t.kind), Some(ThresholdKind::Both));
    }

    #[test]
    fn rate_filter_takes_the_new_action_above_the_rate_until_the_timeout() {
        let (cfg, errors) = ThresholdConfig::parse(
            "rate_filter gen_id 1, sig_id 7, track by_rule, count 2, seconds 10, new_action drop, timeout 30\n",
            "t.config",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let rf = cfg.rate_filter_for(1, 7).unwrap();
        let mut st = RateState::default();
        let s = |n: i64| n * 1_000_000;
        assert!(!rf.exceeded(&mut st, s(0)));
        assert!(!rf.exceeded(&mut st, s(1)));
        assert!(rf.exceeded(&mut st, s(2)), "third match within 10 s exceeds count 2");
        assert!(rf.exceeded(&mut st, s(31)), "still within the timeout");
        assert!(!rf.exceeded(&mut st, s(40)), "timeout over: counting restarts");
        assert!(!rf.exceeded(&mut st, s(41)));
        assert!(!rf.exceeded(&mut st, s(60)), "a new window");
    }
}
