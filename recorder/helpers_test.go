package recorder

import (
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/wav"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKey is the HMAC key the tests sign with.
var testKey = []byte("test-recording-key")

// newTest starts a recording in a fresh directory with clock c.
func newTest(t *testing.T, c *fakeClock, mod func(*Config)) (*Recorder, string) {
	t.Helper()
	dir := t.TempDir()
	// A queue longer than any test writes: tests hand frames over far
	// faster than real time, and only the drop test wants drops.
	cfg := Config{Dir: dir, Name: "call-1", CallID: "c1@example", Codec: "PCMA", Key: testKey, Now: c.Now, QueueFrames: 1024}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// frameOf returns a 20 ms frame of constant value v.
func frameOf(v int16) []int16 {
	f := make([]int16, FrameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// readStereo reads a WAV back with go-audio/wav and returns its two
// channels, failing unless it is 8 kHz 16-bit stereo PCM.
func readStereo(t *testing.T, path string) (left, right []int16) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	buf, err := d.FullPCMBuffer()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if d.NumChans != 2 || d.SampleRate != SampleRate || d.BitDepth != 16 || d.WavAudioFormat != 1 {
		t.Fatalf("format: %d ch, %d Hz, %d bit, tag %d; want 2 ch 8000 Hz 16 bit PCM", d.NumChans, d.SampleRate, d.BitDepth, d.WavAudioFormat)
	}
	if len(buf.Data)%2 != 0 {
		t.Fatalf("odd sample count %d", len(buf.Data))
	}
	for i := 0; i < len(buf.Data); i += 2 {
		left = append(left, int16(buf.Data[i]))
		right = append(right, int16(buf.Data[i+1]))
	}
	return left, right
}

// span describes a run of equal samples.
type span struct {
	from, to int // [from, to) sample indices
	v        int16
}

// checkSpans fails unless s is exactly the concatenation of spans.
func checkSpans(t *testing.T, name string, s []int16, spans ...span) {
	t.Helper()
	if want := spans[len(spans)-1].to; len(s) != want {
		t.Fatalf("%s: %d samples, want %d", name, len(s), want)
	}
	for _, sp := range spans {
		for i := sp.from; i < sp.to; i++ {
			if s[i] != sp.v {
				t.Fatalf("%s: sample %d (%.3f s) = %d, want %d (span %d..%d)", name, i, float64(i)/SampleRate, s[i], sp.v, sp.from, sp.to)
			}
		}
	}
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	sort.Strings(n)
	return n
}

func wavPathIn(dir string) string { return filepath.Join(dir, "call-1.wav") }

// ms converts milliseconds to samples.
func ms(n int) int { return n * SampleRate / 1000 }

// drainNow takes a writer turn on r in the calling goroutine with
// workspace ws (tests and benchmarks that stall the writer and drain by
// hand).
func drainNow(r *Recorder, ws *workspace) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	f := r.takeQueue(false)
	r.tl.load(ws)
	r.place(f)
	r.tl.store()
}

// finishes runs f on its own goroutine and fails the test with msg if it
// has not returned within 10 s (f blocked).
func finishes(t *testing.T, msg string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}
