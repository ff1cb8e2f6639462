package sip

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloak-voip/cloak/sdes"
	"github.com/pion/sdp/v3"
)

// SRTP negotiation with SDP Security Descriptions (SDES, RFC 4568): the
// offer's a=crypto attributes on an RTP/SAVP m-line (RFC 3711 §1, RFC
// 4568 §5) carry the offerer's master key; the answer names the chosen
// attribute's tag and suite with our own fresh key (§6.1, §7.1.2). Keys
// travel in the SDP body, so cloak exchanges them only when the SIP
// transport protects that body (TLS) unless told otherwise
// (SRTPPolicy.OverPlainSIP): keys in clear SIP protect nothing against
// whoever sees the signalling.

// SRTPMode is a leg's SRTP policy (config rtp.srtp).
type SRTPMode uint8

// The SRTP modes.
const (
	// SRTPOff answers only RTP/AVP and offers RTP/AVP: an offer with
	// only RTP/SAVP gets 488, as before SRTP.
	SRTPOff SRTPMode = iota
	// SRTPOptional answers an RTP/SAVP offer with SRTP and an RTP/AVP
	// offer in clear, and offers RTP/AVP (an RTP/SAVP offer is refused by
	// peers without SRTP).
	SRTPOptional
	// SRTPMandatory answers only RTP/SAVP (plain offers get 488) and
	// offers RTP/SAVP.
	SRTPMandatory
)

var srtpModeNames = [...]string{"off", "optional", "mandatory"}

// String returns the mode's config name.
func (m SRTPMode) String() string {
	if int(m) < len(srtpModeNames) {
		return srtpModeNames[m]
	}
	return "unknown"
}

// ErrSRTPMode means a mode name is not off, optional or mandatory.
var ErrSRTPMode = errors.New("unknown srtp mode")

// ParseSRTPMode returns the mode of a config name.
func ParseSRTPMode(s string) (SRTPMode, error) {
	for i, n := range srtpModeNames {
		if s == n {
			return SRTPMode(i), nil
		}
	}
	return SRTPOff, fmt.Errorf("%q: %w (off, optional, mandatory)", s, ErrSRTPMode)
}

// SRTPPolicy is what a leg's SDP may do about SRTP.
type SRTPPolicy struct {
	// Mode is off, optional or mandatory.
	Mode SRTPMode
	// OverPlainSIP lets keys travel over a SIP transport other than TLS
	// (config rtp.srtp_over_plain_sip). Without it, over UDP or TCP an
	// optional leg stays plain and a mandatory leg cannot be set up.
	OverPlainSIP bool
	// Suites are the crypto suites the leg may use, in order of
	// preference (config rtp.srtp_suites); zero means sdes.Suites.
	Suites sdes.Order
}

// keysAllowed reports whether SDES keys may travel over transport.
func (p SRTPPolicy) keysAllowed(transport string) bool {
	return p.OverPlainSIP || strings.EqualFold(transport, "tls")
}

// ForTransport is the policy as it applies to a dialog over transport
// ("UDP", "TCP", "TLS"): Mode, and Secure set when keys may travel on it.
func (p SRTPPolicy) ForTransport(transport string) DialogSRTP {
	return DialogSRTP{Mode: p.Mode, Keys: p.keysAllowed(transport), Suites: p.Suites}
}

// DialogSRTP is an SRTPPolicy applied to one dialog's transport.
type DialogSRTP struct {
	// Mode is the leg's SRTP mode.
	Mode SRTPMode
	// Keys is true when SDES keys may travel on the dialog's transport.
	Keys bool
	// Suites are the suites it may use, in order of preference; zero
	// means sdes.Suites.
	Suites sdes.Order
}

// suites returns the dialog's suites in order of preference.
func (d DialogSRTP) suites() []sdes.Suite { return d.Suites.Suites() }

// acceptsPlain reports whether an RTP/AVP line may be answered.
func (d DialogSRTP) acceptsPlain() bool { return d.Mode != SRTPMandatory }

// acceptsSRTP reports whether an RTP/SAVP line may be answered.
func (d DialogSRTP) acceptsSRTP() bool { return d.Mode != SRTPOff && d.Keys }

// offersSRTP reports whether our offers are RTP/SAVP.
func (d DialogSRTP) offersSRTP() bool { return d.Mode == SRTPMandatory && d.Keys }

// SRTP is the outcome of SDES for one leg: the suite, the tag of the
// chosen a=crypto attribute, and a key each way. The keys are secrets
// (sdes.Key prints a mask). Nil in a Media means plain RTP.
type SRTP struct {
	// Tag is the chosen attribute's tag (RFC 4568 §9.1).
	Tag int
	// Local is our master key: it protects what we send.
	Local *sdes.Key
	// Remote is the peer's master key: it unprotects what it sends.
	Remote *sdes.Key
}

// Keys returns our key and the peer's; nil and nil for plain RTP (s nil).
func (s *SRTP) Keys() (local, remote *sdes.Key) {
	if s == nil {
		return nil, nil
	}
	return s.Local, s.Remote
}

