package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// supHz is the supervisor's tone in supervisor-*.pcap: caller 1004 Hz,
// agent 600 Hz, supervisor 1800 Hz tell the three apart in what each
// party received.
const supHz = 1800

// monitorRig is agentRig's call (caller keys 2 for sales, alice answers)
// plus a supervisor, sup1, as a sipp UAS at a static URI; sup1
// supervises sales. tshark captures what cloak sends to all three.
type monitorRig struct {
	c                              *cloak
	agentPort, agentMedia          int
	supPort, supMedia              int
	callerMedia                    int
	wire                           *wireCapture
	agent, sup, caller             *sipp
	agentPcap, supPcap, callerPcap string
	callerFmts                     string
	callerPause                    time.Duration
	bridged                        time.Time
	callID                         string
}

func (r *monitorRig) start(t *testing.T) {
	t.Helper()
	r.agentPort, r.supPort = freePorts(t, 1, true), freePorts(t, 1, true)
	r.agentMedia, r.supMedia, r.callerMedia = freePorts(t, 4, false), freePorts(t, 4, false), freePorts(t, 4, false)
	yaml := fmt.Sprintf(`agents:
  - {name: alice, uri: "sip:agent@127.0.0.1:%d", queues: [sales]}
  - {name: sup1, uri: "sip:sup@127.0.0.1:%d", queues: []}
features: {secure_code: "*7", secure_flow: secure-pay}
monitor: {max_per_call: 2, ring_timeout: 5s}
`, r.agentPort, r.supPort)
	r.c = startCloak(t, ivrOpts(yaml, "{name: sales, timeout: 3s, ring_timeout: 5s, dtmf: mask, supervisors: [sup1]}"))
	r.wire = startWireCapture(t, r.agentMedia, r.callerMedia, r.supMedia)
	r.agent = startSipp(t, r.c, sippArgs{scenario: "agent.xml", uas: true, localPort: r.agentPort, mediaPort: r.agentMedia,
		timeout: 60 * time.Second, keys: map[string]string{"pcap": scenario(r.agentPcap)}})
	r.sup = startSipp(t, r.c, sippArgs{scenario: "agent.xml", uas: true, localPort: r.supPort, mediaPort: r.supMedia,
		timeout: 60 * time.Second, keys: map[string]string{"pcap": scenario(r.supPcap)}})
	time.Sleep(300 * time.Millisecond) // sipp UASs listening
	r.caller = startSipp(t, r.c, sippArgs{scenario: "ivr-hangup.xml", service: "main", mediaPort: r.callerMedia,
		pause: r.callerPause, timeout: 60 * time.Second,
		keys: map[string]string{"pcap": scenario(r.callerPcap), "fmts": r.callerFmts}})
	if !r.c.waitLog("agent answered: bridging", 15*time.Second) {
		t.Fatal("the agent was never bridged")
	}
	r.bridged = time.Now()
	calls, err := apiCalls(t, r.c)
	if err != nil || len(calls) != 1 {
		t.Fatalf("GET /api/calls: %v, %d calls", err, len(calls))
	}
	r.callID = calls[0].ID
}

// at sleeps until d after the bridge.
func (r *monitorRig) at(d time.Duration) { time.Sleep(time.Until(r.bridged.Add(d))) }

// monitor asks to monitor the call and returns the monitor's id.
func (r *monitorRig) monitor(t *testing.T, body string) string {
	t.Helper()
	code, resp := apiDo(t, r.c, http.MethodPost, "/api/calls/"+r.callID+"/monitor", body)
	if code != http.StatusCreated {
		t.Fatalf("POST monitor %s: %d %s", body, code, resp)
	}
	var out struct{ ID string }
	if err := json.Unmarshal([]byte(resp), &out); err != nil || out.ID == "" {
		t.Fatalf("POST monitor: %s", resp)
	}
	return out.ID
}

// finish waits for the parties and the call's end, reads the audit log
// while cloak runs, and returns cloak's log, the capture and the audit
// rows of the call.
func (r *monitorRig) finish(t *testing.T) ([]logLine, []udpRecord, []apiAudit) {
	t.Helper()
	r.caller.wait(t)
	r.agent.wait(t)
	r.sup.wait(t)
	if !r.c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}
	var audit []apiAudit
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var out struct {
			Entries []apiAudit `json:"entries"`
		}
		if err := apiGet(t, r.c, "/api/archive/audit?id="+r.callID, &out); err != nil {
			t.Errorf("GET audit: %v", err)
			break
		}
		audit = out.Entries
		if strings.Contains(fmt.Sprint(audit), "monitor_stop") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	recs := r.wire.records(t)
	r.c.stop()
	return parseLog(t, r.c.log()), recs, audit
}

