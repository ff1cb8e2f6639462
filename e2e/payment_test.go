package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/ivr"
)

// Issue 29: the agent-assisted payment, end to end. sipp calls main and
// keys 2 (the sales queue); cloak calls the agent (sipp UAS, talking
// 600 Hz all along, never keying); once bridged, the test opens a payment
// through the API; the caller keys the card, the expiry and the CVV
// (caller-agent-*.pcap, 1004 Hz "speech" between the keys) while the
// agent keeps talking; the test follows the call's SSE stream, submits
// when every field is valid, and the gateway — the demo gateway, run by
// the test on loopback so it can say what it received — approves.
//
// Asserted: the SSE stream shows per-field counts, validity and the
// brand, and no digit (no last four before the result); the submit's
// response and the payment_result event say approved with the last four;
// the gateway received the card; what the agent received (tshark on its
// RTP port) holds no telephone-event, one mask tone per key and no DTMF
// digit (`cloak dtmf scan`, multimon-ng, the dtmf detector), while the
// caller's speech and the agent's voice go on through the payment; the
// recording pauses with a "payment" marker and holds no digit; the leak
// canary finds the card, expiry and CVV nowhere cloak wrote.
func TestAgentAssistedPayment(t *testing.T) {
	requireTools(t, "sipp", "tshark", "multimon-ng", "sox")
	for _, tc := range []struct{ name, pcap, fmts string }{
		{"inband", "pcap/caller-agent-inband.pcap", "0"},
		{"rfc4733", "pcap/caller-agent-rfc4733.pcap", "0 101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw := startTestGateway(t)
			hep := startHEPCollector(t)
			r := &agentRig{agentPcap: "pcap/agent-talk.pcap", callerPcap: tc.pcap, callerFmts: tc.fmts,
				callerScenario: "ivr-hangup.xml", callerPause: 29 * time.Second}
			r.start(t, canaryYAML(hep.addr)+gw.yaml())
			id := waitBridged(t, r.c)
			sse := startSSE(t, r.c, id)
			code, body := apiPost(t, r.c, "/api/calls/"+id+"/payments",
				`{"fields":["card","expiry","cvv"],"amount":"12.50","currency":"GBP","reference":"order-29"}`)
			if code != http.StatusCreated {
				t.Fatalf("POST payments: %d %s", code, body)
			}
			var opened struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(body), &opened); err != nil || opened.ID == "" {
				t.Fatalf("POST payments: %s", body)
			}
			// A second payment on the same call is refused.
			if code, body := apiPost(t, r.c, "/api/calls/"+id+"/payments", `{"amount":"1.00","currency":"GBP"}`); code != http.StatusConflict {
				t.Errorf("a second payment: %d %s, want 409", code, body)
			}
			if !sse.waitFor(func(ev call.Event) bool { return ev.Type == "payment_field" && ev.Payment.Ready }, 25*time.Second) {
				t.Fatalf("the fields never all became valid; events: %s", sse.summary())
			}
			code, body = apiPost(t, r.c, "/api/calls/"+id+"/payments/"+opened.ID+"/submit", "")
			var sub struct {
				Result ivr.ChargeResult `json:"result"`
			}
			_ = json.Unmarshal([]byte(body), &sub)
			if code != http.StatusOK || sub.Result.Result != ivr.GatewayApproved || sub.Result.Last4 != testCard[12:] {
				t.Errorf("submit: %d %s, want approved with the last four", code, body)
			}
			lines, recs := r.finish(t)
			sse.wait(t)
			if !gw.gotCard.Load() {
				t.Error("the gateway did not receive the test card")
			}
			checkPaymentEvents(t, sse)
			checkPaymentAudio(t, r, lines, recs, id)
			checkPaymentArchived(t, r.c, id)
			checkCanary(t, r.c, lines, hep.finish(), "2")
		})
	}
}

