package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// checkEchoed checks that cloak sent RTP back to sipp's media port carrying
// the payloads sipp played: the echo route returns the caller's audio.
func checkEchoed(t *testing.T, got []rtpPacket, pcap string) {
	t.Helper()
	pt, sent, n := pcapPayloads(t, pcap)
	var match, wrongPT int
	for _, p := range got {
		if p.pt != pt {
			wrongPT++
			continue
		}
		if sent[p.payload] {
			match++
		}
	}
	t.Logf("played %d packets (PT %d); cloak sent back %d RTP packets, %d carrying played payloads, %d with another PT", n, pt, len(got), match, wrongPT)
	if wrongPT > 0 {
		t.Errorf("%d echoed packets with a payload type other than %d", wrongPT, pt)
	}
	// Loopback loses nothing; allow for the first packets before cloak
	// latches and the last ones after the BYE.
	if min := n * 9 / 10; match < min {
		t.Errorf("%d echoed packets carry played audio, want at least %d of %d", match, min, n)
	}
}

// TestEcho: a call to echo plays 3 s of tone from a pcap and hangs up; the
// answer names the offered codec and cloak sends the same audio back.
func TestEcho(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	for _, tc := range []struct{ codec, pt, pcap string }{
		{"PCMU", "0", "pcap/pcmu-tone-3s.pcap"},
		{"PCMA", "8", "pcap/pcma-tone-3s.pcap"},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			c := startCloak(t, cloakOpts{})
			cp := startCapture(t, c)
			mp := freePorts(t, 4, false)
			s := runSipp(t, c, sippArgs{
				scenario: "echo.xml", service: "echo", mediaPort: mp,
				keys: map[string]string{"pcap": scenario(tc.pcap), "pt": tc.pt, "codec": tc.codec},
			})
			checkEchoed(t, cp.stop(mp), scenario(tc.pcap))
			if want := "m=audio [0-9]+ RTP/AVP " + tc.pt + "\r?\n"; !regexp.MustCompile(want).MatchString(s.messages()) {
				t.Errorf("no answer with m=audio ... RTP/AVP %s in the messages", tc.pt)
			}
			if !c.waitLog("call ended", 5*time.Second) {
				t.Error(`cloak did not log "call ended"`)
			}
			c.stop()
		})
	}
}

// TestLateOffer: an INVITE without SDP gets cloak's offer in the 200, the
// answer goes in the ACK, and the echo works on the agreed codec.
func TestLateOffer(t *testing.T) {
	requireTools(t, "sipp", "tshark")
	c := startCloak(t, cloakOpts{})
	cp := startCapture(t, c)
	mp := freePorts(t, 4, false)
	pcap := scenario("pcap/pcmu-tone-3s.pcap")
	s := runSipp(t, c, sippArgs{
		scenario: "late-offer.xml", service: "echo", mediaPort: mp,
		keys: map[string]string{"pcap": pcap, "pt": "0", "codec": "PCMU"},
	})
	checkEchoed(t, cp.stop(mp), pcap)
	msgs := s.messages()
	if !regexp.MustCompile(`(?s)INVITE sip:echo@\S+ SIP/2.0.*?Content-Length: 0`).MatchString(msgs) {
		t.Error("the INVITE carried a body: not a late offer")
	}
	if !strings.Contains(c.log(), "late_offer=true") {
		t.Error("cloak did not log the call as a late offer")
	}
	c.stop()
}

// TestHoldResume: re-INVITE a=sendonly is answered a=recvonly, re-INVITE
// a=sendrecv is answered a=sendrecv (the scenario checks each 200; here the
// order of the answers is checked again on the trace).
func TestHoldResume(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{})
	s := runSipp(t, c, sippArgs{
		scenario: "hold.xml", service: "echo",
		keys: map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "pt": "0", "codec": "PCMU"},
	})
	var dirs []string
	for _, m := range regexp.MustCompile(`(?s)SIP/2.0 200 OK.*?CSeq: (\d) INVITE.*?a=(sendrecv|recvonly|sendonly|inactive)`).FindAllStringSubmatch(s.messages(), -1) {
		dirs = append(dirs, m[1]+":"+m[2])
	}
	if got, want := strings.Join(dirs, " "), "1:sendrecv 2:recvonly 3:sendrecv"; got != want {
		t.Errorf("directions answered per CSeq = %q, want %q", got, want)
	}
	c.stop()
}

// TestRTPInactivityBye: a call that sends no RTP is hung up by cloak with
// BYE once rtp.inactivity_timeout (2 s) has passed, not before.
func TestRTPInactivityBye(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{inactivity: 2 * time.Second})
	s := runSipp(t, c, sippArgs{scenario: "rtp-timeout.xml", service: "echo"})
	if !strings.Contains(s.messages(), "BYE sip:") {
		t.Error("no BYE in sipp's trace")
	}
	if s.duration < 2*time.Second || s.duration > 10*time.Second {
		t.Errorf("call lasted %v, want the 2s inactivity timeout plus at most the sweep interval", s.duration)
	}
	if !c.waitLog("call ended", 5*time.Second) {
		t.Error(`cloak did not log "call ended"`)
	}
	c.stop()
}

