package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
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

	capt "github.com/cloak-voip/cloak/capture"
)

// The leak canary (issue 6). Every sink on: recording always, SIP pcap,
// RTP pcap, HEP to a collector this test runs, debug JSON logs (the
// harness copies cloak's stderr into DATA/cloak.log), participant data.
// A caller keys a canary card number, expiry and CVV into pay (card and
// expiry as RFC 4733 events, the CVV as SIP INFO application/dtmf-relay),
// and in a second scenario, after the agent's *7, into secure-pay as
// in-band tones (no telephone-event negotiated) before return_to_agent.
// Then everything cloak wrote is searched.
//
// What is searched, and how:
//
//   - The card number: in every byte of every file under the data dir (log
//     included) and of every HEP datagram, as text, and as its digits
//     separated by up to three of ` -,.:;/|_"'[]` and tabs (so "4 1 1 1",
//     "4-1-1-1", "4111 1111 ...", [4,1,1,...], ["4","1",...]), and its first
//     twelve digits the same way (a masked form may show only the last
//     four). In text (logs, sidecars, SIP messages in pcaps and HEP) also
//     with the digits interleaved by up to twelve bytes of anything that is
//     not a digit. Audio (WAV data, RTP payloads) is binary: only the strict
//     forms are searched there, since arbitrary bytes would match loose
//     patterns by chance.
//   - The expiry and CVV are four and three digits: as raw bytes they occur
//     by chance in audio, hashes, ports and timestamps, so they are searched
//     where a leak would be meaningful: in every JSON string value of the
//     log lines and sidecars (as a token, not inside a longer number or
//     hex id, also separated or as 12/30), in JSON numbers whose key names a
//     card field, and in SIP: no INFO, no application/dtmf-relay, no
//     Signal= in any captured message.
//   - Audio: the RTP pcap's G.711 streams go through dtmf.Detector; no
//     digit may begin inside a secure segment, and no packet of the call
//     may be captured inside one. Every recording goes through `cloak dtmf
//     scan` (no digit) and `cloak recording verify`.
//   - The recording's secure pause markers cover the segment (every digit
//     cloak received in secure mode falls inside a marker) and its length
//     matches the call's (answer to hang-up, ±0.5 s).
//   - tshark on the SIP pcap: each call's INVITE, 200, ACK and BYE are
//     there, nothing timed inside a secure segment; the same for HEP.
//
// TestLeakCanaryCatches plants each kind of leak and proves the search
// reports it (file and byte offset).
func TestLeakCanary(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp", "tshark")
	t.Run("pay", func(t *testing.T) {
		t.Parallel()
		hep := startHEPCollector(t)
		c := startCloak(t, ivrOpts(canaryYAML(hep.addr)))
		s := runSipp(t, c, sippArgs{
			scenario: "ivr-info.xml", service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
			keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
				"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
		})
		lines, id := endedByCloak(t, c, s)
		checkStepsInOrder(t, flowSteps(lines, id), "get_card:on_valid", "get_expiry:on_valid", "get_cvv:on_valid", "approved:next")
		// The CVV really went in by SIP INFO.
		var info int
		for _, l := range findLog(lines, "digit", id) {
			if l.str("source") == "info" {
				info++
			}
		}
		if info != 4 {
			t.Errorf("%d digits from SIP INFO, want 4", info)
		}
		checkCanary(t, c, lines, hep.finish(), "")
	})
	t.Run("agent", func(t *testing.T) {
		t.Parallel()
		hep := startHEPCollector(t)
		r := &agentRig{agentPcap: "pcap/agent-star7.pcap", callerPcap: "pcap/caller-agent-inband.pcap", callerFmts: "0",
			callerScenario: "ivr-hangup.xml", callerPause: 29 * time.Second}
		r.start(t, canaryYAML(hep.addr))
		lines, recs := r.finish(t)
		checkAgentSession(t, r, lines, recs, "feature-code")
		checkCanary(t, r.c, lines, hep.finish(), "2")
	})
}

// canaryYAML turns every sink on.
func canaryYAML(hep string) string {
	return fmt.Sprintf(`recording:
  default: always
  routes: {pay: always, main: always}
capture:
  sip_pcap: true
  rtp_pcap: true
  hep: %q
  hep_agent_id: 4242
pci: false
`, hep)
}

