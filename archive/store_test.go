package archive

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var testKey = []byte("0123456789abcdef0123456789abcdef")

// engines runs f against a fresh SQLite file and, unless -short, a fresh
// PostgreSQL database.
func engines(t *testing.T, policy Policy, f func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, openTest(t, filepath.Join(t.TempDir(), "cloak.db"), policy))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, openTest(t, pgtest.DSN(t), policy))
	})
}

func openTest(t testing.TB, dsn string, policy Policy) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{DSN: dsn, Key: testKey, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testPolicy = Policy{
	Default: KeyPolicy{Policy: MaskAfterCall, Visible: 2},
	Keys: map[string]KeyPolicy{
		"language": {Policy: Keep},
		"dob":      {Policy: DropAfterCall},
	},
}

// summary is a finished call as call.Manager hands it over.
func summary(id, caller string, offered time.Time) call.Summary {
	return call.Summary{
		ID: id, SIPCallID: id + "@host", Caller: caller, Called: "main", Target: "flow:main",
		Queue: "sales", Agent: "alice",
		Offered: offered, Answered: offered.Add(100 * time.Millisecond), Queued: offered.Add(5 * time.Second),
		AgentAnswered: offered.Add(20 * time.Second), Ended: offered.Add(80 * time.Second),
		EndReason: "closed", SIPEndReason: "bye", Consent: call.ConsentAccepted,
		Data: map[string]string{"customer_id": "CUST-12345", "language": "fr", "dob": "1970-01-31"},
		Segments: []call.SecureSegment{{Flow: "secure-pay", Kind: "secure", Start: offered.Add(30 * time.Second),
			End: offered.Add(60 * time.Second), Outputs: map[string]string{"card_last4": "1111", "payment_result": "approved"}}},
		Trace: []ivr.TraceEvent{
			{Time: offered, Flow: "main", Step: "id", Action: "set_data", Branch: "next", Detail: "key customer_id = CUST-12345"},
			{Time: offered.Add(time.Second), Flow: "secure-pay", Step: "card", Action: "collect", Branch: "on_valid", Detail: "************1111", Secure: true},
		},
		Recording: &recorder.Result{WAV: "/data/recordings/" + id + ".wav", Sidecar: "/data/recordings/" + id + ".json",
			Meta: recorder.Sidecar{SHA256: strings.Repeat("ab", 32), DurationMS: 80000,
				Markers: []recorder.Marker{{Reason: "secure", StartMS: 30000, EndMS: 60000}}}},
		Quality: []call.LegQuality{
			{Leg: "caller", Quality: media.Quality{Received: 4000, Expected: 4010, Lost: 10, LossPercent: 0.25, JitterMs: 1.5,
				RTTMs: -1, MOS: 4.3, PeerReported: true, PeerFractionLostPct: 0.39, PeerJitterMs: 2.25, DroppedStale: 3}},
			{Leg: "agent", Agent: "alice", Quality: media.Quality{Received: 3000, RTTMs: 12.5, MOS: 4.1}},
		},
	}
}

func TestInsertSearchGet(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		a := s.FromSummary(summary("a1", "+441234", day), "node1")
		b := s.FromSummary(summary("b2", "+449999", day.Add(time.Hour)), "node1")
		b.Queue, b.Agent, b.Data, b.Recording = "payments", "bob", nil, nil
		if err := s.Insert(ctx, []Interaction{a, b}); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, []Interaction{a}); err != nil { // a retried batch
			t.Fatalf("re-insert: %v", err)
		}
		ids := func(q Query) []string {
			t.Helper()
			got, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, in := range got {
				out = append(out, in.ID)
			}
			return out
		}
		for name, c := range map[string]struct {
			q    Query
			want []string
		}{
			"all, newest first":      {Query{}, []string{"b2", "a1"}},
			"caller":                 {Query{Caller: "+441234"}, []string{"a1"}},
			"from (inclusive)":       {Query{From: day.Add(time.Hour)}, []string{"b2"}},
			"to (exclusive)":         {Query{To: day.Add(time.Hour)}, []string{"a1"}},
			"queue":                  {Query{Queue: "payments"}, []string{"b2"}},
			"agent":                  {Query{Agent: "alice"}, []string{"a1"}},
			"route":                  {Query{Route: "flow:main"}, []string{"b2", "a1"}},
			"masked data by value":   {Query{Data: map[string]string{"customer_id": "CUST-12345"}}, []string{"a1"}},
			"masked data, near miss": {Query{Data: map[string]string{"customer_id": "CUST-1234"}}, nil},
			"kept data":              {Query{Data: map[string]string{"language": "fr"}}, []string{"a1"}},
			"dropped data":           {Query{Data: map[string]string{"dob": "1970-01-31"}}, nil},
			"limit":                  {Query{Limit: 1}, []string{"b2"}},
			"recorded":               {Query{Recorded: true}, []string{"a1"}},
		} {
			if got := ids(c.q); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: got %v, want %v", name, got, c.want)
			}
		}
		got, err := s.Get(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		wantData := []DataItem{
			{Key: "customer_id", Value: "****45", Token: Token(testKey, "customer_id", "CUST-12345"), Policy: MaskAfterCall},
			{Key: "language", Value: "fr", Policy: Keep},
		}
		if !reflect.DeepEqual(got.Data, wantData) {
			t.Errorf("data: got %+v\nwant %+v", got.Data, wantData)
		}
		if got.Queue != "sales" || got.Agent != "alice" || got.Wait != 15*time.Second || got.Talk != 60*time.Second ||
			got.EndedBy != "caller" || got.Consent != "accepted" || !got.Offered.Equal(day) {
			t.Errorf("general information: %+v", got)
		}
		wantOut := map[string]string{"card_last4": "****", "payment_result": "****ed"} // masked as participant data is
		if len(got.Segments) != 1 || !reflect.DeepEqual(got.Segments[0].Outputs, wantOut) || !got.Segments[0].End.Equal(day.Add(time.Minute)) {
			t.Errorf("segments: %+v", got.Segments)
		}
		if len(got.Trace) != 2 || got.Trace[0].Detail != "key customer_id = ****45" || !got.Trace[1].Secure {
			t.Errorf("trace: %+v", got.Trace)
		}
		if r := got.Recording; r == nil || r.Duration != 80*time.Second || r.SHA256 != strings.Repeat("ab", 32) || !strings.Contains(string(r.Markers), `"secure"`) {
			t.Errorf("recording: %+v", got.Recording)
		}
		wantQ := []LegQuality{
			{Leg: "caller", Received: 4000, Lost: 10, LossPct: 0.25, JitterMs: 1.5, RTTMs: -1, MOS: 4.3,
				PeerLossPct: 0.39, PeerJitterMs: 2.25, DroppedStale: 3},
			{Leg: "agent", Agent: "alice", Received: 3000, RTTMs: 12.5, MOS: 4.1},
		}
		if !reflect.DeepEqual(got.Quality, wantQ) {
			t.Errorf("leg quality: got %+v\nwant %+v", got.Quality, wantQ)
		}
		if gb, err := s.Get(ctx, "b2"); err != nil || len(gb.Quality) != 2 {
			t.Errorf("b2's leg quality: %+v, %v", gb.Quality, err)
		}
		if _, err := s.Get(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "no such interaction") {
			t.Errorf("missing id: %v", err)
		}
	})
}

