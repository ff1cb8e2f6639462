package media

import (
	"math"
	"time"
)

// This file holds the pure arithmetic of call quality: sequence and loss
// accounting (RFC 3550 Appendix A.1 and A.3), interarrival jitter (A.8),
// round-trip time from a report block (§6.4.1), NTP timestamps (§4) and
// an estimated MOS from the ITU-T G.107 E-model. No sockets, no clock, no
// allocation: the reader calls SeqStats.Update and Jitter.Update per
// packet, the RTCP sender and the API the rest.

// RFC 3550 Appendix A.1 constants.
const (
	seqMod      = 1 << 16
	maxDropout  = 3000
	maxMisorder = 100
)

// SeqStats counts one source's packets by sequence number, as RFC 3550
// Appendix A.1 does (without its probation, which the Endpoint does on
// SSRC changes already): the first sequence number seen, the highest one
// extended with the count of wraps, and how many packets arrived. A jump
// of more than maxDropout ahead is taken as the sender having restarted
// only when the next packet follows it (A.1's bad_seq); duplicates and
// late packets count as received, so, as in A.3, lost may go negative.
// The zero value is ready to use.
type SeqStats struct {
	base     uint32 // first sequence number (of the run since the last resync)
	maxSeq   uint16
	cycles   uint32 // wraps × 2^16
	badSeq   uint32 // the sequence number after a large jump; seqMod+1 = none
	received uint32
	started  bool
}

func (s *SeqStats) init(seq uint16) {
	s.base, s.maxSeq, s.cycles, s.badSeq, s.received, s.started = uint32(seq), seq, 0, seqMod+1, 0, true
}

// Update counts a packet with sequence number seq. It reports false when
// the packet was not counted (the first one after a large jump).
func (s *SeqStats) Update(seq uint16) bool {
	if !s.started {
		s.init(seq)
		s.received = 1
		return true
	}
	udelta := seq - s.maxSeq
	switch {
	case udelta < maxDropout: // in order, with a permissible gap
		if seq < s.maxSeq {
			s.cycles += seqMod // wrapped
		}
		s.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder: // a very large jump
		if uint32(seq) != s.badSeq {
			s.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
		s.init(seq) // two in sequence: the sender restarted
	default: // duplicate or reordered
	}
	s.received++
	return true
}

// Received returns how many packets were counted.
func (s *SeqStats) Received() uint32 { return s.received }

// ExtendedMax returns the highest sequence number seen, extended with its
// wraps (the "extended highest sequence number received" of a report
// block, RFC 3550 §6.4.1).
func (s *SeqStats) ExtendedMax() uint32 { return s.cycles + uint32(s.maxSeq) }

// Base returns the first sequence number counted.
func (s *SeqStats) Base() uint32 { return s.base }

// Expected returns how many packets should have arrived (A.3).
func Expected(base, extMax uint32) uint32 { return extMax - base + 1 }

// CumulativeLost is expected less received, clamped to the 24-bit signed
// field of a report block (RFC 3550 §6.4.1, A.3): duplicates may make it
// negative.
func CumulativeLost(expected, received uint32) int32 {
	lost := int64(expected) - int64(received)
	return int32(min(max(lost, -0x800000), 0x7fffff))
}

// FractionLost is the fraction of packets lost in an interval, in 1/256
// (RFC 3550 A.3): 0 when none were expected or more arrived than were
// expected (duplicates).
func FractionLost(expectedInterval, receivedInterval uint32) uint8 {
	lost := int64(expectedInterval) - int64(receivedInterval)
	if expectedInterval == 0 || lost <= 0 {
		return 0
	}
	return uint8(min((lost<<8)/int64(expectedInterval), 255))
}

// Jitter is the interarrival jitter estimate of RFC 3550 Appendix A.8,
// kept ×16 in integers as A.8 suggests. Arrival times and RTP timestamps
// are in the stream's clock rate. The zero value is ready to use.
type Jitter struct {
	j           uint32 // jitter × 16, timestamp units
	lastTransit uint32
	started     bool
}

// ArrivalUnits converts a monotonic arrival time in nanoseconds to the
// units of a stream's RTP timestamps at clock rate rate (RFC 3550 A.8:
// "the arrival time in the same units"), wrapping modulo 2^32 as the
// timestamps do. rate must not be 0.
func ArrivalUnits(ns int64, rate uint32) uint32 {
	return uint32(uint64(ns) / (uint64(time.Second) / uint64(rate)))
}

// Transit is a packet's relative transit time (RFC 3550 A.8): its
// arrival time less its RTP timestamp, in timestamp units, modulo 2^32.
// Only differences of transits mean anything (the sender's clock has an
// unknown origin); int32(a-b) is one, across timestamp wraps too. The
// jitter estimate and the staleness bound (stale.go) both start here.
func Transit(arrival, rtpTS uint32) uint32 { return arrival - rtpTS }

// Update feeds one packet's arrival time and RTP timestamp (same units).
func (j *Jitter) Update(arrival, rtpTS uint32) {
	transit := Transit(arrival, rtpTS)
	if !j.started {
		j.lastTransit, j.started = transit, true
		return
	}
	d := int32(transit - j.lastTransit)
	j.lastTransit = transit
	if d < 0 {
		d = -d
	}
	j.j += uint32(d) - ((j.j + 8) >> 4)
}

// Value returns the jitter in timestamp units (the report block's
// "interarrival jitter").
func (j *Jitter) Value() uint32 { return j.j >> 4 }

// ntpEpochOffset is the seconds from 1900-01-01 (NTP's epoch) to 1970.
const ntpEpochOffset = 2208988800

// NTPTime returns t as a 64-bit NTP timestamp (RFC 3550 §4): seconds
// since 1900 in the high 32 bits, the fraction in the low 32.
func NTPTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// NTPMiddle returns the middle 32 bits of an NTP timestamp: the units of
// a report block's LSR and DLSR, 1/65536 s (RFC 3550 §6.4.1).
func NTPMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// RoundTrip computes the round-trip time from a report block received at
// arrival (NTPMiddle of the arrival time) with the block's LSR and DLSR
// (RFC 3550 §6.4.1): A − LSR − DLSR. ok is false when the block carries
// no LSR (no SR received by the peer yet) or the result is negative by
// more than RTTSlack (a clock step or a forged block). A result negative
// by less is a round trip shorter than the two sides' rounding: a peer
// that measures DLSR with a millisecond clock (baresip's libre does) can
// report up to a millisecond more than it held our SR, so on a LAN or
// loopback A − LSR − DLSR dips just below zero; that is a round trip of 0.
func RoundTrip(arrival, lsr, dlsr uint32) (rtt time.Duration, ok bool) {
	if lsr == 0 {
		return 0, false
	}
	v := int32(arrival - lsr - dlsr)
	if v < 0 {
		if v >= -rttSlackUnits {
			return 0, true
		}
		return 0, false
	}
	return time.Duration(int64(v) * int64(time.Second) >> 16), true
}

// RTTSlack is how far below zero A − LSR − DLSR may fall and still count
// as a round trip of 0 (see RoundTrip): the millisecond clocks of common
// peers plus the 1/65536 s units of both fields, with room for a peer
// whose timer ticks coarser.
const RTTSlack = 5 * time.Millisecond

// rttSlackUnits is RTTSlack in LSR/DLSR units (1/65536 s).
const rttSlackUnits = int32(RTTSlack * 65536 / time.Second)

// DLSRUnits converts a delay to a report block's DLSR units (1/65536 s),
// saturating.
func DLSRUnits(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(int64(d)<<16/int64(time.Second), math.MaxUint32))
}

