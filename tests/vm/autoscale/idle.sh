#!/bin/sh
# An instance of `pol`: does nothing (a shell, so that check.sh can count
# it by its command line).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
while :; do sleep 1000; done
