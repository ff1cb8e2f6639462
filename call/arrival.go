package call

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
)

// This file screens a call at arrival (fraud.call, docs/FRAUD.md): after
// admission, before the answer, on the call's own goroutine (never the
// RTP path), bounded by a timeout.

// DataFraudRisk is the participant-data key that marks a screened call:
// a JSON FraudRisk (score, minimum, the matched criteria by type and rule
// name with their scores, never a matched value). The agent desk reads it
// from /api/calls and the "fraud_risk" event; the archive keeps it.
const DataFraudRisk = "fraud_risk"

// ArrivalScreener screens an arriving call. The server implements it over
// fraud.Screener and the archive: it records the arrival (calls_today),
// screens a (which carries no payment) and judges the decision against
// fraud.call.minimum_score (Decision.Hold: at or above it).
type ArrivalScreener interface {
	ScreenArrival(ctx context.Context, a fraud.Attributes, interaction string) (fraud.Decision, error)
}

// ArrivalConfig configures call-arrival screening.
type ArrivalConfig struct {
	// Screener, when set, is told of every arrival.
	Screener ArrivalScreener
	// Screen waits for the screening and acts on it; false only records
	// the arrival (in the background) for later screenings' calls_today.
	Screen bool
	// Route is what a call at or above the minimum gets: "mark" (or ""),
	// "reject" (603 Decline), "flow:NAME" or "queue:NAME".
	Route string
	// Timeout bounds the wait (0: 300 ms); past it the call proceeds
	// unscreened.
	Timeout time.Duration
}

// FraudRisk is how a screened call is marked.
type FraudRisk struct {
	// Score is the total over unique matches; Minimum is
	// fraud.call.minimum_score; Over is Score >= Minimum with a match.
	Score   int  `json:"score"`
	Minimum int  `json:"minimum"`
	Over    bool `json:"over"`
	// Matches are the matched criteria: "phone", "source"… for static
	// entries (their type; the value is not repeated) and "rule:NAME".
	Matches []RiskMatch `json:"matches,omitempty"`
	// Route is what the call was given when Over ("reject", "flow:…",
	// "queue:…", "mark").
	Route string `json:"route,omitempty"`
	// Unscreened says why the call went on unscreened ("timeout",
	// "error"); empty when it was screened.
	Unscreened string `json:"unscreened,omitempty"`
}

// RiskMatch is one matched criterion with its score.
type RiskMatch struct {
	Criterion string `json:"criterion"`
	Score     int    `json:"score"`
}

// riskOf is the mark of decision d (no matched value in it).
func riskOf(d fraud.Decision) FraudRisk {
	r := FraudRisk{Score: d.Score, Minimum: d.Minimum, Over: d.Hold}
	for _, m := range d.Matches {
		c := string(m.Type)
		if m.Kind == "rule" {
			c = "rule:" + m.Rule
		}
		r.Matches = append(r.Matches, RiskMatch{Criterion: c, Score: m.Score})
	}
	return r
}

// arrivalStats counts arrivals that went on unscreened, and logs the
// first of an incident only.
type arrivalStats struct {
	unscreened atomic.Uint64
	timeouts   atomic.Uint64 // of unscreened: no answer within the timeout
	slow       atomic.Bool
}

// ArrivalUnscreened is the number of calls that proceeded unscreened
// because the screening did not answer within fraud.call.timeout or
// failed.
func (m *Manager) ArrivalUnscreened() uint64 { return m.arrival.unscreened.Load() }

// ArrivalUnscreenedBy splits ArrivalUnscreened by reason: no answer
// within fraud.call.timeout, or a screening that failed.
func (m *Manager) ArrivalUnscreenedBy() (timeout, failed uint64) {
	n, t := m.arrival.unscreened.Load(), m.arrival.timeouts.Load()
	return t, n - min(t, n)
}

// arrivalAttributes are what a call tells a screening at arrival.
func (c *Interaction) arrivalAttributes() fraud.Attributes {
	a := fraud.Attributes{Caller: c.s.Caller(), Verstat: c.s.Verstat(), Source: c.s.Source().Addr(),
		Trunk: c.s.Trunk(), Route: c.s.Called(), Time: time.Now(), Data: c.Data()}
	if a.Caller == "anonymous" {
		a.Caller = ""
	}
	return a
}

