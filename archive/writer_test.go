package archive

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/rs/zerolog"
)

// syncBuf is a log sink the writer goroutine and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), msg)
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriterBatches(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		w := NewWriter(s, WriterOptions{Queue: 2000, Batch: 64, Node: "n1", Log: zerolog.Nop()})
		t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
		for i := range 500 {
			w.Submit(summary(fmt.Sprintf("c%04d", i), "+4400", t0.Add(time.Duration(i)*time.Second)))
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := w.Stats()
		if st.Written != 500 || st.Dropped != 0 || st.Failures != 0 || st.Depth != 0 {
			t.Errorf("stats %+v", st)
		}
		if n := countRows(t, s, "interactions"); n != 500 {
			t.Errorf("%d interactions stored, want 500", n)
		}
		if n := countRows(t, s, "participant_data"); n != 1000 { // customer_id and language; dob dropped
			t.Errorf("%d participant data rows, want 1000", n)
		}
		if w.Enqueue(Interaction{ID: "late"}) || w.Stats().Dropped != 1 {
			t.Error("a closed writer took an interaction")
		}
	})
}

// TestWriterDatabaseLocked holds SQLite's write lock from another
// connection, as a stuck process would: calls hand over their summaries
// without waiting, the failure is logged once, and everything queued is
// written once the lock goes.
func TestWriterDatabaseLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloak.db")
	ctx := context.Background()
	s, err := Open(ctx, Options{DSN: path, Key: testKey, Policy: testPolicy, BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, dsn, _ := parseDSN(path, 20*time.Millisecond)
	other, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	hold, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec("DELETE FROM audit_log"); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	w := NewWriter(s, WriterOptions{Queue: 64, Batch: 8, Retry: 5 * time.Millisecond, MaxRetry: 20 * time.Millisecond,
		Log: zerolog.New(&logs)})
	t0 := time.Now()
	start := time.Now()
	for i := range 100 {
		w.Submit(summary(fmt.Sprintf("l%03d", i), "+4401", t0))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100 submits took %v with the database locked", d)
	}
	waitFor(t, "failed attempts", func() bool { return w.Stats().Failures >= 3 })
	st := w.Stats()
	if st.Written != 0 || st.Dropped < 100-64-8 || st.Dropped > 100-64 {
		t.Errorf("while locked: %+v (queue 64, batch 8, 100 submitted)", st)
	}
	if n := logs.count("archive database unavailable"); n != 1 {
		t.Errorf("%d 'unavailable' lines for one incident, want 1", n)
	}
	if n := logs.count("archive queue full"); n != 1 {
		t.Errorf("%d 'queue full' lines for one incident, want 1", n)
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	want := 100 - st.Dropped
	waitFor(t, "the queue written", func() bool { return w.Stats().Written == want })
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "interactions"); uint64(n) != want {
		t.Errorf("%d stored, want %d", n, want)
	}
	if w.Stats().Rejected != 0 {
		t.Errorf("rows rejected while the database was only locked: %+v", w.Stats())
	}
	if logs.count("archive database available again") != 1 {
		t.Errorf("recovery not logged once:\n%s", logs.b.String())
	}
}

// TestWriterRejectsOneBadRow: a row the database refuses (a duplicate
// key) is counted and skipped; the rest of its batch is written.
func TestWriterRejectsOneBadRow(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		w := NewWriter(s, WriterOptions{Queue: 64, Batch: 16, Log: zerolog.Nop()})
		now := time.Now()
		bad := Interaction{ID: "bad", Offered: now, Ended: now, Data: []DataItem{{Key: "k", Value: "1", Policy: Keep}, {Key: "k", Value: "2", Policy: Keep}}}
		w.Enqueue(Interaction{ID: "ok1", Offered: now, Ended: now})
		w.Enqueue(bad)
		w.Enqueue(Interaction{ID: "ok2", Offered: now, Ended: now})
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Written != 2 || st.Rejected != 1 {
			t.Errorf("stats %+v, want 2 written and 1 rejected", st)
		}
		if n := countRows(t, s, "interactions"); n != 2 {
			t.Errorf("%d stored, want 2 (the bad row's transaction rolled back)", n)
		}
	})
}

// TestWriterCloseGivesUp: Close on a database that stays unavailable
// returns, when its context ends, an error counting what was lost.
func TestWriterCloseGivesUp(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "cloak.db"), testPolicy)
	w := NewWriter(s, WriterOptions{Queue: 64, Batch: 4, Retry: time.Millisecond, MaxRetry: 5 * time.Millisecond, Log: zerolog.Nop()})
	down := fmt.Errorf("down")
	w.insert = func(context.Context, []Interaction) error { return down }
	s.db.Close() // writable fails too
	for i := range 10 {
		w.Enqueue(Interaction{ID: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "10 finished interactions not written") {
		t.Errorf("Close: %v", err)
	}
	if st := w.Stats(); st.Lost != 10 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkWriterSQLite measures finished interactions archived per
// second through the writer (a typical summary: 3 data keys, a secure
// segment, 2 trace steps, a recording).
func BenchmarkWriterSQLite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "cloak.db")
	s := openTest(b, path, testPolicy)
	benchWriter(b, s)
	if _, err := s.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/float64(b.N), "db-bytes/interaction")
	}
}

// BenchmarkWriterPostgres is the same on the throwaway PostgreSQL cluster
// (fsync off: it measures cloak's side, not a disk).
func BenchmarkWriterPostgres(b *testing.B) {
	benchWriter(b, openTest(b, pgtest.DSN(b), testPolicy))
}

func benchWriter(b *testing.B, s *Store) {
	w := NewWriter(s, WriterOptions{Queue: b.N + 1, Batch: 256, Log: zerolog.Nop()})
	t0 := time.Now()
	b.ResetTimer()
	for i := range b.N {
		w.Submit(summary(fmt.Sprintf("b%08d", i), "+4402", t0))
	}
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "interactions/s")
}

// TestWriterDatabaseLate: a node whose PostgreSQL database does not
// exist yet at start (OpenDeferred) takes summaries without waiting;
// once the database is created, the schema is migrated and the queue
// written.
func TestWriterDatabaseLate(t *testing.T) {
	base := pgtest.DSN(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	late := strings.TrimPrefix(u.Path, "/") + "_late"
	lateURL := *u
	lateURL.Path = "/" + late
	s, err := OpenDeferred(Options{DSN: lateURL.String(), Key: testKey, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs syncBuf
	w := NewWriter(s, WriterOptions{Queue: 100, Batch: 10, Retry: 10 * time.Millisecond, MaxRetry: 50 * time.Millisecond, Log: zerolog.New(&logs)})
	start := time.Now()
	for i := range 30 {
		w.Submit(summary(fmt.Sprintf("late%02d", i), "+4403", start))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("30 submits took %v with no database", d)
	}
	waitFor(t, "failed attempts", func() bool { return w.Stats().Failures >= 2 })
	if st := w.Stats(); st.Written != 0 || st.Rejected != 0 {
		t.Fatalf("no database, yet %+v", st)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queue written", func() bool { return w.Stats().Written == 30 })
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "interactions"); n != 30 {
		t.Errorf("%d stored, want 30", n)
	}
	if logs.count("archive database unavailable") != 1 || logs.count("available again") != 1 {
		t.Errorf("incident not logged once each way:\n%s", logs.b.String())
	}
}
