package call

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
)

func TestPCMRingPrimesTakesAndDrops(t *testing.T) {
	var q pcmRing
	frame := make([]int16, 160)
	for i := range frame {
		frame[i] = 100
	}
	dst := make([]int16, 160)
	for range ringPrime/160 - 1 {
		q.push(frame)
	}
	if n := q.addTo(dst); n != 0 {
		t.Fatalf("took %d samples before %d were queued", n, ringPrime)
	}
	q.push(frame)
	if n := q.addTo(dst); n != 160 || dst[0] != 100 || dst[159] != 100 {
		t.Fatalf("primed ring gave %d samples, dst[0]=%d", n, dst[0])
	}
	// Saturation: adding to a loud sample clips, never wraps.
	dst[0] = 32700
	q.push(frame)
	q.addTo(dst)
	if dst[0] != 32767 {
		t.Fatalf("32700+100 = %d, want 32767 (saturated)", dst[0])
	}
	// Full: pushes beyond the capacity are dropped and counted.
	q.flush()
	for range ringSamples/160 + 3 {
		q.push(frame)
	}
	if got := q.dropped.Load(); got != 3*160 {
		t.Fatalf("dropped %d samples, want %d", got, 3*160)
	}
	// Far behind: the consumer skips to the newest 40 ms.
	clear(dst)
	q.primed = true
	if n := q.addTo(dst); n != 160 || q.w.Load()-q.r.Load() != ringPrime-160 {
		t.Fatalf("lagging ring: took %d, %d left, want 160 and %d", n, q.w.Load()-q.r.Load(), ringPrime-160)
	}
}

func TestPCMRingWraps(t *testing.T) {
	var q pcmRing
	in := make([]int16, 300)
	out := make([]int16, 300)
	next, want := int16(0), int16(0)
	for round := range 40 { // 12000 samples through a 2048-sample ring
		for i := range in {
			next++
			in[i] = next
		}
		if !q.push(in) {
			t.Fatalf("round %d: push dropped", round)
		}
		clear(out)
		n := q.addTo(out)
		for i := range n {
			want++
			if out[i] != want {
				t.Fatalf("round %d sample %d = %d, want %d", round, i, out[i], want)
			}
		}
	}
}

// phone is a peer's RTP socket on loopback: it keeps the PCMU audio it
// receives, and counts telephone-event packets.
type phone struct {
	conn   *net.UDPConn
	mu     sync.Mutex
	pcm    []int16
	events int
}

func newPhone(t testing.TB, keep bool) *phone {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	ph := &phone{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		var pkt rtp.Packet
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if !keep {
				continue // a benchmark's sink: nothing allocated here
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			ph.mu.Lock()
			if pkt.PayloadType == 0 {
				ph.pcm = append(ph.pcm, audio.CodecPCMU().Decode(pkt.Payload, nil)...)
			} else {
				ph.events++
			}
			ph.mu.Unlock()
		}
	}()
	return ph
}

