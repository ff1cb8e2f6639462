package ivr

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-audio/wav"
	"github.com/zaf/g711"
)

// readUlawWAV opens a prompt and checks it is 8 kHz mono G.711 µ-law
// (WAVE format tag 7), returning the µ-law bytes of its data chunk.
func readUlawWAV(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("prompt: %v", err)
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	d.ReadInfo()
	if !d.IsValidFile() {
		t.Fatalf("%s: not a valid WAV", path)
	}
	if d.SampleRate != 8000 || d.NumChans != 1 || d.WavAudioFormat != 7 || d.BitDepth != 8 {
		t.Fatalf("%s: %d Hz, %d ch, format %d, %d bit; want 8000 Hz mono µ-law (7), 8 bit",
			path, d.SampleRate, d.NumChans, d.WavAudioFormat, d.BitDepth)
	}
	if err := d.FwdToPCM(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data := make([]byte, d.PCMLen())
	if _, err := d.PCMChunk.Read(data); err != nil {
		t.Fatalf("%s: read data: %v", path, err)
	}
	return data
}

// TestPromptsExistForDemoFlows checks every prompt the demo flows can play,
// plus hold and tone, is a generated µ-law WAV in testdata/prompts.
func TestPromptsExistForDemoFlows(t *testing.T) {
	fs, err := LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	names := append(fs.Prompts(), "hold", "tone", "welcome", "goodbye")
	for _, p := range names {
		data := readUlawWAV(t, filepath.Join("../testdata/prompts", p+".wav"))
		if len(data) < 800 { // 100 ms
			t.Errorf("prompt %s: only %d samples", p, len(data))
		}
		if len(data) > 8000*10 {
			t.Errorf("prompt %s: %d samples; keep prompts short", p, len(data))
		}
	}
}

// TestToneLevelAndFrequency checks tone.wav is 3 s of 1004 Hz at -13 dBm0
// (±0.5 dB). 0 dBm0 is a sine of RMS 3.14 dB below a full-scale sine
// (docs/AUDIO.md: ITU-T G.711's load capacity): with 16-bit linear samples,
// full-scale sine RMS is 32768/√2, so -13 dBm0 has RMS 32768/√2 · 10^(-16.14/20).
func TestToneLevelAndFrequency(t *testing.T) {
	data := readUlawWAV(t, "../testdata/prompts/tone.wav")
	if n := len(data); n < 23900 || n > 24100 {
		t.Fatalf("tone has %d samples, want 3 s (24000)", n)
	}
	var sum float64
	crossings := 0
	prev := int16(0)
	for i, b := range data {
		s := g711.DecodeUlawFrame(b)
		sum += float64(s) * float64(s)
		if i > 0 && (prev < 0) != (s < 0) {
			crossings++
		}
		prev = s
	}
	rms := math.Sqrt(sum / float64(len(data)))
	ref := 32768 / math.Sqrt2 * math.Pow(10, -3.14/20) // 0 dBm0
	dbm0 := 20 * math.Log10(rms/ref)
	if math.Abs(dbm0-(-13)) > 0.5 {
		t.Errorf("tone level %.2f dBm0, want -13 ±0.5", dbm0)
	}
	freq := float64(crossings) / 2 / (float64(len(data)) / 8000)
	if math.Abs(freq-1004) > 5 {
		t.Errorf("tone frequency %.1f Hz, want 1004", freq)
	}
}
