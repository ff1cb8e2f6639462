package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
)

func TestStampSurvivesG711Transcoding(t *testing.T) {
	c := audio.CodecPCMU()
	for _, tc := range []struct {
		ns  int64
		seq uint32
	}{{0, 0}, {1, 1}, {time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC).UnixNano(), 0x7f7f7f7f}, {-1 >> 1, 0xffffffff}} {
		p := append([]byte(nil), audioFrames[3]...)
		putStamp(p, tc.ns, tc.seq)
		// What a masking relay does: decode, (no tone found), re-encode.
		out := c.Encode(c.Decode(p, nil), nil)
		ns, seq, ok := readStamp(out)
		if !ok || ns != tc.ns || seq != tc.seq {
			t.Fatalf("stamp %d/%d came back as %d/%d ok=%v", tc.ns, tc.seq, ns, seq, ok)
		}
	}
}

func TestReadStampRejectsOtherAudio(t *testing.T) {
	for name, p := range map[string][]byte{
		"silence": bytes.Repeat([]byte{0xff}, samples),
		"tone":    audioFrames[0],
		"short":   {0xa1, 0xa2},
	} {
		if _, _, ok := readStamp(p); ok {
			t.Errorf("%s read as a stamp", name)
		}
	}
}

func TestBencodeRoundTrip(t *testing.T) {
	in := map[string]any{"command": "offer", "call-id": "c1", "flags": []string{"a b", "c"}, "n": 5,
		"nested": map[string]any{"x": "y"}}
	out, rest, err := bdecode(bencode(in))
	if err != nil || len(rest) != 0 {
		t.Fatalf("decode: %v rest %q", err, rest)
	}
	want := map[string]any{"command": "offer", "call-id": "c1", "flags": []any{"a b", "c"}, "n": int64(5),
		"nested": map[string]any{"x": "y"}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v", out)
	}
	// Keys sorted, as the format wants.
	if got := string(bencode(map[string]any{"b": 1, "a": "x"})); got != "d1:a1:x1:bi1ee" {
		t.Fatalf("encoding %q", got)
	}
	for _, bad := range []string{"", "d", "l", "5:ab", "i12", "d1:a", "x"} {
		if _, _, err := bdecode([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command field may hold spaces and parentheses.
	line := "4242 (we (ird) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 8 0 100 1000 200\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 4.0 {
		t.Fatalf("cpu %v err %v, want 4.0s", got, err)
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
	st, err := readProc(0)
	if err != nil || st.RSSKiB <= 0 || st.Threads < 1 {
		t.Fatalf("self: %+v %v", st, err)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * int64(time.Microsecond) * 10) // 10 µs .. 10 ms
	}
	if p50 := h.quantile(0.5); p50 < 4.99 || p50 > 5.02 {
		t.Errorf("p50 %.3f ms, want 5", p50)
	}
	if p99 := h.quantile(0.99); p99 < 9.89 || p99 > 9.92 {
		t.Errorf("p99 %.3f ms, want 9.9", p99)
	}
	h.add(int64(500 * time.Millisecond))
	if q := h.quantile(1); q < 500 || q > 501 {
		t.Errorf("max bucket %.1f ms, want 500..501", q)
	}
	h.add(-5) // a clock step is clamped, not a crash
}

// feed simulates a relay delivering frames of a stream at 20 ms with a
// fixed delay plus extra per-frame delay.
func feed(s *stream, seqs []uint32, extra func(i int) time.Duration, stamped func(i int) bool) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	p := make([]byte, samples)
	for i, seq := range seqs {
		sent := base + int64(seq)*int64(frame)
		copy(p, audioFrames[0])
		if stamped(i) {
			putStamp(p, sent, seq)
		} else {
			for j := range p {
				p[j] = 0xff
			}
		}
		at := sent + int64(time.Millisecond) + int64(extra(i))
		s.onReceive(at, 0, uint16(1000+i), uint32(seq)*samples, p, nil, nil)
	}
}

func TestStreamLossJitter(t *testing.T) {
	none := func(int) time.Duration { return 0 }
	all := func(int) bool { return true }

	s := newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	seqs := make([]uint32, 0, 100)
	for i := uint32(1); i <= 100; i++ {
		if i != 50 && i != 51 {
			seqs = append(seqs, i)
		}
	}
	feed(s, seqs, none, all)
	if exp, lost := s.lost(); exp != 100 || lost != 2 {
		t.Fatalf("expected %d lost %d, want 100 and 2", exp, lost)
	}
	if s.jitter > 0.01 {
		t.Fatalf("jitter %.3f with perfect timing", s.jitter)
	}

	// Frames a masker replaced with silence are delivered, not lost.
	s = newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	seqs = seqs[:0]
	for i := uint32(1); i <= 100; i++ {
		seqs = append(seqs, i)
	}
	feed(s, seqs, none, func(i int) bool { return i < 40 || i > 45 })
	if _, lost := s.lost(); lost != 0 || s.rxOther != 6 {
		t.Fatalf("lost %d unstamped %d, want 0 and 6", lost, s.rxOther)
	}

	// Alternating 0 and 2 ms extra delay: |D| = 16 timestamp units each
	// packet, so J converges to 16 units = 2 ms.
	s = newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	feed(s, seqs, func(i int) time.Duration { return time.Duration(i%2) * 2 * time.Millisecond }, all)
	if ms := s.jitter / 8; ms < 1.9 || ms > 2.01 {
		t.Fatalf("jitter %.3f ms, want about 2", ms)
	}
}

// TestJitterParts: the RFC 3550 jitter's parts. A relay delaying
// alternate frames by 2 ms shows as relay jitter, not pacing; a sender
// sending alternate frames 2 ms late shows as pacing, not relay jitter;
// a relay whose timestamps slip by one frame once shows one jump.
func TestJitterParts(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	run := func(relay, pace func(i uint32) time.Duration, tsSlip func(i uint32) uint32) *stream {
		s := newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
		p := make([]byte, samples)
		for i := uint32(1); i <= 100; i++ {
			sent := base + int64(i)*int64(frame) + int64(pace(i))
			copy(p, audioFrames[0])
			putStamp(p, sent, i)
			var h hist // measuring: the window
			s.onReceive(sent+int64(time.Millisecond)+int64(relay(i)), 0, uint16(i), 5000+i*samples+tsSlip(i), p, &h, nil)
		}
		return s
	}
	zero := func(uint32) time.Duration { return 0 }
	alt := func(i uint32) time.Duration { return time.Duration(i%2) * 2 * time.Millisecond }
	noSlip := func(uint32) uint32 { return 0 }
	s := run(alt, zero, noSlip)
	if ms := s.relayJit / 8; ms < 1.9 || ms > 2.01 || s.paceJit > 0.01 || s.tsJumps != 0 {
		t.Errorf("relay jitter: relay %.2f ms pace %.2f ms jumps %d, want 2, 0, 0", ms, s.paceJit/8, s.tsJumps)
	}
	s = run(zero, alt, noSlip)
	if ms := s.paceJit / 8; ms < 1.9 || ms > 2.01 || s.relayJit > 0.01 || s.tsJumps != 0 {
		t.Errorf("pacing jitter: relay %.2f ms pace %.2f ms jumps %d, want 0, 2, 0", s.relayJit/8, ms, s.tsJumps)
	}
	s = run(zero, zero, func(i uint32) uint32 {
		if i > 50 {
			return samples
		}
		return 0
	})
	if s.tsJumps != 1 || s.relayJit > 0.01 || s.paceJit > 0.01 {
		t.Errorf("timestamp slip: jumps %d relay %.2f pace %.2f, want 1, 0, 0", s.tsJumps, s.relayJit/8, s.paceJit/8)
	}
}

// TestJitterOfTheWindow: jitter is reported as it stood at the end of
// the measured window; what the teardown after it does (every call
// hanging up at once, 0 and 15 ms late in turn here) shows only in the
// end-of-run value.
func TestJitterOfTheWindow(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	s := newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	p := make([]byte, samples)
	var h hist
	for i := uint32(1); i <= 200; i++ {
		sent := base + int64(i)*int64(frame)
		at := sent + int64(time.Millisecond)
		hp := &h
		if i > 150 { // the window is over: teardown
			hp = nil
			at += int64(i%2) * int64(15*time.Millisecond)
		}
		copy(p, audioFrames[0])
		putStamp(p, sent, i)
		s.onReceive(at, 0, uint16(i), i*samples, p, hp, nil)
	}
	if !s.win || s.winJitter > 0.01 || s.winRelay > 0.01 {
		t.Errorf("window's jitter %.2f ms (relay %.2f), want 0", s.winJitter/8, s.winRelay/8)
	}
	if ms := s.jitter / 8; ms < 10 {
		t.Errorf("end-of-run jitter %.2f ms, want the teardown's (about 15)", ms)
	}
}

func TestHeaderGapsAcrossWrap(t *testing.T) {
	s := newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	for _, q := range []uint16{65533, 65534, 65535, 1, 2, 0, 4} { // 0 late, 3 lost
		s.trackHeaderSeq(q)
	}
	if g := s.headerGaps(); g != 1 {
		t.Fatalf("gaps %d, want 1", g)
	}
}

func TestDigitsReplaceAudio(t *testing.T) {
	enc, err := dtmf.NewEncoder(dtmf.EncoderConfig{Duration: 100 * time.Millisecond, Interval: frame})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(3, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	s.keyDigits(enc, "12", 2)
	var kinds []string
	var evTS []uint32
	for i := 0; i < 40; i++ {
		p := s.next(int64(i))
		switch {
		case p == nil:
			kinds = append(kinds, "-")
		case p[1]&0x7f == 101:
			kinds = append(kinds, "E")
			evTS = append(evTS, binary.BigEndian.Uint32(p[4:]))
		default:
			kinds = append(kinds, "A")
		}
	}
	got := fmt.Sprint(kinds)
	// Two audio frames, then digit 1's event packets (no audio while it
	// is on), a 100 ms gap of audio, digit 2, then audio again.
	if kinds[0] != "A" || kinds[1] != "A" || kinds[2] != "E" || kinds[39] != "A" {
		t.Fatalf("frames %s", got)
	}
	if s.evSent != uint64(2*enc.PacketCount()) {
		t.Fatalf("%d event packets sent, want %d: %s", s.evSent, 2*enc.PacketCount(), got)
	}
	// Each digit's packets share one timestamp.
	if evTS[0] != evTS[enc.PacketCount()-1] || evTS[0] == evTS[enc.PacketCount()] {
		t.Fatalf("event timestamps %v", evTS)
	}
	var evIdx []int
	for i, k := range kinds {
		if k == "E" {
			evIdx = append(evIdx, i)
		}
	}
	n := enc.PacketCount()
	for _, digit := range [][]int{evIdx[:n], evIdx[n:]} {
		for i := digit[0]; i <= digit[len(digit)-1]; i++ {
			if kinds[i] == "A" {
				t.Fatalf("audio sent while a digit was on: %s", got)
			}
		}
	}
	if evIdx[n]-evIdx[n-1] < 5 {
		t.Fatalf("no gap between the digits: %s", got)
	}
}

// testFloor is an in-test relay with bench/floor's port layout.
func testFloor(t *testing.T, pairs int) netip.AddrPort {
	t.Helper()
	for base := 42000 + (time.Now().Nanosecond()/1000)%4000*4; base < 60000; base += 4 * pairs {
		var conns []*net.UDPConn
		ok := true
		for i := 0; i < 2*pairs && ok; i++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: base + 2*i})
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		if !ok {
			for _, c := range conns {
				c.Close()
			}
			continue
		}
		var wg sync.WaitGroup
		for i := 0; i < pairs; i++ {
			a, b := conns[2*i], conns[2*i+1]
			var mu sync.Mutex
			peers := map[*net.UDPConn]netip.AddrPort{}
			relay := func(in, out *net.UDPConn) {
				defer wg.Done()
				buf := make([]byte, 1500)
				for {
					n, from, err := in.ReadFromUDPAddrPort(buf)
					if errors.Is(err, net.ErrClosed) {
						return
					}
					mu.Lock()
					peers[in] = from
					dst, ok := peers[out]
					mu.Unlock()
					if ok {
						out.WriteToUDPAddrPort(buf[:n], dst)
					}
				}
			}
			wg.Add(2)
			go relay(a, b)
			go relay(b, a)
		}
		t.Cleanup(func() {
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		})
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base))
	}
	t.Fatal("no free port range for the test relay")
	return netip.AddrPort{}
}

