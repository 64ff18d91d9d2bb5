//! Users and groups from `/etc/passwd` and `/etc/group`, read directly.
//!
//! No NSS: a static glibc binary crashes when NSS loads a module, and
//! embedded boxes often have none. So names are looked up the way the
//! `files` NSS module would, by reading the two files; the paths are
//! parameters (tests use temporary files; a service with its own `root`
//! wants the files inside it, see [`files_under`]).
//!
//! Lines are read forgivingly: blank lines, `#` comments, NIS `+`/`-`
//! entries and lines with too few fields or a non-numeric id are skipped,
//! never fatal. The first entry for a name or id wins, as with getpwnam.

use crate::config::{IdSpec, UserSpec};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Empty when the line has none.
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    /// User names listed as members.
    pub members: Vec<String>,
}

/// Who a service runs as, resolved: what `setgroups`, `setgid` and
/// `setuid` take, and `HOME`/`USER` for its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: sorted, without duplicates.
    pub groups: Vec<u32>,
    /// The passwd name, when the user has an entry.
    pub name: Option<String>,
    /// The passwd home folder, when the user has an entry with one.
    pub home: Option<PathBuf>,
}

/// The passwd and group files of a system whose root is `root`
/// (`/etc/passwd`, `/etc/group` for the host).
pub fn files_under(root: Option<&Path>) -> (PathBuf, PathBuf) {
    match root {
        Some(r) => (r.join("etc/passwd"), r.join("etc/group")),
        None => (PathBuf::from(PASSWD), PathBuf::from(GROUP)),
    }
}

/// The entries of a passwd file's text.
pub fn parse_passwd(text: &str) -> Vec<User> {
    entries(text)
        .filter_map(|fields| {
            // name:password:uid:gid[:gecos:home:shell]
            if fields.len() < 4 || fields[0].is_empty() {
                return None;
            }
            Some(User {
                name: fields[0].to_string(),
                uid: fields[2].trim().parse().ok()?,
                gid: fields[3].trim().parse().ok()?,
                home: PathBuf::from(fields.get(5).copied().unwrap_or("")),
                shell: PathBuf::from(fields.get(6).copied().unwrap_or("")),
            })
        })
        .collect()
}

/// The entries of a group file's text.
pub fn parse_group(text: &str) -> Vec<Group> {
    entries(text)
        .filter_map(|fields| {
            // name:password:gid[:member,member...]
            if fields.len() < 3 || fields[0].is_empty() {
                return None;
            }
            Some(Group {
                name: fields[0].to_string(),
                gid: fields[2].trim().parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The `:`-separated fields of each line that can be an entry.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| {
            let t = l.trim_start();
            !(t.is_empty() || t.starts_with('#') || t.starts_with('+') || t.starts_with('-'))
        })
        .map(|l| l.split(':').collect())
}

/// A file's text; None when it does not exist (an embedded box may have
/// no /etc/group at all).
fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), reason(&e))),
    }
}

/// An I/O error without the "(os error N)" tail.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
/// The passwd entry named `name`.
pub fn user_by_name(name: &str, passwd: &Path) -> Result<Option<User>, String> {
    Ok(read(passwd)?.and_then(|t| parse_passwd(&t).into_iter().find(|u| u.name == name)))
}

#[cfg(test)]
/// The first passwd entry with uid `uid`.
pub fn user_by_uid(uid: u32, passwd: &Path) -> Result<Option<User>, String> {
    Ok(read(passwd)?.and_then(|t| parse_passwd(&t).into_iter().find(|u| u.uid == uid)))
}

#[cfg(test)]
/// The group entry named `name`.
pub fn group_by_name(name: &str, group: &Path) -> Result<Option<Group>, String> {
    Ok(read(group)?.and_then(|t| parse_group(&t).into_iter().find(|g| g.name == name)))
}

/// A group as written to a gid: names from `groups` (the entries of
/// `group_file`), numbers as they are.
fn gid_of(spec: &IdSpec, groups: &[Group], group_file: &Path) -> Result<u32, String> {
    match spec {
        IdSpec::Id(n) => Ok(*n),
        IdSpec::Name(name) => groups
            .iter()
            .find(|g| g.name == *name)
            .map(|g| g.gid)
            .ok_or_else(|| format!("unknown group \"{name}\": not in {}", group_file.display())),
    }
}

