package overload

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// rig is a Monitor over fed signals and a fake clock.
type rig struct {
	m    *Monitor
	now  time.Time
	vals map[string]float64
	log  *bytes.Buffer
}

func newRig(t *testing.T, hold time.Duration, sigs ...Signal) *rig {
	t.Helper()
	r := &rig{now: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), vals: map[string]float64{}, log: new(bytes.Buffer)}
	for i := range sigs {
		name := sigs[i].Name
		sigs[i].Sample = func() float64 { return r.vals[name] }
	}
	m, err := New(Config{Signals: sigs, Hold: hold, RetryAfter: 7 * time.Second,
		Log: zerolog.New(r.log), Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	return r
}

// step advances the clock by d and evaluates once.
func (r *rig) step(d time.Duration) State {
	r.now = r.now.Add(d)
	r.m.Evaluate()
	return r.m.State()
}

func (r *rig) lines() []string {
	s := strings.TrimSpace(r.log.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestEnterAtLimitLeaveAfterHoldBelowLeave(t *testing.T) {
	r := newRig(t, 2*time.Second,
		Signal{Name: "cpu", Limit: 0.85},
		Signal{Name: "lag", Limit: 0.050, Unit: Seconds})
	half := 500 * time.Millisecond

	r.vals["cpu"], r.vals["lag"] = 0.5, 0.049
	if st := r.step(half); st.Overloaded {
		t.Fatalf("below every limit: %+v", st)
	}
	if reason, _ := r.m.Refusing(); reason != "" {
		t.Fatalf("Refusing = %q while ok", reason)
	}

	r.vals["lag"] = 0.050 // at the limit
	t0 := r.now.Add(half)
	st := r.step(half)
	if !st.Overloaded || st.Reason != "lag" || !st.Since.Equal(t0) {
		t.Fatalf("at the lag limit: %+v", st)
	}
	if reason, ra := r.m.Refusing(); reason != "lag" || ra != 7*time.Second {
		t.Fatalf("Refusing = %q, %v", reason, ra)
	}

	// Hysteresis: below the limit but not below 0.8 × limit (40 ms) keeps
	// it overloaded however long that lasts.
	r.vals["lag"] = 0.045
	for range 10 {
		if st := r.step(half); !st.Overloaded {
			t.Fatal("left overload above the leave level")
		}
	}
	// Below the leave level: held for 2 s, then ok.
	r.vals["lag"] = 0.010
	for i := range 4 { // 0, 0.5, 1.0, 1.5 s below
		if st := r.step(half); !st.Overloaded {
			t.Fatalf("left overload after %d samples below, before the hold", i+1)
		}
	}
	if st := r.step(half); st.Overloaded { // 2.0 s
		t.Fatalf("still overloaded after the hold: %+v", st)
	}
	if reason, _ := r.m.Refusing(); reason != "" {
		t.Fatalf("Refusing = %q after the episode", reason)
	}
	if st := r.m.Stats(); st.Episodes != 1 || st.EpisodesBy["lag"] != 1 || st.EpisodesBy["cpu"] != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestHoldRestartsWhenASignalComesBack(t *testing.T) {
	r := newRig(t, time.Second, Signal{Name: "cpu", Limit: 0.85})
	s := 250 * time.Millisecond
	r.vals["cpu"] = 0.9
	r.step(s)
	r.vals["cpu"] = 0.1
	r.step(s) // below since here
	r.step(s)
	r.step(s)
	r.vals["cpu"] = 0.7 // above 0.68: the hold starts again
	r.step(s)
	r.vals["cpu"] = 0.1
	for i := range 4 { // 0 .. 0.75 s below
		if !r.step(s).Overloaded {
			t.Fatalf("left after %d samples: the hold did not restart", i+1)
		}
	}
	if r.step(s).Overloaded {
		t.Fatal("still overloaded 1 s after the last high sample")
	}
}

func TestReasonIsTheSignalFurthestOver(t *testing.T) {
	r := newRig(t, time.Second,
		Signal{Name: "cpu", Limit: 0.85},
		Signal{Name: "recorder_backlog", Limit: 0.4, Unit: Seconds})
	r.vals["cpu"], r.vals["recorder_backlog"] = 0.90, 0.8 // 1.06 × and 2 ×
	if st := r.step(time.Second); st.Reason != "recorder_backlog" {
		t.Fatalf("reason %q, want recorder_backlog", st.Reason)
	}
}

func TestOneLogLinePerEpisode(t *testing.T) {
	r := newRig(t, time.Second, Signal{Name: "lag", Limit: 0.05, Unit: Seconds})
	r.vals["lag"] = 0.2
	for range 20 {
		r.step(100 * time.Millisecond)
		_, _ = r.m.Refusing() // refusals log nothing
	}
	r.vals["lag"] = 0.3 // the peak
	r.step(100 * time.Millisecond)
	r.vals["lag"] = 0
	for range 20 {
		r.step(100 * time.Millisecond)
	}
	lines := r.lines()
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines (start, end), got %d:\n%s", len(lines), r.log)
	}
	if !strings.Contains(lines[0], `"reason":"lag"`) || !strings.Contains(lines[0], `"value":"200ms"`) || !strings.Contains(lines[0], `"limit":"50ms"`) {
		t.Errorf("start line: %s", lines[0])
	}
	// The episode ran from the first sample (0.1 s) to 1 s after the first
	// sample below (2.2 s + 1 s).
	if !strings.Contains(lines[1], `"peak":"300ms"`) || !strings.Contains(lines[1], `"peak_signal":"lag"`) || !strings.Contains(lines[1], `"duration":"3.1s"`) {
		t.Errorf("end line: %s", lines[1])
	}
}

func TestDisabledSignalsAndBadSignals(t *testing.T) {
	r := newRig(t, time.Second, Signal{Name: "cpu", Limit: 0}) // off
	r.vals["cpu"] = 100
	if r.step(time.Second).Overloaded {
		t.Fatal("a signal with limit 0 tripped")
	}
	if _, err := New(Config{Signals: []Signal{{Name: "x", Limit: 1}}}); !errors.Is(err, ErrBadSignal) {
		t.Fatalf("no sampler: %v", err)
	}
	if _, err := New(Config{Signals: []Signal{{Name: "x", Limit: 1, Leave: 2, Sample: func() float64 { return 0 }}}}); !errors.Is(err, ErrBadSignal) {
		t.Fatalf("leave above limit: %v", err)
	}
	m, _ := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.Run(ctx) // returns at once with no signals
}

func TestExplicitLeaveLevel(t *testing.T) {
	// calls: enter at max_calls, leave as soon as one call ends.
	r := newRig(t, time.Second, Signal{Name: "calls", Limit: 10, Leave: 10})
	r.vals["calls"] = 10
	if !r.step(time.Second).Overloaded {
		t.Fatal("at max calls: not overloaded")
	}
	r.vals["calls"] = 9
	r.step(time.Second)
	if r.step(time.Second).Overloaded {
		t.Fatal("below the explicit leave level for the hold: still overloaded")
	}
}

func TestRunSamples(t *testing.T) {
	n := make(chan struct{}, 100)
	m, err := New(Config{Interval: time.Millisecond, Signals: []Signal{{Name: "x", Limit: 1, Sample: func() float64 {
		select {
		case n <- struct{}{}:
		default:
		}
		return 2
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	deadline := time.After(5 * time.Second)
	for !m.State().Overloaded {
		select {
		case <-n:
		case <-deadline:
			t.Fatal("Run did not sample within 5 s")
		}
	}
	cancel()
	<-done
	if st := m.Stats(); st.Samples == 0 || len(st.Readings) != 1 || st.Readings[0].Value != 2 {
		t.Fatalf("stats after Run: %+v", st)
	}
}

func TestRefusingAllocatesNothing(t *testing.T) {
	r := newRig(t, time.Second, Signal{Name: "cpu", Limit: 0.5})
	r.vals["cpu"] = 1
	r.step(time.Second)
	if a := testing.AllocsPerRun(1000, func() { _, _ = r.m.Refusing() }); a != 0 {
		t.Fatalf("Refusing allocates %v", a)
	}
}

func TestCPUSamplerSeesWork(t *testing.T) {
	s := CPU()
	if v := s(); v != 0 {
		t.Fatalf("first sample %v, want 0", v)
	}
	end := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	v := s()
	if v <= 0.05 || v > 1.5 {
		t.Fatalf("CPU share after 200 ms of spinning = %v (x=%d)", v, x)
	}
}

// Work handed to ExemptCPU (argon2id sign-ins) does not count: the same
// spinning as above, exempted, samples as (almost) idle.
func TestCPUSamplerLeavesExemptOut(t *testing.T) {
	s := CPU()
	s()
	before := ProcessCPU()
	end := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	spent := ProcessCPU() - before
	if spent < 50*time.Millisecond {
		t.Skipf("the spin got only %v of CPU: machine too busy to tell", spent)
	}
	e0 := Exempted()
	ExemptCPU(spent)
	ExemptCPU(-time.Second) // ignored: nothing gives CPU back
	if got := Exempted() - e0; got != spent {
		t.Fatalf("Exempted grew by %v, want %v", got, spent)
	}
	if v := s(); v > 0.05 {
		t.Fatalf("CPU share with the spin exempted = %v (x=%d), want ~0", v, x)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	cpu := CPU()
	m, _ := New(Config{Log: zerolog.Nop(), Signals: []Signal{
		{Name: "cpu", Limit: 0.85, Sample: cpu},
		{Name: "system_cpu", Limit: 0.9, Sample: SystemCPU()},
		{Name: "lag", Limit: 0.05, Sample: func() float64 { return 0.001 }},
		{Name: "recorder_backlog", Limit: 0.4, Sample: func() float64 { return 0.2 }},
		{Name: "calls", Limit: 2000, Leave: 2000, Sample: func() float64 { return 500 }},
	}})
	b.ReportAllocs()
	for b.Loop() {
		m.Evaluate()
	}
}

func TestTripIgnoresOneOffSpikes(t *testing.T) {
	r := newRig(t, time.Second, Signal{Name: "lag", Limit: 0.05, Unit: Seconds})
	r.m.trip = 2
	r.vals["lag"] = 0.2
	if r.step(time.Second).Overloaded {
		t.Fatal("one spike tripped with Trip 2")
	}
	r.vals["lag"] = 0.001
	r.step(time.Second)
	r.vals["lag"] = 0.2
	if r.step(time.Second).Overloaded {
		t.Fatal("two spikes apart tripped with Trip 2")
	}
	if !r.step(time.Second).Overloaded {
		t.Fatal("two samples in a row over the limit did not trip")
	}
}

// TestPacingNearTheLimits: with PaceAt, a signal at or above that share of
// its limit (and below the limit) makes Admit take PaceCalls new calls per
// sample and refuse the rest as "pacing", while Refusing — asked for
// probes — still takes them; a NoPace signal never paces; below the share
// the node takes every call again; at the limit overload wins.
func TestPacingNearTheLimits(t *testing.T) {
	r := &rig{now: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), vals: map[string]float64{}, log: new(bytes.Buffer)}
	sigs := []Signal{{Name: "system_cpu", Limit: 0.9}, {Name: "calls", Limit: 10, Leave: 10, NoPace: true}}
	for i := range sigs {
		name := sigs[i].Name
		sigs[i].Sample = func() float64 { return r.vals[name] }
	}
	m, err := New(Config{Signals: sigs, Hold: time.Second, RetryAfter: 3 * time.Second, PaceAt: 0.9, PaceCalls: 3,
		Log: zerolog.New(r.log), Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	admitted := func() (n int) {
		for range 10 {
			if reason, _ := m.Admit(); reason == "" {
				n++
			}
		}
		return n
	}
	half := 500 * time.Millisecond

	r.vals["system_cpu"], r.vals["calls"] = 0.80, 9.5 // calls at 95 % of its limit, but NoPace
	if st := r.step(half); st.Pacing || st.Overloaded {
		t.Fatalf("state %+v below the pacing share", st)
	}
	if n := admitted(); n != 10 {
		t.Fatalf("%d of 10 calls admitted below the pacing share", n)
	}

	r.vals["system_cpu"] = 0.82 // 0.9 × 0.9 = 0.81
	st := r.step(half)
	if !st.Pacing || st.PacingReason != "system_cpu" || st.Overloaded {
		t.Fatalf("state %+v: want pacing on system_cpu", st)
	}
	if n := admitted(); n != 3 {
		t.Fatalf("%d of 10 calls admitted while pacing: want PaceCalls (3)", n)
	}
	if reason, ra := m.Admit(); reason != ReasonPacing || ra != 3*time.Second {
		t.Fatalf("Admit past the budget = %q, %v: want %q, 3s", reason, ra, ReasonPacing)
	}
	if reason, _ := m.Refusing(); reason != "" {
		t.Fatalf("Refusing (a probe) = %q while only pacing: want the node still taking calls", reason)
	}
	r.step(half) // the next sample gives a new budget
	if n := admitted(); n != 3 {
		t.Fatalf("%d of 10 calls admitted in the next sample: want 3", n)
	}
	if st := m.Stats(); st.Paced != 2 {
		t.Errorf("Paced = %d: want 2 samples", st.Paced)
	}

	r.vals["system_cpu"] = 0.95 // at the limit: overloaded, every call refused
	if st := r.step(half); !st.Overloaded || st.Pacing {
		t.Fatalf("state %+v at the limit: want overloaded, not pacing", st)
	}
	if reason, _ := m.Admit(); reason != "system_cpu" {
		t.Fatalf("Admit while overloaded = %q", reason)
	}

	r.vals["system_cpu"] = 0.5 // below leave for the hold: out of overload, not pacing
	r.step(half)
	r.step(half)
	if st := r.step(half); st.Overloaded || st.Pacing {
		t.Fatalf("state %+v after the hold below leave", st)
	}
	if n := admitted(); n != 10 {
		t.Fatalf("%d of 10 calls admitted once clear", n)
	}
}

// TestPaceAtOutOfRange: New refuses a pacing share outside 0..1.
func TestPaceAtOutOfRange(t *testing.T) {
	for _, p := range []float64{-0.1, 1.5} {
		if _, err := New(Config{PaceAt: p}); !errors.Is(err, ErrBadSignal) {
			t.Errorf("PaceAt %g: err %v, want ErrBadSignal", p, err)
		}
	}
}
