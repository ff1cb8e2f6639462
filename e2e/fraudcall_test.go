package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
)

// Call-arrival screening (fraud.call, docs/FRAUD.md "Screening a call at
// arrival") against real sipp callers.

const (
	// arrivalListed is on the static list (score 150).
	arrivalListed = "+447700900777"
	// arrivalBusy is on no list; a rule scores its third call of the day.
	arrivalBusy = "+447700900200"
)

// arrivalCloak starts cloak with fraud on, call screening routing calls
// at or above 100 to route, the rule "calls_today > 2" (score 100), and
// arrivalListed added to the static list (score 150) by the CLI while it
// runs.
func arrivalCloak(t *testing.T, route string) *cloak {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: busy-caller\n    when: \"!payment && calls_today > 2\"\n    score: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCloak(t, ivrOpts("fraud:\n  enabled: true\n  minimum_score: 100\n  rules_file: "+rules+
		"\n  call:\n    enabled: true\n    minimum_score: 100\n    route: \""+route+"\"\n    timeout: 2s\n"))
	if !c.waitLog(`fraud screening on`, 10*time.Second) {
		t.Fatalf("no screening at start:\n%s", tail(c.log(), 3000))
	}
	if code, out, errs := cloakCLI(t, "fraud", "data", "add", "-type", "phone", "-value", arrivalListed, "-score", "150", "-comment", "chargeback", "-data", c.dataDir); code != 0 {
		t.Fatalf("data add: %d %s %s", code, out, errs)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(c.log(), `"entries":1,`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not reload the static data:\n%s", tail(c.log(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c
}

// echoCall runs a caller from user to the echo route that hangs up after
// a second: it passes only if cloak answers.
func echoCall(t *testing.T, c *cloak, user string) {
	t.Helper()
	runSipp(t, c, sippArgs{scenario: scenarioFrom(t, "ivr-hangup.xml", user), service: "echo", pause: time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "fmts": "0"}})
}

// declinedCall runs a caller from user who must get 603 Decline.
func declinedCall(t *testing.T, c *cloak, user string) {
	t.Helper()
	runSipp(t, c, sippArgs{scenario: scenarioFrom(t, "invite-decline.xml", user), service: "echo"})
}

