package dtmf

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

const (
	testCard = "4111111111111111" // a standard test card number, never a real one
	testCVV  = "737"
)

func mustSecret(t *testing.T, s string) Secret {
	t.Helper()
	sec, err := NewSecret([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// leaks reports whether out contains the clear value or a long run of it
// (the last four alone are allowed for card-like values).
func leaks(out, clear string) bool {
	if strings.Contains(out, clear) {
		return true
	}
	if len(clear) >= cardLikeLen && strings.Contains(out, clear[:len(clear)-4]) {
		return true
	}
	return false
}

func TestSecretMask(t *testing.T) {
	card := mustSecret(t, testCard)
	if card.Mask() != "************1111" || card.Last4() != "1111" || card.Len() != 16 {
		t.Fatalf("card mask %q last4 %q len %d", card.Mask(), card.Last4(), card.Len())
	}
	for _, short := range []string{"7", testCVV, "1234", "12345678901"} {
		s := mustSecret(t, short)
		if s.Mask() != "****" || s.Last4() != "" {
			t.Fatalf("short value of %d digits: mask %q last4 %q", len(short), s.Mask(), s.Last4())
		}
	}
	if (Secret{}).Mask() != "" || revealString((Secret{})) != "" {
		t.Fatal("zero secret not empty")
	}
	if _, err := NewSecret([]byte("12x4")); !errors.Is(err, ErrInvalidDigit) {
		t.Fatalf("invalid digit: %v", err)
	}
}

func TestSecretNeverPrintsClearValue(t *testing.T) {
	for _, clear := range []string{testCard, "5555555555554444", testCVV} {
		s := mustSecret(t, clear)
		wrapped := struct {
			Card   Secret
			hidden Secret
			Ptr    *Secret
		}{s, s, &s}
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%T %v", "%p"} {
			outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, wrapped), fmt.Sprintf(verb, []Secret{s}))
		}
		outs = append(outs, s.String(), fmt.Sprint(s), fmt.Sprintln(s, &s), s.GoString())
		j, err := json.Marshal(wrapped)
		if err != nil {
			t.Fatal(err)
		}
		jm, _ := json.Marshal(map[string]any{"v": s, "p": &s})
		txt, _ := s.MarshalText()
		y, err := yaml.Marshal(wrapped)
		if err != nil {
			t.Fatal(err)
		}
		type record struct {
			Card Secret `xml:"card"`
		}
		x, err := xml.Marshal(record{s})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j), string(jm), string(txt), string(y), string(x))

		var zbuf bytes.Buffer
		zl := zerolog.New(&zbuf)
		zl.Info().Interface("i", s).Any("a", &s).Stringer("s", s).Str("m", s.String()).
			Interface("w", wrapped).Msg("collected")
		zl.Info().Fields(map[string]any{"f": s}).Msgf("%v %s", s, s)
		outs = append(outs, zbuf.String())

		var sbuf bytes.Buffer
		// No time: a timestamp's digits may hold a short value by chance
		// (a 3-digit CVV in the milliseconds).
		noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}
		sl := slog.New(slog.NewJSONHandler(&sbuf, noTime))
		sl.Info("collected", "v", s, "w", wrapped)
		tl := slog.New(slog.NewTextHandler(&sbuf, noTime))
		tl.Info("collected", "v", s, "p", &s)
		outs = append(outs, sbuf.String())

		for i, out := range outs {
			if leaks(out, clear) {
				t.Fatalf("output %d leaks the clear value (length %d)", i, len(clear))
			}
			if !strings.Contains(out, "****") && !strings.Contains(out, "0x") && !strings.Contains(out, "dtmf.Secret") {
				t.Fatalf("output %d shows no mask: %s", i, out)
			}
		}
		if revealString(s) != clear {
			t.Fatal("reveal does not return the value")
		}
	}
}

func TestSecretWipeAndEqual(t *testing.T) {
	a := mustSecret(t, testCard)
	b := mustSecret(t, testCard)
	c := mustSecret(t, "5555555555554444")
	if !a.Equal(b) || a.Equal(c) {
		t.Fatal("Equal")
	}
	cp := a
	inner := a.v
	a.Wipe()
	if a.Len() != 0 || revealString(a) != "" || cp.Len() != 0 {
		t.Fatal("wipe left digits")
	}
	for _, d := range inner.digits[:cap(inner.digits)] {
		if d != 0 {
			t.Fatal("wipe left bytes in memory")
		}
	}
	a.Wipe() // twice is fine
}

// revealString is the tests' view of the clear value.
func revealString(s Secret) string {
	var out string
	s.RevealForPaymentGateway(func(b []byte) { out = string(b) })
	return out
}

func TestSecretCardFacts(t *testing.T) {
	key := []byte("0123456789abcdef")
	s, _ := NewSecret([]byte("4111111111111111"))
	bin, last4, tok, ok := s.CardFacts(key)
	if !ok || bin != "41111111" || last4 != "1111" || len(tok) != 64 || strings.Contains(tok, "4111111111111111") {
		t.Fatalf("facts: %q %q %q %v", bin, last4, tok, ok)
	}
	s2, _ := NewSecret([]byte("4111111111111111"))
	if _, _, tok2, _ := s2.CardFacts(key); tok2 != tok {
		t.Fatal("same card, different token")
	}
	if _, _, tok3, _ := s2.CardFacts([]byte("another key 0123")); tok3 == tok {
		t.Fatal("token does not depend on the key")
	}
	amex, _ := NewSecret([]byte("378282246310005"))
	if bin, last4, _, ok := amex.CardFacts(key); !ok || bin != "378282" || last4 != "0005" {
		t.Fatalf("15 digits: %q %q", bin, last4)
	}
	for _, d := range []string{"123", "12345678901*"} {
		short, _ := NewSecret([]byte(d))
		if _, _, _, ok := short.CardFacts(key); ok {
			t.Fatalf("%d-key value gave card facts", len(d))
		}
	}
	if bin, _, tok, ok := s.CardFacts(nil); !ok || bin != "41111111" || tok != "" {
		t.Fatalf("no key: %q %q %v", bin, tok, ok)
	}
}
