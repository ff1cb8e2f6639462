package archive

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive/pgtest"
)

// enginesDSN runs f with the DSN of a fresh SQLite file and, unless
// -short, of a fresh PostgreSQL database.
func enginesDSN(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "cloak.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, pgtest.DSN(t)) })
}

// auditRows appends n rows about interaction id and returns them.
func auditRows(t *testing.T, s *Store, id string, n int) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	for i := 0; i < n; i++ {
		e, err := s.Audit(context.Background(), AuditEntry{Actor: "cli:ops", Action: ActionView, Interaction: id, Address: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func verifyChain(t *testing.T, s *Store) ChainReport {
	t.Helper()
	rep, err := s.VerifyChain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func mustExec(t *testing.T, s *Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB().ExecContext(context.Background(), s.q(query), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestAuditChainTamper: each way of tampering with the log that a per-row
// MAC cannot see breaks the chain at the row named.
func TestAuditChainTamper(t *testing.T) {
	cases := []struct {
		name string
		// tamper changes rows (5 of them, seq 1–5) and returns the seq of
		// the row verification must name and a word of its reason.
		tamper func(t *testing.T, s *Store, rows []AuditEntry) (int64, string)
	}{
		{"delete a middle row", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `DELETE FROM audit_log WHERE id = ?`, rows[2].ID)
			return 4, "seq 3 missing"
		}},
		{"delete the last row", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `DELETE FROM audit_log WHERE id = ?`, rows[4].ID)
			return 5, "last rows deleted"
		}},
		{"delete the first row", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `DELETE FROM audit_log WHERE id = ?`, rows[0].ID)
			return 2, "seq 1 missing"
		}},
		{"swap two rows", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `UPDATE audit_log SET seq = -1 WHERE id = ?`, rows[1].ID)
			mustExec(t, s, `UPDATE audit_log SET seq = 2 WHERE id = ?`, rows[2].ID)
			mustExec(t, s, `UPDATE audit_log SET seq = 3 WHERE id = ?`, rows[1].ID)
			return 2, "does not follow"
		}},
		{"edit a row", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `UPDATE audit_log SET actor = 'cli:nobody' WHERE id = ?`, rows[3].ID)
			return 4, "signature fails"
		}},
		{"fake a redaction", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `UPDATE audit_log SET actor = '', redacted = 'x' WHERE id = ?`, rows[1].ID)
			return 2, "signature fails"
		}},
		{"insert a copied row", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			// A copy of row 2 (its mac and chain) given seq 6 after the head.
			mustExec(t, s, `INSERT INTO audit_log (at, actor, action, interaction_id, address, detail, mac, seq, chain)
 SELECT at, actor, action, interaction_id, address, detail, mac, 6, chain FROM audit_log WHERE id = ?`, rows[1].ID)
			return 6, "signature fails"
		}},
		{"move the start", func(t *testing.T, s *Store, rows []AuditEntry) (int64, string) {
			mustExec(t, s, `DELETE FROM audit_log WHERE id = ?`, rows[0].ID)
			mustExec(t, s, `UPDATE audit_chain SET first_seq = 2, first_prev = ?`, rows[0].Chain)
			return 2, "start record"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			engines(t, testPolicy, func(t *testing.T, s *Store) {
				rows := auditRows(t, s, "a1", 5)
				for i, e := range rows {
					if e.Seq != int64(i+1) || e.Chain == "" {
						t.Fatalf("row %d: seq %d chain %q", i, e.Seq, e.Chain)
					}
				}
				if rep := verifyChain(t, s); !rep.OK() || rep.Chained != 5 || rep.HeadSeq != 5 {
					t.Fatalf("untouched chain: %+v", rep)
				}
				seq, why := c.tamper(t, s, rows)
				rep := verifyChain(t, s)
				if rep.OK() || rep.Break == nil {
					t.Fatalf("tampered chain verifies: %+v", rep)
				}
				if rep.Break.Seq != seq || !strings.Contains(rep.Break.Reason, why) {
					t.Errorf("break %+v, want seq %d and %q", *rep.Break, seq, why)
				}
				// The row found at seq: after a swap, the other one.
				var atSeq int64
				s.DB().QueryRow(s.q(`SELECT id FROM audit_log WHERE seq = ?`), seq).Scan(&atSeq)
				if rep.Break.ID != atSeq {
					t.Errorf("break names row id %d, want %d (the row at seq %d)", rep.Break.ID, atSeq, seq)
				}
			})
		})
	}
}

