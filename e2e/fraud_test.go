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
	"github.com/cloak-voip/cloak/config"
)

// fraudCaller is the held caller's number: on the static list, as the
// From user of the sipp scenario.
const fraudCaller = "+447700900666"

// scenarioFrom writes a copy of a sipp scenario whose From user is user
// (the harness resolves scenarios under testdata/sipp, so it returns the
// copy's path relative to there).
func scenarioFrom(t *testing.T, name, user string) string {
	t.Helper()
	b, err := os.ReadFile(scenario(name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "From: caller <sip:caller@", "From: caller <sip:"+user+"@")
	if s == string(b) {
		t.Fatalf("%s has no From to rewrite", name)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenario(""), path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestFraudPayHeldThenReleased: with fraud enabled and the sipp caller's
// number added to the static list (score 150, minimum 100) by `cloak fraud
// data add` while serve runs, a pay call ends on_hold: the demo gateway
// only authorises it, `cloak fraud holds -json` lists the hold with the
// matched entry and score, `cloak fraud release` captures it at the
// gateway; the data change and the release are in the verified audit log.
// A caller not on the list pays normally (captured, no hold). The test
// card appears in no table and no CLI output.
func TestFraudPayHeldThenReleased(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	c := startCloak(t, ivrOpts("fraud:\n  enabled: true\n  minimum_score: 100\narchive:\n  data:\n    keys:\n      payment_result: {policy: keep}\n"))
	if !c.waitLog(`fraud screening on`, 10*time.Second) {
		t.Fatalf("no screening at start:\n%s", tail(c.log(), 3000))
	}
	var outputs strings.Builder
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, errs := cloakCLI(t, append(args, "-data", c.dataDir)...)
		outputs.WriteString(out + errs)
		return code, out, errs
	}
	if code, out, errs := cli("fraud", "data", "add", "-type", "phone", "-value", fraudCaller, "-score", "150", "-comment", "chargeback"); code != 0 {
		t.Fatalf("data add: %d %s %s", code, out, errs)
	}
	// serve picks the change up within its reload interval (5 s).
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(c.log(), `"entries":1,`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not reload the static data:\n%s", tail(c.log(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}

	pay := func(from string) {
		t.Helper()
		sc := "ivr-info.xml"
		if from != "" {
			sc = scenarioFrom(t, "ivr-info.xml", from)
		}
		runSipp(t, c, sippArgs{
			scenario: sc, service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
			keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
				"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
		})
	}
	pay(fraudCaller)
	if !c.waitLog(`payment held for fraud review`, 10*time.Second) {
		t.Fatalf("the listed caller's payment was not held:\n%s", tail(c.log(), 4000))
	}
	code, out, errs := cli("fraud", "holds", "-status", "open", "-json")
	var holds []archive.Hold
	if code != 0 || json.Unmarshal([]byte(out), &holds) != nil || len(holds) != 1 {
		t.Fatalf("holds: %d %s %s", code, out, errs)
	}
	h := holds[0]
	if h.Code != archive.HoldAuto || h.Score != 150 || h.Minimum != 100 || len(h.Matches) != 1 ||
		h.Matches[0].Value != fraudCaller || h.Matches[0].Score != 150 || h.Matches[0].Type != "phone" ||
		!strings.HasPrefix(h.GatewayReference, "DEMO-") || h.Interaction == "" {
		t.Fatalf("hold %+v", h)
	}

	// A caller not on the list pays normally, while the hold is open.
	pay("")
	if code, out, _ := cli("fraud", "holds", "-json"); code != 0 || strings.Count(out, `"id":`) != 1 {
		t.Fatalf("a second hold appeared: %s", out)
	}

	code, out, errs = cli("fraud", "release", itoa64(h.ID), "-comment", "customer called back, genuine")
	if code != 0 || !strings.Contains(out, h.GatewayReference+" captured") {
		t.Fatalf("release: %d %q %q", code, out, errs)
	}
	// The gateway says so too: a second capture is refused as no longer
	// authorised (and the hold is no longer open).
	if code, _, errs := cli("fraud", "release", itoa64(h.ID), "-comment", "again"); code != 1 || !strings.Contains(errs, "released") {
		t.Fatalf("second release: %d %q", code, errs)
	}
	if code, out, _ := cli("fraud", "holds", "-status", "released", "-json"); code != 0 || !strings.Contains(out, `"decided_by": "cli:`) {
		t.Fatalf("released holds: %s", out)
	}
	if !c.waitLog(`"message":"call ended"`, 5*time.Second) {
		t.Fatal("no call end")
	}
	c.stop()

	o, err := archive.OptionsFrom(config.DefaultArchive(), c.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	// The two calls' results: held for the listed caller, approved for
	// the other.
	results := map[string]string{}
	for _, caller := range []string{fraudCaller, "caller"} {
		found, err := st.Search(ctx, archive.Query{Caller: caller})
		if err != nil || len(found) != 1 {
			t.Fatalf("search %s: %v %v", caller, found, err)
		}
		in, err := st.Get(ctx, found[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range in.Data {
			if d.Key == "payment_result" {
				results[caller] = d.Value
			}
		}
	}
	if results[fraudCaller] != "held" || results["caller"] != "approved" {
		t.Fatalf("payment results %v", results)
	}
	log, err := st.AuditLog(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		if !st.Verify(e) {
			t.Errorf("audit entry %d does not verify", e.ID)
		}
		actions = append(actions, e.Action)
	}
	if a := strings.Join(actions, ","); !strings.Contains(a, archive.ActionFraudData) || !strings.Contains(a, archive.ActionFraudRelease) {
		t.Fatalf("audit actions %v", actions)
	}
	if rep, err := st.VerifyChain(ctx); err != nil || !rep.OK() {
		t.Errorf("audit chain: %+v %v", rep, err)
	}
	// Both screened payments reached the velocity table, as tokens only
	// (the second caller's "number" is no phone number: its row is keyed
	// by the card token alone).
	var vel int
	// (Arrivals are rows without a card token: the listed caller's call.)
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM fraud_velocity WHERE card_token != ''").Scan(&vel); err != nil || vel != 2 {
		t.Errorf("fraud_velocity rows: %d (%v), want 2 (the held and the approved payment)", vel, err)
	}
	for _, v := range dumpTable(t, st.DB(), "fraud_velocity") {
		if strings.Contains(v, strings.TrimPrefix(fraudCaller, "+")) {
			t.Errorf("fraud_velocity holds the caller's number in clear")
		}
	}
	for _, table := range []string{"fraud_entries", "fraud_holds", "fraud_hold_notes", "fraud_velocity", "interactions", "participant_data", "trace_steps", "audit_log"} {
		for _, v := range dumpTable(t, st.DB(), table) {
			if strings.Contains(onlyDigits(v), testCard) {
				t.Errorf("table %s holds the test card", table)
			}
		}
	}
	for what, text := range map[string]string{"a CLI output": outputs.String(), "serve's log": c.log()} {
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(onlyDigits(line), testCard) {
				t.Errorf("%s holds the test card", what)
			}
		}
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
