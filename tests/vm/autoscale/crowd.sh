#!/bin/sh
# An instance of `psi`: once /run/psi-burn exists, four spinners on the
# VM's two CPUs, so its tasks wait for a CPU (cpu.pressure "some").
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
while [ ! -e /run/psi-burn ]; do sleep 0.5; done
for _ in 1 2 3 4; do
    sh -c 'while :; do :; done' &
done
wait
