//! A bake's log on its way to the store: Packer's machine-readable lines become the text a
//! person reads (Rosco's `logsContent`), results are folded into an [`Outcome`], and the text is
//! appended to the store in chunks — at most every 100 ms — capped at `kiln.logs.maxBytes`.
//! The offset of the last line stored is kept in the run dir (`consumed`), so a kiln that
//! re-attaches to a run after a restart continues the log without repeating it.

use crate::packer::output::{Outcome, human_text, parse_line};
use crate::store::{BakeStore, StoreResult};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub(super) struct LogSink {
    store: Arc<dyn BakeStore>,
    id: String,
    consumed_file: PathBuf,
    buf: String,
    /// Raw output offset after the last line in `buf`.
    pending_offset: u64,
    stored_bytes: u64,
    max_bytes: u64,
    truncated: bool,
    last_flush: Instant,
    /// Whether the last flush failed (so an outage is warned about once).
    failing: bool,
    pub outcome: Outcome,
    pub last_text: Option<String>,
}

impl LogSink {
    pub fn new(store: Arc<dyn BakeStore>, id: &str, run_dir: PathBuf, max_bytes: u64) -> Self {
        let stored_bytes = store.read_log(id).map(|l| l.len() as u64).unwrap_or(0);
        LogSink {
            store,
            id: id.to_string(),
            consumed_file: run_dir.join("consumed"),
            buf: String::new(),
            pending_offset: 0,
            stored_bytes,
            max_bytes,
            truncated: false,
            last_flush: Instant::now(),
            failing: false,
            outcome: Outcome::default(),
            last_text: None,
        }
    }

    /// Where a re-attached run continues: the raw offset of the last line already stored.
    pub fn consumed_offset(run_dir: &std::path::Path) -> u64 {
        std::fs::read_to_string(run_dir.join("consumed"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Feeds a line already stored before a restart: results only, no log text.
    pub fn replay(&mut self, raw: &str) {
        if let Some(event) = parse_line(raw) {
            self.outcome.feed(&event);
        }
    }

    /// Feeds one raw line of Packer output ending at `offset`.
    pub fn line(&mut self, raw: &str, offset: u64) {
        let text = match parse_line(raw) {
            Some(event) => {
                self.outcome.feed(&event);
                human_text(&event)
            }
            None => Some(raw.to_string()),
        };
        self.pending_offset = offset;
        if let Some(text) = text {
            if !text.trim().is_empty() {
                self.last_text = Some(text.trim().to_string());
            }
            self.note(&text);
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY || self.buf.len() > 64 * 1024 {
            self.flush();
        }
    }

    /// Adds kiln's own line to the log.
    pub fn note(&mut self, text: &str) {
        if self.truncated {
            return;
        }
        let len = (text.len() + 1) as u64;
        if self.stored_bytes + self.buf.len() as u64 + len > self.max_bytes {
            self.truncated = true;
            self.buf.push_str(&format!(
                "kiln: log truncated at {} bytes (kiln.logs.maxBytes); the bake goes on\n",
                self.max_bytes
            ));
            return;
        }
        self.buf.push_str(text);
        self.buf.push('\n');
    }

    /// Writes what is buffered to the store, then records how far the raw output is stored.
    /// On failure the buffer is kept for the next flush (one warning per outage).
    pub fn flush(&mut self) {
        match self.try_flush() {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(bake = %self.id, error = %e, "could not store log lines; will retry");
                }
            }
        }
    }

    /// [`LogSink::flush`], saying whether everything buffered is stored now.
    pub fn try_flush(&mut self) -> StoreResult<()> {
        self.last_flush = Instant::now();
        if !self.buf.is_empty() {
            self.store.append_log(&self.id, &self.buf)?;
            self.stored_bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        let _ = std::fs::write(&self.consumed_file, self.pending_offset.to_string());
        Ok(())
    }
}
