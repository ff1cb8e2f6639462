package dtmf

import (
	"fmt"
	"math"
	"time"
)

// In-band detection works on 8 kHz linear PCM in blocks of 102 samples
// (12.75 ms): long enough to separate adjacent DTMF rows (73 Hz apart),
// short enough to see 40 ms tones and gaps. Each block is analysed as two
// halves of 51 samples so the phase advance between them measures each
// tone's frequency (±78 Hz unambiguous), which is what lets the detector
// reject tones more than 3.5 % off while accepting 1.5 % (ITU-T Q.24).
const (
	// SampleRate is the only rate the Detector and Masker accept.
	SampleRate = 8000
	blockSize  = 102
	halfBlock  = blockSize / 2
	// dBm0Amplitude is the peak of a 0 dBm0 sine in 16-bit linear PCM: a
	// full-scale G.711 sine is +3.17 dBm0 (ITU-T G.711), so 0 dBm0 is
	// 32768 / 10^(3.17/20).
	dBm0Amplitude = 22753.0
)

// DetectorConfig holds the acceptance rules of the in-band Detector. The
// zero value gives the defaults, which follow ITU-T Q.24 and the values
// common in telephony DSP (spandsp, Asterisk).
type DetectorConfig struct {
	// MinLevelDBm0 is the weakest tone accepted, per frequency.
	// Default -36 dBm0 per tone (-33 dBm0 for the pair): a digit at -30
	// dBm0 (pair) is accepted with margin, one at -35 dBm0 is rejected.
	MinLevelDBm0 float64
	// MaxLowOverHighDB is how much louder the low (row) tone may be than
	// the high (column) tone — the "normal" twist lines produce since
	// they attenuate high frequencies more. Default 8 dB.
	MaxLowOverHighDB float64
	// MaxHighOverLowDB is how much louder the high tone may be than the
	// low one ("reverse" twist). Default 4 dB.
	MaxHighOverLowDB float64
	// FreqTolerance is the largest relative frequency offset accepted,
	// between Q.24's must-accept 1.5 % and must-reject 3.5 %. Default 0.025.
	FreqTolerance float64
	// MinToneRatio is the share of the block's power the two tones must
	// carry (a signal-to-noise and talk-off check). Default 0.5.
	MinToneRatio float64
	// RelativePeakDB is how far the chosen row (column) must stand above
	// the other rows (columns). Default 8 dB.
	RelativePeakDB float64
	// HarmonicDB is how far each tone's second harmonic must lie below
	// the tone; speech and music have harmonics, DTMF does not. A
	// harmonic is only held against a tone when it is also a peak above
	// the neighbouring spectrum, so white noise does not fail the check.
	// Default 20 dB.
	HarmonicDB float64
}

// Detector finds DTMF digits in 8 kHz linear PCM (Goertzel filters on the
// eight DTMF frequencies). Feed it any number of samples at a time; it
// keeps its position across calls.
//
// A digit starts (KindStart) once at least two consecutive 12.75 ms blocks
// agree and, measured per half block, carry 20 ms or more of tone — 26 to
// 38 ms after the tone began. It ends (KindEnd) after two blocks without
// it. So tones of 40 ms and gaps of 40 ms are always resolved (ITU-T Q.24
// operate times), tones of 15 ms or less never produce a digit, a 20 ms
// tone straddling two blocks sometimes does, and a one-block dropout does
// not split a digit.
//
// Detector is not safe for concurrent use. Process allocates nothing
// once its event buffer has grown to the largest batch (it starts with
// room for 8 events, enough for a 20 ms frame).
type Detector struct {
	cfg DetectorConfig

	minPower     float64
	quietBlock   float32 // block energy under which no tone can reach minPower
	lowOverHigh  float64
	highOverLow  float64
	relPeak      float64
	harmonic     float64
	freqTolRad   [8]float64
	minToneRatio float64

	s1, s2 [8]float32
	yaRe   [8]float32
	yaIm   [8]float32
	buf    [blockSize]float32
	n      int
	energy float32
	pos    int64 // index of the next sample

	// candidate run: consecutive blocks with the same digit
	cand      byte
	candCount int
	candStart int64
	halves    [16]float32 // per half-block tone amplitude of the run
	minSpan   float64     // samples of tone needed to start a digit

	// active digit
	digit      byte
	digitStart int64
	lastHitEnd int64
	misses     int
	level      float64

	events []Event
}

