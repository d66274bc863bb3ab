//! The separately deployed components (`soc sensor|collector|correlator|dashboard`) and the
//! pieces `soc run` shares with them.

use crate::cli::{DaemonArgs, DaemonCommand, SensorArgs, SensorCommand};
use crate::config;
use anyhow::Context;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use soc_bus::Bus;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use crate::sensor_glue::{SensorRunOptions, spawn_live, spawn_pcap};

/// Largest body `POST /api/ingest` accepts.
pub const MAX_INGEST_BODY: usize = 32 * 1024 * 1024;

#[derive(Clone)]
struct IngestState {
    bus: Arc<dyn Bus>,
    name: String,
    segment: Option<String>,
}

/// `POST /api/ingest`: JSON lines, a JSON array or one object; Windows events in the evtx
/// or Winlogbeat shape are normalized. Answers once every record is on the bus (so a `200`
/// means accepted), `503` when the bus cannot take them (the sender retries).
pub fn ingest_router(bus: Arc<dyn Bus>, name: &str, segment: Option<String>) -> Router {
    let st = IngestState { bus, name: name.to_string(), segment };
    Router::new().route("/api/ingest", post(ingest)).layer(DefaultBodyLimit::max(MAX_INGEST_BODY)).with_state(st)
}

async fn ingest(
    State(st): State<IngestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mut outcome = soc_collector::parse_http_body(&body, ct, &peer.to_string());
    outcome.stamp(&st.name, st.segment.as_deref());
    let (n, d) = (outcome.events.len(), outcome.dead_letters.len());
    match soc_collector::publish_outcome(st.bus.as_ref(), &outcome).await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"accepted": n, "dead_letters": d}))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "ingest: bus unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": format!("not accepted, retry later: {e}")})),
            )
                .into_response()
        }
    }
}

/// Starts the syslog UDP and TCP listeners of `soc run` on one address.
pub async fn spawn_syslog(
    set: &mut JoinSet<anyhow::Result<String>>,
    addr: SocketAddr,
    bus: Arc<dyn Bus>,
    name: &str,
    segment: Option<String>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut cfg = soc_collector::CollectorConfig { name: name.to_string(), segment, ..Default::default() };
    cfg.inputs.syslog_udp.address = addr;
    cfg.inputs.syslog_tcp.address = addr;
    let collector = soc_collector::Collector::bind(&cfg).await.with_context(|| {
        format!("cannot listen for syslog on {addr} (choose another with --syslog, or --no-syslog)")
    })?;
    set.spawn(async move {
        collector.run(bus, shutdown).await.context("syslog collector failed")?;
        Ok("syslog collector stopped".to_string())
    });
    Ok(())
}

/// Serves `/metrics`, `/healthz` and `/readyz` for a daemon without its own HTTP API.
pub async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    let prom = crate::telemetry::metrics();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let p = prom.clone();
                async move { p.render() }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        // Past start-up (broker and store reached) the process is ready.
        .route(
            "/readyz",
            get(|| async {
                "ready
"
            }),
        );
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics: cannot listen on {addr}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok(())
}

/// A watch channel that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                    return;
                }
            };
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

/// `soc CMD check-config FILE` validates and says so (`Err(exit code)`); `soc CMD --config
/// FILE` loads the file (`Ok(config)`).
fn load_or_check<T>(
    cmd: &str,
    a: &DaemonArgs,
    load: fn(&Path) -> Result<T, soc_model::config::ConfigError>,
) -> anyhow::Result<Result<T, ExitCode>> {
    if let Some(DaemonCommand::CheckConfig { file }) = &a.command {
        load(file)?;
        println!("{}: valid {cmd} configuration", file.display());
        return Ok(Err(ExitCode::SUCCESS));
    }
    let path = a
        .config
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("soc {cmd}: --config FILE is required (examples in deploy/config/)"))?;
    Ok(Ok(load(path)?))
}

/// Opens the configured store and applies its migrations.
async fn open_store(cfg: &config::StoreConfig) -> anyhow::Result<Arc<dyn soc_store::Store>> {
    let store = cfg.open().await.context("cannot open the store at start-up")?;
    let applied = store.migrate().await?;
    tracing::info!(?applied, store = store.name(), "store ready");
    Ok(store)
}

async fn connect_kafka(cfg: soc_bus::kafka::KafkaConfig) -> anyhow::Result<Arc<dyn Bus>> {
    let bus = soc_bus::kafka::KafkaBus::connect(cfg)?;
    let bus: Arc<dyn Bus> = Arc::new(bus);
    soc_bus::with_backoff("ensure_topics", std::time::Duration::from_secs(0), || bus.ensure_topics())
        .await
        .context("cannot reach Kafka at start-up")?;
    Ok(bus)
}

pub async fn sensor(a: SensorArgs) -> anyhow::Result<ExitCode> {
    if let Some(SensorCommand::CheckConfig { file }) = &a.command {
        config::load_sensor(file)?;
        println!("{}: valid sensor configuration", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    crate::sensor_glue::sensor_command(a).await
}

pub async fn collector(a: DaemonArgs) -> anyhow::Result<ExitCode> {
    let f = match load_or_check("collector", &a, config::load_collector)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let bus = connect_kafka(f.kafka.clone()).await?;
    if let Some(m) = &f.metrics {
        serve_metrics(m.listen).await?;
    }
    let shutdown = shutdown_on_signal();
    tracing::info!(name = %f.collector.name, "collector starting");
    soc_collector::run(f.collector, bus, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn correlator(a: DaemonArgs) -> anyhow::Result<ExitCode> {
    let f = match load_or_check("correlator", &a, config::load_correlator)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let store = open_store(&f.store).await?;
    let bus = connect_kafka(f.kafka.clone()).await?;
    if let Some(m) = &f.metrics {
        serve_metrics(m.listen).await?;
    }
    let sigma = crate::rules::sigma_rules(&f.correlator.sigma_rules);
    let opts = soc_correlator::CorrelatorOptions {
        group: f.correlator.group,
        batch: f.correlator.batch,
        sigma: Some(sigma),
        ..Default::default()
    };
    let stats = soc_correlator::run(bus, store, opts, shutdown_on_signal()).await?;
    tracing::info!(?stats, "correlator stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn dashboard(a: DaemonArgs) -> anyhow::Result<ExitCode> {
    let f = match load_or_check("dashboard", &a, config::load_dashboard)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let store = open_store(&f.store).await?;
    let prom = crate::telemetry::metrics();
    let app = soc_dashboard::router(soc_dashboard::ApiState { store, metrics: Arc::new(move || prom.render()) });
    let listener = tokio::net::TcpListener::bind(f.dashboard.listen)
        .await
        .with_context(|| format!("cannot listen on {}", f.dashboard.listen))?;
    println!("dashboard API on http://{}/", listener.local_addr()?);
    let mut stop = shutdown_on_signal();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
