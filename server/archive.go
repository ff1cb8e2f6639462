package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
	"github.com/rs/zerolog"
)

// nodeArchive is the node's archive: the store and its writer, or
// nothing when archive.enabled is false.
type nodeArchive struct {
	store  *archive.Store
	writer *archive.Writer
	log    zerolog.Logger

	usersOnly *archive.Store // the database opened for users alone (archive off)
	// users is the user store once the API opened it (userStore), for
	// the call layer's dial-in checks, which may run meanwhile.
	users     atomic.Pointer[archive.Store]
	adminDone chan struct{} // closed once the initial admin check is over

	stopPurge context.CancelFunc // ends the nightly purge
	purgeDone chan struct{}      // closed when it has ended

	// fraudChanged, set by fraudSetup, has the node reload its fraud
	// data and rules at once (a change through this node's API).
	fraudChanged func()
}

// archiveSetup opens the archive (migrating it) and starts its writer.
func archiveSetup(ctx context.Context, cfg config.Config, log zerolog.Logger) (*nodeArchive, error) {
	a := &nodeArchive{log: log}
	if !cfg.Archive.Enabled {
		log.Info().Msg("archive disabled (archive.enabled false): finished calls are not archived")
		return a, nil
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, true)
	if err != nil {
		return nil, fmt.Errorf("archive.key_file: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := archive.Open(octx, o)
	switch {
	case err != nil && config.ArchiveEngine(o.DSN) == archive.Postgres:
		// A shared database that is down must not keep the node from
		// taking calls: the writer queues and connects when it can.
		log.Error().Err(err).Str("db", archive.Describe(o.DSN)).
			Msg("archive database unavailable at start: calls go on, finished calls wait in the archive queue")
		if store, err = archive.OpenDeferred(o); err != nil {
			return nil, fmt.Errorf("archive.dsn (%s): %w", archive.Describe(o.DSN), err)
		}
	case err != nil:
		return nil, fmt.Errorf("archive.dsn (%s): %w", archive.Describe(o.DSN), err)
	}
	a.store = store
	a.writer = archive.NewWriter(store, archive.WriterOptions{Queue: cfg.Archive.Queue, Batch: cfg.Archive.Batch, Node: nodeName(cfg), Log: log})
	log.Info().Str("db", archive.Describe(o.DSN)).Str("engine", store.Engine()).Msg("archive ready")
	return a, nil
}

// nodeName is what the archive's node column holds for this node's
// calls: cluster.node_id (or its default) when clustered, so a
// survivor's node-lost rows and the node's own name it alike; the host
// name on a single node.
func nodeName(cfg config.Config) string {
	if cfg.Cluster.Enabled {
		if cfg.Cluster.NodeID != "" {
			return cfg.Cluster.NodeID
		}
		return defaultNodeID(cfg)
	}
	host, _ := os.Hostname()
	return host
}

// nextPurge is the next time of day at (HH:MM, validated) after now, in
// now's location: today's if it is still ahead, else tomorrow's.
func nextPurge(now time.Time, at string) time.Time {
	hm, _ := time.Parse("15:04", at)
	next := time.Date(now.Year(), now.Month(), now.Day(), hm.Hour(), hm.Minute(), 0, 0, now.Location())
	if !next.After(now) {
		next = time.Date(now.Year(), now.Month(), now.Day()+1, hm.Hour(), hm.Minute(), 0, 0, now.Location())
	}
	return next
}

// startPurge indexes the recordings the archive lacks, then runs the
// retention purge every night at archive.purge_at (local time), until
// close. Run it after the node joined the cluster: joining archives an
// earlier run's calls as node-lost (when no survivor did yet), and the
// reindex then links their recovered recordings to them. Nothing without
// the archive.
func (a *nodeArchive) startPurge(ctx context.Context, cfg config.Config) {
	if a.store == nil {
		return
	}
	var ret archive.Retention
	r := cfg.Archive.Retention
	ret.Interactions, _ = config.ParseRetention(r.Interactions) // validated
	ret.Recordings, _ = config.ParseRetention(r.Recordings)
	ret.ParticipantData, _ = config.ParseRetention(r.ParticipantData)
	ret.Traces, _ = config.ParseRetention(r.Traces)
	recDir := cfg.Recording.Dir
	if recDir == "" {
		recDir = filepath.Join(cfg.Data.Dir, "recordings")
	}
	ctx, a.stopPurge = context.WithCancel(ctx)
	a.purgeDone = make(chan struct{})
	started := time.Now()
	go func() {
		defer close(a.purgeDone)
		// Recordings of calls the archive lacks (the database was down
		// when they ended and the process then stopped, or a full queue
		// dropped them) are indexed from their sidecars first.
		// Each sidecar is verified under the recording key: one that fails
		// is indexed marked unverified and logged.
		keyFile := cfg.Recording.KeyFile
		if keyFile == "" {
			keyFile = filepath.Join(cfg.Data.Dir, "recording.key")
		}
		key, kerr := archive.ReadSidecarKey(keyFile)
		if kerr != nil {
			a.log.Error().Err(kerr).Msg("archive reindex: no recording key, sidecars cannot be verified")
		}
		ro := archive.ReindexOptions{Before: started, SidecarKey: key, Node: nodeName(cfg), OnUnverified: func(wav string, err error) {
			a.log.Warn().Str("wav", wav).Err(err).Msg("archive reindex: sidecar signature does not verify; indexed as unverified")
		}}
		if cfg.Cluster.Enabled {
			// A survivor archived this node's calls node-lost, without
			// their recordings (recovered above if a crash cut them).
			ro.Link = []string{cluster.EndReason}
		}
		if res, err := a.store.Reindex(ctx, recDir, ro); err != nil {
			a.log.Error().Err(err).Msg("archive reindex at start failed (cloak archive reindex tries again)")
		} else if res.Added > 0 || res.Unreadable > 0 || res.Linked > 0 {
			a.log.Warn().Int("added", res.Added).Int("unverified", res.Unverified).Int("unreadable", res.Unreadable).
				Int("linked_node_lost", res.Linked).Int("linked_unverified", res.LinkedUnverified).
				Int("recordings", res.Recordings).Msg("archive reindexed recordings it lacked")
		}
		for {
			t := time.NewTimer(time.Until(nextPurge(time.Now(), cfg.Archive.PurgeAt)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			// Exclusive: of several nodes sharing PostgreSQL, one purges.
			res, err := a.store.Purge(ctx, archive.PurgeOptions{Retention: ret, RecordingsDir: recDir, Actor: "retention", Exclusive: true})
			if errors.Is(err, archive.ErrPurgeBusy) {
				a.log.Info().Msg("nightly archive purge left to the node already running it on the shared database")
				continue
			}
			if err != nil {
				a.log.Error().Err(err).Msg("nightly archive purge failed (next night tries again)")
				continue
			}
			a.log.Info().Int("interactions", res.Interactions).Int("recordings", res.Recordings).Int("participant_data", res.ParticipantData).
				Int("traces", res.Traces).Int("files_kept", res.FilesKept).Int64("audit_head_seq", res.AuditHeadSeq).Msg("nightly archive purge")
		}
	}()
}

// onEnded is call.Config.OnEnded: nil when the archive is off.
func (a *nodeArchive) onEnded() func(call.Summary) {
	if a.writer == nil {
		return nil
	}
	return a.writer.Submit
}

// close writes what is queued (for at most grace) and closes the
// database; run it after the calls have drained.
func (a *nodeArchive) close(grace time.Duration) {
	if a.adminDone != nil {
		<-a.adminDone
	}
	a.users.Store(nil) // dial-ins from now on find no user
	if a.usersOnly != nil {
		_ = a.usersOnly.Close()
	}
	if a.writer == nil {
		return
	}
	if a.stopPurge != nil {
		a.stopPurge()
		<-a.purgeDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := a.writer.Close(ctx); err != nil {
		a.log.Error().Err(err).Msg("archive closed")
	}
	st := a.writer.Stats()
	a.log.Info().Uint64("written", st.Written).Uint64("dropped", st.Dropped).Uint64("rejected", st.Rejected).Msg("archive writer stopped")
	_ = a.store.Close()
}

// addStats adds the writer's counters to the API's /api/stats.
func (a *nodeArchive) addStats(out map[string]any) map[string]any {
	if a.writer == nil {
		return out
	}
	st := a.writer.Stats()
	out["archive_queue_depth"], out["archive_written"], out["archive_dropped"] = st.Depth, st.Written, st.Dropped
	out["archive_rejected"], out["archive_failures"] = st.Rejected, st.Failures
	return out
}
