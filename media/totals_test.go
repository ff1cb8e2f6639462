package media

import (
	"reflect"
	"testing"
)

// TestStatsAddSumsEveryField fails when a counter is added to Stats and
// not to add, so Totals would silently miss it.
func TestStatsAddSumsEveryField(t *testing.T) {
	var one Stats
	v := reflect.ValueOf(&one).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(1)
	}
	sum := one
	sum.add(one)
	sv := reflect.ValueOf(sum)
	for i := range sv.NumField() {
		if got := sv.Field(i).Uint(); got != 2 {
			t.Errorf("Stats.%s: add gives %d, want 2: add the field to Stats.add in media/totals.go (and a series in metrics/collector.go)", sv.Type().Field(i).Name, got)
		}
	}
}

// TestTotalsKeepClosedEndpoints: a leg's packets stay in Totals after it
// closes, and the open count follows Start and Close.
func TestTotalsKeepClosedEndpoints(t *testing.T) {
	before, open0 := Totals()
	e := NewEndpoint(EndpointConfig{Conn: newPeer(t).conn})
	e.Start()
	e.stats.rxPackets.Add(3)
	e.stats.malformed.Add(2)
	mid, open1 := Totals()
	if open1 != open0+1 || mid.RxPackets-before.RxPackets != 3 || mid.DroppedMalformed-before.DroppedMalformed != 2 {
		t.Fatalf("open %d->%d, rx +%d, malformed +%d; want +1, +3, +2", open0, open1, mid.RxPackets-before.RxPackets, mid.DroppedMalformed-before.DroppedMalformed)
	}
	_ = e.Close()
	after, open2 := Totals()
	if open2 != open0 || after.RxPackets-before.RxPackets != 3 {
		t.Fatalf("after close: open %d (want %d), rx +%d (want +3)", open2, open0, after.RxPackets-before.RxPackets)
	}
	_ = e.Close()
	again, _ := Totals()
	if again.RxPackets != after.RxPackets {
		t.Fatal("a second Close counted the leg twice")
	}
}

// BenchmarkTotals is a scrape's cost of the RTP series with 1,000 legs
// open (about 15 atomic loads a leg, under the totals lock).
func BenchmarkTotals(b *testing.B) {
	legs := make([]*Endpoint, 1000)
	for i := range legs {
		legs[i] = &Endpoint{}
		legs[i].joinTotals()
	}
	b.Cleanup(func() {
		for _, e := range legs {
			e.leaveTotals()
		}
	})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Totals()
	}
}
