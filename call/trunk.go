package call

import (
	"strings"

	"github.com/cloak-voip/cloak/sip"
)

// Participant data keys a trunk call starts with (docs/TRUNKS.md).
const (
	// DataTrunk is the trunk the call came in on.
	DataTrunk = "trunk"
	// DataCalledNumber is the dialled number in E.164.
	DataCalledNumber = "called_number"
	// DataDivertedFrom lists the numbers the call was diverted from,
	// oldest first, comma-separated (Diversion, RFC 5806; History-Info,
	// RFC 7044).
	DataDivertedFrom = "diverted_from"
)

// trunkData puts what the trunk told of the call into its participant
// data, where the archive keeps (and masks after the call, per
// archive.participant_data) it.
func trunkData(c *Interaction, id sip.Identity) {
	if id.Trunk == "" {
		return
	}
	c.SetData(DataTrunk, id.Trunk)
	if id.Called != "" {
		c.SetData(DataCalledNumber, id.Called)
	}
	if len(id.Redirects) > 0 {
		c.SetData(DataDivertedFrom, strings.Join(id.Redirects, ","))
	}
}
