package sip

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// sipgo keeps its tracer in package variables that its transports read
// without a lock, so cloak installs one tracer, once, before any transport
// runs (init below), and servers register with it instead of writing
// those variables (a second server in one process, as in tests, raced
// with the first one's transports). With no server registered the tracer
// returns at once.
func init() {
	siplib.SIPDebugTracer(tracer{})
	siplib.SIPDebug = true
}

// observed is one server's capture: its listening ports (UDP/TCP, TLS)
// and where its messages go.
type observed struct {
	ports []string
	fn    func(Observed)
}

// observers are the servers that capture; copy-on-write, read lock-free
// by the tracer.
var (
	observersMu sync.Mutex
	observers   atomic.Pointer[[]*observed]
)

// installObserver routes the SIP messages of the server listening on
// listenPorts to fn (messages read on those ports reach it through
// Server.observeRead); the returned func unregisters it.
func installObserver(fn func(Observed), listenPorts ...uint16) (remove func()) {
	o := &observed{fn: fn}
	for _, p := range listenPorts {
		o.ports = append(o.ports, strconv.Itoa(int(p)))
	}
	observersMu.Lock()
	defer observersMu.Unlock()
	var next []*observed
	if cur := observers.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, o)
	observers.Store(&next)
	return func() {
		observersMu.Lock()
		defer observersMu.Unlock()
		if cur := observers.Load(); cur != nil {
			next := slices.DeleteFunc(slices.Clone(*cur), func(x *observed) bool { return x == o })
			observers.Store(&next)
		}
	}
}

// tracer adapts sipgo's tracer hook to the registered observers.
type tracer struct{}

// route finds the observer of a message on a local address: the server
// listening on its port, else, when only one server captures (a node
// runs one), that one: connections cloak opened itself (TCP to an agent
// it dialled) use ephemeral ports. listening says whether laddr is a
// registered listening port.
func route(laddr string) (fn func(Observed), listening bool) {
	obs := observers.Load()
	if obs == nil || len(*obs) == 0 {
		return nil, false
	}
	if _, port, err := net.SplitHostPort(laddr); err == nil {
		for _, o := range *obs {
			if slices.Contains(o.ports, port) {
				return o.fn, true
			}
		}
	}
	if len(*obs) == 1 {
		return (*obs)[0].fn, false
	}
	return nil, false
}

// SIPTraceRead ignores what sipgo reads on the listening sockets: it sees
// raw datagrams and TCP chunks there, including ones that never parse or
// a partial message a connection never completes. The wrapped sockets
// (malformed.go) report each whole message that parsed instead, through
// Server.observeRead. Reads on connections cloak opened itself (TCP to an
// agent it dialled), which bypass the wrapped sockets, come from here.
func (tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	if fn, listening := route(laddr); fn != nil && !listening {
		emit(fn, transport, raddr, laddr, msg)
	}
}

func (tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	if fn, _ := route(laddr); fn != nil {
		emit(fn, transport, laddr, raddr, msg)
	}
}

func emit(fn func(Observed), transport, src, dst string, msg []byte) {
	s, _ := netip.ParseAddrPort(src)
	d, _ := netip.ParseAddrPort(dst)
	fn(Observed{Time: time.Now(), Src: s, Dst: d, Reliable: !strings.EqualFold(transport, "UDP"), Data: msg})
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
