//! `bundle = DIR` (issue 9): what an OCI bundle's config.json gives a
//! service, what the service's own keys override, what is warned about
//! and what is refused.

use super::*;
use crate::config::{Capability, CpuMax, IdMap, IdSpec, Rlimit, UserSpec};

/// The config.json `umoci unpack` writes for a fresh image, with a user,
/// env, cwd, command and stop signal set the way `umoci config` sets them.
const UMOCI: &str = r#"{
  "ociVersion": "1.0.0",
  "process": {
    "terminal": true,
    "user": { "uid": 1000, "gid": 1000, "additionalGids": [20, 30] },
    "args": ["/bin/app", "--port", "8080"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm", "APP=image"],
    "cwd": "/srv",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512 }],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "umoci-default",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": ["nosuid", "noexec", "nodev"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": ["nosuid", "noexec", "nodev", "ro"] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
      "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
  ],
  "annotations": {
    "org.opencontainers.image.os": "linux",
    "org.opencontainers.image.stopSignal": "SIGINT"
  },
  "linux": {
    "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
      { "type": "uts" }, { "type": "mount" }
    ],
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys"]
  }
}"#;

/// A folder with `bundle/config.json` (`json`), `bundle/rootfs/` and
/// `sentinel.toml` (`services`).
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(name: &str, json: &str) -> Fixture {
        let dir = TempDir::new(&format!("oci-{name}"));
        std::fs::create_dir_all(dir.0.join("bundle/rootfs")).unwrap();
        dir.write("bundle/config.json", json);
        Fixture { dir }
    }

    fn load(&self, services: &str) -> Result<Config, Vec<Problem>> {
        from_str(services, false, &self.dir.0)
    }

    fn ok(&self, services: &str) -> Config {
        self.load(services).unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn bundle(&self) -> PathBuf {
        self.dir.0.join("bundle")
    }
}

const WEB: &str = "[services.web]\nbundle = \"bundle\"\n";

/// The warnings' messages.
fn warnings(c: &Config) -> Vec<&str> {
    c.warnings.iter().map(|w| w.message.as_str()).collect()
}

#[test]
fn a_bundle_gives_the_service_its_settings() {
    let f = Fixture::new("defaults", UMOCI);
    let c = f.ok(WEB);
    let web = service(&c, "web");
    assert_eq!(web.command, ["/bin/app", "--port", "8080"]);
    assert_eq!(
        web.env,
        [
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("TERM".to_string(), "xterm".to_string()),
            ("APP".to_string(), "image".to_string()),
        ]
    );
    assert!(web.clear_env, "an image's env is complete");
    assert_eq!(web.workdir, Some(PathBuf::from("/srv")));
    assert_eq!(web.stop_signal, Signal(libc::SIGINT));
    let iso = &web.isolation;
    assert_eq!(
        iso.user,
        Some(UserSpec {
            user: IdSpec::Id(1000),
            group: Some(IdSpec::Id(1000))
        })
    );
    assert_eq!(iso.supplementary_groups, [IdSpec::Id(20), IdSpec::Id(30)]);
    assert_eq!(iso.hostname.as_deref(), Some("umoci-default"));
    assert_eq!(
        iso.namespaces.names(),
        ["pid", "net", "mount", "ipc", "uts"]
    );
    assert_eq!(iso.root, Some(f.bundle().join("rootfs")));
    assert_eq!(iso.rlimits, [Rlimit::parse("nofile", "512:1024").unwrap()]);
    assert_eq!(
        iso.capabilities,
        Some(vec![Capability(5), Capability(10), Capability(29)])
    );
    assert!(iso.no_new_privs);
    let m = iso.oci_mounts.as_ref().unwrap();
    assert!(m.read_only_root);
    let targets: Vec<&str> = m
        .mounts
        .iter()
        .map(|m| m.target.to_str().unwrap())
        .collect();
    // /proc and /dev are sentinel's own; the cgroup mount is warned about.
    assert_eq!(targets, ["/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]);
    let sys = &m.mounts[3];
    assert_eq!(sys.kind, crate::oci::MountKind::Sysfs);
    assert!(sys.read_only);
    assert_eq!(
        sys.flags,
        libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV
    );
    assert_eq!(
        m.mounts[0].data.as_deref(),
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
    );
    assert_eq!(
        m.masked,
        [PathBuf::from("/proc/kcore"), "/sys/firmware".into()]
    );
    assert_eq!(m.read_only, [PathBuf::from("/proc/sys")]);
    // What umoci writes and sentinel does not honour, and nothing else.
    let w = warnings(&c);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].contains("config.json field process.terminal is not supported"));
    assert!(w[1].contains("mounts[6] (cgroup on /sys/fs/cgroup)"));
    assert!(w.iter().all(|m| m.starts_with("bundle bundle: ")), "{w:#?}");
    assert_eq!(c.warnings[0].key, "services.web.bundle");
    assert_eq!(
        (c.warnings[0].line, c.warnings[0].column),
        (Some(2), Some(10))
    );
}

