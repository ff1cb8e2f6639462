package media

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// SourcePolicy says which sources a leg accepts RTP from (see "Which
// sources a leg accepts" in the package doc). The zero value is
// SourceStrict: an Endpoint built without saying otherwise is closed to
// every address but the one its SDP names.
type SourcePolicy uint8

const (
	// SourceStrict accepts packets only from the address and port the
	// SDP names (c= and m= lines, RFC 4566 §5.7 and §5.14), as Asterisk's
	// strictrtp and rtpengine's strict-source do. Before the SDP is known
	// (late offer) nothing is accepted.
	SourceStrict SourcePolicy = iota
	// SourceLearn accepts packets from the SDP's IP address on any port,
	// for symmetric RTP (RFC 4961) behind a NAT that rewrites the port:
	// a source other than the SDP's address and port is learned only
	// after a run of LearnPackets consecutive packets from it (same SSRC,
	// each sequence number one more than the last, RFC 3550 §5.1), and
	// the packets of the run are dropped. A re-learn mid-call needs the
	// same run and the learned source silent for learnQuiet; packets
	// from the SDP's own address and port are accepted at once, always.
	// SetRemote (a re-INVITE) starts learning afresh.
	SourceLearn
	// SourceAny is plain latching: the first valid packet from anywhere
	// is latched to. It lets anyone who reaches the port first take the
	// leg's media ("RTP bleed"); only for networks where nothing else can
	// reach the RTP ports.
	SourceAny
)

// DefaultLearnPackets is the run of consecutive packets SourceLearn needs
// before it accepts a new source (80 ms of 20 ms frames).
const DefaultLearnPackets = 4

// learnQuiet is how long the learned source must have been silent before
// SourceLearn lets another port of its IP take over mid-call: a NAT
// binding that moved leaves the old one silent, while a caller who is
// still talking cannot be displaced by a second stream from its IP.
const learnQuiet = 250 * time.Millisecond

// ParseSourcePolicy parses "strict", "learn" or "any".
func ParseSourcePolicy(s string) (SourcePolicy, error) {
	switch s {
	case "strict":
		return SourceStrict, nil
	case "learn":
		return SourceLearn, nil
	case "any":
		return SourceAny, nil
	}
	return SourceStrict, fmt.Errorf("%w: %q (want strict, learn or any)", ErrSourcePolicy, s)
}

// String returns the policy's configuration name.
func (p SourcePolicy) String() string {
	switch p {
	case SourceStrict:
		return "strict"
	case SourceLearn:
		return "learn"
	case SourceAny:
		return "any"
	}
	return fmt.Sprintf("SourcePolicy(%d)", uint8(p))
}

// learnState is SourceLearn's candidate: the run of packets seen so far
// from a source not accepted yet. Only the leg's reader touches it, and
// only for packets from such a source, so it lives away from the
// per-packet cache lines.
type learnState struct {
	from netip.AddrPort
	ssrc uint32
	seq  uint16
	run  uint16 // packets in the run so far; 0: no candidate
}

// step feeds the candidate one packet from from (whose header is h) and
// reports whether the run has reached need packets; the caller resets
// the state once it takes the source, and a run kept waiting (see
// learnQuiet) stays complete while it goes on.
// A packet that does not continue the run (another source, another SSRC,
// a sequence number other than the last plus one, modulo 2^16) starts a
// new run with itself.
func (l *learnState) step(from netip.AddrPort, h *rtp.Header, need uint16) bool {
	if l.run > 0 && from == l.from && h.SSRC == l.ssrc && h.SequenceNumber == l.seq+1 {
		l.run++
	} else {
		l.from, l.ssrc, l.run = from, h.SSRC, 1
	}
	l.seq = h.SequenceNumber
	return l.run >= need
}
