//! The API over SQLite: sessions, CSRF, roles x scopes x endpoints, audit, throttling,
//! search, alert triage and incidents.

mod common;

use axum::http::{StatusCode, header};
use common::{PRINCIPALS, Session, fixture, fixture_on, fixture_with};
use serde_json::{Value, json};
use soc_dashboard::{AdminBootstrap, DashboardOptions};

fn role_of(user: &str) -> &'static str {
    PRINCIPALS.iter().find(|p| p.0 == user).map(|p| p.1).unwrap_or("none")
}
fn scoped(user: &str) -> bool {
    PRINCIPALS.iter().find(|p| p.0 == user).is_some_and(|p| p.2.is_some())
}

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// Everyone signed in.
    All,
    /// Everyone, but the row is outside the `cpnet` scope: scoped users get 404.
    Unscoped,
    /// Admins and auditors.
    AdminAuditor,
    /// Admins only.
    Admin,
    /// Admins and analysts (writes).
    Writers,
    /// Admins and unscoped analysts (writes on `ministry` rows).
    UnscopedWriters,
}

fn expected(a: Allowed, user: &str, ok: StatusCode) -> StatusCode {
    let role = role_of(user);
    let sc = scoped(user);
    let pass = match a {
        Allowed::All => true,
        Allowed::Unscoped => !sc,
        Allowed::AdminAuditor => role != "analyst",
        Allowed::Admin => role == "admin",
        Allowed::Writers => role != "auditor",
        Allowed::UnscopedWriters => role != "auditor" && !sc,
    };
    if pass {
        return ok;
    }
    match a {
        Allowed::Unscoped => StatusCode::NOT_FOUND,
        Allowed::UnscopedWriters if role != "auditor" => StatusCode::NOT_FOUND,
        _ => StatusCode::FORBIDDEN,
    }
}

#[tokio::test]
async fn every_endpoint_by_role_and_scope() {
    let f = fixture_with(stix_options()).await;
    check_matrix(&f).await;
}

/// A STIX renderer standing in for the forwarder's: a bundle naming the incident.
fn stix_options() -> DashboardOptions {
    let render = |i: &soc_model::Incident| json!({"type": "bundle", "objects": [{"type": "incident", "name": i.title, "x_id": i.incident_id}]});
    DashboardOptions { stix: Some(soc_dashboard::StixRenderer(std::sync::Arc::new(render))), ..Default::default() }
}

#[tokio::test]
async fn stix_bundle_of_an_incident_or_501_without_forwarding() {
    let f = fixture().await;
    let s = f.login("ana_cp").await;
    let uri = format!("/api/incidents/{}/stix", f.ids.cp_incident);
    let (st, _, body) = f.call("GET", &uri, Some(&s), None).await;
    assert_eq!(st, StatusCode::NOT_IMPLEMENTED, "{body}");
    let f = fixture_with(stix_options()).await;
    let s = f.login("ana_cp").await;
    let (st, _, body) = f.call("GET", &uri, Some(&s), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["objects"][0]["x_id"], json!(f.ids.cp_incident));
    let (st, _, _) = f.call("GET", &format!("/api/incidents/{}/stix", f.ids.min_incident), Some(&s), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "out of scope");
}

