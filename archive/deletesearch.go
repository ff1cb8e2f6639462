package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Errors of DeleteRecordings.
var (
	// ErrEmptySearch: no filter was given; deleting every recording is the
	// retention purge's work, not a search's.
	ErrEmptySearch = errors.New("archive: a search with no filter selects every recording; give at least one filter")
	// ErrConfirm: the number to confirm is not the number of recordings
	// the search selects now.
	ErrConfirm = errors.New("archive: the confirmed count is not the search's")
	// ErrTooMany: the search selects more than MaxDeleteSearch recordings.
	ErrTooMany = errors.New("archive: the search selects too many recordings")
)

// MaxDeleteSearch is the most recordings one DeleteRecordings deletes.
const MaxDeleteSearch = 200_000

// DeleteSearchOptions configure DeleteRecordings.
type DeleteSearchOptions struct {
	// Query selects the interactions (Limit and Offset are ignored; only
	// those whose recording is still kept count).
	Query Query
	// DryRun counts and deletes nothing.
	DryRun bool
	// Confirm must equal the number of recordings the search selects when
	// the deletion starts (what a dry run said), else ErrConfirm and
	// nothing is deleted.
	Confirm int
	// RecordingsDir: a recording is deleted only when its files lie in it.
	RecordingsDir string
	// Actor and Address are who asked, for the audit.
	Actor, Address string
	// Batch is how many recordings one transaction marks (0: 500).
	Batch int
}

// DeleteSearchResult is what DeleteRecordings did.
type DeleteSearchResult struct {
	DryRun bool `json:"dry_run"`
	// Matched is how many recordings the search selected.
	Matched int `json:"matched"`
	// Deleted is how many were deleted.
	Deleted int `json:"deleted"`
	// Failed are the interactions whose recording was not deleted (its
	// files outside the recordings directory, or not removable).
	Failed []string `json:"failed"`
}

// filterNames names the query's filters (never their values, which may
// name a person) for the audit's summary row.
func (q Query) filterNames() []string {
	var n []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"caller", q.Caller != ""}, {"from", !q.From.IsZero()}, {"to", !q.To.IsZero()}, {"queue", q.Queue != ""},
		{"agent", q.Agent != ""}, {"route", q.Route != ""}} {
		if f.set {
			n = append(n, f.name)
		}
	}
	keys := make([]string, 0, len(q.Data))
	for k := range q.Data {
		keys = append(keys, "data:"+k)
	}
	sort.Strings(keys)
	return append(n, keys...)
}

// DeleteRecordings deletes the recordings (WAV and sidecar) of every
// interaction the query selects, keeping their general information, in
// batches: each batch's files are removed, then one statement marks them
// deleted by Actor, then each is audited as DeleteRecording audits one.
// A last audit row summarises the run (counts and the filters' names,
// never their values). The selection is taken once, so calls archived
// meanwhile are not touched and Confirm is checked against it.
func (s *Store) DeleteRecordings(ctx context.Context, o DeleteSearchOptions) (DeleteSearchResult, error) {
	res := DeleteSearchResult{DryRun: o.DryRun, Failed: []string{}}
	names := o.Query.filterNames()
	if len(names) == 0 {
		return res, ErrEmptySearch
	}
	q := o.Query
	q.Recorded, q.Limit, q.Offset = true, 0, 0
	cond, args := s.where(q)
	ids, err := queryAll(ctx, s, "delete recordings: search", `SELECT id FROM interactions`+cond+
		` ORDER BY offered_at DESC, id DESC LIMIT ?`, append(args, MaxDeleteSearch+1), func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return res, err
	}
	if len(ids) > MaxDeleteSearch {
		return res, fmt.Errorf("%w: more than %d; narrow it (from/to)", ErrTooMany, MaxDeleteSearch)
	}
	res.Matched = len(ids)
	if o.DryRun {
		return res, nil
	}
	if o.Confirm != len(ids) {
		return res, fmt.Errorf("%w: it selects %d recording(s) now, %d confirmed", ErrConfirm, len(ids), o.Confirm)
	}
	batch := o.Batch
	if batch <= 0 {
		batch = 500
	}
	for start := 0; start < len(ids); start += batch {
		if err := ctx.Err(); err != nil {
			return res, s.deleteSummary(o, names, res, err)
		}
		part := ids[start:min(start+batch, len(ids))]
		files, err := s.recordingFiles(ctx, part)
		if err != nil {
			return res, s.deleteSummary(o, names, res, fmt.Errorf("archive: delete recordings: %w", err))
		}
		var gone []string
		for _, id := range part {
			f, ok := files[id]
			if !ok {
				continue // deleted meanwhile (retention, another user)
			}
			if !removeFiles(o.RecordingsDir, f) {
				res.Failed = append(res.Failed, id)
				continue
			}
			gone = append(gone, id)
		}
		if len(gone) == 0 {
			continue
		}
		now := time.Now()
		if _, err := s.db.ExecContext(ctx, s.q(`UPDATE recordings SET deleted_at = ?, deleted_by = ? WHERE deleted_at = 0 AND interaction_id IN (`+
			placeholders(len(gone))+`)`), append([]any{now.UnixMilli(), o.Actor}, anys(gone)...)...); err != nil {
			return res, s.deleteSummary(o, names, res, fmt.Errorf("archive: delete recordings: %w", err))
		}
		for _, id := range gone {
			if _, err := s.Audit(ctx, AuditEntry{At: now, Actor: o.Actor, Action: ActionDelete, Interaction: id, Address: o.Address, Detail: "recording (search)"}); err != nil {
				return res, s.deleteSummary(o, names, res, err)
			}
			res.Deleted++
		}
	}
	return res, s.deleteSummary(o, names, res, nil)
}

// deleteSummary writes DeleteRecordings' summary audit row, also when the
// run stopped early (then saying why), and returns runErr, or the audit's
// own error.
func (s *Store) deleteSummary(o DeleteSearchOptions, names []string, res DeleteSearchResult, runErr error) error {
	detail := fmt.Sprintf("recordings of a search (%s): %d matched, %d deleted, %d failed",
		strings.Join(names, ", "), res.Matched, res.Deleted, len(res.Failed))
	if runErr != nil {
		detail += ", stopped early"
	}
	// A cancelled request still leaves its summary.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Audit(ctx, AuditEntry{Actor: o.Actor, Action: ActionDelete, Address: o.Address, Detail: detail}); err != nil && runErr == nil {
		return err
	}
	return runErr
}
