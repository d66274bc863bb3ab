//! IP reputation (`iprep`) and country (`geoip`) keywords.
//!
//! [`Reputation`] is Suricata's IP reputation data: a categories file (`<id>,<short
//! name>,<description>` a line, ids 0-59) and reputation files (`<address or
//! CIDR>,<category id>,<score 1-127>` a line), given to the detector with
//! [`super::DetectorBuilder::reputation_categories`]. `iprep:<side>,<category>,<op>,<score>` matches when the
//! host's score in the category compares as asked; a host without a score in the category never
//! matches (Suricata's score 0). A host entry is preferred over the CIDR entries covering it;
//! among CIDR entries the longest prefix wins. `side` is `src`, `dst`, `any` (either
//! address) or `both`.
//!
//! `geoip:[src|dst|both|any,]<country>[,<country>...]` looks the addresses up in a MaxMind
//! database ([`super::DetectorBuilder::geoip_database`]) and compares the ISO 3166-1 code of
//! the country; a list starting with `!` matches the addresses located elsewhere (an address
//! the database does not know matches no country). The side defaults to `any`.
//!
//! Both keywords are parsed when the rule is compiled and bound to their data when the rule is
//! added to the builder: a rule naming an unknown category, or a `geoip` rule without a
//! database, is rejected with the reason.

use super::compile::IntCond;
use super::parse::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// Highest category id (Suricata's `SREP_MAX_CATS - 1`).
pub const MAX_CATEGORY: u8 = 59;

/// The reputation data: categories and per-host / per-network scores.
#[derive(Clone, Debug, Default)]
pub struct Reputation {
    categories: HashMap<String, u8>,
    hosts: HashMap<IpAddr, Vec<(u8, u8)>>,
    /// (network, category, score), longest prefix first.
    nets: Vec<(IpNet, u8, u8)>,
}

/// A bad line of a categories or reputation file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for RepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

impl Reputation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no category is defined (then no `iprep` rule can load).
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// Adds the categories of a categories file's text; bad lines are returned.
    pub fn add_categories(&mut self, text: &str, file: &str) -> Vec<RepError> {
        let mut errors = Vec::new();
        for (line, l) in data_lines(text) {
            let err = |reason: String| RepError { file: file.to_string(), line, reason };
            let mut parts = l.splitn(3, ',');
            let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
                errors.push(err(format!("expected '<id>,<name>,<description>', got '{l}'")));
                continue;
            };
            match id.trim().parse::<u8>() {
                Ok(id) if id <= MAX_CATEGORY && !name.trim().is_empty() => {
                    self.categories.insert(name.trim().to_string(), id);
                }
                _ => errors.push(err(format!("bad category id '{}' (0-{MAX_CATEGORY}) or empty name", id.trim()))),
            }
        }
        errors
    }

    /// Adds the scores of a reputation file's text; bad lines (unknown category ids, scores
    /// outside 1-127, bad addresses) are returned.
    pub fn add_scores(&mut self, text: &str, file: &str) -> Vec<RepError> {
        let known: Vec<u8> = self.categories.values().copied().collect();
        let mut errors = Vec::new();
        for (line, l) in data_lines(text) {
            let err = |reason: String| RepError { file: file.to_string(), line, reason };
            let parts: Vec<&str> = l.split(',').map(str::trim).collect();
            let [addr, cat, score] = parts[..] else {
                errors.push(err(format!("expected '<address>,<category>,<score>', got '{l}'")));
                continue;
            };
            let Some(cat) = cat.parse::<u8>().ok().filter(|c| known.contains(c)) else {
                errors.push(err(format!("unknown category '{cat}'")));
                continue;
            };
            let Some(score) = score.parse::<u8>().ok().filter(|s| (1..=127).contains(s)) else {
                errors.push(err(format!("bad score '{score}' (1-127)")));
                continue;
            };
            let (ip, prefix) = match addr.split_once('/') {
                Some((a, p)) => (a.parse::<IpAddr>(), Some(p.parse::<u8>().unwrap_or(u8::MAX))),
                None => (addr.parse::<IpAddr>(), None),
            };
            let Ok(ip) = ip else {
                errors.push(err(format!("bad address '{addr}'")));
                continue;
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match prefix {
                None => self.set_host(ip, cat, score),
                Some(p) if p == max => self.set_host(ip, cat, score),
                Some(p) if p < max => self.nets.push((IpNet { addr: ip, prefix: p }, cat, score)),
                Some(_) => errors.push(err(format!("bad prefix in '{addr}'"))),
            }
        }
        self.nets.sort_by_key(|n| std::cmp::Reverse(n.0.prefix));
        errors
    }

    fn set_host(&mut self, ip: IpAddr, cat: u8, score: u8) {
        let e = self.hosts.entry(ip).or_default();
        match e.iter_mut().find(|(c, _)| *c == cat) {
            Some(slot) => slot.1 = score,
            None => e.push((cat, score)),
        }
    }

    /// The id of a category by its short name.
    pub fn category(&self, name: &str) -> Option<u8> {
        self.categories.get(name).copied()
    }

    /// The score of an address in a category (0: none).
    pub fn score(&self, ip: IpAddr, cat: u8) -> u8 {
        if let Some(s) = self.hosts.get(&ip).and_then(|v| v.iter().find(|(c, _)| *c == cat)) {
            return s.1;
        }
        self.nets.iter().find(|(n, c, _)| *c == cat && n.contains(ip)).map_or(0, |(_, _, s)| *s)
    }
}

