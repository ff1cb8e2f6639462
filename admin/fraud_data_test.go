package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/fraud"
)

// TestFraudDataAndRulesAPI: static data and rules over HTTP behind the
// real Guard — agents and auditors refused on every route, a supervisor
// adds (normalised, by them), lists, imports (all or nothing, bad lines
// named, text/csv only, bounded), removes, replaces the rules (a typo
// refused by name and position, nothing stored) and reads their history;
// every change audited with the user and address, the node told of it;
// a card number refused and never echoed.
func TestFraudDataAndRulesAPI(t *testing.T) {
	ctx := context.Background()
	s, err := archive.Open(ctx, archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: archKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc, err := auth.New(auth.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	toks := map[string]string{}
	for _, role := range []string{"agent", "supervisor", "auditor", "admin"} {
		tok := "cloak_test-" + role + "-token-0123456789abcdef"
		toks[role] = tok
		if err := s.AddToken(ctx, archive.APIToken{ID: role + "-id", Name: role, Role: role, Hash: auth.HashSecret(tok), CreatedBy: "cli:root"}); err != nil {
			t.Fatal(err)
		}
	}
	m := auth.NewMux()
	changes := 0
	RegisterFraud(m, s, FraudOptions{Normaliser: fraud.Normaliser{CountryCode: "44"}, OnChange: func() { changes++ }})
	h := svc.Guard(m)
	do := func(role, method, target, ctype, body string) *httptest.ResponseRecorder {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, target, rd)
		req.RemoteAddr, req.Host = "192.0.2.9:40000", "127.0.0.1:8080"
		req.Header.Set("Authorization", "Bearer "+toks[role])
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if strings.Contains(w.Body.String(), testCard) {
			t.Errorf("%s %s answered the test card", method, target)
		}
		return w
	}
	const js, csvType, yamlType = "application/json", "text/csv", "application/yaml"

	// Every route refused to agents and auditors, before anything runs.
	routes := []struct{ method, target, ctype, body string }{
		{"GET", "/api/fraud/data", "", ""},
		{"POST", "/api/fraud/data", js, `{"type":"phone","value":"07700900666"}`},
		{"DELETE", "/api/fraud/data?type=phone&value=07700900666", "", ""},
		{"POST", "/api/fraud/data/import", csvType, "type,value\nphone,07700900666\n"},
		{"GET", "/api/fraud/rules", "", ""},
		{"PUT", "/api/fraud/rules", yamlType, "rules: []\n"},
		{"GET", "/api/fraud/rules/history", "", ""},
	}
	for _, role := range []string{"agent", "auditor"} {
		for _, r := range routes {
			if w := do(role, r.method, r.target, r.ctype, r.body); w.Code != http.StatusForbidden {
				t.Errorf("%s: %s %s: %d, want 403", role, r.method, r.target, w.Code)
			}
		}
	}
	if all, _ := s.All(ctx); len(all) != 0 || changes != 0 {
		t.Fatalf("refused requests changed something: %v, %d changes", all, changes)
	}

	// Add: normalised, added by the supervisor; refusals.
	w := do("supervisor", "POST", "/api/fraud/data", js, `{"type":"phone","value":"07700 900666","score":150,"comment":"chargeback"}`)
	var e fraud.Entry
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Value != "+447700900666" ||
		e.Score == nil || *e.Score != 150 || e.AddedBy != "token:supervisor#supervisor-id" {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	for body, code := range map[string]int{
		`{"type":"customer_id","value":"` + testCard + `"}`:                   400,
		`{"type":"email","value":"a@b.example","comment":"` + testCard + `"}`: 400,
		`{"type":"planet","value":"mars"}`:                                    400,
		`{"type":"email","value":"not-an-email"}`:                             400,
		`{"type":"email","value":"a@b.example","score":2000000}`:              400,
		`{"type":"email"}`: 400,
		`{"type":"email","value":"a@b.example","extra":1}`: 400,
	} {
		if w := do("supervisor", "POST", "/api/fraud/data", js, body); w.Code != code {
			t.Errorf("add %s: %d %s, want %d", strings.ReplaceAll(body, testCard, "CARD"), w.Code, w.Body, code)
		}
	}
	if w := do("supervisor", "POST", "/api/fraud/data", "text/plain", `{"type":"email","value":"a@b.example"}`); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("add as text/plain: %d", w.Code)
	}

	// Import: text/csv only; a bad line names its line and imports nothing.
	if w := do("supervisor", "POST", "/api/fraud/data/import", "text/plain", "type,value\nemail,a@b.example\n"); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("import as text/plain: %d", w.Code)
	}
	w = do("supervisor", "POST", "/api/fraud/data/import", csvType, "type,value,score\nemail,Fraud@Example.com,40\nemail,nope,\nbin,"+testCard+",\n")
	var bad struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if w.Code != 400 || json.Unmarshal(w.Body.Bytes(), &bad) != nil || bad.Error != "nothing imported" ||
		!strings.Contains(strings.Join(bad.Problems, "\n"), "line 3") || !strings.Contains(strings.Join(bad.Problems, "\n"), "line 4") {
		t.Errorf("bad import: %d %s", w.Code, w.Body)
	}
	w = do("supervisor", "POST", "/api/fraud/data/import", csvType, "type,value,score,comment\nemail,Fraud@Example.com,40,\nsource,198.51.100.0/24,,botnet\n")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"imported": 2`) {
		t.Errorf("import: %d %s", w.Code, w.Body)
	}
	big := "type,value\n" + strings.Repeat("email,a@b.example\n", archive.MaxImportBytes/18+1)
	if w := do("supervisor", "POST", "/api/fraud/data/import", csvType, big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized import: %d", w.Code)
	}

	// List: paged, filtered by type.
	var list struct {
		Total   int           `json:"total"`
		Entries []fraud.Entry `json:"entries"`
	}
	w = do("supervisor", "GET", "/api/fraud/data?limit=2", "", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || list.Total != 3 || len(list.Entries) != 2 || list.Entries[0].Value != "fraud@example.com" {
		t.Errorf("list: %d %s", w.Code, w.Body)
	}
	w = do("supervisor", "GET", "/api/fraud/data?type=source", "", "")
	if json.Unmarshal(w.Body.Bytes(), &list) != nil || list.Total != 1 || list.Entries[0].Value != "198.51.100.0/24" {
		t.Errorf("list sources: %d %s", w.Code, w.Body)
	}
	for _, q := range []string{"?type=planet", "?limit=-1", "?limit=x", "?offset=1e9"} {
		if w := do("supervisor", "GET", "/api/fraud/data"+q, "", ""); w.Code != 400 {
			t.Errorf("list %s: %d", q, w.Code)
		}
	}

	// Remove: the value normalised as it was added; absent is 404.
	if w := do("admin", "DELETE", "/api/fraud/data?type=phone&value=07700%20900666", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "+447700900666") {
		t.Errorf("remove: %d %s", w.Code, w.Body)
	}
	if w := do("admin", "DELETE", "/api/fraud/data?type=phone&value=07700%20900666", "", ""); w.Code != 404 {
		t.Errorf("remove again: %d %s", w.Code, w.Body)
	}
	if w := do("admin", "DELETE", "/api/fraud/data?type=phone", "", ""); w.Code != 400 {
		t.Errorf("remove without a value: %d", w.Code)
	}

	// Rules: a typo refused by name and position, nothing stored.
	typo := "rules:\n  - name: fine\n    when: payment\n    score: 10\n  - name: typo\n    when: payment && amout > 500\n    score: 60\n"
	w = do("supervisor", "PUT", "/api/fraud/rules", yamlType, typo)
	if w.Code != 400 || json.Unmarshal(w.Body.Bytes(), &bad) != nil || len(bad.Problems) != 1 ||
		!strings.Contains(bad.Problems[0], `request:5: rule "typo" at line 1 column`) || !strings.Contains(bad.Problems[0], "amout") {
		t.Errorf("typo: %d %s", w.Code, w.Body)
	}
	if v, rules, _ := s.Rules(ctx); v != 0 || len(rules) != 0 {
		t.Errorf("a refused set stored: version %d, %v", v, rules)
	}
	for ctype, body := range map[string]string{"text/plain": "rules: []\n", yamlType: "  \n", js: `{"rules":[{"name":"x","when":"payment","score":1,"colour":"red"}]}`} {
		if w := do("supervisor", "PUT", "/api/fraud/rules", ctype, body); w.Code/100 != 4 {
			t.Errorf("PUT rules %s %q: %d", ctype, body, w.Code)
		}
	}
	w = do("supervisor", "PUT", "/api/fraud/rules", js, `{"rules":[{"name":"big","when":"payment && amount >= 500","score":60,"comment":"large"}]}`)
	var res archive.RulesResult
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Version != 1 || len(res.Added) != 1 {
		t.Fatalf("PUT rules: %d %s", w.Code, w.Body)
	}
	w = do("supervisor", "GET", "/api/fraud/rules", "", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"version": 1`) || !strings.Contains(w.Body.String(), `"name": "big"`) {
		t.Errorf("GET rules: %d %s", w.Code, w.Body)
	}
	w = do("supervisor", "GET", "/api/fraud/rules/history?limit=5", "", "")
	var hist struct {
		History []archive.RuleChange `json:"history"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &hist) != nil || len(hist.History) != 1 ||
		hist.History[0].Actor != "token:supervisor#supervisor-id" || hist.History[0].Source != "api" || hist.History[0].Action != archive.RuleAdded {
		t.Errorf("history: %d %s", w.Code, w.Body)
	}

	// Audited with who and from where; the node told of each change
	// (add, import, remove, rules).
	log, err := s.AuditLog(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range log {
		if a.Action == archive.ActionFraudData || a.Action == archive.ActionFraudRules {
			got = append(got, a.Actor+" "+a.Address+" "+a.Detail)
		}
	}
	want := []string{
		"token:supervisor#supervisor-id 192.0.2.9 add phone",
		"token:supervisor#supervisor-id 192.0.2.9 import 2 entries",
		"token:admin#admin-id 192.0.2.9 remove phone",
		"token:supervisor#supervisor-id 192.0.2.9 version 1 from api: added 1, changed 0, removed 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if changes != 4 {
		t.Errorf("the node was told of %d changes, want 4", changes)
	}
}