#[test]
fn the_service_keys_win() {
    let f = Fixture::new("override", UMOCI);
    let c = f.ok(
        "[services.web]\nbundle = \"bundle\"\ncommand = [\"/bin/other\"]\nworkdir = \"/\"\n\
         user = \"0:0\"\nclear_env = false\nstop_signal = \"TERM\"\nrlimits = { core = 0 }\n\
         limits = { pids_max = 10 }\nenv = { APP = \"mine\", MORE = \"1\" }\n\
         isolation = { namespaces = [\"mount\", \"uts\"], hostname = \"web1\", capabilities = [], \
         no_new_privs = false }\n",
    );
    let web = service(&c, "web");
    assert_eq!(web.command, ["/bin/other"]);
    assert_eq!(web.workdir, Some(PathBuf::from("/")));
    assert!(!web.clear_env);
    assert_eq!(web.stop_signal, Signal::TERM);
    let env: Vec<(&str, &str)> = web
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("PATH", "/usr/bin:/bin"),
            ("TERM", "xterm"),
            ("APP", "mine"),
            ("MORE", "1")
        ]
    );
    let iso = &web.isolation;
    assert_eq!(
        iso.user,
        Some(UserSpec {
            user: IdSpec::Id(0),
            group: Some(IdSpec::Id(0))
        })
    );
    assert!(iso.supplementary_groups.is_empty());
    assert_eq!(iso.namespaces.names(), ["mount", "uts"]);
    assert_eq!(iso.hostname.as_deref(), Some("web1"));
    assert_eq!(iso.capabilities, Some(vec![]));
    assert!(!iso.no_new_privs);
    assert_eq!(iso.limits.pids_max, Some(10));
    let names: Vec<&str> = iso.rlimits.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        ["core", "nofile"],
        "per resource: the bundle's nofile stays"
    );
    // Without an ipc namespace the bundle's mqueue mount is skipped, and said so.
    assert!(
        warnings(&c).iter().any(|w| w.contains("mqueue")),
        "{:#?}",
        c.warnings
    );
}

