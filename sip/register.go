package sip

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Registrar accepts REGISTER from agents' softphones with digest
// authentication (RFC 3261 §10 and §22.4, RFC 2617 qop=auth) and reports
// bindings to the call layer.
type Registrar struct {
	// Realm is the digest realm (default "cloak").
	Realm string
	// Password returns the password of a user, ok false for unknown users.
	Password func(user string) (password string, ok bool)
	// OnBinding is told of every accepted binding change: contact is the
	// softphone's Contact URI; expires 0 means the user logged out.
	OnBinding func(user string, contact string, expires time.Duration)
	// MaxExpires caps the binding lifetime (default 3600 s).
	MaxExpires time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time // issued nonce -> issue time
}

const nonceLifetime = 5 * time.Minute

func (r *Registrar) realm() string {
	if r.Realm == "" {
		return "cloak"
	}
	return r.Realm
}

func (r *Registrar) newNonce(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	n := hex.EncodeToString(b[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nonces == nil {
		r.nonces = map[string]time.Time{}
	}
	for k, t := range r.nonces { // keep the table small
		if now.Sub(t) > nonceLifetime {
			delete(r.nonces, k)
		}
	}
	r.nonces[n] = now
	return n
}

func (r *Registrar) nonceValid(n string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.nonces[n]
	return ok && now.Sub(t) <= nonceLifetime
}

// authenticate checks the Authorization header; it returns the user on
// success.
func (r *Registrar) authenticate(req *siplib.Request, now time.Time) (string, bool) {
	h := req.GetHeader("Authorization")
	if h == nil || r.Password == nil {
		return "", false
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil || creds.Realm != r.realm() || !r.nonceValid(creds.Nonce, now) {
		return "", false
	}
	pw, ok := r.Password(creds.Username)
	if !ok {
		return "", false
	}
	chal := &digest.Challenge{Realm: r.realm(), Nonce: creds.Nonce, Algorithm: creds.Algorithm, Opaque: creds.Opaque}
	if creds.QOP != "" {
		chal.QOP = []string{creds.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: req.Method.String(), URI: creds.URI, Username: creds.Username, Password: pw,
		Count: creds.Nc, Cnonce: creds.Cnonce,
	})
	if err != nil {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(creds.Response)) != 1 {
		return "", false
	}
	// The authenticated user must be the one registering (To = AOR).
	if to := req.To(); to == nil || to.Address.User != creds.Username {
		return "", false
	}
	return creds.Username, true
}

func (s *Server) onRegister(req *siplib.Request, tx siplib.ServerTransaction) {
	r := s.cfg.Registrar
	if r == nil {
		s.respond(req, tx, 405, "Method Not Allowed", siplib.NewHeader("Allow", Allowed))
		return
	}
	now := time.Now()
	user, ok := r.authenticate(req, now)
	if !ok {
		chal := digest.Challenge{Realm: r.realm(), Nonce: r.newNonce(now), Algorithm: "MD5", QOP: []string{"auth"}}
		s.log.Debug().Str("src", req.Source()).Msg("REGISTER challenged")
		s.respond(req, tx, 401, "Unauthorized", siplib.NewHeader("WWW-Authenticate", chal.String()))
		return
	}
	maxExp := r.MaxExpires
	if maxExp == 0 {
		maxExp = time.Hour
	}
	expires := maxExp
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			expires = time.Duration(n) * time.Second
		}
	}
	contact := req.Contact()
	if contact != nil {
		if v, ok := contact.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				expires = time.Duration(n) * time.Second
			}
		}
	}
	if expires > maxExp {
		expires = maxExp
	}
	res := siplib.NewResponseFromRequest(req, 200, "OK", nil)
	if contact != nil && !(contact.Address.Wildcard) {
		if expires > 0 {
			c := contact.Clone()
			c.Params.Remove("expires")
			c.Params.Add("expires", strconv.Itoa(int(expires.Seconds())))
			res.AppendHeader(c)
		}
		if r.OnBinding != nil {
			r.OnBinding(user, contact.Address.String(), expires)
		}
	} else if contact != nil && r.OnBinding != nil { // Contact: * with Expires: 0
		r.OnBinding(user, "", 0)
	}
	res.AppendHeader(siplib.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	if err := tx.Respond(res); err != nil {
		s.log.Debug().Err(err).Msg("register respond")
	}
	s.log.Info().Str("user", user).Dur("expires", expires).Msg("agent registered")
}
