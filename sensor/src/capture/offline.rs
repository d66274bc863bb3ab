//! Capture files: pcap (either byte order, micro- or nanosecond timestamps) and pcapng
//! (several interfaces and link types), plain, zstd- or gzip-compressed (detected by magic).

use crate::decode::LinkType;
use crate::error::SensorError;
use crate::options::SensorOptions;
use crate::sensor::Sensor;
use crate::stats::SensorStats;
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use soc_model::{Event, Timestamp};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const INITIAL_BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 256 << 20;
/// Records handed to the sink at once (at most; a batch is also cut every 65,536 packets).
pub const BATCH_RECORDS: usize = 4096;
const BATCH_PACKETS: u64 = 65536;

/// What reading a capture file found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureInfo {
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Set when the file ended badly (truncated record, corrupt block): what was read before
    /// is still processed.
    pub error: Option<String>,
}

/// Opens a capture, transparently decompressing zstd.
pub fn open_capture(path: &Path) -> Result<Box<dyn Read + Send>, SensorError> {
    let mut f = File::open(path).map_err(|source| SensorError::Open { path: path.to_path_buf(), source })?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(SensorError::Read { path: path.to_path_buf(), source });
            }
        }
    }
    f.seek(SeekFrom::Start(0)).map_err(|source| SensorError::Read { path: path.to_path_buf(), source })?;
    if n >= 2 && magic[..2] == GZIP_MAGIC {
        let dec = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, f));
        return Ok(Box::new(FillReader(dec)));
    }
    if n == 4 && magic == ZSTD_MAGIC {
        let dec = zstd::stream::read::Decoder::new(f)
            .map_err(|source| SensorError::Read { path: path.to_path_buf(), source })?;
        Ok(Box::new(FillReader(dec)))
    } else {
        Ok(Box::new(FillReader(BufReader::with_capacity(1 << 16, f))))
    }
}

/// A reader whose `read` fills the buffer unless the input ends (the pcap reader decides
/// "not a capture" from its first read, and refills assume full reads).
pub struct FillReader<R>(pub R);

impl<R: Read> Read for FillReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if n > 0 {
                        break;
                    }
                    return Err(e);
                }
            }
        }
        Ok(n)
    }
}

struct Iface {
    link: LinkType,
    resolution: u64,
    offset: i64,
}

/// Reads every packet of a capture stream, calling `on_packet(ts, link, frame)`; stop early by
/// returning `ControlFlow::Break`. A damaged file ends the read with `CaptureInfo::error` set.
pub fn read_capture<R: Read + Send>(
    path: &Path,
    input: R,
    mut on_packet: impl FnMut(Timestamp, LinkType, &[u8]) -> ControlFlow<()>,
) -> Result<CaptureInfo, SensorError> {
    let mut info = CaptureInfo::default();
    let mut reader = match pcap_parser::create_reader(INITIAL_BUFFER, input) {
        Ok(r) => r,
        Err(PcapError::Eof) => {
            return Err(SensorError::NotACapture { path: path.to_path_buf(), reason: "empty file".into() });
        }
        Err(e) => {
            return Err(SensorError::NotACapture { path: path.to_path_buf(), reason: format!("{e:?}") });
        }
    };
    let mut capacity = INITIAL_BUFFER;
    let mut legacy_link = LinkType::Ethernet;
    let mut nanos = false;
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut last_ts = Timestamp::from_unix_micros(0);
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                let mut packet: Option<(Timestamp, LinkType, &[u8])> = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_link = LinkType::from_dlt(h.network.0 as u32);
                        nanos = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let frac = if nanos { b.ts_usec / 1000 } else { b.ts_usec };
                        let ts = Timestamp::from_secs_micros(b.ts_sec as i64, frac);
                        packet = Some((ts, legacy_link, b.data));
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => ifaces.push(Iface {
                        link: LinkType::from_dlt(idb.linktype.0 as u32),
                        resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                        offset: idb.ts_offset(),
                    }),
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (link, res, off) = ifaces
                            .get(epb.if_id as usize)
                            .map(|i| (i.link, i.resolution, i.offset))
                            .unwrap_or((LinkType::Ethernet, 1_000_000, 0));
                        let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                        let secs = (raw / res) as i64 + off;
                        let frac = raw % res;
                        let micros = (frac as u128 * 1_000_000 / res as u128) as u32;
                        let ts = Timestamp::from_secs_micros(secs, micros);
                        let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                        packet = Some((ts, link, data));
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let link = ifaces.first().map(|i| i.link).unwrap_or(LinkType::Ethernet);
                        let data = &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                        packet = Some((last_ts, link, data));
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                let mut stop = false;
                if let Some((ts, link, data)) = packet {
                    info.packets += 1;
                    info.bytes += data.len() as u64;
                    info.first_ts.get_or_insert(ts);
                    info.last_ts = Some(ts);
                    last_ts = ts;
                    stop = on_packet(ts, link, data).is_break();
                }
                reader.consume(offset);
                if stop {
                    break;
                }
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    info.error = Some(format!("read error: {e:?}"));
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                if capacity >= MAX_BUFFER || !reader.grow(capacity * 2) {
                    info.error = Some(format!("record larger than {capacity} bytes (corrupt capture?)"));
                    break;
                }
                capacity *= 2;
            }
            Err(PcapError::UnexpectedEof) => {
                info.error = Some("capture truncated: last record incomplete".into());
                break;
            }
            Err(e) => {
                info.error = Some(format!("corrupt capture after {} packets: {e:?}", info.packets));
                break;
            }
        }
    }
    Ok(info)
}

