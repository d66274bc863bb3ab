//! EVE JSON output: one JSON object per line, fields in the model's (Suricata-like) order.

use soc_model::Event;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes records as EVE JSON lines.
pub struct EveWriter<W: Write> {
    out: BufWriter<W>,
    written: u64,
}

impl EveWriter<File> {
    /// Creates (truncates) an EVE file.
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(EveWriter::new(File::create(path)?))
    }
}

impl<W: Write> EveWriter<W> {
    pub fn new(w: W) -> Self {
        EveWriter { out: BufWriter::with_capacity(1 << 16, w), written: 0 }
    }
    pub fn write(&mut self, e: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }
    pub fn write_all(&mut self, events: &[Event]) -> std::io::Result<()> {
        for e in events {
            self.write(e)?;
        }
        Ok(())
    }
    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Writes `events` to an EVE file at `path` (created or truncated).
pub fn write_eve(path: impl AsRef<Path>, events: &[Event]) -> std::io::Result<()> {
    let mut w = EveWriter::create(path)?;
    w.write_all(events)?;
    w.flush()
}
