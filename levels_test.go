package cloak_test

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cloak "github.com/cloak-voip/cloak"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/tones"
	"github.com/cloak-voip/cloak/wav"
)

// band is a documented level: an active level (audio.ActiveLevel) in
// dBm0 and how far an asset may stray from it. docs/AUDIO.md's table
// lists the same values; change both together.
type band struct {
	class  string
	target float64
	tol    float64
}

var (
	speech   = band{"speech prompt", -20, 2}
	testTone = band{"test tone", -13, 0.5}
	ringback = band{"ringback", -19, 0.5}
	hold     = band{"hold audio", -24, 2}
)

// assetBands gives every embedded prompt its band. A WAV added to
// testdata/prompts without a line here fails TestEmbeddedAudioLevels:
// give it a level in docs/AUDIO.md and here.
var assetBands = map[string]band{
	"approved.wav": speech, "card_ending.wav": speech, "declined.wav": speech,
	"enter_card.wav": speech, "enter_cvv.wav": speech, "enter_expiry.wav": speech,
	"failed.wav": speech, "goodbye.wav": speech, "invalid.wav": speech,
	"menu.wav": speech, "reviewing.wav": speech, "transferring.wav": speech, "try_again.wav": speech,
	"welcome.wav":  speech,
	"digits/0.wav": speech, "digits/1.wav": speech, "digits/2.wav": speech,
	"digits/3.wav": speech, "digits/4.wav": speech, "digits/5.wav": speech,
	"digits/6.wav": speech, "digits/7.wav": speech, "digits/8.wav": speech,
	"digits/9.wav": speech, "digits/star.wav": speech, "digits/hash.wav": speech,
	"tone.wav": testTone,
	"hold.wav": hold,
}

// notAudio are the embedded prompt files that are not audio.
var notAudio = []string{"NOTICE"}

// TestEmbeddedAudioLevels measures every audio asset cloak embeds or
// synthesises with cloak's own meter and fails when one is outside its
// documented band (docs/AUDIO.md), has no band, is not a prompt
// media.LoadPrompt accepts as 8 kHz mono µ-law, is shorter than 100 ms or
// longer than 10 s, or holds anything the DTMF detector takes for a digit
// (talk-off: a prompt must never key a digit into a masker or a recording).
func TestEmbeddedAudioLevels(t *testing.T) {
	fsys := cloak.DemoPrompts()
	seen := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if slices.Contains(notAudio, name) {
			return nil
		}
		seen[name] = true
		b, ok := assetBands[name]
		if !ok {
			t.Errorf("%s: no documented level band (add it to docs/AUDIO.md and assetBands)", name)
			return nil
		}
		pcm, err := loadPrompt(fsys, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return nil
		}
		checkLevel(t, name, pcm, b)
		checkNoDigit(t, name, pcm)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range assetBands {
		if !seen[name] {
			t.Errorf("%s has a band but is not embedded", name)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no embedded prompt found")
	}
}

// TestSynthesisedToneLevels measures what tones synthesises at run time
// (the "tone" route's test tone, ringback) with the same meter and bands.
func TestSynthesisedToneLevels(t *testing.T) {
	for _, c := range []struct {
		name string
		pcm  []int16
		b    band
	}{
		{"tones.Test", tones.Test(3 * time.Second), testTone},
		{"tones.Ringback", tones.Ringback(6 * time.Second), ringback},
	} {
		checkLevel(t, c.name, c.pcm, c.b)
		checkNoDigit(t, c.name, c.pcm)
	}
}

// TestHoldAudioIsSoft: hold.wav is pure sines under DTMF's lowest tone
// (697 Hz), with no harmonics an agent would hear as harsh: at each
// chime's frequency the energy is at least 30 dB above its second and
// third harmonics, its loudest 20 ms is at -15 dBm0 or below, it peaks
// at -18 dBFS or below, and under 1 % of its energy lies above 750 Hz.
func TestHoldAudioIsSoft(t *testing.T) {
	pcm, err := loadPrompt(cloak.DemoPrompts(), "hold.wav")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []float64{392.00, 493.88, 587.33} {
		p1 := goertzel(pcm, f)
		for h := 2.0; h <= 3; h++ {
			if ph := goertzel(pcm, h*f); 10*math.Log10(p1/ph) < 30 {
				t.Errorf("hold: harmonic %.0f× of %.0f Hz only %.1f dB down", h, f, 10*math.Log10(p1/ph))
			}
		}
	}
	loudest := math.Inf(-1)
	for i := 0; i+audio.ActiveFrame <= len(pcm); i += audio.ActiveFrame {
		loudest = max(loudest, audio.DBm0(audio.RMS(pcm[i:i+audio.ActiveFrame])))
	}
	if loudest > -15 {
		t.Errorf("hold: loudest 20 ms at %.1f dBm0, want -15 or below", loudest)
	}
	if peak := audio.PeakDBFS(pcm); peak > -18 {
		t.Errorf("hold: peaks at %.1f dBFS, want -18 or below", peak)
	}
	// The share of its energy above 750 Hz (Hann-windowed 20 ms frames,
	// 50 Hz bins; 750 leaves the highest chime's main lobe out): a chime,
	// not a square wave, whose odd harmonics carry a fifth of its power.
	var all, above float64
	win := make([]float64, audio.ActiveFrame)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(win)))
	}
	for i := 0; i+len(win) <= len(pcm); i += len(win) {
		for k := 1; k < len(win)/2; k++ {
			var re, im float64
			for j, w := range win {
				a := 2 * math.Pi * float64(k*j) / float64(len(win))
				re += w * float64(pcm[i+j]) * math.Cos(a)
				im -= w * float64(pcm[i+j]) * math.Sin(a)
			}
			p := re*re + im*im
			all += p
			if k*50 >= 750 {
				above += p
			}
		}
	}
	if share := above / all; share > 0.01 {
		t.Errorf("hold: %.2f%% of its energy above 750 Hz, want under 1%%", 100*share)
	} else {
		t.Logf("hold: %.3f%% of its energy above 750 Hz", 100*share)
	}
}

