package server

import (
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
)

// stats is the node's counters for the HTTP API's /api/stats: SIP, RTP
// ports, REGISTER's limiter, recording admission, RTCP and call-quality
// totals over ended legs and, with rtp.io: poll, the epoll workers.
func stats(srv *sip.Server, pool *media.PortPool, lim *authlimit.Limiter, mgr *call.Manager, poller *media.Poller) map[string]any {
	st := srv.Stats()
	out := map[string]any{"sip_calls": st.Calls, "sip_active": st.Active, "sip_forbidden": st.Forbidden,
		"sip_bad_requests": st.BadRequests, "sip_overloaded": st.Overloaded, "sip_parse_errors": st.ParseErrors,
		"rtp_ports_in_use": pool.InUse()}
	as := lim.Stats()
	out["sip_auth_locks"], out["sip_auth_tracked"] = as.Locks, as.Keys
	out["recording_unavailable"], out["recording_failed"] = mgr.RecordingStats()
	qs := mgr.QualityStats()
	out["rtp_legs_ended"], out["rtp_legs_low_mos"] = qs.Legs, qs.LowMOS
	out["rtcp_sent"], out["rtcp_received"] = qs.RTCPSent, qs.RTCPReceived
	out["rtcp_malformed"], out["rtcp_rate_limited"] = qs.RTCPMalformed, qs.RTCPRateLimited
	out["rtp_dropped_stale"] = qs.DroppedStale
	out["rtp_dropped_srtp"] = qs.DroppedSRTP
	out["fraud_arrival_unscreened"] = mgr.ArrivalUnscreened()
	if poller != nil {
		ps := poller.Stats()
		out["rtp_poll_workers"] = ps.Workers
		out["rtp_poll_legs"] = ps.Legs
		out["rtp_poll_batches"] = ps.Batches
		out["rtp_poll_served"] = ps.Served
		out["rtp_poll_full_batches"] = ps.FullBatches
		out["rtp_poll_busy_ms"] = ps.Busy.Milliseconds()
		out["rtp_poll_nudges"] = ps.Nudges
		out["rtp_poll_shed_episodes"] = ps.ShedEpisodes
	}
	return out
}
