package overload

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	// DefaultInterval is how often the sampler evaluates the signals.
	DefaultInterval = 500 * time.Millisecond
	// DefaultHold is how long every signal must stay below its Leave
	// level before the node takes calls again.
	DefaultHold = 2 * time.Second
	// DefaultRetryAfter is the Retry-After given with a refusal
	// (RFC 3261 §20.33).
	DefaultRetryAfter = 5 * time.Second
	// DefaultLeave is the share of a signal's Limit it must fall below
	// for the node to leave overload, when Signal.Leave is zero.
	DefaultLeave = 0.8
)

// ErrBadSignal is wrapped by New's errors: a signal without a name or a
// sampler, or with a Leave above its Limit.
var ErrBadSignal = errors.New("overload: bad signal")

// Unit says how a signal's values print in log lines.
type Unit int

const (
	// Plain values print as numbers (a CPU share, a call count).
	Plain Unit = iota
	// Seconds values print as durations ("230ms").
	Seconds
)

// Signal is one measure of the node's health.
type Signal struct {
	// Name is the reason given while this signal holds the node
	// overloaded ("cpu", "lag", "recorder_backlog", "calls").
	Name string
	// Limit: a sample at or above it makes the node overloaded. A signal
	// with Limit <= 0 is not sampled.
	Limit float64
	// Leave: the node leaves overload only after every signal has stayed
	// below its Leave for Config.Hold. Zero means DefaultLeave × Limit.
	Leave float64
	// Unit is how values print.
	Unit Unit
	// NoPace leaves the signal out of pacing (Config.PaceAt): one whose
	// limit is also enforced exactly per call (sip.max_calls) cannot be
	// overshot between samples.
	NoPace bool
	// Sample returns the signal's value now. Only the sampler calls it,
	// once per Config.Interval: it may take a syscall, but must not block.
	Sample func() float64
}

