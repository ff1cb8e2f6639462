package sip

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/cloak-voip/cloak/audio"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
)

// TrunkTable is what the server knows of trunks (package trunk implements
// it; docs/TRUNKS.md). The server asks it, for each INVITE outside a
// dialog, which trunk sent it.
type TrunkTable interface {
	// Match returns the trunk whose match list (or host) holds ip, and
	// whether that trunk's INVITEs must authenticate with digest.
	Match(ip netip.Addr) (name string, auth bool, ok bool)
	// Authenticator returns the digest verifier of the trunk named name
	// (inbound_auth), or, for name "", one over the trunks with
	// inbound_auth that list no address (a carrier that may call from
	// anywhere); nil when there is none.
	Authenticator(name string) *Registrar
	// ByUser returns the trunk whose inbound_auth user is user.
	ByUser(user string) (name string, ok bool)
	// Identity reads the numbers of an INVITE from trunk: caller
	// (from P-Asserted-Identity when the trunk is trusted, else From) and
	// called number in E.164, privacy, redirection history.
	Identity(trunk string, req *siplib.Request) Identity
}

// Identity is who a call is from and for, as cloak settled it at
// arrival.
type Identity struct {
	// Trunk is the trunk the call came in on, "" when none (an agent, a
	// local test, an unknown source sip.unknown allows).
	Trunk string `json:"trunk,omitempty"`
	// User is the user (agents[] name) the INVITE authenticated as with
	// digest (Config.InviteAuth), "" when it claimed to be nobody's.
	// Only this, never From, may grant a caller a user's rights (a
	// supervisor's *55).
	User string `json:"user,omitempty"`
	// Caller is the caller's number in E.164 when it could be read as
	// one, else the user part as sent; "" means From's user part.
	Caller string `json:"caller,omitempty"`
	// Called is the called number in E.164, "" when the Request-URI's
	// user part is no number (routing still uses the user part).
	Called string `json:"called,omitempty"`
	// Private: the caller asked for privacy (RFC 3323 §4.2 "Privacy:
	// id", or user/header): Session.Caller reports "anonymous" and the
	// display name is withheld.
	Private bool `json:"private,omitempty"`
	// Redirects are the numbers the call was diverted from, oldest first
	// (Diversion, RFC 5806; else History-Info, RFC 7044), E.164 where
	// possible.
	Redirects []string `json:"redirects,omitempty"`
}

// Anonymous is what Session.Caller reports for a caller who asked for
// privacy (RFC 3323).
const Anonymous = "anonymous"

// UnknownPolicy is what an INVITE from no trunk and no registered agent
// gets (config sip.unknown, sip.unknown_loopback). The zero value allows
// every source, as cloak did before trunks.
type UnknownPolicy struct {
	// Reject refuses such INVITEs from sources beyond loopback with 403.
	Reject bool
	// RejectLoopback refuses them from loopback sources too.
	RejectLoopback bool
}

// reasonUnknownSource is the reason phrase of the 403 to an unknown source.
const reasonUnknownSource = "Forbidden: Unknown Source"

// PrivacyRequested reports whether a Privacy header value asks that the
// caller's identity be withheld (RFC 3323 §4.2: "id" of RFC 3325 §9.3,
// "user", "header"); "none" and unknown values do not.
func PrivacyRequested(v string) bool {
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "id", "user", "header":
			return true
		}
	}
	return false
}

