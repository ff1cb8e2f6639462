package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/overload"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
	dto "github.com/prometheus/client_model/go"
)

// fakeNode is a node's counters the test moves by hand.
type fakeNode struct {
	sip  sip.Stats
	rtp  media.Stats
	auth authlimit.Stats
	over overload.Stats
	disk error
	// unscreened arrivals: timeout, error
	timeouts, failures uint64
}

func (f *fakeNode) sources() Sources {
	return Sources{
		SIP:      func() sip.Stats { return f.sip },
		RTP:      func() (media.Stats, int) { return f.rtp, 2 },
		Ports:    func() (int, int) { return 2, 100 },
		Poller:   func() media.PollerStats { return media.PollerStats{Workers: 2, Batches: 5} },
		Overload: func() overload.Stats { return f.over },
		Auth:     func() authlimit.Stats { return f.auth },
		Agents: func() []acd.AgentInfo {
			return []acd.AgentInfo{{Name: "alice", State: "available"}, {Name: "bob", State: "busy"}, {Name: "carol", State: "busy"}}
		},
		Disk: func() (uint64, uint64, uint64, error) {
			if f.disk != nil {
				return 0, 0, 0, f.disk
			}
			return 1 << 30, 1 << 34, 1 << 29, nil
		},
		Recording:    func() (uint64, uint64) { return 1, 0 },
		FraudArrival: func() (uint64, uint64) { return f.timeouts, f.failures },
	}
}

// scrape fetches the exposition as a loopback client.
func scrape(t testing.TB, m *Metrics, a Access, hdr map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	m.Handler(a).ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// value finds a sample's value in the text exposition ("name{labels}").
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	m := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmtSscan(line[i+1:], &v); err == nil {
			m[line[:i]] = v
		}
	}
	v, ok := m[series]
	if !ok {
		t.Fatalf("no series %s in the scrape", series)
	}
	return v
}

