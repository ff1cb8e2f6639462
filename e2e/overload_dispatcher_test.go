package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dispatcherCfg is a Kamailio that spreads new requests over two cloak
// nodes with the dispatcher module, round robin, probing both with
// OPTIONS every second: a node that answers a probe with anything but
// 200 is inactive until it answers 200 again (the module's defaults for
// the reply codes). It writes the destination list into dir.
func dispatcherCfg(t *testing.T, port int, dir string, nodes ...int) string {
	listFile := dispatcherList(t, dir, nodes...)
	modules := fmt.Sprintf(`loadmodule "dispatcher.so"

modparam("dispatcher", "list_file", "%s")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_from", "sip:dispatcher@127.0.0.1")
`, listFile)
	return proxyCfg(port, 2, modules, `	if (!ds_select_dst("1", "4")) {
		sl_send_reply("503", "No node available");
		exit;
	}
`)
}

// dispatcherList writes Kamailio's dispatcher list of the cloak nodes at
// SIP ports nodes (set 1) into dir and returns its path.
func dispatcherList(t *testing.T, dir string, nodes ...int) string {
	t.Helper()
	var list strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:127.0.0.1:%d\n", n)
	}
	listFile := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return listFile
}

// TestOverloadDispatcherMovesTraffic: two cloak nodes behind Kamailio's
// dispatcher. Node A is made overloaded by holding sip.max_calls (2)
// calls on it: it answers the dispatcher's OPTIONS probes 503, the
// dispatcher takes it out, and every call through Kamailio meanwhile is
// answered by node B (none fails on A's 503). Once A's calls end it
// answers probes 200 again and takes its share of new calls.
func TestOverloadDispatcherMovesTraffic(t *testing.T) {
	requireTools(t, "sipp", "kamailio")
	limits := "limits:\n  max_cpu: 0\n  max_system_cpu: 0\n  hold: 1s\n  interval: 100ms\n"
	a := startCloak(t, cloakOpts{admin: true, logLevel: "info", sipExtra: "  max_calls: 2\n", extra: limits})
	b := startCloak(t, cloakOpts{logLevel: "info", extra: limits})
	k := startKamailioWith(t, func(port int, dir string) string { return dispatcherCfg(t, port, dir, a.sipPort, b.sipPort) })
	const answered = "call answered"

	// Hold A full: two calls straight to it, for 8 s.
	tone := map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "fmts": "0"}
	held := startSipp(t, a, sippArgs{scenario: "ivr-hangup.xml", service: "echo", calls: 2, keys: tone, pause: 8 * time.Second})
	if !a.waitLog("overload: refusing new calls", 5*time.Second) {
		t.Fatal("node A not overloaded with sip.max_calls calls up")
	}
	// The dispatcher's next probe gets 503 and takes A out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st map[string]any
		if err := apiGet(t, a, "/api/stats", &st); err != nil {
			t.Fatal(err)
		}
		if n, _ := st["sip_probes_refused"].(float64); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no OPTIONS probe refused by node A within 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	aBefore, bBefore := strings.Count(a.log(), answered), strings.Count(b.log(), answered)
	if aBefore != 2 {
		t.Fatalf("node A answered %d calls, want the 2 held", aBefore)
	}

	// Every call through Kamailio now goes to B, and all succeed.
	const calls = 6
	runSipp(t, a, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: calls, rate: 10,
		remote: k.addr, pause: 100 * time.Millisecond, extra: []string{"-timeout_error"}})
	if !held.running() {
		t.Fatal("the held calls ended before the calls through Kamailio were done: the test proved nothing")
	}
	if n := strings.Count(a.log(), answered) - aBefore; n != 0 {
		t.Errorf("overloaded node A answered %d calls through the dispatcher, want 0", n)
	}
	if n := strings.Count(b.log(), answered) - bBefore; n != calls {
		t.Errorf("node B answered %d calls through the dispatcher, want %d", n, calls)
	}

	// A's calls end; it recovers, the dispatcher's probes get 200 and A
	// takes its share again.
	held.wait(t)
	if !a.waitLog("overload over", 5*time.Second) {
		t.Fatal("node A still overloaded after its calls ended")
	}
	aBefore = strings.Count(a.log(), answered)
	recovered := false
	for try := 0; try < 5 && !recovered; try++ {
		time.Sleep(time.Second) // a probe interval
		runSipp(t, a, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: 4, rate: 10,
			remote: k.addr, pause: 100 * time.Millisecond, extra: []string{"-timeout_error"}})
		recovered = strings.Count(a.log(), answered) > aBefore
	}
	if !recovered {
		t.Error("node A answered no call through the dispatcher within 5 probe intervals of recovering")
	}
	if strings.Contains(k.log(), "ERROR") {
		t.Logf("kamailio logged errors (a probe refused is one):\n%s", tail(k.log(), 2000))
	}
	a.stop()
	b.stop()
}
