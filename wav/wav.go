// Package wav reads and writes the RIFF/WAVE files cloak deals in: prompts
// (8 kHz mono, 16-bit PCM or G.711), recordings (8 kHz stereo 16-bit PCM)
// and what `cloak dtmf scan` is given. Reading checks every RIFF chunk
// header against the size of the input before github.com/go-audio/wav
// decodes the format chunk, so a hostile or truncated file gets an error,
// never a huge allocation or a panic. Writing is the canonical 44-byte PCM
// header, which the recorder rewrites as a recording grows and which crash
// recovery compares against.
//
// The package imports none of cloak's packages.
package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	gowav "github.com/go-audio/wav"
)

// Format is a WAVE format tag (wFormatTag; RFC 2361 appendix A).
type Format uint16

// The formats cloak reads.
const (
	PCM  Format = 1
	ALaw Format = 6
	ULaw Format = 7
)

// HeaderSize is the size of the canonical PCM header PutHeader writes.
const HeaderSize = 44

// ErrBad is wrapped by every error about a file that is not a WAV file
// cloak can read.
var ErrBad = errors.New("bad wav file")

// Info describes a WAV file's audio.
type Info struct {
	Format        Format
	Channels      int
	SampleRate    int
	BitsPerSample int
}

// PutHeader writes into b (HeaderSize bytes at least) the canonical header
// of a PCM file of info's shape holding dataBytes of audio. Format is
// written as PCM whatever info says.
func PutHeader(b []byte, info Info, dataBytes uint32) {
	le := binary.LittleEndian
	frame := uint16(info.Channels * info.BitsPerSample / 8)
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], HeaderSize-8+dataBytes)
	copy(b[8:], "WAVE")
	copy(b[12:], "fmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], uint16(PCM))
	le.PutUint16(b[22:], uint16(info.Channels))
	le.PutUint32(b[24:], uint32(info.SampleRate))
	le.PutUint32(b[28:], uint32(info.SampleRate)*uint32(frame))
	le.PutUint16(b[32:], frame)
	le.PutUint16(b[34:], uint16(info.BitsPerSample))
	copy(b[36:], "data")
	le.PutUint32(b[40:], dataBytes)
}

// Decode reads a WAV file held in memory and returns its shape and the
// bytes of its first data chunk.
func Decode(data []byte) (Info, []byte, error) {
	off, size, err := walk(int64(len(data)), func(at int64, n int) ([]byte, error) {
		return data[at : at+int64(n)], nil
	})
	if err != nil {
		return Info{}, nil, err
	}
	info, err := readFmt(bytes.NewReader(data))
	if err != nil {
		return Info{}, nil, err
	}
	return info, data[off : off+size], nil
}

// Open reads the header of a WAV stream of the given size and returns its
// shape and a reader of its first data chunk, which ends where the chunk
// does. r's position is left inside the data chunk.
func Open(r io.ReadSeeker, size int64) (Info, io.Reader, error) {
	off, n, err := walk(size, func(at int64, n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := r.Seek(at, io.SeekStart); err != nil {
			return nil, err
		}
		_, err := io.ReadFull(r, b)
		return b, err
	})
	if err != nil {
		return Info{}, nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return Info{}, nil, err
	}
	info, err := readFmt(r)
	if err != nil {
		return Info{}, nil, err
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return Info{}, nil, err
	}
	return info, io.LimitReader(r, n), nil
}

// walk checks the RIFF chunk headers of a file of size bytes (read
// through at) so that each chunk fits in the file, and returns the offset
// and size of the first data chunk.
func walk(size int64, at func(off int64, n int) ([]byte, error)) (dataOff, dataSize int64, err error) {
	bad := func(format string, a ...any) (int64, int64, error) {
		return 0, 0, fmt.Errorf("%w: %s", ErrBad, fmt.Sprintf(format, a...))
	}
	if size < 12 {
		return bad("not a RIFF/WAVE file")
	}
	head, err := at(0, 12)
	if err != nil {
		return 0, 0, err
	}
	if string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return bad("not a RIFF/WAVE file")
	}
	sawFmt, sawData := false, false
	for off := int64(12); off+8 <= size; {
		h, err := at(off, 8)
		if err != nil {
			return 0, 0, err
		}
		id := string(h[0:4])
		n := int64(binary.LittleEndian.Uint32(h[4:8]))
		if n > size-off-8 {
			if id == "data" && sawFmt {
				return bad("data chunk truncated: %d bytes declared, %d present", n, size-off-8)
			}
			return bad("chunk %q overruns the file", id)
		}
		switch id {
		case "fmt ":
			if n < 16 {
				return bad("fmt chunk of %d bytes, want at least 16", n)
			}
			sawFmt = true
		case "data":
			if !sawFmt {
				return bad("data chunk before fmt chunk")
			}
			if !sawData {
				dataOff, dataSize = off+8, n
			}
			sawData = true
		}
		off += 8 + n + n%2
	}
	if !sawFmt {
		return bad("no fmt chunk")
	}
	if !sawData {
		return bad("no data chunk")
	}
	return dataOff, dataSize, nil
}

// readFmt decodes the fmt chunk with go-audio/wav, after walk has checked
// that every chunk fits; the library is not hardened against every input,
// so a panic in it is an error too.
func readFmt(r io.ReadSeeker) (info Info, err error) {
	defer func() {
		if p := recover(); p != nil {
			info, err = Info{}, fmt.Errorf("%w: malformed", ErrBad)
		}
	}()
	d := gowav.NewDecoder(r)
	d.ReadInfo()
	if d.Err() != nil || !d.IsValidFile() {
		return Info{}, fmt.Errorf("%w: not a valid wav file", ErrBad)
	}
	return Info{Format: Format(d.WavAudioFormat), Channels: int(d.NumChans), SampleRate: int(d.SampleRate), BitsPerSample: int(d.BitDepth)}, nil
}
