package server

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clusterConfig is loopbackConfig as cluster node id on the throwaway
// PostgreSQL dsn, its heartbeat short.
func clusterConfig(t *testing.T, dsn, id string) config.Config {
	t.Helper()
	cfg := loopbackConfig(t)
	cfg.Archive.DSN = dsn
	cfg.Cluster.Enabled = true
	cfg.Cluster.NodeID = id
	cfg.Cluster.Heartbeat = 200 * time.Millisecond
	cfg.Cluster.NodeTimeout = 600 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// crashLeft leaves in dir what kill -9 of a node leaves of call id's
// recording: its WAV part (a header whose sizes are still zero, then the
// audio written so far) and its provisional sidecar, copied from a live
// recording under key (copies hold no lock, as a dead process holds
// none). The live one is then discarded.
func crashLeft(t *testing.T, dir, id string, key []byte) {
	t.Helper()
	live := t.TempDir()
	r, err := recorder.New(recorder.Config{Dir: live, Name: id, CallID: id, Codec: "PCMU", Key: key, QueueFrames: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Discard() }()
	frame := make([]int16, recorder.FrameSamples)
	for i := range frame {
		frame[i] = int16(i * 300)
	}
	for range 50 {
		r.WriteCaller(frame)
		r.WriteAgent(frame)
	}
	part := filepath.Join(live, "."+id+".wav.part")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(part)
		if err == nil && st.Size() >= 44+4*int64(recorder.FrameSamples)*50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live recording's part never held its audio: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"." + id + ".wav.part", "." + id + ".json.part"} {
		b, err := os.ReadFile(filepath.Join(live, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunRecoversIntoClusterArchive: node-a was killed (-9) holding two
// recorded calls. A survivor (node-b) declared it lost and archived the
// first call node-lost; the second the node synced just before it died,
// after the survivor's look. node-a starts again under the same
// cluster.node_id on the same recordings directory: its join archives
// the second call node-lost, its crash recovery makes both recordings
// whole (header set to the audio on disk, sidecar signed and marked
// recovered: flagged, never a file that looks whole but is not), and its
// reindex links each to its node-lost interaction in the shared
// archive. A recording whose interaction the archive lacks is added
// under node-a's id.
func TestRunRecoversIntoClusterArchive(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg := clusterConfig(t, dsn, "node-a")
	ctx := context.Background()
	recKey := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(filepath.Join(cfg.Data.Dir, "recording.key"), recKey, 0o600); err != nil {
		t.Fatal(err)
	}
	day := filepath.Join(cfg.Data.Dir, "recordings", "2026", "12", "07")
	for _, id := range []string{"call-reaped", "call-own", "call-unknown"} {
		crashLeft(t, day, id, recKey)
	}
	// The shared database as the cluster left it: the archive migrated
	// (with the key the node will use), node-a beating with its calls.
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts := func(id string, calls ...string) cluster.Options {
		return cluster.Options{NodeID: id, Heartbeat: cfg.Cluster.Heartbeat, NodeTimeout: cfg.Cluster.NodeTimeout, DSN: dsn, Log: zerolog.Nop(),
			Calls: func() []cluster.Call {
				var out []cluster.Call
				for _, c := range calls {
					out = append(out, cluster.Call{ID: c, Caller: "+4420", Called: "main", Offered: time.Now().Add(-time.Minute)})
				}
				return out
			}}
	}
	mustNode := func(o cluster.Options) *cluster.Node {
		n, err := cluster.New(db, o)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadA, survivor := mustNode(opts("node-a", "call-reaped")), mustNode(opts("node-b"))
	if err := deadA.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.Cluster.NodeTimeout + 100*time.Millisecond) // node-a is silent
	if lost, err := survivor.Reap(ctx); err != nil || len(lost) != 1 {
		t.Fatalf("the survivor's reap: %v %v, want node-a", lost, err)
	}
	in, err := s.Get(ctx, "call-reaped")
	if err != nil || in.EndReason != cluster.EndReason || in.Recording != nil {
		t.Fatalf("before node-a returns: %+v %v, want node-lost without a recording", in, err)
	}
	// node-a's last heartbeat, after the survivor's look, held call-own.
	if err := mustNode(opts("node-a", "call-own")).Beat(ctx); err != nil {
		t.Fatal(err)
	}

	stop := runUntilReady(t, cfg)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range []string{"call-reaped", "call-own", "call-unknown"} {
		var in archive.Interaction
		for {
			in, err = s.Get(ctx, id)
			if err == nil && in.Recording != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no recording in the shared archive 10 s after node-a's start: %+v %v", id, in, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		wantReason := cluster.EndReason
		if id == "call-unknown" {
			wantReason = archive.EndReasonReindexed
		}
		if in.EndReason != wantReason || in.Node != "node-a" || in.Recording.Status != recorder.StatusRecovered {
			t.Errorf("%s: end reason %q, node %q, recording status %q; want %q, node-a, %q",
				id, in.EndReason, in.Node, in.Recording.Status, wantReason, recorder.StatusRecovered)
		}
		if !strings.HasPrefix(in.Recording.File, day) || !strings.HasSuffix(in.Recording.File, id+".wav") {
			t.Errorf("%s: recording at %s, want its final name in %s", id, in.Recording.File, day)
		}
		rep, err := recorder.Verify(in.Recording.File, recKey)
		if err != nil {
			t.Errorf("%s: the recovered recording does not verify: %v", id, err)
			continue
		}
		if rep.Sidecar.Status != recorder.StatusRecovered || rep.Sidecar.Incident == nil || rep.Sidecar.SHA256 != in.Recording.SHA256 ||
			rep.Sidecar.DurationMS != 1000 {
			t.Errorf("%s: sidecar %+v (archive's hash %s), want recovered, an incident, 1000 ms, the archive's hash", id, rep.Sidecar, in.Recording.SHA256)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(day, ".*"))
	if len(parts) != 0 {
		t.Errorf("crash leftovers still there: %v", parts)
	}
}

// TestArchiveNodeIsClusterNodeID: a clustered node's calls are archived
// under its cluster.node_id (as a survivor archives its node-lost calls),
// not the host name; a single node keeps the host name.
func TestArchiveNodeIsClusterNodeID(t *testing.T) {
	host, _ := os.Hostname()
	single := loopbackConfig(t)
	if got := nodeName(single); got != host {
		t.Errorf("single node: %q, want the host name %q", got, host)
	}
	dsn := pgtest.DSN(t)
	cfg := clusterConfig(t, dsn, "node-7")
	unnamed := cfg
	unnamed.Cluster.NodeID = ""
	if got, want := nodeName(unnamed), defaultNodeID(unnamed); got != want || !strings.HasPrefix(got, host+":") {
		t.Errorf("cluster without node_id: %q, want the default id %q (host:port)", got, want)
	}
	ctx := context.Background()
	arch, err := archiveSetup(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	arch.writer.Submit(call.Summary{ID: "written-here", Caller: "+4420", Called: "echo", Offered: now, Answered: now, Ended: now.Add(time.Second), EndReason: "closed"})
	arch.close(5 * time.Second)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var node string
	if err := db.QueryRow(`SELECT node FROM interactions WHERE id = 'written-here'`).Scan(&node); err != nil || node != "node-7" {
		t.Errorf("archived under node %q (%v), want node-7", node, err)
	}
}
