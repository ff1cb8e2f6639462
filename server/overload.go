package server

import (
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/overload"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/rs/zerolog"
)

// overloadMonitor builds the node's admission control from limits.* (see
// config.Limits): the RTP read lag of the poll workers (none without
// them), the process's CPU share, the machine's, the recorder's backlog, and the calls in
// progress against sip.max_calls, whose leave level is the cap itself
// (not 80 % of it): the node takes calls again once the calls have been
// below the cap for limits.hold (the cap also refuses the call beyond it
// exactly, per INVITE).
// active is read only by the sampler, which Run starts after the SIP
// server exists.
func overloadMonitor(cfg config.Config, log zerolog.Logger, poller *media.Poller, active func() int) (*overload.Monitor, error) {
	l := cfg.Limits
	var lag func() float64
	if poller != nil {
		lag = func() float64 { return poller.TakeLag().Seconds() }
	} else {
		lag = func() float64 { return 0 }
	}
	sigs := []overload.Signal{
		{Name: "lag", Limit: l.MaxLag.Seconds(), Unit: overload.Seconds, Sample: lag},
		{Name: "cpu", Limit: l.MaxCPU, Sample: overload.CPU()},
		{Name: "system_cpu", Limit: l.MaxSystemCPU, Sample: overload.SystemCPU()},
		{Name: "recorder_backlog", Limit: l.MaxRecorderBacklog.Seconds(), Unit: overload.Seconds,
			Sample: func() float64 { return recorder.TakeBacklog().Seconds() }},
	}
	if m := cfg.SIP.MaxCalls; m > 0 {
		sigs = append(sigs, overload.Signal{Name: "calls", Limit: float64(m), Leave: float64(m), NoPace: true,
			Sample: func() float64 { return float64(active()) }})
	}
	return overload.New(overload.Config{Signals: sigs, Interval: l.Interval, Hold: l.Hold,
		Trip: l.TripSamples, RetryAfter: l.RetryAfter, PaceAt: l.PaceAt, PaceCalls: l.PaceCalls, Log: log})
}

// addOverloadStats adds the admission state, its signals' last samples
// and the refusals by reason to the /api/stats map, as flat numbers a
// metrics exporter can take as they are: overload_state (1 while
// refusing), overload_reason, overload_episodes{,_<signal>},
// overload_<signal> (the last sample; durations as overload_<signal>_ms)
// with its limit under the same key and _limit, and sip_refused_<reason> for INVITEs refused
// with 503 (draining, max_calls, call, and the signals' names) and
// sip_probes_refused for OPTIONS.
func addOverloadStats(out map[string]any, mon *overload.Monitor, refusedBy map[string]uint64, probesRefused uint64) {
	st := mon.Stats()
	state := 0
	if st.Overloaded {
		state = 1
	}
	out["overload_state"] = state
	out["overload_reason"] = st.Reason
	out["overload_episodes"] = st.Episodes
	for name, n := range st.EpisodesBy {
		out["overload_episodes_"+name] = n
	}
	for _, r := range st.Readings {
		v, lim := r.Value, r.Limit
		key := "overload_" + r.Name
		if r.Unit == overload.Seconds {
			v, lim, key = v*1000, lim*1000, key+"_ms"
		}
		out[key], out[key+"_limit"] = v, lim
	}
	pacing := 0
	if st.Pacing {
		pacing = 1
	}
	out["overload_pacing"] = pacing // limits.pace_at
	out["overload_paced_samples"] = st.Paced
	out["overload_samples"] = st.Samples
	out["overload_sample_cost_us"] = st.SampleCost.Microseconds()
	for reason, n := range refusedBy {
		out["sip_refused_"+reason] = n
	}
	out["sip_probes_refused"] = probesRefused
}
