package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
)

// TestLeakCanaryFraud is the leak canary over fraud screening: a caller
// on the static list keys the canary card, expiry and CVV into pay (held,
// authorised only); the holds API is driven as a reviewer would (list,
// show, a manual hold, comments — one carrying the card, refused without
// an echo), rules are loaded and their history read, and the CLI lists
// holds, data and rules. Then every fraud table (entries, holds, notes,
// velocity, rules, rule history), participant data and the audit log,
// every API and CLI answer, and every byte under the data dir are
// searched with the canary's forms (the card and its first twelve digits,
// strict and loose; expiry and CVV as tokens in JSON). What may appear is
// the BIN, the last four and the card token; the test checks the token is
// there, so the search looks where the card's trace is.
func TestLeakCanaryFraud(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: big-card\n    when: payment && bin startsWith \"4111\" && last4 == \"1111\"\n    score: 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCloak(t, ivrOpts("fraud:\n  enabled: true\n  minimum_score: 100\n  rules_file: "+rules+
		"\n  call:\n    enabled: true\n    route: mark\narchive:\n  data:\n    keys:\n      payment_result: {policy: keep}\n      card_last4: {policy: keep}\n"))
	if !c.waitLog(`fraud screening on`, 10*time.Second) {
		t.Fatalf("no screening:\n%s", tail(c.log(), 3000))
	}
	var answers strings.Builder // every API and CLI answer, searched below
	cli := func(args ...string) (int, string) {
		t.Helper()
		code, out, errs := cloakCLI(t, append(args, "-data", c.dataDir)...)
		fmt.Fprintf(&answers, "cloak %s\n%s\n%s\n", strings.Join(args, " "), out, errs)
		return code, out
	}
	api := func(method, path, body string) (int, string) {
		t.Helper()
		code, out := apiDo(t, c, method, path, body)
		fmt.Fprintf(&answers, "%s %s %d\n%s\n", method, path, code, out)
		return code, out
	}
	if code, out := cli("fraud", "data", "add", "-type", "phone", "-value", fraudCaller, "-score", "150", "-comment", "chargeback"); code != 0 {
		t.Fatalf("data add: %s", out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(c.log(), `"entries":1,`) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", tail(c.log(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	runSipp(t, c, sippArgs{
		scenario: scenarioFrom(t, "ivr-info.xml", fraudCaller), service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
		keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
			"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
	})
	if !c.waitLog(`payment held for fraud review`, 10*time.Second) {
		t.Fatalf("not held:\n%s", tail(c.log(), 4000))
	}
	if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal("no call end")
	}

	// The holds API as a reviewer drives it.
	code, out := api(http.MethodGet, "/api/fraud/holds?status=open", "")
	var list struct{ Holds []archive.Hold }
	if code != 200 || json.Unmarshal([]byte(out), &list) != nil || len(list.Holds) != 1 {
		t.Fatalf("holds: %d %s", code, out)
	}
	h := list.Holds[0]
	id := strconv.FormatInt(h.ID, 10)
	if len(h.Matches) != 2 || h.Score != 160 {
		t.Errorf("hold matches %+v score %d, want the listed number and the BIN rule", h.Matches, h.Score)
	}
	api(http.MethodGet, "/api/fraud/holds/"+id, "")
	if code, out := api(http.MethodPost, "/api/fraud/holds/"+id+"/comments", `{"comment":"caller read `+testCard+` exp `+testExpiry+` cvv `+testCVV+`"}`); code != 400 {
		t.Errorf("a comment with the card: %d %s", code, out)
	}
	if code, out := api(http.MethodPost, "/api/fraud/holds/"+id+"/comments", `{"comment":"called back from the number on file"}`); code != 201 {
		t.Errorf("comment: %d %s", code, out)
	}
	if code, out := api(http.MethodPost, "/api/fraud/holds", `{"interaction":"`+h.Interaction+`","comment":"second look: coached caller"}`); code != 201 {
		t.Errorf("manual hold: %d %s", code, out)
	}
	api(http.MethodGet, "/api/fraud/holds", "")
	api(http.MethodGet, "/api/archive/interactions/"+h.Interaction, "")
	api(http.MethodGet, "/api/archive/audit", "")
	cli("fraud", "holds", "-json")
	cli("fraud", "data", "list", "-json")
	if code, out := cli("fraud", "rules", "load", filepath.Join(root, "testdata", "fraud", "rules.yaml")); code != 0 {
		t.Errorf("rules load: %s", out)
	}
	cli("fraud", "rules", "history", "-json")
	cli("fraud", "rules", "list", "-json")
	c.stop()

	if os.Getenv("CLOAK_E2E_PLANT") != "" {
		// Proof the canary can fail: a hold note written straight into the
		// database, past the checks that refuse a card.
		st := openArchive(t, c)
		if _, err := st.DB().Exec(`INSERT INTO fraud_hold_notes (hold_id, seq, at, author, kind, text) VALUES (?, 99, 0, 'x', 'comment', ?)`,
			h.ID, "card "+digitsRe(testCard, " ")); err != nil {
			t.Fatal(err)
		}
		st.Close()
		t.Logf("CLOAK_E2E_PLANT: planted the card in fraud_hold_notes; this test must fail")
	}

	cn := newCanary(testCard, testExpiry, testCVV)
	var leaks []leak
	// Every API and CLI answer.
	for i, line := range strings.Split(answers.String(), "\n") {
		where := fmt.Sprintf("API/CLI answer line %d", i+1)
		leaks = append(leaks, cn.scanBytes(where, 0, []byte(line), true)...)
		leaks = append(leaks, cn.scanJSON(where, 0, []byte(line))...)
	}
	var whole []archive.Hold
	_, holdsJSON := cli("fraud", "holds", "-json")
	if err := json.Unmarshal([]byte(holdsJSON), &whole); err != nil {
		t.Fatal(err)
	}
	leaks = append(leaks, cn.scanBytes("cloak fraud holds -json after the stop", 0, []byte(holdsJSON), true)...)
	for _, hd := range whole {
		b, _ := json.Marshal(hd)
		leaks = append(leaks, cn.scanJSON(fmt.Sprintf("hold %d", hd.ID), 0, b)...)
	}
	// Every fraud table, participant data and the audit log, row by row.
	st := openArchive(t, c)
	var tokens int
	for _, table := range []string{"fraud_entries", "fraud_holds", "fraud_hold_notes", "fraud_velocity", "fraud_rules", "fraud_rule_history",
		"fraud_rules_head", "participant_data", "audit_log", "interactions", "trace_steps", "secure_segments"} {
		rows := dumpTable(t, st.DB(), table)
		for i, v := range rows {
			where := fmt.Sprintf("table %s row %d", table, i)
			leaks = append(leaks, cn.scanBytes(where, 0, []byte(v), true)...)
			leaks = append(leaks, cn.scanJSON(where, 0, []byte(v))...)
		}
		if table == "fraud_velocity" {
			var n int
			if err := st.DB().QueryRow(`SELECT COUNT(*) FROM fraud_velocity WHERE length(card_token) = 64`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			tokens = n
		}
	}
	if tokens != 1 {
		t.Errorf("%d velocity rows with a card token, want the held payment's (the card's trace is its token)", tokens)
	}
	// Every byte under the data dir (the database files included).
	files := listFiles(t, c.dataDir)
	for _, f := range files {
		leaks = append(leaks, cn.scanFile(t, f)...)
	}
	t.Logf("searched %d files, %d bytes of API/CLI answers, 12 tables", len(files), answers.Len())
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
}
