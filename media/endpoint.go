package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/rs/zerolog"
)

// readBufSize bounds one datagram. RTP audio is far smaller; anything
// larger is not media cloak handles.
const readBufSize = 4096

// sendBufSize bounds a packet the endpoint builds itself (WriteAudio,
// WriteEvent): the largest UDP payload an Ethernet MTU carries unfragmented
// (1500 bytes less the IPv4 and UDP headers). 60 ms of G.711 is 492 bytes
// with its header. Forward sends the received datagram in place and has
// no such bound. The buffer is part of every Endpoint, so its size is
// memory per call: at 4096 bytes it was half of a bridged call's two legs.
const sendBufSize = 1472

// EndpointConfig configures an Endpoint.
type EndpointConfig struct {
	// Conn is the leg's socket. A *net.UDPConn (as PortPool.Open returns)
	// takes the allocation-free path; other PacketConns work but may
	// allocate an address per packet unless they also implement
	// ReadFromUDPAddrPort and WriteToUDPAddrPort.
	Conn net.PacketConn
	// Port is Conn's local port, released to Pool on Close; 0 takes it
	// from Conn.LocalAddr.
	Port int
	// Pool, when not nil, gets Port back on Close.
	Pool *PortPool
	// Remote is the peer's address from SDP; it may be zero until known
	// (late offer). See SetRemote and latching in the package doc.
	Remote netip.AddrPort
	// Source says which sources packets are accepted from; the zero
	// value is SourceStrict (only Remote). See SourcePolicy.
	Source SourcePolicy
	// LearnPackets is the run SourceLearn needs before it accepts a new
	// source; 0 means DefaultLearnPackets.
	LearnPackets int
	// Codec is the negotiated audio codec.
	Codec audio.Codec
	// EventPT is the negotiated telephone-event payload type (RFC 4733);
	// 0 means not negotiated.
	EventPT uint8
	// CNPT is the negotiated RFC 3389 comfort-noise payload type (13 for
	// CN/8000, RFC 3551 §6); 0 means not negotiated: the filler then
	// sends G.711 noise.
	CNPT uint8
	// Clock paces Play and stamps LastReceived; nil disables Play and
	// makes LastReceived use time.Now.
	Clock *Clock
	// Log receives lifecycle lines only (never one per packet).
	Log zerolog.Logger
	// RTCP turns RTCP on (RFC 3550 §6; see rtcp.go): reports sent every
	// RTCPInterval (0: DefaultRTCPInterval) off Clock, received on the
	// RTP socket when muxed (SetRTCP) and on RTCPConn.
	RTCP bool
	// RTCPInterval is the mean interval between our reports.
	RTCPInterval time.Duration
	// MaxStaleness drops received audio older than this when the reader
	// gets it, judged by its RTP timestamp against the stream's recent
	// best transit (stale.go), counted in Stats.DroppedStale; 0 (or
	// negative) keeps every packet. cloak's configuration sets
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// RTCPConn is the socket of RTP's port + 1 (PortPool.OpenPair); nil
	// means RTCP only muxed on the RTP port (RFC 5761). Closed by Close.
	RTCPConn net.PacketConn
}