// hepCollector keeps every datagram sent to it.
type hepCollector struct {
	addr string
	conn net.PacketConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

func startHEPCollector(t *testing.T) *hepCollector {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hepCollector{addr: conn.LocalAddr().String(), conn: conn, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.got = append(h.got, bytes.Clone(buf[:n]))
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-h.done })
	return h
}

// finish closes the collector (after a moment for datagrams in flight)
// and returns what it received.
func (h *hepCollector) finish() [][]byte {
	time.Sleep(200 * time.Millisecond)
	h.conn.Close()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// leak is one finding: where, at which byte offset, and what matched.
type leak struct {
	where string
	off   int
	what  string
}

func (l leak) String() string { return fmt.Sprintf("%s at byte %d: %s", l.where, l.off, l.what) }

// canary holds the compiled searches for one set of secrets.
type canary struct {
	strict []*regexp.Regexp // card forms, for any bytes
	loose  []*regexp.Regexp // card forms, for text
	short  []*regexp.Regexp // expiry and CVV forms, for JSON string values
	shortN map[string]bool  // expiry and CVV as JSON numbers
}

const sepClass = `[ \t\-,.:;/|_"'\[\]]`

// digitsRe matches the digits of s, each pair separated by what sep
// matches.
func digitsRe(s, sep string) string {
	var b strings.Builder
	for i, d := range s {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteRune(d)
	}
	return b.String()
}

func newCanary(card, expiry, cvv string) *canary {
	c := &canary{shortN: map[string]bool{}}
	for _, v := range []string{card, card[:12]} {
		c.strict = append(c.strict, regexp.MustCompile(digitsRe(v, sepClass+`{0,3}`)))
		c.loose = append(c.loose, regexp.MustCompile(`(?s)`+digitsRe(v, `\D{0,12}`)))
	}
	// Short values only as a token: not inside a longer number, word or
	// hex id.
	tok := func(body string) *regexp.Regexp {
		return regexp.MustCompile(`(^|[^0-9A-Za-z])(` + body + `)([^0-9A-Za-z]|$)`)
	}
	for _, v := range []string{expiry, cvv} {
		c.short = append(c.short, tok(digitsRe(v, sepClass+`{0,3}`)))
		c.shortN[v] = true
	}
	// MM/YY and MM-YY.
	c.short = append(c.short, tok(expiry[:2]+`\s?[/\-]\s?`+expiry[2:]))
	return c
}

// scanBytes searches b for the card; text also gets the loose forms.
func (c *canary) scanBytes(where string, base int, b []byte, text bool) []leak {
	var out []leak
	res := c.strict
	if text {
		res = append(append([]*regexp.Regexp(nil), c.strict...), c.loose...)
	}
	seen := map[int]bool{}
	for _, re := range res {
		for _, m := range re.FindAllIndex(b, -1) {
			if seen[m[0]] {
				continue
			}
			seen[m[0]] = true
			out = append(out, leak{where, base + m[0], fmt.Sprintf("card number as %q", b[m[0]:m[1]])})
		}
	}
	return out
}

// cardKey names JSON keys whose numbers would be card data.
var cardKey = regexp.MustCompile(`(?i)cvv|cvc|csc|exp|card|pan|digit|secret|pin|value|code`)

// scanJSON walks a JSON document and checks string values (and keys) for
// the short values as tokens, and numbers under card-like keys. Times are
// skipped (a timestamp's 12:30 is not an expiry; the forms searched do not
// use ':' anyway).
func (c *canary) scanJSON(where string, base int, doc []byte) []leak {
	var v any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil
	}
	var out []leak
	report := func(s, what string) {
		off := bytes.Index(doc, []byte(s))
		out = append(out, leak{where, base + max(off, 0), what})
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				for _, re := range c.short {
					if re.MatchString(k) {
						report(k, fmt.Sprintf("expiry/CVV in JSON key %q", k))
					}
				}
				walk(k, e)
			}
		case []any:
			// An array of digits spells a value: join it.
			var joined strings.Builder
			for _, e := range x {
				walk(key, e)
				joined.WriteString(fmt.Sprint(e))
			}
			if c.shortN[joined.String()] && len(x) > 1 {
				report(strings.TrimPrefix(fmt.Sprint(x[0]), ""), fmt.Sprintf("expiry/CVV as a JSON array under %q", key))
			}
		case string:
			if key == "time" {
				return
			}
			for _, re := range c.short {
				if m := re.FindStringSubmatch(x); m != nil {
					report(x, fmt.Sprintf("expiry/CVV %q in %q: %q", m[2], key, x))
				}
			}
		case json.Number:
			if c.shortN[x.String()] && cardKey.MatchString(key) {
				report(x.String(), fmt.Sprintf("expiry/CVV as the number %s under %q", x, key))
			}
		}
	}
	walk("", v)
	return out
}

