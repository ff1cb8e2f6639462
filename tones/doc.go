// Package tones synthesises the call-progress and test tones cloak plays
// itself: the 1004 Hz test tone and ringback. They are 8 kHz 16-bit
// linear PCM, ready for media.NewPromptPCM. DTMF keypad tones are the dtmf
// package's (dtmf.Tone), which also detects them.
//
// The package is pure: it imports none of cloak's packages.
package tones
