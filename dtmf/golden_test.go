// The golden values hold where float arithmetic is not fused: the Go
// spec lets a compiler fuse x*y+z into one FMA, and gc does so on arm64,
// ppc64, s390x and riscv64 and on amd64 from GOAMD64=v3 — in the detector
// and in math's pure-Go functions that build the test signals — so the
// hashes below are pinned for amd64 v1/v2, where CI runs.

//go:build amd64 && !amd64.v3

package dtmf

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"testing"
	"time"
)

// The golden tests pin the Detector and Masker bit for bit: a varied
// corpus of signals goes through them in frames of many sizes, and a
// SHA-256 over every event, every output sample and the detector's
// floating-point state after every call must match the value recorded
// with the reference implementation. A rewrite for speed must not change
// a single output. If a change is meant to alter results, update the
// golden values — and say why in the commit.
const (
	goldenDetectorOutput = "7b5c1106f4baa95dd9d06979a1bd3b8127c26a35500d659e9367d41d41e89f70"
	goldenDetectorState  = "d749bdf33aa8b6c070abe9dd727486a3a9c8be82ec394a6308daadbfdba2d279"
	goldenMaskerOutput   = "dac2cf7cd97d0fc9b9150ba5cd5d0ac6858e91851f45fbddca974fbfa084b748"
)

type goldenSignal struct {
	name string
	s    []int16
}

// musicLike returns n samples of notes with harmonics (the fundamental
// and three overtones at falling levels, each note 180 ms decaying),
// the kind of sound that fools a detector without a harmonic check.
func musicLike(n int, levelDBm0 float64, notes []float64) []int16 {
	a := dBm0Amplitude * math.Pow(10, levelDBm0/20)
	out := make([]int16, n)
	const noteLen = 1440
	var env float64
	for i := range out {
		f := notes[(i/noteLen)%len(notes)]
		t := float64(i % noteLen)
		if i%noteLen == 0 {
			env = 1
		}
		env *= 0.9989 // about e^(-1/900): a decay by 1/e in 112 ms
		var v float64
		for h, g := range [4]float64{1, 0.5, 0.3, 0.15} {
			v += g * math.Sin(2*math.Pi*f*float64(h+1)*t/SampleRate)
		}
		out[i] = clamp16(a * env * v)
	}
	return out
}

// chirp sweeps from f0 to f1 Hz over n samples.
func chirp(n int, f0, f1, levelDBm0 float64) []int16 {
	a := dBm0Amplitude * math.Pow(10, levelDBm0/20)
	out := make([]int16, n)
	var ph float64
	for i := range out {
		f := f0 + (f1-f0)*float64(i)/float64(n)
		ph += 2 * math.Pi * f / SampleRate
		out[i] = clamp16(a * math.Sin(ph))
	}
	return out
}

// mix adds b into a from sample at (clamped).
func mix(a, b []int16, at int) []int16 {
	for i, v := range b {
		if at+i < len(a) {
			a[at+i] = clamp16(float64(a[at+i]) + float64(v))
		}
	}
	return a
}

