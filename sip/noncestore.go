package sip

import (
	"context"
	"errors"
	"time"
)

// NonceStore is where a Registrar keeps its digest nonces' shared state
// when several nodes answer the same agents (cluster.enabled): the key
// nonces are signed with, so a nonce one node issued verifies on another,
// and the highest nonce-count accepted per nonce, so a replay (RFC 7616
// §3.3, §5.12) is refused whichever node it reaches. A Registrar without
// one keeps both in memory, for this node only (the single-node default).
type NonceStore interface {
	// NonceKey returns the key every node signs nonces with, making one
	// on first use.
	NonceKey(ctx context.Context) ([]byte, error)
	// UseNonce records nonce-count nc on nonce, issued at issued and
	// usable for lifetime; it returns ErrNonceReplay when nc is not above
	// the highest count already accepted for nonce on any node.
	UseNonce(ctx context.Context, nonce string, issued time.Time, nc int, lifetime time.Duration) error
}

// ErrNonceReplay: a nonce-count not above the highest already accepted
// for the nonce (RFC 7616 §3.3).
var ErrNonceReplay = errors.New("sip: nonce-count replayed")

// nonceStoreTimeout bounds one call to a NonceStore: a REGISTER is not
// held longer than this by a slow database.
const nonceStoreTimeout = 2 * time.Second

// sharedKey returns the NonceStore's key, fetched once; nil while the
// store cannot be read (nonces are then signed with this node's own key
// and verify only here: a client whose nonce another node cannot check
// is challenged again, stale, and loses nothing).
func (r *Registrar) sharedKey() []byte {
	r.mu.Lock()
	k := r.storeKey
	r.mu.Unlock()
	if k != nil {
		return k
	}
	ctx, cancel := context.WithTimeout(context.Background(), nonceStoreTimeout)
	defer cancel()
	k, err := r.Nonces.NonceKey(ctx)
	if err != nil || len(k) < 16 {
		return nil
	}
	r.mu.Lock()
	r.storeKey = k
	r.mu.Unlock()
	return k
}

// useSharedNonce is useNonce with a NonceStore: a store that cannot be
// read answers stale (challenge again), never OK.
func (r *Registrar) useSharedNonce(n string, issued time.Time, nc int) authResult {
	ctx, cancel := context.WithTimeout(context.Background(), nonceStoreTimeout)
	defer cancel()
	switch err := r.Nonces.UseNonce(ctx, n, issued, nc, r.lifetime()); {
	case err == nil:
		return authOK
	case errors.Is(err, ErrNonceReplay):
		return authReplay
	default:
		return authStale
	}
}
