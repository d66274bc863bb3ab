//! Syslog over UDP (RFC 5426): one message per datagram.
//!
//! The socket gets a large receive buffer (SO_RCVBUF, `receive_buffer`) so bursts queue in the
//! kernel while a batch is published. The receive loop parses datagrams into batches and hands
//! full batches (or, after `flush_interval`, partial ones) to a publisher task through a short
//! queue; when that queue is full the loop waits, and the kernel buffer absorbs the burst.
//! Datagrams larger than `max_line` are dead-lettered with their first `max_line` bytes.
//!
//! Drops: the input itself never drops a datagram it read (a failing bus is retried, then the
//! batch is counted as dropped with reason `bus`). When it falls behind, the kernel drops what
//! no longer fits in the socket buffer; on Linux that count is read every [`DROPS_POLL`] (and
//! at shutdown) from the `drops` column of `/proc/net/udp` / `/proc/net/udp6`, for this
//! socket's inode, and added to `kernel_dropped` (metric
//! `soc_collector_kernel_dropped_total{input}`), with a warning naming the receive buffer.

use super::stopped;
use crate::config::SyslogUdpConfig;
use crate::error::CollectorError;
use crate::parse::{Decoder, ParseError};
use crate::sink::{Batch, SourceContext, flush};
use crate::stats::InputStats;
use soc_bus::Bus;
use soc_model::DeadLetter;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Input name (`log.input`, metrics label, dead-letter source prefix).
pub const INPUT: &str = "syslog-udp";

/// Largest UDP payload.
const DATAGRAM_MAX: usize = 65_536;
/// Batches waiting for the publisher.
const QUEUE: usize = 8;
/// Most datagrams taken from the socket buffer after shutdown was asked for.
const SHUTDOWN_DRAIN: usize = 100_000;

/// How often the kernel's drop counter of the socket is read.
pub const DROPS_POLL: Duration = Duration::from_secs(1);

/// A bound syslog UDP socket.
pub struct SyslogUdpSource {
    socket: UdpSocket,
    local_addr: SocketAddr,
    receive_buffer: usize,
    cfg: SyslogUdpConfig,
    ctx: Arc<SourceContext>,
    stats: Arc<InputStats>,
    drops: Option<Arc<DropCounter>>,
}

/// The kernel's drop counter of one UDP socket, turned into increments of `kernel_dropped`.
#[derive(Debug)]
struct DropCounter {
    inode: u64,
    receive_buffer: usize,
    /// The counter's value already accounted for.
    seen: Mutex<u64>,
}

impl DropCounter {
    /// Watches the socket (Linux); `None` where the counter cannot be read.
    fn new(socket: &UdpSocket, receive_buffer: usize, stats: &InputStats) -> Option<Self> {
        let inode = socket_inode(socket)?;
        let start = kernel_drops(inode)?;
        stats.kernel_dropped(0);
        Some(DropCounter { inode, receive_buffer, seen: Mutex::new(start) })
    }

    /// Reads the counter and adds what is new to `stats`.
    fn refresh(&self, stats: &InputStats) {
        let Some(now) = kernel_drops(self.inode) else { return };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if now > *seen {
            let n = now - *seen;
            *seen = now;
            drop(seen);
            stats.kernel_dropped(n);
            tracing::warn!(
                input = INPUT,
                dropped = n,
                total = stats.snapshot().kernel_dropped,
                receive_buffer = self.receive_buffer,
                "the kernel dropped datagrams: the socket receive buffer overflowed (raise receive_buffer / net.core.rmem_max, or the collector is too slow)"
            );
        }
    }
}

/// The inode of a socket (`/proc/self/fd/N` links to `socket:[INODE]`).
#[cfg(target_os = "linux")]
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn socket_inode(_socket: &UdpSocket) -> Option<u64> {
    None
}

