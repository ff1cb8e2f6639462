package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cloak-voip/cloak/certs"
)

// SIPTLSEnabled reports whether sip.transports lists tls.
func (c *Config) SIPTLSEnabled() bool { return slices.Contains(c.SIP.Transports, "tls") }

// SIPTLSListen parses sip.tls.listen.
func (c *Config) SIPTLSListen() (netip.AddrPort, error) {
	return netip.ParseAddrPort(c.SIP.TLS.Listen)
}

// validateTLS checks sip.tls (when tls is a transport), admin.tls and
// flows.tls, reading the files so that a missing certificate or an
// unreadable key is named at start, not at the first handshake.
func (c *Config) validateTLS() []error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &FieldError{Path: path, Reason: fmt.Sprintf(format, a...)})
	}
	if t := c.SIP.TLS; c.SIPTLSEnabled() {
		if ap, err := c.SIPTLSListen(); err != nil {
			bad("sip.tls.listen", "want IP:PORT, got %q", t.Listen)
		} else if sl, err := c.SIPListen(); err == nil && ap == sl {
			bad("sip.tls.listen", "%s is sip.listen's address; TLS needs a port of its own (5061)", t.Listen)
		}
		pair("sip.tls", t.CertFile, t.KeyFile, true, bad)
		if t.ClientCAFile != "" {
			if _, err := certs.LoadPool(t.ClientCAFile); err != nil {
				bad("sip.tls.client_ca_file", "%v", err)
			}
		}
	}
	if _, err := certs.ParseMinVersion(c.SIP.TLS.MinVersion); err != nil {
		bad("sip.tls.min_version", "%v", err)
	}
	if !c.SIPTLSEnabled() {
		for route, target := range c.Routes {
			if uri, ok := strings.CutPrefix(target, "dial:"); ok && TLSTarget(uri) {
				bad("routes."+route, "%q is dialled over TLS (sips: or transport=tls) but sip.transports lacks tls", target)
			}
		}
		for i, a := range c.Agents {
			if TLSTarget(a.URI) {
				bad(fmt.Sprintf("agents[%d].uri", i), "%q is called over TLS (sips: or transport=tls) but sip.transports lacks tls", a.URI)
			}
		}
	}
	pair("admin.tls", c.Admin.TLS.CertFile, c.Admin.TLS.KeyFile, false, bad)
	f := c.Flows.TLS
	if f.CAFile != "" {
		if _, err := certs.LoadPool(f.CAFile); err != nil {
			bad("flows.tls.ca_file", "%v", err)
		}
	}
	if f.ClientCertFile != "" || f.ClientKeyFile != "" {
		pairNamed("flows.tls", "client_cert_file", "client_key_file", f.ClientCertFile, f.ClientKeyFile, bad)
	}
	return errs
}

// pair checks a cert_file/key_file pair under path; required says both
// must be set, else both or neither.
func pair(path, certFile, keyFile string, required bool, bad func(path, format string, a ...any)) {
	if !required && certFile == "" && keyFile == "" {
		return
	}
	pairNamed(path, "cert_file", "key_file", certFile, keyFile, bad)
}

func pairNamed(path, certName, keyName, certFile, keyFile string, bad func(path, format string, a ...any)) {
	switch {
	case certFile == "":
		bad(path+"."+certName, "missing: a PEM certificate file is required")
	case keyFile == "":
		bad(path+"."+keyName, "missing: the certificate's PEM private key file is required")
	default:
		if _, err := certs.LoadPair(certFile, keyFile); err != nil {
			field := path + "." + certName
			if strings.Contains(err.Error(), ": key_file ") {
				field = path + "." + keyName
			}
			bad(field, "%v", err)
		}
	}
}

// TLSTarget reports whether a SIP URI is reached over TLS: the sips:
// scheme (RFC 3261 §19.1, RFC 5630) or a transport=tls parameter.
func TLSTarget(uri string) bool {
	l := strings.ToLower(uri)
	return strings.HasPrefix(l, "sips:") || strings.Contains(l, ";transport=tls")
}
