//! Shared fixture of the API tests: a store with records of two segments (`cpnet`,
//! `ministry`), two incidents with forwarding records, and one account per role and scope.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use soc_dashboard::{ApiState, DashboardOptions};
use soc_model::{
    Alert, Detection, Dns, DnsQuery, Event, EventType, ForwardState, Forwarding, Incident, IncidentStatus, Level,
    Timestamp,
};
use soc_store::{SqliteStore, Store};
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The accounts: name, role, scope.
pub const PRINCIPALS: &[(&str, &str, Option<&[&str]>)] = &[
    ("admin", "admin", None),
    ("ana_all", "analyst", None),
    ("ana_cp", "analyst", Some(&["cpnet"])),
    ("aud_all", "auditor", None),
    ("aud_cp", "auditor", Some(&["cpnet"])),
];

pub fn password(user: &str) -> String {
    if user == "admin" { ADMIN_PASSWORD.to_string() } else { format!("password-of-{user}") }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub cookie: String,
    pub csrf: String,
}

pub struct Ids {
    pub cp_alert: String,
    pub cp_alert_same_rule: String,
    pub min_alert: String,
    pub min_detection: String,
    pub cp_incident: String,
    pub min_incident: String,
}

pub struct Fixture {
    pub app: Router,
    pub state: ApiState,
    pub ids: Ids,
    pub store: Arc<dyn Store>,
}

fn ev(ty: EventType, ago_secs: i64, segment: &str, sensor: &str) -> Event {
    let mut e = Event::new(ty, Timestamp::now().add_micros(-ago_secs * 1_000_000));
    e.segment = Some(segment.into());
    e.sensor = Some(sensor.into());
    e
}

fn alert(ago: i64, segment: &str, sid: u64, sig: &str, sev: u8, src: &str, flow: u64) -> Event {
    let mut e = ev(EventType::Alert, ago, segment, &format!("sensor-{segment}"));
    e.src_ip = Some(src.into());
    e.src_port = Some(40_000);
    e.dest_ip = Some("203.0.113.9".into());
    e.dest_port = Some(443);
    e.proto = Some("TCP".into());
    e.flow_id = Some(flow);
    e.alert = Some(Alert {
        signature_id: Some(sid),
        signature: Some(sig.into()),
        severity: Some(sev),
        category: Some("Test".into()),
        ..Default::default()
    });
    e.ensure_id();
    e
}

fn incident(id: &str, segment: &str, alert_id: &str) -> Incident {
    let now = Timestamp::now();
    Incident {
        incident_id: id.into(),
        version: 1,
        title: format!("incident in {segment}"),
        severity: Level::High,
        status: IncidentStatus::New,
        segments: vec![segment.into()],
        alert_ids: vec![alert_id.into()],
        alert_count: 1,
        first_seen: Some(now.add_micros(-600_000_000)),
        last_seen: Some(now.add_micros(-60_000_000)),
        updated: Some(now),
        ..Default::default()
    }
}

fn forwarding(inc: &str, segment: &str) -> Event {
    let mut e = ev(EventType::Forwarding, 30, segment, "forwarder");
    e.forwarding = Some(Forwarding {
        incident_id: inc.into(),
        incident_version: 1,
        state: ForwardState::Confirmed,
        destination: "https://taxii.example.invalid/collections/x/".into(),
        attempt: 1,
        ..Default::default()
    });
    e.ensure_id();
    e
}

