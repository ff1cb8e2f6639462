package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile recording conditions (issue 17): cloak killed mid-recording,
// and a recordings disk that is full, or fills during a call.

// recordEcho records every call to the echo route, into dir when set.
func recordEcho(dir string, more string) string {
	y := "recording:\n  routes: {echo: always}\n"
	if dir != "" {
		y += fmt.Sprintf("  dir: %s\n", dir)
	}
	return y + more
}

// echoKeys are sipp's keys for 3 s of tone to the echo route.
func echoKeys() map[string]string {
	return map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "pt": "0", "codec": "PCMU"}
}

// findFiles returns the files under dir whose name satisfies keep.
func findFiles(t *testing.T, dir string, keep func(name string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && keep(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyRecording runs `cloak recording verify` with the data dir's key
// and fails unless it exits 0; it returns the output.
func verifyRecording(t *testing.T, dataDir, wav string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cloakBin, "recording", "verify", "-key-file", filepath.Join(dataDir, "recording.key"), wav).CombinedOutput()
	if err != nil {
		t.Fatalf("cloak recording verify %s: %v\n%s", wav, err, out)
	}
	return string(out)
}

// wavDataBytes reads the data size a WAV's header claims and the bytes
// that follow the header.
func wavDataBytes(t *testing.T, path string) (claimed uint32, actual int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 {
		return 0, int64(len(b)) - 44
	}
	return binary.LittleEndian.Uint32(b[40:]), int64(len(b)) - 44
}

// killMidRecording starts cloak with o on a fresh data dir, runs sipp
// with a, waits for waitFor in the log and then for after, SIGKILLs
// cloak, checks what it left, restarts it on the same data dir and checks
// that it recovered the recording before ready and that `cloak
// recording verify` accepts it as recovered. It returns the restarted
// cloak, the recovered WAV and verify's output.
func killMidRecording(t *testing.T, o cloakOpts, a sippArgs, waitFor string, after time.Duration) (*cloak, string, string) {
	t.Helper()
	o.dataDir = filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	c := startCloak(t, o)
	s := startSipp(t, c, a)
	if !c.waitLog(waitFor, 20*time.Second) {
		t.Fatalf("no %q in the log", waitFor)
	}
	time.Sleep(after)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	s.cancel()
	c.checkLog() // no panic or race before the kill
	recs := filepath.Join(o.dataDir, "recordings")
	parts := findFiles(t, recs, func(n string) bool { return strings.HasSuffix(n, ".wav.part") })
	if len(parts) != 1 {
		t.Fatalf("after SIGKILL: %d WAV parts, want 1 (%v)", len(parts), findFiles(t, recs, func(string) bool { return true }))
	}
	claimed, onDisk := wavDataBytes(t, parts[0])
	t.Logf("left by SIGKILL: %s, header says %d data bytes, %d on disk", filepath.Base(parts[0]), claimed, onDisk)
	if claimed != 0 || onDisk < 4*8000/2 {
		t.Fatalf("part header says %d, %d bytes on disk: want 0 and at least 0.5 s of audio", claimed, onDisk)
	}

	c2 := startCloak(t, o)
	if !strings.Contains(c2.log(), "unfinished recording recovered") {
		t.Fatalf("restart logged no recovery before ready:\n%s", c2.log())
	}
	wavs := findFiles(t, recs, func(n string) bool { return strings.HasSuffix(n, ".wav") })
	if len(wavs) != 1 {
		t.Fatalf("after recovery: WAVs %v", wavs)
	}
	if left := findFiles(t, recs, func(n string) bool { return strings.HasSuffix(n, ".part") }); len(left) != 0 {
		t.Errorf("parts left after recovery: %v", left)
	}
	out := verifyRecording(t, o.dataDir, wavs[0])
	t.Logf("verify: %s", out)
	for _, want := range []string{"OK (recovered recording)", "audio covers"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q", want)
		}
	}
	claimed, got := wavDataBytes(t, wavs[0])
	if int64(claimed) != got || got%4 != 0 || got < onDisk-3 {
		t.Errorf("recovered WAV: header %d, data %d bytes (part had %d): want the header to match whole frames of all of it", claimed, got, onDisk)
	}
	return c2, wavs[0], out
}

// TestHostileRecordingSIGKILL: cloak is killed (SIGKILL) during a
// recorded call; restarted on the same data dir it recovers the
// recording before taking calls, and `cloak recording verify` accepts it
// as a recovered recording.
func TestHostileRecordingSIGKILL(t *testing.T) {
	requireTools(t, "sipp")
	c, _, _ := killMidRecording(t, cloakOpts{extra: recordEcho("", "")},
		sippArgs{scenario: "wait-bye.xml", service: "echo", keys: echoKeys()}, "recording started", 1500*time.Millisecond)
	c.stop()
}

// TestHostileRecordingSIGKILLSecure: killed while the caller keys a card
// into the pay flow (secure from the answer, recorded always), the
// recovered recording keeps its secure pause marker, open at the kill and
// so ended with the audio and flagged as estimated, and holds no digit.
func TestHostileRecordingSIGKILLSecure(t *testing.T) {
	requireTools(t, "sipp")
	o := ivrOpts("recording:\n  routes: {pay: always}\n")
	c, wav, out := killMidRecording(t, o, sippArgs{
		scenario: "ivr-call.xml", service: "pay", timeout: 45 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/pay-rfc4733.pcap"), "fmts": "0 101"},
	}, "secure segment started", 6*time.Second)
	if !strings.Contains(out, "estimated, not known") || !strings.Contains(out, "markers") {
		t.Errorf("verify does not say the open pause's end is estimated:\n%s", out)
	}
	raw, err := os.ReadFile(strings.TrimSuffix(wav, ".wav") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		DurationMS int64 `json:"duration_ms"`
		Markers    []struct {
			Reason  string `json:"reason"`
			StartMS int64  `json:"start_ms"`
			EndMS   int64  `json:"end_ms"`
		} `json:"markers"`
	}
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	if len(sc.Markers) != 1 || sc.Markers[0].Reason != "secure" || sc.Markers[0].StartMS > 100 || sc.Markers[0].EndMS != sc.DurationMS {
		t.Errorf("markers %+v (duration %d ms): want one secure pause from the answer to the end of the audio", sc.Markers, sc.DurationMS)
	}
	if code, scan := dtmfScan(t, wav); code != 0 {
		t.Errorf("LEAK: DTMF in the recovered recording of a secure call:\n%s", scan)
	}
	c.stop()
}

// wantStat fails unless the admin API's stats say name is want.
func wantStat(t *testing.T, c *cloak, name string, want float64) {
	t.Helper()
	var st map[string]any
	if err := apiGet(t, c, "/api/stats", &st); err != nil {
		t.Fatal(err)
	}
	if got, _ := st[name].(float64); got != want {
		t.Errorf("stats %s = %v, want %v", name, st[name], want)
	}
}

// mountTmpfs mounts a tmpfs of size (mount's size= syntax) on a new
// directory and unmounts it when the test ends. It skips the test when
// mounting is not permitted, except under CI=1, where it fails.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mount -t tmpfs not permitted here (%v: %s): the disk-full tests need root or CAP_SYS_ADMIN", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for range 1 << 12 { // at most 256 MiB
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the tmpfs did not fill")
}

