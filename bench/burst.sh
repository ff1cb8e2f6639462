#!/usr/bin/env bash
# burst.sh [BASE] [BURST] [BURST_FOR]: how fast cloak recovers from an
# overload burst (issue 20: "latency back under 20 ms within 1 s").
#
# BASE bridged calls (default 300) run through cloak for the whole test,
# one cloak-load; 15 s into their measured window a second cloak-load
# adds BURST calls (default 900, on a second route and agent) for
# BURST_FOR (default 15s) and then hangs them all up. The base calls'
# late packets (one-way latency over 20 ms, agent->caller) are logged
# with their arrival time; the script prints when the burst's calls were
# hung up, the last late packet of the base calls after that, and the
# difference — the recovery time. Admission control is off (LIMITS) so
# that the burst really overloads the node; LIMITS='{}' tries the
# defaults, with which most of the burst is refused instead.
# Writes $OUT/burst-*.{txt,json,tsv}.
source "$(dirname "$0")/lib.sh"

base=${1:-300} burst=${2:-900} burst_for=${3:-15s}
export RATE=${RATE:-100}
LIMITS=${LIMITS:-'{max_cpu: 0, max_system_cpu: 0, max_lag: 0s, max_recorder_backlog: 0s}'}
AGENT2_SIP=${AGENT2_SIP:-5191}
LOAD2_SIP=${LOAD2_SIP:-5171}
[[ -x $BIN/cloak && -x $BIN/cloak-load ]] || build

late="$OUT/burst-late.tsv"
rm -f "$late" "$OUT/burst-base.json" "$OUT/burst-burst.json"
start_cloak
stop "$PID"
# The second route dials the burst's own agent side.
sed -i "s|^  relay: .*|&\n  relay2: \"dial:sip:agent@127.0.0.1:$AGENT2_SIP\"|" "$OUT/cloak.yaml"
rm -rf "$OUT/cloak-data"
"$BIN/cloak" serve -config "$OUT/cloak.yaml" >>"$OUT/cloak.log" 2>&1 &
PID=$!
STARTED_PIDS+=("$PID")
wait_udp "$CLOAK_SIP"
sleep 1

ramp=$(((base + RATE - 1) / RATE))
window=$((ramp + 5 + 15 + ${burst_for%s} + 15)) # the base window spans the burst and 15 s after it
log "burst: $base base calls through cloak, then $burst more for $burst_for"
"$BIN/cloak-load" -mode sip -target 127.0.0.1:$CLOAK_SIP -user relay -sip-local 127.0.0.1:$LOAD_SIP \
	-agent 127.0.0.1:$AGENT_SIP -delay-line 40ms -calls "$base" -rate "$RATE" -warmup 5s \
	-window "${window}s" -duration 5m -label burst-base -json "$OUT/burst-base.json" -progress 5s \
	-late "$late" -late-over 20ms -late-dir "agent->caller" -pid "$PID" >"$OUT/burst-base.txt" &
loadpid=$!
STARTED_PIDS+=("$loadpid")
sleep $((ramp + 5 + 15))
burst_start=$(date +%s.%N)
"$BIN/cloak-load" -mode sip -target 127.0.0.1:$CLOAK_SIP -user relay2 -sip-local 127.0.0.1:$LOAD2_SIP \
	-agent 127.0.0.1:$AGENT2_SIP -delay-line 40ms -calls "$burst" -rate 300 -warmup 0s \
	-window "$burst_for" -duration 2m -settle 0s -label burst -json "$OUT/burst-burst.json" \
	-progress 5s >"$OUT/burst-burst.txt" || log "the burst's cloak-load failed (see $OUT/burst-burst.txt)"
burst_end=$(date +%s.%N) # its calls are hung up by now (-settle 0s)
wait "$loadpid" || log "the base cloak-load failed (see $OUT/burst-base.txt)"
stop "$PID"

python3 - "$late" "$burst_start" "$burst_end" "$OUT/burst-base.json" "$OUT/burst-burst.json" <<'PY' | tee "$OUT/burst.txt"
# Recovery: from the burst's hang-up to the start of the first 500 ms in
# which no base packet was over 20 ms. The per-second counts around the
# burst are printed too, so a machine that is late anyway shows as such.
import json, sys
late, b0, b1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
base, burst = json.load(open(sys.argv[4])), json.load(open(sys.argv[5]))
times = []
for line in open(late):
    f = line.split("\t")
    if f[0].isdigit():
        times.append(int(f[0]) / 1e9)
times.sort()
before = sum(1 for t in times if b0 - 10 <= t < b0)
during = sum(1 for t in times if b0 <= t <= b1)
after5 = sum(1 for t in times if b1 < t <= b1 + 5)
print(f"burst: {burst['calls_up']} of {burst['calls']} burst calls up, {burst['calls_failed']} failed")
for d in base.get("directions") or []:
    lat = d.get("latency_ms", {})
    print(f"base {d['name']}: loss {d['loss_pct']:.3f} %, latency p50 {lat.get('p50')} p99 {lat.get('p99')} max {lat.get('max'):.1f} ms")
print(f"base agent->caller packets over 20 ms: {before / 10:.1f}/s in the 10 s before the burst, "
      f"{during / max(b1 - b0, 1e-9):.1f}/s during it, {after5 / 5:.1f}/s in the 5 s after it")
print("per second from 3 s before the hang-up:", " ".join(
    str(sum(1 for t in times if b1 + k <= t < b1 + k + 1)) for k in range(-3, 10)))
t, rec = b1, None
while t < b1 + 30:
    if not any(t <= x < t + 0.5 for x in times):
        rec = t - b1
        break
    t = min([x for x in times if x >= t] + [t + 0.05]) + 0.001
print("recovery: " + (f"{rec:.3f} s from the burst's hang-up to the first 500 ms with no base packet over 20 ms"
                      if rec is not None else "none within 30 s"))
PY
