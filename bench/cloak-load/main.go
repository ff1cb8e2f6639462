package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/sdes"
)

type options struct {
	mode      string
	label     string
	target    string
	user      string
	sipLocal  string
	agent     string
	ng        string
	security  string
	ngFlags   string
	floor     string
	pairs     int
	calls     int
	rate      float64
	hold      time.Duration
	warmup    time.Duration
	window    time.Duration
	duration  time.Duration
	digits    string
	digitsAt  time.Duration
	groups    int
	senders   int
	slots     int
	pid       int
	jsonOut   string
	late      string        // -late: log of late packets
	lateOver  time.Duration // -late-over
	lateDir   string        // -late-dir
	delayLine time.Duration // -delay-line
	progress  time.Duration
	setupWait time.Duration
	settle    time.Duration
	// -monitors: monitor legs through cloak's API (monitors.go).
	monitors   int
	api        string
	monitorSIP string
	supervisor string
	srtp       bool       // -srtp: both legs SRTP with SDES keys
	srtpSuite  sdes.Suite // -srtp-suite: the one suite offered
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cloak-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "sip", "`sip` (calls into cloak), ng (rtpengine) or floor (bench/floor)")
	fs.StringVar(&o.label, "label", "", "name of this run in the summary and JSON")
	fs.StringVar(&o.target, "target", "127.0.0.1:5060", "SIP target `ADDR:PORT` (mode sip)")
	fs.StringVar(&o.user, "user", "relay", "Request-URI user: the cloak route to call (mode sip)")
	fs.StringVar(&o.sipLocal, "sip-local", "127.0.0.1:5070", "our caller UA's SIP `ADDR:PORT` (mode sip)")
	fs.StringVar(&o.agent, "agent", "", "answer cloak's calls to agents on `ADDR:PORT` (mode sip; empty: no agent side)")
	fs.StringVar(&o.ng, "ng", "127.0.0.1:2223", "rtpengine ng control `ADDR:PORT` (mode ng)")
	fs.StringVar(&o.security, "dtmf-security", "", "mode ng: send 'block DTMF' with this DTMF-security `mode` (silence, drop, ...); empty = plain relay")
	fs.StringVar(&o.ngFlags, "ng-flags", "", "mode ng: comma-separated offer flags")
	fs.StringVar(&o.floor, "floor", "127.0.0.1:10000", "bench/floor's base `ADDR:PORT` (mode floor)")
	fs.IntVar(&o.pairs, "floor-pairs", 2000, "pairs bench/floor listens on (mode floor)")
	fs.IntVar(&o.calls, "calls", 10, "concurrent calls")
	fs.Float64Var(&o.rate, "rate", 50, "call attempts per second, at most")
	fs.DurationVar(&o.hold, "hold", 0, "each call's length; new calls replace ended ones until -duration (0: calls last to the end)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "wait after the calls are up before the measured window")
	fs.DurationVar(&o.window, "window", 20*time.Second, "measured steady window (ignored with -hold: the window is the whole run)")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "hard limit on the run; with -hold, the run's length")
	fs.StringVar(&o.digits, "digits", "", "RFC 4733 digits each caller keys (e.g. 1234#)")
	fs.DurationVar(&o.digitsAt, "digits-at", 3*time.Second, "when, into each call, the caller keys -digits")
	fs.IntVar(&o.groups, "sockets", 4, "media sockets per side (streams share them)")
	fs.IntVar(&o.senders, "senders", 2, "pacer goroutines")
	fs.IntVar(&o.slots, "slots", 10, "send slots per 20 ms frame (spreads the streams' packets)")
	fs.IntVar(&o.pid, "pid", 0, "`PID` of the relay to measure (CPU, RSS, threads from /proc)")
	fs.StringVar(&o.jsonOut, "json", "", "write the summary as JSON to `FILE`")
	fs.DurationVar(&o.delayLine, "delay-line", 0, "the relay holds caller->agent audio back by this fixed delay line (cloak's DTMF masker: 40ms), releasing a frame when the frame that much later arrives; the caller->agent latency is then also measured from that later frame's send, which leaves out the sender's own pacing jitter (a multiple of 20ms, at most 140ms)")
	fs.StringVar(&o.late, "late", "", "write every audio packet of the window later than -late-over to `FILE` (TSV), to line up with a runtime trace")
	fs.DurationVar(&o.lateOver, "late-over", 4*time.Millisecond, "with -late: the one-way latency above which a packet is logged")
	fs.StringVar(&o.lateDir, "late-dir", "agent->caller", "with -late: the direction logged, agent->caller, caller->agent or both (caller->agent through cloak carries its 40 ms delay line)")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "progress line interval")
	fs.DurationVar(&o.setupWait, "setup-timeout", 10*time.Second, "longest a call setup may take")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "after hanging up, wait this long before reading the relay's memory again")
	fs.IntVar(&o.monitors, "monitors", 0, "mode sip: once the calls are up, monitor this many of the bridged calls (listen) through cloak's API; the token is $CLOAK_TOKEN")
	fs.StringVar(&o.api, "api", "", "cloak's admin API `URL` (http://127.0.0.1:8080), for -monitors")
	fs.StringVar(&o.monitorSIP, "monitor-sip", "127.0.0.1:5195", "our monitor UAS's SIP `ADDR:PORT`: cloak calls it for each monitor (-monitors)")
	fs.StringVar(&o.supervisor, "supervisor", "bench", "the supervisor the monitors are started as (in the queue's supervisors) (-monitors)")
	fs.BoolVar(&o.srtp, "srtp", false, "mode sip: offer and answer RTP/SAVP with SDES keys (RFC 4568; -srtp-suite) on both legs, protect what we send and unprotect what we receive; cloak needs rtp.srtp: mandatory or optional, and rtp.srtp_over_plain_sip, as the keys travel in the SDP over UDP")
	suite := fs.String("srtp-suite", "AES_CM_128_HMAC_SHA1_80", "with -srtp: the suite the caller offers and the agent side answers (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32 or AEAD_AES_128_GCM)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.mode != "sip" && o.mode != "ng" && o.mode != "floor":
		return o, fmt.Errorf("-mode: %q is not sip, ng or floor", o.mode)
	case o.calls < 1:
		return o, fmt.Errorf("-calls: at least 1")
	case o.rate <= 0:
		return o, fmt.Errorf("-rate: must be positive")
	case o.duration <= 0 || o.duration > 2*time.Hour:
		return o, fmt.Errorf("-duration: between 0 and 2h")
	case o.groups < 1 || o.senders < 1 || o.slots < 1 || o.slots > 20:
		return o, fmt.Errorf("-sockets, -senders at least 1; -slots 1..20")
	case o.delayLine < 0 || o.delayLine%frame != 0 || o.delayLine > (arrivalRing-1)*frame:
		return o, fmt.Errorf("-delay-line: a multiple of %v from 0 to %v", frame, (arrivalRing-1)*frame)
	case o.late != "" && o.lateOver <= 0:
		return o, fmt.Errorf("-late-over: must be positive")
	case o.monitors < 0 || o.monitors > o.calls:
		return o, fmt.Errorf("-monitors: 0 to -calls")
	case o.monitors > 0 && (o.mode != "sip" || o.api == ""):
		return o, fmt.Errorf("-monitors needs -mode sip and -api")
	case o.srtp && o.mode != "sip":
		return o, fmt.Errorf("-srtp: only with -mode sip")
	case o.lateDir != "agent->caller" && o.lateDir != "caller->agent" && o.lateDir != "both":
		return o, fmt.Errorf("-late-dir: %q is not agent->caller, caller->agent or both", o.lateDir)
	}
	var ok bool
	if o.srtpSuite, ok = sdes.ParseSuite(*suite); !ok {
		return o, fmt.Errorf("-srtp-suite: unknown suite %q", *suite)
	}
	if o.label == "" {
		o.label = o.mode
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, "cloak-load:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := runLoad(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "cloak-load:", err)
		return 1
	}
	printSummary(stdout, sum)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "cloak-load:", err)
			return 1
		}
	}
	return 0
}

