//! Local users (argon2 password hashes), sessions (an HttpOnly, SameSite=Strict cookie
//! holding a random token; only its SHA-256 is stored), CSRF tokens (one per session, checked
//! on every write), login throttling per user name, roles and data scopes.

pub mod users;

use crate::{ApiError, ApiState, DashboardError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use soc_model::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "soc_session";
/// Header carrying the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Roles: `admin` (everything), `analyst` (triage within its scope), `auditor` (read-only,
/// plus the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Analyst,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// The signed-in user of a request (put in the request's extensions by [`require_session`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// Data scope; `None`: every segment.
    pub segments: Option<Vec<String>>,
    pub csrf: String,
}

impl Principal {
    /// The segments a query may read: the requested ones within the scope (all of the scope
    /// when none are requested). `None` only for unscoped users asking for everything.
    pub fn scope(&self, requested: Option<Vec<String>>) -> Option<Vec<String>> {
        match (&self.segments, requested) {
            (None, r) => r,
            (Some(s), None) => Some(s.clone()),
            (Some(s), Some(r)) => Some(r.into_iter().filter(|x| s.contains(x)).collect()),
        }
    }

    /// May this user see a row of `segment`?
    pub fn sees(&self, segment: Option<&str>) -> bool {
        match &self.segments {
            None => true,
            Some(s) => segment.is_some_and(|g| s.iter().any(|x| x == g)),
        }
    }

    /// May this user see something spanning `segments` (at least one of them in scope)?
    pub fn sees_any(&self, segments: &[String]) -> bool {
        match &self.segments {
            None => true,
            Some(s) => segments.iter().any(|g| s.contains(g)),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin { Ok(()) } else { Err(ApiError::forbidden("admin role required")) }
    }

    fn view(&self) -> serde_json::Value {
        json!({
            "username": self.username,
            "role": self.role.as_str(),
            "segments": self.segments,
            "csrf_token": self.csrf,
        })
    }
}

/// A random token: 32 bytes, hex.
pub(crate) fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a PHC string; a malformed hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// Hashing off the async threads (argon2 is deliberately slow).
pub(crate) async fn hash_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() })?
        .map_err(|e| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("password hash: {e}") })
}

/// The per-address login limit is this many times the per-name limit.
pub const IP_FACTOR: u32 = 4;

/// Minimum password length for accounts.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Failed logins per user name; after `max` failures the name is refused until `lockout`
/// has passed since the last failure. A successful login clears the count.
#[derive(Debug)]
pub struct Throttle {
    max: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(max: u32, lockout: Duration) -> Self {
        Throttle { max: max.max(1), lockout, failures: Mutex::new(HashMap::new()) }
    }

    /// Seconds to wait when `key` is locked out.
    pub fn locked(&self, key: &str) -> Option<u64> {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(key) {
            Some((n, last)) if *n >= self.max => {
                let since = last.elapsed();
                if since >= self.lockout {
                    m.remove(key);
                    None
                } else {
                    Some((self.lockout - since).as_secs().max(1))
                }
            }
            _ => None,
        }
    }

    pub fn fail(&self, key: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound the memory an attacker can make us hold with random names.
        if m.len() > 100_000 {
            let lockout = self.lockout;
            m.retain(|_, (_, last)| last.elapsed() < lockout);
        }
        let e = m.entry(key.to_string()).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }

    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// What [`crate::ApiState::bootstrap_admin`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users exist already; nothing changed.
    Existing,
    /// `admin` was created with the given password.
    Created,
    /// `admin` was created with this generated password (show it once).
    Generated(String),
}

pub(crate) fn bootstrap_admin(st: &ApiState, password: Option<&str>) -> Result<AdminBootstrap, DashboardError> {
    if st.db.user_count()? > 0 {
        return Ok(AdminBootstrap::Existing);
    }
    let (pw, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p.to_string(), false),
        None => (random_token()[..24].to_string(), true),
    };
    let hash = hash_password(&pw).map_err(DashboardError::Bootstrap)?;
    let row = crate::state::UserRow { username: "admin".into(), hash, role: "admin".into(), segments: None };
    st.db.insert_user(&row, Timestamp::now().unix_micros())?;
    st.audit("system", "user.bootstrap", "admin", "", "ok");
    Ok(if generated { AdminBootstrap::Generated(pw) } else { AdminBootstrap::Created })
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then(|| v.to_string())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Resolves the session of a request to a [`Principal`].
fn principal_of(st: &ApiState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let Some(token) = session_token(headers) else { return Ok(None) };
    let th = token_hash(&token);
    let Some(s) = st.db.session(&th)? else { return Ok(None) };
    if s.expires_us <= Timestamp::now().unix_micros() {
        st.db.delete_session(&th)?;
        return Ok(None);
    }
    let Some(u) = st.db.user(&s.username)? else { return Ok(None) };
    let Some(role) = Role::parse(&u.role) else {
        tracing::warn!(user = %u.username, role = %u.role, "user with an unknown role refused");
        return Ok(None);
    };
    Ok(Some(Principal { username: u.username, role, segments: u.segments, csrf: s.csrf }))
}