// TestNoAckBye: a caller takes the 200 and never ACKs. cloak retransmits
// the 200, and once 64*T1 has passed without an ACK it ends the session
// with a BYE (RFC 3261 §13.3.1.4) rather than dropping it silently,
// which would leave the caller's side up. T1 is 100 ms here, so the wait
// is 6.4 s (plus up to T2, 4 s, for the retransmission that finds the
// transaction over) rather than 32 s.
func TestNoAckBye(t *testing.T) {
	requireTools(t, "sipp")
	const t1 = 100 * time.Millisecond
	c := startCloak(t, cloakOpts{t1: t1})
	s := runSipp(t, c, sippArgs{scenario: "no-ack.xml", service: "echo"})
	msgs := s.messages()
	if !strings.Contains(msgs, "BYE sip:") {
		t.Error("no BYE in sipp's trace")
	}
	if n := strings.Count(msgs, "SIP/2.0 200 OK"); n < 3 {
		t.Errorf("sipp's trace holds %d 200 OKs (the answer, its retransmissions, ours to the BYE), want at least 3", n)
	}
	if lo, hi := 64*t1, 64*t1+4*time.Second+3*time.Second; s.duration < lo || s.duration > hi {
		t.Errorf("call lasted %v, want 64*T1 (%v) and at most one T2 more", s.duration, lo)
	}
	if !c.waitLog("no ACK", 5*time.Second) {
		t.Error(`cloak did not log the missing ACK`)
	}
	c.stop()
}

// TestCancel: CANCEL sent on 180. cloak answers at once today, so either
// the INVITE gets 487 or the 200 wins the race and sipp hangs up; either
// way sipp's scenario must complete and cloak must end the call.
func TestCancel(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{})
	// "ring" rings and never answers, so the CANCEL must win: 487.
	s := runSipp(t, c, sippArgs{scenario: "cancel.xml", service: "ring"})
	msgs := s.messages()
	cancelled := regexp.MustCompile(`SIP/2.0 487 [^\n]*\n(?s:.*?)CSeq: 1 INVITE`).MatchString(msgs)
	answered := regexp.MustCompile(`SIP/2.0 200 OK[^\n]*\n(?s:.*?)CSeq: 2 BYE`).MatchString(msgs)
	if !cancelled || answered {
		t.Errorf("want 487 to the cancelled INVITE and no answered call (487 %v, answered %v)", cancelled, answered)
	}
	if !strings.Contains(msgs, "CANCEL sip:") {
		t.Error("sipp sent no CANCEL")
	}
	if !c.waitLog("call ended", 5*time.Second) {
		t.Error(`cloak did not log "call ended"`)
	}
	c.stop()
}

// TestRejections: OPTIONS gets 200, an unknown user 404, an offer with only
// G.729 488; one cloak for all three.
func TestRejections(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{})
	for _, tc := range []struct {
		name, scenario, service, want string
	}{
		{"options", "options.xml", "", "SIP/2.0 200 OK"},
		{"unknown user", "invite-404.xml", "nobody", "SIP/2.0 404 "},
		{"G.729 only", "invite-488.xml", "echo", "SIP/2.0 488 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runSipp(t, c, sippArgs{scenario: tc.scenario, service: tc.service})
			if !strings.Contains(s.messages(), tc.want) {
				t.Errorf("no %q in sipp's trace", tc.want)
			}
		})
	}
	if strings.Contains(c.log(), "call answered") {
		t.Error("cloak answered a call it should have refused")
	}
	c.stop()
}

// TestGracefulShutdown: with a call up, SIGTERM makes cloak refuse new
// INVITEs with 503 while the call goes on; after shutdown.grace (2 s)
// cloak sends BYE and exits 0.
func TestGracefulShutdown(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, cloakOpts{grace: 2 * time.Second})
	first := startSipp(t, c, sippArgs{
		scenario: "wait-bye.xml", service: "echo",
		keys: map[string]string{"pcap": scenario("pcap/pcmu-tone-3s.pcap"), "pt": "0", "codec": "PCMU"},
	})
	if !c.waitLog("call answered", 10*time.Second) {
		t.Fatal("the first call was not answered")
	}
	sigterm := time.Now()
	c.terminate()
	if !c.waitLog("shutting down", 5*time.Second) {
		t.Fatal(`cloak did not log "shutting down" after SIGTERM`)
	}
	second := runSipp(t, c, sippArgs{scenario: "invite-503.xml", service: "echo"})
	if !strings.Contains(second.messages(), "SIP/2.0 503 ") {
		t.Error("the INVITE during shutdown got no 503")
	}
	if !first.running() {
		t.Error("the first call ended before the grace period was over")
	}
	first.wait(t)
	if ended := time.Since(sigterm); ended < 1500*time.Millisecond {
		t.Errorf("first call ended %v after SIGTERM, before the 2s grace", ended)
	}
	if !strings.Contains(first.messages(), "BYE sip:") {
		t.Error("the first call did not end with cloak's BYE")
	}
	c.wait(10 * time.Second)
}