// Endpoint is one RTP leg: a socket, its read loop, and our outgoing stream
// (own SSRC, sequence, timestamp). All methods are safe for concurrent use.
type Endpoint struct {
	// What every packet reads, in one cache line written only when the
	// leg is set up (see hotPad): at a few hundred calls a leg's state has
	// left the CPU caches by its next packet, and each line a packet
	// touches is a miss (docs/PERFORMANCE.md). The receive side's and the
	// transmit side's per-packet writes follow in lines of their own: the
	// two directions of a call are served by different workers.
	conf     atomic.Pointer[legConf]    // handler, monitor, codec: swapped whole
	pconn    *polledConn                // non-nil: a Poller reads the socket (no read goroutine)
	latch    atomic.Pointer[latchState] // latched source, if any
	latchGen atomic.Uint64              // bumped by SetRemote
	// connGen is latchGen+1 while the polled socket is connected to the
	// source latched under latchGen, else 0: a send that finds it current
	// needs no address, so reads neither the latch nor the socket's peer
	// (two objects, two misses).
	connGen atomic.Uint64
	dir     atomic.Uint32
	playing atomic.Bool
	closed  atomic.Bool
	pfd     int32 // pconn's descriptor, for the connected send; -1 without one
	_       [hotPad]byte

	// Transmit side, written per packet by the goroutine sending (under
	// txMu), in the second line; its packet buffer follows.
	txMu               sync.Mutex // serialises writers of our outgoing stream
	txPackets, txBytes atomic.Uint64
	tx                 Rewriter
	lastTx             int64  // nanotime() of the last packet sent; 0 none
	lastTxSz           uint32 // its duration in samples
	txSRTP             bool   // SRTP on: sendLocked protects (srtp.go); under txMu
	_                  [txPad]byte
	txBuf              [sendBufSize]byte

	// Receive side, written per packet by the reader (read loop or poll
	// worker): lastRx and rx fill a line, the counters start the next.
	lastRx atomic.Int64 // unix ns of last accepted packet
	rx     rxState      // owned by the reader
	// srtp is the leg's SRTP (srtp.go), nil on a plain leg: at the head
	// of the line the reader writes per packet anyway (the counters).
	srtp  atomic.Pointer[srtpState]
	stats counters
	rxq   rxQuality  // the peer's stream's figures; written by the reader
	rtcp  *rtcpState // nil: RTCP off

	sdp     atomic.Pointer[netip.AddrPort] // remote from SDP
	conn    net.PacketConn
	pollW   *pollWorker // the worker pconn is registered with, once started
	fastR   udpAddrPortReader
	fastW   udpAddrPortWriter
	port    int
	pool    *PortPool
	source  SourcePolicy
	learnN  uint16     // SourceLearn's run length
	learn   learnState // SourceLearn's candidate; owned by the reader
	clock   *Clock
	log     zerolog.Logger
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the read loop exits (or the poller let go)

	maxStale time.Duration // EndpointConfig.MaxStaleness; 0 off (stale.go)

	confMu    sync.Mutex // serialises the writers of conf
	startMu   sync.Mutex
	started   bool
	closeOnce sync.Once
	closeErr  error

	fill     fillState    // the filler (fill.go), driven by the clock
	fakeMono func() int64 // tests: the transmit side's monotonic time; nil: nanotime
}

// hotPad and txPad end the Endpoint's first two cache lines on 64-bit
// platforms. The Go allocator puts an 8-byte header before an object of
// more than 512 bytes that holds pointers, in a slot whose size class is
// a multiple of 64 bytes for an Endpoint, so its lines start at offsets
// 56, 120, ... (TestEndpointLayout checks this on allocated endpoints).
// sendBufSize is a whole number of lines, so the receive side starts on a
// line too.
const (
	mallocHeader = 8
	hotPad       = 64 - mallocHeader - (5*8 + 4*4) // five words, three 32-bit atomics, pfd
	txPad        = 64 - (3*8 + 24 + 8 + 4 + 1)     // mutex, two counters, Rewriter, lastTx, lastTxSz, txSRTP
)

// legConf is what the hot path reads of a leg's setup (handler, monitor,
// codec), in one immutable object of one cache line that the setters
// replace whole under confMu: a packet loads one pointer and one line,
// where three objects cost three misses.
type legConf struct {
	handler Handler
	monitor Monitor
	codec   audio.Codec
	eventPT uint8
	cnPT    uint8 // RFC 3389 comfort noise's payload type; 0: not negotiated
}

