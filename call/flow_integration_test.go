package call_test

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/cloak-voip/cloak/recorder"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
	"github.com/pion/rtp"
)

// caller streams silence to cloak and keys RFC 4733 digits, as a phone does.
type caller struct {
	t    *testing.T
	sock *net.UDPConn
	dst  netip.AddrPort
	seq  uint16
	ts   uint32
	enc  *dtmf.Encoder
}

func (c *caller) send(pt uint8, marker bool, ts uint32, payload []byte) {
	c.seq++
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: c.seq, Timestamp: ts, SSRC: 0xCAFE, Marker: marker}, Payload: payload}
	b, _ := p.Marshal()
	c.sock.WriteToUDPAddrPort(b, c.dst)
}

// key sends digits as RFC 4733 events on PT 101, with 100 ms gaps.
func (c *caller) key(digits string) {
	for i := 0; i < len(digits); i++ {
		pkts, err := c.enc.Append(nil, digits[i], c.ts)
		if err != nil {
			c.t.Fatal(err)
		}
		start := time.Now()
		for _, p := range pkts {
			time.Sleep(time.Until(start.Add(p.SendAt)))
			c.send(101, p.Marker, p.Timestamp, p.Payload[:])
		}
		c.ts += 8000 / 5
		time.Sleep(60 * time.Millisecond)
	}
}

