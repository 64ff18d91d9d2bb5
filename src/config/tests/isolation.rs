//! The isolation keys (issue 3): each value form, each rule, and where
//! each problem is reported.

// `libc::RLIMIT_*` are a `c_uint` with glibc and a `c_int` with musl.
#![allow(clippy::unnecessary_cast)]

use super::*;

/// A config with service `a` whose table ends with `body`.
fn svc(body: &str) -> String {
    format!("[services.a]\ncommand = [\"x\"]\n{body}\n")
}

fn iso_ok(body: &str) -> Isolation {
    service(&toml_ok(&svc(body)), "a").isolation.clone()
}

/// The single problem of service `a` with `body`, at `key` (below
/// `services.a.`), mentioning `needle`.
fn iso_problem(body: &str, key: &str, needle: &str) -> Problem {
    one_problem(&svc(body), &format!("services.a.{key}"), needle)
}

#[cfg(feature = "yaml")]
fn yaml_err(text: &str) -> Vec<Problem> {
    match from_str(text, true, Path::new("/base")) {
        Ok(c) => panic!("expected problems, got {c:#?}"),
        Err(p) => p,
    }
}

#[test]
fn no_isolation_by_default() {
    let c = toml_ok(&svc(""));
    assert_eq!(c.supervisor.cgroup_root, "sentinel");
    assert!(c.slices.is_empty());
    let iso = &service(&c, "a").isolation;
    assert_eq!(*iso, Isolation::default());
    assert!(iso.no_new_privs);
    assert!(!iso.namespaces.any());
    assert!(iso.limits.is_empty());
}

#[test]
fn every_isolation_key() {
    let dir = TempDir::new("isoall");
    std::fs::create_dir(dir.0.join("rootfs")).unwrap();
    let root = dir.0.join("rootfs");
    let text = format!(
        r#"
[supervisor]
cgroup_root = "/system/sentinel"

[slices.batch]
memory_max = "2G"
cpu_max = "4"

[slices.night]
parent = "batch"
pids_max = 100

[services.web]
command = ["/srv/web"]
slice = "night"
limits = {{ memory_max = "32M", memory_high = "24M", memory_swap_max = "0", cpu_max = "1.5", cpu_weight = 200, pids_max = 20, io_weight = 50, io_max = [{{ device = "/dev/vda", rbps = "10M", wiops = 1000 }}, {{ device = "254:0", wbps = 1024, riops = "max" }}] }}
limits_optional = true
nice = -5
ionice = "best-effort:2"
oom_score_adjust = 500
rlimits = {{ nofile = "1024:4096", core = 0, memlock = "64M", nproc = "unlimited", as = "1G:infinity" }}
user = "www-data:adm"
supplementary_groups = ["audio", 4, "audio"]

[services.web.isolation]
namespaces = ["pid", "net", "mount", "ipc", "uts", "user", "cgroup"]
hostname = "box-1.local"
uid_map = ["0 100000 65536"]
gid_map = ["0 100000 1000", "1000 200000 1"]
read_only_paths = ["/etc", "/usr"]
inaccessible_paths = ["/root"]
tmpfs = ["/tmp", "/run"]
root = "{}"
capabilities = ["CAP_NET_BIND_SERVICE", "net_raw", "Sys_Time", "NET_RAW"]
no_new_privs = false
seccomp = {{ profile = "strict", action = "kill", allow = ["ptrace"], deny = ["mount", {{ syscall = "socket", action = "errno:EAFNOSUPPORT", args = [{{ index = 0, op = "eq", value = 16 }}, {{ index = 2, op = "masked_eq", value = 1, mask = 3 }}, {{ index = 1, value = 0x800 }}] }}] }}
"#,
        root.display()
    );
    let path = dir.write("s.toml", &text);
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.supervisor.cgroup_root, "/system/sentinel");
    assert_eq!(
        c.slices,
        [
            (
                "batch".to_string(),
                SliceConfig {
                    parent: None,
                    limits: Limits {
                        memory_max: Some(2 << 30),
                        cpu_max: Some(CpuMax {
                            quota_us: 400_000,
                            period_us: 100_000
                        }),
                        ..Limits::default()
                    }
                }
            ),
            (
                "night".to_string(),
                SliceConfig {
                    parent: Some("batch".to_string()),
                    limits: Limits {
                        pids_max: Some(100),
                        ..Limits::default()
                    }
                }
            ),
        ]
    );
    let iso = &service(&c, "web").isolation;
    let expected = Isolation {
        slice: Some("night".to_string()),
        limits: Limits {
            memory_max: Some(32 << 20),
            memory_high: Some(24 << 20),
            memory_swap_max: Some(0),
            cpu_max: Some(CpuMax {
                quota_us: 150_000,
                period_us: 100_000,
            }),
            cpu_weight: Some(200),
            pids_max: Some(20),
            io_weight: Some(50),
            io_max: vec![
                IoMax {
                    device: "/dev/vda".to_string(),
                    rbps: Some(10 << 20),
                    wbps: None,
                    riops: None,
                    wiops: Some(1000),
                },
                IoMax {
                    device: "254:0".to_string(),
                    rbps: None,
                    wbps: Some(1024),
                    riops: None,
                    wiops: None,
                },
            ],
        },
        limits_optional: true,
        nice: Some(-5),
        ionice: Some(IoPriority {
            class: IoClass::BestEffort,
            level: 2,
        }),
        oom_score_adjust: Some(500),
        // In resource order.
        rlimits: vec![
            Rlimit {
                resource: libc::RLIMIT_CORE as u32,
                soft: 0,
                hard: 0,
            },
            Rlimit {
                resource: libc::RLIMIT_NPROC as u32,
                soft: RLIM_INFINITY,
                hard: RLIM_INFINITY,
            },
            Rlimit {
                resource: libc::RLIMIT_NOFILE as u32,
                soft: 1024,
                hard: 4096,
            },
            Rlimit {
                resource: libc::RLIMIT_MEMLOCK as u32,
                soft: 64 << 20,
                hard: 64 << 20,
            },
            Rlimit {
                resource: libc::RLIMIT_AS as u32,
                soft: 1 << 30,
                hard: RLIM_INFINITY,
            },
        ],
        user: Some(UserSpec {
            user: IdSpec::Name("www-data".to_string()),
            group: Some(IdSpec::Name("adm".to_string())),
        }),
        supplementary_groups: vec![IdSpec::Name("audio".to_string()), IdSpec::Id(4)],
        namespaces: Namespaces {
            pid: true,
            net: true,
            mount: true,
            ipc: true,
            uts: true,
            user: true,
            cgroup: true,
        },
        hostname: Some("box-1.local".to_string()),
        uid_map: vec![IdMap {
            inside: 0,
            outside: 100_000,
            count: 65536,
        }],
        gid_map: vec![
            IdMap {
                inside: 0,
                outside: 100_000,
                count: 1000,
            },
            IdMap {
                inside: 1000,
                outside: 200_000,
                count: 1,
            },
        ],
        read_only_paths: vec![PathBuf::from("/etc"), PathBuf::from("/usr")],
        inaccessible_paths: vec![PathBuf::from("/root")],
        tmpfs: vec![PathBuf::from("/tmp"), PathBuf::from("/run")],
        root: Some(root.clone()),
        capabilities: Some(vec![Capability(10), Capability(13), Capability(25)]),
        no_new_privs: false,
        seccomp: Some(Seccomp {
            profile: Some(SeccompProfile::Strict),
            default_action: SeccompAction::Kill,
            allow: vec!["ptrace".to_string()],
            deny: vec![
                SeccompRule {
                    syscall: "mount".to_string(),
                    action: SeccompAction::Errno(libc::EPERM as u32),
                    args: vec![],
                },
                SeccompRule {
                    syscall: "socket".to_string(),
                    action: SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
                    args: vec![
                        ArgCondition {
                            index: 0,
                            op: ArgOp::Eq,
                            value: 16,
                        },
                        ArgCondition {
                            index: 2,
                            op: ArgOp::MaskedEq(3),
                            value: 1,
                        },
                        ArgCondition {
                            index: 1,
                            op: ArgOp::Eq,
                            value: 0x800,
                        },
                    ],
                },
            ],
        }),
        oci_mounts: None,
    };
    assert_eq!(*iso, expected);
}

