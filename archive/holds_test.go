package archive

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
)

// TestHoldActions: the workbench's shared actions on both engines — a
// manual hold needs a comment and refuses a card; release of an auto hold
// captures, of a manual one asks the gateway nothing; reject voids; a
// gateway refusal leaves the hold open; each action is audited; the list
// filters by code and carries the notes.
func TestHoldActions(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var ops []string
		refuse := false
		gw := func(_ context.Context, op, ref string) (string, error) {
			if refuse {
				return "", ErrGateway
			}
			ops = append(ops, op+" "+ref)
			return map[string]string{ivr.OperationCapture: "captured", ivr.OperationVoid: "voided"}[op], nil
		}
		if _, err := s.HoldManually(ctx, "i1", "", "api:x", "127.0.0.1", " "); !errors.Is(err, ErrHold) {
			t.Errorf("manual hold without a comment: %v", err)
		}
		if _, err := s.HoldManually(ctx, "", "", "api:x", "127.0.0.1", "why"); !errors.Is(err, ErrHold) {
			t.Errorf("manual hold of nothing: %v", err)
		}
		if _, err := s.HoldManually(ctx, "i1", "", "api:x", "", "card 4111 1111 1111 1111"); !errors.Is(err, fraud.ErrSecret) ||
			strings.Contains(err.Error(), "4111") {
			t.Errorf("manual hold with a card in the comment: %v", err)
		}
		manual, err := s.HoldManually(ctx, "i1", "REF-M", "api:x", "127.0.0.1", "coached caller")
		if err != nil || manual.Code != HoldManual {
			t.Fatalf("manual hold: %+v %v", manual, err)
		}
		auto, err := s.CreateHold(ctx, Hold{Interaction: "i2", Code: HoldAuto, Score: 120, Minimum: 100, GatewayReference: "REF-A"}, "")
		if err != nil {
			t.Fatal(err)
		}
		refuse = true
		if _, err := s.ResolveHold(ctx, auto.ID, HoldReleased, "cli:ops", "local", "ok", gw); !errors.Is(err, ErrGateway) {
			t.Errorf("release with a refusing gateway: %v", err)
		}
		if h, _ := s.GetHold(ctx, auto.ID); h.Status != HoldOpen {
			t.Errorf("hold after a gateway refusal: %s", h.Status)
		}
		refuse = false
		if err := s.CommentOnHold(ctx, auto.ID, "cli:ops", "local", "called the customer back"); err != nil {
			t.Fatal(err)
		}
		if d, err := s.ResolveHold(ctx, auto.ID, HoldReleased, "cli:ops", "local", "genuine", gw); err != nil || !strings.Contains(d, "captured") {
			t.Errorf("release auto: %q %v", d, err)
		}
		if _, err := s.ResolveHold(ctx, manual.ID, HoldReleased, "cli:ops", "local", "fine", gw); err != nil {
			t.Errorf("release manual: %v", err)
		}
		if strings.Join(ops, ",") != "capture REF-A" {
			t.Errorf("gateway operations %v: want only the auto hold's capture", ops)
		}
		if _, err := s.ResolveHold(ctx, manual.ID, HoldRejected, "cli:ops", "local", "late", gw); !errors.Is(err, ErrHoldDecided) {
			t.Errorf("reject of a released hold: %v", err)
		}
		if _, err := s.ResolveHold(ctx, 999, HoldRejected, "cli:ops", "local", "x", gw); !errors.Is(err, ErrNoHold) {
			t.Errorf("reject of no hold: %v", err)
		}
		m2, _ := s.HoldManually(ctx, "i3", "REF-V", "api:x", "", "stolen card reported")
		if _, err := s.ResolveHold(ctx, m2.ID, HoldRejected, "cli:ops", "local", "confirmed", gw); err != nil || ops[len(ops)-1] != "void REF-V" {
			t.Errorf("reject manual: %v %v", err, ops)
		}
		list, err := s.ListHolds(ctx, HoldFilter{Code: HoldManual})
		if err != nil || len(list) != 2 || list[0].ID != m2.ID || len(list[1].Notes) != 2 || list[1].Notes[0].Text != "coached caller" {
			t.Errorf("manual holds: %+v %v", list, err)
		}
		if all, _ := s.ListHolds(ctx, HoldFilter{Status: HoldReleased}); len(all) != 2 {
			t.Errorf("released holds: %d", len(all))
		}
		log, _ := s.AuditLog(ctx, "", 0)
		count := map[string]int{}
		for _, e := range log {
			count[e.Action]++
		}
		if count[ActionFraudHold] != 2 || count[ActionFraudComment] != 1 || count[ActionFraudRelease] != 2 || count[ActionFraudReject] != 1 {
			t.Errorf("audit actions %v", count)
		}
		if rep, err := s.VerifyChain(ctx); err != nil || !rep.OK() {
			t.Errorf("chain %+v %v", rep, err)
		}
	})
}
