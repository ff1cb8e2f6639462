package media

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/sdes"
)

// BenchmarkHandleDatagramLegs is BenchmarkHandleDatagram[SRTP] over many
// legs at once, one packet to each in turn, as a relay carrying 500 calls
// (1,000 legs) meets them: each leg's state, and its SRTP contexts, is
// cold in the caches when its packet comes, which the one-leg benchmarks
// never see. Plain, then each suite, side by side in one run; one op is
// one packet received (unprotected), passed to Echo and sent back
// (protected). cpu-ns/op is the process's CPU time per op (getrusage),
// which a shared machine's other processes do not inflate as they do
// the wall-clock ns/op; read the ratios within one run.
//
// The peer's packets are protected ahead, 32k at a time (the replay
// window wants fresh sequence numbers); then every leg is keyed afresh
// with the timer stopped. pion makes each SSRC's state and HMAC's saved
// state on a context's first packet, which shows as a few B/op.
//
//	go test -run '^$' -bench 'HandleDatagramLegs' -benchmem -benchtime 200000x ./media/
func BenchmarkHandleDatagramLegs(b *testing.B) {
	variants := append([]sdes.Suite{sdes.SuiteNone}, sdes.Suites...)
	for _, legs := range []int{1, 1000} {
		for _, suite := range variants {
			name := "plain"
			if suite != sdes.SuiteNone {
				name = suite.String()
			}
			b.Run(fmt.Sprintf("legs=%d/%s", legs, name), func(b *testing.B) { benchLegs(b, legs, suite, 0) })
		}
	}
}

// BenchmarkShedLegs is BenchmarkHandleDatagramLegs at 1,000 legs while
// the poll worker sheds: every datagram waited in its queue beyond the
// leg's bound (rtp.max_staleness) and is dropped as stale. On an SRTP leg
// that drop comes before authentication (shedBeforeAuth), so shedding
// costs what it costs on a plain leg.
//
//	go test -run '^$' -bench 'ShedLegs' -benchmem -benchtime 200000x ./media/
func BenchmarkShedLegs(b *testing.B) {
	for _, suite := range append([]sdes.Suite{sdes.SuiteNone}, sdes.Suites...) {
		name := "plain"
		if suite != sdes.SuiteNone {
			name = suite.String()
		}
		b.Run(name, func(b *testing.B) { benchLegs(b, 1000, suite, int64(2*DefaultMaxStaleness)) })
	}
}

// benchLeg is one leg of benchLegs: its endpoint and its peer's packets,
// protected beforehand (the peer's cost is not ours).
type benchLeg struct {
	e    *Endpoint
	pkts [][]byte
}

// benchLegs feeds n legs of suite (SuiteNone: plain) in turn; sojourn is
// every datagram's queue wait as a shedding poll worker measures it (0:
// not shedding).
func benchLegs(b *testing.B, n int, suite sdes.Suite, sojourn int64) {
	perLeg := max(64, 1<<15/n) // packets made ahead per leg; then the legs are keyed afresh
	legs := make([]benchLeg, n)
	base := uint32(0) // packets per leg so far
	rekey := func() {
		for i := range legs {
			l := &legs[i]
			if l.e == nil {
				c := newMemConn(0)
				c.copyOut = false
				l.e = NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: sdpAddr,
					MaxStaleness: DefaultMaxStaleness})
				l.e.SetHandler(Echo())
				l.pkts = make([][]byte, perLeg)
			}
			var peer *srtpPeer
			if suite != sdes.SuiteNone {
				ours, _ := sdes.NewKey(suite)
				peerKey, _ := sdes.NewKey(suite)
				_ = l.e.SetSRTP(nil, nil)
				if err := l.e.SetSRTP(ours, peerKey); err != nil {
					b.Fatal(err)
				}
				peer = newSRTPPeer(b, peerKey, ours)
			}
			for j := range l.pkts {
				k := base + uint32(j) + 1
				p := rtpPacket(0, uint16(k), 160*k, 0xABCDEF01+uint32(i), false, benchPacket()[12:])
				if peer != nil {
					p = peer.protect(b, p)
				}
				l.pkts[j] = p
			}
		}
		base += uint32(perLeg)
	}
	rekey()
	runtime.GC()
	defer func() {
		for _, l := range legs {
			l.e.Close()
		}
	}()
	buf := make([]byte, readBufSize)
	p := new(Packet)
	p.arrival = nanotime()
	leg, j := 0, 0
	var cpu, paused time.Duration // process CPU: the whole loop, and the re-keying inside it
	b.ReportAllocs()
	cpu -= processCPU()
	for b.Loop() {
		if leg == n {
			leg = 0
			j++
			p.arrival += int64(20 * time.Millisecond)
			if j == perLeg {
				j = 0
				b.StopTimer()
				paused -= processCPU()
				rekey()
				runtime.GC() // the re-keying's garbage is not the loop's to collect
				paused += processCPU()
				b.StartTimer()
			}
		}
		l := &legs[leg]
		leg++
		p.sojourn = sojourn
		l.e.handleDatagram(buf[:copy(buf, l.pkts[j])], sdpAddr, p)
	}
	cpu += processCPU()
	b.ReportMetric(float64(cpu-paused)/float64(b.N), "cpu-ns/op")
	for _, l := range legs {
		s := l.e.Stats()
		if sojourn > 0 {
			if s.Dropped() != s.DroppedStale || s.TxPackets != 0 {
				b.Fatalf("stats %+v", s)
			}
		} else if s.Dropped() != 0 || s.TxPackets == 0 {
			b.Fatalf("stats %+v", s)
		}
	}
}

// processCPU is the CPU time the process has used (user and system, every
// thread: the garbage collector's too). On a shared machine a wall-clock
// ns/op counts the time other processes held the core; this does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
