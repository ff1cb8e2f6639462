package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/media"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
)

// fakeArrival is an ArrivalScreener that answers after delay with d or
// err, and remembers what it was asked.
type fakeArrival struct {
	delay time.Duration
	d     fraud.Decision
	err   error
	mu    sync.Mutex
	seen  []fraud.Attributes
}

func (f *fakeArrival) ScreenArrival(ctx context.Context, a fraud.Attributes, _ string) (fraud.Decision, error) {
	f.mu.Lock()
	f.seen = append(f.seen, a)
	f.mu.Unlock()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
	}
	return f.d, f.err
}

func (f *fakeArrival) asked() []fraud.Attributes {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fraud.Attributes(nil), f.seen...)
}

// endedSummaries collects the summaries of ended calls.
type endedSummaries struct {
	mu  sync.Mutex
	all []call.Summary
}

func (e *endedSummaries) add(s call.Summary) { e.mu.Lock(); e.all = append(e.all, s); e.mu.Unlock() }
func (e *endedSummaries) get() []call.Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]call.Summary(nil), e.all...)
}

// TestArrivalSlowScreeningProceedsUnscreened: a screening slower than
// the timeout does not hold the answer back beyond it; the call is
// counted and marked unscreened, and an incident is logged once however
// many calls it touches.
func TestArrivalSlowScreeningProceedsUnscreened(t *testing.T) {
	slow := &fakeArrival{delay: 3 * time.Second, d: fraud.Decision{Score: 500, Hold: true, Matches: []fraud.Match{{Kind: "static", Type: "phone", Score: 500}}}}
	ended := &endedSummaries{}
	h := newHarness(t, opts{arrival: call.ArrivalConfig{Screener: slow, Screen: true, Route: "reject", Timeout: 150 * time.Millisecond}, onEnded: ended.add})
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sock := rtpSocket(t)
		start := time.Now()
		d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
		if err != nil || d.InviteResponse.StatusCode != 200 {
			cancel()
			t.Fatalf("call %d: %v (a slow screening must not refuse the call)", i, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("call %d answered after %v, want about the 150 ms timeout", i, took)
		}
		_ = d.Ack(ctx)
		_ = d.Bye(ctx)
		cancel()
	}
	waitFor(t, "calls ended", func() bool { return len(ended.get()) == 2 })
	if n := h.mgr.ArrivalUnscreened(); n != 2 {
		t.Errorf("unscreened %d, want 2", n)
	}
	if timeout, failed := h.mgr.ArrivalUnscreenedBy(); timeout != 2 || failed != 0 {
		t.Errorf("unscreened by reason: timeout %d, error %d, want 2 and 0 (cloak_fraud_arrivals_unscreened_total)", timeout, failed)
	}
	if n := strings.Count(h.logs.String(), "did not answer"); n != 1 {
		t.Errorf("incident logged %d times, want once", n)
	}
	for _, s := range ended.get() {
		var r call.FraudRisk
		if err := json.Unmarshal([]byte(s.Data[call.DataFraudRisk]), &r); err != nil || r.Unscreened != "timeout" {
			t.Errorf("mark %q (%v), want unscreened timeout", s.Data[call.DataFraudRisk], err)
		}
	}
	if a := slow.asked(); len(a) != 2 || a[0].Route != "echo" || !a[0].Source.IsLoopback() || a[0].Payment != nil {
		t.Errorf("attributes asked %+v", a)
	}
}

