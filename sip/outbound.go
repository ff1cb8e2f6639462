package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// Leg is a call cloak places itself: the B2BUA leg towards an agent or a
// transfer target (RFC 3261 §13.2, UAC side). In-dialog requests from the
// far end (BYE, re-INVITE, INFO, REFER) are serialised per leg, as for a
// Session.
type Leg struct {
	srv *Server
	d   *sipgo.DialogClientSession
	log zerolog.Logger
	id  string

	mu sync.Mutex
	dialogState
	onRefer func(target string) int
	reason  string
	byeSent bool

	// REFER subscription (RFC 3515) kept open until Notify ends it.
	referCSeq uint32
	// trunk is the trunk the leg left by, "" for none.
	trunk string
}

// Trunk is the name of the trunk the leg left by, "" when none.
func (l *Leg) Trunk() string { return l.trunk }

// route asks the Router for a tel: target's trunk, other than those
// already tried.
func (s *Server) route(target string, tried []string) (Route, error) {
	num := target[len("tel:"):]
	if i := strings.IndexByte(num, ';'); i >= 0 {
		num = num[:i]
	}
	num = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '(' || r == ')' {
			return -1 // RFC 3966 §5.1.1 visual separators
		}
		return r
	}, num)
	if len(num) < 2 || len(num) > 16 || num[0] != '+' || strings.Trim(num[1:], "0123456789") != "" {
		return Route{}, &DialError{Err: fmt.Errorf("tel: target is not a global number (+ and up to 15 digits): %w", ErrNoTrunk)}
	}
	if s.cfg.Router == nil {
		return Route{}, &DialError{Status: 503, Err: ErrNoTrunk}
	}
	r, err := s.cfg.Router.Route(num, tried)
	if err != nil {
		return Route{}, &DialError{Status: 503, Err: err}
	}
	return r, nil
}

// logTarget is the target as logged: through a trunk, the trunk's name
// only (the Request-URI's user part is the dialled number).
func logTarget(target, trunk string) string {
	if trunk != "" {
		return "trunk:" + trunk
	}
	return target
}

// DialOptions configures an outbound leg.
type DialOptions struct {
	// Local is our media address and port for the offer.
	Local LocalSDP
	// FromUser is the user part of our From header (default "cloak").
	FromUser string
	// OnRinging runs on each 180/183.
	OnRinging func()
	// OnEarlyMedia, when set, runs on a 183 Session Progress that carries
	// an SDP answer (RFC 3960 §3, the gateway model): the far end plays
	// its own progress (announcements, ringback) at that address until
	// the final answer. It runs on the dialog's goroutine: do not block.
	OnEarlyMedia func(Media)
	// Log is the logger of the interaction the leg belongs to.
	Log zerolog.Logger
	// Route is a preloaded Route set (RFC 3261 §8.1.2), e.g. the Path an
	// agent registered with (RFC 3327 §5.3): the INVITE goes to the first
	// entry and names the target in its Request-URI.
	Route []string
	// SRTP is the leg's SRTP policy (sdp_srtp.go): mandatory offers
	// RTP/SAVP with SDES keys when the target is reached over TLS (or
	// OverPlainSIP), and fails the dial (488) when it is not.
	SRTP SRTPPolicy
}

// DialError is a failed outbound call; StatusCode is the final response
// (486 busy, 603 decline, 487 when we cancelled…), 0 for transport failures.
type DialError struct {
	Status int
	Err    error
}

func (e *DialError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("call failed: %d", e.Status)
	}
	return "call failed: " + e.Err.Error()
}
func (e *DialError) Unwrap() error   { return e.Err }
func (e *DialError) StatusCode() int { return e.Status }

// ErrNoTLS is the DialError cause for a sips: or transport=tls target
// when SIP over TLS is not configured (sip.transports lacks tls).
var ErrNoTLS = errors.New("TLS target but SIP over TLS is not configured")

// ErrDialCanceled is the DialError cause when ctx ended before an answer
// (cloak sent CANCEL).
var ErrDialCanceled = errors.New("call attempt cancelled")

