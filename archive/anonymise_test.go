package archive

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAnonymise(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		dir := t.TempDir()
		now := time.Now()
		var batch []Interaction
		for _, c := range []struct{ id, caller, customer string }{
			{"a", "+4407", "C-777"}, {"b", "+4408", "C-777"}, {"c", "+4409", "C-888"},
		} {
			sum := summary(c.id, c.caller, now)
			sum.Data["customer_id"] = c.customer
			in := s.FromSummary(sum, "n")
			in.Recording.File, in.Recording.Sidecar = filepath.Join(dir, c.id+".wav"), ""
			if err := os.WriteFile(in.Recording.File, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, in)
		}
		if err := s.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Anonymise(ctx, AnonymiseOptions{Actor: "cli:ops"}); err == nil {
			t.Error("anonymise of nobody accepted")
		}
		ids, err := s.Anonymise(ctx, AnonymiseOptions{Number: "+4407", Data: map[string]string{"customer_id": "C-777"}, Actor: "cli:ops", Address: "local"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, []string{"a", "b"}) {
			t.Errorf("changed %v, want [a b]", ids)
		}
		for _, q := range []Query{{Caller: "+4407"}, {Data: map[string]string{"customer_id": "C-777"}}} {
			if res, _ := s.Search(ctx, q); len(res) != 0 {
				t.Errorf("%+v still finds %d interactions", q, len(res))
			}
		}
		a, _ := s.Get(ctx, "a")
		if a.Caller != Anonymised || a.Recording == nil || !a.Recording.DeletedAt.IsZero() {
			t.Errorf("a: caller %q, recording %+v (kept unless asked)", a.Caller, a.Recording)
		}
		for _, d := range a.Data {
			if d.Key == "customer_id" && (d.Value != Anonymised || d.Token != "") {
				t.Errorf("a's customer_id: %+v", d)
			}
		}
		if c, _ := s.Get(ctx, "c"); c.Caller != "+4409" {
			t.Errorf("c was touched: %+v", c)
		}
		if res, _ := s.Search(ctx, Query{Data: map[string]string{"customer_id": "C-888"}}); len(res) != 1 {
			t.Errorf("c's data no longer found")
		}
		log, _ := s.AuditLog(ctx, "", 0)
		if len(log) != 2 {
			t.Errorf("%d audit rows, want 2", len(log))
		}
		for _, e := range log {
			if e.Action != ActionAnonymise || strings.Contains(e.Detail, "4407") || strings.Contains(e.Detail, "777") || !s.Verify(e) {
				t.Errorf("audit row %+v", e)
			}
		}

		ids, err = s.Anonymise(ctx, AnonymiseOptions{Number: "+4409", DeleteRecordings: true, RecordingsDir: dir, Actor: "cli:ops"})
		if err != nil || !reflect.DeepEqual(ids, []string{"c"}) {
			t.Fatalf("second anonymise: %v %v", ids, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "c.wav")); !os.IsNotExist(err) {
			t.Errorf("c's recording kept though deletion was asked: %v", err)
		}
	})
}

// TestAnonymiseKeptValuesInOutputsAndTrace: a kept value (and the number)
// sitting in a secure segment's outputs or a trace detail is replaced
// too; another person's interaction is left alone.
func TestAnonymiseKeptValuesInOutputsAndTrace(t *testing.T) {
	policy := Policy{Default: KeyPolicy{Policy: MaskAfterCall, Visible: 2}, Keys: map[string]KeyPolicy{"email": {Policy: Keep}, "note": {Policy: Keep}, "payment_result": {Policy: Keep}}}
	engines(t, policy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		var batch []Interaction
		for _, c := range []struct{ id, caller, email string }{{"p", "+4407123", "jo@example.com"}, {"q", "+4408123", "al@example.com"}} {
			sum := summary(c.id, c.caller, now)
			sum.Data = map[string]string{"email": c.email}
			sum.Segments[0].Outputs = map[string]string{"email": c.email, "payment_result": "approved", "note": "receipt to " + c.email}
			sum.Trace[0].Detail = "key email = " + c.email
			sum.Trace = append(sum.Trace, sum.Trace[0])
			sum.Trace[2].Detail = "callback " + c.caller + " offered"
			batch = append(batch, s.FromSummary(sum, "n"))
		}
		if err := s.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		ids, err := s.Anonymise(ctx, AnonymiseOptions{Number: "+4407123", Data: map[string]string{"email": "jo@example.com"}, Actor: "cli:ops"})
		if err != nil || !reflect.DeepEqual(ids, []string{"p"}) {
			t.Fatalf("anonymise: %v %v", ids, err)
		}
		p, _ := s.Get(ctx, "p")
		outs := p.Segments[0].Outputs
		if outs["email"] != Anonymised || outs["note"] != "receipt to "+Anonymised || outs["payment_result"] != "approved" {
			t.Errorf("p's outputs: %v", outs)
		}
		for _, st := range p.Trace {
			if strings.Contains(st.Detail, "jo@example.com") || strings.Contains(st.Detail, "4407123") {
				t.Errorf("p's trace still holds the person: %q", st.Detail)
			}
		}
		if p.Trace[0].Detail != "key email = "+Anonymised || p.Trace[2].Detail != "callback "+Anonymised+" offered" {
			t.Errorf("p's trace: %q, %q", p.Trace[0].Detail, p.Trace[2].Detail)
		}
		// Nothing of the person left anywhere in those tables.
		for _, table := range []string{"secure_segments", "trace_steps"} {
			var n int
			col := map[string]string{"secure_segments": "outputs", "trace_steps": "detail"}[table]
			if err := s.DB().QueryRow(s.q(`SELECT COUNT(*) FROM `+table+` WHERE interaction_id = 'p' AND (`+col+` LIKE ? OR `+col+` LIKE ?)`),
				"%jo@example.com%", "%4407123%").Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows still hold the person (%v)", table, n, err)
			}
		}
		q, _ := s.Get(ctx, "q")
		if q.Segments[0].Outputs["email"] != "al@example.com" || q.Trace[0].Detail != "key email = al@example.com" {
			t.Errorf("q was touched: %v %q", q.Segments[0].Outputs, q.Trace[0].Detail)
		}
		log, _ := s.AuditLog(ctx, "p", 0)
		if len(log) != 1 || !strings.Contains(log[0].Detail, "trace") || !strings.Contains(log[0].Detail, "segment_outputs") ||
			strings.Contains(log[0].Detail, "jo@") {
			t.Errorf("audit: %+v", log)
		}
	})
}
