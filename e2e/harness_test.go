// Package e2e runs the cloak binary against sipp over loopback: calls,
// media, rejections and shutdown, end to end.
//
// TestMain builds ./cmd/cloak once (with -race when the tests run with
// -race). Each test starts its own cloak with a YAML config on free ports,
// runs sipp scenarios from testdata/sipp and, where media matters, captures
// loopback with tshark to see what cloak sent. Tests skip under -short or
// when sipp/tshark are missing, except with CI set, where a missing tool is
// a failure.
//
// Tests that mostly wait and share nothing but the harness (free ports,
// their own temp dirs, their own database) call t.Parallel(), so the
// package's wall time is not the sum of their waits; tests whose
// assertions depend on timing or audio quality run sequentially, alone
// (widenParallel).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
	"gopkg.in/yaml.v3"
)

var (
	// cloakBin is the binary TestMain built.
	cloakBin string
	// root is the module root.
	root string
)

func TestMain(m *testing.M) {
	flag.Parse()
	widenParallel()
	os.Exit(runMain(m))
}

// e2eParallel is how many tests that called t.Parallel run at once here
// when go test is given no -parallel; CLOAK_E2E_PARALLEL overrides it for
// this package alone (go test -parallel applies to every package).
const e2eParallel = 6

// widenParallel raises go test's -parallel to e2eParallel for this
// package unless it was given. go test's default, GOMAXPROCS (2 on CI's
// machine), suits tests that keep a core busy; the parallel tests here
// mostly wait (sipp's pauses, queues, heartbeats, a browser), so more of
// them overlap without starving each other. The heavy kinds are bounded
// on their own (holdSlot: one cluster rig, one browser at a time); a test
// waiting for its slot holds a place of the six, hence six rather than
// four. Tests whose assertions depend on timing (tone levels, jitter,
// latency, loss, admission control, load runs) stay sequential: they run
// first, alone, before any parallel test starts.
func widenParallel() {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		return
	}
	if v := os.Getenv("CLOAK_E2E_PARALLEL"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			_ = flag.Set("test.parallel", strconv.Itoa(n))
			return
		}
		fmt.Fprintf(os.Stderr, "e2e: CLOAK_E2E_PARALLEL=%q is not a positive number: ignored\n", v)
	}
	if runtime.GOMAXPROCS(0) < e2eParallel {
		_ = flag.Set("test.parallel", strconv.Itoa(e2eParallel))
	}
}

func runMain(m *testing.M) int {
	var err error
	if root, err = moduleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "cloak-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cloakBin = filepath.Join(dir, "cloak")
		args := []string{"build", "-o", cloakBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/cloak")...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/cloak: %v\n%s", err, out)
			return 1
		}
	}
	return pgtest.Main(m) // stops the throwaway PostgreSQL the cluster tests start
}

// holdSlot waits for a place in slots, held to the test's end: it bounds
// how many parallel tests of one heavy kind (cluster rigs, browsers) run
// at once. A test holds at most one place of each kind.
func holdSlot(t *testing.T, slots chan struct{}) {
	t.Helper()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// requireTools skips the test under -short or when a tool is missing; with
// CI set a missing tool fails it instead.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (CI is set, so this fails): run scripts/install-test-deps.sh", tool)
			}
			t.Skipf("%s not installed: run scripts/install-test-deps.sh", tool)
		}
	}
	if cloakBin == "" {
		t.Fatal("cloak binary was not built")
	}
}

// scenario returns the path of a sipp scenario or pcap in testdata/sipp.
func scenario(name string) string { return filepath.Join(root, "testdata", "sipp", name) }

// portFree reports whether UDP (and, with tcp, TCP) can bind 127.0.0.1:port.
func portFree(port int, tcp bool) bool {
	u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	defer u.Close()
	if tcp {
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false
		}
		defer l.Close()
	}
	return true
}

var (
	portMu   sync.Mutex
	handedIn = map[int]bool{} // ports already given out in this process
)

