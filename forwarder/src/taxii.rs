//! A TAXII 2.1 client: discovery, API root, collections, get/add objects, object versions
//! and status polling. HTTP Basic and client certificates; TLS 1.2 or later (rustls).
//!
//! Errors say whether retrying can help ([`TaxiiError::is_transient`]): connection failures,
//! timeouts, 408/425/429 and 5xx can; 400/401/403/404/406/413/415/422 cannot (the request or
//! the configuration must change), and carry the server's own message.
//!
//! Credentials never appear in errors, logs or `Debug` output ([`Secret`]).

use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The TAXII 2.1 media type, for `Accept` and `Content-Type`.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// A secret string: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// HTTP Basic credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// How to reach the server.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub credentials: Option<Credentials>,
    /// Extra CA certificates (PEM) to trust, besides the public roots.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM); the key is in `client_key` or in the same file.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Per-request timeout (default 30 s).
    pub timeout: Option<Duration>,
}

/// A failed TAXII request.
#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    #[error("{url}: HTTP {status}: {message}")]
    Http { url: String, status: u16, message: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: unexpected response: {reason}")]
    Decode { url: String, reason: String },
    #[error("TAXII client configuration: {0}")]
    Config(String),
}

impl TaxiiError {
    /// Whether the same request later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            TaxiiError::Http { status, .. } => matches!(status, 408 | 425 | 429) || *status >= 500,
            TaxiiError::Transport { .. } | TaxiiError::Decode { .. } => true,
            TaxiiError::Config(_) => false,
        }
    }
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            TaxiiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A collection as the server describes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Collection {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub can_read: bool,
    #[serde(default)]
    pub can_write: bool,
}

/// One object in a status resource.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct StatusDetail {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// A TAXII status resource.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    /// `pending` or `complete`.
    pub status: String,
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub success_count: u64,
    #[serde(default)]
    pub failure_count: u64,
    #[serde(default)]
    pub pending_count: u64,
    #[serde(default)]
    pub successes: Vec<StatusDetail>,
    #[serde(default)]
    pub failures: Vec<StatusDetail>,
    #[serde(default)]
    pub pendings: Vec<StatusDetail>,
}

impl Status {
    pub fn is_complete(&self) -> bool {
        self.status == "complete"
    }
}

/// One page of objects.
#[derive(Clone, Debug, Default)]
pub struct ObjectPage {
    pub objects: Vec<Value>,
    pub more: bool,
    pub next: Option<String>,
    /// `X-TAXII-Date-Added-Last`: use as `added_after` for the next poll.
    pub date_added_last: Option<String>,
}

/// The client.
#[derive(Clone)]
pub struct TaxiiClient {
    http: reqwest::Client,
    credentials: Option<Credentials>,
}

impl fmt::Debug for TaxiiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaxiiClient").field("credentials", &self.credentials).finish()
    }
}

/// Refuses URLs that carry credentials (they would end up in logs and records).
pub fn check_url(url: &str) -> Result<(), TaxiiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| TaxiiError::Config(format!("{url:?} is not an http(s) URL")))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(TaxiiError::Config(
            "the URL must not carry credentials; give them as username/password instead".into(),
        ));
    }
    if authority.is_empty() {
        return Err(TaxiiError::Config(format!("{url:?} has no host")));
    }
    Ok(())
}

/// The API root URL of a collection's objects URL (`.../api1/collections/ID/objects/`).
pub fn api_root_of(objects_url: &str) -> Result<String, TaxiiError> {
    let i = objects_url.rfind("/collections/").ok_or_else(|| {
        TaxiiError::Config(format!("{objects_url:?} is not a collection objects URL (.../collections/<id>/objects/)"))
    })?;
    Ok(format!("{}/", &objects_url[..i]))
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') { url.to_string() } else { format!("{url}/") }
}

/// The server's message from an error body (TAXII error message or text).
fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let title = v.get("title").and_then(Value::as_str).unwrap_or_default();
        let desc = v.get("description").and_then(Value::as_str).unwrap_or_default();
        let s = match (title.is_empty(), desc.is_empty()) {
            (false, false) => format!("{title}: {desc}"),
            (false, true) => title.to_string(),
            (true, false) => desc.to_string(),
            _ => String::new(),
        };
        if !s.is_empty() {
            return s;
        }
    }
    let t = body.trim();
    if t.is_empty() {
        return "(no message)".into();
    }
    t.chars().take(500).collect()
}

