package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/go-audio/wav"
	"github.com/zaf/g711"
)

// WAV format tags (RFC 2361 appendix A).
const (
	wavFormatPCM  = 1
	wavFormatALaw = 6
	wavFormatULaw = 7
)

// maxPromptBytes bounds a prompt file (about 70 minutes of 16-bit audio).
const maxPromptBytes = 64 << 20

// Prompt is audio loaded once and pre-encoded for both G.711 codecs, each
// padded with silence to whole 20 ms frames. A Prompt is immutable and may
// be played on many endpoints at once.
type Prompt struct {
	name    string
	samples int
	pcm     []int16
	ulaw    []byte
	alaw    []byte
}

// NewPromptPCM returns a prompt of 8 kHz linear 16-bit samples. name is
// used in errors and logs only.
func NewPromptPCM(name string, samples []int16) *Prompt {
	p := &Prompt{name: name, samples: len(samples), pcm: append([]int16(nil), samples...)}
	p.ulaw = encodeFrames(audio.CodecPCMU(), p.pcm)
	p.alaw = encodeFrames(audio.CodecPCMA(), p.pcm)
	return p
}

func encodeFrames(c audio.Codec, pcm []int16) []byte {
	out := c.Encode(pcm, make([]byte, 0, framesLen(len(pcm))))
	return padFrame(out, c.SilenceByte())
}

func framesLen(n int) int {
	return (n + audio.SamplesPerFrame - 1) / audio.SamplesPerFrame * audio.SamplesPerFrame
}

func padFrame(b []byte, silence byte) []byte {
	for len(b)%audio.SamplesPerFrame != 0 {
		b = append(b, silence)
	}
	return b
}

// Name returns the prompt's name.
func (p *Prompt) Name() string { return p.name }

// Samples returns the number of 8 kHz samples, before padding.
func (p *Prompt) Samples() int { return p.samples }

// PCM returns the prompt's linear samples. The slice is shared: do not
// modify it.
func (p *Prompt) PCM() []int16 { return p.pcm }

// Duration returns the prompt's length.
func (p *Prompt) Duration() time.Duration {
	return time.Duration(p.samples) * time.Second / audio.G711ClockRate
}

// Frames returns the number of 20 ms packets Play sends.
func (p *Prompt) Frames() int { return framesLen(p.samples) / audio.SamplesPerFrame }

// Encoded returns the prompt encoded for c, padded to whole frames. The
// slice is shared: do not modify it.
func (p *Prompt) Encoded(c audio.Codec) ([]byte, error) {
	switch {
	case c.IsULaw():
		return p.ulaw, nil
	case c.IsALaw():
		return p.alaw, nil
	}
	return nil, fmt.Errorf("prompt %q for codec %s: %w", p.name, c, ErrCodec)
}

