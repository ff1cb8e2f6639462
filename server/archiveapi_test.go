package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/config"
	"github.com/rs/zerolog"
)

// TestArchiveAPIMount: the archive API is mounted beside the call API;
// with admin.listen beyond loopback it refuses even a loopback client,
// and serve says which at start.
func TestArchiveAPIMount(t *testing.T) {
	s, err := archive.Open(context.Background(), archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		listen string
		code   int
		log    string
	}{{"127.0.0.1:8080", http.StatusOK, "loopback clients only"}, {"0.0.0.0:8080", http.StatusForbidden, "archive API refused"}} {
		var logs bytes.Buffer
		a := &nodeArchive{store: s, log: zerolog.New(&logs)}
		cfg := config.Default()
		cfg.Admin.Listen = tc.listen
		h := a.withArchiveAPI(api, cfg)
		for path, want := range map[string]int{"/api/archive/interactions": tc.code, "/api/fraud/holds": tc.code, "/api/calls": http.StatusTeapot} {
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr, req.Host = "127.0.0.1:5000", "127.0.0.1:8080"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want {
				t.Errorf("%s %s: %d, want %d", tc.listen, path, w.Code, want)
			}
		}
		if !strings.Contains(logs.String(), tc.log) {
			t.Errorf("%s: start log %q", tc.listen, logs.String())
		}
	}
	if h := (&nodeArchive{}).withArchiveAPI(api, config.Default()); h == nil {
		t.Error("no handler without an archive")
	}
}
