#!/usr/bin/env bash
# cpu.sh [TARGET] [N]: where cloak's own CPU goes at N calls. One
# bench/relay.sh run (TARGET cloak or cloak-norec, default cloak; N calls,
# default 500) with cloak's pprof mounted and a 10 s Go CPU profile taken
# a few seconds into the measured window, then the functions with the most
# CPU, flat and cumulative (go tool pprof -top). The Go profile sees only
# cloak's process, system calls included as syscall frames; bench/run's
# PROFILE=1 perf profile sees the kernel's side too. Writes
# $OUT/cpu-TARGET-N.pb.gz and cpu-TARGET-N.txt.
source "$(dirname "$0")/lib.sh"

pprof_step cpu.sh "$@"
prof="$OUT/cpu-$target-$n.pb.gz"
pprof_during "profile?seconds=10" "$prof" || { log "cpu.sh: no CPU profile taken (cloak stopped early?)"; exit 1; }
{
	echo "CPU of $target with $n calls, $(date -u +%FT%TZ)"
	echo "--- flat"
	(cd "$ROOT" && go tool pprof -top -nodecount=30 "$BIN/cloak" "$prof" 2>/dev/null) | sed -n '/^Duration/p;/^ *flat/,$p'
	echo "--- cumulative"
	(cd "$ROOT" && go tool pprof -top -cum -nodecount=40 "$BIN/cloak" "$prof" 2>/dev/null) | sed -n '/^ *flat/,$p'
} | tee "$OUT/cpu-$target-$n.txt"
