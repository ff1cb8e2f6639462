package media

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestClockTickSubscribeCancel(t *testing.T) {
	c := NewClock(0)
	if c.Interval() != 20*time.Millisecond {
		t.Errorf("default interval = %v, want 20ms", c.Interval())
	}
	var a, b int
	cancelA := c.Subscribe(func(time.Time) { a++ })
	c.Subscribe(func(time.Time) { b++ })
	now := time.Unix(1700000000, 0)
	c.Tick(now)
	if a != 1 || b != 1 {
		t.Fatalf("after one tick a=%d b=%d, want 1 1", a, b)
	}
	if !c.Now().Equal(now) {
		t.Errorf("Now() = %v, want %v", c.Now(), now)
	}
	cancelA()
	cancelA() // idempotent
	c.Tick(now.Add(20 * time.Millisecond))
	if a != 1 || b != 2 {
		t.Errorf("after cancel a=%d b=%d, want 1 2", a, b)
	}
	if c.Subscribers() != 1 {
		t.Errorf("Subscribers() = %d, want 1", c.Subscribers())
	}
}

func TestClockRuns(t *testing.T) {
	c := NewClock(2 * time.Millisecond)
	var n atomic.Int64
	c.Subscribe(func(time.Time) { n.Add(1) })
	before := c.Now()
	c.Start()
	c.Start() // no second goroutine
	if !c.Running() {
		t.Error("Running() false after Start")
	}
	waitFor(t, "5 ticks", func() bool { return n.Load() >= 5 })
	c.Stop()
	c.Stop()
	if c.Running() {
		t.Error("Running() true after Stop")
	}
	if !c.Now().After(before) {
		t.Error("Now() did not advance while running")
	}
	stopped := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != stopped {
		t.Errorf("ticked %d times after Stop", n.Load()-stopped)
	}
}

func TestClockTickNoAllocs(t *testing.T) {
	c := NewClock(0)
	var n int
	for i := 0; i < 100; i++ {
		c.Subscribe(func(time.Time) { n++ })
	}
	now := time.Now()
	if allocs := testing.AllocsPerRun(100, func() { c.Tick(now) }); allocs != 0 {
		t.Errorf("Tick with 100 subscribers allocates %v times", allocs)
	}
	if n == 0 {
		t.Error("subscribers were not called")
	}
}
