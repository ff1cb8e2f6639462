package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
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
