package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// RTCP (issue 19): a real softphone (baresip) calls the echo route and
// both sides exchange RTCP, muxed (RFC 5761) and on RTP's port + 1; a
// caller written here loses every 20th packet and cloak must report the
// loss (5 %), in its API, its end-of-call log line and its own RTCP
// receiver report, with a MOS below a clean call's.

// apiQuality is one leg's quality in GET /api/calls.
type apiQuality struct {
	Leg          string  `json:"leg"`
	Received     uint32  `json:"received"`
	Expected     uint32  `json:"expected"`
	LossPct      float64 `json:"loss_pct"`
	JitterMs     float64 `json:"jitter_ms"`
	PeerReported bool    `json:"peer_reported"`
	PeerJitterMs float64 `json:"peer_jitter_ms"`
	RTTMs        float64 `json:"rtt_ms"`
	MOS          float64 `json:"mos"`
	RTCPSent     uint64  `json:"rtcp_sent"`
	RTCPReceived uint64  `json:"rtcp_received"`
	RTCPMux      bool    `json:"rtcp_mux"`
}

type apiCallQuality struct {
	ID      string       `json:"id"`
	Called  string       `json:"called"`
	Quality []apiQuality `json:"quality"`
}

// callerQuality returns the caller leg's figures of the one live call to
// called, if there is one.
func callerQuality(t *testing.T, c *cloak, called string) (string, apiQuality, bool) {
	t.Helper()
	var calls []apiCallQuality
	if err := apiGet(t, c, "/api/calls", &calls); err != nil {
		t.Logf("api: %v", err)
		return "", apiQuality{}, false
	}
	for _, cl := range calls {
		if cl.Called != called {
			continue
		}
		for _, q := range cl.Quality {
			if q.Leg == "caller" {
				return cl.ID, q, true
			}
		}
	}
	return "", apiQuality{}, false
}

