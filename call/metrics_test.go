package call_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
)

// metricsRecorder is a call.Metrics that writes each event down.
type metricsRecorder struct {
	mu     sync.Mutex
	events []string
	legs   []media.Quality // LegEnded's, apart: legs end in either order
	legFor []string
}

func (m *metricsRecorder) add(format string, a ...any) {
	m.mu.Lock()
	m.events = append(m.events, fmt.Sprintf(format, a...))
	m.mu.Unlock()
}

func (m *metricsRecorder) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

func (m *metricsRecorder) count(prefix string) int {
	n := 0
	for _, e := range m.list() {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func (m *metricsRecorder) CallStarted(route string) { m.add("started %s", route) }
func (m *metricsRecorder) CallAnswered(route string, d time.Duration) {
	m.add("answered %s %v", route, d > 0 && d < 5*time.Second)
}
func (m *metricsRecorder) CallEnded(route, ending string, d time.Duration) {
	m.add("ended %s %s", route, ending)
}
func (m *metricsRecorder) SecureStarted(flow string) { m.add("secure %s", flow) }
func (m *metricsRecorder) SecureEnded(flow, outcome string, d time.Duration) {
	m.add("secure_ended %s %s %v", flow, outcome, d > 0)
}
func (m *metricsRecorder) Digit(source string)      { m.add("digit %s", source) }
func (m *metricsRecorder) QueueJoined(queue string) { m.add("queued %s", queue) }
func (m *metricsRecorder) QueueLeft(queue, outcome string, wait time.Duration) {
	m.add("unqueued %s %s", queue, outcome)
}
func (m *metricsRecorder) RecordingClosed(st recorder.Stats) { m.add("recording %d", st.Written) }
func (m *metricsRecorder) LegEnded(leg string, q media.Quality) {
	m.mu.Lock()
	m.legs, m.legFor = append(m.legs, q), append(m.legFor, leg)
	m.mu.Unlock()
}

// leg returns the quality LegEnded was last given for leg.
func (m *metricsRecorder) leg(name string) (media.Quality, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.legs) - 1; i >= 0; i-- {
		if m.legFor[i] == name {
			return m.legs[i], true
		}
	}
	return media.Quality{}, false
}

// TestMetricsSeeCallsAndEndings: an echo call the caller hangs up and
// one cloak ends for RTP inactivity reach the hook once each, with the
// route as configured and their endings.
func TestMetricsSeeCallsAndEndings(t *testing.T) {
	h := newHarness(t, opts{inactivity: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Ack(ctx)
	// cloak counts the answer once the ACK is in: a BYE right behind the
	// ACK can beat that (the call then ends unanswered, and is counted so).
	waitFor(t, "first call answered", func() bool { return h.met.count("answered ") == 1 })
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first call ended", func() bool { return h.met.count("ended ") == 1 })

	d2, err := h.invite(ctx, "echo", pcmuOffer(40000)) // nothing sent: inactivity ends it
	if err != nil {
		t.Fatal(err)
	}
	_ = d2.Ack(ctx)
	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("no BYE after RTP inactivity")
	}
	waitFor(t, "second call ended", func() bool { return h.met.count("ended ") == 2 })
	want := []string{"started echo", "answered echo true", "ended echo caller_hangup",
		"started echo", "answered echo true", "ended echo rtp_timeout"}
	if got := h.met.list(); !slices.Equal(got, want) {
		t.Fatalf("metrics events %q, want %q", got, want)
	}
}
