//! The host inventory behind `-H`: names for hosts and groups of hosts, in
//! `~/.config/sentinel/hosts.toml` (or the file `$SENTINEL_HOSTS` names).
//!
//! ```toml
//! [defaults]                        # every host, and addresses given to -H
//! user = "deploy"
//! ssh_options = ["ConnectTimeout=3"]
//!
//! [hosts.web1]
//! address = "10.0.0.11"             # [user@]host[:port]
//! socket = "/run/sentinel.sock"     # the control socket there
//!
//! [groups]
//! web = ["web1", "ops@10.0.0.12"]   # host names, or addresses
//! ```
//!
//! Parsing is pure (text in, [`Inventory`] or every problem out); only
//! [`Inventory::load`] reads the environment and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// One host to reach, with everything the ssh command line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// How the user named it: the inventory name or the address as given.
    /// Prefixes its output lines, and is what `-H` takes to reach it again.
    pub label: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The control socket on that host (default: the remote's own default).
    pub socket: Option<String>,
    /// The remote command (default `sentinel`, found on the remote PATH).
    pub sentinel: Option<String>,
    /// Passed to ssh as `-o OPTION`, in this order (ssh keeps the first value).
    pub ssh_options: Vec<String>,
    /// An ssh client config file in place of `~/.ssh/config` (`ssh -F`).
    pub ssh_config: Option<String>,
}

impl Host {
    /// `[user@]host`, as ssh takes it.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// `[user@]host[:port]` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Read `[user@]host[:port]`; an IPv6 address with a port goes in brackets
/// (`[::1]:2222`).
pub fn parse_address(s: &str) -> Result<Address, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an empty address; expected [user@]host[:port]".into());
    }
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, s),
    };
    if let Some(u) = user {
        let ok = !u.is_empty()
            && !u.starts_with('-')
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(format!(
                "{s:?}: bad user name {u:?}; expected [user@]host[:port] (letters, digits, . _ -)"
            ));
        }
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: a `[` without its `]`"))?;
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(format!("{s:?}: expected :port after `]`")),
        }
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address: no port (that takes brackets).
        if rest.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "{s:?}: not an IPv6 address; write an IPv6 address with a port as [addr]:port"
            ));
        }
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:%".contains(c));
    if !host_ok {
        return Err(format!(
            "{s:?}: bad host name {host:?}; expected [user@]host[:port] (letters, digits, . - _)"
        ));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("{s:?}: bad port {p:?}; expected 1..65535")),
        },
    };
    Ok(Address {
        user: user.map(String::from),
        host: host.to_string(),
        port,
    })
}

/// Settings shared by `[defaults]` and each `[hosts.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings {
    user: Option<String>,
    port: Option<u16>,
    socket: Option<String>,
    sentinel: Option<String>,
    ssh_options: Vec<String>,
    ssh_config: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    hosts: BTreeMap<String, RawHost>,
    #[serde(default)]
    groups: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    user: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    socket: Option<String>,
    sentinel: Option<String>,
    #[serde(default)]
    ssh_options: Vec<Spanned<String>>,
    ssh_config: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    address: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    socket: Option<String>,
    sentinel: Option<String>,
    #[serde(default)]
    ssh_options: Vec<Spanned<String>>,
    ssh_config: Option<String>,
}

/// The hosts and groups `-H` can name.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The file it came from (None: there is no inventory).
    pub path: Option<PathBuf>,
    defaults: Settings,
    hosts: BTreeMap<String, Host>,
    /// Each group's members, resolved.
    groups: BTreeMap<String, Vec<Host>>,
}

/// Collects `path:line:col: key: message` lines.
struct Problems<'a> {
    path: &'a Path,
    text: &'a str,
    lines: Vec<String>,
}

