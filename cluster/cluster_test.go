package cluster

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var testKey = []byte("0123456789abcdef0123456789abcdef")

// testDB is a fresh migrated archive database on the test PostgreSQL and
// its DSN.
func testDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := archive.Open(ctx, archive.Options{DSN: dsn, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.DB(), dsn
}

// newNode is a node over its own connection pool (as a separate process
// would have), not started.
func newNode(t *testing.T, dsn, id string, hb, timeout time.Duration) *Node {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := New(db, Options{NodeID: id, Heartbeat: hb, NodeTimeout: timeout, DSN: dsn, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var agents = []acd.AgentConfig{
	{Name: "alice", Queues: []string{"sales"}},
	{Name: "bob", Queues: []string{"sales"}},
}

func stateOf(t *testing.T, n *Node, name string) string {
	t.Helper()
	list, err := n.Agents(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.Name == name {
			return a.State
		}
	}
	t.Fatalf("agent %q not in the shared table", name)
	return ""
}

// TestClaimRaceNeverTwice: two nodes claim the one available agent at
// the same moment, 1000 times: exactly one wins each round, never both.
func TestClaimRaceNeverTwice(t *testing.T) {
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a, b := newNode(t, dsn, "a", time.Second, 5*time.Second), newNode(t, dsn, "b", time.Second, 5*time.Second)
	if err := a.Seed(ctx, agents[:1]); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", []string{"<sip:127.0.0.1:5090;lr>"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	const rounds = 1000
	both, none := 0, 0
	for i := 0; i < rounds; i++ {
		var wg sync.WaitGroup
		var wins atomic.Int32
		var winner atomic.Pointer[Node]
		start := make(chan struct{})
		for _, n := range []*Node{a, b} {
			wg.Add(1)
			go func(n *Node) {
				defer wg.Done()
				<-start
				cl, err := n.Claim(ctx, "sales", []string{"alice"}, "call")
				switch {
				case err == nil:
					if cl.Contact != "sip:alice@127.0.0.1:5070" || len(cl.Path) != 1 {
						t.Errorf("claim returned %+v", cl)
					}
					wins.Add(1)
					winner.Store(n)
				case !errors.Is(err, acd.ErrNoAgent):
					t.Error(err)
				}
			}(n)
		}
		close(start)
		wg.Wait()
		switch wins.Load() {
		case 2:
			both++
		case 0:
			none++
			continue
		}
		if err := winner.Load().Set(ctx, "alice", acd.Available, "call"); err != nil {
			t.Fatal(err)
		}
	}
	if both != 0 || none != 0 {
		t.Fatalf("of %d rounds: both nodes won %d, neither %d", rounds, both, none)
	}
}

// TestClaimLongestIdleAndExpiry: the longest-idle available agent is
// claimed first, ties go to configuration order, a reserved agent is
// never claimed, and an expired registration is not dialled.
func TestClaimLongestIdleAndExpiry(t *testing.T) {
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a, b := newNode(t, dsn, "a", time.Second, 5*time.Second), newNode(t, dsn, "b", time.Second, 5*time.Second)
	if err := a.Seed(ctx, agents); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, "sales", []string{"alice", "bob"}, "c0"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("claim with nobody registered: %v", err)
	}
	_ = a.Register(ctx, "bob", "sip:bob@127.0.0.1:5071", nil, time.Hour)
	time.Sleep(20 * time.Millisecond)
	_ = a.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", nil, time.Hour)
	cl, err := b.Claim(ctx, "sales", []string{"alice", "bob"}, "c1")
	if err != nil || cl.Name != "bob" {
		t.Fatalf("first claim: %+v %v, want bob (idle longest)", cl, err)
	}
	if err := b.Set(ctx, "bob", acd.Reserved, "c1"); err != nil {
		t.Fatal(err)
	}
	// Only the claiming node moves the agent: a's Set is a no-op.
	if err := a.Set(ctx, "bob", acd.Available, "c1"); err != nil {
		t.Fatal(err)
	}
	if s := stateOf(t, a, "bob"); s != "reserved" {
		t.Fatalf("bob is %s after another node's Set, want reserved", s)
	}
	cl, err = a.Claim(ctx, "sales", []string{"alice", "bob"}, "c2")
	if err != nil || cl.Name != "alice" {
		t.Fatalf("second claim: %+v %v, want alice (bob reserved)", cl, err)
	}
	if _, err := a.Claim(ctx, "sales", []string{"alice", "bob"}, "c3"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("claim with alice ringing and bob reserved: %v", err)
	}
	// A missed offer does not reset alice's idle time; bob's call ending does.
	_ = a.Set(ctx, "alice", acd.Available, "c2")
	_ = b.Set(ctx, "bob", acd.Available, "c1")
	if cl, _ := a.Claim(ctx, "sales", []string{"bob", "alice"}, "c4"); cl.Name != "alice" {
		t.Fatalf("claim after a missed offer took %q, want alice", cl.Name)
	}
	_ = a.Set(ctx, "alice", acd.Available, "c4")
	// An expired registration is not claimed and shows logged out.
	_ = a.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", nil, 50*time.Millisecond)
	_ = a.Register(ctx, "bob", "", nil, 0)
	time.Sleep(100 * time.Millisecond)
	if cl, err := a.Claim(ctx, "sales", []string{"alice", "bob"}, "c5"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("claim with alice expired and bob unregistered: %+v %v", cl, err)
	}
	if s := stateOf(t, a, "alice"); s != "logged-out" {
		t.Errorf("expired alice shows %s", s)
	}
	if s := stateOf(t, a, "bob"); s != "logged-out" {
		t.Errorf("unregistered bob shows %s", s)
	}
}

// TestNodeLossFreesReservedAgent: node A holds a call whose agent is
// reserved (a secure flow); node B cannot claim them. A stops beating:
// after the node timeout exactly one of two survivors declares it lost,
// the agent is available and claimable on B, and A's call is in the
// archive as ended node-lost.
func TestNodeLossFreesReservedAgent(t *testing.T) {
	db, dsn := testDB(t)
	ctx := ctxT(t)
	const hb, timeout = 100 * time.Millisecond, 400 * time.Millisecond
	a, b, c := newNode(t, dsn, "a", hb, timeout), newNode(t, dsn, "b", hb, timeout), newNode(t, dsn, "c", hb, timeout)
	offered := time.Now().Add(-time.Minute)
	a.o.Calls = func() []Call {
		return []Call{{ID: "ix-1", SIPCallID: "sip-1", Caller: "+441000000001", Called: "main", Offered: offered}}
	}
	for _, n := range []*Node{a, b, c} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { b.Stop(context.Background()); c.Stop(context.Background()) })
	_ = a.Seed(ctx, agents[:1])
	_ = a.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", nil, time.Hour)
	if _, err := a.Claim(ctx, "sales", []string{"alice"}, "ix-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "alice", acd.Reserved, "ix-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Beat(ctx); err != nil { // the call is in the registry
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "sales", []string{"alice"}, "ix-2"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("node B claimed an agent reserved on node A: %v", err)
	}
	// Survivors' loops run every 100 ms: reaping is theirs once A is silent.
	a.cancel()
	a.wg.Wait()
	killed := time.Now()
	deadline := killed.Add(timeout + 3*time.Second)
	for stateOf(t, b, "alice") != "available" {
		if time.Now().After(deadline) {
			t.Fatalf("alice still %s %v after node A stopped beating", stateOf(t, b, "alice"), time.Since(killed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(killed); took < timeout {
		t.Errorf("alice freed after %v, before the node timeout %v", took, timeout)
	}
	if cl, err := b.Claim(ctx, "sales", []string{"alice"}, "ix-2"); err != nil || cl.Name != "alice" {
		t.Fatalf("node B cannot claim alice after node A was lost: %v", err)
	}
	var reason, node string
	var ended int64
	if err := db.QueryRowContext(ctx, `SELECT end_reason, node, ended_at FROM interactions WHERE id = 'ix-1'`).Scan(&reason, &node, &ended); err != nil {
		t.Fatalf("node A's call not archived: %v", err)
	}
	if reason != EndReason || node != "a" || ended < offered.UnixMilli() {
		t.Errorf("archived as reason %q node %q ended %d, want %q a", reason, node, ended, EndReason)
	}
	var live int
	_ = db.QueryRowContext(ctx, `SELECT count(*) FROM cluster_calls`).Scan(&live)
	if live != 0 {
		t.Errorf("%d calls left in the registry", live)
	}
	list, err := b.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ni := range list {
		if ni.ID == "a" && ni.Lost.IsZero() || ni.ID != "a" && !ni.Lost.IsZero() {
			t.Errorf("registry: %+v", ni)
		}
	}
	// Node A comes back: it joins again, and the next reap does nothing.
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	if lost, err := b.Reap(ctx); err != nil || len(lost) != 0 {
		t.Errorf("reap after node A returned: %v %v", lost, err)
	}
}

// TestReapOnce: two survivors reaping at the same moment declare a silent
// node lost once between them.
func TestReapOnce(t *testing.T) {
	db, dsn := testDB(t)
	ctx := ctxT(t)
	b, c := newNode(t, dsn, "b", time.Second, 3*time.Second), newNode(t, dsn, "c", time.Second, 3*time.Second)
	for i := 0; i < 50; i++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO cluster_nodes (id, started_at, heartbeat_at) VALUES ($1, 0, 0)
ON CONFLICT (id) DO UPDATE SET lost_at = 0, heartbeat_at = 0`, "gone"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var got atomic.Int32
		for _, n := range []*Node{b, c} {
			wg.Add(1)
			go func(n *Node) {
				defer wg.Done()
				lost, err := n.Reap(ctx)
				if err != nil {
					t.Error(err)
				}
				got.Add(int32(len(lost)))
			}(n)
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Fatalf("round %d: the silent node was declared lost %d times", i, got.Load())
		}
	}
}

// TestListenWakes: a change another node makes (an agent freed) calls
// OnChange on a started node through LISTEN/NOTIFY, well within the
// poll fallback's second, naming the queues concerned: the agent's
// queues when it became available, the queue a waiting caller left, any
// queue when (re)connected.
func TestListenWakes(t *testing.T) {
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a, b := newNode(t, dsn, "a", time.Second, 5*time.Second), newNode(t, dsn, "b", time.Second, 5*time.Second)
	woke := make(chan []string, 16)
	a.o.OnChange = func(q []string) { woke <- q }
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	wakeFor := func(what string, want []string) {
		t.Helper()
		select {
		case got := <-woke:
			if !slices.Equal(got, want) {
				t.Errorf("%s: woken for queues %q, want %q", what, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	wakeFor("listening", nil) // the first call, once listening: any queue
	two := []acd.AgentConfig{{Name: "alice", Queues: []string{"sales", "payments"}}}
	_ = b.Seed(ctx, two)
	_ = b.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", nil, time.Hour)
	wakeFor("registered", []string{"sales", "payments"})
	if _, err := b.Claim(ctx, "sales", []string{"alice"}, "x"); err != nil {
		t.Fatal(err)
	}
	_ = b.Set(ctx, "alice", acd.Busy, "x")
	sent := time.Now()
	if err := b.Set(ctx, "alice", acd.Available, "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-woke:
		t.Logf("woken %v after the agent was freed on the other node", time.Since(sent))
		if !slices.Equal(got, []string{"sales", "payments"}) {
			t.Errorf("agent freed: woken for queues %q, want the agent's", got)
		}
	case <-time.After(time.Second):
		t.Fatal("no wake-up within 1 s of another node freeing an agent")
	}
	if _, err := b.Join(ctx, "payments", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := b.Leave(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	wakeFor("a waiting caller left", []string{"payments"})
}

// TestQueueLongestWaitingFirst: a caller waiting on node A joined before
// one on node B; an agent freed: B cannot claim them for its later
// caller, A can for its earlier one. While A's caller is being offered,
// B's caller is next in line; when A's offer fails, A's caller is back
// at the head in their place; a lost node's waiting callers leave the
// line.
func TestQueueLongestWaitingFirst(t *testing.T) {
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a, b := newNode(t, dsn, "a", time.Second, 5*time.Second), newNode(t, dsn, "b", time.Second, 5*time.Second)
	_ = a.Seed(ctx, agents)
	if _, err := a.Join(ctx, "sales", "early"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := b.Join(ctx, "sales", "late"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, "payments", "other-queue"); err != nil {
		t.Fatal(err)
	}
	_ = b.Register(ctx, "alice", "sip:alice@127.0.0.1:5070", nil, time.Hour)
	names := []string{"alice", "bob"}
	if cl, err := b.Claim(ctx, "sales", names, "late"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("node B claimed %q for its later caller while node A's earlier one waits: %v", cl.Name, err)
	}
	if _, err := b.Claim(ctx, "payments", []string{"alice"}, "other-queue"); err != nil {
		t.Fatalf("another queue's line held up: %v", err)
	}
	_ = b.Set(ctx, "alice", acd.Available, "other-queue") // no answer
	if cl, err := a.Claim(ctx, "sales", names, "early"); err != nil || cl.Name != "alice" {
		t.Fatalf("node A's earlier caller: %+v %v", cl, err)
	}
	// early is being offered alice: late is next, and takes bob.
	_ = a.Register(ctx, "bob", "sip:bob@127.0.0.1:5071", nil, time.Hour)
	if cl, err := b.Claim(ctx, "sales", names, "late"); err != nil || cl.Name != "bob" {
		t.Fatalf("node B's caller while A's is offered: %+v %v", cl, err)
	}
	// Both offers fail: early is back at the head, ahead of late.
	_ = a.Set(ctx, "alice", acd.Available, "early")
	_ = b.Set(ctx, "bob", acd.Available, "late")
	if cl, err := b.Claim(ctx, "sales", names, "late"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("after a missed offer the earlier caller lost their place: B claimed %q (%v)", cl.Name, err)
	}
	// Node A is lost: its waiting caller leaves the line with it.
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.cancel()
	a.wg.Wait()
	if _, err := b.db.ExecContext(ctx, `UPDATE cluster_nodes SET heartbeat_at = 0 WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	// The restart's clean-up removed early: put them back at the head.
	if _, err := a.Join(ctx, "sales", "early"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.ExecContext(ctx, `UPDATE cluster_waiting SET joined_at = 0 WHERE call_id = 'early'`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "sales", names, "late"); !errors.Is(err, acd.ErrNoAgent) {
		t.Fatalf("late claimed ahead of early: %v", err)
	}
	if lost, err := b.Reap(ctx); err != nil || len(lost) != 1 {
		t.Fatalf("reap: %v %v", lost, err)
	}
	if _, err := b.Claim(ctx, "sales", names, "late"); err != nil {
		t.Fatalf("node B's caller after node A was lost: %v", err)
	}
	if err := b.Leave(ctx, "late"); err != nil {
		t.Fatal(err)
	}
}

// TestBeatSyncsCalls: each heartbeat adds the node's new calls to the
// registry and removes the ended ones (keeping when each was first seen),
// and a node declared lost while it was cut off is live again at its
// next heartbeat, its call count current.
func TestBeatSyncsCalls(t *testing.T) {
	db, dsn := testDB(t)
	ctx := ctxT(t)
	a := newNode(t, dsn, "a", time.Second, 5*time.Second)
	t0 := time.UnixMilli(1_700_000_000_000)
	calls := []Call{{ID: "x", Offered: t0}, {ID: "y", Offered: t0}}
	a.o.Calls = func() []Call { return calls }
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	ids := func() []string {
		rows, err := db.QueryContext(ctx, `SELECT id FROM cluster_calls WHERE node = 'a' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			out = append(out, id)
		}
		return out
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("calls after the first beat: %v", got)
	}
	calls = []Call{{ID: "y", Offered: t0.Add(time.Hour)}, {ID: "z", Offered: t0}}
	_, _ = db.ExecContext(ctx, `UPDATE cluster_nodes SET lost_at = 1 WHERE id = 'a'`) // declared lost meanwhile
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(); !slices.Equal(got, []string{"y", "z"}) {
		t.Fatalf("calls after the second beat: %v, want [y z]", got)
	}
	var offered int64
	_ = db.QueryRowContext(ctx, `SELECT offered_at FROM cluster_calls WHERE id = 'y'`).Scan(&offered)
	if offered != t0.UnixMilli() {
		t.Errorf("y's first-seen time moved to %d", offered)
	}
	list, err := a.Nodes(ctx)
	if err != nil || len(list) != 1 || !list[0].Lost.IsZero() || list[0].Calls != 2 {
		t.Fatalf("registry after the beat: %+v %v, want a live, 2 calls", list, err)
	}
}

// TestCallNode: a call synced by node b is found on b (with its admin
// address, for forwarding), from node a's connection; an unknown or
// ended call is ErrNoCall.
func TestCallNode(t *testing.T) {
	_, dsn := testDB(t)
	ctx := ctxT(t)
	a := newNode(t, dsn, "a", time.Second, 5*time.Second)
	b := newNode(t, dsn, "b", time.Second, 5*time.Second)
	b.o.AdminAddr = "127.0.0.1:8081"
	calls := []Call{{ID: "c1", Offered: time.Now()}}
	b.o.Calls = func() []Call { return calls }
	for _, n := range []*Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
	}
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	ni, err := a.CallNode(ctx, "c1")
	if err != nil || ni.ID != "b" || ni.AdminAddr != "127.0.0.1:8081" || !ni.Lost.IsZero() {
		t.Fatalf("node of c1: %+v %v, want b at 127.0.0.1:8081", ni, err)
	}
	if _, err := a.CallNode(ctx, "c2"); !errors.Is(err, ErrNoCall) {
		t.Errorf("unknown call: %v, want ErrNoCall", err)
	}
	calls = nil
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CallNode(ctx, "c1"); !errors.Is(err, ErrNoCall) {
		t.Errorf("ended call: %v, want ErrNoCall", err)
	}
}
