package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/sdes"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// Session is one inbound call: an INVITE server dialog. The call layer
// answers or rejects it, and is told of re-INVITEs and INFO through the
// callbacks it sets with SetCallbacks.
//
// sipgo hands every request to its own goroutine, so in-dialog requests of
// one call (ACK, INFO, BYE, re-INVITE) can arrive out of order. A Session
// serialises them under mu; no callback runs concurrently with another of
// the same session.
//
// Responses to the INVITE keep their order on the wire: a provisional is
// never sent after, or concurrently with, the final response (RFC 3261
// §17.2.1: the transaction leaves Proceeding with the final). Each final
// (Answer, Reject) is decided under mu and then waits, on provMu, for a
// provisional already being written; a provisional asked for once the final
// is decided is refused with ErrAnswered. sipgo's transaction drops a 1xx
// in Completed or Accepted on its own too, but silently; this makes it an
// error the caller of Ringing sees.
type Session struct {
	srv *Server
	dlg *sipgo.DialogServerSession
	req *siplib.Request
	tx  siplib.ServerTransaction
	log zerolog.Logger

	id     string
	source netip.AddrPort
	ident  Identity // trunk and numbers, settled before the session was made

	// provMu is held while a provisional response is written; a final
	// takes it once (after deciding) so it never overtakes one in flight.
	provMu sync.Mutex

	mu sync.Mutex
	dialogState
	offer     *Offer // nil for a late offer (INVITE without SDP)
	answered  bool
	rejected  bool
	ackBody   chan []byte // late offer: the SDP answer carried by the ACK
	reAcks    chan uint32 // CSeq numbers of ACKs to our re-INVITE 2xx
	endReason string
	byeSent   bool
	finished  chan struct{}
	finishOne sync.Once
}

// Errors a Session reports.
var (
	ErrCanceled = errors.New("call canceled by caller")
	ErrEnded    = errors.New("call has ended")
	ErrNoAnswer = errors.New("late offer: ACK carried no usable SDP answer")
	// ErrNoAck: the answer was never acknowledged (RFC 3261 §13.3.1.4);
	// the session was ended with a BYE.
	ErrNoAck    = errors.New("answer not acknowledged: no ACK within 64*T1")
	ErrAnswered = errors.New("call already answered")
)

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newSession(srv *Server, dlg *sipgo.DialogServerSession, req *siplib.Request, tx siplib.ServerTransaction, offer *Offer, ident Identity, pol DialogSRTP) *Session {
	s := &Session{
		srv: srv, dlg: dlg, req: req, tx: tx, offer: offer, ident: ident,
		id:       newID(),
		ackBody:  make(chan []byte, 1),
		reAcks:   make(chan uint32, 4),
		finished: make(chan struct{}),
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		s.source = ap
	}
	s.srtp = pol
	if offer != nil {
		s.media = offer.Media
	}
	lc := srv.log.With().Str("call", s.id)
	if ident.Trunk != "" {
		lc = lc.Str("trunk", ident.Trunk)
	}
	s.log = lc.Logger()
	s.log.Info().Str("sip_call_id", req.CallID().Value()).Str("from", s.Caller()).Str("to", s.Called()).
		Str("src", req.Source()).Str("transport", req.Transport()).Bool("late_offer", offer == nil).Msg("call offered")
	return s
}

// ID is cloak's short identifier of the call, used in every log line.
func (s *Session) ID() string { return s.id }

// SIPCallID is the Call-ID header of the dialog.
func (s *Session) SIPCallID() string { return s.req.CallID().Value() }

// Called is the user part of the Request-URI: it picks what answers.
func (s *Session) Called() string {
	if u := s.req.Recipient.User; u != "" {
		return u
	}
	if to := s.req.To(); to != nil {
		return to.Address.User
	}
	return ""
}