// filterTables are the detector's constants, the same for every Detector:
// one copy for the process, which stays in the CPU's caches however many
// calls run, instead of 800 bytes more of each Detector to fetch per frame.
type filterTables struct {
	coef       [8]float32 // 2cos(w)
	cosw, sinw [8]float32
	rotRe      [8]float32 // e^{-j w M}
	rotIm      [8]float32
	nomPhase   [8]float64 // w M
	freq       [8]float64
	hcoef      [8][3]float32 // 2cos(w') at the second harmonic and 200 Hz either side
	hann       [blockSize]float32
}

var tables = func() (t filterTables) {
	freqs := [8]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633}
	for i, f := range freqs {
		w := 2 * math.Pi * f / SampleRate
		t.freq[i] = f
		t.coef[i] = float32(2 * math.Cos(w))
		t.cosw[i] = float32(math.Cos(w))
		t.sinw[i] = float32(math.Sin(w))
		t.rotRe[i] = float32(math.Cos(w * halfBlock))
		t.rotIm[i] = float32(-math.Sin(w * halfBlock))
		t.nomPhase[i] = w * halfBlock
		for k, df := range [3]float64{0, -200, 200} {
			t.hcoef[i][k] = float32(2 * math.Cos(2*math.Pi*(2*f+df)/SampleRate))
		}
	}
	for i := range t.hann {
		t.hann[i] = float32(0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/blockSize))
	}
	return t
}()

// NewDetector returns a Detector; zero fields of cfg take their defaults.
func NewDetector(cfg DetectorConfig) (*Detector, error) {
	if cfg.MinLevelDBm0 == 0 {
		cfg.MinLevelDBm0 = -36
	}
	if cfg.MaxLowOverHighDB == 0 {
		cfg.MaxLowOverHighDB = 8
	}
	if cfg.MaxHighOverLowDB == 0 {
		cfg.MaxHighOverLowDB = 4
	}
	if cfg.FreqTolerance == 0 {
		cfg.FreqTolerance = 0.025
	}
	if cfg.MinToneRatio == 0 {
		cfg.MinToneRatio = 0.5
	}
	if cfg.RelativePeakDB == 0 {
		cfg.RelativePeakDB = 8
	}
	if cfg.HarmonicDB == 0 {
		cfg.HarmonicDB = 20
	}
	switch {
	case cfg.MinLevelDBm0 > 3.17 || cfg.MinLevelDBm0 < -60:
		return nil, fmt.Errorf("detector min level %.1f dBm0 (-60 to +3): %w", cfg.MinLevelDBm0, ErrConfig)
	case cfg.FreqTolerance < 0 || cfg.FreqTolerance > 0.04:
		return nil, fmt.Errorf("detector frequency tolerance %.3f (0 to 0.04): %w", cfg.FreqTolerance, ErrConfig)
	case cfg.MinToneRatio < 0 || cfg.MinToneRatio > 1:
		return nil, fmt.Errorf("detector tone ratio %.2f (0 to 1): %w", cfg.MinToneRatio, ErrConfig)
	case cfg.MaxLowOverHighDB < 0 || cfg.MaxHighOverLowDB < 0 || cfg.RelativePeakDB < 0 || cfg.HarmonicDB < 0:
		return nil, fmt.Errorf("detector dB limits must be positive: %w", ErrConfig)
	}
	d := &Detector{cfg: cfg, events: make([]Event, 0, 8)}
	for i, f := range tables.freq {
		d.freqTolRad[i] = 2 * math.Pi * f * cfg.FreqTolerance / SampleRate * halfBlock
	}
	p0 := dBm0Amplitude * dBm0Amplitude / 2
	d.minPower = p0 * math.Pow(10, cfg.MinLevelDBm0/10)
	// Half the energy at which a tone could just reach minPower: the
	// margin covers float32 rounding many times over.
	d.quietBlock = float32(d.minPower * blockSize / 2 / 2)
	d.lowOverHigh = math.Pow(10, cfg.MaxLowOverHighDB/10)
	d.highOverLow = math.Pow(10, cfg.MaxHighOverLowDB/10)
	d.relPeak = math.Pow(10, cfg.RelativePeakDB/10)
	d.harmonic = math.Pow(10, -cfg.HarmonicDB/10)
	d.minSpan = 20.0 * SampleRate / 1000
	d.minToneRatio = cfg.MinToneRatio
	return d, nil
}