// TestArrivalRoutes: at or above the minimum, reject answers 603 and no
// 200; below it (Hold false) the call is answered and marked; a failing
// screening lets the call through unscreened; a clean call (no match) is
// not marked.
func TestArrivalRoutes(t *testing.T) {
	over := fraud.Decision{Score: 150, Minimum: 100, Hold: true, Matches: []fraud.Match{{Kind: "static", Type: "phone", Value: "+447700900777", Score: 150}}}
	under := fraud.Decision{Score: 30, Minimum: 100, Matches: []fraud.Match{{Kind: "rule", Rule: "grey-trunk", Score: 30}}}
	for _, tc := range []struct {
		name   string
		f      *fakeArrival
		status int
		mark   string // a fragment of the fraud_risk mark; "" none
	}{
		{"reject", &fakeArrival{d: over}, 603, `"route":"reject"`},
		{"under", &fakeArrival{d: under}, 200, `"criterion":"rule:grey-trunk"`},
		{"failing", &fakeArrival{err: errors.New("archive down")}, 200, `"unscreened":"error"`},
		{"clean", &fakeArrival{}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := &endedSummaries{}
			h := newHarness(t, opts{arrival: call.ArrivalConfig{Screener: tc.f, Screen: true, Route: "reject", Timeout: 2 * time.Second}, onEnded: ended.add})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sock := rtpSocket(t)
			d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
			status := statusOf(err)
			if err == nil {
				status = d.InviteResponse.StatusCode
				_ = d.Ack(ctx)
				_ = d.Bye(ctx)
			}
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, err, tc.status)
			}
			waitFor(t, "call ended", func() bool { return len(ended.get()) == 1 })
			mark := ended.get()[0].Data[call.DataFraudRisk]
			if tc.mark == "" && mark != "" || !strings.Contains(mark, tc.mark) {
				t.Errorf("mark %q, want one with %q", mark, tc.mark)
			}
			if strings.Contains(mark, "7700900777") {
				t.Errorf("the mark repeats the matched number: %s", mark)
			}
		})
	}
}

// TestArrivalRouteToQueue: at or above the minimum with route
// queue:NAME, the caller waits in that queue instead of the echo route
// (here nobody answers: the queue times out and the call ends).
func TestArrivalRouteToQueue(t *testing.T) {
	dir, err := acd.NewDirectory(nil, []acd.QueueConfig{{Name: "review", Timeout: time.Second, RingTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	over := fraud.Decision{Score: 150, Minimum: 100, Hold: true, Matches: []fraud.Match{{Kind: "rule", Rule: "busy", Score: 150}}}
	ended := &endedSummaries{}
	h := newHarness(t, opts{dir: dir, prompts: os.DirFS("../testdata/prompts"), onEnded: ended.add,
		arrival: call.ArrivalConfig{Screener: &fakeArrival{d: over}, Screen: true, Route: "queue:review", Timeout: time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil || d.InviteResponse.StatusCode != 200 {
		t.Fatalf("invite: %v", err)
	}
	_ = d.Ack(ctx)
	waitFor(t, "call ended", func() bool { return len(ended.get()) == 1 })
	s := ended.get()[0]
	if s.Target != "queue:review" || !strings.Contains(s.Data[call.DataFraudRisk], `"route":"queue:review"`) {
		t.Errorf("target %q mark %q, want queue:review", s.Target, s.Data[call.DataFraudRisk])
	}
	if !strings.Contains(h.logs.String(), `"queue":"review"`) {
		t.Errorf("the caller was not queued:\n%s", h.logs.String())
	}
}

// TestArrivalRouteMustExist: a fraud.call.route naming a flow or a queue
// that does not exist refuses the manager at start.
func TestArrivalRouteMustExist(t *testing.T) {
	for _, route := range []string{"flow:nowhere", "queue:nowhere"} {
		_, err := call.NewManager(call.Config{Pool: testPool(t), Clock: media.NewClock(media.DefaultClockInterval),
			Arrival: call.ArrivalConfig{Route: route}})
		if err == nil || !strings.Contains(err.Error(), "fraud.call.route") {
			t.Errorf("%s: %v, want an error naming fraud.call.route", route, err)
		}
	}
}

func testPool(t *testing.T) *media.PortPool {
	t.Helper()
	r := rtpRange(4)
	p, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), r[0], r[1])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestArrivalAttributes: the screening sees the caller's number, the
// carrier's verstat from P-Asserted-Identity, the route, the source and
// the time, and no payment.
func TestArrivalAttributes(t *testing.T) {
	f := &fakeArrival{}
	h := newHarness(t, opts{arrival: call.ArrivalConfig{Screener: f, Screen: true, Route: "reject", Timeout: time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.dc.Invite(ctx, h.uri("echo"), pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port),
		siplib.NewHeader("Content-Type", "application/sdp"),
		siplib.NewHeader("P-Asserted-Identity", "<tel:+447700900123;verstat=TN-Validation-Failed>"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = d.Ack(ctx)
	_ = d.Bye(ctx)
	a := f.asked()
	if len(a) != 1 {
		t.Fatalf("asked %d times", len(a))
	}
	if a[0].Verstat != "TN-Validation-Failed" || a[0].Route != "echo" || a[0].Caller == "" || !a[0].Source.IsLoopback() ||
		a[0].Time.IsZero() || a[0].Payment != nil {
		t.Errorf("attributes %+v", a[0])
	}
}
