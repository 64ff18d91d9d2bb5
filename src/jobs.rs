//! Short-lived commands run beside the services, without ever blocking the
//! loop: event hooks (stdout not kept) and autoscale policies (stdout is the
//! answer). Each gets bytes on stdin, has its stdout captured up to
//! [`STDOUT_CAP`] and the start of its stderr kept for error messages, runs in
//! its own session (so a timeout kills its whole process group), and is
//! killed after its timeout.
//!
//! # How the loop drives it
//!
//! ```text
//! let mut jobs = Jobs::new(JOBS_BASE)?;            // tokens JOBS_BASE .. JOBS_BASE + TOKEN_SPAN
//! jobs.start(kind, spec, now, registry)?           // JobId; Err = nothing runs (not found, table full, ...)
//! // poll events:
//! Token(t) if jobs.owns_token(Token(t)) => jobs.on_ready(Token(t), registry)
//! // after each waitpid(-1) reap (WaitStatus::Exited / Signaled):
//! if jobs.reaped(status, registry) { /* it was a job's pid */ }
//! // deadlines: push jobs.next_deadline() into the heap after start/on_timeout;
//! // when it fires (stale entries are harmless):
//! jobs.on_timeout(now, registry)
//! // after any of the above:
//! for f in jobs.take_finished() { match f.kind { JobKind::Hook(_) => hooks.on_finished(..), JobKind::Policy(s) => .. } }
//! // shutdown: jobs.kill_all(registry), then keep reaping until jobs.running() == 0
//! ```
//!
//! A job is finished when the loop reaps its process: whatever the process
//! wrote before exiting is then in the pipe and is read right away; what a
//! leftover background process might still write is not waited for. A job
//! that timed out is SIGKILLed as a process group (pgid = its pid, which
//! stays reserved until the loop reaps it, so the kill cannot hit a reused
//! pid) and its pipes are closed at once; it finishes `TimedOut` when reaped.
//!
//! Pipes: sentinel's ends are non-blocking and registered in the loop; the
//! child's are blocking. stdin is written as the pipe takes it; a child that
//! exits or closes stdin early makes the write fail with EPIPE, which ends
//! the writing quietly (sentinel's `run` keeps Rust's ignored SIGPIPE, so a
//! write to a closed pipe is an error, never a signal). stdout beyond
//! [`STDOUT_CAP`] fails the job and closes the pipe (the child then gets
//! SIGPIPE). stderr is read and thrown away after its first
//! [`STDERR_KEEP`] bytes; a child that floods it faster than the loop reads
//! (more than [`STDERR_DRAIN`] in one event) has it closed.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::unix::pipe::{self, Receiver, Sender};
use mio::{Interest, Registry, Token};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Most jobs at once (hooks and policies together).
pub const MAX_JOBS: usize = 64;
/// Tokens per job: stdin, stdout, stderr.
const TOKENS_PER_JOB: usize = 3;
/// Tokens used from the base given to [`Jobs::new`].
pub const TOKEN_SPAN: usize = MAX_JOBS * TOKENS_PER_JOB;
/// Most stdout kept; more fails the job.
pub const STDOUT_CAP: usize = 64 * 1024;
/// stderr kept for the failure message.
pub const STDERR_KEEP: usize = 512;
/// Most stderr read in one event before the pipe is closed.
pub const STDERR_DRAIN: usize = 1024 * 1024;

/// The caller's tag of a job, handed back in [`Finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Index into the hooks list.
    Hook(usize),
    /// The service whose autoscale policy runs.
    Policy(usize),
}

/// A job's identity, unique for the life of a [`Jobs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

/// What to run.
#[derive(Debug, Clone)]
pub struct JobSpec<'a> {
    /// Program and arguments (the program is looked up in the env's `PATH`).
    pub argv: &'a [String],
    /// The whole environment.
    pub env: &'a [(String, String)],
    /// Written to its stdin, which is then closed (empty: /dev/null).
    pub stdin: Vec<u8>,
    /// Killed (the whole process group) after this.
    pub timeout: Duration,
    /// Keep stdout (else it goes to /dev/null).
    pub capture_stdout: bool,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0. `stdout` is empty unless captured.
    Ok { stdout: Vec<u8> },
    /// Non-zero exit, killed by a signal, too much output, or killed at
    /// shutdown: `exit 3: first line of stderr`.
    Failed { why: String },
    /// Killed after its timeout.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: JobId,
    pub kind: JobKind,
    pub outcome: Outcome,
}

/// Why sentinel killed a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    No,
    Timeout,
    Shutdown,
}

struct Job {
    id: JobId,
    kind: JobKind,
    pid: Pid,
    deadline: Instant,
    killed: Killed,
    stdin: Option<Sender>,
    input: Vec<u8>,
    written: usize,
    stdout: Option<Receiver>,
    out: Vec<u8>,
    overflow: bool,
    stderr: Option<Receiver>,
    err: Vec<u8>,
}