#[test]
fn cgroup_root() {
    for good in [
        "sentinel",
        "apps/sentinel",
        "/sentinel",
        "/system.slice/x",
        "/",
    ] {
        let c = toml_ok(&format!(
            "[supervisor]\ncgroup_root = \"{good}\"\n{}",
            svc("")
        ));
        assert_eq!(c.supervisor.cgroup_root, good);
    }
    for (bad, needle) in [
        ("", "empty cgroup path"),
        ("a//b", "empty part"),
        ("sentinel/", "empty part"),
        ("/a/../b", "\"..\" is not allowed"),
        ("./x", "\".\" is not allowed"),
    ] {
        let p = one_problem(
            &format!("[supervisor]\ncgroup_root = \"{bad}\"\n{}", svc("")),
            "supervisor.cgroup_root",
            needle,
        );
        assert_eq!((p.line, p.column), (Some(2), Some(15)));
    }
}

#[test]
fn slices_and_their_parents() {
    let base = svc("slice = \"batch\"");
    // The service's slice must exist, with a suggestion for a near miss.
    let p = one_problem(
        &format!("[slices.btach]\n{base}"),
        "services.a.slice",
        "unknown slice \"batch\"; did you mean \"btach\"?",
    );
    assert_eq!((p.line, p.column), (Some(4), Some(9)));
    one_problem(&base, "services.a.slice", "define it with [slices.batch]");

    // Parents must exist.
    one_problem(
        &format!("[slices.batch]\nparent = \"top\"\n{base}"),
        "slices.batch.parent",
        "unknown slice \"top\"",
    );
    // Loops are reported once, at their first slice.
    one_problem(
        &format!("[slices.batch]\nparent = \"batch\"\n{base}"),
        "slices.batch.parent",
        "\"batch\" is its own parent",
    );
    let p = one_problem(
        &format!(
            "[slices.x]\nparent = \"y\"\n[slices.y]\nparent = \"z\"\n[slices.z]\nparent = \"x\"\n[slices.batch]\nparent = \"x\"\n{base}"
        ),
        "slices.x.parent",
        "the slices nest in a loop: x → y → z → x",
    );
    assert_eq!(p.line, Some(2));
    // Names like service names, and not sentinel's own group.
    one_problem(
        &format!("[slices.\"b@d\"]\n[slices.batch]\n{base}"),
        "slices.\"b@d\"",
        "invalid slice name",
    );
    one_problem(
        &format!("[slices.supervisor]\n[slices.batch]\n{base}"),
        "slices.supervisor",
        "sentinel's own cgroup",
    );
    // A slice and a service may not share a cgroup folder.
    one_problem(
        "[slices.a]\n[services.a]\ncommand = [\"x\"]\n",
        "slices.a",
        "slice \"a\" and service \"a\" would share one cgroup under the cgroup root",
    );
    toml_ok("[slices.a]\n[services.a]\ncommand = [\"x\"]\nslice = \"a\"\n");
    // Slices take the limit keys and nothing else.
    one_problem(
        &format!("[slices.batch]\nmemory_mx = \"1G\"\n{base}"),
        "slices.batch.memory_mx",
        "did you mean \"memory_max\"?",
    );
    one_problem(
        &format!("[slices.batch]\nmemory_high = \"2G\"\nmemory_max = \"1G\"\n{base}"),
        "slices.batch.memory_high",
        "memory_high (2G) is above memory_max (1G)",
    );
}

