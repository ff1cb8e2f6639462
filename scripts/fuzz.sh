#!/usr/bin/env bash
# fuzz.sh runs each of cloak's fuzz targets on the parsers that read wire or
# file input for a bounded time (FUZZTIME, default 30s each): the SDP offer
# parser, the SIP INFO body parser, the flow loader, the RFC 4733 decoder,
# REGISTER's digest check and the WAV reader. Seed corpora live in each
# package's testdata/fuzz/; a failure writes its input there, to be
# committed with the fix. Exits non-zero when any target fails.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-30s}
targets=(
	"./sip FuzzParseOffer"
	"./dtmf FuzzParseInfo"
	"./dtmf FuzzDecoder"
	"./ivr FuzzParseFlow"
	"./sip FuzzRegisterCredentials"
	"./wav FuzzDecode"
)

failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "--> $name ($pkg, $fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		echo "FAIL $name"
		failed=1
	fi
done
exit $failed