func goldenSignals(t *testing.T) []goldenSignal {
	t.Helper()
	var sigs []goldenSignal
	add := func(name string, s []int16) { sigs = append(sigs, goldenSignal{name, s}) }

	// every digit at the default level, on a grid of block phases
	g := newSig(11).silence(30)
	const all = "0123456789*#ABCD"
	for i := range len(all) {
		g.s = append(g.s, make([]int16, 13*i)...)
		g.tone(t, all[i], 45+5*i, ToneSpec{}).silence(40 + 3*i)
	}
	add("all digits", g.s)

	// levels, twists and offsets around the acceptance limits
	g = newSig(12).silence(20)
	for _, lvl := range []float64{-0.01, -3, -20, -30, -33, -35, -36, -37, -40} {
		g.tone(t, '5', 70, ToneSpec{LevelDBm0: lvl}).silence(60)
	}
	for _, tw := range []float64{-11, -9, -8, -7, -4, 0, 3, 4, 5, 7} {
		g.tone(t, 'C', 70, ToneSpec{TwistDB: tw}).silence(60)
	}
	for _, off := range []float64{-0.04, -0.03, -0.025, -0.02, -0.015, 0.015, 0.02, 0.025, 0.03, 0.04} {
		g.tone(t, '#', 70, ToneSpec{FreqOffset: off}).silence(60)
	}
	add("limits", g.s)

	// durations and gaps around the timing limits
	g = newSig(13).silence(10)
	for _, ms := range []int{10, 15, 20, 23, 25, 30, 35, 40, 45, 60, 200} {
		g.tone(t, '8', ms, ToneSpec{}).silence(20 + ms/2)
		g.tone(t, '8', 50, ToneSpec{}).silence(ms)
	}
	g.tone(t, '2', 120, ToneSpec{}).silence(6).tone(t, '2', 120, ToneSpec{}).silence(2).tone(t, '3', 80, ToneSpec{})
	add("durations", g.s)

	// digits in noise at several signal-to-noise ratios
	g = newSig(14).silence(20)
	for _, d := range []byte("147*2580369#") {
		g.tone(t, d, 60, ToneSpec{LevelDBm0: -15}).silence(70)
	}
	g.noise(-22)
	add("noisy digits", g.s)
	add("noise", newSig(15).silence(3000).noise(-10).s)
	add("loud noise", newSig(16).silence(1000).noise(0).s)

	// speech-like audio alone and with digits in it
	add("speech", speechLike(17, 24000, -15))
	sp := speechLike(18, 20000, -25)
	for k, d := range []byte("9D6") {
		tone, err := AppendTone(nil, d, ToneSpec{Duration: 90 * time.Millisecond, LevelDBm0: -12})
		if err != nil {
			t.Fatal(err)
		}
		mix(sp, tone, 3000+5555*k)
	}
	add("speech with digits", sp)

	// music: notes on and near DTMF frequencies and their sub-harmonics
	add("music", musicLike(16000, -12, []float64{440, 697, 349, 1209, 604.5, 941, 523.25, 770}))
	add("music on row", musicLike(12000, -8, []float64{697, 852, 697, 941}))
	add("chirp", chirp(16000, 600, 1700, -12))

	// a dual tone that is not a digit: two rows together, and 2f of a row
	lo := chirp(4000, 770, 770, -10)
	mix(lo, chirp(4000, 852, 852, -10), 0)
	add("two rows", lo)

	// silence, and full-scale extremes
	add("silence", make([]int16, 4000))
	sq := make([]int16, 4000)
	for i := range sq {
		sq[i] = math.MaxInt16
		if (i/5)%2 == 1 {
			sq[i] = math.MinInt16
		}
	}
	add("full scale square", sq)
	clip := newSig(19).tone(t, '0', 100, ToneSpec{LevelDBm0: -0.01}).s
	for i := range clip {
		clip[i] = clamp16(4 * float64(clip[i]))
	}
	add("clipped digit", clip)
	return sigs
}

// goldenFrames are the frame-length patterns fed to Process: fixed sizes
// and a repeating mixed pattern (0 is an empty call).
var goldenFrames = [][]int{{1}, {7}, {80}, {160}, {161}, {333}, {1000}, {160, 0, 1, 51, 102, 7, 333, 50, 52}}

func goldenConfigs() []DetectorConfig {
	return []DetectorConfig{
		{},
		{MinLevelDBm0: -45, FreqTolerance: 0.035, MinToneRatio: 0.3, HarmonicDB: 10},
		{MaxLowOverHighDB: 12, MaxHighOverLowDB: 8, RelativePeakDB: 4, MinToneRatio: 0.8},
	}
}

func hashFrames(s []int16, sizes []int, f func(frame []int16)) {
	for i, k := 0, 0; i < len(s); k++ {
		n := min(sizes[k%len(sizes)], len(s)-i)
		f(s[i : i+n])
		i += n
	}
}

