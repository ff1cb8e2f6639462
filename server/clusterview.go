package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/certs"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
)

// The cluster view (docs/SCALE.md, "Cluster view"): any node lists the
// live calls of every node, and forwards an action on a call another
// node holds to that node. Node to node, requests carry the shared
// cluster.token_file token and the principal this node authenticated
// (auth.PrincipalHeader); the receiving node serves them with that
// principal's rights only, and audits them under its name "via" this
// node. This node checked the route's permission (Guard) before
// forwarding; the holder checks the call's ownership (an agent's own
// calls) with the same principal.

// Timeouts of node-to-node requests.
const (
	// peerListTimeout bounds one node's answer to the calls list: a node
	// that does not answer in time is reported, not waited for.
	peerListTimeout = 3 * time.Second
	// peerDialTimeout and peerHeaderTimeout bound a forwarded action
	// until the holder's response headers (an event stream then runs as
	// long as the caller's credential does).
	peerDialTimeout   = 2 * time.Second
	peerHeaderTimeout = 15 * time.Second // a monitor's POST waits for the supervisor's phone
)

// errClusterToken is a cluster.token_file that cannot serve as a token.
var errClusterToken = errors.New("cluster.token_file")

// errPeerAddr: a node's admin address is a wildcard or empty, which no
// other node can dial.
var errPeerAddr = errors.New("admin address not reachable from other nodes (set admin.listen to the node's own address)")

// clusterToken reads cluster.token_file: empty without one.
func clusterToken(cl config.Cluster) (string, error) {
	if cl.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(cl.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errClusterToken, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 32 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%w %s: want one token of at least 32 characters, no spaces", errClusterToken, cl.TokenFile)
	}
	return tok, nil
}

// clusterDir is what the view needs of the registry (*cluster.Node).
type clusterDir interface {
	ID() string
	Nodes(ctx context.Context) ([]cluster.NodeInfo, error)
	CallNode(ctx context.Context, id string) (cluster.NodeInfo, error)
}

// peers is the node-to-node client: the token, the scheme of the other
// nodes' APIs (https when this node serves HTTPS: the nodes are alike)
// and a transport with bounded dials.
type peers struct {
	dir    clusterDir
	token  string
	scheme string
	tr     *http.Transport
}

// newPeers returns the client of the view, or nil when the cluster is
// off or has no token.
func newPeers(cfg config.Config, dir clusterDir, token string) (*peers, error) {
	if dir == nil || token == "" {
		return nil, nil
	}
	p := &peers{dir: dir, token: token, scheme: "http", tr: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: peerDialTimeout}).DialContext,
		TLSHandshakeTimeout:   peerDialTimeout,
		ResponseHeaderTimeout: peerHeaderTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
	}}
	if cert := cfg.Admin.TLS.CertFile; cert != "" {
		pool, err := peerRoots(cfg.Cluster.CAFile, cert)
		if err != nil {
			return nil, err
		}
		// Verified: the chain to pool, and the node's admin address
		// (IP or name) in its certificate.
		p.scheme = "https"
		p.tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return p, nil
}

// peerRoots are the CAs trusted for the other nodes' API certificates:
// cluster.ca_file's alone when set; else the system's roots and this
// node's own chain (cert, admin.tls.cert_file: its CA, or one
// certificate for all the nodes).
func peerRoots(caFile, cert string) (*x509.CertPool, error) {
	if caFile != "" {
		pool, err := certs.LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.ca_file: %w", err)
		}
		return pool, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		return nil, fmt.Errorf("admin.tls.cert_file (trusted for the other nodes): %w", err)
	}
	pool.AppendCertsFromPEM(pem)
	return pool, nil
}

