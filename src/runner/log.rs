//! How the supervisor turns Packer's byte stream into `output.log`: one line at a time, each
//! line made valid UTF-8, capped in length, with secrets masked, written whole (so a follower
//! never sees half a line it could mistake for a whole one).
//!
//! The log is bounded: after `max_bytes`, one marker line is written and from then on only
//! Packer's machine-readable result lines are kept (the bakery reads the bake's result from
//! them), themselves bounded by [`RESULT_ALLOWANCE`].
//!
//! A write that fails (a full disk) loses nothing: what could not be written waits in memory, in
//! order, and goes out with the next write or [`LogWriter::drain`]. While more than
//! [`BACKLOG_LIMIT`] bytes wait, further lines are dropped (and counted in a note), except
//! result lines: a bake whose Packer finished while the disk was full still gets its result.

use crate::runner::redact::Redactor;
use std::io::{self, BufRead, ErrorKind, Write};

/// The longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Appended to a line that was cut at [`MAX_LINE_BYTES`].
pub const LINE_TRUNCATED: &str = "…[line truncated]";

/// How many bytes of result lines are still kept once the log is full.
pub const RESULT_ALLOWANCE: u64 = 1024 * 1024;

/// How many bytes may wait in memory for a writable log before lines other than results are
/// dropped.
pub const BACKLOG_LIMIT: usize = 1024 * 1024;

/// Machine-readable line types (third comma field) that carry a build's result.
const RESULT_TYPES: [&[u8]; 4] = [b"artifact", b"artifact-count", b"error-count", b"error"];

/// Reads one line (without its `\n`) into `buf`, keeping at most `cap` bytes of it and skipping
/// the rest. Returns `None` at end of input, else whether the line was cut.
pub fn read_capped_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let (mut seen, mut cut) = (false, false);
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(seen.then_some(cut));
        }
        seen = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let line_part = &available[..newline.unwrap_or(available.len())];
        let room = cap.saturating_sub(buf.len());
        cut |= line_part.len() > room;
        buf.extend_from_slice(&line_part[..line_part.len().min(room)]);
        let used = newline.map_or(available.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(cut));
        }
    }
}

/// Whether `line` is a Packer machine-readable result line (`artifact`, `artifact-count`,
/// `error-count` or `error` as its third comma-separated field).
pub fn is_result_line(line: &[u8]) -> bool {
    line.split(|&b| b == b',')
        .nth(2)
        .is_some_and(|kind| RESULT_TYPES.contains(&kind))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Full: only result lines, `result_bytes` of them so far.
    Full {
        result_bytes: u64,
    },
    /// Closed by [`LogWriter::close`]: nothing more is written.
    Closed,
}

