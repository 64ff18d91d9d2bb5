//! `load` end to end on text: defaults, paths, env merging, and every rule.

use super::*;
use std::time::Duration;

/// A fresh folder for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("sentinel-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn toml_ok(text: &str) -> Config {
    from_str(text, false, Path::new("/base")).unwrap_or_else(|p| panic!("{p:#?}"))
}

fn toml_err(text: &str) -> Vec<Problem> {
    match from_str(text, false, Path::new("/base")) {
        Ok(c) => panic!("expected problems, got {c:#?}"),
        Err(p) => p,
    }
}

/// `(key, line)` of each problem.
fn where_(problems: &[Problem]) -> Vec<(&str, Option<usize>)> {
    problems.iter().map(|p| (p.key.as_str(), p.line)).collect()
}

/// The single problem, checked to be at `key` and to mention `needle`.
fn one_problem(text: &str, key: &str, needle: &str) -> Problem {
    let problems = toml_err(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problems.into_iter().next().unwrap();
    assert_eq!(p.key, key, "{p:#?}");
    assert!(
        p.message.contains(needle),
        "{:?} lacks {needle:?}",
        p.message
    );
    p
}

fn service<'a>(config: &'a Config, name: &str) -> &'a ServiceConfig {
    &config.services.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn defaults() {
    let config = toml_ok("[services.a]\ncommand = [\"/bin/true\"]\n");
    let sup = &config.supervisor;
    assert_eq!(sup.log_dir, None);
    assert_eq!(sup.socket, None);
    assert!(sup.socket_allow_uids.is_empty());
    assert_eq!(sup.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(sup.echo_logs, None);
    assert_eq!(
        sup.forward_signals,
        [
            Signal(libc::SIGUSR1),
            Signal(libc::SIGUSR2),
            Signal(libc::SIGWINCH)
        ]
    );
    assert_eq!(sup.log, LogConfig::default());
    let a = service(&config, "a");
    assert_eq!(
        *a,
        ServiceConfig {
            isolation: Default::default(),
            lifecycle: Default::default(),
            scaling: Default::default(),
            secrets: Default::default(),
            command: vec!["/bin/true".to_string()],
            workdir: None,
            env: vec![],
            clear_env: false,
            restart: RestartPolicy::Always,
            backoff: Backoff::default(),
            stop_signal: Signal::TERM,
            stop_timeout: Duration::from_secs(10),
            groups: vec![],
            autostart: true,
            log: LogConfig::default(),
            forward_signals: None,
        }
    );
}

#[test]
fn every_key() {
    let config = toml_ok(
        r#"
[supervisor]
log_dir = "logs"
socket = "/run/s.sock"
socket_allow_uids = [1000, 1001]
shutdown_timeout = "1m"
echo_logs = true
forward_signals = ["HUP", 10]
log = { max_size = "1M", keep = 2 }

[services.web]
command = "/srv/web --port '80 80'"
env = { PORT = 8080, DEBUG = true, NAME = "x" }
clear_env = true
restart = "on-failure"
backoff = { initial = "1s", max = 60, factor = 1.5, reset_after = "1m30s" }
stop_signal = "int"
stop_timeout = 3
group = "front"
autostart = false
log = { keep = 9 }
forward_signals = []

[services.job]
command = ["sleep", 5]
restart = "never"
group = ["batch", "night", "batch"]
"#,
    );
    let sup = &config.supervisor;
    assert_eq!(sup.log_dir, Some(PathBuf::from("/base/logs")));
    assert_eq!(sup.socket, Some(PathBuf::from("/run/s.sock")));
    assert_eq!(sup.socket_allow_uids, [1000, 1001]);
    assert_eq!(sup.shutdown_timeout, Duration::from_secs(60));
    assert_eq!(sup.echo_logs, Some(true));
    assert_eq!(sup.forward_signals, [Signal(libc::SIGHUP), Signal(10)]);
    assert_eq!(
        sup.log,
        LogConfig {
            max_size: 1 << 20,
            keep: 2
        }
    );
    let names: Vec<&str> = config.services.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["web", "job"]);
    let web = service(&config, "web");
    assert_eq!(web.command, ["/srv/web", "--port", "80 80"]);
    assert_eq!(
        web.env,
        [
            ("PORT".to_string(), "8080".to_string()),
            ("DEBUG".to_string(), "true".to_string()),
            ("NAME".to_string(), "x".to_string()),
        ]
    );
    assert!(web.clear_env);
    assert_eq!(web.restart, RestartPolicy::OnFailure);
    assert_eq!(
        web.backoff,
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 1.5,
            reset_after: Duration::from_secs(90),
        }
    );
    assert_eq!(web.stop_signal, Signal(libc::SIGINT));
    assert_eq!(web.stop_timeout, Duration::from_secs(3));
    assert_eq!(web.groups, ["front"]);
    assert!(!web.autostart);
    // Per-service log settings fall back to the supervisor's, key by key.
    assert_eq!(
        web.log,
        LogConfig {
            max_size: 1 << 20,
            keep: 9
        }
    );
    assert_eq!(web.forward_signals, Some(vec![]));
    let job = service(&config, "job");
    assert_eq!(job.command, ["sleep", "5"]);
    assert_eq!(job.restart, RestartPolicy::Never);
    assert_eq!(job.groups, ["batch", "night"]);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = TempDir::new("paths");
    std::fs::create_dir(dir.0.join("app")).unwrap();
    dir.write("app.env", "A=1\n");
    let path = dir.write(
        "s.toml",
        r#"
[supervisor]
log_dir = "run/logs"
socket = "run/s.sock"
[services.a]
command = ["x"]
workdir = "app"
env_file = "app.env"
"#,
    );
    let config = load(&path).unwrap();
    assert_eq!(config.supervisor.log_dir, Some(dir.0.join("run/logs")));
    assert_eq!(config.supervisor.socket, Some(dir.0.join("run/s.sock")));
    let a = service(&config, "a");
    assert_eq!(a.workdir, Some(dir.0.join("app")));
    assert_eq!(a.env, [("A".to_string(), "1".to_string())]);
    // Absolute paths stay as they are.
    assert!(config.supervisor.log_dir.unwrap().is_absolute());
}

