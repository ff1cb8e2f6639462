package recorder

import (
	"testing"
	"unsafe"
)

var layoutSink []*Recorder

// TestRecorderLayout checks, on recorders the allocator placed, that what
// Write touches per frame sits in one cache line, apart from the writer's
// counters (see Recorder).
func TestRecorderLayout(t *testing.T) {
	for range 16 {
		r := new(Recorder)
		layoutSink = append(layoutSink, r) // on the heap, as New's
		first, last := uintptr(unsafe.Pointer(&r.state))/64, uintptr(unsafe.Pointer(&r.startMono))/64
		if first != last {
			t.Fatalf("per-frame fields span lines %d-%d (recorder at %#x, %d bytes)", first, last, uintptr(unsafe.Pointer(r)), unsafe.Sizeof(*r))
		}
		if uintptr(unsafe.Pointer(&r.written))/64 == first {
			t.Fatalf("the writer's counters share the per-frame line (recorder at %#x)", uintptr(unsafe.Pointer(r)))
		}
	}
	layoutSink = nil
}