impl TaxiiClient {
    pub fn new(opts: &ClientOptions) -> Result<Self, TaxiiError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .timeout(opts.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = &opts.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| TaxiiError::Config(format!("ca_cert {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| TaxiiError::Config(format!("ca_cert {}: {e}", ca.display())))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(cert) = &opts.client_cert {
            let mut pem =
                std::fs::read(cert).map_err(|e| TaxiiError::Config(format!("client_cert {}: {e}", cert.display())))?;
            if let Some(key) = &opts.client_key {
                pem.push(b'\n');
                pem.extend(
                    std::fs::read(key).map_err(|e| TaxiiError::Config(format!("client_key {}: {e}", key.display())))?,
                );
            }
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| TaxiiError::Config(format!("client certificate {}: {e}", cert.display())))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| TaxiiError::Config(e.to_string()))?;
        Ok(TaxiiClient { http, credentials: opts.credentials.clone() })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url).header(reqwest::header::ACCEPT, MEDIA_TYPE);
        match &self.credentials {
            Some(c) => r.basic_auth(&c.username, Some(c.password.expose())),
            None => r,
        }
    }

    async fn send(
        &self,
        url: &str,
        r: reqwest::RequestBuilder,
    ) -> Result<(Value, reqwest::header::HeaderMap), TaxiiError> {
        let resp = r.send().await.map_err(|e| TaxiiError::Transport {
            url: url.to_string(),
            reason: if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                format!("request failed: {}", e.without_url())
            },
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(|e| TaxiiError::Transport {
            url: url.to_string(),
            reason: format!("reading the response: {}", e.without_url()),
        })?;
        if !status.is_success() {
            return Err(TaxiiError::Http {
                url: url.to_string(),
                status: status.as_u16(),
                message: server_message(&body),
            });
        }
        let v = serde_json::from_str(&body)
            .map_err(|e| TaxiiError::Decode { url: url.to_string(), reason: format!("not JSON: {e}") })?;
        Ok((v, headers))
    }

    async fn get(&self, url: &str) -> Result<(Value, reqwest::header::HeaderMap), TaxiiError> {
        self.send(url, self.request(reqwest::Method::GET, url)).await
    }

    /// The discovery resource (`/taxii2/`).
    pub async fn discovery(&self, url: &str) -> Result<Value, TaxiiError> {
        Ok(self.get(&with_slash(url)).await?.0)
    }

    /// An API root's information.
    pub async fn api_root(&self, api_root_url: &str) -> Result<Value, TaxiiError> {
        Ok(self.get(&with_slash(api_root_url)).await?.0)
    }

    /// The collections of an API root.
    pub async fn collections(&self, api_root_url: &str) -> Result<Vec<Collection>, TaxiiError> {
        let url = format!("{}collections/", with_slash(api_root_url));
        let (v, _) = self.get(&url).await?;
        let list = v.get("collections").cloned().unwrap_or(Value::Array(vec![]));
        serde_json::from_value(list).map_err(|e| TaxiiError::Decode { url, reason: e.to_string() })
    }

    /// Adds the objects of an envelope (or bundle) to a collection; returns the status.
    pub async fn add_objects(&self, objects_url: &str, envelope: &Value) -> Result<Status, TaxiiError> {
        let url = with_slash(objects_url);
        let body = serde_json::to_vec(envelope).map_err(|e| TaxiiError::Config(e.to_string()))?;
        let r = self.request(reqwest::Method::POST, &url).header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE).body(body);
        let (v, _) = self.send(&url, r).await?;
        serde_json::from_value(v).map_err(|e| TaxiiError::Decode { url, reason: format!("not a status resource: {e}") })
    }

    /// A status resource.
    pub async fn status(&self, api_root_url: &str, status_id: &str) -> Result<Status, TaxiiError> {
        let url = format!("{}status/{status_id}/", with_slash(api_root_url));
        let (v, _) = self.get(&url).await?;
        serde_json::from_value(v).map_err(|e| TaxiiError::Decode { url, reason: format!("not a status resource: {e}") })
    }

    /// Polls a status until it is complete, waiting 200 ms, doubling to 5 s, up to `max_wait`;
    /// returns the last status (possibly still pending).
    pub async fn wait_status(
        &self,
        api_root_url: &str,
        mut st: Status,
        max_wait: Duration,
    ) -> Result<Status, TaxiiError> {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        while !st.is_complete() && start.elapsed() < max_wait {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            st = self.status(api_root_url, &st.id).await?;
        }
        Ok(st)
    }

    /// One page of a collection's objects. `params` are TAXII filters (`match[type]`,
    /// `added_after`, `limit`, `next`).
    pub async fn get_objects(&self, objects_url: &str, params: &[(&str, &str)]) -> Result<ObjectPage, TaxiiError> {
        let url = with_slash(objects_url);
        let r = self.request(reqwest::Method::GET, &url).query(params);
        let (v, headers) = self.send(&url, r).await?;
        let objects = match v.get("objects") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![],
        };
        Ok(ObjectPage {
            objects,
            more: v.get("more").and_then(Value::as_bool).unwrap_or(false),
            next: v.get("next").and_then(Value::as_str).map(String::from),
            date_added_last: headers.get("X-TAXII-Date-Added-Last").and_then(|h| h.to_str().ok()).map(String::from),
        })
    }

    /// Every object matching the filters, following `next` pages.
    /// Every page carries a `limit` (100 unless given): some servers (medallion 3) fail a
    /// `next` request without one.
    pub async fn get_all_objects(&self, objects_url: &str, params: &[(&str, &str)]) -> Result<ObjectPage, TaxiiError> {
        let mut owned: Vec<(&str, &str)> = params.to_vec();
        if !owned.iter().any(|(k, _)| *k == "limit") {
            owned.push(("limit", "100"));
        }
        let params = owned.as_slice();
        let mut all = self.get_objects(objects_url, params).await?;
        let mut guard = 0;
        while all.more
            && let Some(next) = all.next.clone()
        {
            guard += 1;
            if guard > 100_000 {
                break;
            }
            let mut p: Vec<(&str, &str)> = params.to_vec();
            p.push(("next", &next));
            let page = self.get_objects(objects_url, &p).await?;
            all.objects.extend(page.objects);
            all.more = page.more;
            all.next = page.next;
            if page.date_added_last.is_some() {
                all.date_added_last = page.date_added_last;
            }
        }
        Ok(all)
    }

    /// The versions the collection holds of one object (empty when it holds none).
    pub async fn object_versions(&self, objects_url: &str, object_id: &str) -> Result<Vec<String>, TaxiiError> {
        let url = format!("{}{object_id}/versions/", with_slash(objects_url));
        match self.get(&url).await {
            Ok((v, _)) => Ok(v
                .get("versions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()),
            Err(TaxiiError::Http { status: 404, .. }) => Ok(vec![]),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Credentials { username: "soc".into(), password: Secret::new("hunter2") };
        let s = format!("{c:?} {}", c.password);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("***"));
        let client = TaxiiClient::new(&ClientOptions { credentials: Some(c), ..Default::default() }).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn urls_with_credentials_are_refused() {
        assert!(check_url("https://u:p@ncsc.example/api1/collections/x/objects/").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://ncsc.example/api1/collections/x/objects/").is_ok());
    }

    #[test]
    fn api_root_comes_from_the_objects_url() {
        assert_eq!(api_root_of("http://h:1/api1/collections/abc/objects/").unwrap(), "http://h:1/api1/");
        assert!(api_root_of("http://h:1/taxii2/").is_err());
    }

    #[test]
    fn transient_and_permanent_errors() {
        let e = |status| TaxiiError::Http { url: "u".into(), status, message: "m".into() };
        for s in [408, 429, 500, 502, 503] {
            assert!(e(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 415, 422] {
            assert!(!e(s).is_transient(), "{s}");
        }
        assert!(TaxiiError::Transport { url: "u".into(), reason: "r".into() }.is_transient());
    }

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(server_message(r#"{"title":"Too big","description":"limit 1 MB"}"#), "Too big: limit 1 MB");
        assert_eq!(server_message("plain"), "plain");
        assert_eq!(server_message(""), "(no message)");
    }
}
