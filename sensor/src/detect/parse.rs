//! Rule text to [`ParsedRule`]: the syntax of a Suricata rule, without keyword semantics.
//!
//! ```text
//! action proto src_addr src_port -> dst_addr dst_port (key:value; key; ...)
//! ```
//!
//! - Lines whose first non-blank character is `#` and blank lines are skipped; a line ending in
//!   `\` continues on the next one (the backslash and the line break are removed).
//! - Addresses: `any`, an IPv4/IPv6 address, `addr/prefix`, `addr/netmask`, `first-last`,
//!   `$VAR`, `!expr`, groups `[expr, expr, ...]` (nested; negated members are subtracted from
//!   the union of the others, or from "any" when there are none).
//! - Ports: `any`, `80`, `a:b`, `a:`, `:b`, `$VAR`, `!expr`, groups.
//! - Options are separated by `;` not escaped by `\`; a value runs from the first `:` of the
//!   option to that `;`. Values are kept raw (quotes and escapes included): the keyword
//!   decides how to read them (see [`unquote`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::RuleError;

/// What to do when a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Alert,
    Pass,
    Drop,
    Reject,
    RejectSrc,
    RejectDst,
    RejectBoth,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "alert" => Action::Alert,
            "pass" => Action::Pass,
            "drop" => Action::Drop,
            "reject" => Action::Reject,
            "rejectsrc" => Action::RejectSrc,
            "rejectdst" => Action::RejectDst,
            "rejectboth" => Action::RejectBoth,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::Reject => "reject",
            Action::RejectSrc => "rejectsrc",
            Action::RejectDst => "rejectdst",
            Action::RejectBoth => "rejectboth",
        }
    }

    /// Suricata's default `action-order`: pass, drop, reject, alert.
    pub fn order(self) -> u8 {
        match self {
            Action::Pass => 0,
            Action::Drop => 1,
            Action::Reject | Action::RejectSrc | Action::RejectDst | Action::RejectBoth => 2,
            Action::Alert => 3,
        }
    }
}

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An address expression, variables already substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrExpr {
    Any,
    Net(IpNet),
    /// Inclusive range of addresses of one family.
    Range(IpAddr, IpAddr),
    Not(Box<AddrExpr>),
    /// Union of the non-negated members, minus every negated member.
    Group(Vec<AddrExpr>),
}

impl AddrExpr {
    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            AddrExpr::Any => true,
            AddrExpr::Net(n) => n.contains(ip),
            AddrExpr::Range(a, b) => match (a, b, ip) {
                (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => {
                    (u32::from(*a)..=u32::from(*b)).contains(&u32::from(x))
                }
                (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => {
                    (u128::from(*a)..=u128::from(*b)).contains(&u128::from(x))
                }
                _ => false,
            },
            AddrExpr::Not(e) => !e.matches(ip),
            AddrExpr::Group(items) => group_matches(
                items,
                |e| e.matches(ip),
                |e| match e {
                    AddrExpr::Not(inner) => Some(inner.as_ref()),
                    _ => None,
                },
            ),
        }
    }
}

/// A port expression, variables already substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortExpr {
    Any,
    /// Inclusive range.
    Range(u16, u16),
    Not(Box<PortExpr>),
    Group(Vec<PortExpr>),
}

impl PortExpr {
    pub fn matches(&self, port: u16) -> bool {
        match self {
            PortExpr::Any => true,
            PortExpr::Range(a, b) => (*a..=*b).contains(&port),
            PortExpr::Not(e) => !e.matches(port),
            PortExpr::Group(items) => group_matches(
                items,
                |e| e.matches(port),
                |e| match e {
                    PortExpr::Not(inner) => Some(inner.as_ref()),
                    _ => None,
                },
            ),
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, PortExpr::Any)
    }
}

fn group_matches<'a, T>(items: &'a [T], m: impl Fn(&T) -> bool, negated: impl Fn(&'a T) -> Option<&'a T>) -> bool {
    let mut has_positive = false;
    let mut positive = false;
    for it in items {
        match negated(it) {
            Some(inner) => {
                if m(inner) {
                    return false;
                }
            }
            None => {
                has_positive = true;
                positive = positive || m(it);
            }
        }
    }
    !has_positive || positive
}

/// Rule variables: address groups and port groups, by name (without the `$`).
#[derive(Clone, Debug)]
pub struct Vars {
    addresses: BTreeMap<String, String>,
    ports: BTreeMap<String, String>,
    /// Every variable's expression parsed once, on first use (a rules file names `$HOME_NET`
    /// and `$EXTERNAL_NET` in almost every rule); emptied by every change of a variable.
    parsed: std::sync::OnceLock<ParsedVars>,
}

/// The expression (or the error) of `$name` written in a rule, by variable name.
#[derive(Clone, Debug, Default)]
struct ParsedVars {
    addresses: BTreeMap<String, Result<AddrExpr, String>>,
    ports: BTreeMap<String, Result<PortExpr, String>>,
}

impl PartialEq for Vars {
    fn eq(&self, other: &Self) -> bool {
        self.addresses == other.addresses && self.ports == other.ports
    }
}

impl Eq for Vars {}

impl Default for Vars {
    fn default() -> Self {
        Vars::suricata_defaults()
    }
}

