package tones

import (
	"math"
	"time"
)

// SampleRate is the rate of every tone here: G.711's 8 kHz.
const SampleRate = 8000

// fullScaleDBm0 is the level of a full-scale sine (peak 32768): +3.14
// dBm0, the convention of cloak's level meter (audio.FullScaleSineDBm0,
// ITU-T G.711's A-law load capacity; docs/AUDIO.md). It is repeated here
// because this package imports nothing of cloak's; the asset-level test
// (TestEmbeddedAudioLevels) measures these tones with the meter.
const fullScaleDBm0 = 3.14

// Levels of the tones, in dBm0 (docs/AUDIO.md, "Levels").
const (
	// TestLevel is the 1004 Hz test tone's level.
	TestLevel = -13.0
	// RingbackLevel is each of ringback's two frequencies; the pair
	// together is 3 dB louder (-19 dBm0).
	RingbackLevel = -22.0
)

// Amplitude returns the peak amplitude of a sine at level dBm0 in 16-bit
// linear PCM, where a full-scale sine (peak 32768) is +3.14 dBm0.
func Amplitude(dBm0 float64) float64 {
	return 32768 * math.Pow(10, (dBm0-fullScaleDBm0)/20)
}

// samples returns the number of samples in d at SampleRate.
func samples(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(d.Seconds() * SampleRate)
}

// Test returns d of the 1004 Hz test tone at TestLevel, -13 dBm0 (ITU-T O.6's
// frequency, chosen so that it does not divide the 8 kHz sampling rate and
// so exercises every G.711 code over time).
func Test(d time.Duration) []int16 {
	out := make([]int16, samples(d))
	amp := Amplitude(TestLevel)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*1004*float64(i)/SampleRate))
	}
	return out
}

// Ringback returns d of ringback tone: 400+450 Hz, 0.4 s on, 0.2 s off,
// 0.4 s on, 2 s off (the UK cadence, ITU-T E.180 Supplement 2), each
// frequency at RingbackLevel (-22 dBm0; the pair -19 dBm0).
func Ringback(d time.Duration) []int16 {
	out := make([]int16, samples(d))
	const cycle = 3 * SampleRate // 3 s cadence
	on := func(i int) bool {
		t := i % cycle
		return t < 3200 || (t >= 4800 && t < 8000)
	}
	amp := Amplitude(RingbackLevel)
	for i := range out {
		if on(i) {
			t := float64(i) / SampleRate
			out[i] = int16(amp*math.Sin(2*math.Pi*400*t) + amp*math.Sin(2*math.Pi*450*t))
		}
	}
	return out
}
