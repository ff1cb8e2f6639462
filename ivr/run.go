package ivr

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Defaults applied when a flow leaves a field at zero.
const (
	DefaultMenuTimeout       = 5 * time.Second
	DefaultFirstDigitTimeout = 10 * time.Second
	DefaultInterDigitTimeout = 5 * time.Second
	DefaultAttempts          = 3
	DefaultCollectMax        = 32
	DefaultDataTimeout       = 10 * time.Second
	DefaultMaxSteps          = 1000
	// MaxAttempts bounds a menu's or collect's attempts: a caller is not
	// kept in one step for ever (the validator refuses more; flows built
	// in code are clamped).
	MaxAttempts = 10
	// MaxWait bounds every timeout a flow sets (menu, collect, data_action).
	MaxWait = 10 * time.Minute
	// MaxCollectDigits bounds any collect's max (ISO/IEC 7812 card numbers
	// are at most 19 digits; this leaves room for account numbers).
	MaxCollectDigits = 64
)

// Runner interprets flows from one FlowSet. Its fields are read-only once
// Run is called; one Runner serves any number of concurrent calls.
type Runner struct {
	// Flows is the validated flow set.
	Flows *FlowSet
	// Client sends data_action requests. Nil means a client with a 30 s
	// overall timeout; each request is also bounded by its step's timeout.
	Client *http.Client
	// Endpoints resolves data_action endpoint names to URLs (for example
	// "payment_gateway" → "https://pay.example/charge").
	Endpoints map[string]string
	// Now is the clock (expiry checks, trace times); nil means time.Now.
	Now func() time.Time
	// MaxSteps bounds the steps one run may execute (default 1000).
	MaxSteps int
	// Screener, when set, screens the payments of payment_gateway steps
	// marked fraud: true (nil: they are sent unscreened).
	Screener Screener
	// CardTokenKey is the key of the card token a screening sees
	// (dtmf.Secret.CardFacts); empty: no token.
	CardTokenKey []byte

	// beforeWipe, in tests, sees each flow's scope just before it is wiped.
	beforeWipe func(*scope)
}

// NewRunner returns a Runner for fs with default settings.
func NewRunner(fs *FlowSet) *Runner { return &Runner{Flows: fs} }

// Run runs the named flow of the set on call with a default Runner; see
// Runner.Run.
func (fs *FlowSet) Run(ctx context.Context, call Call, flow string) (Result, error) {
	return NewRunner(fs).Run(ctx, call, flow)
}

// run is the state of one Run.
type run struct {
	r      *Runner
	call   Call
	client *http.Client
	now    func() time.Time
	max    int
	res    Result
	// swallow is the terminator of a collect that ended at its max digits:
	// a caller who keys it anyway is answering that collect, so the next
	// collect drops it if it is the first key read (see CollectAction).
	// A flush or a menu clears it.
	swallow byte
	// flow and at are the flow and step running now: where the call was
	// when it ended under the run (see closingOnly).
	flow *Flow
	at   *Step
}

// flush drops the caller's queued keys (type-ahead).
func (st *run) flush() {
	st.call.FlushDigits()
	st.swallow = 0
}

// Run interprets the named flow on call until a step ends it (disconnect,
// transfer, return_to_agent, or a secure hand-over whose flow ends), ctx is
// done (the call ended under it: EndCompleted when only closing steps
// were left, EndAbandoned otherwise), or a call operation fails (EndError). Running a secure-kind flow directly (an
// agent referring the caller) wraps it in EnterSecure/LeaveSecure just as a
// secure step does. The Result and error never contain secret values.
func (r *Runner) Run(ctx context.Context, call Call, flow string) (Result, error) {
	if r.Flows == nil {
		return Result{Ending: EndError}, fmt.Errorf("run %q: %w (runner has no flows)", flow, ErrUnknownFlow)
	}
	f, ok := r.Flows.Flow(flow)
	if !ok {
		return Result{Ending: EndError}, fmt.Errorf("run %q: %w", flow, ErrUnknownFlow)
	}
	st := &run{r: r, call: call, client: r.Client, now: r.Now, max: r.MaxSteps}
	if st.client == nil {
		st.client = &http.Client{Timeout: 30 * time.Second}
	}
	if st.now == nil {
		st.now = time.Now
	}
	if st.max <= 0 {
		st.max = DefaultMaxSteps
	}
	err := st.runFlow(ctx, f)
	switch {
	case err != nil && ctx.Err() != nil:
		// The call ended under the flow: a caller hanging up is how calls
		// end, not a failure. The error still says where it stopped.
		st.res.Ending, st.res.Target = EndAbandoned, "call ended"
		if st.flow != nil && st.at != nil && closingOnly(st.flow, st.at) {
			st.res.Ending = EndCompleted
		}
	case err != nil:
		st.res.Ending = EndError
	}
	return st.res, err
}

// closingActions are the actions that neither ask the caller anything nor
// wait on anyone: a flow whose remaining steps are all of these has done
// its work (see EndCompleted).
var closingActions = map[string]bool{
	"play": true, "say_digits": true, "set": true, "set_data": true, "disconnect": true,
}

