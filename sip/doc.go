// Package sip is cloak's SIP user agent: it wraps github.com/emiago/sipgo
// (imported as sipgo) to accept and place calls, turns dialogs into
// [Session] values for the call layer, and negotiates SDP with
// github.com/pion/sdp/v3 (RFC 3264 offer/answer). It never touches RTP:
// the call layer owns media and hands this package only its local port.
//
// Behaviour follows RFC 3261 (INVITE/ACK/BYE/CANCEL/OPTIONS, re-INVITE),
// RFC 3264 (offer/answer, hold), RFC 4733 (telephone-event negotiation),
// RFC 6086 (INFO), and for REGISTER digest RFC 7616 and RFC 8760 (SHA-256,
// nonce-count replay checks, stale nonces; see [Registrar]).
//
// Provisional responses: every INVITE gets 100 Trying at once; 180 Ringing
// only when something rings ([Session.Ringing]); a call answered straight
// away gets no 180, and none ever follows or races a final response. There
// is no 183 Session Progress, as nothing plays before the answer.
//
// Admission: while Config.Admission refuses (the node is overloaded), a new
// INVITE and an OPTIONS outside a dialog get 503 Service Unavailable with
// Retry-After (RFC 3261 §21.5.4, §20.33; OPTIONS as §11.2 asks, so a
// dispatcher probing with OPTIONS moves traffic elsewhere). Requests inside
// a dialog are never refused: calls already up are untouched. Refusals are
// counted by reason (Stats.RefusedBy), not logged one by one.
package sip