// TestAuditChainLegacyRows: rows from before migration 00006 (seq NULL)
// verify by their MAC as before, and the chain starts after them.
func TestAuditChainLegacyRows(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var legacy []int64
		for i := 0; i < 2; i++ {
			e := AuditEntry{At: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(), Actor: "cli:old", Action: ActionPlay, Interaction: "x"}
			if err := s.DB().QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, interaction_id) VALUES (?, ?, ?, ?) RETURNING id`),
				e.At.UnixMilli(), e.Actor, e.Action, e.Interaction).Scan(&e.ID); err != nil {
				t.Fatal(err)
			}
			mustExec(t, s, `UPDATE audit_log SET mac = ? WHERE id = ?`, e.mac(s.key), e.ID)
			legacy = append(legacy, e.ID)
		}
		rows := auditRows(t, s, "y", 3)
		if rows[0].Seq != 1 {
			t.Errorf("first chained row seq %d, want 1", rows[0].Seq)
		}
		if rep := verifyChain(t, s); !rep.OK() || rep.Legacy != 2 || rep.Chained != 3 {
			t.Fatalf("report %+v", rep)
		}
		// An edited legacy row is still caught, by its MAC.
		mustExec(t, s, `UPDATE audit_log SET actor = 'cli:nobody' WHERE id = ?`, legacy[1])
		if rep := verifyChain(t, s); rep.OK() || len(rep.LegacyFailed) != 1 || rep.LegacyFailed[0] != legacy[1] || rep.Break != nil {
			t.Fatalf("edited legacy row: %+v", rep)
		}
		// A row slipped in without a seq cannot be signed without the key.
		mustExec(t, s, `INSERT INTO audit_log (at, actor, action, mac) VALUES (1, 'cli:x', 'play', 'ab')`)
		if rep := verifyChain(t, s); len(rep.LegacyFailed) != 2 {
			t.Fatalf("forged legacy row: %+v", rep)
		}
	})
}

// TestAuditChainConcurrentWriters: two Stores on one database (serve and
// the CLI, or two nodes), several goroutines each, append one chain.
func TestAuditChainConcurrentWriters(t *testing.T) {
	enginesDSN(t, func(t *testing.T, dsn string) {
		a, b := openTest(t, dsn, testPolicy), openTest(t, dsn, testPolicy)
		const workers, each = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := 0; w < workers; w++ {
			s := a
			if w%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					_, err := s.Audit(ctx, AuditEntry{Actor: fmt.Sprintf("cli:w%d", w), Action: ActionView, Interaction: "c"})
					cancel()
					if err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rep := verifyChain(t, a)
		if !rep.OK() || rep.Chained != workers*each || rep.HeadSeq != workers*each {
			t.Fatalf("after concurrent writers: %+v", rep)
		}
	})
}

// TestAuditChainSurvivesPurge: the purge blanks a purged interaction's
// chained rows (signed), drops the leading blank ones behind a signed
// checkpoint, and the chain still verifies — and still catches a delete.
func TestAuditChainSurvivesPurge(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
		old := s.FromSummary(summary("old", "+447000", now.Add(-200*24*time.Hour)), "n")
		nw := s.FromSummary(summary("new", "+447001", now.Add(-24*time.Hour)), "n")
		old.Recording, nw.Recording = nil, nil
		if err := s.Insert(ctx, []Interaction{old, nw}); err != nil {
			t.Fatal(err)
		}
		// seq 1, 2 old; 3 new; 4 old; 5 new.
		auditRows(t, s, "old", 2)
		auditRows(t, s, "new", 1)
		auditRows(t, s, "old", 1)
		keep := auditRows(t, s, "new", 1)
		res, err := s.Purge(ctx, PurgeOptions{Now: now, Actor: "retention", Retention: Retention{Interactions: 180 * 24 * time.Hour}})
		if err != nil || res.Interactions != 1 {
			t.Fatalf("purge: %+v %v", res, err)
		}
		rep := verifyChain(t, s)
		// seq 1, 2 dropped behind the checkpoint; 4 blanked; 3, 5 and the
		// purge's own row (6) kept.
		if !rep.OK() || rep.FirstSeq != 3 || rep.Chained != 4 || rep.Redacted != 1 || rep.HeadSeq != 6 {
			t.Fatalf("after purge: %+v", rep)
		}
		log, _ := s.AuditLog(ctx, "", 0)
		for _, e := range log {
			if e.Interaction == "old" || (e.Redacted != "" && e.Actor+e.Action+e.Address+e.Detail != "") {
				t.Errorf("purged interaction's row outlived it: %+v", e)
			}
		}
		mustExec(t, s, `DELETE FROM audit_log WHERE id = ?`, keep[0].ID)
		if rep := verifyChain(t, s); rep.Break == nil || rep.Break.Seq != 6 || !strings.Contains(rep.Break.Reason, "seq 5 missing") {
			t.Fatalf("delete after purge: %+v", rep)
		}
	})
}