// engine holds the sockets and streams.
type engine struct {
	o         options
	callers   []*group
	agents    []*group
	measuring atomic.Bool
	ids       atomic.Int64
	enc       *dtmf.Encoder
}

func (e *engine) nextStreamID() int         { return int(e.ids.Add(1) - 1) }
func (e *engine) callerGroup(id int) *group { return e.callers[id%len(e.callers)] }
func (e *engine) agentGroup(id int) *group  { return e.agents[id%len(e.agents)] }

// addStream starts a stream on g towards dst; callers key -digits.
func (e *engine) addStream(id int, g *group, dst netip.AddrPort, eventPT uint8, caller bool) *stream {
	s, _ := e.addStreamSRTP(id, g, dst, eventPT, caller, nil, nil) // no keys: no error
	return s
}

// addStreamSRTP is addStream for an SRTP leg: tx is our master key (it
// protects what the stream sends), rx the peer's; both nil for plain RTP.
// The contexts exist before the stream's first packet.
func (e *engine) addStreamSRTP(id int, g *group, dst netip.AddrPort, eventPT uint8, caller bool, tx, rx *sdes.Key) (*stream, error) {
	if eventPT == 0 {
		eventPT = 101
	}
	s := newStream(id, g, dst, eventPT, e.o.slots)
	if tx != nil || rx != nil {
		if err := s.setSRTP(tx, rx); err != nil {
			return nil, err
		}
	}
	if !caller {
		s.delayFrames = uint32(e.o.delayLine / frame) // it receives the delayed direction
	}
	if caller && e.o.digits != "" && e.enc != nil {
		s.keyDigits(e.enc, e.o.digits, uint64(e.o.digitsAt/frame))
	}
	g.add(s)
	return s, nil
}