impl Vars {
    /// No variables at all.
    pub fn empty() -> Self {
        Vars { addresses: BTreeMap::new(), ports: BTreeMap::new(), parsed: std::sync::OnceLock::new() }
    }

    /// The variables of Suricata's default `suricata.yaml`.
    pub fn suricata_defaults() -> Self {
        let mut v = Vars::empty();
        v.set_address("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]");
        v.set_address("EXTERNAL_NET", "!$HOME_NET");
        for name in [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ] {
            v.set_address(name, "$HOME_NET");
        }
        v.set_address("AIM_SERVERS", "$EXTERNAL_NET");
        for (name, value) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
            ("SIP_PORTS", "[5060, 5061]"),
        ] {
            v.set_port(name, value);
        }
        v
    }

    /// Sets an address variable (`name` with or without the leading `$`).
    pub fn set_address(&mut self, name: &str, value: &str) {
        self.addresses.insert(name.trim_start_matches('$').to_string(), value.to_string());
        self.parsed = std::sync::OnceLock::new();
    }

    /// Sets a port variable (`name` with or without the leading `$`).
    pub fn set_port(&mut self, name: &str, value: &str) {
        self.ports.insert(name.trim_start_matches('$').to_string(), value.to_string());
        self.parsed = std::sync::OnceLock::new();
    }

    pub fn address(&self, name: &str) -> Option<&str> {
        self.addresses.get(name.trim_start_matches('$')).map(String::as_str)
    }

    pub fn port(&self, name: &str) -> Option<&str> {
        self.ports.get(name.trim_start_matches('$')).map(String::as_str)
    }

    /// Parses an address expression, substituting variables.
    pub fn parse_address(&self, text: &str) -> Result<AddrExpr, String> {
        ExprParser { s: text.as_bytes(), i: 0, vars: self, depth: 0 }.top_addr()
    }

    /// Parses a port expression, substituting variables.
    pub fn parse_ports(&self, text: &str) -> Result<PortExpr, String> {
        ExprParser { s: text.as_bytes(), i: 0, vars: self, depth: 0 }.top_port()
    }

    /// What `$name` parses to outside any variable (depth 0), every variable parsed once.
    fn parsed(&self) -> &ParsedVars {
        self.parsed.get_or_init(|| {
            let top = ExprParser { s: &[], i: 0, vars: self, depth: 0 };
            ParsedVars {
                addresses: self.addresses.keys().map(|k| (k.clone(), top.var_addr(k))).collect(),
                ports: self.ports.keys().map(|k| (k.clone(), top.var_port(k))).collect(),
            }
        })
    }
}

const MAX_VAR_DEPTH: u32 = 16;

struct ExprParser<'a> {
    s: &'a [u8],
    i: usize,
    vars: &'a Vars,
    depth: u32,
}

impl<'a> ExprParser<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(self.s).unwrap_or("?")
    }

    fn finish(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.i < self.s.len() {
            return Err(format!("unexpected '{}' in '{}'", self.s[self.i] as char, self.text()));
        }
        Ok(())
    }

    fn top_addr(mut self) -> Result<AddrExpr, String> {
        let e = self.addr()?;
        self.finish()?;
        Ok(e)
    }

    fn top_port(mut self) -> Result<PortExpr, String> {
        let e = self.port()?;
        self.finish()?;
        Ok(e)
    }

    /// Items of a group after the `[`, up to and including the `]`.
    fn group<T>(&mut self, item: impl Fn(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b']') {
                return Err(format!("empty group or trailing ',' in '{}'", self.text()));
            }
            items.push(item(self)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(format!("unterminated group in '{}'", self.text())),
            }
        }
    }

    fn var_name(&mut self) -> Result<&'a str, String> {
        self.i += 1; // '$'
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("empty variable name in '{}'", self.text()));
        }
        // ASCII letters, digits and '_' only: always UTF-8
        Ok(std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }

    fn atom(&mut self) -> &'a str {
        let start = self.i;
        while self.i < self.s.len()
            && !matches!(self.s[self.i], b',' | b']' | b'[')
            && !self.s[self.i].is_ascii_whitespace()
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn addr(&mut self) -> Result<AddrExpr, String> {
        self.skip_ws();
        match self.peek() {
            None => Err("empty address".to_string()),
            Some(b'!') => {
                self.i += 1;
                let e = self.addr()?;
                if e == AddrExpr::Any {
                    return Err("'!any' matches no address".to_string());
                }
                Ok(AddrExpr::Not(Box::new(e)))
            }
            Some(b'[') => {
                self.i += 1;
                Ok(AddrExpr::Group(self.group(|p| p.addr())?))
            }
            Some(b'$') => {
                let name = self.var_name()?;
                if self.depth == 0
                    && let Some(r) = self.vars.parsed().addresses.get(name)
                {
                    return r.clone();
                }
                self.var_addr(name)
            }
            Some(_) => {
                let a = self.atom();
                parse_addr_atom(a)
            }
        }
    }

    /// The expression of the address variable `name` (`$name` written at this depth).
    fn var_addr(&self, name: &str) -> Result<AddrExpr, String> {
        let other = self.vars.port(name).is_some();
        self.var_expr(name, self.vars.address(name), other, [("address", "an address"), ("port", "a port")], |sub| {
            sub.top_addr()
        })
    }

    /// The expression of the port variable `name` (`$name` written at this depth).
    fn var_port(&self, name: &str) -> Result<PortExpr, String> {
        let other = self.vars.address(name).is_some();
        self.var_expr(name, self.vars.port(name), other, [("port", "a port"), ("address", "an address")], |sub| {
            sub.top_port()
        })
    }

    /// Parses `value`, the text of the variable `name` of kind `kinds[0]` (its name and with
    /// its article), one level deeper; `other_kind` says the name is a variable of kind
    /// `kinds[1]` instead.
    fn var_expr<T>(
        &self,
        name: &str,
        value: Option<&str>,
        other_kind: bool,
        kinds: [(&str, &str); 2],
        top: impl FnOnce(ExprParser<'_>) -> Result<T, String>,
    ) -> Result<T, String> {
        let [(kind, a_kind), (_, an_other)] = kinds;
        let value = value.ok_or_else(|| {
            if other_kind {
                format!("${name} is {an_other} variable, used as {a_kind}")
            } else {
                format!("undefined {kind} variable ${name}")
            }
        })?;
        if self.depth >= MAX_VAR_DEPTH {
            return Err(format!("variable ${name} nests too deep (a cycle?)"));
        }
        let sub = ExprParser { s: value.as_bytes(), i: 0, vars: self.vars, depth: self.depth + 1 };
        top(sub).map_err(|e| format!("in ${name}: {e}"))
    }

    fn port(&mut self) -> Result<PortExpr, String> {
        self.skip_ws();
        match self.peek() {
            None => Err("empty port".to_string()),
            Some(b'!') => {
                self.i += 1;
                let e = self.port()?;
                if e == PortExpr::Any {
                    return Err("'!any' matches no port".to_string());
                }
                Ok(PortExpr::Not(Box::new(e)))
            }
            Some(b'[') => {
                self.i += 1;
                Ok(PortExpr::Group(self.group(|p| p.port())?))
            }
            Some(b'$') => {
                let name = self.var_name()?;
                if self.depth == 0
                    && let Some(r) = self.vars.parsed().ports.get(name)
                {
                    return r.clone();
                }
                self.var_port(name)
            }
            Some(_) => {
                // a range may be written with blanks around the ':' ("[80: 82]")
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b']' | b'[') {
                    self.i += 1;
                }
                match std::str::from_utf8(&self.s[start..self.i]) {
                    Ok(a) => parse_port_atom(a.trim()),
                    Err(_) => parse_port_atom(String::from_utf8_lossy(&self.s[start..self.i]).trim()),
                }
            }
        }
    }
}

