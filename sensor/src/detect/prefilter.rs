//! Signature groups and the multi-pattern prefilter of the [`Detector`](super::Detector).
//!
//! Like Suricata's signature group heads, the rules are split by what every packet tells before
//! any byte of payload is looked at, so that a packet only scans the patterns of the rules that
//! could match it:
//!
//! - the transport (TCP, UDP, ICMP, other; `ip` rules are in every transport, an
//!   application-protocol rule in the transports of its protocol);
//! - the direction in the flow (a rule with `flow:to_server` is not in the to-client groups);
//! - whether the source and the destination address are in `$HOME_NET`: a rule whose source is
//!   `$EXTERNAL_NET` is not in the groups of packets sent from inside (the address expressions
//!   are compared as sets of addresses, so any expression is placed exactly; a bidirectional
//!   rule is in the groups of both orientations).
//!
//! Groups holding the same rules share one set of automata. Each group has, per buffer (and
//! transform chain), one ASCII-case-insensitive Aho-Corasick automaton over the fast patterns of
//! its rules, a DFA for the packet payload (scanned on every packet) while it stays small; rules
//! without a fast pattern are either indexed by the networks of their address list (IP
//! reputation rules) or checked on every inspection that has the buffer they need. The
//! candidates are then verified completely by the matcher, so the grouping only decides which
//! rules are looked at, never whether one matches.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::net::IpAddr;

use super::compile::{Buffer, CompiledRule, Direction, RuleProto};
use super::keywords::{Transform, transform};
use super::literals::Literals;
use super::matcher::{Inspection, PayloadKind, Transport, payload_modes};
use super::parse::{AddrExpr, PortExpr};

const TRANSPORTS: usize = 4;
/// The payload kinds ([`PayloadKind`]): a TCP segment is only inspected by the packet rules
/// and a stream chunk by the stream rules, so each has groups of just those rules.
const KINDS: usize = 3;
/// payload kind x transport x direction x source in `$HOME_NET` x destination in `$HOME_NET`
const SLOTS: usize = KINDS * TRANSPORTS * 8;

fn kind_index(k: PayloadKind) -> usize {
    match k {
        PayloadKind::Any => 0,
        PayloadKind::Stream => 1,
        PayloadKind::StreamSegment => 2,
    }
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Tcp => 0,
        Transport::Udp => 1,
        Transport::Icmp | Transport::Icmpv6 => 2,
        Transport::Sctp | Transport::Other(_) => 3,
    }
}

fn slot(kind: usize, transport: usize, dir: Direction, src_home: bool, dst_home: bool) -> usize {
    kind * TRANSPORTS * 8
        + transport * 8
        + usize::from(dir == Direction::ToClient) * 4
        + usize::from(src_home) * 2
        + usize::from(dst_home)
}

/// The transports a rule can match.
fn rule_transports(r: &CompiledRule) -> [bool; TRANSPORTS] {
    let mut g = match r.proto {
        RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6 => [true; TRANSPORTS],
        RuleProto::Tcp | RuleProto::TcpPkt | RuleProto::TcpStream => [true, false, false, false],
        RuleProto::Udp => [false, true, false, false],
        RuleProto::Icmp | RuleProto::Icmpv4 | RuleProto::Icmpv6 => [false, false, true, false],
        RuleProto::Sctp => [false, false, false, true],
        RuleProto::Http1 | RuleProto::App(_) => [true, true, false, false],
    };
    if let Some(a) = r.app_proto {
        g[2] = false;
        g[3] = false;
        match a.transport() {
            "tcp" => g[1] = false,
            "udp" => g[0] = false,
            _ => {}
        }
    }
    g
}

/// A set of IP addresses: sorted, disjoint, non-adjacent inclusive ranges per family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IpSet {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

const V4_MAX: u128 = u32::MAX as u128;

fn normalize(mut r: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    r.retain(|&(a, b)| a <= b);
    r.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn complement(r: &[(u128, u128)], max: u128) -> Vec<(u128, u128)> {
    let mut out = Vec::with_capacity(r.len() + 1);
    let mut next = Some(0u128);
    for &(a, b) in r {
        if let Some(n) = next
            && a > n
        {
            out.push((n, a - 1));
        }
        next = b.checked_add(1).filter(|&n| n <= max);
    }
    if let Some(n) = next {
        out.push((n, max));
    }
    out
}

fn union(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    normalize(a.iter().chain(b).copied().collect())
}

fn intersects(a: &[(u128, u128)], b: &[(u128, u128)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].1 < b[j].0 {
            i += 1;
        } else if b[j].1 < a[i].0 {
            j += 1;
        } else {
            return true;
        }
    }
    false
}

fn contains(r: &[(u128, u128)], v: u128) -> bool {
    let i = r.partition_point(|&(_, b)| b < v);
    r.get(i).is_some_and(|&(a, _)| a <= v)
}

impl IpSet {
    fn all() -> IpSet {
        IpSet { v4: vec![(0, V4_MAX)], v6: vec![(0, u128::MAX)] }
    }

