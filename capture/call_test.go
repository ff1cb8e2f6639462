package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// secretFill marks payload bytes that must never reach a capture: RTP
// audio and SIP INFO bodies sent while capture is suppressed.
const secretFill = 0xA5

// secureINFO is a SIP INFO whose body stands for keyed digits. The body is
// a marker string, not digits: tests search captures for it.
func secureINFO(callID string) []byte {
	return sipMsg("INFO sip:cloak@192.0.2.1 SIP/2.0", "UDP", callID, "3 INFO", "Signal=SECURE-BODY-MARKER\r\n")
}

func TestCallCaptureSuppressesIntoPcap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.pcap")
	w, err := NewPcapWriter(path, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const callID = "secure-call@192.0.2.10"
	c := NewCallCapture(callID, w)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// Before: the INVITE and two RTP packets.
	mustWrite(t, c, at(0), trunk, cloakUA, ProtoUDP, sipMsg("INVITE sip:q@192.0.2.1 SIP/2.0", "UDP", callID, "1 INVITE", inviteSDP))
	mustWrite(t, c, at(20), rtpA, rtpB, ProtoUDP, rtpPacket(1, 160, 9, 0, 160, 0x01))
	mustWrite(t, c, at(40), rtpA, rtpB, ProtoUDP, rtpPacket(2, 320, 9, 0, 160, 0x01))

	if !c.Suppress("secure", at(50)) {
		t.Fatal("Suppress reported already suppressed")
	}
	if c.Suppress("again", at(55)) {
		t.Error("second Suppress should report false")
	}
	if !c.Suppressed() {
		t.Fatal("not suppressed")
	}
	// During: RTP (with telephone-event payload type too) and SIP INFO.
	for i := range 10 {
		mustWrite(t, c, at(60+20*i), rtpA, rtpB, ProtoUDP, rtpPacket(uint16(3+i), uint32(480+160*i), 9, 0, 160, secretFill))
		mustWrite(t, c, at(61+20*i), rtpA, rtpB, ProtoUDP, rtpPacket(uint16(100+i), 480, 9, 101, 4, secretFill))
	}
	mustWrite(t, c, at(100), trunk, cloakUA, ProtoUDP, secureINFO(callID))

	if !c.Resume(at(300)) {
		t.Fatal("Resume reported not suppressed")
	}
	if c.Resume(at(301)) {
		t.Error("second Resume should report false")
	}
	// After.
	mustWrite(t, c, at(320), rtpA, rtpB, ProtoUDP, rtpPacket(13, 2080, 9, 0, 160, 0x02))
	mustWrite(t, c, at(400), trunk, cloakUA, ProtoUDP, sipMsg("BYE sip:q@192.0.2.1 SIP/2.0", "UDP", callID, "4 BYE", ""))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if st := c.Stats(); st.Passed != 5 || st.Suppressed != 21 {
		t.Errorf("stats %+v, want 5 passed, 21 suppressed", st)
	}
	ms := c.Markers()
	if len(ms) != 1 || !ms[0].Start.Equal(at(50)) || !ms[0].End.Equal(at(300)) || ms[0].Reason != "secure" {
		t.Errorf("markers %+v", ms)
	}

	// Nothing of the suppressed payloads is anywhere in the file's bytes.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, bytes.Repeat([]byte{secretFill}, 4)) || bytes.Contains(raw, []byte("SECURE-BODY-MARKER")) {
		t.Fatal("a suppressed payload reached the pcap")
	}

	// The file holds: 3 packets, suppressed marker, resumed marker, 2 packets.
	recs := readPcap(t, path)
	var kinds []string
	for _, r := range recs {
		if r.dst.Port() == MarkerPort {
			kinds = append(kinds, string(r.payload))
		} else {
			kinds = append(kinds, "packet")
		}
	}
	want := []string{"packet", "packet", "packet",
		"cloak-marker: capture suppressed (secure) call=" + callID + " at 2026-11-21T12:00:00.05Z",
		"cloak-marker: capture resumed call=" + callID + " at 2026-11-21T12:00:00.3Z",
		"packet", "packet"}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	if !recs[3].ts.Equal(at(50)) || !recs[4].ts.Equal(at(300)) {
		t.Errorf("marker times %v, %v", recs[3].ts, recs[4].ts)
	}

	// tshark reads the marker lines back.
	lines := tshark(t, path, "-Y", fmt.Sprintf("udp.port==%d", MarkerPort), "-T", "fields", "-e", "udp.payload")
	if len(lines) != 2 || !strings.HasPrefix(hexToString(t, lines[0]), MarkerPrefix+"capture suppressed (secure)") {
		t.Errorf("tshark markers: %q", lines)
	}
}

