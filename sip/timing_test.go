package sip

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// racingRinger asks for 180 from several goroutines while it rejects the
// call, then once more after: the provisional must never follow the final
// on the wire, and the late one must be refused.
type racingRinger struct{ late chan error }

func (r racingRinger) HandleCall(s *Session) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Ringing() }()
	}
	_ = s.Reject(486, "Busy Here")
	wg.Wait()
	r.late <- s.Ringing()
}

// readSIP reads one SIP message from a stream: start line and headers up
// to the blank line, then Content-Length bytes of body.
func readSIP(r *bufio.Reader) (string, error) {
	var b strings.Builder
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(line)
		l := strings.TrimSpace(line)
		if l == "" {
			if b.Len() <= 2 {
				b.Reset() // a keep-alive CRLF between messages
				continue
			}
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && (strings.EqualFold(k, "Content-Length") || k == "l") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// TestProvisionalNeverAfterFinal: over UDP and over TCP, 180s asked for
// concurrently with the final response all reach the wire before it (or
// not at all), and a 180 asked for after the final is refused with
// ErrAnswered and not sent (RFC 3261 §17.2.1).
func TestProvisionalNeverAfterFinal(t *testing.T) {
	var buf lockedBuf
	late := make(chan error, 64)
	_, addr := startHostile(t, &buf, racingRinger{late: late}, nil)
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			for i := range 10 {
				c, err := net.Dial(strings.ToLower(transport), addr.String())
				if err != nil {
					t.Fatal(err)
				}
				callID := fmt.Sprintf("order-%s-%d@test", transport, i)
				msg := func(method string) string {
					return method + " sip:ivr@" + addr.String() + " SIP/2.0\r\nVia: SIP/2.0/" + transport + " " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + "\r\n" +
						"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 " + method + "\r\n" +
						"Contact: <sip:a@" + c.LocalAddr().String() + ";transport=" + strings.ToLower(transport) + ">\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
				}
				if _, err := c.Write([]byte(msg("INVITE"))); err != nil {
					t.Fatal(err)
				}
				r := bufio.NewReader(c)
				var seen []string
				final := false
				for len(seen) < 20 {
					// Read on 300 ms past the final: a stray 180 would come then.
					wait := 3 * time.Second
					if final {
						wait = 300 * time.Millisecond
					}
					_ = c.SetReadDeadline(time.Now().Add(wait))
					m, err := readSIP(r)
					if err != nil {
						break
					}
					status := strings.Fields(m)[1]
					seen = append(seen, status)
					if final && status != "486" {
						t.Fatalf("call %d: %s after the final response (sequence %v)", i, status, seen)
					}
					if status == "486" && !final {
						final = true
						ack := strings.Replace(strings.Replace(msg("INVITE"), "INVITE sip:", "ACK sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
						if _, err := c.Write([]byte(ack)); err != nil {
							t.Fatal(err)
						}
					}
				}
				c.Close()
				if !final {
					t.Fatalf("call %d: no final response (sequence %v)", i, seen)
				}
				select {
				case err := <-late:
					if !errors.Is(err, ErrAnswered) {
						t.Fatalf("call %d: Ringing after Reject = %v, want ErrAnswered", i, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("call %d: handler did not finish", i)
				}
			}
		})
	}
}
