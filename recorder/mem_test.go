package recorder

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// memRecordings is how many recordings BenchmarkMemoryPerRecording keeps
// open at once.
const memRecordings = 1000

// BenchmarkMemoryPerRecording opens memRecordings recordings with the
// default Config, feeds each three seconds of both legs in 100 ms steps
// (waiting for the writer after each step, so nothing is dropped), and
// reports the live heap and goroutine stack each one holds after a GC:
//
//   - heap-B/rec, stack-B/rec: with everything written (the fixed cost of
//     an open recording: its state, file, timeline);
//   - queued-heap-B/rec: with the writer stalled and a further 200 ms of
//     both legs (20 frames) queued on every recording, which is what a
//     recording holds just before the writer's turn reaches it.
//
// The figures do not depend on b.N; run it with -benchtime 1x.
func BenchmarkMemoryPerRecording(b *testing.B) {
	for b.Loop() {
		heap, stack, queued := measureRecordings(b, memRecordings)
		b.ReportMetric(heap, "heap-B/rec")
		b.ReportMetric(stack, "stack-B/rec")
		b.ReportMetric(queued, "queued-heap-B/rec")
	}
}

func measureRecordings(b *testing.B, n int) (heap, stack, queued float64) {
	b.Helper()
	dir := b.TempDir()
	c := newFakeClock()
	var stall atomic.Pointer[chan struct{}]
	hook := func() {
		if g := stall.Load(); g != nil {
			<-*g
		}
	}
	base := memNow()
	recs := make([]*Recorder, n)
	for i := range recs {
		r, err := New(Config{Dir: dir, Name: fmt.Sprintf("mem-%04d", i), CallID: "mem", Codec: "PCMA", Key: testKey, Now: c.Now, writerHook: hook})
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	caller, agent := frameOf(1000), frameOf(-1000)
	feed := func(frames int) {
		for range frames {
			for _, r := range recs {
				r.WriteCaller(caller)
				r.WriteAgent(agent)
			}
			c.Advance(FrameDuration)
		}
	}
	handed := uint64(0)
	for range 30 { // 3 s in 100 ms steps
		feed(5)
		handed += 10
		for _, r := range recs {
			for r.written.Load()+r.silenced.Load() < handed {
				time.Sleep(time.Millisecond)
			}
		}
	}
	m := memNow()
	heap = float64(m.HeapInuse-base.HeapInuse) / float64(n)
	stack = float64(m.StackInuse-base.StackInuse) / float64(n)

	gate := make(chan struct{})
	stall.Store(&gate)
	time.Sleep(500 * time.Millisecond) // every writer turn under way has ended
	feed(10)
	m = memNow()
	queued = float64(m.HeapInuse-base.HeapInuse) / float64(n)
	stall.Store(nil)
	close(gate)
	for _, r := range recs {
		st := r.Stats()
		if _, err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if st.Dropped != 0 {
			b.Fatalf("%d frames dropped", st.Dropped)
		}
	}
	return heap, stack, queued
}

// memNow collects garbage (twice, so pooled buffers go too) and returns
// the memory statistics.
func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// BenchmarkRealtime records realtimeCalls calls at once in real time, both
// legs, for realtimeSeconds, with the default Config and clock. Driver
// goroutines hand the frames over every 20 ms as the RTP goroutines would.
// It reports the process CPU time per frame handed over (user + system,
// driver and writer included; compare "off", where the recorder is
// PolicyNever, for the drivers' own cost) and the heap in use per call
// after a GC in the middle of the run (frames queued and pooled
// included).
func BenchmarkRealtime(b *testing.B) {
	for _, tc := range []struct {
		name   string
		policy Policy
	}{{"off", PolicyNever}, {"on", PolicyRecord}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				cpu, heap := realtime(b, tc.policy)
				b.ReportMetric(cpu, "cpu-ns/frame")
				b.ReportMetric(heap, "heap-B/call")
			}
		})
	}
}

const (
	realtimeCalls   = 500
	realtimeSeconds = 4
	realtimeDrivers = 8
)

func realtime(b *testing.B, policy Policy) (cpuPerFrame, heapPerCall float64) {
	b.Helper()
	dir := b.TempDir()
	base := memNow()
	recs := make([]*Recorder, realtimeCalls)
	for i := range recs {
		r, err := New(Config{Dir: dir, Name: fmt.Sprintf("rt-%04d", i), CallID: "rt", Codec: "PCMA", Key: testKey, Policy: policy})
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	caller, agent := frameOf(1000), frameOf(-1000)
	stop := make(chan struct{})
	var frames atomic.Uint64
	var wg sync.WaitGroup
	for d := range realtimeDrivers {
		wg.Go(func() {
			t := time.NewTicker(FrameDuration)
			defer t.Stop()
			mine := recs[d*len(recs)/realtimeDrivers : (d+1)*len(recs)/realtimeDrivers]
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				for _, r := range mine {
					r.WriteCaller(caller)
					r.WriteAgent(agent)
				}
				frames.Add(uint64(2 * len(mine)))
			}
		})
	}
	time.Sleep(time.Second) // warm up: pools filled, writer in step
	cpu0, f0 := cpuTime(b), frames.Load()
	time.Sleep(realtimeSeconds * time.Second / 2)
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	time.Sleep(realtimeSeconds * time.Second / 2)
	cpu1, f1 := cpuTime(b), frames.Load()
	close(stop)
	wg.Wait()
	var dropped uint64
	for _, r := range recs {
		dropped += r.Stats().Dropped
		if _, err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if dropped != 0 {
		b.Logf("%d frames dropped", dropped)
	}
	return float64(cpu1-cpu0) / float64(f1-f0), float64(m.HeapInuse+m.StackInuse-base.HeapInuse-base.StackInuse) / realtimeCalls
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
