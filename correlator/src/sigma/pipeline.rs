//! Processing pipelines: field-name mappings and log source changes per log source, as data.
//!
//! Sigma rules name fields in Sigma's taxonomy (Sysmon's names for Windows process creation:
//! `Image`, `ParentImage`, `ProcessId`, ...; W3C names for web servers), while a log keeps the
//! names its source wrote (a Security 4688 event has `NewProcessName`, `ParentProcessName`,
//! `NewProcessId`, and its `ProcessId` is the *parent's*). pySigma bridges that with processing
//! pipelines applied to rules when converting them to a backend's query. Here the rules are
//! evaluated by the correlator itself, so the pipelines are applied to **events**, once, before
//! the rules see them:
//!
//! * a rule is compiled once and meets every source of its log source (Sysmon and Security
//!   4688 for `process_creation`) without being compiled once per source;
//! * the cost is a few field copies for the events a pipeline item's conditions select, none
//!   for the others;
//! * the stored event carries the Sigma names too, so an analyst's search on `Image` finds
//!   4688 events as well as Sysmon ones.
//!
//! The file format is a YAML subset of pySigma's processing pipelines:
//!
//! ```yaml
//! name: windows-security-audit
//! priority: 10            # lower runs first (pySigma's convention); ties: file order
//! transformations:
//!   - id: security_4688_process_creation
//!     type: field_name_mapping      # Sigma field -> event field(s), pySigma's direction
//!     mapping:
//!       Image: NewProcessName
//!       ParentProcessId: ProcessId
//!       ProcessId: NewProcessId
//!     conditions:                   # all must hold (tested against the event)
//!       - type: logsource
//!         product: windows
//!         service: security
//!       - type: field_in
//!         field: EventID
//!         values: [4688]
//!   - id: security_5156_network_connection
//!     type: change_logsource        # sets the attributes given
//!     category: network_connection
//!     conditions: [...]
//! ```
//!
//! Mapping semantics on an event: each Sigma field gets the value of the first of its event
//! fields that the event has, all read from the fields as they were before the item (so
//! `ProcessId: NewProcessId` and `ParentProcessId: ProcessId` swap correctly). A Sigma field
//! the event already has is overwritten only when it is itself one of the item's event fields
//! (it was "moved") or the item says `overwrite: true`; otherwise the event's own value wins.
//! The source fields stay. An event field that is not a flattened field and contains a dot is
//! a path in the event as received (`Event.UserData.LogFileCleared.Channel`, Hayabusa's
//! aliases for the fields flattening hides).
//!
//! Condition types: `logsource` (each attribute given equals the event's, ASCII case
//! ignored), `field_in` (the field's value, as text, is one of `values`), `field_exists`.
//! Unknown keys and types are errors, reported with file, line and column.
//!
//! The project's pipelines live in `rules/pipelines/` and are built in ([`Pipelines::builtin`]);
//! [`super::SigmaRules`] applies them by default ([`super::SigmaRules::normalize`]).

use serde::Deserialize;
use serde_json::Value;
use soc_model::{Event, LogSource};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// (path in the repository, YAML) of the project's pipelines.
pub const BUILTIN_PIPELINES: &[(&str, &str)] = &[
    ("rules/pipelines/linux.yml", include_str!("../../../rules/pipelines/linux.yml")),
    ("rules/pipelines/web.yml", include_str!("../../../rules/pipelines/web.yml")),
    ("rules/pipelines/windows-hayabusa.yml", include_str!("../../../rules/pipelines/windows-hayabusa.yml")),
    ("rules/pipelines/windows.yml", include_str!("../../../rules/pipelines/windows.yml")),
];

