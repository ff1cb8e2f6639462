package call_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/call"
	"github.com/emiago/sipgo"
)

// callGoroutines returns the top frame of every goroutine running code of
// packages call or sip: what the call layer costs in goroutines (RTP read
// loops are media's).
func callGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var tops []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "created by ") {
				break
			}
			if strings.HasPrefix(l, "github.com/cloak-voip/cloak/call.") || strings.HasPrefix(l, "github.com/cloak-voip/cloak/sip.") {
				tops = append(tops, lines[1])
				break
			}
		}
	}
	slices.Sort(tops)
	return tops
}

// waitGoroutines waits until at most max goroutines run call or sip code;
// goroutines that finish their work (ringback, transactions) go away,
// parked ones do not.
func waitGoroutines(t *testing.T, what string, max int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tops := callGoroutines()
		if len(tops) <= max {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines in call/sip, want at most %d:\n%s", what, len(tops), max, strings.Join(tops, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasEvent(ia *call.Interaction, typ, state string) bool {
	for _, ev := range ia.Events() {
		if ev.Type == typ && ev.State == state {
			return true
		}
	}
	return false
}

// TestRelayCallsHangUpFromEitherSide: bridged "dial:" calls cost the call
// layer one goroutine each (the call's own, which waits for everything the
// call waits for); an agent's BYE ends its call with a BYE to the caller,
// a caller's BYE hangs up the agent leg, and once every call is over the
// goroutines are back to where they were.
func TestRelayCallsHangUpFromEitherSide(t *testing.T) {
	alice := newTestAgent(t, "alice")
	h := newHarness(t, opts{routes: map[string]string{"relay": "dial:" + alice.uri()}, prompts: os.DirFS("../testdata/prompts")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := len(callGoroutines())

	const n = 3
	var dialogs []*sipgo.DialogClientSession
	for range n {
		_, d, _ := dialCaller(t, h, ctx, "relay", pcmuOffer)
		waitAnswered(t, alice, 5*time.Second)
		dialogs = append(dialogs, d)
	}
	calls := h.mgr.Calls()
	if len(calls) != n {
		t.Fatalf("%d calls in progress, want %d", len(calls), n)
	}
	waitFor(t, "every call bridged", func() bool {
		for _, ia := range calls {
			if !hasEvent(ia, "state", "bridged") {
				return false
			}
		}
		return true
	})
	waitGoroutines(t, "calls bridged", idle+n)

	// The agent hangs up the last call: cloak says BYE to its caller.
	alice.hangup()
	want := dialogs[n-1].InviteRequest.CallID().Value()
	select {
	case got := <-h.byes:
		if got != want {
			t.Fatalf("BYE for call %s, want %s", got, want)
		}
	case <-ctx.Done():
		t.Fatal("the caller got no BYE after the agent hung up")
	}
	// The callers hang up the others: cloak hangs up their agent legs. A
	// call whose agent leg did not end would hold its handler for 6 s.
	for _, d := range dialogs[:n-1] {
		if err := d.Bye(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every call over", func() bool { return h.mgr.Active() == 0 })
	// agent_left is published just after the leg's end releases the call.
	waitFor(t, "agent_left on every call", func() bool {
		for _, ia := range calls {
			if !hasEvent(ia, "state", "agent_left") {
				return false
			}
		}
		return true
	})
	waitGoroutines(t, "calls over", idle)
}
