package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errPolled is what ReadFrom returns on a polled socket: its datagrams
// are read by the Poller's worker, not by callers.
var errPolled = errors.New("media: socket is read by its poller")

// polledConn is a non-blocking UDP socket kept outside Go's netpoller: a
// Poller worker waits for it with epoll and reads it, and the Endpoint
// sends on it with sendto(2). PortPool.Open returns one when the pool has
// a Poller.
//
// It implements net.PacketConn so it travels through EndpointConfig like
// any socket, but ReadFrom is refused (the poller reads) and deadlines are
// not supported. WriteTo and Close are safe for concurrent use; the
// Endpoint's own send path (sendto) runs under the Endpoint's transmit
// mutex, which Close also takes, so the descriptor is never closed (and
// reused) under a send.
type polledConn struct {
	// fd, closed and peer, which every send reads, come first, in the
	// first 24 bytes (at most two cache lines, mostly one).
	fd     int
	closed bool

	// peer is the address the socket is connected to (connect(2)), nil
	// while it is not. A leg's socket talks to one peer once it has
	// latched, and a connected UDP socket is cheaper both ways: the send
	// uses the socket's cached route instead of a route lookup per
	// datagram, and an arriving datagram is matched to its socket by
	// early demux, which skips the input route lookup too (about 15 % of
	// the kernel's cost per forwarded packet on loopback; see
	// docs/PERFORMANCE.md). The kernel then drops datagrams from any
	// other source itself, as handleDatagram would after latching.
	peer atomic.Pointer[netip.AddrPort]

	v6     bool // AF_INET6 socket: IPv4 peers are addressed as v4-mapped
	local  netip.AddrPort
	poller *Poller
	mu     sync.RWMutex // write-locked by close; read-locked by WriteTo and disconnect; guards closed
	connMu sync.Mutex   // orders connect against disconnect (see connectLatched)
}

// openPolled binds a non-blocking UDP socket to ap.
func openPolled(ap netip.AddrPort, p *Poller) (*polledConn, error) {
	family, v6 := unix.AF_INET, false
	if ap.Addr().Is6() {
		family, v6 = unix.AF_INET6, true
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if v6 {
		if ap.Addr().IsUnspecified() {
			// Dual stack, as net.ListenUDP("udp", "[::]:port") does.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: err}
	}
	if ap.Port() == 0 { // the kernel chose: ask which
		if got, err := unix.Getsockname(fd); err == nil {
			switch sa := got.(type) {
			case *unix.SockaddrInet4:
				ap = netip.AddrPortFrom(ap.Addr(), uint16(sa.Port))
			case *unix.SockaddrInet6:
				ap = netip.AddrPortFrom(ap.Addr(), uint16(sa.Port))
			}
		}
	}
	return &polledConn{fd: fd, v6: v6, local: ap, poller: p}, nil
}

// recvFrom reads one datagram from polled socket fd without blocking:
// unix.EAGAIN when none is queued. Only the worker that owns the socket
// calls it, with the descriptor from its epoll event (reading it from the
// polledConn would cost a cache miss per packet), and only while the
// socket is registered (so never after close). It does not allocate.
func recvFrom(fd int, buf []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrInet6 // large enough for either family
	rsaLen := uint32(unsafe.Sizeof(rsa))
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd),
		uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rsaLen)))
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	return int(n), rawToAddrPort(&rsa), nil
}

// rawToAddrPort decodes a sockaddr_in or sockaddr_in6 (port in network
// byte order) without allocating; v4-mapped addresses are unmapped.
func rawToAddrPort(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:])
	switch rsa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// sendto writes b to dst without blocking or allocating. The caller holds
// the owning Endpoint's transmit mutex (or c.mu for reading), which is
// what keeps the descriptor open. When the socket is connected to dst the
// datagram goes out without an address (the cached route).
func (c *polledConn) sendto(b []byte, dst netip.AddrPort) error {
	if c.closed {
		return net.ErrClosed
	}
	if p := c.peer.Load(); p != nil && *p == dst {
		errno := c.send(b, nil, 0)
		switch errno {
		case 0:
			return nil
		case unix.EDESTADDRREQ:
			// Disconnected since peer was read: send with the address.
		default:
			return errno
		}
	}
	var (
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
	)
	ptr, size, err := c.sockaddr(dst, &sa4, &sa6)
	if err != nil {
		return err
	}
	if errno := c.send(b, ptr, size); errno != 0 {
		return errno
	}
	return nil
}

// sendConnected writes b on the connection of polled socket fd, which the
// caller keeps open (the Endpoint: its transmit mutex); errNotConnected
// if the socket has been disconnected.
func sendConnected(fd int, b []byte) error {
	switch errno := sendFD(fd, b, nil, 0); errno {
	case 0:
		return nil
	case unix.EDESTADDRREQ:
		return errNotConnected
	default:
		return errno
	}
}

