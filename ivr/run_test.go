package ivr

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// testNow is the fixed clock of these tests: expiry 1230 is in the future,
// 0126 in the past.
func testNow() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }

const (
	visa       = "4111111111111111"
	mastercard = "5555555555554444"
	declineMe  = "4000000000000002"
	badLuhn    = "4111111111111112"
)

// demoRunner loads testdata/flows with the demo gateway behind an httptest
// server.
func demoRunner(t *testing.T) (*Runner, *httptest.Server) {
	t.Helper()
	fs, err := LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatalf("load demo flows: %v", err)
	}
	srv := httptest.NewServer(DemoGateway(testNow))
	t.Cleanup(srv.Close)
	return &Runner{
		Flows:     fs,
		Client:    srv.Client(),
		Endpoints: map[string]string{"payment_gateway": srv.URL},
		Now:       testNow,
	}, srv
}

// TestApprovedThenCallerHangsUp: a caller who hangs up while "approved"
// plays has completed the payment; the run did not fail.
func TestApprovedThenCallerHangsUp(t *testing.T) {
	r, _ := demoRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := newFakeCall("1", visa+"#", "1230", "987#")
	call.cancel, call.hangupOn = cancel, "approved"
	res, err := r.Run(ctx, call, "main")
	if res.Ending != EndCompleted {
		t.Errorf("ending = %q (err %v), want %q\nops: %q", res.Ending, err, EndCompleted, call.ops)
	}
	if res.Outputs["payment_result"] != "approved" || call.outputs["payment_result"] != "approved" {
		t.Errorf("outputs %v / LeaveSecure %v, want payment_result approved", res.Outputs, call.outputs)
	}
	if call.leaves != 1 || call.has("hangup payment flow finished") {
		t.Errorf("leaves %d, ops %q", call.leaves, call.ops)
	}
}

// TestCallerHangsUpMidCardIsAbandoned: a caller who hangs up while the
// flow still asks for the expiry has not completed anything: abandoned,
// not completed and not error.
func TestCallerHangsUpMidCardIsAbandoned(t *testing.T) {
	r, _ := demoRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := newFakeCall("1", visa+"#")
	call.cancel, call.hangupOn = cancel, "enter_expiry"
	res, err := r.Run(ctx, call, "main")
	if res.Ending != EndAbandoned {
		t.Errorf("ending = %q (err %v), want %q\nops: %q", res.Ending, err, EndAbandoned, call.ops)
	}
	if res.Outputs["payment_result"] != "" {
		t.Errorf("outputs %v: no payment result expected", res.Outputs)
	}
}

func TestMainMenuPaymentApproved(t *testing.T) {
	r, _ := demoRunner(t)
	call := newFakeCall("1", visa+"#", "1230", "987#")
	res, err := r.Run(context.Background(), call, "main")
	if err != nil {
		t.Fatalf("run: %v\nops: %q", err, call.ops)
	}
	if res.Flow != "pay" || res.Ending != EndDisconnected {
		t.Errorf("result flow/ending = %s/%s, want pay/disconnected", res.Flow, res.Ending)
	}
	want := map[string]string{"payment_result": "approved", "card_last4": "1111", "payment_reference": "DEMO-000001"}
	for k, v := range want {
		if res.Outputs[k] != v || call.outputs[k] != v {
			t.Errorf("output %s = %q (result) / %q (LeaveSecure), want %q", k, res.Outputs[k], call.outputs[k], v)
		}
	}
	if len(res.Outputs) != len(want) {
		t.Errorf("outputs = %v, want exactly %v", res.Outputs, want)
	}
	if call.enters != 1 || call.leaves != 1 {
		t.Errorf("EnterSecure/LeaveSecure = %d/%d, want 1/1", call.enters, call.leaves)
	}
	if !call.has("enter_secure pay ivr-only") || call.data["route"] != "payment" {
		t.Errorf("ops %q, data %v", call.ops, call.data)
	}
	// Masked read-back: card_ending then the last four digits only.
	if !call.has("play card_ending") || !call.has("play digits/1 digits/1 digits/1 digits/1") {
		t.Errorf("no masked read-back in %q", call.ops)
	}
	if !call.has("play approved goodbye") || !call.has("hangup payment flow finished") {
		t.Errorf("no approved path in %q", call.ops)
	}
	if len(res.SecureFlows) != 1 || res.SecureFlows[0] != "pay" {
		t.Errorf("secure flows = %v", res.SecureFlows)
	}
	// The hang-up happens while still secure: leave_secure comes after it.
	last := call.ops[len(call.ops)-1]
	if !strings.HasPrefix(last, "leave_secure ") {
		t.Errorf("last op = %q, want leave_secure after the ending action", last)
	}
}

