package media

import (
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// staleRig drives a leg's handleDatagram with synthetic arrival times
// (the poll worker's Packet.arrival) and counts what reaches the Monitor
// and the Handler.
type staleRig struct {
	t                  *testing.T
	e                  *Endpoint
	p                  *Packet
	monitored, handled int
	payload            []byte
}

type countMonitor struct{ n *int }

func (m countMonitor) Received(*Endpoint, *Packet) { *m.n++ }
func (countMonitor) Sent(*Endpoint, SentPacket)    {}

func newStaleRig(t *testing.T, maxAge time.Duration) *staleRig {
	r := &staleRig{t: t, p: new(Packet), payload: make([]byte, 160)}
	r.e = NewEndpoint(EndpointConfig{Conn: newMemConn(0), Codec: audio.CodecPCMU(), EventPT: 101,
		Remote: sdpAddr, MaxStaleness: maxAge})
	t.Cleanup(func() { _ = r.e.Close() })
	r.e.SetMonitor(countMonitor{&r.monitored})
	r.e.SetHandler(HandlerFunc(func(*Endpoint, *Packet) { r.handled++ }))
	return r
}

// send delivers one packet arriving at at (ns, never 0) and reports
// whether it reached the Handler.
func (r *staleRig) send(pt uint8, seq uint16, ts, ssrc uint32, at int64) bool {
	r.t.Helper()
	before, mon := r.handled, r.monitored
	r.p.arrival = at
	r.e.handleDatagram(rtpPacket(pt, seq, ts, ssrc, false, r.payload), sdpAddr, r.p)
	if (r.handled > before) != (r.monitored > mon) {
		r.t.Fatalf("seq %d: the Monitor and the Handler disagree", seq)
	}
	return r.handled > before
}

const (
	ms      = int64(time.Millisecond)
	t0      = int64(1000 * time.Second) // a nanotime far from 0
	frameTS = 160                       // 20 ms of PCMU
)

// A stream on time passes; a burst held up 500 ms (the relay fell behind)
// is dropped and counted; the packets after it pass at once.
func TestStaleBurstDroppedThenRecovers(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	seq, ts := uint16(1), uint32(5000)
	at := t0
	for range 100 { // 2 s on time, with up to 15 ms of network jitter
		if !r.send(0, seq, ts, 7, at+int64(seq%4)*5*ms) {
			t.Fatalf("on-time packet %d dropped", seq)
		}
		seq, ts, at = seq+1, ts+frameTS, at+20*ms
	}
	// The relay stalls for 500 ms: 25 packets queue in the socket and are
	// read together, all at the end of the stall.
	readAt := at + 500*ms
	for i := range 25 {
		got := r.send(0, seq, ts, 7, readAt)
		if age := 500 - 20*i; got != (age <= 200) {
			t.Fatalf("packet %d read %d ms late: delivered %v", i, age, got)
		}
		seq, ts, at = seq+1, ts+frameTS, at+20*ms
	}
	dropped := r.e.Stats().DroppedStale
	if dropped != 15 { // 500..220 ms late
		t.Fatalf("DroppedStale = %d, want 15", dropped)
	}
	if q := r.e.Quality(); q.DroppedStale != dropped {
		t.Fatalf("Quality.DroppedStale = %d, want %d", q.DroppedStale, dropped)
	}
	if r.e.Stats().Dropped() < dropped {
		t.Fatal("Dropped() leaves DroppedStale out")
	}
	// Fresh packets after the burst: at once.
	for range 10 {
		if !r.send(0, seq, ts, 7, at) {
			t.Fatalf("fresh packet %d after the burst dropped", seq)
		}
		seq, ts, at = seq+1, ts+frameTS, at+20*ms
	}
	// A stall longer than the window (3 s, 150 packets queued): the
	// backlog is still measured against the baseline from before it.
	readAt = at + 3000*ms
	delivered := 0
	for range 150 {
		if r.send(0, seq, ts, 7, readAt) {
			delivered++
		}
		seq, ts, at = seq+1, ts+frameTS, at+20*ms
	}
	if delivered != 10 { // the last 200 ms
		t.Fatalf("after a 3 s stall %d of 150 queued packets delivered, want 10", delivered)
	}
	if !r.send(0, seq, ts, 7, at) {
		t.Fatal("fresh packet after the long stall dropped")
	}
}

// Telephone events are never dropped as stale, however late: they repeat
// their start timestamp (RFC 4733 §2.5.1.2), and a digit must never be
// half-lost; nor is a leg without a bound.
func TestStaleEventsAndOff(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	r.send(0, 1, 1000, 7, t0)
	if !r.send(101, 2, 1000, 7, t0+3*int64(time.Second)/2) {
		t.Fatal("a late telephone-event packet was dropped")
	}
	off := newStaleRig(t, 0)
	off.send(0, 1, 1000, 7, t0)
	if !off.send(0, 2, 1160, 7, t0+int64(time.Second)) || off.e.Stats().DroppedStale != 0 {
		t.Fatal("a leg without a bound dropped a late packet")
	}
}

// A new SSRC (and SetRemote) starts a new baseline: a stream whose
// timestamps have nothing to do with the old one's passes.
func TestStaleNewSSRCResets(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	at := t0
	for i := range 10 {
		r.send(0, uint16(i), uint32(i*frameTS), 7, at)
		at += 20 * ms
	}
	// SSRC 9 starts with timestamps 10 s "older" than arrival suggests;
	// two in sequence pass the SSRC probation (RFC 3550 A.1).
	base := uint32(10*frameTS - 80000 + 1<<32)
	r.send(0, 500, base, 9, at)
	for i := 1; i < 10; i++ {
		at += 20 * ms
		if !r.send(0, uint16(500+i), base+uint32(i*frameTS), 9, at) {
			t.Fatalf("packet %d of the new SSRC dropped", i)
		}
	}
	if n := r.e.Stats().DroppedStale; n != 0 {
		t.Fatalf("DroppedStale = %d after an SSRC change", n)
	}
	// SetRemote: the same SSRC, timestamps jumped back 5 s.
	r.e.SetRemote(sdpAddr)
	for i := range 5 {
		at += 20 * ms
		if !r.send(0, uint16(600+i), base-40000+uint32(i*frameTS), 9, at) {
			t.Fatalf("packet %d after SetRemote dropped", i)
		}
	}
}

// The RTP timestamp wraps (uint32) mid-stream, and arrival units wrap
// too: neither makes packets stale.
func TestStaleTimestampWrap(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	ts := uint32(1<<32 - 50*frameTS)
	at := t0
	for i := range 100 {
		if !r.send(0, uint16(i), ts, 7, at) {
			t.Fatalf("packet %d (ts %d) dropped across the wrap", i, ts)
		}
		ts += frameTS
		at += 20 * ms
	}
	// Arrival units wrap every 2^32/8000 s: start just before.
	r2 := newStaleRig(t, 200*time.Millisecond)
	at = int64(uint64(1<<32-25*frameTS) * uint64(time.Second) / 8000)
	for i := range 100 {
		if !r2.send(0, uint16(i), uint32(i*frameTS), 7, at) {
			t.Fatalf("packet %d dropped across the arrival wrap", i)
		}
		at += 20 * ms
	}
	// A late burst right after the wrap is still seen.
	if r2.send(0, 100, 100*frameTS, 7, at+int64(400*time.Millisecond)) {
		t.Fatal("a packet 400 ms late after the wrap was delivered")
	}
}

// A sender whose clock runs 0.1 % slow or fast is never dropped over 60 s:
// the sliding minimum follows it.
func TestStaleClockDrift(t *testing.T) {
	for _, drift := range []float64{+0.001, -0.001, +0.01, +0.05} {
		r := newStaleRig(t, 200*time.Millisecond)
		for i := range 3000 { // 60 s
			// The sender stamps 160 per frame, but sends a frame every
			// 20 ms × (1+drift) of our clock.
			at := t0 + int64(float64(i)*20*float64(ms)*(1+drift))
			if !r.send(0, uint16(i), uint32(i*frameTS), 7, at) {
				t.Fatalf("drift %+.1f%%: packet %d (%.1f s) dropped", drift*100, i, float64(i)*0.02)
			}
		}
	}
}

// The window: a timestamp jump backwards (a peer switching its media
// source under one SSRC) costs at most two buckets, not the call.
func TestStaleOffsetAdopted(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	at := t0
	i := 0
	for ; i < 100; i++ {
		r.send(0, uint16(i), uint32(i*frameTS), 7, at)
		at += 20 * ms
	}
	back := uint32(8000) // 1 s back
	var lastDrop int64
	for ; i < 400; i++ {
		if !r.send(0, uint16(i), uint32(i*frameTS)-back, 7, at) {
			lastDrop = at
		}
		at += 20 * ms
	}
	if lastDrop == 0 {
		t.Fatal("a stream 1 s behind its baseline was not dropped at all")
	}
	if span := time.Duration(lastDrop - (t0 + 100*20*ms)); span > 2*staleBucket {
		t.Fatalf("dropped for %v after the jump, want at most %v", span, 2*staleBucket)
	}
}

// While its worker sheds, a leg drops voice whose queue sojourn is beyond
// half its bound (where shedding ends), not only beyond the bound: a
// relay short of CPU cannot settle with its queues just under the bound.
// Events are never shed, and without a measured sojourn (not shedding)
// nothing is dropped for it.
func TestShedDropsDownToHalfTheBound(t *testing.T) {
	r := newStaleRig(t, 200*time.Millisecond)
	seq, ts, at := uint16(1), uint32(5000), t0
	next := func(pt uint8, sojourn time.Duration) bool {
		t.Helper()
		r.p.sojourn = int64(sojourn)
		ok := r.send(pt, seq, ts, 9, at)
		seq++
		if pt == 0 {
			ts += frameTS
		}
		at += 20 * ms
		return ok
	}
	if !next(0, 0) || !next(0, 0) {
		t.Fatal("voice on time dropped")
	}
	if !next(0, 99*time.Millisecond) {
		t.Fatal("voice 99 ms in the queue (under half the 200 ms bound) dropped")
	}
	if next(0, 101*time.Millisecond) || next(0, 150*time.Millisecond) || next(0, 201*time.Millisecond) {
		t.Fatal("voice over half the bound in the queue of a shedding worker relayed")
	}
	if !next(101, 150*time.Millisecond) {
		t.Fatal("an RFC 4733 event was shed")
	}
	if got := r.e.Stats().DroppedStale; got != 3 {
		t.Fatalf("stale %d, want 3", got)
	}
	if !next(0, 0) {
		t.Fatal("voice after the shed dropped")
	}
}
