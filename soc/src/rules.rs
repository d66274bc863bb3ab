//! Loading rules for the sensor (Suricata format) and the correlator (Sigma), and
//! `soc rules check`.

use serde_json::json;
use soc_correlator::SigmaRules;
use soc_sensor::detect::{Classifications, Detector, RuleError, rule_stats};
use soc_sensor::reload::RuleSlot;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The project's own Suricata rules, built into the binary (used when no --rules is given).
pub const BUILTIN_SURICATA: &[(&str, &str)] =
    &[("rules/suricata/demo.rules", include_str!("../../rules/suricata/demo.rules"))];
/// The classification table of the project's rules.
pub const BUILTIN_CLASSIFICATION: &str = include_str!("../../rules/classification.config");

/// Files with one of the extensions `ext` under `paths`. With `pipelines`, only those inside
/// a `pipelines` directory (processing pipelines); without, those outside one (rules).
fn rule_files(paths: &[PathBuf], ext: &[&str], pipelines: bool) -> Vec<PathBuf> {
    use soc_correlator::sigma::load::is_pipelines_dir;
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            if !pipelines && is_pipelines_dir(p) {
                continue;
            }
            let mut stack = vec![(p.clone(), pipelines && is_pipelines_dir(p))];
            while let Some((d, inside)) = stack.pop() {
                let Ok(rd) = std::fs::read_dir(&d) else {
                    out.push(d);
                    continue;
                };
                let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        let is_pipe = is_pipelines_dir(&e);
                        if pipelines || !is_pipe {
                            stack.push((e, inside || is_pipe));
                        }
                    } else if pipelines && !inside {
                        continue;
                    } else if e.extension().and_then(|x| x.to_str()).is_some_and(|x| ext.contains(&x)) {
                        out.push(e);
                    }
                }
            }
        } else if (!pipelines || p.parent().is_some_and(is_pipelines_dir)) && explicit_file_is(p, ext) {
            out.push(p.clone());
        }
    }
    out
}

/// Whether a file named on the command line is of the kind `ext` asks for: YAML files are
/// Sigma rules, any other file Suricata rules (whatever its extension).
fn explicit_file_is(p: &Path, ext: &[&str]) -> bool {
    let yaml = p.extension().and_then(|x| x.to_str()).is_some_and(|x| x == "yml" || x == "yaml");
    if yaml { ext.contains(&"yml") || ext.contains(&"yaml") } else { ext.contains(&"rules") }
}

/// `classification.config` in the first given directory that has one.
fn rule_dir_classification(paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().filter(|p| p.is_dir()).map(|p| p.join("classification.config")).find(|c| c.is_file())
}

fn classifications(extra: Option<&Path>) -> anyhow::Result<Classifications> {
    let mut text = BUILTIN_CLASSIFICATION.to_string();
    if let Some(p) = extra {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?);
    }
    Classifications::parse(&text).map_err(|e| anyhow::anyhow!("classification table: {e}"))
}

/// Loads Suricata rules: the given files/directories (`*.rules`), or the built-in rules
/// when none are given. Rejected rules are returned with file:line:column and the reason.
pub fn load_suricata(paths: &[PathBuf], classification: Option<&Path>) -> anyhow::Result<(Detector, Vec<RuleError>)> {
    // without an explicit table, a rule directory's own classification.config is used (as
    // shipped with ET Open), on top of the built-in table
    let found = classification.is_none().then(|| rule_dir_classification(paths)).flatten();
    let classification = classification.or(found.as_deref());
    let mut b = Detector::builder().classifications(classifications(classification)?);
    if paths.is_empty() {
        for (name, text) in BUILTIN_SURICATA {
            b.add_rules(text, name);
        }
    } else {
        let files = rule_files(paths, &["rules"], false);
        b.add_files(&files);
        // files rules refer to are resolved next to the rule file: dataset files by the
        // engine, a `threshold.config` beside a rule file here
        let mut dirs: Vec<PathBuf> = files.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            let t = d.join("threshold.config");
            if t.is_file() {
                b.add_threshold_file(&t);
            }
        }
    }
    Ok(b.build())
}

