package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
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
	fd     int
	v6     bool // AF_INET6 socket: IPv4 peers are addressed as v4-mapped
	local  netip.AddrPort
	poller *Poller

	mu     sync.RWMutex // write-locked by close; read-locked by WriteTo
	closed bool
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

// recv reads one datagram without blocking: unix.EAGAIN when none is
// queued. Only the worker that owns the socket calls it, and only while
// the socket is registered (so never after close). It does not allocate.
func (c *polledConn) recv(buf []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrInet6 // large enough for either family
	rsaLen := uint32(unsafe.Sizeof(rsa))
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.fd),
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
// what keeps the descriptor open.
func (c *polledConn) sendto(b []byte, dst netip.AddrPort) error {
	if c.closed {
		return net.ErrClosed
	}
	var (
		ptr  unsafe.Pointer
		size uintptr
		sa4  unix.RawSockaddrInet4
		sa6  unix.RawSockaddrInet6
	)
	a := dst.Addr()
	if !c.v6 {
		if !a.Is4() && !a.Is4In6() {
			return fmt.Errorf("send to %s from an IPv4 socket: %w", dst, unix.EAFNOSUPPORT)
		}
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		sa4.Addr = a.Unmap().As4()
		ptr, size = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4)
	} else {
		sa6.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], dst.Port())
		sa6.Addr = a.As16() // an IPv4 address comes out v4-mapped
		ptr, size = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6)
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd),
		uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), unix.MSG_DONTWAIT,
		uintptr(ptr), size)
	if errno != 0 {
		return errno
	}
	return nil
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