#[test]
fn cpu_max_forms() {
    let cpu = |s: &str| CpuMax::parse(s);
    let c = |q, p| {
        Ok(Some(CpuMax {
            quota_us: q,
            period_us: p,
        }))
    };
    assert_eq!(cpu("1.5"), c(150_000, 100_000));
    assert_eq!(cpu("2"), c(200_000, 100_000));
    assert_eq!(cpu("0.01"), c(1_000, 100_000));
    assert_eq!(cpu("50ms/100ms"), c(50_000, 100_000));
    assert_eq!(cpu("1.5ms/1s"), c(1_500, 1_000_000));
    assert_eq!(cpu("200ms / 100ms"), c(200_000, 100_000));
    assert_eq!(cpu("max"), Ok(None));
    assert!(cpu("0.005").unwrap_err().contains("less than 1ms"));
    assert!(cpu("0").unwrap_err().contains("less than 1ms"));
    assert!(cpu("500us/100ms").unwrap_err().contains("unknown unit"));
    assert!(cpu("10ms/2s").unwrap_err().contains("from 1ms to 1s"));
    assert!(cpu("1ms/500ms").is_ok());
    assert!(cpu("1ms/0.5ms").unwrap_err().contains("from 1ms to 1s"));
    for bad in ["", "-1", "one", "1e3", "inf", "1.5x"] {
        assert!(cpu(bad).is_err(), "{bad}");
    }
    assert_eq!(
        CpuMax {
            quota_us: 150_000,
            period_us: 100_000
        }
        .cgroup_value(),
        "150000 100000"
    );

    // In a config: a string, or a bare number of CPUs.
    assert_eq!(
        iso_ok("limits = { cpu_max = 1.5 }").limits.cpu_max,
        Some(CpuMax {
            quota_us: 150_000,
            period_us: 100_000
        })
    );
    assert_eq!(
        iso_ok("limits = { cpu_max = 3 }")
            .limits
            .cpu_max
            .unwrap()
            .quota_us,
        300_000
    );
    assert_eq!(
        iso_ok("limits = { cpu_max = \"max\" }").limits.cpu_max,
        None
    );
    let p = iso_problem(
        "limits = { cpu_max = \"5ms/5s\" }",
        "limits.cpu_max",
        "from 1ms to 1s",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(22)));
    iso_problem(
        "limits = { cpu_max = true }",
        "limits.cpu_max",
        "expected a number of CPUs like \"1.5\"",
    );
}

#[test]
fn limits_rules() {
    let l =
        iso_ok("limits = { memory_max = \"max\", pids_max = \"max\", memory_high = 1024 }").limits;
    assert_eq!(
        (l.memory_max, l.pids_max, l.memory_high),
        (None, None, Some(1024))
    );
    iso_problem(
        "limits = { memory_max = \"24M\", memory_high = \"32M\" }",
        "limits.memory_high",
        "memory_high (32M) is above memory_max (24M), so it would never throttle; lower memory_high or raise memory_max",
    );
    iso_problem(
        "limits = { memory_max = \"lots\" }",
        "limits.memory_max",
        "invalid size \"lots\"",
    );
    for key in ["cpu_weight", "io_weight"] {
        iso_problem(
            &format!("limits = {{ {key} = 0 }}"),
            &format!("limits.{key}"),
            "0 is out of range; use a whole number from 1 to 10000",
        );
        iso_problem(
            &format!("limits = {{ {key} = 10001 }}"),
            &format!("limits.{key}"),
            "from 1 to 10000",
        );
    }
    iso_problem(
        "limits = { pids_max = 0 }",
        "limits.pids_max",
        "give at least 1",
    );
    iso_problem(
        "limits = { pids_max = -1 }",
        "limits.pids_max",
        "invalid count \"-1\"",
    );
    iso_problem(
        "limits = { memory = \"1G\" }",
        "limits.memory",
        "unknown key; expected one of: memory_max, memory_high",
    );
    // io_max: a device path or numbers, at least one limit, once per device.
    iso_problem(
        "limits = { io_max = [{ device = \"vda\", rbps = \"1M\" }] }",
        "limits.io_max[0].device",
        "give a block device's path like \"/dev/vda\" or its numbers like \"254:0\"",
    );
    iso_problem(
        "limits = { io_max = [{ device = \"8:x\", rbps = \"1M\" }] }",
        "limits.io_max[0].device",
        "invalid device \"8:x\"",
    );
    let p = iso_problem(
        "limits = { io_max = [{ device = \"8:0\" }] }",
        "limits.io_max[0]",
        "no limit for device \"8:0\"; add rbps, wbps",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(22)));
    iso_problem(
        "limits = { io_max = [{ device = \"8:0\", rbps = 1 }, { device = \"8:0\", wbps = 1 }] }",
        "limits.io_max[1].device",
        "listed twice",
    );
    iso_problem(
        "limits = { io_max = [{ rbps = 1 }] }",
        "limits.io_max[0]",
        "missing key `device`",
    );
    iso_problem(
        "limits = { io_max = [{ device = \"8:0\", rbs = 1 }] }",
        "limits.io_max[0].rbs",
        "did you mean \"rbps\"?",
    );
}

