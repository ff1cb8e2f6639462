package ivr

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// ErrPlainSecret is the problem of a data_action that would send a secret
// (a card) over plain http to a host that is not this one: PCI DSS
// requirement 4 asks for strong cryptography for cardholder data crossing
// open networks. The demo gateway on loopback is the one http target
// allowed.
var ErrPlainSecret = errors.New("a step that sends a secret needs an https:// endpoint (or a loopback address)")

// SecureTarget reports whether rawURL may receive a secret: https (the
// certificate is verified by the client, never skipped), or http to a
// loopback address (127.0.0.0/8, ::1, localhost).
func SecureTarget(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q is not a URL", ErrPlainSecret, rawURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%w: %s://%s is not", ErrPlainSecret, u.Scheme, u.Host)
}

// carriesSecret reports whether the step sends, or may send, a secret:
// marked payment_gateway, or naming a secret variable in send.
func (d *DataAction) carriesSecret(secret func(string) bool) bool {
	if d.PaymentGateway {
		return true
	}
	for _, v := range d.Send {
		if secret(v) {
			return true
		}
	}
	return false
}

// noRedirect refuses to follow a redirect: the 3xx itself is the answer,
// and takes on_failure. A secret is never re-sent to a URL the gateway (or
// whoever answers for it) names.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// secretClient is c, made not to follow redirects.
func secretClient(c *http.Client) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	}
	cc.CheckRedirect = noRedirect
	return &cc
}

// CheckEndpoints checks the endpoints the set's data_action steps name
// against the deployment's endpoints map: a step that sends a secret
// through an endpoint whose URL is plain http beyond loopback is a
// problem naming its file, flow and step. Endpoints not in the map are
// left to the run (on_failure). It returns nil or a *ValidationError.
func (fs *FlowSet) CheckEndpoints(endpoints map[string]string) error {
	var probs []Problem
	for _, name := range fs.names {
		f := fs.flows[name]
		secrets, _ := variables(f)
		for i := range f.Steps {
			d, ok := f.Steps[i].Action.(*DataAction)
			if !ok || d.Endpoint == "" || !d.carriesSecret(func(v string) bool { return secrets[v] }) {
				continue
			}
			target, ok := endpoints[d.Endpoint]
			if !ok || target == "" {
				continue
			}
			if err := SecureTarget(target); err != nil {
				probs = append(probs, Problem{File: f.File, Flow: f.Name, Step: f.Steps[i].Name,
					Msg: fmt.Sprintf("endpoint %q: %v", d.Endpoint, err)})
			}
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}
