package call_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/recorder"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
)

// testAgent is an agent's softphone: it answers cloak's INVITE (or
// rejects it), keeps every RTP packet it receives with its arrival time,
// and can key RFC 4733 digits and hang up.
type testAgent struct {
	t      *testing.T
	name   string
	port   int
	reject int // answer with this status instead of 200 (0 = answer)
	noAns  bool
	// ringFor keeps the phone ringing this long before it answers.
	ringFor time.Duration
	sock    *net.UDPConn

	mu       sync.Mutex
	rx       []agentPacket
	dialog   *sipgo.DialogServerSession
	remote   netip.AddrPort
	invites  int
	notifies []string // sipfrag bodies of NOTIFYs (REFER progress)
	answered chan struct{}
	ua       *sipgo.UserAgent
	seq      uint16
	ts       uint32
}

type agentPacket struct {
	at  time.Time
	pkt rtp.Packet
}

func newTestAgent(t *testing.T, name string) *testAgent {
	t.Helper()
	a := &testAgent{t: t, name: name, port: freePort(t), answered: make(chan struct{}, 4)}
	a.sock = rtpSocket(t)
	go a.readRTP()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("agent-"+name), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	a.ua = ua
	addr := fmt.Sprintf("127.0.0.1:%d", a.port)
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(addr))
	srv, _ := sipgo.NewServer(ua)
	dc := sipgo.NewDialogServerCache(cli, siplib.ContactHeader{Address: siplib.Uri{User: name, Host: "127.0.0.1", Port: a.port}})
	srv.OnInvite(func(req *siplib.Request, tx siplib.ServerTransaction) {
		a.mu.Lock()
		a.invites++
		a.mu.Unlock()
		d, err := dc.ReadInvite(req, tx)
		if err != nil {
			return
		}
		_ = d.Respond(180, "Ringing", nil)
		a.mu.Lock()
		noAns, reject, ringFor := a.noAns, a.reject, a.ringFor
		a.mu.Unlock()
		if ringFor > 0 {
			select {
			case <-time.After(ringFor):
			case <-d.Context().Done():
				return
			}
		}
		if noAns {
			<-d.Context().Done()
			return
		}
		if reject != 0 {
			_ = d.Respond(reject, "Busy Here", nil)
			return
		}
		offer, err := csip.ParseOffer(req.Body())
		if err != nil {
			_ = d.Respond(488, "Not Acceptable Here", nil)
			return
		}
		a.mu.Lock()
		a.remote = offer.Media.Remote
		a.dialog = d
		a.mu.Unlock()
		ans, _ := offer.Answer(csip.LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: a.sock.LocalAddr().(*net.UDPAddr).Port, SessionID: 5, Version: 1})
		if err := d.Respond(200, "OK", ans, siplib.NewHeader("Content-Type", "application/sdp")); err != nil {
			return
		}
		a.answered <- struct{}{}
		<-d.Context().Done()
	})
	srv.OnAck(func(req *siplib.Request, tx siplib.ServerTransaction) { _ = dc.ReadAck(req, tx) })
	srv.OnBye(func(req *siplib.Request, tx siplib.ServerTransaction) { _ = dc.ReadBye(req, tx) })
	srv.OnNotify(func(req *siplib.Request, tx siplib.ServerTransaction) {
		a.mu.Lock()
		a.notifies = append(a.notifies, string(req.Body()))
		a.mu.Unlock()
		_ = tx.Respond(siplib.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{}, 1)
	go srv.ListenAndServe(context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready)), "udp", addr)
	<-ready
	time.Sleep(50 * time.Millisecond)
	t.Cleanup(func() { cancel(); ua.Close() })
	return a
}

func (a *testAgent) uri() string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", a.name, a.port) }

func (a *testAgent) readRTP() {
	buf := make([]byte, 1500)
	for {
		n, err := a.sock.Read(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
			a.mu.Lock()
			a.rx = append(a.rx, agentPacket{at: time.Now(), pkt: p})
			a.mu.Unlock()
		}
	}
}