/// Why a pipeline file (or an item in it) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PipelineError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub reason: String,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.reason)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    name: String,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    transformations: Vec<TransformationDef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum TransformationDef {
    FieldNameMapping {
        #[serde(default)]
        id: Option<String>,
        mapping: BTreeMap<String, OneOrMany>,
        /// Overwrite Sigma fields the event already has.
        #[serde(default)]
        overwrite: bool,
        #[serde(default)]
        conditions: Vec<ConditionDef>,
    },
    ChangeLogsource {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        product: Option<String>,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        service: Option<String>,
        #[serde(default)]
        conditions: Vec<ConditionDef>,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ConditionDef {
    Logsource {
        #[serde(default)]
        product: Option<String>,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        service: Option<String>,
    },
    FieldIn {
        field: String,
        values: Vec<Value>,
    },
    FieldExists {
        field: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Condition {
    Logsource(LogSource),
    /// Field, accepted values as text.
    FieldIn(String, Vec<String>),
    FieldExists(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Action {
    /// (Sigma field, event fields in order of preference), overwrite
    Map(Vec<(String, Vec<String>)>, bool),
    Logsource(LogSource),
}

/// One transformation with its conditions.
#[derive(Clone, Debug, PartialEq)]
struct Item {
    /// `pipeline name/item id`, for logs and metrics.
    name: String,
    conditions: Vec<Condition>,
    action: Action,
}

/// Loaded pipelines, in application order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pipelines {
    items: Vec<Item>,
    names: Vec<String>,
}

fn text(v: &Value) -> Option<String> {
    text_ref(v).map(std::borrow::Cow::into_owned)
}

/// [`text`] without copying a string value (conditions test every event).
fn text_ref(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A dotted path (`Event.UserData.LogFileCleared.Channel`) in the event as received (XML as
/// JSON: a `#text` is the element's value).
pub fn path(original: Option<&Value>, p: &str) -> Option<Value> {
    let mut v = original?;
    for part in p.split('.') {
        v = v.get(part)?;
    }
    let v = v.get("#text").unwrap_or(v);
    (!v.is_null() && !v.is_object()).then(|| v.clone())
}

fn attr_matches(want: &Option<String>, have: &Option<String>) -> bool {
    match want {
        None => true,
        // `want` was trimmed when the pipeline was read.
        Some(w) => have.as_deref().is_some_and(|h| h.trim().eq_ignore_ascii_case(w)),
    }
}

impl Condition {
    fn holds(&self, ls: &LogSource, fields: &serde_json::Map<String, Value>) -> bool {
        match self {
            Condition::Logsource(want) => {
                attr_matches(&want.product, &ls.product)
                    && attr_matches(&want.category, &ls.category)
                    && attr_matches(&want.service, &ls.service)
            }
            Condition::FieldIn(f, values) => {
                fields.get(f).and_then(text_ref).is_some_and(|t| values.iter().any(|v| v.eq_ignore_ascii_case(&t)))
            }
            Condition::FieldExists(f) => fields.get(f).is_some_and(|v| !v.is_null()),
        }
    }
}

fn convert_conditions(defs: Vec<ConditionDef>) -> Vec<Condition> {
    defs.into_iter()
        .map(|c| match c {
            ConditionDef::Logsource { product, category, service } => {
                // Trimmed once here: the condition is tested on every event.
                let trim = |v: Option<String>| v.map(|v| v.trim().to_string());
                Condition::Logsource(LogSource {
                    product: trim(product),
                    category: trim(category),
                    service: trim(service),
                })
            }
            ConditionDef::FieldIn { field, values } => {
                Condition::FieldIn(field, values.iter().filter_map(text).collect())
            }
            ConditionDef::FieldExists { field } => Condition::FieldExists(field),
        })
        .collect()
}

impl Pipelines {
    /// No pipeline: events are left as they are.
    pub fn none() -> Self {
        Pipelines::default()
    }

    /// The project's pipelines ([`BUILTIN_PIPELINES`]).
    pub fn builtin() -> Result<Pipelines, Vec<PipelineError>> {
        Self::from_sources(BUILTIN_PIPELINES.iter().copied())
    }

    /// Pipelines from `(name reported in errors, YAML)` pairs. Every unusable file is
    /// reported; any error fails the whole set (a half-applied mapping would silently change
    /// what rules see).
    pub fn from_sources<P: AsRef<Path>, S: AsRef<str>>(
        sources: impl IntoIterator<Item = (P, S)>,
    ) -> Result<Pipelines, Vec<PipelineError>> {
        let mut errors = Vec::new();
        let mut files: Vec<(i64, usize, FileDef)> = Vec::new();
        for (i, (name, text)) in sources.into_iter().enumerate() {
            let file = name.as_ref().to_path_buf();
            match yaml_serde::from_str::<FileDef>(text.as_ref()) {
                Ok(def) => files.push((def.priority, i, def)),
                Err(e) => {
                    let loc = e.location();
                    errors.push(PipelineError {
                        file,
                        line: loc.as_ref().map(|l| l.line()),
                        column: loc.as_ref().map(|l| l.column()),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        files.sort_by_key(|(p, i, _)| (*p, *i));
        let mut out = Pipelines::default();
        for (_, _, def) in files {
            out.names.push(def.name.clone());
            for (n, t) in def.transformations.into_iter().enumerate() {
                let item = match t {
                    TransformationDef::FieldNameMapping { id, mapping, overwrite, conditions } => Item {
                        name: format!("{}/{}", def.name, id.unwrap_or_else(|| n.to_string())),
                        conditions: convert_conditions(conditions),
                        action: Action::Map(
                            mapping
                                .into_iter()
                                .map(|(k, v)| {
                                    let v = match v {
                                        OneOrMany::One(s) => vec![s],
                                        OneOrMany::Many(v) => v,
                                    };
                                    (k, v)
                                })
                                .collect(),
                            overwrite,
                        ),
                    },
                    TransformationDef::ChangeLogsource { id, product, category, service, conditions } => Item {
                        name: format!("{}/{}", def.name, id.unwrap_or_else(|| n.to_string())),
                        conditions: convert_conditions(conditions),
                        action: Action::Logsource(LogSource { product, category, service }),
                    },
                };
                out.items.push(item);
            }
        }
        Ok(out)
    }

    /// Loads pipeline files (`.yml`/`.yaml`; directories are walked like rule directories).
    pub fn load(paths: &[PathBuf]) -> Result<Pipelines, Vec<PipelineError>> {
        let mut walk_errors = Vec::new();
        let files = super::load::rule_files(paths, &mut walk_errors);
        let mut errors: Vec<PipelineError> = walk_errors
            .into_iter()
            .map(|e| PipelineError { file: e.file, line: None, column: None, reason: e.reason })
            .collect();
        let mut sources = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => sources.push((f, t)),
                Err(e) => errors.push(PipelineError {
                    file: f,
                    line: None,
                    column: None,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
        match Self::from_sources(sources) {
            Ok(p) if errors.is_empty() => Ok(p),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Number of transformations.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Pipeline names, in application order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Applies every transformation whose conditions hold to a `log` event's fields and log
    /// source. Other records are left alone. Returns how many transformations applied.
    pub fn apply(&self, ev: &mut Event) -> usize {
        let Some(log) = ev.log.as_mut() else { return 0 };
        let original = log.original.as_ref();
        self.apply_to(&mut log.logsource, &mut log.fields, &mut |p| path(original, p))
    }

    /// [`Pipelines::apply`] on a log's parts: its log source, its fields, and `original`,
    /// which resolves a dotted path in the event as received (for mappings whose source is
    /// such a path; called only when a mapping needs it).
    pub fn apply_to(
        &self,
        logsource: &mut LogSource,
        fields: &mut serde_json::Map<String, Value>,
        original: &mut dyn FnMut(&str) -> Option<Value>,
    ) -> usize {
        let mut applied = 0;
        for item in &self.items {
            if !item.conditions.iter().all(|c| c.holds(logsource, fields)) {
                continue;
            }
            applied += 1;
            match &item.action {
                Action::Logsource(ls) => {
                    if ls.product.is_some() {
                        logsource.product.clone_from(&ls.product);
                    }
                    if ls.category.is_some() {
                        logsource.category.clone_from(&ls.category);
                    }
                    if ls.service.is_some() {
                        logsource.service.clone_from(&ls.service);
                    }
                }
                Action::Map(mapping, overwrite) => {
                    let mut set: Vec<(&str, Value)> = Vec::new();
                    for (sigma, sources) in mapping {
                        let moved = mapping.iter().any(|(_, s)| s.iter().any(|x| x == sigma));
                        if fields.contains_key(sigma) && !moved && !overwrite {
                            continue;
                        }
                        let found = sources.iter().find_map(|s| {
                            fields
                                .get(s)
                                .filter(|v| !v.is_null())
                                .cloned()
                                .or_else(|| if s.contains('.') { original(s) } else { None })
                        });
                        if let Some(v) = found {
                            set.push((sigma, v));
                        }
                    }
                    for (k, v) in set {
                        fields.insert(k.to_string(), v);
                    }
                }
            }
            metrics::counter!("soc_correlator_pipeline_applied_total", "item" => item.name.clone()).increment(1);
        }
        applied
    }

    /// Every field name the pipelines read or write (conditions, mapping targets and
    /// sources): what a record must hold for [`Pipelines::apply_to`] to act as on the full
    /// event.
    pub fn field_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for item in &self.items {
            for c in &item.conditions {
                match c {
                    Condition::FieldIn(f, _) | Condition::FieldExists(f) => out.push(f.as_str()),
                    Condition::Logsource(_) => {}
                }
            }
            if let Action::Map(mapping, _) = &item.action {
                for (sigma, sources) in mapping {
                    out.push(sigma.as_str());
                    out.extend(sources.iter().map(String::as_str));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use soc_model::{EventType, Log, Timestamp};

    fn event(ls: LogSource, fields: Value) -> Event {
        let mut e = Event::new(EventType::Log, Timestamp::from_unix_micros(0));
        let Value::Object(fields) = fields else { panic!("object") };
        e.log = Some(Log { logsource: ls, fields, ..Log::default() });
        e
    }

    fn security() -> LogSource {
        LogSource { product: Some("windows".into()), service: Some("security".into()), category: None }
    }

    #[test]
    fn security_4688_gets_sysmon_names_with_the_process_ids_swapped() {
        let p = Pipelines::builtin().unwrap();
        let mut ls = security();
        ls.category = Some("process_creation".into());
        let mut e = event(
            ls,
            json!({"EventID": 4688, "NewProcessName": "C:\\x.exe", "NewProcessId": "0x10", "ProcessId": "0x4",
                   "ParentProcessName": "C:\\p.exe", "SubjectUserName": "bob", "CommandLine": "x"}),
        );
        assert!(p.apply(&mut e) >= 1);
        let f = &e.log.as_ref().unwrap().fields;
        assert_eq!(f["Image"], "C:\\x.exe");
        assert_eq!(f["ParentImage"], "C:\\p.exe");
        assert_eq!(f["ProcessId"], "0x10");
        assert_eq!(f["ParentProcessId"], "0x4");
        assert_eq!(f["NewProcessName"], "C:\\x.exe", "source fields stay");
        assert_eq!(f["CommandLine"], "x");
    }

    #[test]
    fn conditions_select_events_and_existing_fields_win() {
        let p = Pipelines::builtin().unwrap();
        // Sysmon process creation already has the Sigma names: untouched.
        let sysmon = LogSource {
            product: Some("windows".into()),
            service: Some("sysmon".into()),
            category: Some("process_creation".into()),
        };
        let mut e = event(sysmon, json!({"EventID": 1, "Image": "a", "ProcessId": 5, "NewProcessName": "b"}));
        p.apply(&mut e);
        let f = &e.log.as_ref().unwrap().fields;
        assert_eq!((f["Image"].clone(), f["ProcessId"].clone()), (json!("a"), json!(5)));
        // Another Security event id: no process mapping.
        let mut e = event(security(), json!({"EventID": 4624, "ProcessId": "0x4", "NewProcessName": "z"}));
        p.apply(&mut e);
        assert!(!e.log.as_ref().unwrap().fields.contains_key("Image"));
    }

    #[test]
    fn change_logsource_and_field_exists() {
        let text = "name: t\npriority: 5\ntransformations:\n  - id: a\n    type: change_logsource\n    category: process_creation\n    conditions:\n      - type: field_exists\n        field: CommandLine\n  - type: field_name_mapping\n    mapping:\n      Image: [exe, comm]\n    conditions:\n      - type: logsource\n        category: process_creation\n";
        let p = Pipelines::from_sources([("t.yml", text)]).unwrap();
        assert_eq!(p.len(), 2);
        let ls = LogSource { product: Some("linux".into()), service: Some("auditd".into()), category: None };
        let mut e = event(ls.clone(), json!({"CommandLine": "id", "comm": "id"}));
        assert_eq!(p.apply(&mut e), 2);
        let log = e.log.as_ref().unwrap();
        assert_eq!(log.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(log.fields["Image"], "id", "second choice when the first is absent");
        let mut e = event(ls, json!({"comm": "id"}));
        assert_eq!(p.apply(&mut e), 0);
    }

    #[test]
    fn bad_files_are_reported_with_file_line_and_column() {
        let text = "name: t\ntransformations:\n  - type: field_name_mapping\n    mapping: {A: b}\n    condtions: []\n";
        let errs = Pipelines::from_sources([("bad.yml", text)]).unwrap_err();
        assert_eq!(errs.len(), 1);
        let s = errs[0].to_string();
        assert!(s.starts_with("bad.yml:"), "{s}");
        assert!(errs[0].line.is_some() && s.contains("condtions"), "{s}");
        let errs =
            Pipelines::from_sources([("t.yml", "name: t\ntransformations:\n  - type: drop_field\n")]).unwrap_err();
        assert!(errs[0].reason.contains("drop_field"), "{errs:?}");
    }

    #[test]
    fn builtin_pipelines_match_the_files_in_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join("rules/pipelines"))
            .unwrap()
            .flatten()
            .map(|e| format!("rules/pipelines/{}", e.file_name().to_string_lossy()))
            .filter(|p| p.ends_with(".yml"))
            .collect();
        on_disk.sort();
        let builtin: Vec<String> = BUILTIN_PIPELINES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(builtin, on_disk);
        for (p, text) in BUILTIN_PIPELINES {
            assert_eq!(std::fs::read_to_string(root.join(p)).unwrap(), *text, "{p}");
        }
        let loaded = Pipelines::load(&[root.join("rules/pipelines")]).unwrap();
        assert_eq!(loaded, Pipelines::builtin().unwrap());
    }
}
