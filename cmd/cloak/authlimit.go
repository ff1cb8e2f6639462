package main

import (
	"fmt"

	"github.com/cloak-voip/cloak/authlimit"
	"github.com/cloak-voip/cloak/config"
)

// authLimiter builds REGISTER's failed-attempt limiter from sip.auth
// (backoff 0 means none, which authlimit spells negative).
func authLimiter(a config.SIPAuth) (*authlimit.Limiter, error) {
	backoff := a.Backoff
	if backoff == 0 {
		backoff = -1
	}
	l, err := authlimit.New(authlimit.Config{MaxFailures: a.MaxFailures, LockFor: a.LockFor, Backoff: backoff})
	if err != nil {
		return nil, fmt.Errorf("sip.auth: %w", err)
	}
	return l, nil
}
