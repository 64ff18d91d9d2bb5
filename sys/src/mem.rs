//! Memory that held a secret: overwritten with zeros before it is given
//! back, so that a later heap dump, a core file or a reused allocation does
//! not show it.
//!
//! [`Secret`] is the one type secret bytes live in, in sentinel and in the
//! spawn plan: it never prints its bytes (`Debug` shows `<redacted>`), has
//! no `Display` and no `Clone`, and zeroes its whole allocation on drop.

use std::fmt;
use std::io::{self, Read};

/// Overwrite `buf` with zeros in a way the compiler may not drop as a dead
/// store (a plain loop before a free can be optimised away).
pub fn wipe(buf: &mut [u8]) {
    let len = buf.len();
    wipe_raw(buf.as_mut_ptr(), len);
}

/// Zero `len` bytes at `ptr`: the volatile write loop behind [`wipe`] and
/// [`Secret`]'s drop.
fn wipe_raw(ptr: *mut u8, len: usize) {
    for i in 0..len {
        // SAFETY: callers pass a pointer valid for writes of `len` bytes
        // (a slice, or a Vec's allocation up to its capacity); `u8` has no
        // invalid values, so writing 0 to uninitialised capacity is sound.
        unsafe { std::ptr::write_volatile(ptr.add(i), 0) };
    }
    // Keep later code (the free) from being ordered before the writes.
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Secret bytes: a password, a key, a token. Zeroed on drop (the whole
/// allocation, spare capacity included); never printed.
#[derive(Default)]
pub struct Secret {
    bytes: Vec<u8>,
}

/// Larger than this is not a secret but a mistake (a log file, a device):
/// systemd's credentials have the same 1 MiB limit.
pub const MAX_SECRET: usize = 1024 * 1024;

impl Secret {
    /// Take ownership of `bytes` (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret { bytes }
    }

    /// A copy of `bytes` (the caller wipes its own).
    pub fn from_slice(bytes: &[u8]) -> Secret {
        Secret {
            bytes: bytes.to_vec(),
        }
    }

    /// Read `r` to its end, at most `max` bytes (more is an
    /// `InvalidData` error). `hint`: the expected size (a file's length),
    /// so that the buffer rarely has to grow; when it does, the old buffer
    /// is wiped before it is freed.
    pub fn read_from(r: &mut impl Read, hint: usize, max: usize) -> io::Result<Secret> {
        let mut buf = Secret {
            bytes: vec![0; hint.min(max).max(63) + 1],
        };
        let mut len = 0;
        loop {
            if len == buf.bytes.len() {
                if len > max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("larger than {max} bytes"),
                    ));
                }
                let mut bigger = Secret {
                    bytes: vec![0; (len * 2).min(max + 1)],
                };
                bigger.bytes[..len].copy_from_slice(&buf.bytes[..len]);
                buf = bigger; // the old one is wiped as it drops
            }
            match r.read(&mut buf.bytes[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {max} bytes"),
            ));
        }
        // The bytes past `len` were never written: zeros.
        buf.bytes.truncate(len);
        Ok(buf)
    }

    /// The bytes, for the one place that delivers them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let cap = self.bytes.capacity();
        wipe_raw(self.bytes.as_mut_ptr(), cap);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes() {
        let mut b = *b"hunter2";
        wipe(&mut b);
        assert_eq!(b, [0; 7]);
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_slice(b"hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn read_from_grows_and_limits() {
        let data = vec![7u8; 1000];
        let s = Secret::read_from(&mut &data[..], 10, 4096).unwrap();
        assert_eq!(s.expose(), &data[..]);
        let s = Secret::read_from(&mut &data[..], 1000, 4096).unwrap();
        assert_eq!(s.len(), 1000);
        let e = Secret::read_from(&mut &data[..], 10, 999).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(Secret::read_from(&mut &data[..], 10, 1000).is_ok());
        assert!(Secret::read_from(&mut &b""[..], 0, 10).unwrap().is_empty());
    }
}
