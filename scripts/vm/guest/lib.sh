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
