#!/usr/bin/env bash
# test.sh is the one command that runs every test: it installs missing test
# tools, then checks formatting (gofmt), vets, runs all tests with the
# race detector (the e2e package included), proves the leak canary can
# fail (scripts/canary-selfcheck.sh), fuzzes the parsers of wire and file
# input for 15 s each (scripts/fuzz.sh) and runs a 2-minute soak of
# cloak's relay route (bench/ci-soak.sh: no lost call, no leak). It prints
# a summary, with the 15 slowest e2e tests, and exits non-zero when any
# step failed.
#
# The race run's go test -json events are kept in $TEST_JSON (default
# /tmp/cloak-test-race.json) for a closer look:
#   go run ./tools/testjson -slowest 30 -pkg e2e /tmp/cloak-test-race.json
set -uo pipefail
cd "$(dirname "$0")/.."

steps=()
results=()
failed=0

# step NAME CMD...: run CMD, record whether it passed.
step() {
	local name=$1
	shift
	echo
	echo "==> $name: $*"
	local start=$SECONDS
	if "$@"; then
		results+=("PASS  $name ($((SECONDS - start))s)")
	else
		results+=("FAIL  $name ($((SECONDS - start))s)")
		failed=1
	fi
	steps+=("$name")
}

gofmt_check() {
	local files
	files=$(gofmt -l .) || return 1
	if [[ -n $files ]]; then
		echo "gofmt: these files need formatting (gofmt -w):"
		echo "$files"
		return 1
	fi
}

step "test dependencies" bash scripts/install-test-deps.sh
step "gofmt" gofmt_check
step "go vet" go vet ./...
# race_tests runs every test with the race detector; the log shows what go
# test without -v shows (failures in full, see tools/testjson) while the
# events go to $test_json.
test_json=${TEST_JSON:-/tmp/cloak-test-race.json}
testjson_bin=$(mktemp -d)/testjson
race_tests() {
	go build -o "$testjson_bin" ./tools/testjson || return 1
	go test -race -json -timeout 25m ./... | tee "$test_json" | "$testjson_bin"
}

step "go test -race" race_tests
step "canary self-check" bash scripts/canary-selfcheck.sh
step "fuzz (15 s a target)" bash scripts/fuzz.sh
step "soak (2 min)" bash bench/ci-soak.sh 2m

echo
echo "==================== summary ===================="
printf '%s\n' "${results[@]}"
if [[ -x $testjson_bin && -s $test_json ]]; then
	echo
	"$testjson_bin" -slowest 15 -pkg /e2e "$test_json"
	echo "(all events: $test_json)"
fi
rm -rf "$(dirname "$testjson_bin")"
if ((failed)); then
	echo "FAILED"
	exit 1
fi
echo "all passed"
