package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters (RFC 9106 §3.1).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams: 64 MiB, 3 passes, 2 lanes — RFC 9106 §4's second
// recommended option (64 MiB, t=3) with the lanes cut to the 2 cores a
// small node has. BenchmarkVerifyPassword measured 1.3 s a verification
// on a 2-core machine at load average 14 (so roughly 0.2 s idle); under
// -race it takes seconds. Sign-in lets at most MaxConcurrentHashes run at
// once, so a flood of sign-ins costs at most that many × 64 MiB, not a
// gigabyte. The parameters are stored in each hash, so changing them
// later keeps old hashes verifiable.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrHash is a stored hash that does not parse.
var ErrHash = errors.New("auth: unreadable password hash")

// HashPassword returns the argon2id PHC string of password:
// $argon2id$v=19$m=65536,t=3,p=2$SALT$HASH (base64, no padding).
func HashPassword(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := idKey([]byte(password), salt, p, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches hash, comparing in
// constant time.
func VerifyPassword(password, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrHash
	}
	var v int
	var p Params
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Memory > 1<<22 || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return false, ErrHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 {
		return false, ErrHash
	}
	got := idKey([]byte(password), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// MinPasswordLen is the shortest password accepted outside demo mode
// (PCI DSS v4 8.3.6 asks for 12).
const MinPasswordLen = 12

// ErrWeakPassword is a password CheckPassword refuses.
var ErrWeakPassword = errors.New("auth: password refused")

// denied are passwords (and stems) too obvious to allow, compared
// case-insensitively after removing digits and symbols at the ends.
var denied = []string{"password", "passwort", "motdepasse", "demo", "cloak", "admin", "administrator",
	"letmein", "welcome", "qwerty", "qwertyuiop", "azerty", "abc", "abcdef", "iloveyou", "secret",
	"changeme", "default", "supervisor", "agent", "archivist", "auditor", "root", "test", "user", "login"}

// CheckPassword refuses a password shorter than MinPasswordLen
// characters, one that is the user name (in any case, or contains it),
// a word of the deny list with digits or symbols around it, one
// character repeated, or a run like 123456789012 / abcdefghijkl. In demo
// mode any non-empty password passes.
func CheckPassword(user, password string, demo bool) error {
	if password == "" {
		return fmt.Errorf("%w: empty", ErrWeakPassword)
	}
	if demo {
		return nil
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordLen {
		return fmt.Errorf("%w: %d characters, want at least %d", ErrWeakPassword, n, MinPasswordLen)
	}
	low := strings.ToLower(password)
	if u := strings.ToLower(user); u != "" && strings.Contains(low, u) {
		return fmt.Errorf("%w: contains the user name", ErrWeakPassword)
	}
	stem := strings.TrimFunc(low, func(r rune) bool { return !(r >= 'a' && r <= 'z') })
	for _, d := range denied {
		if stem == d || strings.Trim(low, "0123456789!@#$%^&*.-_ ") == d {
			return fmt.Errorf("%w: a well-known password", ErrWeakPassword)
		}
	}
	if repeated(low) {
		return fmt.Errorf("%w: repeats a short pattern", ErrWeakPassword)
	}
	if sequential(low) {
		return fmt.Errorf("%w: a keyboard or alphabet run", ErrWeakPassword)
	}
	return nil
}

// repeated reports whether s is one pattern of 1 to 4 characters repeated.
func repeated(s string) bool {
	for n := 1; n <= 4 && n < len(s); n++ {
		if len(s)%n == 0 && strings.Repeat(s[:n], len(s)/n) == s {
			return true
		}
	}
	return false
}

// sequential reports whether every byte of s is the one before plus or
// minus one (1234567890…, abcdef…, with 0 after 9).
func sequential(s string) bool {
	up, down := true, true
	for i := 1; i < len(s); i++ {
		a, b := s[i-1], s[i]
		if !(b == a+1 || (a == '9' && b == '0')) {
			up = false
		}
		if !(b+1 == a || (a == '0' && b == '9')) {
			down = false
		}
	}
	return up || down
}

// RandomPassword returns a password of 20 random characters from an
// alphabet without look-alikes, for the initial admin.
func RandomPassword() (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random password: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)] // 256 % 57 bias: ~0.1 bit of 117, fine
	}
	return string(b), nil
}

// ErrUserName: a user name that is not 1 to 64 of letters, digits and
// "._@-".
var ErrUserName = errors.New("auth: a user name is 1 to 64 of letters, digits and . _ @ -")

// ValidUserName checks a new user's name (the CLI's users add and the
// API's POST /api/users): 1 to 64 of letters, digits and "._@-". Its
// error never echoes the name.
func ValidUserName(n string) error {
	if n == "" || len(n) > 64 {
		return ErrUserName
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return ErrUserName
		}
	}
	return nil
}
