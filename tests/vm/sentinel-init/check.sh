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

# zombies: how many processes are zombies (state Z in /proc/PID/stat).
zombies() {
    n=0
    for s in /proc/[0-9]*/stat; do
        # shellcheck disable=SC2046
        set -- $(cat "$s" 2>/dev/null)
        [ "${3:-}" = Z ] && n=$((n + 1))
    done
    echo "$n"
}

# Wait (up to 30 s) for the orphans to be spawned and then to be gone:
# no zombie left and no orphaned sleep besides the service's own.
i=0
while [ ! -e /run/orphans-spawned ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
i=0
while [ $i -lt 300 ]; do
    zombies=$(zombies)
    sleeps=$(pgrep -x sleep | wc -l)
    # `orphans` itself runs `sleep 1000`; `first`/`second` may be in a short sleep.
    [ "$zombies" -eq 0 ] && [ "$sleeps" -le 3 ] && break
    sleep 0.1
    i=$((i + 1))
done
if [ -e /run/orphans-spawned ] && [ "$zombies" -eq 0 ] && [ "$sleeps" -le 3 ]; then
    vm_report orphans-reaped PASS "200 orphans gone, no zombies"
else
    vm_report orphans-reaped FAIL "spawned=$([ -e /run/orphans-spawned ] && echo yes || echo no) zombies=$zombies sleeps=$sleeps"
fi

kill -TERM 1
