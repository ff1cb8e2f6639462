package trunk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/rs/zerolog"
)

// Registration states (RegState.State).
const (
	StateOff          = "off"          // register.enabled is false
	StateUnregistered = "unregistered" // not yet tried, or unregistered at shutdown
	StateRegistering  = "registering"  // the first REGISTER is in flight
	StateRegistered   = "registered"   // the carrier holds our binding until Expires
	StateFailed       = "failed"       // the last attempt failed; retried after a back-off
)

// RegState is a trunk's outbound registration as the API shows it.
type RegState struct {
	// State is off, unregistered, registering, registered or failed.
	State string `json:"state"`
	// LastError is why the last attempt failed ("401 Unauthorized",
	// "timeout"); never a credential.
	LastError string `json:"last_error,omitempty"`
	// Expires is when the carrier drops the binding unless refreshed.
	Expires time.Time `json:"expires,omitzero"`
	// Refreshes counts successful REGISTERs.
	Refreshes int `json:"refreshes"`
	// Path and ServiceRoute are what the registrar returned (RFC 3327
	// §5, RFC 3608 §6); the Service-Route is the route of the trunk's
	// outbound INVITEs.
	Path         []string `json:"path,omitempty"`
	ServiceRoute []string `json:"service_route,omitempty"`
}

// Requester is the SIP side the trunk's REGISTER and OPTIONS go out by
// (sip.Server).
type Requester interface {
	Requester(transport string) (*sipgo.Client, siplib.ContactHeader)
}

// Back-off of re-registration after failures: doubling from
// backoffMin, capped at backoffMax, with ±20 % jitter so a fleet does
// not retry in step.
const (
	backoffMin = time.Second
	backoffMax = 5 * time.Minute
	// refreshShare is when a binding is refreshed, as a share of the
	// lifetime granted (RFC 3261 §10.2.4 leaves it to the UA).
	refreshShare = 0.85
	// requestTimeout bounds one REGISTER transaction (with its challenge).
	requestTimeout = 10 * time.Second
)

// backoff is the wait before attempt n+1 after n failures in a row.
func backoff(n int, jitter float64) time.Duration {
	d := backoffMin
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return time.Duration(float64(d) * (1 + 0.4*(jitter-0.5)))
}

// ErrRealm: the carrier challenged with a realm other than auth.realm;
// cloak does not answer it.
var ErrRealm = errors.New("challenge realm is not auth.realm")

// registrar is one trunk's registration client.
type registrar struct {
	t      *Trunk
	client *sipgo.Client
	// contact is our Contact, with the trunk's auth user as user part.
	contact siplib.ContactHeader
	callID  string
	fromTag string
	cseq    uint32
	log     zerolog.Logger
}

// Start runs each trunk's registration and OPTIONS keep-alive until ctx
// ends; at the end, registrations are removed (Expires: 0) within a few
// seconds. It returns a function that waits for that.
func (s *Set) Start(ctx context.Context, rq Requester, log zerolog.Logger) (wait func()) {
	var wg sync.WaitGroup
	for _, t := range s.trunks {
		client, contact := rq.Requester(t.cfg.Transport)
		tlog := log.With().Str("trunk", t.cfg.Name).Logger()
		if t.cfg.Register.Enabled {
			c := contact
			c.Address.User = t.cfg.Auth.User
			r := &registrar{t: t, client: client, contact: c, log: tlog,
				callID: siplib.GenerateTagN(16) + "@cloak", fromTag: siplib.GenerateTagN(12)}
			wg.Add(1)
			go func() { defer wg.Done(); r.run(ctx) }()
		}
		if t.cfg.OptionsInterval > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); t.keepAlive(ctx, client, contact, tlog) }()
		}
	}
	return wg.Wait
}

