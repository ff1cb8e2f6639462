package media

import (
	"github.com/cloak-voip/cloak/audio"
	"github.com/zaf/g711"

	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Benchmarks of the per-packet hot path. Run:
//
//	go test -run '^$' -bench . -benchmem ./media/
//
// Every one must report 0 allocs/op.

func benchPacket() []byte {
	p := make([]byte, 160)
	for i := range p {
		p[i] = byte(i)
	}
	return rtpPacket(0, 1000, 160000, 0xABCDEF01, false, p)
}

func BenchmarkParseHeader(b *testing.B) {
	pkt := benchPacket()
	var h rtp.Header
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := checkRTP(pkt); !ok {
			b.Fatal("invalid")
		}
		if _, err := h.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	pkt := benchPacket()
	var h rtp.Header
	if _, err := h.Unmarshal(pkt); err != nil {
		b.Fatal(err)
	}
	r := NewRewriter(1, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		h.SequenceNumber++
		h.Timestamp += 160
		r.Rewrite(pkt, &h, 160, true)
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, c := range []audio.Codec{audio.CodecPCMU(), audio.CodecPCMA()} {
		b.Run(c.Name, func(b *testing.B) {
			payload := benchPacket()[12:]
			out := make([]int16, 0, audio.SamplesPerFrame)
			b.SetBytes(audio.SamplesPerFrame)
			b.ReportAllocs()
			for b.Loop() {
				out = c.Decode(payload, out)
			}
		})
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, c := range []audio.Codec{audio.CodecPCMU(), audio.CodecPCMA()} {
		b.Run(c.Name, func(b *testing.B) {
			pcm := sinePCM(audio.SamplesPerFrame, 440)
			out := make([]byte, 0, audio.SamplesPerFrame)
			b.SetBytes(audio.SamplesPerFrame)
			b.ReportAllocs()
			for b.Loop() {
				out = c.Encode(pcm, out)
			}
		})
		// The per-sample zaf/g711 call Encode used before its tables: run
		// beside it so the ratio holds on a busy machine.
		b.Run(c.Name+"/zaf-per-sample", func(b *testing.B) {
			pcm := sinePCM(audio.SamplesPerFrame, 440)
			out := make([]byte, 0, audio.SamplesPerFrame)
			enc := g711.EncodeUlawFrame
			if c.Name == "PCMA" {
				enc = g711.EncodeAlawFrame
			}
			b.SetBytes(audio.SamplesPerFrame)
			b.ReportAllocs()
			for b.Loop() {
				out = out[:0]
				for _, s := range pcm {
					out = append(out, enc(s))
				}
			}
		})
	}
}

// BenchmarkHandleDatagram: filter + parse + staleness bound + Echo
// (rewrite in place and send) of one packet, without the socket read: a
// stream on time (timestamps 20 ms apart, arriving 20 ms apart, the
// arrival set as a poll worker sets it).
func BenchmarkHandleDatagram(b *testing.B) {
	c := newMemConn(0)
	e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: sdpAddr,
		MaxStaleness: DefaultMaxStaleness})
	defer e.Close()
	e.SetHandler(Echo())
	pkt := benchPacket()
	buf := make([]byte, len(pkt))
	from := sdpAddr // strict (the default): the SDP's address
	seq, ts := uint16(0), uint32(0)
	p := new(Packet)
	p.arrival = nanotime()
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, pkt)
		seq++
		ts += 160
		p.arrival += int64(20 * time.Millisecond)
		buf[2], buf[3] = byte(seq>>8), byte(seq)
		buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		e.handleDatagram(buf, from, p)
	}
	if s := e.Stats(); s.TxPackets == 0 || s.Dropped() != 0 {
		b.Fatalf("stats %+v", s)
	}
}

// BenchmarkReadLoop: the whole path through the read goroutine over an
// in-memory PacketConn: read into the reused buffer, filter, parse, Echo.
func BenchmarkReadLoop(b *testing.B) {
	c := newMemConn(0)
	c.copyOut = false
	e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: sdpAddr})
	e.SetHandler(Echo())
	e.Start()
	defer e.Close()
	pkt := benchPacket()
	from := sdpAddr // strict (the default): the SDP's address
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c.in <- datagram{b: pkt, addr: from}
		n++
	}
	waitFor(b, "read loop to drain", func() bool { return c.writes.Load() == int64(n) })
	if s := e.Stats(); s.RxPackets != uint64(n) {
		b.Fatalf("stats %+v after %d packets", s, n)
	}
}

// BenchmarkWriteAudio: one packet of our own stream (what Play sends per
// tick).
func BenchmarkWriteAudio(b *testing.B) {
	c := newMemConn(0)
	e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), Remote: sdpAddr})
	defer e.Close()
	payload := make([]byte, audio.SamplesPerFrame)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.WriteAudio(payload, audio.SamplesPerFrame, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClockTick1000: one tick of the shared clock with 1,000
// subscribed calls, each poking its player the way Play does.
func BenchmarkClockTick1000(b *testing.B) {
	clk := NewClock(0)
	for i := 0; i < 1000; i++ {
		wake := make(chan struct{}, 1)
		clk.Subscribe(func(time.Time) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		clk.Tick(now)
	}
}

// BenchmarkEchoUDPLoopback: a full round trip over real loopback UDP
// sockets: the peer sends a packet, the endpoint's read loop echoes it,
// the peer reads it back. Includes four syscalls per op.
func BenchmarkEchoUDPLoopback(b *testing.B) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		b.Fatal(err)
	}
	benchEcho(b, conn)
}

// benchEcho times round trips from a loopback peer through an echoing
// endpoint on conn.
func benchEcho(b *testing.B, conn net.PacketConn) {
	peerConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		b.Fatal(err)
	}
	defer peerConn.Close()
	// The peer sends from the address its SDP names (strict source).
	remote := peerConn.LocalAddr().(*net.UDPAddr).AddrPort()
	e := NewEndpoint(EndpointConfig{Conn: conn, Codec: audio.CodecPCMU(), Remote: remote})
	e.SetHandler(Echo())
	e.Start()
	defer e.Close()
	to := e.LocalAddr()
	pkt := benchPacket()
	in := make([]byte, 2048)
	_ = peerConn.SetReadDeadline(time.Now().Add(time.Minute)) // a lost echo fails, never hangs
	b.ReportAllocs()
	for b.Loop() {
		if _, err := peerConn.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := peerConn.ReadFromUDPAddrPort(in); err != nil {
			b.Fatal(err)
		}
	}
}
