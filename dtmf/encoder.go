package dtmf

import (
	"fmt"
	"time"
)

// EncoderConfig tunes an Encoder. The zero value gives the defaults.
type EncoderConfig struct {
	// ClockRate is the RTP clock in Hz. Default 8000.
	ClockRate uint32
	// Duration of each digit. Default 100 ms; at most 0xFFFF clock units
	// (8.19 s at 8 kHz), the longest a single-segment event can say.
	Duration time.Duration
	// Interval between update packets (RFC 4733 §2.5.1.2). Default 50 ms.
	Interval time.Duration
	// Volume is the power level in -dBm0, 0 to 63 (RFC 4733 §2.3.4).
	// Default 10 (-10 dBm0).
	Volume uint8
	// EndRepeats is how many end packets are sent (RFC 4733 §2.5.1.4
	// recommends three). Default 3.
	EndRepeats int
}

// Packet is one telephone-event RTP packet to send.
type Packet struct {
	// Payload is the 4-octet event payload (RFC 4733 §2.3).
	Payload [4]byte
	// Timestamp is the RTP timestamp: the event's start, the same on every
	// packet of the digit (RFC 4733 §2.5.1.1).
	Timestamp uint32
	// Marker is set on the first packet of the event (RFC 4733 §2.5.1.1).
	Marker bool
	// SendAt is when to send the packet, from the start of the digit.
	SendAt time.Duration
}

// Encoder produces RFC 4733 telephone-event packets for digits sent to a
// peer: a start packet with the marker bit, an update every Interval
// while the key is held, and EndRepeats end packets with the final
// duration (RFC 4733 §2.5.1). It keeps no per-digit state and allocates
// nothing when dst has room.
type Encoder struct {
	cfg      EncoderConfig
	durUnits uint32
	intUnits uint32
}

// NewEncoder returns an Encoder; zero fields of cfg take their defaults.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.ClockRate == 0 {
		cfg.ClockRate = 8000
	}
	if cfg.Duration == 0 {
		cfg.Duration = 100 * time.Millisecond
	}
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Volume == 0 {
		cfg.Volume = 10
	}
	if cfg.EndRepeats == 0 {
		cfg.EndRepeats = 3
	}
	e := &Encoder{cfg: cfg}
	units := func(d time.Duration) uint64 { return uint64(d.Seconds()*float64(cfg.ClockRate) + 0.5) }
	du, iu := units(cfg.Duration), units(cfg.Interval)
	switch {
	case cfg.Duration < 0 || du > 0xFFFF || du == 0:
		return nil, fmt.Errorf("encoder duration %v at %d Hz (1 to 65535 clock units): %w", cfg.Duration, cfg.ClockRate, ErrConfig)
	case cfg.Interval < 0 || iu == 0:
		return nil, fmt.Errorf("encoder interval %v: %w", cfg.Interval, ErrConfig)
	case cfg.Volume > 63:
		return nil, fmt.Errorf("encoder volume %d (0-63): %w", cfg.Volume, ErrConfig)
	case cfg.EndRepeats < 1 || cfg.EndRepeats > 10:
		return nil, fmt.Errorf("encoder end repeats %d (1-10): %w", cfg.EndRepeats, ErrConfig)
	}
	e.durUnits, e.intUnits = uint32(du), uint32(iu)
	return e, nil
}

// PacketCount is how many packets Append produces per digit.
func (e *Encoder) PacketCount() int {
	return int((e.durUnits+e.intUnits-1)/e.intUnits) - 1 + e.cfg.EndRepeats
}

// Append appends the packets for one digit starting at RTP timestamp ts to
// dst and returns the extended slice. Updates carry the duration so far
// (the first one interval's worth); the end packets carry the total
// duration with the E bit set and are sent back to back at the end.
func (e *Encoder) Append(dst []Packet, digit byte, ts uint32) ([]Packet, error) {
	code, ok := CodeForDigit(digit)
	if !ok {
		return dst, fmt.Errorf("encode: %w", ErrInvalidDigit)
	}
	for sent := uint32(0); sent < e.durUnits; {
		var p Packet
		p.Timestamp = ts
		p.Marker = sent == 0
		p.SendAt = e.dur(sent)
		sent += e.intUnits
		d := sent
		if d > e.durUnits {
			d = e.durUnits
		}
		p.Payload = e.payload(code, false, d)
		if d == e.durUnits {
			break // the end packets carry the final duration
		}
		dst = append(dst, p)
	}
	for i := 0; i < e.cfg.EndRepeats; i++ {
		dst = append(dst, Packet{
			Payload:   e.payload(code, true, e.durUnits),
			Timestamp: ts,
			Marker:    e.durUnits <= e.intUnits && i == 0,
			SendAt:    e.dur(e.durUnits),
		})
	}
	return dst, nil
}

// Units returns the digit duration in RTP clock units, the amount to
// advance the timestamp by before the next digit (plus any gap).
func (e *Encoder) Units() uint32 { return e.durUnits }

func (e *Encoder) dur(u uint32) time.Duration {
	return time.Duration(uint64(u) * uint64(time.Second) / uint64(e.cfg.ClockRate))
}

func (e *Encoder) payload(code uint8, end bool, dur uint32) [4]byte {
	b1 := e.cfg.Volume & 0x3f
	if end {
		b1 |= 0x80
	}
	return [4]byte{code, b1, byte(dur >> 8), byte(dur)}
}
