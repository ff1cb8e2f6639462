package archive

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// Participant-data policies: what the archive stores of a key's value
// once the interaction has ended.
const (
	Keep          = "keep"            // the value as it is
	MaskAfterCall = "mask_after_call" // a mask plus a search token
	DropAfterCall = "drop_after_call" // nothing
)

// KeyPolicy is one key's policy. Visible is how many trailing characters
// a mask shows.
type KeyPolicy struct {
	Policy  string
	Visible int
}

// Policy is the participant-data policy: Default for keys not in Keys.
// The zero Policy masks every key showing nothing.
type Policy struct {
	Default KeyPolicy
	Keys    map[string]KeyPolicy
}

// For returns key's policy.
func (p Policy) For(key string) KeyPolicy {
	if kp, ok := p.Keys[key]; ok {
		return kp
	}
	if p.Default.Policy == "" {
		return KeyPolicy{Policy: MaskAfterCall}
	}
	return p.Default
}

// Mask returns "****" and the last visible characters of v. A value no
// longer than twice visible shows nothing, so a short value is never
// given away whole or nearly so.
func Mask(v string, visible int) string {
	n := utf8.RuneCountInString(v)
	if visible <= 0 || n <= 2*visible {
		return "****"
	}
	r := []rune(v)
	return "****" + string(r[n-visible:])
}

// Token is the search token of key=value: hex HMAC-SHA256 under the
// archive key of the key, a NUL and the value. The same key and value
// give the same token, so a search by the exact value finds a masked
// row; without the key the token says nothing of the value.
func Token(archiveKey []byte, key, value string) string {
	m := hmac.New(sha256.New, archiveKey)
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// apply returns what is stored of key=value, and false when nothing is
// (drop_after_call).
func (p Policy) apply(archiveKey []byte, key, value string) (DataItem, bool) {
	kp := p.For(key)
	switch kp.Policy {
	case Keep:
		return DataItem{Key: key, Value: value, Policy: Keep}, true
	case DropAfterCall:
		return DataItem{}, false
	default: // mask_after_call, and any unknown policy fails closed
		return DataItem{Key: key, Value: Mask(value, kp.Visible), Token: Token(archiveKey, key, value), Policy: MaskAfterCall}, true
	}
}

// LoadKey reads the archive key from path: hex or raw, at least 16
// bytes after trimming. With create, a missing file is created with 32
// random bytes (hex, mode 0600) first.
func LoadKey(path string, create bool) ([]byte, error) {
	if create {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			var k [32]byte
			if _, err := rand.Read(k[:]); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil && !errors.Is(err, os.ErrExist) { // ErrExist: created beside us
				return nil, fmt.Errorf("%w: %v", ErrKey, err)
			}
			if err == nil {
				_, werr := f.WriteString(hex.EncodeToString(k[:]) + "\n")
				if cerr := f.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					os.Remove(path)
					return nil, fmt.Errorf("%w: %v", ErrKey, werr)
				}
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	k := []byte(strings.TrimSpace(string(b)))
	if len(k) < 16 {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want at least 16", ErrKey, path, len(k))
	}
	return k, nil
}
