package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

func TestFraudEntries(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		forty := 40
		at := time.UnixMilli(1765000000000).UTC()
		in := []fraud.Entry{
			{Type: fraud.TypePhone, Value: "+447700900666", Comment: "chargeback", AddedBy: "cli:test", Added: at},
			{Type: fraud.TypeEmail, Value: "bad@example.com", Score: &forty},
		}
		if err := s.Add(ctx, in...); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, "")
		if err != nil || len(got) != 2 {
			t.Fatalf("list: %v %v", got, err)
		}
		// All has what an index needs, in no order.
		all, err := s.All(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("all: %v %v", all, err)
		}
		for _, e := range all {
			if e.Type == fraud.TypeEmail && (e.Score == nil || *e.Score != 40) || e.Type == fraud.TypePhone && (e.Score != nil || e.Comment != "chargeback") {
				t.Fatalf("all: %+v", e)
			}
		}
		// sorted by type: email before phone
		if got[0].Type != fraud.TypeEmail || *got[0].Score != 40 || got[1].Score != nil || got[1].Comment != "chargeback" ||
			got[1].AddedBy != "cli:test" || !got[1].Added.Equal(at) {
			t.Fatalf("round trip: %+v %+v", got[0], got[1])
		}
		// Add replaces.
		if err := s.Add(ctx, fraud.Entry{Type: fraud.TypeEmail, Value: "bad@example.com", Comment: "again"}); err != nil {
			t.Fatal(err)
		}
		emails, _ := s.List(ctx, fraud.TypeEmail)
		if len(emails) != 1 || emails[0].Score != nil || emails[0].Comment != "again" {
			t.Fatalf("replace: %+v", emails)
		}
		// All or none: one bad entry adds nothing.
		err = s.Add(ctx, fraud.Entry{Type: fraud.TypePostcode, Value: "SW1A1AA"}, fraud.Entry{Type: "nope", Value: "x"})
		if !errors.Is(err, fraud.ErrType) {
			t.Fatalf("bad type: %v", err)
		}
		// No card in a comment, even through the store directly.
		err = s.Add(ctx, fraud.Entry{Type: fraud.TypePostcode, Value: "SW1A1AA", Comment: "card 4111 1111 1111 1111"})
		if !errors.Is(err, fraud.ErrSecret) || strings.Contains(err.Error(), "4111") {
			t.Fatalf("secret comment: %v", err)
		}
		if pc, _ := s.List(ctx, fraud.TypePostcode); len(pc) != 0 {
			t.Fatalf("partial add: %+v", pc)
		}
		if err := s.Remove(ctx, fraud.TypePhone, "+447700900666"); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, fraud.TypePhone, "+447700900666"); !errors.Is(err, fraud.ErrNotFound) {
			t.Fatalf("remove twice: %v", err)
		}
		// Many entries go in batches; a key twice in one Add: the later wins.
		var many []fraud.Entry
		for i := range 1203 {
			many = append(many, fraud.Entry{Type: fraud.TypeCustomerID, Value: fmt.Sprintf("C%d", i), Comment: "first"})
		}
		// In C7's own batch: one statement may not upsert a row twice.
		many = slices.Insert(many, 10, fraud.Entry{Type: fraud.TypeCustomerID, Value: "C7", Comment: "second"})
		if err := s.Add(ctx, many...); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.List(ctx, fraud.TypeCustomerID); len(ids) != 1203 {
			t.Fatalf("batches: %d customer ids, want 1203", len(ids))
		}
		for _, e := range mustList(t, s, fraud.TypeCustomerID) {
			if e.Value == "C7" && e.Comment != "second" || e.Value == "C8" && e.Comment != "first" {
				t.Fatalf("upsert order: %+v", e)
			}
		}
		if _, err := s.DB().Exec(`DELETE FROM fraud_entries WHERE type = 'customer_id'`); err != nil {
			t.Fatal(err)
		}
		// The index builds from the store.
		all, _ = s.All(ctx)
		ix, err := fraud.NewIndex(all, map[fraud.Type]int{fraud.TypeEmail: 60})
		if err != nil || ix.Len() != 1 {
			t.Fatalf("index: %v", err)
		}
	})
}

func TestFraudHolds(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		h, err := s.CreateHold(ctx, Hold{Interaction: "i-1", Code: HoldAuto, Score: 150, Minimum: 100,
			Matches:          []fraud.Match{{Kind: "static", Type: fraud.TypePhone, Value: "+447700900666", Score: 150}},
			GatewayReference: "DEMO-000001", CreatedBy: "node:a"}, "")
		if err != nil || h.ID == 0 || h.Status != HoldOpen {
			t.Fatalf("create: %+v %v", h, err)
		}
		h2, err := s.CreateHold(ctx, Hold{Interaction: "i-2", Code: HoldManual, CreatedBy: "alice"}, "odd caller")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateHold(ctx, Hold{Code: "other"}, ""); !errors.Is(err, ErrHold) {
			t.Fatalf("bad code: %v", err)
		}
		if _, err := s.CreateHold(ctx, Hold{Code: HoldManual}, "card 4111111111111111"); !errors.Is(err, fraud.ErrSecret) {
			t.Fatalf("card in note: %v", err)
		}
		open, err := s.Holds(ctx, HoldOpen)
		if err != nil || len(open) != 2 || open[0].Matches[0].Value != "+447700900666" || open[0].GatewayReference != "DEMO-000001" {
			t.Fatalf("open: %+v %v", open, err)
		}
		if err := s.DecideHold(ctx, h.ID, HoldReleased, "bob", "", time.Time{}); !errors.Is(err, ErrHold) {
			t.Fatalf("no comment: %v", err)
		}
		if err := s.DecideHold(ctx, h.ID, HoldReleased, "bob", "called back, genuine", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.DecideHold(ctx, h.ID, HoldRejected, "carol", "too late", time.Time{}); !errors.Is(err, ErrHoldDecided) {
			t.Fatalf("decide twice: %v", err)
		}
		if err := s.DecideHold(ctx, 999, HoldRejected, "carol", "x", time.Time{}); !errors.Is(err, ErrNoHold) {
			t.Fatalf("unknown: %v", err)
		}
		if err := s.CommentHold(ctx, h2.ID, "bob", "waiting for the customer"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetHold(ctx, h.ID)
		if err != nil || got.Status != HoldReleased || got.DecidedBy != "bob" || got.Decided.IsZero() ||
			len(got.Notes) != 1 || got.Notes[0].Kind != NoteRelease {
			t.Fatalf("released: %+v %v", got, err)
		}
		got2, _ := s.GetHold(ctx, h2.ID)
		if len(got2.Notes) != 2 || got2.Notes[0].Kind != NoteCreate || got2.Notes[1].Text != "waiting for the customer" {
			t.Fatalf("thread: %+v", got2.Notes)
		}
		if _, err := s.GetHold(ctx, 999); !errors.Is(err, ErrNoHold) {
			t.Fatalf("get unknown: %v", err)
		}
		if rel, _ := s.Holds(ctx, HoldReleased); len(rel) != 1 {
			t.Fatalf("released list: %+v", rel)
		}
	})
}

func mustList(t *testing.T, s *Store, typ fraud.Type) []fraud.Entry {
	t.Helper()
	es, err := s.List(context.Background(), typ)
	if err != nil {
		t.Fatal(err)
	}
	return es
}