func TestMainMenuSalesTransfer(t *testing.T) {
	r, _ := demoRunner(t)
	call := newFakeCall("2")
	res, err := r.Run(context.Background(), call, "main")
	if err != nil {
		t.Fatal(err)
	}
	if res.Ending != EndTransferred || res.Target != "queue:sales" || !call.has("transfer queue:sales") {
		t.Errorf("result %+v ops %q", res, call.ops)
	}
	if res.Outputs["route"] != "sales" || call.data["route"] != "sales" {
		t.Errorf("route output %v data %v", res.Outputs, call.data)
	}
	if call.enters != 0 {
		t.Errorf("sales route entered secure mode")
	}
}

func TestMainMenuTimeoutsAndInvalid(t *testing.T) {
	r, _ := demoRunner(t)
	t.Run("timeouts", func(t *testing.T) {
		call := newFakeCall("TTT")
		res, err := r.Run(context.Background(), call, "main")
		if err != nil {
			t.Fatal(err)
		}
		if got := call.count("play+ menu"); got != 3 {
			t.Errorf("menu offered %d times, want 3", got)
		}
		if got := call.count("play try_again"); got != 2 {
			t.Errorf("timeout prompt %d times, want 2 (not after the last attempt)", got)
		}
		if !call.tookBranch("menu", "on_timeout") || res.Ending != EndDisconnected {
			t.Errorf("branches %v result %+v", call.branches(), res)
		}
	})
	t.Run("invalid then valid", func(t *testing.T) {
		call := newFakeCall("9", "2")
		if _, err := r.Run(context.Background(), call, "main"); err != nil {
			t.Fatal(err)
		}
		if call.count("play invalid") != 1 || !call.tookBranch("menu", "choice 2") {
			t.Errorf("ops %q branches %v", call.ops, call.branches())
		}
	})
	t.Run("invalid exhausted", func(t *testing.T) {
		call := newFakeCall("T", "7", "8")
		if _, err := r.Run(context.Background(), call, "main"); err != nil {
			t.Fatal(err)
		}
		// The last attempt decides the branch: a wrong key, so on_invalid.
		if !call.tookBranch("menu", "on_invalid") || !call.has("hangup caller made no choice") {
			t.Errorf("ops %q branches %v", call.ops, call.branches())
		}
	})
}