// setConf replaces the leg's conf with a copy changed by f.
func (e *Endpoint) setConf(f func(*legConf)) {
	e.confMu.Lock()
	defer e.confMu.Unlock()
	c := new(legConf)
	if old := e.conf.Load(); old != nil {
		*c = *old
	}
	f(c)
	e.conf.Store(c)
}

// Monitor observes a leg's traffic for recording and capture. Received
// sees every packet accepted for delivery, before the Handler (which may
// rewrite it); Sent sees every packet written to the socket, which went
// to e.Remote(). Both run on the hot path, the read goroutine or a writer
// holding the transmit lock: they must not block, must not keep the
// slices, and must not call the endpoint's writing methods.
type Monitor interface {
	Received(e *Endpoint, p *Packet)
	Sent(e *Endpoint, s SentPacket)
}

// SentPacket is a packet a leg sent, as its Monitor sees it.
type SentPacket struct {
	// Raw is the whole RTP datagram, header included.
	Raw []byte
	// Payload is its payload (within Raw), without header or padding.
	Payload []byte
	// IsEvent is true for the telephone-event payload type (RFC 4733).
	IsEvent bool
	// ComfortNoise is true for an RFC 3389 comfort-noise packet of our
	// filler: Payload is its noise-level byte, and it stands for 20 ms
	// of (near) silence; a recorder writes SilenceFrame for it.
	ComfortNoise bool
}

// SetMonitor installs the monitor (an atomic swap); nil removes it.
func (e *Endpoint) SetMonitor(m Monitor) { e.setConf(func(c *legConf) { c.monitor = m }) }

type latchState struct {
	addr netip.AddrPort
	gen  uint64
}

type udpAddrPortReader interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
}

type udpAddrPortWriter interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// NewEndpoint returns an endpoint for cfg. Call Start to run its read loop
// and Close to end it. A nil cfg.Conn gives an endpoint that is already
// closed.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	e := &Endpoint{
		conn:    cfg.Conn,
		port:    cfg.Port,
		pool:    cfg.Pool,
		source:  cfg.Source,
		learnN:  DefaultLearnPackets,
		clock:   cfg.Clock,
		log:     cfg.Log,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		tx:      NewRewriter(rand.Uint32(), uint16(rand.Uint32()), rand.Uint32()),
	}
	e.maxStale = max(cfg.MaxStaleness, 0)
	if cfg.LearnPackets > 0 {
		e.learnN = uint16(min(cfg.LearnPackets, 1<<15))
	}
	if e.port == 0 {
		e.port = int(e.LocalAddr().Port())
	}
	e.pconn, _ = cfg.Conn.(*polledConn)
	e.pfd = -1
	if e.pconn != nil {
		e.pfd = int32(e.pconn.fd)
	}
	e.fastR, _ = cfg.Conn.(udpAddrPortReader)
	e.fastW, _ = cfg.Conn.(udpAddrPortWriter)
	e.conf.Store(&legConf{codec: cfg.Codec, eventPT: cfg.EventPT, cnPT: cfg.CNPT})
	if cfg.RTCP && cfg.Conn != nil {
		e.rtcp = newRTCPState(cfg, e.tx.SSRC())
		e.rtcp.mux.Store(cfg.RTCPConn == nil)
	} else if cfg.RTCPConn != nil {
		_ = cfg.RTCPConn.Close() // not ours to keep
	}
	remote := unmapAddrPort(cfg.Remote)
	e.sdp.Store(&remote)
	if cfg.Conn == nil {
		e.closed.Store(true)
		close(e.closing)
	}
	return e
}

// Start starts reading the socket: on a socket from a PortPool with a
// Poller it registers with the poller, otherwise it starts the leg's read
// goroutine. It does nothing on a started or closed endpoint.
func (e *Endpoint) Start() { e.StartBeside(nil) }