func (ph *phone) addr() netip.AddrPort { return ph.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// take returns what arrived since the last take.
func (ph *phone) take() []int16 {
	time.Sleep(150 * time.Millisecond)
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := ph.pcm
	ph.pcm = nil
	return out
}

// monRig is a bridged call (caller and agent legs) with one monitor leg,
// each leg's far end a phone. No SIP: the legs are the media side alone.
type monRig struct {
	c                    *Interaction
	cb                   *callerBridge
	ab                   *agentBridge
	callerEP, agentEP    *media.Endpoint
	mon                  *monitor
	callerPh, agentPh    *phone
	supPh                *phone
	seqC, seqA, seqS     uint16
	phaseC, phaseA, phsS float64
}

func newMonRig(t testing.TB, maskDTMF bool, mode MonitorMode) *monRig {
	_, bench := t.(*testing.B)
	return newMonRigKeep(t, maskDTMF, mode, !bench)
}

func newMonRigKeep(t testing.TB, maskDTMF bool, mode MonitorMode, keep bool) *monRig {
	t.Helper()
	pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 37100, 37199)
	if err != nil {
		t.Fatal(err)
	}
	r := &monRig{callerPh: newPhone(t, keep), agentPh: newPhone(t, keep), supPh: newPhone(t, keep)}
	open := func(remote netip.AddrPort) *media.Endpoint {
		conn, port, err := pool.Open()
		if err != nil {
			t.Fatal(err)
		}
		ep := media.NewEndpoint(media.EndpointConfig{Conn: conn, Port: port, Pool: pool, Remote: remote, Codec: audio.CodecPCMU(), EventPT: 101, Log: zerolog.Nop()})
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	r.callerEP, r.agentEP = open(r.callerPh.addr()), open(r.agentPh.addr())
	m := &Manager{cfg: Config{}, log: zerolog.Nop()}
	c := &Interaction{id: "mon", m: m, caller: r.callerEP, log: zerolog.Nop(), ended: make(chan struct{}), digits: newDigitQueue(), data: map[string]string{}}
	side := &agentSide{ep: r.agentEP, gone: make(chan struct{}), done: make(chan struct{}), queue: acd.QueueConfig{MaskDTMF: maskDTMF, Collect: true}}
	c.side = side
	c.pipe = newPipeline(c, nil, false, dtmf.Auto, func(byte, dtmf.Source) {})
	r.c, r.cb, r.ab = c, newCallerBridge(c, side), &agentBridge{c: c}
	r.mon = &monitor{c: c, id: "m1", supervisor: "sup1", ep: open(r.supPh.addr()), done: make(chan struct{})}
	r.mon.mode.Store(uint32(mode))
	c.monHub = &monitorHub{untick: func() {}}
	c.monHub.list = []*monitor{r.mon}
	c.publishMonitorsLocked(c.monHub)
	c.pipe.want.Or(wantMasked)
	return r
}

// packet makes an RTP packet of PCMU audio.
func packet(ssrc uint32, seq uint16, pcm []int16) *media.Packet {
	payload := audio.CodecPCMU().Encode(pcm, nil)
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}, Payload: payload}).Marshal()
	p := &media.Packet{Raw: raw, Payload: raw[12:]}
	_, _ = p.Header.Unmarshal(raw)
	return p
}

// sine fills 20 ms of hz at dBm0, continuing from *phase.
func sine(out []int16, hz, dBm0 float64, phase *float64) {
	amp := 32768 * math.Pow(10, (dBm0-3.17)/20) * math.Sqrt2
	for i := range out {
		out[i] = int16(amp * math.Sin(*phase))
		*phase += 2 * math.Pi * hz / 8000
	}
}

const supHz = 1800

// run sends frames of 20 ms on each leg — the caller's from callerPCM
// (or 1004 Hz), the agent's 600 Hz, the supervisor's 1800 Hz — through
// the pipelines and bridges as the legs' readers would, with a monitor
// tick after each, and returns what each phone received.
func (r *monRig) run(frames int, callerPCM []int16) (caller, agent, sup []int16) {
	buf := make([]int16, 160)
	for i := range frames {
		if callerPCM != nil && (i+1)*160 <= len(callerPCM) {
			copy(buf, callerPCM[i*160:])
		} else {
			sine(buf, 1004, -20, &r.phaseC)
		}
		r.seqC++
		p := packet(1, r.seqC, buf)
		r.c.pipe.Received(r.callerEP, p)
		r.cb.HandleRTP(r.callerEP, p)
		sine(buf, 600, -20, &r.phaseA)
		r.seqA++
		r.ab.HandleRTP(r.agentEP, packet(2, r.seqA, buf))
		sine(buf, supHz, -20, &r.phsS)
		r.seqS++
		r.mon.HandleRTP(r.mon.ep, packet(3, r.seqS, buf))
		r.c.monitorTick(time.Now())
		if i%25 == 24 {
			time.Sleep(2 * time.Millisecond) // let the phones read
		}
	}
	return r.callerPh.take(), r.agentPh.take(), r.supPh.take()
}