// Caller is the caller's number: "anonymous" when the caller asked for
// privacy (RFC 3323), the E.164 number the trunk's rules read (from
// P-Asserted-Identity when the trunk is trusted, RFC 3325), else the user
// part of the From header.
func (s *Session) Caller() string {
	if s.ident.Private {
		return Anonymous
	}
	if s.ident.Caller != "" {
		return s.ident.Caller
	}
	if f := s.req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

// Trunk is the name of the trunk the call came in on, "" when none.
func (s *Session) Trunk() string { return s.ident.Trunk }

// Identity is the call's trunk, numbers, privacy and redirection
// history as settled at arrival. With privacy requested, Caller is
// "anonymous" here too.
func (s *Session) Identity() Identity {
	id := s.ident
	id.Redirects = append([]string(nil), id.Redirects...)
	if id.Private {
		id.Caller = Anonymous
	}
	return id
}

// Source is the transport address the INVITE came from.
func (s *Session) Source() netip.AddrPort { return s.source }

// Transport is "UDP" or "TCP".
func (s *Session) Transport() string { return s.req.Transport() }

// Log is the session's logger (carries the call id).
func (s *Session) Log() zerolog.Logger { return s.log }

// Offer returns the negotiated media of the caller's offer; ok is false for a
// late offer, whose media is known only once Answer returns.
func (s *Session) Offer() (m Media, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offer == nil {
		return Media{}, false
	}
	return s.offer.Media, true
}

// Media returns the media currently agreed (after Answer, and after each
// re-INVITE).
func (s *Session) Media() Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media
}

// SetCallbacks registers what the call layer does on a re-INVITE that
// changes the media (hold, resume, new address or codec) and on INFO. The
// media callback returns an error to refuse the change (488). The INFO
// callback returns the status to answer.
func (s *Session) SetCallbacks(onMedia func(Media) error, onInfo func(contentType string, body []byte) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMedia, s.onInfo = onMedia, onInfo
}

// Done is closed when the dialog ends: BYE either way, CANCEL, or failure.
func (s *Session) Done() <-chan struct{} { return s.dlg.Context().Done() }

// Context is cancelled when the dialog ends (Done is its Done). Contexts
// derived from it end with the call without a goroutine watching Done.
func (s *Session) Context() context.Context { return s.dlg.Context() }

// EndReason says why the dialog ended ("bye", "hangup", "cancel", …).
func (s *Session) EndReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endReason == "" && errors.Is(context.Cause(s.dlg.Context()), siplib.ErrTransactionCanceled) {
		return "cancel"
	}
	return s.endReason
}

// Ringing sends 180 Ringing (RFC 3261 §13.3.1.1). Send it only when
// something rings: a route that answers at once answers with no 180
// (only 100 Trying, which the server sends on every INVITE), because a
// 180 and a 200 microseconds apart can be reordered by a multi-worker
// proxy and nobody hears that ringing anyway. It returns ErrAnswered,
// sending nothing, once the call was answered or rejected.
//
// cloak has no 183 Session Progress: no route plays audio before it
// answers. While an agent's phone rings, the caller has already been
// answered and hears ringback as ordinary audio (call/agentleg.go).
// Early media would need a 183 carrying the SDP answer (RFC 3261
// §13.3.1.1, RFC 3960 §2) with the same answer repeated in the 200;
// reliable provisionals (RFC 3262, PRACK) would not be needed for it.
func (s *Session) Ringing() error {
	return s.provisional(180, "Ringing")
}

// provisional sends a 1xx to the INVITE unless a final was decided.
func (s *Session) provisional(code int, reason string) error {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	s.mu.Lock()
	final := s.answered || s.rejected
	s.mu.Unlock()
	if final {
		return ErrAnswered
	}
	s.srv.messages.response(code)
	return s.dlg.Respond(code, reason, nil)
}

// finalDecided waits until no provisional is being written: called by
// Answer and Reject after they marked the call answered or rejected, so
// that no provisional goes out after (or with) their final response.
func (s *Session) finalDecided() {
	s.provMu.Lock()
	s.provMu.Unlock() // empty on purpose: a barrier

}

// Reject ends an unanswered call with a final non-2xx status; a 503 is
// counted under RefusedCall.
func (s *Session) Reject(code int, reason string) error {
	return s.reject(code, reason, RefusedCall)
}

// Refuse ends an unanswered call with 503 Service Unavailable and a
// Retry-After (RFC 3261 §21.5.4), counted in Stats.RefusedBy under
// refusal (RefusedPorts, RefusedDisk).
func (s *Session) Refuse(refusal string) error {
	return s.reject(503, "Service Unavailable", refusal)
}

func (s *Session) reject(code int, reason, refusal string) error {
	s.mu.Lock()
	if s.answered || s.rejected {
		s.mu.Unlock()
		return ErrAnswered
	}
	s.rejected = true
	s.endReason = fmt.Sprintf("rejected %d", code)
	s.mu.Unlock()
	s.finalDecided()
	var hdrs []siplib.Header
	if code == 503 {
		// Overloaded counts every 503 cloak sends, whichever layer decided
		// it (here: the call layer found no free RTP port).
		s.srv.overloaded.Add(1)
		s.srv.refusedBy.add(refusal)
		hdrs = append(hdrs, siplib.NewHeader("Retry-After", "5"))
	}
	s.log.Info().Int("status", code).Msg("call rejected")
	s.srv.messages.response(code)
	return s.dlg.Respond(code, reason, nil, hdrs...)
}

