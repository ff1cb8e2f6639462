package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// Allowed lists the methods cloak answers, for Allow headers (RFC 3261 §20.5).
const Allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY, REGISTER"

// Config configures the SIP server.
type Config struct {
	// Listen is the address both UDP and TCP listen on.
	Listen netip.AddrPort
	// Advertise is the address put in Contact and Via when Listen is
	// unspecified (0.0.0.0 or ::). Defaults to Listen's address.
	Advertise netip.Addr
	// Transports to listen on: "udp", "tcp" (on Listen), "tls" (on
	// TLSListen, with TLS). Default udp and tcp.
	Transports []string
	// TLSListen is the address SIP over TLS listens on (RFC 3261 §26.2;
	// 5061 by convention), used when Transports lists "tls".
	TLSListen netip.AddrPort
	// TLS is the server side of the TLS transport: its certificate (a
	// GetCertificate that may swap it), client authentication, minimum
	// version. Required when Transports lists "tls".
	TLS *tls.Config
	// ClientTLS is used for TLS connections cloak opens (outbound legs to
	// sips: or transport=tls targets): roots to verify the peer and the
	// certificate to present. Nil uses the system roots and no client
	// certificate.
	ClientTLS *tls.Config
	// AllowNets is the allow-list of source networks. Empty allows all.
	AllowNets []netip.Prefix
	// MaxCalls caps concurrent calls; further INVITEs get 503. 0 = no cap.
	MaxCalls int
	// UserAgent is the Server/User-Agent header value.
	UserAgent string
	// Log receives one line per call event; never message bodies.
	Log zerolog.Logger
	// Registrar, when not nil, accepts REGISTER from agents' softphones;
	// without it REGISTER gets 405.
	Registrar *Registrar
	// InviteAuth challenges INVITEs whose From names a user of Registrar
	// (an agent's or supervisor's phone; config sip.invite_auth: users)
	// with the Registrar's digest, nonces and limiter, and accepts them
	// only with that user's credentials (RFC 3261 §22.2); the call then
	// carries Identity.User. INVITEs claiming no such user are not
	// challenged. Off, no INVITE is identified as a user's.
	InviteAuth bool
	// Admission, when not nil, is asked before each new INVITE and each
	// OPTIONS outside a dialog: while it refuses, they get 503 Service
	// Unavailable with Retry-After (see Admission).
	Admission Admission
	// Trunks, when not nil, identifies the trunk of each INVITE outside a
	// dialog (by source address or digest) and reads its numbers.
	Trunks TrunkTable
	// Unknown is what an INVITE from no trunk and no registered agent
	// gets; the zero value allows every source.
	Unknown UnknownPolicy
	// Router, when not nil, places calls to tel: targets through a trunk
	// (Dial).
	Router OutboundRouter
	// Observe, when not nil, receives every SIP message read or written
	// (protocol capture). It runs on the transport's goroutine: it must
	// not block.
	Observe func(Observed)
	// SRTP, when not nil, gives the SRTP policy (rtp.srtp) of a call to
	// the called user part; nil means SRTP off (sdp_srtp.go).
	SRTP func(called string) SRTPPolicy
}

// Handler receives new calls. It is implemented by the call layer.
type Handler interface {
	// HandleCall runs on its own goroutine for each new INVITE that passed
	// validation, and returns when the call is over. It must answer or
	// reject the session; if it returns with the session unanswered, the
	// server rejects it with 500, and if answered and still up, hangs up.
	HandleCall(s *Session)
}

// Stats are the server's counters.
type Stats struct {
	// ParseErrors counts messages that could not be parsed (dropped, and
	// answered 400 or 505 where their start line and Via were readable).
	ParseErrors uint64
	// ParseErrorsBySource splits ParseErrors by source IP; past 1,024
	// sources the rest are counted under "other".
	ParseErrorsBySource map[string]uint64
	Forbidden           uint64 // requests refused by the allow-list (403)
	BadRequests         uint64 // requests refused with 400
	Overloaded          uint64 // 503s sent: call cap, drain, no RTP ports (Session.Reject), admission
	// RefusedBy splits the INVITEs refused with 503 by reason: draining,
	// max_calls, call (Session.Reject) and the Admission's reasons.
	RefusedBy map[string]uint64
	// ProbesRefused counts OPTIONS answered 503 while the Admission
	// refused calls (a dispatcher's probes).
	ProbesRefused uint64
	Calls         uint64 // INVITEs accepted into a session
	Active        int64  // sessions now
	// Requests counts the requests received by method (the methods of
	// countedMethods, the rest as "other"), allowed or not; Responses
	// the final and provisional responses cloak sent by status code
	// (retransmissions of a 2xx not counted).
	Requests  map[string]uint64
	Responses map[int]uint64
}

