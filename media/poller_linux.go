package media

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cloak-voip/cloak/overload"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// pollBatch is how many ready sockets one epoll_wait returns at most.
const pollBatch = 256

// Poller reads many legs' sockets with a few worker goroutines, each
// waiting in epoll_wait(2) on its own set of sockets, instead of one
// goroutine per leg parked in Go's netpoller. Under load one wake-up
// serves every socket that became readable meanwhile, which saves the
// per-packet goroutine switch and its futex wake-ups (see
// docs/PERFORMANCE.md for the measured difference).
//
// A PortPool with a Poller (PortPool.SetPoller) opens sockets outside Go's
// netpoller; Endpoint.Start registers such a socket with the least loaded
// worker, and Endpoint.Close takes it out before the socket is closed. A
// leg's packets are always handled by the same worker, so the per-leg
// state of the read path has one owner, as with a goroutine per leg.
// Handlers run on the worker: one that blocks holds up every leg of that
// worker, which is why Handler must not block.
type Poller struct {
	workers []*pollWorker
	log     zerolog.Logger
	stopped atomic.Bool
	wake    *pollWake
}

// pollWake keeps an idle thread waiting in Go's netpoller while some
// workers are parked there. When the thread that was blocked in the
// netpoller is woken for one worker, it takes a P and runs that worker;
// nothing makes another idle thread take over the blocking poll, so the
// other parked workers' sockets are next looked at when some goroutine
// reschedules or when sysmon polls, up to 10 ms later (golang/go#51651).
// Under load that was the relay's whole latency tail: one worker served
// its batches while the other sat parked for 10-12 ms with its sockets
// readable and a CPU idle (runtime trace, docs/PERFORMANCE.md). So a
// worker that wakes while others are parked readies the keeper goroutine:
// readying a goroutine starts a spinning thread on an idle P (if there is
// one), and that thread, finding nothing else to run, becomes the one
// blocked in the netpoller.
type pollWake struct {
	parked atomic.Int32  // workers parked in the netpoller
	nudge  chan struct{} // the keeper's; never blocks the sender
	nudges atomic.Uint64
}

func newPollWake() *pollWake {
	k := &pollWake{nudge: make(chan struct{}, 1)}
	go func() {
		for range k.nudge {
		}
	}()
	return k
}

// woke is called by a worker that returned from the netpoller.
func (k *pollWake) woke() {
	if k.parked.Load() == 0 {
		return
	}
	select {
	case k.nudge <- struct{}{}:
		k.nudges.Add(1)
	default: // the keeper has one queued already
	}
}

// pollWorker is one epoll set and the goroutine that waits on it.
type pollWorker struct {
	epfd, evfd int
	wake       *pollWake
	ep         *os.File        // epfd, registered with Go's netpoller
	rc         syscall.RawConn // ep's, to park the worker until epfd is readable
	legs       atomic.Int64    // registered endpoints, for placement

	// Counters for PollerStats, updated once per batch.
	batches, served, full, busyNs atomic.Uint64

	// Read lag (readlag_linux.go): the worst sampled since TakeLag, in ns;
	// lagNext is when the next sample is due (nanotime), owned by run.
	lagMax  atomic.Int64
	lagNext int64
	// busySince is when the batch under way began (nanotime), 0 between
	// batches: a worker held up by a Handler shows as lag while it is.
	busySince atomic.Int64
	// shedding: the worker measures each datagram's queue sojourn and
	// drops stale voice (stale.go, "Queue sojourn"); owned by run.
	// sheds counts the episodes, for PollerStats.
	shedding bool
	sheds    atomic.Uint64

	mu      sync.Mutex
	ops     []pollOp
	stopped bool // run has returned; ops are applied by their callers
	done    chan struct{}

	eps []*Endpoint // by descriptor; owned by run
	// rtcpEps are the legs whose RTCP socket (RTP port + 1) this worker
	// reads, by that socket's descriptor; owned by run. Apart from eps so
	// that an RTP datagram's lookup stays as it was; RTCP is a datagram
	// every few seconds.
	rtcpEps []*Endpoint
}

type pollOpKind int

const (
	opAdd pollOpKind = iota
	opDel
	opStop
)

type pollOp struct {
	kind pollOpKind
	e    *Endpoint
	done chan struct{} // closed once applied (opDel)
}

// NewPoller starts workers goroutines (at least one) reading sockets with
// epoll. Close stops them.
func NewPoller(workers int, log zerolog.Logger) (*Poller, error) {
	if workers < 1 {
		workers = 1
	}
	p := &Poller{log: log, wake: newPollWake()}
	for range workers {
		w, err := newPollWorker(p.wake)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.workers = append(p.workers, w)
		go w.run(log)
	}
	return p, nil
}