// Config configures a Monitor.
type Config struct {
	// Signals are the measures sampled. Those with Limit <= 0 are left
	// out, so a Monitor may have none and never refuse.
	Signals []Signal
	// Interval is how often Run samples them; zero means DefaultInterval.
	Interval time.Duration
	// Hold is how long every signal must stay below its Leave level
	// before the node leaves overload; zero means DefaultHold.
	Hold time.Duration
	// Trip is how many samples in a row a signal must be at or above its
	// Limit to make the node overloaded; zero means 1 (the first). More
	// ignores one-off spikes (a GC pause, a scheduler hiccup) at the cost
	// of reacting Interval later per extra sample.
	Trip int
	// RetryAfter is returned by Refusing; zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// PaceAt, when above zero, is the share of a signal's Limit from which
	// the node, not yet overloaded, paces new calls: Admit takes at most
	// PaceCalls of them per Interval and refuses the rest, until every
	// signal is below its PaceAt share again. A node that takes calls at
	// the offered rate up to its limits overshoots them by whatever
	// arrives between two samples, and on a ramp the calls admitted
	// meanwhile push every call already up past the relay's capacity
	// (docs/PERFORMANCE.md, "Pacing near the limits"); paced, each sample
	// sees what the last few calls cost before more are taken.
	PaceAt float64
	// PaceCalls is how many new calls Admit takes per Interval while
	// pacing; zero with PaceAt set means 1.
	PaceCalls int
	// Log receives one line when an episode starts and one when it ends.
	Log zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// State is the node's admission state.
type State struct {
	// Overloaded is true while new calls are refused.
	Overloaded bool
	// Reason names the signal that made the node overloaded (the one
	// furthest over its limit at the sample that tripped it); "" when
	// not overloaded.
	Reason string
	// Since is when the node entered the state (zero before the first
	// episode).
	Since time.Time
	// Pacing is true while the node, not overloaded, has a signal at or
	// above its Config.PaceAt share: Admit takes Config.PaceCalls new
	// calls per Interval. PacingReason names that signal.
	Pacing       bool
	PacingReason string
}

// Reading is a signal's last sample, for the stats.
type Reading struct {
	Name         string
	Value, Limit float64
	Unit         Unit
}

// Stats are a Monitor's counters, for the HTTP API's /api/stats.
type Stats struct {
	State
	// Episodes counts the times the node became overloaded.
	Episodes uint64
	// EpisodesBy splits Episodes by the signal that started them.
	EpisodesBy map[string]uint64
	// Readings are the signals' last samples, in Config order.
	Readings []Reading
	// Samples counts evaluations; SampleCost is the time they took in
	// all (the sampler's own cost).
	Samples    uint64
	SampleCost time.Duration
	// Paced counts the samples that found the node pacing (Config.PaceAt).
	Paced uint64
}

// Monitor samples the signals and publishes the admission state. Refusing
// may be called from any goroutine; Evaluate only from one at a time (Run
// is that one).
type Monitor struct {
	sigs       []Signal
	interval   time.Duration
	trip       int
	hold       time.Duration
	retryAfter time.Duration
	paceAt     float64
	paceCalls  int64
	log        zerolog.Logger
	now        func() time.Time

	state atomic.Pointer[State] // never nil
	// budget is what Admit may still take while pacing: set to paceCalls
	// by each sample, taken one a call.
	budget atomic.Int64

	// Owned by the evaluating goroutine.
	clearSince time.Time // when every signal first fell below Leave; zero while one is above
	peak       float64   // the episode's highest value/Limit
	peakSig    int
	scratch    []float64 // this sample's values
	runs       []int     // samples in a row at or above the limit, per signal

	mu         sync.Mutex // guards the stats below (read by Stats)
	values     []float64
	episodes   uint64
	episodesBy []uint64
	samples    uint64
	paced      uint64
	cost       time.Duration
}

// New builds a Monitor; Run starts its sampler.
func New(cfg Config) (*Monitor, error) {
	m := &Monitor{
		interval: cfg.Interval, hold: cfg.Hold, retryAfter: cfg.RetryAfter,
		log: cfg.Log, now: cfg.Now,
	}
	if cfg.PaceAt < 0 || cfg.PaceAt > 1 {
		return nil, fmt.Errorf("%w: pacing share %g is not between 0 (off) and 1", ErrBadSignal, cfg.PaceAt)
	}
	m.paceAt, m.paceCalls = cfg.PaceAt, int64(max(1, cfg.PaceCalls))
	if m.interval <= 0 {
		m.interval = DefaultInterval
	}
	if m.hold <= 0 {
		m.hold = DefaultHold
	}
	if m.retryAfter <= 0 {
		m.retryAfter = DefaultRetryAfter
	}
	if m.now == nil {
		m.now = time.Now
	}
	for _, s := range cfg.Signals {
		if s.Limit <= 0 {
			continue
		}
		if s.Name == "" || s.Sample == nil {
			return nil, fmt.Errorf("%w: %q has no name or no sampler", ErrBadSignal, s.Name)
		}
		if s.Leave == 0 {
			s.Leave = DefaultLeave * s.Limit
		}
		if s.Leave < 0 || s.Leave > s.Limit {
			return nil, fmt.Errorf("%w: %s: leave level %g is not between 0 and the limit %g", ErrBadSignal, s.Name, s.Leave, s.Limit)
		}
		m.sigs = append(m.sigs, s)
	}
	m.values = make([]float64, len(m.sigs))
	m.scratch = make([]float64, len(m.sigs))
	m.runs = make([]int, len(m.sigs))
	m.trip = max(1, cfg.Trip)
	m.episodesBy = make([]uint64, len(m.sigs))
	m.state.Store(&State{})
	return m, nil
}

// Run samples the signals every Config.Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	if len(m.sigs) == 0 {
		return
	}
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Evaluate()
		}
	}
}

// Refusing returns why the node takes no new calls now ("" when it does)
// and the Retry-After to give with the refusal (RFC 3261 §21.5.4,
// §20.33). It reads one atomic value and takes no lock.
func (m *Monitor) Refusing() (reason string, retryAfter time.Duration) {
	st := m.state.Load()
	if !st.Overloaded {
		return "", 0
	}
	return st.Reason, m.retryAfter
}

// Admit returns why a new call is refused now ("" when it is taken) and
// the Retry-After to give: the reason Refusing gives while overloaded, and
// "pacing" while pacing once this sample's Config.PaceCalls are taken.
// Ask it once per new call (it takes from the budget); ask Refusing for a
// probe, which pacing never refuses: the node still takes calls. It
// takes no lock.
func (m *Monitor) Admit() (reason string, retryAfter time.Duration) {
	st := m.state.Load()
	switch {
	case st.Overloaded:
		return st.Reason, m.retryAfter
	case st.Pacing && m.budget.Add(-1) < 0:
		return ReasonPacing, m.retryAfter
	}
	return "", 0
}

