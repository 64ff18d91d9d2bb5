//! A log file rotated by size.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes gathered in memory before they are written out.
const BUF_CAP: usize = 64 * 1024;

/// `<dir>/<name>.log`, rotated by size: `name.log` -> `name.log.1` -> ... -> `name.log.<keep>`.
///
/// Lines are buffered (up to 64 KiB) and written by [`flush`](Self::flush),
/// which the event loop calls once per iteration; dropping the file flushes
/// too. Rotation renames (never copies or truncates), so a reader tailing
/// the old file reads it to its end. Every file stays within `max_size`
/// bytes, except one holding a single longer line.
///
/// An outside tool (logrotate) that moved or removed `name.log` is noticed
/// at the next rotation decision, or at once by
/// [`reopen_if_moved`](Self::reopen_if_moved) (call it on SIGHUP); sentinel
/// then starts a fresh `name.log` without shifting the numbered files.
/// Numbered files above `keep` (left by an earlier, larger `keep`) are left
/// alone.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    keep: u32,
    /// `None` after opening a fresh file failed; retried on the next write.
    file: Option<File>,
    /// `(st_dev, st_ino)` of `file`.
    id: (u64, u64),
    /// Bytes in `file`: its size when opened plus what was written since.
    written: u64,
    /// Whole lines not written yet (or the unwritten rest after an error).
    buf: Vec<u8>,
    /// Bytes of lines refused because of errors.
    dropped: u64,
}

impl RotatingFile {
    /// Open (or create, mode 0640) `path` for appending. Its directory must exist.
    pub fn open(path: PathBuf, max_size: u64, keep: u32) -> io::Result<Self> {
        let mut file = RotatingFile {
            path,
            max_size,
            keep,
            file: None,
            id: (0, 0),
            written: 0,
            buf: Vec::new(),
            dropped: 0,
        };
        file.reopen()?;
        Ok(file)
    }

    /// The current file's size, counting buffered bytes.
    pub fn size(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Bytes of lines that [`write_line`](Self::write_line) refused (errors).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Append `line` and a newline, rotating first if the file would pass `max_size`.
    ///
    /// `Ok` means the line is buffered or written. `Err` means it was not
    /// (or, for a line longer than the buffer, not wholly) written, and its
    /// bytes are counted in [`dropped_bytes`](Self::dropped_bytes); the
    /// next call tries again from a clean state.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() + 1;
        let result = self.try_write_line(line);
        if result.is_err() {
            self.dropped += len as u64;
        }
        result
    }

    fn try_write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() + 1;
        if self.size() > 0 && self.size() + len as u64 > self.max_size {
            self.make_room(len as u64)?;
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        if self.buf.len() + len > BUF_CAP {
            if let Err(e) = self.flush() {
                if self.buf.len() + len > BUF_CAP {
                    return Err(e);
                }
            }
        }
        if len > BUF_CAP {
            return self.write_direct(line);
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        Ok(())
    }

    /// Write a line too long for the buffer straight to the file (the
    /// buffer is empty). Its newline goes through the buffer.
    fn write_direct(&mut self, line: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().expect("opened by try_write_line");
        let (n, result) = write_from(file, line);
        self.written += n as u64;
        if n > 0 {
            // Even a torn line gets its newline, so the next one starts clean.
            self.buf.push(b'\n');
        }
        result.map_err(|e| with_path(e, "write", &self.path))
    }

    /// Write the buffered lines to the file. After an error the unwritten
    /// bytes stay buffered and the next flush retries them.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let file = self.file.as_mut().expect("just opened");
        let (n, result) = write_from(file, &self.buf);
        self.written += n as u64;
        self.buf.drain(..n);
        result.map_err(|e| with_path(e, "write", &self.path))
    }

    /// If `name.log` is no longer the open file (moved or removed by
    /// another tool), flush into the old one and open a fresh `name.log`.
    /// If the open file was truncated in place (logrotate's
    /// `copytruncate`), take its new size. Returns whether a new file was
    /// opened.
    pub fn reopen_if_moved(&mut self) -> io::Result<bool> {
        let flushed = self.flush();
        if self.moved_away() {
            self.reopen()?;
            return flushed.map(|()| true);
        }
        if let Some(file) = &self.file {
            let len = file
                .metadata()
                .map_err(|e| with_path(e, "stat", &self.path))?
                .len();
            self.written = self.written.min(len);
        }
        flushed.map(|()| false)
    }

