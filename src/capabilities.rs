//! Capabilities: what the child must do to end up with exactly the
//! configured set, computed in the parent. The sys crate's child makes
//! these syscalls (`sys/src/spawn.rs`, steps 9 and 10):
//!
//! ```text
//!  1. prctl(PR_SET_KEEPCAPS, 1)            when switching to a non-root uid with a plan
//!  2. setgroups, setresgid, setresuid      (keepcaps kept the permitted set)
//!  3. capset(eff = prm = the permitted set, read back with capget)
//!                                          (setuid emptied the effective set, and
//!                                          dropping from the bounding set needs
//!                                          CAP_SETPCAP in it)
//!  4. prctl(PR_CAPBSET_DROP, cap)          for each cap not kept
//!  5. capset(eff = prm = inh = plan.keep)
//!  6. prctl(PR_CAP_AMBIENT_RAISE, cap)     for each kept cap, when the target is not
//!                                          root, so they survive execve
//! then PR_SET_NO_NEW_PRIVS, the seccomp program, execve.
//! ```
//!
//! This module only decides the numbers.

use crate::config::Capability;

/// What the child does about capabilities (see the module docs for the
/// order). Bit `n` of a mask is capability `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapPlan {
    /// The permitted, effective and inheritable sets the child `capset`s.
    pub keep: u64,
    /// Capabilities to drop from the bounding set, ascending.
    pub drop_bounding: Vec<u8>,
    /// Capabilities to raise in the ambient set, ascending.
    pub ambient: Vec<u8>,
    /// The highest capability the kernel knows
    /// (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u8,
}

impl CapPlan {
    /// Nothing to do: root keeping everything.
    pub fn is_noop(&self) -> bool {
        self.keep == all(self.last_cap) && self.drop_bounding.is_empty() && self.ambient.is_empty()
    }
}

/// The plan for a service that keeps `keep` (None: the config said
/// nothing) and runs as root or not.
///
/// - `None`, root: keeps everything; nothing to do.
/// - `None`, not root: nothing; the bounding set is dropped entirely.
/// - `Some(list)`: the bounding set becomes exactly `list`, and so do the
///   permitted, effective and inheritable sets; for a non-root target
///   `list` also goes into the ambient set, so that it survives `setuid`
///   and `execve`.
///
/// Capabilities above `last_cap` are left out (the kernel would refuse
/// them); `unsupported` names them for a warning.
pub fn plan(keep: Option<&[Capability]>, target_uid_is_root: bool, last_cap: u8) -> CapPlan {
    let last_cap = last_cap.min(63);
    let every = all(last_cap);
    let keep = match keep {
        None if target_uid_is_root => every,
        None => 0,
        Some(list) => list.iter().fold(0, |mask, c| mask | bit(c.0)) & every,
    };
    let caps = |wanted: bool| -> Vec<u8> {
        (0..=last_cap)
            .filter(|&c| (keep & bit(c) != 0) == wanted)
            .collect()
    };
    CapPlan {
        keep,
        drop_bounding: caps(false),
        ambient: if target_uid_is_root {
            vec![]
        } else {
            caps(true)
        },
        last_cap,
    }
}

#[cfg(test)]
/// The capabilities of `keep` this kernel does not know, ascending.
pub fn unsupported(keep: &[Capability], last_cap: u8) -> Vec<u8> {
    let mut out: Vec<u8> = keep.iter().map(|c| c.0).filter(|&c| c > last_cap).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `/proc/sys/kernel/cap_last_cap`, or 40 (CAP_CHECKPOINT_RESTORE, Linux
/// 5.9) where it cannot be read.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .map_or(40, |n| n.min(63))
}

/// The `CapInh`, `CapPrm`, `CapEff`, `CapBnd` and `CapAmb` masks of a
/// `/proc/PID/status` text, in that order; a missing or unreadable line
/// counts as 0. For probes and tests.
#[cfg(test)]
pub fn parse_status_caps(status: &str) -> (u64, u64, u64, u64, u64) {
    let mut masks = [0u64; 5];
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "CapInh" => 0,
            "CapPrm" => 1,
            "CapEff" => 2,
            "CapBnd" => 3,
            "CapAmb" => 4,
            _ => continue,
        };
        masks[slot] = u64::from_str_radix(value.trim(), 16).unwrap_or(0);
    }
    let [inh, prm, eff, bnd, amb] = masks;
    (inh, prm, eff, bnd, amb)
}

