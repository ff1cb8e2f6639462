package sip

import (
	"bytes"
	"net/netip"
	"strings"
	"time"

	siplib "github.com/emiago/sipgo/sip"
)

// Observed is one SIP message as it crossed the wire, for protocol capture.
type Observed struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Reliable bool // TCP (or TLS/WS)
	Data     []byte
}

// observer adapts sipgo's tracer hook. sipgo keeps the tracer in a package
// variable, so one process captures for one server; cloak runs one.
type observer struct{ fn func(Observed) }

func (o observer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	o.emit(transport, raddr, laddr, msg)
}

func (o observer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	o.emit(transport, laddr, raddr, msg)
}

func (o observer) emit(transport, src, dst string, msg []byte) {
	s, _ := netip.ParseAddrPort(src)
	d, _ := netip.ParseAddrPort(dst)
	o.fn(Observed{Time: time.Now(), Src: s, Dst: d, Reliable: !strings.EqualFold(transport, "UDP"), Data: msg})
}

// installObserver routes every SIP message read or written to fn.
func installObserver(fn func(Observed)) {
	siplib.SIPDebugTracer(observer{fn: fn})
	siplib.SIPDebug = true
}

// CallIDOf returns the Call-ID header value of a raw SIP message (the
// compact form "i:" included), or "".
func CallIDOf(msg []byte) string {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return "" // end of headers
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i")) {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}