#[test]
fn env_files_merge_in_order_and_the_table_wins() {
    let dir = TempDir::new("envmerge");
    dir.write(
        "one.env",
        "# first\nA=from-one\nB=from-one\nexport C='literal $x'\n",
    );
    dir.write("two.env", "B=\"from-two\\n\"\nD=from-two # note\n");
    let path = dir.write(
        "s.toml",
        r#"
[services.a]
command = ["x"]
env_file = ["one.env", "two.env"]
env = { D = "from-table", E = "e" }
"#,
    );
    let a = service(&load(&path).unwrap(), "a").clone();
    let pairs: Vec<(&str, &str)> = a
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("A", "from-one"),
            ("B", "from-two\n"),
            ("C", "literal $x"),
            ("D", "from-table"),
            ("E", "e"),
        ]
    );
}

#[test]
fn env_file_problems_name_the_file_line_and_key() {
    let dir = TempDir::new("envbad");
    dir.write("bad.env", "A=1\nnot a pair\n");
    let path = dir.write(
        "s.toml",
        "[services.web]\ncommand = [\"x\"]\nenv_file = [\"bad.env\", \"gone.env\"]\n",
    );
    let err = load(&path).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let (bad, gone) = (&err.problems[0], &err.problems[1]);
    assert_eq!(bad.key, "services.web.env_file[0]");
    assert_eq!((bad.line, bad.column), (Some(3), Some(13)));
    let bad_path = dir.0.join("bad.env");
    assert!(
        bad.message
            .starts_with(&format!("{}:2: expected KEY=value", bad_path.display())),
        "{}",
        bad.message
    );
    assert_eq!(gone.key, "services.web.env_file[1]");
    assert_eq!((gone.line, gone.column), (Some(3), Some(24)));
    assert!(gone.message.contains("gone.env") && gone.message.contains("No such file"));
    // The whole report, as `sentinel check` prints it.
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}:3:13: services.web.env_file[0]: {}:2:",
            path.display(),
            bad_path.display()
        )),
        "{text}"
    );
}

#[test]
fn workdir_must_exist_and_be_a_directory() {
    let dir = TempDir::new("workdir");
    dir.write("file", "");
    let path = dir.write(
        "s.toml",
        "[services.a]\ncommand = [\"x\"]\nworkdir = \"nope\"\n[services.b]\ncommand = [\"x\"]\nworkdir = \"file\"\n",
    );
    let err = load(&path).unwrap_err();
    assert_eq!(
        where_(&err.problems),
        [
            ("services.a.workdir", Some(3)),
            ("services.b.workdir", Some(6))
        ]
    );
    assert!(err.problems[0]
        .message
        .contains("No such file or directory"));
    assert!(err.problems[1].message.contains("is not a directory"));
}

