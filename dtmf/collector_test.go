package dtmf

import (
	"errors"
	"testing"
	"time"
)

func keys(t *testing.T, c *Collector, s string, now time.Time, step time.Duration) (Result, bool, time.Time) {
	t.Helper()
	for i := range len(s) {
		now = now.Add(step)
		if res, done := c.Add(s[i], now); done {
			return res, true, now
		}
	}
	return Result{}, false, now
}

func TestCollectorReasons(t *testing.T) {
	sec := time.Second
	cases := []struct {
		name   string
		cfg    CollectorConfig
		keys   string
		expire time.Duration // after the last key; 0 = none
		reason Reason
		fail   Failure
		digits string
	}{
		{"terminator", CollectorConfig{MinDigits: 2, MaxDigits: 6}, "123#", 0, ReasonTerminator, FailNone, "123"},
		{"terminator too early", CollectorConfig{MinDigits: 4}, "12#", 0, ReasonInvalid, FailTooShort, "12"},
		{"max digits", CollectorConfig{MinDigits: 4, MaxDigits: 4}, "12345", 0, ReasonMaxDigits, FailNone, "1234"},
		{"inter-digit timeout with enough", CollectorConfig{MinDigits: 2, InterDigitTimeout: 3 * sec}, "12", 3 * sec, ReasonComplete, FailNone, "12"},
		{"inter-digit timeout short", CollectorConfig{MinDigits: 3, InterDigitTimeout: 3 * sec}, "12", 3 * sec, ReasonTimeout, FailNone, "12"},
		{"first-digit timeout", CollectorConfig{FirstDigitTimeout: 5 * sec}, "", 5 * sec, ReasonTimeout, FailNone, ""},
		{"custom terminator", CollectorConfig{Terminator: '*'}, "12#3*", 0, ReasonTerminator, FailNone, "12#3"},
		{"no terminator", CollectorConfig{NoTerminator: true, MaxDigits: 3}, "1#2", 0, ReasonMaxDigits, FailNone, "1#2"},
		{"numeric refuses #", CollectorConfig{NoTerminator: true, MaxDigits: 3, Numeric: true}, "1#2", 0, ReasonInvalid, FailCharacter, "1#2"},
		{"numeric refuses A", CollectorConfig{MaxDigits: 2, Numeric: true}, "1A", 0, ReasonInvalid, FailCharacter, "1A"},
		{"numeric ok", CollectorConfig{MaxDigits: 2, Numeric: true}, "12", 0, ReasonMaxDigits, FailNone, "12"},
		{"luhn ok", CollectorConfig{MinDigits: 12, MaxDigits: 19, Luhn: true}, testCard + "#", 0, ReasonTerminator, FailNone, testCard},
		{"luhn bad", CollectorConfig{MinDigits: 12, MaxDigits: 19, Luhn: true}, "4111111111111112#", 0, ReasonInvalid, FailLuhn, "4111111111111112"},
		{"luhn non-numeric", CollectorConfig{MinDigits: 2, Luhn: true}, "4*#", 0, ReasonInvalid, FailCharacter, "4*"},
		{"length rule", CollectorConfig{MinDigits: 12, MaxDigits: 19, Lengths: []int{15, 16}}, "41111111111111#", 0, ReasonInvalid, FailLength, "41111111111111"},
		{"expiry ok", CollectorConfig{MinDigits: 4, MaxDigits: 4, Expiry: true}, "0626", 0, ReasonMaxDigits, FailNone, "0626"},
		{"expiry this month", CollectorConfig{MinDigits: 4, MaxDigits: 4, Expiry: true}, "0326", 0, ReasonMaxDigits, FailNone, "0326"},
		{"expiry past", CollectorConfig{MinDigits: 4, MaxDigits: 4, Expiry: true}, "0226", 0, ReasonInvalid, FailExpiry, "0226"},
		{"expiry bad month", CollectorConfig{MinDigits: 4, MaxDigits: 4, Expiry: true}, "1327", 0, ReasonInvalid, FailExpiry, "1327"},
	}
	start := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCollector(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Start(start)
			res, done, now := keys(t, c, tc.keys, start, 500*time.Millisecond)
			if !done {
				if _, early := c.Expire(now.Add(tc.expire - time.Millisecond)); early {
					t.Fatal("expired before the deadline")
				}
				if dl := c.Deadline(); dl.IsZero() || dl.After(now.Add(tc.expire)) {
					t.Fatalf("deadline %v, want by %v", dl, now.Add(tc.expire))
				}
				res, done = c.Expire(now.Add(tc.expire))
			}
			if !done || res.Reason != tc.reason || res.Failure != tc.fail || res.Digits != tc.digits || res.Count != len(tc.digits) {
				t.Fatalf("done %v result %v/%v %q, want %v/%v %q", done, res.Reason, res.Failure, res.Digits, tc.reason, tc.fail, tc.digits)
			}
			if res.Reason.OK() != (tc.reason == ReasonComplete || tc.reason == ReasonTerminator || tc.reason == ReasonMaxDigits) {
				t.Fatal("OK")
			}
			if !c.Deadline().IsZero() || !c.Done() {
				t.Fatal("deadline pending after done")
			}
			if again, d2 := c.Add('1', now); !d2 || again.Reason != res.Reason {
				t.Fatal("digit after done changed the result")
			}
		})
	}
}

