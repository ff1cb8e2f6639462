package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/wav"
	"github.com/zaf/g711"
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

func parsePrompt(name string, data []byte) (*Prompt, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("prompt %q: %s: %w", name, fmt.Sprintf(format, args...), ErrBadPrompt)
	}
	info, raw, err := wav.Decode(data)
	if err != nil {
		return nil, bad("%v", err)
	}
	if info.Channels != 1 {
		return nil, bad("%d channels, want mono", info.Channels)
	}
	if info.SampleRate != audio.G711ClockRate {
		return nil, bad("%d Hz, want 8000 Hz", info.SampleRate)
	}
	var wantBits int
	switch info.Format {
	case wav.PCM:
		wantBits = 16
	case wav.ALaw, wav.ULaw:
		wantBits = 8
	default:
		return nil, bad("wav format %d, want 1 (PCM), 6 (A-law) or 7 (µ-law)", info.Format)
	}
	if info.BitsPerSample != wantBits {
		return nil, bad("%d bits per sample for format %d, want %d", info.BitsPerSample, info.Format, wantBits)
	}

	p := &Prompt{name: name}
	switch info.Format {
	case wav.PCM:
		p.pcm = make([]int16, len(raw)/2)
		for i := range p.pcm {
			p.pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		p.ulaw = encodeFrames(audio.CodecPCMU(), p.pcm)
		p.alaw = encodeFrames(audio.CodecPCMA(), p.pcm)
	case wav.ULaw:
		p.ulaw = padFrame(append(make([]byte, 0, framesLen(len(raw))), raw...), audio.CodecPCMU().SilenceByte())
		p.pcm = audio.CodecPCMU().Decode(raw, make([]int16, 0, len(raw)))
		p.alaw = make([]byte, 0, framesLen(len(raw)))
		for _, b := range raw {
			p.alaw = append(p.alaw, g711.Ulaw2AlawFrame(b))
		}
		p.alaw = padFrame(p.alaw, audio.CodecPCMA().SilenceByte())
	case wav.ALaw:
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
