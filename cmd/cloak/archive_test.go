package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/xuri/excelize/v2"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// cli runs the binary's run with args and returns its exit code and
// outputs.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// archiveRig is an archive as serve leaves it, opened as serve keeps it
// open (the CLI works beside it), with two finished calls in it.
func archiveRig(t *testing.T, dsn string) (dataDir, cfgFile string, s *archive.Store) {
	t.Helper()
	dataDir = t.TempDir()
	cfgFile = filepath.Join(t.TempDir(), "cloak.yaml")
	if err := os.WriteFile(cfgFile, []byte("archive:\n  dsn: \""+dsn+"\"\n  data:\n    keys:\n      language: {policy: keep}\n"+
		"  retention: {interactions: \"0\", recordings: \"0\", participant_data: \"0\", traces: 1d}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	o, err := archive.OptionsFrom(cfg.Archive, dataDir, true)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = archive.Open(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	var batch []archive.Interaction
	for i, caller := range []string{"+441111", "+442222"} {
		batch = append(batch, s.FromSummary(call.Summary{
			ID: "id" + caller[1:], SIPCallID: caller + "@x", Caller: caller, Called: "main", Target: "flow:main",
			Queue: "sales", Agent: "demo", Offered: t0.Add(time.Duration(i) * time.Hour), Ended: t0.Add(time.Duration(i)*time.Hour + time.Minute),
			EndReason: "closed", SIPEndReason: "bye", Consent: call.ConsentNotAsked,
			Data:    map[string]string{"customer_id": "C-" + caller[1:], "language": "en"},
			Trace:   []ivr.TraceEvent{{Time: t0, Flow: "main", Step: "menu", Action: "menu", Branch: "choice 1"}},
			Quality: []call.LegQuality{{Leg: "caller", Quality: media.Quality{Received: 2900, Lost: 3, LossPercent: 0.1, RTTMs: -1, MOS: 4.38}}},
		}, "node1"))
	}
	if err := s.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return dataDir, cfgFile, s
}

func TestArchiveCLI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := ""
			if engine == "postgres" {
				dsn = pgtest.DSN(t)
			}
			data, cfgFile, s := archiveRig(t, dsn)
			common := []string{"-config", cfgFile, "-data", data}
			search := func(extra ...string) []archive.Interaction {
				t.Helper()
				code, out, errs := cli(append(append([]string{"archive", "search"}, common...), append(extra, "-json")...)...)
				if code != 0 {
					t.Fatalf("search %v: exit %d: %s", extra, code, errs)
				}
				var res []archive.Interaction
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("search %v: %v: %s", extra, err, out)
				}
				return res
			}
			if res := search("-caller", "+442222"); len(res) != 1 || res[0].ID != "id442222" || res[0].Queue != "sales" || res[0].Agent != "demo" {
				t.Errorf("by caller: %+v", res)
			}
			if res := search("-data", "customer_id=C-441111"); len(res) != 1 || res[0].ID != "id441111" {
				t.Errorf("by masked data: %+v", res)
			}
			if res := search("-from", "2026-12-03T10:30", "-queue", "sales"); len(res) != 1 || res[0].ID != "id442222" {
				t.Errorf("by time and queue: %+v", res)
			}
			if res := search("-recorded"); len(res) != 0 {
				t.Errorf("-recorded found calls without a recording: %+v", res)
			}
			if res := search("-agent", "nobody"); len(res) != 0 {
				t.Errorf("by unknown agent: %+v", res)
			}

			code, out, errs := cli(append([]string{"archive", "show", "id441111", "-json"}, common...)...)
			if code != 0 {
				t.Fatalf("show: exit %d: %s", code, errs)
			}
			if strings.Contains(out, "C-441111") || !strings.Contains(out, `"value": "****11"`) || !strings.Contains(out, `"action": "view"`) {
				t.Errorf("show: the masked value or its audit row is wrong:\n%s", out)
			}
			if code, _, _ := cli(append([]string{"archive", "show", "nope"}, common...)...); code != 1 {
				t.Errorf("show of a missing id: exit %d, want 1", code)
			}

			code, out, errs = cli(append([]string{"archive", "audit", "-verify", "-json"}, common...)...)
			if code != 0 || !strings.Contains(errs, "1 row(s) verified") || !strings.Contains(out, `"actor": "cli:`) {
				t.Fatalf("audit -verify: exit %d: %s\n%s", code, errs, out)
			}
			if _, err := s.DB().Exec("UPDATE audit_log SET actor = 'cli:someone-else'"); err != nil {
				t.Fatal(err)
			}
			if code, _, errs = cli(append([]string{"archive", "audit", "-verify"}, common...)...); code != 1 || !strings.Contains(errs, "FAIL verification") {
				t.Errorf("audit -verify after an edit: exit %d: %s", code, errs)
			}

			// Anonymise the first caller: unfindable by number and data.
			code, out, errs = cli(append([]string{"archive", "anonymise", "-number", "+441111", "-data", "customer_id=C-441111"}, common...)...)
			if code != 0 || !strings.Contains(out, "1 interaction(s) anonymised") {
				t.Errorf("anonymise: exit %d: %s%s", code, out, errs)
			}
			if res := search("-caller", "+441111"); len(res) != 0 {
				t.Errorf("anonymised number still found: %+v", res)
			}
			if res := search("-data", "customer_id=C-441111"); len(res) != 0 {
				t.Errorf("anonymised data still found: %+v", res)
			}

			// Only traces expire (1 d; the rest is kept forever): a dry
			// run counts them, the purge deletes them and is audited.
			code, out, errs = cli(append([]string{"archive", "purge", "-dry-run"}, common...)...)
			if code != 0 || !strings.Contains(out, "would delete: 0 interaction(s), 0 recording(s), 0 participant-data row(s), 2 trace step(s)") {
				t.Errorf("purge -dry-run: exit %d: %s%s", code, out, errs)
			}
			code, out, errs = cli(append([]string{"archive", "purge", "-json"}, common...)...)
			if code != 0 || !strings.Contains(out, `"traces": 2`) {
				t.Errorf("purge: exit %d: %s%s", code, out, errs)
			}
			if in, err := s.Get(context.Background(), "id441111"); err != nil || len(in.Trace) != 0 || len(in.Data) != 2 {
				t.Errorf("after purge: %+v %v", in, err)
			}
			if _, out, _ = cli(append([]string{"archive", "audit", "-json"}, common...)...); strings.Count(out, `"action": "purge"`) != 1 ||
				strings.Count(out, `"action": "anonymise"`) != 1 || strings.Contains(out, "+441111") || strings.Contains(out, "C-441111") {
				t.Errorf("purge not audited once:\n%s", out)
			}
			// The text view shows each leg's quality (last: it is audited).
			if code, out, _ = cli(append([]string{"archive", "show", "id442222"}, common...)...); code != 0 ||
				!strings.Contains(out, "quality caller  received 2900 lost 3 (0.10%)  jitter 0.0ms  rtt -  MOS 4.38") {
				t.Errorf("show: exit %d, leg quality missing:\n%s", code, out)
			}
		})
	}
}