// share is how much of pcm is the tone hz (0..1), Goertzel over the lot.
func share(pcm []int16, hz float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2, energy float64
	for _, x := range pcm {
		v := float64(x)
		s1, s2 = v+coeff*s1-s2, s1
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	return (s1*s1 + s2*s2 - coeff*s1*s2) / (energy * float64(len(pcm)) / 2)
}

func digitsIn(t *testing.T, pcm []int16) int {
	t.Helper()
	det, err := dtmf.NewDetector(dtmf.DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range det.Process(pcm) {
		if ev.Kind == dtmf.KindEnd {
			n++
		}
	}
	return n
}

// TestMonitorModes: a listening supervisor hears caller and agent and
// reaches nobody; coaching reaches the agent only; barging both.
func TestMonitorModes(t *testing.T) {
	for _, tc := range []struct {
		mode              MonitorMode
		toAgent, toCaller bool
		maskDTMF          bool
	}{
		{MonitorListen, false, false, true},
		{MonitorCoach, true, false, true},
		{MonitorBarge, true, true, true},
		{MonitorBarge, true, true, false}, // the forward fast path gives way to the mix
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			r := newMonRig(t, tc.maskDTMF, tc.mode)
			caller, agent, sup := r.run(100, nil)
			t.Logf("supervisor heard caller %.2f agent %.2f; agent heard sup %.2f; caller heard sup %.2f",
				share(sup, 1004), share(sup, 600), share(agent, supHz), share(caller, supHz))
			if len(sup) < 90*160 {
				t.Fatalf("supervisor received %d samples for 100 frames", len(sup))
			}
			if share(sup, 1004) < 0.2 || share(sup, 600) < 0.2 {
				t.Errorf("supervisor does not hear both sides: caller %.2f agent %.2f", share(sup, 1004), share(sup, 600))
			}
			if share(sup, supHz) > 0.01 {
				t.Errorf("supervisor hears themselves (%.3f)", share(sup, supHz))
			}
			if got := share(agent, supHz) > 0.1; got != tc.toAgent {
				t.Errorf("agent hears the supervisor: %v (share %.3f), want %v", got, share(agent, supHz), tc.toAgent)
			}
			if got := share(caller, supHz) > 0.1; got != tc.toCaller {
				t.Errorf("caller hears the supervisor: %v (share %.3f), want %v", got, share(caller, supHz), tc.toCaller)
			}
			if share(agent, 1004) < 0.2 || share(caller, 600) < 0.2 {
				t.Errorf("caller and agent no longer hear each other: %.2f %.2f", share(agent, 1004), share(caller, 600))
			}
		})
	}
}

// TestMonitorHearsNoDigits: the caller keys the test card in-band while
// talking, on a queue that passes DTMF to the agent: the supervisor still
// gets the masked stream, and no digit decodes from it. The same audio
// with the monitor's tap disabled (the agent's raw forward) does carry
// the digits, so the measure can fail.
func TestMonitorHearsNoDigits(t *testing.T) {
	var pcm []int16
	for range 10 {
		pcm = append(pcm, make([]int16, 160)...)
	}
	for _, d := range []byte("4111111111111111") {
		var err error
		if pcm, err = dtmf.AppendTone(pcm, d, dtmf.ToneSpec{Duration: 100 * time.Millisecond, LevelDBm0: -10}); err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, make([]int16, 800)...)
	}
	pcm = pcm[:len(pcm)/160*160]
	r := newMonRig(t, false, MonitorListen)
	_, agent, sup := r.run(len(pcm)/160+20, pcm)
	if n := digitsIn(t, agent); n < 10 {
		t.Fatalf("the agent (DTMF passed) heard %d digits: the test's tones do not decode", n)
	}
	if n := digitsIn(t, sup); n != 0 {
		t.Errorf("%d digits decoded from what the supervisor heard", n)
	}
	if len(sup) < len(pcm)/2 {
		t.Errorf("supervisor heard %d samples of %d", len(sup), len(pcm))
	}
}

