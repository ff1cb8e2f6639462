package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile RTP (issue 17): an attacker who sends RTP to a call's port
// before and while the caller does must get nothing back and key nothing.
// The caller is a raw UDP SIP client written here, so the test knows
// exactly which address its SDP names; the attacker sprays every port of
// cloak's RTP range from another socket (the same IP as the caller: the
// hardest case for strict, which must tell them apart by port).

// uac is a minimal SIP UAC over UDP: one INVITE dialog, enough to place a
// call, ACK the 200, answer cloak's BYE and send ours.
type uac struct {
	t      *testing.T
	conn   *net.UDPConn
	server netip.AddrPort
	callID string
	tag    string
	user   string
	msgs   chan string // every SIP message received
	toHdr  string      // To of the 200, with cloak's tag
	cseq   int
}

func newUAC(t *testing.T, local netip.Addr, server netip.AddrPort, user string) *uac {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{t: t, conn: c, server: server, user: user, msgs: make(chan string, 64),
		callID: fmt.Sprintf("hostile-%x@test", rand.Uint64()), tag: fmt.Sprintf("%x", rand.Uint32())}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(u.msgs)
				return
			}
			m := string(buf[:n])
			if strings.HasPrefix(m, "BYE ") { // cloak hangs up: 200 it
				u.reply(m, "200 OK")
			}
			select {
			case u.msgs <- m:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return u
}

func (u *uac) local() netip.AddrPort { return u.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (u *uac) send(msg string) {
	u.t.Helper()
	if _, err := u.conn.WriteToUDPAddrPort([]byte(msg), u.server); err != nil {
		u.t.Fatal(err)
	}
}

// header returns the value of the first header name in msg.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// reply answers a request cloak sent us.
func (u *uac) reply(req, status string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %s\r\n", status)
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		fmt.Fprintf(&b, "%s: %s\r\n", h, header(req, h))
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	_, _ = u.conn.WriteToUDPAddrPort([]byte(b.String()), u.server)
}

// request builds an in-dialog or initial request.
func (u *uac) request(method, to, body string) string {
	u.cseq++
	if method == "ACK" {
		u.cseq-- // an ACK for a 2xx carries the INVITE's number
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s SIP/2.0\r\n", method, u.user, u.server)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%x;rport\r\n", u.local(), rand.Uint64())
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:caller@%s>;tag=%s\r\n", u.local().Addr(), u.tag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", u.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", u.cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:caller@%s>\r\n", u.local())
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

var (
	sdpConn  = regexp.MustCompile(`(?m)^c=IN IP[46] (\S+)\r?$`)
	sdpAudio = regexp.MustCompile(`(?m)^m=audio (\d+) `)
)

// invite places the call with an offer naming media (PCMU and
// telephone-event) and ACKs the 200; it returns cloak's SDP address.
func (u *uac) invite(media netip.AddrPort) netip.AddrPort {
	u.t.Helper()
	sdp := fmt.Sprintf("v=0\r\no=caller 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\n"+
		"m=audio %[2]d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
		media.Addr(), media.Port())
	inv := u.request("INVITE", fmt.Sprintf("<sip:%s@%s>", u.user, u.server), sdp)
	u.send(inv)
	deadline := time.After(10 * time.Second)
	resend := time.NewTicker(500 * time.Millisecond)
	defer resend.Stop()
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				u.t.Fatal("SIP socket closed")
			}
			if !strings.HasPrefix(m, "SIP/2.0 ") || !strings.Contains(header(m, "CSeq"), "INVITE") {
				continue
			}
			code, _ := strconv.Atoi(m[8:11])
			if code < 200 {
				resend.Stop()
				continue
			}
			if code >= 300 {
				u.t.Fatalf("INVITE answered %s", strings.SplitN(m, "\r\n", 2)[0])
			}
			u.toHdr = header(m, "To")
			u.send(u.request("ACK", u.toHdr, ""))
			c, a := sdpConn.FindStringSubmatch(m), sdpAudio.FindStringSubmatch(m)
			if c == nil || a == nil {
				u.t.Fatalf("200 OK without c= or m=audio:\n%s", m)
			}
			port, _ := strconv.Atoi(a[1])
			addr, err := netip.ParseAddr(c[1])
			if err != nil {
				u.t.Fatalf("200 OK's c= %q: %v", c[1], err)
			}
			return netip.AddrPortFrom(addr, uint16(port))
		case <-resend.C:
			u.send(inv)
		case <-deadline:
			u.t.Fatal("no final answer to the INVITE within 10s")
		}
	}
}

// bye ends the call (best effort: cloak may have hung up first).
func (u *uac) bye() {
	u.send(u.request("BYE", u.toHdr, ""))
	timeout := time.After(3 * time.Second)
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok || (strings.HasPrefix(m, "SIP/2.0 ") && strings.Contains(header(m, "CSeq"), "BYE")) {
				return
			}
		case <-timeout:
			return
		}
	}
}

// rtpSocket is a UDP socket that counts and keeps what it receives.
type rtpSocket struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts [][]byte
	n    atomic.Int64
}

