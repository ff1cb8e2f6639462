package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// udpRecord is one UDP datagram read from a pcap file.
type udpRecord struct {
	at       time.Time
	src, dst netip.AddrPort
	payload  []byte
	// off is the byte offset of the payload in the file.
	off int
}

// readUDPPcap reads a classic pcap (µs or ns timestamps, little-endian)
// of Ethernet (tshark on lo, tools/rtppcap) or raw IP (cloak's captures)
// frames and returns its UDP datagrams. TCP segments are returned too,
// with their payload, so SIP over TCP is not missed.
func readUDPPcap(t *testing.T, path string) []udpRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 {
		t.Fatalf("%s: %d bytes: not a pcap file", path, len(data))
	}
	nano := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nano = true
	default:
		t.Fatalf("%s: not a little-endian pcap file", path)
	}
	first := layers.LayerTypeEthernet
	switch lt := binary.LittleEndian.Uint32(data[20:]); lt {
	case uint32(layers.LinkTypeEthernet):
	case 101: // LINKTYPE_RAW
		first = layers.LayerTypeIPv4
	default:
		t.Fatalf("%s: link type %d", path, lt)
	}
	var out []udpRecord
	for off := 24; off+16 <= len(data); {
		sec := binary.LittleEndian.Uint32(data[off:])
		frac := binary.LittleEndian.Uint32(data[off+4:])
		size := int(binary.LittleEndian.Uint32(data[off+8:]))
		off += 16
		if off+size > len(data) {
			t.Fatalf("%s: truncated record at %d", path, off-16)
		}
		frame := data[off : off+size]
		start := off
		off += size
		lt := first
		if lt == layers.LayerTypeIPv4 && len(frame) > 0 && frame[0]>>4 == 6 {
			lt = layers.LayerTypeIPv6
		}
		pkt := gopacket.NewPacket(frame, lt, gopacket.NoCopy)
		var src, dst netip.Addr
		if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		} else if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
		}
		ns := int64(frac) * 1000
		if nano {
			ns = int64(frac)
		}
		r := udpRecord{at: time.Unix(int64(sec), ns)}
		switch l := pkt.TransportLayer().(type) {
		case *layers.UDP:
			r.src = netip.AddrPortFrom(src, uint16(l.SrcPort))
			r.dst = netip.AddrPortFrom(dst, uint16(l.DstPort))
			r.payload = l.Payload
		case *layers.TCP:
			r.src = netip.AddrPortFrom(src, uint16(l.SrcPort))
			r.dst = netip.AddrPortFrom(dst, uint16(l.DstPort))
			r.payload = l.Payload
		default:
			continue
		}
		r.off = start + len(frame) - len(r.payload)
		out = append(out, r)
	}
	return out
}

// rtpOf parses a datagram as RTP; ok is false for anything else (SIP,
// RTCP, cloak's capture markers).
func rtpOf(b []byte) (p rtp.Packet, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return p, false
	}
	if pt := b[1] & 0x7f; pt >= 72 && pt <= 79 { // RTCP
		return p, false
	}
	if p.Unmarshal(b) != nil {
		return p, false
	}
	return p, true
}

// decodeG711 appends the linear samples of a PCMU (PT 0) or PCMA (PT 8)
// payload.
func decodeG711(pt uint8, payload []byte, out []int16) []int16 {
	for _, b := range payload {
		if pt == 8 {
			out = append(out, g711.DecodeAlawFrame(b))
		} else {
			out = append(out, g711.DecodeUlawFrame(b))
		}
	}
	return out
}

// toneDigit is a digit found in audio, and when.
type toneDigit struct {
	digit byte
	at    time.Time // capture time of the packet the tone began in
	flow  string
}