/// Which addresses of the packet an `iprep`/`geoip` condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
    Any,
    Both,
}

impl Side {
    fn parse(s: &str) -> Option<Side> {
        match s.trim() {
            "src" => Some(Side::Src),
            "dst" => Some(Side::Dst),
            "any" => Some(Side::Any),
            "both" => Some(Side::Both),
            _ => None,
        }
    }

    fn eval(self, src: IpAddr, dst: IpAddr, f: impl Fn(IpAddr) -> bool) -> bool {
        match self {
            Side::Src => f(src),
            Side::Dst => f(dst),
            Side::Any => f(src) || f(dst),
            Side::Both => f(src) && f(dst),
        }
    }
}

/// One `iprep` condition.
#[derive(Clone, Debug)]
pub struct IpRepCond {
    pub side: Side,
    pub category_name: String,
    pub cond: IntCond,
    /// The category id and the data, bound when the rule is added ([`IpRepCond::bind`]).
    bound: Option<(u8, Arc<Reputation>)>,
}

impl IpRepCond {
    /// Parses `<side>,<category>,<op>,<score>` (the operator `<`, `>`, `=`, `<=`, `>=`).
    pub fn parse(v: &str) -> Result<IpRepCond, String> {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let [side, cat, op, score] = parts[..] else {
            return Err(format!("expected '<side>,<category>,<operator>,<score>', got '{v}'"));
        };
        let side = Side::parse(side).ok_or_else(|| format!("unknown side '{side}' (src, dst, any, both)"))?;
        if !matches!(op, "<" | ">" | "=" | "<=" | ">=") {
            return Err(format!("unknown operator '{op}'"));
        }
        let n = score.parse::<u8>().ok().filter(|n| *n <= 127).ok_or_else(|| format!("bad score '{score}' (0-127)"))?;
        let cond = IntCond::parse(&format!("{}{n}", if op == "=" { "" } else { op }), 127)?;
        Ok(IpRepCond { side, category_name: cat.to_string(), cond, bound: None })
    }

    /// Binds the condition to the reputation data; fails on an unknown category.
    pub fn bind(&mut self, rep: &Arc<Reputation>) -> Result<(), String> {
        let id = rep.category(&self.category_name).ok_or_else(|| {
            format!("unknown reputation category '{}' (not in the reputation categories file)", self.category_name)
        })?;
        self.bound = Some((id, Arc::clone(rep)));
        Ok(())
    }

    pub fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        let Some((cat, rep)) = &self.bound else { return false };
        self.side.eval(src, dst, |ip| {
            let s = rep.score(ip, *cat);
            s > 0 && self.cond.matches(u64::from(s))
        })
    }
}

/// A MaxMind database for `geoip`.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("type", &self.reader.metadata().database_type).finish()
    }
}

impl GeoDb {
    pub fn open(path: &Path) -> Result<GeoDb, String> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(GeoDb { reader })
    }

    /// The ISO 3166-1 code of the country of an address (`None`: unknown or undecodable).
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = self.reader.lookup(ip).and_then(|l| l.decode::<maxminddb::geoip2::Country>());
        match found {
            Ok(Some(c)) => c.country.iso_code.map(str::to_string),
            Ok(None) => None,
            Err(e) => {
                metrics::counter!("soc_sensor_geoip_lookup_errors_total").increment(1);
                tracing::debug!(%ip, error = %e, "geoip lookup failed");
                None
            }
        }
    }
}

/// One `geoip` condition.
#[derive(Clone, Debug)]
pub struct GeoipCond {
    pub side: Side,
    pub countries: Vec<String>,
    pub negated: bool,
    db: Option<Arc<GeoDb>>,
}