func newPollWorker(wake *pollWake) (*pollWorker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rtp poller: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("rtp poller: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("rtp poller: epoll_ctl eventfd: %w", err)
	}
	// The worker does not block in epoll_wait: a goroutine blocked in a
	// syscall holds its thread, the runtime hands its P to another thread
	// and takes one back on return, and the load bench's perf profile
	// showed those thread switches. Instead epfd itself (readable while
	// any of its sockets is) sits in Go's netpoller, and the worker parks
	// there like any goroutine waiting for a socket, then collects the
	// ready sockets with epoll_wait(0).
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("rtp poller: epoll fd non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "rtp-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = unix.Close(evfd)
		_ = ep.Close()
		return nil, fmt.Errorf("rtp poller: %w", err)
	}
	return &pollWorker{epfd: epfd, evfd: evfd, wake: wake, ep: ep, rc: rc, done: make(chan struct{})}, nil
}

// PollerStats are a Poller's counters, summed over its workers.
type PollerStats struct {
	// Workers is the number of worker goroutines.
	Workers int
	// Legs is the number of sockets registered now.
	Legs int64
	// Batches counts wake-ups that found ready sockets; Served counts the
	// ready sockets they handled (Served/Batches is the mean batch).
	Batches, Served uint64
	// FullBatches counts batches that hit the batch limit: a backlog.
	FullBatches uint64
	// Busy is the time the workers spent serving batches; against wall
	// time it is their utilisation.
	Busy time.Duration
	// Nudges counts wake-ups that readied the netpoll keeper (pollWake):
	// a worker woke while another was parked.
	Nudges uint64
	// ShedEpisodes counts the times a worker fell a staleness bound
	// behind and began shedding stale voice (stale.go, "Queue sojourn").
	ShedEpisodes uint64
}

// Stats returns the poller's counters.
func (p *Poller) Stats() PollerStats {
	st := PollerStats{Workers: len(p.workers), Nudges: p.wake.nudges.Load()}
	for _, w := range p.workers {
		st.Legs += w.legs.Load()
		st.Batches += w.batches.Load()
		st.Served += w.served.Load()
		st.FullBatches += w.full.Load()
		st.Busy += time.Duration(w.busyNs.Load())
		st.ShedEpisodes += w.sheds.Load()
	}
	return st
}

// Workers returns the number of worker goroutines.
func (p *Poller) Workers() int { return len(p.workers) }

// Close stops the workers and waits for them. Endpoints still registered
// stop receiving; closing them afterwards still works.
func (p *Poller) Close() {
	if p.stopped.Swap(true) {
		return
	}
	for _, w := range p.workers {
		w.post(pollOp{kind: opStop})
	}
	for _, w := range p.workers {
		<-w.done
		_ = unix.Close(w.evfd)
		_ = w.ep.Close()
	}
	close(p.wake.nudge)
}

// register hands e's socket to beside, a worker of p's (Endpoint.StartBeside),
// or when beside is nil to the least loaded worker. It does not wait:
// packets that arrive before the worker adds the socket wait in its
// receive buffer.
func (p *Poller) register(e *Endpoint, beside *pollWorker) {
	w := beside
	if w == nil {
		w = p.workers[0]
		for _, x := range p.workers[1:] {
			if x.legs.Load() < w.legs.Load() {
				w = x
			}
		}
	}
	w.legs.Add(1)
	e.pollW = w
	w.post(pollOp{kind: opAdd, e: e})
}

// unregister takes e's socket out of its worker's set and returns once
// the worker will not touch it again. It must not run on a worker (from a
// Handler): it waits for that worker.
func (p *Poller) unregister(e *Endpoint) {
	w := e.pollW
	if w == nil {
		return
	}
	done := make(chan struct{})
	w.post(pollOp{kind: opDel, e: e, done: done})
	<-done
	w.legs.Add(-1)
}

