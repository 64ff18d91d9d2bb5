//! Jobs driven by a real mio Poll and real processes, reaped by pid (the
//! test threads share one process, so never `waitpid(-1)` here).

use super::*;
use mio::{Events, Poll};
use nix::sys::wait::{waitpid, WaitPidFlag};

/// A small loop around a [`Jobs`], as the event loop drives it.
pub(crate) struct Rig {
    pub poll: Poll,
    pub jobs: Jobs,
    events: Events,
}

pub(crate) fn env() -> Vec<(String, String)> {
    vec![("PATH".into(), sys::spawn::DEFAULT_PATH.into())]
}

pub(crate) fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

const BASE: usize = 100;

impl Rig {
    pub(crate) fn new() -> Rig {
        Rig {
            poll: Poll::new().unwrap(),
            jobs: Jobs::new(BASE).unwrap(),
            events: Events::with_capacity(64),
        }
    }

    pub(crate) fn start(
        &mut self,
        kind: JobKind,
        argv: &[String],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<JobId, String> {
        let env = env();
        let spec = JobSpec {
            argv,
            env: &env,
            stdin: stdin.to_vec(),
            timeout,
            capture_stdout: true,
        };
        self.jobs
            .start(kind, spec, Instant::now(), self.poll.registry())
    }

    /// One loop turn: events, timeouts, reaping our own pids. The short poll
    /// timeout stands in for SIGCHLD (callers bound the turns by a deadline).
    pub(crate) fn turn(&mut self) {
        let wait = Duration::from_millis(10);
        let timeout = self.jobs.next_deadline().map_or(wait, |d| {
            d.saturating_duration_since(Instant::now()).min(wait)
        });
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        for ev in self.events.iter() {
            self.jobs.on_ready(ev.token(), self.poll.registry());
        }
        self.jobs.on_timeout(Instant::now(), self.poll.registry());
        for pid in self.jobs.pids() {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).unwrap() {
                WaitStatus::StillAlive => {}
                s => assert!(self.jobs.reaped(s, self.poll.registry())),
            }
        }
    }

    /// Turn until no job runs; everything that finished, in order.
    pub(crate) fn finish_all(&mut self, limit: Duration) -> Vec<Finished> {
        let deadline = Instant::now() + limit;
        let mut done = Vec::new();
        loop {
            done.extend(self.jobs.take_finished());
            if self.jobs.running() == 0 {
                return done;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still running after {limit:?}: {:?}",
                self.jobs.pids()
            );
            self.turn();
        }
    }
}

const LONG: Duration = Duration::from_secs(20);

fn run_one(argv_: &[&str], stdin: &[u8], timeout: Duration) -> Outcome {
    let mut rig = Rig::new();
    let id = rig
        .start(JobKind::Hook(7), &argv(argv_), stdin, timeout)
        .unwrap();
    let done = rig.finish_all(LONG);
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].id, done[0].kind), (id, JobKind::Hook(7)));
    done[0].outcome.clone()
}

fn ok(s: &str) -> Outcome {
    Outcome::Ok {
        stdout: s.as_bytes().to_vec(),
    }
}

#[test]
fn cat_echoes_its_stdin() {
    assert_eq!(
        run_one(&["cat"], b"{\"event\":\"ready\"}\n", LONG),
        ok("{\"event\":\"ready\"}\n")
    );
}

#[test]
fn echo_without_stdin() {
    assert_eq!(
        run_one(
            &["sh", "-c", "echo 3; test -t 0 || read x || echo eof"],
            b"",
            LONG
        ),
        ok("3\neof\n")
    );
}

#[test]
fn large_stdin_goes_through_in_pieces() {
    let input: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(
        run_one(&["sh", "-c", "wc -c"], &input, LONG),
        ok("300000\n")
    );
}

#[test]
fn non_zero_exit_fails_with_the_first_stderr_line() {
    assert_eq!(
        run_one(
            &[
                "sh",
                "-c",
                "echo; echo '  no route to host ' >&2; echo more >&2; exit 3"
            ],
            b"",
            LONG
        ),
        Outcome::Failed {
            why: "exit 3: no route to host".into()
        }
    );
    assert_eq!(
        run_one(&["sh", "-c", "exit 1"], b"", LONG),
        Outcome::Failed {
            why: "exit 1".into()
        }
    );
    assert_eq!(
        run_one(&["sh", "-c", "kill -TERM $$"], b"", LONG),
        Outcome::Failed {
            why: "killed by SIGTERM".into()
        }
    );
}

