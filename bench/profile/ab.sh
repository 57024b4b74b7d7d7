#!/bin/bash
# bench/profile/ab.sh SCENARIO [ROUNDS] - two builds of khosim, interleaved on
# the same workload: kernel-a then kernel-b of each, /usr/bin/time wall, user,
# sys and max RSS (KiB). BASE and NEW are checkouts with dist/ built
# (e.g. `git archive <rev> | tar -x -C /tmp/base` plus node_modules links).
#   BASE=/tmp/base NEW=$PWD bench/profile/ab.sh isolated-1m 2
S=$1; R=${2:-2}; OUT=${TMPDIR:-/tmp}/khosim-ab
for r in $(seq 1 "$R"); do
  for v in base new; do
    if [ $v = base ]; then D=$BASE; else D=$NEW; fi
    rm -rf "$OUT-$v"
    a=$(/usr/bin/time -o "$OUT.time" -f "%e %U %S %M" node "$D/kernel-a/dist/main.js" --out "$OUT-$v" --scenario "$NEW/scenarios/$S.json" --log-format json >/dev/null 2>&1; tail -1 "$OUT.time")
    b=$(/usr/bin/time -o "$OUT.time" -f "%e %U %S %M" node "$D/kernel-b/dist/main.js" --in "$OUT-$v" --log-format json >/dev/null 2>&1; tail -1 "$OUT.time")
    echo "$S round $r $v: kernel-a wall/user/sys/maxKiB $a | kernel-b $b | load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
