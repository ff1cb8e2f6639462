package dtmf

import (
	"fmt"
	"time"
)

// DecoderConfig tunes a Decoder. The zero value gives the defaults.
type DecoderConfig struct {
	// ClockRate is the telephone-event RTP clock in Hz (RFC 4733 §2.3:
	// normally that of the audio, 8000 for G.711). Default 8000.
	ClockRate uint32
	// Timeout closes a digit whose end packets were all lost when no
	// packet for it arrived for this long. Default 300 ms (six of the
	// 50 ms update intervals RFC 4733 §2.5.1.2 suggests).
	Timeout time.Duration
	// Continuation is how far a new timestamp may sit from the previous
	// event's timestamp + duration and still be taken as the same key
	// press re-stamped (RFC 4733 §2.5.1.3 long-duration segments, and
	// senders that re-stamp); the new packet must also arrive within
	// this long of the previous one. Default 80 ms.
	Continuation time.Duration
}

// DecoderStats counts what the decoder saw. Plain integers: the Decoder
// is used by one goroutine (the leg's read loop).
type DecoderStats struct {
	Packets     uint64 // payloads fed
	Malformed   uint64 // payloads shorter than 4 octets
	Unsupported uint64 // events other than 0-15 (ignored)
	Duplicates  uint64 // packets for an event already ended (redundant ends, replays)
	Late        uint64 // packets older than the current event (reordered)
	Digits      uint64 // End events emitted
	LostEnds    uint64 // End events inferred because end packets were lost
}

// reorderWindow is how long after the last packet an older timestamp is
// taken as reordering rather than a sender restarting its timestamps.
const reorderWindow = time.Second

// recentSize is how many ended events the decoder remembers to drop their
// late and duplicate packets.
const recentSize = 8

type eventKey struct {
	ssrc, ts uint32
	valid    bool
}

// Decoder turns RFC 4733 telephone-event payloads into digit Events.
//
// Rules (RFC 4733 §2.5): an event is keyed by SSRC and RTP timestamp — the
// marker bit is not needed, since some senders omit it; every packet of a
// key press repeats that timestamp, so one digit is reported however many
// packets arrive; the (usually three) end packets count once; a digit
// whose end packets are all lost is closed when an event with a new
// timestamp starts or by Expire after Config.Timeout without packets; a
// press longer than 0xFFFF clock units continues with a new timestamp
// (§2.5.1.3) and stays one digit, as does a sender that re-stamps a press
// while its duration keeps growing; end packets alone still give a digit.
//
// Decoder is not safe for concurrent use. Feed and Expire allocate nothing.
type Decoder struct {
	cfg       DecoderConfig
	contUnits uint32

	// current event
	active   bool
	ended    bool
	ssrc     uint32
	ts       uint32 // timestamp of the first segment
	segTS    uint32 // timestamp of the current segment
	code     uint8
	volume   uint8
	segDur   uint32 // largest duration seen in the current segment
	prevSegs uint64 // sum of durations of earlier segments
	lastSeen time.Time
	haveLast bool // lastKey valid: last event of this SSRC
	lastTS   uint32

	recent [recentSize]eventKey
	next   int

	out   [4]Event
	stats DecoderStats
}

// NewDecoder returns a Decoder; zero fields of cfg take their defaults.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if cfg.ClockRate == 0 {
		cfg.ClockRate = 8000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	if cfg.Continuation == 0 {
		cfg.Continuation = 80 * time.Millisecond
	}
	if cfg.Timeout < 0 || cfg.Continuation < 0 || cfg.ClockRate > 192000 {
		return nil, fmt.Errorf("decoder config (clock %d Hz, timeout %v): %w", cfg.ClockRate, cfg.Timeout, ErrConfig)
	}
	d := &Decoder{cfg: cfg}
	d.contUnits = uint32(cfg.Continuation.Seconds() * float64(cfg.ClockRate))
	return d, nil
}

// Stats returns the counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Reset forgets all state (the counters are kept).
func (d *Decoder) Reset() {
	st := d.stats
	cfg, cu := d.cfg, d.contUnits
	*d = Decoder{cfg: cfg, contUnits: cu, stats: st}
}

func (d *Decoder) units(u uint64) time.Duration {
	return time.Duration(u * uint64(time.Second) / uint64(d.cfg.ClockRate))
}

func (d *Decoder) totalUnits() uint64 { return d.prevSegs + uint64(d.segDur) }

func (d *Decoder) remember(ssrc, ts uint32) {
	d.recent[d.next] = eventKey{ssrc: ssrc, ts: ts, valid: true}
	d.next = (d.next + 1) % recentSize
}

func (d *Decoder) seen(ssrc, ts uint32) bool {
	for _, k := range d.recent {
		if k.valid && k.ssrc == ssrc && k.ts == ts {
			return true
		}
	}
	return false
}

func (d *Decoder) event(kind Kind) Event {
	digit, _ := DigitForCode(d.code)
	return Event{
		Kind: kind, Source: SourceRFC4733, Digit: digit,
		Duration: d.units(d.totalUnits()), Volume: d.volume,
		SSRC: d.ssrc, Timestamp: d.ts,
	}
}

