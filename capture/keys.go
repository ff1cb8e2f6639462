package capture

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// KeyPlaceholder is the byte every character of an SDES key is replaced
// with in a capture.
const KeyPlaceholder = '*'

// inlinePrefix starts the key-params of an SDP crypto attribute (RFC 4568
// §6.1, §9.1: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4").
const inlinePrefix = "inline:"

// RedactSDESKeys returns payload with the key-salt of every "inline:"
// key-params (RFC 4568 §9.1) — in an a=crypto line or anywhere else —
// replaced by KeyPlaceholder, byte for byte, so Content-Length stays true
// and the message still parses. The lifetime and MKI after "|" are kept.
// payload itself is never modified: a copy is made when there is a key
// to hide, else payload is returned as it is.
func RedactSDESKeys(payload []byte) []byte {
	var out []byte
	for i := 0; i+len(inlinePrefix) <= len(payload); i++ {
		if !hasPrefixFold(payload[i:], inlinePrefix) {
			continue
		}
		j := i + len(inlinePrefix)
		for j < len(payload) && !endsKey(payload[j]) {
			if out == nil {
				out = append([]byte(nil), payload...)
			}
			out[j] = KeyPlaceholder
			j++
		}
		i = j - 1
	}
	if out == nil {
		return payload
	}
	return out
}

// endsKey reports whether c ends a key-salt: "|" (lifetime, MKI), ";"
// (the next key-params), white space and line ends.
func endsKey(c byte) bool {
	return c == '|' || c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// KeyRedactedMarker is the marker a KeySafe sink writes once, before the
// first packet it redacted, so whoever reads the capture knows the keys
// are placeholders (classic pcap has no comments: the marker is the
// file's note).
const KeyRedactedMarker = "SDES keys (a=crypto inline:) are replaced by '*' in this capture"

// KeySafe wraps the sink of SIP messages so that no SDES key (an SRTP
// master key in an SDP a=crypto line) and no digest response reaches it:
// see RedactSDESKeys and RedactDigestResponses.
// WriteMarker passes through when the sink takes markers.
func KeySafe(s Sink) Sink { return &keySafe{sink: s} }

type keySafe struct {
	sink         Sink
	marked       atomic.Bool // KeyRedactedMarker written
	markedDigest atomic.Bool // DigestRedactedMarker written
}

// WritePacket implements Sink. Digest responses are secrets of the same
// kind as keys (a password can be tried against one offline), so the
// sink blanks them too (RedactDigestResponses).
func (k *keySafe) WritePacket(ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) error {
	red := RedactSDESKeys(payload)
	if len(red) > 0 && len(payload) > 0 && &red[0] != &payload[0] && k.marked.CompareAndSwap(false, true) {
		_ = k.WriteMarker(ts, KeyRedactedMarker)
	}
	dig := RedactDigestResponses(red)
	if len(dig) > 0 && len(red) > 0 && &dig[0] != &red[0] && k.markedDigest.CompareAndSwap(false, true) {
		_ = k.WriteMarker(ts, DigestRedactedMarker)
	}
	return k.sink.WritePacket(ts, src, dst, proto, dig)
}

// WriteMarker implements MarkerWriter.
func (k *keySafe) WriteMarker(ts time.Time, text string) error {
	if m, ok := k.sink.(MarkerWriter); ok {
		return m.WriteMarker(ts, text)
	}
	return nil
}
