package recorder

import (
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestStereoLayoutCallerLeftAgentRight(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, nil)
	callerF, agentF := frameOf(1000), frameOf(-2000)
	for range 50 {
		r.WriteCaller(callerF)
		r.WriteAgent(agentF)
		c.Advance(FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.WAV != wavPathIn(dir) {
		t.Errorf("WAV path %q, want %q", res.WAV, wavPathIn(dir))
	}
	l, rt := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(1000), 1000})
	checkSpans(t, "right", rt, span{0, ms(1000), -2000})
	m := res.Meta
	if m.DurationMS != 1000 || m.Channels != (Layout{Left: "caller", Right: "agent"}) || m.Codec != "PCMA" || m.CallID != "c1@example" {
		t.Errorf("sidecar: duration %d, channels %+v, codec %q, call id %q", m.DurationMS, m.Channels, m.Codec, m.CallID)
	}
	if st := r.Stats(); st.Written != 100 || st.Dropped != 0 || st.Silenced != 0 {
		t.Errorf("stats %+v, want 100 written", st)
	}
}

func TestPauseWritesSilenceAndKeepsDuration(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	for i := range 100 { // 2 s
		switch i {
		case 25:
			if err := r.Pause(ReasonSecure); err != nil {
				t.Fatal(err)
			}
		case 75:
			if err := r.Resume(ReasonSecure); err != nil {
				t.Fatal(err)
			}
		}
		r.WriteCaller(frameOf(700))
		r.WriteAgent(frameOf(-700))
		c.Advance(FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, rt := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(500), 700}, span{ms(500), ms(1500), 0}, span{ms(1500), ms(2000), 700})
	checkSpans(t, "right", rt, span{0, ms(500), -700}, span{ms(500), ms(1500), 0}, span{ms(1500), ms(2000), -700})
	want := []Marker{{Reason: ReasonSecure, StartMS: 500, EndMS: 1500,
		Start: c.t.Add(-1500 * time.Millisecond), End: c.t.Add(-500 * time.Millisecond)}}
	if !markersEqual(res.Meta.Markers, want) {
		t.Errorf("markers %+v, want %+v", res.Meta.Markers, want)
	}
	st := r.Stats()
	if st.Written != 100 || st.Silenced != 100 || st.Paused != time.Second {
		t.Errorf("stats %+v, want 100 written, 100 silenced, 1s paused", st)
	}
	if res.Meta.PausedMS != 1000 || res.Meta.DurationMS != 2000 {
		t.Errorf("sidecar paused %d ms, duration %d ms; want 1000, 2000", res.Meta.PausedMS, res.Meta.DurationMS)
	}
}

func markersEqual(a, b []Marker) bool {
	return slices.EqualFunc(a, b, func(x, y Marker) bool {
		return x.Reason == y.Reason && x.StartMS == y.StartMS && x.EndMS == y.EndMS && x.Start.Equal(y.Start) && x.End.Equal(y.End)
	})
}

