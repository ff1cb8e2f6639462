package call

import (
	"context"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/media"
)

// This file plays hold audio and ringback: a prompt looped on a leg until
// it is stopped.

// startAgentHold plays hold audio to the agent (never the caller's
// audio, never a tone, never an RFC 4733 event).
func (c *Interaction) startAgentHold(side *agentSide) {
	side.holdMu.Lock()
	defer side.holdMu.Unlock()
	if side.hold != nil {
		return
	}
	hold := side.queue.HoldPrompt
	if hold == "" {
		hold = "hold"
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := c.loopPrompt(ctx, side.ep, hold)
	side.hold = func() { stop(); cancel() }
}

func (c *Interaction) stopAgentHold(side *agentSide) {
	side.holdMu.Lock()
	defer side.holdMu.Unlock()
	if side.hold != nil {
		side.hold()
		side.hold = nil
	}
}

// loopPrompt plays a prompt to an endpoint again and again until the
// returned stop is called or ctx ends; stop waits for playback to end.
func (c *Interaction) loopPrompt(ctx context.Context, ep *media.Endpoint, name string) (stop func()) {
	var p *media.Prompt
	if name == ringbackPrompt {
		p = c.m.ringback
	} else if lp, err := c.m.prompt(name); err == nil {
		p = lp
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p == nil {
			<-pctx.Done()
			return
		}
		for pctx.Err() == nil {
			if err := ep.Play(pctx, p); err != nil && pctx.Err() == nil {
				// Another Play owns the stream or the endpoint closed.
				select {
				case <-pctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}
