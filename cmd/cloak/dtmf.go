package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/cloak-voip/cloak/wav"
	"github.com/zaf/g711"

	"github.com/cloak-voip/cloak/dtmf"
)

// errScan is the sentinel for `cloak dtmf scan` failures.
var errScan = errors.New("cannot scan")

// finding is one digit found in a recording.
type finding struct {
	offset  int64 // sample index of the start of the tone
	channel int   // 1-based
	digit   byte
}

// runDTMF implements `cloak dtmf scan [-mask] FILE.wav...`: it lists every
// DTMF digit in the recordings with its time offset and channel, and exits
// 1 when any is found, 0 when none, 2 on error.
func runDTMF(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "scan" {
		fmt.Fprintln(stderr, "usage: cloak dtmf scan [-mask] FILE.wav...")
		return 2
	}
	fs := flag.NewFlagSet("cloak dtmf scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mask := fs.Bool("mask", false, "print * instead of each digit found")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: cloak dtmf scan [-mask] FILE.wav...

Lists every DTMF digit found in WAV recordings (8 kHz; 16-bit PCM, A-law
or µ-law; mono or stereo, each channel scanned on its own) as
"MM:SS.mmm chN D". Exit status: 1 if any digit was found, 0 if none,
2 on error. It exists to audit recordings for leaked card digits, so it
prints the digits; -mask prints * instead.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	found := false
	for _, path := range fs.Args() {
		fnd, err := scanFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "cloak dtmf scan: %v\n", err)
			return 2
		}
		for _, f := range fnd {
			found = true
			d := f.digit
			if *mask {
				d = '*'
			}
			ms := f.offset * 1000 / dtmf.SampleRate
			prefix := ""
			if fs.NArg() > 1 {
				prefix = path + ": "
			}
			fmt.Fprintf(stdout, "%s%02d:%02d.%03d ch%d %c\n", prefix, ms/60000, ms/1000%60, ms%1000, f.channel, d)
		}
	}
	if found {
		return 1
	}
	return 0
}

// scanFile opens path and scans it.
func scanFile(path string) ([]finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errScan, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errScan, err)
	}
	fnd, err := scanWAV(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fnd, nil
}

// scanWAV runs one in-band detector per channel over a WAV stream of size
// bytes and returns the digits found, in time order.
func scanWAV(r io.ReadSeeker, size int64) ([]finding, error) {
	info, data, err := wav.Open(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: not a readable WAV file: %w", errScan, err)
	}
	chans := info.Channels
	var width int
	switch {
	case info.Format == wav.PCM && info.BitsPerSample == 16:
		width = 2
	case (info.Format == wav.ALaw || info.Format == wav.ULaw) && info.BitsPerSample == 8:
		width = 1
	default:
		return nil, fmt.Errorf("%w: WAV format %d with %d bits per sample is not supported (need 16-bit PCM, A-law or µ-law)",
			errScan, info.Format, info.BitsPerSample)
	}
	if info.SampleRate != dtmf.SampleRate {
		return nil, fmt.Errorf("%w: sample rate is %d Hz; only 8000 Hz is scanned (convert with: sox IN.wav -r 8000 OUT.wav)",
			errScan, info.SampleRate)
	}
	if chans < 1 || chans > 8 {
		return nil, fmt.Errorf("%w: %d channels (1 to 8)", errScan, chans)
	}

	dets := make([]*dtmf.Detector, chans)
	for i := range dets {
		d, err := dtmf.NewDetector(dtmf.DetectorConfig{})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errScan, err)
		}
		dets[i] = d
	}
	const frames = 160
	raw := make([]byte, frames*chans*width)
	pcm := make([][]int16, chans)
	for i := range pcm {
		pcm[i] = make([]int16, frames)
	}
	var out []finding
	collect := func(ch int, evs []dtmf.Event) {
		for _, ev := range evs {
			if ev.Kind == dtmf.KindEnd {
				start := ev.Offset - int64(ev.Duration*dtmf.SampleRate/1e9)
				out = append(out, finding{offset: start, channel: ch + 1, digit: ev.Digit})
			}
		}
	}
	for {
		n, err := io.ReadFull(data, raw)
		nf := n / (chans * width)
		for i := range nf {
			for c := range chans {
				off := (i*chans + c) * width
				switch {
				case width == 2:
					pcm[c][i] = int16(uint16(raw[off]) | uint16(raw[off+1])<<8)
				case info.Format == wav.ALaw:
					pcm[c][i] = g711.DecodeAlawFrame(raw[off])
				default:
					pcm[c][i] = g711.DecodeUlawFrame(raw[off])
				}
			}
		}
		for c := range chans {
			collect(c, dets[c].Process(pcm[c][:nf]))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading audio: %w", errScan, err)
		}
	}
	// half a second of silence closes a digit still sounding at the end
	silence := make([]int16, dtmf.SampleRate/2)
	for c := range chans {
		collect(c, dets[c].Process(silence))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].offset != out[j].offset {
			return out[i].offset < out[j].offset
		}
		return out[i].channel < out[j].channel
	})
	return out, nil
}
