package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/call"
)

// TestConsoleDeskFraudRisk (issues 24 and 23): with call-arrival
// screening on (route mark) and the caller's number on the static list
// (score 150, minimum 100), a sipp call through the main flow reaches
// alice's desk in a 420 px window; the desk shows the risk banner
// (role="alert") with the score, the minimum and the criterion "phone" —
// no digit of the number; alice holds the payment with a comment through
// "Hold payment…", and the holds API lists a fraud-manual hold on that
// call with her comment. The browser leak check stays in place.
func TestConsoleDeskFraudRisk(t *testing.T) {
	t.Parallel()
	holdSlot(t, browserSlots)
	requireTools(t, "chromium", "sipp")
	agentPort, agentMedia, callerMedia := freePorts(t, 1, true), freePorts(t, 4, false), freePorts(t, 4, false)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: busy-caller\n    when: \"!payment && calls_today > 2\"\n    score: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCloak(t, ivrOpts(agentYAML(agentPort, "limits: {max_cpu: 0}\n"+
		"fraud:\n  enabled: true\n  minimum_score: 100\n  rules_file: "+rules+
		"\n  call:\n    enabled: true\n    minimum_score: 100\n    route: mark\n    timeout: 2s\n")))
	if !c.waitLog(`fraud screening on`, 10*time.Second) {
		t.Fatalf("no screening at start:\n%s", tail(c.log(), 3000))
	}
	if code, out, errs := cloakCLI(t, "fraud", "data", "add", "-type", "phone", "-value", arrivalListed, "-score", "150", "-comment", "chargeback", "-data", c.dataDir); code != 0 {
		t.Fatalf("data add: %d %s %s", code, out, errs)
	}
	if !c.waitLog(`"entries":1,`, 15*time.Second) {
		t.Fatalf("serve did not reload the static data:\n%s", tail(c.log(), 3000))
	}
	consoleUsers(t, c)
	browser := startBrowser(t, 420, 900)
	ctx, sink := newTab(t, browser)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(420, 900)); err != nil {
		t.Fatal(err)
	}
	browserSignIn(t, ctx, c, "alice")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("no-call"))); err != nil {
		t.Fatal(err)
	}
	if vis, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("hold").hidden`)); vis {
		t.Error("Hold payment… is offered before any call")
	}

	agent := startSipp(t, c, sippArgs{scenario: "agent.xml", uas: true, localPort: agentPort, mediaPort: agentMedia,
		timeout: 90 * time.Second, keys: map[string]string{"pcap": scenario("pcap/agent-talk.pcap")}})
	time.Sleep(300 * time.Millisecond) // sipp UAS listening
	caller := startSipp(t, c, sippArgs{scenario: scenarioFrom(t, "ivr-hangup.xml", arrivalListed), service: "main", mediaPort: callerMedia,
		pause: 20 * time.Second, timeout: 90 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-rfc4733.pcap"), "fmts": "0 101"}})

	wctx, wcancel := context.WithTimeout(ctx, 45*time.Second)
	defer wcancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("call")), chromedp.WaitVisible(chromedp.ID("risk"))); err != nil {
		t.Fatalf("the risk banner never showed: %v\n%s", err, tail(c.log(), 3000))
	}
	banner, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("risk")))
	role, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("risk"), "role"))
	if !strings.Contains(banner, "Fraud risk: score 150 (minimum 100)") || !strings.Contains(banner, "phone") || role.Value != "alert" {
		t.Errorf("banner %q role %+v, want the score, minimum and criterion as an alert", banner, role)
	}
	if strings.Contains(onlyDigits(banner), "7700900") {
		t.Errorf("the banner holds the caller's number: %q", banner)
	}
	data, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("call-data")))
	if strings.Contains(data, "fraud_risk") {
		t.Errorf("the raw mark is repeated in the participant data: %q", data)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); err != nil || w > 420 {
		t.Errorf("the desk is %.0f px wide in a 420 px window (%v)", w, err)
	}
	sink.dom(t, ctx, "risk banner")
	shot(t, ctx, "console-desk-risk")

	var live []call.Info
	if err := apiGet(t, c, "/api/calls", &live); err != nil || len(live) != 1 {
		t.Fatalf("live calls %+v (%v)", live, err)
	}
	const why = "caller hesitated over the billing address"
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	defer hcancel()
	// A blank comment passes the browser's "required" but not the API:
	// the desk shows the API's error and holds nothing.
	if err := chromedp.Do(hctx, chromedp.Click(chromedp.CSS("#hold-details summary")), chromedp.WaitVisible(chromedp.ID("hold-comment")),
		chromedp.SendKeys(chromedp.ID("hold-comment"), "   "), chromedp.Click(chromedp.ID("hold-submit")),
		chromedp.WaitVisible(chromedp.ID("hold-result"))); err != nil {
		t.Fatalf("hold payment, blank comment: %v", err)
	}
	refused, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("hold-result")))
	if !strings.HasPrefix(refused, "Not held: ") || !strings.Contains(refused, "comment") {
		t.Errorf("blank comment: %q, want the API's refusal", refused)
	}
	if _, err := chromedp.Run(hctx, chromedp.Evaluate[string](`document.getElementById("hold-comment").value = ""`)); err != nil {
		t.Fatalf("clear the comment: %v", err)
	}
	if err := chromedp.Do(hctx, chromedp.SendKeys(chromedp.ID("hold-comment"), why), chromedp.Click(chromedp.ID("hold-submit"))); err != nil {
		t.Fatalf("hold payment: %v", err)
	}
	var result string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if result, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("hold-result"))); strings.HasPrefix(result, "Payment held") {
			break
		}
	}
	if !strings.HasPrefix(result, "Payment held: hold ") {
		t.Errorf("hold result %q", result)
	}
	sink.dom(t, ctx, "held")
	var hl struct {
		Holds []archive.Hold `json:"holds"`
	}
	if err := apiGet(t, c, "/api/fraud/holds?code=fraud-manual", &hl); err != nil || len(hl.Holds) != 1 {
		t.Fatalf("GET /api/fraud/holds: %+v %v", hl, err)
	}
	h := hl.Holds[0]
	noted := false
	for _, n := range h.Notes {
		noted = noted || (n.Text == why && n.Author == "user:alice")
	}
	if h.Code != archive.HoldManual || h.Interaction != live[0].ID || h.Status != "open" || !noted {
		t.Errorf("hold %+v, want an open fraud-manual hold on %s with alice's comment", h, live[0].ID)
	}

	caller.wait(t)
	agent.wait(t)
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("call-ended"))); err != nil {
		t.Errorf("the desk did not show the call's end: %v", err)
	}
	sink.dom(t, ctx, "ended")
	sink.checkPages(t)
	checkBrowserLeaks(t, sink)
	c.stop()
}
