package media

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/rtp"
)

// fillRig is an endpoint on a memConn with a stopped clock the test ticks
// and a fake monotonic time that advances 20 ms per tick, so every step
// of a call is deterministic.
type fillRig struct {
	t     *testing.T
	e     *Endpoint
	conn  *memConn
	clock *Clock
	now   atomic.Int64
	sent  []sentHeader
	raw   [][]byte
}

func newFillRig(t *testing.T, codec audio.Codec) *fillRig {
	t.Helper()
	r := &fillRig{t: t, conn: newMemConn(256), clock: NewClock(0)}
	r.e = NewEndpoint(EndpointConfig{Conn: r.conn, Port: 40000, Codec: codec, EventPT: 101, Source: SourceAny,
		Remote: netip.MustParseAddrPort("127.0.0.1:40002"), Clock: r.clock})
	r.now.Store(int64(time.Second))
	r.e.fakeMono = r.now.Load
	t.Cleanup(func() { _ = r.e.Close() })
	return r
}

// tick advances time by 20 ms and ticks the clock; want is how many
// packets the tick must make the endpoint send (collected in r.sent).
func (r *fillRig) tick(want int) {
	r.t.Helper()
	r.now.Add(int64(20 * time.Millisecond))
	r.clock.Tick(time.Unix(0, r.now.Load()))
	r.collect(want)
}

// collect waits for n packets (each at most a second).
func (r *fillRig) collect(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		select {
		case d := <-r.conn.out:
			r.sent = append(r.sent, parseSent(r.t, d.b))
			r.raw = append(r.raw, d.b)
		case <-time.After(time.Second):
			r.t.Fatalf("packet %d of %d not sent (sent so far %d)", i+1, n, len(r.sent))
		}
	}
	select {
	case d := <-r.conn.out:
		r.t.Fatalf("one packet more than the %d expected: %+v", n, parseSent(r.t, d.b))
	case <-time.After(2 * time.Millisecond):
	}
}

// play plays frames 20 ms frames, one per tick, and waits for Play to
// return.
func (r *fillRig) play(frames int) {
	r.t.Helper()
	p := NewPromptPCM("p", sinePCM(frames*audio.SamplesPerFrame, 440))
	done := make(chan error, 1)
	subs := r.clock.Subscribers()
	go func() { done <- r.e.Play(context.Background(), p) }()
	waitFor(r.t, "Play to subscribe", func() bool { return r.clock.Subscribers() == subs+1 })
	for range frames {
		r.tick(1)
	}
	if err := <-done; err != nil {
		r.t.Fatal(err)
	}
}

// forward forwards a packet of a source stream.
func (r *fillRig) forward(seq uint16, ts, ssrc uint32) {
	r.t.Helper()
	raw := rtpPacket(0, seq, ts, ssrc, false, make([]byte, 160))
	var h rtp.Header
	if _, err := h.Unmarshal(raw); err != nil {
		r.t.Fatal(err)
	}
	p := &Packet{Header: h, Raw: raw, Payload: raw[12:]}
	if err := r.e.Forward(p); err != nil {
		r.t.Fatal(err)
	}
}

