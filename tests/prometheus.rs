//! A real Prometheus server (Debian's `prometheus`) scrapes sentinel every
//! second on loopback; its query API shows a crashed service's
//! `sentinel_service_restarts_total` going up.

mod common;
mod httpc;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

struct Prometheus {
    child: Child,
    addr: std::net::SocketAddr,
    dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: sentinel\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        );
        let addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", httpc::free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, addr, dir }
    }

    /// An instant query's first value, if any.
    fn query(&mut self, q: &str) -> Option<f64> {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "prometheus exited ({status}):\n{}",
                read(&self.dir.path("prometheus.log"))
            );
        }
        let enc: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        // Not listening yet: no answer.
        std::net::TcpStream::connect(self.addr).ok()?;
        let r = httpc::get(self.addr, &format!("/api/v1/query?query={enc}"));
        if r.status != 200 {
            return None;
        }
        let v = r.json();
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

#[test]
fn prometheus_sees_restarts_total_increase_after_a_crash() {
    if !httpc::have_tool("prometheus") {
        return;
    }
    let (s, addr) = httpc::start(
        "prom",
        "",
        "[services.crash]\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"0s\" }\n",
    );
    let pid = s.wait_state("crash", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    let mut p = Prometheus::start(addr);
    let q = "sentinel_service_restarts_total{service=\"crash\"}";
    wait_for("Prometheus to scrape restarts_total = 0", SECS(90), || {
        (p.query(q) == Some(0.0)).then_some(())
    });
    assert_eq!(p.query("up{job=\"sentinel\"}"), Some(1.0));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("Prometheus to see restarts_total = 1", SECS(60), || {
        (p.query(q) == Some(1.0)).then_some(())
    });
    // Over the stored samples, the counter went up.
    wait_for("a positive increase()", SECS(30), || {
        p.query(&format!("increase({q}[5m])")).filter(|v| *v > 0.0)
    });
    s.wait_state("crash", "running", SECS(10));
}

#[test]
fn prometheus_sees_instances_their_total_and_scaling() {
    if !httpc::have_tool("prometheus") {
        return;
    }
    let (s, addr) = httpc::start(
        "promscale",
        "",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\ninstances = \"1-3\"\n\
         [services.db]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    s.wait_state("web@0", "running", SECS(10));
    let mut p = Prometheus::start(addr);
    wait_for("Prometheus to scrape 1 web instance", SECS(90), || {
        (p.query("sentinel_service_instances_running{service=\"web\"}") == Some(1.0)).then_some(())
    });
    s.ok(&["scale", "web", "3"]);
    for k in 0..3 {
        s.wait_state(&format!("web@{k}"), "running", SECS(10));
    }
    wait_for("Prometheus to see 3 running of 3", SECS(60), || {
        (p.query("sentinel_service_instances_running{service=\"web\"}") == Some(3.0)
            && p.query("sentinel_service_instances{service=\"web\"}") == Some(3.0))
        .then_some(())
    });
    // Every instance is a series of its own; together they are the total.
    assert_eq!(
        p.query("count(sentinel_service_up{service=~\"web@.*\"} == 1)"),
        Some(3.0)
    );
    assert_eq!(
        p.query("sentinel_scale_events_total{service=\"web\",direction=\"up\"}"),
        Some(1.0)
    );
    assert_eq!(p.query("sentinel_service_instances{service=\"db\"}"), None);
    assert_eq!(p.query("sentinel_hook_failures_total"), Some(0.0));
}

#[test]
fn the_grafana_dashboard_queries_are_valid_promql() {
    if !httpc::have_tool("promtool") {
        return;
    }
    let doc: serde_json::Value = serde_json::from_str(&read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    ))))
    .unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in doc["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*")
                .replace("$service", ".*");
            n += 1;
            rules.push_str(&format!(
                "      - record: dashboard:q{n}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
        }
    }
    assert!(n > 15);
    let dir = TempDir::new("promql");
    let file = dir.write("rules.yml", &rules);
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
