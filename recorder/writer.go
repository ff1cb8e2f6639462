package recorder

import (
	"sync"
	"sync/atomic"
	"time"
)

// drainInterval is how often the writer drains each recording. Every turn
// costs a write system call and the frames a recording has queued cost
// memory until its turn, so the interval trades one for the other: at
// 200 ms a recording of both legs queues up to 20 frames (7 KiB) and each
// turn writes 6.4 KB of WAV data, five writes a second. The queue
// (DefaultQueueFrames, 0.64 s of both legs) leaves three turns of slack.
const drainInterval = 200 * time.Millisecond

// phaseTick is the writer's tick: each recording is placed in one of
// drainInterval/phaseTick phases and drained on its phase's tick, so the
// writer drains a slice of the recordings every phaseTick rather than all
// of them at once (the frames waiting for it, and its bursts of CPU, are a
// fraction of what they would be). maxPhases caps the number of phases.
const (
	phaseTick = 25 * time.Millisecond
	maxPhases = 8
)

// outBytes is the capacity of a workspace's output buffer: the most a turn
// writes in one write call (a turn after a long gap or a stall writes
// several).
const outBytes = 64 << 10

// writer is the goroutine that drains recordings. sharedWriter serves every
// recording unless Config.drainEvery gives one a writer of its own.
type writer struct {
	every  time.Duration
	phases int

	// age is the worst backlog seen since TakeBacklog: the age of the
	// oldest frame a turn found queued, in ns. busySince is when the
	// batch under way began (time.Since(monoEpoch), ns), 0 between
	// batches: a batch stuck on a hung disk shows as backlog before any
	// turn finishes to report it.
	age, busySince atomic.Int64

	mu      sync.Mutex // guards the fields below and each Recorder's phase and slot
	recs    []*Recorder
	count   []int // recordings per phase
	running bool  // the goroutine is running (or about to)
}

// sharedWriter is the process-wide writer.
var sharedWriter = newWriter(drainInterval)

func newWriter(every time.Duration) *writer {
	p := max(1, min(int(every/phaseTick), maxPhases))
	return &writer{every: every, phases: p, count: make([]int, p)}
}

// workspace holds the buffers of one turn or one Close: a channel's
// pending samples and the interleaved output. The writer goroutine keeps
// one while it runs; Close borrows one from workspaces.
type workspace struct {
	pend [2][]int16
	out  []byte
}

var workspaces = sync.Pool{New: func() any {
	return &workspace{
		pend: [2][]int16{make([]int16, 0, pendSamples), make([]int16, 0, pendSamples)},
		out:  make([]byte, 0, outBytes),
	}
}}

// add gives r a phase (the one with fewest recordings) and starts the
// goroutine if it is not running.
func (w *writer) add(r *Recorder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ph := 0
	for i, n := range w.count {
		if n < w.count[ph] {
			ph = i
		}
	}
	w.count[ph]++
	r.phase, r.slot = ph, len(w.recs)
	w.recs = append(w.recs, r)
	if !w.running {
		w.running = true
		go w.run()
	}
}

// remove takes r out of the writer's turns. A turn already under way may
// still reach r; Recorder.turn then finds the file gone and does nothing.
func (w *writer) remove(r *Recorder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := r.slot
	if i < 0 {
		return
	}
	last := len(w.recs) - 1
	w.recs[i] = w.recs[last]
	w.recs[i].slot = i
	w.recs[last] = nil
	w.recs = w.recs[:last]
	w.count[r.phase]--
	r.slot = -1
}

// run is the writer goroutine: on every tick it drains the recordings of
// the next phase, one after another. It exits on a tick that finds no
// recording; add starts it again.
func (w *writer) run() {
	t := time.NewTicker(w.every / time.Duration(w.phases))
	defer t.Stop()
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	var batch []*Recorder
	for phase := 0; ; phase = (phase + 1) % w.phases {
		<-t.C
		w.mu.Lock()
		if len(w.recs) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		for _, r := range w.recs {
			if r.phase == phase {
				batch = append(batch, r)
			}
		}
		w.mu.Unlock()
		w.busySince.Store(int64(time.Since(monoEpoch)))
		for _, r := range batch {
			r.turn(ws)
		}
		w.busySince.Store(0)
		clear(batch)
		batch = batch[:0]
	}
}

// noteAge folds the age of the oldest frame a turn found into w.age. Once
// per recording turn (every drainInterval), not per frame.
func (w *writer) noteAge(d time.Duration) {
	v := int64(d)
	for {
		cur := w.age.Load()
		if v <= cur || w.age.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TakeBacklog returns the recorder's backlog: the age of the oldest audio
// the shared writer found queued in any recording since the previous call
// (0 when it drained none), and starts a new window; while a batch of
// turns has been under way longer than that (a hung disk), its length
// plus drainInterval, the least the audio waiting for it has aged. A writer that keeps
// up shows about drainInterval (200 ms: a recording is drained that
// often); one that falls behind shows more, and past the queue's length
// (DefaultQueueFrames, 640 ms) frames are being dropped. It is meant for
// one reader, the overload monitor's sampler, and takes no lock.
func TakeBacklog() time.Duration { return sharedWriter.takeBacklog() }

func (w *writer) takeBacklog() time.Duration {
	d := time.Duration(w.age.Swap(0))
	if since := w.busySince.Load(); since != 0 {
		d = max(d, time.Since(monoEpoch)-time.Duration(since)+w.every)
	}
	return d
}