// checkPaymentArchived: the interaction in the archive has the payment's
// outcome as a segment (outputs under the participant-data policy), and
// no card.
func checkPaymentArchived(t *testing.T, c *cloak, id string) {
	t.Helper()
	code, out, errs := cloakCLI(t, "archive", "show", id, "-json", "-data", c.dataDir)
	if code != 0 {
		t.Fatalf("archive show: exit %d: %s", code, errs)
	}
	var shown archive.Interaction
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err)
	}
	var seg *archive.Segment
	for i := range shown.Segments {
		if shown.Segments[i].Flow == "agent-assisted-payment" {
			seg = &shown.Segments[i]
		}
	}
	if seg == nil || seg.Kind != "agent-assisted" || seg.End.IsZero() || seg.Outputs["payment_result"] == "" ||
		seg.Outputs["card_last4"] == "" || seg.Outputs["payment_ended"] == "" {
		t.Errorf("archived segments %+v, want the agent-assisted payment with its outcome", shown.Segments)
	}
	if strings.Contains(onlyDigits(out), testCard) {
		t.Error("LEAK: the archived interaction holds the card")
	}
	t.Logf("archived payment segment: %+v", seg)
}

// waitBridged waits for the agent to be bridged and returns the call id.
func waitBridged(t *testing.T, c *cloak) string {
	t.Helper()
	if !c.waitLog("agent answered: bridging", 15*time.Second) {
		t.Fatal("the agent was never bridged")
	}
	calls, err := apiCalls(t, c)
	if err != nil || len(calls) != 1 {
		t.Fatalf("GET /api/calls: %v, %d calls", err, len(calls))
	}
	return calls[0].ID
}

// checkPaymentEvents: counts and validity only, the last four only in
// the result.
func checkPaymentEvents(t *testing.T, sse *sseReader) {
	t.Helper()
	counts := map[string]int{}
	states := map[string]string{}
	var brand string
	var result *ivr.ChargeResult
	var ended string
	for _, ev := range sse.events() {
		if ev.Payment == nil {
			continue
		}
		p := ev.Payment
		cp := *p
		cp.ID = "" // random hex: may hold any digits
		b, _ := json.Marshal(cp)
		for _, s := range []string{testCard, testCard[:6], testExpiry, testCVV} {
			if strings.Contains(string(b), s) {
				t.Errorf("LEAK: a %s event carries %q: %s", ev.Type, s, b)
			}
		}
		switch ev.Type {
		case "payment_field":
			counts[p.Field] = max(counts[p.Field], p.Count)
			states[p.Field] = p.State
			if p.Brand != "" {
				brand = p.Brand
			}
			if strings.Contains(string(b), testCard[12:]) {
				t.Errorf("LEAK: a field event carries the last four before the result: %s", b)
			}
		case "payment_result":
			result = p.Result
		case "payment_ended":
			ended = p.Reason
		}
	}
	if counts["card"] != 16 || counts["expiry"] != 4 || counts["cvv"] != 3 {
		t.Errorf("field counts %v, want card 16, expiry 4, cvv 3", counts)
	}
	for _, f := range []string{"card", "expiry", "cvv"} {
		if states[f] != "valid" {
			t.Errorf("field %s ended %q, want valid", f, states[f])
		}
	}
	if brand != "visa" {
		t.Errorf("brand %q, want visa", brand)
	}
	if result == nil || result.Result != ivr.GatewayApproved || result.Last4 != testCard[12:] || result.Reference == "" {
		t.Errorf("payment_result %+v, want approved, a reference, the last four", result)
	}
	if ended != "submitted" {
		t.Errorf("payment ended %q, want submitted", ended)
	}
}

