package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/recorder"
)

const recordingUsage = `usage:
  cloak recording verify [-key-file F | -key-env VAR] FILE.wav
  cloak recording info FILE.wav

verify checks FILE.wav against its sidecar FILE.json: the WAV's SHA-256,
the pause markers and the HMAC-SHA256 under the recording key. It prints
OK or FAILED with the reason. Exit status: 0 OK, 1 FAILED, 2 usage error
(or a signed recording and no key given).

The key is the content of -key-file with surrounding white space trimmed,
or the value of the environment variable named by -key-env. Without a key
an unsigned recording is reported as OK (unsigned): its audio matches the
hash beside it, which proves nothing against someone who can edit both.

A recording that is not complete says so: "recovered" (cloak stopped
during the call; the audio on disk was kept at the next start) or
"truncated" (writing failed mid-call, e.g. disk full; the audio written
before was kept), with the interval the audio covers, why, and which
fields are estimates. Its status is signed like the rest.

info prints the recording's status, duration, codec, counters and pause
markers from the sidecar (it does not verify them).`

// runRecording implements `cloak recording verify|info`.
func runRecording(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, recordingUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return runRecordingVerify(args[1:], stdout, stderr)
	case "info":
		return runRecordingInfo(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, recordingUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "cloak recording: unknown subcommand %q\n", args[0])
		fmt.Fprintln(stderr, recordingUsage)
		return 2
	}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (`verify FILE.wav -key-file F`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneFileArg parses args (flags may follow the file) and wants exactly
// one file; when it does not get one, ok is false and code is the exit
// status (0 for -h).
func oneFileArg(fs *flag.FlagSet, args []string) (path string, code int, ok bool) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0, false
		}
		return "", 2, false
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", 2, false
	}
	return pos[0], 0, true
}

func runRecordingVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloak recording verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key-file", "", "read the HMAC key from this file")
	keyEnv := fs.String("key-env", "", "read the HMAC key from this environment variable")
	fs.Usage = func() { fmt.Fprintln(stderr, recordingUsage) }
	path, code, ok := oneFileArg(fs, args)
	if !ok {
		return code
	}
	if *keyFile != "" && *keyEnv != "" {
		fmt.Fprintln(stderr, "cloak recording verify: give -key-file or -key-env, not both")
		return 2
	}
	var key []byte
	switch {
	case *keyFile != "":
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "cloak recording verify: key file: %v\n", err)
			return 2
		}
		key = bytes.TrimSpace(b)
		if len(key) == 0 {
			fmt.Fprintf(stderr, "cloak recording verify: key file %s is empty\n", *keyFile)
			return 2
		}
	case *keyEnv != "":
		v, ok := os.LookupEnv(*keyEnv)
		if !ok || v == "" {
			fmt.Fprintf(stderr, "cloak recording verify: environment variable %s is not set\n", *keyEnv)
			return 2
		}
		key = []byte(v)
	}

	rep, err := recorder.Verify(path, key)
	switch {
	case errors.Is(err, recorder.ErrNoKey):
		fmt.Fprintf(stderr, "cloak recording verify: %s is signed: give -key-file or -key-env\n", path)
		return 2
	case err != nil:
		fmt.Fprintf(stdout, "FAILED %s: %v\n", path, verifyReason(err))
		return 1
	case !rep.Signed:
		fmt.Fprintf(stdout, "OK (unsigned%s) %s: audio matches the sidecar's SHA-256; no HMAC, so an edit of both files would not show\n", statusTag(rep.Sidecar, ", "), path)
	default:
		fmt.Fprintf(stdout, "OK%s %s: audio, %d pause marker(s) and HMAC match (%s, call %s)\n",
			statusTag(rep.Sidecar, " "), path, len(rep.Sidecar.Markers), fmtDuration(rep.Sidecar.Duration()), rep.Sidecar.CallID)
	}
	if line := incidentLine(rep.Sidecar); line != "" {
		fmt.Fprintln(stdout, "  "+line)
	}
	return 0
}

// statusTag is "(recovered recording)" or "(truncated recording)" after
// sep, or "" for a complete recording (sep is folded into the
// parentheses when it is ", ").
func statusTag(s recorder.Sidecar, sep string) string {
	st := s.State()
	if st == recorder.StatusComplete {
		return ""
	}
	if sep == ", " {
		return ", " + st + " recording"
	}
	return " (" + st + " recording)"
}

