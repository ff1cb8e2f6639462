package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/metrics"
)

// TestMetricsTokenFile: no file is loopback only; a good file is its
// token, trimmed; a missing, short or two-word file refuses the start
// naming the field.
func TestMetricsTokenFile(t *testing.T) {
	a, err := metricsAccess(config.Metrics{Enabled: true})
	if err != nil || a.Token != "" {
		t.Fatalf("no token_file: %+v %v", a, err)
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, err = metricsAccess(config.Metrics{TokenFile: write("good", "  0123456789abcdef0123\n")})
	if err != nil || a.Token != "0123456789abcdef0123" {
		t.Fatalf("good token file: %+v %v", a, err)
	}
	for name, path := range map[string]string{
		"missing": filepath.Join(dir, "nope"), "short": write("short", "abc\n"),
		"two words": write("two", "0123456789abcdef 0123456789abcdef"), "empty": write("empty", "\n"),
	} {
		_, err := metricsAccess(config.Metrics{TokenFile: path})
		if !errors.Is(err, errMetricsToken) || !strings.Contains(err.Error(), "metrics.token_file") {
			t.Errorf("%s: %v, want an error naming metrics.token_file", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: the error quotes the file's content: %v", name, err)
		}
	}
}

// TestMetricsBesideTheAPI: /metrics and the API's routes share the
// listener; the API's routes still answer.
func TestMetricsBesideTheAPI(t *testing.T) {
	m, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := withMetrics(api, m, metrics.Access{})
	for path, want := range map[string]string{"/metrics": "cloak_rtp_packets_total", "/healthz": "ok"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:9"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d, body lacks %q", path, rec.Code, want)
		}
	}
}
