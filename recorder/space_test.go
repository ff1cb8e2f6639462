package recorder

import (
	"errors"
	"testing"
	"time"
)

func TestMinFreeNeed(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		m     MinFree
		total uint64
		want  uint64
	}{
		{MinFree{}, 100 * gib, gib},    // 5 % is 5 GiB: 1 GiB is smaller
		{MinFree{}, 10 * gib, gib / 2}, // 5 % of 10 GiB
		{MinFree{Bytes: 512 << 20}, 100 * gib, 512 << 20},
		{MinFree{Percent: 10}, 10 * gib, gib},
	} {
		if got := tc.m.Need(tc.total); got != tc.want {
			t.Errorf("%+v of %d: %d, want %d", tc.m, tc.total, got, tc.want)
		}
	}
}

// Check asks statfs at most once a second and refuses below the minimum.
func TestSpaceCheckCached(t *testing.T) {
	c := newFakeClock()
	calls := 0
	free := uint64(2 << 20)
	s := NewSpace("/rec", MinFree{Bytes: 1 << 20})
	s.now = c.Now
	s.statfs = func(string) (uint64, uint64, error) { calls++; return free, 100 << 20, nil }
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	free = 1000
	for range 100 {
		if err := s.Check(); err != nil {
			t.Fatalf("within the second: %v (statfs asked again)", err)
		}
	}
	c.Advance(time.Second)
	if err := s.Check(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("after a second with 1000 bytes free: %v, want ErrNoSpace", err)
	}
	if calls != 2 {
		t.Errorf("statfs called %d times, want 2", calls)
	}
	c.Advance(time.Second)
	s.statfs = func(string) (uint64, uint64, error) { return 0, 0, errors.New("EIO") }
	if err := s.Check(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("statfs failing: %v, want ErrNoSpace", err)
	}
}

// The real statfs on the test's directory.
func TestSpaceStatfs(t *testing.T) {
	if err := NewSpace(t.TempDir(), MinFree{Bytes: 1}).Check(); err != nil {
		t.Errorf("1 byte free wanted: %v", err)
	}
	if err := NewSpace(t.TempDir(), MinFree{Percent: 100}).Check(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("100%% free wanted: %v", err)
	}
}