// scanSIP checks one captured SIP message: no INFO, no DTMF relay body.
func scanSIP(where string, base int, msg []byte) []leak {
	var out []leak
	if bytes.HasPrefix(msg, []byte("INFO ")) {
		out = append(out, leak{where, base, "a SIP INFO request was captured"})
	}
	for _, bad := range []string{"application/dtmf", "Signal=", "Signal ="} {
		if i := bytes.Index(msg, []byte(bad)); i >= 0 {
			out = append(out, leak{where, base + i, fmt.Sprintf("SIP message carries %q", bad)})
		}
	}
	return out
}

// isSIP reports whether a datagram looks like a SIP message.
func isSIP(b []byte) bool {
	return bytes.Contains(b[:min(len(b), 200)], []byte("SIP/2.0"))
}

// scanFile searches one file by its kind.
func (c *canary) scanFile(t *testing.T, path string) []leak {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := path
	var out []leak
	switch {
	case strings.HasSuffix(path, ".wav"):
		out = append(out, c.scanBytes(name, 0, data, false)...)
	case strings.HasSuffix(path, ".pcap"):
		out = append(out, c.scanBytes(name, 0, data, false)...)
		for _, r := range readUDPPcap(t, path) {
			if isSIP(r.payload) {
				out = append(out, c.scanBytes(name, r.off, r.payload, true)...)
				out = append(out, scanSIP(name, r.off, r.payload)...)
			}
		}
	default: // logs, sidecars, anything else: text
		out = append(out, c.scanBytes(name, 0, data, true)...)
		if json.Valid(data) {
			out = append(out, c.scanJSON(name, 0, data)...)
			break
		}
		off := 0
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			if json.Valid(bytes.TrimSpace(line)) {
				out = append(out, c.scanJSON(name, off, line)...)
			}
			off += len(line)
		}
	}
	return out
}

// window is a secure segment of a call, from cloak's log.
type window struct {
	call       string
	start, end time.Time
}

func (w window) has(at time.Time) bool { return !at.Before(w.start) && !at.After(w.end) }

// secureWindows returns every secure segment in the log; one still open
// when the call ended closes with the call.
func secureWindows(t *testing.T, lines []logLine) []window {
	t.Helper()
	var out []window
	open := map[string]int{}
	for _, l := range lines {
		switch l.Message {
		case "secure segment started", "payment started": // a payment is a secure window too (issue 29)
			open[l.Call] = len(out)
			out = append(out, window{call: l.Call, start: l.Time})
		case "secure segment ended", "payment ended", "call ended":
			if i, ok := open[l.Call]; ok {
				out[i].end = l.Time
				delete(open, l.Call)
			}
		}
	}
	for _, w := range out {
		if w.end.IsZero() {
			t.Errorf("secure segment of %s never ended", w.call)
		}
	}
	return out
}

