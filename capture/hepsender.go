package capture

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// HEPOptions configures a HEPSender. The zero value is usable.
type HEPOptions struct {
	// AgentID is the capture agent id (chunk 0x000c) naming this instance
	// to the collector.
	AgentID uint32
	// AuthKey is the collector's shared key (chunk 0x000e); empty omits it.
	AuthKey string
	// QueueLen is the number of messages that may wait for the sender
	// goroutine; more are dropped. Zero means DefaultQueueLen.
	QueueLen int
	// SlotSize is the payload size each queue slot holds without
	// allocating. Zero means DefaultSlotSize.
	SlotSize int
}

// HEPSender sends SIP messages to a Homer (or any HEPv3) collector over
// UDP, one HEPv3 datagram per message, with the message's Call-ID as the
// correlation id. It is meant for SIP only; media goes to pcap.
//
// A HEPSender is safe for concurrent use. WritePacket never blocks; send
// errors (for example a collector that is down) are counted, not returned.
type HEPSender struct {
	opts HEPOptions
	conn net.Conn
	q    *queue
	done chan struct{}
	buf  []byte // owned by the sender goroutine
}

// NewHEPSender connects a UDP socket to collector ("host:port") and starts
// the sender goroutine.
func NewHEPSender(collector string, opts HEPOptions) (*HEPSender, error) {
	conn, err := net.Dial("udp", collector)
	if err != nil {
		return nil, fmt.Errorf("dial hep collector %s: %w", collector, err)
	}
	s := &HEPSender{
		opts: opts,
		conn: conn,
		q:    newQueue(opts.QueueLen, opts.SlotSize),
		done: make(chan struct{}),
		buf:  make([]byte, 0, hepMaxLen),
	}
	go s.run()
	return s, nil
}

// WritePacket queues a SIP message, sent from src to dst over proto at ts,
// for sending. It copies payload and returns at once: ErrQueueFull
// (unwrapped) if the queue is full and the message was dropped, ErrClosed
// after Close. A zero ts is replaced by the time of the call.
func (s *HEPSender) WritePacket(ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) error {
	if hepLen(false, len(s.opts.AuthKey), len(sipCallID(payload)), len(payload)) > hepMaxLen {
		return fmt.Errorf("hep message of %d bytes: %w", len(payload), ErrTooLarge)
	}
	if proto != ProtoTCP {
		proto = ProtoUDP
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	return s.q.put(kindPacket, ts, src, dst, proto, payload, false)
}

// Stats returns the sender's counters.
func (s *HEPSender) Stats() Stats { return s.q.stats() }

// Close sends every queued message and closes the socket. Later calls
// return ErrClosed.
func (s *HEPSender) Close() error {
	if !s.q.close() {
		return ErrClosed
	}
	<-s.done
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("close hep socket: %w", err)
	}
	return nil
}

// run is the sender goroutine.
func (s *HEPSender) run() {
	defer close(s.done)
	for r := range s.q.full {
		payload := r.payload()
		b, err := appendHEP(s.buf[:0], r.src, r.dst, r.proto, r.ts, HEPProtoSIP,
			s.opts.AgentID, s.opts.AuthKey, sipCallID(payload), payload)
		if err == nil {
			_, err = s.conn.Write(b)
		}
		if err != nil {
			s.q.errs.Add(1)
		} else {
			s.q.written.Add(1)
		}
		s.q.recycle(r)
	}
}

// sipCallID returns the value of the Call-ID header (or its compact form
// "i", RFC 3261 section 7.3.3) of a SIP message, or nil. It reads only the
// header section and does not allocate.
func sipCallID(msg []byte) []byte {
	// Skip the start line.
	i := bytes.IndexByte(msg, '\n')
	if i < 0 {
		return nil
	}
	rest := msg[i+1:]
	for len(rest) > 0 {
		line := rest
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			line, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return nil // end of headers
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := bytes.TrimRight(line[:colon], " \t")
		if bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i")) {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}
