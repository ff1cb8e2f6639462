// Package sdes is the vocabulary of SDP Security Descriptions for media
// streams (SDES, RFC 4568): the crypto suites cloak speaks, an SRTP master
// key and salt (Key), and the a=crypto attribute that carries them in SDP
// (Crypto). It is pure: no sockets, no SDP parser, no SRTP; package sip
// reads and writes the attribute, package media keys its SRTP contexts
// with the Key.
//
// Key material is secret: a Key prints, marshals and logs as a mask, its
// bytes are reachable only through Material, and Zero overwrites them.
// Errors of this package never hold a byte of the attribute they refused.
package sdes

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// Suite is an SRTP crypto suite named in an a=crypto attribute (RFC 4568
// §6.2).
type Suite uint8

// The suites cloak negotiates (Suites gives their order of preference).
const (
	// SuiteNone is the zero value: no suite.
	SuiteNone Suite = iota
	// AESCM128HMACSHA1_80 is AES_CM_128_HMAC_SHA1_80 (RFC 4568 §6.2.1,
	// RFC 3711 §4.1.1, §4.2.1): AES-128 counter mode, 80-bit HMAC-SHA1
	// tag.
	AESCM128HMACSHA1_80
	// AESCM128HMACSHA1_32 is AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2.2):
	// the same with a 32-bit tag on SRTP (SRTCP keeps 80 bits).
	AESCM128HMACSHA1_32
	// AEADAES128GCM is AEAD_AES_128_GCM (RFC 7714 §14.2, §12): AES-128
	// GCM with a 16-byte tag and a 96-bit salt.
	AEADAES128GCM
)

// Suites are the suites cloak speaks, in its default order of preference
// (config rtp.srtp_suites): the order of its offers' a=crypto attributes,
// and the rank by which its answers choose among an offer's (RFC 4568
// §7.1.2 lets the answerer pick any it supports). AEAD_AES_128_GCM comes
// first: with AES-NI and carry-less multiply it costs a third of what
// AES-CM with HMAC-SHA1 costs per packet, and less again at a relay's
// many legs (docs/PERFORMANCE.md, "SRTP per packet"). AES-CM with
// HMAC-SHA1 is SRTP's default transform (RFC 3711 §5), which every SDES
// peer speaks, so a peer without GCM still finds a suite.
var Suites = []Suite{AEADAES128GCM, AESCM128HMACSHA1_80, AESCM128HMACSHA1_32}

