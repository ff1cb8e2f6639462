package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every API token, so a leaked one is recognisable by
// secret scanners and in logs nobody should have written.
const TokenPrefix = "cloak_"

// NewToken returns a new API token (TokenPrefix and 32 random bytes,
// base64url) and its public id (8 random bytes, hex).
func NewToken() (token, id string, err error) {
	b := make([]byte, 32+8)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("auth: token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:32]), hex.EncodeToString(b[32:]), nil
}

// HashSecret is the stored form of a token or session id: hex SHA-256. A
// plain hash suffices: the value is 256 random bits, not a password.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newSecret returns 32 random bytes, base64url.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// bearer returns the token of an "Authorization: Bearer …" header (RFC
// 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
