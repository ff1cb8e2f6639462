package audio

import (
	"math"
	"testing"

	"github.com/zaf/g711"
)

// sine returns n samples of a sine of the given peak amplitude at hz.
func sine(n int, hz, peak float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(peak * math.Sin(2*math.Pi*hz*float64(i)/G711ClockRate)))
	}
	return out
}

// peakFor returns the peak of a sine at dBm0, computed from the G.711
// convention written out (a full-scale sine is +3.14 dBm0), not from the
// package's constants.
func peakFor(dBm0 float64) float64 {
	return 32768 * math.Pow(10, (dBm0-3.14)/20)
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ±%.2f", what, got, want, tol)
	}
}

func TestSineLevels(t *testing.T) {
	// 1004 Hz over 1 s: whole periods do not fit, as in real tones.
	half := sine(8000, 1004, 16384)
	near(t, "half-scale sine dBFS", DBFS(RMS(half)), -6.02-3.01, 0.02)
	near(t, "half-scale sine peak dBFS", PeakDBFS(half), -6.02, 0.01)
	full := sine(8000, 1004, 32767)
	near(t, "full-scale sine dBm0", DBm0(RMS(full)), 3.14, 0.02)
	for _, level := range []float64{0, -10, -13, -20, -24, -40} {
		x := sine(8000, 1004, peakFor(level))
		near(t, "sine dBm0", DBm0(RMS(x)), level, 0.03)
		near(t, "sine dBFS", DBFS(RMS(x)), level-3.14-3.01, 0.03)
	}
	if !math.IsInf(DBFS(RMS(make([]int16, 160))), -1) || !math.IsInf(DBm0(RMS(nil)), -1) {
		t.Error("silence must read -Inf")
	}
}

// TestDigitalMilliwatt checks the scale against G.711's own 0 dBm0
// signals, the digital milliwatt sequences (ITU-T G.711 Tables 5 and 6),
// decoded by zaf/g711.
func TestDigitalMilliwatt(t *testing.T) {
	ulaw := []byte{0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E}
	alaw := []byte{0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4}
	decode := func(b []byte, d func(uint8) int16) []int16 {
		out := make([]int16, len(b))
		for i, v := range b {
			out[i] = d(v)
		}
		return out
	}
	near(t, "µ-law digital milliwatt", DBm0(RMS(decode(ulaw, g711.DecodeUlawFrame))), -0.07, 0.02)
	near(t, "A-law digital milliwatt", DBm0(RMS(decode(alaw, g711.DecodeAlawFrame))), 0, 0.02)
}

func TestActiveLevel(t *testing.T) {
	tone := func(sec float64, dBm0 float64) []int16 {
		if math.IsInf(dBm0, -1) {
			return make([]int16, int(sec*8000))
		}
		return sine(int(sec*8000), 440, peakFor(dBm0))
	}
	cat := func(parts ...[]int16) []int16 {
		var out []int16
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	silence := math.Inf(-1)
	for _, c := range []struct {
		name     string
		pcm      []int16
		level    float64
		activity float64
	}{
		{"steady tone", tone(2, -20), -20, 1},
		{"tone then silence", cat(tone(1, -20), tone(3, silence)), -20, 0.25},
		// Whole-file RMS would read 6 dB lower (-26).
		{"cadence", cat(tone(0.4, -19), tone(0.2, silence), tone(0.4, -19), tone(2, silence)), -19, 0.8 / 3},
		// Two levels 6 dB apart, both within the margin: both count.
		{"two levels", cat(tone(1, -20), tone(1, -26)), 10 * math.Log10((math.Pow(10, -2)+math.Pow(10, -2.6))/2), 1},
		// A tail 25 dB down is below the threshold (about -36): left out.
		{"quiet tail", cat(tone(1, -20), tone(1, -45)), -20, 0.5},
		// Noise under the floor never counts.
		{"under the floor", cat(tone(1, -20), tone(1, -75)), -20, 0.5},
	} {
		got, act, ok := ActiveLevel(c.pcm)
		if !ok {
			t.Errorf("%s: no active level", c.name)
			continue
		}
		near(t, c.name+" level", got, c.level, 0.05)
		near(t, c.name+" activity", act, c.activity, 0.01)
	}
	for name, pcm := range map[string][]int16{
		"empty": nil, "shorter than a frame": tone(0.01, -20), "silence": tone(1, silence),
		"under the floor": tone(1, -75),
	} {
		if _, _, ok := ActiveLevel(pcm); ok {
			t.Errorf("%s: got an active level, want none", name)
		}
	}
}

// TestActiveLevelScalesWithGain: the gate is relative, so gain moves the
// active level by exactly the gain (what gen-prompts.sh relies on).
func TestActiveLevelScalesWithGain(t *testing.T) {
	// A syllable-like signal: bursts of varying level with decays.
	var pcm []int16
	for i, lv := range []float64{-14, -22, -18, -30, -16} {
		n := 2400 + 800*i
		for j := range n {
			env := math.Exp(-3 * float64(j) / float64(n))
			pcm = append(pcm, int16(peakFor(lv)*env*math.Sin(2*math.Pi*(200+50*float64(i))*float64(j)/8000)))
		}
		pcm = append(pcm, make([]int16, 1200)...)
	}
	base, _, ok := ActiveLevel(pcm)
	if !ok {
		t.Fatal("no active level")
	}
	quieter := make([]int16, len(pcm))
	for i, v := range pcm {
		quieter[i] = int16(math.Round(float64(v) / 2)) // -6.02 dB
	}
	got, _, _ := ActiveLevel(quieter)
	near(t, "active level after -6.02 dB", got, base-6.02, 0.05)
}