func TestPayCollectRetries(t *testing.T) {
	r, _ := demoRunner(t)
	t.Run("bad luhn then good card", func(t *testing.T) {
		call := newFakeCall(badLuhn+"#", mastercard+"#", "1230", "987#")
		res, err := r.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if call.count("play invalid try_again") != 1 || res.Outputs["payment_result"] != "approved" || res.Outputs["card_last4"] != "4444" {
			t.Errorf("ops %q outputs %v", call.ops, res.Outputs)
		}
	})
	t.Run("too short, terminator only, then timeout", func(t *testing.T) {
		call := newFakeCall("4111#", "#", "T")
		res, err := r.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("get_card", "on_timeout") || !call.has("transfer queue:payments") || res.Ending != EndTransferred {
			t.Errorf("ops %q branches %v", call.ops, call.branches())
		}
		if _, ok := res.Outputs["card_last4"]; ok {
			t.Errorf("card_last4 output without a valid card: %v", res.Outputs)
		}
	})
	t.Run("invalid exhausted", func(t *testing.T) {
		call := newFakeCall(badLuhn+"#", "T", "123#")
		if _, err := r.Run(context.Background(), call, "pay"); err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("get_card", "on_invalid") {
			t.Errorf("branches %v", call.branches())
		}
	})
	t.Run("digits then inter-digit timeout below min are invalid, not a timeout", func(t *testing.T) {
		call := newFakeCall("4111T", badLuhn+"#", "4111T")
		if _, err := r.Run(context.Background(), call, "pay"); err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("get_card", "on_invalid") {
			t.Errorf("branches %v", call.branches())
		}
	})
	t.Run("expired then month 13 then valid", func(t *testing.T) {
		call := newFakeCall(visa+"#", "0126", "1330", "1126", "987#")
		res, err := r.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if call.count("play+ enter_expiry") != 3 || res.Outputs["payment_result"] != "approved" {
			t.Errorf("ops %q outputs %v", call.ops, res.Outputs)
		}
	})
	t.Run("max digits ends input without terminator", func(t *testing.T) {
		// 19 digits (max) end the card entry; no '#' needed.
		call := newFakeCall("4000000000000000006", "1230", "987#")
		_, err := r.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("get_card", "on_valid") {
			t.Errorf("branches %v", call.branches())
		}
	})
}

func TestPayDeclinedLoopsThenTransfers(t *testing.T) {
	r, _ := demoRunner(t)
	var script []string
	for i := 0; i < 3; i++ {
		script = append(script, declineMe+"#", "1230", "987#")
	}
	call := newFakeCall(script...)
	res, err := r.Run(context.Background(), call, "pay")
	if err != nil {
		t.Fatal(err)
	}
	if got := call.count("play declined"); got != 3 {
		t.Errorf("declined %d times, want 3", got)
	}
	if !call.tookBranch("again", "case 1") || res.Target != "queue:payments" || res.Outputs["payment_result"] != "declined" {
		t.Errorf("branches %v result %+v", call.branches(), res)
	}
}

func TestPayGatewayFailure(t *testing.T) {
	r, _ := demoRunner(t)
	t.Run("http 500", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}))
		defer srv.Close()
		r2 := *r
		r2.Endpoints = map[string]string{"payment_gateway": srv.URL}
		call := newFakeCall(visa+"#", "1230", "987#")
		res, err := r2.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("charge", "on_failure") || res.Outputs["payment_result"] != "failed" || !call.has("play failed") {
			t.Errorf("branches %v outputs %v", call.branches(), res.Outputs)
		}
	})
	t.Run("endpoint not configured", func(t *testing.T) {
		r2 := *r
		r2.Endpoints = nil
		call := newFakeCall(visa+"#", "1230", "987#")
		res, err := r2.Run(context.Background(), call, "pay")
		if err != nil {
			t.Fatal(err)
		}
		if !call.tookBranch("charge", "on_failure") || res.Outputs["payment_result"] != "failed" {
			t.Errorf("branches %v outputs %v", call.branches(), res.Outputs)
		}
	})
}

const gatewayFlow = `
name: gw
kind: ivr-only
outputs: [result, code, ok]
steps:
  - name: card
    collect: {into: card, min: 13, max: 19, validate: luhn, on_valid: charge, on_invalid: failed, on_timeout: failed}
  - name: charge
    data_action:
      url: URL
      payment_gateway: true
      send: {pan: card, note: label}
      constants: {merchant: "demo \"shop\""}
      receive: {result: result, code: code, ok: ok, missing: nothing}
      timeout: 200ms
      on_success: done
      on_failure: failed
      on_timeout: timed_out
  - name: done
    disconnect: {reason: done}
  - name: failed
    disconnect: {reason: failed}
  - name: timed_out
    disconnect: {reason: timeout}
`