// Suite is the negotiated crypto suite.
func (s *SRTP) Suite() sdes.Suite {
	if s == nil {
		return sdes.SuiteNone
	}
	return s.Local.Suite()
}

// Zero overwrites both keys with zeros. Safe on nil.
func (s *SRTP) Zero() {
	if s == nil {
		return
	}
	s.Local.Zero()
	s.Remote.Zero()
}

// ErrSRTPPolicy means an offer's or answer's media security does not
// fit the leg's SRTP policy: plain RTP where SRTP is mandatory, RTP/SAVP
// where it is off or keys may not travel on the transport, or no
// a=crypto attribute cloak can use.
var ErrSRTPPolicy = errors.New("media security refused by srtp policy")

const (
	protoAVP  = "RTP/AVP"
	protoSAVP = "RTP/SAVP"
)

// offerCrypto picks, among the a=crypto attributes of an RTP/SAVP line
// that cloak can honour (lines with an MKI, a lifetime, session
// parameters or a suite not in prefs are passed over), the one whose
// suite comes first in prefs — RFC 4568 §7.1.2 lets the answerer choose
// any of the offered attributes, not only the first — and makes our key
// for its suite. A re-INVITE keeping the session (reuse: the dialog's
// current SRTP) keeps its suite and our key when the offer still has
// that suite, whatever prefs say, so the leg's SRTP contexts (their
// rollover counters and replay windows) carry on (RFC 4568 §7.1.4).
// Among attributes of one suite the offerer's first wins. The keys of
// the attributes not chosen are zeroed.
func offerCrypto(md *sdp.MediaDescription, reuse *SRTP, prefs []sdes.Suite) (*SRTP, bool, error) {
	var best sdes.Crypto
	bestRank := len(prefs) // past the end: none yet
	keep := reuse != nil && !reuse.Local.IsZero()
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		c, err := sdes.ParseCrypto(a.Value)
		if err != nil {
			continue
		}
		rank := slices.Index(prefs, c.Key.Suite())
		switch {
		case keep && c.Key.Suite() == reuse.Local.Suite():
			rank = -1 // the suite in use: before any other
		case rank < 0: // not one the leg may use
			c.Key.Zero()
			continue
		}
		if rank >= bestRank { // an earlier one ranks as high or higher
			c.Key.Zero()
			continue
		}
		best.Key.Zero() // safe on nil: the one it displaces
		best, bestRank = c, rank
	}
	if best.Key == nil {
		return nil, false, nil
	}
	if keep && best.Key.Suite() == reuse.Local.Suite() {
		return &SRTP{Tag: best.Tag, Local: reuse.Local, Remote: best.Key}, true, nil
	}
	ours, err := sdes.NewKey(best.Key.Suite())
	if err != nil {
		best.Key.Zero()
		return nil, false, err
	}
	return &SRTP{Tag: best.Tag, Local: ours, Remote: best.Key}, true, nil
}

// NewOfferCrypto returns the a=crypto attributes of an RTP/SAVP offer of
// ours: one per suite of suites (in order of preference; nil means
// sdes.Suites), tags 1, 2, 3…, each with a fresh key (RFC 4568 §7.1.1).
func NewOfferCrypto(suites []sdes.Suite) ([]sdes.Crypto, error) {
	if len(suites) == 0 {
		suites = sdes.Suites
	}
	out := make([]sdes.Crypto, 0, len(suites))
	for i, s := range suites {
		k, err := sdes.NewKey(s)
		if err != nil {
			for _, c := range out {
				c.Key.Zero()
			}
			return nil, err
		}
		out = append(out, sdes.Crypto{Tag: i + 1, Key: k})
	}
	return out, nil
}

// keepOffered zeroes the keys of our offer's a=crypto attributes that the
// answer did not choose and returns the chosen one as our offer's
// attributes from now on (nil when none was).
func keepOffered(offered []sdes.Crypto, chosen *SRTP) []sdes.Crypto {
	var keep []sdes.Crypto
	for _, c := range offered {
		if chosen != nil && c.Key == chosen.Local {
			keep = append(keep, c)
			continue
		}
		c.Key.Zero()
	}
	return keep
}

// answerCrypto reads the a=crypto attribute of an answer to our RTP/SAVP
// offer: exactly one, whose tag and suite are one of ours (RFC 4568
// §7.1.3, §7.4). Our key of that tag is the local one; the others we
// offered are zeroed by the caller.
func answerCrypto(md *sdp.MediaDescription, offered []sdes.Crypto) (*SRTP, error) {
	var got *SRTP
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		if got != nil {
			got.Remote.Zero()
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "answer has more than one a=crypto"}
		}
		c, err := sdes.ParseCrypto(a.Value)
		if err != nil {
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "answer's a=crypto: " + err.Error()}
		}
		for _, o := range offered {
			if o.Tag == c.Tag && o.Key.Suite() == c.Key.Suite() {
				got = &SRTP{Tag: c.Tag, Local: o.Key, Remote: c.Key}
			}
		}
		if got == nil {
			c.Key.Zero()
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "answer's a=crypto names no tag and suite we offered"}
		}
	}
	if got == nil {
		return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "RTP/SAVP answer without a=crypto"}
	}
	return got, nil
}
