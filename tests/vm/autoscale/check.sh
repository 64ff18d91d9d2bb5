#!/bin/sh
# Checks for tests/vm/autoscale (see sentinel.toml, README.md), then SIGTERM
# to PID 1. Instances are counted as processes by their command lines,
# which needs nothing from `sentinel status` (and no pgrep: Debian's
# busybox-static has none).
# shellcheck source=scripts/vm/guest/lib.sh
. /vm/lib.sh

# pids TEXT: the processes whose command line contains TEXT.
pids() {
    for _f in /proc/[0-9]*/cmdline; do
        case $(tr '\0' ' ' 2>/dev/null <"$_f") in
            *"$1"*) _p=${_f#/proc/} && echo "${_p%/cmdline}" ;;
        esac
    done
}
# count TEXT: how many.
count() { pids "$1" | wc -l; }
# is PATTERN N: exactly N of them.
is() { [ "$(count "$1")" = "$2" ]; }
# wait_until SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_until() {
    _n=$(($1 * 10))
    shift
    while [ "$_n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        _n=$((_n - 1))
    done
    return 1
}
# span PATTERN SECONDS: count every 0.5 s for SECONDS; the fewest and
# the most seen go to $lo and $hi.
span() {
    lo=999 hi=0 _n=$(($2 * 2))
    while [ "$_n" -gt 0 ]; do
        _c=$(count "$1")
        [ "$_c" -lt "$lo" ] && lo=$_c
        [ "$_c" -gt "$hi" ] && hi=$_c
        sleep 0.5
        _n=$((_n - 1))
    done
}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
status() { sentinel status "$1" 2>&1 | tr '\n' ' '; }

web="burn.sh /run/web-burn"
pol="scenario/idle.sh"
psi="scenario/crowd.sh"

for s in "$web" "$pol" "$psi"; do
    wait_until 20 is "$s" 1 || vm_report startup FAIL "$s: $(count "$s") instances, not 1: $(sentinel status 2>&1 | tr '\n' ' ')"
done

# --- cpu: 1 -> 3 under load within about for + cooldown (2 s + 4 s, plus
# the window filling and emulation slack), never past 3; back to 1 after.
touch /run/web-burn
t0=$(now)
if wait_until 30 is "$web" 3; then
    vm_report cpu-scale-up PASS "1 -> 3 in $(since "$t0") s (for 2s, cooldown 4s)"
else
    vm_report cpu-scale-up FAIL "$(count "$web") instances after $(since "$t0") s: $(status web)"
fi
span "$web" 10
if [ "$lo" = 3 ] && [ "$hi" = 3 ]; then
    vm_report cpu-never-above-max PASS "3 for 10 s under load"
else
    vm_report cpu-never-above-max FAIL "between $lo and $hi instances under load (max 3)"
fi
rm -f /run/web-burn
t0=$(now)
if wait_until 40 is "$web" 1; then
    vm_report cpu-scale-down PASS "3 -> 1 in $(since "$t0") s once idle"
else
    vm_report cpu-scale-down FAIL "$(count "$web") instances after $(since "$t0") s idle: $(status web)"
fi
span "$web" 8
if [ "$lo" = 1 ] && [ "$hi" = 1 ]; then
    vm_report cpu-never-below-min PASS "1 for 8 s idle"
else
    vm_report cpu-never-below-min FAIL "between $lo and $hi instances idle (min 1)"
fi

# --- policy: scales to what it prints, clamped to 1-4; garbage changes nothing.
input=/run/policy-input.json
if wait_until 10 test -s "$input" && grep -q '"service":"pol"' "$input" &&
    grep -q '"instances":1' "$input" && grep -q '"samples":\[' "$input"; then
    vm_report policy-input PASS "$(head -c 200 "$input")"
else
    vm_report policy-input FAIL "$(head -c 300 "$input" 2>&1)"
fi
# want N EXPECTED NAME: the policy prints N, the count becomes EXPECTED.
want() {
    echo "$1" >/run/policy-want
    _t0=$(now)
    if wait_until 15 is "$pol" "$2"; then
        vm_report "$3" PASS "prints $1: $2 instances in $(since "$_t0") s"
    else
        vm_report "$3" FAIL "prints $1: $(count "$pol") instances, not $2: $(status pol)"
    fi
}
want 3 3 policy-scales-up
want 2 2 policy-scales-down
want 9 4 policy-clamped-to-max
echo "four please" >/run/policy-want
span "$pol" 5
if [ "$lo" = 4 ] && [ "$hi" = 4 ]; then
    vm_report policy-garbage-no-change PASS "still 4 for 5 s"
else
    vm_report policy-garbage-no-change FAIL "between $lo and $hi instances after garbage: $(status pol)"
fi

# --- PSI: cpu_pressure of psi's group above 10% for 2 s: 1 -> 2.
touch /run/psi-burn
t0=$(now)
pid=$(pids "$psi" | head -n 1)
group=/sys/fs/cgroup$(dirname "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")")
avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' "$group/cpu.pressure"; }
if wait_until 30 is "$psi" 2; then
    vm_report psi-scale-up PASS "1 -> 2 in $(since "$t0") s; $group/cpu.pressure some avg10=$(avg10)"
else
    vm_report psi-scale-up FAIL "$(count "$psi") instances after $(since "$t0") s; avg10=$(avg10) in $group: $(status psi)"
fi
rm -f /run/psi-burn
sentinel stop psi >/dev/null 2>&1

vm_done
kill -TERM 1