func gatewaySet(t *testing.T, url string) *FlowSet {
	src := strings.Replace(gatewayFlow, "URL", url, 1)
	// label is a plain variable set before the card is collected.
	src = strings.Replace(src, "steps:\n", "steps:\n  - name: label\n    set: {var: label, value: \"line1\\nline2\"}\n    next: card\n", 1)
	return mustSet(t, src)
}

func TestDataActionRequestAndResponse(t *testing.T) {
	var gotBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody.Store(string(b) + "|" + r.Method + "|" + r.Header.Get("Content-Type"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"approved","code":42,"ok":true,"extra":{"a":1}}`)
	}))
	defer srv.Close()
	call := newFakeCall(visa + "#")
	res, err := gatewaySet(t, srv.URL).Run(context.Background(), call, "gw")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"merchant":"demo \"shop\"","note":"line1\u000aline2","pan":"` + visa + `"}|POST|application/json`
	if got := gotBody.Load(); got != want {
		t.Errorf("request = %v\nwant      %v", got, want)
	}
	if res.Target != "done" || res.Outputs["result"] != "approved" || res.Outputs["code"] != "42" || res.Outputs["ok"] != "true" {
		t.Errorf("result %+v", res)
	}
}

func TestDataActionTimeoutAndBadBody(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		call := newFakeCall(visa + "#")
		start := time.Now()
		res, err := gatewaySet(t, srv.URL).Run(context.Background(), call, "gw")
		if err != nil {
			t.Fatal(err)
		}
		if res.Target != "timeout" || !call.tookBranch("charge", "on_timeout") {
			t.Errorf("result %+v branches %v", res, call.branches())
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("timeout took %v, want about 200ms", d)
		}
	})
	t.Run("not json", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<html>")
		}))
		defer srv.Close()
		call := newFakeCall(visa + "#")
		res, err := gatewaySet(t, srv.URL).Run(context.Background(), call, "gw")
		if err != nil || res.Target != "failed" {
			t.Errorf("result %+v err %v", res, err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		call := newFakeCall(visa + "#")
		res, err := gatewaySet(t, url).Run(context.Background(), call, "gw")
		if err != nil || res.Target != "failed" {
			t.Errorf("result %+v err %v", res, err)
		}
	})
}

func TestSecurePayAgentReferred(t *testing.T) {
	r, _ := demoRunner(t)
	t.Run("returns to agent", func(t *testing.T) {
		call := newFakeCall(visa+"#", "1230", "987#")
		call.agent = true
		res, err := r.Run(context.Background(), call, "secure-pay")
		if err != nil {
			t.Fatal(err)
		}
		if res.Ending != EndReturned || !call.has("return_to_agent") || call.outputs["payment_result"] != "approved" {
			t.Errorf("result %+v ops %q", res, call.ops)
		}
		if call.has("answer") {
			t.Errorf("agent-referred flow answered an answered call")
		}
	})
	t.Run("no agent reserved", func(t *testing.T) {
		call := newFakeCall(visa+"#", "1230", "987#")
		res, err := r.Run(context.Background(), call, "secure-pay")
		if err != nil {
			t.Fatal(err)
		}
		if res.Ending != EndTransferred || call.has("return_to_agent") || !call.tookBranch("back_to_agent", "on_no_agent") {
			t.Errorf("result %+v ops %q", res, call.ops)
		}
	})
	t.Run("agent gone meanwhile", func(t *testing.T) {
		call := newFakeCall("T", "T", "T")
		call.agent = true
		call.returnErr = ErrNoAgent
		res, err := r.Run(context.Background(), call, "secure-pay")
		if err != nil {
			t.Fatal(err)
		}
		if !call.has("return_to_agent") || res.Target != "queue:payments" || res.Outputs["payment_result"] != "not_taken" {
			t.Errorf("result %+v ops %q", res, call.ops)
		}
	})
	t.Run("agent gone and transfer fails", func(t *testing.T) {
		call := newFakeCall("T", "T", "T")
		call.transferErr = errors.New("queue closed")
		res, err := r.Run(context.Background(), call, "secure-pay")
		if err != nil {
			t.Fatal(err)
		}
		if res.Ending != EndDisconnected || !call.has("hangup agent gone and transfer failed") {
			t.Errorf("result %+v ops %q", res, call.ops)
		}
	})
	t.Run("return fails otherwise", func(t *testing.T) {
		call := newFakeCall("T", "T", "T")
		call.agent = true
		call.returnErr = errors.New("bridge failed")
		res, err := r.Run(context.Background(), call, "secure-pay")
		if err == nil || res.Ending != EndError || call.leaves != 1 {
			t.Errorf("result %+v err %v leaves %d", res, err, call.leaves)
		}
	})
}

