package authlimit

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)} }
func mustNew(t *testing.T, c Config) *Limiter {
	t.Helper()
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBackoffDoubles: each failure opens a window twice the last; an
// attempt inside it is refused, one after it allowed.
func TestBackoffDoubles(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 10, LockFor: time.Hour, Backoff: time.Second, Now: c.now})
	if d := l.Check("ip:a"); d.Verdict != Allow {
		t.Fatalf("fresh key: %v", d.Verdict)
	}
	for i, want := range []time.Duration{1, 2, 4, 8} {
		l.Fail("ip:a")
		want *= time.Second
		if d := l.Check("ip:a"); d.Verdict != Backoff || d.Key != "ip:a" || !d.Until.Equal(c.t.Add(want)) {
			t.Fatalf("failure %d: %+v, want backoff until +%v", i+1, d, want)
		}
		c.add(want - time.Millisecond)
		if d := l.Check("ip:a"); d.Verdict != Backoff {
			t.Fatalf("failure %d: %v just before the window ends", i+1, d.Verdict)
		}
		c.add(time.Millisecond)
		if d := l.Check("ip:a"); d.Verdict != Allow {
			t.Fatalf("failure %d: %v once the window ended", i+1, d.Verdict)
		}
	}
}

// TestFloodLocksOnceAndExpires: a burst of failures (attempts refused in
// back-off count too) locks the key after MaxFailures, reports the lock
// once, refuses while locked without counting, and lets go after LockFor
// with the count reset.
func TestFloodLocksOnceAndExpires(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 5, LockFor: time.Minute, Backoff: time.Second, Now: c.now})
	var locks []Lock
	for range 300 {
		if l.Check("ip:a").Verdict == Locked {
			continue
		}
		locks = append(locks, l.Fail("ip:a")...)
		c.add(time.Millisecond)
	}
	if len(locks) != 1 || locks[0].Key != "ip:a" || locks[0].Failures != 5 {
		t.Fatalf("locks %+v, want one lock of ip:a after 5 failures", locks)
	}
	until := locks[0].Until
	if d := l.Check("ip:a"); d.Verdict != Locked || !d.Until.Equal(until) {
		t.Fatalf("during lock: %+v", d)
	}
	// Failures reported during the lock neither count nor extend it.
	if got := l.Fail("ip:a"); got != nil {
		t.Fatalf("fail during lock reported %+v", got)
	}
	l.Succeed("ip:a") // a success cannot lift a lock
	c.t = until.Add(-time.Nanosecond)
	if d := l.Check("ip:a"); d.Verdict != Locked {
		t.Fatalf("just before the lock ends: %v", d.Verdict)
	}
	c.t = until
	if d := l.Check("ip:a"); d.Verdict != Allow {
		t.Fatalf("lock did not expire: %+v", d)
	}
	// Fresh start: one failure is a 1 s back-off, not a new lock.
	if got := l.Fail("ip:a"); got != nil {
		t.Fatalf("first failure after the lock locked again: %+v", got)
	}
	if s := l.Stats(); s.Locks != 1 || s.Keys != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSuccessResets: a success forgets the failures of its keys only.
func TestSuccessResets(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 3, LockFor: time.Minute, Backoff: time.Second, Now: c.now})
	l.Fail("ip:a", "user:u")
	l.Fail("ip:a", "user:u")
	c.add(time.Minute / 2)
	l.Succeed("ip:a", "user:u")
	if d := l.Check("ip:a", "user:u"); d.Verdict != Allow {
		t.Fatalf("after success: %+v", d)
	}
	// Two more failures do not lock (the count restarted at 0).
	if got := append(l.Fail("ip:a", "user:u"), l.Fail("ip:a", "user:u")...); got != nil {
		t.Fatalf("locked after reset: %+v", got)
	}
	if got := l.Fail("ip:a", "user:v"); len(got) != 1 || got[0].Key != "ip:a" {
		t.Fatalf("third failure from ip:a: %+v, want ip:a locked", got)
	}
	if d := l.Check("ip:b", "user:v"); d.Verdict != Backoff || d.Key != "user:v" {
		t.Fatalf("other source, user with one failure: %+v", d)
	}
}

// TestIdleForgotten: failures older than LockFor are forgotten.
func TestIdleForgotten(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 3, LockFor: time.Minute, Backoff: time.Second, Now: c.now})
	l.Fail("k")
	l.Fail("k")
	c.add(time.Minute)
	if got := l.Fail("k"); got != nil {
		t.Fatalf("locked by failures a minute apart: %+v", got)
	}
}

// TestBounded: a flood of distinct keys keeps the table at MaxKeys, and a
// running lock survives the flood.
func TestBounded(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 2, LockFor: time.Minute, Backoff: time.Second, MaxKeys: 100, Now: c.now})
	l.Fail("ip:attacker")
	if got := l.Fail("ip:attacker"); len(got) != 1 {
		t.Fatalf("no lock: %+v", got)
	}
	for i := range 10000 {
		l.Fail(fmt.Sprintf("user:%d", i))
		if n := l.Stats().Keys; n > 100 {
			t.Fatalf("%d keys after %d inserts, cap 100", n, i+1)
		}
	}
	if d := l.Check("ip:attacker"); d.Verdict != Locked {
		t.Fatalf("lock evicted by a flood of usernames: %+v", d)
	}
	if s := l.Stats(); s.Evicted == 0 {
		t.Fatalf("stats %+v: nothing evicted", s)
	}
}

func TestNoBackoff(t *testing.T) {
	c := newClock()
	l := mustNew(t, Config{MaxFailures: 3, Backoff: -1, Now: c.now})
	l.Fail("k")
	if d := l.Check("k"); d.Verdict != Allow {
		t.Fatalf("backoff disabled but got %+v", d)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{MaxFailures: -1}, {LockFor: -time.Second}, {MaxKeys: -5}} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}
