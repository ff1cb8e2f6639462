package call

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
)

// benchLegs builds a caller and an agent endpoint on loopback with the
// agent's peer draining its socket, and an interaction bridging them.
func benchLegs(b *testing.B, maskDTMF, record bool) (*Interaction, *callerBridge, *media.Endpoint, *media.Packet) {
	b.Helper()
	pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 36000, 36099)
	if err != nil {
		b.Fatal(err)
	}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	open := func(remote netip.AddrPort) *media.Endpoint {
		conn, port, err := pool.Open()
		if err != nil {
			b.Fatal(err)
		}
		ep := media.NewEndpoint(media.EndpointConfig{Conn: conn, Port: port, Pool: pool, Remote: remote, Codec: audio.CodecPCMU(), EventPT: 101, Log: zerolog.Nop()})
		b.Cleanup(func() { ep.Close() })
		return ep
	}
	sinkAddr := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	caller := open(sinkAddr)
	agent := open(sinkAddr)
	m := &Manager{cfg: Config{}, log: zerolog.Nop()}
	c := &Interaction{id: "bench", m: m, caller: caller, log: zerolog.Nop(), ended: make(chan struct{}), digits: newDigitQueue(), data: map[string]string{}}
	if record {
		rec, err := recorder.New(recorder.Config{Dir: b.TempDir(), Name: "bench", CallID: "bench", Codec: "PCMU", Policy: recorder.PolicyRecord})
		if err != nil {
			b.Fatal(err)
		}
		c.rec.Store(rec)
		b.Cleanup(func() { _ = rec.Discard() })
	}
	side := &agentSide{ep: agent, gone: make(chan struct{}), done: make(chan struct{}), queue: acd.QueueConfig{MaskDTMF: maskDTMF}}
	c.side = side
	c.pipe = newPipeline(c, nil, true, dtmf.Auto, c.onDigitReceived)
	cb := newCallerBridge(c, side)
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(0x55 + i%7)
	}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 7}, Payload: payload}).Marshal()
	p := &media.Packet{Raw: raw, Payload: raw[12:], From: sinkAddr}
	_, _ = p.Header.Unmarshal(raw)
	return c, cb, caller, p
}

// BenchmarkBridgeCallerToAgent is the per-packet cost of the caller→agent
// path: the caller leg's pipeline (decode, masker and recorder when
// needed), the gate, and either an in-place forward (no masking) or an
// encode of the pipeline's masked audio and a send (masking). One UDP
// send per op is included.
func BenchmarkBridgeCallerToAgent(b *testing.B) {
	for _, tc := range []struct {
		name                  string
		mask, record, payment bool
	}{{"forward", false, false, false}, {"masked", true, false, false}, {"masked+recorded", true, true, false},
		{"payment", false, true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			c, cb, caller, p := benchLegs(b, tc.mask, tc.record)
			if tc.payment {
				// An agent-assisted payment: masked audio whatever the
				// queue says, a mask tone playing over every packet.
				ps := &PaymentSession{c: c, tone: maskTone{flat: true}}
				c.payment.Store(ps)
				c.mode.Store(uint32(Payment))
				go func() { // keep a tone playing
					for range time.Tick(50 * time.Millisecond) {
						if c.payment.Load() == nil {
							return
						}
						ps.tone.start()
					}
				}()
				b.Cleanup(func() { c.payment.Store(nil) })
			}
			mon := c.pipe // one pipeline per caller leg, read by recorder and agent
			raw := append([]byte(nil), p.Raw...)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(p.Raw, raw) // Forward rewrites the packet in place
				p.Header.SequenceNumber = uint16(i)
				p.Header.Timestamp = uint32(i) * 160
				mon.Received(caller, p)
				cb.HandleRTP(caller, p)
				if i%1024 == 0 {
					time.Sleep(time.Microsecond) // let the recorder's writer drain
				}
			}
		})
	}
}
