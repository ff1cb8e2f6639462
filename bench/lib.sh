# Shared helpers for the bench scripts: sourced, not run.
# Everything listens on 127.0.0.1; every process started here is stopped by
# its PID when its step ends (and by the EXIT trap if the script dies).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/out}
BIN=${BIN:-$OUT/bin}
mkdir -p "$OUT" "$BIN"

# Ports (all loopback).
CLOAK_SIP=${CLOAK_SIP:-5160}
LOAD_SIP=${LOAD_SIP:-5170}
AGENT_SIP=${AGENT_SIP:-5190}
MON_SIP=${MON_SIP:-5195} # cloak-load's monitor UAS (relay.sh MONITORS=N)
NG_PORT=${NG_PORT:-2223}
FLOOR_BASE=${FLOOR_BASE:-10000}
# RTP port ranges stay below the kernel's ephemeral range (32768-60999 by
# default), where any socket bound to port 0 could take one of ours:
# floor 10000-14999, rtpengine 17000-23999, cloak 24000-29999 (CLOAK_RTP
# moves it, for a run beside another one).

STARTED_PIDS=()

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# PIN_TARGET and PIN_LOAD prefix the target's and the load generator's
# command lines: taskset -c TARGET_CPUS / LOAD_CPUS when set (taskset execs,
# so $! is still the program's pid), else nothing.
PIN_TARGET=()
PIN_LOAD=()
[[ -n ${TARGET_CPUS:-} ]] && PIN_TARGET=(taskset -c "$TARGET_CPUS")
[[ -n ${LOAD_CPUS:-} ]] && PIN_LOAD=(taskset -c "$LOAD_CPUS")

build() {
	log "building cloak, cloak-load and floor into $BIN"
	(cd "$ROOT" && go build -o "$BIN/cloak" ./cmd/cloak &&
		go build -o "$BIN/cloak-load" ./bench/cloak-load &&
		go build -o "$BIN/floor" ./bench/floor)
}

# wait_udp PORT: until something listens on 127.0.0.1:PORT/udp (10 s).
wait_udp() {
	for _ in $(seq 100); do
		if ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on udp port $1"
	return 1
}

# stop PID: SIGTERM, then SIGKILL after 15 s. Only PIDs this script started.
stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "pid $pid did not stop on SIGTERM; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${STARTED_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null && stop "$pid"
	done
	return 0
}
trap cleanup EXIT