// apiAudit is a row of GET /api/archive/audit.
type apiAudit struct {
	Action string `json:"action"`
	Actor  string `json:"actor"`
	Detail string `json:"detail"`
}

func monitorRows(rows []apiAudit) int {
	n := 0
	for _, a := range rows {
		if strings.HasPrefix(a.Action, "monitor_") {
			n++
		}
	}
	return n
}

// blockShare is toneShare per 20 ms block, averaged: how much of the
// audio is the tone hz, insensitive to the phase jumps a re-clocked mix
// has where a frame came late (toneShare over a long window is coherent,
// and a few such jumps cancel a tone that is plainly there).
func blockShare(pcm []int16, hz float64) float64 {
	n, sum := 0, 0.0
	for i := 0; i+160 <= len(pcm); i += 160 {
		sum += toneShare(pcm[i:i+160], hz)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// rms is the root mean square of pcm.
func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var e float64
	for _, v := range pcm {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(pcm)))
}

// checkNoDigits fails when what port received decodes to any DTMF digit
// (`cloak dtmf scan` on a WAV of it, and the Go detector per stream).
func checkNoDigits(t *testing.T, recs []udpRecord, port int, who string) {
	t.Helper()
	all := rtpBetween(recs, port, time.Time{}, time.Now().Add(time.Hour))
	if all.events != 0 {
		t.Errorf("%d telephone-event packets reached the %s", all.events, who)
	}
	wav := filepath.Join(t.TempDir(), who+"-heard.wav")
	writeWAV(t, wav, all.pcm)
	if code, out := dtmfScan(t, wav); code != 0 {
		t.Errorf("cloak dtmf scan found digits in what the %s heard:\n%s", who, out)
	}
	for _, d := range detectRTPDigits(t, recs) {
		if strings.HasSuffix(d.flow, fmt.Sprintf(":%d", port)) {
			t.Errorf("a DTMF tone reached the %s at %s", who, d.at.Format("15:04:05.000"))
		}
	}
}

// listenStartStop checks the call's one "monitor start" line (sup1, in
// listen, asked by via) and its one "monitor stop" line (the call's end),
// and returns when the monitor started.
func listenStartStop(t *testing.T, lines []logLine, id, via string) time.Time {
	t.Helper()
	started := one(t, lines, "monitor start", id)
	if started.str("supervisor") != "sup1" || started.str("monitor_mode") != "listen" || started.str("via") != via {
		t.Errorf("monitor start line: %s", started.text)
	}
	if stopped := one(t, lines, "monitor stop", id); stopped.str("via") != "call_ended" {
		t.Errorf("monitor stop line: %s", stopped.text)
	}
	return started.Time
}

