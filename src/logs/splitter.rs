//! Cutting a pipe's byte stream into lines.

use std::time::{Duration, Instant};

/// Splits a byte stream into lines. A line longer than `max_line` is cut
/// into pieces of `max_line` bytes; a partial line is held until its
/// newline arrives, or until the caller flushes it (after a timeout).
///
/// Lines are emitted without their `\n` and without one `\r` before it.
/// Bytes are passed through as they are (no UTF-8 check). Lines that lie
/// wholly inside the pushed data are emitted as slices of it, uncopied;
/// only a partial line is copied, into a buffer that is reused and never
/// holds more than `max_line + 1` bytes (`max_line` and a `\r` that may be
/// the first half of a CRLF).
#[derive(Debug)]
pub struct LineSplitter {
    max_line: usize,
    /// The partial line: content bytes, and possibly a final `\r` whose
    /// meaning (line end or content) the next byte decides.
    held: Vec<u8>,
    /// When the first byte of `held` arrived; `Some` iff `held` is not empty.
    held_since: Option<Instant>,
    /// The last thing emitted was a partial line flushed on timeout, and no
    /// line end has been seen since. The line end that eventually follows
    /// belongs to that flushed line, so the empty line it would make is
    /// swallowed (a slow `printf("working..."); sleep; printf("\n")`
    /// gives one line, not two).
    after_flush: bool,
}

impl LineSplitter {
    /// A splitter cutting lines longer than `max_line` bytes (at least 1).
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            max_line: max_line.max(1),
            held: Vec::new(),
            held_since: None,
            after_flush: false,
        }
    }

    /// How many bytes of a partial line are held.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Feed bytes read at `now`; `emit` gets each complete line without its newline.
    pub fn push(&mut self, data: &[u8], now: Instant, mut emit: impl FnMut(&[u8])) {
        let m = self.max_line;
        let mut rest = data;
        while !self.held.is_empty() && !rest.is_empty() {
            rest = self.push_held(rest, &mut emit);
        }
        // Nothing is held: emit lines in place from `rest`. A search window
        // of `m + 2` bytes is enough to tell a line of at most `m` content
        // bytes (plus `\r\n`) from a longer one, so a long line is not
        // scanned past the piece being cut.
        while !rest.is_empty() {
            let window = &rest[..rest.len().min(m + 2)];
            match find_newline(window) {
                Some(i) => {
                    let content = strip_cr(&rest[..i]);
                    if content.len() <= m {
                        emit_line(content, &mut self.after_flush, &mut emit);
                        rest = &rest[i + 1..];
                    } else {
                        emit_piece(&rest[..m], &mut self.after_flush, &mut emit);
                        rest = &rest[m..];
                    }
                }
                None if longer_than(window, m) => {
                    emit_piece(&rest[..m], &mut self.after_flush, &mut emit);
                    rest = &rest[m..];
                }
                None => {
                    // `window` is all of `rest`: at most `m + 1` bytes.
                    self.held.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        if self.held.is_empty() {
            self.held_since = None;
        } else if self.held_since.is_none() {
            self.held_since = Some(now);
        }
    }

    /// With a partial line held, consume a prefix of `rest` (at least one
    /// byte, or emit a piece of `held`) and return what is left.
    fn push_held<'a>(&mut self, rest: &'a [u8], emit: &mut impl FnMut(&[u8])) -> &'a [u8] {
        let m = self.max_line;
        debug_assert!(!self.held.is_empty() && self.held.len() <= m + 1);
        let window = &rest[..rest.len().min(m + 2 - self.held.len())];
        if let Some(i) = find_newline(window) {
            // The held line ends here: at most `m + 1` raw bytes in all.
            self.held.extend_from_slice(&rest[..i]);
            let content = strip_cr(&self.held);
            if content.len() <= m {
                emit_line(content, &mut self.after_flush, emit);
            } else {
                emit_piece(&content[..m], &mut self.after_flush, emit);
                emit_piece(&content[m..], &mut self.after_flush, emit);
            }
            self.clear();
            return &rest[i + 1..];
        }
        let total = self.held.len() + window.len();
        let last = window.last().or(self.held.last()).copied();
        let longer = total > m + 1 || (total == m + 1 && last != Some(b'\r'));
        if !longer {
            // Then `window` is all of `rest`.
            self.held.extend_from_slice(window);
            return &rest[window.len()..];
        }
        if self.held.len() >= m {
            // `m` bytes and a `\r` that turned out to be content.
            emit_piece(&self.held[..m], &mut self.after_flush, emit);
            self.held.drain(..m);
            if self.held.is_empty() {
                self.held_since = None;
            }
            rest
        } else {
            let take = m - self.held.len();
            self.held.extend_from_slice(&rest[..take]);
            emit_piece(&self.held, &mut self.after_flush, emit);
            self.clear();
            &rest[take..]
        }
    }

    /// When a partial line is held: the instant it must be flushed by.
    pub fn flush_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.held_since.map(|since| since + timeout)
    }

    /// Emit the held partial line, if any (without a trailing `\r`).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        let content = strip_cr(&self.held);
        debug_assert!(content.len() <= self.max_line);
        if !content.is_empty() {
            emit(content);
            self.after_flush = true;
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.held.clear();
        self.held_since = None;
    }
}

