package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cloak-voip/cloak/auth"

	"github.com/cloak-voip/cloak/call"
)

// PaymentBackend is what the agent-assisted payment routes need; a Backend
// that implements it gets them (docs/PAYMENTS.md).
type PaymentBackend interface {
	// StartPayment opens a payment on call id.
	StartPayment(id string, req call.PaymentRequest) (*call.PaymentSession, error)
	// PaymentSession returns call id's open payment pid.
	PaymentSession(id, pid string) (*call.PaymentSession, error)
}

// paymentRoutes mounts the payment routes:
//
//	POST   /api/calls/{id}/payments                  open: {fields, amount, currency, reference} → 201 {id, fields}
//	GET    /api/calls/{id}/payments/{pid}            the fields' states
//	POST   /api/calls/{id}/payments/{pid}/focus      {field}: the next key goes there
//	POST   /api/calls/{id}/payments/{pid}/clear      {field}: empty it and focus it
//	POST   /api/calls/{id}/payments/{pid}/restart    empty every field
//	POST   /api/calls/{id}/payments/{pid}/submit     send to the gateway → the result
//	DELETE /api/calls/{id}/payments/{pid}            cancel
//
// No response holds a digit: states and counts, and the gateway's result
// with the last four.
//
// Every route needs auth.PermPayment: an agent only on a call bridged to
// them (ownCall), a supervisor or admin on any call.
func paymentRoutes(mux *auth.Mux, calls Backend, b PaymentBackend) {
	mux.HandleFunc("POST /api/calls/{id}/payments", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, calls, auth.PermPayment); !ok {
			return
		}
		var req call.PaymentRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			// The decoder's error could quote the body: say what is wanted.
			writeError(w, http.StatusBadRequest, errors.New(`body must be {"fields": ["card","expiry","cvv"], "amount": "12.50", "currency": "GBP", "reference": "..."}`))
			return
		}
		p, err := b.StartPayment(r.PathValue("id"), req)
		if err != nil {
			writePaymentError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": p.ID(), "fields": p.Fields()})
	})
	mux.HandleFunc("GET /api/calls/{id}/payments/{pid}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, calls, auth.PermPayment); !ok {
			return
		}
		p, err := b.PaymentSession(r.PathValue("id"), r.PathValue("pid"))
		if err != nil {
			writePaymentError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": p.ID(), "fields": p.Fields()})
	})
	mux.HandleFunc("DELETE /api/calls/{id}/payments/{pid}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, calls, auth.PermPayment); !ok {
			return
		}
		p, err := b.PaymentSession(r.PathValue("id"), r.PathValue("pid"))
		if err == nil {
			err = p.Cancel()
		}
		if err != nil {
			writePaymentError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": p.ID(), "status": "cancelled"})
	})
	mux.HandleFunc("POST /api/calls/{id}/payments/{pid}/{action}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, calls, auth.PermPayment); !ok {
			return
		}
		action := r.PathValue("action")
		switch action {
		case "focus", "clear", "restart", "submit":
		default:
			writeError(w, http.StatusNotFound, errors.New("want focus, clear, restart or submit"))
			return
		}
		var body struct {
			Field string `json:"field"`
		}
		if action == "focus" || action == "clear" {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil || body.Field == "" {
				writeError(w, http.StatusBadRequest, errors.New(`body must be {"field": "card|expiry|cvv"}`))
				return
			}
		}
		p, err := b.PaymentSession(r.PathValue("id"), r.PathValue("pid"))
		if err != nil {
			writePaymentError(w, err)
			return
		}
		switch action {
		case "focus":
			err = p.Focus(body.Field)
		case "clear":
			err = p.Clear(body.Field)
		case "restart":
			err = p.Restart()
		case "submit":
			res, err := p.Submit()
			if err != nil && res.Outcome == "" {
				writePaymentError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": p.ID(), "result": res})
			return
		}
		if err != nil {
			writePaymentError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": p.ID(), "fields": p.Fields()})
	})
}

// writePaymentError maps the payment errors to statuses. Their texts
// never carry a value the client sent.
func writePaymentError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, call.ErrNoPayment):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, call.ErrPaymentRequest), errors.Is(err, call.ErrPaymentField):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, call.ErrNoGateway):
		writeError(w, http.StatusServiceUnavailable, err)
	case errors.Is(err, call.ErrPaymentActive), errors.Is(err, call.ErrNotBridged), errors.Is(err, call.ErrNotNormal),
		errors.Is(err, call.ErrPaymentBusy), errors.Is(err, call.ErrPaymentIncomplete):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusUnprocessableEntity, err)
	}
}

func (b managerBackend) StartPayment(id string, req call.PaymentRequest) (*call.PaymentSession, error) {
	c, ok := b.m.Call(id)
	if !ok {
		return nil, ErrNotFound
	}
	return c.StartPayment(req)
}

func (b managerBackend) PaymentSession(id, pid string) (*call.PaymentSession, error) {
	c, ok := b.m.Call(id)
	if !ok {
		return nil, ErrNotFound
	}
	return c.PaymentSession(pid)
}