// portLo, portHi bound where freePorts looks: outside the kernel's
// ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
// default), which every outbound connection and port-0 socket on the
// machine draws from. A port handed out inside it could be taken by any
// of those between the check and cloak's bind: TestClusterSoak's node
// failed to start on "admin.listen 127.0.0.1:43012 already in use" in
// CI (2026-12-07), beside tests making PostgreSQL and HTTP connections.
var portLo, portHi = portWindow()

// portWindow returns an even first port and a last port outside the
// ephemeral range: 10000 up to it when it starts high enough (Linux's
// default: 10000-32766, more ports than the 40000-59998 this used to
// draw from, since handed-out ports are never reused in a run and a
// cluster soak wants 200 in a row), else above it. Cloak's default
// rtp.ports (20000-29999) falls inside; only TestReadmeSippExamples runs
// a node on the embedded defaults, and it runs alone (not parallel).
func portWindow() (lo, hi int) {
	lo, hi = 10000, 32766
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var elo, ehi int
	if _, err := fmt.Sscan(string(b), &elo, &ehi); err != nil {
		return lo, hi
	}
	switch {
	case elo-1 >= 20000:
		return 10000, elo - 1
	case ehi+1 <= 60000:
		return (ehi + 2) &^ 1, 65534
	}
	return lo, hi
}

// freePorts returns the first of n consecutive ports, starting even, that
// bind on UDP (and TCP with tcp) and were not given out before, between
// portLo and portHi.
func freePorts(t *testing.T, n int, tcp bool) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		base := portLo + 2*rand.IntN(max(1, (portHi-portLo-n)/2)) // even
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = !handedIn[p] && portFree(p, tcp)
		}
		if ok {
			for p := base; p < base+n; p++ {
				handedIn[p] = true
			}
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports", n)
	return 0
}

// cloakOpts configures one cloak process.
type cloakOpts struct {
	inactivity time.Duration // rtp.inactivity_timeout; 0 leaves it off
	t1         time.Duration // sip.t1; 0 leaves the default (500 ms)
	grace      time.Duration // shutdown.grace; default 2s
	// routes are added to the default ones (echo, tone, ring).
	routes map[string]string
	// admin starts the HTTP API on a free loopback port (cloak.adminURL).
	admin bool
	// json logs one JSON object a line instead of the console format.
	json bool
	// logLevel is log.level; "" leaves debug.
	logLevel string
	// extra is YAML appended to the config (top-level sections other than
	// sip, rtp, data, log, shutdown, routes and admin).
	extra string
	// sipExtra is YAML appended inside the sip section, indented by two
	// spaces (for example "  auth:\n    lock_for: 3s\n").
	sipExtra string
	// dataDir is data.dir; empty: a fresh one under the test's temp dir
	// (set it to restart on the data of an earlier process).
	dataDir string
	// rtpSource is rtp.source; "" leaves the default (strict).
	rtpSource string
	// rtpExtra is YAML appended inside the rtp section, indented by two
	// spaces (for example "  rtcp:\n    interval: 1s\n").
	rtpExtra string
	// sipHost is sip.listen's address; "" is 127.0.0.1.
	sipHost string
	// netns, when set, runs cloak inside that network namespace (ip netns
	// exec), for tests that must listen beyond loopback.
	netns string
	// rtpPorts is the size of rtp.ports (even ports only carry calls);
	// 0 leaves 20.
	rtpPorts int
	// transports is sip.transports as YAML; "" is [udp, tcp].
	transports string
	// env are VAR=value entries added to cloak's environment.
	env []string
}

// cloak is a running cloak process.
type cloak struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string // data.dir
	// logFile is a copy of cloak's stderr (its whole log), written as it
	// comes, under dataDir.
	logFile  string
	adminURL string // http://127.0.0.1:PORT with opts.admin
	// token is an admin API token the harness made with `cloak tokens
	// create` once cloak was ready (opts.admin); apiGet and apiPost send
	// it. Tests of roles make their own.
	token string
	// cfgPath is the config file cloak runs with (for the CLI beside it).
	cfgPath string
	sipPort int
	rtpLo   int
	rtpHi   int
	done    chan struct{} // closed when the process exited
	exitErr error

	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan struct{} // signalled on every stderr line
}