// StartBeside starts e like Start, and on a polled socket reads it on the
// same poll worker as peer (started earlier on the same Poller) instead of
// the least loaded one. The call layer starts the agent leg beside its
// caller: placed apart, by leg count alone, every caller leg of a run of
// calls went to one worker and every agent leg to the other, so the
// caller's side — detector, masker, recorder — all ran on one worker while
// the other relayed the agent's plain voice, and the masked direction's
// latency tail grew with that worker's queue (docs/PERFORMANCE.md,
// "Both legs of a call on one poll worker"). Beside each other, each
// worker carries whole calls, and a call's per-leg state stays in one
// core's cache. A nil peer, or one not polled by the same Poller, places
// e as Start does.
func (e *Endpoint) StartBeside(peer *Endpoint) {
	var w *pollWorker
	if peer != nil && peer != e && e.pconn != nil && peer.pconn != nil && peer.pconn.poller == e.pconn.poller {
		peer.startMu.Lock() // before e's: two endpoints never wait on each other
		w = peer.pollW
		peer.startMu.Unlock()
	}
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if e.started || e.closed.Load() {
		return
	}
	e.started = true
	e.joinTotals()
	e.log.Debug().Int("port", e.port).Stringer("codec", e.Codec()).Bool("polled", e.pconn != nil).
		Stringer("source", e.source).Msg("rtp endpoint started")
	e.startRTCP()
	if e.pconn != nil {
		e.pconn.poller.register(e, w)
		return
	}
	go e.readLoop()
}

// Close stops the read loop (or takes the socket out of its poller),
// closes the socket and returns the port to the pool. It waits for the
// loop (or the poller's worker), so it must not be called from a Handler.
// Close is idempotent; later calls return the first result.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.stopFill()
		e.startMu.Lock()
		started := e.started
		e.closeRTCP(started) // the BYE, while the sockets are open
		if !e.closed.Swap(true) {
			close(e.closing)
		}
		e.startMu.Unlock()
		if e.conn == nil {
			return
		}
		if e.pconn != nil {
			if started {
				e.pconn.poller.unregister(e) // no read after this
				close(e.done)
				e.closePolledRTCP()
			}
			e.txMu.Lock() // no send is under way, and none starts
			err := e.pconn.close()
			e.txMu.Unlock()
			if err != nil {
				e.closeErr = fmt.Errorf("close rtp port %d: %w", e.port, err)
			}
		} else {
			if err := e.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				e.closeErr = fmt.Errorf("close rtp port %d: %w", e.port, err)
			}
			if started {
				<-e.done
			}
		}
		if e.pool != nil {
			e.pool.Release(e.port)
		}
		e.leaveTotals() // nothing reads or sends on it any more
		e.clearSRTP()   // the keys: zeroed once nothing reads or sends
		s := e.Stats()
		e.log.Debug().Int("port", e.port).Uint64("rx", s.RxPackets).Uint64("tx", s.TxPackets).
			Uint64("dropped", s.Dropped()).Uint64("dropped_unknown_source", s.DroppedUnknownSource).
			Uint64("dropped_srtp", s.DroppedSRTP).Msg("rtp endpoint closed")
	})
	return e.closeErr
}

// Done returns a channel closed when the endpoint is closed.
func (e *Endpoint) Done() <-chan struct{} { return e.closing }

// LocalPort returns the local RTP port.
func (e *Endpoint) LocalPort() int { return e.port }

// LocalAddr returns the socket's local address (for the SDP c= and m=
// lines), or the zero AddrPort if it is not a UDP address.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	if e.conn == nil {
		return netip.AddrPort{}
	}
	if ua, ok := e.conn.LocalAddr().(*net.UDPAddr); ok {
		return unmapAddrPort(ua.AddrPort())
	}
	return netip.AddrPort{}
}

// SSRC returns the SSRC of our outgoing stream.
func (e *Endpoint) SSRC() uint32 {
	e.txMu.Lock()
	defer e.txMu.Unlock()
	return e.tx.SSRC()
}

