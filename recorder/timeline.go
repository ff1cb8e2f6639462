package recorder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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
	// delay on the caller channel, and 16 KiB of buffer per recording).
	pendSamples = SampleRate / 2
	// wavHeaderSize is the size of the canonical 44-byte PCM WAV header.
	wavHeaderSize = 44
	// maxDataBytes is the largest data chunk a RIFF size field can hold
	// (about 37 hours of 8 kHz 16-bit stereo).
	maxDataBytes = 1<<32 - 1 - (wavHeaderSize - 8)
)

var errTooLong = errors.New("recording exceeds the WAV size limit")

// timeline turns frames stamped with a sample offset into an interleaved
// stereo stream. Each channel keeps the samples not yet written (pend);
// the samples common to both are interleaved and written out. It is used
// by one goroutine at a time: the writer, then Close or Discard.
type timeline struct {
	f       *os.File
	w       *bufio.Writer
	pend    [2][]int16
	flushed int64 // samples per channel already written
	scratch [4 * 512]byte
	err     error
}

// newTimeline writes the samples to data (normally f itself) and patches
// the header in f.
func newTimeline(f *os.File, data io.Writer) *timeline {
	t := &timeline{f: f, w: bufio.NewWriterSize(data, 16<<10)}
	t.pend[0] = make([]int16, 0, pendSamples)
	t.pend[1] = make([]int16, 0, pendSamples)
	var hdr [wavHeaderSize]byte // sizes patched in finish
	putWAVHeader(hdr[:], 0)
	_, t.err = t.w.Write(hdr[:])
	return t
}

// putWAVHeader writes a 44-byte RIFF/WAVE header for 8 kHz 16-bit stereo
// PCM with dataBytes of samples.
func putWAVHeader(b []byte, dataBytes uint32) {
	const channels, bits = 2, 16
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], 36+dataBytes)
	copy(b[8:], "WAVE")
	copy(b[12:], "fmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1) // PCM
	le.PutUint16(b[22:], channels)
	le.PutUint32(b[24:], SampleRate)
	le.PutUint32(b[28:], SampleRate*channels*bits/8)
	le.PutUint16(b[32:], channels*bits/8)
	le.PutUint16(b[34:], bits)
	copy(b[36:], "data")
	le.PutUint32(b[40:], dataBytes)
}

func (t *timeline) end(c int) int64 { return t.flushed + int64(len(t.pend[c])) }

// audio places samples on channel c at sample offset at.
func (t *timeline) audio(c int, at int64, s []int16) {
	t.gap(c, at)
	for len(s) > 0 {
		if len(t.pend[c]) == cap(t.pend[c]) {
			t.force(c)
		}
		k := min(cap(t.pend[c])-len(t.pend[c]), len(s))
		t.pend[c] = append(t.pend[c], s[:k]...)
		s = s[k:]
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

// flush interleaves and writes the samples both channels have.
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
		k := min(n-i, len(t.scratch)/4)
		b := t.scratch[:4*k]
		for j := range k {
			binary.LittleEndian.PutUint16(b[4*j:], uint16(l[i+j]))
			binary.LittleEndian.PutUint16(b[4*j+2:], uint16(r[i+j]))
		}
		_, t.err = t.w.Write(b)
		i += k
	}
	t.pend[0] = t.pend[0][:copy(t.pend[0], t.pend[0][n:])]
	t.pend[1] = t.pend[1][:copy(t.pend[1], t.pend[1][n:])]
	t.flushed += int64(n)
}

// finish pads both channels with silence to at least target samples and
// to each other, writes everything, patches the header sizes, fsyncs and
// closes the file. It returns the samples per channel in the file.
func (t *timeline) finish(target int64) (int64, error) {
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
	err := t.err
	if err == nil {
		err = t.w.Flush()
	}
	if err == nil {
		var hdr [wavHeaderSize]byte
		putWAVHeader(hdr[:], uint32(t.flushed*4))
		_, err = t.f.WriteAt(hdr[:], 0)
	}
	if err == nil {
		err = t.f.Sync()
	}
	if cerr := t.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("finish wav: %w", err)
	}
	return t.flushed, nil
}

// abort closes the file without finishing it.
func (t *timeline) abort() { t.f.Close() }