// TestMonitorBlockedOutsideNormal: in a referral and a secure segment a
// monitor hears nothing of caller or agent, and its voice reaches
// neither, whatever its mode; back in normal mode it hears again and
// nothing queued during the segment comes out late.
func TestMonitorBlockedOutsideNormal(t *testing.T) {
	for _, mode := range []Mode{Referred, Secure} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newMonRig(t, true, MonitorBarge)
			r.run(20, nil)
			r.c.mode.Store(uint32(mode))
			caller, agent, sup := r.run(50, nil)
			if len(sup) != 0 {
				t.Errorf("the supervisor received %d samples in %s mode", len(sup), mode)
			}
			if share(agent, supHz) > 0.01 || share(caller, supHz) > 0.01 {
				t.Errorf("the supervisor's voice reached agent (%.3f) or caller (%.3f) in %s mode", share(agent, supHz), share(caller, supHz), mode)
			}
			r.c.mode.Store(uint32(Normal))
			_, agent, sup = r.run(50, nil)
			if share(sup, 1004) < 0.2 || share(agent, supHz) < 0.1 {
				t.Errorf("back in normal mode: supervisor hears caller %.2f, agent hears supervisor %.2f", share(sup, 1004), share(agent, supHz))
			}
		})
	}
}

// TestMonitorJoinsDuringSecureSegment: a monitor attached while the call
// is already in a secure segment hears nothing and reaches nobody until
// the segment ends, then hears the call.
func TestMonitorJoinsDuringSecureSegment(t *testing.T) {
	r := newMonRig(t, true, MonitorBarge)
	r.c.mode.Store(uint32(Secure))
	caller, agent, sup := r.run(50, nil)
	if len(sup) != 0 || share(agent, supHz) > 0.01 || share(caller, supHz) > 0.01 {
		t.Fatalf("joined in a secure segment: supervisor got %d samples; agent hears them %.3f, caller %.3f", len(sup), share(agent, supHz), share(caller, supHz))
	}
	r.c.mode.Store(uint32(Normal))
	if _, _, sup = r.run(50, nil); share(sup, 1004) < 0.2 {
		t.Errorf("after the segment the supervisor hears the caller at %.2f", share(sup, 1004))
	}
}

// TestMonitorUntappedWhenNotMasked: a caller frame the pipeline did not
// mask never reaches a monitor (the gate says Mask).
func TestMonitorUntappedWhenNotMasked(t *testing.T) {
	r := newMonRig(t, false, MonitorListen)
	ms := r.c.monitors.Load()
	buf := make([]int16, 160)
	var ph float64
	sine(buf, 1004, -20, &ph)
	p := packet(1, 1, buf)
	in, _ := p.Scratch()
	p.Audio = r.callerEP.Codec().Decode(p.Payload, in[:0]) // decoded, not masked
	ms.tapCaller(Normal, p)
	if ms.hub.fromCaller.w.Load() != 0 || ms.hub.skipped.Load() != 1 {
		t.Fatalf("an unmasked frame was tapped (queued %d, skipped %d)", ms.hub.fromCaller.w.Load(), ms.hub.skipped.Load())
	}
}

