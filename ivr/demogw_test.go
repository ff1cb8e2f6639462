package ivr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDemoGateway(t *testing.T) {
	h := DemoGateway(testNow)
	post := func(body string) (int, GatewayResponse) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/pay", strings.NewReader(body)))
		var resp GatewayResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response %q is not JSON: %v", rec.Body.String(), err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		return rec.Code, resp
	}
	req := func(card, exp, cvv string) string {
		return `{"card_number":"` + card + `","expiry":"` + exp + `","cvv":"` + cvv + `","amount":"10.00","currency":"GBP"}`
	}
	for name, tc := range map[string]struct {
		body           string
		status         int
		result, reason string
		last4          string
	}{
		"approved visa":        {req(visa, "1230", "123"), 200, GatewayApproved, "", "1111"},
		"approved this month":  {req(mastercard, "1126", "1234"), 200, GatewayApproved, "", "4444"},
		"luhn fails":           {req(badLuhn, "1230", "123"), 200, GatewayDeclined, ReasonInvalidCard, "1112"},
		"too short":            {req("411111111111", "1230", "123"), 200, GatewayDeclined, ReasonInvalidCard, "1111"},
		"expired last month":   {req(visa, "1026", "123"), 200, GatewayDeclined, ReasonExpired, "1111"},
		"month 13":             {req(visa, "1330", "123"), 200, GatewayDeclined, ReasonExpired, "1111"},
		"cvv too short":        {req(visa, "1230", "12"), 200, GatewayDeclined, ReasonInvalidCVV, "1111"},
		"generic decline card": {req(declineMe, "1230", "123"), 200, GatewayDeclined, ReasonCardDeclined, "0002"},
		"not json":             {"card=1", 400, GatewayError, ReasonBadRequest, ""},
		"missing cvv":          {`{"card_number":"` + visa + `","expiry":"1230"}`, 400, GatewayError, ReasonBadRequest, ""},
		"number not string":    {`{"card_number":4111,"expiry":"1230","cvv":"123"}`, 400, GatewayError, ReasonBadRequest, ""},
		"too large":            {`{"amount":"` + strings.Repeat("9", 5000) + `"}`, 413, GatewayError, ReasonBadRequest, ""},
	} {
		code, resp := post(tc.body)
		if code != tc.status || resp.Result != tc.result || resp.Reason != tc.reason || resp.CardLast4 != tc.last4 {
			t.Errorf("%s: got %d %+v, want %d %s/%s last4 %q", name, code, resp, tc.status, tc.result, tc.reason, tc.last4)
		}
		if tc.result == GatewayApproved && !strings.HasPrefix(resp.Reference, "DEMO-") {
			t.Errorf("%s: reference %q", name, resp.Reference)
		}
	}
	// References are unique per approval.
	_, a := post(req(visa, "1230", "123"))
	_, b := post(req(visa, "1230", "123"))
	if a.Reference == b.Reference {
		t.Errorf("references repeat: %s", a.Reference)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pay", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if strings.Contains(rec.Body.String(), visa) {
		t.Errorf("response echoes the card")
	}
}

