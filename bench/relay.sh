#!/usr/bin/env bash
# relay.sh TARGET N: N bridged calls of G.711 both ways through TARGET,
# measured over a steady window. TARGET is one of
#   cloak           caller -> cloak (route "relay": dial the agent, gate, DTMF
#                   detection and masking, recording) -> cloak-load's agent side
#   cloak-norec     the same with recording off: what recording costs
#   rtpengine       rtpengine userspace (--table=-1), plain relay over ng
#   rtpengine-mask  the same with "block DTMF" and DTMF-security: silence
#   floor           bench/floor: read -> rewrite -> send, nothing else
#   floor-epoll     the same work on cloak's I/O model (rtp.io: poll):
#                   one epoll worker per CPU, sockets outside Go's netpoller
# The target is started fresh (so its memory baseline is clean) and
# stopped afterwards. Writes $OUT/relay-TARGET-N.json.
# MONITORS=M (target cloak): the relay goes through a queue of N static
# agents (QUEUE_AGENTS, lib.sh) and once the calls are up cloak-load
# starts M listening monitors through the admin API (on ADMIN, default
# 127.0.0.1:18092), cloak calling cloak-load's monitor sink for each;
# MONITORS=0 is the same queued relay without them (the baseline).
# Env: SRTP=1 (cloak targets) makes both legs SRTP with SDES keys (cloak
# rtp.srtp: mandatory, cloak-load -srtp) and writes relay-TARGET-srtp-N.json;
# SRTP_SUITE picks the suite (AES_CM_128_HMAC_SHA1_80; AEAD_AES_128_GCM
# writes relay-TARGET-srtp-gcm-N.json).
# RATE (calls/s, 100), WARMUP (5s), WINDOW (15s), PROFILE=1 records a
# perf profile of the target during the window, LATE=FILE has cloak-load
# log the window's late packets there (bench/late.sh; LATE_DIR=caller->agent
# or both for the other direction, LATE_OVER the threshold: caller->agent
# carries cloak's 40 ms delay line), STATS=FILE (cloak
# with ADMIN set) appends cloak's /api/stats to FILE once a second, one
# JSON line each, to read admission control's signals against the load.
# TARGET_CPUS and LOAD_CPUS (taskset -c lists, e.g. 0 and 1) pin the target
# and cloak-load to their own cores, so that the load generator's work
# (SRTP both ways with SRTP=1) does not share the target's caches and cores.
source "$(dirname "$0")/lib.sh"

target=$1 n=$2
RATE=${RATE:-100}
WARMUP=${WARMUP:-5s}
WINDOW=${WINDOW:-15s}
kind=relay
[[ ${PROFILE:-0} == 1 ]] && kind=profile # profiled runs are kept apart: perf costs the target CPU
name=$target
[[ ${SRTP:-0} == 1 ]] && name=$target-srtp
[[ ${SRTP:-0} == 1 && ${SRTP_SUITE:-} == AEAD_AES_128_GCM ]] && name=$target-srtp-gcm
json="$OUT/$kind-$name-$n.json"
common=(-calls "$n" -rate "$RATE" -warmup "$WARMUP" -window "$WINDOW" -duration 3m
	-digits 1234 -digits-at 2s -label "$name" -json "$json" -progress 5s)
[[ -n ${LATE:-} ]] && common+=(-late "$LATE" -late-dir "${LATE_DIR:-agent->caller}" -late-over "${LATE_OVER:-4ms}") # bench/late.sh: log late packets

case $target in
cloak | cloak-norec)
	[[ $target == cloak-norec ]] && export RECORD=never
	if [[ -n ${MONITORS:-} ]]; then
		export QUEUE_AGENTS=${QUEUE_AGENTS:-$n} ADMIN=${ADMIN:-127.0.0.1:18092}
		json="$OUT/$kind-$name-$n-mon$MONITORS.json"
		common=(-calls "$n" -rate "$RATE" -warmup "$WARMUP" -window "$WINDOW" -duration 3m
			-digits 1234 -digits-at 2s -label "$name-mon$MONITORS" -json "$json" -progress 5s)
	fi
	start_cloak
	# -delay-line: time the masked direction from the frame that releases
	# each frame from cloak's 40 ms masker delay line (dtmf.MaskerDelay).
	args=(-mode sip -target 127.0.0.1:$CLOAK_SIP -user relay -sip-local 127.0.0.1:$LOAD_SIP -agent 127.0.0.1:$AGENT_SIP -delay-line 40ms)
	if [[ -n ${MONITORS:-} && $MONITORS != 0 ]]; then
		args+=(-monitors "$MONITORS" -api "http://$ADMIN" -monitor-sip 127.0.0.1:$MON_SIP -supervisor bench)
	fi
	[[ ${SRTP:-0} == 1 ]] && args+=(-srtp -srtp-suite "${SRTP_SUITE:-AES_CM_128_HMAC_SHA1_80}")
	;;
rtpengine)
	start_rtpengine
	args=(-mode ng -ng 127.0.0.1:$NG_PORT)
	;;
rtpengine-mask)
	start_rtpengine
	args=(-mode ng -ng 127.0.0.1:$NG_PORT -dtmf-security silence)
	;;
floor)
	start_floor "$n"
	args=(-mode floor -floor 127.0.0.1:$FLOOR_BASE -floor-pairs "$n")
	;;
floor-epoll)
	start_floor "$n" -io epoll -workers "$(nproc)" # as cloak's default rtp.workers
	args=(-mode floor -floor 127.0.0.1:$FLOOR_BASE -floor-pairs "$n")
	;;
*)
	echo "relay.sh: unknown target $target" >&2
	exit 2
	;;
esac
sleep 1 # let the target settle before its baseline is read

perfpid=
if [[ ${PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
	# Start sampling once the calls should be up and warm: ramp + warmup.
	ramp=$(((n + RATE - 1) / RATE + ${WARMUP%s} + 1))
	(sleep "$ramp" && exec perf record -F 999 -g -p "$PID" -o "$OUT/perf-$target-$n.data" -- sleep 10) >"$OUT/perf-$target-$n.log" 2>&1 &
	perfpid=$!
fi

statspid=
if [[ -n ${STATS:-} && -n ${ADMIN:-} && $target == cloak* ]]; then
	# At most 10 minutes of samples; stopped with the load anyway. One
	# process with a kept-alive connection (bench/statspoll.py), not a
	# curl, tr, date and sleep every second beside the relay.
	python3 "$ROOT/bench/statspoll.py" "$ADMIN" "$OUT/cloak-token" "$STATS" 600 &
	statspid=$!
fi

log "relay: $target, $n calls"
"${PIN_LOAD[@]}" "$BIN/cloak-load" "${args[@]}" "${common[@]}" -pid "$PID" | tee "${json%.json}.txt"
[[ -n $perfpid ]] && wait "$perfpid" || true
[[ -n $statspid ]] && kill "$statspid" 2>/dev/null || true
stop "$PID"
