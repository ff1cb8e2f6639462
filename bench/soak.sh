#!/usr/bin/env bash
# soak.sh [DURATION]: moderate churning load into cloak's relay route for
# DURATION (default 2m; the full soak is 30m): CALLS concurrent calls of
# HOLD each, replaced as they end, G.711 both ways, digits keyed in each.
# A 30 s warm-up round first sets cloak's working set; after each round the
# load tool hangs up, waits SETTLE and reads cloak's RSS and thread count.
# No leak means the soak ends where the warm-up ended. Writes
# $OUT/soak-warmup.json and $OUT/soak.json.
source "$(dirname "$0")/lib.sh"

DURATION=${1:-2m}
CALLS=${CALLS:-200}
RATE=${RATE:-20}
HOLD=${HOLD:-15s}
SETTLE=${SETTLE:-15s}

start_cloak
sleep 1
args=(-mode sip -target 127.0.0.1:$CLOAK_SIP -user relay -sip-local 127.0.0.1:$LOAD_SIP -agent 127.0.0.1:$AGENT_SIP
	-calls "$CALLS" -rate "$RATE" -hold "$HOLD" -digits 1234 -digits-at 2s -settle "$SETTLE" -progress 15s -pid "$PID")
log "soak: warm-up round (30s)"
"$BIN/cloak-load" "${args[@]}" -duration 30s -label soak-warmup -json "$OUT/soak-warmup.json" | tee "$OUT/soak-warmup.txt"
log "soak: $DURATION"
"$BIN/cloak-load" "${args[@]}" -duration "$DURATION" -label soak -json "$OUT/soak.json" | tee "$OUT/soak.txt"
stop "$PID"
