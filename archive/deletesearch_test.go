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

// TestDeleteRecordingsOfASearch: a dry run counts and deletes nothing; a
// wrong confirmed count or no filter deletes nothing; the right count
// deletes exactly the search's recordings in batches (files and index),
// keeps the interactions, audits each deletion and one summary naming the
// filters, not their values, and leaves a file outside the recordings
// directory (reported as failed).
func TestDeleteRecordingsOfASearch(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now().Add(-time.Hour)
		recDir, outside := t.TempDir(), t.TempDir()
		var batch []Interaction
		files := map[string]string{}
		for i, c := range []struct{ id, caller, dir string }{
			{"a1", "+447700900001", recDir}, {"a2", "+447700900001", recDir}, {"a3", "+447700900001", recDir},
			{"a4", "+447700900001", recDir}, {"a5", "+447700900001", outside}, {"b1", "+447700900002", recDir},
		} {
			in := s.FromSummary(summary(c.id, c.caller, now.Add(time.Duration(i)*time.Minute)), "n")
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
		o := DeleteSearchOptions{Query: Query{Caller: "+447700900001"}, RecordingsDir: recDir, Actor: "user:archivist", Address: "127.0.0.1", Batch: 2, DryRun: true}
		res, err := s.DeleteRecordings(ctx, o)
		if err != nil || res.Matched != 5 || res.Deleted != 0 {
			t.Fatalf("dry run: %+v %v", res, err)
		}
		o.DryRun = false
		for _, bad := range []DeleteSearchOptions{
			{Query: Query{Caller: "+447700900001"}, Confirm: 4, RecordingsDir: recDir},
			{Query: Query{Caller: "+447700900001"}, RecordingsDir: recDir},
		} {
			if _, err := s.DeleteRecordings(ctx, bad); !errors.Is(err, ErrConfirm) {
				t.Errorf("confirm %d: %v", bad.Confirm, err)
			}
		}
		if _, err := s.DeleteRecordings(ctx, DeleteSearchOptions{Query: Query{Recorded: true, Limit: 5}, Confirm: 6, RecordingsDir: recDir}); !errors.Is(err, ErrEmptySearch) {
			t.Errorf("no filter: %v", err)
		}
		for id, f := range files {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%s deleted before the confirmed run: %v", id, err)
			}
		}
		if log, _ := s.AuditLog(ctx, "", 0); len(log) != 0 {
			t.Fatalf("refused runs audited: %+v", log)
		}
		o.Confirm = 5
		res, err = s.DeleteRecordings(ctx, o)
		if err != nil || res.Matched != 5 || res.Deleted != 4 || len(res.Failed) != 1 || res.Failed[0] != "a5" {
			t.Fatalf("delete: %+v %v", res, err)
		}
		for id, f := range files {
			_, err := os.Stat(f)
			if keep := id == "a5" || id == "b1"; keep != (err == nil) {
				t.Errorf("%s: file %v", id, err)
			}
		}
		for _, id := range []string{"a1", "a4", "b1", "a5"} {
			in, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("%s: the interaction is gone: %v", id, err)
			}
			if deleted := !in.Recording.DeletedAt.IsZero(); deleted != (id == "a1" || id == "a4") || (deleted && in.Recording.DeletedBy != "user:archivist") {
				t.Errorf("%s: recording %+v", id, in.Recording)
			}
		}
		log, err := s.AuditLog(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var per []string
		for _, e := range log[:len(log)-1] {
			per = append(per, e.Interaction)
			if e.Action != ActionDelete || e.Actor != "user:archivist" || e.Address != "127.0.0.1" {
				t.Errorf("audit row %+v", e)
			}
		}
		if len(per) != 4 {
			t.Errorf("per-interaction audit rows %v, want 4", per)
		}
		sum := log[len(log)-1]
		if sum.Interaction != "" || sum.Detail != "recordings of a search (caller): 5 matched, 4 deleted, 1 failed" || strings.Contains(sum.Detail, "447700") {
			t.Errorf("summary row %+v", sum)
		}
		if rep, err := s.VerifyChain(ctx); err != nil || !rep.OK() {
			t.Errorf("audit chain: %+v %v", rep, err)
		}
		// Nothing left to delete but a5: a second run confirms 1.
		if res, err := s.DeleteRecordings(ctx, DeleteSearchOptions{Query: Query{Caller: "+447700900001"}, DryRun: true}); err != nil || res.Matched != 1 {
			t.Errorf("second dry run: %+v %v", res, err)
		}
	})
}
