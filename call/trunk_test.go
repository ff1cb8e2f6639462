package call

import (
	"testing"

	"github.com/cloak-voip/cloak/dtmf"
)

// TestDTMFModeByTrunk: a route's mode wins, then the trunk's, then
// dtmf.mode.
func TestDTMFModeByTrunk(t *testing.T) {
	m := &Manager{cfg: Config{DTMF: dtmf.Auto,
		DTMFRoutes: map[string]dtmf.Policy{"pay": dtmf.Inband},
		DTMFTrunks: map[string]dtmf.Policy{"carrier": dtmf.RFC4733}}}
	for _, tc := range []struct {
		called, trunk string
		want          dtmf.Policy
	}{
		{"pay", "carrier", dtmf.Inband},
		{"main", "carrier", dtmf.RFC4733},
		{"main", "", dtmf.Auto},
		{"main", "other", dtmf.Auto},
	} {
		if got := m.dtmfMode(tc.called, tc.trunk); got != tc.want {
			t.Errorf("dtmfMode(%q, %q) = %v, want %v", tc.called, tc.trunk, got, tc.want)
		}
	}
}
