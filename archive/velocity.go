package archive

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// Velocity: the archive answers fraud.Velocity from the fraud_velocity
// table (migration 00007), one row per screened payment, written by the
// node that screened it (RecordPayment). Numbers and customer ids are
// stored as tokens only.

var (
	_ fraud.Velocity     = (*Store)(nil)
	_ fraud.CardVelocity = (*Store)(nil)
)

// Token labels of velocity rows: distinct from participant-data keys so a
// velocity token never equals a data token of the same value.
const (
	velocityCaller   = "fraud-velocity:caller"
	velocityCustomer = "fraud-velocity:customer_id"
	// velocityArrival labels the caller token of a call's arrival row: a
	// payment count (velocityCaller tokens) never matches one, and a
	// calls_today count never matches a payment row.
	velocityArrival = "fraud-velocity:arrival"
)

// RecordArrival adds the arrival of a call from caller (E.164) to the
// velocity table: a row with the caller's arrival token and no customer
// or card, counted by calls_today and by nothing else. Rows go with the
// interactions' retention; anonymise deletes them.
func (s *Store) RecordArrival(ctx context.Context, at time.Time, caller, interaction string) error {
	if caller == "" {
		return nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO fraud_velocity (at, caller_token, interaction_id) VALUES (?, ?, ?)`),
		at.UnixMilli(), s.velocityToken(velocityArrival, caller), interaction)
	if err != nil {
		return fmt.Errorf("archive: velocity arrival: %w", err)
	}
	return nil
}

// VelocityPayment is one screened payment as the velocity table keeps it.
type VelocityPayment struct {
	At time.Time
	// Caller is the caller's number in E.164 and Customer the normalised
	// customer id, as screening normalises them ("" when unknown); both
	// are stored as tokens.
	Caller, Customer string
	// CardToken is the card's 64-hex HMAC token (fraud.Payment.CardToken),
	// never a card number.
	CardToken string
	// Declined: the gateway declined the payment.
	Declined    bool
	Interaction string
}

// RecordPayment adds a velocity row. A card token that is not a token is
// refused (fraud.ErrSecret), so no card number can reach the table.
func (s *Store) RecordPayment(ctx context.Context, p VelocityPayment) error {
	if p.CardToken != "" && !fraud.IsCardToken(p.CardToken) {
		return fmt.Errorf("archive: velocity card token: %w", fraud.ErrSecret)
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO fraud_velocity (at, caller_token, customer_token, card_token, declined, interaction_id)
 VALUES (?, ?, ?, ?, ?, ?)`), p.At.UnixMilli(), s.velocityToken(velocityCaller, p.Caller), s.velocityToken(velocityCustomer, p.Customer),
		p.CardToken, p.Declined, p.Interaction)
	if err != nil {
		return fmt.Errorf("archive: velocity: %w", err)
	}
	return nil
}

func (s *Store) velocityToken(label, v string) string {
	if v == "" {
		return ""
	}
	return Token(s.key, label, v)
}

// Counts implements fraud.Velocity: payments, declines and distinct cards
// from caller since since, payments and declines of customer since
// since — each one range scan of an index (caller_token, at) or
// (customer_token, at) — and the caller's arrivals since midnight
// (RecordArrival rows) as CallsToday.
func (s *Store) Counts(ctx context.Context, caller, customer string, since, midnight time.Time) (fraud.Counts, error) {
	var c fraud.Counts
	if err := s.ensure(ctx); err != nil {
		return c, err
	}
	const agg = `SELECT COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0), COUNT(DISTINCT NULLIF(card_token, ''))
 FROM fraud_velocity WHERE `
	if caller != "" {
		if err := s.db.QueryRowContext(ctx, s.q(agg+`caller_token = ? AND at >= ?`), s.velocityToken(velocityCaller, caller), since.UnixMilli()).
			Scan(&c.PaymentsCaller, &c.DeclinesCaller, &c.CardsCaller); err != nil {
			return c, fmt.Errorf("archive: velocity: %w", err)
		}
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM fraud_velocity WHERE caller_token = ? AND at >= ?`),
			s.velocityToken(velocityArrival, caller), midnight.UnixMilli()).Scan(&c.CallsToday); err != nil {
			return c, fmt.Errorf("archive: velocity: %w", err)
		}
	}
	if customer != "" {
		var cards int
		if err := s.db.QueryRowContext(ctx, s.q(agg+`customer_token = ? AND at >= ?`), s.velocityToken(velocityCustomer, customer), since.UnixMilli()).
			Scan(&c.PaymentsCustomer, &c.DeclinesCustomer, &cards); err != nil {
			return c, fmt.Errorf("archive: velocity: %w", err)
		}
	}
	return c, nil
}

// CardCounts implements fraud.CardVelocity: payments and declines of the
// card with token since since, from any caller — one covering range scan
// of (card_token, at, declined).
func (s *Store) CardCounts(ctx context.Context, token string, since time.Time) (payments, declines int, err error) {
	if token == "" {
		return 0, 0, nil
	}
	if err := s.ensure(ctx); err != nil {
		return 0, 0, err
	}
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0)
 FROM fraud_velocity WHERE card_token = ? AND at >= ?`), token, since.UnixMilli()).Scan(&payments, &declines)
	if err != nil {
		return 0, 0, fmt.Errorf("archive: velocity: %w", err)
	}
	return payments, declines, nil
}