#[test]
fn unsupported_fields_are_warnings_with_reasons() {
    let json = r#"{
      "ociVersion": "1.1.0",
      "process": { "args": ["/app"], "cwd": "/", "apparmorProfile": "docker-default",
                   "user": { "uid": 0, "gid": 0, "umask": 18 },
                   "capabilities": { "bounding": ["CAP_KILL"], "effective": [] } },
      "root": { "path": "rootfs" },
      "hooks": { "prestart": [{ "path": "/bin/true" }] },
      "annotations": { "org.example": "x" },
      "mounts": [{ "destination": "/data", "type": "bind", "source": "rootfs",
                   "options": ["rbind", "ro", "shared"] },
                 { "destination": "/x", "type": "overlay", "source": "overlay" }],
      "linux": {
        "namespaces": [{ "type": "network", "path": "/var/run/netns/x" }, { "type": "time" }],
        "uidMappings": [{ "containerID": 0, "hostID": 100000, "size": 65536 }],
        "resources": { "memory": { "limit": 268435456, "swap": 1 },
                       "cpu": { "quota": 50000, "period": 100000, "shares": 512 },
                       "pids": { "limit": 64 },
                       "devices": [{ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }] },
        "seccomp": { "defaultAction": "SCMP_ACT_ERRNO" },
        "sysctl": { "net.ipv4.ip_forward": "1" },
        "cgroupsPath": "/x",
        "intelRdt": { "closID": "a" },
        "hugepageLimits": []
      }
    }"#;
    let f = Fixture::new("warn", json);
    let c = f.ok(WEB);
    let w = warnings(&c);
    let field = |f: &str| {
        w.iter()
            .any(|m| m.contains(&format!("config.json field {f} ")))
    };
    for f in [
        "hooks",
        "process.apparmorProfile",
        "process.user.umask",
        "process.capabilities.effective",
        "linux.namespaces[0].path",
        "linux.namespaces[1] (time)",
        "linux.resources.memory.swap",
        "linux.resources.cpu.shares",
        "linux.resources.devices",
        "linux.seccomp",
        "linux.sysctl",
        "linux.cgroupsPath",
        "linux.intelRdt",
        "mounts[0] (bind on /data) option \"shared\"",
        "mounts[1] (overlay on /x)",
    ] {
        assert!(field(f), "no warning for {f}: {w:#?}");
    }
    assert!(
        w.contains(
            &"bundle bundle: config.json field linux.seccomp is not supported \
              (sentinel's own seccomp keys apply: isolation.seccomp); ignored"
        ),
        "{w:#?}"
    );
    assert!(!w.iter().any(|m| m.contains("annotations")), "{w:#?}");
    assert!(
        !w.iter().any(|m| m.contains("hugepageLimits")),
        "empty: nothing to honour"
    );
    let web = service(&c, "web");
    let iso = &web.isolation;
    assert_eq!(iso.limits.memory_max, Some(256 << 20));
    assert_eq!(
        iso.limits.cpu_max,
        Some(CpuMax {
            quota_us: 50_000,
            period_us: 100_000
        })
    );
    assert_eq!(iso.limits.pids_max, Some(64));
    assert_eq!(iso.namespaces.names(), ["net", "mount"]);
    assert!(iso.uid_map.is_empty(), "no user namespace, no map");
    assert_eq!(iso.capabilities, Some(vec![Capability(5)]));
    let m = iso.oci_mounts.as_ref().unwrap();
    assert_eq!(
        m.mounts[0].kind,
        crate::oci::MountKind::Bind {
            source: f.bundle().join("rootfs"),
            recursive: true
        }
    );
    assert!(m.mounts[0].read_only);
}

#[test]
fn user_namespace_mappings() {
    let json = r#"{ "process": { "args": ["/app"] }, "root": { "path": "rootfs" },
      "linux": { "namespaces": [{ "type": "user" }, { "type": "mount" }],
        "uidMappings": [{ "containerID": 0, "hostID": 100000, "size": 65536 }],
        "gidMappings": [{ "containerID": 0, "hostID": 200000, "size": 10 }] } }"#;
    let f = Fixture::new("userns", json);
    let c = f.ok(WEB);
    let iso = &service(&c, "web").isolation;
    assert!(iso.namespaces.user);
    let map = |inside, outside, count| IdMap {
        inside,
        outside,
        count,
    };
    assert_eq!(iso.uid_map, [map(0, 100000, 65536)]);
    assert_eq!(iso.gid_map, [map(0, 200000, 10)]);
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
}

