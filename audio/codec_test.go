package audio

import (
	"testing"

	"github.com/zaf/g711"
)

func TestCodecLookup(t *testing.T) {
	for _, tc := range []struct {
		name string
		pt   uint8
	}{{"PCMU", 0}, {"pcmu", 0}, {"PCMA", 8}, {"pcma", 8}} {
		c, ok := CodecByName(tc.name)
		if !ok || c.PayloadType != tc.pt || c.ClockRate != 8000 {
			t.Errorf("CodecByName(%q) = %+v, %v; want pt %d at 8000 Hz", tc.name, c, ok, tc.pt)
		}
		byPT, ok := CodecByPayloadType(tc.pt)
		if !ok || byPT != (Codec{Name: c.Name, PayloadType: tc.pt, ClockRate: 8000}) {
			t.Errorf("CodecByPayloadType(%d) = %+v, %v", tc.pt, byPT, ok)
		}
	}
	if _, ok := CodecByName("opus"); ok {
		t.Error("CodecByName(opus) succeeded; only G.711 is supported")
	}
	if _, ok := CodecByPayloadType(18); ok {
		t.Error("CodecByPayloadType(18) succeeded")
	}
	if got := CodecPCMA().String(); got != "PCMA/8000 (pt 8)" {
		t.Errorf("String() = %q", got)
	}
}

// Known G.711 code points (ITU-T G.711 tables 1a/2a): µ-law 0xFF and A-law
// 0xD5 are the zero/near-zero levels, 0x80/0x00 the extremes.
func TestCodecKnownValues(t *testing.T) {
	u, a := CodecPCMU(), CodecPCMA()
	dec := u.Decode([]byte{0xFF, 0x7F, 0x80, 0x00}, nil)
	want := []int16{0, 0, 32124, -32124}
	for i := range want {
		if dec[i] != want[i] {
			t.Errorf("µ-law decode[%d] = %d, want %d", i, dec[i], want[i])
		}
	}
	if s := u.SilenceByte(); s != 0xFF {
		t.Errorf("µ-law silence = %#x, want 0xff", s)
	}
	if s := a.SilenceByte(); s != 0xD5 {
		t.Errorf("A-law silence = %#x, want 0xd5", s)
	}
	if got := a.Decode([]byte{0xD5, 0x55}, nil); got[0] != 8 || got[1] != -8 {
		t.Errorf("A-law decode(d5 55) = %v, want [8 -8]", got)
	}
	if got := (Codec{Name: "G722"}).Encode([]int16{1, 2}, nil); len(got) != 0 {
		t.Errorf("unsupported codec encoded %d bytes", len(got))
	}
	if (Codec{Name: "G722"}).Expansion() != nil {
		t.Error("unsupported codec has an expansion table")
	}
	if u.Expansion() == a.Expansion() || u.Expansion() != CodecPCMU().Expansion() {
		t.Error("expansion tables: want one per law, shared by every codec value")
	}
}

// Every code point decodes to a value that encodes back to the same code
// point (G.711 is idempotent on its own output), for both laws, and the
// results agree with zaf/g711's table.
func TestCodecRoundTripAllCodePoints(t *testing.T) {
	in := make([]byte, 256)
	for i := range in {
		in[i] = byte(i)
	}
	for _, c := range []Codec{CodecPCMU(), CodecPCMA()} {
		pcm := c.Decode(in, make([]int16, 0, 256))
		out := c.Encode(pcm, make([]byte, 0, 256))
		for i := range in {
			want := in[i]
			if c.IsULaw() && want == 0x7F { // µ-law has two zeros; 0x7F (-0) encodes as 0xFF (+0)
				want = 0xFF
			}
			if out[i] != want {
				t.Errorf("%s: code %#02x → %d → %#02x", c.Name, in[i], pcm[i], out[i])
			}
			ref := g711.DecodeUlawFrame(in[i])
			if c.IsALaw() {
				ref = g711.DecodeAlawFrame(in[i])
			}
			if pcm[i] != ref {
				t.Errorf("%s: decode %#02x = %d, zaf/g711 says %d", c.Name, in[i], pcm[i], ref)
			}
		}
	}
}

func TestCodecNoAllocs(t *testing.T) {
	pcm := make([]int16, SamplesPerFrame)
	for i := range pcm {
		pcm[i] = int16(i * 200)
	}
	enc := make([]byte, 0, SamplesPerFrame)
	dec := make([]int16, 0, SamplesPerFrame)
	for _, c := range []Codec{CodecPCMU(), CodecPCMA()} {
		if n := testing.AllocsPerRun(100, func() {
			enc = c.Encode(pcm, enc)
			dec = c.Decode(enc, dec)
		}); n != 0 {
			t.Errorf("%s encode+decode allocates %v times per frame", c.Name, n)
		}
		if len(enc) != SamplesPerFrame || len(dec) != SamplesPerFrame {
			t.Errorf("%s: encoded %d, decoded %d samples", c.Name, len(enc), len(dec))
		}
	}
}

// TestEncodeTablesMatchZaf checks the lookup tables against zaf/g711 for
// every 16-bit sample.
func TestEncodeTablesMatchZaf(t *testing.T) {
	all := make([]int16, 65536)
	for i := range all {
		all[i] = int16(uint16(i))
	}
	for _, c := range []Codec{CodecPCMU(), CodecPCMA()} {
		got := c.Encode(all, nil)
		for i, s := range all {
			want := g711.EncodeUlawFrame(s)
			if c.Name == "PCMA" {
				want = g711.EncodeAlawFrame(s)
			}
			if got[i] != want {
				t.Fatalf("%s: sample %d encodes to %#x, zaf says %#x", c.Name, s, got[i], want)
			}
		}
	}
}
