package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/fraud"
)

// FraudOptions configure RegisterFraud.
type FraudOptions struct {
	// Gateway captures or voids a held payment at release or reject
	// (archive.HTTPGateway on the flows' payment gateway).
	Gateway archive.GatewayOp
	// Calls finds a live call's agent, so an agent may hold the payment
	// of the call they are on before it reaches the archive; nil: only
	// archived calls are found.
	Calls interface {
		Call(id string) (call.Info, []call.Event, bool)
	}
	// Normaliser normalises static data values as screening does
	// (fraud.default_country_code).
	Normaliser fraud.Normaliser
	// OnChange, when not nil, is called after static data or rules
	// changed through the API (the node reloads at once).
	OnChange func()
}

// RegisterFraud adds the holds workbench under /api/fraud/holds, and the
// static data and rules under /api/fraud/data and /api/fraud/rules
// (fraud_data.go), to mux.
// Reading and deciding holds needs auth.PermFraudHolds (supervisor,
// admin); a manual hold and a comment need auth.PermFraudHold — an agent
// only on their own call, current or past (ownInteraction), a supervisor
// or admin on any. No cross-site requests, JSON bodies only. Every request that reads or
// changes a hold leaves a signed audit row with the signed-in user or
// token as actor:
//
//	GET  /api/fraud/holds?status=open&code=fraud-manual&limit=&offset=
//	GET  /api/fraud/holds/{id}
//	POST /api/fraud/holds                {"interaction": ID, "payment": REF, "comment": C}
//	POST /api/fraud/holds/{id}/release   {"comment": C}
//	POST /api/fraud/holds/{id}/reject    {"comment": C}
//	POST /api/fraud/holds/{id}/comments  {"comment": C}
func RegisterFraud(mux *auth.Mux, s *archive.Store, o FraudOptions) {
	f := fraudAPI{s: s, o: o}
	mux.HandleFunc("GET /api/fraud/holds", storeGuard(f.list))
	mux.HandleFunc("GET /api/fraud/holds/{id}", storeGuard(f.show))
	mux.HandleFunc("POST /api/fraud/holds", storeGuard(f.create))
	mux.HandleFunc("POST /api/fraud/holds/{id}/release", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		f.decide(w, r, archive.HoldReleased)
	}))
	mux.HandleFunc("POST /api/fraud/holds/{id}/reject", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		f.decide(w, r, archive.HoldRejected)
	}))
	mux.HandleFunc("POST /api/fraud/holds/{id}/comments", storeGuard(f.comment))
	f.registerData(mux)
}

type fraudAPI struct {
	s *archive.Store
	o FraudOptions
}

// holdStatus maps a store error to an HTTP status.
func holdStatus(err error) int {
	switch {
	case errors.Is(err, archive.ErrNoHold):
		return http.StatusNotFound
	case errors.Is(err, archive.ErrHoldDecided):
		return http.StatusConflict
	case errors.Is(err, archive.ErrHold), errors.Is(err, fraud.ErrSecret):
		return http.StatusBadRequest
	case errors.Is(err, archive.ErrGateway):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func (f fraudAPI) audit(r *http.Request, action, interaction, detail string) error {
	_, err := f.s.Audit(r.Context(), archive.AuditEntry{Actor: actor(r), Action: action, Interaction: interaction, Address: address(r), Detail: detail})
	return err
}

// holdID reads {id}: a positive integer.
func holdID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, errors.New("the hold id must be a positive integer"))
		return 0, false
	}
	return id, true
}

// fraudBody decodes a JSON body (application/json only: a browser cannot send
// it cross-origin without a CORS preflight, which this API never grants)
// of at most 64 KiB with no unknown field.
func fraudBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, errors.New("body must be "+shape))
		return false
	}
	return true
}

// list answers the holds (newest first, with their notes), filtered by
// status, code (fraud-auto or fraud-manual), limit (≤ 500) and offset.
func (f fraudAPI) list(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	flt := archive.HoldFilter{Status: v.Get("status"), Code: v.Get("code")}
	switch flt.Status {
	case "", archive.HoldOpen, archive.HoldReleased, archive.HoldRejected:
	default:
		writeError(w, http.StatusBadRequest, errors.New("status must be open, released or rejected"))
		return
	}
	if flt.Code != "" && flt.Code != archive.HoldAuto && flt.Code != archive.HoldManual {
		writeError(w, http.StatusBadRequest, fmt.Errorf("code must be %s or %s", archive.HoldAuto, archive.HoldManual))
		return
	}
	for name, dst := range map[string]*int{"limit": &flt.Limit, "offset": &flt.Offset} {
		if s := v.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 1_000_000 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("%s must be an integer from 0 to 1000000", name))
				return
			}
			*dst = n
		}
	}
	holds, err := f.s.ListHolds(r.Context(), flt)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if holds == nil {
		holds = []archive.Hold{}
	}
	if err := f.audit(r, archive.ActionFraudView, "", fmt.Sprintf("holds list %d", len(holds))); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": holds})
}