// ErrDraining is returned by Start after Drain, and reported to callers
// whose INVITE arrives during shutdown.
var ErrDraining = errors.New("server is draining")

// Server is cloak's SIP user agent server (and client for BYE and, later,
// outbound legs).
type Server struct {
	cfg     Config
	handler Handler
	log     zerolog.Logger

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	uaUDP   sipgo.DialogUA
	uaTCP   sipgo.DialogUA
	uaTLS   sipgo.DialogUA // sip: URIs with transport=tls
	uaSIPS  sipgo.DialogUA // sips: URIs (RFC 5630): Contact must be sips too
	contact netip.AddrPort
	// tlsContact is the host:port of the TLS transport in Contact and Via.
	tlsContact netip.AddrPort

	sessions sync.Map     // dialog id -> *Session (calls we answered)
	legs     sync.Map     // dialog id -> *Leg (calls we placed)
	handlers handlerCount // session handlers running; Wait waits for none

	draining    atomic.Bool
	active      atomic.Int64
	forbidden   atomic.Uint64
	badRequests atomic.Uint64
	overloaded  atomic.Uint64
	calls       atomic.Uint64

	refusedBy     reasonCounts
	probesRefused atomic.Uint64

	parseErrors parseStats
	messages    messageCounts // Stats.Requests and Stats.Responses
	slogTarget  atomic.Pointer[slog.Handler]

	cancel context.CancelFunc
	// unobserve unregisters the capture (installObserver) at Close.
	unobserve func()
	ready     sync.WaitGroup
}

// maxUDPMessage is the largest SIP message a UDP datagram carries (65,535
// less the IP and UDP headers).
const maxUDPMessage = 65507

var setSipgoLogger sync.Once

// init lifts sipgo's UDP size cap. sipgo refuses to send any UDP message
// within 200 bytes of a 1500-byte MTU and leaves the switch to TCP to the
// caller; RFC 3261 §18.1.1 asks that switch of requests only, and
// responses go back over the transport the request came on (§18.2.2),
// whatever their size; outbound requests check the size themselves. The
// cap is a package variable of sipgo's read by every transport, so it is
// set here, before any goroutine of the process can be sending (a race
// the detector found when a test's own sipgo peer was already running).
func init() { siplib.UDPMTUSize = maxUDPMessage + 200 }