// ReasonPacing is Admit's reason for a call refused while pacing.
const ReasonPacing = "pacing"

// State returns the admission state now.
func (m *Monitor) State() State { return *m.state.Load() }

// Evaluate samples every signal once and moves the state machine: from ok
// to overloaded once a signal has been at or above its Limit for
// Config.Trip samples in a row (by default, at the first); from
// overloaded back to ok once every signal has stayed below its Leave level
// for Config.Hold. Run calls it every Config.Interval.
func (m *Monitor) Evaluate() {
	t0 := time.Now()
	now := m.now()
	over, overRatio := -1, 0.0 // the signal furthest over its limit
	above := false             // some signal is at or above its Leave level
	pace, paceRatio := -1, 0.0 // the signal furthest over its PaceAt share
	for i, s := range m.sigs {
		v := s.Sample()
		if math.IsNaN(v) {
			v = 0
		}
		m.scratch[i] = v
		r := v / s.Limit
		if v >= s.Limit {
			m.runs[i]++
		} else {
			m.runs[i] = 0
		}
		if m.runs[i] >= m.trip && r > overRatio {
			over, overRatio = i, r
		}
		if v >= s.Leave {
			above = true
		}
		if m.paceAt > 0 && !s.NoPace && v >= m.paceAt*s.Limit && r > paceRatio {
			pace, paceRatio = i, r
		}
	}
	cur := m.state.Load()
	m.budget.Store(m.paceCalls)
	switch {
	case !cur.Overloaded && over >= 0:
		m.state.Store(&State{Overloaded: true, Reason: m.sigs[over].Name, Since: now})
		m.clearSince, m.peak, m.peakSig = time.Time{}, overRatio, over
		s := m.sigs[over]
		m.log.Warn().Str("reason", s.Name).Str("value", format(s.Unit, m.scratch[over])).Str("limit", format(s.Unit, s.Limit)).
			Msg("overload: refusing new calls (503) until it clears")
		m.mu.Lock()
		m.episodes++
		m.episodesBy[over]++
		m.mu.Unlock()
	case cur.Overloaded:
		for i, s := range m.sigs {
			if r := m.scratch[i] / s.Limit; r > m.peak {
				m.peak, m.peakSig = r, i
			}
		}
		if above {
			m.clearSince = time.Time{}
			break
		}
		if m.clearSince.IsZero() {
			m.clearSince = now
		}
		if now.Sub(m.clearSince) < m.hold {
			break
		}
		m.state.Store(&State{Since: now})
		p := m.sigs[m.peakSig]
		m.log.Info().Str("reason", cur.Reason).Str("duration", now.Sub(cur.Since).Round(time.Millisecond).String()).Str("peak_signal", p.Name).
			Str("peak", format(p.Unit, m.peak*p.Limit)).Str("limit", format(p.Unit, p.Limit)).
			Msg("overload over: taking new calls again")
	}
	paced := false
	if st := m.state.Load(); !st.Overloaded {
		switch {
		case pace >= 0 && (!st.Pacing || st.PacingReason != m.sigs[pace].Name):
			m.state.Store(&State{Since: st.Since, Pacing: true, PacingReason: m.sigs[pace].Name})
			paced = true
		case pace >= 0:
			paced = true
		case st.Pacing:
			m.state.Store(&State{Since: st.Since})
		}
	}
	m.mu.Lock()
	if paced {
		m.paced++
	}
	copy(m.values, m.scratch)
	m.samples++
	m.cost += time.Since(t0)
	m.mu.Unlock()
}

// Stats returns the state, the episode counts and the last samples.
func (m *Monitor) Stats() Stats {
	st := Stats{State: m.State(), EpisodesBy: make(map[string]uint64, len(m.sigs))}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.Episodes, st.Samples, st.SampleCost, st.Paced = m.episodes, m.samples, m.cost, m.paced
	for i, s := range m.sigs {
		st.EpisodesBy[s.Name] = m.episodesBy[i]
		st.Readings = append(st.Readings, Reading{Name: s.Name, Value: m.values[i], Limit: s.Limit, Unit: s.Unit})
	}
	return st
}

func format(u Unit, v float64) string {
	if u == Seconds {
		return time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
