package config

import (
	"regexp"
	"time"

	"github.com/cloak-voip/cloak/certs"
)

// Cluster configures the state several cloak nodes share in PostgreSQL
// (docs/SCALE.md): a node registry with heartbeats, agents' registrations
// and states, and the clean-up of a node that stopped beating. Off, a
// node keeps agents in its own memory (the single-node default).
type Cluster struct {
	// Enabled shares agents' registrations and states with the other
	// nodes through the archive's PostgreSQL (archive.dsn must be a
	// postgres:// URL and archive.enabled true).
	Enabled bool `yaml:"enabled"`
	// NodeID names this node in the registry, the agents it claims and
	// the live calls it holds: letters, digits, . _ : -, at most 64.
	// Empty means the host name and the admin port (or the SIP port when
	// the admin API is off), e.g. "cc1:8080".
	NodeID string `yaml:"node_id"`
	// Heartbeat is how often the node writes its heartbeat (and its live
	// calls) and looks for lost nodes, 200ms to 1m.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// NodeTimeout is how old a node's last heartbeat may grow before a
	// survivor declares it lost: frees its agents (reserved included) and
	// ends its open calls as node-lost in the archive. At least three
	// heartbeats, at most 10m.
	NodeTimeout time.Duration `yaml:"node_timeout"`
	// TokenFile is a file holding the node-to-node token (one line, at
	// least 32 characters, no spaces), the same on every node: with it a
	// node lists the other nodes' calls (GET /api/cluster/calls) and
	// forwards actions on a call another node holds, on behalf of the
	// user it authenticated. Empty: each node shows and acts on its own
	// calls only.
	TokenFile string `yaml:"token_file"`
	// CAFile is a PEM bundle of the CAs that sign the nodes' admin.tls
	// certificates. Node to node (the cluster view, forwarded actions)
	// requests go over HTTPS when admin.tls is on, and with CAFile accept
	// only a certificate one of these CAs signed for the other node's
	// admin address (the system's roots are then not trusted). Empty:
	// the system's roots and this node's own admin.tls.cert_file (which
	// must then hold the CA, or every node one shared certificate).
	// Needs admin.tls.
	CAFile string `yaml:"ca_file"`
}

// DefaultCluster is the cluster section's default: off, heartbeat 2 s,
// a node lost after 15 s of silence.
func DefaultCluster() Cluster {
	return Cluster{Heartbeat: 2 * time.Second, NodeTimeout: 15 * time.Second}
}

var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// validate appends the cluster section's problems through bad.
func (c *Config) validateCluster(bad func(path, format string, args ...any)) {
	cl := c.Cluster
	if cl.NodeID != "" && !nodeIDRe.MatchString(cl.NodeID) {
		bad("cluster.node_id", "want 1 to 64 of letters, digits, . _ : -, got %q", cl.NodeID)
	}
	if cl.Heartbeat < 200*time.Millisecond || cl.Heartbeat > time.Minute {
		bad("cluster.heartbeat", "%v is outside 200ms-1m", cl.Heartbeat)
	}
	if cl.NodeTimeout < 3*cl.Heartbeat || cl.NodeTimeout > 10*time.Minute {
		bad("cluster.node_timeout", "%v is outside 3 × cluster.heartbeat (%v) to 10m", cl.NodeTimeout, 3*cl.Heartbeat)
	}
	if !cl.Enabled {
		if cl.TokenFile != "" {
			bad("cluster.token_file", "set without cluster.enabled: there are no other nodes to speak to")
		}
		if cl.CAFile != "" {
			bad("cluster.ca_file", "set without cluster.enabled: there are no other nodes to speak to")
		}
		return
	}
	if cl.CAFile != "" {
		if c.Admin.TLS.CertFile == "" {
			bad("cluster.ca_file", "set without admin.tls: the nodes speak plain HTTP to each other")
		} else if _, err := certs.LoadPool(cl.CAFile); err != nil {
			bad("cluster.ca_file", "%v", err)
		}
	}
	if ArchiveEngine(c.Archive.DSN) != "postgres" {
		bad("cluster.enabled", "needs archive.dsn to be a postgres://… URL (the nodes' shared database)")
	}
	if !c.Archive.Enabled {
		bad("cluster.enabled", "needs archive.enabled: the shared state lives in the archive's database")
	}
}
