package recorder

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sidecarVersion is the format version of a complete recording's
// sidecar. incidentVersion is the version of a sidecar that carries a
// Status and an Incident (a truncated or recovered recording): its
// canonical encoding appends them, so they are signed. Both are read.
const (
	sidecarVersion  = 1
	incidentVersion = 2
)

// Recording statuses (Sidecar.Status). A complete recording's status is
// empty (version 1 sidecars) and reads as StatusComplete.
const (
	// StatusComplete: the recording was closed normally.
	StatusComplete = "complete"
	// StatusTruncated: writing failed mid-recording (disk full, I/O
	// error); the file holds the audio written up to then, with a
	// correct header. Incident says when and why.
	StatusTruncated = "truncated"
	// StatusRecovered: the process ended during the recording (crash,
	// SIGKILL, power loss); at the next start Recover repaired the header
	// to the whole frames on disk and wrote this sidecar. Incident says
	// why and which fields are estimates.
	StatusRecovered = "recovered"
	// statusRecording marks the provisional sidecar written at New
	// (".NAME.json.part"); it is never renamed into place.
	statusRecording = "recording"
)

// canonicalTag opens the canonical encoding of a sidecar.
const canonicalTag = "cloak-recording-v1"

// Verification errors, wrapped with the file name by Verify.
var (
	// ErrMissingSidecar: the WAV has no NAME.json beside it.
	ErrMissingSidecar = errors.New("sidecar missing")
	// ErrBadSidecar: the sidecar is not valid sidecar JSON.
	ErrBadSidecar = errors.New("sidecar unreadable")
	// ErrAudioChanged: the WAV's SHA-256 is not the one in the sidecar.
	ErrAudioChanged = errors.New("audio changed: WAV SHA-256 does not match the sidecar")
	// ErrMarkersChanged: the pause markers are not the ones signed.
	ErrMarkersChanged = errors.New("markers changed: pause markers differ from the signed ones")
	// ErrSidecarChanged: a signed field other than the markers (call id,
	// times, duration, counters, hash) was edited.
	ErrSidecarChanged = errors.New("sidecar changed: signed fields differ from the signed ones")
	// ErrWrongKey: the HMAC does not match under the given key: the key
	// is not the one the recording was signed with, or the sidecar was
	// re-signed (or its digests recomputed) without the key.
	ErrWrongKey = errors.New("HMAC mismatch: wrong key or forged sidecar")
	// ErrUnsigned: a key was given but the sidecar carries no HMAC.
	ErrUnsigned = errors.New("sidecar unsigned")
	// ErrNoKey: the sidecar is signed and no key was given to check it.
	ErrNoKey = errors.New("sidecar signed but no key given")
)

// Marker is one pause interval of one reason. Offsets are milliseconds
// from the start of the recording, which is the start of the WAV.
type Marker struct {
	Reason  Reason    `json:"reason"`
	StartMS int64     `json:"start_ms"`
	EndMS   int64     `json:"end_ms"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

// Layout names what each WAV channel holds.
type Layout struct {
	Left  string `json:"left"`
	Right string `json:"right"`
}

// Digests are SHA-256 digests of the two halves of the canonical encoding.
// They are diagnostics, not proof (anyone can recompute them): they let
// Verify say which part of a sidecar was edited. The HMAC is the proof.
type Digests struct {
	Fields  string `json:"fields_sha256"`
	Markers string `json:"markers_sha256"`
}

// Sidecar is the JSON file written beside each recording.
type Sidecar struct {
	Version       int       `json:"version"`
	CallID        string    `json:"call_id"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	DurationMS    int64     `json:"duration_ms"`
	SampleRate    int       `json:"sample_rate"`
	BitsPerSample int       `json:"bits_per_sample"`
	Codec         string    `json:"codec"`
	Channels      Layout    `json:"channels"`
	Markers       []Marker  `json:"markers"`
	FramesWritten uint64    `json:"frames_written"`
	FramesSilent  uint64    `json:"frames_silent"`
	FramesDropped uint64    `json:"frames_dropped"`
	PausedMS      int64     `json:"paused_ms"`
	// SHA256 is the hex SHA-256 of the whole finished WAV file.
	SHA256  string  `json:"sha256"`
	Digests Digests `json:"digests"`
	// HMAC is the hex HMAC-SHA256 of the canonical encoding under the
	// configured key, or "" when no key was configured.
	HMAC string `json:"hmac"`
	// Status is empty for a complete recording (version 1), or
	// StatusTruncated or StatusRecovered (version 2).
	Status string `json:"status,omitempty"`
	// Incident says what happened to a truncated or recovered recording.
	Incident *Incident `json:"incident,omitempty"`
}

