//! A reader for the condition expressions rule files are written with, giving the tree
//! `rsigma_parser::parse_condition` gives (its pest grammar and Pratt parser took about a
//! tenth of the instructions of building the rules of a file).
//!
//! It reads identifiers, `and`, `or`, `not`, parentheses and `all|any|N of pattern|them`,
//! tokens separated by spaces, with rsigma's precedence (`not` > `and` > `or`, left to right)
//! and its flattening (`a and (b and c)` is one `and` of three). Anything else (tabs, line
//! breaks, other characters, reserved words where a name is expected, deep nesting, ...) is
//! `None`: the caller then asks rsigma, which reads it or words the error. Like the YAML
//! reader, it never guesses: where rsigma's grammar could read a text in a way this reader
//! does not model (`1of x`, `1 of them*`), it declines.

use rsigma_parser::{ConditionExpr, Quantifier, SelectorPattern};

/// Nesting of parentheses read here (rsigma refuses more than 64).
const MAX_DEPTH: usize = 32;

/// Words the grammar reserves: never a detection name.
const RESERVED: [&str; 7] = ["and", "or", "not", "all", "any", "of", "them"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A run of ASCII letters, digits, `_`, `-` and `*`.
    Word(&'a str),
    Open,
    Close,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'*')
}

fn tokens(input: &str) -> Option<Vec<Token<'_>>> {
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'(' => {
                out.push(Token::Open);
                i += 1;
            }
            b')' => {
                out.push(Token::Close);
                i += 1;
            }
            c if is_word_byte(c) => {
                let start = i;
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                out.push(Token::Word(&input[start..i]));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The condition `input` as `rsigma_parser::parse_condition(input)` reads it, or `None` when
/// this reader does not handle the text (see the module documentation).
pub(crate) fn parse(input: &str) -> Option<ConditionExpr> {
    let tokens = tokens(input)?;
    let mut p = Parser { tokens: &tokens, pos: 0 };
    let expr = p.or_expr(0)?;
    (p.pos == tokens.len()).then_some(expr)
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn peek_word(&self, w: &str) -> bool {
        self.peek() == Some(Token::Word(w))
    }

    /// `a or b or ...`; or-ed parenthesized groups are merged in, as rsigma does.
    fn or_expr(&mut self, depth: usize) -> Option<ConditionExpr> {
        let first = self.and_expr(depth)?;
        if !self.peek_word("or") {
            return Some(first);
        }
        let mut parts = Vec::new();
        merge_into(&mut parts, first, false);
        while self.peek_word("or") {
            self.pos += 1;
            let next = self.and_expr(depth)?;
            merge_into(&mut parts, next, false);
        }
        Some(ConditionExpr::Or(parts))
    }

    fn and_expr(&mut self, depth: usize) -> Option<ConditionExpr> {
        let first = self.unary(depth)?;
        if !self.peek_word("and") {
            return Some(first);
        }
        let mut parts = Vec::new();
        merge_into(&mut parts, first, true);
        while self.peek_word("and") {
            self.pos += 1;
            let next = self.unary(depth)?;
            merge_into(&mut parts, next, true);
        }
        Some(ConditionExpr::And(parts))
    }

    fn unary(&mut self, depth: usize) -> Option<ConditionExpr> {
        if self.peek_word("not") {
            self.pos += 1;
            return Some(ConditionExpr::Not(Box::new(self.unary(depth)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Option<ConditionExpr> {
        match self.peek()? {
            Token::Open => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let inner = self.or_expr(depth + 1)?;
                if self.peek() != Some(Token::Close) {
                    return None;
                }
                self.pos += 1;
                Some(inner)
            }
            Token::Close => None,
            Token::Word(w) => {
                self.pos += 1;
                let digits = w.bytes().all(|b| b.is_ascii_digit());
                if (digits || w == "all" || w == "any") && self.peek_word("of") {
                    self.pos += 1;
                    return self.selector(w);
                }
                if RESERVED.contains(&w) || w.contains('*') {
                    return None;
                }
                // `1of` followed by a pattern would be a selector for rsigma.
                if w.len() > 2 && w.ends_with("of") && w[..w.len() - 2].bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(ConditionExpr::Identifier(w.to_string()))
            }
        }
    }

    /// `quantifier of target`, after `of`.
    fn selector(&mut self, quantifier: &str) -> Option<ConditionExpr> {
        let quantifier = match quantifier {
            "all" => Quantifier::All,
            "any" => Quantifier::Any,
            n => match n.parse::<u64>().ok()? {
                1 => Quantifier::Any,
                n => Quantifier::Count(n),
            },
        };
        let Some(Token::Word(target)) = self.peek() else { return None };
        self.pos += 1;
        let pattern = if target == "them" {
            SelectorPattern::Them
        } else if RESERVED.contains(&target) || target.starts_with("them*") {
            return None;
        } else {
            SelectorPattern::Pattern(target.to_string())
        };
        Some(ConditionExpr::Selector { quantifier, pattern })
    }
}

/// Adds `e` to the operands of an `and` (`is_and`) or an `or`, its own operands when it is
/// the same operator (as rsigma's parser merges them).
fn merge_into(parts: &mut Vec<ConditionExpr>, e: ConditionExpr, is_and: bool) {
    match e {
        ConditionExpr::And(children) if is_and => parts.extend(children),
        ConditionExpr::Or(children) if !is_and => parts.extend(children),
        other => parts.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsigma_parser::parse_condition;

    #[test]
    fn reads_conditions_as_rsigma_does() {
        for c in [
            "selection",
            "selection and not filter",
            "  sel  and  not  filter  ",
            "selection and not 1 of filter_*",
            "1 of selection_* and not 1 of filter_optional_*",
            "all of them",
            "any of them",
            "3 of sel*",
            "0 of x",
            "01 of x",
            "all of selection_* and not all of filter*",
            "a or b and c",
            "a and b or c and d",
            "not a and b",
            "not not a",
            "not (a and b) and c",
            "a and (b and c)",
            "(a and b) and c",
            "((a and b)) and c",
            "a or (b or c) or d",
            "(a or b)",
            "(a)",
            "a and(b)or(c)",
            "(a)and(b)",
            "sel-1 and sel_2 and 1",
            "1",
            "1 and x",
            "1offset",
            "notx and andy or ory",
            "not-x",
            "selection and not (filter1 or filter2 or 1 of filter_main_*)",
            "1 of *",
            "1 of them_x",
            "them_x",
        ] {
            let ours = parse(c).unwrap_or_else(|| panic!("not read: {c:?}"));
            assert_eq!(Ok(ours), parse_condition(c).map_err(|e| e.to_string()), "{c:?}");
        }
    }

    #[test]
    fn leaves_what_it_does_not_read_to_rsigma() {
        for c in [
            "",
            "sel and",
            "and sel",
            "sel or or x",
            "(sel",
            "sel)",
            "sel*",
            "them",
            "all",
            "all of",
            "1 of",
            "1 of (x)",
            "1 of and",
            "1of x",
            "1of",
            "1 of them*",
            "1 of* x",
            "sel AND x",
            "sel\tand x",
            "sel\nand x",
            "sel.x",
            "sél",
            "sel x",
            "99999999999999999999999 of x",
            &format!("{}a{}", "(".repeat(40), ")".repeat(40)),
        ] {
            assert_eq!(parse(c), None, "{c:?}");
        }
    }
}
