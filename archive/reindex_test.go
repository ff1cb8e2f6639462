package archive

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/recorder"
)

// record writes a finished 1 s recording of call id in dir, its clock
// starting at start, and returns the WAV's path.
func record(t *testing.T, dir, id string, start time.Time) string {
	t.Helper()
	// The writer goroutine reads the clock while this one moves it.
	var now atomic.Int64
	now.Store(start.UnixNano())
	r, err := recorder.New(recorder.Config{Dir: dir, Name: id, CallID: id, Codec: "PCMU", Key: testKey,
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }, QueueFrames: 128})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, recorder.FrameSamples)
	for range 50 {
		r.WriteCaller(frame)
		r.WriteAgent(frame)
		now.Add(int64(recorder.FrameDuration))
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
		res, err := s.Reindex(ctx, dir, ReindexOptions{Before: before, SidecarKey: testKey})
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
			got.Recording.File != lost || got.Recording.Duration != time.Second || got.Recording.SHA256 == "" || got.Recording.Status != "" {
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
		if res, err := s.Reindex(ctx, dir, ReindexOptions{Before: before, SidecarKey: testKey}); err != nil || res.Added != 0 {
			t.Errorf("second reindex: %+v %v", res, err)
		}
		if res, err := s.Reindex(ctx, filepath.Join(dir, "none"), ReindexOptions{Before: before, SidecarKey: testKey}); err != nil || res != (ReindexResult{}) {
			t.Errorf("reindex of a missing dir: %+v %v", res, err)
		}
	})
}

