//! `-H` with several hosts: each host gets its own `sentinel -H HOST ...`
//! child (the one-host path, so every control command works unchanged), at
//! most `parallel` at once; one poll(2) loop reads their stdout and stderr
//! and prints each line prefixed with its host (`--json`: a `"host"` field
//! in each object). At the end, each failed host with its reason.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Host;

/// Top-level options that take a value (everything else before the
/// subcommand is a switch). A new top-level option with a value must be
/// listed here, so that the children's command lines come out right.
const VALUE_OPTIONS: [&str; 4] = ["-H", "--hosts", "--parallel", "--remote-sentinel"];

/// A child's arguments: the original command line with `-H ALL` replaced by
/// `-H label` and without `--parallel`.
pub fn child_args(raw: &[OsString], label: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec!["-H".into(), label.into()];
    let mut i = 0;
    while i < raw.len() {
        let a = raw[i].to_string_lossy();
        if !a.starts_with('-') {
            // The subcommand: it and the rest go as they are.
            out.extend(raw[i..].iter().cloned());
            break;
        }
        let takes_value = VALUE_OPTIONS.contains(&a.as_ref());
        let dropped = matches!(a.as_ref(), "-H" | "--hosts" | "--parallel");
        let n = if takes_value { 2 } else { 1 };
        if !dropped {
            out.extend(raw[i..(i + n).min(raw.len())].iter().cloned());
        }
        i += n;
    }
    out
}

/// Whether the subcommand asks for JSON (`--json` after the subcommand).
pub fn wants_json(raw: &[OsString]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        let a = raw[i].to_string_lossy();
        if !a.starts_with('-') {
            return raw[i..].iter().any(|a| a == OsStr::new("--json"));
        }
        i += if VALUE_OPTIONS.contains(&a.as_ref()) {
            2
        } else {
            1
        };
    }
    false
}

/// One host's output, line by line, tagged with the host.
pub struct Tagger {
    label: String,
    width: usize,
    json: bool,
    buf: Vec<u8>,
}

impl Tagger {
    pub fn new(label: &str, width: usize, json: bool) -> Tagger {
        Tagger {
            label: label.to_string(),
            width,
            json,
            buf: Vec::new(),
        }
    }

    fn text_line(&self, line: &[u8]) -> String {
        let tag = format!("{}:", self.label);
        format!(
            "{tag:<w$} {}\n",
            String::from_utf8_lossy(line),
            w = self.width + 1
        )
    }

    fn json_value(&self, v: serde_json::Value) -> String {
        let host = serde_json::Value::String(self.label.clone());
        let v = match v {
            serde_json::Value::Object(mut m) => {
                m.insert("host".into(), host);
                serde_json::Value::Object(m)
            }
            other => serde_json::json!({ "host": host, "value": other }),
        };
        format!("{v}\n")
    }

    /// Take bytes; what is ready to print.
    pub fn feed(&mut self, data: &[u8]) -> String {
        self.take(data, false)
    }

    fn take(&mut self, data: &[u8], at_eof: bool) -> String {
        self.buf.extend_from_slice(data);
        let mut out = String::new();
        if self.json {
            // Whole JSON values, however they are split into lines.
            loop {
                let start = self
                    .buf
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(self.buf.len());
                self.buf.drain(..start);
                if self.buf.is_empty() {
                    break;
                }
                let mut it = serde_json::Deserializer::from_slice(&self.buf)
                    .into_iter::<serde_json::Value>();
                match it.next() {
                    Some(Ok(v)) => {
                        let used = it.byte_offset();
                        // `12` may be the start of `123`: a bare value ends
                        // with what follows it.
                        if !at_eof && used == self.buf.len() && !(v.is_object() || v.is_array()) {
                            break;
                        }
                        out.push_str(&self.json_value(v));
                        self.buf.drain(..used);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    _ => {
                        // Not JSON: pass the line on as text.
                        let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                            break;
                        };
                        let line: Vec<u8> = self.buf.drain(..=nl).collect();
                        out.push_str(&self.text_line(&line[..line.len() - 1]));
                    }
                }
            }
        } else {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                out.push_str(&self.text_line(&line[..line.len() - 1]));
            }
        }
        out
    }

    /// At EOF: whatever is left, as text.
    pub fn finish(&mut self) -> String {
        let mut out = self.take(b"", true);
        let rest: Vec<u8> = std::mem::take(&mut self.buf);
        for line in rest.split(|&b| b == b'\n') {
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push_str(&self.text_line(line));
            }
        }
        out
    }
}

/// A child's stderr line without `sentinel: ` and its own `HOST: ` prefix.
pub fn reason(label: &str, line: &str) -> String {
    let l = line.trim_end();
    let l = l.strip_prefix("sentinel: ").unwrap_or(l);
    l.strip_prefix(&format!("{label}: "))
        .unwrap_or(l)
        .to_string()
}

struct Running {
    label: String,
    child: Child,
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    tag: Tagger,
    err_buf: Vec<u8>,
    /// The last thing it said on stderr: why it failed, if it did.
    last_err: Option<String>,
}

