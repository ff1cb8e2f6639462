package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// RecoverMode says what Recover does with a recording a crash left
// unfinished.
type RecoverMode int

const (
	// RecoverRepair (the zero value) repairs it: the WAV header is set to
	// the whole frames on disk, a signed sidecar marked StatusRecovered
	// is written and both are renamed into place.
	RecoverRepair RecoverMode = iota
	// RecoverQuarantine moves its files, unrepaired, to the quarantine
	// directory.
	RecoverQuarantine
)

// Recover actions (Recovered.Action).
const (
	ActionRecovered   = "recovered"   // repaired and renamed into place
	ActionQuarantined = "quarantined" // moved aside unrepaired
	ActionCompleted   = "completed"   // a finished sidecar renamed into place
	ActionRemoved     = "removed"     // a stale temporary file removed
	ActionSkipped     = "skipped"     // in use by another process
)

// QuarantineDir is the directory under RecoverConfig.Dir that quarantined
// files go to (keeping their place below Dir); Recover does not look in it.
const QuarantineDir = "quarantine"

// recoveringSuffix names the temporary sidecar Recover writes before it
// renames it into place.
const recoveringSuffix = ".recovering"

// RecoverConfig configures Recover.
type RecoverConfig struct {
	// Dir is the recordings directory; Recover walks it recursively.
	Dir string
	// Key signs recovered sidecars, as Config.Key signs normal ones.
	Key []byte
	// Mode is RecoverRepair or RecoverQuarantine.
	Mode RecoverMode
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// stopAfter, when set, ends a repair after that many of its steps
	// (1: sidecar in place, 2: header repaired), as a crash would (tests).
	stopAfter int
}

// Recovered is what Recover did with one file. It names paths and sizes,
// never content.
type Recovered struct {
	// Path is the file as found; Dest where it went (the final WAV or
	// sidecar, or the quarantined file); empty for ActionRemoved and
	// ActionSkipped.
	Path, Dest string
	// Action is one of the Action constants.
	Action string
	// Bytes is the audio kept (data bytes, header excluded) and CutBytes
	// the torn last frame cut off; Duration the audio kept.
	Bytes, CutBytes int64
	Duration        time.Duration
	// Reason says why, in words.
	Reason string
	// Err is set when the file could not be dealt with; it is left as it
	// was and the next start tries again.
	Err error
}

// Recover finds the recordings a crash left unfinished under cfg.Dir —
// ".NAME.wav.part" files, with or without their provisional sidecar
// ".NAME.json.part", and sidecar parts beside a finished NAME.wav — and
// repairs or quarantines each (cfg.Mode). It must run before any
// recording starts in cfg.Dir in this process; a part another process
// is still writing (it holds the file's lock) is skipped.
//
// Every step is safe to repeat: a crash during Recover leaves files that
// the next Recover finishes the same way. The WAV part is repaired in
// place under its temporary name and fsynced; the sidecar is written
// under a temporary name, fsynced and renamed first; the WAV is renamed
// last, so no file under a final name looks whole and is not.
//
// It returns one Recovered per file dealt with, in walk order, and an
// error only when the directory cannot be walked.
func Recover(cfg RecoverConfig) ([]Recovered, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var wavParts, jsonParts, stale []string
	qdir := filepath.Join(cfg.Dir, QuarantineDir)
	err := filepath.WalkDir(cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == qdir {
				return filepath.SkipDir
			}
			return nil
		}
		n := d.Name()
		switch {
		case !d.Type().IsRegular() || !strings.HasPrefix(n, "."):
		case strings.HasSuffix(n, ".wav.part"):
			wavParts = append(wavParts, p)
		case strings.HasSuffix(n, ".json.part"):
			jsonParts = append(jsonParts, p)
		case strings.HasSuffix(n, ".json"+recoveringSuffix):
			stale = append(stale, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", cfg.Dir, err)
	}
	var out []Recovered
	for _, p := range stale {
		rc := Recovered{Path: p, Action: ActionRemoved, Reason: "temporary sidecar of an interrupted recovery"}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			rc.Err = err
		}
		out = append(out, rc)
	}
	done := map[string]bool{} // json parts dealt with beside their WAV part
	for _, p := range wavParts {
		dir, name := filepath.Split(p)
		name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".wav.part")
		jp := filepath.Join(dir, "."+name+".json.part")
		done[jp] = true
		if lockedElsewhere(p) {
			out = append(out, Recovered{Path: p, Action: ActionSkipped, Reason: "being recorded by another process"})
			continue
		}
		if cfg.Mode == RecoverQuarantine {
			out = append(out, quarantine(cfg, p, "unfinished recording"))
			if exists(jp) {
				out = append(out, quarantine(cfg, jp, "provisional sidecar of an unfinished recording"))
			}
			continue
		}
		final := filepath.Join(dir, name+".wav")
		if exists(final) {
			out = append(out, quarantine(cfg, p, "unfinished recording whose name is taken by a finished one"))
			if exists(jp) {
				out = append(out, quarantine(cfg, jp, "provisional sidecar of an unfinished recording"))
			}
			continue
		}
		out = append(out, repair(cfg, p, final, jp, "cloak stopped during the recording (no clean close)"))
	}
	for _, jp := range jsonParts {
		if done[jp] {
			continue
		}
		out = append(out, recoverSidecarPart(cfg, jp)...)
	}
	return out, nil
}

