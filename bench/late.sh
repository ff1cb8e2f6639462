#!/usr/bin/env bash
# late.sh [TARGET] [N]: where a relay's latency tail comes from. One
# bench/relay.sh run (TARGET cloak or cloak-norec, default cloak; N calls,
# default 500) with cloak's pprof mounted, a 5 s Go runtime trace taken in
# the middle of the measured window, cloak-load's log of the window's late
# packets (-late, over 4 ms), and bench/tracelate's reading of the two:
# for the largest clusters of late packets, what the poll workers, the
# netpoll keeper and the recorder's writer were doing meanwhile.
# Writes $OUT/trace-TARGET-N.out, late-TARGET-N.tsv, late-TARGET-N.txt.
source "$(dirname "$0")/lib.sh"

pprof_step late.sh "$@"
export LATE="$OUT/late-$target-$n.tsv"
trace="$OUT/trace-$target-$n.out"
rm -f "$LATE"
pprof_during "trace?seconds=5" "$trace" || { log "late.sh: no trace taken (cloak stopped early?)"; exit 1; }
(cd "$ROOT" && go run ./bench/tracelate -trace "$trace" -late "$LATE") | tee "$OUT/late-$target-$n.txt"
