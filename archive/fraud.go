package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// Fraud data and holds live in the archive's database (migration 00003)
// so every node and the CLI beside serve share them, on SQLite and
// PostgreSQL alike; the fraud package stays pure and knows only its
// fraud.Store interface, which Store implements here.

// Hold codes, statuses and note kinds (docs/FRAUD.md, "Holds").
const (
	HoldAuto   = "fraud-auto"   // a screened payment scored at or above the minimum
	HoldManual = "fraud-manual" // an agent or supervisor held it

	HoldOpen     = "open"
	HoldReleased = "released" // captured at the gateway
	HoldRejected = "rejected" // voided at the gateway

	NoteCreate  = "create"
	NoteComment = "comment"
	NoteRelease = "release"
	NoteReject  = "reject"
)

// Audit actions of the fraud workbench and data.
const (
	ActionFraudRelease = "fraud_release"
	ActionFraudReject  = "fraud_reject"
	ActionFraudData    = "fraud_data"
)

// More sentinel errors.
var (
	// ErrNoHold: no hold has that id.
	ErrNoHold = errors.New("archive: no such hold")
	// ErrHoldDecided: the hold is no longer open.
	ErrHoldDecided = errors.New("archive: hold already decided")
	// ErrHold: a hold to create is malformed.
	ErrHold = errors.New("archive: bad hold")
)

// Hold is one held payment or interaction.
type Hold struct {
	ID               int64         `json:"id"`
	Interaction      string        `json:"interaction"`
	Code             string        `json:"code"`
	Status           string        `json:"status"`
	Score            int           `json:"score"`
	Minimum          int           `json:"minimum"`
	Matches          []fraud.Match `json:"matches"`
	GatewayReference string        `json:"gateway_reference,omitempty"`
	CreatedBy        string        `json:"created_by"`
	Created          time.Time     `json:"created"`
	DecidedBy        string        `json:"decided_by,omitempty"`
	Decided          time.Time     `json:"decided,omitzero"`
	Notes            []HoldNote    `json:"notes,omitempty"`
}

// HoldNote is one entry of a hold's thread.
type HoldNote struct {
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Kind   string    `json:"kind"`
	Text   string    `json:"text"`
}

var _ fraud.Store = (*Store)(nil)

// All implements fraud.Store: every entry, for a node's index, as fast as
// the database reads them — in table order (a sort by type and value
// would read each row through the unique index, one table probe a row)
// into a slice sized by a count first, and without AddedBy and Added,
// which screening never reads (List has them). With 1,000,000 entries
// this is most of a node's load (docs/FRAUD.md, "Performance").
func (s *Store) All(ctx context.Context) ([]fraud.Entry, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM fraud_entries`).Scan(&n); err != nil {
		return nil, fmt.Errorf("archive: fraud all: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT type, value, score, comment FROM fraud_entries`)
	if err != nil {
		return nil, fmt.Errorf("archive: fraud all: %w", err)
	}
	defer rows.Close()
	out := make([]fraud.Entry, 0, n+n/16) // rows added since the count fit too
	scores := make([]int, 0, n)           // one allocation for every score
	var typ string
	var score sql.NullInt64
	for rows.Next() {
		var e fraud.Entry
		if err := rows.Scan(&typ, &e.Value, &score, &e.Comment); err != nil {
			return nil, fmt.Errorf("archive: fraud all: %w", err)
		}
		e.Type = fraud.Type(typ)
		if score.Valid {
			if len(scores) == cap(scores) {
				scores = make([]int, 0, 1024)
			}
			scores = append(scores, int(score.Int64))
			e.Score = &scores[len(scores)-1]
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: fraud all: %w", err)
	}
	return out, nil
}

// addBatch is how many entries one INSERT of Add carries (6 parameters
// each: far below SQLite's 32,766 and PostgreSQL's 65,535).
const addBatch = 500

