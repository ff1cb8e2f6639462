package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
)

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var seriesName = regexp.MustCompile(`\b(?:cloak|go|process)_[a-z0-9_]+\b`)

// exposedNames returns every series name a node exposes, each event
// series touched once so the labelled ones appear; histograms give their
// _bucket, _sum and _count.
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := newTest(t)
	if err := m.Registry().Register(NewTrunks(func() []TrunkSample {
		return []TrunkSample{{Name: "carrier", Registering: true, Registered: true, Up: true, Calls: 1}}
	})); err != nil {
		t.Fatal(err)
	}
	c := m.Calls()
	c.CallStarted("echo")
	c.CallAnswered("echo", time.Millisecond)
	c.CallEnded("echo", "caller_hangup", time.Second)
	c.SecureStarted("pay")
	c.SecureEnded("pay", "left", time.Second)
	c.Digit("info")
	c.QueueJoined("sales")
	c.QueueLeft("sales", "answered", time.Second)
	c.RecordingClosed(recorder.Stats{})
	c.LegEnded("caller", media.Quality{Received: 100, Expected: 100, MOS: 4.4, JitterMs: 1, RTTMs: 2})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		if f.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

// TestDashboardNamesExistingSeries: docs/grafana-cloak.json is valid
// JSON, every panel has a query, every series a query names is one cloak
// exposes, and promtool parses every query (as a recording rule).
func TestDashboardNamesExistingSeries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "grafana-cloak.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana-cloak.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard %q (uid %q) with %d panels: want a title, a uid and 10 or more panels", d.Title, d.UID, len(d.Panels))
	}
	names := exposedNames(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			found := seriesName.FindAllString(tg.Expr, -1)
			if len(found) == 0 {
				t.Errorf("panel %q: query %q names no series", p.Title, tg.Expr)
			}
			for _, s := range found {
				if !names[s] {
					t.Errorf("panel %q: query %q names %s, which cloak does not expose", p.Title, tg.Expr, s)
				}
			}
			n++
			q, _ := json.Marshal(tg.Expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", n, q)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: queries not parsed")
		return
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules over the dashboard's queries: %v\n%s", err, out)
	}
}

// TestMetricsDocListsEverySeries: docs/METRICS.md names every cloak_
// series the node exposes, and names none it does not.
func TestMetricsDocListsEverySeries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "METRICS.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	names := exposedNames(t)
	for n := range names {
		if !strings.HasPrefix(n, "cloak_") || strings.HasPrefix(n, "cloak_process_") ||
			strings.HasSuffix(n, "_bucket") || strings.HasSuffix(n, "_sum") || strings.HasSuffix(n, "_count") {
			continue
		}
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/METRICS.md does not list %s", n)
		}
	}
	for _, table := range regexp.MustCompile("(?m)^\\| `(cloak_[a-z0-9_]+)`").FindAllStringSubmatch(doc, -1) {
		if !names[table[1]] {
			t.Errorf("docs/METRICS.md lists %s, which cloak does not expose", table[1])
		}
	}
}
