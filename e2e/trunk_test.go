package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// trunkStatus is GET /api/trunks' row (trunk.Status).
type trunkStatus struct {
	Name         string `json:"name"`
	Up           bool   `json:"up"`
	Calls        int64  `json:"outbound_calls"`
	Registration struct {
		State     string    `json:"state"`
		LastError string    `json:"last_error"`
		Expires   time.Time `json:"expires"`
		Refreshes int       `json:"refreshes"`
	} `json:"registration"`
	Options struct {
		State     string `json:"state"`
		LastError string `json:"last_error"`
	} `json:"options"`
}

func trunksAPI(t *testing.T, c *cloak) map[string]trunkStatus {
	t.Helper()
	var rows []trunkStatus
	if err := apiGet(t, c, "/api/trunks", &rows); err != nil {
		t.Fatal(err)
	}
	out := map[string]trunkStatus{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

// kamailioRegistrarCfg is a registrar-carrier: REGISTER must pass digest
// (auth module, pv_www_authenticate against one fixed password, no
// database), bindings are kept in memory for at most 3 s so that cloak
// refreshes often, each accepted REGISTER is logged as "TRUNKTEST
// registered", OPTIONS get 200; an INVITE for a registered AOR is relayed
// to its binding (the carrier delivering a call to cloak).
func kamailioRegistrarCfg(port int, password string) string {
	return fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:%d
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "rr.so"
loadmodule "siputils.so"
modparam("registrar", "min_expires", 1)
modparam("registrar", "max_expires", 3)
modparam("registrar", "default_expires", 3)
request_route {
	if (has_totag()) {
		loose_route();
		t_relay();
		exit;
	}
	if (method == "CANCEL" || method == "ACK") {
		t_relay();
		exit;
	}
	if (method == "INVITE") {
		# A call for a registered AOR goes to its binding: cloak's Contact.
		record_route();
		if (!lookup("location")) {
			sl_send_reply("404", "Not Registered");
			exit;
		}
		t_relay();
		exit;
	}
	if (method == "REGISTER") {
		if (!pv_www_authenticate("$td", "%s", "0")) {
			xlog("L_INFO", "TRUNKTEST challenged user=$fU\n");
			www_challenge("$td", "0");
			exit;
		}
		if (!save("location")) {
			sl_reply_error();
			exit;
		}
		xlog("L_INFO", "TRUNKTEST registered user=$fU expires=$hdr(Expires)\n");
		exit;
	}
	if (method == "OPTIONS") {
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("404", "Not Here");
	exit;
}
`, port, password)
}

// TestTrunkRegisterKamailio: cloak registers to Kamailio with digest,
// refreshes before the 3 s the registrar grants run out, shows the state
// at GET /api/trunks and as cloak_trunk_registered; a trunk with a wrong
// password is failed with the 401 named; at shutdown cloak unregisters.
func TestTrunkRegisterKamailio(t *testing.T) {
	requireTools(t, "kamailio")
	k := startKamailioWith(t, func(port int, _ string) string { return kamailioRegistrarCfg(port, "kam-trunk-pw") })
	c := startCloak(t, cloakOpts{admin: true, json: true, routes: map[string]string{"cloaktrunk": "echo"}, extra: fmt.Sprintf(`trunks:
- name: kam
  host: %s
  transport: udp
  auth: {user: cloaktrunk, password_env: CLOAK_E2E_TRUNK_PW}
  register: {enabled: true, expires: 10s}
  numbers: {country: GB}
- name: wrongpw
  host: %s
  transport: udp
  auth: {user: intruder, password: not-the-password}
  register: {enabled: true, expires: 10s}
  numbers: {country: GB}
`, k.addr, k.addr), env: []string{"CLOAK_E2E_TRUNK_PW=kam-trunk-pw"}})

	// Granted 3 s, refreshed at 85 %: three registrations within ~8 s.
	deadline := time.Now().Add(12 * time.Second)
	re := regexp.MustCompile(`TRUNKTEST registered user=cloaktrunk expires=[1-9]`)
	for len(re.FindAllString(k.log(), -1)) < 3 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(re.FindAllString(k.log(), -1)); n < 3 {
		t.Fatalf("Kamailio saw %d registrations from cloak, want 3 or more (refreshes)\n%s", n, tail(k.log(), 3000))
	}
	if !strings.Contains(k.log(), "TRUNKTEST challenged user=cloaktrunk") {
		t.Fatal("cloak's first REGISTER was not challenged: digest not exercised")
	}
	st := trunksAPI(t, c)
	kam := st["kam"]
	if kam.Registration.State != "registered" || kam.Registration.Refreshes < 3 || time.Until(kam.Registration.Expires) > 4*time.Second {
		t.Fatalf("kam: %+v", kam)
	}
	bad := st["wrongpw"]
	if bad.Registration.State != "failed" || !strings.HasPrefix(bad.Registration.LastError, "401") {
		t.Fatalf("wrongpw: %+v", bad)
	}
	// The carrier delivers a call to the registered AOR: Kamailio relays it
	// to cloak's Contact (sip:cloaktrunk@...), the dialled number in To.
	// cloak knows the trunk by Kamailio's address (host) and reads the
	// called number from To.
	s := startSipp(t, c, sippArgs{scenario: "trunk-call.xml", service: "cloaktrunk", remote: k.addr, pause: 2 * time.Second,
		keys: map[string]string{"caller": "01632960001", "pai": "+441632960001", "to": "02079460000"}})
	var seen bool
	for deadline := time.Now().Add(5 * time.Second); !seen && time.Now().Before(deadline); {
		var calls []struct {
			Caller string            `json:"caller"`
			Trunk  string            `json:"trunk"`
			Data   map[string]string `json:"data"`
		}
		if err := apiGet(t, c, "/api/calls", &calls); err == nil {
			for _, cl := range calls {
				if cl.Trunk == "kam" && cl.Caller == "+441632960001" && cl.Data["called_number"] == "+442079460000" {
					seen = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.wait(t)
	if !seen {
		t.Fatalf("the registration trunk's call was not seen with trunk kam, caller +441632960001, called +442079460000\n%s", tail(c.log(), 3000))
	}
	m := scrapeMetrics(t, c)
	if !strings.Contains(m, `cloak_trunk_registered{trunk="kam"} 1`) || !strings.Contains(m, `cloak_trunk_registered{trunk="wrongpw"} 0`) {
		t.Fatalf("metrics lack the registration gauges:\n%s", grepLines(m, "cloak_trunk"))
	}
	// Back-off: the failing trunk is retried, but not in a tight loop
	// (1 s, 2 s, 4 s...: at most a handful of tries in this test).
	if n := strings.Count(k.log(), "TRUNKTEST challenged user=intruder"); n < 2 || n > 12 {
		t.Fatalf("wrong-password trunk tried %d times", n)
	}
	c.stop()
	if !strings.Contains(k.log(), "TRUNKTEST registered user=cloaktrunk expires=0") {
		t.Fatalf("cloak did not unregister at shutdown\n%s", tail(k.log(), 2000))
	}
	for _, secret := range []string{"kam-trunk-pw", "not-the-password"} {
		if strings.Contains(c.log(), secret) {
			t.Fatal("a trunk password reached cloak's log")
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTrunkInboundIdentification: with sip.unknown_loopback: reject, an
// INVITE from 127.0.0.1 (no trunk's) gets 403 "Unknown Source"; one from
// the IP trunk's 127.0.0.2 is answered, its caller read from the trusted
// P-Asserted-Identity as E.164 and shown with its trunk in the API; a
// trunk with inbound_auth on 127.0.0.3 is challenged and accepted with its
// credentials (sipp's digest), its caller normalised from From.
func TestTrunkInboundIdentification(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{admin: true, json: true,
		sipExtra: "  unknown_loopback: reject\n  auth:\n    algorithms: [MD5, SHA-256]\n",
		extra: `trunks:
- name: ipcarrier
  match: [127.0.0.2/32]
  transport: udp
  trusted: true
  numbers: {country: GB}
- name: digestcarrier
  match: [127.0.0.3/32]
  transport: udp
  inbound_auth: true
  auth: {user: carrier, password: carrier-in-pw}
  numbers: {country: GB, international_prefix: "00"}
`})
	// Unknown source.
	runSipp(t, c, sippArgs{scenario: "trunk-refused.xml", service: "echo"})
	if strings.Contains(c.log(), `"message":"call offered"`) {
		t.Fatal("a call from an unknown source was offered to the call layer")
	}
	// The IP trunk, with a national From and a trusted PAI.
	s := startSipp(t, c, sippArgs{scenario: "trunk-call.xml", service: "echo",
		keys:  map[string]string{"caller": "07700900123", "pai": "+44-7700-900999", "to": "echo"},
		pause: 2 * time.Second, extra: []string{"-i", "127.0.0.2", "-mi", "127.0.0.2"}})
	var seen bool
	for deadline := time.Now().Add(5 * time.Second); !seen && time.Now().Before(deadline); {
		var calls []struct {
			Caller string `json:"caller"`
			Trunk  string `json:"trunk"`
			Data   map[string]string
		}
		if err := apiGet(t, c, "/api/calls", &calls); err == nil {
			for _, cl := range calls {
				if cl.Trunk == "ipcarrier" && cl.Caller == "+447700900999" && cl.Data["trunk"] == "ipcarrier" {
					seen = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.wait(t)
	if !seen {
		t.Fatalf("the API never showed the trunk call with trunk ipcarrier and caller +447700900999\n%s", tail(c.log(), 3000))
	}
	if !strings.Contains(c.log(), `"trunk":"ipcarrier"`) || !strings.Contains(c.log(), `"from":"+447700900999"`) {
		t.Fatalf("the call's log lines lack its trunk or normalised caller\n%s", tail(c.log(), 3000))
	}
	// The digest trunk: 401, then accepted with the right credentials.
	s = runSipp(t, c, sippArgs{scenario: "trunk-call-auth.xml", service: "echo",
		keys:  map[string]string{"caller": "00441632960001", "pai": "+447700900999", "to": "echo"},
		pause: time.Second, extra: []string{"-i", "127.0.0.3", "-mi", "127.0.0.3", "-au", "carrier", "-ap", "carrier-in-pw"}})
	if !strings.Contains(s.messages(), "SIP/2.0 401 Unauthorized") {
		t.Fatal("the digest trunk's INVITE was not challenged")
	}
	if !strings.Contains(c.log(), `"trunk":"digestcarrier"`) || !strings.Contains(c.log(), `"from":"+441632960001"`) {
		t.Fatalf("digest trunk call not identified or its caller not normalised (untrusted: From, not PAI)\n%s", tail(c.log(), 3000))
	}
	if strings.Contains(c.log(), "carrier-in-pw") {
		t.Fatal("the trunk password reached the log")
	}
}

// TestTrunkOutboundTransfer: a flow's transfer to tel:+442079460000 goes
// first to the trunk with the longest prefix, which fails it with 503, then
// to the next, skipping a trunk OPTIONS marked down; the carrier (sipp
// UAS) challenges with
// 407, checks cloak's Proxy-Authorization, sends 183 with SDP and early
// media, then 200; cloak bridges the caller to it and stays in the path.
func TestTrunkOutboundTransfer(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	carrierPort := freePorts(t, 1, false)
	deadPort := freePorts(t, 1, false) // nothing listens: OPTIONS time out
	failPort := freePorts(t, 1, false) // a carrier answering 503
	flows := t.TempDir()
	for _, f := range []string{"main.yaml", "pay.yaml", "secure-pay.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "testdata", "flows", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(flows, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flow := `name: totrunk
kind: normal
description: Sends the caller to a number through a trunk.
steps:
  - name: answer
    answer: {}
    next: out
  - name: out
    transfer:
      target: "tel:+442079460000"
      on_failure: bye
  - name: bye
    disconnect:
      reason: transfer failed
`
	if err := os.WriteFile(filepath.Join(flows, "totrunk.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCloak(t, cloakOpts{admin: true, json: true, routes: map[string]string{"out": "flow:totrunk"},
		extra: fmt.Sprintf(`flows:
  dir: %s
trunks:
- name: failing
  host: 127.0.0.1:%d
  match: [127.0.0.7/32]
  transport: udp
  numbers: {country: GB}
  prefixes: ["+44207"]
- name: dead
  host: 127.0.0.1:%d
  match: [127.0.0.9/32]
  transport: udp
  options_interval: 1s
  numbers: {country: GB}
  prefixes: ["+4420"]
- name: carrier
  host: 127.0.0.1:%d
  match: [127.0.0.8/32]
  transport: udp
  auth: {user: cloak-out, password: carrier-out-pw}
  codecs: [PCMU]
  max_calls: 2
  numbers: {country: GB}
  prefixes: ["+44"]
`, flows, failPort, deadPort, carrierPort)})
	// Wait for OPTIONS to mark the dead trunk down.
	deadline := time.Now().Add(8 * time.Second)
	for trunksAPI(t, c)["dead"].Up && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if st := trunksAPI(t, c)["dead"]; st.Up || st.Options.State != "down" {
		t.Fatalf("dead trunk not marked down: %+v", st)
	}
	failing := startSipp(t, c, sippArgs{scenario: "carrier-503.xml", uas: true, localPort: failPort})
	carrier := startSipp(t, c, sippArgs{scenario: "carrier-uas.xml", uas: true, localPort: carrierPort,
		keys: map[string]string{"pcap": filepath.Join(root, "testdata", "sipp", "pcap", "pcmu-tone-3s.pcap")}})
	time.Sleep(300 * time.Millisecond) // sipp binds its port
	callerMedia := freePorts(t, 4, false)
	wire := startWireCapture(t, callerMedia)
	caller := startSipp(t, c, sippArgs{scenario: "trunk-call.xml", service: "out", pause: 5 * time.Second, mediaPort: callerMedia,
		keys: map[string]string{"caller": "02079460123", "pai": "+442079460123", "to": "out"}})
	if !c.waitLog("early media from the far end: relayed to the caller", 10*time.Second) {
		t.Fatalf("no early media relayed\ncloak:\n%s\ncarrier:\n%s\n%s", tail(c.log(), 3000), tail(carrier.messages(), 3000), carrier.file("errors.log"))
	}
	if !c.waitLog(`"trunk":"carrier"`, 5*time.Second) || !c.waitLog("outbound leg answered", 5*time.Second) {
		t.Fatalf("the outbound leg did not leave by the carrier trunk\n%s", tail(c.log(), 3000))
	}
	if st := trunksAPI(t, c)["carrier"]; st.Calls != 1 {
		t.Fatalf("carrier trunk outbound calls = %d during the call, want 1", st.Calls)
	}
	caller.wait(t)
	carrier.wait(t)
	failing.wait(t) // it got the INVITE first (longest prefix) and failed it
	if !strings.Contains(c.log(), "trunk failed the call: trying the next one") {
		t.Fatal("no failover logged after the failing trunk's 503")
	}
	// Early media on the wire: between the 183 (relay started) and the
	// 200 (leg answered) the caller receives the carrier's 1004 Hz tone.
	lines := parseLog(t, c.log())
	em, ans := findLog(lines, "early media from the far end: relayed to the caller", ""), findLog(lines, "outbound leg answered", "")
	if len(em) != 1 || len(ans) != 1 {
		t.Fatalf("early media %d, answered %d log lines", len(em), len(ans))
	}
	st := rtpBetween(wire.records(t), callerMedia, em[0].Time.Add(200*time.Millisecond), ans[0].Time)
	if st.packets < 20 || toneShare(st.pcm, 1004) < 0.5 {
		t.Fatalf("during early media the caller got %d packets, 1004 Hz share %.2f: the carrier's early media did not reach the caller",
			st.packets, toneShare(st.pcm, 1004))
	}
	t.Logf("early media: %d packets to the caller, 1004 Hz share %.2f", st.packets, toneShare(st.pcm, 1004))
	msgs := carrier.messages()
	ruri := fmt.Sprintf("sip:+442079460000@127.0.0.1:%d", carrierPort)
	if !strings.Contains(msgs, "INVITE "+ruri+" SIP/2.0") {
		t.Fatalf("carrier did not see an INVITE to the E.164 number\n%s", tail(msgs, 3000))
	}
	checkProxyAuth(t, msgs, ruri, "cloak-out", "carrier-out-pw")
	deadline = time.Now().Add(5 * time.Second)
	for trunksAPI(t, c)["carrier"].Calls != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := trunksAPI(t, c)["carrier"].Calls; n != 0 {
		t.Fatalf("carrier trunk still counts %d calls after hang-up", n)
	}
	if n := trunksAPI(t, c)["failing"].Calls; n != 0 {
		t.Fatalf("the failing trunk kept %d call slots after its 503", n)
	}
	if strings.Contains(c.log(), "carrier-out-pw") {
		t.Fatal("the trunk password reached the log")
	}
}

// checkProxyAuth finds the Proxy-Authorization cloak sent and checks its
// digest response against the password (RFC 2617 §3.2.2), and that its
// uri is the Request-URI (§3.2.2.5).
func checkProxyAuth(t *testing.T, msgs, ruri, user, password string) {
	t.Helper()
	m := regexp.MustCompile(`Proxy-Authorization: (Digest [^\r\n]+)`).FindStringSubmatch(msgs)
	if m == nil {
		t.Fatalf("no Proxy-Authorization in the carrier's messages\n%s", tail(msgs, 3000))
	}
	cr, err := digest.ParseCredentials(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if cr.Username != user || cr.URI != ruri || cr.Realm != "carrier.example" {
		t.Fatalf("credentials %+v: want user %s, uri %s", cr, user, ruri)
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cr.Realm, Nonce: cr.Nonce, Algorithm: cr.Algorithm, QOP: []string{cr.QOP}},
		digest.Options{Method: "INVITE", URI: cr.URI, Username: user, Password: password, Cnonce: cr.Cnonce, Count: cr.Nc})
	if err != nil {
		t.Fatal(err)
	}
	if want.Response != cr.Response {
		t.Fatal("the Proxy-Authorization's digest does not match the trunk's password")
	}
}
