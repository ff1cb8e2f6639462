package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// serveFlags are the command-line overrides; they win over the file.
type serveFlags struct {
	config     string
	sip        string
	rtpPorts   string
	data       string
	logLevel   string
	admin      string
	cpuProfile string
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloak serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (default: embedded defaults)")
	fs.StringVar(&f.sip, "sip", "", "SIP listen `ADDR:PORT` for UDP and TCP (overrides sip.listen)")
	fs.StringVar(&f.rtpPorts, "rtp-ports", "", "RTP port range `LO-HI` (overrides rtp.ports)")
	fs.StringVar(&f.data, "data", "", "data `DIR` (overrides data.dir)")
	fs.StringVar(&f.logLevel, "log-level", "", "log `LEVEL`: trace, debug, info, warn, error (overrides log.level)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` until shutdown (go tool pprof)")
	fs.StringVar(&f.admin, "admin", "", "HTTP API `ADDR:PORT`, or \"off\" (overrides admin.listen)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cloak serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak serve: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "cloak serve: -cpuprofile: %v\n", err)
			return 2
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintf(stderr, "cloak serve: -cpuprofile: %v\n", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = pf.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error().Err(err).Msg("cloak stopped")
		return 1
	}
	return 0
}

// loadConfig reads the file (or the defaults), applies the flags and
// validates the result.
func loadConfig(f serveFlags) (config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return cfg, err
		}
	}
	if f.sip != "" {
		cfg.SIP.Listen = f.sip
	}
	if f.rtpPorts != "" {
		cfg.RTP.Ports = f.rtpPorts
	}
	if f.data != "" {
		cfg.Data.Dir = f.data
	}
	if f.logLevel != "" {
		cfg.Log.Level = f.logLevel
	}
	switch f.admin {
	case "":
	case "off":
		cfg.Admin.Listen = ""
	default:
		cfg.Admin.Listen = f.admin
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("bad configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	if cfg.Log.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.StampMilli, NoColor: true}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// serve runs cloak until ctx ends, then shuts down gracefully: new INVITEs
// get 503, calls in progress drain (or are hung up) within the grace
// period. ready, when not nil, is called with the SIP server once it
// listens (tests use it).
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger, ready func(*sip.Server)) error {
	// ctx only says when to start shutting down; the listeners, the API and
	// the demo gateway live on runCtx until calls have drained.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	listen, _ := cfg.SIPListen()
	lo, hi, _ := cfg.RTPPorts()
	if err := os.MkdirAll(cfg.Data.Dir, 0o750); err != nil {
		return fmt.Errorf("data.dir: %w", err)
	}
	pool, err := media.NewPortPool(cfg.RTPBindAddr(), lo, hi)
	if err != nil {
		return fmt.Errorf("rtp.ports: %w", err)
	}
	mediaAddr := cfg.RTPAdvertiseAddr() // a wildcard: per call, see call.Config.MediaAddr
	source, err := rtpSource(cfg, log)
	if err != nil {
		return err
	}
	var poller *media.Poller
	if cfg.RTP.IO == "poll" {
		workers := cfg.RTP.Workers
		if workers == 0 {
			workers = media.DefaultPollWorkers()
		}
		p, perr := media.NewPoller(workers, log)
		if perr != nil {
			log.Warn().Err(perr).Msg("rtp.io poll is not available here: one goroutine per leg instead")
		} else {
			poller = p
			defer poller.Close() // after the calls: deferred before them
			pool.SetPoller(poller)
			log.Debug().Int("workers", workers).Msg("rtp sockets read by epoll workers")
		}
	}
	clock := media.NewClock(media.DefaultClockInterval)
	clock.Start()
	defer clock.Stop()

	var prompts = demoPrompts()
	if cfg.Prompts.Dir != "" {
		prompts = os.DirFS(cfg.Prompts.Dir)
	}
	flowsFS, flowsDir := demoFlows(), "."
	if cfg.Flows.Dir != "" {
		flowsFS, flowsDir = os.DirFS(cfg.Flows.Dir), "."
	}
	flows, err := ivr.LoadDir(flowsFS, flowsDir)
	if err != nil {
		return fmt.Errorf("flows: %w", err)
	}
	endpoints := map[string]string{}
	for k, v := range cfg.Flows.Endpoints {
		endpoints[k] = v
	}
	if endpoints["payment_gateway"] == "" {
		gw, err := startDemoGateway(runCtx)
		if err != nil {
			return fmt.Errorf("demo payment gateway: %w", err)
		}
		endpoints["payment_gateway"] = gw
		log.Info().Str("url", gw).Msg("demo payment gateway (no flows.endpoints.payment_gateway configured)")
	}
	dir, err := newDirectory(cfg)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	rec, err := recordingSetup(cfg)
	if err != nil {
		return err
	}
	recoverRecordings(cfg, rec, log)
	minBytes, minPct, _ := config.ParseMinFree(cfg.Recording.MinFree) // validated
	caps, closeCaps, err := captureSetup(cfg, log)
	if err != nil {
		return err
	}
	defer closeCaps()
	dtmfMode, dtmfRoutes, err := dtmfModes(cfg.DTMF)
	if err != nil {
		return err
	}
	mgr, err := call.NewManager(call.Config{
		Pool: pool, Clock: clock, MediaAddr: mediaAddr,
		RTPSource: source, LearnPackets: cfg.RTP.LearnPackets,
		InactivityTimeout: cfg.RTP.InactivityTimeout,
		Routes:            cfg.Routes,
		Prompts:           prompts,
		Flows:             flows,
		Endpoints:         endpoints,
		Directory:         dir,
		SecureCode:        cfg.Features.SecureCode,
		SecureFlow:        cfg.Features.SecureFlow,
		RecordCode:        cfg.Recording.AgentCode,
		RecordingDir:      rec.dir,
		RecordingKey:      rec.key,
		RecordRoutes:      cfg.Recording.Routes,
		RecordDefault:     cfg.Recording.Default,
		RecordingSpace:    recorder.NewSpace(rec.dir, recorder.MinFree{Bytes: minBytes, Percent: minPct}),
		RecordOnNoSpace:   cfg.Recording.OnUnavailable,
		Capture:           caps,
		DTMF:              dtmfMode,
		DTMFRoutes:        dtmfRoutes,
		Log:               log,
	})
	if err != nil {
		return err
	}
	defer mgr.Close()

	adv := sipContactAddr(cfg, listen)
	sip.SetT1(cfg.SIP.T1)
	authLim, err := authLimiter(cfg.SIP.Auth)
	if err != nil {
		return err
	}
	srv, err := sip.NewServer(sip.Config{
		Listen: listen, Advertise: adv, Transports: cfg.SIP.Transports,
		AllowNets: cfg.AllowNets(), MaxCalls: cfg.SIP.MaxCalls,
		UserAgent: cfg.SIP.UserAgent + "/" + version, Log: log,
		Registrar: &sip.Registrar{Password: dir.Password, OnBinding: dir.Register,
			Limiter: authLim, NonceLifetime: cfg.SIP.Auth.NonceLifetime, Algorithms: cfg.SIP.Auth.Algorithms},
		Observe: observeFor(caps, mgr),
	}, mgr)
	if err != nil {
		return err
	}
	mgr.SetDialer(srv)
	if err := srv.Start(runCtx); err != nil {
		return err
	}
	log.Info().Str("version", version).Str("sip", listen.String()).Strs("transports", cfg.SIP.Transports).Strs("flows", flows.Names()).
		Str("rtp", fmt.Sprintf("%s:%d-%d", cfg.RTPBindAddr(), lo, hi)).Str("rtp_source", cfg.RTP.Source).Str("data", cfg.Data.Dir).Msg("cloak is ready")
	if cfg.Admin.Listen != "" {
		sipStats := func() map[string]any {
			st := srv.Stats()
			out := map[string]any{"sip_calls": st.Calls, "sip_active": st.Active, "sip_forbidden": st.Forbidden,
				"sip_bad_requests": st.BadRequests, "sip_overloaded": st.Overloaded, "rtp_ports_in_use": pool.InUse()}
			as := authLim.Stats()
			out["sip_auth_locks"], out["sip_auth_tracked"] = as.Locks, as.Keys
			out["recording_unavailable"], out["recording_failed"] = mgr.RecordingStats()
			if poller != nil {
				ps := poller.Stats()
				out["rtp_poll_workers"] = ps.Workers
				out["rtp_poll_legs"] = ps.Legs
				out["rtp_poll_batches"] = ps.Batches
				out["rtp_poll_served"] = ps.Served
				out["rtp_poll_full_batches"] = ps.FullBatches
				out["rtp_poll_busy_ms"] = ps.Busy.Milliseconds()
				out["rtp_poll_nudges"] = ps.Nudges
			}
			return out
		}
		addr, err := startAdmin(runCtx, cfg.Admin.Listen, admin.Handler(admin.Adapt(mgr, sipStats), admin.Options{Pprof: cfg.Admin.Pprof}))
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
		log.Info().Str("listen", addr).Msg("HTTP API ready")
	}
	if ready != nil {
		ready(srv)
	}
	<-ctx.Done()

	// Graceful shutdown: refuse new calls, then drain or hang up.
	srv.Drain()
	active := mgr.Active()
	log.Info().Int("active_calls", active).Str("mode", cfg.Shutdown.Mode).Dur("grace", cfg.Shutdown.Grace).Msg("shutting down: new calls get 503")
	if cfg.Shutdown.Mode == "hangup" {
		mgr.HangupAll("shutdown")
	}
	wctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Grace)
	err = srv.Wait(wctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		log.Info().Int("active_calls", mgr.Active()).Msg("grace period over: hanging up the remaining calls")
		mgr.HangupAll("shutdown")
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Wait(wctx)
		cancel()
	}
	_ = srv.Close()
	log.Info().Msg("cloak stopped")
	return nil
}