// detectRTPDigits runs the in-band DTMF detector over every G.711 RTP
// stream (per source → destination) in recs, in arrival order, and returns
// each digit with the capture time of the packet in which it began.
func detectRTPDigits(t *testing.T, recs []udpRecord) []toneDigit {
	t.Helper()
	type stream struct {
		det   *dtmf.Detector
		times []time.Time // capture time of each packet fed
	}
	streams := map[string]*stream{}
	var found []toneDigit
	var pcm []int16
	for _, r := range recs {
		p, ok := rtpOf(r.payload)
		if !ok || (p.PayloadType != 0 && p.PayloadType != 8) {
			continue
		}
		key := r.src.String() + ">" + r.dst.String()
		s := streams[key]
		if s == nil {
			det, err := dtmf.NewDetector(dtmf.DetectorConfig{})
			if err != nil {
				t.Fatal(err)
			}
			s = &stream{det: det}
			streams[key] = s
		}
		pcm = decodeG711(p.PayloadType, p.Payload, pcm[:0])
		s.times = append(s.times, r.at)
		for _, ev := range s.det.Process(pcm) {
			if ev.Kind != dtmf.KindStart {
				continue
			}
			// Offset is the sample where the tone began; map it back to
			// the packet that carried it (20 ms packets of 160 samples).
			i := min(max(int(ev.Offset/160), 0), len(s.times)-1)
			found = append(found, toneDigit{digit: ev.Digit, at: s.times[i], flow: key})
		}
	}
	return found
}

// writeWAV writes 8 kHz 16-bit mono PCM.
func writeWAV(t *testing.T, path string, pcm []int16) {
	t.Helper()
	var b bytes.Buffer
	n := uint32(len(pcm) * 2)
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, 36+n)
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, n)
	_ = binary.Write(&b, binary.LittleEndian, pcm)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dtmfScan runs `cloak dtmf scan` over WAV files and returns its exit
// status (0: no digit, 1: digits found) and output.
func dtmfScan(t *testing.T, files ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cloakBin, append([]string{"dtmf", "scan"}, files...)...)
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if code == 2 || (err != nil && code < 0) {
		t.Fatalf("cloak dtmf scan: %v\n%s", err, out)
	}
	return code, string(out)
}

// goertzelPower returns the mean power of pcm at hz relative to the
// signal's total power (0..1): how much of the audio is that tone.
func toneShare(pcm []int16, hz float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * hz / 8000
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, x := range pcm {
		v := float64(x)
		s0 := v + coeff*s1 - s2
		s2, s1 = s1, s0
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	// A pure sine of N samples gives power N²A²/4 and energy NA²/2.
	return power / (energy * float64(len(pcm)) / 2)
}

// rtpWindow is the audio of packets sent to one port between two times.
type rtpStats struct {
	packets, events int
	pcm             []int16
}

// rtpBetween gathers RTP sent to dstPort with capture times in [from, to).
func rtpBetween(recs []udpRecord, dstPort int, from, to time.Time) rtpStats {
	var st rtpStats
	for _, r := range recs {
		if int(r.dst.Port()) != dstPort || r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		p, ok := rtpOf(r.payload)
		if !ok {
			continue
		}
		st.packets++
		if p.PayloadType != 0 && p.PayloadType != 8 {
			st.events++
			continue
		}
		st.pcm = decodeG711(p.PayloadType, p.Payload, st.pcm)
	}
	return st
}

// wireCapture is a tshark capture on lo of everything sent to some UDP
// ports, kept as a pcap file.
type wireCapture struct {
	*capture
}

// startWireCapture captures UDP to the given ports on lo.
func startWireCapture(t *testing.T, ports ...int) *wireCapture {
	t.Helper()
	var f []string
	for _, p := range ports {
		f = append(f, fmt.Sprintf("dst port %d", p))
	}
	return &wireCapture{startCaptureFilter(t, "udp and ("+strings.Join(f, " or ")+")")}
}

// records stops the capture and reads it.
func (w *wireCapture) records(t *testing.T) []udpRecord {
	t.Helper()
	w.finish()
	return readUDPPcap(t, w.file)
}

// logLine is one JSON log line of cloak.
type logLine struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	Call    string    `json:"call"`
	raw     map[string]any
	text    string
}

// parseLog reads cloak's JSON log.
func parseLog(t *testing.T, log string) []logLine {
	t.Helper()
	var out []logLine
	for _, s := range strings.Split(log, "\n") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			// Not JSON: a race report or panic; the harness checks those.
			continue
		}
		_ = json.Unmarshal([]byte(s), &l.raw)
		l.text = s
		out = append(out, l)
	}
	return out
}

// find returns the lines with msg (and, when call is set, of that call).
func findLog(lines []logLine, msg, call string) []logLine {
	var out []logLine
	for _, l := range lines {
		if l.Message == msg && (call == "" || l.Call == call) {
			out = append(out, l)
		}
	}
	return out
}

// str returns a string field of a log line.
func (l logLine) str(k string) string {
	s, _ := l.raw[k].(string)
	return s
}

