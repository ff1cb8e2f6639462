package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	siplib "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/cloak-voip/cloak/authlimit"
)

// Registrar accepts REGISTER from agents' softphones with digest
// authentication and reports bindings to the call layer.
//
// Digest follows RFC 3261 §22.4 with RFC 7616 (qop=auth; SHA-256 offered
// before MD5, RFC 8760 §2.4) and RFC 2617 §3.2.2:
//
//   - Nonces are stateless to issue: the issue time and random bytes under
//     an HMAC with a per-process key, so a flood of REGISTERs without
//     credentials costs no memory. Only nonces that authenticated someone
//     are remembered (at most MaxNonces, for NonceLifetime), with the
//     highest nonce-count seen.
//   - A nonce-count not above the highest seen for that nonce is a replay:
//     401 with a fresh challenge, stale=false, never 200.
//   - A correct response on an expired nonce, on one of ours that is no
//     longer remembered, or on one that is not ours (a restart changed the
//     key) gets 401 stale=true so the phone re-authenticates without
//     asking the user (RFC 7616 §3.3). A wrong one is a failure whatever
//     the nonce, so stale=true is no password oracle.
//   - With a Limiter, failures are counted per source IP and per username:
//     during a back-off window or a lock REGISTER gets 403 without its
//     credentials being checked, and each lock is logged once as
//     "auth locked source=IP user=... failures=N ..." for fail2ban
//     (docs/fail2ban/cloak-sip.conf). A success resets both counters.
//     A username locked by guesses from elsewhere does not lock out the
//     source that last registered it successfully (its own phone), so an
//     attacker cannot keep agents from logging in; that source is still
//     limited as a source.
type Registrar struct {
	// Realm is the digest realm (default "cloak").
	Realm string
	// Password returns the password of a user, ok false for unknown users.
	Password func(user string) (password string, ok bool)
	// OnBinding is told of every accepted binding change: contact is the
	// softphone's Contact URI, path the REGISTER's Path values in order
	// (RFC 3327; nil when it came straight to us); expires 0 means the
	// user logged out.
	OnBinding func(user string, contact string, path []string, expires time.Duration)
	// MaxExpires caps the binding lifetime (default 3600 s).
	MaxExpires time.Duration
	// Limiter, when not nil, slows and locks repeated failures per source
	// IP and per username.
	Limiter *authlimit.Limiter
	// NonceLifetime is how long a nonce may be used (default 5 min).
	NonceLifetime time.Duration
	// MaxNonces bounds the used nonces remembered for nonce-count checks
	// (default 65536); the oldest is forgotten first, and a forgotten one
	// is answered stale=true.
	MaxNonces int
	// Algorithms are the digest algorithms offered, one challenge each in
	// this order, and the only ones accepted: "SHA-256", "MD5" (default
	// both, SHA-256 first). A client that reads only the first challenge
	// and knows only MD5 (older phones, sipp 3.6) needs MD5 first.
	Algorithms []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Nonces, when not nil, keeps the nonce key and nonce-counts shared
	// with other nodes (cluster.enabled); nil keeps them in memory.
	Nonces NonceStore

	keyOnce  sync.Once
	key      [32]byte
	storeKey []byte // Nonces' key, once read

	mu    sync.Mutex
	good  map[string]string // user -> source IP of its last success
	used  map[string]*nonceUse
	order []string  // used nonces, first use first
	head  int       // order[head:] is live
	floor time.Time // nonces issued at or before this were forgotten early
}

// nonceUse is what is remembered of a nonce once it authenticated someone.
type nonceUse struct {
	issued time.Time
	nc     int // highest nonce-count accepted
}

const (
	defaultNonceLifetime = 5 * time.Minute
	defaultMaxNonces     = 65536
	// maxUsernameLen bounds the usernames the limiter keys on; a longer
	// one is no agent's and counts against its source only.
	maxUsernameLen = 64
	nonceRandLen   = 8
	nonceMACLen    = 16
	nonceLen       = 8 + nonceRandLen + nonceMACLen
)

// DigestAlgorithms are the algorithms Registrar supports, in its default
// order of preference (RFC 7616 §3.7, RFC 8760 §2.4).
var DigestAlgorithms = []string{"SHA-256", "MD5"}

