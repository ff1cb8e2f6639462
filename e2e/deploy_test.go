package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The files in deploy/ are run here as shipped: the Kamailio front door
// (deploy/kamailio/kamailio.cfg) with only its documented -A settings
// changed, and the systemd unit checked by systemd-analyze.

// frontDoor runs deploy/kamailio/kamailio.cfg on a free loopback port in
// front of the cloak nodes at nodes (SIP ports), probing every second and
// failing an INVITE over after 1 s of silence.
func frontDoor(t *testing.T, nodes ...int) *kamailio {
	t.Helper()
	dir := t.TempDir()
	listFile := dispatcherList(t, dir, nodes...)
	port := freePorts(t, 1, true)
	return launchKamailio(t, dir, port, deployFile(t, "kamailio/kamailio.cfg"),
		"-A", fmt.Sprintf("LISTEN=127.0.0.1:%d", port),
		"-A", fmt.Sprintf("DS_LIST=%q", listFile),
		"-A", "DS_PING_INTERVAL=1", "-A", "INVITE_TIMEOUT=1000", "-A", "CHILDREN=4")
}

// deployFile is the path of a file under the repository's deploy/.
func deployFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("deploy/%s: %v", name, err)
	}
	return p
}

// TestDeployKamailioConfigChecks: the shipped Kamailio config passes
// Kamailio's own check with its defaults, so an operator's first run
// does not start from a syntax error.
func TestDeployKamailioConfigChecks(t *testing.T) {
	requireTools(t, "kamailio")
	out, err := exec.Command("kamailio", "-c", "-f", deployFile(t, "kamailio/kamailio.cfg"),
		"-A", fmt.Sprintf("DS_LIST=%q", deployFile(t, "kamailio/dispatcher.list"))).CombinedOutput()
	if err != nil {
		t.Fatalf("kamailio -c: %v\n%s", err, tail(string(out), 3000))
	}
}

// TestDeploySystemdUnitVerifies: the shipped unit passes systemd-analyze
// verify (with ExecStart pointed at the binary the tests built, since the
// unit's /usr/local/bin/cloak is not installed here).
func TestDeploySystemdUnitVerifies(t *testing.T) {
	requireTools(t, "systemd-analyze")
	b, err := os.ReadFile(deployFile(t, "systemd/cloak.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(b), "/usr/local/bin/cloak", cloakBin)
	if unit == string(b) {
		t.Fatal("the unit's ExecStart no longer names /usr/local/bin/cloak")
	}
	p := filepath.Join(t.TempDir(), "cloak.service")
	if err := os.WriteFile(p, []byte(unit), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "User=cloak"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lost its hardening line %q", strings.TrimSpace(want))
		}
	}
}

// TestDeployFrontDoorSpreadsAndFailsOver: two cloak nodes behind the
// shipped Kamailio config. 200 calls are spread over both and all
// succeed; after kill -9 of one node every new call still succeeds (the
// INVITE it would have got fails over after INVITE_TIMEOUT, and the next
// probe takes the node out), and the calls lost to the kill are counted.
func TestDeployFrontDoorSpreadsAndFailsOver(t *testing.T) {
	requireTools(t, "sipp", "kamailio")
	a := startCloak(t, cloakOpts{rtpPorts: 200, logLevel: "info"})
	b := startCloak(t, cloakOpts{rtpPorts: 200, logLevel: "info"})
	k := frontDoor(t, a.sipPort, b.sipPort)
	const answered = "call answered"

	const calls = 200
	runSipp(t, a, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: calls, rate: 50,
		remote: k.addr, pause: 100 * time.Millisecond, timeout: 60 * time.Second, extra: []string{"-timeout_error"}})
	na, nb := strings.Count(a.log(), answered), strings.Count(b.log(), answered)
	if na+nb != calls || na < calls/4 || nb < calls/4 {
		t.Fatalf("calls answered: node A %d, node B %d; want %d spread over both", na, nb, calls)
	}

	// kill -9 node B: no 503, no BYE, nothing; its socket just goes.
	_ = b.cmd.Process.Kill()
	<-b.done
	killed := time.Now()
	const after = 20
	const rate = 10
	runSipp(t, a, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: after, rate: rate,
		remote: k.addr, pause: 100 * time.Millisecond, timeout: 60 * time.Second, extra: []string{"-timeout_error"}})
	took := time.Since(killed)
	if n := strings.Count(a.log(), answered) - na; n != after {
		t.Errorf("node A answered %d of the %d calls after node B was killed", n, after)
	}
	// Until the first INVITE to B times out (INVITE_TIMEOUT, 1 s) round
	// robin sends B every other new call: about rate × 1 s / 2 of them
	// wait 1 s and fail over; then B is marked out (ds_mark_dst) and gets
	// none until a probe is answered.
	failovers := strings.Count(k.log(), "failed over to")
	t.Logf("after kill -9 of node B: %d calls at %d/s in %v, all answered by node A; %d INVITEs failed over, each 1 s late",
		after, rate, took.Round(time.Millisecond), failovers)
	if failovers == 0 || failovers > rate/2+2 {
		t.Errorf("%d INVITEs failed over after the kill, want 1 to %d (the calls sent to B in the first INVITE_TIMEOUT)", failovers, rate/2+2)
	}
	if strings.Contains(k.log(), "ERROR") && !strings.Contains(k.log(), "failed over") {
		t.Logf("kamailio errors:\n%s", tail(k.log(), 2000))
	}
	a.stop()
}

