//! Parsing and compiling one rules text, both spread over the machine's cores (at most two
//! threads), with the rules and errors in the order of the text.

use super::RuleError;
use super::compile::{Classifications, CompiledRule, compile_rule};
use super::parse::{RawRule, Vars, parse_rule, split_rules};
use std::sync::Arc;

/// Below this many rules one thread compiles them all (a thread costs more than it saves).
const PARALLEL_MIN: usize = 256;

/// The compiled rules of `text` and the errors, both in text order.
pub(crate) fn parse_and_compile(
    text: &str,
    file: &str,
    vars: &Vars,
    classes: &Classifications,
) -> (Vec<CompiledRule>, Vec<RuleError>) {
    let mut raws = split_rules(text);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    let mut results: Vec<Result<CompiledRule, Vec<RuleError>>> = Vec::with_capacity(raws.len());
    let file: Arc<str> = Arc::from(file);
    // each rule is parsed and compiled on the same thread, its parse tree dropped at once
    let compile = |raw: RawRule| match parse_rule(raw, file.clone(), vars) {
        Ok(p) => compile_rule(&p, classes),
        Err(e) => Err(vec![e]),
    };
    if threads < 2 || raws.len() < PARALLEL_MIN {
        results.extend(raws.into_iter().map(compile));
    } else {
        let second = raws.split_off(raws.len() / 2);
        std::thread::scope(|s| {
            let other = s.spawn(|| second.into_iter().map(compile).collect::<Vec<_>>());
            results.extend(raws.into_iter().map(compile));
            match other.join() {
                Ok(rest) => results.extend(rest),
                // a panic while compiling is a bug, and it is not hidden: it goes on here
                Err(p) => std::panic::resume_unwind(p),
            }
        });
    }
    let mut rules = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(r) => rules.push(r),
            Err(es) => errors.extend(es),
        }
    }
    (rules, errors)
}
