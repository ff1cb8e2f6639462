package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/sdes"
	"github.com/pion/sdp/v3"
)

// DefaultEventPayloadType is the payload type cloak offers for
// telephone-event (RFC 4733) when it makes the offer.
const DefaultEventPayloadType = 101

// PayloadTypeCN is comfort noise's static payload type, CN/8000 (RFC 3551
// §6, RFC 3389 §5).
const PayloadTypeCN = 13

// SupportedCodecs returns the audio codecs cloak negotiates, in its own
// order of preference (used when cloak makes the offer).
func SupportedCodecs() []audio.Codec {
	return []audio.Codec{audio.CodecPCMU(), audio.CodecPCMA()}
}

// Media is the outcome of an offer/answer exchange for the audio stream of
// one leg: where to send RTP, in which format, and in which direction.
type Media struct {
	// Remote is the address RTP is sent to, from c= and m=. On hold with the
	// RFC 2543 convention (c=0.0.0.0) its address is unspecified.
	Remote netip.AddrPort
	// Codec is the audio format both sides use.
	Codec audio.Codec
	// EventPT is the telephone-event payload type, 0 when none was agreed.
	EventPT uint8
	// CNPT is the comfort-noise payload type (RFC 3389 §5, CN/8000;
	// static 13 in RFC 3551), 0 when the offer did not include it. Our
	// answer accepts it; the leg then fills silence with CN packets.
	CNPT uint8
	// Direction is the direction from our side.
	Direction audio.Direction
	// Ptime is the packetisation time in ms (20 unless the peer asked for other).
	Ptime int
	// RTCPMux is true when the peer's SDP has a=rtcp-mux (RFC 5761 §5.1.1):
	// in an offer, that it may multiplex; in an answer, that it will.
	RTCPMux bool
	// RTCP is where the peer wants RTCP, from a=rtcp (RFC 3605 §2.1): the
	// port, with the attribute's address or, when it names none, an
	// unspecified one (meaning c='s). Zero without the attribute: RTP's
	// port + 1 (RFC 3550 §11).
	RTCP netip.AddrPort
	// SRTP is the SDES outcome (RFC 4568) of an RTP/SAVP stream: suite,
	// tag and a key each way (sdp_srtp.go); nil for plain RTP/AVP.
	SRTP *SRTP
}

// OnHold reports whether the peer has put the stream on hold: we must not
// send (RFC 3264 §8.4, and RFC 2543's c=0.0.0.0).
func (m Media) OnHold() bool {
	return m.Direction == audio.RecvOnly || m.Direction == audio.Inactive || !m.Remote.Addr().IsValid() || m.Remote.Addr().IsUnspecified()
}

// Offer is a parsed and negotiated SDP offer: what we will answer.
type Offer struct {
	Media Media
	// lines describes every m-line of the offer, so that the answer has the
	// same number in the same order (RFC 3264 §6).
	lines []offerLine
	audio int // index of the accepted audio line
}

type offerLine struct {
	media  string
	protos []string
	format string // first format, echoed on rejected lines
}

// ErrSDP is the sentinel for SDP that cannot be parsed or makes no sense.
var ErrSDP = errors.New("bad sdp")

// ErrNoCodec means the offer has no audio stream in a format we support.
var ErrNoCodec = errors.New("no supported codec offered")

// sdpError carries the SIP status for an SDP failure.
type sdpError struct {
	status int
	err    error
	detail string
}

func (e *sdpError) Error() string   { return e.err.Error() + ": " + e.detail }
func (e *sdpError) Unwrap() error   { return e.err }
func (e *sdpError) StatusCode() int { return e.status }
func badSDP(format string, a ...any) error {
	return &sdpError{status: 400, err: ErrSDP, detail: fmt.Sprintf(format, a...)}
}

