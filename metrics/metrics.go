package metrics

import (
	"net/http"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/overload"
	"github.com/cloak-voip/cloak/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources are the node's counters, read at each scrape. A nil source's
// series are left out.
type Sources struct {
	// SIP is the SIP server's counters.
	SIP func() sip.Stats
	// RTP is the RTP counters of every leg (media.Totals when nil).
	RTP func() (media.Stats, int)
	// Ports is the RTP port pool: in use now, and its size.
	Ports func() (inUse, size int)
	// Poller is the epoll workers' counters (rtp.io: poll).
	Poller func() media.PollerStats
	// Overload is the admission monitor's state and signals.
	Overload func() overload.Stats
	// Auth is SIP REGISTER's failed-attempt limiter.
	Auth func() authlimit.Stats
	// Agents is the agent directory.
	Agents func() []acd.AgentInfo
	// Disk is the recordings' filesystem (recorder.Space.Free).
	Disk func() (free, total, need uint64, err error)
	// Recording is the calls that found no room to record and the
	// recordings lost to the disk (call.Manager.RecordingStats).
	Recording func() (unavailable, failed uint64)
	// FraudArrival is the calls that went on unscreened by fraud.call:
	// no answer within its timeout, or a screening that failed
	// (call.Manager.ArrivalUnscreenedBy).
	FraudArrival func() (timeout, failed uint64)
	// Extra collectors join the registry as they are. This is the seam
	// for series kept elsewhere: RTCP per-leg quality (loss, jitter,
	// MOS; issue 19) adds a collector here reading its own counters at
	// scrape time, named cloak_rtcp_… with a direction label and no call
	// id, and docs/METRICS.md gains its rows.
	Extra []prometheus.Collector
	// Calls is the call layer's series (NewCalls); nil makes new ones.
	Calls *Calls
}

// Metrics is one node's registry: the scrape-time collector over Sources,
// the call layer's event series (Calls), and Go's runtime and process
// collectors.
type Metrics struct {
	reg   *prometheus.Registry
	calls *Calls
}

// New builds the registry. It fails only when two collectors claim one
// series (a programming error, caught by the tests).
func New(src Sources) (*Metrics, error) {
	if src.RTP == nil {
		src.RTP = media.Totals
	}
	reg := prometheus.NewRegistry()
	calls := src.Calls
	if calls == nil {
		calls = NewCalls()
	}
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "cloak"}),
		&collector{src: src},
		calls,
	}
	cs = append(cs, src.Extra...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &Metrics{reg: reg, calls: calls}, nil
}

// Calls returns the call layer's hook (a call.Metrics).
func (m *Metrics) Calls() *Calls { return m.calls }

// Registry returns the registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition to the clients Access lets through. A
// collector's error fails the scrape (HTTP 500) rather than serving a
// partial one that looks whole.
func (m *Metrics) Handler(a Access) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	})
	return a.guard(h)
}
