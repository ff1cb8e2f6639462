package call_test

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/media"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
)

// harness is a cloak SIP server with a call manager on loopback, and a
// sipgo user agent that calls it.
type harness struct {
	t      *testing.T
	logs   *lockedBuffer
	addr   netip.AddrPort
	srv    *csip.Server
	mgr    *call.Manager
	pool   *media.PortPool
	client *sipgo.Client
	dc     *sipgo.DialogClientCache
	uaPort int
	byes   chan string // Call-IDs of BYEs cloak sent us
	met    *metricsRecorder
}

type opts struct {
	recordingDir string
	recordRoutes map[string]string
	dir          *acd.Directory
	secureCode   string
	secureFlow   string
	recordCode   string
	flows        *ivr.FlowSet
	endpoints    map[string]string
	prompts      fs.FS
	routes       map[string]string
	inactivity   time.Duration
	maxCalls     int
	allow        []netip.Prefix
	ports        [2]int
	rtcp         bool   // RTCP on every leg
	rtcpMux      string // rtp.rtcp.mux
	onEnded      func(call.Summary)
	srtp         csip.SRTPPolicy // rtp.srtp for every call and leg
	arrival      call.ArrivalConfig
	sipCapture   capture.Sink // capture.sip_pcap's place: every SIP message through Manager.ObserveSIP
}

// sipSink is a protocol capture that keeps the first line and the CSeq of
// every SIP message it is given ("SIP/2.0 200 OK | 1 INVITE"). The test's
// own sipgo UA shares the process-wide tracer (sip/observe.go), so its
// side of the dialog is given too.
type sipSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *sipSink) WritePacket(_ time.Time, _, _ netip.AddrPort, _ capture.Proto, payload []byte) error {
	first, _, _ := strings.Cut(string(payload), "\r\n")
	for _, h := range strings.Split(string(payload), "\r\n") {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "CSeq") {
			first += " | " + strings.TrimSpace(v)
			break
		}
	}
	s.mu.Lock()
	s.lines = append(s.lines, first)
	s.mu.Unlock()
	return nil
}

func (s *sipSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// lockedBuffer collects log lines from many goroutines; the test prints it
// only when it failed (t.Log from goroutines that outlive a test races).
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

var portBase = struct {
	sync.Mutex
	next int
}{next: 32000}

func rtpRange(n int) [2]int {
	portBase.Lock()
	defer portBase.Unlock()
	lo := portBase.next
	portBase.next += n + 2
	return [2]int{lo, lo + n - 1}
}

func newHarness(t *testing.T, o opts) *harness {
	t.Helper()
	if o.routes == nil {
		o.routes = map[string]string{"echo": "echo", "tone": "tone", "ring": "ring"}
	}
	if o.ports == [2]int{} {
		o.ports = rtpRange(20)
	}
	logs := &lockedBuffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cloak log:\n%s", logs.String())
		}
	})
	pool, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), o.ports[0], o.ports[1])
	if err != nil {
		t.Fatal(err)
	}
	// RTP is read as cloak serve reads it: by poll workers (Linux).
	if poller, err := media.NewPoller(2, log); err == nil {
		pool.SetPoller(poller)
		t.Cleanup(poller.Close) // runs after mgr.Close: cleanups are LIFO
	}
	clock := media.NewClock(media.DefaultClockInterval)
	clock.Start()
	t.Cleanup(clock.Stop)
	met := &metricsRecorder{}
	mgr, err := call.NewManager(call.Config{Metrics: met, Pool: pool, Clock: clock, MediaAddr: netip.MustParseAddr("127.0.0.1"),
		InactivityTimeout: o.inactivity, Routes: o.routes, RingTimeout: 5 * time.Second, Log: log,
		Flows: o.flows, Endpoints: o.endpoints, Prompts: o.prompts,
		Directory: o.dir, SecureCode: o.secureCode, SecureFlow: o.secureFlow, RecordCode: o.recordCode,
		RecordingDir: o.recordingDir, RecordRoutes: o.recordRoutes, RecordingKey: []byte("0123456789abcdef0123"),
		RTCP: o.rtcp, RTCPMux: o.rtcpMux, OnEnded: o.onEnded, SRTP: o.srtp, Arrival: o.arrival,
		Capture: call.Capture{SIP: o.sipCapture}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Close)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freePort(t)))
	var observe func(csip.Observed)
	if o.sipCapture != nil {
		observe = mgr.ObserveSIP
	}
	srv, err := csip.NewServer(csip.Config{Listen: addr, Transports: []string{"udp"}, AllowNets: o.allow, MaxCalls: o.maxCalls, Log: log,
		SRTP: func(string) csip.SRTPPolicy { return o.srtp }, Observe: observe}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	mgr.SetDialer(srv)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mgr.HangupAll("test over")
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Wait(wctx)
		wcancel()
		cancel()
		srv.Close()
	})

	// The calling side: a sipgo UA listening on its own port so that
	// cloak's BYE reaches it.
	h := &harness{met: met, t: t, logs: logs, addr: addr, srv: srv, mgr: mgr, pool: pool, uaPort: freePort(t), byes: make(chan string, 8)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-uac"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	uaAddr := fmt.Sprintf("127.0.0.1:%d", h.uaPort)
	h.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(uaAddr))
	if err != nil {
		t.Fatal(err)
	}
	uas, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	h.dc = sipgo.NewDialogClientCache(h.client, siplib.ContactHeader{Address: siplib.Uri{User: "test", Host: "127.0.0.1", Port: h.uaPort}})
	uas.OnBye(func(req *siplib.Request, tx siplib.ServerTransaction) {
		if err := h.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(siplib.NewResponseFromRequest(req, 481, "No Dialog", nil))
		}
		h.byes <- req.CallID().Value()
	})
	uctx, ucancel := context.WithCancel(context.Background())
	ready := make(chan struct{}, 1)
	go uas.ListenAndServe(context.WithValue(uctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready)), "udp", uaAddr)
	select {
	case <-ready:
	case <-time.After(3 * time.Second):
		t.Fatal("test UA did not listen")
	}
	// sipgo signals "ready" just before it registers the socket for
	// outgoing requests; give it a moment.
	time.Sleep(50 * time.Millisecond)
	t.Cleanup(func() { ucancel(); ua.Close() })
	return h
}

