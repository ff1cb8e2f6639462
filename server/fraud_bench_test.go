package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/fraud/fraudtest"
	"github.com/rs/zerolog"
)

// benchNode is a node's screening over an archive holding the issue's
// load, built once per engine (b.Run calls a benchmark twice).
type benchNode struct {
	f       *nodeFraud
	in      []fraud.Attributes
	import_ time.Duration // 1,000,000 entries into the database (Store.Add)
	load    time.Duration // what a node does at start or on a change: Store.All, NewIndex, rules compiled
}

// BenchmarkFraudScreen1M is the benchmark end to end, as serve
// screens: a node (fraudSetup) over a SQLite or PostgreSQL archive holding
// 1,000,000 static entries (fraudtest.Fixture), 1,000 active rules loaded
// into the database, and 20,000 earlier payments in the velocity table.
// "screen" is a payment's screening (every static lookup, the velocity
// counts read from the archive, all rules); "arrival" a call's, its
// velocity row written first. Each reports p50 and p99 per screening,
// and the node's load of the static data and rules (load-ms) and the
// entries' insertion (import-ms). Skipped unless CLOAK_BENCH_FRAUD_1M is
// set (the set-up takes minutes):
//
//	CLOAK_BENCH_FRAUD_1M=1 go test -run '^$' -bench FraudScreen1M -benchtime 5000x -timeout 60m ./server/
func BenchmarkFraudScreen1M(b *testing.B) {
	if os.Getenv("CLOAK_BENCH_FRAUD_1M") == "" {
		b.Skip("set CLOAK_BENCH_FRAUD_1M=1 to run (minutes of set-up)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for _, engine := range []string{"sqlite", "postgres"} {
		var node *benchNode
		parent := b
		get := func(b *testing.B) *benchNode {
			if node == nil {
				node = newBenchNode(ctx, b, parent, engine)
			}
			return node
		}
		for _, kind := range []string{"screen", "arrival"} {
			b.Run(engine+"/"+kind, func(b *testing.B) {
				n := get(b)
				lat := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					a := n.in[i%len(n.in)]
					t0 := time.Now()
					var err error
					if kind == "screen" {
						_, err = n.f.Screen(ctx, a)
					} else {
						_, err = n.f.ScreenArrival(ctx, a, fmt.Sprintf("bench-%d", i))
					}
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(n.load.Milliseconds()), "load-ms")
				b.ReportMetric(float64(n.import_.Milliseconds()), "import-ms")
			})
		}
	}
}

// newBenchNode fills an archive of engine with the load and starts a
// node's screening over it, closed at parent's end.
func newBenchNode(ctx context.Context, b, parent *testing.B, engine string) *benchNode {
	cfg := config.Default()
	dir, err := os.MkdirTemp("", "cloak-fraud-bench-")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Data.Dir = dir
	parent.Cleanup(func() { os.RemoveAll(dir) })
	if engine == "postgres" {
		cfg.Archive.DSN = pgtest.DSN(b)
	} else {
		cfg.Archive.DSN = filepath.Join(dir, "cloak.db")
	}
	cfg.Fraud.Enabled = true
	cfg.Fraud.Call.Enabled = true
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	parent.Cleanup(func() { arch.close(10 * time.Second) })
	entries, rules := fraudtest.Fresh() // not kept: the node's heap as in production
	nEntries := len(entries)
	t0 := time.Now()
	if err := arch.store.Add(ctx, entries...); err != nil {
		b.Fatal(err)
	}
	n := &benchNode{import_: time.Since(t0), in: fraudtest.Inputs(time.Now())}
	entries = nil
	if _, err := arch.store.ReplaceRules(ctx, rules, "bench", "fraudtest"); err != nil {
		b.Fatal(err)
	}
	norm := fraud.Normaliser{CountryCode: "44"}
	for k := range 20_000 {
		a := n.in[k%len(n.in)]
		caller, _ := norm.Phone(a.Caller)
		customer, _ := norm.CustomerID(a.Data["customer_id"])
		p := archive.VelocityPayment{At: time.Now().Add(-time.Duration(k) * time.Second), Caller: caller, Customer: customer,
			CardToken: fmt.Sprintf("%064x", k%5000), Declined: k%9 == 0, Interaction: "bench"}
		if err := arch.store.RecordPayment(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	if engine == "postgres" {
		if _, err := arch.store.DB().ExecContext(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	// What a node does at start (and, but for the seeding, on a change):
	// Store.All, the index built, the rules read and compiled.
	t0 = time.Now()
	if n.f, err = fraudSetup(ctx, cfg, arch, zerolog.Nop()); err != nil {
		b.Fatal(err)
	}
	n.load = time.Since(t0)
	if n.f.screener.RuleCount() != fraudtest.NumRules {
		b.Fatalf("%d rules loaded", n.f.screener.RuleCount())
	}
	b.Logf("%s: %d entries inserted in %v, loaded by the node in %v", engine, nEntries, n.import_.Round(time.Millisecond), n.load.Round(time.Millisecond))
	return n
}