#[test]
fn priorities() {
    let iso = iso_ok("nice = 19\noom_score_adjust = -1000\nionice = \"idle\"");
    assert_eq!(iso.nice, Some(19));
    assert_eq!(iso.oom_score_adjust, Some(-1000));
    assert_eq!(
        iso.ionice,
        Some(IoPriority {
            class: IoClass::Idle,
            level: 0
        })
    );
    iso_problem(
        "nice = 20",
        "nice",
        "20 is out of range; use a whole number from -20 to 19",
    );
    iso_problem("nice = -21", "nice", "from -20 to 19");
    iso_problem(
        "nice = \"low\"",
        "nice",
        "expected a whole number from -20 to 19, found the string \"low\"",
    );
    iso_problem(
        "oom_score_adjust = 1001",
        "oom_score_adjust",
        "from -1000 to 1000",
    );

    let io = |s: &str| IoPriority::parse(s);
    let prio = |class, level| Ok(IoPriority { class, level });
    assert_eq!(io("best-effort:4"), prio(IoClass::BestEffort, 4));
    assert_eq!(io("be:0"), prio(IoClass::BestEffort, 0));
    assert_eq!(io("realtime:7"), prio(IoClass::Realtime, 7));
    assert_eq!(io("RT:1"), prio(IoClass::Realtime, 1));
    assert_eq!(io("best-effort"), prio(IoClass::BestEffort, 4));
    assert_eq!(io("idle"), prio(IoClass::Idle, 0));
    assert_eq!(io("be:2").unwrap().value(), (2 << 13) | 2);
    assert!(io("idle:3").unwrap_err().contains("write \"idle\""));
    assert!(io("be:8").unwrap_err().contains("from 0 (highest) to 7"));
    assert!(io("fast:1").unwrap_err().contains("unknown I/O class"));
    iso_problem(
        "ionice = \"be:9\"",
        "ionice",
        "invalid I/O priority level in \"be:9\"",
    );
    iso_problem(
        "ionice = 4",
        "ionice",
        "expected an I/O priority like \"best-effort:4\"",
    );
}

#[test]
fn rlimits() {
    assert_eq!(parse_rlimit_value("1024", false), Ok((1024, 1024)));
    assert_eq!(parse_rlimit_value("10:20", false), Ok((10, 20)));
    assert_eq!(
        parse_rlimit_value("unlimited", false),
        Ok((RLIM_INFINITY, RLIM_INFINITY))
    );
    assert_eq!(
        parse_rlimit_value("0:infinity", false),
        Ok((0, RLIM_INFINITY))
    );
    assert_eq!(parse_rlimit_value("1M:2M", true), Ok((1 << 20, 2 << 20)));
    assert!(parse_rlimit_value("1M", false).is_err());
    assert!(parse_rlimit_value("20:10", false)
        .unwrap_err()
        .contains("soft limit is above the hard one"));
    assert_eq!(
        Rlimit::parse("NOFILE", "1:2"),
        Ok(Rlimit {
            resource: libc::RLIMIT_NOFILE as u32,
            soft: 1,
            hard: 2
        })
    );
    assert_eq!(Rlimit::parse("rlimit_core", "0").unwrap().name(), "core");
    assert!(Rlimit::parse("nofiles", "1")
        .unwrap_err()
        .contains("did you mean \"nofile\"?"));
    assert_eq!(Rlimit::names().count(), 16);
    // Every name is a key of `rlimits`.
    for name in Rlimit::names() {
        let iso = iso_ok(&format!("rlimits = {{ {name} = \"5:unlimited\" }}"));
        assert_eq!(iso.rlimits.len(), 1, "{name}");
        assert_eq!(iso.rlimits[0].name(), name);
        assert_eq!(
            (iso.rlimits[0].soft, iso.rlimits[0].hard),
            (5, RLIM_INFINITY)
        );
    }

    iso_problem(
        "rlimits = { nofile = \"4096:1024\" }",
        "rlimits.nofile",
        "write \"soft:hard\" with soft ≤ hard",
    );
    iso_problem(
        "rlimits = { nofiles = 1 }",
        "rlimits.nofiles",
        "did you mean \"nofile\"?",
    );
    iso_problem(
        "rlimits = { nofile = \"1K\" }",
        "rlimits.nofile",
        "use a whole number, \"soft:hard\"",
    );
    iso_problem(
        "rlimits = { nofile = -1 }",
        "rlimits.nofile",
        "invalid limit \"-1\"",
    );
    iso_problem(
        "rlimits = { core = \"big\" }",
        "rlimits.core",
        "or size like \"64M\"",
    );
}