func newTest(t *testing.T) (*Metrics, *fakeNode) {
	t.Helper()
	f := &fakeNode{sip: sip.Stats{Requests: map[string]uint64{"INVITE": 1}, Responses: map[int]uint64{200: 1},
		RefusedBy: map[string]uint64{"max_calls": 1}},
		over: overload.Stats{Readings: []overload.Reading{{Name: "lag", Value: 0.002, Limit: 0.05, Unit: overload.Seconds}, {Name: "cpu", Value: 0.1, Limit: 0.85}}}}
	m, err := New(f.sources())
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

// TestSeriesExistAndMove drives every source and every event and checks
// the series they feed exist and move.
func TestSeriesExistAndMove(t *testing.T) {
	m, f := newTest(t)
	_, before := scrape(t, m, Access{}, nil)

	f.sip.Calls, f.sip.Active = 3, 1
	f.sip.Requests["INVITE"] = 4
	f.sip.Requests["other"] = 1
	f.sip.Responses[503] = 2
	f.sip.RefusedBy["lag"] = 2
	f.rtp.RxPackets, f.rtp.TxPackets, f.rtp.RxBytes = 500, 490, 86000
	f.rtp.DroppedUnknownSource, f.rtp.DroppedMalformed = 7, 1
	f.auth = authlimit.Stats{Failures: 12, Locks: 1, Keys: 3}
	f.over.Overloaded, f.over.EpisodesBy = true, map[string]uint64{"lag": 1}
	f.timeouts, f.failures = 3, 1
	c := m.Calls()
	c.CallStarted("flow:pay")
	c.SecureStarted("pay")
	c.Digit("rfc4733")
	c.Digit("inband")
	c.SecureEnded("pay", "left", 20*time.Second)
	c.CallEnded("flow:pay", "caller_hangup", 40*time.Second)
	c.CallStarted("echo")
	c.QueueJoined("sales")
	c.QueueLeft("sales", "answered", 3*time.Second)
	c.RecordingClosed(recorder.Stats{Written: 100, Dropped: 2, Silenced: 50, Paused: time.Second})
	c.LegEnded("caller", media.Quality{Received: 95, Expected: 100, Lost: 5, LossPercent: 5, MOS: 3.9, JitterMs: 4, RTTMs: 30})
	c.LegEnded("agent", media.Quality{Received: 100, Expected: 100, MOS: 4.4, JitterMs: 1, RTTMs: -1})

	code, after := scrape(t, m, Access{}, nil)
	if code != http.StatusOK {
		t.Fatalf("scrape: %d", code)
	}
	for series, want := range map[string]float64{
		`cloak_sip_invites_accepted_total`:                                 3,
		`cloak_sip_sessions_active`:                                        1,
		`cloak_sip_requests_total{method="INVITE"}`:                        4,
		`cloak_sip_requests_total{method="other"}`:                         1,
		`cloak_sip_responses_total{code="503"}`:                            2,
		`cloak_sip_refused_total{reason="lag"}`:                            2,
		`cloak_rtp_packets_total{direction="rx"}`:                          500,
		`cloak_rtp_packets_total{direction="tx"}`:                          490,
		`cloak_rtp_bytes_total{direction="rx"}`:                            86000,
		`cloak_rtp_packets_dropped_total{reason="unknown_source"}`:         7,
		`cloak_rtp_packets_dropped_total{reason="malformed"}`:              1,
		`cloak_rtp_legs_open`:                                              2,
		`cloak_sip_auth_failures_total`:                                    12,
		`cloak_sip_auth_locks_total`:                                       1,
		`cloak_overload_state`:                                             1,
		`cloak_overload_episodes_total{signal="lag"}`:                      1,
		`cloak_overload_episodes_total{signal="cpu"}`:                      0,
		`cloak_overload_signal_value{signal="lag"}`:                        0.002,
		`cloak_agents{state="busy"}`:                                       2,
		`cloak_agents{state="reserved"}`:                                   0,
		`cloak_recording_disk_free_bytes`:                                  1 << 30,
		`cloak_calls_active{route="flow:pay"}`:                             0,
		`cloak_calls_active{route="echo"}`:                                 1,
		`cloak_calls_total{ending="caller_hangup",route="flow:pay"}`:       1,
		`cloak_call_duration_seconds_count{route="flow:pay"}`:              1,
		`cloak_secure_segments_started_total{flow="pay"}`:                  1,
		`cloak_secure_segments_ended_total{flow="pay",outcome="left"}`:     1,
		`cloak_secure_segments_active`:                                     0,
		`cloak_secure_segment_duration_seconds_sum{flow="pay"}`:            20,
		`cloak_dtmf_digits_total{source="rfc4733"}`:                        1,
		`cloak_queue_waiting_calls{queue="sales"}`:                         0,
		`cloak_queue_wait_seconds_count{outcome="answered",queue="sales"}`: 1,
		`cloak_recorder_frames_written_total`:                              100,
		`cloak_recorder_frames_dropped_total`:                              2,
		`cloak_recordings_total`:                                           1,
		`cloak_rtp_leg_mos_sum{leg="caller"}`:                              3.9,
		`cloak_rtp_leg_loss_ratio_sum{leg="caller"}`:                       0.05,
		`cloak_rtp_leg_jitter_seconds_sum{leg="agent"}`:                    0.001,
		`cloak_rtp_leg_rtt_seconds_count{leg="caller"}`:                    1,
		`cloak_fraud_arrivals_unscreened_total{reason="timeout"}`:          3,
		`cloak_fraud_arrivals_unscreened_total{reason="error"}`:            1,
	} {
		if got := value(t, after, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if value(t, before, `cloak_rtp_packets_total{direction="rx"}`) != 0 {
		t.Error("rx packets before any packet")
	}
	for _, name := range []string{"go_goroutines", "cloak_process_resident_memory_bytes"} {
		if !strings.Contains(after, "\n"+name+" ") {
			t.Errorf("runtime series %s missing", name)
		}
	}

	// A statfs that fails drops the disk series and says so.
	f.disk = errors.New("gone")
	_, text := scrape(t, m, Access{}, nil)
	if value(t, text, "cloak_recording_disk_stat_errors") != 1 || strings.Contains(text, "cloak_recording_disk_free_bytes ") {
		t.Error("a failed statfs should show as cloak_recording_disk_stat_errors 1, with no free bytes")
	}
}

// TestPromtoolChecksExposition runs promtool (Debian package prometheus)
// over a scrape: names, types, help, units and counters' _total.
func TestPromtoolChecksExposition(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/install-test-deps.sh installs prometheus)")
	}
	m, _ := newTest(t)
	c := m.Calls()
	c.CallStarted("echo")
	c.CallEnded("echo", "caller_hangup", time.Second)
	c.SecureStarted("pay")
	c.SecureEnded("pay", "left", time.Second)
	c.QueueJoined("sales")
	c.QueueLeft("sales", "timeout", time.Second)
	_, text := scrape(t, m, Access{}, nil)
	if err := PromtoolCheck(promtool, text); err != nil {
		t.Fatal(err)
	}
}

// PromtoolCheck runs `promtool check metrics` over an exposition; any
// problem it prints (lint included) is an error.
func PromtoolCheck(promtool, text string) error {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
		return errors.New("promtool check metrics: " + strings.TrimSpace(out.String()))
	}
	return nil
}

