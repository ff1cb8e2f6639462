#!/usr/bin/env bash
# ci-soak.sh [DURATION]: the soak's short version, as CI runs it (issue 7:
# a 2-minute soak in CI, the 30-minute one by flag): builds cloak and
# cloak-load, runs bench/soak.sh DURATION (default 2m, with 100 concurrent
# calls unless CALLS says otherwise), and fails unless bench/soakcheck.py
# passes it: no call lost, goroutines and heap back to where they were,
# RSS within its margin.
source "$(dirname "$0")/lib.sh"
export CALLS=${CALLS:-100} RATE=${RATE:-20}
# The soak looks for leaks, not admission control: a CI machine may run
# other jobs beside it, and the machine's CPU share (limits.max_system_cpu)
# would then refuse the soak's calls.
export LIMITS=${LIMITS:-'{max_system_cpu: 0}'}
build
"$ROOT/bench/soak.sh" "${1:-2m}"
python3 "$ROOT/bench/soakcheck.py" "$OUT"