#[test]
fn command_forms_and_mistakes() {
    let c = toml_ok("[services.a]\ncommand = \"sh -c 'echo \\\"hi\\\" | cat'\"\n");
    assert_eq!(service(&c, "a").command, ["sh", "-c", "echo \"hi\" | cat"]);

    let p = one_problem(
        "[services.a]\ncommand = []\n",
        "services.a.command",
        "empty command",
    );
    assert_eq!((p.line, p.column), (Some(2), Some(11)));
    one_problem(
        "[services.a]\ncommand = \"  \"\n",
        "services.a.command",
        "empty command",
    );
    one_problem(
        "[services.a]\ncommand = [\"\", \"x\"]\n",
        "services.a.command",
        "program",
    );
    let p = one_problem(
        "[services.a]\nrestart = \"never\"\n",
        "services.a",
        "missing key `command`",
    );
    assert_eq!((p.line, p.column), (Some(1), Some(11)));
    one_problem(
        "[services.a]\ncommand = \"echo 'x\"\n",
        "services.a.command",
        "unterminated single quote",
    );
    one_problem(
        "[services.a]\ncommand = \"ps | grep x\"\n",
        "services.a.command",
        "/bin/sh",
    );
    one_problem(
        "[services.a]\ncommand = [\"a\", 1.5]\n",
        "services.a.command[1]",
        "expected a string",
    );
    one_problem(
        "[services.a]\ncommand = 5\n",
        "services.a.command",
        "an array of strings",
    );
}

#[test]
fn backoff_rules() {
    let p = one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { factor = 0.5 }\n",
        "services.a.backoff.factor",
        "at least 1",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(22)));
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { factor = nan }\n",
        "services.a.backoff.factor",
        "at least 1",
    );
    toml_ok("[services.a]\ncommand = [\"x\"]\nbackoff = { factor = 1 }\n");
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { initial = \"2s\", max = \"1s\" }\n",
        "services.a.backoff.max",
        "max (1s) is shorter than initial (2s)",
    );
    // Against a default: the key that was written is the one named.
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { max = \"50ms\" }\n",
        "services.a.backoff.max",
        "max (50ms) is shorter than initial (100ms)",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { initial = \"1m\" }\n",
        "services.a.backoff.initial",
        "lower initial or set a larger max",
    );
    // A broken initial is reported once, not again as "max < initial".
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { initial = \"1x\", max = \"10ms\" }\n",
        "services.a.backoff.initial",
        "unknown unit",
    );
    let c =
        toml_ok("[services.a]\ncommand = [\"x\"]\nbackoff = { initial = \"0\", max = \"0s\" }\n");
    assert_eq!(service(&c, "a").backoff.initial, Duration::ZERO);
}