/// The bounded, redacting writer of `output.log`.
pub struct LogWriter<W: Write> {
    out: W,
    redactor: Redactor,
    max_bytes: u64,
    /// Bytes taken into the log (written or waiting in `backlog`).
    written: u64,
    state: State,
    /// Bytes taken but not written yet (the last write failed).
    backlog: Vec<u8>,
    /// Lines dropped because the backlog was full, not yet reported in the log.
    dropped: u64,
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W, redactor: Redactor, max_bytes: u64) -> Self {
        LogWriter {
            out,
            redactor,
            max_bytes,
            written: 0,
            state: State::Open,
            backlog: Vec::new(),
            dropped: 0,
        }
    }

    /// Writes what waits in memory; `Ok` once nothing does.
    pub fn drain(&mut self) -> io::Result<()> {
        while !self.backlog.is_empty() {
            match self.out.write(&self.backlog) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.backlog.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.flush()?;
        if self.dropped > 0 {
            let note = format!(
                "kiln: {} lines of Packer output were dropped while output.log could not be written\n",
                std::mem::take(&mut self.dropped)
            );
            self.backlog.extend_from_slice(note.as_bytes());
            return self.drain();
        }
        Ok(())
    }

    /// Appends one raw line of Packer output (`cut`: it was longer than [`MAX_LINE_BYTES`]).
    pub fn line(&mut self, raw: &[u8], cut: bool) -> io::Result<()> {
        match self.state {
            State::Closed => Ok(()),
            State::Full { result_bytes } => self.result_line(raw, cut, result_bytes),
            State::Open => {
                let text = self.render(raw, cut);
                if self.written + text.len() as u64 > self.max_bytes {
                    self.fill()?;
                    return self.line(raw, cut);
                }
                self.write(&text)
            }
        }
    }

    /// Writes a final note and ignores every later line.
    pub fn close(&mut self, note: &str) -> io::Result<()> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        self.write(&format!("{note}\n"))
    }

    fn fill(&mut self) -> io::Result<()> {
        self.state = State::Full { result_bytes: 0 };
        let marker = format!(
            "kiln: log truncated after {} bytes; further output dropped except results\n",
            self.written
        );
        self.write(&marker)
    }

    fn result_line(&mut self, raw: &[u8], cut: bool, result_bytes: u64) -> io::Result<()> {
        if !is_result_line(raw) {
            return Ok(());
        }
        let text = self.render(raw, cut);
        let result_bytes = result_bytes + text.len() as u64;
        if result_bytes > RESULT_ALLOWANCE {
            return Ok(());
        }
        self.state = State::Full { result_bytes };
        self.write(&text)
    }

    /// The line as it goes to the log: lossy UTF-8, secrets masked, cut marker, `\n`.
    fn render(&self, raw: &[u8], cut: bool) -> String {
        let text = String::from_utf8_lossy(raw);
        if cut {
            format!("{}{LINE_TRUNCATED}\n", self.redactor.redact_cut(&text))
        } else {
            format!("{}\n", self.redactor.redact(&text))
        }
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        if self.backlog.len() >= BACKLOG_LIMIT && !is_result_line(text.as_bytes()) {
            self.dropped += 1;
            return self.drain();
        }
        self.backlog.extend_from_slice(text.as_bytes());
        self.written += text.len() as u64;
        self.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8], cap: usize) -> Vec<(String, bool)> {
        let mut reader = io::BufReader::with_capacity(8, Cursor::new(input.to_vec()));
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(cut) = read_capped_line(&mut reader, &mut buf, cap).unwrap() {
            out.push((String::from_utf8_lossy(&buf).into_owned(), cut));
        }
        out
    }

    fn log(max: u64, secrets: &[&str], input: &[&[u8]]) -> String {
        let redactor = Redactor::new(secrets.iter().map(|s| s.to_string()));
        let mut writer = LogWriter::new(Vec::new(), redactor, max);
        for raw in input {
            writer.line(raw, false).unwrap();
        }
        String::from_utf8(writer.out).unwrap()
    }

    #[test]
    fn splits_lines_and_keeps_a_last_unterminated_one() {
        let got = lines(b"one\ntwo\n\nlast", 100);
        let want = [("one", false), ("two", false), ("", false), ("last", false)];
        assert_eq!(got, want.map(|(s, c)| (s.to_string(), c)));
    }

    #[test]
    fn cuts_long_lines_and_resumes_at_the_next() {
        let got = lines(b"0123456789abcdef\nshort\n", 10);
        assert_eq!(
            got,
            vec![
                ("0123456789".to_string(), true),
                ("short".to_string(), false)
            ]
        );
    }

    #[test]
    fn recognises_result_lines() {
        assert!(is_result_line(
            b"1700000000,amazon-ebs,artifact,0,id,us-east-1:ami-0abc"
        ));
        assert!(is_result_line(b"1700000000,,error-count,1"));
        assert!(is_result_line(b"1700000000,amazon-ebs,error,boom"));
        assert!(!is_result_line(b"1700000000,,ui,error,boom"));
        assert!(!is_result_line(b"artifact"));
    }

    #[test]
    fn masks_secrets_and_repairs_utf8() {
        assert_eq!(
            log(1000, &["s3cr3t!"], &[b"key s3cr3t!", b"bad \xff byte"]),
            "key ******\nbad \u{FFFD} byte\n"
        );
    }

    #[test]
    fn a_full_log_keeps_only_results_after_one_marker() {
        let input: [&[u8]; 4] = [b"aaaa", b"bbbb", b"1,x,artifact,0,id,ami-1", b"cccc"];
        let got = log(10, &[], &input);
        let marker = "kiln: log truncated after 10 bytes; further output dropped except results";
        assert_eq!(
            got,
            format!("aaaa\nbbbb\n{marker}\n1,x,artifact,0,id,ami-1\n")
        );
    }

    #[test]
    fn a_closed_log_takes_nothing_more() {
        let mut writer = LogWriter::new(Vec::new(), Redactor::default(), 100);
        writer.line(b"before", false).unwrap();
        writer.close("kiln: done").unwrap();
        writer.line(b"after", false).unwrap();
        assert_eq!(
            String::from_utf8(writer.out).unwrap(),
            "before\nkiln: done\n"
        );
    }

    /// A disk that is full for `full_for` writes, then takes everything.
    struct FullDisk {
        full_for: usize,
        data: Vec<u8>,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.full_for > 0 {
                self.full_for -= 1;
                // A partial write first, as a filling disk does.
                if self.full_for.is_multiple_of(2) && buf.len() > 3 {
                    self.data.extend_from_slice(&buf[..3]);
                    return Ok(3);
                }
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_written_to_a_full_disk_wait_and_go_out_in_order_once_it_has_room() {
        let disk = FullDisk {
            full_for: 9,
            data: Vec::new(),
        };
        let mut writer = LogWriter::new(disk, Redactor::new(["s3cr3t".to_string()]), 1000);
        let input: [&[u8]; 4] = [b"one", b"two s3cr3t", b"1,x,artifact,0,id,ami-1", b"four"];
        let mut failures = 0;
        for raw in input {
            failures += usize::from(writer.line(raw, false).is_err());
        }
        assert!(failures > 0, "the disk was full");
        while writer.drain().is_err() {}
        assert!(writer.backlog.is_empty());
        assert_eq!(
            String::from_utf8(writer.out.data).unwrap(),
            "one\ntwo ******\n1,x,artifact,0,id,ami-1\nfour\n"
        );
    }

    #[test]
    fn a_full_backlog_drops_lines_but_keeps_results_and_says_so() {
        let disk = FullDisk {
            full_for: usize::MAX,
            data: Vec::new(),
        };
        let mut writer = LogWriter::new(disk, Redactor::default(), u64::MAX);
        let line = vec![b'x'; 64 * 1024];
        for _ in 0..(BACKLOG_LIMIT / line.len() + 3) {
            let _ = writer.line(&line, false);
        }
        let _ = writer.line(b"1,x,artifact,0,id,ami-1", false);
        writer.out.full_for = 0;
        writer.drain().unwrap();
        let text = String::from_utf8(writer.out.data).unwrap();
        assert!(text.contains("1,x,artifact,0,id,ami-1\n"));
        assert!(
            text.len() <= BACKLOG_LIMIT + 64 * 1024 + 200,
            "{}",
            text.len()
        );
        assert!(
            text.ends_with(
                " lines of Packer output were dropped while output.log could not be written\n"
            ),
            "{}",
            &text[text.len() - 200..]
        );
    }

    #[test]
    fn a_cut_line_is_marked_and_leaks_no_secret_beginning() {
        let mut writer = LogWriter::new(Vec::new(), Redactor::new(["TOPSECRET".to_string()]), 100);
        writer.line(b"x=TOPS", true).unwrap();
        assert_eq!(
            String::from_utf8(writer.out).unwrap(),
            format!("x={LINE_TRUNCATED}\n")
        );
    }
}