// TestTimestampsAcrossTransitions drives one leg through a call's media
// sources — filler after the answer, a prompt, filler, a bridge, the
// bridged peer falling silent, the bridge again, a looped hold prompt,
// the bridge once more — and checks what the receiver sees: the sequence
// number +1 and the timestamp +160 (the samples sent) from each packet to
// the next, the marker bit and a timestamp jump only where nothing was
// sent for a while (the silent peer), never at a change of source.
func TestTimestampsAcrossTransitions(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMU())
	r.e.StartFill()
	r.tick(1) // answered: filler at once
	r.tick(1)
	r.play(3) // prompt, straight after filler
	r.tick(1) // filler at the first tick after the prompt
	r.tick(1)
	// Bridge: forwarded packets displace the filler; the ticks between
	// them send nothing.
	const src = 0xabc
	seq, ts := uint16(5000), uint32(90000)
	for range 3 {
		r.forward(seq, ts, src)
		r.collect(1)
		r.tick(0)
		seq, ts = seq+1, ts+160
	}
	// The peer falls silent: fillAfterTicks ticks later the filler
	// fills the gap (marker, timestamp moved on by the silence).
	for range fillAfterTicks - 1 {
		r.tick(0)
	}
	silentAt := len(r.sent)
	r.tick(1)
	r.tick(1)
	// The peer is back (its own clock ran on meanwhile).
	seq, ts = seq+7, ts+7*160
	for range 2 {
		r.forward(seq, ts, src)
		r.collect(1)
		r.tick(0)
		seq, ts = seq+1, ts+160
	}
	// Hold: the hold prompt looped twice, back to back, as hold.go does.
	r.play(2)
	r.play(2)
	// Bridge again.
	seq, ts = seq+200, ts+200*160
	for range 2 {
		r.forward(seq, ts, src)
		r.collect(1)
		r.tick(0)
		seq, ts = seq+1, ts+160
	}

	s := r.sent
	if len(s) != 2+3+2+3+2+2+4+2 {
		t.Fatalf("%d packets sent", len(s))
	}
	for i := 1; i < len(s); i++ {
		if s[i].ssrc != s[0].ssrc {
			t.Errorf("packet %d: SSRC %#x, stream's %#x", i, s[i].ssrc, s[0].ssrc)
		}
		if s[i].seq != s[i-1].seq+1 {
			t.Errorf("packet %d: seq %d after %d", i, s[i].seq, s[i-1].seq)
		}
		step, marker := uint32(160), false
		if i == silentAt {
			// The last forwarded packet covered the first silent tick.
			step, marker = 160*fillAfterTicks, true
		}
		if d := s[i].ts - s[i-1].ts; d != step {
			t.Errorf("packet %d: timestamp +%d, want +%d", i, d, step)
		}
		if s[i].marker != marker {
			t.Errorf("packet %d: marker %v, want %v", i, s[i].marker, marker)
		}
		if s[i].pt != 0 {
			t.Errorf("packet %d: payload type %d", i, s[i].pt)
		}
	}
	if s[0].marker {
		t.Error("first packet (filler) has the marker bit")
	}
	st := r.e.Stats()
	if st.TxFill != 2+2+2 || st.TxPackets != uint64(len(s)) {
		t.Errorf("TxFill %d TxPackets %d, want 6 and %d", st.TxFill, st.TxPackets, len(s))
	}
	// The G.711 filler is low-level noise, not the silence codeword.
	var distinct [256]bool
	n := 0
	for _, b := range r.raw[0][12:] {
		if !distinct[b] {
			distinct[b] = true
			n++
		}
	}
	if len(r.raw[0]) != 172 || n < 2 {
		t.Errorf("filler payload %d bytes with %d distinct codes, want 160 bytes of noise", len(r.raw[0])-12, n)
	}
}

// TestFillComfortNoise: with CN negotiated (RFC 3389, PT 13) the filler
// sends CN packets, one per tick, their timestamps 160 apart like audio,
// and the prompt after them continues the stream.
func TestFillComfortNoise(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMA())
	r.e.SetComfortNoise(13)
	r.e.StartFill()
	r.tick(1)
	r.tick(1)
	r.play(1)
	r.tick(1)
	for i, h := range r.sent {
		wantPT, wantLen := uint8(13), 13
		if i == 2 {
			wantPT, wantLen = audio.PayloadTypePCMA, 172
		}
		if h.pt != wantPT || len(r.raw[i]) != wantLen {
			t.Errorf("packet %d: pt %d, %d bytes; want pt %d, %d bytes", i, h.pt, len(r.raw[i]), wantPT, wantLen)
		}
		if wantPT == 13 && r.raw[i][12] != cnLevel {
			t.Errorf("packet %d: CN level %d, want %d", i, r.raw[i][12], cnLevel)
		}
		if i > 0 && (h.ts-r.sent[i-1].ts != 160 || h.seq != r.sent[i-1].seq+1 || h.marker) {
			t.Errorf("packet %d: ts +%d seq +%d marker %v", i, h.ts-r.sent[i-1].ts, h.seq-r.sent[i-1].seq, h.marker)
		}
	}
}

// TestFillerNeverDisplacesForwarding: a forwarded stream whose packets
// arrive late (up to fillAfterTicks-1 ticks) or bunched gets no filler
// between them.
func TestFillerNeverDisplacesForwarding(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMU())
	r.e.StartFill()
	r.tick(1)
	seq, ts := uint16(1), uint32(1000)
	for i := range 20 {
		r.forward(seq, ts, 7)
		r.collect(1)
		seq, ts = seq+1, ts+160
		for range i % fillAfterTicks { // late by up to fillAfterTicks-1 ticks
			r.tick(0)
		}
	}
	if f := r.e.Stats().TxFill; f != 1 {
		t.Errorf("%d filler packets, want only the one before the bridge", f)
	}
}

// TestForwardAudioKeepsSourceTiming: transcoded or masked audio
// (ForwardAudio) takes its source's timestamps, so a source gap (a key
// press whose RFC 4733 packets were dropped) stays a gap, and after
// generated packets the source is anchored on our stream again.
func TestForwardAudioKeepsSourceTiming(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMU())
	payload := make([]byte, 160)
	send := func(seq uint16, ts uint32, marker bool) {
		t.Helper()
		h := rtp.Header{SequenceNumber: seq, Timestamp: ts, SSRC: 9, Marker: marker}
		if err := r.e.ForwardAudio(payload, 160, &h); err != nil {
			t.Fatal(err)
		}
		r.collect(1)
	}
	send(100, 5000, false)
	send(101, 5160, false)
	send(102, 5000+160*12, false) // 10 frames of key press in between
	send(103, 5000+160*13, true)  // the source's own talkspurt mark passes
	if err := r.e.WriteAudio(payload, 160, false); err != nil {
		t.Fatal(err)
	}
	r.collect(1)
	send(104, 5000+160*14, false) // anchored again: continues our stream
	s := r.sent
	wantTS := []uint32{160, 160 * 11, 160, 160, 160}
	wantMarker := []bool{false, false, true, false, false}
	for i := 1; i < len(s); i++ {
		if d := s[i].ts - s[i-1].ts; d != wantTS[i-1] || s[i].seq != s[i-1].seq+1 || s[i].marker != wantMarker[i-1] {
			t.Errorf("packet %d: ts +%d seq +%d marker %v; want ts +%d seq +1 marker %v",
				i, d, s[i].seq-s[i-1].seq, s[i].marker, wantTS[i-1], wantMarker[i-1])
		}
	}
	if !s[0].marker {
		t.Error("the stream's first packet has no marker bit")
	}
}