#[test]
fn log_rules() {
    one_problem(
        "[supervisor]\nlog = { keep = 1001 }\n[services.a]\ncommand = [\"x\"]\n",
        "supervisor.log.keep",
        "at most 1000",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nlog = { keep = 5000 }\n",
        "services.a.log.keep",
        "at most 1000",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nlog = { max_size = 0 }\n",
        "services.a.log.max_size",
        "0 bytes",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nlog = { keep = -1 }\n",
        "services.a.log.keep",
        "expected a whole number, 0 or more, found the integer -1",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nlog = { max_size = \"10 apples\" }\n",
        "services.a.log.max_size",
        "invalid size",
    );
}

#[test]
fn names_of_services_and_groups() {
    for good in ["web", "Web_2", "a.b-c", "0", "x..y"] {
        assert_eq!(build::check_name(good), Ok(()), "{good}");
    }
    for bad in ["", "@web", "a/b", "a b", "we@b", "-web", ".", "..", "é"] {
        assert!(build::check_name(bad).is_err(), "{bad}");
    }
    let p = one_problem(
        "[services.\"@web\"]\ncommand = [\"x\"]\n",
        "services.\"@web\"",
        "'@' is not allowed",
    );
    assert_eq!((p.line, p.column), (Some(1), Some(11)));
    one_problem(
        "[services.\"a/b\"]\ncommand = [\"x\"]\n",
        "services.\"a/b\"",
        "'/' is not allowed",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\ngroup = [\"ok\", \"b@d\"]\n",
        "services.a.group[1]",
        "invalid group name",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\ngroup = \"@all\"\n",
        "services.a.group",
        "invalid group name",
    );
}

#[test]
fn duplicate_service_names_are_refused() {
    let p = toml_err("[services.a]\ncommand = [\"x\"]\n[services.a]\ncommand = [\"y\"]\n");
    assert_eq!(p[0].line, Some(3), "{p:#?}");
    #[cfg(feature = "yaml")]
    {
        let p = from_str(
            "services:\n  a: {command: [x]}\n  a: {command: [y]}\n",
            true,
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(p[0].line, Some(3), "{p:#?}");
        assert!(p[0].message.contains("duplicate"), "{p:#?}");
    }
}

#[test]
fn signals() {
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nstop_signal = \"SIGFOO\"\n",
        "services.a.stop_signal",
        "unknown signal \"SIGFOO\"",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nstop_signal = 99\n",
        "services.a.stop_signal",
        "invalid signal number 99",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nforward_signals = [\"USR1\", \"KILL\"]\n",
        "services.a.forward_signals[1]",
        "SIGKILL cannot be caught",
    );
    one_problem(
        "[supervisor]\nforward_signals = [\"STOP\"]\n[services.a]\ncommand = [\"x\"]\n",
        "supervisor.forward_signals[0]",
        "SIGSTOP cannot be caught",
    );
    let c = toml_ok("[services.a]\ncommand = [\"x\"]\nstop_signal = \"SIGRTMIN+1\"\n");
    assert_eq!(service(&c, "a").stop_signal, Signal(libc::SIGRTMIN() + 1));
    assert_eq!(Signal::TERM.to_string(), "SIGTERM");
}

#[test]
fn types_and_enum_values() {
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nrestart = \"sometimes\"\n",
        "services.a.restart",
        "unknown value \"sometimes\"; expected one of: always, on-failure, never",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nautostart = \"yes\"\n",
        "services.a.autostart",
        "expected true or false, found the string \"yes\"",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nstop_timeout = -5\n",
        "services.a.stop_timeout",
        "expected a duration",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nenv = { A = [1] }\n",
        "services.a.env.A",
        "expected a string, found an array",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = \"fast\"\n",
        "services.a.backoff",
        "expected a table, found the string \"fast\"",
    );
    one_problem(
        "services = 5\n",
        "services",
        "expected a table, found the integer 5",
    );
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nstop_timeout = 1979-05-27\n",
        "services.a.stop_timeout",
        "sentinel has no use for a date or time here",
    );
    one_problem(
        "[supervisor]\nsocket_allow_uids = [\"root\"]\n[services.a]\ncommand = [\"x\"]\n",
        "supervisor.socket_allow_uids[0]",
        "expected a whole number",
    );
}

#[test]
fn unknown_keys_and_tables_not_supported_yet() {
    let p = one_problem(
        "[services.web]\ncomand = [\"x\"]\n",
        "services.web.comand",
        "unknown key; did you mean \"command\"?",
    );
    assert_eq!((p.line, p.column), (Some(2), Some(1)));
    one_problem(
        "[services.a]\ncommand = [\"x\"]\nbackoff = { intial = \"1s\" }\n",
        "services.a.backoff.intial",
        "did you mean \"initial\"?",
    );
    one_problem(
        "[supervisor]\nlogdir = \"x\"\n[services.a]\ncommand = [\"x\"]\n",
        "supervisor.logdir",
        "did you mean \"log_dir\"?",
    );
    let p = toml_err("[web]\nlisten = 1\n[services.a]\ncommand = [\"x\"]\n");
    assert_eq!(
        p[0].message,
        "unknown key; expected one of: version, supervisor, http, slices, services, hooks, secrets"
    );
}

#[test]
fn no_services() {
    let p = one_problem("", "services", "no services defined");
    assert!(p.message.contains("[services.hello]"), "{}", p.message);
    one_problem(
        "[supervisor]\necho_logs = true\n",
        "services",
        "no services defined",
    );
    one_problem("[services]\n", "services", "no services defined");
    #[cfg(feature = "yaml")]
    for text in ["", "services: {}\n", "supervisor:\n  echo_logs: true\n"] {
        let p = from_str(text, true, Path::new("/")).unwrap_err();
        assert_eq!(where_(&p), [("services", p[0].line)]);
        assert!(
            p[0].message.contains("services: {hello"),
            "{}",
            p[0].message
        );
    }
}

#[test]
fn socket_path_length() {
    let long = "s".repeat(120);
    one_problem(
        &format!("[supervisor]\nsocket = \"/{long}\"\n[services.a]\ncommand = [\"x\"]\n"),
        "supervisor.socket",
        "limited to 107",
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = r#"[supervisor]
shutdown_timeout = "soon"

[services.web]
comand = ["/srv/web"]
restart = "sometimes"
backoff = { initial = "1s", max = "2s", factor = 0.5, jitter = true }

[services.worker]
command = ["/srv/worker"]
stop_signal = "SIGNOPE"
log = { keep = 100000 }
group = "@batch"
"#;
    let problems = toml_err(text);
    assert_eq!(
        where_(&problems),
        [
            ("supervisor.shutdown_timeout", Some(2)),
            ("services.web.comand", Some(5)),
            ("services.web.restart", Some(6)),
            ("services.web.backoff.factor", Some(7)),
            ("services.web.backoff.jitter", Some(7)),
            ("services.worker.stop_signal", Some(11)),
            ("services.worker.log.keep", Some(12)),
            ("services.worker.group", Some(13)),
        ],
        "{problems:#?}"
    );
    let cols: Vec<Option<usize>> = problems.iter().map(|p| p.column).collect();
    assert_eq!(
        cols,
        [
            Some(20),
            Some(1),
            Some(11),
            Some(50),
            Some(55),
            Some(15),
            Some(16),
            Some(9)
        ]
    );
}

#[test]
fn syntax_errors_stop_before_the_model() {
    // Only the first syntax error: what follows it cannot be trusted.
    let p = toml_err("[services.a]\ncommand = [\"x\"\nrestart = 1\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(
        p[0].message,
        "invalid TOML: missing comma between array elements, expected `,`"
    );
    assert_eq!((p[0].line, p[0].column), (Some(3), Some(1)));
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_and_toml_give_the_same_config() {
    let toml = r#"
[supervisor]
shutdown_timeout = "10s"
forward_signals = ["HUP"]
[services.web]
command = "/srv/web --flag"
env = { PORT = 8080 }
restart = "on-failure"
backoff = { initial = "200ms", factor = 3 }
group = ["front"]
[services.job]
command = ["sleep", 5]
autostart = false
"#;
    let yaml = r#"
supervisor:
  shutdown_timeout: 10s
  forward_signals: [HUP]
services:
  web:
    command: /srv/web --flag
    env:
      PORT: 8080
    restart: on-failure
    backoff: {initial: 200ms, factor: 3}
    group: [front]
  job:
    command: [sleep, 5]
    autostart: false
"#;
    let from_yaml = from_str(yaml, true, Path::new("/base")).unwrap();
    assert_eq!(toml_ok(toml), from_yaml);
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_problems_have_lines_too() {
    let yaml = "services:\n  web:\n    comand: [x]\n  db:\n    command: [y]\n    restart: sometimes\n    backoff:\n      factor: 0.1\n";
    let p = from_str(yaml, true, Path::new("/")).unwrap_err();
    assert_eq!(
        where_(&p),
        [
            ("services.web.comand", Some(3)),
            ("services.db.restart", Some(6)),
            ("services.db.backoff.factor", Some(8)),
        ],
        "{p:#?}"
    );
    assert_eq!(p[0].column, Some(5));
    assert_eq!(p[0].message, "unknown key; did you mean \"command\"?");

    let p = from_str("services: [a, b]\n", true, Path::new("/")).unwrap_err();
    assert_eq!(where_(&p), [("services", Some(1))]);
    let p = from_str("- a\n- b\n", true, Path::new("/")).unwrap_err();
    assert!(p[0].message.contains("must be a table"), "{p:#?}");
}

#[cfg(not(feature = "yaml"))]
#[test]
fn yaml_left_out_says_so() {
    let p = from_str("services: {}\n", true, Path::new("/")).unwrap_err();
    assert!(p[0].message.contains("cargo feature `yaml`"), "{p:#?}");
}

#[test]
fn unreadable_file() {
    let err = load(Path::new("/nonexistent/sentinel.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err
        .to_string()
        .starts_with("/nonexistent/sentinel.toml: cannot read"));
}

#[test]
fn the_examples_load_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let toml = load(&dir.join("sentinel.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(toml.services.len(), 4);
    assert_eq!(toml.supervisor.log_dir, Some(dir.join("run/logs")));
    let greeter = service(&toml, "greeter");
    let env: Vec<(&str, &str)> = greeter
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("APP_NAME", "sentinel-demo"),
            ("GREETING", "Hello"),
            ("MOTTO", "no $expansion here"),
            ("COLOR", "green"),
            ("PORT", "8080"),
        ]
    );
    #[cfg(feature = "yaml")]
    {
        let yaml = load(&dir.join("sentinel.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(toml, yaml);
    }
}

mod isolation;
mod keys;
mod lifecycle;
mod oci;
mod scaling;
mod secrets;
mod version;
// ----- [http] (issue 5) ------------------------------------------------------

#[test]
fn http_defaults_and_values() {
    let c = toml_ok("[services.a]\ncommand = [\"x\"]\n");
    assert_eq!(c.http, None);
    let c = toml_ok("[http]\nlisten = \"127.0.0.1:9100\"\n[services.a]\ncommand = [\"x\"]\n");
    let h = c.http.unwrap();
    assert_eq!(h.listen, Some("127.0.0.1:9100".parse().unwrap()));
    assert!(!h.control && h.token.is_none() && !h.history);
    assert_eq!(h.max_connections, 256);
    assert_eq!(h.idle_timeout, Duration::from_secs(30));
    assert_eq!(h.request_timeout, Duration::from_secs(10));
    assert_eq!(h.metrics_file, None);
    let c = toml_ok(
        "[http]\nlisten = \"localhost:0\"\ncontrol = true\ntoken = \"0123456789abcdef\"\n\
         max_connections = 2000\nidle_timeout = \"2s\"\nmetrics_file = \"m.prom\"\n\
         metrics_interval = \"5s\"\n[services.a]\ncommand = [\"x\"]\n",
    );
    let h = c.http.unwrap();
    assert_eq!(h.listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(h.token.as_deref(), Some("0123456789abcdef"));
    assert_eq!(h.max_connections, 2000);
    assert_eq!(h.metrics_file, Some(PathBuf::from("/base/m.prom")));
    assert_eq!(h.metrics_interval, Duration::from_secs(5));
    let c = toml_ok("[http]\nlisten = \"[::1]:9100\"\n[services.a]\ncommand = [\"x\"]\n");
    assert!(c.http.unwrap().listen.unwrap().ip().is_loopback());
}

#[test]
fn http_refuses_public_addresses_and_control_without_a_token() {
    let svc = "[services.a]\ncommand = [\"x\"]\n";
    let p = one_problem(
        &format!("[http]\nlisten = \"0.0.0.0:9100\"\n{svc}"),
        "http.listen",
        "is not a loopback address",
    );
    assert!(p.message.contains("allow_public = true"), "{}", p.message);
    toml_ok(&format!(
        "[http]\nlisten = \"0.0.0.0:9100\"\nallow_public = true\n{svc}"
    ));
    one_problem(
        &format!("[http]\nlisten = \"web.example:80\"\n{svc}"),
        "http.listen",
        "not an IP address",
    );
    one_problem(
        &format!("[http]\nlisten = \"127.0.0.1\"\n{svc}"),
        "http.listen",
        "has no port",
    );
    one_problem(
        &format!("[http]\nlisten = \"127.0.0.1:9100\"\ncontrol = true\n{svc}"),
        "http.control",
        "needs a token",
    );
    one_problem(
        &format!("[http]\ncontrol = true\ntoken = \"short\"\n{svc}"),
        "http.token",
        "at least 16 characters",
    );
    one_problem(
        &format!("[http]\ntoken = \"0123456789abcdef\"\ntoken_file = \"t\"\n{svc}"),
        "http.token_file",
        "not both",
    );
    one_problem(
        &format!("[http]\ncontrol = true\ntoken_file = \"/no/such/token\"\n{svc}"),
        "http.token_file",
        "cannot read",
    );
    one_problem(
        &format!("[http]\nmax_connections = 0\n{svc}"),
        "http.max_connections",
        "out of range",
    );
    one_problem(
        &format!("[http]\nidle_timeout = \"10ms\"\n{svc}"),
        "http.idle_timeout",
        "too short",
    );
    one_problem(
        &format!("[http]\nlisten = \"127.0.0.1:9100\"\nport = 1\n{svc}"),
        "http.port",
        "unknown key",
    );
    let dir = TempDir::new("http-token");
    dir.write("token", "  0123456789abcdefXYZ\n");
    let cfg = dir.write(
        "s.toml",
        &format!("[http]\ncontrol = true\ntoken_file = \"token\"\n{svc}"),
    );
    let c = load(&cfg).unwrap();
    assert_eq!(
        c.http.unwrap().token.as_deref(),
        Some("0123456789abcdefXYZ")
    );
}
