//! Wiring the sensor library into `soc run` and `soc sensor`: files and interfaces in,
//! records out to the bus and/or an EVE file.

use crate::cli::SensorArgs;
use anyhow::Context;
use soc_bus::Bus;
use soc_model::Event;
use soc_sensor::capture::offline::{BATCH_RECORDS, open_capture, read_capture};
use soc_sensor::{EveWriter, LiveOptions, Sensor, SensorOptions};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What `soc run` tells its sensors.
#[derive(Clone, Debug)]
pub struct SensorRunOptions {
    pub sensor_name: String,
    pub segment: String,
    pub checksum_check: bool,
    /// TCP reassembly limits of each sensor instance (memcap already divided among them).
    pub stream: soc_sensor::app::stream::StreamConfig,
    /// The rule engine shared by every capture of the process (when there is no `rule_slot`).
    pub detector: Option<Arc<soc_sensor::detect::Detector>>,
    /// Reloadable rules: sensors take the set published here, and every later one.
    pub rule_slot: Option<Arc<soc_sensor::reload::RuleSlot>>,
    /// Parse the app layer of TCP sessions whose start was not seen.
    pub midstream: bool,
    /// Stream settings beyond the limits: one-sided sessions, urgent data, memcap policy.
    pub async_oneside: bool,
    pub urgent_oob: bool,
    pub memcap_policy: soc_sensor::options::ExceptionPolicy,
    /// Capture filter.
    pub bpf: Option<soc_sensor::capture::bpf::BpfFilter>,
    /// VLAN ids in the flow key.
    pub vlan_tracking: bool,
}

impl SensorRunOptions {
    pub fn sensor(&self) -> Sensor {
        let s = Sensor::new(self.to_options());
        match (&self.rule_slot, &self.detector) {
            (Some(slot), _) => s.with_rule_slot(slot.clone()),
            (None, Some(d)) => s.with_detector(d.clone()),
            (None, None) => s,
        }
    }

    pub fn to_options(&self) -> SensorOptions {
        SensorOptions {
            sensor_name: self.sensor_name.clone(),
            segment: self.segment.clone(),
            checksum_check: self.checksum_check,
            checksum_auto: true,
            stream: self.stream,
            midstream: self.midstream,
            async_oneside: self.async_oneside,
            urgent_oob: self.urgent_oob,
            reassembly_memcap_policy: self.memcap_policy,
            bpf: self.bpf.clone(),
            vlan_tracking: self.vlan_tracking,
            ..Default::default()
        }
    }
}

/// A flag that turns true when `stop` does (for blocking capture loops).
fn stop_flag(mut stop: watch::Receiver<bool>) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(*stop.borrow()));
    let f = flag.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        f.store(true, Ordering::Relaxed);
    });
    flag
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SinkError(String);

/// Where a sensor's records go.
struct Outputs {
    bus: Option<(Arc<dyn Bus>, tokio::runtime::Handle)>,
    eve: Option<EveWriter<Box<dyn std::io::Write + Send>>>,
    records: u64,
}

impl Outputs {
    fn send(&mut self, batch: Vec<Event>) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.records += batch.len() as u64;
        if let Some(w) = &mut self.eve {
            w.write_all(&batch).map_err(|e| SinkError(format!("cannot write EVE output: {e}")))?;
        }
        if let Some((bus, rt)) = &self.bus {
            let bus = bus.clone();
            // Waiting here is the backpressure: a slow bus slows the capture loop.
            rt.block_on(async move {
                soc_bus::with_backoff("publish", std::time::Duration::from_secs(3600), || {
                    soc_bus::publish_events(bus.as_ref(), &batch)
                })
                .await
            })
            .map_err(|e| SinkError(format!("cannot publish records: {e}")))?;
        }
        Ok(())
    }
}

/// Standard input as a capture stream, packets processed as they arrive. The capture
/// reader reads twice before it yields a packet (format detection, then the file header):
/// the first read returns exactly the file header (24 bytes for pcap, the section header
/// block for pcapng) and keeps what came with it for the next reads, so that no read waits
/// for data while packets that already arrived are held back.
struct StdinCapture {
    stdin: std::io::Stdin,
    pending: Vec<u8>,
    started: bool,
}