// checkListenSecure checks what a supervisor listening on supMedia from
// started heard of call id, which the agent sent into secure-pay and
// which returned: both caller and agent before the referral and after
// the return; from the referral to the return no caller or agent audio,
// no prompt energy and yet a live stream (filler); no digit at any time;
// and that neither agent nor caller ever heard the supervisor.
func checkListenSecure(t *testing.T, lines []logLine, recs []udpRecord, id string, started time.Time, supMedia, agentMedia, callerMedia int) {
	t.Helper()
	referred := one(t, lines, "agent sends the caller into a secure flow; agent reserved", id).Time
	secStart := one(t, lines, "secure segment started", id).Time
	secEnd := one(t, lines, "secure segment ended", id).Time
	returned := one(t, lines, "caller returned to the agent", id).Time
	ended := one(t, lines, "call ended", id).Time
	if !started.Before(referred) {
		t.Fatalf("the monitor started at %v, after the referral at %v: too late for this test's windows", started, referred)
	}
	const edge = 300 * time.Millisecond
	before := rtpBetween(recs, supMedia, started.Add(edge), referred.Add(-edge))
	during := rtpBetween(recs, supMedia, referred.Add(edge), returned)
	after := rtpBetween(recs, supMedia, returned.Add(edge), ended.Add(-edge))
	t.Logf("supervisor: before caller %.2f agent %.2f (%d pkts); referral+secure %v..%v (secure %v..%v) caller %.3f agent %.3f rms %.1f (%d pkts); after caller %.2f agent %.2f",
		blockShare(before.pcm, callerHz), blockShare(before.pcm, agentHz), before.packets,
		referred.Format("15:04:05.000"), returned.Format("15:04:05.000"), secStart.Format("15:04:05.000"), secEnd.Format("15:04:05.000"),
		blockShare(during.pcm, callerHz), blockShare(during.pcm, agentHz), rms(during.pcm), during.packets,
		blockShare(after.pcm, callerHz), blockShare(after.pcm, agentHz))
	if blockShare(before.pcm, callerHz) < 0.15 || blockShare(before.pcm, agentHz) < 0.15 {
		t.Error("the listening supervisor did not hear both caller and agent before the referral")
	}
	if blockShare(after.pcm, callerHz) < 0.15 || blockShare(after.pcm, agentHz) < 0.15 {
		t.Error("the listening supervisor did not hear both caller and agent after the return")
	}
	if during.packets == 0 {
		t.Error("no RTP reached the supervisor during the referral (want filler, not a dead line)")
	}
	if blockShare(during.pcm, callerHz) > 0.05 || blockShare(during.pcm, agentHz) > 0.05 {
		t.Error("the supervisor heard the caller or the agent during the referral or secure segment")
	}
	// Prompt energy: the flow's prompts are speech at about -20 dBm0
	// (rms ~ 2000); the filler is about -70 dBm0 (rms 5).
	if v := rms(during.pcm); v > 50 {
		t.Errorf("the supervisor's audio during the referral has rms %.1f: prompt or read-back energy", v)
	}
	checkNoDigits(t, recs, supMedia, "supervisor")
	for _, p := range []struct {
		port int
		who  string
	}{{agentMedia, "agent"}, {callerMedia, "caller"}} {
		all := rtpBetween(recs, p.port, started, ended)
		if sh := blockShare(all.pcm, supHz); sh > 0.02 {
			t.Errorf("the %s heard the listening supervisor (%d Hz share %.3f)", p.who, supHz, sh)
		}
	}
}

// TestMonitorListenSecure: a supervisor (a user name resolved to its
// contact) listens from just after the bridge; the agent sends the
// caller into secure-pay through the API, the caller keys the card
// in-band, returns to the agent, hangs up. The supervisor hears caller
// and agent before and after, and from the referral until the return
// nothing: no caller or agent audio, no prompt energy, no digit. Caller
// and agent never hear the supervisor's 1800 Hz. Every monitor action is
// in the log and the audit log.
func TestMonitorListenSecure(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	t.Parallel()
	r := &monitorRig{agentPcap: "pcap/agent-talk.pcap", supPcap: "pcap/supervisor-talk.pcap",
		callerPcap: "pcap/caller-agent-inband.pcap", callerFmts: "0", callerPause: 29 * time.Second}
	r.start(t)
	r.at(500 * time.Millisecond)
	r.monitor(t, `{"mode":"listen","target":"sup1"}`)
	// Like TestAgentSecureSession's api variant: 3.3 s after the bridge.
	r.at(3300 * time.Millisecond)
	if code, body := apiPost(t, r.c, "/api/calls/"+r.callID+"/secure", `{"flow":"secure-pay"}`); code/100 != 2 {
		t.Fatalf("POST secure: %d %s", code, body)
	}
	lines, recs, audit := r.finish(t)
	id := r.callID
	started := listenStartStop(t, lines, id, "api")
	checkListenSecure(t, lines, recs, id, started, r.supMedia, r.agentMedia, r.callerMedia)
	if monitorRows(audit) != 2 {
		t.Errorf("audit rows of the call: %+v, want monitor_start and monitor_stop", audit)
	}
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "monitor_") && a.Actor != "supervisor:sup1" {
			t.Errorf("audit row %+v: actor is not the supervisor", a)
		}
	}
}

