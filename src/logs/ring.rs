//! The last lines of a service, in memory.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Stream;

/// One captured line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Position in its ring: 1 for the first line ever pushed, then 2, 3, ...
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The pipe the line came from.
    pub stream: Stream,
    /// The line, invalid UTF-8 replaced by U+FFFD.
    pub text: String,
    /// The instance it came from (`web@1`), when a reply mixes instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The last lines of one service, bounded by line count and bytes.
///
/// Pushing evicts the oldest lines until both bounds hold; the sequence
/// numbers go on regardless, so a follower that remembers the last `seq`
/// it sent asks for [`after`](Self::after) it, and sees a gap (the first
/// line's `seq` is higher than it asked for) if it fell behind.
#[derive(Debug)]
pub struct Ring {
    lines: VecDeque<LogLine>,
    max_lines: usize,
    max_bytes: usize,
    /// Sum of `text.len()` over `lines`.
    bytes: usize,
    last_seq: u64,
}

impl Ring {
    /// An empty ring holding at most `max_lines` lines and `max_bytes` bytes of text.
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Ring {
            lines: VecDeque::new(),
            max_lines,
            max_bytes,
            bytes: 0,
            last_seq: 0,
        }
    }

    /// Store a line; returns its sequence number (1, 2, 3, ... per ring).
    ///
    /// A line longer than `max_bytes` is cut to fit (at a character
    /// boundary); with `max_lines` or `max_bytes` 0 nothing is stored.
    pub fn push(&mut self, stream: Stream, time: SystemTime, text: &[u8]) -> u64 {
        self.last_seq += 1;
        if self.max_lines == 0 || self.max_bytes == 0 {
            return self.last_seq;
        }
        let mut text = String::from_utf8_lossy(text).into_owned();
        if text.len() > self.max_bytes {
            let mut end = self.max_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        while self.lines.len() >= self.max_lines || self.bytes + text.len() > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len(),
                None => break,
            }
        }
        self.bytes += text.len();
        let time_ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.lines.push_back(LogLine {
            seq: self.last_seq,
            time_ms,
            stream,
            text,
            unit: None,
        });
        self.last_seq
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let start = self.lines.len().saturating_sub(n);
        self.lines.range(start..).cloned().collect()
    }

    /// Lines with `seq > after`, oldest first (for following).
    pub fn after(&self, after: u64) -> Vec<LogLine> {
        self.iter_after(after).cloned().collect()
    }

    /// Like [`after`](Self::after), without copying.
    pub fn iter_after(&self, after: u64) -> impl Iterator<Item = &LogLine> {
        // Stored lines have consecutive numbers, so the first one wanted is
        // found by arithmetic.
        let start = match self.first_seq() {
            Some(first) if after >= first => usize::try_from(after - first + 1)
                .map_or(self.lines.len(), |i| i.min(self.lines.len())),
            _ => 0,
        };
        self.lines.range(start..)
    }

    /// The `seq` of the last line pushed (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The `seq` of the oldest line still held.
    pub fn first_seq(&self) -> Option<u64> {
        self.lines.front().map(|l| l.seq)
    }

    /// How many lines are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of text held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    fn seqs(lines: &[LogLine]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    fn push(ring: &mut Ring, text: &str) -> u64 {
        ring.push(Stream::Stdout, SystemTime::now(), text.as_bytes())
    }

    #[test]
    fn keeps_fields_and_converts_lossily() {
        let mut ring = Ring::new(10, 1000);
        assert_eq!(ring.last_seq(), 0);
        assert!(ring.is_empty());
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(ring.push(Stream::Stderr, time, b"bad \xff byte"), 1);
        assert_eq!(
            ring.tail(1),
            vec![LogLine {
                seq: 1,
                time_ms: 1_700_000_000_123,
                stream: Stream::Stderr,
                text: "bad \u{fffd} byte".into(),
                unit: None,
            }]
        );
    }

    #[test]
    fn bounded_by_lines() {
        let mut ring = Ring::new(3, 1000);
        for i in 1..=10 {
            assert_eq!(push(&mut ring, &format!("l{i}")), i);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.last_seq(), 10);
        assert_eq!(ring.first_seq(), Some(8));
        assert_eq!(texts(&ring.tail(100)), ["l8", "l9", "l10"]);
        assert_eq!(ring.bytes(), 7);
    }

    #[test]
    fn bounded_by_bytes() {
        let mut ring = Ring::new(100, 10);
        push(&mut ring, "aaaa");
        push(&mut ring, "bbbb");
        assert_eq!(ring.bytes(), 8);
        push(&mut ring, "cc"); // 10: fits exactly
        assert_eq!(texts(&ring.tail(10)), ["aaaa", "bbbb", "cc"]);
        push(&mut ring, "ddddddd"); // evicts aaaa and bbbb
        assert_eq!(texts(&ring.tail(10)), ["cc", "ddddddd"]);
        assert_eq!(ring.bytes(), 9);
        push(&mut ring, "");
        assert_eq!(ring.len(), 3);
        // Longer than the whole ring: cut at a character boundary.
        assert_eq!(push(&mut ring, "ééééééé"), 6);
        assert_eq!(
            texts(&ring.tail(10)),
            ["", "ééééé"],
            "the empty line costs no bytes"
        );
        assert_eq!(ring.bytes(), 10);
    }

    #[test]
    fn tail_returns_the_last_lines_oldest_first() {
        let mut ring = Ring::new(5, 1000);
        assert!(ring.tail(3).is_empty());
        for i in 1..=7 {
            push(&mut ring, &i.to_string());
        }
        assert_eq!(texts(&ring.tail(0)), Vec::<&str>::new());
        assert_eq!(texts(&ring.tail(2)), ["6", "7"]);
        assert_eq!(texts(&ring.tail(5)), ["3", "4", "5", "6", "7"]);
        assert_eq!(texts(&ring.tail(usize::MAX)), ["3", "4", "5", "6", "7"]);
    }

    #[test]
    fn after_follows_across_evictions() {
        let mut ring = Ring::new(4, 1000);
        assert!(ring.after(0).is_empty());
        for i in 1..=3 {
            push(&mut ring, &i.to_string());
        }
        assert_eq!(seqs(&ring.after(0)), [1, 2, 3]);
        assert_eq!(seqs(&ring.after(1)), [2, 3]);
        assert_eq!(seqs(&ring.after(3)), Vec::<u64>::new());
        assert_eq!(seqs(&ring.after(99)), Vec::<u64>::new());
        // A follower that sent up to 3, then the ring moves on by 6.
        for i in 4..=9 {
            push(&mut ring, &i.to_string());
        }
        assert_eq!(seqs(&ring.after(3)), [6, 7, 8, 9], "fell behind: gap");
        assert_eq!(seqs(&ring.after(7)), [8, 9]);
        assert_eq!(seqs(&ring.after(u64::MAX)), Vec::<u64>::new());
        assert_eq!(ring.iter_after(8).map(|l| l.seq).collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn seq_is_monotonic_even_when_nothing_is_kept() {
        let mut ring = Ring::new(0, 1000);
        assert_eq!(push(&mut ring, "a"), 1);
        assert_eq!(push(&mut ring, "b"), 2);
        assert!(ring.is_empty());
        let mut ring = Ring::new(10, 0);
        assert_eq!(push(&mut ring, "a"), 1);
        assert_eq!(push(&mut ring, "b"), 2);
        assert!(ring.is_empty());
    }
}