fn parse_addr_atom(a: &str) -> Result<AddrExpr, String> {
    if a.is_empty() {
        return Err("empty address".to_string());
    }
    if a.eq_ignore_ascii_case("any") {
        return Ok(AddrExpr::Any);
    }
    let bad = || format!("invalid address '{a}'");
    if let Some((ip, mask)) = a.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match mask.parse::<u8>() {
            Ok(p) if p <= max => p,
            Ok(_) => return Err(bad()),
            Err(_) => {
                // dotted netmask, IPv4 only
                let m: Ipv4Addr = mask.parse().map_err(|_| bad())?;
                let m = u32::from(m);
                if !ip.is_ipv4() || m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(bad());
                }
                m.leading_ones() as u8
            }
        };
        return Ok(AddrExpr::Net(IpNet { addr: ip, prefix }));
    }
    if let Some((x, y)) = a.split_once('-') {
        let x: IpAddr = x.parse().map_err(|_| bad())?;
        let y: IpAddr = y.parse().map_err(|_| bad())?;
        let ordered = match (x, y) {
            (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(x) <= u32::from(y),
            (IpAddr::V6(x), IpAddr::V6(y)) => u128::from(x) <= u128::from(y),
            _ => false,
        };
        if !ordered {
            return Err(bad());
        }
        return Ok(AddrExpr::Range(x, y));
    }
    let ip: IpAddr = a.parse().map_err(|_| bad())?;
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    Ok(AddrExpr::Net(IpNet { addr: ip, prefix }))
}

fn parse_port_atom(a: &str) -> Result<PortExpr, String> {
    if a.is_empty() {
        return Err("empty port".to_string());
    }
    if a.eq_ignore_ascii_case("any") {
        return Ok(PortExpr::Any);
    }
    let num = |s: &str| -> Result<u16, String> { s.trim().parse::<u16>().map_err(|_| format!("invalid port '{a}'")) };
    if let Some((x, y)) = a.split_once(':') {
        let lo = if x.trim().is_empty() { 0 } else { num(x)? };
        let hi = if y.trim().is_empty() { u16::MAX } else { num(y)? };
        if lo > hi {
            return Err(format!("invalid port range '{a}'"));
        }
        return Ok(PortExpr::Range(lo, hi));
    }
    let p = num(a)?;
    Ok(PortExpr::Range(p, p))
}

/// One option of a rule: `keyword` or `keyword:value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleOption {
    pub keyword: OptionText,
    /// The raw value (trimmed; quotes and escapes kept), `None` for `keyword;`.
    pub value: Option<OptionText>,
    /// Physical line and 1-based column of the keyword.
    pub line: usize,
    pub column: usize,
    /// Physical line and 1-based column of the value (the keyword's for `keyword;`).
    pub value_line: usize,
    pub value_column: usize,
}

