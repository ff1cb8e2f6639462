package sip

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	siplib "github.com/emiago/sipgo/sip"
)

// Messages sipgo cannot parse never reach sipgo: the sockets cloak hands
// it are wrapped, and each wrapper runs sipgo's own parser on what it
// reads before sipgo does. A message that fails is counted per source
// (Stats.ParseErrors, Stats.ParseErrorsBySource), logged by cloak's
// formatter only (parseFailed), answered with 400 or 505 when its start
// line and Via can be read (RFC 3261 §8.2.6, §21.5.6; built here from the
// readable header lines), and dropped, so that neither sipgo's transport
// log ("failed to parse", with the raw bytes) nor its tracer (protocol
// capture of a message no call owns) ever sees it. The parse is the same
// parser with the same options on the same bytes, so it fails exactly
// where sipgo's would. It costs a second parse of every message.

// maxParseSources caps the sources ParseErrorsBySource tracks; failures
// from further sources are counted under "other", so a flood of spoofed
// sources cannot grow the map without bound.
const maxParseSources = 1024

// parseStats counts messages that could not be parsed, per source IP.
type parseStats struct {
	mu    sync.Mutex
	total uint64
	by    map[string]uint64
}

func (p *parseStats) add(src string) {
	host := src
	if h, _, err := net.SplitHostPort(src); err == nil {
		host = h
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if p.by == nil {
		p.by = map[string]uint64{}
	}
	if _, ok := p.by[host]; !ok && len(p.by) >= maxParseSources {
		host = "other"
	}
	p.by[host]++
}

func (p *parseStats) snapshot() (uint64, map[string]uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]uint64, len(p.by))
	for k, v := range p.by {
		m[k] = v
	}
	return p.total, m
}

// parseFailed records a message that did not parse and returns the reply
// to send, or nil. The log line names the transport, the source, the
// method and Call-ID if readable (digit runs masked) and the reply status:
// never the bytes, never the parser's error (it quotes them).
func (s *Server) parseFailed(transport, src string, data []byte) []byte {
	s.parseErrors.add(src)
	reply, info := malformedReply(data, s.cfg.UserAgent)
	ev := s.log.Debug().Str("transport", transport).Str("src", src)
	if info.method != "" {
		ev = ev.Str("method", info.method)
	}
	if info.callID != "" {
		ev = ev.Str("call_id", safeString(info.callID))
	}
	if info.status != 0 {
		ev = ev.Int("status", info.status)
	}
	ev.Msg("sip message unparsable: dropped")
	return reply
}

// readable is what malformedReply could read of a broken message.
type readable struct {
	method string
	callID string
	status int // reply sent, 0 for none
}

// malformedReply builds a stateless reply to a request that does not
// parse: 505 if its SIP version is not 2.0 (RFC 3261 §21.5.6), else 400
// (§21.4.1). It needs a request line and at least one Via, since the Via
// headers route the response back (§18.2.2); From, To, Call-ID and CSeq are
// copied as they came (§8.2.6.2) and To gets a tag if it had none.
// Responses and ACKs get no reply (§17.1.1.3 for ACK).
func malformedReply(data []byte, userAgent string) ([]byte, readable) {
	var info readable
	head := data
	if i := bytes.Index(head, []byte("\n\r\n")); i >= 0 {
		head = head[:i+1]
	} else if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i+1]
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	parts := strings.Split(strings.TrimSpace(lines[0]), " ")
	if len(parts) != 3 || !isToken(parts[0]) || !strings.HasPrefix(strings.ToUpper(parts[2]), "SIP/") {
		return nil, info
	}
	info.method = parts[0]
	if parts[0] == "ACK" {
		return nil, info
	}
	var vias []string
	var from, to, callID, cseq string
	for _, l := range lines[1:] {
		if l == "" || l[0] == ' ' || l[0] == '\t' || !printable(l) {
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			vias = append(vias, value)
		case "from", "f":
			from = value
		case "to", "t":
			to = value
		case "call-id", "i":
			callID = value
		case "cseq":
			cseq = value
		}
	}
	info.callID = callID
	if len(vias) == 0 || !strings.HasPrefix(strings.ToUpper(vias[0]), "SIP/2.0/") {
		return nil, info
	}
	status, reason := 400, "Bad Request"
	if !strings.EqualFold(parts[2], "SIP/2.0") {
		status, reason = 505, "Version Not Supported"
	}
	info.status = status
	var b strings.Builder
	b.WriteString("SIP/2.0 ")
	b.WriteString(strconv.Itoa(status) + " " + reason)
	b.WriteString("\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	if to != "" {
		if !strings.Contains(strings.ToLower(to), ";tag=") {
			to += ";tag=" + siplib.GenerateTagN(16)
		}
		b.WriteString("To: " + to + "\r\n")
	}
	if callID != "" {
		b.WriteString("Call-ID: " + callID + "\r\n")
	}
	if cseq != "" {
		b.WriteString("CSeq: " + cseq + "\r\n")
	}
	if userAgent != "" {
		b.WriteString("Server: " + userAgent + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String()), info
}