func TestNestedPausesResumeOnlyWhenAllLifted(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	// 0-200 ms audio; agent pause at 200; secure pause at 400; agent
	// resume at 600 (still paused); secure resume at 800; audio to 1000.
	steps := map[int]func() error{
		10: func() error { return r.Pause(ReasonAgent) },
		20: func() error { return r.Pause(ReasonSecure) },
		30: func() error { return r.Resume(ReasonAgent) },
		40: func() error { return r.Resume(ReasonSecure) },
	}
	wantPaused := func(i int) bool { return i >= 10 && i < 40 }
	for i := range 50 {
		if f := steps[i]; f != nil {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.Paused(); got != wantPaused(i) {
			t.Fatalf("frame %d: Paused() = %v, want %v", i, got, wantPaused(i))
		}
		r.WriteCaller(frameOf(300))
		c.Advance(FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, rt := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(200), 300}, span{ms(200), ms(800), 0}, span{ms(800), ms(1000), 300})
	checkSpans(t, "right", rt, span{0, ms(1000), 0})
	got := res.Meta.Markers
	if len(got) != 2 || got[0].Reason != ReasonAgent || got[0].StartMS != 200 || got[0].EndMS != 600 ||
		got[1].Reason != ReasonSecure || got[1].StartMS != 400 || got[1].EndMS != 800 {
		t.Errorf("markers %+v, want agent 200-600 and secure 400-800", got)
	}
	if st := r.Stats(); st.Paused != 600*time.Millisecond {
		t.Errorf("paused %v, want 600ms (the union)", st.Paused)
	}
}

func TestPauseSameReasonTwiceIsOneInterval(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	for _, step := range []func() error{
		func() error { return r.Pause(ReasonAgent) },
		func() error { return r.Pause(ReasonAgent) },
		func() error { return r.Resume(ReasonAgent) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		c.Advance(100 * time.Millisecond)
	}
	if r.Paused() {
		t.Fatal("still paused after one Resume of the only reason")
	}
	if err := r.Resume(ReasonSecure); err != nil {
		t.Errorf("resume of an inactive reason: %v", err)
	}
	if err := r.Pause("lunch"); !errors.Is(err, ErrReason) {
		t.Errorf("unknown reason: err %v, want ErrReason", err)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Meta.Markers; len(m) != 1 || m[0].StartMS != 0 || m[0].EndMS != 200 {
		t.Errorf("markers %+v, want one agent marker 0-200", m)
	}
	if err := r.Pause(ReasonAgent); !errors.Is(err, ErrClosed) {
		t.Errorf("pause after close: %v, want ErrClosed", err)
	}
	if _, err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
}

func TestOpenPauseEndsAtClose(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	c.Advance(300 * time.Millisecond)
	if err := r.Pause(ReasonConsent); err != nil {
		t.Fatal(err)
	}
	if m := r.Markers(); len(m) != 1 || m[0].EndMS != -1 {
		t.Errorf("open marker %+v, want EndMS -1", m)
	}
	c.Advance(200 * time.Millisecond)
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Meta.Markers; len(m) != 1 || m[0].StartMS != 300 || m[0].EndMS != 500 {
		t.Errorf("markers %+v, want consent 300-500", m)
	}
	if res.Meta.PausedMS != 200 {
		t.Errorf("paused %d ms, want 200", res.Meta.PausedMS)
	}
}

// stallWriter returns a Config modifier whose writer goroutine blocks
// before taking any frame until release is called.
func stallWriter() (mod func(*Config), release func()) {
	gate := make(chan struct{})
	var once sync.Once
	return func(c *Config) { c.writerHook = func() { <-gate } }, func() { once.Do(func() { close(gate) }) }
}

func TestPauseAppliesToFramesAfterTheCallEvenIfQueued(t *testing.T) {
	c := newFakeClock()
	mod, release := stallWriter()
	defer release()
	r, _ := newTest(t, c, mod)
	for range 10 { // 200 ms of audio, all still queued
		r.WriteCaller(frameOf(500))
		c.Advance(FrameDuration)
	}
	if err := r.Pause(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	for range 10 { // captured after Pause: must never reach the disk
		r.WriteCaller(frameOf(500))
		c.Advance(FrameDuration)
	}
	release()
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, _ := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(200), 500}, span{ms(200), ms(400), 0})
}

func TestDropsWhenWriterIsBlocked(t *testing.T) {
	c := newFakeClock()
	mod, release := stallWriter()
	defer release()
	r, _ := newTest(t, c, func(cfg *Config) { mod(cfg); cfg.QueueFrames = 4 })
	finishes(t, "WriteCaller blocked while the writer was stalled", func() {
		for range 20 {
			r.WriteCaller(frameOf(900))
			c.Advance(FrameDuration)
		}
	})
	if st := r.Stats(); st.Dropped != 16 {
		t.Fatalf("dropped %d, want 16 (20 frames, queue of 4)", st.Dropped)
	}
	release()
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Written != 4 {
		t.Errorf("written %d, want 4", st.Written)
	}
	if res.Meta.FramesDropped != 16 {
		t.Errorf("sidecar frames_dropped %d, want 16", res.Meta.FramesDropped)
	}
	// The dropped frames are a gap in time: silence, and the file still
	// lasts the 400 ms the recording did.
	l, _ := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(80), 900}, span{ms(80), ms(400), 0})
}

