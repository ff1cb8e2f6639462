package sip

import (
	"strings"
	"unicode"

	siplib "github.com/emiago/sipgo/sip"
)

// maxIdentityName bounds a display name kept from the wire, in runes.
const maxIdentityName = 64

// CallerName is the display name of the INVITE's From header (RFC 3261
// §20.20, §25.1 display-name), unquoted and unescaped, control
// characters dropped, at most 64 characters; "" when there is none. It is
// what the caller's side claims, nothing verified.
func (s *Session) CallerName() string {
	if s.ident.Private {
		return "" // RFC 3323 §4.2: withheld
	}
	if f := s.req.From(); f != nil {
		return cleanName(f.DisplayName)
	}
	return ""
}

// AssertedIdentity is the first identity of the INVITE's
// P-Asserted-Identity header (RFC 3325 §9.1): the user part of its URI
// (the number of a tel: URI, RFC 3966) and its display name; both "" when
// the header is absent or unparsable. cloak keeps no trust domain (RFC
// 3325 §2.3) yet: the value is what the peer sent, recorded as such and
// trusted for nothing.
func (s *Session) AssertedIdentity() (user, name string) {
	if s.ident.Private {
		return Anonymous, "" // RFC 3323 §4.2, RFC 3325 §9.3: withheld
	}
	h := s.req.GetHeader("P-Asserted-Identity")
	if h == nil {
		return "", ""
	}
	return parseAsserted(h.Value())
}

// parseAsserted reads the first PAssertedID-value of a header value:
// name-addr or addr-spec, a sip:, sips: or tel: URI.
func parseAsserted(v string) (user, name string) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 1024 {
		return "", ""
	}
	var u siplib.Uri
	n, err := siplib.ParseAddressValue(v, &u, nil)
	if err != nil {
		return "", ""
	}
	user = u.User
	if strings.EqualFold(u.Scheme, "tel") {
		// sipgo leaves a tel: URI's number unparsed: it runs from "tel:"
		// to the first parameter or the end of the address.
		rest := v
		if i := strings.IndexByte(v, '<'); i >= 0 {
			rest = v[i+1:]
		}
		if i := strings.Index(strings.ToLower(rest), "tel:"); i >= 0 {
			rest = rest[i+4:]
			if j := strings.IndexAny(rest, ";>, "); j >= 0 {
				rest = rest[:j]
			}
			user = rest
		}
	}
	return cleanName(user), cleanName(n)
}

// cleanName unescapes a quoted-string's quoted-pairs (RFC 3261 §25.1),
// drops control characters and quotes around it, and keeps at most
// maxIdentityName runes.
func cleanName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	var b strings.Builder
	n := 0
	esc := false
	for _, r := range s {
		if !esc && r == '\\' {
			esc = true
			continue
		}
		esc = false
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			continue
		}
		if n == maxIdentityName {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// maxVerstat bounds a verstat value kept from the wire.
const maxVerstat = 40

// Verstat is the carrier's verification of the caller's number: the
// "verstat" parameter (ATIS-1000074 SHAKEN, registered for the tel URI
// and a sip URI's user part by 3GPP TS 24.229) on the P-Asserted-Identity
// header, else on From — "TN-Validation-Passed", "TN-Validation-Failed",
// "No-TN-Validation"; "" when absent or not a token of letters, digits
// and '-' of at most 40 characters. What the peer sent, trusted as far as
// the trunk is.
func (s *Session) Verstat() string {
	for _, name := range []string{"P-Asserted-Identity", "From"} {
		for _, h := range s.req.GetHeaders(name) {
			if v := verstatIn(h.Value()); v != "" {
				return v
			}
		}
	}
	return ""
}

// verstatIn returns the value of the first ";verstat=" parameter in a
// header value, "" when none is well formed.
func verstatIn(v string) string {
	if len(v) > 2048 {
		return ""
	}
	low := strings.ToLower(v)
	i := strings.Index(low, ";verstat=")
	if i < 0 {
		return ""
	}
	rest := v[i+len(";verstat="):]
	n := 0
	for n < len(rest) && n <= maxVerstat {
		c := rest[n]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			break
		}
		n++
	}
	if n == 0 || n > maxVerstat {
		return ""
	}
	if n < len(rest) && !strings.ContainsRune(";>@, \t", rune(rest[n])) {
		return ""
	}
	return rest[:n]
}
