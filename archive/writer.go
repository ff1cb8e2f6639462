package archive

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/call"
	"github.com/rs/zerolog"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Queue is how many interactions wait for the database before new
	// ones are dropped (0: 10 000).
	Queue int
	// Batch is the most interactions per transaction (0: 256).
	Batch int
	// Node names this cloak node in each interaction.
	Node string
	// Retry is the first wait after a failed write, doubled up to MaxRetry
	// (0: 200 ms and 30 s).
	Retry, MaxRetry time.Duration
	// Log gets one line when an incident starts (database unavailable,
	// queue full) and one when it ends; never one per call.
	Log zerolog.Logger
}

// WriterStats are a Writer's counters.
type WriterStats struct {
	// Depth is how many interactions wait in the queue now.
	Depth int `json:"depth"`
	// Written were committed; Dropped found the queue full (or the
	// writer closed) and were not archived; Rejected were refused by the
	// database one by one while it was reachable (a bad row), and not
	// archived; Failures counts failed write attempts.
	Written  uint64 `json:"written"`
	Dropped  uint64 `json:"dropped"`
	Rejected uint64 `json:"rejected"`
	Failures uint64 `json:"failures"`
	// Lost were still queued when Close gave up on an unavailable database.
	Lost uint64 `json:"lost"`
}

// Writer archives finished interactions off the calls' goroutines: Submit
// puts one in a bounded queue and returns at once; one goroutine drains
// the queue in batched transactions. A slow or unreachable database
// delays archiving, never a call: while it is down the batch in hand is
// retried with back-off and the queue fills; when the queue is full, new
// interactions are dropped and counted.
type Writer struct {
	s      *Store
	o      WriterOptions
	insert func(context.Context, []Interaction) error // s.Insert; tests wrap it

	q       chan Interaction
	closing chan struct{}
	done    chan struct{}
	mu      sync.RWMutex // Submit holds it shared; Close exclusively to close q
	closed  bool
	stopCtx context.Context // Close's: how long the last retries may take

	written, dropped, rejected, failures, lost atomic.Uint64
	full                                       atomic.Bool // a queue-full incident is open (logged)
}

// NewWriter starts a writer over s; Close stops it.
func NewWriter(s *Store, o WriterOptions) *Writer {
	if o.Queue <= 0 {
		o.Queue = 10000
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Retry <= 0 {
		o.Retry = 200 * time.Millisecond
	}
	if o.MaxRetry < o.Retry {
		o.MaxRetry = 30 * time.Second
	}
	w := &Writer{s: s, o: o, insert: s.Insert, q: make(chan Interaction, o.Queue),
		closing: make(chan struct{}), done: make(chan struct{}), stopCtx: context.Background()}
	go w.run()
	return w
}

// Submit archives a finished call: it is what call.Config.OnEnded is set
// to. The participant-data policy is applied here, on the call's
// goroutine (a few HMACs), so the queue never holds a value the archive
// may not keep. It never blocks.
func (w *Writer) Submit(sum call.Summary) {
	w.Enqueue(w.s.FromSummary(sum, w.o.Node))
}

// Enqueue queues an interaction for writing; false (counted as dropped)
// when the queue is full or the writer closed. It never blocks.
func (w *Writer) Enqueue(in Interaction) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return false
	}
	select {
	case w.q <- in:
		return true
	default:
	}
	w.dropped.Add(1)
	if w.full.CompareAndSwap(false, true) {
		w.o.Log.Error().Int("queue", w.o.Queue).Msg("archive queue full: finished calls are dropped from the archive (counted) until the database catches up")
	}
	return false
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Depth: len(w.q), Written: w.written.Load(), Dropped: w.dropped.Load(),
		Rejected: w.rejected.Load(), Failures: w.failures.Load(), Lost: w.lost.Load()}
}

// Close stops taking interactions and writes those queued, retrying
// until ctx ends; it returns an error counting what could not be
// written. Call it after the calls have drained.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.stopCtx = ctx
		close(w.q)
	}
	w.mu.Unlock()
	<-w.done
	if n := w.lost.Load(); n > 0 {
		return fmt.Errorf("archive: %d finished interactions not written at shutdown", n)
	}
	return nil
}

// run is the one writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Interaction, 0, w.o.Batch)
	for {
		in, ok := <-w.q
		if !ok {
			return
		}
		batch = append(batch[:0], in)
	fill:
		for len(batch) < w.o.Batch {
			select {
			case in, ok := <-w.q:
				if !ok {
					break fill
				}
				batch = append(batch, in)
			default:
				break fill
			}
		}
		w.write(batch)
		if len(w.q) < w.o.Queue/2 && w.full.CompareAndSwap(true, false) {
			w.o.Log.Warn().Uint64("dropped_total", w.dropped.Load()).Msg("archive queue has room again")
		}
	}
}

// write commits a batch, retrying while the database is unavailable.
// When the batch fails but the database takes a write, the batch is
// written row by row so one bad row does not hold back the rest.
func (w *Writer) write(batch []Interaction) {
	wait := w.o.Retry
	var incident time.Time
	for {
		ctx, cancel := context.WithTimeout(w.stopContext(), 30*time.Second)
		// Migrations not applied (a deferred store whose database was
		// down) count as unavailable: no row is judged before the schema
		// is there.
		err := w.s.ensure(ctx)
		if err == nil {
			if err = w.insert(ctx, batch); err == nil {
				w.written.Add(uint64(len(batch)))
			} else if w.writable(ctx) {
				batch, err = w.oneByOne(ctx, batch)
			}
		}
		cancel()
		if err == nil {
			if !incident.IsZero() {
				w.o.Log.Warn().Str("down_for", time.Since(incident).Round(time.Millisecond).String()).Msg("archive database available again: writing")
			}
			return
		}
		w.failures.Add(1)
		if incident.IsZero() {
			incident = time.Now()
			w.o.Log.Error().Err(err).Int("queued", len(w.q)+len(batch)).
				Msg("archive database unavailable: finished calls wait in the archive queue; calls go on")
		}
		select {
		case <-w.stopContext().Done():
			lost := len(batch)
			for range w.q { // Close closed it: count what is left
				lost++
			}
			w.lost.Add(uint64(lost))
			w.o.Log.Error().Int("lost", lost).Msg("archive database still unavailable at shutdown: finished calls not archived")
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, w.o.MaxRetry)
	}
}

// oneByOne writes each interaction in its own transaction. A row the
// database refuses while it takes other writes is rejected (counted,
// logged); if the database becomes unavailable, the rows not yet written
// are returned with the error.
func (w *Writer) oneByOne(ctx context.Context, batch []Interaction) ([]Interaction, error) {
	for i := range batch {
		err := w.insert(ctx, batch[i:i+1])
		switch {
		case err == nil:
			w.written.Add(1)
		case !w.writable(ctx):
			return batch[i:], err
		default:
			w.rejected.Add(1)
			w.o.Log.Error().Err(err).Str("interaction", batch[i].ID).Msg("archive refused an interaction: not archived")
		}
	}
	return nil, nil
}

// writable reports whether the database takes a write transaction now
// (on SQLite, BEGIN IMMEDIATE: false while another process holds the
// write lock past the busy timeout).
func (w *Writer) writable(ctx context.Context) bool {
	tx, err := w.s.db.BeginTx(ctx, nil)
	if err != nil {
		return false
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
		return false
	}
	return tx.Commit() == nil
}

func (w *Writer) stopContext() context.Context {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.stopCtx
}
