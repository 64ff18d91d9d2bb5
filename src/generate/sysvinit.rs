//! An LSB init script (`/etc/init.d/sentinel`) in POSIX sh: start, stop,
//! restart, try-restart, reload, force-reload, status, with the exit codes
//! of the LSB spec (status: 0 running, 1 dead with a pidfile left, 3 not
//! running; start: 5 not installed, 6 not configured; reload: 7 not running).
//!
//! sentinel does not daemonize itself: the script starts it in the
//! background with Debian's `start-stop-daemon` when there is one (it has
//! `--output`), else with plain sh (`setsid` when available), and writes the
//! pidfile itself. Start waits until sentinel's control socket answers;
//! stop sends SIGTERM (sentinel stops its services in order) and waits up
//! to `shutdown_timeout` plus a margin, then SIGKILL. The pid in the
//! pidfile counts only while `/proc` says it is a live process named like
//! the binary, so a stale pidfile never makes the script signal a stranger.

use super::{made_by, shell_path, Setup};

pub fn script(s: &Setup) -> String {
    let stop = s.stop_timeout().as_secs().max(1);
    let shutdown = super::duration(s.config.supervisor.shutdown_timeout);
    let head = format!(
        "\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          sentinel
# Required-Start:    $local_fs $remote_fs $network $syslog
# Required-Stop:     $local_fs $remote_fs $network $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: sentinel process supervisor
# Description:       Runs the services of {cfg_text} under sentinel.
### END INIT INFO
#
# {made}
# Install: --install, or copy to /etc/init.d/sentinel; then
#   update-rc.d sentinel defaults && service sentinel start
# Settings below can be changed in /etc/default/sentinel.

NAME=sentinel
DAEMON={bin}
CONFIG={cfg}
PIDFILE={pidfile}
# sentinel's own messages (its services' output goes to their log files).
LOGFILE={logfile}
# sentinel stops its services itself within shutdown_timeout ({shutdown});
# this adds a margin before SIGKILL.
STOP_TIMEOUT={stop}
START_TIMEOUT=30
# auto: start-stop-daemon when it is Debian's (it has --output), else plain sh.
USE_SSD=${{USE_SSD:-auto}}

",
        cfg_text = s.config_path.display(),
        made = made_by("sysvinit"),
        bin = shell_path(&s.bin),
        cfg = shell_path(&s.config_path),
        pidfile = shell_path(&s.pidfile),
        logfile = shell_path(&s.log_file),
    );
    head + BODY
}

const BODY: &str = r#"if [ -r "/etc/default/$NAME" ]; then
    . "/etc/default/$NAME"
fi

# The process name the kernel gives the binary (at most 15 characters).
COMM=$(printf '%.15s' "${DAEMON##*/}")

# Whether process $1 exists and is not a zombie.
alive() {
    if [ -r "/proc/$1/stat" ]; then
        state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$state" ] && [ "$state" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}

# Whether process $1 is sentinel (when /proc can tell).
ours() {
    if [ -r "/proc/$1/comm" ]; then
        [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$COMM" ]
    else
        return 0
    fi
}

# Sets $pid from the pidfile; true when that is a live sentinel.
running() {
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    case $pid in
        '' | *[!0-9]*) return 1 ;;
    esac
    alive "$pid" && ours "$pid"
}

use_ssd() {
    case $USE_SSD in
        yes) return 0 ;;
        no) return 1 ;;
    esac
    command -v start-stop-daemon >/dev/null 2>&1 &&
        start-stop-daemon --help 2>&1 | grep -q -e --output
}

do_start() {
    if running; then
        echo "$NAME is already running (pid $pid)"
        return 0
    fi
    if [ ! -x "$DAEMON" ]; then
        echo "$NAME: $DAEMON is not an executable file" >&2
        return 5
    fi
    if [ ! -r "$CONFIG" ]; then
        echo "$NAME: cannot read the config $CONFIG" >&2
        return 6
    fi
    # A broken config is refused here, where its errors are seen.
    "$DAEMON" check -c "$CONFIG" >/dev/null || return 6
    mkdir -p "${PIDFILE%/*}" "${LOGFILE%/*}" || return 1
    rm -f "$PIDFILE"
    if use_ssd; then
        start-stop-daemon --start --quiet --background --make-pidfile \
            --pidfile "$PIDFILE" --output "$LOGFILE" \
            --exec "$DAEMON" -- run -c "$CONFIG" || return 1
    else
        if command -v setsid >/dev/null 2>&1; then
            setsid "$DAEMON" run -c "$CONFIG" </dev/null >>"$LOGFILE" 2>&1 &
        else
            "$DAEMON" run -c "$CONFIG" </dev/null >>"$LOGFILE" 2>&1 &
        fi
        echo $! >"$PIDFILE"
    fi
    # Up: the process is sentinel and its control socket answers.
    waited=0
    while :; do
        pid=$(cat "$PIDFILE" 2>/dev/null)
        if [ -n "$pid" ] && ! alive "$pid"; then
            echo "$NAME exited at once; the end of $LOGFILE:" >&2
            tail -n 5 "$LOGFILE" >&2
            rm -f "$PIDFILE"
            return 1
        fi
        if running && "$DAEMON" status -c "$CONFIG" >/dev/null 2>&1; then
            echo "$NAME started (pid $pid)"
            return 0
        fi
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            echo "$NAME did not answer within ${START_TIMEOUT}s; see $LOGFILE" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

do_stop() {
    if ! running; then
        echo "$NAME is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    kill -TERM "$pid" || return 1
    waited=0
    while alive "$pid"; do
        if [ "$waited" -ge "$STOP_TIMEOUT" ]; then
            echo "$NAME (pid $pid) still runs after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
            rm -f "$PIDFILE"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
    echo "$NAME stopped"
}

do_reload() {
    if ! running; then
        echo "$NAME is not running" >&2
        return 7
    fi
    "$DAEMON" check -c "$CONFIG" >/dev/null || return 6
    # SIGHUP: sentinel reopens its log files and applies the config again.
    kill -HUP "$pid" && echo "$NAME reloaded (pid $pid)"
}

do_status() {
    if running; then
        echo "$NAME is running (pid $pid)"
        "$DAEMON" status -c "$CONFIG" 2>/dev/null
        return 0
    fi
    if [ -e "$PIDFILE" ]; then
        echo "$NAME is not running, but $PIDFILE is left"
        return 1
    fi
    echo "$NAME is not running"
    return 3
}

case $1 in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop && do_start ;;
    try-restart | condrestart)
        if running; then
            do_stop && do_start
        fi
        ;;
    reload | force-reload) do_reload ;;
    status) do_status ;;
    *)
        echo "Usage: $0 {start|stop|restart|try-restart|reload|force-reload|status}" >&2
        exit 2
        ;;
esac
"#;