func (r *Registrar) algorithms() []string {
	if len(r.Algorithms) == 0 {
		return DigestAlgorithms
	}
	return r.Algorithms
}

// offered reports whether alg (as the client wrote it; empty means MD5,
// RFC 7616 §3.3) is one of r's algorithms, and returns its canonical name.
func (r *Registrar) offered(alg string) (string, bool) {
	if alg == "" {
		alg = "MD5"
	}
	for _, a := range r.algorithms() {
		if strings.EqualFold(a, alg) {
			return a, true
		}
	}
	return "", false
}

func (r *Registrar) realm() string {
	if r.Realm == "" {
		return "cloak"
	}
	return r.Realm
}

func (r *Registrar) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Registrar) lifetime() time.Duration {
	if r.NonceLifetime > 0 {
		return r.NonceLifetime
	}
	return defaultNonceLifetime
}

func (r *Registrar) mac(msg []byte) []byte {
	r.keyOnce.Do(func() {
		if _, err := rand.Read(r.key[:]); err != nil {
			panic(fmt.Sprintf("sip: no randomness for the nonce key: %v", err))
		}
	})
	key := r.key[:]
	if r.Nonces != nil {
		if k := r.sharedKey(); k != nil {
			key = k
		}
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:nonceMACLen]
}

// newNonce returns a nonce that proves its own issue time: 8 bytes of
// Unix nanoseconds, 8 random bytes and an HMAC of both, in hex.
func (r *Registrar) newNonce(now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(b[8 : 8+nonceRandLen])
	copy(b[8+nonceRandLen:], r.mac(b[:8+nonceRandLen]))
	return hex.EncodeToString(b[:])
}

// nonceIssued returns the issue time of a nonce this Registrar made, ok
// false for anything else (garbled, forged, from before a restart).
func (r *Registrar) nonceIssued(n string) (time.Time, bool) {
	if len(n) != 2*nonceLen {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(n)
	if err != nil || hex.EncodeToString(b) != n {
		return time.Time{}, false
	}
	if !hmac.Equal(b[8+nonceRandLen:], r.mac(b[:8+nonceRandLen])) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// useNonce records nonce-count nc on a nonce whose response was correct.
// It returns authOK for a first use or a higher count, authReplay for a
// count not above the highest seen, authStale for a nonce expired or
// forgotten.
func (r *Registrar) useNonce(n string, issued time.Time, nc int, now time.Time) authResult {
	life := r.lifetime()
	if now.Sub(issued) > life || issued.After(now.Add(time.Minute)) {
		return authStale
	}
	if r.Nonces != nil {
		return r.useSharedNonce(n, issued, nc)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = map[string]*nonceUse{}
	}
	// Forget nonces past their lifetime from the front of the queue.
	for r.head < len(r.order) {
		u := r.used[r.order[r.head]]
		if u != nil && now.Sub(u.issued) <= life {
			break
		}
		delete(r.used, r.order[r.head])
		r.order[r.head] = ""
		r.head++
	}
	if u := r.used[n]; u != nil {
		if nc <= u.nc {
			return authReplay
		}
		u.nc = nc
		return authOK
	}
	if !issued.After(r.floor) {
		return authStale // used before, perhaps: we cannot tell any more
	}
	maxN := r.MaxNonces
	if maxN <= 0 {
		maxN = defaultMaxNonces
	}
	for len(r.used) >= maxN && r.head < len(r.order) {
		old := r.order[r.head]
		if u := r.used[old]; u != nil && u.issued.After(r.floor) {
			r.floor = u.issued
		}
		delete(r.used, old)
		r.order[r.head] = ""
		r.head++
	}
	if r.head > len(r.order)/2 {
		r.order = append(r.order[:0], r.order[r.head:]...)
		r.head = 0
	}
	r.used[n] = &nonceUse{issued: issued, nc: nc}
	r.order = append(r.order, n)
	return authOK
}

// authResult is the outcome of checking a REGISTER's credentials.
type authResult int

const (
	authNone   authResult = iota // unusable credentials (algorithm, realm, qop): challenge, not a failure
	authOK                       // right password, fresh nonce, new nonce-count
	authBad                      // wrong password or unknown user: a failure
	authStale                    // right password, nonce expired, forgotten or not ours
	authReplay                   // right password, nonce-count already used
)

// dummyPassword is checked for unknown users so that they cost the same
// time as known ones.
const dummyPassword = "\x00unknown-user\x00"

// check verifies credentials against the request method.
func (r *Registrar) check(creds *digest.Credentials, method string, now time.Time) authResult {
	alg, ok := r.offered(creds.Algorithm)
	if !ok {
		return authNone
	}
	if creds.Realm != r.realm() || creds.Userhash || creds.QOP != "auth" || creds.Cnonce == "" ||
		creds.Nc < 1 || creds.Username == "" || creds.Response == "" {
		return authNone
	}
	pw, known := "", false
	if r.Password != nil && len(creds.Username) <= maxUsernameLen {
		pw, known = r.Password(creds.Username)
	}
	if !known {
		pw = dummyPassword
	}
	want, err := digest.Digest(
		&digest.Challenge{Realm: r.realm(), Nonce: creds.Nonce, Algorithm: alg, QOP: []string{"auth"}},
		digest.Options{Method: method, URI: creds.URI, Username: creds.Username, Password: pw,
			Count: creds.Nc, Cnonce: creds.Cnonce})
	if err != nil {
		return authNone
	}
	match := subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(creds.Response))) == 1
	if !known || !match {
		return authBad
	}
	// The password is right. A nonce that is not ours (garbled, or from
	// before a restart) is stale: the phone knows the password and gets a
	// new nonce without asking the user (RFC 7616 §3.3). It was checked
	// after the password so that it is no oracle: a wrong guess on any
	// nonce is a failure.
	issued, ours := r.nonceIssued(creds.Nonce)
	if !ours {
		return authStale
	}
	return r.useNonce(creds.Nonce, issued, creds.Nc, now)
}