    /// Rotate so that `len` more bytes fit, unless an outside tool already
    /// moved the file away and its fresh replacement has room.
    fn make_room(&mut self, len: u64) -> io::Result<()> {
        // Lines already accepted belong in the old file.
        self.flush()?;
        if self.moved_away() {
            self.reopen()?;
            if self.written == 0 || self.written + len <= self.max_size {
                return Ok(());
            }
        }
        self.shift_names()?;
        self.reopen()
    }

    /// Whether `path` names another file than the open one, or nothing.
    fn moved_away(&self) -> bool {
        if self.file.is_none() {
            return false;
        }
        match fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()) != self.id,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// `name.log.(keep-1)` -> `name.log.keep`, ..., `name.log` -> `name.log.1`;
    /// with `keep == 0`, remove `name.log`.
    fn shift_names(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(with_path(e, "remove", &self.path))
                }
                _ => Ok(()),
            };
        }
        for i in (1..self.keep).rev() {
            rename_if_exists(&self.numbered(i), &self.numbered(i + 1))?;
        }
        rename_if_exists(&self.path, &self.numbered(1))
    }

    /// `name.log.<i>`.
    fn numbered(&self, i: u32) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{i}"));
        PathBuf::from(name)
    }

    /// Open `path` afresh (appending, creating it) and take its size.
    /// On failure no file is open and its size counts as 0, so that the
    /// retry opens it again rather than rotating again.
    fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        self.written = 0;
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&self.path)
            .map_err(|e| with_path(e, "open", &self.path))?;
        let meta = file
            .metadata()
            .map_err(|e| with_path(e, "stat", &self.path))?;
        self.id = (meta.dev(), meta.ino());
        self.written = meta.len();
        self.file = Some(file);
        Ok(())
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Write as much of `data` as possible: how many bytes went, and the error
/// that stopped it.
fn write_from(file: &mut File, data: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("rename {} to {}: {e}", from.display(), to.display()),
        )),
        _ => Ok(()),
    }
}

