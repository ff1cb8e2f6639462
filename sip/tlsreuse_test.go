package sip

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/rs/zerolog"
)

// TestTLSDialReusesAgentConnection: a softphone that reached cloak over
// TLS (registered from an ephemeral port, no listener of its own — the
// usual case behind NAT) is called back on that same connection when its
// Contact names the connection's address (RFC 5626 §5 style reuse).
func TestTLSDialReusesAgentConnection(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	srv, tlsAddr, _ := startTLSServer(t, nopHandler{}, ca, false)
	c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	opts := "OPTIONS sip:cloak@" + tlsAddr.String() + ";transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS " + local + ";branch=z9hG4bK-r1\r\n" +
		"From: <sip:agent@127.0.0.1>;tag=1\r\nTo: <sip:cloak@127.0.0.1>\r\nCall-ID: reuse@tls\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(opts)); err != nil {
		t.Fatal(err)
	}
	if got := readTLSMsg(t, c, r); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() {
		_, _ = srv.Dial(ctx, "sip:agent@"+local+";transport=tls", DialOptions{Local: LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 40010}, Log: zerolog.Nop()})
	}()
	got := readTLSMsg(t, c, r)
	if !strings.HasPrefix(got, "INVITE ") {
		t.Fatalf("no INVITE on the agent's connection: %q", got)
	}
}