// received returns the packets received in [from, to).
func (a *testAgent) received(from, to time.Time) []rtp.Packet {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []rtp.Packet
	for _, p := range a.rx {
		if !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p.pkt)
		}
	}
	return out
}

func (a *testAgent) send(pt uint8, marker bool, ts uint32, payload []byte) {
	a.mu.Lock()
	a.seq++
	seq, dst := a.seq, a.remote
	a.mu.Unlock()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 0xA6E27, Marker: marker}, Payload: payload}
	b, _ := p.Marshal()
	a.sock.WriteToUDPAddrPort(b, dst)
}

// key sends digits as RFC 4733 events.
func (a *testAgent) key(digits string) {
	enc, _ := dtmf.NewEncoder(dtmf.EncoderConfig{})
	for i := 0; i < len(digits); i++ {
		pkts, _ := enc.Append(nil, digits[i], a.ts)
		start := time.Now()
		for _, p := range pkts {
			time.Sleep(time.Until(start.Add(p.SendAt)))
			a.send(101, p.Marker, p.Timestamp, p.Payload[:])
		}
		a.ts += 1600
		time.Sleep(60 * time.Millisecond)
	}
}

// talk sends n 20 ms frames of a 700 Hz tone (not a DTMF frequency).
func (a *testAgent) talk(n int) {
	for i := 0; i < n; i++ {
		a.ts += 160
		a.send(0, false, a.ts, toneFrame(700, i))
		time.Sleep(20 * time.Millisecond)
	}
}

func toneFrame(hz float64, i int) []byte {
	pcm := make([]int16, 160)
	for j := range pcm {
		pcm[j] = int16(6000 * math.Sin(2*math.Pi*hz*float64(i*160+j)/8000))
	}
	return audio.CodecPCMU().Encode(pcm, nil)
}

func (a *testAgent) hangup() {
	a.mu.Lock()
	d := a.dialog
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d != nil {
		_ = d.Bye(ctx)
	}
}

// dtmfIn runs the in-band detector over received PCMU audio and counts
// telephone-event packets.
func dtmfIn(pkts []rtp.Packet) (events, inband int) {
	det, _ := dtmf.NewDetector(dtmf.DetectorConfig{})
	for _, p := range pkts {
		if p.PayloadType == 101 {
			events++
			continue
		}
		if p.PayloadType != 0 {
			continue
		}
		pcm := audio.CodecPCMU().Decode(p.Payload, nil)
		for _, ev := range det.Process(pcm) {
			if ev.Kind == dtmf.KindEnd {
				inband++
			}
		}
	}
	return events, inband
}

func newAgentHarness(t *testing.T, agents ...*testAgent) *harness {
	t.Helper()
	return newAgentHarnessEnded(t, nil, agents...)
}