// E-model constants for G.711 (ITU-T G.107 with the G.113 Appendix I
// values). cloak assumes the listener's side conceals lost packets (PLC,
// as baresip and every desk phone does): Bpl 25.1. Without PLC G.113
// gives 4.3, which would make every lost packet cost far more.
const (
	// EModelR0 is the R of G.107's default parameters with no delay or
	// loss impairment.
	EModelR0 = 93.2
	// G711Ie is G.711's equipment impairment factor.
	G711Ie = 0
	// G711BplPLC is G.711's packet-loss robustness factor with packet
	// loss concealment (G.113 Appendix I).
	G711BplPLC = 25.1
)

// RFactor is the E-model's rating of a G.711 stream (ITU-T G.107,
// simplified): R = R0 − Id − Ie,eff, with the delay impairment
// Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3) for the one-way delay d in
// ms (the usual simplification of G.107's Id for echo-free paths), and
// Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl) with random loss
// (BurstR = 1), lossPct in percent (0-100).
func RFactor(oneWay time.Duration, lossPct float64) float64 {
	d := float64(oneWay) / float64(time.Millisecond)
	if d < 0 || math.IsNaN(d) {
		d = 0
	}
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	p := lossPct
	if p < 0 || math.IsNaN(p) {
		p = 0
	}
	p = min(p, 100)
	ie := G711Ie + (95-G711Ie)*p/(p+G711BplPLC)
	return EModelR0 - id - ie
}

// MOSFromR converts an R rating to an estimated MOS (ITU-T G.107 Annex
// B): 1 below R 0, 4.5 above R 100, else
// 1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶.
func MOSFromR(r float64) float64 {
	switch {
	case r <= 0 || math.IsNaN(r):
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// EstimateMOS is MOSFromR(RFactor(oneWay, lossPct)), rounded to two
// decimals.
func EstimateMOS(oneWay time.Duration, lossPct float64) float64 {
	return math.Round(MOSFromR(RFactor(oneWay, lossPct))*100) / 100
}
