package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/recstore"
)

// ReindexResult counts what Reindex found.
type ReindexResult struct {
	// Recordings are the finished recordings (WAV with a sidecar) seen.
	Recordings int `json:"recordings"`
	// Added are the interactions the archive lacked, now added.
	Added int `json:"added"`
	// Unverified of those added have a sidecar whose signature did not
	// verify (forged, edited, unsigned, audio changed, or no key): added
	// with recording status StatusUnverified, reported one by one to
	// ReindexOptions.OnUnverified.
	Unverified int `json:"unverified"`
	// Unreadable are WAVs whose sidecar is missing or not JSON (left to
	// cloak recording verify).
	Unreadable int `json:"unreadable"`
	// Linked are recordings linked to an interaction already stored
	// without one, under an end reason of ReindexOptions.Link (a lost
	// cluster node's call); of those, LinkedUnverified did not verify.
	Linked           int `json:"linked"`
	LinkedUnverified int `json:"linked_unverified"`
}

// EndReasonReindexed marks an interaction rebuilt from its recording's
// sidecar: only what the sidecar says is known (id, times, recording).
const EndReasonReindexed = "reindexed from the recording"

// EndReasonReindexedUnverified marks one rebuilt from a sidecar whose
// signature did not verify: what it says (id, times) may be forged.
const EndReasonReindexedUnverified = "reindexed from the recording; its sidecar did NOT verify"

// StatusUnverified is a recording's status when it was indexed from a
// sidecar whose signature did not verify.
const StatusUnverified = "unverified"

// ErrNoSidecarKey: Reindex was given no recording key, so no sidecar
// could be verified.
var ErrNoSidecarKey = errors.New("archive: no recording key to verify the sidecar with")

// ReadSidecarKey reads the recording key (recording.key_file) as serve
// does: the file's content, surrounding white space trimmed, at least 16
// bytes.
func ReadSidecarKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < 16 {
		return nil, fmt.Errorf("recording key: %s holds %d bytes, want at least 16", path, len(b))
	}
	return b, nil
}

// ReindexOptions configure Reindex.
type ReindexOptions struct {
	// Before: only recordings that ended before it are considered, so a
	// call finishing now, whose summary is on its way, is not pre-empted
	// by a thinner row.
	Before time.Time
	// SidecarKey is the recording key (recording.key_file) that signs
	// sidecars. Without it no sidecar verifies.
	SidecarKey []byte
	// OnUnverified, when set, is told of each recording added unverified
	// and why (the error wraps recorder.ErrWrongKey, ErrUnsigned, …; it
	// names the file, no content).
	OnUnverified func(wav string, err error)
	// Link lists end reasons under which an interaction stored without a
	// recording gets the recording of its id linked, verified as one to
	// be added is (status StatusUnverified when it fails). For
	// cluster.EndReason ("node-lost"): a survivor archives a lost node's
	// calls knowing nothing of their recordings, which the node recovers
	// when it returns (docs/SCALE.md). Nothing else of the interaction
	// changes.
	Link []string
	// Node is the node column of the interactions added (the archive
	// writer's WriterOptions.Node); empty leaves it empty.
	Node string
}

