package sip

import (
	"errors"
	"strings"
	"testing"

	siplib "github.com/emiago/sipgo/sip"
)

func inviteWith(t *testing.T, headers ...string) *Session {
	t.Helper()
	raw := "INVITE sip:main@cloak.test SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
		"To: <sip:main@cloak.test>\r\n" +
		"Call-ID: ident@test\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Max-Forwards: 70\r\n" +
		strings.Join(headers, "") +
		"Content-Length: 0\r\n\r\n"
	msg, err := siplib.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &Session{req: msg.(*siplib.Request)}
}

func TestCallerNameAndAssertedIdentity(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		headers               []string
		caller, user, display string
	}{
		{"plain", []string{"From: <sip:0612345678@192.0.2.1>;tag=1\r\n"}, "", "", ""},
		{"token name", []string{"From: Alice <sip:0612@192.0.2.1>;tag=1\r\n"}, "Alice", "", ""},
		{"quoted, escaped", []string{"From: \"Alice \\\"Al\\\" Smith\" <sip:0612@192.0.2.1>;tag=1\r\n"}, `Alice "Al" Smith`, "", ""},
		{"too long", []string{"From: \"" + strings.Repeat("x", 300) + "\" <sip:0612@192.0.2.1>;tag=1\r\n"}, strings.Repeat("x", 64), "", ""},
		{"pai sip", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: \"Bank Ltd\" <sip:+33123456789@carrier.example;user=phone>\r\n"},
			"", "+33123456789", "Bank Ltd"},
		{"pai tel", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: <tel:+33612345678;cpc=ordinary>\r\n"}, "", "+33612345678", ""},
		{"pai two", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: Bob <sip:bob@x.example>, <tel:+1555>\r\n"}, "", "bob", "Bob"},
		{"pai bare tel", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: tel:+4420;x=y\r\n"}, "", "+4420", ""},
		{"pai garbage", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: \"unterminated\r\n"}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := inviteWith(t, tc.headers...)
			if got := s.CallerName(); got != tc.caller {
				t.Errorf("CallerName %q, want %q", got, tc.caller)
			}
			u, n := s.AssertedIdentity()
			if u != tc.user || n != tc.display {
				t.Errorf("AssertedIdentity %q %q, want %q %q", u, n, tc.user, tc.display)
			}
		})
	}
}

func TestVerstat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
	}{
		{"none", []string{"From: <sip:+447700900123@192.0.2.1>;tag=1\r\n"}, ""},
		{"pai sip user param", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n",
			"P-Asserted-Identity: <sip:+447700900123;verstat=TN-Validation-Passed@carrier.example;user=phone>\r\n"}, "TN-Validation-Passed"},
		{"pai tel", []string{"From: <sip:anon@192.0.2.1>;tag=1\r\n", "P-Asserted-Identity: <tel:+447700900123;verstat=No-TN-Validation>\r\n"}, "No-TN-Validation"},
		{"from only", []string{"From: <sip:+447700900123;verstat=TN-Validation-Failed@192.0.2.1;user=phone>;tag=1\r\n"}, "TN-Validation-Failed"},
		{"pai wins", []string{"From: <sip:+447700900123;verstat=TN-Validation-Failed@192.0.2.1;user=phone>;tag=1\r\n",
			"P-Asserted-Identity: <tel:+447700900123;VERSTAT=TN-Validation-Passed>\r\n"}, "TN-Validation-Passed"},
		{"too long", []string{"From: <sip:+44;verstat=" + strings.Repeat("A", 41) + "@192.0.2.1>;tag=1\r\n"}, ""},
		{"bad char", []string{"From: <sip:+44;verstat=TN%0aX@192.0.2.1>;tag=1\r\n"}, ""},
		{"empty", []string{"From: <sip:+44;verstat=@192.0.2.1>;tag=1\r\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inviteWith(t, tc.headers...).Verstat(); got != tc.want {
				t.Errorf("Verstat %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHeaderValue: a channel-data header is read whatever its case,
// trimmed; absent or empty is not ok; repeated, too long or holding a
// control character is an error that does not carry the value.
func TestHeaderValue(t *testing.T) {
	from := "From: <sip:0612@192.0.2.1>;tag=1\r\n"
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
		ok      bool
		err     error
	}{
		{"plain", []string{"X-Customer-Id: CUST-12345\r\n"}, "CUST-12345", true, nil},
		{"case and spaces", []string{"x-customer-id:    CUST 9  \r\n"}, "CUST 9", true, nil},
		{"utf-8", []string{"X-Customer-Id: Zoë-7\r\n"}, "Zoë-7", true, nil},
		{"absent", nil, "", false, nil},
		{"empty", []string{"X-Customer-Id: \r\n"}, "", false, nil},
		{"repeated", []string{"X-Customer-Id: A-SECRETVALUE\r\n", "X-Customer-Id: B-SECRETVALUE\r\n"}, "", false, ErrHeaderRepeated},
		{"too long", []string{"X-Customer-Id: " + strings.Repeat("SECRETVALUE", 30) + "\r\n"}, "", false, ErrHeaderTooLong},
		{"NUL", []string{"X-Customer-Id: A\x00SECRETVALUE\r\n"}, "", false, ErrHeaderControl},
		{"escape", []string{"X-Customer-Id: A\x1b[2JSECRETVALUE\r\n"}, "", false, ErrHeaderControl},
		{"DEL", []string{"X-Customer-Id: A\x7fSECRETVALUE\r\n"}, "", false, ErrHeaderControl},
		{"C1", []string{"X-Customer-Id: A\u0085SECRETVALUE\r\n"}, "", false, ErrHeaderControl},
		{"not utf-8", []string{"X-Customer-Id: A\xffSECRETVALUE\r\n"}, "", false, ErrHeaderControl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := inviteWith(t, append([]string{from}, tc.headers...)...)
			v, ok, err := s.HeaderValue("X-Customer-Id")
			if v != tc.want || ok != tc.ok || !errors.Is(err, tc.err) {
				t.Errorf("got %q %v %v, want %q %v %v", v, ok, err, tc.want, tc.ok, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "SECRETVALUE") {
				t.Errorf("the error carries the value: %v", err)
			}
		})
	}
}