func TestMonitorModeParseAndKeys(t *testing.T) {
	for s, want := range map[string]MonitorMode{"listen": MonitorListen, "coach": MonitorCoach, "barge": MonitorBarge} {
		if got, err := ParseMonitorMode(s); err != nil || got != want || got.String() != s {
			t.Errorf("ParseMonitorMode(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseMonitorMode("spy"); !errors.Is(err, ErrMonitorMode) {
		t.Errorf("unknown mode: %v", err)
	}
	for d, want := range map[byte]MonitorMode{'4': MonitorListen, '5': MonitorCoach, '6': MonitorBarge} {
		if got, ok := monitorKey(d); !ok || got != want {
			t.Errorf("key %c = %v", d, got)
		}
	}
	if _, ok := monitorKey('1'); ok {
		t.Error("key 1 switches a mode")
	}
}

func TestMonitorKeySwitchesModeAndAudits(t *testing.T) {
	r := newMonRig(t, true, MonitorListen)
	var got []MonitorAudit
	r.c.m.cfg.Monitor.OnAudit = func(a MonitorAudit) { got = append(got, a) }
	r.mon.onKey('5', dtmf.SourceRFC4733)
	r.mon.onKey('5', dtmf.SourceRFC4733) // no change, no audit row
	r.mon.onKey('9', dtmf.SourceRFC4733)
	r.c.secureReq = make(chan secureRequest, 1)
	r.mon.onKey('*', dtmf.SourceRFC4733) // the agent's secure code, keyed by a monitor: nothing
	r.mon.onKey('7', dtmf.SourceRFC4733)
	if len(r.c.secureReq) != 0 {
		t.Fatal("a monitor's keys requested a secure flow")
	}
	if MonitorMode(r.mon.mode.Load()) != MonitorCoach {
		t.Fatalf("mode %v after key 5, want coach", MonitorMode(r.mon.mode.Load()))
	}
	if len(got) != 1 || got[0].Action != AuditMonitorMode || got[0].Mode != "coach" || got[0].Via != "dtmf" || got[0].Supervisor != "sup1" || got[0].Call != "mon" {
		t.Fatalf("audit rows %+v", got)
	}
	if err := r.c.SetMonitorMode("m9", MonitorBarge, "api"); !errors.Is(err, ErrNoMonitor) {
		t.Errorf("unknown monitor: %v", err)
	}
	if info := r.c.Monitors(); len(info) != 1 || info[0].Mode != "coach" || info[0].Supervisor != "sup1" {
		t.Errorf("Monitors() = %+v", info)
	}
}

func TestMonitorTargetAndPermission(t *testing.T) {
	r := newMonRig(t, true, MonitorListen)
	c := r.c
	for _, tc := range []struct{ target, sup, wantURI, wantSup string }{
		{"sip:sup@127.0.0.1:5070", "sup1", "sip:sup@127.0.0.1:5070", "sup1"},
	} {
		uri, sup, err := c.monitorTarget(tc.target, tc.sup)
		if err != nil || uri != tc.wantURI || sup != tc.wantSup {
			t.Errorf("monitorTarget(%q, %q) = %q, %q, %v", tc.target, tc.sup, uri, sup, err)
		}
	}
	for _, bad := range []struct{ target, sup string }{
		{"", "sup1"}, {"sip:x@h\r\nVia: evil", "sup1"}, {"sip:x@127.0.0.1", ""}, {"nobody", ""}, {"<sip:x@h>", "s"},
	} {
		if _, _, err := c.monitorTarget(bad.target, bad.sup); err == nil {
			t.Errorf("monitorTarget(%q, %q) accepted", bad.target, bad.sup)
		}
	}
	c.side.queue.Name = "sales"
	c.m.cfg.Monitor.Supervisors = map[string][]string{"sales": {"sup1"}, "payments": {"sup2"}}
	_, err := c.StartMonitor(t.Context(), MonitorRequest{Mode: MonitorListen, Target: "sip:sup@127.0.0.1:5070", Supervisor: "sup2"})
	if !errors.Is(err, ErrNotSupervisor) {
		t.Errorf("a supervisor of another queue: %v, want ErrNotSupervisor", err)
	}
	_, err = c.StartMonitor(t.Context(), MonitorRequest{Mode: 9, Target: "sip:sup@127.0.0.1:5070", Supervisor: "sup1"})
	if !errors.Is(err, ErrMonitorMode) {
		t.Errorf("mode 9: %v", err)
	}
	c.m.cfg.Monitor.MaxPerCall = 1 // the rig's monitor fills it
	_, err = c.StartMonitor(t.Context(), MonitorRequest{Mode: MonitorListen, Target: "sip:sup@127.0.0.1:5070", Supervisor: "sup1"})
	if !errors.Is(err, ErrMonitorLimit) {
		t.Errorf("over the limit: %v, want ErrMonitorLimit", err)
	}
}

// BenchmarkMonitoredCall is the cost of 20 ms of one call — a caller
// packet through its pipeline (masked) and the caller bridge, an agent
// packet through the agent bridge — plain, and with one monitor
// listening (plus the clock's mix tick and the send to the monitor) or
// coaching (plus the supervisor's packet and the mix into the agent's
// stream); listen-relay is the listening case without the tick: what
// monitoring adds on the relay path itself. Each op sends 2 (plain,
// listen-relay) to 3 UDP packets.
func BenchmarkMonitoredCall(b *testing.B) { benchMonitored(b, true) }

// BenchmarkMonitoredCallCPU is BenchmarkMonitoredCall with no socket
// writes (the legs have no remote address): the processing alone, which
// the send's cost and noise otherwise hide.
func BenchmarkMonitoredCallCPU(b *testing.B) { benchMonitored(b, false) }

func benchMonitored(b *testing.B, send bool) {
	for _, tc := range []struct {
		name  string
		mode  MonitorMode // 0: no monitor
		relay bool        // the relay path alone: no mix tick, no send to the monitor
	}{{"plain", 0, false}, {"listen-relay", MonitorListen, true}, {"listen", MonitorListen, false}, {"coach", MonitorCoach, false}} {
		b.Run(tc.name, func(b *testing.B) {
			r := newMonRig(b, true, MonitorListen)
			if !send {
				for _, ep := range []*media.Endpoint{r.callerEP, r.agentEP, r.mon.ep} {
					ep.SetRemote(netip.AddrPort{})
				}
			}
			if tc.mode == 0 {
				r.c.monitors.Store(nil)
			} else {
				r.mon.mode.Store(uint32(tc.mode))
			}
			buf := make([]int16, 160)
			var ph float64
			sine(buf, 1004, -20, &ph)
			pc, pa, ps := packet(1, 1, buf), packet(2, 1, buf), packet(3, 1, buf)
			rc, ra, rs := append([]byte(nil), pc.Raw...), append([]byte(nil), pa.Raw...), append([]byte(nil), ps.Raw...)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq, ts := uint16(i), uint32(i)*160
				copy(pc.Raw, rc)
				pc.Header.SequenceNumber, pc.Header.Timestamp, pc.Audio = seq, ts, nil
				r.c.pipe.Received(r.callerEP, pc)
				r.cb.HandleRTP(r.callerEP, pc)
				copy(pa.Raw, ra)
				pa.Header.SequenceNumber, pa.Header.Timestamp, pa.Audio = seq, ts, nil
				r.ab.HandleRTP(r.agentEP, pa)
				if tc.mode == MonitorCoach {
					copy(ps.Raw, rs)
					ps.Header.SequenceNumber, ps.Header.Timestamp, ps.Audio = seq, ts, nil
					r.mon.HandleRTP(r.mon.ep, ps)
				}
				if tc.relay {
					r.c.monHub.fromCaller.flush() // as a tick would take it
					r.c.monHub.fromAgent.flush()
					continue
				}
				r.c.monitorTick(now)
			}
		})
	}
}

// BenchmarkMonitorParts times the pieces monitoring adds, each alone and
// without sockets: "tap" is what the two bridges add per 20 ms (the
// caller's masked frame and the agent's decoded frame into their rings),
// "tick" the clock's mix and encode for one monitor, "voice" a coaching
// supervisor's frame into its ring and out into the agent's frame.
func BenchmarkMonitorParts(b *testing.B) {
	r := newMonRig(b, true, MonitorCoach)
	for _, ep := range []*media.Endpoint{r.callerEP, r.agentEP, r.mon.ep} {
		ep.SetRemote(netip.AddrPort{})
	}
	ms := r.c.monitors.Load()
	buf := make([]int16, 160)
	var ph float64
	sine(buf, 1004, -20, &ph)
	pc, pa := packet(1, 1, buf), packet(2, 1, buf)
	_, out := pc.Scratch()
	pc.Audio = out[:160]
	copy(pc.Audio, buf)
	frame := make([]int16, 160)
	now := time.Now()
	b.Run("tap", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ms.tapCaller(Normal, pc)
			pa.Audio = nil
			ms.tapAgent(Normal, r.agentEP, pa)
			ms.hub.fromCaller.flush()
			ms.hub.fromAgent.flush()
		}
	})
	b.Run("tick", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ms.hub.fromCaller.push(buf)
			ms.hub.fromAgent.push(buf)
			r.c.monitorTick(now)
		}
	})
	b.Run("voice", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.mon.toAgent.push(buf)
			copy(frame, buf)
			ms.mixVoices(Normal, frame, false)
		}
	})
}
