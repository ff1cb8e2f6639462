package cluster

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cloak-voip/cloak/sip"
)

// Node implements sip.NonceStore: the nodes share one nonce key and the
// nonce-counts in PostgreSQL (tables of archive/migrations/*/00011), so
// a REGISTER challenged by one node may be answered to another, and a
// replayed nonce-count is refused by all.
var _ sip.NonceStore = (*Node)(nil)

// NonceKey implements sip.NonceStore: the first node to ask makes the
// key (32 random bytes); every node reads the same row.
func (n *Node) NonceKey(ctx context.Context) ([]byte, error) {
	var fresh [32]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return nil, fmt.Errorf("cluster: nonce key: %w", err)
	}
	if _, err := n.db.ExecContext(ctx, `INSERT INTO cluster_nonce_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`,
		hex.EncodeToString(fresh[:])); err != nil {
		return nil, fmt.Errorf("cluster: nonce key: %w", err)
	}
	var h string
	if err := n.db.QueryRowContext(ctx, `SELECT key FROM cluster_nonce_key WHERE id = 1`).Scan(&h); err != nil {
		return nil, fmt.Errorf("cluster: nonce key: %w", err)
	}
	k, err := hex.DecodeString(h)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("cluster: nonce key: %w", ErrNonceKey)
	}
	return k, nil
}

// ErrNonceKey: the shared nonce key row is not a usable key.
var ErrNonceKey = errors.New("cluster: the shared nonce key is unreadable")

// UseNonce implements sip.NonceStore in one statement: the count is
// stored only if above the highest stored, so of two nodes given the same
// count at once exactly one accepts it. Nonces past lifetime are deleted
// first (they are refused as stale before reaching the store).
func (n *Node) UseNonce(ctx context.Context, nonce string, issued time.Time, nc int, lifetime time.Duration) error {
	if _, err := n.db.ExecContext(ctx, `DELETE FROM cluster_nonces WHERE issued_at < $1`,
		time.Now().Add(-lifetime-time.Minute).UnixMilli()); err != nil {
		return fmt.Errorf("cluster: forget old nonces: %w", err)
	}
	var got int64
	err := n.db.QueryRowContext(ctx, `INSERT INTO cluster_nonces (nonce, issued_at, nc) VALUES ($1, $2, $3)
ON CONFLICT (nonce) DO UPDATE SET nc = EXCLUDED.nc WHERE cluster_nonces.nc < EXCLUDED.nc
RETURNING nc`, nonce, issued.UnixMilli(), nc).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return sip.ErrNonceReplay
	}
	if err != nil {
		return fmt.Errorf("cluster: use nonce: %w", err)
	}
	return nil
}