// NewServer builds a server; Start makes it listen.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if !cfg.Listen.IsValid() {
		return nil, fmt.Errorf("sip: listen address %q is not valid", cfg.Listen)
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []string{"udp", "tcp"}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cloak"
	}
	adv := cfg.Advertise
	if !adv.IsValid() {
		adv = cfg.Listen.Addr()
		if adv.IsUnspecified() {
			adv = netip.MustParseAddr("127.0.0.1")
		}
	}
	s := &Server{cfg: cfg, handler: h, log: cfg.Log, contact: netip.AddrPortFrom(adv, cfg.Listen.Port()),
		tlsContact: netip.AddrPortFrom(adv, cfg.TLSListen.Port())}
	if s.servesTLS() && (cfg.TLS == nil || !cfg.TLSListen.IsValid()) {
		return nil, fmt.Errorf("sip: transport tls needs a TLS configuration and a TLS listen address")
	}
	// Every sipgo logger — the package default, which sipgo keeps in a
	// global and so follows the latest server, and this server's own —
	// writes through safeHandler (logsafe.go): no message bytes in the log.
	sh := sipgoHandlerFor(cfg.Log)
	s.slogTarget.Store(&sh)
	sipgoTarget.Store(&sh)
	slogger := slog.New(newSafeHandler(&s.slogTarget))
	setSipgoLogger.Do(func() {
		siplib.SetDefaultLogger(slog.New(newSafeHandler(&sipgoTarget)))
	})
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(adv.String()),
		sipgo.WithUserAgentTransactionLayerOptions(siplib.WithTransactionLayerUnhandledResponseHandler(s.onStrayResponse))}
	if cfg.ClientTLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(cfg.ClientTLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	s.srv = srv
	// UDP requests we originate (BYE) must leave from the listening socket so
	// that Contact, Via and the source port agree (a known sipgo pitfall:
	// otherwise they leave from an ephemeral port).
	listenStr := cfg.Listen.String()
	udpClient, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slogger), sipgo.WithClientHostname(adv.String()), sipgo.WithClientConnectionAddr(listenStr))
	if err != nil {
		return nil, fmt.Errorf("sip: udp client: %w", err)
	}
	tcpClient, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slogger), sipgo.WithClientHostname(adv.String()))
	if err != nil {
		return nil, fmt.Errorf("sip: tcp client: %w", err)
	}
	s.uaUDP = sipgo.DialogUA{Client: udpClient, ContactHDR: s.contactHeader("udp"), RewriteContact: true}
	s.uaTCP = sipgo.DialogUA{Client: tcpClient, ContactHDR: s.contactHeader("tcp"), RewriteContact: true}
	// TLS connections cloak opens come from an ephemeral port, as TCP's
	// do; Via's sent-by names the TLS listener (sipgo takes its port).
	s.uaTLS = sipgo.DialogUA{Client: tcpClient, ContactHDR: s.contactHeader("tls"), RewriteContact: true}
	s.uaSIPS = sipgo.DialogUA{Client: tcpClient, ContactHDR: s.contactHeader("sips"), RewriteContact: true}

	if cfg.Observe != nil {
		ports := []uint16{cfg.Listen.Port()}
		if s.servesTLS() {
			ports = append(ports, cfg.TLSListen.Port())
		}
		s.unobserve = installObserver(cfg.Observe, ports...)
	}
	srv.OnInvite(s.guard(s.onInvite))
	srv.OnAck(s.guard(s.onAck))
	srv.OnBye(s.guard(s.onBye))
	srv.OnCancel(s.guard(s.onCancel))
	srv.OnOptions(s.guard(s.onOptions))
	srv.OnInfo(s.guard(s.onInfo))
	srv.OnRefer(s.guard(s.onRefer))
	srv.OnRegister(s.guard(s.onRegister))
	srv.OnNoRoute(s.guard(s.onUnknown))
	return s, nil
}

func maxLevel(a, b zerolog.Level) zerolog.Level {
	if a > b {
		return a
	}
	return b
}

// contactHeader is our Contact for a transport: udp, tcp, tls
// (sip:…;transport=tls) or sips (sips:…, RFC 5630 §3: TLS implied, no
// transport parameter).
func (s *Server) contactHeader(transport string) siplib.ContactHeader {
	uri := siplib.Uri{Scheme: "sip", User: "cloak", Host: s.contact.Addr().String(), Port: int(s.contact.Port())}
	switch transport {
	case "udp":
	case "sips":
		uri.Scheme = "sips"
		uri.Port = int(s.tlsContact.Port())
	case "tls":
		uri.Port = int(s.tlsContact.Port())
		fallthrough
	default:
		uri.UriParams = siplib.NewParams()
		uri.UriParams.Add("transport", transport)
	}
	return siplib.ContactHeader{Address: uri}
}

// servesTLS reports whether Transports lists tls.
func (s *Server) servesTLS() bool {
	for _, t := range s.cfg.Transports {
		if strings.EqualFold(t, "tls") {
			return true
		}
	}
	return false
}

// dialogUA picks the user agent, and so the Contact, for a dialog on
// transport whose peer addressed us (or we address it) with uri: a sips
// Request-URI needs a sips Contact (RFC 3261 §8.1.1.8, §12.1.1).
func (s *Server) dialogUA(transport string, uri *siplib.Uri) *sipgo.DialogUA {
	switch {
	case uri != nil && uri.IsEncrypted():
		return &s.uaSIPS
	case strings.EqualFold(transport, "tls"):
		return &s.uaTLS
	case strings.EqualFold(transport, "udp"):
		return &s.uaUDP
	}
	return &s.uaTCP
}