/// A keyword or value of a [`RuleOption`]: a piece of the rule's text, which the options of a
/// rule share (one copy of the text per rule, instead of two strings per option). Reads as a
/// `str`.
#[derive(Clone)]
pub struct OptionText {
    text: Arc<str>,
    start: usize,
    end: usize,
}

impl OptionText {
    /// The piece of `text` from byte `start` to `end` (empty if that is not a piece of it).
    fn new(text: &Arc<str>, start: usize, end: usize) -> Self {
        let (start, end) = if text.get(start..end).is_some() { (start, end) } else { (0, 0) };
        OptionText { text: text.clone(), start, end }
    }

    pub fn as_str(&self) -> &str {
        self.text.get(self.start..self.end).unwrap_or("")
    }
}

impl std::ops::Deref for OptionText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for OptionText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for OptionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for OptionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for OptionText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for OptionText {}

impl PartialEq<str> for OptionText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for OptionText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A logical rule: physical lines joined, with the map back to positions.
#[derive(Clone, Debug)]
pub struct RawRule {
    /// Physical line of the rule's first character.
    pub line: usize,
    pub text: String,
    /// (byte offset in `text`, physical line, byte offset of that point in the physical line)
    segments: Vec<(usize, usize, usize)>,
}

impl RawRule {
    /// 1-based physical (line, column) of a byte offset of `text`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let idx = self.segments.partition_point(|s| s.0 <= offset).saturating_sub(1);
        let (seg_start, line, _) = self.segments.get(idx).copied().unwrap_or((0, self.line, 0));
        let col = self
            .text
            .get(seg_start..offset.min(self.text.len()))
            .map(|s| s.chars().count())
            .unwrap_or(offset.saturating_sub(seg_start));
        (line, col + 1)
    }
}

/// [`RawRule::position`] for increasing offsets: in an ASCII rule a column is a byte count;
/// else counts the characters from the previous offset when it is in the same physical line,
/// so that the positions of all the options of a long rule cost one pass over its text.
struct Positions<'a> {
    raw: &'a RawRule,
    ascii: bool,
    /// (byte offset, start of its segment, 0-based column) of the last position asked
    last: Option<(usize, usize, usize)>,
}

impl<'a> Positions<'a> {
    fn new(raw: &'a RawRule) -> Self {
        Positions { raw, ascii: raw.text.is_ascii(), last: None }
    }

    fn at(&mut self, offset: usize) -> (usize, usize) {
        let raw = self.raw;
        let idx = raw.segments.partition_point(|s| s.0 <= offset).saturating_sub(1);
        let (seg_start, line, _) = raw.segments.get(idx).copied().unwrap_or((0, raw.line, 0));
        let offset = offset.min(raw.text.len());
        if self.ascii {
            return (line, offset.saturating_sub(seg_start) + 1);
        }
        let (from, base) = match self.last {
            Some((o, seg, col)) if seg == seg_start && o <= offset => (o, col),
            _ => (seg_start, 0),
        };
        let Some(between) = raw.text.get(from..offset) else {
            // not at a character boundary (never from the parser): as `RawRule::position`
            return raw.position(offset);
        };
        let col = base + between.chars().count();
        self.last = Some((offset, seg_start, col));
        (line, col + 1)
    }
}

/// Splits a rules file into logical rules: skips comments and blank lines, joins lines ending
/// with a backslash.
pub fn split_rules(text: &str) -> Vec<RawRule> {
    let mut out = Vec::new();
    let mut cur: Option<RawRule> = None;
    for (idx, line) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if cur.is_none() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        let trimmed_end = line.trim_end();
        let (part, continues) = match trimmed_end.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (line, false),
        };
        let rule = cur.get_or_insert_with(|| RawRule { line: line_no, text: String::new(), segments: Vec::new() });
        rule.segments.push((rule.text.len(), line_no, 0));
        rule.text.push_str(part);
        if !continues && let Some(r) = cur.take() {
            out.push(r);
        }
    }
    if let Some(r) = cur.take() {
        out.push(r);
    }
    out
}

/// A rule, syntactically valid, variables substituted.
#[derive(Clone, Debug)]
pub struct ParsedRule {
    pub file: Arc<str>,
    pub raw: RawRule,
    pub action: Action,
    /// Lower-cased protocol name as written (`tcp`, `http`, `tcp-pkt`, ...).
    pub proto: String,
    pub proto_column: usize,
    pub src: AddrExpr,
    pub src_ports: PortExpr,
    /// `<>`: the rule also matches with source and destination swapped.
    pub bidirectional: bool,
    /// `=>`: a transactional rule, matching the request and response keywords of one
    /// transaction together.
    pub transactional: bool,
    pub dst: AddrExpr,
    pub dst_ports: PortExpr,
    pub options: Vec<RuleOption>,
    /// The packet hook `flow_start` (`tcp:flow_start`): only the first packet of each
    /// direction of a flow is inspected.
    pub flow_start: bool,
    /// The explicit scope of a drop: `drop:flow` (`Some(true)`) or `drop:packet`; `None`
    /// for a plain `drop`, whose scope follows the rule's type ([`super::ips`]).
    pub drop_scope: Option<bool>,
    /// An HTTP/1 transaction hook (`http1:request_line`, ...): the rule inspects the request
    /// side (`Some(true)`) or the response side of transactions only, once per side.
    pub tx_hook: Option<bool>,
}

impl ParsedRule {
    pub fn line(&self) -> usize {
        self.raw.line
    }

