package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// DefaultClockInterval is the pacing interval of the shared clock: one
// 20 ms G.711 frame.
const DefaultClockInterval = audio.FrameDuration

// Clock is the shared pacing clock. One goroutine ticks every interval and
// calls each subscriber in turn, so playback of every call is paced by one
// timer rather than a timer per call. Subscribers run on the clock's
// goroutine and must not block: they typically bump a counter and poke a
// channel with a non-blocking send.
//
// Tests can leave the clock stopped and drive it with Tick.
type Clock struct {
	interval time.Duration
	now      atomic.Int64 // unix nanoseconds of the last tick
	running  atomic.Bool  // the ticking goroutine runs

	subMu sync.Mutex                    // serialises Subscribe/cancel
	subs  atomic.Pointer[[]*subscriber] // copy-on-write; read lock-free per tick

	runMu   sync.Mutex
	stop    chan struct{}
	stopped chan struct{}
}

type subscriber struct {
	fn func(now time.Time)
}

// NewClock returns a stopped clock ticking every interval (20 ms when
// interval <= 0). Start it with Start.
func NewClock(interval time.Duration) *Clock {
	if interval <= 0 {
		interval = DefaultClockInterval
	}
	c := &Clock{interval: interval}
	c.now.Store(time.Now().UnixNano())
	empty := []*subscriber{}
	c.subs.Store(&empty)
	return c
}

// Interval returns the tick interval.
func (c *Clock) Interval() time.Duration { return c.interval }

// Start starts the ticking goroutine. Calling Start on a running clock does
// nothing.
func (c *Clock) Start() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.stop != nil {
		return
	}
	c.stop = make(chan struct{})
	c.stopped = make(chan struct{})
	c.now.Store(time.Now().UnixNano())
	c.running.Store(true)
	go c.run(c.stop, c.stopped)
}

func (c *Clock) run(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			c.Tick(now)
		}
	}
}

// Stop stops the ticking goroutine and waits for it to exit. Subscribers
// stay registered; Start resumes ticking. Stop on a stopped clock does
// nothing.
func (c *Clock) Stop() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.stop == nil {
		return
	}
	close(c.stop)
	<-c.stopped
	c.running.Store(false)
	c.stop, c.stopped = nil, nil
}

// Tick advances the coarse time to now and calls every subscriber. The
// running clock calls it from its goroutine; tests call it directly on a
// stopped clock. It takes no lock and does not allocate.
func (c *Clock) Tick(now time.Time) {
	c.now.Store(now.UnixNano())
	for _, s := range *c.subs.Load() {
		s.fn(now)
	}
}

// Subscribe registers fn to be called on every tick and returns a function
// that removes it (safe to call more than once). fn runs on the clock's
// goroutine and must not block.
func (c *Clock) Subscribe(fn func(now time.Time)) (cancel func()) {
	s := &subscriber{fn: fn}
	c.subMu.Lock()
	old := *c.subs.Load()
	next := make([]*subscriber, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	c.subs.Store(&next)
	c.subMu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			c.subMu.Lock()
			defer c.subMu.Unlock()
			old := *c.subs.Load()
			next := make([]*subscriber, 0, len(old))
			for _, o := range old {
				if o != s {
					next = append(next, o)
				}
			}
			c.subs.Store(&next)
		})
	}
}

// Running reports whether the ticking goroutine runs.
func (c *Clock) Running() bool { return c.running.Load() }

// Subscribers returns the number of registered subscribers.
func (c *Clock) Subscribers() int { return len(*c.subs.Load()) }

// Now returns the time of the last tick (the creation time before the
// first). It is a single atomic load, cheap enough for the hot path, and
// as coarse as the interval.
func (c *Clock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// nanotime is a monotonic clock reading in nanoseconds since the package
// was initialised: time.Since reads only the monotonic clock, half the
// cost of time.Now.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()
