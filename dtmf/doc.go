// Package dtmf turns telephone keypad digits into events and keeps them out
// of places they must not reach.
//
// It holds the RFC 4733 telephone-event Decoder and Encoder, the in-band
// tone Detector (Goertzel, 8 kHz linear PCM) and the Masker that removes
// tones from audio behind a short delay line, the SIP INFO body parser,
// the IVR digit Collector, the Policy that says which DTMF sources count,
// and the Secret type that holds collected sensitive digits and prints
// only a mask.
//
// The package is pure: it imports none of cloak's packages, opens no
// sockets, starts no goroutines and never reads the clock — time is
// always passed in. The per-packet and per-frame paths (Decoder.Feed,
// Detector.Process, Masker.Process) allocate nothing; the events they
// return live in a buffer owned by the receiver and are valid until the
// next call.
package dtmf