// TestHostileRecordingDiskFull: with the recordings disk full (a 2 MiB
// tmpfs, filled), a call to a route that always records gets 503 with
// Retry-After under on_unavailable refuse, and is answered unrecorded,
// with a warning, under continue.
func TestHostileRecordingDiskFull(t *testing.T) {
	requireTools(t, "sipp")
	t.Run("refuse", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		fill(t, mnt)
		c := startCloak(t, cloakOpts{admin: true, extra: recordEcho(mnt, "")})
		s := runSipp(t, c, sippArgs{scenario: "invite-503.xml", service: "echo"})
		msgs := s.messages()
		if !strings.Contains(msgs, "SIP/2.0 503 Service Unavailable") {
			t.Fatalf("no 503 to the INVITE:\n%s", tail(msgs, 2000))
		}
		if !strings.Contains(msgs, "Retry-After:") {
			t.Errorf("the 503 carries no Retry-After:\n%s", tail(msgs, 2000))
		}
		if !c.waitLog("recording unavailable", 5*time.Second) {
			t.Error("no log line says why the call was refused")
		}
		// A route that does not record is not refused: ring rings (and
		// sipp cancels it).
		runSipp(t, c, sippArgs{scenario: "cancel.xml", service: "ring"})
		wantStat(t, c, "recording_unavailable", 1)
		wantStat(t, c, "sip_refused_disk", 1) // and cloak_sip_refused_total{reason="disk"}
		if m := scrapeMetrics(t, c); !strings.Contains(m, `cloak_sip_refused_total{reason="disk"} 1`+"\n") {
			t.Errorf("/metrics lacks cloak_sip_refused_total{reason=\"disk\"} 1")
		}
		c.stop()
	})
	t.Run("continue", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		fill(t, mnt)
		c := startCloak(t, cloakOpts{admin: true, extra: recordEcho(mnt, "  on_unavailable: continue\n")})
		runSipp(t, c, sippArgs{scenario: "echo.xml", service: "echo", keys: echoKeys()})
		if !c.waitLog("call answered unrecorded", 5*time.Second) {
			t.Error("no warning that the call was answered unrecorded")
		}
		if strings.Contains(c.log(), "recording started") {
			t.Error("a recording was started on a full disk")
		}
		if got := findFiles(t, mnt, func(n string) bool { return n != "filler" }); len(got) != 0 {
			t.Errorf("files written on the full disk: %v", got)
		}
		wantStat(t, c, "recording_unavailable", 1)
		c.stop()
	})
}

