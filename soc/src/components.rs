//! The separately deployed components (`soc sensor|collector|correlator|dashboard`) and the
//! pieces `soc run` shares with them.

use crate::cli::{DaemonArgs, DaemonCommand, SensorArgs, SensorCommand};
use crate::config;
use anyhow::Context;
use axum::Router;
use axum::routing::get;
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

/// `POST /api/ingest` (JSON lines, a JSON array or one object; Windows events in the evtx or
/// Winlogbeat shape are normalized) and the Elasticsearch-compatible `POST /_bulk` for Beats:
/// the collector's HTTP input (`soc_collector::http`). Answers once every record is on the bus
/// (so a `200` means accepted), `503` when the bus cannot take them (the sender retries).
pub fn ingest_router(bus: Arc<dyn Bus>, name: &str, segment: Option<String>) -> Router {
    let ctx = soc_collector::SourceContext { sensor: name.to_string(), segment, ..Default::default() };
    soc_collector::http::router(bus, ctx, MAX_INGEST_BODY, soc_collector::http::DEFAULT_MAX_INFLIGHT, false)
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

/// Sigma correlation rules from the same paths as the Sigma rules (the built-in project rules
/// when none are given); problems are logged with their file.
pub fn correlation_rules(paths: &[std::path::PathBuf]) -> Arc<soc_correlator::correlation::CorrelationRules> {
    use soc_correlator::correlation::CorrelationRules;
    let (rules, errors) = if paths.is_empty() {
        let sources: Vec<(std::path::PathBuf, String)> = soc_correlator::sigma::builtin::BUILTIN_RULES
            .iter()
            .map(|(p, t)| (std::path::PathBuf::from(p), t.to_string()))
            .collect();
        CorrelationRules::from_sources(&sources)
    } else {
        CorrelationRules::load(paths)
    };
    for e in &errors {
        tracing::warn!(file = %e.file.display(), reason = %e.reason, "sigma correlation rule not loaded");
    }
    metrics::gauge!("soc_correlator_sigma_correlations_loaded").set(rules.len() as f64);
    tracing::info!(loaded = rules.len(), rejected = errors.len(), "sigma correlation rules loaded");
    Arc::new(rules)
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
    let mut sigma = crate::rules::sigma_rules(&f.correlator.sigma_rules);
    if !f.correlator.pipelines.is_empty() {
        let pipelines = soc_correlator::sigma::Pipelines::load(&f.correlator.pipelines).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("pipelines not loaded:\n{}", lines.join("\n"))
        })?;
        tracing::info!(pipelines = ?pipelines.names(), transformations = pipelines.len(), "pipelines loaded");
        if let Ok(rules) = Arc::try_unwrap(sigma) {
            sigma = Arc::new(rules.with_pipelines(pipelines));
        } else {
            anyhow::bail!("internal: the Sigma rule set is shared before its pipelines are set");
        }
    }
    let correlations = correlation_rules(&f.correlator.sigma_rules);
    let opts = soc_correlator::CorrelatorOptions {
        correlations: Some(correlations),
        group: f.correlator.group,
        batch: f.correlator.batch,
        sigma: Some(sigma),
        incidents: f.incidents.options(),
        geoip: f.enrich.geoip()?,
        ioc: f.enrich.ioc(),
        dedup: f.correlator.dedup.as_ref().map(|d| d.options()),
        checkpoint_dir: f.correlator.checkpoint_dir.clone(),
        correlation_max_groups: f.correlator.max_correlation_groups,
        ..Default::default()
    };
    let stats = soc_correlator::run(bus, store, opts, shutdown_on_signal()).await?;
    tracing::info!(?stats, "correlator stopped");
    Ok(ExitCode::SUCCESS)
}

/// Opens the dashboard's state and creates the `admin` account on first start, with the
/// password in `SOC_ADMIN_PASSWORD` or a generated one printed once.
pub fn dashboard_state(
    store: Arc<dyn soc_store::Store>,
    metrics: soc_dashboard::MetricsRender,
    opts: soc_dashboard::DashboardOptions,
) -> anyhow::Result<soc_dashboard::ApiState> {
    let shown = opts.state_db.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let state = soc_dashboard::ApiState::new(store, metrics, opts)
        .with_context(|| format!("cannot open the dashboard state database {shown}"))?;
    let env_pw = std::env::var("SOC_ADMIN_PASSWORD").ok();
    match state.bootstrap_admin(env_pw.as_deref()).context("cannot create the dashboard admin account")? {
        soc_dashboard::AdminBootstrap::Generated(pw) => {
            println!("Dashboard account created: admin / {pw}  (shown once; set SOC_ADMIN_PASSWORD to choose it)")
        }
        soc_dashboard::AdminBootstrap::Created => {
            println!("Dashboard account created: admin (password from SOC_ADMIN_PASSWORD)")
        }
        soc_dashboard::AdminBootstrap::Existing => {}
    }
    Ok(state)
}

pub async fn dashboard(a: DaemonArgs) -> anyhow::Result<ExitCode> {
    let f = match load_or_check("dashboard", &a, config::load_dashboard)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let store = open_store(&f.store).await?;
    let prom = crate::telemetry::metrics();
    let state_db = f.dashboard.state_db.clone().unwrap_or_else(|| {
        // systemd's StateDirectory=, else the working directory.
        std::env::var_os("STATE_DIRECTORY").map(std::path::PathBuf::from).unwrap_or_default().join("dashboard.sqlite")
    });
    let opts = soc_dashboard::DashboardOptions {
        state_db: Some(state_db),
        secure_cookie: f.dashboard.secure_cookie,
        // What the forwarder's default policy would send (a deployment's own redaction lives
        // in the forwarder's config; the dashboard shows the default view).
        stix: Some(soc_dashboard::StixRenderer(Arc::new(|i| {
            soc_forwarder::outgoing_bundle(i, &Default::default(), &Default::default())
        }))),
        ..Default::default()
    };
    let app = soc_dashboard::router(dashboard_state(store, Arc::new(move || prom.render()), opts)?)
        .merge(soc_dashboard::ui::ui_router());
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