var _ fraud.VelocityQuerier = (*Store)(nil)

// The branches of the velocity statement, one per key a screening may
// have; each is one range scan of its index, as Counts' and CardCounts'
// queries are (TestVelocityQueriesUseIndexes).
var velocityBranches = [4]string{
	`SELECT 0, COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0), COUNT(DISTINCT NULLIF(card_token, '')) FROM fraud_velocity WHERE caller_token = ? AND at >= ?`,
	`SELECT 1, COUNT(*), 0, 0 FROM fraud_velocity WHERE caller_token = ? AND at >= ?`,
	`SELECT 2, COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0), 0 FROM fraud_velocity WHERE customer_token = ? AND at >= ?`,
	`SELECT 3, COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0), 0 FROM fraud_velocity WHERE card_token = ? AND at >= ?`,
}

// Query implements fraud.VelocityQuerier: Counts' and CardCounts' four
// counts as one statement (UNION ALL of the branches the screening has
// keys for), prepared once per combination: one round trip to
// PostgreSQL, one read transaction on SQLite, instead of four.
func (s *Store) Query(ctx context.Context, q fraud.VelocityQuery) (fraud.Counts, error) {
	var c fraud.Counts
	if q.CardToken != "" && !fraud.IsCardToken(q.CardToken) {
		return c, fmt.Errorf("archive: velocity card token: %w", fraud.ErrSecret)
	}
	if err := s.ensure(ctx); err != nil {
		return c, err
	}
	var args []any
	mask := 0
	since, midnight := q.Since.UnixMilli(), q.Midnight.UnixMilli()
	if q.Caller != "" {
		mask |= 1<<0 | 1<<1
		args = append(args, s.velocityToken(velocityCaller, q.Caller), since, s.velocityToken(velocityArrival, q.Caller), midnight)
	}
	if q.Customer != "" {
		mask |= 1 << 2
		args = append(args, s.velocityToken(velocityCustomer, q.Customer), since)
	}
	if q.CardToken != "" {
		mask |= 1 << 3
		args = append(args, q.CardToken, since)
	}
	if mask == 0 {
		return c, nil
	}
	st, err := s.velocityStmt(ctx, mask)
	if err != nil {
		return c, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return c, fmt.Errorf("archive: velocity: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var branch, n, declines, cards int
		if err := rows.Scan(&branch, &n, &declines, &cards); err != nil {
			return c, fmt.Errorf("archive: velocity: %w", err)
		}
		switch branch {
		case 0:
			c.PaymentsCaller, c.DeclinesCaller, c.CardsCaller = n, declines, cards
		case 1:
			c.CallsToday = n
		case 2:
			c.PaymentsCustomer, c.DeclinesCustomer = n, declines
		case 3:
			c.PaymentsCard, c.DeclinesCard = n, declines
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("archive: velocity: %w", err)
	}
	return c, nil
}

// velocityStmt returns the prepared statement of the branches in mask.
func (s *Store) velocityStmt(ctx context.Context, mask int) (*sql.Stmt, error) {
	if st, ok := s.velocityStmts.Load(mask); ok {
		return st.(*sql.Stmt), nil
	}
	var parts []string
	for i, b := range velocityBranches {
		if mask&(1<<i) != 0 {
			parts = append(parts, b)
		}
	}
	st, err := s.db.PrepareContext(ctx, s.q(strings.Join(parts, " UNION ALL ")))
	if err != nil {
		return nil, fmt.Errorf("archive: velocity: %w", err)
	}
	if prev, loaded := s.velocityStmts.LoadOrStore(mask, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}