func newEngine(o options) (*engine, error) {
	e := &engine{o: o}
	enc, err := dtmf.NewEncoder(dtmf.EncoderConfig{Duration: 100 * time.Millisecond, Interval: frame})
	if err != nil {
		return nil, err
	}
	e.enc = enc
	for _, side := range []string{"caller", "agent"} {
		for i := 0; i < o.groups; i++ {
			c, err := newBatchConn("127.0.0.1:0", 4<<20)
			if err != nil {
				e.closeSockets()
				return nil, fmt.Errorf("media socket: %w", err)
			}
			g := &group{name: fmt.Sprintf("%s%d", side, i), conn: c, measuring: &e.measuring}
			if side == "caller" {
				g.dir = "agent->caller"
				e.callers = append(e.callers, g)
			} else {
				g.dir = "caller->agent"
				e.agents = append(e.agents, g)
			}
			if o.late != "" && (o.lateDir == "both" || o.lateDir == g.dir) {
				g.hist.lateOver = o.lateOver.Nanoseconds()
			}
		}
	}
	return e, nil
}

func (e *engine) closeSockets() {
	for _, g := range append(append([]*group{}, e.callers...), e.agents...) {
		_ = g.conn.close()
	}
}

func (e *engine) counters() (tx, rx uint64) {
	for _, g := range append(append([]*group{}, e.callers...), e.agents...) {
		rx += g.rx.Load()
		g.mu.Lock()
		for _, s := range g.all {
			tx += s.sent.Load()
		}
		g.mu.Unlock()
	}
	return tx, rx
}

// callStats counts calls.
type callStats struct {
	mu        sync.Mutex
	attempted int
	up        int
	failed    int
	dropped   int // ended by the far end before we hung up
	cutShort  int // setup cancelled because the run ended
	active    int
	setups    []float64 // ms
	errors    map[string]int
}

