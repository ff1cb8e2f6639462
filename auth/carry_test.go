package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCarryRoundTrip: a user's session or token is carried with its
// name, role, agent and the forwarding node, and named "via" that node in
// the audit; static tokens, bad node ids and hostile headers are refused.
func TestCarryRoundTrip(t *testing.T) {
	p := Principal{Name: "sue", Kind: KindSession, Role: RoleAgent, Agent: "sue", Expires: time.Unix(2e9, 0).UTC(),
		session: "secret-hash", csrf: "secret-csrf"}
	h, err := Carry(p, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(h)
	if strings.Contains(string(raw), "secret") {
		t.Errorf("the carried principal holds the session's secrets: %s", raw)
	}
	c, err := uncarry(h)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "sue" || c.Role != RoleAgent || c.Agent != "sue" || c.Via != "node-a" || c.Kind != KindSession || c.session != "" {
		t.Errorf("carried %+v", c)
	}
	if got := c.Actor(); got != "user:sue via node:node-a" {
		t.Errorf("Actor %q", got)
	}
	if _, err := Carry(Principal{Name: "metrics.token_file", Kind: KindStatic}, "node-a"); !errors.Is(err, ErrCarried) {
		t.Errorf("a static token carried: %v", err)
	}
	if _, err := Carry(p, "node a\n"); !errors.Is(err, ErrCarried) {
		t.Errorf("a bad node id: %v", err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, h := range map[string]string{
		"not base64":   "!!",
		"not JSON":     enc("{"),
		"static kind":  enc(`{"name":"x","kind":"static","role":"admin","via":"n"}`),
		"unknown role": enc(`{"name":"x","kind":"token","role":"root","via":"n"}`),
		"no node":      enc(`{"name":"x","kind":"token","role":"admin"}`),
		"no name":      enc(`{"kind":"token","role":"admin","via":"n"}`),
		"huge":         strings.Repeat("A", maxCarried+1),
	} {
		if _, err := uncarry(h); !errors.Is(err, ErrCarried) {
			t.Errorf("%s: %v, want ErrCarried", name, err)
		}
	}
}
