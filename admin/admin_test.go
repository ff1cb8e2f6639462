package admin

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
)

// as serves h as if Guard had let p through.
func as(p auth.Principal, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

var (
	testAdmin     = auth.Principal{Name: "root-test", Kind: auth.KindToken, Role: auth.RoleAdmin, TokenID: "t1"}
	testArchivist = auth.Principal{Name: "arch-test", Kind: auth.KindToken, Role: auth.RoleArchivist, TokenID: "t2"}
)

type fakeBackend struct {
	secured  []string
	recorded []string
	events   chan call.Event
}

func (f *fakeBackend) Calls() []call.Info { return []call.Info{{ID: "c1", Mode: "normal"}} }
func (f *fakeBackend) Call(id string) (call.Info, []call.Event, bool) {
	if id != "c1" {
		return call.Info{}, nil, false
	}
	return call.Info{ID: "c1", Mode: "secure"}, []call.Event{{Type: "digit", Mask: "*"}}, true
}
func (f *fakeBackend) Secure(id, flow string) error {
	switch {
	case id != "c1":
		return ErrNotFound
	case flow == "busy":
		return call.ErrSecureActive
	}
	f.secured = append(f.secured, flow)
	return nil
}
func (f *fakeBackend) Subscribe(id string) ([]call.Event, <-chan call.Event, func(), bool) {
	if id != "c1" {
		return nil, nil, nil, false
	}
	return []call.Event{{Type: "secure_started", Flow: "secure-pay"}}, f.events, func() {}, true
}
func (f *fakeBackend) Agents() []acd.AgentInfo {
	return []acd.AgentInfo{{Name: "alice", State: "reserved"}}
}
func (f *fakeBackend) Stats() map[string]any { return map[string]any{"calls_active": 3} }

func (f *fakeBackend) Recording(id, action string) error {
	if id != "c1" {
		return ErrNotFound
	}
	f.recorded = append(f.recorded, action)
	return nil
}

func TestAPI(t *testing.T) {
	fb := &fakeBackend{events: make(chan call.Event, 4)}
	srv := httptest.NewServer(as(testAdmin, Handler(fb, Options{Pprof: true})))
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/healthz", "", 200, `"ok"`},
		{"GET", "/api/calls", "", 200, `"c1"`},
		{"GET", "/api/calls/c1", "", 200, `"mask": "*"`},
		{"GET", "/api/calls/nope", "", 404, "no such call"},
		{"POST", "/api/calls/c1/secure", `{"flow":"secure-pay"}`, 202, "accepted"},
		{"POST", "/api/calls/c1/secure", `{"flow":"busy"}`, 409, "already"},
		{"POST", "/api/calls/c1/secure", `{}`, 400, "flow"},
		{"POST", "/api/calls/c1/secure", `not json`, 400, "flow"},
		{"POST", "/api/calls/nope/secure", `{"flow":"x"}`, 404, ""},
		{"POST", "/api/calls/c1/recording/pause", "", 200, "paused"},
		{"POST", "/api/calls/c1/recording/resume", "", 200, "resumed"},
		{"POST", "/api/calls/c1/recording/erase", "", 404, ""},
		{"GET", "/api/agents", "", 200, "reserved"},
		{"GET", "/api/stats?gc=1", "", 200, `"goroutines"`},
		{"GET", "/api/stats", "", 200, `"calls_active": 3`},
		{"GET", "/debug/pprof/", "", 200, "goroutine"},
		{"DELETE", "/api/calls/c1", "", 405, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&b)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(b.String(), tc.contains) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, res.StatusCode, b.String())
		}
	}
	if len(fb.secured) != 1 || fb.secured[0] != "secure-pay" || len(fb.recorded) != 2 {
		t.Fatalf("backend saw secure %v, recording %v", fb.secured, fb.recorded)
	}
}

