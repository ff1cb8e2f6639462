package recorder

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Audio format of every recording.
const (
	// SampleRate is the sample rate of recordings, in Hz.
	SampleRate = 8000
	// FrameSamples is the number of samples per channel in one queued frame
	// (20 ms). Longer writes are split into several frames.
	FrameSamples = SampleRate / 50
	// FrameDuration is the duration of one queued frame.
	FrameDuration = 20 * time.Millisecond
	// DefaultQueueFrames is the most frames a recording may have queued
	// when Config.QueueFrames is zero: 1.28 s of audio for one leg, 0.64 s
	// for both, about three writer turns. It bounds what a stalled disk
	// can cost (64 frames of 352 bytes per recording); it costs nothing
	// while the writer keeps up, as frames come from a shared pool and
	// only those queued are held.
	DefaultQueueFrames = 64
)

// Sentinel errors. Returned errors wrap them with context; test with
// errors.Is.
var (
	// ErrConfig reports an unusable Config.
	ErrConfig = errors.New("recorder: bad config")
	// ErrClosed reports an operation on a recording already closed or
	// discarded.
	ErrClosed = errors.New("recorder: recording closed")
	// ErrReason reports a pause reason that is not one of the Reason
	// constants.
	ErrReason = errors.New("recorder: unknown pause reason")
	// ErrWrite reports a failure writing the recording to disk.
	ErrWrite = errors.New("recorder: write")
)

// Policy says whether a recording is written at all.
type Policy int

const (
	// PolicyRecord (the zero value) records the interaction.
	PolicyRecord Policy = iota
	// PolicyNever creates a recorder that accepts every call and writes
	// nothing: no file, no sidecar, no place in the writer's turns.
	PolicyNever
)

// Reason says why a recording is paused. A recording is paused while at
// least one reason is active.
type Reason string

// Pause reasons.
const (
	// ReasonSecure: the caller is in a secure segment (card entry).
	ReasonSecure Reason = "secure"
	// ReasonAgent: the agent paused the recording.
	ReasonAgent Reason = "agent"
	// ReasonConsent: the caller is being asked for consent to record.
	ReasonConsent Reason = "consent"
	// ReasonAPI: paused through the HTTP API.
	ReasonAPI Reason = "api"
	// ReasonPayment: an agent-assisted payment is taking a card while
	// caller and agent talk.
	ReasonPayment Reason = "payment"
)

// numReasons is the number of Reason constants.
const numReasons = 5

// Reasons returns the pause reasons; a reason's bit in the pause mask is
// 1 << its index.
func Reasons() [numReasons]Reason {
	return [numReasons]Reason{ReasonSecure, ReasonAgent, ReasonConsent, ReasonAPI, ReasonPayment}
}

func reasonBit(r Reason) (uint32, bool) {
	for i, x := range Reasons() {
		if x == r {
			return 1 << i, true
		}
	}
	return 0, false
}

// Channel is one side of the stereo recording.
type Channel int

const (
	// Caller is the left channel.
	Caller Channel = 0
	// Agent is the right channel: the agent, or the IVR's prompts.
	Agent Channel = 1
)

// String names the channel as the sidecar does.
func (c Channel) String() string {
	if c == Caller {
		return "caller"
	}
	return "agent"
}

