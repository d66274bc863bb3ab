//! Sigma detection on normalized logs (first cut).
//!
//! The pipeline holds a [`SigmaRules`] behind an `Arc`, loaded once at start, and calls
//! [`SigmaRules::evaluate`] on each decoded `log` event; each match becomes a `detection`
//! event stored next to the log and published on the detection topic.
//!
//! Layers, each replaceable on its own:
//! * [`load`]: finds rule files, parses Sigma 2.x YAML (rsigma-parser) and reports every
//!   document it could not use as a [`RuleLoadError`] with its file;
//! * [`route`]: routing by log source: a rule applies only to logs whose
//!   `log.logsource` has every attribute (product, category, service) the rule sets;
//! * [`engine::SigmaEngine`]: matches a log against the rules routed to it; two
//!   implementations, selected with [`EngineKind`] (default `fast`, or the
//!   `SOC_SIGMA_ENGINE` environment variable): [`fast::FastEngine`], the correlator's own
//!   (literal prefilter + exact evaluation), and [`rsigma_backend::RsigmaEngine`]
//!   (rsigma-eval), the reference it is tested against;
//! * [`SigmaRules`]: rule metadata, `detection` event construction (deterministic ids,
//!   evidence), metrics. It implements [`Detector`], the interface other single-event
//!   detectors (IOC matching, ...) can share in the pipeline.
//!
//! What a rule sees of a log is [`engine::document`]: the normalized `fields` plus
//! `message`.
//!
//! Offline detection and benchmarks that start from the JSON text of Windows events can skip
//! building the event: [`SigmaRules::matching_rules_json`] flattens the text the way the
//! collector does, applies the pipelines and evaluates only the fields the routed rules look
//! up ([`fast::flat`]; `tests/sigma_flat.rs` proves it equivalent). The correlator consumes
//! events the collector already normalized (model `Event`s on the bus, which it stores), so
//! it keeps the general path.

pub mod builtin;
pub mod engine;
pub mod fast;
pub mod load;
pub mod pipeline;
pub mod route;
pub mod rsigma_backend;

pub use engine::{RuleMatch, SigmaEngine};
pub use fast::{FastEngine, FieldSet, FlatError, FlatInfo, FlatScratch};
pub use load::{LoadTimings, RuleLoadError};
pub use pipeline::{PipelineError, Pipelines};
pub use rsigma_backend::RsigmaEngine;

use serde_json::{Value, json};
use soc_model::{Detection, Event, EventType, Level, Log, LogSource};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Value of `detection.engine` for detections raised here.
pub const ENGINE_NAME: &str = "sigma";

/// Which matcher evaluates the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// The correlator's own engine ([`FastEngine`]): literal prefilter, exact evaluation.
    #[default]
    Fast,
    /// rsigma-eval ([`RsigmaEngine`]), the reference.
    Rsigma,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Fast => "fast",
            EngineKind::Rsigma => "rsigma",
        }
    }

    fn make(self) -> Box<dyn SigmaEngine> {
        match self {
            EngineKind::Fast => Box::new(FastEngine::new()),
            EngineKind::Rsigma => Box::new(RsigmaEngine::new()),
        }
    }

    /// The engine named by the `SOC_SIGMA_ENGINE` environment variable (`fast` or
    /// `rsigma`), else the default. An unknown name is an error.
    pub fn from_env() -> Result<EngineKind, String> {
        match std::env::var("SOC_SIGMA_ENGINE") {
            Ok(v) => v.parse(),
            Err(_) => Ok(EngineKind::default()),
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fast" => Ok(EngineKind::Fast),
            "rsigma" => Ok(EngineKind::Rsigma),
            other => Err(format!("unknown Sigma engine '{other}' (expected fast or rsigma)")),
        }
    }
}

/// A detector of single events: given one decoded record, the `detection` events it raises.
pub trait Detector: Send + Sync {
    /// Short name (`sigma`, ...).
    fn name(&self) -> &str;
    /// Appends the detections raised by `ev` to `out`.
    fn detect(&self, ev: &Event, out: &mut Vec<Event>);
}

/// What is known about a loaded rule, for building detections and for listing.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleInfo {
    /// The Sigma `id`, or the title when the rule has none.
    pub id: String,
    pub title: String,
    /// Sigma `level`; rules without one are `informational`.
    pub level: Level,
    pub tags: Vec<String>,
    /// The rule's log source (as written in the rule).
    pub logsource: LogSource,
    pub status: Option<String>,
    pub file: PathBuf,
}

