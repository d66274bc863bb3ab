//! A subset of the pcap filter language (BPF expressions, as given to Suricata on its command
//! line), evaluated on decoded packets: the packets a filter refuses are not processed.
//!
//! Supported: `host <addr>`, `net <addr>/<len>`, `port <n>`, `portrange <a>-<b>` (each with an
//! optional `src` or `dst` qualifier), the protocols `ip`, `ip6`, `tcp`, `udp`, `sctp`, `icmp`,
//! `icmp6`, and `and`/`&&`, `or`/`||`, `not`/`!` with parentheses. Anything else (`ether`,
//! `vlan`, byte offsets, `len`, ...) is an error naming the token: the filter is not applied
//! partially. A packet that does not decode matches no address, port or protocol.

use crate::decode::{Packet, Transport};
use crate::detect::IpNet;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Either,
    Src,
    Dst,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Net(Dir, IpNet),
    Ports(Dir, u16, u16),
    IpVersion(u8),
    Proto(u8),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFilter {
    text: String,
    root: Node,
}

struct Parser<'a> {
    toks: Vec<&'a str>,
    at: usize,
}

fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let single = matches!(c, '(' | ')' | '!') && !s[i..].starts_with("!=");
        if c.is_whitespace() || single {
            if let Some(st) = start.take() {
                out.push(&s[st..i]);
            }
            if single {
                out.push(&s[i..i + 1]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.at).copied()
    }

    fn next(&mut self) -> Result<&'a str, String> {
        let t = self.peek().ok_or("unexpected end of the filter")?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut n = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.at += 1;
            n = Node::Or(Box::new(n), Box::new(self.and()?));
        }
        Ok(n)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut n = self.not()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.at += 1;
            n = Node::And(Box::new(n), Box::new(self.not()?));
        }
        Ok(n)
    }

    fn not(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some("not" | "!") => {
                self.at += 1;
                Ok(Node::Not(Box::new(self.not()?)))
            }
            Some("(") => {
                self.at += 1;
                let n = self.or()?;
                match self.next()? {
                    ")" => Ok(n),
                    t => Err(format!("expected ')', got '{t}'")),
                }
            }
            _ => self.primitive(),
        }
    }

    fn primitive(&mut self) -> Result<Node, String> {
        let mut t = self.next()?;
        let dir = match t {
            "src" => Dir::Src,
            "dst" => Dir::Dst,
            _ => Dir::Either,
        };
        if dir != Dir::Either {
            t = self.next()?;
        }
        let proto = |n: u8| if dir == Dir::Either { Ok(Node::Proto(n)) } else { Err(format!("'{t}' after src/dst")) };
        match t {
            "host" | "net" => {
                let v = self.next()?;
                let (a, len) = match v.split_once('/') {
                    Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| format!("bad prefix in '{v}'"))?)),
                    None => (v, None),
                };
                let addr: IpAddr = a.parse().map_err(|_| format!("bad address '{v}'"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = len.unwrap_or(max);
                if prefix > max || (t == "host" && prefix != max) {
                    return Err(format!("bad {t} '{v}'"));
                }
                Ok(Node::Net(dir, IpNet { addr, prefix }))
            }
            "port" => {
                let v = self.next()?;
                let p = v.parse::<u16>().map_err(|_| format!("bad port '{v}'"))?;
                Ok(Node::Ports(dir, p, p))
            }
            "portrange" => {
                let v = self.next()?;
                let r = v.split_once('-').and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)));
                let (a, b) = r.filter(|(a, b)| a <= b).ok_or_else(|| format!("bad port range '{v}'"))?;
                Ok(Node::Ports(dir, a, b))
            }
            "ip" if dir == Dir::Either => Ok(Node::IpVersion(4)),
            "ip6" if dir == Dir::Either => Ok(Node::IpVersion(6)),
            "tcp" => proto(6),
            "udp" => proto(17),
            "sctp" => proto(132),
            "icmp" => proto(1),
            "icmp6" => proto(58),
            other => Err(format!("'{other}' is not supported in filters (host, net, port, portrange, protocols)")),
        }
    }
}

impl BpfFilter {
    /// Parses an expression; an empty one is an error (no filter is `None`).
    pub fn parse(text: &str) -> Result<BpfFilter, String> {
        let mut p = Parser { toks: tokens(text), at: 0 };
        if p.toks.is_empty() {
            return Err("empty filter".to_string());
        }
        let root = p.or()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected '{t}'"));
        }
        Ok(BpfFilter { text: text.to_string(), root })
    }

    /// The expression as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the filter lets the packet through.
    pub fn matches(&self, p: &Packet<'_>) -> bool {
        eval(&self.root, p)
    }
}

fn ports(p: &Packet<'_>) -> Option<(u16, u16)> {
    match p.transport {
        Transport::Tcp(_) | Transport::Udp(_) | Transport::Sctp(_) => Some((p.src_port(), p.dst_port())),
        _ => None,
    }
}

fn eval(n: &Node, p: &Packet<'_>) -> bool {
    let side = |d: Dir, f: &dyn Fn(bool) -> bool| match d {
        Dir::Either => f(true) || f(false),
        Dir::Src => f(true),
        Dir::Dst => f(false),
    };
    match n {
        Node::Net(d, net) => side(*d, &|src| net.contains(if src { p.src } else { p.dst })),
        Node::Ports(d, a, b) => {
            ports(p).is_some_and(|(sp, dp)| side(*d, &|src| (*a..=*b).contains(if src { &sp } else { &dp })))
        }
        Node::IpVersion(v) => p.ip_v == *v,
        Node::Proto(n) => p.proto == *n,
        Node::Not(x) => !eval(x, p),
        Node::And(a, b) => eval(a, p) && eval(b, p),
        Node::Or(a, b) => eval(a, p) || eval(b, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, Decoded, LinkType, decode};
    use crate::synth::{self, Host};

    fn check(filter: &str, frame: &[u8]) -> bool {
        let f = BpfFilter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        match decode(LinkType::Ethernet, frame, DecodeOptions::default()) {
            Ok(Decoded::Ip(p)) => f.matches(&p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn primitives_and_operators_select_packets() {
        let c = Host::v4([10, 0, 0, 1]);
        let s = Host::v4([10, 0, 1, 2]);
        let f = synth::udp_frame(&c, 5353, &s, 53, b"q");
        assert!(check("port 53", &f));
        assert!(!check("port 22", &f));
        assert!(check("dst port 53 and src host 10.0.0.1", &f));
        assert!(!check("src port 53", &f));
        assert!(check("udp and not tcp", &f));
        assert!(check("tcp or (net 10.0.1.0/24 && portrange 50-60)", &f));
        assert!(!check("!ip", &f));
        assert!(check("ip and not ip6", &f));
        assert!(!check("dst net 10.0.0.0/24", &f));
    }

    #[test]
    fn unsupported_or_malformed_filters_are_errors() {
        for bad in
            ["", "port", "port x", "ether host 1", "host 10.0.0.0/8", "(port 1", "port 1 port 2", "src tcp", "len > 5"]
        {
            assert!(BpfFilter::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(BpfFilter::parse(" port 22 ").map(|f| f.text().to_string()), Ok(" port 22 ".to_string()));
    }
}
