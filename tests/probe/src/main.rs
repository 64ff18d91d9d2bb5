//! sentinel-probe: prints what a process got, one `key=value` per line, so
//! tests can check isolation from the inside (youki's approach).
//!
//! `sentinel-probe [--try OP]... [--hold]`, where OP is one of
//! `write:PATH` (create and remove PATH/.probe, or PATH itself if a file),
//! `mkdir:PATH`, `read:PATH`, `socket:netlink`, `socket:inet`.
//! Each try prints `try.OP=ok` or `try.OP=ERRNO-NAME`. `--hold` then
//! sleeps until killed (for stats and stop tests). Workloads for cgroup
//! tests, after the report: `--alloc MB` touches MB MiB of memory and holds
//! it, `--burn` spins on one CPU, `--fork-bomb` spawns copies of itself
//! that spawn copies, forever (contained by `pids_max`).
//!
//! Files and variables (secrets tests), each printed without its content:
//! `--stat PATH` prints `stat.PATH=MODE:UID:GID` (mode in octal), `--digest
//! PATH` prints `digest.PATH=LEN:FNV` (length and FNV-1a 64 of the bytes),
//! `--env-digest NAME` the same for a variable (or `unset`), and `--env
//! NAME` prints `env.NAME=VALUE` (or `unset`) for variables that are not
//! secret.
#![forbid(unsafe_code)]

use std::fs;

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

fn attempt(op: &str) -> String {
    let result: std::io::Result<()> = match op.split_once(':') {
        Some(("write", path)) => {
            let p = std::path::Path::new(path);
            if p.is_dir() {
                let f = p.join(".probe");
                fs::write(&f, b"x").and_then(|_| fs::remove_file(&f))
            } else {
                fs::OpenOptions::new().append(true).open(p).map(drop)
            }
        }
        Some(("mkdir", path)) => fs::create_dir(path).and_then(|_| fs::remove_dir(path)),
        Some(("read", path)) => fs::read(path).map(drop),
        Some(("socket", kind)) => {
            use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
            let family = if kind == "netlink" {
                AddressFamily::Netlink
            } else {
                AddressFamily::Inet
            };
            let ty = if kind == "netlink" {
                SockType::Raw
            } else {
                SockType::Stream
            };
            socket(family, ty, SockFlag::SOCK_CLOEXEC, None)
                .map(drop)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        }
        _ => return "bad-op".into(),
    };
    match result {
        Ok(()) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

/// `LEN:HEX` of FNV-1a 64: tells whether the bytes arrived, without them.
fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}:{h:016x}", bytes.len())
}

fn file_report(op: &str, path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let r = match op {
        "stat" => {
            fs::metadata(path).map(|m| format!("{:04o}:{}:{}", m.mode() & 0o7777, m.uid(), m.gid()))
        }
        _ => fs::read(path).map(|b| digest(&b)),
    };
    r.unwrap_or_else(|e| errno_name(&e))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut out = Vec::new();
    out.push(format!("pid={}", std::process::id()));
    out.push(format!("uid={}", nix::unistd::getuid()));
    out.push(format!("gid={}", nix::unistd::getgid()));
    let groups: Vec<String> = nix::unistd::getgroups()
        .unwrap_or_default()
        .iter()
        .map(|g| g.to_string())
        .collect();
    out.push(format!("groups={}", groups.join(",")));
    out.push(format!("nice={}", sys::process::nice()));
    out.push(format!("ioprio={}", sys::process::ioprio()));
    let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v2 = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("");
    out.push(format!("cgroup={v2}"));
    for key in [
        "NoNewPrivs",
        "Seccomp",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
    ] {
        out.push(format!("{key}={}", status_field(&status, key)));
    }
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.push(format!("hostname={host}"));
    let dev = fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    out.push(format!("interfaces={}", ifaces.join(",")));
    let oom = fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    out.push(format!("oom_score_adj={}", oom.trim()));
    let nofile = fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .take(2)
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    out.push(format!("nofile={nofile}"));
    let mut hold = false;
    let mut alloc_mb: Option<usize> = None;
    let mut burn = false;
    let mut bomb = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--try" => {
                if let Some(op) = it.next() {
                    out.push(format!("try.{op}={}", attempt(op)));
                }
            }
            "--stat" | "--digest" => {
                if let Some(path) = it.next() {
                    let op = &a[2..];
                    out.push(format!("{op}.{path}={}", file_report(op, path)));
                }
            }
            "--env" | "--env-digest" => {
                if let Some(name) = it.next() {
                    let v = std::env::var_os(name).map(|v| v.into_encoded_bytes());
                    let shown = match (a.as_str(), v) {
                        (_, None) => "unset".to_string(),
                        ("--env", Some(v)) => String::from_utf8_lossy(&v).into_owned(),
                        (_, Some(v)) => digest(&v),
                    };
                    out.push(format!("{}.{name}={shown}", &a[2..]));
                }
            }
            "--hold" => hold = true,
            "--alloc" => alloc_mb = it.next().and_then(|m| m.parse().ok()),
            "--burn" => burn = true,
            "--fork-bomb" => bomb = true,
            "--serve" => std::process::exit(serve()),
            other => out.push(format!("unknown-arg={other}")),
        }
    }
    println!("{}", out.join("\n"));
    if let Some(mb) = alloc_mb {
        // Touch every page so that it is really charged to the cgroup.
        let mut held: Vec<Vec<u8>> = Vec::new();
        for i in 0..mb {
            held.push(vec![1u8; 1 << 20]);
            if i % 16 == 0 {
                println!("allocated={}M", i + 1);
            }
        }
        println!("allocated={mb}M");
        std::hint::black_box(&held);
        hold = true;
    }
    if burn {
        let mut x: u64 = 1;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    if bomb {
        let me = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        loop {
            // Failures (EAGAIN under pids.max) are the point: keep trying.
            let _ = std::process::Command::new(&me)
                .arg("--fork-bomb")
                .stdout(std::process::Stdio::null())
                .spawn();
            std::thread::yield_now();
        }
    }
    if hold {
        loop {
            std::thread::park();
        }
    }
}

/// `--serve`: a tiny HTTP server on the socket sentinel passes as fd 3
/// (systemd socket activation: LISTEN_FDS, LISTEN_PID). Each answer names
/// the instance and pid. SIGTERM stops it gracefully: the request being
/// answered is finished, the rest stay queued in the shared socket for the
/// other instances.
fn serve() -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::SignalFd;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    let pid = std::process::id().to_string();
    let listen_pid = std::env::var("LISTEN_PID").unwrap_or_default();
    let fds = std::env::var("LISTEN_FDS").unwrap_or_default();
    if listen_pid != pid || fds.parse::<i32>().unwrap_or(0) < 1 {
        eprintln!("serve: LISTEN_PID={listen_pid} (mine is {pid}), LISTEN_FDS={fds}");
        return 3;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.thread_block().expect("block SIGTERM");
    let sfd = SignalFd::new(&mask).expect("signalfd");
    let Some(fd) = sys::process::inherited_fd(3) else {
        eprintln!("serve: fd 3 is not open");
        return 3;
    };
    let listener = std::net::TcpListener::from(fd);
    let instance = std::env::var("SENTINEL_INSTANCE").unwrap_or_default();
    println!("serving instance={instance} pid={pid}");
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let term = fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if term {
            println!("serve: SIGTERM, exiting");
            return 0;
        }
        let Ok((mut conn, _)) = listener.accept() else {
            continue;
        };
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let body = format!("instance={instance} pid={pid}\n");
        let _ = conn.write_all(
            format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
}