/// Loads Suricata rules for a running sensor: rejected rules are logged (each with its
/// reason) and counted; the sensor runs with the rest. Returns the number of rejected rules too.
fn load_logged(paths: &[PathBuf], classification: Option<&Path>) -> anyhow::Result<(Detector, usize)> {
    let started = std::time::Instant::now();
    let (det, errors) = load_suricata(paths, classification)?;
    for e in &errors {
        tracing::warn!(rule = %e, "rule rejected");
    }
    let rejected = rule_stats(&errors).rejected_rules;
    metrics::gauge!("soc_sensor_rules_loaded").set(det.len() as f64);
    metrics::gauge!("soc_sensor_rules_rejected").set(rejected as f64);
    tracing::info!(loaded = det.len(), rejected, ms = started.elapsed().as_millis() as u64, "suricata rules loaded");
    Ok((det, rejected))
}

/// The sensor's Suricata rules, reloadable: the set in use lives in a [`RuleSlot`] that
/// running sensors watch; [`SensorRules::reload`] reads the files again and publishes the new
/// set when it is not worse than the running one.
pub struct SensorRules {
    paths: Vec<PathBuf>,
    classification: Option<PathBuf>,
    slot: Arc<RuleSlot>,
    /// Rules the running set rejected: a reload rejecting more is refused.
    rejected: std::sync::Mutex<usize>,
}

/// What a successful reload loaded.
#[derive(Debug)]
pub struct Reloaded {
    pub generation: u64,
    pub loaded: usize,
    pub rejected: usize,
}

impl SensorRules {
    /// Loads the rules (rejected ones logged and counted; the sensor runs with the rest) into a
    /// new slot.
    pub fn load(paths: &[PathBuf], classification: Option<&Path>) -> anyhow::Result<SensorRules> {
        let (det, rejected) = load_logged(paths, classification)?;
        Ok(SensorRules {
            paths: paths.to_vec(),
            classification: classification.map(Path::to_path_buf),
            slot: RuleSlot::new(Some(Arc::new(det))),
            rejected: std::sync::Mutex::new(rejected),
        })
    }

    /// The slot sensors take their rules from.
    pub fn slot(&self) -> Arc<RuleSlot> {
        self.slot.clone()
    }

    /// The set in use.
    pub fn current(&self) -> Option<Arc<Detector>> {
        self.slot.current().1
    }

    /// Reads and compiles the rule files again. The new set replaces the running one unless a
    /// file cannot be read or it rejects more rules than the running set (then the running
    /// set stays and the reason is returned). Counted in `soc_sensor_rule_reloads_total`.
    pub fn reload(&self) -> Result<Reloaded, String> {
        let r = self.try_reload();
        let result = if r.is_ok() { "ok" } else { "failed" };
        metrics::counter!("soc_sensor_rule_reloads_total", "result" => result).increment(1);
        r
    }

    fn try_reload(&self) -> Result<Reloaded, String> {
        let started = std::time::Instant::now();
        let (det, errors) = load_suricata(&self.paths, self.classification.as_deref()).map_err(|e| format!("{e:#}"))?;
        let unreadable: Vec<String> = errors.iter().filter(|e| e.line == 0).map(|e| e.to_string()).collect();
        if !unreadable.is_empty() {
            return Err(format!("cannot read: {}", unreadable.join("; ")));
        }
        let rejected = rule_stats(&errors).rejected_rules;
        let mut running = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        if rejected > *running {
            for e in &errors {
                tracing::warn!(rule = %e, "rule rejected by the reload");
            }
            return Err(format!(
                "the new rules reject {rejected} rules, the running ones {}: fix them (soc rules check) and reload again",
                *running
            ));
        }
        for e in &errors {
            tracing::warn!(rule = %e, "rule rejected");
        }
        *running = rejected;
        let loaded = det.len();
        let generation = self.slot.publish(Arc::new(det));
        metrics::gauge!("soc_sensor_rules_loaded").set(loaded as f64);
        metrics::gauge!("soc_sensor_rules_rejected").set(rejected as f64);
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "rules compiled");
        Ok(Reloaded { generation, loaded, rejected })
    }
}

