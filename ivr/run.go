package ivr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	// MaxCollectDigits bounds any collect's max (ISO/IEC 7812 card numbers
	// are at most 19 digits; this leaves room for account numbers).
	MaxCollectDigits = 64
)

// ErrNotNumber: set add found a variable that does not hold an integer.
var ErrNotNumber = errors.New("variable is not a number")

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
	// lastWasTerminator: the last readDigits ended on the terminator key.
	lastWasTerminator bool
}

// Run interprets the named flow on call until a step ends it (disconnect,
// transfer, return_to_agent, or a secure hand-over whose flow ends), ctx is
// done, or a call operation fails. Running a secure-kind flow directly (an
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
	if err != nil {
		st.res.Ending = EndError
	}
	return st.res, err
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
		o, err := st.step(ctx, f, sc, s)
		if err != nil {
			return fmt.Errorf("flow %q step %q: %s: %w", f.Name, s.Name, s.Action(), err)
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

// step executes one step.
func (st *run) step(ctx context.Context, f *Flow, sc *scope, s *Step) (outcome, error) {
	call := st.call
	switch {
	case s.Answer != nil:
		if err := call.Answer(ctx); err != nil {
			return outcome{}, err
		}
		st.trace(f, s.Name, "answer", "next", "")
		return outcome{next: s.Next}, nil

	case s.Play != nil:
		if err := call.Play(ctx, s.Play.BargeIn, s.Play.Prompts...); err != nil {
			return outcome{}, err
		}
		st.trace(f, s.Name, "play", "next", strconv.Itoa(len(s.Play.Prompts))+" prompt(s)")
		return outcome{next: s.Next}, nil

	case s.Menu != nil:
		return st.menu(ctx, f, s)

	case s.Collect != nil:
		return st.collect(ctx, f, sc, s)

	case s.SayDigits != nil:
		return st.sayDigits(ctx, f, sc, s)

	case s.Set != nil:
		return st.set(f, sc, s)

	case s.SetData != nil:
		sd := s.SetData
		v := ""
		if sd.Value != nil {
			v = *sd.Value
		} else {
			if _, isSecret := sc.secrets[sd.Var]; isSecret {
				return outcome{}, fmt.Errorf("set_data %q from %q: %w", sd.Key, sd.Var, ErrSecretSink)
			}
			pv, ok := sc.plain[sd.Var]
			if !ok {
				return outcome{}, fmt.Errorf("%q: %w", sd.Var, ErrUnsetVariable)
			}
			v = pv
		}
		call.SetData(sd.Key, v)
		st.trace(f, s.Name, "set_data", "next", "key "+sd.Key)
		return outcome{next: s.Next}, nil

	case s.Branch != nil:
		b := s.Branch
		if _, isSecret := sc.secrets[b.Var]; isSecret {
			return outcome{}, fmt.Errorf("branch on %q: %w", b.Var, ErrSecretSink)
		}
		v, isSet := sc.plain[b.Var]
		for i := range b.Cases {
			if b.Cases[i].match(v, isSet) {
				label := "case " + strconv.Itoa(i+1)
				st.trace(f, s.Name, "branch", label, "")
				return outcome{next: b.Cases[i].Next}, nil
			}
		}
		st.trace(f, s.Name, "branch", "else", "")
		return outcome{next: b.Else}, nil

	case s.DataAction != nil:
		return st.dataAction(ctx, f, sc, s)

	case s.Secure != nil:
		if f.Kind.Secure() {
			return outcome{}, ErrNestedSecure
		}
		target, ok := st.r.Flows.Flow(s.Secure.Flow)
		if !ok || !target.Kind.Secure() {
			return outcome{}, fmt.Errorf("secure flow %q: %w", s.Secure.Flow, ErrUnknownFlow)
		}
		st.trace(f, s.Name, "secure", "handover", "to "+target.Name+" ("+string(target.Kind)+")")
		return outcome{handover: target}, nil

	case s.Transfer != nil:
		t := s.Transfer
		if err := call.Transfer(ctx, t.Target); err != nil {
			if ctx.Err() == nil && t.OnFailure != "" {
				st.trace(f, s.Name, "transfer", "on_failure", "transfer to "+t.Target+" failed")
				return outcome{next: t.OnFailure}, nil
			}
			return outcome{}, fmt.Errorf("%w: to %s: %w", ErrTransfer, t.Target, err)
		}
		st.trace(f, s.Name, "transfer", "", "to "+t.Target)
		st.res.Ending, st.res.Target = EndTransferred, t.Target
		return outcome{end: true}, nil

	case s.Disconnect != nil:
		reason := s.Disconnect.Reason
		if reason == "" {
			reason = "flow " + f.Name + " ended"
		}
		st.trace(f, s.Name, "disconnect", "", reason)
		st.res.Ending, st.res.Target = EndDisconnected, reason
		if err := call.Hangup(ctx, reason); err != nil {
			return outcome{}, err
		}
		return outcome{end: true}, nil

	case s.ReturnToAgent != nil:
		ra := s.ReturnToAgent
		var err error
		if !call.AgentReserved() {
			err = ErrNoAgent
		} else {
			err = call.ReturnToAgent(ctx)
		}
		switch {
		case err == nil:
			st.trace(f, s.Name, "return_to_agent", "", "re-bridged with the reserved agent")
			st.res.Ending = EndReturned
			return outcome{end: true}, nil
		case errors.Is(err, ErrNoAgent) && ra.OnNoAgent != "":
			st.trace(f, s.Name, "return_to_agent", "on_no_agent", "no reserved agent")
			return outcome{next: ra.OnNoAgent}, nil
		default:
			return outcome{}, err
		}
	}
	return outcome{}, fmt.Errorf("step has no action: %w", ErrInvalidFlow)
}

func (bc *BranchCase) match(v string, isSet bool) bool {
	switch {
	case bc.IsSet != nil:
		return *bc.IsSet == isSet
	case !isSet:
		return bc.NotEquals != nil
	case bc.Equals != nil:
		return v == *bc.Equals
	case bc.NotEquals != nil:
		return v != *bc.NotEquals
	case bc.In != nil:
		for _, x := range bc.In {
			if v == x {
				return true
			}
		}
		return false
	case bc.Gte != nil || bc.Lte != nil:
		n, err := strconv.Atoi(v)
		if err != nil {
			return false
		}
		if bc.Gte != nil {
			return n >= *bc.Gte
		}
		return n <= *bc.Lte
	}
	return false
}

func (st *run) set(f *Flow, sc *scope, s *Step) (outcome, error) {
	a := s.Set
	switch {
	case a.Value != nil:
		sc.setPlain(a.Var, *a.Value)
		st.trace(f, s.Name, "set", "next", a.Var+" = literal")
	case a.Copy != "":
		if sec, ok := sc.secrets[a.Copy]; ok {
			sc.setSecret(a.Var, sec.clone())
			st.trace(f, s.Name, "set", "next", a.Var+" = copy of secret "+a.Copy)
			break
		}
		v, ok := sc.plain[a.Copy]
		if !ok {
			return outcome{}, fmt.Errorf("copy %q: %w", a.Copy, ErrUnsetVariable)
		}
		sc.setPlain(a.Var, v)
		st.trace(f, s.Name, "set", "next", a.Var+" = copy of "+a.Copy)
	case a.Last4 != "":
		if sec, ok := sc.secrets[a.Last4]; ok {
			sc.setPlain(a.Var, sec.last4())
		} else {
			v, ok := sc.plain[a.Last4]
			if !ok {
				return outcome{}, fmt.Errorf("last4 of %q: %w", a.Last4, ErrUnsetVariable)
			}
			if len(v) > 4 {
				v = v[len(v)-4:]
			}
			sc.setPlain(a.Var, v)
		}
		st.trace(f, s.Name, "set", "next", a.Var+" = last4 of "+a.Last4)
	case a.Add != nil:
		if _, isSecret := sc.secrets[a.Var]; isSecret {
			return outcome{}, fmt.Errorf("add to %q: %w", a.Var, ErrSecretSink)
		}
		n := 0
		if v, ok := sc.plain[a.Var]; ok {
			var err error
			if n, err = strconv.Atoi(v); err != nil {
				return outcome{}, fmt.Errorf("add to %q: %w", a.Var, ErrNotNumber)
			}
		}
		n += *a.Add
		sc.setPlain(a.Var, strconv.Itoa(n))
		st.trace(f, s.Name, "set", "next", a.Var+" = "+strconv.Itoa(n))
	default:
		return outcome{}, fmt.Errorf("set %q has no value: %w", a.Var, ErrInvalidFlow)
	}
	return outcome{next: s.Next}, nil
}

// digitPrompt names the prompt that speaks one key.
func digitPrompt(d byte) string {
	switch {
	case d >= '0' && d <= '9':
		return "digits/" + string(d)
	case d == '*':
		return "digits/star"
	case d == '#':
		return "digits/hash"
	}
	return ""
}

func (st *run) sayDigits(ctx context.Context, f *Flow, sc *scope, s *Step) (outcome, error) {
	a := s.SayDigits
	var say string
	if sec, ok := sc.secrets[a.Var]; ok {
		if !a.Last4 {
			return outcome{}, fmt.Errorf("say_digits of %q in full: %w", a.Var, ErrSecretSink)
		}
		say = sec.last4()
	} else {
		v, ok := sc.plain[a.Var]
		if !ok {
			return outcome{}, fmt.Errorf("%q: %w", a.Var, ErrUnsetVariable)
		}
		if a.Last4 && len(v) > 4 {
			v = v[len(v)-4:]
		}
		say = v
	}
	prompts := make([]string, 0, len(say))
	for i := 0; i < len(say); i++ {
		if p := digitPrompt(say[i]); p != "" {
			prompts = append(prompts, p)
		}
	}
	if len(prompts) > 0 {
		if err := st.call.Play(ctx, false, prompts...); err != nil {
			return outcome{}, err
		}
	}
	st.trace(f, s.Name, "say_digits", "next", strconv.Itoa(len(prompts))+" digit(s) of "+a.Var)
	return outcome{next: s.Next}, nil
}
