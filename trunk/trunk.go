package trunk

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	siplib "github.com/emiago/sipgo/sip"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/sip"
)

// Trunk is one configured trunk and its live state.
type Trunk struct {
	cfg      config.Trunk
	password config.Secret
	numbers  Numbers
	match    []netip.Prefix
	host     string // host:port requests go to
	codecs   []audio.Codec
	auth     *sip.Registrar // inbound_auth verifier, nil without

	calls atomic.Int64 // outbound calls up through the trunk
	up    atomic.Bool  // OPTIONS keep-alive verdict (true without one)

	mu  sync.Mutex
	reg RegState
	opt OptionsState
	// serviceRoute is the Service-Route the registrar returned (RFC 3608),
	// the route set of the trunk's outbound INVITEs.
	serviceRoute string
}

// Name is the trunk's name.
func (t *Trunk) Name() string { return t.cfg.Name }

// Set is every configured trunk. It implements sip.TrunkTable and
// sip.OutboundRouter.
type Set struct {
	trunks []*Trunk
	byName map[string]*Trunk
	byUser map[string]*Trunk // inbound_auth trunks by auth user
	anyReg *sip.Registrar    // verifier over every inbound_auth trunk
}

// Errors of trunk set-up and routing.
var (
	// ErrConfig wraps a trunk that cannot be set up (password source
	// unreadable).
	ErrConfig = errors.New("trunk configuration")
	// ErrAllDown: trunks take the number but each is down or full.
	ErrAllDown = errors.New("every trunk for the number is down or at max_calls")
)

// Options are what New needs beside the trunks' configuration.
type Options struct {
	// Limiter counts inbound digest failures (shared with REGISTER's).
	Limiter *authlimit.Limiter
	// Algorithms are the digest algorithms offered to carriers.
	Algorithms []string
	// NonceLifetime is how long an inbound challenge's nonce lasts.
	NonceLifetime time.Duration
}

