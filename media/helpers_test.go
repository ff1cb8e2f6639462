package media

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// datagram is one packet through memConn.
type datagram struct {
	b    []byte
	addr netip.AddrPort
}

// memConn is an in-memory net.PacketConn with the allocation-free
// AddrPort methods of *net.UDPConn. Reads come from in; writes go to out
// when it is not nil (dropped when out is full) and are counted.
type memConn struct {
	in      chan datagram
	out     chan datagram
	copyOut bool // copy written bytes (tests) or not (benchmarks)
	writes  atomic.Int64
	local   netip.AddrPort
	once    sync.Once
	closed  chan struct{}
}

func newMemConn(outCap int) *memConn {
	c := &memConn{
		in:      make(chan datagram),
		closed:  make(chan struct{}),
		local:   netip.MustParseAddrPort("127.0.0.1:40000"),
		copyOut: true,
	}
	if outCap > 0 {
		c.out = make(chan datagram, outCap)
	}
	return c
}

func (c *memConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.addr, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *memConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.writes.Add(1)
	if c.out != nil {
		d := datagram{b: b, addr: addr}
		if c.copyOut {
			d.b = append([]byte(nil), b...)
		}
		select {
		case c.out <- d:
		default:
		}
	}
	return len(b), nil
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromUDPAddrPort(b)
	return n, net.UDPAddrFromAddrPort(a), err
}

func (c *memConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, net.InvalidAddrError("not udp")
	}
	return c.WriteToUDPAddrPort(b, ua.AddrPort())
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return net.UDPAddrFromAddrPort(c.local) }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// rtpPacket builds a plain RTP packet (RFC 3550 §5.1) with payload.
func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	putHeader(b, marker, pt, seq, ts, ssrc)
	copy(b[12:], payload)
	return b
}

// header decodes seq, ts, ssrc, pt and marker of a packet we sent.
type sentHeader struct {
	seq    uint16
	ts     uint32
	ssrc   uint32
	pt     uint8
	marker bool
}

func parseSent(t testing.TB, b []byte) sentHeader {
	t.Helper()
	if len(b) < 12 || b[0] != 0x80 {
		t.Fatalf("sent packet is not a plain RTP v2 packet: % x", b)
	}
	return sentHeader{
		seq:    binary.BigEndian.Uint16(b[2:]),
		ts:     binary.BigEndian.Uint32(b[4:]),
		ssrc:   binary.BigEndian.Uint32(b[8:]),
		pt:     b[1] & 0x7f,
		marker: b[1]&0x80 != 0,
	}
}

// recorder is a Handler that copies what it is given.
type recorder struct {
	mu   sync.Mutex
	pkts []Packet
}

func (r *recorder) HandleRTP(_ *Endpoint, p *Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	c.Raw = append([]byte(nil), p.Raw...)
	r.pkts = append(r.pkts, c)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pkts)
}

// newTestEndpoint returns an endpoint on a memConn whose read loop is not
// started: tests feed handleDatagram directly. It accepts any source
// (SourceAny): the tests using it are about the other filters and feed
// packets from natAddr; source_test.go builds the other policies.
func newTestEndpoint(t testing.TB, remote string) (*Endpoint, *memConn) {
	t.Helper()
	c := newMemConn(64)
	cfg := EndpointConfig{Conn: c, Port: 40000, Codec: audio.CodecPCMU(), EventPT: 101, Source: SourceAny}
	if remote != "" {
		cfg.Remote = netip.MustParseAddrPort(remote)
	}
	e := NewEndpoint(cfg)
	t.Cleanup(func() { _ = e.Close() })
	return e, c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