// TestMonitorCoachBarge: a supervisor reached by SIP URI starts in
// listen; their phone keys 5 (coach) and 6 (barge) as RFC 4733 events;
// the API switches back to listen and then stops the monitor. The caller
// keys the test card in-band while talking (the queue masks DTMF). In
// listen nobody hears the supervisor's 1800 Hz, in coach the agent only,
// in barge both; the supervisor's audio decodes to no digit; every
// action is logged and audited.
func TestMonitorCoachBarge(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	t.Parallel()
	r := &monitorRig{agentPcap: "pcap/agent-talk.pcap", supPcap: "pcap/supervisor-keys.pcap",
		callerPcap: "pcap/caller-agent-inband.pcap", callerFmts: "0", callerPause: 29 * time.Second}
	r.start(t)
	r.at(500 * time.Millisecond)
	// A URI target needs the supervisor's name; only sup1 supervises sales.
	if code, body := apiDo(t, r.c, http.MethodPost, "/api/calls/"+r.callID+"/monitor",
		fmt.Sprintf(`{"mode":"listen","target":"sip:sup@127.0.0.1:%d","supervisor":"intruder"}`, r.supPort)); code != http.StatusForbidden {
		t.Errorf("monitor by a non-supervisor: %d %s, want 403", code, body)
	}
	mid := r.monitor(t, fmt.Sprintf(`{"mode":"listen","target":"sip:sup@127.0.0.1:%d","supervisor":"sup1"}`, r.supPort))
	r.at(18 * time.Second) // after the keys 5 and 6 (5 s and 11 s into the supervisor's stream)
	if code, body := apiDo(t, r.c, http.MethodPatch, "/api/calls/"+r.callID+"/monitor/"+mid, `{"mode":"listen"}`); code != http.StatusOK {
		t.Errorf("PATCH monitor: %d %s", code, body)
	}
	var info struct {
		Monitors []struct{ ID, Mode, Supervisor string }
	}
	if err := apiGet(t, r.c, "/api/calls/"+r.callID, &info); err != nil || len(info.Monitors) != 1 ||
		info.Monitors[0].ID != mid || info.Monitors[0].Mode != "listen" || info.Monitors[0].Supervisor != "sup1" {
		t.Errorf("the call's monitors: %+v (%v)", info.Monitors, err)
	}
	r.at(21 * time.Second)
	if code, body := apiDo(t, r.c, http.MethodDelete, "/api/calls/"+r.callID+"/monitor/"+mid, ``); code != http.StatusOK {
		t.Errorf("DELETE monitor: %d %s", code, body)
	}
	lines, recs, audit := r.finish(t)
	id := r.callID
	started := one(t, lines, "monitor start", id).Time
	modes := findLog(lines, "monitor mode", id)
	var got []string
	for _, l := range modes {
		got = append(got, l.str("monitor_mode")+"/"+l.str("via"))
	}
	if strings.Join(got, " ") != "coach/dtmf barge/dtmf listen/api" {
		t.Fatalf("mode changes %v, want coach/dtmf barge/dtmf listen/api", got)
	}
	stopped := one(t, lines, "monitor stop", id)
	if stopped.str("via") != "api" {
		t.Errorf("monitor stop line: %s", stopped.text)
	}
	coachAt, bargeAt, listenAt := modes[0].Time, modes[1].Time, modes[2].Time
	const edge = 300 * time.Millisecond
	for _, w := range []struct {
		name              string
		from, to          time.Time
		toAgent, toCaller bool
	}{
		{"listen", started.Add(edge), coachAt, false, false},
		{"coach", coachAt.Add(edge), bargeAt, true, false},
		{"barge", bargeAt.Add(edge), listenAt, true, true},
		{"listen again", listenAt.Add(edge), stopped.Time, false, false},
	} {
		a := blockShare(rtpBetween(recs, r.agentMedia, w.from, w.to).pcm, supHz)
		c := blockShare(rtpBetween(recs, r.callerMedia, w.from, w.to).pcm, supHz)
		s := rtpBetween(recs, r.supMedia, w.from, w.to)
		t.Logf("%s %v..%v: agent hears supervisor %.3f, caller hears supervisor %.3f; supervisor hears caller %.2f agent %.2f",
			w.name, w.from.Format("15:04:05.000"), w.to.Format("15:04:05.000"), a, c, blockShare(s.pcm, callerHz), blockShare(s.pcm, agentHz))
		if (a > 0.1) != w.toAgent || (a > 0.02 && !w.toAgent) {
			t.Errorf("%s: the agent's share of the supervisor's tone is %.3f, want heard=%v", w.name, a, w.toAgent)
		}
		if (c > 0.1) != w.toCaller || (c > 0.02 && !w.toCaller) {
			t.Errorf("%s: the caller's share of the supervisor's tone is %.3f, want heard=%v", w.name, c, w.toCaller)
		}
		if blockShare(s.pcm, agentHz) < 0.1 {
			t.Errorf("%s: the supervisor does not hear the agent", w.name)
		}
	}
	// The caller keyed the card in-band while talking: neither the agent
	// nor the supervisor heard a digit (and the caller heard no digit of
	// the supervisor's keys either).
	checkNoDigits(t, recs, r.supMedia, "supervisor")
	checkNoDigits(t, recs, r.agentMedia, "agent")
	checkNoDigits(t, recs, r.callerMedia, "caller")
	if n := monitorRows(audit); n != 5 {
		t.Errorf("%d monitor audit rows, want 5 (start, 3 mode changes, stop): %+v", n, audit)
	}
}
