//! File input: follows a log file like `tail -F`, through rotation, and remembers where it
//! stopped.
//!
//! * Lines are cut at `\n` (a trailing `\r` is dropped) and decoded with the input's
//!   [`Format`](crate::parse::Format) by a [`Decoder`]: audit records are joined into events,
//!   W3C `#Fields:` directives followed. A line longer than `max_line` is dead-lettered with
//!   its first `max_line` bytes; the rest of it is skipped.
//! * **Position**: after every published batch the offset just past its last line is written
//!   (atomically: temporary file, then rename) to the state file with the file's device and
//!   inode. A restart resumes there: nothing published twice, nothing skipped. A crash between
//!   publishing and writing the state re-sends at most that one batch (the store deduplicates
//!   records by id). Audit records still waiting for the rest of their event when the process
//!   dies are lost with it; a clean shutdown publishes them.
//! * **Rotation by rename** (`mv app.log app.log.1; touch app.log`): at end of file the input
//!   notices that the path names another inode, reads what is left of the old file (its last
//!   line even without `\n`), then reads the new file from its start. If the process was down
//!   during the rotation, the old file is found again by its inode among the siblings whose
//!   name starts with the file's name (`app.log.1`, `app.log-20240615`) and finished first.
//! * **Truncation** (`copytruncate`, `> app.log`): a file shorter than the position is read
//!   again from its start.
//! * **Back-fill**: `start_at = "beginning"` reads a file without a saved position from its
//!   start (default `end`: only what is written from now on); `stop_at_eof = true` stops at
//!   the end of the file (one-shot import).

use super::stopped;
use crate::config::{FileConfig, StartAt};
use crate::error::CollectorError;
use crate::parse::{Decoder, ParseError};
use crate::sink::{Batch, SourceContext, flush};
use crate::stats::InputStats;
use serde::{Deserialize, Serialize};
use soc_bus::Bus;
use soc_model::DeadLetter;
use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

/// Input name (`log.input`, metrics label, dead-letter source prefix).
pub const INPUT: &str = "file";

const READ_BUF: usize = 256 * 1024;

/// Where a file input stopped: which file (device and inode) and how far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// Reads a state file; `None` if there is none (or it cannot be read: logged).
pub fn load_position(path: &Path) -> Option<Position> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(input = INPUT, state = %path.display(), error = %e, "unreadable state file; ignored");
            None
        }
    }
}

async fn save_position(path: &Path, pos: Position) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec(&pos).map_err(std::io::Error::other)?;
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, path).await
}

/// The state file of `log_path` under `state_dir`: the path with every character other than
/// letters, digits, `.` and `-` replaced by `_`, plus `.pos`.
pub fn state_file_for(state_dir: &Path, log_path: &Path) -> PathBuf {
    let name: String = log_path
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    state_dir.join(format!("{name}.pos"))
}

/// One followed file.
pub struct FileSource {
    cfg: FileConfig,
    state: PathBuf,
    ctx: Arc<SourceContext>,
    stats: Arc<InputStats>,
}

/// The file being read.
struct Open {
    file: tokio::fs::File,
    dev: u64,
    ino: u64,
    /// Bytes read so far (the file offset of `buf`'s end).
    read: u64,
    /// Offset just past the last line taken into the batch.
    taken: u64,
    /// An incomplete last line.
    buf: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// This is an old (rotated) file: at its end, continue with the file at the path.
    draining: bool,
    /// The position last written to the state file.
    saved: Option<Position>,
}

enum Step {
    Data,
    Eof,
}

