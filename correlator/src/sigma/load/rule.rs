//! Building rsigma's rule types from the tree [`super::yaml`] reads, without its YAML parser.
//!
//! rsigma-parser only takes YAML text. For the documents rule files are made of (detection
//! rules without collection actions, `sigma-version`, array selectors, and without anything
//! rsigma would warn about), this builds the same [`SigmaRule`] rsigma-parser builds, from
//! the same tree, with rsigma's own public pieces (field specs, values, conditions). Any
//! other document (correlations, filters, `action:`, a warning or an error) makes the whole
//! file [`None`]: the caller then uses `parse_sigma_yaml`, so errors and warnings always
//! come from rsigma, worded as it words them. `tests::same_as_rsigma_on_the_corpora` checks
//! that both give equal rules for every rule file of the test corpora this accepts.

use rsigma_parser::fieldpath::escape_brackets;
use rsigma_parser::value::StringPart;
use rsigma_parser::{
    Detection, DetectionItem, Detections, FieldSpec, LogSource, Modifier, Related, SigmaCollection, SigmaRule,
    SigmaString, SigmaValue, parse_condition, parse_field_spec,
};
use std::collections::HashMap;
use std::str::FromStr;
use yaml_serde::{Mapping, Value};

/// The collection `rsigma_parser::parse_sigma_yaml(text)` would give, if this builder handles
/// every document of `text` (see the module documentation); else `None`.
pub(crate) fn parse_quick(text: &str) -> Option<SigmaCollection> {
    let docs = super::yaml::parse_documents(text).ok()?;
    let mut collection = SigmaCollection::new();
    for doc in docs {
        let Value::Mapping(m) = doc else { return None };
        if ["action", "correlation", "filter", "sigma-version"].iter().any(|k| m.contains_key(*k)) {
            return None;
        }
        collection.rules.push(detection_rule(m)?);
    }
    Some(collection)
}

/// rsigma's top-level keys of a detection rule (the others are custom attributes).
const STANDARD_RULE_KEYS: &[&str] = &[
    "title",
    "sigma-version",
    "id",
    "related",
    "name",
    "taxonomy",
    "status",
    "description",
    "license",
    "author",
    "references",
    "date",
    "modified",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
    "tags",
    "scope",
    "custom_attributes",
];

/// The rule of a document's mapping. The mapping is taken apart: its strings move into the
/// rule (rsigma copies them from its tree, which is then dropped), and what is left once
/// every standard key is taken out are the custom attributes.
fn detection_rule(mut m: Mapping) -> Option<SigmaRule> {
    let title = take_string(&mut m, "title")?;
    // Without `sigma-version` the rule is read at the specification's floor.
    if rsigma_parser::array_matching_enabled(None) {
        return None;
    }
    let detection = detections(&m.swap_remove("detection")?)?;
    let logsource = match m.swap_remove("logsource") {
        Some(v) => logsource(v)?,
        None => LogSource::default(),
    };
    let related = related(m.swap_remove("related").as_ref())?;
    let status = enum_field(&mut m, "status")?;
    let level = enum_field(&mut m, "level")?;
    let explicit = m.swap_remove("custom_attributes");
    Some(SigmaRule {
        title,
        logsource,
        detection,
        sigma_version: None,
        id: take_string(&mut m, "id"),
        name: take_string(&mut m, "name"),
        related,
        taxonomy: take_string(&mut m, "taxonomy"),
        status,
        description: take_string(&mut m, "description"),
        license: take_string(&mut m, "license"),
        author: take_string(&mut m, "author"),
        references: take_str_list(&mut m, "references"),
        date: take_string(&mut m, "date"),
        modified: take_string(&mut m, "modified"),
        fields: take_str_list(&mut m, "fields"),
        falsepositives: take_str_list(&mut m, "falsepositives"),
        level,
        tags: take_str_list(&mut m, "tags"),
        scope: take_str_list(&mut m, "scope"),
        custom_attributes: custom_attributes(m, explicit),
    })
}