func newRTPSocket(t *testing.T, ip netip.Addr) *rtpSocket {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	s := &rtpSocket{conn: c}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.n.Add(1)
			s.mu.Lock()
			s.pkts = append(s.pkts, append([]byte(nil), buf[:n]...))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *rtpSocket) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// pcm decodes every PCMU packet received.
func (s *rtpSocket) pcm() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int16
	for _, b := range s.pkts {
		if p, ok := rtpOf(b); ok && p.PayloadType == 0 {
			out = decodeG711(0, p.Payload, out)
		}
	}
	return out
}

// rtpHeader writes an RTP header (RFC 3550 §5.1) into b[:12].
func rtpHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	b[2], b[3] = byte(seq>>8), byte(seq)
	b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	b[8], b[9], b[10], b[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
}

// streamSilence sends 20 ms PCMU silence from s to dst until stop.
func streamSilence(s *rtpSocket, dst netip.AddrPort, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	pkt := make([]byte, 12+160)
	for i := range pkt[12:] {
		pkt[12+i] = 0xFF
	}
	ssrc := rand.Uint32()
	for seq := uint16(0); ; seq++ {
		rtpHeader(pkt, seq == 0, 0, seq, uint32(seq)*160, ssrc)
		_, _ = s.conn.WriteToUDPAddrPort(pkt, dst)
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// attack sprays every port of cloak's RTP range, every 20 ms until stop,
// with one consecutive stream (so it would also pass a learning run):
// PCMU noise and, between, RFC 4733 events (RFC 4733 §2.3) keying 4 then
// 1 — each event a start, two continuations and three end packets, as a
// real phone sends them.
func attack(s *rtpSocket, c *cloak, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	ssrc := uint32(0xA77AC4ED)
	audio := make([]byte, 12+160)
	for i := range audio[12:] {
		audio[12+i] = byte(i * 37)
	}
	ev := make([]byte, 12+4)
	var seq uint16
	ts := uint32(0)
	sendAll := func(b []byte) {
		for port := c.rtpLo; port <= c.rtpHi; port++ {
			_, _ = s.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
		}
	}
	for round := 0; ; round++ {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if round%10 < 5 { // 100 ms of audio
			rtpHeader(audio, false, 0, seq, ts, ssrc)
			sendAll(audio)
			seq++
			ts += 160
			continue
		}
		// 100 ms of one event: start, continuations, three ends.
		digit := byte(4)
		if round%20 >= 10 {
			digit = 1
		}
		k := round%10 - 5
		dur := uint16(160 * (k + 1))
		end := byte(0)
		if k >= 2 {
			end = 0x80
		}
		rtpHeader(ev, k == 0, 101, seq, ts, ssrc)
		ev[12], ev[13], ev[14], ev[15] = digit, end|10, byte(dur>>8), byte(dur)
		sendAll(ev)
		seq++
		if k == 4 {
			ts += uint32(dur)
		}
	}
}

// hostileCall places a call to route with the attacker (at attackerIP)
// spraying from before the INVITE to the end, the caller (at 127.0.0.1)
// sending silence, and returns
// the caller's and the attacker's sockets after BYE and cloak's log.
func hostileCall(t *testing.T, c *cloak, route, attackerIP string, talk time.Duration) (caller, attacker *rtpSocket, lines []logLine, id string) {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	caller, attacker = newRTPSocket(t, lo), newRTPSocket(t, netip.MustParseAddr(attackerIP))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go attack(attacker, c, stop, &wg)
	time.Sleep(100 * time.Millisecond) // the attacker is first
	u := newUAC(t, lo, netip.AddrPortFrom(lo, uint16(c.sipPort)), route)
	media := u.invite(caller.addr())
	time.Sleep(200 * time.Millisecond) // the attacker still first, now on the open port
	wg.Add(1)
	go streamSilence(caller, media, stop, &wg)
	time.Sleep(talk)
	u.bye()
	close(stop)
	wg.Wait()
	if !c.waitLog(`"message":"media closed"`, 5*time.Second) {
		t.Fatal(`cloak did not log "media closed"`)
	}
	c.stop()
	lines = parseLog(t, c.log())
	return caller, attacker, lines, callOf(t, lines)
}

// droppedSource is the per-leg count of foreign packets cloak logged at
// the end of call id.
func droppedSource(t *testing.T, lines []logLine, id string) float64 {
	t.Helper()
	mc := findLog(lines, "media closed", id)
	if len(mc) != 1 {
		t.Fatalf("%d \"media closed\" lines for the call", len(mc))
	}
	n, _ := mc[0].raw["rtp_dropped_source"].(float64)
	return n
}

// TestHostileRTPTone: on route tone the caller hears the 1004 Hz tone and
// the attacker, first on the port and spraying throughout, gets nothing;
// with rtp.source: any (the old behaviour) the same attack takes the
// tone, which shows the test can see the hijack.
func TestHostileRTPTone(t *testing.T) {
	t.Parallel()
	// Under learn the attacker is on another IP: learn accepts any port of
	// the SDP's IP once it has run (a second host behind the caller's NAT
	// could take a silent leg), which is why strict is the default.
	for _, tc := range []struct {
		source, attackerIP string
		hijacked           bool
	}{{"", "127.0.0.1", false}, {"learn", "127.0.0.2", false}, {"any", "127.0.0.1", true}} {
		name := tc.source
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			c := startCloak(t, cloakOpts{json: true, rtpSource: tc.source})
			caller, attacker, lines, id := hostileCall(t, c, "tone", tc.attackerIP, 2*time.Second)
			callerPCM := caller.pcm()
			if tc.hijacked {
				if attacker.n.Load() == 0 {
					t.Fatal("under rtp.source: any the attacker got nothing: the attack did not happen")
				}
				return
			}
			if n := attacker.n.Load(); n != 0 {
				t.Errorf("attacker received %d packets", n)
			}
			if caller.n.Load() < 50 {
				t.Errorf("caller received %d packets in 2 s, want the tone (about 100)", caller.n.Load())
			}
			if share := toneShare(callerPCM, 1004); share < 0.5 {
				t.Errorf("caller's audio is %.2f 1004 Hz, want the tone", share)
			}
			if n := droppedSource(t, lines, id); n < 5 {
				t.Errorf("cloak counted %v packets from foreign sources on the leg, want the attacker's", n)
			}
		})
	}
}

