package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloak-voip/cloak/wav"
)

// Timeline tuning, in samples per channel.
const (
	// gapTolerance: a frame stamped later than its channel's end by more
	// than this is preceded by silence up to its stamp. Smaller gaps
	// (jitter) are closed up, so a channel runs at most this far behind
	// the wall clock.
	gapTolerance = 30 * SampleRate / 1000
	// pendSamples: how far one channel may run ahead of the other before
	// the other is taken to be silent up to that point and both are
	// written out (0.5 s: far beyond jitter and the 40 ms DTMF masker
	// delay on the caller channel). The buffers are the writer's; a
	// recording keeps only the samples its leading channel is ahead by
	// (carry), at most 8 KB when one leg sends nothing.
	pendSamples = SampleRate / 2
	// carryKeep: an emptied carry buffer up to this capacity is kept for
	// the next turn; a larger one is let go.
	carryKeep = 2 * FrameSamples
	// wavHeaderSize is the size of the canonical 44-byte PCM WAV header.
	wavHeaderSize = wav.HeaderSize
	// maxDataBytes is the largest data chunk a RIFF size field can hold
	// (about 37 hours of 8 kHz 16-bit stereo).
	maxDataBytes = 1<<32 - 1 - (wavHeaderSize - 8)
)

var errTooLong = errors.New("recording exceeds the WAV size limit")

// timeline turns frames stamped with a sample offset into an interleaved
// stereo stream. Each channel keeps the samples not yet written (pend);
// the samples common to both are interleaved into out and written to the
// file. It is used by one goroutine at a time, holding Recorder.wmu: a
// writer turn, or Close or Discard.
//
// The buffers pend and out exist only between load and store (or finish):
// they are a workspace's. Between turns the timeline keeps what is left of
// pend, which is at most one channel's (flush leaves one channel empty),
// in carry.
type timeline struct {
	f       *os.File
	data    io.Writer
	pend    [2][]int16
	out     []byte
	flushed int64   // samples per channel already written
	carry   []int16 // channel carryCh's pending samples between turns
	carryCh int
	started bool // the header placeholder has been written
	// written is the number of bytes the data writer accepted, header
	// placeholder included: after a failed write, the file holds them.
	written int64
	err     error
}

// newTimeline writes the samples to data (normally f itself) and patches
// the header in f.
func newTimeline(f *os.File, data io.Writer) *timeline {
	return &timeline{f: f, data: data}
}

// load makes the timeline ready to place frames with ws's buffers: the
// pending samples come back from carry, and the first load puts the
// header placeholder (sizes patched in finish) in the output.
func (t *timeline) load(ws *workspace) {
	t.pend[0], t.pend[1] = ws.pend[0][:0], ws.pend[1][:0]
	t.pend[t.carryCh] = append(t.pend[t.carryCh], t.carry...)
	t.out = ws.out[:0]
	if !t.started {
		t.started = true
		t.out = t.out[:wavHeaderSize]
		putWAVHeader(t.out, 0)
	}
}

// store writes out what load and the frames since produced, keeps the
// pending samples in carry and lets go of the workspace's buffers.
func (t *timeline) store() {
	t.writeOut()
	c := 0
	if len(t.pend[1]) > 0 {
		c = 1
	}
	t.carryCh = c
	t.carry = keepCarry(t.carry, t.pend[c])
	t.pend, t.out = [2][]int16{}, nil
}

// keepCarry copies src into dst, reusing dst's array unless src does not
// fit or uses less than a quarter of it; a new array is twice src's
// length (at least carryKeep, at most pendSamples), so a carry that grows
// or shrinks turn by turn is not reallocated at every turn.
func keepCarry(dst, src []int16) []int16 {
	switch {
	case len(src) == 0 && cap(dst) > carryKeep:
		return nil
	case cap(dst) < len(src), cap(dst) > carryKeep && 4*len(src) < cap(dst):
		dst = make([]int16, 0, min(max(2*len(src), carryKeep), pendSamples))
	}
	return append(dst[:0], src...)
}

// writeOut writes the output buffer to the file and empties it.
func (t *timeline) writeOut() {
	if len(t.out) > 0 && t.err == nil {
		var n int
		n, t.err = t.data.Write(t.out)
		t.written += int64(n)
	}
	t.out = t.out[:0]
}

// recordingShape is every recording's audio: 8 kHz 16-bit stereo PCM.
var recordingShape = wav.Info{Format: wav.PCM, Channels: 2, SampleRate: SampleRate, BitsPerSample: 16}

// putWAVHeader writes the 44-byte header of a recording holding dataBytes
// of audio.
func putWAVHeader(b []byte, dataBytes uint32) { wav.PutHeader(b, recordingShape, dataBytes) }

// end is the sample offset where channel c's next sample goes.
func (t *timeline) end(c int) int64 { return t.flushed + int64(len(t.pend[c])) }

// audio places samples on channel c at sample offset at.
func (t *timeline) audio(c int, at int64, s []int16) {
	t.put(c, at, len(s), func(dst []int16, i int) { copy(dst, s[i:]) })
}

// companded places the samples of companded bytes b, expanded by law, on
// channel c at sample offset at.
func (t *timeline) companded(c int, at int64, b []byte, law *[256]int16) {
	t.put(c, at, len(b), func(dst []int16, i int) {
		for j, x := range b[i : i+len(dst)] {
			dst[j] = law[x]
		}
	})
}

