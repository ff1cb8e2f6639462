package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// PortPool hands out even-numbered UDP ports from [lo, hi] on one IP
// address. RTP uses the even port and leaves the odd one above it to RTCP
// (RFC 3550 §11), so only even ports are ever bound.
//
// Ports are handed out round-robin from the last one given, so a port just
// released is not reused at once and stale packets of the previous call do
// not reach the next one. A port that another process holds is skipped.
// PortPool is safe for concurrent use.
type PortPool struct {
	ip     netip.Addr
	lo, hi int // both even, lo <= hi

	mu     sync.Mutex
	used   []bool // index (port-lo)/2
	next   int    // index to try first
	inUse  int
	listen func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
	poller *Poller // when set, Open makes sockets its workers read
}

// SetPoller makes Open return sockets read by p's workers (epoll) rather
// than by a goroutine per leg. Call it before the first Open.
func (p *PortPool) SetPoller(pl *Poller) {
	p.mu.Lock()
	p.poller = pl
	p.mu.Unlock()
}

// NewPortPool returns a pool of the even ports in [lo, hi] on ip. The range
// must lie within 1..65535 and hold at least one even port.
func NewPortPool(ip netip.Addr, lo, hi int) (*PortPool, error) {
	if !ip.IsValid() {
		return nil, fmt.Errorf("rtp port pool: invalid ip address: %w", ErrBadPortRange)
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("rtp port pool %d-%d: range must be within 1-65535 and low <= high: %w", lo, hi, ErrBadPortRange)
	}
	if lo%2 == 1 {
		lo++
	}
	if hi%2 == 1 {
		hi--
	}
	if lo > hi {
		return nil, fmt.Errorf("rtp port pool %d-%d: no even port in range: %w", lo, hi, ErrBadPortRange)
	}
	return &PortPool{
		ip:     ip.Unmap(),
		lo:     lo,
		hi:     hi,
		used:   make([]bool, (hi-lo)/2+1),
		listen: net.ListenUDP,
	}, nil
}

// IP returns the address the pool binds to.
func (p *PortPool) IP() netip.Addr { return p.ip }

// Size returns the number of ports the pool manages.
func (p *PortPool) Size() int { return len(p.used) }

// Open reserves the next free even port and binds a UDP socket to it. Ports
// held by other processes are skipped. When every port is reserved or busy
// it returns an error wrapping ErrPortsExhausted. The port goes back to the
// pool with Release (an Endpoint created with this pool does that on Close).
//
// Without a Poller the socket is a *net.UDPConn; with one (SetPoller) it
// is a socket outside Go's netpoller that only an Endpoint can read.
func (p *PortPool) Open() (net.PacketConn, int, error) {
	p.mu.Lock()
	pl := p.poller
	p.mu.Unlock()
	tried := 0
	for tried < len(p.used) {
		idx, ok := p.reserve()
		if !ok {
			break
		}
		tried++
		port := p.lo + 2*idx
		conn, err := p.bind(pl, port)
		if err == nil {
			return conn, port, nil
		}
		p.Release(port)
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
			continue // held by someone else; try the next one
		}
		return nil, 0, fmt.Errorf("open rtp port %s:%d: %w", p.ip, port, err)
	}
	return nil, 0, fmt.Errorf("open rtp port in %s:%d-%d (%d in use): %w", p.ip, p.lo, p.hi, p.InUse(), ErrPortsExhausted)
}

// OpenPair is Open with the RTCP port as well: an even RTP port whose
// odd neighbour (port + 1, RFC 3550 §11) is bound too, as a plain UDP
// socket, for RTCP. A port whose neighbour another process holds is
// skipped like a busy port. The RTP port goes back with Release; the
// caller closes rtcp (an Endpoint given it as EndpointConfig.RTCPConn
// does on Close).
//
// The RTCP socket is of the RTP socket's kind: with a Poller both are
// read by the leg's poll worker (no goroutine per leg for RTCP), else a
// *net.UDPConn read by a goroutine of the leg's.
func (p *PortPool) OpenPair() (rtp, rtcp net.PacketConn, port int, err error) {
	for range len(p.used) {
		conn, port, err := p.Open()
		if err != nil {
			return nil, nil, 0, err
		}
		var pl *Poller
		if pc, ok := conn.(*polledConn); ok {
			pl = pc.poller
		}
		c, err := p.bind(pl, port+1)
		if err == nil {
			return conn, c, port, nil
		}
		_ = conn.Close()
		p.Release(port)
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
			continue
		}
		return nil, nil, 0, fmt.Errorf("open rtcp port %s:%d: %w", p.ip, port+1, err)
	}
	return nil, nil, 0, fmt.Errorf("open rtp/rtcp port pair in %s:%d-%d (%d in use): %w", p.ip, p.lo, p.hi, p.InUse(), ErrPortsExhausted)
}

func (p *PortPool) bind(pl *Poller, port int) (net.PacketConn, error) {
	ap := netip.AddrPortFrom(p.ip, uint16(port))
	if pl != nil {
		c, err := openPolled(ap, pl)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return p.listen("udp", net.UDPAddrFromAddrPort(ap))
}

// reserve marks the next free index used, starting after the last one
// handed out.
func (p *PortPool) reserve() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.used)
	for i := 0; i < n; i++ {
		idx := (p.next + i) % n
		if !p.used[idx] {
			p.used[idx] = true
			p.inUse++
			p.next = (idx + 1) % n
			return idx, true
		}
	}
	return 0, false
}

// Release returns port to the pool. Releasing a port the pool does not
// hold (outside the range, odd, or already free) does nothing.
func (p *PortPool) Release(port int) {
	if port < p.lo || port > p.hi || (port-p.lo)%2 != 0 {
		return
	}
	idx := (port - p.lo) / 2
	p.mu.Lock()
	if p.used[idx] {
		p.used[idx] = false
		p.inUse--
	}
	p.mu.Unlock()
}

// InUse returns how many ports are currently reserved.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// LocalAddrToward returns the address of this host's interface on the
// route to dst: the source address the kernel would give a datagram sent
// there. A leg bound to a wildcard (0.0.0.0 or ::) advertises it in SDP,
// so each peer is given an address it can reach. It asks the kernel by
// connecting a UDP socket, which sends nothing; it costs a socket per
// call, not per packet.
func LocalAddrToward(dst netip.Addr) (netip.Addr, error) {
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("route to %v: %w", dst, ErrNoRemote)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %v: %w", dst, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
