//! The references in docs/ keep up with the program:
//! - docs/cli.md has a section for every command `sentinel --help` lists
//!   (and the commands those list), naming each of its flags and arguments;
//! - docs/http.md names every route of src/http/routes.rs and every metric
//!   of src/metrics.rs;
//! - every config block marked `<!-- check -->` in docs/ passes
//!   `sentinel check`.
//!
//! (docs/config.md against the config model is checked inside the crate,
//! where the model is: src/config/tests/keys.rs.)

mod common;

use common::{TempDir, BIN};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ----- the CLI ---------------------------------------------------------------

/// What `--help` says about one command.
#[derive(Debug, Default)]
struct Help {
    /// Each option's names: `["-c", "--config"]`.
    flags: Vec<Vec<String>>,
    positionals: Vec<String>,
    commands: Vec<String>,
}

/// Parse argh's help: sections `Positional Arguments:`, `Options:`,
/// `Commands:`, each entry on a line indented by two spaces (longer
/// descriptions go on in lines indented further).
fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let Some(entry) = line.strip_prefix("  ") else {
            continue;
        };
        if entry.starts_with(' ') || entry.is_empty() {
            continue; // a description going on
        }
        // `-c, --config      config file`, `--remote-sentinel the ...`
        let mut words = entry.split_whitespace();
        let head = words.next().unwrap_or("").trim_end_matches(',');
        match section {
            "Options:" => {
                let names: Vec<String> = std::iter::once(head)
                    .chain(words.map(|w| w.trim_end_matches(',')))
                    .take_while(|w| w.starts_with('-'))
                    .filter(|n| *n != "--help")
                    .map(str::to_string)
                    .collect();
                if !names.is_empty() {
                    help.flags.push(names);
                }
            }
            "Positional Arguments:" => help.positionals.push(head.to_string()),
            "Commands:" => help.commands.push(head.to_string()),
            _ => {}
        }
    }
    help
}

fn help_of(cmd: &[String]) -> Help {
    let out = Command::new(BIN)
        .args(cmd)
        .arg("--help")
        .output()
        .expect("run sentinel --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Usage:"),
        "sentinel {} --help: {:?}\n{text}{}",
        cmd.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_help(&text)
}

/// Every command, depth first: `[]`, `["run"]`, ..., `["generate", "systemd"]`.
fn all_commands() -> Vec<(Vec<String>, Help)> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(cmd) = todo.pop() {
        let help = help_of(&cmd);
        for sub in help.commands.iter().rev() {
            let mut c = cmd.clone();
            c.push(sub.clone());
            todo.push(c);
        }
        out.push((cmd, help));
    }
    out
}

/// A section of a markdown page: a heading naming `` `sentinel CMD` `` and
/// the text up to the next heading.
struct Section {
    /// `["generate", "systemd"]`
    command: Vec<String>,
    text: String,
}

fn sections(doc: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut in_code = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            let command = line.split('`').nth(1).and_then(|c| {
                let mut words = c.split_whitespace();
                (words.next() == Some("sentinel"))
                    .then(|| words.map(str::to_string).collect::<Vec<_>>())
            });
            match command {
                Some(command) => out.push(Section {
                    command,
                    text: String::new(),
                }),
                None => out.push(Section {
                    command: vec!["\0not a command".to_string()],
                    text: String::new(),
                }),
            }
            continue;
        }
        if let Some(s) = out.last_mut() {
            s.text.push_str(line);
            s.text.push('\n');
        }
    }
    out.retain(|s| s.command.first().map(String::as_str) != Some("\0not a command"));
    out
}

/// Marks a section for a command that is not in every build yet.
const PENDING: &str = "<!-- pending";

/// What docs/cli.md lacks (or has too much of) against `commands`.
fn cli_report(doc: &str, commands: &[(Vec<String>, Help)]) -> String {
    let sections = sections(doc);
    let mut problems = Vec::new();
    for (cmd, help) in commands {
        let name = format!("sentinel {}", cmd.join(" "));
        let name = name.trim_end();
        let Some(section) = sections.iter().find(|s| s.command == *cmd) else {
            problems.push(format!(
                "no section for `{name}`: add a heading \"## `{name}`\" with its flags"
            ));
            continue;
        };
        for names in &help.flags {
            for n in names {
                if !section.text.contains(&format!("`{n}`")) {
                    problems.push(format!("`{name}`: flag `{n}` is not in its section"));
                }
            }
        }
        // (Subcommands have sections of their own.)
        for p in &help.positionals {
            if !section.text.contains(&format!("`{p}`")) {
                problems.push(format!("`{name}`: `{p}` is not in its section"));
            }
        }
    }
    for s in &sections {
        let known = commands.iter().any(|(c, _)| *c == s.command);
        if !known && !s.text.contains(PENDING) {
            problems.push(format!(
                "section for `sentinel {}`, which this sentinel does not have (renamed or \
                 removed? or mark it {PENDING}: ... -->)",
                s.command.join(" ")
            ));
        }
    }
    problems.join("\n")
}

#[test]
fn every_command_and_flag_is_in_docs_cli_md() {
    let commands = all_commands();
    // The parser works: the commands and flags we know of are found.
    assert!(commands.len() >= 16, "{commands:#?}");
    let exec = &commands.iter().find(|(c, _)| c == &["exec"]).unwrap().1;
    assert!(exec.flags.len() >= 25, "{exec:#?}");
    assert!(exec
        .flags
        .contains(&vec!["-u".to_string(), "--user".to_string()]));
    assert!(exec.flags.contains(&vec!["--oom-score-adjust".to_string()]));
    let top = &commands.iter().find(|(c, _)| c.is_empty()).unwrap().1;
    assert!(top
        .flags
        .contains(&vec!["-H".to_string(), "--hosts".to_string()]));

    let report = cli_report(&read("docs/cli.md"), &commands);
    assert!(
        report.is_empty(),
        "docs/cli.md is behind `sentinel --help`:\n{report}"
    );
}

