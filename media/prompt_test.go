package media

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// wavBytes builds a WAV file: a fmt chunk of the given fields and a data
// chunk holding data (declared size dataSize, or len(data) when < 0).
func wavBytes(format, channels uint16, rate uint32, bits uint16, data []byte, dataSize int) []byte {
	if dataSize < 0 {
		dataSize = len(data)
	}
	var b []byte
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	b = append(b, "RIFF"...)
	le32(uint32(4 + 8 + 16 + 8 + len(data)))
	b = append(b, "WAVEfmt "...)
	le32(16)
	le16(format)
	le16(channels)
	le32(rate)
	le32(rate * uint32(channels) * uint32(bits) / 8)
	le16(channels * bits / 8)
	le16(bits)
	b = append(b, "data"...)
	le32(uint32(dataSize))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestLoadPromptFormats(t *testing.T) {
	pcm := sinePCM(800, 1000) // 100 ms
	ulaw := audio.CodecPCMU().Encode(pcm, nil)
	alaw := audio.CodecPCMA().Encode(pcm, nil)
	fsys := fstest.MapFS{
		"pcm.wav":  {Data: wavBytes(1, 1, 8000, 16, pcmBytes(pcm), -1)},
		"ulaw.wav": {Data: wavBytes(7, 1, 8000, 8, ulaw, -1)},
		"alaw.wav": {Data: wavBytes(6, 1, 8000, 8, alaw, -1)},
		"odd.wav":  {Data: wavBytes(7, 1, 8000, 8, ulaw[:161], -1)},
	}
	for _, name := range []string{"pcm.wav", "ulaw.wav", "alaw.wav"} {
		p, err := LoadPrompt(fsys, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Duration() != 100*time.Millisecond || p.Frames() != 5 || p.Name() != name {
			t.Errorf("%s: duration %v frames %d name %q", name, p.Duration(), p.Frames(), p.Name())
		}
		u, _ := p.Encoded(audio.CodecPCMU())
		a, _ := p.Encoded(audio.CodecPCMA())
		// The file's own codec keeps its bytes; the other one is
		// transcoded, which may round differently but must stay close.
		for _, enc := range []struct {
			c        audio.Codec
			got, ref []byte
			exact    bool
		}{
			{audio.CodecPCMU(), u, ulaw, name != "alaw.wav"},
			{audio.CodecPCMA(), a, alaw, name != "ulaw.wav"},
		} {
			if enc.exact && string(enc.got) != string(enc.ref) {
				t.Errorf("%s: %s encoding differs from the reference", name, enc.c.Name)
			}
			dec := enc.c.Decode(enc.got, nil)
			if len(dec) != len(pcm) {
				t.Fatalf("%s: %s has %d samples, want %d", name, enc.c.Name, len(dec), len(pcm))
			}
			for i, v := range dec {
				diff, lim := int(v)-int(pcm[i]), max(64, abs(int(pcm[i]))/8)
				if abs(diff) > lim {
					t.Fatalf("%s: %s sample %d = %d, source %d", name, enc.c.Name, i, v, pcm[i])
				}
			}
		}
	}
	odd, err := LoadPrompt(fsys, "odd.wav")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := odd.Encoded(audio.CodecPCMU())
	if odd.Samples() != 161 || len(u) != 320 || u[161] != 0xFF || u[319] != 0xFF {
		t.Errorf("odd-length prompt: %d samples, %d encoded bytes, padding %#x", odd.Samples(), len(u), u[161])
	}
	if _, err := odd.Encoded(audio.Codec{Name: "G729", PayloadType: 18}); !errors.Is(err, ErrCodec) {
		t.Errorf("Encoded(G729) = %v, want ErrCodec", err)
	}
}

func TestLoadPromptRejects(t *testing.T) {
	pcm := pcmBytes(sinePCM(160, 440))
	good := wavBytes(1, 1, 8000, 16, pcm, -1)
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"stereo.wav", wavBytes(1, 2, 8000, 16, pcm, -1), "2 channels"},
		{"wideband.wav", wavBytes(1, 1, 16000, 16, pcm, -1), "16000 Hz"},
		{"float.wav", wavBytes(3, 1, 8000, 32, pcm, -1), "wav format 3"},
		{"pcm8.wav", wavBytes(1, 1, 8000, 8, pcm, -1), "8 bits per sample"},
		{"ulaw16.wav", wavBytes(7, 1, 8000, 16, pcm, -1), "16 bits per sample"},
		{"truncated.wav", wavBytes(1, 1, 8000, 16, pcm, len(pcm)+100), "truncated"},
		{"empty-data.wav", wavBytes(1, 1, 8000, 16, nil, -1), "no audio"},
		{"not-riff.wav", []byte("ID3\x03 this is an mp3"), "not a RIFF/WAVE"},
		{"cut-header.wav", good[:30], "overruns"},
		{"no-data.wav", good[:36], "no data chunk"},
	} {
		_, err := LoadPrompt(fstest.MapFS{tc.name: {Data: tc.data}}, tc.name)
		if !errors.Is(err, ErrBadPrompt) || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want ErrBadPrompt naming the file and %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadPrompt(fstest.MapFS{}, "missing.wav"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// FuzzLoadPrompt: whatever the bytes, LoadPrompt returns a prompt or an
// error, never panics.
func FuzzLoadPrompt(f *testing.F) {
	f.Add(wavBytes(1, 1, 8000, 16, pcmBytes(sinePCM(160, 440)), -1))
	f.Add(wavBytes(7, 1, 8000, 8, make([]byte, 161), -1))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadPrompt(fstest.MapFS{"f.wav": {Data: data}}, "f.wav")
		if err == nil && (p.Samples() == 0 || len(p.ulaw)%audio.SamplesPerFrame != 0) {
			t.Fatalf("accepted prompt with %d samples, %d µ-law bytes", p.Samples(), len(p.ulaw))
		}
	})
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