// rtpSource parses rtp.source and warns, once at start, when it is any.
func rtpSource(cfg config.Config, log zerolog.Logger) (media.SourcePolicy, error) {
	source, err := media.ParseSourcePolicy(cfg.RTP.Source)
	if err != nil {
		return source, fmt.Errorf("rtp.source: %w", err)
	}
	if source == media.SourceAny {
		log.Warn().Str("rtp.source", "any").Msg("RTP latches to whoever sends first: anyone who reaches a call's RTP port before the caller takes its media and can key digits into it; use strict or learn")
	}
	return source, nil
}

// sipContactAddr is the address SIP puts in Contact and Via: sip.advertise,
// else the listen address (sip.NewServer handles a wildcard). rtp.address
// is media's alone: a host whose media leaves by another interface than
// its signalling must not be given that address for SIP.
func sipContactAddr(cfg config.Config, listen netip.AddrPort) netip.Addr {
	if a := cfg.SIPAdvertiseAddr(); a.IsValid() {
		return a
	}
	return listen.Addr()
}

// startDemoGateway serves ivr.DemoGateway on a loopback port until ctx ends
// and returns its URL.
func startDemoGateway(ctx context.Context) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: ivr.DemoGateway(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return "http://" + l.Addr().String() + "/pay", nil
}