// TestAccess: loopback only without a token; with one, the token from
// anywhere and nothing without it.
func TestAccess(t *testing.T) {
	m, _ := newTest(t)
	get := func(a Access, remote, auth string) int {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		m.Handler(a).ServeHTTP(rec, req)
		if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), "cloak_rtp_packets_total") {
			t.Errorf("200 without the series")
		}
		if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "cloak_") {
			t.Errorf("a refused scrape got series")
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without a challenge")
		}
		return rec.Code
	}
	tok := Access{Token: "s3cret-token"}
	for _, tc := range []struct {
		name         string
		a            Access
		remote, auth string
		want         int
	}{
		{"loopback v4", Access{}, "127.0.0.1:5000", "", 200},
		{"loopback v6", Access{}, "[::1]:5000", "", 200},
		{"mapped loopback", Access{}, "[::ffff:127.0.0.1]:5000", "", 200},
		{"lan without token", Access{}, "192.0.2.7:5000", "", 403},
		{"garbage remote", Access{}, "nonsense", "", 403},
		{"token from lan", tok, "192.0.2.7:5000", "Bearer s3cret-token", 200},
		{"no token from loopback", tok, "127.0.0.1:5000", "", 401},
		{"wrong token", tok, "192.0.2.7:5000", "Bearer s3cret-tokem", 401},
		{"prefix of token", tok, "192.0.2.7:5000", "Bearer s3cret", 401},
		{"basic scheme", tok, "192.0.2.7:5000", "Basic s3cret-token", 401},
	} {
		if got := get(tc.a, tc.remote, tc.auth); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// CheckLabels walks every label of every series gathered and returns an
// error naming the first value LooksPrivate refuses.
func CheckLabels(families []*dto.MetricFamily) error {
	for _, mf := range families {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if LooksPrivate(lp.GetValue()) {
					return errors.New(mf.GetName() + "{" + lp.GetName() + "=" + lp.GetValue() + "}: looks like a number or an id")
				}
			}
		}
	}
	return nil
}

// TestNoLabelLooksPrivate: the checker refuses a number and a call id,
// and a scrape after events passes it.
func TestNoLabelLooksPrivate(t *testing.T) {
	m, _ := newTest(t)
	m.Calls().CallStarted("flow:pay")
	m.Calls().Digit("info")
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLabels(fams); err != nil {
		t.Fatal(err)
	}
	// The checker itself catches what it must.
	for _, bad := range []string{"+4420794600000", "0800 123 4567", "a84b4c76e66710@pc33.example.com", "3f1c9a0e-77b2-4f3c-9f0e-0d1c2b3a4f5e"} {
		m2, _ := newTest(t)
		m2.Calls().CallStarted(bad)
		fams, _ := m2.Registry().Gather()
		if CheckLabels(fams) == nil {
			t.Errorf("CheckLabels let %q through", bad)
		}
	}
}

// BenchmarkScrape is a whole scrape's cost: gather and encode, with the
// fake node's sources (media.Totals is measured apart, per open leg).
func BenchmarkScrape(b *testing.B) {
	f := &fakeNode{sip: sip.Stats{Requests: map[string]uint64{"INVITE": 1, "BYE": 1, "ACK": 1}, Responses: map[int]uint64{100: 1, 200: 2, 503: 1}}}
	m, err := New(f.sources())
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []string{"echo", "flow:pay", "flow:main", "tone"} {
		m.Calls().CallStarted(r)
		m.Calls().CallEnded(r, "caller_hangup", time.Minute)
	}
	h := m.Handler(Access{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