// newAgentHarnessEnded is newAgentHarness handing each ended call's
// Summary to onEnded.
func newAgentHarnessEnded(t *testing.T, onEnded func(call.Summary), agents ...*testAgent) *harness {
	t.Helper()
	flows, err := ivr.LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t)
	var acfg []acd.AgentConfig
	for _, a := range agents {
		acfg = append(acfg, acd.AgentConfig{Name: a.name, URI: a.uri(), Queues: []string{"sales", "payments"}})
	}
	dir, err := acd.NewDirectory(acfg, []acd.QueueConfig{
		{Name: "sales", Timeout: 6 * time.Second, RingTimeout: 2 * time.Second, MaskDTMF: true, Collect: true},
		{Name: "payments", Timeout: 4 * time.Second, RingTimeout: 2 * time.Second, MaskDTMF: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, opts{flows: flows, endpoints: map[string]string{"payment_gateway": gw}, prompts: os.DirFS("../testdata/prompts"),
		dir: dir, secureCode: "*7", secureFlow: "secure-pay", onEnded: onEnded})
}

// dialMainToSales calls "main", picks 2 and waits for an agent to answer.
func dialMainToSales(t *testing.T, h *harness, ctx context.Context) (*caller, *call.Interaction, *sipgo.DialogClientSession) {
	t.Helper()
	c, d, _ := dialCaller(t, h, ctx, "main", pcmuOffer)
	c.send(0, true, 0, make([]byte, 160))
	ia := waitStep(t, h, "welcome", 20*time.Second)
	c.key("2")
	waitStep(t, h, "transferring", 20*time.Second)
	return c, ia, d
}

func waitAnswered(t *testing.T, a *testAgent, within time.Duration) {
	t.Helper()
	select {
	case <-a.answered:
	case <-time.After(within):
		t.Fatalf("agent %s was not bridged", a.name)
	}
}

// waitState waits for a "state" event with the given state.
func waitState(t *testing.T, ia *call.Interaction, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, ev := range ia.Events() {
			if ev.Type == "state" && ev.State == state {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no state %q event within %v", state, within)
}

func waitEvent(t *testing.T, ia *call.Interaction, typ string, within time.Duration) call.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, ev := range ia.Events() {
			if ev.Type == typ {
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q event within %v", typ, within)
	return call.Event{}
}

func TestAgentReferredSecurePaymentReturnsToAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	alice := newTestAgent(t, "alice")
	h := newAgentHarness(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, ia, d := dialMainToSales(t, h, ctx)
	waitAnswered(t, alice, 15*time.Second)
	// alice's phone signals the answer as it sends its 200; cloak marks her
	// busy once it has ACKed and set up the leg.
	waitFor(t, "agent busy once bridged", func() bool { return h.mgr.Directory().Agents()[0].State == "busy" })
	// Bridged: the caller's audio reaches the agent.
	for i := 0; i < 25; i++ {
		c.send(0, false, uint32(160*(i+1)), toneFrame(500, i))
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(alice.received(time.Time{}, time.Now())); n < 15 {
		t.Fatalf("agent received %d packets while bridged", n)
	}

	// The agent keys *7: the caller goes into secure-pay, the agent is reserved.
	alice.key("*7")
	waitEvent(t, ia, "secure_started", 5*time.Second)
	secureFrom := time.Now()
	if st := h.mgr.Directory().Agents()[0].State; st != "reserved" {
		t.Fatalf("agent state %s during the secure flow, want reserved", st)
	}
	card := "4111111111111111"
	exp := time.Now().AddDate(2, 0, 0).Format("0106")
	time.Sleep(300 * time.Millisecond)
	c.key(card + "#")
	waitStep(t, h, "keep_last4", 30*time.Second)
	c.key(exp)
	waitStep(t, h, "get_expiry", 20*time.Second)
	c.key("123#")
	ended := waitEvent(t, ia, "secure_ended", 30*time.Second)
	secureTo := time.Now()
	if ended.Outputs["payment_result"] != "approved" || ended.Outputs["card_last4"] != "1111" {
		t.Fatalf("outputs told to the agent: %v", ended.Outputs)
	}

	// Evidence of silence towards the agent during the secure part.
	during := alice.received(secureFrom, secureTo)
	events, inband := dtmfIn(during)
	if events != 0 || inband != 0 {
		t.Fatalf("agent received %d telephone-event packets and %d in-band digits during the secure flow", events, inband)
	}
	// Masked progress only: the agent's events show stars, never digits.
	for _, ev := range ia.Events() {
		if ev.Type == "digit" && ev.Mask != "*" {
			t.Fatalf("progress event shows %q", ev.Mask)
		}
	}
	// Back with the agent: both directions flow again.
	if st := h.mgr.Directory().Agents()[0].State; st != "busy" {
		t.Fatalf("agent state %s after return, want busy", st)
	}
	before := len(alice.received(time.Time{}, time.Now()))
	for i := 0; i < 25; i++ {
		c.send(0, false, uint32(160*(i+100)), toneFrame(500, i))
		time.Sleep(20 * time.Millisecond)
	}
	go alice.talk(25)
	got := readRTP(c.sock, 400*time.Millisecond)
	if after := len(alice.received(time.Time{}, time.Now())); after-before < 15 {
		t.Fatalf("after return the agent received %d packets", after-before)
	}
	if len(got) < 10 {
		t.Fatalf("after return the caller received %d packets from the agent", len(got))
	}
	d.Bye(ctx)
	waitFor(t, "agent available after the call", func() bool { return h.mgr.Directory().Agents()[0].State == "available" })
	if logs := h.logs.String(); containsAny(logs, card, card[:8], exp) {
		t.Fatal("the log holds collected digits")
	}
}

// secureViaAPI dials main → sales, waits for agent to answer, and sends
// the caller into secure-pay through the API path; it returns once the
// secure segment has started.
func secureViaAPI(t *testing.T, h *harness, agent *testAgent, ctx context.Context) (*caller, *call.Interaction, *sipgo.DialogClientSession) {
	t.Helper()
	c, ia, d := dialMainToSales(t, h, ctx)
	waitAnswered(t, agent, 15*time.Second)
	// The agent's 200 is not the bridge: cloak bridges once it has ACKed
	// and set up the leg, and only a bridged call can go secure.
	waitState(t, ia, "bridged", 5*time.Second)
	if err := ia.RequestSecure("secure-pay", "api"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ia, "secure_started", 5*time.Second)
	return c, ia, d
}

func TestAgentHangsUpDuringSecureFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	alice := newTestAgent(t, "alice")
	h := newAgentHarness(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, ia, _ := secureViaAPI(t, h, alice, ctx)
	alice.mu.Lock()
	alice.noAns = true // she steps away: the payments fallback finds nobody
	alice.mu.Unlock()
	alice.hangup()
	waitFor(t, "agent available once they hung up", func() bool { return h.mgr.Directory().Agents()[0].State == "available" })
	// The caller carries on: it is still up and in secure mode.
	if ia.Mode() != call.Secure {
		t.Fatalf("mode %s after the agent left", ia.Mode())
	}
	c.key("#") // give up on the card: not_taken → back_to_agent → no agent → payments queue
	waitStep(t, h, "get_card", 30*time.Second)
	// The flow cannot return to the agent; its fallback (payments queue, then
	// goodbye) ends the call: cloak hangs up, never bridging to nothing.
	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("the caller was not disconnected after the fallback")
	}
	var sawNoAgent bool
	for _, ev := range ia.TraceEvents() {
		if ev.Step == "back_to_agent" && ev.Branch == "on_no_agent" {
			sawNoAgent = true
		}
	}
	if !sawNoAgent {
		t.Fatal("return_to_agent did not take on_no_agent")
	}
}

func TestCallerHangsUpDuringSecureFlowFreesAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	alice := newTestAgent(t, "alice")
	h := newAgentHarness(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, d := secureViaAPI(t, h, alice, ctx)
	if st := h.mgr.Directory().Agents()[0].State; st != "reserved" {
		t.Fatalf("agent %s, want reserved", st)
	}
	d.Bye(ctx)
	waitFor(t, "agent available at once", func() bool { return h.mgr.Directory().Agents()[0].State == "available" })
}

func TestQueueOffersLongestIdleThenNextOnNoAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	busy := newTestAgent(t, "bob")
	busy.reject = 486
	idle := newTestAgent(t, "carol")
	h := newAgentHarness(t, busy, idle)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// bob has been idle as long as carol or longer and is configured
	// first, so he is offered the call first; he rejects: carol must get it.
	_, _, d := dialMainToSales(t, h, ctx)
	waitAnswered(t, idle, 15*time.Second)
	busy.mu.Lock()
	tries := busy.invites
	busy.mu.Unlock()
	idle.mu.Lock()
	carolTries := idle.invites
	idle.mu.Unlock()
	if tries != 1 || carolTries != 1 {
		t.Fatalf("bob was offered the call %d times and carol %d, want 1 each (bob first)", tries, carolTries)
	}
	// carol's phone signals the answer as it sends its 200; cloak marks
	// her busy once it has ACKed and set up the leg.
	states := map[string]string{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, a := range h.mgr.Directory().Agents() {
			states[a.Name] = a.State
		}
		if states["carol"] == "busy" && states["bob"] == "available" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %v", states)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.met.count("unqueued sales answered") != 1 {
		t.Errorf("metrics events %q: want the caller leaving sales answered", h.met.list())
	}
	d.Bye(ctx)
}

func TestQueueTimeoutWhenNoAgentAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	dave := newTestAgent(t, "dave")
	dave.noAns = true
	h := newAgentHarness(t, dave)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dialMainToSales(t, h, ctx)
	// sales times out after 6 s with dave ringing 2 s each time; the flow's
	// failure path hangs up.
	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("no hang-up after the queue timeout")
	}
	dave.mu.Lock()
	n := dave.invites
	dave.mu.Unlock()
	if n < 2 {
		t.Fatalf("dave was offered the call %d times in 6 s with a 2 s ring timeout", n)
	}
	if st := h.mgr.Directory().Agents()[0].State; st != "available" {
		t.Fatalf("dave is %s after ringing out", st)
	}
	if h.met.count("queued sales") != 1 || h.met.count("unqueued sales timeout") != 1 {
		t.Errorf("metrics events %q: want the caller queued in sales once and leaving it on timeout", h.met.list())
	}
}

// TestQueueRedialsARefusingAgentAtAPace: an agent whose phone fails at
// once (here 486 at the first INVITE; over TLS, a refused handshake) is
// offered the call again when everyone has been tried, but after a pause:
// not hundreds of INVITEs a second for the whole queue timeout, as when
// baresip refused cloak's TLS handshake in the e2e interop test.
func TestQueueRedialsARefusingAgentAtAPace(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	erin := newTestAgent(t, "erin")
	erin.reject = 486
	h := newAgentHarness(t, erin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dialMainToSales(t, h, ctx)
	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("no hang-up after the queue timeout")
	}
	erin.mu.Lock()
	n := erin.invites
	erin.mu.Unlock()
	// sales waits 6 s; one offer per 500 ms pause is at most 13.
	if n < 2 || n > 15 {
		t.Fatalf("erin, refusing at once, was offered the call %d times in 6 s, want 2-15", n)
	}
}

func TestDirectoryNeverOffersReservedOrBusyAgents(t *testing.T) {
	d, err := acd.NewDirectory([]acd.AgentConfig{
		{Name: "a", URI: "sip:a@127.0.0.1", Queues: []string{"q"}},
		{Name: "b", URI: "sip:b@127.0.0.1", Queues: []string{"q"}},
		{Name: "c", Password: "pw", Queues: []string{"q"}},
	}, []acd.QueueConfig{{Name: "q"}})
	if err != nil {
		t.Fatal(err)
	}
	first := d.Offer("q", "call1", nil)
	if first == nil {
		t.Fatal("no agent offered")
	}
	d.Set(first, acd.Reserved)
	second := d.Offer("q", "call2", nil)
	if second == nil || second.Name() == first.Name() {
		t.Fatalf("reserved agent offered again")
	}
	d.Set(second, acd.Busy)
	if a := d.Offer("q", "call3", nil); a != nil {
		t.Fatalf("offered %s while the others are reserved/busy and c is logged out", a.Name())
	}
	d.Register("c", "sip:c@127.0.0.1:5099", nil, time.Minute)
	if a := d.Offer("q", "call3", nil); a == nil || a.Name() != "c" {
		t.Fatal("registered agent not offered")
	}
	// Longest idle first: release first, then second; first is idle longer.
	d.Set(first, acd.Available)
	time.Sleep(5 * time.Millisecond)
	d.Set(second, acd.Available)
	if a := d.Offer("q", "call4", nil); a == nil || a.Name() != first.Name() {
		t.Fatalf("longest-idle rule broken")
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if len(x) > 3 && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// TestMaskingWhileTalking: bridged with masking on, the caller keys digits
// in-band (tones over speech-like audio) and as RFC 4733 events; the agent
// receives no event and its audio holds no digit the detector can find,
// while ordinary audio still gets through.
func TestMaskingWhileTalking(t *testing.T) {
	alice := newTestAgent(t, "alice")
	h := newHarness(t, opts{routes: map[string]string{"relay": "dial:" + alice.uri()}, prompts: os.DirFS("../testdata/prompts")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, d, _ := dialCaller(t, h, ctx, "relay", pcmuOffer)
	waitAnswered(t, alice, 5*time.Second)

	// 2 s of audio: a 500 Hz "voice" with the digits 4, 1, 7 keyed in-band
	// (80 ms tones, -10 dBm0) on top, then RFC 4733 digits.
	var pcm []int16
	for i := 0; i < 16000; i++ {
		pcm = append(pcm, int16(2000*math.Sin(2*math.Pi*500*float64(i)/8000)))
	}
	for k, digit := range []byte("417") {
		tone, err := dtmf.AppendTone(nil, digit, dtmf.ToneSpec{Duration: 80 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		at := 3000 + k*4000
		for j, v := range tone {
			pcm[at+j] = pcm[at+j]/4 + v
		}
	}
	start := time.Now()
	for i := 0; i+160 <= len(pcm); i += 160 {
		c.send(0, i == 0, uint32(i), audio.CodecPCMU().Encode(pcm[i:i+160], nil))
		time.Sleep(20 * time.Millisecond)
	}
	c.ts = uint32(len(pcm))
	c.key("99")
	time.Sleep(300 * time.Millisecond)
	got := alice.received(start, time.Now())
	if len(got) < 80 {
		t.Fatalf("agent received %d packets of the caller's audio", len(got))
	}
	events, inband := dtmfIn(got)
	if events != 0 || inband != 0 {
		t.Fatalf("agent received %d telephone-event packets and %d in-band digits", events, inband)
	}
	d.Bye(ctx)
}

// TestBridgeTranscodesPCMAToPCMU: the caller speaks PCMA, the agent's phone
// PCMU; audio crosses both ways in the other codec with its tone intact.
func TestBridgeTranscodesPCMAToPCMU(t *testing.T) {
	alice := newTestAgent(t, "alice")
	h := newHarness(t, opts{routes: map[string]string{"relay": "dial:" + alice.uri()}, prompts: os.DirFS("../testdata/prompts")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, d, ans := dialCaller(t, h, ctx, "relay", func(port int) []byte { return offerSDP(port, "8", "a=rtpmap:8 PCMA/8000") })
	waitAnswered(t, alice, 5*time.Second)
	if ans.Codec.Name != "PCMA" {
		t.Fatalf("caller leg negotiated %s", ans.Codec.Name)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		pcm := make([]int16, 160)
		for j := range pcm {
			pcm[j] = int16(8000 * math.Sin(2*math.Pi*500*float64(i*160+j)/8000))
		}
		c.send(8, i == 0, uint32(i*160), audio.CodecPCMA().Encode(pcm, nil))
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	got := withoutFiller(alice.received(start, time.Now()))
	if len(got) < 40 {
		t.Fatalf("agent received %d packets", len(got))
	}
	var pcm []int16
	for _, p := range got {
		if p.PayloadType != 0 {
			t.Fatalf("agent received PT %d, want PCMU 0", p.PayloadType)
		}
		pcm = append(pcm, audio.CodecPCMU().Decode(p.Payload, nil)...)
	}
	if hz := zeroCrossingHz(pcm[800:]); hz < 450 || hz > 550 {
		t.Fatalf("transcoded tone is %.0f Hz, want 500", hz)
	}
	go alice.talk(40)
	back := readRTP(c.sock, 500*time.Millisecond)
	if len(back) < 20 || back[0].PayloadType != 8 {
		t.Fatalf("caller received %d packets (want PCMA from the agent)", len(back))
	}
	d.Bye(ctx)
}

// zeroCrossingHz estimates a pure tone's frequency at 8 kHz.
func zeroCrossingHz(pcm []int16) float64 {
	n := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(pcm)) / 8000)
}

// refer sends REFER in the agent's dialog (RFC 3515), as a softphone's
// transfer button does, and returns the status.
func (a *testAgent) refer(t *testing.T, target string) int {
	a.mu.Lock()
	d := a.dialog
	a.mu.Unlock()
	req := siplib.NewRequest(siplib.REFER, d.InviteRequest.Contact().Address)
	req.AppendHeader(siplib.NewHeader("Refer-To", "<"+target+">"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := d.Do(ctx, req)
	if err != nil {
		t.Fatalf("REFER: %v", err)
	}
	return res.StatusCode
}

// TestAgentReferAndRecordingFeatureCode: the agent's REFER to
// sip:secure-pay@… starts the secure flow (202, agent reserved), and the
// agent's *9 pauses the recording with an "agent" marker.
func TestAgentReferAndRecordingFeatureCode(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	alice := newTestAgent(t, "alice")
	flows, err := ivr.LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := acd.NewDirectory([]acd.AgentConfig{{Name: "alice", URI: alice.uri(), Queues: []string{"sales"}}},
		[]acd.QueueConfig{{Name: "sales", Timeout: 6 * time.Second, RingTimeout: 2 * time.Second, MaskDTMF: true}})
	recDir := t.TempDir()
	h := newHarness(t, opts{flows: flows, endpoints: map[string]string{"payment_gateway": startGateway(t)}, prompts: os.DirFS("../testdata/prompts"),
		dir: dir, secureFlow: "secure-pay", secureCode: "*7", recordCode: "*9",
		recordingDir: recDir, recordRoutes: map[string]string{"main": call.RecordAlways}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, ia, d := dialMainToSales(t, h, ctx)
	waitAnswered(t, alice, 15*time.Second)

	alice.key("*9")
	time.Sleep(300 * time.Millisecond)
	alice.key("*9") // and resume
	if code := alice.refer(t, "sip:secure-pay@127.0.0.1"); code != 202 {
		t.Fatalf("REFER answered %d, want 202", code)
	}
	waitEvent(t, ia, "secure_started", 5*time.Second)
	if st := h.mgr.Directory().Agents()[0].State; st != "reserved" {
		t.Fatalf("agent %s after REFER, want reserved", st)
	}
	waitFor(t, "NOTIFY 100 Trying (RFC 3515 §2.4.5)", func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return len(alice.notifies) > 0 && strings.HasPrefix(alice.notifies[0], "SIP/2.0 100")
	})
	if code := alice.refer(t, "sip:main@127.0.0.1"); code != 403 {
		t.Fatalf("REFER to a normal flow answered %d, want 403", code)
	}
	d.Bye(ctx)
	waitFor(t, "call cleaned up", func() bool { return h.mgr.Active() == 0 })
	// The call leaves the table before its recording is finished (the
	// WAV, then the sidecar, are renamed into place): wait for both.
	var wavs []string
	var sc recorder.Sidecar
	var scErr error
	waitFor(t, "recording saved with its sidecar", func() bool {
		wavs, _ = filepath.Glob(filepath.Join(recDir, "*", "*", "*", "*.wav"))
		if len(wavs) != 1 {
			return false
		}
		sc, scErr = recorder.ReadSidecar(wavs[0])
		return scErr == nil
	})
	reasons := map[recorder.Reason]bool{}
	for _, m := range sc.Markers {
		reasons[m.Reason] = true
	}
	if !reasons[recorder.ReasonAgent] || !reasons[recorder.ReasonSecure] {
		t.Fatalf("markers %+v: want an agent pause and the secure pause", sc.Markers)
	}
}
