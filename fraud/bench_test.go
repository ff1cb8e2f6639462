package fraud_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/fraud/fraudtest"
)

func benchScreener(b *testing.B) *fraud.Screener {
	es, rs := fraudtest.Fixture()
	ix, err := fraud.NewIndex(es, map[fraud.Type]int{fraud.TypePhone: 100, fraud.TypeEmail: 50, fraud.TypeSource: 25})
	if err != nil {
		b.Fatal(err)
	}
	rules, err := fraud.Compile("bench", rs)
	if err != nil {
		b.Fatal(err)
	}
	vel := &fraud.MemVelocity{}
	for i := range 50 { // a small in-memory velocity history
		_ = vel.Record(fraud.VelocityEvent{Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Caller: fmt.Sprintf("+447%09d", i*4), Payment: true, CardToken: fmt.Sprintf("%064x", i%7)})
	}
	return fraud.NewScreener(fraud.Settings{MinimumScore: 100, Normaliser: fraud.Normaliser{CountryCode: "44"}, Velocity: vel}, ix, rules)
}

// BenchmarkScreen1M: one screening (static lookups + 1,000 rules +
// in-memory velocity) against 1,000,000 static entries; reports p99.
func BenchmarkScreen1M(b *testing.B) {
	s := benchScreener(b)
	in := fraudtest.Inputs(time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC))
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Screen(ctx, in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

// BenchmarkIndex1M: building the index of 1,000,000 entries (what a node
// does at start and on every data change, from Store.All).
func BenchmarkIndex1M(b *testing.B) {
	es, _ := fraudtest.Fixture()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fraud.NewIndex(es, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportCSV1M: parsing and normalising a 1,000,000-line CSV.
func BenchmarkImportCSV1M(b *testing.B) {
	es, _ := fraudtest.Fixture()
	var buf bytes.Buffer
	buf.WriteString("type,value,score,comment\n")
	for _, e := range es {
		sc := ""
		if e.Score != nil {
			sc = strconv.Itoa(*e.Score)
		}
		fmt.Fprintf(&buf, "%s,%s,%s,%s\n", e.Type, e.Value, sc, e.Comment)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := fraud.ParseCSV(bytes.NewReader(data), fraud.Normaliser{CountryCode: "44"}, "bench", time.Time{})
		if err != nil || len(got) != len(es) {
			b.Fatal(len(got), err)
		}
	}
}

// BenchmarkCompile1000Rules: compiling and type-checking 1,000 rules.
func BenchmarkCompile1000Rules(b *testing.B) {
	_, rs := fraudtest.Fixture()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := fraud.Compile("bench", rs); err != nil {
			b.Fatal(err)
		}
	}
}
