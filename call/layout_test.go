package call

import (
	"testing"
	"unsafe"
)

var layoutSink []*Interaction

// TestInteractionLayout checks, on interactions the allocator placed, that
// what the media path reads of an interaction per packet sits in one
// cache line (see Interaction).
func TestInteractionLayout(t *testing.T) {
	for range 16 {
		c := new(Interaction)
		layoutSink = append(layoutSink, c) // on the heap, as newInteraction's
		if a, b := uintptr(unsafe.Pointer(&c.mode))/64, uintptr(unsafe.Pointer(&c.pipe))/64; a != b {
			t.Fatalf("per-packet fields span lines %d-%d (interaction at %#x, %d bytes)", a, b, uintptr(unsafe.Pointer(c)), unsafe.Sizeof(*c))
		}
	}
	layoutSink = nil
}
