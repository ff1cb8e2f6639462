#!/usr/bin/env bash
# heap.sh [TARGET] [N]: what cloak's memory per call is made of. One
# bench/relay.sh run (TARGET cloak or cloak-norec, default cloak; N calls,
# default 500) with cloak's pprof mounted and a heap profile taken after a
# forced GC a few seconds into the measured window, then the allocation
# sites holding the most memory (go tool pprof, inuse_space) and the heap
# in use per call. The profile samples one allocation per 512 KiB, so
# sites under a few hundred KiB are not resolved; divide by N for bytes
# per call. Writes $OUT/heap-TARGET-N.pb.gz and heap-TARGET-N.txt.
source "$(dirname "$0")/lib.sh"

pprof_step heap.sh "$@"
prof="$OUT/heap-$target-$n.pb.gz"
pprof_during "heap?gc=1" "$prof" || { log "heap.sh: no heap profile taken (cloak stopped early?)"; exit 1; }
{
	echo "heap of $target with $n calls, $(date -u +%FT%TZ)"
	(cd "$ROOT" && go tool pprof -sample_index=inuse_space -top "$BIN/cloak" "$prof" 2>/dev/null) |
		awk -v n="$n" '
			/^Showing nodes/ {
				print
				for (i = 1; i <= NF; i++) if ($i == "total") t = $(i - 1)
				kib = t + 0
				if (t ~ /MB$/) kib *= 1024
				if (t ~ /GB$/) kib *= 1024 * 1024
				next
			}
			/^ +flat/ || (/^ +[0-9.]+[kMG]?B/ && ++rows <= 25) { print }
			END { if (kib) printf "heap in use %s: %.1f KiB per call (prompts and other fixed costs included)\n", t, kib / n }'
} | tee "$OUT/heap-$target-$n.txt"