/// The running jobs, in slots; slot `s` owns tokens `base + 3s .. base + 3s + 3`.
pub struct Jobs {
    base: usize,
    slots: Vec<Option<Job>>,
    next_id: u64,
    finished: Vec<Finished>,
    dev_null: OwnedFd,
}

fn close<S: Source>(s: &mut Option<S>, registry: &Registry) {
    if let Some(mut s) = s.take() {
        let _ = registry.deregister(&mut s);
    }
}

impl Job {
    /// Write stdin until the pipe is full; close it when done or when the
    /// child no longer reads (EPIPE).
    fn write_stdin(&mut self, registry: &Registry) {
        let Some(w) = self.stdin.as_mut() else {
            return;
        };
        while self.written < self.input.len() {
            match w.write(&self.input[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EPIPE and anything else: the child does not want the rest.
                Err(_) => break,
            }
        }
        close(&mut self.stdin, registry);
        self.input = Vec::new();
    }

    fn read_stdout(&mut self, registry: &Registry) {
        let Some(r) = self.stdout.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if self.out.len() + n > STDOUT_CAP => {
                    self.overflow = true;
                    break;
                }
                Ok(n) => self.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        close(&mut self.stdout, registry);
    }

    fn read_stderr(&mut self, registry: &Registry) {
        let Some(r) = self.stderr.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        let mut budget = STDERR_DRAIN;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let keep = n.min(STDERR_KEEP - self.err.len());
                    self.err.extend_from_slice(&buf[..keep]);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        close(&mut self.stderr, registry);
    }

    fn close_all(&mut self, registry: &Registry) {
        close(&mut self.stdin, registry);
        close(&mut self.stdout, registry);
        close(&mut self.stderr, registry);
        self.input = Vec::new();
    }

    /// The first non-empty line of stderr, shortened, if any.
    fn stderr_line(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.err);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        let mut short: String = line.chars().take(200).collect();
        if short.len() < line.len() {
            short.push('…');
        }
        Some(short)
    }

    fn outcome(&self, status: WaitStatus) -> Outcome {
        match self.killed {
            Killed::Timeout => return Outcome::TimedOut,
            Killed::Shutdown => {
                return Outcome::Failed {
                    why: "killed: sentinel is stopping".into(),
                }
            }
            Killed::No => {}
        }
        if self.overflow {
            return Outcome::Failed {
                why: format!("wrote more than {} KiB to stdout", STDOUT_CAP / 1024),
            };
        }
        let why = match status {
            WaitStatus::Exited(_, 0) => {
                return Outcome::Ok {
                    stdout: self.out.clone(),
                }
            }
            WaitStatus::Exited(_, code) => format!("exit {code}"),
            WaitStatus::Signaled(_, sig, _) => {
                format!("killed by {}", crate::config::signal_name(sig as i32))
            }
            other => format!("{other:?}"),
        };
        Outcome::Failed {
            why: match self.stderr_line() {
                Some(line) => format!("{why}: {line}"),
                None => why,
            },
        }
    }
}

fn pipe_pair(child_reads: bool) -> Result<(Sender, Receiver), String> {
    let (w, r) = pipe::new().map_err(|e| format!("pipe: {e}"))?;
    // The child's end blocks; sentinel's stays non-blocking.
    let set = if child_reads {
        r.set_nonblocking(false)
    } else {
        w.set_nonblocking(false)
    };
    set.map_err(|e| format!("pipe: {e}"))?;
    Ok((w, r))
}

impl Jobs {
    /// No jobs yet; tokens `token_base .. token_base + TOKEN_SPAN` are ours.
    pub fn new(token_base: usize) -> Result<Jobs, String> {
        Ok(Jobs {
            base: token_base,
            slots: Vec::new(),
            next_id: 0,
            finished: Vec::new(),
            dev_null: sys::spawn::dev_null().map_err(|e| format!("/dev/null: {e}"))?,
        })
    }

    /// Whether `token` is in this table's range.
    pub fn owns_token(&self, token: Token) -> bool {
        (self.base..self.base + TOKEN_SPAN).contains(&token.0)
    }

    /// Whether `pid` is a running job's process.
    #[cfg(test)]
    pub fn owns(&self, pid: i32) -> bool {
        self.slots.iter().flatten().any(|j| j.pid.as_raw() == pid)
    }

    /// Jobs not yet reaped.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The pids of the jobs not yet reaped.
    pub fn pids(&self) -> Vec<i32> {
        self.slots
            .iter()
            .flatten()
            .map(|j| j.pid.as_raw())
            .collect()
    }

    /// Start `spec` tagged `kind`. On success the process runs (its
    /// `execve` succeeded) and the job will come out of
    /// [`take_finished`](Self::take_finished) once reaped. On error nothing
    /// runs: the table is full, the command has a NUL, a pipe failed, or the
    /// spawn failed (`execve(notify): No such file or directory`).
    pub fn start(
        &mut self,
        kind: JobKind,
        spec: JobSpec<'_>,
        now: Instant,
        registry: &Registry,
    ) -> Result<JobId, String> {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(s) => s,
            None if self.slots.len() < MAX_JOBS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(format!("{MAX_JOBS} commands are running already")),
        };
        let plan = sys::spawn::Plan::new(spec.argv, spec.env, None, sys::spawn::Session::New)
            .map_err(|e| e.to_string())?;
        let token = |k: usize| Token(self.base + TOKENS_PER_JOB * slot + k);

