package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/sdes"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"
)

// baresipAgent is a baresip process registered to cloak as an agent over
// SIP TLS with mediaenc=srtp-mand, answering calls at once, driven by its
// ctrl_tcp interface, dumping the audio it receives (sndfile) to wavDir.
type baresipAgent struct {
	cmd    *exec.Cmd
	ctrl   string // ctrl_tcp's address
	wavDir string
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
}

func (b *baresipAgent) output() string { b.mu.Lock(); defer b.mu.Unlock(); return b.out.String() }

// startBaresipAgent starts baresip as agent name (password pw) registering
// at cloak's TLS address addr. It trusts ca and presents a certificate
// of ca's for 127.0.0.1, as client (mutual TLS) and as the TLS server
// cloak calls it back at: libre's Contact names its TLS listener, not the
// connection it registered on.
func startBaresipAgent(t *testing.T, addr string, ca *certstest.CA, name, pw string) *baresipAgent {
	t.Helper()
	dir := t.TempDir()
	is := ca.Issue(t, dir, name, "127.0.0.1")
	var pem []byte
	for _, f := range []string{is.CertFile, is.KeyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pem = append(pem, b...)
	}
	certFile := filepath.Join(dir, "sip.pem") // libre wants both in one file
	if err := os.WriteFile(certFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	b := &baresipAgent{wavDir: t.TempDir(), done: make(chan struct{})}
	ports := freePorts(t, 2, true) // SIP; TLS on the next port (baresip's rule)
	b.ctrl = fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1, true))
	cfg := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
sip_cafile		%s
sip_certificate		%s
audio_player		aubridge,sink
audio_alert		aubridge,sink
audio_source		ausine,440
ausrc_srate		48000
ausrc_channels		2
auplay_srate		8000
auplay_channels		1
rtcp_mux		no
ctrl_tcp_listen		%s
snd_path		%s
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			aubridge.so
module			srtp.so
module			sndfile.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
`, ports, ca.File, certFile, b.ctrl, b.wavDir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	acct := fmt.Sprintf("<sip:%s@%s;transport=tls>;auth_pass=%s;regint=300;answermode=auto;audio_codecs=PCMU;mediaenc=srtp-mand\n", name, addr, pw)
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acct), 0o600); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("baresip", "-f", dir, "-n", "127.0.0.1", "-t", "90")
	w := tlsWriterFunc(func(p []byte) { b.mu.Lock(); b.out.Write(p); b.mu.Unlock() })
	b.cmd.Stdout, b.cmd.Stderr = w, w
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.stop)
	return b
}

// stop ends baresip (SIGTERM, then SIGKILL after 3 s).
func (b *baresipAgent) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// command sends one long command to baresip's ctrl_tcp (a netstring of
// JSON, as baresip's docs/ctrl_tcp describes) and returns its response.
func (b *baresipAgent) command(t *testing.T, cmd, params string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.ctrl, 3*time.Second)
	if err != nil {
		t.Fatalf("baresip ctrl_tcp: %v", err)
	}
	defer c.Close()
	js := fmt.Sprintf(`{"command":%q,"params":%q,"token":"e2e"}`, cmd, params)
	if _, err := fmt.Fprintf(c, "%d:%s,", len(js), js); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	return string(buf[:n])
}

// decWAV reads the 16-bit mono PCM of baresip's dump of what it received
// (sndfile's "-dec.wav"), with its sample rate.
func (b *baresipAgent) decWAV(t *testing.T) ([]int16, int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.wavDir, "*-dec.wav"))
	if len(files) != 1 {
		t.Fatalf("%d received-audio dumps from baresip in %s, want 1", len(files), b.wavDir)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 44 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		t.Fatalf("%s: not a WAV file", files[0])
	}
	var rate int
	var pcm []int16
	for off := 12; off+8 <= len(data); {
		id, size := string(data[off:off+4]), int(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		end := min(off+size, len(data))
		switch id {
		case "fmt ":
			if binary.LittleEndian.Uint16(data[off+2:]) != 1 || binary.LittleEndian.Uint16(data[off+14:]) != 16 {
				t.Fatalf("%s: not 16-bit mono PCM", files[0])
			}
			rate = int(binary.LittleEndian.Uint32(data[off+4:]))
		case "data":
			pcm = make([]int16, (end-off)/2)
			_ = binary.Read(bytes.NewReader(data[off:off+2*len(pcm)]), binary.LittleEndian, pcm)
		}
		off = end + size%2
	}
	return pcm, rate
}

// TestSRTPBaresipAgentSecureFlow is issue 25's interop scenario with a
// real encrypting softphone as the agent: baresip registers as agent
// alice over SIP TLS (digest) with mediaenc=srtp-mand, and alice's legs
// are srtp: mandatory. A caller written here (Debian's sipp has no TLS)
// calls main over TLS with an SRTP offer, keys 2 and waits in sales;
// cloak calls baresip back over TLS with RTP/SAVP and bridges them, both
// legs encrypted with their own keys. baresip keys *7 as RFC 4733 over
// SRTP (its sndcode command through ctrl_tcp); the caller goes to
// secure-pay, keys the test card, expiry and CVV, the payment is
// approved, and the caller is returned to baresip.
//
// Asserted: the secure flow was started by the feature code and returned
// to the agent; alice went reserved then busy again; the call's data
// carries the approval; the caller hears baresip's 440 Hz after the
// return (unprotected with its own key); the audio baresip received
// (decoded from SRTP by baresip itself) holds no DTMF digit and none of
// the caller's 1004 Hz during the secure segment; no SIP in clear on the
// TLS port; and no byte cloak wrote holds the caller's key or the card.
func TestSRTPBaresipAgentSecureFlow(t *testing.T) {
	requireTools(t, "baresip", "tshark")
	for _, m := range []string{"srtp.so", "sndfile.so", "ctrl_tcp.so"} {
		if _, err := os.Stat("/usr/lib/baresip/modules/" + m); err != nil {
			t.Skipf("baresip's %s is not installed", m)
		}
	}
	const pw = "alice-e2e-tls-pw"
	o := ivrOpts(`agents:
  - {name: alice, password: `+pw+`, queues: [sales], srtp: mandatory}