// ListenError is a transport Start could not open; Transport says which
// ("udp", "tcp", "tls") and Addr where.
type ListenError struct {
	Transport string
	Addr      netip.AddrPort
	Err       error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("sip: listen %s %s: %v", e.Transport, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Start listens on the configured transports and returns once they are
// ready; serving goes on until Close.
func (s *Server) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(ctx)
	errc := make(chan error, len(s.cfg.Transports))
	readyc := make(chan struct{}, len(s.cfg.Transports))
	ctx = context.WithValue(ctx, readyKey{}, readyc)
	for _, tr := range s.cfg.Transports {
		go func() {
			if err := s.listenAndServe(ctx, tr); err != nil && ctx.Err() == nil {
				addr := s.cfg.Listen
				if strings.EqualFold(tr, "tls") {
					addr = s.cfg.TLSListen
				}
				errc <- &ListenError{Transport: strings.ToLower(tr), Addr: addr, Err: err}
			}
		}()
	}
	for range s.cfg.Transports {
		select {
		case <-readyc:
		case err := <-errc:
			s.cancel()
			return err
		case <-time.After(5 * time.Second):
			s.cancel()
			return fmt.Errorf("sip: listen %s: timed out", s.cfg.Listen)
		}
	}
	if !s.cfg.Listen.Addr().IsLoopback() && len(s.cfg.AllowNets) == 0 && !s.cfg.Unknown.Reject {
		s.log.Warn().Str("listen", s.cfg.Listen.String()).Msg("SIP listens beyond loopback, sip.allow is empty and sip.unknown is allow: every source may call; SIP scanners find public servers within hours")
	}
	return nil
}

// listenAndServe opens the socket of one transport, wrapped so that no
// message sipgo cannot parse reaches it (malformed.go), and serves it until
// ctx ends.
func (s *Server) listenAndServe(ctx context.Context, transport string) error {
	var lc net.ListenConfig
	addr := s.cfg.Listen.String()
	switch strings.ToLower(transport) {
	case "udp":
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); _ = pc.Close() }()
		readyOf(ctx) <- struct{}{}
		return s.srv.ServeUDP(&guardedPacketConn{PacketConn: pc, srv: s, parser: siplib.NewParser()})
	case "tcp":
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); _ = l.Close() }()
		readyOf(ctx) <- struct{}{}
		return s.srv.ServeTCP(&guardedListener{Listener: l, srv: s})
	case "tls":
		// RFC 3261 §26.2: TLS over TCP. The guard reads the decrypted
		// stream, as it reads TCP's; the handshake runs on the
		// connection's first read, on its own goroutine, so a slow
		// client holds no other.
		l, err := lc.Listen(ctx, "tcp", s.cfg.TLSListen.String())
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); _ = l.Close() }()
		readyOf(ctx) <- struct{}{}
		hl := &handshakeListener{Listener: l, conf: s.cfg.TLS, allow: s.allowed, refused: func() { s.forbidden.Add(1) }}
		return s.srv.ServeTLS(&guardedListener{Listener: hl, srv: s})
	}
	return fmt.Errorf("%w: %q", ErrTransport, transport)
}

// ErrTransport is returned by Start for a transport cloak does not serve.
var ErrTransport = errors.New("unsupported SIP transport")

func readyOf(ctx context.Context) chan<- struct{} {
	return ctx.Value(readyKey{}).(chan struct{})
}

type readyKey struct{}

// Drain stops taking new calls: INVITEs outside a dialog get 503 from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// Active returns the number of sessions in progress.
func (s *Server) Active() int { return int(s.active.Load()) }

// Sessions calls fn for each session in progress.
func (s *Server) Sessions(fn func(*Session)) {
	s.sessions.Range(func(_, v any) bool { fn(v.(*Session)); return true })
}

// Wait blocks until every session handler has returned or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.handlers.idle():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handlerCount counts running session handlers. Unlike a WaitGroup it
// allows a handler to start while Wait is waiting with none running (an
// INVITE taken just before Drain): WaitGroup forbids an Add from zero
// concurrent with Wait, and the race detector rightly flags it.
type handlerCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while n is 0
}

func (c *handlerCount) add() {
	c.mu.Lock()
	if c.n == 0 {
		c.zero = make(chan struct{})
	}
	c.n++
	c.mu.Unlock()
}

func (c *handlerCount) done() {
	c.mu.Lock()
	c.n--
	if c.n == 0 {
		close(c.zero)
		c.zero = nil
	}
	c.mu.Unlock()
}

// idle returns a channel closed once no handler runs.
func (c *handlerCount) idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.zero
}