// recoverSidecarPart deals with a sidecar part whose WAV part is gone: a
// crash in Close after the WAV was renamed into place.
func recoverSidecarPart(cfg RecoverConfig, jp string) []Recovered {
	dir, name := filepath.Split(jp)
	name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".json.part")
	wav := filepath.Join(dir, name+".wav")
	final := filepath.Join(dir, name+".json")
	if !exists(wav) {
		return []Recovered{quarantine(cfg, jp, "sidecar part without a recording")}
	}
	if exists(final) {
		if _, err := ReadSidecar(wav); err == nil {
			rc := Recovered{Path: jp, Action: ActionRemoved, Reason: "stale sidecar part beside a finished recording"}
			if err := os.Remove(jp); err != nil {
				rc.Err = err
			}
			return []Recovered{rc}
		}
	}
	if cfg.Mode == RecoverQuarantine {
		return []Recovered{quarantine(cfg, wav, "recording without its sidecar"), quarantine(cfg, jp, "sidecar part of a recording")}
	}
	// A sidecar finished but not renamed: it is the right one if it
	// matches the audio.
	if s, ok := readPart(jp); ok && s.Status != statusRecording && s.SHA256 != "" {
		if sum, err := fileSHA256(wav); err == nil && sum == s.SHA256 {
			rc := Recovered{Path: jp, Dest: final, Action: ActionCompleted, Reason: "finished sidecar renamed into place"}
			if err := os.Rename(jp, final); err != nil {
				rc.Err = err
			} else {
				syncDir(dir)
			}
			return []Recovered{rc}
		}
	}
	return []Recovered{repair(cfg, wav, wav, jp, "cloak stopped after the audio was finished, before its sidecar was written")}
}

// readPart reads a sidecar part (provisional or finished); ok is false if
// it is not a sidecar (torn, empty).
func readPart(p string) (Sidecar, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return Sidecar{}, false
	}
	var s Sidecar
	if json.Unmarshal(b, &s) != nil || s.CallID == "" || s.Start.IsZero() {
		return Sidecar{}, false
	}
	return s, true
}

// repair sets the header of the WAV at p to the whole frames on disk,
// writes a recovered sidecar for final (from the provisional sidecar jp
// when readable, estimates otherwise), renames p to final and removes jp.
//
// Steps, each safe to repeat: the sidecar is written first (under a
// temporary name, fsynced, renamed), with the hash of the WAV as it will
// be; then the WAV is cut to its whole frames, its header set and fsynced;
// then it is renamed into place. A run that finds the sidecar in place
// and matching the part finishes from the second step, so what a first
// run knew (the torn tail it cut) is not lost.
func repair(cfg RecoverConfig, p, final, jp, why string) Recovered {
	rc := Recovered{Path: p, Dest: final, Action: ActionRecovered, Reason: why}
	dir := filepath.Dir(final)
	jsonFinal := sidecarPath(final)
	st, err := os.Stat(p)
	if err != nil {
		rc.Err = err
		return rc
	}
	data, cut := wholeFrames(st.Size())
	sum, err := repairedSHA256(p, st.Size(), data)
	if errors.Is(err, errNotWAV) {
		return quarantine(cfg, p, "not a WAV file cloak wrote")
	}
	if err != nil {
		rc.Err = err
		return rc
	}
	if prev, err := ReadSidecar(final); err == nil && prev.Status == StatusRecovered && prev.SHA256 == sum && prev.Incident != nil {
		// An interrupted run wrote the sidecar: finish its work.
		rc.Bytes, rc.CutBytes = data, max(cut, prev.Incident.CutBytes)
		rc.Duration = time.Duration(data/4) * time.Second / SampleRate
		return finishRepair(cfg, rc, p, final, jp, st.Size())
	}
	rc.Bytes, rc.CutBytes = data, cut
	samples := data / 4
	rc.Duration = time.Duration(samples) * time.Second / SampleRate
	name := strings.TrimSuffix(filepath.Base(final), ".wav")
	meta := Sidecar{
		Version: incidentVersion, Status: StatusRecovered,
		DurationMS: samples * 1000 / SampleRate, SampleRate: SampleRate, BitsPerSample: 16,
		Channels: Layout{Left: Caller.String(), Right: Agent.String()},
		Markers:  []Marker{}, SHA256: sum,
	}
	// The last write ended about when the file was last modified.
	estimated := []string{"end", "frames_written", "frames_silent", "frames_dropped", "paused_ms", "markers"}
	if prov, ok := readPart(jp); ok {
		meta.CallID, meta.Start, meta.Codec = prov.CallID, prov.Start.UTC(), prov.Codec
		// The markers as of the last writer turn before the crash; a
		// pause still open ends with the audio, an estimate.
		open := false
		for _, m := range prov.Markers {
			if m.EndMS < 0 || m.End.IsZero() {
				open = true
				m.EndMS = max(meta.DurationMS, m.StartMS)
				m.End = meta.Start.Add(time.Duration(m.EndMS) * time.Millisecond)
			}
			meta.Markers = append(meta.Markers, m)
		}
		if !open {
			estimated = slices.DeleteFunc(estimated, func(f string) bool { return f == "markers" })
		}
		if prov.Status != statusRecording { // a finished sidecar that did not match
			estimated = append(estimated, "codec")
		}
	} else {
		meta.CallID, meta.Start = name, st.ModTime().Add(-rc.Duration).UTC().Round(0)
		estimated = append([]string{"call_id", "start", "codec"}, estimated...)
	}
	meta.End = meta.Start.Add(rc.Duration)
	meta.Incident = &Incident{Reason: why, At: cfg.Now().UTC().Round(0), Estimated: estimated, CutBytes: cut}
	meta.seal(cfg.Key)
	if err := writeSidecarVia(jsonFinal, filepath.Join(dir, "."+filepath.Base(jsonFinal)+recoveringSuffix), &meta); err != nil {
		rc.Err = err
		return rc
	}
	syncDir(dir)
	if cfg.stopAfter == 1 {
		return rc
	}
	return finishRepair(cfg, rc, p, final, jp, st.Size())
}

