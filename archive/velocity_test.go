package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/fraud"
)

func cardToken(n int) string {
	h := sha256.Sum256([]byte(fmt.Sprint("card", n)))
	return hex.EncodeToString(h[:])
}

// TestVelocityCounts: the archive answers fraud.Velocity from recorded
// payments — by caller (payments, declines, distinct cards) and by
// customer id, inside the window only; it keeps no number, customer id or
// card; anonymise and purge remove the rows.
func TestVelocityCounts(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		const caller, other, customer = "+447700900123", "+447700900999", "CUST-42"
		for _, p := range []VelocityPayment{
			{At: now.Add(-time.Hour), Caller: caller, Customer: customer, CardToken: cardToken(1)},
			{At: now.Add(-2 * time.Hour), Caller: caller, CardToken: cardToken(2), Declined: true},
			{At: now.Add(-3 * time.Hour), Caller: caller, CardToken: cardToken(1)},
			{At: now.Add(-30 * time.Hour), Caller: caller, Customer: customer, CardToken: cardToken(3)}, // outside 24 h
			{At: now.Add(-time.Hour), Caller: other, Customer: customer, Declined: true},
		} {
			if err := s.RecordPayment(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordPayment(ctx, VelocityPayment{Caller: caller, CardToken: "4111111111111111"}); !errors.Is(err, fraud.ErrSecret) {
			t.Errorf("a card number as token: %v, want ErrSecret", err)
		}
		c, err := s.Counts(ctx, caller, customer, now.Add(-24*time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		want := fraud.Counts{PaymentsCaller: 3, DeclinesCaller: 1, CardsCaller: 2, PaymentsCustomer: 2, DeclinesCustomer: 1}
		if c != want {
			t.Errorf("counts %+v, want %+v", c, want)
		}
		// Card 1: two payments in the window (and one of card 3 outside).
		if p, d, err := s.CardCounts(ctx, cardToken(1), now.Add(-24*time.Hour)); err != nil || p != 2 || d != 0 {
			t.Errorf("card 1: %d payments %d declines %v", p, d, err)
		}
		if p, d, _ := s.CardCounts(ctx, cardToken(2), now.Add(-24*time.Hour)); p != 1 || d != 1 {
			t.Errorf("card 2: %d payments %d declines", p, d)
		}
		if c, _ := s.Counts(ctx, "+447700900000", "", now.Add(-24*time.Hour), now); c != (fraud.Counts{}) {
			t.Errorf("unknown caller: %+v", c)
		}
		// Query (fraud.VelocityQuerier) answers what Counts and CardCounts
		// do, in one statement, for every combination of keys.
		if err := s.RecordArrival(ctx, now.Add(-time.Minute), caller, "i-arrival"); err != nil {
			t.Fatal(err)
		}
		since, midnight := now.Add(-24*time.Hour), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
		for _, q := range []fraud.VelocityQuery{{Caller: caller, Customer: customer, CardToken: cardToken(2)}, {Caller: caller},
			{Customer: customer}, {CardToken: cardToken(1)}, {Caller: caller, CardToken: cardToken(1)}, {Customer: customer, CardToken: cardToken(2)}} {
			q.Since, q.Midnight = since, midnight
			var want fraud.Counts
			if q.Caller != "" || q.Customer != "" {
				want, _ = s.Counts(ctx, q.Caller, q.Customer, since, midnight)
			}
			if q.CardToken != "" {
				want.PaymentsCard, want.DeclinesCard, _ = s.CardCounts(ctx, q.CardToken, since)
			}
			if got, err := s.Query(ctx, q); err != nil || got != want || got == (fraud.Counts{}) {
				t.Errorf("query %+v: %+v %v, want %+v", q, got, err, want)
			}
		}
		if c, _ := s.Query(ctx, fraud.VelocityQuery{Caller: caller, Since: since, Midnight: midnight}); c.CallsToday != 1 || c.PaymentsCaller != 3 {
			t.Errorf("query: calls today %d, payments %d, want 1 and 3", c.CallsToday, c.PaymentsCaller)
		}
		if _, err := s.Query(ctx, fraud.VelocityQuery{CardToken: "4111111111111111"}); !errors.Is(err, fraud.ErrSecret) || strings.Contains(err.Error(), "4111") {
			t.Errorf("query with a card number as token: %v", err)
		}
		var leaked int
		if err := s.DB().QueryRow(s.q(`SELECT COUNT(*) FROM fraud_velocity WHERE caller_token LIKE ? OR customer_token LIKE ? OR card_token LIKE ?`),
			"%7700900%", "%CUST%", "%4111%").Scan(&leaked); err != nil || leaked != 0 {
			t.Errorf("%d velocity rows hold a number, customer id or card (%v)", leaked, err)
		}

		// Purge: rows older than the interactions' retention go.
		res, err := s.Purge(ctx, PurgeOptions{Now: now, Actor: "retention", Retention: Retention{Interactions: 24 * time.Hour}})
		if err != nil || res.Velocity != 1 {
			t.Errorf("purge: %+v %v, want 1 velocity row", res, err)
		}
		// Anonymise the caller: their rows go; the other caller's stay.
		if _, err := s.Anonymise(ctx, AnonymiseOptions{Number: caller, Actor: "cli:ops"}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, caller, "", now.Add(-24*time.Hour), now); c.PaymentsCaller != 0 {
			t.Errorf("after anonymise: %+v", c)
		}
		if c, _ := s.Counts(ctx, other, "", now.Add(-24*time.Hour), now); c.PaymentsCaller != 1 {
			t.Errorf("other caller after anonymise: %+v", c)
		}
	})
}

// TestVelocityQueriesUseIndexes: on SQLite each velocity count searches
// an index, never scans the table.
func TestVelocityQueriesUseIndexes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "cloak.db"), testPolicy)
	for col, index := range map[string]string{"caller_token": "fraud_velocity_caller", "customer_token": "fraud_velocity_customer",
		"card_token": "fraud_velocity_card"} {
		plan := queryPlan(t, s, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN declined THEN 1 ELSE 0 END), 0),
 COUNT(DISTINCT NULLIF(card_token, '')) FROM fraud_velocity WHERE `+col+` = ? AND at >= ?`, "x", 0)
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX "+index) && !strings.Contains(p, "USING COVERING INDEX "+index) {
			t.Errorf("%s: plan %q does not use %s", col, p, index)
		}
	}
	// Query's statement with every branch: each searches its index.
	var plan []string
	for _, detail := range queryPlan(t, s, strings.Join(velocityBranches[:], " UNION ALL "), "x", 0, "x", 0, "x", 0, "x", 0) {
		if strings.HasPrefix(detail, "SCAN") || strings.HasPrefix(detail, "SEARCH") {
			plan = append(plan, detail)
		}
	}
	if len(plan) != 4 {
		t.Fatalf("union plan: %q", plan)
	}
	for i, index := range []string{"fraud_velocity_caller", "fraud_velocity_caller", "fraud_velocity_customer", "fraud_velocity_card"} {
		if !strings.HasPrefix(plan[i], "SEARCH") || !strings.Contains(plan[i], index) {
			t.Errorf("union branch %d: %q does not search %s", i, plan[i], index)
		}
	}
}

// BenchmarkVelocityCounts100k: one screening's velocity lookup (caller and
// customer) over 100 000 recorded payments of 1 000 callers.
//
//	go test -run '^$' -bench VelocityCounts100k -benchtime 2000x ./archive/
func BenchmarkVelocityCounts100k(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "cloak.db")
			if engine == "postgres" {
				dsn = pgtest.DSN(b)
			}
			s := openTest(b, dsn, testPolicy)
			ctx := context.Background()
			now := time.Now()
			tx, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			st, err := tx.Prepare(s.q(`INSERT INTO fraud_velocity (at, caller_token, customer_token, card_token, declined) VALUES (?, ?, ?, ?, ?)`))
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < 100_000; i++ {
				caller := fmt.Sprintf("+4477009%05d", i%1000)
				cust := fmt.Sprintf("C-%d", i%1000)
				if _, err := st.Exec(now.Add(-time.Duration(i%48)*time.Hour).UnixMilli(), s.velocityToken(velocityCaller, caller),
					s.velocityToken(velocityCustomer, cust), cardToken(i%20000), i%10 == 0); err != nil {
					b.Fatal(err)
				}
			}
			st.Close()
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			if engine == "postgres" {
				s.DB().Exec(`ANALYZE fraud_velocity`)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := s.Counts(ctx, fmt.Sprintf("+4477009%05d", i%1000), fmt.Sprintf("C-%d", i%1000), now.Add(-24*time.Hour), now)
				if err != nil || c.PaymentsCaller == 0 {
					b.Fatalf("%+v %v", c, err)
				}
				// And the card's (one screening asks all three).
				if _, _, err := s.CardCounts(ctx, cardToken(i%20000), now.Add(-24*time.Hour)); err != nil {
					b.Fatalf("card: %v", err)
				}
			}
		})
	}
}

// TestVelocityArrivals: each recorded arrival counts in the caller's
// calls_today since midnight and in nothing else; the row holds a token,
// not the number; anonymise deletes the caller's arrivals.
func TestVelocityArrivals(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		midnight := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
		const caller, other = "+447700900123", "+447700900999"
		for i, at := range []time.Time{midnight.Add(-time.Hour), midnight.Add(time.Hour), midnight.Add(2 * time.Hour), midnight.Add(3 * time.Hour)} {
			if err := s.RecordArrival(ctx, at, caller, fmt.Sprint("call-", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordArrival(ctx, midnight.Add(time.Hour), other, "call-x"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordPayment(ctx, VelocityPayment{At: midnight.Add(time.Hour), Caller: caller, CardToken: cardToken(1)}); err != nil {
			t.Fatal(err)
		}
		c, err := s.Counts(ctx, caller, "", midnight.Add(-24*time.Hour), midnight)
		if err != nil {
			t.Fatal(err)
		}
		if want := (fraud.Counts{CallsToday: 3, PaymentsCaller: 1, CardsCaller: 1}); c != want {
			t.Errorf("counts %+v, want %+v (arrivals must not count as payments)", c, want)
		}
		var leaked int
		if err := s.DB().QueryRow(s.q(`SELECT COUNT(*) FROM fraud_velocity WHERE caller_token LIKE ?`), "%7700900%").Scan(&leaked); err != nil || leaked != 0 {
			t.Errorf("%d rows hold the number (%v)", leaked, err)
		}
		if _, err := s.Anonymise(ctx, AnonymiseOptions{Number: caller, Actor: "cli:ops"}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, caller, "", midnight.Add(-24*time.Hour), midnight); c.CallsToday != 0 {
			t.Errorf("after anonymise calls_today %d", c.CallsToday)
		}
		if c, _ := s.Counts(ctx, other, "", midnight.Add(-24*time.Hour), midnight); c.CallsToday != 1 {
			t.Errorf("other caller after anonymise: %+v", c)
		}
	})
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN details of query.
func queryPlan(t testing.TB, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.DB().Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}
