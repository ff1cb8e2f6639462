// Package certs serves a TLS certificate that can be replaced while
// listeners run: the SIP TLS transport and the HTTPS API hand
// tls.Config.GetCertificate a Reloader, which swaps the key pair
// atomically on Reload (SIGHUP) or when Watch sees the files change.
// Connections already up keep the certificate they were made with; only
// new handshakes see the new one, so no call is dropped by a reload.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrCert is wrapped by every error about a certificate or key file.
var ErrCert = errors.New("certificate")

// Reloader holds the current key pair of one cert_file/key_file pair.
type Reloader struct {
	certFile, keyFile string

	cur atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // serialises Reload
	modCert time.Time
	modKey  time.Time
}

// New loads certFile and keyFile (PEM) and returns a Reloader serving
// them. A missing or unreadable file, or a key that does not match the
// certificate, is an error naming the file.
func New(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again and, when they hold a valid key pair,
// makes it the one new handshakes get; on error the previous pair stays
// in use. It reports whether the certificate changed.
func (r *Reloader) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mc, mk := modTime(r.certFile), modTime(r.keyFile)
	// The times are kept even when the pair fails to load, so Watch tries
	// again on the next change of either file, not on every poll.
	r.modCert, r.modKey = mc, mk
	pair, err := LoadPair(r.certFile, r.keyFile)
	if err != nil {
		return false, err
	}
	old := r.cur.Swap(&pair)
	changed := old == nil || len(old.Certificate) == 0 || string(old.Certificate[0]) != string(pair.Certificate[0])
	return changed, nil
}

// LoadPair reads a PEM certificate chain and its private key, naming the
// file that is missing, unreadable or wrong.
func LoadPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: cert_file %s: %v", ErrCert, certFile, unwrapPath(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: key_file %s: %v", ErrCert, keyFile, unwrapPath(err))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: cert_file %s with key_file %s: %v", ErrCert, certFile, keyFile, err)
	}
	return pair, nil
}

// unwrapPath drops the path os.ReadFile repeats in its error.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadPool reads a PEM bundle of CA certificates (client_ca_file,
// ca_file), naming the file when it is missing or holds none.
func LoadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCert, file, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrCert, file)
	}
	return pool, nil
}

// Certificate returns the current key pair.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// GetClientCertificate implements tls.Config.GetClientCertificate: the
// same pair is presented when cloak is the client (mutual TLS to a trunk).
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Changed reports whether either file's modification time differs from
// the one the current pair was loaded at.
func (r *Reloader) Changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !modTime(r.certFile).Equal(r.modCert) || !modTime(r.keyFile).Equal(r.modKey)
}

// Watch polls the files every interval until ctx ends and reloads when
// their modification time changes; onReload gets each outcome (err nil
// on success), for the log. A half-written pair fails to parse and is
// retried on the next poll.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration, onReload func(changed bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.Changed() {
			continue
		}
		changed, err := r.Reload()
		if onReload != nil {
			onReload(changed, err)
		}
	}
}

func modTime(file string) time.Time {
	fi, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// ParseMinVersion maps "1.2" and "1.3" to tls.VersionTLS12/13; TLS 1.0
// and 1.1 are refused (RFC 8996).
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "1.2", "":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q: want 1.2 or 1.3 (TLS 1.0 and 1.1 are deprecated, RFC 8996)", s)
}

// Files returns the certificate and key file names.
func (r *Reloader) Files() (certFile, keyFile string) { return r.certFile, r.keyFile }
