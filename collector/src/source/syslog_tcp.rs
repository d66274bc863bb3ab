//! Syslog over TCP: octet counting and newline framing (detected per connection), one task
//! per connection, batches published in order per connection. The same listener serves
//! syslog over TLS (RFC 5425) when built with [`SyslogTcpSource::bind_tls`]: the handshake is
//! done in the connection's task (at most [`TLS_HANDSHAKE_TIMEOUT`]), then the decrypted
//! stream is read exactly like a plain one.
//!
//! A connection task reads, cuts frames, parses them into its batch, and hands the batch to
//! the connection's publisher task when it is full or `flush_interval` after its first
//! message. The publisher encodes (ids, JSON) and publishes the batches one after the other,
//! so the order per connection holds while reading and parsing go on next to encoding and
//! publishing (one connection keeps two cores busy). At most [`PIPELINE`] batches wait for the
//! publisher; when they do, the connection does not read, so a slow bus slows the sender down
//! through TCP flow control instead of growing memory. If publishing fails for good (the batch
//! is counted as dropped), the connection is closed. On shutdown the listener closes, each
//! connection takes what has already arrived, publishes it and closes; connections still busy
//! after `shutdown_grace_secs` are aborted.

use super::framing::{Frame, FrameDecoder};
use super::stopped;
use crate::config::SyslogTcpConfig;
use crate::error::CollectorError;
use crate::parse::Decoder;
use crate::sink::{Batch, SourceContext, flush};
use crate::stats::InputStats;
use soc_bus::Bus;
use soc_model::DeadLetter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Input name (`log.input`, metrics label, dead-letter source prefix).
pub const INPUT: &str = "syslog-tcp";
/// Input name of syslog over TLS.
pub const INPUT_TLS: &str = "syslog-tls";
/// Longest time a client gets to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const READ_BUF: usize = 64 * 1024;
/// Batches of a connection waiting for its publisher.
pub const PIPELINE: usize = 2;
/// Most bytes taken from a connection's socket buffer after shutdown was asked for.
const SHUTDOWN_DRAIN: usize = 16 * 1024 * 1024;

/// A bound syslog TCP listener.
pub struct SyslogTcpSource {
    listener: TcpListener,
    local_addr: SocketAddr,
    cfg: SyslogTcpConfig,
    ctx: Arc<SourceContext>,
    stats: Arc<InputStats>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    input: &'static str,
}

impl SyslogTcpSource {
    /// Binds `cfg.address`.
    pub async fn bind(cfg: SyslogTcpConfig, ctx: SourceContext) -> Result<Self, CollectorError> {
        Self::bind_with(cfg, ctx, None, INPUT).await
    }

    /// Binds `cfg.address` for syslog over TLS with `tls` (see [`crate::tls::acceptor`]).
    pub async fn bind_tls(
        cfg: SyslogTcpConfig,
        ctx: SourceContext,
        tls: tokio_rustls::TlsAcceptor,
    ) -> Result<Self, CollectorError> {
        Self::bind_with(cfg, ctx, Some(tls), INPUT_TLS).await
    }

    async fn bind_with(
        cfg: SyslogTcpConfig,
        ctx: SourceContext,
        tls: Option<tokio_rustls::TlsAcceptor>,
        input: &'static str,
    ) -> Result<Self, CollectorError> {
        let bind_err = |source| CollectorError::Bind { input, addr: cfg.address.to_string(), source };
        let listener = TcpListener::bind(cfg.address).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        tracing::info!(input, address = %local_addr, max_line = cfg.max_line, "listening");
        Ok(SyslogTcpSource {
            listener,
            local_addr,
            cfg,
            ctx: Arc::new(ctx),
            stats: Arc::new(InputStats::new(input)),
            tls,
            input,
        })
    }

    /// The bound address (the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }

    /// Accepts and serves connections until shutdown.
    pub async fn run(self, bus: Arc<dyn Bus>, mut shutdown: watch::Receiver<bool>) -> Result<(), CollectorError> {
        let SyslogTcpSource { listener, cfg, ctx, stats, tls, input, .. } = self;
        let cfg = Arc::new(cfg);
        let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        let mut conns: JoinSet<()> = JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = stopped(&mut shutdown) => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = stopped(&mut shutdown) => break,
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(input, error = %e, "connection task failed");
                    }
                    continue;
                }
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(input, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let conn = Connection {
                peer,
                cfg: cfg.clone(),
                ctx: ctx.clone(),
                stats: stats.clone(),
                bus: bus.clone(),
                input,
                _permit: permit,
            };
            match &tls {
                None => {
                    conns.spawn(conn.serve(stream, shutdown.clone()));
                }
                Some(acceptor) => {
                    let (acceptor, shutdown) = (acceptor.clone(), shutdown.clone());
                    conns.spawn(async move {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => conn.serve(s, shutdown).await,
                            Ok(Err(e)) => {
                                tracing::warn!(input, peer = %peer, error = %e, "TLS handshake failed");
                                conn.stats.dropped_connection("tls");
                            }
                            Err(_) => {
                                tracing::warn!(input, peer = %peer, "TLS handshake timed out");
                                conn.stats.dropped_connection("tls");
                            }
                        }
                    });
                }
            }
        }
        drop(listener);
        let grace = Duration::from_secs(cfg.shutdown_grace_secs);
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = conns.join_next().await {
                if let Err(e) = done {
                    tracing::error!(input, error = %e, "connection task failed");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                input,
                open = conns.len(),
                "connections still busy after the shutdown grace period; aborting them"
            );
            conns.shutdown().await;
        }
        tracing::info!(input, counts = ?stats.snapshot(), "stopped");
        Ok(())
    }
}

