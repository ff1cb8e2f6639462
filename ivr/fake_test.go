package ivr

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// timeoutKey in a fake call's script makes NextDigit time out once.
const timeoutKey = 'T'

// fakeCall records every request of the interpreter and answers NextDigit
// from a script of keys ('T' = a timeout). An exhausted script times out.
//
// Type-ahead: during[prompt] are keys the caller presses while that prompt
// plays (once). They are queued like call/'s digit queue: NextDigit takes
// queued keys before the script, FlushDigits drops them, and a barge-in
// Play stops before its next prompt once a key is queued ("barge <prompt>"
// is recorded for the first prompt not played to its end).
type fakeCall struct {
	mu     sync.Mutex
	script []byte
	during map[string]string
	queued []byte
	ops    []string
	traces []TraceEvent
	data   map[string]string

	agent       bool  // AgentReserved
	returnErr   error // ReturnToAgent result
	transferErr error
	enterErr    error
	secure      bool // inside EnterSecure..LeaveSecure
	enters      int
	leaves      int
	outputs     map[string]string // last LeaveSecure outputs
	// cancelAfter cancels cancel after this many NextDigit calls (0: never).
	cancelAfter int
	cancel      context.CancelFunc
	nextCalls   int
	// hangupOn cancels cancel when Play is asked for this prompt: the
	// caller hangs up while it plays.
	hangupOn string
}

func newFakeCall(script ...string) *fakeCall {
	return &fakeCall{script: []byte(strings.Join(script, "")), data: map[string]string{}}
}

func (c *fakeCall) rec(format string, a ...any) {
	c.ops = append(c.ops, fmt.Sprintf(format, a...))
}

func (c *fakeCall) ID() string { return "call-1" }

func (c *fakeCall) Answer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("answer")
	return ctx.Err()
}

func (c *fakeCall) Play(ctx context.Context, bargeIn bool, prompts ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bargeIn {
		c.rec("play+ %s", strings.Join(prompts, " "))
	} else {
		c.rec("play %s", strings.Join(prompts, " "))
	}
	for _, p := range prompts {
		if p == c.hangupOn && c.cancel != nil {
			c.rec("caller hangs up during %s", p)
			c.cancel()
			return ctx.Err()
		}
		if bargeIn && len(c.queued) > 0 {
			c.rec("barge %s", p) // not started: a key was already queued
			return ctx.Err()
		}
		if keys, ok := c.during[p]; ok {
			delete(c.during, p)
			c.queued = append(c.queued, keys...)
			if bargeIn && len(keys) > 0 {
				c.rec("barge %s", p) // stopped at its first key
				return ctx.Err()
			}
		}
	}
	return ctx.Err()
}

func (c *fakeCall) NextDigit(ctx context.Context, timeout time.Duration) (byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextCalls++
	if c.cancelAfter > 0 && c.nextCalls > c.cancelAfter {
		c.cancel()
		return 0, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if timeout <= 0 {
		return 0, fmt.Errorf("bad timeout %v", timeout)
	}
	if len(c.queued) > 0 {
		d := c.queued[0]
		c.queued = c.queued[1:]
		return d, nil
	}
	if len(c.script) == 0 {
		return 0, ErrDigitTimeout
	}
	d := c.script[0]
	c.script = c.script[1:]
	if d == timeoutKey {
		return 0, ErrDigitTimeout
	}
	return d, nil
}

func (c *fakeCall) FlushDigits() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("flush")
	c.queued = nil
}

func (c *fakeCall) SetData(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("set_data %s=%s", key, value)
	c.data[key] = value
}

func (c *fakeCall) EnterSecure(flow string, kind Kind) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("enter_secure %s %s", flow, kind)
	if c.enterErr != nil {
		return c.enterErr
	}
	c.secure = true
	c.enters++
	return nil
}

func (c *fakeCall) LeaveSecure(outputs map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(outputs))
	for k := range outputs {
		keys = append(keys, k+"="+outputs[k])
	}
	sort.Strings(keys)
	c.rec("leave_secure %s", strings.Join(keys, " "))
	c.secure = false
	c.leaves++
	c.outputs = outputs
}

func (c *fakeCall) AgentReserved() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agent
}

func (c *fakeCall) ReturnToAgent(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("return_to_agent")
	return c.returnErr
}

func (c *fakeCall) Transfer(ctx context.Context, target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("transfer %s", target)
	return c.transferErr
}

func (c *fakeCall) Hangup(ctx context.Context, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec("hangup %s", reason)
	return nil
}

func (c *fakeCall) Trace(ev TraceEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Secure != c.secure && ev.Action != "enter" && ev.Action != "leave" {
		c.rec("TRACE SECURE FLAG MISMATCH %s/%s", ev.Flow, ev.Step)
	}
	c.traces = append(c.traces, ev)
}

// has reports whether op was recorded (exact match).
func (c *fakeCall) has(op string) bool {
	for _, o := range c.ops {
		if o == op {
			return true
		}
	}
	return false
}

// count counts recorded ops equal to op.
func (c *fakeCall) count(op string) int {
	n := 0
	for _, o := range c.ops {
		if o == op {
			n++
		}
	}
	return n
}

// branches lists "step:branch" for every trace event that took a branch.
func (c *fakeCall) branches() []string {
	var out []string
	for _, ev := range c.traces {
		if ev.Branch != "" {
			out = append(out, ev.Step+":"+ev.Branch)
		}
	}
	return out
}

func (c *fakeCall) tookBranch(step, branch string) bool {
	for _, b := range c.branches() {
		if b == step+":"+branch {
			return true
		}
	}
	return false
}

func mustParse(t *testing.T, file, src string) *Flow {
	t.Helper()
	f, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return f
}

func mustSet(t *testing.T, srcs ...string) *FlowSet {
	t.Helper()
	var flows []*Flow
	for i, s := range srcs {
		flows = append(flows, mustParse(t, fmt.Sprintf("f%d.yaml", i), s))
	}
	fs, err := NewFlowSet(flows...)
	if err != nil {
		t.Fatalf("flow set: %v", err)
	}
	return fs
}
