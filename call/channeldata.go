package call

import (
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/sip"
)

// ChannelHeader is one INVITE header kept as participant data
// (archive.channel_data).
type ChannelHeader struct {
	// Header is the SIP header's name, matched without regard to case.
	Header string
	// Key is the participant-data key its value is set under.
	Key string
}

// channelData sets each configured header of the INVITE as participant
// data under its key, where the archive applies the key's policy (masked
// after the call by default). A header that is repeated, too long, holds
// a control character or a possible card number is not kept and is
// logged by name only: the value is hostile input and may be what must
// never be written.
func channelData(c *Interaction, s *sip.Session, headers []ChannelHeader) {
	for _, h := range headers {
		v, ok, err := s.HeaderValue(h.Header)
		switch {
		case err != nil:
			c.log.Warn().Str("header", h.Header).Str("key", h.Key).Err(err).Msg("channel data refused")
		case !ok:
		case fraud.HasPAN(v):
			c.log.Warn().Str("header", h.Header).Str("key", h.Key).Msg("channel data refused: the value holds a possible card number")
		default:
			c.SetData(h.Key, v)
		}
	}
}