impl StdinCapture {
    /// Reads until `pending` holds `n` bytes or the input ends.
    fn fill(&mut self, n: usize) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        while self.pending.len() < n {
            match self.stdin.lock().read(&mut chunk) {
                Ok(0) => break,
                Ok(k) => self.pending.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Size of the file header at the start of `pending` (12 bytes of it are there).
    fn header_len(&self) -> usize {
        let p = &self.pending;
        if p.len() >= 12 && p[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            let len = [p[4], p[5], p[6], p[7]];
            let n =
                if p[8..12] == [0x4d, 0x3c, 0x2b, 0x1a] { u32::from_le_bytes(len) } else { u32::from_be_bytes(len) };
            (n as usize).clamp(28, 1 << 20)
        } else {
            24
        }
    }
}

impl std::io::Read for StdinCapture {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = if self.started {
            if self.pending.is_empty() {
                return self.stdin.lock().read(buf);
            }
            self.pending.len()
        } else {
            self.started = true;
            self.fill(12)?;
            let n = self.header_len();
            self.fill(n)?;
            n
        };
        let n = want.min(self.pending.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// The capture at `path`, or standard input for `-`.
pub fn open_input(path: &Path) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(StdinCapture { stdin: std::io::stdin(), pending: Vec::new(), started: false }));
    }
    Ok(open_capture(path)?)
}

/// Reads a capture through a sensor until it ends or `stop` is set; flushes every flow at
/// the end either way.
fn pcap_loop(path: &Path, mut sensor: Sensor, stop: &AtomicBool, out: &mut Outputs) -> anyhow::Result<String> {
    let input = open_input(path)?;
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH_RECORDS);
    let mut failed: Option<SinkError> = None;
    let mut stopped = false;
    let info = read_capture(path, input, |ts, link, frame| {
        if stop.load(Ordering::Relaxed) {
            stopped = true;
            return ControlFlow::Break(());
        }
        sensor.process(ts, link, frame, &mut batch);
        if batch.len() >= BATCH_RECORDS {
            sensor.publish_metrics();
            if let Err(e) = out.send(std::mem::take(&mut batch)) {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    sensor.flush_all(&mut batch);
    sensor.publish_metrics();
    out.send(batch)?;
    let st = sensor.stats();
    if let Some(err) = &info.error {
        tracing::warn!(path = %path.display(), error = %err, "capture ended early; what was read was processed");
    }
    Ok(format!(
        "pcap {}: {} packets{} ({} processed), {} flows, {} alerts, {} records{}",
        path.display(),
        info.packets,
        if stopped { " (stopped early)" } else { "" },
        st.packets,
        st.flows_created,
        st.records.alert,
        out.records,
        info.error.as_ref().map(|e| format!("; capture damaged: {e}")).unwrap_or_default()
    ))
}

/// Like [`pcap_loop`] with `n` worker threads (frames hashed by flow); their records come
/// back over a channel and go out from this thread, so outputs need not be shared.
fn pcap_loop_workers(
    path: &Path,
    n: usize,
    opts: &SensorRunOptions,
    stop: &AtomicBool,
    out: &mut Outputs,
) -> anyhow::Result<String> {
    let input = open_input(path)?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<Event>>();
    let sink = std::sync::Mutex::new(tx);
    let mut workers = soc_sensor::workers::Workers::new(
        n,
        |_| opts.sensor(),
        move |b| {
            let _ = sink.lock().unwrap_or_else(|p| p.into_inner()).send(b);
        },
    );
    let mut failed: Option<SinkError> = None;
    let mut stopped = false;
    let mut frames = 0u64;
    let info = read_capture(path, input, |ts, link, frame| {
        if stop.load(Ordering::Relaxed) {
            stopped = true;
            return ControlFlow::Break(());
        }
        workers.process(ts, link, frame);
        frames += 1;
        if frames.is_multiple_of(1024) {
            while let Ok(b) = rx.try_recv() {
                if let Err(e) = out.send(b) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    let stats = workers.finish().map_err(|e| anyhow::anyhow!(e))?;
    while let Ok(b) = rx.try_recv() {
        out.send(b)?;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(err) = &info.error {
        tracing::warn!(path = %path.display(), error = %err, "capture ended early; what was read was processed");
    }
    let flows: u64 = stats.iter().map(|s| s.flows_created).sum();
    let alerts: u64 = stats.iter().map(|s| s.records.alert).sum();
    let processed: u64 = stats.iter().map(|s| s.packets).sum();
    Ok(format!(
        "pcap {}: {} packets{} ({processed} processed) on {n} workers, {flows} flows, {alerts} alerts, {} records{}",
        path.display(),
        info.packets,
        if stopped { " (stopped early)" } else { "" },
        out.records,
        info.error.as_ref().map(|e| format!("; capture damaged: {e}")).unwrap_or_default()
    ))
}

/// `soc run --pcap FILE`: the file through a sensor onto the bus.
pub fn spawn_pcap(
    set: &mut JoinSet<anyhow::Result<String>>,
    path: PathBuf,
    opts: SensorRunOptions,
    bus: Arc<dyn Bus>,
    stop: watch::Receiver<bool>,
) {
    let rt = tokio::runtime::Handle::current();
    let flag = stop_flag(stop);
    set.spawn(async move {
        tokio::task::spawn_blocking(move || {
            let mut out = Outputs { bus: Some((bus, rt)), eve: None, records: 0 };
            pcap_loop(&path, opts.sensor(), &flag, &mut out).with_context(|| format!("pcap {}", path.display()))
        })
        .await
        .context("pcap task panicked")?
    });
}

/// `soc run --interface IF`: live capture onto the bus.
pub fn spawn_live(
    set: &mut JoinSet<anyhow::Result<String>>,
    interface: String,
    opts: SensorRunOptions,
    bus: Arc<dyn Bus>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Handle::current();
    let flag = stop_flag(stop);
    set.spawn(async move {
        tokio::task::spawn_blocking(move || {
            let mut out = Outputs { bus: Some((bus, rt)), eve: None, records: 0 };
            let live = LiveOptions::new(interface.clone());
            let st = soc_sensor::run_live_with(&live, opts.sensor(), &flag, |b| out.send(b))?;
            Ok(format!(
                "interface {interface}: {} packets, {} flows, {} records",
                st.packets, st.flows_created, out.records
            ))
        })
        .await
        .context("capture task panicked")?
    });
    Ok(())
}

/// `soc sensor`: offline (`--pcap`) like `suricata -r`, or live from the config.
pub async fn sensor_command(a: SensorArgs) -> anyhow::Result<ExitCode> {
    let file = match &a.config {
        Some(p) => Some(crate::config::load_sensor(p)?),
        None => None,
    };
    let name = a
        .sensor_name
        .clone()
        .or_else(|| file.as_ref().map(|f| f.sensor.name.clone()))
        .unwrap_or_else(|| "sensor".into());
    let segment = a
        .segment
        .clone()
        .or_else(|| file.as_ref().map(|f| f.sensor.segment.clone()))
        .unwrap_or_else(|| "default".into());
    let checksum_check = !a.no_checksum_check && file.as_ref().map(|f| f.sensor.checksum_check).unwrap_or(true);
    let rule_paths = if a.rules.is_empty() {
        file.as_ref().map(|f| f.sensor.rules.clone()).unwrap_or_default()
    } else {
        a.rules.clone()
    };
    // Like `suricata -r` without rules: no --rules and no `rules` in the config, no alerts.
    let rules = if rule_paths.is_empty() {
        tracing::info!("no rules given (--rules or [sensor] rules): flows and protocol records only");
        None
    } else {
        Some(Arc::new(crate::rules::SensorRules::load(&rule_paths, a.classification_config.as_deref())?))
    };
    let midstream = a.midstream || file.as_ref().is_some_and(|f| f.sensor.midstream);
    let bpf = match &a.bpf {
        Some(text) => {
            Some(soc_sensor::capture::bpf::BpfFilter::parse(text).map_err(|e| anyhow::anyhow!("--bpf {text:?}: {e}"))?)
        }
        None => file.as_ref().and_then(|f| f.sensor.bpf.clone()),
    };
    // The memcap is the whole sensor's: divided among the instances below.
    let stream = file.as_ref().map(|f| f.sensor.stream.config()).unwrap_or_default();
    let mut opts = SensorRunOptions {
        sensor_name: name,
        segment: segment.clone(),
        checksum_check,
        stream,
        detector: None,
        rule_slot: rules.as_ref().map(|r| r.slot()),
        midstream,
        async_oneside: file.as_ref().is_some_and(|f| f.sensor.stream.async_oneside),
        urgent_oob: file.as_ref().is_some_and(|f| f.sensor.stream.urgent_policy == crate::config::UrgentPolicy::Oob),
        memcap_policy: file.as_ref().map(|f| f.sensor.stream.memcap_policy).unwrap_or_default(),
        bpf,
        vlan_tracking: file.as_ref().is_none_or(|f| f.sensor.vlan_tracking),
    };

    let eve_path = a.eve.clone().or_else(|| file.as_ref().and_then(|f| f.output.eve.clone()));
    let eve: Option<EveWriter<Box<dyn std::io::Write + Send>>> = match &eve_path {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(EveWriter::new(Box::new(std::io::BufWriter::new(std::io::stdout())))),
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open EVE output {}", p.display()))?;
            Some(EveWriter::new(Box::new(std::io::BufWriter::with_capacity(1 << 20, f))))
        }
    };
    let bus = match file.as_ref().filter(|f| f.output.kafka).and_then(|f| f.kafka.clone()) {
        Some(k) => {
            let b: Arc<dyn Bus> = Arc::new(soc_bus::kafka::KafkaBus::connect(k)?);
            b.ensure_topics().await.context("cannot reach Kafka at start-up")?;
            Some((b, tokio::runtime::Handle::current()))
        }
        None => None,
    };
    if eve.is_none() && bus.is_none() {
        anyhow::bail!("no output: give --eve FILE (or `-` for stdout), or a --config with [output]");
    }
    if let Some(m) = file.as_ref().and_then(|f| f.metrics.clone()) {
        crate::components::serve_metrics(m.listen).await?;
    }
    let stop = crate::components::shutdown_on_signal();
    let flag = stop_flag(stop);
    let mut out = Outputs { bus, eve, records: 0 };

    if let Some(path) = a.pcap.clone() {
        let started = std::time::Instant::now();
        let workers = usize::from(a.workers);
        opts.stream = stream.per_instance(workers);
        // built before SIGHUP is watched: every reload from then on is a switch it logs
        let single = (workers == 1).then(|| opts.sensor());
        crate::rules::reload_on_sighup(rules)?;
        let (msg, mut out) = tokio::task::spawn_blocking(move || {
            let r = match single {
                Some(sensor) => pcap_loop(&path, sensor, &flag, &mut out),
                None => pcap_loop_workers(&path, workers, &opts, &flag, &mut out),
            };
            (r, out)
        })
        .await
        .context("sensor task panicked")?;
        if let Some(w) = &mut out.eve {
            w.flush().context("cannot flush EVE output")?;
        }
        let msg = msg?;
        eprintln!("{msg} in {:.2} s", started.elapsed().as_secs_f64());
        return Ok(ExitCode::SUCCESS);
    }

    // Live: --interface flags, or the config's interfaces (each with its segment).
    let mut ifaces: Vec<(String, String)> = a.interface.iter().map(|i| (i.clone(), segment.clone())).collect();
    if ifaces.is_empty()
        && let Some(f) = &file
    {
        ifaces = f
            .sensor
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.segment.clone().unwrap_or_else(|| f.sensor.segment.clone())))
            .collect();
    }
    if ifaces.is_empty() {
        anyhow::bail!("nothing to capture: give --pcap FILE, --interface IF, or a --config with [[sensor.interfaces]]");
    }
    opts.stream = stream.per_instance(ifaces.len());
    crate::rules::reload_on_sighup(rules)?;
    let out = Arc::new(std::sync::Mutex::new(out));
    let mut tasks = Vec::new();
    for (iface, seg) in ifaces {
        let mut o = opts.clone();
        o.segment = seg;
        let (flag, out) = (flag.clone(), out.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let live = LiveOptions::new(iface.clone());
            soc_sensor::run_live_with(&live, o.sensor(), &flag, |b| {
                out.lock().unwrap_or_else(|p| p.into_inner()).send(b)
            })
            .map(|st| format!("interface {iface}: {} packets, {} flows", st.packets, st.flows_created))
        }));
    }
    let mut result = Ok(ExitCode::SUCCESS);
    for t in tasks {
        match t.await.context("capture task panicked")? {
            Ok(msg) => eprintln!("{msg}"),
            Err(e) => {
                flag.store(true, Ordering::Relaxed);
                result = Err(anyhow::Error::from(e));
            }
        }
    }
    if let Some(w) = &mut out.lock().unwrap_or_else(|p| p.into_inner()).eve {
        w.flush().context("cannot flush EVE output")?;
    }
    result
}
