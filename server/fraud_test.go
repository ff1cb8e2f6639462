package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/rs/zerolog"
)

func TestFraudSetup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	// Off: nothing.
	if f, err := fraudSetup(ctx, cfg, &nodeArchive{}, zerolog.Nop()); f != nil || err != nil {
		t.Fatalf("off: %v %v", f, err)
	}
	cfg.Fraud.Enabled = true
	if _, err := fraudSetup(ctx, cfg, &nodeArchive{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "archive.enabled") {
		t.Fatalf("without the archive: %v", err)
	}
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer arch.close(time.Second)
	cfg.Fraud.RulesFile = "../testdata/fraud/rules.yaml"
	f, err := fraudSetup(ctx, cfg, arch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.tokenKey) != 32 {
		t.Fatalf("token key %d bytes", len(f.tokenKey))
	}
	// Data added after start is seen after a reload; a held payment's
	// hold lands in the archive.
	if err := arch.store.Add(ctx, fraud.Entry{Type: fraud.TypePhone, Value: "+447700900666", Added: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.reload(ctx); err != nil {
		t.Fatal(err)
	}
	var s ivr.Screener = f
	d, err := s.Screen(ctx, fraud.Attributes{Caller: "07700 900666", Payment: &fraud.Payment{BIN: "41111111", Last4: "1111", Amount: 10}})
	if err != nil || !d.Hold || d.Score < cfg.Fraud.MinimumScore {
		t.Fatalf("decision %+v %v", d, err)
	}
	if err := s.Hold(ctx, ivr.Hold{Interaction: "i-1", Decision: d, Reference: "DEMO-000001"}); err != nil {
		t.Fatal(err)
	}
	holds, err := arch.store.Holds(ctx, archive.HoldOpen)
	if err != nil || len(holds) != 1 || holds[0].Code != archive.HoldAuto || holds[0].GatewayReference != "DEMO-000001" {
		t.Fatalf("holds %+v %v", holds, err)
	}
	// A bad rules file refuses the start, naming the field.
	cfg.Fraud.RulesFile = "/nonexistent.yaml"
	if _, err := fraudSetup(ctx, cfg, arch, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "fraud.rules_file") {
		t.Fatalf("bad rules: %v", err)
	}
}

// TestFraudVelocityFromArchive: payments the node records (national
// format caller, as a flow hands it) reach the archive's velocity table
// and the next screening's velocity attributes, so a velocity rule
// matches in serve.
func TestFraudVelocityFromArchive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Fraud.Enabled = true
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: declines-then-pay\n    when: payment && declines_caller >= 2 && payments_customer >= 2\n    score: 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Fraud.RulesFile = rules
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer arch.close(time.Second)
	f, err := fraudSetup(ctx, cfg, arch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	a := fraud.Attributes{Time: time.Now(), Caller: "07700 900123", Data: map[string]string{"customer_id": "C-9"},
		Payment: &fraud.Payment{BIN: "41111111", Last4: "1111", Amount: 10}}
	var s ivr.Screener = f
	if d, err := s.Screen(ctx, a); err != nil || d.Hold {
		t.Fatalf("first payment: %+v %v", d, err)
	}
	rec, ok := s.(ivr.PaymentRecorder)
	if !ok {
		t.Fatal("the node's screener records no payment")
	}
	rec.RecordPayment(ctx, a, "i-1", true)
	rec.RecordPayment(ctx, a, "i-2", true)
	d, err := s.Screen(ctx, a)
	if err != nil || !d.Hold || d.VelocityError != "" || len(d.Matches) != 1 || d.Matches[0].Rule != "declines-then-pay" {
		t.Fatalf("after two declines: %+v %v", d, err)
	}
}

// TestFraudRulesFromDatabase: fraud.rules_file seeds the database once
// (a second node on the same database finds it seeded and keeps it); a
// change stored by another writer reaches both nodes at their next
// reload without a restart; a stored set that does not compile is
// refused with the rule's name and the old rules go on screening.
func TestFraudRulesFromDatabase(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Fraud.Enabled = true
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: premium\n    when: caller startsWith \"+449\"\n    score: 150\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Fraud.RulesFile = rules
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer arch.close(time.Second)
	var logs [2]*strings.Builder
	var nodes [2]*nodeFraud
	for i := range nodes {
		logs[i] = &strings.Builder{}
		if nodes[i], err = fraudSetup(ctx, cfg, arch, zerolog.New(logs[i])); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs[0].String(), "seeded into the database") || strings.Contains(logs[1].String(), "seeded") {
		t.Errorf("seeding: node 1 %q node 2 %q", logs[0].String(), logs[1].String())
	}
	hist, err := arch.store.RulesHistory(ctx, 0)
	if err != nil || len(hist) != 1 || !strings.HasPrefix(hist[0].Actor, "node:") || hist[0].Source != rules {
		t.Fatalf("history after two starts: %+v %v", hist, err)
	}
	premium := fraud.Attributes{Caller: "+449001234567"}
	busy := fraud.Attributes{Caller: "+447700900123", Verstat: "TN-Validation-Failed"}
	score := func(f *nodeFraud, a fraud.Attributes) int {
		d, err := f.screener.Screen(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return d.Score
	}
	for i, f := range nodes {
		if score(f, premium) != 150 || score(f, busy) != 0 {
			t.Fatalf("node %d before the change", i+1)
		}
	}
	// Another writer (the CLI) replaces the set.
	if _, err := arch.store.ReplaceRules(ctx, []fraud.Rule{{Name: "unverified", When: `verstat == "TN-Validation-Failed"`, Score: 70}}, "cli:ops", "new.yaml"); err != nil {
		t.Fatal(err)
	}
	for i, f := range nodes {
		if err := f.reload(ctx); err != nil {
			t.Fatal(err)
		}
		if score(f, premium) != 0 || score(f, busy) != 70 {
			t.Errorf("node %d after the change: premium %d busy %d", i+1, score(f, premium), score(f, busy))
		}
	}
	// A set edited by hand into something that does not compile.
	if _, err := arch.store.DB().Exec(`UPDATE fraud_rules SET rule_when = 'verstat == 1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := arch.store.DB().Exec(`UPDATE fraud_rules_head SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].reload(ctx); err != nil {
		t.Fatal(err)
	}
	if score(nodes[0], busy) != 70 {
		t.Errorf("a refused set replaced the rules")
	}
	if l := logs[0].String(); !strings.Contains(l, "fraud rules in the database refused") || !strings.Contains(l, `rule \"unverified\"`) {
		t.Errorf("refusal not logged with the rule's name:\n%s", l)
	}
	n := strings.Count(logs[0].String(), "refused")
	_ = nodes[0].reload(ctx)
	if strings.Count(logs[0].String(), "refused") != n {
		t.Errorf("the refusal is logged again at the next poll")
	}
}

// BenchmarkScreenArrival is what answering a call waits for with
// fraud.call on: the arrival's velocity row written, the static lookups,
// the velocity counts (calls_today among them) and the example rules,
// over a SQLite archive holding b.N earlier arrivals.
//
//	go test -run '^$' -bench ScreenArrival -benchtime 500x ./server/
func BenchmarkScreenArrival(b *testing.B) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Data.Dir = b.TempDir()
	cfg.Fraud.Enabled = true
	cfg.Fraud.Call.Enabled = true
	cfg.Fraud.RulesFile = "../testdata/fraud/rules.yaml"
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer arch.close(time.Second)
	f, err := fraudSetup(ctx, cfg, arch, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	a := fraud.Attributes{Caller: "+447700900123", Verstat: "TN-Validation-Passed", Route: "main", Time: time.Now()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.ScreenArrival(ctx, a, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFraudChangesNotified: on PostgreSQL a rules change and a static
// entry added reach two nodes' screening through LISTEN/NOTIFY, with the
// 5 s poll turned off (an hour), each within a second of the change's
// commit; the propagation times are logged (docs/FRAUD.md).
func TestFraudChangesNotified(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func(d time.Duration) { fraudReload = d }(fraudReload)
	fraudReload = time.Hour
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Archive.DSN = dsn
	cfg.Fraud.Enabled = true
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer arch.close(time.Second)
	var nodes [2]*nodeFraud
	for i := range nodes {
		if nodes[i], err = fraudSetup(ctx, cfg, arch, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
	}
	// Each node kicks itself once its LISTEN is up; let both settle.
	time.Sleep(300 * time.Millisecond)
	// within waits until every node scores a at want, and returns how
	// long that took.
	within := func(what string, a fraud.Attributes, want int) time.Duration {
		start := time.Now()
		for _, f := range nodes {
			for {
				d, err := f.screener.Screen(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				if d.Score == want {
					break
				}
				if time.Since(start) > 3*time.Second {
					t.Fatalf("%s: not applied after %v (score %d, want %d)", what, time.Since(start), d.Score, want)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		took := time.Since(start)
		if took > time.Second {
			t.Errorf("%s: applied after %v, want < 1 s", what, took)
		}
		return took
	}
	premium := fraud.Attributes{Caller: "+449001234567"}
	listed := fraud.Attributes{Caller: "+447700900666"}
	if _, err := arch.store.ReplaceRules(ctx, []fraud.Rule{{Name: "premium", When: `caller startsWith "+449"`, Score: 150}}, "cli:ops", "r.yaml"); err != nil {
		t.Fatal(err)
	}
	rules := within("rules", premium, 150)
	norm := fraud.Normaliser{CountryCode: "44"}
	if _, err := arch.store.AddEntry(ctx, norm, archive.Changer{Actor: "cli:ops", Address: "local"}, fraud.Entry{Type: fraud.TypePhone, Value: "07700 900666"}); err != nil {
		t.Fatal(err)
	}
	data := within("static data", listed, cfg.Fraud.DefaultScores["phone"])
	if _, err := arch.store.RemoveEntry(ctx, norm, archive.Changer{Actor: "cli:ops", Address: "local"}, "phone", "+447700900666"); err != nil {
		t.Fatal(err)
	}
	removed := within("removal", listed, 0)
	t.Logf("propagation to 2 nodes over LISTEN/NOTIFY: rules %v, entry added %v, entry removed %v", rules, data, removed)
}
