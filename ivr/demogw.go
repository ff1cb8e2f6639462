package ivr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Demo gateway results and decline reasons (GatewayResponse.Result/Reason).
const (
	GatewayApproved = "approved"
	GatewayDeclined = "declined"
	GatewayError    = "error"

	ReasonInvalidCard   = "invalid_card"      // not 13-19 digits or fails Luhn
	ReasonExpired       = "expired"           // expiry not MMYY or in the past
	ReasonInvalidCVV    = "invalid_cvv"       // cvv not 3-4 digits
	ReasonCardDeclined  = "card_declined"     // the test card 4000000000000002
	ReasonBadRequest    = "bad_request"       // body is not the JSON object below
	ReasonUnknownRef    = "unknown_reference" // capture/void of a reference never authorised (or forgotten)
	ReasonNotAuthorised = "not_authorised"    // capture/void of a payment already captured or voided
)

// Demo gateway payment states (GatewayResponse.Status) and operations
// (GatewayRequest.Operation).
const (
	StatusAuthorised = "authorised" // approved, funds reserved, not captured
	StatusCaptured   = "captured"
	StatusVoided     = "voided"

	OperationCapture = "capture"
	OperationVoid    = "void"
)

// maxDemoPayments bounds the payments the demo gateway remembers for
// capture and void; the oldest is forgotten first.
const maxDemoPayments = 10000

// demoDeclineCard is the one Luhn-valid test card the demo gateway declines
// (the well-known "generic decline" test number), so flows can exercise their
// declined path with a valid card.
const demoDeclineCard = "4000000000000002"

// maxGatewayRequest bounds a demo gateway request body.
const maxGatewayRequest = 4096

