package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sample is one packet of the fixture call.
type sample struct {
	src, dst netip.AddrPort
	proto    Proto
	payload  []byte
}

// fixtureCall is a UDP call, a TCP call, an IPv6 OPTIONS and RTP both ways.
func fixtureCall() []sample {
	tcpTrunk := netip.MustParseAddrPort("192.0.2.20:41234")
	return []sample{
		{trunk, cloakUA, ProtoUDP, sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "UDP", "udp-call@192.0.2.10", "1 INVITE", inviteSDP)},
		{cloakUA, trunk, ProtoUDP, sipMsg("SIP/2.0 200 OK", "UDP", "udp-call@192.0.2.10", "1 INVITE", inviteSDP)},
		{tcpTrunk, cloakUA, ProtoTCP, sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "TCP", "tcp-call@192.0.2.20", "1 INVITE", inviteSDP)},
		{cloakUA, tcpTrunk, ProtoTCP, sipMsg("SIP/2.0 200 OK", "TCP", "tcp-call@192.0.2.20", "1 INVITE", inviteSDP)},
		{tcpTrunk, cloakUA, ProtoTCP, sipMsg("ACK sip:queue@192.0.2.1 SIP/2.0", "TCP", "tcp-call@192.0.2.20", "1 ACK", "")},
		{trunk6, cloak6, ProtoUDP, sipMsg("OPTIONS sip:cloak@[2001:db8::1] SIP/2.0", "UDP", "ping@2001:db8::10", "7 OPTIONS", "")},
		{rtpA, rtpB, ProtoUDP, rtpPacket(100, 8000, 0x11223344, 0, 160, 0xff)},
		{rtpB, rtpA, ProtoUDP, rtpPacket(500, 16000, 0x55667788, 0, 160, 0xff)},
		{rtpA, rtpB, ProtoUDP, rtpPacket(101, 8160, 0x11223344, 0, 160, 0xff)},
		{rtpB, rtpA, ProtoUDP, rtpPacket(501, 16160, 0x55667788, 0, 160, 0xff)},
	}
}

// writeFixture writes samples 20 ms apart from t0 and closes the writer.
func writeFixture(t *testing.T, path string, samples []sample) {
	t.Helper()
	w, err := NewPcapWriter(path, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if err := w.WritePacket(t0.Add(time.Duration(i)*20*time.Millisecond), s.src, s.dst, s.proto, s.payload); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Written != uint64(len(samples)) || st.Dropped != 0 || st.Errors != 0 {
		t.Fatalf("stats %+v, want %d written", st, len(samples))
	}
}

func TestPcapWriterRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.pcap")
	samples := fixtureCall()
	writeFixture(t, path, samples)
	recs := readPcap(t, path)
	if len(recs) != len(samples) {
		t.Fatalf("%d records, want %d", len(recs), len(samples))
	}
	for i, r := range recs {
		s := samples[i]
		if r.src != s.src || r.dst != s.dst || r.proto != s.proto {
			t.Errorf("record %d: %v %v→%v, want %v %v→%v", i, r.proto, r.src, r.dst, s.proto, s.src, s.dst)
		}
		if !bytes.Equal(r.payload, s.payload) {
			t.Errorf("record %d: payload differs", i)
		}
		if want := t0.Add(time.Duration(i) * 20 * time.Millisecond); !r.ts.Equal(want) {
			t.Errorf("record %d: time %v, want %v", i, r.ts, want)
		}
	}
	// TCP: sequence numbers continue per direction, acks follow the peer.
	inv, ok200, ack := recs[2].tcp, recs[3].tcp, recs[4].tcp
	if !inv.PSH || !inv.ACK || inv.SYN || inv.FIN {
		t.Errorf("TCP flags of the INVITE: %+v", inv)
	}
	if inv.Seq != tcpInitialSeq || inv.Ack != tcpInitialSeq {
		t.Errorf("INVITE seq/ack %d/%d", inv.Seq, inv.Ack)
	}
	if ok200.Seq != tcpInitialSeq || ok200.Ack != tcpInitialSeq+uint32(len(samples[2].payload)) {
		t.Errorf("200 seq/ack %d/%d", ok200.Seq, ok200.Ack)
	}
	if ack.Seq != tcpInitialSeq+uint32(len(samples[2].payload)) || ack.Ack != tcpInitialSeq+uint32(len(samples[3].payload)) {
		t.Errorf("ACK seq/ack %d/%d", ack.Seq, ack.Ack)
	}
}