func TestTransferFailureWithoutBranch(t *testing.T) {
	fs := mustSet(t, `
name: t
steps:
  - name: go
    transfer: {target: "sip:1000@127.0.0.1"}
`)
	call := newFakeCall()
	call.transferErr = errors.New("480 temporarily unavailable")
	res, err := fs.Run(context.Background(), call, "t")
	if !errors.Is(err, ErrTransfer) || res.Ending != EndError {
		t.Errorf("err %v result %+v", err, res)
	}
}

func TestRunErrors(t *testing.T) {
	r, _ := demoRunner(t)
	t.Run("unknown flow", func(t *testing.T) {
		_, err := r.Run(context.Background(), newFakeCall(), "nope")
		if !errors.Is(err, ErrUnknownFlow) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("enter secure refused", func(t *testing.T) {
		call := newFakeCall(visa + "#")
		call.enterErr = errors.New("gate busy")
		_, err := r.Run(context.Background(), call, "pay")
		if err == nil || call.has("play+ enter_card") || call.leaves != 0 {
			t.Errorf("err %v ops %q", err, call.ops)
		}
	})
	t.Run("caller gone mid collect", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		call := newFakeCall("411111")
		call.cancelAfter, call.cancel = 6, cancel
		res, err := r.Run(ctx, call, "pay")
		if !errors.Is(err, context.Canceled) || res.Ending != EndAbandoned || call.leaves != 1 {
			t.Errorf("err %v result %+v leaves %d", err, res, call.leaves)
		}
	})
	t.Run("step limit", func(t *testing.T) {
		fs := mustSet(t, `
name: spin
steps:
  - name: inc
    set: {var: n, add: 1}
    next: check
  - name: check
    branch:
      var: n
      cases: [{gte: 1000000, next: bye}]
      else: inc
  - name: bye
    disconnect: {}
`)
		r := &Runner{Flows: fs, MaxSteps: 50}
		res, err := r.Run(context.Background(), newFakeCall(), "spin")
		if !errors.Is(err, ErrStepLimit) || res.Steps != 50 {
			t.Errorf("err %v steps %d", err, res.Steps)
		}
	})
}

func TestBranchOperators(t *testing.T) {
	fs := mustSet(t, `
name: b
steps:
  - name: start
    collect: {into: x, min: 1, max: 4, on_valid: check, on_invalid: none, on_timeout: unset}
  - name: check
    branch:
      var: x
      cases:
        - {equals: "1", next: one}
        - {in: ["2", "3"], next: two_three}
        - {lte: 9, next: small}
        - {not_equals: "1000", next: other}
        - {gte: 1000, next: big}
      else: none
  - name: unset
    branch:
      var: x
      cases: [{is_set: false, next: none}]
      else: one
  - name: one
    disconnect: {reason: one}
  - name: two_three
    disconnect: {reason: two_three}
  - name: small
    disconnect: {reason: small}
  - name: other
    disconnect: {reason: other}
  - name: big
    disconnect: {reason: big}
  - name: none
    disconnect: {reason: none}
`)
	for keys, want := range map[string]string{
		"1#": "one", "3#": "two_three", "7#": "small", "42#": "other", "1000": "big", "TTT": "none",
	} {
		res, err := fs.Run(context.Background(), newFakeCall(keys), "b")
		if err != nil || res.Target != want {
			t.Errorf("keys %s: target %q err %v, want %q", keys, res.Target, err, want)
		}
	}
}

func TestMenuTypeAheadAndFlush(t *testing.T) {
	r, _ := demoRunner(t)
	call := newFakeCall("9", "2")
	if _, err := r.Run(context.Background(), call, "main"); err != nil {
		t.Fatal(err)
	}
	// No flush before the first attempt (type-ahead from the barge-in
	// welcome), one before the retry.
	var seq []string
	for _, o := range call.ops {
		if o == "flush" || strings.HasPrefix(o, "play") {
			seq = append(seq, o)
		}
	}
	want := "play+ welcome|play+ menu|play invalid|flush|play+ menu|play transferring"
	if got := strings.Join(seq, "|"); got != want {
		t.Errorf("sequence %s\nwant     %s", got, want)
	}
}

// fakeScreener holds every payment whose caller is listed, and records
// what it saw and the holds it was asked to make.
type fakeScreener struct {
	hold    bool
	fail    error
	seen    []fraud.Attributes
	holds   []Hold
	holdErr error
}

func (f *fakeScreener) Screen(_ context.Context, a fraud.Attributes) (fraud.Decision, error) {
	f.seen = append(f.seen, a)
	if err := a.Check(); err != nil { // as fraud.Screener does first
		return fraud.Decision{}, err
	}
	if f.fail != nil {
		return fraud.Decision{}, f.fail
	}
	if !f.hold {
		return fraud.Decision{Minimum: 100}, nil
	}
	return fraud.Decision{Score: 150, Minimum: 100, Hold: true,
		Matches: []fraud.Match{{Kind: "static", Type: fraud.TypePhone, Value: a.Caller, Score: 150}}}, nil
}

func (f *fakeScreener) Hold(_ context.Context, h Hold) error {
	f.holds = append(f.holds, h)
	return f.holdErr
}

// fraudFakeCall is a fakeCall that tells a screening its facts.
type fraudFakeCall struct{ *fakeCall }

func (c fraudFakeCall) FraudFacts() FraudFacts {
	return FraudFacts{Caller: "+447700900666", Route: "main", Data: map[string]string{"customer_id": "C-1"}}
}

func TestPayFraudHeld(t *testing.T) {
	r, srv := demoRunner(t)
	gw := NewDemoGW(testNow)
	srv.Config.Handler = gw
	sc := &fakeScreener{hold: true}
	r.Screener, r.CardTokenKey = sc, []byte("0123456789abcdef")
	call := fraudFakeCall{newFakeCall("1", visa+"#", "1230", "987#")}
	res, err := r.Run(context.Background(), call, "main")
	if err != nil {
		t.Fatalf("run: %v\nops: %q", err, call.ops)
	}
	if res.Outputs["payment_result"] != "held" || !call.has("play reviewing") || call.has("play failed") || !call.has("play goodbye") {
		t.Fatalf("outputs %v ops %q", res.Outputs, call.ops)
	}
	if len(sc.seen) != 1 || len(sc.holds) != 1 {
		t.Fatalf("screened %d, held %d", len(sc.seen), len(sc.holds))
	}
	a := sc.seen[0]
	if a.Caller != "+447700900666" || a.Data["customer_id"] != "C-1" || a.Payment == nil || a.Payment.BIN != "41111111" ||
		a.Payment.Last4 != "1111" || len(a.Payment.CardToken) != 64 || a.Payment.Amount != 10 || a.Payment.Currency != "GBP" {
		t.Fatalf("attributes %+v payment %+v", a, a.Payment)
	}
	if err := a.Check(); err != nil { // what the real screener refuses first
		t.Fatalf("attributes refused: %v", err)
	}
	h := sc.holds[0]
	if h.Reference != res.Outputs["payment_reference"] || h.Reference == "" || h.Interaction != call.ID() || h.Decision.Score != 150 {
		t.Fatalf("hold %+v outputs %v", h, res.Outputs)
	}
	if st, _ := gw.Status(h.Reference); st != StatusAuthorised {
		t.Fatalf("gateway status %q, want authorised (not captured)", st)
	}
	for _, ev := range call.traces {
		if strings.Contains(ev.Detail, "4111") {
			t.Fatalf("trace leaks the card: %+v", ev)
		}
	}
}

func TestPayFraudNotHeldCaptures(t *testing.T) {
	r, srv := demoRunner(t)
	gw := NewDemoGW(testNow)
	srv.Config.Handler = gw
	sc := &fakeScreener{}
	r.Screener = sc
	call := fraudFakeCall{newFakeCall("1", visa+"#", "1230", "987#")}
	res, err := r.Run(context.Background(), call, "main")
	if err != nil || res.Outputs["payment_result"] != "approved" || len(sc.seen) != 1 || len(sc.holds) != 0 {
		t.Fatalf("err %v outputs %v screened %d holds %d", err, res.Outputs, len(sc.seen), len(sc.holds))
	}
	if st, _ := gw.Status(res.Outputs["payment_reference"]); st != StatusCaptured {
		t.Fatalf("status %q", st)
	}
	if sc.seen[0].Payment.CardToken != "" {
		t.Fatal("a token without a key")
	}
}

func TestPayFraudScreenOrHoldFails(t *testing.T) {
	for name, sc := range map[string]*fakeScreener{
		"screen fails": {fail: fraud.ErrSecret},
		"hold fails":   {hold: true, holdErr: errors.New("database down")},
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := demoRunner(t)
			r.Screener = sc
			call := fraudFakeCall{newFakeCall("1", visa+"#", "1230", "987#")}
			res, _ := r.Run(context.Background(), call, "main")
			if res.Outputs["payment_result"] != "failed" || !call.has("play failed") {
				t.Fatalf("outputs %v ops %q", res.Outputs, call.ops)
			}
		})
	}
}