var suiteNames = [...]string{"", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"}

// Order is a choice of suites in order of preference (config
// rtp.srtp_suites), each at most once, ended by SuiteNone or the end of
// the array. The zero Order means Suites. It is an array, not a slice,
// so that policies holding one stay comparable.
type Order [len(suiteNames) - 1]Suite

// ErrOrder means a list of suite names is not an Order: empty, an
// unknown name, or one named twice.
var ErrOrder = errors.New("sdes: bad suite list")

// ParseOrder returns the Order of SDP suite names (ParseSuite's).
func ParseOrder(names []string) (Order, error) {
	var o Order
	if len(names) == 0 {
		return o, fmt.Errorf("no suite: %w", ErrOrder)
	}
	for i, n := range names {
		s, ok := ParseSuite(n)
		switch {
		case !ok:
			return Order{}, fmt.Errorf("%q: unknown suite: %w", n, ErrOrder)
		case slices.Contains(o[:i], s):
			return Order{}, fmt.Errorf("%q named twice: %w", n, ErrOrder)
		}
		o[i] = s // i < len(o): every name known and none twice
	}
	return o, nil
}

// Suites returns the order as a list: Suites for the zero Order.
func (o Order) Suites() []Suite {
	n := 0
	for n < len(o) && o[n] != SuiteNone {
		n++
	}
	if n == 0 {
		return Suites
	}
	return o[:n:n]
}

// String returns the suite's SDP name.
func (s Suite) String() string {
	if int(s) < len(suiteNames) && s != SuiteNone {
		return suiteNames[s]
	}
	return "unknown"
}

// ParseSuite returns the suite of an SDP name (case as in RFC 4568,
// which registers upper-case names; compared without regard to case).
func ParseSuite(name string) (Suite, bool) {
	for i, n := range suiteNames {
		if i != 0 && strings.EqualFold(n, name) {
			return Suite(i), true
		}
	}
	return SuiteNone, false
}

// KeyLen is the master key's length in bytes.
func (s Suite) KeyLen() int {
	if s == SuiteNone || int(s) >= len(suiteNames) {
		return 0
	}
	return 16
}

// SaltLen is the master salt's length in bytes: 112 bits for AES-CM (RFC
// 3711 §8.2), 96 bits for AES-GCM (RFC 7714 §12).
func (s Suite) SaltLen() int {
	switch s {
	case AESCM128HMACSHA1_80, AESCM128HMACSHA1_32:
		return 14
	case AEADAES128GCM:
		return 12
	}
	return 0
}

// TagLen is the length in bytes SRTP adds to an RTP packet: the
// authentication tag (10 or 4 bytes for HMAC-SHA1, RFC 3711 §4.2; 16 for
// GCM, RFC 7714 §7.2).
func (s Suite) TagLen() int {
	switch s {
	case AESCM128HMACSHA1_80:
		return 10
	case AESCM128HMACSHA1_32:
		return 4
	case AEADAES128GCM:
		return 16
	}
	return 0
}

// Errors of this package; they never carry the attribute's bytes.
var (
	// ErrCrypto means an a=crypto attribute is malformed (RFC 4568 §9.1).
	ErrCrypto = errors.New("sdes: malformed crypto attribute")
	// ErrUnsupported means a well-formed attribute asks for something
	// cloak does not do: an unknown suite, an MKI, a lifetime other
	// than the default, several keys, or session parameters.
	ErrUnsupported = errors.New("sdes: unsupported crypto attribute")
)

// Key is an SRTP master key and master salt (RFC 3711 §8.2), the
// key||salt of an inline key-param (RFC 4568 §6.1). It is a secret: it
// prints, marshals and logs as a mask; Material is the only way to its
// bytes. The zero Key (or nil) is no key.
type Key struct {
	suite Suite
	b     []byte // key || salt
}

// NewKey returns a fresh random key for suite from crypto/rand.
func NewKey(s Suite) (*Key, error) {
	n := s.KeyLen() + s.SaltLen()
	if n == 0 {
		return nil, fmt.Errorf("new key for suite %d: %w", s, ErrUnsupported)
	}
	k := &Key{suite: s, b: make([]byte, n)}
	if _, err := rand.Read(k.b); err != nil {
		return nil, fmt.Errorf("new srtp key: %w", err)
	}
	return k, nil
}

// Suite returns the suite the key is for.
func (k *Key) Suite() Suite {
	if k == nil {
		return SuiteNone
	}
	return k.suite
}

// Material returns the master key and master salt. The slices are the
// key's own: callers copy nothing they do not zero.
func (k *Key) Material() (key, salt []byte) {
	if k == nil || len(k.b) == 0 {
		return nil, nil
	}
	n := k.suite.KeyLen()
	return k.b[:n:n], k.b[n:]
}

// Equal reports whether k and o are the same suite and bytes.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	if k.suite != o.suite || len(k.b) != len(o.b) {
		return false
	}
	var d byte
	for i := range k.b {
		d |= k.b[i] ^ o.b[i]
	}
	return d == 0
}

// Clone returns a copy of k with bytes of its own (nil for nil): whoever
// holds it zeroes it when done.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	return &Key{suite: k.suite, b: append([]byte(nil), k.b...)}
}

// Zero overwrites the key's bytes with zeros; the key is then no key.
// Safe on nil.
func (k *Key) Zero() {
	if k == nil {
		return
	}
	clear(k.b)
	k.b = nil
}

// IsZero reports whether k holds no key (nil, or zeroed).
func (k *Key) IsZero() bool { return k == nil || len(k.b) == 0 }

const mask = "[srtp key]"

// String returns a mask, never the key.
func (k *Key) String() string { return mask }

// GoString returns a mask, never the key (%#v).
func (k *Key) GoString() string { return mask }

// MarshalJSON returns a mask, never the key.
func (k *Key) MarshalJSON() ([]byte, error) { return []byte(`"` + mask + `"`), nil }