func writeEvents(h hash.Hash, evs []Event) {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(evs)))
	for _, ev := range evs {
		lost := byte(0)
		if ev.Lost {
			lost = 1
		}
		b = append(b, byte(ev.Kind), byte(ev.Source), ev.Digit, ev.Volume, lost)
		b = binary.LittleEndian.AppendUint64(b, uint64(ev.Duration))
		b = binary.LittleEndian.AppendUint32(b, ev.SSRC)
		b = binary.LittleEndian.AppendUint32(b, ev.Timestamp)
		b = binary.LittleEndian.AppendUint64(b, uint64(ev.Offset))
	}
	h.Write(b)
}

// writeState hashes the detector's float state between calls: the
// filters, the first half's outputs, the block energy and the candidate
// run's half-block amplitudes.
func writeState(h hash.Hash, d *Detector) {
	var b []byte
	for _, a := range [][8]float32{d.s1, d.s2, d.yaRe, d.yaIm} {
		for _, v := range a {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	for _, v := range d.halves {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(d.energy))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.level))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.pos))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.n))
	h.Write(b)
}

func checkGolden(t *testing.T, what string, h hash.Hash, want string) {
	t.Helper()
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("%s hash %s, want %s", what, got, want)
	}
}

func TestGoldenDetector(t *testing.T) {
	out, state := sha256.New(), sha256.New()
	var starts, ends int
	for _, cfg := range goldenConfigs() {
		for _, sg := range goldenSignals(t) {
			for _, sizes := range goldenFrames {
				d, err := NewDetector(cfg)
				if err != nil {
					t.Fatal(err)
				}
				process := func(frame []int16) {
					evs := d.Process(frame)
					writeEvents(out, evs)
					writeState(state, d)
					for _, ev := range evs {
						if ev.Kind == KindStart {
							starts++
						} else {
							ends++
						}
					}
				}
				hashFrames(sg.s, sizes, process)
				process(make([]int16, 400)) // trailing silence ends an open digit
				// Reset, then the same signal again in one call
				d.Reset()
				process(sg.s)
				process(make([]int16, 400))
			}
		}
	}
	t.Logf("%d starts, %d ends", starts, ends)
	if starts < 500 || ends < 500 {
		t.Errorf("corpus too quiet: %d starts, %d ends", starts, ends)
	}
	checkGolden(t, "detector output", out, goldenDetectorOutput)
	checkGolden(t, "detector state", state, goldenDetectorState)
}

func TestGoldenMasker(t *testing.T) {
	h := sha256.New()
	var events int
	for ci, cfg := range goldenConfigs() {
		for si, sg := range goldenSignals(t) {
			for fi, sizes := range goldenFrames {
				m, err := NewMasker(MaskerConfig{Detector: cfg, ComfortNoise: int16(8 * ((ci + si + fi) % 2))})
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]int16, 1000)
				k := 0
				hashFrames(sg.s, sizes, func(frame []int16) {
					// now and then blank on demand, as on RFC 4733 events
					switch k % 97 {
					case 20:
						m.Suppress(200)
					case 50:
						m.Hold()
					case 60:
						m.Release()
					}
					k++
					o := buf[:len(frame)]
					in := frame
					if fi%2 == 1 { // in place
						copy(o, frame)
						in = o
					}
					evs, err := m.Process(in, o)
					if err != nil {
						t.Fatal(err)
					}
					events += len(evs)
					writeEvents(h, evs)
					var b []byte
					for _, v := range o {
						b = binary.LittleEndian.AppendUint16(b, uint16(v))
					}
					h.Write(b)
				})
				// flush the delay line and any open digit
				flush := make([]int16, 2*MaskerDelay)
				evs, err := m.Process(flush, flush)
				if err != nil {
					t.Fatal(err)
				}
				events += len(evs)
				writeEvents(h, evs)
				var b []byte
				for _, v := range flush {
					b = binary.LittleEndian.AppendUint16(b, uint16(v))
				}
				h.Write(b)
			}
		}
	}
	t.Logf("%d events", events)
	checkGolden(t, "masker output", h, goldenMaskerOutput)
}