// LoadPrompt reads the WAV file name from fsys: 8 kHz mono, 16-bit linear
// PCM or G.711 (format 6 A-law, 7 µ-law, 8-bit). Anything else is refused
// with an error wrapping ErrBadPrompt that names the file and the problem.
// G.711 files keep their bytes for their own codec (no re-encoding loss).
func LoadPrompt(fsys fs.FS, name string) (p *Prompt, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("prompt %q: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPromptBytes+1))
	if err != nil {
		return nil, fmt.Errorf("prompt %q: read: %w", name, err)
	}
	if len(data) > maxPromptBytes {
		return nil, fmt.Errorf("prompt %q: larger than %d bytes: %w", name, maxPromptBytes, ErrBadPrompt)
	}
	return parsePrompt(name, data)
}

func parsePrompt(name string, data []byte) (p *Prompt, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("prompt %q: %s: %w", name, fmt.Sprintf(format, args...), ErrBadPrompt)
	}
	dataSize, err := checkRIFF(data)
	if err != nil {
		return nil, bad("%v", err)
	}
	defer func() { // the WAV library is not hardened against every input
		if r := recover(); r != nil {
			p, err = nil, bad("malformed wav")
		}
	}()
	d := wav.NewDecoder(bytes.NewReader(data))
	d.ReadInfo()
	if d.Err() != nil || !d.IsValidFile() {
		return nil, bad("not a valid wav file")
	}
	if d.NumChans != 1 {
		return nil, bad("%d channels, want mono", d.NumChans)
	}
	if d.SampleRate != audio.G711ClockRate {
		return nil, bad("%d Hz, want 8000 Hz", d.SampleRate)
	}
	var wantBits uint16
	switch d.WavAudioFormat {
	case wavFormatPCM:
		wantBits = 16
	case wavFormatALaw, wavFormatULaw:
		wantBits = 8
	default:
		return nil, bad("wav format %d, want 1 (PCM), 6 (A-law) or 7 (µ-law)", d.WavAudioFormat)
	}
	if d.BitDepth != wantBits {
		return nil, bad("%d bits per sample for format %d, want %d", d.BitDepth, d.WavAudioFormat, wantBits)
	}
	if err := d.FwdToPCM(); err != nil || d.PCMChunk == nil {
		return nil, bad("no data chunk")
	}
	raw, err := io.ReadAll(d.PCMChunk)
	if err != nil {
		return nil, bad("read data chunk: %v", err)
	}
	if dataSize > len(raw) {
		return nil, bad("data chunk truncated")
	}
	raw = raw[:dataSize] // go-audio rounds odd sizes up to the pad byte

	p = &Prompt{name: name}
	switch d.WavAudioFormat {
	case wavFormatPCM:
		p.pcm = make([]int16, len(raw)/2)
		for i := range p.pcm {
			p.pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		p.ulaw = encodeFrames(audio.CodecPCMU(), p.pcm)
		p.alaw = encodeFrames(audio.CodecPCMA(), p.pcm)
	case wavFormatULaw:
		p.ulaw = padFrame(append(make([]byte, 0, framesLen(len(raw))), raw...), audio.CodecPCMU().SilenceByte())
		p.pcm = audio.CodecPCMU().Decode(raw, make([]int16, 0, len(raw)))
		p.alaw = make([]byte, 0, framesLen(len(raw)))
		for _, b := range raw {
			p.alaw = append(p.alaw, g711.Ulaw2AlawFrame(b))
		}
		p.alaw = padFrame(p.alaw, audio.CodecPCMA().SilenceByte())
	case wavFormatALaw:
		p.alaw = padFrame(append(make([]byte, 0, framesLen(len(raw))), raw...), audio.CodecPCMA().SilenceByte())
		p.pcm = audio.CodecPCMA().Decode(raw, make([]int16, 0, len(raw)))
		p.ulaw = make([]byte, 0, framesLen(len(raw)))
		for _, b := range raw {
			p.ulaw = append(p.ulaw, g711.Alaw2UlawFrame(b))
		}
		p.ulaw = padFrame(p.ulaw, audio.CodecPCMU().SilenceByte())
	}
	p.samples = len(p.pcm)
	if p.samples == 0 {
		return nil, bad("no audio samples")
	}
	return p, nil
}

// checkRIFF walks the RIFF chunk headers and makes sure each chunk fits in
// the file, so the WAV decoder is never asked to allocate or read beyond it.
// It returns the size of the first data chunk.
func checkRIFF(data []byte) (int, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return 0, fmt.Errorf("not a RIFF/WAVE file")
	}
	sawFmt, sawData, dataSize := false, false, 0
	for off := 12; off+8 <= len(data); {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		if size < 0 || size > len(data)-off-8 {
			if id == "data" && sawFmt {
				return 0, fmt.Errorf("data chunk truncated: %d bytes declared, %d present", size, len(data)-off-8)
			}
			return 0, fmt.Errorf("chunk %q overruns the file", id)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return 0, fmt.Errorf("fmt chunk of %d bytes, want at least 16", size)
			}
			sawFmt = true
		case "data":
			if !sawFmt {
				return 0, fmt.Errorf("data chunk before fmt chunk")
			}
			if !sawData {
				dataSize = size
			}
			sawData = true
		}
		off += 8 + size + size%2
	}
	if !sawFmt {
		return 0, fmt.Errorf("no fmt chunk")
	}
	if !sawData {
		return 0, fmt.Errorf("no data chunk")
	}
	return dataSize, nil
}
