package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/dtmf"
	"golang.org/x/sys/unix"
)

// The media engine. Every call leg the tool plays (a caller, or an agent
// answering cloak) is a stream: an RTP sender at 50 packets/s and the
// receiver of what comes back to it. Streams share a few sockets (a group
// per socket, demultiplexed by the peer's port, as every peer is on
// loopback); each group has one reader goroutine, and a couple of pacer
// goroutines send for all groups from one shared clock, spreading the
// streams over the 20 ms frame in slots and sending each slot's packets
// with one sendmmsg per socket.
//
// Each audio payload starts with a stamp: the send time (unix ns) and the
// stream's audio sequence number, coded one nibble per byte as 0xA0|n.
// Those bytes survive a G.711 decode and re-encode (0x7F is the one µ-law
// byte that does not), so the stamp comes out of a transcoding relay or a
// DTMF masker unchanged, only later.

const (
	frame      = 20 * time.Millisecond
	samples    = 160 // per 20 ms frame at 8 kHz
	stampBytes = 24  // 12 bytes (8 of time, 4 of sequence) as nibbles
	hdrLen     = 12
	pktLen     = hdrLen + samples
	stampHi    = 0xA0
)

// putStamp writes the send time and audio sequence into p.
func putStamp(p []byte, sentNs int64, seq uint32) {
	var raw [12]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(sentNs))
	binary.BigEndian.PutUint32(raw[8:], seq)
	for i, b := range raw {
		p[2*i] = stampHi | b>>4
		p[2*i+1] = stampHi | b&0x0f
	}
}

// readStamp reads a stamp written by putStamp; ok is false when the
// payload does not carry one (masked, silence, a relay's own audio).
func readStamp(p []byte) (sentNs int64, seq uint32, ok bool) {
	if len(p) < stampBytes {
		return 0, 0, false
	}
	var raw [12]byte
	for i := range raw {
		hi, lo := p[2*i], p[2*i+1]
		if hi&0xf0 != stampHi || lo&0xf0 != stampHi {
			return 0, 0, false
		}
		raw[i] = (hi&0x0f)<<4 | lo&0x0f
	}
	return int64(binary.BigEndian.Uint64(raw[:8])), binary.BigEndian.Uint32(raw[8:]), true
}

// audioFrames is a second of a 425 Hz tone at about -20 dBm0 in PCMU,
// 50 frames, so the payload is real audio for the relay's DTMF detector
// (425 Hz is not a DTMF frequency).
var audioFrames = func() [][]byte {
	out := make([][]byte, 50)
	pcm := make([]int16, samples)
	for f := range out {
		for i := range pcm {
			t := float64(f*samples+i) / 8000
			pcm[i] = int16(2300 * math.Sin(2*math.Pi*425*t))
		}
		out[f] = audio.CodecPCMU().Encode(pcm, nil)
	}
	return out
}()

// stream is one leg's RTP: what it sends and what it receives.
type stream struct {
	id    int
	slot  int
	group *group
	dst   netip.AddrPort
	sa    unix.RawSockaddrInet4

	// Sender state, touched only by the pacer that owns the group.
	buf      [pktLen]byte
	evBuf    [hdrLen + 4]byte
	seq      uint16
	ts       uint32
	ssrc     uint32
	audioSeq uint32
	frames   uint64
	eventPT  uint8
	digits   []pendingEvent
	evStart  uint32
	toneOn   bool
	evSent   uint64
	sent     atomic.Uint64 // packets handed to the kernel
	stopped  atomic.Bool
	// srtp is the stream's SRTP with -srtp (srtp.go); nil: plain RTP.
	srtp *srtpState

	// Receiver state, touched only by the group's reader.
	rx        uint64 // stamped audio packets
	rxEvents  uint64 // telephone-event packets
	rxOther   uint64 // audio without a stamp (masked, silence)
	rxOtherIn uint64 // of those, after the first stamped one
	hdrLast   int64  // extended RTP sequence numbers of the relay's stream
	hdrBase   int64
	hdrMax    int64
	hdrCount  uint64
	haveSeq   bool
	minSeq    uint32
	maxSeq    uint32
	jitter    float64 // RFC 3550 A.8, in timestamp units
	lastTrans float64
	haveTrans bool
	maxJitter float64
	// The RFC 3550 jitter above, taken apart (see onReceive): relayJit
	// is the same estimator over arrival − send time (what the relay and
	// the network add), paceJit over send time − the sender's nominal
	// frame time (what our own pacing adds), and tsJumps counts stamped
	// frames whose relay timestamp moved against the frame's number
	// (timestamps the relay did not carry over from the source).
	relayJit, lastRelay float64
	paceJit, lastPace   float64
	lastOff             uint32
	haveParts           bool
	tsJumps             uint64
	// The three jitters as they stood at the stream's last packet in the
	// measured window (win set): the values at the end of the run (the
	// fields above) include the teardown, when every call hangs up at
	// once and the relay closes its recordings, which the window's
	// latency does not.
	winJitter, winRelay, winPace float64
	win                          bool
	firstRxAt                    int64
	lastRxAt                     int64
	dupOrLate                    uint64
	lastSeqSet                   bool
	lastSeq                      uint32

	// With -delay-line: the arrival time of the last stamped frames by
	// audio sequence, so that when frame q arrives (carrying its send
	// time), the frame q-delayFrames it released from the relay's delay
	// line can be timed from q's send.
	delayFrames uint32
	arrAt       [arrivalRing]int64
	arrSeq      [arrivalRing]uint32
}

