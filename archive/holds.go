package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
)

// The holds workbench's actions, shared by the CLI (cloak fraud …) and
// the HTTP API (/api/fraud/holds): each changes the hold and leaves a
// signed audit row, so both say the same thing the same way.

// More audit actions of the fraud workbench.
const (
	ActionFraudHold    = "fraud_hold"    // a manual hold created
	ActionFraudComment = "fraud_comment" // a comment added to a hold
	ActionFraudView    = "fraud_view"    // holds listed or one shown (API)
)

// ErrGateway: the payment gateway refused or failed a capture or void;
// the hold stays open.
var ErrGateway = errors.New("payment gateway refused")

// GatewayOp captures (ivr.OperationCapture) or voids (ivr.OperationVoid)
// the authorisation with reference at the payment gateway and returns the
// payment's new status.
type GatewayOp func(ctx context.Context, op, reference string) (string, error)

// HTTPGateway is a GatewayOp posting {"operation":op,"reference":ref} (no
// card: acting on an authorisation needs none) to the URL gatewayURL
// returns, asked only when an operation is needed.
func HTTPGateway(gatewayURL func() (string, error)) GatewayOp {
	return func(ctx context.Context, op, ref string) (string, error) {
		url, err := gatewayURL()
		if err != nil {
			return "", err
		}
		if err := ivr.SecureTarget(url); err != nil {
			return "", err
		}
		body, _ := json.Marshal(map[string]string{"operation": op, "reference": ref})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("gateway: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		client := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("gateway: %w", err)
		}
		defer resp.Body.Close()
		var gr ivr.GatewayResponse
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&gr); err != nil {
			return "", fmt.Errorf("gateway: HTTP %d, body not JSON: %w", resp.StatusCode, ErrGateway)
		}
		if resp.StatusCode != http.StatusOK || gr.Result != ivr.GatewayApproved {
			return "", fmt.Errorf("%w: %s %s: HTTP %d %s %s", ErrGateway, op, ref, resp.StatusCode, gr.Reason, gr.Status)
		}
		return gr.Status, nil
	}
}

// ResolveHold releases (status HoldReleased) or rejects (HoldRejected)
// open hold id with comment, by actor from address, and audits it. At the
// gateway, by the hold's payment reference: releasing an automatic hold
// captures the authorisation it held back; rejecting any hold voids it. A
// manual hold's release asks nothing of the gateway — the payment is where
// its flow left it (captured, unless an automatic hold held it too). A
// gateway refusal leaves the hold open (ErrGateway). It returns the audit
// row's detail ("hold 3 released, gateway DEMO-000001 captured").
func (s *Store) ResolveHold(ctx context.Context, id int64, status, actor, address, comment string, gw GatewayOp) (string, error) {
	if status != HoldReleased && status != HoldRejected {
		return "", fmt.Errorf("%w: status %q", ErrHold, status)
	}
	if strings.TrimSpace(comment) == "" {
		return "", fmt.Errorf("%w: a decision needs a comment", ErrHold)
	}
	if fraud.HasPAN(comment) {
		return "", fmt.Errorf("archive: hold %d: %w", id, fraud.ErrSecret)
	}
	h, err := s.GetHold(ctx, id)
	if err != nil {
		return "", err
	}
	if h.Status != HoldOpen {
		return "", fmt.Errorf("hold %d is %s: %w", id, h.Status, ErrHoldDecided)
	}
	op := ivr.OperationVoid
	if status == HoldReleased {
		op = ivr.OperationCapture
	}
	gwStatus := ""
	if h.GatewayReference != "" && (status == HoldRejected || h.Code == HoldAuto) {
		if gw == nil {
			return "", fmt.Errorf("hold %d left open: no payment gateway: %w", id, ErrGateway)
		}
		if gwStatus, err = gw(ctx, op, h.GatewayReference); err != nil {
			return "", fmt.Errorf("hold %d left open: %w", id, err)
		}
	}
	if err := s.DecideHold(ctx, id, status, actor, comment, time.Now()); err != nil {
		return "", err
	}
	action := ActionFraudRelease
	if status == HoldRejected {
		action = ActionFraudReject
	}
	detail := fmt.Sprintf("hold %d %s", id, status)
	if gwStatus != "" {
		detail += fmt.Sprintf(", gateway %s %s", h.GatewayReference, gwStatus)
	}
	if _, err := s.Audit(ctx, AuditEntry{Actor: actor, Action: action, Interaction: h.Interaction, Address: address, Detail: detail}); err != nil {
		return detail, err
	}
	return detail, nil
}

