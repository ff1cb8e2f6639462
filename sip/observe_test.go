package sip

import "testing"

func TestCallIDOf(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCall-ID: abc@host\r\n\r\n", "abc@host"},
		{"BYE sip:a@b SIP/2.0\r\ni:  short-form \r\n\r\n", "short-form"},
		{"SIP/2.0 200 OK\r\ncall-id: lower\r\n\r\n", "lower"},
		{"INFO sip:a@b SIP/2.0\r\nVia: x\r\n\r\nCall-ID: in-body\r\n", ""},
		{"", ""},
	} {
		if got := CallIDOf([]byte(tc.msg)); got != tc.want {
			t.Errorf("CallIDOf(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
