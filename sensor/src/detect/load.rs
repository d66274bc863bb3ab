//! Parsing and compiling one rules text, both spread over the machine's cores (at most two
//! threads), with the rules and errors in the order of the text.

use super::RuleError;
use super::compile::{Classifications, CompiledRule, Interner, compile_rule_in};
use super::parse::{RawRule, Vars, parse_rule, split_rules};
use std::sync::{Arc, Mutex};

/// Below this many rules one thread compiles them all (a thread costs more than it saves).
const PARALLEL_MIN: usize = 256;

/// The compiled rules of `text` and the errors, both in text order; their metadata entries,
/// classtype and category strings are taken from (or added to) `strings`.
pub(crate) fn parse_and_compile(
    text: &str,
    file: &str,
    vars: &Vars,
    classes: &Classifications,
    strings: &Mutex<Interner>,
) -> (Vec<CompiledRule>, Vec<RuleError>) {
    let mut raws = split_rules(text);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    let mut results: Vec<Result<CompiledRule, Vec<RuleError>>> = Vec::with_capacity(raws.len());
    let file: Arc<str> = Arc::from(file);
    // each rule is parsed and compiled on the same thread, its parse tree dropped at once
    let compile = |raw: RawRule| match parse_rule(raw, file.clone(), vars) {
        Ok(p) => compile_rule_in(&p, classes, Some(strings)),
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

#[cfg(test)]
mod tests {
    use crate::detect::DetectorBuilder;

    #[test]
    fn metadata_entries_are_shared_by_the_rules_of_both_compiling_threads() {
        // enough rules for two threads, two distinct dates
        let n = 2 * super::PARALLEL_MIN;
        let text: String = (1..=n)
            .map(|sid| {
                format!(
                    "alert tcp any any -> any any (content:\"x{sid}\"; metadata:deployment Perimeter, created_at 2020_01_0{}; sid:{sid};)\n",
                    sid % 2
                )
            })
            .collect();
        let mut b = DetectorBuilder::new();
        b.add_rules(&text, "t.rules");
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(d.rules().len(), n);
        let entry = |i: usize, k: &str| d.rules()[i].meta.metadata.get(k).map(|v| v.as_ptr());
        let first = entry(0, "deployment");
        assert!(first.is_some());
        assert!((0..n).all(|i| entry(i, "deployment") == first), "one entry for every rule");
        let dates: std::collections::HashSet<_> = (0..n).filter_map(|i| entry(i, "created_at")).collect();
        assert_eq!(dates.len(), 2, "one entry per distinct date");
        assert_eq!(d.rules()[0].meta.metadata.get("created_at").map(|v| &*v[0]), Some("2020_01_01"));
    }
}