// Config describes one recording.
type Config struct {
	// Dir is the directory the files are written in; it must exist.
	Dir string
	// Name is the base name: the files are Name+".wav" and Name+".json".
	// It must not contain a path separator or start with a dot.
	Name string
	// CallID identifies the interaction in the sidecar.
	CallID string
	// PausedFrom, when set, pauses the recording for that reason from its
	// first moment: the marker starts at 0 ms, before any frame could be
	// handed over (a call that is secure before its answer).
	PausedFrom Reason
	// Codec is the codec the call used (for example "PCMA"), copied to the
	// sidecar; the WAV is always 16-bit linear PCM.
	Codec string
	// Key signs the sidecar with HMAC-SHA256. Empty: the sidecar is written
	// with "hmac": "" and Verify reports it as unsigned.
	Key []byte
	// Policy: PolicyNever writes nothing.
	Policy Policy
	// QueueFrames is the most frames that may wait for the writer; a
	// frame handed over when that many are queued is dropped and counted.
	// Zero means DefaultQueueFrames.
	QueueFrames int
	// Now is the clock; nil means time.Now. It is called from the
	// goroutines that write frames and must be safe for concurrent use.
	Now func() time.Time
	// OnFailure, when set, is called once, as soon as writing the
	// recording fails (disk full, I/O error), with the error (wrapping
	// ErrWrite). It runs on the writer goroutine, which serves every
	// recording: it must not block (log, count, publish an event). From
	// then on frames handed over are ignored; Close keeps what was
	// written and marks the sidecar StatusTruncated.
	OnFailure func(error)

	// writerHook, when set, is called by the writer goroutine before each
	// of its turns on this recording (tests stall the writer with it; a
	// stalled hook stalls the writer for every recording it serves).
	// drainEvery, when set, gives the recording a writer of its own that
	// drains it that often instead of the shared one (tests, benchmarks).
	drainEvery time.Duration
	writerHook func()
	// wrapData, when set, wraps the file the samples are written to
	// (benchmarks send them to io.Discard).
	wrapData func(io.Writer) io.Writer
}

// Stats are a recording's counters.
type Stats struct {
	// Written is the number of frames written as audio.
	Written uint64
	// Silenced is the number of frames handed over while paused and
	// written as silence.
	Silenced uint64
	// Dropped is the number of frames lost because QueueFrames frames
	// were already waiting for the writer.
	Dropped uint64
	// Paused is the total time the recording has been paused (the union
	// of all reasons' intervals).
	Paused time.Duration
}

// Result describes a closed recording.
type Result struct {
	// WAV and Sidecar are the final paths of the files.
	WAV, Sidecar string
	// Meta is what the sidecar holds.
	Meta Sidecar
}

// recorder states.
const (
	stateRecording int32 = iota
	stateClosed
	stateDiscarded
	stateFailed // a write failed: frames are ignored until Close
)

// Recorder records one interaction. WriteCaller, WriteAgent, Pause, Resume,
// Paused and Stats may be called from any goroutine; Close and Discard end
// the recording.
type Recorder struct {
	// What a frame handed over reads and writes (see write), in the first
	// 56 bytes, which are one cache line (the allocator's 8-byte header
	// takes the rest; TestRecorderLayout): with hundreds of calls a
	// recording is out of the CPU caches by its next frame, and each line
	// it touches is a miss. The writer's per-frame counters are kept off
	// this line.
	state     atomic.Int32
	pauseMask atomic.Uint32 // active reasons; read on every frame
	qmu       sync.Mutex    // guards the queue fields; held for one append or one swap
	// The queue: frames handed over and not yet taken by a turn, oldest
	// first, both legs in the order they were handed over.
	queued    int32
	bound     int32 // most frames queued (QueueFrames)
	qhead     *frame
	qtail     *frame
	qclosed   bool  // set by Close and Discard when they take the last frames
	clocked   bool  // Config.Now is set: elapsed asks it
	startMono int64 // start as time.Since(monoEpoch), for the default clock

	cfg   Config
	now   func() time.Time
	start time.Time
	never bool
	w     *writer // the writer whose turns drain this recording

	written, silenced, dropped atomic.Uint64

	// wmu is held by the writer for a turn on this recording and by Close
	// and Discard while they finish or abort the file; it guards tl.
	wmu      sync.Mutex
	tl       *timeline // nil once the file is finished or aborted
	partPath string
	jsonPart string // the provisional sidecar, reserved at New
	// failErr and failAt: the first write error and when it was seen;
	// guarded by wmu.
	failErr error
	failAt  time.Time
	// provDirty: the markers changed since the provisional sidecar was
	// last written; a writer turn rewrites it. provMu serialises those
	// rewrites with Close and Discard, which set provDone.
	provDirty atomic.Bool
	provMu    sync.Mutex
	provDone  bool

	phase, slot int // the writer's bookkeeping, guarded by w.mu

	mu          sync.Mutex      // guards the fields below and Close/Discard
	open        [numReasons]int // index+1 into markers of each reason's open marker; 0 none
	markers     []Marker
	pausedSince time.Time
	pausedTotal time.Duration
	finished    bool
	result      Result
}

