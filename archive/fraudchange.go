package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// The changes of static fraud data and rules that people make, through
// the CLI (`cloak fraud data`, `cloak fraud rules load`) and the API
// (/api/fraud/data, /api/fraud/rules): one code path for both, each change
// normalised, checked, stored, audited with who made it from where, and
// announced on PostgreSQL (FraudChannel) so every node reloads at once.

// FraudChannel is the PostgreSQL LISTEN/NOTIFY channel of fraud changes:
// its payload is FraudChangedData or FraudChangedRules. The notification
// is sent inside the change's transaction, so it is delivered on commit
// and never for a change rolled back.
const FraudChannel = "cloak_fraud"

// Payloads on FraudChannel.
const (
	FraudChangedData  = "data"
	FraudChangedRules = "rules"
)

// MaxImportBytes bounds a CSV import through the API (the CLI reads a
// local file): about 1,000,000 short lines.
const MaxImportBytes = 64 << 20

// Changer is who changes fraud data or rules and from where, for the
// audit: the CLI's "cli:USER" at "local", or the API's signed-in user or
// token at the request's address.
type Changer struct {
	Actor   string
	Address string
}

// notifyFraud announces a fraud change on PostgreSQL through ex (a
// transaction: delivered at its commit); nothing on SQLite, whose nodes
// poll.
func (s *Store) notifyFraud(ctx context.Context, ex interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, what string) error {
	if s.engine != Postgres {
		return nil
	}
	if _, err := ex.ExecContext(ctx, `SELECT pg_notify($1, $2)`, FraudChannel, what); err != nil {
		return fmt.Errorf("archive: fraud notify: %w", err)
	}
	return nil
}

func (s *Store) auditFraudData(ctx context.Context, by Changer, detail string) error {
	_, err := s.Audit(ctx, AuditEntry{Actor: by.Actor, Action: ActionFraudData, Address: by.Address, Detail: detail})
	return err
}

// AddEntry normalises e for its type (norm), checks its score (±
// fraud.MaxScore) and that neither value nor comment holds a card number,
// stores it (replacing an entry of the same type and value) as added by
// by.Actor now, and audits "add TYPE" (never the value: it may be a
// person's number). It returns the entry as stored.
func (s *Store) AddEntry(ctx context.Context, norm fraud.Normaliser, by Changer, e fraud.Entry) (fraud.Entry, error) {
	if e.Score != nil && (*e.Score < -fraud.MaxScore || *e.Score > fraud.MaxScore) {
		return e, fmt.Errorf("%w: score: want an integer from %d to %d", fraud.ErrValue, -fraud.MaxScore, fraud.MaxScore)
	}
	if err := e.Normalise(norm); err != nil {
		return e, err
	}
	e.AddedBy, e.Added = by.Actor, time.Now()
	if err := s.Add(ctx, e); err != nil {
		return e, err
	}
	return e, s.auditFraudData(ctx, by, "add "+string(e.Type))
}

// RemoveEntry normalises the value as AddEntry does, removes that entry
// (fraud.ErrNotFound when absent) and audits "remove TYPE". It returns
// the entry's type and normalised value.
func (s *Store) RemoveEntry(ctx context.Context, norm fraud.Normaliser, by Changer, t, value string) (fraud.Entry, error) {
	e := fraud.Entry{Type: fraud.Type(t), Value: value}
	if err := e.Normalise(norm); err != nil {
		return e, err
	}
	if err := s.Remove(ctx, e.Type, e.Value); err != nil {
		return e, err
	}
	return e, s.auditFraudData(ctx, by, "remove "+string(e.Type))
}

// ErrImport: a CSV import had bad lines; nothing was imported. It wraps
// the lines' errors (fraud.ParseCSV), each naming its line.
var ErrImport = errors.New("nothing imported")

// ImportEntries reads static entries from CSV (fraud.ParseCSV: header
// type,value[,score][,comment], every value normalised) and adds all of
// them in one transaction, or none when a line is bad (an error wrapping
// ErrImport and the lines' errors); audited "import N entries".
func (s *Store) ImportEntries(ctx context.Context, norm fraud.Normaliser, by Changer, r io.Reader) (int, error) {
	entries, err := fraud.ParseCSV(r, norm, by.Actor, time.Now())
	if err != nil {
		return 0, fmt.Errorf("%w:\n%w", ErrImport, err)
	}
	if err := s.Add(ctx, entries...); err != nil {
		return 0, err
	}
	return len(entries), s.auditFraudData(ctx, by, fmt.Sprintf("import %d entries", len(entries)))
}