// SetRemote sets the peer's address from (re-)negotiated SDP and resets
// latching: we send there until a valid packet arrives again, and which
// sources are accepted is decided against a (see SourcePolicy); with
// SourceLearn, learning starts afresh.
func (e *Endpoint) SetRemote(a netip.AddrPort) {
	a = unmapAddrPort(a)
	e.sdp.Store(&a)
	e.latchGen.Add(1)
	e.latch.Store(nil)
	if e.pconn != nil {
		e.pconn.disconnect(&e.connGen) // let the next source in to be latched
	}
}

// Remote returns where packets are sent now: the latched source if any,
// else the SDP address (zero if neither is known).
func (e *Endpoint) Remote() netip.AddrPort {
	if l := e.latch.Load(); l != nil && l.gen == e.latchGen.Load() {
		return l.addr
	}
	return *e.sdp.Load()
}

// target returns where a send goes: connected when the polled socket is
// connected to the source latched in the current generation (the send
// carries no address), else Remote().
func (e *Endpoint) target() (dst netip.AddrPort, connected bool) {
	if g := e.connGen.Load(); g != 0 && g == e.latchGen.Load()+1 {
		return netip.AddrPort{}, true
	}
	return e.Remote(), false
}

// Latched reports whether a source has been latched (accepted, and
// sent to) since the last SetRemote.
func (e *Endpoint) Latched() bool {
	l := e.latch.Load()
	return l != nil && l.gen == e.latchGen.Load()
}

// SetCodec sets the negotiated codec and telephone-event payload type (0 =
// none), e.g. after a re-INVITE.
func (e *Endpoint) SetCodec(c audio.Codec, eventPT uint8) {
	e.setConf(func(lc *legConf) { lc.codec, lc.eventPT = c, eventPT })
}

// SetComfortNoise sets the negotiated RFC 3389 comfort-noise payload
// type (0 = not negotiated), which the filler sends when it is not 0.
func (e *Endpoint) SetComfortNoise(pt uint8) { e.setConf(func(lc *legConf) { lc.cnPT = pt }) }

// ComfortNoisePT returns the negotiated comfort-noise payload type (0 =
// none).
func (e *Endpoint) ComfortNoisePT() uint8 { return e.conf.Load().cnPT }

// Codec returns the negotiated audio codec.
func (e *Endpoint) Codec() audio.Codec { return e.conf.Load().codec }

// EventPT returns the negotiated telephone-event payload type (0 = none).
func (e *Endpoint) EventPT() uint8 { return e.conf.Load().eventPT }

// SetDirection sets the media direction from our side. When it forbids
// sending, writes are suppressed (the stream's timestamp still advances);
// when it forbids receiving, accepted packets are counted but not handed
// to the Handler.
func (e *Endpoint) SetDirection(d audio.Direction) { e.dir.Store(uint32(d)) }

// Direction returns the media direction from our side.
func (e *Endpoint) Direction() audio.Direction { return audio.Direction(e.dir.Load()) }

// SetHandler installs the handler for accepted packets (an atomic swap;
// the next packet sees it). nil discards packets.
func (e *Endpoint) SetHandler(h Handler) { e.setConf(func(c *legConf) { c.handler = h }) }

// LastReceived returns when the last accepted packet arrived (coarse, from
// the running Clock, else the wall clock), or the zero time if none has. Use it for the RTP inactivity
// timeout.
//
// Accepted RTCP counts as well: a peer that sends no RTP (on hold, muted
// with silence suppression) but reports is alive.
func (e *Endpoint) LastReceived() time.Time {
	ns := e.lastRx.Load()
	if e.rtcp != nil {
		ns = max(ns, e.rtcp.lastUnix.Load())
	}
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// now is the coarse time for LastReceived: the running Clock's last tick,
// else the wall clock (a stopped clock's time would go stale).
func (e *Endpoint) now() int64 {
	if e.clock != nil && e.clock.running.Load() {
		return e.clock.now.Load()
	}
	return time.Now().UnixNano()
}

func unmapAddrPort(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}
