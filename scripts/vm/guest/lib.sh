# Helpers for scenario scripts inside the VM (busybox sh). The rig copies
# this file to /vm/lib.sh in every initramfs; scripts use it with
#
#   . /vm/lib.sh
#
# Result lines go straight to /dev/console, so they reach the rig whatever
# sentinel does with a service's stdout. The protocol (see docs/vm-rig.md):
#
#   SENTINEL-CHECK <name> PASS|FAIL [detail]
#   SENTINEL-VM-DONE
# shellcheck shell=sh

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

# Where result lines go: the console, or stdout before /dev exists.
vm_out() {
    if [ -c /dev/console ] && [ -w /dev/console ]; then
        cat >/dev/console
    else
        cat
    fi
}

# vm_report NAME PASS|FAIL [DETAIL...]: print one result line.
vm_report() {
    _name=$1 _result=$2
    shift 2
    case $_result in
        PASS | FAIL) ;;
        *) _name="$_name-bad-result" _result=FAIL ;;
    esac
    # One token for the name, one line for the detail.
    _name=$(printf '%s' "$_name" | tr -c 'A-Za-z0-9._:/-' '-')
    _detail=$(printf '%s' "$*" | tr '\n' ' ')
    printf 'SENTINEL-CHECK %s %s%s\n' "$_name" "$_result" "${_detail:+ $_detail}" | vm_out
}

# vm_check NAME COMMAND [ARGS...]: run the command, PASS on exit 0, else
# FAIL with the exit status and the first line of its output as detail.
vm_check() {
    _name=$1
    shift
    if _out=$("$@" 2>&1); then
        vm_report "$_name" PASS
    else
        _status=$?
        _first=$(printf '%s\n' "$_out" | head -n 1)
        vm_report "$_name" FAIL "exit status $_status${_first:+: $_first}"
    fi
}

# vm_done: tell the rig the scenario ran to its end.
vm_done() {
    echo SENTINEL-VM-DONE | vm_out
}

# --- processes (Debian's busybox-static has no pgrep or pkill) ------------

# vm_find [-p PPID] COMM [TEXT]: the processes whose name (/proc/PID/comm,
# as `pgrep -x COMM`) is COMM and, with TEXT, whose command line (its
# arguments joined by spaces) contains TEXT (as `pgrep -f`); with -p, only
# the children of PPID. Sets vm_found (their pids, space-separated) and
# vm_nfound (how many). Zombies count: a process that has exited and not
# been reaped yet is still there. Only shell builtins, no fork, so it is
# quick under emulation even with hundreds of processes. The kernel cuts
# names at 15 characters: give COMM as /proc/PID/comm shows it.
vm_find() {
    _vf_ppid=
    if [ "$1" = -p ]; then
        _vf_ppid=$2
        shift 2
    fi
    _vf_comm=$1 _vf_text=${2:-}
    vm_found='' vm_nfound=0
    for _vf_dir in /proc/[0-9]*; do
        _vf_stat=
        { read -r _vf_stat <"$_vf_dir/stat"; } 2>/dev/null || continue
        # PID (COMM) STATE PPID ...; COMM may hold spaces and parentheses.
        _vf_name=${_vf_stat#*(}
        _vf_name=${_vf_name%)*}
        [ "$_vf_name" = "$_vf_comm" ] || continue
        if [ -n "$_vf_ppid" ]; then
            _vf_rest=${_vf_stat##*) }
            _vf_rest=${_vf_rest#* }
            [ "${_vf_rest%% *}" = "$_vf_ppid" ] || continue
        fi
        if [ -n "$_vf_text" ]; then
            # The arguments, NUL-terminated (busybox ash's read -d '').
            _vf_args=
            # shellcheck disable=SC3045
            { while IFS= read -r -d '' _vf_arg; do
                _vf_args="$_vf_args $_vf_arg"
            done <"$_vf_dir/cmdline"; } 2>/dev/null
            case "$_vf_args " in
                *"$_vf_text"*) ;;
                *) continue ;;
            esac
        fi
        vm_found="$vm_found${vm_found:+ }${_vf_dir#/proc/}"
        vm_nfound=$((vm_nfound + 1))
    done
}

# vm_pids [-p PPID] COMM [TEXT]: vm_find's pids, one a line.
vm_pids() {
    vm_find "$@"
    for _vp in $vm_found; do echo "$_vp"; done
}

# vm_count [-p PPID] COMM [TEXT]: how many processes vm_find finds.
vm_count() {
    vm_find "$@"
    echo "$vm_nfound"
}

