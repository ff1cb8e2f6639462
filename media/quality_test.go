package media

import (
	"math"
	"testing"
	"time"
)

func TestSeqStatsLossAcrossWrap(t *testing.T) {
	tests := []struct {
		name                 string
		start                uint16
		n                    int
		skipEvery            int // 0 = none
		wantExpected, wantRx uint32
	}{
		{"clean", 100, 1000, 0, 1000, 1000},
		{"clean across the wrap", 65000, 2000, 0, 2000, 2000},
		{"every 20th lost across the wrap", 65500, 2000, 20, 2000, 1901},
		{"every 10th lost", 0, 1000, 10, 1000, 901},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s SeqStats
			for i := 0; i < tc.n; i++ {
				// skip the i%skip == skip-1 packets, never the first or last
				if tc.skipEvery > 0 && i%tc.skipEvery == tc.skipEvery-1 && i != tc.n-1 {
					continue
				}
				s.Update(tc.start + uint16(i))
			}
			exp := Expected(s.Base(), s.ExtendedMax())
			if exp != tc.wantExpected || s.Received() != tc.wantRx {
				t.Fatalf("expected %d received %d, want %d %d", exp, s.Received(), tc.wantExpected, tc.wantRx)
			}
			lost := CumulativeLost(exp, s.Received())
			if int64(lost) != int64(tc.wantExpected)-int64(tc.wantRx) {
				t.Fatalf("lost %d", lost)
			}
		})
	}
}

func TestSeqStatsJumpAndDuplicates(t *testing.T) {
	var s SeqStats
	for i := range uint16(10) {
		s.Update(1000 + i)
	}
	// A single stray packet far ahead is not counted and moves nothing.
	if s.Update(40000) {
		t.Fatal("stray jump counted")
	}
	if s.ExtendedMax() != 1009 {
		t.Fatalf("ext max %d after a stray", s.ExtendedMax())
	}
	// Duplicates count as received: lost goes negative (A.3).
	s.Update(1009)
	s.Update(1009)
	if got := CumulativeLost(Expected(s.Base(), s.ExtendedMax()), s.Received()); got != -2 {
		t.Fatalf("lost with duplicates %d, want -2", got)
	}
	// Two in sequence after a jump: the sender restarted.
	s.Update(50000)
	s.Update(50001)
	if s.Base() != 50001 || s.Received() != 1 || s.ExtendedMax() != 50001 {
		// A.1: init_seq on the second, then it counts as received.
		t.Fatalf("after restart base %d received %d max %d", s.Base(), s.Received(), s.ExtendedMax())
	}
}

func TestCumulativeLostClamp(t *testing.T) {
	if got := CumulativeLost(0x1000000, 0); got != 0x7fffff {
		t.Fatalf("clamp high %d", got)
	}
	if got := CumulativeLost(0, 0x1000000); got != -0x800000 {
		t.Fatalf("clamp low %d", got)
	}
}

