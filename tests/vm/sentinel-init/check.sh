#!/bin/sh
# Runs as a sentinel service with sentinel as PID 1: the rig's kernel checks
# from inside a service, then that PID 1 is sentinel, then an orderly
# shutdown (SIGTERM to PID 1: sentinel stops its services and powers off).
# shellcheck source=scripts/vm/guest/lib.sh
. /vm/lib.sh

vm_check_kernel /sys/fs/cgroup

comm=$(cat /proc/1/comm 2>&1)
case $comm in
    init | sentinel) vm_report pid1 PASS "/proc/1/comm: $comm" ;;
    *) vm_report pid1 FAIL "/proc/1/comm is '$comm', not init or sentinel" ;;
esac

vm_done
kill -TERM 1