// baresipConfig writes a headless baresip config dir: a 440 Hz sine as
// the microphone (ausine, which wants 48 kHz stereo and is resampled), a
// bridge device nobody reads as the speaker, PCMU only, no sound card,
// RTP statistics printed at hang-up.
func baresipConfig(t *testing.T, sipPort int, mux bool) string {
	t.Helper()
	dir := t.TempDir()
	muxv := "no"
	if mux {
		muxv = "yes"
	}
	cfg := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
audio_player		aubridge,sink
audio_alert		aubridge,sink
audio_source		ausine,440
ausrc_srate		48000
ausrc_channels		2
rtcp_mux		%s
rtp_stats		yes
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
`, sipPort, muxv)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// baresipReport matches the "pkt.report:" line of baresip's statistics
// (rtp_stats): packets the peer's RTCP reports, sent and received; the
// line is only there when RTCP reports arrived from the peer.
var baresipReport = regexp.MustCompile(`pkt\.report:\s+(\d+)\s+(\d+)`)

func TestRTCPBaresipEcho(t *testing.T) {
	requireTools(t, "baresip")
	for _, mux := range []bool{false, true} {
		name := "port+1"
		if mux {
			name = "mux"
		}
		t.Run(name, func(t *testing.T) {
			c := startCloak(t, cloakOpts{admin: true, json: true, logLevel: "info"})
			dir := baresipConfig(t, freePorts(t, 1, false), mux)
			const talk = 12 // seconds: two reports of baresip's (5 s), so one carries our SR's LSR even when its first was sent before our first SR arrived
			cmd := exec.Command("baresip", "-f", dir, "-n", "127.0.0.1", "-t", strconv.Itoa(talk),
				"-e", fmt.Sprintf("/dial sip:echo@127.0.0.1:%d", c.sipPort))
			var out strings.Builder
			var outMu sync.Mutex
			cmd.Stdout = writerFunc(func(b []byte) { outMu.Lock(); out.Write(b); outMu.Unlock() })
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{}) // closed when baresip has exited
			go func() { _ = cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
					<-done
				}
			})

			// While the call is up: cloak has baresip's report.
			var (
				id string
				q  apiQuality
			)
			deadline := time.Now().Add(time.Duration(talk-1) * time.Second)
			for time.Now().Before(deadline) {
				var ok bool
				// A first report may carry no LSR (sent before ours
				// arrived): wait for one that gives a round trip.
				if id, q, ok = callerQuality(t, c, "echo"); ok && q.RTCPReceived > 0 && q.PeerReported && q.RTTMs >= 0 {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if q.RTCPReceived == 0 || !q.PeerReported {
				t.Fatalf("no RTCP from baresip in the API during the call: %+v", q)
			}
			if q.RTCPMux != mux || q.Received < 100 || q.LossPct != 0 || q.RTTMs < 0 || q.RTTMs > 100 ||
				q.MOS < 4.3 || q.RTCPSent == 0 {
				t.Fatalf("API figures of a clean loopback call: %+v", q)
			}

			select {
			case <-done:
			case <-time.After(time.Duration(talk+10) * time.Second):
				t.Fatal("baresip did not end")
			}
			outMu.Lock()
			bout := out.String()
			outMu.Unlock()
			m := baresipReport.FindStringSubmatch(bout)
			if m == nil {
				t.Fatalf("baresip printed no pkt.report: no RTCP from cloak reached it:\n%s", tail(bout, 20))
			}
			if n, _ := strconv.Atoi(m[1]); n < 100 {
				t.Fatalf("cloak's report covered %d of baresip's packets: %s", n, m[0])
			}

			// The end-of-call line sums the leg up.
			var end logLine
			if !c.waitLog(`"media closed"`, 5*time.Second) {
				t.Fatal("no media closed line")
			}
			for _, l := range findLog(parseLog(t, c.log()), "media closed", id) {
				end = l
			}
			if end.raw == nil {
				t.Fatalf("no media closed line for call %s", id)
			}
			for _, k := range []string{"pkts", "loss_pct", "jitter_ms", "rtt_ms", "mos", "rtcp_rx", "rtcp_tx"} {
				if _, ok := end.raw[k].(float64); !ok {
					t.Fatalf("media closed line has no %s: %s", k, end.text)
				}
			}
			if end.raw["rtcp_rx"].(float64) < 1 || end.raw["rtcp_tx"].(float64) < 2 || end.raw["mos"].(float64) < 4.3 ||
				end.raw["rtt_ms"].(float64) < 0 {
				t.Fatalf("end figures: %s", end.text)
			}
			var st map[string]any
			if err := apiGet(t, c, "/api/stats", &st); err != nil {
				t.Fatal(err)
			}
			if v, _ := st["rtcp_received"].(float64); v < 1 {
				t.Fatalf("/api/stats rtcp_received %v", st["rtcp_received"])
			}
		})
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

// lossyCall places a call to echo from a caller written here that sends
// n 20 ms PCMU packets paced in real time, leaving out every skip-th (0:
// none), with its RTCP socket on its RTP port + 1. It returns the
// caller's figures from the API just before BYE, the RTCP reports cloak
// sent it, and cloak's end-of-call log line.
func lossyCall(t *testing.T, c *cloak, n, skip int) (apiQuality, []*rtcp.ReceiverReport, []*rtcp.SenderReport, logLine) {
	t.Helper()
	base := freePorts(t, 2, false)
	lo := netip.MustParseAddr("127.0.0.1")
	rtpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, uint16(base))))
	if err != nil {
		t.Fatal(err)
	}
	defer rtpConn.Close()
	rtcpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, uint16(base+1))))
	if err != nil {
		t.Fatal(err)
	}
	defer rtcpConn.Close()
	go func() { // drain the echo
		buf := make([]byte, 2048)
		for {
			if _, _, err := rtpConn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	var (
		mu  sync.Mutex
		rrs []*rtcp.ReceiverReport
		srs []*rtcp.SenderReport
	)
	go func() {
		buf := make([]byte, 2048)
		for {
			k, _, err := rtcpConn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:k])
			if err != nil {
				continue
			}
			mu.Lock()
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.ReceiverReport:
					rrs = append(rrs, p)
				case *rtcp.SenderReport:
					srs = append(srs, p)
				}
			}
			mu.Unlock()
		}
	}()

	u := newUAC(t, lo, netip.AddrPortFrom(lo, uint16(c.sipPort)), "echo")
	dst := u.invite(rtpConn.LocalAddr().(*net.UDPAddr).AddrPort())
	pkt := make([]byte, 12+160)
	for i := range pkt[12:] {
		pkt[12+i] = 0xFF
	}
	ssrc := rand.Uint32()
	seq0 := uint16(rand.Uint32())
	start := time.Now()
	for i := 0; i < n; i++ {
		if skip > 0 && i%skip == skip-1 {
			continue
		}
		rtpHeader(pkt, i == 0, 0, seq0+uint16(i), uint32(i)*160, ssrc)
		time.Sleep(time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)))
		_, _ = rtpConn.WriteToUDPAddrPort(pkt, dst)
	}
	time.Sleep(200 * time.Millisecond)
	id, q, ok := callerQuality(t, c, "echo")
	if !ok {
		t.Fatal("call not in the API")
	}
	u.bye()
	var end logLine
	deadline := time.Now().Add(5 * time.Second)
	for end.raw == nil && time.Now().Before(deadline) {
		for _, l := range findLog(parseLog(t, c.log()), "media closed", id) {
			end = l
		}
		time.Sleep(50 * time.Millisecond)
	}
	if end.raw == nil {
		t.Fatalf("no media closed line for %s", id)
	}
	time.Sleep(100 * time.Millisecond) // the BYE's compound packet
	mu.Lock()
	defer mu.Unlock()
	return q, rrs, srs, end
}

func TestRTCPReportsInjectedLoss(t *testing.T) {
	requireTools(t)
	c := startCloak(t, cloakOpts{admin: true, json: true, logLevel: "info", rtpExtra: "  rtcp:\n    interval: 1s\n"})
	const n = 201 // 0..200; every 20th left out: 10 of 201 (4.98 %)
	clean, _, _, cleanEnd := lossyCall(t, c, n, 0)
	lossy, rrs, srs, end := lossyCall(t, c, n, 20)

	if clean.Received != n || clean.LossPct != 0 {
		t.Fatalf("clean call: %+v", clean)
	}
	if lossy.Expected != n || lossy.Received != n-10 || lossy.LossPct < 4 || lossy.LossPct > 6 {
		t.Fatalf("5 %% loss reported as %+v", lossy)
	}
	if !(lossy.MOS < clean.MOS) || lossy.MOS < 3 {
		t.Fatalf("MOS lossy %.2f, clean %.2f: want lower, and not absurd", lossy.MOS, clean.MOS)
	}
	if lossy.JitterMs > 20 {
		t.Fatalf("jitter %.2f ms on a paced loopback stream", lossy.JitterMs)
	}
	for _, k := range []string{"loss_pct", "mos"} {
		if _, ok := end.raw[k].(float64); !ok {
			t.Fatalf("end line has no %s: %s", k, end.text)
		}
	}
	if lp := end.raw["loss_pct"].(float64); lp < 4 || lp > 6 {
		t.Fatalf("end line loss %.2f %%: %s", lp, end.text)
	}
	if end.raw["mos"].(float64) >= cleanEnd.raw["mos"].(float64) {
		t.Fatalf("end line MOS %v not below the clean call's %v", end.raw["mos"], cleanEnd.raw["mos"])
	}
	// cloak's own reports (SR: echo sends) carry the loss in their block;
	// SRs and RRs each arrive in order (an RR only before cloak sends).
	var srBlocks, rrBlocks []rtcp.ReceptionReport
	for _, sr := range srs {
		srBlocks = append(srBlocks, sr.Reports...)
	}
	for _, rr := range rrs {
		rrBlocks = append(rrBlocks, rr.Reports...)
	}
	blocks := append(append([]rtcp.ReceptionReport(nil), rrBlocks...), srBlocks...)
	if len(blocks) == 0 {
		t.Fatalf("no report block from cloak on port+1 (%d SR, %d RR)", len(srs), len(rrs))
	}
	last := blocks[len(blocks)-1]
	if last.TotalLost < 8 || last.TotalLost > 10 {
		t.Fatalf("cloak's last report block: cumulative lost %d, want ≈10: %+v", last.TotalLost, last)
	}
	// Each block's fraction lost is the interval's loss (RFC 3550 §6.4.1,
	// A.3): between two blocks, lost and expected move by what the
	// cumulative count and the highest sequence number say. An interval
	// may be short (the report sent at hang-up), so compare with that,
	// not with 5 %.
	var frac []uint8
	for i, b := range blocks {
		frac = append(frac, b.FractionLost)
		if i == 0 || i == len(rrBlocks) {
			continue // the first block of each run has no block before it
		}
		prev := blocks[i-1]
		expected := int64(b.LastSequenceNumber) - int64(prev.LastSequenceNumber)
		lost := int64(b.TotalLost) - int64(prev.TotalLost)
		if expected <= 0 {
			continue // no packet in the interval: RFC 3550 A.3 reports 0
		}
		want := int64(0)
		if lost > 0 {
			want = lost * 256 / expected
		}
		if d := int64(b.FractionLost) - want; d < -1 || d > 1 {
			t.Fatalf("block %d: fraction lost %d/256, want %d/256 (%d lost of %d expected since the last block): %+v",
				i, b.FractionLost, want, lost, expected, b)
		}
	}
	t.Logf("clean MOS %.2f, 5%% loss MOS %.2f (loss %.2f%%, jitter %.2f ms); cloak's blocks' fraction lost %v",
		clean.MOS, lossy.MOS, lossy.LossPct, lossy.JitterMs, frac)
}
