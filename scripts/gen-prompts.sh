#!/bin/sh
# gen-prompts.sh regenerates the demo IVR prompts in testdata/prompts/ as
# 8 kHz mono G.711 µ-law WAV files (ITU-T G.711; 8 kB per second of audio).
# Speech comes from espeak-ng, resampling and encoding from sox; the tones are
# synthesised by sox. Re-running it overwrites the files in place.
#
#   apt-get install -y espeak-ng sox   # if missing
#   scripts/gen-prompts.sh [OUTDIR]
set -eu

out=${1:-"$(dirname "$0")/../testdata/prompts"}
voice=${VOICE:-en-gb}
speed=${SPEED:-150}

for tool in espeak-ng sox; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "gen-prompts: $tool not found (apt-get install -y espeak-ng sox)" >&2
		exit 2
	}
done

mkdir -p "$out/digits"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# say NAME TEXT: speak TEXT into OUT/NAME.wav as 8 kHz mono µ-law, with
# leading/trailing silence trimmed and 100 ms of silence kept at the end.
say() {
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" "$2"
	sox "$tmp/raw.wav" -r 8000 -c 1 -e mu-law "$out/$1.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.1 norm -3
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
say invalid      "Sorry, that entry was not valid."
say try_again    "Please try again."
say goodbye      "Thank you for calling. Goodbye."
say transferring "Please hold while we transfer your call."

for d in 0 1 2 3 4 5 6 7 8 9; do
	say "digits/$d" "$d"
done
say digits/star "star"
say digits/hash "hash"

# hold.wav: a gentle four-note pattern, 4 s, about -20 dBFS.
sox -n -r 8000 -c 1 -e mu-law "$out/hold.wav" \
	synth 0.5 sine 523.25 synth 0.5 sine 659.25 : synth 0.5 sine 783.99 : \
	synth 0.5 sine 659.25 : synth 0.5 sine 523.25 : synth 0.5 sine 659.25 : \
	synth 0.5 sine 783.99 : synth 0.5 sine 1046.5 fade h 0.05 0.5 0.05 vol 0.1 2>/dev/null ||
sox -n -r 8000 -c 1 -e mu-law "$out/hold.wav" synth 4 sine 523.25-783.99 vol 0.1

# tone.wav: 3 s of the 1004 Hz digital test tone at -10 dBm0. In µ-law a
# 0 dBm0 sine has a peak 3.17 dB below full scale (ITU-T G.711 Table 2a), so
# -10 dBm0 is a peak of 10^(-13.17/20) = 0.2195 of full scale.
sox -n -r 8000 -c 1 -e mu-law "$out/tone.wav" synth 3 sine 1004 vol 0.2195

echo "gen-prompts: wrote $(find "$out" -name '*.wav' | wc -l) prompts to $out"