// Incident describes why a recording is not complete.
type Incident struct {
	// Reason says why, in words (the write error, or that the process
	// ended during the recording). It names no content.
	Reason string `json:"reason"`
	// At is when writing failed (truncated) or when the recording was
	// recovered.
	At time.Time `json:"at"`
	// Estimated names the sidecar fields that are estimates rather than
	// known (for example "start" taken from the file's modification time
	// less its duration, or "frames_written", unknown after a crash).
	Estimated []string `json:"estimated,omitempty"`
	// CutBytes is the number of bytes of a torn last frame cut off the
	// end of the audio (recovered) or left unwritten (truncated).
	CutBytes int64 `json:"cut_bytes"`
}

// State returns the recording's status: StatusComplete, StatusTruncated
// or StatusRecovered.
func (s *Sidecar) State() string {
	if s.Status == "" {
		return StatusComplete
	}
	return s.Status
}

// Duration is the recording's duration.
func (s *Sidecar) Duration() time.Duration { return time.Duration(s.DurationMS) * time.Millisecond }

// Canonical returns the byte string the HMAC is computed over: the fields
// encoding followed by the markers encoding. Each item is a netstring
// ("<decimal length>:<bytes>,"); times are RFC 3339 with nanoseconds in
// UTC; integers are decimal.
//
// Fields, in order: "cloak-recording-v1", version, call_id, start, end,
// duration_ms, sample_rate, bits_per_sample, codec, channels.left,
// channels.right, frames_written, frames_silent, frames_dropped,
// paused_ms, sha256; version 2 appends status, incident.reason,
// incident.at, incident.estimated (joined with ","), incident.cut_bytes.
// Markers: the count, then per marker reason, start_ms, end_ms, start,
// end.
func (s *Sidecar) Canonical() []byte {
	f, m := s.canonical()
	return append(f, m...)
}

func (s *Sidecar) canonical() (fields, markers []byte) {
	ns := func(b []byte, v string) []byte {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
		return append(b, ',')
	}
	it := func(v int64) string { return strconv.FormatInt(v, 10) }
	ut := func(v uint64) string { return strconv.FormatUint(v, 10) }
	tm := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, v := range []string{
		canonicalTag, it(int64(s.Version)), s.CallID, tm(s.Start), tm(s.End),
		it(s.DurationMS), it(int64(s.SampleRate)), it(int64(s.BitsPerSample)), s.Codec,
		s.Channels.Left, s.Channels.Right, ut(s.FramesWritten), ut(s.FramesSilent),
		ut(s.FramesDropped), it(s.PausedMS), s.SHA256,
	} {
		fields = ns(fields, v)
	}
	if s.Version >= incidentVersion {
		var inc Incident
		if s.Incident != nil {
			inc = *s.Incident
		}
		for _, v := range []string{s.Status, inc.Reason, tm(inc.At), strings.Join(inc.Estimated, ","), it(inc.CutBytes)} {
			fields = ns(fields, v)
		}
	}
	markers = ns(markers, it(int64(len(s.Markers))))
	for _, mk := range s.Markers {
		for _, v := range []string{string(mk.Reason), it(mk.StartMS), it(mk.EndMS), tm(mk.Start), tm(mk.End)} {
			markers = ns(markers, v)
		}
	}
	return fields, markers
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func sign(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// seal fills Digests and, with a key, HMAC.
func (s *Sidecar) seal(key []byte) {
	f, m := s.canonical()
	s.Digests = Digests{Fields: hexSHA256(f), Markers: hexSHA256(m)}
	s.HMAC = ""
	if len(key) > 0 {
		s.HMAC = sign(key, append(f, m...))
	}
}

// sidecarPath is the sidecar's path for a WAV path: NAME.wav → NAME.json.
func sidecarPath(wavPath string) string {
	return strings.TrimSuffix(wavPath, filepath.Ext(wavPath)) + ".json"
}

// SidecarPath returns the sidecar's path for a WAV path (NAME.wav →
// NAME.json).
func SidecarPath(wavPath string) string { return sidecarPath(wavPath) }

// sidecarPart is the temporary name a sidecar is written under:
// ".NAME.json.part" (also the provisional sidecar New reserves).
func sidecarPart(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part")
}

// writeSidecar writes s to path via ".NAME.json.part", fsync and rename.
func writeSidecar(path string, s *Sidecar) error {
	return writeSidecarVia(path, sidecarPart(path), s)
}

// writeSidecarVia writes s to part, fsyncs it and renames it to path. An
// existing part (the space New reserved) is overwritten in place and then
// cut to length rather than truncated first, so a full disk does not
// take back the space the sidecar needs.
func writeSidecarVia(path, part string, s *Sidecar) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: encode sidecar: %w", ErrWrite, err)
	}
	b = append(b, '\n')
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrWrite, part, err)
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, path)
	}
	if err != nil {
		// The part stays: Recover finishes the recording on next start.
		return fmt.Errorf("%w: sidecar %s: %w", ErrWrite, path, err)
	}
	return nil
}

