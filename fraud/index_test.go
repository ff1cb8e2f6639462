package fraud

import (
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// indexFixture: entries of every type, some sharing a comment, some with
// their own score and time added, and a duplicate key (the later wins).
func indexFixture(n int) []Entry {
	added := time.Date(2026, 12, 7, 9, 30, 0, 5, time.UTC)
	es := make([]Entry, 0, n+1)
	for i := range n {
		e := Entry{Type: Types[i%len(Types)], Comment: "c" + strconv.Itoa(i%5), AddedBy: "alice"}
		switch e.Type {
		case TypePhone:
			e.Value = fmt.Sprintf("+4477009%05d", i)
		case TypeEmail:
			e.Value = fmt.Sprintf("u%d@example.com", i)
		case TypeSource:
			e.Value = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 0}), 24).String()
			if i%2 == 0 {
				e.Value = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), 0, 0}), 16).String()
			}
		default:
			e.Value = strconv.Itoa(100000 + i)
		}
		if i%3 == 0 {
			sc := i % 200
			e.Score = &sc
			e.Added = added
		}
		es = append(es, e)
	}
	dup := es[0]
	sc := 999
	dup.Score, dup.Comment = &sc, "later"
	return append(es, dup)
}

// TestIndexAsMaps: the pointer-free index finds what the map index found,
// for every entry, for misses and for source addresses.
func TestIndexAsMaps(t *testing.T) {
	es := indexFixture(5000)
	defaults := map[Type]int{TypePhone: 100, TypeSource: 25}
	ix, err := NewIndex(es, defaults)
	if err != nil {
		t.Fatal(err)
	}
	old, err := newMapIndex(es, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != old.Len() {
		t.Fatalf("len %d, want %d", ix.Len(), old.Len())
	}
	same := func(what string, got, want *Entry) {
		t.Helper()
		g, w := *got, *want
		g.Score, w.Score = nil, nil
		if g != w || ix.Score(got) != old.Score(want) {
			t.Fatalf("%s: %+v (score %d), want %+v (score %d)", what, *got, ix.Score(got), *want, old.Score(want))
		}
	}
	for _, e := range es {
		if e.Type == TypeSource {
			continue
		}
		got, ok := ix.Lookup(e.Type, e.Value)
		want, _ := old.Lookup(e.Type, e.Value)
		if !ok {
			t.Fatalf("%s %s not found", e.Type, e.Value)
		}
		same(e.Value, got, want)
		if m := ix.match(mustFind(t, ix, e.Type, e.Value)); m.Value != want.Value || m.Score != old.Score(want) || m.Comment != want.Comment || m.Type != want.Type {
			t.Fatalf("match %+v, want %+v", m, *want)
		}
	}
	if got, _ := ix.Lookup(TypePhone, es[0].Value); got.Comment != "later" || ix.Score(got) != 999 {
		t.Fatalf("duplicate: %+v", *got)
	}
	for _, miss := range []struct {
		t Type
		v string
	}{{TypePhone, "+440000000000"}, {TypeEmail, es[0].Value}, {TypeSource, es[6].Value}, {"iban", "x"}, {TypePhone, ""}} {
		if _, ok := ix.Lookup(miss.t, miss.v); ok {
			t.Errorf("%s %q found", miss.t, miss.v)
		}
	}
	for i := range 300 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i), 7})
		var got, want []string
		ix.Sources(a, func(e *Entry) { got = append(got, e.Value+"="+strconv.Itoa(ix.Score(e))) })
		old.Sources(a, func(e *Entry) { want = append(want, e.Value+"="+strconv.Itoa(old.Score(e))) })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sources of %s: %v, want %v", a, got, want)
		}
	}
	if empty, _ := NewIndex(nil, nil); empty.Len() != 0 {
		t.Fatal("empty index not empty")
	} else if _, ok := empty.Lookup(TypePhone, "+447700900123"); ok {
		t.Fatal("found in an empty index")
	}
}

func mustFind(t *testing.T, ix *Index, typ Type, v string) uint32 {
	t.Helper()
	r, ok := ix.find(typ, v)
	if !ok {
		t.Fatalf("%s %s not found", typ, v)
	}
	return r
}

// TestIndexLookupAllocs: the Screener's path through the index allocates
// nothing.
func TestIndexLookupAllocs(t *testing.T) {
	es := indexFixture(1000)
	ix, err := NewIndex(es, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.0.3.9")
	var sum int
	n := testing.AllocsPerRun(100, func() {
		if r, ok := ix.find(es[1].Type, es[1].Value); ok {
			sum += ix.match(r).Score
		}
		ix.sources(a, func(r uint32) { sum += ix.match(r).Score })
	})
	if n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}

// BenchmarkIndexOldNew1M: the map index (before issue 24) and the
// pointer-free one side by side over 1,000,000 entries of every type:
// build time, the live heap the index keeps, the time of a full GC with
// only the index live (what every cycle spends marking it), and one
// lookup. Run the builds with -benchtime 3x (each iteration builds one
// index), the lookups alone (-bench 'IndexOldNew1M/lookup') by time.
func BenchmarkIndexOldNew1M(b *testing.B) {
	type lookuper interface {
		Lookup(Type, string) (*Entry, bool)
		Len() int
	}
	build := func(kind string, es []Entry) (lookuper, error) {
		if kind == "map" {
			return newMapIndex(es, nil)
		}
		return NewIndex(es, nil)
	}
	var keys []Entry // a sample to look up, not sources
	for i, e := range indexFixture(1_000_000) {
		if i%97 == 0 && e.Type != TypeSource {
			keys = append(keys, e)
		}
	}
	for _, kind := range []string{"map", "flat"} {
		var ix lookuper
		b.Run("build/"+kind, func(b *testing.B) {
			var gc time.Duration
			var live uint64
			for b.Loop() {
				b.StopTimer()
				ix = nil
				var ms0, ms1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms0)
				es := indexFixture(1_000_000)
				b.StartTimer()
				var err error
				if ix, err = build(kind, es); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				es = nil
				runtime.GC()
				runtime.ReadMemStats(&ms1)
				live = ms1.HeapAlloc - ms0.HeapAlloc
				t0 := time.Now()
				runtime.GC()
				gc += time.Since(t0)
				b.StartTimer()
			}
			b.ReportMetric(float64(live)/1e6, "index-MB")
			b.ReportMetric(float64(gc.Nanoseconds())/float64(b.N), "gc-ns")
		})
		b.Run("lookup/"+kind, func(b *testing.B) {
			if ix == nil { // -bench 'IndexOldNew1M/lookup'
				var err error
				if ix, err = build(kind, indexFixture(1_000_000)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e := &keys[i%len(keys)]
				i++
				if kind == "flat" { // the Screener's path
					if _, ok := ix.(*Index).find(e.Type, e.Value); !ok {
						b.Fatal("not found")
					}
				} else if _, ok := ix.Lookup(e.Type, e.Value); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