impl FileSource {
    /// A source for `cfg.path`, remembering its position in `state`.
    pub fn new(cfg: FileConfig, state: PathBuf, ctx: SourceContext) -> Self {
        FileSource { cfg, state, ctx: Arc::new(ctx), stats: Arc::new(InputStats::new(INPUT)) }
    }

    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    /// Follows the file until shutdown (or its end, with `stop_at_eof`).
    pub async fn run(self, bus: Arc<dyn Bus>, mut shutdown: watch::Receiver<bool>) -> Result<(), CollectorError> {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms.max(1));
        let source = format!("{INPUT} {}", self.cfg.path.display());
        let mut decoder = Decoder::new(self.cfg.format);
        let mut batch = Batch::default();
        let mut buf = vec![0u8; READ_BUF];
        let mut cur: Option<Open> = None;
        let mut idle_polls = 0u32;
        tracing::info!(input = INPUT, path = %self.cfg.path.display(), state = %self.state.display(), "following");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let Some(open) = cur.as_mut() else {
                match self.open_initial().await {
                    Ok(Some(o)) => {
                        cur = Some(o);
                        continue;
                    }
                    Ok(None) if self.cfg.stop_at_eof => break,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(input = INPUT, path = %self.cfg.path.display(), error = %e, "cannot open"),
                }
                tokio::select! {
                    _ = stopped(&mut shutdown) => break,
                    _ = tokio::time::sleep(poll) => continue,
                }
            };
            let step = match self.read_some(open, &mut buf, &mut batch, &mut decoder, &source, &bus).await {
                Ok(s) => s,
                Err(e) => return Err(e),
            };
            if let Step::Data = step {
                idle_polls = 0;
                continue;
            }
            // End of file: publish what is held, then look at the path.
            self.publish(open, &mut batch, &bus).await?;
            idle_polls += 1;
            if idle_polls >= 2 && decoder.pending() > 0 {
                self.ctx.finish_decoder(&mut batch, &mut decoder, INPUT, None, &source);
                self.publish(open, &mut batch, &bus).await?;
            }
            if self.cfg.stop_at_eof && !open.draining {
                self.take_partial(open, &mut batch, &mut decoder, &source);
                self.ctx.finish_decoder(&mut batch, &mut decoder, INPUT, None, &source);
                self.publish(open, &mut batch, &bus).await?;
                break;
            }
            match tokio::fs::metadata(&self.cfg.path).await {
                Ok(m) if (m.dev(), m.ino()) != (open.dev, open.ino) || open.draining => {
                    if !open.draining {
                        // Renamed away; something may have been written since our last read.
                        while let Step::Data =
                            self.read_some(open, &mut buf, &mut batch, &mut decoder, &source, &bus).await?
                        {
                        }
                    }
                    self.take_partial(open, &mut batch, &mut decoder, &source);
                    self.publish(open, &mut batch, &bus).await?;
                    tracing::info!(input = INPUT, path = %self.cfg.path.display(), "rotated; reading the new file");
                    match self.open_at(0).await {
                        Ok(o) => {
                            let mut o = o;
                            self.save(&mut o).await;
                            cur = Some(o);
                            idle_polls = 0;
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(input = INPUT, path = %self.cfg.path.display(), error = %e, "cannot open");
                            cur = None;
                        }
                    }
                }
                Ok(m) if m.len() < open.read => {
                    tracing::warn!(
                        input = INPUT,
                        path = %self.cfg.path.display(),
                        size = m.len(),
                        position = open.read,
                        "file truncated; reading it again from the start"
                    );
                    open.file.seek(SeekFrom::Start(0)).await.map_err(|e| self.io(e))?;
                    open.read = 0;
                    open.taken = 0;
                    open.buf.clear();
                    open.skipping = false;
                    self.save(open).await;
                    continue;
                }
                Ok(m) => self.lag(m.len().saturating_sub(open.taken)),
                // Renamed away and not created again yet: keep the old file open.
                Err(_) => {}
            }
            tokio::select! {
                _ = stopped(&mut shutdown) => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        if let Some(open) = cur.as_mut() {
            self.ctx.finish_decoder(&mut batch, &mut decoder, INPUT, None, &source);
            self.publish(open, &mut batch, &bus).await?;
        }
        tracing::info!(input = INPUT, path = %self.cfg.path.display(), counts = ?self.stats.snapshot(), "stopped");
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> CollectorError {
        CollectorError::Io { input: INPUT, source }
    }

    fn lag(&self, bytes: u64) {
        metrics::gauge!("soc_collector_lag_bytes", "input" => INPUT, "path" => self.cfg.path.display().to_string())
            .set(bytes as f64);
    }

    /// Opens the file at the path at `offset`.
    async fn open_at(&self, offset: u64) -> std::io::Result<Open> {
        let mut file = tokio::fs::File::open(&self.cfg.path).await?;
        let m = file.metadata().await?;
        let offset = offset.min(m.len());
        file.seek(SeekFrom::Start(offset)).await?;
        Ok(Open {
            file,
            dev: m.dev(),
            ino: m.ino(),
            read: offset,
            taken: offset,
            buf: Vec::new(),
            skipping: false,
            draining: false,
            saved: None,
        })
    }

    /// The first file to read: the saved position (or the rotated file it names), or the
    /// start or end of the file. `None` while the file does not exist.
    async fn open_initial(&self) -> std::io::Result<Option<Open>> {
        let meta = match tokio::fs::metadata(&self.cfg.path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let saved = load_position(&self.state);
        let open = match saved {
            Some(p) if (p.dev, p.ino) == (meta.dev(), meta.ino()) => {
                if meta.len() < p.offset {
                    tracing::warn!(input = INPUT, path = %self.cfg.path.display(), "file shorter than the saved position; reading it from the start");
                    self.open_at(0).await?
                } else {
                    self.open_at(p.offset).await?
                }
            }
            Some(p) => match self.find_rotated(p).await {
                Some((path, len)) if len > p.offset => {
                    tracing::info!(input = INPUT, old = %path.display(), "rotated while stopped; finishing the old file first");
                    let mut file = tokio::fs::File::open(&path).await?;
                    file.seek(SeekFrom::Start(p.offset)).await?;
                    Open {
                        file,
                        dev: p.dev,
                        ino: p.ino,
                        read: p.offset,
                        taken: p.offset,
                        buf: Vec::new(),
                        skipping: false,
                        draining: true,
                        saved: Some(p),
                    }
                }
                _ => self.open_at(0).await?,
            },
            None => match self.cfg.start_at {
                StartAt::Beginning => self.open_at(0).await?,
                StartAt::End => self.open_at(meta.len()).await?,
            },
        };
        let mut open = open;
        self.save(&mut open).await;
        Ok(Some(open))
    }

    /// A sibling of the file (name starting with the file's name) with the saved inode.
    async fn find_rotated(&self, p: Position) -> Option<(PathBuf, u64)> {
        let dir = match self.cfg.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self.cfg.path.file_name()?.to_string_lossy().into_owned();
        let mut rd = tokio::fs::read_dir(&dir).await.ok()?;
        while let Ok(Some(e)) = rd.next_entry().await {
            if !e.file_name().to_string_lossy().starts_with(&name) {
                continue;
            }
            if let Ok(m) = e.metadata().await
                && (m.dev(), m.ino()) == (p.dev, p.ino)
            {
                return Some((e.path(), m.len()));
            }
        }
        None
    }

    /// Reads one chunk and takes its complete lines.
    async fn read_some(
        &self,
        open: &mut Open,
        buf: &mut [u8],
        batch: &mut Batch,
        decoder: &mut Decoder,
        source: &str,
        bus: &Arc<dyn Bus>,
    ) -> Result<Step, CollectorError> {
        let n = open.file.read(buf).await.map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(Step::Eof);
        }
        self.stats.bytes(n);
        let chunk = &buf[..n];
        let mut start = 0;
        while let Some(nl) = chunk[start..].iter().position(|c| *c == b'\n') {
            let end = start + nl;
            let line_end = open.read + end as u64 + 1;
            if open.skipping {
                open.skipping = false;
            } else if open.buf.is_empty() {
                self.take_line(&chunk[start..end], batch, decoder, source);
            } else {
                let mut line = std::mem::take(&mut open.buf);
                line.extend_from_slice(&chunk[start..end]);
                self.take_line(&line, batch, decoder, source);
            }
            open.taken = line_end;
            start = end + 1;
            if batch.len() >= self.ctx.batch_size {
                self.publish(open, batch, bus).await?;
            }
        }
        let rest = &chunk[start..];
        if !open.skipping {
            open.buf.extend_from_slice(rest);
            if open.buf.len() > self.cfg.max_line {
                self.stats.received(1);
                let reason = ParseError::TooLong { len: open.buf.len(), max: self.cfg.max_line }.to_string();
                batch.dead_letters.push(DeadLetter::new(source, reason, &open.buf[..self.cfg.max_line]));
                open.buf.clear();
                open.skipping = true;
            }
        }
        open.read += n as u64;
        if open.skipping {
            // The skipped bytes are consumed: a restart must not read them as a line.
            open.taken = open.read;
        }
        Ok(Step::Data)
    }

    fn take_line(&self, line: &[u8], batch: &mut Batch, decoder: &mut Decoder, source: &str) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.cfg.max_line {
            self.stats.received(1);
            let reason = ParseError::TooLong { len: line.len(), max: self.cfg.max_line }.to_string();
            batch.dead_letters.push(DeadLetter::new(source, reason, &line[..self.cfg.max_line]));
            return;
        }
        if self.ctx.accept_decoded(batch, decoder, line, INPUT, None, source) {
            self.stats.received(1);
        }
    }

    /// The last line of a file that will not grow any more, even without its `\n`.
    fn take_partial(&self, open: &mut Open, batch: &mut Batch, decoder: &mut Decoder, source: &str) {
        if !open.buf.is_empty() {
            let line = std::mem::take(&mut open.buf);
            self.take_line(&line, batch, decoder, source);
        }
        open.taken = open.read;
        open.skipping = false;
    }

    /// Publishes the batch and records the position.
    async fn publish(&self, open: &mut Open, batch: &mut Batch, bus: &Arc<dyn Bus>) -> Result<(), CollectorError> {
        if !batch.is_empty() {
            flush(&**bus, batch, &self.ctx, &self.stats).await?;
        }
        self.save(open).await;
        Ok(())
    }

    async fn save(&self, open: &mut Open) {
        let pos = Position { dev: open.dev, ino: open.ino, offset: open.taken };
        if open.saved == Some(pos) {
            return;
        }
        match save_position(&self.state, pos).await {
            Ok(()) => open.saved = Some(pos),
            Err(e) => {
                tracing::warn!(input = INPUT, state = %self.state.display(), error = %e, "cannot write the state file")
            }
        }
    }
}