/// A loaded, compiled Sigma rule set.
pub struct SigmaRules {
    rules: Vec<RuleInfo>,
    filters: usize,
    files: usize,
    engine: Box<dyn SigmaEngine>,
    /// Applied to events by [`SigmaRules::normalize`] before evaluation.
    pipelines: Pipelines,
    /// The field names the pipelines read or write (for the fast path from JSON).
    pipeline_fields: fast::FieldSet,
    timings: LoadTimings,
}

impl fmt::Debug for SigmaRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigmaRules")
            .field("engine", &self.engine.name())
            .field("rules", &self.rules.len())
            .field("filters", &self.filters)
            .field("files", &self.files)
            .field("pipeline_items", &self.pipelines.len())
            .finish()
    }
}

impl Default for SigmaRules {
    fn default() -> Self {
        SigmaRules::empty()
    }
}

/// A Sigma level as the model's (absent: informational).
pub(crate) fn level(l: Option<rsigma_parser::Level>) -> Level {
    use rsigma_parser::Level as L;
    match l {
        Some(L::Informational) | None => Level::Informational,
        Some(L::Low) => Level::Low,
        Some(L::Medium) => Level::Medium,
        Some(L::High) => Level::High,
        Some(L::Critical) => Level::Critical,
    }
}

impl SigmaRules {
    /// A rule set that matches nothing.
    pub fn empty() -> Self {
        SigmaRules {
            rules: Vec::new(),
            filters: 0,
            files: 0,
            engine: EngineKind::default().make(),
            pipelines: Pipelines::none(),
            pipeline_fields: fast::FieldSet::default(),
            timings: LoadTimings::default(),
        }
    }

    /// Loads `.yml`/`.yaml` rule files from `paths` (files, or directories walked
    /// recursively). Returns the rules that loaded and one error per file or document that
    /// did not: the rule set is usable even when some rules are broken, and the caller
    /// decides whether errors are fatal.
    ///
    /// The engine is the default ([`EngineKind::Fast`]) unless `SOC_SIGMA_ENGINE` names
    /// another (see [`EngineKind::from_env`]; an invalid name is reported as a load error
    /// and the default is used).
    pub fn load(paths: &[PathBuf]) -> (SigmaRules, Vec<RuleLoadError>) {
        let (kind, mut errors) = match EngineKind::from_env() {
            Ok(k) => (k, Vec::new()),
            Err(e) => (EngineKind::default(), vec![RuleLoadError::new("SOC_SIGMA_ENGINE", e)]),
        };
        let (rules, more) = Self::load_with(paths, kind);
        errors.extend(more);
        (rules, errors)
    }

    /// Like [`SigmaRules::load`], with the given engine.
    pub fn load_with(paths: &[PathBuf], engine: EngineKind) -> (SigmaRules, Vec<RuleLoadError>) {
        let mut errors = Vec::new();
        let parsed = load::load_paths(paths, &mut errors);
        let rules = Self::build(parsed, engine.make(), &mut errors);
        (rules, errors)
    }

    /// Like [`SigmaRules::load`], from in-memory sources: (name reported in errors, YAML).
    pub fn from_sources<P: AsRef<Path>, S: AsRef<str>>(
        sources: impl IntoIterator<Item = (P, S)>,
    ) -> (SigmaRules, Vec<RuleLoadError>) {
        Self::from_sources_with(sources, EngineKind::default())
    }

    /// Like [`SigmaRules::from_sources`], with the given engine.
    pub fn from_sources_with<P: AsRef<Path>, S: AsRef<str>>(
        sources: impl IntoIterator<Item = (P, S)>,
        engine: EngineKind,
    ) -> (SigmaRules, Vec<RuleLoadError>) {
        let mut errors = Vec::new();
        let mut parsed = load::Parsed::default();
        for (name, text) in sources {
            load::parse_source(name.as_ref(), text.as_ref(), &mut parsed, &mut errors);
        }
        let rules = Self::build(parsed, engine.make(), &mut errors);
        (rules, errors)
    }

