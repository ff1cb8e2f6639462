package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/sip"
)

// TestSharedNonces: two nodes on one PostgreSQL read one nonce key, and
// a nonce-count accepted on one is a replay on the other (in either
// order), while a higher count is accepted on either.
func TestSharedNonces(t *testing.T) {
	_, dsn := testDB(t)
	a := newNode(t, dsn, "node-a", time.Second, 5*time.Second)
	b := newNode(t, dsn, "node-b", time.Second, 5*time.Second)
	ctx := ctxT(t)
	ka, err := a.NonceKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.NonceKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != 32 || string(ka) != string(kb) {
		t.Fatalf("nonce keys differ or are short: %x, %x", ka, kb)
	}
	issued, life := time.Now(), 5*time.Minute
	for i, step := range []struct {
		n    *Node
		nc   int
		want error
	}{
		{a, 1, nil}, {b, 1, sip.ErrNonceReplay}, {a, 1, sip.ErrNonceReplay},
		{b, 2, nil}, {a, 2, sip.ErrNonceReplay}, {a, 1, sip.ErrNonceReplay}, {a, 3, nil},
	} {
		if err := step.n.UseNonce(ctx, "n1", issued, step.nc, life); !errors.Is(err, step.want) {
			t.Errorf("step %d (%s, nc %d): %v, want %v", i, step.n.ID(), step.nc, err, step.want)
		}
	}
	if err := b.UseNonce(ctx, "n2", issued, 1, life); err != nil {
		t.Errorf("another nonce's first use: %v", err)
	}
	// A nonce past its lifetime is forgotten as the next one is used.
	if err := a.UseNonce(ctx, "old", issued.Add(-time.Hour), 1, life); err != nil {
		t.Fatal(err)
	}
	if err := b.UseNonce(ctx, "n3", issued, 1, life); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM cluster_nonces WHERE nonce = 'old'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("expired nonce rows left: %d %v", left, err)
	}
}
