package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/wav"
	"github.com/xuri/excelize/v2"
)

// TestArchiveAPIPayCall: after a real card-payment call, the archive's
// HTTP API on serve's admin listener finds it, serves its WAV by range
// (206, the file's bytes), exports it with no card in CSV or XLSX, and
// every access leaves a verified audit row.
func TestArchiveAPIPayCall(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	c := startCloak(t, ivrOpts("archive:\n  data:\n    keys:\n      payment_result: {policy: keep}\n"))
	defer c.stop()
	s := runSipp(t, c, sippArgs{
		scenario: "ivr-info.xml", service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
		keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
			"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
	})
	if !strings.Contains(s.messages(), "BYE sip:caller@") || !c.waitLog(`"message":"call ended"`, 5*time.Second) {
		t.Fatal("the call did not end")
	}
	if !strings.Contains(c.log(), "archive API at /api/archive/ for signed-in users per role") {
		t.Error("serve did not say at start who may use the archive API")
	}
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.adminURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
		return res, b
	}
	// The writer stores the call shortly after it ended.
	var page struct {
		Total        int                   `json:"total"`
		Interactions []archive.Interaction `json:"interactions"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for page.Total == 0 && time.Now().Before(deadline) {
		if _, b := get("/api/archive/interactions?caller=caller&recorded=true"); json.Unmarshal(b, &page) != nil {
			t.Fatalf("search: %s", b)
		}
		if page.Total == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if page.Total != 1 || page.Interactions[0].Route != "flow:pay" {
		t.Fatalf("search: %+v", page)
	}
	id := page.Interactions[0].ID
	res, b := get("/api/archive/interactions/" + id)
	var shown archive.Interaction
	if res.StatusCode != 200 || json.Unmarshal(b, &shown) != nil || shown.Recording == nil {
		t.Fatalf("show: %d %s", res.StatusCode, b)
	}
	wav, err := os.ReadFile(shown.Recording.File)
	if err != nil || len(wav) < 1000 {
		t.Fatalf("the WAV: %d bytes, %v", len(wav), err)
	}
	res, b = get("/api/archive/interactions/"+id+"/recording", "Range", "bytes=500-999")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(b, wav[500:1000]) ||
		res.Header.Get("Content-Range") != fmt.Sprintf("bytes 500-999/%d", len(wav)) {
		t.Errorf("range: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(b))
	}
	if res, b = get("/api/archive/interactions/" + id + "/recording/play"); res.StatusCode != 200 || !bytes.Equal(b, wav) {
		t.Errorf("play: %d, %d bytes", res.StatusCode, len(b))
	}
	// MP3 (when Debian's lame is there): it decodes to the WAV's length
	// and the secure segment's paused stretch is silent in it too.
	mp3Audits := ""
	if _, err := exec.LookPath("lame"); err == nil {
		res, b = get("/api/archive/interactions/" + id + "/recording?format=mp3")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "audio/mpeg" {
			t.Fatalf("mp3: %d %q %.200s", res.StatusCode, res.Header.Get("Content-Type"), b)
		}
		checkMP3(t, b, wav, shown.Recording.Markers)
		mp3Audits = " download"
	} else {
		t.Log("lame not installed: the MP3 download is not checked (scripts/install-test-deps.sh)")
	}
	res, csv := get("/api/archive/export?format=csv&caller=caller")
	if res.StatusCode != 200 || !strings.Contains(string(csv), id) || !strings.Contains(string(csv), "data:card_last4") {
		t.Errorf("csv export: %d\n%s", res.StatusCode, csv)
	}
	if strings.Contains(onlyDigits(string(csv)), testCard) || strings.Contains(string(csv), ","+testCard[12:]) {
		t.Errorf("the csv export holds card digits:\n%s", csv)
	}
	res, xb := get("/api/archive/export?format=xlsx")
	x, err := excelize.OpenReader(bytes.NewReader(xb))
	if res.StatusCode != 200 || err != nil {
		t.Fatalf("xlsx export: %d %v", res.StatusCode, err)
	}
	rows, _ := x.GetRows("interactions")
	x.Close()
	if len(rows) != 2 {
		t.Errorf("xlsx: %d rows", len(rows))
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.Contains(onlyDigits(cell), testCard) || cell == testCard[12:] {
				t.Errorf("xlsx cell %q holds card digits", cell)
			}
		}
	}
	var aud struct {
		Entries  []archive.AuditEntry `json:"entries"`
		Verified bool                 `json:"verified"`
	}
	if _, b := get("/api/archive/audit?verify=true"); json.Unmarshal(b, &aud) != nil || !aud.Verified {
		t.Fatalf("audit verify: %s", b)
	}
	var actions []string
	for _, e := range aud.Entries {
		if e.Action == archive.ActionInitialAdmin || e.Action == archive.ActionTokenCreate {
			continue // the first start's admin, the harness's token
		}
		if !strings.HasPrefix(e.Actor, "token:e2e-harness#") || e.Address != "127.0.0.1" {
			t.Errorf("actor %q address %q", e.Actor, e.Address)
		}
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); got != "view download play"+mp3Audits+" export export" {
		t.Errorf("audited %q", got)
	}
}

// checkMP3 decodes mp3 with `lame --decode` and checks it against the
// recording's WAV: the same channels and rate, the same length within
// 0.05 s (the LAME tag trims the encoder delay), and silence (both
// channels) inside each paused stretch the recording's markers name,
// 150 ms in from each edge for the codec's frame overlap.
func checkMP3(t *testing.T, mp3, wavFile []byte, markers json.RawMessage) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "r.mp3"), filepath.Join(dir, "r.wav")
	if err := os.WriteFile(in, mp3, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("lame", "--quiet", "--decode", in, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	dec, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, pcm, err := wav.Decode(dec)
	if err != nil {
		t.Fatal(err)
	}
	winfo, wpcm, err := wav.Decode(wavFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.SampleRate != winfo.SampleRate || info.Channels != winfo.Channels {
		t.Fatalf("mp3 decodes to %+v, the WAV is %+v", info, winfo)
	}
	frame := 2 * info.Channels
	got, want := float64(len(pcm)/frame)/float64(info.SampleRate), float64(len(wpcm)/frame)/float64(winfo.SampleRate)
	if math.Abs(got-want) > 0.05 {
		t.Errorf("mp3 lasts %.3f s, the WAV %.3f s", got, want)
	}
	var ms []struct {
		StartMS int64 `json:"start_ms"`
		EndMS   int64 `json:"end_ms"`
	}
	if err := json.Unmarshal(markers, &ms); err != nil || len(ms) == 0 {
		t.Fatalf("recording markers %s: %v (the pay call pauses the recording)", markers, err)
	}
	for _, m := range ms {
		from, to := int(m.StartMS+150)*info.SampleRate/1000, int(m.EndMS-150)*info.SampleRate/1000
		var peak int
		for i := from * info.Channels; i < to*info.Channels && 2*i+1 < len(pcm); i++ {
			v := int(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
			peak = max(peak, v, -v)
		}
		t.Logf("mp3 %.3f s (WAV %.3f s); paused %d–%d ms: peak %d", got, want, m.StartMS, m.EndMS, peak)
		if to <= from || peak > 64 {
			t.Errorf("paused stretch %d–%d ms: peak %d in the mp3, want silence", m.StartMS, m.EndMS, peak)
		}
	}
}

// TestArchiveAPIRecordingMP3Tone: sipp plays 3 s of a 1004 Hz tone to the
// recorded echo route; the archive API's MP3 of the call decodes (Debian's
// lame) to the WAV's length within 0.05 s with the tone's frequency on the
// caller's channel, and the download is audited with the detail "mp3".
// Then the recordings of a search (route echo) are deleted through the
// API, confirming the count.
func TestArchiveAPIRecordingMP3Tone(t *testing.T) {
	requireTools(t, "sipp", "lame")
	c := startCloak(t, cloakOpts{admin: true, extra: recordEcho("", "")})
	defer c.stop()
	runSipp(t, c, sippArgs{scenario: "echo.xml", service: "echo", keys: echoKeys()})
	var page struct {
		Interactions []archive.Interaction `json:"interactions"`
	}
	for deadline := time.Now().Add(15 * time.Second); len(page.Interactions) == 0 && time.Now().Before(deadline); {
		if err := apiGet(t, c, "/api/archive/interactions?recorded=true", &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Interactions) == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(page.Interactions) != 1 {
		t.Fatalf("recorded interactions: %+v\n%s", page.Interactions, tail(c.log(), 2000))
	}
	id := page.Interactions[0].ID
	var shown archive.Interaction
	if err := apiGet(t, c, "/api/archive/interactions/"+id, &shown); err != nil || shown.Recording == nil {
		t.Fatalf("show: %v %+v", err, shown)
	}
	wavFile, err := os.ReadFile(shown.Recording.File)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", c.adminURL+"/api/archive/interactions/"+id+"/recording?format=mp3", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mp3, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("mp3: %d %.200s", res.StatusCode, mp3)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "r.mp3"), filepath.Join(dir, "r.wav")
	if err := os.WriteFile(in, mp3, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("lame", "--quiet", "--decode", in, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	dec, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, pcm, err := wav.Decode(dec)
	if err != nil {
		t.Fatal(err)
	}
	winfo, wpcm, err := wav.Decode(wavFile)
	if err != nil || info.Channels != winfo.Channels || info.SampleRate != winfo.SampleRate {
		t.Fatalf("decoded %+v, WAV %+v %v", info, winfo, err)
	}
	frame := 2 * info.Channels
	n := len(pcm) / frame
	got, want := float64(n)/float64(info.SampleRate), float64(len(wpcm)/frame)/float64(winfo.SampleRate)
	// The tone on the caller's (left) channel: the loudest second, its
	// frequency from zero crossings.
	left := func(i int) int16 { return int16(binary.LittleEndian.Uint16(pcm[i*frame:])) }
	rate := info.SampleRate
	best, bestAt := 0.0, -1
	for at := 0; at+rate <= n; at += rate / 4 {
		var e float64
		for i := at; i < at+rate; i++ {
			e += float64(left(i)) * float64(left(i))
		}
		if e > best {
			best, bestAt = e, at
		}
	}
	if bestAt < 0 {
		t.Fatalf("the mp3 is shorter than a second: %.3f s", got)
	}
	crossings := 0
	for i := bestAt + 1; i < bestAt+rate; i++ {
		if (left(i-1) < 0) != (left(i) < 0) {
			crossings++
		}
	}
	hz := float64(crossings) / 2 * float64(rate) / float64(rate-1)
	rms := math.Sqrt(best / float64(rate))
	t.Logf("mp3 %d bytes, %.3f s (WAV %.3f s); loudest second at %.2f s: %.1f Hz, rms %.0f", len(mp3), got, want, float64(bestAt)/float64(rate), hz, rms)
	if math.Abs(got-want) > 0.05 {
		t.Errorf("mp3 lasts %.3f s, the WAV %.3f s", got, want)
	}
	if math.Abs(hz-1004) > 15 || rms < 500 {
		t.Errorf("caller channel: %.1f Hz at rms %.0f, want the 1004 Hz tone", hz, rms)
	}
	var aud struct {
		Entries []archive.AuditEntry `json:"entries"`
	}
	if err := apiGet(t, c, "/api/archive/audit?id="+id, &aud); err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, e := range aud.Entries {
		details = append(details, e.Action+":"+e.Detail)
	}
	if strings.Join(details, " ") != "view: download:mp3" {
		t.Errorf("audit of the interaction: %v", details)
	}

	// Delete the recordings of a search (the route is echo): a dry run
	// counts, a stale count deletes nothing, the confirmed count deletes
	// the WAV and keeps the interaction.
	if code, body := apiPost(t, c, "/api/archive/recordings/delete", `{"route": "echo", "dry_run": true}`); code != 200 || !strings.Contains(body, `"matched": 1`) {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if code, body := apiPost(t, c, "/api/archive/recordings/delete", `{"route": "echo", "confirm": 2}`); code != http.StatusConflict {
		t.Errorf("stale count: %d %s", code, body)
	}
	if _, err := os.Stat(shown.Recording.File); err != nil {
		t.Fatalf("the WAV after a refused delete: %v", err)
	}
	if code, body := apiPost(t, c, "/api/archive/recordings/delete", `{"route": "echo", "confirm": 1}`); code != 200 || !strings.Contains(body, `"deleted": 1`) {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := os.Stat(shown.Recording.File); !os.IsNotExist(err) {
		t.Errorf("the WAV after the delete: %v", err)
	}
	if err := apiGet(t, c, "/api/archive/interactions/"+id, &shown); err != nil || shown.Recording == nil || shown.Recording.DeletedAt.IsZero() {
		t.Errorf("the interaction after the delete: %v %+v", err, shown.Recording)
	}
	var all struct {
		Entries  []archive.AuditEntry `json:"entries"`
		Verified bool                 `json:"verified"`
	}
	if err := apiGet(t, c, "/api/archive/audit?verify=true", &all); err != nil || !all.Verified {
		t.Fatalf("audit verify: %v", err)
	}
	var deletes []string
	for _, e := range all.Entries {
		if e.Action == archive.ActionDelete {
			deletes = append(deletes, e.Interaction+":"+e.Detail)
		}
	}
	if want := id + ":recording (search) :recordings of a search (route): 1 matched, 1 deleted, 0 failed"; strings.Join(deletes, " ") != want {
		t.Errorf("audited deletions %q, want %q", deletes, want)
	}
}