#[test]
fn users_and_groups() {
    let u = |s: &str| UserSpec::parse(s);
    let name = |s: &str| IdSpec::Name(s.to_string());
    assert_eq!(
        u("www-data"),
        Ok(UserSpec {
            user: name("www-data"),
            group: None
        })
    );
    assert_eq!(
        u("1000:1000"),
        Ok(UserSpec {
            user: IdSpec::Id(1000),
            group: Some(IdSpec::Id(1000))
        })
    );
    assert_eq!(
        u("nobody:65534"),
        Ok(UserSpec {
            user: name("nobody"),
            group: Some(IdSpec::Id(65534))
        })
    );
    assert_eq!(u("app:adm").unwrap().to_string(), "app:adm");
    assert!(u(":adm").unwrap_err().contains("no user"));
    assert!(u("app:").unwrap_err().contains("empty group"));
    assert!(u("4294967295").unwrap_err().contains("not a valid id"));
    assert!(u("99999999999").unwrap_err().contains("not a valid id"));
    assert!(u("a b").unwrap_err().contains("' ' cannot be part"));
    assert!(u("a:b:c").unwrap_err().contains("':' cannot be part"));

    let iso = iso_ok("user = 1000\nsupplementary_groups = [\"adm\", 4, \"27\"]");
    assert_eq!(
        iso.user,
        Some(UserSpec {
            user: IdSpec::Id(1000),
            group: None
        })
    );
    assert_eq!(
        iso.supplementary_groups,
        [name("adm"), IdSpec::Id(4), IdSpec::Id(27)]
    );
    iso_problem("user = \"app:\"", "user", "empty group in \"app:\"");
    iso_problem("user = -1", "user", "-1 is not a valid id");
    iso_problem("user = \"-x\"", "user", "cannot start with '-'");
    iso_problem(
        "user = [\"a\"]",
        "user",
        "expected a user like \"www-data\"",
    );
    iso_problem(
        "supplementary_groups = [\"adm\", \"a,b\"]",
        "supplementary_groups[1]",
        "',' cannot be part",
    );
    // `group` stays the named service groups.
    let c = toml_ok(&svc("group = \"adm\""));
    assert_eq!(service(&c, "a").groups, ["adm"]);
}

#[test]
fn namespaces_and_what_needs_them() {
    let iso = iso_ok("isolation = { namespaces = [\"mnt\", \"Network\"] }");
    assert_eq!(iso.namespaces.names(), ["net", "mount"]);
    iso_problem(
        "isolation = { namespaces = [\"pid\", \"time\"] }",
        "isolation.namespaces[1]",
        "unknown namespace \"time\"; use any of: pid, net, mount, ipc, uts, user, cgroup",
    );
    iso_problem(
        "isolation = { namespaces = [\"usr\"] }",
        "isolation.namespaces[0]",
        "did you mean \"user\"?",
    );
    iso_problem(
        "isolation = { namespaces = [\"mount\", \"pid\", \"mnt\"] }",
        "isolation.namespaces[2]",
        "namespace \"mnt\" is listed twice; remove one",
    );

    // hostname: uts, and a valid name.
    let p = iso_problem(
        "isolation = { hostname = \"box\" }",
        "isolation.hostname",
        "a hostname of its own needs the uts namespace; add \"uts\" to services.a.isolation.namespaces",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(15)));
    for bad in [
        "-box",
        "a_b",
        "a..b",
        "box.",
        &"x".repeat(65),
        &"y".repeat(64),
    ] {
        let problems = toml_err(&svc(&format!(
            "isolation = {{ namespaces = [\"uts\"], hostname = \"{bad}\" }}"
        )));
        assert_eq!(
            where_(&problems),
            [("services.a.isolation.hostname", Some(3))],
            "{bad}"
        );
    }
    for good in ["box", "web-1", "a.b.c", "X9"] {
        assert_eq!(check_hostname(good), Ok(()), "{good}");
    }

    // Id maps: user, their syntax, no overlaps.
    iso_problem(
        "isolation = { uid_map = [\"0 1000 1\"] }",
        "isolation.uid_map",
        "`uid_map` needs the user namespace; add \"user\"",
    );
    iso_problem(
        "isolation = { namespaces = [\"user\"], gid_map = [\"0 1000\"] }",
        "isolation.gid_map[0]",
        "write \"INSIDE OUTSIDE COUNT\"",
    );
    iso_problem(
        "isolation = { namespaces = [\"user\"], uid_map = [\"0 100000 10\", \"5 200000 10\"] }",
        "isolation.uid_map[1]",
        "overlaps \"0 100000 10\"",
    );
    assert!(IdMap::parse("0 1 0").unwrap_err().contains("maps no ids"));
    assert!(IdMap::parse("0 4294967290 10")
        .unwrap_err()
        .contains("runs past the last id"));
    assert!(IdMap::parse("a 1 1")
        .unwrap_err()
        .contains("\"a\" is not an id"));

    // Mounts: absolute paths, the mount namespace.
    for key in ["read_only_paths", "inaccessible_paths", "tmpfs"] {
        iso_problem(
            &format!("isolation = {{ {key} = [\"/x\"] }}"),
            &format!("isolation.{key}"),
            &format!("`{key}` needs the mount namespace; add \"mount\" to services.a.isolation.namespaces"),
        );
        iso_problem(
            &format!("isolation = {{ namespaces = [\"mount\"], {key} = [\"/x\", \"data\"] }}"),
            &format!("isolation.{key}[1]"),
            "\"data\" is relative; give an absolute path like \"/data\"",
        );
    }
    // A list of namespaces that did not parse is not blamed again.
    let problems = toml_err(&svc(
        "isolation = { namespaces = \"mount\", tmpfs = [\"/tmp\"], hostname = \"h\" }",
    ));
    assert_eq!(
        where_(&problems),
        [("services.a.isolation.namespaces", Some(3))],
        "{problems:#?}"
    );
}

