// Package trunk is cloak's side of SIP trunks as carriers deliver them
// (docs/TRUNKS.md): it identifies which trunk an INVITE came from (by
// source address, or by the digest credentials sip checks for it),
// normalises the caller's and the called number to E.164 per trunk
// (github.com/nyaruka/phonenumbers, the Go port of libphonenumber),
// registers to carriers that want it (RFC 3261 §10) with refresh and
// back-off, probes each trunk with OPTIONS (§11) to mark it up or down,
// and picks the trunk a tel: target leaves by.
//
// It implements interfaces the sip package declares (sip.TrunkTable,
// sip.OutboundRouter); sip never imports it.
package trunk