impl Running {
    fn err_lines(&mut self, all: bool) {
        let mut text = String::new();
        loop {
            let line: Vec<u8> = match self.err_buf.iter().position(|&b| b == b'\n') {
                Some(nl) => self.err_buf.drain(..=nl).collect(),
                None if all && !self.err_buf.is_empty() => std::mem::take(&mut self.err_buf),
                None => break,
            };
            let line = String::from_utf8_lossy(&line);
            if line.trim().is_empty() {
                continue;
            }
            let r = reason(&self.label, &line);
            text.push_str(&format!("{}: {r}\n", self.label));
            self.last_err = Some(r);
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
    }
}

fn print(s: &str) {
    if s.is_empty() {
        return;
    }
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Run the command (`raw`: this process's arguments) on every host, at
/// most `parallel` at once; the exit code (1 when any host failed).
pub fn run(hosts: &[Host], raw: &[OsString], parallel: usize) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sentinel: cannot find my own executable to run per host: {e}");
            return 1;
        }
    };
    let json = wants_json(raw);
    let width = hosts.iter().map(|h| h.label.len()).max().unwrap_or(0);
    let mut pending = hosts.iter();
    let mut running: Vec<Running> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while running.len() < parallel.max(1) {
            let Some(h) = pending.next() else { break };
            let spawned = Command::new(&exe)
                .args(child_args(raw, &h.label))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            match spawned {
                Ok(mut child) => running.push(Running {
                    label: h.label.clone(),
                    out: child.stdout.take(),
                    err: child.stderr.take(),
                    child,
                    tag: Tagger::new(&h.label, width, json),
                    err_buf: Vec::new(),
                    last_err: None,
                }),
                Err(e) => failed.push((h.label.clone(), format!("cannot start: {e}"))),
            }
        }
        if running.is_empty() {
            break;
        }
        // Which pipe of which child is ready: (index, stdout?).
        let mut ready: Vec<(usize, bool)> = Vec::new();
        {
            let mut fds = Vec::new();
            let mut which = Vec::new();
            for (i, r) in running.iter().enumerate() {
                if let Some(o) = &r.out {
                    fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                    which.push((i, true));
                }
                if let Some(e) = &r.err {
                    fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
                    which.push((i, false));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("sentinel: poll: {}", e.desc());
                    return 1;
                }
            }
            for (fd, w) in fds.iter().zip(which) {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    ready.push(w);
                }
            }
        }
        for (i, is_out) in ready {
            let r = &mut running[i];
            let n = if is_out {
                r.out.as_mut().map(|p| p.read(&mut buf))
            } else {
                r.err.as_mut().map(|p| p.read(&mut buf))
            };
            match (n, is_out) {
                (Some(Ok(n)), true) if n > 0 => print(&r.tag.feed(&buf[..n])),
                (Some(Ok(n)), false) if n > 0 => {
                    r.err_buf.extend_from_slice(&buf[..n]);
                    r.err_lines(false);
                }
                (Some(Err(e)), _) if e.kind() == std::io::ErrorKind::Interrupted => {}
                (_, true) => {
                    r.out = None;
                    print(&r.tag.finish());
                }
                (_, false) => {
                    r.err = None;
                    r.err_lines(true);
                }
            }
        }
        let mut k = 0;
        while k < running.len() {
            if running[k].out.is_some() || running[k].err.is_some() {
                k += 1;
                continue;
            }
            let mut r = running.remove(k);
            match r.child.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push((
                    r.label,
                    r.last_err.unwrap_or_else(|| format!("failed ({s})")),
                )),
                Err(e) => failed.push((r.label, format!("wait: {e}"))),
            }
        }
    }
    if failed.is_empty() {
        return 0;
    }
    // In the order given.
    failed.sort_by_key(|(l, _)| hosts.iter().position(|h| &h.label == l));
    let mut text = format!(
        "sentinel: {} of {} hosts failed:\n",
        failed.len(),
        hosts.len()
    );
    for (label, why) in &failed {
        text.push_str(&format!("  {label}: {why}\n"));
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn each_child_gets_one_host_and_the_same_command() {
        let raw = os(&[
            "--parallel",
            "4",
            "-H",
            "@web",
            "--remote-sentinel",
            "/opt/s",
            "logs",
            "-f",
            "web",
            "-H",
            "x",
        ]);
        assert_eq!(
            child_args(&raw, "web1"),
            os(&[
                "-H",
                "web1",
                "--remote-sentinel",
                "/opt/s",
                "logs",
                "-f",
                "web",
                "-H",
                "x"
            ])
        );
        assert!(!wants_json(&raw));
        assert!(wants_json(&os(&["-H", "--json", "status", "--json"])));
        assert!(!wants_json(&os(&["-H", "--json", "status"])));
    }

    #[test]
    fn text_lines_are_prefixed_and_aligned() {
        let mut t = Tagger::new("db", 4, false);
        assert_eq!(t.feed(b"NAME STATE\nweb run"), "db:   NAME STATE\n");
        assert_eq!(t.feed(b"ning\n"), "db:   web running\n");
        assert_eq!(t.feed(b"tail"), "");
        assert_eq!(t.finish(), "db:   tail\n");
    }

    #[test]
    fn json_objects_get_the_host_however_they_are_split() {
        let mut t = Tagger::new("web1", 4, true);
        assert_eq!(t.feed(b"{\n  \"services\": [],\n"), "");
        assert_eq!(
            t.feed(b"  \"supervisor\": null\n}\n{\"text\":\"a\"}\n[1]"),
            "{\"host\":\"web1\",\"services\":[],\"supervisor\":null}\n{\"host\":\"web1\",\"text\":\"a\"}\n\
             {\"host\":\"web1\",\"value\":[1]}\n"
        );
        assert_eq!(t.feed(b"12"), "");
        assert_eq!(
            t.feed(b"3\nnot json\n"),
            "{\"host\":\"web1\",\"value\":123}\nweb1: not json\n"
        );
        assert_eq!(t.feed(b"{\"half\":"), "");
        assert_eq!(t.finish(), "web1: {\"half\":\n");
    }

    #[test]
    fn reasons_lose_the_repeated_prefixes() {
        assert_eq!(
            reason("db", "sentinel: db: connection refused\n"),
            "connection refused"
        );
        assert_eq!(reason("db", "something else"), "something else");
    }
}