// post queues op for the worker and wakes it. When the worker has
// stopped, op is applied here instead.
func (w *pollWorker) post(op pollOp) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		if op.done != nil {
			close(op.done)
		}
		return
	}
	w.ops = append(w.ops, op)
	w.mu.Unlock()
	one := uint64(1)
	_, _ = unix.Write(w.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// run is the worker goroutine: it parks in Go's netpoller until the epoll
// set has ready sockets, takes up to pollBatch of them with a
// non-blocking epoll_wait and serves them.
func (w *pollWorker) run(log zerolog.Logger) {
	defer close(w.done)
	defer w.updateShed(0, 0) // a stopped worker sheds nothing
	evs := make([]unix.EpollEvent, pollBatch)
	buf := make([]byte, readBufSize)
	pkt := new(Packet) // every datagram's, so it stays in the cache
	var (
		n      int
		werr   error
		parked bool // collect said park: the next call is after a wake-up
		woke   bool
	)
	// Made once: a closure passed to RawConn.Read per wake-up would be
	// allocated per wake-up.
	collect := func(fd uintptr) bool {
		if parked {
			parked, woke = false, true
			w.wake.parked.Add(-1)
		}
		n, werr = epollWaitNow(int(fd), evs)
		if errors.Is(werr, unix.EINTR) {
			n, werr = 0, nil
			return true // look again
		}
		if n > 0 || werr != nil {
			return true
		}
		parked = true // park until epfd is readable
		w.wake.parked.Add(1)
		return false
	}
	for {
		err := w.rc.Read(collect)
		if parked { // Read failed while parked
			parked = false
			w.wake.parked.Add(-1)
		}
		if woke {
			woke = false
			w.wake.woke()
		}
		if err != nil {
			log.Error().Err(err).Msg("rtp poller: worker stopped: epoll fd unusable")
			w.abandon()
			return
		}
		if werr != nil {
			log.Error().Err(werr).Msg("rtp poller: epoll_wait failed")
			time.Sleep(10 * time.Millisecond) // don't spin on a persistent error
			continue
		}
		t0 := nanotime()
		w.busySince.Store(t0 | 1)
		pkt.arrival = t0 // the batch's datagrams arrived by now
		if w.serveAll(evs[:n], buf, pkt, t0 >= w.lagNext) {
			return
		}
		w.busySince.Store(0)
		w.busyNs.Add(uint64(nanotime() - t0))
		w.batches.Add(1)
		w.served.Add(uint64(n))
		if n == pollBatch {
			w.full.Add(1)
		}
	}
}

// epollWaitNow collects up to len(evs) ready descriptors of epfd without
// waiting: epoll_pwait(2) with a zero timeout and no signal mask, which is
// epoll_wait(2) on every Linux architecture (arm64 has only the former).
//
// It is a raw system call, made without telling the scheduler: it cannot
// block, and a goroutine in a system call the scheduler knows of loses its
// P to sysmon once the call spans two sysmon ticks (20 us and up) while
// no P is idle, which is the relay's normal state. A large batch (up to
// pollBatch sockets, each polled by the kernel) can take that long; each
// retake hands the P to another thread (the worker's thread then waits
// for one on return) and puts sysmon back to waking every 20 us. At 500
// calls, sysmon's thread took 6 % of cloak's CPU samples, nearly all in
// its sleeps; made raw, cloak's context switches fell from 7,800-8,900/s
// to 4,300-6,400/s and its CPU per packet by 4 % (docs/PERFORMANCE.md).
func epollWaitNow(epfd int, evs []unix.EpollEvent) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// abandon marks the worker stopped (told to, or after a fatal error) and
// releases anyone waiting on an operation still queued.
func (w *pollWorker) abandon() {
	w.mu.Lock()
	w.stopped = true
	rest := w.ops
	w.ops = nil
	w.mu.Unlock()
	for _, op := range rest {
		if op.done != nil {
			close(op.done)
		}
	}
}

// serveAll handles one batch of ready descriptors; true when the worker
// was told to stop. A panicking Handler costs its packet, not the batch.
//
// With lagDue it samples the read lag (sampleLag) on the batch's last
// socket read, once per batch: the datagram that waited longest.
func (w *pollWorker) serveAll(evs []unix.EpollEvent, buf []byte, pkt *Packet, lagDue bool) (stop bool) {
	last := -1
	for i := 0; i < len(evs); {
		var next int
		next, stop = w.serve(evs, i, buf, pkt, &last)
		if stop {
			return true
		}
		i = next
	}
	// last is still registered (a removal in this batch cleared eps), so
	// its descriptor is still open.
	if lagDue && last >= 0 && last < len(w.eps) && w.eps[last] != nil {
		if lag, ok := w.sampleLag(last); ok {
			w.lagNext = nanotime() + int64(lagEvery)
			w.updateShed(lag, w.eps[last].maxStale)
		}
	}
	return false
}

// serve handles evs from index i on until the end (returning len(evs)),
// or until a Handler panics (returning the index after its event). The
// deferred recover costs once per batch, not per packet.
func (w *pollWorker) serve(evs []unix.EpollEvent, i int, buf []byte, pkt *Packet, last *int) (next int, stop bool) {
	var cur *Endpoint
	defer func() {
		if r := recover(); r != nil {
			next = i + 1
			if cur != nil {
				cur.recovered(r)
			}
		}
	}()
	for ; i < len(evs); i++ {
		fd := int(evs[i].Fd)
		if fd == w.evfd {
			if w.applyOps() {
				return len(evs), true
			}
			continue
		}
		if fd >= len(w.eps) || w.eps[fd] == nil {
			if fd < len(w.rtcpEps) && w.rtcpEps[fd] != nil {
				cur = w.rtcpEps[fd]
				w.serveRTCP(cur, fd, buf)
			}
			continue // else taken out earlier in this batch
		}
		cur = w.eps[fd]
		// One datagram per ready socket and batch, so every leg gets its
		// turn; while shedding, each one's queue sojourn is measured and
		// a stale one is dropped and followed at once by the socket's
		// next, up to shedDrain (stale.go, "Queue sojourn").
		for drained := 0; ; drained++ {
			n, from, err := recvFrom(fd, buf) // fd is cur's socket
			if err != nil {
				// ECONNREFUSED: the peer of a connected socket answered an
				// earlier packet with ICMP port unreachable (it hung up).
				if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ECONNREFUSED) {
					cur.stats.readErrors.Add(1)
				}
				break
			}
			*last = fd
			pkt.sojourn, pkt.shed = 0, false
			if w.shedding {
				pkt.sojourn, _ = readAge(fd)
			}
			cur.handleDatagram(buf[:n], from, pkt)
			if !pkt.shed || drained >= shedDrain || cur.closed.Load() {
				break
			}
		}
	}
	return len(evs), false
}

