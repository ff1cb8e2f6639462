package dtmf

import (
	"errors"
	"testing"
)

// TestPolicyCounts pins, for every policy, which source counts on a leg
// with and without telephone-event negotiated, before and after its
// first event.
func TestPolicyCounts(t *testing.T) {
	type leg struct{ negotiated, sawEvent bool }
	fresh, withTE, afterEvent := leg{false, false}, leg{true, false}, leg{true, true}
	for _, tc := range []struct {
		p                     Policy
		l                     leg
		rfc4733, inband, info bool
	}{
		{Auto, fresh, true, true, true},
		{Auto, withTE, true, true, true}, // tones count though telephone-event was negotiated
		{Auto, afterEvent, true, false, true},
		{RFC4733, withTE, true, false, true},
		{RFC4733, fresh, true, false, true},
		{Inband, afterEvent, false, true, true},
		{Info, afterEvent, false, false, true},
		{Info, fresh, false, false, true},
		{Negotiated, withTE, true, false, true},
		{Negotiated, fresh, true, true, true},
	} {
		got := [3]bool{
			tc.p.Counts(SourceRFC4733, tc.l.negotiated, tc.l.sawEvent),
			tc.p.Counts(SourceInband, tc.l.negotiated, tc.l.sawEvent),
			tc.p.Counts(SourceInfo, tc.l.negotiated, tc.l.sawEvent),
		}
		if want := [3]bool{tc.rfc4733, tc.inband, tc.info}; got != want {
			t.Errorf("%s on %+v: rfc4733/inband/info count %v, want %v", tc.p, tc.l, got, want)
		}
	}
	if Policy(42).Counts(SourceInband, false, false) || Auto.Counts(Source(0), false, false) {
		t.Error("an unknown policy or source must count nothing")
	}
}

func TestParsePolicy(t *testing.T) {
	for _, name := range []string{"auto", "rfc4733", "inband", "info", "negotiated"} {
		p, err := ParsePolicy(name)
		if err != nil || p.String() != name {
			t.Errorf("ParsePolicy(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := ParsePolicy("rfc2833"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParsePolicy(rfc2833): %v, want ErrConfig", err)
	}
}
