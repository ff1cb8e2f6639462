package call

import (
	"context"
	"sync"
	"time"
)

// digitQueue holds the caller's keys for the IVR (type-ahead), bounded.
// Waiters are woken by closing a channel that is replaced on each push.
type digitQueue struct {
	mu     sync.Mutex
	buf    []byte
	notify chan struct{}
}

const maxQueuedDigits = 64

func newDigitQueue() *digitQueue { return &digitQueue{notify: make(chan struct{})} }

func (q *digitQueue) push(d byte) {
	q.mu.Lock()
	if len(q.buf) < maxQueuedDigits {
		q.buf = append(q.buf, d)
	}
	close(q.notify)
	q.notify = make(chan struct{})
	q.mu.Unlock()
}

// waitChan returns a channel closed at the next push, and whether a digit
// is queued already.
func (q *digitQueue) waitChan() (<-chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.notify, len(q.buf) > 0
}

func (q *digitQueue) pop() (byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.buf) == 0 {
		return 0, false
	}
	d := q.buf[0]
	q.buf[0] = 0
	q.buf = q.buf[1:]
	return d, true
}

func (q *digitQueue) flush() {
	q.mu.Lock()
	for i := range q.buf {
		q.buf[i] = 0
	}
	q.buf = q.buf[:0]
	q.mu.Unlock()
}

// next waits for a digit at most timeout.
func (q *digitQueue) next(ctx context.Context, timeout time.Duration) (byte, bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if d, ok := q.pop(); ok {
			return d, true, nil
		}
		ch, queued := q.waitChan()
		if queued {
			continue
		}
		select {
		case <-ch:
		case <-t.C:
			return 0, false, nil
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}
