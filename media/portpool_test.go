package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// freeRange finds n consecutive even ports on loopback that can be bound
// now, so parallel test runs don't collide on a fixed range.
func freeRange(t *testing.T, n int) (lo, hi int) {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		lo = 20000 + 2*rand.IntN(15000)
		hi = lo + 2*(n-1)
		ok := true
		for p := lo; p <= hi; p += 2 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(p))))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return lo, hi
		}
	}
	t.Fatal("no free port range on loopback")
	return 0, 0
}

func TestPortPoolBadRange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ip     netip.Addr
		lo, hi int
	}{
		{"invalid ip", netip.Addr{}, 10000, 10010},
		{"low above high", loopback, 10010, 10000},
		{"zero", loopback, 0, 10},
		{"above 65535", loopback, 65530, 65540},
		{"single odd port", loopback, 10001, 10001},
	} {
		if _, err := NewPortPool(tc.ip, tc.lo, tc.hi); !errors.Is(err, ErrBadPortRange) {
			t.Errorf("%s: err = %v, want ErrBadPortRange", tc.name, err)
		}
	}
	p, err := NewPortPool(loopback, 10001, 10010)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 5 { // 10002, 10004, 10006, 10008, 10010
		t.Errorf("Size() = %d, want 5 even ports in 10001-10010", p.Size())
	}
}

func TestPortPoolExhaustionReleaseReuse(t *testing.T) {
	lo, hi := freeRange(t, 3)
	pool, err := NewPortPool(loopback, lo, hi+1) // odd top is ignored
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]net.PacketConn{}
	for i := 0; i < 3; i++ {
		c, port, err := pool.Open()
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if port%2 != 0 || port < lo || port > hi {
			t.Errorf("port %d is not an even port in %d-%d", port, lo, hi)
		}
		if got := c.LocalAddr().(*net.UDPAddr).Port; got != port {
			t.Errorf("socket bound to %d, pool says %d", got, port)
		}
		if seen[port] != nil {
			t.Errorf("port %d handed out twice", port)
		}
		seen[port] = c
	}
	if pool.InUse() != 3 {
		t.Errorf("InUse() = %d, want 3", pool.InUse())
	}
	if _, _, err := pool.Open(); !errors.Is(err, ErrPortsExhausted) {
		t.Fatalf("fourth Open: err = %v, want ErrPortsExhausted", err)
	}
	// Release one: it is the only one free, so it comes back.
	seen[lo+2].Close()
	pool.Release(lo + 2)
	pool.Release(lo + 2) // double release is harmless
	pool.Release(lo + 1) // odd port: ignored
	if pool.InUse() != 2 {
		t.Errorf("InUse() after release = %d, want 2", pool.InUse())
	}
	c, port, err := pool.Open()
	if err != nil {
		t.Fatalf("open after release: %v", err)
	}
	if port != lo+2 {
		t.Errorf("reopened port %d, want released %d", port, lo+2)
	}
	c.Close()
	for p, c := range seen {
		if p != lo+2 {
			c.Close()
		}
	}
}

func TestPortPoolSkipsBusyPort(t *testing.T) {
	lo, hi := freeRange(t, 2)
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(lo))))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	pool, err := NewPortPool(loopback, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	c, port, err := pool.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	if port != hi {
		t.Errorf("got port %d, want %d (port %d is busy elsewhere)", port, hi, lo)
	}
	if pool.InUse() != 1 {
		t.Errorf("InUse() = %d, want 1: the busy port must not stay reserved", pool.InUse())
	}
	if _, _, err := pool.Open(); !errors.Is(err, ErrPortsExhausted) {
		t.Errorf("second Open: err = %v, want ErrPortsExhausted", err)
	}
}
