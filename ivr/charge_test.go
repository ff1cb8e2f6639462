package ivr

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/dtmf"
)

func chargeSecrets(t *testing.T, card, expiry, cvv string) Charge {
	t.Helper()
	var ch Charge
	for _, x := range []struct {
		dst *dtmf.Secret
		v   string
	}{{&ch.Card, card}, {&ch.Expiry, expiry}, {&ch.CVV, cvv}} {
		s, err := dtmf.NewSecret([]byte(x.v))
		if err != nil {
			t.Fatal(err)
		}
		*x.dst = s
	}
	return ch
}

// TestChargeSendsThroughThePaymentGatewayStep: an agent-assisted charge
// reaches the gateway with the card in the body only, comes back with the
// gateway's result, reference and last four, and leaves its secrets
// wiped; the trace names the step's branch, never a value.
func TestChargeSendsThroughThePaymentGatewayStep(t *testing.T) {
	const card = "4111111111111111"
	gw := DemoGateway(testNow)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		if strings.Contains(r.URL.String(), card) {
			t.Error("the card is in the URL")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		gw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	r := &Runner{Endpoints: map[string]string{"payment_gateway": srv.URL}, Now: testNow}
	ch := chargeSecrets(t, card, "1230", "737")
	ch.Amount, ch.Currency, ch.Reference = "12.50", "GBP", "order-7"
	card1, cvv1 := ch.Card, ch.CVV
	call := newFakeCall()
	res, err := r.Charge(context.Background(), call, ch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != ChargeSuccess || res.Result != GatewayApproved || res.Last4 != "1111" || !strings.HasPrefix(res.Reference, "DEMO-") {
		t.Fatalf("result %+v, want success approved, last4 1111, a DEMO reference", res)
	}
	if !bytes.Contains(body, []byte(`"card_number":"`+card+`"`)) || !bytes.Contains(body, []byte(`"order_reference":"order-7"`)) ||
		!bytes.Contains(body, []byte(`"amount":"12.50"`)) {
		t.Errorf("gateway body lacks the card, amount or order reference")
	}
	if card1.Len() != 0 || cvv1.Len() != 0 {
		t.Error("the charge's secrets were not wiped")
	}
	if !call.tookBranch("charge", "on_success") {
		t.Errorf("trace %v lacks charge:on_success", call.branches())
	}
	for _, op := range call.ops {
		if strings.Contains(op, card) || strings.Contains(op, "737") {
			t.Errorf("a call operation carries a secret: %s", op)
		}
	}
}

// TestChargeRefusesPlainHTTPBeyondLoopback: the same rule as the flows'
// payment_gateway steps; nothing is sent and the secrets are wiped.
func TestChargeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	r := &Runner{Endpoints: map[string]string{"payment_gateway": "http://192.0.2.10/pay"}, Now: testNow}
	ch := chargeSecrets(t, "4111111111111111", "1230", "737")
	card := ch.Card
	res, err := r.Charge(context.Background(), newFakeCall(), ch)
	if err != nil || res.Outcome != ChargeFailure {
		t.Fatalf("charge to plain http: %+v %v, want a failure outcome", res, err)
	}
	if card.Len() != 0 {
		t.Error("secret not wiped after a refused charge")
	}
	if _, err := r.Charge(context.Background(), newFakeCall(), Charge{}); err != nil {
		t.Fatal(err)
	}
}

// TestChargeFraudHeld: with fraud on, a payment the screening holds is
// only authorised ("capture": false), recorded as a hold, and comes back
// "held", as a flow's fraud: true step does.
func TestChargeFraudHeld(t *testing.T) {
	gw := NewDemoGW(testNow)
	var captureFalse bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		captureFalse = bytes.Contains(b, []byte(`"capture":false`))
		r.Body = io.NopCloser(bytes.NewReader(b))
		gw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	sc := &fakeScreener{hold: true}
	r := &Runner{Endpoints: map[string]string{"payment_gateway": srv.URL}, Now: testNow, Screener: sc, CardTokenKey: []byte("0123456789abcdef")}
	ch := chargeSecrets(t, "4111111111111111", "1230", "737")
	ch.Amount, ch.Currency, ch.Fraud = "12.50", "GBP", true
	res, err := r.Charge(context.Background(), fraudFakeCall{newFakeCall()}, ch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != ChargeHeld || !captureFalse || len(sc.holds) != 1 || sc.holds[0].Reference != res.Reference {
		t.Fatalf("held charge: %+v, capture false %v, holds %+v", res, captureFalse, sc.holds)
	}
	if p := sc.seen[0].Payment; p == nil || p.Last4 != "1111" || p.Amount != 12.5 || p.Currency != "GBP" {
		t.Errorf("screened %+v, want the card's facts and the amount", sc.seen[0].Payment)
	}
	if st, _ := gw.Status(res.Reference); st != StatusAuthorised {
		t.Errorf("gateway status %q, want authorised", st)
	}
}
