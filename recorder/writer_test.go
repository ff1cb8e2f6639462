package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// waitWriterIdle waits until the shared writer's goroutine has exited
// (it does so on the first tick that finds no recording).
func waitWriterIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sharedWriter.mu.Lock()
		running := sharedWriter.running
		sharedWriter.mu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("shared writer still running with no recording open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneWriterGoroutineForAllRecordings(t *testing.T) {
	waitWriterIdle(t)
	base := runtime.NumGoroutine()
	c := newFakeClock()
	dir := t.TempDir()
	var recs []*Recorder
	for i := range 50 {
		r, err := New(Config{Dir: dir, Name: fmt.Sprintf("r%02d", i), Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if n := runtime.NumGoroutine() - base; n > 1 {
		t.Errorf("%d goroutines more with 50 recordings open, want at most 1", n)
	}
	for range 25 {
		for _, r := range recs {
			r.WriteCaller(frameOf(10))
			r.WriteAgent(frameOf(20))
		}
		c.Advance(FrameDuration)
	}
	for _, r := range recs {
		res, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		l, rt := readStereo(t, res.WAV)
		checkSpans(t, "left", l, span{0, ms(500), 10})
		checkSpans(t, "right", rt, span{0, ms(500), 20})
	}
	waitWriterIdle(t)
	// It starts again for the next recording.
	r, err := New(Config{Dir: dir, Name: "again", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteCaller(frameOf(1))
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Written == 0 { // the writer's turn, not Close, wrote it
		if time.Now().After(deadline) {
			t.Fatal("no writer turn after the writer restarted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFlushesWhatIsQueued closes recordings while their writer turns
// run every millisecond and both legs are still handing frames over: every
// frame handed over before Close is in the file, none after it, and none
// is counted twice.
func TestCloseFlushesWhatIsQueued(t *testing.T) {
	const recs, perLeg = 8, 300
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() {
			r, err := New(Config{Dir: dir, Name: fmt.Sprintf("c%d", i), Key: testKey, QueueFrames: 4 * perLeg, drainEvery: time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			var legs sync.WaitGroup
			for ch := range 2 {
				legs.Go(func() {
					f := frameOf(int16(100 * (ch + 1)))
					for j := range perLeg {
						if i%2 == 1 && j == perLeg/2 && ch == 0 {
							// Odd recordings close half way through.
							if _, err := r.Close(); err != nil {
								t.Error(err)
							}
						}
						r.Write(Channel(ch), f)
					}
				})
			}
			legs.Wait()
			res, err := r.Close()
			if i%2 == 1 {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("second close: %v", err)
				}
				res.WAV = wavPathFor(dir, fmt.Sprintf("c%d", i))
			} else if err != nil {
				t.Error(err)
				return
			}
			st := r.Stats()
			if st.Dropped != 0 {
				t.Errorf("rec %d: %d dropped", i, st.Dropped)
			}
			l, rt := readStereo(t, res.WAV)
			got := [2]int{count(l, 100), count(rt, 200)}
			if uint64(got[0]+got[1]) != st.Written*FrameSamples {
				t.Errorf("rec %d: %d+%d samples of audio in the file, %d frames written", i, got[0], got[1], st.Written)
			}
			if i%2 == 0 && (got != [2]int{perLeg * FrameSamples, perLeg * FrameSamples} || st.Written != 2*perLeg) {
				t.Errorf("rec %d: %v samples of audio per channel, want %d each", i, got, perLeg*FrameSamples)
			}
			if _, err := Verify(res.WAV, testKey); err != nil {
				t.Errorf("rec %d: verify: %v", i, err)
			}
		})
	}
	wg.Wait()
}

func wavPathFor(dir, name string) string { return filepath.Join(dir, name+".wav") }

func count(s []int16, v int16) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// stuckDisk is a data writer whose Write blocks until release, as on a
// stalled disk.
type stuckDisk struct {
	w       io.Writer
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (d *stuckDisk) Write(p []byte) (int, error) {
	d.once.Do(func() { close(d.entered) })
	<-d.gate
	return d.w.Write(p)
}

// TestStalledDiskStallsNoHotPath stalls the writer inside one recording's
// write: no hand-over blocks (the other recording's frames are dropped
// once its queue is full), and the other recording can be closed, with
// every frame it accepted, while the writer is still stuck.
func TestStalledDiskStallsNoHotPath(t *testing.T) {
	c := newFakeClock()
	disk := &stuckDisk{entered: make(chan struct{}), gate: make(chan struct{})}
	release := sync.OnceFunc(func() { close(disk.gate) })
	defer release()
	stuck, _ := newTest(t, c, func(cfg *Config) {
		cfg.Name = "stuck"
		cfg.wrapData = func(w io.Writer) io.Writer { disk.w = w; return disk }
	})
	other, dir := newTest(t, c, func(cfg *Config) { cfg.Name = "other"; cfg.QueueFrames = 8 })
	stuck.WriteCaller(frameOf(1))
	select {
	case <-disk.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never wrote the stuck recording")
	}
	finishes(t, "a hand-over blocked while the writer was stuck on another recording's disk", func() {
		for range 20 {
			stuck.WriteCaller(frameOf(1))
			other.WriteCaller(frameOf(2))
			other.WriteAgent(frameOf(3))
			c.Advance(FrameDuration)
		}
	})
	var closeErr error
	finishes(t, "Close waited for the writer stuck on another recording", func() { _, closeErr = other.Close() })
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	st := other.Stats()
	if st.Written+st.Dropped != 40 || st.Written < 8 {
		t.Errorf("other: %+v, want 40 frames written or dropped, at least 8 written", st)
	}
	l, rt := readStereo(t, wavPathFor(dir, "other"))
	if got := uint64(count(l, 2) + count(rt, 3)); got != st.Written*FrameSamples {
		t.Errorf("other: %d samples of audio, want %d", got, st.Written*FrameSamples)
	}
	release()
	if _, err := stuck.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTurnsDoNotChangeTheFile replays one script of frames (both legs,
// jitter, gaps, one leg alone for seconds, long writes, pauses) into
// recordings drained at different points: after every frame, at random,
// and only by Close. Between turns a recording keeps only its leading
// channel's samples (carry), so the files must be identical.
func TestTurnsDoNotChangeTheFile(t *testing.T) {
	type step struct {
		ch      Channel
		n       int           // samples
		advance time.Duration // clock advance after the frame
		pause   int           // 1 pause, -1 resume, 0 nothing
	}
	rng := rand.New(rand.NewPCG(7, 9))
	var script []step
	for i := range 3000 {
		s := step{ch: Channel(rng.IntN(2)), n: FrameSamples, advance: FrameDuration / 2}
		switch {
		case i%1000 > 700: // the caller alone for a while
			s.ch, s.advance = Caller, FrameDuration
		case rng.IntN(50) == 0:
			s.advance = time.Duration(rng.IntN(2000)) * time.Millisecond // a gap
		case rng.IntN(40) == 0:
			s.n = rng.IntN(4*FrameSamples) + 1 // a long or short write
		case rng.IntN(200) == 0:
			s.pause = 1 - 2*rng.IntN(2)
		}
		script = append(script, s)
	}
	play := func(drainAfter func(i int) bool) []byte {
		c := newFakeClock()
		mod, release := stallWriter()
		defer release()
		r, _ := newTest(t, c, func(cfg *Config) { mod(cfg); cfg.QueueFrames = 1 << 14 })
		ws := workspaces.Get().(*workspace)
		defer workspaces.Put(ws)
		buf := make([]int16, 4*FrameSamples)
		for i, s := range script {
			scriptPause(r, s.pause, ReasonAgent)
			for j := range buf[:s.n] {
				buf[j] = int16(i*7 + j + int(s.ch)*1000)
			}
			r.Write(s.ch, buf[:s.n])
			c.Advance(s.advance)
			if drainAfter(i) {
				drainNow(r, ws)
			}
		}
		release()
		res, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Dropped != 0 {
			t.Fatalf("%d dropped", st.Dropped)
		}
		b, err := os.ReadFile(res.WAV)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	once := play(func(int) bool { return false })
	every := play(func(int) bool { return true })
	drng := rand.New(rand.NewPCG(3, 4))
	random := play(func(int) bool { return drng.IntN(15) == 0 })
	if len(once) < 1<<20 {
		t.Fatalf("file of %d bytes, want a longer script", len(once))
	}
	if !bytes.Equal(once, every) {
		t.Error("draining after every frame changed the file")
	}
	if !bytes.Equal(once, random) {
		t.Error("draining at random points changed the file")
	}
}

// testLaw is an expansion table for the companded tests: any table will
// do, the recorder only looks codes up in it.
var testLaw = func() *[256]int16 {
	var l [256]int16
	for i := range l {
		l[i] = int16(i*251 - 32000)
	}
	return &l
}()

// TestCompandedIsWriteExpanded: a recording fed companded bytes
// (WriteCompanded) is the same file, byte for byte, as one fed their
// expansion (Write), with frames of 10 to 40 ms, both legs, gaps, pauses
// and turns at random points.
func TestCompandedIsWriteExpanded(t *testing.T) {
	type step struct {
		ch      Channel
		b       []byte
		advance time.Duration
		pause   int
	}
	rng := rand.New(rand.NewPCG(11, 13))
	var script []step
	for i := range 2000 {
		s := step{ch: Channel(rng.IntN(2)), advance: FrameDuration / 2}
		n := FrameSamples
		switch {
		case rng.IntN(10) == 0:
			n = []int{FrameSamples / 2, 3 * FrameSamples / 2, 2 * FrameSamples}[rng.IntN(3)] // 10, 30, 40 ms
		case rng.IntN(60) == 0:
			s.advance = time.Duration(rng.IntN(1500)) * time.Millisecond
		case rng.IntN(150) == 0:
			s.pause = 1 - 2*rng.IntN(2)
		}
		s.b = make([]byte, n)
		for j := range s.b {
			s.b[j] = byte(i + 3*j)
		}
		script = append(script, s)
	}
	play := func(companded bool) []byte {
		c := newFakeClock()
		r, _ := newTest(t, c, func(cfg *Config) { cfg.QueueFrames = 1 << 14 })
		pcm := make([]int16, 2*FrameSamples)
		for _, s := range script {
			scriptPause(r, s.pause, ReasonConsent)
			if companded {
				r.WriteCompanded(s.ch, s.b, testLaw)
			} else {
				for j, x := range s.b {
					pcm[j] = testLaw[x]
				}
				r.Write(s.ch, pcm[:len(s.b)])
			}
			c.Advance(s.advance)
		}
		res, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Dropped != 0 || st.Written == 0 || st.Silenced == 0 {
			t.Fatalf("stats %+v: want frames written and silenced, none dropped", st)
		}
		b, err := os.ReadFile(res.WAV)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want, got := play(false), play(true)
	if len(want) < 1<<19 {
		t.Fatalf("file of %d bytes, want a longer script", len(want))
	}
	if !bytes.Equal(got, want) {
		t.Error("the companded recording differs from the expanded one")
	}
}

// TestCompandedNilLaw: without an expansion table nothing is queued.
func TestCompandedNilLaw(t *testing.T) {
	r, _ := newTest(t, newFakeClock(), nil)
	r.WriteCompanded(Agent, make([]byte, FrameSamples), nil)
	if r.queued != 0 {
		t.Errorf("%d frames queued, want none", r.queued)
	}
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// scriptPause applies a scripted pause step: 1 pauses r for reason, -1
// resumes it, 0 does nothing.
func scriptPause(r *Recorder, step int, reason Reason) {
	switch step {
	case 1:
		_ = r.Pause(reason)
	case -1:
		_ = r.Resume(reason)
	}
}
