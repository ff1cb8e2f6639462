package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/config"
	"github.com/rs/zerolog"
)

// TestOverloadMonitorFromConfig: the defaults give four signals, calls
// only with sip.max_calls, a limit of 0 leaves its signal out, and the
// stats are flat numbers under stable names.
func TestOverloadMonitorFromConfig(t *testing.T) {
	cfg := config.Default()
	active := 0
	mon, err := overloadMonitor(cfg, zerolog.Nop(), nil, func() int { return active })
	if err != nil {
		t.Fatal(err)
	}
	mon.Evaluate()
	var names []string
	for _, r := range mon.Stats().Readings {
		names = append(names, r.Name)
	}
	if want := "[lag cpu system_cpu recorder_backlog calls]"; fmt.Sprint(names) != want {
		t.Fatalf("signals %v, want %s", names, want)
	}

	// max_calls reached: overloaded for "calls"; one call ending clears
	// it after the hold.
	cfg.SIP.MaxCalls = 3
	cfg.Limits.MaxCPU = 0
	cfg.Limits.MaxSystemCPU = 0 // the test run's, not the node's
	cfg.Limits.Hold = 50 * time.Millisecond
	cfg.Limits.Interval = 50 * time.Millisecond
	mon, err = overloadMonitor(cfg, zerolog.Nop(), nil, func() int { return active })
	if err != nil {
		t.Fatal(err)
	}
	active = 3
	mon.Evaluate()
	if reason, ra := mon.Refusing(); reason != "calls" || ra != 5*time.Second {
		t.Fatalf("at max_calls: Refusing = %q, %v", reason, ra)
	}
	out := map[string]any{}
	addOverloadStats(out, mon, map[string]uint64{"calls": 2}, 1)
	for k, want := range map[string]any{
		"overload_state": 1, "overload_reason": "calls", "overload_episodes": uint64(1), "overload_episodes_calls": uint64(1),
		"overload_calls": 3.0, "overload_calls_limit": 3.0, "overload_lag_ms_limit": 50.0,
		"sip_refused_calls": uint64(2), "sip_probes_refused": uint64(1),
	} {
		if out[k] != want {
			t.Errorf("stats[%s] = %#v, want %#v", k, out[k], want)
		}
	}
	if _, ok := out["overload_cpu"]; ok {
		t.Error("max_cpu 0 should leave the cpu signal out")
	}
	active = 2
	mon.Evaluate()
	time.Sleep(60 * time.Millisecond)
	mon.Evaluate()
	if reason, _ := mon.Refusing(); reason != "" {
		t.Fatalf("a call below max_calls for the hold: still refusing (%q)", reason)
	}
}