/// The kernel's count of datagrams dropped on the UDP socket with this inode (Linux).
pub fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .find_map(|text| drops_in_table(&text, inode))
}

/// The `drops` column of the row of `inode` in a `/proc/net/udp` table (header first; columns
/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops`).
fn drops_in_table(text: &str, inode: u64) -> Option<u64> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        f.get(12)?.parse().ok()
    })
}

fn bind_socket(cfg: &SyslogUdpConfig) -> std::io::Result<(std::net::UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(cfg.address), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(cfg.receive_buffer) {
        tracing::warn!(input = INPUT, requested = cfg.receive_buffer, error = %e, "cannot set the receive buffer size");
    }
    socket.bind(&cfg.address.into())?;
    socket.set_nonblocking(true)?;
    let effective = socket.recv_buffer_size().unwrap_or(0);
    Ok((socket.into(), effective))
}

impl SyslogUdpSource {
    /// Binds `cfg.address` with the configured receive buffer.
    pub async fn bind(cfg: SyslogUdpConfig, ctx: SourceContext) -> Result<Self, CollectorError> {
        let bind_err = |source| CollectorError::Bind { input: INPUT, addr: cfg.address.to_string(), source };
        let (std_socket, receive_buffer) = bind_socket(&cfg).map_err(bind_err)?;
        let socket = UdpSocket::from_std(std_socket).map_err(bind_err)?;
        let local_addr = socket.local_addr().map_err(bind_err)?;
        // Linux reports twice the size it was given (bookkeeping overhead) and caps the
        // request at net.core.rmem_max.
        if receive_buffer < cfg.receive_buffer {
            tracing::warn!(
                input = INPUT,
                requested = cfg.receive_buffer,
                effective = receive_buffer,
                "receive buffer capped by the kernel (raise net.core.rmem_max)"
            );
        }
        let stats = Arc::new(InputStats::new(INPUT));
        let drops = DropCounter::new(&socket, receive_buffer, &stats).map(Arc::new);
        if drops.is_none() {
            tracing::info!(
                input = INPUT,
                "the kernel's drop counter of the socket cannot be read here; kernel drops are not counted"
            );
        }
        tracing::info!(input = INPUT, address = %local_addr, receive_buffer, "listening");
        Ok(SyslogUdpSource { socket, local_addr, receive_buffer, cfg, ctx: Arc::new(ctx), stats, drops })
    }

    /// The bound address (the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The receive buffer the kernel granted (SO_RCVBUF as read back).
    pub fn receive_buffer(&self) -> usize {
        self.receive_buffer
    }

    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }

    /// Receives until shutdown, then publishes what it holds.
    pub async fn run(self, bus: Arc<dyn Bus>, mut shutdown: watch::Receiver<bool>) -> Result<(), CollectorError> {
        let SyslogUdpSource { socket, cfg, ctx, stats, drops, .. } = self;
        // The drop counter is read by its own task: drops happen when the receive loop is
        // stuck behind the publisher, which is when they must still be reported.
        let monitor = drops.clone().map(|d| {
            let (stats, mut shutdown) = (stats.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped(&mut shutdown) => break,
                        _ = tokio::time::sleep(DROPS_POLL) => d.refresh(&stats),
                    }
                }
            })
        });
        let (tx, mut rx) = mpsc::channel::<Batch>(QUEUE);
        let publisher = {
            let (ctx, stats) = (ctx.clone(), stats.clone());
            tokio::spawn(async move {
                while let Some(mut batch) = rx.recv().await {
                    // Failures are counted as dropped and logged by `flush`; UDP has no sender
                    // to push back on, so the loop goes on with the next batch.
                    let _ = flush(&*bus, &mut batch, &ctx, &stats).await;
                }
            })
        };
        let mut buf = vec![0u8; DATAGRAM_MAX];
        let mut batch = Batch::default();
        let mut deadline: Option<Instant> = None;
        let mut recv_errors = 0u64;
        loop {
            let (n, peer) = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => break,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    deadline = None;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        break;
                    }
                    continue;
                }
                r = socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        recv_errors += 1;
                        if recv_errors.is_power_of_two() {
                            tracing::warn!(input = INPUT, error = %e, errors = recv_errors, "receive failed");
                        }
                        continue;
                    }
                },
            };
            accept_datagram(&cfg, &ctx, &stats, &mut batch, &buf[..n], peer);
            if batch.len() >= ctx.batch_size {
                deadline = None;
                if tx.send(std::mem::take(&mut batch)).await.is_err() {
                    break;
                }
            } else if !batch.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + ctx.flush_interval);
            }
        }
        // Take what already arrived.
        for _ in 0..SHUTDOWN_DRAIN {
            match socket.try_recv_from(&mut buf) {
                Ok((n, peer)) => accept_datagram(&cfg, &ctx, &stats, &mut batch, &buf[..n], peer),
                Err(_) => break,
            }
            if batch.len() >= ctx.batch_size && tx.send(std::mem::take(&mut batch)).await.is_err() {
                break;
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        drop(tx);
        publisher.await.map_err(|e| CollectorError::Task { input: INPUT, reason: e.to_string() })?;
        if let Some(m) = monitor {
            let _ = m.await;
        }
        if let Some(d) = &drops {
            d.refresh(&stats);
        }
        tracing::info!(input = INPUT, counts = ?stats.snapshot(), "stopped");
        Ok(())
    }
}

fn accept_datagram(
    cfg: &SyslogUdpConfig,
    ctx: &SourceContext,
    stats: &InputStats,
    batch: &mut Batch,
    data: &[u8],
    peer: SocketAddr,
) {
    stats.bytes(data.len());
    let source = format!("{INPUT} {peer}");
    if data.len() > cfg.max_line {
        stats.received(1);
        let reason = ParseError::TooLong { len: data.len(), max: cfg.max_line }.to_string();
        batch.dead_letters.push(DeadLetter::new(source, reason, &data[..cfg.max_line]));
        return;
    }
    // One message per datagram: a fresh decoder, finished at once (no joining across
    // datagrams, which may come from several senders).
    let mut decoder = Decoder::new(cfg.format);
    let ip = peer.ip().to_string();
    if ctx.accept_decoded(batch, &mut decoder, data, INPUT, Some(&ip), &source) {
        stats.received(1);
    }
    ctx.finish_decoder(batch, &mut decoder, INPUT, Some(&ip), &source);
}

/// Binds `cfg.address` and receives until shutdown.
pub async fn run(
    cfg: SyslogUdpConfig,
    ctx: SourceContext,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CollectorError> {
    bus.ensure_topics().await?;
    SyslogUdpSource::bind(cfg, ctx).await?.run(bus, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  512: 0100007F:15AA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 31337 2 0000000000000000 0
  613: 0100007F:E4B1 00000000:0000 07 00000000:00001200 00:00000000 00000000     0        0 424242 2 0000000000000000 1873
";

    #[test]
    fn drops_are_read_from_the_row_of_the_socket_inode() {
        assert_eq!(drops_in_table(TABLE, 424242), Some(1873));
        assert_eq!(drops_in_table(TABLE, 31337), Some(0));
        assert_eq!(drops_in_table(TABLE, 4242), None);
        assert_eq!(drops_in_table("header only\n", 1), None);
        assert_eq!(drops_in_table("h\n 1: a b 07 x y z 0 0 77 2 p not-a-number\n", 77), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_bound_socket_has_a_readable_drop_counter() {
        let cfg = SyslogUdpConfig { address: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
        let src = SyslogUdpSource::bind(cfg, SourceContext::default()).await.unwrap();
        let inode = socket_inode(&src.socket).unwrap();
        assert_eq!(kernel_drops(inode), Some(0));
        assert!(src.drops.is_some());
    }
}
