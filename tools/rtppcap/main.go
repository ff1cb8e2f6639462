package main

//go:generate go run . -o ../../testdata/sipp/pcap/pcmu-tone-3s.pcap -codec pcmu -tone 1004 -level -10 -seconds 3
//go:generate go run . -o ../../testdata/sipp/pcap/pcma-tone-3s.pcap -codec pcma -tone 1004 -level -10 -seconds 3
//go:generate go run . -o ../../testdata/sipp/pcap/pay-rfc4733.pcap -codec pcmu -tone 1004 -level -20 -digits 4111111111111111#,,,,,,,,,,1230,,,,737# -lead 3s -pause 500ms -tail 8s
//go:generate go run . -o ../../testdata/sipp/pcap/pay-invalid3.pcap -codec pcmu -tone 1004 -level -20 -digits 4111111111111112#,,,,,,,,,,4111111111111112#,,,,,,,,,,4111111111111112# -lead 3s -pause 500ms -tail 11s
//go:generate go run . -o ../../testdata/sipp/pcap/pay-card-expiry.pcap -codec pcmu -tone 1004 -level -20 -digits 4111111111111111#,,,,,,,,,,1230 -lead 3s -pause 500ms -tail 14s
//go:generate go run . -o ../../testdata/sipp/pcap/caller-agent-rfc4733.pcap -codec pcmu -tone 1004 -level -20 -digits 2,,,,,,,,,,,,,,,,4111111111111111#,,,,,,,,,1230,,,,737# -lead 2400ms -pause 500ms -tail 12s
//go:generate go run . -o ../../testdata/sipp/pcap/caller-agent-inband.pcap -codec pcmu -tone 1004 -level -20 -inband -digits 2,,,,,,,,,,,,,,,,4111111111111111#,,,,,,,,,1230,,,,737# -lead 2400ms -pause 500ms -tail 12s
//go:generate go run . -o ../../testdata/sipp/pcap/agent-star7.pcap -codec pcmu -tone 600 -level -20 -digits *7 -lead 3s -tail 30s
//go:generate go run . -o ../../testdata/sipp/pcap/agent-talk.pcap -codec pcmu -tone 600 -level -20 -seconds 35
//go:generate go run . -o ../../testdata/sipp/pcap/supervisor-talk.pcap -codec pcmu -tone 1800 -level -20 -seconds 40
//go:generate go run . -o ../../testdata/sipp/pcap/supervisor-keys.pcap -codec pcmu -tone 1800 -level -20 -digits 5,,,,,,,,,,,6 -lead 5s -pause 500ms -tail 25s

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtppcap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out     = fs.String("o", "", "output pcap `file` (required)")
		codec   = fs.String("codec", "pcmu", "audio codec: pcmu or pcma")
		tone    = fs.Float64("tone", 0, "tone frequency in `Hz`; 0 sends digital silence")
		level   = fs.Float64("level", -10, "tone level in `dBm0`")
		seconds = fs.Float64("seconds", 3, "length of the audio in seconds (ignored with -digits; see -lead and -tail)")
		digits  = fs.String("digits", "", "RFC 4733 events to send: 0-9 * # A-D")
		eventPT = fs.Int("event-pt", 101, "telephone-event payload `type`")
		lead    = fs.Duration("lead", time.Second, "with -digits: audio before the first digit")
		tail    = fs.Duration("tail", time.Second, "with -digits: audio after the last digit")
		digLen  = fs.Duration("digit-len", 100*time.Millisecond, "with -digits: length of each event")
		gap     = fs.Duration("gap", 100*time.Millisecond, "with -digits: audio between two events")
		volume  = fs.Int("volume", 10, "with -digits: event volume (0-63, meaning -dBm0)")
		pause   = fs.Duration("pause", time.Second, "with -digits: the audio each ',' in the digits stands for")
		inband  = fs.Bool("inband", false, "with -digits: send the digits as DTMF tone pairs in the audio (at -level) instead of RFC 4733 events")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: rtppcap -o FILE [flags]")
		fs.PrintDefaults()
		return 2
	}
	spec := Spec{
		Codec:     Codec(*codec),
		ToneHz:    *tone,
		LevelDBm0: *level,
		Audio:     time.Duration(*seconds * float64(time.Second)),
		Digits:    *digits,
		EventPT:   uint8(*eventPT),
		Lead:      *lead,
		Tail:      *tail,
		DigitLen:  *digLen,
		Gap:       *gap,
		Volume:    uint8(*volume),
		Pause:     *pause,
		InBand:    *inband,
	}
	if *eventPT < 96 || *eventPT > 127 {
		fmt.Fprintf(stderr, "rtppcap: -event-pt %d is not a dynamic payload type (96-127)\n", *eventPT)
		return 2
	}
	if *volume < 0 || *volume > 63 {
		fmt.Fprintf(stderr, "rtppcap: -volume %d out of range 0-63\n", *volume)
		return 2
	}
	pkts, err := spec.Packets()
	if err != nil {
		fmt.Fprintf(stderr, "rtppcap: %v\n", err)
		return 2
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(stderr, "rtppcap: %v\n", err)
		return 1
	}
	if err := WritePcap(f, pkts); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "rtppcap: %s: %v\n", *out, err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "rtppcap: %v\n", err)
		return 1
	}
	return 0
}