func TestRunThroughARelay(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for a few seconds")
	}
	base := testFloor(t, 6)
	o, err := parseFlags([]string{"-mode", "floor", "-floor", base.String(), "-floor-pairs", "6", "-calls", "6", "-rate", "100",
		"-warmup", "1s", "-window", "2s", "-duration", "20s", "-digits", "5", "-digits-at", "200ms", "-progress", "1h", "-pid", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runLoad(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.CallsUp != 6 || sum.CallsFailed != 0 || len(sum.Directions) != 2 {
		t.Fatalf("calls %+v directions %d", sum, len(sum.Directions))
	}
	for _, d := range sum.Directions {
		// About 3.5 s of 50 packets/s per stream.
		if d.Streams != 6 || d.Received < 6*120 || d.Lost != 0 || d.SeqGaps != 0 {
			t.Errorf("%s: %+v", d.Name, d)
		}
		if d.LatencyMs.N == 0 || d.LatencyMs.P50 <= 0 || d.LatencyMs.P50 > 20 {
			t.Errorf("%s latency %+v", d.Name, d.LatencyMs)
		}
	}
	// A plain relay passes the caller's RFC 4733 events to the agent.
	if c2a := sum.Directions[0]; c2a.Name != "caller->agent" || c2a.EventsSent == 0 || c2a.Events != c2a.EventsSent {
		t.Errorf("events: %+v", c2a)
	}
	if sum.Window.PacketsForwarded < 2*6*50*19/10 {
		t.Errorf("window forwarded %d packets", sum.Window.PacketsForwarded)
	}
}

// TestLateLog: -late keeps the packets over the threshold, per group, and
// writes them oldest send first with their latency and direction.
func TestLateLog(t *testing.T) {
	callers := &group{dir: "agent->caller"}
	agents := &group{dir: "caller->agent"}
	for _, g := range []*group{callers, agents} {
		g.hist.lateOver = (4 * time.Millisecond).Nanoseconds()
	}
	const t0 = int64(1_800_000_000_000_000_000)
	ms := int64(time.Millisecond)
	callers.hist.noteLate(t0+10*ms, t0+5*ms, 3) // 5 ms: kept
	callers.hist.noteLate(t0+7*ms, t0+4*ms, 4)  // 3 ms: on time
	agents.hist.noteLate(t0+50*ms, t0+1*ms, 9)  // 49 ms: kept, sent first
	path := t.TempDir() + "/late.tsv"
	if err := writeLate(path, &engine{callers: []*group{callers}, agents: []*group{agents}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "arrival_unix_ns\tsent_unix_ns\tlatency_us\tstream\tdirection\n" +
		fmt.Sprintf("%d\t%d\t49000\t9\tcaller->agent\n", t0+50*ms, t0+1*ms) +
		fmt.Sprintf("%d\t%d\t5000\t3\tagent->caller\n", t0+10*ms, t0+5*ms)
	if string(b) != want {
		t.Errorf("late log:\n%s\nwant:\n%s", b, want)
	}
	// Off (the default): nothing is kept.
	var h hist
	h.noteLate(t0+100*ms, t0, 1)
	if len(h.late) != 0 {
		t.Error("a packet was logged without -late")
	}
}

// TestDelayLineReleaseTiming: behind a relay with a two-frame delay line,
// frame q comes out when frame q+2 arrives. A late send of q+2 (the
// sender's pacing) makes q look late by the plain measure; timed from
// q+2's send it shows only the relay's own delay.
func TestDelayLineReleaseTiming(t *testing.T) {
	s := newStream(0, nil, netip.MustParseAddrPort("127.0.0.1:9"), 101, 10)
	s.delayFrames = 2
	var h, th hist
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	send := func(q uint32) int64 {
		late := int64(0)
		if q%10 == 0 {
			late = int64(6 * time.Millisecond) // every tenth frame sent 6 ms late
		}
		return base + int64(q)*int64(frame) + late
	}
	const relay = int64(500 * time.Microsecond)
	p := make([]byte, samples)
	for q := uint32(3); q <= 200; q++ {
		copy(p, audioFrames[0])
		putStamp(p, send(q-2), q-2)
		s.onReceive(send(q)+relay, 0, uint16(q), q*samples, p, &h, &th)
	}
	if th.n != 196 { // every frame out but the first two has its releaser's send time
		t.Fatalf("%d release timings, want 196", th.n)
	}
	if got := th.quantile(1); got > 0.51 {
		t.Errorf("timed from the releasing frame: max %.2f ms, want the relay's 0.5 ms", got)
	}
	if got := h.quantile(0.99); got < 46 {
		t.Errorf("plain latency p99 %.2f ms: want 40 ms + the 6 ms pacing lateness", got)
	}
}
