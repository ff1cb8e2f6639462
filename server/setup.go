package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sdes"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

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

// DemoGatewayURLFile is the file under data.dir where serve writes the URL
// of the demo payment gateway it started (no flows.endpoints.payment_gateway
// configured), so `cloak fraud release|reject` can capture or void there.
const DemoGatewayURLFile = "demo-gateway.url"

// startDemoGateway serves ivr.DemoGateway on a loopback port until ctx ends
// and returns its URL.
func startDemoGateway(ctx context.Context) (string, error) {
	addr, err := serveHTTP(ctx, "127.0.0.1:0", ivr.DemoGateway(nil))
	if err != nil {
		return "", err
	}
	return "http://" + addr + "/pay", nil
}

// startAdmin serves the HTTP API until ctx ends and returns its address;
// with conf not nil, over HTTPS.
func startAdmin(ctx context.Context, listen string, conf *tls.Config, h http.Handler) (string, error) {
	if conf == nil {
		return serveHTTP(ctx, listen, h)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	return serveListener(ctx, tls.NewListener(l, conf), h), nil
}

// serveHTTP serves h on listen until ctx ends (then shuts down, waiting
// up to 2 s for requests in flight) and returns the address it listens on.
func serveHTTP(ctx context.Context, listen string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	return serveListener(ctx, l, h), nil
}

// serveListener serves h on l until ctx ends and returns l's address.
func serveListener(ctx context.Context, l net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return l.Addr().String()
}

// newDirectory builds the agents and queues from configuration.
func newDirectory(cfg config.Config) (*acd.Directory, error) {
	var agents []acd.AgentConfig
	for _, a := range cfg.Agents {
		agents = append(agents, acd.AgentConfig{Name: a.Name, URI: a.URI, Password: a.Password, Queues: a.Queues, SRTP: a.SRTP})
	}
	var queues []acd.QueueConfig
	for _, q := range cfg.Queues {
		queues = append(queues, acd.QueueConfig{Name: q.Name, Timeout: q.Timeout, RingTimeout: q.RingTimeout,
			HoldPrompt: q.HoldPrompt, MaskDTMF: q.DTMF == "mask", Collect: q.CollectWhileTalking})
	}
	return acd.NewDirectory(agents, queues)
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

// authLimiter builds REGISTER's failed-attempt limiter from sip.auth
// (backoff 0 means none, which authlimit spells negative).
func authLimiter(a config.SIPAuth) (*authlimit.Limiter, error) {
	backoff := a.Backoff
	if backoff == 0 {
		backoff = -1
	}
	l, err := authlimit.New(authlimit.Config{MaxFailures: a.MaxFailures, LockFor: a.LockFor, Backoff: backoff})
	if err != nil {
		return nil, fmt.Errorf("sip.auth: %w", err)
	}
	return l, nil
}

// srtpPolicy reads rtp.srtp, rtp.srtp_routes and rtp.srtp_over_plain_sip:
// the policy of the legs cloak places, and the per-call policy the SIP
// server asks by called user part. It warns, once at start, when keys may
// travel in clear SIP, and when SRTP is asked for but SIP over TLS is not
// configured (mandatory calls and legs would then all be refused).
func srtpPolicy(cfg config.Config, log zerolog.Logger) (sip.SRTPPolicy, func(called string) sip.SRTPPolicy, error) {
	def, err := sip.ParseSRTPMode(cfg.RTP.SRTP)
	if err != nil {
		return sip.SRTPPolicy{}, nil, fmt.Errorf("rtp.srtp: %w", err)
	}
	routes := make(map[string]sip.SRTPMode, len(cfg.RTP.SRTPRoutes))
	anyOn := def != sip.SRTPOff
	for r, name := range cfg.RTP.SRTPRoutes {
		m, err := sip.ParseSRTPMode(name)
		if err != nil {
			return sip.SRTPPolicy{}, nil, fmt.Errorf("rtp.srtp_routes.%s: %w", r, err)
		}
		routes[r] = m
		anyOn = anyOn || m != sip.SRTPOff
	}
	plain := cfg.RTP.SRTPOverPlainSIP
	if plain && anyOn {
		log.Warn().Bool("rtp.srtp_over_plain_sip", true).Msg("SRTP keys may travel in SDP over UDP/TCP SIP: whoever reads the signalling reads the keys, and SRTP then protects nothing against them; use SIP over TLS")
	}
	if anyOn && !plain && !cfg.SIPTLSEnabled() {
		log.Warn().Str("rtp.srtp", cfg.RTP.SRTP).Msg("SRTP is on but SIP over TLS is not configured (sip.transports): no SDES key can be exchanged, so every call and leg that must be encrypted is refused with 488")
	}
	suites, err := sdes.ParseOrder(cfg.RTP.SRTPSuites)
	if err != nil {
		return sip.SRTPPolicy{}, nil, fmt.Errorf("rtp.srtp_suites: %w", err)
	}
	pol := sip.SRTPPolicy{Mode: def, OverPlainSIP: plain, Suites: suites}
	byRoute := func(called string) sip.SRTPPolicy {
		if m, ok := routes[called]; ok {
			return sip.SRTPPolicy{Mode: m, OverPlainSIP: plain, Suites: suites}
		}
		return pol
	}
	return pol, byRoute, nil
}
