package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPurge(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
		recDir, outside := t.TempDir(), t.TempDir()
		var batch []Interaction
		files := map[string]string{}
		for _, c := range []struct {
			id  string
			age time.Duration
			dir string
		}{
			{"old", 200 * 24 * time.Hour, recDir},
			{"mid", 20 * 24 * time.Hour, recDir},
			{"odd", 20 * 24 * time.Hour, outside}, // a path the database should not name
			{"new", 24 * time.Hour, recDir},
		} {
			in := s.FromSummary(summary(c.id, "+4470"+c.id, now.Add(-c.age-time.Minute)), "n")
			wav := filepath.Join(c.dir, c.id+".wav")
			for _, f := range []string{wav, strings.TrimSuffix(wav, ".wav") + ".json"} {
				if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in.Recording.File, in.Recording.Sidecar = wav, strings.TrimSuffix(wav, ".wav")+".json"
			files[c.id] = wav
			batch = append(batch, in)
		}
		if err := s.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"old", "mid"} {
			if _, err := s.Audit(ctx, AuditEntry{Actor: "cli:ops", Action: ActionPlay, Interaction: id}); err != nil {
				t.Fatal(err)
			}
		}
		o := PurgeOptions{Now: now, RecordingsDir: recDir, Actor: "retention", DryRun: true, Batch: 2,
			Retention: Retention{Interactions: 180 * 24 * time.Hour, Recordings: 14 * 24 * time.Hour,
				ParticipantData: 30 * 24 * time.Hour, Traces: 10 * 24 * time.Hour}}
		dry, err := s.Purge(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		// old: 2 data rows, 2 trace steps, its recording, itself; mid and
		// odd: their recordings, 2 trace steps each; data only of old (30 d).
		want := PurgeResult{Interactions: 1, Recordings: 3, ParticipantData: 2, Traces: 6, DryRun: true}
		if dry != want {
			t.Errorf("dry run: %+v, want %+v", dry, want)
		}
		if n := countRows(t, s, "interactions"); n != 4 {
			t.Fatalf("dry run deleted interactions: %d left", n)
		}
		if n := countRows(t, s, "leg_quality"); n != 8 {
			t.Fatalf("leg_quality rows before purge: %d, want 8", n)
		}
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("dry run deleted %s", f)
			}
		}

		o.DryRun = false
		res, err := s.Purge(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		// odd's files lie outside the recordings dir: kept, counted, its
		// row left for a later run.
		want = PurgeResult{Interactions: 1, Recordings: 2, ParticipantData: 2, Traces: 6, FilesKept: 1, AuditHeadSeq: 3}
		if res != want {
			t.Errorf("purge: %+v, want %+v", res, want)
		}
		if _, err := s.Get(ctx, "old"); err == nil {
			t.Error("old interaction still there")
		}
		if n := countRows(t, s, "leg_quality"); n != 6 { // 2 legs each of mid, odd, new
			t.Errorf("leg_quality rows after purge: %d, want 6 (old's 2 gone with it)", n)
		}
		for id, gone := range map[string]bool{"old": true, "mid": true, "odd": false, "new": false} {
			_, err := os.Stat(files[id])
			if gone != os.IsNotExist(err) {
				t.Errorf("%s's WAV: gone %v, want %v", id, os.IsNotExist(err), gone)
			}
		}
		mid, err := s.Get(ctx, "mid")
		if err != nil {
			t.Fatal(err)
		}
		if mid.Recording == nil || mid.Recording.DeletedAt.IsZero() || mid.Recording.DeletedBy != "retention" || len(mid.Trace) != 0 || len(mid.Data) != 2 {
			t.Errorf("mid after purge: recording %+v, %d trace steps, %d data", mid.Recording, len(mid.Trace), len(mid.Data))
		}
		if nw, _ := s.Get(ctx, "new"); len(nw.Trace) != 2 || nw.Recording.DeletedAt.IsZero() == false {
			t.Errorf("new was touched: %+v", nw)
		}
		log, _ := s.AuditLog(ctx, "", 0)
		var purges int
		for _, e := range log {
			if e.Interaction == "old" {
				t.Error("old's audit rows outlived it")
			}
			if e.Action == ActionPurge {
				purges++
				if strings.Contains(e.Detail, "+44") || e.Interaction != "" || !s.Verify(e) {
					t.Errorf("purge audit row %+v names a person or fails verification", e)
				}
			}
		}
		if purges != 1 {
			t.Errorf("%d purge audit rows, want 1 (none for the dry run)", purges)
		}
	})
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		dir, path string
		ok        bool
	}{
		{"/data/rec", "/data/rec/2026/12/01/a.wav", true},
		{"/data/rec", "/data/rec/../cloak.db", false},
		{"/data/rec", "/data/recordings-other/a.wav", false},
		{"/data/rec", "/etc/passwd", false},
		{"", "/data/rec/a.wav", false},
	} {
		if got := within(c.dir, c.path); got != c.ok {
			t.Errorf("within(%q, %q) = %v", c.dir, c.path, got)
		}
	}
}