// rootError is the text of the innermost error err wraps: for pion/sdp's
// errors the sentinel ("sdp: invalid syntax") without the line it failed
// on, which may hold a key (a=crypto) or anything else the peer sent.
func rootError(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// ParseOffer parses an SDP offer and negotiates the audio stream: the first
// audio m-line on RTP/AVP with a format we support, honouring the offerer's
// preference order (RFC 3264 §6.1), and telephone-event/8000 if offered.
// An offer with no usable audio gives an error whose StatusCode is 488;
// unparsable SDP gives 400. It is ParseOfferSRTP with SRTP off.
func ParseOffer(body []byte) (*Offer, error) {
	return ParseOfferSRTP(body, DialogSRTP{}, nil)
}

// ParseOfferSRTP is ParseOffer under an SRTP policy (sdp_srtp.go): the
// first audio m-line with a format we support on a profile the policy
// accepts — RTP/AVP unless SRTP is mandatory, RTP/SAVP with a usable
// a=crypto attribute (RFC 4568 §7.1.2) when SRTP is on and keys may
// travel on the dialog's transport. For RTP/SAVP, Media.SRTP holds the
// offerer's key and a fresh one of ours (reuse's, when reuse is the
// dialog's current SRTP of the same suite: a re-INVITE). An offer the
// policy refuses gives a 488 error wrapping ErrSRTPPolicy.
func ParseOfferSRTP(body []byte, pol DialogSRTP, reuse *SRTP) (*Offer, error) {
	if len(body) == 0 {
		return nil, badSDP("empty body")
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, badSDP("%s", rootError(err))
	}
	o := &Offer{audio: -1}
	var refusedPlain, refusedSAVP, noCrypto bool
	for i, md := range sd.MediaDescriptions {
		line := offerLine{media: md.MediaName.Media, protos: md.MediaName.Protos}
		if len(md.MediaName.Formats) > 0 {
			line.format = md.MediaName.Formats[0]
		}
		o.lines = append(o.lines, line)
		if o.audio >= 0 || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		proto := strings.Join(md.MediaName.Protos, "/")
		switch {
		case proto == protoAVP && !pol.acceptsPlain():
			refusedPlain = true
			continue
		case proto == protoSAVP && !pol.acceptsSRTP():
			refusedSAVP = true
			continue
		case proto != protoAVP && proto != protoSAVP:
			continue // WebRTC profiles (SAVPF, DTLS): not ours
		}
		m, ok, err := negotiateAudio(&sd, md)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if proto == protoSAVP {
			if m.SRTP, ok, err = offerCrypto(md, reuse, pol.suites()); err != nil {
				return nil, fmt.Errorf("srtp key: %w", err)
			} else if !ok {
				noCrypto = true
				continue
			}
		}
		o.Media = m
		o.audio = i
	}
	if o.audio < 0 {
		switch {
		case refusedPlain && !pol.Keys:
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "rtp.srtp is mandatory and SDES keys may not travel on this SIP transport"}
		case refusedPlain:
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "rtp.srtp is mandatory: plain RTP/AVP refused"}
		case noCrypto:
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "RTP/SAVP without a usable a=crypto attribute"}
		case refusedSAVP:
			return nil, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "RTP/SAVP refused: rtp.srtp is off or SIP is not over TLS"}
		}
		return nil, &sdpError{status: 488, err: ErrNoCodec, detail: "need PCMU/8000 or PCMA/8000 over RTP/AVP"}
	}
	return o, nil
}

// ParseAnswer reads an SDP answer to an offer we made (late offer, or an
// outbound leg): the first audio stream, with the first format in it that
// we offered.
func ParseAnswer(body []byte) (Media, error) { return ParseAnswerSRTP(body, nil) }

// ParseAnswerSRTP is ParseAnswer for an offer whose a=crypto attributes
// were offered (RTP/SAVP; none: RTP/AVP): the answer's audio stream must
// then be RTP/SAVP with one a=crypto naming one of them (RFC 4568
// §7.1.3), which sets Media.SRTP; else the error is a 488 wrapping
// ErrSRTPPolicy.
func ParseAnswerSRTP(body []byte, offered []sdes.Crypto) (Media, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return Media{}, badSDP("%s", rootError(err))
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		m, ok, err := negotiateAudio(&sd, md)
		if err != nil {
			return Media{}, err
		}
		if !ok {
			continue
		}
		if len(offered) > 0 {
			if strings.Join(md.MediaName.Protos, "/") != protoSAVP {
				return Media{}, &sdpError{status: 488, err: ErrSRTPPolicy, detail: "RTP/SAVP offered, plain answer"}
			}
			if m.SRTP, err = answerCrypto(md, offered); err != nil {
				return Media{}, err
			}
		}
		return m, nil
	}
	return Media{}, &sdpError{status: 488, err: ErrNoCodec, detail: "answer has no audio stream we offered"}
}

