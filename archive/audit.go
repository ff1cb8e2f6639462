package archive

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
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
	// Seq is the row's place in the chain (1, 2, …); 0 on a row written
	// before the chain (migration 00006), which verifies by MAC alone.
	Seq int64 `json:"seq,omitempty"`
	// Chain is HMAC(seq, previous row's Chain, MAC): a deleted, inserted
	// or moved row breaks it at the next row.
	Chain string `json:"chain,omitempty"`
	// Redacted is set when the purge blanked the row with its
	// interaction: Actor, Action, Interaction, Address and Detail are
	// gone, MAC and Chain stay so the chain still verifies.
	Redacted string `json:"redacted,omitempty"`
}

// hmacFields is the hex HMAC-SHA256 under key of fields, each
// length-prefixed so no two lists share an encoding.
func hmacFields(key []byte, fields ...string) string {
	m := hmac.New(sha256.New, key)
	for _, f := range fields {
		m.Write([]byte(strconv.Itoa(len(f)) + ":"))
		m.Write([]byte(f))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// mac is the hex HMAC-SHA256 of the entry under key: every field but MAC
// and the chain's.
func (e AuditEntry) mac(key []byte) string {
	return hmacFields(key, strconv.FormatInt(e.ID, 10), strconv.FormatInt(e.At.UnixMilli(), 10),
		e.Actor, e.Action, e.Interaction, e.Address, e.Detail)
}

// chainMAC links row seq (whose own mac is mac) to the row before it.
// The "audit-chain" label keeps it apart from every other HMAC under the
// archive key.
func chainMAC(key []byte, seq int64, prev, mac string) string {
	return hmacFields(key, "audit-chain", strconv.FormatInt(seq, 10), prev, mac)
}

// redactMAC proves that a key holder (the purge) blanked row seq.
func redactMAC(key []byte, seq int64, mac string) string {
	return hmacFields(key, "audit-redacted", strconv.FormatInt(seq, 10), mac)
}

// headMAC signs the chain's head; startMAC its start (the checkpoint).
func headMAC(key []byte, seq int64, chain string) string {
	return hmacFields(key, "audit-head", strconv.FormatInt(seq, 10), chain)
}

func startMAC(key []byte, seq int64, prev string) string {
	return hmacFields(key, "audit-start", strconv.FormatInt(seq, 10), prev)
}

// Audit appends a signed, chained entry (its ID, Seq, MAC, Chain and,
// when zero, At are set here) and returns it. The chain's head row is
// locked by the transaction's first statement (an UPDATE: a row lock on
// PostgreSQL, the write lock of an immediate transaction on SQLite), so
// writers in other processes or on other nodes append one at a time and
// the sequence has no gap or fork.
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
	var prev string
	err = tx.QueryRowContext(ctx, `UPDATE audit_chain SET head_seq = head_seq + 1 WHERE id = 1 RETURNING head_seq, head_chain`).
		Scan(&e.Seq, &prev)
	if err != nil {
		return e, fmt.Errorf("archive: audit: chain head: %w", err)
	}
	// The id is part of what is signed, so the row is signed once the
	// database has numbered it, in the same transaction.
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, interaction_id, address, detail, seq)
 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), e.At.UnixMilli(), e.Actor, e.Action, e.Interaction, e.Address, e.Detail, e.Seq).Scan(&e.ID)
	if err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	e.MAC = e.mac(s.key)
	e.Chain = chainMAC(s.key, e.Seq, prev, e.MAC)
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_log SET mac = ?, chain = ? WHERE id = ?`), e.MAC, e.Chain, e.ID); err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_chain SET head_chain = ?, head_mac = ? WHERE id = 1`),
		e.Chain, headMAC(s.key, e.Seq, e.Chain)); err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return e, fmt.Errorf("archive: audit: %w", err)
	}
	return e, nil
}

const auditColumns = `id, at, actor, action, interaction_id, address, detail, mac, seq, chain, redacted`

func scanAudit(r rowScanner) (AuditEntry, error) {
	var e AuditEntry
	var at int64
	var seq sql.NullInt64
	err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Interaction, &e.Address, &e.Detail, &e.MAC, &seq, &e.Chain, &e.Redacted)
	e.At = fromMS(at)
	e.Seq = seq.Int64
	return e, err
}

// AuditLog returns the audit entries, oldest first: those of one
// interaction when id is not empty, else all (at most limit, 0: all).
func (s *Store) AuditLog(ctx context.Context, id string, limit int) ([]AuditEntry, error) {
	query := `SELECT ` + auditColumns + ` FROM audit_log`
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
	return queryAll(ctx, s, "audit log", query, args, scanAudit)
}

// Verify reports whether an entry's own signature matches its fields (a
// redacted row: whether its redaction was signed). It says nothing of the
// rows around it: VerifyChain does.
func (s *Store) Verify(e AuditEntry) bool {
	if e.Redacted != "" {
		return e.Seq > 0 && hmac.Equal([]byte(e.Redacted), []byte(redactMAC(s.key, e.Seq, e.MAC)))
	}
	return hmac.Equal([]byte(e.MAC), []byte(e.mac(s.key)))
}