// send is one sendto(2). A connected socket keeps an ICMP "port
// unreachable" from its peer as a pending error, which fails the next
// send once (ECONNREFUSED) without sending: the datagram is sent again,
// as an unconnected socket would have sent it.
func (c *polledConn) send(b []byte, sa unsafe.Pointer, size uintptr) unix.Errno {
	return sendFD(c.fd, b, sa, size)
}

// sendFD is send on descriptor fd.
func sendFD(fd int, b []byte, sa unsafe.Pointer, size uintptr) unix.Errno {
	for try := 0; ; try++ {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), unix.MSG_DONTWAIT,
			uintptr(sa), size)
		if errno != unix.ECONNREFUSED || try > 0 {
			return errno
		}
	}
}

// sockaddr fills sa4 or sa6 (the socket's family) with dst and returns
// which, for a raw syscall.
func (c *polledConn) sockaddr(dst netip.AddrPort, sa4 *unix.RawSockaddrInet4, sa6 *unix.RawSockaddrInet6) (unsafe.Pointer, uintptr, error) {
	a := dst.Addr()
	if !c.v6 {
		if !a.Is4() && !a.Is4In6() {
			return nil, 0, fmt.Errorf("send to %s from an IPv4 socket: %w", dst, unix.EAFNOSUPPORT)
		}
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		sa4.Addr = a.Unmap().As4()
		return unsafe.Pointer(sa4), unsafe.Sizeof(*sa4), nil
	}
	sa6.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], dst.Port())
	sa6.Addr = a.As16() // an IPv4 address comes out v4-mapped
	return unsafe.Pointer(sa6), unsafe.Sizeof(*sa6), nil
}

// connectLatched connects the socket to peer, the source the endpoint
// just latched under latch generation gen, unless SetRemote has moved the
// generation on meanwhile. Only the socket's poll worker calls it (the
// socket is registered, so open). It runs once per latch, not per packet.
//
// The generation is compared under connMu, which disconnect also takes
// after SetRemote bumped it: whichever order the two run in, a socket is
// never left connected to a source of an earlier generation, which would
// keep the new peer's packets out. Connected, it sets *conn to gen+1 (see
// Endpoint.connGen); disconnect clears it.
func (c *polledConn) connectLatched(peer netip.AddrPort, gen uint64, cur, conn *atomic.Uint64) {
	if c.local.Addr().IsUnspecified() {
		// Connecting would also pin the local address to the one routed
		// towards peer, and a multi-homed host could then miss the
		// peer's packets sent to another of its addresses.
		return
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if cur.Load() != gen {
		return
	}
	if p := c.peer.Load(); p != nil && *p == peer {
		conn.Store(gen + 1)
		return
	}
	var (
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
	)
	ptr, size, err := c.sockaddr(peer, &sa4, &sa6)
	if err != nil {
		return
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(c.fd), uintptr(ptr), size); errno != 0 {
		return // stay unconnected: sends carry the address, as before
	}
	c.peer.Store(&peer)
	conn.Store(gen + 1)
}

// disconnect dissolves the association (connect(2) with AF_UNSPEC), so
// datagrams from any source reach the socket again: SetRemote calls it
// when a re-INVITE resets the latch.
func (c *polledConn) disconnect(conn *atomic.Uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	conn.Store(0) // sends take the address from here on
	if c.peer.Load() == nil {
		return
	}
	sa := unix.RawSockaddrInet6{Family: unix.AF_UNSPEC}
	_, _, _ = unix.RawSyscall(unix.SYS_CONNECT, uintptr(c.fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	c.peer.Store(nil)
}

// ReadFrom is refused: a Poller worker reads this socket.
func (c *polledConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errPolled }

// WriteTo sends b to addr (a *net.UDPAddr).
func (c *polledConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("write to %v: not a UDP address", addr)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.sendto(b, ua.AddrPort()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// close closes the descriptor once. The Endpoint calls it holding its
// transmit mutex.
func (c *polledConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return unix.Close(c.fd)
}

// Close closes the socket. An Endpoint built on it closes it itself.
func (c *polledConn) Close() error { return c.close() }

// LocalAddr returns the bound address.
func (c *polledConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// SetDeadline is not supported on a polled socket.
func (c *polledConn) SetDeadline(time.Time) error { return errPolled }

// SetReadDeadline is not supported on a polled socket.
func (c *polledConn) SetReadDeadline(time.Time) error { return errPolled }

// SetWriteDeadline is not supported on a polled socket.
func (c *polledConn) SetWriteDeadline(time.Time) error { return errPolled }