/// Middleware of every protected route: 401 without a valid session; on writes, 403 without
/// the session's CSRF token, and 403 for auditors (except signing out).
pub async fn require_session(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    let who = match principal_of(&st, req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            metrics::counter!("soc_api_unauthenticated_total").increment(1);
            return ApiError::unauthorized().into_response();
        }
        Err(e) => return e.into_response(),
    };
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write {
        let path = req.uri().path().to_string();
        let ok = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| constant_time_eq(t.as_bytes(), who.csrf.as_bytes()));
        if !ok {
            st.audit(&who.username, "csrf.rejected", &path, req.method().as_str(), "denied");
            return ApiError::forbidden("missing or wrong X-CSRF-Token header").into_response();
        }
        // Auditors are read-only; signing out is not a change of data.
        if who.role == Role::Auditor && path != "/api/logout" {
            st.audit(&who.username, "write.denied", &path, req.method().as_str(), "denied");
            return ApiError::forbidden("the auditor role is read-only").into_response();
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

#[derive(Debug, Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// A hash to verify against when the user does not exist (same cost as a real check).
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `POST /api/login`.
pub async fn login(
    State(st): State<ApiState>,
    ext: axum::http::Extensions,
    b: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let b = crate::body(b)?;
    let key = b.username.to_lowercase();
    // The client address when the server runs with connect info (both binaries do).
    let ip = ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let locked = st.throttle.locked(&key).or_else(|| ip.as_deref().and_then(|i| st.ip_throttle.locked(i)));
    if let Some(wait) = locked {
        metrics::counter!("soc_api_login_throttled_total").increment(1);
        st.audit(&b.username, "login", &b.username, "throttled", "denied");
        let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": "too many failed logins; try again later"})))
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let user = st.db.user(&b.username)?;
    let phc = match &user {
        Some(u) => u.hash.clone(),
        None => DUMMY_HASH.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default()).clone(),
    };
    let pw = b.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc)).await.unwrap_or(false);
    let user = match user {
        Some(u) if ok => u,
        _ => {
            st.throttle.fail(&key);
            if let Some(i) = &ip {
                st.ip_throttle.fail(i);
            }
            metrics::counter!("soc_api_login_failures_total").increment(1);
            st.audit(&b.username, "login", &b.username, "bad credentials", "denied");
            return Err(ApiError { status: StatusCode::UNAUTHORIZED, message: "bad user name or password".into() });
        }
    };
    let Some(role) = Role::parse(&user.role) else {
        return Err(ApiError::forbidden("account has an unknown role"));
    };
    st.throttle.reset(&key);
    let token = random_token();
    let csrf = random_token();
    let now = Timestamp::now().unix_micros();
    let ttl = i64::try_from(st.options.session_ttl.as_micros()).unwrap_or(i64::MAX);
    st.db.create_session(&token_hash(&token), &user.username, &csrf, now, now.saturating_add(ttl))?;
    st.audit(&user.username, "login", &user.username, "", "ok");
    let who = Principal { username: user.username, role, segments: user.segments, csrf };
    let secure = if st.options.secure_cookie { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let mut r = Json(who.view()).into_response();
    let v = HeaderValue::from_str(&cookie)
        .map_err(|e| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() })?;
    r.headers_mut().insert(header::SET_COOKIE, v);
    Ok(r)
}

/// `POST /api/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(t) = session_token(&headers) {
        st.db.delete_session(&token_hash(&t))?;
    }
    st.audit(&who.username, "logout", &who.username, "", "ok");
    let mut r = Json(json!({"ok": true})).into_response();
    let secure = if st.options.secure_cookie { "; Secure" } else { "" };
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /api/me`.
pub async fn me(Extension(who): Extension<Principal>) -> Json<serde_json::Value> {
    Json(who.view())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn throttle_locks_after_max_failures_and_reset_clears() {
        let t = Throttle::new(3, Duration::from_secs(3600));
        for _ in 0..2 {
            t.fail("bob");
        }
        assert_eq!(t.locked("bob"), None);
        t.fail("bob");
        assert!(t.locked("bob").is_some());
        assert_eq!(t.locked("alice"), None);
        t.reset("bob");
        assert_eq!(t.locked("bob"), None);
        let zero = Throttle::new(1, Duration::ZERO);
        zero.fail("x");
        assert_eq!(zero.locked("x"), None, "an elapsed lockout frees the name");
    }

    #[test]
    fn scope_intersects_requested_segments() {
        let p = Principal {
            username: "a".into(),
            role: Role::Analyst,
            segments: Some(vec!["cpnet".into()]),
            csrf: String::new(),
        };
        assert_eq!(p.scope(None), Some(vec!["cpnet".to_string()]));
        assert_eq!(p.scope(Some(vec!["ministry".into()])), Some(vec![]));
        assert!(p.sees(Some("cpnet")));
        assert!(!p.sees(None));
        let admin = Principal { segments: None, role: Role::Admin, ..p };
        assert_eq!(admin.scope(None), None);
        assert!(admin.sees(None));
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; soc_session=tok; c=d"));
        assert_eq!(session_token(&h).as_deref(), Some("tok"));
    }
}