// checkPaymentAudio: what the agent and the caller received during the
// payment.
func checkPaymentAudio(t *testing.T, r *agentRig, lines []logLine, recs []udpRecord, id string) {
	t.Helper()
	start := one(t, lines, "payment started", id).Time
	end := one(t, lines, "payment ended", id)
	if end.str("result") != "approved" || end.str("card_last4") != testCard[12:] {
		t.Errorf("payment ended with %q, last four %q", end.str("result"), end.str("card_last4"))
	}
	pay := rtpBetween(recs, r.agentMedia, start, end.Time)
	all := rtpBetween(recs, r.agentMedia, time.Time{}, end.Time.Add(10*time.Second))
	if all.events != 0 {
		t.Errorf("%d telephone-event packets reached the agent", all.events)
	}
	// One mask tone per key the caller pressed during the payment (16 +
	// '#', 4, 3: the CVV's '#' comes after the submit when the test is
	// quick, and is masked in normal mode as the queue says).
	var keys int
	for _, l := range findLog(lines, "digit", id) {
		if !l.Time.Before(start) && l.Time.Before(end.Time) {
			keys++
		}
	}
	bursts, frames := toneBursts(pay.pcm, call.MaskToneHz)
	t.Logf("agent during the payment: %d packets, %d mask tone bursts (%d frames); caller's %d Hz share %.2f",
		pay.packets, bursts, frames, callerHz, toneShare(pay.pcm, callerHz))
	if keys < 16+1+4+3 || bursts != keys {
		t.Errorf("the agent heard %d mask tones for %d keys, want one per key (at least 24 keys)", bursts, keys)
	}
	// The caller's speech (their 1004 Hz) passes between the keys: count
	// its frames, so that frames a loaded machine dropped as stale (the
	// agent then gets filler) do not count against it.
	if _, speech := toneBursts(pay.pcm, callerHz); speech < 50 {
		t.Errorf("the agent heard %d frames of the caller's speech during the payment, want at least 50 (1 s)", speech)
	} else {
		t.Logf("the agent heard %d frames of the caller's speech during the payment", speech)
	}
	level, _, heard := audio.ActiveLevel(pay.pcm)
	t.Logf("agent's audio level during the payment: %.1f dBm0 (heard %v)", level, heard)
	wav := filepath.Join(t.TempDir(), "agent-heard.wav")
	writeWAV(t, wav, all.pcm)
	if code, out := dtmfScan(t, wav); code != 0 {
		t.Errorf("cloak dtmf scan found digits in what the agent heard:\n%s", out)
	}
	if out := multimonDTMF(t, wav); out != "" {
		t.Errorf("multimon-ng found digits in what the agent heard: %q", out)
	}
	for _, d := range detectRTPDigits(t, recs) {
		if strings.HasSuffix(d.flow, fmt.Sprintf(":%d", r.agentMedia)) {
			t.Errorf("a DTMF tone reached the agent at %s", d.at.Format("15:04:05.000"))
		}
	}
	// The caller heard the agent all along (the call is never held).
	cPay := rtpBetween(recs, r.callerMedia, start, end.Time)
	if sh := toneShare(cPay.pcm, agentHz); sh < 0.3 {
		t.Errorf("the caller did not hear the agent during the payment (%d Hz share %.2f)", agentHz, sh)
	}
	if modes := r.poll.modes[id]; !containsStr(modes, "payment") || modes[len(modes)-1] != "normal" {
		t.Errorf("modes seen %v, want payment, then normal", modes)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// toneBursts counts the runs of 20 ms frames that are mostly hz.
func toneBursts(pcm []int16, hz float64) (bursts, frames int) {
	in := false
	for i := 0; i+160 <= len(pcm); i += 160 {
		f := pcm[i : i+160]
		on := audio.RMS(f) > 200 && toneShare(f, hz) > 0.5
		if on {
			frames++
			if !in {
				bursts++
			}
		}
		in = on
	}
	return bursts, frames
}

// multimonDTMF runs multimon-ng's DTMF decoder over a WAV and returns the
// digits it found.
func multimonDTMF(t *testing.T, wav string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "multimon-ng", "-q", "-c", "-a", "DTMF", "-t", "wav", wav).CombinedOutput()
	if err != nil {
		t.Fatalf("multimon-ng: %v\n%s", err, out)
	}
	var digits []string
	for _, l := range strings.Split(string(out), "\n") {
		if d, ok := strings.CutPrefix(l, "DTMF: "); ok {
			digits = append(digits, d)
		}
	}
	return strings.Join(digits, "")
}

// testGateway is the demo payment gateway on a loopback port of the
// test's own, noting whether a request carried the test card (and
// keeping nothing of it).
type testGateway struct {
	url     string
	gotCard atomic.Bool
}

func startTestGateway(t *testing.T) *testGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{url: "http://" + ln.Addr().String() + "/pay"}
	demo := ivr.NewDemoGW(nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 8192))
		if bytes.Contains(b, []byte(`"card_number":"`+testCard+`"`)) {
			g.gotCard.Store(true)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		demo.ServeHTTP(w, r)
		clear(b)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g
}