impl Problems<'_> {
    fn at(&mut self, offset: Option<usize>, key: &str, msg: impl std::fmt::Display) {
        let mut s = self.path.display().to_string();
        if let Some(off) = offset {
            let before = &self.text[..off.min(self.text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            s.push_str(&format!(":{line}:{col}"));
        }
        if !key.is_empty() {
            s.push_str(&format!(": {key}"));
        }
        s.push_str(&format!(": {msg}"));
        self.lines.push(s);
    }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '@'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl Inventory {
    /// The file: `$SENTINEL_HOSTS`, else `$XDG_CONFIG_HOME/sentinel/hosts.toml`,
    /// else `~/.config/sentinel/hosts.toml`. A missing default file is an
    /// empty inventory; a missing `$SENTINEL_HOSTS` file is an error.
    pub fn load() -> Result<Inventory, String> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let (path, required) = if let Some(p) = env("SENTINEL_HOSTS") {
            (PathBuf::from(p), true)
        } else if let Some(d) = env("XDG_CONFIG_HOME") {
            (PathBuf::from(d).join("sentinel/hosts.toml"), false)
        } else if let Some(h) = env("HOME") {
            (PathBuf::from(h).join(".config/sentinel/hosts.toml"), false)
        } else {
            return Ok(Inventory::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Inventory::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Inventory::default())
            }
            Err(e) => Err(format!(
                "host inventory {}: {e}{}",
                path.display(),
                if required {
                    " (named by SENTINEL_HOSTS)"
                } else {
                    ""
                }
            )),
        }
    }

    /// Parse and check an inventory; every problem, one per line.
    pub fn parse(text: &str, path: &Path) -> Result<Inventory, String> {
        let mut p = Problems {
            path,
            text,
            lines: Vec::new(),
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                p.at(
                    e.span().map(|s| s.start),
                    "",
                    e.message().trim_end().replace('\n', " "),
                );
                return Err(p.lines.join("\n"));
            }
        };
        let defaults = settings(&mut p, "defaults", raw.defaults);
        let mut hosts = BTreeMap::new();
        for (name, h) in raw.hosts {
            let key = format!("hosts.{name}");
            if !name_ok(&name) {
                p.at(
                    None,
                    &key,
                    "a host name is letters, digits, `.`, `_` and `-` (it must not start with - or @)",
                );
                continue;
            }
            let address = h
                .address
                .as_ref()
                .map(|a| (a.get_ref().clone(), Some(a.span().start)))
                .unwrap_or_else(|| (name.clone(), None));
            let addr = match parse_address(&address.0) {
                Ok(a) => a,
                Err(e) => {
                    p.at(address.1, &format!("{key}.address"), e);
                    continue;
                }
            };
            let own = settings(
                &mut p,
                &key,
                RawSettings {
                    user: h.user,
                    port: h.port,
                    socket: h.socket,
                    sentinel: h.sentinel,
                    ssh_options: h.ssh_options,
                    ssh_config: h.ssh_config,
                },
            );
            if addr.user.is_some() && own.user.is_some() {
                p.at(
                    address.1,
                    &format!("{key}.address"),
                    "the user is given twice (in `address` and in `user`); keep one",
                );
            }
            if addr.port.is_some() && own.port.is_some() {
                p.at(
                    address.1,
                    &format!("{key}.address"),
                    "the port is given twice (in `address` and in `port`); keep one",
                );
            }
            hosts.insert(name.clone(), merge(name, addr, &own, &defaults));
        }
        let mut groups = BTreeMap::new();
        for (name, members) in raw.groups {
            let key = format!("groups.{name}");
            if !name_ok(&name) {
                p.at(
                    Some(members.span().start),
                    &key,
                    "a group name is letters, digits, `.`, `_` and `-`",
                );
                continue;
            }
            if members.get_ref().is_empty() {
                p.at(
                    Some(members.span().start),
                    &key,
                    "an empty group; list host names from [hosts] or addresses",
                );
                continue;
            }
            let mut resolved: Vec<Host> = Vec::new();
            for (i, m) in members.into_inner().into_iter().enumerate() {
                let at = Some(m.span().start);
                let m = m.into_inner();
                let mkey = format!("{key}[{i}]");
                if m.starts_with('@') {
                    p.at(
                        at,
                        &mkey,
                        format!("{m:?}: groups do not nest; list that group's hosts here"),
                    );
                } else if let Some(h) = hosts.get(&m) {
                    resolved.push(Host::clone(h));
                } else if !m.contains(['@', '.', ':']) {
                    // A bare word is a name from [hosts], or a typo of one.
                    p.at(
                        at,
                        &mkey,
                        format!(
                            "{m:?} is not in [hosts]; add [hosts.{m}], or write an address (user@host, host.domain)"
                        ),
                    );
                } else {
                    match parse_address(&m) {
                        Ok(a) => resolved.push(merge(m, a, &Settings::default(), &defaults)),
                        Err(e) => p.at(at, &mkey, e),
                    }
                }
            }
            groups.insert(name, resolved);
        }
        if !p.lines.is_empty() {
            return Err(p.lines.join("\n"));
        }
        Ok(Inventory {
            path: Some(path.to_path_buf()),
            defaults,
            hosts,
            groups,
        })
    }

    /// The hosts `-H` names: a comma list of inventory names, `@group`s and
    /// `[user@]host[:port]` addresses. Each host once, in order.
    pub fn resolve(&self, spec: &str) -> Result<Vec<Host>, String> {
        let mut out: Vec<Host> = Vec::new();
        for item in spec.split(',').map(str::trim) {
            let found: Vec<Host> = if item.is_empty() {
                return Err(format!(
                    "-H {spec:?}: an empty entry; expected a comma list of [user@]host[:port], inventory names and @groups"
                ));
            } else if let Some(g) = item.strip_prefix('@') {
                match (&self.path, self.groups.get(g)) {
                    (_, Some(members)) => members.clone(),
                    (None, None) => {
                        return Err(format!(
                            "-H {item}: there is no host inventory; groups are defined in \
                             ~/.config/sentinel/hosts.toml (or the file $SENTINEL_HOSTS names) \
                             under [groups], e.g. {g} = [\"web1\", \"deploy@10.0.0.2\"]"
                        ))
                    }
                    (Some(path), None) => {
                        let known: Vec<&str> = self.groups.keys().map(String::as_str).collect();
                        return Err(format!(
                            "-H {item}: no group {g:?} in {} (groups: {})",
                            path.display(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ));
                    }
                }
            } else if let Some(h) = self.hosts.get(item) {
                vec![h.clone()]
            } else {
                let a = parse_address(item).map_err(|e| format!("-H: {e}"))?;
                vec![merge(
                    item.to_string(),
                    a,
                    &Settings::default(),
                    &self.defaults,
                )]
            };
            for h in found {
                if !out.iter().any(|o| o.label == h.label) {
                    out.push(h);
                }
            }
        }
        Ok(out)
    }
}

