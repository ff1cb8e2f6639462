package trunk

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/cloak-voip/cloak/config"
)

// maxNumberLen bounds the user part read as a number: E.164 has at most
// 15 digits (ITU-T E.164 §6.1); with prefixes and separators 32 is ample.
const maxNumberLen = 32

// maxE164Digits is the most digits an E.164 number has, country code
// included (ITU-T E.164 §6.1).
const maxE164Digits = 15

// Numbers normalises a carrier's numbers to E.164.
type Numbers struct {
	region string
	// national and international are the trunk's own prefixes, "" for
	// the region's (libphonenumber's metadata).
	national, international string
}

// NewNumbers returns the normaliser of a trunk's numbers section.
func NewNumbers(n config.TrunkNumbers) Numbers {
	return Numbers{region: strings.ToUpper(n.Country), national: n.NationalPrefix, international: n.InternationalPrefix}
}

// E164 returns raw (a number as the carrier wrote it: "+44 20 7946
// 0000", "020 7946 0000", "00442079460000", "442079460000") as an E.164
// number ("+442079460000"), ok false when it is not a possible number of
// any country (a name such as "anonymous", garbage, too long).
//
// Visual separators of RFC 3966 §3 (-, ., parentheses) and spaces are
// dropped first. Then: a leading + is international; the trunk's
// international prefix (or the region's, "00" in GB, "011" in the US)
// is replaced by +; the trunk's national prefix, when configured,
// is stripped and the rest read as a national number of the region;
// otherwise the region's own rules read it (national prefix "0" in GB).
// A bare string of digits that is no possible national number is tried
// as a country code and number without its + (some carriers send
// "442079460000").
func (n Numbers) E164(raw string) (string, bool) {
	if len(raw) > maxNumberLen {
		return "", false
	}
	var b strings.Builder
	for i, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == '-' || r == '.' || r == '(' || r == ')' || r == ' ':
		default:
			return "", false
		}
	}
	s := b.String()
	digits := strings.TrimPrefix(s, "+")
	if len(digits) < 3 {
		return "", false
	}
	if strings.HasPrefix(s, "+") {
		return possible(s, "ZZ")
	}
	// The region's own international prefix ("00", "011") libphonenumber
	// strips itself when it parses in the region.
	intl := n.international
	if intl != "" && strings.HasPrefix(s, intl) {
		return possible("+"+s[len(intl):], "ZZ")
	}
	if n.national != "" && strings.HasPrefix(s, n.national) {
		return possible(s[len(n.national):], n.region)
	}
	if e, ok := possible(s, n.region); ok {
		return e, true
	}
	return possible("+"+s, "ZZ")
}

// possible parses s in region and returns it as E.164 when it is a
// possible number (length right for its country; validity against the
// numbering plan is not asked: plans change faster than libraries).
func possible(s, region string) (string, bool) {
	if region == "" {
		region = "ZZ"
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return "", false
	}
	e := phonenumbers.Format(num, phonenumbers.E164)
	if len(e) > 1+maxE164Digits {
		// libphonenumber's length ranges allow a few national numbers
		// that, with their country code, exceed E.164's 15 digits.
		return "", false
	}
	return e, true
}

// URINumber returns the number a header value or URI carries: the number
// of a tel: URI (RFC 3966), or the user part of a sip: or sips: URI
// without its user parameters (";isub=", ";npdi"), "" when there is
// none. It reads name-addr ("Name" <URI>;params) and addr-spec forms.
// Whether the user part is a number is for E164 to say; user=phone
// (RFC 3261 §19.1.1) only confirms it.
func URINumber(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1024 {
		return ""
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ""
		}
		v = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 && !strings.HasPrefix(strings.ToLower(v), "tel:") {
		// addr-spec: header parameters follow the URI; a sip: URI's user
		// part may itself hold ';' before '@', so cut after the host.
		if at := strings.IndexByte(v, '@'); at < 0 || at > i {
			if at < 0 {
				v = v[:i]
			}
		}
	}
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "tel":
		num, _, _ := strings.Cut(rest, ";")
		return num
	case "sip", "sips":
		user, _, ok := strings.Cut(rest, "@")
		if !ok {
			return ""
		}
		user, _, _ = strings.Cut(user, ";")
		user, _, _ = strings.Cut(user, ":") // user:password (deprecated)
		return user
	}
	return ""
}
