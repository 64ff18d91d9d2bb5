#!/bin/sh
# Checks for tests/vm/autoscale (see sentinel.toml, README.md), then SIGTERM
# to PID 1. Instances are counted as processes: the children of sentinel
# (PID 1) whose command line names the service's script, so the counts
# need nothing from `sentinel status`; the reasons of the decisions come
# from its `last_scale`.
# shellcheck source=scripts/vm/guest/lib.sh
. /vm/lib.sh

# count TEXT: instances running (children of PID 1 named sh whose command
# line contains TEXT; a child an instance forks has the instance as parent).
count() { vm_count -p 1 sh "$1"; }
# is TEXT N: exactly N of them (no fork).
is() {
    vm_find -p 1 sh "$1"
    [ "$vm_nfound" = "$2" ]
}
# span TEXT SECONDS: count every 0.2 s for SECONDS by the clock; the fewest
# and the most seen go to $lo and $hi, how many counts to $seen.
span() {
    lo=999 hi=0 seen=0
    vm_clock
    _end=$((vm_now + $2 * 100))
    while [ "$vm_now" -lt "$_end" ]; do
        vm_find -p 1 sh "$1"
        [ "$vm_nfound" -lt "$lo" ] && lo=$vm_nfound
        [ "$vm_nfound" -gt "$hi" ] && hi=$vm_nfound
        seen=$((seen + 1))
        sleep 0.2
        vm_clock
    done
}
# now: the clock (hundredths of a second since boot); since START: the
# seconds from START to now.
now() { vm_clock && echo "$vm_now"; }
since() { vm_since "$1"; }
# field SERVICE KEY: a string field of `sentinel status SERVICE --json`
# (of its first instance; one field a line, quotes inside left escaped).
field() {
    sentinel status "$1" --json 2>/dev/null |
        sed -n "s/^ *\"$2\": \"\(.*\)\"[,]*\$/\1/p" | head -n 1
}
# last_scale SERVICE: the last scaling decision and its reason.
last_scale() { field "$1" last_scale; }
# verdict SERVICE: the autoscaler's latest verdict (status `autoscale`).
verdict() { field "$1" autoscale; }
# says SERVICE TEXT: the verdict contains TEXT.
says() {
    case $(verdict "$1") in
        *"$2"*) return 0 ;;
        *) return 1 ;;
    esac
}

web="burn.sh /run/web-burn"
pol="scenario/idle.sh"
psi="scenario/crowd.sh"

for s in "$web" "$pol" "$psi"; do
    vm_wait 20 is "$s" 1 ||
        vm_report startup FAIL "$s: $(count "$s") instances, not 1: $(sentinel status 2>&1 | tr '\n' ' ')"
done

# --- cpu: 1 -> 3 under load, one step per `for` (2 s) + `cooldown` (2 s)
# plus a sample or two (interval 1 s): about 8 s; 20 s allows for the
# emulated machine. Never past 3; back to 1 once idle, never below.
is "$web" 1 || vm_report cpu-idle-before-load FAIL "$(count "$web") instances before the load: $(last_scale web)"
touch /run/web-burn
t0=$(now)
if vm_wait 20 is "$web" 3; then
    took=$(since "$t0")
    why=$(last_scale web)
    case $why in
        *"autoscale: cpu "*" > 0.40 for "*": 2 -> 3;"*)
            vm_report cpu-scale-up PASS "1 -> 3 in $took s (for 2s + cooldown 2s per step): $why" ;;
        *) vm_report cpu-scale-up FAIL "1 -> 3 in $took s, but the last decision is not the cpu rule's 2 -> 3: $why" ;;
    esac
else
    vm_report cpu-scale-up FAIL "$(count "$web") instances after $(since "$t0") s: $(last_scale web)"
fi
# Each instance in its own leaf of the service's group.
leaves=$(for p in $(vm_pids -p 1 sh "$web"); do sed -n 's/^0:://p' "/proc/$p/cgroup"; done | sort)
case $(printf '%s\n' "$leaves" | tr '\n' ' ') in
    "/sentinel/web/0 /sentinel/web/1 /sentinel/web/2 ") vm_report instance-leaves PASS "$(printf '%s' "$leaves" | tr '\n' ' ')" ;;
    *) vm_report instance-leaves FAIL "the instances' cgroups: $(printf '%s' "$leaves" | tr '\n' ' ')" ;;
esac
# The rule keeps asking for more (so a count past the range would show):
# the verdict says the maximum holds it.
span "$web" 5
vm_wait 5 says web "but 3 is the maximum"
why=$(verdict web)
if [ "$lo" = 3 ] && [ "$hi" = 3 ] && says web "but 3 is the maximum"; then
    vm_report cpu-never-above-max PASS "3 in all $seen counts over 5 s under load; status: $why"
else
    vm_report cpu-never-above-max FAIL "between $lo and $hi instances under load (max 3); status: $why; last: $(last_scale web)"
fi
# The load moves from web to psi: web must shrink back to 1 while psi's
# group is under CPU pressure (PSI; cpu_pressure above 10% for 2 s) and
# grows to 2. Both from the same moment, which saves a phase.
is "$psi" 1 || vm_report psi-idle-before-load FAIL "$(count "$psi") instances before its load: $(last_scale psi)"
rm -f /run/web-burn
touch /run/psi-burn
t0=$(now)
if vm_wait 20 is "$web" 1; then
    took=$(since "$t0")
    why=$(last_scale web)
    case $why in
        *"autoscale: cpu "*" < 0.15 for "*": 2 -> 1;"*)
            vm_report cpu-scale-down PASS "3 -> 1 in $took s once idle: $why" ;;
        *) vm_report cpu-scale-down FAIL "3 -> 1 in $took s, but the last decision is not the cpu rule's 2 -> 1: $why" ;;
    esac