// put places n samples on channel c at sample offset at; fill writes
// samples i to i+len(dst) of them into dst.
func (t *timeline) put(c int, at int64, n int, fill func(dst []int16, i int)) {
	t.gap(c, at)
	for i := 0; i < n; {
		if len(t.pend[c]) == cap(t.pend[c]) {
			t.force(c)
		}
		l := len(t.pend[c])
		k := min(cap(t.pend[c])-l, n-i)
		t.pend[c] = t.pend[c][:l+k]
		fill(t.pend[c][l:], i)
		i += k
	}
	t.flush()
}

// silence places n samples of silence on channel c at sample offset at.
func (t *timeline) silence(c int, at int64, n int) {
	t.gap(c, at)
	t.zeros(c, int64(n))
	t.flush()
}

// gap fills channel c with silence up to at if at lies beyond the
// channel's end by more than gapTolerance.
func (t *timeline) gap(c int, at int64) {
	if e := t.end(c); at > e+gapTolerance {
		t.zeros(c, at-e)
	}
}

func (t *timeline) zeros(c int, n int64) {
	for n > 0 {
		if len(t.pend[c]) == cap(t.pend[c]) {
			t.force(c)
		}
		k := min(int64(cap(t.pend[c])-len(t.pend[c])), n)
		l := len(t.pend[c])
		t.pend[c] = t.pend[c][:l+int(k)]
		clear(t.pend[c][l:])
		n -= k
	}
}

// force writes out channel c's full buffer, taking the other channel to
// be silent where it has nothing yet.
func (t *timeline) force(c int) {
	o := 1 - c
	if d := len(t.pend[c]) - len(t.pend[o]); d > 0 {
		l := len(t.pend[o])
		t.pend[o] = t.pend[o][:l+d]
		clear(t.pend[o][l:])
	}
	t.flush()
}

// flush interleaves the samples both channels have into the output,
// writing the output to the file whenever it is full.
func (t *timeline) flush() {
	n := min(len(t.pend[0]), len(t.pend[1]))
	if n == 0 {
		return
	}
	l, r := t.pend[0][:n], t.pend[1][:n]
	if t.err == nil && (t.flushed+int64(n))*4 > maxDataBytes {
		t.err = errTooLong
	}
	for i := 0; i < n && t.err == nil; {
		if cap(t.out)-len(t.out) < 4 {
			t.writeOut()
			continue
		}
		k := min(n-i, (cap(t.out)-len(t.out))/4)
		o := len(t.out)
		t.out = t.out[:o+4*k]
		b := t.out[o:]
		for j := range k {
			binary.LittleEndian.PutUint16(b[4*j:], uint16(l[i+j]))
			binary.LittleEndian.PutUint16(b[4*j+2:], uint16(r[i+j]))
		}
		i += k
	}
	t.pend[0] = t.pend[0][:copy(t.pend[0], t.pend[0][n:])]
	t.pend[1] = t.pend[1][:copy(t.pend[1], t.pend[1][n:])]
	t.flushed += int64(n)
}

// finish pads both channels with silence to at least target samples and
// to each other, writes everything, patches the header sizes, fsyncs and
// closes the file. It returns the samples per channel in the file. The
// timeline must be loaded; it is unusable after.
//
// After a write error (t.err: disk full, I/O error, the size limit) it
// pads nothing: it keeps what was written, cuts a torn last frame, sets
// the header to the whole frames on disk, fsyncs and closes the file, and
// returns them with the write error as cut (err is nil unless finishing
// the file failed too). cutBytes is the torn tail cut off.
func (t *timeline) finish(target int64) (samples int64, cut error, cutBytes int64, err error) {
	if t.err != nil {
		return t.finishTruncated()
	}
	for c := range 2 {
		if e := t.end(c); e < target {
			t.zeros(c, target-e)
		}
	}
	longer := max(t.end(0), t.end(1))
	for c := range 2 {
		t.zeros(c, longer-t.end(c))
	}
	t.flush()
	t.writeOut()
	if t.err != nil {
		return t.finishTruncated()
	}
	t.pend, t.out, t.carry = [2][]int16{}, nil, nil
	if err := sealWAV(t.f, t.flushed*4); err != nil {
		return 0, nil, 0, fmt.Errorf("finish wav: %w", err)
	}
	return t.flushed, nil, 0, nil
}

// sealWAV writes the header for data bytes of audio, syncs and closes f:
// the last step of every finished WAV, whole or truncated.
func sealWAV(f *os.File, data int64) error {
	var hdr [wavHeaderSize]byte
	putWAVHeader(hdr[:], uint32(data))
	_, err := f.WriteAt(hdr[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// finishTruncated finishes the file after a write error with the whole
// frames the data writer accepted (see finish).
func (t *timeline) finishTruncated() (int64, error, int64, error) {
	t.pend, t.out, t.carry = [2][]int16{}, nil, nil
	data, cut := wholeFrames(t.written)
	err := t.f.Truncate(wavHeaderSize + data)
	if err == nil {
		err = sealWAV(t.f, data)
	} else {
		_ = t.f.Close()
	}
	if err != nil {
		return 0, t.err, 0, fmt.Errorf("finish truncated wav: %w (after %w)", err, t.err)
	}
	return data / 4, t.err, cut, nil
}

// wholeFrames returns the bytes of whole stereo frames (4 bytes each)
// in a file of size bytes that starts with the WAV header, at most
// maxDataBytes, and the bytes of a torn last frame beyond them.
func wholeFrames(size int64) (data, cut int64) {
	if size <= wavHeaderSize {
		return 0, 0
	}
	raw := size - wavHeaderSize
	data = min(raw&^3, maxDataBytes&^3)
	return data, raw - data
}

// abort closes the file without finishing it.
func (t *timeline) abort() { t.f.Close() }