/// Result of [`run_offline`].
#[derive(Clone, Debug)]
pub struct OfflineSummary {
    pub path: PathBuf,
    pub capture: CaptureInfo,
    pub stats: SensorStats,
    /// Records handed to the sink.
    pub records: u64,
    pub elapsed: Duration,
}

impl OfflineSummary {
    /// Packets per second of wall-clock time.
    pub fn packets_per_sec(&self) -> f64 {
        self.capture.packets as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs a capture file through a new [`Sensor`], handing records to `sink` in batches
/// (at most [`BATCH_RECORDS`] at once), then ends all flows (`reason: "shutdown"`).
///
/// A damaged capture is not an error: what could be read is processed and
/// `summary.capture.error` says what went wrong. Errors are: the file cannot be opened or
/// is not a capture, or the sink failed (processing stops there).
pub fn run_offline<E>(
    path: impl AsRef<Path>,
    options: SensorOptions,
    mut sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<OfflineSummary, SensorError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let path = path.as_ref();
    let started = Instant::now();
    let input = open_capture(path)?;
    let mut sensor = Sensor::new(options);
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH_RECORDS);
    let mut records = 0u64;
    let mut sink_err: Option<E> = None;
    let mut since_flush = 0u64;
    let capture = read_capture(path, input, |ts, link, frame| {
        sensor.process(ts, link, frame, &mut batch);
        since_flush += 1;
        if batch.len() >= BATCH_RECORDS || since_flush >= BATCH_PACKETS {
            since_flush = 0;
            sensor.publish_metrics();
            if !batch.is_empty() {
                records += batch.len() as u64;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS));
                if let Err(e) = sink(full) {
                    sink_err = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = sink_err {
        return Err(SensorError::Sink(Box::new(e)));
    }
    if let Some(err) = &capture.error {
        tracing::warn!(path = %path.display(), error = %err, packets = capture.packets, "capture ended early");
    }
    sensor.flush_all(&mut batch);
    while !batch.is_empty() {
        let rest = batch.split_off(batch.len().min(BATCH_RECORDS));
        let full = std::mem::replace(&mut batch, rest);
        records += full.len() as u64;
        sink(full).map_err(|e| SensorError::Sink(Box::new(e)))?;
    }
    sensor.publish_metrics();
    let stats = sensor.stats();
    let elapsed = started.elapsed();
    tracing::info!(
        path = %path.display(),
        packets = capture.packets,
        records,
        flows = stats.flows_created,
        invalid = stats.invalid,
        secs = elapsed.as_secs_f64(),
        "capture processed"
    );
    Ok(OfflineSummary { path: path.to_path_buf(), capture, stats, records, elapsed })
}

/// Runs a capture and returns all records in memory (convenient for tests and small files).
pub fn process_file(
    path: impl AsRef<Path>,
    options: SensorOptions,
) -> Result<(Vec<Event>, OfflineSummary), SensorError> {
    let mut all = Vec::new();
    let summary = run_offline(path, options, |mut b| {
        all.append(&mut b);
        Ok::<(), std::convert::Infallible>(())
    })?;
    Ok((all, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, Host};

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("soc-sensor-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn frames() -> Vec<(i64, Vec<u8>)> {
        let c = Host::v4([10, 0, 0, 1]);
        let s = Host::v4([10, 0, 0, 53]);
        synth::timed(
            vec![
                synth::udp_frame(&c, 40000, &s, 53, &synth::dns_query(1, "example.org", 1)),
                synth::udp_frame(&s, 53, &c, 40000, &synth::dns_response(1, "example.org", 1, 0, &[])),
            ],
            1_600_000_000_123_456,
            1000,
        )
    }

    fn count(path: &Path) -> (Vec<Event>, OfflineSummary) {
        process_file(path, SensorOptions::default()).unwrap()
    }

    #[test]
    fn plain_zstd_and_gzip_pcaps() {
        let pcap = synth::pcap_bytes(1, &frames());
        let (ev, s) = count(&tmp("a.pcap", &pcap));
        assert_eq!(s.capture.packets, 2);
        assert_eq!(ev.iter().filter(|e| e.event_type.as_str() == "dns").count(), 2);
        assert_eq!(ev[0].timestamp.unix_micros(), 1_600_000_000_123_456);
        let z = zstd::encode_all(&pcap[..], 3).unwrap();
        let (ev2, _) = count(&tmp("a.pcap.zst", &z));
        assert_eq!(ev2, ev);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &pcap).unwrap();
        let (ev3, _) = count(&tmp("a.pcap.gz", &gz.finish().unwrap()));
        assert_eq!(ev3, ev);
    }

    /// The same capture as big-endian with nanosecond timestamps.
    #[test]
    fn big_endian_nanosecond_pcap() {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b23c4du32.to_be_bytes());
        v.extend_from_slice(&2u16.to_be_bytes());
        v.extend_from_slice(&4u16.to_be_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_be_bytes());
        v.extend_from_slice(&1u32.to_be_bytes());
        for (ts, f) in frames() {
            v.extend_from_slice(&((ts / 1_000_000) as u32).to_be_bytes());
            v.extend_from_slice(&(((ts % 1_000_000) * 1000 + 999) as u32).to_be_bytes());
            v.extend_from_slice(&(f.len() as u32).to_be_bytes());
            v.extend_from_slice(&(f.len() as u32).to_be_bytes());
            v.extend_from_slice(&f);
        }
        let (ev, s) = count(&tmp("be.pcap", &v));
        assert_eq!(s.capture.packets, 2);
        assert_eq!(ev[0].timestamp.unix_micros(), 1_600_000_000_123_456);
    }

    fn pcapng_block(t: u32, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        let mut v = t.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&b);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    /// pcapng with two interfaces: Ethernet (µs) and raw IP with nanosecond resolution.
    #[test]
    fn pcapng_with_two_interfaces() {
        let mut v = Vec::new();
        let mut shb = 0x1a2b3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        v.extend(pcapng_block(0x0a0d0d0a, &shb));
        let mut idb0 = 1u16.to_le_bytes().to_vec();
        idb0.extend_from_slice(&[0, 0]);
        idb0.extend_from_slice(&65535u32.to_le_bytes());
        v.extend(pcapng_block(1, &idb0));
        let mut idb1 = 101u16.to_le_bytes().to_vec();
        idb1.extend_from_slice(&[0, 0]);
        idb1.extend_from_slice(&65535u32.to_le_bytes());
        // if_tsresol = 9, end of options.
        idb1.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        v.extend(pcapng_block(1, &idb1));
        let fr = frames();
        let epb = |if_id: u32, ts: u64, data: &[u8]| {
            let mut b = if_id.to_le_bytes().to_vec();
            b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            b.extend_from_slice(&(ts as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
            pcapng_block(6, &b)
        };
        v.extend(epb(0, fr[0].0 as u64, &fr[0].1));
        v.extend(epb(1, fr[1].0 as u64 * 1000, &fr[1].1[14..]));
        let (ev, s) = count(&tmp("two.pcapng", &v));
        assert_eq!(s.capture.packets, 2);
        let dns: Vec<_> = ev.iter().filter(|e| e.event_type.as_str() == "dns").collect();
        assert_eq!(dns.len(), 2);
        assert_eq!(dns[1].timestamp.unix_micros(), fr[1].0);
        assert_eq!(dns[0].flow_id, dns[1].flow_id);
    }

    #[test]
    fn broken_captures_end_with_an_error_or_summary() {
        let pcap = synth::pcap_bytes(1, &frames());
        // Empty and garbage files are not captures.
        assert!(matches!(
            process_file(tmp("empty.pcap", b""), SensorOptions::default()),
            Err(SensorError::NotACapture { .. })
        ));
        assert!(matches!(
            process_file(tmp("junk.pcap", b"this is not a capture at all, just text"), SensorOptions::default()),
            Err(SensorError::NotACapture { .. })
        ));
        assert!(matches!(
            process_file("/nonexistent/soc-sensor.pcap", SensorOptions::default()),
            Err(SensorError::Open { .. })
        ));
        // Cut anywhere: never a panic; records of complete packets are kept.
        for cut in (24..pcap.len()).step_by(7) {
            let (_, s) = count(&tmp("cut.pcap", &pcap[..cut]));
            assert!(s.capture.packets <= 2);
            if cut < pcap.len() && s.capture.packets < 2 && cut > 24 + 16 {
                assert!(s.capture.error.is_some() || s.capture.packets == 1, "cut {cut}");
            }
        }
        // A record claiming 3 GB.
        let mut huge = pcap[..24].to_vec();
        huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xbf, 0xff, 0xff, 0xff, 0xbf]);
        huge.extend_from_slice(&[0u8; 100]);
        let (_, s) = count(&tmp("huge.pcap", &huge));
        assert!(s.capture.error.is_some());
        // Corrupt zstd stream after a valid start.
        let mut z = zstd::encode_all(&pcap[..], 3).unwrap();
        let n = z.len();
        z.truncate(n - 5);
        let r = process_file(tmp("cut.pcap.zst", &z), SensorOptions::default());
        assert!(r.is_ok() || r.is_err());
    }

    #[test]
    fn sink_errors_stop_processing() {
        let pcap = synth::pcap_bytes(1, &frames());
        let p = tmp("sink.pcap", &pcap);
        let r = run_offline(&p, SensorOptions::default(), |_| Err(std::io::Error::other("disk full")));
        assert!(matches!(r, Err(SensorError::Sink(_))));
    }
}