// checkCanary runs every check of the leak canary over a stopped cloak.
// normalKeys are the keys the caller pressed in normal mode (outside
// every secure segment): the only digits allowed in the recordings.
func checkCanary(t *testing.T, c *cloak, lines []logLine, hep [][]byte, normalKeys string) {
	t.Helper()
	cn := newCanary(testCard, testExpiry, testCVV)
	wins := secureWindows(t, lines)
	if len(wins) == 0 {
		t.Fatal("no secure segment in the log")
	}
	inWindow := func(at time.Time) (window, bool) {
		for _, w := range wins {
			if w.has(at) {
				return w, true
			}
		}
		return window{}, false
	}
	var leaks []leak
	if os.Getenv("CLOAK_E2E_PLANT") != "" {
		// Proof the canary can fail: plant the card where cloak writes.
		plant := filepath.Join(c.dataDir, "captures", "planted.log")
		if err := os.WriteFile(plant, []byte(`{"msg":"x","pan":"`+digitsRe(testCard, " ")+`"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("CLOAK_E2E_PLANT: planted the card in %s; this test must fail", plant)
	}

	// (a) Every byte of every file, by kind.
	files := listFiles(t, c.dataDir)
	var wavs, sipPcaps, rtpPcaps []string
	for _, f := range files {
		leaks = append(leaks, cn.scanFile(t, f)...)
		base := filepath.Base(f)
		switch {
		case strings.HasPrefix(base, "."):
			t.Errorf("%s: a hidden (partial) file left behind", f)
		case strings.HasSuffix(f, ".wav"):
			wavs = append(wavs, f)
		case strings.HasPrefix(base, "sip-") && strings.HasSuffix(f, ".pcap"):
			sipPcaps = append(sipPcaps, f)
		case strings.HasPrefix(base, "rtp-") && strings.HasSuffix(f, ".pcap"):
			rtpPcaps = append(rtpPcaps, f)
		}
	}
	t.Logf("searched %d files: %d recordings, %d SIP pcaps, %d RTP pcaps; %d HEP datagrams", len(files), len(wavs), len(sipPcaps), len(rtpPcaps), len(hep))
	if len(wavs) == 0 || len(sipPcaps) != 1 || len(rtpPcaps) != 1 || len(hep) == 0 {
		t.Fatalf("want recordings, one SIP pcap, one RTP pcap and HEP datagrams; files: %v", files)
	}

	// Log: every digit cloak received in secure mode is masked.
	for _, l := range lines {
		if d, ok := l.raw["digit"].(string); ok && d != "*" {
			if _, in := inWindow(l.Time); in {
				leaks = append(leaks, leak{c.logFile, bytes.Index([]byte(c.log()), []byte(l.text)), fmt.Sprintf("digit %q logged in clear in a secure segment", d)})
			}
		}
	}

	// HEP: every datagram, raw and decoded.
	var hepSIP []hepMsg
	for i, d := range hep {
		where := fmt.Sprintf("HEP datagram #%d", i)
		leaks = append(leaks, cn.scanBytes(where, 0, d, true)...)
		p, err := capt.DecodeHEP(d)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		leaks = append(leaks, scanSIP(where, len(d)-len(p.Payload), p.Payload)...)
		if w, in := inWindow(p.Time); in && p.Time.Sub(w.start) > 20*time.Millisecond && w.end.Sub(p.Time) > 20*time.Millisecond {
			leaks = append(leaks, leak{where, 0, fmt.Sprintf("SIP message captured inside a secure segment at %s: %.40q", p.Time.Format("15:04:05.000000"), p.Payload)})
		}
		hepSIP = append(hepSIP, hepMsg{p.CorrelationID, sipFirstLine(p.Payload), p.Payload})
	}

	// (a, audio) The RTP pcap: nothing of a call inside its secure
	// segment, and no DTMF digit begins inside one.
	rtpRecs := readUDPPcap(t, rtpPcaps[0])
	var rtpCount int
	for _, r := range rtpRecs {
		if _, ok := rtpOf(r.payload); !ok {
			continue
		}
		rtpCount++
		if w, in := inWindow(r.at); in && r.at.Sub(w.start) > 20*time.Millisecond && w.end.Sub(r.at) > 20*time.Millisecond {
			leaks = append(leaks, leak{rtpPcaps[0], r.off, fmt.Sprintf("RTP %v → %v captured inside the secure segment (%s)", r.src, r.dst, r.at.Format("15:04:05.000"))})
		}
	}
	for _, d := range detectRTPDigits(t, rtpRecs) {
		if _, in := inWindow(d.at); in {
			leaks = append(leaks, leak{rtpPcaps[0], 0, fmt.Sprintf("DTMF digit %c in the RTP capture inside a secure segment (%s, %s)", d.digit, d.flow, d.at.Format("15:04:05.000"))})
		} else {
			t.Logf("RTP capture: DTMF %c outside the secure segments (%s, %s): normal mode, allowed", d.digit, d.flow, d.at.Format("15:04:05.000"))
		}
	}
	t.Logf("RTP capture: %d RTP packets", rtpCount)

	// (d) tshark on the SIP pcap: the calls' other messages are there,
	// none from inside a secure segment.
	// A call that hung up inside a payment sent its BYE while the gate
	// kept SIP out of the captures: no BYE is expected there.
	var byeInside bool
	for _, l := range findLog(lines, "payment ended", "") {
		byeInside = byeInside || l.str("reason") == "hangup"
	}
	answer := answerInside(lines, wins)
	checkSIPPcap(t, sipPcaps[0], lines, inWindow, &leaks, byeInside, answer)
	checkHEPMessages(t, hepSIP, lines, byeInside, answer, &leaks)

	// (b, c) Recordings.
	checkRecordings(t, c, wavs, lines, wins, normalKeys)

	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
}

// hepMsg is one SIP message received over HEP.
type hepMsg struct {
	callID, first string
	payload       []byte
}

func sipFirstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// callIDs returns the SIP Call-IDs of cloak's calls and legs in the log.
func sipCallIDs(lines []logLine) []string {
	var ids []string
	for _, l := range lines {
		if id := l.str("sip_call_id"); id != "" && l.Message == "call offered" {
			ids = append(ids, id)
		}
	}
	return ids
}

// answerInside returns the SIP Call-IDs of the calls answered inside a
// secure segment: a call routed to a secure flow is secure from before
// its answer (call/flow.go, secureFromAnswer), so its 200 OK and ACK must
// be missing from every capture, however late the ACK comes.
func answerInside(lines []logLine, wins []window) map[string]bool {
	sipID := map[string]string{}
	for _, l := range findLog(lines, "call offered", "") {
		sipID[l.Call] = l.str("sip_call_id")
	}
	out := map[string]bool{}
	for _, l := range findLog(lines, "call answered", "") {
		for _, w := range wins {
			if w.call == l.Call && w.has(l.Time) && sipID[l.Call] != "" {
				out[sipID[l.Call]] = true
			}
		}
	}
	return out
}

// checkSIPPcap reads the SIP pcap with tshark.
func checkSIPPcap(t *testing.T, path string, lines []logLine, inWindow func(time.Time) (window, bool), leaks *[]leak, byeInside bool, answerInside map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-r", path, "-Y", "sip",
		"-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "sip.Method",
		"-e", "sip.Status-Code", "-e", "sip.CSeq.method", "-e", "sip.Call-ID").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	seen := map[string]map[string]bool{} // Call-ID → "INVITE", "200 INVITE", ...
	var n int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 6 {
			continue
		}
		n++
		sec, _ := strconv.ParseFloat(f[1], 64)
		at := time.Unix(0, int64(sec*1e9))
		what := f[2]
		if what == "" {
			what = f[3] + " " + f[4]
		}
		if seen[f[5]] == nil {
			seen[f[5]] = map[string]bool{}
		}
		seen[f[5]][what] = true
		if f[2] == "INFO" || f[4] == "INFO" {
			*leaks = append(*leaks, leak{path, 0, fmt.Sprintf("frame %s: SIP %s (INFO) captured", f[0], what)})
		}
		if w, in := inWindow(at); in && at.Sub(w.start) > 20*time.Millisecond && w.end.Sub(at) > 20*time.Millisecond {
			*leaks = append(*leaks, leak{path, 0, fmt.Sprintf("frame %s: SIP %s captured inside the secure segment", f[0], what)})
		}
	}
	ids := sipCallIDs(lines)
	if len(ids) == 0 {
		t.Fatal("no sip_call_id in the log")
	}
	for _, id := range ids {
		for _, want := range []string{"INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"} {
			switch inside := answerInside[id] && (want == "200 INVITE" || want == "ACK"); {
			case inside && seen[id][want]:
				*leaks = append(*leaks, leak{path, 0, fmt.Sprintf("call %s answered inside its secure segment: %s captured", id, want)})
			case !inside && !seen[id][want] && !(byeInside && strings.HasSuffix(want, "BYE")):
				t.Errorf("SIP pcap: call %s has no %s (messages seen: %v)", id, want, seen[id])
			}
		}
	}
	// Legs cloak placed (the agent) have their own Call-IDs.
	for id, m := range seen {
		if !strings.Contains(strings.Join(ids, " "), id) {
			for _, want := range []string{"INVITE", "200 INVITE", "ACK", "BYE"} {
				if !m[want] && !(byeInside && want == "BYE") {
					t.Errorf("SIP pcap: leg %s has no %s (messages seen: %v)", id, want, m)
				}
			}
		}
	}
	t.Logf("SIP pcap: %d messages in %d dialogs", n, len(seen))
}

// checkHEPMessages checks HEP holds each call's INVITE, ACK and BYE (no
// ACK for a call answered inside its secure segment).
func checkHEPMessages(t *testing.T, msgs []hepMsg, lines []logLine, byeInside bool, answerInside map[string]bool, leaks *[]leak) {
	t.Helper()
	for _, id := range sipCallIDs(lines) {
		got := map[string]bool{}
		for _, m := range msgs {
			if m.callID == id || bytes.Contains(m.payload, []byte("Call-ID: "+id)) {
				method, _, _ := strings.Cut(m.first, " ")
				got[method] = true
			}
		}
		for _, want := range []string{"INVITE", "ACK", "BYE", "SIP/2.0"} {
			switch inside := answerInside[id] && want == "ACK"; {
			case inside && got[want]:
				*leaks = append(*leaks, leak{"HEP", 0, fmt.Sprintf("call %s answered inside its secure segment: ACK captured", id)})
			case !inside && !got[want] && !(byeInside && want == "BYE"):
				t.Errorf("HEP: call %s has no %s (seen %v)", id, want, got)
			}
		}
	}
}

// sidecar is the part of a recording's sidecar the canary checks.
type sidecar struct {
	CallID     string    `json:"call_id"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms"`
	Markers    []struct {
		Reason  string    `json:"reason"`
		Start   time.Time `json:"start"`
		StartMS int64     `json:"start_ms"`
		End     time.Time `json:"end"`
	} `json:"markers"`
}

// checkRecordings: no digit in any recording; each verifies; the secure
// pause covers the segment and every secure digit; the length matches
// the call's.
func checkRecordings(t *testing.T, c *cloak, wavs []string, lines []logLine, wins []window, normalKeys string) {
	t.Helper()
	key := filepath.Join(c.dataDir, "recording.key")
	for _, wav := range wavs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, cloakBin, "recording", "verify", "-key-file", key, wav).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("cloak recording verify %s: %v\n%s", wav, err, out)
		}
		raw, err := os.ReadFile(strings.TrimSuffix(wav, ".wav") + ".json")
		if err != nil {
			t.Errorf("sidecar: %v", err)
			continue
		}
		var sc sidecar
		if err := json.Unmarshal(raw, &sc); err != nil {
			t.Errorf("sidecar of %s: %v", wav, err)
			continue
		}
		// The call's length, answer to hang-up, from the log.
		ans, end := findLog(lines, "call answered", sc.CallID), findLog(lines, "call ended", sc.CallID)
		if len(ans) != 1 || len(end) != 1 {
			t.Errorf("recording %s: call %s not in the log", wav, sc.CallID)
			continue
		}
		// No digit in the recording at all: cloak masks in-band tones out of
		// the caller's channel in every mode, menu choices included.
		if code, out := dtmfScan(t, wav); code != 0 {
			for _, m := range scanLine.FindAllStringSubmatch(out, -1) {
				min, _ := strconv.Atoi(m[1])
				sec, _ := strconv.ParseFloat(m[2], 64)
				at := sc.Start.Add(time.Duration(min)*time.Minute + time.Duration(sec*float64(time.Second)))
				var in bool
				for _, w := range wins {
					in = in || w.has(at)
				}
				switch {
				case in:
					t.Errorf("LEAK: %s: DTMF digit %s (%s) at %s:%s, inside the secure segment", wav, m[4], "ch"+m[3], m[1], m[2])
				default:
					t.Errorf("LEAK: %s: DTMF digit %s (ch%s) at %s:%s outside the secure segment: recordings must hold no tone in any mode", wav, m[4], m[3], m[1], m[2])
				}
			}
			if !scanLine.MatchString(out) {
				t.Errorf("cloak dtmf scan %s exited %d with output it cannot parse:\n%s", wav, code, out)
			}
		}
		callLen := end[0].Time.Sub(ans[0].Time)
		wavLen := wavDuration(t, wav)
		t.Logf("recording %s: %v long (sidecar %v), call %v, markers %+v", filepath.Base(wav), wavLen, time.Duration(sc.DurationMS)*time.Millisecond, callLen, sc.Markers)
		for name, d := range map[string]time.Duration{"WAV": wavLen, "sidecar": time.Duration(sc.DurationMS) * time.Millisecond} {
			if diff := d - callLen; diff > 500*time.Millisecond || diff < -500*time.Millisecond {
				t.Errorf("recording %s: %s length %v, call lasted %v (want ±0.5 s)", wav, name, d, callLen)
			}
		}
		// The secure markers cover each secure segment of the call.
		covered := func(at time.Time) bool {
			for _, m := range sc.Markers {
				if gateMarker(m.Reason) && !at.Before(m.Start) && !at.After(m.End) {
					return true
				}
			}
			return false
		}
		for _, w := range wins {
			if w.call != sc.CallID {
				continue
			}
			var marker bool
			for _, m := range sc.Markers {
				// A segment that began before the recording did (a call
				// routed to a secure flow is secure before its answer) is
				// covered by a marker from the recording's first
				// millisecond; any other from the segment's start.
				from := !m.Start.After(w.start) || (w.start.Before(sc.Start) && m.StartMS == 0)
				if gateMarker(m.Reason) && from && w.end.Sub(m.End) < 100*time.Millisecond && m.End.Sub(w.end) < 100*time.Millisecond {
					marker = true
				}
			}
			if !marker {
				t.Errorf("LEAK: recording %s: no secure pause marker covers the segment %s..%s (markers %+v)", wav,
					w.start.Format("15:04:05.000"), w.end.Format("15:04:05.000"), sc.Markers)
			}
		}
		var secureDigits int
		for _, l := range findLog(lines, "digit", sc.CallID) {
			if l.str("digit") != "*" {
				continue
			}
			if _, in := func() (window, bool) {
				for _, w := range wins {
					if w.call == sc.CallID && w.has(l.Time) {
						return w, true
					}
				}
				return window{}, false
			}(); !in {
				continue
			}
			secureDigits++
			if !covered(l.Time) {
				t.Errorf("LEAK: recording %s: a secure digit at %s is outside every pause marker", wav, l.Time.Format("15:04:05.000"))
			}
		}
		if secureDigits < 20 {
			t.Errorf("recording %s: %d digits in secure mode, want the card, expiry and CVV (≥ 20)", wav, secureDigits)
		}
	}
}