// serveRTCP reads one datagram from e's RTCP socket fd and hands it to
// e.handleRTCP, as the goroutine of rtcpReadLoop does without a Poller.
func (w *pollWorker) serveRTCP(e *Endpoint, fd int, buf []byte) {
	n, from, err := recvFrom(fd, buf)
	if err != nil {
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ECONNREFUSED) {
			e.stats.readErrors.Add(1)
		}
		return
	}
	e.handleRTCP(buf[:n], from, false)
}

// watch adds fd to the worker's epoll set and to table (eps or rtcpEps)
// for e; false (counted and logged) when epoll refuses it.
func (w *pollWorker) watch(table *[]*Endpoint, fd int, e *Endpoint, what string) bool {
	for len(*table) <= fd {
		*table = append(*table, nil)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		e.stats.readErrors.Add(1)
		e.log.Error().Err(err).Int("port", e.port).Str("socket", what).Msg("rtp poller: cannot watch socket")
		return false
	}
	(*table)[fd] = e
	return true
}

// unwatch takes fd out of the epoll set and table, if e is its entry.
func (w *pollWorker) unwatch(table []*Endpoint, fd int, e *Endpoint) {
	if fd < len(table) && table[fd] == e {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		table[fd] = nil
	}
}

// applyOps applies the queued registrations; true on opStop.
func (w *pollWorker) applyOps() (stop bool) {
	var cnt [8]byte
	_, _ = unix.Read(w.evfd, cnt[:])
	w.mu.Lock()
	ops := w.ops
	w.ops = nil
	for _, op := range ops {
		if op.kind == opStop {
			w.stopped = true // later posts apply their ops themselves
		}
	}
	w.mu.Unlock()
	for _, op := range ops {
		switch op.kind {
		case opAdd:
			if r := op.e.rtcp; r != nil && r.polled != nil {
				w.watch(&w.rtcpEps, r.polled.fd, op.e, "rtcp")
			}
			fd := op.e.pconn.fd
			if w.watch(&w.eps, fd, op.e, "rtp") {
				enableReadStamp(fd)
			}
		case opDel:
			w.unwatch(w.eps, op.e.pconn.fd, op.e)
			if r := op.e.rtcp; r != nil && r.polled != nil {
				w.unwatch(w.rtcpEps, r.polled.fd, op.e)
			}
			close(op.done)
		case opStop:
			stop = true
		}
	}
	if stop {
		w.abandon() // release anyone waiting on an op queued after the stop
	}
	return stop
}

// DefaultPollWorkers returns the worker count cloak uses when the
// configuration does not set one: one per CPU the process may use
// (GOMAXPROCS as the runtime set it at start: serve raises GOMAXPROCS
// above the cores, overload.Procs, and the workers stay one a core).
// The load bench on 2 cores measured one worker about 3 % cheaper per
// packet than two at 500 calls, but one worker is one thread: when the
// machine is busy it gets a share of one core and the relay falls behind
// (at 1,000 calls it forwarded a third of what two workers did), as
// rtpengine's one thread per core does not.
func DefaultPollWorkers() int { return overload.Cores() }
