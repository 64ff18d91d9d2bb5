//! Service output: line splitting, rotating files, the in-memory ring.
//!
//! Pure pieces with no knowledge of the event loop: the loop reads pipe
//! bytes and feeds them to a [`LineSplitter`], then hands each line to a
//! [`RotatingFile`] and a [`Ring`].

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Splits a byte stream into lines. A line longer than `max_line` is cut
/// into pieces of `max_line` bytes; a partial line is held until its
/// newline arrives, or until the caller flushes it (after a timeout).
#[derive(Debug)]
pub struct LineSplitter {
    _max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            _max_line: max_line,
        }
    }

    /// Feed bytes read at `now`; `emit` gets each complete line without its newline.
    pub fn push(&mut self, data: &[u8], now: Instant, emit: impl FnMut(&[u8])) {
        let _ = (data, now, emit);
        todo!()
    }

    /// When a partial line is held: the instant it must be flushed by.
    pub fn flush_deadline(&self, timeout: Duration) -> Option<Instant> {
        let _ = timeout;
        todo!()
    }

    /// Emit the held partial line, if any.
    pub fn flush(&mut self, emit: impl FnMut(&[u8])) {
        let _ = emit;
        todo!()
    }
}

/// `<dir>/<name>.log`, rotated by size: `name.log` -> `name.log.1` -> ... -> `name.log.<keep>`.
#[derive(Debug)]
pub struct RotatingFile {
    _path: PathBuf,
}

impl RotatingFile {
    pub fn open(path: PathBuf, max_size: u64, keep: u32) -> io::Result<Self> {
        let _ = (max_size, keep);
        Ok(RotatingFile { _path: path })
    }

    /// Append `line` and a newline, rotating first if the file would pass `max_size`.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let _ = line;
        todo!()
    }

    /// Write buffered lines to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        todo!()
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub stream: Stream,
    pub text: String,
}

/// The last lines of one service, bounded by line count and bytes.
#[derive(Debug)]
pub struct Ring {
    _max_lines: usize,
}

impl Ring {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        let _ = max_bytes;
        Ring {
            _max_lines: max_lines,
        }
    }

    /// Store a line; returns its sequence number (1, 2, 3, ... per ring).
    pub fn push(&mut self, stream: Stream, time: SystemTime, text: &[u8]) -> u64 {
        let _ = (stream, time, text);
        todo!()
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let _ = n;
        todo!()
    }

    /// The seq of the newest line (0 when empty and nothing was pushed).
    pub fn last_seq(&self) -> u64 {
        todo!()
    }

    /// Lines with `seq > after`, oldest first (for following).
    pub fn after(&self, after: u64) -> Vec<LogLine> {
        let _ = after;
        todo!()
    }
}