// identify settles which trunk an INVITE outside a dialog comes from. It
// answers the INVITE itself (401 challenge, 403) and returns ok false when
// the call may not go on.
func (s *Server) identify(req *siplib.Request, tx siplib.ServerTransaction) (Identity, bool) {
	ip := netip.Addr{}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		ip = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(sourceIP(req.Source())); err == nil {
		ip = a.Unmap()
	}
	t := s.cfg.Trunks
	var id Identity
	known := false
	name, auth, matched := "", false, false
	if t != nil {
		name, auth, matched = t.Match(ip)
	}
	if claimed := s.claimedUser(req); claimed != "" && !matched {
		// From names one of our users (an agent's or a supervisor's
		// phone): only that user's password lets it through. Trunks are
		// identified by address or their own digest, never as users.
		user, ok := s.authenticate(s.cfg.Registrar, req, tx)
		if !ok {
			return Identity{}, false
		}
		if user != claimed {
			// One user's password must not let a call claim another.
			s.forbidden.Add(1)
			s.log.Info().Str("src", req.Source()).Str("call_id", req.CallID().Value()).Msg("call refused: From is not the authenticated user")
			s.respond(req, tx, 403, "Forbidden")
			return Identity{}, false
		}
		id.User, known = user, true
	} else if t != nil {
		var reg *Registrar
		switch {
		case matched && !auth:
			id, known = t.Identity(name, req), true
		case matched && auth:
			reg = t.Authenticator(name)
		case req.GetHeader("Authorization") != nil:
			reg = t.Authenticator("")
		}
		if reg != nil {
			user, ok := s.authenticate(reg, req, tx)
			if !ok {
				return Identity{}, false
			}
			trunk, ok := t.ByUser(user)
			if !ok || (matched && trunk != name) {
				s.forbidden.Add(1)
				s.respond(req, tx, 403, "Forbidden")
				return Identity{}, false
			}
			id, known = t.Identity(trunk, req), true
		}
	}
	if !known && s.cfg.Registrar != nil && s.cfg.Registrar.knownSource(ip.String()) {
		known = true // a registered agent's phone
	}
	if !known {
		reject := s.cfg.Unknown.Reject
		if ip.IsLoopback() {
			reject = s.cfg.Unknown.RejectLoopback
		}
		if reject {
			if t != nil {
				if reg := t.Authenticator(""); reg != nil {
					// A carrier with inbound_auth from an address no
					// trunk lists: it may authenticate.
					s.respond(req, tx, 401, "Unauthorized", reg.challenge(reg.now(), "")...)
					return Identity{}, false
				}
			}
			s.forbidden.Add(1)
			s.log.Info().Str("src", req.Source()).Str("call_id", req.CallID().Value()).Msg("call refused: unknown source (sip.unknown: reject)")
			s.respond(req, tx, 403, reasonUnknownSource)
			return Identity{}, false
		}
	}
	if h := req.GetHeader("Privacy"); h != nil && PrivacyRequested(h.Value()) {
		id.Private = true
	}
	return id, true
}

// knownSource reports whether ip is where some agent last registered with
// the right password (bounded by the directory).
func (r *Registrar) knownSource(ip string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.good {
		if g == ip {
			return true
		}
	}
	return false
}

// OutboundRouter picks the trunk a tel: target leaves by (package trunk
// implements it; docs/TRUNKS.md).
type OutboundRouter interface {
	// Route returns the route for number (E.164, "+" and digits): the
	// trunk with the longest prefix that is up, below its max_calls and
	// not among skip (trunks already tried for this call). The route
	// holds one of the trunk's call slots until its Release runs.
	// ErrNoTrunk when no trunk takes the number.
	Route(number string, skip []string) (Route, error)
}

// Route is how a call to a number leaves through a trunk.
type Route struct {
	// Trunk is the trunk's name.
	Trunk string
	// URI is the Request-URI (sip:+44...@carrier:5060), without
	// parameters: sipgo computes a challenge's digest-uri without them,
	// and a carrier that checks it against the Request-URI (RFC 2617
	// §3.2.2.5) must find the two equal.
	URI string
	// Transport is how the INVITE goes: udp, tcp or tls.
	Transport string
	// Username and Password answer the carrier's 401/407 challenges
	// (RFC 3261 §22.2, §22.3); empty Password answers none.
	Username, Password string
	// Proxy, when set, is put in a Route header (a loose route, RFC 3261
	// §16.12.1.1) so the INVITE goes through it: the outbound proxy, or
	// the Service-Route the registrar returned (RFC 3608 §6).
	Proxy string
	// Codecs is the offer's codec order; nil means SupportedCodecs.
	Codecs []audio.Codec
	// Release frees the call slot; it may be called more than once.
	Release func()
}

// ErrNoTrunk is the DialError cause for a tel: target no trunk takes
// (none configured, no prefix matches, every match down or full).
var ErrNoTrunk = errors.New("no trunk for the number")

// Requester returns the client for requests cloak sends outside a dialog
// over transport ("udp", "tcp", "tls"; a trunk's REGISTER and OPTIONS)
// and cloak's Contact for it. Over UDP they leave from the listening
// socket, so the carrier's requests come back to where Contact says.
func (s *Server) Requester(transport string) (*sipgo.Client, siplib.ContactHeader) {
	ua := s.dialogUA(transport, nil)
	return ua.Client, *ua.ContactHDR.Clone()
}
