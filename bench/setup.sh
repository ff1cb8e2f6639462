#!/usr/bin/env bash
# setup.sh: call setup with sipp's built-in UAC at increasing rates, until
# calls fail, into cloak's "echo" and "pay" routes and, as the ceiling of
# sipp itself on this machine, into sipp's own UAS. Each step places
# RATE x STEP_SECONDS calls of HOLD_MS each. Writes $OUT/setup.csv:
# target,rate,calls,successful,failed,achieved_rate (calls / (elapsed - hold):
# whether sipp kept the rate)
# Env: RATES ("100 200 300 500 700 1000 1500 2000 3000"), STEP_SECONDS (5), HOLD_MS (1000).
source "$(dirname "$0")/lib.sh"

RATES=${RATES:-"100 200 300 500 700 1000 1500 2000 3000"}
STEP_SECONDS=${STEP_SECONDS:-5}
HOLD_MS=${HOLD_MS:-1000}
UAS_PORT=5360
csv="$OUT/setup.csv"
echo "target,rate,calls,successful,failed,achieved_rate" >"$csv"

# step TARGET HOSTPORT USER RATE: one sipp UAC run; echoes "successful failed".
step() {
	local target=$1 hostport=$2 user=$3 rate=$4
	local calls=$((rate * STEP_SECONDS))
	local stat="$OUT/sipp-$target-$rate.csv"
	rm -f "$stat"
	(cd "$OUT" && timeout $((STEP_SECONDS * 4 + 30)) sipp -sn uac "$hostport" -s "$user" -i 127.0.0.1 -p 5260 \
		-r "$rate" -m "$calls" -l $((rate * 4)) -d "$HOLD_MS" -recv_timeout 5000 -timeout $((STEP_SECONDS * 4 + 20))s \
		-trace_stat -stf "$stat" -fd 1 -nostdin >"$OUT/sipp-$target-$rate.out" 2>&1) || true
	python3 - "$stat" "$target" "$rate" "$calls" "$HOLD_MS" >>"$csv" <<'PY'
import sys
path, target, rate, calls, hold_ms = sys.argv[1:]
try:
    rows = [l.rstrip("\n").split(";") for l in open(path) if l.strip()]
except OSError:
    print(f"{target},{rate},{calls},0,{calls},0"); sys.exit()
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
ok, failed = int(col("SuccessfulCall(C)")), int(col("FailedCall(C)"))
failed += max(0, int(calls) - ok - failed)  # never answered within the step
epoch = lambda name: float(col(name).split("\t")[-1])
elapsed = epoch("CurrentTime") - epoch("StartTime") - int(hold_ms) / 1000
achieved = int(col("TotalCallCreated")) / elapsed if elapsed > 0 else 0
print(f"{target},{rate},{calls},{ok},{failed},{achieved:.0f}")
PY
	tail -1 "$csv" | awk -F, '{print $4, $5}'
}

ladder() {
	local target=$1 hostport=$2 user=$3 rate res
	for rate in $RATES; do
		res=$(step "$target" "$hostport" "$user" "$rate")
		log "setup: $target at $rate calls/s: successful/failed $res"
		[[ ${res#* } == 0 ]] || break
		sleep 2
	done
}

start_cloak
ladder cloak-echo 127.0.0.1:$CLOAK_SIP echo
stop "$PID"
start_cloak
ladder cloak-pay 127.0.0.1:$CLOAK_SIP pay
stop "$PID"

(cd "$OUT" && exec sipp -sn uas -i 127.0.0.1 -p $UAS_PORT -nostdin >"$OUT/sipp-uas.out" 2>&1) &
UAS=$!
STARTED_PIDS+=("$UAS")
wait_udp $UAS_PORT
ladder sipp-uas 127.0.0.1:$UAS_PORT service
stop "$UAS"
cat "$csv"
