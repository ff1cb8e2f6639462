package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
)

// countingNode counts the claims a Directory asks of the node.
type countingNode struct {
	*Node
	claims atomic.Int64
}

func (c *countingNode) Claim(ctx context.Context, queue string, names []string, callID string) (acd.Claimed, error) {
	c.claims.Add(1)
	return c.Node.Claim(ctx, queue, names, callID)
}

// TestWakeUpClaimsOnlyHeads (docs/SCALE.md, "The wake-up herd"): N
// callers wait on a node in two queues with no agent free; a wake-up
// through LISTEN/NOTIFY makes only this node's longest-waiting caller of
// each queue the notification names try a claim — 1 for a caller leaving
// one queue's line, 2 for a node's clean-up (any queue) — not all N, as
// when every wake-up woke every caller. The waiters run call.queueFor's
// loop (Changed per queue, MayClaim when woken) without its 1 s poll,
// which lets every caller ask and would blur the count.
func TestWakeUpClaimsOnlyHeads(t *testing.T) {
	const n = 20 // callers, half in each queue
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a, b := newNode(t, dsn, "a", time.Second, 5*time.Second), newNode(t, dsn, "b", time.Second, 5*time.Second)
	cfg := []acd.AgentConfig{ // never registered: every claim fails
		{Name: "alice", Queues: []string{"sales"}, Password: "x"},
		{Name: "bob", Queues: []string{"payments"}, Password: "x"},
	}
	dir, err := acd.NewDirectory(cfg, []acd.QueueConfig{{Name: "sales"}, {Name: "payments"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Seed(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cn := &countingNode{Node: a}
	dir.UseShared(cn, func(op string, err error) { t.Errorf("shared store: %s: %v", op, err) })
	woke := make(chan []string, 64)
	a.o.OnChange = func(q []string) { dir.Notify(q); woke <- q }
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	<-woke // listening

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i := range n {
		queue := []string{"sales", "payments"}[i%2]
		id := fmt.Sprintf("caller-%02d", i)
		dir.Join(queue, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer dir.Leave(id)
			polled := true
			for wctx.Err() == nil {
				changed := dir.Changed(queue)
				if polled || dir.MayClaim(queue, id) {
					if ag := dir.Offer(queue, id, nil); ag != nil {
						t.Errorf("%s offered %s: no agent is available", id, ag.Name())
						return
					}
				}
				select {
				case <-changed:
					polled = false
				case <-wctx.Done():
				}
			}
		}()
	}
	// settled waits until the count has not moved for 300 ms (bounded)
	// and returns it, reset.
	settled := func() int64 {
		last, still := int64(-1), 0
		for range 100 {
			c := cn.claims.Load()
			if c == last {
				if still++; still == 3 {
					break
				}
			} else {
				last, still = c, 0
			}
			time.Sleep(100 * time.Millisecond)
		}
		return cn.claims.Swap(0)
	}
	if got := settled(); got != n {
		t.Fatalf("first tries: %d claims, want one each (%d)", got, n)
	}
	for _, tc := range []struct {
		what string
		wake func() error
		want int64
	}{
		{"a caller on another node left sales' line", func() error {
			if _, err := b.Join(ctx, "sales", "gone"); err != nil {
				return err
			}
			return b.Leave(ctx, "gone")
		}, 1},
		{"a node's clean-up (any queue)", func() error {
			_, err := b.db.ExecContext(ctx, `SELECT pg_notify('`+Channel+`', '')`)
			return err
		}, 2},
	} {
		if err := tc.wake(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no wake-up", tc.what)
		}
		got := settled()
		t.Logf("%s: %d claims with %d callers waiting", tc.what, got, n)
		if got != tc.want {
			t.Errorf("%s: %d claims, want %d (the head of each queue notified)", tc.what, got, tc.want)
		}
	}
}