func hexToString(t *testing.T, h string) string {
	t.Helper()
	h = strings.ReplaceAll(h, ":", "")
	b := make([]byte, len(h)/2)
	for i := range b {
		if _, err := fmt.Sscanf(h[2*i:2*i+2], "%02x", &b[i]); err != nil {
			t.Fatalf("hex %q: %v", h, err)
		}
	}
	return string(b)
}

func mustWrite(t *testing.T, s Sink, ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) {
	t.Helper()
	if err := s.WritePacket(ts, src, dst, proto, payload); err != nil {
		t.Fatal(err)
	}
}

// recordingSink keeps what it is given.
type recordingSink struct {
	mu      sync.Mutex
	packets [][]byte
	markers []string
	err     error
}

func (r *recordingSink) WritePacket(_ time.Time, _, _ netip.AddrPort, _ Proto, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets = append(r.packets, append([]byte(nil), p...))
	return r.err
}

func (r *recordingSink) WriteMarker(_ time.Time, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.markers = append(r.markers, text)
	r.packets = append(r.packets, []byte(text))
	return nil
}

// plainSink is a Sink that is not a MarkerWriter (like HEPSender).
type plainSink struct{ n atomic.Int64 }

func (p *plainSink) WritePacket(time.Time, netip.AddrPort, netip.AddrPort, Proto, []byte) error {
	p.n.Add(1)
	return nil
}

// TestCallCaptureSuppressUnderLoad checks the ordering guarantee with
// writers running throughout: in the sink's stream nothing sits between
// the suppressed and resumed markers, and nothing written after Suppress
// returned appears at all.
func TestCallCaptureSuppressUnderLoad(t *testing.T) {
	rec := &recordingSink{}
	plain := &plainSink{}
	c := NewCallCapture("load@h", rec, plain)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			p := rtpPacket(0, 0, uint32(g), 0, 20, 0x01)
			for !stop.Load() {
				_ = c.WritePacket(t0, rtpA, rtpB, ProtoUDP, p)
			}
		})
	}
	for round := range 20 {
		time.Sleep(time.Millisecond)
		c.Suppress("secure", t0)
		// Written strictly after Suppress returned: must be dropped.
		_ = c.WritePacket(t0, rtpA, rtpB, ProtoUDP, rtpPacket(0, 0, 0, 0, 20, secretFill))
		time.Sleep(time.Millisecond)
		c.Resume(t0)
		_ = round
	}
	stop.Store(true)
	wg.Wait()

	inside := false
	for i, p := range rec.packets {
		s := string(p)
		switch {
		case strings.HasPrefix(s, MarkerPrefix+"capture suppressed"):
			inside = true
		case strings.HasPrefix(s, MarkerPrefix+"capture resumed"):
			inside = false
		case inside:
			t.Fatalf("packet %d between the markers", i)
		case bytes.Contains(p, bytes.Repeat([]byte{secretFill}, 4)):
			t.Fatalf("packet %d was written after Suppress returned", i)
		}
	}
	if len(rec.markers) != 40 || len(c.Markers()) != 20 {
		t.Fatalf("%d marker lines, %d markers", len(rec.markers), len(c.Markers()))
	}
	st := c.Stats()
	if st.Suppressed < 20 {
		t.Errorf("suppressed %d, want at least the 20 probes", st.Suppressed)
	}
	if uint64(plain.n.Load()) != st.Passed || uint64(len(rec.packets)-40) != st.Passed {
		t.Errorf("sinks saw %d and %d packets, stats say %d passed", plain.n.Load(), len(rec.packets)-40, st.Passed)
	}
}