// steps returns the flow steps a call went through, in order, as
// "step:branch".
func flowSteps(lines []logLine, call string) []string {
	var out []string
	for _, l := range findLog(lines, "flow step", call) {
		if l.str("step") != "" {
			out = append(out, l.str("step")+":"+l.str("branch"))
		}
	}
	return out
}

// apiGet fetches an admin API path into v.
func apiGet(t *testing.T, c *cloak, path string, v any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// apiPost posts a JSON body and returns the status and body.
func apiPost(t *testing.T, c *cloak, path, body string) (int, string) {
	t.Helper()
	return apiDo(t, c, http.MethodPost, path, body)
}

// apiDo sends method with a JSON body and the harness's admin token, and
// returns the status and body. 10 s: a monitor's POST waits for the
// supervisor's phone to answer.
func apiDo(t *testing.T, c *cloak, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, c.adminURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token) // the harness's admin token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiCall is what GET /api/calls returns per call.
type apiCall struct {
	ID       string            `json:"id"`
	Called   string            `json:"called"`
	Mode     string            `json:"mode"`
	Agent    string            `json:"agent"`
	Reserved bool              `json:"agent_reserved"`
	Data     map[string]string `json:"data"`
	Segments []struct {
		Flow    string            `json:"flow"`
		Outputs map[string]string `json:"outputs"`
	} `json:"secure_segments"`
}

// apiAgent is what GET /api/agents returns per agent.
type apiAgent struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// calls returns the live calls, tolerating either a bare array or an
// object wrapping it.
func apiCalls(t *testing.T, c *cloak) ([]apiCall, error) {
	t.Helper()
	var raw json.RawMessage
	if err := apiGet(t, c, "/api/calls", &raw); err != nil {
		return nil, err
	}
	var calls []apiCall
	if err := json.Unmarshal(raw, &calls); err == nil {
		return calls, nil
	}
	var wrapped struct {
		Calls []apiCall `json:"calls"`
	}
	err := json.Unmarshal(raw, &wrapped)
	return wrapped.Calls, err
}

// agentState returns the state of the named agent.
func agentState(t *testing.T, c *cloak, name string) string {
	t.Helper()
	var raw json.RawMessage
	if err := apiGet(t, c, "/api/agents", &raw); err != nil {
		t.Errorf("GET /api/agents: %v", err)
		return ""
	}
	var agents []apiAgent
	if json.Unmarshal(raw, &agents) != nil {
		var wrapped struct {
			Agents []apiAgent `json:"agents"`
		}
		_ = json.Unmarshal(raw, &wrapped)
		agents = wrapped.Agents
	}
	for _, a := range agents {
		if a.Name == name {
			return a.State
		}
	}
	return ""
}

// poller samples the API every 100 ms in the background and keeps the
// last snapshot of every call and every state each agent was seen in.
type poller struct {
	stop   chan struct{}
	done   chan struct{}
	calls  map[string]apiCall   // last snapshot per call id
	states map[string][]string  // agent → states seen, in order, deduplicated
	modes  map[string][]string  // call → modes seen
	seen   map[string]time.Time // call id → first seen
}

func startPoller(t *testing.T, c *cloak, agents ...string) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{}), calls: map[string]apiCall{},
		states: map[string][]string{}, modes: map[string][]string{}, seen: map[string]time.Time{}}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if calls, err := apiCalls(t, c); err == nil {
				for _, cl := range calls {
					p.calls[cl.ID] = cl
					if _, ok := p.seen[cl.ID]; !ok {
						p.seen[cl.ID] = time.Now()
					}
					if m := p.modes[cl.ID]; len(m) == 0 || m[len(m)-1] != cl.Mode {
						p.modes[cl.ID] = append(m, cl.Mode)
					}
				}
			}
			for _, a := range agents {
				var raw json.RawMessage
				if apiGet(t, c, "/api/agents", &raw) != nil {
					continue
				}
				var list []apiAgent
				_ = json.Unmarshal(raw, &list)
				for _, ag := range list {
					if ag.Name == a {
						if s := p.states[a]; len(s) == 0 || s[len(s)-1] != ag.State {
							p.states[a] = append(s, ag.State)
						}
					}
				}
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.finish)
	return p
}

// finish stops the poller; its maps are safe to read afterwards.
func (p *poller) finish() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// listFiles returns every regular file under dir, sorted, hidden ones
// included.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}