impl GeoipCond {
    /// Parses `[src|dst|both|any,]<country>[,<country>...]`, the list optionally starting with `!`.
    pub fn parse(v: &str) -> Result<GeoipCond, String> {
        let mut parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let side = match parts.first().and_then(|p| Side::parse(p)) {
            Some(s) => {
                parts.remove(0);
                s
            }
            None => Side::Any,
        };
        let mut negated = false;
        if let Some(first) = parts.first_mut()
            && let Some(rest) = first.strip_prefix('!')
        {
            negated = true;
            *first = rest.trim();
        }
        if parts.is_empty() || parts.iter().any(|c| c.is_empty() || c.contains('!') || c.contains(' ')) {
            return Err(format!("expected '[src|dst|both|any,]<country>[,<country>...]', got '{v}'"));
        }
        Ok(GeoipCond { side, countries: parts.iter().map(|c| c.to_ascii_uppercase()).collect(), negated, db: None })
    }

    pub fn bind(&mut self, db: &Arc<GeoDb>) {
        self.db = Some(Arc::clone(db));
    }

    pub fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        let Some(db) = &self.db else { return false };
        self.side.eval(src, dst, |ip| match db.country(ip) {
            Some(c) => self.countries.contains(&c) != self.negated,
            None => false,
        })
    }
}

/// The `iprep` and `geoip` conditions of a rule (all must hold).
#[derive(Clone, Debug, Default)]
pub struct HostConds {
    pub iprep: Vec<IpRepCond>,
    pub geoip: Vec<GeoipCond>,
}

