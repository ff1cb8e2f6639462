// Package audio is the vocabulary of an RTP audio stream that sip
// negotiates and media carries: its Codec (G.711 µ-law and A-law on the
// static payload types of RFC 3551, with their encode and decode tables
// from github.com/zaf/g711) and its Direction (the SDP attributes of
// RFC 3264 §5.1 and §6.1). Written once here, so the SIP side and the
// media side never convert between two spellings of the same thing.
//
// It also holds cloak's level meter (level.go): RMS of linear PCM as dBFS
// and as G.711 dBm0, and a P.56-style active level, which keep prompts,
// tones and hold audio at the levels of docs/AUDIO.md.
//
// The package is pure: it imports none of cloak's packages.
package audio
