package trunk

import (
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/config"
)

// TestE164 tables the number formats carriers send.
func TestE164(t *testing.T) {
	gb := NewNumbers(config.TrunkNumbers{Country: "GB"})
	us := NewNumbers(config.TrunkNumbers{Country: "US"})
	custom := NewNumbers(config.TrunkNumbers{Country: "GB", NationalPrefix: "9", InternationalPrefix: "900"})
	for _, tc := range []struct {
		n    Numbers
		in   string
		want string
	}{
		{gb, "+442079460000", "+442079460000"},
		{gb, "+44 20 7946 0000", "+442079460000"},
		{gb, "+44-20-7946-0000", "+442079460000"},
		{gb, "(020) 7946.0000", "+442079460000"},
		{gb, "02079460000", "+442079460000"},
		{gb, "07700900123", "+447700900123"},
		{gb, "00442079460000", "+442079460000"},
		{gb, "0012125550123", "+12125550123"},
		{gb, "442079460000", "+442079460000"},
		{gb, "2079460000", "+442079460000"},
		{us, "2125550123", "+12125550123"},
		{us, "12125550123", "+12125550123"},
		{us, "011442079460000", "+442079460000"},
		{us, "+1 (212) 555-0123", "+12125550123"},
		{custom, "92079460000", "+442079460000"},
		{custom, "9001 2125550123", "+12125550123"},
		{gb, "anonymous", ""},
		{gb, "alice", ""},
		{gb, "", ""},
		{gb, "12", ""},
		{gb, "+", ""},
		{gb, "++442079460000", ""},
		{gb, "44207946000044207946000044207946000", ""},
		{gb, "+999999", ""},
		{gb, "0207\x00946", ""},
	} {
		got, ok := tc.n.E164(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s E164(%q) = %q, %v; want %q", tc.n.region, tc.in, got, ok, tc.want)
		}
	}
}

// TestURINumber tables the URI forms numbers arrive in.
func TestURINumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<sip:+442079460000@carrier.example;user=phone>;tag=1", "+442079460000"},
		{`"Alice" <sip:02079460000@carrier.example>;tag=abc`, "02079460000"},
		{"<sips:00442079460000@carrier.example:5061>", "00442079460000"},
		{"<tel:+44-20-7946-0000;phone-context=example.com>", "+44-20-7946-0000"},
		{"tel:+442079460000", "+442079460000"},
		{"sip:+442079460000;npdi;rn=+44123@carrier.example;user=phone", "+442079460000"},
		{"sip:02079460000@h;tag=x", "02079460000"},
		{"sip:carrier.example", ""},
		{"<http://example.com>", ""},
		{"<sip:broken", ""},
		{"", ""},
	} {
		if got := URINumber(tc.in); got != tc.want {
			t.Errorf("URINumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzE164 feeds hostile user parts: never a panic, and whatever is
// accepted is "+" and 15 digits at most.
func FuzzE164(f *testing.F) {
	for _, s := range []string{"+442079460000", "02079460000", "00442079460000", "anonymous", "+", "", "0(20)7946-0000", "+999999999999999999"} {
		f.Add(s)
	}
	n := NewNumbers(config.TrunkNumbers{Country: "GB"})
	f.Fuzz(func(t *testing.T, raw string) {
		e, ok := n.E164(raw)
		if !ok {
			return
		}
		if len(e) < 2 || len(e) > 16 || e[0] != '+' || strings.Trim(e[1:], "0123456789") != "" {
			t.Fatalf("E164(%q) = %q", raw, e)
		}
		_ = URINumber("<sip:" + raw + "@h>")
	})
}
