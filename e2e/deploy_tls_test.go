package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/cloak-voip/cloak/sdes"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/pion/srtp/v3"
)

// frontDoorTLS is frontDoor with the shipped config's TLS listener on:
// TLS_LISTEN on a free port, TLS_CERT and TLS_KEY a certificate of ca's
// for 127.0.0.1. It returns Kamailio and its TLS address.
func frontDoorTLS(t *testing.T, ca *certstest.CA, nodes ...int) (*kamailio, string) {
	t.Helper()
	if _, err := exec.LookPath("kamailio"); err == nil {
		if m, _ := filepath.Glob("/usr/lib/*/kamailio/modules/tls.so"); len(m) == 0 {
			t.Skip("Kamailio's tls module (kamailio-tls-modules) is not installed")
		}
	}
	dir := t.TempDir()
	return frontDoorTLSList(t, ca, dir, dispatcherList(t, dir, nodes...))
}

// frontDoorTLSList is frontDoorTLS with a dispatcher list file of the
// caller's (for nodes reached over TLS).
func frontDoorTLSList(t *testing.T, ca *certstest.CA, dir, listFile string) (*kamailio, string) {
	t.Helper()
	is := ca.Issue(t, dir, "front-door", "127.0.0.1")
	ports := freePorts(t, 2, true)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", ports+1)
	k := launchKamailio(t, dir, ports, deployFile(t, "kamailio/kamailio.cfg"),
		"-A", fmt.Sprintf("LISTEN=127.0.0.1:%d", ports),
		"-A", fmt.Sprintf("DS_LIST=%q", listFile),
		"-A", "DS_PING_INTERVAL=1", "-A", "INVITE_TIMEOUT=1000", "-A", "CHILDREN=4",
		"-A", "TLS_LISTEN="+tlsAddr,
		"-A", fmt.Sprintf("TLS_CERT=%q", is.CertFile),
		"-A", fmt.Sprintf("TLS_KEY=%q", is.KeyFile))
	return k, tlsAddr
}

// TestDeployKamailioConfigChecksTLS: the shipped config with its TLS
// listener defined passes Kamailio's check, and with TLS_LISTEN but no
// certificate it does not (the listener cannot start without one).
func TestDeployKamailioConfigChecksTLS(t *testing.T) {
	requireTools(t, "kamailio")
	if m, _ := filepath.Glob("/usr/lib/*/kamailio/modules/tls.so"); len(m) == 0 {
		t.Skip("Kamailio's tls module (kamailio-tls-modules) is not installed")
	}
	is := certstest.NewCA(t, "front-door-ca").Issue(t, "", "front-door", "127.0.0.1")
	base := []string{"-c", "-f", deployFile(t, "kamailio/kamailio.cfg"),
		"-A", fmt.Sprintf("DS_LIST=%q", deployFile(t, "kamailio/dispatcher.list")), "-A", "TLS_LISTEN=127.0.0.1:5061"}
	out, err := exec.Command("kamailio", append(base,
		"-A", fmt.Sprintf("TLS_CERT=%q", is.CertFile), "-A", fmt.Sprintf("TLS_KEY=%q", is.KeyFile),
		"-A", fmt.Sprintf("TLS_CA=%q", is.CertFile))...).CombinedOutput()
	if err != nil {
		t.Fatalf("kamailio -c with TLS: %v\n%s", err, tail(string(out), 3000))
	}
	if !strings.Contains(string(out), "tls: 127.0.0.1 [127.0.0.1]:5061") {
		t.Errorf("kamailio -c lists no TLS listener:\n%s", tail(string(out), 1500))
	}
	if out, err := exec.Command("kamailio", base...).CombinedOutput(); err == nil {
		t.Errorf("kamailio -c passed TLS_LISTEN without a certificate:\n%s", tail(string(out), 1500))
	}
}

