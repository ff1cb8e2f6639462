package sip

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs"
	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/rs/zerolog"
)

func freeTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// startTLSServer starts a server on UDP and TLS with a certificate the CA
// signed for 127.0.0.1; mutual asks peers for a certificate of the CA.
func startTLSServer(t *testing.T, h Handler, ca *certstest.CA, mutual bool, logTo ...io.Writer) (*Server, netip.AddrPort, *certs.Reloader) {
	t.Helper()
	is := ca.Issue(t, "", "cloak", "127.0.0.1")
	rl, err := certs.New(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.GetCertificate}
	if mutual {
		server.ClientCAs, server.ClientAuth = ca.Pool, tls.RequireAndVerifyClientCert
	}
	client := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool, GetClientCertificate: rl.GetClientCertificate}
	tlsAddr := freeTCP(t)
	log := zerolog.Nop()
	if len(logTo) > 0 {
		log = zerolog.New(logTo[0]).Level(zerolog.TraceLevel)
	}
	srv, err := NewServer(Config{Listen: freeUDP(t), Transports: []string{"udp", "tls"}, TLSListen: tlsAddr,
		TLS: server, ClientTLS: client, Log: log}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); cancel() })
	return srv, tlsAddr, rl
}

// readSIP reads one SIP message (headers and Content-Length body) off a
// stream.
func readTLSMsg(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	clen := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return b.String() + string(body)
}

func tlsHeader(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestTLSAnswersOverTLS: OPTIONS and INVITE over TLS (RFC 3261 §26.2) are
// answered on the same connection; a sips: Request-URI gets a sips:
// Contact (§8.1.1.8, RFC 5630), a sip:…;transport=tls one a Contact with
// transport=tls, both on the TLS port.
func TestTLSAnswersOverTLS(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	h := answerHandler{sessions: make(chan *Session, 2)}
	_, tlsAddr, _ := startTLSServer(t, h, ca, false)
	c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	opts := "OPTIONS sip:cloak@" + tlsAddr.String() + ";transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS " + local + ";branch=z9hG4bK-o1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:cloak@127.0.0.1>\r\nCall-ID: opt@tls\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(opts)); err != nil {
		t.Fatal(err)
	}
	if got := readTLSMsg(t, c, r); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS over TLS: %q", got)
	}
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	for i, tc := range []struct{ ruri, wantContact string }{
		{"sips:echo@" + tlsAddr.String(), "<sips:cloak@" + tlsAddr.String() + ">"},
		{"sip:echo@" + tlsAddr.String() + ";transport=tls", "<sip:cloak@" + tlsAddr.String() + ";transport=tls>"},
	} {
		scheme, _, _ := strings.Cut(tc.ruri, ":")
		inv := "INVITE " + tc.ruri + " SIP/2.0\r\nVia: SIP/2.0/TLS " + local + fmt.Sprintf(";branch=z9hG4bK-i%d\r\n", i) +
			"From: <" + scheme + ":a@127.0.0.1>;tag=1\r\nTo: <" + scheme + ":echo@127.0.0.1>\r\nCall-ID: " + fmt.Sprint(i) + "inv@tls\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <" + scheme + ":a@" + local + ";transport=tls>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
		if _, err := c.Write([]byte(inv)); err != nil {
			t.Fatal(err)
		}
		var ok string
		for range 4 {
			if ok = readTLSMsg(t, c, r); !strings.HasPrefix(ok, "SIP/2.0 1") {
				break
			}
		}
		if !strings.HasPrefix(ok, "SIP/2.0 200 ") {
			t.Fatalf("%s: %q, want 200", tc.ruri, ok)
		}
		if got := tlsHeader(ok, "Contact"); got != tc.wantContact {
			t.Errorf("%s: Contact %q, want %q", tc.ruri, got, tc.wantContact)
		}
		ack := "ACK " + strings.Trim(tc.wantContact, "<>") + " SIP/2.0\r\nVia: SIP/2.0/TLS " + local + fmt.Sprintf(";branch=z9hG4bK-a%d\r\n", i) +
			"From: <" + scheme + ":a@127.0.0.1>;tag=1\r\nTo: " + tlsHeader(ok, "To") + "\r\nCall-ID: " + fmt.Sprint(i) + "inv@tls\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.Write([]byte(ack)); err != nil {
			t.Fatal(err)
		}
		var sess *Session
		select {
		case sess = <-h.sessions:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the call was not set up after the ACK", tc.ruri)
		}
		if !strings.EqualFold(sess.Transport(), "tls") {
			t.Errorf("session transport %q, want TLS", sess.Transport())
		}
	}
}

