package dtmf

import "fmt"

// Policy says which of a leg's DTMF sources count as keys (an IVR's
// digits, feature codes, keys counted while talking). It only chooses
// what is collected: whatever the policy, a caller's tones and events are
// kept from agents and recordings (Masker, and the call's gate). SIP INFO
// digits (RFC 6086) count under every policy: they are signalled on
// purpose.
type Policy uint8

// Policies.
const (
	// Auto counts in-band tones until the leg's first RFC 4733 event,
	// then events only. Callers behind gateways that negotiate
	// telephone-event but pass tones in-band (common on mobile and
	// analogue paths) can still key, where a PBX's "auto" that trusts the
	// negotiation alone leaves them unable to. A phone that sends a key's
	// leading edge in-band before its events is counted once: a tone's
	// end is confirmed after the first event has arrived.
	Auto Policy = iota
	// RFC4733 counts telephone-events only.
	RFC4733
	// Inband counts in-band tones only.
	Inband
	// Info counts SIP INFO digits only.
	Info
	// Negotiated counts telephone-events where telephone-event was
	// negotiated and in-band tones where it was not: what most PBXs call
	// auto, and what cloak uses for agents' feature codes.
	Negotiated
)

var policyNames = [...]string{"auto", "rfc4733", "inband", "info", "negotiated"}

// String names the policy as the configuration does.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParsePolicy parses a policy's name.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("dtmf policy %q: %w", s, ErrConfig)
}

// Counts reports whether a key from src counts under the policy, on a leg
// that has (negotiated) or has not negotiated telephone-event and has
// (sawEvent) or has not yet received one.
func (p Policy) Counts(src Source, negotiated, sawEvent bool) bool {
	switch src {
	case SourceInfo:
		return true
	case SourceRFC4733:
		return p == Auto || p == RFC4733 || p == Negotiated
	case SourceInband:
		switch p {
		case Inband:
			return true
		case Auto:
			return !sawEvent
		case Negotiated:
			return !negotiated
		}
	}
	return false
}