/// Binds `cfg.address` and serves until shutdown.
pub async fn run(
    cfg: SyslogTcpConfig,
    ctx: SourceContext,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CollectorError> {
    bus.ensure_topics().await?;
    SyslogTcpSource::bind(cfg, ctx).await?.run(bus, shutdown).await
}

struct Connection {
    peer: SocketAddr,
    cfg: Arc<SyslogTcpConfig>,
    ctx: Arc<SourceContext>,
    stats: Arc<InputStats>,
    bus: Arc<dyn Bus>,
    input: &'static str,
    _permit: OwnedSemaphorePermit,
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard<'a>(&'a InputStats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.connections(-1.0);
    }
}

/// Aborts the connection's publisher when the connection task ends early (aborted after the
/// shutdown grace period).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Connection {
    async fn serve<S: AsyncRead + Unpin>(self, mut stream: S, mut shutdown: watch::Receiver<bool>) {
        self.stats.connections(1.0);
        let _open = OpenGuard(&self.stats);
        let (tx, mut rx) = mpsc::channel::<Batch>(PIPELINE);
        // Published batches come back empty, their memory kept (growing and faulting in a new
        // one for every batch costs more than the parsing).
        let (spare_tx, mut spare_rx) = mpsc::channel::<Batch>(1);
        let publisher = {
            let (bus, ctx, stats) = (self.bus.clone(), self.ctx.clone(), self.stats.clone());
            tokio::spawn(async move {
                while let Some(mut batch) = rx.recv().await {
                    // A failure is counted and logged by `flush`; closing the channel closes
                    // the connection.
                    if flush(&*bus, &mut batch, &ctx, &stats).await.is_err() {
                        break;
                    }
                    let _ = spare_tx.try_send(batch);
                }
            })
        };
        let mut next_batch = || spare_rx.try_recv().unwrap_or_default();
        let _abort = AbortOnDrop(publisher.abort_handle());
        let source = format!("{} {}", self.input, self.peer);
        let peer_ip = self.peer.ip().to_string();
        tracing::debug!(input = self.input, peer = %self.peer, "connection opened");
        let mut dec = FrameDecoder::new(self.cfg.max_line);
        let mut decoder = Decoder::new(self.cfg.format);
        let mut buf = vec![0u8; READ_BUF];
        let mut batch = Batch::default();
        let mut deadline: Option<Instant> = None;
        let mut stopping = false;
        let mut drained = 0usize;
        loop {
            let read = if stopping {
                // Stopping: take what has already arrived, without waiting for more (the
                // read is polled once).
                tokio::time::timeout(Duration::ZERO, stream.read(&mut buf)).await.unwrap_or(Ok(0))
            } else {
                tokio::select! {
                    biased;
                    _ = stopped(&mut shutdown) => {
                        stopping = true;
                        continue;
                    }
                    _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                        deadline = None;
                        if tx.send(std::mem::replace(&mut batch, next_batch())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    r = stream.read(&mut buf) => r,
                }
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(input = self.input, peer = %self.peer, error = %e, "read failed; closing");
                    0
                }
            };
            if n == 0 {
                break;
            }
            self.stats.bytes(n);
            dec.push(&buf[..n]);
            // Counted once per read rather than per message (a labelled metric is a lookup).
            let mut received = 0;
            while let Some(frame) = dec.next_frame() {
                received += self.accept(&mut batch, &mut decoder, frame, &peer_ip, &source);
                if batch.len() >= self.ctx.batch_size {
                    self.stats.received(std::mem::take(&mut received));
                    deadline = None;
                    if tx.send(std::mem::replace(&mut batch, next_batch())).await.is_err() {
                        return;
                    }
                }
            }
            if received > 0 {
                self.stats.received(received);
            }
            if stopping {
                drained += n;
                if drained > SHUTDOWN_DRAIN {
                    break;
                }
            }
            if !batch.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + self.ctx.flush_interval);
            }
        }
        let rest = match dec.finish() {
            // Cut by the shutdown, not ended by the sender: keep it, but not as a message.
            Some(Frame::Message(raw)) if stopping => {
                Some(Frame::Invalid { reason: "collector shut down before the frame was complete".into(), raw })
            }
            other => other,
        };
        if let Some(frame) = rest {
            let received = self.accept(&mut batch, &mut decoder, frame, &peer_ip, &source);
            self.stats.received(received);
        }
        self.ctx.finish_decoder(&mut batch, &mut decoder, self.input, Some(&peer_ip), &source);
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        drop(tx);
        if let Err(e) = publisher.await {
            tracing::error!(input = self.input, peer = %self.peer, error = %e, "publisher task failed");
        }
        tracing::debug!(input = self.input, peer = %self.peer, "connection closed");
    }

    /// Takes one frame into the batch; returns the messages received (0 for a blank line, 1).
    fn accept(&self, batch: &mut Batch, decoder: &mut Decoder, frame: Frame, peer_ip: &str, source: &str) -> u64 {
        match frame {
            Frame::Message(m) => {
                u64::from(self.ctx.accept_decoded(batch, decoder, &m, self.input, Some(peer_ip), source))
            }
            Frame::Invalid { reason, raw } => {
                tracing::debug!(input = self.input, source, reason, "frame dead-lettered");
                batch.dead_letters.push(DeadLetter::new(source, reason, &raw));
                1
            }
        }
    }
}
