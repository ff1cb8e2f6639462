package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/sdes"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"
)

// srtpQuality is the caller leg's figures in /api/calls with the SRTP
// drop counter.
type srtpQuality struct {
	Leg          string `json:"leg"`
	Received     uint32 `json:"received"`
	RTCPSent     uint64 `json:"rtcp_sent"`
	RTCPReceived uint64 `json:"rtcp_received"`
	DroppedSRTP  uint64 `json:"dropped_srtp"`
	DroppedSRTCP uint64 `json:"dropped_srtcp"`
}

func srtpCallerQuality(t *testing.T, c *cloak, called string) (srtpQuality, bool) {
	t.Helper()
	var calls []struct {
		Called  string        `json:"called"`
		Quality []srtpQuality `json:"quality"`
	}
	if err := apiGet(t, c, "/api/calls", &calls); err != nil {
		return srtpQuality{}, false
	}
	for _, cl := range calls {
		for _, q := range cl.Quality {
			if cl.Called == called && q.Leg == "caller" {
				return q, true
			}
		}
	}
	return srtpQuality{}, false
}

// ulawToneShare is toneShare (media_test.go) of each payload's first
// 160 bytes decoded as µ-law, averaged: near 1 for a pure tone at hz,
// near 0 for bytes with no structure, which is what SRTP's ciphertext is.
func ulawToneShare(payloads [][]byte, hz float64) float64 {
	var sum float64
	n := 0
	pcm := make([]int16, 160)
	for _, p := range payloads {
		if len(p) < 160 {
			continue
		}
		for i, b := range p[:160] {
			pcm[i] = g711.DecodeUlawFrame(b)
		}
		sum += toneShare(pcm, hz)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// ulawSine is n bytes of a µ-law tone at hz: toneShare's positive control.
func ulawSine(n int, hz float64, phase int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = g711.EncodeUlawFrame(int16(8000 * math.Sin(2*math.Pi*hz*float64(i+phase)/8000)))
	}
	return out
}

// wirePayloads returns the UDP payloads (RTP header and all) captured in
// pcap between port range lo-hi and elsewhere: toCloak those whose
// destination is in the range, fromCloak those whose source is.
func wirePayloads(t *testing.T, pcap string, lo, hi int) (toCloak, fromCloak [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-Y", "udp",
		"-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		src, _ := strconv.Atoi(f[0])
		dst, _ := strconv.Atoi(f[1])
		b, err := hex.DecodeString(strings.ReplaceAll(f[2], ":", ""))
		if err != nil || len(b) < 12 || b[1] >= 192 && b[1] <= 223 {
			continue // not RTP (RTCP's second byte is 192-223)
		}
		switch {
		case dst >= lo && dst <= hi:
			toCloak = append(toCloak, b[12:])
		case src >= lo && src <= hi:
			fromCloak = append(fromCloak, b[12:])
		}
	}
	return toCloak, fromCloak
}

// TestSRTPBaresipEcho: baresip, a real softphone, calls echo over SIP
// over TLS with mediaenc=srtp-mand (RTP/SAVP, SDES keys); cloak has
// rtp.srtp: mandatory. Audio goes both ways for ten seconds: cloak
// receives baresip's SRTP (the API's received count grows, nothing fails
// authentication), baresip gets cloak's SRTCP reports (its pkt.report
// line) and cloak baresip's. tshark on the loopback sees no SIP in clear
// on the TLS port, no a=crypto, and RTP payloads in neither direction
// that decode to baresip's 440 Hz tone as µ-law.
func TestSRTPBaresipEcho(t *testing.T) {
	requireTools(t, "baresip", "tshark")
	if _, err := os.Stat("/usr/lib/baresip/modules/srtp.so"); err != nil {
		t.Skip("baresip's srtp module is not installed")
	}
	c, addr, ca, _ := tlsCloak(t, cloakOpts{admin: true, json: true, logLevel: "info", rtpExtra: "  srtp: mandatory\n"})
	defer c.stop()
	port := addr[strings.LastIndex(addr, ":")+1:]
	cp := startCaptureFilter(t, fmt.Sprintf("tcp port %s or udp portrange %d-%d", port, c.rtpLo, c.rtpHi+1))

	dir := t.TempDir()
	cfg := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
sip_cafile		%s
audio_player		aubridge,sink
audio_alert		aubridge,sink
audio_source		ausine,440
ausrc_srate		48000
ausrc_channels		2
rtcp_mux		no
rtp_stats		yes
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			aubridge.so
module			srtp.so
module_tmp		account.so
module_app		menu.so
`, freePorts(t, 1, true), ca.File)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	acct := "<sip:tester@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand\n"
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acct), 0o600); err != nil {
		t.Fatal(err)
	}
	const talk = 11 // seconds: two of baresip's RTCP intervals
	cmd := exec.Command("baresip", "-f", dir, "-n", "127.0.0.1", "-t", strconv.Itoa(talk),
		"-e", "/dial sip:echo@"+addr+";transport=tls")
	var out strings.Builder
	var outMu sync.Mutex
	w := tlsWriterFunc(func(b []byte) { outMu.Lock(); out.Write(b); outMu.Unlock() })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	bout := func() string { outMu.Lock(); defer outMu.Unlock(); return out.String() }
	if !c.waitLog("call answered", 10*time.Second) {
		t.Fatalf("baresip's SRTP call over TLS was not answered:\ncloak: %s\nbaresip: %s", tail(c.log(), 20), tail(bout(), 30))
	}

	// While the call is up: baresip's SRTP and SRTCP reach cloak.
	var q srtpQuality
	deadline := time.Now().Add(time.Duration(talk-1) * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if q, ok = srtpCallerQuality(t, c, "echo"); ok && q.Received >= 100 && q.RTCPReceived > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if q.Received < 100 || q.RTCPReceived == 0 || q.DroppedSRTP != 0 {
		t.Fatalf("API during the SRTP call: %+v\ncloak: %s", q, tail(c.log(), 20))
	}

	select {
	case <-done:
	case <-time.After(time.Duration(talk+10) * time.Second):
		t.Fatal("baresip did not end")
	}
	bo := bout()
	m := baresipReport.FindStringSubmatch(bo)
	if m == nil {
		t.Fatalf("baresip printed no pkt.report: no SRTCP from cloak reached it:\n%s", tail(bo, 30))
	}
	if n, _ := strconv.Atoi(m[1]); n < 100 {
		t.Fatalf("cloak's report covered %d of baresip's packets: %s", n, m[0])
	}
	if rx := regexp.MustCompile(`(?m)^\s*RX:.*?(\d+)\s*\n`).FindStringSubmatch(bo); rx != nil {
		t.Logf("baresip RX line: %s", strings.TrimSpace(rx[0]))
	}
	if !c.waitLog(`"media closed"`, 5*time.Second) {
		t.Fatal("no media closed line")
	}
	var end logLine
	for _, l := range findLog(parseLog(t, c.log()), "media closed", "") {
		end = l
	}
	// baresip (libre) sends a plain 16-byte RTCP APP packet beside each
	// of its SRTCP reports: unauthenticated, cloak drops it
	// (dropped_srtcp), as it would a forgery.
	if v, ok := end.raw["dropped_srtp"].(float64); !ok || v != 0 {
		t.Fatalf("media closed line's dropped_srtp: %s", end.text)
	}
	if v, _ := end.raw["rtcp_rx"].(float64); v < 1 {
		t.Fatalf("media closed line: no SRTCP received: %s", end.text)
	}
	if strings.Contains(c.log(), "inline:") && !regexp.MustCompile(`inline:\*+`).MatchString(c.log()) {
		t.Fatal("an SDES key in cloak's log")
	}

	// The wire.
	cp.finish()
	raw, err := os.ReadFile(cp.file)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"INVITE sip", "SIP/2.0 200", "m=audio", "a=crypto", "inline:", "RTP/SAVP"} {
		if strings.Contains(string(raw), clear) {
			t.Errorf("%q in clear on the wire", clear)
		}
	}
	toCloak, fromCloak := wirePayloads(t, cp.file, c.rtpLo, c.rtpHi)
	if len(toCloak) < 100 || len(fromCloak) < 100 {
		t.Fatalf("captured %d RTP packets to cloak and %d from it", len(toCloak), len(fromCloak))
	}
	var control [][]byte
	for i := range 50 {
		control = append(control, ulawSine(160, 440, 160*i))
	}
	if s := ulawToneShare(control, 440); s < 0.8 {
		t.Fatalf("toneShare of a plain µ-law 440 Hz tone is %.2f: the check cannot see a tone", s)
	}
	in, back := ulawToneShare(toCloak, 440), ulawToneShare(fromCloak, 440)
	if in > 0.1 || back > 0.1 {
		t.Fatalf("the SRTP payloads decode as µ-law to a 440 Hz tone: %.2f of the energy to cloak, %.2f from it", in, back)
	}
	t.Logf("%d SRTP packets to cloak, %d from it; 440 Hz share of the payload as µ-law: %.3f and %.3f (plain tone: %.2f); cloak received %d, dropped_srtp %d, dropped_srtcp %v (plain RTCP from baresip)",
		len(toCloak), len(fromCloak), in, back, ulawToneShare(control, 440), q.Received, q.DroppedSRTP, end.raw["dropped_srtcp"])
}

// pcapRTP is one RTP packet of a committed pcap with its capture time.
type pcapRTP struct {
	at  time.Duration // since the first frame
	pkt []byte
}

// readPcapRTP reads the RTP packets of a classic pcap (as tools/rtppcap
// writes them: Ethernet, IPv4, UDP) with their times.
func readPcapRTP(t *testing.T, path string) []pcapRTP {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian µs pcap", path)
	}
	var out []pcapRTP
	var first time.Duration
	for off := 24; off+16 <= len(data); {
		ts := time.Duration(binary.LittleEndian.Uint32(data[off:]))*time.Second + time.Duration(binary.LittleEndian.Uint32(data[off+4:]))*time.Microsecond
		size := int(binary.LittleEndian.Uint32(data[off+8:]))
		off += 16
		if off+size > len(data) {
			t.Fatalf("%s: truncated", path)
		}
		pkt := gopacket.NewPacket(data[off:off+size], layers.LayerTypeEthernet, gopacket.Default)
		off += size
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			continue
		}
		if len(out) == 0 {
			first = ts
		}
		out = append(out, pcapRTP{at: ts - first, pkt: append([]byte(nil), udp.Payload...)})
	}
	return out
}

// rfc4733Digits reads the keys of RFC 4733 telephone-event packets (pt)
// in order, one per event (§2.3.1: the packets of an event share its
// timestamp): 0-9, * and #, and '?' for event codes that are no key.
func rfc4733Digits(pkts [][]byte, pt uint8) string {
	var b strings.Builder
	seen := map[uint32]bool{}
	for _, p := range pkts {
		if len(p) < 16 || p[1]&0x7f != pt {
			continue
		}
		ts := binary.BigEndian.Uint32(p[4:])
		if seen[ts] {
			continue
		}
		seen[ts] = true
		switch ev := p[12]; {
		case ev <= 9:
			b.WriteByte('0' + ev)
		case ev == 10:
			b.WriteByte('*')
		case ev == 11:
			b.WriteByte('#')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// TestSRTPPayOverTLS: a SIP-over-TLS client written here (Debian's sipp
// has no TLS) against rtp.srtp: mandatory. Its plain RTP/AVP offer to
// pay gets 488. Its RTP/SAVP offer is answered with cloak's own key; it
// then plays pay-rfc4733.pcap — card, expiry and CVV as RFC 4733 events —
// protected with its key, and the flow approves the payment. On the wire
// the events read as plain RFC 4733 give no card number; unprotected with
// the test's own key they give it back. With SIP and RTP capture on, no
// byte cloak wrote holds either SRTP key (the leak test's pattern).
func TestSRTPPayOverTLS(t *testing.T) {
	requireTools(t, "tshark")
	o := ivrOpts("capture:\n  sip_pcap: true\n  rtp_pcap: true\n")
	o.rtpExtra = "  srtp: mandatory\n"
	c, addr, ca, _ := tlsCloak(t, o) // stopped below; killed by the cleanup on failure
	s := dialTLSSIP(t, addr, ca.Pool)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	rtpPort := sock.LocalAddr().(*net.UDPAddr).Port
	to := "<sips:pay@" + addr + ">"
	contact := "Contact: <sips:tester@" + s.local + ">\r\nContent-Type: application/sdp\r\n"
	sdpFor := func(proto, extra string) string {
		return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d %s 0 101\r\n"+
			"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n%sa=sendrecv\r\n", rtpPort, proto, extra)
	}

	// Plain RTP under mandatory: 488, over TLS as over anything.
	s.send(s.request("INVITE", "sips:pay@"+addr, "plain-srtp@e2e", 1, to, contact, sdpFor("RTP/AVP", "")))
	if got := s.final("plain INVITE"); !strings.HasPrefix(got, "SIP/2.0 488 ") {
		t.Fatalf("plain offer under rtp.srtp: mandatory: %q", strings.SplitN(got, "\r\n", 2)[0])
	}
	s.send(s.request("ACK", "sips:pay@"+addr, "plain-srtp@e2e", 1, to, "", ""))

	ours, err := sdes.NewKey(sdes.AESCM128HMACSHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	offered := []sdes.Crypto{{Tag: 1, Key: ours}}
	cp := startCaptureFilter(t, fmt.Sprintf("udp portrange %d-%d", c.rtpLo, c.rtpHi+1))
	s.send(s.request("INVITE", "sips:pay@"+addr, "pay-srtp@e2e", 1, to, contact, sdpFor("RTP/SAVP", "a=crypto:"+offered[0].Attr()+"\r\n")))
	ok := s.final("SRTP INVITE")
	if !strings.HasPrefix(ok, "SIP/2.0 200 ") {
		t.Fatalf("SRTP offer: %q", strings.SplitN(ok, "\r\n", 2)[0])
	}
	toTag := sipHeader(ok, "To")
	s.send(s.request("ACK", "sips:pay@"+addr, "pay-srtp@e2e", 1, toTag, "", ""))
	body := ok[strings.Index(ok, "\r\n\r\n")+4:]
	m, err := csip.ParseAnswerSRTP([]byte(body), offered)
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
	enc, dec := mk(ours), mk(m.SRTP.Remote)

	// cloak's prompts, unprotected with its key as they come.
	var heard atomic.Int64
	go func() {
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
			if n > 1 && (buf[1] < 192 || buf[1] > 223) {
				if _, err := dec.DecryptRTP(nil, buf[:n], nil); err == nil {
					heard.Add(1)
				}
			}
		}
	}()

	// The pcap sipp plays for TestPayApproved, protected with our key, at
	// its own pace.
	pkts := readPcapRTP(t, scenario("pcap/pay-rfc4733.pcap"))
	start := time.Now()
	for _, p := range pkts {
		if d := time.Until(start.Add(p.at)); d > 0 {
			time.Sleep(d)
		}
		out, err := enc.EncryptRTP(nil, p.pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sock.WriteToUDPAddrPort(out, m.Remote); err != nil {
			t.Fatal(err)
		}
		if c.waitLog(`"message":"flow finished"`, 0) {
			break
		}
	}
	if !c.waitLog(`"message":"flow finished"`, 20*time.Second) {
		t.Fatalf("the pay flow did not finish:\n%s", tail(c.log(), 30))
	}
	// cloak's BYE comes on our TLS connection; answer it.
	for range 5 {
		msg := s.read(3 * time.Second)
		if strings.HasPrefix(msg, "BYE ") {
			s.send("SIP/2.0 200 OK\r\nVia: " + sipHeader(msg, "Via") + "\r\nFrom: " + sipHeader(msg, "From") + "\r\nTo: " + sipHeader(msg, "To") +
				"\r\nCall-ID: " + sipHeader(msg, "Call-ID") + "\r\nCSeq: " + sipHeader(msg, "CSeq") + "\r\nContent-Length: 0\r\n\r\n")
			break
		}
	}
	c.stop()
	lines := parseLog(t, c.log())
	id := callOf(t, lines)
	checkStepsInOrder(t, flowSteps(lines, id),
		"welcome:next", "get_card:on_valid", "say_last4:next", "get_expiry:on_valid", "get_cvv:on_valid",
		"charge:on_success", "approved:next", "hangup:")
	if heard.Load() < 50 {
		t.Errorf("only %d of cloak's SRTP packets unprotected with its key", heard.Load())
	}
	if strings.Contains(c.log(), testCard) {
		t.Fatal("the card number is in cloak's log")
	}
	// The leak test: no byte cloak wrote (log, SIP and RTP captures,
	// archive, recordings) holds either key, as base64 or raw.
	var secrets [][]byte
	for _, k := range []*sdes.Key{ours, m.SRTP.Remote} {
		key, salt := k.Material()
		whole := append(append([]byte(nil), key...), salt...)
		b64 := strings.TrimPrefix(sdes.Crypto{Tag: 1, Key: k}.Attr(), "1 AES_CM_128_HMAC_SHA1_80 inline:")
		secrets = append(secrets, key, whole, []byte(b64[:24]))
	}
	files, redacted := 0, 0
	check := func(name string, data []byte) {
		files++
		if bytes.Contains(data, []byte("inline:****************")) {
			redacted++ // the SDP with its key replaced: the check read it
		}
		for _, sec := range secrets {
			if bytes.Contains(data, sec) {
				t.Errorf("an SRTP key is in %s", name)
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
	if files < 3 || redacted == 0 {
		t.Fatalf("%d files written, %d with a redacted a=crypto: the SIP capture is missing", files, redacted)
	}

	// The wire, as sent to cloak's port.
	cp.finish()
	raw := wireRTP(t, cp.file, c.rtpLo, c.rtpHi)
	if len(raw) < 100 {
		t.Fatalf("captured %d packets to cloak", len(raw))
	}
	asPlain := rfc4733Digits(raw, 101)
	if strings.Contains(asPlain, testCard) || strings.Contains(asPlain, testCard[:6]) {
		t.Fatal("the card number reads from the encrypted events as plain RFC 4733")
	}
	rx := mk(ours) // a fresh context: the test's own key
	var clear [][]byte
	for _, p := range raw {
		if pt, err := rx.DecryptRTP(nil, p, nil); err == nil {
			clear = append(clear, pt)
		}
	}
	if got := rfc4733Digits(clear, 101); !strings.Contains(got, testCard) {
		t.Fatalf("unprotected with the test's key, the events give %d keys without the card", len(got))
	}
	t.Logf("%d SRTP packets to cloak; their events as plain RFC 4733: %d keys, no card; unprotected: the card; %d of cloak's packets unprotected",
		len(raw), len(asPlain), heard.Load())
}

// wireRTP returns the whole RTP datagrams captured in pcap whose
// destination port is in lo-hi (RTCP left out).
func wireRTP(t *testing.T, pcap string, lo, hi int) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-Y", "udp",
		"-T", "fields", "-e", "udp.dstport", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	var pkts [][]byte
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		dst, _ := strconv.Atoi(f[0])
		b, err := hex.DecodeString(strings.ReplaceAll(f[1], ":", ""))
		if err != nil || len(b) < 12 || b[1] >= 192 && b[1] <= 223 || dst < lo || dst > hi {
			continue
		}
		pkts = append(pkts, b)
	}
	return pkts
}