// challenge returns the WWW-Authenticate headers of a 401: one per
// algorithm in r's order of preference, sharing one nonce (RFC 7616
// §3.7). stale is
// "", "true" or "false"; RFC 7616 §3.3 allows stale=false on a challenge
// that answers credentials.
func (r *Registrar) challenge(now time.Time, stale string) []siplib.Header {
	nonce := r.newNonce(now)
	hs := make([]siplib.Header, 0, len(r.algorithms()))
	for _, alg := range r.algorithms() {
		v := (&digest.Challenge{Realm: r.realm(), Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}}).String()
		if stale == "false" {
			v += ", stale=false"
		} else if stale == "true" {
			v += ", stale=true"
		}
		hs = append(hs, siplib.NewHeader("WWW-Authenticate", v))
	}
	return hs
}

// goodSource reports whether ip is where user last registered with the
// right password. Only known users succeed, so the map is bounded by the
// directory.
func (r *Registrar) goodSource(user, ip string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.good[user] == ip
}

func (r *Registrar) setGoodSource(user, ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.good == nil {
		r.good = map[string]string{}
	}
	r.good[user] = ip
}

// sourceIP is the IP of a request's source ("host:port").
func sourceIP(src string) string {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		return ap.Addr().Unmap().String()
	}
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		return strings.Trim(src[:i], "[]")
	}
	return src
}

// logLocks writes the one line per lock that fail2ban matches. The source
// comes first so nothing a client chose (the username, quoted) can stand
// where the filter looks for the address.
func (s *Server) logLocks(r *Registrar, locks []authlimit.Lock, ip, user string) {
	if len(locks) == 0 {
		return
	}
	var scope []string
	for _, l := range locks {
		scope = append(scope, strings.SplitN(l.Key, ":", 2)[0])
	}
	lockFor := locks[0].Until.Sub(r.now()).Round(time.Second)
	s.log.Warn().Msg(fmt.Sprintf("auth locked source=%s user=%q failures=%d lock_for=%s scope=%s",
		ip, logSafeUser(user), locks[0].Failures, lockFor, strings.Join(scope, ",")))
}