// arrivalRing is how many recent arrivals a stream keeps for -delay-line,
// so the longest delay line it can time is arrivalRing-1 frames.
const arrivalRing = 8

// pendingEvent is one RFC 4733 packet waiting for its frame.
type pendingEvent struct {
	frame uint64 // send in this frame number
	p     dtmf.Packet
	last  bool // the digit's last packet
}

func newStream(id int, g *group, dst netip.AddrPort, eventPT uint8, slots int) *stream {
	s := &stream{id: id, slot: id % slots, group: g, dst: dst, sa: sockaddr4(dst), eventPT: eventPT,
		ssrc: 0x10000 + uint32(id), seq: uint16(id * 7919), ts: uint32(id) * 1601}
	s.buf[0] = 0x80
	binary.BigEndian.PutUint32(s.buf[8:], s.ssrc)
	s.evBuf[0] = 0x80
	binary.BigEndian.PutUint32(s.evBuf[8:], s.ssrc)
	return s
}

// keyDigits schedules RFC 4733 events starting at frame from (counted in
// frames this stream has sent); audio is not sent while a digit is on, as
// a phone does. Packets due in the same frame (the repeated end packets)
// go out in consecutive frames.
func (s *stream) keyDigits(enc *dtmf.Encoder, digits string, from uint64) {
	at := from
	for i := 0; i < len(digits); i++ {
		pkts, err := enc.Append(nil, digits[i], 0)
		if err != nil {
			continue
		}
		f := at
		for j, p := range pkts {
			f = max(f, at+uint64(p.SendAt/frame))
			s.digits = append(s.digits, pendingEvent{frame: f, p: p, last: j == len(pkts)-1})
			f++
		}
		at = f + 5 // 100 ms between digits
	}
}

// next returns the packet to send for this frame, or nil when the frame
// carries nothing (a digit is on with no event update due). sentNs goes
// into the audio stamp.
func (s *stream) next(sentNs int64) []byte {
	f := s.frames
	s.frames++
	s.ts += samples
	if len(s.digits) > 0 && s.digits[0].frame <= f {
		ev := s.digits[0]
		s.digits = s.digits[1:]
		if ev.p.Marker {
			s.evStart, s.toneOn = s.ts, true
		}
		if ev.last {
			s.toneOn = false
		}
		s.seq++
		s.evSent++
		b := s.evBuf[:]
		b[1] = s.eventPT & 0x7f
		if ev.p.Marker {
			b[1] |= 0x80
		}
		binary.BigEndian.PutUint16(b[2:], s.seq)
		binary.BigEndian.PutUint32(b[4:], s.evStart)
		copy(b[hdrLen:], ev.p.Payload[:])
		return b
	}
	if s.toneOn {
		return nil
	}
	s.seq++
	s.audioSeq++
	b := s.buf[:]
	b[1] = 0 // PCMU
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	copy(b[hdrLen:], audioFrames[f%uint64(len(audioFrames))])
	putStamp(b[hdrLen:], sentNs, s.audioSeq)
	return b
}

