//go:build !race

// The race detector makes sync.Pool drop items at random, so these run
// without it.

package recorder

import (
	"io"
	"testing"
)

// TestSteadyStateAllocatesNothing: once the frame pool is warm, handing
// frames over (recording, paused, dropped) and the writer's turns that
// place and write them allocate nothing.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	c := newFakeClock()
	mod, release := stallWriter() // the test takes the turns
	defer release()
	r, _ := newTest(t, c, func(cfg *Config) {
		mod(cfg)
		cfg.QueueFrames = 16
		cfg.wrapData = func(io.Writer) io.Writer { return io.Discard }
	})
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	callerF, agentF := frameOf(1), make([]byte, FrameSamples)
	// 200 ms of both legs (the agent's companded), then a turn; the queue
	// holds 16 frames, so 4 of the 20 are dropped.
	step := func() {
		for range 10 {
			r.WriteCaller(callerF)
			r.WriteCompanded(Agent, agentF, testLaw)
			c.Advance(FrameDuration)
		}
		drainNow(r, ws)
	}
	step() // warm the pool
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("recording: %v allocations per 200 ms", a)
	}
	if err := r.Pause(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("paused: %v allocations per 200 ms", a)
	}
	st := r.Stats()
	if st.Written == 0 || st.Silenced == 0 || st.Dropped == 0 {
		t.Errorf("stats %+v: want frames written, silenced and dropped", st)
	}
	release()
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
