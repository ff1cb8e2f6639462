package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// TestPCIDisablesCaptures: pci: true turns SIP and RTP capture off whatever
// capture: asks for, and says so; without it the captures open.
func TestPCIDisablesCaptures(t *testing.T) {
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Capture.SIPPcap, cfg.Capture.RTPPcap, cfg.Capture.HEP = true, true, "127.0.0.1:9060"
	cfg.PCI = true
	var logs bytes.Buffer
	caps, closeCaps, err := captureSetup(cfg, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	closeCaps()
	if caps.SIP != nil || caps.RTP != nil {
		t.Fatal("pci: true left a capture on")
	}
	if !strings.Contains(logs.String(), "capture are OFF") {
		t.Fatalf("pci did not say so at start: %s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.Data.Dir, "captures")); !os.IsNotExist(err) {
		t.Fatal("pci: true created a captures directory")
	}

	cfg.PCI = false
	caps, closeCaps, err = captureSetup(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if caps.SIP == nil || caps.RTP == nil {
		t.Fatal("captures not opened without pci")
	}
	closeCaps()
	files, _ := filepath.Glob(filepath.Join(cfg.Data.Dir, "captures", "*.pcap"))
	if len(files) != 2 {
		t.Fatalf("pcaps after close: %v", files)
	}
}

// TestRecordingKeyCreatedOnce: the signing key is made on first start
// (mode 0600) and reused after.
func TestRecordingKeyCreatedOnce(t *testing.T) {
	cfg := config.Default()
	cfg.Data.Dir = t.TempDir()
	a, err := recordingSetup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(cfg.Data.Dir, "recording.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	b, err := recordingSetup(cfg)
	if err != nil || !bytes.Equal(a.key, b.key) || len(a.key) < 32 {
		t.Fatalf("key not reused (%v)", err)
	}
}

// The config package validates dtmf modes by name and dtmf parses them:
// every name the one accepts the other must know, and a route keeps its own.
func TestDTMFModesParse(t *testing.T) {
	for _, name := range config.DTMFModes {
		if _, err := dtmf.ParsePolicy(name); err != nil {
			t.Errorf("config accepts %q, dtmf does not: %v", name, err)
		}
	}
	mode, routes, err := dtmfModes(config.DTMF{Mode: "auto", Routes: map[string]string{"pay": "inband"}})
	if err != nil || mode != dtmf.Auto || routes["pay"] != dtmf.Inband {
		t.Fatalf("dtmfModes: %v %v %v", mode, routes, err)
	}
	if slices.Contains(config.DTMFModes, dtmf.Negotiated.String()) {
		t.Fatal("negotiated is the agents' policy, not a configuration value")
	}
}

// TestSIPContactIgnoresRTPAddress: with sip.advertise and rtp.address
// both set, SIP's Contact carries sip.advertise (it carried rtp.address);
// with neither, the listen address.
func TestSIPContactIgnoresRTPAddress(t *testing.T) {
	cfg := config.Default()
	listen := netip.MustParseAddrPort("0.0.0.0:5060")
	cfg.SIP.Listen, cfg.SIP.Advertise, cfg.RTP.Address = listen.String(), "203.0.113.5", "198.51.100.20"
	if got := sipContactAddr(cfg, listen); got.String() != "203.0.113.5" {
		t.Errorf("Contact advertises %s, want sip.advertise 203.0.113.5", got)
	}
	cfg.SIP.Advertise, cfg.RTP.Address = "", "198.51.100.20"
	if got := sipContactAddr(cfg, listen); got != listen.Addr() {
		t.Errorf("Contact advertises %s with only rtp.address set, want the listen address", got)
	}
}

// TestRTPSourceAnyWarns: rtp.source any is said at start at warn level;
// strict (the default) and learn are not.
func TestRTPSourceAnyWarns(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   media.SourcePolicy
		warns  bool
	}{{"strict", media.SourceStrict, false}, {"learn", media.SourceLearn, false}, {"any", media.SourceAny, true}} {
		cfg := config.Default()
		cfg.RTP.Source = tc.source
		var logs bytes.Buffer
		got, err := rtpSource(cfg, zerolog.New(&logs))
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v", tc.source, got, err)
		}
		if warned := strings.Contains(logs.String(), `"level":"warn"`); warned != tc.warns {
			t.Errorf("%s: warned=%v: %s", tc.source, warned, logs.String())
		}
	}
	cfg := config.Default()
	cfg.RTP.Source = "latch"
	if _, err := rtpSource(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "rtp.source") {
		t.Errorf("unknown source: %v", err)
	}
}

// freeUDPPort returns a port that was free for UDP and TCP on loopback a
// moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestRunServesAndShutsDown: Run assembles a node from the defaults on
// loopback, answers OPTIONS once ready, writes the recording key, and
// returns nil when its context ends.
func TestRunServesAndShutsDown(t *testing.T) {
	cfg := config.Default()
	sipPort := freeUDPPort(t)
	rtp := freeUDPPort(t) &^ 1
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", sipPort)
	cfg.RTP.Ports = fmt.Sprintf("%d-%d", rtp, rtp+9)
	cfg.Data.Dir = t.TempDir()
	cfg.Admin.Listen = ""
	cfg.Shutdown.Grace = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	stop := runUntilReady(t, cfg)
	c, err := net.Dial("udp", cfg.SIP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opt := "OPTIONS sip:cloak@" + cfg.SIP.Listen + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";branch=z9hG4bK-run\r\n" +
		"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:cloak@127.0.0.1>\r\nCall-ID: run@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(opt)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Fatalf("OPTIONS answered %q, %v", buf[:n], err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Data.Dir, "recording.key")); err != nil {
		t.Errorf("no recording key after start: %v", err)
	}
	stop()
}

// runUntilReady starts Run and returns a function that stops it and
// waits for it to return.
func runUntilReady(t *testing.T, cfg config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *sip.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, zerolog.Nop(), Options{Version: "test", Ready: func(s *sip.Server) { ready <- s }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("not ready within 15 s")
	}
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return within 15 s of its context ending")
		}
	}
}