// closingOnly reports whether every step reachable from s in f, s
// included, is a closing action.
func closingOnly(f *Flow, s *Step) bool {
	seen := map[string]bool{}
	todo := []*Step{s}
	for len(todo) > 0 {
		cur := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[cur.Name] {
			continue
		}
		seen[cur.Name] = true
		if !closingActions[cur.ActionName()] {
			return false
		}
		for _, e := range cur.edges() {
			if next := f.step(e.to); next != nil {
				todo = append(todo, next)
			}
		}
	}
	return true
}

// scope holds one flow's variables. Secrets live apart from plain values
// and are wiped when the scope ends or the variable is overwritten.
type scope struct {
	plain   map[string]string
	secrets map[string]*secret
}

func newScope() *scope {
	return &scope{plain: map[string]string{}, secrets: map[string]*secret{}}
}

func (sc *scope) setPlain(k, v string) {
	if s, ok := sc.secrets[k]; ok {
		s.wipe()
		delete(sc.secrets, k)
	}
	sc.plain[k] = v
}

func (sc *scope) setSecret(k string, s *secret) {
	if old, ok := sc.secrets[k]; ok && old != s {
		old.wipe()
	}
	delete(sc.plain, k)
	sc.secrets[k] = s
}

func (st *run) wipeScope(sc *scope) {
	if st.r.beforeWipe != nil {
		st.r.beforeWipe(sc)
	}
	sc.wipe()
}

func (sc *scope) wipe() {
	for k, s := range sc.secrets {
		s.wipe()
		delete(sc.secrets, k)
	}
	for k := range sc.plain {
		delete(sc.plain, k)
	}
}

// outputs copies the named plain variables; secrets are never copied.
func (sc *scope) outputs(names []string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		if v, ok := sc.plain[n]; ok {
			out[n] = v
		}
	}
	return out
}

func (st *run) trace(f *Flow, step, action, branch, detail string) {
	st.call.Trace(TraceEvent{
		Time: st.now(), CallID: st.call.ID(), Flow: f.Name, Step: step,
		Action: action, Branch: branch, Detail: detail, Secure: f.Kind.Secure(),
	})
}

// outcome of one step: the next step, or the end of the flow.
type outcome struct {
	next string
	end  bool
	// handover names the secure flow to run after this flow's scope ends.
	handover *Flow
}

func (st *run) runFlow(ctx context.Context, f *Flow) (err error) {
	sc := newScope()
	st.res.Flow = f.Name
	handedOver := false
	if f.Kind.Secure() {
		if err := st.call.EnterSecure(f.Name, f.Kind); err != nil {
			st.wipeScope(sc)
			return fmt.Errorf("flow %q: enter secure: %w", f.Name, err)
		}
		st.res.SecureFlows = append(st.res.SecureFlows, f.Name)
		// Keys queued before the gate closed went through the non-secure
		// sinks; a secure flow's first collect must not take them.
		st.flush()
		defer func() {
			out := sc.outputs(f.Outputs)
			st.call.LeaveSecure(out)
			st.res.Outputs = out
			st.wipeScope(sc)
			st.trace(f, "", "leave", "", "secure flow ended; secrets wiped")
		}()
	} else {
		defer func() {
			if !handedOver { // after a hand-over the secure flow's outputs stand
				st.res.Outputs = sc.outputs(f.Outputs)
			}
			st.wipeScope(sc)
		}()
	}
	st.trace(f, "", "enter", "", "kind "+string(f.Kind))

	s := &f.Steps[0]
	for {
		if st.res.Steps >= st.max {
			return fmt.Errorf("flow %q step %q: %w (%d)", f.Name, s.Name, ErrStepLimit, st.max)
		}
		st.res.Steps++
		st.flow, st.at = f, s
		o, err := st.step(ctx, f, sc, s)
		if err != nil {
			return fmt.Errorf("flow %q step %q: %s: %w", f.Name, s.Name, s.ActionName(), err)
		}
		if o.handover != nil {
			// The current flow ends here: wipe it before the secure flow
			// owns the call. The deferred wipe then finds nothing.
			st.wipeScope(sc)
			handedOver = true
			return st.runFlow(ctx, o.handover)
		}
		if o.end {
			return nil
		}
		next := f.step(o.next)
		if next == nil {
			return fmt.Errorf("flow %q step %q: %w: step %q does not exist", f.Name, s.Name, ErrInvalidFlow, o.next)
		}
		s = next
	}
}

// exec is what an action's run sees: the run, the flow, its variables
// and the step.
type exec struct {
	st *run
	f  *Flow
	sc *scope
	s  *Step
}

// trace records one event of the step, under its action's name.
func (x *exec) trace(branch, detail string) {
	x.st.trace(x.f, x.s.Name, x.s.ActionName(), branch, detail)
}

// next is the outcome of a linear action: continue at the step's Next.
func (x *exec) next() outcome { return outcome{next: x.s.Next} }

// step executes one step.
func (st *run) step(ctx context.Context, f *Flow, sc *scope, s *Step) (outcome, error) {
	if s.Action == nil {
		return outcome{}, fmt.Errorf("step has no action: %w", ErrInvalidFlow)
	}
	return s.Action.run(ctx, &exec{st: st, f: f, sc: sc, s: s})
}
