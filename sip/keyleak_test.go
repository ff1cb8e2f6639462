package sip

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
)

// sdesKey is a made-up SDES key-salt (base64 of 30 bytes, RFC 4568 §6.1).
const sdesKey = "WVNfX19zZW1DdHJsS2V5X2Zvcl90ZXN0c19vbmx5"

// TestSDESKeysNeverLogged is the leak test of the SIP log boundary for
// SRTP keys: offers carrying a=crypto (refused today with 488), a broken
// a=crypto line, a key in a header of a message sipgo cannot parse, sent
// over TLS with the log at trace level; no byte of the log holds the key
// or any 12-character piece of it.
func TestSDESKeysNeverLogged(t *testing.T) {
	var buf lockedBuf
	ca := certstest.NewCA(t, "test-ca")
	_, tlsAddr, _ := startTLSServer(t, rejectHandler{}, ca, false, &buf)
	c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	crypto := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + sdesKey + "|2^20|1:4\r\n"
	bodies := []string{
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n" + crypto,
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" + crypto,
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n" + crypto + "m=audio x RTP/AVP\r\n", // does not parse
	}
	for i, body := range bodies {
		inv := fmt.Sprintf("INVITE sips:echo@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-k%d\r\n", tlsAddr, local, i) +
			"From: <sips:a@127.0.0.1>;tag=1\r\nTo: <sips:echo@127.0.0.1>\r\n" + fmt.Sprintf("Call-ID: key%d@tls\r\n", i) + "CSeq: 1 INVITE\r\n" +
			"Contact: <sips:a@" + local + ">\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := c.Write([]byte(inv)); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if got := readTLSMsg(t, c, r); !strings.HasPrefix(got, "SIP/2.0 1") {
				break
			}
		}
	}
	// A header sipgo refuses, holding the key: the guard answers 400 and
	// ends the connection.
	bad := fmt.Sprintf("OPTIONS sips:echo@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-kb\r\n", tlsAddr, local) +
		"From: <sips:a@127.0.0.1>;tag=1\r\nTo: <sips:echo@127.0.0.1>\r\nCall-ID: keybad@tls\r\nCSeq: one OPTIONS inline:" + sdesKey + "\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(bad)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = r.ReadString('\n')
	time.Sleep(100 * time.Millisecond) // the log lines of the last message
	log := buf.String()
	if log == "" {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	for i := 0; i+12 <= len(sdesKey); i++ {
		if strings.Contains(log, sdesKey[i:i+12]) {
			t.Fatalf("key material %q in the log:\n%s", sdesKey[i:i+12], log)
		}
	}
}

func TestRedactKeysInLogText(t *testing.T) {
	in := "bad line a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + sdesKey + "|2^20"
	if got := safeString(in); strings.Contains(got, sdesKey[:12]) {
		t.Fatalf("safeString kept the key: %q", got)
	}
}
