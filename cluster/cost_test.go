package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/archive"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// dbCounters are the database's cumulative counters (pg_stat_database)
// and the cluster's WAL position.
type dbCounters struct {
	xacts, ins, upd, del int64
	wal                  int64 // bytes, pg_current_wal_lsn
}

func (a dbCounters) minus(b dbCounters) dbCounters {
	return dbCounters{a.xacts - b.xacts, a.ins - b.ins, a.upd - b.upd, a.del - b.del, a.wal - b.wal}
}

func (a dbCounters) per(n int) string {
	f := float64(n)
	return fmt.Sprintf("%.2f transactions, %.2f rows inserted, %.2f updated, %.2f deleted, %.0f WAL bytes",
		float64(a.xacts)/f, float64(a.ins)/f, float64(a.upd)/f, float64(a.del)/f, float64(a.wal)/f)
}

// counters reads them on a connection of its own, closed after.
func counters(t *testing.T, dsn string) dbCounters {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c dbCounters
	err = db.QueryRow(`SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,
  pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint
FROM pg_stat_database WHERE datname = current_database()`).Scan(&c.xacts, &c.ins, &c.upd, &c.del, &c.wal)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// measure runs f over a connection pool of its own and returns what the
// database counted meanwhile. PostgreSQL 15 flushes an idle backend's
// statistics only every 10 s, but always when it exits: the pool is
// closed before the second reading. The readings' own transactions are
// subtracted (give or take one, flushed late).
func measure(t *testing.T, dsn string, f func(db *sql.DB)) dbCounters {
	t.Helper()
	before := counters(t, dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	f(db)
	db.Close()
	// The backends exit and flush (later on a loaded machine): until two
	// readings 300 ms apart differ by their own transaction only.
	after, reads := counters(t, dsn), 2
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		next := counters(t, dsn)
		reads++
		same := next.ins == after.ins && next.upd == after.upd && next.del == after.del && next.xacts <= after.xacts+1
		after = next
		if same {
			break
		}
	}
	d := after.minus(before)
	d.xacts -= int64(reads - 1) // all but the last's, flushed by the time it read
	return d.minus(overhead)
}

// overhead is what an empty measurement counts.
var overhead dbCounters

// TestPerCallDatabaseCost measures what the shared database does per
// call and per heartbeat (docs/SCALE.md, "Sizing on paper"): the
// cluster's per-call path of a queued call (join, claim, answered,
// leave, agent freed), the archive's row of the ended call, the NOTIFYs
// a listening node receives, and one heartbeat of a node holding 0 and
// 1,000 live calls. It logs the figures and checks they stay where the
// sizing says: one transaction per statement of the path, one NOTIFY per
// freed agent.
func TestPerCallDatabaseCost(t *testing.T) {
	if os.Getenv("CLOAK_SIZING") == "" {
		t.Skip("a measurement (about a minute, docs/SCALE.md): CLOAK_SIZING=1 go test -run TestPerCallDatabaseCost -v ./cluster/")
	}
	db0, dsn := testDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Autovacuum's and analyze's transactions and catalog writes would
	// count with the measured ones: off for this database's tables.
	// (The throwaway cluster's, for this process; reset after.)
	for _, q := range []string{`ALTER SYSTEM SET autovacuum = off`, `SELECT pg_reload_conf()`} {
		if _, err := db0.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = db0.Exec(`ALTER SYSTEM RESET autovacuum`)
		_, _ = db0.Exec(`SELECT pg_reload_conf()`)
	})
	time.Sleep(time.Second)
	// An empty measurement, after one that takes in what earlier work
	// (the migrations) flushed late: the overhead every measurement
	// carries (its readings, the pool's connections), subtracted.
	ping := func(db *sql.DB) {
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	measure(t, dsn, ping)
	overhead = measure(t, dsn, ping)
	t.Logf("an empty measurement (its overhead, subtracted below): %s", overhead.per(1))
	opts := func(id string) Options {
		return Options{NodeID: id, Heartbeat: time.Second, NodeTimeout: 3 * time.Second, DSN: dsn, Log: zerolog.Nop()}
	}
	mustNew := func(db *sql.DB, o Options) *Node {
		n, err := New(db, o)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var cfgs []acd.AgentConfig
	names := []string{}
	for i := range 4 {
		n := fmt.Sprintf("agent%d", i)
		cfgs = append(cfgs, acd.AgentConfig{Name: n, Queues: []string{"sales"}, URI: "sip:" + n + "@127.0.0.1"})
		names = append(names, n)
	}
	measure(t, dsn, func(db *sql.DB) {
		if err := mustNew(db, opts("node-a")).Seed(ctx, cfgs); err != nil {
			t.Fatal(err)
		}
	})
	// Another node's LISTEN connection counts the NOTIFYs.
	var notifies atomic.Int64
	lctx, stop := context.WithCancel(context.Background())
	listening, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		conn, err := pgx.Connect(lctx, dsn)
		if err != nil {
			t.Error(err)
			close(listening)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(lctx, "LISTEN "+Channel); err != nil {
			t.Error(err)
		}
		close(listening)
		for {
			if _, err := conn.WaitForNotification(lctx); err != nil {
				return
			}
			notifies.Add(1)
		}
	}()
	<-listening
	defer func() { stop(); <-done }()

	const calls = 200
	var took time.Duration
	path := measure(t, dsn, func(db *sql.DB) {
		node := mustNew(db, opts("node-a"))
		start := time.Now()
		for i := range calls {
			id := fmt.Sprintf("call-%d", i)
			if _, err := node.Join(ctx, "sales", id); err != nil {
				t.Fatal(err)
			}
			cl, err := node.Claim(ctx, "sales", names, id)
			if err != nil {
				t.Fatalf("claim %d: %v", i, err)
			}
			if err := node.Set(ctx, cl.Name, acd.Busy, id); err != nil {
				t.Fatal(err)
			}
			if err := node.Leave(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := node.Set(ctx, cl.Name, acd.Available, id); err != nil {
				t.Fatal(err)
			}
		}
		took = time.Since(start)
	})
	nPath := notifies.Load()
	t.Logf("per call, the cluster's path (join, claim, busy, leave, available): %s; %.2f NOTIFY; %v a call on one connection",
		path.per(calls), float64(nPath)/calls, (took / calls).Round(10*time.Microsecond))
	// Rows exactly; transactions give or take what the statistics
	// flush late (tens per measurement).
	if path.ins != calls || path.upd != 4*calls || path.del != calls {
		t.Errorf("rows per call: %s; want 1 inserted, 4 updated, 1 deleted", path.per(calls))
	}
	if x := float64(path.xacts) / calls; x < 4.8 || x > 5.3 {
		t.Errorf("%.2f transactions per call, want 5 (one per statement of the path)", x)
	}
	if nPath != calls {
		t.Errorf("%d NOTIFYs for %d calls, want one per freed agent", nPath, calls)
	}

	// The archive's row of each ended call, one per transaction (the
	// writer's batch at a low rate: what is queued, often one) and in
	// batches of 100.
	inter := func(i int, batch string) archive.Interaction {
		at := time.Now().Add(-time.Minute)
		return archive.Interaction{ID: fmt.Sprintf("%s-%d", batch, i), SIPCallID: fmt.Sprintf("%d@carrier", i), Caller: "+442079460000", Called: "main",
			Route: "flow:main", Queue: "sales", Agent: "agent0", Offered: at, Answered: at, Queued: at, AgentAnswered: at, Ended: at.Add(time.Minute),
			EndedBy: "caller", EndReason: "closed", Consent: "accepted", Node: "node-a",
			Data:     []archive.DataItem{{Key: "customer_id", Value: "C-1", Policy: "keep"}, {Key: "language", Value: "en", Policy: "keep"}},
			Segments: []archive.Segment{{Flow: "secure-pay", Kind: "secure", Start: at, End: at.Add(20 * time.Second)}},
			Trace: []archive.TraceStep{{At: at, Flow: "main", Step: "menu", Action: "menu", Branch: "2"},
				{At: at, Flow: "main", Step: "queue", Action: "queue", Branch: "answered"},
				{At: at, Flow: "secure-pay", Step: "card", Action: "collect", Branch: "on_valid", Detail: "****", Secure: true}},
			Recording: &archive.Recording{File: "/var/lib/cloak/recordings/x.wav", Sidecar: "/var/lib/cloak/recordings/x.json", SHA256: "ab", Duration: time.Minute},
			Quality:   []archive.LegQuality{{Leg: "caller", Received: 3000, MOS: 4.3}, {Leg: "agent", Agent: "agent0", Received: 3000, MOS: 4.3}},
		}
	}
	store := func(db *sql.DB, f func(s *archive.Store)) {
		s, err := archive.Open(ctx, archive.Options{DSN: dsn, Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(s)
	}
	store(nil, func(*archive.Store) {}) // opened once: later opens find the migrations done
	one := measure(t, dsn, func(db *sql.DB) {
		store(db, func(s *archive.Store) {
			for i := range calls {
				if err := s.Insert(ctx, []archive.Interaction{inter(i, "one")}); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	hundred := measure(t, dsn, func(db *sql.DB) {
		store(db, func(s *archive.Store) {
			for b := range calls / 100 {
				batch := make([]archive.Interaction, 100)
				for i := range batch {
					batch[i] = inter(b*100+i, "batch")
				}
				if err := s.Insert(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	t.Logf("per call, the archive's row (10 rows over 6 tables), one per transaction: %s", one.per(calls))
	t.Logf("per call, the archive's row, 100 per transaction: %s", hundred.per(calls))
	if r := float64(one.ins) / calls; r != 10 {
		t.Errorf("%.2f rows inserted per archived call, want 10", r)
	}

	// Heartbeats: one node's beat (and its look for lost nodes) holding
	// no call, then 1,000 live calls (the first beat inserts them; the
	// ones measured find them there).
	var live []Call
	beat := func(n int) (dbCounters, time.Duration) {
		var took time.Duration
		measure(t, dsn, func(db *sql.DB) {
			o := opts("node-b")
			o.Calls = func() []Call { return live }
			if err := mustNew(db, o).Beat(ctx); err != nil {
				t.Fatal(err)
			}
		})
		d := measure(t, dsn, func(db *sql.DB) {
			o := opts("node-b")
			o.Calls = func() []Call { return live }
			b := mustNew(db, o)
			start := time.Now()
			for range n {
				if err := b.Beat(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := b.Reap(ctx); err != nil {
					t.Fatal(err)
				}
			}
			took = time.Since(start) / time.Duration(n)
		})
		return d, took
	}
	idle, idleTook := beat(50)
	for i := range 1000 {
		live = append(live, Call{ID: fmt.Sprintf("live-%d", i), SIPCallID: fmt.Sprintf("%d@carrier", i), Caller: "+442079460000", Called: "main", Offered: time.Now()})
	}
	busy, busyTook := beat(10)
	t.Logf("per heartbeat, a node with no call (beat + lost-node look): %s; %v", idle.per(50), idleTook.Round(10*time.Microsecond))
	t.Logf("per heartbeat, a node with 1,000 live calls: %s; %v", busy.per(10), busyTook.Round(100*time.Microsecond))
	if x := float64(idle.xacts) / 50; x < 1.5 || x > 3 || idle.upd != 50 || busy.upd != 10 || busy.ins != 0 {
		t.Errorf("per heartbeat: %s idle, %s busy; want 2 transactions, 1 row updated (the node's), nothing inserted", idle.per(50), busy.per(10))
	}
}