func TestDeleteRecording(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		dir := t.TempDir()
		in := s.FromSummary(summary("d1", "+4406", time.Now()), "n")
		in.Recording.File, in.Recording.Sidecar = filepath.Join(dir, "d1.wav"), filepath.Join(dir, "d1.json")
		for _, f := range []string{in.Recording.File, in.Recording.Sidecar} {
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Insert(ctx, []Interaction{in}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRecording(ctx, "d1", "cli:ops", "local", t.TempDir()); err == nil {
			t.Fatal("deleted files outside the recordings dir")
		}
		if err := s.DeleteRecording(ctx, "d1", "cli:ops", "local", dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(in.Recording.File); !os.IsNotExist(err) {
			t.Errorf("WAV still there: %v", err)
		}
		got, err := s.Get(ctx, "d1")
		if err != nil || got.Recording.DeletedBy != "cli:ops" || got.Recording.DeletedAt.IsZero() || got.Caller != "+4406" {
			t.Errorf("after delete: %+v %v", got, err)
		}
		if err := s.DeleteRecording(ctx, "d1", "cli:ops", "local", dir); !errors.Is(err, ErrNoRecording) {
			t.Errorf("second delete: %v", err)
		}
		log, _ := s.AuditLog(ctx, "d1", 0)
		if len(log) != 1 || log[0].Action != ActionDelete || !s.Verify(log[0]) {
			t.Errorf("audit: %+v", log)
		}
	})
}

// TestPurgeExclusive: on PostgreSQL an exclusive purge does nothing but
// return ErrPurgeBusy while another session holds the purge lock (another
// node purging), runs once it is free, and frees the lock when done; on
// SQLite Exclusive changes nothing.
func TestPurgeExclusive(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := s.FromSummary(summary("old", "+447700900123", time.Now().Add(-400*24*time.Hour)), "n")
		old.Recording = nil
		if err := s.Insert(ctx, []Interaction{old}); err != nil {
			t.Fatal(err)
		}
		o := PurgeOptions{Retention: Retention{Interactions: 180 * 24 * time.Hour}, Actor: "retention", Exclusive: true}
		if s.Engine() == Postgres {
			other, err := s.DB().Conn(ctx) // another node's session
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, purgeLockKey); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Purge(ctx, o); !errors.Is(err, ErrPurgeBusy) {
				t.Fatalf("purge beside another node's: %v, want ErrPurgeBusy", err)
			}
			if n := countRows(t, s, "interactions"); n != 1 {
				t.Fatalf("a busy purge deleted: %d interactions left", n)
			}
			if log, _ := s.AuditLog(ctx, "", 0); len(log) != 0 {
				t.Errorf("a busy purge audited: %+v", log)
			}
			if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, purgeLockKey); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Purge(ctx, o)
		if err != nil || res.Interactions != 1 {
			t.Fatalf("exclusive purge: %+v %v", res, err)
		}
		if s.Engine() == Postgres {
			var free bool
			if err := s.DB().QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, purgeLockKey).Scan(&free); err != nil || !free {
				t.Errorf("the purge lock is still held after the purge: %v", err)
			}
		}
	})
}