# cloak_config FILE [EXTRA-YAML]: the bench's cloak configuration.
cloak_config() {
	local f=$1
	# Admission control (limits.*, docs/PERFORMANCE.md): the defaults
	# unless LIMITS is a YAML flow map, e.g. LIMITS='{max_cpu: 0.9,
	# max_lag: 80ms}' to try thresholds, or LIMITS='{max_cpu: 0, max_lag:
	# 0s, max_recorder_backlog: 0s}' for rounds that measure the relay
	# past the point where it would refuse calls.
	local limits=${LIMITS:-'{}'}
	# SRTP=1: both legs SRTP (SDES keys in the SDP, AES_CM_128_HMAC_SHA1_80
	# as cloak-load -srtp offers it). The keys travel over UDP SIP on the
	# loopback, which cloak allows only with srtp_over_plain_sip.
	local srtp=off
	[[ ${SRTP:-0} == 1 ]] && srtp=mandatory
	mkdir -p "$OUT/cloak-data"
	# QUEUE_AGENTS=N: the relay route goes through a queue of N static
	# agents (all at cloak-load's agent side) instead of dial:, so that
	# supervisors may monitor its calls (relay.sh MONITORS=M); the demo
	# flows are kept beside the one-step flow that queues.
	local relay="\"dial:sip:agent@127.0.0.1:$AGENT_SIP\"" queued=""
	if [[ -n ${QUEUE_AGENTS:-} ]]; then
		local flows="$OUT/flows" i
		rm -rf "$flows" && mkdir -p "$flows" && cp "$ROOT"/testdata/flows/*.yaml "$flows/"
		cat >"$flows/relayq.yaml" <<'FLOW'
name: relayq
kind: normal
description: Straight to the relayq queue (bench/relay.sh with QUEUE_AGENTS).
steps:
  - name: answer
    answer: {}
    next: to_queue
  - name: to_queue
    transfer:
      target: "queue:relayq"
      on_failure: hangup
  - name: hangup
    disconnect:
      reason: no agent
FLOW
		relay='"flow:relayq"'
		queued="flows: {dir: $flows}
queues:
  - {name: relayq, timeout: 30s, ring_timeout: 5s, dtmf: mask, supervisors: [bench]}
  - {name: sales, dtmf: mask}
  - {name: payments, dtmf: mask}
agents:"
		for ((i = 0; i < QUEUE_AGENTS; i++)); do
			queued+=$'\n'"  - {name: a$i, uri: \"sip:a$i@127.0.0.1:$AGENT_SIP\", queues: [relayq]}"
		done
	fi
	cat >"$f" <<YAML
sip: {listen: 127.0.0.1:$CLOAK_SIP, max_calls: 5000}
rtp: {ports: ${CLOAK_RTP:-24000-29999}, inactivity_timeout: 60s, io: ${RTP_IO:-poll}, workers: ${RTP_WORKERS:-0}, srtp: $srtp, srtp_over_plain_sip: $([[ $srtp == off ]] && echo false || echo true)}
data: {dir: $OUT/cloak-data}
log: {level: warn, format: json}
admin: {listen: "${ADMIN:-}", pprof: ${PPROF:-false}}
shutdown: {grace: 5s, mode: hangup}
limits: $limits
# The relay route records every call (stereo WAV, paused in secure mode),
# as a contact centre runs it; RECORD=never turns it off.
recording: {default: never, routes: {relay: ${RECORD:-always}}}
routes:
  relay: $relay
  echo: echo
  pay: "flow:pay"
$queued
YAML
}

# start_cloak: sets PID.
# pprof_step SCRIPT [TARGET] [N]: the start of bench/late.sh and
# bench/heap.sh, one relay step of cloak with /debug/pprof served on
# $ADMIN. Sets target (cloak or cloak-norec, default cloak) and n (calls,
# default 500) and the step's timing, and builds the binaries if needed.
pprof_step() {
	target=${2:-cloak} n=${3:-500}
	case $target in cloak | cloak-norec) ;; *)
		echo "$1: TARGET is cloak or cloak-norec" >&2
		exit 2
		;;
	esac
	export RATE=${RATE:-100} WARMUP=${WARMUP:-5s} WINDOW=${WINDOW:-15s}
	export ADMIN=127.0.0.1:${ADMIN_PORT:-18091} PPROF=true
	[[ -x $BIN/cloak && -x $BIN/cloak-load ]] || build
}

# pprof_during PATH FILE: the relay step pprof_step set up, with cloak's
# /debug/pprof/PATH fetched into FILE a few seconds into its measured
# window; fails when nothing was fetched (cloak stopped early?).
pprof_during() {
	local path=$1 file=$2 taker
	rm -f "$file"
	(sleep "$(window_in "$n")" && api_get "/debug/pprof/$path" -o "$file") &
	taker=$!
	"$ROOT/bench/relay.sh" "$target" "$n"
	wait "$taker"
}

# window_in N: seconds from bench/relay.sh's start to a few seconds into
# its measured window with N calls: relay.sh waits a second after starting
# the target, cloak-load ramps the calls up (N/RATE s) and warms up.
window_in() { echo $((1 + ($1 + RATE - 1) / RATE + ${WARMUP%s} + 3)); }

start_cloak() {
	rm -rf "$OUT/cloak-data" # each run starts empty; recordings are large
	cloak_config "$OUT/cloak.yaml"
	"${PIN_TARGET[@]}" "$BIN/cloak" serve -config "$OUT/cloak.yaml" >>"$OUT/cloak.log" 2>&1 &
	PID=$!
	STARTED_PIDS+=("$PID")
	wait_udp "$CLOAK_SIP"
	# The API wants a token (docs/SECURITY.md, "Users and roles"): one for
	# this run's scripts, made beside the running node like any admin's.
	CLOAK_TOKEN=
	if [[ -n ${ADMIN:-} ]]; then
		CLOAK_TOKEN=$("$BIN/cloak" tokens create -name "bench-$$" -role admin -config "$OUT/cloak.yaml" 2>>"$OUT/cloak.log") ||
			log "bench: no API token for cloak's admin API (see $OUT/cloak.log)"
	fi
	export CLOAK_TOKEN
	# For scripts that fetch from the API beside relay.sh (late.sh's trace,
	# heap.sh's profile): they run in the parent shell, which never sees
	# this export.
	(umask 077 && printf '%s' "$CLOAK_TOKEN" >"$OUT/cloak-token")
	wait_admitting
}

# wait_admitting: until the node started by start_cloak takes calls. Its
# own start (the first admin's password hash, migrations) and the token
# made beside it keep the machine busy for a moment; with the shipped
# limits that is a system_cpu sample over limits.max_system_cpu, and the
# node refuses calls for limits.hold after it (2 s): a round that began
# at once got 503 for its first ~250 calls. With ADMIN, ask /api/stats
# (at most 15 s); without, wait out one hold.
wait_admitting() {
	if [[ -z ${ADMIN:-} || -z ${CLOAK_TOKEN:-} ]]; then
		sleep 3
		return 0
	fi
	# Not refusing after two seconds of samples (a trip at the first of
	# them shows), or after 3 s when nothing is sampled (every limit off).
	local i st n
	for i in $(seq 150); do
		st=$(api_get /api/stats 2>/dev/null | tr -d ' \n') || st=
		n=0
		[[ $st =~ \"overload_samples\":([0-9]+) ]] && n=${BASH_REMATCH[1]}
		if [[ $st == *'"overload_state":0'* ]] && ((n >= 4 || i >= 30)); then
			return 0
		fi
		sleep 0.1
	done
	log "bench: cloak still refuses calls 15 s after its start (overload_state in /api/stats)"
}

# api_get PATH [CURL-ARGS...]: GET cloak's admin API with the run's token.
api_get() {
	local path=$1
	shift
	local tok=${CLOAK_TOKEN:-$(cat "$OUT/cloak-token" 2>/dev/null)}
	curl -fsS -H "Authorization: Bearer $tok" "$@" "http://$ADMIN$path"
}

# start_rtpengine: userspace only (--table=-1); sets PID.
start_rtpengine() {
	"${PIN_TARGET[@]}" rtpengine --foreground --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:$NG_PORT \
		--port-min=17000 --port-max=23999 --log-stderr --log-level=4 --delete-delay=0 \
		--pidfile="$OUT/rtpengine.pid" >>"$OUT/rtpengine.log" 2>&1 &
	PID=$!
	STARTED_PIDS+=("$PID")
	wait_udp "$NG_PORT"
}

# start_floor PAIRS [FLAGS]: sets PID.
start_floor() {
	local pairs=$1
	shift
	"${PIN_TARGET[@]}" "$BIN/floor" -base "$FLOOR_BASE" -pairs "$pairs" -duration 10m "$@" >>"$OUT/floor.log" 2>&1 &
	PID=$!
	STARTED_PIDS+=("$PID")
	wait_udp "$FLOOR_BASE"
}

# machine: a JSON object describing where the run happened.
machine_json() {
	printf '{"nproc": %s, "cpu": "%s", "mem_kib": %s, "kernel": "%s", "go": "%s", "loadavg_start": "%s", "rtpengine": "%s", "sipp": "%s"}\n' \
		"$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
		"$(awk '/MemTotal/ {print $2}' /proc/meminfo)" "$(uname -r)" "$(go version | awk '{print $3}')" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$(rtpengine --version 2>&1 | awk '{print $2}' | head -1)" \
		"$(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*' | head -1)"
}
