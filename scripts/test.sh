#!/usr/bin/env bash
# test.sh is the one command that runs every test: it installs missing test
# tools, then checks formatting (gofmt), vets, runs all tests with the
# race detector (the e2e package included), proves the leak canary can
# fail (scripts/canary-selfcheck.sh), fuzzes the parsers of wire and file
# input for 30 s each (scripts/fuzz.sh) and runs a 2-minute soak of
# cloak's relay route (bench/ci-soak.sh: no lost call, no leak). It prints
# a summary and exits non-zero when any step failed.
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
step "go test -race" go test -race -timeout 25m ./...
step "canary self-check" bash scripts/canary-selfcheck.sh
step "fuzz (30 s a target)" bash scripts/fuzz.sh
step "soak (2 min)" bash bench/ci-soak.sh 2m

echo
echo "==================== summary ===================="
printf '%s\n' "${results[@]}"
if ((failed)); then
	echo "FAILED"
	exit 1
fi
echo "all passed"
