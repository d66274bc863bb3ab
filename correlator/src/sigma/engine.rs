//! The seam between the rule set and the matcher that runs it.
//!
//! A [`SigmaEngine`] receives the parsed rules (rsigma-parser's AST is the engine-neutral
//! rule model: it is a standalone Sigma 2.x parser), compiles them its own way, and answers
//! "which rules match this log". Everything around it (finding and parsing files, reporting
//! load errors, building `detection` events, ids, metrics) lives in [`super::SigmaRules`]
//! and is shared. [`super::rsigma_backend::RsigmaEngine`] is the reference implementation;
//! [`super::fast::FastEngine`] (literal index with aho-corasick, routing by log source) is
//! the correlator's own and the default, tested against the reference on the same rules.

use rsigma_parser::{FilterRule, SigmaRule};
use serde_json::Value;
use soc_model::Log;

/// One rule that matched one log.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleMatch {
    /// Index of the rule, as given to [`SigmaEngine::add_rule`].
    pub rule: usize,
    /// The fields (and values) that made it match, when the engine reports them
    /// (`keyword` for keyword matches).
    pub matched_fields: Vec<(String, Value)>,
}

/// A Sigma detection-rule matcher for single log events.
pub trait SigmaEngine: Send + Sync {
    /// Short name, for logs and metrics (`rsigma`, ...).
    fn name(&self) -> &'static str;

    /// Compiles one detection rule under index `index` (indices are dense and increasing).
    /// An `Err` is the reason the rule cannot be evaluated; the rule is then left out (and
    /// reported by the caller).
    fn add_rule(&mut self, index: usize, rule: &SigmaRule) -> Result<(), String>;

    /// Called once before the rules are added with [`SigmaEngine::add_rule`], with all of
    /// them (some may then not be added: duplicates): an engine can compile them ahead, in
    /// parallel. The default does nothing.
    fn prepare(&mut self, _rules: &[&SigmaRule]) {}

    /// Registers a Sigma filter (a meta rule that adds exclusions to the rules it names).
    /// Called after the rules it refers to were added.
    fn add_filter(&mut self, filter: &FilterRule) -> Result<(), String>;

    /// Called once after the last rule and filter; builds indexes.
    fn finish(&mut self) {}

    /// Appends to `out` the rules that apply to `log` (by its log source, see
    /// [`super::route`]) and match it. Order is not significant.
    fn matches(&self, log: &Log, out: &mut Vec<RuleMatch>);

    /// Like [`SigmaEngine::matches`] when only the rules matter: an engine may leave
    /// [`RuleMatch::matched_fields`] empty (and skip finding them). The default reports them.
    fn matching(&self, log: &Log, out: &mut Vec<RuleMatch>) {
        self.matches(log, out)
    }

    /// The engine as the correlator's own, which also evaluates JSON text directly
    /// ([`super::fast::FastEngine::matches_json`]); `None` for the others.
    fn as_fast(&self) -> Option<&super::fast::FastEngine> {
        None
    }
}

/// The document a rule sees for a log: the normalized `fields` (Sigma field names), plus
/// `message` (the log text, which keyword rules such as Linux `sshd` rules search) unless a
/// field of that name exists. Engines must evaluate exactly this view, so that they agree.
pub fn document(log: &Log) -> Value {
    let mut m = log.fields.clone();
    if let Some(msg) = &log.message
        && !m.contains_key(MESSAGE_FIELD)
    {
        m.insert(MESSAGE_FIELD.to_string(), Value::String(msg.clone()));
    }
    Value::Object(m)
}

/// Name under which [`document`] exposes [`Log::message`].
pub const MESSAGE_FIELD: &str = "message";