// New builds the set from validated configuration, reading passwords
// from their files or environment variables.
func New(cfgs []config.Trunk, o Options) (*Set, error) {
	s := &Set{byName: map[string]*Trunk{}, byUser: map[string]*Trunk{}}
	for i, c := range cfgs {
		t := &Trunk{cfg: c, numbers: NewNumbers(c.Numbers)}
		t.up.Store(true)
		t.reg.State = "off"
		if c.Register.Enabled {
			t.reg.State = StateUnregistered
		}
		t.opt.State = "off"
		if c.OptionsInterval > 0 {
			t.opt.State = "unknown"
		}
		if c.Auth.Password != "" || c.Auth.PasswordFile != "" || c.Auth.PasswordEnv != "" {
			pw, err := c.Auth.ResolvePassword()
			if err != nil {
				return nil, fmt.Errorf("%w: trunks[%d].auth: %w", ErrConfig, i, err)
			}
			t.password = pw
		}
		for _, m := range c.Match {
			p, err := config.ParseTrunkMatch(m)
			if err != nil {
				return nil, fmt.Errorf("%w: trunks[%d].match: %w", ErrConfig, i, err)
			}
			t.match = append(t.match, p)
		}
		if c.Host != "" {
			h, port, err := config.SplitTrunkHost(c.Host)
			if err != nil {
				return nil, fmt.Errorf("%w: trunks[%d].host: %w", ErrConfig, i, err)
			}
			if port == 0 {
				port = 5060
				if c.Transport == "tls" {
					port = 5061
				}
			}
			if a, err := netip.ParseAddr(h); err == nil {
				if len(c.Match) == 0 {
					t.match = append(t.match, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				}
				if a.Is6() && !a.Is4In6() {
					h = "[" + h + "]"
				}
			}
			t.host = h + ":" + strconv.Itoa(port)
		}
		for _, name := range c.Codecs {
			switch name {
			case "PCMU":
				t.codecs = append(t.codecs, audio.CodecPCMU())
			case "PCMA":
				t.codecs = append(t.codecs, audio.CodecPCMA())
			}
		}
		if c.InboundAuth {
			pw := t.password.Reveal()
			user := c.Auth.User
			t.auth = &sip.Registrar{Realm: c.Auth.Realm, Limiter: o.Limiter, Algorithms: o.Algorithms, NonceLifetime: o.NonceLifetime,
				Password: func(u string) (string, bool) { return pw, u == user }}
			s.byUser[user] = t
		}
		s.trunks = append(s.trunks, t)
		s.byName[c.Name] = t
	}
	// Sources no trunk matches are challenged only for inbound_auth
	// trunks that name no address (their carrier may call from anywhere);
	// when every such trunk lists its addresses, an unknown source gets
	// 403 and no chance to guess.
	roaming := map[string]*Trunk{}
	for u, t := range s.byUser {
		if len(t.match) == 0 {
			roaming[u] = t
		}
	}
	if len(roaming) > 0 {
		s.anyReg = &sip.Registrar{Limiter: o.Limiter, Algorithms: o.Algorithms, NonceLifetime: o.NonceLifetime,
			Password: func(u string) (string, bool) {
				if t, ok := roaming[u]; ok {
					return t.password.Reveal(), true
				}
				return "", false
			}}
	}
	return s, nil
}

// Trunks returns the trunks in configuration order.
func (s *Set) Trunks() []*Trunk { return s.trunks }

// Match implements sip.TrunkTable: the first trunk whose match list holds
// ip.
func (s *Set) Match(ip netip.Addr) (name string, auth bool, ok bool) {
	ip = ip.Unmap()
	for _, t := range s.trunks {
		for _, p := range t.match {
			if p.Contains(ip) {
				return t.cfg.Name, t.cfg.InboundAuth, true
			}
		}
	}
	return "", false, false
}

// Authenticator implements sip.TrunkTable.
func (s *Set) Authenticator(name string) *sip.Registrar {
	if name == "" {
		return s.anyReg
	}
	if t := s.byName[name]; t != nil {
		return t.auth
	}
	return nil
}

// ByUser implements sip.TrunkTable.
func (s *Set) ByUser(user string) (string, bool) {
	if t, ok := s.byUser[user]; ok {
		return t.cfg.Name, true
	}
	return "", false
}

// maxRedirects bounds the redirection entries kept from one INVITE.
const maxRedirects = 8

// Identity implements sip.TrunkTable: the caller from
// P-Asserted-Identity when the trunk is trusted (RFC 3325 §9.1), else
// From; both numbers in E.164 by the trunk's rules; Privacy (RFC 3323);
// the numbers of Diversion (RFC 5806 §3, most recent first on the wire)
// or else History-Info (RFC 7044 §4, oldest first) entries.
func (s *Set) Identity(name string, req *siplib.Request) sip.Identity {
	t := s.byName[name]
	id := sip.Identity{Trunk: name}
	if t == nil {
		return id
	}
	raw := ""
	if t.cfg.Trusted {
		if h := req.GetHeader("P-Asserted-Identity"); h != nil {
			// Several identities (a sip: and a tel:) may be listed; the
			// first that reads as a number wins.
			for _, v := range splitHeader(h.Value()) {
				if n := URINumber(v); n != "" {
					if _, ok := t.numbers.E164(n); ok {
						raw = n
						break
					}
				}
			}
		}
	}
	if raw == "" {
		if f := req.GetHeader("From"); f != nil {
			raw = URINumber(f.Value())
		}
	}
	if e, ok := t.numbers.E164(raw); ok {
		id.Caller = e
	}
	// A registration trunk's carrier sends to our Contact, whose user is
	// the auth user: the dialled number is then in To.
	ruser := req.Recipient.User
	if e, ok := t.numbers.E164(ruser); ok && (ruser != t.cfg.Auth.User || !t.cfg.Register.Enabled) {
		id.Called = e
	} else if to := req.GetHeader("To"); to != nil {
		if e, ok := t.numbers.E164(URINumber(to.Value())); ok {
			id.Called = e
		}
	}
	var divs []string
	for _, h := range req.GetHeaders("Diversion") {
		divs = append(divs, splitHeader(h.Value())...)
	}
	if len(divs) > 0 {
		// Diversion lists the most recent redirection first.
		for i := len(divs) - 1; i >= 0 && len(id.Redirects) < maxRedirects; i-- {
			id.Redirects = append(id.Redirects, t.normaliseOrRaw(URINumber(divs[i])))
		}
	} else {
		var his []string
		for _, h := range req.GetHeaders("History-Info") {
			his = append(his, splitHeader(h.Value())...)
		}
		// Every entry but the last (the current target) is a number the
		// call was retargeted from, in order (RFC 7044 §10.3 index).
		for i := 0; i+1 < len(his) && len(id.Redirects) < maxRedirects; i++ {
			id.Redirects = append(id.Redirects, t.normaliseOrRaw(URINumber(his[i])))
		}
	}
	id.Redirects = compact(id.Redirects)
	return id
}

func (t *Trunk) normaliseOrRaw(n string) string {
	if e, ok := t.numbers.E164(n); ok {
		return e
	}
	return "" // not a number: a name or garbage is not kept
}

func compact(xs []string) []string {
	out := xs[:0]
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// splitHeader splits a header value at the commas between entries,
// ignoring commas inside <...> and quotes. It keeps at most 16 entries.
func splitHeader(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v) && len(out) < 16; i++ {
		switch c := v[i]; {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>' && depth > 0:
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if len(out) < 16 && start < len(v) {
		out = append(out, strings.TrimSpace(v[start:]))
	}
	return out
}

// Route implements sip.OutboundRouter: among the trunks with a prefix of
// number, longest prefix first and configuration order next, the first
// that is up, below max_calls and not in skip.
func (s *Set) Route(number string, skip []string) (sip.Route, error) {
	type cand struct {
		t   *Trunk
		n   int // prefix length
		pos int
	}
	var cands []cand
	for i, t := range s.trunks {
		best := -1
		for _, p := range t.cfg.Prefixes {
			if strings.HasPrefix(number, p) && len(p) > best {
				best = len(p)
			}
		}
		if best >= 0 && t.host != "" && !slices.Contains(skip, t.cfg.Name) {
			cands = append(cands, cand{t, best, i})
		}
	}
	if len(cands) == 0 {
		return sip.Route{}, sip.ErrNoTrunk
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].n > cands[b].n })
	for _, c := range cands {
		t := c.t
		if !t.up.Load() {
			continue
		}
		if !t.take() {
			continue
		}
		var once sync.Once
		return sip.Route{
			Trunk: t.cfg.Name, URI: t.requestURI(number), Transport: t.cfg.Transport,
			Username: t.cfg.Auth.User, Password: t.password.Reveal(),
			Proxy: t.proxyRoute(), Codecs: t.codecs,
			Release: func() { once.Do(func() { t.calls.Add(-1) }) },
		}, nil
	}
	return sip.Route{}, ErrAllDown
}

// take reserves one of the trunk's call slots.
func (t *Trunk) take() bool {
	for {
		n := t.calls.Load()
		if t.cfg.MaxCalls > 0 && n >= int64(t.cfg.MaxCalls) {
			return false
		}
		if t.calls.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// requestURI is the Request-URI of a call to number through the trunk:
// the global number as the user part, no parameters (sip.Route.URI says
// why; the transport goes in sip.Route.Transport).
func (t *Trunk) requestURI(number string) string {
	return "sip:" + number + "@" + t.host
}

// proxyRoute is the loose route of the trunk's requests: the
// Service-Route the registrar returned, else the outbound proxy.
func (t *Trunk) proxyRoute() string {
	t.mu.Lock()
	sr := t.serviceRoute
	t.mu.Unlock()
	if sr != "" {
		return sr
	}
	if t.cfg.Register.OutboundProxy != "" {
		return t.outboundProxyURI()
	}
	return ""
}
