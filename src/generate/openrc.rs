//! An OpenRC service script (`/etc/init.d/sentinel`, `#!/sbin/openrc-run`).
//!
//! OpenRC's own start/stop/status do the work: sentinel stays in the
//! foreground, so `command_background` (start-stop-daemon makes the pidfile),
//! and `retry` gives sentinel `shutdown_timeout` plus a margin to stop its
//! services before SIGKILL. `reload` sends SIGHUP after checking the config;
//! a restart checks it before stopping, so a typo cannot leave the host
//! without its services. (`supervisor=supervise-daemon` would make OpenRC
//! restart a crashed sentinel; it is left to the reader, as `reload` then
//! goes through `supervise-daemon --signal`.)

use super::{made_by, shell_path, Setup};

pub fn script(s: &Setup) -> String {
    let stop = s.stop_timeout().as_secs().max(1);
    let shutdown = super::duration(s.config.supervisor.shutdown_timeout);
    // The args go through `eval`: the config path is quoted for the shell.
    let args = format!("run -c {}", shell_path(&s.config_path));
    format!(
        r#"#!/sbin/openrc-run
# sentinel, supervising the services of {cfg_text}.
# {made}
# Install: --install, or copy to /etc/init.d/sentinel; then
#   rc-update add sentinel default && rc-service sentinel start

name="sentinel"
description="sentinel process supervisor ({cfg_text})"
command={bin}
cfgfile={cfg}
command_args="{args}"
command_background=true
pidfile={pidfile}
# sentinel's own messages (its services' output goes to their log files).
output_log={log}
error_log={log}
# SIGTERM: sentinel stops its services itself within shutdown_timeout
# ({shutdown}); then a margin, then SIGKILL.
retry="TERM/{stop}/KILL/5"
extra_started_commands="reload"

depend() {{
	need localmount
	after bootmisc net
	use logger
}}

checkconfig() {{
	"$command" check -c "$cfgfile" >/dev/null
}}

start_pre() {{
	# On restart, stop_pre has checked it already.
	if [ "${{RC_CMD}}" != "restart" ]; then
		checkconfig || return $?
	fi
}}

stop_pre() {{
	if [ "${{RC_CMD}}" = "restart" ]; then
		checkconfig || return $?
	fi
}}

reload() {{
	checkconfig || return $?
	ebegin "Reloading ${{RC_SVCNAME}} (SIGHUP: sentinel reopens its log files and applies the config)"
	start-stop-daemon --signal HUP --pidfile "${{pidfile}}"
	eend $?
}}
"#,
        cfg_text = s.config_path.display(),
        made = made_by("openrc"),
        bin = shell_path(&s.bin),
        cfg = shell_path(&s.config_path),
        pidfile = shell_path(&s.pidfile),
        log = shell_path(&s.log_file),
    )
}
