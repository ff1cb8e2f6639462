package call

import "sync/atomic"

// This file is the monitors' mixing: linear audio handed from one
// goroutine to another through bounded, non-blocking rings, and summed
// with saturation. G.711 is decoded and encoded by audio.Codec's tables
// (the same the pipeline uses), so nothing here knows a codec.

// ringSamples is a pcmRing's capacity: 256 ms of 8 kHz audio, a power of
// two so indices wrap with a mask.
const ringSamples = 2048

// Prebuffer and latency bounds of a pcmRing's consumer, in samples: it
// starts taking once ringPrime samples wait (60 ms: packets arrive with
// jitter against a 20 ms tick, and a ring read dry every few ticks
// chops the audio — measured under load in the e2e tests, 40 ms was
// not enough), and skips ahead when more than ringMaxLag wait, so a
// producer running fast against the consumer's clock never makes the
// delay grow past 200 ms.
const (
	ringPrime  = 480
	ringMaxLag = 1600
)

// pcmRing hands linear audio from one producer goroutine to one consumer
// goroutine without a lock and without allocating: push never blocks (a
// frame that does not fit is dropped and counted), addTo adds what is
// there into the consumer's buffer. The producer writes only w, the
// consumer only r and primed.
type pcmRing struct {
	w, r    atomic.Uint64
	dropped atomic.Uint64 // samples the producer dropped: the ring was full
	primed  bool          // the consumer's: it has started taking
	buf     [ringSamples]int16
}

// push queues s, or drops all of it when it does not fit; it reports
// whether s was queued. Producer only.
func (q *pcmRing) push(s []int16) bool {
	w, r := q.w.Load(), q.r.Load()
	n := uint64(len(s))
	if n == 0 {
		return true
	}
	if w-r+n > ringSamples {
		q.dropped.Add(n)
		return false
	}
	i := int(w & (ringSamples - 1))
	k := copy(q.buf[i:], s)
	copy(q.buf[:], s[k:])
	q.w.Store(w + n)
	return true
}

// addTo adds up to len(dst) queued samples into dst, saturating, and
// returns how many it took: none until the ring is primed, then all of
// dst while enough wait; on running dry it takes what is left and waits
// to be primed again. Consumer only.
func (q *pcmRing) addTo(dst []int16) int {
	w, r := q.w.Load(), q.r.Load()
	avail := w - r
	if !q.primed {
		if avail < ringPrime {
			return 0
		}
		q.primed = true
	}
	if avail > ringMaxLag {
		r = w - ringPrime // too far behind: drop the oldest
		avail = ringPrime
	}
	n := uint64(len(dst))
	if avail < n {
		n = avail
		q.primed = false
	}
	i := int(r & (ringSamples - 1))
	first := min(int(n), ringSamples-i)
	addSat(dst[:first], q.buf[i:i+first])
	addSat(dst[first:n], q.buf[:int(n)-first])
	q.r.Store(r + n)
	return int(n)
}

// flush drops whatever is queued: what the gate blocks now is not heard
// later either. Consumer only.
func (q *pcmRing) flush() {
	q.r.Store(q.w.Load())
	q.primed = false
}

// addSat adds src into dst sample by sample, clamping to the int16
// range (a sum that overflows is clipped, not wrapped into a click).
func addSat(dst, src []int16) {
	src = src[:len(dst)]
	for i, s := range src {
		dst[i] = int16(min(max(int32(dst[i])+int32(s), -32768), 32767)) // branch-free clamps
	}
}
