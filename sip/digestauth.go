package sip

import (
	"strings"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/rs/zerolog"

	"github.com/cloak-voip/cloak/authlimit"
)

// authenticate checks a request's digest credentials against reg (RFC
// 3261 §22.2, §22.4: a UAS or registrar challenges with 401 and
// WWW-Authenticate). It is the one check behind REGISTER, a trunk's
// inbound_auth INVITEs and users' INVITEs (sip.invite_auth): the same
// nonces, nonce-count replay refusal, stale handling and failure limiter
// (Registrar's doc). It answers the request itself and returns ok false
// unless the credentials are good; user is the authenticated username.
//
// On reg == the server's Registrar (agents' and supervisors' passwords),
// a username locked by guesses from elsewhere does not lock out the
// source that last registered it successfully (its own phone).
func (s *Server) authenticate(reg *Registrar, req *siplib.Request, tx siplib.ServerTransaction) (user string, ok bool) {
	now := reg.now()
	method := req.Method.String()
	ip := sourceIP(req.Source())
	keys := []string{"ip:" + ip}
	lim := reg.Limiter
	refuse := func(why string) {
		if req.IsInvite() {
			s.forbidden.Add(1)
		}
		s.log.Debug().Str("src", req.Source()).Msg(method + " refused: " + why)
		s.respond(req, tx, 403, "Forbidden")
	}
	challenge := func(level func() *zerolog.Event, why, stale string) {
		level().Str("src", req.Source()).Msg(method + " " + why)
		s.respond(req, tx, 401, "Unauthorized", reg.challenge(now, stale)...)
	}
	if lim != nil {
		if d := lim.Check(keys...); d.Verdict == authlimit.Locked {
			refuse("source locked")
			return "", false
		}
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		challenge(s.log.Debug, "challenged", "")
		return "", false
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil {
		challenge(s.log.Debug, "challenged: unreadable credentials", "")
		return "", false
	}
	user = creds.Username
	if len(user) <= maxUsernameLen {
		keys = append(keys, "user:"+user)
	} else {
		user = user[:maxUsernameLen] + "..."
	}
	if lim != nil {
		check := keys
		if len(keys) == 2 && reg == s.cfg.Registrar && reg.goodSource(user, ip) {
			check = keys[:1] // the user's own phone: only its source's record counts
		}
		switch d := lim.Check(check...); d.Verdict {
		case authlimit.Locked:
			refuse("locked")
			return "", false
		case authlimit.Backoff:
			// Too soon after a failure: refuse unchecked, and count it,
			// so a flood reaches the lock at once.
			s.logLocks(reg, lim.Fail(keys...), ip, user)
			refuse("back-off")
			return "", false
		}
	}
	switch reg.check(creds, method, now) {
	case authOK:
	case authNone:
		challenge(s.log.Debug, "challenged: unusable credentials", "")
		return "", false
	case authStale:
		challenge(s.log.Debug, "challenged: stale nonce", "true")
		return "", false
	case authReplay:
		challenge(s.log.Info, "refused: nonce-count replayed", "false")
		return "", false
	case authBad:
		if lim != nil {
			if locks := lim.Fail(keys...); len(locks) > 0 {
				s.logLocks(reg, locks, ip, user)
				refuse("wrong credentials, now locked")
				return "", false
			}
		}
		challenge(s.log.Info, "refused: wrong credentials", "false")
		return "", false
	}
	if lim != nil {
		lim.Succeed(keys...)
	}
	return creds.Username, true
}

// knows reports whether user has a password with r: an agent or a
// supervisor whose phone may register.
func (r *Registrar) knows(user string) bool {
	if r == nil || r.Password == nil || user == "" || len(user) > maxUsernameLen {
		return false
	}
	_, ok := r.Password(user)
	return ok
}

// claimedUser is the user an INVITE's From claims to be when that is a
// user of the Registrar (agents[] with a password), "" otherwise: a
// caller whose From is anything else is not challenged.
func (s *Server) claimedUser(req *siplib.Request) string {
	if !s.cfg.InviteAuth || s.cfg.Registrar == nil {
		return ""
	}
	f := req.From()
	if f == nil || !strings.EqualFold(f.Address.Scheme, "sip") && !strings.EqualFold(f.Address.Scheme, "sips") {
		return ""
	}
	if u := f.Address.User; s.cfg.Registrar.knows(u) {
		return u
	}
	return ""
}
