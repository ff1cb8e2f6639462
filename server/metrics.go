package server

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/metrics"
	"github.com/cloak-voip/cloak/overload"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
)

// errMetricsToken is a metrics.token_file that cannot serve as a token.
var errMetricsToken = errors.New("metrics.token_file")

// metricsAccess reads metrics.token_file: no file, no extra token.
func metricsAccess(cfg config.Metrics) (metrics.Access, error) {
	if cfg.TokenFile == "" {
		return metrics.Access{}, nil
	}
	b, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return metrics.Access{}, fmt.Errorf("%w: %w", errMetricsToken, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return metrics.Access{}, fmt.Errorf("%w %s: want one token of at least 16 characters, no spaces", errMetricsToken, cfg.TokenFile)
	}
	return metrics.Access{Token: tok}, nil
}

// nodeMetrics builds the node's registry over the counters /api/stats
// reads (see metrics.Sources); calls is what the call manager was given.
func nodeMetrics(calls *metrics.Calls, srv *sip.Server, pool *media.PortPool, poller *media.Poller,
	mon *overload.Monitor, lim *authlimit.Limiter, mgr *call.Manager, space *recorder.Space) (*metrics.Metrics, error) {
	src := metrics.Sources{
		Calls:        calls,
		SIP:          srv.Stats,
		Ports:        func() (int, int) { return pool.InUse(), pool.Size() },
		Overload:     mon.Stats,
		Auth:         lim.Stats,
		Recording:    mgr.RecordingStats,
		Disk:         space.Free,
		FraudArrival: mgr.ArrivalUnscreenedBy,
	}
	if poller != nil {
		src.Poller = poller.Stats
	}
	if d := mgr.Directory(); d != nil {
		src.Agents = d.Agents
	}
	return metrics.New(src)
}