// TestDeployFrontDoorTLS: a SIP-over-TLS client (written here: Debian's
// sipp has no TLS) calls echo through the shipped Kamailio's TLS
// listener; the dispatcher hands the INVITE to a cloak node over UDP.
// The proxy answers OPTIONS over TLS, the call is answered with the
// node's SDP and record-routed with the TLS leg (double Record-Route:
// TLS towards the client, UDP towards the node), RTP echoes, and the
// client's ACK and BYE follow the route set back through the TLS
// connection. tshark on the TLS port sees TLS handshakes and no SIP in
// clear.
func TestDeployFrontDoorTLS(t *testing.T) {
	requireTools(t, "kamailio", "tshark")
	c := startCloak(t, cloakOpts{logLevel: "info", json: true})
	ca := certstest.NewCA(t, "front-door-ca")
	k, addr := frontDoorTLS(t, ca, c.sipPort)
	port := addr[strings.LastIndex(addr, ":")+1:]
	cp := startCaptureFilter(t, "tcp port "+port)
	time.Sleep(1500 * time.Millisecond) // the first probe marks the node up

	s := dialTLSSIP(t, addr, ca.Pool)
	s.send(s.request("OPTIONS", "sip:127.0.0.1:"+port+";transport=tls", "opts-fd@e2e", 1, "<sip:127.0.0.1:"+port+">", "", ""))
	if got := s.final("OPTIONS to the proxy"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("OPTIONS over TLS to Kamailio: %q", strings.SplitN(got, "\r\n", 2)[0])
	}

	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
		sock.LocalAddr().(*net.UDPAddr).Port)
	ruri := "sip:echo@" + addr + ";transport=tls"
	const callID = "fd-tls@e2e"
	s.send(s.request("INVITE", ruri, callID, 1, "<sip:echo@"+addr+">",
		"Contact: <sip:caller@"+s.local+";transport=tls>\r\nContent-Type: application/sdp\r\n", sdp))
	ok := s.final("INVITE through the TLS front door")
	if !strings.HasPrefix(ok, "SIP/2.0 200 ") {
		t.Fatalf("INVITE through Kamailio over TLS: %q\nkamailio: %s", strings.SplitN(ok, "\r\n", 2)[0], tail(k.log(), 2000))
	}
	rr, target := dialogOf(ok)
	if !slices.ContainsFunc(rr, func(r string) bool { return strings.Contains(r, ":"+port+";transport=tls") }) {
		t.Errorf("no Record-Route of the TLS listener in the 200: %v", rr)
	}
	inDialog := func(method string, cseq int) string {
		return s.request(method, target, callID, cseq, sipHeader(ok, "To"), "Route: "+strings.Join(rr, ", ")+"\r\n", "")
	}
	s.send(inDialog("ACK", 1))
	ans, err := csip.ParseAnswer([]byte(ok[strings.Index(ok, "\r\n\r\n")+4:]))
	if err != nil {
		t.Fatalf("the node's answer: %v", err)
	}

	// RTP: 50 packets, the echo returns them.
	echoed := 0
	buf := make([]byte, 1500)
	pkt := make([]byte, 12+160)
	pkt[0], pkt[8] = 0x80, 0x42
	for i := range 50 {
		pkt[3] = byte(i)
		pkt[7] = byte(i * 160 % 256)
		pkt[6] = byte(i * 160 / 256)
		if _, err := sock.WriteToUDPAddrPort(pkt, ans.Remote); err != nil {
			t.Fatal(err)
		}
		_ = sock.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			n, err := sock.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				t.Fatal(err)
			}
			if n > 12 && buf[1]&0x7f == 0 {
				echoed++
			}
		}
	}
	if echoed < 30 {
		t.Errorf("%d of 50 RTP packets echoed through the call set up over TLS", echoed)
	}

	s.send(inDialog("BYE", 2))
	if got := s.final("BYE along the route set"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Errorf("BYE through Kamailio over TLS: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	if !c.waitLog("call ended", 5*time.Second) {
		t.Errorf("the node did not see the call end:\n%s", tail(c.log(), 2000))
	}
	if !regexp.MustCompile(`"transport":"UDP".*"message":"call offered"`).MatchString(c.log()) {
		t.Errorf("the node did not get the call over UDP from the proxy:\n%s", tail(c.log(), 2000))
	}

	cp.finish()
	raw, err := os.ReadFile(cp.file)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 1000 {
		t.Fatalf("captured %d bytes on the TLS port", len(raw))
	}
	for _, clear := range []string{"INVITE sip", "SIP/2.0 200", "m=audio", "Call-ID", callID} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("%q in clear on the front door's TLS port", clear)
		}
	}
	dec, _ := exec.Command("tshark", "-r", cp.file, "-d", "tcp.port=="+port+",tls", "-Y", "tls.handshake", "-T", "fields", "-e", "frame.number").Output()
	if len(strings.Fields(string(dec))) == 0 {
		t.Errorf("no TLS handshake on %s in the capture", port)
	}
	t.Logf("through Kamailio's TLS listener: OPTIONS 200, call answered by the node over UDP, %d/50 RTP echoed, BYE 200; %d bytes on tcp/%s, no SIP in clear",
		echoed, len(raw), port)
}

// dialogOf is what a UAC keeps of a 2xx (RFC 3261 §12.1.2): the route
// set (the Record-Route entries in reverse) and the remote target (the
// Contact's URI).
func dialogOf(ok string) (route []string, target string) {
	for _, l := range strings.Split(ok, "\r\n") {
		if k, v, found := strings.Cut(l, ":"); found && strings.EqualFold(k, "Record-Route") {
			for _, r := range strings.Split(v, ",") {
				route = append(route, strings.TrimSpace(r))
			}
		}
	}
	slices.Reverse(route)
	target = sipHeader(ok, "Contact")
	if i := strings.Index(target, "<"); i >= 0 {
		target = target[i+1:]
	}
	if i := strings.Index(target, ">"); i >= 0 {
		target = target[:i]
	}
	return route, target
}

