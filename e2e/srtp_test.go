package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