func TestDemoGatewayNeverEchoesCard(t *testing.T) {
	h := DemoGateway(nil) // real clock
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"card_number":"`+visa+`","expiry":"`+time.Now().AddDate(1, 0, 0).Format("0106")+`","cvv":"123"}`)))
	assertNoCard(t, "gateway response", rec.Body.String())
	if !strings.Contains(rec.Body.String(), GatewayApproved) {
		t.Errorf("response %s", rec.Body.String())
	}
	var req GatewayRequest
	if err := json.Unmarshal([]byte(`{"card_number":"`+visa+`","expiry":"1230","cvv":"123"}`), &req); err != nil {
		t.Fatal(err)
	}
	for _, out := range formats(req) {
		assertNoCard(t, "GatewayRequest", out)
	}
}

func TestLuhnAndExpiry(t *testing.T) {
	for card, want := range map[string]bool{
		visa: true, mastercard: true, declineMe: true, "378282246310005": true,
		badLuhn: false, "": false, "4111-1111": false, "18": true, "19": false,
	} {
		if got := luhnValid([]byte(card)); got != want {
			t.Errorf("luhn(len %d, ends %q) = %v, want %v", len(card), card[max(0, len(card)-2):], got, want)
		}
	}
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	for exp, want := range map[string]bool{
		"1126": true, "1226": true, "0127": true, "1026": false, "1225": false,
		"0026": false, "1326": false, "1247": false, "126": false, "11a6": false, "12345": false,
	} {
		if got := expiryValid([]byte(exp), now); got != want {
			t.Errorf("expiry %q = %v, want %v", exp, got, want)
		}
	}
}

func BenchmarkLuhn(b *testing.B) {
	card := []byte(visa)
	b.ReportAllocs()
	for b.Loop() {
		if !luhnValid(card) {
			b.Fatal("luhn")
		}
	}
}

func BenchmarkRequestBody(b *testing.B) {
	sc := newScope()
	sc.setSecret("card", newSecret([]byte(visa)))
	sc.setSecret("exp", newSecret([]byte("1230")))
	d := &DataAction{PaymentGateway: true, Send: map[string]string{"card_number": "card", "expiry": "exp"}, Constants: map[string]string{"amount": "10.00"}}
	st := &run{}
	b.ReportAllocs()
	for b.Loop() {
		body, err := st.requestBody(d, sc, false)
		if err != nil || len(body) == 0 {
			b.Fatal(err)
		}
		wipeBytes(body)
	}
}

// TestDemoGatewayAuthoriseCaptureVoid: capture:false authorises only; a
// reference is captured or voided once, by a request carrying no card.
func TestDemoGatewayAuthoriseCaptureVoid(t *testing.T) {
	g := NewDemoGW(testNow)
	post := func(body string) (int, GatewayResponse) {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/pay", strings.NewReader(body)))
		var resp GatewayResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response %q: %v", rec.Body.String(), err)
		}
		assertNoCard(t, "gateway response", rec.Body.String())
		return rec.Code, resp
	}
	card := `"card_number":"` + visa + `","expiry":"1230","cvv":"123"`
	code, sale := post(`{` + card + `}`)
	if code != 200 || sale.Status != StatusCaptured {
		t.Fatalf("sale: %d %+v", code, sale)
	}
	_, auth := post(`{` + card + `,"capture":false}`)
	if auth.Result != GatewayApproved || auth.Status != StatusAuthorised {
		t.Fatalf("authorise: %+v", auth)
	}
	if st, _ := g.Status(auth.Reference); st != StatusAuthorised {
		t.Fatalf("status %q", st)
	}
	_, auth2 := post(`{` + card + `,"capture":false}`)
	for name, tc := range map[string]struct {
		body   string
		code   int
		reason string
	}{
		"sale cannot be captured": {`{"operation":"capture","reference":"` + sale.Reference + `"}`, 409, ReasonNotAuthorised},
		"unknown reference":       {`{"operation":"void","reference":"DEMO-999999"}`, 404, ReasonUnknownRef},
		"bad operation":           {`{"operation":"refund","reference":"` + auth.Reference + `"}`, 400, ReasonBadRequest},
		"no reference":            {`{"operation":"capture"}`, 400, ReasonBadRequest},
		"card with an operation":  {`{` + card + `,"operation":"capture","reference":"` + auth.Reference + `"}`, 400, ReasonBadRequest},
	} {
		if code, resp := post(tc.body); code != tc.code || resp.Reason != tc.reason {
			t.Errorf("%s: %d %+v, want %d %s", name, code, resp, tc.code, tc.reason)
		}
	}
	if code, resp := post(`{"operation":"capture","reference":"` + auth.Reference + `"}`); code != 200 || resp.Status != StatusCaptured {
		t.Fatalf("capture: %d %+v", code, resp)
	}
	if code, resp := post(`{"operation":"void","reference":"` + auth.Reference + `"}`); code != 409 || resp.Status != StatusCaptured {
		t.Fatalf("void after capture: %d %+v", code, resp)
	}
	if code, resp := post(`{"operation":"void","reference":"` + auth2.Reference + `"}`); code != 200 || resp.Status != StatusVoided {
		t.Fatalf("void: %d %+v", code, resp)
	}
	if code, _ := post(`{"operation":"capture","reference":"` + auth2.Reference + `"}`); code != 409 {
		t.Fatalf("capture after void: %d", code)
	}
	if st, _ := g.Status(auth2.Reference); st != StatusVoided {
		t.Fatalf("status %q", st)
	}
}
