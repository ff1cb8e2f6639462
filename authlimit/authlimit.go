package authlimit

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults for a contact centre: a phone with a wrong password waits
// seconds, then minutes, never forever; a guesser is slowed from its
// second try and locked after ten.
const (
	DefaultMaxFailures = 10
	DefaultLockFor     = 5 * time.Minute
	DefaultBackoff     = time.Second
	DefaultMaxKeys     = 65536
)

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("authlimit: bad config")

// Config configures a Limiter. Zero fields take the defaults above.
type Config struct {
	// MaxFailures is the number of failures in a row that locks a key.
	MaxFailures int
	// LockFor is how long a lock lasts, and how long an idle key's
	// failures are remembered.
	LockFor time.Duration
	// Backoff is the first back-off window; it doubles with each further
	// failure, capped at LockFor. Negative disables back-off (lock only).
	Backoff time.Duration
	// MaxKeys bounds the number of keys remembered.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verdict says what to do with an attempt.
type Verdict int

const (
	// Allow: check the credentials.
	Allow Verdict = iota
	// Backoff: refuse without checking; the key failed too recently.
	Backoff
	// Locked: refuse without checking; the key is locked.
	Locked
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Backoff:
		return "backoff"
	case Locked:
		return "locked"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Decision is the answer of Check.
type Decision struct {
	Verdict Verdict
	// Key is the key that refused the attempt (empty when allowed).
	Key string
	// Until is when that key accepts attempts again.
	Until time.Time
}

// Lock reports a key that a failure has just locked.
type Lock struct {
	Key      string
	Failures int
	Until    time.Time
}

// Stats are a Limiter's counters.
type Stats struct {
	Keys    int    // keys remembered now
	Locks   uint64 // locks ever started
	Evicted uint64 // keys dropped because the table was full
	// Failures counts calls of Fail (failed attempts, each counted once
	// whatever the number of keys it names).
	Failures uint64
}

type entry struct {
	failures    int
	lastFail    time.Time
	notBefore   time.Time // end of the back-off window
	lockedUntil time.Time // zero unless locked
}

// Limiter counts failed attempts per key. It is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu        sync.Mutex
	keys      map[string]*entry
	lastSweep time.Time
	locks     uint64
	evicted   uint64
	failures  uint64
}

// New returns a Limiter, or an error wrapping ErrConfig.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.LockFor == 0 {
		cfg.LockFor = DefaultLockFor
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.MaxFailures < 1:
		return nil, fmt.Errorf("%w: max failures %d < 1", ErrConfig, cfg.MaxFailures)
	case cfg.LockFor < 0:
		return nil, fmt.Errorf("%w: negative lock duration %v", ErrConfig, cfg.LockFor)
	case cfg.MaxKeys < 1:
		return nil, fmt.Errorf("%w: max keys %d < 1", ErrConfig, cfg.MaxKeys)
	}
	return &Limiter{cfg: cfg, keys: map[string]*entry{}}, nil
}

// live returns the key's entry, dropping it first if it has expired.
// l.mu is held.
func (l *Limiter) live(key string, now time.Time) *entry {
	e := l.keys[key]
	if e != nil && l.expired(e, now) {
		delete(l.keys, key)
		return nil
	}
	return e
}

func (l *Limiter) expired(e *entry, now time.Time) bool {
	if !e.lockedUntil.IsZero() {
		return !now.Before(e.lockedUntil)
	}
	return now.Sub(e.lastFail) >= l.cfg.LockFor && !now.Before(e.notBefore)
}

// Check says whether an attempt under all of keys may be verified now. It
// records nothing: follow it with Fail or Succeed once the credentials have
// been checked, or with Fail when it answered Backoff.
func (l *Limiter) Check(keys ...string) Decision {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := Decision{Verdict: Allow}
	for _, k := range keys {
		e := l.live(k, now)
		switch {
		case e == nil:
		case !e.lockedUntil.IsZero():
			return Decision{Verdict: Locked, Key: k, Until: e.lockedUntil}
		case now.Before(e.notBefore) && d.Verdict == Allow:
			d = Decision{Verdict: Backoff, Key: k, Until: e.notBefore}
		}
	}
	return d
}

// Fail records one failed attempt under each of keys and returns the keys
// this failure locked (each lock is reported once, by the failure that
// starts it). Failures under a locked key are not counted.
func (l *Limiter) Fail(keys ...string) []Lock {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures++
	var locked []Lock
	for _, k := range keys {
		e := l.live(k, now)
		if e == nil {
			e = &entry{}
			l.insert(k, e, now)
		}
		if !e.lockedUntil.IsZero() {
			continue
		}
		e.failures++
		e.lastFail = now
		if e.failures >= l.cfg.MaxFailures {
			e.lockedUntil = now.Add(l.cfg.LockFor)
			l.locks++
			locked = append(locked, Lock{Key: k, Failures: e.failures, Until: e.lockedUntil})
			continue
		}
		e.notBefore = now.Add(l.backoff(e.failures))
	}
	return locked
}

// backoff is the window after the n-th failure: Backoff << (n-1), capped
// at LockFor.
func (l *Limiter) backoff(n int) time.Duration {
	if l.cfg.Backoff < 0 {
		return 0
	}
	d := l.cfg.Backoff
	for i := 1; i < n && d < l.cfg.LockFor; i++ {
		d *= 2
	}
	return min(d, l.cfg.LockFor)
}

// Succeed forgets keys: a successful login resets their failures. It does
// not lift a lock (Check refuses a locked key before a success can happen).
func (l *Limiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e := l.keys[k]; e != nil && e.lockedUntil.IsZero() {
			delete(l.keys, k)
		}
	}
}

// sweepEvery bounds how often a full table is scanned for expired keys, so
// a flood of new keys costs a scan a second, not one per attempt.
const sweepEvery = time.Second

// evictSample is how many keys are looked at to choose one to drop.
const evictSample = 16

// insert adds e under k, making room first when the table is full: expired
// keys go, then the least worth keeping of a few sampled (an unlocked key
// with the fewest failures; else the lock that ends first). l.mu is held.
func (l *Limiter) insert(k string, e *entry, now time.Time) {
	if len(l.keys) >= l.cfg.MaxKeys && now.Sub(l.lastSweep) >= sweepEvery {
		l.lastSweep = now
		for key, old := range l.keys {
			if l.expired(old, now) {
				delete(l.keys, key)
			}
		}
	}
	for len(l.keys) >= l.cfg.MaxKeys {
		var victim string
		var best *entry
		n := 0
		for key, old := range l.keys {
			if best == nil || worse(old, best) {
				victim, best = key, old
			}
			if n++; n == evictSample {
				break
			}
		}
		delete(l.keys, victim)
		l.evicted++
	}
	l.keys[k] = e
}

// worse reports whether a is less worth keeping than b.
func worse(a, b *entry) bool {
	al, bl := !a.lockedUntil.IsZero(), !b.lockedUntil.IsZero()
	switch {
	case al != bl:
		return !al
	case al:
		return a.lockedUntil.Before(b.lockedUntil)
	}
	return a.failures < b.failures
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Keys: len(l.keys), Locks: l.locks, Evicted: l.evicted, Failures: l.failures}
}
