package sip

import (
	"bytes"
	"net"
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

// SIPTraceRead ignores what sipgo reads: it sees raw datagrams and TCP
// chunks, including ones that never parse or a partial message a
// connection never completes. The wrapped sockets (malformed.go) report
// each whole message that parsed instead, through Server.observeRead.
func (o observer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {}

func (o observer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	o.emit(transport, laddr, raddr, msg)
}

func (o observer) emit(transport, src, dst string, msg []byte) {
	s, _ := netip.ParseAddrPort(src)
	d, _ := netip.ParseAddrPort(dst)
	o.fn(Observed{Time: time.Now(), Src: s, Dst: d, Reliable: !strings.EqualFold(transport, "UDP"), Data: msg})
}

// observeRead hands a message read that parsed to the capture.
func (s *Server) observeRead(reliable bool, src, dst net.Addr, msg []byte) {
	if s.cfg.Observe == nil {
		return
	}
	s.cfg.Observe(Observed{Time: time.Now(), Src: addrPort(src), Dst: addrPort(dst), Reliable: reliable, Data: msg})
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// installObserver routes every SIP message written to fn; messages read
// reach it through Server.observeRead.
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