// startCloak writes a config, starts cloak and waits for "cloak is ready".
func startCloak(t *testing.T, o cloakOpts) *cloak {
	t.Helper()
	requireTools(t) // skips under -short, where no binary was built
	if o.grace == 0 {
		o.grace = 2 * time.Second
	}
	dir := t.TempDir()
	c := &cloak{t: t, done: make(chan struct{}), lines: make(chan struct{}, 1)}
	c.sipPort = freePorts(t, 1, true)
	nports := 20
	if o.rtpPorts > 0 {
		nports = o.rtpPorts
	}
	c.rtpLo = freePorts(t, nports, false)
	c.rtpHi = c.rtpLo + nports - 1
	c.dataDir = filepath.Join(dir, "data")
	if o.dataDir != "" {
		c.dataDir = o.dataDir
	}
	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	c.logFile = filepath.Join(c.dataDir, "cloak.log")
	logf, err := os.Create(c.logFile)
	if err != nil {
		t.Fatal(err)
	}
	level := "debug"
	if o.logLevel != "" {
		level = o.logLevel
	}
	format := "console"
	if o.json {
		format = "json"
	}
	admin := `""`
	if o.admin {
		p := freePorts(t, 1, true)
		admin = fmt.Sprintf("127.0.0.1:%d", p)
		c.adminURL = "http://" + admin
	}
	routes := map[string]string{"echo": "echo", "tone": "tone", "ring": "ring"}
	for k, v := range o.routes {
		routes[k] = v
	}
	var rt strings.Builder
	for k, v := range routes {
		fmt.Fprintf(&rt, "  %s: %q\n", k, v)
	}
	t1 := "" // the config's default
	if o.t1 != 0 {
		t1 = fmt.Sprintf("  t1: %s\n", o.t1)
	}
	sipHost := "127.0.0.1"
	if o.sipHost != "" {
		sipHost = o.sipHost
	}
	source := ""
	if o.rtpSource != "" {
		source = "  source: " + o.rtpSource + "\n"
	}
	source += o.rtpExtra
	transports := "[udp, tcp]"
	if o.transports != "" {
		transports = o.transports
	}
	extra := withoutLoadLimits(t, o.extra)
	cfg := fmt.Sprintf(`sip:
  listen: %s:%d
  transports: %s
%srtp:
%s  ports: %d-%d
  inactivity_timeout: %s
data:
  dir: %s
log:
  level: %s
  format: %s
shutdown:
  grace: %s
  mode: drain
routes:
%sadmin:
  listen: %s
%s`, sipHost, c.sipPort, transports, t1+o.sipExtra, source, c.rtpLo, c.rtpHi, o.inactivity, c.dataDir, level, format, o.grace, rt.String(), admin, extra)
	cfgPath := filepath.Join(dir, "cloak.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(cloakBin, "serve", "-config", cfgPath)
	if o.netns != "" {
		c.cmd = exec.Command("ip", "netns", "exec", o.netns, cloakBin, "serve", "-config", cfgPath)
	}
	c.cmd.Dir = dir
	c.cfgPath = cfgPath
	c.cmd.Env = append(os.Environ(), o.env...)
	if os.Getenv("GOMAXPROCS") == "" {
		// One P a core, as before serve doubled them for the relay
		// (overload.Procs): the tests run race-instrumented nodes beside
		// a PostgreSQL on the same cores, and in the first CI run with the
		// doubled Ps the cluster tests' nodes timed out connecting to it
		// (2026-12-07). A node sharing its cores with its database is
		// told to do the same (docs/SCALE.md).
		c.cmd.Env = append(c.cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", runtime.NumCPU()))
	}
	c.run(t, logf)
	if o.admin {
		tok, errs, err := c.cli("", "tokens", "create", "-name", "e2e-harness", "-role", "admin")
		if err != nil {
			t.Fatalf("cloak tokens create: %v\n%s", err, errs)
		}
		c.token = strings.TrimSpace(tok)
	}
	return c
}

// cli runs the cloak binary's command args beside the running node (with
// its -config), stdin fed from stdin, and returns stdout and stderr.
func (c *cloak) cli(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cloakBin, append(args, "-config", c.cfgPath)...)
	cmd.Env = c.cmd.Env // the node's environment (password_env and the like); nil: ours
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// run starts c.cmd, collects its stderr (and copies it to logf when not
// nil), kills it at the test's end and waits for "cloak is ready".
func (c *cloak) run(t *testing.T, logf io.WriteCloser) {
	t.Helper()
	pipe, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.Write(sc.Bytes())
			c.stderr.WriteByte('\n')
			if logf != nil {
				_, _ = logf.Write(sc.Bytes())
				_, _ = logf.Write([]byte{'\n'})
			}
			c.mu.Unlock()
			select {
			case c.lines <- struct{}{}:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		if logf != nil {
			_ = logf.Close()
		}
		c.exitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("cloak stderr:\n%s", c.log())
		}
	})
	if !c.waitLog("cloak is ready", 15*time.Second) {
		t.Fatalf("cloak did not get ready within 15s")
	}
}

