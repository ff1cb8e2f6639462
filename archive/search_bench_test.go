package archive

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
)

// BenchmarkSearch1M measures archive search over 1,000,000 synthetic
// interactions (Generate: 100,000 callers, 10 queues, 180 days, two
// participant-data keys each). Skipped unless CLOAK_BENCH_1M is set.
// On SQLite, CLOAK_BENCH_1M_DB names a database file to keep and reuse
// across runs (generating takes minutes):
//
//	CLOAK_BENCH_1M=1 CLOAK_BENCH_1M_DB=/tmp/cloak-1m.db go test -run '^$' -bench Search1M -benchtime 300x -timeout 60m ./archive/
//
// On PostgreSQL, CLOAK_BENCH_1M_DSN=postgres://… names a database to fill
// and keep, or CLOAK_BENCH_1M_PG=1 uses a fresh database on the tests'
// throwaway cluster (package pgtest; generated on every run).
// CLOAK_BENCH_1M_N sets another size (the figures then say so):
//
//	CLOAK_BENCH_1M=1 CLOAK_BENCH_1M_PG=1 go test -run '^$' -bench Search1M -benchtime 300x -timeout 60m ./archive/
//
// Each sub-benchmark reports p50 and p95 in ms besides ns/op.
func BenchmarkSearch1M(b *testing.B) {
	if os.Getenv("CLOAK_BENCH_1M") == "" {
		b.Skip("set CLOAK_BENCH_1M=1 (and CLOAK_BENCH_1M_DB=FILE to keep the database) to run")
	}
	n := 1_000_000
	if v := os.Getenv("CLOAK_BENCH_1M_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("CLOAK_BENCH_1M_N=%q: want a number of interactions, at least 1000", v)
		}
	}
	path := os.Getenv("CLOAK_BENCH_1M_DB")
	switch {
	case os.Getenv("CLOAK_BENCH_1M_DSN") != "":
		path = os.Getenv("CLOAK_BENCH_1M_DSN")
	case os.Getenv("CLOAK_BENCH_1M_PG") != "":
		path = pgtest.DSN(b)
	case path == "":
		path = filepath.Join(b.TempDir(), "cloak.db")
	}
	s := openTest(b, path, testPolicy)
	b.Logf("engine %s, %d interactions", s.Engine(), n)
	ctx := context.Background()
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	have, err := s.Count(ctx, Query{})
	if err != nil {
		b.Fatal(err)
	}
	if have < n {
		start := time.Now()
		if err := s.Generate(ctx, GenerateOptions{N: n, Seed: 1, End: end, Days: 180, Progress: func(done int) {
			if done%100_000 == 0 {
				b.Logf("generated %d in %s", done, time.Since(start).Round(time.Second))
			}
		}}); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d interactions in %s", n, time.Since(start).Round(time.Second))
		s.DB().Exec(`ANALYZE`)
		if s.Engine() == SQLite {
			s.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		} else {
			s.DB().Exec(`VACUUM ANALYZE`)
		}
	}
	if s.Engine() == Postgres {
		var size int64
		if err := s.DB().QueryRow(`SELECT pg_database_size(current_database())`).Scan(&size); err == nil {
			b.Logf("database %d MB, %d bytes per interaction (with 2 data rows, indexes included)", size>>20, size/int64(n))
		}
	} else if st, err := os.Stat(path); err == nil {
		b.Logf("database %d MB, %d bytes per interaction (with 2 data rows)", st.Size()>>20, st.Size()/int64(n))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	day := func() time.Time { return end.AddDate(0, 0, -1-rng.IntN(179)) }
	// Deep positions (untimed): the row before each page, for its cursor.
	type deepPage struct {
		offset int
		after  Cursor
	}
	var deep []deepPage
	for range 20 {
		off := min(n-50, 90_000+rng.IntN(10_000))
		prev, err := s.Search(ctx, Query{Offset: off - 1, Limit: 1})
		if err != nil || len(prev) != 1 {
			b.Fatalf("deep page at %d: %v", off, err)
		}
		deep = append(deep, deepPage{offset: off, after: CursorOf(prev[0])})
	}
	cases := []struct {
		name string
		q    func() Query
		// count: Count instead of Search (the API's paging total).
		count bool
	}{
		{"caller", func() Query { return Query{Caller: GenCaller(rng.IntN(n / 10)), Limit: 100} }, false},
		{"data_token", func() Query {
			return Query{Data: map[string]string{"customer_id": GenCustomer(rng.IntN(n / 10))}, Limit: 100}
		}, false},
		{"day_queue", func() Query {
			d := day()
			return Query{From: d, To: d.Add(24 * time.Hour), Queue: genQueues[rng.IntN(len(genQueues))], Limit: 100}
		}, false},
		{"day_queue_count", func() Query {
			d := day()
			return Query{From: d, To: d.Add(24 * time.Hour), Queue: genQueues[rng.IntN(len(genQueues))]}
		}, true},
		{"hour_range", func() Query {
			d := day().Add(time.Duration(rng.IntN(24)) * time.Hour)
			return Query{From: d, To: d.Add(time.Hour), Limit: 100}
		}, false},
		{"week_range_newest", func() Query {
			d := day()
			return Query{From: d, To: d.Add(7 * 24 * time.Hour), Limit: 100}
		}, false},
		// The console's deep page (issue 23): 50 rows at ~100,000 of
		// every interaction, by offset and by keyset (the cursor of the
		// row before, as the console's next links carry it), side by
		// side over the same positions.
		{"deep_offset", func() Query { return Query{Offset: deep[rng.IntN(len(deep))].offset, Limit: 50} }, false},
		{"deep_after", func() Query { c := deep[rng.IntN(len(deep))].after; return Query{After: &c, Limit: 50} }, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			found := 0
			for i := 0; i < b.N; i++ {
				q := c.q()
				t0 := time.Now()
				if c.count {
					k, err := s.Count(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					found += k
				} else {
					res, err := s.Search(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					found += len(res)
				}
				lat = append(lat, time.Since(t0))
			}
			if found == 0 {
				b.Fatalf("%s found nothing in %d queries", c.name, b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			ms := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.95), "p95-ms")
			b.ReportMetric(float64(found)/float64(b.N), "rows/op")
		})
	}
}

// TestSearchPlansUseIndexes: on SQLite every search the 1M benchmark
// times searches an index for its rows; none scans the interactions table.
func TestSearchPlansUseIndexes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "cloak.db"), testPolicy)
	ctx := context.Background()
	if err := s.Generate(ctx, GenerateOptions{N: 3000, Seed: 2, Callers: 300}); err != nil {
		t.Fatal(err)
	}
	s.DB().Exec(`ANALYZE`)
	d := time.Now().AddDate(0, 0, -3)
	for name, q := range map[string]Query{
		"caller":     {Caller: GenCaller(1)},
		"data_token": {Data: map[string]string{"customer_id": GenCustomer(1)}},
		"day_queue":  {From: d, To: d.Add(24 * time.Hour), Queue: "sales"},
		"hour_range": {From: d, To: d.Add(time.Hour)},
		"week_range": {From: d, To: d.Add(7 * 24 * time.Hour)},
	} {
		cond, args := s.where(q)
		plan := queryPlan(t, s, `SELECT `+interactionCols+` FROM interactions`+cond+` ORDER BY offered_at DESC, id DESC LIMIT 100`, args...)
		for _, p := range plan {
			if p == "SCAN interactions" || p == "SCAN participant_data" {
				t.Errorf("%s scans a table: %v", name, plan)
			}
			// A time range read in index order stops at its page; a
			// whole sort reads every row of the range first.
			if strings.HasSuffix(name, "_range") && (strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "ANY(")) {
				t.Errorf("%s sorts or skip-scans: %v", name, plan)
			}
		}
		t.Logf("%s: %v", name, plan)
	}
}

