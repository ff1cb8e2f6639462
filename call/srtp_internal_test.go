package call

import (
	"testing"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/sip"
)

// TestAgentSRTP: an agent's own SRTP mode overrides the node's for the
// legs placed to it; without one, or on a dial: leg, the node's holds.
func TestAgentSRTP(t *testing.T) {
	d, err := acd.NewDirectory([]acd.AgentConfig{
		{Name: "lan", URI: "sip:lan@10.0.0.7", Queues: []string{"lan"}, SRTP: "off"},
		{Name: "remote", URI: "sips:remote@203.0.113.5", Queues: []string{"remote"}, SRTP: "mandatory"},
		{Name: "plain", URI: "sip:plain@10.0.0.8", Queues: []string{"plain"}},
	}, []acd.QueueConfig{{Name: "lan"}, {Name: "remote"}, {Name: "plain"}})
	if err != nil {
		t.Fatal(err)
	}
	node := sip.SRTPPolicy{Mode: sip.SRTPOptional, OverPlainSIP: true}
	for name, want := range map[string]sip.SRTPMode{"lan": sip.SRTPOff, "remote": sip.SRTPMandatory, "plain": sip.SRTPOptional} {
		a := d.Offer(name, "call-"+name, nil)
		if a == nil || a.Name() != name {
			t.Fatalf("queue %s offered %v", name, a)
		}
		if got := agentSRTP(node, a); got.Mode != want || !got.OverPlainSIP {
			t.Errorf("%s: %+v, want mode %v", name, got, want)
		}
	}
	if got := agentSRTP(node, nil); got != node {
		t.Errorf("dial: leg: %+v", got)
	}
}
