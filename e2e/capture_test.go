package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pion/rtp"
)

// capture is a tshark capture on lo of the UDP cloak sends from its RTP
// port range.
type capture struct {
	t      *testing.T
	cmd    *exec.Cmd
	file   string
	stderr *lockedBuffer
	done   chan struct{}
	cancel context.CancelFunc
}

// startCapture starts tshark and waits until it captures.
func startCapture(t *testing.T, c *cloak) *capture {
	t.Helper()
	return startCaptureFilter(t, fmt.Sprintf("udp src portrange %d-%d", c.rtpLo, c.rtpHi))
}

// startCaptureFilter starts tshark on lo with a capture filter and waits
// until it captures.
func startCaptureFilter(t *testing.T, filter string) *capture {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cp := &capture{t: t, file: filepath.Join(dir, "rtp.pcap"), stderr: &lockedBuffer{}, done: make(chan struct{}), cancel: cancel}
	cp.cmd = exec.CommandContext(ctx, "tshark", "-n", "-i", "lo", "-f", filter, "-F", "pcap", "-w", cp.file)
	cp.cmd.Stderr = cp.stderr
	cp.cmd.Cancel = func() error { return cp.cmd.Process.Signal(syscall.SIGINT) }
	cp.cmd.WaitDelay = 5 * time.Second
	if err := cp.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("tshark: %v", err)
	}
	go func() {
		_ = cp.cmd.Wait()
		close(cp.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-cp.done
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(cp.stderr.String(), "Capturing on") {
		select {
		case <-cp.done:
			t.Fatalf("tshark exited before capturing (capturing on lo needs root or CAP_NET_RAW):\n%s", cp.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tshark did not start capturing within 15s:\n%s", cp.stderr.String())
		}
	}
	return cp
}

// rtpPacket is one RTP packet seen on the wire.
type rtpPacket struct {
	dstPort int
	pt      uint8
	payload string // hex
}

// stop ends the capture and returns the RTP packets sent to dstPort.
func (cp *capture) stop(dstPort int) []rtpPacket {
	cp.t.Helper()
	cp.finish()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-r", cp.file,
		"-d", fmt.Sprintf("udp.port==%d,rtp", dstPort),
		"-Y", fmt.Sprintf("rtp && udp.dstport==%d", dstPort),
		"-T", "fields", "-e", "udp.dstport", "-e", "rtp.p_type", "-e", "rtp.payload").Output()
	if err != nil {
		cp.t.Fatalf("tshark -r: %v\ncapture stderr:\n%s", err, cp.stderr.String())
	}
	var pkts []rtpPacket
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		port, _ := strconv.Atoi(f[0])
		pt, _ := strconv.Atoi(f[1])
		pkts = append(pkts, rtpPacket{dstPort: port, pt: uint8(pt), payload: strings.ReplaceAll(f[2], ":", "")})
	}
	return pkts
}

// finish lets the last packets reach the capture and stops tshark; the
// file is complete afterwards.
func (cp *capture) finish() {
	select {
	case <-cp.done:
		return
	default:
	}
	time.Sleep(300 * time.Millisecond)
	_ = cp.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-cp.done:
	case <-time.After(10 * time.Second):
		cp.cancel()
		<-cp.done
	}
}

// pcapPayloads reads a classic pcap of Ethernet/IPv4/UDP/RTP frames (as
// tools/rtppcap writes them) and returns the payload type and the set of
// RTP payloads, hex-encoded.
func pcapPayloads(t *testing.T, path string) (pt uint8, payloads map[string]bool, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian µs pcap", path)
	}
	payloads = map[string]bool{}
	for off := 24; off+16 <= len(data); {
		size := int(binary.LittleEndian.Uint32(data[off+8:]))
		off += 16
		if off+size > len(data) {
			t.Fatalf("%s: truncated", path)
		}
		pkt := gopacket.NewPacket(data[off:off+size], layers.LayerTypeEthernet, gopacket.Default)
		off += size
		udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			t.Fatalf("%s: frame without UDP", path)
		}
		var p rtp.Packet
		if err := p.Unmarshal(udp.Payload); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		pt = p.PayloadType
		payloads[hex.EncodeToString(p.Payload)] = true
		n++
	}
	return pt, payloads, n
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