func TestCallCaptureSinkErrors(t *testing.T) {
	bad := &recordingSink{err: ErrQueueFull}
	good := &plainSink{}
	c := NewCallCapture("err@h", bad, good)
	if err := c.WritePacket(t0, rtpA, rtpB, ProtoUDP, []byte("x")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err %v, want ErrQueueFull", err)
	}
	if good.n.Load() != 1 {
		t.Fatal("the second sink was skipped after the first failed")
	}
}

func TestCallCaptureOpenMarkerAndNoSinks(t *testing.T) {
	c := NewCallCapture("none@h")
	if err := c.WritePacket(t0, rtpA, rtpB, ProtoUDP, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.Suppress("", t0)
	ms := c.Markers()
	if len(ms) != 1 || !ms[0].End.IsZero() || ms[0].Reason != "unspecified" {
		t.Fatalf("markers %+v", ms)
	}
	ms[0].Reason = "changed"
	if c.Markers()[0].Reason != "unspecified" {
		t.Fatal("Markers returned shared storage")
	}
	if c.CallID() != "none@h" {
		t.Fatal("call id")
	}
}

func TestSanitiseReason(t *testing.T) {
	for in, want := range map[string]string{
		"secure":                 "secure",
		"secure payment":         "secure payment",
		"pin-entry_2":            "pin-entry__",
		"card 4111":              "card ____",
		"":                       "unspecified",
		"1234":                   "unspecified",
		"line\nbreak":            "line_break",
		strings.Repeat("a", 100): strings.Repeat("a", maxReasonLen),
	} {
		got := sanitiseReason(in)
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "0123456789") {
			t.Errorf("%q: reason keeps digits: %q", in, got)
		}
	}
}

func TestCallCaptureWritePacketDoesNotAllocate(t *testing.T) {
	w, err := NewPcapWriter(filepath.Join(t.TempDir(), "a.pcap"), PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := NewCallCapture("alloc@h", w)
	p := rtpPacket(1, 160, 1, 0, 160, 0x01)
	for _, suppressed := range []bool{false, true} {
		if suppressed {
			c.Suppress("secure", t0)
		}
		if n := testing.AllocsPerRun(1000, func() {
			_ = c.WritePacket(t0, rtpA, rtpB, ProtoUDP, p)
		}); n != 0 {
			t.Fatalf("suppressed=%v: %v allocations per packet, want 0", suppressed, n)
		}
	}
}

func BenchmarkCallCaptureWritePacket(b *testing.B) {
	for _, suppressed := range []bool{false, true} {
		b.Run(fmt.Sprintf("suppressed=%v", suppressed), func(b *testing.B) {
			w, err := NewPcapWriter(filepath.Join(b.TempDir(), "bench.pcap"), PcapOptions{})
			if err != nil {
				b.Fatal(err)
			}
			c := NewCallCapture("bench@h", w)
			if suppressed {
				c.Suppress("secure", t0)
			}
			p := rtpPacket(1, 160, 1, 0, 160, 0x01)
			b.ReportAllocs()
			for b.Loop() {
				_ = c.WritePacket(t0, rtpA, rtpB, ProtoUDP, p)
			}
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkHEPSenderWritePacket(b *testing.B) {
	s, err := NewHEPSender(collector(b).LocalAddr().String(), HEPOptions{})
	if err != nil {
		b.Fatal(err)
	}
	msg := sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "UDP", "bench@192.0.2.10", "1 INVITE", inviteSDP)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.WritePacket(t0, trunk, cloakUA, ProtoUDP, msg)
	}
	b.StopTimer()
	_ = s.Close()
}