# vm_stat PID FIELD: one field of /proc/PID/stat by its number in proc(5)
# (3 state, 4 ppid, 5 pgrp, 6 session); empty when the process is gone.
vm_stat() {
    _vs_stat=
    { read -r _vs_stat <"/proc/$1/stat"; } 2>/dev/null || return 0
    # shellcheck disable=SC2086 # split the fields after the name
    set -- "$2" ${_vs_stat##*) }
    _vs_n=$1
    shift $((_vs_n - 2))
    echo "$1"
}

# --- time (the emulated machine is slow: deadlines go by the clock) -------

# vm_clock: the time since boot in hundredths of a second, in $vm_now
# (from /proc/uptime, without a fork).
vm_clock() {
    read -r _vc_up _vc_idle </proc/uptime
    vm_now=${_vc_up%.*}${_vc_up#*.}
    while [ "${vm_now#0}" != "$vm_now" ] && [ "${#vm_now}" -gt 1 ]; do
        vm_now=${vm_now#0}
    done
}

# vm_since START: the seconds (one decimal) from START (a $vm_now) to now.
vm_since() {
    vm_clock
    _vs_d=$(((vm_now - $1) / 10))
    echo "$((_vs_d / 10)).$((_vs_d % 10))"
}

# vm_wait SECONDS COMMAND [ARGS...]: run COMMAND every 0.1 s until it
# succeeds (0) or SECONDS have passed by the clock (1; COMMAND ran at
# least once, and once more at the deadline).
vm_wait() {
    vm_clock
    _vw_end=$((vm_now + $1 * 100))
    shift
    while :; do
        "$@" && return 0
        vm_clock
        [ "$vm_now" -lt "$_vw_end" ] || break
        sleep 0.1
    done
    return 1
}

# vm_mount_basics: what a bare init needs (sentinel as PID 1 does this
# itself): /proc, /sys, /dev, /sys/fs/cgroup (cgroup2), /tmp, /run.
vm_mount_basics() {
    _mount_once proc proc /proc
    _mount_once sysfs sysfs /sys
    _mount_once devtmpfs devtmpfs /dev
    _mount_once cgroup2 cgroup2 /sys/fs/cgroup
    _mount_once tmpfs tmpfs /tmp
    _mount_once tmpfs tmpfs /run
}

_mount_once() {
    mkdir -p "$3"
    if ! grep -q " $3 " /proc/mounts 2>/dev/null; then
        mount -t "$1" "$2" "$3"
    fi
}

# --- the rig's kernel checks: what every scenario may rely on -------------

# Controllers the cgroup2 root must offer.
VM_CONTROLLERS="cpuset cpu io memory hugetlb pids"
# Controllers vm_check_kernel enables for the children of the root.
VM_ENABLE="memory pids cpu"

# vm_check_kernel [CGROUP_ROOT]: report the checks cgroup2-mounted,
# cgroup2-controllers, cgroup2-subtree-control and psi.
vm_check_kernel() {
    _cg=${1:-/sys/fs/cgroup}

    if grep -q "^[^ ]* $_cg cgroup2 " /proc/mounts; then
        vm_report cgroup2-mounted PASS "$_cg"
    else
        vm_report cgroup2-mounted FAIL "no cgroup2 at $_cg: $(grep " $_cg " /proc/mounts)"
    fi

    _have=$(cat "$_cg/cgroup.controllers" 2>&1)
    _missing=
    for _c in $VM_CONTROLLERS; do
        case " $_have " in
            *" $_c "*) ;;
            *) _missing="$_missing $_c" ;;
        esac
    done
    if [ -z "$_missing" ]; then
        vm_report cgroup2-controllers PASS "$_have"
    else
        vm_report cgroup2-controllers FAIL "missing:$_missing (have: $_have)"
    fi

    # Enable, read back, and see the files appear in a fresh child.
    _plus=
    for _c in $VM_ENABLE; do _plus="$_plus +$_c"; done
    # (echo's stderr is captured; its stdout goes to the file)
    # shellcheck disable=SC2116
    if ! _err=$(echo "${_plus# }" 2>&1 >"$_cg/cgroup.subtree_control"); then
        vm_report cgroup2-subtree-control FAIL "write '${_plus# }' to $_cg/cgroup.subtree_control: $_err"
    else
        _enabled=$(cat "$_cg/cgroup.subtree_control")
        _probe=$_cg/vm-rig-probe.$$
        _bad=
        mkdir "$_probe" || _bad="mkdir $_probe failed"
        for _c in $VM_ENABLE; do
            case " $_enabled " in
                *" $_c "*) ;;
                *) _bad="$_bad; $_c not in subtree_control ($_enabled)" ;;
            esac
            [ -e "$_probe/$_c.max" ] || _bad="$_bad; no $_probe/$_c.max"
        done
        rmdir "$_probe" 2>/dev/null
        if [ -z "$_bad" ]; then
            vm_report cgroup2-subtree-control PASS "$_enabled"
        else
            vm_report cgroup2-subtree-control FAIL "${_bad#; }"
        fi
    fi

    if _line=$(head -n 1 /proc/pressure/cpu 2>&1) && [ "${_line#some }" != "$_line" ]; then
        vm_report psi PASS "/proc/pressure/cpu: $_line"
    else
        vm_report psi FAIL "/proc/pressure/cpu: $_line (boot with psi=1?)"
    fi
}
