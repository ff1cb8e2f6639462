package capture

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives captured packets. PcapWriter, HEPSender and CallCapture
// are sinks. WritePacket must not block and must not keep payload.
type Sink interface {
	WritePacket(ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) error
}

// MarkerWriter is implemented by sinks that can record a marker line in
// their output (PcapWriter: a datagram to MarkerPort). WriteMarker is
// called off the hot path and may wait.
type MarkerWriter interface {
	WriteMarker(ts time.Time, text string) error
}

// MarkerPrefix starts every marker line written into a capture.
const MarkerPrefix = "cloak-marker: "

// maxReasonLen bounds a marker's reason.
const maxReasonLen = 64

// Marker records one stretch of a call during which capture was
// suppressed. Markers carry times and a reason, never call content.
type Marker struct {
	// Start is when capture was suppressed.
	Start time.Time
	// End is when capture resumed; zero while it is still suppressed
	// (a call that ends suppressed is never captured again).
	End time.Time
	// Reason is why, e.g. "secure"; sanitised to letters, spaces, '-' and
	// '_' so it can never carry digits.
	Reason string
}

// CallStats counts what a CallCapture did with a call's packets.
type CallStats struct {
	// Passed is the number of packets handed to the sinks.
	Passed uint64
	// Suppressed is the number of packets dropped while suppressed.
	Suppressed uint64
}

// CallCapture is the capture of one call: the only capture handle the call
// package should give to the SIP and media code of that call. It passes
// packets to its sinks unless capture is suppressed, and records every
// suppression as a Marker (and as a marker line in sinks that are
// MarkerWriters).
//
// Guarantee: once Suppress has returned, no packet given to WritePacket
// reaches any sink until Resume is called; a WritePacket that started
// before Suppress has finished (queued or dropped) by the time Suppress
// returns. Nothing in this type lets a packet past a suppression.
//
// A CallCapture is safe for concurrent use. WritePacket takes only a read
// lock (never held across I/O: sinks do not block) and does not allocate.
type CallCapture struct {
	callID string
	sinks  []Sink

	// mu guards suppressed: WritePacket holds it for reading, Suppress and
	// Resume for writing only to flip the flag.
	mu         sync.RWMutex
	suppressed bool

	// ctl serialises Suppress and Resume and guards markers.
	ctl     sync.Mutex
	markers []Marker

	passed, dropped atomic.Uint64
}

// NewCallCapture returns the capture of the call callID writing to sinks.
// With no sinks it captures nothing but still records markers.
func NewCallCapture(callID string, sinks ...Sink) *CallCapture {
	return &CallCapture{callID: callID, sinks: append([]Sink(nil), sinks...)}
}

// CallID returns the call's id.
func (c *CallCapture) CallID() string { return c.callID }

// WritePacket hands the packet to every sink, or drops and counts it while
// capture is suppressed. It returns the first sink error (for example
// ErrQueueFull); every sink is tried regardless.
func (c *CallCapture) WritePacket(ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.suppressed {
		c.dropped.Add(1)
		return nil
	}
	c.passed.Add(1)
	var first error
	for _, s := range c.sinks {
		if err := s.WritePacket(ts, src, dst, proto, payload); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Suppress stops capture of the call from now on, records a marker
// starting at at with reason, and writes a marker line to sinks that take
// one. It reports false, doing nothing, if capture was already suppressed.
func (c *CallCapture) Suppress(reason string, at time.Time) bool {
	c.ctl.Lock()
	defer c.ctl.Unlock()
	c.mu.Lock()
	if c.suppressed {
		c.mu.Unlock()
		return false
	}
	c.suppressed = true
	c.mu.Unlock()
	reason = sanitiseReason(reason)
	c.markers = append(c.markers, Marker{Start: at, Reason: reason})
	c.writeMarker(at, "capture suppressed ("+reason+")")
	return true
}

// Resume restarts capture of the call, closing the open marker at at. The
// marker line is written before any packet that follows it. It reports
// false, doing nothing, if capture was not suppressed.
func (c *CallCapture) Resume(at time.Time) bool {
	c.ctl.Lock()
	defer c.ctl.Unlock()
	c.mu.RLock()
	suppressed := c.suppressed
	c.mu.RUnlock()
	if !suppressed {
		return false
	}
	c.markers[len(c.markers)-1].End = at
	c.writeMarker(at, "capture resumed")
	c.mu.Lock()
	c.suppressed = false
	c.mu.Unlock()
	return true
}

// Suppressed reports whether capture is suppressed now.
func (c *CallCapture) Suppressed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.suppressed
}

// Markers returns a copy of the call's suppression markers, oldest first.
func (c *CallCapture) Markers() []Marker {
	c.ctl.Lock()
	defer c.ctl.Unlock()
	return append([]Marker(nil), c.markers...)
}

// Stats returns the call's counters.
func (c *CallCapture) Stats() CallStats {
	return CallStats{Passed: c.passed.Load(), Suppressed: c.dropped.Load()}
}

// writeMarker writes one marker line to each MarkerWriter sink. Errors are
// ignored: the marker is also kept in Markers.
func (c *CallCapture) writeMarker(at time.Time, what string) {
	line := MarkerPrefix + what + " call=" + c.callID + " at " + at.UTC().Format(time.RFC3339Nano)
	for _, s := range c.sinks {
		if mw, ok := s.(MarkerWriter); ok {
			_ = mw.WriteMarker(at, line)
		}
	}
}

// sanitiseReason keeps letters, spaces, '-' and '_' (anything else becomes
// '_') and bounds the length; a reason without a letter becomes
// "unspecified".
func sanitiseReason(r string) string {
	if len(r) > maxReasonLen {
		r = r[:maxReasonLen]
	}
	r = strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == ' ', c == '-', c == '_':
			return c
		}
		return '_'
	}, r)
	if !strings.ContainsFunc(r, func(c rune) bool { return c != ' ' && c != '-' && c != '_' }) {
		return "unspecified"
	}
	return r
}