// logSafeUser keeps a client-chosen username from forging log fields: any
// byte but letters, digits and "._@+-" becomes "_", so it can hold no
// space, "=" or quote for a log parser (fail2ban) to misread.
func logSafeUser(u string) string {
	b := []byte(u)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("._@+-", c) >= 0:
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

func (s *Server) onRegister(req *siplib.Request, tx siplib.ServerTransaction) {
	r := s.cfg.Registrar
	if r == nil {
		s.respond(req, tx, 405, "Method Not Allowed", siplib.NewHeader("Allow", Allowed))
		return
	}
	user, ok := s.authenticate(r, req, tx)
	if !ok {
		return
	}
	now := r.now()
	ip := sourceIP(req.Source())
	// The authenticated user must be the one registering (To = AOR);
	// RFC 3261 §10.3 step 6.
	if to := req.To(); to == nil || to.Address.User != user {
		s.log.Debug().Str("src", req.Source()).Msg("REGISTER refused: To is not the authenticated user")
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	r.setGoodSource(user, ip)
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
	path, err := registerPath(req)
	if err != nil {
		s.log.Info().Str("user", user).Str("src", req.Source()).Err(err).Msg("REGISTER refused: bad Path")
		s.respond(req, tx, 400, "Bad Path")
		return
	}
	res := siplib.NewResponseFromRequest(req, 200, "OK", nil)
	if contact != nil && !(contact.Address.Wildcard) {
		if expires > 0 {
			c := contact.Clone()
			c.Params.Remove("expires")
			c.Params.Add("expires", strconv.Itoa(int(expires.Seconds())))
			res.AppendHeader(c)
			if len(path) > 0 && supports(req, "path") {
				// RFC 3327 §5.3: the stored Path goes back to a UA
				// that said it supports path.
				for _, p := range path {
					res.AppendHeader(siplib.NewHeader("Path", p))
				}
			}
		}
		if r.OnBinding != nil {
			r.OnBinding(user, contact.Address.String(), path, expires)
		}
	} else if contact != nil && r.OnBinding != nil { // Contact: * with Expires: 0
		r.OnBinding(user, "", nil, 0)
	}
	res.AppendHeader(siplib.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	s.messages.response(res.StatusCode)
	if err := tx.Respond(res); err != nil {
		s.log.Debug().Err(err).Msg("register respond")
	}
	s.log.Info().Str("user", user).Str("expires", expires.String()).Msg("agent registered")
}

// maxPath bounds the Path entries a binding keeps: a REGISTER that crossed
// more proxies than this is refused rather than making every call to the
// agent carry an attacker-sized Route set.
const maxPath = 4

// registerPath returns a REGISTER's Path values (RFC 3327 §4: one URI per
// entry, in the order the proxies added them, the first nearest us), each
// checked to be a SIP URI with lr (loose routing, RFC 3261 §16.12; a strict
// router would rewrite the Request-URI). Headers folded as one with commas
// are split. nil when there is none.
func registerPath(req *siplib.Request) ([]string, error) {
	var out []string
	for _, h := range req.GetHeaders("Path") {
		for _, v := range splitHeaderList(h.Value()) {
			if len(out) == maxPath {
				return nil, fmt.Errorf("more than %d Path entries", maxPath)
			}
			addr := strings.TrimSpace(v)
			in := strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
			if len(addr) < 2 || addr[0] != '<' || addr[len(addr)-1] != '>' || len(addr) > 512 {
				return nil, fmt.Errorf("Path entry is not a <URI> of at most 512 bytes")
			}
			var u siplib.Uri
			if err := siplib.ParseUri(in, &u); err != nil || u.Host == "" {
				return nil, fmt.Errorf("Path entry is not a SIP URI")
			}
			if u.Scheme != "sip" && u.Scheme != "sips" {
				return nil, fmt.Errorf("Path entry scheme %q is not sip or sips", u.Scheme)
			}
			if _, ok := u.UriParams.Get("lr"); !ok {
				return nil, fmt.Errorf("Path entry without lr (a strict router)")
			}
			out = append(out, addr)
		}
	}
	return out, nil
}

// splitHeaderList splits a header value at the commas between its entries,
// not those inside <…> or quotes (RFC 3261 §7.3.1).
func splitHeaderList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>' && depth > 0:
			depth--
		case c == ',' && depth == 0:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// supports reports whether req lists option tag in a Supported header
// (RFC 3261 §20.37).
func supports(req *siplib.Request, tag string) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}
