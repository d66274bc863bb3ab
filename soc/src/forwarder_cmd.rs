//! `soc forwarder`: the NCSC forwarder daemon (Kafka incident topic -> outbox -> TAXII), its
//! configuration check, and the analyst's `approve` and `status` commands.

use crate::config::{MetricsConfig, StoreConfig};
use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Deserialize;
use soc_bus::Bus;
use soc_forwarder::config::{Endpoint, IdentityConfig, InboundConfig, OutboxConfig};
use soc_forwarder::policy::Policy;
use soc_forwarder::redact::Redaction;
use soc_forwarder::{Forwarder, ForwarderOptions};
use soc_model::config::{ConfigError, load_toml};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ForwarderArgs {
    #[command(subcommand)]
    pub command: Option<ForwarderCommand>,
    /// Configuration file (TOML; see deploy/config/forwarder.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ForwarderCommand {
    /// Validate a configuration file and exit (0 = valid).
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Approve an incident for sending (policy `approval = "manual"`), or re-queue one the
    /// server rejected after the cause was fixed. The running forwarder sends it next.
    Approve {
        /// Configuration file of the forwarder (for its outbox and store).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Who approves (recorded in the audit trail).
        #[arg(long, env = "USER", default_value = "analyst")]
        by: String,
        /// The incident id.
        incident_id: String,
    },
    /// Show the outbox: counts per state, or every version of one incident.
    Status {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        incident_id: Option<String>,
    },
}

fn default_group() -> String {
    "soc-forwarder".into()
}

/// The forwarder's configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwarderFile {
    /// Consumer group on the incident topic.
    #[serde(default = "default_group")]
    pub group: String,
    pub destination: Endpoint,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub redaction: Redaction,
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub inbound: Option<InboundConfig>,
    pub kafka: soc_bus::kafka::KafkaConfig,
    /// Where forwarding records go for the dashboard (optional: the outbox is the truth).
    #[serde(default)]
    pub store: Option<StoreConfig>,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

pub fn load_forwarder(path: &Path) -> Result<ForwarderFile, ConfigError> {
    let f: ForwarderFile = load_toml(path)?;
    let p = path.display().to_string();
    f.destination.validate(&p, "destination")?;
    if let Some(i) = &f.inbound {
        i.source.validate(&p, "inbound.source")?;
        if !(i.interval_secs > 0.0 && i.interval_secs.is_finite()) {
            return Err(ConfigError::Semantic {
                path: p,
                message: "inbound.interval_secs must be a positive number".into(),
            });
        }
    }
    Ok(f)
}

impl ForwarderFile {
    fn options(&self) -> anyhow::Result<ForwarderOptions> {
        let client = self.destination.client_options().map_err(|e| anyhow::anyhow!("destination: {e}"))?;
        Ok(ForwarderOptions {
            destination: self.destination.collection_url.clone(),
            client,
            bundle: self.identity.bundle_options(),
            policy: self.policy.clone(),
            redaction: self.redaction.clone(),
            outbox_path: self.outbox.path.clone(),
            backoff: self.outbox.backoff(),
            status_wait: Duration::from_secs_f64(self.outbox.status_wait_secs.max(0.0)),
            group: self.group.clone(),
        })
    }
}

async fn open_store(cfg: &Option<StoreConfig>) -> anyhow::Result<Option<Arc<dyn soc_store::Store>>> {
    let Some(cfg) = cfg else { return Ok(None) };
    let store = cfg.open().await.context("cannot open the store at start-up")?;
    store.migrate().await?;
    Ok(Some(store))
}

