package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// side is one socket of a pair.
type side struct {
	conn  *net.UDPConn
	peer  atomic.Uint64 // latched sender: addr<<16 | port; 0 = none yet
	other *side
	ssrc  uint32 // what packets leaving through other get
	seqOf uint16
}

func pack(ap netip.AddrPort) uint64 {
	a := ap.Addr().As4()
	return uint64(binary.BigEndian.Uint32(a[:]))<<16 | uint64(ap.Port())
}

func unpack(v uint64) netip.AddrPort {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(v>>16))
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(v))
}

// loop reads from s and forwards to the other side's peer.
func (s *side) loop() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if from.Addr().Is4In6() {
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		}
		if s.peer.Load() == 0 {
			s.peer.Store(pack(from))
		}
		dst := s.other.peer.Load()
		if dst == 0 || n < 12 || buf[0]>>6 != 2 {
			continue
		}
		seq := binary.BigEndian.Uint16(buf[2:])
		binary.BigEndian.PutUint16(buf[2:], seq+s.seqOf)
		binary.BigEndian.PutUint32(buf[8:], s.ssrc)
		_, _ = s.other.conn.WriteToUDPAddrPort(buf[:n], unpack(dst))
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1", "IPv4 `address` to listen on")
	base := flag.Int("base", 10000, "first `port`; pair i uses base+4i and base+4i+2")
	pairs := flag.Int("pairs", 1000, "relay pairs")
	duration := flag.Duration("duration", 30*time.Minute, "exit after this long (the bench never leaves it running)")
	io := flag.String("io", "goroutine", "`model`: goroutine (one per socket) or epoll (workers, as cloak's rtp.io: poll)")
	workers := flag.Int("workers", 1, "epoll workers (with -io epoll)")
	flag.Parse()
	ip, err := netip.ParseAddr(*listen)
	if err != nil || !ip.Is4() {
		fmt.Fprintln(os.Stderr, "floor: -listen must be an IPv4 address")
		os.Exit(2)
	}
	if *pairs < 1 || *base+4**pairs > 65535 {
		fmt.Fprintln(os.Stderr, "floor: the ports do not fit")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *io == "epoll" {
		closeAll, err := runEpoll(ip, *base, *pairs, max(1, *workers))
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		fmt.Printf("floor (epoll, %d workers): %d pairs on %s:%d-%d\n", max(1, *workers), *pairs, ip, *base, *base+4**pairs-2)
		select {
		case <-ctx.Done():
		case <-time.After(*duration):
		}
		closeAll()
		return
	}
	var conns []*net.UDPConn
	for i := 0; i < *pairs; i++ {
		a, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(*base+4*i))))
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		b, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(*base+4*i+2))))
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		conns = append(conns, a, b)
		sa := &side{conn: a, ssrc: 0xF100_0000 + uint32(i), seqOf: 1000}
		sb := &side{conn: b, ssrc: 0xF200_0000 + uint32(i), seqOf: 2000}
		sa.other, sb.other = sb, sa
		go sa.loop()
		go sb.loop()
	}
	fmt.Printf("floor: %d pairs on %s:%d-%d\n", *pairs, ip, *base, *base+4**pairs-2)
	select {
	case <-ctx.Done():
	case <-time.After(*duration):
	}
	for _, c := range conns {
		c.Close()
	}
}