#[test]
fn root_must_be_a_directory() {
    let dir = TempDir::new("isoroot");
    dir.write("file", "");
    let d = dir.0.display();
    let problems = toml_err(&format!(
        "[services.a]\ncommand = [\"x\"]\nisolation = {{ namespaces = [\"mount\"], root = \"{d}/nope\" }}\n\
         [services.b]\ncommand = [\"x\"]\nisolation = {{ namespaces = [\"mount\"], root = \"{d}/file\" }}\n\
         [services.c]\ncommand = [\"x\"]\nisolation = {{ root = \"{d}\" }}\n\
         [services.d]\ncommand = [\"x\"]\nisolation = {{ namespaces = [\"mount\"], root = \"rootfs\" }}\n"
    ));
    assert_eq!(
        where_(&problems),
        [
            ("services.a.isolation.root", Some(3)),
            ("services.b.isolation.root", Some(6)),
            ("services.c.isolation.root", Some(9)),
            ("services.d.isolation.root", Some(12)),
        ]
    );
    assert!(
        problems[0].message.contains("No such file or directory"),
        "{problems:#?}"
    );
    assert!(problems[1].message.contains("is not a directory"));
    assert!(problems[2]
        .message
        .contains("a new root needs the mount namespace"));
    assert!(problems[3].message.contains("is relative"));
}

#[test]
fn capabilities() {
    assert_eq!(Capability::from_name("CAP_CHOWN"), Ok(Capability(0)));
    assert_eq!(
        Capability::from_name("net_bind_service"),
        Ok(Capability(10))
    );
    assert_eq!(Capability::from_name("cap_sys_admin"), Ok(Capability(21)));
    assert_eq!(
        Capability::from_name("Checkpoint_Restore"),
        Ok(Capability(40))
    );
    assert_eq!(Capability::LAST, Capability(40));
    assert_eq!(Capability::all().count(), 41);
    for cap in Capability::all() {
        assert_eq!(Capability::from_name(cap.name()), Ok(cap));
        assert_eq!(
            Capability::from_name(&cap.name()[4..].to_lowercase()),
            Ok(cap)
        );
    }
    assert_eq!(Capability(10).name(), "CAP_NET_BIND_SERVICE");
    assert_eq!(Capability(39).to_string(), "CAP_BPF");
    assert_eq!(Capability(99).name(), "CAP_?");
    assert!(Capability::from_name("CAP_NET_BIND_SERVCE")
        .unwrap_err()
        .contains("did you mean \"CAP_NET_BIND_SERVICE\"?"));
    assert!(Capability::from_name("net_bind")
        .unwrap_err()
        .contains("did you mean \"CAP_NET_BIND_SERVICE\"?"));
    assert!(Capability::from_name("sys_")
        .unwrap_err()
        .contains("did you mean one of: CAP_SYS_MODULE, CAP_SYS_RAWIO"));
    assert!(Capability::from_name("fly")
        .unwrap_err()
        .contains("man 7 capabilities"));

    assert_eq!(
        iso_ok("isolation = { capabilities = [] }").capabilities,
        Some(vec![])
    );
    assert_eq!(iso_ok("").capabilities, None);
    let p = iso_problem(
        "isolation = { capabilities = [\"chown\", \"net_admn\"] }",
        "isolation.capabilities[1]",
        "unknown capability \"net_admn\"; did you mean \"CAP_NET_ADMIN\"?",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(40)));
}

#[test]
fn seccomp_forms() {
    let default = |profile| Seccomp {
        profile: Some(profile),
        default_action: SeccompAction::Errno(libc::EPERM as u32),
        allow: vec![],
        deny: vec![],
    };
    assert_eq!(
        iso_ok("isolation = { seccomp = \"default\" }").seccomp,
        Some(default(SeccompProfile::Default))
    );
    assert_eq!(
        iso_ok("isolation = { seccomp = \"strict\" }").seccomp,
        Some(default(SeccompProfile::Strict))
    );
    // Without a profile: a deny-list.
    let s = iso_ok("isolation = { seccomp = { deny = [\"reboot\", { syscall = \"kill\", action = \"log\", args = [{ index = 1, op = \"ge\", value = 9 }] }] } }")
        .seccomp
        .unwrap();
    assert_eq!(s.profile, None);
    assert_eq!(s.deny[0].action, SeccompAction::Errno(libc::EPERM as u32));
    assert_eq!(s.deny[1].action, SeccompAction::Log);
    assert_eq!(
        s.deny[1].args,
        [ArgCondition {
            index: 1,
            op: ArgOp::Ge,
            value: 9
        }]
    );

    let a = |s: &str| SeccompAction::parse(s);
    assert_eq!(a("errno:EPERM"), Ok(SeccompAction::Errno(1)));
    assert_eq!(
        a("errno:eacces"),
        Ok(SeccompAction::Errno(libc::EACCES as u32))
    );
    assert_eq!(a("errno:13"), Ok(SeccompAction::Errno(13)));
    assert_eq!(a("errno:4095"), Ok(SeccompAction::Errno(4095)));
    assert_eq!(a("kill"), Ok(SeccompAction::Kill));
    assert_eq!(a("allow"), Ok(SeccompAction::Allow));
    assert_eq!(a("log"), Ok(SeccompAction::Log));
    assert!(a("errno:0").unwrap_err().contains("out of range"));
    assert!(a("errno:4096").unwrap_err().contains("out of range"));
    assert!(a("errno:EPREM")
        .unwrap_err()
        .contains("did you mean \"EPERM\"?"));
    assert!(a("trap")
        .unwrap_err()
        .contains("unknown seccomp action \"trap\""));
    assert_eq!(SeccompAction::Errno(97).to_string(), "errno:EAFNOSUPPORT");
    assert_eq!(errno_name(libc::ENOSYS as u32), "ENOSYS");
    assert_eq!(errno_name(4000), "4000");
    for name in [
        "EPERM",
        "EACCES",
        "ENOSYS",
        "EAFNOSUPPORT",
        "EINVAL",
        "ENOENT",
    ] {
        assert!(parse_errno(name).is_ok(), "{name}");
    }
}