// closeCurrent ends the open event, if any, appending its End event.
func (d *Decoder) closeCurrent(n int, lost bool) int {
	if !d.active || d.ended {
		d.active = false
		return n
	}
	ev := d.event(KindEnd)
	ev.Lost = lost
	d.out[n] = ev
	n++
	d.stats.Digits++
	if lost {
		d.stats.LostEnds++
	}
	d.ended = true
	d.active = false
	return n
}

// Expire closes a digit whose end packets were lost once no packet for it
// has arrived for Config.Timeout before now. It returns the End event (with
// Lost set), or nothing. Call it from the leg's periodic tick.
func (d *Decoder) Expire(now time.Time) []Event {
	n := 0
	if d.active && !d.ended && now.Sub(d.lastSeen) >= d.cfg.Timeout {
		n = d.closeCurrent(0, true)
	}
	return d.out[:n]
}

// Feed decodes one telephone-event payload (RFC 4733 §2.3) received in an
// RTP packet with the given SSRC and timestamp at time now, and returns the
// events it completes: at most an End for a previous digit closed by this
// packet, a Start and an End. The returned slice is reused by the next
// call. Events 16-255 are ignored and counted; octets beyond the first
// four are ignored.
func (d *Decoder) Feed(ssrc, ts uint32, payload []byte, now time.Time) ([]Event, error) {
	d.stats.Packets++
	if len(payload) < 4 {
		d.stats.Malformed++
		return d.out[:0], fmt.Errorf("payload of %d octets: %w", len(payload), ErrShortPayload)
	}
	code := payload[0]
	end := payload[1]&0x80 != 0
	volume := payload[1] & 0x3f
	dur := uint32(payload[2])<<8 | uint32(payload[3])

	// A digit whose packets stopped long ago is closed before anything else.
	n := 0
	if d.active && !d.ended && now.Sub(d.lastSeen) >= d.cfg.Timeout {
		n = d.closeCurrent(n, true)
	}

	if code > 15 {
		d.stats.Unsupported++
		return d.out[:n], nil
	}

	// The current event (same SSRC and segment timestamp).
	if d.active && ssrc == d.ssrc && ts == d.segTS {
		if d.ended {
			d.stats.Duplicates++
			return d.out[:n], nil
		}
		if code != d.code {
			// Same timestamp, different event: a broken sender; treat as
			// a new event replacing the old.
			n = d.closeCurrent(n, true)
			return d.start(n, ssrc, ts, code, volume, dur, end, now), nil
		}
		d.lastSeen = now
		if dur > d.segDur {
			d.segDur = dur
		}
		d.volume = volume
		if end {
			n = d.closeCurrent(n, false)
			d.active = true // keep the key so redundant ends are recognised
			d.ended = true
		}
		return d.out[:n], nil
	}

	if d.seen(ssrc, ts) {
		d.stats.Duplicates++
		return d.out[:n], nil
	}

	if d.haveLast && ssrc == d.ssrc && int32(ts-d.lastTS) < 0 && now.Sub(d.lastSeen) < reorderWindow {
		// Older than the event we already have, and soon after it:
		// reordered or replayed. (Long after, it is a sender that reset
		// its timestamps, and a new event.)
		d.stats.Late++
		return d.out[:n], nil
	}

	// Same key press continued under a new timestamp: RFC 4733 §2.5.1.3
	// long-duration segments (duration restarts), or a sender that
	// re-stamps while the duration keeps growing. Either way the new
	// segment begins no later than the old one ended (plus tolerance) and
	// packets never paused.
	if d.active && !d.ended && ssrc == d.ssrc && code == d.code &&
		now.Sub(d.lastSeen) <= d.cfg.Continuation {
		gap := ts - d.segTS // clock units since the segment began (>0: not late)
		if uint64(gap) <= uint64(d.segDur)+uint64(d.contUnits) {
			d.remember(d.ssrc, d.segTS)
			if dur < d.segDur {
				d.prevSegs += uint64(gap) // duration restarted: a new segment
			}
			d.segTS, d.segDur, d.lastTS = ts, dur, ts
			d.lastSeen = now
			d.volume = volume
			if end {
				n = d.closeCurrent(n, false)
				d.active = true
				d.ended = true
			}
			return d.out[:n], nil
		}
	}

	n = d.closeCurrent(n, true)
	return d.start(n, ssrc, ts, code, volume, dur, end, now), nil
}

func (d *Decoder) start(n int, ssrc, ts uint32, code, volume uint8, dur uint32, end bool, now time.Time) []Event {
	d.active, d.ended = true, false
	d.ssrc, d.ts, d.segTS, d.code, d.volume = ssrc, ts, ts, code, volume
	d.segDur, d.prevSegs = dur, 0
	d.lastSeen = now
	d.haveLast, d.lastTS = true, ts
	d.remember(ssrc, ts)
	d.out[n] = d.event(KindStart)
	n++
	if end {
		n = d.closeCurrent(n, false)
		d.active = true
		d.ended = true
	}
	return d.out[:n]
}