    /// The addresses an address expression matches (as [`AddrExpr::matches`] decides).
    pub(crate) fn of(e: &AddrExpr) -> IpSet {
        match e {
            AddrExpr::Any => IpSet::all(),
            AddrExpr::Net(n) => match n.addr {
                IpAddr::V4(a) => {
                    let host = if n.prefix >= 32 { 0 } else { V4_MAX >> n.prefix };
                    let lo = u128::from(u32::from(a)) & !host & V4_MAX;
                    IpSet { v4: vec![(lo, lo | host)], v6: Vec::new() }
                }
                IpAddr::V6(a) => {
                    let host = if n.prefix >= 128 { 0 } else { u128::MAX >> n.prefix };
                    let lo = u128::from(a) & !host;
                    IpSet { v4: Vec::new(), v6: vec![(lo, lo | host)] }
                }
            },
            AddrExpr::Range(a, b) => match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    IpSet { v4: normalize(vec![(u32::from(*a).into(), u32::from(*b).into())]), v6: Vec::new() }
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    IpSet { v4: Vec::new(), v6: normalize(vec![(u128::from(*a), u128::from(*b))]) }
                }
                _ => IpSet::default(),
            },
            AddrExpr::Not(inner) => IpSet::of(inner).complement(),
            AddrExpr::Group(items) => {
                let mut pos: Option<IpSet> = None;
                let mut neg = IpSet::default();
                for it in items {
                    match it {
                        AddrExpr::Not(inner) => neg = neg.union(&IpSet::of(inner)),
                        other => {
                            let s = IpSet::of(other);
                            pos = Some(match pos {
                                None => s,
                                Some(p) => p.union(&s),
                            });
                        }
                    }
                }
                pos.unwrap_or_else(IpSet::all).minus(&neg)
            }
        }
    }

    fn complement(&self) -> IpSet {
        IpSet { v4: complement(&self.v4, V4_MAX), v6: complement(&self.v6, u128::MAX) }
    }

    fn union(&self, o: &IpSet) -> IpSet {
        IpSet { v4: union(&self.v4, &o.v4), v6: union(&self.v6, &o.v6) }
    }

    fn minus(&self, o: &IpSet) -> IpSet {
        // a \ b = !(!a | b)
        self.complement().union(o).complement()
    }

    fn intersects(&self, o: &IpSet) -> bool {
        intersects(&self.v4, &o.v4) || intersects(&self.v6, &o.v6)
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => contains(&self.v4, u32::from(a).into()),
            IpAddr::V6(a) => contains(&self.v6, u128::from(a)),
        }
    }
}

fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn masked(v6: bool, v: u128, prefix: u8) -> u128 {
    let width = if v6 { 128 } else { 32 };
    if prefix == 0 { 0 } else { v & (u128::MAX << (width - u32::from(prefix).min(width))) }
}

/// The networks of a positive address list (no negation, no range), if it is one.
fn positive_nets(e: &AddrExpr) -> Option<Vec<(bool, u8, u128)>> {
    match e {
        AddrExpr::Net(n) => {
            let (v6, bits) = ip_bits(n.addr);
            Some(vec![(v6, n.prefix, masked(v6, bits, n.prefix))])
        }
        AddrExpr::Group(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(positive_nets(i)?);
            }
            (!out.is_empty()).then_some(out)
        }
        _ => None,
    }
}