// incidentLine says what happened to a recovered or truncated recording
// and what interval its audio covers; "" for a complete one.
func incidentLine(s recorder.Sidecar) string {
	if s.State() == recorder.StatusComplete || s.Incident == nil {
		return ""
	}
	inc := s.Incident
	from, to := s.Start.UTC(), s.Start.Add(s.Duration()).UTC()
	var b bytes.Buffer
	switch s.State() {
	case recorder.StatusRecovered:
		fmt.Fprintf(&b, "recovered recording (recovered %s): %s", inc.At.UTC().Format(time.RFC3339), inc.Reason)
	case recorder.StatusTruncated:
		fmt.Fprintf(&b, "truncated recording (at %s): %s", inc.At.UTC().Format(time.RFC3339Nano), inc.Reason)
	default:
		fmt.Fprintf(&b, "%s recording: %s", s.State(), inc.Reason)
	}
	fmt.Fprintf(&b, "; audio covers %s to %s (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), fmtDuration(s.Duration()))
	if inc.CutBytes > 0 {
		fmt.Fprintf(&b, "; %d byte(s) of a torn last frame cut", inc.CutBytes)
	}
	if len(inc.Estimated) > 0 {
		fmt.Fprintf(&b, "; estimated, not known: %s", strings.Join(inc.Estimated, ", "))
	}
	return b.String()
}

// verifyReason returns the verification sentinel in err's chain (its text
// names what failed), or err itself.
func verifyReason(err error) error {
	for _, s := range []error{
		recorder.ErrMissingSidecar, recorder.ErrBadSidecar, recorder.ErrAudioChanged,
		recorder.ErrMarkersChanged, recorder.ErrSidecarChanged, recorder.ErrWrongKey,
		recorder.ErrUnsigned,
	} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

func runRecordingInfo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloak recording info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, recordingUsage) }
	path, code, ok := oneFileArg(fs, args)
	if !ok {
		return code
	}
	s, err := recorder.ReadSidecar(path)
	if err != nil {
		fmt.Fprintf(stderr, "cloak recording info: %v\n", err)
		return 1
	}
	w := stdout
	fmt.Fprintf(w, "file:      %s\n", path)
	fmt.Fprintf(w, "status:    %s\n", s.State())
	if line := incidentLine(s); line != "" {
		fmt.Fprintf(w, "incident:  %s\n", line)
	}
	fmt.Fprintf(w, "call id:   %s\n", s.CallID)
	fmt.Fprintf(w, "start:     %s\n", s.Start.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(w, "duration:  %s\n", fmtDuration(s.Duration()))
	fmt.Fprintf(w, "format:    %d Hz %d-bit PCM stereo, left %s, right %s (call codec %s)\n",
		s.SampleRate, s.BitsPerSample, s.Channels.Left, s.Channels.Right, s.Codec)
	// Frames count what the call handed over; a secure segment hands over
	// none, so a call secure throughout shows zeros here and its time on
	// the paused line.
	fmt.Fprintf(w, "frames:    %d written as audio, %d handed over while paused, %d dropped (%s each)\n",
		s.FramesWritten, s.FramesSilent, s.FramesDropped, recorder.FrameDuration)
	fmt.Fprintf(w, "paused:    %s written as silence%s\n", fmtDuration(time.Duration(s.PausedMS)*time.Millisecond), pausedByReason(s.Markers))
	signed := "no"
	if s.HMAC != "" {
		signed = "yes (HMAC-SHA256; run verify to check)"
	}
	fmt.Fprintf(w, "signed:    %s\n", signed)
	fmt.Fprintf(w, "markers:   %d\n", len(s.Markers))
	for _, m := range s.Markers {
		fmt.Fprintf(w, "  %s - %s  %-8s %s - %s\n",
			fmtDuration(time.Duration(m.StartMS)*time.Millisecond), fmtDuration(time.Duration(m.EndMS)*time.Millisecond),
			m.Reason, m.Start.UTC().Format(time.RFC3339Nano), m.End.UTC().Format(time.RFC3339Nano))
	}
	return 0
}

// pausedByReason sums the markers' time per reason, in the order the
// reasons first appear: " (secure 00:03.000, agent 00:01.000)", or ""
// without markers. Reasons may overlap, so the sums may exceed the
// paused total.
func pausedByReason(ms []recorder.Marker) string {
	var order []string
	sum := map[string]time.Duration{}
	for _, m := range ms {
		r := string(m.Reason)
		if _, ok := sum[r]; !ok {
			order = append(order, r)
		}
		sum[r] += time.Duration(m.EndMS-m.StartMS) * time.Millisecond
	}
	if len(order) == 0 {
		return ""
	}
	parts := make([]string, len(order))
	for i, r := range order {
		parts[i] = r + " " + fmtDuration(sum[r])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// fmtDuration prints d as [H:]MM:SS.mmm.
func fmtDuration(d time.Duration) string {
	ms := d.Milliseconds()
	h, m, s, f := ms/3600000, ms/60000%60, ms/1000%60, ms%1000
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d.%03d", h, m, s, f)
	}
	return fmt.Sprintf("%02d:%02d.%03d", m, s, f)
}
