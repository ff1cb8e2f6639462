package certs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs"
	"github.com/cloak-voip/cloak/certs/certstest"
)

func TestReloadSwapsForNewHandshakesOnly(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	first := ca.Issue(t, dir, "server", "127.0.0.1")
	r, err := certs.New(first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); buf := make([]byte, 1); _, _ = c.Read(buf); c.Close() }()
		}
	}()
	serialOf := func() string {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serialOf()
	held, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	ca.Issue(t, dir, "server", "127.0.0.1") // same files, new pair
	changed, err := r.Reload()
	if err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want changed", changed, err)
	}
	if after := serialOf(); after == before {
		t.Fatalf("new handshake still got serial %s", before)
	}
	if _, err := held.Write([]byte("x")); err != nil {
		t.Fatalf("connection made before the reload broke: %v", err)
	}
}

func TestReloadKeepsOldPairOnBadFiles(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	is := ca.Issue(t, dir, "server", "127.0.0.1")
	r, err := certs.New(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	old := r.Certificate()
	if err := os.WriteFile(is.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); !errors.Is(err, certs.ErrCert) || !strings.Contains(err.Error(), "key_file") {
		t.Fatalf("Reload with a bad key = %v; want ErrCert naming key_file", err)
	}
	if r.Certificate() != old {
		t.Fatal("a failed reload replaced the pair")
	}
}

func TestNewNamesTheMissingFile(t *testing.T) {
	_, err := certs.New(filepath.Join(t.TempDir(), "nope.crt"), "x.key")
	if err == nil || !strings.Contains(err.Error(), "cert_file") || !strings.Contains(err.Error(), "nope.crt") {
		t.Fatalf("err = %v; want it to name cert_file nope.crt", err)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	is := ca.Issue(t, dir, "server", "127.0.0.1")
	r, err := certs.New(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	old := r.Certificate()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan error, 4)
	go r.Watch(ctx, 10*time.Millisecond, func(_ bool, err error) { got <- err })
	// A later mtime than the first load, even on coarse clocks.
	ca.Issue(t, dir, "server", "127.0.0.1")
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(is.CertFile, future, future)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not reload within 5s")
	}
	if r.Certificate() == old {
		t.Fatal("pair not replaced")
	}
}

func TestParseMinVersion(t *testing.T) {
	for in, want := range map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if v, err := certs.ParseMinVersion(in); err != nil || v != want {
			t.Errorf("%s: %v %v", in, v, err)
		}
	}
	for _, in := range []string{"1.0", "1.1", "tls12"} {
		if _, err := certs.ParseMinVersion(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}
