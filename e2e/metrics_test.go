package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/metrics"
)

// did is a called number routed to the pay flow: if any label carried
// the called user part (or the caller's), the label walk below finds it.
const did = "4420794600000"

// TestPrometheusScrapesCalls starts a real Prometheus (Debian package
// prometheus) scraping cloak's /metrics every second during a short sipp
// run — a pay call through a DID (a secure segment, RFC 4733 digits) and
// three echo calls — then asks Prometheus's HTTP API whether the calls,
// RTP and secure-segment series moved, walks every label of every cloak
// series it stored for anything that looks like a number or a call id,
// and runs promtool over cloak's exposition after the calls.
func TestPrometheusScrapesCalls(t *testing.T) {
	requireTools(t, "sipp", "prometheus", "promtool")
	o := ivrOpts("")
	o.routes[did] = "flow:pay"
	c := startCloak(t, o)
	if !strings.Contains(c.log(), `"metrics":"users with metrics.view"`) {
		t.Error(`the ready line does not say who may scrape /metrics ("metrics":"users with metrics.view")`)
	}
	prom := startPrometheus(t, strings.TrimPrefix(c.adminURL, "http://"), c.token)

	// Prometheus sees cloak up before any call.
	waitProm(t, prom, `up{job="cloak"} == 1`, 20*time.Second)

	mp := freePorts(t, 4, false)
	echo := startSipp(t, c, sippArgs{scenario: "echo.xml", service: "echo", mediaPort: mp, calls: 3, rate: 1,
		keys: map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "pt": "0", "codec": "PCMU"}})
	runSipp(t, c, sippArgs{scenario: "ivr-call.xml", service: did, timeout: 45 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pay-rfc4733.pcap"), "fmts": "0 101"}})
	echo.wait(t)
	if !c.waitLog("cloak ends the call", 10*time.Second) {
		t.Log(`no "cloak ends the call" yet`)
	}

	// Series that must have moved, as PromQL that returns one sample > 0.
	for _, q := range []string{
		`sum(cloak_calls_total{route="flow:pay"})`,
		`sum(cloak_calls_total{route="echo"}) >= 3`,
		`sum(cloak_calls_started_total) >= 4`,
		`max_over_time(sum(cloak_calls_active)[5m:1s]) >= 1`,
		`cloak_sip_invites_accepted_total >= 4`,
		`cloak_sip_requests_total{method="INVITE"} >= 4`,
		`cloak_sip_responses_total{code="200"} >= 4`,
		`increase(cloak_rtp_packets_total{direction="rx"}[5m]) > 100`,
		`increase(cloak_rtp_packets_total{direction="tx"}[5m]) > 100`,
		`cloak_rtp_bytes_total{direction="rx"} > 10000`,
		`cloak_secure_segments_started_total{flow="pay"} >= 1`,
		`cloak_secure_segments_ended_total{flow="pay"} >= 1`,
		`max_over_time(cloak_secure_segments_active[5m]) >= 1`,
		`cloak_secure_segment_duration_seconds_count{flow="pay"} >= 1`,
		`cloak_secure_segment_duration_seconds_sum{flow="pay"} > 1`,
		`cloak_dtmf_digits_total{source="rfc4733"} >= 16`,
		`cloak_call_duration_seconds_count{route="echo"} >= 3`,
		`cloak_call_answer_seconds_count{route="flow:pay"} >= 1`,
		`histogram_quantile(0.5, sum by (le) (rate(cloak_call_answer_seconds_bucket[5m]))) < 0.5`,
	} {
		waitProm(t, prom, q, 10*time.Second)
	}
	// And what must not have: nothing dropped from sipp's good RTP.
	if v := queryProm(t, prom, `sum(cloak_rtp_packets_dropped_total)`); v != "0" {
		t.Errorf("RTP dropped %s packets of a clean run", v)
	}

	// What a scrape costs as Prometheus saw it (a figure for the docs).
	t.Logf("scrape: max %ss, mean %ss, %s samples",
		queryProm(t, prom, `max_over_time(scrape_duration_seconds{job="cloak"}[5m])`),
		queryProm(t, prom, `avg_over_time(scrape_duration_seconds{job="cloak"}[5m])`),
		queryProm(t, prom, `scrape_samples_scraped{job="cloak"}`))

	// Every label value of every cloak series Prometheus stored.
	series := promSeries(t, prom, `{__name__=~"cloak_.+"}`)
	if len(series) < 50 {
		t.Fatalf("Prometheus stored %d cloak series, want 50 or more", len(series))
	}
	bad := 0
	for _, s := range series {
		if bad >= 5 {
			t.Fatal("more than 5 private-looking labels; the rest not listed")
		}
		for k, v := range s {
			if k == "instance" || k == "job" {
				continue // Prometheus's own: the scrape target
			}
			// sipp's From users are "caller" and "sipp"; leg="caller" is
			// the fixed leg name of the quality histograms, not a user.
			if metrics.LooksPrivate(v) || strings.Contains(v, did) || (v == "caller" && k != "leg") || v == "sipp" {
				t.Errorf("series %s: label %s=%q looks like a number, an id or a user", s["__name__"], k, v)
				bad++
			}
		}
	}

	// promtool over the exposition as it stands after the calls.
	body := []byte(scrapeMetrics(t, c))
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if bytes.Contains(body, []byte(did)) {
		t.Error("the exposition contains the called number")
	}
	c.stop()
}

// startPrometheus runs Prometheus on a free loopback port, scraping
// target's /metrics every second, with its data in a temp dir; it is
// killed when the test ends. It returns the base URL of its API.
func startPrometheus(t *testing.T, target, token string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: cloak
    metrics_path: /metrics
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, token, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePorts(t, 1, true)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var out bytes.Buffer
	cmd := exec.Command("prometheus", "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("prometheus output:\n%s", tail(out.String(), 3000))
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("prometheus not ready within 30s:\n%s", out.String())
	return ""
}

// promResponse is the envelope of Prometheus's HTTP API.
type promResponse struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

func promGet(t *testing.T, u string) json.RawMessage {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r promResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 8<<20)).Decode(&r); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	if r.Status != "success" {
		t.Fatalf("%s: %s %s", u, r.Status, r.Error)
	}
	return r.Data
}

// queryProm runs an instant query and returns the value of its only
// sample, or "" when it returned none.
func queryProm(t *testing.T, base, q string) string {
	t.Helper()
	data := promGet(t, base+"/api/v1/query?query="+url.QueryEscape(q))
	var v struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if len(v.Result) == 0 {
		return ""
	}
	if len(v.Result) > 1 {
		t.Fatalf("query %s: %d samples, want one", q, len(v.Result))
	}
	s, _ := v.Result[0].Value[1].(string)
	return s
}

// waitProm waits until q returns a sample (a comparison that holds),
// each try after Prometheus's next scrape, and fails naming q if it
// never does.
func waitProm(t *testing.T, base, q string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v := queryProm(t, base, q); v != "" && v != "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("Prometheus: %s returned nothing (or 0) within %v", q, timeout)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// promSeries returns the label sets of the series matching match.
func promSeries(t *testing.T, base, match string) []map[string]string {
	t.Helper()
	data := promGet(t, base+"/api/v1/series?match[]="+url.QueryEscape(match))
	var out []map[string]string
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// scrapeMetrics returns cloak's /metrics exposition (with the harness's
// admin token).
func scrapeMetrics(t *testing.T, c *cloak) string {
	t.Helper()
	req, _ := http.NewRequest("GET", c.adminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", res.StatusCode, err)
	}
	return string(b)
}
