package fraud

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// exampleRules are docs/FRAUD.md's examples.
const exampleRules = `rules:
  - name: unverified-high-amount
    when: payment && !verified && amount >= 500
    score: 60
    comment: caller ID not verified by the carrier and a large amount
  - name: many-cards-per-caller
    when: payment && cards_caller >= 3
    score: 50
  - name: night-foreign-card
    when: payment && hour < 6 && country not in ["GB", "IE"]
    score: 30
`

func token(c byte) string { return strings.Repeat(string(c), 64) }

func newTestScreener(t *testing.T, vel Velocity) *Screener {
	t.Helper()
	n := Normaliser{CountryCode: "44"}
	es, err := ParseCSV(strings.NewReader("type,value,score,comment\n"+
		"phone,07700 900666,,chargeback\n"+
		"email,bad@example.com,40,\n"+
		"bin,411111,10,\n"+
		"bin,41111111,15,\n"+
		"source,198.51.100.0/24,,\n"), n, "test", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := NewIndex(es, map[Type]int{TypePhone: 100, TypeSource: 25})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules("example", strings.NewReader(exampleRules))
	if err != nil {
		t.Fatal(err)
	}
	return NewScreener(Settings{MinimumScore: 100, RouteMinimumScores: map[string]int{"vip": 200}, Normaliser: n,
		BINs: BINTable{"411111": {Brand: "VISA", Country: "US"}}, Velocity: vel,
		Location: time.UTC}, ix, rules)
}

func TestDecision(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	vel := &MemVelocity{}
	for i, c := range []byte{'a', 'b', 'c', 'c'} {
		if err := vel.Record(VelocityEvent{Time: day.Add(-time.Duration(i+1) * time.Hour), Caller: "+447700900555", Payment: true, CardToken: token(c), Declined: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	_ = vel.Record(VelocityEvent{Time: day.Add(-48 * time.Hour), Caller: "+447700900555", Payment: true, CardToken: token('d')})
	if err := vel.Record(VelocityEvent{CardToken: "4111111111111111"}); !errors.Is(err, ErrSecret) {
		t.Fatalf("velocity took a card: %v", err)
	}
	s := newTestScreener(t, vel)
	pay := func(amount float64) *Payment {
		return &Payment{BIN: "41111111", Last4: "1111", Amount: amount, Currency: "gbp", CardToken: token('e')}
	}

	// Blocked number, default score 100 = minimum: hold.
	d, err := s.Screen(ctx, Attributes{Caller: "+44 7700 900666", Time: day})
	if err != nil || !d.Hold || d.Score != 100 || len(d.Matches) != 1 || d.Matches[0].Comment != "chargeback" {
		t.Fatalf("blocked number: %+v %v", d, err)
	}
	// Same on the vip route: its own minimum, proceed.
	d, _ = s.Screen(ctx, Attributes{Caller: "07700900666", Route: "vip", Time: day})
	if d.Hold || d.Minimum != 200 || d.Score != 100 {
		t.Fatalf("vip route: %+v", d)
	}
	// A clean caller with a small payment: proceed; both BIN prefixes match
	// (unique entries), nothing else.
	d, _ = s.Screen(ctx, Attributes{Caller: "+447700900123", Verstat: "TN-Validation-Passed", Time: day, Payment: pay(20)})
	if d.Hold || d.Score != 25 || len(d.Matches) != 2 {
		t.Fatalf("clean: %+v", d)
	}
	// Unverified + high amount + email + source, each once.
	d, _ = s.Screen(ctx, Attributes{Caller: "+447700900123", Verstat: "No-TN-Validation", Time: day, Payment: pay(900),
		Source: netip.MustParseAddr("198.51.100.9"), Data: map[string]string{"email": "BAD@example.com"}})
	if !d.Hold || d.Score != 25+40+25+60 {
		t.Fatalf("unverified high: %+v", d)
	}
	kinds := ""
	for _, m := range d.Matches {
		kinds += m.Kind + ":" + string(m.Type) + m.Rule + " "
	}
	if kinds != "static:email static:source static:bin static:bin rule:unverified-high-amount " {
		t.Fatalf("matches %q", kinds)
	}
	// Many cards per caller (3 distinct tokens in 24 h; the 48 h old one
	// is outside the window) and a night-time foreign card (BIN table: US).
	night := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	d, _ = s.Screen(ctx, Attributes{Caller: "+447700900555", Verstat: "TN-Validation-Passed", Time: day, Payment: pay(10)})
	if d.Score != 25+50 {
		t.Fatalf("many cards: %+v", d)
	}
	d, _ = s.Screen(ctx, Attributes{Caller: "+447700900123", Verstat: "TN-Validation-Passed", Time: night, Payment: pay(10)})
	if d.Score != 25+30 {
		t.Fatalf("night foreign: %+v", d)
	}
	// Nothing matched: never a hold, whatever the minimum.
	z := NewScreener(Settings{MinimumScore: 0}, nil, nil)
	if d, _ := z.Screen(ctx, Attributes{Caller: "+447700900123"}); d.Hold {
		t.Fatal("held with no match")
	}
	// The decision as JSON (what the workbench shows) carries no secret.
	b, _ := json.Marshal(d)
	if strings.Contains(string(b), "4111111111111111") {
		t.Fatal("card in decision")
	}
}

type failingVelocity struct{}

func (failingVelocity) Counts(context.Context, string, string, time.Time, time.Time) (Counts, error) {
	return Counts{}, errors.New("archive down")
}

func TestScreenerSwapAndFailures(t *testing.T) {
	ctx := context.Background()
	s := newTestScreener(t, failingVelocity{})
	d, err := s.Screen(ctx, Attributes{Caller: "+447700900123"})
	if err != nil || d.VelocityError == "" {
		t.Fatalf("velocity error not reported: %+v %v", d, err)
	}
	rs, err := Compile("t", []Rule{{Name: "div", When: `int(data["n"]) > 0`, Score: 5}, {Name: "all", When: "true", Score: 7}})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRules(rs)
	s.SetIndex(nil)
	d, _ = s.Screen(ctx, Attributes{Caller: "07700900666"})
	if d.Score != 7 || len(d.Matches) != 1 || len(d.RuleErrors) != 1 || d.RuleErrors[0] != "div" {
		t.Fatalf("after swap: %+v", d)
	}
}

func TestBINTable(t *testing.T) {
	tb, err := ParseBINTable(strings.NewReader("bin,brand,country\n411111,VISA,us\n41111199,VISA,gb\n"))
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := tb.Lookup("41111199"); !ok || i.Country != "GB" {
		t.Errorf("longest prefix: %+v", i)
	}
	if i, ok := tb.Lookup("4111112"); !ok || i.Country != "US" {
		t.Errorf("6-digit prefix: %+v", i)
	}
	if _, ok := tb.Lookup("510510"); ok {
		t.Error("absent BIN found")
	}
	for _, in := range []string{"bin,brand,country\n41111,VISA,US\n", "bin,brand,country\n411111,VISA\n", "bin,brand,country\n4111111111111111,VISA,US\n"} {
		_, err := ParseBINTable(strings.NewReader(in))
		var le *LineError
		if !errors.As(err, &le) || le.Line != 2 || strings.Contains(err.Error(), "4111111111111111") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestCardVelocity: payments_card and declines_card count one card's
// payments (by token) from any caller, in the window, when the Velocity
// is a CardVelocity.
func TestCardVelocity(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	vel := &MemVelocity{}
	for i, caller := range []string{"+447700900001", "+447700900002", "+447700900003"} {
		if err := vel.Record(VelocityEvent{Time: day.Add(-time.Duration(i+1) * time.Hour), Caller: caller, Payment: true, CardToken: token('f'), Declined: i > 0}); err != nil {
			t.Fatal(err)
		}
	}
	_ = vel.Record(VelocityEvent{Time: day.Add(-30 * time.Hour), Caller: "+447700900004", Payment: true, CardToken: token('f')})
	rules, err := ParseRules("card.yaml", strings.NewReader("rules:\n  - name: card-declined-elsewhere\n    when: payment && payments_card >= 3 && declines_card >= 2\n    score: 100\n"))
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := NewIndex(nil, nil)
	s := NewScreener(Settings{MinimumScore: 100, Velocity: vel, Location: time.UTC}, ix, rules)
	d, err := s.Screen(ctx, Attributes{Caller: "+447700900009", Time: day, Payment: &Payment{BIN: "41111111", Last4: "1111", CardToken: token('f')}})
	if err != nil || !d.Hold || len(d.Matches) != 1 || d.Matches[0].Rule != "card-declined-elsewhere" {
		t.Fatalf("card seen 3 times, declined twice: %+v %v", d, err)
	}
	d, _ = s.Screen(ctx, Attributes{Caller: "+447700900009", Time: day, Payment: &Payment{BIN: "41111111", Last4: "1111", CardToken: token('9')}})
	if d.Hold {
		t.Fatalf("another card held: %+v", d)
	}
}

// querier is a VelocityQuerier that records what it was asked.
type querier struct {
	MemVelocity
	asked []VelocityQuery
	c     Counts
}

func (q *querier) Query(_ context.Context, vq VelocityQuery) (Counts, error) {
	q.asked = append(q.asked, vq)
	return q.c, nil
}

// TestVelocityQuerier: a Velocity that answers every count at once is
// asked once per screening, with the caller, customer id and card token
// normalised, and every count reaches the rules.
func TestVelocityQuerier(t *testing.T) {
	day := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	vel := &querier{c: Counts{PaymentsCaller: 1, DeclinesCaller: 2, PaymentsCustomer: 3, DeclinesCustomer: 4, CardsCaller: 5, CallsToday: 6, PaymentsCard: 7, DeclinesCard: 8}}
	rules, err := ParseRules("q.yaml", strings.NewReader("rules:\n  - name: all\n    when: payments_caller == 1 && declines_caller == 2 && payments_customer == 3 && declines_customer == 4 && cards_caller == 5 && calls_today == 6 && payments_card == 7 && declines_card == 8\n    score: 100\n"))
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := NewIndex(nil, nil)
	s := NewScreener(Settings{MinimumScore: 100, Velocity: vel, Location: time.UTC, VelocityWindow: time.Hour, Normaliser: Normaliser{CountryCode: "44"}}, ix, rules)
	d, err := s.Screen(context.Background(), Attributes{Caller: "07700 900009", Time: day, Data: map[string]string{"customer_id": "c-1"},
		Payment: &Payment{BIN: "41111111", Last4: "1111", CardToken: token('f')}})
	if err != nil || !d.Hold {
		t.Fatalf("every count reaches the rules: %+v %v", d, err)
	}
	want := VelocityQuery{Caller: "+447700900009", Customer: "c-1", CardToken: token('f'), Since: day.Add(-time.Hour), Midnight: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	if len(vel.asked) != 1 || vel.asked[0] != want {
		t.Fatalf("asked %+v, want once %+v", vel.asked, want)
	}
	if _, err := s.Screen(context.Background(), Attributes{Time: day}); err != nil || len(vel.asked) != 1 {
		t.Fatalf("nothing to ask, asked anyway: %+v %v", vel.asked, err)
	}
}

// TestScreenArrival screens a call with no payment: the static phone
// entry, a trunk rule and calls_today (arrivals recorded as non-payment
// events) all count, and Against judges it by the call's own minimum.
func TestScreenArrival(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	vel := &MemVelocity{}
	sc := newTestScreener(t, vel)
	rules, err := Compile("arrival", []Rule{
		{Name: "busy-caller", When: "!payment && calls_today > 2", Score: 70},
		{Name: "grey-trunk", When: `trunk == "grey"`, Score: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc.SetRules(rules)
	caller := "+447700900123"
	for i := 1; i <= 3; i++ {
		// Each arrival is recorded before it is screened, so the third
		// call sees calls_today 3.
		if err := vel.Record(VelocityEvent{Time: day.Add(time.Duration(i) * time.Minute), Caller: caller}); err != nil {
			t.Fatal(err)
		}
		d, err := sc.Screen(ctx, Attributes{Caller: caller, Trunk: "grey", Time: day.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		want := 30
		if i == 3 {
			want = 100
		}
		if d.Score != want {
			t.Errorf("call %d: score %d, want %d (%+v)", i, d.Score, want, d.Matches)
		}
		if got := d.Against(90).Hold; got != (i == 3) {
			t.Errorf("call %d: against 90 hold %v", i, got)
		}
	}
	// Yesterday's calls do not count today.
	if err := vel.Record(VelocityEvent{Time: day.Add(-10 * time.Hour), Caller: "+447700900124"}); err != nil {
		t.Fatal(err)
	}
	d, _ := sc.Screen(ctx, Attributes{Caller: "+447700900124", Time: day})
	if d.Score != 0 || d.Against(1).Hold {
		t.Errorf("yesterday's call counted: %+v", d)
	}
	// The listed number alone: its default score 100.
	d, _ = sc.Screen(ctx, Attributes{Caller: "07700 900666", Time: day})
	if d.Score != 100 || !d.Against(100).Hold || d.Against(101).Hold {
		t.Errorf("listed caller: %+v", d)
	}
	if _, err := sc.Screen(ctx, Attributes{Caller: caller, Trunk: "4111 1111 1111 1111"}); !errors.Is(err, ErrSecret) {
		t.Errorf("trunk holding a card number: %v", err)
	}
}