// base is node's API root URL.
func (p *peers) base(node cluster.NodeInfo) (*url.URL, error) {
	host, _, err := net.SplitHostPort(node.AdminAddr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("node %s: %q: %w", node.ID, node.AdminAddr, errPeerAddr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("node %s: %q: %w", node.ID, node.AdminAddr, errPeerAddr)
	}
	return &url.URL{Scheme: p.scheme, Host: node.AdminAddr}, nil
}

// sign makes out a request from this node on behalf of pr: the user's
// cookie, CSRF token and Authorization are dropped, the node-to-node
// token and the carried principal set.
func (p *peers) sign(h http.Header, pr auth.Principal) error {
	carried, err := auth.Carry(pr, p.dir.ID())
	if err != nil {
		return err
	}
	h.Del("Cookie")
	h.Del(auth.CSRFHeader)
	h.Set("Authorization", "Bearer "+p.token)
	h.Set(auth.PrincipalHeader, carried)
	return nil
}

// NodeCalls is one node's part of GET /api/cluster/calls.
type NodeCalls struct {
	// Node is the node's id.
	Node string `json:"node"`
	// Calls is how many of its calls are listed (those the caller may
	// see).
	Calls int `json:"calls"`
	// Error, when set, says why the node's calls are missing: it did not
	// answer in time, refused, or was declared lost.
	Error string `json:"error,omitempty"`
}

// ClusterCalls is the answer of GET /api/cluster/calls.
type ClusterCalls struct {
	// Nodes lists every node of the registry, this one first.
	Nodes []NodeCalls `json:"nodes"`
	// Calls are the calls of the nodes that answered, each with its
	// node ("node") beside the fields of GET /api/calls.
	Calls []map[string]any `json:"calls"`
}

// listCalls fetches node's calls as pr may see them.
func (p *peers) listCalls(ctx context.Context, node cluster.NodeInfo, pr auth.Principal) ([]map[string]any, error) {
	u, err := p.base(node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerListTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/api/calls").String(), nil)
	if err != nil {
		return nil, err
	}
	if err := p.sign(req.Header, pr); err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: p.tr}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("node %s: no answer within %v", node.ID, peerListTimeout)
		}
		return nil, fmt.Errorf("node %s: %w", node.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node %s answered %s", node.ID, resp.Status)
	}
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("node %s: calls: %w", node.ID, err)
	}
	for _, r := range rows {
		r["node"] = node.ID
	}
	return rows, nil
}

// visibleCalls are this node's calls pr may see (as GET /api/calls).
func visibleCalls(b admin.Backend, pr auth.Principal) []call.Info {
	out := []call.Info{}
	for _, c := range b.Calls() {
		if pr.Owns(auth.PermCallsView, c.Agent) {
			out = append(out, c)
		}
	}
	return out
}

// clusterCallsRoute registers GET /api/cluster/calls: this node's calls
// and every other live node's, fetched in parallel, each row naming its
// node; a node that does not answer (or is lost, or unreachable) is
// listed with its error and the others are still served. Without the
// cluster (or its token) the list holds this node alone.
func (c *nodeCluster) clusterCallsRoute(m *auth.Mux, b admin.Backend) {
	m.HandleFunc("GET /api/cluster/calls", func(w http.ResponseWriter, r *http.Request) {
		pr, ok := auth.FromContext(r.Context())
		if !ok {
			writeAPIError(w, http.StatusUnauthorized, auth.ErrUnauthenticated)
			return
		}
		self := "local"
		var p *peers
		if c != nil && c.peers != nil {
			p = c.peers
			self = p.dir.ID()
		} else if c != nil && c.node != nil {
			self = c.node.ID()
		}
		out := ClusterCalls{Calls: []map[string]any{}}
		for _, ci := range visibleCalls(b, pr) {
			row, err := toMap(ci)
			if err != nil {
				continue
			}
			row["node"] = self
			out.Calls = append(out.Calls, row)
		}
		out.Nodes = append(out.Nodes, NodeCalls{Node: self, Calls: len(out.Calls)})
		if c != nil && c.node != nil && p == nil {
			if list, err := c.node.Nodes(r.Context()); err == nil {
				for _, n := range list {
					if n.ID != self {
						out.Nodes = append(out.Nodes, NodeCalls{Node: n.ID, Error: "not fetched: no cluster.token_file on this node"})
					}
				}
			}
		}
		if p != nil {
			list, err := p.dir.Nodes(r.Context())
			if err != nil {
				writeAPIError(w, http.StatusServiceUnavailable, errors.New("shared database unavailable"))
				return
			}
			others := make([]cluster.NodeInfo, 0, len(list))
			for _, n := range list {
				if n.ID != self {
					others = append(others, n)
				}
			}
			// Sized before any goroutine starts; each writes its own index.
			parts := make([]NodeCalls, len(others))
			rows := make([][]map[string]any, len(others))
			var wg sync.WaitGroup
			for i, n := range others {
				parts[i].Node = n.ID
				if !n.Lost.IsZero() {
					parts[i].Error = "node lost at " + n.Lost.Format(time.RFC3339)
					continue
				}
				wg.Add(1)
				go func(n cluster.NodeInfo) {
					defer wg.Done()
					got, err := p.listCalls(r.Context(), n, pr)
					if err != nil {
						parts[i].Error = err.Error()
						return
					}
					rows[i], parts[i].Calls = got, len(got)
				}(n)
			}
			wg.Wait()
			out.Nodes = append(out.Nodes, parts...)
			for _, rs := range rows {
				out.Calls = append(out.Calls, rs...)
			}
		}
		writeAPIJSON(w, http.StatusOK, out)
	})
}