else
    vm_report cpu-scale-down FAIL "$(count "$web") instances after $(since "$t0") s idle: $(last_scale web)"
fi
group=/sys/fs/cgroup/sentinel/psi
avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' "$group/cpu.pressure"; }
if vm_wait 20 is "$psi" 2; then
    took=$(since "$t0")
    why=$(last_scale psi)
    case $why in
        *"autoscale: cpu_pressure "*"% > 10.0% for "*": 1 -> 2;"*)
            vm_report psi-scale-up PASS "1 -> 2 within $took s; $group/cpu.pressure some avg10=$(avg10): $why" ;;
        *) vm_report psi-scale-up FAIL "1 -> 2 within $took s, but the last decision is not the cpu_pressure rule's: $why" ;;
    esac
else
    vm_report psi-scale-up FAIL "$(count "$psi") instances after $(since "$t0") s; avg10=$(avg10) in $group: $(last_scale psi)"
fi
span "$web" 5
vm_wait 5 says web "but 1 is the minimum"
why=$(verdict web)
if [ "$lo" = 1 ] && [ "$hi" = 1 ] && says web "but 1 is the minimum"; then
    vm_report cpu-never-below-min PASS "1 in all $seen counts over 5 s idle; status: $why"
else
    vm_report cpu-never-below-min FAIL "between $lo and $hi instances idle (min 1); status: $why; last: $(last_scale web)"
fi
rm -f /run/psi-burn
sentinel stop psi >/dev/null 2>&1

# --- policy: scales to what it prints, clamped to 1-4; a failure, a
# timeout or garbage changes nothing, and the next good answer counts.
input=/run/policy-input.json
if vm_wait 10 test -s "$input" && grep -q '"service":"pol","instances":1,"min":1,"max":4,' "$input" &&
    grep -q '"window_ms":3000,' "$input" && grep -q '"samples":\[{"age_ms":' "$input"; then
    vm_report policy-input PASS "$(head -c 160 "$input")..."
else
    vm_report policy-input FAIL "$(head -c 400 "$input" 2>&1)"
fi
# want ANSWER EXPECTED NAME REASON: the policy prints ANSWER; the count
# becomes EXPECTED and the last decision says REASON.
want() {
    echo "$1" >/run/policy-want
    _t0=$(now)
    if vm_wait 10 is "$pol" "$2"; then
        _why=$(last_scale pol)
        case $_why in
            *"autoscale: $4;"*) vm_report "$3" PASS "prints $1: $2 instances in $(since "$_t0") s: $_why" ;;
            *) vm_report "$3" FAIL "prints $1: $2 instances, but the last decision is not '$4': $_why" ;;
        esac
    else
        vm_report "$3" FAIL "prints $1: $(count "$pol") instances, not $2: $(last_scale pol)"
    fi
}
want 3 3 policy-scales-up "policy wants 3: 1 -> 3"
want 2 2 policy-scales-down "policy wants 2: 3 -> 2"
want 9 4 policy-clamped-to-max "policy wants 9, above the maximum 4: 2 -> 4"
# steady ANSWER NAME WHAT REPORT: the policy prints ANSWER (or fails);
# still 4 instances and the same last decision for 2 s (two evaluations),
# and `status` reports the problem (its verdict contains REPORT).
steady() {
    _before=$(last_scale pol)
    echo "$1" >/run/policy-want
    span "$pol" 2
    vm_wait 3 says pol "$4"
    _after=$(last_scale pol)
    _why=$(verdict pol)
    if [ "$lo" = 4 ] && [ "$hi" = 4 ] && [ "$_after" = "$_before" ] && says pol "$4"; then
        vm_report "$2" PASS "$3: 4 in all $seen counts over 2 s; status: $_why"
    else
        vm_report "$2" FAIL "$3: between $lo and $hi instances; status: $_why; last decision: $_after"
    fi
}
steady "four please" policy-garbage-no-change "prints 'four please'" 'printed \"four please\": not an instance count'
steady fail policy-failure-no-change "prints 2, exits 3" "exit 3"
steady hang policy-timeout-no-change "would print 2 after 7 s; timeout 900ms" "timed out"
# A killed policy leaves no job behind: the next answer counts within
# 5 s, sooner than the 7 s the hung one would take to answer 2, and no
# policy is left in its `sleep 7` (sentinel killed its process group).
echo 1 >/run/policy-want
t0=$(now)
if vm_wait 5 is "$pol" 1; then
    why=$(last_scale pol)
    case $why in
        *"autoscale: policy wants 1: 4 -> 1;"*) vm_report policy-after-timeout PASS "prints 1: 1 instance in $(since "$t0") s: $why" ;;
        *) vm_report policy-after-timeout FAIL "1 instance, but the last decision is not 'policy wants 1: 4 -> 1': $why" ;;
    esac
else
    vm_report policy-after-timeout FAIL "prints 1: $(count "$pol") instances after $(since "$t0") s, not 1: $(last_scale pol)"
fi
left=$(vm_count sleep 'sleep 7')
if [ "$left" = 0 ]; then
    vm_report policy-timeout-killed PASS "no policy left in its sleep 7"
else
    vm_report policy-timeout-killed FAIL "$left hung policy process(es) left in sleep 7"
fi

vm_done
kill -TERM 1