// show answers one hold with its matches and notes.
func (f fraudAPI) show(w http.ResponseWriter, r *http.Request) {
	id, ok := holdID(w, r)
	if !ok {
		return
	}
	h, err := f.s.GetHold(r.Context(), id)
	if err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	if err := f.audit(r, archive.ActionFraudView, h.Interaction, fmt.Sprintf("hold %d", id)); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// create holds an interaction's payment by hand (code fraud-manual).
func (f fraudAPI) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Interaction string `json:"interaction"`
		Payment     string `json:"payment"`
		Comment     string `json:"comment"`
	}
	if !fraudBody(w, r, &req, `{"interaction": "ID", "payment": "gateway reference", "comment": "why"} with an interaction or a payment, and a comment`) {
		return
	}
	if strings.TrimSpace(req.Comment) == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: a manual hold needs a comment saying why", archive.ErrHold))
		return
	}
	if !f.ownInteraction(w, r, strings.TrimSpace(req.Interaction)) {
		return
	}
	h, err := f.s.HoldManually(r.Context(), req.Interaction, req.Payment, actor(r), address(r), req.Comment)
	if err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

// decide releases or rejects a hold (the CLI's release and reject).
func (f fraudAPI) decide(w http.ResponseWriter, r *http.Request, status string) {
	id, ok := holdID(w, r)
	if !ok {
		return
	}
	var req struct {
		Comment string `json:"comment"`
	}
	if !fraudBody(w, r, &req, `{"comment": "why"}`) {
		return
	}
	detail, err := f.s.ResolveHold(r.Context(), id, status, actor(r), address(r), req.Comment, f.o.Gateway)
	if err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	h, err := f.s.GetHold(r.Context(), id)
	if err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": detail, "hold": h})
}

// comment adds a comment to a hold's thread.
func (f fraudAPI) comment(w http.ResponseWriter, r *http.Request) {
	id, ok := holdID(w, r)
	if !ok {
		return
	}
	var req struct {
		Comment string `json:"comment"`
	}
	if !fraudBody(w, r, &req, `{"comment": "text"}`) {
		return
	}
	if p, ok := principal(w, r); !ok {
		return
	} else if p.Scope(auth.PermFraudHold) != auth.All {
		h, err := f.s.GetHold(r.Context(), id)
		if err != nil {
			writeError(w, holdStatus(err), err)
			return
		}
		if !f.ownInteraction(w, r, h.Interaction) {
			return
		}
	}
	if err := f.s.CommentOnHold(r.Context(), id, actor(r), address(r), req.Comment); err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	h, err := f.s.GetHold(r.Context(), id)
	if err != nil {
		writeError(w, holdStatus(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

// ownInteraction answers 403 or 404 and reports false unless the caller
// may hold or comment on interaction's payment under auth.PermFraudHold:
// a supervisor or admin any; an agent only a call bridged to them — the
// live call's agent, else the archived interaction's (a past call). An
// agent must name the interaction: a payment reference alone proves no
// call.
func (f fraudAPI) ownInteraction(w http.ResponseWriter, r *http.Request, interaction string) bool {
	p, ok := principal(w, r)
	if !ok {
		return false
	}
	switch p.Scope(auth.PermFraudHold) {
	case auth.All:
		return true
	case auth.None:
		writeError(w, http.StatusForbidden, auth.ErrForbidden)
		return false
	}
	if interaction == "" {
		writeError(w, http.StatusForbidden, errors.New("agents hold the payment of their own call: give its interaction id"))
		return false
	}
	agent, found := "", false
	if f.o.Calls != nil {
		if info, _, ok := f.o.Calls.Call(interaction); ok {
			agent, found = info.Agent, true
		}
	}
	if !found {
		in, err := f.s.Get(r.Context(), interaction)
		switch {
		case errors.Is(err, archive.ErrNotFound):
			writeError(w, http.StatusNotFound, ErrNotFound)
			return false
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
			return false
		}
		agent = in.Agent
	}
	if !p.Owns(auth.PermFraudHold, agent) {
		writeError(w, http.StatusForbidden, ErrNotYourCall)
		return false
	}
	return true
}
