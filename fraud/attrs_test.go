package fraud

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// testCards are standard test card numbers; they must never be held.
var testCards = []string{"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4000000000000002"}

func TestHasPAN(t *testing.T) {
	for _, c := range testCards {
		for _, s := range []string{c, "card " + c + " thanks", c[:4] + " " + c[4:8] + " " + c[8:], c[:4] + "-" + c[4:]} {
			if !HasPAN(s) {
				t.Errorf("HasPAN missed a test card (len %d) in a %d-byte string", len(c), len(s))
			}
		}
	}
	for _, s := range []string{"", "+447700900123", "411111", "1234", "2026-12-07 04:13", "4111111111111112", "order 12345678"} {
		if HasPAN(s) {
			t.Errorf("HasPAN(%q) = true", s)
		}
	}
}

// TestCardSecretsRefused: no way in for a card number, whatever the field.
func TestCardSecretsRefused(t *testing.T) {
	s := NewScreener(Settings{MinimumScore: 1}, nil, nil)
	for _, card := range testCards {
		cases := map[string]Attributes{
			"data value":   {Data: map[string]string{"note": "card " + card}},
			"data key":     {Data: map[string]string{card: "x"}},
			"caller":       {Caller: card},
			"agent":        {Agent: card},
			"payment bin":  {Payment: &Payment{BIN: card, Last4: card[len(card)-4:]}},
			"payment tok":  {Payment: &Payment{BIN: card[:6], Last4: card[len(card)-4:], CardToken: card}},
			"brand":        {Payment: &Payment{BIN: card[:6], Last4: card[len(card)-4:], Brand: card}},
			"last4 is pan": {Payment: &Payment{BIN: card[:6], Last4: card}},
		}
		for name, a := range cases {
			d, err := s.Screen(context.Background(), a)
			if !errors.Is(err, ErrSecret) {
				t.Errorf("%s: err %v, want ErrSecret", name, err)
			}
			if err != nil && strings.Contains(err.Error(), card) {
				t.Errorf("%s: error quotes the card", name)
			}
			if len(d.Matches) != 0 {
				t.Errorf("%s: decision made", name)
			}
		}
	}
	for _, k := range []string{"card_number", "CVV", "cvc2", "expiry", "Card-Number", "pan", "card_pan", "security_code"} {
		a := Attributes{Data: map[string]string{k: "x"}}
		if err := a.Check(); !errors.Is(err, ErrSecret) {
			t.Errorf("key %q: err %v, want ErrSecret", k, err)
		}
	}
	for _, k := range []string{"company", "email", "postcode", "span", "expected"} {
		a := Attributes{Data: map[string]string{k: "x"}}
		if err := a.Check(); err != nil {
			t.Errorf("key %q: %v", k, err)
		}
	}
	ok := Attributes{Payment: &Payment{BIN: "411111", Last4: "1111", CardToken: strings.Repeat("ab", 32)}}
	if err := ok.Check(); err != nil {
		t.Fatalf("bin+last4+token refused: %v", err)
	}
	// Static data and rules refuse one too.
	for _, card := range testCards {
		e := Entry{Type: TypeCustomerID, Value: card}
		if err := e.Normalise(Normaliser{}); !errors.Is(err, ErrSecret) {
			t.Errorf("entry: err %v, want ErrSecret", err)
		}
		if _, err := Compile("t", []Rule{{Name: "r", When: `bin == "` + card + `"`, Score: 1}}); !errors.Is(err, ErrRule) || strings.Contains(err.Error(), card) {
			t.Errorf("rule with a card: err %v", err)
		}
	}
}

