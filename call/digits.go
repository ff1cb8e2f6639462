package call

import (
	"context"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
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

// dtmfTap is the caller leg's DTMF detection on the hot path: RFC 4733
// events through dtmf.Decoder and, when no telephone-event was negotiated,
// in-band tones through dtmf.Detector. Completed digits go to onDigit; the
// tap never forwards a packet (the gate decides what the agent receives).
//
// Locking: HandleRTP runs on the leg's read goroutine and tick on the
// shared clock's; mu serialises them (uncontended in practice). onDigit
// must not block.
type dtmfTap struct {
	mu      sync.Mutex
	dec     *dtmf.Decoder
	det     *dtmf.Detector // made at the first in-band frame: most taps never need one
	pcm     []int16
	onDigit func(d byte, src dtmf.Source)
	// onStart, when set, runs as an RFC 4733 digit begins (the masker
	// blanks audio from then on).
	onStart func()
	// inband enables the in-band detector when no telephone-event was
	// negotiated.
	inband bool
}

func newDTMFTap(onDigit func(byte, dtmf.Source)) (*dtmfTap, error) {
	dec, err := dtmf.NewDecoder(dtmf.DecoderConfig{})
	if err != nil {
		return nil, err
	}
	return &dtmfTap{dec: dec, onDigit: onDigit, inband: true}, nil
}

// HandleRTP implements media.Handler.
func (t *dtmfTap) HandleRTP(e *media.Endpoint, p *media.Packet) {
	t.mu.Lock()
	var evs []dtmf.Event
	if p.IsEvent {
		evs, _ = t.dec.Feed(p.Header.SSRC, p.Header.Timestamp, p.Payload, time.Now())
	} else if t.inband && e.EventPT() == 0 {
		// RFC 4733 negotiated: its events are authoritative and in-band
		// detection would count a phone's leading in-band edge twice.
		if t.det == nil {
			t.det, _ = dtmf.NewDetector(dtmf.DetectorConfig{}) // the defaults are valid
		}
		t.pcm = e.Codec().Decode(p.Payload, t.pcm[:0])
		evs = t.det.Process(t.pcm)
	}
	for _, ev := range evs {
		switch {
		case ev.Kind == dtmf.KindEnd:
			t.onDigit(ev.Digit, ev.Source)
		case ev.Kind == dtmf.KindStart && t.onStart != nil:
			t.onStart()
		}
	}
	t.mu.Unlock()
}

// tick closes digits whose end packets were all lost.
func (t *dtmfTap) tick(now time.Time) {
	t.mu.Lock()
	for _, ev := range t.dec.Expire(now) {
		if ev.Kind == dtmf.KindEnd {
			t.onDigit(ev.Digit, ev.Source)
		}
	}
	t.mu.Unlock()
}
