package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestOverloadAdmission: cloak is made to overload by a tiny limit
// (limits.max_lag: 1us, so any RTP it reads trips it; the CPU signal off
// so the shared machine's load cannot). While a call's RTP flows, a new
// INVITE gets 503 with Retry-After and an OPTIONS probe 503 too; the call
// already up completes normally; one log line starts the episode and one
// ends it, none per refusal; /api/stats shows the state and the
// refusals by reason. When the RTP stops, cloak takes calls again within
// the hold (1 s) and a couple of samples, and a new call is answered.
func TestOverloadAdmission(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{admin: true,
		extra: "limits:\n  max_cpu: 0\n  max_system_cpu: 0\n  max_lag: 1us\n  hold: 1s\n  interval: 100ms\n  retry_after: 3s\n"})
	const (
		start = "overload: refusing new calls"
		end   = "overload over: taking new calls again"
	)
	if s := runSipp(t, c, sippArgs{scenario: "options.xml"}); !strings.Contains(s.messages(), "SIP/2.0 200 OK") {
		t.Fatal("OPTIONS before the load: no 200")
	}
	tone := map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "pt": "0", "codec": "PCMU"}
	first := startSipp(t, c, sippArgs{scenario: "echo.xml", keys: tone})
	if !c.waitLog(start, 5*time.Second) {
		t.Fatal("cloak did not become overloaded while a call's RTP flowed over a 1 us lag limit")
	}

	second := runSipp(t, c, sippArgs{scenario: "invite-503.xml", service: "echo"})
	if m := second.messages(); !strings.Contains(m, "SIP/2.0 503 ") || !strings.Contains(m, "Retry-After: 3") {
		t.Errorf("INVITE while overloaded: want 503 with Retry-After: 3; sipp saw:\n%s", tail(m, 1500))
	}
	probe := runSipp(t, c, sippArgs{scenario: "options-503.xml"})
	if m := probe.messages(); !strings.Contains(m, "Retry-After: 3") {
		t.Errorf("OPTIONS while overloaded: want 503 with Retry-After: 3; sipp saw:\n%s", tail(m, 1500))
	}
	var st map[string]any
	if err := apiGet(t, c, "/api/stats", &st); err != nil {
		t.Fatal(err)
	}
	if st["overload_state"] != 1.0 || st["overload_reason"] != "lag" {
		t.Errorf("/api/stats overload_state %v, reason %v; want 1, lag", st["overload_state"], st["overload_reason"])
	}
	if n, _ := st["sip_refused_lag"].(float64); n < 1 {
		t.Errorf("/api/stats sip_refused_lag = %v, want >= 1", st["sip_refused_lag"])
	}
	if n, _ := st["sip_probes_refused"].(float64); n < 1 {
		t.Errorf("/api/stats sip_probes_refused = %v, want >= 1", st["sip_probes_refused"])
	}
	// The same on /metrics, as a scraper sees it.
	m := scrapeMetrics(t, c)
	for _, want := range []string{"cloak_overload_state 1\n", `cloak_overload_episodes_total{signal="lag"} 1` + "\n",
		`cloak_sip_refused_total{reason="lag"} `, "cloak_sip_options_refused_total "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q while overloaded", want)
		}
	}

	// The call already up is untouched: answered before, it plays its
	// 3 s, gets its echo and hangs up with 200 to its BYE.
	first.wait(t)
	quiet := time.Now()
	if !c.waitLog(end, 5*time.Second) {
		t.Fatal("cloak still overloaded 5 s after the RTP stopped")
	}
	// Bound: the hold (1 s) after the last sample with lag, plus a few
	// 100 ms samples and sipp's exit; generous for a loaded machine.
	if took := time.Since(quiet); took > 3*time.Second {
		t.Errorf("took %v after the load went away to take calls again, want under 3 s", took)
	}
	log := c.log()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "overload") {
			t.Log(l) // the figures: the lag that tripped it, the episode's length and peak
		}
	}
	if n := strings.Count(log, start); n != 1 {
		t.Errorf("%d episode-start lines, want 1 (none per refused call)", n)
	}
	if n := strings.Count(log, end); n != 1 {
		t.Errorf("%d episode-end lines, want 1", n)
	}
	if i := strings.Index(log, end); i >= 0 {
		line, _, _ := strings.Cut(log[i:], "\n")
		if !strings.Contains(line, "duration=") || !strings.Contains(line, "peak_signal=lag") {
			t.Errorf("episode-end line lacks its duration or peak: %s", line)
		}
	}
	if s := runSipp(t, c, sippArgs{scenario: "options.xml"}); !strings.Contains(s.messages(), "SIP/2.0 200 OK") {
		t.Error("OPTIONS after the load: no 200")
	}
	runSipp(t, c, sippArgs{scenario: "echo.xml", keys: tone}) // answered again
	c.stop()
}
