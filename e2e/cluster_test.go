package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/archive/pgtest"
	"github.com/cloak-voip/cloak/recorder"
)

// The cluster (docs/SCALE.md): two cloak nodes sharing one throwaway
// PostgreSQL (cluster.enabled), behind the shipped Kamailio front door;
// one agent, demo, registers through Kamailio and so reaches one node's
// registrar only.

// clusterNodeTimeout was 3 s; under CI's parallel e2e load the tests'
// PostgreSQL stalled for seconds (connects timing out) and a survivor
// declared a live node lost (CI runs 1 and 3, 2026-12-07). 6 s rides out
// such a stall; the failover tests' bounds follow the constant.
const (
	clusterHeartbeat   = 500 * time.Millisecond
	clusterNodeTimeout = 6 * time.Second
)

// clusterSlots lets one cluster test (two -race nodes, Kamailio, sipp)
// run at a time, beside the package's other parallel tests: two at once,
// on two cores shared with other work, and Kamailio's 1 s transaction
// timer answered a REGISTER 408 for a node slow to answer (2026-12-07).
// One at a time costs little: the other parallel tests fill the wait.
var clusterSlots = make(chan struct{}, 1)

type clusterRig struct {
	nodes     [2]*cloak
	opts      [2]cloakOpts // each node's, to start it again
	ids       [2]string
	k         *kamailio
	db        *sql.DB
	agentPort int
}