/// Resolve `user = "..."` and `supplementary_groups = [...]`.
///
/// - A user name must be in `passwd`; a uid need not be: if it is, its
///   entry gives the primary group, the name and home; if not, the group
///   must be given (`"1234:1234"`).
/// - An explicit group (`"www-data:adm"`) replaces the primary group.
/// - The supplementary groups are those listed plus, for a user found in
///   `passwd`, every group of `group` that lists the user's name as a
///   member (what `initgroups` does); sorted, without duplicates.
pub fn resolve(
    spec: &UserSpec,
    supplementary: &[IdSpec],
    passwd: &Path,
    group: &Path,
) -> Result<Identity, String> {
    let users = read(passwd)?.map(|t| parse_passwd(&t));
    let known = users.as_deref().unwrap_or_default();
    let (uid, entry) = match &spec.user {
        IdSpec::Name(name) => match known.iter().find(|u| u.name == *name) {
            Some(u) => (u.uid, Some(u.clone())),
            None if users.is_some() => {
                return Err(format!(
                    "unknown user \"{name}\": not in {}",
                    passwd.display()
                ))
            }
            None => {
                let file = passwd.display();
                let fix = "give a number, e.g. user = \"1000:1000\"";
                return Err(format!(
                    "unknown user \"{name}\": there is no {file}; {fix}"
                ));
            }
        },
        IdSpec::Id(uid) => (*uid, known.iter().find(|u| u.uid == *uid).cloned()),
    };

    // The group file is read only when something needs it.
    let needs_groups = entry.is_some()
        || matches!(spec.group, Some(IdSpec::Name(_)))
        || supplementary.iter().any(|g| matches!(g, IdSpec::Name(_)));
    let groups = if needs_groups {
        read(group)?.map(|t| parse_group(&t)).unwrap_or_default()
    } else {
        Vec::new()
    };

    let gid = match (&spec.group, &entry) {
        (Some(g), _) => gid_of(g, &groups, group)?,
        (None, Some(u)) => u.gid,
        (None, None) => {
            return Err(format!(
                "uid {uid} has no {} entry; give a group: user = \"{uid}:{uid}\"",
                passwd.display()
            ))
        }
    };

    let mut gids = Vec::new();
    for g in supplementary {
        gids.push(gid_of(g, &groups, group)?);
    }
    if let Some(u) = &entry {
        gids.extend(
            groups
                .iter()
                .filter(|g| g.members.contains(&u.name))
                .map(|g| g.gid),
        );
    }
    gids.sort_unstable();
    gids.dedup();

    Ok(Identity {
        uid,
        gid,
        groups: gids,
        name: entry.as_ref().map(|u| u.name.clone()),
        home: entry
            .filter(|u| !u.home.as_os_str().is_empty())
            .map(|u| u.home),
    })
}

