package dtmf

import (
	"testing"
	"time"
)

// BenchmarkDecoderPacket: one telephone-event packet through Decoder.Feed.
func BenchmarkDecoderPacket(b *testing.B) {
	d, _ := NewDecoder(DecoderConfig{})
	enc, _ := NewEncoder(EncoderConfig{Duration: 200 * time.Millisecond})
	pk, _ := enc.Append(nil, '5', 0)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	ts := uint32(0)
	for i := 0; b.Loop(); i++ {
		p := pk[i%len(pk)]
		if i%len(pk) == 0 {
			ts += 4000
			now = now.Add(500 * time.Millisecond)
		}
		if _, err := d.Feed(1, ts, p.Payload[:], now.Add(p.SendAt)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAudio(b *testing.B) []int16 {
	// 1 s of speech-like audio with two digits in it
	s := speechLike(1, 8000, -20)
	tone, _ := AppendTone(nil, '4', ToneSpec{Duration: 80 * time.Millisecond})
	for i, v := range tone {
		s[2000+i] += v
		s[6000+i] += v
	}
	return s
}

// BenchmarkDetectorFrame: one 20 ms frame (160 samples) through the detector.
func BenchmarkDetectorFrame(b *testing.B) { benchDetectorFrames(b, benchAudio(b)) }

// benchDetectorFrames runs 20 ms frames of audio, in turn, through one
// detector.
func benchDetectorFrames(b *testing.B, audio []int16) {
	d, _ := NewDetector(DetectorConfig{})
	frames := (len(audio) - 160) / 160
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := i % frames * 160
		d.Process(audio[off : off+160])
	}
}

// BenchmarkMaskerFrame: one 20 ms frame through the masker (detector,
// delay line, masking).
func BenchmarkMaskerFrame(b *testing.B) {
	audio := benchAudio(b)
	m, _ := NewMasker(MaskerConfig{})
	out := make([]int16, 160)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := (i * 160) % len(audio)
		if _, err := m.Process(audio[off:off+160], out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetectorFrameTone: the worst case, a frame in the middle of a
// digit, where every block runs the frequency and harmonic checks.
func BenchmarkDetectorFrameTone(b *testing.B) {
	tone, _ := AppendTone(nil, '9', ToneSpec{Duration: 2 * time.Second})
	benchDetectorFrames(b, tone)
}

// BenchmarkDetectorFrameQuiet: a frame of line noise at about -60 dBm0,
// what a caller's side carries while they listen: below the level at
// which any block could hold a tone, so the filters are skipped.
func BenchmarkDetectorFrameQuiet(b *testing.B) {
	noise := make([]int16, 8000)
	seed := uint32(1)
	for i := range noise {
		seed = seed*1664525 + 1013904223
		noise[i] = int16(int32(seed>>16)%57 - 28) // uniform +-28: RMS 16
	}
	benchDetectorFrames(b, noise)
}