// Reset returns the detector to its initial state (position 0, no digit).
func (d *Detector) Reset() {
	nd, _ := NewDetector(d.cfg)
	ev := d.events[:0]
	*d = *nd
	d.events = ev
}

// Position is the number of samples processed so far.
func (d *Detector) Position() int64 { return d.pos }

// Active reports the digit currently sounding, if any.
func (d *Detector) Active() (digit byte, ok bool) { return d.digit, d.digit != 0 }

// Process analyses samples (8 kHz, linear) and returns the digit events
// completed during them. The slice is reused by the next call.
func (d *Detector) Process(samples []int16) []Event {
	d.events = d.events[:0]
	for len(samples) > 0 {
		k := min(len(samples), blockSize-d.n)
		d.fill(samples[:k])
		samples = samples[k:]
		d.n += k
		d.pos += int64(k)
		if d.n == blockSize {
			d.block()
			d.n = 0
			d.energy = 0
		}
	}
	return d.events
}

// fill adds run, which must not cross a block boundary, to the block: its
// samples to buf and their power to energy.
func (d *Detector) fill(run []int16) {
	buf := d.buf[d.n : d.n+len(run)]
	run = run[:len(buf)]
	energy := d.energy
	for i, s := range run {
		x := float32(s)
		buf[i] = x
		energy += x * x
	}
	d.energy = energy
}

// filter runs the eight Goertzel filters over each half of the block just
// completed: the first half's outputs to ya, the second's state left in
// s1 and s2. Each half starts from zero state, so running them when the
// block is complete gives exactly what running them sample by sample
// would.
func (d *Detector) filter() {
	d.s1, d.s2 = [8]float32{}, [8]float32{}
	goertzel8(d.buf[:halfBlock], &tables.coef, &d.s1, &d.s2)
	for i := range 8 {
		d.yaRe[i] = d.s1[i] - tables.cosw[i]*d.s2[i]
		d.yaIm[i] = tables.sinw[i] * d.s2[i]
	}
	d.s1, d.s2 = [8]float32{}, [8]float32{}
	goertzel8(d.buf[halfBlock:], &tables.coef, &d.s1, &d.s2)
}

// goertzel8 runs the Goertzel recurrence s = x + c*s1 - s2 of eight
// filters (coefficients c, state s1 and s2) over xs.
//
// This is the detector's hot loop. The state is copied into locals for
// the run and written back at its end: updated through the pointers,
// every sample stored s1 and loaded it back, which put a store and a load
// on each filter's dependency chain. The s1 values carry that chain and
// are scalars, so the compiler keeps them in registers; s2 is read a
// sample after it is written, off the chain, and stays in a local array
// (amd64 has too few float registers for all sixteen). Each filter's
// arithmetic is the same, in the same order, so the results are bit for
// bit those of the one-filter-at-a-time loop.
func goertzel8(xs []float32, c, s1, s2 *[8]float32) {
	k := *c
	b := *s2
	a0, a1, a2, a3, a4, a5, a6, a7 := s1[0], s1[1], s1[2], s1[3], s1[4], s1[5], s1[6], s1[7]
	for _, x := range xs {
		t0 := x + k[0]*a0 - b[0]
		t1 := x + k[1]*a1 - b[1]
		t2 := x + k[2]*a2 - b[2]
		t3 := x + k[3]*a3 - b[3]
		t4 := x + k[4]*a4 - b[4]
		t5 := x + k[5]*a5 - b[5]
		t6 := x + k[6]*a6 - b[6]
		t7 := x + k[7]*a7 - b[7]
		b = [8]float32{a0, a1, a2, a3, a4, a5, a6, a7}
		a0, a1, a2, a3, a4, a5, a6, a7 = t0, t1, t2, t3, t4, t5, t6, t7
	}
	*s1 = [8]float32{a0, a1, a2, a3, a4, a5, a6, a7}
	*s2 = b
}