func TestAuditSignedRows(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, a := range []string{ActionView, ActionPlay} {
			if _, err := s.Audit(ctx, AuditEntry{Actor: "cli:ops", Action: a, Interaction: "a1", Address: "127.0.0.1"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Audit(ctx, AuditEntry{Actor: "cli:ops", Action: ActionView, Interaction: "b2"}); err != nil {
			t.Fatal(err)
		}
		log, err := s.AuditLog(ctx, "a1", 0)
		if err != nil || len(log) != 2 || log[0].Action != ActionView || log[1].Action != ActionPlay {
			t.Fatalf("log of a1: %+v %v", log, err)
		}
		for _, e := range log {
			if !s.Verify(e) {
				t.Errorf("row %d fails verification untouched", e.ID)
			}
		}
		// Someone with database access rewrites who played the recording.
		if _, err := s.DB().ExecContext(ctx, s.q(`UPDATE audit_log SET actor = ? WHERE id = ?`), "cli:nobody", log[1].ID); err != nil {
			t.Fatal(err)
		}
		all, _ := s.AuditLog(ctx, "", 0)
		var bad []int64
		for _, e := range all {
			if !s.Verify(e) {
				bad = append(bad, e.ID)
			}
		}
		if !reflect.DeepEqual(bad, []int64{log[1].ID}) {
			t.Errorf("rows failing verification: %v, want [%d]", bad, log[1].ID)
		}
	})
}

// TestMigrationsAlike keeps the two engines' migrations in step: the
// same versions, the same SQL but for the audit id's type.
func TestMigrationsAlike(t *testing.T) {
	lite, _ := fs.Glob(migrations, "migrations/sqlite/*.sql")
	pg, _ := fs.Glob(migrations, "migrations/postgres/*.sql")
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("sqlite %v, postgres %v", lite, pg)
	}
	for i := range lite {
		if filepath.Base(lite[i]) != filepath.Base(pg[i]) {
			t.Errorf("%s vs %s", lite[i], pg[i])
		}
		a, _ := fs.ReadFile(migrations, lite[i])
		b, _ := fs.ReadFile(migrations, pg[i])
		norm := strings.NewReplacer("INTEGER PRIMARY KEY AUTOINCREMENT", "AUTOID", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "AUTOID")
		if norm.Replace(string(a)) != norm.Replace(string(b)) {
			t.Errorf("%s differs between engines beyond the audit id", filepath.Base(lite[i]))
		}
	}
}