/// Emit a complete line, unless it is the empty remainder of a line
/// already flushed on timeout.
fn emit_line(line: &[u8], after_flush: &mut bool, emit: &mut impl FnMut(&[u8])) {
    let swallow = line.is_empty() && *after_flush;
    *after_flush = false;
    if !swallow {
        emit(line);
    }
}

/// Emit a non-empty piece of a line.
fn emit_piece(piece: &[u8], after_flush: &mut bool, emit: &mut impl FnMut(&[u8])) {
    *after_flush = false;
    emit(piece);
}

/// Whether `window` (which holds no `\n`) starts a line of more than `m`
/// content bytes: more than `m + 1` bytes, or `m + 1` of which the last is
/// not a `\r` (that could still be half of a CRLF).
fn longer_than(window: &[u8], m: usize) -> bool {
    window.len() > m + 1 || (window.len() == m + 1 && window[m] != b'\r')
}

fn find_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::testutil::Rng;

    /// Push `chunks` one after the other, then flush; collect the lines.
    fn split(max_line: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(max_line);
        let mut out = Vec::new();
        let now = Instant::now();
        for c in chunks {
            s.push(c, now, |l| out.push(l.to_vec()));
            assert!(s.held() <= max_line + 1);
        }
        s.flush(|l| out.push(l.to_vec()));
        out
    }

    fn lines(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    /// The same split done on the whole input at once, the obvious way.
    fn reference(input: &[u8], max_line: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let last = parts.pop().unwrap();
        for p in parts {
            let c = strip_cr(p);
            if c.is_empty() {
                out.push(Vec::new());
            }
            out.extend(c.chunks(max_line).map(<[u8]>::to_vec));
        }
        out.extend(strip_cr(last).chunks(max_line).map(<[u8]>::to_vec));
        out
    }

    #[test]
    fn whole_lines_and_empty_lines() {
        assert_eq!(split(80, &[b"a\nbc\n\nd\n"]), lines(&["a", "bc", "", "d"]));
        assert_eq!(split(80, &[b"\n"]), lines(&[""]));
        assert_eq!(split(80, &[b""]), lines(&[]));
    }

    #[test]
    fn lines_split_across_pushes() {
        assert_eq!(
            split(80, &[b"hel", b"lo\nwor", b"", b"ld", b"\nx"]),
            lines(&["hello", "world", "x"])
        );
        assert_eq!(split(80, &[b"a", b"b", b"c", b"\n"]), lines(&["abc"]));
    }

    #[test]
    fn crlf_is_stripped_once() {
        assert_eq!(split(80, &[b"a\r\nb\r\r\n\r\n"]), lines(&["a", "b\r", ""]));
        // CR and LF in different pushes.
        assert_eq!(
            split(80, &[b"a\r", b"\nb\r", b"c\n"]),
            lines(&["a", "b\rc"])
        );
        // A CR not before a LF is content.
        assert_eq!(split(80, &[b"a\rb\n"]), lines(&["a\rb"]));
    }

    #[test]
    fn long_lines_are_cut_at_max_line() {
        assert_eq!(split(3, &[b"abcdefgh\n"]), lines(&["abc", "def", "gh"]));
        assert_eq!(split(3, &[b"abcdef\n"]), lines(&["abc", "def"]));
        assert_eq!(split(3, &[b"abc\n"]), lines(&["abc"]));
        assert_eq!(split(3, &[b"abcd\n"]), lines(&["abc", "d"]));
        // Exactly max_line before a CRLF: one line, even split around the CR.
        assert_eq!(split(3, &[b"abc\r\n"]), lines(&["abc"]));
        assert_eq!(split(3, &[b"abc\r", b"\n"]), lines(&["abc"]));
        assert_eq!(split(3, &[b"ab", b"c\r", b"\n"]), lines(&["abc"]));
        // ... but a CR followed by something else is content.
        assert_eq!(split(3, &[b"abc\r", b"d\n"]), lines(&["abc", "\rd"]));
        assert_eq!(split(3, &[b"abc\rd\r\n"]), lines(&["abc", "\rd"]));
        assert_eq!(split(1, &[b"ab\r\n\n"]), lines(&["a", "b", ""]));
        // Long line fed byte by byte.
        let bytes: Vec<&[u8]> = b"abcdefg\n".chunks(1).collect();
        assert_eq!(split(3, &bytes), lines(&["abc", "def", "g"]));
    }

    #[test]
    fn held_bytes_never_exceed_max_line_plus_one() {
        let mut s = LineSplitter::new(4);
        let now = Instant::now();
        let mut out = Vec::new();
        s.push(b"abcd\r", now, |l| out.push(l.to_vec()));
        assert_eq!(s.held(), 5);
        assert!(out.is_empty());
        s.push(b"xyz", now, |l| out.push(l.to_vec()));
        assert_eq!(out, lines(&["abcd"]));
        assert_eq!(s.held(), 4); // "\rxyz"
    }

    #[test]
    fn flush_deadline_is_set_by_the_first_partial_byte_and_cleared() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        let t2 = t0 + Duration::from_millis(20);
        let timeout = Duration::from_millis(100);
        let mut s = LineSplitter::new(80);
        let mut out = Vec::new();
        assert_eq!(s.flush_deadline(timeout), None);
        s.push(b"one\n", t0, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), None);
        s.push(b"tw", t0, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), Some(t0 + timeout));
        // More of the same partial line: the deadline does not move.
        s.push(b"o", t1, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), Some(t0 + timeout));
        // The line completes and a new partial one starts in the same push.
        s.push(b"\nthr", t2, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), Some(t2 + timeout));
        s.flush(|l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), None);
        assert_eq!(out, lines(&["one", "two", "thr"]));
        // A cut piece emptying the buffer clears the deadline too.
        let mut s = LineSplitter::new(2);
        s.push(b"a", t0, |l| out.push(l.to_vec()));
        s.push(b"bc", t1, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), Some(t1 + timeout)); // "c"
        s.push(b"d", t2, |l| out.push(l.to_vec()));
        assert_eq!(s.flush_deadline(timeout), Some(t1 + timeout)); // "cd"
    }

    #[test]
    fn flush_emits_the_partial_line_once() {
        let now = Instant::now();
        let mut s = LineSplitter::new(80);
        let mut out = Vec::new();
        s.flush(|l| out.push(l.to_vec()));
        assert!(out.is_empty(), "nothing held, nothing emitted");
        s.push(b"working...", now, |l| out.push(l.to_vec()));
        s.flush(|l| out.push(l.to_vec()));
        s.flush(|l| out.push(l.to_vec()));
        // The newline that finally ends the flushed line makes no empty line.
        s.push(b"\r\ndone\n\n", now, |l| out.push(l.to_vec()));
        assert_eq!(out, lines(&["working...", "done", ""]));
        // A progress bar: partial lines ending in CR.
        out.clear();
        s.push(b"10%\r", now, |l| out.push(l.to_vec()));
        s.flush(|l| out.push(l.to_vec()));
        s.push(b"20%\r", now, |l| out.push(l.to_vec()));
        s.flush(|l| out.push(l.to_vec()));
        s.push(b"ok\n", now, |l| out.push(l.to_vec()));
        assert_eq!(out, lines(&["10%", "20%", "ok"]));
    }

    #[test]
    fn complete_lines_are_not_copied() {
        let data = b"abc\ndef\nxy";
        let mut s = LineSplitter::new(80);
        let mut ptrs = Vec::new();
        s.push(data, Instant::now(), |l| ptrs.push(l.as_ptr()));
        assert_eq!(ptrs, vec![data.as_ptr(), data[4..].as_ptr()]);
    }

    #[test]
    fn invalid_utf8_passes_through() {
        assert_eq!(
            split(80, &[b"\xff\xfe\n\xc3", b"\xa9\n"]),
            vec![b"\xff\xfe".to_vec(), "é".as_bytes().to_vec()]
        );
    }

    /// A large input with short, long, empty and CRLF lines, split at random
    /// points, gives exactly what splitting it whole gives.
    #[test]
    fn random_splits_neither_lose_nor_duplicate() {
        let mut rng = Rng::new(0x5eed);
        for &max_line in &[1, 2, 3, 7, 64] {
            let mut input = Vec::new();
            while input.len() < 200_000 {
                let len = match rng.range(0, 9) {
                    0 => 0,
                    1 => max_line,
                    2 => max_line + 1,
                    3 => rng.range(max_line, 5 * max_line),
                    _ => rng.range(0, max_line),
                };
                for _ in 0..len {
                    input.push(b"abc\r\xff"[rng.range(0, 4)]);
                }
                match rng.range(0, 3) {
                    0 => input.extend_from_slice(b"\r\n"),
                    _ => input.push(b'\n'),
                }
            }
            input.extend_from_slice(b"tail\r");
            let expected = reference(&input, max_line);
            for _ in 0..5 {
                let mut chunks = Vec::new();
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let n = rng.range(0, (3 * max_line).min(rest.len()));
                    chunks.push(&rest[..n]);
                    rest = &rest[n..];
                }
                assert_eq!(split(max_line, &chunks), expected, "max_line {max_line}");
            }
        }
    }

    /// With timeout flushes at random points (and no CRs, whose meaning a
    /// flush may change), every content byte comes out once, in order.
    #[test]
    fn random_flushes_neither_lose_nor_duplicate() {
        let mut rng = Rng::new(42);
        let max_line = 5;
        let mut input = Vec::new();
        for _ in 0..20_000 {
            for _ in 0..rng.range(0, 12) {
                input.push(b'a' + rng.range(0, 25) as u8);
            }
            input.push(b'\n');
        }
        let mut s = LineSplitter::new(max_line);
        let mut out = Vec::new();
        let now = Instant::now();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = rng.range(0, 9.min(rest.len()));
            s.push(&rest[..n], now, |l| {
                assert!(l.len() <= max_line);
                out.extend_from_slice(l);
            });
            rest = &rest[n..];
            if rng.range(0, 3) == 0 {
                s.flush(|l| {
                    assert!(!l.is_empty() && l.len() <= max_line);
                    out.extend_from_slice(l);
                });
            }
        }
        let content: Vec<u8> = input.iter().copied().filter(|&b| b != b'\n').collect();
        assert_eq!(out, content);
    }
}
