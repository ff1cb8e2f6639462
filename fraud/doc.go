// Package fraud screens a phone payment, or a call at arrival, against
// static fraud data (blocked numbers, emails, postcodes, customer ids, card
// BINs, source networks, each with a score) and scored rules written as
// expressions (github.com/expr-lang/expr), and decides hold or proceed from
// the sum of the scores of every unique match (docs/FRAUD.md).
//
// The package is a leaf: it imports nothing of cloak's. It never receives a
// secret: Attributes has no field for a full card number, an expiry or a
// CVV, and Attributes.Check refuses a participant-data value that looks like
// a card number (Luhn-valid run of 13 to 19 digits) or a key that names a
// card secret. Screening is pure computation over values, off the RTP hot
// path; the index and the rules are swapped atomically, so a change applies
// to the next screening without a restart.
package fraud