/// Check one `[defaults]` or `[hosts.NAME]` table.
fn settings(p: &mut Problems<'_>, key: &str, raw: RawSettings) -> Settings {
    let user = raw.user.and_then(|u| {
        let ok = parse_address(&format!("{}@x", u.get_ref()))
            .is_ok_and(|a| a.user.as_deref() == Some(u.get_ref().as_str()));
        if !ok {
            p.at(
                Some(u.span().start),
                &format!("{key}.user"),
                format!("bad user name {:?}", u.get_ref()),
            );
        }
        ok.then(|| u.into_inner())
    });
    let port = raw.port.and_then(|v| {
        if *v.get_ref() == 0 {
            p.at(
                Some(v.span().start),
                &format!("{key}.port"),
                "port 0; expected 1..65535",
            );
            return None;
        }
        Some(v.into_inner())
    });
    let mut ssh_options = Vec::new();
    for (i, o) in raw.ssh_options.into_iter().enumerate() {
        let s = o.get_ref().trim();
        let ok = !s.is_empty() && !s.starts_with('-') && s.contains(['=', ' ']);
        if ok {
            ssh_options.push(s.to_string());
        } else {
            p.at(
                Some(o.span().start),
                &format!("{key}.ssh_options[{i}]"),
                format!(
                    "{:?}: expected an ssh option as `Name=value` (each is passed as `-o Name=value`), \
                     e.g. \"IdentityFile=~/.ssh/deploy\"",
                    o.get_ref()
                ),
            );
        }
    }
    for (k, v) in [("socket", &raw.socket), ("sentinel", &raw.sentinel)] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            p.at(
                None,
                &format!("{key}.{k}"),
                "empty; leave the key out instead",
            );
        }
    }
    Settings {
        user,
        port,
        socket: raw.socket,
        sentinel: raw.sentinel,
        ssh_options,
        ssh_config: raw.ssh_config,
    }
}