/// Resolve supplementary groups alone (a service that keeps sentinel's
/// user but gets extra groups): sorted, without duplicates.
pub fn resolve_groups(supplementary: &[IdSpec], group: &Path) -> Result<Vec<u32>, String> {
    let groups = if supplementary.iter().any(|g| matches!(g, IdSpec::Name(_))) {
        read(group)?.map(|t| parse_group(&t)).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut gids = supplementary
        .iter()
        .map(|g| gid_of(g, &groups, group))
        .collect::<Result<Vec<u32>, String>>()?;
    gids.sort_unstable();
    gids.dedup();
    Ok(gids)
}

#[cfg(test)]
/// [`resolve`] against the host's `/etc/passwd` and `/etc/group`.
pub fn resolve_system(spec: &UserSpec, supplementary: &[IdSpec]) -> Result<Identity, String> {
    resolve(spec, supplementary, Path::new(PASSWD), Path::new(GROUP))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "\
# comment
root:x:0:0:root:/root:/bin/bash

www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
+nisuser
-baduser:x:7:7::/:/bin/sh
short:x:5
badid:x:abc:1::/:/bin/sh
dup:x:2000:2000::/first:/bin/sh
dup:x:2001:2001::/second:/bin/sh
nohome:x:3000:3000
crlf:x:4000:4000::/home/crlf:/bin/sh\r
last:x:5000:5000::/home/last:/bin/sh";

    const GROUP_TEXT: &str = "\
root:x:0:
adm:x:4:syslog,app
www-data:x:33:
audio:x:29: app , www-data
app:x:1000:
broken:x
+nis
wheel:x:10:root,app
staff:x:50:crlf\r
lastgrp:x:60:last";

    /// passwd and group files in a fresh folder, removed when dropped.
    struct Files(PathBuf);

    impl Files {
        fn new(name: &str, passwd: Option<&str>, group: Option<&str>) -> Files {
            let dir =
                std::env::temp_dir().join(format!("sentinel-users-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("etc")).unwrap();
            if let Some(t) = passwd {
                std::fs::write(dir.join("etc/passwd"), t).unwrap();
            }
            if let Some(t) = group {
                std::fs::write(dir.join("etc/group"), t).unwrap();
            }
            Files(dir)
        }

        fn resolve(&self, user: &str, supplementary: &[IdSpec]) -> Result<Identity, String> {
            let (p, g) = files_under(Some(&self.0));
            resolve(&UserSpec::parse(user).unwrap(), supplementary, &p, &g)
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn name(s: &str) -> IdSpec {
        IdSpec::Name(s.to_string())
    }

    #[test]
    fn passwd_lines_are_read_forgivingly() {
        let users = parse_passwd(PASSWD_TEXT);
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "www-data", "app", "dup", "dup", "nohome", "crlf", "last"]
        );
        assert_eq!(
            users[1],
            User {
                name: "www-data".to_string(),
                uid: 33,
                gid: 33,
                home: PathBuf::from("/var/www"),
                shell: PathBuf::from("/usr/sbin/nologin"),
            }
        );
        assert_eq!(users[5].home, PathBuf::new());
        assert_eq!(users[6].shell, PathBuf::from("/bin/sh"));
        assert!(parse_passwd("").is_empty());
        assert!(parse_passwd("\n\n# only comments\n").is_empty());
    }

    #[test]
    fn group_lines_are_read_forgivingly() {
        let groups = parse_group(GROUP_TEXT);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "adm", "www-data", "audio", "app", "wheel", "staff", "lastgrp"]
        );
        assert_eq!(groups[1].members, ["syslog", "app"]);
        assert_eq!(groups[3].members, ["app", "www-data"]);
        assert!(groups[0].members.is_empty());
        assert_eq!(groups[6].members, ["crlf"]);
        assert_eq!(groups[7].members, ["last"]);
    }

    #[test]
    fn a_name_gets_its_entry_and_its_groups() {
        let f = Files::new("name", Some(PASSWD_TEXT), Some(GROUP_TEXT));
        assert_eq!(
            f.resolve("app", &[]),
            Ok(Identity {
                uid: 1000,
                gid: 1000,
                groups: vec![4, 10, 29],
                name: Some("app".to_string()),
                home: Some(PathBuf::from("/home/app")),
            })
        );
        // An explicit group replaces the primary one; the listed groups
        // join the member groups, sorted and once each.
        let id = f
            .resolve(
                "app:www-data",
                &[name("audio"), IdSpec::Id(7), IdSpec::Id(4)],
            )
            .unwrap();
        assert_eq!((id.uid, id.gid), (1000, 33));
        assert_eq!(id.groups, [4, 7, 10, 29]);
        assert_eq!(f.resolve("app:50", &[]).unwrap().gid, 50);
        // The first of two entries wins; no home means None.
        let dup = f.resolve("dup", &[]).unwrap();
        assert_eq!((dup.uid, dup.home), (2000, Some(PathBuf::from("/first"))));
        assert_eq!(f.resolve("nohome", &[]).unwrap().home, None);
        // Lines with '\r' endings and a last line without '\n'.
        assert_eq!(f.resolve("crlf", &[]).unwrap().groups, [50]);
        assert_eq!(f.resolve("last", &[]).unwrap().groups, [60]);
    }

    #[test]
    fn a_number_need_not_be_in_passwd() {
        let f = Files::new("number", Some(PASSWD_TEXT), Some(GROUP_TEXT));
        // Known uid: its entry, as for a name.
        let www = f.resolve("33", &[]).unwrap();
        assert_eq!(
            (www.gid, www.name.as_deref(), www.groups.as_slice()),
            (33, Some("www-data"), &[29][..])
        );
        // Unknown uid with a group.
        assert_eq!(
            f.resolve("1234:1234", &[IdSpec::Id(5)]),
            Ok(Identity {
                uid: 1234,
                gid: 1234,
                groups: vec![5],
                name: None,
                home: None,
            })
        );
        assert_eq!(f.resolve("1234:adm", &[]).unwrap().gid, 4);
        // Unknown uid without one.
        let err = f.resolve("1234", &[]).unwrap_err();
        let passwd = f.0.join("etc/passwd");
        assert_eq!(
            err,
            format!(
                "uid 1234 has no {} entry; give a group: user = \"1234:1234\"",
                passwd.display()
            )
        );
    }

    #[test]
    fn unknown_names_name_the_file() {
        let f = Files::new("unknown", Some(PASSWD_TEXT), Some(GROUP_TEXT));
        let (p, g) = files_under(Some(&f.0));
        assert_eq!(
            f.resolve("nobody", &[]).unwrap_err(),
            format!("unknown user \"nobody\": not in {}", p.display())
        );
        assert_eq!(
            f.resolve("app:nogroup", &[]).unwrap_err(),
            format!("unknown group \"nogroup\": not in {}", g.display())
        );
        assert_eq!(
            f.resolve("app", &[name("video")]).unwrap_err(),
            format!("unknown group \"video\": not in {}", g.display())
        );
        // NIS and malformed lines are not entries.
        assert!(f.resolve("baduser", &[]).is_err());
        assert!(f.resolve("short", &[]).is_err());
        assert!(f.resolve("app:broken", &[]).is_err());
    }

    #[test]
    fn missing_files() {
        // No group file: no member groups, numbers still work.
        let f = Files::new("nogroup", Some(PASSWD_TEXT), None);
        assert_eq!(f.resolve("app", &[IdSpec::Id(9)]).unwrap().groups, [9]);
        assert!(f
            .resolve("app:adm", &[])
            .unwrap_err()
            .starts_with("unknown group \"adm\""));
        // No passwd file: numbers with a group only.
        let f = Files::new("nopasswd", None, Some(GROUP_TEXT));
        assert_eq!(f.resolve("0:0", &[]).unwrap().uid, 0);
        assert!(f.resolve("app", &[]).unwrap_err().contains("there is no"));
        assert!(f.resolve("7", &[]).unwrap_err().contains("give a group"));
    }

    #[test]
    fn lookups_and_groups_alone() {
        let f = Files::new("lookups", Some(PASSWD_TEXT), Some(GROUP_TEXT));
        let (p, g) = files_under(Some(&f.0));
        assert_eq!(user_by_name("www-data", &p).unwrap().unwrap().uid, 33);
        assert_eq!(user_by_uid(0, &p).unwrap().unwrap().name, "root");
        assert_eq!(user_by_uid(42, &p).unwrap(), None);
        assert_eq!(group_by_name("wheel", &g).unwrap().unwrap().gid, 10);
        assert_eq!(
            resolve_groups(
                &[name("wheel"), IdSpec::Id(3), name("adm"), IdSpec::Id(10)],
                &g
            ),
            Ok(vec![3, 4, 10])
        );
        assert!(resolve_groups(&[name("nope")], &g).is_err());
        assert_eq!(
            files_under(None),
            (PathBuf::from(PASSWD), PathBuf::from(GROUP))
        );
        // The host's files, read the same way: root is uid 0 everywhere.
        if Path::new(PASSWD).exists() {
            let root = resolve_system(&UserSpec::parse("root").unwrap(), &[]).unwrap();
            assert_eq!(root.uid, 0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_file_is_an_error_not_empty() {
        let f = Files::new("unreadable", Some(PASSWD_TEXT), Some(GROUP_TEXT));
        // A folder where the file should be: reading fails with EISDIR.
        let p = f.0.join("etc");
        let err = resolve(
            &UserSpec::parse("app").unwrap(),
            &[],
            &p,
            &f.0.join("etc/group"),
        )
        .unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {}", p.display())),
            "{err}"
        );
    }
}