// Add implements fraud.Store: adds or replaces entries in one transaction
// (announced on FraudChannel on PostgreSQL), addBatch rows a statement —
// one round trip per 500 entries, not per entry: 1,000,000 entries went
// into PostgreSQL in 153 s one by one (docs/FRAUD.md, "Performance").
// Entries are refused (all of them) when a type is unknown, a value empty,
// or a value or comment holds a card number.
func (s *Store) Add(ctx context.Context, entries ...fraud.Entry) error {
	for _, e := range entries {
		if _, err := fraud.ParseType(string(e.Type)); err != nil || e.Value == "" {
			return fmt.Errorf("archive: fraud add %q: %w", e.Type, fraud.ErrType)
		}
		if fraud.HasPAN(e.Comment) || (fraud.HasPAN(e.Value) && e.Type != fraud.TypePhone) {
			return fmt.Errorf("archive: fraud add %s: %w", e.Type, fraud.ErrSecret)
		}
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: fraud add: %w", err)
	}
	defer tx.Rollback()
	// Later entries of the same type and value win, as one upsert after
	// another would; a statement may not upsert a row twice (PostgreSQL).
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.Key()] = i
	}
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	batch := make([]any, 0, 6*addBatch)
	flush := func() error {
		n := len(batch) / 6
		if n == 0 {
			return nil
		}
		st := stmts[n]
		if st == nil {
			rows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", n), ", ")
			if st, err = tx.PrepareContext(ctx, s.q(`INSERT INTO fraud_entries (type, value, score, comment, added_by, added_at)
 VALUES `+rows+`
 ON CONFLICT (type, value) DO UPDATE SET score = excluded.score, comment = excluded.comment,
 added_by = excluded.added_by, added_at = excluded.added_at`)); err != nil {
				return fmt.Errorf("archive: fraud add: %w", err)
			}
			stmts[n] = st
		}
		if _, err := st.ExecContext(ctx, batch...); err != nil {
			return fmt.Errorf("archive: fraud add: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	for i, e := range entries {
		if last[e.Key()] != i {
			continue
		}
		var score sql.NullInt64
		if e.Score != nil {
			score = sql.NullInt64{Int64: int64(*e.Score), Valid: true}
		}
		batch = append(batch, string(e.Type), e.Value, score, e.Comment, e.AddedBy, ms(e.Added))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := s.dataChanged(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: fraud add: %w", err)
	}
	return nil
}

// Remove implements fraud.Store (announced on FraudChannel, as Add is).
func (s *Store) Remove(ctx context.Context, t fraud.Type, value string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: fraud remove %s: %w", t, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM fraud_entries WHERE type = ? AND value = ?`), string(t), value)
	if err != nil {
		return fmt.Errorf("archive: fraud remove %s: %w", t, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("archive: fraud remove %s: %w", t, fraud.ErrNotFound)
	}
	if err := s.dataChanged(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: fraud remove %s: %w", t, err)
	}
	return nil
}

// dataChanged moves the static data's version (fraud_data_head,
// migration 00012) and announces the change on FraudChannel, in the
// change's transaction.
func (s *Store) dataChanged(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE fraud_data_head SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("archive: fraud data version: %w", err)
	}
	return s.notifyFraud(ctx, tx, FraudChangedData)
}

// List implements fraud.Store.
func (s *Store) List(ctx context.Context, t fraud.Type) ([]fraud.Entry, error) {
	entries, _, err := s.ListEntries(ctx, t, 0, 0)
	return entries, err
}

// ListEntries returns a page of the entries of type t (every type when
// empty), sorted by type then value: at most limit (0: all) from offset,
// and how many there are in all (with limit 0: len of the entries).
func (s *Store) ListEntries(ctx context.Context, t fraud.Type, limit, offset int) ([]fraud.Entry, int, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, 0, err
	}
	where := ""
	var args []any
	if t != "" {
		where = ` WHERE type = ?`
		args = append(args, string(t))
	}
	query := `SELECT type, value, score, comment, added_by, added_at FROM fraud_entries` + where + ` ORDER BY type, value`
	if limit > 0 {
		query += fmt.Sprintf(` LIMIT %d OFFSET %d`, limit, max(offset, 0))
	}
	entries, err := queryAll(ctx, s, "fraud list", query, args, func(r rowScanner) (fraud.Entry, error) {
		var e fraud.Entry
		var typ string
		var score sql.NullInt64
		var added int64
		if err := r.Scan(&typ, &e.Value, &score, &e.Comment, &e.AddedBy, &added); err != nil {
			return e, err
		}
		e.Type = fraud.Type(typ)
		if score.Valid {
			v := int(score.Int64)
			e.Score = &v
		}
		e.Added = fromMS(added)
		return e, nil
	})
	if err != nil || limit <= 0 {
		return entries, len(entries), err
	}
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM fraud_entries`+where), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("archive: fraud list: %w", err)
	}
	return entries, total, nil
}

// CreateHold stores a new open hold (its ID, Status and, when zero,
// Created are set here) with comment, when not empty, as its first note.
// Matches are checked to hold no card number.
func (s *Store) CreateHold(ctx context.Context, h Hold, comment string) (Hold, error) {
	if h.Code != HoldAuto && h.Code != HoldManual {
		return h, fmt.Errorf("%w: code %q", ErrHold, h.Code)
	}
	if h.Matches == nil {
		h.Matches = []fraud.Match{}
	}
	matches, err := json.Marshal(h.Matches)
	if err != nil {
		return h, fmt.Errorf("%w: matches: %v", ErrHold, err)
	}
	if fraud.HasPAN(string(matches)) || fraud.HasPAN(h.GatewayReference) || fraud.HasPAN(comment) {
		return h, fmt.Errorf("archive: create hold: %w", fraud.ErrSecret)
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = time.UnixMilli(h.Created.UnixMilli()).UTC()
	h.Status = HoldOpen
	if err := s.ensure(ctx); err != nil {
		return h, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return h, fmt.Errorf("archive: create hold: %w", err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO fraud_holds (interaction_id, code, status, score, minimum, matches,
 gateway_reference, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		h.Interaction, h.Code, h.Status, h.Score, h.Minimum, string(matches), h.GatewayReference, h.CreatedBy, ms(h.Created)).Scan(&h.ID)
	if err != nil {
		return h, fmt.Errorf("archive: create hold: %w", err)
	}
	if comment != "" {
		n := HoldNote{At: h.Created, Author: h.CreatedBy, Kind: NoteCreate, Text: comment}
		if err := s.addNote(ctx, tx, h.ID, n); err != nil {
			return h, err
		}
		h.Notes = append(h.Notes, n)
	}
	if err := tx.Commit(); err != nil {
		return h, fmt.Errorf("archive: create hold: %w", err)
	}
	return h, nil
}

func (s *Store) addNote(ctx context.Context, tx *sql.Tx, id int64, n HoldNote) error {
	if fraud.HasPAN(n.Text) {
		return fmt.Errorf("archive: hold note: %w", fraud.ErrSecret)
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO fraud_hold_notes (hold_id, seq, at, author, kind, text)
 VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM fraud_hold_notes WHERE hold_id = ?), ?, ?, ?, ?)`),
		id, id, ms(n.At), n.Author, n.Kind, n.Text)
	if err != nil {
		return fmt.Errorf("archive: hold %d note: %w", id, err)
	}
	return nil
}