// MarshalText returns a mask, never the key.
func (k *Key) MarshalText() ([]byte, error) { return []byte(mask), nil }

// MarshalZerologObject logs a mask and the suite, never the key.
func (k *Key) MarshalZerologObject(e *zerolog.Event) { e.Stringer("suite", k.Suite()) }

// Crypto is one a=crypto attribute (RFC 4568 §9.1) in the form cloak
// accepts: a tag, a suite and one inline key without lifetime or MKI.
type Crypto struct {
	// Tag identifies the attribute within its m-line (1-999999999, §9.1);
	// the answer repeats the chosen offer line's tag (§6.1).
	Tag int
	// Key is the sender's master key and salt for Suite.
	Key *Key
}

// ParseCrypto parses an a=crypto attribute's value, "tag suite
// inline:KEYSALT[|lifetime][|MKI:len] [session-params]" (RFC 4568 §9.1).
// It refuses what it cannot honour cleanly with ErrUnsupported: an
// unknown suite, more than one key-param, an MKI (cloak keys each leg
// with one master key, so it has none to indicate), a lifetime other than
// the suite's maximum (2^48 for SRTP, which cloak never reaches: it would
// have to rekey), and session parameters (KDR, UNENCRYPTED_SRTP, ...).
// Errors wrap ErrCrypto or ErrUnsupported and never quote the value.
func ParseCrypto(value string) (Crypto, error) {
	f := strings.Fields(value)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%d fields: %w", len(f), ErrCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("tag: %w", ErrCrypto)
	}
	suite, ok := ParseSuite(f[1])
	if !ok {
		return Crypto{}, fmt.Errorf("suite: %w", ErrUnsupported)
	}
	if len(f) > 3 {
		return Crypto{}, fmt.Errorf("session parameters: %w", ErrUnsupported)
	}
	params := f[2]
	if strings.Contains(params, ";") {
		return Crypto{}, fmt.Errorf("several keys: %w", ErrUnsupported)
	}
	method, info, ok := strings.Cut(params, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return Crypto{}, fmt.Errorf("key method: %w", ErrUnsupported)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return Crypto{}, fmt.Errorf("key parameters: %w", ErrCrypto)
	}
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			return Crypto{}, fmt.Errorf("mki: %w", ErrUnsupported)
		}
		if !maxLifetime(p) {
			return Crypto{}, fmt.Errorf("lifetime: %w", ErrUnsupported)
		}
	}
	want := suite.KeyLen() + suite.SaltLen()
	enc := parts[0]
	if len(enc) > base64.StdEncoding.EncodedLen(want) {
		return Crypto{}, fmt.Errorf("key length: %w", ErrCrypto)
	}
	// Unpadded base64 decodes to more bytes than padded of the same
	// length: the buffer is sized for it (FuzzParseCrypto found it).
	b := make([]byte, base64.RawStdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(b, []byte(enc))
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(b, []byte(enc))
	}
	if err != nil || n != want {
		clear(b)
		return Crypto{}, fmt.Errorf("key length: %w", ErrCrypto)
	}
	clear(b[n:])
	return Crypto{Tag: tag, Key: &Key{suite: suite, b: b[:n:n]}}, nil
}

// maxLifetime reports whether a lifetime field (RFC 4568 §6.1: a decimal
// count or "2^n") is the SRTP maximum, 2^48 packets (RFC 3711 §9.2),
// which is what omitting it means: the only lifetime cloak accepts.
func maxLifetime(p string) bool {
	if p == "2^48" {
		return true
	}
	v, err := strconv.ParseUint(p, 10, 64)
	return err == nil && v == 1<<48
}

// Attr returns the attribute's value for SDP, "tag suite inline:KEYSALT"
// (RFC 4568 §9.1): key material goes only into the SDP body, which cloak
// sends only over TLS unless told otherwise, and which its SIP logs and
// captures redact.
func (c Crypto) Attr() string {
	return strconv.Itoa(c.Tag) + " " + c.Key.Suite().String() + " inline:" + base64.StdEncoding.EncodeToString(c.Key.b)
}

// String returns the attribute with its key masked.
func (c Crypto) String() string {
	return strconv.Itoa(c.Tag) + " " + c.Key.Suite().String() + " inline:" + mask
}