#[test]
fn the_cli_check_names_what_is_missing() {
    let commands = all_commands();
    let doc = read("docs/cli.md")
        .replace("| `--rolling` |", "| rolling |")
        .replace("## `sentinel top`", "## top")
        + "\n## `sentinel frobnicate`\n\ntext\n";
    let report = cli_report(&doc, &commands);
    assert!(
        report.contains("`sentinel restart`: flag `--rolling` is not in its section"),
        "{report}"
    );
    assert!(report.contains("no section for `sentinel top`"), "{report}");
    assert!(
        report.contains("section for `sentinel frobnicate`"),
        "{report}"
    );
}

// ----- the HTTP API ----------------------------------------------------------

/// `GET /api/v1/services/NAME/logs` for each match arm of `Server::route`
/// that answers a method: `["api", "v1", "services", name, "logs"] if get =>`.
fn routes() -> Vec<String> {
    let src = read("src/http/routes.rs");
    let mut out = Vec::new();
    for line in src.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((pattern, guard)) = rest.split_once("] if ") else {
            continue;
        };
        let method = match guard.split_whitespace().next() {
            Some("get") => "GET",
            Some("post") => "POST",
            _ => continue,
        };
        let mut path = String::new();
        for seg in pattern.split(", ").filter(|s| !s.is_empty()) {
            path.push('/');
            let seg = seg.trim();
            if let Some(lit) = seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                path.push_str(lit);
            } else if let Some((_, alts)) = seg.split_once(" @ ") {
                // `verb @ ("start" | "stop" | "restart")`
                let alts: Vec<&str> = alts
                    .trim_matches(|c| c == '(' || c == ')')
                    .split(" | ")
                    .map(|a| a.trim_matches('"'))
                    .collect();
                path.push_str(&format!("{{{}}}", alts.join(",")));
            } else {
                path.push_str("NAME");
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        out.push(format!("{method} {path}"));
    }
    out
}

#[test]
fn every_route_is_in_docs_http_md() {
    let routes = routes();
    // The parser works: routes we know of are found.
    for r in [
        "GET /",
        "GET /metrics",
        "GET /api/v1/services/NAME/logs",
        "POST /api/v1/services/NAME/{start,stop,restart}",
    ] {
        assert!(routes.iter().any(|x| x == r), "{r} not in {routes:#?}");
    }
    let doc = read("docs/http.md");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| {
            let at = format!("`{r}");
            !doc.match_indices(&at)
                .any(|(i, _)| matches!(doc[i + at.len()..].chars().next(), Some('`' | '?' | '[')))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes of src/http/routes.rs missing from docs/http.md (add a row `METHOD PATH`): {missing:#?}"
    );
}

/// The metric names of src/metrics.rs (string literals `"sentinel_..."`).
fn metric_names(src: &str) -> BTreeSet<&str> {
    src.split('"')
        .filter(|s| {
            s.starts_with("sentinel_")
                && !s.ends_with('_')
                && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .collect()
}

#[test]
fn every_metric_is_in_docs_http_md() {
    let src = read("src/metrics.rs");
    let names = metric_names(&src);
    assert!(names.contains("sentinel_service_up"), "{names:#?}");
    assert!(names.len() >= 20, "{names:#?}");
    let doc = read("docs/http.md");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")) && !doc.contains(&format!("`{n}{{")))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics of src/metrics.rs missing from docs/http.md: {missing:#?}"
    );
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let src = read("src/metrics.rs");
    let known = metric_names(&src);
    let dashboard = read("docs/grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(json["panels"].as_array().is_some_and(|p| !p.is_empty()));
    let mut used = BTreeSet::new();
    for (i, _) in dashboard.match_indices("sentinel_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        used.insert(name);
    }
    assert!(used.contains("sentinel_service_up"), "{used:#?}");
    let unknown: Vec<&String> = used
        .iter()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/grafana-dashboard.json queries metrics src/metrics.rs does not have: {unknown:#?}"
    );
}

// ----- config examples in the docs -------------------------------------------

/// Every markdown file under docs/.
fn pages() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root().join("docs")];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `(language, text, line)` of each fenced block right after a
/// `<!-- check -->` line.
fn marked_blocks(doc: &str) -> Vec<(String, String, usize)> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "<!-- check -->" {
            let fence = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                fence.starts_with("```"),
                "line {}: <!-- check --> must be followed by a code block",
                i + 1
            );
            let lang = fence.trim_start_matches('`').split_whitespace().next();
            let mut text = String::new();
            let mut j = i + 2;
            while j < lines.len() && !lines[j].starts_with("```") {
                text.push_str(lines[j]);
                text.push('\n');
                j += 1;
            }
            out.push((lang.unwrap_or("").to_string(), text, i + 3));
            i = j;
        }
        i += 1;
    }
    out
}

#[test]
fn config_blocks_in_the_docs_pass_check() {
    let dir = TempDir::new("docs-check");
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        let doc = std::fs::read_to_string(&page).unwrap();
        for (lang, text, line) in marked_blocks(&doc) {
            let ext = match lang.as_str() {
                "toml" => "toml",
                "yaml" => "yaml",
                other => panic!(
                    "{}:{line}: <!-- check --> on a `{other}` block; use toml or yaml",
                    page.display()
                ),
            };
            let file = dir.write(&format!("block{checked}.{ext}"), &text);
            checked += 1;
            let out = Command::new(BIN)
                .args(["check", "-c"])
                .arg(&file)
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{}:{line}:\n{}{}",
                    page.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(checked >= 2, "no <!-- check --> blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
