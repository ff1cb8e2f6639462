package dtmf

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// sig builds test signals.
type sig struct {
	s   []int16
	rng *rand.Rand
}

func newSig(seed uint64) *sig { return &sig{rng: rand.New(rand.NewPCG(seed, 7))} }

func (g *sig) tone(t *testing.T, digit byte, ms int, spec ToneSpec) *sig {
	t.Helper()
	spec.Duration = time.Duration(ms) * time.Millisecond
	var err error
	g.s, err = AppendTone(g.s, digit, spec)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *sig) silence(ms int) *sig {
	g.s = append(g.s, make([]int16, ms*8)...)
	return g
}

// noise adds white Gaussian noise at levelDBm0 over the whole signal.
func (g *sig) noise(levelDBm0 float64) *sig {
	sd := dBm0Amplitude / math.Sqrt2 * math.Pow(10, levelDBm0/20)
	for i := range g.s {
		g.s[i] = clamp16(float64(g.s[i]) + g.rng.NormFloat64()*sd)
	}
	return g
}

// detect runs the detector over s in 20 ms frames and returns the digits
// of the start events and the end events.
func detect(t *testing.T, s []int16) (starts, ends string) {
	t.Helper()
	d, err := NewDetector(DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(s); i += 160 {
		j := min(i+160, len(s))
		for _, ev := range d.Process(s[i:j]) {
			if ev.Kind == KindStart {
				starts += string(ev.Digit)
			} else {
				ends += string(ev.Digit)
			}
		}
	}
	// flush: trailing silence ends an open digit
	for _, ev := range d.Process(make([]int16, 400)) {
		if ev.Kind == KindEnd {
			ends += string(ev.Digit)
		}
	}
	return starts, ends
}

func TestDetectorAllDigits(t *testing.T) {
	g := newSig(1).silence(50)
	const all = "0123456789*#ABCD"
	for i := range len(all) {
		g.tone(t, all[i], 60, ToneSpec{}).silence(60)
	}
	starts, ends := detect(t, g.s)
	if starts != all || ends != all {
		t.Fatalf("starts %q ends %q, want %q", starts, ends, all)
	}
}

func TestDetectorAcceptance(t *testing.T) {
	cases := []struct {
		name  string
		spec  ToneSpec
		ms    int
		noise float64 // dBm0, 0 = none
		want  bool
	}{
		{"level 0 dBm0", ToneSpec{LevelDBm0: -0.01}, 60, 0, true},
		{"level -33 dBm0 per tone", ToneSpec{LevelDBm0: -33}, 60, 0, true},
		{"level -38 dBm0 per tone", ToneSpec{LevelDBm0: -38}, 60, 0, false},
		{"offset +1.5%", ToneSpec{FreqOffset: 0.015}, 60, 0, true},
		{"offset -1.5%", ToneSpec{FreqOffset: -0.015}, 60, 0, true},
		{"offset +3.5%", ToneSpec{FreqOffset: 0.035}, 60, 0, false},
		{"offset -3.5%", ToneSpec{FreqOffset: -0.035}, 60, 0, false},
		{"twist high +3 dB", ToneSpec{TwistDB: 3}, 60, 0, true},
		{"twist low +6 dB", ToneSpec{TwistDB: -6}, 60, 0, true},
		{"twist high +7 dB", ToneSpec{TwistDB: 7}, 60, 0, false},
		{"twist low +11 dB", ToneSpec{TwistDB: -11}, 60, 0, false},
		{"40 ms", ToneSpec{}, 40, 0, true},
		{"15 ms", ToneSpec{}, 15, 0, false},
		{"snr 10 dB", ToneSpec{LevelDBm0: -10}, 60, -17, true},
		{"snr 3 dB at -20", ToneSpec{LevelDBm0: -20}, 60, -20, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// several phases of the block grid
			for shift := 0; shift < blockSize; shift += 17 {
				for _, digit := range []byte("15*D") {
					g := newSig(uint64(shift)).silence(0)
					g.s = append(g.s, make([]int16, 400+shift)...)
					g.tone(t, digit, tc.ms, tc.spec).silence(100)
					if tc.noise != 0 {
						g.noise(tc.noise)
					}
					starts, ends := detect(t, g.s)
					got := starts != "" || ends != ""
					if got != tc.want {
						t.Fatalf("digit %c shift %d: detected %q/%q, want detection %v", digit, shift, starts, ends, tc.want)
					}
					if got && (starts != string(digit) || ends != string(digit)) {
						t.Fatalf("digit %c shift %d: detected %q/%q", digit, shift, starts, ends)
					}
				}
			}
		})
	}
}

func TestDetectorGaps(t *testing.T) {
	for _, gap := range []int{40, 50, 100} {
		for shift := 0; shift < blockSize; shift += 13 {
			g := newSig(2)
			g.s = make([]int16, shift)
			g.tone(t, '7', 50, ToneSpec{}).silence(gap).tone(t, '7', 50, ToneSpec{}).silence(gap).tone(t, '3', 50, ToneSpec{})
			starts, ends := detect(t, g.s)
			if starts != "773" || ends != "773" {
				t.Fatalf("gap %d ms shift %d: %q/%q, want 773", gap, shift, starts, ends)
			}
		}
	}
}

func TestDetectorDropoutDoesNotSplit(t *testing.T) {
	g := newSig(3).tone(t, '9', 100, ToneSpec{}).silence(5).tone(t, '9', 100, ToneSpec{})
	starts, ends := detect(t, g.s)
	if starts != "9" || ends != "9" {
		t.Fatalf("%q/%q, want one 9", starts, ends)
	}
}

func TestDetectorNoiseOnly(t *testing.T) {
	g := newSig(4).silence(10000).noise(-10)
	if starts, _ := detect(t, g.s); starts != "" {
		t.Fatalf("noise produced %q", starts)
	}
}
