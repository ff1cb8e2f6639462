package media

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// maxCatchUp bounds how many late packets Play sends in one burst after
// its goroutine was delayed; beyond that the delay is absorbed.
const maxCatchUp = 3

// Play sends p on our stream in the negotiated codec, one 160-sample
// (20 ms) packet per tick of the shared Clock, and returns when the last
// packet is sent. Timestamps continue from our stream (step 160); the
// marker bit is set, and the timestamp moved on by the time lost, only
// where sending was interrupted for more than two frames: before the
// first packet after a silence (a new talkspurt, RFC 3551 §4.1), or after
// a stall; not when the prompt follows filler or another prompt. On a filling endpoint (StartFill) the
// filler takes over at the next tick after the last packet.
// While it plays, the stream belongs to it: WriteAudio and Forward return
// ErrPlaying, and a second Play returns ErrPlaying. If the direction
// forbids sending, the prompt still takes its time but nothing is sent.
// Play returns ctx.Err() when ctx ends and ErrClosed when the endpoint is
// closed. The prompt keeps the codec negotiated when it started. The Clock
// must be running (or ticked by the caller) or Play waits for ctx.
func (e *Endpoint) Play(ctx context.Context, p *Prompt) error {
	if p == nil {
		return fmt.Errorf("play: nil prompt: %w", ErrBadPrompt)
	}
	if e.clock == nil {
		return fmt.Errorf("play %q: %w", p.Name(), ErrNoClock)
	}
	if e.closed.Load() {
		return ErrClosed
	}
	codec := e.Codec()
	frames, err := p.Encoded(codec)
	if err != nil {
		return fmt.Errorf("play: %w", err)
	}
	if !e.playing.CompareAndSwap(false, true) {
		return fmt.Errorf("play %q: %w", p.Name(), ErrPlaying)
	}
	defer func() {
		e.playing.Store(false)
		e.fill.markOurs(e) // the stream stays ours: the filler takes over at the next tick
	}()

	var due atomic.Int64
	wake := make(chan struct{}, 1)
	cancel := e.clock.Subscribe(func(time.Time) {
		due.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer cancel()

	n := len(frames) / audio.SamplesPerFrame
	sent := 0
	for sent < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.closing:
			return ErrClosed
		case <-wake:
		}
		d := due.Load()
		if behind := d - int64(sent); behind > maxCatchUp {
			due.Add(-(behind - maxCatchUp)) // absorb a long stall
		}
		for int64(sent) < due.Load() && sent < n {
			frame := frames[sent*audio.SamplesPerFrame : (sent+1)*audio.SamplesPerFrame]
			// Every frame may start a talkspurt: writeAudio marks it and
			// moves the timestamp on by the time lost only where sending
			// was interrupted (the first frame after a silence, or a
			// stall of the clock or of this goroutine).
			err := e.writeAudio(codec, frame, audio.SamplesPerFrame, true)
			if err != nil && !errors.Is(err, ErrNoRemote) {
				return fmt.Errorf("play %q frame %d: %w", p.Name(), sent, err)
			}
			sent++
		}
	}
	return nil
}
