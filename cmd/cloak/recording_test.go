package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/recorder"
)

// stepClock is a clock the test advances by hand.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// makeRecording writes a 2 s recording with a secure pause from 0.5 s to
// 1.5 s, signed with key (unsigned when empty), and returns its WAV path.
func makeRecording(t *testing.T, key []byte) string {
	t.Helper()
	c := &stepClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	r, err := recorder.New(recorder.Config{Dir: t.TempDir(), Name: "cli", CallID: "cli-call", Codec: "PCMU", Key: key, Now: c.now, QueueFrames: 512})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, recorder.FrameSamples)
	for i := range frame {
		frame[i] = 800
	}
	for i := range 100 {
		switch i {
		case 25:
			_ = r.Pause(recorder.ReasonSecure)
		case 75:
			_ = r.Resume(recorder.ReasonSecure)
		}
		r.WriteCaller(frame)
		r.WriteAgent(frame)
		c.advance(recorder.FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res.WAV
}

func runRec(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runRecording(args, &o, &e)
	return code, o.String(), e.String()
}

func TestRecordingVerify(t *testing.T) {
	key := []byte("cli-test-key")
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLOAK_TEST_RECORDING_KEY", string(key))

	wav := makeRecording(t, key)
	for _, args := range [][]string{
		{"verify", wav, "-key-file", keyFile},
		{"verify", "-key-file", keyFile, wav},
		{"verify", "-key-env", "CLOAK_TEST_RECORDING_KEY", wav},
	} {
		code, out, errOut := runRec(args...)
		if code != 0 || !strings.HasPrefix(out, "OK "+wav) || !strings.Contains(out, "1 pause marker") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and OK", args, code, out, errOut)
		}
	}

	// Edit the pause window in the sidecar: verification must fail.
	sc := recorder.SidecarPath(wav)
	b, err := os.ReadFile(sc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["markers"].([]any)[0].(map[string]any)["end_ms"] = 900
	b, _ = json.Marshal(m)
	if err := os.WriteFile(sc, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runRec("verify", wav, "-key-file", keyFile)
	if code != 1 || !strings.HasPrefix(out, "FAILED "+wav) || !strings.Contains(out, "markers changed") {
		t.Errorf("edited markers: exit %d, stdout %q; want 1, FAILED, markers changed", code, out)
	}
}

func TestRecordingVerifyFailures(t *testing.T) {
	key := []byte("cli-test-key")
	wav := makeRecording(t, key)
	t.Setenv("CLOAK_TEST_OTHER_KEY", "not-the-key")
	if code, out, _ := runRec("verify", wav, "-key-env", "CLOAK_TEST_OTHER_KEY"); code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "wrong key") {
		t.Errorf("wrong key: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := runRec("verify", wav); code != 2 || !strings.Contains(errOut, "is signed") {
		t.Errorf("signed, no key: exit %d, stderr %q; want 2", code, errOut)
	}
	// One audio byte changed.
	b, _ := os.ReadFile(wav)
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(wav, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runRec("verify", wav, "-key-env", "CLOAK_TEST_OTHER_KEY"); code != 1 || !strings.Contains(out, "audio changed") {
		t.Errorf("edited audio: exit %d, stdout %q", code, out)
	}
	// Sidecar gone.
	if err := os.Remove(recorder.SidecarPath(wav)); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runRec("verify", wav, "-key-env", "CLOAK_TEST_OTHER_KEY"); code != 1 || !strings.Contains(out, "sidecar missing") {
		t.Errorf("missing sidecar: exit %d, stdout %q", code, out)
	}
}

func TestRecordingVerifyUnsigned(t *testing.T) {
	wav := makeRecording(t, nil)
	if code, out, _ := runRec("verify", wav); code != 0 || !strings.HasPrefix(out, "OK (unsigned)") {
		t.Errorf("unsigned, no key: exit %d, stdout %q; want 0, OK (unsigned)", code, out)
	}
	t.Setenv("CLOAK_TEST_RECORDING_KEY", "k")
	if code, out, _ := runRec("verify", wav, "-key-env", "CLOAK_TEST_RECORDING_KEY"); code != 1 || !strings.Contains(out, "unsigned") {
		t.Errorf("unsigned, key given: exit %d, stdout %q; want 1", code, out)
	}
}

func TestRecordingUsage(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"verify"},
		{"verify", "a.wav", "b.wav"},
		{"verify", "-key-file", keyFile, "-key-env", "HOME", "a.wav"},
		{"verify", "-key-file", filepath.Join(t.TempDir(), "absent"), "a.wav"},
		{"verify", "-key-env", "CLOAK_TEST_SURELY_UNSET_VARIABLE", "a.wav"},
		{"verify", "-bogus", "a.wav"},
		{"info"},
	} {
		if code, _, _ := runRec(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runRec("help"); code != 0 || !strings.Contains(out, "cloak recording verify") {
		t.Errorf("help: exit %d, stdout %q", code, out)
	}
}

func TestRecordingInfo(t *testing.T) {
	wav := makeRecording(t, []byte("k"))
	code, out, errOut := runRec("info", wav)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"duration:  00:02.000",
		"call id:   cli-call",
		"left caller, right agent (call codec PCMU)",
		"paused:    00:01.000",
		"markers:   1",
		"00:00.500 - 00:01.500  secure",
		"signed:    yes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := runRec("info", filepath.Join(t.TempDir(), "none.wav")); code != 1 {
		t.Errorf("info without sidecar: exit %d, want 1", code)
	}
}

// A recording recovered after a crash verifies, and verify and info say
// it is recovered, what it covers and what is estimated.
func TestRecordingVerifyRecovered(t *testing.T) {
	key := []byte("cli-test-key")
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// What SIGKILL leaves: a header whose sizes are 0, 0.5 s of audio and
	// a torn frame.
	hdr := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x04\x00\x10\x00data\x00\x00\x00\x00")
	part := append(hdr, make([]byte, 4*4000+1)...)
	if err := os.WriteFile(filepath.Join(dir, ".crashed.wav.part"), part, 0o640); err != nil {
		t.Fatal(err)
	}
	out, err := recorder.Recover(recorder.RecoverConfig{Dir: dir, Key: key})
	if err != nil || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("recover: %+v %v", out, err)
	}
	wav := filepath.Join(dir, "crashed.wav")
	code, stdout, stderr := runRec("verify", "-key-file", keyFile, wav)
	if code != 0 {
		t.Fatalf("verify exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"OK (recovered recording)", "audio covers", "00:00.500", "1 byte(s) of a torn last frame cut", "estimated, not known: call_id, start"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runRec("info", wav)
	if code != 0 || !strings.Contains(stdout, "status:    recovered") || !strings.Contains(stdout, "incident:  recovered recording") {
		t.Errorf("info exit %d:\n%s", code, stdout)
	}
	// A complete recording says complete and has no incident line.
	code, stdout, _ = runRec("info", makeRecording(t, key))
	if code != 0 || !strings.Contains(stdout, "status:    complete") || strings.Contains(stdout, "incident") {
		t.Errorf("info of a complete recording, exit %d:\n%s", code, stdout)
	}
}
