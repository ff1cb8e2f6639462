package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/server"
)

func TestFraudDataCLI(t *testing.T) {
	dataDir, cfgFile, s := archiveRig(t, "")
	base := []string{"-config", cfgFile, "-data", dataDir}
	if code, out, errs := cli(append([]string{"fraud", "data", "add", "-type", "phone", "-value", "07700 900666", "-score", "150", "-comment", "chargeback"}, base...)...); code != 0 ||
		!strings.Contains(out, "+447700900666") {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	// A card number is refused as a value and as a comment, and not echoed.
	for _, args := range [][]string{
		{"fraud", "data", "add", "-type", "customer_id", "-value", "4111111111111111"},
		{"fraud", "data", "add", "-type", "email", "-value", "a@example.com", "-comment", "card 4111111111111111"},
	} {
		code, out, errs := cli(append(args, base...)...)
		if code != 1 || strings.Contains(out+errs, "4111") {
			t.Fatalf("%v: %d %q %q", args[4:], code, out, errs)
		}
	}
	csv := filepath.Join(t.TempDir(), "data.csv")
	os.WriteFile(csv, []byte("type,value,score,comment\nemail,Fraud@Example.com,40,\nsource,198.51.100.0/24,,botnet\n"), 0o600)
	if code, out, errs := cli(append([]string{"fraud", "data", "import", csv}, base...)...); code != 0 || !strings.Contains(out, "imported 2") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("type,value\npostcode,SW1A 1AA\nemail,nope\n"), 0o600)
	if code, _, errs := cli(append([]string{"fraud", "data", "import", bad}, base...)...); code != 1 || !strings.Contains(errs, "line 3") {
		t.Fatalf("bad import: %d %q", code, errs)
	}
	code, out, _ := cli(append([]string{"fraud", "data", "list", "-json"}, base...)...)
	var entries []fraud.Entry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 3 {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, _, errs := cli(append([]string{"fraud", "data", "remove", "-type", "phone", "-value", "+447700900666"}, base...)...); code != 0 {
		t.Fatalf("remove: %s", errs)
	}
	if code, _, _ := cli(append([]string{"fraud", "data", "remove", "-type", "phone", "-value", "+447700900666"}, base...)...); code != 1 {
		t.Fatal("second remove succeeded")
	}
	log, _ := s.AuditLog(context.Background(), "", 0)
	var n int
	for _, e := range log {
		if e.Action == archive.ActionFraudData {
			n++
		}
	}
	if n != 3 { // add, import, remove
		t.Fatalf("audited %d fraud data changes: %+v", n, log)
	}
}

func TestFraudReleaseRejectCLI(t *testing.T) {
	dataDir, cfgFile, s := archiveRig(t, "")
	base := []string{"-config", cfgFile, "-data", dataDir}
	gw := ivr.NewDemoGW(nil)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	// As serve leaves it when it runs the demo gateway.
	os.WriteFile(filepath.Join(dataDir, server.DemoGatewayURLFile), []byte(srv.URL+"\n"), 0o600)
	authorise := func() string {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL, "application/json",
			strings.NewReader(`{"card_number":"4111111111111111","expiry":"1230","cvv":"123","capture":false}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var gr ivr.GatewayResponse
		json.NewDecoder(resp.Body).Decode(&gr)
		if gr.Status != ivr.StatusAuthorised {
			t.Fatalf("authorise: %+v", gr)
		}
		return gr.Reference
	}
	ctx := context.Background()
	var ids []string
	refs := []string{authorise(), authorise()}
	for i, ref := range refs {
		h, err := s.CreateHold(ctx, archive.Hold{Interaction: "call-" + string(rune('a'+i)), Code: archive.HoldAuto, Score: 150, Minimum: 100,
			Matches: []fraud.Match{{Kind: "static", Type: fraud.TypePhone, Value: "+447700900666", Score: 150}}, GatewayReference: ref, CreatedBy: "node"}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, itoa(h.ID))
	}
	code, out, _ := cli(append([]string{"fraud", "holds", "-status", "open", "-json"}, base...)...)
	var holds []archive.Hold
	if code != 0 || json.Unmarshal([]byte(out), &holds) != nil || len(holds) != 2 || holds[0].Matches[0].Score != 150 {
		t.Fatalf("holds: %d %s", code, out)
	}
	if code, _, _ := cli(append([]string{"fraud", "release", ids[0]}, base...)...); code != 2 {
		t.Fatal("release without a comment accepted")
	}
	if code, out, errs := cli(append([]string{"fraud", "release", ids[0], "-comment", "customer called back"}, base...)...); code != 0 || !strings.Contains(out, "captured") {
		t.Fatalf("release: %d %q %q", code, out, errs)
	}
	if st, _ := gw.Status(refs[0]); st != ivr.StatusCaptured {
		t.Fatalf("gateway after release: %s", st)
	}
	if code, _, _ := cli(append([]string{"fraud", "reject", ids[0], "-comment", "late"}, base...)...); code != 1 {
		t.Fatal("reject of a released hold accepted")
	}
	if code, out, errs := cli(append([]string{"fraud", "reject", ids[1], "-comment", "stolen card reported"}, base...)...); code != 0 || !strings.Contains(out, "voided") {
		t.Fatalf("reject: %d %q %q", code, out, errs)
	}
	if st, _ := gw.Status(refs[1]); st != ivr.StatusVoided {
		t.Fatalf("gateway after reject: %s", st)
	}
	// A gateway that refuses leaves the hold open.
	h3, _ := s.CreateHold(ctx, archive.Hold{Code: archive.HoldAuto, GatewayReference: "DEMO-999999"}, "")
	if code, _, errs := cli(append([]string{"fraud", "release", itoa(h3.ID), "-comment", "x"}, base...)...); code != 1 || !strings.Contains(errs, "left open") {
		t.Fatalf("refused release: %d %q", code, errs)
	}
	if h, _ := s.GetHold(ctx, h3.ID); h.Status != archive.HoldOpen {
		t.Fatalf("hold after refusal: %s", h.Status)
	}
	log, _ := s.AuditLog(ctx, "", 0)
	var actions []string
	for _, e := range log {
		if e.Action == archive.ActionFraudRelease || e.Action == archive.ActionFraudReject {
			if !s.Verify(e) {
				t.Fatalf("unsigned %+v", e)
			}
			actions = append(actions, e.Action+" "+e.Interaction)
		}
	}
	if strings.Join(actions, ",") != "fraud_release call-a,fraud_reject call-b" {
		t.Fatalf("audit: %v", actions)
	}
	code, out, _ = cli(append([]string{"fraud", "holds"}, base...)...)
	if code != 0 || strings.Count(out, "\n") != 3 || strings.Contains(out, "4111") {
		t.Fatalf("holds table: %q", out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFraudManualHoldCLI: `cloak fraud hold` makes a fraud-manual hold
// with its comment, `cloak fraud comment` adds to its thread, both
// audited; both refuse a missing comment.
func TestFraudManualHoldCLI(t *testing.T) {
	dataDir, cfgFile, s := archiveRig(t, "")
	base := []string{"-config", cfgFile, "-data", dataDir}
	if code, _, _ := cli(append([]string{"fraud", "hold", "-interaction", "call-x"}, base...)...); code != 2 {
		t.Fatal("hold without a comment accepted")
	}
	code, out, errs := cli(append([]string{"fraud", "hold", "-interaction", "call-x", "-comment", "coached caller", "-json"}, base...)...)
	var h archive.Hold
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || h.Code != archive.HoldManual || h.Interaction != "call-x" {
		t.Fatalf("hold: %d %s %s", code, out, errs)
	}
	if code, _, _ := cli(append([]string{"fraud", "comment", itoa(h.ID)}, base...)...); code != 2 {
		t.Fatal("comment without text accepted")
	}
	if code, out, errs := cli(append([]string{"fraud", "comment", itoa(h.ID), "-comment", "second look: fine"}, base...)...); code != 0 {
		t.Fatalf("comment: %d %s %s", code, out, errs)
	}
	if code, _, _ := cli(append([]string{"fraud", "comment", "999", "-comment", "x"}, base...)...); code != 1 {
		t.Fatal("comment on a missing hold accepted")
	}
	got, err := s.GetHold(context.Background(), h.ID)
	if err != nil || len(got.Notes) != 2 || got.Notes[0].Text != "coached caller" || got.Notes[1].Kind != archive.NoteComment {
		t.Fatalf("hold after comment: %+v %v", got, err)
	}
	log, _ := s.AuditLog(context.Background(), "call-x", 0)
	if len(log) != 2 || log[0].Action != archive.ActionFraudHold || log[1].Action != archive.ActionFraudComment {
		t.Errorf("audit: %+v", log)
	}
}