func TestGapsAndSilentLegBecomeSilence(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	for range 10 {
		r.WriteCaller(frameOf(100))
		c.Advance(FrameDuration)
	}
	c.Advance(3 * time.Second) // nothing on either leg, longer than the pending buffer
	for range 10 {
		r.WriteCaller(frameOf(200))
		c.Advance(FrameDuration)
	}
	c.Advance(300 * time.Millisecond)
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, rt := readStereo(t, res.WAV)
	checkSpans(t, "left", l, span{0, ms(200), 100}, span{ms(200), ms(3200), 0}, span{ms(3200), ms(3400), 200}, span{ms(3400), ms(3700), 0})
	checkSpans(t, "right", rt, span{0, ms(3700), 0})
	if res.Meta.DurationMS != 3700 {
		t.Errorf("duration %d ms, want 3700", res.Meta.DurationMS)
	}
}

func TestLongFrameIsSplit(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	long := make([]int16, 3*FrameSamples+40) // 65 ms
	for i := range long {
		long[i] = int16(i)
	}
	r.WriteAgent(long)
	c.Advance(65 * time.Millisecond)
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, rt := readStereo(t, res.WAV)
	if !slices.Equal(rt, long) {
		t.Errorf("right channel does not hold the long write unchanged (%d samples, want %d)", len(rt), len(long))
	}
	if st := r.Stats(); st.Written != 4 {
		t.Errorf("written %d frames, want 4", st.Written)
	}
}

func TestTempFileThenRename(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, nil)
	for range 5 {
		r.WriteCaller(frameOf(1))
		c.Advance(FrameDuration)
	}
	if got, want := dirNames(t, dir), []string{".call-1.json.part", ".call-1.wav.part"}; !slices.Equal(got, want) {
		t.Fatalf("before Close: %v, want %v", got, want)
	}
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := dirNames(t, dir), []string{"call-1.json", "call-1.wav"}; !slices.Equal(got, want) {
		t.Fatalf("after Close: %v, want %v", got, want)
	}
}

func TestDiscardLeavesNoFile(t *testing.T) {
	t.Run("while recording", func(t *testing.T) {
		c := newFakeClock()
		r, dir := newTest(t, c, nil)
		r.WriteCaller(frameOf(1))
		if err := r.Discard(); err != nil {
			t.Fatal(err)
		}
		if n := dirNames(t, dir); len(n) != 0 {
			t.Errorf("files left: %v", n)
		}
		r.WriteCaller(frameOf(1)) // ignored, no panic
		if _, err := r.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("close after discard: %v, want ErrClosed", err)
		}
		if n := dirNames(t, dir); len(n) != 0 {
			t.Errorf("files after close: %v", n)
		}
	})
	t.Run("after close", func(t *testing.T) {
		c := newFakeClock()
		r, dir := newTest(t, c, nil)
		r.WriteCaller(frameOf(1))
		c.Advance(FrameDuration)
		if _, err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Discard(); err != nil {
			t.Fatal(err)
		}
		if n := dirNames(t, dir); len(n) != 0 {
			t.Errorf("files left: %v", n)
		}
		if err := r.Discard(); err != nil {
			t.Errorf("second discard: %v", err)
		}
	})
}

func TestPolicyNeverWritesNothing(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, func(cfg *Config) { cfg.Policy = PolicyNever })
	r.WriteCaller(frameOf(1))
	r.WriteAgent(frameOf(1))
	if err := r.Pause(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.WAV != "" || res.Sidecar != "" {
		t.Errorf("result %+v, want empty", res)
	}
	if n := dirNames(t, dir); len(n) != 0 {
		t.Errorf("files written under PolicyNever: %v", n)
	}
	if st := r.Stats(); st.Written != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{Dir: dir, Name: ""},
		{Dir: dir, Name: "a/b"},
		{Dir: dir, Name: ".hidden"},
		{Dir: dir + "/missing", Name: "x"},
		{Dir: dir, Name: "x", Policy: Policy(7)},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
	if n := dirNames(t, dir); len(n) != 0 {
		t.Errorf("files left: %v", n)
	}
}

