package call

import (
	"testing"

	"github.com/cloak-voip/cloak/media"
)

// A leg's stale drops reach the node's totals (/api/stats
// rtp_dropped_stale) when it ends.
func TestQualityStatsDroppedStale(t *testing.T) {
	m := Manager{met: nopMetrics{}}
	m.legEnded("caller", media.Quality{Received: 10, MOS: 4.4, DroppedStale: 3})
	m.legEnded("agent", media.Quality{DroppedStale: 4})
	if got := m.QualityStats().DroppedStale; got != 7 {
		t.Fatalf("DroppedStale total %d, want 7", got)
	}
}
