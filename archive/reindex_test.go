package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/recorder"
)

// record writes a finished 1 s recording of call id in dir, its clock
// starting at start, and returns the WAV's path.
func record(t *testing.T, dir, id string, start time.Time) string {
	t.Helper()
	now := start
	r, err := recorder.New(recorder.Config{Dir: dir, Name: id, CallID: id, Codec: "PCMU", Key: testKey,
		Now: func() time.Time { return now }, QueueFrames: 128})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, recorder.FrameSamples)
	for range 50 {
		r.WriteCaller(frame)
		r.WriteAgent(frame)
		now = now.Add(recorder.FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res.WAV
}

func TestReindex(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		dir := t.TempDir()
		day := filepath.Join(dir, "2026", "12", "01")
		q := filepath.Join(dir, recorder.QuarantineDir)
		for _, d := range []string{day, q} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		record(t, day, "known", t0)
		lost := record(t, day, "lost", t0.Add(time.Minute))
		record(t, day, "current", t0.Add(time.Hour)) // ends after `before`
		record(t, q, "quarantined", t0)
		if err := os.WriteFile(filepath.Join(day, "orphan.wav"), []byte("RIFF"), 0o600); err != nil {
			t.Fatal(err)
		}
		// "known" reached the archive through the writer, with more than a
		// sidecar knows.
		known := s.FromSummary(summary("known", "+4405", t0), "n")
		if err := s.Insert(ctx, []Interaction{known}); err != nil {
			t.Fatal(err)
		}
		before := t0.Add(30 * time.Minute)
		res, err := s.Reindex(ctx, dir, before)
		if err != nil {
			t.Fatal(err)
		}
		if want := (ReindexResult{Recordings: 3, Added: 1, Unreadable: 1}); res != want {
			t.Errorf("reindex: %+v, want %+v", res, want)
		}
		got, err := s.Get(ctx, "lost")
		if err != nil {
			t.Fatal(err)
		}
		if got.EndReason != EndReasonReindexed || !got.Offered.Equal(t0.Add(time.Minute)) || got.Recording == nil ||
			got.Recording.File != lost || got.Recording.Duration != time.Second || got.Recording.SHA256 == "" {
			t.Errorf("rebuilt interaction: %+v %+v", got, got.Recording)
		}
		if k, _ := s.Get(ctx, "known"); k.Caller != "+4405" || k.EndReason == EndReasonReindexed {
			t.Errorf("reindex overwrote an interaction the writer stored: %+v", k)
		}
		for _, id := range []string{"current", "quarantined"} {
			if _, err := s.Get(ctx, id); err == nil {
				t.Errorf("%s was indexed", id)
			}
		}
		if res, err := s.Reindex(ctx, dir, before); err != nil || res.Added != 0 {
			t.Errorf("second reindex: %+v %v", res, err)
		}
		if res, err := s.Reindex(ctx, filepath.Join(dir, "none"), before); err != nil || res != (ReindexResult{}) {
			t.Errorf("reindex of a missing dir: %+v %v", res, err)
		}
	})
}
