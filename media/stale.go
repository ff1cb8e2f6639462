package media

import (
	"sync/atomic"
	"time"
)

// Bounded staleness (EndpointConfig.MaxStaleness).
//
// A relay that fell behind (a CPU stall, an overload burst) finds each
// leg's socket buffer holding up to a few seconds of voice. Relayed as
// it is read, that backlog reaches the far end in a burst, whose jitter
// buffer then plays everything that late: the call stays seconds behind
// long after the load is gone. So audio that is older than a bound when
// the reader gets it is dropped (Stats.DroppedStale), never queued, and
// the relay is back to real time as soon as it has read the backlog.
//
// How old a packet is comes from its RTP timestamp, not from the socket
// (no timestamp per datagram is asked of the kernel: no extra system
// call): its transit (RFC 3550 A.8: arrival less timestamp, in timestamp
// units, Transit) against the least transit of the stream over the last
// few seconds, the baseline. A packet that arrived as early as the
// stream's fastest recent one has staleness 0; one that sat in a queue
// for 500 ms has 500 ms. The network's own delay is in every transit and
// so in the baseline: only delay beyond the best recent one counts.
//
// The baseline is the minimum over two buckets of staleBucket each (so
// over the last 1 to 2 s), which lets it follow a sender whose clock runs
// slow (transits grow by the drift; the baseline lags by at most 2 s of
// it, 100 ms for a clock 5 % slow) or fast (transits shrink: each is a
// new minimum) and a stream whose timestamps jump (a new offset is taken
// once it has filled a bucket: at most 2 s after a jump backwards are
// dropped as stale; a sender that stops its timestamps during a silence,
// against RFC 3550 §5.1, is such a jump). A stall of the relay, however
// long, is measured against the minimum from before it: the rotation at
// the first packet read after it keeps the earlier bucket's minimum. It starts
// afresh with the SSRC, SetRemote and a clock-rate change; the first
// packet after that passes. Only audio of the negotiated codec is
// checked: RFC 4733 events repeat their start timestamp for the whole
// event and comfort noise is not relayed, so neither is ever dropped here.
//
// Per packet this is a division (shared with the jitter estimate), a few
// comparisons and no clock read a poll worker has not made for its batch.

// # Queue sojourn
//
// The baseline above measures lateness against the stream's own recent
// best, so a backlog that grows slowly — a relay a little short of CPU for
// minutes — moves the baseline with it and is never judged stale: the
// socket queues grow to seconds (issue 20's 2 s at 1,000 calls) while
// every packet looks as late as its neighbours. What is late then is the
// time each datagram sat in its socket's receive queue, which only the
// kernel knows. A poll worker already samples it (the read lag,
// readlag_linux.go) every lagEvery; when a sample is beyond the sampled
// leg's bound, the worker sheds, in the way CoDel judges a queue by its
// packets' sojourn: until a sample falls under half the bound, every
// datagram it reads has its own sojourn read from the kernel (one more
// ioctl(2) per packet, only while behind) and voice that waited longer
// than half the leg's bound (shedAge) is dropped like any stale packet —
// counted, never seen by a Monitor or Handler, never an RFC 4733 event or
// comfort noise — and the socket's next datagram is read at once, up to
// shedDrain, so a backlog is gone in a batch or two rather than one
// datagram per batch. Dropping costs a read; relaying would have cost a
// read, the pipeline and a send: shedding lowers the load that caused it.
// While any worker sheds, legs do not fill gaps in forwarded media
// (fill.go): the gaps are the relay's, and filler would add sends to a
// relay already behind.
//
// Shedding drops down to the level at which it ends, not to the one at
// which it began. When it dropped only voice beyond the bound, a relay
// short of CPU could settle there: its queues held just under the bound,
// every datagram paid the extra ioctl(2), so it stayed short, and no
// sample ever fell under half the bound to end the episode. The bench
// saw it once in ten rounds: 13 s at 100 % of a core with a read lag of
// 197–199 ms, at 515 calls whose steady load was 75 % of it
// (docs/PERFORMANCE.md, "Session 15").

// shedAge is the queue sojourn beyond which a shedding worker drops a
// leg's voice: half its staleness bound, where the worker stops shedding
// (pollWorker.updateShed). 0: the leg has no bound.
func (e *Endpoint) shedAge() int64 { return int64(e.maxStale) / 2 }

// shedDrain is how many stale datagrams in a row a shedding worker drops
// from one socket before it moves on to the batch's next: 0.5 s of 20 ms
// voice.
const shedDrain = 25

// shedWorkers counts the poll workers shedding now (any Poller).
var shedWorkers atomic.Int32

// Shedding reports whether some poll worker is shedding stale voice now:
// the relay is behind (see "Queue sojourn").
func Shedding() bool { return shedWorkers.Load() > 0 }

// staleBucket is the span of one of the baseline's two buckets.
const staleBucket = time.Second

// DefaultMaxStaleness is the bound cloak's configuration uses by default
// (rtp.max_staleness): with a network delay already in the baseline,
// 200 ms of queueing is beyond what a jitter buffer absorbs.
const DefaultMaxStaleness = 200 * time.Millisecond

// staleWindow is a stream's sliding-minimum transit, owned by the reader.
// The zero value starts with the next packet.
type staleWindow struct {
	rotateAt  int64  // nanotime when cur becomes prev
	cur, prev uint32 // least transit in the current and previous bucket
	bound     uint32 // the bound in timestamp units
	rate      uint32 // the clock rate the transits are in
	started   bool
}

// late feeds one audio packet's transit, received at arrival (nanotime),
// and reports whether it is more than maxAge behind the baseline. rate is
// the stream's clock rate (not 0), maxAge positive.
func (w *staleWindow) late(transit uint32, arrival int64, rate uint32, maxAge time.Duration) bool {
	if !w.started || rate != w.rate {
		*w = staleWindow{rotateAt: arrival + int64(staleBucket), cur: transit, prev: transit,
			bound: uint32(min(int64(maxAge)*int64(rate)/int64(time.Second), 1<<30)), rate: rate, started: true}
		return false
	}
	if arrival >= w.rotateAt {
		// However long since the last rotation (a stall of the relay
		// too), the previous bucket's minimum stays for one more bucket:
		// a backlog read after a stall meets the baseline from before it.
		w.prev = w.cur
		w.cur = transit
		w.rotateAt = arrival + int64(staleBucket)
	} else if int32(transit-w.cur) < 0 {
		w.cur = transit
	}
	base := w.prev
	if int32(w.cur-base) < 0 {
		base = w.cur
	}
	return int32(transit-base) > int32(w.bound)
}