// Close stops listening and releases the user agent.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.unobserve != nil {
		s.unobserve()
	}
	return s.ua.Close()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	pe, peBy := s.parseErrors.snapshot()
	reqs, ress := s.messages.snapshot()
	return Stats{Requests: reqs, Responses: ress,
		ParseErrors: pe, ParseErrorsBySource: peBy,
		Forbidden: s.forbidden.Load(), BadRequests: s.badRequests.Load(),
		Overloaded: s.overloaded.Load(), Calls: s.calls.Load(), Active: s.active.Load(),
		RefusedBy: s.refusedBy.snapshot(), ProbesRefused: s.probesRefused.Load(),
	}
}

// guard applies the checks every request goes through before its handler:
// the source allow-list (403) and the mandatory headers of RFC 3261 §8.1.1
// (400). ACKs get no response, by rule; they are dropped.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *siplib.Request, tx siplib.ServerTransaction) {
		defer s.recoverHandler(req, tx)
		s.messages.request(req.Method)
		if !s.allowed(req.Source()) {
			s.forbidden.Add(1)
			s.log.Debug().Str("src", req.Source()).Str("method", req.Method.String()).Msg("sip request refused by allow-list")
			if !req.IsAck() {
				s.respond(req, tx, 403, "Forbidden")
			}
			return
		}
		if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
			// RFC 3261 §21.5.6; the response itself speaks SIP/2.0.
			s.badRequests.Add(1)
			s.log.Debug().Str("src", req.Source()).Str("method", req.Method.String()).Msg("sip request refused: version not supported")
			if !req.IsAck() {
				res := siplib.NewResponseFromRequest(req, 505, "Version Not Supported", nil)
				res.SipVersion = "SIP/2.0"
				s.send(tx, res)
			}
			return
		}
		if missing := missingHeader(req); missing != "" {
			s.badRequests.Add(1)
			s.log.Debug().Str("src", req.Source()).Str("method", req.Method.String()).Str("missing", missing).Msg("sip request refused")
			if !req.IsAck() {
				s.respond(req, tx, 400, "Missing "+missing)
			}
			return
		}
		if cseq := req.CSeq(); cseq.MethodName != req.Method && !(req.IsAck() && cseq.MethodName == siplib.INVITE) {
			s.badRequests.Add(1)
			if !req.IsAck() {
				s.respond(req, tx, 400, "CSeq Method Mismatch")
			}
			return
		}
		h(req, tx)
	}
}

