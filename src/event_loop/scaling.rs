//! The loop's side of issue 8: scaling a service's instances and reloading
//! the config. The decisions are the supervisor's (`Supervisor::scale`,
//! `Supervisor::reload`); this makes the units' fds and plans, opens the
//! `listen` sockets, and answers.

use std::time::Instant;

use super::{log, Runtime};
use crate::config::InstanceRange;
use crate::control::Response;

impl Runtime {
    /// Fds, log files and plans for units the supervisor just made.
    pub(super) fn add_units(&mut self, units: &[usize]) -> Result<(), String> {
        self.units_generation += 1;
        for &u in units {
            debug_assert_eq!(u, self.io.len(), "units are made in order");
            let io = self.make_io(u)?;
            self.io.push(io);
            self.seen.push(("stopped", None));
        }
        if !units.is_empty() {
            self.fix_prefixes();
        }
        Ok(())
    }

    /// `scale NAME N` / `scale NAME MIN-MAX` (and autoscale decisions).
    pub(super) fn scale(
        &mut self,
        service: &str,
        count: Option<u32>,
        range: Option<&str>,
        why: &str,
        now: Instant,
    ) -> Response {
        let range = match range.map(InstanceRange::parse).transpose() {
            Ok(r) => r,
            Err(e) => return Response::error(format!("scale {service}: {e}")),
        };
        if count.is_none() && range.is_none() {
            return Response::error(format!(
                "scale {service}: give a count (`scale {service} 3`) or a range (`scale {service} 2-6`)"
            ));
        }
        let o = match self.sup.scale(service, count, range, now) {
            Ok(o) => o,
            Err(e) => return Response::error(e),
        };
        if let Err(e) = self.add_units(&o.added_units) {
            // The units exist but cannot run: say so; they fail at spawn.
            log(&format!("scale {service}: {e}"));
            return Response::error(e);
        }
        self.execute(o.actions);
        let s = self.sup.spec_index(service).expect("scaled");
        let range = self.sup.specs[s]
            .range
            .expect("scaled services have a range");
        let msg = format!(
            "{service}: {} -> {} instances ({why}; range {range})",
            o.from, o.to
        );
        if o.from != o.to {
            log(&msg);
            self.last_scale.insert(service.to_string(), msg.clone());
            self.scaled(s, o.from, o.to, why, now);
        }
        Response::message(msg)
    }

    /// `reload` / SIGHUP: check the file, then apply the difference. A
    /// broken file changes nothing; every problem is in the answer.
    pub(super) fn reload(&mut self) -> Response {
        let path = self.opts.config_path.clone();
        let new = match crate::config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("reload: the config has errors; the running config stays\n{e}");
                log(&msg);
                return Response::error(msg);
            }
        };
        for w in &new.warnings {
            log(&format!("reload: warning: {}: {}", w.key, w.message));
        }
        // Listening sockets first: a port that cannot be had stops the reload.
        for (name, svc) in &new.services {
            if let Err(e) = self.open_listen(name, &svc.scaling.listen) {
                let msg = format!("reload: {e}; the running config stays");
                log(&msg);
                return Response::error(msg);
            }
        }
        let mut notes = Vec::new();
        if new.supervisor != self.config.supervisor {
            let mut what = Vec::new();
            let (a, b) = (&self.config.supervisor, &new.supervisor);
            if a.socket != b.socket {
                what.push("socket");
            }
            if a.cgroup_root != b.cgroup_root {
                what.push("cgroup_root");
            }
            if a.log_dir != b.log_dir {
                what.push("log_dir (applies to services as they restart)");
            }
            if a.echo_logs != b.echo_logs {
                what.push("echo_logs");
            }
            if a.socket_allow_uids != b.socket_allow_uids {
                self.allowed_uids = b.socket_allow_uids.clone();
            }
            if !what.is_empty() {
                notes.push(format!(
                    "[supervisor] {} cannot change while running; restart sentinel for it",
                    what.join(", ")
                ));
            }
        }
        if new.http != self.config.http {
            notes.push("[http] cannot change while running; restart sentinel for it".into());
        }
        self.secrets.set_sources(&new);
        let old_config = std::mem::replace(&mut self.config, new);
        let now = Instant::now();
        let o = self.sup.reload(&self.config, now);
        if let Err(e) = self.open_notify_socket() {
            notes.push(e);
        }
        let mut failed = Vec::new();
        if let Err(e) = self.add_units(&o.added_units) {
            failed.push(e);
        }
        for &u in &o.changed_units {
            if u < self.io.len() && !o.added_units.contains(&u) {
                if let Err(e) = self.refresh_io(u) {
                    failed.push(e);
                }
            }
        }
        // Sockets of removed services close once nothing uses them.
        let keep: Vec<String> = self
            .config
            .services
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        self.listen.retain(|name, _| keep.contains(name));
        let _ = old_config;
        self.hooks.set_hooks(self.config.hooks.clone());
        self.arm_services(now);
        self.execute(o.actions);
        self.fire(crate::hooks::HookEventData::new(
            crate::config::HookEvent::Reloaded,
            std::time::SystemTime::now(),
        ));
        let mut parts = Vec::new();
        if !o.added.is_empty() {
            parts.push(format!("added {}", o.added.join(", ")));
        }
        if !o.changed.is_empty() {
            parts.push(format!("restarted {}", o.changed.join(", ")));
        }
        if !o.removed.is_empty() {
            parts.push(format!("removed {}", o.removed.join(", ")));
        }
        parts.push(format!("{} unchanged", o.unchanged));
        let mut msg = format!("reloaded {}: {}", path.display(), parts.join("; "));
        for n in notes.iter().chain(failed.iter()) {
            msg.push_str("\n  ");
            msg.push_str(n);
        }
        log(&msg);
        if failed.is_empty() {
            Response::message(msg)
        } else {
            Response::error(msg)
        }
    }
}
