package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A client for rtpengine's ng control protocol: each request is a cookie,
// a space and a bencoded dictionary, over UDP; the reply echoes the
// cookie. The bench drives rtpengine as Kamailio would: offer with the
// caller's SDP, answer with the callee's, delete at the end, and "block
// DTMF" with a DTMF-security mode for the masking run.

// ErrNG is wrapped by errors rtpengine returns.
var ErrNG = errors.New("rtpengine")

type ngClient struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	waiting map[string]chan map[string]any
	cookie  atomic.Uint64
}

func dialNG(addr string) (*ngClient, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(1 << 20)
	n := &ngClient{conn: c, waiting: map[string]chan map[string]any{}}
	go n.read()
	return n, nil
}

func (n *ngClient) close() { n.conn.Close() }

func (n *ngClient) read() {
	buf := make([]byte, 65536)
	for {
		l, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		sp := bytes.IndexByte(buf[:l], ' ')
		if sp < 0 {
			continue
		}
		cookie := string(buf[:sp])
		v, _, err := bdecode(buf[sp+1 : l])
		d, ok := v.(map[string]any)
		if err != nil || !ok {
			continue
		}
		n.mu.Lock()
		ch := n.waiting[cookie]
		delete(n.waiting, cookie)
		n.mu.Unlock()
		if ch != nil {
			ch <- d
		}
	}
}

// call sends one request and waits for its reply, retransmitting twice.
func (n *ngClient) call(req map[string]any, timeout time.Duration) (map[string]any, error) {
	cookie := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, n.cookie.Add(1))
	ch := make(chan map[string]any, 1)
	n.mu.Lock()
	n.waiting[cookie] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiting, cookie)
		n.mu.Unlock()
	}()
	msg := append([]byte(cookie+" "), bencode(req)...)
	deadline := time.After(timeout)
	for try := 0; ; try++ {
		if _, err := n.conn.Write(msg); err != nil {
			return nil, err
		}
		select {
		case d := <-ch:
			if r, _ := d["result"].(string); r != "ok" && r != "pong" {
				reason, _ := d["error-reason"].(string)
				return d, fmt.Errorf("%w: %s: %s", ErrNG, req["command"], reason)
			}
			return d, nil
		case <-time.After(timeout / 3):
			if try >= 2 {
				return nil, fmt.Errorf("%w: %s: no reply", ErrNG, req["command"])
			}
		case <-deadline:
			return nil, fmt.Errorf("%w: %s: no reply", ErrNG, req["command"])
		}
	}
}

var sdpPort = regexp.MustCompile(`m=audio (\d+) `)

// portOf returns the audio port of an SDP body.
func portOf(sdp string) (int, error) {
	m := sdpPort.FindStringSubmatch(sdp)
	if m == nil {
		return 0, fmt.Errorf("no m=audio line in %q", sdp)
	}
	return strconv.Atoi(m[1])
}

// plainSDP is the SDP both sides of a relay-mode call offer: PCMU and
// telephone-event on loopback.
func plainSDP(port int, sess int) string {
	return fmt.Sprintf("v=0\r\no=load %d 1 IN IP4 127.0.0.1\r\ns=cloak-load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n", sess, port)
}

// bencode encodes strings, ints, lists of strings or values, and
// dictionaries (keys sorted, as the format wants).
func bencode(v any) []byte {
	var b bytes.Buffer
	benc(&b, v)
	return b.Bytes()
}

func benc(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case string:
		fmt.Fprintf(b, "%d:%s", len(x), x)
	case []byte:
		fmt.Fprintf(b, "%d:%s", len(x), x)
	case int:
		fmt.Fprintf(b, "i%de", x)
	case []string:
		b.WriteByte('l')
		for _, s := range x {
			benc(b, s)
		}
		b.WriteByte('e')
	case []any:
		b.WriteByte('l')
		for _, s := range x {
			benc(b, s)
		}
		b.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('d')
		for _, k := range keys {
			benc(b, k)
			benc(b, x[k])
		}
		b.WriteByte('e')
	default:
		panic(fmt.Sprintf("bencode: unsupported %T", v))
	}
}

var errBencode = errors.New("bad bencode")

// bdecode decodes one value and returns the rest of the input.
func bdecode(in []byte) (any, []byte, error) {
	if len(in) == 0 {
		return nil, nil, errBencode
	}
	switch c := in[0]; {
	case c == 'i':
		e := bytes.IndexByte(in, 'e')
		if e < 0 {
			return nil, nil, errBencode
		}
		n, err := strconv.ParseInt(string(in[1:e]), 10, 64)
		if err != nil {
			return nil, nil, errBencode
		}
		return n, in[e+1:], nil
	case c == 'l':
		var out []any
		in = in[1:]
		for len(in) > 0 && in[0] != 'e' {
			v, rest, err := bdecode(in)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, v)
			in = rest
		}
		if len(in) == 0 {
			return nil, nil, errBencode
		}
		return out, in[1:], nil
	case c == 'd':
		out := map[string]any{}
		in = in[1:]
		for len(in) > 0 && in[0] != 'e' {
			k, rest, err := bdecode(in)
			ks, ok := k.(string)
			if err != nil || !ok {
				return nil, nil, errBencode
			}
			v, rest, err := bdecode(rest)
			if err != nil {
				return nil, nil, err
			}
			out[ks] = v
			in = rest
		}
		if len(in) == 0 {
			return nil, nil, errBencode
		}
		return out, in[1:], nil
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(in, ':')
		if colon < 0 {
			return nil, nil, errBencode
		}
		n, err := strconv.Atoi(string(in[:colon]))
		if err != nil || n < 0 || colon+1+n > len(in) {
			return nil, nil, errBencode
		}
		return string(in[colon+1 : colon+1+n]), in[colon+1+n:], nil
	}
	return nil, nil, errBencode
}
