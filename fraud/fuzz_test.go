package fraud

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzScreen feeds hostile caller numbers and participant data (they come
// from SIP headers and flows): Screen never panics, and whatever it
// returns never carries a Luhn-valid card number.
func FuzzScreen(f *testing.F) {
	for _, s := range []string{"+447700900123", "07700 900666", "sip:+1@x;user=phone", "4111 1111 1111 1111", "bad@example.com", "", "\x00\xff", strings.Repeat("9", 300)} {
		f.Add(s, s, s)
	}
	rules, err := Compile("fuzz", []Rule{{Name: "any", When: `caller != "" || email != "" || data["k"] startsWith "4"`, Score: 1}})
	if err != nil {
		f.Fatal(err)
	}
	sc := 5
	ix, _ := NewIndex([]Entry{{Type: TypePhone, Value: "+447700900666", Score: &sc}, {Type: TypeSource, Value: "10.0.0.0/8"}}, nil)
	s := NewScreener(Settings{MinimumScore: 1, Normaliser: Normaliser{CountryCode: "44"}, Velocity: &MemVelocity{},
		Now: func() time.Time { return time.Unix(0, 0) }}, ix, rules)
	f.Fuzz(func(t *testing.T, caller, email, v string) {
		a := Attributes{Caller: caller, Source: netip.MustParseAddr("10.1.1.1"), Data: map[string]string{"email": email, "k": v, v: "x"}}
		d, err := s.Screen(context.Background(), a)
		if err != nil {
			if !errors.Is(err, ErrSecret) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, m := range d.Matches {
			if HasPAN(m.Value) || HasPAN(m.Comment) {
				t.Fatal("a card number in a match")
			}
		}
	})
}