// Dial places a call to target (a SIP URI) with our SDP offer and returns
// the answered leg once the ACK is sent. Ending ctx before the answer
// cancels the attempt (CANCEL, RFC 3261 §9).
//
// A tel: target (RFC 3966; "tel:+442079460000") leaves through the trunk
// Config.Router picks for the number, with its credentials answering
// 401/407 challenges, its codec order and its proxy.
//
// When a trunk fails the call (no answer from it, 408, 5xx) and another
// trunk takes the number, the call is tried there, up to maxTrunkAttempts
// trunks; busy, declined or cancelled calls are not retried.
func (s *Server) Dial(ctx context.Context, target string, o DialOptions) (*Leg, error) {
	if !strings.HasPrefix(strings.ToLower(target), "tel:") {
		return s.dial(ctx, target, Route{}, o)
	}
	var tried []string
	var last error
	for len(tried) < maxTrunkAttempts {
		r, err := s.route(target, tried)
		if err != nil {
			if last != nil {
				return nil, last
			}
			return nil, err
		}
		leg, err := s.dial(ctx, r.URI, r, o)
		if err == nil || !trunkFailover(err) || ctx.Err() != nil {
			return leg, err
		}
		o.Log.Info().Str("trunk", r.Trunk).Int("status", statusOf(err, 0)).Msg("trunk failed the call: trying the next one")
		tried, last = append(tried, r.Trunk), err
	}
	return nil, last
}

// maxTrunkAttempts bounds the trunks one outbound call is tried on.
const maxTrunkAttempts = 3

// trunkFailover reports whether a failed attempt through a trunk may be
// tried on another: the trunk did not answer or failed itself (RFC 3261
// §21.4.9 408, §21.5 5xx), as opposed to the callee being busy or
// declining (486, 6xx) or cloak cancelling.
func trunkFailover(err error) bool {
	var de *DialError
	if !errors.As(err, &de) || errors.Is(err, ErrDialCanceled) || errors.Is(err, ErrNoTLS) {
		return false
	}
	return de.Status == 0 || de.Status == 408 || (de.Status >= 500 && de.Status < 600)
}

