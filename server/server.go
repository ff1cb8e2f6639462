package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/certs"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/metrics"
	"github.com/cloak-voip/cloak/overload"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
	"github.com/cloak-voip/cloak/trunk"
	"github.com/rs/zerolog"
)

// Options are what the binary passes to Run beside the configuration.
type Options struct {
	// Version is the build's version, in the SIP User-Agent and the log.
	Version string
	// Ready, when not nil, is called with the SIP server once it listens
	// (tests use it).
	Ready func(*sip.Server)
}

// Run assembles one cloak node from a validated configuration and runs it
// until ctx ends, then shuts it down gracefully.
//
// Start order: the data directory, the RTP port pool and its epoll
// workers, the pacing clock, prompts and flows, the demo payment gateway
// when none is configured, agents and queues, the recordings directory and
// key, recovery of recordings a crash left, the captures, the archive
// (database and writer), the call manager, the SIP server, the HTTP API;
// "cloak is ready" is logged only once all of them listen. A listener
// that cannot bind (SIP, the API, the RTP range) makes Run return a
// *BindError naming its field. Shutdown runs it backwards: new INVITEs get
// 503 (drain), calls in progress drain or are hung up (shutdown.mode)
// within shutdown.grace, then the SIP server closes and the deferred
// closers release the manager, the archive (what finished calls queued is
// written first), captures, clock and workers — in that order, after the
// calls.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger, opts Options) error {
	version := opts.Version
	if version == "" {
		version = "dev"
	}
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
	if err := probePool(pool); err != nil {
		return bindError("rtp.ports", fmt.Sprintf("%s:%d-%d", cfg.RTPBindAddr(), lo, hi), err)
	}
	mediaAddr := cfg.RTPAdvertiseAddr() // a wildcard: per call, see call.Config.MediaAddr
	source, err := rtpSource(cfg, log)
	if err != nil {
		return err
	}
	var poller *media.Poller
	if cfg.RTP.IO == "poll" {
		// More Ps than cores, unless GOMAXPROCS is set: a woken poll
		// worker takes an idle P at once instead of queueing behind the
		// other goroutines for up to 10 ms (overload.Procs).
		if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < overload.Procs() {
			runtime.GOMAXPROCS(overload.Procs())
		}
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
			log.Debug().Int("workers", workers).Int("gomaxprocs", runtime.GOMAXPROCS(0)).Msg("rtp sockets read by epoll workers")
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
		if cfg.Flows.Dir != "" {
			return fmt.Errorf("flows.dir %s: %w", cfg.Flows.Dir, err)
		}
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
		if err := os.WriteFile(filepath.Join(cfg.Data.Dir, DemoGatewayURLFile), []byte(gw+"\n"), 0o600); err != nil {
			return fmt.Errorf("demo payment gateway: %w", err)
		}
		log.Info().Str("url", gw).Msg("demo payment gateway (no flows.endpoints.payment_gateway configured)")
	}
	// A step that sends a card may only use an https endpoint or loopback.
	if err := flows.CheckEndpoints(endpoints); err != nil {
		return fmt.Errorf("flows.endpoints:\n%w", err)
	}
	flowsClient, err := flowsHTTPClient(cfg.Flows.TLS)
	if err != nil {
		return err
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
	dtmfTrunks, err := trunkDTMFModes(cfg.Trunks)
	if err != nil {
		return err
	}
	arch, err := archiveSetup(runCtx, cfg, log)
	if err != nil {
		return err
	}
	defer arch.close(10 * time.Second) // after the manager: the calls have drained
	frd, err := fraudSetup(runCtx, cfg, arch, log)
	if err != nil {
		return err
	}
	var screener ivr.Screener
	var tokenKey []byte
	if frd != nil {
		screener, tokenKey = frd, frd.tokenKey
	}
	space := recorder.NewSpace(rec.dir, recorder.MinFree{Bytes: minBytes, Percent: minPct})
	callMetrics := metrics.NewCalls() // the call layer's series; the rest join once the SIP server exists
	metAccess, err := metricsAccess(cfg.Metrics)
	if err != nil {
		return err
	}
	srtpOut, srtpIn, err := srtpPolicy(cfg, log)
	if err != nil {
		return err
	}
	mgr, err := call.NewManager(call.Config{
		Pool: pool, Clock: clock, MediaAddr: mediaAddr,
		RTPSource: source, LearnPackets: cfg.RTP.LearnPackets, MaxStaleness: cfg.RTP.MaxStaleness,
		RTCP: cfg.RTP.RTCP.Enabled, RTCPInterval: cfg.RTP.RTCP.Interval, RTCPMux: cfg.RTP.RTCP.Mux,
		SRTP:              srtpOut,
		InactivityTimeout: cfg.RTP.InactivityTimeout,
		Routes:            cfg.Routes,
		ChannelData:       channelHeaders(cfg.Archive.ChannelData),
		Prompts:           prompts,
		Flows:             flows,
		Endpoints:         endpoints,
		HTTPClient:        flowsClient,
		Screener:          screener,
		CardTokenKey:      tokenKey,
		Arrival:           frd.arrivalConfig(cfg.Fraud.Call),
		Payments:          paymentConfig(cfg.Payments),
		Directory:         dir,
		SecureCode:        cfg.Features.SecureCode,
		PaymentCode:       cfg.Features.PaymentCode,
		SecureFlow:        cfg.Features.SecureFlow,
		RecordCode:        cfg.Recording.AgentCode,
		RecordingDir:      rec.dir,
		RecordingKey:      rec.key,
		RecordRoutes:      cfg.Recording.Routes,
		RecordDefault:     cfg.Recording.Default,
		RecordingSpace:    space,
		RecordOnNoSpace:   cfg.Recording.OnUnavailable,
		Capture:           caps,
		DTMF:              dtmfMode,
		DTMFRoutes:        dtmfRoutes,
		DTMFTrunks:        dtmfTrunks,
		Log:               log,
		OnEnded:           arch.onEnded(),
		Metrics:           callMetrics,
		Monitor:           monitorConfig(cfg, arch),
	})
	if err != nil {
		return err
	}
	defer mgr.Close()
	clu, err := clusterSetup(runCtx, cfg, arch, dir, mgr, netip.AddrPortFrom(sipContactAddr(cfg, listen), listen.Port()).String(), version, log)
	if err != nil {
		return err
	}
	defer clu.stop() // on an early return; after a drain it ran already
	// After the join, which archives an earlier run's calls node-lost:
	// the start's reindex links their recovered recordings to them.
	arch.startPurge(runCtx, cfg)

	adv := sipContactAddr(cfg, listen)
	if adv.IsUnspecified() {
		// SDP finds its address per call (the route to the caller); SIP's
		// Contact and Via are fixed at start, and sip.NewServer can only
		// fall back to loopback for them.
		log.Warn().Str("sip.listen", listen.String()).Msg("SIP listens on a wildcard address without sip.advertise: Contact and Via carry 127.0.0.1, which remote peers cannot reach; set sip.advertise")
	}
	sip.SetT1(cfg.SIP.T1)
	authLim, err := authLimiter(cfg.SIP.Auth)
	if err != nil {
		return err
	}
	var srvActive func() int // set below, read by the sampler once it runs
	mon, err := overloadMonitor(cfg, log, poller, func() int { return srvActive() })
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	var reloadable []namedCert
	var tlsListen netip.AddrPort
	var sipServerTLS, sipClientTLS *tls.Config
	if cfg.SIPTLSEnabled() {
		var rl *certs.Reloader
		if sipServerTLS, sipClientTLS, rl, err = sipTLS(cfg); err != nil {
			return err
		}
		tlsListen, _ = cfg.SIPTLSListen() // validated
		reloadable = append(reloadable, namedCert{"sip.tls", rl})
	}
	trunkSet, err := trunk.New(cfg.Trunks, trunk.Options{Limiter: authLim, Algorithms: cfg.SIP.Auth.Algorithms, NonceLifetime: cfg.SIP.Auth.NonceLifetime})
	if err != nil {
		return err
	}
	trunks := &nodeTrunks{}
	if len(cfg.Trunks) > 0 {
		trunks.set = trunkSet
	}
	sipCfg := sip.Config{
		Listen: listen, Advertise: adv, Transports: cfg.SIP.Transports,
		TLSListen: tlsListen, TLS: sipServerTLS, ClientTLS: sipClientTLS,
		AllowNets: cfg.AllowNets(), MaxCalls: cfg.SIP.MaxCalls,
		UserAgent: cfg.SIP.UserAgent + "/" + version, Log: log,
		Registrar: &sip.Registrar{Password: dir.Password, OnBinding: dir.Register,
			Limiter: authLim, NonceLifetime: cfg.SIP.Auth.NonceLifetime, Algorithms: cfg.SIP.Auth.Algorithms},
		Observe: observeFor(caps, mgr),
		SRTP:    srtpIn, // rtp.srtp, rtp.srtp_routes

		InviteAuth: cfg.SIP.InviteAuth == "users", // users' INVITEs answer REGISTER's digest

		Admission: mon, // limits.*: new calls get 503 while overloaded
	}
	trunks.sipConfig(&sipCfg, cfg)
	if clu != nil && clu.node != nil { // digest nonces any node can verify (docs/SCALE.md)
		sipCfg.Registrar.Nonces = clu.node
	}
	srv, err := sip.NewServer(sipCfg, mgr)
	if err != nil {
		return err
	}
	mgr.SetDialer(srv)
	srvActive = srv.Active
	if err := srv.Start(runCtx); err != nil {
		field, addr := sipBindField(err, cfg)
		return bindError(field, addr, err)
	}
	trunks.start(runCtx, srv, log)
	defer trunks.stop()
	adminAddr, metricsMode := "off", "off"
	if cfg.Admin.Listen != "" {
		sipStats := func() map[string]any {
			out := stats(srv, pool, authLim, mgr, poller)
			st := srv.Stats()
			addOverloadStats(out, mon, st.RefusedBy, st.ProbesRefused)
			return arch.addStats(out)
		}
		var met *metrics.Metrics
		if cfg.Metrics.Enabled {
			if met, err = nodeMetrics(callMetrics, srv, pool, poller, mon, authLim, mgr, space); err != nil {
				_ = srv.Close()
				return fmt.Errorf("metrics: %w", err)
			}
			if err := met.Registry().Register(metrics.NewTrunks(trunks.samples)); err != nil {
				_ = srv.Close()
				return fmt.Errorf("metrics: %w", err)
			}
			metricsMode = "users with metrics.view" // who may scrape /metrics, for the ready line
			if metAccess.Token != "" {
				metricsMode += " or metrics.token_file"
			}
		}
		authSvc, err := arch.authSetup(runCtx, cfg, authLim, metAccess)
		if err != nil {
			_ = srv.Close()
			return err
		}
		api, apiMux := apiHandler(authSvc, admin.Adapt(mgr, sipStats), cfg, arch, met, trunks, clu)
		if unruled := apiMux.Unruled(); len(unruled) > 0 {
			log.Error().Strs("routes", unruled).Msg("HTTP routes without a permission rule are refused to everyone: add them to auth.Rules")
		}
		apiTLS, rl, err := adminTLS(cfg)
		if err != nil {
			_ = srv.Close()
			return err
		}
		if rl != nil {
			reloadable = append(reloadable, namedCert{"admin.tls", rl})
		}
		addr, err := startAdmin(runCtx, cfg.Admin.Listen, apiTLS, api)
		if err != nil {
			_ = srv.Close()
			return bindError("admin.listen", cfg.Admin.Listen, err)
		}
		adminAddr = addr
		if apiTLS != nil {
			adminAddr = "https://" + addr
		} else if ap, _ := netip.ParseAddrPort(addr); !ap.Addr().IsLoopback() {
			log.Warn().Str("admin.listen", addr).Msg("the HTTP API listens beyond loopback without TLS (admin.allow_plain): requests and answers cross the network in clear; set admin.tls")
		}
	}
	reloadCerts(runCtx, log, reloadable)
	// Admission control samples from here, not from the SIP server's
	// start: the node's own start-up after it (the first admin's password
	// hash, the API's set-up) kept a core busy for half a second, its
	// second sample read a CPU share over limits.max_cpu, and a node just
	// started refused calls for limits.hold (seen in bench/relay.sh as
	// the first 200-250 calls of a round refused). Until the first sample
	// the node takes calls, as it does below every limit.
	go mon.Run(runCtx)
	// Every listener is bound: only now is cloak ready.
	sipAddrs := listen.String()
	if tlsListen.IsValid() {
		sipAddrs += " tls " + tlsListen.String()
	}
	log.Info().Str("version", version).Str("sip", sipAddrs).Strs("transports", cfg.SIP.Transports).Strs("flows", flows.Names()).
		Str("rtp", fmt.Sprintf("%s:%d-%d", cfg.RTPBindAddr(), lo, hi)).Str("rtp_source", cfg.RTP.Source).Str("admin", adminAddr).Str("metrics", metricsMode).
		Str("data", cfg.Data.Dir).Msg("cloak is ready")
	if opts.Ready != nil {
		opts.Ready(srv)
	}
	<-ctx.Done()

	// Graceful shutdown: refuse new calls, then drain or hang up.
	srv.Drain()
	active := mgr.Active()
	log.Info().Int("active_calls", active).Str("mode", cfg.Shutdown.Mode).Str("grace", cfg.Shutdown.Grace.String()).Msg("shutting down: new calls get 503")
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
	clu.stop()    // the calls are over: nothing of ours is claimed
	trunks.stop() // unregister while the SIP transport is still open
	_ = srv.Close()
	log.Info().Msg("cloak stopped")
	return nil
}

// channelHeaders is archive.channel_data for the call layer.
func channelHeaders(cd []config.ChannelData) []call.ChannelHeader {
	out := make([]call.ChannelHeader, 0, len(cd))
	for _, h := range cd {
		out = append(out, call.ChannelHeader{Header: h.Header, Key: h.Key})
	}
	return out
}
