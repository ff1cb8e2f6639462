package call

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/acd"
)

// This file hands a caller to an agent: transfer to a queue (longest idle
// agent first, then the next on no answer) or to a SIP URI.

// Transfer implements ivr.Call: "queue:NAME" waits for an agent of the
// queue, any other target is dialled as a SIP URI. cloak stays in the
// media path as a B2BUA, so the secure gate keeps applying. It returns nil
// once the caller is bridged; an error takes the flow's failure path.
func (c *Interaction) Transfer(ctx context.Context, target string) error {
	if c.m.dir == nil && strings.HasPrefix(target, "queue:") {
		return fmt.Errorf("transfer to %s: %w", target, acd.ErrUnknownQueue)
	}
	if name, ok := strings.CutPrefix(target, "queue:"); ok {
		q, ok := c.m.dir.Queue(name)
		if !ok {
			return fmt.Errorf("transfer to %s: %w", target, acd.ErrUnknownQueue)
		}
		return c.queueFor(ctx, q)
	}
	if !strings.HasPrefix(target, "sip:") && !strings.HasPrefix(target, "sips:") && !strings.HasPrefix(target, "tel:") {
		return fmt.Errorf("transfer to %q: not a SIP or tel: URI, or a queue", target)
	}
	// A tel: target leaves through the trunk sip's Router picks by prefix
	// (docs/TRUNKS.md).
	side, err := c.dial(ctx, target, nil, 30*time.Second)
	if err != nil {
		return fmt.Errorf("transfer to %s: %w", target, err)
	}
	c.bridge(side)
	return nil
}

// queueFor plays hold audio to the caller and offers the call to the
// queue's agents, longest idle first, until one answers or the queue times
// out.
func (c *Interaction) queueFor(ctx context.Context, q acd.QueueConfig) error {
	qctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	stopHold := c.loopPrompt(qctx, c.caller, q.HoldPrompt)
	defer stopHold()
	c.log.Info().Str("queue", q.Name).Msg("caller queued")
	c.m.met.QueueJoined(q.Name)
	outcome, joined := "abandoned", time.Now()
	defer func() { c.m.met.QueueLeft(q.Name, outcome, time.Since(joined)) }()
	c.publish(Event{Type: "state", State: "queued"})
	c.m.dir.Join(q.Name, c.id) // the waiting line all nodes share (cluster.enabled)
	defer c.m.dir.Leave(c.id)
	tried := map[string]bool{}
	polled := true // the first try, and each after the poll's wait, is every caller's
	for {
		changed := c.m.dir.Changed(q.Name)
		var a *acd.Agent
		// Woken by a change, only this node's head of the queue's line
		// asks (docs/SCALE.md, "The wake-up herd"): the others cannot
		// win. The poll lets every caller ask, so a lost notification
		// or a local order out of step with the shared one delays by a
		// second at most.
		asked := polled || c.m.dir.MayClaim(q.Name, c.id)
		if asked {
			a = c.m.dir.Offer(q.Name, c.id, tried)
		}
		if asked && a == nil && len(tried) > 0 {
			// Everyone was tried: start over after the wait below (a
			// change or 500 ms), so an agent whose phone fails at once
			// (a refused TLS handshake, an unreachable contact, 486) is
			// not dialled in a tight loop for the whole queue timeout.
			tried = map[string]bool{}
		}
		if a != nil {
			stopHold()
			side, err := c.dial(qctx, a.Target(), a, q.RingTimeout)
			if err == nil {
				side.queue = q
				c.m.dir.Set(a, acd.Busy)
				c.bridge(side)
				outcome = "answered"
				return nil
			}
			c.m.dir.Set(a, acd.Available)
			tried[a.Name()] = true
			c.log.Info().Str("agent", a.Name()).Err(err).Msg("agent did not take the call")
			if qctx.Err() != nil {
				break
			}
			stopHold = c.loopPrompt(qctx, c.caller, q.HoldPrompt)
			polled = true // back in their place: ask again at once
			continue
		}
		select {
		case <-changed:
			polled = false
		case <-time.After(c.m.dir.RetryEvery()):
			polled = true
		case <-qctx.Done():
		}
		if qctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.log.Info().Str("queue", q.Name).Msg("queue timeout")
	outcome = "timeout"
	return fmt.Errorf("queue %s: %w", q.Name, acd.ErrQueueTimeout)
}
