package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/zaf/g711"

	"github.com/cloak-voip/cloak/dtmf"
)

// errUsage is returned for bad command lines.
var errUsage = errors.New("usage: dtmfgen gen [-out DIR] [-speech] | dtmfgen score [-manifest FILE] RESULTS.tsv")

// Categories of corpus files.
const (
	catAccept  = "accept"  // in-spec digits: every one must be found
	catReject  = "reject"  // out-of-spec tones: none may be reported
	catGrey    = "grey"    // between the limits: reported, not scored
	catTalkOff = "talkoff" // speech and music: no digit may be reported
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dtmfgen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		out := fs.String("out", "testdata/dtmf", "corpus directory")
		speech := fs.Bool("speech", false, "regenerate the speech files with espeak-ng and sox")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return generate(*out, *speech)
	case "score":
		fs := flag.NewFlagSet("score", flag.ContinueOnError)
		manifest := fs.String("manifest", "testdata/dtmf/manifest.tsv", "corpus manifest")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errUsage
		}
		return score(*manifest, fs.Arg(0), stdout)
	}
	return errUsage
}

// entry is one manifest line.
type entry struct {
	file, category, expected, desc string
}

// p0 is the power of a 0 dBm0 sine in 16-bit linear units.
var p0 = math.Pow(32768/math.Pow(10, 3.17/20), 2) / 2

type seq struct {
	levelDBm0  float64 // of the pair
	twistDB    float64
	offset     float64
	toneMS     int
	gapMS      int
	snrDB      float64 // 0: no noise
	digits     string
	background []int16 // mixed under the digits (speech)
}