func (c *callStats) fail(err error) {
	c.mu.Lock()
	c.failed++
	if c.errors == nil {
		c.errors = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	c.errors[msg]++
	c.mu.Unlock()
}

func runLoad(ctx context.Context, o options, stdout io.Writer) (*summary, error) {
	e, err := newEngine(o)
	if err != nil {
		return nil, err
	}
	var p placer
	switch o.mode {
	case "sip":
		p, err = newSIPPlacer(e, o.target, o.sipLocal, o.agent, o.user)
	case "ng":
		var ng *ngClient
		ng, err = dialNG(o.ng)
		if err == nil {
			_, err = ng.call(map[string]any{"command": "ping"}, 3*time.Second)
			var flags []string
			if o.ngFlags != "" {
				flags = strings.Split(o.ngFlags, ",")
			}
			p = &ngPlacer{e: e, ng: ng, security: o.security, flags: flags}
		}
	case "floor":
		var base netip.AddrPort
		base, err = netip.ParseAddrPort(o.floor)
		p = &floorPlacer{e: e, base: base, pairs: o.pairs}
	}
	if err != nil {
		e.closeSockets()
		return nil, err
	}
	var mon *monitors
	if o.monitors > 0 {
		if mon, err = newMonitors(ctx, o.api, os.Getenv("CLOAK_TOKEN"), o.supervisor, o.monitorSIP); err != nil {
			p.close()
			e.closeSockets()
			return nil, err
		}
		defer mon.close()
	}

	sum := &summary{Label: o.label, Mode: o.mode, Calls: o.calls, Rate: o.rate, Started: time.Now().UTC().Format(time.RFC3339),
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), Digits: o.digits != "", SRTP: o.srtp}
	if o.srtp {
		sum.SRTPSuite = o.srtpSuite.String()
	}
	if o.pid > 0 {
		st, err := readProc(o.pid)
		if err != nil {
			e.closeSockets()
			p.close()
			return nil, fmt.Errorf("-pid: %w", err)
		}
		sum.Target.Baseline = st
	}

	// Readers and pacers.
	var readers sync.WaitGroup
	for _, g := range append(append([]*group{}, e.callers...), e.agents...) {
		readers.Add(1)
		go func() { defer readers.Done(); g.read() }()
	}
	stopPacing := make(chan struct{})
	var pacers sync.WaitGroup
	all := append(append([]*group{}, e.callers...), e.agents...)
	for i := 0; i < o.senders; i++ {
		var mine []*group
		for j := i; j < len(all); j += o.senders {
			mine = append(mine, all[j])
		}
		pacers.Add(1)
		go pacer(mine, o.slots, stopPacing, pacers.Done)
	}

	start := time.Now()
	deadline := start.Add(o.duration)
	runCtx, cancelRun := context.WithDeadline(ctx, deadline)
	defer cancelRun()
	if o.hold > 0 {
		e.measuring.Store(true) // a soak measures the whole run
	}

	// Call placement.
	var cs callStats
	hangup := make(chan struct{})
	var callsWG sync.WaitGroup
	placed := make(chan struct{})
	go func() {
		defer close(placed)
		interval := time.Duration(float64(time.Second) / o.rate)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		slots := make(chan struct{}, o.calls)
		for idx := 0; ; idx++ {
			if o.hold == 0 && idx >= o.calls {
				return
			}
			select {
			case slots <- struct{}{}:
			case <-runCtx.Done():
				return
			case <-hangup:
				return
			}
			select {
			case <-tick.C:
			case <-runCtx.Done():
				return
			case <-hangup:
				return
			}
			cs.mu.Lock()
			cs.attempted++
			cs.mu.Unlock()
			callsWG.Add(1)
			go func(idx int) {
				defer callsWG.Done()
				defer func() {
					if o.hold > 0 {
						<-slots
					}
				}()
				sctx, cancel := context.WithTimeout(runCtx, o.setupWait)
				t0 := time.Now()
				c, err := p.place(sctx, idx)
				cancel()
				if err != nil {
					if runCtx.Err() != nil {
						// The run ended while this call was being set up:
						// not the target's failure.
						cs.mu.Lock()
						cs.cutShort++
						cs.mu.Unlock()
						return
					}
					cs.fail(err)
					return
				}
				cs.mu.Lock()
				cs.up++
				cs.active++
				cs.setups = append(cs.setups, float64(time.Since(t0).Microseconds())/1000)
				cs.mu.Unlock()
				var holdC <-chan time.Time
				if o.hold > 0 {
					t := time.NewTimer(o.hold)
					defer t.Stop()
					holdC = t.C
				}
				select {
				case <-c.ended():
					cs.mu.Lock()
					cs.dropped++
					cs.mu.Unlock()
				case <-holdC:
				case <-hangup:
				}
				hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = c.hangup(hctx)
				hcancel()
				cs.mu.Lock()
				cs.active--
				cs.mu.Unlock()
			}(idx)
		}
	}()

	// Progress.
	progDone := make(chan struct{})
	stopProg := make(chan struct{})
	go func() {
		defer close(progDone)
		t := time.NewTicker(o.progress)
		defer t.Stop()
		lastTx, lastRx := e.counters()
		lastT := time.Now()
		lastTarget, _ := readProc(o.pid)
		lastSelf, _ := readProc(0)
		for {
			select {
			case <-stopProg:
				return
			case now := <-t.C:
				tx, rx := e.counters()
				dt := now.Sub(lastT).Seconds()
				self, _ := readProc(0)
				line := fmt.Sprintf("%6.1fs calls up %d active %d failed %d dropped %d | tx %6.0f pps rx %6.0f pps | load cpu %3.0f%%",
					now.Sub(start).Seconds(), cs.snapshot().up, cs.snapshot().active, cs.snapshot().failed, cs.snapshot().dropped,
					float64(tx-lastTx)/dt, float64(rx-lastRx)/dt, 100*(self.CPUSeconds-lastSelf.CPUSeconds)/dt)
				if o.pid > 0 {
					tg, _ := readProc(o.pid)
					line += fmt.Sprintf(" target cpu %3.0f%% rss %d MiB threads %d", 100*(tg.CPUSeconds-lastTarget.CPUSeconds)/dt, tg.RSSKiB>>10, tg.Threads)
					lastTarget = tg
				}
				fmt.Fprintln(stdout, line)
				lastTx, lastRx, lastT, lastSelf = tx, rx, now, self
			}
		}
	}()

	// Wait for the ramp, then measure.
	var w window
	if o.hold == 0 {
		<-placed
		// All attempts were made; wait for setups in flight.
		for time.Now().Before(deadline) && ctx.Err() == nil {
			s := cs.snapshot()
			if s.up+s.failed >= s.attempted {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		sum.RampSeconds = time.Since(start).Seconds()
		if mon != nil {
			t0 := time.Now()
			mon.start(runCtx, o.monitors)
			fmt.Fprintf(stdout, "monitors: %d asked in %.1fs\n", o.monitors, time.Since(t0).Seconds())
		}
		sleepUntil(runCtx, time.Now().Add(o.warmup))
		e.measuring.Store(true)
		w.begin(e, o.pid)
		var monRx uint64
		if mon != nil {
			monRx = mon.rx.Load()
		}
		sleepUntil(runCtx, time.Now().Add(o.window))
		w.end(e, o.pid)
		e.measuring.Store(false)
		if mon != nil {
			sum.Monitors = mon.summary(o.monitors, mon.rx.Load()-monRx, w.t1.Sub(w.t0).Seconds())
		}
		if time.Now().Before(deadline.Add(-time.Second)) == false {
			sum.Notes = append(sum.Notes, "the run hit -duration before the window ended")
		}
	} else {
		w.begin(e, o.pid)
		<-runCtx.Done()
		w.end(e, o.pid)
		sum.RampSeconds = 0
	}

	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		sum.LoadAvg = strings.Join(strings.Fields(string(la))[:3], " ")
	}

	// Tear down.
	close(hangup)
	<-placed
	waitTimeout(&callsWG, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // in-flight media
	close(stopPacing)
	pacers.Wait()
	close(stopProg)
	<-progDone
	if o.pid > 0 {
		time.Sleep(o.settle)
		if st, err := readProc(o.pid); err == nil {
			sum.Target.After = st
		}
	}
	if sp, ok := p.(*sipPlacer); ok {
		sum.AgentLegs = &agentLegs{Invites: sp.agents.invites.Load(), Answered: sp.agents.answered.Load(), Ended: sp.agents.ended.Load(), Failed: sp.agents.failed.Load()}
	}
	p.close()
	e.closeSockets()
	readers.Wait()

	sum.fill(e, &cs, &w, o)
	if o.late != "" {
		if err := writeLate(o.late, e); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

func (c *callStats) snapshot() callStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return callStats{attempted: c.attempted, up: c.up, failed: c.failed, dropped: c.dropped, active: c.active}
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// window is the measured steady period.
type window struct {
	t0, t1         time.Time
	tx0, tx1       uint64
	rx0, rx1       uint64
	target0        procStat
	target1        procStat
	self0, self1   procStat
	activeAtEnd    int
	measuredTarget bool
}

func (w *window) begin(e *engine, pid int) {
	w.t0 = time.Now()
	w.tx0, w.rx0 = e.counters()
	w.self0, _ = readProc(0)
	if pid > 0 {
		w.target0, _ = readProc(pid)
		w.measuredTarget = true
	}
}

func (w *window) end(e *engine, pid int) {
	w.t1 = time.Now()
	w.tx1, w.rx1 = e.counters()
	w.self1, _ = readProc(0)
	if pid > 0 {
		w.target1, _ = readProc(pid)
	}
}
