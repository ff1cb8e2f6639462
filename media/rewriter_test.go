package media

import (
	"testing"

	"github.com/pion/rtp"
)

func rewriteOnce(t *testing.T, r *Rewriter, seq uint16, ts, ssrc uint32, samples uint32) sentHeader {
	t.Helper()
	raw := rtpPacket(0, seq, ts, ssrc, false, make([]byte, samples))
	var h rtp.Header
	if _, err := h.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if !r.Rewrite(raw, &h, samples, true) {
		t.Fatal("Rewrite refused a valid packet")
	}
	return parseSent(t, raw)
}

func TestRewriterContinuityAcrossSources(t *testing.T) {
	base := uint32(0xFFFFFF00)
	r := NewRewriter(0xCAFE, 65530, base) // both counters wrap below
	// Our own packets first (a prompt).
	seq, ts := r.Next(160)
	if seq != 65530 || ts != base {
		t.Fatalf("first Next = %d/%d", seq, ts)
	}
	// Source A: starts anywhere, must continue our stream with a marker.
	got := rewriteOnce(t, &r, 1000, 5000, 0xA, 160)
	if got.seq != 65531 || got.ts != base+160 || got.ssrc != 0xCAFE || !got.marker {
		t.Fatalf("first packet of source A → %+v", got)
	}
	got = rewriteOnce(t, &r, 1001, 5160, 0xA, 160)
	if got.seq != 65532 || got.ts != base+320 || got.marker {
		t.Fatalf("second packet of source A → %+v", got)
	}
	// Loss on A (1002 missing) stays visible as a gap.
	got = rewriteOnce(t, &r, 1003, 5480, 0xA, 160)
	if got.seq != 65534 || got.ts != base+640 {
		t.Fatalf("after a lost packet → %+v, want seq 65534", got)
	}
	// Source B takes over: continues after A with a marker, across the wrap.
	got = rewriteOnce(t, &r, 7, 123456, 0xB, 160)
	if got.seq != 65535 || got.ts != base+800 || !got.marker {
		t.Fatalf("first packet of source B → %+v", got)
	}
	got = rewriteOnce(t, &r, 8, 123616, 0xB, 160)
	if got.seq != 0 || got.ts != base+960 || got.marker {
		t.Fatalf("second packet of source B (wrapped) → %+v", got)
	}
	// Our own packet again continues; then B again re-anchors.
	seq, ts = r.Next(160)
	if seq != 1 || ts != base+1120 {
		t.Fatalf("Next after B = %d/%d", seq, ts)
	}
	got = rewriteOnce(t, &r, 9, 123776, 0xB, 160)
	if got.seq != 2 || !got.marker {
		t.Fatalf("B after our own packet → %+v, want seq 2 with marker", got)
	}
}

// Sweep the incoming sequence across its wrap: output must stay strictly
// consecutive.
func TestRewriterSequenceWrapSweep(t *testing.T) {
	for _, start := range []uint16{0, 1, 32767, 65534, 65535} {
		r := NewRewriter(1, 40000, 0)
		var prev uint16
		for i := 0; i < 10; i++ {
			got := rewriteOnce(t, &r, start+uint16(i), uint32(i*160), 9, 160)
			if i > 0 && got.seq != prev+1 {
				t.Fatalf("start %d: packet %d seq %d after %d", start, i, got.seq, prev)
			}
			prev = got.seq
		}
	}
}

func TestRewriterReorderedPacketDoesNotRewind(t *testing.T) {
	r := NewRewriter(1, 100, 1000)
	rewriteOnce(t, &r, 10, 0, 5, 160)   // → 100
	rewriteOnce(t, &r, 12, 320, 5, 160) // → 102
	got := rewriteOnce(t, &r, 11, 160, 5, 160)
	if got.seq != 101 {
		t.Errorf("late packet → seq %d, want 101", got.seq)
	}
	if r.NextSeq() != 103 || r.NextTimestamp() != 1000+480 {
		t.Errorf("next = %d/%d, want 103/1480: a late packet must not rewind the stream", r.NextSeq(), r.NextTimestamp())
	}
}

func TestCheckRTP(t *testing.T) {
	plain := rtpPacket(0, 1, 2, 3, false, []byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name     string
		b        []byte
		ok       bool
		hdr, end int
	}{
		{"plain", plain, true, 12, 16},
		{"short", plain[:11], false, 0, 0},
		{"version 1", append([]byte{0x40}, plain[1:]...), false, 0, 0},
		{"csrc overrun", append([]byte{0x83}, plain[1:]...), false, 0, 0},
		{"one csrc", append(append([]byte{0x81}, plain[1:12]...), 0, 0, 0, 7, 0xAA), true, 16, 17},
		{"extension header overrun", append([]byte{0x90}, plain[1:14]...), false, 0, 0},
		{"extension body overrun", append(append([]byte{0x90}, plain[1:12]...), 0xBE, 0xDE, 0, 2, 0, 0, 0, 0), false, 0, 0},
		{"extension", append(append([]byte{0x90}, plain[1:12]...), 0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0, 9), true, 20, 21},
		{"padding", append(append([]byte{0xA0}, plain[1:12]...), 9, 9, 0, 3), true, 12, 13},
		{"zero padding", append(append([]byte{0xA0}, plain[1:12]...), 9, 0), false, 0, 0},
		{"padding overrun", append(append([]byte{0xA0}, plain[1:12]...), 9, 5), false, 0, 0},
	} {
		hdr, end, ok := checkRTP(tc.b)
		if ok != tc.ok || hdr != tc.hdr || end != tc.end {
			t.Errorf("%s: checkRTP = %d, %d, %v; want %d, %d, %v", tc.name, hdr, end, ok, tc.hdr, tc.end, tc.ok)
		}
	}
}
