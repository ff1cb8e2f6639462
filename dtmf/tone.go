package dtmf

import (
	"fmt"
	"math"
	"time"
)

// ToneSpec describes an in-band DTMF tone to synthesise.
type ToneSpec struct {
	// Duration of the tone. Default 100 ms.
	Duration time.Duration
	// LevelDBm0 is the level of each of the two frequencies. Default -10
	// dBm0 (within Q.23's sending range).
	LevelDBm0 float64
	// TwistDB raises the high tone and lowers the low tone by half of it
	// each (positive: high louder).
	TwistDB float64
	// FreqOffset scales both frequencies by (1 + FreqOffset), e.g. 0.015.
	FreqOffset float64
}

// Frequencies returns the low (row) and high (column) frequency in Hz of
// a keypad digit (ITU-T Q.23).
func Frequencies(digit byte) (low, high float64, ok bool) {
	code, ok := CodeForDigit(digit)
	if !ok {
		return 0, 0, false
	}
	rows := [4]float64{697, 770, 852, 941}
	cols := [4]float64{1209, 1336, 1477, 1633}
	// code -> (row, column), inverse of keypad()
	pos := [16][2]uint8{
		{3, 1}, {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}, {2, 0},
		{2, 1}, {2, 2}, {3, 0}, {3, 2}, {0, 3}, {1, 3}, {2, 3}, {3, 3},
	}
	p := pos[code]
	return rows[p[0]], cols[p[1]], true
}

// AppendTone appends the samples (8 kHz, linear) of a DTMF tone to dst.
// Used to play digits in-band and to build test signals.
func AppendTone(dst []int16, digit byte, spec ToneSpec) ([]int16, error) {
	lo, hi, ok := Frequencies(digit)
	if !ok {
		return dst, fmt.Errorf("tone: %w", ErrInvalidDigit)
	}
	if spec.Duration == 0 {
		spec.Duration = 100 * time.Millisecond
	}
	if spec.LevelDBm0 == 0 {
		spec.LevelDBm0 = -10
	}
	if spec.Duration < 0 || spec.Duration > time.Minute || spec.LevelDBm0 > 0 || math.Abs(spec.FreqOffset) > 0.5 {
		return dst, fmt.Errorf("tone spec (duration %v, level %.1f dBm0): %w", spec.Duration, spec.LevelDBm0, ErrConfig)
	}
	aLo := dBm0Amplitude * math.Pow(10, (spec.LevelDBm0-spec.TwistDB/2)/20)
	aHi := dBm0Amplitude * math.Pow(10, (spec.LevelDBm0+spec.TwistDB/2)/20)
	wLo := 2 * math.Pi * lo * (1 + spec.FreqOffset) / SampleRate
	wHi := 2 * math.Pi * hi * (1 + spec.FreqOffset) / SampleRate
	n := int(spec.Duration * SampleRate / time.Second)
	for i := range n {
		v := aLo*math.Sin(wLo*float64(i)) + aHi*math.Sin(wHi*float64(i))
		dst = append(dst, clamp16(v))
	}
	return dst, nil
}

func clamp16(v float64) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(v))
}