// run registers, refreshes before expiry, and re-registers after failures
// with back-off, until ctx ends; then it unregisters.
func (r *registrar) run(ctx context.Context) {
	failures := 0
	for {
		granted, err := r.register(ctx, r.t.expires())
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait = backoff(failures, rand.Float64())
			r.t.setReg(func(st *RegState) { st.State, st.LastError = StateFailed, err.Error() })
			r.log.Warn().Str("error", err.Error()).Int("failures", failures).Str("retry_in", wait.Round(time.Millisecond).String()).Msg("trunk registration failed")
		} else {
			if failures > 0 || r.t.regState().Refreshes == 1 {
				r.log.Info().Str("expires", granted.String()).Msg("trunk registered")
			}
			failures = 0
			wait = time.Duration(float64(granted) * refreshShare)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	if r.t.regState().State == StateRegistered {
		uctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := r.register(uctx, 0)
		cancel()
		if err == nil {
			r.log.Info().Msg("trunk unregistered")
		}
	}
}

// expires is the lifetime asked for.
func (t *Trunk) expires() time.Duration {
	if e := t.cfg.Register.Expires; e > 0 {
		return e
	}
	return time.Hour
}

// register sends one REGISTER (answering a digest challenge once) asking
// for expires, and returns the lifetime granted.
func (r *registrar) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	t := r.t
	if expires > 0 {
		// A refresh keeps "registered" (the binding holds until Expires)
		// and a retry keeps "failed": "registering" is the first try only.
		t.setReg(func(st *RegState) {
			if st.State == StateUnregistered {
				st.State = StateRegistering
			}
		})
	}
	host := t.host
	domain := host
	if i := strings.LastIndexByte(domain, ':'); i > 0 && !strings.HasSuffix(domain, "]") {
		domain = domain[:i]
	}
	ruri := siplib.Uri{Scheme: "sip", Host: domain}
	if h, p, err := splitHostPort(host); err == nil {
		ruri.Host, ruri.Port = h, p
	}
	if t.cfg.Transport != "udp" {
		ruri.UriParams = siplib.NewParams()
		ruri.UriParams.Add("transport", t.cfg.Transport)
	}
	req := siplib.NewRequest(siplib.REGISTER, ruri)
	aor := siplib.Uri{Scheme: "sip", User: t.cfg.Auth.User, Host: ruri.Host}
	from := &siplib.FromHeader{Address: aor, Params: siplib.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&siplib.ToHeader{Address: aor, Params: siplib.NewParams()})
	callID := siplib.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	r.cseq++
	req.AppendHeader(&siplib.CSeqHeader{SeqNo: r.cseq, MethodName: siplib.REGISTER})
	c := r.contact
	req.AppendHeader(&c)
	req.AppendHeader(siplib.NewHeader("Expires", strconv.Itoa(int(expires.Seconds()))))
	req.AppendHeader(siplib.NewHeader("Supported", "path"))
	if p := t.cfg.Register.OutboundProxy; p != "" {
		req.AppendHeader(siplib.NewHeader("Route", "<"+t.outboundProxyURI()+">"))
	}
	req.SetBody(nil)

	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := r.client.Do(rctx, req)
	if err != nil {
		return 0, transportError(err, rctx)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		if err := r.checkRealm(res); err != nil {
			return 0, err
		}
		res, err = r.client.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: t.cfg.Auth.User, Password: t.password.Reveal()})
		if cs := req.CSeq(); cs != nil {
			r.cseq = cs.SeqNo
		}
		if err != nil {
			return 0, transportError(err, rctx)
		}
	}
	if res.StatusCode == 423 && expires > 0 {
		// Interval Too Brief (RFC 3261 §10.2.8): ask for Min-Expires.
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 && n <= 86400 {
				return r.register(ctx, time.Duration(n)*time.Second)
			}
		}
	}
	if !res.IsSuccess() {
		return 0, fmt.Errorf("%d %s", res.StatusCode, safeReason(res.Reason))
	}
	if expires == 0 {
		t.setReg(func(st *RegState) { st.State, st.Expires = StateUnregistered, time.Time{} })
		return 0, nil
	}
	granted := grantedExpires(res, r.contact, expires)
	if granted <= 0 {
		return 0, errors.New("registrar granted no lifetime")
	}
	var path, sr []string
	for _, h := range res.GetHeaders("Path") {
		path = append(path, splitHeader(h.Value())...)
	}
	for _, h := range res.GetHeaders("Service-Route") {
		sr = append(sr, splitHeader(h.Value())...)
	}
	t.mu.Lock()
	t.serviceRoute = ""
	if len(sr) > 0 {
		t.serviceRoute = strings.Trim(strings.SplitN(sr[0], ">", 2)[0], "< ")
	}
	t.mu.Unlock()
	t.setReg(func(st *RegState) {
		st.State, st.LastError, st.Expires = StateRegistered, "", time.Now().Add(granted)
		st.Refreshes++
		st.Path, st.ServiceRoute = path, sr
	})
	return granted, nil
}

// checkRealm refuses a challenge of a realm other than auth.realm (when
// set), so credentials are only ever answered to the realm they are for.
func (r *registrar) checkRealm(res *siplib.Response) error {
	want := r.t.cfg.Auth.Realm
	if want == "" {
		return nil
	}
	h := res.GetHeader("WWW-Authenticate")
	if h == nil {
		h = res.GetHeader("Proxy-Authenticate")
	}
	if h == nil {
		return fmt.Errorf("%d without a challenge", res.StatusCode)
	}
	ch, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return fmt.Errorf("%d with an unreadable challenge", res.StatusCode)
	}
	if ch.Realm != want {
		return ErrRealm
	}
	return nil
}

// grantedExpires is the lifetime the registrar granted our binding: the
// expires parameter of our Contact in the 200, else Expires, else what
// was asked (RFC 3261 §10.2.4).
func grantedExpires(res *siplib.Response, ours siplib.ContactHeader, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		for _, v := range splitHeader(h.Value()) {
			var u siplib.Uri
			_, err := siplib.ParseAddressValue(v, &u, nil)
			if err != nil || u.User != ours.Address.User || u.Host != ours.Address.Host || u.Port != ours.Address.Port {
				continue
			}
			if i := strings.Index(strings.ToLower(v), ";expires="); i >= 0 {
				n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(v[i+9:], ";", 2)[0]))
				if err == nil && n >= 0 {
					return time.Duration(n) * time.Second
				}
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// transportError names a failure without quoting the message.
func transportError(err error, ctx context.Context) error {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timeout")
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timeout")
	}
	return errors.New("transport error")
}

// safeReason keeps a reason phrase from the wire short and printable.
func safeReason(s string) string {
	b := []byte(s)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

func splitHostPort(hp string) (string, int, error) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return "", 0, errors.New("no port")
	}
	p, err := strconv.Atoi(hp[i+1:])
	if err != nil {
		return "", 0, err
	}
	return strings.Trim(hp[:i], "[]"), p, nil
}

// outboundProxyURI is register.outbound_proxy as a loose-routing URI.
func (t *Trunk) outboundProxyURI() string {
	u := "sip:" + t.cfg.Register.OutboundProxy + ";lr"
	if t.cfg.Transport != "udp" {
		u += ";transport=" + t.cfg.Transport
	}
	return u
}

func (t *Trunk) setReg(f func(*RegState)) {
	t.mu.Lock()
	f(&t.reg)
	t.mu.Unlock()
}

func (t *Trunk) regState() RegState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.reg
	st.Path = append([]string(nil), st.Path...)
	st.ServiceRoute = append([]string(nil), st.ServiceRoute...)
	return st
}
