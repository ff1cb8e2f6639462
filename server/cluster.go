package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
	"github.com/rs/zerolog"
)

// nodeCluster is the node's membership of the cluster (cluster.enabled),
// or nothing.
type nodeCluster struct {
	node  *cluster.Node
	peers *peers // the view's node-to-node client; nil without cluster.token_file
	log   zerolog.Logger
	once  sync.Once
}

// clusterSetup joins the cluster when cluster.enabled: the agents'
// registrations and states move to the archive's PostgreSQL (dir uses it
// from now on), the node beats and syncs its calls, and a lost node's
// agents and calls are cleaned up by a survivor. A database that cannot
// be reached at start refuses the start: a node that cannot see the
// shared agents would offer them twice.
func clusterSetup(ctx context.Context, cfg config.Config, arch *nodeArchive, dir *acd.Directory, mgr *call.Manager,
	sipAddr string, version string, log zerolog.Logger) (*nodeCluster, error) {
	c := &nodeCluster{log: log}
	if !cfg.Cluster.Enabled {
		return c, nil
	}
	if arch.store == nil { // validated: archive.enabled with a postgres:// DSN
		return nil, fmt.Errorf("cluster.enabled: %w: needs the archive", cluster.ErrOptions)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := arch.store.Migrate(sctx); err != nil {
		return nil, fmt.Errorf("cluster.enabled: shared database unavailable: %w", err)
	}
	id := nodeName(cfg)
	var onChange func([]string)
	if dir != nil {
		onChange = dir.Notify
	}
	node, err := cluster.New(arch.store.DB(), cluster.Options{
		NodeID: id, SIPAddr: sipAddr, AdminAddr: cfg.Admin.Listen, Version: version,
		Heartbeat: cfg.Cluster.Heartbeat, NodeTimeout: cfg.Cluster.NodeTimeout, DSN: cfg.Archive.DSN,
		Calls: liveCalls(mgr), OnChange: onChange, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if dir != nil {
		if err := node.Seed(sctx, dir.Configs()); err != nil {
			return nil, fmt.Errorf("cluster.enabled: %w", err)
		}
		dir.UseShared(node, sharedErrLog(log))
	}
	if err := node.Start(sctx); err != nil {
		return nil, fmt.Errorf("cluster.enabled: %w", err)
	}
	c.node = node
	tok, err := clusterToken(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	if c.peers, err = newPeers(cfg, node, tok); err != nil {
		return nil, err
	}
	if c.peers == nil {
		log.Warn().Msg("cluster: no cluster.token_file: each node lists and acts on its own calls only")
	}
	return c, nil
}

// sharedErrLog logs failures of the shared agent store, at most once
// every 10 s per operation (a down database fails every waiting caller's
// claim once a second), with the count of those not logged.
func sharedErrLog(log zerolog.Logger) func(op string, err error) {
	var mu sync.Mutex
	last := map[string]time.Time{}
	missed := map[string]int{}
	return func(op string, err error) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last[op]) < 10*time.Second {
			missed[op]++
			mu.Unlock()
			return
		}
		n := missed[op]
		last[op], missed[op] = now, 0
		mu.Unlock()
		log.Error().Err(err).Str("op", op).Int("not_logged", n).Msg("cluster: shared agent state unavailable")
	}
}

// defaultNodeID is the host name and the admin port (the SIP port with
// the admin API off): unique per node on one host.
func defaultNodeID(cfg config.Config) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "cloak"
	}
	port := ""
	if cfg.Admin.Listen != "" {
		_, port, _ = net.SplitHostPort(cfg.Admin.Listen)
	}
	if port == "" {
		if ap, err := cfg.SIPListen(); err == nil {
			port = strconv.Itoa(int(ap.Port()))
		}
	}
	return host + ":" + port
}

// liveCalls lists the manager's calls for the registry.
func liveCalls(mgr *call.Manager) func() []cluster.Call {
	return func() []cluster.Call {
		list := mgr.Calls()
		out := make([]cluster.Call, 0, len(list))
		now := time.Now()
		for _, c := range list {
			in := c.Info()
			out = append(out, cluster.Call{ID: in.ID, Caller: in.Caller, Called: in.Called, Offered: now})
		}
		return out
	}
}

// routes registers GET /api/cluster/nodes: the node registry (every
// node's id, addresses, version, live calls, last heartbeat, and when it
// was declared lost); an empty list when the cluster is off.
func (c *nodeCluster) routes(m *auth.Mux) {
	m.HandleFunc("GET /api/cluster/nodes", func(w http.ResponseWriter, r *http.Request) {
		list := []cluster.NodeInfo{}
		if c != nil && c.node != nil {
			var err error
			if list, err = c.node.Nodes(r.Context()); err != nil {
				c.log.Error().Err(err).Msg("cluster: list nodes")
				http.Error(w, `{"error":"shared database unavailable"}`, http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
}

// stop leaves the cluster (after the calls drained): claims freed, the
// node's row removed. Safe to call twice.
func (c *nodeCluster) stop() {
	if c == nil || c.node == nil {
		return
	}
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.node.Stop(ctx); err != nil {
			c.log.Error().Err(err).Msg("cluster: leaving")
			return
		}
		c.log.Info().Msg("cluster: left")
	})
}
