package media

import "sync"

// totals are the node's RTP counters for metrics: the endpoints started
// and not yet closed, and the sum of those closed. An endpoint joins at
// Start and leaves at Close once its loop and sends have stopped, moving
// its final counters into retired under the same lock, so a sum taken by
// Totals never counts an endpoint twice or not at all, and never goes
// down. Two lock operations per leg, none per packet.
var totals = struct {
	mu      sync.Mutex
	live    map[*Endpoint]struct{}
	retired Stats
}{live: map[*Endpoint]struct{}{}}

func (e *Endpoint) joinTotals() {
	totals.mu.Lock()
	totals.live[e] = struct{}{}
	totals.mu.Unlock()
}

func (e *Endpoint) leaveTotals() {
	totals.mu.Lock()
	if _, ok := totals.live[e]; ok {
		delete(totals.live, e)
		totals.retired.add(e.Stats())
	}
	totals.mu.Unlock()
}

// Totals returns the sum of the counters of every endpoint this process
// started, open or closed; each field only grows. It reads each open
// endpoint's atomics (about 15 loads per leg), for a scrape, not a
// packet.
func Totals() (sum Stats, open int) {
	totals.mu.Lock()
	defer totals.mu.Unlock()
	sum = totals.retired
	for e := range totals.live {
		sum.add(e.Stats())
	}
	return sum, len(totals.live)
}

func (s *Stats) add(o Stats) {
	s.RxPackets += o.RxPackets
	s.RxBytes += o.RxBytes
	s.TxPackets += o.TxPackets
	s.TxBytes += o.TxBytes
	s.TxSuppressed += o.TxSuppressed
	s.TxFill += o.TxFill
	s.DroppedStale += o.DroppedStale
	s.DroppedSRTP += o.DroppedSRTP
	s.TxErrors += o.TxErrors
	s.DroppedMalformed += o.DroppedMalformed
	s.DroppedUnknownSource += o.DroppedUnknownSource
	s.SourceChanges += o.SourceChanges
	s.DroppedSSRC += o.DroppedSSRC
	s.DroppedPT += o.DroppedPT
	s.DroppedDirection += o.DroppedDirection
	s.SSRCChanges += o.SSRCChanges
	s.ReadErrors += o.ReadErrors
	s.HandlerPanics += o.HandlerPanics
}