    /// An error about this rule at a physical position.
    pub fn error(&self, line: usize, column: usize, keyword: Option<&str>, reason: impl Into<String>) -> RuleError {
        RuleError {
            file: self.file.to_string(),
            line,
            column,
            keyword: keyword.map(str::to_string),
            reason: reason.into(),
            rule_line: self.raw.line,
        }
    }
}

/// Parses every rule of a file; one result per logical rule, in order.
pub fn parse_rules(text: &str, file: &str, vars: &Vars) -> Vec<Result<ParsedRule, RuleError>> {
    let file: Arc<str> = Arc::from(file);
    split_rules(text).into_iter().map(|raw| parse_rule(raw, file.clone(), vars)).collect()
}

/// Parses one logical rule.
pub fn parse_rule(raw: RawRule, file: Arc<str>, vars: &Vars) -> Result<ParsedRule, RuleError> {
    let err = |off: usize, reason: String| {
        let (line, column) = raw.position(off);
        RuleError { file: file.to_string(), line, column, keyword: None, reason, rule_line: raw.line }
    };
    let b = raw.text.as_bytes();
    // header tokens, split on blanks outside brackets, up to the '(' of the options
    let mut tokens: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    let open = loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Err(err(i, "rule has no option list '(...)'".to_string()));
        }
        if b[i] == b'(' {
            break i;
        }
        let start = i;
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b'(' if depth <= 0 => break,
                c if c.is_ascii_whitespace() && depth <= 0 => break,
                _ => {}
            }
            i += 1;
        }
        tokens.push((start, &raw.text[start..i]));
    };
    if tokens.len() != 7 {
        let at = tokens.get(7).map(|t| t.0).unwrap_or(open);
        return Err(err(
            at,
            format!(
                "rule header must be 'action proto src_addr src_port direction dst_addr dst_port', found {} fields",
                tokens.len()
            ),
        ));
    }
    // Suricata 8's explicit scope of a drop (`drop:packet`, `drop:flow`)
    let (action_token, drop_scope) = match tokens[0].1.split_once(':') {
        Some(("drop", "packet")) => ("drop", Some(false)),
        Some(("drop", "flow")) => ("drop", Some(true)),
        _ => (tokens[0].1, None),
    };
    let action = match Action::parse(action_token) {
        Some(a) => a,
        None if matches!(tokens[0].1, "accept" | "config") => {
            return Err(err(tokens[0].0, format!("action '{}' (firewall mode) not supported yet", tokens[0].1)));
        }
        None => {
            return Err(err(tokens[0].0, format!("unknown action '{}'", tokens[0].1)));
        }
    };
    let mut proto = tokens[1].1.to_ascii_lowercase();
    let mut flow_start = false;
    let mut tx_hook = None;
    if let Some((base, hook)) = proto.split_once(':') {
        // packet hooks of the packet protocols: `flow_start`, and `all` (every packet, as
        // without a hook)
        let packet_proto = matches!(
            base,
            "ip" | "ipv4" | "ip4" | "ipv6" | "ip6" | "pkthdr" | "tcp" | "udp" | "icmp" | "icmpv4" | "icmpv6" | "sctp"
        );
        match hook {
            "flow_start" | "all" if packet_proto => {
                flow_start = hook == "flow_start";
                proto = base.to_string();
            }
            // HTTP/1 transaction hooks evaluated once per transaction side (the body hooks,
            // evaluated on every body update, are not supported)
            "request_started" | "request_line" | "request_headers" | "request_trailer" | "request_complete"
            | "response_started" | "response_line" | "response_headers" | "response_trailer" | "response_complete"
                if base == "http1" =>
            {
                tx_hook = Some(hook.starts_with("request"));
                proto = "http".to_string();
            }
            // TLS: the client side of the handshake (the client hello's fields), inspected once
            // with the handshake's record
            "client_hello_done" if base == "tls" => {
                tx_hook = Some(true);
                proto = "tls".to_string();
            }
            _ => return Err(err(tokens[1].0, format!("protocol hooks ('{proto}') not supported yet"))),
        }
    }
    let addr = |t: (usize, &str)| vars.parse_address(t.1).map_err(|e| err(t.0, e));
    let port = |t: (usize, &str)| vars.parse_ports(t.1).map_err(|e| err(t.0, e));
    let src = addr(tokens[2])?;
    let src_ports = port(tokens[3])?;
    let transactional = tokens[4].1 == "=>";
    let bidirectional = match tokens[4].1 {
        "->" | "=>" => false,
        "<>" => true,
        d => {
            return Err(err(tokens[4].0, format!("invalid direction '{d}', expected '->' or '<>'")));
        }
    };
    let dst = addr(tokens[5])?;
    let dst_ports = port(tokens[6])?;

    // the option list: from '(' to the last ')', nothing but blanks after it
    let close = match raw.text.rfind(')') {
        Some(c) if c > open => c,
        _ => return Err(err(b.len(), "rule does not end with ')'".to_string())),
    };
    if !raw.text[close + 1..].trim().is_empty() {
        return Err(err(close + 1, "unexpected text after the closing ')'".to_string()));
    }
    // most rules have fewer options than this: one allocation for the list
    let mut options = Vec::with_capacity(24);
    // the options' keywords and values are pieces of one shared copy of the text
    let shared: Arc<str> = Arc::from(raw.text.as_str());

    let mut positions = Positions::new(&raw);
    let mut i = open + 1;
    loop {
        while i < close && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= close {
            break;
        }
        let key_start = i;
        i = memchr::memchr2(b':', b';', &b[i..close]).map_or(close, |j| i + j);
        let key_raw = &raw.text[key_start..i];
        let keyword = key_raw.trim();
        let keyword_from = key_start + (key_raw.len() - key_raw.trim_start().len());
        if keyword.is_empty() {
            return Err(err(key_start, "empty option".to_string()));
        }
        if !keyword.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) {
            return Err(err(key_start, format!("invalid keyword '{keyword}'")));
        }
        let (line, column) = positions.at(key_start);
        if i >= close {
            return Err(RuleError {
                keyword: Some(keyword.to_string()),
                ..err(key_start, "option not terminated by ';'".to_string())
            });
        }
        if b[i] == b';' {
            options.push(RuleOption {
                keyword: OptionText::new(&shared, keyword_from, keyword_from + keyword.len()),
                value: None,
                line,
                column,
                value_line: line,
                value_column: column,
            });
            i += 1;
            continue;
        }
        i += 1; // ':'
        while i < close && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value_start = i;
        // to the first ';' not escaped by a backslash
        while i < close {
            match memchr::memchr2(b';', b'\\', &b[i..close]) {
                Some(j) if b[i + j] == b';' => {
                    i += j;
                    break;
                }
                Some(j) => i += j + 2,
                None => i = close,
            }
        }
        if i >= close {
            return Err(RuleError {
                keyword: Some(keyword.to_string()),
                ..err(key_start, "option not terminated by ';'".to_string())
            });
        }
        let (value_line, value_column) = positions.at(value_start);
        options.push(RuleOption {
            keyword: OptionText::new(&shared, keyword_from, keyword_from + keyword.len()),
            value: Some(OptionText::new(&shared, value_start, value_start + raw.text[value_start..i].trim_end().len())),
            line,
            column,
            value_line,
            value_column,
        });
        i += 1;
    }
    Ok(ParsedRule {
        file,
        proto_column: raw.position(tokens[1].0).1,
        raw,
        action,
        proto,
        src,
        src_ports,
        bidirectional,
        transactional,
        dst,
        dst_ports,
        options,
        flow_start,
        drop_scope,
        tx_hook,
    })
}