impl HostConds {
    pub fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.iprep.iter().all(|c| c.matches(src, dst)) && self.geoip.iter().all(|c| c.matches(src, dst))
    }

    /// Binds the conditions to the detector's data (see the module documentation).
    pub fn bind(&mut self, rep: Option<&Arc<Reputation>>, geo: Option<&Arc<GeoDb>>) -> Result<(), String> {
        for c in &mut self.iprep {
            let rep = rep.ok_or("no IP reputation data configured (reputation-categories-file)")?;
            c.bind(rep)?;
        }
        for c in &mut self.geoip {
            c.bind(geo.ok_or("no geoip database configured (geoip-database)")?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn rep() -> Arc<Reputation> {
        let mut r = Reputation::new();
        assert!(r.add_categories("# comment\n1,bad,Bad hosts\n2,cnc,Command and control\n", "c.txt").is_empty());
        let errs = r.add_scores("1.2.3.4,1,50\n10.0.0.0/8,2,20\n10.1.0.0/16,2,90\n1.2.3.4,2,3\n", "r.list");
        assert!(errs.is_empty(), "{errs:?}");
        Arc::new(r)
    }

    #[test]
    fn host_and_network_scores_prefer_the_host_then_the_longest_prefix() {
        let r = rep();
        assert_eq!(r.score(ip("1.2.3.4"), 1), 50);
        assert_eq!(r.score(ip("1.2.3.4"), 2), 3);
        assert_eq!(r.score(ip("10.1.2.3"), 2), 90);
        assert_eq!(r.score(ip("10.2.2.3"), 2), 20);
        assert_eq!(r.score(ip("10.2.2.3"), 1), 0);
    }

    #[test]
    fn iprep_sides_and_operators() {
        let r = rep();
        let mut c = IpRepCond::parse("dst,bad,>,30").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.bind(&r).is_ok());
        assert!(c.matches(ip("9.9.9.9"), ip("1.2.3.4")));
        assert!(!c.matches(ip("1.2.3.4"), ip("9.9.9.9")));
        let mut any = IpRepCond::parse("any,cnc,<,50").unwrap_or_else(|e| panic!("{e}"));
        assert!(any.bind(&r).is_ok());
        assert!(any.matches(ip("10.2.0.1"), ip("9.9.9.9")));
        // a host without a score never matches, even with '<'
        assert!(!any.matches(ip("9.9.9.8"), ip("9.9.9.9")));
        let mut both = IpRepCond::parse("both,cnc,=,20").unwrap_or_else(|e| panic!("{e}"));
        assert!(both.bind(&r).is_ok());
        assert!(both.matches(ip("10.2.0.1"), ip("10.3.0.1")));
        assert!(!both.matches(ip("10.2.0.1"), ip("10.1.0.1")));
    }

    #[test]
    fn iprep_rejects_bad_values_and_unknown_categories() {
        assert!(IpRepCond::parse("dst,bad,>").is_err());
        assert!(IpRepCond::parse("up,bad,>,1").is_err());
        assert!(IpRepCond::parse("src,bad,!,1").is_err());
        assert!(IpRepCond::parse("src,bad,>,200").is_err());
        let mut c = IpRepCond::parse("src,nope,>,1").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.bind(&rep()).is_err());
        // unbound: never matches
        assert!(!IpRepCond::parse("src,bad,>,0").is_ok_and(|c| c.matches(ip("1.2.3.4"), ip("1.2.3.4"))));
    }

    #[test]
    fn bad_reputation_lines_are_reported_with_their_line() {
        let mut r = Reputation::new();
        let errs = r.add_categories("1,ok,x\n99,big,x\nnonsense\n", "c");
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        let errs =
            r.add_scores("1.1.1.1,1,5\n1.1.1.1,7,5\n1.1.1.1,1,0\nx,1,5\n1.1.1.0/33,1,5\n1,2\n1.1.1.0/x,1,5\n", "r");
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7]);
        assert_eq!(r.score(ip("1.1.1.1"), 1), 5);
    }

    fn tcp<'a>(src: &str, dst: &str, flow_id: u64) -> crate::detect::Inspection<'a> {
        let mut i = crate::detect::Inspection::new(
            crate::detect::Transport::Tcp,
            ip(src),
            40000,
            ip(dst),
            80,
            crate::detect::Direction::ToServer,
            b"",
        );
        i.flow_id = flow_id;
        i
    }

    #[test]
    fn detector_binds_iprep_rules_and_rejects_unknown_categories() {
        let mut b = crate::detect::DetectorBuilder::new();
        b.reputation_categories("1,bad,Bad hosts\n", "cats.txt");
        b.reputation_scores("1.2.3.4,1,50\n", "rep.list");
        b.add_rules(
            "alert tcp any any -> any any (iprep:dst,bad,>,30; sid:1;)\n\
             alert tcp any any -> any any (iprep:dst,nope,>,30; sid:2;)\n\
             alert tcp any any -> any any (geoip:any,FR; sid:3;)\n",
            "t.rules",
        );
        let (d, errors) = b.build();
        let kws: Vec<_> = errors.iter().map(|e| (e.line, e.keyword.clone())).collect();
        assert_eq!(kws, [(2, Some("iprep".to_string())), (3, Some("geoip".to_string()))], "{errors:?}");
        let sids = |i: &crate::detect::Inspection<'_>| d.inspect(i).iter().map(|h| h.sid).collect::<Vec<_>>();
        assert_eq!(sids(&tcp("10.0.0.1", "1.2.3.4", 1)), [1]);
        assert!(sids(&tcp("1.2.3.4", "10.0.0.1", 2)).is_empty());
    }

    #[test]
    fn geoip_values_parse_with_side_and_negation() {
        let g = GeoipCond::parse("any,FR,de").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((g.side, g.negated), (Side::Any, false));
        assert_eq!(g.countries, ["FR", "DE"]);
        let g = GeoipCond::parse("dst,!US").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((g.side, g.negated, g.countries.len()), (Side::Dst, true, 1));
        let g = GeoipCond::parse("RU").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.side, Side::Any);
        assert!(GeoipCond::parse("src,").is_err());
        assert!(GeoipCond::parse("src,FR,!DE").is_err());
        // without a database: no match
        assert!(!g.matches(ip("1.1.1.1"), ip("2.2.2.2")));
    }

    #[test]
    fn geoip_looks_countries_up_in_a_maxmind_test_database() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpora/maxmind-db/test-data/GeoIP2-Country-Test.mmdb");
        let Ok(db) = GeoDb::open(&root) else {
            eprintln!("SKIPPED geoip test database: {} not found", root.display());
            return;
        };
        let db = Arc::new(db);
        // 2.125.160.216/29 is in GB (registered in FR) in MaxMind's test data
        assert_eq!(db.country(ip("2.125.160.216")).as_deref(), Some("GB"));
        let mut g = GeoipCond::parse("src,GB").unwrap_or_else(|e| panic!("{e}"));
        g.bind(&db);
        assert!(g.matches(ip("2.125.160.216"), ip("10.0.0.1")));
        assert!(!g.matches(ip("10.0.0.1"), ip("2.125.160.216")));
        let mut not_gb = GeoipCond::parse("src,!GB").unwrap_or_else(|e| panic!("{e}"));
        not_gb.bind(&db);
        assert!(!not_gb.matches(ip("2.125.160.216"), ip("10.0.0.1")));
        // an unknown address matches no country, negated or not
        assert!(!not_gb.matches(ip("10.0.0.1"), ip("10.0.0.1")));
    }
}