/// Fills `store` with the fixture's records.
pub async fn seed(store: &dyn Store) -> Ids {
    store.migrate().await.expect("migrate");
    let cp_alert = alert(600, "cpnet", 2_000_001, "ET TEST cpnet beacon", 1, "10.1.0.5", 1001);
    let cp_alert2 = alert(500, "cpnet", 2_000_001, "ET TEST cpnet beacon", 1, "10.1.0.6", 1003);
    let min_alert = alert(400, "ministry", 2_000_002, "ET TEST ministry scan", 2, "10.2.0.7", 1002);
    let mut det = ev(EventType::Detection, 300, "ministry", "collector-ministry");
    det.host = Some("pc-ministry".into());
    det.detection = Some(Detection {
        engine: "sigma".into(),
        rule_id: "r-ps-1".into(),
        rule_title: "Suspicious PowerShell".into(),
        level: Level::High,
        ..Default::default()
    });
    det.ensure_id();
    let mut flow = ev(EventType::Flow, 590, "cpnet", "sensor-cpnet");
    flow.flow_id = Some(1001);
    flow.src_ip = Some("10.1.0.5".into());
    flow.ensure_id();
    let dns = |ago: i64, segment: &str, src: &str, name: &str| {
        let mut e = ev(EventType::Dns, ago, segment, &format!("sensor-{segment}"));
        e.src_ip = Some(src.into());
        e.dest_ip = Some("10.0.0.53".into());
        e.dns = Some(Dns {
            queries: vec![DnsQuery { rrname: Some(name.into()), rrtype: Some("A".into()), ..Default::default() }],
            ..Default::default()
        });
        e.ensure_id();
        e
    };
    let events = vec![
        cp_alert.clone(),
        cp_alert2.clone(),
        min_alert.clone(),
        det.clone(),
        flow,
        dns(200, "cpnet", "10.1.0.5", "c2.example.org"),
        dns(190, "cpnet", "10.1.0.5", "example.org"),
        dns(180, "ministry", "10.2.0.7", "www.ministry.example"),
    ];
    store.insert_events(&events).await.expect("insert events");
    let id = |e: &Event| e.id.clone().expect("id");
    let ids = Ids {
        cp_alert: id(&cp_alert),
        cp_alert_same_rule: id(&cp_alert2),
        min_alert: id(&min_alert),
        min_detection: id(&det),
        cp_incident: "INC-cpnet-1".into(),
        min_incident: "INC-ministry-1".into(),
    };
    store
        .upsert_incidents(&[
            incident(&ids.cp_incident, "cpnet", &ids.cp_alert),
            incident(&ids.min_incident, "ministry", &ids.min_alert),
        ])
        .await
        .expect("incidents");
    store
        .insert_forwarding(&[forwarding(&ids.cp_incident, "cpnet"), forwarding(&ids.min_incident, "ministry")])
        .await
        .expect("forwarding");
    ids
}

/// A fixture on SQLite in memory, with the admin bootstrapped and the other accounts created.
pub async fn fixture_with(options: DashboardOptions) -> Fixture {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("sqlite"));
    fixture_on(store, options).await
}

pub async fn fixture() -> Fixture {
    fixture_with(DashboardOptions::default()).await
}

pub async fn fixture_on(store: Arc<dyn Store>, options: DashboardOptions) -> Fixture {
    let ids = seed(store.as_ref()).await;
    let state = ApiState::new(
        store.clone(),
        Arc::new(|| "soc_sensor_packets_total{sensor=\"sensor-cpnet\"} 12\n".to_string()),
        options,
    )
    .expect("state");
    state.bootstrap_admin(Some(ADMIN_PASSWORD)).expect("bootstrap");
    let app = soc_dashboard::router(state.clone());
    let f = Fixture { app, state, ids, store };
    let admin = f.login("admin").await;
    for (name, role, segs) in PRINCIPALS.iter().skip(1) {
        let (st, _, body) = f
            .call(
                "POST",
                "/api/users",
                Some(&admin),
                Some(json!({"username": name, "password": password(name), "role": role, "segments": segs})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "create {name}: {body}");
    }
    f
}

impl Fixture {
    /// Sends a request; with a session, the cookie and (on writes) its CSRF token.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        s: Option<&Session>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.call_csrf(method, uri, s, body, s.map(|s| s.csrf.clone())).await
    }

    /// Like [`Fixture::call`] with an explicit CSRF header (`None`: no header).
    pub async fn call_csrf(
        &self,
        method: &str,
        uri: &str,
        s: Option<&Session>,
        body: Option<Value>,
        csrf: Option<String>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(s) = s {
            b = b.header(header::COOKIE, format!("other=1; {}", s.cookie));
        }
        if method != "GET"
            && let Some(t) = csrf
        {
            b = b.header("x-csrf-token", t);
        }
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, v)
    }

    pub async fn try_login(&self, user: &str, pw: &str) -> (StatusCode, HeaderMap, Value) {
        self.call("POST", "/api/login", None, Some(json!({"username": user, "password": pw}))).await
    }

    pub async fn login(&self, user: &str) -> Session {
        let (st, h, body) = self.try_login(user, &password(user)).await;
        assert_eq!(st, StatusCode::OK, "login {user}: {body}");
        let set = h.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("set-cookie").to_string();
        let cookie = set.split(';').next().expect("cookie").to_string();
        Session { user: user.into(), cookie, csrf: body["csrf_token"].as_str().expect("csrf").into() }
    }
}
