package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/call"
)

// monitorFake is fakeBackend with monitoring: call c1 exists, sup1
// supervises it, m1 is its monitor.
type monitorFake struct {
	fakeBackend
	got  []call.MonitorRequest
	mode call.MonitorMode
}

func (f *monitorFake) StartMonitor(_ context.Context, id string, req call.MonitorRequest) (string, error) {
	if id != "c1" {
		return "", ErrNotFound
	}
	f.got = append(f.got, req)
	if req.Target != "sup1" && req.Supervisor != "sup1" {
		return "", call.ErrNotSupervisor
	}
	return "m1", nil
}

func (f *monitorFake) SetMonitorMode(id, mid string, mode call.MonitorMode) error {
	if id != "c1" {
		return ErrNotFound
	}
	if mid != "m1" {
		return call.ErrNoMonitor
	}
	f.mode = mode
	return nil
}

func (f *monitorFake) StopMonitor(id, mid string) error {
	if mid != "m1" {
		return call.ErrNoMonitor
	}
	return nil
}

func TestMonitorRoutes(t *testing.T) {
	f := &monitorFake{}
	h := as(testAdmin, Handler(f, Options{}))
	do := func(method, path, body string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/calls/c1/monitor", `{"mode":"listen","target":"sup1"}`, 201, `"id": "m1"`},
		{"POST", "/api/calls/c1/monitor", `{"mode":"coach","target":"sip:s@127.0.0.1:5070","supervisor":"sup1"}`, 201, `"mode": "coach"`},
		{"POST", "/api/calls/c1/monitor", `{"mode":"listen","target":"sup2"}`, 403, "not a supervisor"},
		{"POST", "/api/calls/c9/monitor", `{"mode":"listen","target":"sup1"}`, 404, "no such call"},
		{"POST", "/api/calls/c1/monitor", `{"mode":"spy","target":"sup1"}`, 400, "unknown monitor mode"},
		{"POST", "/api/calls/c1/monitor", `{"mode":"listen"}`, 400, "body must be"},
		{"POST", "/api/calls/c1/monitor", `{"mode":"listen","target":"sup1","extra":1}`, 400, "body must be"},
		{"POST", "/api/calls/c1/monitor", `not json`, 400, "body must be"},
		{"PATCH", "/api/calls/c1/monitor/m1", `{"mode":"barge"}`, 200, `"mode": "barge"`},
		{"POST", "/api/calls/c1/monitor/m1", `{"mode":"coach"}`, 200, `"mode": "coach"`},
		{"PATCH", "/api/calls/c1/monitor/m7", `{"mode":"barge"}`, 404, "no such monitor"},
		{"PATCH", "/api/calls/c1/monitor/m1", `{"mode":""}`, 400, "unknown monitor mode"},
		{"DELETE", "/api/calls/c1/monitor/m1", ``, 200, "stopped"},
		{"DELETE", "/api/calls/c1/monitor/m2", ``, 404, "no such monitor"},
	} {
		code, body := do(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
	if f.mode != call.MonitorCoach {
		t.Errorf("mode after the PATCH and POST: %v, want coach", f.mode)
	}
	if len(f.got) < 1 || f.got[0].Via != "api" || f.got[0].Mode != call.MonitorListen {
		t.Errorf("requests %+v", f.got)
	}
	// A backend without monitoring has no such routes.
	rec := httptest.NewRecorder()
	as(testAdmin, Handler(&fakeBackend{}, Options{})).ServeHTTP(rec, httptest.NewRequest("POST", "/api/calls/c1/monitor", strings.NewReader(`{"target":"sup1"}`)))
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("monitor route on a backend without monitoring: %d", rec.Code)
	}
}
