//! Selecting lines from a ring: `logs --grep RE --since 10m --stream stderr`,
//! the same for the control socket and the HTTP API.

use std::time::{Duration, SystemTime};

use super::{LogLine, Ring, Stream};

/// Which lines a reader wants; every condition given must hold.
#[derive(Debug, Clone)]
pub struct LogFilter {
    grep: Option<regex_lite::Regex>,
    /// Lines at or after this, milliseconds since the Unix epoch.
    since_ms: Option<u64>,
    stream: Option<Stream>,
}

/// Longest pattern accepted (the regex engine bounds its own work too).
const MAX_PATTERN: usize = 1024;

impl LogFilter {
    /// A filter for lines matching `grep` (a regular expression), no older
    /// than `since` before `now`, from `stream`.
    pub fn new(
        grep: Option<&str>,
        since: Option<Duration>,
        stream: Option<Stream>,
        now: SystemTime,
    ) -> Result<LogFilter, String> {
        let grep = match grep.filter(|g| !g.is_empty()) {
            Some(g) if g.len() > MAX_PATTERN => {
                return Err(format!(
                    "grep pattern too long ({} bytes; at most {MAX_PATTERN})",
                    g.len()
                ))
            }
            Some(g) => Some(
                regex_lite::RegexBuilder::new(g)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("grep: invalid regular expression {g:?}: {e}"))?,
            ),
            None => None,
        };
        let since_ms = since.map(|d| now.checked_sub(d).map_or(0, crate::metrics::unix_ms));
        Ok(LogFilter {
            grep,
            since_ms,
            stream,
        })
    }

    /// Everything passes.
    pub fn all() -> LogFilter {
        LogFilter {
            grep: None,
            since_ms: None,
            stream: None,
        }
    }

    pub fn matches(&self, l: &LogLine) -> bool {
        self.stream.map_or(true, |s| s == l.stream)
            && self.since_ms.map_or(true, |t| l.time_ms >= t)
            && self.grep.as_ref().map_or(true, |re| re.is_match(&l.text))
    }

    /// The last `n` matching lines of `ring`, oldest first.
    pub fn tail(&self, ring: &Ring, n: usize) -> Vec<LogLine> {
        if self.grep.is_none() && self.since_ms.is_none() && self.stream.is_none() {
            return ring.tail(n);
        }
        let matching: Vec<&LogLine> = ring.iter_after(0).filter(|l| self.matches(l)).collect();
        let start = matching.len().saturating_sub(n);
        matching[start..].iter().map(|l| (*l).clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn grep_since_and_stream_combine() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut ring = Ring::new(100, 10_000);
        ring.push(Stream::Stdout, t0, b"GET /a 200");
        ring.push(
            Stream::Stderr,
            t0 + Duration::from_secs(100),
            b"error: disk full",
        );
        ring.push(Stream::Stdout, t0 + Duration::from_secs(200), b"GET /b 500");
        ring.push(
            Stream::Stderr,
            t0 + Duration::from_secs(300),
            b"error: again",
        );
        let now = t0 + Duration::from_secs(300);
        let texts = |f: &LogFilter, n| -> Vec<String> {
            f.tail(&ring, n).into_iter().map(|l| l.text).collect()
        };
        let f = LogFilter::new(Some(r"GET /\w 5\d\d"), None, None, now).unwrap();
        assert_eq!(texts(&f, 10), ["GET /b 500"]);
        let f = LogFilter::new(None, None, Some(Stream::Stderr), now).unwrap();
        assert_eq!(texts(&f, 10), ["error: disk full", "error: again"]);
        assert_eq!(texts(&f, 1), ["error: again"]);
        let f = LogFilter::new(Some("error"), Some(Duration::from_secs(150)), None, now).unwrap();
        assert_eq!(texts(&f, 10), ["error: again"]);
        assert_eq!(texts(&LogFilter::all(), 2), ["GET /b 500", "error: again"]);
        assert_eq!(texts(&LogFilter::all(), 0), Vec::<String>::new());
        let e = LogFilter::new(Some("("), None, None, now).unwrap_err();
        assert!(e.starts_with("grep: invalid regular expression"), "{e}");
    }
}
