package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// summary is the run's result, printed as a table and written as JSON.
type summary struct {
	Label      string  `json:"label"`
	Mode       string  `json:"mode"`
	Calls      int     `json:"calls"`
	Rate       float64 `json:"rate"`
	Started    string  `json:"started"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	NumCPU     int     `json:"num_cpu"`
	Digits     bool    `json:"digits_keyed"`
	// SRTP is -srtp: both legs SRTP with SDES keys, of SRTPSuite.
	SRTP        bool    `json:"srtp,omitempty"`
	SRTPSuite   string  `json:"srtp_suite,omitempty"`
	RampSeconds float64 `json:"ramp_seconds"`
	// LoadAvg is the machine's load average when the window ended: other
	// work on the machine shows here.
	LoadAvg string `json:"loadavg"`

	CallsAttempted int            `json:"calls_attempted"`
	CallsUp        int            `json:"calls_up"`
	CallsFailed    int            `json:"calls_failed"`
	CallsDropped   int            `json:"calls_dropped"`
	CallsCutShort  int            `json:"calls_cut_short"` // setups cancelled by the end of the run
	Errors         map[string]int `json:"errors,omitempty"`
	SetupMs        quantiles      `json:"setup_ms"`
	AgentLegs      *agentLegs     `json:"agent_legs,omitempty"`
	// Monitors are -monitors' monitor legs.
	Monitors *monitorSummary `json:"monitors,omitempty"`

	// Directions: "caller->agent" measured at the agent side, and
	// "agent->caller" at the caller side (for echo, the round trip).
	Directions []direction `json:"directions"`

	Window windowSummary `json:"window"`
	Target targetSummary `json:"target"`
	Load   loadSummary   `json:"load"`
	Notes  []string      `json:"notes,omitempty"`
}

type agentLegs struct {
	Invites  int64 `json:"invites"`
	Answered int64 `json:"answered"`
	Ended    int64 `json:"ended"`
	Failed   int64 `json:"failed"`
}

type quantiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

type direction struct {
	Name     string  `json:"name"`
	Streams  int     `json:"streams"`
	Sent     uint64  `json:"sent"`     // audio+event packets the far side sent
	Expected uint64  `json:"expected"` // audio packets over each stream's received range
	Received uint64  `json:"received"` // stamped audio packets
	Lost     uint64  `json:"lost"`
	LossPct  float64 `json:"loss_pct"`
	// Unstamped is audio without our stamp: a masker's silence or delay
	// line, or a relay's own audio.
	Unstamped uint64 `json:"unstamped"`
	// Events is RFC 4733 packets received: a masking relay lets none
	// through towards the agent.
	Events     uint64    `json:"events"`
	EventsSent uint64    `json:"events_sent"`
	LatencyMs  quantiles `json:"latency_ms"` // over the window
	// AfterReleaseMs (with -delay-line, on the delayed direction): latency
	// from the send of the frame that released each frame from the
	// relay's delay line: the relay's own delay, without the sender's
	// pacing jitter over the delay line that LatencyMs less the delay
	// line includes.
	AfterReleaseMs *quantiles `json:"after_release_ms,omitempty"`
	// JitterMs is each stream's RFC 3550 jitter as it stood at its last
	// packet in the window, like the latency over the window;
	// JitterEndMs as it stood at the end of the run, teardown included
	// (what this field held before: every call hanging up at once, the
	// relay closing its recordings, moved it far from the window's).
	JitterMs    quantiles `json:"jitter_ms"`
	JitterEndMs quantiles `json:"jitter_end_ms"`
	// RelayJitterMs and PaceJitterMs take JitterMs apart (per stream, at
	// the end): the relay's and the network's share (arrival − send
	// time) and the load generator's own pacing (send − nominal frame
	// time), in the window. TSJumps counts stamped frames in the window
	// whose RTP timestamp moved
	// against the frame's number: zero for a relay that carries the
	// source's timestamps over (on the direction that keys digits, each
	// digit is one).
	RelayJitterMs quantiles `json:"relay_jitter_ms"`
	PaceJitterMs  quantiles `json:"pace_jitter_ms"`
	TSJumps       uint64    `json:"ts_jumps"`
	// SeqGaps is loss counted on the relay's own RTP sequence numbers
	// (what it sent that did not arrive).
	SeqGaps uint64 `json:"seq_gaps"`
	Stray   uint64 `json:"stray"`
	// SRTPFailed counts packets that failed to unprotect with -srtp
	// (RFC 3711 §3.3): each is a fault of the relay's protection.
	SRTPFailed uint64 `json:"srtp_failed,omitempty"`
	TxErrors   uint64 `json:"tx_errors"`
}

type windowSummary struct {
	Seconds     float64 `json:"seconds"`
	PacketsSent uint64  `json:"packets_sent"`
	// PacketsForwarded is what came out of the relay in the window (both
	// directions): the denominator of CPU per packet.
	PacketsForwarded uint64  `json:"packets_forwarded"`
	ForwardedPPS     float64 `json:"forwarded_pps"`
}

type targetSummary struct {
	PID      int      `json:"pid,omitempty"`
	Baseline procStat `json:"baseline"`
	Start    procStat `json:"window_start"`
	End      procStat `json:"window_end"`
	After    procStat `json:"after"`
	// CPUSeconds over the window; CPUPercent of one core.
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPercent    float64 `json:"cpu_percent"`
	CPUPerMPkt    float64 `json:"cpu_seconds_per_million_packets"`
	RSSPerCallKiB float64 `json:"rss_per_call_kib"`
}

type loadSummary struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
}

func quant(v []float64) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	sort.Float64s(v)
	var s float64
	for _, x := range v {
		s += x
	}
	return quantiles{N: len(v), Mean: s / float64(len(v)), P50: percentile(v, 0.5), P95: percentile(v, 0.95), P99: percentile(v, 0.99), Max: v[len(v)-1]}
}

func (sum *summary) fill(e *engine, cs *callStats, w *window, o options) {
	cs.mu.Lock()
	sum.CallsAttempted, sum.CallsUp, sum.CallsFailed, sum.CallsDropped = cs.attempted, cs.up, cs.failed, cs.dropped
	sum.CallsCutShort = cs.cutShort
	sum.Errors = cs.errors
	sum.SetupMs = quant(append([]float64(nil), cs.setups...))
	cs.mu.Unlock()

	// A direction's receivers are on one side; its senders on the other.
	sentBy := func(groups []*group) (audio, events uint64) {
		for _, g := range groups {
			for _, s := range g.all {
				events += s.evSent
				audio += s.sent.Load() - s.evSent
			}
		}
		return
	}
	for _, d := range []struct {
		name     string
		rx, tx   []*group
		hasPeers bool
	}{{"caller->agent", e.agents, e.callers, true}, {"agent->caller", e.callers, e.agents, true}} {
		var dir direction
		dir.Name = d.name
		var h, th hist
		var jit, endJit, rjit, pjit []float64
		for _, g := range d.rx {
			h.merge(&g.hist)
			th.merge(&g.trig)
			dir.Stray += g.stray.Load()
			dir.SRTPFailed += g.srtpFail.Load()
			for _, s := range g.all {
				dir.Streams++
				exp, lost := s.lost()
				dir.Expected += exp
				dir.Lost += lost
				dir.Received += s.rx
				dir.Unstamped += s.rxOther
				dir.Events += s.rxEvents
				dir.SeqGaps += s.headerGaps()
				if s.haveTrans {
					endJit = append(endJit, s.jitter/8) // timestamp units at 8 kHz → ms
				}
				if s.win {
					jit = append(jit, s.winJitter/8)
					rjit = append(rjit, s.winRelay/8)
					pjit = append(pjit, s.winPace/8)
				}
				dir.TSJumps += s.tsJumps
			}
		}
		for _, g := range d.tx {
			dir.TxErrors += g.txErrs.Load()
		}
		audio, events := sentBy(d.tx)
		if o.mode == "sip" && o.agent == "" {
			// echo: what the callers receive is what they sent.
			audio, events = sentBy(e.callers)
		}
		dir.Sent, dir.EventsSent = audio, events
		if dir.Expected > 0 {
			dir.LossPct = 100 * float64(dir.Lost) / float64(dir.Expected)
		}
		dir.LatencyMs = h.quantiles()
		if th.n > 0 {
			q := th.quantiles()
			dir.AfterReleaseMs = &q
		}
		dir.JitterMs, dir.JitterEndMs = quant(jit), quant(endJit)
		dir.RelayJitterMs, dir.PaceJitterMs = quant(rjit), quant(pjit)
		if dir.Streams == 0 && dir.Sent == 0 {
			continue
		}
		sum.Directions = append(sum.Directions, dir)
	}

	secs := w.t1.Sub(w.t0).Seconds()
	sum.Window = windowSummary{Seconds: secs, PacketsSent: w.tx1 - w.tx0, PacketsForwarded: w.rx1 - w.rx0}
	if secs > 0 {
		sum.Window.ForwardedPPS = float64(sum.Window.PacketsForwarded) / secs
		sum.Load.CPUSeconds = w.self1.CPUSeconds - w.self0.CPUSeconds
		sum.Load.CPUPercent = 100 * sum.Load.CPUSeconds / secs
	}
	if w.measuredTarget {
		t := &sum.Target
		t.PID = o.pid
		t.Start, t.End = w.target0, w.target1
		t.CPUSeconds = w.target1.CPUSeconds - w.target0.CPUSeconds
		if secs > 0 {
			t.CPUPercent = 100 * t.CPUSeconds / secs
		}
		if sum.Window.PacketsForwarded > 0 {
			t.CPUPerMPkt = t.CPUSeconds / (float64(sum.Window.PacketsForwarded) / 1e6)
		}
		if sum.CallsUp > 0 && o.hold == 0 {
			t.RSSPerCallKiB = float64(w.target1.RSSKiB-t.Baseline.RSSKiB) / float64(sum.CallsUp)
		}
	}
}

func printSummary(w io.Writer, s *summary) {
	fmt.Fprintf(w, "\n== %s: %d calls (%d up, %d failed, %d dropped by the far end) ramp %.1fs\n",
		s.Label, s.Calls, s.CallsUp, s.CallsFailed, s.CallsDropped, s.RampSeconds)
	for e, n := range s.Errors {
		fmt.Fprintf(w, "   %dx %s\n", n, e)
	}
	fmt.Fprintf(w, "setup ms: p50 %.1f p95 %.1f p99 %.1f max %.1f\n", s.SetupMs.P50, s.SetupMs.P95, s.SetupMs.P99, s.SetupMs.Max)
	if s.AgentLegs != nil {
		fmt.Fprintf(w, "agent legs: %d INVITEs, %d answered, %d ended, %d failed\n", s.AgentLegs.Invites, s.AgentLegs.Answered, s.AgentLegs.Ended, s.AgentLegs.Failed)
	}
	if m := s.Monitors; m != nil {
		fmt.Fprintf(w, "monitors: %d asked, %d started, %d failed, %d legs answered; sink %.0f pps in the window\n", m.Requested, m.Started, m.Failed, m.Answered, m.RxPPS)
		for e, n := range m.Errors {
			fmt.Fprintf(w, "   %dx %s\n", n, e)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "direction\tstreams\tsent\treceived\tlost\tloss %\tunstamped\tevents rx/tx\tlat p50 ms\tp99 ms\tmax ms\tjitter mean ms\tp99 ms\t")
	for _, d := range s.Directions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.3f\t%d\t%d/%d\t%.2f\t%.2f\t%.1f\t%.2f\t%.2f\t\n", d.Name, d.Streams, d.Sent, d.Received, d.Lost, d.LossPct,
			d.Unstamped, d.Events, d.EventsSent, d.LatencyMs.P50, d.LatencyMs.P99, d.LatencyMs.Max, d.JitterMs.Mean, d.JitterMs.P99)
	}
	tw.Flush()
	for _, d := range s.Directions {
		fmt.Fprintf(w, "%s jitter in the window taken apart: relay+network mean %.2f p99 %.2f ms, load generator pacing mean %.2f p99 %.2f ms, timestamp jumps %d; jitter at the end of the run (teardown) mean %.2f p99 %.2f ms\n",
			d.Name, d.RelayJitterMs.Mean, d.RelayJitterMs.P99, d.PaceJitterMs.Mean, d.PaceJitterMs.P99, d.TSJumps, d.JitterEndMs.Mean, d.JitterEndMs.P99)
	}
	for _, d := range s.Directions {
		if q := d.AfterReleaseMs; q != nil {
			fmt.Fprintf(w, "%s timed from the send of the frame that released it from the delay line: p50 %.2f p99 %.2f max %.1f ms\n", d.Name, q.P50, q.P99, q.Max)
		}
		if d.SRTPFailed > 0 {
			fmt.Fprintf(w, "%s: %d packets failed SRTP authentication and were dropped\n", d.Name, d.SRTPFailed)
		}
	}
	fmt.Fprintf(w, "window %.1fs: %d packets forwarded (%.0f pps); load generator cpu %.0f%%\n", s.Window.Seconds, s.Window.PacketsForwarded, s.Window.ForwardedPPS, s.Load.CPUPercent)
	if s.Target.PID > 0 {
		t := s.Target
		fmt.Fprintf(w, "target pid %d: cpu %.2fs (%.0f%% of a core) = %.2f cpu-s per million packets; rss baseline %d KiB, steady %d KiB (%.1f KiB/call), after %d KiB; threads %d → %d → %d\n",
			t.PID, t.CPUSeconds, t.CPUPercent, t.CPUPerMPkt, t.Baseline.RSSKiB, t.End.RSSKiB, t.RSSPerCallKiB, t.After.RSSKiB, t.Baseline.Threads, t.End.Threads, t.After.Threads)
	}
	for _, n := range s.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
