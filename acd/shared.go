package acd

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"
)

// Shared is agent state several nodes share (package cluster implements
// it over PostgreSQL). With none set, a Directory keeps registrations and
// states in its own memory — the single-node default, which never waits
// on a database. With one set (UseShared), the Directory still holds the
// configuration (agents, queues, passwords) and the state of the agents
// this node has claimed, but a registration is written to the shared
// store, an offer is a claim in it (so two nodes never offer the same
// agent), and every state change of a claimed agent is written back.
type Shared interface {
	// Register records a binding any node took: contact and Path
	// (RFC 3327 §5.3) for expires; expires 0 removes it, contact then
	// being the agent's configured URI ("" for none).
	Register(ctx context.Context, name, contact string, path []string, expires time.Duration) error
	// Claim takes the longest-idle available agent among names (listed
	// in configuration order, which breaks ties of idle time) for callID
	// waiting in queue and marks it ringing, atomically across nodes;
	// ErrNoAgent when none is free, or when a caller of the queue who
	// joined earlier (on any node) is still waiting for one.
	Claim(ctx context.Context, queue string, names []string, callID string) (Claimed, error)
	// Join puts callID in queue's shared waiting line (arrival order
	// across nodes) and returns its place: the time it joined, on the
	// store's clock (ties broken by callID, bytewise); Leave takes it
	// out.
	Join(ctx context.Context, queue, callID string) (time.Time, error)
	Leave(ctx context.Context, callID string) error
	// Set moves an agent this node claimed to state; a no-op when the
	// claim is no longer this node's (a survivor freed it).
	Set(ctx context.Context, name string, s AgentState, callID string) error
	// Agents is every agent's shared state.
	Agents(ctx context.Context) ([]AgentInfo, error)
}

// Claimed is the agent a Claim took and where to call them.
type Claimed struct {
	Name    string
	Contact string
	Path    []string // the registration's Path: the calls' Route set
}

// ErrNoAgent: no agent of the candidates is available.
var ErrNoAgent = errors.New("acd: no agent available")

// sharedTimeout bounds each call of the shared store.
const sharedTimeout = 3 * time.Second

// UseShared makes the directory keep registrations and states in s
// (before any call is taken). onErr is told of every failed call to it
// (a claim that failed offers nobody; a state that was not written is
// corrected by the node-loss clean-up at worst).
func (d *Directory) UseShared(s Shared, onErr func(op string, err error)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.shared, d.onErr = s, onErr
}

// Notify wakes the callers waiting for an agent in queues (Changed):
// another node freed or registered one of theirs, or a caller ahead of
// them left the line. nil wakes the callers of every queue (several
// agents changed, or notifications may have been missed).
func (d *Directory) Notify(queues []string) { d.signal(queues) }

// waiter is one of this node's callers in a queue's shared line.
type waiter struct {
	callID   string
	joined   time.Time // on the shared store's clock
	offering bool      // an agent claimed for them is being offered
}

// MayClaim says whether callID, waiting in queue, may win a claim now
// (docs/SCALE.md, "The wake-up herd"): with a shared store, only the
// longest-waiting of this node's callers of the queue who is not being
// offered an agent can, since the store gives an agent only to the
// head of the line across nodes and that head, if it is on this node,
// is this caller; when the head is on another node, that node claims.
// A woken caller for whom it is false does not ask the store at all.
// Always true in memory, and for a caller whose Join failed (the store
// then does not hold them back either).
func (d *Directory) MayClaim(queue, callID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shared == nil {
		return true
	}
	line, known := d.lines[queue], false
	for _, w := range line {
		if w.callID == callID {
			known = true
			break
		}
	}
	if !known {
		return true
	}
	for _, w := range line {
		if !w.offering {
			return w.callID == callID
		}
	}
	return false
}

// offered marks callID's offer as under way or over (locally; the
// store keeps its own mark).
func (d *Directory) offered(callID string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, line := range d.lines {
		for _, w := range line {
			if w.callID == callID {
				w.offering = on
			}
		}
	}
}

// RetryEvery is how often a waiting caller asks for an agent again when
// nothing woke it: 500 ms in memory; once a second with a shared store,
// which bounds the poll fallback when a notification is lost.
func (d *Directory) RetryEvery() time.Duration {
	if d.sharedStore() != nil {
		return time.Second
	}
	return 500 * time.Millisecond
}

