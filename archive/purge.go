package archive

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/recstore"
)

// Retention is how long each content type is kept; 0 keeps it forever.
type Retention struct {
	Interactions, Recordings, ParticipantData, Traces time.Duration
}

// PurgeOptions configure Purge.
type PurgeOptions struct {
	Retention Retention
	// Now is the purge's time (zero: time.Now()).
	Now time.Time
	// DryRun counts what would go and changes nothing.
	DryRun bool
	// RecordingsDir is where recordings live: a file outside it is never
	// deleted (a path in the database is not trusted to name any file).
	RecordingsDir string
	// Actor is who purges, for the audit row ("retention", "cli:<user>").
	Actor string
	// Batch is how many interactions one transaction handles (0: 500):
	// no long write lock, calls and the API go on between batches.
	Batch int
	// Exclusive, on PostgreSQL, runs the purge only if no other process
	// sharing the database is purging (a session advisory lock taken with
	// pg_try_advisory_lock): the nightly purge of several nodes runs on
	// one of them, the others get ErrPurgeBusy. No effect on SQLite, whose
	// database one node owns.
	Exclusive bool
}

// ErrPurgeBusy: an exclusive purge found another one running on the
// shared database.
var ErrPurgeBusy = errors.New("archive: another node is purging the shared archive")

// purgeLockKey is the advisory lock key of the purge on PostgreSQL (any
// fixed number; the migrations' lock uses goose's own).
const purgeLockKey int64 = 0x636c6f616b5047 // "cloakPG"

// purgeLock takes the purge's advisory lock on a connection of its own
// and returns its release, or ErrPurgeBusy. The lock is the session's:
// if the process dies, PostgreSQL drops it with the connection.
func (s *Store) purgeLock(ctx context.Context) (release func(), err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive: purge lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, purgeLockKey).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("archive: purge lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, ErrPurgeBusy
	}
	return func() {
		// A fresh context: a cancelled purge still unlocks. Should the
		// unlock fail, closing the connection drops the lock anyway.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, purgeLockKey); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// PurgeResult counts what a purge removed (or would remove).
type PurgeResult struct {
	Interactions    int `json:"interactions"`
	Recordings      int `json:"recordings"`
	ParticipantData int `json:"participant_data"`
	Traces          int `json:"traces"`
	// FilesKept are recording files not deleted: outside RecordingsDir,
	// or whose removal failed (the row is then left to try again).
	// Velocity are fraud velocity rows (tokens of screened payments)
	// older than the interactions' retention.
	Velocity  int  `json:"velocity"`
	FilesKept int  `json:"files_kept"`
	DryRun    bool `json:"dry_run"`
	// AuditHeadSeq is the audit chain's head after the purge's own row:
	// logged, it is a copy outside the database against which a deleted
	// tail of the log shows (VerifyChain).
	AuditHeadSeq int64 `json:"audit_head_seq,omitempty"`
}

// Purge removes what retention says has expired, by when interactions
// ended: recordings (WAV and sidecar deleted, the interaction marked),
// participant data, traces, and whole interactions with their data,
// segments, trace, recording (files too) and audit rows. Unless DryRun,
// the purge is audited as one row that counts and names no person.
func (s *Store) Purge(ctx context.Context, o PurgeOptions) (PurgeResult, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if err := s.ensure(ctx); err != nil {
		return PurgeResult{}, err
	}
	if o.Exclusive && s.engine == Postgres {
		release, err := s.purgeLock(ctx)
		if err != nil {
			return PurgeResult{DryRun: o.DryRun}, err
		}
		defer release()
	}
	res := PurgeResult{DryRun: o.DryRun}
	cutoff := func(d time.Duration) int64 { return o.Now.Add(-d).UnixMilli() }
	var err error
	if r := o.Retention.Recordings; r > 0 && err == nil {
		res.Recordings, res.FilesKept, err = s.purgeRecordings(ctx, o, cutoff(r))
	}
	if r := o.Retention.ParticipantData; r > 0 && err == nil {
		res.ParticipantData, err = s.purgeRows(ctx, o, "participant_data", cutoff(r))
	}
	if r := o.Retention.Traces; r > 0 && err == nil {
		res.Traces, err = s.purgeRows(ctx, o, "trace_steps", cutoff(r))
	}
	if r := o.Retention.Interactions; r > 0 && err == nil {
		var kept int
		res.Interactions, kept, err = s.purgeInteractions(ctx, o, cutoff(r))
		res.FilesKept += kept
	}
	if r := o.Retention.Interactions; r > 0 && err == nil {
		// Fraud velocity rows (tokens only) go with the interactions'
		// retention: one range delete on their time index.
		if o.DryRun {
			err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM fraud_velocity WHERE at < ?`), cutoff(r)).Scan(&res.Velocity)
		} else {
			var dr sql.Result
			if dr, err = s.db.ExecContext(ctx, s.q(`DELETE FROM fraud_velocity WHERE at < ?`), cutoff(r)); err == nil {
				n, _ := dr.RowsAffected()
				res.Velocity = int(n)
			}
		}
	}
	if err == nil && !o.DryRun && res.Interactions > 0 {
		_, err = s.trimAudit(ctx)
	}
	if err != nil {
		return res, fmt.Errorf("archive: purge: %w", err)
	}
	if !o.DryRun {
		detail := fmt.Sprintf("interactions=%d recordings=%d participant_data=%d traces=%d files_kept=%d velocity=%d",
			res.Interactions, res.Recordings, res.ParticipantData, res.Traces, res.FilesKept, res.Velocity)
		e, err := s.Audit(ctx, AuditEntry{At: o.Now, Actor: o.Actor, Action: ActionPurge, Detail: detail})
		if err != nil {
			return res, err
		}
		res.AuditHeadSeq = e.Seq
	}
	return res, nil
}

// expired returns up to n ids of interactions that ended before cutoff
// and match extra (a condition on interactions i), after the id after.
func (s *Store) expired(ctx context.Context, cutoff int64, extra, after string, n int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT i.id FROM interactions i WHERE i.ended_at < ? AND i.id > ? AND `+extra+
		` ORDER BY i.id LIMIT ?`), cutoff, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// purgeRows deletes table's rows of interactions ended before cutoff.
func (s *Store) purgeRows(ctx context.Context, o PurgeOptions, table string, cutoff int64) (int, error) {
	total, after := 0, ""
	for {
		ids, err := s.expired(ctx, cutoff, `EXISTS (SELECT 1 FROM `+table+` t WHERE t.interaction_id = i.id)`, after, o.Batch)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		after = ids[len(ids)-1]
		in := `interaction_id IN (` + placeholders(len(ids)) + `)`
		if o.DryRun {
			var n int
			if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+table+` WHERE `+in), anys(ids)...).Scan(&n); err != nil {
				return total, err
			}
			total += n
			continue
		}
		r, err := s.db.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE `+in), anys(ids)...)
		if err != nil {
			return total, err
		}
		n, _ := r.RowsAffected()
		total += int(n)
	}
}

// recordingFiles returns the WAV and sidecar paths of ids' recordings not
// yet deleted.
func (s *Store) recordingFiles(ctx context.Context, ids []string) (map[string][2]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT interaction_id, file, sidecar FROM recordings WHERE deleted_at = 0 AND interaction_id IN (`+
		placeholders(len(ids))+`)`), anys(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var id, wav, side string
		if err := rows.Scan(&id, &wav, &side); err != nil {
			return nil, err
		}
		out[id] = [2]string{wav, side}
	}
	return out, rows.Err()
}

// removeFiles deletes a recording's files from dir's store
// (recstore.Local: each must lie in dir, links resolved); false when a
// file is outside it or could not be removed. A file already gone
// counts as removed.
func removeFiles(dir string, files [2]string) bool {
	st := recstore.Local{Dir: dir}
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := st.Remove(context.Background(), f); err != nil && !errors.Is(err, recstore.ErrNotFound) {
			return false
		}
	}
	return true
}

