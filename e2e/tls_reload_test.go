package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTLSReloadOnFileChange: with no signal at all, replacing sip.tls's
// certificate and key files (renamed into place, key first, as an ACME
// client does) is noticed by cloak's file watch: it logs the reload with
// trigger "file change", a new handshake gets the new certificate, and a
// TLS connection made before keeps working (OPTIONS answered on it).
// TestTLSGoClientCallsEcho covers SIGHUP with a call up.
func TestTLSReloadOnFileChange(t *testing.T) {
	c, addr, ca, is := tlsCloak(t, cloakOpts{json: true, logLevel: "info"})
	defer c.stop()
	s := dialTLSSIP(t, addr, ca.Pool)
	s.send(s.request("OPTIONS", "sips:cloak@"+addr, "reload-1@e2e", 1, "<sips:cloak@"+addr+">", "", ""))
	if got := s.final("OPTIONS before"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS over TLS: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	before := serialOf(t, addr, ca.Pool)
	if c.waitLog("certificate reloaded", 0) {
		t.Fatal("a reload was logged before the files changed")
	}

	fresh := ca.Issue(t, "", "cloak-renewed", "127.0.0.1")
	for from, to := range map[string]string{fresh.KeyFile: is.KeyFile, fresh.CertFile: is.CertFile} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{is.KeyFile, is.CertFile} {
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
	// The watch polls every 2 s (server/tls.go certPollInterval).
	if !c.waitLog("certificate reloaded", 10*time.Second) {
		t.Fatalf("no reload after the files changed:\n%s", tail(c.log(), 2000))
	}
	if !regexp.MustCompile(`"field":"sip.tls","trigger":"file change","changed":true`).MatchString(c.log()) {
		t.Errorf("the reload was not logged as a file change of sip.tls:\n%s", tail(c.log(), 2000))
	}
	after := serialOf(t, addr, ca.Pool)
	for deadline := time.Now().Add(5 * time.Second); after == before && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		after = serialOf(t, addr, ca.Pool)
	}
	if after == before {
		t.Fatal("a new handshake still gets the old certificate after the files changed")
	}
	s.send(s.request("OPTIONS", "sips:cloak@"+addr, "reload-2@e2e", 2, "<sips:cloak@"+addr+">", "", ""))
	if got := s.final("OPTIONS after"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS on the connection made before the reload: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	if strings.Contains(c.log(), "PRIVATE KEY") {
		t.Fatal("key material in cloak's log")
	}
}