/// Reads a double-quoted option value: strips the quotes and removes the backslash of every
/// escape (`\"`, `\;`, `\\`, `\:`, ...). Returns `None` when the value is not quoted.
pub fn unquote(value: &str) -> Option<String> {
    let v = value.trim();
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    if v.len() < 2 {
        return None;
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Reads a value that may or may not be quoted (Suricata accepts both for most keywords).
pub fn maybe_unquote(value: &str) -> String {
    unquote(value).unwrap_or_else(|| value.trim().to_string())
}

/// [`maybe_unquote`] without a copy when the value has no escape to remove.
pub fn maybe_unquote_borrowed(value: &str) -> std::borrow::Cow<'_, str> {
    let v = value.trim();
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if v.len() >= 2 && !inner.contains('\\') => std::borrow::Cow::Borrowed(inner),
        Some(_) if v.len() >= 2 => std::borrow::Cow::Owned(maybe_unquote(value)),
        _ => std::borrow::Cow::Borrowed(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn one(text: &str) -> Result<ParsedRule, RuleError> {
        parse_rules(text, "t.rules", &Vars::default()).remove(0)
    }

    #[test]
    fn option_keywords_and_values_are_the_trimmed_pieces_of_the_rule_text() {
        let r = one("alert tcp any any -> any any ( msg : \"a b\"  ;nocase ; sid:1;)").unwrap();
        let kws: Vec<&str> = r.options.iter().map(|o| o.keyword.as_str()).collect();
        assert_eq!(kws, ["msg", "nocase", "sid"]);
        assert_eq!(r.options[0].value.as_deref(), Some("\"a b\""));
        assert_eq!(format!("{:?} {}", r.options[0].keyword, r.options[2].keyword), "\"msg\" sid");
        assert_eq!(r.options[2].value.as_ref().map(|v| v.to_string()), Some("1".to_string()));
        assert!(r.options[1].value.is_none());
        assert_eq!(r.options[1].keyword, "nocase");
        assert_ne!(r.options[1].keyword, r.options[2].keyword);
        assert_eq!(r.options[0].clone(), r.options[0]);
    }

    #[test]
    fn tls_client_hello_done_hook_is_the_request_side_of_tls() {
        let r = one("drop tls:client_hello_done any any -> any any (sid:1;)").unwrap();
        assert_eq!((r.proto.as_str(), r.tx_hook), ("tls", Some(true)));
        assert!(one("drop tls:server_hello_done any any -> any any (sid:1;)").is_err());
        assert!(one("drop http:client_hello_done any any -> any any (sid:1;)").is_err());
    }

    #[test]
    fn default_vars_resolve() {
        let v = Vars::default();
        let home = v.parse_address("$HOME_NET").unwrap();
        assert!(home.matches(ip("10.1.2.3")));
        assert!(home.matches(ip("192.168.1.1")));
        assert!(home.matches(ip("172.31.255.255")));
        assert!(!home.matches(ip("172.32.0.1")));
        assert!(!home.matches(ip("8.8.8.8")));
        let ext = v.parse_address("$EXTERNAL_NET").unwrap();
        assert!(ext.matches(ip("8.8.8.8")));
        assert!(ext.matches(ip("2001:db8::1")));
        assert!(!ext.matches(ip("10.0.0.1")));
        let smtp = v.parse_address("$SMTP_SERVERS").unwrap();
        assert!(smtp.matches(ip("10.0.0.1")));
        let aim = v.parse_address("$AIM_SERVERS").unwrap();
        assert!(aim.matches(ip("1.1.1.1")) && !aim.matches(ip("10.0.0.1")));
        let p = v.parse_ports("$FILE_DATA_PORTS").unwrap();
        assert!(p.matches(80) && p.matches(110) && p.matches(143) && !p.matches(8080));
        let sc = v.parse_ports("$SHELLCODE_PORTS").unwrap();
        assert!(!sc.matches(80) && sc.matches(81));
        let sip = v.parse_ports("$SIP_PORTS").unwrap();
        assert!(sip.matches(5060) && sip.matches(5061) && !sip.matches(5062));
    }

    #[test]
    fn negated_groups_and_ranges() {
        let v = Vars::default();
        let a = v.parse_address("[10.0.0.0/24, !10.0.0.5]").unwrap();
        assert!(a.matches(ip("10.0.0.4")) && !a.matches(ip("10.0.0.5")) && !a.matches(ip("10.0.1.1")));
        let a = v.parse_address("![1.1.1.1, 1.1.1.2]").unwrap();
        assert!(!a.matches(ip("1.1.1.1")) && !a.matches(ip("1.1.1.2")) && a.matches(ip("1.1.1.3")));
        let a = v.parse_address("[$EXTERNAL_NET, !8.8.8.8]").unwrap();
        assert!(a.matches(ip("1.1.1.1")) && !a.matches(ip("8.8.8.8")) && !a.matches(ip("10.0.0.1")));
        let a = v.parse_address("[1.2.3.0/255.255.255.0,2001:db8::/32]").unwrap();
        assert!(a.matches(ip("1.2.3.200")) && a.matches(ip("2001:db8:1::5")) && !a.matches(ip("2001:db9::1")));
        let a = v.parse_address("10.0.0.1-10.0.0.3").unwrap();
        assert!(a.matches(ip("10.0.0.2")) && !a.matches(ip("10.0.0.4")));
        let p = v.parse_ports("[80:100,!99]").unwrap();
        assert!(p.matches(80) && p.matches(100) && !p.matches(99) && !p.matches(101));
        let p = v.parse_ports("[1:80,![2,4]]").unwrap();
        assert!(p.matches(1) && p.matches(3) && !p.matches(2) && !p.matches(4) && !p.matches(81));
        let p = v.parse_ports("[1024: ]").unwrap();
        assert!(p.matches(1024) && p.matches(65535) && !p.matches(1023));
        let p = v.parse_ports("[80: 82]").unwrap();
        assert!(p.matches(81) && !p.matches(83));
        let p = v.parse_ports(":1023").unwrap();
        assert!(p.matches(0) && !p.matches(1024));
        let p = v.parse_ports("!$HTTP_PORTS").unwrap();
        assert!(!p.matches(80) && p.matches(443));
        assert!(v.parse_ports("!any").is_err());
        assert!(v.parse_address("!any").is_err());
        assert!(v.parse_ports("90:80").is_err());
        assert!(v.parse_ports("$HOME_NET").unwrap_err().contains("address variable"));
        assert!(v.parse_address("$NOPE").unwrap_err().contains("undefined address variable $NOPE"));
        assert!(v.parse_ports("$NOPE").unwrap_err().contains("undefined port variable $NOPE"));
        assert!(v.parse_ports("$HOME_NET").unwrap_err().contains("$HOME_NET is an address variable, used as a port"));
        assert!(
            v.parse_address("$HTTP_PORTS").unwrap_err().contains("$HTTP_PORTS is a port variable, used as an address")
        );
        assert!(v.parse_address("[1.1.1.1,").is_err());
        assert!(v.parse_address("10.0.0.0/33").is_err());
    }

    #[test]
    fn variable_cycles_are_errors() {
        let mut v = Vars::empty();
        v.set_address("A", "$B");
        v.set_address("B", "[1.1.1.1,$A]");
        assert!(v.parse_address("$A").unwrap_err().contains("too deep"));
    }

    #[test]
    fn header_and_options() {
        let r = one(r#"alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"a\;b \"q\" c\\"; content:"x"; nocase; sid:1;)"#).unwrap();
        assert_eq!(r.action, Action::Alert);
        assert_eq!(r.proto, "http");
        assert!(!r.bidirectional);
        let kws: Vec<&str> = r.options.iter().map(|o| o.keyword.as_str()).collect();
        assert_eq!(kws, ["msg", "content", "nocase", "sid"]);
        assert_eq!(r.options[0].value.as_deref(), Some(r#""a\;b \"q\" c\\""#));
        assert_eq!(unquote(r.options[0].value.as_deref().unwrap()).unwrap(), r#"a;b "q" c\"#);
        assert_eq!(r.options[2].value, None);
        assert!(r.dst_ports.matches(80) && !r.dst_ports.matches(81));
        let r = one("drop tcp [1.1.1.1, 2.2.2.2] [80, 81] <> any any (sid:2;)").unwrap();
        assert!(r.bidirectional);
        assert_eq!(r.action, Action::Drop);
        assert!(r.src_ports.matches(81));
    }

    #[test]
    fn multi_line_comments_and_blank_lines() {
        let text = "# a comment\n\n   # indented comment\nalert tcp any any -> any any (msg:\"one\"; \\\n    content:\"abc\"; \\\n    sid:1;)\r\nalert udp any any -> any 53 (sid:2;)\n";
        let rules = parse_rules(text, "t.rules", &Vars::default());
        assert_eq!(rules.len(), 2);
        let r0 = rules[0].as_ref().unwrap();
        assert_eq!(r0.line(), 4);
        assert_eq!(r0.options[1].keyword, "content");
        assert_eq!((r0.options[1].line, r0.options[1].column), (5, 5));
        assert_eq!((r0.options[2].line, r0.options[2].column), (6, 5));
        assert_eq!(rules[1].as_ref().unwrap().line(), 7);
    }

    #[test]
    fn errors_have_positions() {
        let e = one("alert tcp any any -> any (sid:1;)").unwrap_err();
        assert_eq!((e.line, e.keyword.as_deref()), (1, None));
        assert!(e.reason.contains("found 6 fields"), "{e}");
        let e = one("alert tcp $NOPE any -> any any (sid:1;)").unwrap_err();
        assert_eq!((e.line, e.column), (1, 11));
        assert!(e.reason.contains("$NOPE"));
        let e = one("\n\nalert tcp any any -> any any (msg:\"x\"; sid:1)").unwrap_err();
        assert_eq!((e.line, e.column, e.keyword.as_deref()), (3, 40, Some("sid")));
        assert!(e.reason.contains("not terminated"));
        let e = one("hello tcp any any -> any any (sid:1;)").unwrap_err();
        assert_eq!((e.column, e.reason.as_str()), (1, "unknown action 'hello'"));
        let r = one("alert tls any any => any any (sid:1;)").unwrap();
        assert!(r.transactional && !r.bidirectional);
        let e = one("alert tcp any any =< any any (sid:1;)").unwrap_err();
        assert_eq!(e.column, 19);
        let e = one("alert tcp any any -> any any (sid:1;) junk").unwrap_err();
        assert!(e.reason.contains("after the closing"));
        let e = one("alert tcp any any -> any any (sid:1;").unwrap_err();
        assert!(e.reason.contains("does not end with ')'"));
        let e = one("alert tcp any any -> any any (msg:\"x\"; s!d:1;)").unwrap_err();
        assert!(e.reason.contains("invalid keyword"));
        assert_eq!(e.column, 40);
    }

    #[test]
    fn position_counts_characters() {
        let raw = split_rules("alert tcp any any -> any any (msg:\"é\"; sid:1;)").remove(0);
        let off = raw.text.find("sid").unwrap();
        assert_eq!(raw.position(off), (1, 40));
    }

    #[test]
    fn borrowed_unquote_reads_values_as_maybe_unquote() {
        for v in ["\"abc\"", " \"a\\;b\" ", "plain ", "\"", "\"\"", "\"open", "\"\\\"x\\\"\"", "10,20"] {
            assert_eq!(maybe_unquote_borrowed(v), maybe_unquote(v), "{v}");
        }
        assert!(matches!(maybe_unquote_borrowed("\"abc\""), std::borrow::Cow::Borrowed("abc")));
    }

    #[test]
    fn a_changed_variable_is_parsed_again() {
        let mut v = Vars::default();
        let before = v.parse_address("$HOME_NET").unwrap();
        v.set_address("HOME_NET", "10.1.0.0/16");
        let after = v.parse_address("$HOME_NET").unwrap();
        assert_ne!(before, after);
        assert_eq!(after, AddrExpr::Net(IpNet { addr: "10.1.0.0".parse().unwrap(), prefix: 16 }));
        assert_eq!(v.parse_address("[$EXTERNAL_NET]").unwrap(), AddrExpr::Group(vec![AddrExpr::Not(Box::new(after))]));
        v.set_port("HTTP_PORTS", "8080");
        assert_eq!(v.parse_ports("$HTTP_PORTS").unwrap(), PortExpr::Range(8080, 8080));
    }

    #[test]
    fn option_positions_count_characters_on_each_continued_line() {
        let text = "alert tcp any any -> any any (msg:\"é ü\"; \\\n  content:\"ö\"; nocase; \\\n sid:1; rev:2;)\n";
        for text in [text.to_string(), text.replace(['é', 'ü', 'ö'], "e")] {
            let raw = split_rules(&text).remove(0);
            let r = parse_rule(raw.clone(), Arc::from("t.rules"), &Vars::default()).unwrap();
            let mut from = 0;
            for o in &r.options {
                let k = from + raw.text[from..].find(o.keyword.as_str()).unwrap();
                assert_eq!((o.line, o.column), raw.position(k), "{}", o.keyword);
                if let Some(v) = &o.value {
                    let vo = k + raw.text[k..].find(v.as_str()).unwrap();
                    assert_eq!((o.value_line, o.value_column), raw.position(vo), "{v}");
                }
                from = k + o.keyword.len();
            }
            assert_eq!(r.options.iter().map(|o| o.line).collect::<Vec<_>>(), [1, 2, 2, 3, 3]);
        }
    }
}