features: {secure_code: "*7", secure_flow: secure-pay}
capture:
  sip_pcap: true
`, "{name: sales, timeout: 20s, ring_timeout: 10s, dtmf: mask}")
	o.rtpExtra = "  srtp: mandatory\n"
	// baresip 1.0's libre gives up (ENOSYS) on any challenge that is
	// not MD5, even beside an MD5 one: offer MD5 alone, as a site with
	// such phones would.
	o.sipExtra = "  auth:\n    algorithms: [MD5]\n"
	// client_ca_file: cloak verifies baresip's certificate when it calls
	// it back, and asks every TLS peer for one (mutual TLS).
	ca := certstest.NewCA(t, "cloak-e2e-ca")
	c, addr, _, _ := tlsCloakCA(t, o, ca, true) // stopped below; killed by the cleanup on failure
	port := addr[strings.LastIndex(addr, ":")+1:]
	cp := startCaptureFilter(t, "tcp port "+port)

	agent := startBaresipAgent(t, addr, ca, "alice", pw)
	if !c.waitLog("agent registered", 10*time.Second) {
		t.Fatalf("baresip did not register over TLS:\ncloak: %s\nbaresip: %s", tail(c.log(), 3000), agent.output())
	}
	poll := startPoller(t, c, "alice")

	// The caller: SRTP over TLS to main.
	callerCert := ca.Issue(t, "", "caller", "127.0.0.1")
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{callerCert.Pair}})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer tc.Close()
	s := &tlsSIP{t: t, c: tc, r: bufio.NewReader(tc), local: tc.LocalAddr().String()}
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
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0 101\r\n"+
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=crypto:%s\r\na=sendrecv\r\n",
		sock.LocalAddr().(*net.UDPAddr).Port, offered[0].Attr())
	to := "<sips:main@" + addr + ">"
	s.send(s.request("INVITE", "sips:main@"+addr, "agent-srtp@e2e", 1, to,
		"Contact: <sips:caller@"+s.local+">\r\nContent-Type: application/sdp\r\n", sdp))
	ok := s.final("SRTP INVITE to main")
	if !strings.HasPrefix(ok, "SIP/2.0 200 ") {
		t.Fatalf("SRTP offer to main: %q", strings.SplitN(ok, "\r\n", 2)[0])
	}
	toTag := sipHeader(ok, "To")
	s.send(s.request("ACK", "sips:main@"+addr, "agent-srtp@e2e", 1, toTag, "", ""))
	ans, err := csip.ParseAnswerSRTP([]byte(ok[strings.Index(ok, "\r\n\r\n")+4:]), offered)
	if err != nil {
		t.Fatalf("cloak's answer: %v", err)
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

	// What the caller hears, unprotected with cloak's key, with times.
	type heardFrame struct {
		at  time.Time
		pcm []int16
	}
	var heardMu sync.Mutex
	var heard []heardFrame
	var readerDone = make(chan struct{})
	var unprotected atomic.Int64
	go func() {
		defer close(readerDone)
		buf := make([]byte, 1500)
		for {
			_ = sock.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := sock.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if n < 2 || buf[1] >= 192 && buf[1] <= 223 {
				continue // RTCP
			}
			pt, err := dec.DecryptRTP(nil, buf[:n], nil)
			if err != nil {
				continue
			}
			unprotected.Add(1)
			var p rtp.Packet
			if p.Unmarshal(pt) != nil || p.PayloadType != 0 {
				continue
			}
			pcm := make([]int16, len(p.Payload))
			for i, b := range p.Payload {
				pcm[i] = g711.DecodeUlawFrame(b)
			}
			heardMu.Lock()
			heard = append(heard, heardFrame{time.Now(), pcm})
			heardMu.Unlock()
		}
	}()

	// The caller's pcap (2 for sales at 2.4 s, card at 10.6 s, expiry,
	// CVV; 1004 Hz between), protected with our key, at its own pace;
	// baresip keys *7 once it has been bridged for 2 s.
	pkts := readPcapRTP(t, scenario("pcap/caller-agent-rfc4733.pcap"))
	var star7 atomic.Bool
	go func() {
		if !c.waitLog("agent answered: bridging", 15*time.Second) {
			return
		}
		time.Sleep(2 * time.Second)
		star7.Store(true)
		t.Logf("baresip sndcode *7: %s", strings.TrimSpace(agent.command(t, "sndcode", "*7")))
	}()
	start := time.Now()
	for _, p := range pkts {
		if d := time.Until(start.Add(p.at)); d > 0 {
			time.Sleep(d)
		}
		out, err := enc.EncryptRTP(nil, p.pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sock.WriteToUDPAddrPort(out, ans.Remote); err != nil {
			t.Fatal(err)
		}
	}
	if !star7.Load() {
		t.Fatalf("baresip was never bridged:\ncloak: %s\nbaresip: %s", tail(c.log(), 3000), tail(agent.output(), 3000))
	}
	if !c.waitLog("caller returned to the agent", 5*time.Second) {
		t.Fatalf("the caller was not returned to baresip:\ncloak: %s\nbaresip: %s", tail(c.log(), 3000), tail(agent.output(), 3000))
	}
	time.Sleep(2 * time.Second) // talk with the agent again
	s.send(s.request("BYE", "sips:main@"+addr, "agent-srtp@e2e", 2, toTag, "", ""))
	if got := s.final("BYE"); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Errorf("BYE: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for agentState(t, c, "alice") != "available" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if st := agentState(t, c, "alice"); st != "available" {
		t.Errorf("after the call alice is %q, want available", st)
	}
	poll.finish()
	sock.Close()
	<-readerDone
	agent.stop()
	c.stop()
	lines := parseLog(t, c.log())
	bo := agent.output()

	// The flow: started by baresip's *7, approved, returned.
	id := callOf(t, lines)
	ref := one(t, lines, "agent sends the caller into a secure flow; agent reserved", id)
	if ref.str("via") != "feature-code" || ref.str("flow") != "secure-pay" {
		t.Errorf("secure flow started via %q flow %q, want the feature code and secure-pay", ref.str("via"), ref.str("flow"))
	}
	if fin := one(t, lines, "secure flow finished", id); fin.str("ending") != "returned_to_agent" {
		t.Errorf("secure flow ending %q, want returned_to_agent", fin.str("ending"))
	}
	checkStepsInOrder(t, flowSteps(lines, id), "menu:choice 2", "to_sales:",
		"get_card:on_valid", "get_expiry:on_valid", "get_cvv:on_valid", "charge:on_success", "approved:next")
	bridged := one(t, lines, "agent answered: bridging", id).Time
	secStart := one(t, lines, "secure segment started", id).Time
	secEnd := one(t, lines, "secure segment ended", id).Time
	returned := one(t, lines, "caller returned to the agent", id).Time
	ended := one(t, lines, "call ended", id).Time
	states := poll.states["alice"]
	if ri := slices.Index(states, "reserved"); ri < 0 || !slices.Contains(states[ri:], "busy") {
		t.Errorf("alice's states seen %v, want reserved then busy", states)
	}
	if snap := poll.calls[id]; snap.Data["payment_result"] != "approved" || snap.Data["card_last4"] != testCard[12:] {
		t.Errorf("participant data %v, want payment_result=approved and card_last4", snap.Data)
	}
	// baresip's side: its leg was SRTP (srtp-mand refuses anything else),
	// cloak called it over TLS, and cloak's SRTP from it authenticated.
	// cloak offers AEAD_AES_128_GCM first (rtp.srtp_suites' default) and
	// baresip takes the first line it speaks: GCM, where libre has it.
	if m := regexp.MustCompile(`SRTP is Enabled \(cryptosuite=([A-Z0-9_]+)\)`).FindStringSubmatch(bo); m == nil {
		t.Errorf("baresip did not say its leg is SRTP:\n%s", tail(grepLines(bo, "SRTP"), 3000))
	} else {
		t.Logf("baresip's leg: SRTP %s", m[1])
	}
	if l := one(t, lines, "outbound leg answered", id); !strings.HasSuffix(l.str("target"), ";transport=tls") {
		t.Errorf("cloak called baresip at %q, not over TLS", l.str("target"))
	}
	if q := one(t, lines, "agent media quality", id); q.raw["dropped_srtp"] != 0.0 || q.raw["pkts"] == nil || q.raw["pkts"].(float64) < 500 {
		t.Errorf("agent leg: %s", q.text)
	}

	// What the caller heard: baresip's 440 Hz after the return, not
	// during the flow.
	pcmBetween := func(from, to time.Time) []int16 {
		heardMu.Lock()
		defer heardMu.Unlock()
		var pcm []int16
		for _, f := range heard {
			if !f.at.Before(from) && f.at.Before(to) {
				pcm = append(pcm, f.pcm...)
			}
		}
		return pcm
	}
	const edge = 300 * time.Millisecond
	cBefore := toneShare(pcmBetween(bridged.Add(edge), secStart), 440)
	cSec := toneShare(pcmBetween(secStart.Add(edge), secEnd), 440)
	cAfter := toneShare(pcmBetween(returned.Add(edge), ended.Add(-edge)), 440)
	t.Logf("caller: %d SRTP packets unprotected; baresip's 440 Hz share before %.2f, secure %.3f, after %.2f", unprotected.Load(), cBefore, cSec, cAfter)
	if cBefore < 0.3 || cAfter < 0.3 {
		t.Errorf("the caller did not hear baresip before (%.2f) or after (%.2f) the secure flow", cBefore, cAfter)
	}
	if cSec > 0.05 {
		t.Errorf("the caller heard baresip during the secure flow (%.3f)", cSec)
	}

	// What baresip received and decoded: no digit anywhere, none of the
	// caller's 1004 Hz while the caller was in the flow, the caller's
	// voice before it (so the measure can fail).
	pcm, rate := agent.decWAV(t)
	if rate != 8000 {
		t.Fatalf("baresip's dump is at %d Hz, want 8000", rate)
	}
	// The dump starts when baresip's audio starts, at the bridge (it
	// answers at once): map cloak's times onto it.
	at := func(tm time.Time) int { return min(max(int(tm.Sub(bridged).Seconds()*8000), 0), len(pcm)) }
	aBefore := toneShare(pcm[at(bridged.Add(edge)):at(secStart.Add(-edge))], callerHz)
	aSec := toneShare(pcm[at(secStart.Add(edge)):at(secEnd)], callerHz)
	t.Logf("baresip received %.1f s of audio; caller's %d Hz share before %.2f, secure %.3f", float64(len(pcm))/8000, callerHz, aBefore, aSec)
	if aBefore < 0.3 {
		t.Errorf("baresip did not hear the caller before the secure flow (%.2f): the check cannot fail", aBefore)
	}
	if aSec > 0.05 {
		t.Errorf("baresip heard the caller during the secure flow (%d Hz share %.3f)", callerHz, aSec)
	}
	det, err := dtmf.NewDetector(dtmf.DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var digits int
	for i := 0; i+160 <= len(pcm); i += 160 {
		for _, ev := range det.Process(pcm[i : i+160]) {
			if ev.Kind == dtmf.KindStart {
				digits++
			}
		}
	}
	if digits != 0 {
		t.Errorf("the Go detector found %d DTMF digits in what baresip received", digits)
	}
	wav := filepath.Join(t.TempDir(), "baresip-heard.wav")
	writeWAV(t, wav, pcm)
	if code, out := dtmfScan(t, wav); code != 0 {
		t.Errorf("cloak dtmf scan found digits in what baresip received:\n%s", out)
	}

	// No SIP in clear on the TLS port.
	cp.finish()
	raw, err := os.ReadFile(cp.file)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"REGISTER sip", "INVITE sip", "SIP/2.0 200", "m=audio", "a=crypto", "inline:", "RTP/SAVP"} {
		if strings.Contains(string(raw), clear) {
			t.Errorf("%q in clear on the TLS port", clear)
		}
	}
	if len(raw) < 2000 {
		t.Errorf("captured only %d bytes on the TLS port", len(raw))
	}

	// No byte cloak wrote holds the caller's key, cloak's key for it, or
	// the card.
	var secrets [][]byte
	for _, k := range []*sdes.Key{ours, ans.SRTP.Remote} {
		key, salt := k.Material()
		b64 := strings.TrimPrefix(sdes.Crypto{Tag: 1, Key: k}.Attr(), "1 AES_CM_128_HMAC_SHA1_80 inline:")
		secrets = append(secrets, key, append(append([]byte(nil), key...), salt...), []byte(b64[:24]))
	}
	secrets = append(secrets, []byte(testCard), []byte(spaced(testCard)))
	files := 0
	check := func(name string, data []byte) {
		files++
		for _, sec := range secrets {
			if bytes.Contains(data, sec) {
				t.Errorf("a key or the card is in %s", name)
			}
		}
	}
	check("cloak's log", []byte(c.log()))
	for _, path := range listFiles(t, c.dataDir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(path, data)
	}
	if files < 3 {
		t.Errorf("only %d files cloak wrote were read", files)
	}
	t.Logf("baresip keyed *7 over SRTP; secure %.1f s; %d files cloak wrote read, no key, no card; %d bytes on the TLS port, no SIP in clear",
		secEnd.Sub(secStart).Seconds(), files, len(raw))
}

// spaced is a card number in groups of four, as a person writes it.
func spaced(card string) string {
	var b strings.Builder
	for i, r := range card {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