// onReceive accounts one datagram addressed to this stream.
func (s *stream) onReceive(at int64, pt uint8, hdrSeq uint16, rtpTS uint32, payload []byte, h, th *hist) {
	if s.firstRxAt == 0 {
		s.firstRxAt = at
	}
	s.lastRxAt = at
	s.trackHeaderSeq(hdrSeq)
	if pt == s.eventPT && pt != 0 {
		s.rxEvents++
		return
	}
	sentNs, seq, ok := readStamp(payload)
	if !ok {
		s.rxOther++
		if s.haveSeq {
			s.rxOtherIn++
		}
		return
	}
	s.rx++
	if !s.haveSeq {
		s.haveSeq, s.minSeq, s.maxSeq = true, seq, seq
	} else {
		if seq < s.minSeq {
			s.minSeq = seq
		}
		if seq > s.maxSeq {
			s.maxSeq = seq
		}
	}
	if s.lastSeqSet && seq <= s.lastSeq {
		s.dupOrLate++
	}
	s.lastSeqSet, s.lastSeq = true, seq
	if h != nil {
		h.add(at - sentNs)
		h.noteLate(at, sentNs, s.id)
	}
	if d := s.delayFrames; d > 0 {
		// A frame leaves the delay line when the frame d later reaches
		// the relay, so it cannot arrive before that frame was sent.
		if j := (seq - d) % arrivalRing; seq > d && s.arrSeq[j] == seq-d && th != nil {
			th.add(s.arrAt[j] - sentNs)
		}
		s.arrAt[seq%arrivalRing], s.arrSeq[seq%arrivalRing] = at, seq
	}
	s.jitterParts(at, sentNs, seq, rtpTS, h != nil)
	// RFC 3550 A.8: transit = arrival (in timestamp units) - RTP timestamp;
	// J += (|D| - J) / 16.
	arrival := float64(at) * 8000 / 1e9
	transit := arrival - float64(rtpTS)
	if s.haveTrans {
		d := math.Abs(transit - s.lastTrans)
		if d < 8000*10 { // a relay restarting its timestamps is not jitter
			s.jitter += (d - s.jitter) / 16
			if s.jitter > s.maxJitter {
				s.maxJitter = s.jitter
			}
		}
	}
	s.lastTrans, s.haveTrans = transit, true
	if h != nil {
		s.winJitter, s.winRelay, s.winPace, s.win = s.jitter, s.relayJit, s.paceJit, true
	}
}

// jitterParts takes a receiver's RFC 3550 jitter apart for one stamped
// frame: with transit = arrival − RTP timestamp, a change in transit is
// a change in (arrival − send) — the relay and the network — plus in
// (send − the frame's nominal time) — our sender's pacing — plus in
// (nominal time − RTP timestamp) — the relay's timestamps. The first two
// get the same estimator (J += (|D| − J)/16); the third must be constant
// for a relay that carries timestamps over, and each change of it is
// counted in tsJumps. The nominal time of audio frame seq is seq frames
// (160 units each) from the stream's start: exact on a stream that keys
// no digits (agent→caller); on one that does, the frames of each digit
// show as one jump of pacing and of the offset.
func (s *stream) jitterParts(at, sentNs int64, seq, rtpTS uint32, measuring bool) {
	relay := float64(at-sentNs) * 8000 / 1e9
	pace := float64(sentNs)*8000/1e9 - float64(seq)*samples
	off := rtpTS - seq*samples
	if s.haveParts {
		if d := math.Abs(relay - s.lastRelay); d < 8000*10 {
			s.relayJit += (d - s.relayJit) / 16
		}
		if d := math.Abs(pace - s.lastPace); d < 8000*10 {
			s.paceJit += (d - s.paceJit) / 16
		}
		if off != s.lastOff && measuring {
			s.tsJumps++
		}
	}
	s.lastRelay, s.lastPace, s.lastOff, s.haveParts = relay, pace, off, true
}

