//! The dashboard in a real browser: headless Chromium driven through
//! chromedriver's WebDriver protocol (plain HTTP/JSON over a TcpStream).
//! It sees a killed service turn to "restarting" and back without a
//! reload, unlocks control with the token, clicks Restart, and leaves a
//! screenshot in target/test-artifacts/dashboard.png.

mod common;
mod httpc;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const TOKEN: &str = "dashboard-token-0123456789";

/// chromedriver, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call_raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked body, joined.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..nl]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 4 + size).min(b.len())..];
    }
    out
}

impl Driver {
    fn start() -> Driver {
        let port = httpc::free_port();
        let profile = TempDir::new("chromium-profile");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut d = Driver {
            child,
            port,
            session: String::new(),
            _profile: profile,
        };
        wait_for("chromedriver to be ready", SECS(30), || {
            d.call_raw("GET", "/status", None)
                .ok()
                .filter(|v| v["value"]["ready"] == true)
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", d._profile.0.display()),
                    "--window-size=1440,1100",
                ],
            },
        }}});
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        d
    }

    fn call_raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(SECS(60))).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        c.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver may keep the connection open: read by Content-Length.
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        let payload = loop {
            let n = c.read(&mut buf).map_err(|e| e.to_string())?;
            out.extend_from_slice(&buf[..n]);
            let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
                if n == 0 {
                    return Err("closed before the head".into());
                }
                continue;
            };
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let body = &out[end + 4..];
            let len = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            match len {
                Some(len) if body.len() >= len => break body[..len].to_vec(),
                None if head.contains("transfer-encoding: chunked")
                    && body.ends_with(b"0\r\n\r\n") =>
                {
                    break dechunk(body)
                }
                _ if n == 0 => break body.to_vec(),
                _ => {}
            }
        };
        serde_json::from_slice(&payload)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&payload)))
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.call_raw(method, path, body).unwrap();
        if v["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn cmd(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{rest}", self.session), body)
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Wait until `script` returns `want`.
    fn wait_js(&self, what: &str, script: &str, want: &str) {
        let mut last = Value::Null;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, SECS(30), || {
                last = self.js(script);
                let got = match &last {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                (got == want).then_some(())
            })
        }));
        if ok.is_err() {
            self.screenshot("dashboard-failure.png");
            panic!("timed out waiting for {what}: last {last}");
        }
    }

    fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64(v.as_str().unwrap());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = acc << 6 | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn state_js(name: &str) -> String {
    format!(
        "const e = document.querySelector('.card[data-service=\"{name}\"] .state'); \
         return e ? e.textContent : null;"
    )
}

#[test]
fn dashboard_shows_a_restart_live_and_restarts_with_the_token() {
    if !httpc::have_tool("chromedriver") || !httpc::have_tool("chromium") {
        return;
    }
    let (s, addr) = httpc::start(
        "dashboard",
        &format!("control = true\ntoken = \"{TOKEN}\""),
        r#"
[services.web]
command = ["sh", "-c", "echo web listening on :8080; exec sleep 1000"]
backoff = { initial = "3s" }
group = "front"
[services.worker]
command = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo job $i done; [ $((i % 7)) = 0 ] && echo job $i slow >&2; sleep 0.3; done"]
group = "back"
[services.cruncher]
command = ["sh", "-c", "while :; do :; done"]
group = "back"
[services.flaky]
command = ["sh", "-c", "echo starting; sleep 1; echo 'fatal: lost connection' >&2; exit 2"]
backoff = { initial = "1s", max = "1s" }
[services.cron]
command = ["sleep", "1000"]
autostart = false
"#,
    );
    let web_pid = s.wait_state("web", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    let d = Driver::start();
    d.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 1440, "height": 1100})),
    );
    d.cmd(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{addr}/")})),
    );
    d.wait_js("web to show running", &state_js("web"), "running");
    // A mark that a reload would wipe.
    d.js("window.__sentinelMark = 42; return null;");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.wait_js("web to show restarting", &state_js("web"), "restarting");
    assert_eq!(
        d.js("return window.__sentinelMark;"),
        42,
        "the page reloaded"
    );
    d.wait_js("web to run again", &state_js("web"), "running");
    let web_pid = s.wait_state("web", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    assert_eq!(
        d.js("return document.querySelector('.card[data-service=\"web\"] .fact:nth-child(3) .v').textContent;"),
        "1",
        "restarts"
    );

    // Buttons stay disabled until the token is given.
    assert_eq!(
        d.js("return document.querySelector('.card[data-service=\"web\"] button[data-verb=restart]').disabled;"),
        true
    );
    d.type_into("#token", TOKEN);
    d.click("#savetoken");
    d.wait_js(
        "the restart button to be enabled",
        "return !document.querySelector('.card[data-service=\"web\"] button[data-verb=restart]').disabled;",
        "true",
    );
    assert_eq!(
        d.js("return sessionStorage.getItem('sentinel-token');"),
        TOKEN
    );
    d.click(".card[data-service=\"web\"] button[data-verb=restart]");
    wait_for("web restarted by the button", SECS(15), || {
        let st = s.service("web");
        (st["state"] == "running" && st["pid"].as_i64() != Some(web_pid)).then_some(())
    });
    d.wait_js(
        "the toast",
        "return document.getElementById('toast').textContent;",
        "restarting: web",
    );
    assert_eq!(
        d.js("return window.__sentinelMark;"),
        42,
        "the page reloaded"
    );

    // Show the worker's logs, and let the sparklines gather a few points.
    d.click(".card[data-service=\"worker\"] button.logs");
    d.wait_js(
        "worker's log lines",
        "return document.querySelectorAll('#log div').length > 3;",
        "true",
    );
    d.wait_js(
        "sparklines with points",
        "const p = document.querySelector('.card[data-service=\"cruncher\"] polyline'); \
         return !!p && p.getAttribute('points').split(' ').length >= 4;",
        "true",
    );
    d.wait_js("web to run", &state_js("web"), "running");
    let path = d.screenshot("dashboard.png");
    eprintln!("screenshot: {}", path.display());
}