    fn build(parsed: load::Parsed, mut engine: Box<dyn SigmaEngine>, errors: &mut Vec<RuleLoadError>) -> SigmaRules {
        let mut timings = parsed.timings;
        let mut t = std::time::Instant::now();
        let mut lap = |d: &mut std::time::Duration| {
            *d = t.elapsed();
            t = std::time::Instant::now();
        };
        let mut infos: Vec<RuleInfo> = Vec::with_capacity(parsed.rules.len());
        // Rules are compiled ahead (in parallel) by engines that can; then added in file order.
        engine.prepare(&parsed.rules.iter().map(|(_, r)| r).collect::<Vec<_>>());
        lap(&mut timings.compile);
        // The ids already loaded, with their files (borrowed from the parsed rules).
        let mut seen: HashMap<&str, &Path> = HashMap::with_capacity(parsed.rules.len());
        for (file, rule) in &parsed.rules {
            let id = rule.id.as_deref().unwrap_or(&rule.title);
            if let Some(first) = seen.get(id) {
                errors.push(RuleLoadError::new(
                    file,
                    format!("rule '{}': duplicate id {id} (already loaded from {})", rule.title, first.display()),
                ));
                continue;
            }
            if let Err(e) = engine.add_rule(infos.len(), rule) {
                errors.push(RuleLoadError::new(file, format!("rule '{}': {e}", rule.title)));
                continue;
            }
            seen.insert(id, file);
            let ls = &rule.logsource;
            infos.push(RuleInfo {
                id: id.to_string(),
                title: rule.title.clone(),
                level: level(rule.level),
                tags: rule.tags.clone(),
                logsource: LogSource {
                    product: ls.product.clone(),
                    category: ls.category.clone(),
                    service: ls.service.clone(),
                },
                status: rule.status.map(|s| format!("{s:?}").to_ascii_lowercase()),
                file: file.clone(),
            });
        }
        let mut filters = 0;
        for (file, f) in parsed.filters {
            if let rsigma_parser::FilterRuleTarget::Specific(refs) = &f.rules {
                let known = refs.iter().any(|r| infos.iter().any(|i| i.id == *r || i.title == *r));
                if !known {
                    errors.push(RuleLoadError::new(
                        &file,
                        format!("filter '{}': none of the rules it names ({}) is loaded", f.title, refs.join(", ")),
                    ));
                    continue;
                }
            }
            match engine.add_filter(&f) {
                Ok(()) => filters += 1,
                Err(e) => errors.push(RuleLoadError::new(&file, format!("filter '{}': {e}", f.title))),
            }
        }
        lap(&mut timings.add);
        engine.finish();
        lap(&mut timings.index);
        tracing::debug!(
            rules = infos.len(),
            filters,
            files = parsed.files,
            engine = engine.name(),
            "sigma rules loaded"
        );
        // The project's pipelines by default; replace them with `with_pipelines`.
        let pipelines = Pipelines::builtin().unwrap_or_else(|errs| {
            errors.extend(errs.into_iter().map(|e| RuleLoadError::new(e.file.clone(), e.to_string())));
            Pipelines::none()
        });
        let pipeline_fields = pipelines.field_names().into_iter().map(Box::from).collect();
        lap(&mut timings.pipelines);
        drop(parsed.rules);
        lap(&mut timings.free);
        SigmaRules { rules: infos, filters, files: parsed.files, engine, pipelines, pipeline_fields, timings }
    }

    /// Where the time of loading these rules went (profiling; zero for [`SigmaRules::empty`]).
    pub fn load_timings(&self) -> LoadTimings {
        self.timings
    }

    /// The same rules with other pipelines ([`Pipelines::none`] for none).
    pub fn with_pipelines(mut self, pipelines: Pipelines) -> Self {
        self.pipeline_fields = pipelines.field_names().into_iter().map(Box::from).collect();
        self.pipelines = pipelines;
        self
    }

    /// The pipelines [`SigmaRules::normalize`] applies (the project's by default).
    pub fn pipelines(&self) -> &Pipelines {
        &self.pipelines
    }

    /// Applies the pipelines (field-name mappings, log source changes) to a `log` event, as
    /// the correlator and `soc detect` do before evaluating it. Returns the transformations
    /// applied.
    pub fn normalize(&self, ev: &mut Event) -> usize {
        self.pipelines.apply(ev)
    }

    /// Number of rules loaded.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The loaded rules, in load order (files sorted by path).
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// Number of Sigma filters applied.
    pub fn filter_count(&self) -> usize {
        self.filters
    }

    /// Number of rule files read.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// The evaluation engine's name (`fast` or `rsigma`).
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// The indices (into [`SigmaRules::rules`]) of the rules `log` matches, sorted, each
    /// once, appended to `out`. No detection event is built (offline detection, benchmarks).
    pub fn matching_rules(&self, log: &Log, out: &mut Vec<usize>) {
        if self.rules.is_empty() {
            return;
        }
        let mut matches = Vec::new();
        self.engine.matching(log, &mut matches);
        let start = out.len();
        out.extend(matches.iter().map(|m| m.rule));
        out[start..].sort_unstable();
        let mut tail = out.split_off(start);
        tail.dedup();
        out.append(&mut tail);
    }