// loadPrompt loads name the way cloak serves it (media.LoadPrompt, over
// the hardened wav reader), checks it is 8 kHz mono µ-law of a sensible
// length, and returns its samples.
func loadPrompt(fsys fs.FS, name string) ([]int16, error) {
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	info, _, err := wav.Decode(raw)
	if err != nil {
		return nil, err
	}
	if info.Format != wav.ULaw || info.Channels != 1 || info.SampleRate != 8000 {
		return nil, fmt.Errorf("format %d, %d channels, %d Hz: want µ-law (7) mono 8000 Hz", info.Format, info.Channels, info.SampleRate)
	}
	p, err := media.LoadPrompt(fsys, name)
	if err != nil {
		return nil, err
	}
	if d := p.Duration(); d < 100*time.Millisecond || d > 10*time.Second {
		return nil, fmt.Errorf("%v long: keep prompts between 100 ms and 10 s", d)
	}
	return p.PCM(), nil
}

func checkLevel(t *testing.T, name string, pcm []int16, b band) {
	t.Helper()
	level, activity, ok := audio.ActiveLevel(pcm)
	if !ok {
		t.Errorf("%s: silent", name)
		return
	}
	t.Logf("%-18s %-14s active %6.2f dBm0 (%3.0f%%)  peak %6.2f dBFS", name, b.class, level, 100*activity, audio.PeakDBFS(pcm))
	if math.Abs(level-b.target) > b.tol {
		t.Errorf("%s: active level %.2f dBm0, outside the %s band %.0f ±%.1f dBm0 (docs/AUDIO.md)",
			name, level, b.class, b.target, b.tol)
	}
}

func checkNoDigit(t *testing.T, name string, pcm []int16) {
	t.Helper()
	det, err := dtmf.NewDetector(dtmf.DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var digits []string
	for i := 0; i < len(pcm); i += audio.SamplesPerFrame {
		for _, ev := range det.Process(pcm[i:min(i+audio.SamplesPerFrame, len(pcm))]) {
			if ev.Kind == dtmf.KindStart {
				digits = append(digits, "a digit")
			}
		}
	}
	if len(digits) > 0 {
		t.Errorf("%s: the DTMF detector found %d digits in it (talk-off)", name, len(digits))
	}
}

// goertzel returns the power of pcm at freq (one DFT bin).
func goertzel(pcm []int16, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2 float64
	for _, v := range pcm {
		s1, s2 = float64(v)+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// TestLevelsDocumented: docs/AUDIO.md's table names every band's target
// as this test applies it, so the two cannot drift apart silently.
func TestLevelsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/AUDIO.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []band{speech, testTone, ringback, hold} {
		want := fmt.Sprintf("| %s | %.0f dBm0 ±%g dB |", b.class, b.target, b.tol)
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/AUDIO.md has no row starting %q", want)
		}
	}
}
