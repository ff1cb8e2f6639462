package audio

import (
	"math"
	"slices"
)

// This file is cloak's level meter: plain functions over 16-bit linear PCM
// (what G.711 decodes to), used to keep every prompt, tone and hold sound
// at a documented level (docs/AUDIO.md) and by the test that pins them.
//
// Conventions (docs/AUDIO.md, "How levels are measured"):
//
//   - dBFS is the RMS relative to 16-bit full scale, 20·log10(rms/32768):
//     a full-scale square wave is 0 dBFS and a full-scale sine −3.01 dBFS.
//     This is sox's "RMS lev dB" (sox FILE -n stats), so the two agree.
//   - dBm0 is the RMS relative to G.711's 0 dBm0: a full-scale sine (peak
//     32768) is +3.14 dBm0 (ITU-T G.711, the theoretical load capacity of
//     A-law), so 0 dBm0 is a sine of RMS 32768/√2 · 10^(−3.14/20) ≈ 16140,
//     and dBm0 = dBFS + 3.01 + 3.14. µ-law's load capacity is +3.17 dBm0
//     over a peak of 32636, which puts µ-law's digital milliwatt at
//     −0.07 dBm0 on this scale (TestDigitalMilliwatt): far inside every
//     tolerance cloak uses, so one scale serves both laws.

// FullScale is the magnitude of 16-bit linear full scale.
const FullScale = 32768.0

// FullScaleSineDBm0 is the level of a sine whose peak is FullScale: +3.14
// dBm0 (ITU-T G.711, A-law's theoretical load capacity, Tmax).
const FullScaleSineDBm0 = 3.14

// ZeroDBm0RMS is the RMS, in 16-bit linear units, of a 0 dBm0 signal
// (a digital milliwatt): FullScale/√2 · 10^(−FullScaleSineDBm0/20).
var ZeroDBm0RMS = FullScale / math.Sqrt2 * math.Pow(10, -FullScaleSineDBm0/20)

// RMS returns the root mean square of pcm, 0 for no samples.
func RMS(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	return math.Sqrt(meanSquare(pcm))
}

func meanSquare(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		f := float64(v)
		sum += f * f
	}
	return sum / float64(len(pcm))
}

// DBFS returns rms in dB relative to 16-bit full scale (a full-scale
// sine is −3.01 dBFS); −Inf for silence.
func DBFS(rms float64) float64 {
	return 20 * math.Log10(rms/FullScale)
}

// DBm0 returns rms as a G.711 level in dBm0 (0 dBm0 = ZeroDBm0RMS); −Inf
// for silence.
func DBm0(rms float64) float64 {
	return 20 * math.Log10(rms/ZeroDBm0RMS)
}

// PeakDBFS returns the largest magnitude in pcm relative to full scale
// (0 dBFS is a sample at ±32768); −Inf for silence.
func PeakDBFS(pcm []int16) float64 {
	peak := 0.0
	for _, v := range pcm {
		peak = max(peak, math.Abs(float64(v)))
	}
	return 20 * math.Log10(peak/FullScale)
}

// Active-level gate parameters (after ITU-T P.56 method B).
const (
	// ActiveMarginDB is how far the gate's threshold lies below the
	// active level it yields: P.56's margin M = 15.9 dB.
	ActiveMarginDB = 15.9
	// ActiveFloorDBm0 is the level under which a frame never counts as
	// active, however quiet the rest is (µ-law's smallest step, ±8 in
	// 16-bit, is about −72 dBm0).
	ActiveFloorDBm0 = -70
	// ActiveFrame is the gate's frame: 20 ms at 8 kHz.
	ActiveFrame = SamplesPerFrame
)

// ActiveLevel returns the active level of pcm (8 kHz) in dBm0 and the
// share of its frames that were active; ok is false when no frame is
// above ActiveFloorDBm0 (silence).
//
// It is a simplified ITU-T P.56: pcm is cut into 20 ms frames (a tail
// shorter than a frame is ignored) and each frame's mean square is its
// level. A threshold c selects the frames at or above it; their mean
// power is A(c). The active level is A(c) at the lowest threshold where
// A(c) − c = ActiveMarginDB, P.56's rule; frames below ActiveFloorDBm0
// never count. P.56 gates a smoothed envelope with a 200 ms hangover
// instead of frames, so on speech this reads up to about 1 dB higher than
// a P.56 meter (short pauses inside words are left out here). For a
// steady tone it equals the tone's RMS level; for a cadenced tone, the
// level while it sounds.
func ActiveLevel(pcm []int16) (dBm0 float64, activity float64, ok bool) {
	n := len(pcm) / ActiveFrame
	if n == 0 {
		return math.Inf(-1), 0, false
	}
	ref2 := ZeroDBm0RMS * ZeroDBm0RMS
	floor := ref2 * math.Pow(10, ActiveFloorDBm0/10)
	power := make([]float64, 0, n) // mean square per frame above the floor
	for i := range n {
		if p := meanSquare(pcm[i*ActiveFrame : (i+1)*ActiveFrame]); p >= floor {
			power = append(power, p)
		}
	}
	if len(power) == 0 {
		return math.Inf(-1), 0, false
	}
	slices.Sort(power)
	slices.Reverse(power) // loudest first
	db := func(p float64) float64 { return 10 * math.Log10(p/ref2) }
	sum := make([]float64, len(power)+1) // sum[k]: the k loudest frames
	for i, p := range power {
		sum[i+1] = sum[i] + p
	}
	// With the k loudest frames active, the threshold lies in
	// (level of frame k+1, level of frame k]; within it A is constant and
	// A − c grows as c falls, so the crossing there is c = A − margin.
	// Scan from the most inclusive set (the lowest thresholds) upwards.
	for k := len(power); k >= 1; k-- {
		a := db(sum[k] / float64(k))
		c := a - ActiveMarginDB
		if k == len(power) && c <= db(power[k-1]) {
			// Every frame is active (the crossing may lie under the
			// floor, where no frame is).
			return a, float64(k) / float64(n), true
		}
		if k < len(power) && c <= db(power[k-1]) && c > db(power[k]) {
			return a, float64(k) / float64(n), true
		}
	}
	// Not reached: A − c is below the margin at the top and above it at
	// the bottom, so it crosses the margin in some span. Count all.
	return db(sum[len(power)] / float64(len(power))), float64(len(power)) / float64(n), true
}