func TestArchiveCLIUsage(t *testing.T) {
	data := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"archive"}, 2, "usage: cloak archive"},
		{[]string{"archive", "frob"}, 2, `unknown command "frob"`},
		{[]string{"archive", "search", "-from", "yesterday", "-data", data}, 2, "-from"},
		{[]string{"archive", "search", "-data", "=x"}, 2, "KEY=VALUE"},
		{[]string{"archive", "show", "-data", data}, 2, "usage: cloak archive show"},
		{[]string{"archive", "search", "-data", data}, 2, "has cloak serve run"},
	} {
		code, _, errs := cli(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func TestArchiveCLIReindex(t *testing.T) {
	data, cfgFile, s := archiveRig(t, "")
	dir := filepath.Join(data, "recordings", "2026", "12", "01")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// r1 signed with the recording key serve would have made; r2 unsigned
	// (or forged: either way its sidecar does not verify).
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(filepath.Join(data, "recording.key"), append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, k := range map[string][]byte{"r1": key, "r2": nil} {
		now := time.Now().Add(-time.Hour)
		r, err := recorder.New(recorder.Config{Dir: dir, Name: id, CallID: id, Codec: "PCMU", Key: k, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		r.WriteCaller(make([]int16, recorder.FrameSamples))
		now = now.Add(time.Second)
		if _, err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := cli("archive", "reindex", "-config", cfgFile, "-data", data, "-json")
	if code != 0 || !strings.Contains(out, `"added": 2`) || !strings.Contains(out, `"unverified": 1`) ||
		!strings.Contains(errs, "UNVERIFIED") || !strings.Contains(errs, "r2.wav") || strings.Contains(errs, "r1.wav") {
		t.Fatalf("reindex: exit %d: %s%s", code, out, errs)
	}
	if in, err := s.Get(context.Background(), "r2"); err != nil || in.Recording == nil || in.Recording.Status != archive.StatusUnverified {
		t.Errorf("r2 after reindex: %+v %v", in, err)
	}
	if in, err := s.Get(context.Background(), "r1"); err != nil || in.Recording == nil {
		t.Errorf("r1 after reindex: %+v %v", in, err)
	}
	code, out, errs = cli("archive", "delete-recording", "-config", cfgFile, "-data", data, "r1", "nope")
	if code != 1 || !strings.Contains(out, "r1: recording deleted") || !strings.Contains(errs, "no recording to delete: nope") {
		t.Errorf("delete-recording: exit %d: %s%s", code, out, errs)
	}
	if in, _ := s.Get(context.Background(), "r1"); in.Recording == nil || in.Recording.DeletedAt.IsZero() || !strings.HasPrefix(in.Recording.DeletedBy, "cli:") {
		t.Errorf("r1 after delete: %+v", in.Recording)
	}
	if _, err := os.Stat(filepath.Join(dir, "r1.wav")); !os.IsNotExist(err) {
		t.Errorf("r1.wav: %v", err)
	}
}

func TestArchiveCLIExport(t *testing.T) {
	const card = "4111111111111111"
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := ""
			if engine == "postgres" {
				dsn = pgtest.DSN(t)
			}
			data, cfgFile, s := archiveRig(t, dsn)
			// A kept key holding a card by mistake: stored as it is (policy
			// keep), masked in every export.
			t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.Local)
			in := s.FromSummary(call.Summary{ID: "idcard", Caller: "+443333", Called: "main", Target: "flow:main", Queue: "sales",
				Offered: t0, Ended: t0.Add(time.Minute), Consent: call.ConsentNotAsked, Data: map[string]string{"language": card}}, "node1")
			if err := s.Insert(context.Background(), []archive.Interaction{in}); err != nil {
				t.Fatal(err)
			}
			common := []string{"-config", cfgFile, "-data", data}
			dir := t.TempDir()
			xlsx, csvFile := filepath.Join(dir, "out.xlsx"), filepath.Join(dir, "out.csv")
			code, out, errs := cli(append([]string{"archive", "export", "-format", "xlsx", "-o", xlsx, "-queue", "sales"}, common...)...)
			if code != 0 || !strings.Contains(out, "3 interaction(s) exported") {
				t.Fatalf("export xlsx: exit %d: %s%s", code, out, errs)
			}
			x, err := excelize.OpenFile(xlsx)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			rows, err := x.GetRows("interactions")
			if err != nil || len(rows) != 4 {
				t.Fatalf("xlsx: %d rows, %v", len(rows), err)
			}
			head := strings.Join(rows[0], ",")
			if !strings.HasPrefix(head, "id,sip_call_id,offered") || !strings.Contains(head, "data:customer_id") || !strings.Contains(head, "data:language") {
				t.Errorf("header %q", head)
			}
			ids := []string{rows[1][0], rows[2][0], rows[3][0]}
			if strings.Join(ids, " ") != "idcard id442222 id441111" {
				t.Errorf("rows %v", ids)
			}
			code, _, errs = cli(append([]string{"archive", "export", "-format", "csv", "-o", csvFile, "-caller", "+441111"}, common...)...)
			if code != 0 {
				t.Fatalf("export csv: exit %d: %s", code, errs)
			}
			b, err := os.ReadFile(csvFile)
			if err != nil || strings.Count(string(b), "\n") != 2 || !strings.Contains(string(b), "id441111") {
				t.Errorf("csv: %v\n%s", err, b)
			}
			// The leak check: neither file holds the card, nor a clear
			// masked value.
			for _, row := range rows {
				for _, cell := range row {
					if strings.Contains(digitsOf(cell), card) || strings.HasPrefix(cell, "C-44") {
						t.Errorf("xlsx cell %q not masked", cell)
					}
				}
			}
			if strings.Contains(digitsOf(string(b)), card) || strings.Contains(string(b), "C-441111") {
				t.Errorf("csv holds a clear value:\n%s", b)
			}
			if st, err := os.Stat(xlsx); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("xlsx mode: %v %v", st, err)
			}
			log, err := s.AuditLog(context.Background(), "", 0)
			if err != nil || len(log) != 2 || log[0].Detail != "xlsx 3 rows" || log[1].Detail != "csv 1 rows" || log[0].Action != archive.ActionExport {
				t.Errorf("audit: %+v %v", log, err)
			}
			if code, _, errs := cli(append([]string{"archive", "audit", "-verify"}, common...)...); code != 0 {
				t.Errorf("audit -verify: exit %d: %s", code, errs)
			}
			if code, _, _ := cli(append([]string{"archive", "export", "-format", "pdf", "-o", csvFile}, common...)...); code != 2 {
				t.Errorf("pdf: exit %d", code)
			}
			if code, _, _ := cli(append([]string{"archive", "export", "-format", "csv", "-o", filepath.Join(dir, "none", "x.csv")}, common...)...); code != 1 {
				t.Errorf("unwritable: exit %d", code)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestArchiveCLIDevGenerate: the hidden generator fills a fresh data
// directory's archive, and search finds a synthetic caller and customer.
func TestArchiveCLIDevGenerate(t *testing.T) {
	data := t.TempDir()
	if code, _, _ := cli("archive", "dev-generate", "-data", data); code != 2 {
		t.Fatal("dev-generate without -n accepted")
	}
	code, out, errs := cli("archive", "dev-generate", "-data", data, "-n", "500", "-days", "3")
	if code != 0 || !strings.Contains(out, "500 synthetic interactions") {
		t.Fatalf("dev-generate: %d %s %s", code, out, errs)
	}
	// Seed 1, 50 callers: caller 0 and its customer id are there.
	for _, flag := range [][]string{{"-caller", archive.GenCaller(0)}, {"-data", "customer_id=" + archive.GenCustomer(0)}} {
		code, out, errs = cli(append([]string{"archive", "search", "-data-dir", data, "-json"}, flag...)...)
		if code != 0 || !strings.Contains(out, archive.GenCaller(0)) {
			t.Errorf("search %v: %d %s %s", flag, code, out, errs)
		}
	}
}

// TestArchiveCLIDeleteRecordingSearch: delete-recording -search needs
// -dry-run or -confirm N; the dry run prints N, a stale count deletes
// nothing, -confirm N deletes the selected recordings only.
func TestArchiveCLIDeleteRecordingSearch(t *testing.T) {
	data, cfgFile, s := archiveRig(t, "")
	dir := filepath.Join(data, "recordings")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	var batch []archive.Interaction
	for i, id := range []string{"q1", "q2", "q3"} {
		queue := "sales"
		if id == "q3" {
			queue = "support"
		}
		wav := filepath.Join(dir, id+".wav")
		if err := os.WriteFile(wav, []byte("RIFF"), 0o600); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, s.FromSummary(call.Summary{
			ID: id, SIPCallID: id + "@x", Caller: "+443333", Called: "main", Target: "flow:main", Queue: queue,
			Offered: t0.Add(time.Duration(i) * time.Minute), Ended: t0.Add(time.Duration(i)*time.Minute + 30*time.Second),
			EndReason: "closed", SIPEndReason: "bye", Consent: call.ConsentAccepted,
			Recording: &recorder.Result{WAV: wav, Meta: recorder.Sidecar{SHA256: strings.Repeat("ab", 32), DurationMS: 30000}},
		}, "node1"))
	}
	if err := s.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	base := []string{"archive", "delete-recording", "-config", cfgFile, "-data", data}
	for _, bad := range [][]string{{"-search", "-queue", "sales"}, {"-search", "q1", "-dry-run"}, {"-search", "-dry-run"}} {
		if code, _, errs := cli(append(base, bad...)...); code != 2 || !strings.Contains(errs, "usage") && !strings.Contains(errs, "filter") {
			t.Errorf("%v: exit %d %s", bad, code, errs)
		}
	}
	code, out, errs := cli(append(base, "-search", "-queue", "sales", "-dry-run")...)
	if code != 0 || !strings.Contains(out, "2 recording(s) selected; delete them with -confirm 2") {
		t.Fatalf("dry run: exit %d: %s%s", code, out, errs)
	}
	if code, _, errs := cli(append(base, "-search", "-queue", "sales", "-confirm", "3")...); code != 1 || !strings.Contains(errs, "selects 2 recording(s) now, 3 confirmed") {
		t.Errorf("stale count: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "q1.wav")); err != nil {
		t.Fatalf("q1.wav deleted by a refused run: %v", err)
	}
	code, out, errs = cli(append(base, "-search", "-queue", "sales", "-confirm", "2")...)
	if code != 0 || !strings.Contains(out, "2 recording(s) deleted, 0 failed") {
		t.Fatalf("delete: exit %d: %s%s", code, out, errs)
	}
	for id, gone := range map[string]bool{"q1": true, "q2": true, "q3": false} {
		if _, err := os.Stat(filepath.Join(dir, id+".wav")); os.IsNotExist(err) != gone {
			t.Errorf("%s.wav: %v", id, err)
		}
		in, err := s.Get(context.Background(), id)
		if err != nil || in.Recording == nil || in.Recording.DeletedAt.IsZero() != !gone || (gone && !strings.HasPrefix(in.Recording.DeletedBy, "cli:")) {
			t.Errorf("%s: %+v %v", id, in.Recording, err)
		}
	}
	log, _ := s.AuditLog(context.Background(), "", 0)
	if len(log) != 3 || log[2].Detail != "recordings of a search (queue): 2 matched, 2 deleted, 0 failed" || !strings.HasPrefix(log[2].Actor, "cli:") {
		t.Errorf("audit %+v", log)
	}
}
