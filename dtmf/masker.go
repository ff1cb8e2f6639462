package dtmf

import (
	"fmt"
	"math"
)

// MaskerDelay is the Masker's fixed delay in samples: 320 samples, 40 ms
// at 8 kHz. The Detector confirms a tone at most 3 blocks (306 samples,
// 38.25 ms) after its first sample, so every sample of a tone, leading
// edge included, is still in the delay line when it is recognised.
const MaskerDelay = 320

// maxChunk bounds how much input is analysed before output is produced,
// so mask intervals are always decided before their samples leave.
const maxChunk = 160

// MaskerConfig tunes a Masker.
type MaskerConfig struct {
	// Detector holds the in-band detection rules.
	Detector DetectorConfig
	// ComfortNoise is the peak amplitude (linear, 16-bit) of the noise
	// that replaces masked samples; 0 gives digital silence. 8 is about
	// -72 dBm0, low enough to reveal nothing.
	ComfortNoise int16
}

type interval struct{ from, to int64 } // [from, to) in stream samples

// Masker removes DTMF tones from 8 kHz linear audio on its way to the
// agent or the recorder. Audio passes through a MaskerDelay (40 ms) delay
// line; the in-band Detector looks at it as it enters, and every sample
// of a detected tone — from an estimate of its onset that errs early,
// to the point its end is confirmed — is replaced by silence (or comfort
// noise) as it leaves. Suppress, Hold and Release blank audio on demand,
// for the RFC 4733 case: many phones send a few milliseconds of in-band
// tone just before they switch to telephone-events.
//
// Masker is not safe for concurrent use. Process allocates nothing in the
// steady state.
type Masker struct {
	det   *Detector
	noise int16
	seed  uint32

	line [MaskerDelay]int16
	in   int64 // samples entered so far

	masks    [8]interval
	nmasks   int
	suppress interval
	hold     bool

	events []Event
}

// NewMasker returns a Masker with its delay line full of silence.
func NewMasker(cfg MaskerConfig) (*Masker, error) {
	det, err := NewDetector(cfg.Detector)
	if err != nil {
		return nil, fmt.Errorf("masker: %w", err)
	}
	if cfg.ComfortNoise < 0 {
		return nil, fmt.Errorf("masker comfort noise %d: %w", cfg.ComfortNoise, ErrConfig)
	}
	return &Masker{det: det, noise: cfg.ComfortNoise, seed: 1, events: make([]Event, 0, 8)}, nil
}

// Delay is the delay the Masker adds, in samples (MaskerDelay).
func (m *Masker) Delay() int { return MaskerDelay }

// Suppress blanks everything now in the delay line and the next n input
// samples. Call it when the RFC 4733 decoder reports a digit start (with
// n covering the event so far plus a margin) and again on each update.
func (m *Masker) Suppress(n int) {
	if n < 0 {
		n = 0
	}
	from := m.in - MaskerDelay
	to := m.in + int64(n)
	if m.suppress.to >= from { // overlaps or touches the current one: extend
		from = min(m.suppress.from, from)
	}
	m.suppress = interval{from: from, to: max(to, m.suppress.to)}
}

// Hold blanks everything now in the delay line and all input from now on
// until Release.
func (m *Masker) Hold() {
	m.Suppress(0)
	m.hold = true
}

// Release ends a Hold. Samples already in the delay line stay blanked, so
// the tail of a tone heard just before release never leaks.
func (m *Masker) Release() {
	if m.hold {
		m.hold = false
		m.Suppress(0)
	}
}

// Gap tells the Masker that audio is missing from the stream before the
// next Process: frames lost on the way or dropped as stale by the relay
// (media's staleness bound). What the delay line holds is from before the
// gap, so it becomes silence instead of coming out after the gap, late
// and out of place — a relay that shed seconds of backlog would otherwise
// play 40 ms of seconds-old audio at each resumption. Masks and the
// stream position are unchanged (they count samples processed).
func (m *Masker) Gap() { clear(m.line[:]) }