// TestTLSDialSips: an outbound leg to a sips: target goes over TLS and
// verifies the peer's certificate; a server without TLS refuses such a
// target instead of sending it in clear.
func TestTLSDialSips(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	far := answerHandler{sessions: make(chan *Session, 1)}
	_, farTLS, _ := startTLSServer(t, far, ca, true)
	near, _, _ := startTLSServer(t, nopHandler{}, ca, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leg, err := near.Dial(ctx, "sips:agent@"+farTLS.String(), DialOptions{Local: LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 40002}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	sess := <-far.sessions
	if !strings.EqualFold(sess.Transport(), "tls") {
		t.Errorf("far side got the call over %q, want TLS", sess.Transport())
	}
	_ = leg.Hangup(ctx)

	plain, _ := startServer(t, nopHandler{})
	_, err = plain.Dial(ctx, "sip:agent@"+farTLS.String()+";transport=tls", DialOptions{Local: LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 40004}, Log: zerolog.Nop()})
	if !errors.Is(err, ErrNoTLS) {
		t.Fatalf("Dial over TLS without TLS configured: %v, want ErrNoTLS", err)
	}
}

// TestTLSMutualRefusesAnonymousPeer: with client CAs set, a peer without
// a certificate gets no SIP service.
func TestTLSMutualRefusesAnonymousPeer(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	_, tlsAddr, _ := startTLSServer(t, rejectHandler{}, ca, true)
	c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool})
	if err == nil {
		// TLS 1.3 reports the missing certificate on the first read.
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.Write([]byte("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n"))
		_, err = c.Read(make([]byte, 64))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("anonymous peer: err = %v, want a certificate error", err)
	}
}

// TestTLSAllowListBeforeHandshake: a source outside sip.allow gets its
// TCP connection closed before any TLS handshake, and is counted.
func TestTLSAllowListBeforeHandshake(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	is := ca.Issue(t, "", "cloak", "127.0.0.1")
	rl, err := certs.New(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var handshakes atomic.Int32
	conf := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		handshakes.Add(1)
		return rl.GetCertificate(h)
	}}
	tlsAddr := freeTCP(t)
	srv, err := NewServer(Config{Listen: freeUDP(t), Transports: []string{"udp", "tls"}, TLSListen: tlsAddr, TLS: conf,
		AllowNets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Log: zerolog.Nop()}, rejectHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d := &net.Dialer{Timeout: 3 * time.Second}
	if c, err := tls.DialWithDialer(d, "tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool}); err == nil {
		c.Close()
		t.Fatal("a source outside sip.allow completed a TLS handshake")
	}
	if n := handshakes.Load(); n != 0 {
		t.Fatalf("%d handshakes reached the certificate for a refused source", n)
	}
	if got := srv.Stats().Forbidden; got != 1 {
		t.Fatalf("Forbidden = %d, want 1", got)
	}
}

// TestTLSReloadReachesNewHandshakes: after the certificate files are
// replaced and reloaded, a new connection sees the new certificate while
// one made before keeps working.
func TestTLSReloadReachesNewHandshakes(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	_, tlsAddr, rl := startTLSServer(t, rejectHandler{}, ca, false)
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := dial()
	defer old.Close()
	before := old.ConnectionState().PeerCertificates[0].SerialNumber
	// Overwrite the reloader's files with a new pair.
	cert, key := rl.Files()
	fresh := ca.Issue(t, "", "cloak2", "127.0.0.1")
	copyFile(t, fresh.CertFile, cert)
	copyFile(t, fresh.KeyFile, key)
	if changed, err := rl.Reload(); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	c := dial()
	defer c.Close()
	if c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(before) == 0 {
		t.Fatal("new handshake got the old certificate")
	}
	r := bufio.NewReader(old)
	opts := "OPTIONS sip:cloak@" + tlsAddr.String() + ";transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS " + old.LocalAddr().String() + ";branch=z9hG4bK-o2\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:cloak@127.0.0.1>\r\nCall-ID: opt2@tls\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := old.Write([]byte(opts)); err != nil {
		t.Fatal(err)
	}
	if got := readTLSMsg(t, old, r); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("connection made before the reload: %q", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTLSHandshake is the cost of one full handshake (TLS 1.3,
// ECDSA P-256, no resumption) with the SIP TLS listener on loopback, both
// sides in this process: a trunk pays it once per connection, not per call.
func BenchmarkTLSHandshake(b *testing.B) {
	ca := certstest.NewCA(b, "bench-ca")
	is := ca.Issue(b, "", "cloak", "127.0.0.1")
	rl, err := certs.New(is.CertFile, is.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	hl := &handshakeListener{Listener: l, conf: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.GetCertificate}}
	go func() {
		for {
			c, err := hl.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = c.Read(make([]byte, 1)); c.Close() }()
		}
	}()
	conf := &tls.Config{RootCAs: ca.Pool, ClientSessionCache: nil}
	b.ResetTimer()
	for range b.N {
		c, err := tls.Dial("tcp4", l.Addr().String(), conf)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = c.Write([]byte{'x'})
		c.Close()
	}
}

// The key leak test lives here, after malformed_test.go and
// observe_test.go in run order: those install sipgo's package-level tracer,
// which a server left by an earlier test would still be reading.

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
