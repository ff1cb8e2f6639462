package archive

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkPurge100k: 100,000 expired interactions (the generator's, with
// their participant data) purged by retention from SQLite, while a
// writer inserts one interaction every 10 ms as the archive writer of a
// busy node would. Reported: the purge's time (issue 21: under a minute)
// and the longest wait of those inserts (no long write lock: the purge
// goes in batches, so calls and the API go on between them).
//
//	go test -run '^$' -bench Purge100k -benchtime 1x -v ./archive/
func BenchmarkPurge100k(b *testing.B) {
	const n = 100000
	ctx := context.Background()
	now := time.Now()
	for b.Loop() {
		b.StopTimer()
		s := openTest(b, filepath.Join(b.TempDir(), "cloak.db"), testPolicy)
		if err := s.Generate(ctx, GenerateOptions{N: n, Seed: 7, End: now.AddDate(0, 0, -200), Days: 20}); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var worst time.Duration
		var writes int
		wg.Add(1)
		go func() { // the node's own writes, meanwhile
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				t0 := time.Now()
				in := s.FromSummary(summary(fmt.Sprintf("live%06d", i), "+447700900001", now), "n")
				if err := s.Insert(ctx, []Interaction{in}); err != nil {
					b.Error(err)
					return
				}
				worst = max(worst, time.Since(t0))
				writes++
			}
		}()
		b.StartTimer()
		t0 := time.Now()
		res, err := s.Purge(ctx, PurgeOptions{Retention: Retention{Interactions: 180 * 24 * time.Hour}, Now: now, Actor: "bench"})
		took := time.Since(t0)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if res.Interactions != n {
			b.Fatalf("purged %d interactions, want %d", res.Interactions, n)
		}
		b.ReportMetric(took.Seconds(), "purge-s")
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-insert-ms")
		b.ReportMetric(float64(writes), "inserts-meanwhile")
		_ = s.Close()
		b.StartTimer()
	}
}
