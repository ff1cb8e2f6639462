package dtmf

import (
	"errors"
	"math"
	"testing"
)

// speechLike returns n samples of band-limited noise with a syllabic
// (4 Hz) envelope at roughly levelDBm0.
func speechLike(seed uint64, n int, levelDBm0 float64) []int16 {
	g := newSig(seed)
	sd := dBm0Amplitude / math.Sqrt2 * math.Pow(10, levelDBm0/20)
	out := make([]int16, n)
	var y float64
	for i := range out {
		y = 0.85*y + 0.5*g.rng.NormFloat64()
		env := 0.55 + 0.45*math.Sin(2*math.Pi*4*float64(i)/SampleRate)
		out[i] = clamp16(y * sd * env)
	}
	return out
}

func runMasker(t *testing.T, m *Masker, in []int16, frame int) ([]int16, []Event) {
	t.Helper()
	out := make([]int16, len(in))
	var evs []Event
	for i := 0; i < len(in); i += frame {
		j := min(i+frame, len(in))
		got, err := m.Process(in[i:j], out[i:j])
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, got...)
	}
	return out, evs
}

func TestMaskerRemovesToneInSpeech(t *testing.T) {
	for _, frame := range []int{160, 80, 1, 1000} {
		for shift := 0; shift < blockSize; shift += 25 {
			speech := speechLike(uint64(shift+1), 16000, -25)
			in := append([]int16(nil), speech...)
			// two tones at known places, added to the speech
			starts := []int{4000 + shift, 9000 + shift}
			for k, at := range starts {
				tone, err := AppendTone(nil, "51"[k], ToneSpec{Duration: 80e6, LevelDBm0: -8})
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range tone {
					in[at+i] = clamp16(float64(in[at+i]) + float64(v))
				}
			}
			m, err := NewMasker(MaskerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			out, evs := runMasker(t, m, in, frame)

			// the masker saw both digits
			var seen string
			for _, ev := range evs {
				if ev.Kind == KindEnd {
					seen += string(ev.Digit)
				}
			}
			if seen != "51" {
				t.Fatalf("frame %d shift %d: masker events %q, want 51", frame, shift, seen)
			}
			// every sample of each tone, leading edge included, is silent
			for _, at := range starts {
				for i := at; i < at+640; i++ {
					if o := i + MaskerDelay; o < len(out) && out[o] != 0 {
						t.Fatalf("frame %d shift %d: tone sample %d leaked (%d)", frame, shift, i-at, out[o])
					}
				}
			}
			// and no detector finds a digit in the output
			if s, e := detect(t, out); s != "" || e != "" {
				t.Fatalf("frame %d shift %d: output still holds digits %q", frame, shift, s)
			}
			// away from the tones the audio passes unchanged, delayed
			for i := 0; i+MaskerDelay < len(out); i++ {
				near := false
				for _, at := range starts {
					if i >= at-3*blockSize && i < at+640+3*blockSize {
						near = true
					}
				}
				if !near && out[i+MaskerDelay] != in[i] {
					t.Fatalf("frame %d shift %d: sample %d changed outside a tone", frame, shift, i)
				}
			}
		}
	}
}

func TestMaskerPassesSpeechUnchanged(t *testing.T) {
	in := speechLike(9, 24000, -15)
	m, err := NewMasker(MaskerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out, evs := runMasker(t, m, in, 160)
	if len(evs) != 0 {
		t.Fatalf("speech-like audio produced %d events", len(evs))
	}
	for i := range MaskerDelay {
		if out[i] != 0 {
			t.Fatalf("delay line did not start silent at %d", i)
		}
	}
	for i := 0; i+MaskerDelay < len(in); i++ {
		if out[i+MaskerDelay] != in[i] {
			t.Fatalf("sample %d changed", i)
		}
	}
}

func TestMaskerSuppressBlanksLineAndFuture(t *testing.T) {
	in := speechLike(3, 4000, -10)
	for i := range in {
		if in[i] == 0 {
			in[i] = 1
		}
	}
	m, _ := NewMasker(MaskerConfig{})
	out := make([]int16, len(in))
	if _, err := m.Process(in[:1600], out[:1600]); err != nil {
		t.Fatal(err)
	}
	m.Suppress(400) // the 320 samples in the line and the next 400
	if _, err := m.Process(in[1600:], out[1600:]); err != nil {
		t.Fatal(err)
	}
	for o := 1600; o < len(out); o++ {
		src := o - MaskerDelay
		blank := src >= 1600-MaskerDelay && src < 2000
		if blank != (out[o] == 0) {
			t.Fatalf("output %d (input %d): blank=%v, got %d", o, src, blank, out[o])
		}
	}
}

func TestMaskerHoldRelease(t *testing.T) {
	in := speechLike(4, 4000, -10)
	for i := range in {
		if in[i] == 0 {
			in[i] = 1
		}
	}
	m, _ := NewMasker(MaskerConfig{})
	out := make([]int16, len(in))
	m.Process(in[:1000], out[:1000])
	m.Hold()
	m.Process(in[1000:2000], out[1000:2000])
	m.Release()
	m.Process(in[2000:], out[2000:])
	for o := 1000; o < len(out); o++ {
		src := o - MaskerDelay
		blank := src >= 1000-MaskerDelay && src < 2000
		if blank != (out[o] == 0) {
			t.Fatalf("output %d (input %d): blank=%v, got %d", o, src, blank, out[o])
		}
	}
}

func TestMaskerComfortNoise(t *testing.T) {
	m, err := NewMasker(MaskerConfig{ComfortNoise: 8})
	if err != nil {
		t.Fatal(err)
	}
	m.Hold()
	in := speechLike(5, 1600, -5)
	out := make([]int16, len(in))
	m.Process(in, out)
	nonzero := 0
	for _, v := range out {
		if v > 8 || v < -8 {
			t.Fatalf("comfort noise sample %d above its peak", v)
		}
		if v != 0 {
			nonzero++
		}
	}
	if nonzero < len(out)/2 {
		t.Fatalf("comfort noise mostly silent (%d of %d)", nonzero, len(out))
	}
}

func TestMaskerShortOutput(t *testing.T) {
	m, _ := NewMasker(MaskerConfig{})
	_, err := m.Process(make([]int16, 160), make([]int16, 80))
	if !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("err = %v, want ErrBufferTooSmall", err)
	}
}
