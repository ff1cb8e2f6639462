package fraud

import (
	"fmt"
	"net/netip"
	"strings"
)

// Normaliser turns values into the one form static data is keyed by.
type Normaliser struct {
	// CountryCode is the country calling code (ITU-T E.164, digits only,
	// e.g. "44") given to national numbers: "07700 900123" → +447700900123.
	CountryCode string
}

// Phone returns the E.164 form (+ and 8 to 15 digits) of a number written
// as +CC…, 00CC…, a national number with its trunk 0, or a SIP/tel URI's
// user part; visual separators (space, -, ., parentheses) are dropped.
func (n Normaliser) Phone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i >= 0 && (strings.HasPrefix(strings.ToLower(s), "sip") || strings.HasPrefix(strings.ToLower(s), "tel")) {
		s = s[i+1:]
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	b.Grow(16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && b.Len() == 0 && i == strings.IndexByte(s, '+'):
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("phone: unexpected %q: %w", c, ErrValue)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "+"):
	case strings.HasPrefix(d, "00"):
		d = "+" + d[2:]
	case strings.HasPrefix(d, "0"):
		if n.CountryCode == "" {
			return "", fmt.Errorf("phone: national number and no default country code: %w", ErrValue)
		}
		d = "+" + n.CountryCode + d[1:]
	case len(d) >= 11:
		d = "+" + d // international without the +
	case n.CountryCode != "":
		d = "+" + n.CountryCode + d
	default:
		return "", fmt.Errorf("phone: national number and no default country code: %w", ErrValue)
	}
	if l := len(d) - 1; l < 7 || l > 15 || !isDigits(d[1:]) {
		return "", fmt.Errorf("phone: want 7 to 15 digits: %w", ErrValue)
	}
	return d, nil
}

// Email returns the address trimmed and case-folded; it must have one @
// with text either side.
func (Normaliser) Email(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("email: want local@domain: %w", ErrValue)
	}
	return s, nil
}

// Postcode returns the code without spaces, upper-cased ("sw1a 1aa" →
// "SW1A1AA"); letters, digits and dashes only.
func (Normaliser) Postcode(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '\t':
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			return "", fmt.Errorf("postcode: unexpected %q: %w", r, ErrValue)
		}
	}
	if b.Len() < 2 || b.Len() > 12 {
		return "", fmt.Errorf("postcode: want 2 to 12 characters: %w", ErrValue)
	}
	return b.String(), nil
}

// CustomerID returns the id trimmed; ids are case-sensitive.
func (Normaliser) CustomerID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 128 {
		return "", fmt.Errorf("customer id: want 1 to 128 characters: %w", ErrValue)
	}
	return s, nil
}

// BIN returns 6 to 8 digits.
func (Normaliser) BIN(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !isDigits(s) || len(s) < 6 || len(s) > 8 {
		return "", fmt.Errorf("bin: want 6 to 8 digits: %w", ErrValue)
	}
	return s, nil
}

// Source returns a masked CIDR prefix; a bare address becomes /32 or /128,
// an IPv4-mapped IPv6 address its IPv4 form.
func (Normaliser) Source(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("source: %v: %w", err, ErrValue)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("source: %v: %w", err, ErrValue)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Value normalises v for type t (sources as their CIDR string).
func (n Normaliser) Value(t Type, v string) (string, error) {
	switch t {
	case TypePhone:
		return n.Phone(v)
	case TypeEmail:
		return n.Email(v)
	case TypePostcode, TypeExtendedPostcode:
		return n.Postcode(v)
	case TypeCustomerID:
		return n.CustomerID(v)
	case TypeBIN:
		return n.BIN(v)
	case TypeSource:
		p, err := n.Source(v)
		if err != nil {
			return "", err
		}
		return p.String(), nil
	}
	return "", fmt.Errorf("type %q: %w", t, ErrType)
}