// startClusterRig starts both nodes on one database with one archive key,
// admission control off (the machine is shared: a 503 for overload is not
// what these tests look at), and Kamailio in front of them; queues, when given, replace ivrOpts'
// sales queue (3 s timeout). It marks the test parallel first: a cluster
// test mostly waits (callers' pauses, queues, heartbeats), and each has
// its own database, nodes, Kamailio and ports, so they overlap safely
// (at most clusterSlots at once).
func startClusterRig(t *testing.T, queues ...string) *clusterRig {
	t.Helper()
	t.Parallel()
	holdSlot(t, clusterSlots)
	requireTools(t, "sipp", "kamailio")
	dsn := pgtest.DSN(t)
	key := filepath.Join(t.TempDir(), "archive.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(t.TempDir(), "cluster.token")
	if err := os.WriteFile(tokFile, []byte(strings.Repeat("c1u5", 12)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &clusterRig{ids: [2]string{"node-a", "node-b"}, agentPort: freePorts(t, 1, true)}
	for i, id := range r.ids {
		o := ivrOpts(fmt.Sprintf(`agents:
  - {name: demo, password: demo, queues: [sales]}
features: {secure_code: "*7", secure_flow: secure-pay}
limits: {max_cpu: 0, max_lag: 0s, max_recorder_backlog: 0s}
archive:
  dsn: %q
  key_file: %s
cluster:
  enabled: true
  node_id: %s
  heartbeat: %s
  node_timeout: %s
  token_file: %s
`, dsn, key, id, clusterHeartbeat, clusterNodeTimeout, tokFile), queues...)
		o.logLevel = "info"
		r.opts[i] = o
		r.nodes[i] = startCloak(t, o)
	}
	r.k = frontDoor(t, r.nodes[0].sipPort, r.nodes[1].sipPort)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	return r
}

// register binds demo through Kamailio (digest, Path added by Kamailio)
// and returns the index of the node whose registrar took it.
func (r *clusterRig) register(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: r.agentPort})
	if err != nil {
		t.Fatal(err)
	}
	ua := &rawUA{t: t, conn: conn, server: r.k.addr, port: r.agentPort, via: "127.0.0.1"}
	first := ua.do(r.agentPort, "")
	chals := parseChallenges(t, first)
	if len(chals) == 0 {
		t.Fatalf("REGISTER through Kamailio: %d without a challenge, want 401", first.status)
	}
	chal := chals[0]
	if res := ua.do(r.agentPort, ua.digestAuth(chal, "demo", "demo", 1)); res.status != 200 {
		t.Fatalf("REGISTER through Kamailio: %d", res.status)
	}
	_ = conn.Close()
	for i, c := range r.nodes {
		if c.waitLog("agent registered", 2*time.Second) {
			return i
		}
	}
	t.Fatal("no node logged the registration")
	return -1
}

// sharedState is demo's row in the shared table: state and claiming node.
func (r *clusterRig) sharedState(t *testing.T) (state, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.db.QueryRowContext(ctx, `SELECT state, node FROM cluster_agents WHERE name = 'demo'`).Scan(&state, &node); err != nil {
		t.Fatalf("shared agent row: %v", err)
	}
	return state, node
}

// apiAgentState is demo's state as node c's API shows it.
func apiAgentState(t *testing.T, c *cloak) string {
	t.Helper()
	var list []acd.AgentInfo
	if err := apiGet(t, c, "/api/agents", &list); err != nil {
		t.Fatalf("GET /api/agents: %v", err)
	}
	for _, a := range list {
		if a.Name == "demo" {
			return a.State
		}
	}
	t.Fatal("demo not in /api/agents")
	return ""
}

// agentUAS runs the agent's softphone (sipp UAS behind Kamailio) on the
// registered port for calls calls.
func (r *clusterRig) agentUAS(t *testing.T, c *cloak, pcap string, calls int) *sipp {
	s := startSipp(t, c, sippArgs{scenario: "proxy-agent.xml", uas: true, localPort: r.agentPort, mediaPort: freePorts(t, 4, false),
		calls: calls, timeout: 60 * time.Second, keys: map[string]string{"pcap": scenario(pcap)}})
	time.Sleep(300 * time.Millisecond) // listening
	return s
}

// caller calls node c's main flow straight (keys 2: the sales queue) and
// stays pause.
func caller(t *testing.T, c *cloak, pause time.Duration) *sipp {
	return startSipp(t, c, sippArgs{scenario: "ivr-hangup.xml", service: "main", pause: pause, timeout: 60 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-rfc4733.pcap"), "fmts": "0 101"}})
}

// invitesThroughKamailio counts the INVITEs the agent's sipp received and
// those that came by Kamailio (its Via on top).
func invitesThroughKamailio(s *sipp, k *kamailio) (all, viaK int) {
	kport := k.addr[strings.LastIndex(k.addr, ":")+1:]
	via := regexp.MustCompile(`(?m)^Via: SIP/2.0/UDP 127.0.0.1:` + kport + `;`)
	msgs := s.messages()
	for _, part := range strings.Split(msgs, "INVITE sip:")[1:] {
		all++
		if end := strings.Index(part, "\n\n"); end > 0 {
			part = part[:end]
		}
		if via.MatchString(part) {
			viaK++
		}
	}
	return all, viaK
}

// TestClusterAgentTakesCallsOnEitherNode: demo registers through Kamailio,
// which hands the REGISTER to one node; a caller queued on node A and
// then one on node B both reach demo — each node dials the registration
// the other may have taken, through Kamailio by its Path — and both nodes'
// APIs show the agent's one shared state.
func TestClusterAgentTakesCallsOnEitherNode(t *testing.T) {
	r := startClusterRig(t)
	reg := r.register(t)
	t.Logf("the REGISTER reached %s", r.ids[reg])
	for i, c := range r.nodes {
		if s := apiAgentState(t, c); s != "available" {
			t.Fatalf("%s shows demo %s after the registration, want available", r.ids[i], s)
		}
	}
	agent := r.agentUAS(t, r.nodes[0], "pcap/agent-talk.pcap", 2)
	for i, c := range r.nodes {
		caller(t, c, 8*time.Second).wait(t)
		if !c.waitLog("agent answered: bridging", 5*time.Second) {
			t.Fatalf("%s never bridged its caller to demo (registered on %s)", r.ids[i], r.ids[reg])
		}
		if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
			t.Fatalf("%s: the call did not end", r.ids[i])
		}
	}
	agent.wait(t)
	if all, viaK := invitesThroughKamailio(agent, r.k); all != 2 || viaK != 2 {
		t.Errorf("the agent got %d INVITEs, %d through Kamailio; want 2 and 2", all, viaK)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, node := r.sharedState(t)
		if st == "available" && node == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after both calls demo is %s (claimed by %q), want available", st, node)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var registry []struct {
		ID        string    `json:"id"`
		SIPAddr   string    `json:"sip_addr"`
		Heartbeat time.Time `json:"heartbeat"`
		Lost      time.Time `json:"lost"`
	}
	if err := apiGet(t, r.nodes[1], "/api/cluster/nodes", &registry); err != nil {
		t.Fatalf("GET /api/cluster/nodes: %v", err)
	}
	if len(registry) != 2 || registry[0].ID != r.ids[0] || registry[1].ID != r.ids[1] {
		t.Fatalf("node registry: %+v, want %v", registry, r.ids)
	}
	for i, n := range registry {
		if want := fmt.Sprintf("127.0.0.1:%d", r.nodes[i].sipPort); n.SIPAddr != want || !n.Lost.IsZero() || time.Since(n.Heartbeat) > 5*time.Second {
			t.Errorf("registry row %+v: want sip_addr %s, a recent heartbeat, not lost", n, want)
		}
	}
	var nodes int
	for _, c := range r.nodes {
		c.stop()
	}
	_ = r.db.QueryRow(`SELECT count(*) FROM cluster_nodes`).Scan(&nodes)
	if nodes != 0 {
		t.Errorf("%d nodes left in the registry after both stopped", nodes)
	}
}

// TestClusterReservedAgentNotOfferedElsewhere: demo takes a call on node
// A and keys *7: the caller goes into secure-pay and demo is reserved —
// in the shared table, so node B's API shows it reserved and a caller
// queued on node B meanwhile is never offered demo (the queue times out).
// Node A's caller keys the test card; it is in no node's log, nor
// Kamailio's, nor any row of the shared database.
func TestClusterReservedAgentNotOfferedElsewhere(t *testing.T) {
	r := startClusterRig(t)
	r.register(t)
	a, b := r.nodes[0], r.nodes[1]
	agent := r.agentUAS(t, a, "pcap/agent-star7.pcap", 1)
	callerA := caller(t, a, 29*time.Second)
	if !a.waitLog("agent reserved", 20*time.Second) {
		t.Fatal("node A never reserved demo (no *7 secure flow)")
	}
	if st, node := r.sharedState(t); st != "reserved" || node != r.ids[0] {
		t.Fatalf("shared state of demo in the secure flow: %s by %q, want reserved by %s", st, node, r.ids[0])
	}
	if s := apiAgentState(t, b); s != "reserved" {
		t.Errorf("node B's API shows demo %s while reserved on node A", s)
	}
	callerB := caller(t, b, 10*time.Second)
	if !b.waitLog("queue timeout", 20*time.Second) {
		t.Fatal("node B's caller never timed out in the queue")
	}
	if strings.Contains(a.log(), "caller returned to the agent") || strings.Contains(a.log(), "agent released") {
		t.Fatal("node A's secure flow ended before node B's queue timed out: the test proves nothing")
	}
	if strings.Contains(b.log(), "agent answered") {
		t.Error("node B bridged a caller to demo while demo was reserved on node A")
	}
	if all, _ := invitesThroughKamailio(agent, r.k); all != 1 {
		t.Errorf("the agent got %d INVITEs while reserved, want only node A's 1", all)
	}
	callerB.cancel()
	// Node A's caller keys the test card into secure-pay, is returned to
	// demo, and hangs up: then the leak canary reads both nodes' logs,
	// Kamailio's and every row of the shared database.
	callerA.wait(t)
	agent.wait(t)
	if !a.waitLog("caller returned to the agent", 5*time.Second) {
		t.Error("node A's caller never returned to demo after secure-pay")
	}
	// The interaction reaches the shared archive when node A has seen the
	// caller's BYE and its writer's batch is in: on a loaded machine that
	// is after sipp has finished, so wait for it (bounded) before stopping.
	var outputs string // the card was keyed: secure-pay's non-secret outputs say so
	var err error
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err = r.db.QueryRow(`SELECT outputs FROM secure_segments WHERE flow = 'secure-pay'`).Scan(&outputs)
		if err == nil || time.Now().After(end) {
			break
		}
	}
	for _, c := range r.nodes {
		c.stop()
	}
	if err != nil || !strings.Contains(outputs, `"card_last4"`) || !strings.Contains(outputs, `"payment_reference"`) {
		t.Errorf("secure-pay's segment in the shared archive: %q %v, want a card and a payment (masked)", outputs, err)
	}
	cn := newCanary(testCard, testExpiry, testCVV)
	var leaks []leak
	for i, c := range r.nodes {
		leaks = append(leaks, cn.scanBytes(r.ids[i]+" log", 0, []byte(c.log()), true)...)
	}
	leaks = append(leaks, cn.scanBytes("kamailio log", 0, []byte(r.k.log()), true)...)
	dbLeaks, tables, scanned := scanSharedDatabase(t, r.db, cn)
	leaks = append(leaks, dbLeaks...)
	if scanned == 0 || !slices.Contains(tables, "cluster_agents") {
		t.Fatalf("the canary read %d rows of tables %v", scanned, tables)
	}
	for _, l := range leaks {
		t.Errorf("test card leaked: %s", l)
	}
}

// TestClusterNodeLossFreesAgents: demo is busy on a call held by the node
// that took their registration; kill -9 of that node. Within
// node_timeout (plus a heartbeat and the survivor's next check) the
// survivor sees demo available, the lost call is archived node-lost, and
// a caller on the survivor reaches demo through Kamailio on the
// registration the dead node wrote.
func TestClusterNodeLossFreesAgents(t *testing.T) {
	r := startClusterRig(t)
	reg := r.register(t)
	dead, surv := r.nodes[reg], r.nodes[1-reg]
	agent := r.agentUAS(t, dead, "pcap/agent-talk.pcap", 1)
	callerDead := caller(t, dead, 30*time.Second)
	if !dead.waitLog("agent answered: bridging", 20*time.Second) {
		t.Fatal("the registrar node never bridged its caller to demo")
	}
	time.Sleep(2 * clusterHeartbeat) // the call is in the registry
	if st, node := r.sharedState(t); st != "busy" || node != r.ids[reg] {
		t.Fatalf("demo on a call: %s by %q, want busy by %s", st, node, r.ids[reg])
	}
	_ = dead.cmd.Process.Kill()
	<-dead.done
	killed := time.Now()
	var took time.Duration
	for {
		if s := apiAgentState(t, surv); s == "available" {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > clusterNodeTimeout+5*time.Second {
			t.Fatalf("demo still not available on the survivor %v after kill -9", time.Since(killed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("kill -9 of %s: demo available on %s after %v (node_timeout %v, heartbeat %v)",
		r.ids[reg], r.ids[1-reg], took.Round(10*time.Millisecond), clusterNodeTimeout, clusterHeartbeat)
	if took < clusterNodeTimeout-clusterHeartbeat-200*time.Millisecond {
		t.Errorf("demo freed %v after the kill, before node_timeout %v", took, clusterNodeTimeout)
	}
	if !surv.waitLog("node lost", time.Second) {
		t.Error("the survivor did not log the lost node")
	}
	var reason string
	if err := r.db.QueryRow(`SELECT end_reason FROM interactions WHERE node = $1`, r.ids[reg]).Scan(&reason); err != nil || reason != "node-lost" {
		t.Errorf("the dead node's call in the archive: %q %v, want node-lost", reason, err)
	}
	// The agent's phone had the dead node's call: it never got a BYE.
	agent.cancel()
	<-agent.done
	callerDead.cancel()
	agent2 := r.agentUAS(t, surv, "pcap/agent-talk.pcap", 1)
	caller(t, surv, 6*time.Second).wait(t)
	if !surv.waitLog("agent answered: bridging", 5*time.Second) {
		t.Fatal("the survivor never reached demo after the registrar node died")
	}
	agent2.wait(t)
	if all, viaK := invitesThroughKamailio(agent2, r.k); all != 1 || viaK != 1 {
		t.Errorf("the survivor's INVITE to demo: %d, %d through Kamailio; want 1 and 1", all, viaK)
	}
	surv.stop()
	// The dead node returns under its node id on its data: the recording
	// the kill cut is made whole, marked recovered, and linked to the
	// call the survivor archived node-lost.
	o := r.opts[reg]
	o.dataDir, o.admin = dead.dataDir, false // its API token is in the shared database already
	restarted := time.Now()
	back := startCloak(t, o)
	var status, file string
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := r.db.QueryRow(`SELECT r.status, r.file FROM interactions i JOIN recordings r ON r.interaction_id = i.id
WHERE i.node = $1 AND i.end_reason = 'node-lost'`, r.ids[reg]).Scan(&status, &file)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the returned node's recording never linked to its node-lost call: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s started again: its recording linked to the node-lost call %v later", r.ids[reg], time.Since(restarted).Round(10*time.Millisecond))
	back.stop()
	key, err := os.ReadFile(filepath.Join(dead.dataDir, "recording.key"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := recorder.Verify(file, []byte(strings.TrimSpace(string(key))))
	if status != recorder.StatusRecovered || err != nil || rep.Sidecar.Status != recorder.StatusRecovered || rep.Sidecar.DurationMS < 1000 {
		t.Errorf("the node-lost call's recording: status %q, verify: %v, sidecar %+v; want recovered, verified, the second of talk before the kill", status, err, rep.Sidecar)
	}
}

// TestClusterLongestWaitingCallerFirst: demo is busy on node A; a caller
// queues on node B, then another on node A. When demo's call on A ends,
// node A frees them (and would wake its own waiting caller first), yet
// demo is offered node B's caller, who has waited longest: the waiting
// line is shared. Node B places the agent leg. (Without the shared line
// the two nodes race for demo and either may win, so this test catches
// a wrong order only when the race goes that way; cluster's
// TestQueueLongestWaitingFirst pins the rule itself.)
func TestClusterLongestWaitingCallerFirst(t *testing.T) {
	r := startClusterRig(t, "{name: sales, timeout: 60s, ring_timeout: 5s, dtmf: mask}")
	r.register(t)
	a, b := r.nodes[0], r.nodes[1]
	const bridged, queued = "agent answered: bridging", "caller queued"
	agent := r.agentUAS(t, a, "pcap/agent-talk.pcap", 2)
	first := caller(t, a, 20*time.Second)
	if !a.waitLog(bridged, 20*time.Second) {
		t.Fatal("node A never bridged its first caller")
	}
	earlier := caller(t, b, 32*time.Second)
	if !b.waitLog(queued, 15*time.Second) {
		t.Fatal("node B's caller never queued")
	}
	time.Sleep(time.Second)
	later := caller(t, a, 25*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(a.log(), queued) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("node A's second caller never queued")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !first.running() {
		t.Fatal("node A's first call ended before its second caller queued: the test proves nothing")
	}
	first.wait(t) // demo is freed on node A
	if !b.waitLog(bridged, 10*time.Second) {
		t.Fatalf("demo was not offered node B's longest-waiting caller (node A bridged %d)", strings.Count(a.log(), bridged))
	}
	if n := strings.Count(a.log(), bridged); n != 1 {
		t.Errorf("node A bridged %d calls, want 1: its later caller went ahead of node B's earlier one", n)
	}
	later.wait(t) // hung up while still waiting: demo was on node B's call
	earlier.wait(t)
	agent.wait(t)
	if n := strings.Count(a.log(), bridged); n != 1 {
		t.Errorf("node A bridged %d calls in all, want 1", n)
	}
	for _, c := range r.nodes {
		c.stop()
	}
	var waiting int
	_ = r.db.QueryRow(`SELECT count(*) FROM cluster_waiting`).Scan(&waiting)
	if waiting != 0 {
		t.Errorf("%d callers left in the shared waiting line", waiting)
	}
}

// TestClusterViewForwardsAction: a caller bridged to demo on node B is
// listed by node A's GET /api/cluster/calls (with node-b as its node);
// a recording pause sent to node A for that call is forwarded to node B,
// done there, and audited in the shared archive with the original
// token's name, via node A. Node B's answer carries X-Cloak-Node.
func TestClusterViewForwardsAction(t *testing.T) {
	r := startClusterRig(t)
	r.register(t)
	a, b := r.nodes[0], r.nodes[1]
	agent := r.agentUAS(t, b, "pcap/agent-talk.pcap", 1)
	callerB := caller(t, b, 15*time.Second)
	if !b.waitLog("agent answered: bridging", 20*time.Second) {
		t.Fatal("node B never bridged its caller to demo")
	}
	type row struct {
		ID   string `json:"id"`
		Node string `json:"node"`
	}
	var view struct {
		Nodes []struct {
			Node  string `json:"node"`
			Calls int    `json:"calls"`
			Error string `json:"error"`
		} `json:"nodes"`
		Calls []row `json:"calls"`
	}
	var id string
	deadline := time.Now().Add(5 * time.Second)
	for id == "" {
		if err := apiGet(t, a, "/api/cluster/calls", &view); err != nil {
			t.Fatalf("GET /api/cluster/calls on node A: %v", err)
		}
		for _, c := range view.Calls {
			if c.Node == "node-b" {
				id = c.ID
			}
		}
		if id == "" && time.Now().After(deadline) {
			t.Fatalf("node A's cluster view never listed node B's call: %+v", view)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range view.Nodes {
		if n.Error != "" {
			t.Errorf("node %s in node A's view: %s", n.Node, n.Error)
		}
	}
	// The call syncs to cluster_calls each heartbeat: wait for its row.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		_ = r.db.QueryRow(`SELECT count(*) FROM cluster_calls WHERE id = $1 AND node = 'node-b'`, id).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B's call never reached cluster_calls")
		}
	}
	listStart := time.Now()
	if err := apiGet(t, a, "/api/cluster/calls", &view); err != nil {
		t.Fatalf("GET /api/cluster/calls on node A: %v", err)
	}
	listTook := time.Since(listStart)
	pauseStart := time.Now()
	if code, body := apiPost(t, a, "/api/calls/"+id+"/recording/pause", ""); code != 200 {
		t.Fatalf("recording pause sent to node A: %d %s, want 200 from node B", code, body)
	}
	t.Logf("cluster view of 2 nodes %v; recording pause forwarded A→B %v", listTook.Round(time.Millisecond), time.Since(pauseStart).Round(time.Millisecond))
	var actor, detail string
	if err := r.db.QueryRow(`SELECT actor, detail FROM audit_log WHERE interaction_id = $1 AND action = 'call_recording' ORDER BY id DESC LIMIT 1`, id).
		Scan(&actor, &detail); err != nil {
		t.Fatalf("no audit row of the forwarded pause: %v", err)
	}
	if !strings.HasPrefix(actor, "token:e2e-harness#") || !strings.HasSuffix(actor, " via node:node-a") || detail != "pause" {
		t.Errorf("audit of the forwarded pause: actor %q detail %q, want the harness token via node-a, pause", actor, detail)
	}
	// The call itself, read through node A, is node B's (forwarded GET).
	var one row
	if err := apiGet(t, a, "/api/calls/"+id, &one); err != nil || one.ID != id {
		t.Errorf("GET /api/calls/%s through node A: %+v %v", id, one, err)
	}
	var local []row
	if err := apiGet(t, a, "/api/calls", &local); err != nil || len(local) != 0 {
		t.Errorf("node A's own calls: %+v %v, want none", local, err)
	}
	callerB.wait(t)
	agent.wait(t)
}

// scanSharedDatabase runs the leak canary over every row of every table
// of the shared database (as JSON), returning what it found, the tables
// and how many rows it read.
func scanSharedDatabase(t *testing.T, db *sql.DB, cn *canary) (leaks []leak, tables []string, scanned int) {
	t.Helper()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		_ = rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT row_to_json(t)::text FROM "` + tbl + `" t`)
		if err != nil {
			t.Fatalf("read %s: %v", tbl, err)
		}
		for rows.Next() {
			var doc string
			_ = rows.Scan(&doc)
			leaks = append(leaks, cn.scanBytes("table "+tbl, 0, []byte(doc), true)...)
			scanned++
		}
		rows.Close()
	}
	return leaks, tables, scanned
}