const holdCols = `id, interaction_id, code, status, score, minimum, matches, gateway_reference, created_by, created_at, decided_by, decided_at`

func scanHold(r rowScanner) (Hold, error) {
	var h Hold
	var matches string
	var created, decided int64
	if err := r.Scan(&h.ID, &h.Interaction, &h.Code, &h.Status, &h.Score, &h.Minimum, &matches,
		&h.GatewayReference, &h.CreatedBy, &created, &h.DecidedBy, &decided); err != nil {
		return h, err
	}
	if err := json.Unmarshal([]byte(matches), &h.Matches); err != nil {
		return h, fmt.Errorf("hold %d matches: %w", h.ID, err)
	}
	h.Created, h.Decided = fromMS(created), fromMS(decided)
	return h, nil
}

// Holds returns the holds with status (every status when empty), oldest
// first, without their notes.
func (s *Store) Holds(ctx context.Context, status string) ([]Hold, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	query := `SELECT ` + holdCols + ` FROM fraud_holds`
	var args []any
	if status != "" {
		query += ` WHERE status = ?`
		args = append(args, status)
	}
	query += ` ORDER BY id`
	return queryAll(ctx, s, "holds", query, args, scanHold)
}

// GetHold returns one hold with its notes; ErrNoHold when absent.
func (s *Store) GetHold(ctx context.Context, id int64) (Hold, error) {
	if err := s.ensure(ctx); err != nil {
		return Hold{}, err
	}
	h, err := scanHold(s.db.QueryRowContext(ctx, s.q(`SELECT `+holdCols+` FROM fraud_holds WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("hold %d: %w", id, ErrNoHold)
	}
	if err != nil {
		return h, fmt.Errorf("archive: hold %d: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, author, kind, text FROM fraud_hold_notes WHERE hold_id = ? ORDER BY seq`), id)
	if err != nil {
		return h, fmt.Errorf("archive: hold %d notes: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var n HoldNote
		var at int64
		if err := rows.Scan(&at, &n.Author, &n.Kind, &n.Text); err != nil {
			return h, fmt.Errorf("archive: hold %d notes: %w", id, err)
		}
		n.At = fromMS(at)
		h.Notes = append(h.Notes, n)
	}
	return h, rows.Err()
}

// DecideHold moves an open hold to released or rejected, with by's
// comment as a note, in one transaction; ErrHoldDecided when it is no
// longer open (another reviewer was first), ErrNoHold when absent.
func (s *Store) DecideHold(ctx context.Context, id int64, status, by, comment string, at time.Time) error {
	kind := map[string]string{HoldReleased: NoteRelease, HoldRejected: NoteReject}[status]
	if kind == "" {
		return fmt.Errorf("%w: status %q", ErrHold, status)
	}
	if strings.TrimSpace(comment) == "" {
		return fmt.Errorf("%w: a decision needs a comment", ErrHold)
	}
	if at.IsZero() {
		at = time.Now()
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: decide hold %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE fraud_holds SET status = ?, decided_by = ?, decided_at = ?
 WHERE id = ? AND status = ?`), status, by, ms(at), id, HoldOpen)
	if err != nil {
		return fmt.Errorf("archive: decide hold %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var st string
		err := tx.QueryRowContext(ctx, s.q(`SELECT status FROM fraud_holds WHERE id = ?`), id).Scan(&st)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("hold %d: %w", id, ErrNoHold)
		}
		return fmt.Errorf("hold %d is %s: %w", id, st, ErrHoldDecided)
	}
	if err := s.addNote(ctx, tx, id, HoldNote{At: at, Author: by, Kind: kind, Text: comment}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("archive: decide hold %d: %w", id, err)
	}
	return nil
}

// CommentHold appends a comment to a hold's thread.
func (s *Store) CommentHold(ctx context.Context, id int64, by, comment string) error {
	if strings.TrimSpace(comment) == "" {
		return fmt.Errorf("%w: empty comment", ErrHold)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("archive: comment hold %d: %w", id, err)
	}
	defer tx.Rollback()
	var one int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM fraud_holds WHERE id = ?`), id).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("hold %d: %w", id, ErrNoHold)
		}
		return fmt.Errorf("archive: comment hold %d: %w", id, err)
	}
	if err := s.addNote(ctx, tx, id, HoldNote{At: time.Now(), Author: by, Kind: NoteComment, Text: comment}); err != nil {
		return err
	}
	return tx.Commit()
}

// FraudVersion is the static data's version (fraud_data_head: one row,
// moved by every Add and Remove), so a node's poll reads one row and
// rebuilds its index only when it moved.
func (s *Store) FraudVersion(ctx context.Context) (string, error) {
	if err := s.ensure(ctx); err != nil {
		return "", err
	}
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM fraud_data_head WHERE id = 1`).Scan(&v); err != nil {
		return "", fmt.Errorf("archive: fraud version: %w", err)
	}
	return strconv.FormatInt(v, 10), nil
}
