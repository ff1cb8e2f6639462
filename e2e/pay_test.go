package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The payment flow's test values. The card is a well-known test number
// (Luhn-valid), the expiry a future MMYY, the CVV three digits; they are
// keyed by the committed pcaps in testdata/sipp/pcap (see the go:generate
// lines of tools/rtppcap) and searched for by the leak canary.
const (
	testCard   = "4111111111111111"
	testExpiry = "1230"
	testCVV    = "737"
)

// ivrOpts is a cloak with the demo flows routed (pay, main), the HTTP API,
// JSON logs and, in extra, more YAML (agents, queues, recording,
// capture...). The payments queue has no agent and a 2 s timeout, so a
// transfer to it fails quickly.
func ivrOpts(extra string, queues ...string) cloakOpts {
	if len(queues) == 0 {
		queues = []string{"{name: sales, timeout: 3s, ring_timeout: 5s, dtmf: mask}"}
	}
	q := "queues:\n"
	for _, s := range append(queues, "{name: payments, timeout: 2s, ring_timeout: 2s, dtmf: mask}") {
		q += "  - " + s + "\n"
	}
	if !strings.Contains(extra, "agents:") {
		q += "agents: []\n"
	}
	return cloakOpts{
		routes: map[string]string{"pay": "flow:pay", "main": "flow:main"},
		admin:  true,
		json:   true,
		extra:  q + extra,
	}
}

// endedByCloak checks that sipp's only call ended with cloak's BYE and
// that cloak logged its end, stops cloak, and returns cloak's log and the
// call's id.
func endedByCloak(t *testing.T, c *cloak, s *sipp) ([]logLine, string) {
	t.Helper()
	if !strings.Contains(s.messages(), "BYE sip:caller@") {
		t.Error("the call did not end with cloak's BYE")
	}
	if !c.waitLog(`"message":"call ended"`, 5*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}
	c.stop()
	lines := parseLog(t, c.log())
	return lines, callOf(t, lines)
}

// callOf returns the id of the only call cloak answered (from its log).
func callOf(t *testing.T, lines []logLine) string {
	t.Helper()
	ans := findLog(lines, "call answered", "")
	if len(ans) == 0 {
		t.Fatal(`no "call answered" in cloak's log`)
	}
	return ans[0].Call
}

// checkStepsInOrder fails unless want appears in steps as a subsequence.
func checkStepsInOrder(t *testing.T, steps []string, want ...string) {
	t.Helper()
	i := 0
	for _, s := range steps {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("flow steps %v: missing %q (in order: %v)", steps, want[i], want)
	}
}

// TestPayApproved: sipp calls pay and keys the card number, expiry and CVV
// as RFC 4733 events (pcap/pay-rfc4733.pcap, each field timed after its
// collect prompt has started). The demo gateway approves; cloak plays
// "approved, goodbye" and hangs up with BYE (the scenario waits for it).
//
// The observable result: the debug log's flow steps (get_card, get_expiry
// and get_cvv on_valid, charge on_success, check_result taking the
// "approved" case, the approved step) and "flow finished" with ending
// "disconnected"; "secure segment ended" names the outputs (keys only).
// The API cannot show the result: pay is IVR-only, so its outputs
// (payment_result=approved, card_last4) become participant data only as
// the flow ends, an instant before the call does; polled every 100 ms it
// shows the call in secure mode throughout.
func TestPayApproved(t *testing.T) {
	requireTools(t, "sipp")
	t.Parallel()
	c := startCloak(t, ivrOpts(""))
	p := startPoller(t, c)
	s := runSipp(t, c, sippArgs{
		scenario: "ivr-call.xml", service: "pay", timeout: 45 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pay-rfc4733.pcap"), "fmts": "0 101"},
	})
	p.finish()
	lines, id := endedByCloak(t, c, s)
	checkStepsInOrder(t, flowSteps(lines, id),
		"welcome:next", "get_card:on_valid", "say_last4:next", "get_expiry:on_valid", "get_cvv:on_valid",
		"charge:on_success", "approved:next", "hangup:")
	fin := findLog(lines, "flow finished", id)
	if len(fin) != 1 || fin[0].str("ending") != "disconnected" {
		t.Errorf(`"flow finished" lines %v, want one with ending "disconnected"`, fin)
	}
	if ended := findLog(lines, "secure segment ended", id); len(ended) != 1 || !strings.Contains(ended[0].text, "payment_result") {
		t.Errorf(`"secure segment ended" lines %v, want one naming payment_result`, ended)
	}
	if _, ok := p.calls[id]; !ok {
		t.Fatalf("the API never listed call %s", id)
	}
	// Secure from the answer (the gate closes before the call is listed:
	// call.Interaction.secureFromAnswer). After the flow's secure segment
	// ends the call hangs up; a poll may catch it normal in between.
	if got := fmt.Sprint(p.modes[id]); got != "[secure]" && got != "[secure normal]" {
		t.Errorf("API modes seen %s, want [secure], or [secure normal] while it hangs up (pay is secure from the answer)", got)
	}
}

// TestPayInvalidCardThreeTimes: the caller keys a Luhn-invalid card
// number three times (pcap/pay-invalid3.pcap). The flow says "invalid",
// tries to transfer to the payments queue (no agent: it times out after
// 2 s), says goodbye and cloak hangs up with BYE.
func TestPayInvalidCardThreeTimes(t *testing.T) {
	requireTools(t, "sipp")
	t.Parallel()
	c := startCloak(t, ivrOpts(""))
	p := startPoller(t, c)
	s := runSipp(t, c, sippArgs{
		scenario: "ivr-call.xml", service: "pay", timeout: 50 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pay-invalid3.pcap"), "fmts": "0 101"},
	})
	p.finish()
	lines, id := endedByCloak(t, c, s)
	steps := flowSteps(lines, id)
	checkStepsInOrder(t, steps, "get_card:on_invalid", "too_many_tries:next", "transferring:next",
		"to_agent_queue:on_failure", "goodbye:next", "hangup:")
	for _, st := range steps {
		if strings.HasPrefix(st, "get_expiry") || strings.HasPrefix(st, "charge") {
			t.Errorf("step %s after an invalid card", st)
		}
	}
	// Three attempts: the collect traced each invalid entry (the trace
	// detail is in the flow history, the log has one line per step).
	if n := len(findLog(lines, "digit", id)); n != 3*17 {
		t.Errorf("%d digits received, want 3 × 17 (16 digits and #)", n)
	}
	if len(findLog(lines, "queue timeout", id)) != 1 {
		t.Error(`no "queue timeout" for the payments queue`)
	}
	if snap := p.calls[id]; snap.Data["payment_result"] == "approved" {
		t.Errorf("participant data %v after three invalid cards", snap.Data)
	}
}
