package capture

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by the writers.
var (
	// ErrQueueFull reports a packet dropped because every slot of the
	// writer's queue was in use. It is returned unwrapped so that the hot
	// path does not allocate.
	ErrQueueFull = errors.New("capture: queue full, packet dropped")
	// ErrClosed reports a write to a closed writer.
	ErrClosed = errors.New("capture: writer closed")
	// ErrTooLarge reports a payload larger than the format can carry.
	ErrTooLarge = errors.New("capture: payload too large")
)

// Default queue geometry.
const (
	// DefaultQueueLen is the number of slots when an option leaves it zero.
	DefaultQueueLen = 1024
	// DefaultSlotSize is the payload bytes a slot holds without allocating
	// when an option leaves it zero: enough for any RTP packet and most
	// SIP messages. Larger payloads are copied into a fresh buffer.
	DefaultSlotSize = 2048
)

// Stats counts what a writer did with the packets it was given.
type Stats struct {
	// Written is the number of packets (and markers) written out.
	Written uint64
	// Dropped is the number of packets dropped because the queue was full.
	Dropped uint64
	// Errors is the number of packets lost to write or send errors.
	Errors uint64
}

// recordKind tells the writer goroutine what a record holds.
type recordKind uint8

const (
	kindPacket recordKind = iota
	kindMarker
)

// record is one queued packet: its metadata and a copy of its payload.
type record struct {
	kind     recordKind
	ts       time.Time
	src, dst netip.AddrPort
	proto    Proto
	n        int
	buf      []byte // preallocated, slot size
	big      []byte // set instead of buf for an oversize payload
}

// payload returns the record's copy of the payload.
func (r *record) payload() []byte {
	if r.big != nil {
		return r.big
	}
	return r.buf[:r.n]
}

// queue is a bounded queue of preallocated records between any number of
// producers and one consumer goroutine. Producers never block in put: they
// take a free record or drop. Lock rule: put holds mu for reading only
// while it copies and hands over one record; close takes it for writing.
type queue struct {
	mu     sync.RWMutex
	closed bool
	free   chan *record
	full   chan *record

	written, dropped, errs atomic.Uint64
}

// newQueue preallocates n records of slotSize bytes each.
func newQueue(n, slotSize int) *queue {
	if n <= 0 {
		n = DefaultQueueLen
	}
	if slotSize <= 0 {
		slotSize = DefaultSlotSize
	}
	q := &queue{free: make(chan *record, n), full: make(chan *record, n)}
	backing := make([]byte, n*slotSize)
	for i := range n {
		q.free <- &record{buf: backing[i*slotSize : (i+1)*slotSize : (i+1)*slotSize]}
	}
	return q
}

// put copies payload into a free record and queues it, or drops it. With
// wait set it waits for a free record instead of dropping (for markers,
// which are rare and must not be lost).
func (q *queue) put(kind recordKind, ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte, wait bool) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	var r *record
	if wait {
		r = <-q.free // the consumer keeps recycling records until close
	} else {
		select {
		case r = <-q.free:
		default:
			q.dropped.Add(1)
			return ErrQueueFull
		}
	}
	r.kind, r.ts, r.src, r.dst, r.proto = kind, ts, src, dst, proto
	if len(payload) <= len(r.buf) {
		r.n = copy(r.buf, payload)
		r.big = nil
	} else {
		r.n = len(payload)
		r.big = append([]byte(nil), payload...)
	}
	q.full <- r // never blocks: there are only as many records as capacity
	return nil
}

// recycle returns a record taken from full to the free list.
func (q *queue) recycle(r *record) {
	r.big = nil
	q.free <- r
}

// close stops producers and closes full, so the consumer drains what is
// queued and ends. It reports whether this call closed the queue.
func (q *queue) close() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.closed = true
	close(q.full)
	return true
}

// stats returns the counters.
func (q *queue) stats() Stats {
	return Stats{Written: q.written.Load(), Dropped: q.dropped.Load(), Errors: q.errs.Load()}
}