func TestFractionLost(t *testing.T) {
	tests := []struct {
		exp, rx uint32
		want    uint8
	}{
		{0, 0, 0},
		{100, 100, 0},
		{100, 105, 0}, // duplicates
		{100, 95, 12}, // 5 % = 12.8/256
		{100, 50, 128},
		{100, 0, 255}, // 256/256 saturates
		{250, 0, 255},
	}
	for _, tc := range tests {
		if got := FractionLost(tc.exp, tc.rx); got != tc.want {
			t.Errorf("FractionLost(%d, %d) = %d, want %d", tc.exp, tc.rx, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	// Perfectly paced packets: no jitter.
	var j Jitter
	for i := range uint32(100) {
		j.Update(5000+i*160, 90000+i*160)
	}
	if j.Value() != 0 {
		t.Fatalf("paced jitter %d", j.Value())
	}
	// Arrivals alternately 80 units (10 ms at 8 kHz) early and late: |D| =
	// 160 every packet after the first, so J converges on 160.
	var k Jitter
	for i := range uint32(500) {
		off := uint32(80)
		if i%2 == 1 {
			off = -off
		}
		k.Update(5000+i*160+off, 4294967000+i*160) // timestamps wrap too
	}
	if v := k.Value(); v < 155 || v > 160 {
		t.Fatalf("alternating ±80 jitter %d, want ≈160", v)
	}
	// One delayed packet: J jumps by |D|/16 = 10 for D = 160.
	var m Jitter
	m.Update(0, 0)
	m.Update(160+160, 160)
	if m.Value() != 10 {
		t.Fatalf("one 160-unit step: %d, want 10", m.Value())
	}
}

func TestRoundTrip(t *testing.T) {
	// RFC 3550 §6.4.1's example: A = 0xb710:8000 (46864.500 s), LSR =
	// 0xb705:2000 (46853.125 s), DLSR = 0x0005:4000 (5.250 s): RTT 6.125 s.
	rtt, ok := RoundTrip(0xb7108000, 0xb7052000, 0x00054000)
	if !ok || rtt != 6125*time.Millisecond {
		t.Fatalf("RFC example: %v %v, want 6.125s", rtt, ok)
	}
	if _, ok := RoundTrip(0xb7108000, 0, 0x10); ok {
		t.Fatal("LSR 0 gave a round trip")
	}
	if _, ok := RoundTrip(0x1000, 0x2000, 0); ok {
		t.Fatal("negative round trip accepted")
	}
	// A peer's millisecond DLSR rounding on loopback: A − LSR − DLSR is
	// one millisecond (66 units) below zero: a round trip of 0, known.
	if rtt, ok := RoundTrip(0x10000, 0x8000, 0x8000+66); !ok || rtt != 0 {
		t.Fatalf("rounding below zero: %v %v, want 0 true", rtt, ok)
	}
	// Just past the slack is not a round trip.
	if _, ok := RoundTrip(0x10000, 0x8000, 0x8000+uint32(rttSlackUnits)+1); ok {
		t.Fatal("a round trip beyond the slack accepted")
	}
	// Across the 32-bit wrap of the middle bits.
	rtt, ok = RoundTrip(0x00000800, 0xfffff000, DLSRUnits(0))
	if !ok || rtt != 6144*time.Second>>16 { // 0x1800 units = 93.75 ms
		t.Fatalf("wrapped: %v %v", rtt, ok)
	}
	// NTP round-trip through NTPMiddle and DLSRUnits.
	sent := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	lsr := NTPMiddle(NTPTime(sent))
	held := 1500 * time.Millisecond
	arr := sent.Add(held + 40*time.Millisecond)
	rtt, ok = RoundTrip(NTPMiddle(NTPTime(arr)), lsr, DLSRUnits(held))
	if !ok || rtt < 39*time.Millisecond || rtt > 41*time.Millisecond {
		t.Fatalf("40 ms path: %v %v", rtt, ok)
	}
}

func TestNTPTime(t *testing.T) {
	// 1970-01-01 is NTP second 2208988800; half a second is 0x80000000.
	if got := NTPTime(time.Unix(0, 500_000_000)); got != 2208988800<<32|0x80000000 {
		t.Fatalf("NTPTime = %#x", got)
	}
}

func TestMOSFromR(t *testing.T) {
	// ITU-T G.107 Annex B (Figure B.1 / the formula's published points).
	tests := []struct{ r, mos float64 }{
		{-5, 1}, {0, 1}, {50, 2.58}, {60, 3.10}, {70, 3.60}, {80, 4.02},
		{90, 4.34}, {93.2, 4.41}, {100, 4.5}, {120, 4.5},
	}
	for _, tc := range tests {
		if got := MOSFromR(tc.r); math.Abs(got-tc.mos) > 0.005 {
			t.Errorf("MOSFromR(%v) = %.3f, want %.2f", tc.r, got, tc.mos)
		}
	}
}

func TestRFactor(t *testing.T) {
	tests := []struct {
		name   string
		delay  time.Duration
		loss   float64
		r, mos float64
	}{
		{"no impairment: G.107 default R", 0, 0, 93.2, 4.41},
		// Ie,eff = 95·1/(1+25.1) = 3.64
		{"1 % loss", 0, 1, 89.56, 4.33},
		// Ie,eff = 95·5/(5+25.1) = 15.78
		{"5 % loss", 0, 5, 77.42, 3.92},
		{"10 % loss", 0, 10, 66.13, 3.42},
		// Id = 0.024·150 = 3.6
		{"150 ms one way", 150 * time.Millisecond, 0, 89.6, 4.33},
		// Id = 0.024·300 + 0.11·122.7 = 20.697
		{"300 ms one way", 300 * time.Millisecond, 0, 72.50, 3.71},
		{"all lost", 0, 100, 17.26, 1.18},
		{"nonsense loss clamps", 0, -3, 93.2, 4.41},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := RFactor(tc.delay, tc.loss)
			if math.Abs(r-tc.r) > 0.01 {
				t.Errorf("R = %.3f, want %.2f", r, tc.r)
			}
			if m := EstimateMOS(tc.delay, tc.loss); math.Abs(m-tc.mos) > 0.011 {
				t.Errorf("MOS = %.2f, want %.2f", m, tc.mos)
			}
		})
	}
	if EstimateMOS(0, 5) >= EstimateMOS(0, 0) {
		t.Fatal("loss does not lower the MOS")
	}
}
