#!/usr/bin/env bash
# soak.sh [DURATION]: moderate churning load into cloak's relay route for
# DURATION (default 2m; the full soak is 30m): CALLS concurrent calls of
# HOLD each, replaced as they end, G.711 both ways, digits keyed in each.
# A 30 s warm-up round first sets cloak's working set; after each round the
# load tool hangs up, waits SETTLE and reads cloak's RSS and thread count.
# No leak means the soak ends where the warm-up ended. cloak's admin API
# (on 127.0.0.1:$ADMIN_PORT for this run) gives goroutines and heap in use
# after a GC before the first call, after the warm-up and after the soak.
# Writes $OUT/soak-warmup.json, $OUT/soak.json and $OUT/soak-stats.json.
# HEAP=1 also saves a heap profile (after the same GC) at each of the three
# points, $OUT/soak-heap-NAME.pb.gz, and prints what the soak added over
# the warm-up by allocation site (go tool pprof -base, inuse_objects).
source "$(dirname "$0")/lib.sh"

DURATION=${1:-2m}
CALLS=${CALLS:-200}
RATE=${RATE:-20}
HOLD=${HOLD:-15s}
# 40 s: longer than RFC 3261 Timer J (64*T1 = 32 s), for which the SIP stack
# keeps each call's last transactions; read sooner, the heap still holds
# the last half minute's messages (a 30-minute soak read at 15 s showed
# +7 % heap objects that were gone 20 s later: heap profile, sipgo's
# transactions).
SETTLE=${SETTLE:-40s}
ADMIN_PORT=${ADMIN_PORT:-18090}
export ADMIN=127.0.0.1:$ADMIN_PORT
HEAP=${HEAP:-0}
[[ $HEAP == 1 ]] && export PPROF=true

# stats NAME: cloak's /api/stats after a GC, as one JSON line.
stats() {
	local s
	s=$(api_get "/api/stats?gc=1") || {
		log "soak: no /api/stats from cloak"
		return 0
	}
	printf '{"at": "%s", "stats": %s}\n' "$1" "$(tr -d '\n' <<<"$s")" >>"$OUT/soak-stats.jsonl"
	if [[ $HEAP == 1 ]]; then
		api_get /debug/pprof/heap -o "$OUT/soak-heap-$1.pb.gz" ||
			log "soak: no heap profile from cloak"
	fi
}

start_cloak
sleep 1
rm -f "$OUT/soak-stats.jsonl"
stats before
args=(-mode sip -target 127.0.0.1:$CLOAK_SIP -user relay -sip-local 127.0.0.1:$LOAD_SIP -agent 127.0.0.1:$AGENT_SIP
	-calls "$CALLS" -rate "$RATE" -hold "$HOLD" -digits 1234 -digits-at 2s -settle "$SETTLE" -progress 15s -pid "$PID")
log "soak: warm-up round (30s)"
"$BIN/cloak-load" "${args[@]}" -duration 30s -label soak-warmup -json "$OUT/soak-warmup.json" | tee "$OUT/soak-warmup.txt"
stats after-warmup
log "soak: $DURATION"
"$BIN/cloak-load" "${args[@]}" -duration "$DURATION" -label soak -json "$OUT/soak.json" | tee "$OUT/soak.txt"
stats after-soak
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' \
	"$OUT/soak-stats.jsonl" >"$OUT/soak-stats.json"
stop "$PID"
if [[ $HEAP == 1 ]]; then
	log "soak: heap objects the soak added over the warm-up, by allocation site"
	(cd "$ROOT" && go tool pprof -sample_index=inuse_objects -top -base "$OUT/soak-heap-after-warmup.pb.gz" \
		"$BIN/cloak" "$OUT/soak-heap-after-soak.pb.gz" 2>/dev/null) | head -25 | tee "$OUT/soak-heap-diff.txt"
fi
