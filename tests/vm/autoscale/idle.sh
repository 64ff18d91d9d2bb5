#!/bin/sh
# An instance of `pol`: does nothing (a shell, so that pgrep can count it).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
while :; do sleep 1000; done
