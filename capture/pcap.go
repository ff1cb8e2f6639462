package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Pcap file constants (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html).
const (
	pcapMagicNanos = 0xa1b23c4d // nanosecond timestamps
	pcapSnapLen    = 65535
	// LinkTypeRaw is LINKTYPE_RAW: each record starts with an IPv4 or IPv6
	// header, no link layer.
	LinkTypeRaw = 101
)

// MarkerPort is the UDP port of the marker datagrams PcapWriter writes
// (RFC 863 discard: a datagram to it carries nothing for anyone). Markers
// go from and to 127.0.0.1; read them with
// `tshark -r FILE -Y 'udp.port==9' -T fields -e udp.payload`.
const MarkerPort = 9

// markerAddr is the source and destination of marker datagrams.
var markerAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), MarkerPort)

// PcapOptions configures a PcapWriter. The zero value is usable.
type PcapOptions struct {
	// QueueLen is the number of packets that may wait for the writer
	// goroutine; more are dropped. Zero means DefaultQueueLen.
	QueueLen int
	// SlotSize is the payload size each queue slot holds without
	// allocating. Zero means DefaultSlotSize.
	SlotSize int
}

// PcapWriter writes captured payloads to a classic pcap file
// (nanosecond timestamps, LINKTYPE_RAW) with synthesised IPv4/IPv6 and
// UDP/TCP headers. The file is written under a temporary name in the
// target directory and renamed to its final name by Close, so a file with
// the final name is always complete.
//
// A PcapWriter is safe for concurrent use. WritePacket never blocks.
type PcapWriter struct {
	path string
	tmp  *os.File
	bw   *bufio.Writer
	q    *queue
	done chan struct{}
	err  error // first write error; owned by the writer goroutine until done

	// Owned by the writer goroutine.
	ipID uint16
	tcp  map[flowKey]uint32 // next sequence number per direction
	hdr  [16 + maxHeaderLen]byte
}

// flowKey is one direction of a TCP connection.
type flowKey struct{ src, dst netip.AddrPort }

// tcpInitialSeq is the first sequence number of every synthesised TCP flow.
const tcpInitialSeq = 1

// maxTCPFlows bounds the per-direction sequence state of one file.
const maxTCPFlows = 1 << 16

// NewPcapWriter creates path's temporary sibling, writes the pcap header
// and starts the writer goroutine.
func NewPcapWriter(path string, opts PcapOptions) (*PcapWriter, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return nil, fmt.Errorf("create pcap %s: %w", path, err)
	}
	w := &PcapWriter{
		path: path,
		tmp:  f,
		bw:   bufio.NewWriterSize(f, 64<<10),
		q:    newQueue(opts.QueueLen, opts.SlotSize),
		done: make(chan struct{}),
		tcp:  make(map[flowKey]uint32),
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicNanos)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], pcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeRaw)
	if _, err := w.bw.Write(h[:]); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("write pcap header %s: %w", path, err)
	}
	go w.run()
	return w, nil
}

// WritePacket queues payload, sent from src to dst over proto at ts, for
// writing. It copies payload and returns at once: ErrQueueFull (unwrapped)
// if the queue is full and the packet was dropped, ErrClosed after Close.
// A zero ts is replaced by the time of the call.
//
// Hot path: no allocation for payloads up to the slot size; the only lock
// taken is the queue's read lock, never held across I/O.
func (w *PcapWriter) WritePacket(ts time.Time, src, dst netip.AddrPort, proto Proto, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("pcap packet of %d bytes: %w", len(payload), ErrTooLarge)
	}
	if proto != ProtoTCP {
		proto = ProtoUDP
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	return w.q.put(kindPacket, ts, src, dst, proto, payload, false)
}