// trackHeaderSeq follows the relay's own RTP sequence numbers, extended
// over wraps (RFC 3550 A.1), to count gaps in what it sent.
func (s *stream) trackHeaderSeq(seq uint16) {
	s.hdrCount++
	if s.hdrCount == 1 {
		s.hdrLast, s.hdrBase, s.hdrMax = int64(seq), int64(seq), int64(seq)
		return
	}
	ext := s.hdrLast + int64(int16(seq-uint16(s.hdrLast)))
	s.hdrLast = max(s.hdrLast, ext)
	s.hdrBase = min(s.hdrBase, ext)
	s.hdrMax = max(s.hdrMax, ext)
}

// headerGaps is RFC 3550's cumulative loss over the relay's sequence
// numbers: highest - first + 1 - received.
func (s *stream) headerGaps() uint64 {
	if s.hdrCount == 0 {
		return 0
	}
	exp := uint64(s.hdrMax-s.hdrBase) + 1
	if s.hdrCount >= exp {
		return 0
	}
	return exp - s.hdrCount
}

// lost counts our audio frames that never came out of the relay, over the
// range of stamps received (first to last, so the edges of the call do
// not count): expected minus stamped frames received minus audio packets
// that came out without a stamp (a masker's silence replaces a frame one
// for one, so it is delivered, not lost).
func (s *stream) lost() (expected, lost uint64) {
	if !s.haveSeq {
		return 0, 0
	}
	expected = uint64(s.maxSeq-s.minSeq) + 1
	got := s.rx - s.dupOrLate + s.rxOtherIn
	if got > expected {
		return expected, 0
	}
	return expected, expected - got
}

// group is one socket and the streams on it.
type group struct {
	name string
	conn *batchConn
	dir  string // what its streams receive: "caller->agent" at the agent side

	mu     sync.Mutex
	active []*stream
	all    []*stream
	byPort [65536]atomic.Pointer[stream]

	// sender scratch, used by the owning pacer only
	pkts [][]byte
	dsts []*unix.RawSockaddrInet4

	rx        atomic.Uint64 // RTP packets received for a stream (audio, events, silence)
	rxAll     atomic.Uint64 // every datagram received
	stray     atomic.Uint64 // from a port no stream sends to
	srtpFail  atomic.Uint64 // -srtp: failed to unprotect (RFC 3711 §3.3), dropped
	txErrs    atomic.Uint64
	measuring *atomic.Bool
	hist      hist // filled while measuring; read after the reader stops
	trig      hist // -delay-line: latency from the releasing frame's send
}

func (g *group) add(s *stream) {
	g.mu.Lock()
	g.active = append(g.active, s)
	g.all = append(g.all, s)
	g.byPort[s.dst.Port()].Store(s)
	g.mu.Unlock()
}