// Reindex adds to the archive an interaction for each finished recording
// under dir (the quarantine excepted) whose interaction it lacks — calls
// that ended while the database was down and the process then stopped,
// or that a full queue dropped.
//
// Each recording to be added is first checked as `cloak recording
// verify` does (audio hash, digests, HMAC under o.SidecarKey). One that
// fails is still added — its file exists, and only an indexed recording
// is ever deleted by retention, so skipping it would keep its audio for
// ever — but marked: recording status StatusUnverified, end reason
// EndReasonReindexedUnverified, counted and reported. An interaction
// already stored is never rewritten, so a forged sidecar cannot change
// one; the only addition is a recording linked to one stored under an end
// reason of o.Link that has none, checked the same way.
func (s *Store) Reindex(ctx context.Context, dir string, o ReindexOptions) (ReindexResult, error) {
	var res ReindexResult
	before := o.Before
	if err := s.ensure(ctx); err != nil {
		return res, err
	}
	var pending []Interaction
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		missing, link, err := s.split(ctx, pending, o.Link)
		// Read again whole: the WAV's hash too, only for what is added
		// or linked.
		verify := func(in *Interaction) bool {
			verr := ErrNoSidecarKey
			if len(o.SidecarKey) > 0 {
				_, verr = recorder.Verify(in.Recording.File, o.SidecarKey)
			}
			if verr == nil {
				return true
			}
			in.Recording.Status = StatusUnverified
			if o.OnUnverified != nil {
				o.OnUnverified(in.Recording.File, verr)
			}
			return false
		}
		for i := range missing {
			in := &missing[i]
			in.Node = o.Node
			if !verify(in) {
				in.EndReason = EndReasonReindexedUnverified
				res.Unverified++
			}
		}
		for i := range link {
			if !verify(&link[i]) {
				res.LinkedUnverified++
			}
		}
		if err == nil && len(missing) > 0 {
			err = s.Insert(ctx, missing)
		}
		if err == nil {
			res.Added += len(missing)
		}
		if err == nil && len(link) > 0 {
			var n int
			n, err = s.linkRecordings(ctx, link)
			res.Linked += n
		}
		pending = pending[:0]
		return err
	}
	// The walk goes through the recordings' store (package recstore);
	// the sidecar is read beside the WAV, as the local store keeps it.
	store := recstore.Local{Dir: dir, Skip: []string{recorder.QuarantineDir}}
	err := store.Walk(ctx, func(path string) error {
		if name := filepath.Base(path); !strings.HasSuffix(name, ".wav") || strings.HasPrefix(name, ".") {
			return nil
		}
		sc, err := recorder.ReadSidecar(path)
		if err != nil || sc.CallID == "" {
			res.Unreadable++
			return nil
		}
		res.Recordings++
		if !sc.End.Before(before) {
			return nil
		}
		markers, _ := json.Marshal(sc.Markers)
		pending = append(pending, Interaction{
			ID: sc.CallID, Offered: sc.Start.UTC(), Answered: sc.Start.UTC(), Ended: sc.End.UTC(),
			Talk: sc.End.Sub(sc.Start), EndReason: EndReasonReindexed, Consent: "not_asked",
			Recording: &Recording{File: absPath(path), Sidecar: absPath(strings.TrimSuffix(path, ".wav") + ".json"), SHA256: sc.SHA256,
				Duration: msDuration(sc.DurationMS), Markers: markers, Status: sc.Status},
		})
		if len(pending) >= 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("archive: reindex %s: %w", dir, err)
	}
	return res, nil
}

// split returns the interactions of batch whose id is not stored
// (missing, each id once) and those stored under one of linkReasons
// without a recording row (link; deleted recordings keep their row).
func (s *Store) split(ctx context.Context, batch []Interaction, linkReasons []string) (missing, link []Interaction, err error) {
	ids := make([]string, len(batch))
	for i, in := range batch {
		ids[i] = in.ID
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT i.id, i.end_reason, EXISTS (SELECT 1 FROM recordings r WHERE r.interaction_id = i.id)
FROM interactions i WHERE i.id IN (`+placeholders(len(ids))+`)`), anys(ids)...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type row struct {
		reason string
		hasRec bool
	}
	have := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.reason, &r.hasRec); err != nil {
			return nil, nil, err
		}
		have[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, in := range batch {
		if seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		r, ok := have[in.ID]
		switch {
		case !ok:
			missing = append(missing, in)
		case !r.hasRec && slices.Contains(linkReasons, r.reason):
			link = append(link, in)
		}
	}
	return missing, link, nil
}

// linkRecordings inserts the recordings rows of batch's interactions (each
// with its Recording), one transaction; a row another node linked
// meanwhile is left as it is. It returns how many it inserted.
func (s *Store) linkRecordings(ctx context.Context, batch []Interaction) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("archive: begin: %w", err)
	}
	defer tx.Rollback()
	n := 0
	for _, in := range batch {
		r := in.Recording
		markers := string(r.Markers)
		if markers == "" || markers == "null" {
			markers = "[]"
		}
		res, err := tx.ExecContext(ctx, s.q(insRecording+`(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (interaction_id) DO NOTHING`),
			in.ID, r.File, r.Sidecar, r.SHA256, r.Duration.Milliseconds(), markers, r.Status)
		if err != nil {
			return 0, fmt.Errorf("archive: link recording: %w", err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("archive: commit: %w", err)
	}
	return n, nil
}
