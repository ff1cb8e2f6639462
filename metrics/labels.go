package metrics

import "regexp"

var (
	// phoneLike is a phone number: 7 or more digits, maybe with a +,
	// spaces, dashes or brackets.
	phoneLike = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{6,}$`)
	// idLike is a call id or a URI: an @, a sip: scheme, or a long run of
	// hex and dashes (UUIDs, sipp's and sipgo's ids).
	idLike = regexp.MustCompile(`@|^sips?:|^[0-9a-fA-F-]{16,}$`)
)

// LooksPrivate reports whether a label value looks like something no
// label may carry: a phone number, a call id or URI, or anything longer
// than 48 bytes (no bounded name is). Tests walk every label of a scrape
// with it (TestNoLabelLooksPrivate, and the e2e test over Prometheus).
func LooksPrivate(v string) bool {
	return len(v) > 48 || phoneLike.MatchString(v) || idLike.MatchString(v)
}