// dial places one call to target, through route's trunk when route names
// one (its call slot is released unless a leg holds it).
func (s *Server) dial(ctx context.Context, target string, route Route, o DialOptions) (*Leg, error) {
	defer func() {
		if route.Release != nil {
			route.Release()
		}
	}()
	var uri siplib.Uri
	if err := siplib.ParseUri(target, &uri); err != nil {
		return nil, &DialError{Err: fmt.Errorf("target %q: %w", target, err)}
	}
	if o.Local.SessionID == 0 {
		o.Local.SessionID = uint64(time.Now().UnixNano() & 0x7fffffffffff)
	}
	o.Local.Version++
	codecs := route.Codecs
	if len(codecs) == 0 {
		codecs = SupportedCodecs()
	}
	// RFC 3261 §26.2.2 / RFC 5630: a sips: target, or transport=tls,
	// goes over TLS (sipgo's Request.Transport reads the URI the same way).
	tr, _ := uri.UriParams.Get("transport")
	if route.Transport != "" {
		tr = route.Transport
	}
	if tr == "" {
		tr = "udp"
	}
	if (uri.IsEncrypted() || strings.EqualFold(tr, "tls")) && !s.servesTLS() {
		return nil, &DialError{Err: fmt.Errorf("target %q: %w", target, ErrNoTLS)}
	}
	if uri.IsEncrypted() && strings.EqualFold(tr, "udp") {
		tr = "tls"
	}
	pol := o.SRTP.ForTransport(tr)
	o.Local.Crypto = nil
	var err error
	switch {
	case pol.offersSRTP():
		if o.Local.Crypto, err = NewOfferCrypto(pol.suites()); err != nil {
			return nil, &DialError{Err: err}
		}
	case pol.Mode == SRTPMandatory:
		return nil, &DialError{Status: 488, Err: fmt.Errorf("target %q over %s: srtp mandatory, keys may travel only over TLS: %w", target, tr, ErrSRTPPolicy)}
	}
	body, err := BuildOffer(o.Local, codecs, DefaultEventPayloadType, audio.SendRecv)
	if err != nil {
		keepOffered(o.Local.Crypto, nil)
		return nil, &DialError{Err: err}
	}
	// Every way out before the answer zeroes our offered keys.
	offered := o.Local.Crypto
	answered := false
	defer func() {
		if !answered {
			keepOffered(offered, nil)
		}
	}()
	tlsRoutable(&uri)
	ua := s.dialogUA(tr, &uri)
	from := o.FromUser
	if from == "" {
		from = "cloak"
	}
	fromHdr := &siplib.FromHeader{Address: siplib.Uri{User: from, Host: s.contact.Addr().String(), Port: int(s.contact.Port())}, Params: siplib.NewParams()}
	fromHdr.Params.Add("tag", siplib.GenerateTagN(16))
	hdrs := []siplib.Header{siplib.NewHeader("Content-Type", "application/sdp"), fromHdr, siplib.NewHeader("Allow", Allowed)}
	for _, r := range o.Route { // the agent's Path (RFC 3327)
		hdrs = append(hdrs, siplib.NewHeader("Route", r))
	}
	if route.Proxy != "" {
		hdrs = append(hdrs, siplib.NewHeader("Route", "<"+route.Proxy+">"))
	}
	req := siplib.NewRequest(siplib.INVITE, uri)
	req.SetBody(body)
	if route.Transport != "" {
		req.SetTransport(strings.ToUpper(tr)) // not in the URI: see Route.URI
	} else if t, _ := uri.UriParams.Get("transport"); t != "" {
		req.SetTransport(t)
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	d, err := ua.WriteInvite(ctx, req)
	if err != nil {
		return nil, &DialError{Err: err}
	}
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: route.Username, Password: route.Password, OnResponse: func(res *siplib.Response) error {
		if c := res.Contact(); c != nil {
			tlsRoutable(&c.Address) // the remote target of ACK and BYE
		}
		if res.StatusCode == 183 && o.OnEarlyMedia != nil && len(res.Body()) > 0 {
			if m, err := ParseAnswer(res.Body()); err == nil {
				o.OnEarlyMedia(m)
			}
		}
		if (res.StatusCode == 180 || res.StatusCode == 183) && o.OnRinging != nil {
			o.OnRinging()
		}
		return nil
	}})
	if err != nil {
		var re *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &re):
			return nil, &DialError{Status: re.Res.StatusCode, Err: err}
		case ctx.Err() != nil:
			return nil, &DialError{Status: 487, Err: ErrDialCanceled}
		}
		return nil, &DialError{Err: err}
	}
	m, err := ParseAnswerSRTP(d.InviteResponse.Body(), offered)
	if err == nil {
		answered = true
		o.Local.Crypto = keepOffered(offered, m.SRTP)
	}
	if err != nil {
		// RFC 3261 §13.2.2.4: ACK the 2xx, then end the dialog.
		_ = d.Ack(ctx)
		bctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = d.Bye(bctx)
		cancel()
		return nil, &DialError{Status: 488, Err: err}
	}
	if err := d.Ack(ctx); err != nil {
		return nil, &DialError{Err: err}
	}
	leg := &Leg{srv: s, d: d, id: newID(), dialogState: dialogState{local: o.Local, media: m, srtp: pol}, trunk: route.Trunk}
	lc := o.Log.With().Str("leg", leg.id)
	if route.Trunk != "" {
		lc = lc.Str("trunk", route.Trunk)
	}
	leg.log = lc.Logger()
	s.legs.Store(d.ID, leg)
	// Forget the leg when its dialog ends, and free its trunk's call
	// slot. AfterFunc parks no goroutine for the life of the call; the
	// function runs once the context ends.
	release := route.Release
	route.Release = nil // the leg holds the slot now
	context.AfterFunc(d.Context(), func() {
		s.legs.Delete(d.ID)
		leg.mu.Lock()
		leg.media.SRTP.Zero() // SRTP contexts keep copies of their own
		leg.mu.Unlock()
		if release != nil {
			release()
		}
	})
	leg.log.Info().Str("target", logTarget(target, route.Trunk)).Str("codec", m.Codec.Name).Str("rtp_remote", m.Remote.String()).Msg("outbound leg answered")
	return leg, nil
}

// SIPCallID is the leg's Call-ID header value.
func (l *Leg) SIPCallID() string { return l.d.InviteRequest.CallID().Value() }

// ID is the leg's short id.
func (l *Leg) ID() string { return l.id }

// Media returns the media agreed with the far end.
func (l *Leg) Media() Media {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.media
}

// Done is closed when the leg's dialog ends.
func (l *Leg) Done() <-chan struct{} { return l.d.Context().Done() }