// block classifies the block just completed and updates the state machine.
func (d *Detector) block() {
	var hit byte
	var power float64
	var r, c int
	// A tone's power in the block is at most 2*energy/blockSize (Cauchy-
	// Schwarz on its DFT bin), so a block below quietBlock cannot hold a
	// tone of MinLevelDBm0, let alone two: skip the filters. Silence and
	// the pauses of speech, most of a caller's side of a call, cost only
	// the energy sum.
	if d.energy >= d.quietBlock {
		d.filter()
		hit, power, r, c = d.classify()
	}
	end := d.pos
	start := end - blockSize

	// candidate run (for starting a digit)
	switch {
	case hit == 0:
		d.cand, d.candCount = 0, 0
	case hit == d.cand:
		d.candCount++
	default:
		d.cand, d.candCount, d.candStart = hit, 1, start
	}
	if hit != 0 && d.candCount <= len(d.halves)/2 {
		ha, hb := d.halfAmplitudes(r, c)
		d.halves[2*d.candCount-2] = ha
		d.halves[2*d.candCount-1] = hb
	}

	if d.digit != 0 {
		if hit == d.digit {
			d.misses = 0
			d.lastHitEnd = end
			return
		}
		d.misses++
		if d.misses < 2 {
			return
		}
		d.events = append(d.events, Event{
			Kind: KindEnd, Source: SourceInband, Digit: d.digit,
			Duration: samplesToDuration(d.lastHitEnd - d.digitStart),
			Volume:   levelVolume(d.level), Offset: d.lastHitEnd,
		})
		d.digit = 0
		if d.candCount < 2 {
			return
		}
	}
	if d.candCount >= 2 && d.span() >= d.minSpan {
		onset := d.candStart - blockSize // the tone may have begun in the block before
		if onset < 0 {
			onset = 0
		}
		d.digit, d.digitStart, d.lastHitEnd, d.misses = d.cand, d.candStart, end, 0
		d.level = power
		d.cand, d.candCount = 0, 0
		d.events = append(d.events, Event{
			Kind: KindStart, Source: SourceInband, Digit: d.digit,
			Duration: samplesToDuration(end - d.digitStart),
			Volume:   levelVolume(power), Offset: onset,
		})
	}
}

func samplesToDuration(n int64) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

// levelVolume turns a power (linear units) into -dBm0, clamped to 0..63.
func levelVolume(power float64) uint8 {
	if power <= 0 {
		return 63
	}
	db := -10 * math.Log10(power/(dBm0Amplitude*dBm0Amplitude/2))
	switch {
	case db < 0:
		return 0
	case db > 63:
		return 63
	}
	return uint8(db + 0.5)
}

// span estimates how many samples of the candidate run carry the tone:
// each half block counts in proportion to its amplitude relative to the
// loudest half, so a 20 ms tone straddling two blocks counts as 20 ms, not
// as two blocks (25.5 ms).
func (d *Detector) span() float64 {
	n := min(2*d.candCount, len(d.halves))
	var ref float32
	for _, h := range d.halves[:n] {
		ref = max(ref, h)
	}
	if ref == 0 {
		return 0
	}
	var sum float64
	for _, h := range d.halves[:n] {
		sum += float64(h / ref)
	}
	return sum * halfBlock
}

// halfAmplitudes returns the combined magnitude of tones r and c over each
// half of the block just completed.
func (d *Detector) halfAmplitudes(r, c int) (float32, float32) {
	mag := func(re, im float32) float32 { return re*re + im*im }
	ybr := func(i int) (float32, float32) { return d.s1[i] - tables.cosw[i]*d.s2[i], tables.sinw[i] * d.s2[i] }
	a := mag(d.yaRe[r], d.yaIm[r]) + mag(d.yaRe[c], d.yaIm[c])
	rr, ri := ybr(r)
	cr, ci := ybr(c)
	b := mag(rr, ri) + mag(cr, ci)
	return float32(math.Sqrt(float64(a))), float32(math.Sqrt(float64(b)))
}

