package call

import (
	"slices"
	"testing"
)

// TestEndingIsBounded: every reason the package ends a call with folds
// into Endings, and anything else (a flow's own hang-up reason, a SIP
// reason nobody listed) into a member of it, never into itself.
func TestEndingIsBounded(t *testing.T) {
	for _, tc := range []struct{ reason, sip, want string }{
		{"closed", "", "caller_hangup"},
		{"closed", "hangup", "caller_hangup"},
		{"closed", "bye", "caller_hangup"},
		{"closed", "no ACK", "no_ack"},
		{"closed", "cancel", "caller_cancel"},
		{"closed", "rejected 480", "rejected"},
		{"closed", "4111111111111111", "other"},
		{"agent hung up", "", "agent_hangup"},
		{"flow: anything the flow says 5555555555554444", "", "flow_hangup"},
		{"flow finished", "", "flow_finished"},
		{"secure flow ended", "", "secure_flow_ended"},
		{"dial failed", "", "dial_failed"},
		{"played", "", "played"},
		{"rtp-timeout", "", "rtp_timeout"},
		{"shutdown", "", "shutdown"},
		{"error", "", "error"},
		{"+4420794600000", "", "other"},
	} {
		got := ending(tc.reason, tc.sip)
		if got != tc.want {
			t.Errorf("ending(%q, %q) = %q, want %q", tc.reason, tc.sip, got, tc.want)
		}
		if !slices.Contains(Endings, got) {
			t.Errorf("ending(%q, %q) = %q, not in Endings", tc.reason, tc.sip, got)
		}
	}
	for target, want := range map[string]string{"echo": "echo", "flow:pay": "flow:pay",
		"dial:sip:+4420794600000@10.0.0.7": "dial", "prompt:goodbye": "prompt:goodbye"} {
		if got := routeLabel(target); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", target, got, want)
		}
	}
}