// startAdmin serves the HTTP API until ctx ends and returns its address.
func startAdmin(ctx context.Context, listen string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return l.Addr().String(), nil
}

// newDirectory builds the agents and queues from configuration.
func newDirectory(cfg config.Config) (*acd.Directory, error) {
	var agents []acd.AgentConfig
	for _, a := range cfg.Agents {
		agents = append(agents, acd.AgentConfig{Name: a.Name, URI: a.URI, Password: a.Password, Queues: a.Queues})
	}
	var queues []acd.QueueConfig
	for _, q := range cfg.Queues {
		queues = append(queues, acd.QueueConfig{Name: q.Name, Timeout: q.Timeout, RingTimeout: q.RingTimeout,
			HoldPrompt: q.HoldPrompt, MaskDTMF: q.DTMF == "mask", Collect: q.CollectWhileTalking})
	}
	return acd.NewDirectory(agents, queues)
}

type recordingConf struct {
	dir string
	key []byte
}

// recordingSetup prepares the recordings directory and the sidecar signing
// key (created on first start when none is configured).
func recordingSetup(cfg config.Config) (recordingConf, error) {
	dir := cfg.Recording.Dir
	if dir == "" {
		dir = filepath.Join(cfg.Data.Dir, "recordings")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return recordingConf{}, fmt.Errorf("recording.dir: %w", err)
	}
	keyFile := cfg.Recording.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Data.Dir, "recording.key")
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			var k [32]byte
			if _, err := rand.Read(k[:]); err != nil {
				return recordingConf{}, err
			}
			if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(k[:])+"\n"), 0o600); err != nil {
				return recordingConf{}, fmt.Errorf("recording.key_file: %w", err)
			}
		}
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return recordingConf{}, fmt.Errorf("recording.key_file: %w", err)
	}
	key = []byte(strings.TrimSpace(string(key)))
	if len(key) < 16 {
		return recordingConf{}, fmt.Errorf("recording.key_file: %s holds %d bytes, want at least 16", keyFile, len(key))
	}
	return recordingConf{dir: dir, key: key}, nil
}

