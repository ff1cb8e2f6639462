package mp3

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/wav"
)

// recordingWAV is a stereo 8 kHz 16-bit recording as the recorder writes
// it: tone seconds of a hz tone on both channels, then pause seconds of
// digital silence (a secure segment's fill), then tone seconds again.
func recordingWAV(hz float64, tone, pause float64) []byte {
	const rate = 8000
	n := int((2*tone + pause) * rate)
	b := make([]byte, wav.HeaderSize+4*n)
	wav.PutHeader(b, wav.Info{Format: wav.PCM, Channels: 2, SampleRate: rate, BitsPerSample: 16}, uint32(4*n))
	for i := 0; i < n; i++ {
		t := float64(i) / rate
		var v int16
		if t < tone || t >= tone+pause {
			v = int16(8000 * math.Sin(2*math.Pi*hz*t))
		}
		binary.LittleEndian.PutUint16(b[wav.HeaderSize+4*i:], uint16(v))
		binary.LittleEndian.PutUint16(b[wav.HeaderSize+4*i+2:], uint16(v))
	}
	return b
}

// decode runs `lame --decode` (an independent decoder path of the
// reference implementation) and returns the left channel's samples.
func decode(t *testing.T, mp3 []byte) (wav.Info, []int16) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "x.mp3"), filepath.Join(dir, "x.wav")
	if err := os.WriteFile(in, mp3, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("lame", "--quiet", "--decode", in, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, pcm, err := wav.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	frame := 2 * info.Channels
	s := make([]int16, len(pcm)/frame)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(pcm[i*frame:]))
	}
	return info, s
}

func needLame(t *testing.T) {
	t.Helper()
	if !Available(Options{}) {
		t.Skip("lame not installed (scripts/install-test-deps.sh)")
	}
}

// TestEncodeDecodesBack: the MP3 decodes to the recording's duration
// (within 0.02 s: the LAME tag trims the encoder delay) and tone
// frequency, and its pause stays silent.
func TestEncodeDecodesBack(t *testing.T) {
	needLame(t)
	src := recordingWAV(1000, 1.5, 1.0)
	var out bytes.Buffer
	if err := Encode(context.Background(), Options{}, bytes.NewReader(src), int64(len(src)), &out); err != nil {
		t.Fatal(err)
	}
	// MPEG-2.5 Layer III frame sync: 11 set bits, then version bits 00.
	if b := out.Bytes(); len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 || b[1]&0x18 != 0 {
		t.Fatalf("not an MPEG-2.5 frame: % x", out.Bytes()[:min(4, out.Len())])
	}
	info, s := decode(t, out.Bytes())
	if info.SampleRate != 8000 || info.Channels != 2 {
		t.Fatalf("decoded %+v", info)
	}
	dur := float64(len(s)) / 8000
	if math.Abs(dur-4.0) > 0.02 { // exact but for a frame edge: the LAME tag trims the delay
		t.Errorf("duration %.3f s, want 4.0 ± 0.2", dur)
	}
	// Frequency from zero crossings over 1 s of the first tone.
	crossings := 0
	for i := 2001; i < 10000; i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			crossings++
		}
	}
	hz := float64(crossings) / 2 / (7999.0 / 8000)
	t.Logf("duration %.3f s, tone %.1f Hz, %d bytes of MP3", dur, hz, out.Len())
	if math.Abs(hz-1000) > 10 {
		t.Errorf("tone %.1f Hz, want 1000", hz)
	}
	// The pause (1.5 s to 2.5 s, minus the codec's delay and frame
	// overlap at either edge) is silent.
	var peak int
	for _, v := range s[int(1.7*8000):int(2.3*8000)] {
		peak = max(peak, int(math.Abs(float64(v))))
	}
	t.Logf("pause peak %d", peak)
	if peak > 64 {
		t.Errorf("pause peak %d, want silence", peak)
	}
}

func TestEncodeRefusesBadInput(t *testing.T) {
	needLame(t)
	good := recordingWAV(1000, 0.1, 0)
	eightBit := append([]byte(nil), good...)
	wav.PutHeader(eightBit, wav.Info{Channels: 2, SampleRate: 8000, BitsPerSample: 8}, uint32(len(good)-wav.HeaderSize))
	fiveCh := append([]byte(nil), good...)
	wav.PutHeader(fiveCh, wav.Info{Channels: 5, SampleRate: 8000, BitsPerSample: 16}, uint32(len(good)-wav.HeaderSize))
	for name, b := range map[string][]byte{"empty": nil, "truncated": good[:30], "not riff": bytes.Repeat([]byte("x"), 100),
		"8-bit": eightBit, "5 channels": fiveCh} {
		var out bytes.Buffer
		err := Encode(context.Background(), Options{}, bytes.NewReader(b), int64(len(b)), &out)
		if !errors.Is(err, ErrFormat) || out.Len() != 0 {
			t.Errorf("%s: %v, %d bytes out", name, err, out.Len())
		}
	}
	var out bytes.Buffer
	if err := Encode(context.Background(), Options{Binary: "/nonexistent/lame"}, bytes.NewReader(good), int64(len(good)), &out); !errors.Is(err, ErrNoEncoder) {
		t.Errorf("missing binary: %v", err)
	}
	if err := Encode(context.Background(), Options{MaxBytes: 100}, bytes.NewReader(good), int64(len(good)), &out); !errors.Is(err, ErrTooLarge) || out.Len() != 0 {
		t.Errorf("over MaxBytes: %v, %d bytes out", err, out.Len())
	}
}

// TestEncoderFailureIsBoundedAndBlank: an encoder that hangs is stopped
// at the timeout; one that fails has its diagnostics in the error with
// no digit left, and nothing is written.
func TestEncoderFailureIsBoundedAndBlank(t *testing.T) {
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang")
	fail := filepath.Join(dir, "fail")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 30\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fail, []byte("#!/bin/sh\necho 'bad input 4111111111111111' >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	good := recordingWAV(1000, 0.1, 0)
	var out bytes.Buffer
	start := time.Now()
	err := Encode(context.Background(), Options{Binary: hang, Timeout: 300 * time.Millisecond}, bytes.NewReader(good), int64(len(good)), &out)
	if !errors.Is(err, ErrEncode) || time.Since(start) > 10*time.Second || out.Len() != 0 {
		t.Errorf("hanging encoder: %v after %v", err, time.Since(start))
	}
	err = Encode(context.Background(), Options{Binary: fail}, bytes.NewReader(good), int64(len(good)), &out)
	if !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), "bad input") || strings.ContainsAny(strings.TrimPrefix(err.Error(), "mp3: encode failed: exit status 3"), "0123456789") || out.Len() != 0 {
		t.Errorf("failing encoder: %v", err)
	}
}
