//! Live capture from a network interface (pnet datalink, promiscuous by default), feeding the
//! same [`Sensor::process`] as offline reading. A blocking loop that checks a stop flag at
//! least every `read_timeout`; timestamps are the wall clock at reception.

use crate::decode::LinkType;
use crate::error::SensorError;
use crate::options::SensorOptions;
use crate::sensor::Sensor;
use crate::stats::SensorStats;
use soc_model::{Event, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Settings of a live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    pub interface: String,
    /// Put the interface in promiscuous mode (needs CAP_NET_ADMIN).
    pub promiscuous: bool,
    /// Largest frame read (offloaded frames can exceed the MTU).
    pub read_buffer: usize,
    /// How often the loop wakes up without traffic (stop flag, flow timeouts, batches).
    pub read_timeout: Duration,
    /// Longest time records wait before being handed to the sink.
    pub batch_interval: Duration,
}

impl LiveOptions {
    pub fn new(interface: impl Into<String>) -> Self {
        LiveOptions {
            interface: interface.into(),
            promiscuous: true,
            read_buffer: 262_144,
            read_timeout: Duration::from_millis(200),
            batch_interval: Duration::from_secs(1),
        }
    }
}

/// Names of the interfaces that can be captured on.
pub fn list_interfaces() -> Vec<String> {
    pnet_datalink::interfaces().into_iter().map(|i| i.name).collect()
}

fn is_permission_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || matches!(e.raw_os_error(), Some(1) | Some(13))
}

/// Captures on `live.interface` until `stop` is set, handing records to `sink` in batches;
/// ends all flows on stop. Without privileges this fails at once with
/// [`SensorError::LivePermission`], which says CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous
/// mode) is needed.
pub fn run_live<E>(
    live: &LiveOptions,
    options: SensorOptions,
    stop: &AtomicBool,
    sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<SensorStats, SensorError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    run_live_with(live, Sensor::new(options), stop, sink)
}

/// [`run_live`] with a sensor the caller built (e.g. with a rule engine attached).
pub fn run_live_with<E>(
    live: &LiveOptions,
    mut sensor: Sensor,
    stop: &AtomicBool,
    mut sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<SensorStats, SensorError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == live.interface)
        .ok_or_else(|| SensorError::NoSuchInterface(live.interface.clone()))?;
    let cfg = pnet_datalink::Config {
        read_buffer_size: live.read_buffer,
        read_timeout: Some(live.read_timeout),
        promiscuous: live.promiscuous,
        ..Default::default()
    };
    let (_tx, mut rx) = match pnet_datalink::channel(&iface, cfg) {
        Ok(pnet_datalink::Channel::Ethernet(tx, rx)) => (tx, rx),
        Ok(_) => {
            return Err(SensorError::Live {
                interface: live.interface.clone(),
                reason: "unsupported channel type".into(),
            });
        }
        Err(e) if is_permission_error(&e) => {
            return Err(SensorError::LivePermission { interface: live.interface.clone(), source: e });
        }
        Err(e) => {
            return Err(SensorError::Live { interface: live.interface.clone(), reason: e.to_string() });
        }
    };
    tracing::info!(interface = %live.interface, promiscuous = live.promiscuous, "live capture started");
    // On loopback a packet socket sees every frame twice (sent and received); pnet does not
    // expose the packet type, so an immediate repeat of the same bytes is dropped there.
    let loopback = iface.is_loopback();
    let mut kernel_drops = crate::capture::ifdrops::InterfaceDrops::open(&live.interface);
    if kernel_drops.is_none() {
        tracing::warn!(interface = %live.interface, "no interface counters in sysfs: kernel drops are not counted");
    }
    let sensor_name = sensor.options().sensor_name.clone();
    let mut previous: Vec<u8> = Vec::new();
    let mut batch = Vec::new();
    let mut last_flush = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match rx.next() {
            Ok(frame) => {
                if loopback {
                    if frame == previous.as_slice() {
                        previous.clear();
                        continue;
                    }
                    previous.clear();
                    previous.extend_from_slice(frame);
                }
                sensor.process(Timestamp::now(), LinkType::Ethernet, frame, &mut batch)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                sensor.tick(Timestamp::now(), &mut batch);
            }
            Err(e) => {
                tracing::error!(interface = %live.interface, error = %e, "capture error");
                return Err(SensorError::Live { interface: live.interface.clone(), reason: e.to_string() });
            }
        }
        if last_flush.elapsed() >= live.batch_interval || batch.len() >= crate::capture::offline::BATCH_RECORDS {
            last_flush = Instant::now();
            sensor.tick(Timestamp::now(), &mut batch);
            sensor.publish_metrics();
            if let Some(d) = kernel_drops.as_mut() {
                publish_drops(d, &live.interface, &sensor_name);
            }
            if !batch.is_empty() {
                sink(std::mem::take(&mut batch)).map_err(|e| SensorError::Sink(Box::new(e)))?;
            }
        }
    }
    sensor.flush_all(&mut batch);
    sensor.publish_metrics();
    if let Some(d) = kernel_drops.as_mut() {
        let total = publish_drops(d, &live.interface, &sensor_name);
        tracing::info!(interface = %live.interface, kernel_drops = total, "kernel drops during the capture");
    }
    if !batch.is_empty() {
        sink(batch).map_err(|e| SensorError::Sink(Box::new(e)))?;
    }
    tracing::info!(interface = %live.interface, "live capture stopped");
    Ok(sensor.stats())
}

/// Adds new kernel drops of the interface to `soc_sensor_kernel_drops_total`; warns when
/// there are any. Returns the drops since the capture started.
fn publish_drops(d: &mut crate::capture::ifdrops::InterfaceDrops, interface: &str, sensor: &str) -> u64 {
    let (total, new) = d.poll();
    metrics::counter!("soc_sensor_kernel_drops_total", "sensor" => sensor.to_string(), "interface" => interface.to_string())
        .increment(new);
    if new > 0 {
        tracing::warn!(interface, new, total, "the kernel dropped frames on the capture interface");
    }
    total
}