// finishRepair cuts the WAV part p of size bytes to its whole frames,
// sets its header, fsyncs it, renames it to final and removes the
// provisional sidecar jp.
func finishRepair(cfg RecoverConfig, rc Recovered, p, final, jp string, size int64) Recovered {
	dir := filepath.Dir(final)
	if err := repairHeader(p, size); err != nil {
		rc.Err = err
		return rc
	}
	if cfg.stopAfter == 2 {
		return rc
	}
	if p != final {
		if err := os.Rename(p, final); err != nil {
			rc.Err = err
			return rc
		}
	}
	if err := os.Remove(jp); err != nil && !errors.Is(err, os.ErrNotExist) {
		rc.Err = err
	}
	syncDir(dir)
	return rc
}

var errNotWAV = errors.New("not a cloak WAV")

// repairedSHA256 checks that the file at p (size bytes) starts with the
// header cloak writes (sizes aside) and returns the SHA-256 of the file
// repairHeader will make of it: the header for data bytes, then the
// first data bytes after it.
func repairedSHA256(p string, size, data int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var hdr, want [wavHeaderSize]byte
	putWAVHeader(want[:], 0)
	if size >= wavHeaderSize {
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			return "", err
		}
		// Everything but the two size fields is fixed.
		if string(hdr[:4]) != "RIFF" || string(hdr[8:40]) != string(want[8:40]) {
			return "", errNotWAV
		}
	}
	putWAVHeader(want[:], uint32(data))
	h := sha256.New()
	h.Write(want[:])
	if _, err := io.CopyN(h, f, data); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// repairHeader cuts the file at p (size bytes) to its whole frames and
// writes the header for them, then fsyncs it. A file shorter than the
// header holds no audio and gets a header alone.
func repairHeader(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	data, _ := wholeFrames(size)
	if err := f.Truncate(wavHeaderSize + data); err != nil {
		return err
	}
	return sealWAV(f, data)
}

// quarantine moves p, unrepaired, to the quarantine directory, at the
// same place below it as below cfg.Dir, without its leading dot.
func quarantine(cfg RecoverConfig, p, why string) Recovered {
	rc := Recovered{Path: p, Action: ActionQuarantined, Reason: why}
	rel, err := filepath.Rel(cfg.Dir, p)
	if err != nil {
		rc.Err = err
		return rc
	}
	dir, name := filepath.Split(rel)
	dest := filepath.Join(cfg.Dir, QuarantineDir, dir, strings.TrimPrefix(name, "."))
	if st, err := os.Stat(p); err == nil {
		rc.Bytes = st.Size()
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o750); err != nil {
		rc.Err = err
		return rc
	}
	if exists(dest) {
		dest += "." + cfg.Now().UTC().Format("20060102T150405.000000000")
	}
	if err := os.Rename(p, dest); err != nil {
		rc.Err = err
		return rc
	}
	rc.Dest = dest
	syncDir(filepath.Dir(dest))
	syncDir(filepath.Dir(p))
	return rc
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
