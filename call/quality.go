package call

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// RTCP mux modes (config rtp.rtcp.mux).
const (
	RTCPMuxOffer   = "offer"   // a=rtcp-mux in the answer when the offer has it
	RTCPMuxRequire = "require" // and refuse offers without it (488)
	RTCPMuxOff     = "off"     // never: RTCP on RTP's port + 1
)

// LegQuality is one leg's call-quality figures (media.Quality) with the
// leg's role, for the API and the archive (Summary.Quality).
type LegQuality struct {
	// Leg is "caller" or "agent".
	Leg string `json:"leg"`
	// Agent is the agent's name (config agents[].name) on an agent leg,
	// when known.
	Agent string `json:"agent,omitempty"`
	media.Quality
}

// QualityStats are the node's RTCP and quality totals over the legs
// ended so far, for /api/stats.
type QualityStats struct {
	// Legs counts ended legs that received RTP; LowMOS those whose MOS
	// was below 3.6 (G.107's "many users dissatisfied" and worse).
	Legs, LowMOS uint64
	// RTCPSent, RTCPReceived, RTCPMalformed and RTCPRateLimited are the
	// legs' RTCP counters summed.
	RTCPSent, RTCPReceived, RTCPMalformed, RTCPRateLimited uint64
	// DroppedStale is the legs' media.Stats.DroppedStale summed: voice
	// dropped for arriving later than rtp.max_staleness.
	DroppedStale uint64
	// DroppedSRTP is the legs' media.Stats.DroppedSRTP summed: SRTP and
	// SRTCP datagrams that failed authentication or were replayed.
	DroppedSRTP uint64
}

// LowMOS is the MOS under which a leg counts in QualityStats.LowMOS.
const LowMOS = 3.6

type qualityStats struct {
	legs, lowMOS, sent, received, malformed, rateLimited atomic.Uint64
	stale, srtp                                          atomic.Uint64
}

// QualityStats returns the totals over the legs ended so far.
func (m *Manager) QualityStats() QualityStats {
	q := &m.quality
	return QualityStats{Legs: q.legs.Load(), LowMOS: q.lowMOS.Load(), RTCPSent: q.sent.Load(),
		RTCPReceived: q.received.Load(), RTCPMalformed: q.malformed.Load(), RTCPRateLimited: q.rateLimited.Load(),
		DroppedStale: q.stale.Load(), DroppedSRTP: q.srtp.Load()}
}

// legEnded adds an ended leg's figures ("caller" or "agent") to the
// totals and the metrics.
func (m *Manager) legEnded(leg string, q media.Quality) {
	if q.Received > 0 {
		m.met.LegEnded(leg, q)
	}
	t := &m.quality
	t.sent.Add(q.RTCPSent)
	t.received.Add(q.RTCPReceived)
	t.malformed.Add(q.RTCPMalformed)
	t.rateLimited.Add(q.RTCPRateLimited)
	t.stale.Add(q.DroppedStale)
	t.srtp.Add(q.DroppedSRTP)
	if q.Received > 0 {
		t.legs.Add(1)
		if q.MOS < LowMOS {
			t.lowMOS.Add(1)
		}
	}
}

// rtcpMuxAllowed reports whether cloak answers a=rtcp-mux when offered.
func (m *Manager) rtcpMuxAllowed() bool { return m.cfg.RTCP && m.cfg.RTCPMux != RTCPMuxOff }

// legToward opens a new leg for a peer at dst (invalid: somewhere on the
// caller's network): its endpoint, and the address and port our SDP
// gives for it.
func (c *Interaction) legToward(dst netip.Addr) (*media.Endpoint, sip.LocalSDP, error) {
	if !dst.IsValid() {
		dst = c.s.Source().Addr()
	}
	addr, err := c.m.mediaAddrFor(dst)
	if err != nil {
		return nil, sip.LocalSDP{}, err
	}
	cfg, port, err := c.m.openLeg(c.log)
	if err != nil {
		return nil, sip.LocalSDP{}, err
	}
	return media.NewEndpoint(cfg), sip.LocalSDP{Addr: addr, Port: port}, nil
}

// openLeg reserves a leg's port (with its RTCP neighbour when RTCP is
// on) and returns its endpoint configuration.
func (m *Manager) openLeg(log zerolog.Logger) (media.EndpointConfig, int, error) {
	if !m.cfg.RTCP {
		conn, port, err := m.cfg.Pool.Open()
		if err != nil {
			return media.EndpointConfig{}, 0, err
		}
		return m.endpointConfig(conn, port, log), port, nil
	}
	conn, rc, port, err := m.cfg.Pool.OpenPair()
	if err != nil {
		return media.EndpointConfig{}, 0, err
	}
	cfg := m.endpointConfig(conn, port, log)
	cfg.RTCP, cfg.RTCPInterval = true, m.cfg.RTCPInterval
	if rc != nil {
		cfg.RTCPConn = net.PacketConn(rc)
	}
	return cfg, port, nil
}

// logQuality adds a leg's summary to an end-of-leg log line: packets,
// loss, jitter, round trip, MOS (RFC 3550 figures, see media.Quality).
func logQuality(ev *zerolog.Event, q media.Quality) *zerolog.Event {
	return ev.Uint32("pkts", q.Received).Int32("lost", q.Lost).Float64("loss_pct", q.LossPercent).
		Float64("jitter_ms", q.JitterMs).Float64("rtt_ms", q.RTTMs).Float64("mos", q.MOS).
		Float64("peer_loss_pct", q.PeerFractionLostPct).Float64("peer_jitter_ms", q.PeerJitterMs).
		Uint64("rtcp_rx", q.RTCPReceived).Uint64("rtcp_tx", q.RTCPSent).Uint64("dropped_srtp", q.DroppedSRTP).Uint64("dropped_srtcp", q.DroppedSRTCP)
}