// classify returns the digit the block holds (0 for none), the power of
// its stronger tone and the row and column filter indexes.
func (d *Detector) classify() (byte, float64, int, int) {
	var p [8]float64
	const norm = 2.0 / (blockSize * blockSize)
	for i := range 8 {
		ybRe := d.s1[i] - tables.cosw[i]*d.s2[i]
		ybIm := tables.sinw[i] * d.s2[i]
		re := d.yaRe[i] + tables.rotRe[i]*ybRe - tables.rotIm[i]*ybIm
		im := d.yaIm[i] + tables.rotRe[i]*ybIm + tables.rotIm[i]*ybRe
		p[i] = float64(re*re+im*im) * norm
	}
	r, c := 0, 4
	for i := 1; i < 4; i++ {
		if p[i] > p[r] {
			r = i
		}
		if p[i+4] > p[c] {
			c = i + 4
		}
	}
	pr, pc := p[r], p[c]
	if pr < d.minPower || pc < d.minPower {
		return 0, 0, 0, 0
	}
	if pr > pc*d.lowOverHigh || pc > pr*d.highOverLow {
		return 0, 0, 0, 0
	}
	for i := range 4 {
		if i != r && p[i]*d.relPeak > pr {
			return 0, 0, 0, 0
		}
		if i+4 != c && p[i+4]*d.relPeak > pc {
			return 0, 0, 0, 0
		}
	}
	total := float64(d.energy) / blockSize
	if pr+pc < d.minToneRatio*total {
		return 0, 0, 0, 0
	}
	if !d.onFrequency(r) || !d.onFrequency(c) {
		return 0, 0, 0, 0
	}
	// Both tones' second harmonics in one pass over the block, the row's
	// even when it goes unchecked: two filters side by side cost little
	// more than one.
	hc, hr := d.goertzelHann(tables.hcoef[c][0], tables.hcoef[r][0])
	if d.harmonic2(c, pc, hc) {
		return 0, 0, 0, 0
	}
	// The row's second harmonic (1394-1882 Hz) sits within the Hann main
	// lobe (±157 Hz) of some columns; it is only checked when clear.
	if math.Abs(2*tables.freq[r]-tables.freq[c]) > 250 && d.harmonic2(r, pr, hr) {
		return 0, 0, 0, 0
	}
	power := pr
	if pc > power {
		power = pc
	}
	return digitChars[keypad(r, c-4)], power, r, c
}

// keypad maps row and column index to the RFC 4733 event code.
func keypad(row, col int) uint8 {
	// rows: 697 770 852 941; columns: 1209 1336 1477 1633
	codes := [4][4]uint8{
		{1, 2, 3, 12},
		{4, 5, 6, 13},
		{7, 8, 9, 14},
		{10, 0, 11, 15},
	}
	return codes[row][col]
}

// onFrequency measures tone i's frequency from the phase advance between
// the block's two halves and reports whether it is within tolerance.
func (d *Detector) onFrequency(i int) bool {
	ybRe := float64(d.s1[i] - tables.cosw[i]*d.s2[i])
	ybIm := float64(tables.sinw[i] * d.s2[i])
	aRe, aIm := float64(d.yaRe[i]), float64(d.yaIm[i])
	// arg(yb * conj(ya)) = (w + dw) * M
	phi := math.Atan2(ybIm*aRe-ybRe*aIm, ybRe*aRe+ybIm*aIm)
	dphi := math.Remainder(phi-tables.nomPhase[i], 2*math.Pi)
	return math.Abs(dphi) <= d.freqTolRad[i]
}

// harmonic2 reports whether tone i (of power p, with power h at 2f) has
// a second harmonic: h more than HarmonicDB below the tone that also
// stands as a peak, 8 times above the mean of the bins 200 Hz either
// side — white noise is flat and rarely does that; voices and
// instruments do.
func (d *Detector) harmonic2(i int, p, h float64) bool {
	if h <= p*d.harmonic {
		return false
	}
	lo, hi := d.goertzelHann(tables.hcoef[i][1], tables.hcoef[i][2])
	side := lo + hi
	return h > 8*side/2
}

// goertzelHann returns the power at the frequencies of coefficients c0
// and c1 (2cos w) over the block through a Hann window (so other tones do
// not leak in), scaled to the units of an unwindowed tone power.
//
// The two filters run side by side in one pass: each recurrence waits on
// its own previous sample, so the second one fills time the first leaves
// idle. Each is computed exactly as it would be alone.
func (d *Detector) goertzelHann(c0, c1 float32) (float64, float64) {
	var a0, b0, a1, b1 float32
	hann := &tables.hann
	for k, x := range &d.buf {
		w := x * hann[k]
		t0 := w + c0*a0 - b0
		t1 := w + c1*a1 - b1
		b0, b1 = a0, a1
		a0, a1 = t0, t1
	}
	return hannPower(c0, a0, b0), hannPower(c1, a1, b1)
}

// hannPower is the power of a goertzelHann filter of coefficient c from
// its final state s1, s2.
func hannPower(c, s1, s2 float32) float64 {
	e := float64(s1*s1 + s2*s2 - c*s1*s2)
	return 4 * e * 2.0 / (blockSize * blockSize) // Hann coherent gain 1/2
}
