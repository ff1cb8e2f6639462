package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kamailio is a Kamailio proxy in front of one cloak, run by a test.
type kamailio struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // host:port it listens on (UDP)
	done chan struct{}

	mu  sync.Mutex
	out bytes.Buffer
}

func (k *kamailio) log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.String()
}

// lockedWriter serialises writes to the buffer k.log reads.
type lockedWriter struct{ k *kamailio }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.k.mu.Lock()
	defer w.k.mu.Unlock()
	return w.k.out.Write(p)
}

// kamailioCfg is a minimal stateful proxy: children UDP workers on
// 127.0.0.1:port, record-routes INVITEs and relays every new request to
// cloak ($du) with tm; in-dialog requests follow their Route headers (or
// the Request-URI, cloak's Contact). Modules come from the default path.
func kamailioCfg(port, children, cloakPort int) string {
	return proxyCfg(port, children, "", fmt.Sprintf(`	$du = "sip:127.0.0.1:%d";
`, cloakPort))
}

// proxyCfg is the proxy both Kamailio tests run: modules beyond the
// stateful core (with their modparams), and how a new request picks its
// destination (selectDst, run before t_relay).
func proxyCfg(port, children int, modules, selectDst string) string {
	return fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
children=%d
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:%d
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "pv.so"
%s
request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (has_totag()) {
		loose_route();
		t_relay();
		exit;
	}
	if (method == "CANCEL") {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	t_check_trans();
	if (method == "INVITE") {
		record_route();
	}
%s	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}
`, children, port, modules, selectDst)
}

// startKamailio runs Kamailio in the foreground (-DD -E) with a generated
// config, its pid file, runtime and working directories under the test's
// temp dir, in a process group of its own; it is stopped (SIGTERM, then
// SIGKILL to the group) when the test ends.
func startKamailio(t *testing.T, cloakPort, children int) *kamailio {
	t.Helper()
	return startKamailioWith(t, func(port int, _ string) string { return kamailioCfg(port, children, cloakPort) })
}

// startKamailioWith is startKamailio with the config cfg returns for the
// port Kamailio listens on and its working directory (for files the
// config names).
func startKamailioWith(t *testing.T, cfg func(port int, dir string) string) *kamailio {
	t.Helper()
	dir := t.TempDir()
	port := freePorts(t, 1, false)
	cfgFile := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg(port, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return launchKamailio(t, dir, port, cfgFile)
}

// launchKamailio runs Kamailio with config file cfgFile (and more command
// line arguments, e.g. -A defines), its runtime files under dir, and waits
// until it listens on port (UDP, 127.0.0.1).
func launchKamailio(t *testing.T, dir string, port int, cfgFile string, args ...string) *kamailio {
	t.Helper()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o750); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(run, "kamailio.pid")
	k := &kamailio{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	k.cmd = exec.Command("kamailio", append([]string{"-DD", "-E", "-f", cfgFile, "-P", pidFile, "-Y", run, "-w", dir}, args...)...)
	k.cmd.Dir = dir
	k.cmd.Stdout = lockedWriter{k}
	k.cmd.Stderr = lockedWriter{k}
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("kamailio: %v", err)
	}
	pgid := k.cmd.Process.Pid
	go func() {
		_ = k.cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(5 * time.Second):
			// Its workers are in its process group: end them all.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-k.done
		}
		if t.Failed() {
			t.Logf("kamailio output (tail):\n%s", tail(k.log(), 4000))
		}
	})
	// Ready once the pid file is written and the port is bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil && !portFree(port, false) {
			break
		}
		select {
		case <-k.done:
			t.Fatalf("kamailio exited at start:\n%s", tail(k.log(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio not listening on %s within 10s:\n%s", k.addr, tail(k.log(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return k
}

// sippStats reads the last row of sipp's -trace_stat file (';'-separated,
// a header row first) into column → value.
func sippStats(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, strings.Split(line, ";"))
		}
	}
	if len(rows) < 2 {
		return nil, errors.New("no statistics row")
	}
	head, last := rows[0], rows[len(rows)-1]
	out := make(map[string]string, len(head))
	for i, h := range head {
		if i < len(last) {
			out[h] = last[i]
		}
	}
	return out, nil
}

// TestKamailioFiveHundredCalls: 500 calls from sipp through a Kamailio
// with four UDP workers to cloak's echo route, which answers at once. Each
// call must complete with no unexpected message: the scenario accepts 100
// then 200 only, so a 180 (before the 200, or delivered after it by
// another worker) fails the call. Before cloak stopped sending 180 ahead
// of an immediate 200, the two went out microseconds apart and a
// multi-worker Kamailio delivered some in the wrong order.
func TestKamailioFiveHundredCalls(t *testing.T) {
	requireTools(t, "sipp", "kamailio")
	const calls = 500
	c := startCloak(t, cloakOpts{rtpPorts: 200, logLevel: "info"})
	k := startKamailio(t, c.sipPort, 4)
	statFile := filepath.Join(t.TempDir(), "stats.csv")
	s := startSipp(t, c, sippArgs{scenario: "proxy-call.xml", service: "echo", calls: calls, rate: 50,
		remote: k.addr, pause: 100 * time.Millisecond, timeout: 90 * time.Second,
		extra: []string{"-timeout_error", "-trace_stat", "-stf", statFile, "-fd", "1"}})
	s.wait(t)

	st, err := sippStats(statFile)
	if err != nil {
		t.Fatalf("sipp statistics %s: %v", statFile, err)
	}
	num := func(col string) int {
		v, ok := st[col]
		if !ok {
			t.Fatalf("sipp statistics have no column %q", col)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("sipp statistics %s = %q", col, v)
		}
		return n
	}
	if ok, failed, unexpected := num("SuccessfulCall(C)"), num("FailedCall(C)"), num("FailedUnexpectedMessage(C)"); ok != calls || failed != 0 || unexpected != 0 {
		t.Errorf("sipp: %d successful, %d failed, %d unexpected messages; want %d, 0, 0", ok, failed, unexpected, calls)
	}
	msgs := s.messages()
	if n := regexp.MustCompile(`SIP/2.0 18[03] `).FindAllStringIndex(msgs, -1); len(n) != 0 {
		t.Errorf("sipp received %d 180/183 responses, want none from a route that answers at once", len(n))
	}
	if n := regexp.MustCompile(`SIP/2.0 200 OK[^\n]*\n(?s:.*?)CSeq: 1 INVITE`).FindAllStringIndex(msgs, -1); len(n) < calls {
		t.Errorf("sipp received %d 200 OKs to INVITEs, want at least %d", len(n), calls)
	}
	if !strings.Contains(msgs, "Record-Route:") {
		t.Error("no Record-Route in sipp's trace: the calls did not go through Kamailio's record_route")
	}
	if strings.Contains(k.log(), "ERROR") {
		t.Errorf("kamailio logged errors:\n%s", tail(k.log(), 3000))
	}
	c.stop()
	if n := strings.Count(c.log(), "call ended"); n != calls {
		t.Errorf("cloak logged %d calls ended, want %d", n, calls)
	}
}
