#!/bin/sh
# Checks for tests/vm/cgroup-limits (see sentinel.toml), then SIGTERM to PID 1.
# shellcheck source=scripts/vm/guest/lib.sh
. /vm/lib.sh

# field SERVICE KEY: a number from `sentinel status SERVICE --json`.
field() {
    sentinel status "$1" --json 2>/dev/null | sed -n "s/.*\"$2\": \\([0-9-]*\\).*/\\1/p" | head -n 1
}
# text SERVICE KEY: a string field.
text() {
    sentinel status "$1" --json 2>/dev/null | sed -n "s/.*\"$2\": \"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

running() { [ "$(text "$1" state)" = running ]; }
vm_wait 20 running bystander || vm_report startup FAIL "bystander not running: $(sentinel status 2>&1)"
bystander_pid=$(field bystander pid)

# --- memory_max: OOM-killed, counted once, restarted, others unharmed.
oom_counted() { [ "$(field oom oom_kills)" = 1 ]; }
if vm_wait 60 oom_counted; then
    vm_report oom-kill-counted PASS "oom_kills=1, last exit: $(text oom last_exit)"
else
    vm_report oom-kill-counted FAIL "oom_kills=$(field oom oom_kills) state=$(text oom state) last_exit=$(text oom last_exit) error=$(text oom last_error)"
fi
restarted() { [ "$(field oom restarts)" -ge 1 ] 2>/dev/null; }
if vm_wait 30 restarted; then
    vm_report oom-restarted PASS "restarts=$(field oom restarts)"
else
    vm_report oom-restarted FAIL "restarts=$(field oom restarts) state=$(text oom state)"
fi
if [ "$(field bystander pid)" = "$bystander_pid" ] && running bystander; then
    vm_report oom-bystander-unharmed PASS "pid $bystander_pid still running"
else
    vm_report oom-bystander-unharmed FAIL "bystander: $(sentinel status bystander 2>&1)"
fi

# --- pids_max: the fork bomb is contained, and stop leaves nothing.
bomb_cg=/sys/fs/cgroup$(text bomb cgroup | sed 's|^/sys/fs/cgroup||')
full() { [ "$(cat "$bomb_cg/pids.current" 2>/dev/null)" -ge 15 ] 2>/dev/null; }
vm_wait 30 full
pids=$(cat "$bomb_cg/pids.current" 2>/dev/null)
# The limit is on the service's group; the process sits in its leaf below.
max=$(cat "$bomb_cg/../pids.max" 2>/dev/null)
# The bomb's processes as /proc shows them (what the stop check counts).
bombs() { vm_count sentinel-probe --fork-bomb; }
seen=$(bombs)
if [ "$max" = 20 ] && [ "$pids" -le 20 ] 2>/dev/null && [ "$pids" -ge 15 ] && [ "$seen" -ge 15 ]; then
    vm_report forkbomb-contained PASS "pids.current=$pids pids.max=$max ($bomb_cg), $seen fork-bomb processes"
else
    vm_report forkbomb-contained FAIL "pids.current=$pids pids.max=$max ($bomb_cg), $seen fork-bomb processes"
fi
sentinel stop bomb >/dev/null
stopped() { [ "$(text bomb state)" = stopped ] && [ "$(cat "$bomb_cg/pids.current")" = 0 ]; }
if vm_wait 20 stopped && [ "$(bombs)" = 0 ]; then
    vm_report forkbomb-stop-leaves-nothing PASS "state stopped, pids.current=0, no fork-bomb process"
else
    vm_report forkbomb-stop-leaves-nothing FAIL "state=$(text bomb state) pids.current=$(cat "$bomb_cg/pids.current") left=$(bombs)"
fi

# --- no leftovers: `stop` kills what left the service's process group and
# session (setsid, then a double fork; escape.sh), through the cgroup.
vm_wait 20 test -s /run/escapee.pids
read -r escapee escapee_child </run/escapee.pids
main=$(field escape pid)
escape_cg=$(text escape cgroup | sed 's|^/sys/fs/cgroup||')
cg_of() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null; }
escapees() { echo "$(vm_count sh 'escape.sh escapee') $(vm_count sleep 'sleep 100037')"; }
# Where they are: their own session and group, orphaned to PID 1, in the
# service's cgroup; and /proc finds them by their command lines.
got="main $main: session $(vm_stat "$main" 6) group $(vm_stat "$main" 5);"
got="$got escapee $escapee: session $(vm_stat "$escapee" 6) group $(vm_stat "$escapee" 5) parent $(vm_stat "$escapee" 4) cgroup $(cg_of "$escapee");"
got="$got its child $escapee_child: parent $(vm_stat "$escapee_child" 4) cgroup $(cg_of "$escapee_child"); found $(escapees)"
if [ -n "$main" ] && [ -n "$(vm_stat "$escapee" 6)" ] &&
    [ "$(vm_stat "$escapee" 6)" != "$(vm_stat "$main" 6)" ] &&
    [ "$(vm_stat "$escapee" 5)" != "$(vm_stat "$main" 5)" ] &&
    [ "$(vm_stat "$escapee" 4)" = 1 ] && [ "$(vm_stat "$escapee_child" 4)" = "$escapee" ] &&
    [ "$(cg_of "$escapee")" = "$escape_cg" ] && [ "$(cg_of "$escapee_child")" = "$escape_cg" ] &&
    [ "$(escapees)" = "1 1" ]; then
    vm_report escape-left-session PASS "$got"
