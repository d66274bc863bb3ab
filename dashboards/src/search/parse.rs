//! The analysts' query language.
//!
//! ```text
//! query   := [expr] ["|" "count" "by" field]
//! expr    := and ("OR" and)*
//! and     := unary (["AND"] unary)*          (juxtaposition is AND)
//! unary   := "NOT" unary | "(" expr ")" | field op value
//! op      := ":" | "=" | "!=" | ">" | ">=" | "<" | "<="
//! value   := "quoted \"string\"" | bare word (up to a space or ")"; may hold ":" for IPv6)
//! ```
//!
//! `*` in a value is a wildcard (`dns.rrname:*.example.org`). Keywords are case-insensitive.
//! Fields are envelope columns (`src_ip`, `event_type`, `segment`, ...), `ip` (source or
//! destination) or dotted paths into the record (`http.hostname`, `log.fields.EventID`).
//! Errors carry the character position where parsing stopped.

use soc_store::search::{Expr, Field, GroupBy, Op};

/// A syntax error at a character position (0-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub position: usize,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub filter: Option<Expr>,
    pub count_by: Option<GroupBy>,
}

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

/// Parses a query.
pub fn parse(s: &str) -> Result<Parsed, ParseError> {
    if s.len() > MAX_QUERY_LEN {
        return Err(ParseError { message: format!("query longer than {MAX_QUERY_LEN} bytes"), position: 0 });
    }
    let mut p = Parser { s, pos: 0, depth: 0 };
    p.ws();
    let filter = if p.at_end() || p.peek() == Some('|') { None } else { Some(p.or()?) };
    p.ws();
    let count_by = if p.peek() == Some('|') {
        p.bump();
        Some(p.pipe()?)
    } else {
        None
    };
    p.ws();
    if !p.at_end() {
        return Err(p.err(format!("unexpected {:?}", p.rest_word())));
    }
    Ok(Parsed { filter, count_by })
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        self.err_at(self.pos, message)
    }
    fn err_at(&self, byte: usize, message: impl Into<String>) -> ParseError {
        ParseError { message: message.into(), position: self.s[..byte.min(self.s.len())].chars().count() }
    }
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }
    fn rest_word(&self) -> String {
        self.s[self.pos..].split_whitespace().next().unwrap_or("").chars().take(40).collect()
    }
    /// The keyword at the cursor (a word followed by space, "(" or the end), upper-cased.
    fn keyword(&self) -> Option<(String, usize)> {
        let rest = &self.s[self.pos..];
        let end = rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')').unwrap_or(rest.len());
        let w = &rest[..end];
        let up = w.to_ascii_uppercase();
        matches!(up.as_str(), "AND" | "OR" | "NOT").then_some((up, end))
    }
    fn eat_keyword(&mut self, k: &str) -> bool {
        match self.keyword() {
            Some((w, len)) if w == k => {
                self.pos += len;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.and()?];
        loop {
            self.ws();
            if self.eat_keyword("OR") {
                self.ws();
                v.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if v.len() == 1 { v.remove(0) } else { Expr::Or(v) })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.unary()?];
        loop {
            self.ws();
            match self.peek() {
                None | Some(')') | Some('|') => break,
                _ => {}
            }
            if matches!(self.keyword(), Some((k, _)) if k == "OR") {
                break;
            }
            if self.eat_keyword("AND") {
                self.ws();
            }
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 { v.remove(0) } else { Expr::And(v) })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        if self.depth > soc_store::search::MAX_DEPTH {
            return Err(self.err("too deeply nested"));
        }
        if self.eat_keyword("NOT") {
            self.ws();
            self.depth += 1;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if let Some((k, _)) = self.keyword() {
            return Err(self.err(format!("{k} needs a term before it")));
        }
        if self.peek() == Some('(') {
            let open = self.pos;
            self.bump();
            self.ws();
            self.depth += 1;
            let e = self.or()?;
            self.depth -= 1;
            self.ws();
            if self.peek() != Some(')') {
                return Err(if self.at_end() {
                    self.err_at(open, "unclosed '('")
                } else {
                    self.err(format!("expected ')', found {:?}", self.rest_word()))
                });
            }
            self.bump();
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            self.bump();
        }
        let name = &self.s[start..self.pos];
        if name.is_empty() {
            return Err(match self.peek() {
                None => self.err("expected a field name, found the end of the query"),
                Some(c) => self.err(format!("expected a field name, found {c:?}")),
            });
        }
        let field = Field::parse(name).map_err(|m| self.err_at(start, m))?;
        let op_pos = self.pos;
        let op = match self.peek() {
            Some(':') | Some('=') => {
                self.bump();
                Op::Eq
            }
            Some('!') => {
                self.bump();
                if self.peek() != Some('=') {
                    return Err(self.err("expected '=' after '!'"));
                }
                self.bump();
                Op::Ne
            }
            Some(c @ ('<' | '>')) => {
                self.bump();
                let eq = self.peek() == Some('=');
                if eq {
                    self.bump();
                }
                match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    (_, true) => Op::Ge,
                }
            }
            _ => {
                return Err(self
                    .err_at(op_pos, format!("expected ':', '=', '!=', '<', '<=', '>' or '>=' after field {name:?}")));
            }
        };
        let value = self.value()?;
        Ok(Expr::Cmp { field, op, value })
    }

    fn value(&mut self) -> Result<String, ParseError> {
        if self.peek() == Some('"') {
            let open = self.pos;
            self.bump();
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err(self.err_at(open, "unterminated quoted value")),
                    Some('"') => {
                        self.bump();
                        return Ok(out);
                    }
                    Some('\\') => {
                        self.bump();
                        match self.peek() {
                            Some(c) => {
                                out.push(c);
                                self.bump();
                            }
                            None => return Err(self.err_at(open, "unterminated quoted value")),
                        }
                    }
                    Some(c) => {
                        out.push(c);
                        self.bump();
                    }
                }
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')' && c != '(' && c != '|' && c != '"') {
            self.bump();
        }
        if self.pos == start {
            return Err(self.err("expected a value"));
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn pipe(&mut self) -> Result<GroupBy, ParseError> {
        self.ws();
        let word = |p: &mut Parser<'_>| {
            let start = p.pos;
            while p.peek().is_some_and(|c| !c.is_whitespace()) {
                p.bump();
            }
            (start, p.s[start..p.pos].to_string())
        };
        let (at, w) = word(self);
        if !w.eq_ignore_ascii_case("count") {
            return Err(self.err_at(at, format!("expected 'count' after '|', found {w:?}")));
        }
        self.ws();
        let (at, w) = word(self);
        if !w.eq_ignore_ascii_case("by") {
            return Err(self.err_at(at, format!("expected 'by' after 'count', found {w:?}")));
        }
        self.ws();
        let (at, w) = word(self);
        if w.is_empty() {
            return Err(self.err_at(at, "expected a field after 'count by'"));
        }
        let f = Field::parse(&w).map_err(|m| self.err_at(at, m))?;
        if f == Field::AnyIp {
            return Err(self.err_at(at, "cannot count by ip; use src_ip or dest_ip"));
        }
        Ok(GroupBy::Field(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_store::search::Column;

    fn cmp(f: &str, op: Op, v: &str) -> Expr {
        Expr::Cmp { field: Field::parse(f).unwrap(), op, value: v.into() }
    }

    #[test]
    fn the_issue_example_parses() {
        let p = parse("src_ip:10.1.2.3 AND event_type:dns AND dns.rrname:*.example.org").unwrap();
        assert_eq!(
            p.filter,
            Some(Expr::And(vec![
                cmp("src_ip", Op::Eq, "10.1.2.3"),
                cmp("event_type", Op::Eq, "dns"),
                cmp("dns.rrname", Op::Eq, "*.example.org"),
            ]))
        );
        assert_eq!(p.count_by, None);
    }

    #[test]
    fn precedence_not_parentheses_and_count() {
        let p = parse("a:1 b:2 or not (c>=3 OR d!=\"x y\") | count by src_ip").unwrap();
        assert_eq!(
            p.filter,
            Some(Expr::Or(vec![
                Expr::And(vec![cmp("a", Op::Eq, "1"), cmp("b", Op::Eq, "2")]),
                Expr::Not(Box::new(Expr::Or(vec![cmp("c", Op::Ge, "3"), cmp("d", Op::Ne, "x y")]))),
            ]))
        );
        assert_eq!(p.count_by, Some(GroupBy::Field(Field::Column(Column::SrcIp))));
        assert_eq!(parse("| count by event_type").unwrap().filter, None);
        assert_eq!(parse("ip:fe80::1").unwrap().filter, Some(cmp("ip", Op::Eq, "fe80::1")));
    }

    #[test]
    fn errors_carry_positions() {
        let e = parse("src_ip:10.1.2.3 AND").unwrap_err();
        assert_eq!(e.position, 19, "{e:?}");
        let e = parse("src_ip 10.1.2.3").unwrap_err();
        assert_eq!(e.position, 6, "{e:?}");
        let e = parse("(a:1 OR b:2").unwrap_err();
        assert_eq!(e.position, 0, "{e:?}");
        let e = parse("a:\"open").unwrap_err();
        assert_eq!(e.position, 2, "{e:?}");
        let e = parse("a:1 | sum by b").unwrap_err();
        assert_eq!(e.position, 6, "{e:?}");
        let e = parse("a:1 ) b:2").unwrap_err();
        assert_eq!(e.position, 4, "{e:?}");
        let e = parse("bad'field:1").unwrap_err();
        assert_eq!(e.position, 3, "{e:?}");
        let e = parse("AND a:1").unwrap_err();
        assert_eq!(e.position, 0, "{e:?}");
        let deep = format!("{}a:1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
    }
}