// negotiateAudio picks the codec and event type from one audio m-line.
func negotiateAudio(sd *sdp.SessionDescription, md *sdp.MediaDescription) (Media, bool, error) {
	rtpmaps := map[uint8]string{} // pt -> "NAME/RATE"
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(ptStr, 10, 8)
		if err != nil {
			continue
		}
		rtpmaps[uint8(pt)] = strings.ToUpper(strings.TrimSpace(enc))
	}
	m := Media{Ptime: 20}
	found := false
	for _, f := range md.MediaName.Formats {
		pt64, err := strconv.ParseUint(f, 10, 8)
		if err != nil || pt64 > 127 {
			continue
		}
		pt := uint8(pt64)
		enc, mapped := rtpmaps[pt]
		name := ""
		switch {
		case mapped && (enc == "PCMU/8000" || enc == "PCMU/8000/1"):
			name = "PCMU"
		case mapped && (enc == "PCMA/8000" || enc == "PCMA/8000/1"):
			name = "PCMA"
		case mapped && strings.HasPrefix(enc, "TELEPHONE-EVENT/8000"):
			if m.EventPT == 0 {
				m.EventPT = pt
			}
			continue
		case mapped && (enc == "CN/8000" || enc == "CN/8000/1"), !mapped && pt == PayloadTypeCN:
			if m.CNPT == 0 {
				m.CNPT = pt
			}
			continue
		case !mapped && pt == audio.PayloadTypePCMU:
			name = "PCMU"
		case !mapped && pt == audio.PayloadTypePCMA:
			name = "PCMA"
		}
		if name != "" && !found {
			m.Codec = audio.Codec{Name: name, PayloadType: pt, ClockRate: 8000}
			found = true
		}
	}
	if !found {
		return Media{}, false, nil
	}
	if v, ok := md.Attribute("ptime"); ok {
		if p, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && p >= 10 && p <= 60 && p%10 == 0 {
			m.Ptime = p
		}
	}
	// Direction: media-level attribute wins over session level (RFC 4566 §6).
	dir := audio.SendRecv
	for _, attrs := range [][]sdp.Attribute{sd.Attributes, md.Attributes} {
		for _, a := range attrs {
			if d, ok := audio.ParseDirection(a.Key); ok {
				dir = d
			}
		}
	}
	m.Direction = dir.Reverse()
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return Media{}, false, badSDP("audio stream has no connection address")
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return Media{}, false, badSDP("connection address type %s %s", ci.NetworkType, ci.AddressType)
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// A host name in c= is legal but rare; we do not resolve names on
		// the signalling path.
		return Media{}, false, badSDP("connection address is not an IP address")
	}
	port := md.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return Media{}, false, badSDP("port %d out of range", port)
	}
	m.Remote = netip.AddrPortFrom(addr.Unmap(), uint16(port))
	_, m.RTCPMux = md.Attribute("rtcp-mux")
	if v, ok := md.Attribute("rtcp"); ok {
		m.RTCP = parseRTCPAttr(v)
	}
	if addr.IsUnspecified() && m.Direction == audio.SendRecv {
		// RFC 2543 hold: c=0.0.0.0 with no direction attribute.
		m.Direction = audio.RecvOnly
	}
	return m, true, nil
}

// parseRTCPAttr reads a=rtcp's value (RFC 3605 §2.1): "port" or "port
// IN IP4|IP6 address". Anything else gives the zero AddrPort (ignored:
// RTCP then goes to RTP's port + 1), never an error, since the attribute
// only refines where reports go.
func parseRTCPAttr(v string) netip.AddrPort {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}
	}
	addr := netip.IPv4Unspecified()
	if len(f) == 4 && f[1] == "IN" && (f[2] == "IP4" || f[2] == "IP6") {
		a, err := netip.ParseAddr(f[3])
		if err != nil {
			return netip.AddrPort{}
		}
		addr = a.Unmap()
	} else if len(f) != 1 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr, uint16(port))
}