#[test]
fn a_malformed_config_json_is_named_with_its_position() {
    let f = Fixture::new(
        "malformed",
        "{\n  \"process\": {\n    \"args\": [\"/app\",]\n  }\n}\n",
    );
    let p = f.load(WEB).unwrap_err();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, "services.web.bundle");
    assert_eq!(p[0].line, Some(2));
    let file = f.bundle().join("config.json");
    assert!(
        p[0].message
            .starts_with(&format!("{}:3:21: ", file.display())),
        "{}",
        p[0].message
    );
    assert!(p[0].message.contains("trailing comma"), "{}", p[0].message);

    // The right syntax with the wrong types.
    let f = Fixture::new(
        "types",
        r#"{ "process": { "args": "/app" }, "root": { "path": "rootfs" } }"#,
    );
    let p = f.load(WEB).unwrap_err();
    assert!(p[0].message.contains("config.json:1:"), "{}", p[0].message);
    assert!(
        p[0].message.contains("expected a sequence"),
        "{}",
        p[0].message
    );
}

#[test]
fn what_cannot_be_honoured_is_a_problem() {
    let f = Fixture::new("missing", "{}");
    std::fs::remove_file(f.bundle().join("config.json")).unwrap();
    let p = f.load(WEB).unwrap_err();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].message.contains("cannot read"), "{}", p[0].message);
    assert!(p[0].message.contains("umoci unpack"), "{}", p[0].message);

    let f = Fixture::new(
        "bad-values",
        r#"{ "process": { "cwd": "srv", "env": ["NOEQUALS"], "oomScoreAdj": 5000 },
             "root": { "path": "nowhere" }, "hostname": "a b",
             "mounts": [{ "destination": "relative", "type": "tmpfs" },
                        { "destination": "/m", "type": "bind", "source": "/no/such/source" }] }"#,
    );
    let p = f.load(WEB).unwrap_err();
    let text: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
    for needle in [
        "config.json process.env[0]: \"NOEQUALS\" is not NAME=value",
        "config.json process.cwd: \"srv\" is relative",
        "config.json process.oomScoreAdj: 5000 is out of range",
        "config.json root.path: ",
        "config.json hostname: ",
        "config.json mounts[0].destination: \"relative\" must be an absolute path",
        "config.json mounts[1].source: \"/no/such/source\"",
        "has no process.args, and the service no `command`",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "no {needle:?} in {text:#?}"
        );
    }
    assert!(p.iter().all(|p| p.key == "services.web.bundle"), "{p:#?}");
}

#[test]
fn the_service_must_keep_the_mount_namespace() {
    let f = Fixture::new("nomount", UMOCI);
    one_problem_in(
        &f,
        "[services.web]\nbundle = \"bundle\"\nisolation = { namespaces = [\"pid\"] }\n",
        "services.web.isolation.namespaces",
        "needs the mount namespace; add \"mount\"",
    );
    // A workdir is inside the root: absolute, not checked on the host.
    one_problem_in(
        &f,
        "[services.web]\nbundle = \"bundle\"\nworkdir = \"srv\"\n",
        "services.web.workdir",
        "inside its root",
    );
    let c = f.ok("[services.web]\nbundle = \"bundle\"\nworkdir = \"/no/such/host/dir\"\n");
    assert_eq!(
        service(&c, "web").workdir,
        Some(PathBuf::from("/no/such/host/dir"))
    );
}

fn one_problem_in(f: &Fixture, text: &str, key: &str, needle: &str) {
    let p = f.load(text).unwrap_err();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].key, key, "{p:#?}");
    assert!(p[0].message.contains(needle), "{}", p[0].message);
}

#[test]
fn a_hostname_without_the_uts_namespace_is_a_warning() {
    let f = Fixture::new("nouts", UMOCI);
    let c = f.ok(
        "[services.web]\nbundle = \"bundle\"\nisolation = { namespaces = [\"mount\", \"ipc\"] }\n",
    );
    assert_eq!(service(&c, "web").isolation.hostname, None);
    assert!(
        warnings(&c)
            .iter()
            .any(|w| w.contains("hostname \"umoci-default\" needs the uts namespace")),
        "{:#?}",
        c.warnings
    );
}
