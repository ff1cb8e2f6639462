package acd

import (
	"testing"
	"time"
)

// Agents idle equally long (as after a restart) are offered in the order
// they are configured, every time: the map they live in has no order.
func TestOfferBreaksIdleTiesByConfigOrder(t *testing.T) {
	d, err := NewDirectory([]AgentConfig{
		{Name: "a", URI: "sip:a@127.0.0.1", Queues: []string{"q"}},
		{Name: "b", URI: "sip:b@127.0.0.1", Queues: []string{"q"}},
		{Name: "c", URI: "sip:c@127.0.0.1", Queues: []string{"q"}},
	}, []QueueConfig{{Name: "q"}})
	if err != nil {
		t.Fatal(err)
	}
	same := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range 20 {
		for _, a := range d.agents {
			a.state, a.idleSince = Available, same
		}
		if got := d.Offer("q", "call", nil); got == nil || got.Name() != "a" {
			t.Fatalf("round %d: offered %v, want a (configured first)", i, got)
		}
		if got := d.Offer("q", "call", map[string]bool{"a": true}); got == nil || got.Name() != "b" {
			t.Fatalf("round %d: offered %v with a skipped, want b", i, got)
		}
	}
}
