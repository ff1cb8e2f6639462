package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/wav"
)

// writeSine writes sec seconds of 1004 Hz at dBm0 (a full-scale sine is
// +3.14 dBm0) as a 16-bit PCM WAV, then silence as long again.
func writeSine(t *testing.T, dBm0, sec float64) string {
	t.Helper()
	n := int(sec * 8000)
	peak := 32768 * math.Pow(10, (dBm0-3.14)/20)
	data := make([]byte, wav.HeaderSize+4*n)
	wav.PutHeader(data, wav.Info{Format: wav.PCM, Channels: 1, SampleRate: 8000, BitsPerSample: 16}, uint32(4*n))
	for i := range n {
		v := int16(math.Round(peak * math.Sin(2*math.Pi*1004*float64(i)/8000)))
		binary.LittleEndian.PutUint16(data[wav.HeaderSize+2*i:], uint16(v))
	}
	name := filepath.Join(t.TempDir(), "sine.wav")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestActiveLevelOfASine(t *testing.T) {
	name := writeSine(t, -20, 1)
	var out, errb bytes.Buffer
	if code := run([]string{"-active", name}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if err != nil || math.Abs(got-(-20)) > 0.05 {
		t.Fatalf("-active printed %q, want -20.00", out.String())
	}
	out.Reset()
	if code := run([]string{name}, &out, &errb); code != 0 || !strings.Contains(out.String(), "active -20.00 dBm0 (50% of 2.00 s)") {
		t.Fatalf("exit %d, printed %q", code, out.String())
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.wav")
	if err := os.WriteFile(junk, []byte("RIFF\xff\xff\xff\x7fWAVEjunk"), 0o644); err != nil {
		t.Fatal(err)
	}
	silent := filepath.Join(dir, "silent.wav")
	data := make([]byte, wav.HeaderSize+16000)
	wav.PutHeader(data, wav.Info{Format: wav.PCM, Channels: 1, SampleRate: 8000, BitsPerSample: 16}, 16000)
	if err := os.WriteFile(silent, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"-active", junk, silent}, 2, "usage"},
		{[]string{filepath.Join(dir, "missing.wav")}, 1, "no such file"},
		{[]string{junk}, 1, "bad wav file"},
		{[]string{"-active", silent}, 1, "no active audio"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.msg)
		}
	}
}