func TestNewRefusesToOverwriteAPartFile(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, nil)
	defer r.Discard()
	_, err := New(Config{Dir: dir, Name: "call-1", Now: c.Now})
	if !errors.Is(err, ErrWrite) || !errors.Is(err, os.ErrExist) {
		t.Errorf("second New on the same name: %v, want ErrWrite wrapping ErrExist", err)
	}
}

// TestConcurrentWritersAndPauses runs both legs' writers against a
// goroutine pausing and resuming, on the real clock, under -race.
func TestConcurrentWritersAndPauses(t *testing.T) {
	dir := t.TempDir()
	r, err := New(Config{Dir: dir, Name: "race", CallID: "race", Key: testKey, QueueFrames: 16})
	if err != nil {
		t.Fatal(err)
	}
	const perLeg = 400
	var wg sync.WaitGroup
	for _, write := range []func([]int16){r.WriteCaller, r.WriteAgent} {
		wg.Go(func() {
			f := frameOf(1234)
			for i := range perLeg {
				f[0] = int16(i)
				write(f)
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			reason := Reasons()[rng.IntN(numReasons)]
			if rng.IntN(2) == 0 {
				_ = r.Pause(reason)
			} else {
				_ = r.Resume(reason)
			}
			_ = r.Stats()
			time.Sleep(50 * time.Microsecond)
		}
	})
	wg.Wait()
	close(stop)
	pwg.Wait()
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Written+st.Silenced+st.Dropped != 2*perLeg {
		t.Errorf("written %d + silenced %d + dropped %d != %d frames handed over", st.Written, st.Silenced, st.Dropped, 2*perLeg)
	}
	for _, m := range res.Meta.Markers {
		if m.EndMS < m.StartMS || m.End.Before(m.Start) {
			t.Errorf("marker ends before it starts: %+v", m)
		}
	}
	if _, err := Verify(res.WAV, testKey); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestPauseReasonsAndWriting: PauseReasons lists the active reasons in
// Reasons' order (what the API's call info shows after a reload);
// Writing is false once the recording is closed.
func TestPauseReasonsAndWriting(t *testing.T) {
	c := newFakeClock()
	r, _ := newTest(t, c, nil)
	if got := r.PauseReasons(); got != nil || !r.Writing() {
		t.Fatalf("fresh recorder: reasons %v, writing %v", got, r.Writing())
	}
	_ = r.Pause(ReasonPayment)
	_ = r.Pause(ReasonAPI)
	if got := r.PauseReasons(); len(got) != 2 || got[0] != ReasonAPI || got[1] != ReasonPayment {
		t.Errorf("reasons %v, want [api payment]", got)
	}
	_ = r.Resume(ReasonAPI)
	if got := r.PauseReasons(); len(got) != 1 || got[0] != ReasonPayment {
		t.Errorf("after resuming api: %v, want [payment]", got)
	}
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Writing() {
		t.Error("a closed recorder says it is writing")
	}
}

// TestPausedFrom: a recording paused from its first moment (a call secure
// before its answer) has its marker at 0 ms even when time passes before
// the first frame; an unknown reason is refused at New.
func TestPausedFrom(t *testing.T) {
	c := newFakeClock()
	r, err := New(Config{Dir: t.TempDir(), Name: "call-1", CallID: "call-1", Key: testKey, Now: c.Now, PausedFrom: ReasonSecure})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Paused() {
		t.Fatal("not paused from the start")
	}
	c.Advance(30 * time.Millisecond)
	if err := r.Resume(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Meta.Markers; len(m) != 1 || m[0].Reason != ReasonSecure || m[0].StartMS != 0 || m[0].EndMS != 30 {
		t.Errorf("markers %+v, want one secure marker 0-30", m)
	}
	if _, err := New(Config{Dir: t.TempDir(), Name: "call-2", PausedFrom: "lunch"}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown reason: err %v, want ErrConfig", err)
	}
}
