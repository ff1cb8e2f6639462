package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/admin"
	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/metrics"
	"github.com/rs/zerolog"
)

// recCall is oneCall (c1, bridged to alice) counting recording actions.
type recCall struct {
	oneCall
	mu      sync.Mutex
	actions []string
}

func (b *recCall) Recording(id, action string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.actions = append(b.actions, id+":"+action)
	return nil
}

func (b *recCall) done() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.actions...)
}

// noCalls is a node holding no call.
type noCalls struct{ oneCall }

func (noCalls) Calls() []call.Info { return nil }
func (noCalls) Call(string) (call.Info, []call.Event, bool) {
	return call.Info{}, nil, false
}
func (noCalls) Recording(string, string) error { return admin.ErrNotFound }

// fakeDir is a registry: node-a (this one), node-b at b, node-c lost,
// node-d not answering; c1 is on node-b.
type fakeDir struct {
	self  string
	nodes []cluster.NodeInfo
}

func (d fakeDir) ID() string { return d.self }
func (d fakeDir) Nodes(context.Context) ([]cluster.NodeInfo, error) {
	return d.nodes, nil
}
func (d fakeDir) CallNode(_ context.Context, id string) (cluster.NodeInfo, error) {
	if id == "c1" {
		return d.nodes[1], nil
	}
	return cluster.NodeInfo{}, cluster.ErrNoCall
}

type viewRig struct {
	store        *archive.Store
	a            http.Handler
	b            *recCall
	bHits        atomic.Int64
	tokens       map[auth.Role]string
	peerToken    string
	bURL         string
	nodeBAddress string
	bCert        atomic.Pointer[tls.Certificate] // node B's, over HTTPS
}

// swapBCert makes node B serve HTTPS under c from the next handshake.
func (r *viewRig) swapBCert(t *testing.T, c tls.Certificate) {
	t.Helper()
	r.bCert.Store(&c)
}

// newViewRig builds node A (no call) and node B (c1) on one shared
// archive (as the cluster's PostgreSQL), B behind a real HTTP listener,
// both with the same cluster.token_file.
func newViewRig(t *testing.T) *viewRig {
	t.Helper()
	return newViewRigTLS(t, nil)
}

// newViewRigTLS is newViewRig; with ca, node A serves HTTPS under a
// certificate ca signed (admin.tls) and trusts ca alone for the other
// nodes (cluster.ca_file), and node B serves HTTPS under one ca signed
// for its address.
func newViewRigTLS(t *testing.T, ca *certstest.CA) *viewRig {
	t.Helper()
	ctx := context.Background()
	s, err := archive.Open(ctx, archive.Options{DSN: filepath.Join(t.TempDir(), "cloak.db"), Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := &viewRig{store: s, b: &recCall{}, tokens: map[auth.Role]string{}, peerToken: strings.Repeat("p", 40)}
	tokFile := filepath.Join(t.TempDir(), "cluster.token")
	if err := os.WriteFile(tokFile, []byte(r.peerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Cluster.Enabled = true
	cfg.Cluster.TokenFile = tokFile
	if ca != nil {
		a := ca.Issue(t, "", "node-a", "127.0.0.1")
		cfg.Admin.TLS = config.AdminTLS{CertFile: a.CertFile, KeyFile: a.KeyFile}
		cfg.Cluster.CAFile = ca.File
	}
	met, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	node := func() *nodeArchive { return &nodeArchive{store: s, log: zerolog.New(&bytes.Buffer{})} }
	// Node B.
	arB := node()
	svcB, err := arB.authSetup(ctx, cfg, nil, metrics.Access{})
	if err != nil {
		t.Fatal(err)
	}
	<-arB.adminDone
	hB, _ := apiHandler(svcB, r.b, cfg, arB, met, &nodeTrunks{}, &nodeCluster{})
	srvB := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.bHits.Add(1)
		hB.ServeHTTP(w, req)
	}))
	if ca != nil {
		r.swapBCert(t, ca.Issue(t, "", "node-b", "127.0.0.1").Pair)
		// Per handshake (httptest puts its own certificate first).
		srvB.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{*r.bCert.Load()}}, nil
		}}
		srvB.StartTLS()
	} else {
		srvB.Start()
	}
	t.Cleanup(srvB.Close)
	r.bURL = srvB.URL
	r.nodeBAddress = srvB.Listener.Addr().String()
	// A port nobody answers on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()
	dir := fakeDir{self: "node-a", nodes: []cluster.NodeInfo{
		{ID: "node-a", AdminAddr: "127.0.0.1:1"},
		{ID: "node-b", AdminAddr: r.nodeBAddress},
		{ID: "node-c", AdminAddr: "127.0.0.1:2", Lost: time.Now()},
		{ID: "node-d", AdminAddr: deadAddr},
	}}
	p, err := newPeers(cfg, dir, r.peerToken)
	if err != nil {
		t.Fatal(err)
	}
	arA := node()
	svcA, err := arA.authSetup(ctx, cfg, nil, metrics.Access{})
	if err != nil {
		t.Fatal(err)
	}
	<-arA.adminDone
	r.a, _ = apiHandler(svcA, noCalls{}, cfg, arA, met, &nodeTrunks{}, &nodeCluster{peers: p, log: zerolog.New(zerolog.NewTestWriter(t))})
	for _, role := range auth.Roles() {
		tok, id, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, archive.APIToken{ID: id, Name: "t-" + string(role), Role: string(role), Hash: auth.HashSecret(tok)}); err != nil {
			t.Fatal(err)
		}
		r.tokens[role] = tok
	}
	return r
}