// ChainBreak is where the audit chain first fails.
type ChainBreak struct {
	// ID and Seq name the first row that does not verify (0 when the
	// break is after the last row: its tail was deleted).
	ID  int64 `json:"id"`
	Seq int64 `json:"seq"`
	// Reason says what is wrong, e.g. "seq 5 missing (deleted) before
	// this row".
	Reason string `json:"reason"`
}

// ChainReport is the result of VerifyChain.
type ChainReport struct {
	// Legacy rows predate the chain (seq NULL) and are checked by MAC
	// alone; LegacyFailed are those whose MAC fails.
	Legacy       int     `json:"legacy"`
	LegacyFailed []int64 `json:"legacy_failed"`
	// Chained rows verified from the start (FirstSeq) to the head
	// (HeadSeq); Redacted of them were blanked by the purge.
	Chained  int   `json:"chained"`
	Redacted int   `json:"redacted"`
	FirstSeq int64 `json:"first_seq"`
	HeadSeq  int64 `json:"head_seq"`
	// Break is the first place the chain fails, nil when it holds.
	Break *ChainBreak `json:"break,omitempty"`
}

// OK reports whether every row verified and the chain holds.
func (r ChainReport) OK() bool { return r.Break == nil && len(r.LegacyFailed) == 0 }

// ErrAuditChain: the audit chain's head or start record is missing or
// unreadable.
var ErrAuditChain = errors.New("archive: audit chain")

// VerifyChain checks every audit row: rows from before the chain by their
// MAC; chained rows by their MAC (or signed redaction), their sequence
// (no gap, no duplicate, starting at the signed start) and their link to
// the row before, up to the signed head. It stops at the first break and
// names that row. It cannot see the last rows deleted together with the
// head moved back to a head value the attacker saw earlier: compare
// HeadSeq with a copy kept elsewhere (the nightly purge logs it).
func (s *Store) VerifyChain(ctx context.Context) (ChainReport, error) {
	var rep ChainReport
	if err := s.ensure(ctx); err != nil {
		return rep, err
	}
	rep.LegacyFailed = []int64{}
	var headChain, headSig, firstPrev, firstSig string
	err := s.db.QueryRowContext(ctx, `SELECT head_seq, head_chain, head_mac, first_seq, first_prev, first_mac FROM audit_chain WHERE id = 1`).
		Scan(&rep.HeadSeq, &headChain, &headSig, &rep.FirstSeq, &firstPrev, &firstSig)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrAuditChain, err)
	}
	fail := func(id, seq int64, reason string) (ChainReport, error) {
		rep.Break = &ChainBreak{ID: id, Seq: seq, Reason: reason}
		return rep, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq IS NOT NULL, seq, id`)
	if err != nil {
		return rep, fmt.Errorf("archive: audit verify: %w", err)
	}
	defer rows.Close()
	// The start is unsigned only while it is the genesis (seq 1, nothing
	// before it).
	startOK := (rep.FirstSeq == 1 && firstPrev == "" && firstSig == "") ||
		hmac.Equal([]byte(firstSig), []byte(startMAC(s.key, rep.FirstSeq, firstPrev)))
	want, prev := rep.FirstSeq, firstPrev
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return rep, fmt.Errorf("archive: audit verify: %w", err)
		}
		if e.Seq == 0 {
			rep.Legacy++
			if !s.Verify(e) {
				rep.LegacyFailed = append(rep.LegacyFailed, e.ID)
			}
			continue
		}
		switch {
		case !startOK:
			return fail(e.ID, e.Seq, "the chain's start record is not signed with this key (edited)")
		case e.Seq < want && want == rep.FirstSeq:
			return fail(e.ID, e.Seq, fmt.Sprintf("seq %d is before the chain's signed start %d (inserted or the start edited)", e.Seq, want))
		case e.Seq > want && want == e.Seq-1:
			return fail(e.ID, e.Seq, fmt.Sprintf("seq %d missing (deleted) before this row", want))
		case e.Seq > want:
			return fail(e.ID, e.Seq, fmt.Sprintf("seqs %d–%d missing (deleted) before this row", want, e.Seq-1))
		case !s.Verify(e):
			return fail(e.ID, e.Seq, "the row's signature fails (edited or not signed with this key)")
		case !hmac.Equal([]byte(e.Chain), []byte(chainMAC(s.key, e.Seq, prev, e.MAC))):
			return fail(e.ID, e.Seq, "the row does not follow the one before it (inserted, moved or replaced)")
		}
		rep.Chained++
		if e.Redacted != "" {
			rep.Redacted++
		}
		want, prev = e.Seq+1, e.Chain
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("archive: audit verify: %w", err)
	}
	switch {
	case !startOK:
		return fail(0, rep.FirstSeq, "the chain's start record is not signed with this key (edited)")
	case rep.HeadSeq == 0 && headChain == "" && headSig == "" && want == 1:
		// No chained row was ever written.
	case !hmac.Equal([]byte(headSig), []byte(headMAC(s.key, rep.HeadSeq, headChain))):
		return fail(0, rep.HeadSeq, "the chain's head record is not signed with this key (edited)")
	case want <= rep.HeadSeq:
		return fail(0, want, fmt.Sprintf("seqs %d–%d missing (the last rows deleted)", want, rep.HeadSeq))
	case want != rep.HeadSeq+1 || prev != headChain:
		return fail(0, rep.HeadSeq, "the last row is not the chain's head")
	}
	return rep, nil
}