func TestEventStream(t *testing.T) {
	fb := &fakeBackend{events: make(chan call.Event, 4)}
	srv := httptest.NewServer(as(testAdmin, Handler(fb, Options{})))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/calls/c1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	fb.events <- call.Event{Type: "secure_ended", Outputs: map[string]string{"card_last4": "1111"}}
	sc := bufio.NewScanner(res.Body)
	var got []call.Event
	deadline := time.After(3 * time.Second)
	for len(got) < 2 {
		line := make(chan string, 1)
		go func() {
			if sc.Scan() {
				line <- sc.Text()
			} else {
				close(line)
			}
		}()
		select {
		case l, ok := <-line:
			if !ok {
				t.Fatal("stream closed")
			}
			if data, ok := strings.CutPrefix(l, "data: "); ok {
				var ev call.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, ev)
			}
		case <-deadline:
			t.Fatalf("got %d events", len(got))
		}
	}
	if got[0].Type != "secure_started" || got[1].Outputs["card_last4"] != "1111" {
		t.Fatalf("events %+v", got)
	}
}

func TestPprofOffByDefault(t *testing.T) {
	srv := httptest.NewServer(as(testAdmin, Handler(&fakeBackend{}, Options{})))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("pprof answered %d without admin.pprof", res.StatusCode)
	}
}

// TestEventStreamEndsWhenTheCallEnds: the stream's last event is "ended",
// then it closes; when a slow reader lost the backend's "ended" the
// handler says it itself.
func TestEventStreamEndsWhenTheCallEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		feed []call.Event
	}{
		{"ended event", []call.Event{{Type: "digit", Mask: "*"}, {Type: "ended", Reason: "bye"}}},
		{"closed without ended", []call.Event{{Type: "digit", Mask: "*"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := &fakeBackend{events: make(chan call.Event, 4)}
			srv := httptest.NewServer(as(testAdmin, Handler(fb, Options{})))
			defer srv.Close()
			for _, ev := range tc.feed {
				fb.events <- ev
			}
			close(fb.events)
			client := &http.Client{Timeout: 3 * time.Second}
			res, err := client.Get(srv.URL + "/api/calls/c1/events")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body) // ends only if the stream does
			if err != nil {
				t.Fatalf("stream did not end: %v", err)
			}
			var types []string
			for _, l := range strings.Split(string(body), "\n") {
				if ty, ok := strings.CutPrefix(l, "event: "); ok {
					types = append(types, ty)
				}
			}
			if len(types) == 0 || types[len(types)-1] != "ended" || strings.Count(string(body), "event: ended") != 1 {
				t.Fatalf("events %v, want one ended, last", types)
			}
		})
	}
}

// twoCalls has c1 bridged to alice and c2 to bob.
type twoCalls struct{ fakeBackend }

func (f *twoCalls) Calls() []call.Info {
	return []call.Info{{ID: "c1", Agent: "alice"}, {ID: "c2", Agent: "bob"}}
}
func (f *twoCalls) Call(id string) (call.Info, []call.Event, bool) {
	for _, c := range f.Calls() {
		if c.ID == id {
			return c, nil, true
		}
	}
	return call.Info{}, nil, false
}
func (f *twoCalls) Secure(id, flow string) error { f.secured = append(f.secured, id); return nil }
func (f *twoCalls) Recording(id, action string) error {
	f.recorded = append(f.recorded, id)
	return nil
}
func (f *twoCalls) Subscribe(id string) ([]call.Event, <-chan call.Event, func(), bool) {
	return []call.Event{{Type: "ended"}}, nil, func() {}, true
}