else
    vm_report escape-left-session FAIL "$got (service cgroup $escape_cg)"
fi
sentinel stop escape >/dev/null
# procs: what is left in the service's cgroup (nothing once it is removed).
procs() { tr '\n' ' ' 2>/dev/null <"/sys/fs/cgroup$escape_cg/cgroup.procs"; }
# gone PID: no such process, not even a zombie (sentinel, PID 1, reaps it).
gone() { [ -z "$(vm_stat "$1" 3)" ]; }
all_gone() {
    [ "$(text escape state)" = stopped ] && gone "$main" && gone "$escapee" &&
        gone "$escapee_child" && [ "$(escapees)" = "0 0" ] && [ -z "$(procs)" ]
}
if vm_wait 10 all_gone; then
    vm_report stop-kills-escaped-session PASS "state stopped; escapee $escapee and its child $escapee_child gone; nothing left in $escape_cg$([ -d "/sys/fs/cgroup$escape_cg" ] || echo ' (removed)')"
else
    vm_report stop-kills-escaped-session FAIL "state=$(text escape state); states: main '$(vm_stat "$main" 3)' escapee '$(vm_stat "$escapee" 3)' child '$(vm_stat "$escapee_child" 3)'; found by command line: $(escapees); in the cgroup: '$(procs)'"
fi

# --- cpu_max = 0.2: about 20% of one CPU over a 5 s window.
burn_cg=/sys/fs/cgroup$(text burn cgroup | sed 's|^/sys/fs/cgroup||')
usage() { sed -n 's/^usage_usec \([0-9]*\)/\1/p' "$burn_cg/cpu.stat"; }
u0=$(usage)
t0=$(cut -d' ' -f1 /proc/uptime)
sleep 5
u1=$(usage)
t1=$(cut -d' ' -f1 /proc/uptime)
pct=$(awk -v a="$u0" -v b="$u1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%d", (b - a) / ((e - s) * 1e6) * 100 + 0.5 }')
if [ "$pct" -ge 15 ] && [ "$pct" -le 25 ]; then
    vm_report cpu-max-20pct PASS "${pct}% of a CPU over $(awk -v s="$t0" -v e="$t1" 'BEGIN{print e-s}') s; cpu.max of the service group: $(cat "$burn_cg/../cpu.max")"
else
    vm_report cpu-max-20pct FAIL "${pct}% of a CPU; cpu.max of the service group: $(cat "$burn_cg/../cpu.max"), of the leaf: $(cat "$burn_cg/cpu.max")"
fi

# --- isolation from inside (the probe's report in the service's log).
report() { sentinel logs jail -n 100 2>/dev/null | grep -q '^try.socket:inet='; }
vm_wait 20 report
log=$(sentinel logs jail -n 100 2>/dev/null)
jail_cg=$(text jail cgroup | sed 's|^/sys/fs/cgroup||')
expect() {
    got=$(printf '%s\n' "$log" | sed -n "s|^$1=||p" | head -n 1)
    if [ "$got" = "$2" ]; then
        vm_report "probe-$1" PASS "$got"
    else
        vm_report "probe-$1" FAIL "got '$got', want '$2'"
    fi
}
expect uid 65534
expect gid 65534
expect groups 100
expect nice 7
expect ioprio 24576
expect cgroup "$jail_cg"
expect NoNewPrivs 1
expect Seccomp 2
expect CapEff 0000000000000400
expect CapBnd 0000000000000400
expect hostname jail
expect pid 1
expect interfaces lo
expect try.write:/etc EROFS
expect try.mkdir:/tmp/probe EACCES

vm_done
kill -TERM 1