#[test]
fn a_missing_command_is_an_error_at_start_and_leaves_nothing_running() {
    let mut rig = Rig::new();
    let err = rig
        .start(JobKind::Policy(0), &argv(&["no-such-hook-xyz"]), b"x", LONG)
        .unwrap_err();
    assert_eq!(err, "execve(no-such-hook-xyz): No such file or directory");
    assert_eq!(rig.jobs.running(), 0);
    assert!(rig.jobs.take_finished().is_empty());
    // The slot is free again.
    rig.start(JobKind::Policy(0), &argv(&["true"]), b"", LONG)
        .unwrap();
    assert_eq!(rig.finish_all(LONG)[0].outcome, ok(""));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = std::env::temp_dir().join(format!("sentinel-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("bg.pid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let mut rig = Rig::new();
    let started = Instant::now();
    rig.start(
        JobKind::Hook(0),
        &argv(&["sh", "-c", &script]),
        b"",
        Duration::from_millis(300),
    )
    .unwrap();
    let done = rig.finish_all(LONG);
    assert_eq!(done[0].outcome, Outcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(rig.jobs.next_deadline().is_none());
    // The background sleep was in the group: it is dead too (gone, or a
    // zombie waiting for init).
    let bg = std::fs::read_to_string(&pidfile).unwrap();
    let stat = format!("/proc/{}/stat", bg.trim());
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            Ok(s) if s.rsplit(')').next().unwrap().trim_start().starts_with('Z') => break,
            Ok(s) => assert!(Instant::now() < limit, "background sleep alive: {s}"),
        }
        std::thread::sleep(Duration::from_millis(10)); // poll interval, bounded above
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_child_that_never_reads_a_big_stdin_does_not_block_start() {
    let input = vec![b'x'; 1024 * 1024];
    let mut rig = Rig::new();
    let t = Instant::now();
    rig.start(
        JobKind::Hook(0),
        &argv(&["sh", "-c", "sleep 0.3; echo done"]),
        &input,
        LONG,
    )
    .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(rig.finish_all(LONG)[0].outcome, ok("done\n"));
}

/// Rust's runtime ignores SIGPIPE, and so does `sentinel run`: a write to a
/// pipe whose reader is gone is EPIPE, which ends the writing quietly.
#[test]
fn a_reader_that_stops_early_gives_epipe_not_a_signal() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ign = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap();
    let ign = u64::from_str_radix(ign.trim(), 16).unwrap();
    assert_ne!(ign & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE not ignored");
    let input = vec![b'y'; 1024 * 1024];
    assert_eq!(run_one(&["head", "-c", "5"], &input, LONG), ok("yyyyy"));
    assert_eq!(run_one(&["true"], &input, LONG), ok(""));
}

#[test]
fn too_much_stdout_fails() {
    assert_eq!(
        run_one(&["head", "-c", "100000", "/dev/zero"], b"", LONG),
        Outcome::Failed {
            why: "wrote more than 64 KiB to stdout".into()
        }
    );
    // Exactly the cap is fine.
    let Outcome::Ok { stdout } = run_one(&["head", "-c", "65536", "/dev/zero"], b"", LONG) else {
        panic!("not ok");
    };
    assert_eq!(stdout.len(), STDOUT_CAP);
}

#[test]
fn stdout_not_captured_goes_to_dev_null() {
    let mut rig = Rig::new();
    let env = env();
    let argv = argv(&["sh", "-c", "head -c 200000 /dev/zero"]);
    let spec = JobSpec {
        argv: &argv,
        env: &env,
        stdin: Vec::new(),
        timeout: LONG,
        capture_stdout: false,
    };
    rig.jobs
        .start(JobKind::Hook(1), spec, Instant::now(), rig.poll.registry())
        .unwrap();
    assert_eq!(rig.finish_all(LONG)[0].outcome, ok(""));
}

#[test]
fn several_jobs_at_once_finish_independently() {
    let mut rig = Rig::new();
    for i in 0..5 {
        let script = format!("read x; echo $x-{i}; exit $(( {i} % 2 ))");
        rig.start(
            JobKind::Policy(i),
            &argv(&["sh", "-c", &script]),
            format!("n{i}\n").as_bytes(),
            LONG,
        )
        .unwrap();
    }
    assert_eq!(rig.jobs.running(), 5);
    let pids = rig.jobs.pids();
    assert!(pids.iter().all(|p| rig.jobs.owns(*p)));
    assert!(!rig.jobs.owns(std::process::id() as i32));
    let mut done = rig.finish_all(LONG);
    done.sort_by_key(|f| f.id);
    for (i, f) in done.iter().enumerate() {
        assert_eq!(f.kind, JobKind::Policy(i));
        if i % 2 == 0 {
            assert_eq!(f.outcome, ok(&format!("n{i}-{i}\n")));
        } else {
            assert_eq!(
                f.outcome,
                Outcome::Failed {
                    why: "exit 1".into()
                }
            );
        }
    }
}

#[test]
fn tokens_and_foreign_pids_are_left_alone() {
    let mut rig = Rig::new();
    assert!(rig.jobs.owns_token(Token(BASE)));
    assert!(rig.jobs.owns_token(Token(BASE + TOKEN_SPAN - 1)));
    assert!(!rig.jobs.owns_token(Token(BASE - 1)));
    assert!(!rig.jobs.owns_token(Token(BASE + TOKEN_SPAN)));
    // Events for empty slots or others' tokens do nothing.
    rig.jobs.on_ready(Token(BASE + 5), rig.poll.registry());
    rig.jobs.on_ready(Token(3), rig.poll.registry());
    let other = WaitStatus::Exited(Pid::from_raw(1), 0);
    assert!(!rig.jobs.reaped(other, rig.poll.registry()));
}

#[test]
fn kill_all_fails_the_running_jobs() {
    let mut rig = Rig::new();
    rig.start(JobKind::Hook(0), &argv(&["sleep", "30"]), b"", LONG)
        .unwrap();
    rig.jobs.kill_all(rig.poll.registry());
    assert_eq!(
        rig.finish_all(LONG)[0].outcome,
        Outcome::Failed {
            why: "killed: sentinel is stopping".into()
        }
    );
}