// TestAgentSeesOwnCallsOnly: an agent user lists, reads, streams and acts
// on the calls bridged to their agent only; a supervisor on all.
func TestAgentSeesOwnCallsOnly(t *testing.T) {
	fb := &twoCalls{}
	alice := auth.Principal{Name: "alice", Kind: auth.KindSession, Role: auth.RoleAgent, Agent: "alice"}
	unlinked := auth.Principal{Name: "carol", Kind: auth.KindSession, Role: auth.RoleAgent}
	sup := auth.Principal{Name: "sue", Kind: auth.KindSession, Role: auth.RoleSupervisor}
	for _, tc := range []struct {
		p            auth.Principal
		method, path string
		status       int
	}{
		{alice, "GET", "/api/calls/c1", 200},
		{alice, "GET", "/api/calls/c2", 403},
		{alice, "GET", "/api/calls/c1/events", 200},
		{alice, "GET", "/api/calls/c2/events", 403},
		{alice, "POST", "/api/calls/c1/secure", 202},
		{alice, "POST", "/api/calls/c2/secure", 403},
		{alice, "POST", "/api/calls/c1/recording/pause", 200},
		{alice, "POST", "/api/calls/c2/recording/pause", 403},
		{alice, "GET", "/api/calls/c9", 404},
		{unlinked, "GET", "/api/calls/c1", 403},
		{sup, "GET", "/api/calls/c2", 200},
		{sup, "POST", "/api/calls/c2/secure", 202},
	} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"flow":"secure-pay"}`))
		as(tc.p, Handler(fb, Options{})).ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.p.Name, tc.method, tc.path, w.Code, w.Body, tc.status)
		}
	}
	if len(fb.secured) != 2 || fb.secured[0] != "c1" || fb.secured[1] != "c2" || len(fb.recorded) != 1 {
		t.Errorf("acted on: secure %v recording %v", fb.secured, fb.recorded)
	}
	for p, want := range map[*auth.Principal]string{&alice: "c1", &unlinked: "", &sup: "c1,c2"} {
		w := httptest.NewRecorder()
		as(*p, Handler(fb, Options{})).ServeHTTP(w, httptest.NewRequest("GET", "/api/calls", nil))
		var calls []call.Info
		_ = json.Unmarshal(w.Body.Bytes(), &calls)
		var ids []string
		for _, c := range calls {
			ids = append(ids, c.ID)
		}
		if got := strings.Join(ids, ","); w.Code != 200 || got != want {
			t.Errorf("%s lists %q (%d), want %q", p.Name, got, w.Code, want)
		}
	}
	w := httptest.NewRecorder()
	Handler(fb, Options{}).ServeHTTP(w, httptest.NewRequest("GET", "/api/calls", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no principal: %d, want 401 (an unguarded mux fails closed)", w.Code)
	}
}

func TestAuditSafe(t *testing.T) {
	for in, want := range map[string]string{
		"secure-pay":            "secure-pay",
		"pay2":                  "pay2",
		"4111111111111111":      "****************",
		"pay 4111 1111 x\n":     "pay_****_****_x_",
		strings.Repeat("a", 80): strings.Repeat("a", 64),
	} {
		if got := auditSafe(in); got != want {
			t.Errorf("auditSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatsRuntimeFigures: /api/stats's heap and GC figures, read from
// runtime/metrics without stopping the world, agree with what
// runtime.ReadMemStats says around them, and ?gc=1 collects.
func TestStatsRuntimeFigures(t *testing.T) {
	srv := httptest.NewServer(as(testAdmin, Handler(&fakeBackend{}, Options{})))
	defer srv.Close()
	get := func(path string) map[string]float64 {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st map[string]any
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, k := range []string{"heap_inuse_bytes", "heap_objects", "gc_cycles", "goroutines"} {
			v, ok := st[k].(float64)
			if !ok || v <= 0 {
				t.Fatalf("%s: %s = %v, want a positive number", path, k, st[k])
			}
			out[k] = v
		}
		return out
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	st := get("/api/stats?gc=1")
	if st["gc_cycles"] < float64(before.NumGC+2) {
		t.Errorf("gc_cycles %v after ?gc=1, want at least %d (two collections)", st["gc_cycles"], before.NumGC+2)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Same order of magnitude as MemStats (the heap moves between reads).
	for k, want := range map[string]uint64{"heap_inuse_bytes": after.HeapInuse, "heap_objects": after.HeapObjects} {
		if got := st[k]; got < float64(want)/4 || got > float64(want)*4 {
			t.Errorf("%s = %v, MemStats says %d", k, got, want)
		}
	}
}