func TestCollectorSecret(t *testing.T) {
	c, err := NewCollector(CollectorConfig{MinDigits: 12, MaxDigits: 19, Luhn: true, Secret: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	c.Start(now)
	res, done, _ := keys(t, c, "5555555555554444#", now, time.Second)
	if !done || res.Reason != ReasonTerminator || res.Digits != "" {
		t.Fatalf("secret result %v digits %q", res.Reason, res.Digits)
	}
	if revealString(res.Secret) != "5555555555554444" || res.Secret.Mask() != "************4444" {
		t.Fatalf("secret holds %d digits, mask %s", res.Secret.Len(), res.Secret)
	}
	for _, b := range c.buf {
		if b != 0 {
			t.Fatal("collector buffer not wiped")
		}
	}
}

func TestCollectorConfigErrors(t *testing.T) {
	for _, cfg := range []CollectorConfig{
		{MinDigits: 5, MaxDigits: 3},
		{MaxDigits: 65},
		{Terminator: 'x'},
		{FirstDigitTimeout: -1},
		{MinDigits: 12, MaxDigits: 19, Expiry: true},
		{MinDigits: 12, MaxDigits: 19, Lengths: []int{11}},
	} {
		if _, err := NewCollector(cfg); !errors.Is(err, ErrConfig) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
}

func TestLuhnAndExpiry(t *testing.T) {
	for _, good := range []string{testCard, "5555555555554444", "378282246310005", "79927398713"} {
		if !Luhn([]byte(good)) {
			t.Fatalf("valid number of %d digits rejected", len(good))
		}
	}
	for _, bad := range []string{"4111111111111121", "79927398710", "1", "", "12a4"} {
		if Luhn([]byte(bad)) {
			t.Fatalf("invalid number of %d digits accepted", len(bad))
		}
	}
	now := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	for s, want := range map[string]bool{"1226": true, "0127": true, "1126": false, "1246": true, "0046": false, "0147": false, "00ab": false, "122": false} {
		if ExpiryValid([]byte(s), now) != want {
			t.Fatalf("expiry %s: want %v", s, want)
		}
	}
}

func TestReasonAndFailureNames(t *testing.T) {
	if ReasonMaxDigits.String() != "max_digits" || Reason(99).String() != "unknown" || FailLuhn.String() != "luhn" || Failure(99).String() != "unknown" {
		t.Fatal("names")
	}
}
