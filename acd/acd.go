package acd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// AgentState is where an agent is in its working day.
type AgentState uint8

// Agent states.
const (
	// LoggedOut: not registered (or registration expired); never offered calls.
	LoggedOut AgentState = iota
	// Available: idle, may be offered a call.
	Available
	// Ringing: being offered a call.
	Ringing
	// Busy: talking to a caller.
	Busy
	// Reserved: their caller is in an agent-referred secure flow and will
	// come back to them; never offered another call.
	Reserved
)

var agentStateNames = [...]string{"logged-out", "available", "ringing", "busy", "reserved"}

// String names the state.
func (s AgentState) String() string {
	if int(s) < len(agentStateNames) {
		return agentStateNames[s]
	}
	return "unknown"
}

// AgentConfig describes one agent.
type AgentConfig struct {
	// Name identifies the agent; it is also the SIP user a softphone
	// registers as.
	Name string
	// URI is a static contact (sip:alice@10.0.0.7:5060). Empty means the
	// agent logs in by registering.
	URI string
	// Password authenticates REGISTER (digest). Empty refuses registration.
	Password string
	// Queues the agent answers.
	Queues []string
	// SRTP is the SRTP mode ("off", "optional", "mandatory") of the legs
	// placed to the agent; empty means the node's (rtp.srtp).
	SRTP string
}

// QueueConfig describes one queue.
type QueueConfig struct {
	// Name is what flows transfer to ("queue:NAME").
	Name string
	// Timeout is the longest a caller waits before the flow's failure path.
	Timeout time.Duration
	// RingTimeout is how long one agent rings before the next is tried.
	RingTimeout time.Duration
	// HoldPrompt plays to the caller while waiting (default "hold").
	HoldPrompt string
	// MaskDTMF, in normal mode, keeps the caller's digits from the agent
	// (RFC 4733 events dropped, in-band tones removed); otherwise RFC 4733
	// events pass. In secure mode digits never pass, whatever this says.
	MaskDTMF bool
	// Collect, with MaskDTMF, gathers the digits the caller keys while
	// talking; the agent sees only their mask (the API).
	Collect bool
}

// Agent is one agent's live state.
type Agent struct {
	cfg   AgentConfig
	order int // position in the configuration: breaks ties of idle time

	mu        sync.Mutex
	state     AgentState
	contact   string    // where to call: static URI or registered contact
	route     []string  // the registration's Path (RFC 3327): the calls' Route set
	expires   time.Time // registration expiry (zero for static)
	idleSince time.Time
	callID    string // interaction the agent is serving
}

// AgentInfo is a snapshot of an agent for the API.
type AgentInfo struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Queues    []string  `json:"queues"`
	Contact   string    `json:"contact,omitempty"`
	IdleSince time.Time `json:"idle_since,omitempty"`
	Call      string    `json:"call,omitempty"`
}

// Directory holds the agents and queues and hands calls to agents: the
// longest-idle available agent of the queue, never a reserved one.
type Directory struct {
	mu      sync.Mutex
	agents  map[string]*Agent
	queues  map[string]QueueConfig
	changed map[string]chan struct{} // per queue: closed and replaced when an agent of it may have become available
	lines   map[string][]*waiter     // per queue: this node's callers in the shared line, longest-waiting first
	now     func() time.Time
	shared  Shared                     // nil: state in memory only (UseShared)
	onErr   func(op string, err error) // failures of shared
}

// Errors of the directory.
var (
	ErrUnknownQueue = errors.New("unknown queue")
	ErrQueueTimeout = errors.New("no agent answered before the queue timeout")
	ErrUnknownAgent = errors.New("unknown agent")
)

// NewDirectory builds the directory from configuration.
func NewDirectory(agents []AgentConfig, queues []QueueConfig) (*Directory, error) {
	d := &Directory{agents: map[string]*Agent{}, queues: map[string]QueueConfig{}, changed: map[string]chan struct{}{},
		lines: map[string][]*waiter{}, now: time.Now}
	for _, q := range queues {
		if q.Timeout <= 0 {
			q.Timeout = 2 * time.Minute
		}
		if q.RingTimeout <= 0 {
			q.RingTimeout = 20 * time.Second
		}
		if q.HoldPrompt == "" {
			q.HoldPrompt = "hold"
		}
		d.queues[q.Name] = q
		d.changed[q.Name] = make(chan struct{})
	}
	for _, ac := range agents {
		if _, dup := d.agents[ac.Name]; dup {
			return nil, fmt.Errorf("agent %q: defined twice", ac.Name)
		}
		for _, q := range ac.Queues {
			if _, ok := d.queues[q]; !ok {
				return nil, fmt.Errorf("agent %q: %w %q", ac.Name, ErrUnknownQueue, q)
			}
		}
		a := &Agent{cfg: ac, order: len(d.agents), idleSince: d.now()}
		if ac.URI != "" {
			a.state, a.contact = Available, ac.URI
		}
		d.agents[ac.Name] = a
	}
	return d, nil
}

// Queue returns a queue's configuration.
func (d *Directory) Queue(name string) (QueueConfig, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.queues[name]
	return q, ok
}

// Password returns an agent's REGISTER password (for sip.Registrar).
func (d *Directory) Password(user string) (string, bool) {
	d.mu.Lock()
	a, ok := d.agents[user]
	d.mu.Unlock()
	if !ok || a.cfg.Password == "" {
		return "", false
	}
	return a.cfg.Password, true
}

