package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// PrincipalHeader carries, on a request one cluster node forwards to
// another with the node-to-node token (cluster.token_file), the
// principal the first node authenticated: base64url (no padding) of its
// JSON. Guard honours it only on a request authenticated with a Peer
// static token; from anyone else it is ignored.
const PrincipalHeader = "X-Cloak-Principal"

// ErrCarried: a forwarded request's PrincipalHeader is malformed, names
// an unknown role or kind, or was forwarded twice.
var ErrCarried = errors.New("auth: bad forwarded principal")

var viaRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// Carry encodes p, forwarded by node via, for PrincipalHeader. Only a
// user's session or an API token is carried: a static token's rights
// stay on the node that holds the file.
func Carry(p Principal, via string) (string, error) {
	if p.Kind != KindSession && p.Kind != KindToken {
		return "", fmt.Errorf("%w: a %s credential is not forwarded", ErrCarried, p.Kind)
	}
	if !viaRe.MatchString(via) {
		return "", fmt.Errorf("%w: node id %q", ErrCarried, via)
	}
	c := Principal{Name: p.Name, Kind: p.Kind, Role: p.Role, Agent: p.Agent, TokenID: p.TokenID, Expires: p.Expires, Via: via}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCarried, err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// maxCarried bounds the header Guard decodes.
const maxCarried = 2048

// uncarry decodes a PrincipalHeader value into the principal a request
// is served as: a user's session or an API token with a known role,
// marked Via the forwarding node.
func uncarry(h string) (Principal, error) {
	if len(h) > maxCarried {
		return Principal{}, fmt.Errorf("%w: %d bytes", ErrCarried, len(h))
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrCarried, err)
	}
	var c Principal
	if err := json.Unmarshal(b, &c); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrCarried, err)
	}
	if c.Kind != KindSession && c.Kind != KindToken {
		return Principal{}, fmt.Errorf("%w: kind %q", ErrCarried, c.Kind)
	}
	if c.Name == "" || !viaRe.MatchString(c.Via) {
		return Principal{}, fmt.Errorf("%w: no name or node", ErrCarried)
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrCarried, err)
	}
	return c, nil
}