// isToken reports whether s is a SIP method token (RFC 3261 §25.1), at
// most 32 characters.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// printable reports whether a header line holds no control characters.
func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isKeepAlive mirrors sipgo's test for a CRLF keep-alive datagram
// (RFC 5626 §3.5.1) or padding, which it skips without parsing.
func isKeepAlive(data []byte) bool {
	if len(bytes.Trim(data, "\x00")) == 0 {
		return true
	}
	return len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0
}

// errParserPanic stands for a panic of sipgo's parser on hostile input:
// the message counts as unparsable and is dropped, and the process lives.
var errParserPanic = errors.New("sip parser panicked")

// parseSafe is Parser.ParseSIP with a panic turned into errParserPanic.
func parseSafe(p *siplib.Parser, data []byte) (msg siplib.Message, err error) {
	defer func() {
		if recover() != nil {
			msg, err = nil, errParserPanic
		}
	}()
	return p.ParseSIP(data)
}

// nextSafe is ParserStream.ParseNext with a panic turned into
// errParserPanic.
func nextSafe(ps *siplib.ParserStream) (msg siplib.Message, n int, err error) {
	defer func() {
		if recover() != nil {
			msg, n, err = nil, 0, errParserPanic
		}
	}()
	return ps.ParseNext()
}

// guardedPacketConn is the UDP socket given to sipgo: ReadFrom returns
// only datagrams that parse.
type guardedPacketConn struct {
	net.PacketConn
	srv    *Server
	parser *siplib.Parser
}

// ReadFrom implements net.PacketConn. It runs on sipgo's single read loop
// of this socket.
func (c *guardedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || isKeepAlive(b[:n]) {
			return n, addr, err
		}
		if msg, perr := parseSafe(c.parser, b[:n]); perr == nil {
			c.srv.observeRead(false, addr, c.LocalAddr(), b[:n], msg)
			return n, addr, nil
		}
		if reply := c.srv.parseFailed("udp", addr.String(), b[:n]); reply != nil {
			_, _ = c.PacketConn.WriteTo(reply, addr)
		}
	}
}

// guardedListener is the TCP listener given to sipgo; each connection it
// accepts parses the stream before sipgo reads it.
type guardedListener struct {
	net.Listener
	srv *Server
}

// Accept implements net.Listener.
func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, srv: l.srv, stream: siplib.NewParser().NewSIPStream()}, nil
}

// guardedConn feeds every chunk sipgo is about to read to a stream parser
// of its own, in the same chunks sipgo gets, so both stay in step. A chunk
// that breaks the stream is not handed over: the peer gets a reply if one
// can be built and the connection ends, as sipgo would end it (there is no
// message boundary to resync on). Only sipgo's read loop calls Read.
type guardedConn struct {
	net.Conn
	srv    *Server
	stream *siplib.ParserStream
	cur    []byte // bytes of the message being read, for parseFailed
	failed bool
}

// maxHead caps what guardedConn keeps of a message being read, for the
// capture and for a reply's headers. A longer message is not captured.
const maxHead = 64 << 10

// Read implements net.Conn.
func (c *guardedConn) Read(b []byte) (int, error) {
	if c.failed {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if err != nil && n == 0 && len(c.cur) > 0 {
		// The peer closed on a partial message: never parsed, never
		// handed to sipgo; counted, nothing to answer.
		c.failed = true
		_ = c.srv.parseFailed("tcp", c.RemoteAddr().String(), c.cur)
		c.cur = nil
		c.stream.Close()
	}
	if n == 0 {
		return n, err
	}
	data := b[:n]
	// sipgo skips these without parsing (transport_tcp.go): so must we.
	if len(bytes.Trim(data, "\x00")) == 0 ||
		len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0 && len(c.cur) == 0 {
		return n, err
	}
	if len(c.cur) < maxHead {
		c.cur = append(c.cur, data[:min(len(data), maxHead-len(c.cur))]...)
	}
	_, _ = c.stream.Write(data)
	for c.stream.Buffer().Len() > 0 {
		msg, used, perr := nextSafe(c.stream)
		if errors.Is(perr, io.ErrUnexpectedEOF) {
			break
		}
		if perr != nil {
			c.failed = true
			if reply := c.srv.parseFailed("tcp", c.RemoteAddr().String(), c.cur); reply != nil {
				_, _ = c.Conn.Write(reply)
			}
			clear(data)
			c.cur = nil
			return 0, io.EOF
		}
		if used <= len(c.cur) {
			c.srv.observeRead(true, c.RemoteAddr(), c.LocalAddr(), c.cur[:used], msg)
		}
		if used >= len(c.cur) {
			c.cur = c.cur[:0]
		} else {
			c.cur = append(c.cur[:0], c.cur[used:]...)
		}
	}
	return n, err
}