/// A host from its address, its own settings, then the defaults.
fn merge(label: String, a: Address, own: &Settings, defaults: &Settings) -> Host {
    Host {
        label,
        user: a
            .user
            .or_else(|| own.user.clone())
            .or_else(|| defaults.user.clone()),
        host: a.host,
        port: a.port.or(own.port).or(defaults.port),
        socket: own.socket.clone().or_else(|| defaults.socket.clone()),
        sentinel: own.sentinel.clone().or_else(|| defaults.sentinel.clone()),
        // ssh keeps an option's first value: the host's own come first.
        ssh_options: own
            .ssh_options
            .iter()
            .chain(&defaults.ssh_options)
            .cloned()
            .collect(),
        ssh_config: own
            .ssh_config
            .clone()
            .or_else(|| defaults.ssh_config.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(text: &str) -> Result<Inventory, String> {
        Inventory::parse(text, Path::new("hosts.toml"))
    }

    #[test]
    fn addresses_parse_and_bad_ones_are_explained() {
        let a = parse_address("deploy@web1.example.com:2222").unwrap();
        assert_eq!(a.user.as_deref(), Some("deploy"));
        assert_eq!(a.host, "web1.example.com");
        assert_eq!(a.port, Some(2222));
        assert_eq!(parse_address("h").unwrap().port, None);
        let v6 = parse_address("root@[::1]:22").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(22)));
        assert_eq!(parse_address("fe80::1").unwrap().port, None);
        for (bad, says) in [
            ("", "empty"),
            ("h:0", "bad port"),
            ("h:x", "bad port"),
            ("-oProxyCommand=sh", "bad host"),
            ("@h", "bad user"),
            ("a b", "bad host"),
            ("[::1", "without its"),
            ("1:2:x", "IPv6"),
        ] {
            let e = parse_address(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn hosts_take_their_settings_then_the_defaults() {
        let i = inv(r#"
[defaults]
user = "deploy"
port = 2200
sentinel = "/usr/local/bin/sentinel"
ssh_options = ["ConnectTimeout=3"]

[hosts.web1]
address = "10.0.0.11"
socket = "/run/s.sock"
ssh_options = ["IdentityFile=~/.ssh/web"]

[hosts.db]
address = "root@db.internal:22"

[groups]
web = ["web1", "ops@10.0.0.12"]
"#)
        .unwrap();
        let web = i.resolve("@web").unwrap();
        assert_eq!(web.len(), 2);
        assert_eq!(web[0].label, "web1");
        assert_eq!(web[0].destination(), "deploy@10.0.0.11");
        assert_eq!(web[0].port, Some(2200));
        assert_eq!(web[0].socket.as_deref(), Some("/run/s.sock"));
        assert_eq!(
            web[0].ssh_options,
            ["IdentityFile=~/.ssh/web", "ConnectTimeout=3"]
        );
        assert_eq!(web[1].label, "ops@10.0.0.12");
        assert_eq!(web[1].destination(), "ops@10.0.0.12");
        assert_eq!(web[1].sentinel.as_deref(), Some("/usr/local/bin/sentinel"));
        let db = i.resolve("db").unwrap();
        assert_eq!(
            (db[0].destination().as_str(), db[0].port),
            ("root@db.internal", Some(22))
        );
        // Ad-hoc addresses get the defaults; each host once.
        let all = i.resolve("db, @web ,web1,other:23").unwrap();
        let labels: Vec<&str> = all.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(labels, ["db", "web1", "ops@10.0.0.12", "other:23"]);
        assert_eq!(all[3].destination(), "deploy@other");
        assert_eq!(all[3].port, Some(23));
    }

    #[test]
    fn resolve_explains_unknown_groups_and_empty_entries() {
        let none = Inventory::default();
        assert_eq!(none.resolve("u@h").unwrap()[0].destination(), "u@h");
        let e = none.resolve("@web").unwrap_err();
        assert!(
            e.contains("no host inventory") && e.contains("[groups]"),
            "{e}"
        );
        let i = inv("[groups]\ndb = [\"x.y\"]\n").unwrap();
        let e = i.resolve("@web").unwrap_err();
        assert!(
            e.contains("no group \"web\" in hosts.toml (groups: db)"),
            "{e}"
        );
        let e = i.resolve("a,,b").unwrap_err();
        assert!(e.contains("empty entry"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let e = inv(r#"
[hosts.a]
address = "a b"

[hosts.b]
address = "u@b:22"
port = 22
ssh_options = ["-i key"]

[groups]
g = ["a", "typo", "@nested"]
e = []
"#)
        .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines.contains(&"hosts.toml:3:11: hosts.a.address: \"a b\": bad host name \"a b\"; expected [user@]host[:port] (letters, digits, . - _)"),
            "{e}"
        );
        assert!(
            e.contains("hosts.toml:6:11: hosts.b.address: the port is given twice"),
            "{e}"
        );
        assert!(e.contains("hosts.toml:8:16: hosts.b.ssh_options[0]: \"-i key\": expected an ssh option as `Name=value`"), "{e}");
        assert!(e.contains("groups.g[1]: \"typo\" is not in [hosts]"), "{e}");
        assert!(
            e.contains("groups.g[2]: \"@nested\": groups do not nest"),
            "{e}"
        );
        assert!(e.contains("groups.e: an empty group"), "{e}");
        // `a` was dropped for its bad address, so the group cannot name it either.
        assert!(e.contains("groups.g[0]: \"a\" is not in [hosts]"), "{e}");

        let e = inv("[hosts.a]\nadress = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("hosts.toml:2:1: unknown field `adress`"),
            "{e}"
        );
        let e = inv("[defaults]\nport = 70000\n").unwrap_err();
        assert!(e.starts_with("hosts.toml:2:8: "), "{e}");
    }
}