// Context is cancelled when the leg's dialog ends (Done is its Done). It
// lets callers react to the end with context.AfterFunc or derive contexts
// from it instead of parking a goroutine on Done.
func (l *Leg) Context() context.Context { return l.d.Context() }

// EndReason says why the leg ended ("bye" from the far end, "hangup" by us).
func (l *Leg) EndReason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason
}

// SetCallbacks registers what happens on a re-INVITE (hold), INFO and
// REFER from the far end. onRefer returns the status for the REFER (202 to
// accept, after which the caller must end the subscription with
// NotifyRefer).
func (l *Leg) SetCallbacks(onMedia func(Media) error, onInfo func(string, []byte) int, onRefer func(target string) int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onMedia, l.onInfo, l.onRefer = onMedia, onInfo, onRefer
}

// Hangup sends BYE.
func (l *Leg) Hangup(ctx context.Context) error {
	l.mu.Lock()
	if l.byeSent || l.d.Context().Err() != nil {
		l.mu.Unlock()
		return nil
	}
	l.byeSent = true
	if l.reason == "" {
		l.reason = "hangup"
	}
	l.mu.Unlock()
	err := l.d.Bye(ctx)
	ev := l.log.Info()
	if err != nil {
		ev = ev.Str("bye", err.Error()) // no answer to the BYE: the leg is gone anyway
	}
	ev.Msg("outbound leg hung up by cloak")
	return err
}

func (l *Leg) readBye(req *siplib.Request, tx siplib.ServerTransaction) {
	l.mu.Lock()
	if l.reason == "" {
		l.reason = "bye"
	}
	l.mu.Unlock()
	if err := l.d.ReadBye(req, tx); err != nil {
		l.srv.respond(req, tx, 500, "Server Internal Error")
		return
	}
	l.log.Info().Msg("far end hung up the outbound leg")
}

func (l *Leg) readReinvite(req *siplib.Request, tx siplib.ServerTransaction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answerReoffer(l.srv, l.log, req, tx, &l.d.UA.ContactHDR)
}

func (l *Leg) readInfo(req *siplib.Request, tx siplib.ServerTransaction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answerInfo(l.srv, req, tx)
}

// readRefer handles REFER from the far end (RFC 3515): an agent's softphone
// transferring the caller, which cloak takes as "send the caller into the
// flow named by the Refer-To user part". cloak answers 202 and a NOTIFY
// "100 Trying", keeping the subscription open so the softphone keeps its
// leg (it stays reserved); NotifyRefer ends it.
func (l *Leg) readRefer(req *siplib.Request, tx siplib.ServerTransaction) {
	l.mu.Lock()
	onRefer := l.onRefer
	l.mu.Unlock()
	h := req.GetHeader("Refer-To")
	if h == nil {
		l.srv.respond(req, tx, 400, "Missing Refer-To")
		return
	}
	var uri siplib.Uri
	v := strings.Trim(strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0]), "<>")
	if err := siplib.ParseUri(v, &uri); err != nil || uri.User == "" {
		l.srv.respond(req, tx, 400, "Bad Refer-To")
		return
	}
	code := 403
	if onRefer != nil {
		code = onRefer(uri.User)
	}
	l.srv.respond(req, tx, code, reasonFor(code))
	if code == 202 {
		l.mu.Lock()
		l.referCSeq = req.CSeq().SeqNo
		l.mu.Unlock()
		go l.NotifyRefer(context.Background(), 100, false)
	}
}

// NotifyRefer reports the progress of an accepted REFER with a sipfrag
// NOTIFY (RFC 3515 §2.4.5); final ends the implicit subscription.
func (l *Leg) NotifyRefer(ctx context.Context, status int, final bool) error {
	l.mu.Lock()
	cseq := l.referCSeq
	l.mu.Unlock()
	if cseq == 0 || l.d.Context().Err() != nil {
		return nil
	}
	req := siplib.NewRequest(siplib.NOTIFY, l.d.InviteResponse.Contact().Address)
	state := "active;expires=600"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(siplib.NewHeader("Event", fmt.Sprintf("refer;id=%d", cseq)))
	req.AppendHeader(siplib.NewHeader("Subscription-State", state))
	req.AppendHeader(siplib.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", status, reasonFor(status))))
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.d.Do(nctx, req)
	return err
}