// Answer sends 200 OK with our SDP and waits for the ACK. With an offer in
// the INVITE the body is the answer; with a late offer it is our offer and
// the answer is taken from the ACK (RFC 3261 §13.2.1, RFC 3264 §4) and
// handed to the media callback. It returns the media agreed when it
// returns; a re-INVITE may already have changed it, and the callback, not
// this value, is the one to act on.
func (s *Session) Answer(local LocalSDP) (Media, error) {
	s.mu.Lock()
	if s.answered || s.rejected {
		s.mu.Unlock()
		return Media{}, ErrAnswered
	}
	if local.SessionID == 0 {
		local.SessionID = uint64(time.Now().UnixNano() & 0x7fffffffffff)
	}
	local.Version++
	s.local = local
	var body []byte
	var err error
	if s.offer != nil {
		body, err = s.offer.Answer(local)
	} else {
		if s.srtp.offersSRTP() {
			if local.Crypto, err = NewOfferCrypto(s.srtp.suites()); err != nil {
				s.mu.Unlock()
				return Media{}, fmt.Errorf("build sdp: %w", err)
			}
			s.local = local
		}
		body, err = BuildOffer(local, SupportedCodecs(), DefaultEventPayloadType, audio.SendRecv)
	}
	if err != nil {
		s.mu.Unlock()
		return Media{}, fmt.Errorf("build sdp: %w", err)
	}
	s.answered = true
	late := s.offer == nil
	s.mu.Unlock()
	s.finalDecided()

	s.srv.messages.response(200)
	if err := s.dlg.Respond(200, "OK", body,
		siplib.NewHeader("Content-Type", "application/sdp"),
		siplib.NewHeader("Allow", Allowed)); err != nil {
		if s.dlg.Context().Err() != nil {
			return Media{}, ErrCanceled
		}
		if s.dlg.LoadState() == siplib.DialogStateEstablished {
			// The 200 went out and was retransmitted until its
			// transaction ended (64*T1) with no ACK: RFC 3261 §13.3.1.4
			// has the session ended with a BYE, so the caller's side,
			// which may think the call is up, is told it is not.
			s.log.Info().Err(err).Msg("answered but no ACK came: ending the call with BYE")
			s.endAs("no ACK")
			s.hangupNow()
			return Media{}, ErrNoAck
		}
		return Media{}, fmt.Errorf("answer: %w", err)
	}
	if late {
		var ack []byte
		select {
		case ack = <-s.ackBody:
		default:
		}
		m, err := ParseAnswerSRTP(ack, local.Crypto)
		s.mu.Lock()
		s.local.Crypto = keepOffered(local.Crypto, m.SRTP)
		s.mu.Unlock()
		if err != nil {
			s.log.Info().Err(err).Msg("late offer: no usable answer in ACK, hanging up")
			s.hangupNow()
			return Media{}, ErrNoAnswer
		}
		// Applied under the lock, like every re-INVITE, so the call layer
		// sees media changes in the order they happened.
		s.mu.Lock()
		s.media = m
		if s.onMedia != nil {
			_ = s.onMedia(m)
		}
		s.mu.Unlock()
	}
	if s.dlg.Context().Err() != nil {
		return Media{}, ErrEnded
	}
	s.log.Info().Str("codec", s.Media().Codec.Name).Str("rtp_remote", s.Media().Remote.String()).Int("rtp_local", local.Port).Msg("call answered")
	return s.Media(), nil
}

// Hangup ends the call: BYE when answered, 480 when not yet answered.
func (s *Session) Hangup(ctx context.Context) error {
	s.mu.Lock()
	if s.dlg.Context().Err() != nil || s.byeSent {
		s.mu.Unlock()
		return nil
	}
	answered := s.answered
	rejected := s.rejected
	if answered {
		s.byeSent = true
		if s.endReason == "" {
			s.endReason = "hangup"
		}
	}
	s.mu.Unlock()
	if rejected {
		return nil
	}
	if !answered {
		return s.Reject(480, "Temporarily Unavailable")
	}
	err := s.dlg.Bye(ctx)
	if err != nil {
		s.log.Debug().Err(err).Msg("bye")
	}
	s.log.Info().Msg("call hung up by cloak")
	return err
}

