package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cloak-voip/cloak/fraud"
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
// the number or the values finds them again. In those interactions the
// number and the values are also replaced where a kept value sits
// elsewhere: a secure segment's outputs (an output under one of Data's
// keys, or holding a value) and the flow trace's details. Recordings stay unless
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
	// The person's fraud velocity rows (by the number as given, so give
	// it in E.164 as screening normalises it, and by customer id), and the
	// arrivals of their calls.
	for label, v := range map[string]string{velocityCaller: o.Number, velocityArrival: o.Number, velocityCustomer: o.Data[fraud.KeyCustomerID]} {
		col := map[string]string{velocityCaller: "caller_token", velocityArrival: "caller_token", velocityCustomer: "customer_token"}[label]
		if v == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM fraud_velocity WHERE `+col+` = ?`), s.velocityToken(label, v)); err != nil {
			return nil, fmt.Errorf("archive: anonymise: %w", err)
		}
	}
	ids := make([]string, 0, len(what))
	for id := range what {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if err := s.anonymiseDetails(ctx, tx, ids, o, what); err != nil {
		return nil, fmt.Errorf("archive: anonymise: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("archive: anonymise: %w", err)
	}
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

// minReplace is the shortest value replaced inside free text (trace
// details, other outputs): a shorter one would mangle unrelated words.
// An output under the value's own key is replaced whatever its length.
const minReplace = 4

// anonymiseDetails replaces, in the interactions ids, the number and the
// data values where they sit as text: secure-segment outputs and trace
// details. what gets "segment_outputs" and "trace" for those changed.
func (s *Store) anonymiseDetails(ctx context.Context, tx *sql.Tx, ids []string, o AnonymiseOptions, what map[string][]string) error {
	var pairs []string
	for _, v := range longestFirst(append([]string{o.Number}, mapValues(o.Data)...)) {
		if len(v) >= minReplace {
			pairs = append(pairs, v, Anonymised)
		}
	}
	text := strings.NewReplacer(pairs...)
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		in := `(` + placeholders(len(chunk)) + `)`
		// Trace details.
		type row struct {
			id   string
			seq  int
			text string
		}
		read := func(query string) ([]row, error) {
			rows, err := tx.QueryContext(ctx, s.q(query+in), anys(chunk)...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.seq, &r.text); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rows.Err()
		}
		steps, err := read(`SELECT interaction_id, seq, detail FROM trace_steps WHERE interaction_id IN `)
		if err != nil {
			return err
		}
		changed := map[string]bool{}
		for _, r := range steps {
			d := text.Replace(r.text)
			if d == r.text {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE trace_steps SET detail = ? WHERE interaction_id = ? AND seq = ?`), d, r.id, r.seq); err != nil {
				return err
			}
			if !changed[r.id] {
				changed[r.id] = true
				what[r.id] = append(what[r.id], "trace")
			}
		}
		segs, err := read(`SELECT interaction_id, seq, outputs FROM secure_segments WHERE interaction_id IN `)
		if err != nil {
			return err
		}
		changed = map[string]bool{}
		for _, r := range segs {
			var outs map[string]string
			if err := json.Unmarshal([]byte(r.text), &outs); err != nil {
				return fmt.Errorf("segment %s/%d outputs: %w", r.id, r.seq, err)
			}
			dirty := false
			for k, v := range outs {
				nv := text.Replace(v)
				if dv, ok := o.Data[k]; ok && v == dv {
					nv = Anonymised
				}
				if nv != v {
					outs[k], dirty = nv, true
				}
			}
			if !dirty {
				continue
			}
			b, _ := json.Marshal(outs)
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE secure_segments SET outputs = ? WHERE interaction_id = ? AND seq = ?`), string(b), r.id, r.seq); err != nil {
				return err
			}
			if !changed[r.id] {
				changed[r.id] = true
				what[r.id] = append(what[r.id], "segment_outputs")
			}
		}
	}
	return nil
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// longestFirst sorts vs longest first, so a value inside another is
// replaced only where the longer one is not.
func longestFirst(vs []string) []string {
	sort.SliceStable(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	return vs
}
