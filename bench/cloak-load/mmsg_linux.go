//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched UDP I/O with sendmmsg(2) and recvmmsg(2), through the socket's
// RawConn so the Go poller still parks the goroutine when the socket is
// not ready. One batch moves up to len(msgs) datagrams in one syscall;
// received datagrams carry the kernel's arrival time (SO_TIMESTAMPNS), so
// latency excludes however long the reader took to get to them.

// mmsghdr is struct mmsghdr from <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

const (
	maxBatch = 64
	rxBufLen = 256 // G.711 20 ms packets are 172 bytes; longer ones are truncated, which is fine
	oobLen   = 64
)

// batchConn is one UDP socket with batched send and receive.
type batchConn struct {
	conn *net.UDPConn
	rc   syscall.RawConn

	tx    [maxBatch]mmsghdr
	txIov [maxBatch]unix.Iovec

	rx    [maxBatch]mmsghdr
	rxIov [maxBatch]unix.Iovec
	rxBuf [maxBatch][rxBufLen]byte
	rxOOB [maxBatch][oobLen]byte
	rxSA  [maxBatch]unix.RawSockaddrInet4
}

// received is one datagram out of a receive batch: valid until the next
// call to readBatch.
type received struct {
	data []byte
	from uint16 // source port (all peers are on loopback)
	at   int64  // kernel arrival time, unix ns
}

func newBatchConn(addr string, bufBytes int) (*batchConn, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(bufBytes)
	_ = c.SetWriteBuffer(bufBytes)
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		c.Close()
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %v %v", err, serr)
	}
	b := &batchConn{conn: c, rc: rc}
	for i := range b.rx {
		b.rxIov[i] = unix.Iovec{Base: &b.rxBuf[i][0]}
		b.rxIov[i].SetLen(rxBufLen)
	}
	return b, nil
}

func (b *batchConn) port() int { return b.conn.LocalAddr().(*net.UDPAddr).Port }

func (b *batchConn) close() error { return b.conn.Close() }

// sockaddr4 converts a loopback or IPv4 address for sendmmsg.
func sockaddr4(ap netip.AddrPort) unix.RawSockaddrInet4 {
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().As4()}
	p := ap.Port()
	sa.Port = p<<8 | p>>8 // network byte order
	return sa
}

// writeBatch sends pkts[i] to dst[i] in as few syscalls as it takes. It
// returns how many were handed to the kernel.
func (b *batchConn) writeBatch(pkts [][]byte, dst []*unix.RawSockaddrInet4) (int, error) {
	sent := 0
	for sent < len(pkts) {
		n := min(len(pkts)-sent, maxBatch)
		for i := 0; i < n; i++ {
			p := pkts[sent+i]
			b.txIov[i] = unix.Iovec{Base: &p[0]}
			b.txIov[i].SetLen(len(p))
			b.tx[i] = mmsghdr{}
			b.tx[i].hdr.Name = (*byte)(unsafe.Pointer(dst[sent+i]))
			b.tx[i].hdr.Namelen = unix.SizeofSockaddrInet4
			b.tx[i].hdr.Iov = &b.txIov[i]
			b.tx[i].hdr.SetIovlen(1)
		}
		var done int
		var serr error
		err := b.rc.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.tx[0])), uintptr(n), 0, 0, 0)
			if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
				return false
			}
			if e == unix.EINTR {
				return false
			}
			if e != 0 {
				serr = e
				return true
			}
			done = int(r)
			return true
		})
		if err != nil {
			return sent, err
		}
		if serr != nil {
			// One bad destination (ECONNREFUSED from an ICMP error, say)
			// must not stop the rest: skip it.
			if errors.Is(serr, unix.ECONNREFUSED) || errors.Is(serr, unix.EPERM) {
				sent++
				continue
			}
			return sent, serr
		}
		if done == 0 {
			done = 1 // cannot happen on a blocking-capable socket; never spin
		}
		sent += done
	}
	return sent, nil
}

// readBatch blocks until at least one datagram is there and returns up to
// maxBatch of them, appended to out[:0].
func (b *batchConn) readBatch(out []received) ([]received, error) {
	for i := range b.rx {
		b.rx[i] = mmsghdr{}
		b.rx[i].hdr.Name = (*byte)(unsafe.Pointer(&b.rxSA[i]))
		b.rx[i].hdr.Namelen = unix.SizeofSockaddrInet4
		b.rx[i].hdr.Iov = &b.rxIov[i]
		b.rx[i].hdr.SetIovlen(1)
		b.rx[i].hdr.Control = &b.rxOOB[i][0]
		b.rx[i].hdr.SetControllen(oobLen)
	}
	var n int
	var serr error
	err := b.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rx[0])), maxBatch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK || e == unix.EINTR {
			return false
		}
		if e != 0 {
			serr = e
			return true
		}
		n = int(r)
		return true
	})
	if err != nil {
		return out[:0], err
	}
	out = out[:0]
	if serr != nil {
		if errors.Is(serr, unix.ECONNREFUSED) {
			return out, nil // an ICMP error from an earlier send: nothing to read
		}
		return out, serr
	}
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		m := &b.rx[i]
		l := min(int(m.n), rxBufLen)
		at := kernelTime(b.rxOOB[i][:m.hdr.Controllen])
		if at == 0 {
			at = now
		}
		sa := &b.rxSA[i]
		out = append(out, received{data: b.rxBuf[i][:l], from: sa.Port<<8 | sa.Port>>8, at: at})
	}
	return out, nil
}

// kernelTime finds SCM_TIMESTAMPNS in a control buffer without
// allocating; 0 when absent.
func kernelTime(oob []byte) int64 {
	hlen := unix.CmsgLen(0)
	for off := 0; off+hlen <= len(oob); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		l := int(h.Len)
		if l < hlen || off+l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && l-hlen >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[off+hlen]))
			return ts.Nano()
		}
		off += unix.CmsgSpace(l - hlen)
	}
	return 0
}