// Configs lists the agents' configuration in configuration order (the
// shared store's rows are seeded from it).
func (d *Directory) Configs() []AgentConfig {
	d.mu.Lock()
	list := make([]*Agent, 0, len(d.agents))
	for _, a := range d.agents {
		list = append(list, a)
	}
	d.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].order < list[j].order })
	out := make([]AgentConfig, len(list))
	for i, a := range list {
		out[i] = a.cfg
	}
	return out
}

func (d *Directory) sharedStore() Shared {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shared
}

func (d *Directory) fail(op string, err error) {
	d.mu.Lock()
	f := d.onErr
	d.mu.Unlock()
	if f != nil {
		f(op, err)
	}
}

// offerShared claims in the shared store among the queue's agents not in
// skip and mirrors the claim on the local Agent (contact, route, ringing).
func (d *Directory) offerShared(s Shared, queue, callID string, skip map[string]bool) *Agent {
	d.mu.Lock()
	cands := make([]*Agent, 0, len(d.agents))
	for _, a := range d.agents {
		if !skip[a.cfg.Name] && contains(a.cfg.Queues, queue) {
			cands = append(cands, a)
		}
	}
	d.mu.Unlock()
	if len(cands) == 0 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].order < cands[j].order })
	names := make([]string, len(cands))
	for i, a := range cands {
		names[i] = a.cfg.Name
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	cl, err := s.Claim(ctx, queue, names, callID)
	if err != nil {
		if !errors.Is(err, ErrNoAgent) {
			d.fail("claim", err)
		}
		return nil
	}
	d.mu.Lock()
	a := d.agents[cl.Name]
	d.mu.Unlock()
	if a == nil { // claimed a name we did not ask for: give it back
		d.fail("claim", ErrUnknownAgent)
		_ = s.Set(ctx, cl.Name, Available, callID)
		return nil
	}
	a.mu.Lock()
	a.state, a.callID, a.contact, a.route = Ringing, callID, cl.Contact, append([]string(nil), cl.Path...)
	a.mu.Unlock()
	// The caller is no longer this node's head of the line: the next
	// one may claim another free agent of the queue (a burst of agents
	// freed at once must not wait for the poll).
	d.offered(callID, true)
	d.signal([]string{queue})
	return a
}

func (d *Directory) setShared(s Shared, a *Agent, st AgentState, callID string) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := s.Set(ctx, a.cfg.Name, st, callID); err != nil {
		d.fail("set "+st.String(), err)
	}
}

func (d *Directory) registerShared(s Shared, a *Agent, contact string, path []string, expires time.Duration) {
	if expires <= 0 || contact == "" {
		contact, path, expires = a.cfg.URI, nil, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := s.Register(ctx, a.cfg.Name, contact, path, expires); err != nil {
		d.fail("register", err)
	}
}

// Join puts a caller in the queue's waiting line shared by the nodes, so
// the longest-waiting caller of all nodes is offered the next agent, and
// in this node's copy of its part of the line, in the same order
// (MayClaim); a no-op in memory (one node's callers are its own line).
func (d *Directory) Join(queue, callID string) {
	sh := d.sharedStore()
	if sh == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	joined, err := sh.Join(ctx, queue, callID)
	if err != nil {
		d.fail("join", err)
		return
	}
	w := &waiter{callID: callID, joined: joined}
	d.mu.Lock()
	defer d.mu.Unlock()
	line := d.lines[queue]
	i := sort.Search(len(line), func(i int) bool {
		o := line[i]
		return o.joined.After(joined) || (o.joined.Equal(joined) && o.callID > callID)
	})
	d.lines[queue] = slices.Insert(line, i, w)
}

// Leave takes a caller out of the shared waiting line (answered, timed
// out or gone).
func (d *Directory) Leave(callID string) {
	sh := d.sharedStore()
	if sh == nil {
		return
	}
	d.mu.Lock()
	for q, line := range d.lines {
		line = slices.DeleteFunc(line, func(w *waiter) bool { return w.callID == callID })
		if len(line) == 0 {
			delete(d.lines, q)
		} else {
			d.lines[q] = line
		}
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := sh.Leave(ctx, callID); err != nil {
		d.fail("leave", err)
	}
}

// ParseAgentState is the inverse of AgentState.String.
func ParseAgentState(s string) (AgentState, bool) {
	for i, n := range agentStateNames {
		if n == s {
			return AgentState(i), true
		}
	}
	return LoggedOut, false
}
