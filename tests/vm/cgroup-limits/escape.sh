#!/bin/sh
# The service `escape` (issue 8: no leftovers with cgroups). Its main
# process starts a child that leaves the service's process group and
# session (setsid) and double-forks: the grandchild, `escapee`, is
# orphaned to PID 1 in a session of its own, ignores SIGTERM, SIGHUP and
# SIGINT, and has a child of its own (`sleep 100037`). Neither a signal to
# the service's process group nor a sweep of its session reaches them;
# only the cgroup (cgroup.kill) does. Their pids go to /run/escapee.pids.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
case ${1:-main} in
    main)
        setsid /bin/sh /vm/scenario/escape.sh session &
        exec sleep 100000
        ;;
    session)
        # A session leader now: fork the escapee and leave it.
        /bin/sh /vm/scenario/escape.sh escapee &
        exit 0
        ;;
    escapee)
        trap '' TERM HUP INT
        sleep 100037 &
        echo "$$ $!" >/run/escapee.pids.tmp && mv /run/escapee.pids.tmp /run/escapee.pids
        while :; do wait; sleep 1; done
        ;;
esac
