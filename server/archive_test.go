package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/recorder"
)

func loopbackConfig(t *testing.T) config.Config {
	cfg := config.Default()
	rtp := freeUDPPort(t) &^ 1
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cfg.RTP.Ports = fmt.Sprintf("%d-%d", rtp, rtp+9)
	cfg.Data.Dir = t.TempDir()
	cfg.Admin.Listen = ""
	cfg.Shutdown.Grace = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRunOpensTheArchive: with the defaults a node creates DATA/cloak.db
// (migrated) and DATA/archive.key (0600); archive.enabled false creates
// neither.
func TestRunOpensTheArchive(t *testing.T) {
	cfg := loopbackConfig(t)
	runUntilReady(t, cfg)()
	st, err := os.Stat(filepath.Join(cfg.Data.Dir, "archive.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive key: %v %v", st, err)
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Search(context.Background(), archive.Query{}); err != nil {
		t.Errorf("search the node's archive: %v", err)
	}

	off := loopbackConfig(t)
	off.Archive.Enabled = false
	runUntilReady(t, off)()
	if _, err := os.Stat(filepath.Join(off.Data.Dir, "cloak.db")); !os.IsNotExist(err) {
		t.Errorf("archive disabled, yet cloak.db: %v", err)
	}
}

func TestNextPurge(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		now, at, want string
	}{
		{"2026-12-07 02:59", "03:00", "2026-12-07 03:00"},
		{"2026-12-07 03:00", "03:00", "2026-12-08 03:00"}, // just ran: tomorrow
		{"2026-12-07 23:30", "00:15", "2026-12-08 00:15"},
		{"2026-12-31 12:00", "03:00", "2027-01-01 03:00"},
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", c.now, loc)
		want, _ := time.ParseInLocation("2006-01-02 15:04", c.want, loc)
		if got := nextPurge(now, c.at); !got.Equal(want) {
			t.Errorf("nextPurge(%s, %s) = %s, want %s", c.now, c.at, got, want)
		}
	}
}

// TestRunStartsWithPostgresDown: a PostgreSQL archive nobody answers for
// does not keep the node from starting (and stopping).
func TestRunStartsWithPostgresDown(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Archive.DSN = fmt.Sprintf("postgres://cloak@127.0.0.1:%d/cloak?sslmode=disable&connect_timeout=1", freeUDPPort(t))
	runUntilReady(t, cfg)()
}

// TestRunReindexesAtStart: a recording whose interaction the archive
// lacks (the process stopped before writing it) is indexed at start.
func TestRunReindexesAtStart(t *testing.T) {
	cfg := loopbackConfig(t)
	dir := filepath.Join(cfg.Data.Dir, "recordings", "2026", "12", "01")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Signed with the recording key the node will use: reindex verifies it.
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(filepath.Join(cfg.Data.Dir, "recording.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(recorder.Config{Dir: dir, Name: "before-crash", CallID: "before-crash", Codec: "PCMU", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteCaller(make([]int16, recorder.FrameSamples))
	if _, err := r.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the recording ended before the node started
	stop := runUntilReady(t, cfg)
	defer stop()
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := s.Get(context.Background(), "before-crash")
		if err == nil {
			if in.EndReason != archive.EndReasonReindexed || in.Recording == nil {
				t.Errorf("reindexed as %+v", in)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reindexed within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