// HoldManually holds an interaction's payment or order for review (code
// HoldManual) with a mandatory comment: interaction, reference (the
// payment gateway's reference) or both. It is audited.
func (s *Store) HoldManually(ctx context.Context, interaction, reference, actor, address, comment string) (Hold, error) {
	interaction, reference = strings.TrimSpace(interaction), strings.TrimSpace(reference)
	switch {
	case interaction == "" && reference == "":
		return Hold{}, fmt.Errorf("%w: give an interaction id or a payment reference", ErrHold)
	case strings.TrimSpace(comment) == "":
		return Hold{}, fmt.Errorf("%w: a manual hold needs a comment saying why", ErrHold)
	case len(interaction) > 200 || len(reference) > 200 || len(comment) > 4000:
		return Hold{}, fmt.Errorf("%w: interaction, reference or comment too long", ErrHold)
	}
	h, err := s.CreateHold(ctx, Hold{Interaction: interaction, GatewayReference: reference, Code: HoldManual, CreatedBy: actor}, comment)
	if err != nil {
		return h, err
	}
	_, err = s.Audit(ctx, AuditEntry{Actor: actor, Action: ActionFraudHold, Interaction: interaction, Address: address,
		Detail: fmt.Sprintf("hold %d %s", h.ID, HoldManual)})
	return h, err
}

// CommentOnHold adds actor's comment to hold id's thread and audits it.
func (s *Store) CommentOnHold(ctx context.Context, id int64, actor, address, comment string) error {
	if len(comment) > 4000 {
		return fmt.Errorf("%w: comment too long", ErrHold)
	}
	h, err := s.GetHold(ctx, id)
	if err != nil {
		return err
	}
	if err := s.CommentHold(ctx, id, actor, comment); err != nil {
		return err
	}
	_, err = s.Audit(ctx, AuditEntry{Actor: actor, Action: ActionFraudComment, Interaction: h.Interaction, Address: address,
		Detail: fmt.Sprintf("hold %d comment", id)})
	return err
}

// HoldFilter selects holds for ListHolds.
type HoldFilter struct {
	Status string // open, released, rejected; "" every one
	Code   string // HoldAuto, HoldManual; "" both
	// Limit (default and at most 500) and Offset page the list, newest
	// first.
	Limit, Offset int
}

// ListHolds returns holds matching f, newest first, each with its notes
// (comments and decisions) in one more query.
func (s *Store) ListHolds(ctx context.Context, f HoldFilter) ([]Hold, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 500
	}
	query := `SELECT ` + holdCols + ` FROM fraud_holds WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Code != "" {
		query += ` AND code = ?`
		args = append(args, f.Code)
	}
	query += ` ORDER BY id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	holds, err := queryAll(ctx, s, "holds", query, args, scanHold)
	if err != nil || len(holds) == 0 {
		return holds, err
	}
	at := map[int64]int{}
	ids := make([]any, len(holds))
	for i, h := range holds {
		at[h.ID] = i
		ids[i] = h.ID
	}
	type note struct {
		hold int64
		HoldNote
	}
	notes, err := queryAll(ctx, s, "hold notes", `SELECT hold_id, at, author, kind, text FROM fraud_hold_notes WHERE hold_id IN (`+
		placeholders(len(ids))+`) ORDER BY hold_id, seq`, ids, func(r rowScanner) (note, error) {
		var n note
		var t int64
		err := r.Scan(&n.hold, &t, &n.Author, &n.Kind, &n.Text)
		n.At = fromMS(t)
		return n, err
	})
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		h := &holds[at[n.hold]]
		h.Notes = append(h.Notes, n.HoldNote)
	}
	return holds, nil
}
