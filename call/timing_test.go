package call_test

import (
	"context"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
)

// responseLog records the status codes of every response to one INVITE.
type responseLog struct {
	mu    sync.Mutex
	codes []int
}

func (r *responseLog) on(res *siplib.Response) error {
	r.mu.Lock()
	r.codes = append(r.codes, res.StatusCode)
	r.mu.Unlock()
	return nil
}

func (r *responseLog) get() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.codes...)
}

// inviteLogged places a call, records each response and waits for the
// final one.
func inviteLogged(t *testing.T, h *harness, ctx context.Context, user string, port int) (*sipgo.DialogClientSession, *responseLog) {
	t.Helper()
	d, err := h.dc.Invite(ctx, h.uri(user), pcmuOffer(port), siplib.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	rl := &responseLog{}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: rl.on}); err != nil {
		t.Fatalf("%s: %v (responses %v)", user, err, rl.get())
	}
	return d, rl
}

// noRingingBefore200 fails unless codes is 100s then one 200: no 180 or
// 183 ahead of an immediate answer.
func noRingingBefore200(t *testing.T, what string, codes []int) {
	t.Helper()
	if len(codes) == 0 || codes[len(codes)-1] != 200 {
		t.Fatalf("%s: responses %v, want 100 (optional) then 200", what, codes)
	}
	for _, c := range codes[:len(codes)-1] {
		if c != 100 {
			t.Fatalf("%s: responses %v: %d before the 200, want only 100 Trying", what, codes, c)
		}
	}
}

// TestImmediateAnswerSendsNo180: a route that answers at once answers
// with 100 Trying then 200 OK, never 180 Ringing before it: a 180 and a
// 200 microseconds apart were delivered in the wrong order by a
// two-worker Kamailio (the UDP workers race), and nobody hears that
// ringing. The "ring" route, which rings and never answers, still sends
// 180 (TestCancelWhileRingingGives487).
//
// sipgo's client hands each response to its own goroutine, so it may see a
// 180 after the 200 and then drop it: a 180 can slip past one call, which
// is why each route is called several times. The e2e tests (sipp reads its
// socket in order) are the strict check.
func TestImmediateAnswerSendsNo180(t *testing.T) {
	h := newHarness(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, route := range []string{"echo", "tone"} {
		for i := range 3 {
			sock := rtpSocket(t)
			d, rl := inviteLogged(t, h, ctx, route, sock.LocalAddr().(*net.UDPAddr).Port)
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
			noRingingBefore200(t, route, rl.get())
			if err := d.Bye(ctx); err != nil {
				t.Fatalf("%s call %d: bye: %v", route, i, err)
			}
		}
	}
	waitFor(t, "calls cleaned up", func() bool { return h.mgr.Active() == 0 })
}

// TestAgentRingingIsRingbackAudio: a route that offers the call to an
// agent ("dial:") answers the caller at once (no 180 ahead of the 200) and,
// while the agent's phone rings, plays the caller ringback as audio on the
// answered call; when the agent answers the two are bridged. This is the
// design: cloak never holds a caller in early media, so it sends no 183.
func TestAgentRingingIsRingbackAudio(t *testing.T) {
	alice := newTestAgent(t, "alice")
	alice.ringFor = 1500 * time.Millisecond
	h := newHarness(t, opts{routes: map[string]string{"agent": "dial:" + alice.uri()}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, rl := inviteLogged(t, h, ctx, "agent", sock.LocalAddr().(*net.UDPAddr).Port)
	answeredAt := time.Now()
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	noRingingBefore200(t, "dial route", rl.get())
	select {
	case <-alice.answered:
		t.Fatal("the agent answered before the caller was: want the caller answered first, the agent ringing after")
	default:
	}

	// While alice rings: ringback (400+450 Hz, 0.4 s on) reaches the caller.
	var loud, total int
	buf := make([]byte, 1500)
	for time.Since(answeredAt) < time.Second {
		_ = sock.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := sock.Read(buf)
		if err != nil {
			continue
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != 0 {
			continue
		}
		total++
		if rms(audio.CodecPCMU().Decode(p.Payload, nil)) > 500 {
			loud++
		}
	}
	if loud < 10 {
		t.Fatalf("caller got %d audio packets (%d with tone) while the agent rang, want ringback", total, loud)
	}
	waitAnswered(t, alice, 5*time.Second)
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "call cleaned up", func() bool { return h.mgr.Active() == 0 })
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(max(1, len(pcm))))
}