// sidecarReserve is the space New reserves for the sidecar: enough for
// the sidecar with about twenty pause markers. A longer one grows the
// file at Close.
const sidecarReserve = 4096

// ReadSidecar reads the sidecar of the WAV at wavPath.
func ReadSidecar(wavPath string) (Sidecar, error) {
	p := sidecarPath(wavPath)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Sidecar{}, fmt.Errorf("%s: %w", p, ErrMissingSidecar)
	}
	if err != nil {
		return Sidecar{}, fmt.Errorf("%s: %w: %w", p, ErrBadSidecar, err)
	}
	var s Sidecar
	if err := json.Unmarshal(b, &s); err != nil {
		return Sidecar{}, fmt.Errorf("%s: %w: %w", p, ErrBadSidecar, err)
	}
	if s.Version != sidecarVersion && s.Version != incidentVersion {
		return Sidecar{}, fmt.Errorf("%s: %w: version %d, want %d or %d", p, ErrBadSidecar, s.Version, sidecarVersion, incidentVersion)
	}
	if s.Status == statusRecording {
		return Sidecar{}, fmt.Errorf("%s: %w: a provisional sidecar of a recording not finished", p, ErrBadSidecar)
	}
	return s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Report is the outcome of Verify.
type Report struct {
	// WAV and SidecarPath are the files checked.
	WAV, SidecarPath string
	// Sidecar is the sidecar as read (its fields are trustworthy only
	// when Verify returned nil and Signed is true).
	Sidecar Sidecar
	// AudioSHA256 is the SHA-256 of the WAV as found.
	AudioSHA256 string
	// Signed reports whether the sidecar carries an HMAC; when Verify
	// returns nil with Signed true, the HMAC was checked and matched.
	Signed bool
}

// Verify checks the recording at wavPath against its sidecar: it
// recomputes the WAV's SHA-256 and compares it with the sidecar's, checks
// the sidecar's digests to name what was edited, and checks the HMAC under
// key. The error wraps one of ErrMissingSidecar, ErrBadSidecar,
// ErrAudioChanged, ErrMarkersChanged, ErrSidecarChanged, ErrWrongKey,
// ErrUnsigned (a key was given, the sidecar has no HMAC) or ErrNoKey (the
// sidecar has an HMAC, no key was given).
//
// An unsigned sidecar verified without a key returns nil with Signed
// false: the audio matches the hash beside it, which proves nothing
// against someone who can edit both files.
func Verify(wavPath string, key []byte) (Report, error) {
	rep := Report{WAV: wavPath, SidecarPath: sidecarPath(wavPath)}
	sc, err := ReadSidecar(wavPath)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", wavPath, err)
	}
	rep.Sidecar = sc
	rep.Signed = sc.HMAC != ""
	rep.AudioSHA256, err = fileSHA256(wavPath)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", wavPath, err)
	}
	if !hmac.Equal([]byte(rep.AudioSHA256), []byte(strings.ToLower(sc.SHA256))) {
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrAudioChanged)
	}
	if sc.Version < incidentVersion && (sc.Status != "" || sc.Incident != nil) {
		// Version 1 does not sign a status: one added later is an edit.
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrSidecarChanged)
	}
	f, m := sc.canonical()
	if hexSHA256(m) != sc.Digests.Markers {
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrMarkersChanged)
	}
	if hexSHA256(f) != sc.Digests.Fields {
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrSidecarChanged)
	}
	switch {
	case !rep.Signed && len(key) == 0:
		return rep, nil
	case !rep.Signed:
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrUnsigned)
	case len(key) == 0:
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrNoKey)
	}
	want, err := hex.DecodeString(sc.HMAC)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w: hmac is not hex", wavPath, ErrBadSidecar)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(f)
	mac.Write(m)
	if !hmac.Equal(mac.Sum(nil), want) {
		return rep, fmt.Errorf("verify %s: %w", wavPath, ErrWrongKey)
	}
	return rep, nil
}