// GatewayRequest documents the JSON object a payment-gateway data_action
// sends to DemoGateway (and which a real gateway adapter should accept):
//
//	{"card_number":"4111111111111111","expiry":"1230","cvv":"123",
//	 "amount":"10.00","currency":"GBP"}
//
// card_number, expiry (MMYY) and cvv are required; amount and currency are
// passed through by the flow's constants and ignored by the demo.
// "capture": false asks for an authorisation only (a payment held for fraud
// review): approved, status "authorised", captured or voided later by
// reference with a request carrying no card:
//
//	{"operation":"capture","reference":"DEMO-000001"}
//	{"operation":"void","reference":"DEMO-000001"}
type GatewayRequest struct {
	CardNumber digitsField `json:"card_number"`
	Expiry     digitsField `json:"expiry"`
	CVV        digitsField `json:"cvv"`
	Amount     string      `json:"amount,omitempty"`
	Currency   string      `json:"currency,omitempty"`
	// Capture false authorises only; absent or true authorises and
	// captures (a sale).
	Capture *bool `json:"capture,omitempty"`
	// Operation (capture or void) and Reference act on an authorisation.
	Operation string `json:"operation,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// GatewayResponse is DemoGateway's reply (HTTP 200 for approved and
// declined, 400 for a bad request):
//
//	{"result":"approved","reference":"DEMO-000001","card_last4":"1111"}
//	{"result":"declined","reason":"expired","card_last4":"1111"}
//	{"result":"error","reason":"bad_request"}
//
// An approved payment and a capture or void also say the payment's status
// (authorised, captured, voided); a capture or void of an unknown reference
// is 404, of a payment no longer authorised 409.
type GatewayResponse struct {
	Result    string `json:"result"`
	Reason    string `json:"reason,omitempty"`
	Reference string `json:"reference,omitempty"`
	CardLast4 string `json:"card_last4,omitempty"`
	Status    string `json:"status,omitempty"`
}

// digitsField is a JSON string held as bytes we own, so it can be wiped;
// it prints as a mask.
type digitsField []byte

// UnmarshalJSON copies a JSON string of printable ASCII (no escapes).
func (d *digitsField) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || bytes.IndexByte(b[1:len(b)-1], '\\') >= 0 {
		return errors.New("want a string of digits")
	}
	*d = append((*d)[:0], b[1:len(b)-1]...)
	return nil
}

// String prints a mask of the same length.
func (d digitsField) String() string { return string(bytes.Repeat([]byte{'*'}, len(d))) }

// Format prints the mask for every verb.
func (d digitsField) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(d.String())) }

// DemoGateway returns an http.Handler that plays a payment gateway for demos
// and tests (a *DemoGW). It accepts POST with a GatewayRequest body and
// approves a card whose number passes Luhn (13-19 digits), whose MMYY expiry
// is not before now's month and whose CVV has 3 or 4 digits; it declines
// anything else (and the test card 4000000000000002) with a reason. It logs
// nothing and wipes the request body and decoded fields before returning.
// now may be nil (time.Now).
func DemoGateway(now func() time.Time) http.Handler { return NewDemoGW(now) }

// DemoGW is the demo payment gateway: sales, authorisations, and capture or
// void of an authorisation by reference. Safe for concurrent use.
type DemoGW struct {
	now func() time.Time
	seq atomic.Uint64

	mu       sync.Mutex
	payments map[string]string // reference → status
	order    []string          // references, oldest first
}

// NewDemoGW returns a demo gateway; now may be nil (time.Now).
func NewDemoGW(now func() time.Time) *DemoGW {
	if now == nil {
		now = time.Now
	}
	return &DemoGW{now: now, payments: map[string]string{}}
}

// Status returns the status of the payment with this reference.
func (g *DemoGW) Status(reference string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.payments[reference]
	return st, ok
}

// ServeHTTP implements http.Handler.
func (g *DemoGW) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeGateway(w, http.StatusMethodNotAllowed, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	buf := make([]byte, maxGatewayRequest+1)
	defer wipeBytes(buf)
	n, err := io.ReadFull(r.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		writeGateway(w, http.StatusBadRequest, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	if n > maxGatewayRequest {
		writeGateway(w, http.StatusRequestEntityTooLarge, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	var req GatewayRequest
	defer func() {
		wipeBytes(req.CardNumber)
		wipeBytes(req.Expiry)
		wipeBytes(req.CVV)
	}()
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		writeGateway(w, http.StatusBadRequest, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	if req.Operation != "" || req.Reference != "" {
		g.operate(w, &req)
		return
	}
	if len(req.CardNumber) == 0 || len(req.Expiry) == 0 || len(req.CVV) == 0 {
		writeGateway(w, http.StatusBadRequest, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	resp := GatewayResponse{Result: GatewayDeclined}
	card := []byte(req.CardNumber)
	if len(card) > 4 && allDigits(card) {
		resp.CardLast4 = string(card[len(card)-4:])
	}
	switch {
	case len(card) < 13 || len(card) > 19 || !luhnValid(card):
		resp.Reason = ReasonInvalidCard
	case !expiryValid(req.Expiry, g.now()):
		resp.Reason = ReasonExpired
	case len(req.CVV) < 3 || len(req.CVV) > 4 || !allDigits(req.CVV):
		resp.Reason = ReasonInvalidCVV
	case string(card) == demoDeclineCard:
		resp.Reason = ReasonCardDeclined
	default:
		resp.Result = GatewayApproved
		resp.Reference = fmt.Sprintf("DEMO-%06d", g.seq.Add(1))
		resp.Status = StatusCaptured
		if req.Capture != nil && !*req.Capture {
			resp.Status = StatusAuthorised
		}
		g.remember(resp.Reference, resp.Status)
	}
	writeGateway(w, http.StatusOK, resp)
}

// remember records a payment's status, forgetting the oldest beyond
// maxDemoPayments.
func (g *DemoGW) remember(ref, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.order) >= maxDemoPayments {
		delete(g.payments, g.order[0])
		g.order = g.order[1:]
	}
	g.payments[ref] = status
	g.order = append(g.order, ref)
}

// operate captures or voids an authorisation. A request that also carries
// card fields is refused: acting on a reference never needs the card.
func (g *DemoGW) operate(w http.ResponseWriter, req *GatewayRequest) {
	if len(req.CardNumber) > 0 || len(req.Expiry) > 0 || len(req.CVV) > 0 || req.Reference == "" ||
		(req.Operation != OperationCapture && req.Operation != OperationVoid) {
		writeGateway(w, http.StatusBadRequest, GatewayResponse{Result: GatewayError, Reason: ReasonBadRequest})
		return
	}
	g.mu.Lock()
	st, ok := g.payments[req.Reference]
	switch {
	case !ok:
		g.mu.Unlock()
		writeGateway(w, http.StatusNotFound, GatewayResponse{Result: GatewayError, Reason: ReasonUnknownRef})
		return
	case st != StatusAuthorised:
		g.mu.Unlock()
		writeGateway(w, http.StatusConflict, GatewayResponse{Result: GatewayError, Reason: ReasonNotAuthorised, Reference: req.Reference, Status: st})
		return
	}
	st = StatusCaptured
	if req.Operation == OperationVoid {
		st = StatusVoided
	}
	g.payments[req.Reference] = st
	g.mu.Unlock()
	writeGateway(w, http.StatusOK, GatewayResponse{Result: GatewayApproved, Reference: req.Reference, Status: st})
}

func writeGateway(w http.ResponseWriter, status int, resp GatewayResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
