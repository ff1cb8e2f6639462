package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/certs/certstest"
)

func TestValidateTLSNamesTheField(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	is := ca.Issue(t, "", "server", "127.0.0.1")
	garbage := filepath.Join(t.TempDir(), "garbage.key")
	if err := os.WriteFile(garbage, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	withTLS := func(f func(*Config)) Config {
		c := Default()
		c.SIP.Transports = []string{"udp", "tls"}
		c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile = is.CertFile, is.KeyFile
		f(&c)
		return c
	}
	ok := withTLS(func(*Config) {})
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid TLS config refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing cert", withTLS(func(c *Config) { c.SIP.TLS.CertFile = "" }), "sip.tls.cert_file: missing"},
		{"missing key", withTLS(func(c *Config) { c.SIP.TLS.KeyFile = "" }), "sip.tls.key_file: missing"},
		{"unreadable key", withTLS(func(c *Config) { c.SIP.TLS.KeyFile = missing }), "sip.tls.key_file: certificate: key_file " + missing},
		{"cert file gone", withTLS(func(c *Config) { c.SIP.TLS.CertFile = missing }), "sip.tls.cert_file: certificate: cert_file " + missing},
		{"key not a key", withTLS(func(c *Config) { c.SIP.TLS.KeyFile = garbage }), "sip.tls.cert_file: certificate: cert_file"},
		{"bad min_version", withTLS(func(c *Config) { c.SIP.TLS.MinVersion = "1.0" }), "sip.tls.min_version: \"1.0\": want 1.2 or 1.3"},
		{"bad listen", withTLS(func(c *Config) { c.SIP.TLS.Listen = "5061" }), "sip.tls.listen: want IP:PORT"},
		{"same port as udp/tcp", withTLS(func(c *Config) { c.SIP.TLS.Listen = c.SIP.Listen }), "sip.tls.listen: 127.0.0.1:5060 is sip.listen's address"},
		{"client ca no PEM", withTLS(func(c *Config) { c.SIP.TLS.ClientCAFile = garbage }), "sip.tls.client_ca_file: certificate: " + garbage + " holds no PEM"},
		{"unknown transport", withTLS(func(c *Config) { c.SIP.Transports = []string{"sctp"} }), "sip.transports[0]: unknown transport \"sctp\" (want udp, tcp or tls)"},
		{"admin key without cert", withTLS(func(c *Config) { c.Admin.TLS.KeyFile = is.KeyFile }), "admin.tls.cert_file: missing"},
		{"admin public plain", withTLS(func(c *Config) { c.Admin.Listen = "0.0.0.0:8080" }), "admin.listen: 0.0.0.0:8080 is beyond loopback without admin.tls"},
		{"tls route without tls", withTLS(func(c *Config) {
			c.SIP.Transports = []string{"udp"}
			c.Routes["trunk"] = "dial:sips:pstn@192.0.2.9:5061"
		}), `routes.trunk: "dial:sips:pstn@192.0.2.9:5061" is dialled over TLS`},
		{"tls agent without tls", withTLS(func(c *Config) {
			c.SIP.Transports = []string{"udp"}
			c.Agents[0].URI = "sip:demo@192.0.2.7:5061;transport=tls"
		}), `agents[0].uri: "sip:demo@192.0.2.7:5061;transport=tls" is called over TLS`},
		{"flows ca missing", withTLS(func(c *Config) { c.Flows.TLS.CAFile = missing }), "flows.tls.ca_file: certificate: " + missing},
		{"flows client key missing", withTLS(func(c *Config) { c.Flows.TLS.ClientCertFile = is.CertFile }), "flows.tls.client_key_file: missing"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
	sipsRoute := withTLS(func(c *Config) {
		c.Routes["trunk"] = "dial:sips:pstn@192.0.2.9:5061"
		c.Agents[0].URI = "sips:demo@192.0.2.7:5061"
	})
	if err := sipsRoute.Validate(); err != nil {
		t.Errorf("sips route and agent with tls refused: %v", err)
	}
	// Without tls in transports, the empty sip.tls is not checked.
	if c := Default(); c.Validate() != nil {
		t.Fatal("default refused")
	}
	for _, f := range []func(*Config){
		func(c *Config) { c.Admin.Listen = "0.0.0.0:8080"; c.Admin.AllowPlain = true },
		func(c *Config) {
			c.Admin.Listen = "0.0.0.0:8080"
			c.Admin.TLS = AdminTLS{CertFile: is.CertFile, KeyFile: is.KeyFile}
		},
	} {
		c := withTLS(f)
		if err := c.Validate(); err != nil {
			t.Errorf("public admin with TLS or allow_plain refused: %v", err)
		}
	}
}