// archivedRisk returns the fraud_risk participant data of the archived
// calls from caller, oldest first ("" for a call without it).
func archivedRisk(t *testing.T, st *archive.Store, caller string) []string {
	t.Helper()
	ctx := context.Background()
	found, err := st.Search(ctx, archive.Query{Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(found))
	for i, f := range found {
		in, err := st.Get(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range in.Data {
			if d.Key == archive.FraudRiskKey {
				out[len(found)-1-i] = d.Value // search is newest first
			}
		}
	}
	return out
}

func openArchive(t *testing.T, c *cloak) *archive.Store {
	t.Helper()
	o, err := archive.OptionsFrom(config.DefaultArchive(), c.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestFraudCallArrivalReject: with fraud.call.route reject, a caller on
// the static list (150 ≥ 100) gets 603 Decline before any answer; a
// number on no list is answered; the same number's third call of the day
// reaches calls_today 3, matches "calls_today > 2" and is declined — the
// arrivals were recorded. The archive keeps each screened call's
// fraud_risk (score and criteria, no number), nothing for the clean ones.
func TestFraudCallArrivalReject(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	c := arrivalCloak(t, "reject")
	declinedCall(t, c, arrivalListed)
	echoCall(t, c, arrivalBusy)
	echoCall(t, c, arrivalBusy)
	declinedCall(t, c, arrivalBusy)
	if n := strings.Count(c.log(), `call screened at arrival: at or above the minimum`); n != 2 {
		t.Errorf("%d calls at or above the minimum logged, want 2:\n%s", n, tail(c.log(), 4000))
	}
	var stats map[string]any
	if err := apiGet(t, c, "/api/stats", &stats); err != nil || stats["fraud_arrival_unscreened"] != float64(0) {
		t.Errorf("stats: fraud_arrival_unscreened %v (%v)", stats["fraud_arrival_unscreened"], err)
	}
	c.stop()
	st := openArchive(t, c)
	risk := archivedRisk(t, st, arrivalListed)
	if len(risk) != 1 {
		t.Fatalf("listed caller: %d archived calls, want 1 (the declined one)", len(risk))
	}
	var r call.FraudRisk
	if err := json.Unmarshal([]byte(risk[0]), &r); err != nil || r.Score != 150 || !r.Over || r.Route != "reject" ||
		len(r.Matches) != 1 || r.Matches[0].Criterion != "phone" || r.Matches[0].Score != 150 {
		t.Errorf("listed caller's fraud_risk %q (%v)", risk[0], err)
	}
	if strings.Contains(risk[0], "7700900") {
		t.Errorf("fraud_risk holds the number: %s", risk[0])
	}
	busy := archivedRisk(t, st, arrivalBusy)
	if len(busy) != 3 || busy[0] != "" || busy[1] != "" || !strings.Contains(busy[2], `"criterion":"rule:busy-caller"`) {
		t.Errorf("busy caller's marks %q, want none, none, the rule", busy)
	}
	// Three arrivals of the busy caller and one of the listed, as tokens.
	var arrivals int
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM fraud_velocity WHERE card_token = ''").Scan(&arrivals); err != nil || arrivals != 4 {
		t.Errorf("arrival rows %d (%v), want 4", arrivals, err)
	}
	for _, v := range dumpTable(t, st.DB(), "fraud_velocity") {
		if strings.Contains(v, "7700900") {
			t.Errorf("fraud_velocity holds a number in clear")
		}
	}
}

// TestFraudCallArrivalFlow: with fraud.call.route flow:main, a caller on
// the static list who dials the echo route is answered by the main flow
// instead; /api/calls shows the risk mark and the call's event stream
// carries a "fraud_risk" event for the agent desk. A clean caller gets
// the echo route unmarked — until `cloak fraud rules load` adds a rule
// naming them, which serve applies within its 5 s poll.
func TestFraudCallArrivalFlow(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	c := arrivalCloak(t, "flow:main")
	s := startSipp(t, c, sippArgs{scenario: scenarioFrom(t, "ivr-hangup.xml", arrivalListed), service: "echo", pause: 4 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "fmts": "0"}})
	var live []call.Info
	deadline := time.Now().Add(10 * time.Second)
	for len(live) == 0 && time.Now().Before(deadline) {
		_ = apiGet(t, c, "/api/calls", &live)
		time.Sleep(100 * time.Millisecond)
	}
	if len(live) != 1 {
		t.Fatalf("live calls %+v", live)
	}
	if live[0].Target != "flow:main" || !strings.Contains(live[0].Data[call.DataFraudRisk], `"over":true`) {
		t.Errorf("live call target %q data %v, want flow:main with a risk mark", live[0].Target, live[0].Data)
	}
	sse := startSSE(t, c, live[0].ID)
	if !sse.waitFor(func(ev call.Event) bool { return ev.Type == "fraud_risk" && ev.Risk != nil && ev.Risk.Score == 150 }, 5*time.Second) {
		t.Errorf("no fraud_risk event: %+v", sse.events())
	}
	s.wait(t)
	echoCall(t, c, arrivalBusy)
	if !c.waitLog(`"flow":"main"`, 5*time.Second) {
		t.Errorf("the main flow did not run:\n%s", tail(c.log(), 3000))
	}

	// Rules changed in the database while serve runs reach it within its
	// 5 s poll, without a restart: a new rule scores the clean caller.
	rules := filepath.Join(t.TempDir(), "new.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: watched\n    when: caller == \""+arrivalBusy+"\"\n    score: 120\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cloakCLI(t, "fraud", "rules", "load", rules, "-data", c.dataDir); code != 0 || !strings.HasPrefix(out, "version 2:") {
		t.Fatalf("rules load: %d %s %s", code, out, errs)
	}
	loaded := time.Now()
	if !c.waitLog(`"version":2,"rules":1,`, 8*time.Second) {
		t.Fatalf("serve did not reload the rules:\n%s", tail(c.log(), 3000))
	}
	took := time.Since(loaded)
	t.Logf("rules change applied by serve %v after the load", took.Round(10*time.Millisecond))
	if took > 6*time.Second {
		t.Errorf("rules change took %v, want within the 5 s poll", took)
	}
	echoCall(t, c, arrivalBusy) // now routed to flow:main by the new rule
	c.stop()
	st := openArchive(t, c)
	if r := archivedRisk(t, st, arrivalBusy); len(r) != 2 || r[0] != "" || !strings.Contains(r[1], `"criterion":"rule:watched"`) {
		t.Errorf("busy caller's marks %q, want none before the rules change, the new rule after", r)
	}
	found, err := st.Search(context.Background(), archive.Query{Caller: arrivalListed})
	if err != nil || len(found) != 1 {
		t.Fatalf("listed caller archived: %v %v", found, err)
	}
	in, err := st.Get(context.Background(), found[0].ID)
	if err != nil || in.Route != "flow:main" {
		t.Errorf("archived route %q (%v), want flow:main", in.Route, err)
	}
}