        let mut stdin = if spec.stdin.is_empty() {
            None
        } else {
            Some(pipe_pair(true)?)
        };
        let mut stdout = if spec.capture_stdout {
            Some(pipe_pair(false)?)
        } else {
            None
        };
        let (err_w, mut err_r) = pipe_pair(false)?;
        let register = |s: &mut dyn Source, t: Token, i: Interest| {
            registry
                .register(s, t, i)
                .map_err(|e| format!("register pipe: {e}"))
        };
        if let Some((w, _)) = stdin.as_mut() {
            register(w, token(0), Interest::WRITABLE)?;
        }
        if let Some((_, r)) = stdout.as_mut() {
            register(r, token(1), Interest::READABLE)?;
        }
        register(&mut err_r, token(2), Interest::READABLE)?;

        let null = self.dev_null.as_fd();
        let stdio = [
            sys::spawn::Stdio::Fd(stdin.as_ref().map_or(null, |(_, r)| r.as_fd())),
            sys::spawn::Stdio::Fd(stdout.as_ref().map_or(null, |(w, _)| w.as_fd())),
            sys::spawn::Stdio::Fd(err_w.as_fd()),
        ];
        let spawned = sys::spawn::spawn(&plan, &stdio, None);
        // Only the child holds its ends now.
        drop(err_w);
        let mut stdin = stdin.map(|(w, _)| w);
        let mut stdout = stdout.map(|(_, r)| r);
        let mut stderr = Some(err_r);
        let pid = match spawned {
            Ok(child) => child.pid,
            Err(e) => {
                close(&mut stdin, registry);
                close(&mut stdout, registry);
                close(&mut stderr, registry);
                return Err(e.to_string());
            }
        };
        let mut job = Job {
            id: JobId(self.next_id),
            kind,
            pid,
            deadline: now + spec.timeout,
            killed: Killed::No,
            stdin,
            input: spec.stdin,
            written: 0,
            stdout,
            out: Vec::new(),
            overflow: false,
            stderr,
            err: Vec::new(),
        };
        self.next_id += 1;
        job.write_stdin(registry);
        let id = job.id;
        self.slots[slot] = Some(job);
        Ok(id)
    }

    /// An event on one of our tokens (others are ignored). Everything is
    /// retried until `WouldBlock`, so stale or merged events are harmless.
    pub fn on_ready(&mut self, token: Token, registry: &Registry) {
        if !self.owns_token(token) {
            return;
        }
        let rel = token.0 - self.base;
        let Some(Some(job)) = self.slots.get_mut(rel / TOKENS_PER_JOB) else {
            return;
        };
        match rel % TOKENS_PER_JOB {
            0 => job.write_stdin(registry),
            1 => job.read_stdout(registry),
            _ => job.read_stderr(registry),
        }
    }

    /// The loop reaped a process: when it is a job's, read what it left in
    /// its pipes, close them and finish the job (true); else false.
    pub fn reaped(&mut self, status: WaitStatus, registry: &Registry) -> bool {
        let pid = match status {
            WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _) => pid,
            _ => return false,
        };
        let Some(slot) = self
            .slots
            .iter()
            .position(|j| j.as_ref().is_some_and(|j| j.pid == pid))
        else {
            return false;
        };
        let Some(mut job) = self.slots[slot].take() else {
            return false;
        };
        job.read_stdout(registry);
        job.read_stderr(registry);
        job.close_all(registry);
        self.finished.push(Finished {
            id: job.id,
            kind: job.kind,
            outcome: job.outcome(status),
        });
        true
    }

    /// The earliest timeout among jobs not yet killed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter(|j| j.killed == Killed::No)
            .map(|j| j.deadline)
            .min()
    }

    /// SIGKILL the process group of every job past its timeout and close its
    /// pipes; each finishes `TimedOut` when reaped.
    pub fn on_timeout(&mut self, now: Instant, registry: &Registry) {
        for job in self.slots.iter_mut().flatten() {
            if job.killed == Killed::No && job.deadline <= now {
                job.killed = Killed::Timeout;
                let _ = killpg(job.pid, Signal::SIGKILL);
                job.close_all(registry);
            }
        }
    }

    /// Shutdown: SIGKILL every job's process group; each finishes `Failed`
    /// when reaped.
    pub fn kill_all(&mut self, registry: &Registry) {
        for job in self.slots.iter_mut().flatten() {
            if job.killed == Killed::No {
                job.killed = Killed::Shutdown;
                let _ = killpg(job.pid, Signal::SIGKILL);
                job.close_all(registry);
            }
        }
    }

    /// Jobs finished since the last call, in the order they finished.
    pub fn take_finished(&mut self) -> Vec<Finished> {
        std::mem::take(&mut self.finished)
    }
}

#[cfg(test)]
pub(crate) mod tests;
