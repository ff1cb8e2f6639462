package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Anonymised replaces what an anonymisation removes.
const Anonymised = "anonymised"

// AnonymiseOptions say whom to forget.
type AnonymiseOptions struct {
	// Number is the person's phone number, matched exactly against the
	// caller and called numbers.
	Number string
	// Data are KEY=VALUE participant data of the person (an email, a
	// customer id), matched exactly (through the token when masked).
	Data map[string]string
	// DeleteRecordings deletes their recordings too (under RecordingsDir).
	DeleteRecordings bool
	RecordingsDir    string
	// Actor and Address are audited (the number and values are not).
	Actor, Address string
}

// Anonymise makes a person unfindable: every interaction with Number as
// caller or called number loses it, and every participant-data row
// matching Data becomes "anonymised" (its token gone), so no search by
// the number or the values finds them again. Recordings stay unless
// DeleteRecordings. Each changed interaction gets an audit row that
// names what kind of thing was removed, never the number or value. It
// returns the ids of the interactions changed.
func (s *Store) Anonymise(ctx context.Context, o AnonymiseOptions) ([]string, error) {
	if o.Number == "" && len(o.Data) == 0 {
		return nil, fmt.Errorf("archive: anonymise: no number and no data given")
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	what := map[string][]string{} // interaction → what was removed
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("archive: anonymise: %w", err)
	}
	defer tx.Rollback()
	collect := func(kind, query string, args ...any) error {
		rows, err := tx.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			what[id] = append(what[id], kind)
		}
		return rows.Err()
	}
	if o.Number != "" {
		// The caller's asserted identity (P-Asserted-Identity) is the same
		// person's: it goes with the caller number, and a number matched
		// as the asserted identity takes the caller's display name along.
		for _, c := range []struct{ col, set string }{
			{"caller", `caller = ?, caller_name = '', asserted_name = '', asserted_id = CASE WHEN asserted_id = '' THEN '' ELSE 'anonymised' END`},
			{"called", `called = ?, caller_name = ''`},
			{"asserted_id", `asserted_id = ?, asserted_name = '', caller_name = ''`},
		} {
			if err := collect(c.col, `SELECT id FROM interactions WHERE `+c.col+` = ?`, o.Number); err != nil {
				return nil, fmt.Errorf("archive: anonymise: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE interactions SET `+c.set+` WHERE `+c.col+` = ?`), Anonymised, o.Number); err != nil {
				return nil, fmt.Errorf("archive: anonymise: %w", err)
			}
		}
	}
	keys := make([]string, 0, len(o.Data))
	for k := range o.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := o.Data[k]
		match := `key = ? AND (token = ? OR (policy = ? AND value = ?))`
		args := []any{k, Token(s.key, k, v), Keep, v}
		if err := collect("data:"+k, `SELECT interaction_id FROM participant_data WHERE `+match, args...); err != nil {
			return nil, fmt.Errorf("archive: anonymise: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE participant_data SET value = ?, token = '' WHERE `+match), append([]any{Anonymised}, args...)...); err != nil {
			return nil, fmt.Errorf("archive: anonymise: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("archive: anonymise: %w", err)
	}
	ids := make([]string, 0, len(what))
	for id := range what {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		detail := strings.Join(what[id], ",")
		if o.DeleteRecordings {
			err := s.DeleteRecording(ctx, id, o.Actor, o.Address, o.RecordingsDir)
			switch {
			case err == nil:
				detail += ",recording"
			case !errors.Is(err, ErrNoRecording):
				return ids, err
			}
		}
		if _, err := s.Audit(ctx, AuditEntry{Actor: o.Actor, Action: ActionAnonymise, Interaction: id, Address: o.Address, Detail: detail}); err != nil {
			return ids, err
		}
	}
	return ids, nil
}
