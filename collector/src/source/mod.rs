//! Sources: network inputs that receive messages and publish them through the parsers.
//!
//! Each source binds first ([`syslog_udp::SyslogUdpSource::bind`],
//! [`syslog_tcp::SyslogTcpSource::bind`]; `127.0.0.1:0` picks a free port, see `local_addr`)
//! and then runs until the shutdown channel turns `true` (or its sender is dropped), flushing
//! what it holds before it returns. [`Collector`] binds and runs every enabled input of a
//! [`CollectorConfig`].

pub mod file;
pub mod framing;
pub mod syslog_tcp;
pub mod syslog_udp;

use crate::config::CollectorConfig;
use crate::error::CollectorError;
use crate::stats::InputStats;
use soc_bus::Bus;
use std::net::SocketAddr;
use std::sync::Arc;
use syslog_tcp::SyslogTcpSource;
use syslog_udp::SyslogUdpSource;
use tokio::sync::watch;

/// Resolves once shutdown is asked for (the value turns `true`) or can no longer be asked
/// for (the sender is gone). Cancel-safe.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Every enabled input of a configuration, bound.
pub struct Collector {
    udp: Option<SyslogUdpSource>,
    tcp: Option<SyslogTcpSource>,
    tls: Option<SyslogTcpSource>,
    http: Option<(tokio::net::TcpListener, crate::config::HttpConfig, crate::sink::SourceContext)>,
    files: Vec<file::FileSource>,
    spool: Option<crate::spool::SpoolOptions>,
}

impl Collector {
    /// Binds the enabled inputs (fails if an address is taken).
    pub async fn bind(cfg: &CollectorConfig) -> Result<Self, CollectorError> {
        crate::stats::describe_metrics();
        let ctx = cfg.source_context();
        let udp = match cfg.inputs.syslog_udp.enabled {
            true => Some(SyslogUdpSource::bind(cfg.inputs.syslog_udp.clone(), ctx.clone()).await?),
            false => None,
        };
        let tcp = match cfg.inputs.syslog_tcp.enabled {
            true => Some(SyslogTcpSource::bind(cfg.inputs.syslog_tcp.clone(), ctx.clone()).await?),
            false => None,
        };
        let tls = match cfg.inputs.syslog_tls.enabled {
            true => {
                let t = &cfg.inputs.syslog_tls;
                let acceptor =
                    t.acceptor().map_err(|source| CollectorError::Tls { input: syslog_tcp::INPUT_TLS, source })?;
                Some(SyslogTcpSource::bind_tls(t.tcp(), ctx.clone(), acceptor).await?)
            }
            false => None,
        };
        let http = match cfg.inputs.http.enabled {
            true => {
                let h = cfg.inputs.http.clone();
                let l = tokio::net::TcpListener::bind(h.address).await.map_err(|source| CollectorError::Bind {
                    input: crate::ingest::INPUT,
                    addr: h.address.to_string(),
                    source,
                })?;
                tracing::info!(input = crate::ingest::INPUT, address = ?l.local_addr().ok(), "listening");
                Some((l, h, ctx.clone()))
            }
            false => None,
        };
        let files =
            cfg.inputs.file.iter().map(|f| file::FileSource::new(f.clone(), cfg.file_state(f), ctx.clone())).collect();
        Ok(Collector { udp, tcp, tls, http, files, spool: cfg.spool_options() })
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(SyslogUdpSource::local_addr)
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(SyslogTcpSource::local_addr)
    }

    pub fn udp_stats(&self) -> Option<Arc<InputStats>> {
        self.udp.as_ref().map(SyslogUdpSource::stats)
    }

    pub fn tcp_stats(&self) -> Option<Arc<InputStats>> {
        self.tcp.as_ref().map(SyslogTcpSource::stats)
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(SyslogTcpSource::local_addr)
    }

    pub fn tls_stats(&self) -> Option<Arc<InputStats>> {
        self.tls.as_ref().map(SyslogTcpSource::stats)
    }

    /// The bound address of the HTTP input.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|(l, _, _)| l.local_addr().ok())
    }

    /// Counters of the file inputs, in configuration order.
    pub fn file_stats(&self) -> Vec<Arc<InputStats>> {
        self.files.iter().map(file::FileSource::stats).collect()
    }

    /// Runs the inputs until shutdown; the first input that fails stops the others.
    ///
    /// With the spool enabled, the bus is wrapped in a [`crate::spool::SpoolBus`].
    pub async fn run(self, bus: Arc<dyn Bus>, shutdown: watch::Receiver<bool>) -> Result<(), CollectorError> {
        let bus: Arc<dyn Bus> = match &self.spool {
            Some(o) => {
                tracing::info!(dir = %o.dir.display(), max_bytes = o.max_bytes, "spool enabled");
                Arc::new(crate::spool::SpoolBus::open(o.clone(), bus).await?)
            }
            None => bus,
        };
        bus.ensure_topics().await?;
        let udp = {
            let (bus, shutdown) = (bus.clone(), shutdown.clone());
            async move {
                match self.udp {
                    Some(s) => s.run(bus, shutdown).await,
                    None => Ok(()),
                }
            }
        };
        let tcp = {
            let (bus, shutdown) = (bus.clone(), shutdown.clone());
            async move {
                match self.tcp {
                    Some(s) => s.run(bus, shutdown).await,
                    None => Ok(()),
                }
            }
        };
        let tls = {
            let (bus, shutdown) = (bus.clone(), shutdown.clone());
            async move {
                match self.tls {
                    Some(s) => s.run(bus, shutdown).await,
                    None => Ok(()),
                }
            }
        };
        let http = {
            let (bus, mut shutdown) = (bus.clone(), shutdown.clone());
            async move {
                let Some((listener, h, ctx)) = self.http else { return Ok(()) };
                let app = crate::http::router(bus, ctx, h.max_body, h.max_inflight, true);
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move { stopped(&mut shutdown).await })
                    .await
                    .map_err(|source| CollectorError::Io { input: crate::ingest::INPUT, source })
            }
        };
        let files = futures_files(self.files, bus, shutdown);
        tokio::try_join!(udp, tcp, tls, http, files).map(|_| ())
    }
}

async fn futures_files(
    files: Vec<file::FileSource>,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CollectorError> {
    let mut set = tokio::task::JoinSet::new();
    for f in files {
        set.spawn(f.run(bus.clone(), shutdown.clone()));
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok(r) => r?,
            Err(e) => return Err(CollectorError::Task { input: file::INPUT, reason: e.to_string() }),
        }
    }
    Ok(())
}

/// Binds and runs every enabled input of `cfg` until shutdown.
pub async fn run(
    cfg: CollectorConfig,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CollectorError> {
    Collector::bind(&cfg).await?.run(bus, shutdown).await
}
