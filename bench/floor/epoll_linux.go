package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollFloor is the floor with cloak's I/O model (media.Poller): sockets
// outside Go's netpoller, a few workers each waiting in epoll_wait on its
// own share of them, non-blocking recvfrom/sendto. Same per-packet work
// as the goroutine floor: latch, rewrite SSRC and sequence, send.
type epollFloor struct {
	sides []*rawSide // by descriptor
}

type rawSide struct {
	fd    int
	peer  atomic.Pointer[unix.RawSockaddrInet4]
	other *rawSide
	ssrc  uint32
	seqOf uint16
}

func runEpoll(ip netip.Addr, base, pairs, workers int) (func(), error) {
	f := &epollFloor{}
	var fds []int
	open := func(port int) (*rawSide, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: ip.As4()}); err != nil {
			return nil, fmt.Errorf("bind %d: %w", port, err)
		}
		s := &rawSide{fd: fd}
		for len(f.sides) <= fd {
			f.sides = append(f.sides, nil)
		}
		f.sides[fd] = s
		return s, nil
	}
	closeAll := func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	for i := 0; i < pairs; i++ {
		a, err := open(base + 4*i)
		if err != nil {
			closeAll()
			return nil, err
		}
		b, err := open(base + 4*i + 2)
		if err != nil {
			closeAll()
			return nil, err
		}
		a.ssrc, a.seqOf = 0xF100_0000+uint32(i), 1000
		b.ssrc, b.seqOf = 0xF200_0000+uint32(i), 2000
		a.other, b.other = b, a
	}
	for w := 0; w < workers; w++ {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			closeAll()
			return nil, err
		}
		for i, fd := range fds {
			if i%workers == w {
				ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
				if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
					closeAll()
					return nil, err
				}
			}
		}
		go f.worker(ep)
	}
	return closeAll, nil
}

func (f *epollFloor) worker(ep int) {
	evs := make([]unix.EpollEvent, 256)
	buf := make([]byte, 1500)
	var rsa unix.RawSockaddrInet4
	for {
		n, err := unix.EpollWait(ep, evs, -1)
		if err != nil {
			continue
		}
		for i := 0; i < n; i++ {
			s := f.sides[evs[i].Fd]
			l := uint32(unsafe.Sizeof(rsa))
			r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
				unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
			if e != 0 {
				continue
			}
			if s.peer.Load() == nil {
				p := rsa
				s.peer.Store(&p)
			}
			dst := s.other.peer.Load()
			if dst == nil || r < 12 || buf[0]>>6 != 2 {
				continue
			}
			seq := binary.BigEndian.Uint16(buf[2:])
			binary.BigEndian.PutUint16(buf[2:], seq+s.seqOf)
			binary.BigEndian.PutUint32(buf[8:], s.ssrc)
			_, _, _ = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.other.fd), uintptr(unsafe.Pointer(&buf[0])), r,
				unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(dst)), unsafe.Sizeof(*dst))
		}
	}
}
