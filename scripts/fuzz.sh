#!/usr/bin/env bash
# fuzz.sh runs each of cloak's fuzz targets on the parsers that read wire or
# file input for a bounded time (FUZZTIME, default 15s each): the SDP offer
# parser, the SIP INFO body parser, the flow loader, the RFC 4733 decoder,
# REGISTER's digest check, the WAV reader, the RTCP parser, an SRTP leg's
# hot path and the SDES a=crypto parser. Seed corpora
# live in each package's testdata/fuzz/; a failure writes its input there, to be
# committed with the fix. Exits non-zero when any target fails.
set -uo pipefail
cd "$(dirname "$0")/.."

# 15 s a target in CI: the ten targets' runs are the third-longest step of
# scripts/test.sh (326 s at 30 s each, measured 2026-12-07, with go test's
# build and the engine's start-up around each), and CI must stay within
# its 40-minute budget. The committed seed corpora are replayed whatever
# the time; the saving is only in fresh mutations per run, which every CI
# run adds up. FUZZTIME=5m bash scripts/fuzz.sh for a longer local hunt.
fuzztime=${FUZZTIME:-15s}
targets=(
	"./sip FuzzParseOffer"
	"./dtmf FuzzParseInfo"
	"./dtmf FuzzDecoder"
	"./ivr FuzzParseFlow"
	"./sip FuzzRegisterCredentials"
	"./wav FuzzDecode"
	"./media FuzzParseRTCP"
	"./media FuzzHandleDatagramSRTP"
	"./sdes FuzzParseCrypto"
	"./sip FuzzParseOfferSRTP"
)

# fuzz_one PKG NAME: one bounded run. go test -fuzz sometimes ends a run
# that found nothing with "context deadline exceeded" when the time runs
# out while a worker is busy (seen on loaded 2-core machines); such a run
# wrote no failing input, so it is run once more. A run that found a
# failing input (written under testdata/fuzz) fails at once.
fuzz_one() {
	local pkg=$1 name=$2 out
	for attempt in 1 2; do
		out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1)
		local rc=$?
		echo "$out" | tail -4
		((rc == 0)) && return 0
		if grep -q "Failing input written" <<<"$out" || ! grep -q "context deadline exceeded" <<<"$out"; then
			echo "$out" | tail -40
			return 1
		fi
		echo "($name: the fuzz engine's deadline, no failing input; attempt $attempt)"
	done
	return 1
}

failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "--> $name ($pkg, $fuzztime)"
	if ! fuzz_one "$pkg" "$name"; then
		echo "FAIL $name"
		failed=1
	fi
done
exit $failed
