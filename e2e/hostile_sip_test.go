package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// hostileSIP is a request cloak's SIP parser refuses, with a card or DTMF
// digits where a careless stack would log them. want is the reply status
// expected over UDP, 0 for none; over TCP a message whose Content-Length
// runs past the end is still arriving, so it gets no reply either.
type hostileSIP struct {
	name     string
	msg      string
	want     int
	tcpWaits bool
}

func hostileSIPMessages(port int, transport string) []hostileSIP {
	dst := fmt.Sprintf("127.0.0.1:%d", port)
	req := func(method, ruri, cseq, extra, body string, clen int) string {
		return fmt.Sprintf("%s %s SIP/2.0\r\n"+
			"Via: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK-e2e-%s-%d\r\n"+
			"From: <sip:caller@127.0.0.1>;tag=e2e\r\n"+
			"To: <sip:tone@%s>\r\n"+
			"Call-ID: hostile-e2e-%s-%s@test\r\n"+
			"CSeq: %s\r\n"+
			"Max-Forwards: 70\r\n%s"+
			"Content-Length: %d\r\n\r\n%s",
			method, ruri, transport, strings.ToLower(method), clen, dst, strings.ToLower(transport), strings.ToLower(method), cseq, extra, clen, body)
	}
	spaced := digitsRe(testCard, " ")
	dtmf := "Signal=4\r\nDuration=160\r\n"
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=" + spaced + "\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	text := "card " + testCard + " exp " + testExpiry
	ruri := "sip:tone@" + dst
	return []hostileSIP{
		{"INFO dtmf-relay, Content-Length one byte too long",
			req("INFO", ruri, "2 INFO", "Content-Type: application/dtmf-relay\r\n", dtmf, len(dtmf)+1), 400, true},
		{"INFO dtmf-relay, CSeq overflows",
			req("INFO", ruri, "99999999999 INFO", "Content-Type: application/dtmf-relay\r\n", dtmf, len(dtmf)), 400, false},
		{"INVITE, card in Request-URI and SDP, Content-Length too long",
			req("INVITE", "sip:"+testCard+"@"+dst, "1 INVITE", "Contact: <sip:c@127.0.0.1:5999>\r\nContent-Type: application/sdp\r\n", sdp, len(sdp)+5), 400, true},
		{"MESSAGE, card in Subject and body, CSeq not a number",
			req("MESSAGE", ruri, "x MESSAGE", "Subject: "+testCard+"\r\nContent-Type: text/plain\r\n", text, len(text)), 400, false},
		{"card as the start line", testCard + " " + spaced + "\r\n" + dtmf + "\r\n", 0, false},
	}
}

// TestHostileSIPNeverWritten plays requests the SIP stack cannot parse —
// malformed INFO, INVITE and MESSAGE carrying a test card in start line,
// header and body and DTMF in an INFO body — over raw UDP and TCP sockets
// against a real cloak logging at trace with SIP capture on. Each readable
// one is answered 400, a SIP/7.0 request 505, and afterwards no byte cloak
// wrote (log, captures, archive) holds the card or a Signal= line.
func TestHostileSIPNeverWritten(t *testing.T) {
	requireTools(t)
	c := startCloak(t, cloakOpts{logLevel: "trace", extra: "capture:\n  sip_pcap: true\n"})
	addr := fmt.Sprintf("127.0.0.1:%d", c.sipPort)
	for _, transport := range []string{"UDP", "TCP"} {
		for _, m := range hostileSIPMessages(c.sipPort, transport) {
			t.Run(transport+"/"+m.name, func(t *testing.T) {
				want := m.want
				if transport == "TCP" && m.tcpWaits {
					want = 0
				}
				got := sendRaw(t, strings.ToLower(transport), addr, m.msg)
				if want == 0 {
					if got != "" {
						t.Fatalf("reply %q, want none", got)
					}
					return
				}
				if prefix := fmt.Sprintf("SIP/2.0 %d ", want); !strings.HasPrefix(got, prefix) {
					t.Fatalf("reply %q, want %q…", got, prefix)
				}
			})
		}
	}
	t.Run("UDP/SIP 7.0 request gets 505", func(t *testing.T) {
		msg := "OPTIONS sip:tone@" + addr + " SIP/7.0\r\nVia: SIP/7.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-e2e-v7\r\n" +
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:tone@127.0.0.1>\r\nCall-ID: v7-e2e@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if got := sendRaw(t, "udp", addr, msg); !strings.HasPrefix(got, "SIP/2.0 505 ") {
			t.Fatalf("reply %q, want SIP/2.0 505", got)
		}
	})
	if !c.waitLog("sip message unparsable", 5*time.Second) {
		t.Error("cloak logged no parse failure at trace: were the messages sent?")
	}
	c.stop()

	cn := newCanary(testCard, testExpiry, testCVV)
	files := listFiles(t, c.dataDir)
	if len(files) == 0 {
		t.Fatal("cloak wrote nothing under its data dir")
	}
	for _, f := range files {
		for _, l := range cn.scanFile(t, f) {
			t.Errorf("leak: %s", l)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, []byte("Signal=")); i >= 0 {
			t.Errorf("leak: %s at byte %d: an INFO body's Signal= line", f, i)
		}
	}
}

