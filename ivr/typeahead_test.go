package ivr

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// acctFlow plays an intro without barge-in, then collects 4-8 digits with
// a two-prompt collect; flush is spliced into the collect.
func acctFlow(flush string) string {
	return `name: acct
steps:
  - name: intro
    play: {prompts: [intro]}
    next: get
  - name: get
    collect: {into: acct, prompt: [enter_a, enter_b], min: 4, max: 8` + flush + `, on_valid: keep, on_invalid: bye, on_timeout: bye}
  - name: keep
    set_data: {key: acct, var: acct}
    next: bye
  - name: bye
    disconnect: {}
`
}

func runAcct(t *testing.T, src string, call *fakeCall) {
	t.Helper()
	r := NewRunner(mustSet(t, src))
	r.Now = testNow
	if _, err := r.Run(context.Background(), call, "acct"); err != nil {
		t.Fatal(err)
	}
}

// TestCollectTypeAhead: keys pressed while a prompt plays are kept for the
// next collect, unless it says flush: true; a collect's own prompt stops at
// the first key, queued or live.
func TestCollectTypeAhead(t *testing.T) {
	t.Run("kept for the next collect", func(t *testing.T) {
		call := newFakeCall() // nothing live: the entry is all type-ahead
		call.during = map[string]string{"intro": "1234#"}
		runAcct(t, acctFlow(""), call)
		if call.data["acct"] != "1234" {
			t.Errorf("acct = %q, want the type-ahead 1234; ops %q", call.data["acct"], call.ops)
		}
		if call.has("flush") {
			t.Errorf("collect flushed type-ahead without flush: true: %q", call.ops)
		}
		if !call.has("barge enter_a") {
			t.Errorf("collect prompt not stopped by queued keys: %q", call.ops)
		}
	})
	t.Run("flush true discards them", func(t *testing.T) {
		call := newFakeCall("5678#")
		call.during = map[string]string{"intro": "1234#"}
		runAcct(t, acctFlow(", flush: true"), call)
		if call.data["acct"] != "5678" {
			t.Errorf("acct = %q, want 5678 (type-ahead flushed); ops %q", call.data["acct"], call.ops)
		}
		if call.has("barge enter_a") {
			t.Errorf("prompt stopped by flushed keys: %q", call.ops)
		}
	})
	t.Run("own prompt stops at first key", func(t *testing.T) {
		call := newFakeCall("34#")
		call.during = map[string]string{"enter_a": "12", "enter_b": "99"}
		runAcct(t, acctFlow(""), call)
		if !call.has("barge enter_a") || call.data["acct"] != "1234" {
			t.Errorf("acct %q ops %q, want barge at enter_a and 1234", call.data["acct"], call.ops)
		}
	})
	t.Run("no key: prompts play to the end", func(t *testing.T) {
		call := newFakeCall("1234#")
		runAcct(t, acctFlow(""), call)
		for _, o := range call.ops {
			if strings.HasPrefix(o, "barge") {
				t.Errorf("barge without a key: %q", call.ops)
			}
		}
		if call.data["acct"] != "1234" {
			t.Errorf("acct = %q", call.data["acct"])
		}
	})
}

// TestTerminatorAfterFullEntryDropped: "1234#" into a 4-digit collect ends
// it at max; the '#' is the caller finishing that entry, not an empty
// answer to the next collect.
func TestTerminatorAfterFullEntryDropped(t *testing.T) {
	fs := mustSet(t, `name: two
steps:
  - name: get_a
    collect: {into: a, prompt: [enter_a], min: 4, max: 4, on_valid: get_b, on_invalid: bye, on_timeout: bye}
  - name: get_b
    collect: {into: b, prompt: [enter_b], min: 1, max: 4, on_valid: keep, on_invalid: bye, on_timeout: bye}
  - name: keep
    set_data: {key: b, var: b}
    next: bye
  - name: bye
    disconnect: {}
`)
	call := newFakeCall("1234#", "56#")
	if _, err := (&Runner{Flows: fs, Now: testNow}).Run(context.Background(), call, "two"); err != nil {
		t.Fatal(err)
	}
	if call.data["b"] != "56" || call.count("play+ enter_b") != 1 {
		t.Errorf("b = %q, enter_b played %d times, want 56 at the first attempt; ops %q",
			call.data["b"], call.count("play+ enter_b"), call.ops)
	}
}

const typeAheadMain = `name: main
steps:
  - name: menu_intro
    play: {prompts: [intro]}
    next: to_pay
  - name: to_pay
    secure: {flow: pay}
`

const typeAheadPay = `name: pay
kind: ivr-only
outputs: [card_last4]
steps:
  - name: card_intro
    play: {prompts: [card_intro]}
    next: get_card
  - name: get_card
    collect: {into: card, prompt: [enter_card], min: 13, max: 19, validate: luhn, on_valid: keep, on_invalid: bye, on_timeout: bye}
  - name: keep
    set: {var: card_last4, last4: card}
    next: bye
  - name: bye
    disconnect: {}
`

// TestSecureTypeAhead: keys queued before a secure flow starts went through
// the non-secure sinks and are flushed at EnterSecure; keys typed ahead
// inside the secure flow feed its collect as a secret, and no trace or
// recorded operation carries them.
func TestSecureTypeAhead(t *testing.T) {
	run := func(t *testing.T, call *fakeCall) Result {
		t.Helper()
		r := NewRunner(mustSet(t, typeAheadMain, typeAheadPay))
		r.Now = testNow
		res, err := r.Run(context.Background(), call, "main")
		if err != nil {
			t.Fatal(err)
		}
		tr, _ := json.Marshal(call.traces)
		assertNoCard(t, "traces", string(tr))
		assertNoCard(t, "ops", strings.Join(call.ops, "\n"))
		return res
	}
	t.Run("keys from before the secure flow are flushed", func(t *testing.T) {
		call := newFakeCall(mastercard + "#")
		call.during = map[string]string{"intro": visa + "#"}
		res := run(t, call)
		if res.Outputs["card_last4"] != "4444" {
			t.Errorf("card_last4 = %q, want 4444 (pre-secure keys dropped); ops %q", res.Outputs["card_last4"], call.ops)
		}
		enter, flush := -1, -1
		for i, o := range call.ops {
			if strings.HasPrefix(o, "enter_secure") {
				enter = i
			}
			if o == "flush" && enter >= 0 && flush < 0 {
				flush = i
			}
		}
		if enter < 0 || flush != enter+1 {
			t.Errorf("no flush right after enter_secure: %q", call.ops)
		}
	})
	t.Run("keys typed ahead inside the secure flow are collected", func(t *testing.T) {
		call := newFakeCall()
		call.during = map[string]string{"card_intro": visa + "#"}
		res := run(t, call)
		if res.Outputs["card_last4"] != "1111" {
			t.Errorf("card_last4 = %q, want 1111; ops %q", res.Outputs["card_last4"], call.ops)
		}
	})
}