// TestReindexChecksSidecarSignature: a sidecar forged (re-signed with
// another key), edited, unsigned, or with no key to check it, is not
// indexed silently: the interaction is added marked unverified, counted,
// and reported with the reason; a good one is added as before.
func TestReindexChecksSidecarSignature(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		dir := t.TempDir()
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		good := record(t, dir, "good", t0)
		forged := record(t, dir, "forged", t0)
		edited := record(t, dir, "edited", t0)
		unsigned := record(t, dir, "unsigned", t0)
		// rewrite rewrites wav's sidecar after edit, its signature untouched.
		rewrite := func(wav string, edit func(*recorder.Sidecar)) {
			sc, err := recorder.ReadSidecar(wav)
			if err != nil {
				t.Fatal(err)
			}
			edit(&sc)
			b, _ := json.Marshal(sc)
			if err := os.WriteFile(strings.TrimSuffix(wav, ".wav")+".json", b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// edited: the call's start moved, the signature left as it was.
		rewrite(edited, func(sc *recorder.Sidecar) { sc.Start = sc.Start.Add(-time.Hour) })
		rewrite(unsigned, func(sc *recorder.Sidecar) { sc.HMAC = "" })
		// forged: a recording made under another key.
		fdir := t.TempDir()
		now := t0
		r, err := recorder.New(recorder.Config{Dir: fdir, Name: "forged", CallID: "forged", Codec: "PCMU",
			Key: []byte("another key, 16+ bytes long"), Now: func() time.Time { return now }, QueueFrames: 128})
		if err != nil {
			t.Fatal(err)
		}
		r.WriteCaller(make([]int16, recorder.FrameSamples))
		now = now.Add(recorder.FrameDuration)
		fres, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{".wav", ".json"} {
			b, err := os.ReadFile(strings.TrimSuffix(fres.WAV, ".wav") + ext)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(strings.TrimSuffix(forged, ".wav")+ext, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}

		reported := map[string]error{}
		res, err := s.Reindex(ctx, dir, ReindexOptions{Before: t0.Add(time.Hour), SidecarKey: testKey,
			OnUnverified: func(wav string, err error) { reported[filepath.Base(wav)] = err }})
		if err != nil {
			t.Fatal(err)
		}
		if want := (ReindexResult{Recordings: 4, Added: 4, Unverified: 3}); res != want {
			t.Errorf("reindex: %+v, want %+v", res, want)
		}
		for wav, want := range map[string]error{"forged.wav": recorder.ErrWrongKey, "edited.wav": recorder.ErrSidecarChanged,
			"unsigned.wav": recorder.ErrUnsigned} {
			if !errors.Is(reported[wav], want) {
				t.Errorf("%s reported as %v, want %v", wav, reported[wav], want)
			}
		}
		if _, ok := reported[filepath.Base(good)]; ok {
			t.Errorf("the good recording was reported: %v", reported)
		}
		for id, unverified := range map[string]bool{"good": false, "forged": true, "edited": true, "unsigned": true} {
			in, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if (in.Recording.Status == StatusUnverified) != unverified || (in.EndReason == EndReasonReindexedUnverified) != unverified {
				t.Errorf("%s: status %q, end reason %q; unverified %v", id, in.Recording.Status, in.EndReason, unverified)
			}
		}

		// No key: nothing verifies, everything is reported.
		dir2 := t.TempDir()
		record(t, dir2, "nokey", t0)
		res, err = s.Reindex(ctx, dir2, ReindexOptions{Before: t0.Add(time.Hour)})
		if err != nil || res.Unverified != 1 {
			t.Errorf("reindex without a key: %+v %v", res, err)
		}
	})
}

// TestReindexLinksNodeLost: a survivor archived a lost node's calls
// (end reason "node-lost", no recording); when the node's recordings are
// reindexed with Link naming that reason, each such interaction gets its
// recording linked — one whose sidecar does not verify marked unverified
// — and nothing else of it changes. An interaction stored under another
// reason, or with a recording already, is left as it was; a second run
// links nothing; without Link nothing is linked.
func TestReindexLinksNodeLost(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		dir := t.TempDir()
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		lost := record(t, dir, "lost", t0)
		record(t, dir, "lost-forged", t0)
		record(t, dir, "other", t0)
		record(t, dir, "has-one", t0)
		// lost-forged: its sidecar edited after signing.
		sc, err := recorder.ReadSidecar(filepath.Join(dir, "lost-forged.wav"))
		if err != nil {
			t.Fatal(err)
		}
		sc.Start = sc.Start.Add(-time.Hour)
		b, _ := json.Marshal(sc)
		if err := os.WriteFile(filepath.Join(dir, "lost-forged.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		var stored []Interaction
		for _, c := range []struct{ id, reason string }{{"lost", "node-lost"}, {"lost-forged", "node-lost"}, {"other", "closed"}, {"has-one", "node-lost"}} {
			in := Interaction{ID: c.id, Caller: "+4405", Offered: t0, Ended: t0.Add(time.Second), EndedBy: "cloak", EndReason: c.reason, Node: "node-a"}
			if c.id == "has-one" {
				in.Recording = &Recording{File: "/elsewhere/has-one.wav", Status: "truncated"}
			}
			stored = append(stored, in)
		}
		if err := s.Insert(ctx, stored); err != nil {
			t.Fatal(err)
		}
		before := t0.Add(time.Hour)
		if res, err := s.Reindex(ctx, dir, ReindexOptions{Before: before, SidecarKey: testKey}); err != nil || res.Linked != 0 {
			t.Fatalf("reindex without Link: %+v %v", res, err)
		}
		res, err := s.Reindex(ctx, dir, ReindexOptions{Before: before, SidecarKey: testKey, Link: []string{"node-lost"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := (ReindexResult{Recordings: 4, Linked: 2, LinkedUnverified: 1}); res != want {
			t.Errorf("reindex: %+v, want %+v", res, want)
		}
		for id, want := range map[string]string{"lost": "", "lost-forged": StatusUnverified} {
			in, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if in.Recording == nil || in.Recording.Status != want || in.Recording.SHA256 == "" || in.EndReason != "node-lost" || in.Node != "node-a" || in.Caller != "+4405" {
				t.Errorf("%s after the link: %+v %+v, want recording status %q, the rest as stored", id, in, in.Recording, want)
			}
		}
		if in, _ := s.Get(ctx, "lost"); in.Recording == nil || in.Recording.File != lost {
			t.Errorf("lost linked to %+v, want %s", in.Recording, lost)
		}
		if in, _ := s.Get(ctx, "other"); in.Recording != nil {
			t.Errorf("an interaction ended %q got a recording: %+v", in.EndReason, in.Recording)
		}
		if in, _ := s.Get(ctx, "has-one"); in.Recording == nil || in.Recording.File != "/elsewhere/has-one.wav" {
			t.Errorf("a stored recording was replaced: %+v", in.Recording)
		}
		if res, err := s.Reindex(ctx, dir, ReindexOptions{Before: before, SidecarKey: testKey, Link: []string{"node-lost"}}); err != nil || res.Linked != 0 || res.Added != 0 {
			t.Errorf("second reindex: %+v %v", res, err)
		}
	})
}
