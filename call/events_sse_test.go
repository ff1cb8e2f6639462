package call_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
)

// TestEventStreamEndsWithTheCall: the API's SSE stream of a call that the
// caller hangs up sends "ended" and closes, rather than keep-alives for
// ever.
func TestEventStreamEndsWithTheCall(t *testing.T) {
	h := newHarness(t, opts{})
	// Served as if the API's guard had let an admin through (auth.Guard
	// is issue 22's; here only the stream's end is under test).
	routes := admin.Handler(admin.Adapt(h.mgr, nil), admin.Options{})
	asAdmin := auth.Principal{Name: "test", Kind: auth.KindToken, Role: auth.RoleAdmin, TokenID: "t"}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		routes.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), asAdmin)))
	}))
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	id := ""
	waitFor(t, "the call in the API", func() bool {
		for _, c := range h.mgr.Calls() {
			id = c.ID()
		}
		return id != ""
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", api.URL+"/api/calls/"+id+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	time.Sleep(100 * time.Millisecond) // subscribed
	byeAt := time.Now()
	if err := d.Bye(ctx); err != nil {
		t.Fatalf("bye: %v", err)
	}
	var last call.Event
	var types []string
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if last.Type != "ended" {
					t.Fatalf("stream closed after %v without ended; events %v", time.Since(byeAt), types)
				}
				if last.Reason == "" || last.Call != id {
					t.Errorf("ended event %+v: want a reason and the call id", last)
				}
				return
			}
			if data, ok := strings.CutPrefix(l, "data: "); ok {
				if err := json.Unmarshal([]byte(data), &last); err != nil {
					t.Fatal(err)
				}
				types = append(types, last.Type)
			}
		case <-deadline:
			t.Fatalf("stream still open 5 s after BYE; events %v", types)
		}
	}
}