// screenArrival screens c before it is answered and registered, and
// returns false when the call is to be rejected. It may change c.target
// (flow:NAME, queue:NAME): nothing else reads it yet.
func (m *Manager) screenArrival(c *Interaction) bool {
	ac := m.cfg.Arrival
	if ac.Screener == nil {
		return true
	}
	a := c.arrivalAttributes()
	if !ac.Screen {
		// Recorded for calls_today only; the server bounds its time.
		go func() { _, _ = ac.Screener.ScreenArrival(context.WithoutCancel(c.ctx), a, c.id) }()
		return true
	}
	timeout := ac.Timeout
	if timeout <= 0 {
		timeout = 300 * time.Millisecond
	}
	type result struct {
		d   fraud.Decision
		err error
	}
	done := make(chan result, 1) // the screening never blocks on a call that went on
	go func() {
		d, err := ac.Screener.ScreenArrival(context.WithoutCancel(c.ctx), a, c.id)
		done <- result{d, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var res result
	select {
	case res = <-done:
	case <-t.C:
		m.unscreened(c, "timeout", nil)
		return true
	case <-c.s.Done():
		return true // the caller gave up; Answer will say so
	}
	if res.err != nil {
		m.unscreened(c, "error", res.err)
		return true
	}
	if m.arrival.slow.CompareAndSwap(true, false) {
		m.log.Info().Msg("fraud screening of arriving calls answers in time again")
	}
	d := res.d
	if len(d.Matches) == 0 {
		return true // a clean call is not marked
	}
	risk := riskOf(d)
	route := ac.Route
	if route == "" {
		route = "mark"
	}
	if d.Hold {
		risk.Route = route
	}
	c.markRisk(risk)
	ev := c.log.Info().Int("score", d.Score).Int("minimum", d.Minimum).Int("matches", len(d.Matches))
	if !d.Hold {
		ev.Msg("call screened at arrival: below the minimum")
		return true
	}
	ev.Str("route", route).Msg("call screened at arrival: at or above the minimum")
	switch {
	case route == "reject":
		return false
	case strings.HasPrefix(route, "flow:"), strings.HasPrefix(route, "queue:"):
		c.target = route
	}
	return true
}

// unscreened counts a call that goes on unscreened and logs it when it
// is the first of an incident (a slow or failing archive would otherwise
// log every call).
func (m *Manager) unscreened(c *Interaction, why string, err error) {
	if why == "timeout" {
		m.arrival.timeouts.Add(1) // before the total: a scrape never sees more timeouts than arrivals
	}
	m.arrival.unscreened.Add(1)
	c.markRisk(FraudRisk{Unscreened: why})
	if m.arrival.slow.CompareAndSwap(false, true) {
		ev := m.log.Warn().Str("reason", why).Str("timeout", m.cfg.Arrival.Timeout.String())
		if err != nil {
			ev = ev.Err(err)
		}
		ev.Msg("fraud screening of arriving calls did not answer: calls proceed unscreened (counted in fraud_arrival_unscreened) until it answers again")
	}
}

// markRisk sets the call's fraud_risk participant data and tells the
// agent desk (event "fraud_risk").
func (c *Interaction) markRisk(r FraudRisk) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	c.SetData(DataFraudRisk, string(b))
	c.publish(Event{Type: "fraud_risk", Risk: &r})
}

// checkArrivalRoute refuses a fraud.call.route naming a flow or queue
// that does not exist, at start rather than on a caller.
func (m *Manager) checkArrivalRoute() error {
	r := m.cfg.Arrival.Route
	if name, ok := flowTarget(r); ok {
		if m.cfg.Flows == nil {
			return fmt.Errorf("call: fraud.call.route %q: no flows loaded", r)
		}
		if _, ok := m.cfg.Flows.Flow(name); !ok {
			return fmt.Errorf("call: fraud.call.route: %w %q", ivr.ErrUnknownFlow, name)
		}
	}
	if name, ok := strings.CutPrefix(r, "queue:"); ok {
		if m.cfg.Directory == nil {
			return fmt.Errorf("call: fraud.call.route %q: %w", r, acd.ErrUnknownQueue)
		}
		if _, ok := m.cfg.Directory.Queue(name); !ok {
			return fmt.Errorf("call: fraud.call.route %q: %w", r, acd.ErrUnknownQueue)
		}
	}
	return nil
}
