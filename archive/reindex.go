package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/recorder"
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
// already stored is never touched, so a forged sidecar cannot rewrite one.
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
		missing, err := s.missing(ctx, pending)
		for i := range missing {
			in := &missing[i]
			// Read again whole: the WAV's hash too, only for what is added.
			verr := ErrNoSidecarKey
			if len(o.SidecarKey) > 0 {
				_, verr = recorder.Verify(in.Recording.File, o.SidecarKey)
			}
			if verr != nil {
				in.Recording.Status = StatusUnverified
				in.EndReason = EndReasonReindexedUnverified
				res.Unverified++
				if o.OnUnverified != nil {
					o.OnUnverified(in.Recording.File, verr)
				}
			}
		}
		if err == nil && len(missing) > 0 {
			err = s.Insert(ctx, missing)
		}
		if err == nil {
			res.Added += len(missing)
		}
		pending = pending[:0]
		return err
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // a directory that vanished or cannot be read: go on
		}
		if d.IsDir() && d.Name() == recorder.QuarantineDir && filepath.Dir(path) == filepath.Clean(dir) {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".wav") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
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

// missing returns the interactions of batch whose id is not stored.
func (s *Store) missing(ctx context.Context, batch []Interaction) ([]Interaction, error) {
	ids := make([]string, len(batch))
	for i, in := range batch {
		ids[i] = in.ID
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM interactions WHERE id IN (`+placeholders(len(ids))+`)`), anys(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Interaction
	seen := map[string]bool{}
	for _, in := range batch {
		if !have[in.ID] && !seen[in.ID] {
			seen[in.ID] = true
			out = append(out, in)
		}
	}
	return out, nil
}