// log returns cloak's stderr so far.
func (c *cloak) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// waitLog waits until stderr contains s, the process exits, or timeout.
func (c *cloak) waitLog(s string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if strings.Contains(c.log(), s) {
			return true
		}
		select {
		case <-c.lines:
		case <-c.done:
			return strings.Contains(c.log(), s)
		case <-deadline.C:
			return strings.Contains(c.log(), s)
		}
	}
}

// signal sends SIGTERM.
func (c *cloak) terminate() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM: %v", err)
	}
}

// wait waits for the process to exit and checks it exited 0 without a
// panic or a data race on stderr.
func (c *cloak) wait(timeout time.Duration) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("cloak did not exit within %v of SIGTERM", timeout)
	}
	if c.exitErr != nil {
		c.t.Errorf("cloak exited with %v, want exit status 0", c.exitErr)
	}
	c.checkLog()
}

// checkLog fails the test on a panic or data race in stderr.
func (c *cloak) checkLog() {
	c.t.Helper()
	log := c.log()
	for _, bad := range []string{"panic", "WARNING: DATA RACE", "fatal error:"} {
		if strings.Contains(log, bad) {
			c.t.Errorf("cloak stderr contains %q", bad)
		}
	}
}

// stop sends SIGTERM and checks a clean exit.
func (c *cloak) stop() {
	c.t.Helper()
	c.terminate()
	c.wait(15 * time.Second)
}

// sipp is one sipp run.
type sipp struct {
	cmd      *exec.Cmd
	dir      string
	out      bytes.Buffer
	done     chan struct{}
	code     int
	err      error
	started  time.Time
	duration time.Duration
	cancel   context.CancelFunc
}

// sippArgs are what a sipp run needs beyond the scenario.
type sippArgs struct {
	scenario  string            // file in testdata/sipp
	service   string            // -s
	keys      map[string]string // -key
	mediaPort int               // -mp; 0 picks one
	calls     int               // -m; default 1
	// localPort is -p; 0 picks one.
	localPort int
	// pause is -d: the length of <pause/> without milliseconds.
	pause time.Duration
	// timeout is sipp's -timeout (default 30s); the process is killed 15s
	// after it.
	timeout time.Duration
	// uas runs a server scenario: no remote address, sipp waits on
	// localPort for cloak's INVITE.
	uas bool
	// remote is the host:port sipp sends to instead of cloak (a proxy in
	// front of it).
	remote string
	// rate is -r, new calls a second; 0 leaves sipp's default (10).
	rate int
	// extra are more sipp arguments, added as they are.
	extra []string
}

