#!/bin/sh
# Runs as a sentinel service with sentinel as the kernel's PID 1: the rig's
# kernel checks from inside a service, PID 1 is sentinel, the orphans of
# another service are reaped, then an orderly shutdown (SIGTERM to PID 1).
# The `first` service prints SENTINEL-VM-DONE when shutdown reaches it.
# shellcheck source=scripts/vm/guest/lib.sh
. /vm/lib.sh

vm_check_kernel /sys/fs/cgroup

comm=$(cat /proc/1/comm 2>&1)
case $comm in
    init | sentinel) vm_report pid1 PASS "/proc/1/comm: $comm" ;;
    *) vm_report pid1 FAIL "/proc/1/comm is '$comm', not init or sentinel" ;;
esac

# zombies: how many processes are zombies (state Z in /proc/PID/stat),
# with shell builtins only (there are hundreds of processes at first).
zombies() {
    _z=0
    for _d in /proc/[0-9]*; do
        _s=
        { read -r _s <"$_d/stat"; } 2>/dev/null || continue
        _s=${_s##*) }
        [ "${_s%% *}" = Z ] && _z=$((_z + 1))
    done
    echo "$_z"
}
# orphans: the `sleep 0.2` of `orphans` still running (a zombie has no
# command line, so it is not one of these but one of the zombies).
orphans() { vm_count sleep 'sleep 0.2'; }

# Wait (up to 30 s) for the orphans to be spawned and then to be gone: no
# zombie and no `sleep 0.2` left. The count must find `orphans`' own
# `sleep 1000` (exactly one), or it would find nothing either way.
vm_wait 30 test -e /run/orphans-spawned
settled() {
    zombies=$(zombies)
    left=$(orphans)
    [ "$zombies" -eq 0 ] && [ "$left" -eq 0 ]
}
vm_wait 30 settled
own=$(vm_count sleep 'sleep 1000')
if [ -e /run/orphans-spawned ] && [ "$zombies" -eq 0 ] && [ "$left" -eq 0 ] && [ "$own" = 1 ]; then
    vm_report orphans-reaped PASS "200 orphans gone, no zombies, no sleep 0.2 left; orphans' own sleep 1000 found"
else
    vm_report orphans-reaped FAIL "spawned=$([ -e /run/orphans-spawned ] && echo yes || echo no) zombies=$zombies sleep-0.2-left=$left sleep-1000-found=$own"
fi

kill -TERM 1
