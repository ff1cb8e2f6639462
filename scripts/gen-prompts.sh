#!/bin/sh
# gen-prompts.sh regenerates the demo prompts in testdata/prompts/ as 8 kHz
# mono G.711 µ-law WAV files (ITU-T G.711; 8 kB per second of audio), each
# at the level docs/AUDIO.md gives it:
#
#   speech prompts and digits  -20 dBm0 active level (ITU-T P.56-style gate)
#   tone.wav                   1004 Hz test tone, -13 dBm0
#   hold.wav                   soft sine chimes, -24 dBm0 active level
#
# Speech comes from espeak-ng; resampling, synthesis and encoding from sox.
# Levels are measured with cloak's own meter (tools/wavlevel, the
# audio.ActiveLevel the asset test uses) and the gain that brings each file
# to its level is computed and applied, then checked on the encoded file.
# Output is deterministic (no dither), so re-running it with the same
# espeak-ng and sox rewrites the same bytes.
#
#   apt-get install -y espeak-ng sox   # if missing; Go builds the meter
#   scripts/gen-prompts.sh [OUTDIR]
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/testdata/prompts"}
voice=${VOICE:-en-gb}
speed=${SPEED:-150}

speech_dbm0=-20 # docs/AUDIO.md: speech prompts, active level
hold_dbm0=-24   # docs/AUDIO.md: hold audio, active level
tone_dbm0=-13   # docs/AUDIO.md: test tone

for tool in espeak-ng sox go; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "gen-prompts: $tool not found (apt-get install -y espeak-ng sox; Go from go.dev)" >&2
		exit 2
	}
done

mkdir -p "$out/digits"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/wavlevel" ./tools/wavlevel)

# level FILE: the active level of FILE in dBm0 (audio.ActiveLevel).
level() { "$tmp/wavlevel" -active "$1"; }

# encode IN OUT TARGET: write the 16-bit WAV IN as µ-law OUT with the gain
# that brings its active level to TARGET dBm0. µ-law's quantisation can move
# the gate's choice of frames a little, so the encoded file is measured and
# the gain corrected (at most three passes) until it is within 0.25 dB.
encode() {
	gain=$(awk -v t="$3" -v l="$(level "$1")" 'BEGIN { printf "%.2f", t - l }')
	for pass in 1 2 3; do
		sox -D "$1" -e mu-law "$2" gain "$gain"
		got=$(level "$2")
		if awk -v t="$3" -v g="$got" 'BEGIN { d = g - t; exit !(d <= 0.25 && d >= -0.25) }'; then
			return 0
		fi
		gain=$(awk -v t="$3" -v g="$got" -v k="$gain" 'BEGIN { printf "%.2f", k + t - g }')
	done
	echo "gen-prompts: $2 is at $got dBm0, want $3" >&2
	exit 1
}

# say NAME TEXT: speak TEXT into OUT/NAME.wav at the speech level, with
# leading/trailing silence trimmed and 100 ms of silence kept at the end.
say() {
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" "$2"
	sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed "$tmp/lin.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.1
	encode "$tmp/lin.wav" "$out/$1.wav" "$speech_dbm0"
}

say welcome      "Welcome to the cloak demo."
say menu         "To make a payment, press 1. To speak to an agent, press 2."
say enter_card   "Please enter your card number, followed by the hash key."
say enter_expiry "Please enter the expiry date, as two digits for the month and two for the year."
say enter_cvv    "Please enter the three or four digit security code from the back of your card."
say card_ending  "Card ending in"
say approved     "Thank you. Your payment has been approved."
say declined     "Sorry, your payment was declined."
say failed       "Sorry, we could not take your payment right now."
say reviewing    "Thank you. Your payment is being reviewed. We will contact you once it is confirmed."
say invalid      "Sorry, that entry was not valid."
say try_again    "Please try again."
say goodbye      "Thank you for calling. Goodbye."
say transferring "Please hold while we transfer your call."

for d in 0 1 2 3 4 5 6 7 8 9; do
	say "digits/$d" "$d"
done
say digits/star "star"
say digits/hash "hash"

# hold.wav: cloak's own hold sound (licence: the project's, see
# testdata/prompts/NOTICE). Four soft sine chimes, G4 B4 D5 B4, one every
# 1.6 s, each a pure sine (no harmonics) with an 80 ms quarter-sine attack
# and an exponential decay of about 40 dB/s (sox's logarithmic fade, 100 dB
# over 2.5 s, cut at 1.6 s where it is 64 dB down), then 1.6 s of silence: 8 s that
# loop seamlessly (it starts and ends in silence). Every frequency is below
# 680 Hz, under DTMF's lowest row tone (697 Hz), so nothing in it can be
# taken for a digit, and the level is low (-24 dBm0 active) for agents who
# hear it through every secure segment.
chime() {
	sox -D -n -r 8000 -c 1 -b 16 -e signed "$tmp/chime$1.wav" \
		synth 2.5 sine "$2" fade q 0.08 fade l 0 2.5 2.5 trim 0 1.6
}
chime 1 392.00
chime 2 493.88
chime 3 587.33
sox -D -n -r 8000 -c 1 -b 16 -e signed "$tmp/rest.wav" trim 0 1.6
sox -D "$tmp/chime1.wav" "$tmp/chime2.wav" "$tmp/chime3.wav" "$tmp/chime2.wav" \
	"$tmp/rest.wav" "$tmp/hold.wav"
encode "$tmp/hold.wav" "$out/hold.wav" "$hold_dbm0"

# tone.wav: 3 s of the 1004 Hz test tone. A full-scale sine is +3.14 dBm0
# (docs/AUDIO.md), so a sine at L dBm0 peaks at 10^((L - 3.14)/20) of full
# scale: 0.1558 for -13 dBm0.
vol=$(awk -v l="$tone_dbm0" 'BEGIN { printf "%.4f", 10 ^ ((l - 3.14) / 20) }')
sox -D -n -r 8000 -c 1 -e mu-law "$out/tone.wav" synth 3 sine 1004 vol "$vol"

echo "gen-prompts: wrote $(find "$out" -name '*.wav' | wc -l) prompts to $out"