fn bit(cap: u8) -> u64 {
    1u64.checked_shl(u32::from(cap)).unwrap_or(0)
}

/// Capabilities 0..=last_cap.
fn all(last_cap: u8) -> u64 {
    if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_BIND_SERVICE: Capability = Capability(10);
    const NET_RAW: Capability = Capability(13);
    const SETPCAP: u8 = 8;

    #[test]
    fn root_without_a_list_keeps_everything() {
        let p = plan(None, true, 40);
        assert_eq!(p.keep, (1 << 41) - 1);
        assert!(p.drop_bounding.is_empty() && p.ambient.is_empty());
        assert!(p.is_noop() && p.ambient.is_empty());
    }

    #[test]
    fn a_user_without_a_list_gets_nothing() {
        let p = plan(None, false, 40);
        assert_eq!(p.keep, 0);
        assert_eq!(p.drop_bounding, (0..=40).collect::<Vec<u8>>());
        assert!(p.ambient.is_empty());
        assert!(!p.is_noop() && p.ambient.is_empty());
        assert_eq!(plan(Some(&[]), false, 40), p, "an empty list is the same");
    }

    #[test]
    fn a_user_with_a_list_keeps_it_through_the_ambient_set() {
        let p = plan(Some(&[NET_RAW, NET_BIND_SERVICE, NET_RAW]), false, 40);
        assert_eq!(p.keep, (1 << 10) | (1 << 13));
        assert_eq!(p.ambient, vec![10, 13]);
        assert_eq!(p.drop_bounding.len(), 41 - 2);
        assert!(!p.drop_bounding.contains(&10) && !p.drop_bounding.contains(&13));
        assert!(p.drop_bounding.contains(&SETPCAP));
        assert!(!p.ambient.is_empty());
    }

    #[test]
    fn root_with_a_list_needs_no_ambient_set() {
        let p = plan(Some(&[NET_BIND_SERVICE]), true, 40);
        assert_eq!(p.keep, 1 << 10);
        assert!(p.ambient.is_empty());
        assert_eq!(p.drop_bounding.len(), 40);
        assert!(!p.is_noop() && p.ambient.is_empty());
    }

    #[test]
    fn capabilities_the_kernel_does_not_know_are_left_out() {
        let p = plan(Some(&[NET_BIND_SERVICE, Capability(45)]), false, 40);
        assert_eq!(p.keep, 1 << 10);
        assert_eq!(p.ambient, vec![10]);
        assert_eq!(
            unsupported(&[Capability(45), NET_RAW, Capability(41)], 40),
            vec![41, 45]
        );
        // an older kernel
        let p = plan(Some(&[Capability(40)]), false, 37);
        assert_eq!((p.keep, p.ambient.len(), p.drop_bounding.len()), (0, 0, 38));
    }

    #[test]
    fn masks_hold_up_to_capability_63() {
        assert_eq!(plan(None, true, 63).keep, u64::MAX);
        assert_eq!(plan(None, true, 200).last_cap, 63);
        assert_eq!(plan(Some(&[Capability(63)]), false, 63).keep, 1 << 63);
        assert_eq!(bit(64), 0);
    }

    #[test]
    fn status_lines_parse() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                      CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n\
                      CapAmb:\t0000000000000400\nNoNewPrivs:\t0\n";
        let all = (1 << 41) - 1;
        assert_eq!(parse_status_caps(status), (0, all, all, all, 1 << 10));
        assert_eq!(parse_status_caps("CapEff:\tzz\n"), (0, 0, 0, 0, 0));
    }

    #[test]
    fn this_process_and_kernel_read_sensibly() {
        let last = last_cap();
        assert!((30..=63).contains(&last), "{last}");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let (_, prm, eff, bnd, _) = parse_status_caps(&status);
        assert!(status.contains("CapBnd:"));
        assert_eq!(eff & !prm, 0, "effective is a subset of permitted");
        assert_eq!(bnd & !all(last), 0, "no capability beyond cap_last_cap");
    }
}