// TestForwardAfterSilenceMovesTimestampOn: a forwarded source anchored
// after a silence (nothing sent, no filler) gets a timestamp moved on by
// the silence and the marker bit; one anchored without a gap neither.
func TestForwardAfterSilenceMovesTimestampOn(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMU())
	r.forward(1, 100, 1)
	r.collect(1)
	r.now.Add(int64(time.Second)) // a second of silence
	r.forward(50, 7000, 2)        // a new source
	r.collect(1)
	r.now.Add(int64(20 * time.Millisecond))
	r.forward(900, 123456, 3) // another, straight after
	r.collect(1)
	s := r.sent
	if d := s[1].ts - s[0].ts; d != 8000 || !s[1].marker {
		t.Errorf("after 1 s of silence: ts +%d marker %v, want +8000 (whole frames) and the marker", d, s[1].marker)
	}
	if d := s[2].ts - s[1].ts; d != 160 || s[2].marker {
		t.Errorf("new source without a gap: ts +%d marker %v, want +160 and no marker", d, s[2].marker)
	}
}

// TestFillTickAllocatesNothing: the filler's tick, sending or not, does
// not allocate.
func TestFillTickAllocatesNothing(t *testing.T) {
	for _, cn := range []uint8{0, 13} {
		c := newMemConn(0)
		c.copyOut = false
		clock := NewClock(0)
		e := NewEndpoint(EndpointConfig{Conn: c, Port: 40000, Codec: audio.CodecPCMU(), CNPT: cn,
			Remote: netip.MustParseAddrPort("127.0.0.1:40002"), Clock: clock})
		e.StartFill()
		now := time.Now()
		clock.Tick(now) // first use builds the noise tables
		if n := testing.AllocsPerRun(200, func() { clock.Tick(now) }); n != 0 {
			t.Errorf("CN pt %d: %.1f allocations per tick", cn, n)
		}
		if e.Stats().TxFill < 200 {
			t.Errorf("CN pt %d: %d filler packets for 201 ticks", cn, e.Stats().TxFill)
		}
		_ = e.Close()
		if clock.Subscribers() != 0 {
			t.Errorf("Close left %d clock subscribers", clock.Subscribers())
		}
	}
}

// TestFillAfterDroppedTicks: when the clock runs late and drops ticks
// while the filler owns the stream, the next filler packet's timestamp
// moves on by the frames nobody sent, with the marker bit.
func TestFillAfterDroppedTicks(t *testing.T) {
	r := newFillRig(t, audio.CodecPCMU())
	r.e.StartFill()
	r.tick(1)
	r.tick(1)
	r.now.Add(int64(40 * time.Millisecond)) // two ticks dropped
	r.tick(1)
	r.tick(1)
	s := r.sent
	want := []struct {
		step   uint32
		marker bool
	}{{160, false}, {3 * 160, true}, {160, false}}
	for i, w := range want {
		if d := s[i+1].ts - s[i].ts; d != w.step || s[i+1].marker != w.marker {
			t.Errorf("packet %d: ts +%d marker %v, want +%d %v", i+1, d, s[i+1].marker, w.step, w.marker)
		}
	}
}

// TestForwardPathsAllocateNothing: Forward and ForwardAudio, the bridge's
// two ways of sending, do not allocate per packet.
func TestForwardPathsAllocateNothing(t *testing.T) {
	c := newMemConn(0)
	c.copyOut = false
	e := NewEndpoint(EndpointConfig{Conn: c, Port: 40000, Codec: audio.CodecPCMU(), Remote: netip.MustParseAddrPort("127.0.0.1:40002")})
	defer e.Close()
	raw := rtpPacket(0, 1, 160, 5, false, make([]byte, 160))
	var h rtp.Header
	if _, err := h.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	p := &Packet{Header: h, Raw: raw, Payload: raw[12:]}
	payload := make([]byte, 160)
	if n := testing.AllocsPerRun(200, func() {
		p.Header.SequenceNumber++
		p.Header.Timestamp += 160
		_ = e.Forward(p)
		_ = e.ForwardAudio(payload, 160, &p.Header)
	}); n != 0 {
		t.Errorf("%.1f allocations per forwarded packet pair", n)
	}
}