/// The same matrix over ClickHouse (`SOC_TEST_CLICKHOUSE`, e.g. `http://127.0.0.1:8123`), in a
/// database of its own that is dropped afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_role_and_scope_on_clickhouse() {
    let url = match std::env::var("SOC_TEST_CLICKHOUSE") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert_ne!(
                std::env::var("SOC_REQUIRE_SERVERS").as_deref(),
                Ok("1"),
                "SOC_TEST_CLICKHOUSE is not set but SOC_REQUIRE_SERVERS=1"
            );
            eprintln!("SKIPPED every_endpoint_by_role_and_scope_on_clickhouse: SOC_TEST_CLICKHOUSE not set");
            return;
        }
    };
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    let db = format!("soc_dash_{}_{}", std::process::id(), t % 1_000_000_000);
    let store = soc_store::ClickHouseStore::connect(&url, &db, "default", "").await.expect("connect");
    let shared: std::sync::Arc<dyn soc_store::Store> = std::sync::Arc::new(store.clone());
    let outcome = tokio::spawn(async move {
        let f = common::fixture_on(shared, stix_options()).await;
        check_matrix(&f).await;
    })
    .await;
    if let Err(e) = store.drop_database().await {
        eprintln!("could not drop database {db}: {e}");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

async fn check_matrix(f: &common::Fixture) {
    let ids = &f.ids;
    let reads: Vec<(String, Allowed, bool)> = vec![
        // (uri, who may, "an unscoped answer lists ministry rows")
        ("/api/me".into(), Allowed::All, false),
        ("/api/events?limit=100".into(), Allowed::All, true),
        ("/api/events?limit=100&segment=ministry".into(), Allowed::All, true),
        ("/api/stats?since=1d".into(), Allowed::All, true),
        ("/api/search?q=event_type:dns".into(), Allowed::All, true),
        ("/api/search?q=%7C%20count%20by%20segment".into(), Allowed::All, true),
        ("/api/alerts".into(), Allowed::All, true),
        ("/api/alerts?severity=high,medium&sort=severity".into(), Allowed::All, true),
        (format!("/api/alerts/{}", ids.cp_alert), Allowed::All, false),
        (format!("/api/alerts/{}/related?by=flow", ids.cp_alert), Allowed::All, false),
        (format!("/api/alerts/{}", ids.min_alert), Allowed::Unscoped, true),
        (format!("/api/alerts/{}/related?by=ip", ids.min_alert), Allowed::Unscoped, true),
        (format!("/api/alerts/{}/related?by=host", ids.min_detection), Allowed::Unscoped, true),
        ("/api/incidents".into(), Allowed::All, true),
        (format!("/api/incidents/{}", ids.cp_incident), Allowed::All, false),
        (format!("/api/incidents/{}", ids.min_incident), Allowed::Unscoped, true),
        (format!("/api/incidents/{}/stix", ids.cp_incident), Allowed::All, false),
        (format!("/api/incidents/{}/stix", ids.min_incident), Allowed::Unscoped, true),
        ("/api/forwarding".into(), Allowed::All, true),
        ("/api/sensors".into(), Allowed::All, true),
        ("/api/audit".into(), Allowed::AdminAuditor, false),
        ("/api/users".into(), Allowed::Admin, false),
    ];
    let mut sessions = Vec::new();
    for (user, _, _) in PRINCIPALS {
        sessions.push(f.login(user).await);
    }
    for s in &sessions {
        for (uri, allowed, lists_ministry) in &reads {
            let (st, _, body) = f.call("GET", uri, Some(s), None).await;
            let want = expected(*allowed, &s.user, StatusCode::OK);
            assert_eq!(st, want, "{} GET {uri}: {body}", s.user);
            if st != StatusCode::OK {
                continue;
            }
            let text = body.to_string();
            if scoped(&s.user) {
                assert!(!text.contains("ministry"), "{} GET {uri} leaks another segment: {text}", s.user);
            } else if *lists_ministry {
                assert!(text.contains("ministry"), "{} GET {uri} should show ministry rows: {text}", s.user);
            }
        }
    }
    // Writes, in an order where each succeeds once at most.
    let writes: Vec<(&str, String, Value, Allowed, StatusCode)> = vec![
        (
            "POST",
            format!("/api/alerts/{}/actions", ids.cp_alert),
            json!({"action": "acknowledge"}),
            Allowed::Writers,
            StatusCode::OK,
        ),
        (
            "POST",
            format!("/api/alerts/{}/actions", ids.min_alert),
            json!({"action": "acknowledge"}),
            Allowed::UnscopedWriters,
            StatusCode::OK,
        ),
        (
            "POST",
            format!("/api/incidents/{}/comments", ids.cp_incident),
            json!({"text": "looking"}),
            Allowed::Writers,
            StatusCode::OK,
        ),
        (
            "POST",
            format!("/api/incidents/{}/status", ids.min_incident),
            json!({"status": "investigating"}),
            Allowed::UnscopedWriters,
            StatusCode::OK,
        ),
        (
            "POST",
            format!("/api/incidents/{}/assign", ids.cp_incident),
            json!({"owner": "ana_cp"}),
            Allowed::Writers,
            StatusCode::OK,
        ),
        ("PATCH", "/api/users/ana_all".into(), json!({"segments": null}), Allowed::Admin, StatusCode::OK),
    ];
    for s in &sessions {
        for (method, uri, body, allowed, ok) in &writes {
            let (st, _, resp) = f.call(method, uri, Some(s), Some(body.clone())).await;
            assert_eq!(st, expected(*allowed, &s.user, *ok), "{} {method} {uri}: {resp}", s.user);
        }
        let (st, _, resp) = f
            .call(
                "POST",
                "/api/users",
                Some(s),
                Some(json!({"username": format!("new-{}", s.user), "password": "long-enough-pw", "role": "analyst", "segments": ["cpnet"]})),
            )
            .await;
        assert_eq!(st, expected(Allowed::Admin, &s.user, StatusCode::CREATED), "{} POST /api/users: {resp}", s.user);
    }
    // Deletion: refused for everyone but admins.
    for s in sessions.iter().rev() {
        let (st, _, resp) = f.call("DELETE", "/api/users/new-admin", Some(s), None).await;
        assert_eq!(st, expected(Allowed::Admin, &s.user, StatusCode::OK), "{} DELETE: {resp}", s.user);
    }
    // The incident changes were written as new versions with history.
    let inc = f.store.get_incident(&ids.cp_incident).await.expect("get").expect("incident");
    assert_eq!(inc.owner.as_deref(), Some("ana_cp"));
    assert!(inc.history.iter().any(|h| h.action == "comment" && h.detail.as_deref() == Some("looking")));
    assert!(inc.version > 1);
}

#[tokio::test]
async fn without_a_session_every_data_endpoint_answers_401() {
    let f = fixture().await;
    let mut checked = 0;
    for (method, path, _, _, _) in soc_dashboard::openapi::ROUTES {
        let open = matches!(*path, "/api/login" | "/api/openapi.json" | "/healthz" | "/readyz" | "/metrics");
        let uri = path.replace("{id}", &f.ids.cp_alert).replace("{name}", "ana_cp");
        let (st, _, body) = f.call(&method.to_uppercase(), &uri, None, Some(json!({}))).await;
        if open {
            assert_ne!(st, StatusCode::UNAUTHORIZED, "{method} {uri} must stay open");
            assert_ne!(st, StatusCode::NOT_FOUND, "{method} {uri} must exist");
        } else {
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} protected routes");
    // A forged or expired cookie is no session either.
    let fake = Session { user: "x".into(), cookie: "soc_session=deadbeef".into(), csrf: "x".into() };
    assert_eq!(f.call("GET", "/api/alerts", Some(&fake), None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn writes_need_the_sessions_csrf_token() {
    let f = fixture().await;
    let admin = f.login("admin").await;
    let other = f.login("ana_all").await;
    for (method, path, _, _, body) in soc_dashboard::openapi::ROUTES {
        if *method == "get" || *path == "/api/login" {
            continue;
        }
        let uri = path.replace("{id}", &f.ids.cp_incident).replace("{name}", "ana_cp");
        let m = method.to_uppercase();
        let b = body.map(|_| json!({}));
        let (st, _, resp) = f.call_csrf(&m, &uri, Some(&admin), b.clone(), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {uri} without token: {resp}");
        let (st, _, _) = f.call_csrf(&m, &uri, Some(&admin), b.clone(), Some(other.csrf.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {uri} with another session's token");
    }
    // With the right token the same session may write.
    let (st, _, resp) = f
        .call(
            "POST",
            &format!("/api/incidents/{}/comments", f.ids.cp_incident),
            Some(&admin),
            Some(json!({"text": "ok"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_logout_ends_the_session() {
    let f = fixture_with(DashboardOptions { secure_cookie: true, ..Default::default() }).await;
    let (st, h, body) = f.try_login("ana_cp", &common::password("ana_cp")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["username"], "ana_cp");
    assert_eq!(body["role"], "analyst");
    assert_eq!(body["segments"], json!(["cpnet"]));
    let cookie = h.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("cookie");
    for attr in ["soc_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_some());
    let s = f.login("ana_cp").await;
    let (st, h, me) = f.call("GET", "/api/me", Some(&s), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["csrf_token"], json!(s.csrf));
    assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).and_then(|v| v.to_str().ok()), Some("nosniff"));
    assert_eq!(h.get(header::X_FRAME_OPTIONS).and_then(|v| v.to_str().ok()), Some("DENY"));
    assert!(h.get(header::CONTENT_SECURITY_POLICY).is_some());
    assert_eq!(h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    let (st, _, _) = f.call("POST", "/api/logout", Some(&s), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(f.call("GET", "/api/me", Some(&s), None).await.0, StatusCode::UNAUTHORIZED);
    let aud = f.login("aud_all").await;
    assert_eq!(f.call("POST", "/api/logout", Some(&aud), None).await.0, StatusCode::OK, "auditors may sign out");
    assert_eq!(f.call("GET", "/api/me", Some(&aud), None).await.0, StatusCode::UNAUTHORIZED);
    let (st, _, body) = f.try_login("ana_cp", "wrong password").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
    let (st, _, _) = f.try_login("nobody", "whatever-password").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_user() {
    let f = fixture_with(DashboardOptions { max_login_failures: 3, ..Default::default() }).await;
    for _ in 0..3 {
        assert_eq!(f.try_login("ana_all", "bad").await.0, StatusCode::UNAUTHORIZED);
    }
    let (st, h, _) = f.try_login("ana_all", &common::password("ana_all")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(h.get(header::RETRY_AFTER).is_some());
    assert_eq!(f.try_login("ana_cp", &common::password("ana_cp")).await.0, StatusCode::OK, "other users unaffected");
}

#[tokio::test]
async fn failed_logins_from_one_address_are_throttled_across_user_names() {
    use tower::ServiceExt;
    let f = fixture_with(DashboardOptions { max_login_failures: 1, ..Default::default() }).await;
    let login = |user: &str, pw: &str, from: [u8; 4]| {
        let mut req = axum::http::Request::post("/api/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(json!({"username": user, "password": pw}).to_string()))
            .expect("request");
        req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((from, 40000))));
        let app = f.app.clone();
        async move { app.oneshot(req).await.expect("response").status() }
    };
    let attacker = [192, 0, 2, 66];
    // Four names (the per-address limit is four times the per-name limit of one).
    for n in 0..4 {
        assert_eq!(login(&format!("guess{n}"), "x", attacker).await, StatusCode::UNAUTHORIZED);
    }
    let right = common::password("ana_all");
    assert_eq!(login("ana_all", &right, attacker).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login("ana_all", &right, [192, 0, 2, 7]).await, StatusCode::OK, "other addresses unaffected");
}

#[tokio::test]
async fn every_action_lands_in_the_append_only_audit_log() {
    let f = fixture().await;
    let ana = f.login("ana_cp").await;
    let (st, _, _) = f
        .call(
            "POST",
            &format!("/api/alerts/{}/actions", f.ids.cp_alert),
            Some(&ana),
            Some(json!({"action": "acknowledge", "comment": "seen"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let _ = f.try_login("ana_cp", "wrong").await;
    let aud = f.login("aud_all").await;
    let (st, _, _) = f
        .call("POST", &format!("/api/incidents/{}/comments", f.ids.cp_incident), Some(&aud), Some(json!({"text": "x"})))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, log) = f.call("GET", "/api/audit?per_page=1000", Some(&aud), None).await;
    assert_eq!(st, StatusCode::OK);
    let items = log["items"].as_array().expect("items");
    let has = |actor: &str, action: &str, outcome: &str| {
        items.iter().any(|e| e["actor"] == actor && e["action"] == action && e["outcome"] == outcome)
    };
    assert!(has("system", "user.bootstrap", "ok"));
    assert!(has("admin", "user.create", "ok"));
    assert!(has("ana_cp", "alert.acknowledge", "ok"));
    assert!(has("ana_cp", "login", "denied"));
    assert!(has("aud_all", "write.denied", "denied"));
    assert_eq!(log["total"].as_u64(), Some(items.len() as u64));
    assert_eq!(f.state.db.verify_audit_chain().expect("verify"), None);
    assert!(f.state.db.execute_raw("DELETE FROM audit").is_err(), "no deletes");
    assert!(f.state.db.execute_raw("UPDATE audit SET outcome = 'ok'").is_err(), "no updates");
}

#[tokio::test]
async fn search_language_results_counts_and_syntax_errors() {
    let f = fixture().await;
    let s = f.login("ana_all").await;
    let q = "src_ip:10.1.0.5 AND event_type:dns AND dns.rrname:*.example.org";
    let (st, _, body) = f.call("GET", &format!("/api/search?q={}", enc(q)), Some(&s), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["query"], q);
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["dns"]["queries"][0]["rrname"], "c2.example.org");
    let (_, _, body) =
        f.call("GET", &format!("/api/search?q={}", enc("event_type:dns | count by segment")), Some(&s), None).await;
    assert_eq!(body["counts"], json!([{"key": "cpnet", "count": 2}, {"key": "ministry", "count": 1}]));
    let (_, _, body) =
        f.call("GET", &format!("/api/search?q={}", enc("NOT segment:cpnet AND event_type:dns")), Some(&s), None).await;
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    let (st, _, body) =
        f.call("GET", &format!("/api/search?q={}", enc("src_ip:10.1.0.5 AND (event_type:dns")), Some(&s), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["position"], 20, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("unclosed")), "{body}");
    let (st, _, body) = f.call("GET", &format!("/api/search?q={}", enc("dest_port>abc")), Some(&s), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    // A time range outside the data finds nothing.
    let (_, _, body) = f
        .call(
            "GET",
            "/api/search?q=event_type:dns&since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z",
            Some(&s),
            None,
        )
        .await;
    assert_eq!(body["events"], json!([]));
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn alert_queue_filters_sorts_pages_and_triage_actions() {
    let f = fixture().await;
    let s = f.login("ana_all").await;
    let (_, _, all) = f.call("GET", "/api/alerts", Some(&s), None).await;
    assert_eq!(all["total"], 4, "{all}");
    let items = all["items"].as_array().expect("items");
    assert!(items.windows(2).all(|w| w[0]["timestamp"].as_str() >= w[1]["timestamp"].as_str()), "newest first");
    assert!(items.iter().all(|i| i["status"] == "new"));
    let det = items.iter().find(|i| i["id"] == json!(f.ids.min_detection)).expect("detection listed");
    assert_eq!(det["engine"], "sigma");
    assert_eq!(det["severity"], "high");
    let (_, _, page) = f.call("GET", "/api/alerts?per_page=1&page=2", Some(&s), None).await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"][0]["id"], items[1]["id"]);
    let (_, _, med) = f.call("GET", "/api/alerts?severity=medium", Some(&s), None).await;
    assert_eq!(med["total"], 1);
    assert_eq!(med["items"][0]["id"], json!(f.ids.min_alert));
    let (_, _, rule) = f.call("GET", "/api/alerts?rule=powershell", Some(&s), None).await;
    assert_eq!(rule["total"], 1);
    let (_, _, sorted) = f.call("GET", "/api/alerts?sort=severity&order=asc", Some(&s), None).await;
    assert_eq!(sorted["items"][0]["severity"], "medium");
    assert_eq!(f.call("GET", "/api/alerts?sort=color", Some(&s), None).await.0, StatusCode::BAD_REQUEST);
    let (_, _, ipf) = f.call("GET", "/api/alerts?ip=10.1.0.6", Some(&s), None).await;
    assert_eq!(ipf["total"], 1);

    let act = |id: &str| format!("/api/alerts/{id}/actions");
    let (st, _, _) = f.call("POST", &act(&f.ids.cp_alert), Some(&s), Some(json!({"action": "close"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "close needs a verdict");
    let (st, _, a) =
        f.call("POST", &act(&f.ids.cp_alert), Some(&s), Some(json!({"action": "assign", "assignee": "ana_cp"}))).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["assignee"], "ana_cp");
    let (st, _, a) = f.call("POST", &act(&f.ids.cp_alert), Some(&s), Some(json!({"action": "escalate"}))).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let inc_id = a["incident_id"].as_str().expect("incident id").to_string();
    let (st, _, inc) = f.call("GET", &format!("/api/incidents/{inc_id}"), Some(&s), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(inc["incident"]["alert_ids"], json!([f.ids.cp_alert]));
    assert_eq!(inc["incident"]["segments"], json!(["cpnet"]));
    assert_eq!(inc["forwarding"], json!([]));
    // Escalating a second alert into the same incident.
    let (_, _, b) = f
        .call(
            "POST",
            &act(&f.ids.cp_alert_same_rule),
            Some(&s),
            Some(json!({"action": "escalate", "incident_id": inc_id})),
        )
        .await;
    assert_eq!(b["incident_id"], json!(inc_id));
    let stored = f.store.get_incident(&inc_id).await.expect("get").expect("stored");
    assert_eq!(stored.alert_ids.len(), 2);
    assert_eq!(stored.version, 2);
    let (st, _, a) = f
        .call("POST", &act(&f.ids.cp_alert), Some(&s), Some(json!({"action": "close", "verdict": "true_positive"})))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!((a["status"].as_str(), a["verdict"].as_str()), (Some("closed"), Some("true_positive")));
    let (_, _, closed) = f.call("GET", "/api/alerts?status=closed", Some(&s), None).await;
    assert_eq!(closed["total"], 1);
    // Suppressing the ministry alert marks it (and others of its rule in its segment).
    let (_, _, a) = f.call("POST", &act(&f.ids.min_alert), Some(&s), Some(json!({"action": "suppress"}))).await;
    assert_eq!(a["status"], "suppressed");
    let (_, _, sup) = f.call("GET", "/api/alerts?status=suppressed", Some(&s), None).await;
    assert_eq!(sup["total"], 1);
    let (_, _, newq) = f.call("GET", "/api/alerts?status=new", Some(&s), None).await;
    assert_eq!(newq["total"], 1, "{newq}");
    let (st, _, _) = f.call("POST", &act(&f.ids.cp_alert), Some(&s), Some(json!({"action": "explode"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(f.call("GET", "/api/alerts/no-such-id", Some(&s), None).await.0, StatusCode::NOT_FOUND);

    // Detail and pivots.
    let (_, _, d) = f.call("GET", &format!("/api/alerts/{}", f.ids.cp_alert), Some(&s), None).await;
    assert_eq!(d["event"]["alert"]["signature_id"], 2_000_001);
    let (_, _, rel) = f.call("GET", &format!("/api/alerts/{}/related?by=flow", f.ids.cp_alert), Some(&s), None).await;
    let types: Vec<_> = rel["events"].as_array().expect("events").iter().map(|e| e["event_type"].clone()).collect();
    assert_eq!(types, vec![json!("alert"), json!("flow")], "{rel}");
    let (_, _, rel) = f.call("GET", &format!("/api/alerts/{}/related?by=ip", f.ids.cp_alert), Some(&s), None).await;
    assert_eq!(rel["events"].as_array().map(Vec::len), Some(4), "alert, flow and two dns records: {rel}");
}

#[tokio::test]
async fn triage_state_is_the_store_rows_and_outlives_the_dashboard() {
    let f = fixture().await;
    let s = f.login("ana_all").await;
    let act = format!("/api/alerts/{}/actions", f.ids.cp_alert);
    let (st, _, a) = f.call("POST", &act, Some(&s), Some(json!({"action": "assign", "assignee": "ana_cp"}))).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    // The store's alert row carries the new state (a new version of the row).
    let q = soc_store::AlertQuery { statuses: Some(vec!["acknowledged".into()]), ..Default::default() };
    let page = f.store.query_alerts(&q).await.expect("query alerts");
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].id, f.ids.cp_alert);
    assert_eq!(page.items[0].state.owner.as_deref(), Some("ana_cp"));
    assert!(page.items[0].version >= 2, "version {}", page.items[0].version);
    // Another dashboard (its own empty state database) over the same store sees the same
    // state (its fixture adds four more alerts).
    let g = fixture_on(f.store.clone(), DashboardOptions::default()).await;
    let s2 = g.login("ana_all").await;
    let (_, _, acked) = g.call("GET", "/api/alerts?status=acknowledged", Some(&s2), None).await;
    assert_eq!(acked["total"], 1, "{acked}");
    assert_eq!(acked["items"][0]["assignee"], "ana_cp");
    let (_, _, all) = g.call("GET", "/api/alerts", Some(&s2), None).await;
    assert_eq!(all["total"], 8, "{all}");
    let deep = format!("/api/alerts?per_page=1000&page={}", soc_dashboard::alerts::MAX_DEPTH / 1000 + 1);
    assert_eq!(g.call("GET", &deep, Some(&s2), None).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn incidents_list_filters_and_status_changes() {
    let f = fixture().await;
    let s = f.login("admin").await;
    let (_, _, all) = f.call("GET", "/api/incidents", Some(&s), None).await;
    assert_eq!(all["total"], 2);
    let (_, _, cp) = f.call("GET", "/api/incidents?segment=cpnet", Some(&s), None).await;
    assert_eq!(cp["total"], 1);
    let uri = format!("/api/incidents/{}/status", f.ids.cp_incident);
    let (st, _, _) = f.call("POST", &uri, Some(&s), Some(json!({"status": "bogus"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, inc) = f.call("POST", &uri, Some(&s), Some(json!({"status": "resolved", "comment": "fixed"}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(inc["status"], "resolved");
    let (_, _, res) = f.call("GET", "/api/incidents?status=resolved", Some(&s), None).await;
    assert_eq!(res["total"], 1);
    let (_, _, d) = f.call("GET", &format!("/api/incidents/{}", f.ids.cp_incident), Some(&s), None).await;
    assert_eq!(d["forwarding"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["forwarding"][0]["forwarding"]["state"], "confirmed");
    let (st, _, _) = f
        .call(
            "POST",
            &format!("/api/incidents/{}/assign", f.ids.cp_incident),
            Some(&s),
            Some(json!({"owner": "ghost"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "owners are users");
    let (_, _, fw) = f.call("GET", "/api/forwarding", Some(&s), None).await;
    assert_eq!(fw["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn stats_sensors_and_openapi() {
    let f = fixture().await;
    let s = f.login("ana_cp").await;
    let (_, _, st) = f.call("GET", "/api/stats?since=1d", Some(&s), None).await;
    assert_eq!(st["events_by_segment"], json!([{"key": "cpnet", "count": 5}]), "{st}");
    assert_eq!(st["top_rules"], json!([{"key": "ET TEST cpnet beacon", "count": 2}]));
    let total: u64 =
        st["alerts_over_time"].as_array().expect("series").iter().filter_map(|b| b["count"].as_u64()).sum();
    assert_eq!(total, 2);
    assert_eq!(st["countries"], json!([]));
    assert_eq!(st["top_talkers"][0]["key"], "10.1.0.5");
    let (_, _, se) = f.call("GET", "/api/sensors", Some(&s), None).await;
    let items = se["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{se}");
    assert_eq!(items[0]["name"], "sensor-cpnet");
    assert_eq!(items[0]["records"], 5);
    assert_eq!(items[0]["metrics"]["soc_sensor_packets_total{sensor=\"sensor-cpnet\"}"], 12.0);

    let (code, _, doc) = f.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (method, path, _, _, _) in soc_dashboard::openapi::ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
    }
}

#[tokio::test]
async fn admin_bootstrap_generates_a_password_once() {
    let store: std::sync::Arc<dyn soc_store::Store> =
        std::sync::Arc::new(soc_store::SqliteStore::open_in_memory().expect("sqlite"));
    store.migrate().await.expect("migrate");
    let dir = tempfile::tempdir().expect("dir");
    let opts = DashboardOptions { state_db: Some(dir.path().join("state.sqlite")), ..Default::default() };
    let st =
        soc_dashboard::ApiState::new(store.clone(), std::sync::Arc::new(String::new), opts.clone()).expect("state");
    let AdminBootstrap::Generated(pw) = st.bootstrap_admin(None).expect("bootstrap") else {
        panic!("a password must be generated");
    };
    assert!(pw.len() >= 16);
    assert_eq!(st.bootstrap_admin(Some("other-password")).expect("again"), AdminBootstrap::Existing);
    drop(st);
    // The account survives a restart (state on disk) and the password works.
    let st = soc_dashboard::ApiState::new(store, std::sync::Arc::new(String::new), opts).expect("reopen");
    assert_eq!(st.bootstrap_admin(None).expect("again"), AdminBootstrap::Existing);
    let app = soc_dashboard::router(st);
    use tower::ServiceExt;
    let req = axum::http::Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(json!({"username": "admin", "password": pw}).to_string()))
        .expect("req");
    assert_eq!(app.oneshot(req).await.expect("resp").status(), StatusCode::OK);
}

#[tokio::test]
async fn users_are_validated_and_the_last_admin_stays() {
    let f = fixture().await;
    let s = f.login("admin").await;
    let post = |b: Value| f.call("POST", "/api/users", Some(&s), Some(b));
    assert_eq!(post(json!({"username": "x", "password": "short", "role": "analyst"})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(json!({"username": "x", "password": "long-enough", "role": "root"})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(json!({"username": "bad name", "password": "long-enough", "role": "analyst"})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(json!({"username": "ana_cp", "password": "long-enough", "role": "analyst"})).await.0,
        StatusCode::CONFLICT
    );
    let (_, _, list) = f.call("GET", "/api/users", Some(&s), None).await;
    let text = list.to_string();
    assert!(!text.contains("argon2"), "hashes never leave the server: {text}");
    assert_eq!(f.call("DELETE", "/api/users/admin", Some(&s), None).await.0, StatusCode::CONFLICT);
    assert_eq!(
        f.call("PATCH", "/api/users/admin", Some(&s), Some(json!({"role": "analyst"}))).await.0,
        StatusCode::CONFLICT
    );
    // A password change ends the user's sessions; the new password works.
    let ana = f.login("ana_cp").await;
    let (st, _, _) = f.call("PATCH", "/api/users/ana_cp", Some(&s), Some(json!({"password": "a-new-password"}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(f.call("GET", "/api/me", Some(&ana), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(f.try_login("ana_cp", "a-new-password").await.0, StatusCode::OK);
    // A scope change applies to the next request.
    let (st, _, _) = f.call("PATCH", "/api/users/ana_all", Some(&s), Some(json!({"segments": ["ministry"]}))).await;
    assert_eq!(st, StatusCode::OK);
    let all = f.login("ana_all").await;
    let (_, _, ev) = f.call("GET", "/api/events?limit=100", Some(&all), None).await;
    assert!(!ev.to_string().contains("cpnet"), "{ev}");
}