// recoverRecordings deals with the recordings a crash left unfinished in
// the recordings directory (recording.recover), before any call starts,
// logging one line per file: its path, what was done, the audio kept —
// never its content.
func recoverRecordings(cfg config.Config, rec recordingConf, log zerolog.Logger) {
	mode := recorder.RecoverRepair
	if cfg.Recording.Recover == "quarantine" {
		mode = recorder.RecoverQuarantine
	}
	out, err := recorder.Recover(recorder.RecoverConfig{Dir: rec.dir, Key: rec.key, Mode: mode})
	if err != nil {
		log.Error().Err(err).Msg("recordings not checked for crash leftovers")
		return
	}
	for _, rc := range out {
		ev, msg := log.Warn(), "unfinished recording "+rc.Action
		if rc.Err != nil {
			ev, msg = log.Error().Err(rc.Err), "unfinished recording left as it was (tried: "+rc.Action+"; next start tries again)"
		}
		ev.Str("file", rc.Path).Str("dest", rc.Dest).Str("action", rc.Action).Int64("bytes", rc.Bytes).
			Int64("cut_bytes", rc.CutBytes).Dur("duration", rc.Duration).Str("reason", rc.Reason).
			Msg(msg)
	}
}

// captureSetup opens the capture sinks the configuration asks for, unless
// pci is on.
func captureSetup(cfg config.Config, log zerolog.Logger) (call.Capture, func(), error) {
	var caps call.Capture
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	wanted := cfg.Capture.SIPPcap || cfg.Capture.RTPPcap || cfg.Capture.HEP != ""
	if cfg.PCI {
		if wanted {
			log.Warn().Msg("pci: true — SIP and RTP capture are OFF, whatever capture: says")
		} else {
			log.Info().Msg("pci: true — SIP and RTP capture are off")
		}
		return caps, closeAll, nil
	}
	if !wanted {
		return caps, closeAll, nil
	}
	dir := filepath.Join(cfg.Data.Dir, "captures")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return caps, closeAll, fmt.Errorf("capture: %w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var sipSinks multiSink
	if cfg.Capture.SIPPcap {
		w, err := capture.NewPcapWriter(filepath.Join(dir, "sip-"+stamp+".pcap"), capture.PcapOptions{})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.sip_pcap: %w", err)
		}
		closers = append(closers, w.Close)
		sipSinks = append(sipSinks, w)
		log.Info().Str("file", w.Path()).Msg("SIP capture to pcap")
	}
	if cfg.Capture.HEP != "" {
		h, err := capture.NewHEPSender(cfg.Capture.HEP, capture.HEPOptions{AgentID: cfg.Capture.HEPAgentID})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.hep: %w", err)
		}
		closers = append(closers, h.Close)
		sipSinks = append(sipSinks, h)
		log.Info().Str("collector", cfg.Capture.HEP).Msg("SIP capture to HEP")
	}
	if len(sipSinks) > 0 {
		caps.SIP = sipSinks
	}
	if cfg.Capture.RTPPcap {
		w, err := capture.NewPcapWriter(filepath.Join(dir, "rtp-"+stamp+".pcap"), capture.PcapOptions{})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.rtp_pcap: %w", err)
		}
		closers = append(closers, w.Close)
		caps.RTP = w
		log.Info().Str("file", w.Path()).Msg("RTP capture to pcap")
	}
	return caps, closeAll, nil
}

// multiSink writes to several capture sinks.
type multiSink []capture.Sink

func (m multiSink) WritePacket(ts time.Time, src, dst netip.AddrPort, proto capture.Proto, payload []byte) error {
	var first error
	for _, s := range m {
		if err := s.WritePacket(ts, src, dst, proto, payload); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WriteMarker passes suppression markers to the sinks that take them.
func (m multiSink) WriteMarker(ts time.Time, text string) error {
	for _, s := range m {
		if mw, ok := s.(capture.MarkerWriter); ok {
			_ = mw.WriteMarker(ts, text)
		}
	}
	return nil
}

func observeFor(caps call.Capture, mgr *call.Manager) func(sip.Observed) {
	if caps.SIP == nil {
		return nil
	}
	return mgr.ObserveSIP
}

// dtmfModes parses the validated dtmf section.
func dtmfModes(c config.DTMF) (dtmf.Policy, map[string]dtmf.Policy, error) {
	mode, err := dtmf.ParsePolicy(c.Mode)
	if err != nil {
		return 0, nil, fmt.Errorf("dtmf.mode: %w", err)
	}
	routes := make(map[string]dtmf.Policy, len(c.Routes))
	for r, v := range c.Routes {
		if routes[r], err = dtmf.ParsePolicy(v); err != nil {
			return 0, nil, fmt.Errorf("dtmf.routes.%s: %w", r, err)
		}
	}
	return mode, routes, nil
}
