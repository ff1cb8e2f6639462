package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/call"
)

// paymentFake is a Backend whose payments fail as told.
type paymentFake struct {
	fakeBackend
	startErr, sessionErr error
	gotReq               call.PaymentRequest
}

func (f *paymentFake) StartPayment(id string, req call.PaymentRequest) (*call.PaymentSession, error) {
	f.gotReq = req
	return nil, f.startErr
}

func (f *paymentFake) PaymentSession(id, pid string) (*call.PaymentSession, error) {
	return nil, f.sessionErr
}

// TestPaymentRoutesErrors: each refusal gets its status, and no response
// echoes what the client sent (it could be a card typed in a box).
func TestPaymentRoutesErrors(t *testing.T) {
	const card = "4111111111111111"
	for _, tc := range []struct {
		name, method, path, body string
		start, session           error
		want                     int
	}{
		{"unknown call", "POST", "/api/calls/x/payments", `{"amount":"1.00","currency":"GBP"}`, ErrNotFound, nil, 404},
		{"bad json", "POST", "/api/calls/c1/payments", `{"amount":` + card, nil, nil, 400},
		{"unknown field in body", "POST", "/api/calls/c1/payments", `{"pan":"` + card + `"}`, nil, nil, 400},
		{"bad request", "POST", "/api/calls/c1/payments", `{"amount":"1","currency":"GBP","reference":"` + card + `"}`,
			fmt.Errorf("reference: %w", call.ErrPaymentRequest), nil, 400},
		{"not bridged", "POST", "/api/calls/c1/payments", `{"amount":"1","currency":"GBP"}`, call.ErrNotBridged, nil, 409},
		{"already open", "POST", "/api/calls/c1/payments", `{"amount":"1","currency":"GBP"}`, call.ErrPaymentActive, nil, 409},
		{"no gateway", "POST", "/api/calls/c1/payments", `{"amount":"1","currency":"GBP"}`, call.ErrNoGateway, nil, 503},
		{"no such payment", "POST", "/api/calls/c1/payments/p9/submit", "", nil, call.ErrNoPayment, 404},
		{"cancel unknown", "DELETE", "/api/calls/c1/payments/p9", "", nil, call.ErrNoPayment, 404},
		{"bad action", "POST", "/api/calls/c1/payments/p9/reveal", "", nil, nil, 404},
		{"focus without field", "POST", "/api/calls/c1/payments/p9/focus", `{}`, nil, nil, 400},
		{"clear with a card", "POST", "/api/calls/c1/payments/p9/clear", `{"field":"` + card + `"}`, nil, call.ErrNoPayment, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := &paymentFake{startErr: tc.start, sessionErr: tc.session}
			srv := httptest.NewServer(as(testAdmin, Handler(fb, Options{})))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
			}
			if strings.Contains(string(b), card) || strings.Contains(string(b), card[:8]) {
				t.Errorf("the response echoes the card: %s", b)
			}
		})
	}
}
