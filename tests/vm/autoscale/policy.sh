#!/bin/sh
# The policy of `pol`: keeps its input for check.sh to look at, and
# prints the count check.sh wrote to /run/policy-want (1 without one).
# Two words are not counts: with `fail` it prints 2 and exits 3 (a failed
# policy: its output must not count); with `hang` it would print 2 after
# `sleep 7`, far past its timeout (900ms): sentinel must kill its process
# group first (check.sh looks for the `sleep 7`).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
cat >/run/policy-input.tmp && mv /run/policy-input.tmp /run/policy-input.json
want=$(cat /run/policy-want 2>/dev/null || echo 1)
case $want in
    fail) echo 2 && exit 3 ;;
    hang) sleep 7 && echo 2 ;;
    *) echo "$want" ;;
esac
