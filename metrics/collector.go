package metrics

import (
	"sort"
	"strconv"

	"github.com/cloak-voip/cloak/overload"
	"github.com/prometheus/client_golang/prometheus"
)

// collector reads Sources at scrape time: the counters /api/stats reads,
// as series.
type collector struct {
	src Sources
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The scrape-time series; docs/METRICS.md lists them with the event
// series of calls.go.
var (
	dSIPCalls      = desc("cloak_sip_invites_accepted_total", "INVITEs accepted into a session.")
	dSIPSessions   = desc("cloak_sip_sessions_active", "SIP sessions (answered or being answered) now.")
	dSIPRequests   = desc("cloak_sip_requests_total", "SIP requests received, by method (other: any method not listed).", "method")
	dSIPResponses  = desc("cloak_sip_responses_total", "SIP responses sent, by status code (2xx retransmissions not counted).", "code")
	dSIPRefused    = desc("cloak_sip_refused_total", "INVITEs refused with 503, by reason: draining (shutdown), max_calls, ports (no RTP port), disk (no room to record), call (the call layer, other), or the admission signal that refused it (lag, cpu, recorder_backlog, calls).", "reason")
	dSIPProbes     = desc("cloak_sip_options_refused_total", "OPTIONS answered 503 while admission control refused calls.")
	dSIPForbidden  = desc("cloak_sip_forbidden_total", "Requests refused by the source allow-list (403).")
	dSIPBad        = desc("cloak_sip_bad_requests_total", "Requests refused with 400.")
	dSIPParse      = desc("cloak_sip_parse_errors_total", "SIP messages that could not be parsed.")
	dAuthFailures  = desc("cloak_sip_auth_failures_total", "Failed REGISTER digest attempts.")
	dAuthLocks     = desc("cloak_sip_auth_locks_total", "Locks started by the REGISTER limiter (per source or user).")
	dAuthKeys      = desc("cloak_sip_auth_tracked_keys", "Sources and users the REGISTER limiter remembers now.")
	dRTPPackets    = desc("cloak_rtp_packets_total", "RTP packets accepted (rx) and sent (tx), all legs.", "direction")
	dRTPBytes      = desc("cloak_rtp_bytes_total", "RTP bytes (whole datagrams) accepted (rx) and sent (tx), all legs.", "direction")
	dRTPDropped    = desc("cloak_rtp_packets_dropped_total", "RTP packets dropped before any decoder, by reason: malformed, unknown_source, ssrc, payload_type, direction, stale, srtp.", "reason")
	dRTPSuppressed = desc("cloak_rtp_tx_suppressed_total", "RTP packets not sent because the direction forbids it (hold, inactive).")
	dRTPFill       = desc("cloak_rtp_tx_fill_total", "Filler packets sent (comfort noise or low-level G.711 noise) while cloak had nothing else to send on a leg.")
	dRTPErrors     = desc("cloak_rtp_socket_errors_total", "RTP socket errors, by direction (rx: read, tx: write).", "direction")
	dRTPSource     = desc("cloak_rtp_source_changes_total", "RTP sources learned mid-call (a NAT binding that moved).")
	dRTPSSRC       = desc("cloak_rtp_ssrc_changes_total", "Accepted changes of a peer's SSRC.")
	dRTPPanics     = desc("cloak_rtp_handler_panics_total", "RTP packets whose handler panicked.")
	dRTPLegs       = desc("cloak_rtp_legs_open", "RTP legs (endpoints) open now.")
	dPortsInUse    = desc("cloak_rtp_ports_in_use", "RTP ports in use now.")
	dPorts         = desc("cloak_rtp_ports", "RTP ports in the configured range.")
	dPollWorkers   = desc("cloak_rtp_poll_workers", "Epoll worker goroutines (rtp.io: poll).")
	dPollBatches   = desc("cloak_rtp_poll_batches_total", "Poll wake-ups that found ready sockets.")
	dPollServed    = desc("cloak_rtp_poll_served_total", "Ready sockets served by the poll workers.")
	dPollFull      = desc("cloak_rtp_poll_full_batches_total", "Poll batches that hit the batch limit (a backlog).")
	dPollShed      = desc("cloak_rtp_poll_shed_episodes_total", "Times a poll worker fell a staleness bound behind and shed stale voice from its sockets' queues.")
	dPollBusy      = desc("cloak_rtp_poll_busy_seconds_total", "Time the poll workers spent serving batches.")
	dOverState     = desc("cloak_overload_state", "1 while admission control refuses new calls, else 0.")
	dOverEpisodes  = desc("cloak_overload_episodes_total", "Times the node became overloaded, by the signal that started it.", "signal")
	dOverValue     = desc("cloak_overload_signal_value", "Each admission signal's last sample (lag and recorder_backlog in seconds, cpu a share of the cores, calls a count).", "signal")
	dOverLimit     = desc("cloak_overload_signal_limit", "Each admission signal's limit, in the unit of its value (0: off).", "signal")
	dOverSamples   = desc("cloak_overload_samples_total", "Admission signal evaluations.")
	dOverCost      = desc("cloak_overload_sample_seconds_total", "Time the admission sampler spent sampling.")
	dAgents        = desc("cloak_agents", "Agents by state.", "state")
	dDiskFree      = desc("cloak_recording_disk_free_bytes", "Free bytes on the recordings' filesystem.")
	dDiskSize      = desc("cloak_recording_disk_size_bytes", "Size of the recordings' filesystem.")
	dDiskNeed      = desc("cloak_recording_disk_min_free_bytes", "Free bytes a new recorded call needs (recording.min_free).")
	dDiskError     = desc("cloak_recording_disk_stat_errors", "1 when the recordings' filesystem could not be read at this scrape.")
	dRecUnavail    = desc("cloak_recordings_unavailable_total", "Calls that found no room to record (refused, or answered unrecorded).")
	dRecFailed     = desc("cloak_recordings_failed_total", "Recordings lost to a disk error mid-call.")
	dUnscreened    = desc("cloak_fraud_arrivals_unscreened_total", "Calls answered unscreened by fraud.call, by reason: timeout (no answer within fraud.call.timeout) or error (the screening failed).", "reason")
)

var allDescs = []*prometheus.Desc{dSIPCalls, dSIPSessions, dSIPRequests, dSIPResponses, dSIPRefused, dSIPProbes,
	dSIPForbidden, dSIPBad, dSIPParse, dAuthFailures, dAuthLocks, dAuthKeys, dRTPPackets, dRTPBytes, dRTPDropped,
	dRTPSuppressed, dRTPFill, dRTPErrors, dRTPSource, dRTPSSRC, dRTPPanics, dRTPLegs, dPortsInUse, dPorts, dPollWorkers,
	dPollBatches, dPollServed, dPollFull, dPollShed, dPollBusy, dOverState, dOverEpisodes, dOverValue, dOverLimit,
	dOverSamples, dOverCost, dAgents, dDiskFree, dDiskSize, dDiskNeed, dDiskError, dRecUnavail, dRecFailed, dUnscreened}

// agentStates are every state acd names, so each has a series (0 included).
var agentStates = []string{"logged-out", "available", "ringing", "busy", "reserved"}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := c.src
	if s.SIP != nil {
		st := s.SIP()
		counter(dSIPCalls, float64(st.Calls))
		gauge(dSIPSessions, float64(st.Active))
		for m, n := range st.Requests {
			counter(dSIPRequests, float64(n), m)
		}
		for code, n := range st.Responses {
			counter(dSIPResponses, float64(n), strconv.Itoa(code))
		}
		for r, n := range st.RefusedBy {
			counter(dSIPRefused, float64(n), r)
		}
		counter(dSIPProbes, float64(st.ProbesRefused))
		counter(dSIPForbidden, float64(st.Forbidden))
		counter(dSIPBad, float64(st.BadRequests))
		counter(dSIPParse, float64(st.ParseErrors)) // never by source: an address is not a label
	}
	if s.Auth != nil {
		st := s.Auth()
		counter(dAuthFailures, float64(st.Failures))
		counter(dAuthLocks, float64(st.Locks))
		gauge(dAuthKeys, float64(st.Keys))
	}
	rtp, open := s.RTP()
	counter(dRTPPackets, float64(rtp.RxPackets), "rx")
	counter(dRTPPackets, float64(rtp.TxPackets), "tx")
	counter(dRTPBytes, float64(rtp.RxBytes), "rx")
	counter(dRTPBytes, float64(rtp.TxBytes), "tx")
	counter(dRTPDropped, float64(rtp.DroppedMalformed), "malformed")
	counter(dRTPDropped, float64(rtp.DroppedUnknownSource), "unknown_source")
	counter(dRTPDropped, float64(rtp.DroppedSSRC), "ssrc")
	counter(dRTPDropped, float64(rtp.DroppedPT), "payload_type")
	counter(dRTPDropped, float64(rtp.DroppedDirection), "direction")
	counter(dRTPDropped, float64(rtp.DroppedStale), "stale")
	counter(dRTPDropped, float64(rtp.DroppedSRTP), "srtp")
	counter(dRTPSuppressed, float64(rtp.TxSuppressed))
	counter(dRTPFill, float64(rtp.TxFill))
	counter(dRTPErrors, float64(rtp.ReadErrors), "rx")
	counter(dRTPErrors, float64(rtp.TxErrors), "tx")
	counter(dRTPSource, float64(rtp.SourceChanges))
	counter(dRTPSSRC, float64(rtp.SSRCChanges))
	counter(dRTPPanics, float64(rtp.HandlerPanics))
	gauge(dRTPLegs, float64(open))
	if s.Ports != nil {
		inUse, size := s.Ports()
		gauge(dPortsInUse, float64(inUse))
		gauge(dPorts, float64(size))
	}
	if s.Poller != nil {
		ps := s.Poller()
		gauge(dPollWorkers, float64(ps.Workers))
		counter(dPollBatches, float64(ps.Batches))
		counter(dPollServed, float64(ps.Served))
		counter(dPollFull, float64(ps.FullBatches))
		counter(dPollShed, float64(ps.ShedEpisodes))
		counter(dPollBusy, ps.Busy.Seconds())
	}
	if s.Overload != nil {
		c.collectOverload(s.Overload(), counter, gauge)
	}
	if s.Agents != nil {
		by := make(map[string]int, len(agentStates))
		for _, a := range s.Agents() {
			by[a.State]++ // the state only: never the agent's name
		}
		for _, st := range agentStates {
			gauge(dAgents, float64(by[st]), st)
		}
	}
	if s.Disk != nil {
		free, total, need, err := s.Disk()
		bad := 0.0
		if err != nil {
			bad = 1
		} else {
			gauge(dDiskFree, float64(free))
			gauge(dDiskSize, float64(total))
			gauge(dDiskNeed, float64(need))
		}
		gauge(dDiskError, bad)
	}
	if s.Recording != nil {
		unavailable, failed := s.Recording()
		counter(dRecUnavail, float64(unavailable))
		counter(dRecFailed, float64(failed))
	}
	if s.FraudArrival != nil {
		timeout, failed := s.FraudArrival()
		counter(dUnscreened, float64(timeout), "timeout")
		counter(dUnscreened, float64(failed), "error")
	}
}

func (c *collector) collectOverload(st overload.Stats, counter, gauge func(*prometheus.Desc, float64, ...string)) {
	state := 0.0
	if st.Overloaded {
		state = 1
	}
	gauge(dOverState, state)
	names := make([]string, 0, len(st.Readings))
	for _, r := range st.Readings {
		gauge(dOverValue, r.Value, r.Name)
		gauge(dOverLimit, r.Limit, r.Name)
		names = append(names, r.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		counter(dOverEpisodes, float64(st.EpisodesBy[n]), n) // 0 included, so rate() sees the first episode
	}
	counter(dOverSamples, float64(st.Samples))
	counter(dOverCost, st.SampleCost.Seconds())
}