func (g *testGateway) yaml() string {
	return fmt.Sprintf("flows:\n  endpoints:\n    payment_gateway: %s\n", g.url)
}

// sseReader follows GET /api/calls/{id}/events until "ended".
type sseReader struct {
	mu   sync.Mutex
	evs  []call.Event
	raw  bytes.Buffer
	done chan struct{}
}

func startSSE(t *testing.T, c *cloak, id string) *sseReader {
	t.Helper()
	s := &sseReader{done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.adminURL+"/api/calls/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.token) // the harness's admin token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET events: %v", err)
	}
	go func() {
		defer close(s.done)
		defer cancel()
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.raw.WriteString(line + "\n")
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var ev call.Event
				if json.Unmarshal([]byte(data), &ev) == nil {
					s.evs = append(s.evs, ev)
				}
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sseReader) events() []call.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call.Event(nil), s.evs...)
}

// waitFor waits until an event matches.
func (s *sseReader) waitFor(match func(call.Event) bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, ev := range s.events() {
			if match(ev) {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// wait waits for the stream's end (the call's "ended").
func (s *sseReader) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Error("the event stream did not end with the call")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range []string{testCard, testCard[:8]} {
		if strings.Contains(s.raw.String(), x) {
			t.Errorf("LEAK: the event stream carries %q", x)
		}
	}
}

// summary is the payment events seen so far, for failure messages.
func (s *sseReader) summary() string {
	var b strings.Builder
	for _, ev := range s.events() {
		if ev.Payment != nil {
			fmt.Fprintf(&b, "%s %s %d %s; ", ev.Type, ev.Payment.Field, ev.Payment.Count, ev.Payment.State)
		}
	}
	return b.String()
}

// TestAgentAssistedPaymentClearRestartHangup: the agent clears the card
// once the caller has keyed it (its secret wiped, the field empty and
// focused) and focuses the expiry, the caller keys expiry and CVV (the
// focus then wraps round to the card), the agent restarts the payment (every field empty), and the
// caller hangs up with the payment open: it ends "hangup", nothing was
// sent to the gateway, and the leak canary finds nothing anywhere.
func TestAgentAssistedPaymentClearRestartHangup(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	gw := startTestGateway(t)
	hep := startHEPCollector(t)
	r := &agentRig{agentPcap: "pcap/agent-talk.pcap", callerPcap: "pcap/caller-agent-rfc4733.pcap", callerFmts: "0 101",
		callerScenario: "ivr-hangup.xml", callerPause: 29 * time.Second}
	r.start(t, canaryYAML(hep.addr)+gw.yaml())
	id := waitBridged(t, r.c)
	sse := startSSE(t, r.c, id)
	code, body := apiPost(t, r.c, "/api/calls/"+id+"/payments", `{"amount":"5.00","currency":"EUR","reference":"R-1"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST payments: %d %s", code, body)
	}
	var opened struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &opened)
	base := "/api/calls/" + id + "/payments/" + opened.ID
	fieldIs := func(field, state string) func(call.Event) bool {
		return func(ev call.Event) bool {
			return ev.Type == "payment_field" && ev.Payment.Field == field && ev.Payment.State == state
		}
	}
	if !sse.waitFor(fieldIs("card", "valid"), 20*time.Second) {
		t.Fatalf("the card never became valid: %s", sse.summary())
	}
	if code, body := apiPost(t, r.c, base+"/clear", `{"field":"card"}`); code != http.StatusOK || !strings.Contains(body, `"state": "empty"`) {
		t.Fatalf("clear: %d %s", code, body)
	}
	if code, body := apiPost(t, r.c, base+"/submit", ""); code != http.StatusConflict {
		t.Errorf("submit with the card cleared: %d %s, want 409", code, body)
	}
	// The cleared card has the focus; the agent moves it on to the expiry.
	if code, body := apiPost(t, r.c, base+"/focus", `{"field":"expiry"}`); code != http.StatusOK || !strings.Contains(body, `"focus": "expiry"`) {
		t.Fatalf("focus: %d %s", code, body)
	}
	if !sse.waitFor(fieldIs("cvv", "valid"), 15*time.Second) {
		t.Fatalf("the CVV never became valid: %s", sse.summary())
	}
	var focus string
	for _, ev := range sse.events() {
		if fieldIs("cvv", "valid")(ev) {
			focus = ev.Payment.Focus
		}
	}
	if focus != "card" {
		t.Errorf("after the CVV the focus is %q, want card (cleared)", focus)
	}
	if code, body := apiPost(t, r.c, base+"/restart", ""); code != http.StatusOK || strings.Contains(body, `"valid"`) {
		t.Errorf("restart: %d %s, want every field empty", code, body)
	}
	if code, body := apiPost(t, r.c, base+"/focus", `{"field":"pin"}`); code != http.StatusBadRequest {
		t.Errorf("focus on an unknown field: %d %s, want 400", code, body)
	}
	lines, _ := r.finish(t)
	sse.wait(t)
	end := one(t, lines, "payment ended", id)
	if end.str("reason") != "hangup" || end.str("result") != "" {
		t.Errorf("payment ended %q with result %q, want hangup and none", end.str("reason"), end.str("result"))
	}
	if gw.gotCard.Load() {
		t.Error("the gateway received the card of a payment never submitted")
	}
	var ended string
	for _, ev := range sse.events() {
		if ev.Type == "payment_ended" {
			ended = ev.Payment.Reason
		}
	}
	if ended != "hangup" {
		t.Errorf("payment_ended event reason %q, want hangup", ended)
	}
	checkCanary(t, r.c, lines, hep.finish(), "2")
}

// TestAgentAssistedPaymentAgentLeaves: the agent hangs up while the
// caller keys the card: the payment ends "agent_left" (its fields wiped,
// nothing sent), and cloak ends the call with a BYE to the caller rather
// than leave them alone in payment mode.
func TestAgentAssistedPaymentAgentLeaves(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	gw := startTestGateway(t)
	r := &agentRig{agentPcap: "pcap/agent-talk.pcap", agentScenario: "agent-hangup.xml", agentPause: 9 * time.Second,
		callerPcap: "pcap/caller-agent-rfc4733.pcap", callerFmts: "0 101", callerScenario: "ivr-call.xml"}
	r.start(t, gw.yaml())
	id := waitBridged(t, r.c)
	sse := startSSE(t, r.c, id)
	if code, body := apiPost(t, r.c, "/api/calls/"+id+"/payments", `{"amount":"5.00","currency":"GBP"}`); code != http.StatusCreated {
		t.Fatalf("POST payments: %d %s", code, body)
	}
	lines, _ := r.finish(t)
	sse.wait(t)
	if l := one(t, lines, "payment ended", id); l.str("reason") != "agent_left" {
		t.Errorf("payment ended %q, want agent_left", l.str("reason"))
	}
	if l := one(t, lines, "cloak ends the call", id); l.str("reason") != "agent hung up" {
		t.Errorf("cloak ended the call for %q, want agent hung up", l.str("reason"))
	}
	if !strings.Contains(r.caller.messages(), "BYE sip:caller@") {
		t.Error("the caller got no BYE from cloak")
	}
	if gw.gotCard.Load() {
		t.Error("the gateway received a card")
	}
	var ended string
	var keyed int
	for _, ev := range sse.events() {
		switch {
		case ev.Type == "payment_ended":
			ended = ev.Payment.Reason
		case ev.Type == "payment_field":
			keyed = max(keyed, ev.Payment.Count)
		}
	}
	if ended != "agent_left" || keyed == 0 {
		t.Errorf("payment_ended %q after %d keys, want agent_left after some keys", ended, keyed)
	}
}
