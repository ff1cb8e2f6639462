package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMonitorsThroughAPI: -monitors asks cloak's API with the token for
// the bridged calls without a monitor, POSTs a listen monitor naming our
// UAS and the supervisor for each, counts a call short as a failure, and
// the sink counts what reaches it.
func TestMonitorsThroughAPI(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/calls":
			_, _ = w.Write([]byte(`[{"id":"c1","agent":"a1"},{"id":"c2"},{"id":"c3","agent":"a3","monitors":[{"id":"m1"}]},{"id":"c4","agent":"a4"}]`))
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/monitor"):
			var body map[string]string
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["mode"] != "listen" || body["supervisor"] != "bench" || !strings.HasPrefix(body["target"], "sip:monitor@127.0.0.1:") {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			mu.Lock()
			posted = append(posted, r.URL.Path)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"m1","mode":"listen"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := newMonitors(ctx, api.URL, "tok", "bench", freeUDPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	m.start(ctx, 3)
	s := m.summary(3, 0, 1)
	mu.Lock()
	got := strings.Join(posted, " ")
	mu.Unlock()
	if got != "/api/calls/c1/monitor /api/calls/c4/monitor" && got != "/api/calls/c4/monitor /api/calls/c1/monitor" {
		t.Errorf("monitored %q, want c1 and c4 (bridged, not yet monitored)", got)
	}
	if s.Started != 2 || s.Failed != 1 || len(s.Errors) != 1 {
		t.Errorf("summary %+v, want 2 started and 1 failed (only two calls to monitor)", s)
	}
	// The sink counts packets.
	out, err := net.DialUDP("udp4", nil, m.sink.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for range 5 {
		_, _ = out.Write([]byte{0x80, 0, 0, 1})
	}
	deadline := time.Now().Add(2 * time.Second)
	for m.rx.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.rx.Load(); n != 5 {
		t.Errorf("sink counted %d packets, want 5", n)
	}
	// A wrong token: every start fails, none is counted as started.
	m2, err := newMonitors(ctx, api.URL, "wrong", "bench", freeUDPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.close()
	m2.start(ctx, 1)
	if s := m2.summary(1, 0, 1); s.Started != 0 || s.Failed != 1 {
		t.Errorf("wrong token: %+v", s)
	}
}

// freeUDPAddr is a loopback UDP address nothing listens on just now.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func TestMonitorsFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"-monitors", "5"}, // no -api
		{"-monitors", "5", "-api", "http://x", "-mode", "ng"},   // not sip
		{"-monitors", "50", "-calls", "10", "-api", "http://x"}, // more than calls
	} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	o, err := parseFlags([]string{"-monitors", "5", "-calls", "10", "-api", "http://127.0.0.1:8080"}, &strings.Builder{})
	if err != nil || o.monitors != 5 || o.monitorSIP == "" || o.supervisor != "bench" {
		t.Errorf("good flags: %+v %v", o, err)
	}
}
