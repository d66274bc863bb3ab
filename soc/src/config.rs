//! Configuration files of the separately deployed components (`soc sensor|collector|
//! correlator|dashboard --config FILE`). Each file has the component's own table plus the
//! shared `[kafka]`, `[store]` and `[metrics]` tables it needs. Unknown keys are errors; every
//! error names the file, line and key (see deploy/config/ for commented examples).

use serde::Deserialize;
use soc_bus::kafka::KafkaConfig;
use soc_model::config::{ConfigError, load_toml};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `[metrics]`: where the component serves `/metrics`, `/healthz` and `/readyz`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// `[store]`: ClickHouse (production) or SQLite (single machine).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    Clickhouse {
        /// HTTP interface, e.g. `http://127.0.0.1:8123`.
        url: String,
        #[serde(default = "default_database")]
        database: String,
        #[serde(default = "default_user")]
        user: String,
        /// Name of the environment variable holding the password (never the password itself).
        #[serde(default)]
        password_env: Option<String>,
    },
    Sqlite {
        path: PathBuf,
    },
}

fn default_database() -> String {
    "soc".into()
}
fn default_user() -> String {
    "default".into()
}

impl StoreConfig {
    pub async fn open(&self) -> anyhow::Result<std::sync::Arc<dyn soc_store::Store>> {
        Ok(match self {
            StoreConfig::Clickhouse { url, database, user, password_env } => {
                let password = match password_env {
                    Some(var) => std::env::var(var)
                        .map_err(|_| anyhow::anyhow!("store.password_env: environment variable {var} is not set"))?,
                    None => String::new(),
                };
                std::sync::Arc::new(
                    soc_store::clickhouse::ClickHouseStore::connect(url, database, user, &password).await?,
                )
            }
            StoreConfig::Sqlite { path } => std::sync::Arc::new(soc_store::sqlite::SqliteStore::open(path)?),
        })
    }
}

/// One capture interface and the segment its records belong to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub name: String,
    /// Defaults to `[sensor] segment`.
    #[serde(default)]
    pub segment: Option<String>,
}

/// `[sensor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub name: String,
    pub segment: String,
    #[serde(default)]
    pub interfaces: Vec<InterfaceConfig>,
    #[serde(default = "yes")]
    pub checksum_check: bool,
    /// Suricata rule files or directories (empty: no signature inspection).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Address and port variables for rules (HOME_NET, EXTERNAL_NET, HTTP_PORTS, ...).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// `[output]` of a sensor: an EVE file, Kafka, or both.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorOutput {
    #[serde(default)]
    pub eve: Option<PathBuf>,
    /// Publish to the `[kafka]` bus.
    #[serde(default)]
    pub kafka: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorFile {
    pub sensor: SensorSection,
    #[serde(default)]
    pub output: SensorOutput,
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorFile {
    pub collector: soc_collector::CollectorConfig,
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[correlator]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelatorSection {
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Sigma rule files or directories (empty: the project's built-in rules).
    #[serde(default)]
    pub sigma_rules: Vec<PathBuf>,
}

fn default_group() -> String {
    "soc-correlator".into()
}
fn default_batch() -> usize {
    5_000
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelatorFile {
    pub correlator: CorrelatorSection,
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[dashboard]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSection {
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardFile {
    pub dashboard: DashboardSection,
    pub store: StoreConfig,
}

fn semantic(path: &Path, message: String) -> ConfigError {
    ConfigError::Semantic { path: path.display().to_string(), message }
}

pub fn load_sensor(path: &Path) -> Result<SensorFile, ConfigError> {
    let f: SensorFile = load_toml(path)?;
    if f.sensor.name.trim().is_empty() {
        return Err(semantic(path, "sensor.name: must not be empty".into()));
    }
    if let Some(bad) =
        f.sensor.vars.keys().find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(semantic(path, format!("sensor.vars: {bad:?} is not a variable name (letters, digits, _)")));
    }
    if f.output.kafka && f.kafka.is_none() {
        return Err(semantic(path, "output.kafka = true needs a [kafka] table".into()));
    }
    if f.output.eve.is_none() && !f.output.kafka {
        return Err(semantic(path, "output: set eve = \"FILE\" and/or kafka = true, or records go nowhere".into()));
    }
    if let Some(k) = &f.kafka {
        k.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    }
    Ok(f)
}

pub fn load_collector(path: &Path) -> Result<CollectorFile, ConfigError> {
    let f: CollectorFile = load_toml(path)?;
    f.collector.validate(&path.display().to_string())?;
    f.kafka.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    Ok(f)
}

pub fn load_correlator(path: &Path) -> Result<CorrelatorFile, ConfigError> {
    let f: CorrelatorFile = load_toml(path)?;
    if !(1..=100_000).contains(&f.correlator.batch) {
        return Err(semantic(path, format!("correlator.batch: {} is out of range (1..=100000)", f.correlator.batch)));
    }
    f.kafka.validate().map_err(|e| semantic(path, format!("kafka: {e}")))?;
    Ok(f)
}

pub fn load_dashboard(path: &Path) -> Result<DashboardFile, ConfigError> {
    load_toml(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn example_configs_in_deploy_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let r = if name.starts_with("sensor") {
                load_sensor(&p).map(|_| ())
            } else if name.starts_with("collector") {
                load_collector(&p).map(|_| ())
            } else if name.starts_with("correlator") {
                load_correlator(&p).map(|_| ())
            } else if name.starts_with("dashboard") {
                load_dashboard(&p).map(|_| ())
            } else {
                continue;
            };
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 5, "expected the example configs, found {n}");
    }

    #[test]
    fn misspelled_key_names_file_line_and_key() {
        let f = write("[sensor]\nname = \"s\"\nsegmnt = \"cpnet\"\n");
        let e = load_sensor(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("segmnt"), "{e}");
    }

    #[test]
    fn sensor_without_output_is_rejected_with_the_reason() {
        let f = write("[sensor]\nname = \"s\"\nsegment = \"cpnet\"\n");
        let e = load_sensor(f.path()).unwrap_err().to_string();
        assert!(e.contains("output"), "{e}");
    }

    #[test]
    fn wrong_store_kind_is_rejected() {
        let f = write("[dashboard]\nlisten = \"127.0.0.1:8080\"\n[store]\nkind = \"postgres\"\n");
        let e = load_dashboard(f.path()).unwrap_err().to_string();
        assert!(e.contains(":4:") || e.contains(":3:"), "{e}");
    }
}