/// The more specific of a rule's address lists, for the address index.
fn index_nets(r: &CompiledRule) -> Option<Vec<(bool, u8, u128)>> {
    let min_prefix = |v: &Vec<(bool, u8, u128)>| v.iter().map(|n| n.1 + if n.0 { 0 } else { 96 }).min().unwrap_or(0);
    match (positive_nets(&r.src), positive_nets(&r.dst)) {
        (Some(a), Some(b)) => Some(if min_prefix(&a) >= min_prefix(&b) { a } else { b }),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
    // only worth it for specific lists (a /8 would make most packets candidates anyway)
    .filter(|v| min_prefix(v) >= 96 + 16)
}

struct Prefilter {
    /// The buffer and transforms the patterns are searched in.
    buffer: Buffer,
    transforms: Vec<Transform>,
    ac: Literals,
    /// rules per pattern id
    rules: Vec<Vec<u32>>,
    /// Every pattern of this prefilter can only count when it ends within this many bytes
    /// from the start of the buffer (absolute `depth`): only that much is scanned.
    head: Option<usize>,
}

/// A fast pattern bounded by a `depth` up to this is searched in a prefilter over the start of
/// the buffer only (as Suricata gives the pattern's depth to the multi-pattern matcher).
const HEAD_MAX: u32 = 256;

/// How far into the buffer the fast pattern of `r` can end for the rule to match: the absolute
/// `depth` of its content (every content of the rule with those bytes, in that buffer), if any.
fn fast_pattern_bound(r: &CompiledRule) -> Option<u32> {
    let fp = r.fast_pattern.as_ref()?;
    let mut bound: Option<u32> = None;
    for l in r.lists.iter().filter(|l| l.buffer == fp.buffer && l.transforms == fp.transforms) {
        for it in &l.items {
            let super::compile::Item::Content(c) = it else { continue };
            if c.negated {
                continue;
            }
            let bytes = match c.fp_chop {
                Some((x, y)) => c.pattern.get(x..x + y),
                None => Some(c.pattern.as_slice()),
            };
            if bytes != Some(fp.bytes.as_slice()) {
                continue;
            }
            // relative or positioned by byte_extract variables: anywhere
            let d = c.depth.filter(|_| !c.is_relative() && c.vars.iter().all(Option::is_none))?;
            bound = Some(bound.map_or(d, |b| b.max(d)));
        }
    }
    bound
}

#[derive(Default)]
struct Group {
    prefilters: Vec<Prefilter>,
    /// rules with no fast pattern, with the buffer they need (if any)
    always: Vec<(Option<Buffer>, u32)>,
    /// Per rule of `always`, the ports (source, destination) a packet must have for the rule to
    /// match, when some are given and the rule is not bidirectional (many such rules are
    /// header-only rules for one port).
    always_ports: Vec<Option<Box<(PortExpr, PortExpr)>>>,
    /// The rules of [`AddrIndex`] in this group: one bit per rule id (empty when none).
    addr_rules: Vec<u64>,
    /// The (IPv6, prefix length) pairs of those rules' networks.
    addr_prefixes: Vec<(bool, u8)>,
}

impl Group {
    fn has_addr_rule(&self, r: u32) -> bool {
        self.addr_rules.get(r as usize >> 6).is_some_and(|w| w & (1u64 << (r & 63)) != 0)
    }
}

/// Rules with no fast pattern and no buffer whose source or destination is a list of networks
/// (IP reputation lists): candidates when the packet's source or destination address is in one
/// of them. One index for all groups (ET Open's lists hold tens of thousands of networks, and a
/// rule is in several groups); each group filters it by its own rules.
#[derive(Default)]
struct AddrIndex {
    /// (IPv6, prefix length, masked address) to a range of `rules`.
    nets: FxHashMap<(bool, u8, u128), (u32, u32)>,
    rules: Vec<u32>,
}

impl AddrIndex {
    /// Indexes every rule that has no fast pattern, needs no buffer and has a specific network
    /// list (see [`index_nets`]), in rule order; `prefixes[i]`: the (IPv6, prefix length) pairs
    /// of rule `i`'s networks, empty when the rule is not indexed.
    fn build(rules: &[CompiledRule]) -> (AddrIndex, Vec<Vec<(bool, u8)>>) {
        let mut entries: Vec<((bool, u8, u128), u32)> = Vec::new();
        let mut prefixes = vec![Vec::new(); rules.len()];
        for (idx, r) in rules.iter().enumerate() {
            if r.fast_pattern.is_some() || needed_buffer(r).is_some() {
                continue;
            }
            if let Some(nets) = index_nets(r) {
                let mut ps: Vec<(bool, u8)> = nets.iter().map(|n| (n.0, n.1)).collect();
                ps.sort_unstable();
                ps.dedup();
                prefixes[idx] = ps;
                entries.extend(nets.into_iter().map(|n| (n, idx as u32)));
            }
        }
        // stable: the rules of one network stay in rule order
        entries.sort_by_key(|e| e.0);
        entries.dedup();
        let mut ix = AddrIndex { nets: FxHashMap::default(), rules: Vec::with_capacity(entries.len()) };
        ix.nets.reserve(entries.len());
        for (key, r) in entries {
            let at = ix.rules.len() as u32;
            let range = ix.nets.entry(key).or_insert((at, 0));
            range.1 += 1;
            ix.rules.push(r);
        }
        ix.nets.shrink_to_fit();
        (ix, prefixes)
    }

    fn get(&self, key: &(bool, u8, u128)) -> &[u32] {
        match self.nets.get(key) {
            Some(&(at, n)) => self.rules.get(at as usize..(at + n) as usize).unwrap_or_default(),
            None => &[],
        }
    }
}

/// The buffer a rule without a fast pattern needs (any non-payload list; an absent buffer means
/// no match), if any.
fn needed_buffer(r: &CompiledRule) -> Option<Buffer> {
    r.lists.iter().filter(|l| l.absent.is_none()).map(|l| l.buffer).find(|b| *b != Buffer::Payload && !b.is_virtual())
}

/// The signature groups of a detector.
pub(crate) struct Prefilters {
    /// `$HOME_NET` (empty without one: every address is then outside).
    home: IpSet,
    /// The group of each slot (see [`slot`]).
    slots: [u32; SLOTS],
    groups: Vec<Group>,
    by_addr: AddrIndex,
    /// Per rule, how its candidates' addresses are checked.
    addr_checks: Vec<AddrCheck>,
}

/// How the matcher checks the addresses of a rule that is a candidate of a signature group.
pub(crate) enum AddrCheck {
    /// With the rule's address expressions.
    Exprs,
    /// Nothing left to check: the source and the destination are each exactly `any`,
    /// `$HOME_NET` or its complement and the rule is not bidirectional, so the groups holding
    /// it are those of packets whose addresses match.
    Implied,
    /// With the sets of addresses (source, destination) of long lists: a binary search
    /// instead of a walk over every network of the list.
    Sets(Box<(IpSet, IpSet)>),
}

impl AddrCheck {
    /// Whether `src` and `dst` match the rule's source and destination addresses.
    pub(crate) fn matches(&self, r: &CompiledRule, src: IpAddr, dst: IpAddr) -> bool {
        match self {
            AddrCheck::Exprs => r.src.matches(src) && r.dst.matches(dst),
            AddrCheck::Implied => true,
            AddrCheck::Sets(s) => s.0.contains(src) && s.1.contains(dst),
        }
    }
}

/// Address lists with more networks than this are checked as sets ([`AddrCheck::Sets`]).
const SET_MIN_LEAVES: usize = 4;

/// The networks and ranges of an address expression.
fn leaves(e: &AddrExpr) -> usize {
    match e {
        AddrExpr::Any => 0,
        AddrExpr::Net(_) | AddrExpr::Range(..) => 1,
        AddrExpr::Not(inner) => leaves(inner),
        AddrExpr::Group(items) => items.iter().map(leaves).sum(),
    }
}

/// Size figures of the prefilter, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefilterStats {
    /// Distinct signature groups (slots holding the same rules share one).
    pub groups: usize,
    /// Aho-Corasick automata over all groups.
    pub automata: usize,
    /// Fast patterns over all automata.
    pub patterns: usize,
    /// Entries (network, rule) of the index of rules by the networks of their address list
    /// (one index shared by the groups).
    pub by_addr: usize,
    /// Rules without a fast pattern checked on every inspection, over all groups.
    pub always: usize,
    /// Heap memory of the automata, bytes.
    pub memory: usize,
}