// TestDeployFrontDoorTLSToNodesSRTP: the front door with its nodes listed
// as ;transport=tls, so SIP is encrypted on both hops and a node with
// rtp.srtp: mandatory takes an SDES offer that came through the proxy
// (keys only over TLS: the node sees the call arrive over TLS). A TLS
// client calls echo with RTP/SAVP; its SRTP comes back from the node
// protected with the node's key. tshark on both TLS ports sees no SIP,
// a=crypto or key in clear.
func TestDeployFrontDoorTLSToNodesSRTP(t *testing.T) {
	requireTools(t, "kamailio", "tshark")
	ca := certstest.NewCA(t, "front-door-ca")
	c, nodeAddr, _, _ := tlsCloakCA(t, cloakOpts{logLevel: "info", json: true, rtpExtra: "  srtp: mandatory\n"}, ca, false)
	defer c.stop()
	dir := t.TempDir()
	listFile := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listFile, []byte("1 sip:"+nodeAddr+";transport=tls\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := frontDoorTLSList(t, ca, dir, listFile)
	port := addr[strings.LastIndex(addr, ":")+1:]
	nodePort := nodeAddr[strings.LastIndex(nodeAddr, ":")+1:]
	cp := startCaptureFilter(t, "tcp port "+port+" or tcp port "+nodePort)
	time.Sleep(2500 * time.Millisecond) // a probe over TLS marks the node up

	s := dialTLSSIP(t, addr, ca.Pool)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	ours, err := sdes.NewKey(sdes.AESCM128HMACSHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	offered := []sdes.Crypto{{Tag: 1, Key: ours}}
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:%s\r\na=sendrecv\r\n",
		sock.LocalAddr().(*net.UDPAddr).Port, offered[0].Attr())
	const callID = "fd-tls-srtp@e2e"
	s.send(s.request("INVITE", "sip:echo@"+addr+";transport=tls", callID, 1, "<sip:echo@"+addr+">",
		"Contact: <sip:caller@"+s.local+";transport=tls>\r\nContent-Type: application/sdp\r\n", sdp))
	ok := s.final("SRTP INVITE through the TLS front door")
	if !strings.HasPrefix(ok, "SIP/2.0 200 ") {
		t.Fatalf("SRTP INVITE through Kamailio to a TLS node: %q\nnode: %s", strings.SplitN(ok, "\r\n", 2)[0], tail(c.log(), 2000))
	}
	rr, target := dialogOf(ok)
	inDialog := func(method string, cseq int) string {
		return s.request(method, target, callID, cseq, sipHeader(ok, "To"), "Route: "+strings.Join(rr, ", ")+"\r\n", "")
	}
	s.send(inDialog("ACK", 1))
	ans, err := csip.ParseAnswerSRTP([]byte(ok[strings.Index(ok, "\r\n\r\n")+4:]), offered)
	if err != nil || ans.SRTP == nil {
		t.Fatalf("the node's answer: %v (SRTP %v)", err, ans.SRTP != nil)
	}
	mk := func(k *sdes.Key) *srtp.Context {
		key, salt := k.Material()
		ctx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			t.Fatal(err)
		}
		return ctx
	}
	enc, dec := mk(ours), mk(ans.SRTP.Remote)
	echoed := 0
	buf := make([]byte, 1500)
	for i := range 50 {
		pkt := make([]byte, 12+160)
		pkt[0], pkt[3], pkt[8] = 0x80, byte(i), 0x42
		pkt[6], pkt[7] = byte(i*160/256), byte(i*160%256)
		out, err := enc.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sock.WriteToUDPAddrPort(out, ans.Remote); err != nil {
			t.Fatal(err)
		}
		_ = sock.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			n, err := sock.Read(buf)
			if err != nil {
				break
			}
			if n > 12 && (buf[1] < 192 || buf[1] > 223) {
				if _, err := dec.DecryptRTP(nil, buf[:n], nil); err == nil {
					echoed++
				}
			}
		}
	}
	if echoed < 30 {
		t.Errorf("%d of 50 SRTP packets echoed and unprotected with the node's key", echoed)
	}
	s.send(inDialog("BYE", 2))
	if got := s.final("BYE along the route set"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Errorf("BYE: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	if !regexp.MustCompile(`"transport":"TLS".*"message":"call offered"`).MatchString(c.log()) {
		t.Errorf("the node did not get the call over TLS from the proxy:\n%s", tail(c.log(), 2000))
	}

	cp.finish()
	raw, err := os.ReadFile(cp.file)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 2000 {
		t.Fatalf("captured %d bytes on the two TLS ports", len(raw))
	}
	key, _ := ours.Material()
	b64 := strings.TrimPrefix(offered[0].Attr(), "1 AES_CM_128_HMAC_SHA1_80 inline:")
	for _, clear := range []string{"INVITE sip", "SIP/2.0 200", "OPTIONS sip", "m=audio", "a=crypto", "inline:", callID, b64[:24], string(key)} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("%q in clear on a TLS port", clear)
		}
	}
	t.Logf("SRTP through Kamailio over TLS on both hops: %d/50 echoed, %d bytes on tcp/%s and tcp/%s, no SIP or key in clear", echoed, len(raw), port, nodePort)
}