// endAs records why the call ended, unless an earlier cause already has.
func (s *Session) endAs(reason string) {
	s.mu.Lock()
	if s.endReason == "" {
		s.endReason = reason
	}
	s.mu.Unlock()
}

// hangupNow hangs up on cloak's own account, where no caller's context
// bounds the wait: the BYE's transaction gets 5 s.
func (s *Session) hangupNow() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Hangup(ctx)
}

// finish runs when the handler returned: make sure the call is over.
func (s *Session) finish() {
	s.finishOne.Do(func() {
		s.mu.Lock()
		answered, rejected := s.answered, s.rejected
		s.mu.Unlock()
		if s.dlg.Context().Err() == nil {
			if !answered && !rejected {
				_ = s.Reject(500, "Server Internal Error")
			} else if answered {
				s.hangupNow()
			}
		}
		_ = s.dlg.Close()
		s.mu.Lock()
		s.media.SRTP.Zero() // the dialog's keys: SRTP contexts keep copies of their own
		if s.offer != nil {
			s.offer.Media.SRTP.Zero()
		}
		s.mu.Unlock()
		s.log.Info().Str("reason", s.EndReason()).Msg("call ended")
		close(s.finished)
	})
}

func (s *Session) readAck(req *siplib.Request, tx siplib.ServerTransaction) {
	cseq := req.CSeq().SeqNo
	if cseq == s.req.CSeq().SeqNo {
		if s.offer == nil {
			select {
			case s.ackBody <- req.Body():
			default:
			}
		}
		if err := s.dlg.ReadAck(req, tx); err != nil {
			s.log.Debug().Err(err).Msg("ack")
		}
		return
	}
	select {
	case s.reAcks <- cseq:
	default:
	}
}

func (s *Session) readBye(req *siplib.Request, tx siplib.ServerTransaction) {
	s.endAs("bye")
	if err := s.dlg.ReadBye(req, tx); err != nil {
		s.srv.respond(req, tx, 500, "Server Internal Error")
		return
	}
	s.log.Info().Msg("caller hung up")
}

// readReinvite handles a re-INVITE: hold (sendonly/inactive/0.0.0.0),
// resume, a new media address or codec (RFC 3261 §14.2, RFC 3264 §8). A
// refused change leaves the session as it was (488).
func (s *Session) readReinvite(req *siplib.Request, tx siplib.ServerTransaction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := s.dlg.LoadState()
	if !s.answered || state < siplib.DialogStateEstablished || (s.offer == nil && state < siplib.DialogStateConfirmed) {
		// RFC 3261 §14.2: an INVITE arriving while the first is pending
		// (for a late offer, until the ACK brought the answer).
		s.srv.respond(req, tx, 500, "Server Internal Error", siplib.NewHeader("Retry-After", "1"))
		return
	}
	res := s.answerReoffer(s.srv, s.log, req, tx, s.contact())
	if res == nil {
		return
	}
	// RFC 6026 / RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx until
	// the ACK arrives.
	go s.retransmit2xx(tx, res, req.CSeq().SeqNo)
}

func (s *Session) contact() siplib.Header {
	return &s.srv.dialogUA(s.req.Transport(), &s.req.Recipient).ContactHDR
}

func (s *Session) retransmit2xx(tx siplib.ServerTransaction, res *siplib.Response, cseq uint32) {
	if !strings.EqualFold(s.req.Transport(), "udp") {
		return // reliable transports do not retransmit
	}
	interval := siplib.T1
	deadline := time.NewTimer(64 * siplib.T1)
	defer deadline.Stop()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case got := <-s.reAcks:
			if got == cseq {
				return
			}
		case <-t.C:
			if err := tx.Respond(res); err != nil {
				return
			}
			interval = min(2*interval, siplib.T2)
			t.Reset(interval)
		case <-deadline.C:
			return
		case <-s.dlg.Context().Done():
			return
		}
	}
}

// readInfo hands an INFO body to the call layer (RFC 6086); its bodies may
// carry digits and are never logged.
func (s *Session) readInfo(req *siplib.Request, tx siplib.ServerTransaction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answerInfo(s.srv, req, tx)
}