/// `open /var/log/sentinel/web.log: No space left on device`, keeping the kind.
fn with_path(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::testutil::{Rng, TestDir};
    use crate::logs::LineSplitter;
    use std::time::Instant;

    fn read(path: &Path) -> Vec<u8> {
        fs::read(path).unwrap()
    }

    /// The numbered files that exist, by number.
    fn rotated(log: &Path) -> Vec<u32> {
        let dir = log.parent().unwrap();
        let prefix = format!("{}.", log.file_name().unwrap().to_str().unwrap());
        let mut nums: Vec<u32> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix(&prefix)?.parse().ok()
            })
            .collect();
        nums.sort_unstable();
        nums
    }

    fn numbered(log: &Path, i: u32) -> PathBuf {
        PathBuf::from(format!("{}.{i}", log.display()))
    }

    #[test]
    fn appends_lines_and_keeps_existing_content() {
        let dir = TestDir::new("append");
        let log = dir.path().join("web.log");
        fs::write(&log, b"old\n").unwrap();
        let mut f = RotatingFile::open(log.clone(), 1000, 2).unwrap();
        assert_eq!(f.size(), 4);
        f.write_line(b"one").unwrap();
        f.write_line(b"").unwrap();
        assert_eq!(f.size(), 9);
        assert_eq!(read(&log), b"old\n", "buffered until flush");
        f.flush().unwrap();
        assert_eq!(read(&log), b"old\none\n\n");
        f.write_line(b"two").unwrap();
        drop(f);
        assert_eq!(read(&log), b"old\none\n\ntwo\n", "drop flushes");
    }

    #[test]
    fn new_file_mode_is_0640() {
        let dir = TestDir::new("mode");
        let log = dir.path().join("m.log");
        let _f = RotatingFile::open(log.clone(), 100, 1).unwrap();
        // The umask may only clear bits.
        let mode = fs::metadata(&log).unwrap().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn rotates_before_passing_max_size_flushing_first() {
        let dir = TestDir::new("rotate");
        let log = dir.path().join("a.log");
        let mut f = RotatingFile::open(log.clone(), 10, 2).unwrap();
        f.write_line(b"12345").unwrap(); // 6 bytes
        f.write_line(b"123").unwrap(); // 10: fits exactly
        f.write_line(b"x").unwrap(); // would be 12: rotate first
        assert_eq!(read(&numbered(&log, 1)), b"12345\n123\n");
        f.flush().unwrap();
        assert_eq!(read(&log), b"x\n");
        f.write_line(b"yyyyyyyy").unwrap(); // 11: rotate
        f.flush().unwrap();
        assert_eq!(read(&numbered(&log, 2)), b"12345\n123\n");
        assert_eq!(read(&numbered(&log, 1)), b"x\n");
        assert_eq!(read(&log), b"yyyyyyyy\n");
        assert_eq!(rotated(&log), vec![1, 2]);
    }

    #[test]
    fn keeps_exactly_keep_rotated_files() {
        let dir = TestDir::new("keep");
        let log = dir.path().join("k.log");
        let mut f = RotatingFile::open(log.clone(), 20, 3).unwrap();
        for i in 0..500 {
            f.write_line(format!("line {i:04}").as_bytes()).unwrap();
            if i % 7 == 0 {
                f.flush().unwrap();
            }
        }
        f.flush().unwrap();
        assert_eq!(rotated(&log), vec![1, 2, 3]);
        assert_eq!(read(&log), b"line 0498\nline 0499\n");
        assert_eq!(read(&numbered(&log, 1)), b"line 0496\nline 0497\n");
        assert_eq!(read(&numbered(&log, 3)), b"line 0492\nline 0493\n");
    }

    #[test]
    fn keep_zero_starts_fresh_without_rotated_files() {
        let dir = TestDir::new("keep0");
        let log = dir.path().join("z.log");
        let mut f = RotatingFile::open(log.clone(), 8, 0).unwrap();
        f.write_line(b"aaaa").unwrap();
        f.write_line(b"bbbb").unwrap(); // rotates: "aaaa" is gone
        f.write_line(b"cc").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"bbbb\ncc\n");
        assert_eq!(rotated(&log), Vec::<u32>::new());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_line_longer_than_max_size_is_written_whole_into_a_fresh_file() {
        let dir = TestDir::new("huge");
        let log = dir.path().join("h.log");
        let mut f = RotatingFile::open(log.clone(), 100, 5).unwrap();
        let big = vec![b'x'; 300_000]; // larger than max_size and the buffer
        f.write_line(b"before").unwrap();
        f.write_line(&big).unwrap();
        f.write_line(b"after").unwrap();
        f.write_line(&big[..150]).unwrap(); // bigger than max_size, fits the buffer
        f.flush().unwrap();
        let mut expected_big = big.clone();
        expected_big.push(b'\n');
        assert_eq!(read(&numbered(&log, 3)), b"before\n");
        assert_eq!(read(&numbered(&log, 2)), expected_big);
        assert_eq!(read(&numbered(&log, 1)), b"after\n");
        assert_eq!(read(&log), &expected_big[expected_big.len() - 151..]);
        // A file holding only a too-long line is rotated by the next line.
        f.write_line(b"next").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"next\n");
        assert_eq!(f.dropped_bytes(), 0);
    }

    #[test]
    fn an_oversized_existing_file_is_rotated_by_the_first_line() {
        let dir = TestDir::new("oversized");
        let log = dir.path().join("o.log");
        fs::write(&log, vec![b'o'; 50]).unwrap();
        let mut f = RotatingFile::open(log.clone(), 20, 1).unwrap();
        f.write_line(b"new").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"new\n");
        assert_eq!(read(&numbered(&log, 1)).len(), 50);
    }

    #[test]
    fn a_file_moved_by_another_tool_is_replaced_not_shifted() {
        let dir = TestDir::new("moved");
        let log = dir.path().join("m.log");
        let mut f = RotatingFile::open(log.clone(), 10, 3).unwrap();
        f.write_line(b"aaaa").unwrap();
        f.flush().unwrap();
        // logrotate renames the file; lines still go to the open (moved) one.
        fs::rename(&log, dir.path().join("m.log-2024")).unwrap();
        f.write_line(b"bbbb").unwrap(); // 10 bytes: no rotation decision
                                        // The next rotation decision notices: fresh m.log, nothing shifted.
        f.write_line(b"cc").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&dir.path().join("m.log-2024")), b"aaaa\nbbbb\n");
        assert_eq!(read(&log), b"cc\n");
        assert_eq!(rotated(&log), Vec::<u32>::new());
        // Removed outright, noticed at once on request (SIGHUP).
        fs::remove_file(&log).unwrap();
        f.write_line(b"dd").unwrap(); // buffered, goes to the unlinked file
        assert!(f.reopen_if_moved().unwrap());
        assert!(!f.reopen_if_moved().unwrap());
        f.write_line(b"ee").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"ee\n");
    }

    #[test]
    fn a_failed_open_is_retried_without_rotating_again() {
        let dir = TestDir::new("reopen-fails");
        let log = dir.path().join("r.log");
        let mut f = RotatingFile::open(log.clone(), 10, 2).unwrap();
        f.write_line(b"aaaaaaa").unwrap();
        // Something else takes the name: a directory cannot be opened.
        fs::rename(&log, dir.path().join("r.log.old")).unwrap();
        fs::create_dir(&log).unwrap();
        for _ in 0..3 {
            let e = f.write_line(b"bbbbbbb").unwrap_err();
            assert!(e.to_string().starts_with("open "), "{e}");
        }
        assert_eq!(f.dropped_bytes(), 3 * 8);
        assert_eq!(rotated(&log), Vec::<u32>::new());
        fs::remove_dir(&log).unwrap();
        f.write_line(b"ccccccc").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"ccccccc\n");
        assert_eq!(read(&dir.path().join("r.log.old")), b"aaaaaaa\n");
        assert_eq!(rotated(&log), Vec::<u32>::new());
    }

    #[test]
    fn a_file_truncated_in_place_is_measured_again() {
        let dir = TestDir::new("truncated");
        let log = dir.path().join("t.log");
        let mut f = RotatingFile::open(log.clone(), 10, 3).unwrap();
        f.write_line(b"aaaaaaaa").unwrap();
        f.flush().unwrap();
        // copytruncate
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert!(!f.reopen_if_moved().unwrap());
        assert_eq!(f.size(), 0);
        f.write_line(b"bbbb").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&log), b"bbbb\n");
        assert_eq!(rotated(&log), Vec::<u32>::new());
    }

    #[test]
    fn a_write_error_is_returned_and_counted_not_panicked() {
        // /dev/full fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            eprintln!("skipped: no /dev/full");
            return;
        }
        let mut f = RotatingFile::open(PathBuf::from("/dev/full"), u64::MAX, 1).unwrap();
        f.write_line(b"buffered").unwrap();
        let e = f.flush().unwrap_err();
        assert!(
            e.to_string().starts_with("write /dev/full: No space left"),
            "{e}"
        );
        // The buffer fills up, then lines are refused and counted.
        let line = vec![b'l'; 999];
        let mut refused = 0;
        for _ in 0..200 {
            if f.write_line(&line).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert_eq!(f.dropped_bytes(), refused * 1000);
        assert!(f.write_line(&vec![b'h'; BUF_CAP * 2]).is_err());
        assert_eq!(f.dropped_bytes(), refused * 1000 + BUF_CAP as u64 * 2 + 1);
        assert!(f.size() <= BUF_CAP as u64);
    }

    /// The 50 MB burst: numbered lines of varied length pushed through a
    /// splitter in random chunks into a rotating file flushed at random
    /// points, as the event loop would.
    fn burst(dir: &Path, total: usize, max_size: u64, keep: u32) -> (PathBuf, u64) {
        let log = dir.join("burst.log");
        let mut f = RotatingFile::open(log.clone(), max_size, keep).unwrap();
        let mut splitter = LineSplitter::new(4096);
        let mut rng = Rng::new(7);
        let now = Instant::now();
        let mut pending = Vec::new();
        let mut seq = 0u64;
        let mut sent = 0;
        while sent < total {
            while pending.len() < 64 * 1024 {
                pending.extend_from_slice(&make_line(seq));
                pending.push(b'\n');
                seq += 1;
            }
            let n = rng.range(1, 64 * 1024);
            splitter.push(&pending[..n], now, |l| f.write_line(l).unwrap());
            pending.drain(..n);
            sent += n;
            if rng.range(0, 3) == 0 {
                f.flush().unwrap();
            }
        }
        splitter.push(&pending, now, |l| f.write_line(l).unwrap());
        splitter.flush(|_| panic!("input ends with a newline"));
        f.flush().unwrap();
        (log, seq)
    }

    /// Line `seq`: its number and 0 to 200 filler bytes.
    fn make_line(seq: u64) -> Vec<u8> {
        let mut line = format!("{seq:010}").into_bytes();
        let fill = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % 201;
        line.extend((0..fill).map(|i| b'a' + (i % 26) as u8));
        line
    }

    /// Check every line of `files` (oldest first) is the next of the
    /// sequence; returns the first and last numbers seen.
    fn check_sequence(files: &[PathBuf], max_size: u64) -> (u64, u64) {
        let mut first = None;
        let mut next = None;
        for path in files {
            let data = read(path);
            assert!(data.len() as u64 <= max_size, "{} too big", path.display());
            assert_eq!(
                data.last(),
                Some(&b'\n'),
                "{} ends mid-line",
                path.display()
            );
            for line in data[..data.len() - 1].split(|&b| b == b'\n') {
                let seq: u64 = std::str::from_utf8(&line[..10]).unwrap().parse().unwrap();
                if let Some(next) = next {
                    assert_eq!(seq, next, "in {}", path.display());
                }
                assert_eq!(line, make_line(seq));
                first.get_or_insert(seq);
                next = Some(seq + 1);
            }
        }
        (first.unwrap(), next.unwrap() - 1)
    }

    #[test]
    fn no_line_lost_in_a_50_mb_burst() {
        let dir = TestDir::new("burst-all");
        let max_size = 1 << 20;
        let (log, count) = burst(dir.path(), 50 << 20, max_size, 60);
        let nums = rotated(&log);
        assert!(nums.len() >= 50 && nums.len() < 60, "{nums:?}");
        let mut files: Vec<PathBuf> = nums.iter().rev().map(|&i| numbered(&log, i)).collect();
        files.push(log);
        assert_eq!(check_sequence(&files, max_size), (0, count - 1));
    }

    #[test]
    fn a_50_mb_burst_with_keep_3_leaves_an_in_order_tail() {
        let dir = TestDir::new("burst-tail");
        let max_size = 1 << 20;
        let (log, count) = burst(dir.path(), 50 << 20, max_size, 3);
        assert_eq!(rotated(&log), vec![1, 2, 3]);
        let files = [3, 2, 1].map(|i| numbered(&log, i));
        let files = [&files[..], &[log]].concat();
        let (first, last) = check_sequence(&files, max_size);
        assert_eq!(last, count - 1);
        // Three full files and a partial one: more than 3 MB of ~110-byte lines.
        assert!(count - first > 3 * (1 << 20) / 211, "{first}..{last}");
    }

    /// Throughput of splitter + rotating file, for the record (not a test):
    /// `cargo test --release -- --ignored --nocapture throughput`.
    /// The input is made beforehand and fed in 64 KiB reads, with a flush
    /// after each, as the event loop would.
    #[test]
    #[ignore]
    fn throughput() {
        let dir = TestDir::new("throughput");
        let total = 50 << 20;
        let mut input = Vec::with_capacity(total + 300);
        let mut seq = 0;
        while input.len() < total {
            input.extend_from_slice(&make_line(seq));
            input.push(b'\n');
            seq += 1;
        }
        let mb = input.len() as f64 / 1e6;
        for run in 0..3 {
            let now = Instant::now();
            let mut splitter = LineSplitter::new(4096);
            let mut lines = 0u64;
            for chunk in input.chunks(64 * 1024) {
                splitter.push(chunk, now, |_| lines += 1);
            }
            let split = now.elapsed().as_secs_f64();

            let log = dir.path().join(format!("t{run}.log"));
            let mut f = RotatingFile::open(log.clone(), 1 << 20, 60).unwrap();
            let mut splitter = LineSplitter::new(4096);
            let start = Instant::now();
            for chunk in input.chunks(64 * 1024) {
                splitter.push(chunk, now, |l| f.write_line(l).unwrap());
                f.flush().unwrap();
            }
            drop(f);
            let both = start.elapsed().as_secs_f64();
            eprintln!(
                "{mb:.1} MB, {lines} lines: splitter alone {:.0} MB/s; \
                 splitter + rotating file {:.0} MB/s ({:.3} s, {} rotated files)",
                mb / split,
                mb / both,
                both,
                rotated(&log).len()
            );
        }
    }
}