// TestDeployFrontDoorDrains: SIGTERM to a node behind the shipped config.
// It answers the probes 503 at once, Kamailio sends it no new call (all go
// to the other node), the call it holds finishes normally, and then it
// exits cleanly.
func TestDeployFrontDoorDrains(t *testing.T) {
	requireTools(t, "sipp", "kamailio")
	a := startCloak(t, cloakOpts{admin: true, logLevel: "info", grace: 20 * time.Second})
	b := startCloak(t, cloakOpts{logLevel: "info"})
	k := frontDoor(t, a.sipPort, b.sipPort)
	const answered = "call answered"

	// One call held on node A for 6 s, straight to it.
	tone := map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "fmts": "0"}
	held := startSipp(t, a, sippArgs{scenario: "ivr-hangup.xml", service: "echo", keys: tone, pause: 6 * time.Second})
	if !a.waitLog(answered, 5*time.Second) {
		t.Fatal("the held call was not answered by node A")
	}
	a.terminate()
	// The next probe (every second) gets 503 and takes A out.
	time.Sleep(2500 * time.Millisecond)
	if !held.running() {
		t.Fatal("the held call ended before the calls through Kamailio: the test proves nothing")
	}
	aBefore, bBefore := strings.Count(a.log(), answered), strings.Count(b.log(), answered)
	const calls = 10
	runSipp(t, b, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: calls, rate: 10,
		remote: k.addr, pause: 100 * time.Millisecond, extra: []string{"-timeout_error"}})
	if n := strings.Count(a.log(), answered) - aBefore; n != 0 {
		t.Errorf("the draining node answered %d new calls", n)
	}
	if n := strings.Count(b.log(), answered) - bBefore; n != calls {
		t.Errorf("node B answered %d of %d calls while A drained", n, calls)
	}
	held.wait(t) // the call A held ended normally (sipp exit 0)
	a.wait(15 * time.Second)
	b.stop()
}

