package tones

import (
	"math"
	"testing"
	"time"
)

// power returns the squared magnitude of x's DFT bin at freq (Goertzel),
// divided by len(x)²: about A²/4 for a sine of amplitude A at freq.
func power(x []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(x))
	return p / (n * n)
}

func rms(x []int16) float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(x)))
}

func dBm0(rmsValue float64) float64 {
	// A full-scale sine (peak 32768, RMS 32768/√2) is +3.14 dBm0.
	return 20*math.Log10(rmsValue/(32768/math.Sqrt2)) + 3.14
}

func TestTestToneIs1004HzAtMinus13dBm0(t *testing.T) {
	x := Test(time.Second)
	if len(x) != SampleRate {
		t.Fatalf("%d samples for 1 s, want %d", len(x), SampleRate)
	}
	if got := dBm0(rms(x)); math.Abs(got-(-13)) > 0.05 {
		t.Errorf("level %.2f dBm0, want -13", got)
	}
	at, off := power(x, 1004), power(x, 1100)
	if at < 1000*off {
		t.Errorf("power at 1004 Hz %.0f is not far above 1100 Hz's %.0f", at, off)
	}
}

func TestRingbackCadenceAndFrequencies(t *testing.T) {
	x := Ringback(6 * time.Second)
	ms := func(a, b int) []int16 { return x[a*8 : b*8] }
	for _, c := range []struct {
		from, to int // ms
		on       bool
	}{
		{0, 400, true}, {400, 600, false}, {600, 1000, true}, {1000, 3000, false},
		{3000, 3400, true}, {3400, 3600, false}, {3600, 4000, true}, {4000, 6000, false},
	} {
		seg := ms(c.from, c.to)
		if on := rms(seg) > 100; on != c.on {
			t.Errorf("%d-%d ms: on=%v, want %v", c.from, c.to, on, c.on)
		}
	}
	burst := ms(0, 400)
	if got := dBm0(rms(burst)); math.Abs(got-(-19)) > 0.1 {
		t.Errorf("ringback level %.2f dBm0, want -19 (two tones at -22)", got)
	}
	p400, p450, p1000 := power(burst, 400), power(burst, 450), power(burst, 1000)
	if p400 < 100*p1000 || p450 < 100*p1000 {
		t.Errorf("ringback bins: 400 Hz %.0f, 450 Hz %.0f, 1000 Hz %.0f", p400, p450, p1000)
	}
}

func TestZeroAndNegativeDurations(t *testing.T) {
	if len(Test(0)) != 0 || len(Ringback(-time.Second)) != 0 {
		t.Fatal("a non-positive duration must give no samples")
	}
}