func (s *Server) allowed(src string) bool {
	if len(s.cfg.AllowNets) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		host, _, herr := net.SplitHostPort(src)
		if herr != nil {
			return false
		}
		a, aerr := netip.ParseAddr(host)
		if aerr != nil {
			return false
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	a := ap.Addr().Unmap()
	for _, p := range s.cfg.AllowNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// missingHeader names the first mandatory header the request lacks
// (RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Via; Max-Forwards is not
// enforced because real trunks omit it).
func missingHeader(req *siplib.Request) string {
	switch {
	case req.Via() == nil:
		return "Via"
	case req.From() == nil:
		return "From"
	case req.To() == nil:
		return "To"
	case req.CallID() == nil:
		return "Call-ID"
	case req.CSeq() == nil:
		return "CSeq"
	case req.IsInvite() && req.Contact() == nil:
		return "Contact"
	}
	return ""
}

func (s *Server) respond(req *siplib.Request, tx siplib.ServerTransaction, code int, reason string, hdrs ...siplib.Header) {
	res := siplib.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if code == 503 {
		s.overloaded.Add(1)
	}
	s.send(tx, res)
}

// send sends a response on its transaction; a failure is logged with the
// status only.
func (s *Server) send(tx siplib.ServerTransaction, res *siplib.Response) {
	s.messages.response(res.StatusCode)
	if err := tx.Respond(res); err != nil {
		s.log.Debug().Str("error", safeError(err)).Int("status", res.StatusCode).Msg("sip respond failed")
	}
}

// recoverHandler turns a panic in a request handler into 500 and one log
// line naming the method, Call-ID and CSeq: the panic value is not logged,
// since it may quote the message.
func (s *Server) recoverHandler(req *siplib.Request, tx siplib.ServerTransaction) {
	v := recover()
	if v == nil {
		return
	}
	ev := s.log.Error().Str("src", req.Source()).Str("method", req.Method.String())
	if id := req.CallID(); id != nil {
		ev = ev.Str("call_id", id.Value())
	}
	if cs := req.CSeq(); cs != nil {
		ev = ev.Uint32("cseq", cs.SeqNo)
	}
	ev.Str("panic", fmt.Sprintf("%T", v)).Msg("sip handler panicked: answered 500")
	if !req.IsAck() {
		res := siplib.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
		s.messages.response(500)
		_ = tx.Respond(res)
	}
}

// onOptions answers OPTIONS (RFC 3261 §11) with what cloak supports. One
// outside a dialog while the Admission refuses calls gets 503 with
// Retry-After instead, as an INVITE would (§11.2: the response to OPTIONS
// is the one an INVITE would get), so a dispatcher probing with OPTIONS
// (Kamailio's) takes the node out until it recovers. Inside a dialog it
// is a keep-alive of a call already up and is answered 200 whatever the
// load.
func (s *Server) onOptions(req *siplib.Request, tx siplib.ServerTransaction) {
	if to := req.To(); to == nil || !to.Params.Has("tag") {
		if reason, ra := s.admission(); reason != "" {
			s.refuse(req, tx, reason, ra)
			return
		}
	}
	s.respond(req, tx, 200, "OK",
		siplib.NewHeader("Allow", Allowed),
		siplib.NewHeader("Accept", "application/sdp"),
		siplib.NewHeader("Supported", ""))
}

func (s *Server) onUnknown(req *siplib.Request, tx siplib.ServerTransaction) {
	s.respond(req, tx, 405, "Method Not Allowed", siplib.NewHeader("Allow", Allowed))
}

func (s *Server) onCancel(req *siplib.Request, tx siplib.ServerTransaction) {
	// A CANCEL that matched an INVITE transaction was handled by the
	// transaction layer (200 to the CANCEL, 487 to the INVITE). One that
	// reaches us matched nothing (RFC 3261 §9.2).
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// lookup finds the session of an in-dialog request.
func (s *Server) lookup(req *siplib.Request) *Session {
	id, err := siplib.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	v, ok := s.sessions.Load(id)
	if !ok {
		return nil
	}
	return v.(*Session)
}

// onStrayResponse handles responses no transaction matches. A 2xx to an
// INVITE we sent is the far end retransmitting because our ACK was lost:
// RFC 3261 §13.2.2.4 has the UAC ACK every retransmission. Others are
// dropped.
func (s *Server) onStrayResponse(res *siplib.Response) {
	if !res.IsSuccess() || res.CSeq() == nil || res.CSeq().MethodName != siplib.INVITE {
		return
	}
	id, err := siplib.DialogIDFromResponse(res)
	if err != nil {
		return
	}
	if v, ok := s.legs.Load(id); ok {
		leg := v.(*Leg)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := leg.d.Ack(ctx); err == nil {
			leg.log.Debug().Msg("re-sent ACK for a retransmitted 2xx")
		}
	}
}

// lookupLeg finds the outbound leg of an in-dialog request from its far end.
func (s *Server) lookupLeg(req *siplib.Request) *Leg {
	id, err := siplib.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	v, ok := s.legs.Load(id)
	if !ok {
		return nil
	}
	return v.(*Leg)
}

func (s *Server) onAck(req *siplib.Request, tx siplib.ServerTransaction) {
	if sess := s.lookup(req); sess != nil {
		sess.readAck(req, tx)
	}
}

func (s *Server) onBye(req *siplib.Request, tx siplib.ServerTransaction) {
	if sess := s.lookup(req); sess != nil {
		sess.readBye(req, tx)
		return
	}
	if leg := s.lookupLeg(req); leg != nil {
		leg.readBye(req, tx)
		return
	}
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (s *Server) onInfo(req *siplib.Request, tx siplib.ServerTransaction) {
	if sess := s.lookup(req); sess != nil {
		sess.readInfo(req, tx)
		return
	}
	if leg := s.lookupLeg(req); leg != nil {
		leg.readInfo(req, tx)
		return
	}
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// onRefer accepts REFER only from the far end of a leg cloak placed (an
// agent sending the caller into a secure flow); callers may not transfer.
func (s *Server) onRefer(req *siplib.Request, tx siplib.ServerTransaction) {
	if leg := s.lookupLeg(req); leg != nil {
		leg.readRefer(req, tx)
		return
	}
	if s.lookup(req) != nil {
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (s *Server) onInvite(req *siplib.Request, tx siplib.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if sess := s.lookup(req); sess != nil {
			sess.readReinvite(req, tx)
			return
		}
		if leg := s.lookupLeg(req); leg != nil {
			leg.readReinvite(req, tx)
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	// Who is calling comes first: an unknown source learns nothing of the
	// node's load.
	ident, ok := s.identify(req, tx)
	if !ok {
		return
	}
	if s.draining.Load() {
		s.refuse(req, tx, RefusedDraining, 30*time.Second)
		return
	}
	if reason, ra := s.admitCall(); reason != "" {
		s.refuse(req, tx, reason, ra)
		return
	}
	if max := s.cfg.MaxCalls; max > 0 {
		if n := s.active.Add(1); n > int64(max) {
			s.active.Add(-1)
			// Debug, not one warning per refused INVITE (a flood would
			// flood the log): the overload monitor's "calls" signal logs
			// the episode once (docs/PERFORMANCE.md, "Admission control").
			s.log.Debug().Int("max_calls", max).Msg("call refused: concurrent call cap reached")
			s.refuse(req, tx, RefusedMaxCalls, 5*time.Second)
			return
		}
	} else {
		s.active.Add(1)
	}
	defer s.active.Add(-1)

	pol := s.srtpPolicy(req)
	if len(req.Body()) == 0 && pol.Mode == SRTPMandatory && !pol.Keys {
		// A late offer: ours would have to carry keys over plain SIP.
		s.log.Info().Str("call_id", req.CallID().Value()).Msg("call refused: srtp mandatory, keys may not travel on this transport")
		s.respond(req, tx, 488, "Not Acceptable Here", siplib.NewHeader("Warning", `305 cloak "SRTP required over TLS"`))
		return
	}
	var offer *Offer
	if body := req.Body(); len(body) > 0 {
		ct := req.ContentType()
		if ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			s.respond(req, tx, 415, "Unsupported Media Type", siplib.NewHeader("Accept", "application/sdp"))
			return
		}
		o, err := ParseOfferSRTP(body, pol, nil)
		if err != nil {
			code := statusOf(err, 400)
			s.log.Info().Str("call_id", req.CallID().Value()).Int("status", code).Err(err).Msg("call refused: SDP offer")
			if code == 488 {
				s.respond(req, tx, 488, "Not Acceptable Here", siplib.NewHeader("Warning", `305 cloak "Incompatible media format"`))
			} else {
				s.respond(req, tx, code, "Bad Request")
			}
			return
		}
		offer = o
	}

	ua := s.dialogUA(req.Transport(), &req.Recipient)
	dlg, err := ua.ReadInvite(req, tx)
	if err != nil {
		s.log.Debug().Str("error", safeError(err)).Msg("sip: read invite")
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	s.calls.Add(1)
	sess := newSession(s, dlg, req, tx, offer, ident, pol)
	s.sessions.Store(dlg.ID, sess)
	s.handlers.add()
	defer func() {
		sess.finish()
		s.sessions.Delete(dlg.ID)
		s.handlers.done()
	}()
	s.messages.response(100)
	if err := dlg.Respond(100, "Trying", nil); err != nil {
		return
	}
	s.handler.HandleCall(sess)
}

// srtpPolicy is the SRTP policy of an INVITE's call (Config.SRTP, by
// the called user part) on the transport it came over.
func (s *Server) srtpPolicy(req *siplib.Request) DialogSRTP {
	if s.cfg.SRTP == nil {
		return DialogSRTP{}
	}
	user := req.Recipient.User
	if user == "" && req.To() != nil {
		user = req.To().Address.User
	}
	return s.cfg.SRTP(user).ForTransport(req.Transport())
}

// statusOf returns the SIP status an error carries, or def.
func statusOf(err error, def int) int {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return sc.StatusCode()
	}
	return def
}

// SetT1 sets T1, the round-trip estimate RFC 3261's timers are built on
// (§17.1.1.1, default 500 ms), and the timers derived from it: INVITE and
// non-INVITE transactions time out after 64*T1, and so does waiting for
// the ACK of an answer (§13.3.1.4). T2, the cap on the retransmission
// interval, stays 4 s unless T1 is longer. sipgo keeps the timers in
// package variables, so this is process-wide: call it once, before any
// server or client is made.
func SetT1(t1 time.Duration) {
	siplib.SetTimers(t1, max(4*time.Second, t1), 5*time.Second)
}
