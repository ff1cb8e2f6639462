// Package mp3 encodes the archive's WAV recordings as MP3 for download
// (the format contact-centre archives hand out) by running LAME, the
// encoder Debian ships as `lame`.
//
// No pure-Go MP3 encoder is served by the module proxy (the shine port
// github.com/braheezy/shine-mp3 is refused), and LAME is the maintained
// reference encoder: it encodes 8 kHz audio as MPEG-2.5 Layer III
// (ISO/IEC 13818-3 extended to 8 kHz) without resampling. The WAV is
// checked and its PCM samples are piped to LAME as raw input, so LAME
// never parses a file header; LAME writes into an in-memory file on Linux
// (memfd: seekable, so it adds its Info/LAME tag and decoders trim the
// encoder's delay; never on a disk), runs under a deadline and the
// caller's context, its output is bounded, and its diagnostics are
// returned with every digit blanked (a path or a byte count is never
// worth the risk of repeating a number).
//
// The package imports only cloak's wav package.
package mp3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/cloak-voip/cloak/wav"
)

// Sentinel errors.
var (
	// ErrNoEncoder: the LAME binary is not installed (or not where
	// Options.Binary says).
	ErrNoEncoder = errors.New("mp3: no encoder (install Debian's lame)")
	// ErrFormat: the WAV is not 16-bit PCM, mono or stereo, at a rate
	// MP3 has (8 to 48 kHz).
	ErrFormat = errors.New("mp3: unsupported WAV format")
	// ErrTooLarge: the MP3 would exceed Options.MaxBytes.
	ErrTooLarge = errors.New("mp3: output too large")
	// ErrEncode: LAME failed, timed out or was cancelled.
	ErrEncode = errors.New("mp3: encode failed")
)

// Options configure Encode. The zero value runs "lame" from PATH at 32
// kbit/s per file, for at most 2 minutes, up to 256 MiB of output.
type Options struct {
	// Binary is the LAME executable (default "lame", looked up in PATH).
	Binary string
	// Bitrate is the constant bit rate in kbit/s (default 32: MPEG-2.5
	// at 8 kHz allows 8 to 64).
	Bitrate int
	// Timeout bounds one encoding (default 2 minutes).
	Timeout time.Duration
	// MaxBytes bounds the MP3 (default 256 MiB).
	MaxBytes int64
}

func (o Options) withDefaults() Options {
	if o.Binary == "" {
		o.Binary = "lame"
	}
	if o.Bitrate <= 0 {
		o.Bitrate = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	return o
}

// Available reports whether the encoder binary can be found.
func Available(o Options) bool {
	_, err := exec.LookPath(o.withDefaults().Binary)
	return err == nil
}

// Encode reads the WAV file r (size bytes) and writes its audio as one
// MP3 to w. Nothing is written to w unless the whole encoding succeeds:
// the MP3 is built in memory (bounded by MaxBytes) first, so a failure
// never leaves a file that looks whole but is not.
func Encode(ctx context.Context, o Options, r io.ReadSeeker, size int64, w io.Writer) error {
	o = o.withDefaults()
	info, pcm, err := wav.Open(r, size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if info.Format != wav.PCM || info.BitsPerSample != 16 || info.Channels < 1 || info.Channels > 2 ||
		info.SampleRate < 8000 || info.SampleRate > 48000 {
		return fmt.Errorf("%w: format %d, %d channels, %d Hz, %d bits", ErrFormat, info.Format, info.Channels, info.SampleRate, info.BitsPerSample)
	}
	bin, err := exec.LookPath(o.Binary)
	if err != nil {
		return ErrNoEncoder
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	mode := "m"
	if info.Channels == 2 {
		mode = "s" // caller and agent stay apart, as in the WAV
	}
	// Raw input: LAME reads samples only, never a header it could
	// misread; --quiet keeps progress lines off stderr.
	// Output to a seekable in-memory file where there is one (LAME then
	// writes its Info/LAME tag), else to a pipe.
	dst := "-"
	mem, merr := seekableOutput()
	if merr == nil {
		defer mem.Close()
		dst = "/dev/fd/3"
	}
	cmd := exec.CommandContext(ctx, bin, "--quiet", "-r",
		"-s", strconv.FormatFloat(float64(info.SampleRate)/1000, 'f', -1, 64),
		"--bitwidth", "16", "--signed", "--little-endian",
		"-m", mode, "--cbr", "-b", strconv.Itoa(o.Bitrate), "-", dst)
	cmd.Stdin = pcm
	out := &limitedBuffer{max: o.MaxBytes}
	stderr := &limitedBuffer{max: 4 << 10, truncate: true}
	cmd.Stdout, cmd.Stderr = out, stderr
	if mem != nil {
		cmd.ExtraFiles = []*os.File{mem} // fd 3 in LAME
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if out.over {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.MaxBytes)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrEncode, ctx.Err())
		}
		return fmt.Errorf("%w: %v: %s", ErrEncode, err, blankDigits(stderr.b.Bytes()))
	}
	if mem != nil {
		st, err := mem.Stat()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrEncode, err)
		}
		if st.Size() > o.MaxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.MaxBytes)
		}
		if _, err := mem.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("%w: %v", ErrEncode, err)
		}
		if _, err := io.Copy(out, mem); err != nil {
			return fmt.Errorf("%w: %v", ErrEncode, err)
		}
	}
	if out.b.Len() == 0 {
		return fmt.Errorf("%w: no output", ErrEncode)
	}
	_, err = w.Write(out.b.Bytes())
	return err
}

// limitedBuffer keeps at most max bytes: beyond, it fails the write (the
// encoder's output) or drops the rest (its diagnostics).
type limitedBuffer struct {
	b        bytes.Buffer
	max      int64
	truncate bool
	over     bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	room := l.max - int64(l.b.Len())
	if int64(len(p)) > room {
		if !l.truncate {
			l.over = true
			return 0, ErrTooLarge
		}
		l.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.b.Write(p)
}

// blankDigits returns b as one line with every digit replaced by '#' and
// control characters by spaces.
func blankDigits(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range bytes.TrimSpace(b) {
		switch {
		case c >= '0' && c <= '9':
			c = '#'
		case c < ' ' || c == 0x7f:
			c = ' '
		}
		out = append(out, c)
	}
	return string(out)
}
