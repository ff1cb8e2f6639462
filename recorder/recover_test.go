package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var recoverNow = time.Date(2025, 3, 15, 8, 0, 0, 0, time.UTC)

// crashedPart writes what a crash leaves: ".NAME.wav.part" with a header
// whose sizes are still zero and data bytes of audio (a ramp, so any
// shift shows), and, with prov, the provisional sidecar New reserves.
func crashedPart(t *testing.T, dir, name string, data int, prov bool) (part string, audio []byte) {
	t.Helper()
	hdr := make([]byte, wavHeaderSize)
	putWAVHeader(hdr, 0)
	audio = make([]byte, data)
	for i := range audio {
		audio[i] = byte(i * 7)
	}
	part = filepath.Join(dir, "."+name+".wav.part")
	if err := os.WriteFile(part, append(hdr, audio...), 0o640); err != nil {
		t.Fatal(err)
	}
	if prov {
		err := reserveSidecar(filepath.Join(dir, "."+name+".json.part"), &Sidecar{Version: incidentVersion, Status: statusRecording,
			CallID: "call-id-" + name, Start: time.Date(2025, 3, 15, 7, 59, 0, 0, time.UTC), Codec: "PCMU"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return part, audio
}

func recoverIn(t *testing.T, dir string, mode RecoverMode) []Recovered {
	t.Helper()
	out, err := Recover(RecoverConfig{Dir: dir, Key: testKey, Mode: mode, Now: func() time.Time { return recoverNow }})
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range out {
		if rc.Err != nil {
			t.Errorf("%s: %s: %v", rc.Path, rc.Action, rc.Err)
		}
	}
	return out
}

// checkRecovered verifies dir/NAME.wav under testKey, wants it recovered
// with want data bytes that equal audio's prefix, and returns its sidecar.
func checkRecovered(t *testing.T, dir, name string, audio []byte, want int64) Sidecar {
	t.Helper()
	wavPath := filepath.Join(dir, name+".wav")
	rep, err := Verify(wavPath, testKey)
	if err != nil {
		t.Fatalf("verify recovered %s: %v", name, err)
	}
	sc := rep.Sidecar
	if sc.State() != StatusRecovered || sc.Incident == nil {
		t.Fatalf("status %q incident %+v, want recovered with an incident", sc.State(), sc.Incident)
	}
	b, err := os.ReadFile(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(len(b)) - wavHeaderSize; got != want {
		t.Fatalf("%d data bytes, want %d", got, want)
	}
	if le := binary.LittleEndian; le.Uint32(b[40:]) != uint32(want) || le.Uint32(b[4:]) != uint32(36+want) {
		t.Fatalf("header sizes data %d riff %d, want %d and %d", le.Uint32(b[40:]), le.Uint32(b[4:]), want, 36+want)
	}
	if !bytes.Equal(b[wavHeaderSize:], audio[:want]) {
		t.Fatal("recovered audio differs from what was on disk")
	}
	if wantMS := want / 4 * 1000 / SampleRate; sc.DurationMS != wantMS {
		t.Errorf("duration %d ms, want %d", sc.DurationMS, wantMS)
	}
	if left, _ := readStereo(t, wavPath); int64(len(left)) != want/4 {
		t.Errorf("decoder reads %d frames, want %d", len(left), want/4)
	}
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("%s left behind", n)
		}
	}
	return sc
}

// The SIGKILL case: a header that says 0 bytes over whole frames.
func TestRecoverZeroSizeHeader(t *testing.T) {
	dir := t.TempDir()
	_, audio := crashedPart(t, dir, "a", 4*8000, true) // 1 s
	out := recoverIn(t, dir, RecoverRepair)
	if len(out) != 1 || out[0].Action != ActionRecovered || out[0].Bytes != 4*8000 || out[0].Duration != time.Second {
		t.Fatalf("recover: %+v", out)
	}
	sc := checkRecovered(t, dir, "a", audio, 4*8000)
	if sc.CallID != "call-id-a" || sc.Codec != "PCMU" || !sc.Start.Equal(time.Date(2025, 3, 15, 7, 59, 0, 0, time.UTC)) {
		t.Errorf("provisional sidecar not used: %+v", sc)
	}
	if !sc.End.Equal(sc.Start.Add(time.Second)) {
		t.Errorf("end %v, want start + 1 s", sc.End)
	}
	if slices.Contains(sc.Incident.Estimated, "start") || !slices.Contains(sc.Incident.Estimated, "end") {
		t.Errorf("estimated %v: want end and not start (known from the provisional sidecar)", sc.Incident.Estimated)
	}
	if !sc.Incident.At.Equal(recoverNow) || sc.Incident.Reason == "" {
		t.Errorf("incident %+v", sc.Incident)
	}
}

// A torn last frame is cut off, never padded as if whole; without a
// provisional sidecar the call id and start are estimates.
func TestRecoverTornTail(t *testing.T) {
	dir := t.TempDir()
	part, audio := crashedPart(t, dir, "b", 4*1000+3, false)
	mtime := time.Date(2025, 3, 15, 7, 30, 0, 0, time.UTC)
	if err := os.Chtimes(part, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	out := recoverIn(t, dir, RecoverRepair)
	if len(out) != 1 || out[0].CutBytes != 3 || out[0].Bytes != 4000 {
		t.Fatalf("recover: %+v", out)
	}
	sc := checkRecovered(t, dir, "b", audio, 4000)
	if sc.Incident.CutBytes != 3 {
		t.Errorf("sidecar cut_bytes %d, want 3", sc.Incident.CutBytes)
	}
	if sc.CallID != "b" || !sc.Start.Equal(mtime.Add(-125*time.Millisecond)) {
		t.Errorf("call %q start %v: want the name and mtime less the duration", sc.CallID, sc.Start)
	}
	for _, f := range []string{"call_id", "start", "end"} {
		if !slices.Contains(sc.Incident.Estimated, f) {
			t.Errorf("estimated %v lacks %s", sc.Incident.Estimated, f)
		}
	}
}

// A part shorter than a header, or a header alone, holds no audio: it
// becomes an empty recording that says so.
func TestRecoverNoAudio(t *testing.T) {
	for _, size := range []int{0, 20, wavHeaderSize} {
		dir := t.TempDir()
		part := filepath.Join(dir, ".c.wav.part")
		hdr := make([]byte, wavHeaderSize)
		putWAVHeader(hdr, 0)
		if err := os.WriteFile(part, hdr[:size], 0o640); err != nil {
			t.Fatal(err)
		}
		out := recoverIn(t, dir, RecoverRepair)
		if len(out) != 1 || out[0].Action != ActionRecovered || out[0].Bytes != 0 {
			t.Fatalf("size %d: %+v", size, out)
		}
		if sc := checkRecovered(t, dir, "c", nil, 0); sc.DurationMS != 0 {
			t.Errorf("size %d: duration %d", size, sc.DurationMS)
		}
	}
}

func TestRecoverNotAWAVIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	part := filepath.Join(dir, ".d.wav.part")
	junk := bytes.Repeat([]byte("not audio "), 10)
	if err := os.WriteFile(part, junk, 0o640); err != nil {
		t.Fatal(err)
	}
	out := recoverIn(t, dir, RecoverRepair)
	if len(out) != 1 || out[0].Action != ActionQuarantined {
		t.Fatalf("recover: %+v", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, QuarantineDir, "d.wav.part")); err != nil || !bytes.Equal(b, junk) {
		t.Fatalf("quarantined file: %v", err)
	}
}

func TestRecoverQuarantine(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "2025", "03", "15")
	if err := os.MkdirAll(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	part, _ := crashedPart(t, sub, "e", 4*100+1, true)
	before, _ := os.ReadFile(part)
	out := recoverIn(t, dir, RecoverQuarantine)
	if len(out) != 2 || out[0].Action != ActionQuarantined || out[1].Action != ActionQuarantined {
		t.Fatalf("recover: %+v", out)
	}
	q := filepath.Join(dir, QuarantineDir, "2025", "03", "15")
	if got := dirNames(t, q); !slices.Equal(got, []string{"e.json.part", "e.wav.part"}) {
		t.Fatalf("quarantine holds %v", got)
	}
	if after, _ := os.ReadFile(filepath.Join(q, "e.wav.part")); !bytes.Equal(before, after) {
		t.Error("quarantined file was changed")
	}
	if got := dirNames(t, sub); len(got) != 0 {
		t.Errorf("left in place: %v", got)
	}
	// Recover does not look into the quarantine.
	if out := recoverIn(t, dir, RecoverRepair); len(out) != 0 {
		t.Errorf("second run: %+v", out)
	}
}

// A crash in Close between the WAV's rename and the sidecar's leaves a
// finished NAME.wav and a sidecar part: a finished part is renamed into
// place, a provisional one gives a recovered sidecar.
func TestRecoverSidecarPart(t *testing.T) {
	for _, finished := range []bool{true, false} {
		c := newFakeClock()
		r, dir := newTest(t, c, nil)
		r.WriteCaller(frameOf(5))
		c.Advance(time.Second)
		res, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		part := filepath.Join(dir, ".call-1.json.part")
		if finished {
			err = os.Rename(res.Sidecar, part)
		} else {
			os.Remove(res.Sidecar)
			err = reserveSidecar(part, &Sidecar{Version: incidentVersion, Status: statusRecording, CallID: "c1@example", Start: r.Start()})
		}
		if err != nil {
			t.Fatal(err)
		}
		out := recoverIn(t, dir, RecoverRepair)
		want := ActionCompleted
		if !finished {
			want = ActionRecovered
		}
		if len(out) != 1 || out[0].Action != want {
			t.Fatalf("finished %v: %+v", finished, out)
		}
		rep, err := Verify(res.WAV, testKey)
		if err != nil {
			t.Fatalf("finished %v: verify: %v", finished, err)
		}
		if finished != (rep.Sidecar.State() == StatusComplete) || rep.Sidecar.DurationMS != 1000 {
			t.Errorf("finished %v: status %s duration %d", finished, rep.Sidecar.State(), rep.Sidecar.DurationMS)
		}
		if got := dirNames(t, dir); !slices.Equal(got, []string{"call-1.json", "call-1.wav"}) {
			t.Errorf("finished %v: dir %v", finished, got)
		}
	}
}

// A crash during Recover itself: every state it can leave is finished by
// the next run the same way, and a run over finished files does nothing.
func TestRecoverIdempotent(t *testing.T) {
	ref := t.TempDir()
	_, audio := crashedPart(t, ref, "f", 4*500+2, true)
	recoverIn(t, ref, RecoverRepair)
	refSC := checkRecovered(t, ref, "f", audio, 2000)

	// A run stopped after 1. the sidecar is in place, 2. the header is
	// repaired; 3. a torn temporary sidecar of an interrupted run.
	for step := 1; step <= 3; step++ {
		dir := t.TempDir()
		crashedPart(t, dir, "f", 4*500+2, true)
		switch step {
		case 1, 2:
			if _, err := Recover(RecoverConfig{Dir: dir, Key: testKey, Now: func() time.Time { return recoverNow }, stopAfter: step}); err != nil {
				t.Fatal(err)
			}
			if got := dirNames(t, dir); slices.Contains(got, "f.wav") {
				t.Fatalf("step %d: f.wav in place before the run ended: %v", step, got)
			}
		case 3:
			if err := os.WriteFile(filepath.Join(dir, ".f.json"+recoveringSuffix), []byte(`{"version":2,"sta`), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		recoverIn(t, dir, RecoverRepair)
		sc := checkRecovered(t, dir, "f", audio, 2000)
		if sc.SHA256 != refSC.SHA256 || !sc.Start.Equal(refSC.Start) || sc.HMAC != refSC.HMAC {
			t.Errorf("step %d: recovered differently from an uninterrupted run:\n%+v\n%+v", step, sc, refSC)
		}
		if out := recoverIn(t, dir, RecoverRepair); len(out) != 0 {
			t.Errorf("step %d: a run over recovered files did %+v", step, out)
		}
	}
}

// A part this process (or another) is still recording is locked and
// left alone.
func TestRecoverSkipsLiveRecording(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, nil)
	defer r.Close()
	out := recoverIn(t, dir, RecoverRepair)
	if len(out) != 1 || out[0].Action != ActionSkipped {
		t.Fatalf("recover: %+v", out)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{".call-1.json.part", ".call-1.wav.part"}) {
		t.Errorf("dir %v", got)
	}
}

// failingDisk passes writes through until limit bytes, then writes what
// fits and fails with err, as a full disk does.
type failingDisk struct {
	mu    sync.Mutex
	w     io.Writer
	limit int
	err   error
}

func (d *failingDisk) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(b) <= d.limit {
		d.limit -= len(b)
		return d.w.Write(b)
	}
	n, _ := d.w.Write(b[:d.limit])
	d.limit -= n
	return n, d.err
}

// A write error mid-call is reported at once, keeps what was written
// (whole frames, a correct header) and gives a verified truncated
// recording; frames after it are ignored; the call goes on.
func TestWriteErrorKeepsWhatWasWritten(t *testing.T) {
	for _, werr := range []error{syscall.ENOSPC, syscall.EIO} {
		c := newFakeClock()
		failed := make(chan error, 4)
		const limit = wavHeaderSize + 4*FrameSamples*10 + 2 // ten frames and a torn sample
		r, dir := newTest(t, c, func(cfg *Config) {
			cfg.wrapData = func(w io.Writer) io.Writer { return &failingDisk{w: w, limit: limit, err: werr} }
			cfg.OnFailure = func(err error) { failed <- err }
			cfg.drainEvery = time.Millisecond
		})
		for range 30 {
			r.WriteCaller(frameOf(7))
			r.WriteAgent(frameOf(9))
			c.Advance(FrameDuration)
		}
		select {
		case err := <-failed:
			if !errors.Is(err, ErrWrite) || !errors.Is(err, werr) {
				t.Errorf("%v: reported %v, want ErrWrite wrapping it", werr, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: not reported before Close", werr)
		}
		failAt := c.Now()
		c.Advance(time.Second)
		r.WriteCaller(frameOf(1)) // after the failure: ignored, no panic
		res, err := r.Close()
		if err != nil {
			t.Fatalf("%v: Close: %v", werr, err)
		}
		if len(failed) != 0 {
			t.Errorf("%v: reported more than once", werr)
		}
		rep, err := Verify(res.WAV, testKey)
		if err != nil {
			t.Fatalf("%v: verify: %v", werr, err)
		}
		sc := rep.Sidecar
		if sc.State() != StatusTruncated || sc.Incident == nil || !strings.Contains(sc.Incident.Reason, werr.Error()) {
			t.Fatalf("%v: status %s incident %+v", werr, sc.State(), sc.Incident)
		}
		if sc.Incident.At.After(failAt) || sc.Incident.CutBytes != 2 {
			t.Errorf("%v: incident at %v (failure seen by %v), cut %d, want 2", werr, sc.Incident.At, failAt, sc.Incident.CutBytes)
		}
		left, right := readStereo(t, res.WAV)
		checkSpans(t, "left", left, span{0, 10 * FrameSamples, 7})
		checkSpans(t, "right", right, span{0, 10 * FrameSamples, 9})
		if sc.DurationMS != 200 {
			t.Errorf("%v: duration %d ms, want 200", werr, sc.DurationMS)
		}
		if got := dirNames(t, dir); !slices.Equal(got, []string{"call-1.json", "call-1.wav"}) {
			t.Errorf("%v: dir %v", werr, got)
		}
	}
}

// Version 1 does not sign a status: adding one is an edit; in version 2
// the status and incident are signed.
func TestStatusIsSigned(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, nil)
	c.Advance(time.Second)
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	sc := res.Meta
	sc.Status = StatusTruncated
	if err := writeSidecar(res.Sidecar, &sc); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(res.WAV, testKey); !errors.Is(err, ErrSidecarChanged) {
		t.Errorf("v1 with a status added: %v, want ErrSidecarChanged", err)
	}
	part, _ := crashedPart(t, dir, "g", 400, true)
	_ = part
	recoverIn(t, dir, RecoverRepair)
	wav := filepath.Join(dir, "g.wav")
	rc, err := ReadSidecar(wav)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Sidecar){
		"status":    func(s *Sidecar) { s.Status = StatusComplete },
		"reason":    func(s *Sidecar) { s.Incident.Reason = "x" },
		"estimated": func(s *Sidecar) { s.Incident.Estimated = nil },
		"cut":       func(s *Sidecar) { s.Incident.CutBytes++ },
	} {
		s := rc
		inc := *rc.Incident
		s.Incident = &inc
		edit(&s)
		if err := writeSidecar(filepath.Join(dir, "g.json"), &s); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(wav, testKey); !errors.Is(err, ErrSidecarChanged) {
			t.Errorf("edit %s: %v, want ErrSidecarChanged", name, err)
		}
	}
}

// copyParts copies the part files of a live recording to a new directory:
// what a crash at this moment would leave.
func copyParts(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, n := range dirNames(t, from) {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// waitProvisional waits until the provisional sidecar holds want.
func waitProvisional(t *testing.T, dir, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, ".call-1.json.part"))
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisional sidecar never held %q: %s", want, bytes.TrimSpace(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPart waits until the WAV part holds at least size bytes.
func waitPart(t *testing.T, dir string, size int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(filepath.Join(dir, ".call-1.wav.part"))
		if err == nil && st.Size() >= size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAV part never reached %d bytes (%v)", size, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Pause markers reach the provisional sidecar within a writer turn, so a
// recording recovered after a crash keeps them.
func TestRecoverKeepsPauseMarkers(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, func(cfg *Config) { cfg.drainEvery = time.Millisecond })
	defer r.Close()
	for i := range 100 {
		switch i {
		case 25:
			if err := r.Pause(ReasonSecure); err != nil {
				t.Fatal(err)
			}
		case 75:
			waitProvisional(t, dir, `"end_ms":-1`)
			waitPart(t, dir, wavHeaderSize+4*int64(ms(500)))
			snap := copyParts(t, dir)
			recoverIn(t, snap, RecoverRepair)
			sc, err := ReadSidecar(filepath.Join(snap, "call-1.wav"))
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Markers) != 1 || sc.Markers[0].Reason != ReasonSecure || sc.Markers[0].StartMS != 500 || sc.Markers[0].EndMS != sc.DurationMS {
				t.Fatalf("open pause recovered as %+v (duration %d), want secure from 500 ms to the end", sc.Markers, sc.DurationMS)
			}
			if !slices.Contains(sc.Incident.Estimated, "markers") {
				t.Errorf("an open pause's end is an estimate: %v", sc.Incident.Estimated)
			}
			if err := r.Resume(ReasonSecure); err != nil {
				t.Fatal(err)
			}
		}
		r.WriteCaller(frameOf(3))
		r.WriteAgent(frameOf(4))
		c.Advance(FrameDuration)
	}
	waitProvisional(t, dir, `"end_ms":1500`)
	waitPart(t, dir, wavHeaderSize+4*int64(ms(1500)))
	snap := copyParts(t, dir)
	recoverIn(t, snap, RecoverRepair)
	rep, err := Verify(filepath.Join(snap, "call-1.wav"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if m := rep.Sidecar.Markers; len(m) != 1 || m[0].StartMS != 500 || m[0].EndMS != 1500 {
		t.Errorf("closed pause recovered as %+v, want 500-1500 ms", m)
	}
	if slices.Contains(rep.Sidecar.Incident.Estimated, "markers") {
		t.Errorf("markers known, listed as estimated: %v", rep.Sidecar.Incident.Estimated)
	}
}

// A paused recording that is handed nothing (a secure segment) still
// grows with silence on the writer's turns, so a crash during a long
// pause loses no more of the timeline than one turn; the file at Close is
// unchanged.
func TestPausedRecordingGrows(t *testing.T) {
	c := newFakeClock()
	r, dir := newTest(t, c, func(cfg *Config) { cfg.drainEvery = time.Millisecond })
	for range 10 {
		r.WriteCaller(frameOf(3))
		r.WriteAgent(frameOf(4))
		c.Advance(FrameDuration)
	}
	if err := r.Pause(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	part := filepath.Join(dir, ".call-1.wav.part")
	want := int64(wavHeaderSize + 4*ms(2200-100) - 4*gapTolerance)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(part)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("paused part is %d bytes, want at least %d (silence up to the clock less %v)", st.Size(), want, pauseLag)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Resume(ReasonSecure); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r.WriteCaller(frameOf(5))
		r.WriteAgent(frameOf(6))
		c.Advance(FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	left, right := readStereo(t, res.WAV)
	checkSpans(t, "left", left, span{0, ms(200), 3}, span{ms(200), ms(2200), 0}, span{ms(2200), ms(2400), 5})
	checkSpans(t, "right", right, span{0, ms(200), 4}, span{ms(200), ms(2200), 0}, span{ms(2200), ms(2400), 6})
}

// A provisional sidecar torn by the crash (garbage, a half-written JSON
// object, or one naming no call) is not believed: the recording is
// repaired from the part's name and time, with those fields marked
// estimated, and the torn file is gone.
func TestRecoverTornProvisionalSidecar(t *testing.T) {
	for name, body := range map[string]string{
		"garbage": "\x00\xff{{not json",
		"half":    `{"version":2,"status":"recording","call_id":"ca`,
		"no call": `{"version":2,"status":"recording","start":"2025-03-15T07:59:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, audio := crashedPart(t, dir, "c", 4*800, false)
			jp := filepath.Join(dir, ".c.json.part")
			if err := os.WriteFile(jp, []byte(body), 0o640); err != nil {
				t.Fatal(err)
			}
			out := recoverIn(t, dir, RecoverRepair)
			if len(out) != 1 || out[0].Bytes != 4*800 {
				t.Fatalf("recover: %+v", out)
			}
			sc := checkRecovered(t, dir, "c", audio, 4*800)
			if sc.CallID != "c" || !slices.Contains(sc.Incident.Estimated, "call_id") {
				t.Errorf("call %q, estimated %v: want the part's name, marked estimated", sc.CallID, sc.Incident.Estimated)
			}
			if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("torn provisional sidecar left behind: %v", err)
			}
		})
	}
}
