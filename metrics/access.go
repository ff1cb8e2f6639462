package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Access says who may read /metrics.
type Access struct {
	// Token, when not empty, is the bearer token a scrape must send
	// (Authorization: Bearer TOKEN, RFC 6750 §2.1), from any address.
	// Empty: loopback clients only, no token.
	Token string
	// Authorised: the caller has already decided who may scrape (the
	// API's permission table, auth.Rules), so no rule is applied here.
	Authorised bool
}

// guard wraps h with the access rule: without a token a client that is
// not on loopback gets 403; with one, a request without it (or with
// another) gets 401 and a WWW-Authenticate challenge (RFC 6750 §3).
func (a Access) guard(h http.Handler) http.Handler {
	if a.Authorised {
		return h
	}
	if a.Token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !loopback(r.RemoteAddr) {
				http.Error(w, "metrics: loopback clients only (set metrics.token_file to scrape from elsewhere)", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	want := sha256.Sum256([]byte(a.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		// Hashes compared in constant time: neither the token's length
		// nor its prefix leaks through timing.
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cloak metrics"`)
			http.Error(w, "metrics: bearer token required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopback reports whether a RemoteAddr ("IP:port") is a loopback address.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
