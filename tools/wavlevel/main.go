package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/wav"
)

// errNoLevel is returned for a file with no active frame.
var errNoLevel = errors.New("no active audio")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wavlevel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	active := fs.Bool("active", false, "print only the active level in dBm0 (one file)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || (*active && fs.NArg() != 1) {
		fmt.Fprintln(stderr, "usage: wavlevel [-active] FILE...")
		return 2
	}
	code := 0
	for _, name := range fs.Args() {
		pcm, err := readPCM(name)
		if err != nil {
			fmt.Fprintf(stderr, "wavlevel: %s: %v\n", name, err)
			code = 1
			continue
		}
		level, activity, ok := audio.ActiveLevel(pcm)
		if *active {
			if !ok {
				fmt.Fprintf(stderr, "wavlevel: %s: %v\n", name, errNoLevel)
				return 1
			}
			fmt.Fprintf(stdout, "%.2f\n", level)
			continue
		}
		rms := audio.RMS(pcm)
		fmt.Fprintf(stdout, "%s\tactive %.2f dBm0 (%.0f%% of %.2f s)\trms %.2f dBm0 %.2f dBFS\tpeak %.2f dBFS\n",
			name, level, 100*activity, float64(len(pcm))/audio.G711ClockRate,
			audio.DBm0(rms), audio.DBFS(rms), audio.PeakDBFS(pcm))
	}
	return code
}

// readPCM reads an 8 kHz mono WAV through the hardened reader and returns
// its samples as 16-bit linear PCM.
func readPCM(name string) ([]int16, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	info, raw, err := wav.Decode(data)
	if err != nil {
		return nil, err
	}
	if info.Channels != 1 || info.SampleRate != audio.G711ClockRate {
		return nil, fmt.Errorf("%d channels at %d Hz, want mono 8000 Hz", info.Channels, info.SampleRate)
	}
	switch {
	case info.Format == wav.PCM && info.BitsPerSample == 16:
		pcm := make([]int16, len(raw)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		return pcm, nil
	case info.Format == wav.ULaw && info.BitsPerSample == 8:
		return audio.CodecPCMU().Decode(raw, nil), nil
	case info.Format == wav.ALaw && info.BitsPerSample == 8:
		return audio.CodecPCMA().Decode(raw, nil), nil
	}
	return nil, fmt.Errorf("format %d, %d bits: want 16-bit PCM, µ-law or A-law", info.Format, info.BitsPerSample)
}