// WriteMarker writes text as a UDP datagram from and to 127.0.0.1 port
// MarkerPort at ts. Unlike WritePacket it waits for a free slot rather than
// drop the marker, so it must not be called on the hot path.
func (w *PcapWriter) WriteMarker(ts time.Time, text string) error {
	if len(text) > MaxPayload {
		return fmt.Errorf("pcap marker of %d bytes: %w", len(text), ErrTooLarge)
	}
	// The conversion does not escape (put copies), so it does not allocate.
	return w.q.put(kindMarker, ts, markerAddr, markerAddr, ProtoUDP, []byte(text), true)
}

// Stats returns the writer's counters.
func (w *PcapWriter) Stats() Stats { return w.q.stats() }

// Path returns the final path of the file, which exists once Close has
// returned nil.
func (w *PcapWriter) Path() string { return w.path }

// Close writes out every queued packet, flushes and syncs the file and
// renames it to its final path. If any write failed, the temporary file is
// removed and the first error returned. Close is idempotent; later calls
// return ErrClosed.
func (w *PcapWriter) Close() error {
	if !w.q.close() {
		return ErrClosed
	}
	<-w.done
	err := w.err
	if err == nil {
		if ferr := w.bw.Flush(); ferr != nil {
			err = fmt.Errorf("flush pcap %s: %w", w.path, ferr)
		}
	}
	if err == nil {
		if serr := w.tmp.Sync(); serr != nil {
			err = fmt.Errorf("sync pcap %s: %w", w.path, serr)
		}
	}
	if cerr := w.tmp.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close pcap %s: %w", w.path, cerr)
	}
	if err == nil {
		if rerr := os.Rename(w.tmp.Name(), w.path); rerr != nil {
			err = fmt.Errorf("rename pcap to %s: %w", w.path, rerr)
		}
	}
	if err != nil {
		_ = os.Remove(w.tmp.Name())
	}
	return err
}

// run is the writer goroutine: it turns each queued record into a pcap
// record and recycles the slot, until the queue is closed and drained.
func (w *PcapWriter) run() {
	defer close(w.done)
	for r := range w.q.full {
		if w.err != nil {
			w.q.errs.Add(1)
		} else if err := w.writeRecord(r); err != nil {
			w.err = fmt.Errorf("write pcap %s: %w", w.path, err)
			w.q.errs.Add(1)
		} else {
			w.q.written.Add(1)
		}
		w.q.recycle(r)
	}
}

// writeRecord writes one pcap record: the 16-byte record header, the
// synthesised headers and the payload.
func (w *PcapWriter) writeRecord(r *record) error {
	payload := r.payload()
	src, dst := normalise(r.src, r.dst)
	w.ipID++
	h := headerSpec{src: src, dst: dst, proto: r.proto, ipID: w.ipID}
	if r.proto == ProtoTCP {
		h.seq, h.ack = w.tcpSeq(src, dst, len(payload))
	}
	hl := putHeaders(w.hdr[16:], h, payload)
	n := hl + len(payload)
	ns := r.ts.UnixNano()
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(n))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(n))
	if _, err := w.bw.Write(w.hdr[:16+hl]); err != nil {
		return err
	}
	_, err := w.bw.Write(payload)
	return err
}

// tcpSeq returns the sequence and acknowledgement numbers of a segment of
// n bytes from src to dst and advances the flow: the sequence continues
// where the previous segment in this direction ended, the acknowledgement
// is where the reverse direction will continue.
func (w *PcapWriter) tcpSeq(src, dst netip.AddrPort, n int) (seq, ack uint32) {
	fwd, rev := flowKey{src, dst}, flowKey{dst, src}
	if _, ok := w.tcp[fwd]; !ok && len(w.tcp) >= maxTCPFlows {
		clear(w.tcp) // bound the state; surviving flows restart their numbering
	}
	seq, ok := w.tcp[fwd]
	if !ok {
		seq = tcpInitialSeq
	}
	ack, ok = w.tcp[rev]
	if !ok {
		ack = tcpInitialSeq
		w.tcp[rev] = ack
	}
	w.tcp[fwd] = seq + uint32(n)
	return seq, ack
}