    /// Like [`SigmaRules::matching_rules`] on the event the collector would make of `json`
    /// with [`SigmaRules::normalize`] applied, straight from the JSON text of a Windows event
    /// in the evtx shape: only the fields the routed rules look up are parsed into values,
    /// nothing else is built (see [`fast::flat`]). [`FlatError::Unsupported`] for other
    /// shapes and for the rsigma engine: the caller then normalizes the event and calls
    /// [`SigmaRules::matching_rules`]. `scratch` holds buffers reused from event to event.
    pub fn matching_rules_json(
        &self,
        json: &str,
        scratch: &mut FlatScratch,
        out: &mut Vec<usize>,
    ) -> Result<(), FlatError> {
        let fast = self.engine.as_fast().ok_or(FlatError::Unsupported)?;
        if self.rules.is_empty() {
            return Ok(());
        }
        let mut matches = Vec::new();
        fast.matches_json_with(json, &self.pipelines, &self.pipeline_fields, scratch, false, &mut matches)?;
        let start = out.len();
        out.extend(matches.iter().map(|m| m.rule));
        out[start..].sort_unstable();
        let mut tail = out.split_off(start);
        tail.dedup();
        out.append(&mut tail);
        Ok(())
    }

    /// The record [`SigmaRules::matching_rules_json`] evaluates, left in `scratch` (for
    /// tests: its fields must equal the normalized event's); with `all`, every field.
    pub fn flat_record(&self, json: &str, scratch: &mut FlatScratch, all: bool) -> Result<FlatInfo, FlatError> {
        let fast = self.engine.as_fast().ok_or(FlatError::Unsupported)?;
        fast.flat_record(json, &self.pipelines, &self.pipeline_fields, scratch, all)
    }

    /// The `detection` events raised by `ev` (none unless it is a `log` event).
    pub fn evaluate(&self, ev: &Event) -> Vec<Event> {
        let mut out = Vec::new();
        self.evaluate_into(ev, &mut out);
        out
    }

    /// Like [`SigmaRules::evaluate`], appending to `out`. Detections come in rule order.
    pub fn evaluate_into(&self, ev: &Event, out: &mut Vec<Event>) {
        if ev.event_type != EventType::Log || self.rules.is_empty() {
            return;
        }
        let Some(log) = ev.log.as_ref() else { return };
        let mut matches = Vec::new();
        self.engine.matches(log, &mut matches);
        if matches.is_empty() {
            return;
        }
        matches.sort_by_key(|m| m.rule);
        matches.dedup_by_key(|m| m.rule);
        let evidence = ev.id.clone().unwrap_or_else(|| ev.compute_id());
        for m in matches {
            let Some(rule) = self.rules.get(m.rule) else {
                continue;
            };
            out.push(detection_event(ev, &log.logsource, rule, &m, &evidence));
            metrics::counter!("soc_correlator_sigma_detections_total", "level" => rule.level.as_str()).increment(1);
        }
    }
}

impl Detector for SigmaRules {
    fn name(&self) -> &str {
        ENGINE_NAME
    }
    fn detect(&self, ev: &Event, out: &mut Vec<Event>) {
        self.evaluate_into(ev, out)
    }
}

/// Builds the `detection` event for one match: the log's time and origin, the rule, the
/// log's id as evidence, the matched fields; the id is deterministic (same log, same rule,
/// same id), so re-processing a redelivered log stores the detection once.
fn detection_event(ev: &Event, logsource: &LogSource, rule: &RuleInfo, m: &RuleMatch, evidence: &str) -> Event {
    let mut d = Event::new(EventType::Detection, ev.timestamp);
    d.host = ev.host.clone();
    d.segment = ev.segment.clone();
    d.sensor = ev.sensor.clone();
    d.src_ip = ev.src_ip.clone();
    let mut extra = serde_json::Map::new();
    if !m.matched_fields.is_empty() {
        let fields: Vec<Value> = m.matched_fields.iter().map(|(f, v)| json!({"field": f, "value": v})).collect();
        extra.insert("matched_fields".into(), Value::Array(fields));
    }
    d.detection = Some(Detection {
        engine: ENGINE_NAME.into(),
        rule_id: rule.id.clone(),
        rule_title: rule.title.clone(),
        level: rule.level,
        tags: rule.tags.clone(),
        logsource: Some(logsource.clone()),
        evidence: vec![evidence.to_string()],
        extra,
    });
    d.ensure_id();
    d
}