/// Reloads `rules` on every SIGHUP (compiling on a blocking thread; the capture goes on
/// meanwhile). Installed before it returns, so a SIGHUP sent after it no longer ends the
/// process. `rules` `None`: nothing to reload, the signal is only logged.
pub fn reload_on_sighup(rules: Option<Arc<SensorRules>>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).map_err(|e| anyhow::anyhow!("cannot watch SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let Some(rules) = rules.clone() else {
                    tracing::warn!("SIGHUP: no rule files were given, nothing to reload");
                    continue;
                };
                tracing::info!("SIGHUP: reloading the rules");
                match tokio::task::spawn_blocking(move || rules.reload()).await {
                    Ok(Ok(r)) => tracing::info!(
                        generation = r.generation,
                        loaded = r.loaded,
                        rejected = r.rejected,
                        "rules reloaded"
                    ),
                    Ok(Err(reason)) => tracing::error!(%reason, "rule reload failed, the running rules stay"),
                    Err(e) => tracing::error!(error = %e, "rule reload failed, the running rules stay"),
                }
            }
        });
        tracing::info!("rule reload on SIGHUP enabled");
    }
    #[cfg(not(unix))]
    let _ = rules;
    Ok(())
}

/// Loads Sigma rules (files/directories of `.yml`), or the built-in ones when none are given.
pub fn sigma_rules(paths: &[PathBuf]) -> Arc<SigmaRules> {
    let (rules, errors) = if paths.is_empty() { SigmaRules::builtin() } else { SigmaRules::load(paths) };
    for e in &errors {
        tracing::warn!(file = %e.file.display(), reason = %e.reason, "sigma rule not loaded");
    }
    metrics::gauge!("soc_correlator_sigma_rules_loaded").set(rules.len() as f64);
    metrics::gauge!("soc_correlator_sigma_rules_rejected").set(errors.len() as f64);
    tracing::info!(loaded = rules.len(), rejected = errors.len(), "sigma rules loaded");
    Arc::new(rules)
}

/// A duplicate sid: the rule of an error was dropped for the one kept at `kept_file:kept_line`.
struct Duplicate {
    sid: u32,
    gid: u32,
    kept_file: String,
    kept_line: usize,
}

/// Reads the detector's duplicate-sid error: "duplicate sid S (gid G): the rule of F:L (rev R)
/// is kept".
fn duplicate_of(e: &RuleError) -> Option<Duplicate> {
    let rest = e.reason.strip_prefix("duplicate sid ")?;
    let (sid, rest) = rest.split_once(" (gid ")?;
    let (gid, rest) = rest.split_once("): the rule of ")?;
    let (at, _) = rest.rsplit_once(" (rev ")?;
    let (file, line) = at.rsplit_once(':')?;
    Some(Duplicate {
        sid: sid.parse().ok()?,
        gid: gid.parse().ok()?,
        kept_file: file.to_string(),
        kept_line: line.parse().ok()?,
    })
}

