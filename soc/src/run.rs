//! `soc run`: the all-in-one topology.
//!
//! ```text
//! --pcap / --interface / --demo ──> sensor ──┐
//! syslog 127.0.0.1:5514, POST /api/ingest ──> collector ──┤──> in-process bus ──> correlator ──> SQLite
//!                                                                                        API <── store
//! ```
//! Shutdown order keeps every accepted record: sources stop first (the sensor flushes its
//! flows), then the correlator drains the bus and commits, then the API stops.

use crate::cli::RunArgs;
use crate::counting::CountingBus;
use anyhow::Context;
use soc_bus::{Bus, MemoryBus};
use soc_model::{Kind, Timestamp};
use soc_store::{EventQuery, Store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let prom = crate::telemetry::metrics();
    if a.pcap.is_empty() && a.interface.is_empty() && !a.demo {
        tracing::info!("no --pcap, --interface or --demo: only the collector inputs feed this run");
    }
    std::fs::create_dir_all(&a.data_dir).with_context(|| format!("cannot create data dir {}", a.data_dir.display()))?;
    let db = a.data_dir.join("soc.sqlite");
    let store: Arc<dyn Store> = Arc::new(
        soc_store::sqlite::SqliteStore::open(&db).with_context(|| format!("cannot open the store {}", db.display()))?,
    );
    let applied = store.migrate().await.context("store migrations failed")?;
    if !applied.is_empty() {
        tracing::info!(?applied, path = %db.display(), "store migrations applied");
    }

    // The in-process bus keeps a journal in the data dir: records accepted (syslog, ingest,
    // capture) but not yet stored survive a crash and are delivered again on the next start.
    let journal = a.data_dir.join("bus");
    let memory_bus = MemoryBus::durable("soc", a.bus_capacity, &journal, false)
        .with_context(|| format!("cannot open the bus journal in {}", journal.display()))?;
    let counting = Arc::new(CountingBus::new(Arc::new(memory_bus)));
    let bus: Arc<dyn Bus> = counting.clone();
    bus.ensure_topics().await?;

    // Correlator.
    let (stop_corr, corr_rx) = watch::channel(false);
    let sigma = crate::rules::sigma_rules(&a.sigma);
    let rules = Arc::new(crate::rules::SensorRules::load(&a.rules, a.classification_config.as_deref())?);
    let detector = rules.current().unwrap_or_else(|| Arc::new(soc_sensor::detect::Detector::builder().build().0));
    // NCSC indicators (--ncsc-indicators): polled into IOC lists the correlator watches.
    let mut ioc_paths = a.ioc.clone();
    let (stop_inbound, inbound_rx) = watch::channel(false);
    let inbound = match &a.ncsc_indicators {
        Some(url) => {
            let dir = a.data_dir.join("ncsc-ioc");
            let task = crate::forwarder_cmd::run_inbound(url, &dir, inbound_rx)?;
            println!("NCSC indicators: {url} -> {}", dir.display());
            ioc_paths.push(dir);
            Some(task)
        }
        None => None,
    };
    // The same enrichment settings as the correlator daemon's `[enrich]` table.
    let enrich = crate::config::EnrichSection {
        geoip_location: a.geoip_location.clone(),
        geoip_asn: a.geoip_asn.clone(),
        ioc: ioc_paths,
        ioc_level: soc_model::Level::High,
        ioc_reload_secs: 5,
    };
    let corr_opts = soc_correlator::CorrelatorOptions {
        sigma: Some(sigma),
        correlations: Some(crate::components::correlation_rules(&a.sigma)),
        geoip: enrich.geoip()?,
        ioc: enrich.ioc(),
        // Beside the bus journal, whose offsets the snapshots match.
        checkpoint_dir: Some(a.data_dir.join("correlator-state")),
        ..Default::default()
    };
    let corr = tokio::spawn(soc_correlator::run(bus.clone(), store.clone(), corr_opts, corr_rx));

    // NCSC forwarder (--ncsc-url): incident topic -> outbox -> TAXII collection.
    let (stop_fwd, fwd_rx) = watch::channel(false);
    let forwarder = match &a.ncsc_url {
        Some(url) => {
            let fwd = crate::forwarder_cmd::run_forwarder(url, &a.data_dir, store.clone())?;
            println!("NCSC forwarding: {url}");
            Some((fwd.clone(), tokio::spawn(soc_forwarder::run(bus.clone(), fwd, fwd_rx))))
        }
        None => None,
    };

    // API.
    let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| {
        format!("cannot listen on {} (is another soc running? choose another with --listen)", a.listen)
    })?;
    let local = listener.local_addr()?;
    // The STIX bundle an incident has (or would have) on its way to the NCSC: the forwarder's
    // redaction and options when forwarding is on, the defaults otherwise.
    let stix = match &forwarder {
        Some((fwd, _)) => {
            let fwd = fwd.clone();
            soc_dashboard::StixRenderer(Arc::new(move |i| fwd.bundle_for(i)))
        }
        None => soc_dashboard::StixRenderer(Arc::new(|i| {
            soc_forwarder::outgoing_bundle(i, &Default::default(), &Default::default())
        })),
    };
    let dash_opts = soc_dashboard::DashboardOptions {
        state_db: Some(a.data_dir.join("dashboard.sqlite")),
        stix: Some(stix),
        ..Default::default()
    };
    let state = crate::components::dashboard_state(store.clone(), Arc::new(move || prom.render()), dash_opts)?;
    let app = soc_dashboard::router(state)
        .merge(crate::components::ingest_router(bus.clone(), "soc-run", None))
        .merge(soc_dashboard::ui::ui_router());
    let (stop_api, mut api_rx) = watch::channel(false);
    let api = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = api_rx.wait_for(|s| *s).await;
            })
            .await
    });
    println!("Canh Gác is running. API: http://{local}/api/events?limit=20  (metrics: http://{local}/metrics)");
    println!("Store: {}", db.display());

    // Sources.
    let (stop_src, src_rx) = watch::channel(false);
    let mut sources: JoinSet<anyhow::Result<String>> = JoinSet::new();
    if !a.no_syslog {
        crate::components::spawn_syslog(&mut sources, a.syslog, bus.clone(), "soc-run", None, src_rx.clone()).await?;
        println!("Syslog: udp://{0} and tcp://{0}", a.syslog);
    }
    let sensor_opts = crate::components::SensorRunOptions {
        sensor_name: a.sensor_name.clone(),
        segment: a.segment.clone(),
        checksum_check: !a.no_checksum_check,
        stream: Default::default(),
        detector: Some(detector.clone()),
        rule_slot: Some(rules.slot()),
        midstream: a.midstream,
        async_oneside: false,
        urgent_oob: false,
        memcap_policy: Default::default(),
        bpf: None,
        vlan_tracking: true,
    };
    crate::rules::reload_on_sighup(Some(rules.clone()))?;
    for p in &a.pcap {
        crate::components::spawn_pcap(&mut sources, p.clone(), sensor_opts.clone(), bus.clone(), src_rx.clone());
    }
    for i in &a.interface {
        crate::components::spawn_live(&mut sources, i.clone(), sensor_opts.clone(), bus.clone(), src_rx.clone())?;
    }
    if a.demo {
        let b = bus.clone();
        let rx = src_rx.clone();
        // The demo's sensors follow reloads like the capture sources.
        let slot = rules.slot();
        sources.spawn(async move { crate::demo::run(b, rx, Some(slot)).await });
        println!("Demo traffic: segments ministry and cpnet");
    }

    // Retention, hourly.
    let retention = {
        let store = store.clone();
        let days = a.retention_days as i64;
        tokio::spawn(async move {
            loop {
                let keep_from = Timestamp::now().unix_day() - days;
                match store.drop_days_before(keep_from).await {
                    Ok(r) if r.rows_dropped > 0 => {
                        tracing::info!(days = ?r.days_dropped, rows = r.rows_dropped, "retention dropped old days")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention failed"),
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        })
    };

    // Wait for the duration, Ctrl-C, or a failing source.
    let deadline = async {
        match a.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
            None => std::future::pending().await,
        }
    };
    let mut failed: Option<anyhow::Error> = None;
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => { eprintln!("stopping (Ctrl-C)"); break }
            Some(done) = sources.join_next(), if !sources.is_empty() => {
                match done {
                    Ok(Ok(what)) => tracing::info!("{what}"),
                    Ok(Err(e)) => { failed = Some(e); break }
                    Err(e) => { failed = Some(anyhow::anyhow!("a source task failed: {e}")); break }
                }
            }
        }
    }

    // Orderly shutdown: sources flush, correlator drains, API stops.
    let _ = stop_src.send(true);
    while let Some(done) = sources.join_next().await {
        match done {
            Ok(Ok(what)) => tracing::info!("{what}"),
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "source failed");
                failed.get_or_insert(e);
            }
            Err(e) => tracing::error!(error = %e, "source task failed"),
        }
    }
    let _ = stop_inbound.send(true);
    if let Some(t) = inbound {
        let _ = t.await;
    }
    let _ = stop_corr.send(true);
    let corr_stats = corr.await.context("correlator task failed")?.context("correlator failed")?;
    let _ = stop_fwd.send(true);
    let mut forwarded = None;
    if let Some((fwd, task)) = forwarder {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "forwarder failed"),
            Err(e) => tracing::error!(error = %e, "forwarder task failed"),
        }
        forwarded = fwd.outbox().counts().ok();
    }
    retention.abort();
    let _ = stop_api.send(true);
    let _ = api.await;

    let published = counting.published();
    let all = EventQuery::default();
    let stored = store.count_events(&all).await?;
    let count_type = |t: &str| {
        let q = EventQuery { event_type: Some(t.to_string()), ..Default::default() };
        let store = store.clone();
        async move { store.count_events(&q).await.unwrap_or(0) }
    };
    let (flows, alerts, detections, logs) =
        (count_type("flow").await, count_type("alert").await, count_type("detection").await, count_type("log").await);
    // Records the sources brought in (detections and incidents are the correlator's own).
    let inputs: Vec<(Kind, u64)> =
        published.into_iter().filter(|(k, n)| *n > 0 && !matches!(k, Kind::Detection | Kind::Incident)).collect();
    let records_in: u64 = inputs.iter().map(|(_, n)| n).sum();
    println!("Summary");
    println!(
        "  records in:     {records_in}  ({})",
        inputs.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  consumed:       {}  (dead letters {}, undecodable {}; detections raised {})",
        corr_stats.consumed, corr_stats.dead_letters, corr_stats.undecodable, corr_stats.detections
    );
    println!("  stored (total): {stored}  (flows {flows}, logs {logs}, alerts {alerts}, detections {detections})");
    let incidents = store.count_incidents(&soc_store::IncidentQuery::default()).await.unwrap_or(0);
    println!("  incidents:      {incidents}  ({} versions written)", corr_stats.incident_versions);
    if let Some(c) = forwarded {
        let c: Vec<String> = c.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!("  NCSC outbox:    {}", if c.is_empty() { "empty".to_string() } else { c.join(", ") });
    }
    println!("  store:          {}", db.display());
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(ExitCode::SUCCESS)
}
