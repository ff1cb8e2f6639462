package call_test

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/ivr"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
)

// summaries collects what Config.OnEnded is handed.
type summaries struct {
	mu  sync.Mutex
	got []call.Summary
}

func (s *summaries) add(sum call.Summary) {
	s.mu.Lock()
	s.got = append(s.got, sum)
	s.mu.Unlock()
}

func (s *summaries) all() []call.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call.Summary(nil), s.got...)
}

// TestOnEndedEchoCall: a call the caller ends with BYE is handed over
// once, with its numbers, route, times and who ended it.
func TestOnEndedEchoCall(t *testing.T) {
	var sums summaries
	h := newHarness(t, opts{onEnded: sums.add})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	before := time.Now()
	d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(sums.all()) != 0 {
		t.Fatal("summary handed over while the call is up")
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the summary", func() bool { return len(sums.all()) == 1 })
	s := sums.all()[0]
	if s.Called != "echo" || s.Target != "echo" || s.Caller == "" || s.SIPCallID != d.InviteRequest.CallID().Value() || s.ID == "" {
		t.Errorf("identity: %+v", s)
	}
	if s.Offered.Before(before) || s.Answered.Before(s.Offered) || !s.Ended.After(s.Answered) {
		t.Errorf("times: offered %v answered %v ended %v", s.Offered, s.Answered, s.Ended)
	}
	if s.SIPEndReason != "bye" || s.Consent != call.ConsentNotAsked || s.Recording != nil || s.Queue != "" {
		t.Errorf("ending: %+v", s)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sums.all()); n != 1 {
		t.Errorf("handed over %d times", n)
	}
}

// TestOnEndedConsent: the recording's result and the consent answer
// reach the summary; a declined recording leaves none.
func TestOnEndedConsent(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	flows, err := ivr.LoadDir(os.DirFS("testdata/consent"), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key     string
		consent string
	}{{"1", call.ConsentAccepted}, {"2", call.ConsentDeclined}} {
		t.Run("key "+tc.key, func(t *testing.T) {
			var sums summaries
			h := newHarness(t, opts{flows: flows, prompts: os.DirFS("../testdata/prompts"), onEnded: sums.add,
				recordingDir: t.TempDir(), recordRoutes: map[string]string{"consent": call.RecordConsent}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, _ := dialCaller(t, h, ctx, "consent", pcmuOffer)
			c.send(0, true, 0, make([]byte, 160))
			time.Sleep(500 * time.Millisecond)
			c.key(tc.key)
			waitFor(t, "the summary", func() bool { return len(sums.all()) == 1 })
			s := sums.all()[0]
			if s.Consent != tc.consent {
				t.Errorf("consent %q, want %q", s.Consent, tc.consent)
			}
			kept := tc.consent == call.ConsentAccepted
			if kept != (s.Recording != nil) {
				t.Fatalf("recording %+v with consent %s", s.Recording, tc.consent)
			}
			if kept {
				if _, err := os.Stat(s.Recording.WAV); err != nil || !strings.HasSuffix(s.Recording.WAV, ".wav") || s.Recording.Meta.SHA256 == "" {
					t.Errorf("recording %+v: %v (the summary must come after the files are in place)", s.Recording, err)
				}
			}
			if len(s.Trace) == 0 {
				t.Error("no flow trace")
			}
		})
	}
}

// TestOnEndedAssertedIdentity: the caller's P-Asserted-Identity (RFC
// 3325) reaches the summary, as the archive stores it.
func TestOnEndedAssertedIdentity(t *testing.T) {
	var sums summaries
	h := newHarness(t, opts{onEnded: sums.add})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.dc.Invite(ctx, h.uri("echo"), pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port),
		siplib.NewHeader("Content-Type", "application/sdp"),
		siplib.NewHeader("P-Asserted-Identity", `"Carrier Name" <tel:+33612345678;cpc=ordinary>`))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the summary", func() bool { return len(sums.all()) == 1 })
	if s := sums.all()[0]; s.AssertedID != "+33612345678" || s.AssertedName != "Carrier Name" {
		t.Errorf("asserted identity %q %q", s.AssertedID, s.AssertedName)
	}
}

// TestOnEndedQualityEchoCall: the summary carries the caller leg's final
// quality, read after close ended the leg: the 50 packets sent, none
// lost, a good MOS, and no agent leg on an echo call.
func TestOnEndedQualityEchoCall(t *testing.T) {
	var sums summaries
	h := newHarness(t, opts{onEnded: sums.add})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	d, err := h.invite(ctx, "echo", pcmuOffer(sock.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	ans, err := csip.ParseAnswer(d.InviteResponse.Body())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	sendRTP(t, sock, ans.Remote, 50, 0x55667788)
	if got := withoutFiller(readRTP(sock, 300*time.Millisecond)); len(got) < 45 {
		t.Fatalf("echoed %d of 50 packets", len(got))
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the summary", func() bool { return len(sums.all()) == 1 })
	s := sums.all()[0]
	if len(s.Quality) != 1 {
		t.Fatalf("quality legs %+v, want the caller's only", s.Quality)
	}
	q := s.Quality[0]
	if q.Leg != "caller" || q.Agent != "" || q.Received != 50 || q.Lost != 0 || q.MOS < 4 {
		t.Errorf("caller leg quality %+v, want 50 received, none lost, MOS >= 4", q)
	}
}

// TestOnEndedQualityAgentLeg: a call bridged to an agent leaves both
// legs' quality, the caller's first, the agent leg named after the
// agent.
func TestOnEndedQualityAgentLeg(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the real prompts")
	}
	var sums summaries
	alice := newTestAgent(t, "alice")
	h := newAgentHarnessEnded(t, sums.add, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, d := dialMainToSales(t, h, ctx)
	waitAnswered(t, alice, 15*time.Second)
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the summary", func() bool { return len(sums.all()) == 1 })
	q := sums.all()[0].Quality
	if len(q) != 2 || q[0].Leg != "caller" || q[0].Received == 0 || q[1].Leg != "agent" || q[1].Agent != "alice" {
		t.Fatalf("leg quality %+v, want the caller's (with packets) then alice's agent leg", q)
	}
}