// LocalSDP describes our side of a session for building SDP bodies.
type LocalSDP struct {
	Addr      netip.Addr // our media address (c= and o=)
	Port      int        // our RTP port
	SessionID uint64     // o= sess-id, fixed for the dialog
	Version   uint64     // o= sess-version, incremented for each new body (RFC 3264 §8)
	// RTCPMux adds a=rtcp-mux (RFC 5761 §5.1.1): in an answer only when
	// the offer had it.
	RTCPMux bool
	// Crypto makes an offer RTP/SAVP with these a=crypto attributes (RFC
	// 4568 §7.1.1; NewOfferCrypto); empty, RTP/AVP. Answers ignore it:
	// their key is Offer.Media.SRTP's.
	Crypto []sdes.Crypto
}

// Answer builds the SDP answer to the offer: the same m-lines in the same
// order, the audio line with the chosen codec, telephone-event and comfort
// noise (RFC 3389 §5) where the offer had them, every
// other line rejected with port 0 (RFC 3264 §6).
func (o *Offer) Answer(l LocalSDP) ([]byte, error) {
	sd := baseSDP(l)
	for i, line := range o.lines {
		if i != o.audio {
			format := line.format
			if format == "" {
				format = "0"
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: line.media, Port: sdp.RangedPort{Value: 0}, Protos: line.protos, Formats: []string{format}},
			})
			continue
		}
		codecs := []audio.Codec{o.Media.Codec}
		md := audioLine(l.Port, codecs, o.Media.EventPT, o.Media.CNPT, o.Media.Direction, 20)
		if c := o.Media.SRTP; c != nil {
			// RFC 4568 §7.1.2: RTP/SAVP, the chosen tag and suite, our key.
			md.MediaName.Protos = []string{"RTP", "SAVP"}
			md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", sdes.Crypto{Tag: c.Tag, Key: c.Local}.Attr()))
		}
		if l.RTCPMux && o.Media.RTCPMux {
			md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute("rtcp-mux"))
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	return sd.Marshal()
}

// BuildOffer builds an SDP offer with every codec we support, in our order,
// and telephone-event (RFC 4733 §7.1.1), used for late-offer INVITEs and
// outbound legs.
func BuildOffer(l LocalSDP, codecs []audio.Codec, eventPT uint8, dir audio.Direction) ([]byte, error) {
	sd := baseSDP(l)
	md := audioLine(l.Port, codecs, eventPT, 0, dir, 20)
	if len(l.Crypto) > 0 {
		md.MediaName.Protos = []string{"RTP", "SAVP"}
		for _, c := range l.Crypto {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", c.Attr()))
		}
	}
	sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	return sd.Marshal()
}

func baseSDP(l LocalSDP) *sdp.SessionDescription {
	addrType := "IP4"
	if l.Addr.Is6() && !l.Addr.Is4In6() {
		addrType = "IP6"
	}
	addr := l.Addr.Unmap().String()
	return &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "cloak", SessionID: l.SessionID, SessionVersion: l.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr,
		},
		SessionName:           "cloak",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

func audioLine(port int, codecs []audio.Codec, eventPT, cnPT uint8, dir audio.Direction, ptime int) *sdp.MediaDescription {
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: port}, Protos: []string{"RTP", "AVP"}},
	}
	for _, c := range codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PayloadType)))
	}
	if eventPT != 0 {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(eventPT)))
	}
	if cnPT != 0 {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(cnPT)))
	}
	for _, c := range codecs {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/%d", c.PayloadType, c.Name, c.ClockRate)))
	}
	if eventPT != 0 {
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", eventPT)),
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-15", eventPT)))
	}
	if cnPT != 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d CN/8000", cnPT)))
	}
	if ptime == 0 {
		ptime = 20
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", strconv.Itoa(ptime)),
		sdp.NewPropertyAttribute(dir.String()))
	return md
}