thread_local! {
    /// Per-thread scratch of [`Prefilters::candidates`]: pattern ids of one automaton.
    static PATTERN_HITS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl Prefilters {
    /// Groups `rules` (indexes into the slice are the rule ids) around `home` (`$HOME_NET`).
    pub(crate) fn build<'r>(rules: &'r [CompiledRule], home: Option<&AddrExpr>) -> Prefilters {
        let home = home.map(IpSet::of).unwrap_or_default();
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); SLOTS];
        // [outside $HOME_NET possible, inside possible]; the last few expressions are remembered
        // (most rules use `$HOME_NET`, `$EXTERNAL_NET` or `any`)
        // (and whether the expression is exactly `any`, `$HOME_NET` or its complement: then the
        // groups decide it, see AddrCheck::Implied)
        let mut recent: Vec<(&AddrExpr, [bool; 2], bool)> = Vec::new();
        let complement = home.complement();
        let mut place = |e: &'r AddrExpr| -> ([bool; 2], bool) {
            if matches!(e, AddrExpr::Any) {
                return ([true, true], true);
            }
            if let Some(&(_, p, exact)) = recent.iter().find(|(r, _, _)| *r == e) {
                return (p, exact);
            }
            let s = IpSet::of(e);
            let p = [!s.minus(&home).is_empty(), s.intersects(&home)];
            let exact = match p {
                [true, true] => s == IpSet::all(),
                [false, true] => s == home,
                [true, false] => s == complement,
                [false, false] => false,
            };
            if recent.len() == 8 {
                recent.remove(0);
            }
            recent.push((e, p, exact));
            (p, exact)
        };
        let mut implied = vec![false; rules.len()];
        for (idx, r) in rules.iter().enumerate() {
            let ((src, src_exact), (dst, dst_exact)) = (place(&r.src), place(&r.dst));
            implied[idx] = src_exact && dst_exact && !r.bidirectional;
            let transports = rule_transports(r);
            // the kinds whose inspections the rule can match (as `rule_matches` decides)
            let (stream, packet) = payload_modes(r);
            let kinds = [true, stream, packet];
            for dir in [Direction::ToServer, Direction::ToClient] {
                if r.direction.is_some_and(|d| d != dir) {
                    continue;
                }
                for sh in [false, true] {
                    for dh in [false, true] {
                        let fwd = src[usize::from(sh)] && dst[usize::from(dh)];
                        let rev = r.bidirectional && src[usize::from(dh)] && dst[usize::from(sh)];
                        if !(fwd || rev) {
                            continue;
                        }
                        for (k, in_kind) in kinds.iter().enumerate() {
                            for (t, member) in transports.iter().enumerate() {
                                if *member && *in_kind {
                                    members[slot(k, t, dir, sh, dh)].push(idx as u32);
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut distinct: Vec<Vec<u32>> = Vec::new();
        let mut by_members: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        let mut slots = [0u32; SLOTS];
        for (s, m) in members.into_iter().enumerate() {
            slots[s] = *by_members.entry(m).or_insert_with_key(|m| {
                distinct.push(m.clone());
                (distinct.len() - 1) as u32
            });
        }
        let (by_addr, addr_prefixes) = AddrIndex::build(rules);
        let groups = build_in_parallel(rules, &distinct, &addr_prefixes);
        let addr_checks = implied
            .iter()
            .zip(rules)
            .zip(&addr_prefixes)
            .map(|((&implied, r), indexed)| {
                if implied {
                    AddrCheck::Implied
                } else if indexed.is_empty() && (leaves(&r.src) > SET_MIN_LEAVES || leaves(&r.dst) > SET_MIN_LEAVES) {
                    // (a rule of the address index is only verified when an address is in its list)
                    AddrCheck::Sets(Box::new((IpSet::of(&r.src), IpSet::of(&r.dst))))
                } else {
                    AddrCheck::Exprs
                }
            })
            .collect();
        Prefilters { home, slots, groups, by_addr, addr_checks }
    }

    /// How the matcher checks the addresses of rule `r` when it is a candidate of
    /// [`Prefilters::candidates`].
    pub(crate) fn addr_check(&self, r: u32) -> &AddrCheck {
        self.addr_checks.get(r as usize).unwrap_or(&AddrCheck::Exprs)
    }

    /// Adds to `cands` the rules worth verifying on `insp` (unsorted, possibly repeated).
    pub(crate) fn candidates(&self, insp: &Inspection<'_>, cands: &mut Vec<u32>) {
        let s = slot(
            kind_index(insp.payload_kind),
            transport_index(insp.proto),
            insp.direction,
            self.home.contains(insp.src_ip),
            self.home.contains(insp.dst_ip),
        );
        let group = &self.groups[self.slots[s] as usize];
        PATTERN_HITS.with(|h| {
            let mut hit = h.borrow_mut();
            for pf in &group.prefilters {
                hit.clear();
                for base in insp.buffers(pf.buffer) {
                    if base.is_empty() && pf.transforms.is_empty() {
                        continue;
                    }
                    let data = transform(base, &pf.transforms);
                    let data = match pf.head {
                        Some(n) => &data[..n.min(data.len())],
                        None => &data[..],
                    };
                    pf.ac.find_all(data, |id| hit.push(id));
                }
                hit.sort_unstable();
                hit.dedup();
                for &p in hit.iter() {
                    cands.extend_from_slice(&pf.rules[p as usize]);
                }
            }
        });
        for (&(need, r), ports) in group.always.iter().zip(&group.always_ports) {
            if need.is_none_or(|b| insp.buffer(b).is_some())
                && ports.as_ref().is_none_or(|p| p.0.matches(insp.src_port) && p.1.matches(insp.dst_port))
            {
                cands.push(r);
            }
        }
        if !group.addr_rules.is_empty() {
            for ip in [insp.src_ip, insp.dst_ip] {
                let (v6, bits) = ip_bits(ip);
                for &(pv6, prefix) in &group.addr_prefixes {
                    if pv6 == v6 {
                        let rs = self.by_addr.get(&(v6, prefix, masked(v6, bits, prefix)));
                        cands.extend(rs.iter().copied().filter(|&r| group.has_addr_rule(r)));
                    }
                }
            }
        }
    }

    pub fn stats(&self) -> PrefilterStats {
        let mut st =
            PrefilterStats { groups: self.groups.len(), by_addr: self.by_addr.rules.len(), ..Default::default() };
        for g in &self.groups {
            st.automata += g.prefilters.len();
            st.patterns += g.prefilters.iter().map(|p| p.ac.len()).sum::<usize>();
            st.memory += g.prefilters.iter().map(|p| p.ac.memory_usage()).sum::<usize>();
            st.always += g.always.len();
        }
        st
    }
}

/// Builds the groups on the machine's cores (at most two threads: the automata are the bulk).
fn build_in_parallel(rules: &[CompiledRule], distinct: &[Vec<u32>], addr_rule: &[Vec<(bool, u8)>]) -> Vec<Group> {
    let build_group = |rules, m| build_group(rules, m, addr_rule);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    if threads < 2 || distinct.len() < 2 {
        return distinct.iter().map(|m| build_group(rules, m)).collect();
    }
    // split by pattern weight so the two halves take about as long
    let weight: Vec<usize> = distinct.iter().map(|m| m.len()).collect();
    let mut order: Vec<usize> = (0..distinct.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight[i]));
    let (mut a, mut b, mut wa, mut wb) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for i in order {
        if wa <= wb {
            wa += weight[i];
            a.push(i);
        } else {
            wb += weight[i];
            b.push(i);
        }
    }
    let mut out: Vec<Option<Group>> = (0..distinct.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let other = s.spawn(|| b.iter().map(|&i| (i, build_group(rules, &distinct[i]))).collect::<Vec<_>>());
        for &i in &a {
            out[i] = Some(build_group(rules, &distinct[i]));
        }
        match other.join() {
            Ok(built) => {
                for (i, g) in built {
                    out[i] = Some(g);
                }
            }
            // a panic while building is a bug; rebuild here rather than lose the rules
            Err(_) => {
                for &i in &b {
                    out[i] = Some(build_group(rules, &distinct[i]));
                }
            }
        }
    });
    out.into_iter().zip(distinct).map(|(g, m)| g.unwrap_or_else(|| build_group(rules, m))).collect()
}

/// One group's prefilters over the rules `members` (in rule order); `addr_rule[i]`: the network
/// prefixes of rule `i` in the [`AddrIndex`] (empty: not indexed).
fn build_group(rules: &[CompiledRule], members: &[u32], addr_rule: &[Vec<(bool, u8)>]) -> Group {
    // per (buffer, transforms): (lower-cased pattern -> pattern id, patterns, rules per pattern)
    #[derive(Default)]
    struct Table {
        ids: FxHashMap<Vec<u8>, usize>,
        pats: Vec<Vec<u8>>,
        rules: Vec<Vec<u32>>,
        /// the largest bound of the patterns (head tables)
        head: u32,
    }
    /// buffer, transforms, whether the patterns are bounded by a small depth
    type TableKey = (Buffer, Vec<Transform>, bool);
    let mut tables: Vec<(TableKey, Table)> = Vec::new();
    let mut group = Group::default();
    for &idx in members {
        let r = &rules[idx as usize];
        match &r.fast_pattern {
            Some(fp) => {
                let bound = fast_pattern_bound(r).filter(|&b| b <= HEAD_MAX);
                let head = bound.is_some();
                let ti = match tables.iter().position(|(k, _)| k.0 == fp.buffer && k.1 == fp.transforms && k.2 == head)
                {
                    Some(i) => i,
                    None => {
                        tables.push(((fp.buffer, fp.transforms.clone(), head), Table::default()));
                        tables.len() - 1
                    }
                };
                let t = &mut tables[ti].1;
                t.head = t.head.max(bound.unwrap_or(0));
                let key = fp.bytes.to_ascii_lowercase();
                let id = match t.ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        t.pats.push(key.clone());
                        t.rules.push(Vec::new());
                        t.ids.insert(key, t.pats.len() - 1);
                        t.pats.len() - 1
                    }
                };
                t.rules[id].push(idx);
            }
            None if addr_rule.get(idx as usize).is_some_and(|p| !p.is_empty()) => {
                if group.addr_rules.is_empty() {
                    group.addr_rules = vec![0; rules.len().div_ceil(64)];
                }
                if let Some(w) = group.addr_rules.get_mut(idx as usize >> 6) {
                    *w |= 1u64 << (idx & 63);
                }
                for p in addr_rule.get(idx as usize).into_iter().flatten() {
                    if !group.addr_prefixes.contains(p) {
                        group.addr_prefixes.push(*p);
                    }
                }
            }
            None => {
                group.always.push((needed_buffer(r), idx));
                let ports = !(r.bidirectional || r.src_ports.is_any() && r.dst_ports.is_any());
                group.always_ports.push(ports.then(|| Box::new((r.src_ports.clone(), r.dst_ports.clone()))));
            }
        }
    }
    for ((buffer, transforms, head), t) in tables {
        let ac = Literals::new(&t.pats);
        let head = head.then_some(t.head as usize);
        group.prefilters.push(Prefilter { buffer, transforms, ac, rules: t.rules, head });
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::matcher::{Detector, rule_matches};
    use crate::detect::parse::Vars;

    #[test]
    fn ip_sets_hold_exactly_the_addresses_an_expression_matches() {
        let vars = Vars::default();
        let ips: Vec<IpAddr> = [
            "0.0.0.0",
            "10.0.0.1",
            "10.255.255.255",
            "11.0.0.0",
            "172.16.5.4",
            "172.32.0.1",
            "192.168.1.10",
            "203.0.113.5",
            "203.0.113.6",
            "255.255.255.255",
            "::",
            "2001:db8::1",
            "2001:db8::2",
            "fd00::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for text in [
            "any",
            "$HOME_NET",
            "$EXTERNAL_NET",
            "203.0.113.5",
            "!203.0.113.5",
            "[10.0.0.0/8,!10.0.0.1]",
            "[!10.0.0.1]",
            "[$HOME_NET,!192.168.0.0/16]",
            "[203.0.113.5,2001:db8::/127]",
            "![2001:db8::1,fd00::/8]",
            "[[10.0.0.0/8,172.16.0.0/12],![10.0.0.0/9]]",
            "0.0.0.0/0",
            "::/0",
        ] {
            let e = vars.parse_address(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let set = IpSet::of(&e);
            for ip in &ips {
                assert_eq!(set.contains(*ip), e.matches(*ip), "{text} {ip}");
            }
        }
    }

    /// The rules that match `insp`, checking every rule, and checking the candidates only.
    fn matching(d: &Detector, p: &Prefilters, insp: &Inspection<'_>) -> (Vec<usize>, Vec<usize>) {
        let all: Vec<usize> = (0..d.rules().len()).filter(|&i| rule_matches(&d.rules()[i], insp)).collect();
        let mut cands = Vec::new();
        p.candidates(insp, &mut cands);
        cands.sort_unstable();
        cands.dedup();
        let via: Vec<usize> =
            cands.iter().map(|&i| i as usize).filter(|&i| rule_matches(&d.rules()[i], insp)).collect();
        (all, via)
    }

    #[test]
    fn groups_never_lose_a_rule_that_matches() {
        let (d, errors) = Detector::from_rules(
            concat!(
                "alert tcp $EXTERNAL_NET any -> $HOME_NET any (content:\"attack\"; flow:to_server; sid:1;)\n",
                "alert tcp $HOME_NET any -> $EXTERNAL_NET any (content:\"attack\"; flow:to_client; sid:2;)\n",
                "alert tcp $HOME_NET any <> $EXTERNAL_NET any (content:\"attack\"; sid:3;)\n",
                "alert tcp any any -> any any (content:\"attack\"; sid:4;)\n",
                "alert udp $HOME_NET any -> $HOME_NET any (content:\"attack\"; sid:5;)\n",
                "alert ip [203.0.113.5,2001:db8::1] any -> any any (msg:\"rep\"; sid:6;)\n",
                "alert tcp ![10.0.0.0/8,192.168.0.0/16] any -> 10.0.0.0/8 any (content:\"att\"; depth:3; sid:7;)\n",
                "alert tcp any any -> any any (dsize:>0; sid:8;)\n",
                "alert tcp any any -> any any (content:\"at\"; sid:9;)\n",
            ),
            "t.rules",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let home = Vars::default().parse_address("$HOME_NET").unwrap();
        let p = Prefilters::build(d.rules(), Some(&home));
        assert!(p.stats().groups > 1, "split into groups");
        let ips = ["10.0.0.1", "192.168.1.10", "172.20.0.1", "203.0.113.5", "198.51.100.1", "2001:db8::1", "fd00::1"];
        let mut checked = 0;
        for src in ips {
            for dst in ips {
                for dir in [Direction::ToServer, Direction::ToClient] {
                    for proto in [Transport::Tcp, Transport::Udp, Transport::Icmp] {
                        for payload in [&b"an attack here"[..], b"attack", b"xx", b""] {
                            let insp = Inspection::new(
                                proto,
                                src.parse().unwrap(),
                                1024,
                                dst.parse().unwrap(),
                                80,
                                dir,
                                payload,
                            );
                            let (all, via) = matching(&d, &p, &insp);
                            assert_eq!(all, via, "{src} -> {dst} {dir:?} {proto:?} {payload:?}");
                            checked += usize::from(!all.is_empty());
                        }
                    }
                }
            }
        }
        assert!(checked > 50, "the packets match rules ({checked})");
        // and the groups do narrow: an inside-to-inside packet has no rule of $EXTERNAL_NET
        let insp = Inspection::new(
            Transport::Tcp,
            "10.0.0.1".parse().unwrap(),
            1024,
            "10.0.0.2".parse().unwrap(),
            80,
            Direction::ToServer,
            b"attack",
        );
        let mut cands = Vec::new();
        p.candidates(&insp, &mut cands);
        cands.sort_unstable();
        cands.dedup();
        let sids: Vec<u32> = cands.iter().map(|&i| d.rules()[i as usize].meta.sid).collect();
        assert!(!sids.contains(&1) && !sids.contains(&2) && !sids.contains(&3) && sids.contains(&4), "{sids:?}");
    }

    #[test]
    fn the_address_index_is_one_for_all_groups_and_each_group_keeps_its_own_rules() {
        let (d, errors) = Detector::from_rules(
            concat!(
                "alert ip [203.0.113.5,203.0.113.6] any -> $HOME_NET any (msg:\"rep in\"; sid:1;)\n",
                "alert ip $HOME_NET any -> [203.0.113.5,203.0.113.7] any (msg:\"rep out\"; sid:2;)\n",
            ),
            "t.rules",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let home = Vars::default().parse_address("$HOME_NET").unwrap();
        let p = Prefilters::build(d.rules(), Some(&home));
        // each rule is in the groups of every transport and direction, yet indexed once per network
        assert_eq!(p.stats().by_addr, 4);
        let sids = |src: &str, dst: &str| {
            let mut c = Vec::new();
            let insp = Inspection::new(
                Transport::Tcp,
                src.parse().unwrap(),
                1,
                dst.parse().unwrap(),
                2,
                Direction::ToServer,
                b"x",
            );
            p.candidates(&insp, &mut c);
            let mut s: Vec<u32> = c.iter().map(|&i| d.rules()[i as usize].meta.sid).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        // 203.0.113.5 indexes both rules; the inbound group holds only sid 1, the outbound only sid 2
        assert_eq!(sids("203.0.113.5", "10.0.0.1"), [1]);
        assert_eq!(sids("10.0.0.1", "203.0.113.5"), [2]);
        assert_eq!(sids("10.0.0.1", "203.0.113.7"), [2]);
        assert!(sids("203.0.113.7", "10.0.0.1").is_empty());
        assert!(sids("203.0.113.9", "10.0.0.1").is_empty());
    }

    #[test]
    fn a_depth_bounded_fast_pattern_is_searched_at_the_start_only() {
        let (d, errors) = Detector::from_rules(
            "alert tcp any any -> any any (content:\"MAGIC\"; depth:8; sid:1;)\n",
            "t.rules",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(fast_pattern_bound(&d.rules()[0]), Some(8));
        let p = Prefilters::build(d.rules(), None);
        let cands = |payload: &[u8]| {
            let mut c = Vec::new();
            let ip: IpAddr = "10.0.0.1".parse().unwrap();
            p.candidates(&Inspection::new(Transport::Tcp, ip, 1, ip, 2, Direction::ToServer, payload), &mut c);
            c
        };
        assert_eq!(cands(b"xxxMAGICyyyyyyyyyyyyyyyy"), [0]);
        assert!(cands(b"xxxxxxxxxMAGIC").is_empty(), "ends after the depth: no candidate");
    }

    #[test]
    fn candidates_whose_addresses_the_groups_decide_or_a_set_checks_match_as_their_expressions_say() {
        let (d, errors) = Detector::from_rules(
            concat!(
                "alert tcp $EXTERNAL_NET any -> $HOME_NET any (msg:\"in\"; sid:1;)\n",
                "alert tcp $HOME_NET any -> any any (msg:\"out\"; sid:2;)\n",
                "alert tcp any any -> any any (msg:\"any\"; sid:3;)\n",
                "alert tcp $HOME_NET any <> $EXTERNAL_NET any (msg:\"both ways\"; sid:4;)\n",
                "alert ip [203.0.113.0/24,198.51.100.0/25,192.0.2.7,10.1.0.0/16,2001:db8::/32,!203.0.113.9] any -> $HOME_NET any (msg:\"list\"; sid:5;)\n",
                "alert tcp [10.0.0.0/8,!10.0.0.1] any -> any any (msg:\"part of home\"; sid:6;)\n",
                // header-only rules for a port: candidates only on packets with it
                "alert tcp $HOME_NET any -> any 80 (msg:\"port\"; sid:7;)\n",
                "alert tcp any 1024 -> any 81 (msg:\"other port\"; sid:8;)\n",
                "alert tcp any 80 <> any any (msg:\"port both ways\"; sid:9;)\n",
            ),
            "t.rules",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let home = Vars::default().parse_address("$HOME_NET").unwrap();
        let p = Prefilters::build(d.rules(), Some(&home));
        let kinds: Vec<&str> = (0..9)
            .map(|r| match p.addr_check(r) {
                AddrCheck::Exprs => "exprs",
                AddrCheck::Implied => "implied",
                AddrCheck::Sets(_) => "sets",
            })
            .collect();
        assert_eq!(kinds, ["implied", "implied", "implied", "exprs", "sets", "exprs", "implied", "implied", "exprs"]);
        let ips =
            ["10.0.0.1", "10.1.2.3", "192.168.1.10", "203.0.113.5", "203.0.113.9", "198.51.100.200", "2001:db8::1"];
        let mut hits = 0;
        for src in ips {
            for dst in ips {
                for dir in [Direction::ToServer, Direction::ToClient] {
                    let insp = Inspection::new(
                        Transport::Tcp,
                        src.parse().unwrap(),
                        1024,
                        dst.parse().unwrap(),
                        80,
                        dir,
                        b"x",
                    );
                    let mut cands = Vec::new();
                    p.candidates(&insp, &mut cands);
                    assert!(!cands.contains(&7), "sid 8 is for port 81 only");
                    let mut want: Vec<u32> =
                        d.rules().iter().filter(|r| rule_matches(r, &insp)).map(|r| r.meta.sid).collect();
                    let mut got: Vec<u32> = d.inspect(&insp).iter().map(|h| h.sid).collect();
                    want.sort_unstable();
                    got.sort_unstable();
                    assert_eq!(got, want, "{src} -> {dst} {dir:?}");
                    hits += got.len();
                }
            }
        }
        assert!(hits > 100, "the packets match rules ({hits})");
    }

    #[test]
    fn a_segment_scans_only_packet_rules_and_a_chunk_only_stream_rules() {
        use crate::detect::matcher::PayloadKind;
        let (d, errors) = Detector::from_rules(
            concat!(
                "alert tcp any any -> any any (content:\"stream-only\"; sid:1;)\n",
                "alert tcp any any -> any any (content:\"packet-only\"; dsize:>5; sid:2;)\n",
                "alert tcp any any -> any any (content:\"both\"; offset:1; sid:3;)\n",
            ),
            "t.rules",
            &Vars::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let p = Prefilters::build(d.rules(), None);
        let payload = b"xx stream-only packet-only both";
        let sids = |kind| {
            let ip: IpAddr = "10.0.0.1".parse().unwrap();
            let insp = Inspection {
                payload_kind: kind,
                ..Inspection::new(Transport::Tcp, ip, 1, ip, 2, Direction::ToServer, payload)
            };
            let mut c = Vec::new();
            p.candidates(&insp, &mut c);
            let mut s: Vec<u32> = c.iter().map(|&i| d.rules()[i as usize].meta.sid).collect();
            s.sort_unstable();
            s.dedup();
            // the groups only narrow what the matcher would reject anyway
            let (all, via) = matching(&d, &p, &insp);
            assert_eq!(all, via, "{kind:?}");
            s
        };
        assert_eq!(sids(PayloadKind::Any), [1, 2, 3]);
        assert_eq!(sids(PayloadKind::Stream), [1, 3]);
        assert_eq!(sids(PayloadKind::StreamSegment), [2, 3]);
    }
}