// TestHostileRecordingDiskFillsMidCall: a recordings disk with room for
// about a second of audio fills during a 3 s call. The failure is logged
// at once (not at hang-up), the call goes on to its normal end, and the
// audio written before is kept as a verified, truncated recording.
func TestHostileRecordingDiskFillsMidCall(t *testing.T) {
	requireTools(t, "sipp")
	mnt := mountTmpfs(t, "48k") // 4 KiB sidecar + about 1.3 s of audio
	c := startCloak(t, cloakOpts{admin: true, extra: recordEcho(mnt, "  min_free: 8KiB\n")})
	runSipp(t, c, sippArgs{scenario: "echo.xml", service: "echo", keys: echoKeys()})
	if !c.waitLog("recording saved", 10*time.Second) {
		t.Fatal("the recording was not closed")
	}
	log := c.log()
	failed, bye := strings.Index(log, "recording failed mid-call"), strings.Index(log, "recording saved")
	if failed < 0 || failed > bye {
		t.Fatalf("the write failure was not logged before the call ended (at %d, call end at %d)", failed, bye)
	}
	wavs := findFiles(t, mnt, func(n string) bool { return strings.HasSuffix(n, ".wav") })
	if len(wavs) != 1 {
		t.Fatalf("WAVs on the small disk: %v (all: %v)", wavs, findFiles(t, mnt, func(string) bool { return true }))
	}
	out := verifyRecording(t, c.dataDir, wavs[0])
	t.Logf("verify: %s", out)
	if !strings.Contains(out, "OK (truncated recording)") || !strings.Contains(out, "no space left on device") {
		t.Errorf("verify does not say truncated by a full disk:\n%s", out)
	}
	claimed, got := wavDataBytes(t, wavs[0])
	if int64(claimed) != got || got%4 != 0 || got < 4*8000/2 || got > 4*8000*3 {
		t.Errorf("truncated WAV: header %d, data %d bytes: want them equal, whole frames, 0.5 s to 3 s of audio", claimed, got)
	}
	wantStat(t, c, "recording_failed", 1)
	c.stop()
}
