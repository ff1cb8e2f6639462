package config

import (
	"errors"
	"strings"
	"testing"
)

func TestMonitorValidate(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		edit       func(*Config)
	}{
		{"zero per call", "monitor.max_per_call", func(c *Config) { c.Monitor.MaxPerCall = 0 }},
		{"too many", "monitor.max_per_call", func(c *Config) { c.Monitor.MaxPerCall = 11 }},
		{"negative ring", "monitor.ring_timeout", func(c *Config) { c.Monitor.RingTimeout = -1 }},
		{"empty supervisor", "queues[0].supervisors[1]", func(c *Config) { c.Queues[0].Supervisors = []string{"sup1", ""} }},
		{"hostile supervisor", "queues[1].supervisors[0]", func(c *Config) { c.Queues[1].Supervisors = []string{"a\r\nb"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.path)
			}
		})
	}
	c := Default()
	c.Queues[0].Supervisors = []string{"sup1", "sup2"}
	if err := c.Validate(); err != nil {
		t.Fatalf("supervisors refused: %v", err)
	}
}