func TestPcapWriterTsharkSIP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.pcap")
	writeFixture(t, path, fixtureCall())
	got := tshark(t, path, "-Y", "sip", "-T", "fields", "-e", "ip.proto", "-e", "ipv6.nxt", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID")
	want := []string{
		"17\t\tINVITE\t\tudp-call@192.0.2.10",
		"17\t\t\t200\tudp-call@192.0.2.10",
		"6\t\tINVITE\t\ttcp-call@192.0.2.20",
		"6\t\t\t200\ttcp-call@192.0.2.20",
		"6\t\tACK\t\ttcp-call@192.0.2.20",
		"\t17\tOPTIONS\t\tping@2001:db8::10",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tshark SIP:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The SDP of both INVITEs and both 200s is decoded too.
	sdp := tshark(t, path, "-Y", "sdp", "-T", "fields", "-e", "sdp.media.port")
	if !slices.Equal(sdp, []string{"40000", "40000", "40000", "40000"}) {
		t.Errorf("tshark SDP media ports: %q", sdp)
	}
}

func TestPcapWriterTsharkRTP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.pcap")
	writeFixture(t, path, fixtureCall())
	got := tshark(t, path, "-d", "udp.port==30000,rtp", "-Y", "rtp", "-T", "fields", "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.p_type")
	want := []string{
		"0x11223344\t100\t0",
		"0x55667788\t500\t0",
		"0x11223344\t101\t0",
		"0x55667788\t501\t0",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tshark RTP:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPcapWriterTsharkChecksumsAndTCP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.pcap")
	samples := fixtureCall()
	writeFixture(t, path, samples)
	check := []string{"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"}
	// Checksum status 1 is "Good" in Wireshark.
	got := tshark(t, path, append(check, "-T", "fields", "-e", "ip.checksum.status", "-e", "udp.checksum.status", "-e", "tcp.checksum.status")...)
	if len(got) != len(samples) {
		t.Fatalf("%d frames, want %d", len(got), len(samples))
	}
	for i, line := range got {
		f := strings.Split(line, "\t")
		if i == 5 { // IPv6 has no header checksum
			f = f[1:]
		}
		for _, v := range f {
			if v != "" && v != "1" {
				t.Errorf("frame %d checksum status %q (ip, udp, tcp), want good", i+1, line)
			}
		}
	}
	if bad := tshark(t, path, append(check, "-Y", "_ws.expert.severity >= warning || tcp.analysis.flags || _ws.malformed")...); len(bad) != 0 {
		t.Errorf("tshark expert warnings:\n%s", strings.Join(bad, "\n"))
	}
}

func TestPcapWriterRenamesOnClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "call.pcap")
	w, err := NewPcapWriter(path, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(t0, trunk, cloakUA, ProtoUDP, []byte("OPTIONS")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("final file exists before Close: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".part") || !strings.HasPrefix(entries[0].Name(), ".") {
		t.Fatalf("while open, dir holds %v, want one hidden .part file", entries)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "call.pcap" {
		t.Fatalf("after Close, dir holds %v", entries)
	}
	if len(readPcap(t, path)) != 1 {
		t.Fatal("want one record")
	}
	if err := w.WritePacket(t0, trunk, cloakUA, ProtoUDP, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func TestNewPcapWriterBadDir(t *testing.T) {
	_, err := NewPcapWriter(filepath.Join(t.TempDir(), "missing", "call.pcap"), PcapOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want ErrNotExist wrapped", err)
	}
}

func TestPcapWriterLargeAndTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.pcap")
	w, err := NewPcapWriter(path, PcapOptions{SlotSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	big := sipMsg("INVITE sip:queue@192.0.2.1 SIP/2.0", "TCP", "big@192.0.2.10", "1 INVITE", strings.Repeat("a=x-filler:0\r\n", 400))
	if err := w.WritePacket(t0, trunk, cloakUA, ProtoTCP, big); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(t0, trunk, cloakUA, ProtoUDP, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize payload: %v, want ErrTooLarge", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readPcap(t, path)
	if len(recs) != 1 || !bytes.Equal(recs[0].payload, big) {
		t.Fatalf("large payload not written whole")
	}
}

func TestPcapWriterMixedFamilies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mixed.pcap")
	w, err := NewPcapWriter(path, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.10]:5060")
	_ = w.WritePacket(t0, mapped, cloakUA, ProtoUDP, []byte("a"))  // mapped → IPv4
	_ = w.WritePacket(t0, trunk, cloak6, ProtoUDP, []byte("b"))    // mixed → IPv6
	_ = w.WritePacket(t0, trunk, cloakUA, Proto(132), []byte("c")) // unknown → UDP
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readPcap(t, path)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0].src != trunk {
		t.Errorf("mapped source written as %v", recs[0].src)
	}
	if want := netip.MustParseAddrPort("[::ffff:192.0.2.10]:5060"); recs[1].src != want || recs[1].dst != cloak6 {
		t.Errorf("mixed family written as %v→%v", recs[1].src, recs[1].dst)
	}
	if recs[2].proto != ProtoUDP {
		t.Errorf("unknown proto written as %v", recs[2].proto)
	}
}

func TestPcapWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.pcap")
	w, err := NewPcapWriter(path, PcapOptions{QueueLen: 64})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			src := netip.AddrPortFrom(rtpA.Addr(), uint16(40000+2*g))
			p := rtpPacket(0, 0, uint32(g), 0, 160, byte(g))
			for i := range each {
				err := w.WritePacket(t0.Add(time.Duration(i)*time.Millisecond), src, rtpB, ProtoUDP, p)
				if err != nil && !errors.Is(err, ErrQueueFull) {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Written+st.Dropped != goroutines*each || st.Errors != 0 {
		t.Fatalf("stats %+v do not add up to %d", st, goroutines*each)
	}
	if n := len(readPcap(t, path)); uint64(n) != st.Written {
		t.Fatalf("%d records in file, stats say %d written", n, st.Written)
	}
	t.Logf("written %d, dropped %d", st.Written, st.Dropped)
}

func TestQueueDropsWhenFull(t *testing.T) {
	q := newQueue(2, 16)
	for i := range 2 {
		if err := q.put(kindPacket, t0, trunk, cloakUA, ProtoUDP, []byte{byte(i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.put(kindPacket, t0, trunk, cloakUA, ProtoUDP, []byte{2}, false); err != ErrQueueFull {
		t.Fatalf("third put: %v, want ErrQueueFull", err)
	}
	if st := q.stats(); st.Dropped != 1 {
		t.Fatalf("dropped %d, want 1", st.Dropped)
	}
	r := <-q.full
	if r.payload()[0] != 0 {
		t.Fatalf("first record holds %v", r.payload())
	}
	q.recycle(r)
	if err := q.put(kindPacket, t0, trunk, cloakUA, ProtoUDP, []byte{3}, false); err != nil {
		t.Fatalf("put after recycle: %v", err)
	}
	if !q.close() || q.close() {
		t.Fatal("close should report true once")
	}
	if err := q.put(kindPacket, t0, trunk, cloakUA, ProtoUDP, []byte{4}, false); err != ErrClosed {
		t.Fatalf("put after close: %v", err)
	}
}

func TestPcapWriterWritePacketDoesNotAllocate(t *testing.T) {
	w, err := NewPcapWriter(filepath.Join(t.TempDir(), "a.pcap"), PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := rtpPacket(1, 160, 1, 0, 160, 0xff)
	if n := testing.AllocsPerRun(1000, func() {
		_ = w.WritePacket(t0, rtpA, rtpB, ProtoUDP, p)
	}); n != 0 {
		t.Fatalf("%v allocations per packet, want 0", n)
	}
}

func TestProtoString(t *testing.T) {
	for p, want := range map[Proto]string{ProtoUDP: "udp", ProtoTCP: "tcp", Proto(1): "proto(1)"} {
		if got := fmt.Sprint(p); got != want {
			t.Errorf("%d: %q, want %q", uint8(p), got, want)
		}
	}
}

// BenchmarkPcapWriterWritePacket measures the caller's cost. "burst"
// calls in a tight loop, far faster than any disk, so most calls take the
// drop path; "sustained" retries a dropped packet, so it measures the
// writer goroutine's end-to-end rate (header synthesis, checksums, file
// writes) on the same cores.
func BenchmarkPcapWriterWritePacket(b *testing.B) {
	for _, sustained := range []bool{false, true} {
		name := "burst"
		if sustained {
			name = "sustained"
		}
		b.Run(name, func(b *testing.B) {
			w, err := NewPcapWriter(filepath.Join(b.TempDir(), "bench.pcap"), PcapOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p := rtpPacket(1, 160, 1, 0, 160, 0xff)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				for w.WritePacket(t0, rtpA, rtpB, ProtoUDP, p) == ErrQueueFull && sustained {
					runtime.Gosched()
				}
			}
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			st := w.Stats()
			b.ReportMetric(float64(st.Written), "written")
			if !sustained {
				b.ReportMetric(float64(st.Dropped)/float64(st.Written+st.Dropped)*100, "%dropped")
			}
		})
	}
}
