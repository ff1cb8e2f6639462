package media

import (
	"testing"
	"unsafe"
)

var layoutSink []*Endpoint

// TestEndpointLayout checks, on endpoints the allocator placed, the
// cache-line layout the hot path relies on (see Endpoint and hotPad):
// what every packet reads in one line, the transmit side's state in the
// next, and the receive side's state in a line of its own.
func TestEndpointLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the layout is tuned for 64-bit platforms")
	}
	if n := unsafe.Sizeof(legConf{}); n > 64 {
		t.Errorf("legConf is %d bytes, more than a line", n)
	}
	line := func(p unsafe.Pointer) uintptr { return uintptr(p) / 64 }
	for range 16 {
		e := new(Endpoint)
		layoutSink = append(layoutSink, e) // on the heap, as NewEndpoint's
		if a, b := line(unsafe.Pointer(&e.conf)), line(unsafe.Pointer(&e.closed)); a != b {
			t.Fatalf("per-packet read fields span lines %d-%d (endpoint at %#x)", a, b, uintptr(unsafe.Pointer(e)))
		}
		if uintptr(unsafe.Pointer(&e.txMu))%64 != 0 || line(unsafe.Pointer(&e.txMu)) != line(unsafe.Pointer(&e.lastTxSz)) {
			t.Fatalf("transmit state not alone in one line (endpoint at %#x)", uintptr(unsafe.Pointer(e)))
		}
		if uintptr(unsafe.Pointer(&e.txBuf))%64 != 0 || uintptr(unsafe.Pointer(&e.lastRx))%64 != 0 {
			t.Fatalf("send buffer or receive side not on a line (endpoint at %#x)", uintptr(unsafe.Pointer(e)))
		}
		if line(unsafe.Pointer(&e.lastRx)) != line(unsafe.Pointer(&e.rx.probing)) {
			t.Fatalf("receive state not in one line (endpoint at %#x)", uintptr(unsafe.Pointer(e)))
		}
	}
	layoutSink = nil
}