func TestNormalise(t *testing.T) {
	n := Normaliser{CountryCode: "44"}
	phones := map[string]string{
		"+44 7700 900123":            "+447700900123",
		"07700 900123":               "+447700900123",
		"0044 (7700) 900-123":        "+447700900123",
		"447700900123":               "+447700900123",
		"7700900123":                 "+447700900123",
		"sip:+447700900123@10.0.0.1": "+447700900123",
		"tel:+1-202-555-0100;ext=1":  "+12025550100",
	}
	for in, want := range phones {
		got, err := n.Phone(in)
		if err != nil || got != want {
			t.Errorf("Phone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "+1234", "+1234567890123456", "07700 900123x", "+44+7700"} {
		if got, err := n.Phone(in); !errors.Is(err, ErrValue) {
			t.Errorf("Phone(%q) = %q, %v; want ErrValue", in, got, err)
		}
	}
	if _, err := (Normaliser{}).Phone("07700900123"); !errors.Is(err, ErrValue) {
		t.Errorf("national number without country code accepted")
	}
	if got, _ := n.Email("  Fraud@Example.COM "); got != "fraud@example.com" {
		t.Errorf("Email = %q", got)
	}
	for _, in := range []string{"", "a@", "@b", "a@b@c", "a b@c"} {
		if _, err := n.Email(in); !errors.Is(err, ErrValue) {
			t.Errorf("Email(%q) accepted", in)
		}
	}
	if got, _ := n.Postcode("sw1a 1aa"); got != "SW1A1AA" {
		t.Errorf("Postcode = %q", got)
	}
	if got, _ := n.Postcode("12345-6789"); got != "12345-6789" {
		t.Errorf("extended Postcode = %q", got)
	}
	if _, err := n.Postcode("SW1A;1AA"); !errors.Is(err, ErrValue) {
		t.Error("postcode with ; accepted")
	}
	src := map[string]string{"192.0.2.7": "192.0.2.7/32", "192.0.2.77/24": "192.0.2.0/24", "::ffff:192.0.2.7": "192.0.2.7/32", "2001:db8::1/32": "2001:db8::/32", "::ffff:10.1.2.3/104": "10.0.0.0/8"}
	for in, want := range src {
		got, err := n.Value(TypeSource, in)
		if err != nil || got != want {
			t.Errorf("Source(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := n.Value(TypeSource, "300.1.1.1"); !errors.Is(err, ErrValue) {
		t.Error("bad address accepted")
	}
	if _, err := n.Value("iban", "x"); !errors.Is(err, ErrType) {
		t.Error("unknown type accepted")
	}
	_ = netip.Addr{}
}

// TestLuhnValidPhoneNumbersPass: one 13-15 digit phone number in ten passes
// Luhn; written internationally it is a caller, not a card.
func TestLuhnValidPhoneNumbersPass(t *testing.T) {
	var phone string
	for x := '0'; x <= '9'; x++ {
		if p := "+8613812345" + "67" + string(x); HasPAN(p) {
			phone = p
			break
		}
	}
	if phone == "" {
		t.Fatal("no Luhn-valid phone found")
	}
	s := NewScreener(Settings{MinimumScore: 1}, nil, nil)
	for _, a := range []Attributes{{Caller: phone}, {Caller: "sip:" + phone + "@192.0.2.1"}, {Data: map[string]string{"phone": phone}}, {Caller: "00" + phone[1:]}} {
		if _, err := s.Screen(context.Background(), a); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	e := Entry{Type: TypePhone, Value: phone}
	if err := e.Normalise(Normaliser{}); err != nil {
		t.Errorf("phone entry: %v", err)
	}
	// Not written as a phone number, the same digits are refused; a
	// 16-digit card with a + is still refused.
	e = Entry{Type: TypeCustomerID, Value: phone[1:]}
	if err := e.Normalise(Normaliser{}); !errors.Is(err, ErrSecret) {
		t.Errorf("customer id: %v", err)
	}
	for _, a := range []Attributes{{Caller: phone[1:]}, {Caller: "+" + testCards[0]}, {Data: map[string]string{"x": "+" + testCards[1]}}} {
		if _, err := s.Screen(context.Background(), a); !errors.Is(err, ErrSecret) {
			t.Errorf("%d-char caller/data accepted: %v", len(a.Caller), err)
		}
	}
}
