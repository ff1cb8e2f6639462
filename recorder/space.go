package recorder

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNoSpace reports that a recordings directory's filesystem has less
// free space than the minimum set for new recordings.
var ErrNoSpace = errors.New("recorder: not enough free space for new recordings")

// Default minimum free space (MinFree zero): the smaller of these, so a
// small disk is not refused outright and a large one keeps a gigabyte.
const (
	DefaultMinFreeBytes   = 1 << 30 // 1 GiB
	DefaultMinFreePercent = 5.0     // of the filesystem
)

// MinFree is the free space a new recording needs on the filesystem of
// the recordings directory: Bytes, or Percent of the filesystem's size.
// Both zero means the smaller of DefaultMinFreeBytes and
// DefaultMinFreePercent; both set means the larger of the two.
type MinFree struct {
	Bytes   uint64
	Percent float64
}

// spaceTTL is how long a Space reuses its last statfs.
const spaceTTL = time.Second

// Space tells whether there is room for a new recording in a directory.
// Check calls statfs at most once a second (spaceTTL) and is safe for
// concurrent use; it is meant for call set-up, never per packet.
type Space struct {
	dir    string
	min    MinFree
	now    func() time.Time
	statfs func(dir string) (free, total uint64, err error)

	mu  sync.Mutex
	at  time.Time
	err error
}

// NewSpace returns a Space for dir with minimum min.
func NewSpace(dir string, min MinFree) *Space {
	return &Space{dir: dir, min: min, now: time.Now, statfs: statfs}
}

// Need returns the free bytes needed on a filesystem of total bytes.
func (m MinFree) Need(total uint64) uint64 {
	pct := func(p float64) uint64 { return uint64(float64(total) * p / 100) }
	if m.Bytes == 0 && m.Percent == 0 {
		return min(DefaultMinFreeBytes, pct(DefaultMinFreePercent))
	}
	return max(m.Bytes, pct(m.Percent))
}

// Check returns nil when the directory's filesystem has at least the
// minimum free, or an error wrapping ErrNoSpace that says how much is
// free and how much is wanted (or the statfs error).
func (s *Space) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.at.IsZero() && now.Sub(s.at) < spaceTTL && now.Sub(s.at) >= 0 {
		return s.err
	}
	s.at = now
	free, total, err := s.statfs(s.dir)
	switch need := s.min.Need(total); {
	case err != nil:
		s.err = fmt.Errorf("%w: statfs %s: %w", ErrNoSpace, s.dir, err)
	case free < need:
		s.err = fmt.Errorf("%w: %s has %d bytes free of %d, want at least %d", ErrNoSpace, s.dir, free, total, need)
	default:
		s.err = nil
	}
	return s.err
}

// Free returns the bytes free and in total on the directory's filesystem,
// and the free bytes a new recording needs (MinFree), for metrics. It
// calls statfs each time: a scrape, not call set-up.
func (s *Space) Free() (free, total, need uint64, err error) {
	free, total, err = s.statfs(s.dir)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return free, total, s.min.Need(total), nil
}
