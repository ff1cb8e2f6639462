package capture

import (
	"bytes"
	"strings"
	"testing"
)

// TestRedactDigestResponses: the response of Authorization and
// Proxy-Authorization (quoted or not, folded onto a continuation line) is
// blanked byte for byte; everything else — the nonce, other headers, a
// body or a parameter merely ending in "response" — stays; a message with
// nothing to hide comes back as the same slice.
func TestRedactDigestResponses(t *testing.T) {
	const resp = "6629fae49393a05397450978507c4ef1"
	msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\n" +
		`Authorization: Digest username="demo", realm="cloak", nonce="abc", uri="sip:127.0.0.1", response="` + resp + `", algorithm=MD5` + "\r\n" +
		"proxy-authorization: Digest username=\"t\", nonce=\"n\",\r\n response=" + resp + ",cnonce=\"x\"\r\n" +
		"X-Note: response=\"keep-me\"\r\n" +
		"WWW-Authenticate: Digest cresponse=\"keep-too\"\r\n" +
		"Content-Length: 0\r\n\r\n"
	in := []byte(msg)
	out := RedactDigestResponses(in)
	if string(in) != msg {
		t.Fatal("the input was modified")
	}
	if len(out) != len(in) {
		t.Fatalf("length %d, want %d", len(out), len(in))
	}
	if bytes.Contains(out, []byte(resp)) {
		t.Fatalf("a digest response survived:\n%s", out)
	}
	if n := strings.Count(string(out), strings.Repeat("*", len(resp))); n != 2 {
		t.Fatalf("%d responses blanked, want 2:\n%s", n, out)
	}
	for _, keep := range []string{`nonce="abc"`, `algorithm=MD5`, `cnonce="x"`, `response="keep-me"`, `cresponse="keep-too"`} {
		if !bytes.Contains(out, []byte(keep)) {
			t.Errorf("%s was changed:\n%s", keep, out)
		}
	}
	plain := []byte("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n")
	if got := RedactDigestResponses(plain); &got[0] != &plain[0] {
		t.Error("a message with no digest response was copied")
	}
}