// within reports whether path is dir or below it, both made absolute
// (recstore.Within).
func within(dir, path string) bool { return recstore.Within(dir, path) }

// purgeRecordings deletes expired recordings' files and marks them
// deleted by retention; the interactions stay.
func (s *Store) purgeRecordings(ctx context.Context, o PurgeOptions, cutoff int64) (deleted, kept int, err error) {
	after := ""
	for {
		ids, err := s.expired(ctx, cutoff, `EXISTS (SELECT 1 FROM recordings r WHERE r.interaction_id = i.id AND r.deleted_at = 0)`, after, o.Batch)
		if err != nil || len(ids) == 0 {
			return deleted, kept, err
		}
		after = ids[len(ids)-1]
		files, err := s.recordingFiles(ctx, ids)
		if err != nil {
			return deleted, kept, err
		}
		for id, f := range files {
			if o.DryRun {
				deleted++
				continue
			}
			if !removeFiles(o.RecordingsDir, f) {
				kept++
				continue
			}
			if _, err := s.db.ExecContext(ctx, s.q(`UPDATE recordings SET deleted_at = ?, deleted_by = ? WHERE interaction_id = ?`),
				o.Now.UnixMilli(), "retention", id); err != nil {
				return deleted, kept, err
			}
			deleted++
		}
	}
}

