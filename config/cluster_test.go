package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterValidate: cluster.enabled is refused without a PostgreSQL
// archive, naming the field; intervals out of range name theirs.
func TestClusterValidate(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" valid
	}{
		{"default off", func(c *Config) {}, ""},
		{"on with postgres", func(c *Config) {
			c.Cluster.Enabled, c.Archive.DSN = true, "postgres://cloak@db.example/cloak"
		}, ""},
		{"on with sqlite", func(c *Config) { c.Cluster.Enabled = true }, "cluster.enabled: needs archive.dsn"},
		{"on without archive", func(c *Config) {
			c.Cluster.Enabled, c.Archive.DSN, c.Archive.Enabled = true, "postgres://cloak@db.example/cloak", false
		}, "cluster.enabled: needs archive.enabled"},
		{"token file without the cluster", func(c *Config) { c.Cluster.TokenFile = "/etc/cloak/cluster.token" }, "cluster.token_file"},
		{"token file with the cluster", func(c *Config) {
			c.Cluster.Enabled, c.Archive.DSN, c.Cluster.TokenFile = true, "postgres://cloak@db.example/cloak", "/etc/cloak/cluster.token"
		}, ""},
		{"ca file without the cluster", func(c *Config) { c.Cluster.CAFile = "/etc/cloak/cluster-ca.pem" }, "cluster.ca_file: set without cluster.enabled"},
		{"ca file without admin.tls", func(c *Config) {
			c.Cluster.Enabled, c.Archive.DSN, c.Cluster.CAFile = true, "postgres://cloak@db.example/cloak", notPEM
		}, "cluster.ca_file: set without admin.tls"},
		{"ca file not PEM", func(c *Config) {
			c.Cluster.Enabled, c.Archive.DSN, c.Cluster.CAFile = true, "postgres://cloak@db.example/cloak", notPEM
			c.Admin.TLS = AdminTLS{CertFile: "/etc/cloak/admin.crt", KeyFile: "/etc/cloak/admin.key"}
		}, "cluster.ca_file: certificate: " + notPEM + " holds no PEM certificate"},
		{"bad node id", func(c *Config) { c.Cluster.NodeID = "a b" }, "cluster.node_id"},
		{"heartbeat too short", func(c *Config) { c.Cluster.Heartbeat = 10 * time.Millisecond }, "cluster.heartbeat"},
		{"timeout under 3 beats", func(c *Config) { c.Cluster.NodeTimeout = 5 * time.Second }, "cluster.node_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