// dialogState is what both kinds of dialog (Session, which we answered,
// and Leg, which we placed) keep for in-dialog requests: the media agreed,
// our SDP, and the call layer's callbacks. The owner's mutex guards it.
type dialogState struct {
	local   LocalSDP
	media   Media
	srtp    DialogSRTP // the dialog's SRTP policy on its transport
	onMedia func(Media) error
	onInfo  func(contentType string, body []byte) int
}

// answerReoffer handles the offer of a re-INVITE (hold, resume, new address
// or codec; RFC 3261 §14.2, RFC 3264 §8). It returns the 200 to send, or
// nil once it has refused the change, leaving the session as it was.
func (d *dialogState) answerReoffer(srv *Server, log zerolog.Logger, req *siplib.Request, tx siplib.ServerTransaction, contact siplib.Header) *siplib.Response {
	media, body, code := reoffer(req.Body(), &d.local, d.media, d.srtp)
	if code != 200 {
		srv.respond(req, tx, code, reasonFor(code))
		return nil
	}
	if media != d.media && d.onMedia != nil {
		if err := d.onMedia(media); err != nil {
			log.Info().Err(err).Msg("re-INVITE refused")
			retireSRTP(media.SRTP, d.media.SRTP)
			srv.respond(req, tx, statusOf(err, 488), "Not Acceptable Here")
			return nil
		}
	}
	retireSRTP(d.media.SRTP, media.SRTP)
	if media != d.media {
		log.Info().Str("rtp_remote", media.Remote.String()).Str("direction", media.Direction.String()).Str("codec", media.Codec.Name).Msg("media updated by re-INVITE")
	}
	d.media = media
	res := siplib.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(siplib.HeaderClone(contact))
	srv.messages.response(200)
	if err := tx.Respond(res); err != nil {
		return nil
	}
	return res
}

// answerInfo hands an INFO body to the call layer (RFC 6086); its bodies
// may carry digits and are never logged.
func (d *dialogState) answerInfo(srv *Server, req *siplib.Request, tx siplib.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.Split(h.Value(), ";")[0]))
	}
	body := req.Body()
	code := 200
	switch {
	case d.onInfo != nil:
		code = d.onInfo(ct, body)
	case len(body) > 0:
		code = 415
	}
	var hdrs []siplib.Header
	if code == 415 {
		hdrs = append(hdrs, siplib.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
	}
	srv.respond(req, tx, code, reasonFor(code), hdrs...)
}

// reoffer answers an offer received inside a dialog (re-INVITE, RFC 3264
// §8): the new media and our answer, or a status to refuse with (the session
// then stays as it was). An empty body asks for our offer: we offer what we
// have now.
func reoffer(b []byte, local *LocalSDP, cur Media, pol DialogSRTP) (Media, []byte, int) {
	local.Version++
	if len(b) == 0 {
		l := *local
		l.Crypto = nil
		if c := cur.SRTP; c != nil {
			// Our offer keeps the session's suite and key (RFC 4568
			// §7.1.4 lets a new offer keep them).
			l.Crypto = []sdes.Crypto{{Tag: c.Tag, Key: c.Local}}
		}
		body, err := BuildOffer(l, []audio.Codec{cur.Codec}, cur.EventPT, cur.Direction)
		if err != nil {
			return cur, nil, 500
		}
		return cur, body, 200
	}
	offer, err := ParseOfferSRTP(b, pol, cur.SRTP)
	if err != nil {
		return cur, nil, statusOf(err, 488)
	}
	body, err := offer.Answer(*local)
	if err != nil {
		retireSRTP(offer.Media.SRTP, cur.SRTP)
		return cur, nil, 500
	}
	return offer.Media, body, 200
}

// retireSRTP zeroes the keys of old that next does not carry on: the
// peer's key of a replaced offer, ours when a new one was made.
func retireSRTP(old, next *SRTP) {
	if old == nil {
		return
	}
	keep := func(k *sdes.Key) bool { return next != nil && (k == next.Local || k == next.Remote) }
	if !keep(old.Local) {
		old.Local.Zero()
	}
	if !keep(old.Remote) {
		old.Remote.Zero()
	}
}

// reasonFor gives the reason phrase of the statuses cloak sends.
func reasonFor(code int) string {
	if r, ok := map[int]string{
		100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
		415: "Unsupported Media Type", 469: "Bad Info Package", 481: "Call/Transaction Does Not Exist",
		486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
		500: "Server Internal Error", 503: "Service Unavailable", 603: "Decline",
	}[code]; ok {
		return r
	}
	return "Error"
}