// keyInband keys digits as in-band tones (80 ms at -10 dBm0, 120 ms of
// silence after each) in PCMU frames paced at 20 ms, continuing the
// caller's timestamps.
func (c *caller) keyInband(digits string) {
	for i := 0; i < len(digits); i++ {
		pcm, err := dtmf.AppendTone(nil, digits[i], dtmf.ToneSpec{Duration: 80 * time.Millisecond})
		if err != nil {
			c.t.Fatal(err)
		}
		pcm = append(pcm, make([]int16, 960)...)
		for j := 0; j+160 <= len(pcm); j += 160 {
			c.send(0, false, c.ts, audio.CodecPCMU().Encode(pcm[j:j+160], nil))
			c.ts += 160
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitStep waits until the interaction's trace shows the step ended.
func waitStep(t *testing.T, h *harness, step string, timeout time.Duration) *call.Interaction {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, c := range h.mgr.Calls() {
			for _, ev := range c.TraceEvents() {
				if ev.Step == step {
					return c
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("step %q not reached within %v", step, timeout)
	return nil
}

func newFlowHarness(t *testing.T) *harness {
	t.Helper()
	flows, err := ivr.LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, opts{flows: flows, endpoints: map[string]string{"payment_gateway": startGateway(t)}, prompts: os.DirFS("../testdata/prompts")})
}

// dialCaller places a call to user with the offer built for a new RTP
// socket, ACKs the answer, and returns a caller sending to cloak's media
// address, the dialog and the answer.
func dialCaller(t *testing.T, h *harness, ctx context.Context, user string, offer func(port int) []byte) (*caller, *sipgo.DialogClientSession, csip.Media) {
	t.Helper()
	sock := rtpSocket(t)
	d, err := h.invite(ctx, user, offer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	d.Ack(ctx)
	ans, err := csip.ParseAnswer(d.InviteResponse.Body())
	if err != nil {
		t.Fatalf("answer SDP: %v", err)
	}
	enc, _ := dtmf.NewEncoder(dtmf.EncoderConfig{})
	return &caller{t: t, sock: sock, dst: ans.Remote, enc: enc}, d, ans
}

// startGateway serves the demo payment gateway for the test.
func startGateway(t *testing.T) string {
	gw := httptest.NewServer(ivr.DemoGateway(nil))
	t.Cleanup(gw.Close)
	return gw.URL
}

func TestPayFlowWithRFC4733Digits(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts: ~20 s")
	}
	h := newFlowHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, _ := dialCaller(t, h, ctx, "pay", pcmuOffer)
	c.send(0, true, 0, make([]byte, 160)) // latch

	card := "4111111111111111"
	exp := time.Now().AddDate(2, 0, 0).Format("0106")
	ia := waitStep(t, h, "welcome", 20*time.Second)
	if ia.Mode() != call.Secure {
		t.Fatalf("pay runs in mode %s, want secure", ia.Mode())
	}
	c.key(card + "#")
	waitStep(t, h, "keep_last4", 30*time.Second)
	c.key(exp)
	waitStep(t, h, "get_expiry", 20*time.Second)
	c.key("123#")
	waitStep(t, h, "charge", 20*time.Second)

	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("cloak did not hang up after the payment")
	}
	if ia.Mode() != call.Normal {
		t.Fatalf("mode after the flow: %s", ia.Mode())
	}
	data := ia.Data()
	if data["payment_result"] != "approved" || data["card_last4"] != "1111" {
		t.Fatalf("participant data %v", data)
	}
	segs := ia.Segments()
	if len(segs) != 1 || segs[0].Flow != "pay" || segs[0].End.IsZero() {
		t.Fatalf("secure segments %+v", segs)
	}
	// Nothing the interaction kept may hold the card, expiry or CVV. Times
	// are left out of the haystack: a timestamp may contain "123" by chance.
	var hay strings.Builder
	for k, v := range data {
		hay.WriteString(k + "=" + v + "\n")
	}
	for _, sg := range segs {
		hay.WriteString(sg.Flow + sg.Kind)
		for k, v := range sg.Outputs {
			hay.WriteString(k + "=" + v + "\n")
		}
	}
	for _, ev := range ia.TraceEvents() {
		hay.WriteString(ev.Flow + " " + ev.Step + " " + ev.Action + " " + ev.Branch + " " + ev.Detail + "\n")
	}
	for _, secret := range []string{card, card[:6], exp, "123"} {
		if strings.Contains(hay.String(), secret) {
			t.Fatalf("interaction state holds a collected value (%d digits)", len(secret))
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, card) || strings.Contains(logs, card[:8]) || strings.Contains(logs, exp) {
		t.Fatal("the log holds collected digits")
	}
	if !strings.Contains(logs, "secure segment started") || !strings.Contains(logs, `"digit":"*"`) {
		t.Fatalf("expected the secure segment and masked digits in the debug log:\n%s", logs)
	}
	// Metrics: one segment of pay, left by the flow; every key counted by
	// its source (card and #, expiry, CVV and #), no value anywhere.
	waitFor(t, "the call's end in metrics", func() bool { return h.met.count("ended ") == 1 })
	if h.met.count("secure pay") != 1 || h.met.count("secure_ended pay left true") != 1 || h.met.count("started flow:pay") != 1 {
		t.Errorf("metrics events %q: want one call on flow:pay, one secure segment of pay left after a while", h.met.list())
	}
	if n := h.met.count("digit rfc4733"); n != 25 {
		t.Errorf("metrics counted %d RFC 4733 digits, want 25", n)
	}
	for _, e := range h.met.list() {
		if strings.Contains(e, card[:4]) || strings.Contains(e, exp) {
			t.Fatalf("a metrics event holds a collected value: %q", e)
		}
	}
}

// TestPayFlowInbandWithTelephoneEventNegotiated: the caller's side
// negotiates telephone-event but keys the card as tones (as phones behind
// gateways that pass DTMF in-band do); DTMF mode auto collects them and
// the payment is approved.
func TestPayFlowInbandWithTelephoneEventNegotiated(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts: ~25 s")
	}
	h := newFlowHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _, ans := dialCaller(t, h, ctx, "pay", pcmuOffer)
	if ans.EventPT == 0 {
		t.Fatal("telephone-event was not negotiated")
	}
	c.send(0, true, 0, make([]byte, 160)) // latch
	waitStep(t, h, "welcome", 20*time.Second)
	ia := waitStep(t, h, "welcome", time.Second)
	c.keyInband("4111111111111111#")
	waitStep(t, h, "keep_last4", 30*time.Second)
	c.keyInband(time.Now().AddDate(2, 0, 0).Format("0106"))
	waitStep(t, h, "get_expiry", 20*time.Second)
	c.keyInband("123#")
	select {
	case <-h.byes:
	case <-ctx.Done():
		t.Fatal("cloak did not hang up after the payment")
	}
	if got := ia.Data()["payment_result"]; got != "approved" {
		t.Fatalf("payment_result %q, want approved (data %v)", got, ia.Data())
	}
}

// TestRecordingConsent: with policy "consent" the recording starts paused;
// pressing 1 lifts the pause and the file is kept, pressing 2 (declining)
// discards it: nothing of the call is left on disk.
func TestRecordingConsent(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	flows, err := ivr.LoadDir(os.DirFS("testdata/consent"), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		kept bool
	}{{"1", true}, {"2", false}} {
		t.Run("key "+tc.key, func(t *testing.T) {
			dir := t.TempDir()
			h := newHarness(t, opts{flows: flows, prompts: os.DirFS("../testdata/prompts"),
				recordingDir: dir, recordRoutes: map[string]string{"consent": call.RecordConsent}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, _ := dialCaller(t, h, ctx, "consent", pcmuOffer)
			c.send(0, true, 0, make([]byte, 160))
			time.Sleep(500 * time.Millisecond)
			c.key(tc.key)
			select {
			case <-h.byes:
			case <-ctx.Done():
				t.Fatal("no hang-up")
			}
			waitFor(t, "call cleaned up", func() bool { return h.mgr.Active() == 0 })
			files := func() []string {
				var files []string
				filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
					if err == nil && !e.IsDir() {
						files = append(files, p)
					}
					return nil
				})
				return files
			}
			if !tc.kept {
				if f := files(); len(f) != 0 {
					t.Fatalf("caller declined but files remain: %v", f)
				}
				return
			}
			// The call leaves the table before its recording is finished
			// (the WAV, then the sidecar, are renamed into place): wait for
			// both.
			var sc recorder.Sidecar
			waitFor(t, "consented recording saved with its sidecar", func() bool {
				for _, f := range files() {
					if strings.HasSuffix(f, ".wav") {
						s, err := recorder.ReadSidecar(f)
						sc = s
						return err == nil
					}
				}
				return false
			})
			if len(sc.Markers) == 0 || sc.Markers[0].Reason != recorder.ReasonConsent {
				t.Fatalf("no consent pause marker: %+v", sc.Markers)
			}
		})
	}
}

// TestSecureRouteDarkFromTheAnswer: a call routed to a secure-kind flow
// (the demo "pay") is secure before it is answered — listed as secure,
// its recording paused from its first sample — rather than from the
// moment its flow starts, which left the call's first audio recorded and
// the call listed as normal for a while. The flow's own step adopts the
// segment: one segment, one secure start in metrics. Its SIP capture is
// dark from the 200 OK on.
func TestSecureRouteDarkFromTheAnswer(t *testing.T) {
	flows, err := ivr.LoadDir(os.DirFS("../testdata/flows"), ".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sipCap := &sipSink{}
	h := newHarness(t, opts{flows: flows, endpoints: map[string]string{"payment_gateway": startGateway(t)},
		prompts: os.DirFS("../testdata/prompts"), recordingDir: dir, recordRoutes: map[string]string{"pay": call.RecordAlways},
		sipCapture: sipCap})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, d, _ := dialCaller(t, h, ctx, "pay", pcmuOffer)
	calls := h.mgr.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls listed, want 1", len(calls))
	}
	ia := calls[0]
	if ia.Mode() != call.Secure {
		t.Fatalf("answered pay call in mode %s, want secure from the answer", ia.Mode())
	}
	for i := range 25 { // half a second of audio, then hang up
		c.send(0, i == 0, uint32(i*160), bytes.Repeat([]byte{0x55}, 160))
		time.Sleep(20 * time.Millisecond)
	}
	waitStep(t, h, "welcome", 10*time.Second)
	_ = d.Bye(ctx)
	waitFor(t, "call cleaned up", func() bool { return h.mgr.Active() == 0 })
	// The INVITE came before the segment; its 200 OK and the ACK are
	// inside it. (The BYE is inside it too, but the UA in this process
	// traces its own BYE and the reply after cloak has forgotten the call,
	// so here they reach the process-wide sink: not cloak's side.)
	captured := sipCap.messages()
	if !slices.ContainsFunc(captured, func(l string) bool { return strings.HasPrefix(l, "INVITE ") }) {
		t.Errorf("SIP capture %q: want the INVITE, sent before the segment", captured)
	}
	for _, l := range captured {
		if strings.HasPrefix(l, "SIP/2.0 200") && strings.HasSuffix(l, " INVITE") || strings.HasPrefix(l, "ACK ") {
			t.Errorf("SIP capture %q: %q is inside the secure segment", captured, l)
		}
	}
	if segs := ia.Segments(); len(segs) != 1 || segs[0].Flow != "pay" {
		t.Fatalf("secure segments %+v, want the flow's one", segs)
	}
	if n := h.met.count("secure pay"); n != 1 {
		t.Errorf("metrics: %d secure starts of pay, want 1 (%q)", n, h.met.list())
	}
	// The order is the point: the gate closed before the call was listed
	// (CallStarted) and answered, not when the flow began after them.
	ev := h.met.list()
	if sec, listed, answered := slices.Index(ev, "secure pay"), slices.Index(ev, "started flow:pay"), slices.IndexFunc(ev, func(e string) bool {
		return strings.HasPrefix(e, "answered flow:pay")
	}); sec < 0 || sec > listed || sec > answered {
		t.Errorf("metrics order %q: want the secure start before the call was listed and answered", ev)
	}
	var sc recorder.Sidecar
	waitFor(t, "the recording with its sidecar", func() bool {
		found := false
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !found && strings.HasSuffix(p, ".wav") {
				if s, err := recorder.ReadSidecar(p); err == nil {
					sc, found = s, true
				}
			}
			return nil
		})
		return found
	})
	// The recorder is paused before the pipeline can reach it: the marker
	// starts at the recording's first millisecond.
	if len(sc.Markers) == 0 || sc.Markers[0].Reason != recorder.ReasonSecure || sc.Markers[0].StartMS != 0 {
		t.Fatalf("recording markers %+v, want a secure pause from the recording's start", sc.Markers)
	}
}