/// `soc rules check`: Suricata (`.rules`) and Sigma (`.yml`/`.yaml`) files. Exit 0 when every
/// rule loads, 1 when some were rejected (each listed with its reason), 2 on usage errors.
pub fn check(paths: &[PathBuf], format: &str, classification: Option<&Path>) -> anyhow::Result<ExitCode> {
    if paths.is_empty() {
        anyhow::bail!("give rule files or directories to check");
    }
    let suricata_files = rule_files(paths, &["rules"], false);
    let sigma_files = rule_files(paths, &["yml", "yaml"], false);
    let pipeline_files = rule_files(paths, &["yml", "yaml"], true);
    let found = classification.is_none().then(|| rule_dir_classification(paths)).flatten();
    let classification = classification.or(found.as_deref());
    let started = std::time::Instant::now();
    let (det, errors) = if suricata_files.is_empty() {
        (Detector::builder().build().0, Vec::new())
    } else {
        load_suricata(&suricata_files, classification)?
    };
    let suricata_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (sigma, mut sigma_errors) = if sigma_files.is_empty() {
        (None, Vec::new())
    } else {
        let (r, e) = SigmaRules::load(&sigma_files);
        (Some(r), e)
    };
    let correlations = if sigma_files.is_empty() {
        0
    } else {
        let (c, e) = soc_correlator::correlation::CorrelationRules::load(&sigma_files);
        sigma_errors.extend(e);
        c.len()
    };
    let pipelines = if pipeline_files.is_empty() {
        0
    } else {
        match soc_correlator::sigma::Pipelines::load(&pipeline_files) {
            Ok(p) => p.len(),
            Err(errs) => {
                sigma_errors.extend(errs.into_iter().map(|e| {
                    let reason = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!("pipeline, line {l}, column {c}: {}", e.reason),
                        (Some(l), None) => format!("pipeline, line {l}: {}", e.reason),
                        _ => format!("pipeline: {}", e.reason),
                    };
                    soc_correlator::sigma::RuleLoadError::new(&e.file, reason)
                }));
                0
            }
        }
    };
    let stats = rule_stats(&errors);
    let duplicates: Vec<(&RuleError, Duplicate)> =
        errors.iter().filter_map(|e| duplicate_of(e).map(|d| (e, d))).collect();
    let never_set = det.flowbits_never_set();
    if format == "json" {
        let v = json!({
            "suricata": {
                "files": suricata_files.len(),
                "loaded": det.len(),
                "rejected": stats.rejected_rules,
                "errors": errors.iter().map(|e| json!({
                    "file": e.file, "line": e.line, "column": e.column, "keyword": e.keyword, "reason": e.reason,
                })).collect::<Vec<_>>(),
                "rejected_per_keyword": stats.by_keyword.iter().map(|(k, n)| json!({"keyword": k, "rules": n})).collect::<Vec<_>>(),
                "rejected_per_reason": stats.by_reason.iter().map(|(k, n)| json!({"reason": k, "errors": n})).collect::<Vec<_>>(),
                "duplicate_sids": duplicates.len(),
                "duplicates": duplicates.iter().map(|(e, d)| json!({
                    "sid": d.sid, "gid": d.gid, "file": e.file, "line": e.line,
                    "kept_file": d.kept_file, "kept_line": d.kept_line,
                })).collect::<Vec<_>>(),
                "flowbits_checked_never_set": never_set.iter().map(|(name, rules)| json!({
                    "flowbit": name,
                    "rules": rules.iter().map(|(f, l, sid)| json!({"file": f, "line": l, "sid": sid})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "load_ms": suricata_ms,
            },
            "sigma": {
                "files": sigma_files.len(),
                "loaded": sigma.as_ref().map(|s| s.len()).unwrap_or(0),
                "correlations_loaded": correlations,
                "pipeline_files": pipeline_files.len(),
                "pipeline_transformations": pipelines,
                "rejected": sigma_errors.len(),
                "errors": sigma_errors.iter().map(|e| json!({"file": e.file, "reason": e.reason})).collect::<Vec<_>>(),
            }
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if !suricata_files.is_empty() {
            println!(
                "Suricata rules: {} files, {} loaded, {} rejected ({:.0} ms)",
                suricata_files.len(),
                det.len(),
                stats.rejected_rules,
                suricata_ms
            );
            for e in errors.iter().take(200) {
                println!("  {e}");
            }
            if errors.len() > 200 {
                println!("  ... {} more (use --format json for all)", errors.len() - 200);
            }
            if !errors.is_empty() {
                println!("{stats}");
            }
            println!("duplicate sids: {}", duplicates.len());
            for (e, d) in &duplicates {
                println!(
                    "  sid {} (gid {}): {}:{} dropped, {}:{} kept",
                    d.sid, d.gid, e.file, e.line, d.kept_file, d.kept_line
                );
            }
            if !never_set.is_empty() {
                println!("flowbits checked but never set by a loaded rule: {}", never_set.len());
                for (name, rules) in &never_set {
                    let at: Vec<String> = rules.iter().map(|(f, l, sid)| format!("{f}:{l} (sid {sid})")).collect();
                    println!("  {name}: {}", at.join(", "));
                }
            }
        }
        if !sigma_files.is_empty() || !pipeline_files.is_empty() {
            println!(
                "Sigma rules: {} files, {} loaded, {} correlation rules loaded, {} rejected; pipelines: {} files, {} transformations",
                sigma_files.len(),
                sigma.as_ref().map(|s| s.len()).unwrap_or(0),
                correlations,
                sigma_errors.len(),
                pipeline_files.len(),
                pipelines
            );
            for e in &sigma_errors {
                println!("  {}: {}", e.file.display(), e.reason);
            }
        }
        if suricata_files.is_empty() && sigma_files.is_empty() && pipeline_files.is_empty() {
            println!("no .rules, .yml or .yaml files under the given paths");
        }
    }
    Ok(if errors.is_empty() && sigma_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