#[test]
fn dashboard_groups_instances_and_scales_with_the_token() {
    if !httpc::have_tool("chromedriver") || !httpc::have_tool("chromium") {
        return;
    }
    let (s, addr) = httpc::start(
        "dashscale",
        &format!("control = true\ntoken = \"{TOKEN}\""),
        r#"
[services.web]
command = ["sleep", "1000"]
instances = "1-3"
stop_timeout = "5s"
[services.db]
command = ["sleep", "1000"]
"#,
    );
    s.wait_state("web@0", "running", SECS(10));
    let d = Driver::start();
    d.cmd(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{addr}/")})),
    );
    let group = ".group[data-group=\"web\"]";
    d.wait_js(
        "web@0 inside web's group",
        &format!(
            "return !!document.querySelector('{group} .card[data-service=\"web@0\"]') \
             && !document.querySelector('{group} .card[data-service=\"db\"]');"
        ),
        "true",
    );
    d.wait_js(
        "the group's total",
        &format!(
            "const g = document.querySelector('{group}'); \
             return g.querySelector('.count').textContent + ' ' + g.querySelector('.range').textContent;"
        ),
        "1/1 running (range 1-3)",
    );
    let scale_hidden = format!("return document.querySelector('{group} .scale').hidden;");
    assert_eq!(
        d.js(&scale_hidden),
        true,
        "no scale control without the token"
    );

    d.type_into("#token", TOKEN);
    d.click("#savetoken");
    d.wait_js("the scale control", &scale_hidden, "false");
    d.js(&format!(
        "const n = document.querySelector('{group} .scale input'); n.value = '3'; return null;"
    ));
    d.click(&format!("{group} .scale button"));
    for k in 0..3 {
        s.wait_state(&format!("web@{k}"), "running", SECS(10));
    }
    d.wait_js(
        "three instances, in order, in the group",
        &format!(
            "return [...document.querySelectorAll('{group} .card')].map((c) => c.dataset.service).join(' ');"
        ),
        "web@0 web@1 web@2",
    );
    d.wait_js(
        "the new total",
        &format!("return document.querySelector('{group} .count').textContent;"),
        "3/3 running",
    );
    d.wait_js(
        "the scaling decision",
        &format!(
            "return document.querySelector('{group} > .why').textContent.includes('1 -> 3 instances');"
        ),
        "true",
    );
    let path = d.screenshot("dashboard-instances.png");
    eprintln!("screenshot: {}", path.display());

    // Scaled down by someone else: the page drops the instances that go.
    s.ok(&["scale", "web", "1"]);
    d.wait_js(
        "web@1 and web@2 to leave the page",
        &format!(
            "return [...document.querySelectorAll('{group} .card')].map((c) => c.dataset.service).join(' ');"
        ),
        "web@0",
    );
    d.wait_js(
        "the total after scaling down",
        &format!("return document.querySelector('{group} .count').textContent;"),
        "1/1 running",
    );
}
