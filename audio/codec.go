package audio

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zaf/g711"
)

// Static payload types of the G.711 codecs (RFC 3551 §6, table 4).
const (
	PayloadTypePCMU uint8 = 0
	PayloadTypePCMA uint8 = 8
)

// G.711 clock rate and the framing cloak sends: 20 ms packets of 160 samples
// (RFC 3551 §4.2: default packetization interval 20 ms).
const (
	G711ClockRate   = 8000
	SamplesPerFrame = 160
	FrameDuration   = 20 * time.Millisecond
)

// Codec is a negotiated G.711 audio codec.
type Codec struct {
	// Name is the encoding name as in an SDP rtpmap ("PCMU", "PCMA").
	Name string
	// PayloadType is the RTP payload type negotiated for it.
	PayloadType uint8
	// ClockRate is the RTP clock rate in Hz.
	ClockRate uint32
}

// CodecPCMU returns G.711 µ-law on its static payload type 0.
func CodecPCMU() Codec {
	return Codec{Name: "PCMU", PayloadType: PayloadTypePCMU, ClockRate: G711ClockRate}
}

// CodecPCMA returns G.711 A-law on its static payload type 8.
func CodecPCMA() Codec {
	return Codec{Name: "PCMA", PayloadType: PayloadTypePCMA, ClockRate: G711ClockRate}
}

// CodecByName returns the codec for an SDP encoding name (case-insensitive,
// RFC 4566 §6 rtpmap), on its static payload type. A dynamic payload type
// from the SDP can be set on the returned value afterwards.
func CodecByName(name string) (Codec, bool) {
	switch {
	case strings.EqualFold(name, "PCMU"):
		return CodecPCMU(), true
	case strings.EqualFold(name, "PCMA"):
		return CodecPCMA(), true
	}
	return Codec{}, false
}

// CodecByPayloadType returns the codec of a static payload type (0 or 8).
func CodecByPayloadType(pt uint8) (Codec, bool) {
	switch pt {
	case PayloadTypePCMU:
		return CodecPCMU(), true
	case PayloadTypePCMA:
		return CodecPCMA(), true
	}
	return Codec{}, false
}

// IsZero reports whether c is the zero Codec (none negotiated).
func (c Codec) IsZero() bool { return c == Codec{} }

// Supported reports whether this package can encode and decode c.
func (c Codec) Supported() bool { return c.IsULaw() || c.IsALaw() }

// IsULaw reports whether c is G.711 µ-law (PCMU).
func (c Codec) IsULaw() bool { return strings.EqualFold(c.Name, "PCMU") }

// IsALaw reports whether c is G.711 A-law (PCMA).
func (c Codec) IsALaw() bool { return strings.EqualFold(c.Name, "PCMA") }

// SilenceByte returns the encoded value of a zero sample (0xFF for µ-law,
// 0xD5 for A-law), used to pad the last frame of a prompt.
func (c Codec) SilenceByte() byte {
	if c.IsALaw() {
		return g711.EncodeAlawFrame(0)
	}
	return g711.EncodeUlawFrame(0)
}

// Decode appends the linear 16-bit samples of a G.711 payload to out[:0]
// and returns the result. It does not allocate when cap(out) >= len(payload).
// An unsupported codec yields out[:0].
func (c Codec) Decode(payload []byte, out []int16) []int16 {
	out = out[:0]
	t := c.Expansion()
	if t == nil {
		return out
	}
	for _, b := range payload {
		out = append(out, t[b])
	}
	return out
}

// Expansion returns the table of the linear sample each 8-bit code of c
// stands for (ITU-T G.711 expansion), or nil for an unsupported codec.
// The table is shared and never changes: the recorder keeps a pointer to
// it with each frame it queues in G.711 (recorder.WriteCompanded).
func (c Codec) Expansion() *[256]int16 {
	switch {
	case c.IsULaw():
		return &decodeTables().ulaw
	case c.IsALaw():
		return &decodeTables().alaw
	}
	return nil
}

// decodeTables are the G.711 expansion tables, computed once from
// zaf/g711 itself.
var decodeTables = sync.OnceValue(func() *struct{ ulaw, alaw [256]int16 } {
	t := new(struct{ ulaw, alaw [256]int16 })
	for i := range 256 {
		t.ulaw[i] = g711.DecodeUlawFrame(byte(i))
		t.alaw[i] = g711.DecodeAlawFrame(byte(i))
	}
	return t
})

// Encode appends the G.711 encoding of samples to out[:0] and returns the
// result. It does not allocate when cap(out) >= len(samples). An
// unsupported codec yields out[:0].
func (c Codec) Encode(samples []int16, out []byte) []byte {
	out = out[:0]
	var t *[65536]byte
	switch {
	case c.IsULaw():
		t = &encodeTables().ulaw
	case c.IsALaw():
		t = &encodeTables().alaw
	default:
		return out
	}
	for _, s := range samples {
		out = append(out, t[uint16(s)])
	}
	return out
}

// g711Tables maps every 16-bit sample to its G.711 code, computed once
// from zaf/g711 itself (so the result is identical to calling it per
// sample, about five times faster).
type g711Tables struct{ ulaw, alaw [65536]byte }

// encodeTables builds the tables on first use; they never change after.
var encodeTables = sync.OnceValue(func() *g711Tables {
	t := new(g711Tables)
	for i := range 65536 {
		t.ulaw[i] = g711.EncodeUlawFrame(int16(uint16(i)))
		t.alaw[i] = g711.EncodeAlawFrame(int16(uint16(i)))
	}
	return t
})

// String returns "PCMU/8000 (pt 0)" style text for logs.
func (c Codec) String() string {
	if c.IsZero() {
		return "none"
	}
	return c.Name + "/" + strconv.FormatUint(uint64(c.ClockRate), 10) + " (pt " + strconv.Itoa(int(c.PayloadType)) + ")"
}
