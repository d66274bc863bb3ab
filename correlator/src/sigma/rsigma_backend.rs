//! [`SigmaEngine`] on rsigma-eval (0.23): one `rsigma_eval::Engine` per log source bucket.
//!
//! Routing is ours ([`Router`]): an event is only evaluated against the buckets whose rules
//! apply to its log source, so rsigma's own (conflict-based, looser) log source pruning is
//! not used. Within a bucket rsigma's candidate index does the field pre-filtering. Each
//! compiled rule carries its index as a custom attribute, which rsigma copies into every
//! match, so a match maps back to the rule without relying on ids or titles being unique.

use super::engine::{RuleMatch, SigmaEngine, document};
use super::route::{RouteKey, Router};
use rsigma_eval::event::JsonEvent;
use rsigma_eval::{CompiledRule, Engine, compile_rule};
use rsigma_parser::{FilterRule, SigmaRule};
use serde_json::Value;
use soc_model::Log;
use std::sync::Arc;

/// Custom attribute holding the rule index on compiled rules.
const INDEX_ATTR: &str = "canh_gac.rule_index";

struct Bucket {
    engine: Engine,
    pending: Vec<CompiledRule>,
}

impl Bucket {
    fn new() -> Self {
        Bucket { engine: Engine::new(), pending: Vec::new() }
    }
}

/// Sigma detection rules evaluated by rsigma-eval, routed by log source.
pub struct RsigmaEngine {
    router: Router<Bucket>,
    filters: Vec<FilterRule>,
    rules: usize,
}

impl Default for RsigmaEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RsigmaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsigmaEngine").field("rules", &self.rules).field("buckets", &self.router.len()).finish()
    }
}

impl RsigmaEngine {
    pub fn new() -> Self {
        RsigmaEngine { router: Router::new(), filters: Vec::new(), rules: 0 }
    }

    /// Number of log source buckets.
    pub fn buckets(&self) -> usize {
        self.router.len()
    }
}

impl SigmaEngine for RsigmaEngine {
    fn name(&self) -> &'static str {
        "rsigma"
    }

    fn add_rule(&mut self, index: usize, rule: &SigmaRule) -> Result<(), String> {
        let mut compiled = compile_rule(rule).map_err(|e| e.to_string())?;
        Arc::make_mut(&mut compiled.custom_attributes).insert(INDEX_ATTR.to_string(), Value::from(index as u64));
        let ls = &rule.logsource;
        let key = RouteKey::new(ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref());
        self.router.bucket_mut(&key, Bucket::new).pending.push(compiled);
        self.rules += 1;
        Ok(())
    }

    fn add_filter(&mut self, filter: &FilterRule) -> Result<(), String> {
        // Check now that it compiles, so a bad filter is reported against its file.
        for (name, det) in &filter.detection.named {
            rsigma_eval::compiler::compile_detection(det).map_err(|e| format!("filter detection '{name}': {e}"))?;
        }
        self.filters.push(filter.clone());
        Ok(())
    }

    fn finish(&mut self) {
        for b in self.router.iter_mut() {
            let pending = std::mem::take(&mut b.pending);
            b.engine.extend_compiled_rules(pending);
        }
        for f in std::mem::take(&mut self.filters) {
            for b in self.router.iter_mut() {
                // Compilation was checked in `add_filter`; applying cannot fail otherwise.
                if let Err(e) = b.engine.apply_filter(&f) {
                    tracing::warn!(filter = %f.title, error = %e, "sigma filter not applied");
                }
            }
        }
    }

    fn matches(&self, log: &Log, out: &mut Vec<RuleMatch>) {
        let buckets = self.router.candidates(&log.logsource);
        if buckets.is_empty() {
            return;
        }
        let doc = document(log);
        let event = JsonEvent::borrow(&doc);
        for b in buckets {
            for r in b.engine.evaluate(&event) {
                let Some(rule) = r.header.custom_attributes.get(INDEX_ATTR).and_then(Value::as_u64) else {
                    continue;
                };
                let matched_fields = r
                    .as_detection()
                    .map(|d| d.matched_fields.iter().map(|f| (f.field.clone(), f.value.clone())).collect())
                    .unwrap_or_default();
                out.push(RuleMatch { rule: rule as usize, matched_fields });
            }
        }
    }
}
