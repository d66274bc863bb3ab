//! The forwarder's configuration tables (`[destination]`, `[policy]`, `[redaction]`,
//! `[outbox]`, `[identity]`, `[inbound]`), read with line-precise errors by the `soc` binary
//! (see deploy/config/forwarder.toml). Secrets are never in the file: it names the
//! environment variables that hold them.

use crate::outbox::Backoff;
use crate::stix::{BundleOptions, Tlp};
use crate::taxii::{ClientOptions, Credentials, Secret, check_url};
use serde::Deserialize;
use soc_model::config::ConfigError;
use std::path::PathBuf;
use std::time::Duration;

fn default_user_env() -> Option<String> {
    Some("SOC_NCSC_USER".into())
}
fn default_password_env() -> Option<String> {
    Some("SOC_NCSC_PASSWORD".into())
}
fn thirty() -> f64 {
    30.0
}

/// A TAXII endpoint and how to authenticate to it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The collection's objects URL: `https://host/api-root/collections/<id>/objects/`.
    pub collection_url: String,
    /// HTTP Basic user name (or `username_env`).
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the user name (default `SOC_NCSC_USER`; unset = no Basic auth).
    #[serde(default = "default_user_env")]
    pub username_env: Option<String>,
    /// Environment variable holding the password (default `SOC_NCSC_PASSWORD`).
    #[serde(default = "default_password_env")]
    pub password_env: Option<String>,
    /// Extra CA certificates (PEM) to trust.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), with its key in `client_key` or in the same file.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Per-request timeout.
    #[serde(default = "thirty")]
    pub timeout_secs: f64,
}

impl Endpoint {
    /// Checks what can be checked without the environment.
    pub fn validate(&self, file: &str, table: &str) -> Result<(), ConfigError> {
        let sem = |message: String| ConfigError::Semantic { path: file.to_string(), message };
        check_url(&self.collection_url).map_err(|e| sem(format!("{table}.collection_url: {e}")))?;
        crate::taxii::api_root_of(&self.collection_url).map_err(|e| sem(format!("{table}.collection_url: {e}")))?;
        for (key, p) in
            [("ca_cert", &self.ca_cert), ("client_cert", &self.client_cert), ("client_key", &self.client_key)]
        {
            if let Some(p) = p
                && !p.is_file()
            {
                return Err(sem(format!("{table}.{key}: {} is not a readable file", p.display())));
            }
        }
        if self.client_key.is_some() && self.client_cert.is_none() {
            return Err(sem(format!("{table}.client_key is set without client_cert")));
        }
        if !(self.timeout_secs > 0.0 && self.timeout_secs.is_finite()) {
            return Err(sem(format!("{table}.timeout_secs must be a positive number")));
        }
        Ok(())
    }

    /// Client options, with the credentials read from the environment.
    pub fn client_options(&self) -> Result<ClientOptions, String> {
        let user = match (&self.username, &self.username_env) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(var)) => std::env::var(var).ok().filter(|s| !s.is_empty()),
            (None, None) => None,
        };
        let credentials = match user {
            None => None,
            Some(username) => {
                let var = self.password_env.as_deref().ok_or("a user name is set but password_env is not")?;
                let password = std::env::var(var)
                    .map_err(|_| format!("environment variable {var} (the TAXII password) is not set"))?;
                Some(Credentials { username, password: Secret::new(password) })
            }
        };
        Ok(ClientOptions {
            credentials,
            ca_cert: self.ca_cert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            timeout: Some(Duration::from_secs_f64(self.timeout_secs)),
        })
    }
}

/// `[outbox]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The SQLite file (created if missing).
    pub path: PathBuf,
    #[serde(default = "two")]
    pub backoff_initial_secs: f64,
    #[serde(default = "six_hundred")]
    pub backoff_max_secs: f64,
    /// How long one send waits for the server's status to become complete before it polls
    /// again later.
    #[serde(default = "thirty")]
    pub status_wait_secs: f64,
}

fn two() -> f64 {
    2.0
}
fn six_hundred() -> f64 {
    600.0
}

impl OutboxConfig {
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_secs_f64(self.backoff_initial_secs.max(0.001)),
            max: Duration::from_secs_f64(self.backoff_max_secs.max(self.backoff_initial_secs).max(0.001)),
        }
    }
}

/// `[identity]`: who the bundles come from and their TLP.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub tlp: Tlp,
}

fn default_name() -> String {
    BundleOptions::default().identity_name
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { name: default_name(), tlp: Tlp::default() }
    }
}

impl IdentityConfig {
    pub fn bundle_options(&self) -> BundleOptions {
        BundleOptions { identity_name: self.name.clone(), tlp: self.tlp }
    }
}

/// `[inbound]`: indicators the NCSC publishes, loaded as IOC lists for the correlator.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// The collection to poll (`[inbound.source]`).
    pub source: Endpoint,
    /// Where the IOC list files go (`ip-ncsc.txt`, `cidr-ncsc.txt`, `domain-ncsc.txt`,
    /// `url-ncsc.txt`, `hash-ncsc.txt`); point the correlator's IOC lists there.
    pub out_dir: PathBuf,
    #[serde(default = "three_hundred")]
    pub interval_secs: f64,
}

fn three_hundred() -> f64 {
    300.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        destination: Endpoint,
        outbox: OutboxConfig,
        #[serde(default)]
        identity: IdentityConfig,
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = soc_model::config::from_toml_str::<File>(
            "f.toml",
            "[destination]\ncollection_url = \"https://x/api/collections/c/objects/\"\n[outbox]\npath = \"o\"\n[identity]\ntlp = \"purple\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("f.toml:6:"), "{e}");
        let e = soc_model::config::from_toml_str::<File>(
            "f.toml",
            "[destination]\ncollection_url = \"https://x/api/collections/c/objects/\"\npasword_env = \"X\"\n[outbox]\npath = \"o\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("f.toml:3:") && e.to_string().contains("pasword_env"), "{e}");
    }

    #[test]
    fn urls_with_credentials_or_without_a_collection_are_refused() {
        let mut ep: Endpoint =
            soc_model::config::from_toml_str("f", "collection_url = \"https://u:p@x/api/collections/c/objects/\"")
                .unwrap();
        assert!(ep.validate("f", "destination").unwrap_err().to_string().contains("credentials"));
        ep.collection_url = "https://x/taxii2/".into();
        assert!(ep.validate("f", "destination").is_err());
        ep.collection_url = "https://x/api/collections/c/objects/".into();
        ep.validate("f", "destination").unwrap();
    }

    #[test]
    fn a_missing_password_variable_is_an_error_naming_the_variable_only() {
        let ep = Endpoint {
            collection_url: "https://x/api/collections/c/objects/".into(),
            username: Some("soc".into()),
            username_env: None,
            password_env: Some("SOC_TEST_SURELY_UNSET_PASSWORD_VAR".into()),
            ca_cert: None,
            client_cert: None,
            client_key: None,
            timeout_secs: 30.0,
        };
        let e = ep.client_options().unwrap_err();
        assert!(e.contains("SOC_TEST_SURELY_UNSET_PASSWORD_VAR"), "{e}");
    }
}