func do(t *testing.T, h http.Handler, method, path, tok string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = "127.0.0.1:5000"
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(ctx))
	return w
}

// TestClusterForwardsAnActionToTheHoldingNode: a supervisor's recording
// pause sent to node A for a call node B holds is done on node B and
// audited there with the supervisor's name, via node A.
func TestClusterForwardsAnActionToTheHoldingNode(t *testing.T) {
	r := newViewRig(t)
	w := do(t, r.a, "POST", "/api/calls/c1/recording/pause", r.tokens[auth.RoleSupervisor], nil)
	if w.Code != http.StatusOK || w.Header().Get("X-Cloak-Node") != "node-b" {
		t.Fatalf("pause through node A: %d %s (node %q), want 200 from node-b", w.Code, w.Body, w.Header().Get("X-Cloak-Node"))
	}
	if got := r.b.done(); len(got) != 1 || got[0] != "c1:pause" {
		t.Fatalf("node B did %v, want [c1:pause]", got)
	}
	log, err := r.store.AuditLog(context.Background(), "c1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || !strings.HasPrefix(log[0].Actor, "token:t-supervisor#") || !strings.HasSuffix(log[0].Actor, " via node:node-a") ||
		log[0].Action != archive.ActionCallRecording {
		t.Fatalf("audit of the forwarded pause: %+v, want the supervisor via node-a", log)
	}
	// A call no node holds: 404 from this node, nothing forwarded.
	hits := r.bHits.Load()
	if w := do(t, r.a, "POST", "/api/calls/c9/recording/pause", r.tokens[auth.RoleSupervisor], nil); w.Code != http.StatusNotFound || r.bHits.Load() != hits {
		t.Errorf("unknown call: %d %s, %d requests to node B; want 404 and none", w.Code, w.Body, r.bHits.Load()-hits)
	}
}

// TestClusterForwardNeverEscalates: a role without calls.act gets 403 on
// the node it asked and nothing reaches node B; an agent's request is
// forwarded as the agent, and node B refuses it for a call bridged to
// someone else; node B serves the bare node-to-node token nothing, and a
// principal header from anyone but a node is ignored.
func TestClusterForwardNeverEscalates(t *testing.T) {
	r := newViewRig(t)
	for _, role := range []auth.Role{auth.RoleAuditor, auth.RoleArchivist} {
		hits := r.bHits.Load()
		w := do(t, r.a, "POST", "/api/calls/c1/recording/pause", r.tokens[role], nil)
		if w.Code != http.StatusForbidden || r.bHits.Load() != hits {
			t.Errorf("%s: %d %s with %d requests to node B; want 403 and none", role, w.Code, w.Body, r.bHits.Load()-hits)
		}
	}
	w := do(t, r.a, "POST", "/api/calls/c1/recording/pause", r.tokens[auth.RoleAgent], nil)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not your call") {
		t.Errorf("an agent on another agent's call through node A: %d %s, want 403 from node B", w.Code, w.Body)
	}
	if got := r.b.done(); len(got) != 0 {
		t.Fatalf("node B did %v for refused requests", got)
	}
	// Straight at node B.
	admin, err := auth.Carry(auth.Principal{Name: "mallory", Kind: auth.KindToken, Role: auth.RoleAdmin, TokenID: "x"}, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tok string
		hdr map[string]string
	}{
		"the bare node token":                   {r.peerToken, nil},
		"an auditor's token claiming admin":     {r.tokens[auth.RoleAuditor], map[string]string{auth.PrincipalHeader: admin}},
		"the node token with a garbled carried": {r.peerToken, map[string]string{auth.PrincipalHeader: "!!"}},
	} {
		req, _ := http.NewRequest("POST", r.bURL+"/api/calls/c1/recording/pause", nil)
		req.Header.Set("Authorization", "Bearer "+tc.tok)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s at node B: %d, want 403", name, resp.StatusCode)
		}
	}
	if got := r.b.done(); len(got) != 0 {
		t.Fatalf("node B did %v for refused requests", got)
	}
	// A carried principal counts on the call routes only: the node token
	// carrying an admin reaches no archive, audit or stats route.
	for _, path := range []string{"/api/archive/audit", "/api/stats", "/api/session", "/api/cluster/calls"} {
		req, _ := http.NewRequest("GET", r.bURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+r.peerToken)
		req.Header.Set(auth.PrincipalHeader, admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("node token carrying an admin on %s: %d, want 403", path, resp.StatusCode)
		}
	}
}

