package media

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
)

// Unit tests of the source policies, fed through handleDatagram.

func newPolicyEndpoint(t *testing.T, remote netip.AddrPort, policy SourcePolicy) (*Endpoint, *memConn, *recorder) {
	t.Helper()
	c := newMemConn(64)
	e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), EventPT: 101, Remote: remote, Source: policy})
	t.Cleanup(func() { _ = e.Close() })
	rec := &recorder{}
	e.SetHandler(rec)
	return e, c, rec
}

func audioPacket(seq uint16, ssrc uint32) []byte {
	return rtpPacket(0, seq, uint32(seq)*160, ssrc, false, make([]byte, 160))
}

func TestSourcePolicyZeroValueIsStrict(t *testing.T) {
	if (EndpointConfig{}).Source != SourceStrict {
		t.Fatal("the zero EndpointConfig does not ask for strict source")
	}
	for _, name := range []string{"strict", "learn", "any"} {
		p, err := ParseSourcePolicy(name)
		if err != nil || p.String() != name {
			t.Errorf("ParseSourcePolicy(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := ParseSourcePolicy("latch"); !errors.Is(err, ErrSourcePolicy) {
		t.Errorf("ParseSourcePolicy(latch) = %v, want ErrSourcePolicy", err)
	}
}

// Strict: only the SDP's address and port; the same IP on another port is
// as foreign as another IP; an event packet from elsewhere reaches nothing.
func TestStrictSourceOnlySDPAddress(t *testing.T) {
	e, conn, rec := newPolicyEndpoint(t, sdpAddr, SourceStrict)
	sameIP := netip.AddrPortFrom(sdpAddr.Addr(), sdpAddr.Port()+2)
	for i, from := range []netip.AddrPort{strayAdr, sameIP, natAddr} {
		e.handleDatagram(audioPacket(uint16(i), 0xBAD), from, new(Packet))
	}
	e.handleDatagram(rtpPacket(101, 9, 0, 0xBAD, true, []byte{5, 0x0a, 0, 160}), sameIP, new(Packet)) // digit 5
	if s := e.Stats(); e.Latched() || rec.len() != 0 || s.DroppedUnknownSource != 4 || s.RxPackets != 0 {
		t.Fatalf("foreign packets got in: latched=%v delivered=%d stats %+v", e.Latched(), rec.len(), s)
	}
	if err := e.WriteAudio(make([]byte, 160), 160, true); err != nil {
		t.Fatal(err)
	}
	if d := <-conn.out; d.addr != sdpAddr {
		t.Fatalf("sent to %v, want the SDP address %v", d.addr, sdpAddr)
	}
	e.handleDatagram(audioPacket(100, 0x600D), sdpAddr, new(Packet))
	if !e.Latched() || e.Remote() != sdpAddr || rec.len() != 1 {
		t.Fatalf("packet from the SDP address not accepted: latched=%v remote=%v delivered=%d", e.Latched(), e.Remote(), rec.len())
	}
	e.handleDatagram(audioPacket(101, 0x600D), sameIP, new(Packet))
	if s := e.Stats(); s.DroppedUnknownSource != 5 || rec.len() != 1 {
		t.Errorf("after latching: stats %+v, delivered %d", s, rec.len())
	}
}

// Late offer: no SDP address yet, so strict and learn accept nothing;
// SetRemote (the answer in the ACK) opens the leg to that address.
func TestLateOfferAcceptsNothingUntilSetRemote(t *testing.T) {
	for _, policy := range []SourcePolicy{SourceStrict, SourceLearn} {
		e, _, rec := newPolicyEndpoint(t, netip.AddrPort{}, policy)
		for i := range 8 {
			e.handleDatagram(audioPacket(uint16(i), 0x600D), sdpAddr, new(Packet))
		}
		if e.Latched() || rec.len() != 0 || e.Stats().DroppedUnknownSource != 8 {
			t.Fatalf("%v without a remote: latched=%v delivered=%d stats %+v", policy, e.Latched(), rec.len(), e.Stats())
		}
		if err := e.WriteAudio(make([]byte, 160), 160, false); !errors.Is(err, ErrNoRemote) {
			t.Errorf("%v: WriteAudio without a remote = %v, want ErrNoRemote", policy, err)
		}
		e.SetRemote(sdpAddr)
		e.handleDatagram(audioPacket(8, 0x600D), sdpAddr, new(Packet))
		if !e.Latched() || rec.len() != 1 {
			t.Errorf("%v after SetRemote: latched=%v delivered=%d", policy, e.Latched(), rec.len())
		}
	}
}

// Learn: a run of LearnPackets consecutive packets (same source, same
// SSRC, sequence +1 mod 2^16) from the SDP's IP; the run's packets are
// dropped; a broken run starts again; another IP never learns.
func TestLearnNeedsAnUnbrokenRun(t *testing.T) {
	nat := netip.AddrPortFrom(sdpAddr.Addr(), 41000)
	nat2 := netip.AddrPortFrom(sdpAddr.Addr(), 41002)
	for _, tc := range []struct {
		name    string
		feed    func(e *Endpoint)
		learned bool
	}{
		{"four in a row", func(e *Endpoint) {
			for s := uint16(10); s < 14; s++ {
				e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
			}
		}, true},
		{"across the sequence wrap", func(e *Endpoint) {
			for _, s := range []uint16{65534, 65535, 0, 1} {
				e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
			}
		}, true},
		{"a gap", func(e *Endpoint) {
			for _, s := range []uint16{10, 11, 13, 14} {
				e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
			}
		}, false},
		{"a repeat", func(e *Endpoint) {
			for _, s := range []uint16{10, 11, 11, 12} {
				e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
			}
		}, false},
		{"SSRC changes", func(e *Endpoint) {
			for i, s := range []uint16{10, 11, 12, 13} {
				e.handleDatagram(audioPacket(s, uint32(1+i/2)), nat, new(Packet))
			}
		}, false},
		{"ports interleaved", func(e *Endpoint) {
			for i, s := range []uint16{10, 11, 12, 13} {
				from := nat
				if i%2 == 1 {
					from = nat2
				}
				e.handleDatagram(audioPacket(s, 1), from, new(Packet))
			}
		}, false},
		{"another IP", func(e *Endpoint) {
			for s := uint16(10); s < 30; s++ {
				e.handleDatagram(audioPacket(s, 1), strayAdr, new(Packet))
			}
		}, false},
	} {
		e, _, rec := newPolicyEndpoint(t, sdpAddr, SourceLearn)
		tc.feed(e)
		if e.Latched() != tc.learned {
			t.Errorf("%s: learned=%v, want %v (stats %+v)", tc.name, e.Latched(), tc.learned, e.Stats())
			continue
		}
		want := 0
		if tc.learned {
			want = 1 // the packet completing the run; the three before it are dropped
		}
		if rec.len() != want {
			t.Errorf("%s: delivered %d, want %d", tc.name, rec.len(), want)
		}
		if tc.learned && e.Remote() != nat {
			t.Errorf("%s: Remote() = %v, want %v", tc.name, e.Remote(), nat)
		}
	}
}

// Learn: the SDP's own address and port is accepted at once; a NAT
// binding that moves mid-call is followed only after a run and once the
// old source has gone quiet; the SDP's address takes the leg back at
// once; SetRemote starts learning afresh.
func TestLearnRelearnsOnlyAfterRun(t *testing.T) {
	e, conn, rec := newPolicyEndpoint(t, sdpAddr, SourceLearn)
	moved := netip.AddrPortFrom(sdpAddr.Addr(), 50000)
	e.handleDatagram(audioPacket(1, 7), sdpAddr, new(Packet))
	if !e.Latched() || rec.len() != 1 {
		t.Fatal("the SDP's own address was not accepted at once")
	}
	e.handleDatagram(audioPacket(2, 7), moved, new(Packet))
	e.handleDatagram(audioPacket(3, 7), moved, new(Packet))
	e.handleDatagram(audioPacket(1, 7), sdpAddr, new(Packet)) // the old binding still delivers
	e.handleDatagram(audioPacket(4, 7), moved, new(Packet))
	if e.Remote() != sdpAddr || rec.len() != 2 {
		t.Fatalf("switched before the run: remote %v delivered %d", e.Remote(), rec.len())
	}
	e.handleDatagram(audioPacket(5, 7), moved, new(Packet)) // fourth in a row, but the old one just spoke
	if e.Remote() != sdpAddr || rec.len() != 2 {
		t.Fatalf("switched while the learned source was not quiet: remote %v delivered %d", e.Remote(), rec.len())
	}
	e.lastRx.Store(time.Now().Add(-time.Second).UnixNano()) // the old binding has gone quiet
	e.handleDatagram(audioPacket(6, 7), moved, new(Packet))
	if e.Remote() != moved || rec.len() != 3 || e.Stats().SourceChanges != 1 {
		t.Fatalf("after the run and quiet: remote %v delivered %d stats %+v", e.Remote(), rec.len(), e.Stats())
	}
	if err := e.WriteAudio(make([]byte, 160), 160, false); err != nil {
		t.Fatal(err)
	}
	if d := <-conn.out; d.addr != moved {
		t.Fatalf("sent to %v, want the learned %v", d.addr, moved)
	}
	e.handleDatagram(audioPacket(7, 7), sdpAddr, new(Packet)) // what the SDP names takes it back
	if e.Remote() != sdpAddr || rec.len() != 4 || e.Stats().SourceChanges != 2 {
		t.Fatalf("the SDP's address did not take the leg back: remote %v delivered %d", e.Remote(), rec.len())
	}

	// A re-INVITE: learning starts afresh against the new SDP; a run
	// begun before it does not count.
	other := netip.AddrPortFrom(sdpAddr.Addr(), 50002)
	for s := uint16(20); s < 23; s++ {
		e.handleDatagram(audioPacket(s, 9), other, new(Packet))
	}
	e.SetRemote(sdpAddr)
	e.handleDatagram(audioPacket(23, 9), other, new(Packet))
	if e.Latched() {
		t.Fatal("a run begun before SetRemote completed after it")
	}
}

// Learn: a second stream from the caller's IP (another host behind the
// same NAT, say) cannot take the leg while the caller keeps talking,
// however long its run.
func TestLearnKeepsTalkingSource(t *testing.T) {
	e, _, rec := newPolicyEndpoint(t, sdpAddr, SourceLearn)
	nat := netip.AddrPortFrom(sdpAddr.Addr(), 41000)
	rival := netip.AddrPortFrom(sdpAddr.Addr(), 41002)
	for s := uint16(0); s < 4; s++ {
		e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
	}
	if e.Remote() != nat {
		t.Fatal("caller not learned")
	}
	for i := uint16(0); i < 50; i++ {
		e.handleDatagram(audioPacket(4+i, 1), nat, new(Packet))
		e.handleDatagram(audioPacket(900+i, 2), rival, new(Packet))
	}
	if e.Remote() != nat || e.Stats().SourceChanges != 0 {
		t.Fatalf("rival took the leg: remote %v stats %+v", e.Remote(), e.Stats())
	}
	onlySSRC(t, rec, 1)
}

func TestLearnPacketsConfigurable(t *testing.T) {
	c := newMemConn(0)
	e := NewEndpoint(EndpointConfig{Conn: c, Codec: audio.CodecPCMU(), Remote: sdpAddr, Source: SourceLearn, LearnPackets: 8})
	defer e.Close()
	nat := netip.AddrPortFrom(sdpAddr.Addr(), 41000)
	for s := uint16(0); s < 7; s++ {
		e.handleDatagram(audioPacket(s, 1), nat, new(Packet))
	}
	if e.Latched() {
		t.Fatal("learned after 7 of 8")
	}
	e.handleDatagram(audioPacket(7, 1), nat, new(Packet))
	if !e.Latched() {
		t.Fatal("not learned after 8")
	}
}

// Loopback tests: a caller and an attacker, each a real UDP socket, on
// both read paths (a goroutine per leg, and a Poller's workers).

// forEachReadPath runs f with a pool of loopback ports read by a goroutine
// per leg, then with one read by a Poller.
func forEachReadPath(t *testing.T, f func(t *testing.T, pool *PortPool)) {
	t.Run("goroutine", func(t *testing.T) {
		lo, hi := freeRange(t, 4)
		pool, err := NewPortPool(loopback, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		f(t, pool)
	})
	t.Run("poll", func(t *testing.T) {
		_, pool, _, _ := newPolledPool(t, 1, 4)
		f(t, pool)
	})
}

// startLeg starts an endpoint of pool with remote (the SDP address) and
// policy that echoes every audio packet and records what it is handed.
func startLeg(t *testing.T, pool *PortPool, remote netip.AddrPort, policy SourcePolicy) (*Endpoint, *recorder) {
	t.Helper()
	conn, port, err := pool.Open()
	if err != nil {
		t.Fatal(err)
	}
	e := NewEndpoint(EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(), EventPT: 101, Remote: remote, Source: policy})
	rec := &recorder{}
	echo := Echo()
	e.SetHandler(HandlerFunc(func(e *Endpoint, p *Packet) {
		rec.HandleRTP(e, p)
		echo.HandleRTP(e, p)
	}))
	e.Start()
	t.Cleanup(func() { _ = e.Close() })
	return e, rec
}

// newPeerAt is newPeer on another loopback address (Linux answers all of
// 127.0.0.0/8): "another IP" without leaving the machine.
func newPeerAt(t *testing.T, ip string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Skipf("cannot bind %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c}
}

// sendRun sends n consecutive packets (one SSRC) from p to port.
func sendRun(p *peer, port int, first uint16, n int, ssrc uint32) {
	for i := range n {
		p.send(port, audioPacket(first+uint16(i), ssrc))
	}
}

// expectNothing fails if p receives a datagram within d.
func expectNothing(t *testing.T, p *peer, who string, d time.Duration) {
	t.Helper()
	if b, ok := p.recv(d); ok {
		t.Fatalf("%s received %d bytes", who, len(b))
	}
}

// onlySSRC fails unless every packet rec was handed carries ssrc.
func onlySSRC(t *testing.T, rec *recorder, ssrc uint32) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, p := range rec.pkts {
		if p.Header.SSRC != ssrc {
			t.Fatalf("handler was handed a packet of SSRC %#x from %v", p.Header.SSRC, p.From)
		}
	}
}

// The attacker sends first, from the caller's IP on another port (strict)
// or from another IP (learn, where the caller's IP may learn): nothing of
// the attacker's is delivered or answered, the caller's packets are, and
// our stream goes to the SDP address.
func TestAttackerFirstOverLoopback(t *testing.T) {
	for _, policy := range []SourcePolicy{SourceStrict, SourceLearn} {
		t.Run(policy.String(), func(t *testing.T) {
			forEachReadPath(t, func(t *testing.T, pool *PortPool) {
				caller := newPeer(t)
				attacker := newPeer(t)
				if policy == SourceLearn {
					attacker = newPeerAt(t, "127.0.0.2")
				}
				e, rec := startLeg(t, pool, caller.addr(), policy)
				port := e.LocalPort()
				sendRun(attacker, port, 1000, 10, 0xA77AC4)
				attacker.send(port, rtpPacket(101, 1010, 0, 0xA77AC4, true, []byte{5, 0x8a, 0, 160})) // digit 5, end
				waitFor(t, "attacker's packets to be dropped", func() bool { return e.Stats().DroppedUnknownSource == 11 })
				if e.Latched() || rec.len() != 0 {
					t.Fatalf("attacker's packets got in: latched=%v delivered=%d", e.Latched(), rec.len())
				}
				if err := e.WriteAudio(make([]byte, 160), 160, true); err != nil {
					t.Fatal(err)
				}
				if _, ok := caller.recv(time.Second); !ok {
					t.Fatal("caller did not receive our stream")
				}
				for i := range 5 {
					caller.send(port, audioPacket(uint16(i), 0xCA11E4))
					if _, ok := caller.recv(time.Second); !ok {
						t.Fatalf("caller's packet %d not echoed", i)
					}
				}
				expectNothing(t, attacker, "attacker", 100*time.Millisecond)
				onlySSRC(t, rec, 0xCA11E4)
				if s := e.Stats(); rec.len() != 5 || s.RxPackets != 5 || e.Remote() != caller.addr() {
					t.Errorf("delivered %d, remote %v, stats %+v", rec.len(), e.Remote(), s)
				}
			})
		})
	}
}

// The caller is flowing; the attacker then sends (also a run that would
// learn, were it from the caller's IP under learn): nothing of it is
// delivered, our stream keeps going to the caller. The drops are counted
// on the leg, except where the polled socket is connected to the caller
// (strict): then the kernel drops them before any read (UDP NoPorts).
func TestAttackerMidCallOverLoopback(t *testing.T) {
	for _, policy := range []SourcePolicy{SourceStrict, SourceLearn} {
		t.Run(policy.String(), func(t *testing.T) {
			forEachReadPath(t, func(t *testing.T, pool *PortPool) {
				caller := newPeer(t)
				attacker := newPeer(t)
				if policy == SourceLearn {
					attacker = newPeerAt(t, "127.0.0.2")
				}
				e, rec := startLeg(t, pool, caller.addr(), policy)
				port := e.LocalPort()
				for i := range 3 {
					caller.send(port, audioPacket(uint16(i), 0xCA11E4))
					if _, ok := caller.recv(time.Second); !ok {
						t.Fatalf("caller's packet %d not echoed", i)
					}
				}
				sendRun(attacker, port, 7000, 20, 0xA77AC4)
				attacker.send(port, rtpPacket(101, 7020, 0, 0xA77AC4, true, []byte{5, 0x8a, 0, 160}))
				connected := false
				if pc, ok := e.conn.(*polledConn); ok && pc.peer.Load() != nil {
					connected = true
				}
				if connected != (policy == SourceStrict && e.pconn != nil) {
					t.Fatalf("polled socket connected=%v under %v", connected, policy)
				}
				if !connected {
					waitFor(t, "attacker's packets to be counted", func() bool { return e.Stats().DroppedUnknownSource == 21 })
				}
				for i := 3; i < 6; i++ {
					caller.send(port, audioPacket(uint16(i), 0xCA11E4))
					if _, ok := caller.recv(time.Second); !ok {
						t.Fatalf("caller's packet %d not echoed after the attack", i)
					}
				}
				expectNothing(t, attacker, "attacker", 100*time.Millisecond)
				onlySSRC(t, rec, 0xCA11E4)
				if s := e.Stats(); rec.len() != 6 || e.Remote() != caller.addr() || s.SourceChanges != 0 {
					t.Errorf("delivered %d, remote %v, stats %+v", rec.len(), e.Remote(), s)
				}
			})
		})
	}
}

// Learn over loopback: the SDP names the caller's IP and a port it does
// not send from (a NAT); the caller is learned after the run, then its
// binding moves and is learned again; another IP sending runs never is.
func TestLearnNATOverLoopback(t *testing.T) {
	forEachReadPath(t, func(t *testing.T, pool *PortPool) {
		natA, natB := newPeer(t), newPeer(t)
		attacker := newPeerAt(t, "127.0.0.2")
		sdp := netip.AddrPortFrom(loopback, 9) // discard: nobody sends from it
		e, rec := startLeg(t, pool, sdp, SourceLearn)
		port := e.LocalPort()
		sendRun(natA, port, 100, 3, 0xCA11E4)
		waitFor(t, "run to be dropped", func() bool { return e.Stats().DroppedUnknownSource == 3 })
		expectNothing(t, natA, "caller before the run completed", 50*time.Millisecond)
		natA.send(port, audioPacket(103, 0xCA11E4))
		if _, ok := natA.recv(time.Second); !ok {
			t.Fatal("caller not answered after its run")
		}
		// The attacker, from another IP, sends runs meanwhile.
		sendRun(attacker, port, 5000, 12, 0xA77AC4)
		waitFor(t, "attacker's run to be dropped", func() bool { return e.Stats().DroppedUnknownSource == 15 })
		// The NAT binding moves: A falls silent, B takes over after its
		// own run.
		time.Sleep(2 * learnQuiet)
		sendRun(natB, port, 104, 4, 0xCA11E4)
		if _, ok := natB.recv(time.Second); !ok {
			t.Fatal("moved caller not answered after its run")
		}
		if s := e.Stats(); e.Remote() != natB.addr() || s.SourceChanges != 1 {
			t.Fatalf("remote %v, stats %+v; want %v after one change", e.Remote(), s, natB.addr())
		}
		if err := e.WriteAudio(make([]byte, 160), 160, false); err != nil {
			t.Fatal(err)
		}
		if _, ok := natB.recv(time.Second); !ok {
			t.Fatal("our stream did not follow the moved caller")
		}
		expectNothing(t, attacker, "attacker", 50*time.Millisecond)
		expectNothing(t, natA, "the old binding", 50*time.Millisecond)
		onlySSRC(t, rec, 0xCA11E4)
		if rec.len() != 2 {
			t.Errorf("delivered %d, want 2 (the last of each run)", rec.len())
		}
	})
}

// Any keeps plain latching: whoever sends first is latched to and
// answered, the hole strict and learn close.
func TestAnyLatchesToFirstSenderOverLoopback(t *testing.T) {
	forEachReadPath(t, func(t *testing.T, pool *PortPool) {
		caller, attacker := newPeer(t), newPeer(t)
		e, rec := startLeg(t, pool, caller.addr(), SourceAny)
		port := e.LocalPort()
		attacker.send(port, audioPacket(1, 0xA77AC4))
		if _, ok := attacker.recv(time.Second); !ok {
			t.Fatal("under any the first sender was not answered")
		}
		caller.send(port, audioPacket(1, 0xCA11E4))
		expectNothing(t, caller, "caller", 100*time.Millisecond)
		if e.Remote() != attacker.addr() || rec.len() != 1 {
			t.Errorf("remote %v, delivered %d", e.Remote(), rec.len())
		}
	})
}
