#!/bin/sh
# The policy of `pol`: keeps its input for check.sh to look at, and
# prints the count check.sh wrote to /run/policy-want (1 without one).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
cat >/run/policy-input.tmp && mv /run/policy-input.tmp /run/policy-input.json
cat /run/policy-want 2>/dev/null || echo 1