// TestSearchPlansUseIndexesPostgres: on PostgreSQL every search the 1M
// benchmark times has an index to read (with sequential scans priced out,
// a plan that still scans a table means no index serves it).
func TestSearchPlansUseIndexesPostgres(t *testing.T) {
	s := openTest(t, pgtest.DSN(t), testPolicy)
	ctx := context.Background()
	if err := s.Generate(ctx, GenerateOptions{N: 3000, Seed: 2, Callers: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	d := time.Now().AddDate(0, 0, -3)
	for name, q := range map[string]Query{
		"caller":     {Caller: GenCaller(1)},
		"data_token": {Data: map[string]string{"customer_id": GenCustomer(1)}},
		"day_queue":  {From: d, To: d.Add(24 * time.Hour), Queue: "sales"},
		"hour_range": {From: d, To: d.Add(time.Hour)},
		"week_range": {From: d, To: d.Add(7 * 24 * time.Hour)},
		"recorded":   {Caller: GenCaller(1), Recorded: true},
	} {
		cond, args := s.where(q)
		rows, err := conn.QueryContext(ctx, s.q(`EXPLAIN SELECT `+interactionCols+` FROM interactions`+cond+` ORDER BY offered_at DESC, id DESC LIMIT 100`), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, strings.TrimSpace(line))
		}
		rows.Close()
		for _, p := range plan {
			if strings.Contains(p, "Seq Scan") {
				t.Errorf("%s scans a table:\n%s", name, strings.Join(plan, "\n"))
				break
			}
		}
		t.Logf("%s:\n%s", name, strings.Join(plan, "\n"))
	}
}

// TestSearchAfterIsOffsetsPage: paging by cursor (each page after the
// last row of the one before) gives exactly the pages offsets give, ties
// in offered_at included, on SQLite and PostgreSQL; SQLite's plan seeks
// the (offered_at, id) index (no sort, no table scan); a cursor
// round-trips and a bad one is refused.
func TestSearchAfterIsOffsetsPage(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { searchAfterIsOffsetsPage(t, openTest(t, pgtest.DSN(t), testPolicy)) })
	s := openTest(t, filepath.Join(t.TempDir(), "cloak.db"), testPolicy)
	searchAfterIsOffsetsPage(t, s)
	rows, err := s.DB().Query(`EXPLAIN QUERY PLAN SELECT `+interactionCols+` FROM interactions WHERE (offered_at, id) < (?, ?) ORDER BY offered_at DESC, id DESC LIMIT 50`, time.Now().UnixMilli(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		t.Logf("plan: %s", detail)
		if !strings.HasPrefix(detail, "SEARCH interactions USING INDEX interactions_offered_id") {
			t.Errorf("the keyset page's plan: %s", detail)
		}
	}
}

func searchAfterIsOffsetsPage(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	if err := s.Generate(ctx, GenerateOptions{N: 1000, Seed: 3, Callers: 100}); err != nil {
		t.Fatal(err)
	}
	// Ties: a run of rows offered in the same millisecond.
	if _, err := s.DB().Exec(`UPDATE interactions SET offered_at = (SELECT MAX(offered_at) FROM interactions) - 5000
 WHERE id IN (SELECT id FROM interactions ORDER BY offered_at DESC, id DESC LIMIT 120 OFFSET 40)`); err != nil {
		t.Fatal(err)
	}
	s.DB().Exec(`ANALYZE`)
	var after *Cursor
	pages := 0
	for off := 0; ; off += 70 {
		want, err := s.Search(ctx, Query{Offset: off, Limit: 70})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Search(ctx, Query{After: after, Limit: 70})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("page at %d: %d rows by cursor, %d by offset", off, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("page at %d, row %d: %s by cursor, %s by offset", off, i, got[i].ID, want[i].ID)
			}
		}
		if len(want) < 70 {
			break
		}
		c := CursorOf(want[len(want)-1])
		back, err := ParseCursor(c.String())
		if err != nil || back.ID != c.ID || !back.Offered.Equal(c.Offered) {
			t.Fatalf("cursor %q read back as %+v (%v)", c, back, err)
		}
		after = &back
		pages++
	}
	if pages < 10 {
		t.Errorf("%d pages compared", pages)
	}
	for _, bad := range []string{"", "x,1", "12", "-1,a", "12,"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}
