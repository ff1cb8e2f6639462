package sip

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// memNonces is a NonceStore two Registrars share, as two nodes share
// cluster's tables (cluster's tests run the real one on PostgreSQL).
type memNonces struct {
	mu   sync.Mutex
	key  []byte
	nc   map[string]int
	down bool
}

var errStoreDown = errors.New("store down")

func (m *memNonces) NonceKey(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errStoreDown
	}
	return m.key, nil
}

func (m *memNonces) UseNonce(_ context.Context, n string, _ time.Time, nc int, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errStoreDown
	}
	if nc <= m.nc[n] {
		return ErrNonceReplay
	}
	m.nc[n] = nc
	return nil
}

// TestSharedNoncesAcrossRegistrars: with one NonceStore, a nonce node A
// issued verifies on node B, and a nonce-count accepted on one is a
// replay on the other; with the store down, a good answer is stale
// (challenged again), never accepted unchecked.
func TestSharedNoncesAcrossRegistrars(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	store := &memNonces{key: []byte("0123456789abcdef0123456789abcdef"), nc: map[string]int{}}
	reg := func() *Registrar {
		return &Registrar{Algorithms: []string{"MD5"}, Now: func() time.Time { return now }, Nonces: store,
			Password: func(u string) (string, bool) { return "s3cret", u == "alice" }}
	}
	a, b := reg(), reg()
	c, err := digest.ParseChallenge(a.challenge(now, "")[0].Value())
	if err != nil {
		t.Fatal(err)
	}
	cred := func(nc int) *digest.Credentials {
		cr, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: "alice",
			Password: "s3cret", Count: nc, Cnonce: "x1"})
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	for _, tt := range []struct {
		name string
		r    *Registrar
		nc   int
		want authResult
	}{
		{"A's nonce on B", b, 1, authOK},
		{"same count on A", a, 1, authReplay},
		{"same count on B", b, 1, authReplay},
		{"next count on A", a, 2, authOK},
		{"older count on B", b, 2, authReplay},
	} {
		if got := tt.r.check(cred(tt.nc), "REGISTER", now); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// Without the store, a node with its own key refuses B's nonce as
	// not ours (stale), so the shared key is what made it verify.
	own := &Registrar{Algorithms: []string{"MD5"}, Now: func() time.Time { return now },
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" }}
	if got := own.check(cred(3), "REGISTER", now); got != authStale {
		t.Errorf("a node without the shared key: %v, want stale", got)
	}
	store.mu.Lock()
	store.down = true
	store.mu.Unlock()
	if got := b.check(cred(4), "REGISTER", now); got != authStale {
		t.Errorf("store down: %v, want stale (challenge again)", got)
	}
}