// sendRaw writes msg on a new socket and returns the first line of the
// reply, "" if none came within 2 s.
func sendRaw(t *testing.T, network, addr, msg string) string {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSpace(line)
}

// rawDialog is a UAC on a raw UDP socket: enough SIP to place a call and
// send re-INVITEs without a library choosing the answers for it.
type rawDialog struct {
	t      *testing.T
	conn   *net.UDPConn
	dst    string
	callID string
	toTag  string
	nonOK  map[int]bool // CSeqs whose INVITE got a non-2xx final
}

func (d *rawDialog) send(method, body string, cseq int) {
	d.t.Helper()
	to := "<sip:tone@" + d.dst + ">"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	branchMethod := strings.ToLower(method)
	if method == "ACK" && d.nonOK[cseq] {
		branchMethod = "invite" // RFC 3261 §17.1.1.3: same transaction
	}
	msg := fmt.Sprintf("%s sip:tone@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%s-%d-%s\r\n"+
		"From: <sip:caller@127.0.0.1>;tag=rawuac\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:caller@%s>\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
		method, d.dst, d.conn.LocalAddr(), d.callID, cseq, branchMethod, to, d.callID, cseq, method,
		d.conn.LocalAddr(), ct, len(body), body)
	if _, err := d.conn.Write([]byte(msg)); err != nil {
		d.t.Fatal(err)
	}
}

// final reads responses until a final one for cseq and returns its status
// line, To tag and body.
func (d *rawDialog) final(cseq int) (string, string, string) {
	d.t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_ = d.conn.SetReadDeadline(deadline)
		n, err := d.conn.Read(buf)
		if err != nil {
			d.t.Fatalf("no final response to CSeq %d: %v", cseq, err)
		}
		msg := string(buf[:n])
		head, body, _ := strings.Cut(msg, "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		if !strings.HasPrefix(lines[0], "SIP/2.0 ") || strings.HasPrefix(lines[0], "SIP/2.0 1") {
			continue
		}
		var tag string
		okCSeq := false
		for _, l := range lines[1:] {
			name, v, _ := strings.Cut(l, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "to", "t":
				if _, after, found := strings.Cut(v, ";tag="); found {
					tag, _, _ = strings.Cut(after, ";")
				}
			case "cseq":
				okCSeq = strings.HasPrefix(strings.TrimSpace(v), fmt.Sprintf("%d ", cseq))
			}
		}
		if okCSeq {
			if !strings.HasPrefix(lines[0], "SIP/2.0 2") {
				d.nonOK[cseq] = true
			}
			return lines[0], strings.TrimSpace(tag), body
		}
	}
	d.t.Fatalf("no final response to CSeq %d", cseq)
	return "", "", ""
}

func rawSDP(version int, port int, media, dir string) string {
	return fmt.Sprintf("v=0\r\no=- 7 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\na=%s\r\n", version, port, media, dir)
}

// TestHostileReinvite: against a real cloak, a re-INVITE offering only a
// codec cloak lacks (G.729) gets 488 and the call goes on (RFC 3264 §8);
// one offering sendonly is answered recvonly (§6.1).
func TestHostileReinvite(t *testing.T) {
	requireTools(t)
	c := startCloak(t, cloakOpts{})
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.sipPort})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rtp := freePorts(t, 2, false)
	d := &rawDialog{t: t, conn: conn, dst: fmt.Sprintf("127.0.0.1:%d", c.sipPort), callID: fmt.Sprintf("reinvite-%d@test", rtp), nonOK: map[int]bool{}}

	d.send("INVITE", rawSDP(1, rtp, "0\r\na=rtpmap:0 PCMU/8000", "sendrecv"), 1)
	status, tag, _ := d.final(1)
	if !strings.HasPrefix(status, "SIP/2.0 200 ") {
		t.Fatalf("INVITE: %q, want 200", status)
	}
	d.toTag = tag
	d.send("ACK", "", 1)

	d.send("INVITE", rawSDP(2, rtp, "18\r\na=rtpmap:18 G729/8000", "sendrecv"), 2)
	if status, _, _ := d.final(2); !strings.HasPrefix(status, "SIP/2.0 488 ") {
		t.Fatalf("G.729-only re-INVITE: %q, want 488", status)
	}
	d.send("ACK", "", 2)

	d.send("INVITE", rawSDP(3, rtp, "0\r\na=rtpmap:0 PCMU/8000", "sendonly"), 3)
	status, _, body := d.final(3)
	if !strings.HasPrefix(status, "SIP/2.0 200 ") {
		t.Fatalf("sendonly re-INVITE: %q, want 200 (the call must survive the 488)", status)
	}
	d.send("ACK", "", 3)
	if !strings.Contains(body, "a=recvonly\r\n") {
		t.Fatalf("answer to sendonly lacks a=recvonly:\n%s", body)
	}
	d.send("BYE", "", 4)
	if status, _, _ := d.final(4); !strings.HasPrefix(status, "SIP/2.0 200 ") {
		t.Fatalf("BYE: %q, want 200", status)
	}
	c.stop()
}
