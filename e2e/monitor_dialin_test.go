package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawInviteFinal sends an INVITE for service from fromUser over UDP to c,
// with no credentials, and returns the status line of its final
// response.
func rawInviteFinal(t *testing.T, c *cloak, service, fromUser string) string {
	t.Helper()
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", c.sipPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	callID := fmt.Sprintf("dialin-%d", time.Now().UnixNano())
	msg := fmt.Sprintf("INVITE sip:%s@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%s\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=raw\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		service, c.sipPort, conn.LocalAddr(), callID, fromUser, service, callID, fromUser, conn.LocalAddr(), len(sdp), sdp)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if strings.HasPrefix(line, "SIP/2.0 ") && !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
	t.Fatalf("INVITE %s from %s: no final response", service, fromUser)
	return ""
}

// refused runs dialin-refused.xml as user and checks the final status
// line cloak sent to the authenticated INVITE.
func refused(t *testing.T, c *cloak, service, user, password, want string) {
	t.Helper()
	s := runSipp(t, c, sippArgs{scenario: "dialin-refused.xml", service: service, timeout: 10 * time.Second,
		keys: map[string]string{"user": user}, extra: []string{"-au", user, "-ap", password}})
	if !strings.Contains(s.messages(), want+"\r\n") && !strings.Contains(s.messages(), want+"\n") {
		t.Errorf("%s as %s: want %q, sipp saw:\n%s", service, user, want, tail(s.messages(), 2000))
	}
	if !strings.Contains(s.messages(), "SIP/2.0 401 Unauthorized") {
		t.Errorf("%s as %s: the INVITE was not challenged", service, user)
	}
}

// TestMonitorDialIn: a supervisor dials *55alice from their own phone
// (sipp UAC) while alice (sipp UAS) talks to a caller (sipp UAC). The
// INVITE is challenged (401) and sipp answers with -au/-ap; cloak
// attaches that dialog as a monitor leg in listen mode, places no call,
// and audits it. Before that: the same number without credentials from
// a non-user gets 403; after authenticating, a user who supervises no
// queue of the call gets 403, so does one listed in the queue whose API
// role lacks calls.monitor; an agent with no live call 480, no such
// agent 404. The agent
// sends the caller into secure-pay and the caller keys the card in-band:
// the supervisor hears caller and agent before and after, nothing of the
// segment (no caller or agent audio, no prompt energy, no digit); caller
// and agent never hear the supervisor.
func TestMonitorDialIn(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	t.Parallel()
	const supPassword, otherPassword, sup2Password = "sup1-dialin-e2e", "other-dialin-e2e", "sup2-dialin-e2e"
	agentPort := freePorts(t, 1, true)
	agentMedia, supMedia, callerMedia := freePorts(t, 4, false), freePorts(t, 4, false), freePorts(t, 4, false)
	yaml := fmt.Sprintf(`agents:
  - {name: alice, uri: "sip:agent@127.0.0.1:%d", queues: [sales]}
  - {name: sup1, password: %s, queues: []}
  - {name: other, password: %s, queues: []}
  - {name: sup2, password: %s, queues: []}
features: {secure_code: "*7", secure_flow: secure-pay, monitor_code: "*55"}
monitor: {max_per_call: 2}
# The users' argon2id hashes below are seconds of CPU on a shared machine:
# admission's CPU signal would refuse the calls (as in TestAPIRolesEndToEnd).
limits: {max_cpu: 0}
`, agentPort, supPassword, otherPassword, sup2Password)
	opts := ivrOpts(yaml, "{name: sales, timeout: 3s, ring_timeout: 5s, dtmf: mask, supervisors: [sup1, sup2]}")
	// MD5 first: sipp 3.6 answers only the first challenge, and only MD5.
	opts.sipExtra = "  auth:\n    algorithms: [MD5, SHA-256]\n"
	c := startCloak(t, opts)
	// The API's users: a dial-in is permitted as the monitor routes are,
	// to a role with calls.monitor listed in the queue's supervisors.
	// sup2 is listed but an agent; other a supervisor of no queue here.
	for _, u := range []struct{ name, role string }{{"sup1", "supervisor"}, {"sup2", "agent"}, {"other", "supervisor"}} {
		if _, errs, err := c.cli("a long test passphrase 7\n", "users", "add", u.name, "-role", u.role, "-password-stdin"); err != nil {
			t.Fatalf("cloak users add %s: %v %s", u.name, err, errs)
		}
	}
	wire := startWireCapture(t, agentMedia, callerMedia, supMedia)

	// Nobody's call yet: an authenticated supervisor is told there is none.
	refused(t, c, "*55alice", "sup1", supPassword, "SIP/2.0 480 Temporarily Unavailable: No Live Call")
	refused(t, c, "*55nobody", "sup1", supPassword, "SIP/2.0 404 Not Found: No Such Agent")

	agent := startSipp(t, c, sippArgs{scenario: "agent.xml", uas: true, localPort: agentPort, mediaPort: agentMedia,
		timeout: 60 * time.Second, keys: map[string]string{"pcap": scenario("pcap/agent-talk.pcap")}})
	time.Sleep(300 * time.Millisecond) // the sipp UAS listening
	caller := startSipp(t, c, sippArgs{scenario: "ivr-hangup.xml", service: "main", mediaPort: callerMedia,
		pause: 29 * time.Second, timeout: 60 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-inband.pcap"), "fmts": "0"}})
	if !c.waitLog("agent answered: bridging", 15*time.Second) {
		t.Fatal("the agent was never bridged")
	}
	bridged := time.Now()
	calls, err := apiCalls(t, c)
	if err != nil || len(calls) != 1 {
		t.Fatalf("GET /api/calls: %v, %d calls", err, len(calls))
	}
	callID := calls[0].ID

	// No credentials and no user: 403, never a monitor.
	if got := rawInviteFinal(t, c, "*55alice", "intruder"); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Errorf("*55alice from an unauthenticated caller: %q, want 403", got)
	}
	// A user who supervises no queue of the call: 403 after the digest.
	refused(t, c, "*55alice", "other", otherPassword, "SIP/2.0 403 Forbidden: Not A Supervisor Of The Queue")
	// Listed in the queue, but the role has no calls.monitor: 403.
	refused(t, c, "*55alice", "sup2", sup2Password, "SIP/2.0 403 Forbidden: Not A Supervisor Of The Queue")

	sup := startSipp(t, c, sippArgs{scenario: "supervisor-dialin.xml", service: "*55alice", mediaPort: supMedia, timeout: 60 * time.Second,
		keys:  map[string]string{"user": "sup1", "pcap": scenario("pcap/supervisor-talk.pcap")},
		extra: []string{"-au", "sup1", "-ap", supPassword}})
	// As TestMonitorListenSecure: the agent refers 3.3 s after the bridge.
	time.Sleep(time.Until(bridged.Add(3300 * time.Millisecond)))
	if code, body := apiPost(t, c, "/api/calls/"+callID+"/secure", `{"flow":"secure-pay"}`); code/100 != 2 {
		t.Fatalf("POST secure: %d %s", code, body)
	}
	caller.wait(t)
	agent.wait(t)
	sup.wait(t)
	if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}
	var audit []apiAudit
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var out struct {
			Entries []apiAudit `json:"entries"`
		}
		if err := apiGet(t, c, "/api/archive/audit?id="+callID, &out); err != nil {
			t.Errorf("GET audit: %v", err)
			break
		}
		if audit = out.Entries; strings.Contains(fmt.Sprint(audit), "monitor_stop") {
			break
		}
	}
	recs := wire.records(t)
	c.stop()
	lines := parseLog(t, c.log())

	if strings.Contains(c.log(), supPassword) || strings.Contains(c.log(), otherPassword) || strings.Contains(c.log(), sup2Password) {
		t.Error("cloak's log holds a supervisor's password")
	}
	if strings.Contains(sup.messages(), "INVITE sip:sup1") || strings.Contains(sup.messages(), "INVITE sip:supervisor") {
		t.Error("cloak placed a call to the supervisor: the dial-in's own dialog must be the leg")
	}
	started := listenStartStop(t, lines, callID, "dial_in")
	checkListenSecure(t, lines, recs, callID, started, supMedia, agentMedia, callerMedia)
	if monitorRows(audit) != 2 {
		t.Errorf("audit rows of the call: %+v, want monitor_start and monitor_stop", audit)
	}
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "monitor_") && (a.Actor != "supervisor:sup1" || !strings.Contains(a.Detail, "via=dial_in") && a.Action == "monitor_start") {
			t.Errorf("audit row %+v: want actor supervisor:sup1, started via dial_in", a)
		}
	}
}
