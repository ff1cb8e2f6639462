package fraud

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The benchmark fixture: 1,000,000 static entries over every type and
// 1,000 rules built from varied templates (docs/PERFORMANCE.md).
const (
	benchEntries = 1_000_000
	benchRules   = 1_000
)

var (
	benchOnce  sync.Once
	benchEs    []Entry
	benchRuleS []Rule
)

func benchFixture() ([]Entry, []Rule) {
	benchOnce.Do(func() {
		benchEs = make([]Entry, 0, benchEntries)
		for i := 0; len(benchEs) < benchEntries; i++ {
			var e Entry
			switch i % 10 {
			case 0, 1, 2, 3:
				e = Entry{Type: TypePhone, Value: fmt.Sprintf("+447%09d", i)}
			case 4, 5:
				e = Entry{Type: TypeEmail, Value: fmt.Sprintf("user%d@example%d.com", i, i%97)}
			case 6:
				e = Entry{Type: TypePostcode, Value: fmt.Sprintf("AB%07dCD", i)}
			case 7:
				e = Entry{Type: TypeCustomerID, Value: "C" + strconv.Itoa(i)}
			case 8:
				e = Entry{Type: TypeBIN, Value: strconv.Itoa(40000000 + i)}
			case 9:
				j := i / 10 // unique prefixes: /32s under 11/8, /24s under 12/8 and up
				a, bits := netip.AddrFrom4([4]byte{11, byte(j >> 16), byte(j >> 8), byte(j)}), 32
				if j%2 == 1 {
					a, bits = netip.AddrFrom4([4]byte{byte(12 + j>>16), byte(j >> 8), byte(j), 0}), 24
				}
				e = Entry{Type: TypeSource, Value: netip.PrefixFrom(a, bits).Masked().String()}
			}
			if i%3 == 0 {
				sc := i % 90
				e.Score = &sc
			}
			e.Comment = "bench"
			benchEs = append(benchEs, e)
		}
		benchRuleS = make([]Rule, benchRules)
		for i := range benchRuleS {
			var w string
			switch i % 8 {
			case 0:
				w = fmt.Sprintf("payment && !verified && amount >= %d", 100+i)
			case 1:
				w = fmt.Sprintf(`caller startsWith "+4477%03d"`, i)
			case 2:
				w = fmt.Sprintf(`payment && country in ["C%d", "D%d", "NG"] && amount > %d`, i, i, i)
			case 3:
				w = fmt.Sprintf(`email matches "@bad%d\\.(com|net)$"`, i)
			case 4:
				w = fmt.Sprintf("cards_caller >= %d && hour < %d", 2+i%5, i%24)
			case 5:
				w = fmt.Sprintf(`data["tier"] == "t%d" || queue == "q%d"`, i, i)
			case 6:
				w = fmt.Sprintf("declines_caller > %d and not (route in [\"vip\", \"r%d\"])", i%7, i)
			case 7:
				w = fmt.Sprintf(`bin startsWith "%d" && currency != "GBP"`, 400000+i)
			}
			benchRuleS[i] = Rule{Name: "r" + strconv.Itoa(i), When: w, Score: i%50 + 1}
		}
	})
	return benchEs, benchRuleS
}

func benchScreener(b *testing.B) *Screener {
	es, rs := benchFixture()
	ix, err := NewIndex(es, map[Type]int{TypePhone: 100, TypeEmail: 50, TypeSource: 25})
	if err != nil {
		b.Fatal(err)
	}
	rules, err := Compile("bench", rs)
	if err != nil {
		b.Fatal(err)
	}
	vel := &MemVelocity{}
	for i := range 50 { // a small in-memory velocity history
		_ = vel.Record(VelocityEvent{Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Caller: fmt.Sprintf("+447%09d", i*4), Payment: true, CardToken: fmt.Sprintf("%064x", i%7)})
	}
	return NewScreener(Settings{MinimumScore: 100, Normaliser: Normaliser{CountryCode: "44"}, Velocity: vel}, ix, rules)
}

// benchInputs are varied attributes: some hit static data, some do not.
func benchInputs() []Attributes {
	in := make([]Attributes, 1024)
	at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	for i := range in {
		a := Attributes{
			Caller: fmt.Sprintf("07%09d", i*37), Verstat: []string{"TN-Validation-Passed", "No-TN-Validation", ""}[i%3],
			Source: netip.AddrFrom4([4]byte{byte(11 + i%2), 0, byte(i), byte(i * 7)}), Route: "pay", Queue: "payments",
			Time: at.Add(time.Duration(i) * time.Minute),
			Data: map[string]string{"email": fmt.Sprintf("User%d@Example%d.com", i*5, (i*5)%97), "postcode": "ab1 2cd", "customer_id": "C" + strconv.Itoa(i*7), "tier": "t" + strconv.Itoa(i%13)},
		}
		if i%4 != 0 {
			a.Payment = &Payment{BIN: strconv.Itoa(40000000 + i*10 + 8), Last4: "1111", Amount: float64(i % 2000), Currency: "GBP", Country: "GB", CardToken: fmt.Sprintf("%064x", i)}
		}
		in[i] = a
	}
	return in
}

// BenchmarkScreen1M: one screening (static lookups + 1,000 rules +
// in-memory velocity) against 1,000,000 static entries; reports p99.
func BenchmarkScreen1M(b *testing.B) {
	s := benchScreener(b)
	in := benchInputs()
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
	es, _ := benchFixture()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := NewIndex(es, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportCSV1M: parsing and normalising a 1,000,000-line CSV.
func BenchmarkImportCSV1M(b *testing.B) {
	es, _ := benchFixture()
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
		got, err := ParseCSV(bytes.NewReader(data), Normaliser{CountryCode: "44"}, "bench", time.Time{})
		if err != nil || len(got) != len(es) {
			b.Fatal(len(got), err)
		}
	}
}

// BenchmarkCompile1000Rules: compiling and type-checking 1,000 rules.
func BenchmarkCompile1000Rules(b *testing.B) {
	_, rs := benchFixture()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile("bench", rs); err != nil {
			b.Fatal(err)
		}
	}
}