// TestDeployFrontDoorAgentPath: an agent registers through the shipped
// Kamailio (which adds a Path, RFC 3327, with the address the REGISTER
// came from), a caller reaches the queue through it, and cloak calls the
// agent with that Path as the Route set: the INVITE the agent receives
// came through Kamailio (its Via and Record-Route), the call is bridged
// and ends cleanly, in-dialog requests following the record-route.
func TestDeployFrontDoorAgentPath(t *testing.T) {
	requireTools(t, "sipp", "kamailio")
	agentPort := freePorts(t, 1, true)
	c := startCloak(t, ivrOpts(`agents:
  - {name: demo, password: demo, queues: [sales]}
`))
	k := frontDoor(t, c.sipPort)

	// REGISTER from the agent's own port (as its phone would, behind a
	// NAT), through Kamailio, with digest; then the port is sipp's.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: agentPort})
	if err != nil {
		t.Fatal(err)
	}
	ua := &rawUA{t: t, conn: conn, server: k.addr, port: agentPort, via: "127.0.0.1"}
	chal := parseChallenges(t, ua.do(agentPort, ""))[0]
	if r := ua.do(agentPort, ua.digestAuth(chal, "demo", "demo", 1)); r.status != 200 {
		t.Fatalf("REGISTER through Kamailio: %d", r.status)
	}
	_ = conn.Close()
	if !c.waitLog("agent registered", 5*time.Second) {
		t.Fatal("cloak logged no registration")
	}

	agentMedia, callerMedia := freePorts(t, 4, false), freePorts(t, 4, false)
	agent := startSipp(t, c, sippArgs{scenario: "proxy-agent.xml", uas: true, localPort: agentPort, mediaPort: agentMedia,
		timeout: 40 * time.Second, keys: map[string]string{"pcap": scenario("pcap/agent-talk.pcap")}})
	time.Sleep(300 * time.Millisecond) // sipp UAS listening
	caller := startSipp(t, c, sippArgs{scenario: "proxy-ivr-hangup.xml", service: "main", mediaPort: callerMedia,
		remote: k.addr, pause: 8 * time.Second, timeout: 40 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-rfc4733.pcap"), "fmts": "0 101"}})
	caller.wait(t)
	agent.wait(t)
	if !c.waitLog("agent answered: bridging", time.Second) {
		t.Fatal("the agent was never bridged")
	}
	inv := agent.messages()
	if i := strings.Index(inv, "INVITE sip:"); i < 0 {
		t.Fatal("the agent's sipp saw no INVITE")
	} else {
		inv = inv[i:]
		if j := strings.Index(inv, "\n\n"); j > 0 {
			inv = inv[:j]
		}
	}
	kport := k.addr[strings.LastIndex(k.addr, ":")+1:]
	if !regexp.MustCompile(`(?m)^Via: SIP/2.0/UDP 127.0.0.1:` + kport + `;`).MatchString(inv) {
		t.Errorf("the agent's INVITE did not come through Kamailio (no Via of port %s):\n%s", kport, inv)
	}
	if !regexp.MustCompile(`(?m)^Record-Route: <sip:127.0.0.1:` + kport + `;`).MatchString(inv) {
		t.Errorf("the agent's INVITE is not record-routed by Kamailio:\n%s", inv)
	}
	if strings.Contains(inv, "Route: <sip:127.0.0.1:"+kport+";lr;received") {
		t.Errorf("Kamailio left its own Route entry in the INVITE:\n%s", inv)
	}
	// cloak's BYE went along the record-route and was answered (sipp's
	// exit 0 says the agent got it; cloak says the BYE got its 200).
	// The line comes when cloak gets the BYE's 200, which may be just
	// after the agent's sipp, having sent it, exits: wait for it.
	c.waitLog("outbound leg hung up by cloak", 5*time.Second)
	hung := findLog(parseLog(t, c.log()), "outbound leg hung up by cloak", "")
	if len(hung) != 1 {
		t.Errorf("%d lines of cloak hanging up the agent leg, want 1", len(hung))
	}
	for _, l := range hung {
		if _, failed := l.raw["bye"]; failed {
			t.Errorf("cloak's BYE to the agent failed: %s", l.text)
		}
	}
	c.stop()
}
