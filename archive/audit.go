package archive

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Audit actions.
const (
	ActionPlay      = "play"
	ActionDownload  = "download"
	ActionDelete    = "delete"
	ActionExport    = "export"
	ActionAnonymise = "anonymise"
	ActionView      = "view" // show: general information, data and trace
	ActionPurge     = "purge"
)

// AuditEntry is one row of the audit log: who did what to which
// interaction, from where. Detail names no person and no value.
type AuditEntry struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"` // "cli:<os user>", later a console user
	Action      string    `json:"action"`
	Interaction string    `json:"interaction,omitempty"`
	Address     string    `json:"address,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	MAC         string    `json:"mac"`
}

// mac is the hex HMAC-SHA256 of the entry under key: every field but MAC,
// length-prefixed so no two entries share an encoding.
func (e AuditEntry) mac(key []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range []string{strconv.FormatInt(e.ID, 10), strconv.FormatInt(e.At.UnixMilli(), 10),
		e.Actor, e.Action, e.Interaction, e.Address, e.Detail} {
		m.Write([]byte(strconv.Itoa(len(f)) + ":"))
		m.Write([]byte(f))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Audit appends a signed entry (its ID, MAC and, when zero, At are set
// here) and returns it.
func (s *Store) Audit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = time.UnixMilli(e.At.UnixMilli()).UTC()
	if err := s.ensure(ctx); err != nil {
		return e, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	defer tx.Rollback()
	// The id is part of what is signed, so the row is signed once the
	// database has numbered it, in the same transaction.
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, interaction_id, address, detail)
 VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), e.At.UnixMilli(), e.Actor, e.Action, e.Interaction, e.Address, e.Detail).Scan(&e.ID)
	if err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	e.MAC = e.mac(s.key)
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_log SET mac = ? WHERE id = ?`), e.MAC, e.ID); err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	return e, nil
}

// AuditLog returns the audit entries, oldest first: those of one
// interaction when id is not empty, else all (at most limit, 0: all).
func (s *Store) AuditLog(ctx context.Context, id string, limit int) ([]AuditEntry, error) {
	query := `SELECT id, at, actor, action, interaction_id, address, detail, mac FROM audit_log`
	var args []any
	if id != "" {
		query += ` WHERE interaction_id = ?`
		args = append(args, id)
	}
	query += ` ORDER BY id`
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	return queryAll(ctx, s, "audit log", query, args, func(r rowScanner) (AuditEntry, error) {
		var e AuditEntry
		var at int64
		err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Interaction, &e.Address, &e.Detail, &e.MAC)
		e.At = fromMS(at)
		return e, err
	})
}

// Verify reports whether an entry's signature matches its fields.
func (s *Store) Verify(e AuditEntry) bool {
	return hmac.Equal([]byte(e.MAC), []byte(e.mac(s.key)))
}