// startSipp runs sipp as a UAC against c in the background.
func startSipp(t *testing.T, c *cloak, a sippArgs) *sipp {
	t.Helper()
	if a.calls == 0 {
		a.calls = 1
	}
	if a.mediaPort == 0 {
		a.mediaPort = freePorts(t, 4, false)
	}
	if a.timeout == 0 {
		a.timeout = 30 * time.Second
	}
	s := &sipp{dir: t.TempDir(), done: make(chan struct{})}
	localPort := a.localPort
	if localPort == 0 {
		localPort = freePorts(t, 1, true)
	}
	args := []string{
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(a.timeout.Seconds())), "-m", strconv.Itoa(a.calls),
		"-sf", scenario(a.scenario),
		"-i", "127.0.0.1", "-p", strconv.Itoa(localPort),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(a.mediaPort),
		"-trace_err", "-error_file", filepath.Join(s.dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(s.dir, "messages.log"),
	}
	if a.service != "" {
		args = append(args, "-s", a.service)
	}
	for k, v := range a.keys {
		args = append(args, "-key", k, v)
	}
	if a.pause > 0 {
		args = append(args, "-d", strconv.Itoa(int(a.pause.Milliseconds())))
	}
	if a.rate > 0 {
		args = append(args, "-r", strconv.Itoa(a.rate))
	}
	args = append(args, a.extra...)
	if !a.uas {
		remote := fmt.Sprintf("127.0.0.1:%d", c.sipPort)
		if a.remote != "" {
			remote = a.remote
		}
		args = append(args, remote)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout+15*time.Second)
	s.cancel = cancel
	s.cmd = exec.CommandContext(ctx, "sipp", args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		s.duration = time.Since(s.started)
		s.code = s.cmd.ProcessState.ExitCode()
		cancel()
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// wait waits for sipp and fails the test unless it exited 0 (every call
// successful).
func (s *sipp) wait(t *testing.T) {
	t.Helper()
	<-s.done
	if s.code != 0 {
		t.Fatalf("sipp exited %d (%v), want 0 (all calls successful)\nerrors:\n%s\nmessages (tail):\n%s",
			s.code, s.err, tail(s.file("errors.log"), 3000), tail(s.file("messages.log"), 3000))
	}
}

// running reports whether sipp is still running.
func (s *sipp) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// file reads one of sipp's trace files.
func (s *sipp) file(name string) string {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

// messages returns the SIP messages sipp sent and received (-trace_msg).
func (s *sipp) messages() string { return s.file("messages.log") }

// runSipp runs sipp to the end and requires exit 0.
func runSipp(t *testing.T, c *cloak, a sippArgs) *sipp {
	t.Helper()
	s := startSipp(t, c, a)
	s.wait(t)
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// loadLimitsOff are admission control's signals that read the load
// (docs/PERFORMANCE.md, "Admission control"), each with its "off" value.
var loadLimitsOff = map[string]any{"max_system_cpu": 0, "max_cpu": 0, "max_lag": "0s", "max_recorder_backlog": "0s"}

// withoutLoadLimits returns extra (YAML sections of cloak's config) with
// every limit of loadLimitsOff turned off unless extra sets it itself.
// Under go test -race, with e2e tests running in parallel beside the
// other packages, the machine's CPU share, the race-instrumented
// process's own share and its read lag are the test run's load, not what
// the test is about: admission control refused the tests' calls with 503
// (max_cpu at 0.96 a second after start, max_lag at 57 ms; 2026-12-07).
// Tests of admission itself, and those that want a signal on, set it.
func withoutLoadLimits(t *testing.T, extra string) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(extra), &doc); err != nil {
		t.Fatalf("cloakOpts.extra is not YAML: %v\n%s", err, extra)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	limits, _ := doc["limits"].(map[string]any)
	if limits == nil {
		limits = map[string]any{}
	}
	for k, off := range loadLimitsOff {
		if _, set := limits[k]; !set {
			limits[k] = off
		}
	}
	doc["limits"] = limits
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("cloakOpts.extra: %v", err)
	}
	return string(b)
}
