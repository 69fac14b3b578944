//! A bake's log on its way to the store: Packer's machine-readable lines become the text a
//! person reads (Rosco's `logsContent`), results are folded into an [`Outcome`], and the text is
//! appended to the store in chunks — at most every 100 ms — capped at `kiln.logs.maxBytes`.
//! The offset of the last line stored is kept in the run dir (`consumed`), so a kiln that
//! re-attaches to a run after a restart continues the log without repeating it.
//! On the way, the lines feed the bake's timeline (`builders::packer::timeline`), published live to the
//! bakery's view while the bake runs, and the end of the text is kept for the diagnosis.

use crate::bake::PhaseTiming;
use crate::builders::packer::output::{Outcome, human_text, parse_line};
use crate::builders::packer::timeline::{Timeline, line_time_ms, seen_at};
use crate::store::{BakeStore, StoreResult};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The timelines of the bakes this process follows, by bake id, for the bake view.
pub(super) type LiveTimelines = Arc<Mutex<HashMap<String, Vec<PhaseTiming>>>>;

/// How much of the log's end is kept for the diagnosis.
const TAIL_BYTES: usize = 64 * 1024;

pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub(super) struct LogSink {
    store: Arc<dyn BakeStore>,
    id: String,
    consumed_file: PathBuf,
    buf: String,
    /// Raw output offset after the last line in `buf`.
    pending_offset: u64,
    /// Raw output offset after the last line known to be stored.
    committed_offset: u64,
    stored_bytes: u64,
    max_bytes: u64,
    truncated: bool,
    last_flush: Instant,
    /// Whether the last flush failed (so an outage is warned about once).
    failing: bool,
    /// What `consumed` holds now, when this sink wrote it.
    recorded: Option<(u64, u64, u64)>,
    /// `consumed`, open once and rewritten in place (see [`LogSink::record_consumed`]).
    consumed: Option<std::fs::File>,
    pub outcome: Outcome,
    pub last_text: Option<String>,
    pub timeline: Timeline,
    live: Option<LiveTimelines>,
    /// The end of the text this sink saw (at most [`TAIL_BYTES`], from a line start).
    tail: String,
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
            committed_offset: 0,
            stored_bytes,
            max_bytes,
            truncated: false,
            last_flush: Instant::now(),
            failing: false,
            recorded: None,
            consumed: None,
            outcome: Outcome::default(),
            last_text: None,
            timeline: Timeline::default(),
            live: None,
            tail: String::new(),
        }
    }

    /// Times the phases of a bake, publishing the timeline to `live` as it changes. The markers
    /// are the provider's, or a builder's own when it is not Packer (ebs-direct).
    pub fn timed(mut self, record: &crate::bake::BakeRecord, live: LiveTimelines) -> Self {
        let markers = if record.recipe.builder.as_deref() == Some("ebs-direct") {
            crate::builders::ebs_direct::PHASE_MARKERS
        } else {
            crate::providers::registry::find(&record.provider)
                .map_or(&[][..], |p| p.phase_markers())
        };
        self.timeline = Timeline::new(markers);
        self.live = Some(live);
        self
    }

    /// Feeds the timeline one line of text seen at `at_ms`.
    fn time(&mut self, at_ms: i64, text: &str) {
        if self.timeline.line(at_ms, text) {
            self.publish();
        }
    }

    /// Puts the current timeline where the bake view finds it.
    pub fn publish(&self) {
        if let Some(live) = &self.live {
            super::lock(live).insert(self.id.clone(), self.timeline.phases().to_vec());
        }
    }

    /// Forgets the live timeline (the bake's record holds it now).
    pub fn unpublish(&self) {
        if let Some(live) = &self.live {
            super::lock(live).remove(&self.id);
        }
    }

    /// The end of the text seen so far.
    pub fn tail(&self) -> &str {
        &self.tail
    }

    /// Where a re-attached run continues: the raw offset after the last line already stored,
    /// given how long the stored log is now.
    pub fn consumed_offset(run_dir: &std::path::Path, stored_now: u64) -> u64 {
        let text = std::fs::read_to_string(run_dir.join("consumed")).unwrap_or_default();
        let fields: Vec<u64> = text
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        match fields[..] {
            [_, stored, pending] if stored_now > stored => pending,
            [committed, ..] => committed,
            [] => 0,
        }
    }

    /// Continues a run whose output up to `offset` is stored already.
    pub fn start_at(&mut self, offset: u64) {
        self.pending_offset = offset;
        self.committed_offset = offset;
    }

    /// Feeds a line already stored before a restart: results only, no log text.
    pub fn replay(&mut self, raw: &str) {
        if let Some(event) = parse_line(raw) {
            self.outcome.feed(&event);
            if let (Some(at), Some(text)) = (line_time_ms(raw), human_text(&event)) {
                self.time(at, &text);
            }
        }
    }

    /// Feeds one raw line of Packer output ending at `offset`.
    pub fn line(&mut self, raw: &str, offset: u64) {
        let text = match parse_line(raw) {
            Some(event) => {
                self.outcome.feed(&event);
                let text = human_text(&event);
                if let Some(text) = &text {
                    let at = seen_at(line_time_ms(raw), super::now_ms());
                    self.time(at, text);
                }
                text
            }
            None => Some(raw.to_string()),
        };
        self.pending_offset = offset;
        if let Some(text) = text {
            if !text.trim().is_empty() {
                self.last_text = Some(text.trim().to_string());
            }
            self.push_text(&text);
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY || self.buf.len() > 64 * 1024 {
            self.flush();
        }
    }

    /// Adds kiln's own line to the log (it may mark a phase: `kiln: boot check…`).
    pub fn note(&mut self, text: &str) {
        self.time(super::now_ms(), text);
        self.push_text(text);
    }

    /// Adds a line to the log.
    fn push_text(&mut self, text: &str) {
        self.keep_tail(text);
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

    fn keep_tail(&mut self, text: &str) {
        self.tail.push_str(text);
        self.tail.push('\n');
        if self.tail.len() > 2 * TAIL_BYTES {
            let mut cut = self.tail.len() - TAIL_BYTES;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
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
        // Two records around the append make it exactly-once across a crash: before it, where
        // the raw output would stand if the append lands; after it, that it did. A reader that
        // finds the store longer than the record says knows the append landed.
        let before = self.stored_bytes;
        if !self.buf.is_empty() {
            self.record_consumed(self.committed_offset, before, self.pending_offset);
            self.store.append_log(&self.id, &self.buf)?;
            self.stored_bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        self.committed_offset = self.pending_offset;
        self.record_consumed(self.pending_offset, self.stored_bytes, self.pending_offset);
        Ok(())
    }

    /// Writes the record in place: one write of a fixed-width record at offset 0, so every
    /// record covers the one before it, and a crash of kiln cannot leave half of one (a single
    /// small write happens whole or not at all). Unlike a temporary file renamed over
    /// `consumed`, it allocates no inode: at 64 running bakes, creating and renaming
    /// `consumed.tmp` some 1,300 times a second was most of kiln's CPU. The flusher ticks every
    /// 100 ms for every bake, mostly with nothing new, so an unchanged record is not rewritten.
    fn record_consumed(&mut self, committed: u64, stored: u64, pending: u64) {
        use std::os::unix::fs::FileExt;
        let record = (committed, stored, pending);
        if self.recorded == Some(record) {
            return;
        }
        if self.consumed.is_none() {
            self.consumed = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.consumed_file)
                .ok();
        }
        let Some(file) = &self.consumed else {
            return;
        };
        // u64::MAX has 20 digits: every record is 63 bytes long.
        let text = format!("{committed:020} {stored:020} {pending:020}\n");
        if file.write_all_at(text.as_bytes(), 0).is_ok() {
            self.recorded = Some(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_continues_after_the_last_stored_line_even_mid_append() {
        let dir = tempfile::tempdir().unwrap();
        let at = |text: &str, stored_now| {
            std::fs::write(dir.path().join("consumed"), text).unwrap();
            LogSink::consumed_offset(dir.path(), stored_now)
        };
        assert_eq!(
            LogSink::consumed_offset(dir.path(), 0),
            0,
            "nothing stored yet"
        );
        assert_eq!(at("100 40 100", 40), 100, "settled");
        assert_eq!(at("100 40 180", 40), 100, "the append did not land");
        assert_eq!(
            at("100 40 180", 75),
            180,
            "the append landed, its record did not"
        );
        assert_eq!(at("55", 10), 55, "a bare offset");
    }

    #[test]
    fn records_are_rewritten_in_place_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::SqliteStore::open_in_memory().unwrap());
        let mut sink = LogSink::new(store, "b", dir.path().to_path_buf(), 1 << 20);
        // A shorter record of another format is covered whole by the first fixed-width one.
        std::fs::write(dir.path().join("consumed"), "7").unwrap();
        sink.record_consumed(100, 40, 180);
        assert_eq!(LogSink::consumed_offset(dir.path(), 40), 100);
        assert_eq!(LogSink::consumed_offset(dir.path(), 75), 180);
        sink.record_consumed(u64::MAX, 3, 4);
        sink.record_consumed(180, 75, 180);
        let text = std::fs::read_to_string(dir.path().join("consumed")).unwrap();
        assert_eq!(text.len(), 63, "{text:?}");
        assert_eq!(LogSink::consumed_offset(dir.path(), 75), 180);
    }
}
