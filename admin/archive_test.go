package admin

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/mp3"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/wav"
	"github.com/xuri/excelize/v2"
)

// testCard is a standard test card: it must reach no export.
const testCard = "4111111111111111"

var archKey = []byte("0123456789abcdef0123456789abcdef")

// archFixture is a real SQLite archive with three interactions:
// r1 recorded inside the recordings dir, r2 whose indexed WAV lies
// outside it, r3 whose WAV is a symbolic link out of it.
type archFixture struct {
	s      *archive.Store
	h      http.Handler
	mux    *auth.Mux
	recDir string
	wav    []byte // r1's WAV bytes
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func newArchFixture(t *testing.T) *archFixture {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := archive.Open(ctx, archive.Options{DSN: filepath.Join(dir, "cloak.db"), Key: archKey, Policy: archive.Policy{
		Default: archive.KeyPolicy{Policy: archive.MaskAfterCall, Visible: 2},
		Keys:    map[string]archive.KeyPolicy{"note": {Policy: archive.Keep}, "language": {Policy: archive.Keep}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &archFixture{s: s, recDir: filepath.Join(dir, "recordings")}
	outside := filepath.Join(dir, "elsewhere")
	for _, d := range []string{f.recDir, outside} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	f.wav = make([]byte, 4000)
	copy(f.wav, "RIFF")
	for i := 4; i < len(f.wav); i++ {
		f.wav[i] = byte(i * 7)
	}
	now := time.Now().Add(-time.Hour)
	var ins []archive.Interaction
	for i, id := range []string{"r1", "r2", "r3"} {
		off := now.Add(time.Duration(i) * time.Minute)
		wav := filepath.Join(f.recDir, id+".wav")
		switch id {
		case "r2":
			wav = filepath.Join(outside, id+".wav")
		case "r3":
			if err := os.WriteFile(filepath.Join(outside, "target.wav"), f.wav, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "target.wav"), wav); err != nil {
				t.Fatal(err)
			}
		}
		if id != "r3" {
			if err := os.WriteFile(wav, f.wav, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		side := strings.TrimSuffix(wav, ".wav") + ".json"
		if err := os.WriteFile(side, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := call.Summary{
			ID: id, SIPCallID: id + "@host", Caller: "061234567" + id[1:], Called: "main", Target: "flow:main", Queue: "sales", Agent: "alice",
			Offered: off, Answered: off.Add(time.Second), Ended: off.Add(30 * time.Second), EndReason: "closed", SIPEndReason: "bye",
			Consent: call.ConsentAccepted,
			// A kept key holding a card by mistake: the export masks it anyway.
			Data:      map[string]string{"customer_id": "CUST-1234" + id[1:], "language": "fr", "note": testCard},
			Trace:     []ivr.TraceEvent{{Time: off, Flow: "main", Step: "id", Action: "set_data", Branch: "next", Detail: "set"}},
			Recording: &recorder.Result{WAV: wav, Sidecar: side, Meta: recorder.Sidecar{SHA256: strings.Repeat("ab", 32), DurationMS: 30000}},
		}
		ins = append(ins, s.FromSummary(sum, "n1"))
	}
	if err := s.Insert(ctx, ins); err != nil {
		t.Fatal(err)
	}
	m := auth.NewMux()
	RegisterArchive(m, s, ArchiveOptions{RecordingsDir: f.recDir, Retention: archive.Retention{Recordings: time.Minute}})
	f.mux = m
	f.h = as(testArchivist, m)
	return f
}

// do sends a request from a loopback client unless remote is given.
func (f *archFixture) do(t *testing.T, method, target string, body io.Reader, hdr map[string]string, remote ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "127.0.0.1:8080"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(remote) > 0 {
		req.RemoteAddr = remote[0]
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

// actions are the audit rows' actions, in order, after checking each
// row's signature.
func (f *archFixture) actions(t *testing.T) []string {
	t.Helper()
	log, err := f.s.AuditLog(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		if !f.s.Verify(e) {
			t.Errorf("audit row %d does not verify", e.ID)
		}
		if e.Actor != testArchivist.Actor() || e.Address != "127.0.0.1" {
			t.Errorf("audit row %d actor %q", e.ID, e.Actor)
		}
		out = append(out, e.Action+":"+e.Interaction)
	}
	return out
}

// TestArchiveAPIRefusesWithoutPrincipal: the archive's handlers refuse a
// request that reached them without a principal (an unguarded mux fails
// closed) and a browser's cross-site request even with one.
func TestArchiveAPIRefusesWithoutPrincipal(t *testing.T) {
	f := newArchFixture(t)
	req := httptest.NewRequest("GET", "/api/archive/interactions/r1/recording", nil)
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no principal: %d", w.Code)
	}
	if w := f.do(t, "GET", "/api/archive/interactions/r1", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != http.StatusForbidden {
		t.Errorf("cross-site: %d", w.Code)
	}
	if w := f.do(t, "GET", "/api/archive/interactions/r1/recording", nil, nil); w.Code != http.StatusOK {
		t.Errorf("download: %d", w.Code)
	}
	if w := f.do(t, "POST", "/api/archive/anonymise", strings.NewReader(`{"number": "0612345671"}`), map[string]string{"Content-Type": "text/plain"}); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("anonymise as text/plain (a cross-site form): %d", w.Code)
	}
	if got := f.actions(t); len(got) != 1 || got[0] != "download:r1" {
		t.Errorf("audit: %v (a refused request is not served, so not audited)", got)
	}
}

func TestArchiveAPIRecordingRange(t *testing.T) {
	f := newArchFixture(t)
	w := f.do(t, "GET", "/api/archive/interactions/r1/recording", nil, map[string]string{"Range": "bytes=100-199"})
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), f.wav[100:200]) ||
		w.Header().Get("Content-Range") != "bytes 100-199/4000" || w.Header().Get("Content-Type") != "audio/wav" {
		t.Fatalf("range: %d %q %q, %d bytes", w.Code, w.Header().Get("Content-Range"), w.Header().Get("Content-Type"), w.Body.Len())
	}
	if d := w.Header().Get("Content-Disposition"); !strings.HasPrefix(d, "attachment") {
		t.Errorf("download disposition %q", d)
	}
	w = f.do(t, "GET", "/api/archive/interactions/r1/recording/play", nil, nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), f.wav) || !strings.HasPrefix(w.Header().Get("Content-Disposition"), "inline") {
		t.Fatalf("play: %d, %d bytes, %q", w.Code, w.Body.Len(), w.Header().Get("Content-Disposition"))
	}
	// Outside the recordings dir, directly or through a symbolic link.
	for _, id := range []string{"r2", "r3"} {
		if w := f.do(t, "GET", "/api/archive/interactions/"+id+"/recording", nil, nil); w.Code != http.StatusForbidden || bytes.Contains(w.Body.Bytes(), f.wav[4:40]) {
			t.Errorf("%s (outside the recordings dir): %d", id, w.Code)
		}
	}
	if w := f.do(t, "GET", "/api/archive/interactions/nope/recording", nil, nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown interaction: %d", w.Code)
	}
	got := f.actions(t)
	if strings.Join(got, " ") != "download:r1 play:r1" {
		t.Errorf("audit: %v", got)
	}
}

func TestArchiveAPIActionsAudited(t *testing.T) {
	f := newArchFixture(t)
	// Search: paginated, total beside the page.
	w := f.do(t, "GET", "/api/archive/interactions?queue=sales&limit=2&offset=1", nil, nil)
	var page struct {
		Total        int                   `json:"total"`
		Next         string                `json:"next"`
		Interactions []archive.Interaction `json:"interactions"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &page) != nil || page.Total != 3 || len(page.Interactions) != 2 || page.Interactions[0].ID != "r2" {
		t.Fatalf("search: %d %s", w.Code, w.Body)
	}
	// Keyset paging: a full page gives "next"; after= it is the page
	// offsets give, with the same total; the last page gives none.
	w = f.do(t, "GET", "/api/archive/interactions?queue=sales&limit=1", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &page) != nil || page.Next == "" {
		t.Fatalf("a full page without next: %s", w.Body)
	}
	w = f.do(t, "GET", "/api/archive/interactions?queue=sales&limit=2&after="+url.QueryEscape(page.Next), nil, nil)
	if page.Next = ""; w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &page) != nil || page.Total != 3 || len(page.Interactions) != 2 ||
		page.Interactions[0].ID != "r2" || page.Next == "" {
		t.Fatalf("search after the first row: %d %s", w.Code, w.Body)
	}
	w = f.do(t, "GET", "/api/archive/interactions?queue=sales&limit=2&after="+url.QueryEscape(page.Next), nil, nil)
	if page.Next = ""; json.Unmarshal(w.Body.Bytes(), &page) != nil || len(page.Interactions) != 0 || page.Next != "" {
		t.Errorf("after the last row: %s", w.Body)
	}
	w = f.do(t, "GET", "/api/archive/interactions?data=customer_id=CUST-12343", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &page) != nil || page.Total != 1 || page.Interactions[0].ID != "r3" {
		t.Errorf("search by a masked value: %s", w.Body)
	}
	for _, bad := range []string{"from=yesterday", "limit=-1", "limit=abc", "limit=99999999", "offset=-5",
		"offset=99999999999999999999", "recorded=perhaps", "after=yesterday", "after=12", "after=-1,r1"} {
		if w := f.do(t, "GET", "/api/archive/interactions?"+bad, nil, nil); w.Code != http.StatusBadRequest {
			t.Errorf("hostile query %q: %d, want 400", bad, w.Code)
		}
	}
	// Show: data, trace, recording and audit.
	w = f.do(t, "GET", "/api/archive/interactions/r1", nil, nil)
	var shown struct {
		archive.Interaction
		Audit []archive.AuditEntry `json:"audit"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &shown) != nil || len(shown.Trace) != 1 || shown.Recording == nil ||
		len(shown.Audit) != 1 || shown.Audit[0].Action != archive.ActionView {
		t.Fatalf("show: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, "GET", "/api/archive/interactions/nope", nil, nil); w.Code != http.StatusNotFound {
		t.Errorf("show unknown: %d", w.Code)
	}
	// Purge dry run: counts, deletes nothing, audits nothing.
	w = f.do(t, "GET", "/api/archive/purge", nil, nil)
	var pr archive.PurgeResult
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &pr) != nil || !pr.DryRun || pr.Recordings != 3 {
		t.Errorf("purge dry run: %d %s", w.Code, w.Body)
	}
	// Delete: inside the dir it goes; outside it is refused.
	if w := f.do(t, "DELETE", "/api/archive/interactions/r1/recording", nil, nil); w.Code != 200 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(filepath.Join(f.recDir, "r1.wav")); !os.IsNotExist(err) {
		t.Errorf("WAV after delete: %v", err)
	}
	if w := f.do(t, "DELETE", "/api/archive/interactions/r2/recording", nil, nil); w.Code != http.StatusConflict {
		t.Errorf("delete outside the dir: %d", w.Code)
	}
	if w := f.do(t, "GET", "/api/archive/interactions/r1/recording", nil, nil); w.Code != http.StatusNotFound {
		t.Errorf("download after delete: %d", w.Code)
	}
	// Anonymise.
	w = f.do(t, "POST", "/api/archive/anonymise", strings.NewReader(`{"number": "0612345672"}`), nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"changed": 1`) {
		t.Errorf("anonymise: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, "POST", "/api/archive/anonymise", strings.NewReader(`{}`), nil); w.Code != http.StatusBadRequest {
		t.Errorf("anonymise nothing: %d", w.Code)
	}
	// Export, audited with its row count.
	if w := f.do(t, "GET", "/api/archive/export?format=csv", nil, nil); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "id,") {
		t.Errorf("export: %d %.80s", w.Code, w.Body)
	}
	want := "view:r1 delete:r1 anonymise:r2 export:"
	if got := strings.Join(f.actions(t), " "); got != want {
		t.Errorf("audit: %q, want %q", got, want)
	}
	log, _ := f.s.AuditLog(context.Background(), "", 0)
	if last := log[len(log)-1]; last.Detail != "csv 3 rows" {
		t.Errorf("export audit detail %q", last.Detail)
	}
	// Audit verify over the API: passes, then fails on an edited row.
	var aud struct {
		Verified bool    `json:"verified"`
		Failed   []int64 `json:"failed"`
	}
	w = f.do(t, "GET", "/api/archive/audit?verify=1", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &aud) != nil || !aud.Verified {
		t.Fatalf("audit verify: %s", w.Body)
	}
	if _, err := f.s.DB().Exec(`UPDATE audit_log SET actor = 'someone else' WHERE id = ?`, log[0].ID); err != nil {
		t.Fatal(err)
	}
	w = f.do(t, "GET", "/api/archive/audit?verify=1", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &aud) != nil || aud.Verified || len(aud.Failed) != 1 || aud.Failed[0] != log[0].ID {
		t.Errorf("audit verify after an edit: %s", w.Body)
	}
}

func TestArchiveAPIExportMasked(t *testing.T) {
	f := newArchFixture(t)
	w := f.do(t, "GET", "/api/archive/export?format=xlsx&queue=sales", nil, nil)
	if w.Code != 200 {
		t.Fatalf("xlsx: %d %s", w.Code, w.Body)
	}
	x, err := excelize.OpenReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows("interactions")
	if err != nil || len(rows) != 4 || rows[0][0] != "id" || rows[1][0] != "r3" {
		t.Fatalf("xlsx rows: %v %v", rows, err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.Contains(onlyDigits(cell), testCard) || strings.Contains(cell, "CUST-") {
				t.Errorf("xlsx cell %q is not masked", cell)
			}
		}
	}
	w = f.do(t, "GET", "/api/archive/export?format=csv", nil, nil)
	if w.Code != 200 || strings.Contains(onlyDigits(w.Body.String()), testCard) || strings.Contains(w.Body.String(), "CUST-") {
		t.Errorf("csv: %d, or holds a clear value", w.Code)
	}
	if w := f.do(t, "GET", "/api/archive/export?format=pdf", nil, nil); w.Code != http.StatusBadRequest {
		t.Errorf("pdf: %d", w.Code)
	}
}

// TestArchiveAPIAuditChainDeletedRow: a deleted audit row, which no
// row's own signature can show, fails the API's verify, naming the row
// after it.
func TestArchiveAPIAuditChainDeletedRow(t *testing.T) {
	f := newArchFixture(t)
	var rows []archive.AuditEntry
	for i := 0; i < 3; i++ {
		e, err := f.s.Audit(context.Background(), archive.AuditEntry{Actor: "cli:ops", Action: archive.ActionPlay, Interaction: "x"})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, e)
	}
	var aud struct {
		Verified bool    `json:"verified"`
		Failed   []int64 `json:"failed"`
		Chain    archive.ChainReport
	}
	w := f.do(t, "GET", "/api/archive/audit?verify=1", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &aud) != nil || !aud.Verified || aud.Chain.Break != nil {
		t.Fatalf("audit verify: %s", w.Body)
	}
	if _, err := f.s.DB().Exec(`DELETE FROM audit_log WHERE id = ?`, rows[1].ID); err != nil {
		t.Fatal(err)
	}
	aud.Chain = archive.ChainReport{}
	w = f.do(t, "GET", "/api/archive/audit?verify=1", nil, nil)
	if json.Unmarshal(w.Body.Bytes(), &aud) != nil || aud.Verified || len(aud.Failed) != 0 || aud.Chain.Break == nil ||
		aud.Chain.Break.ID != rows[2].ID || aud.Chain.Break.Seq != rows[2].Seq {
		t.Errorf("audit verify after a delete: %s", w.Body)
	}
}

// toneWAV is a stereo 8 kHz 16-bit recording as the recorder writes it:
// 1 s of a 700 Hz tone, 1 s of silence (a secure pause's fill), 1 s of
// the tone.
func toneWAV() []byte {
	const n = 3 * 8000
	b := make([]byte, wav.HeaderSize+4*n)
	wav.PutHeader(b, wav.Info{Format: wav.PCM, Channels: 2, SampleRate: 8000, BitsPerSample: 16}, 4*n)
	for i := 0; i < n; i++ {
		var v int16
		if i < 8000 || i >= 16000 {
			v = int16(6000 * math.Sin(2*math.Pi*700*float64(i)/8000))
		}
		binary.LittleEndian.PutUint16(b[wav.HeaderSize+4*i:], uint16(v))
		binary.LittleEndian.PutUint16(b[wav.HeaderSize+4*i+2:], uint16(v))
	}
	return b
}

// TestArchiveAPIRecordingMP3: ?format=mp3 answers an MP3 that Debian's
// lame decodes to the recording's length and tone with its pause
// silent, audited as a download with the detail "mp3"; an unknown format
// or a file that is no WAV answers an error and audits nothing.
func TestArchiveAPIRecordingMP3(t *testing.T) {
	if !mp3.Available(mp3.Options{}) {
		t.Skip("lame not installed (scripts/install-test-deps.sh)")
	}
	f := newArchFixture(t)
	// r1's fixture bytes are no WAV: refused, nothing audited.
	if w := f.do(t, "GET", "/api/archive/interactions/r1/recording?format=mp3", nil, nil); w.Code != http.StatusUnprocessableEntity {
		t.Errorf("not a WAV: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, "GET", "/api/archive/interactions/r1/recording?format=ogg", nil, nil); w.Code != http.StatusBadRequest {
		t.Errorf("format=ogg: %d", w.Code)
	}
	if got := f.actions(t); len(got) != 0 {
		t.Fatalf("audited a refused download: %v", got)
	}
	if err := os.WriteFile(filepath.Join(f.recDir, "r1.wav"), toneWAV(), 0o600); err != nil {
		t.Fatal(err)
	}
	w := f.do(t, "GET", "/api/archive/interactions/r1/recording?format=mp3", nil, nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "audio/mpeg" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="r1.mp3"` {
		t.Fatalf("mp3: %d %q %q %.200s", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"), w.Body)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "r1.mp3"), filepath.Join(dir, "r1.wav")
	if err := os.WriteFile(in, w.Body.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("lame", "--quiet", "--decode", in, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, pcm, err := wav.Decode(data)
	if err != nil || info.SampleRate != 8000 || info.Channels != 2 {
		t.Fatalf("decoded %+v %v", info, err)
	}
	left := func(i int) int16 { return int16(binary.LittleEndian.Uint16(pcm[4*i:])) }
	n := len(pcm) / 4
	if d := float64(n) / 8000; math.Abs(d-3) > 0.05 {
		t.Errorf("duration %.3f s, want 3 ± 0.05", d)
	}
	crossings := 0
	for i := 1001; i < 7001; i++ {
		if (left(i-1) < 0) != (left(i) < 0) {
			crossings++
		}
	}
	if hz := float64(crossings) / 2 / 0.75; math.Abs(hz-700) > 10 {
		t.Errorf("tone %.1f Hz, want 700", hz)
	}
	for i := 9600; i < 14400 && i < n; i++ {
		if v := left(i); v > 64 || v < -64 {
			t.Fatalf("the pause is not silent at %.3f s: %d", float64(i)/8000, v)
		}
	}
	// Play as MP3, with a Range a browser sends to seek.
	w = f.do(t, "GET", "/api/archive/interactions/r1/recording/play?format=mp3", nil, map[string]string{"Range": "bytes=0-99"})
	if w.Code != http.StatusPartialContent || w.Body.Len() != 100 || !strings.HasPrefix(w.Header().Get("Content-Disposition"), "inline") {
		t.Errorf("play mp3 range: %d, %d bytes", w.Code, w.Body.Len())
	}
	if got := strings.Join(f.actions(t), " "); got != "download:r1 play:r1" {
		t.Errorf("audit: %q", got)
	}
	log, _ := f.s.AuditLog(context.Background(), "r1", 0)
	if len(log) != 2 || log[0].Detail != "mp3" || log[1].Detail != "mp3 range bytes=0-99" {
		t.Errorf("audit details: %+v", log)
	}
}

// TestArchiveAPIDeleteRecordingsOfASearch: the route counts on a dry
// run, refuses a wrong or missing count (409 with the count, 400) and an
// empty search, then deletes the search's recordings, each audited plus
// one summary row; a file outside the recordings directory is reported.
// (The fixture's three interactions are all in queue sales, language fr.)
func TestArchiveAPIDeleteRecordingsOfASearch(t *testing.T) {
	f := newArchFixture(t)
	post := func(body string) *httptest.ResponseRecorder {
		return f.do(t, "POST", "/api/archive/recordings/delete", strings.NewReader(body), nil)
	}
	var res archive.DeleteSearchResult
	w := post(`{"queue": "sales", "dry_run": true}`)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Matched != 3 || res.Deleted != 0 {
		t.Fatalf("dry run: %d %s", w.Code, w.Body)
	}
	if w := post(`{"queue": "sales", "confirm": 2}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"matched": 3`) {
		t.Errorf("wrong count: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{`{"queue": "sales"}`, `{"confirm": 3}`, `{"queue": "sales", "confirm": 3, "limit": 1}`,
		`{"from": "yesterday", "confirm": 3}`, `not json`} {
		if w := post(bad); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, w.Code, w.Body)
		}
	}
	for _, id := range []string{"r1", "r2"} {
		if _, err := os.Stat(filepath.Join(f.recDir, id+".wav")); id == "r1" && err != nil {
			t.Fatalf("r1 deleted by a refused request: %v", err)
		}
	}
	if got := f.actions(t); len(got) != 0 {
		t.Fatalf("refused requests audited: %v", got)
	}
	w = post(`{"queue": "sales", "data": {"language": "fr"}, "confirm": 3}`)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Deleted != 2 || len(res.Failed) != 1 || res.Failed[0] != "r2" {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(filepath.Join(f.recDir, "r1.wav")); !os.IsNotExist(err) {
		t.Errorf("r1's WAV after the delete: %v", err)
	}
	// r3's index names a link inside the directory: the link goes, not
	// its target; r2's file lies outside and stays.
	if _, err := os.Lstat(filepath.Join(f.recDir, "r3.wav")); !os.IsNotExist(err) {
		t.Errorf("r3's link after the delete: %v", err)
	}
	if got := strings.Join(f.actions(t), " "); got != "delete:r3 delete:r1 delete:" {
		t.Errorf("audit: %q", got)
	}
	log, _ := f.s.AuditLog(context.Background(), "", 0)
	if d := log[len(log)-1].Detail; d != "recordings of a search (queue, data:language): 3 matched, 2 deleted, 1 failed" {
		t.Errorf("summary %q", d)
	}
}

// TestArchiveAPIMP3Slots: with every encoding slot taken, an MP3 request
// waits, and answers 503 (audited nothing) when its client goes away.
func TestArchiveAPIMP3Slots(t *testing.T) {
	f := newArchFixture(t)
	if err := os.WriteFile(filepath.Join(f.recDir, "r1.wav"), toneWAV(), 0o600); err != nil {
		t.Fatal(err)
	}
	a := archiveAPI{s: f.s, o: ArchiveOptions{RecordingsDir: f.recDir}, mp3Slots: make(chan struct{}, 1)}
	a.mp3Slots <- struct{}{} // another encoding runs
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest("GET", "/api/archive/interactions/r1/recording?format=mp3", nil).WithContext(ctx)
	req.SetPathValue("id", "r1")
	w := httptest.NewRecorder()
	start := time.Now()
	a.recording(w, req, archive.ActionDownload)
	if w.Code != http.StatusServiceUnavailable || time.Since(start) < 150*time.Millisecond {
		t.Errorf("with no slot: %d after %v", w.Code, time.Since(start))
	}
	if log, _ := f.s.AuditLog(context.Background(), "", 0); len(log) != 0 {
		t.Errorf("audited: %+v", log)
	}
}