#[test]
fn seccomp_rules() {
    let s = |body: &str| format!("isolation = {{ seccomp = {body} }}");
    iso_problem(
        &s("\"lenient\""),
        "isolation.seccomp",
        "unknown seccomp profile \"lenient\"; use \"default\" or \"strict\", or a table of rules",
    );
    iso_problem(
        &s("{ profile = \"lax\" }"),
        "isolation.seccomp.profile",
        "unknown seccomp profile \"lax\"",
    );
    iso_problem(
        &s("{ action = \"kill\", deny = [\"mount\"] }"),
        "isolation.seccomp.action",
        "there is no profile; add profile = \"default\", or give each deny rule its own action",
    );
    iso_problem(
        &s("{ allow = [\"ptrace\"], deny = [\"mount\"] }"),
        "isolation.seccomp.allow",
        "add profile = \"default\" or remove `allow`",
    );
    iso_problem(&s("{}"), "isolation.seccomp", "this filter blocks nothing");
    iso_problem(
        &s("{ profile = \"default\", allow = [\"Ptrace\"] }"),
        "isolation.seccomp.allow[0]",
        "'P' cannot be part of a syscall name",
    );
    iso_problem(
        &s("{ deny = [\"mount\", \"\"] }"),
        "isolation.seccomp.deny[1]",
        "empty syscall name",
    );
    iso_problem(
        &s("{ deny = [{ syscall = \"sys-call\" }] }"),
        "isolation.seccomp.deny[0].syscall",
        "'-' cannot be part of a syscall name",
    );
    iso_problem(
        &s("{ deny = [{ action = \"kill\" }] }"),
        "isolation.seccomp.deny[0]",
        "missing key `syscall`",
    );
    iso_problem(
        &s("{ deny = [{ syscall = \"socket\", action = \"errno:ENOPE\" }] }"),
        "isolation.seccomp.deny[0].action",
        "unknown errno \"ENOPE\"",
    );
    iso_problem(
        &s("{ deny = [5] }"),
        "isolation.seccomp.deny[0]",
        "expected a syscall name like \"mount\", or a rule like",
    );
    let args = |a: &str| {
        s(&format!(
            "{{ deny = [{{ syscall = \"socket\", args = [{a}] }}] }}"
        ))
    };
    iso_problem(
        &args("{ index = 6, value = 1 }"),
        "isolation.seccomp.deny[0].args[0].index",
        "6 is out of range; use a whole number from 0 to 5",
    );
    iso_problem(
        &args("{ index = 0, op = \"between\", value = 1 }"),
        "isolation.seccomp.deny[0].args[0].op",
        "expected one of: eq, ne, lt, le, gt, ge, masked_eq",
    );
    iso_problem(
        &args("{ index = 0, op = \"masked_eq\", value = 1 }"),
        "isolation.seccomp.deny[0].args[0]",
        "op \"masked_eq\" needs a mask",
    );
    iso_problem(
        &args("{ index = 0, op = \"eq\", value = 1, mask = 3 }"),
        "isolation.seccomp.deny[0].args[0].mask",
        "`mask` is only for op = \"masked_eq\"",
    );
    iso_problem(
        &args("{ index = 0, value = -1 }"),
        "isolation.seccomp.deny[0].args[0].value",
        "expected a whole number, 0 or more",
    );
    iso_problem(
        &args("{ index = 0 }"),
        "isolation.seccomp.deny[0].args[0]",
        "missing key `value`",
    );
    iso_problem(
        &s("{ profile = \"default\", allow = [\"ptrace\"], deny = [\"ptrace\"] }"),
        "isolation.seccomp.allow[0]",
        "\"ptrace\" is both allowed and denied",
    );
    // A conditional deny next to an allow is a refinement, not a conflict.
    iso_ok(&s(
        "{ profile = \"default\", allow = [\"socket\"], deny = [{ syscall = \"socket\", args = [{ index = 0, value = 16 }] }] }",
    ));
}

#[test]
fn isolation_table_takes_only_its_keys() {
    iso_problem(
        "isolation = { namespace = [\"pid\"] }",
        "isolation.namespace",
        "did you mean \"namespaces\"?",
    );
    iso_problem(
        "isolation = { user = \"x\" }",
        "isolation.user",
        "unknown key; expected one of: namespaces, hostname",
    );
    iso_problem(
        "isolation = { no_new_privs = 1 }",
        "isolation.no_new_privs",
        "expected true or false",
    );
    iso_problem(
        "limits_optional = \"yes\"",
        "limits_optional",
        "expected true or false",
    );
}