// Process pushes in through the delay line into out (len(out) must be at
// least len(in); out[i] is the sample that entered MaskerDelay samples
// before in[i]) and returns the digit events the detector saw. in and out
// may be the same slice. The events are reused by the next call.
func (m *Masker) Process(in, out []int16) ([]Event, error) {
	m.events = m.events[:0]
	if len(out) < len(in) {
		return m.events, fmt.Errorf("masker: output of %d samples for %d input: %w", len(out), len(in), ErrBufferTooSmall)
	}
	for len(in) > 0 {
		n := min(len(in), maxChunk)
		m.chunk(in[:n], out[:n])
		in, out = in[n:], out[n:]
	}
	return m.events, nil
}

func (m *Masker) chunk(in, out []int16) {
	for _, ev := range m.det.Process(in) {
		m.events = append(m.events, ev)
		switch ev.Kind {
		case KindStart:
			m.addMask(interval{from: max(ev.Offset, m.in-MaskerDelay), to: math.MaxInt64})
		case KindEnd:
			// close the open interval where the end was confirmed
			for i := range m.nmasks {
				if m.masks[i].to == math.MaxInt64 {
					m.masks[i].to = m.det.Position()
				}
			}
		}
	}
	if m.hold {
		m.suppress.to = max(m.suppress.to, m.in+int64(len(in)))
	}
	// Through the delay line: in enters, what entered MaskerDelay samples
	// earlier leaves into out, in runs up to the end of the ring. The
	// element loop (not copy) keeps in and out usable as one slice.
	from := m.in - MaskerDelay // stream index of out[0]
	idx := int(m.in % MaskerDelay)
	src, dst := in, out[:len(in)]
	for len(src) > 0 {
		line := m.line[idx:min(idx+len(src), MaskerDelay)]
		s, d := src[:len(line)], dst[:len(line)]
		for i, x := range s {
			d[i] = line[i]
			line[i] = x
		}
		src, dst = src[len(line):], dst[len(line):]
		idx = 0
	}
	m.in += int64(len(in))
	// Then blank what is masked, sample by sample in order (so comfort
	// noise draws the same sequence), and only if an interval reaches
	// into the output at all.
	if m.overlaps(from, m.in-MaskerDelay) {
		out := out[:len(in)]
		for i := range out {
			if m.masked(from + int64(i)) {
				out[i] = m.comfort()
			}
		}
	}
	m.prune()
}

// overlaps reports whether any mask or the suppress interval meets the
// output samples [from, to).
func (m *Masker) overlaps(from, to int64) bool {
	if m.suppress.from < to && m.suppress.to > from {
		return true
	}
	for _, iv := range m.masks[:m.nmasks] {
		if iv.from < to && iv.to > from {
			return true
		}
	}
	return false
}

func (m *Masker) addMask(iv interval) {
	if m.nmasks == len(m.masks) {
		// cannot happen with maxChunk-sized analysis; merge into the last
		m.masks[m.nmasks-1].to = iv.to
		return
	}
	m.masks[m.nmasks] = iv
	m.nmasks++
}

func (m *Masker) masked(o int64) bool {
	if o >= m.suppress.from && o < m.suppress.to {
		return true
	}
	for i := range m.nmasks {
		if o >= m.masks[i].from && o < m.masks[i].to {
			return true
		}
	}
	return false
}

// prune drops intervals that lie wholly in the past of the output.
func (m *Masker) prune() {
	out := m.in - MaskerDelay
	j := 0
	for i := range m.nmasks {
		if m.masks[i].to > out {
			m.masks[j] = m.masks[i]
			j++
		}
	}
	m.nmasks = j
}

func (m *Masker) comfort() int16 {
	if m.noise == 0 {
		return 0
	}
	m.seed = m.seed*1664525 + 1013904223
	span := int32(m.noise)*2 + 1
	return int16(int32(m.seed>>16)%span - int32(m.noise))
}
