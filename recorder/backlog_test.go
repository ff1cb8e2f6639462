package recorder

import (
	"testing"
	"time"
)

// TestTakeBacklogIsTheOldestQueuedAge stalls the shared writer while
// 200 ms of audio is handed over, lets 700 ms pass on the recording's
// clock, and checks the backlog the writer reports when it drains: the
// age of the oldest frame, 700 ms. The window then starts again.
func TestTakeBacklogIsTheOldestQueuedAge(t *testing.T) {
	c := newFakeClock()
	mod, release := stallWriter()
	defer release()
	r, _ := newTest(t, c, mod)
	defer r.Discard()
	_ = TakeBacklog()
	for range 10 {
		r.WriteCaller(frameOf(100))
		c.Advance(FrameDuration)
	}
	c.Advance(500 * time.Millisecond)
	release()
	deadline := time.Now().Add(5 * time.Second)
	var got time.Duration
	for got == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = TakeBacklog()
	}
	if got < 690*time.Millisecond || got > 710*time.Millisecond {
		t.Fatalf("backlog %v, want 700ms (the oldest frame's age)", got)
	}
	if got := TakeBacklog(); got != 0 {
		t.Fatalf("TakeBacklog did not start a new window: %v", got)
	}
}

// TestTakeBacklogSeesAStuckTurn: a turn that hangs (a disk that stopped
// answering) shows as backlog while it hangs, before it could report the
// age of anything it drained.
func TestTakeBacklogSeesAStuckTurn(t *testing.T) {
	c := newFakeClock()
	mod, release := stallWriter()
	defer release()
	r, _ := newTest(t, c, mod)
	defer r.Discard()
	r.WriteCaller(frameOf(100))
	_ = TakeBacklog()
	// The recording's phase comes round within drainInterval (plus a
	// tick): by 500 ms its turn has hung for at least 275 ms.
	time.Sleep(500 * time.Millisecond)
	got := TakeBacklog()
	if want := drainInterval + 250*time.Millisecond; got < want {
		t.Fatalf("backlog %v during a turn hung at least 275 ms, want at least %v", got, want)
	}
}