fn get_str<'a>(m: &'a Mapping, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn get_string(m: &Mapping, key: &str) -> Option<String> {
    get_str(m, key).map(str::to_string)
}

/// The string value of `key`, taken out of `m` (any other value is dropped: a standard key
/// is never a custom attribute).
fn take_string(m: &mut Mapping, key: &str) -> Option<String> {
    match m.swap_remove(key)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn take_str_list(m: &mut Mapping, key: &str) -> Vec<String> {
    match m.swap_remove(key) {
        Some(Value::String(s)) => vec![s],
        Some(Value::Sequence(seq)) => seq
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `Some(None)` when absent (or not a string), `Some(Some(value))` when valid, `None` when
/// rsigma would warn.
fn enum_field<T: FromStr>(m: &mut Mapping, key: &str) -> Option<Option<T>> {
    match take_string(m, key) {
        None => Some(None),
        Some(s) => s.parse().ok().map(Some),
    }
}

/// The keys left in `m` once the standard ones are taken out, then the entries of an explicit
/// `custom_attributes:` mapping (which win).
fn custom_attributes(m: Mapping, explicit: Option<Value>) -> HashMap<String, Value> {
    let mut attrs: HashMap<String, Value> = m
        .into_iter()
        .filter_map(|(k, v)| match k {
            Value::String(key) if !STANDARD_RULE_KEYS.contains(&key.as_str()) => Some((key, v)),
            _ => None,
        })
        .collect();
    if let Some(Value::Mapping(explicit)) = explicit {
        for (k, v) in explicit {
            if let Value::String(key) = k {
                attrs.insert(key, v);
            }
        }
    }
    attrs
}

/// `related:` when every entry is valid (rsigma warns about the others).
fn related(value: Option<&Value>) -> Option<Vec<Related>> {
    let Some(v) = value else { return Some(Vec::new()) };
    v.as_sequence()?
        .iter()
        .map(|item| {
            let m = item.as_mapping()?;
            Some(Related { id: get_str(m, "id")?.to_string(), relation_type: get_str(m, "type")?.parse().ok()? })
        })
        .collect()
}

/// A logsource whose extra keys all have string values (rsigma logs and skips the others).
fn logsource(v: Value) -> Option<LogSource> {
    let Value::Mapping(mut m) = v else { return None };
    let category = take_string(&mut m, "category");
    let product = take_string(&mut m, "product");
    let service = take_string(&mut m, "service");
    let definition = take_string(&mut m, "definition");
    let mut custom = HashMap::new();
    for (k, v) in m {
        let key = match k {
            Value::String(k) if !k.is_empty() => k,
            _ => continue,
        };
        let Value::String(v) = v else { return None };
        custom.insert(key, v);
    }
    Some(LogSource { category, product, service, definition, custom })
}

fn detections(v: &Value) -> Option<Detections> {
    let m = v.as_mapping()?;
    let condition_strings: Vec<String> = match m.get("condition")? {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(seq) => seq.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<_>>()?,
        _ => return None,
    };
    let conditions = condition_strings
        .iter()
        .map(|s| super::condition::parse(s).or_else(|| parse_condition(s).ok()))
        .collect::<Option<Vec<_>>>()?;
    let mut named = HashMap::new();
    for (k, v) in m {
        let key = k.as_str().unwrap_or("");
        if key == "condition" || key == "timeframe" {
            continue;
        }
        named.insert(key.to_string(), detection(v)?);
    }
    Some(Detections { named, conditions, condition_strings, timeframe: get_string(m, "timeframe") })
}

fn detection(v: &Value) -> Option<Detection> {
    match v {
        Value::Mapping(m) => {
            let items = m.iter().map(|(k, v)| item(k.as_str().unwrap_or(""), v)).collect::<Option<Vec<_>>>()?;
            Some(Detection::AllOf(items))
        }
        Value::Sequence(seq) if seq.iter().all(|v| !v.is_mapping() && !v.is_sequence()) => {
            Some(Detection::Keywords(seq.iter().map(value).collect()))
        }
        Value::Sequence(seq) => Some(Detection::AnyOf(seq.iter().map(detection).collect::<Option<_>>()?)),
        _ => Some(Detection::Keywords(vec![value(v)])),
    }
}

/// One `field|modifiers: values` entry; below the array-matching version, brackets in the
/// field name are literal (escaped), as rsigma reads them.
fn item(key: &str, value: &Value) -> Option<DetectionItem> {
    let field = match key.split_once('|') {
        _ if !key.contains(['[', ']']) => parse_field_spec(key).ok()?,
        Some((f, m)) if !f.is_empty() => parse_field_spec(&format!("{}|{m}", escape_brackets(f))).ok()?,
        None if !key.is_empty() => parse_field_spec(&escape_brackets(key)).ok()?,
        _ => parse_field_spec(key).ok()?,
    };
    let values = match value {
        Value::Sequence(seq) => seq.iter().map(|v| sigma_value(v, &field)).collect(),
        _ => vec![sigma_value(value, &field)],
    };
    Some(DetectionItem { field, values })
}

/// With the `re` modifier, strings are raw (no wildcards).
fn sigma_value(v: &Value, field: &FieldSpec) -> SigmaValue {
    match v {
        Value::String(s) if field.has_modifier(Modifier::Re) => SigmaValue::from_raw_string(s),
        _ => value(v),
    }
}

/// `SigmaValue::from_yaml(v)`, with the string of most values (no wildcard, no escaped
/// backslash) copied once instead of character by character.
fn value(v: &Value) -> SigmaValue {
    match v {
        Value::String(s) if !s.contains(['*', '?']) && !s.contains("\\\\") => {
            // `SigmaString::new` keeps a backslash before any other character (and at the end).
            let parts = if s.is_empty() { Vec::new() } else { vec![StringPart::Plain(s.clone())] };
            SigmaValue::String(SigmaString { parts, original: s.clone() })
        }
        _ => SigmaValue::from_yaml(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsigma_parser::parse_sigma_yaml;
    use serde::Deserialize;
    use std::path::{Path, PathBuf};

    #[track_caller]
    fn same_as_rsigma(text: &str) {
        let quick = parse_quick(text).unwrap_or_else(|| panic!("not on the fast path: {text}"));
        let full = parse_sigma_yaml(text).unwrap_or_else(|e| panic!("rsigma: {e}"));
        assert!(full.errors.is_empty() && full.filters.is_empty() && full.correlations.is_empty(), "{text}");
        assert_eq!(quick.rules, full.rules);
    }

    const RULE: &str = r#"title: Whoami
id: 11111111-2222-3333-4444-555555555555
related:
    - id: 00000000-2222-3333-4444-555555555555
      type: derived
status: test
description: |
    Finds whoami.
author: Someone
date: 2024-01-02
tags:
    - attack.discovery
logsource:
    category: process_creation
    product: windows
    custom_key: x
detection:
    selection:
        Image|endswith: '\whoami.exe'
        CommandLine|contains|all:
            - '/all'
            - '*priv?'
        Count: 4
        Flag: true
        Empty: null
    regex:
        CommandLine|re: '^who(ami)?\.exe *$'
    any:
        - ParentImage|endswith: '\cmd.exe'
        - ParentImage|endswith: '\powershell.exe'
    keywords:
        - 'whoami'
        - 12
    field[0]: literal brackets
    condition: (selection or 1 of any) and not regex or keywords
    timeframe: 5m
fields:
    - CommandLine
falsepositives: Admins
level: medium
custom_field: [a, b]
"#;

    #[test]
    fn builds_the_rules_rsigma_builds() {
        same_as_rsigma(RULE);
        same_as_rsigma(&format!("{RULE}---\n{}", RULE.replace("Whoami", "Second")));
        same_as_rsigma("title: t\ndetection:\n    sel: [a, b]\n    condition: [sel, not sel]\n");
    }

    #[test]
    fn values_are_the_ones_rsigma_makes() {
        for s in ["", "plain", "C:\\Windows\\", "a\\\\b", "x\\*y", "*w?", "trailing\\", "\\\\\\", "é\\ß"] {
            let v = Value::String(s.into());
            assert_eq!(value(&v), SigmaValue::from_yaml(&v), "{s:?}");
        }
        assert_eq!(value(&Value::Number(5.into())), SigmaValue::Integer(5));
    }

    #[test]
    fn leaves_other_documents_and_warnings_to_rsigma() {
        for text in [
            "title: t\naction: global\n---\ndetection:\n    s: a\n    condition: s\n",
            "title: c\ncorrelation:\n    type: event_count\n",
            "title: f\nfilter:\n    rules: [x]\n",
            "title: t\nsigma-version: 3\ndetection:\n    s: a\n    condition: s\n",
            "title: t\nlevel: severe\ndetection:\n    s: a\n    condition: s\n",
            "title: t\nstatus: maybe\ndetection:\n    s: a\n    condition: s\n",
            "title: t\nrelated:\n    - id: x\n      type: cousin\ndetection:\n    s: a\n    condition: s\n",
            "title: t\nlogsource:\n    product: 5\n    extra: [1]\ndetection:\n    s: a\n    condition: s\n",
            "title: t\ndetection:\n    s:\n        f|bogus: a\n    condition: s\n",
            "title: t\ndetection:\n    s: a\n    condition: s and (\n",
            "detection:\n    s: a\n    condition: s\n",
            "title: t\n",
            "title: t\ndetection:\n    s: &a x\n    condition: s\n",
        ] {
            assert!(parse_quick(text).is_none(), "{text}");
        }
    }

    fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                rule_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }

    /// Every YAML file of the Sigma corpora: the fast reader's tree equals yaml_serde's for every
    /// file it reads, and the rules built from it equal rsigma-parser's for every file the fast
    /// path takes; nearly every SigmaHQ rule file takes it.
    #[test]
    fn same_as_rsigma_on_the_corpora() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
        if !root.join("sigma").is_dir() {
            eprintln!("SKIPPED same_as_rsigma_on_the_corpora: ../shared/corpora/sigma not found");
            return;
        }
        for corpus in ["sigma", "sigma-extra"] {
            let mut files = Vec::new();
            rule_files(&root.join(corpus), &mut files);
            files.sort();
            let (mut read, mut trees, mut quick, mut rule_dir_files, mut rule_dir_quick) = (0, 0, 0, 0, 0);
            for f in &files {
                let Ok(text) = std::fs::read_to_string(f) else { continue };
                read += 1;
                if let Ok(ours) = super::super::yaml::parse_documents(&text) {
                    trees += 1;
                    let theirs: Result<Vec<Value>, String> = yaml_serde::Deserializer::from_str(&text)
                        .map(|d| Value::deserialize(d).map_err(|e| e.to_string()))
                        .collect();
                    assert_eq!(Ok(ours), theirs, "YAML tree of {}", f.display());
                }
                let in_rules = f.components().any(|c| c.as_os_str().to_str().is_some_and(|c| c.starts_with("rules")));
                rule_dir_files += usize::from(in_rules);
                if let Some(q) = parse_quick(&text) {
                    quick += 1;
                    rule_dir_quick += usize::from(in_rules);
                    let full = parse_sigma_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                    assert!(full.errors.is_empty(), "{}: rsigma reports {:?}", f.display(), full.errors);
                    assert!(full.filters.is_empty() && full.correlations.is_empty(), "{}", f.display());
                    assert_eq!(q.rules, full.rules, "rules of {}", f.display());
                }
            }
            eprintln!(
                "{corpus}: {read} YAML files, {trees} read by the fast YAML reader, {quick} on the fast rule path \
                 ({rule_dir_quick} of {rule_dir_files} in rules* folders)"
            );
            if corpus == "sigma" {
                assert!(rule_dir_files > 3000, "{rule_dir_files} SigmaHQ rule files");
                assert!(
                    rule_dir_quick * 100 >= rule_dir_files * 95,
                    "{rule_dir_quick} of {rule_dir_files} on the fast path"
                );
            }
        }
    }
}