// TestClusterCallsListsEveryNode: GET /api/cluster/calls on node A lists
// node B's call with its node, says node C is lost and node D did not
// answer, and still answers 200; an agent sees only their own calls.
func TestClusterCallsListsEveryNode(t *testing.T) {
	r := newViewRig(t)
	start := time.Now()
	w := do(t, r.a, "GET", "/api/cluster/calls", r.tokens[auth.RoleSupervisor], nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/cluster/calls: %d %s", w.Code, w.Body)
	}
	if d := time.Since(start); d > peerListTimeout+2*time.Second {
		t.Errorf("the list took %v", d)
	}
	var got ClusterCalls
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Calls) != 1 || got.Calls[0]["id"] != "c1" || got.Calls[0]["node"] != "node-b" {
		t.Errorf("calls %v, want c1 on node-b", got.Calls)
	}
	byNode := map[string]NodeCalls{}
	for _, n := range got.Nodes {
		byNode[n.Node] = n
	}
	if n := byNode["node-a"]; n.Error != "" || n.Calls != 0 {
		t.Errorf("node-a: %+v", n)
	}
	if n := byNode["node-b"]; n.Error != "" || n.Calls != 1 {
		t.Errorf("node-b: %+v", n)
	}
	if n := byNode["node-c"]; !strings.Contains(n.Error, "lost") {
		t.Errorf("node-c (lost): %+v", n)
	}
	if n := byNode["node-d"]; n.Error == "" {
		t.Errorf("node-d (not answering): %+v", n)
	}
	w = do(t, r.a, "GET", "/api/cluster/calls", r.tokens[auth.RoleAgent], nil)
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil || len(got.Calls) != 0 {
		t.Errorf("an agent (not alice) lists %d %s, want no call", w.Code, w.Body)
	}
	if w := do(t, r.a, "GET", "/api/cluster/calls", r.tokens[auth.RoleArchivist], nil); w.Code != http.StatusForbidden {
		t.Errorf("archivist: %d, want 403", w.Code)
	}
}

// TestClusterTokenFile: a short or spaced token file is refused naming
// the field.
func TestClusterTokenFile(t *testing.T) {
	if tok, err := clusterToken(config.Cluster{}); tok != "" || err != nil {
		t.Fatalf("no file: %q %v", tok, err)
	}
	for _, bad := range []string{"short", strings.Repeat("a", 20) + " " + strings.Repeat("b", 20)} {
		p := filepath.Join(t.TempDir(), "tok")
		_ = os.WriteFile(p, []byte(bad), 0o600)
		if _, err := clusterToken(config.Cluster{TokenFile: p}); !errors.Is(err, errClusterToken) || !strings.Contains(err.Error(), "cluster.token_file") {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

// TestClusterForwardsOverVerifiedHTTPS: with admin.tls on every node and
// cluster.ca_file naming the nodes' CA, node A forwards a pause to node
// B over HTTPS (B's certificate verified against that CA for B's
// address) and lists B's calls; when node B's certificate comes from
// another CA, node A refuses the handshake: the action answers 502, the
// list names node B's error, and node B's handler never ran.
func TestClusterForwardsOverVerifiedHTTPS(t *testing.T) {
	r := newViewRigTLS(t, certstest.NewCA(t, "cluster CA"))
	if !strings.HasPrefix(r.bURL, "https://") {
		t.Fatalf("node B at %s, want https", r.bURL)
	}
	w := do(t, r.a, "POST", "/api/calls/c1/recording/pause", r.tokens[auth.RoleSupervisor], nil)
	if w.Code != http.StatusOK || w.Header().Get("X-Cloak-Node") != "node-b" {
		t.Fatalf("pause through node A over HTTPS: %d %s, want 200 from node-b", w.Code, w.Body)
	}
	if got := r.b.done(); len(got) != 1 || got[0] != "c1:pause" {
		t.Fatalf("node B did %v, want [c1:pause]", got)
	}

	// A second cluster whose node B then serves a certificate another
	// CA signed, for the right address.
	other := newViewRigTLS(t, certstest.NewCA(t, "cluster CA"))
	stranger := certstest.NewCA(t, "another CA").Issue(t, "", "node-b", "127.0.0.1")
	other.swapBCert(t, stranger.Pair)
	w = do(t, other.a, "POST", "/api/calls/c1/recording/pause", other.tokens[auth.RoleSupervisor], nil)
	if w.Code != http.StatusBadGateway {
		t.Errorf("pause to a node with another CA's certificate: %d %s, want 502", w.Code, w.Body)
	}
	w = do(t, other.a, "GET", "/api/cluster/calls", other.tokens[auth.RoleSupervisor], nil)
	var got ClusterCalls
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("GET /api/cluster/calls: %d %s", w.Code, w.Body)
	}
	for _, n := range got.Nodes {
		if n.Node == "node-b" && !strings.Contains(n.Error, "certificate") {
			t.Errorf("node-b in the list: %+v, want a certificate error", n)
		}
	}
	if len(got.Calls) != 0 {
		t.Errorf("calls listed from a node whose certificate failed: %v", got.Calls)
	}
	if h := other.bHits.Load(); h != 0 || len(other.b.done()) != 0 {
		t.Errorf("node B served %d requests (did %v) through a refused handshake", h, other.b.done())
	}
}
