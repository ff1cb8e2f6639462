package media

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

type recordingMonitor struct {
	mu       sync.Mutex
	received [][]byte
	sent     [][]byte
	dsts     []netip.AddrPort
}

func (m *recordingMonitor) Received(e *Endpoint, p *Packet) {
	m.mu.Lock()
	m.received = append(m.received, append([]byte(nil), p.Raw...))
	m.mu.Unlock()
}

func (m *recordingMonitor) Sent(e *Endpoint, sent SentPacket) {
	raw := sent.Raw
	m.mu.Lock()
	m.sent = append(m.sent, append([]byte(nil), raw...))
	m.dsts = append(m.dsts, e.Remote())
	m.mu.Unlock()
}

func TestMonitorSeesBothDirectionsBeforeRewrite(t *testing.T) {
	far := newPeer(t)
	e, _ := newLoopbackEndpoint(t, far.addr(), audio.CodecPCMU(), nil)
	mon := &recordingMonitor{}
	e.SetMonitor(mon)
	e.SetHandler(Echo())
	in := rtpPacket(0, 500, 8000, 0xABCD, true, make([]byte, 160))
	far.send(e.LocalPort(), in)
	out, ok := far.recv(time.Second)
	if !ok {
		t.Fatal("no echo")
	}
	// Sent runs after the socket write returns, so the peer may read the
	// echo first: give the monitor a moment.
	for i := 0; i < 100; i++ {
		mon.mu.Lock()
		n := len(mon.sent)
		mon.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mon.mu.Lock()
	defer mon.mu.Unlock()
	if len(mon.received) != 1 || string(mon.received[0]) != string(in) {
		t.Fatalf("Received saw %d packets; the first must be the datagram as it arrived (before Echo rewrote it)", len(mon.received))
	}
	if len(mon.sent) != 1 || string(mon.sent[0]) != string(out) || mon.dsts[0] != far.addr() {
		t.Fatalf("Sent saw %d packets, want the echoed datagram to %s", len(mon.sent), far.addr())
	}
	mon.mu.Unlock()
	e.SetMonitor(nil)
	far.send(e.LocalPort(), rtpPacket(0, 501, 8160, 0xABCD, false, make([]byte, 160)))
	far.recv(time.Second)
	time.Sleep(10 * time.Millisecond)
	mon.mu.Lock()
	if len(mon.received) != 1 || len(mon.sent) != 1 {
		t.Fatal("monitor still called after removal")
	}
}
