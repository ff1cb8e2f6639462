package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// serveFlags are the command-line overrides; they win over the file.
type serveFlags struct {
	config   string
	sip      string
	rtpPorts string
	data     string
	logLevel string
	admin    string
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
	mediaAddr := cfg.RTPAddr()
	pool, err := media.NewPortPool(mediaAddr, lo, hi)
	if err != nil {
		return fmt.Errorf("rtp.ports: %w", err)
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
	mgr, err := call.NewManager(call.Config{
		Pool: pool, Clock: clock, MediaAddr: mediaAddr,
		InactivityTimeout: cfg.RTP.InactivityTimeout,
		Routes:            cfg.Routes,
		Prompts:           prompts,
		Flows:             flows,
		Endpoints:         endpoints,
		Directory:         dir,
		SecureCode:        cfg.Features.SecureCode,
		SecureFlow:        cfg.Features.SecureFlow,
		Log:               log,
	})
	if err != nil {
		return err
	}
	defer mgr.Close()

	var adv = listen.Addr()
	if cfg.SIP.Advertise != "" {
		adv = cfg.RTPAddr()
	}
	srv, err := sip.NewServer(sip.Config{
		Listen: listen, Advertise: adv, Transports: cfg.SIP.Transports,
		AllowNets: cfg.AllowNets(), MaxCalls: cfg.SIP.MaxCalls,
		UserAgent: cfg.SIP.UserAgent + "/" + version, Log: log,
		Registrar: &sip.Registrar{Password: dir.Password, OnBinding: dir.Register},
	}, mgr)
	if err != nil {
		return err
	}
	mgr.SetDialer(srv)
	if err := srv.Start(runCtx); err != nil {
		return err
	}
	log.Info().Str("version", version).Str("sip", listen.String()).Strs("transports", cfg.SIP.Transports).Strs("flows", flows.Names()).
		Str("rtp", fmt.Sprintf("%s:%d-%d", mediaAddr, lo, hi)).Str("data", cfg.Data.Dir).Msg("cloak is ready")
	if cfg.Admin.Listen != "" {
		addr, err := startAdmin(runCtx, cfg.Admin.Listen, admin.Handler(admin.Adapt(mgr)))
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
func newDirectory(cfg config.Config) (*call.Directory, error) {
	var agents []call.AgentConfig
	for _, a := range cfg.Agents {
		agents = append(agents, call.AgentConfig{Name: a.Name, URI: a.URI, Password: a.Password, Queues: a.Queues})
	}
	var queues []call.QueueConfig
	for _, q := range cfg.Queues {
		queues = append(queues, call.QueueConfig{Name: q.Name, Timeout: q.Timeout, RingTimeout: q.RingTimeout,
			HoldPrompt: q.HoldPrompt, MaskDTMF: q.DTMF == "mask", Collect: q.CollectWhileTalking})
	}
	return call.NewDirectory(agents, queues)
}
