package call

import (
	"errors"
	"testing"

	"github.com/cloak-voip/cloak/acd"
)

// TestMonitorDialInLookup: the dialled number names the agent after the
// code; the SIP user monitors as its linked user; an agent's live call
// is found only while it is bridged to that agent; queues[].supervisors
// names who may monitor.
func TestMonitorDialInLookup(t *testing.T) {
	r := newMonRig(t, true, MonitorListen)
	c := r.c
	m := c.m
	m.cfg.Monitor.DialCode = "*55"
	m.cfg.Monitor.Users = map[string]string{"deskphone7": "carol"}
	for _, tc := range []struct {
		called, agent string
		ok            bool
	}{{"*55alice", "alice", true}, {"*552001", "2001", true}, {"*5", "", false}, {"alice", "", false}, {"55alice", "", false}} {
		if a, ok := m.dialInAgent(tc.called); a != tc.agent || ok != tc.ok {
			t.Errorf("dialInAgent(%q) = %q, %v; want %q, %v", tc.called, a, ok, tc.agent, tc.ok)
		}
	}
	m.cfg.Monitor.DialCode = ""
	if _, ok := m.dialInAgent("*55alice"); ok {
		t.Error("an empty code still dials in")
	}
	if m.supervisorOf("deskphone7") != "carol" || m.supervisorOf("sup1") != "sup1" {
		t.Errorf("supervisorOf: %q %q", m.supervisorOf("deskphone7"), m.supervisorOf("sup1"))
	}

	dir, err := acd.NewDirectory([]acd.AgentConfig{{Name: "alice", URI: "sip:a@127.0.0.1", Queues: []string{"sales"}}, {Name: "bob", URI: "sip:b@127.0.0.1", Queues: []string{"sales"}}},
		[]acd.QueueConfig{{Name: "sales"}})
	if err != nil {
		t.Fatal(err)
	}
	m.dir = dir
	m.calls = map[string]*Interaction{}
	if got, known := m.agentCall("nobody"); got != nil || known {
		t.Errorf("unknown agent: %v, %v", got, known)
	}
	if got, known := m.agentCall("alice"); got != nil || !known {
		t.Errorf("alice without a call: %v, %v", got, known)
	}
	a := dir.Offer("sales", c.id, nil)
	if a == nil || a.Name() != "alice" {
		t.Fatalf("offer: %v", a)
	}
	m.calls[c.id] = c
	c.side.agent = a
	c.side.queue.Name = "sales"
	if got, _ := m.agentCall("alice"); got != c {
		t.Errorf("alice's live call not found: %v", got)
	}
	close(c.side.gone) // the agent leg ended: no live call to monitor
	if got, known := m.agentCall("alice"); got != nil || !known {
		t.Errorf("alice after her leg ended: %v, %v", got, known)
	}

	side := &agentSide{queue: acd.QueueConfig{Name: "sales"}}
	m.cfg.Monitor.Supervisors = map[string][]string{"sales": {"sup1"}}
	if err := c.maySupervise(side, "sup1"); err != nil {
		t.Errorf("sup1 on sales: %v", err)
	}
	if err := c.maySupervise(side, "sup2"); !errors.Is(err, ErrNotSupervisor) {
		t.Errorf("sup2 on sales: %v", err)
	}
}