// Register records a softphone's binding (expires 0: logged out). path is
// the REGISTER's Path header values in order (RFC 3327 §5.3), nil when it
// came straight to us: calls to the contact carry them as their Route set
// (Route), so they go back through the proxies the REGISTER came by.
func (d *Directory) Register(user, contact string, path []string, expires time.Duration) {
	d.mu.Lock()
	a, ok := d.agents[user]
	d.mu.Unlock()
	if !ok {
		return
	}
	if sh := d.sharedStore(); sh != nil {
		d.registerShared(sh, a, contact, path, expires)
	}
	a.mu.Lock()
	if expires <= 0 || contact == "" {
		a.contact, a.route, a.expires = a.cfg.URI, nil, time.Time{}
		if a.cfg.URI == "" && (a.state == Available || a.state == Ringing) {
			a.state = LoggedOut
		}
	} else {
		a.contact, a.route, a.expires = contact, append([]string(nil), path...), d.now().Add(expires)
		if a.state == LoggedOut {
			a.state, a.idleSince = Available, d.now()
		}
	}
	a.mu.Unlock()
	d.signal(a.cfg.Queues)
}

// signal wakes the callers waiting in queues (nil: in every queue); names
// not configured are ignored.
func (d *Directory) signal(queues []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if queues == nil {
		for q, ch := range d.changed {
			close(ch)
			d.changed[q] = make(chan struct{})
		}
		return
	}
	for _, q := range queues {
		if ch, ok := d.changed[q]; ok {
			close(ch)
			d.changed[q] = make(chan struct{})
		}
	}
}

// Changed returns a channel closed the next time an agent of queue may
// have become available (nil, which never closes, for a queue not
// configured): only the queue's callers wake, not every waiting caller.
func (d *Directory) Changed(queue string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed[queue]
}

// Offer picks the longest-idle available agent of queue, skipping those in
// skip, and marks it Ringing for callID; of agents idle equally long, the
// one configured first. It returns nil when none is free.
func (d *Directory) Offer(queue, callID string, skip map[string]bool) *Agent {
	if sh := d.sharedStore(); sh != nil {
		return d.offerShared(sh, queue, callID, skip)
	}
	d.mu.Lock()
	cands := make([]*Agent, 0, len(d.agents))
	for _, a := range d.agents {
		if skip[a.cfg.Name] || !contains(a.cfg.Queues, queue) {
			continue
		}
		cands = append(cands, a)
	}
	d.mu.Unlock()
	now := d.now()
	var best *Agent
	var bestIdle time.Time
	for _, a := range cands {
		a.mu.Lock()
		if !a.expires.IsZero() && now.After(a.expires) && a.cfg.URI == "" {
			a.state = LoggedOut
		}
		if a.state == Available && (best == nil || a.idleSince.Before(bestIdle) ||
			(a.idleSince.Equal(bestIdle) && a.order < best.order)) {
			best, bestIdle = a, a.idleSince
		}
		a.mu.Unlock()
	}
	if best == nil {
		return nil
	}
	best.mu.Lock()
	defer best.mu.Unlock()
	if best.state != Available { // taken meanwhile
		return nil
	}
	best.state, best.callID = Ringing, callID
	return best
}

// Candidates counts the agents of queue that are not logged out (reserved
// and busy included): whether waiting can ever succeed.
func (d *Directory) Candidates(queue string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, a := range d.agents {
		a.mu.Lock()
		if a.state != LoggedOut && contains(a.cfg.Queues, queue) {
			n++
		}
		a.mu.Unlock()
	}
	return n
}

// Set moves an agent to state (Available restarts its idle time).
func (d *Directory) Set(a *Agent, s AgentState) {
	a.mu.Lock()
	prev, callID := a.state, a.callID
	a.state = s
	if s == Available {
		a.callID = ""
		if prev != Ringing {
			a.idleSince = d.now() // a missed offer does not reset idle time
		}
		if a.cfg.URI == "" && a.contact == "" {
			a.state = LoggedOut
		}
	}
	a.mu.Unlock()
	if sh := d.sharedStore(); sh != nil {
		if s == Available {
			d.offered(callID, false) // a missed offer: back in their place
		}
		d.setShared(sh, a, s, callID)
	}
	if s == Available {
		d.signal(a.cfg.Queues)
	}
}

// Agents returns a snapshot of every agent, by name: with a shared
// store, the state every node sees (this node's own view if the store
// cannot be read).
func (d *Directory) Agents() []AgentInfo {
	if sh := d.sharedStore(); sh != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		list, err := sh.Agents(ctx)
		cancel()
		if err == nil {
			return list
		}
		d.fail("agents", err)
	}
	d.mu.Lock()
	list := make([]*Agent, 0, len(d.agents))
	for _, a := range d.agents {
		list = append(list, a)
	}
	d.mu.Unlock()
	out := make([]AgentInfo, 0, len(list))
	for _, a := range list {
		out = append(out, a.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Info is a snapshot of the agent.
func (a *Agent) Info() AgentInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AgentInfo{Name: a.cfg.Name, State: a.state.String(), Queues: a.cfg.Queues, Contact: a.contact, IdleSince: a.idleSince, Call: a.callID}
}

// Name is the agent's name.
func (a *Agent) Name() string { return a.cfg.Name }

// SRTP is the agent's SRTP mode for the legs placed to it, "" for the
// node's (AgentConfig.SRTP).
func (a *Agent) SRTP() string { return a.cfg.SRTP }

// State is the agent's state now.
func (a *Agent) State() AgentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Target is where to call the agent: the registered contact, or the
// configured URI.
func (a *Agent) Target() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.contact
}

// Route is the Route set for calls to Target: the Path its registration
// came with (RFC 3327 §5.3), nil for a direct registration or a
// configured URI. The slice is the caller's.
func (a *Agent) Route() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.route...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