func (h *harness) uri(user string) siplib.Uri {
	return siplib.Uri{User: user, Host: h.addr.Addr().String(), Port: int(h.addr.Port())}
}

// rtpSocket opens the caller's RTP socket.
func rtpSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func offerSDP(port int, formats string, extra ...string) []byte {
	lines := []string{"v=0", "o=test 1 1 IN IP4 127.0.0.1", "s=test", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", port, formats)}
	lines = append(lines, extra...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func pcmuOffer(port int) []byte {
	return offerSDP(port, "0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv")
}

// invite places a call and waits for the final response.
func (h *harness) invite(ctx context.Context, user string, body []byte) (*sipgo.DialogClientSession, error) {
	var hdrs []siplib.Header
	if body != nil {
		hdrs = append(hdrs, siplib.NewHeader("Content-Type", "application/sdp"))
	}
	d, err := h.dc.Invite(ctx, h.uri(user), body, hdrs...)
	if err != nil {
		return nil, err
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return d, err
	}
	return d, nil
}

func statusOf(err error) int {
	if e, ok := err.(*sipgo.ErrDialogResponse); ok {
		return e.Res.StatusCode
	}
	if e, ok := err.(sipgo.ErrDialogResponse); ok {
		return e.Res.StatusCode
	}
	return 0
}

// sendRTP sends n 20 ms PCMU packets to dst with a distinct payload each.
func sendRTP(t *testing.T, c *net.UDPConn, dst netip.AddrPort, n int, ssrc uint32) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(1000 + i), Timestamp: uint32(160 * i), SSRC: ssrc, Marker: i == 0},
			Payload: payloadFor(i)}
		b, _ := p.Marshal()
		if _, err := c.WriteToUDPAddrPort(b, dst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func payloadFor(i int) []byte {
	b := make([]byte, 160)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

// withoutFiller drops cloak's filler (media.Endpoint.StartFill) from
// pkts: RFC 3389 comfort noise, and G.711 frames quieter than about −50
// dBm0 (the filler is −70 dBm0 noise; the tests' audio is far louder).
func withoutFiller(pkts []rtp.Packet) []rtp.Packet {
	var out []rtp.Packet
	for _, p := range pkts {
		if p.PayloadType == 13 {
			continue
		}
		c, ok := audio.CodecByPayloadType(p.PayloadType)
		if ok && c.Supported() {
			quiet := true
			for _, s := range c.Decode(p.Payload, nil) {
				if s > 100 || s < -100 {
					quiet = false
					break
				}
			}
			if quiet {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// readRTP reads packets until quiet for the given time.
func readRTP(c *net.UDPConn, quiet time.Duration) []rtp.Packet {
	var out []rtp.Packet
	buf := make([]byte, 1500)
	// cloak never falls quiet on an answered leg (its filler sends every
	// 20 ms), so the read is bounded in time too.
	end := time.Now().Add(4 * quiet)
	for time.Now().Before(end) {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		if err != nil {
			return out
		}
		var p rtp.Packet
		if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
			out = append(out, p)
		}
	}
	return out
}

func TestEchoCallEndToEnd(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	myPort := sock.LocalAddr().(*net.UDPAddr).Port
	d, err := h.invite(ctx, "echo", pcmuOffer(myPort))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if d.InviteResponse.StatusCode != 200 {
		t.Fatalf("status %d", d.InviteResponse.StatusCode)
	}
	if ct := d.InviteResponse.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("200 without application/sdp")
	}
	ans, err := csip.ParseAnswer(d.InviteResponse.Body())
	if err != nil {
		t.Fatalf("answer SDP: %v\n%s", err, d.InviteResponse.Body())
	}
	if ans.Codec.Name != "PCMU" || ans.EventPT != 101 || ans.Direction != audio.SendRecv {
		t.Fatalf("answer %+v", ans)
	}
	if p := int(ans.Remote.Port()); p < 32000 || p%2 != 0 {
		t.Fatalf("answer port %d not an even port of the pool", p)
	}
	if !strings.Contains(string(d.InviteResponse.Body()), "a=ptime:20") {
		t.Errorf("answer lacks ptime 20")
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if h.pool.InUse() != 1 {
		t.Fatalf("pool in use %d, want 1", h.pool.InUse())
	}
	const mySSRC = 0x11223344
	sendRTP(t, sock, ans.Remote, 50, mySSRC)
	got := withoutFiller(readRTP(sock, 300*time.Millisecond))
	if len(got) < 45 {
		t.Fatalf("echoed %d of 50 packets", len(got))
	}
	for i, p := range got {
		if p.SSRC == mySSRC {
			t.Fatalf("echo reuses the caller's SSRC; cloak must send its own stream")
		}
		if i > 0 && p.SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap %d -> %d", got[i-1].SequenceNumber, p.SequenceNumber)
		}
		if p.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("packet %d: pt %d len %d", i, p.PayloadType, len(p.Payload))
		}
	}
	if string(got[0].Payload) != string(payloadFor(0)) && string(got[0].Payload) != string(payloadFor(1)) {
		t.Fatalf("echoed payload is not the caller's audio")
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatalf("bye: %v", err)
	}
	waitFor(t, "call cleaned up", func() bool { return h.mgr.Active() == 0 && h.pool.InUse() == 0 && h.srv.Active() == 0 })
	// The caller leg's quality reached the metrics: the 50 packets sent,
	// none lost.
	q, ok := h.met.leg("caller")
	if !ok || q.Received != 50 || q.Lost != 0 || q.MOS < 4 {
		t.Fatalf("caller leg quality for the metrics: %+v (reported %v), want 50 received, none lost, MOS >= 4", q, ok)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRejections(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("unknown user is 404", func(t *testing.T) {
		_, err := h.invite(ctx, "nobody", pcmuOffer(40000))
		if statusOf(err) != 404 {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("G.729 only is 488", func(t *testing.T) {
		_, err := h.invite(ctx, "echo", offerSDP(40000, "18", "a=rtpmap:18 G729/8000"))
		if statusOf(err) != 488 {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("OPTIONS is 200 with Allow", func(t *testing.T) {
		req := siplib.NewRequest(siplib.OPTIONS, h.uri(""))
		res, err := h.client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.GetHeader("Allow") == nil || !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
			t.Fatalf("got %s", res.StartLine())
		}
	})
	t.Run("unknown method is 405 with Allow", func(t *testing.T) {
		req := siplib.NewRequest(siplib.PUBLISH, h.uri("echo"))
		res, err := h.client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 405 || res.GetHeader("Allow") == nil {
			t.Fatalf("got %s", res.StartLine())
		}
	})
	t.Run("BYE outside a dialog is 481", func(t *testing.T) {
		req := siplib.NewRequest(siplib.BYE, h.uri("echo"))
		res, err := h.client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 481 {
			t.Fatalf("got %s", res.StartLine())
		}
	})
	if h.pool.InUse() != 0 {
		t.Fatalf("rejected calls hold %d ports", h.pool.InUse())
	}
}

// rawRequest sends a hand-written request over UDP and returns the status line
// of the reply.
func rawRequest(t *testing.T, to netip.AddrPort, msg string) string {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.UDPAddr)
	msg = strings.ReplaceAll(msg, "LOCAL", local.String())
	msg = strings.ReplaceAll(strings.TrimLeft(msg, "\n"), "\n", "\r\n")
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

func TestMissingMandatoryHeaderIs400(t *testing.T) {
	h := newHarness(t, opts{})
	for _, tc := range []struct{ name, msg string }{
		{"no To", `
OPTIONS sip:echo@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-a1
From: <sip:t@127.0.0.1>;tag=1
Call-ID: missing-to@test
CSeq: 1 OPTIONS
Content-Length: 0

`},
		{"no From", `
OPTIONS sip:echo@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-a2
To: <sip:echo@127.0.0.1>
Call-ID: missing-from@test
CSeq: 1 OPTIONS
Content-Length: 0

`},
		{"INVITE without Contact", `
INVITE sip:echo@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-a3
From: <sip:t@127.0.0.1>;tag=1
To: <sip:echo@127.0.0.1>
Call-ID: missing-contact@test
CSeq: 1 INVITE
Content-Length: 0

`},
		{"CSeq method mismatch", `
OPTIONS sip:echo@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-a4
From: <sip:t@127.0.0.1>;tag=1
To: <sip:echo@127.0.0.1>
Call-ID: cseq-mismatch@test
CSeq: 1 INVITE
Content-Length: 0

`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawRequest(t, h.addr, tc.msg); !strings.HasPrefix(got, "SIP/2.0 400") {
				t.Fatalf("got %q, want 400", got)
			}
		})
	}
	if h.srv.Stats().BadRequests < 3 {
		t.Errorf("bad requests counted %d", h.srv.Stats().BadRequests)
	}
}

func TestAllowListRefusesOtherSources(t *testing.T) {
	h := newHarness(t, opts{allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := h.client.Do(ctx, siplib.NewRequest(siplib.OPTIONS, h.uri("")))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 403 {
		t.Fatalf("got %s, want 403", res.StartLine())
	}
	if h.srv.Stats().Forbidden != 1 {
		t.Fatalf("forbidden counted %d", h.srv.Stats().Forbidden)
	}
}

func TestConcurrentCallCapAndPortExhaustionAre503(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("cap", func(t *testing.T) {
		h := newHarness(t, opts{maxCalls: 1})
		d, err := h.invite(ctx, "echo", pcmuOffer(40000))
		if err != nil {
			t.Fatal(err)
		}
		d.Ack(ctx)
		if _, err := h.invite(ctx, "echo", pcmuOffer(40002)); statusOf(err) != 503 {
			t.Fatalf("second call: %v, want 503", err)
		}
		if h.srv.Stats().Overloaded != 1 {
			t.Fatal("overload not counted")
		}
		d.Bye(ctx)
	})
	t.Run("ports", func(t *testing.T) {
		r := rtpRange(2) // one even port
		if r[0]%2 != 0 {
			r[0]++
			r[1]++
		}
		h := newHarness(t, opts{ports: r})
		d, err := h.invite(ctx, "echo", pcmuOffer(40000))
		if err != nil {
			t.Fatal(err)
		}
		d.Ack(ctx)
		if _, err := h.invite(ctx, "echo", pcmuOffer(40002)); statusOf(err) != 503 {
			t.Fatalf("second call: %v, want 503", err)
		}
		if by := h.srv.Stats().RefusedBy; by[csip.RefusedPorts] != 1 {
			t.Errorf("refusals by reason %v, want ports: 1", by)
		}
		d.Bye(ctx)
		waitFor(t, "port back in the pool", func() bool { return h.pool.InUse() == 0 })
		d2, err := h.invite(ctx, "echo", pcmuOffer(40000))
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		d2.Ack(ctx)
		d2.Bye(ctx)
	})
}

func TestRTPInactivityEndsCallWithBye(t *testing.T) {
	h := newHarness(t, opts{inactivity: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.invite(ctx, "echo", pcmuOffer(40000))
	if err != nil {
		t.Fatal(err)
	}
	d.Ack(ctx)
	start := time.Now()
	select {
	case id := <-h.byes:
		if id != d.InviteRequest.CallID().Value() {
			t.Fatalf("BYE for another call %q", id)
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Fatalf("BYE after %v, before the 1 s timeout", el)
		}
	case <-ctx.Done():
		t.Fatal("no BYE from cloak after RTP inactivity")
	}
	waitFor(t, "port released", func() bool { return h.pool.InUse() == 0 })
}

func TestLateOfferAnswerFromAck(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.invite(ctx, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := csip.ParseOffer(d.InviteResponse.Body())
	if err != nil {
		t.Fatalf("200 to a late offer must carry our offer: %v", err)
	}
	if !strings.Contains(string(d.InviteResponse.Body()), "PCMA/8000") || offer.Media.EventPT == 0 {
		t.Fatalf("our offer lacks PCMA or telephone-event:\n%s", d.InviteResponse.Body())
	}
	sock := rtpSocket(t)
	myPort := sock.LocalAddr().(*net.UDPAddr).Port
	// Answer PCMA only: cloak must switch to it.
	answer := offerSDP(myPort, "8", "a=rtpmap:8 PCMA/8000")
	ack := siplib.NewRequest(siplib.ACK, d.InviteResponse.Contact().Address)
	ack.SetBody(answer)
	ack.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
	if err := d.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
	// Send PCMA towards cloak and expect PCMA back.
	for i := 0; i < 20; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 7}, Payload: payloadFor(i)}
		b, _ := p.Marshal()
		sock.WriteToUDPAddrPort(b, offer.Media.Remote)
		time.Sleep(2 * time.Millisecond)
	}
	got := readRTP(sock, 300*time.Millisecond)
	if len(got) < 15 {
		t.Fatalf("echoed %d of 20 packets after late offer", len(got))
	}
	if got[0].PayloadType != 8 {
		t.Fatalf("echo PT %d, want PCMA 8", got[0].PayloadType)
	}
	d.Bye(ctx)
}

func TestReinviteHoldAndResume(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	myPort := sock.LocalAddr().(*net.UDPAddr).Port
	d, err := h.invite(ctx, "echo", pcmuOffer(myPort))
	if err != nil {
		t.Fatal(err)
	}
	d.Ack(ctx)
	ans, _ := csip.ParseAnswer(d.InviteResponse.Body())

	reinvite := func(dir string) *siplib.Response {
		t.Helper()
		req := siplib.NewRequest(siplib.INVITE, d.InviteResponse.Contact().Address)
		req.SetBody(offerSDP(myPort, "0 101", "a=rtpmap:101 telephone-event/8000", "a="+dir))
		req.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
		res, err := d.Do(ctx, req)
		if err != nil {
			t.Fatalf("re-INVITE: %v", err)
		}
		ack := siplib.NewRequest(siplib.ACK, d.InviteResponse.Contact().Address)
		ack.AppendHeader(siplib.HeaderClone(res.To()))
		ack.AppendHeader(siplib.HeaderClone(res.From()))
		ack.AppendHeader(siplib.HeaderClone(res.CallID()))
		ack.AppendHeader(&siplib.CSeqHeader{SeqNo: res.CSeq().SeqNo, MethodName: siplib.ACK})
		ack.SetDestination(h.addr.String())
		h.client.WriteRequest(ack)
		return res
	}
	res := reinvite("sendonly")
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Fatalf("hold: %s\n%s", res.StartLine(), res.Body())
	}
	// Filler sent between the answer and the hold (media.Endpoint.StartFill:
	// a packet every 20 ms from the answer on) is legitimate and may still
	// wait in the socket: read it away. The 200 OK came after the direction
	// changed, and loopback delivers a send at once, so from here on
	// nothing at all may arrive, filler included.
	readRTP(sock, 50*time.Millisecond)
	sendRTP(t, sock, ans.Remote, 10, 99)
	if got := readRTP(sock, 200*time.Millisecond); len(got) != 0 {
		t.Fatalf("cloak sent %d packets while the caller held the call", len(got))
	}
	res = reinvite("sendrecv")
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=sendrecv") {
		t.Fatalf("resume: %s\n%s", res.StartLine(), res.Body())
	}
	sendRTP(t, sock, ans.Remote, 10, 99)
	if got := readRTP(sock, 300*time.Millisecond); len(got) < 8 {
		t.Fatalf("after resume cloak echoed %d of 10", len(got))
	}
	d.Bye(ctx)
}

func TestCancelWhileRingingGives487(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.dc.Invite(ctx, h.uri("ring"), pcmuOffer(40000), siplib.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	ringing := make(chan struct{}, 1)
	actx, acancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- d.WaitAnswer(actx, sipgo.AnswerOptions{OnResponse: func(res *siplib.Response) error {
			if res.StatusCode == 180 {
				select {
				case ringing <- struct{}{}:
				default:
				}
			}
			return nil
		}})
	}()
	select {
	case <-ringing:
	case <-ctx.Done():
		t.Fatal("no 180")
	}
	waitFor(t, "port allocated", func() bool { return h.pool.InUse() == 1 })
	acancel() // WaitAnswer sends CANCEL when its context ends
	err = <-errc
	if err == nil {
		t.Fatal("ringing call was answered")
	}
	waitFor(t, "cancelled call cleaned up", func() bool { return h.srv.Active() == 0 && h.pool.InUse() == 0 })
}
