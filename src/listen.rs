//! Listening sockets that sentinel opens once for a service's instances
//! (`listen = ["tcp:0.0.0.0:8080", "unix:/run/app.sock"]`), passed to each
//! as fd 3.. with `LISTEN_FDS` / `LISTEN_PID` / `LISTEN_FDNAMES` (systemd's
//! socket activation). Opened before any privilege drop, so a service
//! running as a plain user can serve port 80; kept across restarts, so
//! connections queue instead of being refused while an instance restarts.

use std::os::fd::OwnedFd;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};

use crate::config::ListenAddr;

/// The kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// Bind and listen. The fd is close-on-exec: the spawn passes it on by
/// placing it at fd 3.. in the child, which clears the flag there.
pub fn open(addr: &ListenAddr) -> Result<OwnedFd, String> {
    let cloexec = SockFlag::SOCK_CLOEXEC;
    let fd = match addr {
        ListenAddr::Tcp(sa) => {
            let family = if sa.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            let fd = socket(family, SockType::Stream, cloexec, None)
                .map_err(|e| format!("socket: {e}"))?;
            setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
            let r = match sa {
                std::net::SocketAddr::V4(v4) => {
                    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(*v4))
                }
                std::net::SocketAddr::V6(v6) => {
                    // `[::]` means IPv6 only; listen on 0.0.0.0 for IPv4.
                    setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                        .map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
                    bind(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        &SockaddrIn6::from(*v6),
                    )
                }
            };
            r.map_err(|e| match e {
                nix::errno::Errno::EADDRINUSE => {
                    format!("{sa} is in use by another program; stop it or pick another port")
                }
                nix::errno::Errno::EACCES => {
                    format!("bind {sa}: permission denied (ports below 1024 need root)")
                }
                e => format!("bind {sa}: {e}"),
            })?;
            fd
        }
        ListenAddr::Unix(path) => {
            let fd = socket(AddressFamily::Unix, SockType::Stream, cloexec, None)
                .map_err(|e| format!("socket: {e}"))?;
            // A socket file left by an earlier run is replaced; anything
            // else at the path is not.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                use std::os::unix::fs::FileTypeExt;
                if !meta.file_type().is_socket() {
                    return Err(format!(
                        "{} exists and is not a socket; remove it or pick another path",
                        path.display()
                    ));
                }
                std::fs::remove_file(path)
                    .map_err(|e| format!("remove {}: {e}", path.display()))?;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("create {}: {e}", dir.display()))?;
            }
            let ua = UnixAddr::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
            bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &ua)
                .map_err(|e| format!("bind {}: {e}", path.display()))?;
            fd
        }
    };
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| format!("listen: {e}"))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_sockets_listen_and_a_busy_port_is_explained() {
        let fd = open(&ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())).unwrap();
        let std_l = std::net::TcpListener::from(fd);
        let addr = std_l.local_addr().unwrap();
        std::net::TcpStream::connect(addr).unwrap();
        let e = open(&ListenAddr::Tcp(addr)).unwrap_err();
        assert!(e.contains("in use by another program"), "{e}");

        let dir = std::env::temp_dir().join(format!("sentinel-listen-{}", std::process::id()));
        let path = dir.join("a.sock");
        let fd = open(&ListenAddr::Unix(path.clone())).unwrap();
        std::os::unix::net::UnixStream::connect(&path).unwrap();
        drop(fd);
        // A stale socket file is replaced.
        let _fd = open(&ListenAddr::Unix(path.clone())).unwrap();
        std::fs::write(dir.join("plain"), "x").unwrap();
        let e = open(&ListenAddr::Unix(dir.join("plain"))).unwrap_err();
        assert!(e.contains("not a socket"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
