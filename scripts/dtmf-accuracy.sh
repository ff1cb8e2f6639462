#!/bin/sh
# dtmf-accuracy.sh — run cloak's in-band DTMF detector and multimon-ng's
# over the same corpus (testdata/dtmf, built by tools/dtmfgen) in one run
# and print a Markdown table of digits found, missed and false per file.
#
#   scripts/dtmf-accuracy.sh            # score the committed corpus
#   scripts/dtmf-accuracy.sh -regen     # regenerate the corpus first (needs espeak-ng, sox)
#
# Needs: go, multimon-ng, sox (multimon-ng uses sox to read WAV files).
set -eu
cd "$(dirname "$0")/.."

if [ "${1:-}" = "-regen" ]; then
	go run ./tools/dtmfgen gen -out testdata/dtmf -speech
fi
for tool in multimon-ng sox; do
	command -v "$tool" >/dev/null || { echo "dtmf-accuracy: $tool not installed (apt-get install -y multimon-ng sox)" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cloak" ./cmd/cloak

grep -v '^#' testdata/dtmf/manifest.tsv | cut -f1 | while read -r f; do
	path=testdata/dtmf/$f
	# cloak: exit 1 means digits were found, 0 none; anything else is an error
	set +e
	"$tmp/cloak" dtmf scan "$path" >"$tmp/out"
	rc=$?
	set -e
	[ "$rc" -le 1 ] || { echo "dtmf-accuracy: cloak failed on $f" >&2; exit 2; }
	printf '%s\tcloak\t%s\n' "$f" "$(awk '{printf "%s", $3}' "$tmp/out")"
	printf '%s\tmultimon-ng\t%s\n' "$f" \
		"$(multimon-ng -q -c -a DTMF -t wav "$path" 2>/dev/null | sed -n 's/^DTMF: //p' | tr -d '\n')"
done >"$tmp/results.tsv"

echo "cloak $(git rev-parse --short HEAD 2>/dev/null || echo dev); $(multimon-ng -h 2>&1 | head -n1)"
echo
go run ./tools/dtmfgen score -manifest testdata/dtmf/manifest.tsv "$tmp/results.tsv"