// purgeInteractions deletes expired interactions whole: their recording
// files, then in one transaction per batch their rows (the other tables
// follow by ON DELETE CASCADE) and audit rows. An interaction whose
// recording files could not be removed stays, to be tried again.
func (s *Store) purgeInteractions(ctx context.Context, o PurgeOptions, cutoff int64) (deleted, kept int, err error) {
	after := ""
	for {
		ids, err := s.expired(ctx, cutoff, `1 = 1`, after, o.Batch)
		if err != nil || len(ids) == 0 {
			return deleted, kept, err
		}
		after = ids[len(ids)-1]
		if o.DryRun {
			deleted += len(ids)
			continue
		}
		files, err := s.recordingFiles(ctx, ids)
		if err != nil {
			return deleted, kept, err
		}
		var gone []string
		for _, id := range ids {
			if f, ok := files[id]; ok && !removeFiles(o.RecordingsDir, f) {
				kept++
				continue
			}
			gone = append(gone, id)
		}
		if len(gone) == 0 {
			continue
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return deleted, kept, err
		}
		in := `(` + placeholders(len(gone)) + `)`
		// Rows from before the chain go; chained rows are blanked to
		// signed links so the chain still verifies (trimAudit drops them
		// once nothing kept comes before them).
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM audit_log WHERE seq IS NULL AND interaction_id IN `+in), anys(gone)...)
		if err == nil {
			err = s.redactAudit(ctx, tx, in, gone)
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, s.q(`DELETE FROM interactions WHERE id IN `+in), anys(gone)...)
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return deleted, kept, err
		}
		deleted += len(gone)
	}
}

// redactAudit blanks the chained audit rows of the interactions in ids
// (in is their placeholder list), each with a signed redaction.
func (s *Store) redactAudit(ctx context.Context, tx *sql.Tx, in string, ids []string) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, seq, mac FROM audit_log WHERE seq IS NOT NULL AND interaction_id IN `+in), anys(ids)...)
	if err != nil {
		return err
	}
	type link struct {
		id, seq int64
		mac     string
	}
	var links []link
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.id, &l.seq, &l.mac); err != nil {
			rows.Close()
			return err
		}
		links = append(links, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range links {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_log SET actor = '', action = '', interaction_id = '', address = '', detail = '',
 redacted = ? WHERE id = ?`), redactMAC(s.key, l.seq, l.mac), l.id); err != nil {
			return err
		}
	}
	return nil
}

// trimAudit deletes the chain's leading run of redacted rows and moves
// the chain's signed start past them (a checkpoint: the first kept seq and
// the chain value before it), so what is left still verifies. It returns
// how many rows went.
func (s *Store) trimAudit(ctx context.Context) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Lock the chain first, as Audit does.
	var headSeq, firstSeq int64
	var headChain string
	if err := tx.QueryRowContext(ctx, `UPDATE audit_chain SET head_seq = head_seq WHERE id = 1 RETURNING head_seq, head_chain, first_seq`).
		Scan(&headSeq, &headChain, &firstSeq); err != nil {
		return 0, err
	}
	var kept sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM audit_log WHERE seq IS NOT NULL AND redacted = ''`).Scan(&kept); err != nil {
		return 0, err
	}
	first := headSeq + 1 // every chained row is redacted
	if kept.Valid {
		first = kept.Int64
	}
	if first <= firstSeq {
		return 0, nil
	}
	prev := headChain
	if first <= headSeq {
		if err := tx.QueryRowContext(ctx, s.q(`SELECT chain FROM audit_log WHERE seq = ?`), first-1).Scan(&prev); err != nil {
			return 0, err
		}
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM audit_log WHERE seq IS NOT NULL AND seq < ? AND redacted <> ''`), first)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_chain SET first_seq = ?, first_prev = ?, first_mac = ? WHERE id = 1`),
		first, prev, startMAC(s.key, first, prev)); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// ErrNoRecording: the interaction has no recording, or it was deleted.
var ErrNoRecording = errors.New("archive: no recording to delete")

// DeleteRecording deletes interaction id's recording (WAV and sidecar,
// which must lie under recordingsDir), marks it deleted by actor and
// audits the deletion; the interaction's general information stays.
func (s *Store) DeleteRecording(ctx context.Context, id, actor, address, recordingsDir string) error {
	files, err := s.recordingFiles(ctx, []string{id})
	if err != nil {
		return fmt.Errorf("archive: delete recording %s: %w", id, err)
	}
	f, ok := files[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoRecording, id)
	}
	if !removeFiles(recordingsDir, f) {
		return fmt.Errorf("archive: delete recording %s: its files are outside %s or could not be removed", id, recordingsDir)
	}
	now := time.Now()
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE recordings SET deleted_at = ?, deleted_by = ? WHERE interaction_id = ?`),
		now.UnixMilli(), actor, id); err != nil {
		return fmt.Errorf("archive: delete recording %s: %w", id, err)
	}
	_, err = s.Audit(ctx, AuditEntry{At: now, Actor: actor, Action: ActionDelete, Interaction: id, Address: address, Detail: "recording"})
	return err
}