// forwarder wraps the routes on one call (/api/calls/{id}…): a call this
// node does not hold, held by another live node of the registry, is
// proxied there on behalf of the caller (Guard already checked the
// route's permission here); a request that was itself forwarded is
// never forwarded again. Everything else goes to h.
func (c *nodeCluster) forwarder(b admin.Backend) func(pattern string, h http.Handler) http.Handler {
	return func(pattern string, h http.Handler) http.Handler {
		_, path, _ := strings.Cut(pattern, " ")
		if c == nil || c.peers == nil || !strings.HasPrefix(path, "/api/calls/{id}") {
			return h
		}
		p := c.peers
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pr, ok := auth.FromContext(r.Context())
			id := r.PathValue("id")
			if !ok || pr.Via != "" || id == "" {
				h.ServeHTTP(w, r)
				return
			}
			if _, _, local := b.Call(id); local {
				h.ServeHTTP(w, r)
				return
			}
			node, err := p.dir.CallNode(r.Context(), id)
			switch {
			case errors.Is(err, cluster.ErrNoCall) || (err == nil && node.ID == p.dir.ID()):
				h.ServeHTTP(w, r) // not found here either: the handler says 404
				return
			case err != nil:
				c.log.Error().Err(err).Msg("cluster: looking up the node of a call")
				writeAPIError(w, http.StatusServiceUnavailable, errors.New("shared database unavailable"))
				return
			case !node.Lost.IsZero():
				writeAPIError(w, http.StatusServiceUnavailable, fmt.Errorf("the call is on node %s, declared lost", node.ID))
				return
			}
			target, err := p.base(node)
			if err != nil {
				writeAPIError(w, http.StatusBadGateway, err)
				return
			}
			if _, err := auth.Carry(pr, p.dir.ID()); err != nil {
				writeAPIError(w, http.StatusForbidden, fmt.Errorf("the call is on node %s: %w", node.ID, err))
				return
			}
			rp := &httputil.ReverseProxy{
				Rewrite: func(pr2 *httputil.ProxyRequest) {
					pr2.SetURL(target)
					_ = p.sign(pr2.Out.Header, pr) // checked above
				},
				Transport:     p.tr,
				FlushInterval: -1, // event streams flow as they come
				ModifyResponse: func(resp *http.Response) error {
					resp.Header.Set("X-Cloak-Node", node.ID)
					return nil
				},
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					c.log.Warn().Err(err).Str("node", node.ID).Msg("cluster: forwarding an action on a call failed")
					writeAPIError(w, http.StatusBadGateway, fmt.Errorf("the call is on node %s, which did not answer", node.ID))
				},
			}
			rp.ServeHTTP(w, r)
		})
	}
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, err error) {
	writeAPIJSON(w, status, map[string]string{"error": err.Error()})
}