// remove stops sending for s; packets still in flight to it are counted.
func (g *group) remove(s *stream) {
	s.stopped.Store(true)
	g.mu.Lock()
	for i, x := range g.active {
		if x == s {
			g.active = append(g.active[:i], g.active[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
}

// sendSlot sends one frame for each active stream in slot.
func (g *group) sendSlot(slot int) {
	now := time.Now().UnixNano()
	g.mu.Lock()
	g.pkts, g.dsts = g.pkts[:0], g.dsts[:0]
	for _, s := range g.active {
		if s.slot != slot {
			continue
		}
		if p := s.next(now); p != nil {
			var err error
			if p, err = s.protect(p); err != nil {
				g.txErrs.Add(1)
				continue
			}
			g.pkts = append(g.pkts, p)
			g.dsts = append(g.dsts, &s.sa)
			s.sent.Add(1)
		}
	}
	g.mu.Unlock()
	if len(g.pkts) == 0 {
		return
	}
	n, err := g.conn.writeBatch(g.pkts, g.dsts)
	if err != nil || n < len(g.pkts) {
		g.txErrs.Add(uint64(len(g.pkts) - n))
	}
}

// read runs until the socket is closed.
func (g *group) read() {
	buf := make([]received, 0, maxBatch)
	for {
		var err error
		buf, err = g.conn.readBatch(buf)
		if err != nil {
			return
		}
		measuring := g.measuring.Load()
		for _, r := range buf {
			g.rxAll.Add(1)
			d, ok := r.data, true
			if len(d) < hdrLen || d[0]>>6 != 2 {
				continue
			}
			s := g.byPort[r.from].Load()
			if s == nil {
				g.stray.Add(1)
				continue
			}
			if d, ok = s.unprotect(d); !ok {
				g.srtpFail.Add(1)
				continue
			}
			off := hdrLen + 4*int(d[0]&0x0f)
			if d[0]&0x10 != 0 && len(d) >= off+4 {
				off += 4 + 4*int(binary.BigEndian.Uint16(d[off+2:]))
			}
			if off > len(d) {
				continue
			}
			var h, th *hist
			if measuring {
				h, th = &g.hist, &g.trig
			}
			s.onReceive(r.at, d[1]&0x7f, binary.BigEndian.Uint16(d[2:]), binary.BigEndian.Uint32(d[4:]), d[off:], h, th)
			g.rx.Add(1)
		}
	}
}

// pacer sends for its groups on the shared clock: the 20 ms frame is cut
// into slots, and each tick sends the slots that are due (catching up
// when a tick is late, so the rate stays at 50 packets/s per stream).
func pacer(groups []*group, slots int, stop <-chan struct{}, done func()) {
	defer done()
	slotDur := frame / time.Duration(slots)
	t := time.NewTicker(slotDur)
	defer t.Stop()
	start := time.Now()
	var k int64
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			for due := start.Add(time.Duration(k) * slotDur); !due.After(now); due = start.Add(time.Duration(k) * slotDur) {
				slot := int(k % int64(slots))
				for _, g := range groups {
					g.sendSlot(slot)
				}
				k++
			}
		}
	}
}

// hist is a latency histogram: 10 µs buckets to 100 ms, then 1 ms buckets
// to 2.1 s.
type hist struct {
	b   [12000]uint64
	n   uint64
	sum float64
	max int64

	// With -late: the packets later than lateOver (ns), at most maxLate
	// of them per group. Not merged: writeLate reads each group's.
	lateOver int64
	late     []latePacket
}

// latePacket is one line of the -late log.
type latePacket struct {
	at, sent int64 // arrival (kernel timestamp) and send time, unix ns
	stream   int
}

const maxLate = 1 << 20

func (h *hist) noteLate(at, sent int64, stream int) {
	if h.lateOver > 0 && at-sent > h.lateOver && len(h.late) < maxLate {
		h.late = append(h.late, latePacket{at, sent, stream})
	}
}

// writeLate writes every group's late packets to path, oldest send
// first: arrival and send time (unix ns), latency (µs), stream, and the
// direction the stream receives.
func writeLate(path string, e *engine) error {
	type row struct {
		latePacket
		dir string
	}
	var rows []row
	for _, g := range append(append([]*group(nil), e.callers...), e.agents...) {
		for _, l := range g.hist.late {
			rows = append(rows, row{l, g.dir})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].sent < rows[j].sent })
	var b strings.Builder
	b.WriteString("arrival_unix_ns\tsent_unix_ns\tlatency_us\tstream\tdirection\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%d\t%d\t%d\t%d\t%s\n", r.at, r.sent, (r.at-r.sent)/1000, r.stream, r.dir)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("-late: %w", err)
	}
	return nil
}

func (h *hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	us := ns / 1000
	var i int64
	if us < 100000 {
		i = us / 10
	} else {
		i = min(10000+(us-100000)/1000, int64(len(h.b)-1))
	}
	h.b[i]++
	h.n++
	h.sum += float64(ns)
	if ns > h.max {
		h.max = ns
	}
}

func (h *hist) merge(o *hist) {
	for i := range h.b {
		h.b[i] += o.b[i]
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the upper edge of the bucket holding quantile q, in ms.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	var c uint64
	for i, v := range h.b {
		c += v
		if c >= want {
			if i < 10000 {
				return float64(i+1) * 0.01
			}
			return 100 + float64(i-10000+1)
		}
	}
	return float64(h.max) / 1e6
}

func (h *hist) quantiles() quantiles {
	return quantiles{N: int(h.n), Mean: h.meanMs(), P50: h.quantile(0.5), P95: h.quantile(0.95), P99: h.quantile(0.99), Max: float64(h.max) / 1e6}
}

func (h *hist) meanMs() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n) / 1e6
}

// percentile of a slice of float64 (sorted in place).
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}
