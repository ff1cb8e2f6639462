package recorder

import (
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"
)

// benchRotate is how many frames a benchmark hands to one recording
// before it closes it and starts another, keeping each under the WAV size
// limit (the loop runs far faster than real time).
const benchRotate = 1 << 16

// benchBatch is how many frames a benchmark hands over between two waits
// for the writer; the benchmarks' queue holds that many.
const benchBatch = 1024

// benchRecorder starts a recording whose samples go to io.Discard, so the
// benchmark measures the hand-off, not the disk. The queue is longer than
// the default so the timer stops less often; the cost of a hand-off does
// not depend on the queue's length.
func benchRecorder(b *testing.B, mod func(*Config)) *Recorder {
	b.Helper()
	cfg := Config{Dir: b.TempDir(), Name: "bench", QueueFrames: benchBatch, drainEvery: time.Millisecond, wrapData: func(io.Writer) io.Writer { return io.Discard }}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// benchFrames hands b.N frames to recorders made by mk, alternating the
// legs (the agent's companded when companded is set). Every benchBatch
// frames the timer stops while the writer catches up, so the queue always
// has room and nothing is dropped: the figure is the cost of one accepted
// frame.
func benchFrames(b *testing.B, companded bool, mk func() *Recorder) {
	f, g := frameOf(1000), make([]byte, FrameSamples)
	r := mk()
	handed := uint64(0)
	finish := func() {
		st := r.Stats()
		if _, err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if st.Dropped != 0 {
			b.Fatalf("%d frames dropped", st.Dropped)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%benchBatch == 0 {
			b.StopTimer()
			for r.written.Load()+r.silenced.Load() < handed {
				runtime.Gosched()
			}
			if handed >= benchRotate {
				finish()
				r, handed = mk(), 0
			}
			b.StartTimer()
		}
		switch {
		case i&1 == 0:
			r.WriteCaller(f)
		case companded:
			r.WriteCompanded(Agent, g, testLaw)
		default:
			r.WriteAgent(f)
		}
		handed++
	}
	b.StopTimer()
	finish()
}

// BenchmarkWriteFrame is the hot-path cost of one 20 ms frame recorded.
func BenchmarkWriteFrame(b *testing.B) {
	benchFrames(b, false, func() *Recorder { return benchRecorder(b, nil) })
}

// BenchmarkWriteFrameCompanded is BenchmarkWriteFrame with the agent's
// frames handed over as G.711-style bytes (WriteCompanded), as the call
// package records what it sends.
func BenchmarkWriteFrameCompanded(b *testing.B) {
	benchFrames(b, true, func() *Recorder { return benchRecorder(b, nil) })
}

// BenchmarkWriteFramePaused is the cost of one frame handed over while
// paused (queued as silence, no copy).
func BenchmarkWriteFramePaused(b *testing.B) {
	benchFrames(b, false, func() *Recorder {
		r := benchRecorder(b, nil)
		if err := r.Pause(ReasonSecure); err != nil {
			b.Fatal(err)
		}
		return r
	})
}

// BenchmarkWriteFrameQueueFull is the cost of one frame dropped because
// the writer is stalled and the queue is full.
func BenchmarkWriteFrameQueueFull(b *testing.B) {
	mod, release := stallWriter()
	defer release()
	r := benchRecorder(b, func(c *Config) { mod(c); c.QueueFrames = 1 })
	f := frameOf(1000)
	r.WriteCaller(f) // fills the queue
	b.ReportAllocs()
	for b.Loop() {
		r.WriteCaller(f)
	}
	b.StopTimer()
	if d := r.Stats().Dropped; d == 0 {
		b.Fatal("nothing dropped")
	}
	release()
	if _, err := r.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTurn is the writer's cost per frame: a turn on a recording with
// 200 ms of both legs queued (20 frames), placed on the timeline and
// written, to the file ("file") or to io.Discard ("discard").
func BenchmarkTurn(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(io.Writer) io.Writer
	}{{"discard", func(io.Writer) io.Writer { return io.Discard }}, {"file", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			const perTurn = 20
			c := newFakeClock()
			mod, release := stallWriter() // the benchmark takes the turns
			defer release()
			mk := func() *Recorder {
				return benchRecorder(b, func(cfg *Config) { mod(cfg); cfg.Now = c.Now; cfg.wrapData = tc.wrap })
			}
			r := mk()
			ws := workspaces.Get().(*workspace)
			defer workspaces.Put(ws)
			caller, agent := frameOf(1000), frameOf(-1000)
			turns := 0
			b.ReportAllocs()
			for b.Loop() {
				for range perTurn / 2 {
					r.WriteCaller(caller)
					r.WriteAgent(agent)
					c.Advance(FrameDuration)
				}
				drainNow(r, ws)
				if turns++; turns*perTurn >= benchRotate {
					release()
					if _, err := r.Close(); err != nil {
						b.Fatal(err)
					}
					mod, release = stallWriter()
					r, turns = mk(), 0
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perTurn), "ns/frame")
			release()
			if _, err := r.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkNewClose is the cost of a recording's set-up and tear-down
// with nothing recorded: the files created, locked, fsynced, renamed and
// signed (what a call pays at answer and at hang-up, off the hot path).
func BenchmarkNewClose(b *testing.B) {
	dir := b.TempDir()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		r, err := New(Config{Dir: dir, Name: fmt.Sprintf("nc%d", i), CallID: "bench", Key: testKey})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
