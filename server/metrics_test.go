package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/config"
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