// gateMarker: a pause marker the gate sets, for a secure segment or an
// agent-assisted payment.
func gateMarker(reason string) bool { return reason == "secure" || reason == "payment" }

// scanLine is one digit of `cloak dtmf scan`: "MM:SS.mmm chN D".
var scanLine = regexp.MustCompile(`(?m)^(\d+):(\d+\.\d+) ch(\d) (\S)`)

// wavDuration reads a WAV header: data bytes over the byte rate.
func wavDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 44 || string(b[:4]) != "RIFF" {
		t.Fatalf("%s: not a WAV file (%v)", path, err)
	}
	var rate uint32
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		switch id {
		case "fmt ":
			rate = binary.LittleEndian.Uint32(b[off+16:]) // byte rate
		case "data":
			if rate == 0 {
				t.Fatalf("%s: data before fmt", path)
			}
			if size > len(b)-off-8 {
				size = len(b) - off - 8
			}
			return time.Duration(float64(size) / float64(rate) * float64(time.Second))
		}
		off += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", path)
	return 0
}

// TestLeakCanaryCatches proves the canary's searches fail when they
// should: each planted leak is reported with its file and byte offset,
// and a file with only what is allowed (last four, masks, timestamps,
// ids, counters) is not.
func TestLeakCanaryCatches(t *testing.T) {
	dir := t.TempDir()
	cn := newCanary(testCard, testExpiry, testCVV)
	spaced := func(sep string) string { return digitsRe(testCard, sep) }
	var interleaved strings.Builder
	for i, d := range testCard {
		if i > 0 {
			interleaved.WriteString(",")
		}
		fmt.Fprintf(&interleaved, `{"k":"%c"}`, d)
	}
	var arr []string
	for _, d := range testCard {
		arr = append(arr, string(d))
	}
	plants := map[string]struct {
		content string
		at      string // the planted text, whose offset must be reported
	}{
		"plain.log":       {`{"level":"debug","v":"` + testCard + `"}` + "\n", testCard},
		"spaced.log":      {"prefix " + spaced(" ") + " suffix", spaced(" ")},
		"dashed.log":      {"prefix " + spaced("-"), spaced("-")},
		"commas.log":      {"prefix " + spaced(","), spaced(",")},
		"grouped.log":     {"xx " + testCard[:4] + " " + testCard[4:8] + " " + testCard[8:12] + " " + testCard[12:], testCard[:4] + " "},
		"array.json":      {`{"digits":[` + strings.Join(arr, ",") + `]}`, arr[0] + ","},
		"strings.json":    {`{"digits":["` + strings.Join(arr, `","`) + `"]}`, arr[0] + `"`},
		"interleaved.log": {"{}\n" + interleaved.String() + "\n", `{"k":"4"}`},
		"truncated.log":   {"first twelve " + testCard[:12] + "****", testCard[:12]},
		"cvv.log":         {`{"level":"info","cvv":"` + testCVV + `","time":"2026-01-01T00:00:00Z"}` + "\n", testCVV},
		"cvvnum.log":      {`{"level":"info","cvv_code":` + testCVV + `}` + "\n", testCVV},
		"cvvsep.log":      {`{"level":"info","m":"keyed ` + digitsRe(testCVV, " ") + `"}` + "\n", "keyed"},
		"expiry.json":     {`{"exp":"` + testExpiry[:2] + `/` + testExpiry[2:] + `"}`, testExpiry[:2] + "/"},
		"expiry.log":      {`{"m":"` + testExpiry + ` given"}` + "\n", testExpiry},
	}
	for name, p := range plants {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(p.content), 0o600); err != nil {
			t.Fatal(err)
		}
		found := cn.scanFile(t, path)
		want := strings.Index(p.content, p.at)
		ok := false
		for _, l := range found {
			if l.where == path && l.off <= want+len(p.at) && l.off >= 0 {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: planted leak not reported at offset ~%d (found %v)", name, want, found)
		}
	}

	// Allowed: last four, masks, times, hex ids, counters, ports.
	clean := filepath.Join(dir, "clean.log")
	allowed := `{"level":"info","call":"a737b1230cde","card_last4":"` + testCard[12:] + `","mask":"**** **** **** ` + testCard[12:] +
		`","time":"2026-11-21T12:30:00.737Z","rtp_rx":737,"port":47370,"rtp_remote":"127.0.0.1:41230","message":"secure segment ended"}` + "\n"
	if err := os.WriteFile(clean, []byte(allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	if found := cn.scanFile(t, clean); len(found) > 0 {
		t.Errorf("false positives in an allowed log line: %v", found)
	}

	// A SIP INFO with a DTMF relay body in a pcap is found, at its offset.
	sipPcap := filepath.Join(dir, "sip-planted.pcap")
	w, err := capt.NewPcapWriter(sipPcap, capt.PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := "INFO sip:pay@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=" + testCVV[:1] + "\r\nDuration=160\r\n"
	src, dst := netAddr("127.0.0.1:5062"), netAddr("127.0.0.1:5060")
	if err := w.WritePacket(time.Now(), src, dst, capt.ProtoUDP, []byte(info)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	found := cn.scanFile(t, sipPcap)
	raw, _ := os.ReadFile(sipPcap)
	want := bytes.Index(raw, []byte("INFO sip:"))
	var sawInfo, sawSignal bool
	for _, l := range found {
		sawInfo = sawInfo || (strings.Contains(l.what, "INFO request") && l.off == want)
		sawSignal = sawSignal || strings.Contains(l.what, "Signal=")
	}
	if !sawInfo || !sawSignal {
		t.Errorf("planted SIP INFO at offset %d: found %v", want, found)
	}

	// In-band tones: the committed in-band caller stream holds the card's
	// digits as tones; the detector finds them and `cloak dtmf scan` flags
	// its audio.
	recs := readUDPPcap(t, scenario("pcap/caller-agent-inband.pcap"))
	var digits []byte
	var pcm []int16
	for _, r := range recs {
		if p, ok := rtpOf(r.payload); ok {
			pcm = decodeG711(p.PayloadType, p.Payload, pcm)
		}
	}
	for _, d := range detectRTPDigits(t, recs) {
		digits = append(digits, d.digit)
	}
	if want := "2" + testCard + "#" + testExpiry + testCVV + "#"; string(digits) != want {
		t.Errorf("detector found %d digits in the in-band stream, want %d", len(digits), len(want))
	}
	if cloakBin != "" {
		wav := filepath.Join(dir, "tones.wav")
		writeWAV(t, wav, pcm)
		if code, _ := dtmfScan(t, wav); code != 1 {
			t.Errorf("cloak dtmf scan over in-band card digits exited %d, want 1", code)
		}
	}
}

func netAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