func (s seq) render(rng *rand.Rand) ([]int16, error) {
	out := make([]int16, 200*8)
	for i := range len(s.digits) {
		var err error
		out, err = dtmf.AppendTone(out, s.digits[i], dtmf.ToneSpec{
			Duration:   time.Duration(s.toneMS) * time.Millisecond,
			LevelDBm0:  s.levelDBm0 - 3.0103,
			TwistDB:    s.twistDB,
			FreqOffset: s.offset,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, make([]int16, s.gapMS*8)...)
	}
	out = append(out, make([]int16, 300*8)...)
	if s.snrDB != 0 {
		sd := math.Sqrt(p0 * math.Pow(10, (s.levelDBm0-s.snrDB)/10))
		for i := range out {
			out[i] = clamp(float64(out[i]) + rng.NormFloat64()*sd)
		}
	}
	for i := range min(len(out), len(s.background)) {
		out[i] = clamp(float64(out[i]) + float64(s.background[i]))
	}
	return out, nil
}

func clamp(v float64) int16 {
	return int16(max(-32768, min(32767, math.Round(v))))
}

// shuffled returns the 16 keys in an order fixed by seed.
func shuffled(seed uint64) string {
	k := []byte("0123456789*#ABCD")
	r := rand.New(rand.NewPCG(seed, 99))
	r.Shuffle(len(k), func(i, j int) { k[i], k[j] = k[j], k[i] })
	return string(k)
}

func generate(dir string, speech bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var man []entry
	add := func(name, cat, expected, desc string, s []int16) error {
		man = append(man, entry{name, cat, expected, desc})
		return writeULaw(filepath.Join(dir, name), s)
	}
	rng := rand.New(rand.NewPCG(2026, 3))
	type syn struct {
		name, cat, desc string
		s               seq
	}
	std := func(s seq, seed uint64) seq {
		if s.toneMS == 0 {
			s.toneMS, s.gapMS = 80, 80
		}
		if s.levelDBm0 == 0 {
			s.levelDBm0 = -10
		}
		if s.digits == "" {
			s.digits = shuffled(seed)
		}
		return s
	}
	var syns []syn
	for i, l := range []float64{-0.5, -10, -20, -25, -30} {
		syns = append(syns, syn{fmt.Sprintf("level%+03.0f.wav", l), catAccept, fmt.Sprintf("pair at %.1f dBm0, 80/80 ms", l), std(seq{levelDBm0: l}, uint64(i))})
	}
	syns = append(syns, syn{"level-35.wav", catReject, "pair at -35 dBm0, below the -30 dBm0 operate limit", std(seq{levelDBm0: -35}, 5)})
	for i, snr := range []float64{20, 10, 6, 3} {
		syns = append(syns, syn{fmt.Sprintf("snr%02.0f.wav", snr), catAccept, fmt.Sprintf("-15 dBm0 with white noise, SNR %.0f dB", snr), std(seq{levelDBm0: -15, snrDB: snr}, uint64(10+i))})
	}
	for i, tw := range []struct {
		db  float64
		cat string
	}{{3, catAccept}, {-6, catAccept}, {8, catReject}, {-12, catReject}} {
		what := "high group louder"
		if tw.db < 0 {
			what = "low group louder"
		}
		syns = append(syns, syn{fmt.Sprintf("twist%+03.0f.wav", tw.db), tw.cat, fmt.Sprintf("twist %.0f dB, %s", math.Abs(tw.db), what), std(seq{twistDB: tw.db}, uint64(20+i))})
	}
	for i, off := range []struct {
		pct float64
		cat string
	}{{1.5, catAccept}, {-1.5, catAccept}, {3.5, catReject}, {-3.5, catReject}, {5, catReject}, {-5, catReject}} {
		syns = append(syns, syn{fmt.Sprintf("offset%+.1f.wav", off.pct), off.cat, fmt.Sprintf("both frequencies %+.1f %%", off.pct), std(seq{offset: off.pct / 100}, uint64(30+i))})
	}
	pairs := "11223344556677889900**##AABBCCDD"
	for _, d := range []struct {
		tone, gap int
		cat       string
	}{{50, 50, catAccept}, {40, 40, catAccept}, {40, 60, catAccept}, {30, 50, catGrey}, {20, 50, catGrey}, {50, 30, catGrey}, {15, 60, catReject}} {
		syns = append(syns, syn{fmt.Sprintf("tone%02d-gap%02d.wav", d.tone, d.gap), d.cat,
			fmt.Sprintf("%d ms tones, %d ms gaps, each key twice", d.tone, d.gap), std(seq{toneMS: d.tone, gapMS: d.gap, digits: pairs}, 0)})
	}
	for _, s := range syns {
		samples, err := s.s.render(rng)
		if err != nil {
			return err
		}
		exp := s.s.digits
		if s.cat != catAccept && s.cat != catGrey {
			exp = ""
		}
		if err := add(s.name, s.cat, exp, s.desc, samples); err != nil {
			return err
		}
	}

	// music-like material: chords of harmonic-rich notes, some of them
	// within 2 % of DTMF pairs
	for i, m := range music() {
		if err := add(fmt.Sprintf("music%d.wav", i+1), catTalkOff, "", m.desc, m.samples); err != nil {
			return err
		}
	}

	// speech: espeak-ng through sox to 8 kHz µ-law
	texts := speechTexts()
	for i, t := range texts {
		name := fmt.Sprintf("speech%d.wav", i+1)
		path := filepath.Join(dir, name)
		if speech {
			if err := synthSpeech(path, t.voice, t.pitch, t.text); err != nil {
				return err
			}
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s missing: run with -speech (needs espeak-ng and sox): %w", name, err)
		}
		man = append(man, entry{name, catTalkOff, "", "espeak-ng voice " + t.voice + ", " + t.what})
	}
	// digits keyed over speech (masking while talking)
	bg, err := readULaw(filepath.Join(dir, "speech1.wav"))
	if err != nil {
		return err
	}
	for i := range bg {
		bg[i] /= 2 // speech about 6 dB under its original level
	}
	s := std(seq{levelDBm0: -12, background: bg}, 77)
	samples, err := s.render(rng)
	if err != nil {
		return err
	}
	if err := add("speech-digits.wav", catAccept, s.digits, "digits at -12 dBm0 keyed over speech", samples); err != nil {
		return err
	}
	return writeManifest(filepath.Join(dir, "manifest.tsv"), man)
}

type speechText struct{ voice, pitch, what, text string }

func speechTexts() []speechText {
	return []speechText{
		{"en-us", "50", "conversation", "Hello, thank you for calling. My name is Sarah and I will be helping you today. Could you please tell me the reason for your call? I would like to update the address on my account, and I also have a question about my last bill, which seemed higher than usual."},
		{"en+f3", "70", "numbers spoken aloud", "Sure, my account number is one two three four five six seven eight. The reference was nine zero zero one, and the amount was forty four pounds and ninety nine pence. Please call me back on zero seven seven zero zero nine zero zero one two three."},
		{"en-us+m3", "35", "low male voice", "All of our agents are busy at the moment. Please stay on the line and your call will be answered as soon as possible. Your call is important to us. You are currently number three in the queue."},
		{"de", "60", "German", "Guten Tag, vielen Dank für Ihren Anruf. Bitte nennen Sie mir Ihre Kundennummer und Ihr Geburtsdatum. Einen Moment bitte, ich verbinde Sie mit der zuständigen Abteilung."},
		{"fr+f2", "80", "French, high pitch", "Bonjour et bienvenue. Pour le service client, appuyez sur la touche étoile. Nous vous remercions de votre patience, un conseiller va prendre votre appel dans quelques instants."},
		{"en+f4", "99", "very high pitch, sung vowels", "Ooooh, aaaah, eeeee, la la la la la, mmmmm, ooooooh, heeeey, wooooow, aaaaaah, ding dong, beep beep beep."},
	}
}

func synthSpeech(path, voice, pitch, text string) error {
	tmp := path + ".tmp.wav"
	defer os.Remove(tmp)
	if out, err := exec.Command("espeak-ng", "-v", voice, "-p", pitch, "-s", "150", "-w", tmp, text).CombinedOutput(); err != nil {
		return fmt.Errorf("espeak-ng: %v: %s", err, out)
	}
	if out, err := exec.Command("sox", tmp, "-r", "8000", "-c", "1", "-e", "u-law", path).CombinedOutput(); err != nil {
		return fmt.Errorf("sox: %v: %s", err, out)
	}
	return nil
}

type musicPiece struct {
	desc    string
	samples []int16
}

// music renders a few seconds of chords per timbre. Notes are equal-
// tempered; F5 (698.5 Hz), A#5 (932.3), E6 (1318.5), F#6 (1480.0) and G#6
// (1661.2) lie within 2 % of DTMF frequencies, so a pair of them is a DTMF
// digit in all but timbre.
func music() []musicPiece {
	note := func(n int) float64 { return 440 * math.Pow(2, float64(n-69)/12) } // MIDI note
	chords := [][]int{
		{77, 90}, {77, 81, 84, 90}, {82, 88}, {65, 69, 72, 77}, {77, 88, 93},
		{70, 74, 77, 82, 90}, {82, 92}, {60, 64, 67, 72, 76}, {77, 92}, {82, 90, 94},
		{69, 73, 76, 81}, {79, 83, 86, 91}, {77, 90}, {82, 86, 89, 94}, {76, 80, 83, 88},
	}
	timbres := []struct {
		desc     string
		partials []float64 // amplitude of harmonic k+1
		vibrato  float64
		decay    float64 // per second; 0 sustained
	}{
		{"organ chords (harmonics 1, 1/2, 1/3, 1/4)", []float64{1, 0.5, 0.33, 0.25}, 0, 0},
		{"string-like chords (10 harmonics, 5 Hz vibrato)", []float64{1, 0.5, 0.33, 0.25, 0.2, 0.17, 0.14, 0.12, 0.11, 0.1}, 0.006, 0},
		{"plucked chords (decaying, bright)", []float64{1, 0.7, 0.5, 0.35, 0.25, 0.15}, 0, 3},
		{"flute-like chords (weak harmonics at -14/-20 dB)", []float64{1, 0.2, 0.1}, 0.004, 0},
	}
	var out []musicPiece
	for ti, tb := range timbres {
		var s []int16
		for ci, ch := range chords {
			n := 8 * (300 + 100*(ci%3)) // 300-500 ms per chord
			amp := 6000.0 / float64(len(ch))
			for i := range n {
				t := float64(i) / 8000
				env := math.Min(1, t/0.02) * math.Min(1, float64(n-i)/160)
				if tb.decay > 0 {
					env *= math.Exp(-tb.decay * t)
				}
				v := 0.0
				for _, nn := range ch {
					f := note(nn) * (1 + tb.vibrato*math.Sin(2*math.Pi*5*t+float64(nn)))
					for k, a := range tb.partials {
						if fk := f * float64(k+1); fk < 3900 {
							v += a * math.Sin(2*math.Pi*fk*t+float64(k*ti))
						}
					}
				}
				s = append(s, clamp(amp*env*v))
			}
		}
		out = append(out, musicPiece{tb.desc, s})
	}
	return out
}

func writeULaw(path string, s []int16) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := wav.NewEncoder(f, 8000, 8, 1, 7)
	data := make([]int, len(s))
	for i, v := range s {
		data[i] = int(g711.EncodeUlawFrame(v))
	}
	err = enc.Write(&audio.IntBuffer{Data: data, Format: &audio.Format{NumChannels: 1, SampleRate: 8000}, SourceBitDepth: 8})
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readULaw(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	d.ReadInfo()
	if d.Err() != nil || d.WavAudioFormat != 7 || d.SampleRate != 8000 || d.NumChans != 1 {
		return nil, fmt.Errorf("%s: want 8 kHz mono µ-law", path)
	}
	if err := d.FwdToPCM(); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(d.PCMChunk)
	if err != nil {
		return nil, err
	}
	out := make([]int16, len(raw))
	for i, b := range raw {
		out[i] = g711.DecodeUlawFrame(b)
	}
	return out, nil
}

func writeManifest(path string, man []entry) error {
	var b strings.Builder
	b.WriteString("# file\tcategory\texpected\tdescription (generated by tools/dtmfgen)\n")
	for _, e := range man {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", e.file, e.category, e.expected, e.desc)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func readManifest(path string) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var man []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 4 {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		man = append(man, entry{p[0], p[1], p[2], p[3]})
	}
	return man, sc.Err()
}

// lcs is the length of the longest common subsequence of a and b.
func lcs(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			default:
				cur[j] = max(prev[j], cur[j-1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type tally struct{ expected, hit, missed, falsePos int }

func (t *tally) add(o tally) {
	t.expected += o.expected
	t.hit += o.hit
	t.missed += o.missed
	t.falsePos += o.falsePos
}

func score(manifestPath, resultsPath string, w io.Writer) error {
	man, err := readManifest(manifestPath)
	if err != nil {
		return err
	}
	f, err := os.Open(resultsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	results := map[string]map[string]string{} // detector -> file -> digits
	var detectors []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) < 2 {
			continue
		}
		digits := ""
		if len(p) > 2 {
			digits = p[2]
		}
		if results[p[1]] == nil {
			results[p[1]] = map[string]string{}
			detectors = append(detectors, p[1])
		}
		results[p[1]][p[0]] = digits
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.Strings(detectors)

	cell := func(t tally, cat string) string {
		if cat == catGrey {
			return fmt.Sprintf("%d of %d found", t.hit, t.expected)
		}
		return fmt.Sprintf("%d / %d / %d", t.hit, t.missed, t.falsePos)
	}
	fmt.Fprintf(w, "| file | category | expected |")
	for _, d := range detectors {
		fmt.Fprintf(w, " %s: found / missed / false |", d)
	}
	fmt.Fprintf(w, "\n|---|---|---|%s\n", strings.Repeat("---|", len(detectors)))
	totals := map[string]map[string]*tally{}
	cats := []string{catAccept, catReject, catTalkOff, catGrey}
	for _, d := range detectors {
		totals[d] = map[string]*tally{}
		for _, c := range cats {
			totals[d][c] = &tally{}
		}
	}
	for _, e := range man {
		fmt.Fprintf(w, "| %s | %s | %d |", e.file, e.category, len(e.expected))
		for _, d := range detectors {
			got, ok := results[d][e.file]
			if !ok {
				fmt.Fprintf(w, " not run |")
				continue
			}
			hit := lcs(e.expected, got)
			t := tally{expected: len(e.expected), hit: hit, missed: len(e.expected) - hit, falsePos: len(got) - hit}
			if tt := totals[d][e.category]; tt != nil {
				tt.add(t)
			}
			fmt.Fprintf(w, " %s |", cell(t, e.category))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\n| totals | expected digits |")
	for _, d := range detectors {
		fmt.Fprintf(w, " %s: found / missed / false |", d)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(detectors)))
	for _, c := range cats {
		fmt.Fprintf(w, "| %s | %d |", c, totals[detectors[0]][c].expected)
		for _, d := range detectors {
			fmt.Fprintf(w, " %s |", cell(*totals[d][c], c))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| **scored (all but grey)** | %d |", totals[detectors[0]][catAccept].expected)
	for _, d := range detectors {
		var t tally
		for _, c := range []string{catAccept, catReject, catTalkOff} {
			t.add(*totals[d][c])
		}
		fmt.Fprintf(w, " **%d / %d / %d** |", t.hit, t.missed, t.falsePos)
	}
	fmt.Fprintln(w)
	return nil
}