#[test]
fn every_isolation_problem_at_once() {
    let text = r#"[supervisor]
cgroup_root = "../up"

[slices.batch]
parent = "nowhere"
memory_max = "1G"

[services.web]
command = ["/srv/web"]
slice = "bacth"
limits = { memory_max = "24M", memory_high = "32M", cpu_max = "0.001" }
nice = 40
ionice = "fast"
rlimits = { nofile = "10:1", stack = "8M" }
user = "www-data:"
isolation = { namespaces = ["pid", "time"], hostname = "box", capabilities = ["NET_BIND"], seccomp = { action = "kill", deny = ["mount"] } }
"#;
    let problems = toml_err(text);
    assert_eq!(
        where_(&problems),
        [
            ("supervisor.cgroup_root", Some(2)),
            ("slices.batch.parent", Some(5)),
            ("services.web.slice", Some(10)),
            ("services.web.limits.memory_high", Some(11)),
            ("services.web.limits.cpu_max", Some(11)),
            ("services.web.nice", Some(12)),
            ("services.web.ionice", Some(13)),
            ("services.web.rlimits.nofile", Some(14)),
            ("services.web.user", Some(15)),
            ("services.web.isolation.namespaces[1]", Some(16)),
            ("services.web.isolation.hostname", Some(16)),
            ("services.web.isolation.capabilities[0]", Some(16)),
            ("services.web.isolation.seccomp.action", Some(16)),
        ],
        "{problems:#?}"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_isolation() {
    let toml = r#"
[slices.batch]
memory_max = "1G"
[services.a]
command = ["x"]
slice = "batch"
limits = { cpu_max = 0.5, io_max = [{ device = "8:0", rbps = "1M" }] }
nice = 5
ionice = "be:3"
rlimits = { nofile = 1024 }
user = "1000:1000"
supplementary_groups = [4]
isolation = { namespaces = ["pid", "uts"], hostname = "h", capabilities = ["net_raw"], seccomp = { profile = "default", deny = [{ syscall = "socket", args = [{ index = 0, value = 16 }] }] } }
"#;
    let yaml = r#"
slices:
  batch:
    memory_max: 1G
services:
  a:
    command: [x]
    slice: batch
    limits:
      cpu_max: 0.5
      io_max:
        - {device: "8:0", rbps: 1M}
    nice: 5
    ionice: be:3
    rlimits: {nofile: 1024}
    user: "1000:1000"
    supplementary_groups: [4]
    isolation:
      namespaces: [pid, uts]
      hostname: h
      capabilities: [net_raw]
      seccomp:
        profile: default
        deny:
          - syscall: socket
            args: [{index: 0, value: 16}]
"#;
    let from_yaml = from_str(yaml, true, Path::new("/base")).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(toml_ok(toml), from_yaml);

    let p = yaml_err(
        "services:\n  a:\n    command: [x]\n    slice: nope\n    isolation:\n      hostname: h\n      seccomp:\n        deny:\n          - {syscall: socket, args: [{index: 9, value: 1}]}\n",
    );
    assert_eq!(
        where_(&p),
        [
            ("services.a.slice", Some(4)),
            ("services.a.isolation.hostname", Some(6)),
            (
                "services.a.isolation.seccomp.deny[0].args[0].index",
                Some(9)
            ),
        ],
        "{p:#?}"
    );
    assert!(
        p[0].message
            .contains("define it under slices: {nope: {...}}"),
        "{p:#?}"
    );
    assert_eq!(p[1].column, Some(7));
    let p =
        yaml_err("slices:\n  x: {parent: y}\n  y: {parent: x}\nservices:\n  a: {command: [x]}\n");
    assert_eq!(where_(&p), [("slices.x.parent", Some(2))], "{p:#?}");
}

#[test]
fn the_isolation_examples_load_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let toml = load(&dir.join("isolation.toml")).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = toml.slices.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["batch", "nightly"]);
    let web = &service(&toml, "web").isolation;
    assert_eq!(web.namespaces.names(), ["mount", "ipc", "uts"]);
    assert_eq!(web.capabilities, Some(vec![Capability(10)]));
    let report = &service(&toml, "report").isolation;
    assert_eq!(report.slice.as_deref(), Some("nightly"));
    let seccomp = report.seccomp.as_ref().unwrap();
    assert_eq!(seccomp.profile, Some(SeccompProfile::Strict));
    assert_eq!(seccomp.deny.len(), 2);
    #[cfg(feature = "yaml")]
    {
        let yaml = load(&dir.join("isolation.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(toml, yaml);
    }
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_colon_values_stay_strings() {
    let c = from_str(
        "services:\n  a:\n    command: [x]\n    user: 1000:1000\n    ionice: be:4\n    rlimits: {nofile: 1024:4096}\n",
        true,
        Path::new("/"),
    )
    .unwrap_or_else(|p| panic!("{p:#?}"));
    let iso = &service(&c, "a").isolation;
    assert_eq!(iso.user.as_ref().unwrap().to_string(), "1000:1000");
    assert_eq!((iso.rlimits[0].soft, iso.rlimits[0].hard), (1024, 4096));
}
