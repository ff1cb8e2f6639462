package acd

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeShared records what the Directory asks of a shared store.
type fakeShared struct {
	mu      sync.Mutex
	ops     []string
	names   []string // candidates of the last Claim
	claim   Claimed
	failErr error
	joins   int64 // the store's clock, in ms: one tick a join
}

func (f *fakeShared) Register(_ context.Context, name, contact string, path []string, expires time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "register "+name+" "+contact+" "+expires.String())
	return f.failErr
}

func (f *fakeShared) Claim(_ context.Context, queue string, names []string, callID string) (Claimed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = names
	f.ops = append(f.ops, "claim "+queue+" "+callID)
	if f.failErr != nil {
		return Claimed{}, f.failErr
	}
	if f.claim.Name == "" {
		return Claimed{}, ErrNoAgent
	}
	return f.claim, nil
}

func (f *fakeShared) Join(_ context.Context, queue, callID string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "join "+queue+" "+callID)
	f.joins++
	return time.UnixMilli(f.joins), f.failErr
}

func (f *fakeShared) Leave(_ context.Context, callID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "leave "+callID)
	return f.failErr
}

func (f *fakeShared) Set(_ context.Context, name string, s AgentState, callID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "set "+name+" "+s.String())
	return f.failErr
}

func (f *fakeShared) Agents(context.Context) ([]AgentInfo, error) {
	return []AgentInfo{{Name: "a", State: "reserved"}}, f.failErr
}

// TestSharedDirectory: with a shared store, registrations are written to
// it, an offer is its claim among the queue's agents in configuration
// order (skips left out), the claimed contact and Path are what the call
// dials, state changes are written back, Agents is the shared view, and
// a failing store is reported, never a silent success.
func TestSharedDirectory(t *testing.T) {
	d, err := NewDirectory([]AgentConfig{
		{Name: "c", Queues: []string{"q"}, Password: "x"},
		{Name: "a", Queues: []string{"q"}, Password: "x"},
		{Name: "b", Queues: []string{"other"}, Password: "x"},
		{Name: "s", URI: "sip:s@127.0.0.1", Queues: []string{"q"}},
	}, []QueueConfig{{Name: "q"}, {Name: "other"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeShared{}
	var failed []string
	d.UseShared(f, func(op string, err error) { failed = append(failed, op) })
	if d.RetryEvery() != time.Second {
		t.Errorf("poll fallback %v with a shared store, want 1s", d.RetryEvery())
	}

	d.Register("a", "sip:a@192.0.2.7:5062", []string{"<sip:192.0.2.1;lr>"}, time.Minute)
	d.Register("a", "", nil, 0)
	d.Register("s", "", nil, 0) // a static agent unbinds back to its URI
	d.Join("q", "call-1")
	if got := d.Offer("q", "call-1", map[string]bool{"s": true}); got != nil {
		t.Fatalf("offered %s when the store had nobody", got.Name())
	}
	if !slices.Equal(f.names, []string{"c", "a"}) {
		t.Errorf("claim candidates %v, want [c a] (queue q, configuration order, s skipped)", f.names)
	}
	f.claim = Claimed{Name: "a", Contact: "sip:a@192.0.2.9:5062", Path: []string{"<sip:192.0.2.1;lr>"}}
	got := d.Offer("q", "call-2", nil)
	if got == nil || got.Name() != "a" || got.Target() != "sip:a@192.0.2.9:5062" || len(got.Route()) != 1 || got.State() != Ringing {
		t.Fatalf("offer: %+v", got)
	}
	d.Set(got, Reserved)
	d.Set(got, Available)
	d.Leave("call-2")
	want := []string{"register a sip:a@192.0.2.7:5062 1m0s", "register a  0s", "register s sip:s@127.0.0.1 0s",
		"join q call-1", "claim q call-1", "claim q call-2", "set a reserved", "set a available", "leave call-2"}
	if !slices.Equal(f.ops, want) {
		t.Errorf("store calls:\n got %q\nwant %q", f.ops, want)
	}
	if list := d.Agents(); len(list) != 1 || list[0].State != "reserved" {
		t.Errorf("Agents with a shared store: %+v, want the store's view", list)
	}
	f.failErr = errors.New("database down")
	if got := d.Offer("q", "call-3", nil); got != nil {
		t.Error("offered an agent when the claim failed")
	}
	d.Set(got, Busy)
	if !slices.Equal(failed, []string{"claim", "set busy"}) {
		t.Errorf("failures reported: %q, want claim and set busy", failed)
	}
	if list := d.Agents(); len(list) != 4 { // the local view, and reported
		t.Errorf("Agents with the store down: %d agents, want the 4 local ones", len(list))
	}
}

// TestMayClaimHeadOfLine: with a shared store, only this node's
// longest-waiting caller of a queue not being offered an agent may
// claim; while they are offered one the next caller may, and after a
// missed offer they are back in their place; a caller who leaves gives
// way; a caller the store never took (Join failed) and every caller in
// memory may. Changed wakes per queue.
func TestMayClaimHeadOfLine(t *testing.T) {
	cfg := []AgentConfig{{Name: "a", Queues: []string{"q"}, Password: "x"}, {Name: "o", Queues: []string{"other"}, Password: "x"}}
	qs := []QueueConfig{{Name: "q"}, {Name: "other"}}
	mem, err := NewDirectory(cfg, qs)
	if err != nil {
		t.Fatal(err)
	}
	mem.Join("q", "m1")
	mem.Join("q", "m2")
	if !mem.MayClaim("q", "m2") {
		t.Error("in memory a caller was held back")
	}
	d, _ := NewDirectory(cfg, qs)
	f := &fakeShared{}
	d.UseShared(f, nil)
	d.Join("q", "c1")
	d.Join("other", "x1")
	d.Join("q", "c2")
	d.Join("q", "c3")
	waiting := []string{"c1", "c2", "c3"}
	may := func(want ...string) {
		t.Helper()
		var got []string
		for _, id := range waiting {
			if d.MayClaim("q", id) {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("may claim %q, want %q", got, want)
		}
	}
	may("c1")
	if !d.MayClaim("other", "x1") {
		t.Error("another queue's head held back")
	}
	f.claim = Claimed{Name: "a", Contact: "sip:a@192.0.2.9"}
	ch := d.Changed("q")
	a := d.Offer("q", "c1", nil)
	if a == nil {
		t.Fatal("no offer")
	}
	select {
	case <-ch:
	default:
		t.Error("a successful claim did not wake the queue's next caller")
	}
	may("c2") // c1 is being offered a
	d.Set(a, Available)
	may("c1") // missed: back at the head
	d.Leave("c1")
	waiting = waiting[1:]
	may("c2")
	d.Leave("c2")
	waiting = waiting[1:]
	may("c3")
	if !d.MayClaim("q", "never-joined") {
		t.Error("a caller the store does not hold was held back")
	}

	qch, och := d.Changed("q"), d.Changed("other")
	d.Notify([]string{"other", "no-such-queue"})
	select {
	case <-qch:
		t.Error("a wake-up for another queue woke q's callers")
	default:
	}
	select {
	case <-och:
	default:
		t.Error("the named queue was not woken")
	}
	d.Notify(nil)
	select {
	case <-qch:
	default:
		t.Error("a wake-up for any queue did not wake q's callers")
	}
}