// TestHostileRTPPay: on the pay flow the attacker keys RFC 4733 digits
// into the call from before the caller's first packet through the card
// prompt: no digit reaches cloak (no "digit" log line, get_card never
// completes); with rtp.source: any the attacker's digits are collected.
func TestHostileRTPPay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		source   string
		hijacked bool
	}{{"", false}, {"any", true}} {
		name := tc.source
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			o := ivrOpts("")
			o.rtpSource = tc.source
			c := startCloak(t, o)
			_, _, lines, id := hostileCall(t, c, "pay", "127.0.0.1", 6*time.Second)
			digits := findLog(lines, "digit", id)
			if tc.hijacked {
				if len(digits) == 0 {
					t.Fatal("under rtp.source: any no attacker digit was collected: the attack did not happen")
				}
				return
			}
			if len(digits) != 0 {
				t.Errorf("%d digits reached cloak from the attacker: %v", len(digits), digits[0].text)
			}
			for _, st := range flowSteps(lines, id) {
				if strings.HasPrefix(st, "get_card:on_valid") {
					t.Errorf("flow step %s with only the attacker keying", st)
				}
			}
			if n := droppedSource(t, lines, id); n < 5 {
				t.Errorf("cloak counted %v packets from foreign sources on the leg, want the attacker's", n)
			}
		})
	}
}

// testNetns creates a network namespace of the test's own joined to this
// one by a veth pair: this side hostIP, the namespace's side nsIP, its
// loopback up. Nothing else reaches it. It needs root (ip netns); without
// it the test skips, except under CI where it fails.
func testNetns(t *testing.T) (name string, hostIP, nsIP netip.Addr) {
	t.Helper()
	n := rand.IntN(200) + 20
	name = fmt.Sprintf("cloak-e2e-%d-%d", os.Getpid(), n)
	host, peer := fmt.Sprintf("ce%dh", n), fmt.Sprintf("ce%dn", n)
	hostIP = netip.MustParseAddr(fmt.Sprintf("10.213.%d.1", n))
	nsIP = netip.MustParseAddr(fmt.Sprintf("10.213.%d.2", n))
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("netns", "add", name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("no network namespace (needs root): %v", err)
	}
	t.Cleanup(func() { _ = run("netns", "del", name) }) // takes the veth pair with it
	for _, args := range [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", name},
		{"addr", "add", hostIP.String() + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"-n", name, "addr", "add", nsIP.String() + "/30", "dev", peer},
		{"-n", name, "link", "set", peer, "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return name, hostIP, nsIP
}

// TestWildcardListenAdvertisesRoutableAddress: cloak listening on 0.0.0.0
// (inside a namespace of the test's own, so nothing beyond it can reach
// the port) with no sip.advertise nor rtp.address gives a caller the
// address of its interface on the route to that caller, never 127.0.0.1,
// and the caller receives the tone there.
func TestWildcardListenAdvertisesRoutableAddress(t *testing.T) {
	requireTools(t, "ip")
	ns, hostIP, nsIP := testNetns(t)
	// The caller is beyond loopback and no trunk: sip.unknown must allow it.
	c := startCloak(t, cloakOpts{sipHost: "0.0.0.0", netns: ns, extra: "agents: []\n", sipExtra: "  unknown: allow\n"})
	caller := newRTPSocket(t, hostIP)
	u := newUAC(t, hostIP, netip.AddrPortFrom(nsIP, uint16(c.sipPort)), "tone")
	media := u.invite(caller.addr())
	if media.Addr() != nsIP {
		t.Errorf("caller at %s was given c=%s, want %s (the namespace's side of the route)", hostIP, media.Addr(), nsIP)
	}
	deadline := time.Now().Add(2 * time.Second)
	for caller.n.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if caller.n.Load() < 10 {
		t.Errorf("caller at %s received %d packets of tone", hostIP, caller.n.Load())
	}
	u.bye()
}