// frame is one queued frame, from framePool. The producer fills it and
// links it to the queue under qmu; whoever takes it off the queue owns it
// and puts it back in the pool.
type frame struct {
	next   *frame
	at     int64       // sample offset from the start of the recording
	law    *[256]int16 // set: buf holds n companded bytes (see WriteCompanded)
	n      int32
	ch     uint8 // the Channel
	silent bool
	buf    [FrameSamples]int16
}

// bytes is the frame's buffer seen as the bytes of a companded frame.
func (f *frame) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&f.buf)), len(f.buf)*2)
}

// fill copies one frame's samples (int16) or companded bytes into f.
func fill[S int16 | byte](f *frame, s []S) {
	switch v := any(s).(type) {
	case []int16:
		copy(f.buf[:], v)
	case []byte:
		copy(f.bytes(), v)
	}
}

// framePool holds the frame buffers of every recording: a frame is taken
// when it is handed over and returned when a turn has placed it, so a
// recording holds only the frames it has queued.
var framePool = sync.Pool{New: func() any { return new(frame) }}

// New starts a recording: with PolicyRecord it creates ".Name.wav.part" in
// Dir and adds the recording to the writer's turns (starting the writer if
// it is not running). The recording's start time is the clock's time now.
func New(cfg Config) (*Recorder, error) {
	r := &Recorder{cfg: cfg, now: cfg.Now, slot: -1, clocked: cfg.Now != nil}
	if r.now == nil {
		r.now = time.Now
	}
	r.start = r.now()
	r.startMono = int64(r.start.Sub(monoEpoch))
	if cfg.Policy == PolicyNever {
		r.never = true
		r.state.Store(stateClosed)
		return r, nil
	}
	if cfg.Policy != PolicyRecord {
		return nil, fmt.Errorf("%w: policy %d", ErrConfig, cfg.Policy)
	}
	if _, ok := reasonBit(cfg.PausedFrom); cfg.PausedFrom != "" && !ok {
		return nil, fmt.Errorf("%w: paused from %q", ErrConfig, cfg.PausedFrom)
	}
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, `/\`) || strings.HasPrefix(cfg.Name, ".") {
		return nil, fmt.Errorf("%w: name %q: want a base name without separators or leading dot", ErrConfig, cfg.Name)
	}
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: dir %q is not a directory", ErrConfig, cfg.Dir)
	}
	r.bound = int32(min(cfg.QueueFrames, math.MaxInt32))
	if r.bound <= 0 {
		r.bound = DefaultQueueFrames
	}
	r.partPath = filepath.Join(cfg.Dir, "."+cfg.Name+".wav.part")
	f, err := os.OpenFile(r.partPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrWrite, r.partPath, err)
	}
	// Held until the file is closed: Recover (another process sharing
	// the directory) leaves a locked part alone; the kernel drops the
	// lock when this process dies.
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(r.partPath)
		return nil, fmt.Errorf("%w: lock %s: %w", ErrWrite, r.partPath, err)
	}
	r.jsonPart = sidecarPart(filepath.Join(cfg.Dir, cfg.Name+".json"))
	prov := r.provisional()
	if err := reserveSidecar(r.jsonPart, &prov); err != nil {
		f.Close()
		os.Remove(r.partPath)
		return nil, err
	}
	var data io.Writer = f
	if cfg.wrapData != nil {
		data = cfg.wrapData(f)
	}
	r.tl = newTimeline(f, data)
	r.w = sharedWriter
	if cfg.drainEvery > 0 {
		r.w = newWriter(cfg.drainEvery)
	}
	if cfg.PausedFrom != "" {
		_ = r.pauseAt(cfg.PausedFrom, r.start) // the reason was checked above
	}
	r.w.add(r)
	return r, nil
}

// Start is the recording's start time (the clock's time when New ran).
func (r *Recorder) Start() time.Time { return r.start }

// WriteCaller records samples (8 kHz linear PCM, normally one 20 ms frame)
// on the caller's (left) channel at the clock's time now. It never blocks
// on the disk or the writer and does not keep samples.
func (r *Recorder) WriteCaller(samples []int16) { r.write(Caller, samples) }

// WriteAgent records samples on the agent's (right) channel; see
// WriteCaller.
func (r *Recorder) WriteAgent(samples []int16) { r.write(Agent, samples) }

// Write records samples on channel ch; see WriteCaller.
//
// Hot path: no allocation once the frame pool is warm, no system call, no
// wait for the writer. It reads two atomics (state, pause mask), reads the
// clock once (only the monotonic clock unless Config.Now is set) and takes
// the recording's queue lock once; the other leg holds that lock only for
// its own append and the writer only to take the whole queue. Under it,
// per 20 ms of samples, it takes a buffer from the shared pool, copies the
// samples in and links the buffer to the queue.
func (r *Recorder) Write(ch Channel, samples []int16) { r.write(ch, samples) }

// WriteCompanded records audio in an 8-bit companded form, one byte per
// sample at 8 kHz (a G.711 µ-law or A-law payload, ITU-T G.711), on
// channel ch; law maps each code to its linear sample and must not change
// afterwards (a codec's expansion table, shared by every call). The bytes
// are queued as they are and expanded by the writer, so the hot path
// copies half as much as with Write and decodes nothing. Otherwise as
// Write.
func (r *Recorder) WriteCompanded(ch Channel, payload []byte, law *[256]int16) {
	if law == nil {
		return
	}
	enqueue(r, ch, payload, law)
}

func (r *Recorder) write(ch Channel, samples []int16) { enqueue(r, ch, samples, nil) }

// enqueue queues s (samples, or companded bytes expanded by law) as
// frames of at most FrameSamples; see Write.
func enqueue[S int16 | byte](r *Recorder, ch Channel, s []S, law *[256]int16) {
	if r.state.Load() != stateRecording || len(s) == 0 {
		return
	}
	// Read the pause state before the clock: a Pause that returned before
	// this call began is seen here, whatever is still queued.
	silent := r.pauseMask.Load() != 0
	at := r.elapsed().Nanoseconds() * SampleRate / int64(time.Second)
	if at < 0 {
		at = 0
	}
	r.qmu.Lock()
	for len(s) > 0 && !r.qclosed {
		n := min(len(s), FrameSamples)
		if r.queued < r.bound {
			f := framePool.Get().(*frame)
			f.next, f.at, f.law, f.n, f.ch, f.silent = nil, at, law, int32(n), uint8(ch), silent
			if !silent {
				fill(f, s[:n])
			}
			if r.qtail == nil {
				r.qhead = f
			} else {
				r.qtail.next = f
			}
			r.qtail = f
			r.queued++
		} else {
			r.dropped.Add(1)
		}
		s = s[n:]
		at += int64(n)
	}
	r.qmu.Unlock()
}

// elapsed is the clock's time now less the start. With the default clock
// it reads only the monotonic clock (time.Since), half the cost of
// time.Now, which reads the wall clock too.
func (r *Recorder) elapsed() time.Duration {
	if !r.clocked {
		return time.Since(monoEpoch) - time.Duration(r.startMono)
	}
	return r.now().Sub(r.start)
}

// monoEpoch is the origin of Recorder.startMono.
var monoEpoch = time.Now()

// takeQueue takes every queued frame off the queue and returns the oldest;
// they are linked by next. With last, nothing handed over later is queued.
func (r *Recorder) takeQueue(last bool) *frame {
	r.qmu.Lock()
	f := r.qhead
	r.qhead, r.qtail, r.queued = nil, nil, 0
	if last {
		r.qclosed = true
	}
	r.qmu.Unlock()
	return f
}

// turn is the writer's turn on the recording: it places the frames queued
// since the last turn on the timeline and writes them out, using the
// writer's workspace ws. If Close or Discard is finishing the recording,
// the turn does nothing: they drain the queue themselves.
func (r *Recorder) turn(ws *workspace) {
	if h := r.cfg.writerHook; h != nil {
		h()
	}
	if !r.wmu.TryLock() {
		return
	}
	defer r.wmu.Unlock()
	if r.tl == nil {
		return
	}
	if r.provDirty.Load() {
		go r.updateProvisional()
	}
	// The clock is read before the queue is taken: a frame handed over
	// after that is stamped no earlier than now (less the instant between
	// its stamp and its append).
	paused := r.pauseMask.Load() != 0 && r.state.Load() == stateRecording
	var now time.Duration
	if paused {
		now = r.elapsed()
	}
	f := r.takeQueue(false)
	if f == nil && !paused {
		return
	}
	if f != nil {
		r.w.noteAge(r.elapsed() - time.Duration(f.at)*time.Second/SampleRate)
	}
	r.tl.load(ws)
	r.place(f)
	if paused {
		// While paused (a secure segment hands over nothing at all), the
		// file still grows with silence up to a little before now, as it
		// would at Close: after a crash the recovered recording covers
		// the pause. pauseLag keeps clear of frames still on their way.
		at := (now - pauseLag).Nanoseconds() * SampleRate / int64(time.Second)
		r.tl.gap(int(Caller), at)
		r.tl.gap(int(Agent), at)
		r.tl.flush()
	}
	r.tl.store()
	if r.tl.err != nil {
		r.fail(r.tl.err)
	}
}

// pauseLag is how far behind the clock a writer turn fills a paused
// recording with silence: beyond the jitter (gapTolerance) and the DTMF
// masker's delay, so a frame handed over late is not displaced.
const pauseLag = 100 * time.Millisecond

// fail records the first write error, stops taking frames and reports
// it (Config.OnFailure). Called with wmu held.
func (r *Recorder) fail(err error) {
	if r.failErr != nil {
		return
	}
	r.failErr, r.failAt = err, r.now()
	r.state.CompareAndSwap(stateRecording, stateFailed)
	if cb := r.cfg.OnFailure; cb != nil {
		cb(fmt.Errorf("%w: %s: %w", ErrWrite, r.partPath, err))
	}
}

// place places the frames linked from f on the loaded timeline and puts
// them back in the pool. Called with wmu held.
func (r *Recorder) place(f *frame) {
	for f != nil {
		next := f.next
		switch {
		case f.silent:
			r.tl.silence(int(f.ch), f.at, int(f.n))
			r.silenced.Add(1)
		case f.law != nil:
			r.tl.companded(int(f.ch), f.at, f.bytes()[:f.n], f.law)
			r.written.Add(1)
		default:
			r.tl.audio(int(f.ch), f.at, f.buf[:f.n])
			r.written.Add(1)
		}
		f.next = nil
		framePool.Put(f)
		f = next
	}
}

// recycle puts the frames linked from f back in the pool unwritten.
func recycle(f *frame) {
	for f != nil {
		next := f.next
		f.next = nil
		framePool.Put(f)
		f = next
	}
}

// Pause pauses the recording for reason: from now until Resume(reason),
// frames handed over are written as silence and a Marker records the
// interval.
//
// Reasons nest as a set, not a counter: the recording is paused while any
// reason is active. Pausing for a reason already active does nothing (it
// keeps the first marker); Resume lifts one reason, and audio is recorded
// again only when no reason is left. An agent pause then a secure pause
// thus stays paused until both are resumed, in either order, and gives two
// overlapping markers.
func (r *Recorder) Pause(reason Reason) error { return r.pauseAt(reason, r.now()) }

// pauseAt is Pause as of now.
func (r *Recorder) pauseAt(reason Reason, now time.Time) error {
	bit, ok := reasonBit(reason)
	if !ok {
		return fmt.Errorf("pause %q: %w", reason, ErrReason)
	}
	if r.never {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return fmt.Errorf("pause %s: %w", reason, ErrClosed)
	}
	mask := r.pauseMask.Load()
	if mask&bit != 0 {
		return nil
	}
	if mask == 0 {
		r.pausedSince = now
	}
	r.pauseMask.Store(mask | bit)
	r.markers = append(r.markers, Marker{Reason: reason, Start: now.UTC().Round(0), StartMS: r.offsetMS(now), EndMS: -1})
	r.open[bitIndex(bit)] = len(r.markers)
	r.provDirty.Store(true)
	return nil
}

// Resume lifts reason. Resuming a reason that is not active does nothing.
// See Pause for how reasons nest.
func (r *Recorder) Resume(reason Reason) error {
	bit, ok := reasonBit(reason)
	if !ok {
		return fmt.Errorf("resume %q: %w", reason, ErrReason)
	}
	if r.never {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return fmt.Errorf("resume %s: %w", reason, ErrClosed)
	}
	mask := r.pauseMask.Load()
	if mask&bit == 0 {
		return nil
	}
	r.closeMarker(bit, r.now())
	r.pauseMask.Store(mask &^ bit)
	r.provDirty.Store(true)
	return nil
}

// closeMarker ends the open marker of bit at now. Called with mu held.
func (r *Recorder) closeMarker(bit uint32, now time.Time) {
	i := bitIndex(bit)
	m := &r.markers[r.open[i]-1]
	m.End = now.UTC().Round(0)
	m.EndMS = max(r.offsetMS(now), m.StartMS)
	r.open[i] = 0
	if r.pauseMask.Load() == bit { // the last reason goes
		r.pausedTotal += now.Sub(r.pausedSince)
	}
}

func bitIndex(bit uint32) int {
	for i := range numReasons {
		if bit == 1<<i {
			return i
		}
	}
	panic("recorder: bad reason bit")
}

func (r *Recorder) offsetMS(t time.Time) int64 {
	return max(t.Sub(r.start).Milliseconds(), 0)
}

// Paused reports whether at least one pause reason is active.
func (r *Recorder) Paused() bool { return r.pauseMask.Load() != 0 }

// Writing reports whether frames handed over are still taken: false
// for a policy that never records, after a write failed, and once
// closed. Safe from any goroutine.
func (r *Recorder) Writing() bool { return !r.never && r.state.Load() == stateRecording }

// PauseReasons returns the pause reasons active now, in Reasons' order
// (nil when recording). Safe from any goroutine.
func (r *Recorder) PauseReasons() []Reason {
	mask := r.pauseMask.Load()
	if mask == 0 {
		return nil
	}
	var out []Reason
	for i, x := range Reasons() {
		if mask&(1<<i) != 0 {
			out = append(out, x)
		}
	}
	return out
}

// Stats returns the recording's counters so far.
func (r *Recorder) Stats() Stats {
	s := Stats{Written: r.written.Load(), Silenced: r.silenced.Load(), Dropped: r.dropped.Load()}
	r.mu.Lock()
	s.Paused = r.pausedTotal
	if r.pauseMask.Load() != 0 && !r.finished {
		s.Paused += r.now().Sub(r.pausedSince)
	}
	r.mu.Unlock()
	return s
}

// Markers returns a copy of the pause markers so far; an open marker has
// EndMS -1.
func (r *Recorder) Markers() []Marker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Marker(nil), r.markers...)
}

// Close ends the recording: open pauses end now, the frames still queued
// are written (by Close itself, after any writer turn under way on the
// recording), the file is padded with silence to the recording's duration,
// fsynced and renamed to Name+".wav", and the sidecar Name+".json" is
// written beside it. Frames handed over after Close are ignored. With
// PolicyNever it returns an empty Result.
//
// After a write error during the recording (see Config.OnFailure), Close
// keeps what was written: the file holds the whole frames written before
// the error, with a correct header, is not padded, and the sidecar says
// StatusTruncated with when and why; Close returns nil. If finishing the
// file itself fails, Close returns the error and leaves ".NAME.wav.part"
// for Recover, never removing audio that was written.
func (r *Recorder) Close() (Result, error) {
	if r.never {
		return Result{}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return Result{}, fmt.Errorf("close %s: %w", r.cfg.Name, ErrClosed)
	}
	r.finished = true
	r.endProvisional()
	end := r.now()
	for i := range numReasons {
		if r.open[i] != 0 {
			r.closeMarker(1<<i, end)
			r.pauseMask.Store(r.pauseMask.Load() &^ (1 << i))
		}
	}
	r.state.Store(stateClosed)

	// Finishing blocks in fsync; each blocked syscall holds an OS thread,
	// and Go keeps threads it made. Bounding the finishes in flight keeps
	// hundreds of calls ending at once from leaving hundreds of threads.
	finishing <- struct{}{}
	defer func() { <-finishing }()

	target := end.Sub(r.start).Nanoseconds() * SampleRate / int64(time.Second)
	samples, cutBytes, err := r.finishFile(target)
	r.w.remove(r)
	if err != nil {
		// The part stays: Recover keeps the audio on the next start.
		return Result{}, fmt.Errorf("%w: %s (left for recovery): %w", ErrWrite, r.partPath, err)
	}
	wavPath := filepath.Join(r.cfg.Dir, r.cfg.Name+".wav")
	if err := os.Rename(r.partPath, wavPath); err != nil {
		return Result{}, fmt.Errorf("%w: rename %s (left for recovery): %w", ErrWrite, r.partPath, err)
	}
	sum, err := fileSHA256(wavPath)
	if err != nil {
		return Result{}, fmt.Errorf("%w: hash %s: %w", ErrWrite, wavPath, err)
	}
	st := Stats{Written: r.written.Load(), Silenced: r.silenced.Load(), Dropped: r.dropped.Load(), Paused: r.pausedTotal}
	meta := Sidecar{
		Version:       sidecarVersion,
		CallID:        r.cfg.CallID,
		Start:         r.start.UTC().Round(0),
		End:           end.UTC().Round(0),
		DurationMS:    samples * 1000 / SampleRate,
		SampleRate:    SampleRate,
		BitsPerSample: 16,
		Codec:         r.cfg.Codec,
		Channels:      Layout{Left: Caller.String(), Right: Agent.String()},
		Markers:       append([]Marker{}, r.markers...),
		FramesWritten: st.Written,
		FramesSilent:  st.Silenced,
		FramesDropped: st.Dropped,
		PausedMS:      st.Paused.Milliseconds(),
		SHA256:        sum,
	}
	if r.failErr != nil {
		meta.Version, meta.Status = incidentVersion, StatusTruncated
		meta.Incident = &Incident{Reason: "write failed: " + r.failErr.Error(), At: r.failAt.UTC().Round(0), CutBytes: cutBytes}
	}
	meta.seal(r.cfg.Key)
	jsonPath := sidecarPath(wavPath)
	if err := writeSidecar(jsonPath, &meta); err != nil {
		return Result{}, err
	}
	syncDir(r.cfg.Dir)
	r.result = Result{WAV: wavPath, Sidecar: jsonPath, Meta: meta}
	return r.result, nil
}

// finishing bounds the recordings being finished (fsync, rename, sidecar)
// at once, process-wide.
var finishing = make(chan struct{}, 8)

// finishFile writes the frames still queued, then pads, writes out,
// fsyncs and closes the file (timeline.finish). It waits for a writer turn
// under way on the recording and takes the file from the writer. A write
// error seen now (not by a turn) is recorded and reported as a turn's
// would be; cutBytes is the torn tail cut off a truncated file.
func (r *Recorder) finishFile(target int64) (samples, cutBytes int64, err error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	f := r.takeQueue(true)
	r.tl.load(ws)
	r.place(f)
	tl := r.tl
	r.tl = nil
	samples, cut, cutBytes, err := tl.finish(target)
	if cut != nil {
		r.fail(cut)
	}
	return samples, cutBytes, err
}

// Discard aborts the recording and removes every file it wrote: the
// partial WAV, or, after Close, the finished WAV and its sidecar. Use it
// when the caller declines recording. It is safe to call more than once.
func (r *Recorder) Discard() error {
	if r.never {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var paths []string
	if r.finished {
		if r.state.Load() == stateDiscarded {
			return nil
		}
		if r.result.WAV != "" {
			paths = append(paths, r.result.WAV, r.result.Sidecar)
		}
		paths = append(paths, r.partPath, r.jsonPart)
	} else {
		r.finished = true
		r.endProvisional()
		r.state.Store(stateDiscarded)
		r.wmu.Lock()
		recycle(r.takeQueue(true))
		r.tl.abort()
		r.tl = nil
		r.wmu.Unlock()
		r.w.remove(r)
		paths = append(paths, r.partPath, r.jsonPart)
	}
	r.state.Store(stateDiscarded)
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: discard %s: %w", ErrWrite, r.cfg.Name, errors.Join(errs...))
	}
	syncDir(r.cfg.Dir)
	return nil
}

// syncDir fsyncs a directory so a rename or removal in it is durable.
// Errors are ignored: some filesystems refuse to sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