// recordingScreener is a fakeScreener that is also a PaymentRecorder.
type recordingScreener struct {
	fakeScreener
	recorded []bool // declined, per payment
	calls    []string
}

func (r *recordingScreener) RecordPayment(_ context.Context, a fraud.Attributes, interaction string, declined bool) {
	if a.Payment == nil || a.Caller == "" {
		panic("recorded without the screened attributes")
	}
	r.recorded = append(r.recorded, declined)
	r.calls = append(r.calls, interaction)
}

// TestPayFraudRecordsPaymentResult: a screener that records payments (the
// archive's velocity) is told each screened payment's gateway result.
func TestPayFraudRecordsPaymentResult(t *testing.T) {
	for card, declined := range map[string]bool{visa: false, demoDeclineCard: true} {
		r, srv := demoRunner(t)
		srv.Config.Handler = NewDemoGW(testNow)
		sc := &recordingScreener{}
		r.Screener = sc
		call := fraudFakeCall{newFakeCall("1", card+"#", "1230", "987#")}
		if _, err := r.Run(context.Background(), call, "main"); err != nil {
			t.Fatal(err)
		}
		if len(sc.recorded) != 1 || sc.recorded[0] != declined || sc.calls[0] != call.ID() {
			t.Errorf("declined %v: recorded %v for %v", declined, sc.recorded, sc.calls)
		}
	}
}
