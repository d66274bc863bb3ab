//! Sources: network inputs that receive messages and publish them through the parsers.
//!
//! Each source binds first ([`syslog_udp::SyslogUdpSource::bind`],
//! [`syslog_tcp::SyslogTcpSource::bind`]; `127.0.0.1:0` picks a free port, see `local_addr`)
//! and then runs until the shutdown channel turns `true` (or its sender is dropped), flushing
//! what it holds before it returns. [`Collector`] binds and runs every enabled input of a
//! [`CollectorConfig`].

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
            true => Some(SyslogTcpSource::bind(cfg.inputs.syslog_tcp.clone(), ctx).await?),
            false => None,
        };
        Ok(Collector { udp, tcp })
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

    /// Runs the inputs until shutdown; the first input that fails stops the others.
    pub async fn run(self, bus: Arc<dyn Bus>, shutdown: watch::Receiver<bool>) -> Result<(), CollectorError> {
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
        let tcp = async move {
            match self.tcp {
                Some(s) => s.run(bus, shutdown).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(udp, tcp).map(|_| ())
    }
}

/// Binds and runs every enabled input of `cfg` until shutdown.
pub async fn run(
    cfg: CollectorConfig,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CollectorError> {
    Collector::bind(&cfg).await?.run(bus, shutdown).await
}