pub async fn forwarder(a: ForwarderArgs) -> anyhow::Result<ExitCode> {
    match &a.command {
        Some(ForwarderCommand::CheckConfig { file }) => {
            load_forwarder(file)?;
            println!("{}: valid forwarder configuration", file.display());
            return Ok(ExitCode::SUCCESS);
        }
        Some(ForwarderCommand::Approve { config, by, incident_id }) => {
            let f = load_forwarder(config)?;
            let store = open_store(&f.store).await?;
            let fwd = Forwarder::new(f.options()?, store)?;
            let versions = fwd.approve(incident_id, by).await?;
            if versions.is_empty() {
                println!("{incident_id}: approved; no version was waiting (later versions will be sent)");
            } else {
                println!("{incident_id}: approved by {by}; queued version(s) {versions:?}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(ForwarderCommand::Status { config, incident_id }) => {
            let f = load_forwarder(config)?;
            let outbox = soc_forwarder::outbox::Outbox::open(&f.outbox.path, f.outbox.backoff())?;
            match incident_id {
                Some(id) => {
                    for e in outbox.entries(id)? {
                        println!(
                            "{} v{}: {} (attempts {}{})",
                            e.incident_id,
                            e.version,
                            e.state.as_str(),
                            e.attempts,
                            e.reason.map(|r| format!(", {r}")).unwrap_or_default()
                        );
                    }
                }
                None => {
                    for (state, n) in outbox.counts()? {
                        println!("{state}: {n}");
                    }
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let path = a.config.as_deref().ok_or_else(|| {
        anyhow::anyhow!("soc forwarder: --config FILE is required (see deploy/config/forwarder.toml)")
    })?;
    let f = load_forwarder(path)?;
    let store = open_store(&f.store).await?;
    let fwd = Arc::new(Forwarder::new(f.options()?, store)?);
    let bus = soc_bus::kafka::KafkaBus::connect(f.kafka.clone())?;
    let bus: Arc<dyn Bus> = Arc::new(bus);
    soc_bus::with_backoff("ensure_topics", Duration::from_secs(0), || bus.ensure_topics())
        .await
        .context("cannot reach Kafka at start-up")?;
    if let Some(m) = &f.metrics {
        crate::components::serve_metrics(m.listen).await?;
    }
    let shutdown = crate::components::shutdown_on_signal();
    let inbound = match &f.inbound {
        Some(i) => {
            let opts = i.source.client_options().map_err(|e| anyhow::anyhow!("inbound.source: {e}"))?;
            let client = soc_forwarder::taxii::TaxiiClient::new(&opts)?;
            let poller =
                soc_forwarder::inbound::Inbound::new(client, i.source.collection_url.clone(), i.out_dir.clone());
            Some(tokio::spawn(soc_forwarder::inbound::run(
                poller,
                Duration::from_secs_f64(i.interval_secs),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    tracing::info!(destination = %fwd.destination(), outbox = %f.outbox.path.display(), "forwarder starting");
    let stats = soc_forwarder::run(bus, fwd, shutdown).await?;
    if let Some(t) = inbound {
        let _ = t.await;
    }
    tracing::info!(?stats, "forwarder stopped");
    Ok(ExitCode::SUCCESS)
}

/// The TAXII client options of a `soc run` flag's URL: credentials from SOC_NCSC_USER and
/// SOC_NCSC_PASSWORD, public CA roots, 30 s per request.
fn env_endpoint(url: &str, flag: &str) -> anyhow::Result<soc_forwarder::taxii::ClientOptions> {
    let endpoint = Endpoint {
        collection_url: url.to_string(),
        username: None,
        username_env: Some("SOC_NCSC_USER".into()),
        password_env: Some("SOC_NCSC_PASSWORD".into()),
        ca_cert: None,
        client_cert: None,
        client_key: None,
        timeout_secs: 30.0,
    };
    endpoint.validate(flag, "url")?;
    endpoint.client_options().map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// `soc run --ncsc-indicators URL`: polls the NCSC's indicator collection every minute into IOC
/// list files under `out_dir` (credentials as for `--ncsc-url`).
pub fn run_inbound(
    url: &str,
    out_dir: &Path,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let opts = env_endpoint(url, "--ncsc-indicators")?;
    let client = soc_forwarder::taxii::TaxiiClient::new(&opts)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let poller = soc_forwarder::inbound::Inbound::new(client, url.to_string(), out_dir.to_path_buf());
    Ok(tokio::spawn(soc_forwarder::inbound::run(poller, Duration::from_secs(60), stop)))
}

/// `soc run --ncsc-url URL`: the forwarder inside the all-in-one process. Credentials from
/// SOC_NCSC_USER / SOC_NCSC_PASSWORD; the outbox in the run's data dir; every incident of
/// severity low or more goes, automatically, with the default redaction.
pub fn run_forwarder(url: &str, data_dir: &Path, store: Arc<dyn soc_store::Store>) -> anyhow::Result<Arc<Forwarder>> {
    let mut opts = ForwarderOptions::new(url, data_dir.join("forwarder-outbox.sqlite"));
    opts.client = env_endpoint(url, "--ncsc-url")?;
    opts.policy.min_severity = soc_model::Level::Low;
    Ok(Arc::new(Forwarder::new(opts, Some(store))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/forwarder.toml");
        let f = load_forwarder(&p).unwrap();
        assert_eq!(f.group, "soc-forwarder");
        assert!(f.inbound.is_some());
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.toml");
        std::fs::write(
            &p,
            "[destination]\ncollection_url = \"https://n/api/collections/c/objects/\"\n[outbox]\npath = \"o\"\n[policy]\nmin_severity = \"urgent\"\n[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n",
        )
        .unwrap();
        let e = load_forwarder(&p).unwrap_err().to_string();
        assert!(e.contains("f.toml:6:"), "{e}");
        std::fs::write(
            &p,
            "[destination]\ncollection_url = \"https://u:secret@n/api/collections/c/objects/\"\n[outbox]\npath = \"o\"\n[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n",
        )
        .unwrap();
        let e = load_forwarder(&p).unwrap_err().to_string();
        assert!(e.contains("destination.collection_url") && !e.contains("secret"), "{e}");
    }
}
