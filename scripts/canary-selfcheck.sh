#!/usr/bin/env bash
# canary-selfcheck.sh proves the leak canary can fail end to end: it runs
# e2e's TestLeakCanary with CLOAK_E2E_PLANT set, which writes the canary
# card into cloak's data directory before the search. The step passes only
# when that run fails AND reports the planted file as a LEAK; a canary
# that passes with a planted card, or fails for another reason only, fails
# the step. (TestLeakCanaryCatches proves each search form on its own.)
set -uo pipefail
cd "$(dirname "$0")/.."

out=$(CLOAK_E2E_PLANT=1 go test -count=1 -run '^TestLeakCanary$' ./e2e/ 2>&1)
rc=$?
if ((rc == 0)); then
	echo "$out" | tail -20
	echo "canary self-check: TestLeakCanary PASSED with a planted card: the canary cannot fail"
	exit 1
fi
if ! grep -q 'LEAK: .*captures/planted.log' <<<"$out"; then
	echo "$out" | tail -40
	echo "canary self-check: the run failed, but not by reporting the planted card"
	exit 1
fi
echo "canary self-check: the planted card was reported ($(grep -c 'LEAK: .*planted.log' <<<"$out") finding(s)); the canary can fail"