func TestMask(t *testing.T) {
	for _, c := range []struct {
		v       string
		visible int
		want    string
	}{
		{"CUST-12345", 2, "****45"},
		{"1234", 2, "****"}, // no more than half shown: nothing
		{"12345", 2, "****45"},
		{"Zoë Ångström", 3, "****röm"},
		{"abcdef", 0, "****"},
		{"", 2, "****"},
	} {
		if got := Mask(c.v, c.visible); got != c.want {
			t.Errorf("Mask(%q, %d) = %q, want %q", c.v, c.visible, got, c.want)
		}
	}
}

func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "archive.key")
	if _, err := LoadKey(path, false); err == nil {
		t.Fatal("missing key accepted without create")
	}
	k1, err := LoadKey(path, true)
	if err != nil || len(k1) != 64 {
		t.Fatalf("created key: %d bytes, %v", len(k1), err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadKey(path, true)
	if err != nil || string(k1) != string(k2) {
		t.Errorf("second load changed the key: %v", err)
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := LoadKey(path, false); err == nil {
		t.Error("short key accepted")
	}
}

// TestRecordingPathsAbsolute: serve may run with a relative data dir;
// the archive keeps recordings' paths absolute so the CLI, run from
// elsewhere, finds (and purges) the same files.
func TestRecordingPathsAbsolute(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "cloak.db"), testPolicy)
	sum := summary("rel", "+4410", time.Now())
	sum.Recording.WAV, sum.Recording.Sidecar = "data/recordings/rel.wav", "data/recordings/rel.json"
	in := s.FromSummary(sum, "n")
	wd, _ := os.Getwd()
	if in.Recording.File != filepath.Join(wd, "data/recordings/rel.wav") || in.Recording.Sidecar != filepath.Join(wd, "data/recordings/rel.json") {
		t.Errorf("stored paths %q, %q", in.Recording.File, in.Recording.Sidecar)
	}
	if !within("data/recordings", in.Recording.File) || within(t.TempDir(), in.Recording.File) {
		t.Error("within does not compare a relative dir with an absolute path")
	}
}
