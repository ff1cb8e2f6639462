package sip

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strconv"
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
type observer struct {
	fn func(Observed)
	// ports are the listening ports (UDP/TCP, TLS): reads on them are
	// reported by the wrapped sockets, not by the tracer.
	ports []string
}

// SIPTraceRead ignores what sipgo reads on the listening sockets: it sees
// raw datagrams and TCP chunks there, including ones that never parse or
// a partial message a connection never completes. The wrapped sockets
// (malformed.go) report each whole message that parsed instead, through
// Server.observeRead. Reads on connections cloak opened itself (TCP to an
// agent it dialled), which bypass the wrapped sockets, come from here.
func (o observer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	if _, port, err := net.SplitHostPort(laddr); err == nil && slices.Contains(o.ports, port) {
		return
	}
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

// observeRead hands a message read that parsed to the capture. A request
// that no call owns and that is not a new call (an in-dialog request for
// a dialog cloak does not have, or a MESSAGE, INFO … outside a dialog) is
// captured without its body and with only the headers that route it:
// there is no call whose mode the capture could ask, so it fails closed.
func (s *Server) observeRead(reliable bool, src, dst net.Addr, raw []byte, msg siplib.Message) {
	if s.cfg.Observe == nil {
		return
	}
	if req, ok := msg.(*siplib.Request); ok && !s.ownsOrStarts(req) {
		raw = withheldForCapture(req)
	}
	s.cfg.Observe(Observed{Time: time.Now(), Src: addrPort(src), Dst: addrPort(dst), Reliable: reliable, Data: raw})
}

// ownsOrStarts reports whether a request belongs to a call of this server
// or may start one (INVITE, and CANCEL or ACK of one, outside a dialog),
// or carries no body worth withholding.
func (s *Server) ownsOrStarts(req *siplib.Request) bool {
	if len(req.Body()) == 0 && req.GetHeader("Subject") == nil {
		return true
	}
	to := req.To()
	if to == nil || !to.Params.Has("tag") {
		return req.IsInvite() || req.IsAck() || req.IsCancel()
	}
	return s.lookup(req) != nil || s.lookupLeg(req) != nil
}

// withheldForCapture is the form of a request the capture gets when no
// call owns it: start line, Via, From, To, Call-ID, CSeq; no body.
func withheldForCapture(req *siplib.Request) []byte {
	var b bytes.Buffer
	b.WriteString(req.StartLine())
	b.WriteString("\r\n")
	for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, h := range req.GetHeaders(name) {
			b.WriteString(h.Name() + ": " + h.Value() + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
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
func installObserver(fn func(Observed), listenPorts ...uint16) {
	o := observer{fn: fn}
	for _, p := range listenPorts {
		o.ports = append(o.ports, strconv.Itoa(int(p)))
	}
	siplib.SIPDebugTracer(o)
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
