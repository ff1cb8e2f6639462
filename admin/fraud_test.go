package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
)

type fraudFixture struct {
	s   *archive.Store
	gw  *ivr.DemoGW
	url string // the demo gateway's
	h   http.Handler
}

func newFraudFixture(t *testing.T) *fraudFixture {
	t.Helper()
	s, err := archive.Open(context.Background(), archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: archKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	gw := ivr.NewDemoGW(time.Now)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &fraudFixture{s: s, gw: gw, url: srv.URL, h: fraudMux(s, FraudOptions{Gateway: archive.HTTPGateway(func() (string, error) { return srv.URL, nil })})}
}

// fraudMux is RegisterFraud's routes served as if Guard had let an admin
// through.
func fraudMux(s *archive.Store, o FraudOptions) http.Handler {
	m := auth.NewMux()
	RegisterFraud(m, s, o)
	return as(testAdmin, m)
}

// authorise has the demo gateway authorise (not capture) a test card and
// returns its reference.
func (f *fraudFixture) authorise(t *testing.T) string {
	t.Helper()
	resp, err := http.Post(f.url, "application/json", strings.NewReader(`{"card_number":"`+testCard+`","expiry":"1239","cvv":"123","capture":false}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var gr ivr.GatewayResponse
	if err := json.NewDecoder(resp.Body).Decode(&gr); err != nil || gr.Status != ivr.StatusAuthorised {
		t.Fatalf("authorise: %+v %v", gr, err)
	}
	return gr.Reference
}

func (f *fraudFixture) do(t *testing.T, method, target, body string, remote ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1:8080"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(remote) > 0 {
		req.RemoteAddr = remote[0]
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if strings.Contains(w.Body.String(), testCard) {
		t.Errorf("%s %s answered the test card", method, target)
	}
	return w
}

// TestFraudHoldsAPI: the workbench over HTTP — a manual hold with a
// comment, the list telling auto from manual with matches, scores and
// comments, a comment, release capturing the auto hold's authorisation at
// a real (demo) gateway, reject, each refused when it must be, each
// audited, the audit chain intact.
func TestFraudHoldsAPI(t *testing.T) {
	f := newFraudFixture(t)
	ctx := context.Background()
	ref := f.authorise(t)
	auto, err := f.s.CreateHold(ctx, archive.Hold{Interaction: "call-auto", Code: archive.HoldAuto, Score: 130, Minimum: 100,
		Matches:          []fraud.Match{{Kind: "static", Type: fraud.TypePhone, Value: "+447700900123", Score: 100}, {Kind: "rule", Rule: "big_amount", Score: 30}},
		GatewayReference: ref, CreatedBy: "flow"}, "")
	if err != nil {
		t.Fatal(err)
	}

	// A manual hold needs a comment and something to hold; a card in the
	// comment is refused without being echoed.
	for body, code := range map[string]int{
		`{"interaction":"call-2"}`: 400,
		`{"comment":"why"}`:        400,
		`{"interaction":"call-2","comment":"card ` + testCard + `"}`: 400,
		`{"interaction":"call-2","comment":"x","extra":1}`:           400,
		`not json`: 400,
	} {
		if w := f.do(t, "POST", "/api/fraud/holds", body); w.Code != code {
			t.Errorf("create %s: %d %s, want %d", body, w.Code, w.Body, code)
		}
	}
	w := f.do(t, "POST", "/api/fraud/holds", `{"interaction":"call-2","comment":"caller read the card details from a list"}`)
	var manual archive.Hold
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &manual) != nil || manual.Code != archive.HoldManual ||
		manual.Status != archive.HoldOpen || manual.CreatedBy != testAdmin.Actor() {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}

	// The list tells them apart, with matches and scores, and comments.
	var list struct{ Holds []archive.Hold }
	w = f.do(t, "GET", "/api/fraud/holds?status=open", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Holds) != 2 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	byCode := map[string]archive.Hold{}
	for _, h := range list.Holds {
		byCode[h.Code] = h
	}
	if a := byCode[archive.HoldAuto]; a.Score != 130 || len(a.Matches) != 2 || a.Matches[0].Score != 100 || a.Matches[1].Rule != "big_amount" {
		t.Errorf("auto hold in the list: %+v", a)
	}
	if m := byCode[archive.HoldManual]; len(m.Notes) != 1 || m.Notes[0].Text != "caller read the card details from a list" {
		t.Errorf("manual hold in the list: %+v", m)
	}
	if w = f.do(t, "GET", "/api/fraud/holds?code=fraud-manual", ""); json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Holds) != 1 {
		t.Errorf("code filter: %s", w.Body)
	}
	for _, q := range []string{"?status=maybe", "?code=x", "?limit=-1", "?offset=abc"} {
		if w = f.do(t, "GET", "/api/fraud/holds"+q, ""); w.Code != 400 {
			t.Errorf("list%s: %d", q, w.Code)
		}
	}

	// A comment, then release: the gateway captures.
	path := func(id int64, what string) string { return "/api/fraud/holds/" + strconvI(id) + what }
	if w = f.do(t, "POST", path(auto.ID, "/comments"), `{"comment":"customer called back, confirmed"}`); w.Code != http.StatusCreated {
		t.Fatalf("comment: %d %s", w.Code, w.Body)
	}
	if w = f.do(t, "POST", path(auto.ID, "/release"), `{}`); w.Code != 400 {
		t.Errorf("release without comment: %d", w.Code)
	}
	if st, _ := f.gw.Status(ref); st != ivr.StatusAuthorised {
		t.Fatalf("refused release reached the gateway: %s", st)
	}
	w = f.do(t, "POST", path(auto.ID, "/release"), `{"comment":"genuine"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "captured") {
		t.Fatalf("release: %d %s", w.Code, w.Body)
	}
	if st, _ := f.gw.Status(ref); st != ivr.StatusCaptured {
		t.Errorf("gateway status after release: %s, want captured", st)
	}
	if w = f.do(t, "POST", path(auto.ID, "/reject"), `{"comment":"too late"}`); w.Code != http.StatusConflict {
		t.Errorf("reject of a released hold: %d %s", w.Code, w.Body)
	}
	if w = f.do(t, "POST", path(manual.ID, "/reject"), `{"comment":"confirmed fraud"}`); w.Code != 200 {
		t.Errorf("reject manual: %d %s", w.Code, w.Body)
	}
	w = f.do(t, "GET", path(auto.ID, ""), "")
	var got archive.Hold
	if json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Status != archive.HoldReleased || len(got.Notes) != 2 ||
		got.Notes[0].Kind != archive.NoteComment || got.Notes[1].Kind != archive.NoteRelease {
		t.Errorf("auto hold after release: %s", w.Body)
	}
	for target, code := range map[string]int{path(999, "/release"): 404, "/api/fraud/holds/abc/release": 400} {
		if w = f.do(t, "POST", target, `{"comment":"x"}`); w.Code != code {
			t.Errorf("%s: %d, want %d", target, w.Code, code)
		}
	}

	// No cross-site requests, JSON only (who may call is auth.Rules').
	req := httptest.NewRequest("GET", "/api/fraud/holds", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("cross-site request: %d", rec.Code)
	}
	req = httptest.NewRequest("POST", "/api/fraud/holds", strings.NewReader(`{"interaction":"c","comment":"x"}`))
	req.RemoteAddr, req.Host = "127.0.0.1:1", "localhost"
	req.Header.Set("Content-Type", "text/plain")
	rec = httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain create: %d", rec.Code)
	}

	// Every action audited, the chain intact.
	log, _ := f.s.AuditLog(ctx, "", 0)
	seen := map[string]int{}
	for _, e := range log {
		seen[e.Action]++
		if strings.Contains(e.Detail, testCard) {
			t.Errorf("audit row holds the card: %+v", e)
		}
	}
	for _, a := range []string{archive.ActionFraudHold, archive.ActionFraudView, archive.ActionFraudComment, archive.ActionFraudRelease, archive.ActionFraudReject} {
		if seen[a] == 0 {
			t.Errorf("no %s audit row: %v", a, seen)
		}
	}
	if rep, err := f.s.VerifyChain(ctx); err != nil || !rep.OK() {
		t.Errorf("audit chain: %+v %v", rep, err)
	}
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

// TestFraudManualHoldAgentOwnCall: an agent holds the payment of their
// own call — live (bridged to them now) or past (archived with them as
// the agent) — with a comment (201, audited as them); another agent's
// call is 403, no comment 400, an unknown call 404, a reference without
// a call 403; they may comment on their own call's hold only, and never
// list or decide holds (the route table gives those fraud.holds).
func TestFraudManualHoldAgentOwnCall(t *testing.T) {
	f := newFraudFixture(t)
	ctx := context.Background()
	now := time.Now().Add(-time.Hour)
	var ins []archive.Interaction
	for id, agent := range map[string]string{"past-bob": "bob", "past-eve": "eve"} {
		ins = append(ins, f.s.FromSummary(call.Summary{ID: id, SIPCallID: id + "@h", Caller: "+447700900123", Called: "main",
			Target: "flow:main", Agent: agent, Offered: now, Answered: now, Ended: now.Add(time.Minute), EndReason: "closed"}, "n1"))
	}
	if err := f.s.Insert(ctx, ins); err != nil {
		t.Fatal(err)
	}
	live := &fakeBackend{}
	bob := auth.Principal{Name: "bob", Kind: auth.KindSession, Role: auth.RoleAgent, Agent: "bob"}
	m := auth.NewMux()
	RegisterFraud(m, f.s, FraudOptions{Calls: liveAgent{live, "bob"}})
	f.h = as(bob, m)

	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"interaction":"past-bob","comment":"caller coached by someone in the room"}`, 201},
		{`{"interaction":"c1","comment":"live call: reading the card off a list"}`, 201},
		{`{"interaction":"past-eve","comment":"not mine"}`, 403},
		{`{"interaction":"past-bob"}`, 400},
		{`{"interaction":"past-bob","comment":"  "}`, 400},
		{`{"interaction":"nobody","comment":"x"}`, 404},
		{`{"payment":"DEMO-1","comment":"a reference alone"}`, 403},
	} {
		w := f.do(t, "POST", "/api/fraud/holds", tc.body)
		if w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.body, w.Code, w.Body, tc.code)
			continue
		}
		if tc.code == 201 {
			var h archive.Hold
			if json.Unmarshal(w.Body.Bytes(), &h) != nil || h.Code != archive.HoldManual || h.CreatedBy != bob.Actor() {
				t.Errorf("hold %s", w.Body)
			}
		}
	}
	holds, err := f.s.ListHolds(ctx, archive.HoldFilter{})
	if err != nil || len(holds) != 2 {
		t.Fatalf("holds %+v %v, want bob's two", holds, err)
	}
	// Eve's call held by a supervisor: bob may not comment on it.
	eve, err := f.s.HoldManually(ctx, "past-eve", "", "user:sup", "127.0.0.1", "supervisor's hold")
	if err != nil {
		t.Fatal(err)
	}
	if w := f.do(t, "POST", "/api/fraud/holds/"+strconv.FormatInt(eve.ID, 10)+"/comments", `{"comment":"me too"}`); w.Code != 403 {
		t.Errorf("comment on another's hold: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, "POST", "/api/fraud/holds/"+strconv.FormatInt(holds[0].ID, 10)+"/comments", `{"comment":"customer called back"}`); w.Code != 201 {
		t.Errorf("comment on own hold: %d %s", w.Code, w.Body)
	}
	for pattern, want := range map[string]auth.Perm{"POST /api/fraud/holds": auth.PermFraudHold, "POST /api/fraud/holds/{id}/comments": auth.PermFraudHold,
		"GET /api/fraud/holds": auth.PermFraudHolds, "POST /api/fraud/holds/{id}/release": auth.PermFraudHolds} {
		if r, ok := auth.RuleFor(pattern); !ok || r.Perm != want {
			t.Errorf("route %s: %+v, want %s", pattern, r, want)
		}
	}
	log, err := f.s.AuditLog(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Action == archive.ActionFraudHold && e.Actor == bob.Actor() {
			n++
		}
	}
	if n != 2 {
		t.Errorf("bob's holds audited %d times, want 2", n)
	}
}

// liveAgent is a live-call lookup whose call c1 is bridged to agent.
type liveAgent struct {
	*fakeBackend
	agent string
}

func (l liveAgent) Call(id string) (call.Info, []call.Event, bool) {
	in, ev, ok := l.fakeBackend.Call(id)
	in.Agent = l.agent
	return in, ev, ok
}
